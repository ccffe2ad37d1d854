/* libscaleneprof-preload.so: the LD_PRELOAD shim (docs/preload.md).
 *
 * The shim defines the malloc family itself, so that with
 *   LD_PRELOAD=libscaleneprof-preload.so
 * every allocation of the process reaches the heap sampler from the first
 * instruction on, including calls through function pointers taken before
 * scalene_heap_start and calls made before it.  It exports only the malloc
 * family and scalene_preload_*; while it is loaded, scalene_heap_start does
 * not patch GOTs for the malloc family (it asks dlsym(RTLD_DEFAULT,
 * "scalene_preload_active")).
 *
 * THE MALLOC FAMILY BELOW RUNS INSIDE EVERY ALLOCATION of the process,
 * inside signal handlers that interrupted one, and re-entrantly, so it is
 * async-signal-safe, allocation-free and re-entrant.  It calls only:
 *   - the next definitions of the family (real_*), resolved once with
 *     dlsym(RTLD_NEXT) by the constructor -- or by the first call, if
 *     another object's constructor allocates before ours runs: dlsym is not
 *     async-signal-safe, but that single resolution happens before main,
 *     while the process has one thread;
 *   - the bootstrap arena (atomic bump allocation in static storage), which
 *     serves the allocations dlsym itself makes while we resolve;
 *   - scalene_heap_hook_alloc and scalene_heap_record_free (heap.h:
 *     async-signal-safe, re-entrant, allocation-free; no-ops while no heap
 *     sampler runs);
 *   - memcpy on memory it owns, and C11 atomics.
 *
 * The rest of the file (standalone profiling: the constructor, the
 * locators' setup, the exit handler) runs outside any allocation.  The CPU
 * locator runs in the sampler's signal handler and is async-signal-safe: it
 * reads tables filled before the sampler started, and the stack through
 * scalene_safe_read. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <scalene/scalene.h>
#include <scalene/memcpy.h>

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------ the next definitions */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static size_t (*real_malloc_usable_size)(void *);

/* 0: not resolved; 1: a thread is resolving; 2: resolved. */
static _Atomic int resolve_state;

/* ------------------------------------------------------------ bootstrap arena */

/* What dlsym allocates while we resolve (glibc: a dlerror buffer of a few
 * hundred bytes) is served from here.  Each block is preceded by a 16-byte
 * header holding its size; free ignores arena blocks, realloc copies them
 * out.  The arena is never reused: it only has to outlast the resolution. */
#define ARENA_SIZE (64 * 1024)
#define ARENA_HDR 16
static _Alignas(64) unsigned char arena[ARENA_SIZE];
static _Atomic size_t arena_used;

static int in_arena(const void *p) {
  return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + ARENA_SIZE;
}

static void *arena_alloc(size_t n, size_t align) {
  if (align < ARENA_HDR) align = ARENA_HDR;
  if (align & (align - 1) || n > ARENA_SIZE) return NULL;
  size_t need = ARENA_HDR + ((n + ARENA_HDR - 1) & ~(size_t)(ARENA_HDR - 1)) + align;
  size_t off = atomic_fetch_add(&arena_used, need);
  if (off + need > ARENA_SIZE) return NULL;
  uintptr_t base = (uintptr_t)(arena + off + ARENA_HDR);
  uintptr_t p = (base + align - 1) & ~(uintptr_t)(align - 1);
  size_t sz = n;
  memcpy((void *)(p - ARENA_HDR), &sz, sizeof sz);
  return (void *)p; /* static storage: already zero, as calloc needs */
}

static size_t arena_size(const void *p) {
  size_t sz;
  memcpy(&sz, (const unsigned char *)p - ARENA_HDR, sizeof sz);
  return sz;
}

/* Resolves the next definitions.  Returns 1 when real_* may be used; 0 while
 * a resolution is under way (the caller uses the arena). */
static int resolve(void) {
  int st = atomic_load_explicit(&resolve_state, memory_order_acquire);
  if (st == 2) return 1;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&resolve_state, &expected, 1)) return 0;
  real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
  real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
  real_valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
  real_pvalloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
  real_malloc_usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
  atomic_store_explicit(&resolve_state, 2, memory_order_release);
  return 1;
}

#define READY()                                                                        \
  (__builtin_expect(atomic_load_explicit(&resolve_state, memory_order_acquire) == 2, 1) || \
   resolve())
#define CALLER() ((uintptr_t)__builtin_return_address(0))

/* ------------------------------------------------------------ the malloc family */

EXPORT int scalene_preload_active(void) { return 1; }

EXPORT void *malloc(size_t n) {
  if (!READY()) return arena_alloc(n, 16);
  if (!real_malloc) return NULL;
  void *p = real_malloc(n);
  if (p) scalene_heap_hook_alloc(p, n, CALLER());
  return p;
}

EXPORT void *calloc(size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (!READY()) return arena_alloc(total, 16);
  if (!real_calloc) return NULL;
  void *p = real_calloc(nmemb, size);
  if (p) scalene_heap_hook_alloc(p, total, CALLER());
  return p;
}

EXPORT void free(void *p) {
  if (!p || in_arena(p)) return;
  scalene_heap_record_free(p, 0);
  if (real_free) real_free(p);
}

static inline __attribute__((always_inline)) void *do_realloc(void *old, size_t n,
                                                               uintptr_t caller) {
  if (!READY() || (old && in_arena(old))) {
    /* An arena block moves out (or within the arena during resolution). */
    void *p = READY() && real_malloc ? real_malloc(n ? n : 1) : arena_alloc(n, 16);
    if (p && old) {
      size_t keep = arena_size(old);
      memcpy(p, old, keep < n ? keep : n);
    }
    if (p && !in_arena(p)) scalene_heap_hook_alloc(p, n, caller);
    return p;
  }
  if (!real_realloc) return NULL;
  /* The old block leaves the sampled-pointer table before the real call:
   * once it returns, its address may already be another thread's. */
  if (old) scalene_heap_record_free(old, 0);
  void *p = real_realloc(old, n);
  if (p && n) scalene_heap_hook_alloc(p, n, caller);
  return p;
}

EXPORT void *realloc(void *old, size_t n) { return do_realloc(old, n, CALLER()); }

/* glibc's reallocarray calls its internal realloc, which the shim would
 * not see: the shim's own realloc does the work instead. */
EXPORT void *reallocarray(void *old, size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return do_realloc(old, total, CALLER());
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  if (!READY()) {
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = arena_alloc(n, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
  }
  if (!real_posix_memalign) return ENOMEM;
  int rc = real_posix_memalign(out, align, n);
  if (rc == 0 && *out) scalene_heap_hook_alloc(*out, n, CALLER());
  return rc;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
  if (!READY()) return arena_alloc(n, align);
  if (!real_aligned_alloc) return NULL;
  void *p = real_aligned_alloc(align, n);
  if (p) scalene_heap_hook_alloc(p, n, CALLER());
  return p;
}

EXPORT void *memalign(size_t align, size_t n) {
  if (!READY()) return arena_alloc(n, align);
  if (!real_memalign) return NULL;
  void *p = real_memalign(align, n);
  if (p) scalene_heap_hook_alloc(p, n, CALLER());
  return p;
}

static size_t page_size(void) {
  long pg = sysconf(_SC_PAGESIZE); /* async-signal-safe */
  return pg > 0 ? (size_t)pg : 4096;
}

EXPORT void *valloc(size_t n) {
  if (!READY()) return arena_alloc(n, page_size());
  if (!real_valloc) return NULL;
  void *p = real_valloc(n);
  if (p) scalene_heap_hook_alloc(p, n, CALLER());
  return p;
}

EXPORT void *pvalloc(size_t n) {
  size_t page = page_size();
  size_t rounded = n ? (n + page - 1) / page * page : page;
  if (!READY()) return arena_alloc(rounded, page);
  if (!real_pvalloc) return NULL; /* a C library without pvalloc */
  void *p = real_pvalloc(n);
  if (p) scalene_heap_hook_alloc(p, rounded, CALLER());
  return p;
}

/* An arena block is not the C library's: it must not see one. */
EXPORT size_t malloc_usable_size(void *p) {
  if (!p) return 0;
  if (in_arena(p)) return arena_size(p);
  if (!READY() || !real_malloc_usable_size) return 0;
  return real_malloc_usable_size(p);
}

/* ------------------------------------------------------------ standalone profiling */

/* Address ranges the CPU locator looks at, filled before the sampler
 * starts.  `program`: the executable's code.  `system`: the C library, the
 * maths library, the dynamic loader, the vDSO, libscaleneprof and this shim:
 * time spent there is charged to the program's code that called it. */
#define MAX_RANGES 32
typedef struct range {
  uintptr_t lo, hi;
} range_t;
static range_t program_ranges[MAX_RANGES], system_ranges[MAX_RANGES];
static int n_program, n_system;

static int in_ranges(const range_t *r, int n, uintptr_t a) {
  for (int i = 0; i < n; i++)
    if (a >= r[i].lo && a < r[i].hi) return 1;
  return 0;
}

static int is_system_object(const char *name, int first) {
  if (first) return 0;
  if (name == NULL || name[0] == '\0') return 1; /* the vDSO on some systems */
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  static const char *const prefixes[] = {"libc.so",       "libc-",         "libm.so",
                                         "libpthread.so", "libdl.so",      "ld-linux",
                                         "ld-musl",       "linux-vdso",    "linux-gate",
                                         "libscaleneprof.so", "libscaleneprof-preload.so"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(base, prefixes[i], strlen(prefixes[i])) == 0) return 1;
  return 0;
}

static int collect_ranges(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  int *first = arg;
  int system = is_system_object(info->dlpi_name, *first);
  int program = *first;
  *first = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    range_t r = {info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz};
    if (program && n_program < MAX_RANGES) program_ranges[n_program++] = r;
    if (system && n_system < MAX_RANGES) system_ranges[n_system++] = r;
  }
  return 0;
}

/* Where a thread is, for the CPU sampler: its interrupted pc, unless that
 * lies in a system object (libc, the vDSO, ...).  Then, as
 * examples/c/hotspots.c does, the first of the 32 words above sp that points
 * into the program's code is the return address of the program's call
 * (those routines are short and built without frame pointers), failing
 * that the frame-pointer chain's first return address into the program;
 * pc - 1 keeps a return address on the calling line.  Signal handler:
 * async-signal-safe, memory read with scalene_safe_read. */
static int locate_cpu(const scalene_sample_context_t *ctx, scalene_location_t *loc, void *arg) {
  (void)arg;
  if (ctx->remote) return SCALENE_LOCATE_UNATTRIBUTED;
  if (!in_ranges(system_ranges, n_system, ctx->pc)) {
    loc->pc = ctx->pc;
    return SCALENE_LOCATE_FOUND;
  }
  uintptr_t words[32];
  if (ctx->sp != 0 && scalene_safe_read(words, (const void *)ctx->sp, sizeof words) == 0) {
    for (int i = 0; i < 32; i++) {
      if (in_ranges(program_ranges, n_program, words[i])) {
        loc->pc = words[i] - 1;
        return SCALENE_LOCATE_FOUND;
      }
    }
  }
  uintptr_t fp = ctx->fp;
  for (int depth = 0; depth < 64 && fp != 0; depth++) {
    uintptr_t frame[2]; /* saved fp, return address */
    if (scalene_safe_read(frame, (const void *)fp, sizeof frame) != 0) break;
    if (in_ranges(program_ranges, n_program, frame[1])) {
      loc->pc = frame[1] - 1;
      return SCALENE_LOCATE_FOUND;
    }
    if (frame[0] <= fp) break;
    fp = frame[0];
  }
  loc->pc = ctx->pc; /* the library itself, then */
  return SCALENE_LOCATE_FOUND;
}

/* Where an allocation or a copy was made: the return address into its
 * caller, which the heap and memcpy samplers symbolise at their drains.
 * Runs inside malloc or memcpy. */
static int locate_call(const scalene_sample_context_t *ctx, scalene_location_t *loc, void *arg) {
  (void)arg;
  if (ctx->pc == 0) return SCALENE_LOCATE_UNATTRIBUTED;
  loc->pc = ctx->pc;
  return SCALENE_LOCATE_FOUND;
}

static struct {
  scalene_profile_t *profile;
  scalene_sampler_t *sampler;
  scalene_heap_t *heap;
  scalene_memcpy_t *copies;
  pid_t pid;
  double t0;
  time_t start;
  _Atomic int finished;
  char outfile[PATH_MAX];
} pl;

/* One line on stderr; never anything else. */
static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...) {
  char buf[512] = "scalene-preload: ";
  size_t n = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap); /* room left for the newline */
  va_end(ap);
  size_t len = strlen(buf);
  buf[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, len);
  (void)w;
}

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Stops the samplers and writes the profile.  Registered with atexit, so it
 * runs in whichever thread calls exit (or returns from main); only once,
 * and only in the process that started profiling (a forked child that
 * exits inherits the handler but not the profile).  The samplers are
 * stopped, not freed: other threads may still be allocating. */
static void finish(void) {
  if (getpid() != pl.pid || atomic_exchange(&pl.finished, 1)) return;
  if (pl.sampler) scalene_sampler_stop(pl.sampler);
  if (pl.heap) scalene_heap_stop(pl.heap);
  if (pl.copies) scalene_memcpy_stop(pl.copies);
  scalene_profile_set_elapsed(pl.profile, mono_now() - pl.t0, (double)pl.start);
  scalene_output_options_t oo;
  scalene_output_options_init(&oo);
  oo.memory = pl.heap != NULL;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  if (scalene_output_write_json(pl.profile, pl.outfile, &oo, &err) != 0)
    complain("cannot write %s: %s", pl.outfile, err.text);
}

/* Parses a positive finite number of seconds; 0 on success. */
static int parse_seconds(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno != 0 || !(v >= 1e-6 && v <= 3600.0)) return -1;
  *out = v;
  return 0;
}

static int parse_bytes(const char *s, uint64_t *out) {
  char *end;
  if (s[0] < '0' || s[0] > '9') return -1; /* no sign, no blanks */
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v == 0) return -1;
  *out = (uint64_t)v;
  return 0;
}

static void start_profile(int argc, char **argv) {
  const char *path = getenv("SCALENE_PRELOAD_OUTFILE");
  if (path == NULL) return;
  const char *iv = getenv("SCALENE_PRELOAD_INTERVAL");
  const char *wv = getenv("SCALENE_PRELOAD_SAMPLING_WINDOW");
  double interval = 0.01;
  uint64_t window = 0;
  int bad = 0;
  if (path[0] == '\0') {
    complain("SCALENE_PRELOAD_OUTFILE is empty; not profiling");
    bad = 1;
  } else if (iv && parse_seconds(iv, &interval) != 0) {
    complain("SCALENE_PRELOAD_INTERVAL: '%s' is not a number of seconds in [1e-6, 3600]; "
             "not profiling", iv);
    bad = 1;
  } else if (wv && parse_bytes(wv, &window) != 0) {
    complain("SCALENE_PRELOAD_SAMPLING_WINDOW: '%s' is not a positive number of bytes; "
             "not profiling", wv);
    bad = 1;
  }
  /* A relative path names a file in the directory the program started in;
   * programs that it runs are not profiled into the same file. */
  char abs[PATH_MAX];
  abs[0] = '\0';
  if (!bad) {
    if (path[0] == '/') {
      snprintf(abs, sizeof abs, "%s", path);
    } else {
      char cwd[PATH_MAX];
      if (getcwd(cwd, sizeof cwd) == NULL ||
          (size_t)snprintf(abs, sizeof abs, "%s/%s", cwd, path) >= sizeof abs) {
        complain("cannot make SCALENE_PRELOAD_OUTFILE absolute; not profiling");
        bad = 1;
      }
    }
  }
  unsetenv("SCALENE_PRELOAD_OUTFILE");
  if (bad) return;
  memcpy(pl.outfile, abs, sizeof pl.outfile);

  int first = 1;
  dl_iterate_phdr(collect_ranges, &first);

  scalene_error_t err;
  memset(&err, 0, sizeof err);
  pl.profile = scalene_profile_new();
  if (pl.profile == NULL) {
    complain("out of memory; not profiling");
    return;
  }
  if (argv != NULL && argc > 0)
    scalene_profile_set_program(pl.profile, argv[0], argc - 1, (const char *const *)argv + 1);

  scalene_sampler_options_t so;
  scalene_sampler_options_init(&so);
  so.interval_ns = (uint64_t)(interval * 1e9 + 0.5);
  so.clock = SCALENE_CLOCK_CPU;
  so.locator = locate_cpu;
  scalene_heap_options_t ho;
  scalene_heap_options_init(&ho);
  if (window) ho.sampling_bytes = window;
  ho.locator = locate_call;
  scalene_memcpy_options_t mo;
  scalene_memcpy_options_init(&mo);
  mo.locator = locate_call;

  int rc = scalene_sampler_new(&so, pl.profile, &pl.sampler, &err);
  if (rc == 0) rc = scalene_heap_new(&ho, pl.profile, &pl.heap, &err);
  if (rc == 0) rc = scalene_memcpy_new(&mo, pl.profile, &pl.copies, &err);
  pl.pid = getpid();
  pl.t0 = mono_now();
  pl.start = time(NULL);
  /* The heap sampler last, so that the others' setup is not counted. */
  if (rc == 0) rc = scalene_sampler_start(pl.sampler, &err);
  if (rc == 0) rc = scalene_memcpy_start(pl.copies, &err);
  if (rc == 0) rc = scalene_heap_start(pl.heap, &err);
  if (rc != 0) {
    complain("%s: %s; not profiling", scalene_err_name(rc), err.text);
    scalene_sampler_free(pl.sampler);
    scalene_memcpy_free(pl.copies);
    scalene_heap_free(pl.heap);
    scalene_profile_free(pl.profile);
    memset(&pl, 0, sizeof pl);
    return;
  }
  if (atexit(finish) != 0) {
    complain("atexit failed; not profiling");
    scalene_heap_stop(pl.heap);
    scalene_memcpy_stop(pl.copies);
    scalene_sampler_stop(pl.sampler);
  }
}

#ifdef __GLIBC__
/* glibc passes argc, argv and envp to the initialisers of every object. */
__attribute__((constructor)) static void preload_init(int argc, char **argv, char **envp) {
  (void)envp;
  resolve();
  start_profile(argc, argv);
}
#else
__attribute__((constructor)) static void preload_init(void) {
  resolve();
  start_profile(0, NULL);
}
#endif
