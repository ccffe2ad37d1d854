/* libscaleneprof: the CPU sampler (sampler.h).
 *
 * Life cycle.  start installs the handler (sampler_signal.c), starts the
 * sampler's thread and arms one POSIX timer per thread of the process on
 * that thread's own CPU clock, delivered to that thread (SIGEV_THREAD_ID).
 * The sampler's thread, with every signal blocked and never sampled itself,
 * ticks every interval of wall time (clamped to [1 ms, 50 ms]); at a tick it
 *   - scans /proc/self/task (every few ticks when the tick is short): arms
 *     new threads (their slot and ring are allocated here, never in the
 *     handler), retires vanished ones (drain, then timer_delete), and
 *     re-arms a tid that a new thread has reused (its CPU clock went
 *     backwards), since the old timer does
 *     not follow the tid;
 *   - drains every ring into the profile, symbolising pc-only locations
 *     (and, with opts.stack_bytes, charging each record's stack text to the
 *     profile's stack table: the buffers are allocated with the ring);
 *   - with SCALENE_CLOCK_WALL, accumulates the starting thread's
 *     off-CPU time, Δwall − Δcpu − Δ(run-queue wait, from the thread's
 *     /proc schedstat), and charges it as system time to where the locator
 *     (remote mode) says that thread waits, each time it reaches one
 *     interval.
 * stop deletes every timer, waits (bounded) until no thread of the process
 * has the signal pending and no handler runs, drains, and only then
 * restores the previous disposition, so a late signal never meets SIG_DFL
 * (the default action of a real-time signal kills the process).
 *
 * Locking: `lock` guards the slots, the rings' consumer side, the symbol
 * cache and the off-CPU state; it is never taken in the handler.  The
 * process-wide g_mutex serialises start and stop, and fork() (pthread_atfork
 * takes both, so the child never inherits them held). */
#include "sampler_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NSEC_PER_SEC 1000000000ull
#define MIN_INTERVAL_NS 1000ull               /* 1 µs */
#define MAX_INTERVAL_NS (10ull * NSEC_PER_SEC) /* 10 s */
#define MIN_TICK_NS 1000000ull                /* 1 ms */
#define MAX_TICK_NS 50000000ull               /* 50 ms */
#define SCAN_PERIOD_NS 5000000ull             /* scan /proc/self/task at least this often */
#define STOP_WAIT_NS 200000000ull             /* how long stop waits for pending signals */
#define DEFAULT_INTERVAL_NS 10000000ull
#define YOUNG_THREAD_NS 100000000ull          /* 100 ms: see arm() */
#define DEFAULT_RING_CAPACITY 512u
#define MAX_RING_CAPACITY (1u << 16)
#define MIN_STACK_BYTES 16u
#define MAX_STACK_BYTES 65536u

/* ------------------------------------------------------------ process-wide state */

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static scalene_sampler_t *g_running; /* under g_mutex */
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static scalene_sampler_t *g_fork_s;  /* the running sampler across fork() */

/* A stop that could not prove that no signal was still pending leaves our
 * handler installed (it ignores signals of inactive slots); the disposition
 * to restore is remembered here, so a later start on the same signal
 * accepts our own handler and restores the original one at its stop. */
#define MAX_SIG 65
static int g_left_installed[MAX_SIG];
static struct sigaction g_left_old[MAX_SIG];

static void maps_release(scalene_sampler_t *s);

/* ------------------------------------------------------------ small helpers */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static int clock_ns(clockid_t clk, uint64_t *out) {
  struct timespec ts;
  if (clock_gettime(clk, &ts) != 0) return -1;
  *out = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
  return 0;
}

static struct timespec ns_to_ts(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / NSEC_PER_SEC), (long)(ns % NSEC_PER_SEC)};
  return ts;
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts = ns_to_ts(ns);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* "SIGPROF", "SIGRTMIN+4", or "signal 32". */
static void signal_name(int sig, char *buf, size_t n) {
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
    if (sig == SIGRTMIN)
      snprintf(buf, n, "SIGRTMIN");
    else
      snprintf(buf, n, "SIGRTMIN+%d", sig - SIGRTMIN);
    return;
  }
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev != NULL)
    snprintf(buf, n, "SIG%s", abbrev);
  else
    snprintf(buf, n, "signal %d", sig);
}

static int signum_valid(int sig) {
  if (sig <= 0 || sig > SIGRTMAX || sig >= MAX_SIG) return 0;
  if (sig == SIGKILL || sig == SIGSTOP) return 0;
  if (sig >= 32 && sig < SIGRTMIN) return 0; /* reserved by the C library */
  return 1;
}

/* ------------------------------------------------------------ options */

void scalene_sampler_options_init(scalene_sampler_options_t *opts) {
  if (opts == NULL) return;
  memset(opts, 0, sizeof *opts);
  opts->size = sizeof *opts;
  opts->interval_ns = DEFAULT_INTERVAL_NS;
  opts->signum = SIGRTMIN + 4;
  opts->clock = SCALENE_CLOCK_WALL;
  opts->locator = NULL;
  opts->locator_arg = NULL;
  opts->interpreter_addr = NULL;
  opts->ring_capacity = DEFAULT_RING_CAPACITY;
  opts->stack_bytes = 0;
}

static int validate(const scalene_sampler_options_t *o, scalene_error_t *err) {
  if (o->interval_ns < MIN_INTERVAL_NS || o->interval_ns > MAX_INTERVAL_NS) {
    scalene__error_set(err, NULL, 0, 0, -1,
                       "interval_ns: %llu is out of range (1000 .. 10000000000 ns)",
                       (unsigned long long)o->interval_ns);
    return SCALENE_EINVAL;
  }
  if (!signum_valid(o->signum)) {
    scalene__error_set(err, NULL, 0, 0, -1,
                       "signum: %d is not a signal a timer may use (1 .. %d, not SIGKILL, "
                       "SIGSTOP or a signal reserved by the C library)",
                       o->signum, SIGRTMAX);
    return SCALENE_EINVAL;
  }
  if (o->locator == NULL) {
    scalene__error_set(err, NULL, 0, 0, -1, "locator: a locator function is required");
    return SCALENE_EINVAL;
  }
  if (o->ring_capacity < 2 || o->ring_capacity > MAX_RING_CAPACITY) {
    scalene__error_set(err, NULL, 0, 0, -1, "ring_capacity: %u is out of range (2 .. %u)",
                       o->ring_capacity, MAX_RING_CAPACITY);
    return SCALENE_EINVAL;
  }
  if (o->stack_bytes != 0 &&
      (o->stack_bytes < MIN_STACK_BYTES || o->stack_bytes > MAX_STACK_BYTES)) {
    scalene__error_set(err, NULL, 0, 0, -1, "stack_bytes: %zu is out of range (0, or %u .. %u)",
                       o->stack_bytes, MIN_STACK_BYTES, MAX_STACK_BYTES);
    return SCALENE_EINVAL;
  }
  if (o->clock != SCALENE_CLOCK_WALL && o->clock != SCALENE_CLOCK_CPU) {
    scalene__error_set(err, NULL, 0, 0, -1, "clock: %d is not a scalene_sampler_clock_t",
                       (int)o->clock);
    return SCALENE_EINVAL;
  }
  return 0;
}

/* ------------------------------------------------------------ fork */

static void atfork_prepare(void) {
  pthread_mutex_lock(&g_mutex);
  g_fork_s = g_running;
  if (g_fork_s != NULL) pthread_mutex_lock(&g_fork_s->lock);
}

static void atfork_parent(void) {
  if (g_fork_s != NULL) pthread_mutex_unlock(&g_fork_s->lock);
  g_fork_s = NULL;
  pthread_mutex_unlock(&g_mutex);
}

/* The child has neither the sampler's thread nor any timer (POSIX timers are
 * not inherited): mark the sampler stopped so that nothing waits for them.
 * The handler stays installed and ignores stray signals (no slot is active,
 * and no slot's tid is the child's). */
static void atfork_child(void) {
  atomic_store(&scalene__self_pid, 0);
  scalene_sampler_t *s = g_fork_s;
  if (s != NULL) {
    for (size_t i = 0; i < s->n_slots; i++) {
      scalene__slot_t *sl = s->slots[i];
      atomic_store(&sl->active, 0);
      sl->in_use = 0;
      sl->has_timer = 0;
    }
    s->threads_live = 0;
    s->running = 0;
    s->thread_started = 0;
    s->offcpu_on = 0;
    /* The /proc files name the parent's thread. */
    if (s->off_sched_fd >= 0) close(s->off_sched_fd);
    if (s->off_stat_fd >= 0) close(s->off_stat_fd);
    s->off_sched_fd = s->off_stat_fd = -1;
    /* So does /proc/self/task opened then: the next scan opens it again
     * (not here: closedir frees). */
    s->task_dir_inherited = s->task_dir != NULL;
    atomic_store(&s->in_handler, 0);
    pthread_mutex_init(&s->wake_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    int sig = s->opts.signum;
    g_left_installed[sig] = 1;
    g_left_old[sig] = s->old_action;
    pthread_mutex_unlock(&s->lock);
  }
  g_running = NULL;
  g_fork_s = NULL;
  pthread_mutex_unlock(&g_mutex);
}

static void register_atfork(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* ------------------------------------------------------------ new / free */

static uint32_t round_pow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

int scalene_sampler_new(const scalene_sampler_options_t *opts, scalene_profile_t *profile,
                        scalene_sampler_t **out, scalene_error_t *err) {
  if (out != NULL) *out = NULL;
  if (opts == NULL || out == NULL || profile == NULL) {
    scalene__error_set(err, NULL, 0, 0, -1, "%s: must not be NULL",
                       opts == NULL ? "opts" : out == NULL ? "out" : "profile");
    return SCALENE_EINVAL;
  }
  if (opts->size == 0) {
    scalene__error_set(err, NULL, 0, 0, -1,
                       "size: options were not initialised with scalene_sampler_options_init");
    return SCALENE_EINVAL;
  }
  /* Fields past the caller's size keep their defaults. */
  scalene_sampler_options_t o;
  scalene_sampler_options_init(&o);
  memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
  o.size = sizeof o;
  int rc = validate(&o, err);
  if (rc != 0) return rc;

  scalene_sampler_t *s = calloc(1, sizeof *s);
  if (s == NULL) return SCALENE_ENOMEM;
  s->opts = o;
  s->opts.ring_capacity = round_pow2(o.ring_capacity);
  if (o.stack_bytes > 0) {
    s->off_stack = calloc(1, o.stack_bytes);
    s->drain_stack = calloc(1, o.stack_bytes);
    if (s->off_stack == NULL || s->drain_stack == NULL) {
      free(s->off_stack);
      free(s->drain_stack);
      free(s);
      return SCALENE_ENOMEM;
    }
  }
  s->profile = profile;
  s->off_sched_fd = s->off_stat_fd = -1;
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->wake_lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->wake, &ca);
  pthread_condattr_destroy(&ca);
  uint64_t tick = o.interval_ns;
  if (tick < MIN_TICK_NS) tick = MIN_TICK_NS;
  if (tick > MAX_TICK_NS) tick = MAX_TICK_NS;
  s->tick_ns = tick;
  s->scan_every = tick >= SCAN_PERIOD_NS ? 1u : (unsigned int)(SCAN_PERIOD_NS / tick);
  pthread_once(&g_atfork_once, register_atfork);
  *out = s;
  return 0;
}

static void task_dir_close(scalene_sampler_t *s) {
  if (s->task_dir != NULL) closedir(s->task_dir);
  s->task_dir = NULL;
  s->task_dir_inherited = 0;
}

void scalene_sampler_free(scalene_sampler_t *s) {
  if (s == NULL) return;
  if (s->running) scalene_sampler_stop(s);
  /* When stop could not prove that no signal was pending, a late one may
   * still reach the handler, which reads its slot and the sampler: keep
   * that memory (a bounded leak) rather than let it read freed memory. */
  if (s->handler_may_run) return;
  for (size_t i = 0; i < s->n_slots; i++) {
    free(s->slots[i]->rec);
    free(s->slots[i]->stk);
    free(s->slots[i]);
  }
  free(s->slots);
  free(s->off_stack);
  free(s->drain_stack);
  free(s->scan_tids);
  task_dir_close(s);
  free(s->sym);
  maps_release(s);
  pthread_mutex_destroy(&s->lock);
  pthread_mutex_destroy(&s->wake_lock);
  pthread_cond_destroy(&s->wake);
  free(s);
}

/* ------------------------------------------------------------ code maps */

/* Frees the current map and every replaced one.  Only while no handler can
 * read them: before start, or when the sampler is freed. */
static void maps_release(scalene_sampler_t *s) {
  scalene__codemap_t *m = atomic_exchange(&s->map, NULL);
  if (m != NULL) {
    scalene__codemap_free(m);
    free(m);
  }
  for (size_t i = 0; i < s->n_old_maps; i++) {
    scalene__codemap_free(s->old_maps[i]);
    free(s->old_maps[i]);
  }
  free(s->old_maps);
  s->old_maps = NULL;
  s->n_old_maps = 0;
  s->map_adds = 0;
}

/* Builds a new code map when objects were loaded since the current one (or
 * always, with force) and publishes it.  The replaced map stays allocated
 * until maps_release: a handler on another thread may be searching it. */
static int map_refresh(scalene_sampler_t *s, int force) {
  unsigned long long adds = scalene__codemap_adds();
  if (!force && adds == s->map_adds) return 0;
  scalene__codemap_t *m = calloc(1, sizeof *m);
  scalene__codemap_t **old = realloc(s->old_maps, (s->n_old_maps + 1) * sizeof *old);
  if (old != NULL) s->old_maps = old;
  if (m == NULL || old == NULL || scalene__codemap_build(m, s->opts.interpreter_addr) != 0) {
    free(m);
    return SCALENE_ENOMEM;
  }
  scalene__codemap_t *prev = atomic_exchange(&s->map, m);
  if (prev != NULL) s->old_maps[s->n_old_maps++] = prev;
  s->map_adds = adds;
  return 0;
}

/* ------------------------------------------------------------ symbol cache */

static size_t sym_hash(uintptr_t pc, size_t cap) {
  return (size_t)(((uint64_t)pc * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

/* Fills *loc from the pc-only location through scalene_symbolize, once per
 * distinct pc.  Returns 1 when the pc is known, 0 otherwise. */
static int symbolize_cached(scalene_sampler_t *s, scalene_location_t *loc) {
  uintptr_t pc = loc->pc;
  if (s->sym_n * 2 >= s->sym_cap) {
    size_t cap = s->sym_cap ? s->sym_cap * 2 : 256;
    scalene__sym_entry_t *t = calloc(cap, sizeof *t);
    if (t != NULL) {
      for (size_t i = 0; i < s->sym_cap; i++) {
        if (s->sym[i].pc == 0) continue;
        size_t j = sym_hash(s->sym[i].pc, cap);
        while (t[j].pc != 0) j = (j + 1) & (cap - 1);
        t[j] = s->sym[i];
      }
      free(s->sym);
      s->sym = t;
      s->sym_cap = cap;
    }
  }
  if (s->sym_cap == 0 || s->sym_n * 2 >= s->sym_cap) {
    /* No memory for the cache: symbolise uncached. */
    scalene_location_t l;
    memset(&l, 0, sizeof l);
    if (scalene_symbolize(pc, &l) != 0) return 0;
    *loc = l;
    return 1;
  }
  size_t j = sym_hash(pc, s->sym_cap);
  while (s->sym[j].pc != 0 && s->sym[j].pc != pc) j = (j + 1) & (s->sym_cap - 1);
  scalene__sym_entry_t *e = &s->sym[j];
  if (e->pc == 0) {
    e->pc = pc;
    memset(&e->loc, 0, sizeof e->loc);
    e->ok = scalene_symbolize(pc, &e->loc) == 0;
    e->loc.pc = pc;
    s->sym_n++;
  }
  if (!e->ok) return 0;
  *loc = e->loc;
  return 1;
}

/* Charges one sample to the profile, and its stack (NULL or "": none) to
 * the profile's stack table.  Called with s->lock held. */
static void charge(scalene_sampler_t *s, scalene_location_t *loc, int unattributed,
                   const double seconds[SCALENE_CPU_KINDS], const char *stack) {
  const scalene_location_t *where = loc;
  if (unattributed) {
    where = NULL;
  } else if (loc->file[0] == '\0') {
    if (loc->pc == 0 || !symbolize_cached(s, loc)) where = NULL;
  }
  scalene_profile_add_cpu(s->profile, where, seconds, 1);
  if (stack != NULL && stack[0] != '\0') scalene_profile_add_stack(s->profile, stack, seconds, 1);
}

/* ------------------------------------------------------------ rings */

static void drain_slot(scalene_sampler_t *s, scalene__slot_t *sl) {
  if (sl->rec == NULL) return;
  uint32_t t = atomic_load_explicit(&sl->tail, memory_order_relaxed);
  uint32_t h = atomic_load_explicit(&sl->head, memory_order_acquire);
  size_t sb = s->opts.stack_bytes;
  while (t != h) {
    scalene__record_t r = sl->rec[t & sl->mask];
    const char *stack = NULL;
    if (sl->stk != NULL && s->drain_stack != NULL) {
      /* Copied before tail frees the record for the handler. */
      memcpy(s->drain_stack, sl->stk + (size_t)(t & sl->mask) * sb, sb);
      s->drain_stack[sb - 1] = '\0';
      stack = s->drain_stack;
    }
    t++;
    atomic_store_explicit(&sl->tail, t, memory_order_release);
    charge(s, &r.loc, (r.flags & SCALENE__REC_UNATTRIBUTED) != 0, r.seconds, stack);
  }
}

static void drain_all(scalene_sampler_t *s) {
  for (size_t i = 0; i < s->n_slots; i++) drain_slot(s, s->slots[i]);
}

/* ------------------------------------------------------------ timers */

static scalene__slot_t *slot_get(scalene_sampler_t *s) {
  for (size_t i = 0; i < s->n_slots; i++)
    if (!s->slots[i]->in_use) return s->slots[i];
  if (s->n_slots == s->cap_slots) {
    size_t cap = s->cap_slots ? s->cap_slots * 2 : 16;
    scalene__slot_t **v = realloc(s->slots, cap * sizeof *v);
    if (v == NULL) return NULL;
    s->slots = v;
    s->cap_slots = cap;
  }
  scalene__slot_t *sl = calloc(1, sizeof *sl);
  if (sl == NULL) return NULL;
  sl->rec = calloc(s->opts.ring_capacity, sizeof *sl->rec);
  if (sl->rec != NULL && s->opts.stack_bytes > 0)
    sl->stk = calloc(s->opts.ring_capacity, s->opts.stack_bytes);
  if (sl->rec == NULL || (s->opts.stack_bytes > 0 && sl->stk == NULL)) {
    free(sl->rec);
    free(sl);
    return NULL;
  }
  sl->mask = s->opts.ring_capacity - 1;
  sl->s = s;
  s->slots[s->n_slots++] = sl;
  return sl;
}

/* Whether kernel thread tid blocks signal sig now (SigBlk in its status).
 * Such a thread (a helper thread of some library, or one inside
 * pthread_create's window with every signal blocked) is not armed: its
 * timer's signal would stay pending, and stop would have to wait for it.
 * It stays unknown, so the next scan looks at it again. */
static int thread_blocks(pid_t tid, int sig) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 1; /* gone */
  char line[256];
  int blocked = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long long mask;
    if (sscanf(line, "SigBlk: %llx", &mask) == 1) {
      blocked = (mask >> (sig - 1)) & 1u;
      break;
    }
  }
  fclose(f);
  return blocked;
}

/* The rusage baseline of a thread being armed, so that its first sample's
 * system share covers only the time since arming.  The caller's own comes
 * from getrusage; another thread's from /proc/self/task/<tid>/stat (fields
 * 14 and 15, in clock ticks: the same kernel values, truncated to 10 ms).
 * Returns 0, or -1 when unknown (the first sample then uses the thread's
 * split since it began). */
static int rusage_baseline(pid_t tid, uint64_t *utime_us, uint64_t *stime_us) {
  if (tid == scalene__gettid()) {
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0) return -1;
    *utime_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
    *stime_us = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    return 0;
  }
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *q = strrchr(buf, ')'); /* the command name may hold anything */
  if (q == NULL) return -1;
  unsigned long long ut, st;
  /* After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt
   * majflt cmajflt utime stime. */
  if (sscanf(q + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) return -1;
  *utime_us = ut * 1000000ull / (unsigned long long)hz;
  *stime_us = st * 1000000ull / (unsigned long long)hz;
  return 0;
}

/* Arms a timer for tid on slot sl (not in use, ring drained).  Returns 0 or
 * -1 (the thread is gone, or timer_create failed). */
static int arm(scalene_sampler_t *s, scalene__slot_t *sl, pid_t tid) {
  clockid_t clk = scalene__thread_cpuclock(tid);
  uint64_t cpu;
  if (clock_ns(clk, &cpu) != 0) return -1;
  sl->s = s;
  sl->tid = tid;
  sl->last_cpu_ns = cpu;
  sl->seen_cpu_ns = cpu;
  sl->last_utime_us = sl->last_stime_us = 0;
  /* A young thread's split since it began is its split since arming, near
   * enough; an old one needs the baseline (10 ms granularity from /proc). */
  sl->primed = (tid == scalene__gettid() || cpu >= YOUNG_THREAD_NS) &&
               rusage_baseline(tid, &sl->last_utime_us, &sl->last_stime_us) == 0;
  atomic_store(&sl->head, 0);
  atomic_store(&sl->tail, 0);
  atomic_store(&sl->active, 1);

  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = s->opts.signum;
  sev.sigev_value.sival_ptr = sl;
#ifdef sigev_notify_thread_id
  sev.sigev_notify_thread_id = tid;
#else
  sev._sigev_un._tid = tid;
#endif
  if (timer_create(clk, &sev, &sl->timer) != 0) {
    atomic_store(&sl->active, 0);
    return -1;
  }
  struct itimerspec its;
  its.it_value = ns_to_ts(s->opts.interval_ns);
  its.it_interval = its.it_value;
  if (timer_settime(sl->timer, 0, &its, NULL) != 0) {
    timer_delete(sl->timer);
    atomic_store(&sl->active, 0);
    return -1;
  }
  sl->has_timer = 1;
  sl->in_use = 1;
  sl->seen_gen = s->scan_gen;
  atomic_fetch_add(&s->threads_armed, 1);
  s->threads_live++;
  return 0;
}

/* Deletes sl's timer and drains its ring; the slot becomes free. */
static void retire(scalene_sampler_t *s, scalene__slot_t *sl) {
  if (sl->has_timer) {
    timer_delete(sl->timer);
    sl->has_timer = 0;
    s->threads_live--;
  }
  drain_slot(s, sl);
  atomic_store(&sl->active, 0);
  sl->in_use = 0;
}

static int cmp_pid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return x < y ? -1 : x > y;
}

/* /proc/self/task, read again from its start.  The directory stays open
 * from one scan to the next: opening it costs a path walk through
 * /proc/self, which at a scan every tick was most of the sampler thread's
 * time (about 0.8 % of a CPU-bound program on a paravirtualised host);
 * rewinding and re-reading lists the threads as they are now. */
static DIR *task_dir_rewound(scalene_sampler_t *s) {
  if (s->task_dir_inherited) task_dir_close(s);
  if (s->task_dir == NULL) {
    scalene_heap_enter(); /* the profiler's memory, also when start() opens it */
    s->task_dir = opendir("/proc/self/task");
    scalene_heap_leave();
  } else {
    rewinddir(s->task_dir);
  }
  return s->task_dir;
}

/* Brings the set of armed threads in line with /proc/self/task. */
static void scan(scalene_sampler_t *s) {
  DIR *d = task_dir_rewound(s);
  if (d == NULL) return;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (n == s->cap_scan_tids) {
      size_t cap = s->cap_scan_tids ? s->cap_scan_tids * 2 : 64;
      pid_t *v = realloc(s->scan_tids, cap * sizeof *v);
      if (v == NULL) break;
      s->scan_tids = v;
      s->cap_scan_tids = cap;
    }
    s->scan_tids[n++] = (pid_t)atoi(e->d_name);
  }
  if (n == 0) return;
  qsort(s->scan_tids, n, sizeof(pid_t), cmp_pid);

  unsigned int gen = ++s->scan_gen;
  /* Threads we know: still there (maybe reused), or gone. */
  for (size_t i = 0; i < s->n_slots; i++) {
    scalene__slot_t *sl = s->slots[i];
    if (!sl->in_use) continue;
    if (bsearch(&sl->tid, s->scan_tids, n, sizeof(pid_t), cmp_pid) == NULL) {
      retire(s, sl);
      continue;
    }
    uint64_t cpu;
    if (clock_ns(scalene__thread_cpuclock(sl->tid), &cpu) != 0) {
      retire(s, sl);
      continue;
    }
    /* A timer that reads disarmed is no sign of a dead thread: the kernel
     * re-arms a periodic timer only when its signal is delivered, so a
     * thread kept off the CPU with its signal pending reads zero too
     * (re-arming it then lost that thread's CPU time under load).  Tids
     * come back only after the pid space wraps, which a scan interval of
     * a few milliseconds does not see; a CPU clock that went backwards
     * is the sign that one did. */
    if (cpu < sl->seen_cpu_ns) {
      /* A new thread has this tid. */
      pid_t tid = sl->tid;
      retire(s, sl);
      if (arm(s, sl, tid) != 0) continue;
    }
    sl->seen_cpu_ns = cpu;
    sl->seen_gen = gen;
  }
  /* New threads. */
  for (size_t k = 0; k < n; k++) {
    pid_t tid = s->scan_tids[k];
    if (tid == s->thread_tid) continue;
    int known = 0;
    for (size_t i = 0; i < s->n_slots && !known; i++)
      known = s->slots[i]->in_use && s->slots[i]->tid == tid;
    if (known || thread_blocks(tid, s->opts.signum)) continue;
    scalene__slot_t *sl = slot_get(s);
    if (sl == NULL) break;
    arm(s, sl, tid);
  }
}

/* ------------------------------------------------------------ off-CPU */

/* The starting thread's scheduler statistics,
 * /proc/self/task/<tid>/schedstat: "<on-CPU ns> <run-queue wait ns>
 * <timeslices>".  The file stays open while the sampler runs and is re-read
 * with pread at offset 0 (seq_file restarts there), one system call a tick.
 * A kernel without scheduler statistics has no such file, or prints
 * "0 0 0": then schedstat_wait fails and off-CPU time falls back to
 * Δwall − Δcpu.  Returns 0 and sets *wait_ns, or -1. */
static int schedstat_wait(int fd, uint64_t *wait_ns) {
  char buf[96];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char *end;
  unsigned long long run = strtoull(buf, &end, 10);
  if (end == buf || run == 0) return -1; /* "0 0 0": the thread has surely run */
  const char *q = end;
  unsigned long long wait = strtoull(q, &end, 10);
  if (end == q) return -1;
  *wait_ns = wait;
  return 0;
}

/* Whether the thread behind fd (its /proc stat) is runnable now: state R,
 * on a CPU or waiting for one.  "<tid> (<comm>) <state> ...": comm is at
 * most 15 bytes, so the state is within the first 64, after the last ')'
 * there (the numbers that follow hold none).  Unknown counts as not. */
static int stat_runnable(int fd) {
  char buf[64];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char *q = strrchr(buf, ')');
  return q != NULL && q[1] == ' ' && q[2] == 'R';
}

static void schedstat_close(scalene_sampler_t *s) {
  if (s->off_sched_fd >= 0) close(s->off_sched_fd);
  if (s->off_stat_fd >= 0) close(s->off_stat_fd);
  s->off_sched_fd = s->off_stat_fd = -1;
}

static void schedstat_open(scalene_sampler_t *s) {
  char path[64];
  s->off_sched_fd = s->off_stat_fd = -1;
  s->off_since_run_ns = 0;
  snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)s->start_tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (schedstat_wait(fd, &s->off_last_wait_ns) != 0) {
    close(fd);
    return;
  }
  s->off_sched_fd = fd;
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)s->start_tid);
  s->off_stat_fd = open(path, O_RDONLY | O_CLOEXEC);
}

/* Off-CPU time of the starting thread, summed over ticks and charged as
 * system time once it reaches one interval (or at stop, when `final`).  A
 * tick's share goes to where the thread is at the end of that tick, so at
 * most one tick of waiting lands on a neighbour.
 *
 * Off-CPU time is wall time minus CPU time minus the time the thread sat in
 * the run queue, runnable but waiting for a CPU (preempted by other threads
 * or processes): that is not the program's doing, so "system" means kernel
 * time plus time blocked (sleep, I/O, locks) only.  The kernel adds a
 * run-queue wait to schedstat only when the thread gets the CPU back, so a
 * tick that falls inside a wait counts it as off-CPU, and a later tick
 * subtracts it again.  Two things keep that pending wait from being
 * charged:
 *  - when the sum is due to be charged and the thread is runnable now (its
 *    /proc stat says R: read only then, so a spinning thread costs one
 *    pread a tick), the part that may be a pending wait -- the wall time
 *    since the thread was last seen running, off_since_run_ns: the tick's
 *    wall time minus its CPU time if it ran in the tick, else summed over
 *    the ticks since it did -- is held back; a blocked thread (S, D, ...)
 *    has no pending wait, since it ran to block;
 *  - the sum is signed: the late subtraction is never lost, even for a
 *    wait that got charged anyway (the thread got the CPU and blocked
 *    again between the two reads), and the negative balance it then leaves
 *    cancels the same amount of later off-CPU time; a negative amount is
 *    never charged.
 * Without schedstat the run-queue term is 0 and nothing is held back (the
 * behaviour before it was read). */
static void offcpu_step(scalene_sampler_t *s, int final) {
  if (!s->offcpu_on) return;
  uint64_t wall = mono_ns(), cpu;
  if (clock_ns(scalene__thread_cpuclock(s->start_tid), &cpu) != 0) {
    s->offcpu_on = 0; /* the thread has ended */
    schedstat_close(s);
    return;
  }
  uint64_t dw = wall - s->off_last_wall_ns;
  uint64_t dc = cpu - s->off_last_cpu_ns;
  int64_t off = (int64_t)dw - (int64_t)dc;
  if (s->off_sched_fd >= 0) {
    uint64_t wait;
    if (schedstat_wait(s->off_sched_fd, &wait) == 0) {
      if (wait >= s->off_last_wait_ns) off -= (int64_t)(wait - s->off_last_wait_ns);
      s->off_last_wait_ns = wait;
    } else {
      schedstat_close(s); /* fall back to Δwall − Δcpu */
    }
  }
  if (cpu > s->off_last_cpu_ns)
    s->off_since_run_ns = dw > dc ? dw - dc : 0;
  else
    s->off_since_run_ns += dw;
  s->off_acc_ns += off;
  s->off_last_wall_ns = wall;
  s->off_last_cpu_ns = cpu;
  if (s->off_acc_ns <= 0 || (!final && s->off_acc_ns < (int64_t)s->opts.interval_ns)) return;

  int64_t amount = s->off_acc_ns;
  if (s->off_sched_fd >= 0 && s->off_since_run_ns > 0 && s->off_stat_fd >= 0 &&
      stat_runnable(s->off_stat_fd)) {
    amount -= s->off_since_run_ns > (uint64_t)amount ? amount : (int64_t)s->off_since_run_ns;
    if (amount <= 0 || (!final && amount < (int64_t)s->opts.interval_ns)) return;
  }

  scalene_sample_context_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.tid = s->start_tid;
  ctx.remote = 1;
  if (s->off_stack != NULL) {
    ctx.stack = s->off_stack;
    ctx.stack_cap = s->opts.stack_bytes;
    ctx.stack[0] = '\0';
  }
  scalene_location_t loc;
  memset(&loc, 0, sizeof loc);
  int r = s->opts.locator(&ctx, &loc, s->opts.locator_arg);
  double sec[SCALENE_CPU_KINDS] = {0.0, 0.0, (double)amount * 1e-9};
  s->off_acc_ns -= amount;
  if (r == SCALENE_LOCATE_FOUND || r == SCALENE_LOCATE_UNATTRIBUTED) {
    if (ctx.stack != NULL) ctx.stack[ctx.stack_cap - 1] = '\0';
    charge(s, &loc, r == SCALENE_LOCATE_UNATTRIBUTED, sec, ctx.stack);
    atomic_fetch_add(&s->offcpu_samples, 1);
  } else {
    atomic_fetch_add(&s->skipped, 1);
  }
}

/* ------------------------------------------------------------ the sampler's thread */

static void *sampler_main(void *arg) {
  scalene_sampler_t *s = arg;
  /* This thread's own allocations (the /proc scans, symbolisation) are the
   * profiler's, not the program's: a heap sampler must not count them. */
  scalene_heap_enter();
  pthread_mutex_lock(&s->wake_lock);
  s->thread_tid = scalene__gettid();
  s->tid_known = 1;
  pthread_cond_broadcast(&s->wake);
  uint64_t next = mono_ns() + s->tick_ns;
  unsigned long tick = 0;
  while (!s->quit) {
    struct timespec dl = ns_to_ts(next);
    int rc = 0;
    while (!s->quit && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&s->wake, &s->wake_lock, &dl);
    if (s->quit) break;
    pthread_mutex_unlock(&s->wake_lock);

    pthread_mutex_lock(&s->lock);
    if (++tick % s->scan_every == 0) {
      scan(s);
      map_refresh(s, 0); /* objects loaded since: extensions imported late */
    }
    drain_all(s);
    offcpu_step(s, 0);
    pthread_mutex_unlock(&s->lock);

    uint64_t now = mono_ns();
    next += s->tick_ns;
    if (next <= now) next = now + s->tick_ns; /* fell behind: skip, do not burst */
    pthread_mutex_lock(&s->wake_lock);
  }
  pthread_mutex_unlock(&s->wake_lock);
  return NULL;
}

/* ------------------------------------------------------------ start / stop */

int scalene_sampler_start(scalene_sampler_t *s, scalene_error_t *err) {
  if (s == NULL) {
    scalene__error_set(err, NULL, 0, 0, -1, "sampler: must not be NULL");
    return SCALENE_EINVAL;
  }
  int rc = validate(&s->opts, err);
  if (rc != 0) return rc;
  pthread_mutex_lock(&g_mutex);
  if (s->running || g_running != NULL) {
    scalene__error_set(err, NULL, 0, 0, -1, "%s",
                       s->running ? "this sampler is already running"
                                  : "another sampler is running in this process");
    pthread_mutex_unlock(&g_mutex);
    return SCALENE_ESTATE;
  }
  atomic_store(&scalene__self_pid, getpid());
  int sig = s->opts.signum;
  char name[32];
  signal_name(sig, name, sizeof name);

  /* Refuse an occupied signal; never overwrite someone's handler. */
  struct sigaction cur;
  sigaction(sig, NULL, &cur);
  int ours = (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == scalene__sampler_handler;
  if (ours && g_left_installed[sig]) {
    s->old_action_valid = 1;
    s->old_action = g_left_old[sig];
  } else if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
    s->old_action_valid = 1;
    s->old_action = cur;
  } else {
    if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN)
      scalene__error_set(err, NULL, 0, 0, -1,
                         "signal %s (%d) is set to be ignored; choose another signal", name, sig);
    else
      scalene__error_set(err, NULL, 0, 0, -1,
                         "signal %s (%d) already has a handler installed; choose another signal",
                         name, sig);
    pthread_mutex_unlock(&g_mutex);
    return SCALENE_EBUSY;
  }

  maps_release(s);
  if (map_refresh(s, 1) != 0) {
    scalene__error_set(err, NULL, 0, 0, -1, "out of memory building the code map");
    pthread_mutex_unlock(&g_mutex);
    return SCALENE_ENOMEM;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = scalene__sampler_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) {
    int e = errno;
    scalene__error_set(err, NULL, 0, 0, -1, "sigaction(%s): %s", name, strerror(e));
    pthread_mutex_unlock(&g_mutex);
    return SCALENE_ESYS;
  }
  g_left_installed[sig] = 0;

  s->start_tid = scalene__gettid();
  s->quit = 0;
  s->tid_known = 0;
  s->thread_tid = 0;
  s->off_acc_ns = 0;
  s->offcpu_on = 0;
  schedstat_close(s);

  /* The sampler's thread inherits a mask with every signal blocked. */
  sigset_t all, prev;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &prev);
  int prc = pthread_create(&s->thread, NULL, sampler_main, s);
  pthread_sigmask(SIG_SETMASK, &prev, NULL);
  if (prc != 0) {
    sigaction(sig, &s->old_action, NULL);
    scalene__error_set(err, NULL, 0, 0, -1, "cannot start the sampler's thread: %s",
                       strerror(prc));
    pthread_mutex_unlock(&g_mutex);
    return SCALENE_ESYS;
  }
  s->thread_started = 1;
  pthread_mutex_lock(&s->wake_lock);
  while (!s->tid_known) pthread_cond_wait(&s->wake, &s->wake_lock);
  pthread_mutex_unlock(&s->wake_lock);

  pthread_mutex_lock(&s->lock);
  scan(s);
  /* Off-CPU time counts from here: the wait above for the sampler's thread
   * to come up is the profiler's, not the program's. */
  if (s->opts.clock == SCALENE_CLOCK_WALL) {
    s->off_last_wall_ns = mono_ns();
    s->offcpu_on = clock_ns(scalene__thread_cpuclock(s->start_tid), &s->off_last_cpu_ns) == 0;
    if (s->offcpu_on) schedstat_open(s);
  }
  pthread_mutex_unlock(&s->lock);
  s->running = 1;
  g_running = s;
  pthread_mutex_unlock(&g_mutex);
  return 0;
}

/* Whether any thread of the process has signal sig pending (its own or
 * the process-wide set), from /proc/self/task/<tid>/status. */
static int signal_pending_anywhere(int sig) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return 0;
  int pending = 0;
  uint64_t bit = 1ull << (sig - 1);
  struct dirent *e;
  while (!pending && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[320];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
      unsigned long long mask;
      if ((sscanf(line, "SigPnd: %llx", &mask) == 1 || sscanf(line, "ShdPnd: %llx", &mask) == 1) &&
          (mask & bit)) {
        pending = 1;
        break;
      }
    }
    fclose(f);
  }
  closedir(d);
  return pending;
}

int scalene_sampler_stop(scalene_sampler_t *s) {
  if (s == NULL) return SCALENE_EINVAL;
  pthread_mutex_lock(&g_mutex);
  if (!s->running) {
    pthread_mutex_unlock(&g_mutex);
    return SCALENE_ESTATE;
  }
  pthread_mutex_lock(&s->wake_lock);
  s->quit = 1;
  pthread_cond_broadcast(&s->wake);
  pthread_mutex_unlock(&s->wake_lock);
  if (s->thread_started) pthread_join(s->thread, NULL);
  s->thread_started = 0;

  pthread_mutex_lock(&s->lock);
  for (size_t i = 0; i < s->n_slots; i++) {
    scalene__slot_t *sl = s->slots[i];
    if (sl->has_timer) {
      timer_delete(sl->timer);
      sl->has_timer = 0;
    }
  }
  s->threads_live = 0;
  /* A signal generated before timer_delete may still be pending. */
  int sig = s->opts.signum;
  uint64_t deadline = mono_ns() + STOP_WAIT_NS;
  int quiet;
  while (!(quiet = !signal_pending_anywhere(sig)) && mono_ns() < deadline) sleep_ns(1000000);
  for (size_t i = 0; i < s->n_slots; i++) atomic_store(&s->slots[i]->active, 0);
  while (atomic_load(&s->in_handler) != 0 && mono_ns() < deadline) sleep_ns(100000);
  offcpu_step(s, 1);
  s->offcpu_on = 0;
  schedstat_close(s);
  task_dir_close(s);
  drain_all(s);
  for (size_t i = 0; i < s->n_slots; i++) s->slots[i]->in_use = 0;
  pthread_mutex_unlock(&s->lock);

  if (quiet && atomic_load(&s->in_handler) == 0) {
    if (s->old_action_valid) sigaction(sig, &s->old_action, NULL);
    g_left_installed[sig] = 0;
    s->handler_may_run = 0;
  } else {
    /* Keep our handler (it ignores inactive slots) rather than risk a late
     * signal meeting the default action. */
    g_left_installed[sig] = 1;
    g_left_old[sig] = s->old_action;
    s->handler_may_run = 1;
  }
  s->running = 0;
  if (g_running == s) g_running = NULL;
  pthread_mutex_unlock(&g_mutex);
  return 0;
}

int scalene_sampler_drain(scalene_sampler_t *s) {
  if (s == NULL) return SCALENE_EINVAL;
  pthread_mutex_lock(&s->lock);
  drain_all(s);
  pthread_mutex_unlock(&s->lock);
  return 0;
}

int scalene_sampler_get_stats(const scalene_sampler_t *s, scalene_sampler_stats_t *st) {
  if (s == NULL || st == NULL || st->size == 0) return SCALENE_EINVAL;
  scalene_sampler_t *m = (scalene_sampler_t *)s;
  scalene_sampler_stats_t v;
  memset(&v, 0, sizeof v);
  v.size = st->size;
  v.samples = atomic_load(&m->samples);
  v.offcpu_samples = atomic_load(&m->offcpu_samples);
  v.dropped = atomic_load(&m->dropped);
  v.skipped = atomic_load(&m->skipped);
  v.threads_armed = atomic_load(&m->threads_armed);
  pthread_mutex_lock(&m->lock);
  v.threads_live = m->threads_live;
  pthread_mutex_unlock(&m->lock);
  memcpy(st, &v, st->size < sizeof v ? st->size : sizeof v);
  return 0;
}
