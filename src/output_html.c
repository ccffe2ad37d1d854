/* libscaleneprof: output.h -- the HTML view.
 *
 * One self-contained HTML5 page: inline CSS, inline SVG sparklines, a few
 * lines of inline JavaScript that sort a table by the column clicked.
 * Nothing is fetched from anywhere, so the page opens without a network.
 * Per file, ordered by CPU share as in the terminal view (output_text.c,
 * docs/columns.md): one row per line (Python, native and system shares, a
 * CPU bar, the memory cells when the profile has memory, the source text),
 * then the function summary and the likely leaks.  docs/html.md describes
 * the page.
 *
 * Every piece of text that comes from the profile (program, arguments, file
 * and function names, source lines) goes through put_text, which escapes
 * it.  The page holds no time of rendering: one profile always gives the
 * same bytes.  It is built in memory while holding the profile's lock and
 * then written atomically (scalene__write_file_atomic). */
#include "internal.h" /* first: config.h sets _GNU_SOURCE */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB 1048576.0
#define HOT_PERCENT 33.0 /* Scalene's red highlight, as in the terminal view */
#define SPARK_W 100      /* the line timelines, in CSS pixels */
#define SPARK_H 18

typedef struct page {
  FILE *f;
  const scalene_output_options_t *opts;
  double total;       /* all CPU seconds sampled */
  double elapsed;     /* wall seconds */
  double alloc_bytes; /* all bytes allocated */
  int memory;         /* the profile has memory data: memory columns shown */
  int no_seconds;     /* total is in units of shares, not seconds */
} page_t;

/* ------------------------------------------------------------ text */

/* The one way text from the profile reaches the page: the first n bytes of
 * s with & < > " ' as character references (safe in element content and in
 * quoted attributes alike), and every byte that is not valid UTF-8, every
 * C0 control but the tab, DEL and every C1 control as U+FFFD. */
static void put_text_n(FILE *f, const char *text, size_t n) {
  const unsigned char *s = (const unsigned char *)text, *end = s + n;
  while (s < end) {
    unsigned long cp = 0;
    int len = scalene__utf8_seq(s, &cp);
    if (len > 0 && s + len > end) len = 0;
    if (len == 1) {
      switch (cp) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      case '\'': fputs("&#39;", f); break;
      default:
        if ((cp < 0x20 && cp != '\t') || cp == 0x7f)
          fputs("\xef\xbf\xbd", f);
        else
          fputc((int)cp, f);
      }
      s++;
    } else if (len == 0 || (cp >= 0x80 && cp <= 0x9f)) {
      fputs("\xef\xbf\xbd", f);
      s += len > 0 ? len : 1;
    } else {
      fwrite(s, 1, (size_t)len, f);
      s += len;
    }
  }
}

static void put_text(FILE *f, const char *s) { put_text_n(f, s ? s : "", s ? strlen(s) : 0); }

/* A source line without its terminator. */
static void put_line(FILE *f, const char *s) {
  size_t n = s ? strlen(s) : 0;
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
  put_text_n(f, s ? s : "", n);
}

/* ------------------------------------------------------------ numbers
 * The same forms as the terminal view's. */




/* 100 * part / total within [0, 100]; 0 when total is not positive. */
static double percent(double part, double total) {
  if (!(total > 0) || !(part > 0)) return 0.0;
  double pct = 100.0 * part / total;
  return pct > 100.0 ? 100.0 : pct;
}


/* A number cell: data-v holds the value the table sorts by; the text is
 * what is shown (&lt;1% for "<1%"). */
static void td_num(FILE *f, double v, const char *shown) {
  fprintf(f, "<td class=\"n\" data-v=\"%.6g\">", isfinite(v) ? v : 0.0);
  put_text(f, shown);
  fputs("</td>", f);
}

/* ------------------------------------------------------------ pictures */

/* A bar of up to three segments, each as wide as its share of the whole
 * (a percentage of the bar's width); the segments together are clamped to
 * 100 %.  data-v is their sum. */
static void td_bar(FILE *f, const char *const classes[], const char *const names[],
                   const double pct[], int n) {
  double sum = 0;
  for (int k = 0; k < n; k++) sum += pct[k];
  fprintf(f, "<td class=\"b\" data-v=\"%.6g\"><div class=\"bar\"", sum);
  if (sum > 0) {
    fputs(" title=\"", f);
    for (int k = 0, first = 1; k < n; k++) {
      if (!(pct[k] > 0)) continue;
      fprintf(f, "%s%s %.1f%%", first ? "" : ", ", names[k], pct[k]);
      first = 0;
    }
    fputc('"', f);
  }
  fputc('>', f);
  double left = 100.0;
  for (int k = 0; k < n; k++) {
    double w = pct[k] < left ? pct[k] : left;
    if (!(w > 0)) continue;
    fprintf(f, "<span class=\"%s\" style=\"width:%.2f%%\"></span>", classes[k], w);
    left -= w;
  }
  fputs("</div></td>", f);
}

/* A [seconds, MB] timeline as an inline SVG polyline, w x h pixels, time
 * across and 0..max(MB) up; nothing when it has no positive value.  A
 * timeline with one point in time is a flat line at its largest value. */
static void spark_svg(FILE *f, const char *cls, size_t n, const double (*pts)[2], int w,
                      int h) {
  double t0 = INFINITY, t1 = -INFINITY, vmax = 0;
  size_t finite = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(pts[i][0]) || !isfinite(pts[i][1])) continue;
    finite++;
    if (pts[i][0] < t0) t0 = pts[i][0];
    if (pts[i][0] > t1) t1 = pts[i][0];
    if (pts[i][1] > vmax) vmax = pts[i][1];
  }
  if (finite == 0 || !(vmax > 0)) return;
  double ymax = h - 1.0, yspan = h - 2.0; /* a 1-pixel margin for the stroke */
  fprintf(f,
          "<svg class=\"spark%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
          "preserveAspectRatio=\"none\" role=\"img\" aria-label=\"up to %.2f MB\">"
          "<title>up to %.2f MB</title><polyline points=\"",
          cls, w, h, w, h, vmax, vmax);
  if (!(t1 > t0)) {
    double y = ymax - yspan;
    fprintf(f, "0,%.1f %d,%.1f", y, w, y);
  } else {
    int first = 1;
    for (size_t i = 0; i < n; i++) {
      if (!isfinite(pts[i][0]) || !isfinite(pts[i][1])) continue;
      double x = (pts[i][0] - t0) / (t1 - t0) * w;
      double v = pts[i][1] > 0 ? pts[i][1] : 0;
      fprintf(f, "%s%.1f,%.1f", first ? "" : " ", x, ymax - v / vmax * yspan);
      first = 0;
    }
  }
  fputs("\"/></svg>", f);
}

/* ------------------------------------------------------------ tables */

static const char *const CPU_CLASSES[] = {"py", "na", "sy"};
static const char *const CPU_NAMES[] = {"Python", "native", "system"};
static const char *const MEM_CLASSES[] = {"mp", "mn"};
static const char *const MEM_NAMES[] = {"Python", "native"};

typedef struct column {
  const char *name, *title;
} column_t;

static const column_t CPU_COLUMNS[] = {
    {"Python", "share of all CPU time: the interpreter running this line"},
    {"native", "share of all CPU time: native code (C, extensions) called here"},
    {"system", "share of all CPU time: in the kernel or waiting off the CPU"},
    {"CPU", "Python, native and system time as a bar"},
};

static const column_t MEMORY_COLUMNS[] = {
    {"Mem&nbsp;Python", "share of the bytes allocated here that Python&#39;s allocator allocated"},
    {"avg&nbsp;MB", "time-average of the MB allocated here and live"},
    {"peak&nbsp;MB", "most MB allocated here and live at one time"},
    {"net&nbsp;MB", "MB allocated here and still live at the end"},
    {"alloc&nbsp;MB", "all MB allocated here over the run"},
    {"Memory", "share of all bytes allocated in the run (Python, native)"},
    {"timeline", "MB allocated here and live, over time"},
    {"copy&nbsp;MB/s", "MB copied here per second of the run"},
};

static void th_cols(FILE *f, const column_t *c, size_t n) {
  for (size_t i = 0; i < n; i++)
    fprintf(f, "<th scope=\"col\" title=\"%s\">%s</th>", c[i].title, c[i].name);
}

/* The heading row of a line or function table; `what` names the last
 * column ("Source" or "Function"). */
static void table_head(const page_t *pg, const char *what) {
  FILE *f = pg->f;
  fputs("<table class=\"prof sortable\"><thead><tr>"
        "<th scope=\"col\" data-first=\"asc\" title=\"line number\">Line</th>",
        f);
  th_cols(f, CPU_COLUMNS, sizeof CPU_COLUMNS / sizeof CPU_COLUMNS[0]);
  if (pg->memory) th_cols(f, MEMORY_COLUMNS, sizeof MEMORY_COLUMNS / sizeof MEMORY_COLUMNS[0]);
  fprintf(f, "<th scope=\"col\" data-first=\"asc\" class=\"t\">%s</th></tr></thead>\n<tbody>\n",
          what);
}

static void table_end(FILE *f) { fputs("</tbody></table>\n", f); }

/* One row of a line table (id set: the row's anchor) or of a function
 * table.  r NULL: a line without data. */
static void table_row(const page_t *pg, const char *id, uint32_t lineno,
                      const scalene_line_stats_t *r, const char *text, const char *link) {
  FILE *f = pg->f;
  double pct[3] = {0, 0, 0};
  char cell[32];
  if (r != NULL)
    for (int k = 0; k < 3; k++) pct[k] = percent(r->cpu_sec[k], pg->total);
  double cpu = pct[0] + pct[1] + pct[2];
  int hot = cpu >= HOT_PERCENT || (pg->memory && r != NULL &&
                                   percent(r->alloc_bytes, pg->alloc_bytes) >= HOT_PERCENT);
  fputs("<tr", f);
  if (id != NULL) fprintf(f, " id=\"%s\"", id);
  if (hot) fputs(" class=\"hot\"", f);
  fprintf(f, "><td class=\"n\" data-v=\"%u\">", lineno);
  if (link != NULL)
    fprintf(f, "<a href=\"#%s\">%u</a>", link, lineno);
  else
    fprintf(f, "%u", lineno);
  fputs("</td>", f);
  for (int k = 0; k < 3; k++) {
    scalene__fmt_pct(pct[k], cell, sizeof cell);
    td_num(f, pct[k], cell);
  }
  td_bar(f, CPU_CLASSES, CPU_NAMES, pct, 3);
  if (pg->memory) {
    scalene__line_memory_t m;
    memset(&m, 0, sizeof m);
    double alloc = 0, python = 0, peak = 0, copy_rate = 0, pyshare = 0;
    if (r != NULL) {
      scalene__line_memory(r, &m);
      alloc = r->alloc_bytes;
      python = r->python_bytes;
      peak = r->peak_bytes;
      if (pg->elapsed > 0) copy_rate = r->copy_bytes / MB / pg->elapsed;
      pyshare = percent(python, alloc);
    }
    if (alloc > 0 && python == 0)
      snprintf(cell, sizeof cell, "%s", "0%");
    else
      scalene__fmt_pct(pyshare, cell, sizeof cell);
    td_num(f, pyshare, cell);
    scalene__fmt_mb(m.avg_bytes / MB, cell, sizeof cell);
    td_num(f, m.avg_bytes / MB, cell);
    scalene__fmt_mb(peak / MB, cell, sizeof cell);
    td_num(f, peak / MB, cell);
    scalene__fmt_mb(m.live_bytes / MB, cell, sizeof cell);
    td_num(f, m.live_bytes / MB, cell);
    scalene__fmt_mb(alloc / MB, cell, sizeof cell);
    td_num(f, alloc / MB, cell);
    double mpct[2] = {percent(python, pg->alloc_bytes),
                      percent(alloc > python ? alloc - python : 0, pg->alloc_bytes)};
    td_bar(f, MEM_CLASSES, MEM_NAMES, mpct, 2);
    fprintf(f, "<td class=\"s\" data-v=\"%.6g\">", peak / MB);
    if (r != NULL) spark_svg(f, "", r->n_memory_samples, r->memory_samples, SPARK_W, SPARK_H);
    fputs("</td>", f);
    scalene__fmt_mb(copy_rate, cell, sizeof cell);
    td_num(f, copy_rate, cell);
  }
  fputs("<td class=\"t\">", f);
  put_line(f, text);
  fputs("</td></tr>\n", f);
}


typedef struct leak {
  uint32_t line;
  double likelihood, velocity;
  const char *source; /* the record's text, when the profile has it */
} leak_t;

static int cmp_leak(const void *a, const void *b) {
  const leak_t *x = a, *y = b;
  if (x->likelihood != y->likelihood) return x->likelihood < y->likelihood ? 1 : -1;
  return (x->line > y->line) - (x->line < y->line);
}

/* The likely leaks of file fi, most likely first (the rule and threshold
 * of the JSON's "leaks" and the terminal view).  src gives their text. */
static int file_leaks(const page_t *pg, const scalene_profile_t *p, size_t fi, size_t shown,
                      const scalene__source_t *src) {
  FILE *f = pg->f;
  const scalene_file_stats_t *fs = scalene_profile_file(p, fi);
  leak_t *l = calloc(fs->n_lines ? fs->n_lines : 1, sizeof *l);
  if (l == NULL) return SCALENE_ENOMEM;
  size_t n = 0;
  const scalene_line_stats_t *r;
  for (size_t i = 0; (r = scalene_profile_file_line(p, fi, i)) != NULL; i++)
    if (scalene__leak(r, pg->elapsed, &l[n].likelihood, &l[n].velocity) &&
        (r->alloc_samples >= pg->opts->malloc_threshold || r->alloc_bytes >= MB))
      l[n].source = r->source, l[n++].line = r->line;
  if (n > 0) {
    qsort(l, n, sizeof *l, cmp_leak);
    fputs("<h3>Likely memory leaks</h3>\n"
          "<table class=\"leaks sortable\"><thead><tr>"
          "<th scope=\"col\" data-first=\"asc\">Line</th>"
          "<th scope=\"col\" title=\"estimated likelihood that the line leaks\">likelihood</th>"
          "<th scope=\"col\" title=\"MB per second of the run left live\">velocity&nbsp;MB/s</th>"
          "<th scope=\"col\" data-first=\"asc\" class=\"t\">Source</th></tr></thead>\n<tbody>\n",
          f);
    for (size_t i = 0; i < n; i++) {
      char cell[32];
      fprintf(f, "<tr><td class=\"n\" data-v=\"%u\"><a href=\"#f%zu-l%u\">%u</a></td>", l[i].line,
              shown, l[i].line, l[i].line);
      snprintf(cell, sizeof cell, "%.0f%%", 100.0 * l[i].likelihood);
      td_num(f, 100.0 * l[i].likelihood, cell);
      snprintf(cell, sizeof cell, "%.2f", l[i].velocity);
      td_num(f, l[i].velocity, cell);
      fputs("<td class=\"t\">", f);
      if (l[i].line >= 1 && l[i].line <= src->n)
        put_line(f, src->lines[l[i].line - 1]);
      else
        put_line(f, l[i].source);
      fputs("</td></tr>\n", f);
    }
    table_end(f);
  }
  free(l);
  return 0;
}

/* File fi's section; shown is its place on the page (1-based), which
 * names its anchors. */
static int file_section(const page_t *pg, const scalene_profile_t *p, size_t fi, size_t shown) {
  FILE *f = pg->f;
  const scalene_file_stats_t *fs = scalene_profile_file(p, fi);
  double fsec = scalene__sum3(fs->cpu_sec);
  fprintf(f, "<section class=\"file\" id=\"f%zu\">\n<h2>", shown);
  put_text(f, fs->name);
  fprintf(f, "</h2>\n<p class=\"share\">%.2f%% of the CPU time", percent(fsec, pg->total));
  if (!pg->no_seconds) {
    char spent[48], of[48];
    scalene__fmt_time(fsec, spent, sizeof spent);
    scalene__fmt_time(pg->total, of, sizeof of);
    fprintf(f, " (%s out of %s)", spent, of);
  }
  if (pg->memory && fs->alloc_bytes > 0)
    fprintf(f, "; %.2f MB allocated (%.2f%% of all)", fs->alloc_bytes / MB,
            percent(fs->alloc_bytes, pg->alloc_bytes));
  fputs(".</p>\n", f);

  table_head(pg, "Source");
  /* Source lines merged with the records, the walk of output_text.c's
   * file_table (and output_json.c's file_lines). */
  scalene__source_t src;
  int rc = scalene__file_source(p, fi, fs->name, &src);
  if (rc != 0) return rc;
  scalene__line_walk_t walk;
  scalene__line_walk_init(&walk, p, fi, &src);
  const scalene_line_stats_t *show;
  const char *text;
  uint32_t n;
  while (scalene__line_walk_next(&walk, &n, &text, &show)) {
    if (pg->opts->reduced && !scalene__line_has_data(show)) continue;
    char id[48];
    snprintf(id, sizeof id, "f%zu-l%u", shown, n);
    table_row(pg, id, n, show, text, NULL);
  }
  table_end(f);

  /* The function summary: functions at or above the threshold, or that
   * allocated at least 1 MB (as in the terminal view). */
  const scalene_line_stats_t *fn;
  int header = 0;
  for (size_t j = 0; (fn = scalene_profile_file_function(p, fi, j)) != NULL; j++) {
    double fn_pct = pg->total > 0 ? 100.0 * scalene__sum3(fn->cpu_sec) / pg->total : 0.0;
    int cpu_shown = pg->total > 0 && fn_pct >= pg->opts->cpu_percent_threshold;
    int mem_shown = pg->memory && fn->alloc_bytes >= MB;
    if (!cpu_shown && !mem_shown) continue;
    if (!header) {
      fputs("<h3>Functions</h3>\n", f);
      table_head(pg, "Function");
      header = 1;
    }
    char link[48];
    snprintf(link, sizeof link, "f%zu-l%u", shown, fn->line);
    table_row(pg, NULL, fn->line, fn, fn->function, link);
  }
  if (header) table_end(f);
  if (pg->memory && pg->opts->leaks) rc = file_leaks(pg, p, fi, shown, &src);
  scalene__source_free(&src);
  fputs("</section>\n", f);
  return rc;
}

/* ------------------------------------------------------------ the page */

static const char STYLE[] =
    "body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
    "margin:1.5em 2em;color:#1d1d1f;background:#fff}\n"
    "h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .2em;"
    "word-break:break-all}h3{font-size:1em;margin:1.2em 0 .3em}\n"
    "code,td.t{font-family:ui-monospace,\"SFMono-Regular\",Menlo,Consolas,monospace}\n"
    "table.summary th{text-align:left;font-weight:600;padding:1px 1.5em 1px 0}\n"
    "table.summary td{padding:1px 0}\n"
    "nav ol{padding-left:1.5em;margin:.3em 0}nav a,td a{color:#0b57d0;text-decoration:none}\n"
    "p.share{margin:0 0 .6em;color:#444}\n"
    "table.prof,table.leaks,table.procs{border-collapse:collapse;font-size:13px}\n"
    "table.prof{width:100%}\n"
    "th{background:#f2f2f4;border-bottom:1px solid #c8c8cc;padding:3px 6px;"
    "text-align:right;white-space:nowrap;position:sticky;top:0;z-index:1}\n"
    "table.sortable th{cursor:pointer;user-select:none}\n"
    "th[aria-sort=ascending]::after{content:\" \\25B2\"}"
    "th[aria-sort=descending]::after{content:\" \\25BC\"}\n"
    "td{padding:0 6px;border-bottom:1px solid #ececef;vertical-align:middle}\n"
    "td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums;color:#333}\n"
    "th.t,td.t{text-align:left}td.t{white-space:pre;tab-size:8;width:100%}\n"
    "tr.hot td{background:#fde8e6}tr.hot td.n{color:#b3261e;font-weight:600}\n"
    "tbody tr:hover td{background:#eef3fd}\n"
    "div.bar{display:flex;width:100px;height:10px;background:#ececef;border-radius:2px;"
    "overflow:hidden}div.bar span{display:block;height:100%}\n"
    ".py{background:#1a5fb4}.na{background:#62a0ea}.sy{background:#e5a50a}"
    ".mp{background:#813d9c}.mn{background:#dc8add}\n"
    "span.key{display:inline-block;width:.9em;height:.9em;vertical-align:-1px;"
    "margin:0 .3em 0 1em;border-radius:2px}\n"
    "svg.spark{display:block}svg.spark polyline{fill:none;stroke:#813d9c;"
    "stroke-width:1.5;vector-effect:non-scaling-stroke}\n"
    "svg.footprint polyline{stroke:#1a5fb4}\n"
    "p.legend,footer{color:#555;font-size:12px}\n";

/* Sorts a table by the column whose heading is clicked (or given Enter):
 * numbers by data-v, text by its content; the first click sorts numbers
 * largest first and data-first="asc" columns smallest first, the next one
 * the other way.  Ties keep the order of the page. */
static const char SCRIPT[] =
    "(function () {\n"
    "  \"use strict\";\n"
    "  function key(row, i) {\n"
    "    var c = row.cells[i];\n"
    "    if (!c) return \"\";\n"
    "    var v = c.getAttribute(\"data-v\");\n"
    "    return v === null ? c.textContent : parseFloat(v);\n"
    "  }\n"
    "  var tables = document.querySelectorAll(\"table.sortable\");\n"
    "  Array.prototype.forEach.call(tables, function (table) {\n"
    "    var body = table.tBodies[0];\n"
    "    Array.prototype.forEach.call(body.rows, function (row, n) { row.dataset.i = n; });\n"
    "    var heads = table.tHead.rows[0].cells;\n"
    "    Array.prototype.forEach.call(heads, function (th, i) {\n"
    "      function sort() {\n"
    "        var was = th.getAttribute(\"aria-sort\");\n"
    "        var dir = was === \"descending\" ? 1 : was === \"ascending\" ? -1 :\n"
    "            th.getAttribute(\"data-first\") === \"asc\" ? 1 : -1;\n"
    "        Array.prototype.forEach.call(heads, function (h) {\n"
    "          h.removeAttribute(\"aria-sort\");\n"
    "        });\n"
    "        th.setAttribute(\"aria-sort\", dir > 0 ? \"ascending\" : \"descending\");\n"
    "        var rows = Array.prototype.map.call(body.rows, function (row) {\n"
    "          return [key(row, i), Number(row.dataset.i), row];\n"
    "        });\n"
    "        rows.sort(function (a, b) {\n"
    "          if (a[0] < b[0]) return -dir;\n"
    "          if (a[0] > b[0]) return dir;\n"
    "          return a[1] - b[1];\n"
    "        });\n"
    "        rows.forEach(function (r) { body.appendChild(r[2]); });\n"
    "      }\n"
    "      th.tabIndex = 0;\n"
    "      th.addEventListener(\"click\", sort);\n"
    "      th.addEventListener(\"keydown\", function (e) {\n"
    "        if (e.key === \"Enter\" || e.key === \" \") { e.preventDefault(); sort(); }\n"
    "      });\n"
    "    });\n"
    "  });\n"
    "})();\n";



/* The header: program, command line, times, memory, child processes. */
static void page_summary(const page_t *pg, const scalene_profile_t *p,
                         const scalene_profile_info_t *info) {
  FILE *f = pg->f;
  char t[48];
  fputs("<header>\n<h1>Scalene profile</h1>\n<table class=\"summary\"><tbody>\n", f);
  fputs("<tr><th scope=\"row\">Program</th><td><code>", f);
  put_text(f, info->program[0] != '\0' ? info->program : "(unknown)");
  fputs("</code></td></tr>\n", f);
  if (info->n_args > 0) {
    fputs("<tr><th scope=\"row\">Command line</th><td><code>", f);
    for (int i = 0; i < info->n_args; i++) {
      if (i > 0) fputc(' ', f);
      put_text(f, info->args[i]);
    }
    fputs("</code></td></tr>\n", f);
  }
  if (!pg->no_seconds) {
    if (info->elapsed_sec > 0) {
      scalene__fmt_time(info->elapsed_sec, t, sizeof t);
      fprintf(f, "<tr><th scope=\"row\">Elapsed time</th><td>%s</td></tr>\n", t);
    }
    scalene__fmt_time(pg->total, t, sizeof t);
    fprintf(f, "<tr><th scope=\"row\">CPU time sampled</th><td>%s", t);
  } else {
    fputs("<tr><th scope=\"row\">CPU time sampled</th>"
          "<td>shares only (the profile has no seconds)",
          f);
  }
  fprintf(f, " in %llu samples", (unsigned long long)info->cpu_samples);
  if (pg->total > 0 && info->unattributed_cpu_sec > 0)
    fprintf(f, "; %.2f%% at no line of a profiled file",
            percent(info->unattributed_cpu_sec, pg->total));
  fputs("</td></tr>\n", f);
  if (pg->memory) {
    scalene__profile_memory_t pm;
    scalene__profile_memory(p, &pm);
    fprintf(f, "<tr><th scope=\"row\">Max footprint</th><td>%.2f MB", pm.max_footprint_bytes / MB);
    if (pm.max_footprint_file != NULL) {
      fputs(" at <code>", f);
      put_text(f, pm.max_footprint_file);
      fprintf(f, ":%u</code>", pm.max_footprint_line);
    }
    fputs("</td></tr>\n", f);
    fprintf(f,
            "<tr><th scope=\"row\">Allocated</th><td>%.2f MB, %.2f MB of it live at the end "
            "(growth rate %.0f%%)</td></tr>\n",
            pm.alloc_bytes / MB, pm.live_bytes / MB, percent(pm.live_bytes, pm.alloc_bytes));
    if (pm.n_samples > 0) {
      fputs("<tr><th scope=\"row\">Memory over time</th><td>", f);
      spark_svg(f, " footprint", pm.n_samples, pm.samples, 400, 40);
      fputs("</td></tr>\n", f);
    }
  }
  fputs("</tbody></table>\n", f);

  size_t np = scalene_profile_process_count(p);
  if (np > 0) {
    fputs("<h3>Processes</h3>\n<table class=\"procs sortable\"><thead><tr>"
          "<th scope=\"col\">pid</th>"
          "<th scope=\"col\" data-first=\"asc\" class=\"t\">program</th>"
          "<th scope=\"col\">elapsed&nbsp;s</th><th scope=\"col\">CPU&nbsp;s</th>"
          "<th scope=\"col\">samples</th><th scope=\"col\">alloc&nbsp;MB</th>"
          "<th scope=\"col\">footprint&nbsp;MB</th></tr></thead>\n<tbody>\n",
          f);
    for (size_t i = 0; i < np; i++) {
      scalene_process_stats_t ps;
      if (scalene_profile_process(p, i, &ps) != 0) continue;
      char cell[32];
      snprintf(cell, sizeof cell, "%ld", ps.pid);
      fputs("<tr>", f);
      td_num(f, (double)ps.pid, cell);
      fputs("<td class=\"t\">", f);
      put_text(f, ps.program);
      fputs("</td>", f);
      snprintf(cell, sizeof cell, "%.3f", ps.elapsed_sec);
      td_num(f, ps.elapsed_sec, cell);
      snprintf(cell, sizeof cell, "%.3f", ps.total_cpu_sec);
      td_num(f, ps.total_cpu_sec, cell);
      snprintf(cell, sizeof cell, "%llu", (unsigned long long)ps.cpu_samples);
      td_num(f, (double)ps.cpu_samples, cell);
      snprintf(cell, sizeof cell, "%.2f", ps.alloc_bytes / MB);
      td_num(f, ps.alloc_bytes / MB, cell);
      snprintf(cell, sizeof cell, "%.2f", ps.max_footprint_bytes / MB);
      td_num(f, ps.max_footprint_bytes / MB, cell);
      fputs("</tr>\n", f);
    }
    table_end(f);
  }
  fputs("</header>\n", f);
}

/* The whole page into f; the caller holds the profile's lock. */
static int render(const scalene_profile_t *p, FILE *f, const scalene_output_options_t *opts) {
  scalene_profile_info_t info;
  info.size = sizeof info;
  scalene_profile_get_info(p, &info);
  page_t pg = {f,
               opts,
               info.total_cpu_sec,
               info.elapsed_sec,
               info.alloc_bytes,
               0,
               scalene__profile_seconds_unknown(p)};
  pg.memory = scalene__view_memory(p, &info);
  size_t shown;
  share_t *shares = scalene__view_files(p, &info, pg.memory, opts, &shown);
  if (shares == NULL) return SCALENE_ENOMEM;

  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        f);
  fprintf(f, "<meta name=\"generator\" content=\"libscaleneprof %s\">\n<title>Scalene: ",
          scalene_version());
  put_text(f, info.program[0] != '\0' ? info.program : "profile");
  fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", STYLE);
  page_summary(&pg, p, &info);

  int rc = 0;
  if (!(pg.total > 0) && shown == 0) {
    fputs("<p class=\"empty\">The profile is empty: no CPU time was sampled (the program may "
          "not have run long enough to be profiled).</p>\n",
          f);
  } else if (shown == 0) {
    fprintf(f, "<p class=\"empty\">No profiled file reached %.4g%% of the CPU time sampled.</p>\n",
            opts->cpu_percent_threshold);
  } else {
    fputs("<nav>\n<h3>Files</h3>\n<ol>\n", f);
    for (size_t i = 0; i < shown; i++) {
      const scalene_file_stats_t *fs = scalene_profile_file(p, shares[i].index);
      fprintf(f, "<li><a href=\"#f%zu\">", i + 1);
      put_text(f, fs->name);
      fprintf(f, "</a> %.2f%%</li>\n", percent(scalene__sum3(fs->cpu_sec), pg.total));
    }
    fputs("</ol>\n</nav>\n", f);
    fputs("<p class=\"legend\">CPU:<span class=\"key py\"></span>Python"
          "<span class=\"key na\"></span>native<span class=\"key sy\"></span>system",
          f);
    if (pg.memory)
      fputs(" &#8195; Memory:<span class=\"key mp\"></span>Python"
            "<span class=\"key mn\"></span>native",
            f);
    fputs(" &#8195; Percentages are of all CPU time sampled. Click a column heading to "
          "sort.</p>\n",
          f);
    for (size_t i = 0; rc == 0 && i < shown; i++) rc = file_section(&pg, p, shares[i].index, i + 1);
  }
  fprintf(f, "<footer><p>Made by libscaleneprof %s.</p></footer>\n<script>\n%s</script>\n"
             "</body>\n</html>\n",
          scalene_version(), SCRIPT);
  free(shares);
  return rc;
}

int scalene_output_write_html(const scalene_profile_t *p, const char *path,
                              const scalene_output_options_t *opts, scalene_error_t *err) {
  if (p == NULL || path == NULL || path[0] == '\0') {
    scalene__error_set(err, path, 0, 0, -1, "no profile or no output path");
    return SCALENE_EINVAL;
  }
  scalene_output_options_t defaults;
  opts = scalene__output_options(opts, &defaults);

  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL) {
    scalene__error_set(err, path, 0, 0, -1, "out of memory while rendering the profile");
    return SCALENE_ENOMEM;
  }
  scalene__profile_lock(p);
  int rc = render(p, f, opts);
  scalene__profile_unlock(p);
  /* A memory stream fails only for want of memory. */
  if (ferror(f) && rc == 0) rc = SCALENE_ENOMEM;
  if (fclose(f) != 0 && rc == 0) rc = SCALENE_ENOMEM;
  if (rc != 0) {
    free(buf);
    scalene__error_set(err, path, 0, 0, -1, "out of memory while rendering the profile");
    return rc;
  }
  rc = scalene__write_file_atomic(path, buf, len, err);
  free(buf);
  return rc;
}
