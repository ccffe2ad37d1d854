/* scalene._core: reading a thread's Python frames from a signal handler.
 *
 * ASYNC-SIGNAL-SAFE.  Everything in this header and in the layout headers it
 * includes (frames_311.h for CPython 3.11 and 3.12, frames_313.h for 3.13)
 * runs inside the CPU sampler's signal handler, inside the heap or copy
 * sampler's hook (an allocation or copy this thread made), or on the
 * sampler's own thread while the profiled thread may run under it (remote
 * mode).  It makes no allocation, takes no lock, calls no Python API, and
 * reads memory only through core_fetch(), whose reader says how:
 *   - safe (the handler, remote mode): scalene_safe_read().  In remote mode
 *     any pointer may be stale.  In the handler the interrupted thread is
 *     this thread, so nothing changes while we read, but what we read need
 *     not be mapped: when a frame returns, CPython pops it (and may unmap its
 *     data-stack chunk, or free its code object's arena) before it points
 *     current_frame at the caller, so a signal in between finds
 *     current_frame naming unmapped memory.  A plain copy there crashed the
 *     program (seen once in a few hundred benchmark runs); a safe read costs
 *     a system call, a few microseconds per sample.
 *   - not safe (inside a hook, ctx->in_hook): plain loads.  The thread is at
 *     an allocation or copy it made itself, where its frames are consistent
 *     (docs/safety.md, "The locator inside an allocation"); the heap sampler
 *     takes hundreds of samples a second, and system calls there cost an
 *     allocation-heavy program a few per cent.
 *
 * The common interface, implemented by each layout header with field access
 * only:
 *
 *   const void *core_frames_top(const PyThreadState *ts, core_reader *r);
 *       the innermost interpreter frame of ts, or NULL;
 *   int core_frames_read(const void *frame, core_reader *r, core_frame_t *out);
 *       copies what the locator needs out of one frame: 0, or -1 when the
 *       frame cannot be read (the walk stops there).
 *
 * Everything the layouts share (code objects, strings, line tables) is read
 * in _core.c. */
#ifndef SCALENE_CORE_FRAMES_H
#define SCALENE_CORE_FRAMES_H

#include <stdint.h>
#include <string.h>

#include <scalene/sampler.h>

/* The internal headers need Py_BUILD_CORE; Python.h must already be
 * included without it. */
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE

/* One frame, as much of it as the locator uses. */
typedef struct core_frame {
  const void *code;           /* f_code (3.11/3.12) or f_executable (3.13); unchecked */
  const _Py_CODEUNIT *instr;  /* the instruction whose line the frame is at */
  const void *previous;       /* the calling frame, or NULL */
  int cstack;                 /* owned by the C stack (a shim frame): skip it */
  int generator;              /* owned by a generator: never incomplete */
} core_frame_t;

/* How one walk reads memory: a safe reader (one with read windows) goes
 * through scalene_safe_read(), the other uses plain loads (see above).  A
 * safe read costs a system call, and a walk through a deep library stack
 * (copy.deepcopy, a parser, a framework) reads a frame, then its code
 * object, for each of a hundred or more frames.  So a safe read fetches
 * the whole CORE_WINDOW-aligned block around what was asked for, and later
 * reads that fall in one of the CORE_WINDOWS blocks fetched last are
 * copied from it: a thread's frames lie next to each other in its data
 * stack, and a string's header and text next to each other.  (_core.c's
 * core_locate also reads each code object once per walk.)  An aligned
 * block never straddles a page (pages are 4 KiB or larger), so it is
 * readable whenever the bytes asked for are.  The copies are a snapshot
 * taken during this walk, which is all the walk ever had.  The windows
 * live on the walker's stack (signal handlers on several threads may walk
 * at once); a plain walk has none (`win` NULL). */
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

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
#include "frames_311.h"
#elif PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
#include "frames_313.h"
#else
#error "frames.h supports CPython 3.11 to 3.13 only"
#endif

#endif /* SCALENE_CORE_FRAMES_H */
