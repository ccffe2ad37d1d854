/* preload_victim: a program linked with libscaleneprof that takes malloc's
 * address BEFORE it starts the heap sampler (a static initialiser: an
 * R_X86_64_64-style data relocation, not a GOT entry, so GOT patching never
 * redirects it), then starts the sampler and allocates exactly 64 MiB in
 * 64 KiB blocks through that pointer, keeping them.  Run by test_preload
 * with and without LD_PRELOAD=libscaleneprof-preload.so.  Prints:
 *   hooked_objects N      GOT entries patched while the sampler ran
 *   preload_active N      1 when scalene_preload_active is defined
 *   pointer_bytes X       the estimated bytes allocated in alloc_blocks()
 *   samples N             sampled allocations
 * With a second argument "family" it allocates instead 64 blocks of 64 KiB
 * through each function of the malloc family (realloc growing a block of
 * 32 KiB made by malloc in grow_source), frees them all with free, and
 * prints for each function "fn NAME alloc BYTES freed BYTES" (the
 * estimates charged to the function that made the call) and "usable_ok 1"
 * when malloc_usable_size saw every block whole. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <scalene/scalene.h>

extern char __executable_start[], etext[];

static void *(*volatile early_malloc)(size_t) = malloc;

#define BLOCK (64 * 1024)
#define NBLOCKS 1024 /* 64 MiB */
static void *kept[NBLOCKS];

/* Inside malloc: async-signal-safe.  Only the program's own calls count. */
static int locate(const scalene_sample_context_t *ctx, scalene_location_t *loc, void *arg) {
  (void)arg;
  if (ctx->pc < (uintptr_t)__executable_start || ctx->pc >= (uintptr_t)etext)
    return SCALENE_LOCATE_UNATTRIBUTED;
  loc->pc = ctx->pc;
  return SCALENE_LOCATE_FOUND;
}

__attribute__((noinline)) void alloc_blocks(void) {
  for (int i = 0; i < NBLOCKS; i++) {
    kept[i] = early_malloc(BLOCK);
    if (kept[i] == NULL) abort();
    memset(kept[i], 1, 64);
  }
}

#define FAMILY_N 64
static void *fam[9][FAMILY_N];
static int usable_ok = 1;

static void keep(int k, int i, void *p) {
  if (p == NULL) abort();
  if (malloc_usable_size(p) < BLOCK) usable_ok = 0;
  memset(p, 1, 64);
  fam[k][i] = p;
}

__attribute__((noinline)) void by_malloc(int i) { keep(0, i, malloc(BLOCK)); }
__attribute__((noinline)) void by_calloc(int i) { keep(1, i, calloc(BLOCK / 64, 64)); }
/* Not a tail call: the return address must lie in this function. */
__attribute__((noinline)) void *grow_source(void) {
  char *p = malloc(BLOCK / 2);
  if (p == NULL) abort();
  p[0] = 1;
  return p;
}
__attribute__((noinline)) void by_realloc(int i) { keep(2, i, realloc(grow_source(), BLOCK)); }
__attribute__((noinline)) void by_reallocarray(int i) {
  keep(3, i, reallocarray(NULL, BLOCK / 16, 16));
}
__attribute__((noinline)) void by_posix_memalign(int i) {
  void *p = NULL;
  if (posix_memalign(&p, 256, BLOCK) != 0) abort();
  keep(4, i, p);
}
__attribute__((noinline)) void by_aligned_alloc(int i) { keep(5, i, aligned_alloc(4096, BLOCK)); }
__attribute__((noinline)) void by_memalign(int i) { keep(6, i, memalign(512, BLOCK)); }
__attribute__((noinline)) void by_valloc(int i) { keep(7, i, valloc(BLOCK)); }
__attribute__((noinline)) void by_pvalloc(int i) { keep(8, i, pvalloc(BLOCK)); }

static const char *const fam_names[] = {"by_malloc", "by_calloc", "by_realloc",
                                        "by_reallocarray", "by_posix_memalign",
                                        "by_aligned_alloc", "by_memalign", "by_valloc",
                                        "by_pvalloc", "grow_source"};

static void family(void) {
  for (int i = 0; i < FAMILY_N; i++) {
    by_malloc(i);
    by_calloc(i);
    by_realloc(i);
    by_reallocarray(i);
    by_posix_memalign(i);
    by_aligned_alloc(i);
    by_memalign(i);
    by_valloc(i);
    by_pvalloc(i);
  }
  for (int k = 0; k < 9; k++)
    for (int i = 0; i < FAMILY_N; i++) free(fam[k][i]);
}

static void report_family(scalene_profile_t *p) {
  for (size_t k = 0; k < sizeof fam_names / sizeof fam_names[0]; k++) {
    double alloc = 0, freed = 0;
    for (size_t f = 0; f < scalene_profile_file_count(p); f++) {
      const scalene_line_stats_t *fn;
      for (size_t j = 0; (fn = scalene_profile_file_function(p, f, j)) != NULL; j++)
        if (strcmp(fn->function, fam_names[k]) == 0) {
          alloc += fn->alloc_bytes;
          freed += fn->freed_bytes;
        }
    }
    printf("fn %s alloc %.0f freed %.0f\n", fam_names[k], alloc, freed);
  }
  printf("usable_ok %d\n", usable_ok);
}

int main(int argc, char **argv) {
  unsigned long long window = argc > 1 ? strtoull(argv[1], NULL, 10) : 65536;
  scalene_profile_t *p = scalene_profile_new();
  if (p == NULL) return 1;
  scalene_heap_options_t o;
  scalene_heap_options_init(&o);
  o.sampling_bytes = window;
  o.locator = locate;
  scalene_heap_t *h = NULL;
  scalene_error_t err;
  int rc = scalene_heap_new(&o, p, &h, &err);
  if (rc == 0) rc = scalene_heap_start(h, &err);
  if (rc != 0) {
    fprintf(stderr, "preload_victim: %s: %s\n", scalene_err_name(rc), err.text);
    return 1;
  }
  int fam_mode = argc > 2 && strcmp(argv[2], "family") == 0;
  if (fam_mode)
    family();
  else
    alloc_blocks();
  scalene_heap_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  scalene_heap_get_stats(h, &st);
  scalene_heap_stop(h);

  if (fam_mode) report_family(p);
  double bytes = 0;
  for (size_t f = 0; f < scalene_profile_file_count(p); f++) {
    const scalene_line_stats_t *fn;
    for (size_t j = 0; (fn = scalene_profile_file_function(p, f, j)) != NULL; j++)
      if (strcmp(fn->function, "alloc_blocks") == 0) bytes += fn->alloc_bytes;
  }
  printf("hooked_objects %u\n", st.hooked_objects);
  printf("preload_active %d\n", dlsym(RTLD_DEFAULT, "scalene_preload_active") != NULL);
  printf("pointer_bytes %.0f\n", bytes);
  printf("samples %llu\n", (unsigned long long)st.samples);
  for (int i = 0; i < NBLOCKS; i++) free(kept[i]);
  scalene_heap_free(h);
  scalene_profile_free(p);
  return 0;
}
