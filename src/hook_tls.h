/* libscaleneprof: thread-local state shared by the samplers' hooks
 * (heap_hooks.c: the malloc family; memcpy_hooks.c: the copy family).
 * Never installed.
 *
 * RUNS INSIDE MALLOC AND MEMCPY: everything here is async-signal-safe,
 * re-entrant and allocation-free (plain initial-exec TLS, no
 * __tls_get_addr, which may allocate on first use in a dlopen'ed object).
 *
 * All of it is one initial-exec TLS block, scalene__tls: a hook finds its
 * fields with one load of the block's offset.
 *
 * One re-entrancy depth serves both samplers.  depth > 0 means "inside a
 * sampler (its slow path, its locator, its drain thread) or inside an
 * allocator that reports its own blocks (scalene_heap_enter)": allocations
 * are not counted then, and copies are not counted either.  The hooks' fast
 * paths are a subtraction from a countdown, so rather than testing the
 * depth there, the outermost scalene__depth_enter parks both countdowns at
 * INT64_MAX (a call then never reaches a slow path, which tests the depth
 * anyway) and the matching scalene__depth_leave puts the saved values back:
 * what is allocated or copied inside the bracket leaves no trace.  A signal
 * handler that runs between the stores of either function only allocates
 * or copies (its bytes are then counted or dropped, never both). */
#ifndef SCALENE_HOOK_TLS_H
#define SCALENE_HOOK_TLS_H

#include <stdint.h>

#define SCALENE__TLS_IE __attribute__((tls_model("initial-exec")))
#define SCALENE__TLS_SHARED __attribute__((tls_model("initial-exec"), visibility("hidden")))

typedef struct scalene__hook_tls {
  int64_t heap_countdown; /* bytes until the next heap sample; INT64_MAX while parked */
  int64_t heap_saved;     /* heap_countdown while parked */
  int64_t copy_countdown; /* bytes until the next copy sample; INT64_MAX while parked */
  int64_t copy_saved;     /* copy_countdown while parked */
  uint64_t heap_rng;      /* xorshift64* states; 0 = not seeded */
  uint64_t copy_rng;
  uint32_t heap_gen;      /* scalene__heap_gen / scalene__memcpy_gen at the draw */
  uint32_t copy_gen;
  int depth;              /* the re-entrancy depth */
} scalene__hook_tls_t;

/* Defined in heap_hooks.c. */
extern __thread scalene__hook_tls_t scalene__tls SCALENE__TLS_SHARED;

static inline void scalene__depth_enter(void) {
  if (scalene__tls.depth++ == 0) {
    scalene__tls.heap_saved = scalene__tls.heap_countdown;
    scalene__tls.heap_countdown = INT64_MAX;
    scalene__tls.copy_saved = scalene__tls.copy_countdown;
    scalene__tls.copy_countdown = INT64_MAX;
  }
}

static inline void scalene__depth_leave(void) {
  if (scalene__tls.depth > 0 && --scalene__tls.depth == 0) {
    scalene__tls.heap_countdown = scalene__tls.heap_saved;
    scalene__tls.copy_countdown = scalene__tls.copy_saved;
  }
}

#endif /* SCALENE_HOOK_TLS_H */
