/* Tests of the LD_PRELOAD shim, libscaleneprof-preload.so (src/preload.c).
 *
 * Each test runs a victim program with posix_spawn, with
 * LD_PRELOAD=<builddir>/.libs/libscaleneprof-preload.so and LD_LIBRARY_PATH
 * at <builddir>/.libs, and checks what it printed, its exit status and the
 * profile it wrote.
 *
 * Bounds.  64 MiB allocated in n = 1024 blocks of s = 64 KiB with a mean of
 * R bytes between samples: each block is sampled with p = 1 - exp(-s/R) and
 * counts s/p, so the estimate has relative standard deviation
 * sigma = sqrt((1-p) / (n p)) (docs/sampling-math.md).  At R = 64 KiB,
 * p = 0.632 and sigma = 2.4 %; the tests accept 4 sigma (9.5 %).  The
 * memcpy sampler works the same way: 256 MiB copied in n = 16 copies of
 * 16 MiB at its default mean (4 MiB: p = 0.98, sigma = 3.4 %).
 *
 * Under AddressSanitizer the shim cannot be preloaded (libasan must come
 * first in the initial library list, and its malloc would win anyway): the
 * test is skipped (77). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <scalene/scalene.h>
#include <scalene/memcpy.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef BUILDDIR
#error BUILDDIR must name the build directory
#endif

extern char **environ;

#define SHIM BUILDDIR "/.libs/libscaleneprof-preload.so"
#define VICTIM BUILDDIR "/tests/c/preload_victim"
#define PLAIN BUILDDIR "/tests/c/preload_plain"
#define TRUTH (64.0 * 1024 * 1024)
#define BLOCK (64.0 * 1024)
#define WINDOW 65536.0

static char tmpdir[] = "/tmp/scalene-preload-XXXXXX";

/* 4 sigma of the estimate of `truth` bytes in blocks of `block` (see the
 * top of the file). */
/* The bound on |estimate - truth| for truth bytes in blocks of `block` at a
 * mean of `window` bytes between samples.  Each block is sampled with
 * p = 1 - exp(-block/window) and then counts block/p, so the estimate is
 * off by (misses - n(1-p)) * block/p.  4 sigma of the binomial is the bound
 * while misses are common; when p is near 1 they are rare events (Poisson,
 * mean n(1-p)) and a single one is worth many sigma (32 KiB blocks at 4 KiB:
 * one miss in 64 blocks, 2 % of runs, is 6.8 sigma), so the bound also
 * allows the most misses that happen more often than a 4-sigma event
 * (two-sided 6.3e-5). */
static double bound(double truth, double block, double window) {
  double n = truth / block, p = -expm1(-block / window);
  double gauss = 4.0 * truth * sqrt((1.0 - p) / (n * p));
  double lambda = n * (1.0 - p), term = exp(-lambda), cdf = term;
  int misses = 0;
  while (1.0 - cdf > 6.3e-5 && misses < 1000) {
    misses++;
    term *= lambda / misses;
    cdf += term;
  }
  double poisson = (misses - lambda) * block / p;
  return gauss > poisson ? gauss : poisson;
}

typedef struct run {
  int status; /* exit status, or 128 + signal */
  char out[8192];
  char err[8192];
} run_t;

static void slurp(const char *path, char *buf, size_t n) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t got = fread(buf, 1, n - 1, f);
  buf[got] = '\0';
  fclose(f);
}

/* Runs argv with the environment of this process less LD_PRELOAD and
 * SCALENE_PRELOAD_*, plus LD_LIBRARY_PATH, plus `env` (NULL-terminated
 * "NAME=value" strings); preload adds the shim. */
static void run(run_t *r, int preload, char *const argv[], const char *const env[]) {
  char *envp[512];
  size_t n = 0;
  static char ldpath[4096], ldpre[4096];
  const char *old = getenv("LD_LIBRARY_PATH");
  snprintf(ldpath, sizeof ldpath, "LD_LIBRARY_PATH=%s/.libs%s%s", BUILDDIR, old ? ":" : "",
           old ? old : "");
  snprintf(ldpre, sizeof ldpre, "LD_PRELOAD=%s", SHIM);
  for (char **e = environ; *e && n < 500; e++) {
    if (strncmp(*e, "LD_PRELOAD=", 11) == 0 || strncmp(*e, "LD_LIBRARY_PATH=", 16) == 0 ||
        strncmp(*e, "SCALENE_PRELOAD_", 16) == 0)
      continue;
    envp[n++] = *e;
  }
  envp[n++] = ldpath;
  if (preload) envp[n++] = ldpre;
  for (size_t i = 0; env && env[i] && n < 510; i++) envp[n++] = (char *)env[i];
  envp[n] = NULL;

  char outp[256], errp[256];
  snprintf(outp, sizeof outp, "%s/stdout", tmpdir);
  snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  assert_int_equal(rc, 0);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  slurp(outp, r->out, sizeof r->out);
  slurp(errp, r->err, sizeof r->err);
  if (r->err[0]) fprintf(stderr, "  [victim stderr] %s", r->err);
}

/* The number after "key " in the output; fails the test when missing. */
static double value_of(const run_t *r, const char *key) {
  char pat[128];
  snprintf(pat, sizeof pat, "%s ", key);
  const char *s = strstr(r->out, pat);
  if (!s) fail_msg("no '%s' in the victim's output:\n%s", key, r->out);
  return strtod(s + strlen(pat), NULL);
}

static void outfile(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", tmpdir, name);
  unlink(buf);
}

typedef struct fsum {
  double alloc_bytes, copy_bytes, cpu_sec;
  int found;
} fsum_t;

/* Sums the records of a function over the files of a profile. */
static fsum_t function_sum(const scalene_profile_t *p, const char *name) {
  fsum_t s = {0, 0, 0, 0};
  for (size_t f = 0; f < scalene_profile_file_count(p); f++) {
    const scalene_line_stats_t *fn;
    for (size_t j = 0; (fn = scalene_profile_file_function(p, f, j)) != NULL; j++) {
      if (strcmp(fn->function, name) != 0) continue;
      s.found = 1;
      s.alloc_bytes += fn->alloc_bytes;
      s.copy_bytes += fn->copy_bytes;
      s.cpu_sec += fn->cpu_sec[0] + fn->cpu_sec[1] + fn->cpu_sec[2];
    }
  }
  return s;
}

static scalene_profile_t *read_profile(const char *path) {
  scalene_profile_t *p = NULL;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  int rc = scalene_output_read_json(path, &p, &err);
  if (rc != 0) fail_msg("reading %s: %s: %s", path, scalene_err_name(rc), err.text);
  return p;
}

static void check_bytes(double est, double truth, double block, double window,
                        const char *what) {
  double b = bound(truth, block, window);
  printf("  %s: %.0f bytes estimated vs %.0f (4 sigma = %.0f)\n", what, est, truth, b);
  assert_true(fabs(est - truth) <= b);
}

static void check_alloc(double est, double window, const char *what) {
  check_bytes(est, TRUTH, BLOCK, window, what);
}

/* (a) A pointer to malloc taken before the heap sampler starts: with the
 * shim its calls are counted, and nothing is GOT-patched.  Without it
 * (the control), GOT patching runs and never sees them. */
static void test_early_pointer(void **state) {
  (void)state;
  run_t r;
  char *argv[] = {VICTIM, "65536", NULL};
  run(&r, 1, argv, NULL);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err, "");
  assert_int_equal((int)value_of(&r, "preload_active"), 1);
  assert_int_equal((int)value_of(&r, "hooked_objects"), 0);
  check_alloc(value_of(&r, "pointer_bytes"), WINDOW, "through the early pointer, preloaded");

  run(&r, 0, argv, NULL);
  assert_int_equal(r.status, 0);
  assert_int_equal((int)value_of(&r, "preload_active"), 0);
  assert_true(value_of(&r, "hooked_objects") > 0);
  printf("  without the shim: %.0f bytes seen through the early pointer\n",
         value_of(&r, "pointer_bytes"));
  assert_true(value_of(&r, "pointer_bytes") == 0.0);
}

/* Every function of the family, through the shim: each function's bytes
 * (64 blocks of 64 KiB, at a mean of 4 KiB: p = 1 - exp(-16), so sigma is
 * about 4e-5) within 4 sigma, all freed again, and malloc_usable_size
 * answering for every block. */
static void test_family(void **state) {
  (void)state;
  run_t r;
  char *argv[] = {VICTIM, "4096", "family", NULL};
  run(&r, 1, argv, NULL);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err, "");
  assert_int_equal((int)value_of(&r, "hooked_objects"), 0);
  assert_int_equal((int)value_of(&r, "usable_ok"), 1);
  static const char *const names[] = {"by_malloc", "by_calloc", "by_realloc",
                                      "by_reallocarray", "by_posix_memalign",
                                      "by_aligned_alloc", "by_memalign", "by_valloc",
                                      "by_pvalloc", "grow_source"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    char key[64];
    snprintf(key, sizeof key, "fn %s alloc", names[k]);
    double alloc = value_of(&r, key);
    const char *s = strstr(r.out, key);
    const char *fr = strstr(s, "freed ");
    assert_non_null(fr);
    double freed = strtod(fr + 6, NULL);
    /* grow_source makes the 32 KiB blocks that by_realloc grows. */
    double block = k == 9 ? BLOCK / 2 : BLOCK;
    check_bytes(alloc, 64 * block, block, 4096.0, names[k]);
    assert_true(fabs(freed - alloc) <= 1.0);
  }
}

/* Checks a standalone profile of preload_plain's work(). */
static void check_profile(const char *path, const run_t *r) {
  scalene_profile_t *p = read_profile(path);
  fsum_t a = function_sum(p, "alloc_blocks"), s = function_sum(p, "spin");
  fsum_t c = function_sum(p, "copy_blocks");
  assert_true(a.found);
  check_alloc(a.alloc_bytes, WINDOW, "alloc_blocks in the standalone profile");
  scalene_memcpy_options_t mo;
  scalene_memcpy_options_init(&mo); /* the shim uses the default mean */
  assert_true(c.found);
  check_bytes(c.copy_bytes, 256.0 * 1024 * 1024, 16.0 * 1024 * 1024, (double)mo.sampling_bytes,
              "copy_blocks' memcpy in the standalone profile");
  double spin_cpu = value_of(r, "spin_cpu");
  printf("  spin: %.3f s CPU sampled of %.3f s used\n", s.cpu_sec, spin_cpu);
  assert_true(s.found);
  /* Sampling charges the CPU time each thread used; half of the truth
   * allows for the samples at the edges and in unresolved frames. */
  assert_true(s.cpu_sec >= 0.5 * spin_cpu);
  scalene_profile_info_t info;
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  assert_int_equal(scalene_profile_get_info(p, &info), 0);
  assert_true(info.alloc_bytes >= a.alloc_bytes);
  scalene_profile_free(p);
}

/* (b) An unmodified program profiled from outside. */
static void test_standalone(void **state) {
  (void)state;
  char path[256], envo[300];
  outfile(path, sizeof path, "work.json");
  snprintf(envo, sizeof envo, "SCALENE_PRELOAD_OUTFILE=%s", path);
  const char *env[] = {envo, "SCALENE_PRELOAD_INTERVAL=0.005",
                       "SCALENE_PRELOAD_SAMPLING_WINDOW=65536", NULL};
  char *argv[] = {PLAIN, "work", NULL};
  run_t r;
  run(&r, 1, argv, env);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err, "");
  check_profile(path, &r);
}

/* (c) A bad value: one line on stderr, and the program runs as it would
 * without the shim (same output, same exit status), unprofiled. */
static void test_bad_values(void **state) {
  (void)state;
  char path[256], envo[300];
  outfile(path, sizeof path, "bad.json");
  snprintf(envo, sizeof envo, "SCALENE_PRELOAD_OUTFILE=%s", path);
  char *argv[] = {PLAIN, "status", NULL};
  run_t plain;
  run(&plain, 0, argv, NULL);
  assert_int_equal(plain.status, 7);
  static const char *const bad[] = {
      "SCALENE_PRELOAD_INTERVAL=abc",          "SCALENE_PRELOAD_INTERVAL=0",
      "SCALENE_PRELOAD_INTERVAL=-1",           "SCALENE_PRELOAD_INTERVAL=nan",
      "SCALENE_PRELOAD_INTERVAL=0.01s",        "SCALENE_PRELOAD_SAMPLING_WINDOW=-5",
      "SCALENE_PRELOAD_SAMPLING_WINDOW=0",     "SCALENE_PRELOAD_SAMPLING_WINDOW=1MB",
      "SCALENE_PRELOAD_SAMPLING_WINDOW=99999999999999999999999",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *env[] = {envo, bad[i], NULL};
    run_t r;
    run(&r, 1, argv, env);
    assert_int_equal(r.status, plain.status);
    assert_string_equal(r.out, plain.out);
    assert_true(strncmp(r.err, "scalene-preload: ", 17) == 0);
    char *nl = strchr(r.err, '\n');
    assert_non_null(nl);
    assert_true(nl[1] == '\0'); /* exactly one line */
    assert_int_equal(access(path, F_OK), -1);
  }
  /* Preloaded without SCALENE_PRELOAD_OUTFILE: silent, unprofiled. */
  run_t r;
  run(&r, 1, argv, NULL);
  assert_int_equal(r.status, 7);
  assert_string_equal(r.out, plain.out);
  assert_string_equal(r.err, "");
}

/* (d) A child that exits does not write (or spoil) the profile; the parent
 * goes on and writes it at its own exit. */
static void test_fork(void **state) {
  (void)state;
  char path[256], envo[300];
  outfile(path, sizeof path, "fork.json");
  snprintf(envo, sizeof envo, "SCALENE_PRELOAD_OUTFILE=%s", path);
  const char *env[] = {envo, "SCALENE_PRELOAD_INTERVAL=0.005",
                       "SCALENE_PRELOAD_SAMPLING_WINDOW=65536", NULL};
  char *argv[] = {PLAIN, "fork", path, NULL};
  run_t r;
  run(&r, 1, argv, env);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err, "");
  assert_non_null(strstr(r.out, "child ok\n"));
  assert_int_equal((int)value_of(&r, "child status"), 0);
  assert_int_equal((int)value_of(&r, "outfile_after_child"), 0);
  check_profile(path, &r);
}

/* exit() called by a thread other than the main one still writes the
 * profile. */
static void test_thread_exit(void **state) {
  (void)state;
  char path[256], envo[300];
  outfile(path, sizeof path, "thread.json");
  snprintf(envo, sizeof envo, "SCALENE_PRELOAD_OUTFILE=%s", path);
  const char *env[] = {envo, "SCALENE_PRELOAD_INTERVAL=0.005",
                       "SCALENE_PRELOAD_SAMPLING_WINDOW=65536", NULL};
  char *argv[] = {PLAIN, "thread-exit", NULL};
  run_t r;
  run(&r, 1, argv, env);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err, "");
  check_profile(path, &r);
}

static int cleanup(void **state) {
  (void)state;
  static const char *const names[] = {"stdout", "stderr", "work.json", "bad.json",
                                      "fork.json", "thread.json"};
  char path[256];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
    unlink(path);
  }
  rmdir(tmpdir);
  return 0;
}

int main(void) {
#ifdef UNDER_ASAN
  printf("test_preload: skipped under AddressSanitizer (the shim cannot be preloaded before "
         "libasan)\n");
  return 77;
#endif
  setvbuf(stdout, NULL, _IONBF, 0);
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_early_pointer),
      cmocka_unit_test(test_family),
      cmocka_unit_test(test_standalone),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_fork),
      cmocka_unit_test(test_thread_exit),
  };
  return cmocka_run_group_tests(tests, NULL, cleanup);
}
