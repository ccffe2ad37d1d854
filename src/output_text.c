/* libscaleneprof: output.h -- the terminal view.
 *
 * Scalene's `--cli` table, per file: a header with the file's share of the
 * CPU time, then one row per source line (Python, native and system time as
 * percentages of all sampled CPU time, then the source text), then a
 * function summary.  docs/columns.md explains the columns. */
#include "internal.h" /* first: config.h sets _GNU_SOURCE */

#include <limits.h>
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

#define MB 1048576.0
#define SPARK_COLUMNS 10   /* width of the memory timeline cell */
#define MEMORY_COLUMNS (4 * 8 + SPARK_COLUMNS + 2) /* the memory cells */

typedef struct view {
  FILE *f;
  const scalene_output_options_t *opts;
  double total;
  int memory;          /* the profile has memory data: memory columns shown */
  double elapsed;      /* wall seconds */
  double alloc_bytes;  /* all bytes allocated */
  int no_seconds;      /* total is in units of shares, not seconds */
} view_t;

/* Scalene's time_consumed_str: "1.234s", "2m:3.456s", "12.345ms". */
void scalene__fmt_time(double sec, char *buf, size_t n) {
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
void scalene__fmt_pct(double pct, char *buf, size_t n) {
  if (!(pct > 0))
    snprintf(buf, n, "%s", "");
  else if (pct < 0.5)
    snprintf(buf, n, "%s", "<1%");
  else
    snprintf(buf, n, "%.0f%%", pct);
}

/* internal.h; also the HTML view's. */
int scalene__utf8_seq(const unsigned char *s, unsigned long *cp) {
  unsigned char c = s[0];
  int len;
  unsigned long v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if (c >= 0xc2 && c <= 0xdf) {
    len = 2, v = c & 0x1f, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3, v = c & 0x0f, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  for (int k = 1; k < len; k++) {
    if ((s[k] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
    v = v << 6 | (s[k] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return len;
}

/* Writes at most `cols` display columns of text from a profile (a file
 * name, a function name, a source line) so that it cannot act on the
 * terminal: a line terminator at the end is dropped, a tab is expanded
 * to the next multiple of 8 columns, and every other C0 control, DEL,
 * C1 control (U+0080-U+009F) and byte that is not valid UTF-8 (a lone
 * 0x9b is an 8-bit CSI to some terminals) becomes U+FFFD.  Each
 * character counts as one column. */
static void put_source(FILE *f, const char *text, int cols) {
  static const char replacement[] = "\xef\xbf\xbd";
  size_t n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) n--;
  const unsigned char *s = (const unsigned char *)text, *end = s + n;
  int col = 0;
  while (s < end && col < cols) {
    unsigned long cp = 0;
    int len = scalene__utf8_seq(s, &cp);
    if (len > 0 && s + len > end) len = 0; /* cut by the terminator */
    if (len == 1 && cp == '\t') {
      do fputc(' ', f);
      while (++col % 8 != 0 && col < cols);
      s++;
      continue;
    }
    if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
      fputs(replacement, f);
      s += len > 0 ? len : 1;
    } else {
      fwrite(s, 1, (size_t)len, f);
      s += len;
    }
    col++;
  }
}

static int text_cols(const view_t *v) {
  int w = v->opts->width - PREFIX_COLUMNS - (v->memory ? MEMORY_COLUMNS : 0);
  return w < 10 ? 10 : w;
}

static void rule(const view_t *v, const char *left, const char *horiz, const char *cross,
                 const char *right) {
  static const int widths[] = {6, 7, 7, 7, 7, 7, 7, SPARK_COLUMNS + 1, 7};
  int cells = v->memory ? 9 : 4;
  FILE *f = v->f;
  fputs(left, f);
  for (int c = 0; c <= cells; c++) {
    int w = c < cells ? widths[c] : text_cols(v);
    for (int i = 0; i < w; i++) fputs(horiz, f);
    if (c < cells) fputs(cross, f);
  }
  fputs(right, f);
  fputc('\n', f);
}

/* A sparkline of a [seconds, MB] timeline in at most `cols` characters:
 * the points (sorted by time) are cut into `cols` runs of equal count,
 * each shown by its largest value on the scale 0..max(all values) with
 * the eight block characters; padded with spaces to `cols` when pad. */
static void sparkline(FILE *f, size_t n, const double (*pts)[2], int cols, int pad) {
  static const char *const bars[8] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double max = 0;
  for (size_t i = 0; i < n; i++)
    if (pts[i][1] > max) max = pts[i][1];
  int shown = 0;
  if (max > 0) {
    size_t bins = n < (size_t)cols ? n : (size_t)cols;
    for (size_t b = 0; b < bins; b++) {
      size_t lo = b * n / bins, hi = (b + 1) * n / bins;
      double v = 0;
      for (size_t i = lo; i < hi; i++)
        if (pts[i][1] > v) v = pts[i][1];
      int k = (int)(v / max * 7.0 + 0.5);
      fputs(bars[k < 0 ? 0 : k > 7 ? 7 : k], f);
      shown++;
    }
  }
  for (; pad && shown < cols; shown++) fputc(' ', f);
}

/* An MB cell: blank for zero, else about 3 significant digits. */
void scalene__fmt_mb(double mb, char *buf, size_t n) {
  if (!(mb > 0))
    snprintf(buf, n, "%s", "");
  else if (mb < 1)
    snprintf(buf, n, "%.2f", mb);
  else if (mb < 100)
    snprintf(buf, n, "%.1f", mb);
  else if (mb < 100000)
    snprintf(buf, n, "%.0f", mb);
  else
    snprintf(buf, n, "%.2g", mb);
}

/* The memory cells of a row: Python share of the allocations, net MB
 * (allocated here and still live at the end), peak MB, the timeline, copy
 * MB/s.  r NULL prints blank cells. */
static void memory_cells(const view_t *v, const scalene_line_stats_t *r) {
  FILE *f = v->f;
  char py[16] = "", net[16] = "", peak[16] = "", copy[16] = "";
  if (r != NULL) {
    if (r->alloc_bytes > 0)
      scalene__fmt_pct(100.0 * r->python_bytes / r->alloc_bytes, py, sizeof py);
    if (r->alloc_bytes > 0 && r->python_bytes == 0) snprintf(py, sizeof py, "%s", "0%");
    scalene__line_memory_t m;
    scalene__line_memory(r, &m);
    scalene__fmt_mb(m.live_bytes / MB, net, sizeof net);
    scalene__fmt_mb(r->peak_bytes / MB, peak, sizeof peak);
    if (v->elapsed > 0) scalene__fmt_mb(r->copy_bytes / MB / v->elapsed, copy, sizeof copy);
  }
  fprintf(f, "%6s │%6s │%6s │", py, net, peak);
  if (r != NULL)
    sparkline(f, r->n_memory_samples, r->memory_samples, SPARK_COLUMNS, 1);
  else
    fprintf(f, "%*s", SPARK_COLUMNS, "");
  fprintf(f, " │%6s │", copy);
}

/* One row.  lineno 0 prints no number; r NULL prints blank cells. */
static void row(const view_t *v, uint32_t lineno, const scalene_line_stats_t *r, const char *text,
                int italic_text) {
  FILE *f = v->f;
  const double *sec = r ? r->cpu_sec : NULL;
  char num[16] = "", cells[3][16] = {"", "", ""};
  double sum = 0;
  if (lineno > 0) snprintf(num, sizeof num, "%u", lineno);
  if (sec != NULL && v->total > 0) {
    for (int k = 0; k < 3; k++) {
      double pct = 100.0 * sec[k] / v->total;
      scalene__fmt_pct(pct, cells[k], sizeof cells[k]);
      sum += pct;
    }
  }
  int hot = v->opts->color &&
            (sum >= HOT_PERCENT || (v->memory && r != NULL && v->alloc_bytes > 0 &&
                                    100.0 * r->alloc_bytes / v->alloc_bytes >= HOT_PERCENT));
  fprintf(f, " %s%5s%s │", v->opts->color ? ANSI_DIM : "", num, v->opts->color ? ANSI_RESET : "");
  for (int k = 0; k < 3; k++)
    fprintf(f, "%s%6s%s │", hot ? ANSI_HOT : "", cells[k], hot ? ANSI_RESET : "");
  if (v->memory) memory_cells(v, r);
  if (italic_text && v->opts->color) fputs(ANSI_BOLD ANSI_ITALIC, f);
  put_source(f, text ? text : "", text_cols(v));
  if (italic_text && v->opts->color) fputs(ANSI_RESET, f);
  fputc('\n', f);
}

/* internal.h */
void scalene__line_walk_init(scalene__line_walk_t *w, const scalene_profile_t *p, size_t fi,
                             const scalene__source_t *src) {
  w->p = p;
  w->fi = fi;
  w->src = src;
  w->i = 0;
  w->rec = scalene_profile_file_line(p, fi, 0);
  w->lineno = 1;
}

int scalene__line_walk_next(scalene__line_walk_t *w, uint32_t *n, const char **text,
                            const scalene_line_stats_t **show) {
  const scalene__source_t *src = w->src;
  const scalene_line_stats_t *rec = w->rec;
  *show = NULL;
  if (rec != NULL && (rec->line < w->lineno || w->lineno > src->n)) {
    /* A record with no line in the source. */
    *show = rec;
    *n = rec->line;
    *text = rec->line >= 1 && rec->line <= src->n ? src->lines[rec->line - 1] : rec->source;
    w->rec = scalene_profile_file_line(w->p, w->fi, ++w->i);
    return 1;
  }
  if (w->lineno > src->n) return 0;
  *n = w->lineno;
  *text = src->lines[w->lineno - 1];
  if (rec != NULL && rec->line == w->lineno) {
    *show = rec;
    w->rec = scalene_profile_file_line(w->p, w->fi, ++w->i);
  }
  w->lineno++;
  return 1;
}

double scalene__sum3(const double s[3]) { return s[0] + s[1] + s[2]; }

int scalene__line_has_data(const scalene_line_stats_t *r) {
  return r != NULL && (scalene__sum3(r->cpu_sec) > 0 || r->cpu_samples > 0 ||
                       r->alloc_bytes > 0 || r->freed_bytes > 0 || r->copy_bytes > 0);
}

typedef struct peak {
  uint32_t line;
  double mb;
} peak_t;

static int cmp_peak(const void *a, const void *b) {
  const peak_t *x = a, *y = b;
  if (x->mb != y->mb) return x->mb < y->mb ? 1 : -1;
  return (x->line > y->line) - (x->line < y->line);
}

/* After a file's table (memory profiles): the five lines with the highest
 * peak above 1 MB, like Scalene's "Top PEAK memory consumption", then the
 * likely leaks when opts->leaks: those of the JSON's "leaks" (the same rule
 * and opts->malloc_threshold). */
static void file_memory_summary(const view_t *v, const scalene_profile_t *p, size_t fi) {
  FILE *f = v->f;
  const scalene_file_stats_t *fs = scalene_profile_file(p, fi);
  peak_t top[5];
  size_t n = 0;
  const scalene_line_stats_t *r;
  for (size_t i = 0; (r = scalene_profile_file_line(p, fi, i)) != NULL; i++) {
    double mb = r->peak_bytes / MB;
    if (!(mb > 1)) continue;
    if (n < 5) {
      top[n++] = (peak_t){r->line, mb};
    } else if (mb > top[4].mb) {
      top[4] = (peak_t){r->line, mb};
    } else {
      continue;
    }
    qsort(top, n, sizeof top[0], cmp_peak);
  }
  if (n > 0) {
    fprintf(f, "Top PEAK memory consumption, by line:\n");
    for (size_t i = 0; i < n; i++)
      fprintf(f, "(%zu) %6u: %8.2f MB\n", i + 1, top[i].line, top[i].mb);
  }
  if (!v->opts->leaks) return;
  for (size_t i = 0; (r = scalene_profile_file_line(p, fi, i)) != NULL; i++) {
    double likelihood, velocity;
    if (scalene__leak(r, v->elapsed, &likelihood, &velocity) &&
        (r->alloc_samples >= v->opts->malloc_threshold || r->alloc_bytes >= MB))
      fprintf(f,
              "Possible memory leak identified at line %u (estimated likelihood: %.0f%%, "
              "velocity: %.2f MB/s)\n",
              r->line, 100.0 * likelihood, velocity);
  }
  (void)fs;
}

static void file_table(const view_t *v, const scalene_profile_t *p, size_t fi) {
  FILE *f = v->f;
  const scalene_file_stats_t *fs = scalene_profile_file(p, fi);
  double fsec = scalene__sum3(fs->cpu_sec);
  char spent[48], of[48];
  scalene__fmt_time(fsec, spent, sizeof spent);
  scalene__fmt_time(v->total, of, sizeof of);
  fputs(v->opts->color ? ANSI_ITALIC : "", f);
  put_source(f, fs->name, INT_MAX);
  fprintf(f, ": %% of time = %6.2f%%", v->total > 0 ? 100.0 * fsec / v->total : 0.0);
  /* A profile without seconds has shares only. */
  if (!v->no_seconds) fprintf(f, " (%s) out of %s", spent, of);
  fprintf(f, ".%s\n", v->opts->color ? ANSI_RESET : "");

  const char *b = v->opts->color ? ANSI_BOLD : "", *r = v->opts->color ? ANSI_RESET : "";
  fprintf(f, "       │%s%-6s%s │%s%-6s%s │%s%-6s%s │", b, "Time", r, b, "––––––", r, b,
          "––––––", r);
  if (v->memory)
    fprintf(f, "%s%-6s%s │%s%-6s%s │%s%-6s%s │%s%-*s%s │%s%-6s%s │", b, "Memory", r, b,
            "––––––", r, b, "––––––", r, b, SPARK_COLUMNS, "––––––––––", r, b, "Copy", r);
  fputc('\n', f);
  fprintf(f, " %s%5s%s │%s%-6s%s │%s%-6s%s │%s%-6s%s │", b, "Line", r, b, "Python", r, b,
          "native", r, b, "system", r);
  if (v->memory)
    fprintf(f, "%s%-6s%s │%s%-6s%s │%s%-6s%s │%s%-*s%s │%s%-6s%s │", b, "Python", r, b, "net MB",
            r, b, "peakMB", r, b, SPARK_COLUMNS, "timeline", r, b, "MB/s", r);
  fputs(b, f);
  put_source(f, fs->name, text_cols(v));
  fprintf(f, "%s\n", r);
  rule(v, "╺", "━", "┿", "╸");

  /* Source lines merged with the records (see file_lines in output_json.c
   * for the same walk). */
  scalene__source_t src; /* without memory for it, the records alone */
  (void)scalene__file_source(p, fi, fs->name, &src);
  int reduced = v->opts->reduced;
  int skipping = 0;
  uint32_t last = 0; /* the last line shown */
  scalene__line_walk_t walk;
  scalene__line_walk_init(&walk, p, fi, &src);
  const scalene_line_stats_t *show;
  const char *text;
  uint32_t n;
  while (scalene__line_walk_next(&walk, &n, &text, &show)) {
    /* Scalene -r: a run of inactive lines shows as one "...".  So does a
     * run of lines the profile does not have (no source file). */
    if (reduced && !scalene__line_has_data(show)) {
      if (!skipping) row(v, 0, NULL, "...", 0);
      skipping = 1;
      continue;
    }
    if (!skipping && n > last + 1) row(v, 0, NULL, "...", 0);
    skipping = 0;
    last = n;
    row(v, n, show, text, 0);
  }
  scalene__source_free(&src);

  /* The function summary: functions at or above the threshold. */
  const scalene_line_stats_t *fn;
  int header = 0;
  for (size_t j = 0; (fn = scalene_profile_file_function(p, fi, j)) != NULL; j++) {
    int cpu_shown = v->total > 0 &&
                    100.0 * scalene__sum3(fn->cpu_sec) / v->total >= v->opts->cpu_percent_threshold;
    int mem_shown = v->memory && fn->alloc_bytes >= MB;
    if (!cpu_shown && !mem_shown) continue;
    if (!header) {
      rule(v, "╶", "─", "┼", "╴");
      char title[SCALENE_LOCATION_FILE_MAX + 32];
      snprintf(title, sizeof title, "function summary for %s", fs->name);
      row(v, 0, NULL, title, 1);
      header = 1;
    }
    row(v, fn->line, fn, fn->function, 0);
  }
  if (v->memory) file_memory_summary(v, p, fi);
  fputc('\n', f);
}


int scalene__cmp_share(const void *a, const void *b) {
  const share_t *x = a, *y = b;
  if (x->sec != y->sec) return x->sec < y->sec ? 1 : -1;
  return strcmp(x->name, y->name);
}

/* internal.h */
int scalene__view_memory(const scalene_profile_t *p, const scalene_profile_info_t *info) {
  if (!info->memory) return 0;
  if (info->alloc_bytes > 0 || info->max_footprint_bytes > 0) return 1;
  size_t nf = scalene_profile_file_count(p);
  for (size_t i = 0; i < nf; i++)
    if (scalene_profile_file(p, i)->copy_bytes > 0) return 1;
  return 0;
}

share_t *scalene__view_files(const scalene_profile_t *p, const scalene_profile_info_t *info,
                             int memory, const scalene_output_options_t *opts, size_t *shown) {
  double total = info->total_cpu_sec;
  size_t nf = scalene_profile_file_count(p), n = 0;
  share_t *shares = calloc(nf ? nf : 1, sizeof *shares);
  if (shares == NULL) return NULL;
  for (size_t i = 0; i < nf; i++) {
    const scalene_file_stats_t *fs = scalene_profile_file(p, i);
    double sec = scalene__sum3(fs->cpu_sec);
    if ((total > 0 && sec > 0 && 100.0 * sec / total >= opts->cpu_percent_threshold) ||
        (memory && fs->alloc_bytes + fs->copy_bytes >= MB))
      shares[n++] = (share_t){i, sec, fs->name};
  }
  qsort(shares, n, sizeof *shares, scalene__cmp_share);
  *shown = n;
  return shares;
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
  view_t v = {f,          opts, info.total_cpu_sec, 0, info.elapsed_sec, info.alloc_bytes,
              scalene__profile_seconds_unknown(p)};
  v.memory = scalene__view_memory(p, &info);
  size_t shown;
  share_t *shares = scalene__view_files(p, &info, v.memory, opts, &shown);
  if (shares == NULL) {
    scalene__profile_unlock(p);
    return SCALENE_ENOMEM;
  }
  if (v.memory) {
    /* Scalene's memory header line. */
    scalene__profile_memory_t pm;
    scalene__profile_memory(p, &pm);
    fprintf(f, "Memory usage: ");
    sparkline(f, pm.n_samples, pm.samples, 40, 0);
    fprintf(f, " (max: %.2f MB, growth rate: %.0f%%)\n", pm.max_footprint_bytes / MB,
            pm.alloc_bytes > 0 ? 100.0 * pm.live_bytes / pm.alloc_bytes : 0.0);
  }
  if (!(v.total > 0) && shown == 0) {
    fprintf(f, "The profile is empty: no CPU time was sampled (the program may not have run "
               "long enough to be profiled).\n");
  } else if (shown == 0) {
    /* v.total > 0 here. */
    char t[48];
    scalene__fmt_time(v.total, t, sizeof t);
    if (v.no_seconds)
      fprintf(f, "No profiled file reached %.4g%% of the CPU time sampled.\n",
              opts->cpu_percent_threshold);
    else
      fprintf(f, "No profiled file reached %.4g%% of the %s of CPU time sampled.\n",
              opts->cpu_percent_threshold, t);
  } else {
    for (size_t i = 0; i < shown; i++) file_table(&v, p, shares[i].index);
  }
  scalene__profile_unlock(p);
  free(shares);
  if (fflush(f) != 0 || ferror(f)) rc = SCALENE_EIO;
  return rc;
}
