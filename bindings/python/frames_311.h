/* scalene._core: the frame layout of CPython 3.11 and 3.12.
 *
 * ASYNC-SIGNAL-SAFE (see frames.h): field access through core_fetch only.
 *
 * The innermost frame is tstate->cframe->current_frame; frames link outward
 * through `previous`.  `prev_instr` is "the code unit prior to the next
 * instruction": while an instruction runs it is that instruction (or, during
 * a Python-to-Python call, the CALL's last inline cache entry, which has the
 * CALL's location), so its offset is exactly what CPython's own
 * PyFrame_GetLineNumber() maps to a line.  3.12 pushes shim frames owned by
 * the C stack (FRAME_OWNED_BY_CSTACK) at each entry into the eval loop; they
 * belong to no source line and are skipped. */
#ifndef SCALENE_CORE_FRAMES_311_H
#define SCALENE_CORE_FRAMES_311_H

#define CORE_FRAMES_LAYOUT "3.11/3.12 (cframe->current_frame, prev_instr)"

static inline const void *core_frames_top(const PyThreadState *ts, core_reader *r)
{
  _PyCFrame *cframe = NULL;
  struct _PyInterpreterFrame *frame = NULL;
  if (core_fetch(r, &cframe, &ts->cframe, sizeof cframe) < 0 || cframe == NULL)
    return NULL;
  if (core_fetch(r, &frame, &cframe->current_frame, sizeof frame) < 0)
    return NULL;
  return frame;
}

static inline int core_frames_read(const void *addr, core_reader *r, core_frame_t *out)
{
  _PyInterpreterFrame f;
  if (core_fetch(r, &f, addr, offsetof(_PyInterpreterFrame, localsplus)) < 0)
    return -1;
  out->code = f.f_code;
  out->instr = f.prev_instr;
  out->previous = f.previous;
  out->generator = f.owner == FRAME_OWNED_BY_GENERATOR;
#if PY_VERSION_HEX >= 0x030C0000
  out->cstack = f.owner == FRAME_OWNED_BY_CSTACK;
#else
  out->cstack = 0;
#endif
  return 0;
}

#endif /* SCALENE_CORE_FRAMES_311_H */
