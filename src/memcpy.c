/* libscaleneprof: the memcpy sampler's control side: options, new/free,
 * start/stop (hooks in and out), the drain thread and the counters.  The
 * code that runs inside copies is in memcpy_hooks.c.
 *
 * The drain (the sampler's own thread every 50 ms, scalene_memcpy_drain,
 * and stop) pops the sample ring under m->lock and is the only caller of
 * scalene_profile_add_memory, with copy_bytes only.  A record carries the
 * location the locator filled in the hook; the drain interns it
 * (loctab.h), symbolising pc-only locations once. */
#define _GNU_SOURCE
#include "heap_internal.h"
#include "hook_tls.h"
#include "interpose.h"
#include "memcpy_internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define FAIL(err, code, ...) (scalene__error_set((err), NULL, 0, 0, -1, __VA_ARGS__), (code))

void scalene_memcpy_options_init(scalene_memcpy_options_t *opts) {
  if (!opts) return;
  memset(opts, 0, sizeof *opts);
  opts->size = sizeof *opts;
  opts->sampling_bytes = UINT64_C(4) << 20;
  opts->buffer_capacity = 4096;
}

/* ------------------------------------------------------------ fork */

/* The sampler that pthread_atfork's handlers look after (set at start,
 * kept after stop until free). */
static struct scalene_memcpy *_Atomic g_forkable;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void) {
  struct scalene_memcpy *m = atomic_load(&g_forkable);
  if (m) pthread_mutex_lock(&m->lock);
}
static void atfork_parent(void) {
  struct scalene_memcpy *m = atomic_load(&g_forkable);
  if (m) pthread_mutex_unlock(&m->lock);
}
/* The child has no drain thread: the sampler stops counting (the hooks,
 * still in the GOTs, pass every copy straight through) and the child may
 * call scalene_memcpy_stop to take them out. */
static void atfork_child(void) {
  struct scalene_memcpy *m = atomic_load(&g_forkable);
  atomic_store(&scalene__memcpy_active, NULL);
  if (m) {
    pthread_mutex_unlock(&m->lock);
    m->thread_started = 0;
  }
}
static void atfork_register(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* ------------------------------------------------------------ new/free */

int scalene_memcpy_new(const scalene_memcpy_options_t *opts, scalene_profile_t *profile,
                       scalene_memcpy_t **out, scalene_error_t *err) {
  if (out) *out = NULL;
  if (!opts || !profile || !out)
    return FAIL(err, SCALENE_EINVAL, "scalene_memcpy_new: NULL argument");
  if (opts->size != sizeof *opts)
    return FAIL(err, SCALENE_EINVAL, "scalene_memcpy_new: options.size is %zu, expected %zu",
                opts->size, sizeof *opts);
  if (!opts->locator) return FAIL(err, SCALENE_EINVAL, "scalene_memcpy_new: locator is required");
  if (opts->sampling_bytes < 1 || opts->sampling_bytes > (UINT64_C(1) << 40))
    return FAIL(err, SCALENE_EINVAL,
                "scalene_memcpy_new: sampling_bytes %llu out of range [1, 2^40]",
                (unsigned long long)opts->sampling_bytes);
  if (opts->buffer_capacity < 16 || opts->buffer_capacity > (1u << 22))
    return FAIL(err, SCALENE_EINVAL,
                "scalene_memcpy_new: buffer_capacity %u out of range [16, 2^22]",
                opts->buffer_capacity);
  struct scalene_memcpy *m = calloc(1, sizeof *m);
  if (!m) return FAIL(err, SCALENE_ENOMEM, "scalene_memcpy_new: out of memory");
  m->opts = *opts;
  m->profile = profile;
  m->mean = (double)opts->sampling_bytes;
  size_t cap = 1;
  while (cap < opts->buffer_capacity) cap <<= 1;
  m->ring_cap = cap;
  m->ring_mask = cap - 1;
  m->ring_map_len = cap * sizeof(scalene__memcpy_rec_t);
  void *p = mmap(NULL, m->ring_map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) {
    free(m);
    return FAIL(err, SCALENE_ENOMEM, "scalene_memcpy_new: out of memory");
  }
  m->ring_map = p;
  m->ring = p;
  /* The ring's turns are relative to the slot index: zero pages are a
   * ready ring (memcpy_hooks.c). */
  pthread_mutex_init(&m->lock, NULL);
  pthread_once(&g_atfork_once, atfork_register);
  *out = m;
  return 0;
}

/* The last freed sampler, kept until the next free, as heap.c keeps its
 * own: a thread may still be inside a replacement that loaded the sampler
 * just before stop cleared it, for as long as it is preempted there. */
static struct scalene_memcpy *_Atomic g_graveyard;

void scalene_memcpy_free(scalene_memcpy_t *m) {
  if (!m) return;
  scalene_memcpy_stop(m);
  struct scalene_memcpy *expected = m;
  atomic_compare_exchange_strong(&g_forkable, &expected, NULL);
  scalene__loctab_free(&m->loctab);
  pthread_mutex_destroy(&m->lock);
  madvise(m->ring_map, m->ring_map_len, MADV_DONTNEED); /* a late reader finds zeros */
  struct scalene_memcpy *old = atomic_exchange(&g_graveyard, m);
  if (old) {
    munmap(old->ring_map, old->ring_map_len);
    free(old);
  }
}

/* ------------------------------------------------------------ drain */

static int drain_locked(struct scalene_memcpy *m) {
  scalene__memcpy_rec_t r;
  int rc = 0;
  while (scalene__memcpy_ring_pop(m, &r)) {
    if (!r.found) continue; /* the locator said SKIP */
    const scalene_location_t *loc = NULL;
    if (!r.unattributed) {
      uint32_t idx = scalene__loctab_intern(&m->loctab, &r.loc);
      loc = idx != SCALENE__LOCTAB_NONE ? &m->loctab.res[idx] : &r.loc;
    }
    scalene_memory_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.size = sizeof ev;
    ev.time_sec = r.time_sec;
    ev.copy_bytes = r.weight;
    int e = scalene_profile_add_memory(m->profile, loc, &ev);
    if (e != 0 && rc == 0) rc = e;
  }
  return rc;
}

int scalene_memcpy_drain(scalene_memcpy_t *m) {
  if (!m) return SCALENE_EINVAL;
  /* The drain's own copies and allocations (symbolising, the profile) are
   * counted by neither sampler. */
  scalene__depth_enter();
  pthread_mutex_lock(&m->lock);
  int rc = drain_locked(m);
  pthread_mutex_unlock(&m->lock);
  scalene__depth_leave();
  return rc;
}

static void *drain_main(void *arg) {
  struct scalene_memcpy *m = arg;
  scalene__heap_thread_ignore(); /* this thread's copies and allocations are never counted */
  /* Sleeps the period, or until a stop or a burst of samples wakes it
   * (heap_internal.h), then drains; a wake since `seen` was read (by
   * start, before the thread first ran, or after a drain) ends the sleep
   * at once. */
  uint32_t seen = m->wake_start;
  while (!atomic_load(&m->stop_requested)) {
    seen = scalene__drain_sleep(&m->wake, seen);
    scalene_memcpy_drain(m);
  }
  return NULL;
}

uint64_t scalene__memcpy_ring_pending(struct scalene_memcpy *m) {
  pthread_mutex_lock(&m->lock);
  uint64_t n = atomic_load(&m->ring_head) - m->ring_tail;
  pthread_mutex_unlock(&m->lock);
  return n;
}

/* ------------------------------------------------------------ start/stop */

int scalene_memcpy_start(scalene_memcpy_t *m, scalene_error_t *err) {
  if (!m) return FAIL(err, SCALENE_EINVAL, "scalene_memcpy_start: NULL sampler");
  struct scalene_memcpy *expected = NULL;
  if (!atomic_compare_exchange_strong(&scalene__memcpy_active, &expected, m))
    return FAIL(err, SCALENE_ESTATE,
                "scalene_memcpy_start: a memcpy sampler already runs in this process");
  if (!m->start_ns) m->start_ns = scalene__heap_now_ns();
  atomic_fetch_add(&scalene__memcpy_gen, 1);
  atomic_store(&g_forkable, m);
  atomic_store(&m->stop_requested, 0);
  m->owner_pid = getpid();
  m->wake_start = atomic_load_explicit(&m->wake, memory_order_acquire);
  int rc = pthread_create(&m->thread, NULL, drain_main, m);
  if (rc != 0) {
    atomic_store(&scalene__memcpy_active, NULL);
    return FAIL(err, SCALENE_ESYS, "scalene_memcpy_start: pthread_create: %s", strerror(rc));
  }
  m->thread_started = 1;
  m->running = 1;
  rc = scalene__memcpy_install_hooks();
  if (rc == SCALENE_EBUSY || rc == SCALENE_EINVAL || rc == SCALENE_ENOTSUP ||
      (rc == SCALENE_ENOMEM &&
       scalene__interpose_set_slot_count(SCALENE__INTERPOSE_SET_MEMCPY) == 0)) {
    if (rc == SCALENE_ENOMEM) m->hooks_installed = 1; /* installed, with no entry */
    scalene_memcpy_stop(m);
    return FAIL(err, rc, "scalene_memcpy_start: cannot hook the copy functions (%s)",
                scalene_err_name(rc));
  }
  /* ENOMEM (table filled) or ESYS (a page refused): installed in part. */
  m->hooks_installed = 1;
  return 0;
}

int scalene_memcpy_stop(scalene_memcpy_t *m) {
  if (!m) return SCALENE_EINVAL;
  int rc = 0;
  if (m->hooks_installed) {
    int e = scalene__memcpy_remove_hooks();
    if (e != 0 && e != SCALENE_ESTATE) rc = e;
    m->hooks_installed = 0;
  }
  struct scalene_memcpy *expected = m;
  atomic_compare_exchange_strong(&scalene__memcpy_active, &expected, NULL);
  if (m->thread_started) {
    atomic_store(&m->stop_requested, 1);
    scalene__drain_wake(&m->wake);
    if (m->owner_pid == getpid()) pthread_join(m->thread, NULL);
    m->thread_started = 0;
  }
  if (m->running) {
    int e = scalene_memcpy_drain(m);
    if (e != 0 && rc == 0) rc = e;
  }
  m->running = 0;
  return rc;
}

int scalene_memcpy_get_stats(const scalene_memcpy_t *m, scalene_memcpy_stats_t *st) {
  if (!m || !st || st->size != sizeof *st) return SCALENE_EINVAL;
  struct scalene_memcpy *mm = (struct scalene_memcpy *)m;
  st->samples = atomic_load(&mm->samples);
  st->dropped = atomic_load(&mm->dropped);
  st->copied_bytes = (double)atomic_load(&mm->copied_bytes);
  st->hooked =
      (unsigned int)scalene__interpose_set_slot_count(SCALENE__INTERPOSE_SET_MEMCPY);
  return 0;
}
