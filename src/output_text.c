/* libscaleneprof: output.h -- the terminal view.
 *
 * Scalene's `--cli` table, per file: a header with the file's share of the
 * CPU time, then one row per source line (Python, native and system time as
 * percentages of all sampled CPU time, then the source text), then a
 * function summary.  docs/columns.md explains the columns. */
#include "internal.h" /* first: config.h sets _GNU_SOURCE */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOT_PERCENT 33.0   /* Scalene's red highlight */
#define PREFIX_COLUMNS 32  /* display columns before the source text */

#define ANSI_HOT "\033[1;31m"
#define ANSI_BOLD "\033[1m"
#define ANSI_DIM "\033[2m"
#define ANSI_ITALIC "\033[3m"
#define ANSI_RESET "\033[0m"

typedef struct view {
  FILE *f;
  const scalene_output_options_t *opts;
  double total;
} view_t;

/* Scalene's time_consumed_str: "1.234s", "2m:3.456s", "12.345ms". */
static void time_str(double sec, char *buf, size_t n) {
  double ms = sec * 1e3;
  long h = (long)(ms / 3600000), m = (long)((ms - 3600000.0 * h) / 60000);
  double s = (ms - 3600000.0 * h - 60000.0 * m) / 1000;
  if (h > 0)
    snprintf(buf, n, "%ldh:%ldm:%.3fs", h, m, s);
  else if (m > 0)
    snprintf(buf, n, "%ldm:%.3fs", m, s);
  else if (ms >= 1000)
    snprintf(buf, n, "%.3fs", s);
  else
    snprintf(buf, n, "%.3fms", ms);
}

/* A percentage cell: blank for zero, "<1%" for a share too small to round
 * to 1 %, else the rounded value. */
static void pct_cell(double pct, char *buf, size_t n) {
  if (!(pct > 0))
    snprintf(buf, n, "%s", "");
  else if (pct < 0.5)
    snprintf(buf, n, "%s", "<1%");
  else
    snprintf(buf, n, "%.0f%%", pct);
}

/* Writes at most `cols` display columns of text (tabs expanded to 8,
 * control characters dropped, a UTF-8 sequence counted as one column). */
static void put_source(FILE *f, const char *text, int cols) {
  int col = 0;
  for (const unsigned char *s = (const unsigned char *)text; *s && col < cols; s++) {
    if (*s == '\t') {
      do fputc(' ', f);
      while (++col % 8 != 0 && col < cols);
    } else if (*s == '\n' || *s == '\r' || *s < 0x20 || *s == 0x7f) {
      continue;
    } else if (*s >= 0x80) {
      /* Copy the whole sequence. */
      fputc(*s, f);
      while ((s[1] & 0xc0) == 0x80) fputc(*++s, f);
      col++;
    } else {
      fputc(*s, f);
      col++;
    }
  }
}

static int text_cols(const view_t *v) {
  int w = v->opts->width - PREFIX_COLUMNS;
  return w < 10 ? 10 : w;
}

static void rule(const view_t *v, const char *left, const char *horiz, const char *cross,
                 const char *right) {
  static const int widths[5] = {6, 7, 7, 7, 0};
  FILE *f = v->f;
  fputs(left, f);
  for (int c = 0; c < 5; c++) {
    int w = c < 4 ? widths[c] : text_cols(v);
    for (int i = 0; i < w; i++) fputs(horiz, f);
    if (c < 4) fputs(cross, f);
  }
  fputs(right, f);
  fputc('\n', f);
}

/* One row.  lineno 0 prints no number; sec NULL prints blank cells. */
static void row(const view_t *v, uint32_t lineno, const double *sec, const char *text,
                int italic_text) {
  FILE *f = v->f;
  char num[16] = "", cells[3][16] = {"", "", ""};
  double sum = 0;
  if (lineno > 0) snprintf(num, sizeof num, "%u", lineno);
  if (sec != NULL && v->total > 0) {
    for (int k = 0; k < 3; k++) {
      double pct = 100.0 * sec[k] / v->total;
      pct_cell(pct, cells[k], sizeof cells[k]);
      sum += pct;
    }
  }
  int hot = v->opts->color && sum >= HOT_PERCENT;
  fprintf(f, " %s%5s%s │", v->opts->color ? ANSI_DIM : "", num, v->opts->color ? ANSI_RESET : "");
  for (int k = 0; k < 3; k++)
    fprintf(f, "%s%6s%s │", hot ? ANSI_HOT : "", cells[k], hot ? ANSI_RESET : "");
  if (italic_text && v->opts->color) fputs(ANSI_BOLD ANSI_ITALIC, f);
  put_source(f, text ? text : "", text_cols(v));
  if (italic_text && v->opts->color) fputs(ANSI_RESET, f);
  fputc('\n', f);
}

static double sum3(const double s[3]) { return s[0] + s[1] + s[2]; }

static int has_data(const scalene_line_stats_t *r) {
  return r != NULL && (sum3(r->cpu_sec) > 0 || r->cpu_samples > 0);
}

static void file_table(const view_t *v, const scalene_profile_t *p, size_t fi) {
  FILE *f = v->f;
  const scalene_file_stats_t *fs = scalene_profile_file(p, fi);
  double fsec = sum3(fs->cpu_sec);
  char spent[48], of[48];
  time_str(fsec, spent, sizeof spent);
  time_str(v->total, of, sizeof of);
  fprintf(f, "%s%s: %% of time = %6.2f%% (%s) out of %s.%s\n", v->opts->color ? ANSI_ITALIC : "",
          fs->name, 100.0 * fsec / v->total, spent, of, v->opts->color ? ANSI_RESET : "");

  const char *b = v->opts->color ? ANSI_BOLD : "", *r = v->opts->color ? ANSI_RESET : "";
  fprintf(f, "       │%s%-6s%s │%s%-6s%s │%s%-6s%s │\n", b, "Time", r, b, "––––––", r, b,
          "––––––", r);
  fprintf(f, " %s%5s%s │%s%-6s%s │%s%-6s%s │%s%-6s%s │%s", b, "Line", r, b, "Python", r, b,
          "native", r, b, "system", r, b);
  put_source(f, fs->name, text_cols(v));
  fprintf(f, "%s\n", r);
  rule(v, "╺", "━", "┿", "╸");

  /* Source lines merged with the records (see file_lines in output_json.c
   * for the same walk). */
  scalene__source_t src = {NULL, 0};
  if (!scalene__file_has_source(p, fi) && scalene__source_read(fs->name, &src) != 0) src.n = 0;
  int reduced = v->opts->reduced;
  int skipping = 0;
  uint32_t last = 0; /* the last line shown */
  size_t i = 0;
  const scalene_line_stats_t *rec = scalene_profile_file_line(p, fi, i);
  uint32_t lineno = 1;
  for (;;) {
    const scalene_line_stats_t *show = NULL;
    const char *text = NULL;
    uint32_t n;
    if (rec != NULL && (rec->line < lineno || lineno > src.n)) {
      show = rec;
      n = rec->line;
      text = rec->line >= 1 && rec->line <= src.n ? src.lines[rec->line - 1] : rec->source;
      rec = scalene_profile_file_line(p, fi, ++i);
    } else if (lineno <= src.n) {
      n = lineno;
      text = src.lines[lineno - 1];
      if (rec != NULL && rec->line == lineno) {
        show = rec;
        rec = scalene_profile_file_line(p, fi, ++i);
      }
      lineno++;
    } else {
      break;
    }
    /* Scalene -r: a run of inactive lines shows as one "...".  So does a
     * run of lines the profile does not have (no source file). */
    if (reduced && !has_data(show)) {
      if (!skipping) row(v, 0, NULL, "...", 0);
      skipping = 1;
      continue;
    }
    if (!skipping && n > last + 1) row(v, 0, NULL, "...", 0);
    skipping = 0;
    last = n;
    row(v, n, show ? show->cpu_sec : NULL, text, 0);
  }
  scalene__source_free(&src);

  /* The function summary: functions at or above the threshold. */
  const scalene_line_stats_t *fn;
  int header = 0;
  for (size_t j = 0; (fn = scalene_profile_file_function(p, fi, j)) != NULL; j++) {
    if (100.0 * sum3(fn->cpu_sec) / v->total < v->opts->cpu_percent_threshold) continue;
    if (!header) {
      rule(v, "╶", "─", "┼", "╴");
      char title[SCALENE_LOCATION_FILE_MAX + 32];
      snprintf(title, sizeof title, "function summary for %s", fs->name);
      row(v, 0, NULL, title, 1);
      header = 1;
    }
    row(v, fn->line, fn->cpu_sec, fn->function, 0);
  }
  fputc('\n', f);
}

typedef struct share {
  size_t index;
  double sec;
  const char *name;
} share_t;

static int cmp_share(const void *a, const void *b) {
  const share_t *x = a, *y = b;
  if (x->sec != y->sec) return x->sec < y->sec ? 1 : -1;
  return strcmp(x->name, y->name);
}

int scalene_output_text(const scalene_profile_t *p, FILE *f,
                        const scalene_output_options_t *opts) {
  if (p == NULL || f == NULL) return SCALENE_EINVAL;
  scalene_output_options_t defaults;
  opts = scalene__output_options(opts, &defaults);

  int rc = 0;
  scalene__profile_lock(p);
  scalene_profile_info_t info;
  info.size = sizeof info;
  scalene_profile_get_info(p, &info);
  view_t v = {f, opts, info.total_cpu_sec};
  size_t nf = scalene_profile_file_count(p);
  share_t *shares = calloc(nf ? nf : 1, sizeof *shares);
  if (shares == NULL) {
    scalene__profile_unlock(p);
    return SCALENE_ENOMEM;
  }
  size_t shown = 0;
  for (size_t i = 0; i < nf; i++) {
    const scalene_file_stats_t *fs = scalene_profile_file(p, i);
    double sec = sum3(fs->cpu_sec);
    if (v.total > 0 && sec > 0 && 100.0 * sec / v.total >= opts->cpu_percent_threshold)
      shares[shown++] = (share_t){i, sec, fs->name};
  }
  if (!(v.total > 0)) {
    fprintf(f, "The profile is empty: no CPU time was sampled (the program may not have run "
               "long enough to be profiled).\n");
  } else if (shown == 0) {
    char t[48];
    time_str(v.total, t, sizeof t);
    fprintf(f, "No profiled file reached %.4g%% of the %s of CPU time sampled.\n",
            opts->cpu_percent_threshold, t);
  } else {
    qsort(shares, shown, sizeof *shares, cmp_share);
    for (size_t i = 0; i < shown; i++) file_table(&v, p, shares[i].index);
  }
  scalene__profile_unlock(p);
  free(shares);
  if (fflush(f) != 0 || ferror(f)) rc = SCALENE_EIO;
  return rc;
}
