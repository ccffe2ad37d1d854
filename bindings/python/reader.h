/* scalene._core: how the locator reads memory (core_reader, core_fetch).
 *
 * ASYNC-SIGNAL-SAFE: runs in the CPU sampler's signal handler, in the heap
 * and copy samplers' hooks and on the sampler's thread (remote mode), as
 * frames.h says; no allocation, no lock.  Kept apart from frames.h, which
 * needs CPython's internal headers, so that tests/c/test_reader.c can check
 * it without Python. */
#ifndef SCALENE_CORE_READER_H
#define SCALENE_CORE_READER_H

#include <stdint.h>
#include <string.h>

#include <scalene/sampler.h>

/* How one walk reads memory: a safe reader (one with read windows) goes
 * through scalene_safe_read(), the other uses plain loads (frames.h says
 * which walk uses which).  A safe read costs a system call, and a walk
 * through a deep library stack (copy.deepcopy, a parser, a framework)
 * reads a frame, then its code object, for each of a hundred or more
 * frames.  So a safe read fetches the whole CORE_WINDOW-aligned block
 * around what was asked for, and later reads that fall in one of the
 * CORE_WINDOWS blocks fetched last are copied from it: a thread's frames
 * lie next to each other in its data stack, and a string's header and
 * text next to each other.  (_core.c's core_locate also reads each code
 * object once per walk.)  An aligned block never straddles a page (pages
 * are 4 KiB or larger), so it is readable whenever the bytes asked for
 * are.  The copies are a snapshot taken during this walk, which is all the
 * walk ever had.  The windows live on the walker's stack (signal handlers
 * on several threads may walk at once); a plain walk has none (`win`
 * NULL). */
#define CORE_WINDOW 1024
#define CORE_WINDOWS 2

typedef struct core_reader {
  unsigned int clock;                      /* ticks on every window hit or fill */
  uintptr_t base[CORE_WINDOWS];            /* start of each window; 0: empty */
  unsigned int used[CORE_WINDOWS];         /* clock of its last use */
  unsigned char (*win)[CORE_WINDOW];       /* CORE_WINDOWS of them; NULL: plain loads */
} core_reader;

/* win: CORE_WINDOWS windows for a safe reader, NULL for plain loads. */
static inline void core_reader_init(core_reader *r, unsigned char (*win)[CORE_WINDOW])
{
  r->clock = 0;
  r->win = win;
  for (int i = 0; i < CORE_WINDOWS; i++) {
    r->base[i] = 0;
    r->used[i] = 0;
  }
}

/* Copies n bytes at src into dst: 0, or -1 when src is obviously bad or (a
 * safe read) not readable. */
static inline int core_fetch(core_reader *r, void *dst, const void *src, size_t n)
{
  uintptr_t a = (uintptr_t)src;
  if (a < 4096)
    return -1;
  if (r->win == NULL) {
    memcpy(dst, src, n);
    return 0;
  }
  uintptr_t b = a & ~(uintptr_t)(CORE_WINDOW - 1);
  if (n == 0 || n > CORE_WINDOW - (a - b)) /* not inside one block */
    return scalene_safe_read(dst, src, n);
  int lru = 0;
  for (int i = 0; i < CORE_WINDOWS; i++) {
    if (r->base[i] == b) {
      r->used[i] = ++r->clock;
      memcpy(dst, r->win[i] + (a - b), n);
      return 0;
    }
    if (r->used[i] < r->used[lru])
      lru = i;
  }
  if (scalene_safe_read(r->win[lru], (const void *)b, CORE_WINDOW) < 0) {
    r->base[lru] = 0;
    r->used[lru] = 0;
    return -1;
  }
  r->base[lru] = b;
  r->used[lru] = ++r->clock;
  memcpy(dst, r->win[lru] + (a - b), n);
  return 0;
}

#endif /* SCALENE_CORE_READER_H */
