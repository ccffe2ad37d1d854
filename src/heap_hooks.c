/* libscaleneprof: the heap sampler's code that runs INSIDE AN ALLOCATION:
 * the replacement functions of the malloc family, the thread-local
 * countdown, the sampled-pointer table and the lock-free sample ring.
 *
 * Everything in this file except install/remove (called from heap.c
 * outside any hook) may run inside malloc, inside a signal handler that
 * interrupted malloc, and re-entrantly, so it is async-signal-safe,
 * re-entrant and allocation-free.  It calls only:
 *   - the real functions saved by scalene__interpose_install (the *real_*
 *     pointers below),
 *   - the consumer's locator (which must be async-signal-safe, sampler.h),
 *   - syscall(SYS_gettid), clock_gettime(CLOCK_MONOTONIC) and, once per
 *     quarter of the sample ring (or of the records a full ring drops),
 *     syscall(SYS_futex, FUTEX_WAKE) to wake the drain thread
 *     (scalene__drain_wake, which keeps errno),
 *   - C11 atomics on memory allocated at scalene_heap_new,
 * and never takes a lock, never calls libm (log/exp are computed here) and
 * never touches errno except through the real functions it wraps.
 *
 * Thread-local state is initial-exec TLS (no __tls_get_addr, which may
 * allocate on first use in a dlopen'ed object), in the block shared with
 * the memcpy hooks (hook_tls.h): the countdown, the PRNG state and a
 * re-entrancy depth.  depth > 0 means "inside the sampler or inside an
 * allocator that reports its own blocks" (scalene_heap_enter): the
 * countdown is parked then, so the hooks do not count allocations, and the
 * locator's allocations, the drain thread's and the inner malloc of a PyMem
 * hook are not counted.  Frees are always looked up, whatever the depth: a
 * sampled block must leave the table before its address can be handed out
 * again.
 *
 * The fast paths are what every allocation and free of the program pays:
 *   - an allocation subtracts its size from the countdown and compares the
 *     countdown's start generation with the current one (note_alloc; the
 *     pooled wrappers do it before the inner call, which they then make as
 *     a tail call; with SCALENE_HEAP_SERIALIZED, on the wrapper's own
 *     countdown instead of the thread's and without the generation, which
 *     only a countdown that runs out looks at: serial_crossed);
 *   - a free reads one counter of the page filter, through a pointer that
 *     is never NULL (scalene__heap_pages: a zero array while no sampler
 *     owns it).
 * Everything else is out of line. */
#define _GNU_SOURCE
#include "heap_internal.h"
#include "hook_tls.h"
#include "interpose.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The thread-local block shared with the memcpy hooks (hook_tls.h). */
__thread scalene__hook_tls_t scalene__tls SCALENE__TLS_SHARED;
#define tl_countdown scalene__tls.heap_countdown
#define tl_rng scalene__tls.heap_rng
#define tl_gen scalene__tls.heap_gen
#define tl_depth scalene__tls.depth

/* Bumped at every start: a countdown drawn for an earlier start (perhaps
 * with another mean) is drawn again. */
_Atomic uint32_t scalene__heap_gen;

struct scalene_heap *_Atomic scalene__heap_active;

/* The page filter the free hooks read: the running (or last started)
 * sampler's, or this zero array, which is never written (and so never
 * made resident). */
static _Atomic uint32_t zero_pages[SCALENE__HEAP_PAGE_BUCKETS];
_Atomic uint32_t *_Atomic scalene__heap_pages = zero_pages;

void scalene__heap_pages_release(_Atomic uint32_t *pages) {
  _Atomic uint32_t *expected = pages;
  atomic_compare_exchange_strong(&scalene__heap_pages, &expected, zero_pages);
}

/* The real functions, stored by scalene__interpose_install. */
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_reallocarray)(void *, size_t, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);

/* ------------------------------------------------------------ math */

/* -ln(u), u in (0, 1].  u = m * 2^e with m in [sqrt(1/2), sqrt(2)), then
 * ln(m) = 2 atanh(z), z = (m - 1) / (m + 1), |z| < 0.172, whose series to
 * z^23 is exact to ~1e-18 relative. */
double scalene__heap_neglog(double u) {
  if (!(u > 0.0)) return 745.0; /* ln of the smallest double */
  if (u >= 1.0) return 0.0;
  uint64_t bits;
  memcpy(&bits, &u, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff);
  if (e == 0) return 745.0; /* subnormal: far out in the tail anyway */
  e -= 1023;
  bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  memcpy(&m, &bits, sizeof m);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  double z = (m - 1.0) / (m + 1.0), z2 = z * z, term = z, sum = 0.0;
  for (int k = 1; k <= 23; k += 2) {
    sum += term / k;
    term *= z2;
  }
  double ln = (double)e * 0.69314718055994530942 + 2.0 * sum;
  return -ln;
}

/* 1 - exp(-x) for x >= 0, without cancellation for small x. */
static double one_minus_exp_neg(double x) {
  if (x <= 0.0) return 0.0;
  if (x < 0.5) { /* x - x^2/2 + x^3/6 - ...: alternating, |term| shrinks fast */
    double term = x, sum = 0.0;
    for (int k = 1; k <= 20; k++) {
      sum += term;
      term *= -x / (k + 1);
    }
    return sum;
  }
  if (x > 745.0) return 1.0;
  /* exp(-x) = 2^-k exp(-r), x = k ln2 + r, r in [0, ln2). */
  int k = (int)(x / 0.69314718055994530942);
  double r = x - k * 0.69314718055994530942, term = 1.0, ex = 0.0;
  for (int i = 1; i <= 22; i++) {
    ex += term;
    term *= -r / i;
  }
  while (k-- > 0) ex *= 0.5;
  return 1.0 - ex;
}

/* The weight of a sampled block.  Each byte is sampled with probability
 * 1/R (the countdown is exponential, hence memoryless), so a block of s
 * bytes is sampled with p = 1 - exp(-s/R); counting it as s/p bytes makes
 * the sum over sampled blocks an unbiased estimate of the bytes allocated
 * (E = p * s/p = s).  For s << R the weight is about R, for s >> R about s. */
double scalene__heap_weight(double size, double mean) {
  double p = one_minus_exp_neg(size / mean);
  return p > 0.0 ? size / p : mean;
}

/* xorshift64* on a thread's own state (heap_internal.h). */
static uint64_t rng_next(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

uint64_t scalene__heap_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void scalene__rng_seed(uint64_t *state) {
  uint64_t s = (uint64_t)syscall(SYS_gettid) * 0x9E3779B97F4A7C15ULL ^ scalene__heap_now_ns();
  s ^= (uint64_t)(uintptr_t)state; /* each sampler's state has its own address */
  /* splitmix64 finaliser, never 0 */
  s = (s ^ (s >> 30)) * 0xBF58476D1CE4E5B9ULL;
  s = (s ^ (s >> 27)) * 0x94D049BB133111EBULL;
  s ^= s >> 31;
  *state = s ? s : 0x5ca1e;
}

int64_t scalene__draw_countdown(uint64_t *state, double mean) {
  double u = (double)((rng_next(state) >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
  double c = scalene__heap_neglog(u) * mean;
  if (c > 9.0e18) c = 9.0e18;
  return (int64_t)c + 1;
}

void scalene__heap_thread_ignore(void) {
  if (tl_depth == 0) scalene__depth_enter();
}

SCALENE_API void scalene_heap_enter(void) { scalene__depth_enter(); }
SCALENE_API void scalene_heap_leave(void) { scalene__depth_leave(); }

/* ------------------------------------------------------------ table */

static size_t page_of(uintptr_t p) {
  uint64_t x = (uint64_t)(p >> 12) * 0x9E3779B97F4A7C15ULL;
  return (size_t)(x >> 52) & (SCALENE__HEAP_PAGE_BUCKETS - 1);
}

static size_t home_of(const struct scalene_heap *h, uintptr_t p) {
  uint64_t x = (uint64_t)(p >> 3) * 0x9E3779B97F4A7C15ULL;
  return (size_t)(x >> 20) & h->table_mask;
}

/* Inserts p.  Returns 0, or -1 when no free slot is within the probe
 * window.  A slot goes EMPTY/TOMB -> BUSY (CAS), is filled, then is
 * published with its key; slots never return to EMPTY, so a lookup may
 * stop at the first EMPTY slot. */
static int table_insert(struct scalene_heap *h, uintptr_t p, double weight, uint64_t seq,
                        uint32_t flags) {
  size_t home = home_of(h, p), page = page_of(p);
  atomic_fetch_add_explicit(&h->pages[page], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->counts[home], 1, memory_order_relaxed);
  for (size_t i = 0; i < SCALENE__HEAP_PROBE; i++) {
    scalene__heap_entry_t *e = &h->table[(home + i) & h->table_mask];
    uintptr_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
    if (k != SCALENE__HEAP_KEY_EMPTY && k != SCALENE__HEAP_KEY_TOMB) continue;
    if (!atomic_compare_exchange_strong(&e->key, &k, SCALENE__HEAP_KEY_BUSY)) continue;
    e->weight = weight;
    e->seq = seq;
    e->flags = flags;
    atomic_store_explicit(&e->key, p, memory_order_release);
    return 0;
  }
  atomic_fetch_sub_explicit(&h->counts[home], 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&h->pages[page], 1, memory_order_relaxed);
  return -1;
}

/* Removes p.  Returns 1 and fills the out parameters when p was sampled. */
static int table_remove(struct scalene_heap *h, uintptr_t p, double *weight, uint64_t *seq,
                        uint32_t *flags) {
  size_t page = page_of(p);
  if (atomic_load_explicit(&h->pages[page], memory_order_acquire) == 0) return 0;
  size_t home = home_of(h, p);
  if (atomic_load_explicit(&h->counts[home], memory_order_acquire) == 0) return 0;
  for (size_t i = 0; i < SCALENE__HEAP_PROBE; i++) {
    scalene__heap_entry_t *e = &h->table[(home + i) & h->table_mask];
    uintptr_t k = atomic_load_explicit(&e->key, memory_order_acquire);
    if (k == SCALENE__HEAP_KEY_EMPTY) return 0;
    if (k != p) continue;
    *weight = e->weight;
    *seq = e->seq;
    *flags = e->flags;
    /* Only the thread freeing p gets here (a double free is the program's
     * bug): a plain CAS from p suffices. */
    if (!atomic_compare_exchange_strong(&e->key, &k, SCALENE__HEAP_KEY_TOMB)) return 0;
    atomic_fetch_sub_explicit(&h->counts[home], 1, memory_order_release);
    atomic_fetch_sub_explicit(&h->pages[page], 1, memory_order_release);
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------ ring */

/* Reserves a slot; returns it (to be filled, then published), or NULL when
 * the ring is full.  Each slot's turn is stored relative to its index
 * (stored = turn - index): the zero pages of a fresh ring already read
 * "ready for the first producer", so nothing writes the ring at creation
 * and pages that are never used are never made resident. */
static scalene__heap_rec_t *ring_reserve(struct scalene_heap *h, uint64_t *pos_out) {
  uint64_t pos = atomic_load_explicit(&h->ring_head, memory_order_relaxed);
  for (;;) {
    scalene__heap_rec_t *r = &h->ring[pos & h->ring_mask];
    uint64_t turn = atomic_load_explicit(&r->turn, memory_order_acquire) + (pos & h->ring_mask);
    int64_t dif = (int64_t)(turn - pos);
    if (dif == 0) {
      if (atomic_compare_exchange_weak_explicit(&h->ring_head, &pos, pos + 1,
                                                memory_order_relaxed, memory_order_relaxed)) {
        *pos_out = pos;
        return r;
      }
    } else if (dif < 0) {
      return NULL; /* full */
    } else {
      pos = atomic_load_explicit(&h->ring_head, memory_order_relaxed);
    }
  }
}

static void ring_publish(struct scalene_heap *h, scalene__heap_rec_t *r, uint64_t pos) {
  atomic_store_explicit(&r->turn, pos + 1 - (pos & h->ring_mask), memory_order_release);
  scalene__drain_wake_at(&h->wake, pos, h->ring_mask);
}

int scalene__heap_ring_pop(struct scalene_heap *h, scalene__heap_rec_t *out) {
  uint64_t pos = h->ring_tail;
  uint64_t idx = pos & h->ring_mask;
  scalene__heap_rec_t *r = &h->ring[idx];
  uint64_t turn = atomic_load_explicit(&r->turn, memory_order_acquire) + idx;
  if (turn != pos + 1) return 0;
  out->kind = r->kind;
  out->flags = r->flags;
  out->weight = r->weight;
  out->seq = r->seq;
  out->time_sec = r->time_sec;
  if (r->kind == SCALENE__HEAP_REC_ALLOC) memcpy(&out->loc, &r->loc, sizeof out->loc);
  atomic_store_explicit(&r->turn, pos + h->ring_cap - idx, memory_order_release);
  h->ring_tail = pos + 1;
  return 1;
}

/* ------------------------------------------------------------ sampling */

static double now_sec(const struct scalene_heap *h) {
  return (double)(scalene__heap_now_ns() - h->start_ns) * 1e-9;
}

/* The slow path of an allocation whose countdown crossed zero. */
static void sample_alloc(struct scalene_heap *h, void *ptr, size_t size, uint32_t flags,
                         uintptr_t pc) {
  scalene__depth_enter();
  double weight = scalene__heap_weight((double)size, h->mean);
  scalene_sample_context_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.tid = (pid_t)syscall(SYS_gettid);
  ctx.pc = pc;
  ctx.in_hook = 1;
  uint64_t pos;
  scalene__heap_rec_t *r = ring_reserve(h, &pos);
  if (!r) {
    scalene__drain_wake_on_drop(&h->wake, &h->dropped, h->ring_mask);
    goto out;
  }
  memset(&r->loc, 0, sizeof r->loc);
  int found = h->opts.locator(&ctx, &r->loc, h->opts.locator_arg);
  uint64_t seq = atomic_fetch_add_explicit(&h->next_seq, 1, memory_order_relaxed);
  r->seq = seq;
  r->weight = weight;
  r->time_sec = now_sec(h);
  r->flags = flags | (found == SCALENE_LOCATE_FOUND ? 0u : SCALENE__HEAP_F_UNATTRIBUTED);
  if (found == SCALENE_LOCATE_SKIP ||
      table_insert(h, (uintptr_t)ptr, weight, seq, r->flags) != 0) {
    /* The slot is already ours: publish it as an empty record. */
    if (found != SCALENE_LOCATE_SKIP)
      atomic_fetch_add_explicit(&h->dropped, 1, memory_order_relaxed);
    r->kind = 0;
    ring_publish(h, r, pos);
    goto out;
  }
  r->kind = SCALENE__HEAP_REC_ALLOC;
  ring_publish(h, r, pos);
  atomic_fetch_add_explicit(&h->samples, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->live_bytes, (int64_t)weight, memory_order_relaxed);
out:
  scalene__depth_leave();
}

/* Sets the countdown an allocation was counted on: the thread's own, or
 * (bracketed: a report at depth 1, scalene_heap_record_alloc) the value
 * the outermost bracket parked. */
static inline void set_countdown(int bracketed, int64_t v) {
  if (bracketed)
    scalene__tls.heap_saved = v;
  else
    tl_countdown = v;
}

/* The slow path of note_alloc: the countdown crossed zero, or was drawn
 * for an earlier start.  Out of line, so that the fast path stays a few
 * instructions with no registers to save. */
static __attribute__((noinline)) void note_alloc_slow(void *ptr, size_t size, uint32_t flags,
                                                      uintptr_t pc, int64_t c, int bracketed) {
  if (!bracketed && tl_depth > 0) {
    /* Inside a bracket: the countdown is parked (only a start since the
     * bracket began makes the fast path fail); keep it parked. */
    tl_countdown = INT64_MAX;
    return;
  }
  uint32_t gen = atomic_load_explicit(&scalene__heap_gen, memory_order_relaxed);
  struct scalene_heap *h = atomic_load_explicit(&scalene__heap_active, memory_order_acquire);
  if (!h) {
    set_countdown(bracketed, c > 0 ? c : 1); /* sample nothing while no sampler runs */
    return;
  }
  if (tl_rng == 0 || tl_gen != gen) { /* first allocation since start: draw, then count */
    if (tl_rng == 0) scalene__rng_seed(&tl_rng);
    tl_gen = gen;
    c = scalene__draw_countdown(&tl_rng, h->mean) - (int64_t)(size > INT64_MAX ? INT64_MAX : size);
    if (c > 0) {
      set_countdown(bracketed, c);
      return;
    }
  }
  set_countdown(bracketed, scalene__draw_countdown(&tl_rng, h->mean));
  sample_alloc(h, ptr, size, flags, pc);
}

/* Whether the countdown, drawn for the current start, absorbs size bytes
 * (0 <= size <= INT64_MAX): then it is stored in *c_out and the allocation
 * is not sampled. */
static inline __attribute__((always_inline)) int countdown_absorbs(int64_t countdown,
                                                                    int64_t size, int64_t *c_out) {
  /* countdown is at least 1 outside the slow path; computed unsigned, a
   * wrap-around lands in the slow path */
  int64_t c = (int64_t)((uint64_t)countdown - (uint64_t)size);
  *c_out = c;
  return __builtin_expect(
      c > 0 && tl_gen == atomic_load_explicit(&scalene__heap_gen, memory_order_relaxed), 1);
}

static inline int64_t clamp_size(size_t size) {
  return size > INT64_MAX ? INT64_MAX : (int64_t)size;
}

/* Counts an allocation of size bytes at ptr made by this thread (at depth
 * 0; inside a bracket the parked countdown absorbs it). */
static inline __attribute__((always_inline)) void note_alloc(void *ptr, size_t size,
                                                             uint32_t flags, uintptr_t pc) {
  int64_t c;
  if (countdown_absorbs(tl_countdown, clamp_size(size), &c)) {
    tl_countdown = c;
    return;
  }
  note_alloc_slow(ptr, size, flags, pc, c, 0);
}

/* The slow path of note_free: ptr's page bucket is not empty. */
static __attribute__((noinline)) void note_free_slow(void *ptr) {
  struct scalene_heap *h = atomic_load_explicit(&scalene__heap_active, memory_order_acquire);
  if (!h || !ptr) return;
  double weight;
  uint64_t seq;
  uint32_t flags;
  if (!table_remove(h, (uintptr_t)ptr, &weight, &seq, &flags)) return;
  atomic_fetch_add_explicit(&h->frees_matched, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&h->live_bytes, (int64_t)weight, memory_order_relaxed);
  uint64_t pos;
  scalene__heap_rec_t *r = ring_reserve(h, &pos);
  if (!r) {
    scalene__drain_wake_on_drop(&h->wake, &h->dropped, h->ring_mask);
    return;
  }
  r->kind = SCALENE__HEAP_REC_FREE;
  r->flags = flags;
  r->weight = weight;
  r->seq = seq;
  r->time_sec = now_sec(h);
  ring_publish(h, r, pos);
}

/* Whether ptr's bucket of the page filter is empty: then ptr was not
 * sampled (nearly every free ends here). */
static inline __attribute__((always_inline)) int page_clear(const void *ptr) {
  _Atomic uint32_t *pages = atomic_load_explicit(&scalene__heap_pages, memory_order_acquire);
  return __builtin_expect(atomic_load_explicit(&pages[page_of((uintptr_t)ptr)],
                                               memory_order_acquire) == 0, 1);
}

/* Credits the free of ptr if it was sampled (a munmap: the mapping that
 * starts at ptr). */
static inline __attribute__((always_inline)) void note_free(void *ptr) {
  if (!page_clear(ptr)) note_free_slow(ptr);
}

/* ------------------------------------------------------------ public record API */

SCALENE_API void scalene_heap_record_alloc(void *ptr, size_t size, unsigned int flags) {
  if (!ptr || tl_depth > 1) return; /* an inner allocator of a bracketed call */
  if (!atomic_load_explicit(&scalene__heap_active, memory_order_relaxed)) return;
  uint32_t f = flags & SCALENE_HEAP_PYTHON;
  uintptr_t pc = (uintptr_t)__builtin_return_address(0);
  if (tl_depth == 0) {
    note_alloc(ptr, size, f, pc);
    return;
  }
  /* Depth 1: the outermost bracket parked the countdown; count on the value
   * it saved. */
  int64_t c;
  if (countdown_absorbs(scalene__tls.heap_saved, clamp_size(size), &c)) {
    scalene__tls.heap_saved = c;
    return;
  }
  note_alloc_slow(ptr, size, f, pc, c, 1);
}

SCALENE_API void scalene_heap_record_free(void *ptr, unsigned int flags) {
  (void)flags;
  note_free(ptr);
}

/* For an LD_PRELOAD shim's malloc family: what hook_malloc does after the
 * real call. */
SCALENE_API void scalene_heap_hook_alloc(void *ptr, size_t size, uintptr_t caller) {
  if (!ptr || tl_depth != 0) return;
  if (!atomic_load_explicit(&scalene__heap_active, memory_order_relaxed)) return;
  note_alloc(ptr, size, 0, caller);
}

/* ------------------------------------------------------------ wrapped allocators */

#define PC() ((uintptr_t)__builtin_return_address(0))

/* The functions of scalene_heap_wrap_allocator.  An allocation runs the
 * inner allocator inside a depth bracket (its malloc-family calls, and a
 * nested wrapped allocator's, are not counted) and is counted after it, at
 * the caller's depth; a free leaves the table before the inner free, since
 * once that returns the address may be another thread's. */
static void *wrap_malloc(void *ctx, size_t size) {
  const scalene_heap_wrapper_t *w = ctx;
  scalene__depth_enter();
  void *p = w->inner.malloc(w->inner.ctx, size);
  scalene__depth_leave();
  if (p) note_alloc(p, size, w->flags, PC());
  return p;
}

static void *wrap_calloc(void *ctx, size_t nelem, size_t elsize) {
  const scalene_heap_wrapper_t *w = ctx;
  scalene__depth_enter();
  void *p = w->inner.calloc(w->inner.ctx, nelem, elsize);
  scalene__depth_leave();
  size_t total;
  if (p && !__builtin_mul_overflow(nelem, elsize, &total)) note_alloc(p, total, w->flags, PC());
  return p;
}

/* Also the pooled wrappers' realloc: a pool allocator's realloc may move a
 * block between its pools and the fallback, so it keeps the bracket and
 * counts the new block once, here. */
static void *wrap_realloc(void *ctx, void *ptr, size_t size) {
  const scalene_heap_wrapper_t *w = ctx;
  if (ptr) note_free(ptr);
  scalene__depth_enter();
  void *p = w->inner.realloc(w->inner.ctx, ptr, size);
  scalene__depth_leave();
  if (p) note_alloc(p, size, w->flags & SCALENE_HEAP_PYTHON, PC());
  return p;
}

/* Also the pooled wrappers' free.  The common case is a tail call. */
static __attribute__((noinline)) void wrap_free_slow(const scalene_heap_wrapper_t *w,
                                                     void *ptr) {
  note_free_slow(ptr);
  w->inner.free(w->inner.ctx, ptr);
}

static void wrap_free(void *ctx, void *ptr) {
  const scalene_heap_wrapper_t *w = ctx;
  if (page_clear(ptr)) {
    w->inner.free(w->inner.ctx, ptr);
    return;
  }
  wrap_free_slow(w, ptr);
}

/* SCALENE_HEAP_POOLED: no bracket; only the pools' requests count here
 * (size - 1 < pool_max: 1..pool_max bytes), the rest where the pool
 * allocator hands them.  The countdown is taken before the inner call, so
 * that an unsampled allocation ends in a tail call (a failed one has
 * counted its bytes: it happens only when memory is exhausted); the slow
 * functions make the call and count what it returned. */
static __attribute__((noinline)) void *pooled_malloc_slow(const scalene_heap_wrapper_t *w,
                                                          size_t size, uintptr_t pc) {
  void *p = w->inner.malloc(w->inner.ctx, size);
  if (p && size - 1 < w->pool_max) note_alloc(p, size, w->flags & SCALENE_HEAP_PYTHON, pc);
  return p;
}

static void *wrap_pooled_malloc(void *ctx, size_t size) {
  const scalene_heap_wrapper_t *w = ctx;
  int64_t c;
  if (__builtin_expect(size - 1 < w->pool_max, 1) &&
      countdown_absorbs(tl_countdown, (int64_t)size, &c)) { /* size <= pool_max */
    tl_countdown = c;
    return w->inner.malloc(w->inner.ctx, size);
  }
  return pooled_malloc_slow(w, size, PC());
}

static __attribute__((noinline)) void *pooled_calloc_slow(const scalene_heap_wrapper_t *w,
                                                          size_t nelem, size_t elsize,
                                                          uintptr_t pc) {
  void *p = w->inner.calloc(w->inner.ctx, nelem, elsize);
  size_t total;
  if (p && !__builtin_mul_overflow(nelem, elsize, &total) && total - 1 < w->pool_max)
    note_alloc(p, total, w->flags & SCALENE_HEAP_PYTHON, pc);
  return p;
}

static void *wrap_pooled_calloc(void *ctx, size_t nelem, size_t elsize) {
  const scalene_heap_wrapper_t *w = ctx;
  size_t total;
  int64_t c;
  if (!__builtin_mul_overflow(nelem, elsize, &total) && total - 1 < w->pool_max &&
      countdown_absorbs(tl_countdown, (int64_t)total, &c)) {
    tl_countdown = c;
    return w->inner.calloc(w->inner.ctx, nelem, elsize);
  }
  return pooled_calloc_slow(w, nelem, elsize, PC());
}

/* A request of size bytes (zeroed if zero) served by the pools, unbracketed
 * and uncounted: one not to be sampled after all. */
static void *pool_alloc(const scalene_heap_wrapper_t *w, size_t size, int zero) {
  return zero ? w->inner.calloc(w->inner.ctx, 1, size) : w->inner.malloc(w->inner.ctx, size);
}

/* A request of size bytes (zeroed if zero) served by the fallback, the
 * malloc-family hooks bracketed: a sampled one, which the caller counts. */
static void *fallback_alloc(const scalene_heap_wrapper_t *w, size_t size, int zero) {
  scalene__depth_enter();
  void *p = zero ? w->fallback.calloc(w->fallback.ctx, 1, size)
                 : w->fallback.malloc(w->fallback.ctx, size);
  scalene__depth_leave();
  return p;
}

/* scalene_heap_wrap_pool: a pooled wrapper whose samples come from the
 * fallback allocator, so that the pools' own free needs no wrapper.  A
 * sampled request (the countdown crossed) is served by w->fallback, with
 * the malloc-family hooks bracketed, and counted; its free, which the pool
 * allocator hands to the fallback's domain, is counted there.  Everything
 * else is the pool allocator's, reached by a tail call. */
static __attribute__((noinline)) void *divert_sample(const scalene_heap_wrapper_t *w,
                                                     size_t size, int zero, uintptr_t pc) {
  if (!atomic_load_explicit(&scalene__heap_active, memory_order_relaxed))
    return pool_alloc(w, size, zero); /* no sampler (a wrapper that outlived it) */
  void *p = fallback_alloc(w, size, zero);
  if (p) note_alloc(p, size, w->flags & SCALENE_HEAP_PYTHON, pc);
  return p;
}

static void *wrap_divert_malloc(void *ctx, size_t size) {
  const scalene_heap_wrapper_t *w = ctx;
  int64_t c;
  if (__builtin_expect(size - 1 < w->pool_max, 1)) {
    if (countdown_absorbs(tl_countdown, (int64_t)size, &c)) {
      tl_countdown = c;
      return w->inner.malloc(w->inner.ctx, size);
    }
    return divert_sample(w, size, 0, PC());
  }
  return w->inner.malloc(w->inner.ctx, size); /* the pool hands it to the fallback's domain */
}

static void *wrap_divert_calloc(void *ctx, size_t nelem, size_t elsize) {
  const scalene_heap_wrapper_t *w = ctx;
  size_t total;
  int64_t c;
  if (!__builtin_mul_overflow(nelem, elsize, &total) && total - 1 < w->pool_max) {
    if (countdown_absorbs(tl_countdown, (int64_t)total, &c)) {
      tl_countdown = c;
      return w->inner.calloc(w->inner.ctx, nelem, elsize);
    }
    return divert_sample(w, total, 1, PC());
  }
  return w->inner.calloc(w->inner.ctx, nelem, elsize);
}

/* Moves the pools' block p (size bytes, a realloc's result) to a block of
 * the fallback allocator, both calls bracketed.  Returns the new block, or
 * NULL (no memory: p stays as it is). */
static void *move_to_fallback(const scalene_heap_wrapper_t *w, void *p, size_t size) {
  scalene__depth_enter();
  void *q = w->fallback.malloc(w->fallback.ctx, size);
  if (q) {
    memcpy(q, p, size);
    w->inner.free(w->inner.ctx, p);
  }
  scalene__depth_leave();
  return q;
}

/* A realloc: the old block leaves the table (a sampled one is the
 * fallback's: the pool allocator forwards it there), the pool allocator
 * moves it inside a bracket, and the result is counted here.  When the new
 * size is a pool request and its countdown crosses, the result moves on to
 * a fallback block: a sampled block must never be the pools', whose free
 * is not seen.  divert_realloc_begin is the part that does not depend on
 * whose countdown counts: it returns 1 when *out is the result (NULL, or
 * the fallback domain's block, counted), 0 for a pool-sized block still to
 * count. */
static inline __attribute__((always_inline)) int divert_realloc_begin(
    const scalene_heap_wrapper_t *w, void *ptr, size_t size, uintptr_t pc, void **out) {
  if (ptr) note_free(ptr);
  scalene__depth_enter();
  void *p = w->inner.realloc(w->inner.ctx, ptr, size);
  scalene__depth_leave();
  *out = p;
  if (p == NULL) return 1;
  if (size - 1 >= w->pool_max) { /* the fallback domain's block, its inner call bracketed */
    note_alloc(p, size, w->flags & SCALENE_HEAP_PYTHON, pc);
    return 1;
  }
  return 0;
}

static void *wrap_divert_realloc(void *ctx, void *ptr, size_t size) {
  const scalene_heap_wrapper_t *w = ctx;
  void *p;
  if (divert_realloc_begin(w, ptr, size, PC(), &p)) return p;
  int64_t c;
  if (countdown_absorbs(tl_countdown, (int64_t)size, &c)) {
    tl_countdown = c;
    return p;
  }
  if (!atomic_load_explicit(&scalene__heap_active, memory_order_relaxed))
    return p; /* no sampler (a wrapper that outlived it): nothing to sample */
  void *q = move_to_fallback(w, p, size);
  if (q == NULL) { /* no memory for the move: keep the pools' block, uncounted */
    tl_countdown = 1;
    return p;
  }
  note_alloc(q, size, w->flags & SCALENE_HEAP_PYTHON, PC());
  return q;
}

/* SCALENE_HEAP_SERIALIZED (heap.h): the wrappers of scalene_heap_wrap_pool
 * on the wrapper's own countdown, w->countdown, drawn from w->rng.  The
 * caller serialises every call of these three functions (Python's GIL), so
 * they read and write *w without atomics.  Requests bigger than pool_max
 * and the blocks of a bigger realloc are the fallback domain's, counted as
 * by the other wrappers.
 *
 * Their common path is a subtraction and a branch, then a tail call with
 * the wrapper as the pool allocator's ctx (which it ignores, heap.h).  It
 * does not look for a new start (unlike the thread-local countdowns, which
 * a start's new generation redraws at once): only serial_crossed, when the
 * countdown runs out, looks at the running sampler, so a countdown drawn
 * before a stop runs on into the next start:
 * - drawn at an earlier start, it is a geometric countdown of that start's
 *   mean, and one partly consumed is one still (memoryless): when it runs
 *   out the request is sampled as one of this start's, which is unbiased
 *   when both starts have the same mean (otherwise heap.h asks the caller
 *   to wrap again);
 * - run out while no sampler ran, it parks at SERIAL_PARK_BYTES, marked in
 *   w->gen: at most that many bytes of a start's first requests go
 *   unsampled, and the request that runs it out draws this start's
 *   countdown, then counts, as the first request after a wrap does. */

/* The countdown of a wrapper that ran out while no sampler ran: it looks
 * for one again after this many bytes of requests, its common path staying
 * a subtraction and a branch meanwhile. */
#define SERIAL_PARK_BYTES 4096
/* w->gen of a parked countdown (else 0). */
#define SERIAL_PARKED 1u

/* countdown_absorbs on w's countdown. */
static inline __attribute__((always_inline)) int serial_absorbs(const scalene_heap_wrapper_t *w,
                                                                int64_t size, int64_t *c_out) {
  int64_t c = (int64_t)((uint64_t)w->countdown - (uint64_t)size);
  *c_out = c;
  return __builtin_expect(c > 0, 1);
}

/* w's countdown crossed zero at a request of size bytes: draws it again.
 * Returns the running sampler when the request is to be sampled, else
 * NULL: no sampler runs (the countdown parks), the countdown is the first
 * since scalene_heap_wrap_pool or since it parked and one drawn now absorbs
 * the request, or the calling thread is inside a bracket, whose
 * allocations are not counted (its sample is dropped: see heap.h). */
static __attribute__((noinline)) struct scalene_heap *serial_crossed(scalene_heap_wrapper_t *w,
                                                                     int64_t size) {
  struct scalene_heap *h = atomic_load_explicit(&scalene__heap_active, memory_order_acquire);
  if (!h) {
    w->countdown = SERIAL_PARK_BYTES;
    w->gen = SERIAL_PARKED;
    return NULL;
  }
  if (w->rng == 0 || w->gen == SERIAL_PARKED) { /* this start's first countdown: draw, count */
    if (w->rng == 0) scalene__rng_seed(&w->rng);
    w->gen = 0;
    int64_t c = scalene__draw_countdown(&w->rng, h->mean) - size;
    if (c > 0) {
      w->countdown = c;
      return NULL;
    }
  }
  w->countdown = scalene__draw_countdown(&w->rng, h->mean);
  return tl_depth == 0 ? h : NULL;
}

static __attribute__((noinline)) void *serial_divert(scalene_heap_wrapper_t *w, size_t size,
                                                     int zero, uintptr_t pc) {
  struct scalene_heap *h = serial_crossed(w, (int64_t)size);
  if (h == NULL) return pool_alloc(w, size, zero);
  void *p = fallback_alloc(w, size, zero);
  if (p) sample_alloc(h, p, size, w->flags & SCALENE_HEAP_PYTHON, pc);
  return p;
}

static void *wrap_serial_malloc(void *ctx, size_t size) {
  scalene_heap_wrapper_t *w = ctx;
  int64_t c;
  if (__builtin_expect(size - 1 < w->pool_max, 1)) {
    if (serial_absorbs(w, (int64_t)size, &c)) {
      w->countdown = c;
      return w->inner.malloc(ctx, size); /* the pools ignore their ctx */
    }
    return serial_divert(w, size, 0, PC());
  }
  return w->inner.malloc(w->inner.ctx, size); /* the pool hands it to the fallback's domain */
}

static void *wrap_serial_calloc(void *ctx, size_t nelem, size_t elsize) {
  scalene_heap_wrapper_t *w = ctx;
  size_t total;
  int64_t c;
  if (!__builtin_mul_overflow(nelem, elsize, &total) && total - 1 < w->pool_max) {
    if (serial_absorbs(w, (int64_t)total, &c)) {
      w->countdown = c;
      return w->inner.calloc(ctx, nelem, elsize);
    }
    return serial_divert(w, total, 1, PC());
  }
  return w->inner.calloc(w->inner.ctx, nelem, elsize);
}

/* wrap_divert_realloc on w's countdown. */
static void *wrap_serial_realloc(void *ctx, void *ptr, size_t size) {
  scalene_heap_wrapper_t *w = ctx;
  void *p;
  if (divert_realloc_begin(w, ptr, size, PC(), &p)) return p;
  int64_t c;
  if (serial_absorbs(w, (int64_t)size, &c)) {
    w->countdown = c;
    return p;
  }
  struct scalene_heap *h = serial_crossed(w, (int64_t)size);
  if (h == NULL) return p;
  void *q = move_to_fallback(w, p, size);
  if (q == NULL) return p; /* no memory for the move: keep the pools' block, uncounted */
  sample_alloc(h, q, size, w->flags & SCALENE_HEAP_PYTHON, PC());
  return q;
}

SCALENE_API int scalene_heap_wrap_pool(scalene_heap_wrapper_t *w, const scalene_allocator_t *pool,
                                       const scalene_allocator_t *fallback, unsigned int flags,
                                       size_t pool_max, scalene_allocator_t *out) {
  if (!w || !pool || !fallback || !out || !pool->malloc || !pool->calloc || !pool->realloc ||
      !pool->free || !fallback->malloc || !fallback->calloc || !fallback->free ||
      (flags & ~(unsigned int)(SCALENE_HEAP_PYTHON | SCALENE_HEAP_SERIALIZED)) || pool_max == 0)
    return SCALENE_EINVAL;
  w->inner = *pool;
  w->fallback = *fallback;
  w->flags = flags | SCALENE_HEAP_POOLED;
  w->pool_max = pool_max;
  w->countdown = 0; /* drawn at the first request */
  w->gen = 0;
  w->rng = 0;
  out->ctx = w;
  int serial = (flags & SCALENE_HEAP_SERIALIZED) != 0;
  out->malloc = serial ? wrap_serial_malloc : wrap_divert_malloc;
  out->calloc = serial ? wrap_serial_calloc : wrap_divert_calloc;
  out->realloc = serial ? wrap_serial_realloc : wrap_divert_realloc;
  out->free = pool->free; /* and ctx w, which a pool allocator like pymalloc ignores */
  return 0;
}

SCALENE_API int scalene_heap_wrap_allocator(scalene_heap_wrapper_t *w,
                                            const scalene_allocator_t *inner, unsigned int flags,
                                            size_t pool_max, scalene_allocator_t *out) {
  if (!w || !inner || !out || !inner->malloc || !inner->calloc || !inner->realloc ||
      !inner->free || (flags & ~(unsigned int)(SCALENE_HEAP_PYTHON | SCALENE_HEAP_POOLED)) ||
      ((flags & SCALENE_HEAP_POOLED) && pool_max == 0))
    return SCALENE_EINVAL;
  w->inner = *inner;
  w->flags = flags;
  w->pool_max = (flags & SCALENE_HEAP_POOLED) ? pool_max : 0;
  out->ctx = w;
  int pooled = (flags & SCALENE_HEAP_POOLED) != 0;
  out->malloc = pooled ? wrap_pooled_malloc : wrap_malloc;
  out->calloc = pooled ? wrap_pooled_calloc : wrap_calloc;
  out->realloc = wrap_realloc;
  out->free = wrap_free;
  return 0;
}

/* ------------------------------------------------------------ replacements */

static void *hook_malloc(size_t n) {
  if (__builtin_expect(!real_malloc, 0)) return NULL;
  void *p = real_malloc(n);
  if (p) note_alloc(p, n, 0, PC());
  return p;
}

static void *hook_calloc(size_t nmemb, size_t size) {
  if (__builtin_expect(!real_calloc, 0)) return NULL;
  void *p = real_calloc(nmemb, size);
  size_t total;
  if (p && !__builtin_mul_overflow(nmemb, size, &total))
    note_alloc(p, total, 0, PC());
  return p;
}

static void *hook_realloc(void *old, size_t n) {
  if (__builtin_expect(!real_realloc, 0)) return NULL;
  /* realloc = free of the old block + allocation of the new one.  The old
   * block leaves the table before the real call: once it returns, its
   * address may already be another thread's. */
  if (old) note_free(old);
  void *p = real_realloc(old, n);
  if (p && n) note_alloc(p, n, 0, PC());
  return p;
}

/* glibc's reallocarray calls realloc through libc's own PLT entry, which
 * the realloc hook sees, but charged to a pc inside libc.  This hook
 * charges the caller instead: the inner realloc runs inside a depth
 * bracket (its allocation is not counted again; the old block already
 * left the table here). */
static void *hook_reallocarray(void *old, size_t nmemb, size_t size) {
  if (__builtin_expect(!real_reallocarray, 0)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t total;
  int overflow = __builtin_mul_overflow(nmemb, size, &total);
  if (old && !overflow) note_free(old); /* on overflow the call fails, old stays */
  scalene__depth_enter();
  void *p = real_reallocarray(old, nmemb, size);
  scalene__depth_leave();
  if (p && !overflow && total) note_alloc(p, total, 0, PC());
  return p;
}

static void hook_free(void *p) {
  note_free(p);
  if (__builtin_expect(real_free != NULL, 1)) real_free(p);
}

static int hook_posix_memalign(void **out, size_t align, size_t n) {
  if (__builtin_expect(!real_posix_memalign, 0)) return ENOMEM;
  int rc = real_posix_memalign(out, align, n);
  if (rc == 0 && *out) note_alloc(*out, n, 0, PC());
  return rc;
}

static void *hook_aligned_alloc(size_t align, size_t n) {
  if (__builtin_expect(!real_aligned_alloc, 0)) return NULL;
  void *p = real_aligned_alloc(align, n);
  if (p) note_alloc(p, n, 0, PC());
  return p;
}

static void *hook_memalign(size_t align, size_t n) {
  if (__builtin_expect(!real_memalign, 0)) return NULL;
  void *p = real_memalign(align, n);
  if (p) note_alloc(p, n, 0, PC());
  return p;
}

static void *hook_valloc(size_t n) {
  if (__builtin_expect(!real_valloc, 0)) return NULL;
  void *p = real_valloc(n);
  if (p) note_alloc(p, n, 0, PC());
  return p;
}

static void *hook_pvalloc(size_t n) {
  if (__builtin_expect(!real_pvalloc, 0)) return NULL;
  void *p = real_pvalloc(n);
  if (p) {
    long pg = sysconf(_SC_PAGESIZE); /* async-signal-safe */
    size_t page = pg > 0 ? (size_t)pg : 4096;
    note_alloc(p, n ? (n + page - 1) / page * page : page, 0, PC());
  }
  return p;
}

static inline int counted_mapping(int prot, int flags) {
  (void)prot;
  return (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE);
}

static void *hook_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (__builtin_expect(!real_mmap, 0)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  void *p = real_mmap(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED && counted_mapping(prot, flags))
    note_alloc(p, len, SCALENE__HEAP_F_MMAP, PC());
  return p;
}

static void *hook_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (__builtin_expect(!real_mmap64, 0)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  void *p = real_mmap64(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED && counted_mapping(prot, flags))
    note_alloc(p, len, SCALENE__HEAP_F_MMAP, PC());
  return p;
}

static int hook_munmap(void *addr, size_t len) {
  /* A sampled mapping counts as freed when its start is unmapped. */
  if (addr) note_free(addr);
  if (__builtin_expect(!real_munmap, 0)) {
    errno = EINVAL;
    return -1;
  }
  return real_munmap(addr, len);
}

/* ------------------------------------------------------------ install */

int scalene__heap_install_hooks(void) {
  const scalene__hook_t hooks[] = {
      {"malloc", (void *)hook_malloc, (void **)&real_malloc},
      {"calloc", (void *)hook_calloc, (void **)&real_calloc},
      {"realloc", (void *)hook_realloc, (void **)&real_realloc},
      {"reallocarray", (void *)hook_reallocarray, (void **)&real_reallocarray},
      {"free", (void *)hook_free, (void **)&real_free},
      {"posix_memalign", (void *)hook_posix_memalign, (void **)&real_posix_memalign},
      {"aligned_alloc", (void *)hook_aligned_alloc, (void **)&real_aligned_alloc},
      {"memalign", (void *)hook_memalign, (void **)&real_memalign},
      {"valloc", (void *)hook_valloc, (void **)&real_valloc},
      {"pvalloc", (void *)hook_pvalloc, (void **)&real_pvalloc}, /* NULL where absent */
      {"mmap", (void *)hook_mmap, (void **)&real_mmap},
      {"mmap64", (void *)hook_mmap64, (void **)&real_mmap64},
      {"munmap", (void *)hook_munmap, (void **)&real_munmap},
  };
  return scalene__interpose_install_set(SCALENE__INTERPOSE_SET_MALLOC, hooks,
                                        sizeof hooks / sizeof hooks[0]);
}

int scalene__heap_remove_hooks(void) {
  return scalene__interpose_remove_set(SCALENE__INTERPOSE_SET_MALLOC);
}
