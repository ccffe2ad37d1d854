/* scalene._core: the frame layout of CPython 3.13.
 *
 * ASYNC-SIGNAL-SAFE (see frames.h): field access through core_fetch only.
 *
 * The innermost frame is tstate->current_frame (the _PyCFrame of 3.11/3.12
 * is gone); frames link outward through `previous`.  The code runs from
 * f_executable, which is a code object for Python frames and may be another
 * object (None) for others: _core.c checks its type.  `instr_ptr` is the
 * instruction executing or about to begin -- not one unit behind as in 3.12
 * -- and its offset is what PyUnstable_InterpreterFrame_GetLine() maps.
 * Shim frames are owned by the C stack and skipped. */
#ifndef SCALENE_CORE_FRAMES_313_H
#define SCALENE_CORE_FRAMES_313_H

#define CORE_FRAMES_LAYOUT "3.13 (current_frame, f_executable, instr_ptr)"

static inline const void *core_frames_top(const PyThreadState *ts, core_reader *r)
{
  struct _PyInterpreterFrame *frame = NULL;
  if (core_fetch(r, &frame, &ts->current_frame, sizeof frame) < 0)
    return NULL;
  return frame;
}

static inline int core_frames_read(const void *addr, core_reader *r, core_frame_t *out)
{
  _PyInterpreterFrame f;
  if (core_fetch(r, &f, addr, offsetof(_PyInterpreterFrame, localsplus)) < 0)
    return -1;
  out->code = f.f_executable;
  out->instr = f.instr_ptr;
  out->previous = f.previous;
  out->generator = f.owner == FRAME_OWNED_BY_GENERATOR;
  out->cstack = f.owner == FRAME_OWNED_BY_CSTACK;
  return 0;
}

#endif /* SCALENE_CORE_FRAMES_313_H */
