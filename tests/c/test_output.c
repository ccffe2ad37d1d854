/* Tests for output.h: JSON written and read back, atomic replacement,
 * parse and format errors, Scalene's own profiles (1.5.16 made by Debian's
 * python3-scalene, and a 2.x-layout file), the terminal view and the HTML
 * page. */
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
#include <sys/wait.h>
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

/* Merged child processes are listed in "processes" and read back. */
static void test_processes_round_trip(void **state) {
  (void)state;
  char src[512], out[512], out2[512];
  scalene_profile_t *p = make_profile(src, sizeof src);
  scalene_profile_t *child = scalene_profile_new();
  scalene_profile_set_program(child, "worker.py", 0, NULL);
  scalene_profile_set_pid(child, 4242);
  scalene_profile_set_elapsed(child, 0.5, 1764300000.5);
  add(child, src, 3, "f", 2, 0.25, 0, 0, 25);
  scalene_profile_set_pid(p, 4241);
  path_in_tmp(out, sizeof out, "procs.json");
  path_in_tmp(out2, sizeof out2, "procs2.json");
  scalene_error_t err;
  /* Without children: no member. */
  assert_int_equal(scalene_output_write_json(p, out, NULL, &err), 0);
  assert_null(strstr(slurp(out), "\"processes\""));
  assert_int_equal(scalene_profile_merge_child(p, child), 0);
  scalene_profile_free(child);
  assert_int_equal(scalene_output_write_json(p, out, NULL, &err), 0);
  const char *text = slurp(out);
  assert_non_null(strstr(text, "\"processes\": ["));
  assert_non_null(strstr(text, "\"pid\": 4241"));
  assert_non_null(strstr(text, "\"pid\": 4242"));
  assert_non_null(strstr(text, "\"program\": \"worker.py\""));
  scalene_profile_t *q = NULL;
  assert_int_equal(scalene_output_read_json(out, &q, &err), 0);
  assert_int_equal(scalene_profile_process_count(q), 2);
  scalene_process_stats_t ps;
  assert_int_equal(scalene_profile_process(q, 0, &ps), 0);
  assert_int_equal(ps.pid, 4241);
  assert_int_equal(ps.cpu_samples, 95 + 2 + 33 + 1 + 3);
  assert_int_equal(scalene_profile_process(q, 1, &ps), 0);
  assert_int_equal(ps.pid, 4242);
  assert_string_equal(ps.program, "worker.py");
  assert_float_equal(ps.total_cpu_sec, 0.25, 1e-12);
  assert_int_equal(ps.cpu_samples, 25);
  assert_float_equal(ps.elapsed_sec, 0.5, 0);
  /* Written again, the same file. */
  assert_int_equal(scalene_output_write_json(q, out2, NULL, &err), 0);
  char *first = strdup(text);
  assert_string_equal(first, slurp(out2));
  free(first);
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

/* ------------------------------------------------------------ memory */

#define MiB 1048576.0

static int mem(scalene_profile_t *p, const char *file, uint32_t line, const char *fn,
               double alloc, double python, double freed, double copy, double t) {
  scalene_memory_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.size = sizeof ev;
  ev.alloc_bytes = alloc;
  ev.python_bytes = python;
  ev.freed_bytes = freed;
  ev.copy_bytes = copy;
  ev.alloc_samples = alloc > 0;
  ev.time_sec = t;
  scalene_location_t l;
  memset(&l, 0, sizeof l);
  snprintf(l.file, sizeof l.file, "%s", file);
  snprintf(l.function, sizeof l.function, "%s", fn);
  l.line = line;
  l.function_line = 1;
  return scalene_profile_add_memory(p, &l, &ev);
}

/* The CPU profile of make_profile, plus memory: line 3 of prog.py leaks
 * 50 x 1 MiB (62.5 % Python) over 5 s and copies 25 MiB; line 5 churns 50
 * pairs of 3 MiB allocated and freed; a native line of hot.c keeps 0.75 MiB
 * of 1.25 MiB.  Elapsed 5 s. */
static scalene_profile_t *make_memory_profile(char *src, size_t n) {
  scalene_profile_t *p = make_profile(src, n);
  scalene_profile_set_elapsed(p, 5.0, 1764300000.125);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(mem(p, src, 3, "f", MiB, 0.625 * MiB, 0, 0.5 * MiB, 0.1 * i + 0.01), 0);
    assert_int_equal(mem(p, src, 5, "<module>", 3 * MiB, 3 * MiB, 0, 0, 0.1 * i + 0.02), 0);
    assert_int_equal(mem(p, src, 5, "<module>", 0, 0, 3 * MiB, 0, 0.1 * i + 0.03), 0);
  }
  assert_int_equal(mem(p, "/nonexistent/hot.c", 20, "spin", 1.25 * MiB, 0, 0, 0, 4.9), 0);
  assert_int_equal(mem(p, "/nonexistent/hot.c", 20, "spin", 0, 0, 0.5 * MiB, 0, 4.95), 0);
  return p;
}

static void assert_same_memory(const scalene_line_stats_t *a, const scalene_line_stats_t *b) {
  assert_non_null(a);
  assert_non_null(b);
  assert_true(a->alloc_bytes == b->alloc_bytes);
  assert_true(a->python_bytes == b->python_bytes);
  assert_true(a->freed_bytes == b->freed_bytes);
  assert_true(a->peak_bytes == b->peak_bytes);
  assert_true(a->copy_bytes == b->copy_bytes);
  assert_int_equal(a->alloc_samples, b->alloc_samples);
  assert_int_equal(a->n_memory_samples, b->n_memory_samples);
  for (size_t i = 0; i < a->n_memory_samples; i++) {
    assert_true(a->memory_samples[i][0] == b->memory_samples[i][0]);
    assert_true(a->memory_samples[i][1] == b->memory_samples[i][1]);
  }
}

static void test_memory_round_trip(void **state) {
  (void)state;
  char src[512], out[512], out2[512];
  scalene_profile_t *p = make_memory_profile(src, sizeof src);
  path_in_tmp(out, sizeof out, "mem.json");
  path_in_tmp(out2, sizeof out2, "mem2.json");
  scalene_error_t err;
  assert_int_equal(scalene_output_write_json(p, out, NULL, &err), 0);
  const char *text = slurp(out);
  char *first = strdup(text);
  /* Scalene's top-level members with their values. */
  assert_non_null(strstr(first, "\"memory\": true"));
  assert_non_null(strstr(first, "\"max_footprint_mb\": 53.0"));     /* 50 + 3 (churn) */
  assert_non_null(strstr(first, "\"max_footprint_lineno\": 5"));
  assert_non_null(strstr(first, "\"alloc_samples\": 101"));
  /* growth_rate = 100 * live at the end / allocated = 100 * 50.75 / 201.25 */
  char want[128];
  snprintf(want, sizeof want, "\"growth_rate\": %.15g", 100.0 * 50.75 / 201.25);
  assert_non_null(strstr(first, want));
  /* The leaking line: its per-line members. */
  assert_non_null(strstr(first, "\"n_malloc_mb\": 50.0"));
  assert_non_null(strstr(first, "\"n_growth_mb\": 50.0"));
  assert_non_null(strstr(first, "\"n_peak_mb\": 50.0"));
  assert_non_null(strstr(first, "\"n_mallocs\": 50"));
  assert_non_null(strstr(first, "\"n_copy_mb_s\": 5.0")); /* 25 MiB / 5 s */
  assert_non_null(strstr(first, "\"n_python_fraction\": 0.625"));
  snprintf(want, sizeof want, "\"n_usage_fraction\": %.15g", 50 / 201.25);
  assert_non_null(strstr(first, want));
  /* The churning line: 150 MB allocated, nothing left, peak 3. */
  assert_non_null(strstr(first, "\"n_malloc_mb\": 150.0"));
  assert_non_null(strstr(first, "\"n_peak_mb\": 3.0"));
  /* memory_samples as [t_ns, MB]: the first point of line 3. */
  assert_non_null(strstr(first, "\"memory_samples\": [\n"));
  assert_non_null(strstr(first, "10000000,\n"));
  /* The leak on line 3 only: 1 - 1/52, 50 MiB / 5 s. */
  assert_non_null(strstr(first, "\"leaks\": {\n"));
  assert_non_null(strstr(first, "\"3\": {"));
  assert_non_null(strstr(first, "\"likelihood\": 0.98076923076923"));
  assert_non_null(strstr(first, "\"velocity_mb_s\": 10.0"));
  assert_null(strstr(first, "\"5\": {"));

  /* Read back: every memory value exactly, and written again the same. */
  scalene_profile_t *q = NULL;
  assert_int_equal(scalene_output_read_json(out, &q, &err), 0);
  scalene_profile_info_t a = info_of(p), b = info_of(q);
  assert_int_equal(b.memory, 1);
  assert_true(a.alloc_bytes == b.alloc_bytes);
  assert_true(a.max_footprint_bytes == b.max_footprint_bytes);
  assert_string_equal(a.max_footprint_file, b.max_footprint_file);
  assert_int_equal(a.max_footprint_line, b.max_footprint_line);
  assert_int_equal(a.n_footprint_samples, b.n_footprint_samples);
  for (size_t i = 0; i < a.n_footprint_samples; i++) {
    assert_true(a.footprint_samples[i][0] == b.footprint_samples[i][0]);
    assert_true(a.footprint_samples[i][1] == b.footprint_samples[i][1]);
  }
  for (size_t f = 0; f < 2; f++) {
    const scalene_file_stats_t *fa = scalene_profile_file(p, f), *fb = scalene_profile_file(q, f);
    assert_true(fa->alloc_bytes == fb->alloc_bytes && fa->python_bytes == fb->python_bytes &&
                fa->freed_bytes == fb->freed_bytes && fa->copy_bytes == fb->copy_bytes);
    const scalene_line_stats_t *r;
    for (size_t i = 0; (r = scalene_profile_file_line(p, f, i)) != NULL; i++)
      assert_same_memory(r, scalene_profile_find_line(q, fa->name, r->line));
    for (size_t i = 0; i < fa->n_functions; i++)
      assert_same_memory(scalene_profile_file_function(p, f, i),
                         scalene_profile_file_function(q, f, i));
  }
  assert_int_equal(scalene_output_write_json(q, out2, NULL, &err), 0);
  assert_string_equal(slurp(out2), first);

  /* Leak reporting off: "leaks" is empty. */
  scalene_output_options_t opts;
  scalene_output_options_init(&opts);
  assert_int_equal(opts.leaks, 1);
  opts.leaks = 0;
  assert_int_equal(scalene_output_write_json(p, out2, &opts, &err), 0);
  text = slurp(out2);
  assert_null(strstr(text, "\"likelihood\""));
  assert_non_null(strstr(text, "\"leaks\": {}"));
  free(first);
  scalene_profile_free(q);
  scalene_profile_free(p);
}

static void test_memory_leak_rule(void **state) {
  (void)state;
  char out[512];
  path_in_tmp(out, sizeof out, "leak.json");
  /* 17 growing events are not enough (1 - 1/19 < 0.95), 18 are; a line
   * that keeps less than 1 % of what it allocated is not reported; churn
   * is not reported. */
  struct {
    int grows, keep_percent, report;
  } cases[] = {{17, 100, 0}, {18, 100, 1}, {50, 100, 1}, {50, 0, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    scalene_profile_t *p = scalene_profile_new();
    scalene_profile_set_elapsed(p, 1.0, 0);
    for (int i = 0; i < cases[c].grows; i++)
      mem(p, "l.py", 7, "", MiB, 0, 0, 0, 0.01 * i);
    if (cases[c].keep_percent == 0) {
      /* All but 0.25 MiB freed in one event: still likely by the
       * counts (1 - 2/51), but 0.25 MiB is under 1 % of the 50 allocated. */
      mem(p, "l.py", 7, "", 0, 0, cases[c].grows * MiB - 0.25 * MiB, 0, 1.0);
    }
    assert_int_equal(scalene_output_write_json(p, out, NULL, NULL), 0);
    const char *text = slurp(out);
    if (cases[c].report)
      assert_non_null(strstr(text, "\"7\": {"));
    else
      assert_null(strstr(text, "\"7\": {"));
    scalene_profile_free(p);
  }
}

static void test_memory_text(void **state) {
  (void)state;
  char src[512];
  scalene_profile_t *p = make_memory_profile(src, sizeof src);
  char *t = render(p, NULL);
  if (getenv("H2_SHOW")) fputs(t, stderr);
  assert_non_null(strstr(t, "Memory usage: "));
  assert_non_null(strstr(t, "(max: 53.00 MB, growth rate: 25%)\n"));
  assert_non_null(strstr(t, "│Time   │–––––– │–––––– │Memory │–––––– │–––––– │–––––––––– │Copy   │\n"));
  assert_non_null(strstr(t, "  Line │Python │native │system │Python │net MB │peakMB │timeline   │MB/s   │"));
  /* Line 3: 62.5 % Python, 50 MB live, peak 50, a rising sparkline,
   * 5 MB/s copied. */
  assert_non_null(
      strstr(t, "\n     3 │   44% │   13% │    3% │   62% │  50.0 │  50.0 │▂▂▃▄▅▅▆▇▇█ │   5.0 │    return sum"));
  /* Line 5: churn, nothing live, peak 3. */
  assert_non_null(strstr(t, "\n     5 │    1% │       │   <1% │  100% │       │   3.0 │"));
  /* A native line with no Python allocation, 0.75 of 1.25 MB live. */
  assert_non_null(strstr(t, "\n    20 │    2% │   19% │       │    0% │  0.75 │   1.2 │"));
  /* Rows without data have blank memory cells. */
  assert_non_null(strstr(t, "\n     4 │       │       │       │       │       │       │           │       │zero_line_marker = 1\n"));
  assert_non_null(strstr(t, "Top PEAK memory consumption, by line:\n(1)      3:    50.00 MB\n(2)      5:     3.00 MB\n"));
  assert_non_null(strstr(t, "Possible memory leak identified at line 3 (estimated likelihood: 98%, "
                            "velocity: 10.00 MB/s)\n"));
  assert_null(strstr(t, "leak identified at line 5 "));
  free(t);
  scalene_output_options_t opts;
  scalene_output_options_init(&opts);
  opts.leaks = 0;
  t = render(p, &opts);
  assert_null(strstr(t, "Possible memory leak"));
  assert_non_null(strstr(t, "Top PEAK memory consumption"));
  free(t);
  scalene_profile_free(p);
}

/* Made with Debian's Scalene 1.5.16 on tests/c/data/memprog.py (see
 * docs/json-format.md): `python3 -m scalene --cli --json --outfile ...`
 * without --cpu-only. */
static void test_read_scalene_memory(void **state) {
  (void)state;
  scalene_profile_t *q = NULL;
  scalene_error_t err;
  assert_int_equal(scalene_output_read_json(DATA "scalene-1.5.16-memory.json", &q, &err), 0);
  scalene_profile_info_t info = info_of(q);
  assert_int_equal(info.memory, 1);
  assert_true(info.max_footprint_bytes == 244.52519512176514 * MiB);
  assert_string_equal(info.max_footprint_file, "memprog.py");
  assert_int_equal(info.max_footprint_line, 11);
  assert_int_equal(info.n_footprint_samples, 15);
  assert_float_equal(info.footprint_samples[0][0], 0.159077053, 1e-12);
  assert_float_equal(info.footprint_samples[0][1], 24.667432535165773, 1e-12);
  const scalene_line_stats_t *r = scalene_profile_find_line(q, "memprog.py", 6);
  assert_non_null(r);
  assert_float_equal(r->alloc_bytes, 235.02934455871582 * MiB, 1e-3);
  assert_float_equal(r->python_bytes, 0.9999925878773994 * r->alloc_bytes, 1e-3);
  assert_float_equal(r->peak_bytes, 4.657931327819824 * MiB, 1e-3);
  assert_int_equal(r->alloc_samples, 60);
  assert_int_equal(r->n_memory_samples, 8);
  r = scalene_profile_find_line(q, "memprog.py", 11);
  assert_float_equal(r->alloc_bytes, 744.1189317703247 * MiB, 1e-3);
  assert_float_equal(info.alloc_bytes, (235.02934455871582 + 744.1189317703247) * MiB, 1.0);
  /* Its view shows the memory columns. */
  char *t = render(q, NULL);
  assert_non_null(strstr(t, "│Memory │"));
  assert_non_null(strstr(t, "(max: 244.53 MB, growth rate: 0%)"));
  assert_non_null(strstr(t, "keep.append(bytearray(4 * 1024 * 1024))"));
  free(t);
  scalene_profile_free(q);
}

/* Review I.1: a FIFO, /dev/zero and a file over the 1 GiB cap are refused
 * before anything is read.  Run in a child with a 5 s alarm and (outside
 * ASan, whose shadow memory needs the address space) a 1 GiB address-space
 * limit, so that a reader that blocks on the FIFO or reads without end
 * fails the test instead of hanging or exhausting the machine. */
static int read_refused(const char *path, const char *why) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(5);
#ifndef __SANITIZE_ADDRESS__
    struct rlimit rl = {1UL << 30, 1UL << 30};
    setrlimit(RLIMIT_AS, &rl);
#endif
    scalene_profile_t *q = NULL;
    scalene_error_t err;
    int rc = scalene_output_read_json(path, &q, &err);
    _exit(rc == SCALENE_EIO && q == NULL && strstr(err.text, why) != NULL ? 0 : 1);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_read_not_regular(void **state) {
  (void)state;
  char fifo[300], big[300];
  path_in_tmp(fifo, sizeof fifo, "fifo.json");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(read_refused(fifo, "not a regular file"), 0);
  assert_int_equal(read_refused("/dev/zero", "not a regular file"), 0);
  unlink(fifo);
  /* A sparse file one byte over 1 GiB. */
  path_in_tmp(big, sizeof big, "big.json");
  FILE *f = fopen(big, "w");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), (1L << 30) + 1), 0);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(read_refused(big, "file too large"), 0);
  unlink(big);
}

/* Review I.2: bytes after the JSON value, a NUL among them. */
static void test_read_trailing_bytes(void **state) {
  (void)state;
  static const struct {
    const char *text;
    size_t len;
    int line, column;
  } cases[] = {
      {"{\"files\": {}}\0garbage", 21, 1, 14},
      {"{\"files\": {}}\n  \0", 17, 2, 3},
      {"{\"files\": {}} \n\t x", 18, 2, 3},
      {"{}\0", 3, 1, 3},
  };
  char path[300];
  path_in_tmp(path, sizeof path, "trailing.json");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(cases[i].text, 1, cases[i].len, f), cases[i].len);
    assert_int_equal(fclose(f), 0);
    scalene_profile_t *q = NULL;
    scalene_error_t err;
    assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EPARSE);
    assert_null(q);
    assert_int_equal(err.line, cases[i].line);
    assert_int_equal(err.column, cases[i].column);
  }
  /* Trailing whitespace alone is fine. */
  spit(path, "{\"files\": {}}\n \t\r\n");
  scalene_profile_t *q = NULL;
  assert_int_equal(scalene_output_read_json(path, &q, NULL), 0);
  scalene_profile_free(q);
}

/* Review I.3: NaN, Infinity and overflowing numbers name their member. */
static void test_read_non_finite(void **state) {
  (void)state;
  static const struct {
    const char *text, *member;
  } cases[] = {
      {"{\"files\": {}, \"elapsed_time_sec\": NaN}", "\"elapsed_time_sec\""},
      {"{\"files\": {}, \"total_cpu_sec\": Infinity}", "\"total_cpu_sec\""},
      {"{\"files\": {}, \"max_footprint_mb\": -Infinity}", "\"max_footprint_mb\""},
      {"{\"files\": {}, \"elapsed_time_sec\": 1e400}", "\"elapsed_time_sec\""},
      {"{\"files\": {\"a.py\": {\"lines\": [{\"lineno\": 1, \"n_cpu_percent_python\": NaN}]}}}",
       "\"n_cpu_percent_python\""},
      {"{\"files\": {\"a.py\": {\"lines\": [{\"lineno\": 1, \"n_malloc_mb\": 1e999}]}}}",
       "\"n_malloc_mb\""},
      {"{\"files\": {\"a.py\": {\"functions\": [{\"lineno\": 1, \"line\": \"f\", "
       "\"n_sys_sec\": -1e400}]}}}",
       "\"n_sys_sec\""},
      {"{\"files\": {}, \"samples\": [[1, NaN]]}", "\"samples\""},
  };
  char path[300];
  path_in_tmp(path, sizeof path, "nonfinite.json");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    spit(path, cases[i].text);
    scalene_profile_t *q = NULL;
    scalene_error_t err;
    memset(&err, 0, sizeof err);
    assert_int_equal(scalene_output_read_json(path, &q, &err), SCALENE_EFORMAT);
    assert_null(q);
    assert_non_null(strstr(err.text, cases[i].member));
  }
}

/* Review I.4: a profile that does not know its seconds shows shares only. */
static void test_text_seconds_unknown(void **state) {
  (void)state;
  char path[300];
  path_in_tmp(path, sizeof path, "noseconds.json");
  spit(path, "{\"files\": {}}");
  scalene_profile_t *q = NULL;
  assert_int_equal(scalene_output_read_json(path, &q, NULL), 0);
  char *t = render(q, NULL);
  assert_null(strstr(t, "1m:40"));
  assert_null(strstr(t, "100.000s"));
  assert_null(strstr(t, "s of CPU time"));
  free(t);
  scalene_profile_free(q);

  spit(path, "{\"files\": {\"/nonexistent/a.py\": {\"percent_cpu_time\": 50.0, \"lines\": "
             "[{\"lineno\": 1, \"line\": \"x = 1\\n\", \"n_cpu_percent_python\": 50.0}]}}}");
  assert_int_equal(scalene_output_read_json(path, &q, NULL), 0);
  t = render(q, NULL);
  assert_non_null(strstr(t, "/nonexistent/a.py: % of time =  50.00%.\n"));
  assert_non_null(strstr(t, "\n     1 │   50% │       │       │x = 1\n"));
  assert_null(strstr(t, "out of"));
  assert_null(strstr(t, "50.000s"));
  free(t);
  /* Written, it stays shares-only: no seconds that a reader would take
   * for real ones. */
  char out[300];
  path_in_tmp(out, sizeof out, "noseconds-out.json");
  assert_int_equal(scalene_output_write_json(q, out, NULL, NULL), 0);
  scalene_profile_free(q);
  char *j = slurp(out);
  assert_null(strstr(j, "\"total_cpu_sec\""));
  assert_null(strstr(j, "\"n_cpu_sec_python\""));
  assert_non_null(strstr(j, "\"n_cpu_percent_python\": 50.0,"));
  assert_int_equal(scalene_output_read_json(out, &q, NULL), 0);
  t = render(q, NULL);
  assert_non_null(strstr(t, "/nonexistent/a.py: % of time =  50.00%.\n"));
  free(t);
  scalene_profile_free(q);

  /* Seconds known from elapsed_time_sec alone (Scalene's own files). */
  spit(path, "{\"elapsed_time_sec\": 2.0, \"files\": {\"/nonexistent/a.py\": {\"lines\": "
             "[{\"lineno\": 1, \"line\": \"x = 1\\n\", \"n_cpu_percent_python\": 50.0}]}}}");
  assert_int_equal(scalene_output_read_json(path, &q, NULL), 0);
  t = render(q, NULL);
  assert_non_null(strstr(t, "/nonexistent/a.py: % of time =  50.00% (1.000s) out of 2.000s.\n"));
  free(t);
  scalene_profile_free(q);
}

/* Review I.5: 100 * x / x is 100.00000000000001 for x = 0.007. */
static void test_percent_clamped(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  assert_non_null(p);
  assert_int_equal(add(p, "/nonexistent/c.py", 1, "f", 1, 0.007, 0, 0, 1), 0);
  char path[300];
  path_in_tmp(path, sizeof path, "clamp.json");
  assert_int_equal(scalene_output_write_json(p, path, NULL, NULL), 0);
  char *j = slurp(path);
  assert_non_null(strstr(j, "\"percent_cpu_time\": 100.0"));
  assert_non_null(strstr(j, "\"n_cpu_percent_python\": 100.0,"));
  assert_null(strstr(j, "100.00000000000001"));
  scalene_profile_free(p);
}

/* Review I.6: control characters from a profile never reach the terminal;
 * our own colours still do. */
static int only_our_escapes(const char *t) {
  for (const char *e = strchr(t, '\033'); e != NULL; e = strchr(e + 1, '\033')) {
    if (e[1] != '[') return 0;
    size_t k = 2;
    while ((e[k] >= '0' && e[k] <= '9') || e[k] == ';') k++;
    if (e[k] != 'm') return 0;
  }
  return 1;
}

static void test_text_escapes(void **state) {
  (void)state;
  const char *file = "/nonexistent/evil\033[31m\033]0;title\a.py";
  scalene_profile_t *p = scalene_profile_new();
  assert_non_null(p);
  assert_int_equal(add(p, file, 1, "f\033[2J\xc2\x9b" "1m", 1, 1.0, 0, 0, 1), 0);
  /* The tab at column 15 pads to 16: one space. */
  assert_int_equal(
      scalene_profile_set_source(p, file, 1, "x = '\033[31m\xc2\x9b\x7f\x9b\x01'\tend\n"), 0);
  for (int color = 0; color <= 1; color++) {
    scalene_output_options_t opts;
    scalene_output_options_init(&opts);
    opts.color = color;
    char *t = render(p, &opts);
    assert_non_null(strstr(t, "evil\xef\xbf\xbd[31m\xef\xbf\xbd]0;title\xef\xbf\xbd.py"));
    assert_non_null(strstr(t, "x = '\xef\xbf\xbd[31m\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                              "\xef\xbf\xbd' end"));
    assert_non_null(strstr(t, "f\xef\xbf\xbd[2J\xef\xbf\xbd" "1m\n"));
    assert_null(strchr(t, '\a'));
    assert_null(strchr(t, '\x7f'));
    assert_null(strchr(t, '\x01'));
    assert_null(strstr(t, "\xc2\x9b"));
    for (const unsigned char *c = (const unsigned char *)t; *c; c++)
      if (*c == 0x9b) assert_true(c[-1] >= 0xc0 || (c[-1] & 0xc0) == 0x80);
    if (color) {
      assert_non_null(strstr(t, "\033[1;31m"));
      assert_true(only_our_escapes(t));
    } else {
      assert_null(strchr(t, '\033'));
    }
    free(t);
  }
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ HTML */

/* Writes p as HTML to tmpdir/name and returns a malloc'ed copy of it. */
static char *html_of(const scalene_profile_t *p, const char *name,
                     const scalene_output_options_t *opts) {
  char out[512];
  path_in_tmp(out, sizeof out, name);
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  int rc = scalene_output_write_html(p, out, opts, &err);
  if (rc != 0) fprintf(stderr, "write_html: %d %s: %s\n", rc, err.source, err.text);
  assert_int_equal(rc, 0);
  char *h = strdup(slurp(out));
  assert_non_null(h);
  return h;
}

static size_t count_of(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *c = strstr(s, needle); c != NULL; c = strstr(c + 1, needle)) n++;
  return n;
}

/* The row of the page with the given id, up to its </tr> (a static copy). */
static const char *row_of(const char *h, const char *id) {
  static char row[8192];
  char want[64];
  snprintf(want, sizeof want, "<tr id=\"%s\"", id);
  const char *b = strstr(h, want);
  assert_non_null(b);
  const char *e = strstr(b, "</tr>");
  assert_non_null(e);
  size_t n = (size_t)(e - b) < sizeof row - 1 ? (size_t)(e - b) : sizeof row - 1;
  memcpy(row, b, n);
  row[n] = '\0';
  return row;
}

/* A page stands alone: one document, nothing fetched from elsewhere. */
static void assert_self_contained(const char *h) {
  assert_true(strncmp(h, "<!DOCTYPE html>\n<html", 21) == 0);
  size_t n = strlen(h);
  assert_true(n > 8 && strcmp(h + n - 8, "</html>\n") == 0);
  assert_int_equal(count_of(h, "</html>"), 1);
  assert_null(strstr(h, "http://"));
  assert_null(strstr(h, "https://"));
  assert_null(strstr(h, "src="));
  assert_null(strstr(h, "url("));
  assert_null(strstr(h, "@import"));
  assert_null(strstr(h, "<link"));
  assert_null(strstr(h, "<iframe"));
  assert_int_equal(count_of(h, "<script"), 1); /* ours, inline */
  /* Every table element closed (text from the profile holds no '<'). */
  assert_int_equal(count_of(h, "<table "), count_of(h, "</table>"));
  assert_int_equal(count_of(h, "<thead>"), count_of(h, "</thead>"));
  assert_int_equal(count_of(h, "<tbody>"), count_of(h, "</tbody>"));
  assert_int_equal(count_of(h, "<tr>") + count_of(h, "<tr "), count_of(h, "</tr>"));
  assert_int_equal(count_of(h, "<th>") + count_of(h, "<th "), count_of(h, "</th>"));
  assert_int_equal(count_of(h, "<td>") + count_of(h, "<td "), count_of(h, "</td>"));
}

static void test_html_escapes(void **state) {
  (void)state;
  const char *evil = "<script>&\"'";
  const char *file = "/nonexistent/<script>&\"'.py";
  scalene_profile_t *p = scalene_profile_new();
  assert_non_null(p);
  const char *args[] = {"x<script>&\"'.py", "--a=<b>"};
  assert_int_equal(scalene_profile_set_program(p, "/home/<script>&\"'/prog.py", 2, args), 0);
  assert_int_equal(add(p, file, 1, "<script>&\"'f", 1, 1.0, 0, 0, 1), 0);
  assert_int_equal(add(p, file, 2, "<script>&\"'f", 1, 1.0, 0, 0, 1), 0);
  assert_int_equal(scalene_profile_set_source(p, file, 1, "if a < b and \"x\" > '<y>':\n"), 0);
  /* Controls and bytes that are not UTF-8 become U+FFFD. */
  assert_int_equal(scalene_profile_set_source(p, file, 2, "s = '\033[31m\xff\xc2\x9b' & x\n"), 0);
  char *h = html_of(p, "evil.html", NULL);
  if (getenv("HTML_SHOW")) fputs(h, stderr);
  assert_self_contained(h);
  assert_null(strstr(h, evil));
  assert_null(strstr(h, "<b>"));
  assert_non_null(strstr(h, "/nonexistent/&lt;script&gt;&amp;&quot;&#39;.py</h2>"));
  assert_non_null(strstr(h, "<title>Scalene: /home/&lt;script&gt;&amp;&quot;&#39;/prog.py</title>"));
  assert_non_null(strstr(h, "x&lt;script&gt;&amp;&quot;&#39;.py --a=&lt;b&gt;"));
  assert_non_null(strstr(h, "<td class=\"t\">&lt;script&gt;&amp;&quot;&#39;f</td>"));
  assert_non_null(strstr(h, "<td class=\"t\">if a &lt; b and &quot;x&quot; &gt; &#39;&lt;y&gt;&#39;:</td>"));
  assert_non_null(strstr(h, "<td class=\"t\">s = &#39;\xef\xbf\xbd[31m\xef\xbf\xbd\xef\xbf\xbd&#39; &amp; x</td>"));
  assert_null(strchr(h, '\033'));
  assert_null(strchr(h, '\xff'));
  assert_null(strstr(h, "\xc2\x9b"));
  free(h);
  scalene_profile_free(p);
}

static void test_html_values(void **state) {
  (void)state;
  const char *file = "/nonexistent/values.py", *small = "/nonexistent/small.py";
  scalene_profile_t *p = scalene_profile_new();
  assert_non_null(p);
  scalene_profile_set_program(p, "/nonexistent/values.py", 0, NULL);
  scalene_profile_set_elapsed(p, 2.0, 0);
  /* Of 2 s: line 3 has 75 % (Python), line 5 12.5 % native and 12.5 %
   * system... less the 0.2 % of small.py, under the threshold of 1 %. */
  assert_int_equal(add(p, file, 3, "hot", 2, 1.5, 0, 0, 150), 0);
  assert_int_equal(add(p, file, 5, "<module>", 1, 0, 0.25, 0.246, 50), 0);
  assert_int_equal(add(p, small, 1, "<module>", 1, 0.004, 0, 0, 1), 0);
  for (uint32_t l = 1; l <= 6; l++) {
    char text[32];
    snprintf(text, sizeof text, "line_%u = %u\n", l, l);
    assert_int_equal(scalene_profile_set_source(p, file, l, text), 0);
  }
  char *h = html_of(p, "values.html", NULL);
  assert_self_contained(h);
  const char *r = row_of(h, "f1-l3");
  assert_non_null(strstr(r, "<td class=\"n\" data-v=\"75\">75%</td>"));
  assert_non_null(strstr(r, "<span class=\"py\" style=\"width:75.00%\"></span>"));
  assert_null(strstr(r, "class=\"na\""));
  assert_non_null(strstr(r, " class=\"hot\"")); /* 75 % >= 33 % */
  assert_non_null(strstr(r, "line_3 = 3</td>"));
  r = row_of(h, "f1-l5");
  assert_non_null(strstr(r, "<td class=\"n\" data-v=\"12.5\">12%</td>"));
  assert_non_null(strstr(r, "<td class=\"n\" data-v=\"12.3\">12%</td>"));
  assert_non_null(strstr(r, "<span class=\"na\" style=\"width:12.50%\"></span>"
                            "<span class=\"sy\" style=\"width:12.30%\"></span>"));
  assert_null(strstr(r, "class=\"hot\""));
  r = row_of(h, "f1-l4"); /* no data: blank cells, no bar */
  assert_non_null(strstr(r, "<td class=\"n\" data-v=\"0\"></td>"));
  assert_null(strstr(r, "<span"));
  /* The file's share and times; small.py is under the threshold; no
   * memory columns; the function summary. */
  assert_non_null(strstr(h, "<p class=\"share\">99.80% of the CPU time (1.996s out of 2.000s).</p>"));
  assert_null(strstr(h, "small.py"));
  assert_null(strstr(h, "peak&nbsp;MB"));
  assert_non_null(strstr(h, "<h3>Functions</h3>"));
  assert_non_null(strstr(h, "<a href=\"#f1-l2\">2</a></td>"));
  assert_int_equal(count_of(h, "<tr id=\"f1-l"), 6);

  /* Deterministic: the same bytes again. */
  char *again = html_of(p, "values.html", NULL);
  assert_string_equal(h, again);
  free(again);
  free(h);

  /* Threshold 0: small.py too, after values.py; reduced: lines 3 and 5 only. */
  scalene_output_options_t opts;
  scalene_output_options_init(&opts);
  opts.cpu_percent_threshold = 0;
  opts.reduced = 1;
  h = html_of(p, "values.html", &opts);
  assert_self_contained(h);
  const char *big = strstr(h, "<h2>/nonexistent/values.py</h2>");
  const char *sm = strstr(h, "<h2>/nonexistent/small.py</h2>");
  assert_non_null(big);
  assert_non_null(sm);
  assert_true(big < sm);
  assert_non_null(strstr(h, "<tr id=\"f1-l3\""));
  assert_non_null(strstr(h, "<tr id=\"f1-l5\""));
  assert_non_null(strstr(h, "<tr id=\"f2-l1\""));
  assert_int_equal(count_of(h, "<tr id=\"f"), 3);
  free(h);
  scalene_profile_free(p);

  /* An empty profile still makes a whole page. */
  p = scalene_profile_new();
  h = html_of(p, "empty.html", NULL);
  assert_self_contained(h);
  assert_non_null(strstr(h, "The profile is empty"));
  free(h);
  scalene_profile_free(p);
}

static void test_html_memory(void **state) {
  (void)state;
  char src[512];
  scalene_profile_t *p = make_memory_profile(src, sizeof src);
  char *h = html_of(p, "mem.html", NULL);
  assert_self_contained(h);
  assert_non_null(strstr(h, "<th scope=\"row\">Max footprint</th><td>53.00 MB at <code>"));
  assert_non_null(strstr(h, "peak&nbsp;MB"));
  /* Line 3: 62.5 % Python, 50 MB peak and live, 50 MB allocated of
   * 201.25, 5 MB/s copied, a timeline. */
  const char *r = row_of(h, "f1-l3");
  assert_non_null(strstr(r, "<td class=\"n\" data-v=\"62.5\">62%</td>"));
  assert_non_null(strstr(r, "<td class=\"n\" data-v=\"50\">50.0</td>"));
  assert_non_null(strstr(r, "<td class=\"n\" data-v=\"5\">5.0</td>"));
  char want[128];
  snprintf(want, sizeof want, "<span class=\"mp\" style=\"width:%.2f%%\"></span>",
           100.0 * 31.25 / 201.25);
  assert_non_null(strstr(r, want));
  assert_non_null(strstr(r, "<svg class=\"spark\" "));
  assert_non_null(strstr(r, "<polyline points=\"0.0,"));
  assert_non_null(strstr(h, "<svg class=\"spark footprint\" "));
  /* The leak on line 3 only, linked to its row. */
  assert_non_null(strstr(h, "<h3>Likely memory leaks</h3>"));
  assert_non_null(strstr(h, "<a href=\"#f1-l3\">3</a></td><td class=\"n\" data-v=\"98.0769\">98%</td>"
                            "<td class=\"n\" data-v=\"10\">10.00</td>"));
  assert_int_equal(count_of(h, "<h3>Likely memory leaks</h3>"), 1);
  free(h);
  scalene_output_options_t opts;
  scalene_output_options_init(&opts);
  opts.leaks = 0;
  h = html_of(p, "mem.html", &opts);
  assert_self_contained(h);
  assert_null(strstr(h, "Likely memory leaks"));
  free(h);
  scalene_profile_free(p);
}

static void test_html_atomic(void **state) {
  (void)state;
  teardown(NULL);
  assert_int_equal(setup(NULL), 0);
  char src[512], out[512];
  scalene_profile_t *p = make_profile(src, sizeof src); /* creates prog.py */
  path_in_tmp(out, sizeof out, "atomic.html");
  /* An old file longer than the page: replaced whole, nothing of it left. */
  static char old[200000];
  memset(old, 'X', sizeof old - 1);
  old[sizeof old - 1] = '\0';
  spit(out, old);
  assert_int_equal(count_entries(), 2);
  scalene_error_t err;
  assert_int_equal(scalene_output_write_html(p, out, NULL, &err), 0);
  assert_int_equal(count_entries(), 2);
  const char *h = slurp(out);
  assert_self_contained(h);
  assert_null(strstr(h, "XXXX"));
  struct stat st;
  assert_int_equal(stat(out, &st), 0);
  assert_int_equal((size_t)st.st_size, strlen(h));

  /* A missing directory: SCALENE_EIO, the path in err, nothing left. */
  char missing[600];
  snprintf(missing, sizeof missing, "%s/no-such-dir/p.html", tmpdir);
  memset(&err, 0, sizeof err);
  assert_int_equal(scalene_output_write_html(p, missing, NULL, &err), SCALENE_EIO);
  assert_string_equal(err.source, missing);
  assert_true(strlen(err.text) > 0);
  assert_int_equal(count_entries(), 2);
  assert_int_equal(access(missing, F_OK), -1);

  /* A write that fails half-way (the file size limit) leaves the old file
   * and no temporary. */
  spit(out, "OLD");
  struct rlimit lim0, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &lim0), 0);
  lim = lim0;
  lim.rlim_cur = 100;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  int rc = scalene_output_write_html(p, out, NULL, &err);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim0), 0);
  signal(SIGXFSZ, prev);
  assert_int_equal(rc, SCALENE_EIO);
  assert_string_equal(slurp(out), "OLD");
  assert_int_equal(count_entries(), 2);

  assert_int_equal(scalene_output_write_html(p, NULL, NULL, NULL), SCALENE_EINVAL);
  assert_int_equal(scalene_output_write_html(NULL, out, NULL, NULL), SCALENE_EINVAL);
  scalene_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_processes_round_trip),
      cmocka_unit_test(test_reduced_json),
      cmocka_unit_test(test_atomic_write),
      cmocka_unit_test(test_read_errors),
      cmocka_unit_test(test_read_empty),
      cmocka_unit_test(test_read_scalene_1_5_16),
      cmocka_unit_test(test_read_scalene_2x),
      cmocka_unit_test(test_text),
      cmocka_unit_test(test_text_threshold_and_order),
      cmocka_unit_test(test_loaded_text_wins),
      cmocka_unit_test(test_memory_round_trip),
      cmocka_unit_test(test_memory_leak_rule),
      cmocka_unit_test(test_memory_text),
      cmocka_unit_test(test_read_scalene_memory),
      cmocka_unit_test(test_read_not_regular),
      cmocka_unit_test(test_read_trailing_bytes),
      cmocka_unit_test(test_read_non_finite),
      cmocka_unit_test(test_text_seconds_unknown),
      cmocka_unit_test(test_percent_clamped),
      cmocka_unit_test(test_text_escapes),
      cmocka_unit_test(test_html_escapes),
      cmocka_unit_test(test_html_values),
      cmocka_unit_test(test_html_memory),
      cmocka_unit_test(test_html_atomic),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
