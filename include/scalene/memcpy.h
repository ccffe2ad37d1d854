/* libscaleneprof: the memcpy sampler.
 *
 * Samples copies by bytes, with the heap sampler's technique (heap.h): each
 * thread counts down a geometrically distributed number of bytes (mean
 * `sampling_bytes`), so the fast path of a copy is one thread-local
 * subtraction and a branch.  A copy of s bytes that crosses zero is sampled:
 * the locator says where it was made and the sample stands for
 * s / (1 - exp(-s / R)) bytes, which makes the per-location sums unbiased.
 * The profile gets the bytes as scalene_memory_event_t.copy_bytes; the JSON
 * output turns them into n_copy_mb_s (MiB copied per second of the run).
 *
 * Interception: memcpy, memmove, mempcpy, strcpy, strncpy, stpcpy,
 * stpncpy, strcat, strncat, wmemcpy, wmemmove and their _FORTIFY_SOURCE
 * variants (__memcpy_chk, ...) where the C library has them, by rewriting
 * GOT entries in every loaded object (as the heap sampler does for malloc;
 * both samplers share one interposition, so they can run together), with
 * objects loaded later patched as they arrive and every entry restored at
 * stop.  Copies that the compiler inlines, and copies inside the C library
 * itself, are not seen; nor are copies made inside either sampler (a
 * locator's own copies, the drain threads) or between scalene_heap_enter
 * and scalene_heap_leave.  Copies the hooks cannot see can be reported with
 * scalene_memcpy_record.  Bytes counted: n for the mem* functions,
 * n * sizeof(wchar_t) for wmem*, the bytes copied including the NUL for
 * the str* functions (docs/memcpy.md).
 *
 * Thread-safety: the control functions must not be called concurrently on
 * one sampler; at most one memcpy sampler runs in a process at a time.
 * scalene_memcpy_record is async-signal-safe, re-entrant and
 * allocation-free. */
#ifndef SCALENE_MEMCPY_H
#define SCALENE_MEMCPY_H

#include <stddef.h>
#include <stdint.h>
#include <scalene/error.h>
#include <scalene/stats.h>
#include <scalene/sampler.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scalene_memcpy scalene_memcpy_t;

typedef struct scalene_memcpy_options {
  size_t size;                 /* sizeof(scalene_memcpy_options_t); set by _init */
  uint64_t sampling_bytes;     /* mean bytes between samples; default 4 MiB */
  scalene_locator_fn locator;  /* required; called inside the copy (ctx->pc is the
                                * caller's return address, in_hook 1, ucontext NULL,
                                * remote 0) */
  void *locator_arg;
  unsigned int buffer_capacity;/* samples buffered before the drain; default 4096 */
} scalene_memcpy_options_t;

/* Sets every field of *opts to its default (locator to NULL). */
SCALENE_API void scalene_memcpy_options_init(scalene_memcpy_options_t *opts);

/* Makes a memcpy sampler that charges its samples to `profile` (which must
 * outlive it).  SCALENE_EINVAL names the bad option in *err. */
SCALENE_API int scalene_memcpy_new(const scalene_memcpy_options_t *opts,
                                   scalene_profile_t *profile, scalene_memcpy_t **out,
                                   scalene_error_t *err);

/* Installs the hooks and starts the drain thread.  SCALENE_ESTATE when a memcpy
 * sampler already runs in the process. */
SCALENE_API int scalene_memcpy_start(scalene_memcpy_t *m, scalene_error_t *err);

/* Restores every hooked entry (the heap sampler's stay while it runs) and
 * drains the buffered samples into the profile and stops the drain
 * thread.  No memcpy hook is left installed afterwards. */
SCALENE_API int scalene_memcpy_stop(scalene_memcpy_t *m);

/* Drains the buffered samples into the profile now.  While the sampler
 * runs, its own thread does this every 50 ms. */
SCALENE_API int scalene_memcpy_drain(scalene_memcpy_t *m);

/* Stops the sampler if it runs, then frees it.  NULL is allowed. */
SCALENE_API void scalene_memcpy_free(scalene_memcpy_t *m);

/* Reports a copy of `bytes` bytes made where the hooks do not see it.
 * Async-signal-safe, allocation-free; a no-op when no memcpy sampler runs. */
SCALENE_API void scalene_memcpy_record(size_t bytes);

/* Counters, for tests and diagnostics. */
typedef struct scalene_memcpy_stats {
  size_t size;                /* set by the caller */
  uint64_t samples;           /* sampled copies */
  uint64_t dropped;           /* samples lost: buffer full */
  double copied_bytes;        /* estimated bytes copied since the first start */
  unsigned int hooked;        /* memcpy-family GOT entries patched now (0: none) */
} scalene_memcpy_stats_t;

SCALENE_API int scalene_memcpy_get_stats(const scalene_memcpy_t *m, scalene_memcpy_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* SCALENE_MEMCPY_H */
