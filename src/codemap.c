/* libscaleneprof: the code map of the CPU sampler.
 *
 * At start the sampler records, with dl_iterate_phdr, the executable PT_LOAD
 * ranges of every loaded object and tags each one: INTERPRETER (the object
 * that contains opts->interpreter_addr), SYSTEM (libc, libm, libpthread,
 * libdl, librt, the dynamic loader, the vDSO) or OTHER.  The signal handler
 * then classifies an interrupted program counter with one binary search
 * (scalene__codemap_lookup, async-signal-safe: plain loads of an immutable
 * array).  The sampler rebuilds the map when objects are loaded after
 * start (scalene__codemap_adds changes); code outside every range is
 * native. */
#include "sampler_internal.h"

#include <link.h>
#include <stdlib.h>
#include <string.h>

typedef struct build_state {
  scalene__code_range_t *r;
  size_t n, cap;
  uintptr_t interp;
  int oom;
} build_state_t;

/* Whether an object's file name is one of the system libraries whose code is
 * called both by the interpreter and by extensions.  The sanitizer runtimes
 * count as such: their interceptors stand in for libc's functions (a
 * program built with -fsanitize=address calls clock_gettime in libasan),
 * so their caller decides as it would for libc. */
static int is_system_object(const char *path) {
  static const char *const prefixes[] = {
      "libc.so",   "libc-",        "libm.so",    "libm-",    "libpthread", "libdl.so",
      "libdl-",    "librt.so",     "librt-",     "ld-linux", "ld64.so",    "linux-vdso",
      "linux-gate", "libasan.so", "libubsan.so", "liblsan.so", "libtsan.so"};
  const char *base = strrchr(path, '/');
  base = base != NULL ? base + 1 : path;
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(base, prefixes[i], strlen(prefixes[i])) == 0) return 1;
  return 0;
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data) {
  build_state_t *st = data;
  (void)size;
  const char *name = info->dlpi_name != NULL ? info->dlpi_name : "";
  int tag = is_system_object(name) ? SCALENE__CODE_SYSTEM : SCALENE__CODE_OTHER;
  if (st->interp != 0) {
    /* The interpreter address may be code or data: test every PT_LOAD. */
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
      const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
      if (ph->p_type != PT_LOAD) continue;
      uintptr_t a = (uintptr_t)info->dlpi_addr + ph->p_vaddr;
      if (st->interp >= a && st->interp < a + ph->p_memsz) tag = SCALENE__CODE_INTERPRETER;
    }
  }
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0) continue;
    if (st->n == st->cap) {
      size_t cap = st->cap ? st->cap * 2 : 64;
      scalene__code_range_t *r = realloc(st->r, cap * sizeof *r);
      if (r == NULL) {
        st->oom = 1;
        return 1;
      }
      st->r = r;
      st->cap = cap;
    }
    uintptr_t a = (uintptr_t)info->dlpi_addr + ph->p_vaddr;
    st->r[st->n].start = a;
    st->r[st->n].end = a + ph->p_memsz;
    st->r[st->n].tag = tag;
    st->n++;
  }
  return 0;
}

static int cmp_range(const void *a, const void *b) {
  const scalene__code_range_t *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

int scalene__codemap_build(scalene__codemap_t *m, const void *interpreter_addr) {
  build_state_t st = {NULL, 0, 0, (uintptr_t)interpreter_addr, 0};
  dl_iterate_phdr(phdr_cb, &st);
  if (st.oom) {
    free(st.r);
    return SCALENE_ENOMEM;
  }
  qsort(st.r, st.n, sizeof *st.r, cmp_range);
  /* Ranges of distinct objects never overlap; clip defensively so that the
   * binary search's invariant holds whatever the loader reports. */
  for (size_t i = 1; i < st.n; i++)
    if (st.r[i].start < st.r[i - 1].end) st.r[i - 1].end = st.r[i].start;
  m->ranges = st.r;
  m->n = st.n;
  return 0;
}

static int adds_cb(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  *(unsigned long long *)data = info->dlpi_adds;
  return 1; /* the counter is the same in every entry: one is enough */
}

unsigned long long scalene__codemap_adds(void) {
  unsigned long long adds = 0;
  dl_iterate_phdr(adds_cb, &adds);
  return adds;
}

void scalene__codemap_free(scalene__codemap_t *m) {
  free(m->ranges);
  m->ranges = NULL;
  m->n = 0;
}

int scalene__codemap_lookup(const scalene__codemap_t *m, uintptr_t pc) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const scalene__code_range_t *r = &m->ranges[mid];
    if (pc < r->start)
      hi = mid;
    else if (pc >= r->end)
      lo = mid + 1;
    else
      return r->tag;
  }
  return SCALENE__CODE_NONE;
}
