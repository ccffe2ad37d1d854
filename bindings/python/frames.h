/* scalene._core: reading a thread's Python frames from a signal handler.
 *
 * ASYNC-SIGNAL-SAFE.  Everything in this header and in the layout headers it
 * includes (frames_311.h for CPython 3.11 and 3.12, frames_313.h for 3.13)
 * runs inside the CPU sampler's signal handler, inside the heap or copy
 * sampler's hook (an allocation or copy this thread made), or on the
 * sampler's own thread while the profiled thread may run under it (remote
 * mode).  It makes no allocation, takes no lock, calls no Python API, and
 * reads memory only through core_fetch() (reader.h), whose reader says how:
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

#include "reader.h"

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

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
#include "frames_311.h"
#elif PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
#include "frames_313.h"
#else
#error "frames.h supports CPython 3.11 to 3.13 only"
#endif

#endif /* SCALENE_CORE_FRAMES_H */
