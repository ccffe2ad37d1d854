/* Tests for bindings/python/reader.h: how the Python locator reads memory.
 *
 * A safe reader (the signal handler's, remote mode's) serves reads from
 * the last CORE_WINDOWS aligned blocks it fetched: the checks change the
 * memory after a fetch and look at what a later read returns, the old
 * bytes (served from a window) or the new ones (read again).  Reads next
 * to a page that cannot be read must fail, leaving the window they were
 * to fill empty and the other one as it was. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reader.h"

/* Four aligned blocks of bytes, each byte b + its offset + 37 times its
 * block's number, so that no two blocks hold the same bytes. */
static unsigned char *blocks(unsigned char b) {
  void *p = mmap(NULL, 4 * CORE_WINDOW, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  assert_true(p != MAP_FAILED); /* page-aligned, so block-aligned */
  unsigned char *m = p;
  for (size_t i = 0; i < 4 * CORE_WINDOW; i++)
    m[i] = (unsigned char)(b + i + 37 * (i / CORE_WINDOW));
  return m;
}

static uint64_t get(core_reader *r, const unsigned char *at) {
  uint64_t v = 0;
  assert_int_equal(core_fetch(r, &v, at, sizeof v), 0);
  return v;
}

static uint64_t now(const unsigned char *at) {
  uint64_t v;
  memcpy(&v, at, sizeof v);
  return v;
}

static void test_plain_reader(void **state) {
  (void)state;
  unsigned char *m = blocks(1);
  core_reader r;
  core_reader_init(&r, NULL);
  uint64_t v = 0;
  assert_int_equal(core_fetch(&r, &v, m + 10, sizeof v), 0);
  assert_true(v == now(m + 10));
  m[10] ^= 0xff; /* no snapshot: every read is a load */
  assert_true(get(&r, m + 10) == now(m + 10));
  assert_int_equal(core_fetch(&r, &v, (const void *)16, sizeof v), -1);
  munmap(m, 4 * CORE_WINDOW);
}

static void test_window_serves_its_block(void **state) {
  (void)state;
  unsigned char win[CORE_WINDOWS][CORE_WINDOW];
  unsigned char *m = blocks(2);
  core_reader r;
  core_reader_init(&r, win);
  uint64_t first = now(m + 100), last = now(m + CORE_WINDOW - 8);
  assert_true(get(&r, m + 100) == first);
  memset(m, 0xee, CORE_WINDOW);
  /* The rest of the block, up to its last byte, comes from the window. */
  assert_true(get(&r, m + 100) == first);
  assert_true(get(&r, m + CORE_WINDOW - 8) == last);
  /* A read across the block's end is read whole, now. */
  assert_true(get(&r, m + CORE_WINDOW - 4) == now(m + CORE_WINDOW - 4));
  /* So is one longer than a block. */
  unsigned char big[CORE_WINDOW + 16];
  assert_int_equal(core_fetch(&r, big, m + 8, sizeof big), 0);
  assert_memory_equal(big, m + 8, sizeof big);
  munmap(m, 4 * CORE_WINDOW);
}

static void test_windows_keep_the_last_used_blocks(void **state) {
  (void)state;
  unsigned char win[CORE_WINDOWS][CORE_WINDOW];
  unsigned char *m = blocks(3);
  unsigned char *a = m, *b = m + CORE_WINDOW, *c = m + 2 * CORE_WINDOW;
  uint64_t va = now(a + 8), vb = now(b + 8), vc = now(c + 8);
  assert_true(va != vb && vb != vc && va != vc);
  core_reader r;
  core_reader_init(&r, win);
  get(&r, a);
  get(&r, b);
  get(&r, a); /* a used after b */
  get(&r, c); /* so c takes b's window */
  memset(m, 0x5a, 4 * CORE_WINDOW);
  assert_true(get(&r, a + 8) == va);
  assert_true(get(&r, c + 8) == vc);
  uint64_t fresh = get(&r, b + 8); /* read again, into a's window (used before c) */
  assert_true(fresh == now(b + 8) && fresh != vb);
  assert_true(get(&r, c + 8) == vc);
  assert_true(get(&r, a + 8) == now(a + 8));
  munmap(m, 4 * CORE_WINDOW);
}

static void test_next_to_an_unreadable_page(void **state) {
  (void)state;
  unsigned char win[CORE_WINDOWS][CORE_WINDOW];
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                          -1, 0);
  assert_true(m != MAP_FAILED);
  memset(m, 0x11, page);
  assert_int_equal(mprotect(m + page, page, PROT_NONE), 0);
  core_reader r;
  core_reader_init(&r, win);
  unsigned char *end = m + page - 8; /* the readable page's last 8 bytes */
  uint64_t start = now(m), v = now(end);
  assert_true(get(&r, m) == start); /* both windows full, the first block's */
  assert_true(get(&r, end) == v);   /* used before the end's */
  memset(m, 0x22, page);
  uint64_t out = 0;
  /* A fill that fails takes the least recently used window (the first
   * block's) and leaves it empty; the end's stays. */
  assert_int_equal(core_fetch(&r, &out, m + page, sizeof out), -1);  /* beyond */
  assert_true(get(&r, end) == v);
  assert_true(get(&r, m) == now(m) && now(m) != start);
  assert_int_equal(core_fetch(&r, &out, end + 4, sizeof out), -1);   /* straddles */
  assert_int_equal(core_fetch(&r, &out, m + page + 64, 1), -1);
  assert_int_equal(core_fetch(&r, &out, m + page, sizeof out), -1);  /* still */
  munmap(m, 2 * page);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_reader),
      cmocka_unit_test(test_window_serves_its_block),
      cmocka_unit_test(test_windows_keep_the_last_used_blocks),
      cmocka_unit_test(test_next_to_an_unreadable_page),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
