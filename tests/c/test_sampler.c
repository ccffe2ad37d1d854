/* Tests of the CPU sampler (src/sampler.c, src/sampler_signal.c,
 * src/codemap.c, src/symbolize.c).
 *
 * The locator used here reads a "phase" marker that each thread sets before
 * each piece of work, from a table indexed by kernel tid (so that it also
 * works in remote mode, on the sampler's thread).  Phase p > 0 is charged to
 * file "test-phase", line p; phase 0 is unattributed; unknown threads are
 * skipped.
 *
 * Why the tolerances hold.  A sample's weight is the exact CPU time its
 * thread used since its previous sample, so the weights of one phase add up
 * to that phase's CPU time except at its two ends: the sample that straddles
 * a phase change charges the time since the previous sample to the phase
 * that is current when it fires, and the time after a thread's last sample
 * is never charged.  Each end therefore moves at most one gap between two
 * samples: the interval rounded up to the kernel's timer check (the
 * scheduler tick, 4 ms at HZ=250; 10 ms at HZ=100), i.e. g <= interval + one
 * tick (g <= 6 ms with a 2 ms interval at HZ=250) while the thread runs
 * through ticks; on a loaded host a thread can also run between two ticks
 * without being checked, and gaps of ~10 ms were seen on a busy 2-core
 * machine.  The tests size their work so that their bounds hold up to
 * g = 19 ms. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <scalene/scalene.h>

#define PHASE_FILE "test-phase"
#define NSEC 1000000000ull
#define MS 1000000ull

/* ------------------------------------------------------------ phases */

#define MAX_THREADS 64
static struct {
  _Atomic int tid;
  _Atomic int phase;
  /* The largest CPU-time gap between two consecutive samples of this
   * thread (see gap_watch): the most time a phase can lose at its end. */
  _Atomic uint64_t last_ns, max_gap_ns;
} g_tab[MAX_THREADS];

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

static void set_phase(int phase) {
  pid_t tid = my_tid();
  for (int i = 0; i < MAX_THREADS; i++) {
    int t = atomic_load(&g_tab[i].tid);
    if (t == tid) {
      atomic_store(&g_tab[i].phase, phase);
      return;
    }
    if (t == 0) {
      int expected = 0;
      if (atomic_compare_exchange_strong(&g_tab[i].tid, &expected, tid)) {
        atomic_store(&g_tab[i].phase, phase);
        return;
      }
      if (expected == tid) {
        atomic_store(&g_tab[i].phase, phase);
        return;
      }
    }
  }
  fail_msg("phase table full");
}

/* The largest CPU-time gap between two consecutive samples of the thread
 * g_gap_tid, measured in the locator (clock_gettime is async-signal-safe):
 * it bounds how much time a phase boundary can move from one phase to the
 * next, so that tests can derive their tolerance from what the kernel
 * really delivered on a loaded machine. */
static _Atomic int g_gap_tid;
static _Atomic uint64_t g_gap_last_ns, g_gap_max_ns;

static uint64_t thread_cpu_ns(void);

static void gap_watch(pid_t tid) {
  atomic_store(&g_gap_last_ns, 0);
  atomic_store(&g_gap_max_ns, 0);
  atomic_store(&g_gap_tid, tid);
}

/* Ends gap_watch for a phase that ran from CPU clock c0 to c1: the CPU
 * seconds after the phase's last sample (all of it when none came). */
static double gap_tail_end(uint64_t c0, uint64_t c1) {
  uint64_t last = atomic_load(&g_gap_last_ns);
  atomic_store(&g_gap_tid, 0);
  return (double)(c1 - (last != 0 && last < c1 ? last : c0)) * 1e-9;
}

/* Async-signal-safe: atomic loads and fixed-size copies. */
static int phase_locator(const scalene_sample_context_t *ctx, scalene_location_t *loc,
                         void *arg) {
  (void)arg;
  if (ctx->tid == atomic_load(&g_gap_tid) && !ctx->remote) {
    uint64_t now = thread_cpu_ns(), last = atomic_load(&g_gap_last_ns);
    if (last != 0 && now - last > atomic_load(&g_gap_max_ns)) atomic_store(&g_gap_max_ns, now - last);
    atomic_store(&g_gap_last_ns, now);
  }
  for (int i = 0; i < MAX_THREADS; i++) {
    int t = atomic_load(&g_tab[i].tid);
    if (t == 0) break;
    if (t != ctx->tid) continue;
    if (!ctx->remote) {
      uint64_t now = thread_cpu_ns(), last = atomic_load(&g_tab[i].last_ns);
      if (last != 0 && now > last && now - last > atomic_load(&g_tab[i].max_gap_ns))
        atomic_store(&g_tab[i].max_gap_ns, now - last);
      atomic_store(&g_tab[i].last_ns, now);
    }
    int ph = atomic_load(&g_tab[i].phase);
    if (ph <= 0) return SCALENE_LOCATE_UNATTRIBUTED;
    memcpy(loc->file, PHASE_FILE, sizeof PHASE_FILE);
    loc->line = (uint32_t)ph;
    return SCALENE_LOCATE_FOUND;
  }
  return SCALENE_LOCATE_SKIP;
}

/* ------------------------------------------------------------ helpers */

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static double tv_sec(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6; }

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Burns ns of this thread's CPU time in user mode (the clock is read every
 * few tens of microseconds). */
__attribute__((noinline)) void spin_cpu(uint64_t ns) {
  uint64_t end = thread_cpu_ns() + ns;
  volatile double x = 1.0;
  while (thread_cpu_ns() < end)
    for (int i = 0; i < 20000; i++) x = x * 1.0000001 + 1e-9;
}

/* Burns ns of CPU time mostly inside libm (a "system" object), loaded with
 * dlopen so that the test needs no -lm (and no sanitizer interposes it). */
__attribute__((noinline)) void spin_libm(uint64_t ns) {
  void *h = dlopen("libm.so.6", RTLD_NOW);
  if (h == NULL) fail_msg("dlopen(libm.so.6): %s", dlerror());
  double (*fsin)(double) = (double (*)(double))dlsym(h, "sin");
  double (*fcos)(double) = (double (*)(double))dlsym(h, "cos");
  assert_non_null(fsin);
  assert_non_null(fcos);
  uint64_t end = thread_cpu_ns() + ns;
  volatile double x = 0.5, acc = 0.0;
  while (thread_cpu_ns() < end)
    for (int i = 0; i < 2000; i++) acc += fsin(x + i * 1e-6) + fcos(x - i * 1e-6);
  dlclose(h);
}

/* The CPU clock reading of the calling thread's last sample (0 when none). */
static uint64_t my_last_sample_ns(void) {
  pid_t tid = my_tid();
  for (int i = 0; i < MAX_THREADS; i++)
    if (atomic_load(&g_tab[i].tid) == tid) return atomic_load(&g_tab[i].last_ns);
  return 0;
}

/* The largest gap between samples of the calling thread so far (0 when it
 * was sampled at most once). */
static uint64_t my_max_gap_ns(void) {
  pid_t tid = my_tid();
  for (int i = 0; i < MAX_THREADS; i++)
    if (atomic_load(&g_tab[i].tid) == tid) return atomic_load(&g_tab[i].max_gap_ns);
  return 0;
}

static void my_gap_reset(void) {
  pid_t tid = my_tid();
  for (int i = 0; i < MAX_THREADS; i++)
    if (atomic_load(&g_tab[i].tid) == tid) {
      atomic_store(&g_tab[i].last_ns, 0);
      atomic_store(&g_tab[i].max_gap_ns, 0);
    }
}

/* Spins ns of CPU time, then more, ns at a time, while the calling thread
 * (which has a phase) has had no sample since the call, up to max_ns in
 * all.  Under load the kernel checks a thread's CPU timer only at ticks that
 * find it running, and a starved machine can let 400 ms of a thread's CPU
 * time pass without one: a test that needs at least one sample spins until
 * it has one, and a sampler that never samples still fails it.  Returns the
 * CPU time spun. */
static uint64_t spin_until_sampled(uint64_t ns, uint64_t max_ns) {
  my_gap_reset();
  uint64_t c0 = thread_cpu_ns(), c = c0;
  do {
    spin_cpu(ns);
    c = thread_cpu_ns();
  } while (my_last_sample_ns() == 0 && c - c0 < max_ns);
  return c - c0;
}

static double phase_sec(const scalene_profile_t *p, int phase, int kind) {
  const scalene_line_stats_t *l = scalene_profile_find_line(p, PHASE_FILE, (uint32_t)phase);
  if (l == NULL) return 0.0;
  if (kind >= 0) return l->cpu_sec[kind];
  return l->cpu_sec[0] + l->cpu_sec[1] + l->cpu_sec[2];
}

static scalene_sampler_t *make_sampler(scalene_profile_t *p, uint64_t interval_ns,
                                       int offcpu, const void *interp) {
  scalene_sampler_options_t o;
  scalene_sampler_options_init(&o);
  o.interval_ns = interval_ns;
  o.clock = offcpu ? SCALENE_CLOCK_WALL : SCALENE_CLOCK_CPU;
  o.locator = phase_locator;
  o.interpreter_addr = interp;
  scalene_sampler_t *s = NULL;
  scalene_error_t err;
  int rc = scalene_sampler_new(&o, p, &s, &err);
  if (rc != 0) fail_msg("scalene_sampler_new: %s", err.text);
  return s;
}

static void start_ok(scalene_sampler_t *s) {
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  int rc = scalene_sampler_start(s, &err);
  if (rc != 0) fail_msg("scalene_sampler_start: %d %s", rc, err.text);
}

static scalene_sampler_stats_t stats_of(scalene_sampler_t *s) {
  scalene_sampler_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  assert_int_equal(scalene_sampler_get_stats(s, &st), 0);
  return st;
}

static void assert_near(double got, double want, double tol, const char *what) {
  if (fabs(got - want) > tol)
    fail_msg("%s: got %.4f, want %.4f +- %.4f", what, got, want, tol);
}

/* ------------------------------------------------------------ options */

static void test_options(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  assert_non_null(p);
  scalene_sampler_options_t o;
  scalene_sampler_options_init(&o);
  assert_int_equal(o.size, sizeof o);
  assert_int_equal(o.interval_ns, 10 * MS);
  assert_int_equal(o.signum, SIGRTMIN + 4);
  assert_int_equal(o.ring_capacity, 512);
  assert_null(o.locator);

  scalene_sampler_t *s = (scalene_sampler_t *)1;
  scalene_error_t err;
  assert_int_equal(scalene_sampler_new(&o, p, &s, &err), SCALENE_EINVAL);
  assert_null(s);
  assert_non_null(strstr(err.text, "locator"));

  o.locator = phase_locator;
  o.interval_ns = 999;
  assert_int_equal(scalene_sampler_new(&o, p, &s, &err), SCALENE_EINVAL);
  assert_non_null(strstr(err.text, "interval_ns"));
  o.interval_ns = 10 * NSEC + 1;
  assert_int_equal(scalene_sampler_new(&o, p, &s, &err), SCALENE_EINVAL);
  assert_non_null(strstr(err.text, "interval_ns"));
  o.interval_ns = 1000;

  int bad[] = {0, -1, SIGKILL, SIGSTOP, SIGRTMAX + 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o.signum = bad[i];
    assert_int_equal(scalene_sampler_new(&o, p, &s, &err), SCALENE_EINVAL);
    assert_non_null(strstr(err.text, "signum"));
  }
  o.signum = SIGRTMIN + 4;
  assert_int_equal(scalene_sampler_new(&o, p, &s, &err), 0);
  assert_non_null(s);
  assert_int_equal(scalene_sampler_stop(s), SCALENE_ESTATE);

  /* Only one sampler runs at a time. */
  scalene_sampler_t *s2 = NULL;
  o.signum = SIGRTMIN + 6;
  assert_int_equal(scalene_sampler_new(&o, p, &s2, &err), 0);
  start_ok(s);
  assert_int_equal(scalene_sampler_start(s, &err), SCALENE_ESTATE);
  assert_int_equal(scalene_sampler_start(s2, &err), SCALENE_ESTATE);
  assert_int_equal(scalene_sampler_stop(s), 0);
  scalene_sampler_free(s2);
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ (a) shares */

/* Spins a_ns of CPU time in phase 1, then b_ns in phase 2, under a fresh
 * sampler from make(), and measures again, at most 5 times, while the
 * largest gap between samples (the tail after the last one included) is
 * at least g_max: a starved machine (load far above the cores) stretches
 * the gaps past the point where a share test says anything.  Returns that
 * gap in seconds; *pp and *sp are the last profile and (stopped) sampler;
 * ru, unless NULL, the thread's rusage before and after phase 1. */
static double two_phases(scalene_sampler_t *(*make)(scalene_profile_t *), uint64_t a_ns,
                         uint64_t b_ns, double g_max, scalene_profile_t **pp,
                         scalene_sampler_t **sp, struct rusage ru[2]) {
  scalene_profile_t *p = NULL;
  scalene_sampler_t *s = NULL;
  double g = 0.0;
  for (int attempt = 0; attempt < 5; attempt++) {
    if (s != NULL) {
      print_message("    largest gap %.1f ms: the machine is starved, measuring again\n", g * 1e3);
      scalene_sampler_free(s);
      scalene_profile_free(p);
    }
    p = scalene_profile_new();
    s = make(p);
    gap_watch(my_tid());
    start_ok(s);
    if (ru != NULL) getrusage(RUSAGE_THREAD, &ru[0]);
    uint64_t c0 = thread_cpu_ns();
    set_phase(1);
    spin_cpu(a_ns);
    if (ru != NULL) getrusage(RUSAGE_THREAD, &ru[1]);
    set_phase(2);
    spin_cpu(b_ns);
    uint64_t c1 = thread_cpu_ns();
    set_phase(0);
    g = (double)atomic_load(&g_gap_max_ns) * 1e-9;
    double tail = gap_tail_end(c0, c1);
    if (tail > g) g = tail;
    assert_int_equal(scalene_sampler_stop(s), 0);
    if (g < g_max) break;
  }
  *pp = p;
  *sp = s;
  return g;
}

static scalene_sampler_t *make_shares_sampler(scalene_profile_t *p) {
  return make_sampler(p, 2 * MS, 0, NULL);
}

/* 600 ms then 200 ms of CPU in one thread, interval 2 ms.  The A->B change
 * moves at most g from A to B, the end loses at most g of B, so A/(A+B)
 * lies in [(600-g)/(800-g), 600/(800-g)]: for g = 6 ms [74.8 %, 75.6 %],
 * and the +-3 points asserted hold up to g = 20 ms ([72.4 %, 76.9 %]). */
static void test_phase_shares(void **state) {
  (void)state;
  scalene_profile_t *p = NULL;
  scalene_sampler_t *s = NULL;
  struct rusage ru[2];
  double g = two_phases(make_shares_sampler, 600 * MS, 200 * MS, 0.080, &p, &s, ru);
  double a = phase_sec(p, 1, -1), b = phase_sec(p, 2, -1);
  scalene_sampler_stats_t st = stats_of(s);
  print_message("    A %.4f s, B %.4f s, share %.2f %%, %llu samples, %llu dropped\n", a, b,
                100.0 * a / (a + b), (unsigned long long)st.samples,
                (unsigned long long)st.dropped);
  assert_true(a + b > 0.0);
  /* Each sample weighs the CPU time since the previous one, so A loses at
   * most one gap g1 to B at their boundary and B at most one gap g2 to the
   * tail: share = (0.6 - g1 + x) / (0.8 - g2), |x| <= g1.  With g the
   * largest gap seen, the share is within 100 * 2g / (0.8 - g) points of
   * 75 (on a quiet machine g is one 4 ms tick: 1 point; the classic +-3
   * points hold up to g = 12 ms).  A starved machine stretches the gaps:
   * the bound follows the gaps the kernel delivered, which must still be
   * short enough for the test to mean something. */
  double tol = 100.0 * 2.0 * g / (0.8 - g);
  if (tol < 3.0) tol = 3.0;
  print_message("    largest gap between samples %.1f ms: tolerance %.2f points\n", g * 1e3, tol);
  assert_true(g < 0.080);
  assert_near(100.0 * a / (a + b), 75.0, tol, "share of phase A (%)");
  /* The weights are CPU time: the two phases sum to 0.8 s less the tail. */
  assert_near(a + b, 0.800, g + 0.005, "A + B seconds");
  /* The test program is neither the interpreter nor a system library. */
  assert_true(phase_sec(p, 1, SCALENE_CPU_PYTHON) == 0.0);
  /* The rest is native, except the kernel's share, which the sampler takes
   * from the same rusage the thread reports: how much of a busy loop the
   * kernel accounts as system time depends on the machine (tick-based
   * accounting, signal delivery under load), so compare with the thread's
   * own figure over the phase rather than with a fixed bound.  Per sample
   * the split is dstime/(dutime+dstime) weighted by the CPU time of the
   * sample, which sums to the phase's dstime up to the two phase edges
   * (one interval each: 2 x 2 ms of 600 ms, under 1 point). */
  double truth_sys = tv_sec(ru[1].ru_stime) - tv_sec(ru[0].ru_stime);
  double truth_all = truth_sys + tv_sec(ru[1].ru_utime) - tv_sec(ru[0].ru_utime);
  double sys_a = phase_sec(p, 1, SCALENE_CPU_SYSTEM);
  print_message("    phase A: native %.4f, system %.4f s; rusage system share %.2f %%\n",
                phase_sec(p, 1, SCALENE_CPU_NATIVE), sys_a, 100.0 * truth_sys / truth_all);
  assert_near(100.0 * sys_a / a, 100.0 * truth_sys / truth_all, 3.0, "phase A system share (%)");
  assert_near(phase_sec(p, 1, SCALENE_CPU_NATIVE), a - sys_a, 1e-9, "phase A native = rest");
  assert_int_equal(st.dropped, 0);
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ (b) threads */

#define N_SPIN_THREADS 3
static _Atomic int g_go;
static _Atomic int g_ready;

typedef struct spin_arg {
  int phase;
  uint64_t ns;
  uint64_t truth_ns;   /* CPU time of the spin */
  uint64_t before_ns;  /* CPU time from the thread's start to the spin */
  uint64_t tail_ns;    /* CPU time of the spin after its last sample */
  uint64_t max_gap_ns;
} spin_arg_t;

static void *spin_thread(void *argp) {
  spin_arg_t *a = argp;
  uint64_t start = thread_cpu_ns();
  set_phase(a->phase);
  atomic_fetch_add(&g_ready, 1);
  while (!atomic_load(&g_go)) sleep_ms(1);
  my_gap_reset();
  uint64_t c0 = thread_cpu_ns();
  spin_cpu(a->ns);
  uint64_t c1 = thread_cpu_ns();
  set_phase(0);
  uint64_t last = my_last_sample_ns();
  a->truth_ns = c1 - c0;
  a->before_ns = c0 - start;
  /* A sample between c1 and set_phase(0) charges the phase up to itself,
   * a few microseconds past c1: no tail. */
  a->tail_ns = last >= c1 ? 0 : last > c0 ? c1 - last : c1 - c0;
  a->max_gap_ns = my_max_gap_ns();
  return NULL;
}

/* Threads started after start spin 400, 550 and 700 ms of CPU.  Each sample
 * weighs the thread's CPU time since its previous one, so what a thread's
 * phase is charged is its CPU time from being armed to its last sample: the
 * spin's CPU time less its tail (the CPU time after the last sample, which
 * the locator records) plus at most the CPU the thread used between its
 * start and the spin.  That identity is exact up to the few microseconds
 * between the handler's clock read and the locator's; 0.5 ms is asserted.
 * The tail itself is up to the kernel: one 2-4 ms tick on a quiet machine,
 * but a loaded or virtualised one now and then lets a thread's timer go
 * unserved for 100 ms or more of its CPU time.  It is printed, and the check
 * keeps its meaning while the tail stays below half the spin. */
static void test_threads(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_t *s = make_sampler(p, 2 * MS, 0, NULL);
  start_ok(s);
  set_phase(0);
  uint64_t armed0 = stats_of(s).threads_armed;
  atomic_store(&g_go, 0);
  atomic_store(&g_ready, 0);
  pthread_t th[N_SPIN_THREADS];
  spin_arg_t args[N_SPIN_THREADS];
  for (int i = 0; i < N_SPIN_THREADS; i++) {
    args[i].phase = 10 + i;
    args[i].ns = (uint64_t)(400 + 150 * i) * MS;
    args[i].truth_ns = 0;
    assert_int_equal(pthread_create(&th[i], NULL, spin_thread, &args[i]), 0);
  }
  /* Wait until the sampler has found the new threads. */
  uint64_t deadline = mono_ns() + 2 * NSEC;
  while ((atomic_load(&g_ready) < N_SPIN_THREADS ||
          stats_of(s).threads_armed < armed0 + N_SPIN_THREADS) &&
         mono_ns() < deadline)
    sleep_ms(1);
  assert_true(stats_of(s).threads_armed >= armed0 + N_SPIN_THREADS);
  atomic_store(&g_go, 1);
  for (int i = 0; i < N_SPIN_THREADS; i++) pthread_join(th[i], NULL);
  assert_int_equal(scalene_sampler_stop(s), 0);
  for (int i = 0; i < N_SPIN_THREADS; i++) {
    double got = phase_sec(p, 10 + i, -1);
    double truth = (double)args[i].truth_ns * 1e-9;
    double gap = (double)args[i].max_gap_ns * 1e-9;
    double tail = (double)args[i].tail_ns * 1e-9;
    double before = (double)args[i].before_ns * 1e-9;
    print_message("    thread %d: sampled %.4f s, own clock %.4f s, tail %.1f ms, largest gap %.1f ms\n",
                  i, got, truth, tail * 1e3, gap * 1e3);
    assert_true(tail < 0.5 * truth);
    assert_true(got >= truth - tail - 0.0005);
    assert_true(got <= truth - tail + before + 0.0005);
  }
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ (c) off-CPU */

/* 300 ms asleep, interval 10 ms, the sampler's tick 10 ms: the off-CPU
 * accumulator is charged where the thread is at the tick that crosses the
 * interval, so each end of the sleep moves at most ~2 ticks (20 ms), under
 * the +-50 ms asserted. */
static void test_offcpu(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_t *s = make_sampler(p, 10 * MS, 1, NULL);
  start_ok(s);
  set_phase(20);
  sleep_ms(300);
  set_phase(0);
  assert_int_equal(scalene_sampler_stop(s), 0);
  double sys = phase_sec(p, 20, SCALENE_CPU_SYSTEM);
  double user = phase_sec(p, 20, SCALENE_CPU_PYTHON) + phase_sec(p, 20, SCALENE_CPU_NATIVE);
  scalene_sampler_stats_t st = stats_of(s);
  print_message("    asleep: system %.4f s, python+native %.4f s, %llu off-CPU samples\n", sys,
                user, (unsigned long long)st.offcpu_samples);
  assert_near(sys, 0.300, 0.050, "off-CPU system seconds");
  assert_true(user < 0.005);
  assert_true(st.offcpu_samples > 0);
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ (c2) preempted */

/* Whether the kernel keeps scheduler statistics for this thread: its
 * schedstat reads three numbers and the first (on-CPU ns) is not 0. */
static int have_schedstat(void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)my_tid());
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  unsigned long long run = 0, wait = 0, slices = 0;
  int n = fscanf(f, "%llu %llu %llu", &run, &wait, &slices);
  fclose(f);
  return n == 3 && run > 0;
}

/* A child that burns CPU until it is killed (or its parent dies, or 20 s
 * pass). */
static pid_t fork_burner(void) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  uint64_t end = mono_ns() + 20 * NSEC;
  volatile double x = 1.0;
  while (mono_ns() < end && getppid() != 1)
    for (int i = 0; i < 100000; i++) x = x * 1.0000001 + 1e-9;
  _exit(0);
}

/* Like phase_locator, but charges off-CPU samples (remote mode) to line
 * phase + REMOTE_LINE, so that a test can tell them from the system share
 * of the thread's own samples (its rusage kernel time). */
#define REMOTE_LINE 1000
static int split_locator(const scalene_sample_context_t *ctx, scalene_location_t *loc,
                         void *arg) {
  int r = phase_locator(ctx, loc, arg);
  if (r == SCALENE_LOCATE_FOUND && ctx->remote) loc->line += REMOTE_LINE;
  return r;
}

/* The starting thread spins 400 ms of its own CPU time in user code while
 * 2 * nproc child processes (not sampled) keep every CPU busy, so it spends
 * much of the phase runnable but preempted.  Wall minus CPU time over the
 * phase (what off-CPU sampling charged before it read schedstat) is then
 * comparable to its CPU time or larger; with the run-queue wait
 * subtracted, and a wait still in progress at a tick held back (the thread
 * reads as runnable), the off-CPU time charged to the phase is only the
 * remainder below one interval (10 ms) carried over from before it, under
 * the 10 % (40 ms) asserted.  Then it sleeps 200 ms under the same load:
 * real off-CPU time that must still be charged (+-50 ms, the bound of
 * test_offcpu, whose ends move by at most ~2 ticks; the run-queue wait
 * after the wake-up is not counted).  Without scheduler statistics the
 * sampler falls back to wall minus CPU time, which this test then checks
 * instead. */
static void test_offcpu_preempted(void **state) {
  (void)state;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  int nburn = (int)(2 * ncpu);
  if (nburn > 64) nburn = 64;
  pid_t kids[64];
  for (int i = 0; i < nburn; i++) {
    kids[i] = fork_burner();
    assert_true(kids[i] > 0);
  }
  sleep_ms(50); /* let the load settle */
  int sched = have_schedstat();

  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_options_t o;
  scalene_sampler_options_init(&o);
  o.interval_ns = 10 * MS;
  o.clock = SCALENE_CLOCK_WALL;
  o.locator = split_locator;
  scalene_sampler_t *s = NULL;
  scalene_error_t err;
  if (scalene_sampler_new(&o, p, &s, &err) != 0) fail_msg("scalene_sampler_new: %s", err.text);
  start_ok(s);
  set_phase(70);
  gap_watch(my_tid());
  uint64_t w0 = mono_ns(), c0 = thread_cpu_ns();
  spin_until_sampled(400 * MS, 4 * NSEC);
  uint64_t w1 = mono_ns(), c1 = thread_cpu_ns();
  double gmax = (double)atomic_load(&g_gap_max_ns) * 1e-9;
  double tail = gap_tail_end(c0, c1);
  set_phase(71);
  uint64_t w2 = mono_ns();
  sleep_ms(200);
  uint64_t w3 = mono_ns();
  set_phase(0);
  assert_int_equal(scalene_sampler_stop(s), 0);

  for (int i = 0; i < nburn; i++) kill(kids[i], SIGKILL);
  for (int i = 0; i < nburn; i++) {
    int status;
    assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
  }

  double cpu = (double)(c1 - c0) * 1e-9;
  double naive = (double)((w1 - w0) - (c1 - c0)) * 1e-9; /* Δwall − Δcpu */
  double off = phase_sec(p, 70 + REMOTE_LINE, -1);       /* off-CPU samples only */
  double kernel = phase_sec(p, 70, SCALENE_CPU_SYSTEM);  /* the samples' own split */
  double user = phase_sec(p, 70, SCALENE_CPU_PYTHON) + phase_sec(p, 70, SCALENE_CPU_NATIVE);
  double slept = (double)(w3 - w2) * 1e-9;
  double off_sleep = phase_sec(p, 71 + REMOTE_LINE, SCALENE_CPU_SYSTEM);
  print_message("    %d burners, schedstat %s; spin: cpu %.4f s, wall-cpu %.4f s (the off-CPU "
                "time charged before the fix), off-CPU system charged %.4f s (%.1f %% of cpu); "
                "samples: user %.4f s, kernel %.4f s\n",
                nburn, sched ? "yes" : "NO (fallback)", cpu, naive, off, 100.0 * off / cpu,
                user, kernel);
  print_message("    sleep under load: %.4f s wall, off-CPU system charged %.4f s\n", slept,
                off_sleep);
  /* The load really preempted the thread: the old measure is large. */
  assert_true(naive > 0.3 * cpu);
  /* The phase was sampled (it spun until it was, 4 s of CPU at most).
   * Under this load the kernel checks the thread's CPU timer only at the
   * ticks that find it running, so the gap after its last sample (charged
   * to the next phase) can be tens of ms, and on a starved machine hundreds
   * (a run with 4 burners once charged only 0.146 s of 0.4, another none
   * of 0.4 s).  Each sample weighs the CPU time since
   * the previous one, so the phase keeps all of its CPU time but that tail
   * (measured by the locator: the thread's CPU clock at its last sample). */
  print_message("    largest gap between samples %.1f ms, tail after the last %.1f ms\n",
                gmax * 1e3, tail * 1e3);
  assert_true(user > 0.0);
  assert_true(user + kernel > cpu - tail - 0.002);
  /* Off-CPU samples charge system time only. */
  assert_true(phase_sec(p, 70 + REMOTE_LINE, SCALENE_CPU_SYSTEM) == off);
  if (sched) {
    assert_true(off < 0.10 * cpu);
  } else {
    /* The documented fallback: wall minus CPU time, preemption included. */
    assert_true(off > 0.5 * naive);
  }
  assert_near(off_sleep, 0.200, 0.050, "off-CPU system seconds of a sleep under load");
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ (d) busy signal */

static void dummy_handler(int sig) { (void)sig; }

static void check_busy(int sig, const char *want) {
  struct sigaction sa, cur;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = dummy_handler;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(sig, &sa, NULL), 0);

  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_options_t o;
  scalene_sampler_options_init(&o);
  o.signum = sig;
  o.locator = phase_locator;
  scalene_sampler_t *s = NULL;
  scalene_error_t err;
  assert_int_equal(scalene_sampler_new(&o, p, &s, &err), 0);
  memset(&err, 0, sizeof err);
  assert_int_equal(scalene_sampler_start(s, &err), SCALENE_EBUSY);
  print_message("    %s\n", err.text);
  if (strstr(err.text, want) == NULL) fail_msg("message '%s' lacks '%s'", err.text, want);
  assert_non_null(strstr(err.text, "already has a handler"));
  assert_int_equal(sigaction(sig, NULL, &cur), 0);
  assert_true(cur.sa_handler == dummy_handler);
  assert_int_equal(scalene_sampler_stop(s), SCALENE_ESTATE);
  scalene_sampler_free(s);
  scalene_profile_free(p);
  signal(sig, SIG_DFL);
}

static void test_busy_signal(void **state) {
  (void)state;
  char want[64];
  snprintf(want, sizeof want, "SIGPROF (%d)", SIGPROF);
  check_busy(SIGPROF, want);
  snprintf(want, sizeof want, "SIGRTMIN+5 (%d)", SIGRTMIN + 5);
  check_busy(SIGRTMIN + 5, want);
}

/* ------------------------------------------------------------ (e) whole reads */

static void test_reads_whole(void **state) {
  (void)state;
  enum { N = 2000, SZ = 1 << 20 };
  char *buf = malloc(SZ);
  assert_non_null(buf);
  FILE *f = fopen("/dev/zero", "rb");
  assert_non_null(f);
  int fd = fileno(f);
  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_t *s = make_sampler(p, 1 * MS, 0, NULL);
  start_ok(s);
  set_phase(30);
  int short_reads = 0;
  for (int i = 0; i < N; i++) {
    ssize_t r = read(fd, buf, SZ);
    if (r != SZ) short_reads++;
  }
  set_phase(0);
  assert_int_equal(scalene_sampler_stop(s), 0);
  fclose(f);
  free(buf);
  scalene_sampler_stats_t st = stats_of(s);
  double sys = phase_sec(p, 30, SCALENE_CPU_SYSTEM), all = phase_sec(p, 30, -1);
  print_message("    %d short reads, %llu samples, %.4f s of which system %.4f s\n", short_reads,
                (unsigned long long)st.samples, all, sys);
  assert_int_equal(short_reads, 0);
  assert_true(st.samples > 0);
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ system share */

typedef struct split_arg {
  double truth_sys_frac;
  double cpu;  /* CPU seconds of the loop */
  double tail; /* of which after its last sample */
} split_arg_t;

/* A fresh thread (no user-mode history) reads /dev/zero for 250 ms of CPU
 * time: mostly kernel work.  Its own rusage over the loop is the truth. */
static void *split_thread(void *argp) {
  split_arg_t *a = argp;
  enum { SZ = 1 << 20 };
  char *buf = malloc(SZ);
  int fd = open("/dev/zero", O_RDONLY);
  if (buf == NULL || fd < 0) return NULL;
  set_phase(35);
  /* Start only once the sampler has armed this thread's timer: on a busy
   * machine its scan may come a while after the thread starts. */
  atomic_fetch_add(&g_ready, 1);
  while (!atomic_load(&g_go)) sleep_ms(1);
  struct rusage r0, r1;
  my_gap_reset();
  getrusage(RUSAGE_THREAD, &r0);
  /* 250 ms of CPU time, and more (2 s at most) until samples cover 100 ms
   * of it: a starved machine may leave a long tail unsampled. */
  uint64_t c0 = thread_cpu_ns(), c = c0;
  while (c - c0 < 2 * NSEC &&
         (c - c0 < 250 * MS || my_last_sample_ns() < c0 + 100 * MS)) {
    if (read(fd, buf, SZ) != SZ) break;
    c = thread_cpu_ns();
  }
  getrusage(RUSAGE_THREAD, &r1);
  uint64_t c1 = thread_cpu_ns();
  set_phase(0);
  uint64_t last = my_last_sample_ns();
  a->cpu = (double)(c1 - c0) * 1e-9;
  a->tail = (double)(last >= c1 ? 0 : last > c0 ? c1 - last : c1 - c0) * 1e-9;
  double du = tv_sec(r1.ru_utime) - tv_sec(r0.ru_utime);
  double ds = tv_sec(r1.ru_stime) - tv_sec(r0.ru_stime);
  a->truth_sys_frac = du + ds > 0 ? ds / (du + ds) : -1.0;
  close(fd);
  free(buf);
  return NULL;
}

/* The system share of each sample is the thread's Δstime/(Δutime+Δstime)
 * since its previous sample, so over the loop the sampled share follows the
 * thread's own rusage split.  The kernel keeps utime/stime from tick
 * sampling and rescales them to the exact runtime, so single deltas are
 * noisy (a few ms either way); over ~60 samples the share stays within
 * 15 points of the truth. */
static void test_system_share(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_t *s = make_sampler(p, 2 * MS, 0, NULL);
  start_ok(s);
  split_arg_t a = {-1.0, 0.0, 0.0};
  pthread_t th;
  uint64_t armed0 = stats_of(s).threads_armed;
  atomic_store(&g_go, 0);
  atomic_store(&g_ready, 0);
  assert_int_equal(pthread_create(&th, NULL, split_thread, &a), 0);
  uint64_t deadline = mono_ns() + 2 * NSEC;
  while ((atomic_load(&g_ready) < 1 || stats_of(s).threads_armed < armed0 + 1) &&
         mono_ns() < deadline)
    sleep_ms(1);
  atomic_store(&g_go, 1);
  pthread_join(th, NULL);
  assert_int_equal(scalene_sampler_stop(s), 0);
  double sys = phase_sec(p, 35, SCALENE_CPU_SYSTEM), all = phase_sec(p, 35, -1);
  print_message("    reads: %.4f s sampled of %.4f s, tail %.1f ms, system share %.1f %%, own "
                "rusage %.1f %%\n",
                all, a.cpu, a.tail * 1e3, all > 0 ? 100.0 * sys / all : 0.0,
                100.0 * a.truth_sys_frac);
  assert_true(a.truth_sys_frac >= 0.0);
  /* All of the loop's CPU time but its tail (see test_threads), and enough
   * of it for the share to mean something (the loop ran until it was). */
  assert_true(all >= a.cpu - a.tail - 0.0005);
  assert_true(all > 0.1);
  assert_near(100.0 * sys / all, 100.0 * a.truth_sys_frac, 15.0, "system share (%)");
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ (f) restart */

static void test_restart(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_t *s = make_sampler(p, 2 * MS, 0, NULL);
  int sig = SIGRTMIN + 4;
  for (int round = 0; round < 2; round++) {
    uint64_t before = stats_of(s).samples;
    start_ok(s);
    struct sigaction cur;
    sigaction(sig, NULL, &cur);
    assert_true((cur.sa_flags & SA_SIGINFO) && (cur.sa_flags & SA_RESTART));
    assert_true(stats_of(s).threads_live >= 1);
    set_phase(40 + round);
    gap_watch(my_tid());
    uint64_t c0 = thread_cpu_ns();
    spin_until_sampled(60 * MS, 2 * NSEC);
    uint64_t c1 = thread_cpu_ns();
    double tail = gap_tail_end(c0, c1);
    set_phase(0);
    assert_int_equal(scalene_sampler_stop(s), 0);
    assert_int_equal(scalene_sampler_stop(s), SCALENE_ESTATE);
    assert_true(stats_of(s).samples > before);
    assert_int_equal(stats_of(s).threads_live, 0);
    /* The restarted sampler charges the phase all of its CPU time but the
     * tail after its last sample (which stop ends uncharged; on a loaded
     * machine the kernel may deliver nothing for tens of ms of CPU). */
    double spun = (double)(c1 - c0) * 1e-9;
    print_message("    round %d: %.4f s of %.4f s charged, tail %.1f ms\n", round,
                  phase_sec(p, 40 + round, -1), spun, tail * 1e3);
    assert_true(phase_sec(p, 40 + round, -1) > spun - tail - 0.002);
    sigaction(sig, NULL, &cur);
    assert_false(cur.sa_flags & SA_SIGINFO);
    assert_true(cur.sa_handler == SIG_DFL);
  }
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ (g) fork */

static void test_fork(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_t *s = make_sampler(p, 2 * MS, 0, NULL);
  start_ok(s);
  set_phase(50);
  spin_cpu(20 * MS);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* The child: not running here, no thread, no timers; it may start again. */
    spin_cpu(20 * MS);
    if (scalene_sampler_stop(s) != SCALENE_ESTATE) _exit(2);
    scalene_error_t err;
    if (scalene_sampler_start(s, &err) != 0) _exit(3);
    uint64_t before = stats_of(s).samples;
    set_phase(51);
    spin_cpu(200 * MS); /* enough CPU for samples even when the machine is busy */
    if (scalene_sampler_stop(s) != 0) _exit(4);
    if (stats_of(s).samples <= before) _exit(5);
    _exit(0);
  }
  spin_cpu(20 * MS);
  int status = 0;
  pid_t w = 0;
  uint64_t deadline = mono_ns() + 5 * NSEC;
  while ((w = waitpid(pid, &status, WNOHANG)) == 0 && mono_ns() < deadline) sleep_ms(5);
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg("the child did not exit within 5 s");
  }
  assert_int_equal(w, pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  set_phase(0);
  assert_int_equal(scalene_sampler_stop(s), 0);
  assert_true(phase_sec(p, 50, -1) > 0.02);
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ thread life cycle */

static _Atomic int g_release;

static void *blocking_thread(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  atomic_fetch_add(&g_ready, 1);
  while (!atomic_load(&g_release)) sleep_ms(1);
  return NULL;
}

static void *unknown_thread(void *arg) {
  (void)arg;
  spin_cpu(60 * MS); /* never sets a phase: the locator skips it */
  return NULL;
}

/* A thread that blocks the signal is not armed (its signal would stay
 * pending, and stop would wait for it); a thread that ends is retired;
 * samples the locator skips are counted; stop returns promptly. */
static void test_thread_lifecycle(void **state) {
  (void)state;
  atomic_store(&g_ready, 0);
  atomic_store(&g_release, 0);
  pthread_t blocker, other;
  assert_int_equal(pthread_create(&blocker, NULL, blocking_thread, NULL), 0);
  while (atomic_load(&g_ready) < 1) sleep_ms(1);

  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_t *s = make_sampler(p, 2 * MS, 0, NULL);
  start_ok(s);
  scalene_sampler_stats_t st = stats_of(s);
  assert_int_equal(st.threads_live, 1); /* this thread only */
  uint64_t armed0 = st.threads_armed;

  assert_int_equal(pthread_create(&other, NULL, unknown_thread, NULL), 0);
  pthread_join(other, NULL);
  uint64_t deadline = mono_ns() + 2 * NSEC;
  while (stats_of(s).threads_live != 1 && mono_ns() < deadline) sleep_ms(1);
  st = stats_of(s);
  assert_int_equal(st.threads_live, 1);
  assert_int_equal(st.threads_armed, armed0 + 1);
  assert_true(st.skipped > 0);

  uint64_t t0 = mono_ns();
  assert_int_equal(scalene_sampler_stop(s), 0);
  uint64_t took = mono_ns() - t0;
  print_message("    stop took %.1f ms, %llu skipped\n", (double)took / 1e6,
                (unsigned long long)st.skipped);
  assert_true(took < 150 * MS);
  struct sigaction cur;
  sigaction(SIGRTMIN + 4, NULL, &cur);
  assert_true(!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL);
  atomic_store(&g_release, 1);
  pthread_join(blocker, NULL);
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ Python vs native */

/* With the test program itself as the "interpreter", its own loop is Python,
 * and time inside libm called from it is Python too (decided by the caller);
 * with the interpreter elsewhere, the same loop is native. */
static void test_classify(void **state) {
  (void)state;
  /* libm must be loaded when the code map is built (at start). */
  void *libm = dlopen("libm.so.6", RTLD_NOW);
  assert_non_null(libm);
  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_t *s = make_sampler(p, 2 * MS, 0, (const void *)&spin_cpu);
  start_ok(s);
  set_phase(60);
  spin_cpu(150 * MS);
  set_phase(61);
  spin_libm(150 * MS);
  set_phase(0);
  assert_int_equal(scalene_sampler_stop(s), 0);
  scalene_sampler_free(s);

  s = make_sampler(p, 2 * MS, 0, (const void *)&scalene_version);
  start_ok(s);
  set_phase(62);
  spin_cpu(150 * MS);
  set_phase(0);
  assert_int_equal(scalene_sampler_stop(s), 0);
  scalene_sampler_free(s);

  for (int ph = 60; ph <= 62; ph++)
    print_message("    phase %d: python %.4f native %.4f system %.4f\n", ph,
                  phase_sec(p, ph, SCALENE_CPU_PYTHON), phase_sec(p, ph, SCALENE_CPU_NATIVE),
                  phase_sec(p, ph, SCALENE_CPU_SYSTEM));
  /* Classification concerns the user-mode part only: the system share
   * comes from the kernel's accounting and grows on a loaded machine
   * (signal delivery, context switches), so leave it out of the ratios. */
#define USER_SEC(ph) (phase_sec(p, ph, SCALENE_CPU_PYTHON) + phase_sec(p, ph, SCALENE_CPU_NATIVE))
  assert_true(USER_SEC(60) > 0.0 && USER_SEC(61) > 0.0 && USER_SEC(62) > 0.0);
  assert_true(phase_sec(p, 60, SCALENE_CPU_PYTHON) > 0.9 * USER_SEC(60));
  assert_true(phase_sec(p, 61, SCALENE_CPU_PYTHON) > 0.8 * USER_SEC(61));
  assert_true(phase_sec(p, 62, SCALENE_CPU_NATIVE) > 0.9 * USER_SEC(62));
#undef USER_SEC
  assert_true(phase_sec(p, 62, SCALENE_CPU_PYTHON) == 0.0);
  scalene_profile_free(p);
  dlclose(libm);
}

/* ------------------------------------------------------------ (h) safe_read */

static void test_safe_read(void **state) {
  (void)state;
  long pg = sysconf(_SC_PAGESIZE);
  char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(m != MAP_FAILED);
  memset(m, 'x', (size_t)pg * 2);
  char dst[64];
  assert_int_equal(scalene_safe_read(dst, m + pg - 8, 16), 0);
  assert_memory_equal(dst, "xxxxxxxxxxxxxxxx", 16);
  assert_int_equal(munmap(m + pg, (size_t)pg), 0);
  /* Wholly unmapped, and partly unmapped. */
  assert_int_equal(scalene_safe_read(dst, m + pg, 8), -1);
  assert_int_equal(scalene_safe_read(dst, m + pg - 8, 16), -1);
  assert_int_equal(scalene_safe_read(dst, (const void *)8, 8), -1);
  assert_int_equal(munmap(m, (size_t)pg), 0);
}

/* ------------------------------------------------------------ (i) symbolize */

static void test_symbolize(void **state) {
  (void)state;
  scalene_location_t loc;
  assert_int_equal(scalene_symbolize((uintptr_t)&scalene_version + 1, &loc), 0);
  assert_string_equal(loc.function, "scalene_version");
  assert_int_equal(scalene_symbolize(0, &loc), SCALENE_EINVAL);

  assert_int_equal(scalene_symbolize((uintptr_t)&spin_cpu + 4, &loc), 0);
  print_message("    spin_cpu: %s:%u in %s (first line %u)\n", loc.file, (unsigned)loc.line,
                loc.function, (unsigned)loc.function_line);
#ifdef HAVE_LIBDW
  assert_string_equal(loc.function, "spin_cpu");
  const char *base = strrchr(loc.file, '/');
  assert_non_null(base);
  assert_string_equal(base + 1, "test_sampler.c");
  assert_true(loc.line > 0);
  assert_true(loc.function_line > 0 && loc.function_line <= loc.line);
#else
  /* dladdr only sees the dynamic symbol table. */
  assert_non_null(strstr(loc.file, "test_sampler"));
#endif
}

/* ------------------------------------------------------------ (j) stacks */

#define STACK_X "a.py f:1;a.py g:2;"
#define STACK_Y "a.py f:1;a.py h:3;"

/* phase_locator, and with the sampler's stack buffer a fixed stack per
 * phase: 1 and 3 -> STACK_X, 2 -> STACK_Y (none for the others).
 * Async-signal-safe: fixed-size copies. */
static int stack_locator(const scalene_sample_context_t *ctx, scalene_location_t *loc,
                         void *arg) {
  int r = phase_locator(ctx, loc, arg);
  if (r != SCALENE_LOCATE_FOUND || ctx->stack == NULL) return r;
  const char *text = loc->line == 2 ? STACK_Y : loc->line == 1 || loc->line == 3 ? STACK_X : "";
  size_t n = strlen(text) + 1;
  if (n <= ctx->stack_cap) memcpy(ctx->stack, text, n);
  return r;
}

static scalene_sampler_t *make_stack_sampler(scalene_profile_t *p, int offcpu) {
  scalene_sampler_options_t o;
  scalene_sampler_options_init(&o);
  o.interval_ns = 2 * MS;
  o.clock = offcpu ? SCALENE_CLOCK_WALL : SCALENE_CLOCK_CPU;
  o.locator = stack_locator;
  o.stack_bytes = 64;
  scalene_sampler_t *s = NULL;
  scalene_error_t err;
  int rc = scalene_sampler_new(&o, p, &s, &err);
  if (rc != 0) fail_msg("scalene_sampler_new: %s", err.text);
  return s;
}

/* The stack of a text, or fails. */
static void stack_of(const scalene_profile_t *p, const char *text, double sec[3],
                     uint64_t *samples) {
  size_t n = scalene_profile_stack_count(p);
  for (size_t i = 0; i < n; i++) {
    const char *t;
    assert_int_equal(scalene_profile_stack(p, i, &t, sec, samples), 0);
    if (strcmp(t, text) == 0) return;
  }
  fail_msg("no stack \"%s\" among %zu", text, n);
}

/* stack_bytes: range, default, and a caller whose options end before it
 * (size) gets no stacks whatever the memory past its struct holds. */
static void test_stack_options(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_sampler_options_t o;
  scalene_sampler_options_init(&o);
  assert_int_equal(o.stack_bytes, 0);
  o.locator = stack_locator;
  scalene_sampler_t *s = NULL;
  scalene_error_t err;
  size_t bad[] = {1, 15, 65537};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o.stack_bytes = bad[i];
    assert_int_equal(scalene_sampler_new(&o, p, &s, &err), SCALENE_EINVAL);
    assert_non_null(strstr(err.text, "stack_bytes"));
  }
  o.stack_bytes = 65536;
  assert_int_equal(scalene_sampler_new(&o, p, &s, &err), 0);
  scalene_sampler_free(s);
  o.stack_bytes = 1; /* past an older caller's struct: not read */
  o.size = offsetof(scalene_sampler_options_t, stack_bytes);
  assert_int_equal(scalene_sampler_new(&o, p, &s, &err), 0);
  start_ok(s);
  set_phase(1);
  spin_until_sampled(20 * MS, 400 * MS);
  set_phase(0);
  assert_int_equal(scalene_sampler_stop(s), 0);
  assert_true(phase_sec(p, 1, -1) > 0.0);
  assert_int_equal(scalene_profile_stack_count(p), 0);
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

static scalene_sampler_t *make_cpu_stack_sampler(scalene_profile_t *p) {
  return make_stack_sampler(p, 0);
}

/* 300 ms of CPU in phase 1 (stack X), then 100 ms in phase 2 (stack Y),
 * interval 2 ms.  Each record carries its stack, so the stacks charge the
 * very records the line table does: stack X holds exactly phase 1's
 * seconds and samples, stack Y phase 2's.  The share of X is 75 % within
 * the bound of test_phase_shares: the phase change moves at most one gap
 * g1 from X to Y, the tail after the last sample loses at most one gap g2
 * of Y, so the share is within 100 * 2g / (0.4 - g) points of 75, g the
 * largest gap seen (tail included); measured again, up to 5 times, while
 * the machine is starved (g >= 40 ms). */
static void test_stacks(void **state) {
  (void)state;
  scalene_profile_t *p = NULL;
  scalene_sampler_t *s = NULL;
  double g = two_phases(make_cpu_stack_sampler, 300 * MS, 100 * MS, 0.040, &p, &s, NULL);
  double x[3], y[3];
  uint64_t nx, ny;
  stack_of(p, STACK_X, x, &nx);
  stack_of(p, STACK_Y, y, &ny);
  assert_int_equal(scalene_profile_stack_count(p), 2);
  double a = x[0] + x[1] + x[2], b = y[0] + y[1] + y[2];
  scalene_sampler_stats_t st = stats_of(s);
  double tol = 100.0 * 2.0 * g / (0.4 - g);
  if (tol < 3.0) tol = 3.0;
  print_message("    X %.4f s (%llu), Y %.4f s (%llu): share %.2f %%, largest gap %.1f ms, "
                "tolerance %.2f points, %llu dropped\n",
                a, (unsigned long long)nx, b, (unsigned long long)ny, 100.0 * a / (a + b),
                g * 1e3, tol, (unsigned long long)st.dropped);
  assert_true(g < 0.040);
  assert_near(100.0 * a / (a + b), 75.0, tol, "share of stack X (%)");
  /* The same records: equal sums, bit for bit (added in the same order). */
  for (int k = 0; k < SCALENE_CPU_KINDS; k++) {
    assert_float_equal(x[k], phase_sec(p, 1, k), 0);
    assert_float_equal(y[k], phase_sec(p, 2, k), 0);
  }
  assert_int_equal(nx, scalene_profile_find_line(p, PHASE_FILE, 1)->cpu_samples);
  assert_int_equal(ny, scalene_profile_find_line(p, PHASE_FILE, 2)->cpu_samples);
  assert_int_equal(st.dropped, 0);
  scalene_sampler_free(s);
  scalene_profile_free(p);

  /* Off-CPU samples (remote mode) carry the stack too: 100 ms asleep in
   * phase 3 charge its system time to stack X as well. */
  p = scalene_profile_new();
  s = make_stack_sampler(p, 1);
  start_ok(s);
  set_phase(3);
  sleep_ms(100);
  set_phase(0);
  assert_int_equal(scalene_sampler_stop(s), 0);
  stack_of(p, STACK_X, x, &nx);
  print_message("    asleep: stack X system %.4f s, %llu samples\n", x[2],
                (unsigned long long)nx);
  assert_true(x[2] > 0.0);
  for (int k = 0; k < SCALENE_CPU_KINDS; k++) assert_float_equal(x[k], phase_sec(p, 3, k), 0);
  assert_int_equal(nx, scalene_profile_find_line(p, PHASE_FILE, 3)->cpu_samples);
  scalene_sampler_free(s);
  scalene_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),     cmocka_unit_test(test_safe_read),
      cmocka_unit_test(test_symbolize),   cmocka_unit_test(test_busy_signal),
      cmocka_unit_test(test_phase_shares), cmocka_unit_test(test_threads),
      cmocka_unit_test(test_offcpu),      cmocka_unit_test(test_offcpu_preempted),
      cmocka_unit_test(test_reads_whole),
      cmocka_unit_test(test_restart),     cmocka_unit_test(test_fork),
      cmocka_unit_test(test_classify),    cmocka_unit_test(test_thread_lifecycle),
      cmocka_unit_test(test_system_share),
      cmocka_unit_test(test_stack_options), cmocka_unit_test(test_stacks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
