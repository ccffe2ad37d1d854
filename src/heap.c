/* libscaleneprof: the heap sampler's control side: options, new/free,
 * start/stop (hooks in and out), the drain thread and the counters.  The
 * code that runs inside allocations is in heap_hooks.c.
 *
 * The drain (the sampler's own thread every 50 ms, scalene_heap_drain, and
 * stop) pops the sample ring under h->lock and is the only caller of
 * scalene_profile_add_memory.  An ALLOC record carries the location the
 * locator filled in the hook; the drain interns it and remembers
 * seq -> location, so that the FREE record of that block (which carries
 * only its seq and weight) is charged to the allocating location. */
#define _GNU_SOURCE
#include "heap_internal.h"
#include "interpose.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NO_LOC UINT32_MAX
#define FAIL(err, code, ...) (scalene__error_set((err), NULL, 0, 0, -1, __VA_ARGS__), (code))

/* 50 ms: each periodic wake-up costs a context switch; a sample waits at
 * most this long when no burst wakes the drain first. */
_Atomic int64_t scalene__drain_period_ns = 50000000;

uint32_t scalene__drain_sleep(_Atomic uint32_t *word, uint32_t seen) {
  int64_t ns = atomic_load_explicit(&scalene__drain_period_ns, memory_order_relaxed);
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
  return atomic_load_explicit(word, memory_order_acquire);
}

void scalene_heap_options_init(scalene_heap_options_t *opts) {
  if (!opts) return;
  memset(opts, 0, sizeof *opts);
  opts->size = sizeof *opts;
  opts->sampling_bytes = 1u << 20;
  opts->hooks = SCALENE_HEAP_HOOK_MALLOC;
  opts->table_capacity = 65536;
  opts->buffer_capacity = 16384;
}

static size_t pow2_at_least(size_t n) {
  size_t c = 1;
  while (c < n) c <<= 1;
  return c;
}

static void *map_zeroed(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------ fork */

/* The sampler that pthread_atfork's handlers look after (set at start,
 * kept after stop until free). */
static struct scalene_heap *_Atomic g_forkable;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void) {
  struct scalene_heap *h = atomic_load(&g_forkable);
  if (h) pthread_mutex_lock(&h->lock);
}
static void atfork_parent(void) {
  struct scalene_heap *h = atomic_load(&g_forkable);
  if (h) pthread_mutex_unlock(&h->lock);
}
/* The child has no drain thread: the sampler stops counting (the hooks,
 * still in the GOTs, pass every call straight through) and the child may
 * call scalene_heap_stop to take them out. */
static void atfork_child(void) {
  struct scalene_heap *h = atomic_load(&g_forkable);
  atomic_store(&scalene__heap_active, NULL);
  if (h) {
    pthread_mutex_unlock(&h->lock);
    h->thread_started = 0;
  }
}
static void atfork_register(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* ------------------------------------------------------------ new/free */

int scalene_heap_new(const scalene_heap_options_t *opts, scalene_profile_t *profile,
                     scalene_heap_t **out, scalene_error_t *err) {
  if (out) *out = NULL;
  if (!opts || !profile || !out)
    return FAIL(err, SCALENE_EINVAL, "scalene_heap_new: NULL argument");
  if (opts->size != sizeof *opts)
    return FAIL(err, SCALENE_EINVAL, "scalene_heap_new: options.size is %zu, expected %zu",
                              opts->size, sizeof *opts);
  if (!opts->locator)
    return FAIL(err, SCALENE_EINVAL, "scalene_heap_new: locator is required");
  if (opts->sampling_bytes < 1 || opts->sampling_bytes > (UINT64_C(1) << 40))
    return FAIL(err, SCALENE_EINVAL,
                              "scalene_heap_new: sampling_bytes %llu out of range [1, 2^40]",
                              (unsigned long long)opts->sampling_bytes);
  if (opts->hooks & ~SCALENE_HEAP_HOOK_MALLOC)
    return FAIL(err, SCALENE_EINVAL, "scalene_heap_new: unknown hooks 0x%x",
                              opts->hooks);
  if (opts->table_capacity < 64 || opts->table_capacity > (1u << 26))
    return FAIL(err, SCALENE_EINVAL,
                              "scalene_heap_new: table_capacity %u out of range [64, 2^26]",
                              opts->table_capacity);
  if (opts->buffer_capacity < 16 || opts->buffer_capacity > (1u << 22))
    return FAIL(err, SCALENE_EINVAL,
                              "scalene_heap_new: buffer_capacity %u out of range [16, 2^22]",
                              opts->buffer_capacity);
  struct scalene_heap *h = calloc(1, sizeof *h);
  if (!h) return FAIL(err, SCALENE_ENOMEM, "scalene_heap_new: out of memory");
  h->opts = *opts;
  h->profile = profile;
  h->mean = (double)opts->sampling_bytes;
  h->table_cap = pow2_at_least(opts->table_capacity);
  h->table_mask = h->table_cap - 1;
  h->table_map_len = h->table_cap * (sizeof(scalene__heap_entry_t) + sizeof(uint32_t)) +
                     SCALENE__HEAP_PAGE_BUCKETS * sizeof(uint32_t);
  h->table_map = map_zeroed(h->table_map_len);
  h->ring_cap = pow2_at_least(opts->buffer_capacity);
  h->ring_mask = h->ring_cap - 1;
  h->ring_map_len = h->ring_cap * sizeof(scalene__heap_rec_t);
  h->ring_map = map_zeroed(h->ring_map_len);
  if (!h->table_map || !h->ring_map) {
    if (h->table_map) munmap(h->table_map, h->table_map_len);
    if (h->ring_map) munmap(h->ring_map, h->ring_map_len);
    free(h);
    return FAIL(err, SCALENE_ENOMEM, "scalene_heap_new: out of memory");
  }
  h->table = h->table_map;
  h->counts = (_Atomic uint32_t *)(void *)((char *)h->table_map +
                                           h->table_cap * sizeof(scalene__heap_entry_t));
  h->pages = (_Atomic uint32_t *)(void *)((char *)h->table_map +
                                          h->table_cap * (sizeof(scalene__heap_entry_t) +
                                                          sizeof(uint32_t)));
  h->ring = h->ring_map;
  /* The ring's turns are relative to the slot index: zero pages are a
   * ready ring (heap_hooks.c). */
  pthread_mutex_init(&h->lock, NULL);
  pthread_once(&g_atfork_once, atfork_register);
  *out = h;
  return 0;
}

static void drain_state_free(struct scalene_heap *h) {
  scalene__loctab_free(&h->loctab);
  free(h->seq_keys);
  free(h->seq_vals);
}

/* The last freed sampler, kept until the next free.  A thread may still be
 * inside a replacement that loaded the sampler (or its page filter) just
 * before stop cleared it, and a preempted thread may stay there for any
 * time: rather than wait for it, free keeps the sampler's memory mapped
 * (handing its pages back with MADV_DONTNEED, after which a late reader
 * finds zeros: an empty table and ring) and unmaps it at the next free,
 * when it has been dead for as long as the profile it belonged to ran. */
static struct scalene_heap *_Atomic g_graveyard;

static void heap_unmap(struct scalene_heap *h) {
  munmap(h->table_map, h->table_map_len);
  munmap(h->ring_map, h->ring_map_len);
  free(h);
}

void scalene_heap_free(scalene_heap_t *h) {
  if (!h) return;
  scalene_heap_stop(h);
  struct scalene_heap *expected = h;
  atomic_compare_exchange_strong(&g_forkable, &expected, NULL);
  scalene__heap_pages_release(h->pages);
  drain_state_free(h);
  pthread_mutex_destroy(&h->lock);
  madvise(h->table_map, h->table_map_len, MADV_DONTNEED);
  madvise(h->ring_map, h->ring_map_len, MADV_DONTNEED);
  struct scalene_heap *old = atomic_exchange(&g_graveyard, h);
  if (old) heap_unmap(old);
}

/* ------------------------------------------------------------ drain */

/* seq -> location index: linear probing, keys seq + 1 (0 = empty),
 * backward-shift deletion. */
static size_t seq_slot(uint64_t key, size_t mask) {
  return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 17) & mask;
}

static int seq_put(struct scalene_heap *h, uint64_t seq, uint32_t idx) {
  if ((h->seq_n + 1) * 2 > h->seq_cap) {
    size_t cap = h->seq_cap ? h->seq_cap * 2 : 1024;
    uint64_t *k = calloc(cap, sizeof *k);
    uint32_t *v = calloc(cap, sizeof *v);
    if (!k || !v) {
      free(k);
      free(v);
      return -1;
    }
    for (size_t i = 0; i < h->seq_cap; i++) {
      if (!h->seq_keys[i]) continue;
      size_t j = seq_slot(h->seq_keys[i], cap - 1);
      while (k[j]) j = (j + 1) & (cap - 1);
      k[j] = h->seq_keys[i];
      v[j] = h->seq_vals[i];
    }
    free(h->seq_keys);
    free(h->seq_vals);
    h->seq_keys = k;
    h->seq_vals = v;
    h->seq_cap = cap;
  }
  size_t mask = h->seq_cap - 1, j = seq_slot(seq + 1, mask);
  while (h->seq_keys[j]) j = (j + 1) & mask;
  h->seq_keys[j] = seq + 1;
  h->seq_vals[j] = idx;
  h->seq_n++;
  return 0;
}

/* Removes seq; returns its location index, or NO_LOC when unknown. */
static uint32_t seq_take(struct scalene_heap *h, uint64_t seq) {
  if (!h->seq_cap) return NO_LOC;
  size_t mask = h->seq_cap - 1, j = seq_slot(seq + 1, mask);
  while (h->seq_keys[j] && h->seq_keys[j] != seq + 1) j = (j + 1) & mask;
  if (!h->seq_keys[j]) return NO_LOC;
  uint32_t v = h->seq_vals[j];
  h->seq_keys[j] = 0;
  h->seq_n--;
  /* Backward shift: move later members of the run into the hole. */
  size_t hole = j;
  for (size_t k = (j + 1) & mask; h->seq_keys[k]; k = (k + 1) & mask) {
    size_t home = seq_slot(h->seq_keys[k], mask);
    /* k's entry may move to hole when home is not in (hole, k] cyclically. */
    int between = hole <= k ? (home > hole && home <= k) : (home > hole || home <= k);
    if (between) continue;
    h->seq_keys[hole] = h->seq_keys[k];
    h->seq_vals[hole] = h->seq_vals[k];
    h->seq_keys[k] = 0;
    hole = k;
  }
  return v;
}

static int drain_locked(struct scalene_heap *h) {
  scalene__heap_rec_t r;
  int rc = 0;
  while (scalene__heap_ring_pop(h, &r)) {
    scalene_memory_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.size = sizeof ev;
    ev.time_sec = r.time_sec;
    const scalene_location_t *loc = NULL;
    if (r.kind == SCALENE__HEAP_REC_ALLOC) {
      uint32_t idx = NO_LOC;
      if (!(r.flags & SCALENE__HEAP_F_UNATTRIBUTED)) {
        idx = scalene__loctab_intern(&h->loctab, &r.loc);
        if (idx != NO_LOC) loc = &h->loctab.res[idx];
        else loc = &r.loc;
      }
      if (seq_put(h, r.seq, idx) != 0) rc = SCALENE_ENOMEM;
      ev.alloc_bytes = r.weight;
      ev.python_bytes = (r.flags & SCALENE_HEAP_PYTHON) ? r.weight : 0.0;
      ev.alloc_samples = 1;
    } else if (r.kind == SCALENE__HEAP_REC_FREE) {
      uint32_t idx = seq_take(h, r.seq);
      if (idx != NO_LOC) loc = &h->loctab.res[idx];
      ev.freed_bytes = r.weight;
    } else {
      continue;
    }
    int e = scalene_profile_add_memory(h->profile, loc, &ev);
    if (e != 0 && rc == 0) rc = e;
  }
  return rc;
}

int scalene_heap_drain(scalene_heap_t *h) {
  if (!h) return SCALENE_EINVAL;
  scalene_heap_enter(); /* the drain's own allocations (symbolising, the profile) are not counted */
  pthread_mutex_lock(&h->lock);
  int rc = drain_locked(h);
  pthread_mutex_unlock(&h->lock);
  scalene_heap_leave();
  return rc;
}

static void *drain_main(void *arg) {
  struct scalene_heap *h = arg;
  scalene__heap_thread_ignore();
  /* Sleeps the period, or until a stop or a burst of samples wakes it,
   * then drains.  A wake since `seen` was read ends the sleep at once:
   * one that came while the thread drained, or (wake_start, read by
   * start) before the thread first ran. */
  uint32_t seen = h->wake_start;
  while (!atomic_load(&h->stop_requested)) {
    seen = scalene__drain_sleep(&h->wake, seen);
    scalene_heap_drain(h);
  }
  return NULL;
}

uint64_t scalene__heap_ring_pending(struct scalene_heap *h) {
  pthread_mutex_lock(&h->lock);
  uint64_t n = atomic_load(&h->ring_head) - h->ring_tail;
  pthread_mutex_unlock(&h->lock);
  return n;
}

/* ------------------------------------------------------------ start/stop */

/* Whether an LD_PRELOAD shim that reports the malloc family itself
 * (scalene_heap_hook_alloc) is loaded: it exports
 * int scalene_preload_active(void), which returns nonzero while it
 * reports.  The library then leaves the malloc family's GOT entries alone
 * (the shim already sees every call; patching would count twice). */
static int preload_shim_active(void) {
  void *f = dlsym(RTLD_DEFAULT, "scalene_preload_active");
  if (f == NULL) return 0;
  int (*active)(void);
  memcpy(&active, &f, sizeof active); /* object pointer -> function pointer */
  return active() != 0;
}

int scalene_heap_start(scalene_heap_t *h, scalene_error_t *err) {
  if (!h) return FAIL(err, SCALENE_EINVAL, "scalene_heap_start: NULL sampler");
  struct scalene_heap *expected = NULL;
  if (!atomic_compare_exchange_strong(&scalene__heap_active, &expected, h))
    return FAIL(err, SCALENE_ESTATE,
                              "scalene_heap_start: a heap sampler already runs in this process");
  if (!h->start_ns) h->start_ns = scalene__heap_now_ns();
  atomic_store(&scalene__heap_pages, h->pages);
  atomic_fetch_add(&scalene__heap_gen, 1);
  atomic_store(&g_forkable, h);
  atomic_store(&h->stop_requested, 0);
  h->owner_pid = getpid();
  h->wake_start = atomic_load_explicit(&h->wake, memory_order_acquire);
  int rc = pthread_create(&h->thread, NULL, drain_main, h);
  if (rc != 0) {
    atomic_store(&scalene__heap_active, NULL);
    return FAIL(err, SCALENE_ESYS, "scalene_heap_start: pthread_create: %s",
                              strerror(rc));
  }
  h->thread_started = 1;
  h->running = 1;
  if ((h->opts.hooks & SCALENE_HEAP_HOOK_MALLOC) && !preload_shim_active()) {
    rc = scalene__heap_install_hooks();
    if (rc == SCALENE_EBUSY || rc == SCALENE_EINVAL || rc == SCALENE_ENOTSUP ||
        (rc == SCALENE_ENOMEM &&
         scalene__interpose_set_slot_count(SCALENE__INTERPOSE_SET_MALLOC) == 0)) {
      if (rc == SCALENE_ENOMEM) h->hooks_installed = 1; /* installed, with no entry */
      scalene_heap_stop(h);
      return FAIL(err, rc, "scalene_heap_start: cannot hook the malloc family (%s)",
                                scalene_err_name(rc));
    }
    /* ENOMEM (table filled) or ESYS (a page refused): installed in part. */
    h->hooks_installed = 1;
  }
  return 0;
}

int scalene_heap_stop(scalene_heap_t *h) {
  if (!h) return SCALENE_EINVAL;
  int rc = 0;
  if (h->hooks_installed) {
    int e = scalene__heap_remove_hooks();
    if (e != 0 && e != SCALENE_ESTATE) rc = e;
    h->hooks_installed = 0;
  }
  struct scalene_heap *expected = h;
  atomic_compare_exchange_strong(&scalene__heap_active, &expected, NULL);
  if (h->thread_started) {
    atomic_store(&h->stop_requested, 1);
    scalene__drain_wake(&h->wake);
    if (h->owner_pid == getpid()) pthread_join(h->thread, NULL);
    h->thread_started = 0;
  }
  if (h->running) {
    int e = scalene_heap_drain(h);
    if (e != 0 && rc == 0) rc = e;
  }
  h->running = 0;
  return rc;
}

int scalene_heap_get_stats(const scalene_heap_t *h, scalene_heap_stats_t *st) {
  if (!h || !st || st->size != sizeof *st) return SCALENE_EINVAL;
  struct scalene_heap *m = (struct scalene_heap *)h;
  st->samples = atomic_load(&m->samples);
  st->frees_matched = atomic_load(&m->frees_matched);
  st->dropped = atomic_load(&m->dropped);
  st->live_bytes = (double)atomic_load(&m->live_bytes);
  /* The malloc family's GOT entries rewritten now: 0 means no malloc hook
   * is installed (also while an LD_PRELOAD shim reports instead). */
  st->hooked_objects =
      (unsigned int)scalene__interpose_set_slot_count(SCALENE__INTERPOSE_SET_MALLOC);
  return 0;
}
