/* libscaleneprof: output.h -- JSON, written and read.
 *
 * The members and their meanings are Scalene's (1.5.16 and 2.x, see
 * docs/json-format.md); ours are additive.  Writing builds a json-c tree
 * while holding the profile's lock, then serialises it outside the lock and
 * replaces the target atomically.  Reading accepts our files and Scalene's,
 * converting Scalene's percentages back to seconds. */
#include "internal.h" /* first: config.h sets _GNU_SOURCE */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>


void scalene_output_options_init(scalene_output_options_t *opts) {
  if (opts == NULL) return;
  memset(opts, 0, sizeof *opts);
  opts->size = sizeof *opts;
  opts->reduced = 0;
  opts->cpu_percent_threshold = 1.0;
  opts->color = 0;
  opts->width = 132;
  opts->memory = 0;
  opts->leaks = 1;
  opts->malloc_threshold = 0;
}

const scalene_output_options_t *scalene__output_options(const scalene_output_options_t *opts,
                                                        scalene_output_options_t *buf) {
  scalene_output_options_init(buf);
  if (opts == NULL) return buf;
  /* A caller built against an older, shorter struct: its fields, then our
   * defaults for the rest. */
  if (opts->size >= sizeof *buf) return opts;
  if (opts->size > sizeof buf->size) memcpy(buf, opts, opts->size);
  buf->size = sizeof *buf;
  return buf;
}

/* ------------------------------------------------------------ building values */

/* A float the way Python's repr writes it: the shortest of %.15g, %.16g and
 * %.17g that reads back as the same double, with ".0" added to integral
 * values, so that 0.0 stays a float for Scalene's readers.  Non-finite
 * values (which JSON cannot hold) become 0.0. */
static json_object *jdouble(double d) {
  char buf[40];
  if (!isfinite(d)) d = 0.0;
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf - 2, "%.*g", prec, d);
    if (strtod(buf, NULL) == d) break;
  }
  if (strpbrk(buf, ".eEn") == NULL) strcat(buf, ".0");
  return json_object_new_double_s(d, buf);
}

/* Replaces every byte that is not part of valid UTF-8 with U+FFFD, so that
 * a source file in another encoding still gives a readable JSON file.
 * Returns a malloc'ed copy, or NULL when out of memory. */
static char *utf8_clean(const char *s, size_t n) {
  char *out = malloc(3 * n + 1);
  if (out == NULL) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    int ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; k++)
      if (((unsigned char)s[i + k] & 0xc0) != 0x80) ok = 0;
    if (ok && len == 2 && c < 0xc2) ok = 0; /* overlong */
    if (ok && c == 0) ok = 0;              /* NUL would cut the string */
    if (ok) {
      memcpy(out + o, s + i, len);
      o += len;
      i += len;
    } else {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    }
  }
  out[o] = '\0';
  return out;
}

/* Members added in sorted order, so that the file reads like Scalene's
 * (json.dumps(sort_keys=True)). */
typedef struct member {
  const char *key;
  json_object *value;
} member_t;

static int cmp_member(const void *a, const void *b) {
  return strcmp(((const member_t *)a)->key, ((const member_t *)b)->key);
}

static json_object *object_sorted(member_t *m, size_t n) {
  json_object *o = json_object_new_object();
  qsort(m, n, sizeof *m, cmp_member);
  for (size_t i = 0; i < n; i++) {
    if (o != NULL)
      json_object_object_add(o, m[i].key, m[i].value);
    else
      json_object_put(m[i].value);
  }
  return o;
}

#define MB 1048576.0

/* 100 * part / total clamped to [0, 100]: rounding makes 100 * x / x
 * 100.00000000000001 for some x (0.007), which a reader of a percentage
 * need not expect.  0 when total is not positive. */
static double percent(double part, double total) {
  if (!(total > 0)) return 0.0;
  double pct = 100.0 * part / total;
  return pct > 100.0 ? 100.0 : pct > 0 ? pct : 0.0;
}

/* What every entry needs from the whole profile. */
typedef struct ctx {
  double total;       /* all CPU seconds */
  double alloc_bytes; /* all bytes allocated */
  double elapsed;     /* wall seconds */
  int reduced;
  int no_seconds;     /* the profile's seconds are units of shares */
} ctx_t;

/* A timeline as Scalene writes it: [[t_ns, MB], ...], t in integer
 * nanoseconds since the start (stats.c keeps times to the nanosecond). */
static json_object *timeline_json(size_t n, const double (*pts)[2]) {
  json_object *a = json_object_new_array();
  for (size_t i = 0; a != NULL && i < n; i++) {
    json_object *pt = json_object_new_array();
    if (pt == NULL) break;
    json_object_array_add(pt, json_object_new_int64(pts[i][0] < 9e9 ? (int64_t)(pts[i][0] * 1e9 + 0.5) : INT64_MAX));
    json_object_array_add(pt, jdouble(pts[i][1]));
    json_object_array_add(a, pt);
  }
  return a;
}

/* One line (or function) entry.  text is the line's source, or the
 * function's qualified name; r is the record, or NULL for a line without
 * one (all zeros). */
static json_object *line_entry(const char *text, uint32_t lineno, const scalene_line_stats_t *r,
                               const ctx_t *c) {
  static const double zero[3] = {0, 0, 0};
  const double *sec = r ? r->cpu_sec : zero;
  uint64_t samples = r ? r->cpu_samples : 0;
  double pct[3];
  for (int k = 0; k < 3; k++) pct[k] = percent(sec[k], c->total);
  scalene__line_memory_t lm;
  memset(&lm, 0, sizeof lm);
  if (r != NULL) scalene__line_memory(r, &lm);
  double alloc = r ? r->alloc_bytes : 0, python = r ? r->python_bytes : 0;
  double copy = r ? r->copy_bytes : 0;
  char *clean = utf8_clean(text, strlen(text));
  member_t m[] = {
      {"line", clean ? json_object_new_string(clean) : NULL},
      {"lineno", json_object_new_int64(lineno)},
      {"n_cpu_percent_python", jdouble(pct[SCALENE_CPU_PYTHON])},
      {"n_cpu_percent_c", jdouble(pct[SCALENE_CPU_NATIVE])},
      {"n_sys_percent", jdouble(pct[SCALENE_CPU_SYSTEM])},
      {"n_gpu_percent", jdouble(0.0)},
      {"n_gpu_avg_memory_mb", jdouble(0.0)},
      {"n_gpu_peak_memory_mb", jdouble(0.0)},
      {"n_malloc_mb", jdouble(alloc / MB)},
      {"n_mallocs", json_object_new_int64(r ? (int64_t)r->alloc_samples : 0)},
      {"n_avg_mb", jdouble(lm.avg_bytes / MB)},
      {"n_peak_mb", jdouble(r ? r->peak_bytes / MB : 0.0)},
      {"n_growth_mb", jdouble(lm.live_bytes / MB)},
      {"n_usage_fraction", jdouble(c->alloc_bytes > 0 ? alloc / c->alloc_bytes : 0.0)},
      {"n_python_fraction", jdouble(alloc > 0 ? python / alloc : 0.0)},
      {"n_copy_mb_s", jdouble(c->elapsed > 0 ? copy / MB / c->elapsed : 0.0)},
      {"memory_samples", r ? timeline_json(r->n_memory_samples, r->memory_samples)
                           : json_object_new_array()},
      /* ours */
      {"cpu_samples", json_object_new_int64((int64_t)samples)},
      {"n_cpu_sec_python", jdouble(sec[SCALENE_CPU_PYTHON])},
      {"n_cpu_sec_c", jdouble(sec[SCALENE_CPU_NATIVE])},
      {"n_sys_sec", jdouble(sec[SCALENE_CPU_SYSTEM])},
      {"n_python_mb", jdouble(python / MB)},
      {"n_freed_mb", jdouble(r ? r->freed_bytes / MB : 0.0)},
      {"n_copy_mb", jdouble(copy / MB)},
      {"memory_span_sec", jdouble(lm.span_sec)},
      {"n_grow_events", json_object_new_int64((int64_t)lm.grow_events)},
      {"n_shrink_events", json_object_new_int64((int64_t)lm.shrink_events)},
  };
  free(clean);
  json_object *o = object_sorted(m, sizeof m / sizeof m[0]);
  if (o != NULL && c->no_seconds) {
    /* Shares only: without the seconds a reader falls back to them. */
    json_object_object_del(o, "n_cpu_sec_python");
    json_object_object_del(o, "n_cpu_sec_c");
    json_object_object_del(o, "n_sys_sec");
  }
  return o;
}

static int all_zero(const scalene_line_stats_t *r) {
  return r->cpu_samples == 0 && r->cpu_sec[0] == 0 && r->cpu_sec[1] == 0 && r->cpu_sec[2] == 0 &&
         r->alloc_bytes == 0 && r->freed_bytes == 0 && r->copy_bytes == 0 &&
         r->alloc_samples == 0;
}

void scalene__source_free(scalene__source_t *s) {
  for (size_t i = 0; i < s->n; i++) free(s->lines[i]);
  free(s->lines);
  s->lines = NULL;
  s->n = 0;
}

int scalene__source_read(const char *path, scalene__source_t *s) {
  s->lines = NULL;
  s->n = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t cap = 0;
  char *buf = NULL;
  size_t bufcap = 0;
  ssize_t len;
  int rc = 0;
  while ((len = getline(&buf, &bufcap, f)) >= 0) {
    if (s->n == cap) {
      size_t ncap = cap ? 2 * cap : 128;
      char **nl = realloc(s->lines, ncap * sizeof *nl);
      if (nl == NULL) {
        rc = SCALENE_ENOMEM;
        break;
      }
      s->lines = nl;
      cap = ncap;
    }
    char *line = utf8_clean(buf, (size_t)len);
    if (line == NULL) {
      rc = SCALENE_ENOMEM;
      break;
    }
    s->lines[s->n++] = line;
  }
  if (rc == 0 && ferror(f)) rc = -1;
  free(buf);
  fclose(f);
  if (rc != 0) scalene__source_free(s);
  return rc;
}

int scalene__file_source(const scalene_profile_t *p, size_t f, const char *name,
                         scalene__source_t *s) {
  s->lines = NULL;
  s->n = 0;
  const scalene_line_stats_t *r;
  for (size_t i = 0; (r = scalene_profile_file_line(p, f, i)) != NULL; i++)
    if (r->source != NULL) return 0; /* the profile's own text */
  return scalene__source_read(name, s) == SCALENE_ENOMEM ? SCALENE_ENOMEM : 0;
}

/* The "lines" array of file f: one entry per source line when the source
 * can be read (and the profile holds no text of its own for the file, as a
 * loaded one does: that text is what was profiled), merged with the records (which may name lines past the end
 * of a file that changed, or line 0); else one entry per record. */
static json_object *file_lines(const scalene_profile_t *p, size_t f, const char *name,
                               const ctx_t *c) {
  int reduced = c->reduced;
  json_object *arr = json_object_new_array();
  if (arr == NULL) return NULL;
  scalene__source_t src;
  if (scalene__file_source(p, f, name, &src) != 0) {
    json_object_put(arr);
    return NULL;
  }
  size_t i = 0;
  const scalene_line_stats_t *r = scalene_profile_file_line(p, f, i);
  uint32_t lineno = 1;
  for (;;) {
    json_object *e = NULL;
    if (r != NULL && (r->line < lineno || lineno > src.n)) {
      /* A record with no line in the source. */
      if (!(reduced && all_zero(r))) {
        char *text = NULL;
        if (r->line >= 1 && r->line <= src.n)
          text = strdup(src.lines[r->line - 1]);
        else if (r->source != NULL && asprintf(&text, "%s\n", r->source) < 0)
          text = NULL;
        else if (r->source == NULL)
          text = strdup("");
        if (text == NULL) goto oom;
        e = line_entry(text, r->line, r, c);
        free(text);
        if (e == NULL) goto oom;
      }
      r = scalene_profile_file_line(p, f, ++i);
    } else if (lineno <= src.n) {
      if (r != NULL && r->line == lineno) {
        if (!(reduced && all_zero(r)))
          if ((e = line_entry(src.lines[lineno - 1], lineno, r, c)) == NULL)
            goto oom;
        r = scalene_profile_file_line(p, f, ++i);
      } else if (!reduced) {
        if ((e = line_entry(src.lines[lineno - 1], lineno, NULL, c)) == NULL) goto oom;
      }
      lineno++;
    } else {
      break;
    }
    if (e != NULL) json_object_array_add(arr, e);
  }
  scalene__source_free(&src);
  return arr;
oom:
  scalene__source_free(&src);
  json_object_put(arr);
  return NULL;
}

static json_object *file_functions(const scalene_profile_t *p, size_t f, const ctx_t *c) {
  json_object *arr = json_object_new_array();
  if (arr == NULL) return NULL;
  const scalene_line_stats_t *r;
  for (size_t i = 0; (r = scalene_profile_file_function(p, f, i)) != NULL; i++) {
    if (c->reduced && all_zero(r)) continue;
    json_object *e = line_entry(r->function, r->line, r, c);
    if (e == NULL) {
      json_object_put(arr);
      return NULL;
    }
    json_object_array_add(arr, e);
  }
  return arr;
}

typedef struct leak {
  uint32_t line;
  double likelihood, velocity;
} leak_t;

static int cmp_leak(const void *a, const void *b) {
  const leak_t *x = a, *y = b;
  if (x->likelihood != y->likelihood) return x->likelihood < y->likelihood ? 1 : -1;
  return (x->line > y->line) - (x->line < y->line);
}

/* The "leaks" object of file f: {"<lineno>": {likelihood, velocity_mb_s}}
 * for the lines the leak rule reports (scalene__leak), most likely first;
 * {} when opts->leaks is 0. */
static json_object *file_leaks(const scalene_profile_t *p, size_t f,
                               const scalene_profile_info_t *info,
                               const scalene_output_options_t *opts) {
  json_object *o = json_object_new_object();
  if (o == NULL || !opts->leaks) return o;
  const scalene_file_stats_t *fs = scalene_profile_file(p, f);
  leak_t *l = calloc(fs->n_lines ? fs->n_lines : 1, sizeof *l);
  if (l == NULL) {
    json_object_put(o);
    return NULL;
  }
  size_t n = 0;
  const scalene_line_stats_t *r;
  for (size_t i = 0; (r = scalene_profile_file_line(p, f, i)) != NULL; i++)
    if (scalene__leak(r, info->elapsed_sec, &l[n].likelihood, &l[n].velocity) &&
        (r->alloc_samples >= opts->malloc_threshold || r->alloc_bytes >= MB))
      l[n++].line = r->line;
  qsort(l, n, sizeof *l, cmp_leak);
  for (size_t i = 0; i < n; i++) {
    char key[16];
    snprintf(key, sizeof key, "%u", l[i].line);
    member_t m[] = {{"likelihood", jdouble(l[i].likelihood)},
                    {"velocity_mb_s", jdouble(l[i].velocity)}};
    json_object *e = object_sorted(m, 2);
    if (e == NULL) {
      free(l);
      json_object_put(o);
      return NULL;
    }
    json_object_object_add(o, key, e);
  }
  free(l);
  return o;
}

/* The whole document; the caller holds the profile's lock. */
/* "processes": the profile's own process, then the child processes merged
 * into it (scalene_profile_merge_child); NULL (no member) without children. */
static json_object *processes_json(const scalene_profile_t *p) {
  size_t n = scalene_profile_process_count(p);
  if (n == 0) return NULL;
  json_object *arr = json_object_new_array();
  for (size_t i = 0; arr != NULL && i < n; i++) {
    scalene_process_stats_t ps;
    if (scalene_profile_process(p, i, &ps) != 0) continue;
    char *program = utf8_clean(ps.program, strlen(ps.program));
    member_t m[] = {
        {"pid", json_object_new_int64(ps.pid)},
        {"program", program ? json_object_new_string(program) : NULL},
        {"elapsed_time_sec", jdouble(ps.elapsed_sec)},
        {"total_cpu_sec", jdouble(ps.total_cpu_sec)},
        {"cpu_samples", json_object_new_int64((int64_t)ps.cpu_samples)},
        {"total_alloc_mb", jdouble(ps.alloc_bytes / MB)},
        {"max_footprint_mb", jdouble(ps.max_footprint_bytes / MB)},
    };
    free(program);
    json_object_array_add(arr, object_sorted(m, sizeof m / sizeof m[0]));
  }
  return arr;
}

/* "stacks", as Scalene 2.x writes it: [[frames...], {count, python_time,
 * c_time, cpu_samples}] per stack, frames outermost first, each keeping
 * its ';'.  python_time and c_time are the stack's Python and native
 * seconds, cpu_samples all its seconds (system included), as fractions of
 * all CPU seconds; ours add the seconds themselves (n_cpu_sec_python,
 * n_cpu_sec_c, n_sys_sec) unless the profile has none.  [] without
 * stacks. */
static json_object *stacks_json(const scalene_profile_t *p, const ctx_t *c) {
  json_object *arr = json_object_new_array();
  size_t n = scalene_profile_stack_count(p);
  for (size_t i = 0; arr != NULL && i < n; i++) {
    const char *text;
    double sec[SCALENE_CPU_KINDS];
    uint64_t samples;
    if (scalene_profile_stack(p, i, &text, sec, &samples) != 0) continue;
    char *clean = utf8_clean(text, strlen(text));
    json_object *frames = json_object_new_array();
    json_object *pair = json_object_new_array();
    if (clean == NULL || frames == NULL || pair == NULL) {
      free(clean);
      json_object_put(frames);
      json_object_put(pair);
      json_object_put(arr);
      return NULL;
    }
    for (const char *f = clean; *f != '\0';) {
      const char *semi = strchr(f, ';');
      size_t len = semi != NULL ? (size_t)(semi - f) + 1 : strlen(f);
      json_object_array_add(frames, json_object_new_string_len(f, (int)len));
      f += len;
    }
    free(clean);
    double all = sec[0] + sec[1] + sec[2];
    double t = c->total > 0 ? c->total : 0;
    member_t m[] = {
        {"count", json_object_new_int64((int64_t)samples)},
        {"python_time", jdouble(t > 0 ? sec[SCALENE_CPU_PYTHON] / t : 0.0)},
        {"c_time", jdouble(t > 0 ? sec[SCALENE_CPU_NATIVE] / t : 0.0)},
        {"cpu_samples", jdouble(t > 0 ? all / t : 0.0)},
        {"n_cpu_sec_python", c->no_seconds ? NULL : jdouble(sec[SCALENE_CPU_PYTHON])},
        {"n_cpu_sec_c", c->no_seconds ? NULL : jdouble(sec[SCALENE_CPU_NATIVE])},
        {"n_sys_sec", c->no_seconds ? NULL : jdouble(sec[SCALENE_CPU_SYSTEM])},
    };
    size_t nm = sizeof m / sizeof m[0] - (c->no_seconds ? 3 : 0);
    json_object_array_add(pair, frames);
    json_object_array_add(pair, object_sorted(m, nm));
    json_object_array_add(arr, pair);
  }
  return arr;
}

static json_object *build(const scalene_profile_t *p, const scalene_output_options_t *opts) {
  scalene_profile_info_t info;
  info.size = sizeof info;
  scalene_profile_get_info(p, &info);
  double total = info.total_cpu_sec;
  scalene__profile_memory_t pm;
  scalene__profile_memory(p, &pm);
  ctx_t c = {total, info.alloc_bytes, info.elapsed_sec, opts->reduced,
             scalene__profile_seconds_unknown(p)};

  json_object *files = json_object_new_object();
  if (files == NULL) return NULL;
  size_t nf = scalene_profile_file_count(p);
  for (size_t f = 0; f < nf; f++) {
    const scalene_file_stats_t *fs = scalene_profile_file(p, f);
    double fsec = fs->cpu_sec[0] + fs->cpu_sec[1] + fs->cpu_sec[2];
    json_object *lines = file_lines(p, f, fs->name, &c);
    json_object *funcs = file_functions(p, f, &c);
    json_object *leaks = file_leaks(p, f, &info, opts);
    member_t m[] = {
        {"functions", funcs},
        {"leaks", leaks},
        {"lines", lines},
        {"percent_cpu_time", jdouble(percent(fsec, total))},
    };
    json_object *fo = object_sorted(m, sizeof m / sizeof m[0]);
    if (lines == NULL || funcs == NULL || leaks == NULL || fo == NULL) {
      json_object_put(fo);
      json_object_put(files);
      return NULL;
    }
    char *key = utf8_clean(fs->name, strlen(fs->name));
    if (key == NULL) {
      json_object_put(fo);
      json_object_put(files);
      return NULL;
    }
    json_object_object_add(files, key, fo);
    free(key);
  }

  json_object *args = json_object_new_array();
  for (int i = 0; args != NULL && i < info.n_args; i++) {
    char *a = utf8_clean(info.args[i], strlen(info.args[i]));
    json_object_array_add(args, a ? json_object_new_string(a) : NULL);
    free(a);
  }
  char *program = utf8_clean(info.program, strlen(info.program));
  long pid = scalene__profile_pid(p);
  char *fname = pm.max_footprint_file
                    ? utf8_clean(pm.max_footprint_file, strlen(pm.max_footprint_file))
                    : NULL;
  member_t m[] = {
      {"program", program ? json_object_new_string(program) : NULL},
      {"args", args},
      {"elapsed_time_sec", jdouble(info.elapsed_sec)},
      {"start_time_absolute", jdouble(info.start_time_absolute)},
      {"alloc_samples", json_object_new_int64((int64_t)pm.alloc_samples)},
      {"growth_rate", jdouble(percent(pm.live_bytes, pm.alloc_bytes))},
      {"max_footprint_mb", jdouble(pm.max_footprint_bytes / MB)},
      {"max_footprint_fname", fname ? json_object_new_string(fname) : NULL},
      {"max_footprint_lineno",
       pm.max_footprint_file ? json_object_new_int64(pm.max_footprint_line) : NULL},
      {"max_footprint_python_fraction", jdouble(pm.max_footprint_python_fraction)},
      {"memory", json_object_new_boolean(opts->memory != 0 || pm.memory != 0)},
      {"gpu", json_object_new_boolean(0)},
      {"samples", timeline_json(pm.n_samples, pm.samples)},
      {"stacks", stacks_json(p, &c)},
      {"files", files},
      /* ours */
      {"scaleneprof_version", json_object_new_string(scalene_version())},
      {"total_cpu_sec", jdouble(info.total_cpu_sec)},
      {"unattributed_cpu_sec", jdouble(info.unattributed_cpu_sec)},
      {"cpu_samples", json_object_new_int64((int64_t)info.cpu_samples)},
      {"total_alloc_mb", jdouble(pm.alloc_bytes / MB)},
      {"final_footprint_mb", jdouble(pm.live_bytes / MB)},
      {"processes", processes_json(p)},
      {"pid", pid != 0 ? json_object_new_int64(pid) : NULL},
  };
  free(program);
  free(fname);
  json_object *root = object_sorted(m, sizeof m / sizeof m[0]);
  json_object *procs;
  if (root != NULL && json_object_object_get_ex(root, "processes", &procs) && procs == NULL)
    json_object_object_del(root, "processes"); /* no child was merged */
  if (root != NULL && json_object_object_get_ex(root, "pid", &procs) && procs == NULL)
    json_object_object_del(root, "pid"); /* unknown */
  if (root != NULL && c.no_seconds) {
    json_object_object_del(root, "total_cpu_sec");
    json_object_object_del(root, "unattributed_cpu_sec");
  }
  return root;
}

/* ------------------------------------------------------------ writing */

/* The process's umask without changing it (Linux: /proc/self/status);
 * 022 when it cannot be read. */
static mode_t current_umask(void) {
  mode_t mask = 022;
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return mask;
  char line[256];
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "Umask:", 6) == 0) {
      mask = (mode_t)strtoul(line + 6, NULL, 8);
      break;
    }
  fclose(f);
  return mask;
}

/* json-c's pretty printer writes an empty array or object as "[", a
 * newline, indentation and "]"; Python writes "[]".  Collapses those in
 * place.  Safe on the serialised text because a newline inside a JSON
 * string is always escaped.  Returns the new length. */
static size_t collapse_empty(char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    s[o++] = s[i];
    if ((s[i] == '[' || s[i] == '{') && i + 1 < n && s[i + 1] == '\n') {
      size_t j = i + 1;
      while (j < n && (s[j] == '\n' || s[j] == ' ')) j++;
      if (j < n && s[j] == (s[i] == '[' ? ']' : '}')) {
        s[o++] = s[j];
        i = j;
      }
    }
  }
  return o;
}

static int write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

/* internal.h.  A temporary next to the target (same file system, so rename
 * is atomic): a process that dies at any point leaves the old file or the
 * whole new one, never a torn one.  Nothing is fsync'ed: a profile is
 * derived data, not worth a disk flush at every write (about 1 ms each
 * here, far more on a busy disk, and once per child process and per
 * --profile-interval); after a crash of the machine itself the file may
 * hold the old profile, the new one or, on some file systems, be empty. */
int scalene__write_file_atomic(const char *path, const char *data, size_t len,
                               scalene_error_t *err) {
  char *tmp = NULL;
  if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
    scalene__error_set(err, path, 0, 0, -1, "out of memory");
    return SCALENE_ENOMEM;
  }
  int rc = 0;
  int fd = mkstemp(tmp);
  if (fd < 0) {
    scalene__error_set(err, path, 0, 0, -1, "cannot create a temporary file next to it: %s",
                       strerror(errno));
    rc = SCALENE_EIO;
  } else {
    if (fchmod(fd, 0666 & ~current_umask()) != 0 || write_all(fd, data, len) != 0) {
      scalene__error_set(err, path, 0, 0, -1, "cannot write %s: %s", tmp, strerror(errno));
      rc = SCALENE_EIO;
    }
    if (close(fd) != 0 && rc == 0) {
      scalene__error_set(err, path, 0, 0, -1, "cannot write %s: %s", tmp, strerror(errno));
      rc = SCALENE_EIO;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
      scalene__error_set(err, path, 0, 0, -1, "cannot rename %s to it: %s", tmp, strerror(errno));
      rc = SCALENE_EIO;
    }
    if (rc != 0) unlink(tmp);
  }
  free(tmp);
  return rc;
}

int scalene_output_write_json(const scalene_profile_t *p, const char *path,
                              const scalene_output_options_t *opts, scalene_error_t *err) {
  if (p == NULL || path == NULL || path[0] == '\0') {
    scalene__error_set(err, path, 0, 0, -1, "no profile or no output path");
    return SCALENE_EINVAL;
  }
  scalene_output_options_t defaults;
  opts = scalene__output_options(opts, &defaults);

  scalene__profile_lock(p);
  json_object *doc = build(p, opts);
  scalene__profile_unlock(p);
  if (doc == NULL) {
    scalene__error_set(err, path, 0, 0, -1, "out of memory while building the profile");
    return SCALENE_ENOMEM;
  }
  size_t len = 0;
  const char *text = json_object_to_json_string_length(
      doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
  char *copy = text != NULL ? malloc(len + 2) : NULL;
  if (copy == NULL) {
    json_object_put(doc);
    scalene__error_set(err, path, 0, 0, -1, "out of memory while serialising the profile");
    return SCALENE_ENOMEM;
  }
  memcpy(copy, text, len);
  len = collapse_empty(copy, len);
  copy[len++] = '\n';
  json_object_put(doc);
  int rc = scalene__write_file_atomic(path, copy, len, err);
  free(copy);
  return rc;
}

/* ------------------------------------------------------------ reading */

/* The largest profile read: a bigger file is refused rather than read. */
#define READ_MAX ((off_t)1 << 30)

/* internal.h.  The file is opened without blocking (a FIFO with no writer
 * would block in open) and checked with fstat before anything is read. */
int scalene__read_file(const char *path, off_t max, char **out, size_t *len,
                       scalene_error_t *err) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    scalene__error_set(err, path, 0, 0, -1, "cannot open: %s", strerror(e));
    return e == ENOENT ? SCALENE_ENOENT : SCALENE_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    scalene__error_set(err, path, 0, 0, -1, "cannot stat: %s", strerror(e));
    return SCALENE_EIO;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    scalene__error_set(err, path, 0, 0, -1, "cannot read: %s",
                       S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    return SCALENE_EIO;
  }
  if (st.st_size > max) {
    close(fd);
    scalene__error_set(err, path, 0, 0, -1, "file too large (over %lld bytes)",
                       (long long)max);
    return SCALENE_EIO;
  }
  /* Room for the size fstat gave, plus one byte to notice growth. */
  size_t cap = (size_t)st.st_size + 2, n = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    close(fd);
    scalene__error_set(err, path, 0, 0, -1, "out of memory");
    return SCALENE_ENOMEM;
  }
  for (;;) {
    if (n + 1 >= cap) {
      if ((off_t)n >= max) {
        close(fd);
        free(buf);
        scalene__error_set(err, path, 0, 0, -1, "file too large (over %lld bytes)",
                           (long long)max);
        return SCALENE_EIO;
      }
      size_t ncap = 2 * cap > (size_t)max + 2 ? (size_t)max + 2 : 2 * cap;
      char *nb = realloc(buf, ncap);
      if (nb == NULL) {
        close(fd);
        free(buf);
        scalene__error_set(err, path, 0, 0, -1, "out of memory");
        return SCALENE_ENOMEM;
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      free(buf);
      scalene__error_set(err, path, 0, 0, -1, "cannot read: %s", strerror(e));
      return SCALENE_EIO;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

/* 1-based line and column (in bytes) of offset in buf. */
static void position(const char *buf, size_t offset, int *line, int *column) {
  int l = 1;
  size_t bol = 0;
  for (size_t i = 0; i < offset; i++)
    if (buf[i] == '\n') {
      l++;
      bol = i + 1;
    }
  *line = l;
  *column = (int)(offset - bol) + 1;
}

typedef struct reader {
  const char *path;
  scalene_error_t *err;
  int ours;       /* written by us (has "scaleneprof_version") */
  double elapsed; /* elapsed_time_sec */
} reader_t;

static int bad(reader_t *rd, const char *fmt, const char *what, const char *member) {
  char msg[SCALENE_ERROR_TEXT_MAX];
  snprintf(msg, sizeof msg, fmt, what, member);
  scalene__error_set(rd->err, rd->path, 0, 0, -1, "not a profile: %s", msg);
  return SCALENE_EFORMAT;
}

static int is_number(json_object *v) {
  return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
}

/* An optional number member of o: *out stays as it is when absent or null. */
static int opt_number(reader_t *rd, json_object *o, const char *where, const char *key,
                      double *out, int *present) {
  json_object *v;
  if (present) *present = 0;
  if (!json_object_object_get_ex(o, key, &v) || v == NULL) return 0;
  if (!is_number(v)) return bad(rd, "%s\"%s\" is not a number", where, key);
  double d = json_object_get_double(v);
  /* NaN and Infinity (which Python writes) and numbers that overflow to
   * infinity (1e400) stand for no amount of time or memory. */
  if (!isfinite(d)) return bad(rd, "%s\"%s\" is not a finite number", where, key);
  *out = d;
  if (present) *present = 1;
  return 0;
}

static int opt_count(reader_t *rd, json_object *o, const char *where, const char *key,
                     uint64_t *out) {
  json_object *v;
  if (!json_object_object_get_ex(o, key, &v) || v == NULL) return 0;
  if (!json_object_is_type(v, json_type_int))
    return bad(rd, "%s\"%s\" is not an integer", where, key);
  int64_t i = json_object_get_int64(v);
  *out = i > 0 ? (uint64_t)i : 0;
  return 0;
}

/* The seconds of a line or function entry: our raw seconds when present,
 * else Scalene's percentages of `total`. */
static int entry_seconds(reader_t *rd, json_object *e, const char *where, double total,
                         double sec[3], uint64_t *samples) {
  static const char *const pct_keys[3] = {"n_cpu_percent_python", "n_cpu_percent_c",
                                          "n_sys_percent"};
  static const char *const sec_keys[3] = {"n_cpu_sec_python", "n_cpu_sec_c", "n_sys_sec"};
  for (int k = 0; k < 3; k++) {
    double pct = 0, s = 0;
    int have_sec, rc;
    if ((rc = opt_number(rd, e, where, pct_keys[k], &pct, NULL)) != 0) return rc;
    if ((rc = opt_number(rd, e, where, sec_keys[k], &s, &have_sec)) != 0) return rc;
    sec[k] = have_sec ? s : pct / 100.0 * total;
    if (!(sec[k] > 0)) sec[k] = 0; /* rounding noise, -0.0 */
  }
  *samples = 0;
  return opt_count(rd, e, where, "cpu_samples", samples);
}

/* A timeline [[t_ns, MB], ...] into a malloc'ed [seconds, MB] array. */
static int read_timeline(reader_t *rd, json_object *o, const char *where, const char *key,
                         double (**out)[2], size_t *n) {
  json_object *v;
  *out = NULL;
  *n = 0;
  if (!json_object_object_get_ex(o, key, &v) || v == NULL) return 0;
  if (!json_object_is_type(v, json_type_array))
    return bad(rd, "%s\"%s\" is not an array", where, key);
  size_t len = json_object_array_length(v);
  if (len == 0) return 0;
  double(*pts)[2] = malloc(len * sizeof pts[0]);
  if (pts == NULL) return SCALENE_ENOMEM;
  for (size_t i = 0; i < len; i++) {
    json_object *pt = json_object_array_get_idx(v, i);
    if (!json_object_is_type(pt, json_type_array) || json_object_array_length(pt) < 2 ||
        !is_number(json_object_array_get_idx(pt, 0)) ||
        !is_number(json_object_array_get_idx(pt, 1))) {
      free(pts);
      return bad(rd, "%s\"%s\" holds something that is not a [time, MB] pair", where, key);
    }
    json_object *t = json_object_array_get_idx(pt, 0);
    double tns = json_object_is_type(t, json_type_int) ? (double)json_object_get_int64(t)
                                                       : json_object_get_double(t);
    double mb = json_object_get_double(json_object_array_get_idx(pt, 1));
    if (!isfinite(tns) || !isfinite(mb)) {
      free(pts);
      return bad(rd, "%s\"%s\" holds a number that is not finite", where, key);
    }
    pts[i][0] = tns > 0 ? tns / 1e9 : 0;
    pts[i][1] = mb > 0 ? mb : 0;
  }
  *out = pts;
  *n = len;
  return 0;
}

/* The memory members of a line or function entry, in bytes.  Ours carry
 * the raw values; Scalene's are converted (docs/json-format.md,
 * "Reading"). */
static int entry_memory(reader_t *rd, json_object *e, const char *where,
                        scalene__line_memory_t *m, double (**pts)[2], int *nonzero) {
  double malloc_mb = 0, pyfrac = 0, peak = 0, avg = 0, growth = 0, copy_s = 0;
  double py_mb = 0, freed_mb = 0, copy_mb = 0, span = 0;
  int have_py, have_freed, have_copy;
  uint64_t grow = 0, shrink = 0, mallocs = 0;
  int rc;
  memset(m, 0, sizeof *m);
  *pts = NULL;
  if ((rc = opt_number(rd, e, where, "n_malloc_mb", &malloc_mb, NULL)) != 0 ||
      (rc = opt_number(rd, e, where, "n_python_fraction", &pyfrac, NULL)) != 0 ||
      (rc = opt_number(rd, e, where, "n_peak_mb", &peak, NULL)) != 0 ||
      (rc = opt_number(rd, e, where, "n_avg_mb", &avg, NULL)) != 0 ||
      (rc = opt_number(rd, e, where, "n_growth_mb", &growth, NULL)) != 0 ||
      (rc = opt_number(rd, e, where, "n_copy_mb_s", &copy_s, NULL)) != 0 ||
      (rc = opt_number(rd, e, where, "n_python_mb", &py_mb, &have_py)) != 0 ||
      (rc = opt_number(rd, e, where, "n_freed_mb", &freed_mb, &have_freed)) != 0 ||
      (rc = opt_number(rd, e, where, "n_copy_mb", &copy_mb, &have_copy)) != 0 ||
      (rc = opt_number(rd, e, where, "memory_span_sec", &span, NULL)) != 0 ||
      (rc = opt_count(rd, e, where, "n_mallocs", &mallocs)) != 0 ||
      (rc = opt_count(rd, e, where, "n_grow_events", &grow)) != 0 ||
      (rc = opt_count(rd, e, where, "n_shrink_events", &shrink)) != 0)
    return rc;
  double(*t)[2];
  size_t n;
  if ((rc = read_timeline(rd, e, where, "memory_samples", &t, &n)) != 0) return rc;
#define POS(x) ((x) > 0 ? (x) : 0.0)
  m->alloc_bytes = POS(malloc_mb) * MB;
  m->python_bytes = have_py ? POS(py_mb) * MB : POS(pyfrac) * m->alloc_bytes;
  m->peak_bytes = POS(peak) * MB;
  m->avg_bytes = POS(avg) * MB;
  m->span_sec = POS(span);
  m->copy_bytes = have_copy ? POS(copy_mb) * MB : POS(copy_s) * MB * POS(rd->elapsed);
  m->alloc_samples = mallocs;
  m->grow_events = grow;
  m->shrink_events = shrink;
  if (rd->ours) {
    m->live_bytes = POS(growth) * MB;
    m->freed_bytes = have_freed ? POS(freed_mb) * MB : 0;
  } else {
    /* Scalene's n_growth_mb is an alias of n_peak_mb: what stays live at
     * the end of the run is not in its files. */
    m->live_bytes = 0;
    m->freed_bytes = m->alloc_bytes;
  }
#undef POS
  if (m->python_bytes > m->alloc_bytes) m->python_bytes = m->alloc_bytes;
  m->n_samples = n;
  m->samples = (const double(*)[2])t;
  *pts = t;
  *nonzero = m->alloc_bytes > 0 || m->copy_bytes > 0 || m->freed_bytes > 0 || m->peak_bytes > 0 ||
             mallocs > 0 || n > 0;
  return 0;
}

static int read_file_entry(reader_t *rd, scalene_profile_t *p, const char *name,
                           json_object *fo, double total, double *attributed) {
  char where[SCALENE_ERROR_TEXT_MAX / 2];
  snprintf(where, sizeof where, "files[\"%.60s\"]", name);
  if (!json_object_is_type(fo, json_type_object)) return bad(rd, "%s is not an object", where, "");
  if (name[0] == '\0') return bad(rd, "%s: empty file name", where, "");
  json_object *lines = NULL, *funcs = NULL;
  if (json_object_object_get_ex(fo, "lines", &lines) && lines != NULL &&
      !json_object_is_type(lines, json_type_array))
    return bad(rd, "%s.\"%s\" is not an array", where, "lines");
  if (json_object_object_get_ex(fo, "functions", &funcs) && funcs != NULL &&
      !json_object_is_type(funcs, json_type_array))
    return bad(rd, "%s.\"%s\" is not an array", where, "functions");

  for (int pass = 0; pass < 2; pass++) {
    json_object *arr = pass == 0 ? lines : funcs;
    size_t n = arr ? json_object_array_length(arr) : 0;
    for (size_t i = 0; i < n; i++) {
      char ewhere[SCALENE_ERROR_TEXT_MAX / 2 + 40];
      snprintf(ewhere, sizeof ewhere, "%s.%s[%zu]", where, pass == 0 ? "lines" : "functions", i);
      json_object *e = json_object_array_get_idx(arr, i);
      if (!json_object_is_type(e, json_type_object))
        return bad(rd, "%s is not an object", ewhere, "");
      json_object *v;
      if (!json_object_object_get_ex(e, "lineno", &v))
        return bad(rd, "%s has no \"%s\"", ewhere, "lineno");
      if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
          json_object_get_int64(v) > UINT32_MAX)
        return bad(rd, "%s.\"%s\" is not a line number", ewhere, "lineno");
      uint32_t lineno = (uint32_t)json_object_get_int64(v);
      const char *text = "";
      if (json_object_object_get_ex(e, "line", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_string))
          return bad(rd, "%s.\"%s\" is not a string", ewhere, "line");
        text = json_object_get_string(v);
      }
      double sec[3];
      uint64_t samples;
      char mwhere[sizeof ewhere + 1];
      snprintf(mwhere, sizeof mwhere, "%s.", ewhere);
      int rc = entry_seconds(rd, e, mwhere, total, sec, &samples);
      if (rc != 0) return rc;
      int nonzero = samples > 0 || sec[0] > 0 || sec[1] > 0 || sec[2] > 0;
      scalene__line_memory_t mem;
      double(*pts)[2] = NULL;
      int mem_nonzero = 0;
      if ((rc = entry_memory(rd, e, mwhere, &mem, &pts, &mem_nonzero)) != 0) return rc;
      if (pass == 0) {
        if (nonzero && (rc = scalene__profile_add_line(p, name, lineno, sec, samples)) != 0)
          goto entry_out;
        if (mem_nonzero &&
            (rc = scalene__profile_add_line_memory(p, name, lineno, NULL, 0, &mem)) != 0)
          goto entry_out;
        if (text[0] != '\0' && (rc = scalene_profile_set_source(p, name, lineno, text)) != 0)
          goto entry_out;
        *attributed += sec[0] + sec[1] + sec[2];
      } else {
        if (text[0] == '\0') {
          free(pts);
          return bad(rd, "%s.\"%s\" is empty", ewhere, "line");
        }
        if ((rc = scalene__profile_add_function(p, name, text, lineno, sec, samples)) != 0)
          goto entry_out;
        if (mem_nonzero &&
            (rc = scalene__profile_add_line_memory(p, name, 0, text, lineno, &mem)) != 0)
          goto entry_out;
      }
    entry_out:
      free(pts);
      if (rc != 0) return rc;
    }
  }
  return 0;
}

/* The top-level memory members (after the files: Scalene's files give
 * the total allocation volume). */
static int read_memory(reader_t *rd, json_object *root, scalene_profile_t *p) {
  scalene__profile_memory_t m;
  memset(&m, 0, sizeof m);
  double max_mb = 0, pyfrac = 0, growth = 0, total_mb = 0, final_mb = 0;
  int have_total, have_final, rc;
  uint64_t alloc_samples = 0;
  json_object *v;
  if ((rc = opt_number(rd, root, "member ", "max_footprint_mb", &max_mb, NULL)) != 0 ||
      (rc = opt_number(rd, root, "member ", "max_footprint_python_fraction", &pyfrac, NULL)) !=
          0 ||
      (rc = opt_number(rd, root, "member ", "growth_rate", &growth, NULL)) != 0 ||
      (rc = opt_number(rd, root, "member ", "total_alloc_mb", &total_mb, &have_total)) != 0 ||
      (rc = opt_number(rd, root, "member ", "final_footprint_mb", &final_mb, &have_final)) != 0 ||
      (rc = opt_count(rd, root, "member ", "alloc_samples", &alloc_samples)) != 0)
    return rc;
  if (json_object_object_get_ex(root, "memory", &v) && v != NULL) {
    if (!json_object_is_type(v, json_type_boolean))
      return bad(rd, "%smember \"%s\" is not a boolean", "", "memory");
    m.memory = json_object_get_boolean(v);
  }
  if (json_object_object_get_ex(root, "max_footprint_fname", &v) && v != NULL) {
    if (!json_object_is_type(v, json_type_string))
      return bad(rd, "%smember \"%s\" is not a string", "", "max_footprint_fname");
    m.max_footprint_file = json_object_get_string(v);
  }
  if (json_object_object_get_ex(root, "max_footprint_lineno", &v) && v != NULL) {
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
        json_object_get_int64(v) > UINT32_MAX)
      return bad(rd, "%smember \"%s\" is not a line number", "", "max_footprint_lineno");
    m.max_footprint_line = (uint32_t)json_object_get_int64(v);
  }
  if (have_total) {
    m.alloc_bytes = total_mb > 0 ? total_mb * MB : 0;
  } else {
    /* Scalene's files: the sum of the lines. */
    size_t nf = scalene_profile_file_count(p);
    for (size_t f = 0; f < nf; f++) m.alloc_bytes += scalene_profile_file(p, f)->alloc_bytes;
  }
  if (have_final)
    m.live_bytes = final_mb > 0 ? final_mb * MB : 0;
  else /* Scalene: growth_rate = 100 * net footprint change / malloc MB */
    m.live_bytes = growth > 0 ? growth / 100.0 * m.alloc_bytes : 0;
  m.max_footprint_bytes = max_mb > 0 ? max_mb * MB : 0;
  m.max_footprint_python_fraction = pyfrac > 0 ? pyfrac : 0;
  m.alloc_samples = alloc_samples;
  double(*pts)[2];
  size_t n;
  if ((rc = read_timeline(rd, root, "member ", "samples", &pts, &n)) != 0) return rc;
  m.n_samples = n;
  m.samples = (const double(*)[2])pts;
  rc = scalene__profile_set_memory(p, &m);
  free(pts);
  return rc;
}

/* The total charged when a profile has shares but no seconds. */
#define SHARE_UNITS 100.0


/* "stacks" (Scalene 2.x, and ours): [[frames...], {count, python_time,
 * c_time, cpu_samples, ...}] per stack.  The text is the frames
 * concatenated, each ended with ';' (added when a frame lacks it); a stack
 * without frames is skipped.  Seconds: ours carry them
 * (n_cpu_sec_python, n_cpu_sec_c, n_sys_sec); else python_time and
 * c_time are fractions of all CPU time `total`, and in our files the
 * rest of cpu_samples is system time (Scalene's stacks have none). */
static int read_stacks(reader_t *rd, json_object *root, scalene_profile_t *p, double total) {
  json_object *arr;
  if (!json_object_object_get_ex(root, "stacks", &arr) || arr == NULL) return 0;
  if (!json_object_is_type(arr, json_type_array))
    return bad(rd, "%smember \"%s\" is not an array", "", "stacks");
  size_t n = json_object_array_length(arr);
  for (size_t i = 0; i < n; i++) {
    char where[64];
    snprintf(where, sizeof where, "stacks[%zu]", i);
    json_object *e = json_object_array_get_idx(arr, i);
    if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) < 2 ||
        !json_object_is_type(json_object_array_get_idx(e, 0), json_type_array) ||
        !json_object_is_type(json_object_array_get_idx(e, 1), json_type_object))
      return bad(rd, "%s is not a [frames, %s] pair", where, "stats");
    json_object *frames = json_object_array_get_idx(e, 0);
    json_object *st = json_object_array_get_idx(e, 1);
    size_t nf = json_object_array_length(frames), len = 0;
    for (size_t k = 0; k < nf; k++) {
      json_object *f = json_object_array_get_idx(frames, k);
      if (!json_object_is_type(f, json_type_string))
        return bad(rd, "%s holds a %s that is not a string", where, "frame");
      len += (size_t)json_object_get_string_len(f) + 1;
    }
    char swhere[80];
    snprintf(swhere, sizeof swhere, "%s.", where);
    double py = 0, c = 0, all = 0, sec[SCALENE_CPU_KINDS];
    int have[SCALENE_CPU_KINDS], rc;
    uint64_t count = 0;
    if ((rc = opt_number(rd, st, swhere, "python_time", &py, NULL)) != 0 ||
        (rc = opt_number(rd, st, swhere, "c_time", &c, NULL)) != 0 ||
        (rc = opt_number(rd, st, swhere, "cpu_samples", &all, NULL)) != 0 ||
        (rc = opt_number(rd, st, swhere, "n_cpu_sec_python", &sec[0], &have[0])) != 0 ||
        (rc = opt_number(rd, st, swhere, "n_cpu_sec_c", &sec[1], &have[1])) != 0 ||
        (rc = opt_number(rd, st, swhere, "n_sys_sec", &sec[2], &have[2])) != 0 ||
        (rc = opt_count(rd, st, swhere, "count", &count)) != 0)
      return rc;
    if (!have[0]) sec[0] = py * total;
    if (!have[1]) sec[1] = c * total;
    if (!have[2]) sec[2] = rd->ours ? (all - py - c) * total : 0;
    for (int k = 0; k < SCALENE_CPU_KINDS; k++)
      if (!(sec[k] > 0)) sec[k] = 0; /* rounding noise, -0.0 */
    if (nf == 0) continue;
    char *text = malloc(len + 1);
    if (text == NULL) return SCALENE_ENOMEM;
    size_t o = 0;
    for (size_t k = 0; k < nf; k++) {
      json_object *f = json_object_array_get_idx(frames, k);
      size_t fl = (size_t)json_object_get_string_len(f);
      if (fl == 0) continue;
      memcpy(text + o, json_object_get_string(f), fl);
      o += fl;
      if (text[o - 1] != ';') text[o++] = ';';
    }
    text[o] = '\0';
    /* A NUL inside a frame cuts the text there: still a stack. */
    rc = text[0] != '\0' ? scalene_profile_add_stack(p, text, sec, count) : 0;
    free(text);
    if (rc != 0) return rc;
  }
  return 0;
}

/* "processes" (ours): the profile's own process, then its children. */
static int read_processes(reader_t *rd, json_object *root, scalene_profile_t *p) {
  json_object *arr;
  uint64_t pid = 0;
  int rc = opt_count(rd, root, "member ", "pid", &pid);
  if (rc != 0) return rc;
  scalene_profile_set_pid(p, (long)pid);
  if (!json_object_object_get_ex(root, "processes", &arr) || arr == NULL) return 0;
  if (!json_object_is_type(arr, json_type_array))
    return bad(rd, "%smember \"%s\" is not an array", "", "processes");
  size_t n = json_object_array_length(arr);
  for (size_t i = 0; i < n; i++) {
    json_object *o = json_object_array_get_idx(arr, i), *v;
    if (!json_object_is_type(o, json_type_object))
      return bad(rd, "%smember \"%s\" holds something that is not an object", "", "processes");
    scalene_process_stats_t ps;
    memset(&ps, 0, sizeof ps);
    ps.program = "";
    if (json_object_object_get_ex(o, "program", &v) && v != NULL) {
      if (!json_object_is_type(v, json_type_string))
        return bad(rd, "%s\"%s\" is not a string", "a process's ", "program");
      ps.program = json_object_get_string(v);
    }
    pid = 0;
    double alloc_mb = 0, footprint_mb = 0;
    if ((rc = opt_count(rd, o, "a process's ", "pid", &pid)) != 0 ||
        (rc = opt_number(rd, o, "a process's ", "elapsed_time_sec", &ps.elapsed_sec, NULL)) != 0 ||
        (rc = opt_number(rd, o, "a process's ", "total_cpu_sec", &ps.total_cpu_sec, NULL)) != 0 ||
        (rc = opt_count(rd, o, "a process's ", "cpu_samples", &ps.cpu_samples)) != 0 ||
        (rc = opt_number(rd, o, "a process's ", "total_alloc_mb", &alloc_mb, NULL)) != 0 ||
        (rc = opt_number(rd, o, "a process's ", "max_footprint_mb", &footprint_mb, NULL)) != 0)
      return rc;
    ps.pid = (long)pid;
    ps.alloc_bytes = alloc_mb * MB;
    ps.max_footprint_bytes = footprint_mb * MB;
    if ((rc = scalene__profile_add_process(p, &ps, i == 0)) != 0) return rc;
  }
  return 0;
}

static int read_profile(reader_t *rd, json_object *root, scalene_profile_t *p) {
  if (!json_object_is_type(root, json_type_object))
    return bad(rd, "the top level is %s, not an object%s", json_type_to_name(json_object_get_type(root)), "");
  /* Scalene writes {} when the program did not run long enough to be
   * sampled: that is an empty profile, not an error. */
  if (json_object_object_length(root) == 0) return 0;
  json_object *files, *v;
  if (!json_object_object_get_ex(root, "files", &files))
    return bad(rd, "%smissing member \"%s\"", "", "files");
  if (!json_object_is_type(files, json_type_object))
    return bad(rd, "%smember \"%s\" is not an object", "", "files");

  const char *program = "";
  if (json_object_object_get_ex(root, "program", &v) && v != NULL) {
    if (!json_object_is_type(v, json_type_string))
      return bad(rd, "%smember \"%s\" is not a string", "", "program");
    program = json_object_get_string(v);
  }
  int n_args = 0;
  const char **args = NULL;
  if (json_object_object_get_ex(root, "args", &v) && v != NULL) {
    if (!json_object_is_type(v, json_type_array))
      return bad(rd, "%smember \"%s\" is not an array", "", "args");
    n_args = (int)json_object_array_length(v);
    args = calloc((size_t)n_args + 1, sizeof *args);
    if (args == NULL) return SCALENE_ENOMEM;
    for (int i = 0; i < n_args; i++) {
      json_object *a = json_object_array_get_idx(v, (size_t)i);
      if (!json_object_is_type(a, json_type_string)) {
        free(args);
        return bad(rd, "%smember \"%s\" holds something that is not a string", "", "args");
      }
      args[i] = json_object_get_string(a);
    }
  }
  int rc = scalene_profile_set_program(p, program, n_args, args);
  free(args);
  if (rc != 0) return rc;

  double elapsed = 0, start = 0, total = 0, unattributed = 0;
  int have_total, have_unattr;
  uint64_t samples = 0;
  if ((rc = opt_number(rd, root, "member ", "elapsed_time_sec", &elapsed, NULL)) != 0 ||
      (rc = opt_number(rd, root, "member ", "start_time_absolute", &start, NULL)) != 0 ||
      (rc = opt_number(rd, root, "member ", "total_cpu_sec", &total, &have_total)) != 0 ||
      (rc = opt_number(rd, root, "member ", "unattributed_cpu_sec", &unattributed,
                       &have_unattr)) != 0 ||
      (rc = opt_count(rd, root, "member ", "cpu_samples", &samples)) != 0)
    return rc;
  scalene_profile_set_elapsed(p, elapsed, start);
  /* Scalene's percentages are of all CPU samples, which its wall-clock
   * timer spreads over the elapsed time. */
  int no_seconds = !have_total && !(elapsed > 0);
  if (!have_total) total = elapsed > 0 ? elapsed : SHARE_UNITS;

  rd->ours = json_object_object_get_ex(root, "scaleneprof_version", NULL);
  rd->elapsed = elapsed;

  double attributed = 0;
  json_object_object_foreach(files, name, fo) {
    if ((rc = read_file_entry(rd, p, name, fo, total, &attributed)) != 0) return rc;
  }
  if (!have_unattr) unattributed = total > attributed ? total - attributed : 0;
  scalene__profile_add_totals(p, total, unattributed, samples);
  /* Without seconds the "seconds" are shares of SHARE_UNITS: marked, so
   * that no view shows them as time. */
  if (no_seconds) scalene__profile_mark_seconds_unknown(p, total);
  if ((rc = read_memory(rd, root, p)) != 0) return rc;
  if ((rc = read_stacks(rd, root, p, total)) != 0) return rc;
  return read_processes(rd, root, p);
}

int scalene_output_read_json(const char *path, scalene_profile_t **out, scalene_error_t *err) {
  if (out != NULL) *out = NULL;
  if (path == NULL || out == NULL) {
    scalene__error_set(err, path, 0, 0, -1, "no path or no place for the result");
    return SCALENE_EINVAL;
  }
  char *buf;
  size_t len;
  int rc = scalene__read_file(path, READ_MAX, &buf, &len, err);
  if (rc != 0) return rc;

  json_tokener *tok = json_tokener_new();
  if (tok == NULL) {
    free(buf);
    scalene__error_set(err, path, 0, 0, -1, "out of memory");
    return SCALENE_ENOMEM;
  }
  /* Strict: what Python's json module accepts (no trailing commas, no
   * single quotes, nothing after the value), plus NaN and Infinity, which
   * Python writes.  Passing the NUL as well ends a top-level number at the
   * end of the file; the tokener stops on the offending character, so its
   * parse end is the error's position. */
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  json_object *root = json_tokener_parse_ex(tok, buf, (int)len + 1);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  if (jerr != json_tokener_success) {
    size_t off = json_tokener_get_parse_end(tok);
    if (off > len) off = len;
    int line, col;
    position(buf, off, &line, &col);
    if (jerr == json_tokener_error_parse_eof || jerr == json_tokener_continue || off == len)
      scalene__error_set(err, path, line, col, (long)off, "unexpected end of input");
    else
      scalene__error_set(err, path, line, col, (long)off, "%s", json_tokener_error_desc(jerr));
    rc = SCALENE_EPARSE;
  } else {
    /* The tokener ends the value at a NUL as at the end of the input, so
     * a NUL and whatever follows it would pass unseen: after the value,
     * only JSON whitespace may come, up to the end of the file. */
    size_t off = json_tokener_get_parse_end(tok);
    while (off < len && (buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\n' ||
                         buf[off] == '\r'))
      off++;
    if (off < len) {
      int line, col;
      position(buf, off, &line, &col);
      scalene__error_set(err, path, line, col, (long)off, "extra data after the JSON value");
      rc = SCALENE_EPARSE;
    }
  }
  json_tokener_free(tok);
  if (rc == 0) {
    scalene_profile_t *p = scalene_profile_new();
    if (p == NULL) {
      rc = SCALENE_ENOMEM;
      scalene__error_set(err, path, 0, 0, -1, "out of memory");
    } else {
      reader_t rd = {path, err, 0, 0};
      /* A mark left for a freed profile at the same address goes. */
      scalene__profile_mark_seconds_unknown(p, 0);
      rc = read_profile(&rd, root, p);
      if (rc == SCALENE_ENOMEM) scalene__error_set(err, path, 0, 0, -1, "out of memory");
      if (rc != 0) {
        scalene__profile_mark_seconds_unknown(p, 0);
        scalene_profile_free(p);
      } else {
        *out = p;
      }
    }
  }
  json_object_put(root);
  free(buf);
  return rc;
}
