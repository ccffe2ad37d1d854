/* libscaleneprof: declarations shared by the memcpy sampler's files
 * (memcpy.c: control and the drain thread; memcpy_hooks.c: everything that
 * runs inside a copy).  Never installed.
 *
 * Who touches what:
 *  - the hooks (any thread, inside memcpy) read the sampler's options,
 *    push records into the sample ring and bump the atomic counters;
 *  - the drain (memcpy.c, under scalene_memcpy_t.lock) pops the ring and
 *    owns the interned locations. */
#ifndef SCALENE_MEMCPY_INTERNAL_H
#define SCALENE_MEMCPY_INTERNAL_H

#include "internal.h"
#include "loctab.h"

#include <scalene/memcpy.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* One record of the sample ring (Vyukov's bounded queue, as the heap
 * sampler's: a slot is ready for the consumer when turn == position + 1,
 * for producers when turn == position). */
typedef struct scalene__memcpy_rec {
  _Atomic uint64_t turn; /* stored relative to the slot index: turn - index */
  uint32_t found;  /* 1: loc is valid; 0: an empty record (locator said SKIP) */
  uint32_t unattributed; /* the locator said UNATTRIBUTED */
  double weight;
  double time_sec;
  scalene_location_t loc;
} scalene__memcpy_rec_t;

struct scalene_memcpy {
  /* Immutable after new(). */
  scalene_memcpy_options_t opts;
  scalene_profile_t *profile;
  double mean;                /* sampling_bytes as a double */

  /* The sample ring, multi-producer single-consumer. */
  scalene__memcpy_rec_t *ring;
  size_t ring_cap, ring_mask;
  _Atomic uint64_t ring_head; /* next ticket for producers */
  uint64_t ring_tail;         /* next position to consume (drain, under lock) */
  void *ring_map;
  size_t ring_map_len;

  /* Counters. */
  _Atomic uint64_t samples;
  _Atomic uint64_t dropped;
  _Atomic int64_t copied_bytes; /* sum of the sampled weights */
  uint64_t start_ns;            /* CLOCK_MONOTONIC at the first start */

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
  scalene__loctab_t loctab;
};

/* The running sampler, or NULL.  The hooks count nothing without it. */
extern struct scalene_memcpy *_Atomic scalene__memcpy_active;
/* Bumped by every start (memcpy_hooks.c). */
extern _Atomic uint32_t scalene__memcpy_gen;

/* memcpy_hooks.c */
int scalene__memcpy_install_hooks(void);
int scalene__memcpy_remove_hooks(void);
/* Pops one record; 1 when *out was filled, 0 when the ring is empty (or
 * its next record is still being written).  Caller holds m->lock. */
int scalene__memcpy_ring_pop(struct scalene_memcpy *m, scalene__memcpy_rec_t *out);
/* Records pushed and not drained yet (taken under m->lock): for tests. */
uint64_t scalene__memcpy_ring_pending(struct scalene_memcpy *m);

#endif /* SCALENE_MEMCPY_INTERNAL_H */
