/* libscaleneprof: the memcpy sampler's code that runs INSIDE A COPY: the
 * replacement functions of the copy family, the thread-local countdown and
 * the lock-free sample ring.
 *
 * Everything in this file except install/remove (called from memcpy.c
 * outside any hook) may run inside memcpy, inside malloc, inside a signal
 * handler that interrupted either, and re-entrantly, so it is
 * async-signal-safe, re-entrant and allocation-free.  It calls only:
 *   - the real functions saved by scalene__interpose_install_set (the
 *     real_* pointers below; libc's own when one is still NULL),
 *   - strlen/strnlen on the source of a string copy (pure functions),
 *   - the consumer's locator (which must be async-signal-safe, sampler.h),
 *   - syscall(SYS_gettid), clock_gettime(CLOCK_MONOTONIC) and, once per
 *     quarter of the sample ring (or of the records a full ring drops),
 *     syscall(SYS_futex, FUTEX_WAKE) to wake the drain thread
 *     (scalene__drain_wake, which keeps errno),
 *   - C11 atomics on memory allocated at scalene_memcpy_new,
 * and never takes a lock, never calls libm and never touches errno.
 * Calls from this file to memcpy and friends go straight to libc:
 * libscaleneprof's own GOT is never patched.
 *
 * Fast path: a copy of n bytes subtracts n from the thread's countdown
 * (initial-exec TLS); only when that crosses zero (or a new start made the
 * countdown stale) does the slow path run.  Re-entrancy: the slow path,
 * the heap sampler's slow path and its allocator brackets run with the
 * shared depth (hook_tls.h) raised, which parks the countdown at
 * INT64_MAX, so a copy the locator (Python's, a C consumer's) makes is
 * neither counted nor sampled, and cannot recurse into the slow path. */
#define _GNU_SOURCE
#include "heap_internal.h"
#include "hook_tls.h"
#include "interpose.h"
#include "memcpy_internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

/* This sampler's thread-local state, in the block shared with heap_hooks.c
 * (hook_tls.h). */
#define tl_countdown scalene__tls.copy_countdown
#define tl_rng scalene__tls.copy_rng
#define tl_gen scalene__tls.copy_gen

_Atomic uint32_t scalene__memcpy_gen;
struct scalene_memcpy *_Atomic scalene__memcpy_active;

/* The real functions, stored by scalene__interpose_install_set. */
typedef void *(*mem_fn)(void *, const void *, size_t);
typedef void *(*mem_chk_fn)(void *, const void *, size_t, size_t);
typedef char *(*str_fn)(char *, const char *);
typedef char *(*str_chk_fn)(char *, const char *, size_t);
typedef char *(*strn_fn)(char *, const char *, size_t);
typedef char *(*strn_chk_fn)(char *, const char *, size_t, size_t);
typedef wchar_t *(*wmem_fn)(wchar_t *, const wchar_t *, size_t);
typedef wchar_t *(*wmem_chk_fn)(wchar_t *, const wchar_t *, size_t, size_t);

static mem_fn real_memcpy, real_memmove, real_mempcpy;
static str_fn real_strcpy, real_stpcpy, real_strcat;
static strn_fn real_strncpy, real_stpncpy, real_strncat;
static wmem_fn real_wmemcpy, real_wmemmove;
static mem_chk_fn real_memcpy_chk, real_memmove_chk, real_mempcpy_chk;
static str_chk_fn real_strcpy_chk, real_stpcpy_chk, real_strcat_chk;
static strn_chk_fn real_strncpy_chk, real_stpncpy_chk, real_strncat_chk;
static wmem_chk_fn real_wmemcpy_chk, real_wmemmove_chk;

/* glibc's fortified entry points (not declared by the headers), weak: a
 * C library without one has no entry to patch for it either. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wredundant-decls"
#define W __attribute__((weak))
W void *__memcpy_chk(void *, const void *, size_t, size_t);
W void *__memmove_chk(void *, const void *, size_t, size_t);
W void *__mempcpy_chk(void *, const void *, size_t, size_t);
W char *__strcpy_chk(char *, const char *, size_t);
W char *__stpcpy_chk(char *, const char *, size_t);
W char *__strcat_chk(char *, const char *, size_t);
W char *__strncpy_chk(char *, const char *, size_t, size_t);
W char *__stpncpy_chk(char *, const char *, size_t, size_t);
W char *__strncat_chk(char *, const char *, size_t, size_t);
W wchar_t *__wmemcpy_chk(wchar_t *, const wchar_t *, size_t, size_t);
W wchar_t *__wmemmove_chk(wchar_t *, const wchar_t *, size_t, size_t);
#undef W
#pragma GCC diagnostic pop

/* The countdown is drawn by scalene__draw_countdown (heap_hooks.c), on
 * this file's own per-thread state. */

/* ------------------------------------------------------------ ring */

/* Vyukov's bounded queue, with each slot's turn stored relative to its
 * index (stored = turn - index): the zero pages of a fresh ring already
 * read "ready for the first producer", so nothing writes the ring at
 * creation and pages that are never used are never made resident. */
static scalene__memcpy_rec_t *ring_reserve(struct scalene_memcpy *m, uint64_t *pos_out) {
  uint64_t pos = atomic_load_explicit(&m->ring_head, memory_order_relaxed);
  for (;;) {
    scalene__memcpy_rec_t *r = &m->ring[pos & m->ring_mask];
    uint64_t turn = atomic_load_explicit(&r->turn, memory_order_acquire) + (pos & m->ring_mask);
    int64_t dif = (int64_t)(turn - pos);
    if (dif == 0) {
      if (atomic_compare_exchange_weak_explicit(&m->ring_head, &pos, pos + 1,
                                                memory_order_relaxed, memory_order_relaxed)) {
        *pos_out = pos;
        return r;
      }
    } else if (dif < 0) {
      return NULL; /* full */
    } else {
      pos = atomic_load_explicit(&m->ring_head, memory_order_relaxed);
    }
  }
}

int scalene__memcpy_ring_pop(struct scalene_memcpy *m, scalene__memcpy_rec_t *out) {
  uint64_t pos = m->ring_tail;
  uint64_t idx = pos & m->ring_mask;
  scalene__memcpy_rec_t *r = &m->ring[idx];
  uint64_t turn = atomic_load_explicit(&r->turn, memory_order_acquire) + idx;
  if (turn != pos + 1) return 0;
  out->found = r->found;
  out->unattributed = r->unattributed;
  out->weight = r->weight;
  out->time_sec = r->time_sec;
  if (r->found) memcpy(&out->loc, &r->loc, sizeof out->loc);
  atomic_store_explicit(&r->turn, pos + m->ring_cap - idx, memory_order_release);
  m->ring_tail = pos + 1;
  return 1;
}

/* ------------------------------------------------------------ sampling */

/* A sampled copy of n bytes made by the code that returns to pc. */
static void sample_copy(struct scalene_memcpy *m, size_t n, uintptr_t pc) {
  scalene__depth_enter(); /* the locator's copies and allocations are not counted */
  double weight = scalene__heap_weight((double)n, m->mean);
  uint64_t pos;
  scalene__memcpy_rec_t *r = ring_reserve(m, &pos);
  if (!r) {
    scalene__drain_wake_on_drop(&m->wake, &m->dropped, m->ring_mask);
    goto out;
  }
  scalene_sample_context_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.tid = (pid_t)syscall(SYS_gettid);
  ctx.pc = pc;
  ctx.in_hook = 1;
  memset(&r->loc, 0, sizeof r->loc);
  int found = m->opts.locator(&ctx, &r->loc, m->opts.locator_arg);
  r->weight = weight;
  r->time_sec = (double)(scalene__heap_now_ns() - m->start_ns) * 1e-9;
  r->unattributed = found != SCALENE_LOCATE_FOUND;
  r->found = found != SCALENE_LOCATE_SKIP;
  atomic_store_explicit(&r->turn, pos + 1 - (pos & m->ring_mask), memory_order_release);
  scalene__drain_wake_at(&m->wake, pos, m->ring_mask);
  if (found != SCALENE_LOCATE_SKIP) {
    atomic_fetch_add_explicit(&m->samples, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->copied_bytes, (int64_t)weight, memory_order_relaxed);
  }
out:
  scalene__depth_leave();
}

static __attribute__((noinline)) void note_copy_slow(size_t n, uintptr_t pc) {
  if (scalene__tls.depth > 0) return; /* inside a sampler: not counted (countdown parked) */
  uint32_t gen = atomic_load_explicit(&scalene__memcpy_gen, memory_order_relaxed);
  struct scalene_memcpy *m = atomic_load_explicit(&scalene__memcpy_active, memory_order_acquire);
  if (!m) { /* no sampler (a forked child, a hook still running after stop) */
    tl_countdown = INT64_MAX;
    tl_gen = gen;
    return;
  }
  if (tl_rng == 0 || tl_gen != gen) { /* first copy since start: draw, then count */
    if (tl_rng == 0) scalene__rng_seed(&tl_rng);
    tl_gen = gen;
    int64_t c =
        scalene__draw_countdown(&tl_rng, m->mean) - (int64_t)(n > INT64_MAX ? INT64_MAX : n);
    if (c > 0) {
      tl_countdown = c;
      return;
    }
  }
  tl_countdown = scalene__draw_countdown(&tl_rng, m->mean); /* before sample_copy, which parks it */
  sample_copy(m, n, pc);
}

/* The fast path: whether a copy of n bytes made by this thread stays
 * inside its countdown, which then counts it. */
static inline __attribute__((always_inline)) int copy_absorbs(size_t n) {
  int64_t c = tl_countdown - (int64_t)(n > INT64_MAX ? INT64_MAX : n);
  if (__builtin_expect(c > 0 && tl_gen == atomic_load_explicit(&scalene__memcpy_gen,
                                                               memory_order_relaxed), 1)) {
    tl_countdown = c;
    return 1;
  }
  return 0;
}

/* Counts a copy of n bytes made by this thread. */
static inline __attribute__((always_inline)) void note_copy(size_t n, uintptr_t pc) {
  if (!copy_absorbs(n)) note_copy_slow(n, pc);
}

SCALENE_API void scalene_memcpy_record(size_t bytes) {
  if (bytes == 0) return;
  if (!atomic_load_explicit(&scalene__memcpy_active, memory_order_relaxed)) return;
  note_copy(bytes, (uintptr_t)__builtin_return_address(0));
}

/* ------------------------------------------------------------ replacements */

#define PC() ((uintptr_t)__builtin_return_address(0))
/* The real function, or libc's own (reached directly: this object is never
 * patched) in the window where the pointer may not be visible yet. */
#define REAL(name, libc) (__builtin_expect(real_##name != NULL, 1) ? real_##name : (libc))

/* Bytes a bounded string copy reads from src: up to and including the
 * NUL, at most max. */
static inline size_t strn_copied(const char *src, size_t max) {
  size_t k = strnlen(src, max);
  return k < max ? k + 1 : max;
}

/* The mem* copies, the ones made most often (CPython copies with memcpy
 * everywhere), take the slow path out of line, in mem_slow and
 * mem_chk_slow, so that their fast path (the countdown absorbs the copy)
 * ends in a tail call and saves no registers; note_copy's callers keep
 * their arguments across its slow call. */
static __attribute__((noinline)) void *mem_slow(mem_fn real, void *d, const void *s, size_t n,
                                                uintptr_t pc) {
  note_copy_slow(n, pc);
  return real(d, s, n);
}

static __attribute__((noinline)) void *mem_chk_slow(mem_chk_fn real, void *d, const void *s,
                                                    size_t n, size_t dn, uintptr_t pc) {
  note_copy_slow(n, pc);
  return real(d, s, n, dn);
}

static void *hook_memcpy(void *d, const void *s, size_t n) {
  mem_fn real = REAL(memcpy, memcpy);
  if (copy_absorbs(n)) return real(d, s, n);
  return mem_slow(real, d, s, n, PC());
}

static void *hook_memmove(void *d, const void *s, size_t n) {
  mem_fn real = REAL(memmove, memmove);
  if (copy_absorbs(n)) return real(d, s, n);
  return mem_slow(real, d, s, n, PC());
}

static void *hook_mempcpy(void *d, const void *s, size_t n) {
  mem_fn real = REAL(mempcpy, mempcpy);
  if (copy_absorbs(n)) return real(d, s, n);
  return mem_slow(real, d, s, n, PC());
}

static char *hook_strcpy(char *d, const char *s) {
  note_copy(strlen(s) + 1, PC());
  return REAL(strcpy, strcpy)(d, s);
}

static char *hook_stpcpy(char *d, const char *s) {
  char *end = REAL(stpcpy, stpcpy)(d, s);
  note_copy((size_t)(end - d) + 1, PC());
  return end;
}

static char *hook_strcat(char *d, const char *s) {
  note_copy(strlen(s) + 1, PC());
  return REAL(strcat, strcat)(d, s);
}

static char *hook_strncpy(char *d, const char *s, size_t n) {
  note_copy(strn_copied(s, n), PC());
  return REAL(strncpy, strncpy)(d, s, n);
}

static char *hook_stpncpy(char *d, const char *s, size_t n) {
  note_copy(strn_copied(s, n), PC());
  return REAL(stpncpy, stpncpy)(d, s, n);
}

static char *hook_strncat(char *d, const char *s, size_t n) {
  note_copy(strnlen(s, n) + 1, PC()); /* strncat always writes a NUL */
  return REAL(strncat, strncat)(d, s, n);
}

static wchar_t *hook_wmemcpy(wchar_t *d, const wchar_t *s, size_t n) {
  note_copy(n * sizeof(wchar_t), PC());
  return REAL(wmemcpy, wmemcpy)(d, s, n);
}

static wchar_t *hook_wmemmove(wchar_t *d, const wchar_t *s, size_t n) {
  note_copy(n * sizeof(wchar_t), PC());
  return REAL(wmemmove, wmemmove)(d, s, n);
}

static void *hook_memcpy_chk(void *d, const void *s, size_t n, size_t dn) {
  mem_chk_fn real = REAL(memcpy_chk, __memcpy_chk);
  if (copy_absorbs(n)) return real(d, s, n, dn);
  return mem_chk_slow(real, d, s, n, dn, PC());
}

static void *hook_memmove_chk(void *d, const void *s, size_t n, size_t dn) {
  mem_chk_fn real = REAL(memmove_chk, __memmove_chk);
  if (copy_absorbs(n)) return real(d, s, n, dn);
  return mem_chk_slow(real, d, s, n, dn, PC());
}

static void *hook_mempcpy_chk(void *d, const void *s, size_t n, size_t dn) {
  mem_chk_fn real = REAL(mempcpy_chk, __mempcpy_chk);
  if (copy_absorbs(n)) return real(d, s, n, dn);
  return mem_chk_slow(real, d, s, n, dn, PC());
}

static char *hook_strcpy_chk(char *d, const char *s, size_t dn) {
  note_copy(strlen(s) + 1, PC());
  return REAL(strcpy_chk, __strcpy_chk)(d, s, dn);
}

static char *hook_stpcpy_chk(char *d, const char *s, size_t dn) {
  char *end = REAL(stpcpy_chk, __stpcpy_chk)(d, s, dn);
  note_copy((size_t)(end - d) + 1, PC());
  return end;
}

static char *hook_strcat_chk(char *d, const char *s, size_t dn) {
  note_copy(strlen(s) + 1, PC());
  return REAL(strcat_chk, __strcat_chk)(d, s, dn);
}

static char *hook_strncpy_chk(char *d, const char *s, size_t n, size_t dn) {
  note_copy(strn_copied(s, n), PC());
  return REAL(strncpy_chk, __strncpy_chk)(d, s, n, dn);
}

static char *hook_stpncpy_chk(char *d, const char *s, size_t n, size_t dn) {
  note_copy(strn_copied(s, n), PC());
  return REAL(stpncpy_chk, __stpncpy_chk)(d, s, n, dn);
}

static char *hook_strncat_chk(char *d, const char *s, size_t n, size_t dn) {
  note_copy(strnlen(s, n) + 1, PC());
  return REAL(strncat_chk, __strncat_chk)(d, s, n, dn);
}

static wchar_t *hook_wmemcpy_chk(wchar_t *d, const wchar_t *s, size_t n, size_t dn) {
  note_copy(n * sizeof(wchar_t), PC());
  return REAL(wmemcpy_chk, __wmemcpy_chk)(d, s, n, dn);
}

static wchar_t *hook_wmemmove_chk(wchar_t *d, const wchar_t *s, size_t n, size_t dn) {
  note_copy(n * sizeof(wchar_t), PC());
  return REAL(wmemmove_chk, __wmemmove_chk)(d, s, n, dn);
}

/* ------------------------------------------------------------ install */

int scalene__memcpy_install_hooks(void) {
#define HOOK(sym, name) {sym, (void *)hook_##name, (void **)&real_##name}
  const scalene__hook_t hooks[] = {
      HOOK("memcpy", memcpy),
      HOOK("memmove", memmove),
      HOOK("mempcpy", mempcpy),
      HOOK("strcpy", strcpy),
      HOOK("stpcpy", stpcpy),
      HOOK("strcat", strcat),
      HOOK("strncpy", strncpy),
      HOOK("stpncpy", stpncpy),
      HOOK("strncat", strncat),
      HOOK("wmemcpy", wmemcpy),
      HOOK("wmemmove", wmemmove),
      /* _FORTIFY_SOURCE; a symbol the C library lacks is skipped */
      HOOK("__memcpy_chk", memcpy_chk),
      HOOK("__memmove_chk", memmove_chk),
      HOOK("__mempcpy_chk", mempcpy_chk),
      HOOK("__strcpy_chk", strcpy_chk),
      HOOK("__stpcpy_chk", stpcpy_chk),
      HOOK("__strcat_chk", strcat_chk),
      HOOK("__strncpy_chk", strncpy_chk),
      HOOK("__stpncpy_chk", stpncpy_chk),
      HOOK("__strncat_chk", strncat_chk),
      HOOK("__wmemcpy_chk", wmemcpy_chk),
      HOOK("__wmemmove_chk", wmemmove_chk),
  };
#undef HOOK
  return scalene__interpose_install_set(SCALENE__INTERPOSE_SET_MEMCPY, hooks,
                                        sizeof hooks / sizeof hooks[0]);
}

int scalene__memcpy_remove_hooks(void) {
  return scalene__interpose_remove_set(SCALENE__INTERPOSE_SET_MEMCPY);
}
