/* Tests of the memcpy sampler (scalene/memcpy.h) and of its sharing the
 * GOT interposition with the heap sampler.
 *
 * The copies are made by tests/c/memcpy_victim.so (dlopened; path
 * MEMCPY_VICTIM_SO), whose calls to memcpy and friends go through its own
 * GOT: this program holds libscaleneprof-internal (for
 * scalene__interpose_slot_count), so it is the object interposition skips
 * as "ourselves" and its own calls are never hooked.  As in test_heap, the
 * locator reads a thread-local phase: phase p > 0 is charged to file
 * "test-phase", line p; phase 0 is skipped (cmocka's and libc's copies).
 *
 * Under AddressSanitizer (tests/run-sanitizers.sh) the same tests run
 * unchanged: the victim's GOT entries then hold libasan's memcpy/strcpy
 * interceptors, which is also what dlsym(RTLD_DEFAULT) returns, so the
 * hooks call those (as the heap sampler's wrap libasan's malloc).
 *
 * Accuracy.  n copies of s bytes; each is sampled independently with
 * probability p = 1 - exp(-s/R) (the countdown is exponential, hence
 * memoryless) and then counts s/p bytes, so the estimate is unbiased with
 * relative standard deviation sigma = sqrt((1-p) / (n p))
 * (docs/sampling-math.md).  With s = 64 KiB and R = 128 KiB, p = 0.3935:
 *  - 1 GiB (n = 16384): sigma = 0.97 %, 4 sigma = 3.9 %;
 *  - 256 MiB (n = 4096, half strcpy, half memmove): sigma = 1.9 %,
 *    4 sigma = 7.8 %;
 *  - 8 threads x 128 MiB (n = 16384 in all): the total as the first.
 * The bounds are computed below from these formulas, not typed in.
 * With R = 1 byte and copies of >= 64 bytes, p = 1 - e^-64: every copy is
 * sampled with weight s (to 1e-27), so the counting rules of each function
 * are checked exactly. */
#include "config.h"

#include <dlfcn.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <cmocka.h>

#include <scalene/scalene.h>

#include "wait_child.h"

#include "interpose.h"

#ifndef MEMCPY_VICTIM_SO
#error "MEMCPY_VICTIM_SO must name the victim shared object"
#endif

#define PHASE_FILE "test-phase"
#define KiB ((size_t)1024)
#define MiB (KiB * 1024)
#define PIECE (64 * KiB)

/* ------------------------------------------------------------ the victim */

static struct {
  void *handle;
  void *(*memcpy_)(void *, const void *, size_t);
  void *(*memmove_)(void *, const void *, size_t);
  void *(*mempcpy_)(void *, const void *, size_t);
  char *(*strcpy_)(char *, const char *);
  char *(*stpcpy_)(char *, const char *);
  char *(*strcat_)(char *, const char *);
  char *(*strncpy_)(char *, const char *, size_t);
  char *(*stpncpy_)(char *, const char *, size_t);
  char *(*strncat_)(char *, const char *, size_t);
  wchar_t *(*wmemcpy_)(wchar_t *, const wchar_t *, size_t);
  wchar_t *(*wmemmove_)(wchar_t *, const wchar_t *, size_t);
  void *(*memcpy_chk)(void *, const void *, size_t, size_t);
  char *(*strcpy_chk)(char *, const char *, size_t);
  char *(*strncpy_chk)(char *, const char *, size_t, size_t);
  size_t (*copy_loop)(void *, const void *, size_t, size_t);
  void *(*malloc_)(size_t);
  void (*free_)(void *);
} V;

static void bind(void **fn, const char *name) {
  *fn = dlsym(V.handle, name);
  if (*fn == NULL) fail_msg("dlsym %s: %s", name, dlerror());
}

static int setup_victim(void **state) {
  (void)state;
  V.handle = dlopen(MEMCPY_VICTIM_SO, RTLD_NOW | RTLD_LOCAL);
  if (V.handle == NULL) {
    fprintf(stderr, "dlopen %s: %s\n", MEMCPY_VICTIM_SO, dlerror());
    return -1;
  }
  bind((void **)&V.memcpy_, "victim_memcpy");
  bind((void **)&V.memmove_, "victim_memmove");
  bind((void **)&V.mempcpy_, "victim_mempcpy");
  bind((void **)&V.strcpy_, "victim_strcpy");
  bind((void **)&V.stpcpy_, "victim_stpcpy");
  bind((void **)&V.strcat_, "victim_strcat");
  bind((void **)&V.strncpy_, "victim_strncpy");
  bind((void **)&V.stpncpy_, "victim_stpncpy");
  bind((void **)&V.strncat_, "victim_strncat");
  bind((void **)&V.wmemcpy_, "victim_wmemcpy");
  bind((void **)&V.wmemmove_, "victim_wmemmove");
  bind((void **)&V.memcpy_chk, "victim_memcpy_chk");
  bind((void **)&V.strcpy_chk, "victim_strcpy_chk");
  bind((void **)&V.strncpy_chk, "victim_strncpy_chk");
  bind((void **)&V.copy_loop, "victim_copy_loop");
  bind((void **)&V.malloc_, "victim_malloc");
  bind((void **)&V.free_, "victim_free");
  return 0;
}

static int teardown_victim(void **state) {
  (void)state;
  if (V.handle) dlclose(V.handle);
  return 0;
}

/* ------------------------------------------------------------ locator */

static __thread volatile int tl_phase;
static __thread int tl_in_locator;
static atomic_int g_recursed;     /* locator entered while already inside */
static atomic_int g_locator_calls;
static char g_loc_src[MiB], g_loc_dst[MiB];

/* Async-signal-safe: TLS, fixed-size writes, and (phase 9) copies through
 * the victim, which the sampler must neither count nor sample. */
static int phase_locator(const scalene_sample_context_t *ctx, scalene_location_t *loc,
                         void *arg) {
  (void)arg;
  (void)ctx;
  int ph = tl_phase;
  if (ph <= 0) return SCALENE_LOCATE_SKIP;
  if (tl_in_locator) atomic_fetch_add(&g_recursed, 1);
  tl_in_locator = 1;
  atomic_fetch_add(&g_locator_calls, 1);
  if (ph == 9) {
    V.memcpy_(g_loc_dst, g_loc_src, sizeof g_loc_dst);
    V.strncpy_(g_loc_dst, "a locator's own string copy", 64);
    void *b = V.malloc_(MiB); /* nor does the heap sampler count this */
    V.free_(b);
  }
  V.strncpy_(loc->file, PHASE_FILE, sizeof loc->file);
  memcpy(loc->function, "phase", sizeof "phase");
  loc->line = (uint32_t)ph;
  loc->function_line = 1;
  tl_in_locator = 0;
  return SCALENE_LOCATE_FOUND;
}

/* ------------------------------------------------------------ helpers */

typedef struct {
  scalene_profile_t *p;
  scalene_memcpy_t *m;
} fixture_t;

static void fx_new(fixture_t *fx, uint64_t mean) {
  fx->p = scalene_profile_new();
  assert_non_null(fx->p);
  scalene_memcpy_options_t o;
  scalene_memcpy_options_init(&o);
  o.sampling_bytes = mean;
  o.locator = phase_locator;
  o.buffer_capacity = 16384;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(scalene_memcpy_new(&o, fx->p, &fx->m, &err), 0);
  int rc = scalene_memcpy_start(fx->m, &err);
  if (rc != 0) fail_msg("scalene_memcpy_start: %s: %s", scalene_err_name(rc), err.text);
}

static void fx_free(fixture_t *fx) {
  scalene_memcpy_free(fx->m);
  scalene_profile_free(fx->p);
}

static scalene_memcpy_stats_t mstats(const scalene_memcpy_t *m) {
  scalene_memcpy_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  assert_int_equal(scalene_memcpy_get_stats(m, &st), 0);
  return st;
}

static scalene_heap_stats_t hstats(const scalene_heap_t *h) {
  scalene_heap_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  assert_int_equal(scalene_heap_get_stats(h, &st), 0);
  return st;
}

static double line_copy(const scalene_profile_t *p, int phase) {
  const scalene_line_stats_t *l = scalene_profile_find_line(p, PHASE_FILE, (uint32_t)phase);
  return l ? l->copy_bytes : 0.0;
}

static double line_alloc(const scalene_profile_t *p, int phase) {
  const scalene_line_stats_t *l = scalene_profile_find_line(p, PHASE_FILE, (uint32_t)phase);
  return l ? l->alloc_bytes : 0.0;
}

/* 4 sigma of the relative error for n copies of s bytes at mean R. */
static double four_sigma(double n, double s, double R) {
  double p = -expm1(-s / R);
  return 4.0 * sqrt((1.0 - p) / (n * p));
}

static void assert_within(const char *what, double got, double want, double tol) {
  double rel = (got - want) / want;
  printf("  %-32s %.6g MiB vs %.6g MiB: %+.3f %% (tolerance %.2f %%)\n", what, got / MiB,
         want / MiB, rel * 100, tol * 100);
  if (fabs(rel) > tol) fail_msg("%s: %.9g, expected %.9g +- %.2f %%", what, got, want, tol * 100);
}

/* The value of the victim's GOT entry for symbol (it has exactly one). */
static void *victim_entry(const char *symbol) {
  void **slots[4];
  int n = scalene__interpose_got_slots((const void *)V.copy_loop, symbol, slots, 4);
  assert_int_equal(n, 1);
  return __atomic_load_n(slots[0], __ATOMIC_RELAXED);
}

static char g_src[PIECE], g_dst[PIECE];

/* total bytes in PIECE-sized memcpy calls through the victim. */
static void copy_through(size_t total) {
  assert_int_equal(V.copy_loop(g_dst, g_src, total, PIECE), total);
}

/* ------------------------------------------------------------ options */

static int dummy_locator(const scalene_sample_context_t *c, scalene_location_t *l, void *a) {
  (void)c, (void)l, (void)a;
  return SCALENE_LOCATE_SKIP;
}

static void test_options(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_memcpy_options_t o;
  scalene_memcpy_options_init(&o);
  assert_int_equal(o.sampling_bytes, 4u << 20);
  assert_int_equal(o.buffer_capacity, 4096);
  scalene_memcpy_t *m = (scalene_memcpy_t *)1, *m2;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(scalene_memcpy_new(&o, p, &m, &err), SCALENE_EINVAL); /* no locator */
  assert_null(m);
  o.locator = dummy_locator;
  o.sampling_bytes = 0;
  assert_int_equal(scalene_memcpy_new(&o, p, &m, &err), SCALENE_EINVAL);
  o.sampling_bytes = 4096;
  o.buffer_capacity = 3;
  assert_int_equal(scalene_memcpy_new(&o, p, &m, &err), SCALENE_EINVAL);
  o.buffer_capacity = 64;
  assert_int_equal(scalene_memcpy_new(&o, p, &m, &err), 0);
  assert_int_equal(scalene_memcpy_new(&o, p, &m2, &err), 0);
  assert_int_equal(scalene_memcpy_start(m, &err), 0);
  assert_int_equal(scalene_memcpy_start(m2, &err), SCALENE_ESTATE); /* one at a time */
  assert_true(mstats(m).hooked > 0);
  assert_int_equal(scalene_memcpy_stop(m), 0);
  assert_int_equal(mstats(m).hooked, 0);
  assert_int_equal(scalene__interpose_slot_count(), 0);
  scalene_memcpy_free(m2);
  scalene_memcpy_free(m);
  scalene_memcpy_free(NULL);
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ counting rules */

/* R = 1 byte: every copy of >= 64 bytes is sampled, with weight its size. */
static void test_counting_rules(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 1);
  static char d[4096], s[4096];
  static wchar_t wd[512], ws[512];
  memset(s, 'x', sizeof s);
  s[99] = '\0'; /* a 99-character string: 100 bytes with the NUL */
  struct {
    int phase;
    double want;
  } cases[] = {{31, 1000}, {32, 1001}, {33, 1002}, {34, 100}, {35, 100},  {36, 100},
               {37, 100},  {38, 80},   {39, 100},  {40, 100}, {41, 80},   {42, 100},
               {43, 400},  {44, 404},  {45, 1003}, {46, 100}, {47, 80},   {48, 5000}};
  tl_phase = 31, V.memcpy_(d, s, 1000);
  tl_phase = 32, V.memmove_(d, s, 1001);
  tl_phase = 33, V.mempcpy_(d, s, 1002);
  tl_phase = 34, V.strcpy_(d, s);              /* 99 + NUL */
  tl_phase = 35, V.stpcpy_(d, s);              /* 99 + NUL */
  d[0] = '\0';
  tl_phase = 36, V.strcat_(d, s);              /* 99 + NUL appended */
  tl_phase = 37, V.strncpy_(d, s, 200);        /* 99 + NUL (the padding is no copy) */
  tl_phase = 38, V.strncpy_(d, s, 80);         /* truncated: 80 */
  tl_phase = 39, V.stpncpy_(d, s, 300);        /* 99 + NUL */
  d[0] = '\0';
  tl_phase = 40, V.strncat_(d, s, 150);        /* 99 + NUL */
  d[0] = '\0';
  tl_phase = 41, V.strncat_(d, s, 79);         /* 79 + NUL */
  tl_phase = 42, V.strcpy_chk(d, s, sizeof d); /* 99 + NUL */
  tl_phase = 43, V.wmemcpy_(wd, ws, 100 * 4 / sizeof(wchar_t));
  tl_phase = 44, V.wmemmove_(wd, ws, 101 * 4 / sizeof(wchar_t));
  tl_phase = 45, V.memcpy_chk(d, s, 1003, sizeof d);
  tl_phase = 46, V.strncpy_chk(d, s, 100, sizeof d); /* 99 + NUL */
  tl_phase = 47, V.strncpy_chk(d, s, 80, sizeof d);  /* 80 */
  tl_phase = 48, scalene_memcpy_record(5000);
  tl_phase = 0;
  assert_int_equal(scalene_memcpy_stop(fx.m), 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double got = line_copy(fx.p, cases[i].phase);
    if (fabs(got - cases[i].want) > 1e-6)
      fail_msg("phase %d: %.9g bytes counted, expected %.9g", cases[i].phase, got,
               cases[i].want);
  }
  assert_int_equal(mstats(fx.m).dropped, 0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ accuracy */

static void test_accuracy(void **state) {
  (void)state;
  const double R = 128 * KiB;
  fixture_t fx;
  fx_new(&fx, (uint64_t)R);
  static char big_src[PIECE], big_dst[PIECE];
  memset(big_src, 'a', sizeof big_src);
  big_src[PIECE - 1] = '\0'; /* strcpy copies exactly PIECE bytes */
  tl_phase = 1; /* location A: 1 GiB by memcpy */
  copy_through(1024 * MiB);
  tl_phase = 2; /* location B: 256 MiB, strcpy and memmove alternating */
  for (size_t done = 0; done < 256 * MiB; done += 2 * PIECE) {
    V.strcpy_(big_dst, big_src);
    V.memmove_(big_dst, big_src, PIECE);
  }
  tl_phase = 0;
  assert_int_equal(scalene_memcpy_stop(fx.m), 0);
  assert_within("A: 1 GiB memcpy", line_copy(fx.p, 1), 1024.0 * MiB,
                four_sigma(16384, PIECE, R));
  assert_within("B: 256 MiB strcpy+memmove", line_copy(fx.p, 2), 256.0 * MiB,
                four_sigma(4096, PIECE, R));
  scalene_memcpy_stats_t st = mstats(fx.m);
  printf("  samples %llu, dropped %llu\n", (unsigned long long)st.samples,
         (unsigned long long)st.dropped);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(atomic_load(&g_recursed), 0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ locator copies */

/* Each 1 MiB copy at R = 64 KiB is sampled (p = 1 - e^-16); the locator
 * then copies 1 MiB + 64 bytes and allocates 1 MiB itself: none of it may
 * be counted (the estimate would double), sampled (the locator would be
 * re-entered) or charged by the heap sampler running alongside. */
static void test_locator_copies(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 64 * KiB);
  scalene_profile_t *hp = scalene_profile_new();
  scalene_heap_options_t ho;
  scalene_heap_options_init(&ho);
  ho.sampling_bytes = 4 * KiB;
  ho.locator = phase_locator;
  scalene_heap_t *h;
  scalene_error_t err;
  assert_int_equal(scalene_heap_new(&ho, hp, &h, &err), 0);
  assert_int_equal(scalene_heap_start(h, &err), 0);
  static char src[MiB], dst[MiB];
  atomic_store(&g_locator_calls, 0);
  tl_phase = 9;
  for (int i = 0; i < 64; i++) V.memcpy_(dst, src, sizeof dst);
  tl_phase = 0;
  assert_int_equal(scalene_memcpy_stop(fx.m), 0);
  assert_int_equal(scalene_heap_stop(h), 0);
  assert_int_equal(atomic_load(&g_recursed), 0);
  assert_int_equal(mstats(fx.m).samples, 64);
  assert_int_equal(atomic_load(&g_locator_calls), 64);
  assert_within("64 MiB, locator copying", line_copy(fx.p, 9), 64.0 * MiB, 1e-6);
  assert_true(line_alloc(hp, 9) == 0.0);
  assert_int_equal(hstats(h).samples, 0);
  scalene_heap_free(h);
  scalene_profile_free(hp);
  fx_free(&fx);
}

/* ------------------------------------------------------------ with the heap sampler */

static void both_running(fixture_t *fx, scalene_heap_t **hout, scalene_profile_t **hpout) {
  *hpout = scalene_profile_new();
  scalene_heap_options_t ho;
  scalene_heap_options_init(&ho);
  ho.sampling_bytes = 4 * KiB;
  ho.locator = phase_locator;
  scalene_error_t err;
  assert_int_equal(scalene_heap_new(&ho, *hpout, hout, &err), 0);
  assert_int_equal(scalene_heap_start(*hout, &err), 0);
  fx_new(fx, 4 * KiB);
}

static void copy_and_alloc(int phase) {
  tl_phase = phase;
  copy_through(MiB);
  void *b = V.malloc_(MiB);
  V.free_(b);
  tl_phase = 0;
}

static void test_with_heap(void **state) {
  (void)state;
  void *orig_memcpy = victim_entry("memcpy"), *orig_malloc = victim_entry("malloc");
  for (int order = 0; order < 2; order++) {
    fixture_t fx;
    scalene_heap_t *h;
    scalene_profile_t *hp;
    both_running(&fx, &h, &hp);
    unsigned int heap_hooked = hstats(h).hooked_objects, copy_hooked = mstats(fx.m).hooked;
    assert_true(heap_hooked > 0);
    assert_true(copy_hooked > 0);
    assert_true(victim_entry("memcpy") != orig_memcpy);
    assert_true(victim_entry("malloc") != orig_malloc);
    copy_and_alloc(50);
    assert_int_equal(scalene_memcpy_drain(fx.m), 0);
    assert_int_equal(scalene_heap_drain(h), 0);
    assert_within("both: copied", line_copy(fx.p, 50), MiB, four_sigma(16, PIECE, 4 * KiB));
    assert_within("both: allocated", line_alloc(hp, 50), MiB, 1e-6);
    if (order == 0) { /* memcpy first: the malloc hooks stay and count */
      assert_int_equal(scalene_memcpy_stop(fx.m), 0);
      assert_int_equal(mstats(fx.m).hooked, 0);
      assert_int_equal(hstats(h).hooked_objects, heap_hooked);
      assert_true(victim_entry("memcpy") == orig_memcpy);
      assert_true(victim_entry("malloc") != orig_malloc);
      copy_and_alloc(51);
      assert_int_equal(scalene_heap_stop(h), 0);
      assert_true(line_copy(fx.p, 51) == 0.0);
      assert_within("memcpy stopped: allocated", line_alloc(hp, 51), MiB, 1e-6);
    } else { /* heap first: the copy hooks stay and count */
      assert_int_equal(scalene_heap_stop(h), 0);
      assert_int_equal(hstats(h).hooked_objects, 0);
      assert_int_equal(mstats(fx.m).hooked, copy_hooked);
      assert_true(victim_entry("malloc") == orig_malloc);
      assert_true(victim_entry("memcpy") != orig_memcpy);
      copy_and_alloc(52);
      assert_int_equal(scalene_memcpy_stop(fx.m), 0);
      assert_true(line_alloc(hp, 52) == 0.0);
      assert_within("heap stopped: copied", line_copy(fx.p, 52), MiB,
                    four_sigma(16, PIECE, 4 * KiB));
    }
    assert_int_equal(scalene__interpose_slot_count(), 0);
    assert_true(victim_entry("memcpy") == orig_memcpy);
    assert_true(victim_entry("malloc") == orig_malloc);
    scalene_heap_free(h);
    scalene_profile_free(hp);
    fx_free(&fx);
  }
}

/* ------------------------------------------------------------ start/stop */

static void test_start_stop(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 4 * KiB);
  scalene_error_t err;
  for (int round = 0; round < 20; round++) {
    if (round) assert_int_equal(scalene_memcpy_start(fx.m, &err), 0);
    assert_true(mstats(fx.m).hooked > 0);
    tl_phase = 5;
    copy_through(PIECE); /* s/R = 16: sampled with p = 1 - 1e-7 */
    tl_phase = 0;
    assert_int_equal(scalene_memcpy_stop(fx.m), 0);
    assert_int_equal(mstats(fx.m).hooked, 0);
    assert_int_equal(scalene__interpose_slot_count(), 0);
  }
  uint64_t before = mstats(fx.m).samples;
  assert_true(before >= 19);
  tl_phase = 5;
  copy_through(100 * PIECE);
  tl_phase = 0;
  assert_int_equal(mstats(fx.m).samples, before); /* nothing hooked any more */
  assert_int_equal(scalene_memcpy_drain(fx.m), 0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ fork */

static void test_fork(void **state) {
  (void)state;
  fixture_t fx;
  fx_new(&fx, 64 * KiB);
  tl_phase = 6;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    copy_through(64 * MiB); /* the hooks pass through: nothing counted, no hang */
    if (scalene_memcpy_drain(fx.m) != 0) _exit(4);
    if (scalene_memcpy_stop(fx.m) != 0) _exit(5);
    if (scalene__interpose_slot_count() != 0) _exit(6);
    copy_through(MiB);
    _exit(0);
  }
  copy_through(64 * MiB); /* meanwhile the parent keeps copying through the hooks */
  tl_phase = 0;
  wait_child_ok(pid, 10000);
  assert_int_equal(scalene_memcpy_stop(fx.m), 0);
  /* 64 MiB in 1024 pieces at s/R = 1: 4 sigma = 9.5 % */
  assert_within("fork: parent's 64 MiB", line_copy(fx.p, 6), 64.0 * MiB,
                four_sigma(1024, PIECE, 64 * KiB));
  fx_free(&fx);
}

/* ------------------------------------------------------------ threads */

#define NTHREADS 8
static void *copy_thread(void *arg) {
  static char src[NTHREADS][PIECE], dst[NTHREADS][PIECE];
  int i = (int)(intptr_t)arg;
  tl_phase = 10 + i;
  V.copy_loop(dst[i], src[i], 128 * MiB, PIECE);
  tl_phase = 0;
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  const double R = 128 * KiB;
  fixture_t fx;
  fx_new(&fx, (uint64_t)R);
  pthread_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, copy_thread, (void *)(intptr_t)i), 0);
  for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
  assert_int_equal(scalene_memcpy_stop(fx.m), 0);
  double total = 0;
  for (int i = 0; i < NTHREADS; i++) total += line_copy(fx.p, 10 + i);
  assert_within("8 threads x 128 MiB", total, 1024.0 * MiB, four_sigma(16384, PIECE, R));
  assert_int_equal(mstats(fx.m).dropped, 0);
  assert_int_equal(atomic_load(&g_recursed), 0);
  fx_free(&fx);
}

/* ------------------------------------------------------------ preload shim */

/* With an LD_PRELOAD shim announcing itself (scalene_preload_active
 * returning nonzero, found through dlsym(RTLD_DEFAULT)), the heap sampler
 * patches no malloc entry; the memcpy sampler is unaffected.  The victim
 * plays the shim: made global, its flag switched on for this test only. */
static void test_preload_detected(void **state) {
  (void)state;
  void *g = dlopen(MEMCPY_VICTIM_SO, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
  assert_non_null(g);
  int *on = dlsym(V.handle, "victim_preload_on");
  assert_non_null(on);
  assert_non_null(dlsym(RTLD_DEFAULT, "scalene_preload_active"));
  void *orig_malloc = victim_entry("malloc");
  for (int shim = 1; shim >= 0; shim--) {
    *on = shim;
    fixture_t fx;
    scalene_heap_t *h;
    scalene_profile_t *hp;
    both_running(&fx, &h, &hp);
    if (shim) {
      assert_int_equal(hstats(h).hooked_objects, 0);
      assert_true(victim_entry("malloc") == orig_malloc);
    } else {
      assert_true(hstats(h).hooked_objects > 0);
      assert_true(victim_entry("malloc") != orig_malloc);
    }
    assert_true(mstats(fx.m).hooked > 0);
    copy_and_alloc(53);
    assert_int_equal(scalene_heap_stop(h), 0);
    assert_int_equal(scalene_memcpy_stop(fx.m), 0);
    assert_int_equal(scalene__interpose_slot_count(), 0);
    if (shim) assert_true(line_alloc(hp, 53) == 0.0); /* the shim would have reported it */
    else assert_within("no shim: allocated", line_alloc(hp, 53), MiB, 1e-6);
    assert_within("shim or not: copied", line_copy(fx.p, 53), MiB, four_sigma(16, PIECE, 4 * KiB));
    scalene_heap_free(h);
    scalene_profile_free(hp);
    fx_free(&fx);
  }
  dlclose(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_counting_rules),
      cmocka_unit_test(test_accuracy),
      cmocka_unit_test(test_locator_copies),
      cmocka_unit_test(test_with_heap),
      cmocka_unit_test(test_start_stop),
      cmocka_unit_test(test_fork),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_preload_detected),
  };
  return cmocka_run_group_tests(tests, setup_victim, teardown_victim);
}
