/* Counting hooks for the interposition tests (test_interpose.c and
 * test_interpose_nopie.c): malloc, calloc and free wrappers that count the
 * calls made by a thread whose `counting` flag is set, then call the real
 * functions that install() stored.  Included by one test program each, so
 * the definitions are static. */
#ifndef SCALENE_TESTS_INTERPOSE_COUNTING_H
#define SCALENE_TESTS_INTERPOSE_COUNTING_H

#include <stdatomic.h>
#include <stddef.h>

#include "interpose.h"

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void (*real_free)(void *);
static _Thread_local int counting;
static atomic_size_t n_malloc, n_free;

static void *count_malloc(size_t size) {
  if (counting) atomic_fetch_add(&n_malloc, 1);
  return real_malloc(size);
}

static void *count_calloc(size_t n, size_t size) {
  if (counting) atomic_fetch_add(&n_malloc, 1);
  return real_calloc(n, size);
}

static void count_free(void *p) {
  if (counting) atomic_fetch_add(&n_free, 1);
  real_free(p);
}

static const scalene__hook_t hooks[] = {
    {"malloc", (void *)count_malloc, (void **)&real_malloc},
    {"calloc", (void *)count_calloc, (void **)&real_calloc},
    {"free", (void *)count_free, (void **)&real_free},
};
#define NHOOKS (sizeof hooks / sizeof hooks[0])

#endif /* SCALENE_TESTS_INTERPOSE_COUNTING_H */
