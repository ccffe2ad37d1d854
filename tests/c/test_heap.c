/* Tests of the heap sampler (scalene/heap.h).
 *
 * The locator reads a thread-local "phase" marker that each thread sets
 * before it allocates: phase p > 0 is charged to file "test-phase", line p;
 * phase 0 is skipped, so that allocations made by cmocka, libc or the test
 * harness are not counted.  (The locator runs inside malloc on the
 * allocating thread, so reading this thread's own TLS is enough;
 * initial-exec TLS of the executable never allocates.)
 *
 * The interposition tests (a)-(f) run in the normal build and under
 * AddressSanitizer alike: with ASan, the test executable's GOT entries hold
 * libasan's malloc family, which is what RTLD_DEFAULT resolves to, so the
 * hooks wrap ASan's allocator.  Test (g) needs no hook: it drives the
 * sampling math and the pointer table through scalene_heap_record_alloc /
 * scalene_heap_record_free.
 *
 * Accuracy.  n blocks of size s; each is sampled independently with
 * probability p = 1 - exp(-s/R) (the countdown is exponential, hence
 * memoryless) and then counts s/p bytes.  The estimate T = (s/p) K with
 * K ~ Binomial(n, p): E[T] = n s, Var[T] = (s/p)^2 n p (1-p), so the
 * relative standard deviation is sigma = sqrt((1-p) / (n p)).
 *  (a) 1 MiB blocks, R = 128 KiB: s/R = 8, p = 1 - e^-8 = 0.99966,
 *      (1-p)/p = 3.4e-4; 200 MiB (n = 200): sigma = 0.13 %; 50 MiB
 *      (n = 50): sigma = 0.26 %, so 4 sigma = 1 % < 5 %.  (R = 256 KiB
 *      would give 4 sigma = 7.7 % for 50 blocks: too coarse.)
 *  (b) 64 KiB blocks, R = 1 MiB (the default): p = 1 - e^-1/16 = 0.0606;
 *      2 GiB = 32768 blocks: sigma = sqrt(0.9394 / 1985.6) = 2.2 %,
 *      4 sigma = 8.7 % < 10 %.
 *  (c) the same for 8 threads x 256 MiB: the total has the same sigma. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <scalene/scalene.h>

#include "wait_child.h"

#define PHASE_FILE "test-phase"
#define KiB ((size_t)1024)
#define MiB (KiB * 1024)

static __thread volatile int tl_phase; /* volatile: malloc is assumed not to read it */
static _Atomic uintptr_t g_last_pc;     /* ctx->pc of the last located sample */

/* Async-signal-safe: a TLS read, an atomic store and fixed-size writes. */
static int phase_locator(const scalene_sample_context_t *ctx, scalene_location_t *loc,
                         void *arg) {
  (void)arg;
  int ph = tl_phase;
  if (ph > 0) atomic_store(&g_last_pc, ctx->pc);
  if (ph <= 0) return SCALENE_LOCATE_SKIP;
  memcpy(loc->file, PHASE_FILE, sizeof PHASE_FILE);
  memcpy(loc->function, "phase", sizeof "phase");
  loc->line = (uint32_t)ph;
  loc->function_line = 1;
  return SCALENE_LOCATE_FOUND;
}

/* Keeps the compiler from eliding a malloc/free pair. */
static void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

typedef struct {
  scalene_profile_t *p;
  scalene_heap_t *h;
} fixture_t;

static void fx_new(fixture_t *fx, uint64_t mean, unsigned int hooks) {
  fx->p = scalene_profile_new();
  assert_non_null(fx->p);
  scalene_heap_options_t o;
  scalene_heap_options_init(&o);
  o.sampling_bytes = mean;
  o.hooks = hooks;
  o.locator = phase_locator;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  int rc = scalene_heap_new(&o, fx->p, &fx->h, &err);
  assert_int_equal(rc, 0);
  rc = scalene_heap_start(fx->h, &err);
  if (rc != 0) fail_msg("scalene_heap_start: %s: %s", scalene_err_name(rc), err.text);
}

static void fx_free(fixture_t *fx) {
  scalene_heap_free(fx->h);
  scalene_profile_free(fx->p);
}

static scalene_heap_stats_t hstats(const scalene_heap_t *h) {
  scalene_heap_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  assert_int_equal(scalene_heap_get_stats(h, &st), 0);
  return st;
}

static const scalene_line_stats_t *line(const scalene_profile_t *p, int phase) {
  return scalene_profile_find_line(p, PHASE_FILE, (uint32_t)phase);
}

static double line_alloc(const scalene_profile_t *p, int phase) {
  const scalene_line_stats_t *l = line(p, phase);
  return l ? l->alloc_bytes : 0.0;
}
static double line_freed(const scalene_profile_t *p, int phase) {
  const scalene_line_stats_t *l = line(p, phase);
  return l ? l->freed_bytes : 0.0;
}

static void assert_within(const char *what, double got, double want, double tol) {
  double rel = (got - want) / want;
  printf("  %-28s %.4g MiB vs %.4g MiB: %+.2f %% (tolerance %.0f %%)\n", what, got / MiB,
         want / MiB, rel * 100, tol * 100);
  if (fabs(rel) > tol) fail_msg("%s: %.6g, expected %.6g +- %.0f %%", what, got, want, tol * 100);
}

/* ------------------------------------------------------------ options */

static int dummy_locator(const scalene_sample_context_t *c, scalene_location_t *l, void *a) {
  (void)c, (void)l, (void)a;
  return SCALENE_LOCATE_SKIP;
}

static void test_options(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_heap_options_t o;
  scalene_heap_options_init(&o);
  assert_int_equal(o.sampling_bytes, 1u << 20);
  assert_int_equal(o.hooks, SCALENE_HEAP_HOOK_MALLOC);
  scalene_heap_t *h = (scalene_heap_t *)1;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(scalene_heap_new(&o, p, &h, &err), SCALENE_EINVAL); /* no locator */
  assert_null(h);
  o.locator = dummy_locator;
  o.sampling_bytes = 0;
  assert_int_equal(scalene_heap_new(&o, p, &h, &err), SCALENE_EINVAL);
  o.sampling_bytes = 4096;
  o.table_capacity = 3;
  assert_int_equal(scalene_heap_new(&o, p, &h, &err), SCALENE_EINVAL);
  o.table_capacity = 1024;
  assert_int_equal(scalene_heap_new(&o, p, &h, &err), 0);
  scalene_heap_t *h2;
  assert_int_equal(scalene_heap_new(&o, p, &h2, &err), 0);
  assert_int_equal(scalene_heap_start(h, &err), 0);
  assert_int_equal(scalene_heap_start(h2, &err), SCALENE_ESTATE); /* one at a time */
  assert_int_equal(scalene_heap_stop(h), 0);
  scalene_heap_free(h2);
  scalene_heap_free(h);
  scalene_heap_free(NULL);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ (a) kept blocks */

static void test_kept_blocks(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 128 * KiB, SCALENE_HEAP_HOOK_MALLOC);
  assert_true(hstats(fx.h).hooked_objects > 0);
  static void *blocks[250];
  tl_phase = 1;
  for (int i = 0; i < 200; i++) blocks[i] = malloc(MiB);
  tl_phase = 2;
  for (int i = 200; i < 250; i++) blocks[i] = malloc(MiB);
  tl_phase = 0;
  for (int i = 0; i < 250; i++) assert_non_null(blocks[i]);
  assert_int_equal(scalene_heap_drain(fx.h), 0);
  scalene_heap_stats_t st = hstats(fx.h);
  assert_within("(a) live after keeping", st.live_bytes, 250.0 * MiB, 0.05);
  assert_within("(a) 200 MiB line", line_alloc(fx.p, 1), 200.0 * MiB, 0.05);
  assert_within("(a) 50 MiB line", line_alloc(fx.p, 2), 50.0 * MiB, 0.05);
  /* Freed from phase 0: still charged to the allocating lines. */
  for (int i = 0; i < 250; i++) free(blocks[i]);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  assert_true(fabs(line_freed(fx.p, 1) - line_alloc(fx.p, 1)) < 1.0);
  assert_true(fabs(line_freed(fx.p, 2) - line_alloc(fx.p, 2)) < 1.0);
  st = hstats(fx.h);
  assert_true(fabs(st.live_bytes) < 1.0 * MiB / 1024);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(st.hooked_objects, 0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ (b) churn */

static void churn(size_t total, size_t piece) {
  for (size_t done = 0; done < total; done += piece) {
    char *b = malloc(piece);
    assert_non_null(b);
    b[0] = 1;
    escape(b);
    free(b);
  }
}

static void test_churn(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, MiB, SCALENE_HEAP_HOOK_MALLOC);
  tl_phase = 3;
  churn(2048 * MiB, 64 * KiB);
  tl_phase = 0;
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  double a = line_alloc(fx.p, 3), f = line_freed(fx.p, 3);
  assert_within("(b) 2 GiB churn", a, 2048.0 * MiB, 0.10);
  assert_true(fabs(a - f) < 1.0);
  scalene_heap_stats_t st = hstats(fx.h);
  printf("  (b) samples %llu, frees matched %llu, live %.0f\n", (unsigned long long)st.samples,
         (unsigned long long)st.frees_matched, st.live_bytes);
  assert_int_equal(st.samples, st.frees_matched);
  assert_true(fabs(st.live_bytes) < 1.0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ (c) threads */

#define NTHREADS 8
static void *churn_thread(void *arg) {
  tl_phase = (int)(intptr_t)arg;
  churn(256 * MiB, 64 * KiB);
  tl_phase = 0;
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, MiB, SCALENE_HEAP_HOOK_MALLOC);
  pthread_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, churn_thread, (void *)(intptr_t)(10 + i)), 0);
  for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  double a = 0, f = 0;
  for (int i = 0; i < NTHREADS; i++) {
    a += line_alloc(fx.p, 10 + i);
    f += line_freed(fx.p, 10 + i);
  }
  assert_within("(c) 8 threads x 256 MiB", a, 2048.0 * MiB, 0.10);
  assert_true(fabs(a - f) < 1.0);
  scalene_heap_stats_t st = hstats(fx.h);
  assert_int_equal(st.dropped, 0);
  assert_true(fabs(st.live_bytes) < 1.0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ (d) free after restart */

static void test_free_after_restart(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 128 * KiB, SCALENE_HEAP_HOOK_MALLOC);
  void *b[20];
  tl_phase = 4;
  for (int i = 0; i < 20; i++) b[i] = malloc(MiB);
  tl_phase = 0;
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  uint64_t samples = hstats(fx.h).samples;
  assert_true(samples >= 19);
  scalene_error_t err;
  assert_int_equal(scalene_heap_start(fx.h, &err), 0);
  for (int i = 0; i < 20; i++) free(b[i]);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  assert_int_equal(hstats(fx.h).frees_matched, samples);
  assert_true(line_freed(fx.p, 4) > 0);
  assert_true(fabs(line_freed(fx.p, 4) - line_alloc(fx.p, 4)) < 1.0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ (e) stop unhooks */

static void test_start_stop(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 4 * KiB, SCALENE_HEAP_HOOK_MALLOC);
  scalene_error_t err;
  for (int round = 0; round < 20; round++) {
    if (round) assert_int_equal(scalene_heap_start(fx.h, &err), 0);
    assert_true(hstats(fx.h).hooked_objects > 0);
    tl_phase = 5;
    void *b = malloc(64 * KiB); /* s/R = 16: sampled with p = 1 - 1e-7 */
    tl_phase = 0;
    escape(b);
    free(b);
    assert_int_equal(scalene_heap_stop(fx.h), 0);
    assert_int_equal(hstats(fx.h).hooked_objects, 0);
  }
  uint64_t before = hstats(fx.h).samples;
  assert_true(before >= 19);
  tl_phase = 5;
  for (int i = 0; i < 100; i++) {
    void *b = malloc(64 * KiB);
    escape(b);
    free(b);
  }
  tl_phase = 0;
  assert_int_equal(hstats(fx.h).samples, before); /* nothing hooked any more */
  assert_int_equal(scalene_heap_drain(fx.h), 0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ (f) fork */

static void test_fork(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 64 * KiB, SCALENE_HEAP_HOOK_MALLOC);
  tl_phase = 6;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    for (int i = 0; i < 1000; i++) {
      char *b = malloc(64 * KiB);
      if (!b) _exit(3);
      b[0] = 1;
      escape(b);
      b = realloc(b, 128 * KiB);
      if (!b) _exit(4);
      free(b);
    }
    if (scalene_heap_stop(fx.h) != 0) _exit(5);
    _exit(0);
  }
  /* Meanwhile the parent keeps allocating through the hooks. */
  churn(64 * MiB, 64 * KiB);
  tl_phase = 0;
  wait_child_ok(pid, 10000);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  assert_true(line_alloc(fx.p, 6) > 0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ (g) statistics */

/* The countdown's statistics, through the record API (no hook): M batches
 * of N reports of size s at mean R.  Each report is sampled with
 * probability p = 1 - exp(-s/R) independently of the others (memoryless
 * countdown), so the samples per batch K ~ Binomial(N, p): mean N p,
 * variance N p (1-p).  The batch mean has standard error
 * sqrt(N p (1-p) / M); the sample variance has relative standard error
 * about sqrt(2 / (M - 1)) = 7 % for M = 400, so it must lie within 30 %
 * (> 4 sigma) of the theory.  Each sample must weigh exactly s / p (to
 * 1e-9, against constants computed offline), and the estimated bytes
 * must be within 4 sigma of N M s (jemalloc's prof_bias check). */
static void stat_case(double s_over_r, double p_exact, int phase) {
  const double R = 4096;
  const size_t s = (size_t)(s_over_r * R);
  const int M = 400, N = 1000;
  fixture_t fx;
  fx_new(&fx, (uint64_t)R, 0);
  assert_int_equal(hstats(fx.h).hooked_objects, 0);
  double sum = 0, sum2 = 0;
  uintptr_t base = (uintptr_t)0x10000000;
  tl_phase = phase;
  for (int m = 0; m < M; m++) {
    uint64_t before = hstats(fx.h).samples;
    for (int i = 0; i < N; i++) {
      void *ptr = (void *)(base + ((uintptr_t)(m * N + i) << 6));
      scalene_heap_record_alloc(ptr, s, SCALENE_HEAP_PYTHON);
      scalene_heap_record_free(ptr, SCALENE_HEAP_PYTHON);
    }
    double k = (double)(hstats(fx.h).samples - before);
    sum += k;
    sum2 += k * k;
    assert_int_equal(scalene_heap_drain(fx.h), 0);
  }
  tl_phase = 0;
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  double mean = sum / M, var = (sum2 - sum * sum / M) / (M - 1);
  double emean = N * p_exact, evar = N * p_exact * (1 - p_exact);
  printf("  (g) s/R=%-5g samples/batch mean %.3f (theory %.3f), variance %.3f (theory %.3f)\n",
         s_over_r, mean, emean, var, evar);
  assert_true(fabs(mean - emean) < 4 * sqrt(evar / M));
  assert_true(var > 0.7 * evar && var < 1.3 * evar);
  const scalene_line_stats_t *l = line(fx.p, phase);
  assert_non_null(l);
  assert_int_equal(l->alloc_samples, (uint64_t)sum);
  double w = l->alloc_bytes / (double)l->alloc_samples;
  if (fabs(w - (double)s / p_exact) > 1e-9 * w)
    fail_msg("weight %.12g, expected s/p = %.12g", w, (double)s / p_exact);
  assert_true(fabs(l->python_bytes - l->alloc_bytes) < 1e-6 * l->alloc_bytes);
  double truth = (double)M * N * s;
  double sd = (s / p_exact) * sqrt((double)M * N * p_exact * (1 - p_exact));
  printf("  (g) estimate %.6g vs %.6g bytes (%.2f sigma)\n", l->alloc_bytes, truth,
         (l->alloc_bytes - truth) / sd);
  assert_true(fabs(l->alloc_bytes - truth) < 4 * sd);
  assert_true(fabs(l->freed_bytes - l->alloc_bytes) < 1e-6 * l->alloc_bytes);
  scalene_heap_stats_t st = hstats(fx.h);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(st.frees_matched, st.samples);
  fx_free(&fx);
}

static void test_statistics(void **state) {
  (void)state;
  /* p = 1 - exp(-x) for x = 1/64, 1/4, 1, 4 (Python: -math.expm1(-x)). */
  stat_case(1.0 / 64, 0.015503562994591593, 20);
  stat_case(0.25, 0.22119921692859512, 21);
  stat_case(1.0, 0.6321205588285577, 22);
  stat_case(4.0, 0.9816843611112658, 23);
}

/* Bracketed reports (a PyMem hook that calls malloc): counted once. */
static void test_enter_leave(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 4 * KiB, SCALENE_HEAP_HOOK_MALLOC);
  tl_phase = 7;
  for (int i = 0; i < 100; i++) {
    scalene_heap_enter();             /* the OBJ-domain hook */
    scalene_heap_enter();             /* ... falls back to the RAW-domain hook */
    void *b = malloc(256 * KiB);      /* the inner malloc: not counted */
    scalene_heap_record_alloc(b, 256 * KiB, SCALENE_HEAP_PYTHON); /* inner: not counted */
    scalene_heap_leave();
    scalene_heap_record_alloc(b, 256 * KiB, SCALENE_HEAP_PYTHON); /* outer: counted */
    scalene_heap_leave();
    scalene_heap_enter();
    scalene_heap_record_free(b, SCALENE_HEAP_PYTHON);
    free(b);
    scalene_heap_leave();
  }
  tl_phase = 0;
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  const scalene_line_stats_t *l = line(fx.p, 7);
  assert_non_null(l);
  assert_int_equal(l->alloc_samples, 100); /* s/R = 64: every one sampled, once */
  assert_within("(enter/leave) python bytes", l->python_bytes, 100.0 * 256 * KiB, 0.01);
  assert_true(fabs(l->freed_bytes - l->alloc_bytes) < 1.0);
  fx_free(&fx);
}

/* mmap/munmap of anonymous private mappings count; file mappings do not. */
static void test_mmap(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 4 * KiB, SCALENE_HEAP_HOOK_MALLOC);
  tl_phase = 8;
  void *m[10];
  for (int i = 0; i < 10; i++) {
    m[i] = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m[i] != MAP_FAILED);
  }
  void *shared = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(shared != MAP_FAILED);
  void *c = calloc(16, 64 * KiB);
  void *a = aligned_alloc(4096, 64 * KiB);
  void *pm = NULL;
  assert_int_equal(posix_memalign(&pm, 64, 64 * KiB), 0);
  /* reallocarray: 1 MiB, then grown to 2 MiB (the 1 MiB block freed) */
  void *ra = reallocarray(NULL, 16, 64 * KiB);
  assert_non_null(ra);
  ra = reallocarray(ra, 32, 64 * KiB);
  assert_non_null(ra);
  escape(c);
  escape(a);
  escape(pm);
  escape(ra);
  tl_phase = 0;
  assert_int_equal(scalene_heap_drain(fx.h), 0);
  /* 10 MiB mapped, 1 MiB calloc, 2 x 64 KiB aligned, 1 + 2 MiB by
   * reallocarray; the shared mapping not */
  assert_within("(mmap) anon + aligned", line_alloc(fx.p, 8), 14.125 * MiB, 0.01);
  assert_within("(reallocarray) grown block freed", line_freed(fx.p, 8), 1.0 * MiB, 0.01);
  for (int i = 0; i < 10; i++) munmap(m[i], MiB);
  munmap(shared, MiB);
  free(c);
  free(a);
  free(pm);
  free(ra);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  assert_true(fabs(line_freed(fx.p, 8) - line_alloc(fx.p, 8)) < 1.0);
  fx_free(&fx);
}

/* scalene_heap_wrap_allocator: an allocator backed by malloc, wrapped as
 * Python's, and a second wrapped allocator that calls the first (as
 * CPython's OBJ domain falls back to RAW).  64 KiB blocks at R = 4 KiB are
 * all sampled with weight s (to 1.1e-7): every byte counts exactly once,
 * as Python's, though the malloc hooks also see the inner mallocs. */
static void *inner_malloc(void *ctx, size_t n) { (void)ctx; return malloc(n); }
static void *inner_calloc(void *ctx, size_t a, size_t b) { (void)ctx; return calloc(a, b); }
static void *inner_realloc(void *ctx, void *p, size_t n) { (void)ctx; return realloc(p, n); }
static void inner_free(void *ctx, void *p) { (void)ctx; free(p); }

static scalene_allocator_t g_raw; /* the wrapped malloc-backed allocator */
static void *outer_malloc(void *ctx, size_t n) { (void)ctx; return g_raw.malloc(g_raw.ctx, n); }
static void *outer_calloc(void *ctx, size_t a, size_t b) {
  (void)ctx;
  return g_raw.calloc(g_raw.ctx, a, b);
}
static void *outer_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  return g_raw.realloc(g_raw.ctx, p, n);
}
static void outer_free(void *ctx, void *p) { (void)ctx; g_raw.free(g_raw.ctx, p); }

static void test_wrap_allocator(void **state) {
  (void)state;
  static scalene_heap_wrapper_t w_raw, w_obj;
  scalene_allocator_t raw = {NULL, inner_malloc, inner_calloc, inner_realloc, inner_free};
  scalene_allocator_t obj = {NULL, outer_malloc, outer_calloc, outer_realloc, outer_free};
  scalene_allocator_t wobj;
  assert_int_equal(scalene_heap_wrap_allocator(&w_raw, &raw, SCALENE_HEAP_PYTHON, 0, &g_raw), 0);
  assert_int_equal(scalene_heap_wrap_allocator(&w_obj, &obj, SCALENE_HEAP_PYTHON, 0, &wobj), 0);
  assert_ptr_equal(g_raw.ctx, &w_raw);
  scalene_allocator_t bad = raw;
  bad.free = NULL;
  assert_int_equal(scalene_heap_wrap_allocator(&w_raw, &bad, 0, 0, &g_raw), SCALENE_EINVAL);
  assert_int_equal(scalene_heap_wrap_allocator(&w_raw, &raw, 0x80, 0, &g_raw), SCALENE_EINVAL);
  assert_int_equal(scalene_heap_wrap_allocator(NULL, &raw, 0, 0, &g_raw), SCALENE_EINVAL);

  fixture_t fx;
  fx_new(&fx, 4 * KiB, SCALENE_HEAP_HOOK_MALLOC);
  tl_phase = 25;
  void *b[16];
  for (int i = 0; i < 8; i++) b[i] = g_raw.malloc(g_raw.ctx, 64 * KiB); /* 512 KiB */
  for (int i = 8; i < 16; i++) b[i] = wobj.calloc(wobj.ctx, 1, 64 * KiB); /* 512 KiB, nested */
  b[0] = wobj.realloc(wobj.ctx, b[0], 128 * KiB); /* frees 64 KiB, allocates 128 KiB */
  for (int i = 0; i < 16; i++) assert_non_null(b[i]);
  tl_phase = 0;
  assert_int_equal(scalene_heap_drain(fx.h), 0);
  const scalene_line_stats_t *l = line(fx.p, 25);
  assert_non_null(l);
  assert_within("(wrap) counted once", l->alloc_bytes, 1152.0 * KiB, 1e-5);
  assert_within("(wrap) as Python's", l->python_bytes, 1152.0 * KiB, 1e-5);
  for (int i = 0; i < 16; i++) {
    if (i % 2) g_raw.free(g_raw.ctx, b[i]);
    else wobj.free(wobj.ctx, b[i]);
  }
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  assert_true(fabs(l->freed_bytes - l->alloc_bytes) < 1.0);
  fx_free(&fx);
}

/* SCALENE_HEAP_POOLED: a bump "pool" serves 1..512 bytes without malloc
 * and hands larger requests to the wrapped malloc-backed allocator, as
 * pymalloc hands them to the RAW domain.  With R = 1 byte every block is
 * sampled with weight s (to 1e-300): each counts exactly once, as Python's. */
#define POOL_BYTES (600 * 512)
static _Alignas(16) unsigned char g_pool[POOL_BYTES];
static size_t g_pool_used;
static int in_pool(const void *p) {
  return (const unsigned char *)p >= g_pool && (const unsigned char *)p < g_pool + POOL_BYTES;
}
static void *pool_malloc(void *ctx, size_t n) {
  (void)ctx;
  if (n - 1 < 512 && g_pool_used + 512 <= POOL_BYTES) {
    void *p = g_pool + g_pool_used;
    g_pool_used += 512;
    return p;
  }
  return g_raw.malloc(g_raw.ctx, n);
}
static void *pool_calloc(void *ctx, size_t a, size_t b) {
  void *p = pool_malloc(ctx, a * b);
  if (p) memset(p, 0, a * b);
  return p;
}
static void *pool_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  if (in_pool(p)) fail_msg("pool_realloc of a pool block: not used here");
  return g_raw.realloc(g_raw.ctx, p, n);
}
static void pool_free(void *ctx, void *p) {
  (void)ctx;
  if (!in_pool(p)) g_raw.free(g_raw.ctx, p);
}

/* The requests both pool tests make on line `phase`: 500 small ones
 * (malloc and calloc of 512 bytes), 4 of 64 KiB (the fallback domain's,
 * which the pool hands on), and big[0] grown to 128 KiB (64 KiB freed).
 * Returns the bytes they allocate. */
static double pool_requests(scalene_allocator_t wp, int phase, void **small, void **big) {
  g_pool_used = 0;
  tl_phase = phase;
  for (int i = 0; i < 500; i++) small[i] = i % 2 ? wp.malloc(wp.ctx, 512) : wp.calloc(wp.ctx, 2, 256);
  for (int i = 0; i < 4; i++) big[i] = wp.malloc(wp.ctx, 64 * KiB);
  big[0] = wp.realloc(wp.ctx, big[0], 128 * KiB);
  tl_phase = 0;
  return 500.0 * 512 + 4.0 * 64 * KiB + 128.0 * KiB;
}

/* At R = 1 byte: line `phase` counted exactly `want` bytes, all Python's. */
static const scalene_line_stats_t *assert_counted_once(const fixture_t *fx, int phase, double want,
                                                       const char *tag) {
  assert_int_equal(scalene_heap_drain(fx->h), 0);
  const scalene_line_stats_t *l = line(fx->p, phase);
  assert_non_null(l);
  char what[64];
  snprintf(what, sizeof what, "(%s) counted once", tag);
  assert_within(what, l->alloc_bytes, want, 1e-9);
  snprintf(what, sizeof what, "(%s) as Python's", tag);
  assert_within(what, l->python_bytes, want, 1e-9);
  return l;
}

static void test_wrap_pooled(void **state) {
  (void)state;
  static scalene_heap_wrapper_t w_raw, w_pool;
  scalene_allocator_t raw = {NULL, inner_malloc, inner_calloc, inner_realloc, inner_free};
  scalene_allocator_t pool = {NULL, pool_malloc, pool_calloc, pool_realloc, pool_free};
  scalene_allocator_t wp;
  assert_int_equal(scalene_heap_wrap_allocator(&w_raw, &raw, SCALENE_HEAP_PYTHON, 0, &g_raw), 0);
  assert_int_equal(scalene_heap_wrap_allocator(&w_pool, &pool, SCALENE_HEAP_POOLED, 0, &wp),
                   SCALENE_EINVAL); /* pool_max 0 */
  assert_int_equal(scalene_heap_wrap_allocator(&w_pool, &pool,
                                               SCALENE_HEAP_PYTHON | SCALENE_HEAP_POOLED, 512, &wp),
                   0);
  fixture_t fx;
  fx_new(&fx, 1, SCALENE_HEAP_HOOK_MALLOC);
  void *small[500], *big[4];
  double want = pool_requests(wp, 26, small, big);
  for (int i = 0; i < 500; i++) assert_true(in_pool(small[i]));
  for (int i = 0; i < 4; i++) assert_false(in_pool(big[i]));
  const scalene_line_stats_t *l = assert_counted_once(&fx, 26, want, "pooled");
  for (int i = 0; i < 500; i++) wp.free(wp.ctx, small[i]);
  for (int i = 0; i < 4; i++) wp.free(wp.ctx, big[i]);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  assert_true(fabs(l->freed_bytes - l->alloc_bytes) < 1.0);
  fx_free(&fx);
}

/* scalene_heap_wrap_pool: the same bump pool, whose free hands foreign
 * blocks to the wrapped malloc-backed allocator (g_raw), as pymalloc's
 * hands them to the RAW domain.  At R = 1 byte every request is sampled:
 * the 500 small ones are served by the fallback, not the pool, and count
 * exactly once, as Python's; the free is the pool's own function, and the
 * sampled blocks' frees are counted by g_raw's wrapper.  At R = 1 MiB
 * nearly every small request stays in the pool.  `serial`: the same with
 * SCALENE_HEAP_SERIALIZED (the wrapper's own countdown). */
/* Wraps g_raw (malloc-backed) and the bump pool with scalene_heap_wrap_pool
 * and `flags`, after checking the arguments it refuses; returns the pool's
 * wrapper. */
static scalene_allocator_t wrap_test_pool(unsigned int flags) {
  static scalene_heap_wrapper_t w_raw, w_pool;
  scalene_allocator_t raw = {NULL, inner_malloc, inner_calloc, inner_realloc, inner_free};
  scalene_allocator_t pool = {NULL, pool_malloc, pool_calloc, pool_realloc, pool_free};
  scalene_allocator_t wp;
  assert_int_equal(scalene_heap_wrap_allocator(&w_raw, &raw, SCALENE_HEAP_PYTHON, 0, &g_raw), 0);
  assert_int_equal(scalene_heap_wrap_pool(&w_pool, &pool, &raw, flags, 0, &wp),
                   SCALENE_EINVAL); /* pool_max 0 */
  assert_int_equal(scalene_heap_wrap_pool(&w_pool, &pool, &raw, SCALENE_HEAP_POOLED, 512, &wp),
                   SCALENE_EINVAL); /* only SCALENE_HEAP_PYTHON and SCALENE_HEAP_SERIALIZED */
  assert_int_equal(scalene_heap_wrap_pool(&w_pool, &pool, &raw, flags, 512, &wp), 0);
  assert_true(wp.free == pool_free);
  return wp;
}

static void check_pool_divert(unsigned int serial, int phase) {
  scalene_allocator_t wp = wrap_test_pool(SCALENE_HEAP_PYTHON | serial);

  fixture_t fx;
  /* A start with another mean first: a countdown drawn for it must not run
   * on into the next start's (R = 1 byte: every request sampled).  The
   * thread's countdown is redrawn at the start; a serialized one is wrapped
   * again, as the binding does (test_wrap_pool_serialized_carry). */
  fx_new(&fx, 1 * MiB, SCALENE_HEAP_HOOK_MALLOC);
  g_pool_used = 0;
  void *first = wp.malloc(wp.ctx, 64);
  wp.free(wp.ctx, first);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  fx_free(&fx);

  fx_new(&fx, 1, SCALENE_HEAP_HOOK_MALLOC);
  if (serial) wp = wrap_test_pool(SCALENE_HEAP_PYTHON | serial);
  void *small[500], *big[4];
  double want = pool_requests(wp, phase, small, big);
  tl_phase = phase;
  small[0] = wp.realloc(wp.ctx, small[0], 256); /* a sampled block moves, still sampled */
  tl_phase = 0;
  want += 256;
  for (int i = 0; i < 500; i++) assert_false(in_pool(small[i]));
  for (int i = 0; i < 4; i++) assert_false(in_pool(big[i]));
  assert_int_equal(g_pool_used, 0);
  const scalene_line_stats_t *l = assert_counted_once(&fx, phase, want, "divert");
  for (int i = 0; i < 500; i++) wp.free(wp.ctx, small[i]);
  for (int i = 0; i < 4; i++) wp.free(wp.ctx, big[i]);
  assert_int_equal(scalene_heap_drain(fx.h), 0);
  assert_true(fabs(l->freed_bytes - l->alloc_bytes) < 1.0);
  /* Inside a bracket (a thread of the profiler's own) nothing is counted
   * and the requests stay in the pool. */
  uint64_t samples = hstats(fx.h).samples;
  g_pool_used = 0;
  tl_phase = phase;
  scalene_heap_enter();
  for (int i = 0; i < 100; i++) small[i] = wp.malloc(wp.ctx, 128);
  scalene_heap_leave();
  tl_phase = 0;
  for (int i = 0; i < 100; i++) assert_true(in_pool(small[i]));
  assert_int_equal(hstats(fx.h).samples, samples);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  fx_free(&fx);

  /* R = 1 MiB: 500 x 512 bytes = 250 KiB; each request is sampled with
   * p = 1 - exp(-512/2^20) = 4.9e-4, so the expected number outside the
   * pool is 0.24 (P(more than 5) < 1e-6). */
  fx_new(&fx, 1 * MiB, SCALENE_HEAP_HOOK_MALLOC);
  if (serial) wp = wrap_test_pool(SCALENE_HEAP_PYTHON | serial); /* R = 1's countdown: gone */
  g_pool_used = 0;
  int outside = 0;
  for (int i = 0; i < 500; i++) {
    small[i] = wp.malloc(wp.ctx, 512);
    outside += !in_pool(small[i]);
  }
  for (int i = 0; i < 500; i++) wp.free(wp.ctx, small[i]);
  print_message("  (divert%s) R = 1 MiB: %d of 500 small requests sampled\n",
                serial ? ", serialized" : "", outside);
  assert_true(outside <= 5);
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  fx_free(&fx);
}

static void test_wrap_pool_divert(void **state) {
  (void)state;
  check_pool_divert(0, 27);
}

static void test_wrap_pool_serialized(void **state) {
  (void)state;
  check_pool_divert(SCALENE_HEAP_SERIALIZED, 28);
}

/* The requests of 512 bytes a serialized wrapper serves from the pool
 * before one is sampled (leaves it), of at most `limit`; each is freed, so
 * the pool never fills.  Returns `limit` when none was sampled. */
static int unsampled_run(scalene_allocator_t wp, int limit) {
  for (int i = 0; i < limit; i++) {
    g_pool_used = 0;
    void *p = wp.malloc(wp.ctx, 512);
    int sampled = !in_pool(p);
    wp.free(wp.ctx, p);
    if (sampled) return i;
  }
  return limit;
}

/* A start of test_wrap_pool_serialized_carry at mean R on line `phase`,
 * and its stop. */
static void carry_start(fixture_t *fx, uint64_t mean, int phase) {
  fx_new(fx, mean, SCALENE_HEAP_HOOK_MALLOC);
  tl_phase = phase;
}
static void carry_stop(fixture_t *fx) {
  tl_phase = 0;
  assert_int_equal(scalene_heap_stop(fx->h), 0);
  fx_free(fx);
}

/* SCALENE_HEAP_SERIALIZED without wrapping again: a countdown drawn before
 * a stop runs on into the next start (heap.h).  Requests of 512 bytes; at
 * R = 1 byte a sampled one weighs 512 exactly, at R = 2^40 one is sampled
 * with p = 512 / 2^40 = 4.7e-10.
 * - Parked, fresh from a wrap: at most 4 KiB (8 requests) go unsampled
 *   after a start at R = 1, then every request is sampled.
 * - Parked after a start had drawn its countdown: the request that runs
 *   the park out draws the new start's countdown before it counts, so at
 *   R = 2^40 it stays unsampled (a wrong mark would sample it for sure).
 * - Drawn at R = 2^40 and carried into a start at R = 1: 100 requests
 *   stay unsampled (the documented reason to wrap again when the mean
 *   changes; a countdown below 51 200 bytes has p = 4.7e-8); wrapped
 *   again, every request is sampled.
 * - Drawn at R = 1 and carried into a start at R = 1: its first request
 *   runs it out and is sampled as that start's. */
static void test_wrap_pool_serialized_carry(void **state) {
  (void)state;
  scalene_allocator_t wp = wrap_test_pool(SCALENE_HEAP_PYTHON | SCALENE_HEAP_SERIALIZED);
  g_pool_used = 0;
  for (int i = 0; i < 4; i++) /* no sampler: the countdown parks */
    assert_true(in_pool(wp.malloc(wp.ctx, 64)));

  fixture_t fx;
  carry_start(&fx, 1, 30);
  int parked = unsampled_run(wp, 100);
  print_message("  (serialized, parked) %d requests unsampled after the start\n", parked);
  assert_true(parked <= 8);
  assert_int_equal(unsampled_run(wp, 100), 0);
  assert_int_equal(unsampled_run(wp, 100), 0);
  assert_int_equal(scalene_heap_drain(fx.h), 0);
  assert_within("(serialized, parked) sampled requests", line_alloc(fx.p, 30), 3 * 512.0, 1e-9);
  carry_stop(&fx);

  /* The R = 1 countdown runs out with no sampler: parked, then 9 more
   * requests (4608 bytes) run the park out once more and leave 3584. */
  for (int i = 0; i < 10; i++) assert_int_equal(unsampled_run(wp, 1), 1);
  carry_start(&fx, UINT64_C(1) << 40, 31);
  assert_int_equal(unsampled_run(wp, 100), 100);
  carry_stop(&fx);

  carry_start(&fx, 1, 32);
  assert_int_equal(unsampled_run(wp, 100), 100); /* R = 2^40's countdown runs on */
  wp = wrap_test_pool(SCALENE_HEAP_PYTHON | SCALENE_HEAP_SERIALIZED);
  assert_int_equal(unsampled_run(wp, 100), 0);
  carry_stop(&fx);

  carry_start(&fx, 1, 33);
  assert_int_equal(unsampled_run(wp, 1), 0);
  assert_int_equal(unsampled_run(wp, 100), 0);
  assert_int_equal(scalene_heap_drain(fx.h), 0);
  assert_within("(serialized, carried) sampled requests", line_alloc(fx.p, 33), 2 * 512.0, 1e-9);
  carry_stop(&fx);
}

/* SCALENE_HEAP_SERIALIZED at a mean the requests do not swamp: 200 000
 * requests of 256 bytes at R = 16 KiB, every other one made inside a
 * bracket, whose samples are dropped.  The unbracketed half, 25.6 MB, is
 * estimated from ~1560 samples: each is taken with p = 1 - exp(-256/16384)
 * and weighs 256/p, so the estimate's relative sigma is
 * sqrt((1-p)/(p N)) = sqrt(63.5/100000) = 2.5 %; 4 sigma is 10 %. */
static void test_wrap_pool_serialized_estimate(void **state) {
  (void)state;
  scalene_allocator_t wp = wrap_test_pool(SCALENE_HEAP_PYTHON | SCALENE_HEAP_SERIALIZED);
  fixture_t fx;
  fx_new(&fx, 16 * KiB, SCALENE_HEAP_HOOK_MALLOC);
  tl_phase = 29;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    g_pool_used = 0; /* the pool block is free again at once */
    if (i % 2) scalene_heap_enter();
    void *p = wp.malloc(wp.ctx, 256);
    if (i % 2) scalene_heap_leave();
    wp.free(wp.ctx, p);
    assert_int_equal(scalene_heap_drain(fx.h) >= 0, 1);
  }
  tl_phase = 0;
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  const scalene_line_stats_t *l = line(fx.p, 29);
  assert_non_null(l);
  print_message("  (serialized) %.0f samples' worth\n", l->alloc_bytes / (16.0 * KiB));
  assert_within("(serialized) unbracketed half", l->alloc_bytes, n / 2 * 256.0, 0.10);
  assert_true(fabs(l->freed_bytes - l->alloc_bytes) < 1.0);
  fx_free(&fx);
}

/* scalene_heap_hook_alloc, as an LD_PRELOAD shim calls it: native share,
 * charged to the caller given, not counted inside enter/leave, and freed
 * through scalene_heap_record_free.  64 KiB blocks at R = 4 KiB: s/R = 16,
 * every block sampled (p = 1 - 1.1e-7) with weight s (to 1.1e-7). */
static void test_hook_alloc(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 4 * KiB, 0);
  const uintptr_t caller = (uintptr_t)0x5ca1e0;
  uintptr_t base = (uintptr_t)0x20000000;
  tl_phase = 24;
  for (int i = 0; i < 100; i++)
    scalene_heap_hook_alloc((void *)(base + ((uintptr_t)i << 16)), 64 * KiB, caller);
  assert_true(atomic_load(&g_last_pc) == caller);
  uint64_t samples = hstats(fx.h).samples;
  assert_int_equal(samples, 100);
  scalene_heap_enter(); /* a bracketed allocator's inner malloc: not counted */
  scalene_heap_hook_alloc((void *)(base + ((uintptr_t)100 << 16)), 64 * KiB, caller);
  scalene_heap_leave();
  assert_int_equal(hstats(fx.h).samples, samples);
  for (int i = 0; i < 100; i++) scalene_heap_record_free((void *)(base + ((uintptr_t)i << 16)), 0);
  tl_phase = 0;
  assert_int_equal(scalene_heap_stop(fx.h), 0);
  scalene_heap_hook_alloc((void *)base, 64 * KiB, caller); /* no sampler: a no-op */
  const scalene_line_stats_t *l = line(fx.p, 24);
  assert_non_null(l);
  assert_within("(hook_alloc) native bytes", l->alloc_bytes, 100.0 * 64 * KiB, 1e-5);
  assert_true(l->python_bytes == 0.0);
  assert_true(fabs(l->freed_bytes - l->alloc_bytes) < 1.0);
  assert_int_equal(hstats(fx.h).frees_matched, 100);
  fx_free(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_kept_blocks),
      cmocka_unit_test(test_churn),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_free_after_restart),
      cmocka_unit_test(test_start_stop),
      cmocka_unit_test(test_fork),
      cmocka_unit_test(test_statistics),
      cmocka_unit_test(test_enter_leave),
      cmocka_unit_test(test_mmap),
      cmocka_unit_test(test_hook_alloc),
      cmocka_unit_test(test_wrap_allocator),
      cmocka_unit_test(test_wrap_pooled),
      cmocka_unit_test(test_wrap_pool_divert),
      cmocka_unit_test(test_wrap_pool_serialized),
      cmocka_unit_test(test_wrap_pool_serialized_estimate),
      cmocka_unit_test(test_wrap_pool_serialized_carry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
