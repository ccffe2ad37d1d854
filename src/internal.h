/* libscaleneprof: declarations shared inside the library.  Never installed.
 * Internal non-static symbols are scalene__* and hidden (the library is
 * built with -fvisibility=hidden and exports only ^scalene_). */
#ifndef SCALENE_INTERNAL_H
#define SCALENE_INTERNAL_H

#include "config.h"

#include <stdarg.h>

#include <scalene/scalene.h>

#if defined(__GNUC__)
#define SCALENE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SCALENE_PRINTF(a, b)
#endif

/* Fills *err (when not NULL) with a formatted message. */
void scalene__error_set(scalene_error_t *err, const char *source, int line, int column,
                        long offset, const char *fmt, ...) SCALENE_PRINTF(6, 7);

#endif /* SCALENE_INTERNAL_H */
