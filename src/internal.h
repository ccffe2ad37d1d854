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

/* stats.c (A): the profile's recursive mutex, held by the output layer
 * across a whole rendering so that it reads one consistent state. */
void scalene__profile_lock(const scalene_profile_t *p);
void scalene__profile_unlock(const scalene_profile_t *p);
/* stats.c (A), for loaders: charge a line record only (no function record),
 * a function record only, and the run-wide totals.  Return 0,
 * SCALENE_EINVAL or SCALENE_ENOMEM. */
int scalene__profile_add_line(scalene_profile_t *p, const char *file, uint32_t line,
                              const double seconds[SCALENE_CPU_KINDS], uint64_t samples);
int scalene__profile_add_function(scalene_profile_t *p, const char *file, const char *function,
                                  uint32_t first_line, const double seconds[SCALENE_CPU_KINDS],
                                  uint64_t samples);
void scalene__profile_add_totals(scalene_profile_t *p, double total_cpu_sec,
                                 double unattributed_cpu_sec, uint64_t samples);

/* output_json.c (A): a source file's lines, each with its terminator as
 * Scalene stores them (linecache keeps the "\n"), invalid UTF-8 replaced
 * by U+FFFD.  scalene__source_read returns 0, -1 when the file cannot be
 * read (not an error: a profile may name "<string>" or a file that is
 * gone), or SCALENE_ENOMEM; *s is empty unless it returns 0. */
typedef struct scalene__source {
  char **lines;
  size_t n;
} scalene__source_t;
int scalene__source_read(const char *path, scalene__source_t *s);
void scalene__source_free(scalene__source_t *s);
/* output_json.c (A): whether the profile holds source text for file f (a
 * loaded profile does); then that text is shown, not the file on disk. */
int scalene__file_has_source(const scalene_profile_t *p, size_t f);
/* output_json.c (A): opts, or defaults when NULL, or (opts->size smaller
 * than ours: an older caller) its fields completed with defaults in *buf. */
const scalene_output_options_t *scalene__output_options(const scalene_output_options_t *opts,
                                                        scalene_output_options_t *buf);

#endif /* SCALENE_INTERNAL_H */
