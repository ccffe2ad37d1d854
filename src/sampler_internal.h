/* libscaleneprof: declarations shared by the CPU sampler's files
 * (sampler.c, sampler_signal.c, codemap.c, symbolize.c).  Never installed.
 *
 * Who touches what:
 *  - the signal handler (sampler_signal.c) reads the code map and the
 *    sampler's options, and writes its own thread's slot: the handler-owned
 *    fields below and the producer side of the slot's ring;
 *  - the sampler's thread (sampler.c), under scalene_sampler_t.lock, owns
 *    everything else: it allocates slots and rings, arms and deletes timers
 *    and consumes the rings. */
#ifndef SCALENE_SAMPLER_INTERNAL_H
#define SCALENE_SAMPLER_INTERNAL_H

#include "internal.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ------------------------------------------------------------ code map */

/* What an executable range of the address space holds. */
enum {
  SCALENE__CODE_NONE = 0,        /* in no range known at start (dlopen'ed later, JIT, ...) */
  SCALENE__CODE_OTHER = 1,       /* the program, extension modules, other libraries */
  SCALENE__CODE_INTERPRETER = 2, /* the object that holds opts->interpreter_addr */
  SCALENE__CODE_SYSTEM = 3       /* libc, libm, libpthread, the dynamic loader, the vDSO */
};

typedef struct scalene__code_range {
  uintptr_t start, end; /* [start, end) */
  int tag;              /* SCALENE__CODE_* */
} scalene__code_range_t;

/* Sorted, non-overlapping executable PT_LOAD ranges of the objects loaded
 * when it was built.  Immutable once built, so the handler reads it freely. */
typedef struct scalene__codemap {
  scalene__code_range_t *ranges;
  size_t n;
} scalene__codemap_t;

/* Builds *m with dl_iterate_phdr.  interpreter_addr may be NULL (then no
 * range is INTERPRETER).  Returns 0 or SCALENE_ENOMEM.  Not
 * async-signal-safe. */
int scalene__codemap_build(scalene__codemap_t *m, const void *interpreter_addr);
void scalene__codemap_free(scalene__codemap_t *m);

/* The tag of the range holding pc (binary search).  Async-signal-safe. */
int scalene__codemap_lookup(const scalene__codemap_t *m, uintptr_t pc);

/* How many objects the process has loaded so far (dlpi_adds): the code map
 * is stale when it changed.  Not async-signal-safe. */
unsigned long long scalene__codemap_adds(void);

/* ------------------------------------------------------------ records */

#define SCALENE__REC_UNATTRIBUTED 0x1u /* the locator said SCALENE_LOCATE_UNATTRIBUTED */

/* One sample, as the handler writes it into its thread's ring. */
typedef struct scalene__record {
  scalene_location_t loc;
  double seconds[SCALENE_CPU_KINDS];
  uint32_t flags;
} scalene__record_t;

struct scalene_sampler;

/* One sampled thread.  Slots are allocated on the sampler's thread (or in
 * start) and freed only by scalene_sampler_free, so a late signal never
 * points into freed memory; a slot of a vanished thread is reused. */
typedef struct scalene__slot {
  /* Set by the sampler's thread before the timer is armed. */
  _Atomic int active;          /* the handler records only while this is 1 */
  pid_t tid;                   /* kernel thread id the slot belongs to */
  struct scalene_sampler *s;

  /* Handler-owned after arming (initialised before it). */
  uint64_t last_cpu_ns;        /* the thread's CPU clock at its previous sample */
  uint64_t last_utime_us;      /* its rusage at the previous sample */
  uint64_t last_stime_us;
  int primed;                  /* last_utime_us/last_stime_us are valid */

  /* Single-producer (handler), single-consumer (drain under the lock) ring. */
  scalene__record_t *rec;
  char *stk;                   /* with opts.stack_bytes: capacity stacks of stack_bytes
                                * each, stk + i * stack_bytes is record i's; else NULL */
  uint32_t mask;               /* capacity - 1; capacity is a power of two */
  _Atomic uint32_t head;       /* written by the producer only */
  _Atomic uint32_t tail;       /* written by the consumer only */

  /* Owned by the sampler's thread. */
  int in_use;
  int has_timer;
  timer_t timer;
  uint64_t seen_cpu_ns;        /* CPU clock at the last scan (tid reuse detection) */
  unsigned int seen_gen;       /* scan generation that last saw the tid */
} scalene__slot_t;

/* A symbolised pc, cached by the drain. */
typedef struct scalene__sym_entry {
  uintptr_t pc;                /* 0: empty */
  int ok;
  scalene_location_t loc;
} scalene__sym_entry_t;

struct scalene_sampler {
  scalene_sampler_options_t opts;
  scalene_profile_t *profile;

  pthread_mutex_t lock;        /* slots, rings' consumer side, symbol cache, off-CPU state */
  scalene__slot_t **slots;
  size_t n_slots, cap_slots;
  unsigned int scan_gen;
  pid_t *scan_tids;            /* scratch for the /proc/self/task scan */
  size_t cap_scan_tids;
  DIR *task_dir;               /* /proc/self/task, kept open between scans, or NULL */
  int task_dir_inherited;      /* task_dir names the parent's threads (fork) */

  /* The code map the handler reads: rebuilt on the sampler's thread when
   * objects are loaded (numpy imported after start), published with an
   * atomic store; a replaced map is kept until stop, since a handler may
   * still be reading it. */
  scalene__codemap_t *_Atomic map;
  scalene__codemap_t **old_maps;
  size_t n_old_maps;
  unsigned long long map_adds; /* dl_phdr_info.dlpi_adds when map was built */

  /* With opts.stack_bytes: the off-CPU sample's stack, and the copy the
   * drain takes of a record's stack before it frees the record (under
   * lock); NULL otherwise. */
  char *off_stack, *drain_stack;

  scalene__sym_entry_t *sym;   /* open-addressed by pc */
  size_t sym_cap, sym_n;

  /* Counters (handler increments some: lock-free atomics only). */
  _Atomic uint64_t samples, offcpu_samples, dropped, skipped, threads_armed;
  unsigned int threads_live;
  _Atomic int in_handler;      /* handlers running right now */

  /* Life cycle. */
  int running;
  int thread_started;
  pthread_t thread;
  pid_t thread_tid;
  pthread_mutex_t wake_lock;
  pthread_cond_t wake;
  int quit;                    /* under wake_lock */
  int tid_known;               /* under wake_lock */
  uint64_t tick_ns;
  unsigned int scan_every;     /* scan /proc/self/task every this many ticks */

  struct sigaction old_action; /* the disposition start found */
  int old_action_valid;
  int handler_may_run;         /* stop left the handler installed: never free the slots */

  /* Off-CPU sampling of the starting thread.  off_acc_ns is signed: a
   * run-queue wait reaches the kernel's schedstat only when the thread gets
   * the CPU back, so a tick may see less off-CPU time than zero (see
   * offcpu_step in sampler.c). */
  pid_t start_tid;
  int offcpu_on;
  uint64_t off_last_wall_ns, off_last_cpu_ns;
  int64_t off_acc_ns;
  int off_sched_fd;            /* /proc/self/task/<start_tid>/schedstat, or -1 */
  int off_stat_fd;             /* /proc/self/task/<start_tid>/stat (its state), or -1 */
  uint64_t off_last_wait_ns;   /* its run-queue wait (second field) at the last tick */
  uint64_t off_since_run_ns;   /* bound on the wall time since it last ran */
};

/* ------------------------------------------------------------ helpers */

/* The kernel thread id of the caller (a plain syscall).  Async-signal-safe. */
pid_t scalene__gettid(void);

/* The CPU clock of kernel thread tid of this process:
 * MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED), the ABI glibc's
 * pthread_getcpuclockid uses. */
clockid_t scalene__thread_cpuclock(pid_t tid);

/* Reads up to n bytes of the own process at addr; returns the number read
 * (possibly short), or -1.  Async-signal-safe. */
long scalene__safe_read_partial(void *dst, const void *addr, size_t n);

/* The process's pid for those reads, or 0 (then they ask getpid(), a
 * system call each: a sample's stack walk reads a few dozen times).  Set
 * by scalene_sampler_start, cleared in a fork()ed child (atfork_child);
 * a vfork()ed child shares the memory the stale pid names. */
extern _Atomic pid_t scalene__self_pid;

/* The SA_SIGINFO handler (sampler_signal.c). */
void scalene__sampler_handler(int signum, siginfo_t *si, void *uc);

#endif /* SCALENE_SAMPLER_INTERNAL_H */
