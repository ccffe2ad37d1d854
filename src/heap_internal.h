/* libscaleneprof: declarations shared by the heap sampler's files (heap.c:
 * control and the drain thread; heap_hooks.c: everything that runs inside
 * an allocation).  Never installed.
 *
 * Who touches what:
 *  - the hooks (any thread, inside malloc) read the sampler's options,
 *    insert into and remove from the sampled-pointer table, push records
 *    into the sample ring and bump the atomic counters;
 *  - the drain (heap.c, under scalene_heap_t.lock) pops the ring and owns
 *    the interned locations and the seq -> location map. */
#ifndef SCALENE_HEAP_INTERNAL_H
#define SCALENE_HEAP_INTERNAL_H

#include "internal.h"
#include "loctab.h"

#include <scalene/heap.h>

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* Table keys that are no pointer (real pointers are at least 8-aligned). */
#define SCALENE__HEAP_KEY_EMPTY ((uintptr_t)0)
#define SCALENE__HEAP_KEY_TOMB ((uintptr_t)1)
#define SCALENE__HEAP_KEY_BUSY ((uintptr_t)2)

/* Buckets of the page filter: sampled blocks counted by a hash of the page
 * of their address.  16 KiB, so that it stays in the cache: a free whose
 * bucket is 0 (nearly every free) touches nothing else of the table. */
#define SCALENE__HEAP_PAGE_BUCKETS 4096

/* Slots probed from a pointer's home slot before the table counts as full. */
#define SCALENE__HEAP_PROBE 64

/* Record and entry flags (SCALENE_HEAP_PYTHON is 0x1). */
#define SCALENE__HEAP_F_UNATTRIBUTED 0x100u /* the locator said UNATTRIBUTED */
#define SCALENE__HEAP_F_MMAP 0x200u         /* an anonymous mapping, freed by munmap */

/* One sampled pointer. */
typedef struct scalene__heap_entry {
  _Atomic uintptr_t key; /* the pointer, or EMPTY / TOMB / BUSY */
  uint32_t flags;
  uint32_t pad;
  double weight;         /* estimated bytes it stands for */
  uint64_t seq;          /* sample number; the drain maps it to the location */
} scalene__heap_entry_t;

enum { SCALENE__HEAP_REC_ALLOC = 1, SCALENE__HEAP_REC_FREE = 2 };

/* One record of the sample ring (Vyukov's bounded queue: a slot is ready
 * for the consumer when turn == position + 1, for producers when
 * turn == position). */
typedef struct scalene__heap_rec {
  _Atomic uint64_t turn; /* stored relative to the slot index: turn - index */
  uint32_t kind;   /* SCALENE__HEAP_REC_* */
  uint32_t flags;
  double weight;
  uint64_t seq;
  double time_sec;
  scalene_location_t loc; /* ALLOC records only */
} scalene__heap_rec_t;

struct scalene_heap {
  /* Immutable after new(). */
  scalene_heap_options_t opts;
  scalene_profile_t *profile;
  double mean;                /* sampling_bytes as a double */

  /* The sampled-pointer table: open addressing, linear probing, keys by
   * CAS.  counts[h] = entries whose home slot is h (a free whose home count
   * is 0 needs no probing). */
  scalene__heap_entry_t *table;
  _Atomic uint32_t *counts;
  _Atomic uint32_t *pages;    /* the page filter: SCALENE__HEAP_PAGE_BUCKETS counts */
  size_t table_cap, table_mask; /* power of two */
  void *table_map;
  size_t table_map_len;

  /* The sample ring, multi-producer single-consumer. */
  scalene__heap_rec_t *ring;
  size_t ring_cap, ring_mask;
  _Atomic uint64_t ring_head; /* next ticket for producers */
  uint64_t ring_tail;         /* next position to consume (drain, under lock) */
  void *ring_map;
  size_t ring_map_len;

  /* Counters. */
  _Atomic uint64_t next_seq;
  _Atomic uint64_t samples;
  _Atomic uint64_t frees_matched;
  _Atomic uint64_t dropped;
  _Atomic int64_t live_bytes;
  uint64_t start_ns;          /* CLOCK_MONOTONIC at the first start */

  /* Control. */
  pthread_mutex_t lock;       /* serialises drains */
  pthread_t thread;
  int thread_started;
  pid_t owner_pid;            /* the process that started the drain thread */
  _Atomic int stop_requested;
  _Atomic uint32_t wake;      /* the drain thread's futex word (scalene__drain_wake) */
  uint32_t wake_start;        /* wake as start read it, before the drain thread ran */
  int running;
  int hooks_installed;

  /* The drain's own state (under lock). */
  scalene__loctab_t loctab;   /* interned locations (loctab.h) */
  uint64_t *seq_keys;         /* seq + 1 -> location index (UINT32_MAX: none) */
  uint32_t *seq_vals;
  size_t seq_cap, seq_n;
};

/* The running sampler, or NULL.  The hooks do nothing without it. */
extern struct scalene_heap *_Atomic scalene__heap_active;
/* Bumped by every start (heap_hooks.c). */
extern _Atomic uint32_t scalene__heap_gen;
/* The page filter the free hooks read (heap_hooks.c): the last started
 * sampler's pages, or a zero array; never NULL.  A start points it at its
 * sampler's; scalene__heap_pages_release(pages) points it back at the zero
 * array if it still names pages (before they are unmapped). */
extern _Atomic uint32_t *_Atomic scalene__heap_pages;
void scalene__heap_pages_release(_Atomic uint32_t *pages);

/* heap_hooks.c */
int scalene__heap_install_hooks(void);
int scalene__heap_remove_hooks(void);
uint64_t scalene__heap_now_ns(void);
/* Marks the calling thread as never counted (the drain thread). */
void scalene__heap_thread_ignore(void);
/* The unbiased weight of a sampled block of size bytes at mean interval mean. */
double scalene__heap_weight(double size, double mean);
/* Seeds a thread's xorshift64* state (never 0).  Async-signal-safe. */
void scalene__rng_seed(uint64_t *state);
/* A geometric (exponential, rounded up) countdown of mean bytes, drawn
 * from a thread's seeded state: the byte countdown of both samplers.
 * Async-signal-safe, no libm. */
int64_t scalene__draw_countdown(uint64_t *state, double mean);
/* -ln(u) for u in (0, 1], without libm. */
double scalene__heap_neglog(double u);
/* Pops one record; 1 when *out was filled, 0 when the ring is empty (or
 * its next record is still being written).  Caller holds h->lock. */
int scalene__heap_ring_pop(struct scalene_heap *h, scalene__heap_rec_t *out);
/* Records pushed and not drained yet (taken under h->lock): for tests. */
uint64_t scalene__heap_ring_pending(struct scalene_heap *h);

/* The drain threads (heap.c, memcpy.c) sleep on a futex word, `wake`, for
 * at most scalene__drain_period_ns (50 ms; a variable only so that tests
 * can make it long).  A stop bumps the word, and so does a producer whose
 * record ends a quarter of the ring: a burst of samples is drained as it
 * comes instead of filling the ring (whose overflow drops samples, and a
 * dropped free leaves its block live) while the drain thread sleeps. */
extern _Atomic int64_t scalene__drain_period_ns;

/* Bumps *word and wakes the thread sleeping on it.  Async-signal-safe,
 * allocation-free, errno untouched: the hooks call it. */
static inline void scalene__drain_wake(_Atomic uint32_t *word) {
  int saved = errno;
  atomic_fetch_add_explicit(word, 1, memory_order_release);
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  errno = saved;
}

/* The producers' side, for a ring of ring_mask + 1 (a power of two, at
 * least 16) records: after publishing the record at position pos, wakes
 * the drain when that record ends a quarter of the ring. */
static inline void scalene__drain_wake_at(_Atomic uint32_t *word, uint64_t pos,
                                          uint64_t ring_mask) {
  if (__builtin_expect(((pos + 1) & (ring_mask >> 2)) == 0, 0)) scalene__drain_wake(word);
}

/* A record dropped because the ring is full: counted in *dropped; once
 * per quarter of the ring's records dropped, the drain is woken again (the
 * wake at the quarter may have found an earlier record still being written
 * and stopped there). */
static inline void scalene__drain_wake_on_drop(_Atomic uint32_t *word, _Atomic uint64_t *dropped,
                                               uint64_t ring_mask) {
  uint64_t d = atomic_fetch_add_explicit(dropped, 1, memory_order_relaxed);
  if ((d & (ring_mask >> 2)) == 0) scalene__drain_wake(word);
}

/* The drain thread's side: sleeps until *word is no longer seen (a wake
 * came since it was read) or the period has passed.  Returns *word as it
 * is now: what the next sleep compares with. */
uint32_t scalene__drain_sleep(_Atomic uint32_t *word, uint32_t seen);

#endif /* SCALENE_HEAP_INTERNAL_H */
