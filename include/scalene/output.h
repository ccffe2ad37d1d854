/* libscaleneprof: output.
 *
 * Writes a profile as JSON compatible with Scalene's (the field names and
 * meanings of Scalene 1.5.16 and 2.x; additions are additive, see
 * docs/json-format.md), reads such JSON back (ours, or Scalene's own), and
 * renders the terminal table and the HTML page.  The output layer only reads a finished
 * profile.  Thread-safe as far as the profile is (stats.h). */
#ifndef SCALENE_OUTPUT_H
#define SCALENE_OUTPUT_H

#include <stdio.h>
#include <scalene/error.h>
#include <scalene/stats.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scalene_output_options {
  size_t size;                  /* sizeof(scalene_output_options_t); set by _init */
  int reduced;                  /* only lines with data (JSON) / active lines (text) */
  double cpu_percent_threshold; /* text: a file or function below this share is left out; default 1 */
  int color;                    /* text: ANSI colour; default 0 */
  int width;                    /* text: line width; default 132 */
  int memory;                   /* JSON "memory" flag: memory was profiled */
  int leaks;                    /* report likely leaks (JSON "leaks", text); default 1 */
  uint64_t malloc_threshold;    /* a likely leak is reported only with at least this many
                                 * sampled allocations (alloc_samples) or at least 1 MiB
                                 * allocated (alloc_bytes); default 0 */
} scalene_output_options_t;

/* Sets every field of *opts to its default. */
SCALENE_API void scalene_output_options_init(scalene_output_options_t *opts);

/* Writes p as JSON to path atomically: a temporary file in the same
 * directory, renamed over path, so a reader sees the old file or the whole
 * new one, whenever the writing process dies.  The file is not fsync'ed:
 * after a crash of the machine itself it may hold either, or on some file
 * systems be empty.  Source lines are read from the profiled files where
 * they exist; each reported file gets one line record per source line.
 * opts may be NULL.  Returns 0, SCALENE_EIO or SCALENE_ENOMEM (*err says
 * which file and why). */
SCALENE_API int scalene_output_write_json(const scalene_profile_t *p, const char *path,
                                          const scalene_output_options_t *opts,
                                          scalene_error_t *err);

/* Reads a profile written by scalene_output_write_json or by Scalene itself
 * (1.5.16 or 2.x) into a new profile (*out, freed by the caller).
 * SCALENE_ENOENT/SCALENE_EIO: the file cannot be read; SCALENE_EPARSE: not
 * JSON (err has line and column); SCALENE_EFORMAT: JSON that is not a
 * profile (err says which member is wrong). */
SCALENE_API int scalene_output_read_json(const char *path, scalene_profile_t **out,
                                         scalene_error_t *err);

/* Renders the line-level table of p to f, Scalene's terminal view: per file
 * a header with its share of the time, then per line Python, native and
 * system time and the source text, then the function summary.  opts may be
 * NULL.  Returns 0 or SCALENE_EIO. */
SCALENE_API int scalene_output_text(const scalene_profile_t *p, FILE *f,
                                    const scalene_output_options_t *opts);

/* Writes p to path as one self-contained HTML page (inline CSS, SVG and
 * a little JavaScript to sort the tables; nothing is fetched from the
 * network): per file, in the order and with the threshold of the terminal
 * view, a table of its lines (CPU shares and bars, the memory columns when
 * p has memory data, the source text; opts->reduced: only lines with
 * data), its function summary and, when opts->leaks, its likely leaks.
 * Every text from the profile is HTML-escaped; the page holds no time of
 * rendering, so the same profile gives the same bytes.  Written atomically
 * as scalene_output_write_json is.  opts may be NULL.  Returns 0,
 * SCALENE_EINVAL, SCALENE_EIO or SCALENE_ENOMEM (*err says which file and
 * why). */
SCALENE_API int scalene_output_write_html(const scalene_profile_t *p, const char *path,
                                          const scalene_output_options_t *opts,
                                          scalene_error_t *err);

#ifdef __cplusplus
}
#endif
#endif /* SCALENE_OUTPUT_H */
