/* libscaleneprof: interned sample locations (loctab.h), shared by the heap
 * and memcpy samplers' drains.  Runs outside any hook, under the calling
 * sampler's lock; allocates with malloc. */
#include "loctab.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t x = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) x = (x ^ p[i]) * 1099511628211ULL;
  return x ^ (x >> 29);
}

static uint64_t hash_loc(const scalene_location_t *l) {
  uint64_t x = hash_bytes(l->file, strnlen(l->file, sizeof l->file));
  x ^= hash_bytes(l->function, strnlen(l->function, sizeof l->function)) * 31;
  x ^= ((uint64_t)l->line << 32 | l->function_line) * 0x9E3779B97F4A7C15ULL;
  x ^= (uint64_t)l->pc * 0xC2B2AE3D27D4EB4FULL;
  return x ^ (x >> 31);
}

static int loc_equal(const scalene_location_t *a, const scalene_location_t *b) {
  return a->line == b->line && a->function_line == b->function_line && a->pc == b->pc &&
         strncmp(a->file, b->file, sizeof a->file) == 0 &&
         strncmp(a->function, b->function, sizeof a->function) == 0;
}

uint32_t scalene__loctab_intern(scalene__loctab_t *t, const scalene_location_t *l) {
  if (t->n * 2 >= t->index_cap) {
    size_t cap = t->index_cap ? t->index_cap * 2 : 256;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx) return SCALENE__LOCTAB_NONE;
    for (size_t i = 0; i < t->n; i++) {
      size_t j = hash_loc(&t->locs[i]) & (cap - 1);
      while (idx[j]) j = (j + 1) & (cap - 1);
      idx[j] = (uint32_t)i + 1;
    }
    free(t->index);
    t->index = idx;
    t->index_cap = cap;
  }
  size_t mask = t->index_cap - 1, j = hash_loc(l) & mask;
  while (t->index[j]) {
    uint32_t i = t->index[j] - 1;
    if (loc_equal(&t->locs[i], l)) return i;
    j = (j + 1) & mask;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    scalene_location_t *n = realloc(t->locs, cap * sizeof *n);
    if (!n) return SCALENE__LOCTAB_NONE;
    t->locs = n;
    n = realloc(t->res, cap * sizeof *n);
    if (!n) return SCALENE__LOCTAB_NONE;
    t->res = n;
    t->cap = cap;
  }
  t->locs[t->n] = *l;
  /* A pc-only location (file "") is symbolised once, here, off the hook:
   * the pc is a return address, so pc - 1 stays on the calling line. */
  t->res[t->n] = *l;
  if (l->file[0] == '\0' && l->pc != 0) {
    scalene_location_t sym;
    memset(&sym, 0, sizeof sym);
    if (scalene_symbolize(l->pc - 1, &sym) == 0) {
      sym.pc = l->pc;
      t->res[t->n] = sym;
    }
  }
  t->index[j] = (uint32_t)t->n + 1;
  return (uint32_t)t->n++;
}

void scalene__loctab_free(scalene__loctab_t *t) {
  free(t->locs);
  free(t->res);
  free(t->index);
  memset(t, 0, sizeof *t);
}
