/* heapdemo: a C program that profiles its own allocations with
 * libscaleneprof's heap sampler (scalene/heap.h), without LD_PRELOAD.
 *
 * Build (see Makefile.example; -rdynamic so that dladdr names the
 * functions, -g so that libdw gives file and line):
 *   cc -g -O1 -rdynamic heapdemo.c $(pkg-config --cflags --libs scaleneprof)
 *
 * keep_blocks() allocates 64 MiB in 1 MiB blocks and keeps them;
 * churn_blocks() allocates and frees 256 MiB in 64 KiB pieces.  The heap
 * sampler (mean 256 KiB between samples) charges every sampled allocation
 * to the line that called malloc.  The program prints, after a line
 * "== heapdemo ==", one line per location "function line alloc_MiB
 * live_MiB", then the text table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  keep_blocks();
  churn_blocks();
  scalene_heap_stop(h); /* unhooks, drains into p */

  printf("== heapdemo ==\n");
  for (size_t f = 0; f < scalene_profile_file_count(p); f++) {
    const scalene_line_stats_t *l;
    for (size_t i = 0; (l = scalene_profile_file_line(p, f, i)) != NULL; i++) {
      if (l->alloc_bytes <= 0) continue;
      printf("%s %u %.1f %.1f\n", l->function && l->function[0] ? l->function : "?", l->line,
             l->alloc_bytes / MiB, (l->alloc_bytes - l->freed_bytes) / MiB);
    }
  }
  scalene_output_options_t oo;
  scalene_output_options_init(&oo);
  oo.reduced = 1;
  scalene_output_text(p, stdout, &oo);

  for (int i = 0; i < 64; i++) free(kept[i]);
  scalene_heap_free(h);
  scalene_profile_free(p);
  return 0;
}
