/* The drain threads' wake-ups (heap_internal.h): a producer whose record
 * ends a quarter of the sample ring wakes the drain thread, so a burst of
 * samples is drained as it comes instead of overflowing the ring while the
 * thread sleeps out its period.
 *
 * The drain period (scalene__drain_period_ns) is made an hour long here,
 * so that nothing but a producer's wake drains the ring before stop: the
 * checks are exact and do not depend on how fast this machine schedules
 * the drain thread.  The only wait is a bounded poll (30 s) for a drain
 * that a wake has already requested. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <scalene/scalene.h>

#include "heap_internal.h"
#include "memcpy_internal.h"

#define CAPACITY 64u /* a quarter: 16 records */
#define QUARTER (CAPACITY / 4)
#define FILE_NAME "drain.c"
#define HOUR_NS INT64_C(3600000000000)

static int fixed_locator(const scalene_sample_context_t *ctx, scalene_location_t *loc,
                         void *arg) {
  (void)ctx;
  (void)arg;
  memcpy(loc->file, FILE_NAME, sizeof FILE_NAME);
  loc->line = 1;
  return SCALENE_LOCATE_FOUND;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Polls pending(s) until it reads 0, for at most 30 s; returns the last
 * value read. */
static uint64_t wait_drained(uint64_t (*pending)(void *), void *s) {
  uint64_t n = pending(s);
  for (int i = 0; i < 3000 && n != 0; i++) {
    sleep_ms(10);
    n = pending(s);
  }
  return n;
}

static uint64_t heap_pending(void *h) { return scalene__heap_ring_pending(h); }
static uint64_t copy_pending(void *m) { return scalene__memcpy_ring_pending(m); }

static int setup(void **state) {
  (void)state;
  atomic_store(&scalene__drain_period_ns, HOUR_NS);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  atomic_store(&scalene__drain_period_ns, INT64_C(50000000));
  return 0;
}

/* Blocks the heap sampler is told about (no hooks: only these count). */
static _Alignas(16) char g_blocks[CAPACITY * 16];

static void report_allocs(int from, int to) {
  for (int i = from; i < to; i++) scalene_heap_record_alloc(&g_blocks[i * 16], 4096, 0);
}

static void test_heap_burst_wakes_drain(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  assert_non_null(p);
  scalene_heap_options_t o;
  scalene_heap_options_init(&o);
  o.sampling_bytes = 1; /* every reported block is a sample */
  o.hooks = 0;
  o.locator = fixed_locator;
  o.buffer_capacity = CAPACITY;
  scalene_heap_t *h;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(scalene_heap_new(&o, p, &h, &err), 0);
  assert_int_equal(scalene_heap_start(h, &err), 0);

  /* One record short of a quarter: no wake, and the period is an hour. */
  report_allocs(0, QUARTER - 1);
  sleep_ms(100);
  assert_int_equal(scalene__heap_ring_pending(h), QUARTER - 1);

  /* The record that ends the quarter wakes the drain. */
  report_allocs(QUARTER - 1, QUARTER);
  assert_int_equal(wait_drained(heap_pending, h), 0);

  /* Three more quarters: the ring is filled once over, nothing dropped. */
  report_allocs(QUARTER, CAPACITY);
  assert_int_equal(wait_drained(heap_pending, h), 0);

  assert_int_equal(scalene_heap_stop(h), 0);
  scalene_heap_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  assert_int_equal(scalene_heap_get_stats(h, &st), 0);
  assert_int_equal(st.samples, CAPACITY);
  assert_int_equal(st.dropped, 0);
  const scalene_line_stats_t *l = scalene_profile_find_line(p, FILE_NAME, 1);
  assert_non_null(l);
  assert_int_equal(l->alloc_samples, CAPACITY);
  scalene_heap_free(h);
  scalene_profile_free(p);
}

static void test_copy_burst_wakes_drain(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  assert_non_null(p);
  scalene_memcpy_options_t o;
  scalene_memcpy_options_init(&o);
  o.sampling_bytes = 1; /* every reported copy is a sample */
  o.locator = fixed_locator;
  o.buffer_capacity = CAPACITY;
  scalene_memcpy_t *m;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  assert_int_equal(scalene_memcpy_new(&o, p, &m, &err), 0);
  assert_int_equal(scalene_memcpy_start(m, &err), 0);

  /* The copy hooks are installed too, so a copy this thread made through
   * a patched GOT entry would be a sample as well: it makes none between
   * these calls. */
  for (unsigned i = 0; i < QUARTER - 1; i++) scalene_memcpy_record(4096);
  sleep_ms(100);
  assert_int_equal(scalene__memcpy_ring_pending(m), QUARTER - 1);
  for (unsigned i = QUARTER - 1; i < CAPACITY; i++) scalene_memcpy_record(4096);
  assert_int_equal(wait_drained(copy_pending, m), 0);

  assert_int_equal(scalene_memcpy_stop(m), 0);
  scalene_memcpy_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  assert_int_equal(scalene_memcpy_get_stats(m, &st), 0);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(st.samples, CAPACITY);
  scalene_memcpy_free(m);
  scalene_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_heap_burst_wakes_drain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_copy_burst_wakes_drain, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
