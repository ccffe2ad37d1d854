/* Tests for output.h: JSON written and read back, atomic replacement,
 * parse and format errors, Scalene's own profiles (1.5.16 made by Debian's
 * python3-scalene, and a 2.x-layout file), and the terminal view. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <scalene/scalene.h>

#define DATA SRCDIR "/tests/c/data/"

static char tmpdir[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/scalene-test-output-XXXXXX");
  return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  DIR *d = opendir(tmpdir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char path[600];
      snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(tmpdir);
  return 0;
}

static void path_in_tmp(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", tmpdir, name);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static void spit(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static int add(scalene_profile_t *p, const char *file, uint32_t line, const char *fn,
               uint32_t fn_line, double py, double nat, double sys, uint64_t samples) {
  scalene_location_t l;
  memset(&l, 0, sizeof l);
  snprintf(l.file, sizeof l.file, "%s", file);
  snprintf(l.function, sizeof l.function, "%s", fn);
  l.line = line;
  l.function_line = fn_line;
  double s[SCALENE_CPU_KINDS] = {py, nat, sys};
  return scalene_profile_add_cpu(p, &l, s, samples);
}

static scalene_profile_info_t info_of(const scalene_profile_t *p) {
  scalene_profile_info_t info;
  info.size = sizeof info;
  assert_int_equal(scalene_profile_get_info(p, &info), 0);
  return info;
}

/* A profile over a real source file in tmpdir and a C file that does not
 * exist (as a C consumer's profile names it). */
static const char *SOURCE =
    "import math\n"
    "def f():\n"
    "    return sum(math.sqrt(i) for i in range(9))  # hot\n"
    "zero_line_marker = 1\n"
    "f()\n";

static scalene_profile_t *make_profile(char *src, size_t n) {
  path_in_tmp(src, n, "prog.py");
  spit(src, SOURCE);
  scalene_profile_t *p = scalene_profile_new();
  const char *args[] = {"prog.py", "--flag", "caf\xc3\xa9"};
  scalene_profile_set_program(p, src, 3, args);
  scalene_profile_set_elapsed(p, 1.75, 1764300000.125);
  add(p, src, 3, "f", 2, 0.7, 0.2, 0.05, 95);
  add(p, src, 5, "<module>", 1, 0.01, 0, 0.0001, 2);
  add(p, "/nonexistent/hot.c", 20, "spin", 18, 0.1 / 3, 0.3, 0, 33);
  add(p, "/nonexistent/hot.c", 7, "main", 5, 0, 1e-9, 0, 1);
  double s[SCALENE_CPU_KINDS] = {0.1, 0, 0.2};
  scalene_profile_add_cpu(p, NULL, s, 3);
  return p;
}

static void assert_same_record(const scalene_line_stats_t *a, const scalene_line_stats_t *b) {
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(a->line, b->line);
  for (int k = 0; k < SCALENE_CPU_KINDS; k++) assert_true(a->cpu_sec[k] == b->cpu_sec[k]);
  assert_int_equal(a->cpu_samples, b->cpu_samples);
}

static void test_round_trip(void **state) {
  (void)state;
  char src[512], out[512];
  scalene_profile_t *p = make_profile(src, sizeof src);
  path_in_tmp(out, sizeof out, "p.json");
  scalene_error_t err;
  assert_int_equal(scalene_output_write_json(p, out, NULL, &err), 0);

  scalene_profile_t *q = NULL;
  assert_int_equal(scalene_output_read_json(out, &q, &err), 0);
  assert_non_null(q);
  scalene_profile_info_t a = info_of(p), b = info_of(q);
  assert_string_equal(a.program, b.program);
  assert_int_equal(b.n_args, 3);
  assert_string_equal(b.args[2], "caf\xc3\xa9");
  assert_true(a.elapsed_sec == b.elapsed_sec);
  assert_true(a.start_time_absolute == b.start_time_absolute);
  assert_true(a.total_cpu_sec == b.total_cpu_sec);
  assert_true(a.unattributed_cpu_sec == b.unattributed_cpu_sec);
  assert_int_equal(a.cpu_samples, b.cpu_samples);

  /* Every record with data comes back exactly (raw seconds are written
   * with enough digits to read back the same double). */
  assert_int_equal(scalene_profile_file_count(q), 2);
  for (size_t f = 0; f < 2; f++) {
    const scalene_file_stats_t *fa = scalene_profile_file(p, f);
    const scalene_file_stats_t *fb = scalene_profile_file(q, f);
    assert_string_equal(fa->name, fb->name);
    for (int k = 0; k < SCALENE_CPU_KINDS; k++)
      assert_float_equal(fa->cpu_sec[k], fb->cpu_sec[k], 1e-15);
    assert_int_equal(fa->cpu_samples, fb->cpu_samples);
    const scalene_line_stats_t *r;
    for (size_t i = 0; (r = scalene_profile_file_line(p, f, i)) != NULL; i++)
      assert_same_record(r, scalene_profile_find_line(q, fa->name, r->line));
    assert_int_equal(fa->n_functions, fb->n_functions);
    for (size_t i = 0; i < fa->n_functions; i++) {
      const scalene_line_stats_t *x = scalene_profile_file_function(p, f, i);
      const scalene_line_stats_t *y = scalene_profile_file_function(q, f, i);
      assert_string_equal(x->function, y->function);
      assert_same_record(x, y);
    }
  }
  /* The readable source gave one entry per line, with its text. */
  const scalene_line_stats_t *r = scalene_profile_find_line(q, src, 4);
  assert_non_null(r);
  assert_string_equal(r->source, "zero_line_marker = 1");
  assert_true(r->cpu_sec[0] == 0 && r->cpu_samples == 0);
  assert_string_equal(scalene_profile_find_line(q, src, 1)->source, "import math");
  /* The missing file gave entries for its records only, with no text. */
  assert_int_equal(scalene_profile_file(q, 0)->n_lines, 2);
  assert_string_equal(scalene_profile_file(q, 0)->name, "/nonexistent/hot.c");

  /* Scalene's members are there, with the newline kept in "line". */
  const char *text = slurp(out);
  assert_non_null(strstr(text, "\"n_cpu_percent_python\""));
  assert_non_null(strstr(text, "\"line\": \"zero_line_marker = 1\\n\""));
  assert_non_null(strstr(text, "\"max_footprint_fname\": null"));
  assert_non_null(strstr(text, "\"memory\": false"));
  assert_non_null(strstr(text, "\"scaleneprof_version\": \"" SCALENE_VERSION_STRING "\""));
  assert_non_null(strstr(text, "\"n_growth_mb\": 0.0"));
  /* Empty containers as Python writes them. */
  assert_non_null(strstr(text, "\"leaks\": {}"));
  assert_non_null(strstr(text, "\"samples\": []"));
  assert_int_equal(text[strlen(text) - 1], '\n');
  /* Members in sorted order, like json.dumps(sort_keys=True). */
  assert_true(strstr(text, "\"alloc_samples\"") < strstr(text, "\"args\""));
  assert_true(strstr(text, "\"args\"") < strstr(text, "\"elapsed_time_sec\""));
  assert_true(strstr(text, "\"files\"") < strstr(text, "\"gpu\""));
  scalene_profile_free(q);

  /* Percentages alone (as Scalene's readers see them) give the same
   * seconds: hide our raw members and read again. */
  char *copy = strdup(text), *s;
  while ((s = strstr(copy, "\"n_cpu_sec_")) != NULL) s[1] = 'x';
  while ((s = strstr(copy, "\"n_sys_sec\"")) != NULL) s[1] = 'x';
  char out2[512];
  path_in_tmp(out2, sizeof out2, "pct.json");
  spit(out2, copy);
  free(copy);
  assert_int_equal(scalene_output_read_json(out2, &q, &err), 0);
  r = scalene_profile_find_line(q, src, 3);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_PYTHON], 0.7, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_NATIVE], 0.2, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_SYSTEM], 0.05, 1e-12);
  scalene_profile_free(q);
  scalene_profile_free(p);
}

static void test_reduced_json(void **state) {
  (void)state;
  char src[512], out[512];
  scalene_profile_t *p = make_profile(src, sizeof src);
  path_in_tmp(out, sizeof out, "reduced.json");
  scalene_output_options_t opts;
  scalene_output_options_init(&opts);
  opts.reduced = 1;
  opts.memory = 1;
  assert_int_equal(scalene_output_write_json(p, out, &opts, NULL), 0);
  const char *text = slurp(out);
  assert_null(strstr(text, "zero_line_marker"));
  assert_null(strstr(text, "import math"));
  assert_non_null(strstr(text, "# hot"));
  assert_non_null(strstr(text, "\"memory\": true"));
  scalene_profile_free(p);
}

/* No temporary file may be left in the directory. */
static int count_entries(void) {
  DIR *d = opendir(tmpdir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

static void test_atomic_write(void **state) {
  (void)state;
  teardown(NULL);
  assert_int_equal(setup(NULL), 0);
  char src[512], out[512];
  scalene_profile_t *p = make_profile(src, sizeof src); /* creates prog.py */
  path_in_tmp(out, sizeof out, "atomic.json");
  spit(out, "OLD");
  assert_int_equal(count_entries(), 2);
  assert_int_equal(scalene_output_write_json(p, out, NULL, NULL), 0);
  assert_int_equal(count_entries(), 2);
  assert_non_null(strstr(slurp(out), "\"files\""));
  struct stat st;
  assert_int_equal(stat(out, &st), 0);
  assert_true((st.st_mode & 0444) != 0400 || (st.st_mode & 077) == 0); /* umask applied */

  /* A write that fails half-way (the file size limit) leaves the old file
   * and no temporary. */
  spit(out, "OLD");
  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 100;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  scalene_error_t err;
  int rc = scalene_output_write_json(p, out, NULL, &err);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);
  assert_int_equal(rc, SCALENE_EIO);
  assert_string_equal(err.source, out);
  assert_string_equal(slurp(out), "OLD");
  assert_int_equal(count_entries(), 2);

  /* A missing directory. */
  char missing[600];
  snprintf(missing, sizeof missing, "%s/no-such-dir/p.json", tmpdir);
  rc = scalene_output_write_json(p, missing, NULL, &err);
  assert_int_equal(rc, SCALENE_EIO);
  assert_string_equal(err.source, missing);
  assert_true(strlen(err.text) > 0);
  assert_string_equal(slurp(out), "OLD");
  assert_int_equal(count_entries(), 2);
  assert_int_equal(scalene_output_write_json(p, NULL, NULL, NULL), SCALENE_EINVAL);
  scalene_profile_free(p);
}

static void test_read_errors(void **state) {
  (void)state;
  scalene_profile_t *q = (scalene_profile_t *)&q;
  scalene_error_t err;
  char buf[700];

  assert_int_equal(scalene_output_read_json(DATA "no-such-file.json", &q, &err), SCALENE_ENOENT);
  assert_null(q);
  assert_string_equal(err.source, DATA "no-such-file.json");
  assert_int_equal(scalene_output_read_json(DATA, &q, &err), SCALENE_EIO);

  /* The ',}' on line 4: the '}' at column 4 is the fault. */
  assert_int_equal(scalene_output_read_json(DATA "malformed.json", &q, &err), SCALENE_EPARSE);
  assert_null(q);
  assert_int_equal(err.line, 4);
  assert_int_equal(err.column, 4);
  assert_string_equal(err.source, DATA "malformed.json");
  scalene_error_format(&err, buf, sizeof buf);
  assert_non_null(strstr(buf, "malformed.json:4:4: "));
  assert_true(strlen(err.text) > 0);

  char path[512];
  path_in_tmp(path, sizeof path, "e.json");
  spit(path, "");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EPARSE);
  assert_int_equal(err.line, 1);
  assert_int_equal(err.column, 1);
  assert_string_equal(err.text, "unexpected end of input");
  spit(path, "{\"files\": {}}\n  x");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EPARSE);
  assert_int_equal(err.line, 2);
  assert_int_equal(err.column, 3);
  spit(path, "{\"files\": {\"a\": [1,]}}");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EPARSE);
  assert_int_equal(err.column, 20);

  /* Well-formed, but not a profile. */
  assert_int_equal(scalene_output_read_json(DATA "foreign.json", &q, &err), SCALENE_EFORMAT);
  assert_null(q);
  assert_non_null(strstr(err.text, "\"files\""));
  spit(path, "[1, 2]");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
  assert_non_null(strstr(err.text, "array"));
  spit(path, "null");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
  spit(path, "{\"files\": []}");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
  assert_non_null(strstr(err.text, "\"files\" is not an object"));
  spit(path, "{\"files\": {\"a.py\": {\"lines\": [{\"lineno\": 1}, 7]}}}");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
  assert_non_null(strstr(err.text, "files[\"a.py\"].lines[1] is not an object"));
  spit(path, "{\"files\": {\"a.py\": {\"lines\": [{\"lineno\": \"1\"}]}}}");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
  assert_non_null(strstr(err.text, "lineno"));
  spit(path, "{\"files\": {\"a.py\": {\"lines\": [{\"lineno\": 1, \"n_sys_percent\": \"2\"}]}}}");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
  assert_non_null(strstr(err.text, "n_sys_percent"));
  spit(path, "{\"files\": {}, \"elapsed_time_sec\": true}");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
  assert_non_null(strstr(err.text, "elapsed_time_sec"));
  spit(path, "{\"files\": {\"a.py\": {\"functions\": [{\"lineno\": 1, \"line\": 3}]}}}");
  assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
  assert_non_null(strstr(err.text, "functions[0]"));
  assert_null(q);
}

/* Scalene writes {} when nothing ran long enough: an empty profile. */
static void test_read_empty(void **state) {
  (void)state;
  scalene_profile_t *q = NULL;
  assert_int_equal(scalene_output_read_json(DATA "empty.json", &q, NULL), 0);
  assert_non_null(q);
  assert_int_equal(scalene_profile_file_count(q), 0);
  assert_float_equal(info_of(q).total_cpu_sec, 0, 0);
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_int_equal(scalene_output_text(q, f, NULL), 0);
  fclose(f);
  assert_non_null(strstr(buf, "The profile is empty"));
  free(buf);
  scalene_profile_free(q);
}

/* Made with Debian's python3-scalene 1.5.16:
 *   python3 -m scalene --cli --json --cpu-only --outfile deb.json hot.py */
static void test_read_scalene_1_5_16(void **state) {
  (void)state;
  scalene_profile_t *q = NULL;
  scalene_error_t err;
  assert_int_equal(scalene_output_read_json(DATA "scalene-1.5.16.json", &q, &err), 0);
  scalene_profile_info_t info = info_of(q);
  const double elapsed = 1.6724576950073242;
  assert_string_equal(info.program, "hot.py");
  assert_int_equal(info.n_args, 0);
  assert_true(info.elapsed_sec == elapsed);
  /* No total_cpu_sec: percentages are of the elapsed time. */
  assert_true(info.total_cpu_sec == elapsed);
  assert_int_equal(scalene_profile_file_count(q), 1);
  const scalene_line_stats_t *r = scalene_profile_find_line(q, "hot.py", 7);
  assert_non_null(r);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_PYTHON], 67.5034221798506 / 100 * elapsed, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_NATIVE], 1.782708303215499 / 100 * elapsed, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_SYSTEM], 0.29907195968870864 / 100 * elapsed, 1e-12);
  assert_string_equal(r->source, "        total += math.sqrt(i) * 1.0001");
  r = scalene_profile_find_line(q, "hot.py", 14);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_PYTHON], 29.651353324494092 / 100 * elapsed, 1e-12);
  assert_int_equal(scalene_profile_file(q, 0)->n_lines, 2);
  r = scalene_profile_file_function(q, 0, 0);
  assert_string_equal(r->function, "busy");
  assert_int_equal(r->line, 4);
  r = scalene_profile_file_function(q, 0, 1);
  assert_string_equal(r->function, "other");
  assert_int_equal(r->line, 11);
  /* What the lines do not cover is unattributed. */
  double lines = (67.5034221798506 + 1.782708303215499 + 0.29907195968870864 +
                  29.651353324494092 + 0.7543472511797201 + 0.009096981571412015) / 100 * elapsed;
  assert_float_equal(info.unattributed_cpu_sec, elapsed - lines, 1e-9);

  /* The view shows the kept text, and "..." for the lines Scalene left out. */
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_int_equal(scalene_output_text(q, f, NULL), 0);
  fclose(f);
  assert_non_null(strstr(buf, "hot.py: % of time = 100.00% (1.672s) out of 1.672s.\n"));
  assert_non_null(strstr(buf, "│...\n     7 │   68% │    2% │   <1% │        total += math.sqrt(i) * 1.0001\n"
                              "       │       │       │       │...\n    14 │   30% │    1% │   <1% │"));
  assert_non_null(strstr(buf, "\n     4 │   68% │    2% │   <1% │busy\n"));
  free(buf);
  scalene_profile_free(q);
}

/* Hand-written after Scalene 2.x's schema (args, regions, stacks, ...). */
static void test_read_scalene_2x(void **state) {
  (void)state;
  scalene_profile_t *q = NULL;
  scalene_error_t err;
  assert_int_equal(scalene_output_read_json(DATA "scalene-2.x.json", &q, &err), 0);
  scalene_profile_info_t info = info_of(q);
  assert_string_equal(info.program, "/home/user/prog.py");
  assert_int_equal(info.n_args, 3);
  assert_string_equal(info.args[0], "prog.py");
  assert_string_equal(info.args[2], "3");
  assert_float_equal(info.start_time_absolute, 1764300000.5, 0);
  assert_float_equal(info.total_cpu_sec, 2.0, 0);
  assert_float_equal(info.unattributed_cpu_sec, 0.0, 1e-12);
  const scalene_line_stats_t *r = scalene_profile_find_line(q, "/home/user/prog.py", 3);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_PYTHON], 1.0, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_NATIVE], 0.4, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_SYSTEM], 0.1, 1e-12);
  assert_string_equal(r->source, "    for i in range(10**7):");
  r = scalene_profile_find_line(q, "/home/user/prog.py", 5);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_SYSTEM], 0.3, 1e-12);
  /* Zero rows keep their text for the view. */
  assert_int_equal(scalene_profile_file(q, 0)->n_lines, 6);
  r = scalene_profile_file_function(q, 0, 0);
  assert_string_equal(r->function, "main");
  assert_int_equal(r->line, 1);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_NATIVE], 0.4, 1e-12);
  scalene_profile_free(q);
}

static char *render(const scalene_profile_t *p, const scalene_output_options_t *opts) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_non_null(f);
  assert_int_equal(scalene_output_text(p, f, opts), 0);
  fclose(f);
  return buf;
}

static void test_text(void **state) {
  (void)state;
  scalene_profile_t *q = NULL;
  assert_int_equal(scalene_output_read_json(DATA "scalene-2.x.json", &q, NULL), 0);
  char *t = render(q, NULL);
  assert_non_null(strstr(t, "/home/user/prog.py: % of time = 100.00% (2.000s) out of 2.000s.\n"));
  assert_non_null(strstr(t, "  Line │Python │native │system │/home/user/prog.py\n"));
  assert_non_null(strstr(t, "\n     3 │   50% │   20% │    5% │    for i in range(10**7):\n"));
  assert_non_null(strstr(t, "\n     5 │   10% │       │   15% │    print(total)\n"));
  assert_non_null(strstr(t, "\n     1 │       │       │       │def main():\n"));
  assert_non_null(strstr(t, "│function summary for /home/user/prog.py\n"));
  assert_non_null(strstr(t, "\n     1 │   60% │   20% │   20% │main\n"));
  assert_null(strstr(t, "\033["));
  free(t);

  scalene_output_options_t opts;
  scalene_output_options_init(&opts);
  assert_int_equal(opts.width, 132);
  assert_float_equal(opts.cpu_percent_threshold, 1.0, 0);
  opts.reduced = 1;
  t = render(q, &opts);
  assert_null(strstr(t, "def main"));
  assert_null(strstr(t, "total += i"));
  assert_non_null(strstr(t, "range(10**7)"));
  /* Lines 1-2, 4 and 6 are each a run of inactive lines: three "...". */
  int dots = 0;
  for (const char *s = t; (s = strstr(s, "│...\n")) != NULL; s++) dots++;
  assert_int_equal(dots, 3);
  free(t);

  /* Colour: the 75 % line is hot, the 25 % line is not. */
  opts.reduced = 0;
  opts.color = 1;
  t = render(q, &opts);
  assert_non_null(strstr(t, "\033[1;31m   50%\033[0m"));
  assert_null(strstr(t, "\033[1;31m   10%"));
  free(t);

  /* Width: the source text is cut so that a row fits. */
  opts.color = 0;
  opts.width = 44;
  t = render(q, &opts);
  assert_non_null(strstr(t, "│    for i in\n"));
  free(t);
  scalene_profile_free(q);
}

static void test_text_threshold_and_order(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  add(p, "/nonexistent/small.c", 1, "", 0, 0.005, 0, 0, 1);
  add(p, "/nonexistent/big.c", 9, "hot", 8, 0.9, 0, 0, 1);
  add(p, "/nonexistent/mid.c", 2, "", 0, 0.095, 0.0001, 0, 1);
  scalene_profile_set_source(p, "/nonexistent/big.c", 9, "    spin();\n");
  char *t = render(p, NULL);
  /* Sorted by share; small.c is below the 1 % threshold. */
  char *big = strstr(t, "/nonexistent/big.c: % of time =  89.99% (900.000ms) out of 1.000s.");
  char *mid = strstr(t, "/nonexistent/mid.c: % of time =   9.51%");
  assert_non_null(big);
  assert_non_null(mid);
  assert_true(big < mid);
  assert_null(strstr(t, "small.c"));
  assert_non_null(strstr(t, "\n     9 │   90% │       │       │    spin();\n"));
  assert_non_null(strstr(t, "\n     2 │    9% │   <1% │       │\n"));
  free(t);

  scalene_output_options_t opts;
  scalene_output_options_init(&opts);
  opts.cpu_percent_threshold = 95;
  t = render(p, &opts);
  assert_non_null(strstr(t, "No profiled file reached 95%"));
  free(t);
  scalene_profile_free(p);
}

/* A loaded profile shows the text that was profiled, not today's file. */
static void test_loaded_text_wins(void **state) {
  (void)state;
  char src[512], out[512];
  scalene_profile_t *p = make_profile(src, sizeof src);
  path_in_tmp(out, sizeof out, "then.json");
  assert_int_equal(scalene_output_write_json(p, out, NULL, NULL), 0);
  spit(src, "changed\nchanged\nchanged\nchanged\nchanged\nchanged\n");
  scalene_profile_t *q = NULL;
  assert_int_equal(scalene_output_read_json(out, &q, NULL), 0);
  char *t = render(q, NULL);
  assert_non_null(strstr(t, "│zero_line_marker = 1\n"));
  assert_null(strstr(t, "changed"));
  free(t);
  char out2[512];
  path_in_tmp(out2, sizeof out2, "again.json");
  assert_int_equal(scalene_output_write_json(q, out2, NULL, NULL), 0);
  assert_null(strstr(slurp(out2), "changed"));
  assert_non_null(strstr(slurp(out2), "\"line\": \"zero_line_marker = 1\\n\""));
  scalene_profile_free(q);
  scalene_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_reduced_json),
      cmocka_unit_test(test_atomic_write),
      cmocka_unit_test(test_read_errors),
      cmocka_unit_test(test_read_empty),
      cmocka_unit_test(test_read_scalene_1_5_16),
      cmocka_unit_test(test_read_scalene_2x),
      cmocka_unit_test(test_text),
      cmocka_unit_test(test_text_threshold_and_order),
      cmocka_unit_test(test_loaded_text_wins),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
