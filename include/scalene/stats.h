/* libscaleneprof: statistics.
 *
 * A scalene_profile_t holds what the collectors measured, aggregated per
 * source line, per function and per file, with the run's metadata.  It is
 * built by collectors (through scalene_profile_add_cpu), loaded from JSON
 * (output.h), merged with another profile, and read by the output layer or by
 * any consumer through the iteration functions below.
 *
 * Units: CPU time is kept in seconds (the sum of the weights of the samples
 * charged to a record); percentages are derived when a profile is written or
 * shown, as 100 * record / scalene_profile_info_t.total_cpu_sec.
 *
 * Thread-safety: every function here may be called from any thread; a
 * profile has an internal mutex.  None of them is async-signal-safe: the
 * collectors never call them from a signal handler. */
#ifndef SCALENE_STATS_H
#define SCALENE_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <scalene/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SCALENE_LOCATION_FILE_MAX 256
#define SCALENE_LOCATION_FUNCTION_MAX 128

/* Where a sample was taken.  Fixed-size so that a signal handler can fill it
 * without allocating.  Either file/function/line are set, or file is "" and
 * pc is a code address that the sampler symbolises later (dladdr, and libdw
 * for file and line where the library was built with it).  Strings are
 * UTF-8 and NUL-terminated; longer names are truncated. */
typedef struct scalene_location {
  char file[SCALENE_LOCATION_FILE_MAX];
  char function[SCALENE_LOCATION_FUNCTION_MAX]; /* qualified name, may be "" */
  uint32_t line;          /* 1-based; 0 when unknown */
  uint32_t function_line; /* first line of the function; 0 when unknown */
  uintptr_t pc;           /* used when file is "" */
} scalene_location_t;

/* The kinds CPU time is split into.  Python: the interpreter was running.
 * Native: other user-mode code (extension modules, libraries, a C
 * program's own code).  System: time in the kernel, and (for the thread
 * whose off-CPU time is sampled) time spent waiting off the CPU -- Scalene's
 * meaning of "system". */
typedef enum scalene_cpu_kind {
  SCALENE_CPU_PYTHON = 0,
  SCALENE_CPU_NATIVE = 1,
  SCALENE_CPU_SYSTEM = 2,
  SCALENE_CPU_KINDS = 3
} scalene_cpu_kind_t;

typedef struct scalene_profile scalene_profile_t;

/* One record: a source line, or a function (then line is its first line).
 * Owned by the profile and valid until the profile is modified or freed.
 * Fields may be appended in later versions: never allocate or copy this
 * struct by value across library versions; read it through the pointer. */
typedef struct scalene_line_stats {
  const char *file;     /* interned; never NULL */
  const char *function; /* qualified function name; "" when unknown */
  uint32_t line;
  uint32_t function_line;
  double cpu_sec[SCALENE_CPU_KINDS]; /* indexed by scalene_cpu_kind_t */
  uint64_t cpu_samples;              /* samples charged here */
  const char *source;   /* the line's text when known (a loaded profile), else NULL */
  /* Memory (scalene_profile_add_memory).  Bytes are estimates: the heap
   * sampler unbiases each sample, so they add up to the true volume. */
  double alloc_bytes;   /* allocated here over the run (churn included) */
  double python_bytes;  /* the part of alloc_bytes from Python's allocator */
  double freed_bytes;   /* of what was allocated here, freed again */
  double peak_bytes;    /* most bytes allocated here and live at one time */
  double copy_bytes;    /* copied here (memcpy and friends) */
  uint64_t alloc_samples;                /* sampled allocations charged here */
  size_t n_memory_samples;               /* length of memory_samples */
  const double (*memory_samples)[2];     /* [monotonic seconds since start, live MB here] */
} scalene_line_stats_t;

/* One file: the sums of its lines. */
typedef struct scalene_file_stats {
  const char *name;
  double cpu_sec[SCALENE_CPU_KINDS];
  uint64_t cpu_samples;
  size_t n_lines;      /* records with data, see scalene_profile_file_line */
  size_t n_functions;  /* see scalene_profile_file_function */
  double alloc_bytes, python_bytes, freed_bytes, copy_bytes; /* sums of its lines */
} scalene_file_stats_t;

/* Run-wide information.  Strings are owned by the profile. */
typedef struct scalene_profile_info {
  size_t size;                 /* set by the caller to sizeof(scalene_profile_info_t) */
  const char *program;         /* "" when unknown */
  double elapsed_sec;          /* wall time while profiling was on */
  double total_cpu_sec;        /* all CPU time sampled, attributed to a line or not */
  double unattributed_cpu_sec; /* the part of total_cpu_sec outside every reported file */
  uint64_t cpu_samples;        /* number of samples */
  double start_time_absolute;  /* time(2)-based start of profiling, 0 when unknown */
  int n_args;
  const char *const *args;     /* the program's argv as the profile records it */
  /* Memory. */
  int memory;                  /* memory events were recorded */
  double alloc_bytes;          /* all bytes allocated, attributed or not */
  double max_footprint_bytes;  /* peak of the live bytes of the whole process */
  const char *max_footprint_file; /* where the peak was reached: the allocating location, or,
                                   * when an unattributed allocation reached it, the last
                                   * attributed location that allocated; NULL when none had */
  uint32_t max_footprint_line;
  size_t n_footprint_samples;
  const double (*footprint_samples)[2]; /* [seconds since start, live MB], bounded */
} scalene_profile_info_t;

/* Makes an empty profile.  Returns NULL when out of memory.  Free it with
 * scalene_profile_free. */
SCALENE_API scalene_profile_t *scalene_profile_new(void);

/* Frees p and everything it owns.  NULL is allowed. */
SCALENE_API void scalene_profile_free(scalene_profile_t *p);

/* Forgets every sample and record (metadata stays).  Used after fork(). */
SCALENE_API void scalene_profile_clear(scalene_profile_t *p);

/* Charges CPU time to a location: seconds[k] seconds of kind k, counted as
 * `samples` samples.  loc == NULL (or loc->file "" and loc->pc 0) counts the
 * time in the totals only (unattributed).  Returns 0, SCALENE_EINVAL, or
 * SCALENE_ENOMEM. */
SCALENE_API int scalene_profile_add_cpu(scalene_profile_t *p, const scalene_location_t *loc,
                                        const double seconds[SCALENE_CPU_KINDS],
                                        uint64_t samples);

/* One memory event, as the heap and memcpy samplers hand it over. */
typedef struct scalene_memory_event {
  size_t size;          /* sizeof(scalene_memory_event_t) */
  double alloc_bytes;   /* estimated bytes allocated by this event */
  double python_bytes;  /* the part of alloc_bytes through Python's allocator */
  double freed_bytes;   /* estimated bytes, allocated at loc, freed by this event */
  double copy_bytes;    /* estimated bytes copied */
  uint64_t alloc_samples; /* sampled allocations the event stands for */
  double time_sec;      /* monotonic seconds since profiling started */
} scalene_memory_event_t;

/* Charges a memory event to the location that allocated (for frees: the
 * location that allocated the freed block, not the one that freed it).
 * Keeps the live bytes of the line and of the process, their peaks, and
 * bounded timelines of both (reservoir-sampled, so that a long run stays
 * small).  loc == NULL counts in the process totals only.  Returns 0,
 * SCALENE_EINVAL or SCALENE_ENOMEM. */
SCALENE_API int scalene_profile_add_memory(scalene_profile_t *p, const scalene_location_t *loc,
                                           const scalene_memory_event_t *ev);

/* Sets the program name and its argv (copied).  args may be NULL when n_args is 0. */
SCALENE_API int scalene_profile_set_program(scalene_profile_t *p, const char *program,
                                            int n_args, const char *const *args);

/* Sets the wall time the profile covers, and the absolute start time. */
SCALENE_API void scalene_profile_set_elapsed(scalene_profile_t *p, double elapsed_sec,
                                             double start_time_absolute);

/* Fills *info (info->size must be set).  The strings stay valid until p is
 * modified or freed.  Returns 0 or SCALENE_EINVAL. */
SCALENE_API int scalene_profile_get_info(const scalene_profile_t *p, scalene_profile_info_t *info);

/* Files, sorted by name.  scalene_profile_file returns NULL past the end. */
SCALENE_API size_t scalene_profile_file_count(const scalene_profile_t *p);
SCALENE_API const scalene_file_stats_t *scalene_profile_file(const scalene_profile_t *p, size_t i);

/* The i-th line record of file f (sorted by line number), or NULL past the end. */
SCALENE_API const scalene_line_stats_t *scalene_profile_file_line(const scalene_profile_t *p,
                                                                  size_t f, size_t i);

/* The i-th function record of file f (sorted by first line), or NULL past the end. */
SCALENE_API const scalene_line_stats_t *scalene_profile_file_function(const scalene_profile_t *p,
                                                                      size_t f, size_t i);

/* Looks up the record of one line; NULL when the line has none. */
SCALENE_API const scalene_line_stats_t *scalene_profile_find_line(const scalene_profile_t *p,
                                                                  const char *file, uint32_t line);

/* Adds every sample, record and the elapsed time of src into dst (child
 * processes, repeated runs).  dst keeps its program and args.  Returns 0 or
 * SCALENE_ENOMEM (dst is then partly merged). */
SCALENE_API int scalene_profile_merge(scalene_profile_t *dst, const scalene_profile_t *src);

/* One process of a profile.  A profile describes the process that recorded
 * it and, after scalene_profile_merge_child, the child processes merged
 * into it.  Strings are owned by the profile. */
typedef struct scalene_process_stats {
  long pid;                   /* 0 when unknown */
  const char *program;        /* "" when unknown */
  double elapsed_sec;         /* its wall time while profiling was on */
  double total_cpu_sec;       /* its CPU time sampled */
  uint64_t cpu_samples;
  double alloc_bytes;         /* its bytes allocated */
  double max_footprint_bytes; /* its own peak of live bytes */
} scalene_process_stats_t;

/* Records the id of the process the profile describes (0: unknown). */
SCALENE_API void scalene_profile_set_pid(scalene_profile_t *p, long pid);

/* Adds a child process's profile into dst: every sample and record as
 * scalene_profile_merge does, except that dst keeps its elapsed time and
 * start time (the child ran during them), and src's processes (src's own
 * and the children merged into it) are listed among dst's.  Merge children
 * after dst's own collection has ended: dst's own process entry is then
 * what it recorded itself.  Returns 0, SCALENE_EINVAL (NULL, or dst ==
 * src) or SCALENE_ENOMEM. */
SCALENE_API int scalene_profile_merge_child(scalene_profile_t *dst, const scalene_profile_t *src);

/* The processes: 0 when no child was merged (the profile's own totals are
 * in scalene_profile_info_t), else 1 + the number of children: entry 0 is
 * the profile's own process (its totals without the children's), then the
 * children in the order they were merged. */
SCALENE_API size_t scalene_profile_process_count(const scalene_profile_t *p);

/* Fills *out with process i; SCALENE_EINVAL when i is out of range. */
SCALENE_API int scalene_profile_process(const scalene_profile_t *p, size_t i,
                                        scalene_process_stats_t *out);

/* Stacks.  Besides its line records a profile may keep a table of stacks:
 * the text of a sample's stack, frames outermost first, each
 * "<file> <function>:<line>;" (Scalene's frame strings concatenated, as a
 * locator writes them into scalene_sample_context_t.stack), with the CPU
 * seconds of each kind and the number of samples charged to it.  Identical
 * texts are one entry.  The table is a view of the same samples: adding a
 * stack changes neither the totals nor the line records (the sampler
 * charges each sample to both), and a sample without a stack has no entry.
 * merge and merge_child add the tables, clear empties it. */

/* Charges seconds[k] seconds of kind k and `samples` samples to the stack
 * `stack` (NUL-terminated text, copied; must not be ""), making its entry
 * when the text is new.  Returns 0, SCALENE_EINVAL (NULL, "", or seconds
 * not finite and >= 0) or SCALENE_ENOMEM. */
SCALENE_API int scalene_profile_add_stack(scalene_profile_t *p, const char *stack,
                                          const double seconds[SCALENE_CPU_KINDS],
                                          uint64_t samples);

/* The number of distinct stacks. */
SCALENE_API size_t scalene_profile_stack_count(const scalene_profile_t *p);

/* Stack i, in the order the stacks were first added (0 ..
 * scalene_profile_stack_count - 1): *stack gets its text (owned by the
 * profile, valid until the profile is cleared or freed), seconds its CPU
 * seconds by kind and *samples its samples; any output may be NULL.
 * Returns 0, or SCALENE_EINVAL when i is out of range. */
SCALENE_API int scalene_profile_stack(const scalene_profile_t *p, size_t i, const char **stack,
                                      double seconds[SCALENE_CPU_KINDS], uint64_t *samples);

/* Attaches the text of a source line to a record (used by loaders). */
SCALENE_API int scalene_profile_set_source(scalene_profile_t *p, const char *file, uint32_t line,
                                           const char *text);

#ifdef __cplusplus
}
#endif
#endif /* SCALENE_STATS_H */
