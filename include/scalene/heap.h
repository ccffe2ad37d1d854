/* libscaleneprof: the heap sampler.
 *
 * Samples allocations by bytes: each thread counts down a geometrically
 * distributed number of bytes (mean `sampling_bytes`, as tcmalloc and
 * jemalloc do), so the fast path of an allocation is one thread-local
 * subtraction and a branch.  When the countdown crosses zero the
 * allocation is sampled: the locator says where it was made, and the
 * sample stands for s / (1 - exp(-s / R)) bytes (s its size, R the mean:
 * about R for small blocks, s for large ones), which makes the per-location
 * sums unbiased.  Sampled pointers go into a
 * fixed-size table, so that freeing one credits the location that
 * allocated it: live bytes, peaks and leak candidates follow from that.
 *
 * Interception: with SCALENE_HEAP_HOOK_MALLOC the malloc family (malloc,
 * calloc, realloc, reallocarray, free, posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc where present, and mmap/munmap) is patched in the GOT of every
 * loaded object at start, objects loaded later by dlopen are patched as they
 * arrive, and every entry is restored at stop: no re-exec, no LD_PRELOAD.
 * The memcpy sampler (memcpy.h) hooks other functions the same way; the two
 * may run together and stop in any order.  Allocators the library cannot
 * see (Python's own, for one) report through scalene_heap_record_alloc /
 * scalene_heap_record_free; an LD_PRELOAD shim that interposes malloc
 * reports through scalene_heap_hook_alloc instead, and then the library
 * patches nothing for the malloc family.
 *
 * Samples reach the profile (stats.h, scalene_profile_add_memory) through a
 * lock-free buffer drained by the heap sampler's own thread.
 *
 * Thread-safety: the control functions must not be called concurrently on
 * one sampler; at most one heap sampler runs in a process at a time.  The
 * record functions are async-signal-safe, re-entrant and allocation-free. */
#ifndef SCALENE_HEAP_H
#define SCALENE_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include <scalene/error.h>
#include <scalene/stats.h>
#include <scalene/sampler.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scalene_heap scalene_heap_t;

/* Hooks to install at start. */
#define SCALENE_HEAP_HOOK_MALLOC 0x1u /* the malloc family and mmap/munmap, by GOT patching */

/* Flags of scalene_heap_record_alloc. */
#define SCALENE_HEAP_PYTHON 0x1u /* the allocation came through Python's allocator */

typedef struct scalene_heap_options {
  size_t size;                 /* sizeof(scalene_heap_options_t); set by _init */
  uint64_t sampling_bytes;     /* mean bytes between samples; default 1 MiB */
  unsigned int hooks;          /* SCALENE_HEAP_HOOK_*; default SCALENE_HEAP_HOOK_MALLOC */
  scalene_locator_fn locator;  /* required; called inside the allocator (ctx->pc is the
                                * caller's return address, in_hook 1, ucontext NULL,
                                * remote 0) */
  void *locator_arg;
  unsigned int table_capacity; /* sampled pointers tracked at once; default 65536 */
  unsigned int buffer_capacity;/* samples buffered before the drain; default 16384 */
} scalene_heap_options_t;

/* Sets every field of *opts to its default (locator to NULL). */
SCALENE_API void scalene_heap_options_init(scalene_heap_options_t *opts);

/* Makes a heap sampler that charges its samples to `profile` (which must
 * outlive it).  SCALENE_EINVAL names the bad option in *err. */
SCALENE_API int scalene_heap_new(const scalene_heap_options_t *opts, scalene_profile_t *profile,
                                 scalene_heap_t **out, scalene_error_t *err);

/* Installs the hooks and starts the drain thread.  SCALENE_ESTATE when a
 * heap sampler already runs in the process. */
SCALENE_API int scalene_heap_start(scalene_heap_t *h, scalene_error_t *err);

/* Restores every hooked entry, drains the buffer into the profile and stops
 * the drain thread.  No malloc-family hook is left installed afterwards (a
 * running memcpy sampler's hooks stay).  Blocks that were
 * sampled stay tracked, so a later start still credits their frees. */
SCALENE_API int scalene_heap_stop(scalene_heap_t *h);

/* Drains the buffered samples into the profile now. */
SCALENE_API int scalene_heap_drain(scalene_heap_t *h);

/* Stops the sampler if it runs, then frees it.  NULL is allowed. */
SCALENE_API void scalene_heap_free(scalene_heap_t *h);

/* Reports an allocation of `size` bytes at ptr made by an allocator the
 * hooks do not see (flags: SCALENE_HEAP_PYTHON).  Async-signal-safe,
 * allocation-free; a no-op when no heap sampler runs. */
SCALENE_API void scalene_heap_record_alloc(void *ptr, size_t size, unsigned int flags);

/* Reports that ptr, reported with scalene_heap_record_alloc, is freed. */
SCALENE_API void scalene_heap_record_free(void *ptr, unsigned int flags);

/* For an allocator that interposes malloc itself (an LD_PRELOAD shim):
 * counts the block of `size` bytes at ptr as the library's own malloc
 * hooks do: native share (not SCALENE_HEAP_PYTHON), not counted inside
 * scalene_heap_enter/leave brackets or inside the sampler (its locator, its
 * drain), and charged to `caller`, the return address the locator gets as
 * ctx->pc (pass __builtin_return_address(0) of the shim's malloc).  Call it
 * after the real allocation succeeded; report frees with
 * scalene_heap_record_free(ptr, 0) before the real free, and realloc as
 * record_free(old) before the real realloc, then hook_alloc(new) after.
 * Async-signal-safe, allocation-free; a no-op when no heap sampler runs.
 *
 * While such a shim is loaded, scalene_heap_start does not patch the malloc
 * family's GOT entries (the shim already sees every call; both would count
 * each block twice), and scalene_heap_stats_t.hooked_objects stays 0.  The
 * shim announces itself by exporting `int scalene_preload_active(void)`,
 * found with dlsym(RTLD_DEFAULT) at start, which returns nonzero while it
 * reports. */
SCALENE_API void scalene_heap_hook_alloc(void *ptr, size_t size, uintptr_t caller);

/* An allocator given as a context and four functions: the shape of
 * CPython's PyMemAllocatorEx, so that one converts to the other field by
 * field. */
typedef struct scalene_allocator {
  void *ctx;
  void *(*malloc)(void *ctx, size_t size);
  void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
  void *(*realloc)(void *ctx, void *ptr, size_t new_size);
  void (*free)(void *ctx, void *ptr);
} scalene_allocator_t;

/* The state of one wrapped allocator (scalene_heap_wrap_allocator).  The
 * caller provides it and keeps it alive, unchanged, for as long as any
 * thread may still call through the wrapper: in practice for the life of
 * the process, since a thread may be inside an allocation when the wrapper
 * is taken out again. */
typedef struct scalene_heap_wrapper {
  scalene_allocator_t inner;
  unsigned int flags; /* SCALENE_HEAP_PYTHON, SCALENE_HEAP_POOLED, SCALENE_HEAP_SERIALIZED */
  size_t pool_max;    /* with SCALENE_HEAP_POOLED: the largest request the pools serve */
  scalene_allocator_t fallback; /* scalene_heap_wrap_pool only */
  /* With SCALENE_HEAP_SERIALIZED: the wrapper's own countdown (bytes until
   * its next sample), a mark (nonzero: it ran out while no sampler ran),
   * and its random state. */
  int64_t countdown;
  uint32_t gen;
  uint64_t rng;
} scalene_heap_wrapper_t;

/* Flag of scalene_heap_wrap_allocator: the inner allocator is a pool
 * allocator like CPython's pymalloc.  It serves requests of 1 to pool_max
 * bytes from pools whose memory comes from somewhere the caller keeps out
 * of the count (pymalloc's arenas: bracket its arena allocator with
 * scalene_heap_enter/leave), and hands every other request (and a request
 * the pools cannot serve) to another wrapped allocator, which counts it.
 * The wrapper then counts only requests of 1 to pool_max bytes, and its
 * malloc, calloc and free skip the depth bracket: the common path of the
 * interpreter's allocations is then a thread-local subtraction and a
 * branch.  (A failed pool allocation that the fallback serves counts twice:
 * it happens only when memory is exhausted.) */
#define SCALENE_HEAP_POOLED 0x2u

/* Flag of scalene_heap_wrap_pool: the caller guarantees that no two calls
 * of the wrapper's malloc, calloc and realloc ever run at once (CPython's
 * MEM and OBJ domains before 3.12, which are called with the GIL held).
 * The wrapper then counts on a countdown of its own, in *w, instead of the
 * calling thread's: the common path of an allocation reads and writes
 * memory next to the wrapper's other fields instead of thread-local
 * storage, a few instructions fewer on a path the interpreter takes tens of
 * millions of times a second.  Sampling stays unbiased: the byte stream of
 * all threads is sampled at the same rate, and a sample that falls on an
 * allocation not to be counted (a thread inside scalene_heap_enter/leave,
 * e.g. one marked as the profiler's own) is dropped, which leaves the
 * samples of the rest at that rate too.  The common path does not look
 * for a new start either, only the request that runs the countdown out
 * does, so a countdown drawn before a stop runs on into the next start:
 * - one drawn at an earlier start runs out after a geometric number of
 *   bytes of that start's mean and is then sampled as one of the new
 *   start's.  With the same mean this is unbiased (a geometric countdown
 *   partly consumed is one still).  With another mean it is not: the
 *   first sample comes at the old rate, e.g. after ~1 GiB at an old mean
 *   of 1 GiB, or at once, weighing the new mean, at an old mean of 1 byte.
 *   A caller that changes the mean between starts must therefore wrap
 *   again after the start (scalene_heap_wrap_pool), as the Python binding
 *   does at every start;
 * - one that ran out while no sampler ran lets 4 KiB of requests or less
 *   go unsampled at the start, then draws a countdown of the start's mean. */
#define SCALENE_HEAP_SERIALIZED 0x4u

/* Fills *out with an allocator that calls `inner` and reports its blocks to
 * the running heap sampler with `flags`: what scalene_heap_enter, a call of
 * the inner allocator, scalene_heap_leave and scalene_heap_record_alloc /
 * _record_free would do, in one call from the allocator's caller into this
 * library instead of three or four.  The malloc-family calls the inner
 * allocator makes are not counted again, and a wrapped allocator that
 * calls another wrapped one counts once.  *w is filled from inner and
 * flags, and out->ctx points to it.  Meant for PyMem_SetAllocator: every
 * allocation and free of the interpreter goes through these functions, so
 * their common path costs a thread-local subtraction, a branch and a probe
 * of a 16 KiB filter.  Returns 0, or SCALENE_EINVAL (a NULL argument or
 * inner function, or unknown flags).  The wrapper functions are
 * async-signal-safe and allocation-free apart from the inner allocator.
 * pool_max is used with SCALENE_HEAP_POOLED only (then it must be > 0). */
SCALENE_API int scalene_heap_wrap_allocator(scalene_heap_wrapper_t *w,
                                            const scalene_allocator_t *inner, unsigned int flags,
                                            size_t pool_max, scalene_allocator_t *out);

/* Like scalene_heap_wrap_allocator with SCALENE_HEAP_POOLED, for a pool
 * allocator whose free hands every block it did not allocate to another
 * allocator (CPython's pymalloc gives them to the RAW domain:
 * PyMem_RawFree), and whose ctx is unused (pymalloc's is NULL).  Requests of
 * 1 to pool_max bytes are counted here; when one is sampled it is served by
 * `fallback` (the malloc-family hooks do not count that call) instead of
 * the pools, and out->free is pool->free itself: no free of the pools goes
 * through this library.  A sampled block's free then reaches the domain
 * the pool allocator forwards it to, which must be wrapped too
 * (scalene_heap_wrap_allocator) for the free to be counted; `fallback` is
 * that domain's inner allocator.  Bigger requests go to the pool allocator,
 * which hands them on to that domain, where they are counted.  A realloc
 * whose result is sampled moves to a fallback block.  Why: a wrapper
 * around the interpreter's free costs more than its own instructions,
 * since CPython's build inlines pymalloc's free at its call sites while
 * the allocator is the default one, and a wrapper of free turns that into
 * two indirect calls.  flags: SCALENE_HEAP_PYTHON, SCALENE_HEAP_SERIALIZED,
 * both or 0.  Returns 0, or SCALENE_EINVAL (a NULL argument or function,
 * unknown flags, pool_max 0). */
SCALENE_API int scalene_heap_wrap_pool(scalene_heap_wrapper_t *w, const scalene_allocator_t *pool,
                                       const scalene_allocator_t *fallback, unsigned int flags,
                                       size_t pool_max, scalene_allocator_t *out);

/* Brackets a call into an allocator that reports its blocks itself (a
 * PyMem_SetAllocator hook): between enter and the matching leave, the
 * calling thread's malloc-family calls are not counted by the hooks, and
 * only the outermost scalene_heap_record_alloc / _record_free counts (an
 * OBJ-domain hook that falls back to the RAW domain is counted once).
 * Nests; async-signal-safe, allocation-free; cheap when no sampler runs. */
SCALENE_API void scalene_heap_enter(void);
SCALENE_API void scalene_heap_leave(void);

/* Counters, for tests and diagnostics. */
typedef struct scalene_heap_stats {
  size_t size;                /* set by the caller */
  uint64_t samples;           /* sampled allocations */
  uint64_t frees_matched;     /* frees of sampled blocks */
  uint64_t dropped;           /* samples lost: buffer or table full */
  double live_bytes;          /* estimated bytes live now (sampled blocks not freed) */
  unsigned int hooked_objects;/* malloc-family GOT entries patched now (0: none, e.g.
                               * stopped, or an LD_PRELOAD shim reports instead) */
} scalene_heap_stats_t;

SCALENE_API int scalene_heap_get_stats(const scalene_heap_t *h, scalene_heap_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* SCALENE_HEAP_H */
