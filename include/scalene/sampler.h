/* libscaleneprof: the CPU sampler.
 *
 * Every thread of the process is sampled on its own CPU clock: one POSIX
 * timer per thread (timer_create on the thread's CPU clock, delivered with
 * SIGEV_THREAD_ID), so each thread is interrupted after every interval of
 * *its own* CPU time, and the handler, running on that thread, asks the
 * consumer's locator where the thread is.  The sample is charged to that
 * location as Python, native or system time (see scalene_cpu_kind_t):
 *  - system: the share of the interval the thread spent in the kernel,
 *    from its own rusage;
 *  - Python or native: by the interrupted program counter -- inside the
 *    object that holds `interpreter_addr` is Python, elsewhere native;
 *    inside libc, libm, the dynamic loader or the vDSO the caller decides.
 * With SCALENE_CLOCK_WALL, the time the starting thread spends off the
 * CPU (sleeping, blocked in I/O) is sampled from the sampler's own thread
 * and charged as system time to where that thread waits, without ever
 * interrupting it.  Off-CPU time is wall time minus CPU time minus the time
 * the thread was runnable but waiting for a CPU (preempted by other threads
 * or processes), read from its /proc/self/task/<tid>/schedstat; so "system"
 * means kernel time plus time blocked waiting (sleep, I/O, locks), not time
 * lost to other processes on a loaded machine.  On a kernel without
 * scheduler statistics (no schedstat, or it reads zeros) the run-queue wait
 * cannot be told apart and is counted as system time too.
 *
 * New threads are found by the sampler's thread at each tick
 * (/proc/self/task) and get their timer then; a thread shorter than one tick
 * may be missed.  Samples go into per-thread ring buffers, which the
 * sampler's thread drains into the profile (stats.h) at every tick.
 *
 * The kernel checks CPU timers at its scheduler tick (often 250 Hz), so an
 * interval below about 4 ms is rounded up by the kernel; every sample is
 * weighted with the CPU time the thread really used since its previous one.
 *
 * Thread-safety: the functions below are not async-signal-safe and must not
 * be called concurrently on the same sampler.  At most one sampler may run
 * in a process at a time. */
#ifndef SCALENE_SAMPLER_H
#define SCALENE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <scalene/error.h>
#include <scalene/stats.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scalene_sampler scalene_sampler_t;

/* What the locator is told about the sample. */
typedef struct scalene_sample_context {
  pid_t tid;       /* kernel thread id of the sampled thread */
  int remote;      /* 0: called in the signal handler on thread tid;
                    * 1: called on the sampler's thread while tid is off the CPU
                    *    (read its state with scalene_safe_read only) */
  void *ucontext;  /* handler: the interrupted ucontext_t; remote: NULL */
  uintptr_t pc;    /* handler: interrupted program counter; remote: 0 */
  uintptr_t sp;    /* handler: interrupted stack pointer; remote: 0 */
  uintptr_t fp;    /* handler: interrupted frame pointer; remote: 0 */
  int in_hook;     /* 1: called inside an allocation or copy hook (heap.h,
                    *    memcpy.h) on thread tid, which is at a call it made
                    *    itself: its own state is consistent and may be read
                    *    with plain loads; remote is 0, ucontext NULL, pc the
                    *    hook's caller.  0: a signal handler or remote call */
  /* The sample's stack, when the consumer asked for stacks
   * (scalene_sampler_options_t.stack_bytes) and there is room for it;
   * else stack is NULL and stack_cap 0.  The locator MAY write there, as
   * NUL-terminated text of at most stack_cap bytes with the NUL, the
   * frames it sees, outermost first, each "<file> <function>:<line>;"
   * (Scalene's frame strings, concatenated), e.g.
   * "/a/prog.py main:9;/a/prog.py inner:4;".  The buffer arrives holding
   * "" (no stack), which is what it charges when the locator leaves it.
   * The locator stays async-signal-safe while it writes it.  The stack is
   * charged with the sample's seconds (scalene_profile_add_stack). */
  char *stack;
  size_t stack_cap;
} scalene_sample_context_t;

/* Locator results. */
#define SCALENE_LOCATE_SKIP 0         /* not a thread this consumer profiles: drop the sample */
#define SCALENE_LOCATE_FOUND 1        /* *loc is filled */
#define SCALENE_LOCATE_UNATTRIBUTED 2 /* count the time in the totals, at no line */

/* Says where a thread is.  Runs inside a signal handler (ctx->remote == 0),
 * on the sampler's thread (ctx->remote == 1) or, for the heap and copy
 * samplers, inside an allocation or copy (ctx->in_hook == 1), so it must be
 * async-signal-safe: no allocation, no locks, no stdio.  It fills *loc
 * (zeroed before the call) and returns one of SCALENE_LOCATE_*. */
typedef int (*scalene_locator_fn)(const scalene_sample_context_t *ctx, scalene_location_t *loc,
                                  void *arg);

/* What time the sampler measures.  Every thread is always sampled on its
 * own CPU clock; SCALENE_CLOCK_WALL adds the time the starting thread spends
 * blocked off the CPU (sleep, I/O, locks -- not time preempted by other
 * processes), charged as system time to where it waits, so that the
 * starting thread's samples add up to its wall time (Scalene's default).
 * SCALENE_CLOCK_CPU counts CPU time only (Scalene's --use-virtual-time). */
typedef enum scalene_sampler_clock {
  SCALENE_CLOCK_WALL = 0,
  SCALENE_CLOCK_CPU = 1
} scalene_sampler_clock_t;

typedef struct scalene_sampler_options {
  size_t size;                /* sizeof(scalene_sampler_options_t); set by _init */
  uint64_t interval_ns;       /* CPU time between samples of one thread; default 10 ms */
  int signum;                 /* the timer signal; default SIGRTMIN + 4 */
  scalene_sampler_clock_t clock; /* default SCALENE_CLOCK_WALL */
  scalene_locator_fn locator; /* required */
  void *locator_arg;
  const void *interpreter_addr; /* any address inside the interpreter, or NULL */
  unsigned int ring_capacity;   /* samples buffered per thread; default 512 */
  size_t stack_bytes; /* 0 (the default): no stacks.  Else 16 .. 65536: the
                       * room for one sample's stack text (NUL included) that
                       * the locator gets in ctx->stack; the sampler then
                       * keeps ring_capacity such buffers per thread (allocated
                       * when the thread is armed, never in the handler) and
                       * one for off-CPU samples, and charges every non-empty
                       * stack to the profile's stack table (stats.h).  Read
                       * only when `size` covers it. */
} scalene_sampler_options_t;

/* Sets every field of *opts to its default (locator to NULL). */
SCALENE_API void scalene_sampler_options_init(scalene_sampler_options_t *opts);

/* Makes a sampler that charges its samples to `profile` (which must outlive
 * it).  Checks the options: SCALENE_EINVAL names the bad one in *err.
 * Returns 0 and sets *out, or a negative code. */
SCALENE_API int scalene_sampler_new(const scalene_sampler_options_t *opts,
                                    scalene_profile_t *profile, scalene_sampler_t **out,
                                    scalene_error_t *err);

/* Installs the signal handler, starts the sampler's thread and arms a timer
 * on every thread of the process.  The thread that calls it is the one whose
 * off-CPU time is sampled (with SCALENE_CLOCK_WALL).  Fails with
 * SCALENE_EBUSY, and a one-line message in *err naming the signal, when the
 * signal already has a handler other than the default; SCALENE_ESTATE when
 * this or another sampler runs. */
SCALENE_API int scalene_sampler_start(scalene_sampler_t *s, scalene_error_t *err);

/* Disarms every timer, drains what was buffered into the profile, stops the
 * sampler's thread and restores the signal's previous disposition.  Returns 0
 * or SCALENE_ESTATE when the sampler is not running.  It may be started again. */
SCALENE_API int scalene_sampler_stop(scalene_sampler_t *s);

/* Drains the buffered samples into the profile now (also done at every tick). */
SCALENE_API int scalene_sampler_drain(scalene_sampler_t *s);

/* Stops the sampler if it runs, then frees it.  NULL is allowed. */
SCALENE_API void scalene_sampler_free(scalene_sampler_t *s);

/* Counters, for tests and diagnostics. */
typedef struct scalene_sampler_stats {
  size_t size;               /* set by the caller */
  uint64_t samples;          /* samples taken in handlers */
  uint64_t offcpu_samples;   /* off-CPU samples taken by the sampler's thread */
  uint64_t dropped;          /* lost because a ring was full */
  uint64_t skipped;          /* the locator said SCALENE_LOCATE_SKIP */
  uint64_t threads_armed;    /* timers created so far */
  unsigned int threads_live; /* threads with a timer now */
} scalene_sampler_stats_t;

SCALENE_API int scalene_sampler_get_stats(const scalene_sampler_t *s, scalene_sampler_stats_t *st);

/* Copies n bytes from addr into dst without faulting when addr is not
 * readable (process_vm_readv on the own process).  Returns 0, or -1 when
 * some byte could not be read.  Async-signal-safe.  Locators use it in
 * remote mode, where the memory they read may change under them. */
SCALENE_API int scalene_safe_read(void *dst, const void *addr, size_t n);

/* Symbolises a code address: function name (dladdr), and file and line
 * through libdw when the library was built with it.  Fills *loc; returns 0,
 * or SCALENE_EINVAL when nothing is known about pc.  Not async-signal-safe. */
SCALENE_API int scalene_symbolize(uintptr_t pc, scalene_location_t *loc);

#ifdef __cplusplus
}
#endif
#endif /* SCALENE_SAMPLER_H */
