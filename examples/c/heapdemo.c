/* heapdemo: a C program that profiles its own allocations and copies with
 * libscaleneprof's heap and memcpy samplers (scalene/heap.h,
 * scalene/memcpy.h), without LD_PRELOAD.
 *
 * Build (see Makefile.example; -rdynamic so that dladdr names the
 * functions, -g so that libdw gives file and line):
 *   cc -g -O1 -rdynamic heapdemo.c $(pkg-config --cflags --libs scaleneprof)
 *
 * keep_blocks() allocates 64 MiB in 1 MiB blocks and keeps them;
 * churn_blocks() allocates and frees 256 MiB in 64 KiB pieces;
 * copy_blocks() copies 512 MiB in 64 KiB memcpy calls.  The heap sampler
 * (mean 256 KiB between samples) charges every sampled allocation to the
 * line that called malloc, the memcpy sampler (mean 256 KiB too: 4 sigma =
 * 8 % for these 8192 copies) every sampled copy to the line that called
 * memcpy; both run at once.  The program prints, after a line
 * "== heapdemo ==", one line per location "function line alloc_MiB
 * live_MiB copy_MiB", the truth "copied 512.0 MiB", then the text table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <scalene/scalene.h>

/* The bounds of this program's code, from the linker. */
extern char __executable_start[], etext[];

/* Runs inside malloc: async-signal-safe, no allocation.  ctx->pc is the
 * return address into the code that called malloc; the sampler symbolises
 * it when it drains its buffer. */
static int locate(const scalene_sample_context_t *ctx, scalene_location_t *loc, void *arg) {
  (void)arg;
  if (ctx->pc < (uintptr_t)__executable_start || ctx->pc >= (uintptr_t)etext)
    return SCALENE_LOCATE_UNATTRIBUTED; /* allocations made inside libraries */
  loc->pc = ctx->pc;
  return SCALENE_LOCATE_FOUND;
}

#define MiB (1024 * 1024)

static void *kept[64];

__attribute__((noinline)) void keep_blocks(void) {
  for (int i = 0; i < 64; i++) {
    kept[i] = malloc(MiB);
    if (kept[i]) memset(kept[i], 1, 4096);
  }
}

static char src[64 * 1024], dst[64 * 1024];
static volatile size_t piece = sizeof dst; /* volatile: a real memcpy call */

/* Returns the bytes copied. */
__attribute__((noinline)) size_t copy_blocks(void) {
  size_t done = 0;
  for (int i = 0; i < 512 * 16; i++) {
    memcpy(dst, src, piece);
    done += piece;
  }
  return done;
}

__attribute__((noinline)) void churn_blocks(void) {
  for (int i = 0; i < 256 * 16; i++) {
    volatile char *b = malloc(64 * 1024);
    if (b) b[0] = 1;
    free((void *)b);
  }
}

int main(int argc, char **argv) {
  scalene_profile_t *p = scalene_profile_new();
  if (p == NULL) return 1;
  scalene_profile_set_program(p, argv[0], argc - 1, (const char *const *)argv + 1);

  scalene_heap_options_t opts;
  scalene_heap_options_init(&opts);
  opts.sampling_bytes = 256 * 1024;
  opts.locator = locate;
  scalene_heap_t *h = NULL;
  scalene_error_t err;
  int rc = scalene_heap_new(&opts, p, &h, &err);
  if (rc == 0) rc = scalene_heap_start(h, &err);
  if (rc != 0) {
    fprintf(stderr, "heapdemo: %s: %s\n", scalene_err_name(rc), err.text);
    return 1;
  }
  scalene_memcpy_options_t mopts;
  scalene_memcpy_options_init(&mopts);
  mopts.sampling_bytes = 256 * 1024;
  mopts.locator = locate; /* the same locator: it runs inside memcpy too */
  scalene_memcpy_t *m = NULL;
  rc = scalene_memcpy_new(&mopts, p, &m, &err);
  if (rc == 0) rc = scalene_memcpy_start(m, &err);
  if (rc != 0) {
    fprintf(stderr, "heapdemo: %s: %s\n", scalene_err_name(rc), err.text);
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  keep_blocks();
  churn_blocks();
  size_t copied = copy_blocks();
  scalene_memcpy_stop(m); /* unhooks the copy family, drains into p */
  scalene_heap_stop(h);   /* unhooks the malloc family, drains into p */
  clock_gettime(CLOCK_MONOTONIC, &t1);
  /* The Copy MB/s column divides the copied bytes by the elapsed time. */
  scalene_profile_set_elapsed(p, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9,
                              (double)time(NULL));

  printf("== heapdemo ==\n");
  for (size_t f = 0; f < scalene_profile_file_count(p); f++) {
    const scalene_line_stats_t *l;
    for (size_t i = 0; (l = scalene_profile_file_line(p, f, i)) != NULL; i++) {
      if (l->alloc_bytes <= 0 && l->copy_bytes <= 0) continue;
      printf("%s %u %.1f %.1f %.1f\n", l->function && l->function[0] ? l->function : "?",
             l->line, l->alloc_bytes / MiB, (l->alloc_bytes - l->freed_bytes) / MiB,
             l->copy_bytes / MiB);
    }
  }
  printf("copied %.1f MiB\n", (double)copied / MiB);
  scalene_output_options_t oo;
  scalene_output_options_init(&oo);
  oo.reduced = 1;
  scalene_output_text(p, stdout, &oo);

  for (int i = 0; i < 64; i++) free(kept[i]);
  scalene_memcpy_free(m);
  scalene_heap_free(h);
  scalene_profile_free(p);
  return 0;
}
