/* libscaleneprof: declarations shared inside the library.  Never installed.
 * Internal non-static symbols are scalene__* and hidden (the library is
 * built with -fvisibility=hidden and exports only ^scalene_). */
#ifndef SCALENE_INTERNAL_H
#define SCALENE_INTERNAL_H

#include "config.h"

#include <stdarg.h>
#include <sys/types.h>

#include <scalene/scalene.h>

#if defined(__GNUC__)
#define SCALENE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SCALENE_PRINTF(a, b)
#endif

/* Fills *err (when not NULL) with a formatted message. */
void scalene__error_set(scalene_error_t *err, const char *source, int line, int column,
                        long offset, const char *fmt, ...) SCALENE_PRINTF(6, 7);

/* stats.c (A): the profile's recursive mutex, held by the output layer
 * across a whole rendering so that it reads one consistent state. */
void scalene__profile_lock(const scalene_profile_t *p);
void scalene__profile_unlock(const scalene_profile_t *p);
/* stats.c (A), for loaders: charge a line record only (no function record),
 * a function record only, and the run-wide totals.  Return 0,
 * SCALENE_EINVAL or SCALENE_ENOMEM. */
int scalene__profile_add_line(scalene_profile_t *p, const char *file, uint32_t line,
                              const double seconds[SCALENE_CPU_KINDS], uint64_t samples);
int scalene__profile_add_function(scalene_profile_t *p, const char *file, const char *function,
                                  uint32_t first_line, const double seconds[SCALENE_CPU_KINDS],
                                  uint64_t samples);
void scalene__profile_add_totals(scalene_profile_t *p, double total_cpu_sec,
                                 double unattributed_cpu_sec, uint64_t samples);
/* stats.c, for loaders: a process of a saved profile's "processes": the
 * profile's own (own != 0: its pid and own peak) or a child (appended). */
int scalene__profile_add_process(scalene_profile_t *p, const scalene_process_stats_t *ps,
                                 int own);
/* output_json.c: reads the whole regular file at path, of at most max
 * bytes, into a malloc'ed buffer with a NUL after its *len bytes.  A FIFO,
 * a device or a directory is refused ("cannot read: not a regular file",
 * "... is a directory"), as is a file larger than max, also one that grows
 * past it while being read ("file too large").  Returns 0, SCALENE_ENOENT,
 * SCALENE_EIO or SCALENE_ENOMEM, with err filled. */
int scalene__read_file(const char *path, off_t max, char **out, size_t *len,
                       scalene_error_t *err);
/* output_json.c: writes len bytes of data to path atomically (a temporary
 * file in the same directory, renamed over path; not fsync'ed), so that a
 * reader sees the old file or the whole new one; on failure nothing is left
 * behind.  Returns 0, SCALENE_EIO or SCALENE_ENOMEM, with err filled. */
int scalene__write_file_atomic(const char *path, const char *data, size_t len,
                               scalene_error_t *err);
/* output_text.c: the length of the valid UTF-8 sequence at s (1 to 4),
 * with its code point in *cp, or 0 when s does not start one (a stray
 * continuation byte, a truncated or overlong sequence, a surrogate, beyond
 * U+10FFFF).  Stops at a NUL. */
int scalene__utf8_seq(const unsigned char *s, unsigned long *cp);
/* stats.c: the pid of scalene_profile_set_pid (0: unknown); the caller
 * holds the lock or owns p. */
long scalene__profile_pid(const scalene_profile_t *p);

/* output_json.c (A): a source file's lines, each with its terminator as
 * Scalene stores them (linecache keeps the "\n"), invalid UTF-8 replaced
 * by U+FFFD.  scalene__source_read returns 0, -1 when the file cannot be
 * read (not an error: a profile may name "<string>" or a file that is
 * gone), or SCALENE_ENOMEM; *s is empty unless it returns 0. */
typedef struct scalene__source {
  char **lines;
  size_t n;
} scalene__source_t;
int scalene__source_read(const char *path, scalene__source_t *s);
void scalene__source_free(scalene__source_t *s);
/* output_text.c, for the terminal and HTML views alike: */
/* The lines of file fi in order: every line of src (the source read from
 * disk, maybe empty) with its record if it has one, and the records of
 * lines src does not have, where they fall.  _next returns 1 with the
 * line's number, text (src's, else the record's own, maybe NULL) and
 * record (NULL: none), or 0 at the end.  Caller holds the profile lock. */
typedef struct scalene__line_walk {
  const scalene_profile_t *p;
  size_t fi;
  const scalene__source_t *src;
  size_t i;
  const scalene_line_stats_t *rec;
  uint32_t lineno;
} scalene__line_walk_t;
void scalene__line_walk_init(scalene__line_walk_t *w, const scalene_profile_t *p, size_t fi,
                             const scalene__source_t *src);
int scalene__line_walk_next(scalene__line_walk_t *w, uint32_t *n, const char **text,
                            const scalene_line_stats_t **show);
/* Scalene's time_consumed_str: "1.234s", "2m:3.456s", "12.345ms". */
void scalene__fmt_time(double sec, char *buf, size_t n);
/* A percentage cell: blank for zero, "<1%" for a share too small to round
 * to 1 %, else the rounded value. */
void scalene__fmt_pct(double pct, char *buf, size_t n);
/* A MB cell: blank for zero, else about 3 significant digits. */
void scalene__fmt_mb(double mb, char *buf, size_t n);
/* The sum of a line's three CPU kinds. */
double scalene__sum3(const double s[3]);
/* Whether a line record has any data (CPU, allocation, frees, copies). */
int scalene__line_has_data(const scalene_line_stats_t *r);
/* A file's share of the time, and the order the views list files in
 * (qsort: most seconds first, then by name). */
typedef struct scalene__share {
  size_t index;
  double sec;
  const char *name;
} share_t;
int scalene__cmp_share(const void *a, const void *b);
/* Whether the views show memory columns: the profile has memory data and
 * something was allocated, reached a footprint or copied. */
int scalene__view_memory(const scalene_profile_t *p, const scalene_profile_info_t *info);
/* The files the views show, in their order (scalene__cmp_share): those
 * with at least opts->cpu_percent_threshold % of the CPU time, and with
 * memory shown, those that allocated or copied at least 1 MB.  A malloc'ed
 * array of *shown entries (never NULL when it succeeds), or NULL. */
share_t *scalene__view_files(const scalene_profile_t *p, const scalene_profile_info_t *info,
                             int memory, const scalene_output_options_t *opts, size_t *shown);
/* output_json.c (A): the source lines of file f, named `name`, that the
 * JSON, terminal and HTML views merge with its records: read from disk
 * unless the profile holds source text for the file (a loaded profile
 * does; then that text is shown, and *s stays empty).  Returns 0 (*s is
 * empty when the file cannot be read) or SCALENE_ENOMEM. */
int scalene__file_source(const scalene_profile_t *p, size_t f, const char *name,
                         scalene__source_t *s);
/* output_json.c (A): opts, or defaults when NULL, or (opts->size smaller
 * than ours: an older caller) its fields completed with defaults in *buf. */
const scalene_output_options_t *scalene__output_options(const scalene_output_options_t *opts,
                                                        scalene_output_options_t *buf);

/* stats.c (H2): memory values behind a line or function record that the
 * public struct does not carry, for the output layer and loaders. */
typedef struct scalene__line_memory {
  double alloc_bytes, python_bytes, freed_bytes, copy_bytes, peak_bytes; /* loaders only */
  uint64_t alloc_samples;                                                /* loaders only */
  double live_bytes;  /* allocated at the record and still live, floored at 0 */
  double avg_bytes;   /* time-average of live_bytes over the record's events */
  double span_sec;    /* the time the average covers */
  uint64_t grow_events, shrink_events; /* events that raised / lowered live_bytes */
  size_t n_samples;                    /* loaders only: [seconds, MB] */
  const double (*samples)[2];
} scalene__line_memory_t;
void scalene__line_memory(const scalene_line_stats_t *r, scalene__line_memory_t *m);
/* Adds loaded memory values to the line record (function NULL) or to the
 * function record (function, first_line).  0, SCALENE_EINVAL, SCALENE_ENOMEM. */
int scalene__profile_add_line_memory(scalene_profile_t *p, const char *file, uint32_t line,
                                     const char *function, uint32_t first_line,
                                     const scalene__line_memory_t *m);
/* Process-wide memory, read and (loaders) replaced. */
typedef struct scalene__profile_memory {
  int memory;
  double alloc_bytes, live_bytes, max_footprint_bytes, max_footprint_python_fraction;
  const char *max_footprint_file; /* NULL when unknown */
  uint32_t max_footprint_line;
  uint64_t alloc_samples;
  size_t n_samples; /* footprint timeline [seconds, MB] */
  const double (*samples)[2];
} scalene__profile_memory_t;
void scalene__profile_memory(const scalene_profile_t *p, scalene__profile_memory_t *m);
int scalene__profile_set_memory(scalene_profile_t *p, const scalene__profile_memory_t *m);
/* The leak rule of docs/json-format.md: returns 1 when the record is
 * reported; *likelihood and *velocity_mb_s (either may be NULL) are set
 * either way. */
#define SCALENE__LEAK_LIKELIHOOD 0.95
#define SCALENE__LEAK_LIVE_SHARE 0.01
int scalene__leak(const scalene_line_stats_t *r, double elapsed_sec, double *likelihood,
                  double *velocity_mb_s);

/* stats.c: whether a profile knows its seconds.  A Scalene profile
 * without total_cpu_sec and elapsed_time_sec has only shares; the loader
 * then charges `units` (100) in place of seconds and marks the profile,
 * and the output layer shows shares only (text) and writes no seconds
 * (JSON).  The mark holds while the profile's elapsed time is 0 and its
 * total is still `units` (anything that adds time makes it a profile of
 * seconds again); clear and merge drop it; units 0 removes it. */
void scalene__profile_mark_seconds_unknown(scalene_profile_t *p, double units);
int scalene__profile_seconds_unknown(const scalene_profile_t *p);

#endif /* SCALENE_INTERNAL_H */
