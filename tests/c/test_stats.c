/* Tests for stats.h: adding, iterating, finding, merging and clearing a
 * profile, function records, totals, concurrent adds, memory events
 * (accounting, bounded timelines, merge), and the stack table (adding,
 * aggregating, merge, clear, and its JSON form written and read). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <scalene/scalene.h>

static scalene_location_t loc(const char *file, uint32_t line, const char *function,
                              uint32_t function_line) {
  scalene_location_t l;
  memset(&l, 0, sizeof l);
  snprintf(l.file, sizeof l.file, "%s", file);
  snprintf(l.function, sizeof l.function, "%s", function);
  l.line = line;
  l.function_line = function_line;
  return l;
}

static int add(scalene_profile_t *p, const char *file, uint32_t line, const char *fn,
               uint32_t fn_line, double py, double nat, double sys, uint64_t samples) {
  scalene_location_t l = loc(file, line, fn, fn_line);
  double s[SCALENE_CPU_KINDS] = {py, nat, sys};
  return scalene_profile_add_cpu(p, &l, s, samples);
}

static scalene_profile_info_t info_of(const scalene_profile_t *p) {
  scalene_profile_info_t info;
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  assert_int_equal(scalene_profile_get_info(p, &info), 0);
  return info;
}

static void test_empty(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  assert_non_null(p);
  scalene_profile_info_t info = info_of(p);
  assert_string_equal(info.program, "");
  assert_int_equal(info.n_args, 0);
  assert_float_equal(info.total_cpu_sec, 0.0, 0.0);
  assert_int_equal(info.cpu_samples, 0);
  assert_int_equal(scalene_profile_file_count(p), 0);
  assert_null(scalene_profile_file(p, 0));
  assert_null(scalene_profile_file_line(p, 0, 0));
  assert_null(scalene_profile_find_line(p, "a.py", 1));
  scalene_profile_free(p);
  scalene_profile_free(NULL);
}

static void test_add_and_iterate(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  /* Added out of order on purpose. */
  assert_int_equal(add(p, "b.py", 9, "g", 8, 0.25, 0, 0, 1), 0);
  assert_int_equal(add(p, "a.py", 20, "f", 10, 0.5, 0.25, 0.125, 3), 0);
  assert_int_equal(add(p, "a.py", 12, "f", 10, 1.0, 0, 0, 4), 0);
  assert_int_equal(add(p, "a.py", 20, "f", 10, 0.5, 0, 0, 2), 0);
  assert_int_equal(add(p, "a.py", 3, "<module>", 1, 0, 0, 0.5, 1), 0);

  assert_int_equal(scalene_profile_file_count(p), 2);
  const scalene_file_stats_t *a = scalene_profile_file(p, 0);
  const scalene_file_stats_t *b = scalene_profile_file(p, 1);
  assert_string_equal(a->name, "a.py");
  assert_string_equal(b->name, "b.py");
  assert_null(scalene_profile_file(p, 2));
  assert_float_equal(a->cpu_sec[SCALENE_CPU_PYTHON], 2.0, 1e-12);
  assert_float_equal(a->cpu_sec[SCALENE_CPU_NATIVE], 0.25, 1e-12);
  assert_float_equal(a->cpu_sec[SCALENE_CPU_SYSTEM], 0.625, 1e-12);
  assert_int_equal(a->cpu_samples, 10);
  assert_int_equal(a->n_lines, 3);
  assert_int_equal(a->n_functions, 2);
  assert_int_equal(b->n_lines, 1);

  /* Lines by number. */
  const scalene_line_stats_t *r;
  uint32_t want[] = {3, 12, 20};
  for (size_t i = 0; i < 3; i++) {
    r = scalene_profile_file_line(p, 0, i);
    assert_non_null(r);
    assert_int_equal(r->line, want[i]);
    assert_string_equal(r->file, "a.py");
    assert_null(r->source);
  }
  assert_null(scalene_profile_file_line(p, 0, 3));
  r = scalene_profile_file_line(p, 0, 2);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_PYTHON], 1.0, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_NATIVE], 0.25, 1e-12);
  assert_int_equal(r->cpu_samples, 5);
  assert_string_equal(r->function, "f");
  assert_int_equal(r->function_line, 10);

  /* Functions by first line; a function record's line is its first line. */
  r = scalene_profile_file_function(p, 0, 0);
  assert_string_equal(r->function, "<module>");
  assert_int_equal(r->line, 1);
  r = scalene_profile_file_function(p, 0, 1);
  assert_string_equal(r->function, "f");
  assert_int_equal(r->line, 10);
  assert_int_equal(r->function_line, 10);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_PYTHON], 2.0, 1e-12);
  assert_int_equal(r->cpu_samples, 9);
  assert_null(scalene_profile_file_function(p, 0, 2));

  /* The sorted view follows later additions. */
  assert_int_equal(add(p, "a.py", 1, "", 0, 0.125, 0, 0, 1), 0);
  assert_int_equal(add(p, "0.py", 1, "", 0, 0.125, 0, 0, 1), 0);
  assert_string_equal(scalene_profile_file(p, 0)->name, "0.py");
  assert_string_equal(scalene_profile_file(p, 1)->name, "a.py");
  assert_int_equal(scalene_profile_file_line(p, 1, 0)->line, 1);
  assert_int_equal(scalene_profile_file_line(p, 1, 1)->line, 3);
  /* A location without a function makes no function record. */
  assert_int_equal(scalene_profile_file(p, 0)->n_functions, 0);
  assert_string_equal(scalene_profile_file_line(p, 0, 0)->function, "");

  scalene_profile_info_t info = info_of(p);
  assert_float_equal(info.total_cpu_sec, 3.375, 1e-12);
  assert_float_equal(info.unattributed_cpu_sec, 0.0, 0.0);
  assert_int_equal(info.cpu_samples, 13);
  scalene_profile_free(p);
}

static void test_unattributed_and_invalid(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  double s[SCALENE_CPU_KINDS] = {0.5, 0.25, 0.125};
  assert_int_equal(scalene_profile_add_cpu(p, NULL, s, 2), 0);
  scalene_location_t l = loc("", 0, "", 0);
  assert_int_equal(scalene_profile_add_cpu(p, &l, s, 1), 0);
  assert_int_equal(add(p, "x.c", 5, "main", 4, 1.0, 0, 0, 1), 0);
  scalene_profile_info_t info = info_of(p);
  assert_float_equal(info.total_cpu_sec, 2 * 0.875 + 1.0, 1e-12);
  assert_float_equal(info.unattributed_cpu_sec, 2 * 0.875, 1e-12);
  assert_int_equal(info.cpu_samples, 4);
  assert_int_equal(scalene_profile_file_count(p), 1);

  double bad[SCALENE_CPU_KINDS] = {-1.0, 0, 0};
  assert_int_equal(scalene_profile_add_cpu(p, NULL, bad, 1), SCALENE_EINVAL);
  bad[0] = NAN;
  assert_int_equal(scalene_profile_add_cpu(p, NULL, bad, 1), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_add_cpu(p, NULL, NULL, 1), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_add_cpu(NULL, NULL, s, 1), SCALENE_EINVAL);
  info = info_of(p);
  assert_int_equal(info.cpu_samples, 4); /* nothing counted by the failures */

  /* A name filling its field without a NUL is cut, not overrun. */
  memset(&l, 0, sizeof l);
  memset(l.file, 'f', sizeof l.file);
  memset(l.function, 'g', sizeof l.function);
  l.line = 1;
  assert_int_equal(scalene_profile_add_cpu(p, &l, s, 1), 0);
  const scalene_file_stats_t *fs = scalene_profile_file(p, 0); /* "fff..." < "x.c" */
  assert_non_null(fs);
  assert_int_equal(strlen(fs->name), SCALENE_LOCATION_FILE_MAX - 1);
  assert_int_equal(strlen(scalene_profile_file_function(p, 0, 0)->function),
                   SCALENE_LOCATION_FUNCTION_MAX - 1);

  scalene_profile_info_t small;
  small.size = 0;
  assert_int_equal(scalene_profile_get_info(p, &small), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_get_info(NULL, &info), SCALENE_EINVAL);
  scalene_profile_free(p);
}

static void test_find_line(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  add(p, "/src/m.py", 7, "f", 6, 0.5, 0, 0, 1);
  const scalene_line_stats_t *r = scalene_profile_find_line(p, "/src/m.py", 7);
  assert_non_null(r);
  assert_int_equal(r->line, 7);
  assert_float_equal(r->cpu_sec[0], 0.5, 0);
  assert_null(scalene_profile_find_line(p, "/src/m.py", 8));
  assert_null(scalene_profile_find_line(p, "/src/other.py", 7));
  assert_null(scalene_profile_find_line(p, "f", 7)); /* an interned name, not a file */
  assert_null(scalene_profile_find_line(p, NULL, 7));
  scalene_profile_free(p);
}

static void test_program_and_elapsed(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  char arg1[] = "--n";
  const char *args[] = {"prog.py", arg1, "3"};
  assert_int_equal(scalene_profile_set_program(p, "/home/u/prog.py", 3, args), 0);
  arg1[0] = 'X'; /* copied */
  scalene_profile_set_elapsed(p, 2.5, 1700000000.25);
  scalene_profile_info_t info = info_of(p);
  assert_string_equal(info.program, "/home/u/prog.py");
  assert_int_equal(info.n_args, 3);
  assert_string_equal(info.args[1], "--n");
  assert_string_equal(info.args[2], "3");
  assert_float_equal(info.elapsed_sec, 2.5, 0);
  assert_float_equal(info.start_time_absolute, 1700000000.25, 0);
  assert_int_equal(scalene_profile_set_program(p, "x", 1, NULL), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_set_program(p, NULL, 0, NULL), 0);
  info = info_of(p);
  assert_string_equal(info.program, "");
  assert_int_equal(info.n_args, 0);
  scalene_profile_free(p);
}

static void test_merge(void **state) {
  (void)state;
  scalene_profile_t *a = scalene_profile_new(), *b = scalene_profile_new();
  const char *aa[] = {"parent"}, *ba[] = {"child", "x"};
  scalene_profile_set_program(a, "parent.py", 1, aa);
  scalene_profile_set_program(b, "child.py", 2, ba);
  scalene_profile_set_elapsed(a, 1.0, 200.0);
  scalene_profile_set_elapsed(b, 0.5, 100.0);
  add(a, "m.py", 4, "f", 3, 1.0, 0.5, 0, 2);
  add(b, "m.py", 4, "f", 3, 0.25, 0, 0.25, 1);
  add(b, "m.py", 9, "g", 8, 0.5, 0, 0, 1);
  add(b, "n.py", 1, "", 0, 0.125, 0, 0, 1);
  double s[SCALENE_CPU_KINDS] = {0, 0, 0.5};
  scalene_profile_add_cpu(b, NULL, s, 1);
  scalene_profile_set_source(b, "m.py", 9, "    return g()\n");

  assert_int_equal(scalene_profile_merge(a, b), 0);
  scalene_profile_info_t info = info_of(a);
  assert_string_equal(info.program, "parent.py");
  assert_int_equal(info.n_args, 1);
  assert_float_equal(info.elapsed_sec, 1.5, 1e-12);
  assert_float_equal(info.start_time_absolute, 100.0, 0);
  assert_float_equal(info.total_cpu_sec, 1.5 + 0.5 + 0.5 + 0.125 + 0.5, 1e-12);
  assert_float_equal(info.unattributed_cpu_sec, 0.5, 1e-12);
  assert_int_equal(info.cpu_samples, 6);
  assert_int_equal(scalene_profile_file_count(a), 2);
  const scalene_line_stats_t *r = scalene_profile_find_line(a, "m.py", 4);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_PYTHON], 1.25, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_NATIVE], 0.5, 1e-12);
  assert_float_equal(r->cpu_sec[SCALENE_CPU_SYSTEM], 0.25, 1e-12);
  assert_int_equal(r->cpu_samples, 3);
  r = scalene_profile_find_line(a, "m.py", 9);
  assert_string_equal(r->source, "    return g()");
  assert_string_equal(r->function, "g");
  const scalene_file_stats_t *m = scalene_profile_file(a, 0);
  assert_float_equal(m->cpu_sec[0] + m->cpu_sec[1] + m->cpu_sec[2], 2.5, 1e-12);
  assert_int_equal(m->n_functions, 2);
  r = scalene_profile_file_function(a, 0, 1);
  assert_string_equal(r->function, "g");
  assert_int_equal(r->line, 8);
  /* src is unchanged. */
  assert_float_equal(info_of(b).total_cpu_sec, 1.625, 1e-12);

  /* Merging a profile into itself doubles it. */
  assert_int_equal(scalene_profile_merge(b, b), 0);
  assert_float_equal(info_of(b).total_cpu_sec, 2 * 1.625, 1e-12);
  assert_float_equal(scalene_profile_find_line(b, "m.py", 9)->cpu_sec[0], 1.0, 1e-12);
  assert_int_equal(scalene_profile_file(b, 0)->cpu_samples, 4);
  assert_int_equal(scalene_profile_merge(a, NULL), SCALENE_EINVAL);
  scalene_profile_free(a);
  scalene_profile_free(b);
}

/* Child processes: their samples are added, the parent keeps its elapsed
 * and start time, and each process keeps its own totals. */
static void test_merge_child(void **state) {
  (void)state;
  scalene_profile_t *a = scalene_profile_new(), *b = scalene_profile_new(),
                    *c = scalene_profile_new();
  scalene_profile_set_program(a, "parent.py", 0, NULL);
  scalene_profile_set_program(b, "child.py", 0, NULL);
  scalene_profile_set_program(c, "grandchild.py", 0, NULL);
  scalene_profile_set_pid(a, 100);
  scalene_profile_set_pid(b, 101);
  scalene_profile_set_pid(c, 102);
  scalene_profile_set_elapsed(a, 2.0, 200.0);
  scalene_profile_set_elapsed(b, 0.5, 150.0);
  scalene_profile_set_elapsed(c, 0.25, 201.0);
  add(a, "m.py", 4, "f", 3, 1.0, 0.5, 0, 3);
  add(b, "m.py", 4, "f", 3, 0.25, 0, 0.25, 1);
  add(c, "m.py", 9, "g", 8, 0.125, 0, 0, 1);
  assert_int_equal(scalene_profile_process_count(a), 0);
  scalene_process_stats_t ps;
  assert_int_equal(scalene_profile_process(a, 0, &ps), SCALENE_EINVAL);

  assert_int_equal(scalene_profile_merge_child(b, c), 0); /* the child's own child */
  assert_int_equal(scalene_profile_merge_child(a, b), 0);
  assert_int_equal(scalene_profile_merge_child(a, a), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_merge_child(NULL, b), SCALENE_EINVAL);

  scalene_profile_info_t info = info_of(a);
  assert_float_equal(info.elapsed_sec, 2.0, 0);          /* the parent's */
  assert_float_equal(info.start_time_absolute, 200.0, 0);
  assert_float_equal(info.total_cpu_sec, 1.5 + 0.5 + 0.125, 1e-12);
  assert_int_equal(info.cpu_samples, 5);
  assert_float_equal(scalene_profile_find_line(a, "m.py", 4)->cpu_sec[0], 1.25, 1e-12);
  assert_non_null(scalene_profile_find_line(a, "m.py", 9));

  assert_int_equal(scalene_profile_process_count(a), 3);
  const long pids[] = {100, 101, 102};
  const char *progs[] = {"parent.py", "child.py", "grandchild.py"};
  const double cpu[] = {1.5, 0.5, 0.125}, elapsed[] = {2.0, 0.5, 0.25};
  const uint64_t samples[] = {3, 1, 1};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(scalene_profile_process(a, i, &ps), 0);
    assert_int_equal(ps.pid, pids[i]);
    assert_string_equal(ps.program, progs[i]);
    assert_float_equal(ps.total_cpu_sec, cpu[i], 1e-12);
    assert_float_equal(ps.elapsed_sec, elapsed[i], 0);
    assert_int_equal(ps.cpu_samples, samples[i]);
  }
  assert_int_equal(scalene_profile_process(a, 3, &ps), SCALENE_EINVAL);
  /* Strings outlive the children they came from. */
  scalene_profile_free(b);
  scalene_profile_free(c);
  assert_int_equal(scalene_profile_process(a, 2, &ps), 0);
  assert_string_equal(ps.program, "grandchild.py");
  scalene_profile_clear(a);
  assert_int_equal(scalene_profile_process_count(a), 0);
  scalene_profile_free(a);
}

static void test_clear(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_profile_set_program(p, "prog", 0, NULL);
  scalene_profile_set_elapsed(p, 3.0, 5.0);
  add(p, "a.py", 1, "f", 1, 1, 1, 1, 3);
  scalene_profile_clear(p);
  scalene_profile_info_t info = info_of(p);
  assert_string_equal(info.program, "prog");
  assert_float_equal(info.elapsed_sec, 3.0, 0);
  assert_float_equal(info.total_cpu_sec, 0, 0);
  assert_int_equal(info.cpu_samples, 0);
  assert_int_equal(scalene_profile_file_count(p), 0);
  assert_null(scalene_profile_find_line(p, "a.py", 1));
  /* Usable again. */
  assert_int_equal(add(p, "a.py", 2, "f", 1, 0.5, 0, 0, 1), 0);
  assert_int_equal(scalene_profile_file(p, 0)->n_lines, 1);
  assert_int_equal(scalene_profile_file(p, 0)->cpu_samples, 1);
  scalene_profile_free(p);
}

static void test_set_source(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  assert_int_equal(scalene_profile_set_source(p, "s.py", 4, "x = 1\n"), 0);
  const scalene_line_stats_t *r = scalene_profile_find_line(p, "s.py", 4);
  assert_non_null(r);
  assert_string_equal(r->source, "x = 1");
  assert_float_equal(r->cpu_sec[0] + r->cpu_sec[1] + r->cpu_sec[2], 0, 0);
  assert_int_equal(scalene_profile_file(p, 0)->n_lines, 1);
  assert_int_equal(scalene_profile_set_source(p, "s.py", 4, "y = 2\r\n"), 0);
  assert_string_equal(scalene_profile_find_line(p, "s.py", 4)->source, "y = 2");
  add(p, "s.py", 4, "", 0, 0.5, 0, 0, 1);
  r = scalene_profile_find_line(p, "s.py", 4);
  assert_string_equal(r->source, "y = 2");
  assert_float_equal(r->cpu_sec[0], 0.5, 0);
  assert_float_equal(info_of(p).total_cpu_sec, 0.5, 0);
  assert_int_equal(scalene_profile_set_source(p, "", 1, "x"), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_set_source(p, "s.py", 1, NULL), SCALENE_EINVAL);
  scalene_profile_free(p);
}

/* Four threads add at once; every sample must be counted exactly (the
 * weights are powers of two, so the sums are exact whatever the order). */
#define THREADS 4
#define ADDS 20000
#define STEP (1.0 / 1024)

static void *adder(void *arg) {
  scalene_profile_t *p = arg;
  for (int i = 0; i < ADDS; i++) {
    char file[16];
    snprintf(file, sizeof file, "f%d.py", i % 5);
    scalene_location_t l = loc(file, (uint32_t)(1 + i % 17), i % 2 ? "odd" : "even", 1);
    double s[SCALENE_CPU_KINDS] = {STEP, 0, 0};
    if (i % 10 == 0)
      scalene_profile_add_cpu(p, NULL, s, 1);
    else
      scalene_profile_add_cpu(p, &l, s, 1);
    if (i % 1000 == 0) {
      /* Readers interleave with the writers. */
      size_t n = scalene_profile_file_count(p);
      for (size_t f = 0; f < n; f++) (void)scalene_profile_file_line(p, f, 0);
    }
  }
  return NULL;
}

static void test_concurrent_adds(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, adder, p), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  scalene_profile_info_t info = info_of(p);
  assert_int_equal(info.cpu_samples, THREADS * ADDS);
  assert_float_equal(info.total_cpu_sec, THREADS * ADDS * STEP, 0);
  assert_float_equal(info.unattributed_cpu_sec, THREADS * (ADDS / 10) * STEP, 0);
  assert_int_equal(scalene_profile_file_count(p), 5);
  uint64_t lines = 0, samples = 0;
  for (size_t f = 0; f < 5; f++) {
    const scalene_file_stats_t *fs = scalene_profile_file(p, f);
    assert_int_equal(fs->n_lines, 17);
    /* f0.py gets only odd i (i % 10 == 0 is unattributed). */
    assert_int_equal(fs->n_functions, f == 0 ? 1 : 2);
    const scalene_line_stats_t *r;
    uint32_t prev = 0;
    for (size_t i = 0; (r = scalene_profile_file_line(p, f, i)) != NULL; i++) {
      assert_true(r->line > prev);
      prev = r->line;
      samples += r->cpu_samples;
      lines++;
    }
  }
  assert_int_equal(lines, 5 * 17);
  assert_int_equal(samples, THREADS * (ADDS - ADDS / 10));
  scalene_profile_free(p);
}

/* ------------------------------------------------------------ memory */

#define MiB 1048576.0

static int mem(scalene_profile_t *p, const char *file, uint32_t line, const char *fn,
               double alloc, double python, double freed, double copy, uint64_t samples,
               double t) {
  scalene_memory_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.size = sizeof ev;
  ev.alloc_bytes = alloc;
  ev.python_bytes = python;
  ev.freed_bytes = freed;
  ev.copy_bytes = copy;
  ev.alloc_samples = samples;
  ev.time_sec = t;
  if (file == NULL) return scalene_profile_add_memory(p, NULL, &ev);
  scalene_location_t l = loc(file, line, fn, fn[0] ? 1 : 0);
  return scalene_profile_add_memory(p, &l, &ev);
}

static void assert_sorted_bounded(size_t n, const double (*pts)[2], size_t cap) {
  assert_true(n <= cap);
  for (size_t i = 1; i < n; i++) assert_true(pts[i - 1][0] <= pts[i][0]);
}

static void test_memory_accounting(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  scalene_profile_info_t info = info_of(p);
  assert_int_equal(info.memory, 0);
  assert_int_equal(info.n_footprint_samples, 0);
  /* Line 3 allocates 10 MiB (4 of it Python), line 5 allocates 20 MiB;
   * then 6 MiB of line 3's blocks are freed (charged to line 3, where they
   * were allocated), and line 5 frees all of its 20. */
  assert_int_equal(mem(p, "m.py", 3, "f", 10 * MiB, 4 * MiB, 0, 0, 2, 0.5), 0);
  assert_int_equal(mem(p, "m.py", 5, "f", 20 * MiB, 0, 0, 0, 3, 1.0), 0);
  assert_int_equal(mem(p, "m.py", 3, "f", 0, 0, 6 * MiB, 0, 0, 1.5), 0);
  assert_int_equal(mem(p, "m.py", 5, "f", 0, 0, 20 * MiB, 0, 0, 2.0), 0);
  assert_int_equal(mem(p, "m.py", 7, "g", 0, 0, 0, 7 * MiB, 0, 2.5), 0); /* a copy */
  assert_int_equal(mem(p, NULL, 0, "", 1 * MiB, 0, 0, 0, 1, 3.0), 0);   /* unattributed */

  const scalene_line_stats_t *r = scalene_profile_find_line(p, "m.py", 3);
  assert_non_null(r);
  assert_float_equal(r->alloc_bytes, 10 * MiB, 0);
  assert_float_equal(r->python_bytes, 4 * MiB, 0);
  assert_float_equal(r->freed_bytes, 6 * MiB, 0);
  assert_float_equal(r->peak_bytes, 10 * MiB, 0);
  assert_int_equal(r->alloc_samples, 2);
  assert_int_equal(r->n_memory_samples, 2);
  assert_float_equal(r->memory_samples[0][0], 0.5, 1e-12);
  assert_float_equal(r->memory_samples[0][1], 10.0, 0);
  assert_float_equal(r->memory_samples[1][0], 1.5, 1e-12);
  assert_float_equal(r->memory_samples[1][1], 4.0, 0); /* live 10 - 6 */
  r = scalene_profile_find_line(p, "m.py", 5);
  assert_float_equal(r->peak_bytes, 20 * MiB, 0);
  assert_float_equal(r->freed_bytes, 20 * MiB, 0);
  assert_float_equal(r->memory_samples[r->n_memory_samples - 1][1], 0.0, 0);
  r = scalene_profile_find_line(p, "m.py", 7);
  assert_float_equal(r->copy_bytes, 7 * MiB, 0);
  assert_float_equal(r->alloc_bytes, 0, 0);
  assert_int_equal(r->n_memory_samples, 0); /* copies do not move live bytes */
  /* The function record has the same accounting. */
  const scalene_line_stats_t *fr = scalene_profile_file_function(p, 0, 0);
  assert_string_equal(fr->function, "f");
  assert_float_equal(fr->alloc_bytes, 30 * MiB, 0);
  assert_float_equal(fr->freed_bytes, 26 * MiB, 0);
  assert_float_equal(fr->peak_bytes, 30 * MiB, 0);
  assert_int_equal(fr->alloc_samples, 5);
  const scalene_file_stats_t *fs = scalene_profile_file(p, 0);
  assert_float_equal(fs->alloc_bytes, 30 * MiB, 0);
  assert_float_equal(fs->python_bytes, 4 * MiB, 0);
  assert_float_equal(fs->freed_bytes, 26 * MiB, 0);
  assert_float_equal(fs->copy_bytes, 7 * MiB, 0);

  info = info_of(p);
  assert_int_equal(info.memory, 1);
  assert_float_equal(info.alloc_bytes, 31 * MiB, 0);
  /* Process live: 10, 30 (peak, set at line 5), 24, 4, 4, 5. */
  assert_float_equal(info.max_footprint_bytes, 30 * MiB, 0);
  assert_string_equal(info.max_footprint_file, "m.py");
  assert_int_equal(info.max_footprint_line, 5);
  assert_int_equal(info.n_footprint_samples, 5);
  assert_float_equal(info.footprint_samples[1][1], 30.0, 0);
  assert_float_equal(info.footprint_samples[4][1], 5.0, 0);
  assert_float_equal(info.footprint_samples[4][0], 3.0, 1e-12);
  assert_sorted_bounded(info.n_footprint_samples, info.footprint_samples, 100);

  /* Frees beyond what was allocated floor the live bytes at 0. */
  assert_int_equal(mem(p, "m.py", 9, "", 1 * MiB, 0, 0, 0, 1, 4.0), 0);
  assert_int_equal(mem(p, "m.py", 9, "", 0, 0, 3 * MiB, 0, 0, 4.5), 0);
  r = scalene_profile_find_line(p, "m.py", 9);
  assert_float_equal(r->memory_samples[1][1], 0.0, 0);

  /* Invalid events. */
  scalene_memory_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.size = sizeof ev;
  ev.alloc_bytes = -1;
  assert_int_equal(scalene_profile_add_memory(p, NULL, &ev), SCALENE_EINVAL);
  ev.alloc_bytes = NAN;
  assert_int_equal(scalene_profile_add_memory(p, NULL, &ev), SCALENE_EINVAL);
  ev.alloc_bytes = 1;
  ev.size = 8;
  assert_int_equal(scalene_profile_add_memory(p, NULL, &ev), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_add_memory(p, NULL, NULL), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_add_memory(NULL, NULL, &ev), SCALENE_EINVAL);

  /* clear forgets memory. */
  scalene_profile_clear(p);
  info = info_of(p);
  assert_int_equal(info.memory, 0);
  assert_float_equal(info.alloc_bytes, 0, 0);
  assert_float_equal(info.max_footprint_bytes, 0, 0);
  assert_null(info.max_footprint_file);
  assert_int_equal(info.n_footprint_samples, 0);
  assert_null(scalene_profile_find_line(p, "m.py", 3));
  scalene_profile_free(p);
}

/* A peak reached by an unattributed allocation is credited to the last
 * attributed location that allocated, not to nowhere; with no attributed
 * allocation before it, the location stays unknown. */
static void test_footprint_location(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  assert_int_equal(mem(p, NULL, 0, "", 1 * MiB, 0, 0, 0, 1, 0.1), 0);
  scalene_profile_info_t info = info_of(p);
  assert_float_equal(info.max_footprint_bytes, 1 * MiB, 0);
  assert_null(info.max_footprint_file);
  assert_int_equal(mem(p, "a.py", 4, "f", 8 * MiB, 0, 0, 0, 1, 0.2), 0);
  assert_int_equal(mem(p, "a.py", 9, "f", 0, 0, 0, 3 * MiB, 0, 0.3), 0); /* a copy: no alloc */
  assert_int_equal(mem(p, NULL, 0, "", 2 * MiB, 0, 0, 0, 1, 0.4), 0);
  info = info_of(p);
  assert_float_equal(info.max_footprint_bytes, 11 * MiB, 0);
  assert_non_null(info.max_footprint_file);
  assert_string_equal(info.max_footprint_file, "a.py");
  assert_int_equal(info.max_footprint_line, 4);
  /* An attributed peak names its own line. */
  assert_int_equal(mem(p, "b.py", 2, "g", 5 * MiB, 0, 0, 0, 1, 0.5), 0);
  info = info_of(p);
  assert_string_equal(info.max_footprint_file, "b.py");
  assert_int_equal(info.max_footprint_line, 2);
  scalene_profile_clear(p);
  assert_int_equal(mem(p, NULL, 0, "", 1 * MiB, 0, 0, 0, 1, 0.1), 0);
  info = info_of(p);
  assert_null(info.max_footprint_file); /* clear forgets the last location too */
  scalene_profile_free(p);
}

static void test_memory_reservoir(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  /* 100 000 events, alternately allocating and freeing 1 MiB: both
   * timelines stay bounded and sorted, and their points spread over the
   * whole run (a uniform sample of 100 among 100 000 has its first point in
   * the first few percent and its last in the last few). */
  const int n = 100000;
  for (int i = 0; i < n; i++) {
    double t = 0.001 * i;
    if (i % 2 == 0)
      assert_int_equal(mem(p, "r.py", 1, "", MiB, 0, 0, 0, 1, t), 0);
    else
      assert_int_equal(mem(p, "r.py", 1, "", 0, 0, MiB, 0, 0, t), 0);
  }
  const scalene_line_stats_t *r = scalene_profile_find_line(p, "r.py", 1);
  assert_int_equal(r->n_memory_samples, 100);
  assert_sorted_bounded(r->n_memory_samples, r->memory_samples, 100);
  assert_true(r->memory_samples[0][0] >= 0);
  assert_true(r->memory_samples[0][0] < 0.1 * n * 0.001);
  assert_true(r->memory_samples[99][0] > 0.9 * n * 0.001);
  assert_true(r->memory_samples[99][0] <= (n - 1) * 0.001 + 1e-9);
  for (size_t i = 0; i < r->n_memory_samples; i++)
    assert_true(r->memory_samples[i][1] == 0.0 || r->memory_samples[i][1] == 1.0);
  assert_float_equal(r->peak_bytes, MiB, 0);
  assert_int_equal(r->alloc_samples, n / 2);
  scalene_profile_info_t info = info_of(p);
  assert_int_equal(info.n_footprint_samples, 100);
  assert_sorted_bounded(info.n_footprint_samples, info.footprint_samples, 100);
  assert_float_equal(info.max_footprint_bytes, MiB, 0);

  /* Deterministic: a second profile fed the same events keeps the same points. */
  scalene_profile_t *q = scalene_profile_new();
  for (int i = 0; i < n; i++)
    mem(q, "r.py", 1, "", i % 2 == 0 ? MiB : 0, 0, i % 2 ? MiB : 0, 0, 1, 0.001 * i);
  const scalene_line_stats_t *s = scalene_profile_find_line(q, "r.py", 1);
  assert_int_equal(s->n_memory_samples, r->n_memory_samples);
  assert_memory_equal(s->memory_samples, r->memory_samples, 100 * sizeof r->memory_samples[0]);
  scalene_profile_free(q);
  scalene_profile_free(p);
}

static void test_memory_merge(void **state) {
  (void)state;
  scalene_profile_t *a = scalene_profile_new(), *b = scalene_profile_new();
  mem(a, "m.py", 2, "f", 8 * MiB, 8 * MiB, 0, MiB, 1, 0.1);
  mem(a, "m.py", 2, "f", 0, 0, 2 * MiB, 0, 0, 0.2);
  for (int i = 0; i < 150; i++) mem(b, "m.py", 2, "f", MiB, 0, 0, 0, 1, 0.01 * i);
  mem(b, "n.py", 1, "", 64 * MiB, 0, 0, 0, 1, 2.0);
  assert_int_equal(scalene_profile_merge(a, b), 0);
  const scalene_line_stats_t *r = scalene_profile_find_line(a, "m.py", 2);
  assert_float_equal(r->alloc_bytes, 158 * MiB, 0);
  assert_float_equal(r->python_bytes, 8 * MiB, 0);
  assert_float_equal(r->freed_bytes, 2 * MiB, 0);
  assert_float_equal(r->copy_bytes, MiB, 0);
  assert_int_equal(r->alloc_samples, 151);
  assert_float_equal(r->peak_bytes, 156 * MiB, 0); /* at least the summed live bytes */
  assert_int_equal(r->n_memory_samples, 100);      /* 2 + 100, re-bounded */
  assert_sorted_bounded(r->n_memory_samples, r->memory_samples, 100);
  scalene_profile_info_t info = info_of(a);
  assert_int_equal(info.memory, 1);
  assert_float_equal(info.alloc_bytes, 222 * MiB, 0);
  assert_float_equal(info.max_footprint_bytes, 214 * MiB, 0); /* b's: 150 + 64 */
  assert_string_equal(info.max_footprint_file, "n.py");
  assert_int_equal(info.max_footprint_line, 1);
  assert_true(info.n_footprint_samples <= 100);
  assert_sorted_bounded(info.n_footprint_samples, info.footprint_samples, 100);
  const scalene_file_stats_t *fs = scalene_profile_file(a, 0);
  assert_string_equal(fs->name, "m.py");
  assert_float_equal(fs->alloc_bytes, 158 * MiB, 0);
  /* Merging a profile into itself doubles the sums, keeps the peak. */
  assert_int_equal(scalene_profile_merge(b, b), 0);
  info = info_of(b);
  assert_float_equal(info.alloc_bytes, 428 * MiB, 0);
  assert_float_equal(info.max_footprint_bytes, 214 * MiB, 0);
  r = scalene_profile_find_line(b, "n.py", 1);
  assert_float_equal(r->alloc_bytes, 128 * MiB, 0);
  scalene_profile_free(a);
  scalene_profile_free(b);
}

/* ------------------------------------------------------------ stacks */

static void stack_at(const scalene_profile_t *p, size_t i, const char **text, double sec[3],
                     uint64_t *samples) {
  assert_int_equal(scalene_profile_stack(p, i, text, sec, samples), 0);
}

#define STACK_FG "a.py f:1;a.py g:2;"
#define STACK_FH "a.py f:1;a.py h:3;"

static void test_stacks(void **state) {
  (void)state;
  scalene_profile_t *p = scalene_profile_new();
  assert_int_equal(scalene_profile_stack_count(p), 0);
  assert_int_equal(scalene_profile_stack(p, 0, NULL, NULL, NULL), SCALENE_EINVAL);
  double s1[3] = {0.5, 0.25, 0.125}, s2[3] = {1.0, 0.0, 0.0};
  /* Invalid: NULL, "", negative or non-finite seconds. */
  assert_int_equal(scalene_profile_add_stack(NULL, STACK_FG, s1, 1), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_add_stack(p, NULL, s1, 1), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_add_stack(p, "", s1, 1), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_add_stack(p, STACK_FG, NULL, 1), SCALENE_EINVAL);
  double bad[3] = {-1.0, 0, 0}, nan3[3] = {NAN, 0, 0};
  assert_int_equal(scalene_profile_add_stack(p, STACK_FG, bad, 1), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_add_stack(p, STACK_FG, nan3, 1), SCALENE_EINVAL);
  assert_int_equal(scalene_profile_stack_count(p), 0);

  /* Identical texts aggregate; entries keep the order of first adding.
   * The text is copied. */
  char buf[64];
  snprintf(buf, sizeof buf, "%s", STACK_FG);
  assert_int_equal(scalene_profile_add_stack(p, buf, s1, 1), 0);
  memset(buf, 'x', sizeof buf - 1);
  assert_int_equal(scalene_profile_add_stack(p, STACK_FH, s2, 2), 0);
  assert_int_equal(scalene_profile_add_stack(p, STACK_FG, s1, 3), 0);
  assert_int_equal(scalene_profile_stack_count(p), 2);
  const char *t;
  double sec[3];
  uint64_t n;
  stack_at(p, 0, &t, sec, &n);
  assert_string_equal(t, STACK_FG);
  assert_float_equal(sec[0], 1.0, 0);
  assert_float_equal(sec[1], 0.5, 0);
  assert_float_equal(sec[2], 0.25, 0);
  assert_int_equal(n, 4);
  stack_at(p, 1, &t, sec, &n);
  assert_string_equal(t, STACK_FH);
  assert_float_equal(sec[0], 1.0, 0);
  assert_int_equal(n, 2);
  assert_int_equal(scalene_profile_stack(p, 2, &t, sec, &n), SCALENE_EINVAL);
  /* Stacks are a view: the totals and line records do not move. */
  scalene_profile_info_t info = info_of(p);
  assert_float_equal(info.total_cpu_sec, 0.0, 0);
  assert_int_equal(info.cpu_samples, 0);
  assert_int_equal(scalene_profile_file_count(p), 0);

  /* Many distinct stacks: the index grows, every one is found again. */
  for (int i = 0; i < 300; i++) {
    snprintf(buf, sizeof buf, "b.py k%d:%d;", i, i + 1);
    assert_int_equal(scalene_profile_add_stack(p, buf, s2, 1), 0);
  }
  for (int i = 0; i < 300; i += 7) {
    snprintf(buf, sizeof buf, "b.py k%d:%d;", i, i + 1);
    assert_int_equal(scalene_profile_add_stack(p, buf, s2, 1), 0);
  }
  assert_int_equal(scalene_profile_stack_count(p), 302);
  stack_at(p, 2 + 7, &t, sec, &n);
  assert_string_equal(t, "b.py k7:8;");
  assert_int_equal(n, 2);
  stack_at(p, 2 + 8, &t, sec, &n);
  assert_int_equal(n, 1);

  /* Merge adds the tables: shared texts add up, new ones are appended. */
  scalene_profile_t *q = scalene_profile_new();
  assert_int_equal(scalene_profile_add_stack(q, "c.py z:9;", s1, 5), 0);
  assert_int_equal(scalene_profile_add_stack(q, STACK_FH, s1, 1), 0);
  assert_int_equal(scalene_profile_merge(q, p), 0);
  assert_int_equal(scalene_profile_stack_count(q), 303);
  stack_at(q, 0, &t, sec, &n);
  assert_string_equal(t, "c.py z:9;");
  assert_int_equal(n, 5);
  stack_at(q, 1, &t, sec, &n);
  assert_string_equal(t, STACK_FH);
  assert_float_equal(sec[0], 1.5, 0);
  assert_float_equal(sec[2], 0.125, 0);
  assert_int_equal(n, 3);
  stack_at(q, 2, &t, sec, &n);
  assert_string_equal(t, STACK_FG);
  assert_int_equal(n, 4);
  /* Into itself: every value doubles, no entry is added. */
  assert_int_equal(scalene_profile_merge(q, q), 0);
  assert_int_equal(scalene_profile_stack_count(q), 303);
  stack_at(q, 1, &t, sec, &n);
  assert_float_equal(sec[0], 3.0, 0);
  assert_int_equal(n, 6);
  /* merge_child too. */
  scalene_profile_t *c = scalene_profile_new();
  assert_int_equal(scalene_profile_add_stack(c, STACK_FG, s2, 1), 0);
  assert_int_equal(scalene_profile_add_stack(c, "d.py child:1;", s2, 1), 0);
  assert_int_equal(scalene_profile_merge_child(q, c), 0);
  assert_int_equal(scalene_profile_stack_count(q), 304);
  stack_at(q, 2, &t, sec, &n);
  assert_int_equal(n, 9);
  stack_at(q, 303, &t, sec, &n);
  assert_string_equal(t, "d.py child:1;");

  /* Clear empties the table; it fills again afterwards. */
  scalene_profile_clear(q);
  assert_int_equal(scalene_profile_stack_count(q), 0);
  assert_int_equal(scalene_profile_add_stack(q, STACK_FG, s1, 1), 0);
  assert_int_equal(scalene_profile_stack_count(q), 1);
  stack_at(q, 0, &t, sec, &n);
  assert_int_equal(n, 1);
  assert_float_equal(sec[0], 0.5, 0);
  scalene_profile_free(c);
  scalene_profile_free(q);
  scalene_profile_free(p);
}

/* Reads the whole file at path (NUL-terminated, malloc'ed). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&buf, &n);
  char chunk[4096];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, k, m);
  fclose(f);
  fclose(m);
  return buf;
}

static void spit(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* "stacks" in JSON: written as Scalene 2.x writes it (frames split after
 * each ';', fractions of all CPU time), read back exactly (our files carry
 * the seconds), a Scalene file's stacks load, malformed ones are
 * SCALENE_EFORMAT naming the member. */
static void test_stacks_json(void **state) {
  (void)state;
  char dir[] = "/tmp/test_stats_stacks.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], path2[128];
  snprintf(path, sizeof path, "%s/p.json", dir);
  snprintf(path2, sizeof path2, "%s/q.json", dir);

  /* Without stacks: "stacks": [] (Scalene always writes the member). */
  scalene_profile_t *p = scalene_profile_new();
  assert_int_equal(add(p, "a.py", 2, "g", 2, 0.6, 0.2, 0.0, 3), 0);
  assert_int_equal(add(p, "a.py", 3, "h", 3, 0.1, 0.0, 0.1, 1), 0);
  scalene_error_t err;
  assert_int_equal(scalene_output_write_json(p, path, NULL, &err), 0);
  char *text = slurp(path);
  assert_non_null(strstr(text, "\"stacks\": [],"));
  free(text);
  scalene_profile_t *r = NULL;
  assert_int_equal(scalene_output_read_json(path, &r, &err), 0);
  assert_int_equal(scalene_profile_stack_count(r), 0);
  scalene_profile_free(r);

  /* With stacks (total CPU 1.0 s). */
  double sg[3] = {0.6, 0.2, 0.0}, sh[3] = {0.1, 0.0, 0.1};
  assert_int_equal(scalene_profile_add_stack(p, STACK_FG, sg, 3), 0);
  assert_int_equal(scalene_profile_add_stack(p, STACK_FH, sh, 1), 0);
  assert_int_equal(scalene_output_write_json(p, path, NULL, &err), 0);
  text = slurp(path);
  assert_non_null(strstr(text, "\"stacks\": [\n"
                               "    [\n"
                               "      [\n"
                               "        \"a.py f:1;\",\n"
                               "        \"a.py g:2;\"\n"
                               "      ],\n"
                               "      {\n"
                               "        \"c_time\": 0.2,\n"
                               "        \"count\": 3,\n"
                               "        \"cpu_samples\": 0.8,\n"
                               "        \"n_cpu_sec_c\": 0.2,\n"
                               "        \"n_cpu_sec_python\": 0.6,\n"
                               "        \"n_sys_sec\": 0.0,\n"
                               "        \"python_time\": 0.6\n"
                               "      }\n"
                               "    ],\n"));
  free(text);
  assert_int_equal(scalene_output_read_json(path, &r, &err), 0);
  assert_int_equal(scalene_profile_stack_count(r), 2);
  const char *t;
  double sec[3];
  uint64_t n;
  stack_at(r, 0, &t, sec, &n);
  assert_string_equal(t, STACK_FG);
  assert_float_equal(sec[0], 0.6, 0);
  assert_float_equal(sec[1], 0.2, 0);
  assert_float_equal(sec[2], 0.0, 0);
  assert_int_equal(n, 3);
  stack_at(r, 1, &t, sec, &n);
  assert_string_equal(t, STACK_FH);
  assert_float_equal(sec[2], 0.1, 0);
  assert_int_equal(n, 1);
  /* Written again, the file is the same. */
  assert_int_equal(scalene_output_write_json(r, path2, NULL, &err), 0);
  char *a = slurp(path), *b = slurp(path2);
  assert_string_equal(a, b);
  free(a);
  free(b);
  scalene_profile_free(r);
  scalene_profile_free(p);

  /* Scalene's own: fractions of all CPU time (here elapsed_time_sec, 2 s),
   * no system time; frames without ';' get one; an empty stack is left out. */
  spit(path, "{\"elapsed_time_sec\": 2.0, \"files\": {}, \"stacks\": ["
             "[[\"/p.py <module>:9;\", \"/p.py main\"], {\"count\": 4, \"python_time\": 0.5,"
             " \"c_time\": 0.25, \"cpu_samples\": 0.9}],"
             "[[], {\"count\": 1, \"python_time\": 0.1, \"c_time\": 0.0, \"cpu_samples\": 0.1}]]}");
  assert_int_equal(scalene_output_read_json(path, &r, &err), 0);
  assert_int_equal(scalene_profile_stack_count(r), 1);
  stack_at(r, 0, &t, sec, &n);
  assert_string_equal(t, "/p.py <module>:9;/p.py main;");
  assert_float_equal(sec[0], 1.0, 1e-12);
  assert_float_equal(sec[1], 0.5, 1e-12);
  assert_float_equal(sec[2], 0.0, 0);
  assert_int_equal(n, 4);
  scalene_profile_free(r);
  /* The hand-written Scalene 2.x file of test_output. */
  assert_int_equal(scalene_output_read_json(SRCDIR "/tests/c/data/scalene-2.x.json", &r, &err), 0);
  assert_int_equal(scalene_profile_stack_count(r), 1);
  stack_at(r, 0, &t, sec, &n);
  assert_string_equal(t, "/home/user/prog.py main:3;");
  assert_int_equal(n, 2);
  scalene_profile_free(r);

  /* Malformed. */
  static const struct {
    const char *json, *msg;
  } bad[] = {
      {"{\"files\": {}, \"stacks\": {}}", "member \"stacks\" is not an array"},
      {"{\"files\": {}, \"stacks\": [1]}", "stacks[0] is not a [frames, stats] pair"},
      {"{\"files\": {}, \"stacks\": [[[\"a;\"]]]}", "stacks[0] is not a [frames, stats] pair"},
      {"{\"files\": {}, \"stacks\": [[[\"a;\"], {}], [[\"a;\", 3], {}]]}",
       "stacks[1] holds a frame that is not a string"},
      {"{\"files\": {}, \"stacks\": [[[\"a;\"], {\"count\": 1.5}]]}",
       "stacks[0].\"count\" is not an integer"},
      {"{\"files\": {}, \"stacks\": [[[\"a;\"], {\"python_time\": \"x\"}]]}",
       "stacks[0].\"python_time\" is not a number"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    spit(path, bad[i].json);
    r = (scalene_profile_t *)1;
    assert_int_equal(scalene_output_read_json(path, &r, &err), SCALENE_EFORMAT);
    assert_null(r);
    if (strstr(err.text, bad[i].msg) == NULL) fail_msg("%s: got \"%s\"", bad[i].msg, err.text);
  }
  unlink(path);
  unlink(path2);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_add_and_iterate),
      cmocka_unit_test(test_unattributed_and_invalid),
      cmocka_unit_test(test_find_line),
      cmocka_unit_test(test_program_and_elapsed),
      cmocka_unit_test(test_merge),
      cmocka_unit_test(test_merge_child),
      cmocka_unit_test(test_clear),
      cmocka_unit_test(test_set_source),
      cmocka_unit_test(test_concurrent_adds),
      cmocka_unit_test(test_memory_accounting),
      cmocka_unit_test(test_footprint_location),
      cmocka_unit_test(test_memory_reservoir),
      cmocka_unit_test(test_memory_merge),
      cmocka_unit_test(test_stacks),
      cmocka_unit_test(test_stacks_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
