/* libscaleneprof: interned sample locations, shared by the heap and memcpy
 * samplers' drains.  Never installed.
 *
 * A hook's locator fills a scalene_location_t; the drain interns it (the
 * key is the location as filled) and charges the profile with the
 * resolved form: a pc-only location (file "") is symbolised once, at
 * interning, off the hook.  Not thread-safe: the drain calls it under its
 * sampler's lock.  Allocates with malloc (callers are outside any hook). */
#ifndef SCALENE_LOCTAB_H
#define SCALENE_LOCTAB_H

#include "internal.h"

#include <scalene/sampler.h>
#include <scalene/stats.h>

#include <stddef.h>
#include <stdint.h>

#define SCALENE__LOCTAB_NONE UINT32_MAX

typedef struct scalene__loctab {
  scalene_location_t *locs; /* as the locator filled them (the interning key) */
  scalene_location_t *res;  /* the same, pc-only ones symbolised (what is charged) */
  size_t n, cap;
  uint32_t *index;          /* hash of location -> index + 1, 0 empty */
  size_t index_cap;
} scalene__loctab_t;

/* Interns *l; returns its index, or SCALENE__LOCTAB_NONE when out of
 * memory.  t->res[index] is what to charge. */
uint32_t scalene__loctab_intern(scalene__loctab_t *t, const scalene_location_t *l);

/* Frees the table's arrays (the struct itself is the caller's). */
void scalene__loctab_free(scalene__loctab_t *t);

#endif /* SCALENE_LOCTAB_H */
