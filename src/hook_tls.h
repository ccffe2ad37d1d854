/* libscaleneprof: thread-local state shared by the samplers' hooks
 * (heap_hooks.c: the malloc family; memcpy_hooks.c: the copy family).
 * Never installed.
 *
 * RUNS INSIDE MALLOC AND MEMCPY: everything here is async-signal-safe,
 * re-entrant and allocation-free (plain initial-exec TLS, no
 * __tls_get_addr, which may allocate on first use in a dlopen'ed object).
 *
 * One re-entrancy depth serves both samplers.  depth > 0 means "inside a
 * sampler (its slow path, its locator, its drain thread) or inside an
 * allocator that reports its own blocks (scalene_heap_enter)": the malloc
 * hooks do not count allocations then, and copies are not counted either.
 * The copy hooks' fast path is a single subtraction from
 * scalene__tl_copy_countdown, so rather than testing the depth there, the
 * outermost scalene__depth_enter parks that countdown at INT64_MAX (a copy
 * then never reaches the slow path, which tests the depth anyway) and the
 * matching scalene__depth_leave puts the saved value back: copies made
 * inside the bracket leave no trace.  A signal handler that runs between
 * the two stores of either function only copies (its bytes are then
 * counted or dropped, never both). */
#ifndef SCALENE_HOOK_TLS_H
#define SCALENE_HOOK_TLS_H

#include <stdint.h>

#define SCALENE__TLS_IE __attribute__((tls_model("initial-exec")))
#define SCALENE__TLS_SHARED __attribute__((tls_model("initial-exec"), visibility("hidden")))

/* heap_hooks.c */
extern __thread int scalene__tl_depth SCALENE__TLS_SHARED;
/* memcpy_hooks.c: bytes until the next copy sample, and its saved value
 * while the depth is positive. */
extern __thread int64_t scalene__tl_copy_countdown SCALENE__TLS_SHARED;
extern __thread int64_t scalene__tl_copy_saved SCALENE__TLS_SHARED;

static inline void scalene__depth_enter(void) {
  if (scalene__tl_depth++ == 0) {
    scalene__tl_copy_saved = scalene__tl_copy_countdown;
    scalene__tl_copy_countdown = INT64_MAX;
  }
}

static inline void scalene__depth_leave(void) {
  if (scalene__tl_depth > 0 && --scalene__tl_depth == 0)
    scalene__tl_copy_countdown = scalene__tl_copy_saved;
}

#endif /* SCALENE_HOOK_TLS_H */
