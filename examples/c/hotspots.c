/* hotspots: a C program that profiles its own hot functions with
 * libscaleneprof.
 *
 * Build (see Makefile.example):
 *   cc -g -O1 -fno-omit-frame-pointer -rdynamic hotspots.c \
 *      $(pkg-config --cflags --libs scaleneprof)
 *
 * The locator runs in the sampler's signal handler on the interrupted
 * thread.  It names no file itself: it returns a code address of this
 * program (loc->pc, file ""), which the sampler symbolises when it drains
 * its buffers -- the function through dladdr (hence -rdynamic) and the file
 * and line through libdw when the library has it (hence -g).
 *
 * Three functions burn 3, 2 and 1 units of their thread's CPU time; the
 * program writes hotspots.json, prints the table, and then one line per
 * function, "function share%", after a line "== hotspots ==". */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <scalene/scalene.h>

/* The bounds of this program's code, from the linker. */
extern char __executable_start[], etext[];

static int in_program(uintptr_t a) {
  return a >= (uintptr_t)__executable_start && a < (uintptr_t)etext;
}

/* Where the thread is, as an address inside this program.
 *
 * An interrupted pc inside the program is the answer.  Otherwise the thread
 * is in a library (libc, the vDSO) called from the program.  Those are built
 * without frame pointers, so fp still holds the *caller's* frame, whose
 * return address leads one level too far out; but their short routines keep
 * the return address into the program within a few words of sp, so the
 * first word of the 32 above sp that points into the program's code is
 * taken.  Failing that, follow the frame-pointer chain (each frame: saved
 * fp, then the return address) to the first return address inside the
 * program.  A return address points after the call, so pc - 1 is used to
 * stay on the calling line.  All memory is read with scalene_safe_read: the
 * handler must not fault.  Async-signal-safe. */
static int locate(const scalene_sample_context_t *ctx, scalene_location_t *loc, void *arg) {
  (void)arg;
  if (ctx->remote) return SCALENE_LOCATE_SKIP; /* no off-CPU sampling here */
  if (in_program(ctx->pc)) {
    loc->pc = ctx->pc;
    return SCALENE_LOCATE_FOUND;
  }
  uintptr_t words[32];
  if (ctx->sp != 0 && scalene_safe_read(words, (const void *)ctx->sp, sizeof words) == 0) {
    for (int i = 0; i < 32; i++) {
      if (in_program(words[i])) {
        loc->pc = words[i] - 1;
        return SCALENE_LOCATE_FOUND;
      }
    }
  }
  uintptr_t fp = ctx->fp;
  for (int depth = 0; depth < 64 && fp != 0; depth++) {
    uintptr_t frame[2]; /* saved fp, return address */
    if (scalene_safe_read(frame, (const void *)fp, sizeof frame) != 0) break;
    if (in_program(frame[1])) {
      loc->pc = frame[1] - 1;
      return SCALENE_LOCATE_FOUND;
    }
    if (frame[0] <= fp) break; /* callers' frames lie at higher addresses */
    fp = frame[0];
  }
  return SCALENE_LOCATE_UNATTRIBUTED;
}

/* ------------------------------------------------------------ the work */

/* One unit of work is UNIT_NS of this thread's CPU time, so the truth is
 * 3:2:1 however loaded the machine is. */
#define UNIT_NS 300000000ull

/* Inlined, so that the time spent reading the clock counts to its caller. */
static inline __attribute__((always_inline)) uint64_t cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Each hot function has its own loop (no shared helper that would take the
 * samples); the clock is read every ~10^5 iterations. */
__attribute__((noinline)) double heavy(void) {
  uint64_t end = cpu_now() + 3 * UNIT_NS;
  volatile double x = 1.0;
  while (cpu_now() < end)
    for (int i = 0; i < 100000; i++) x = x * 0.9999999 + 1e-7;
  return x;
}

__attribute__((noinline)) double medium(void) {
  uint64_t end = cpu_now() + 2 * UNIT_NS;
  volatile double x = 1.0;
  while (cpu_now() < end)
    for (int i = 0; i < 100000; i++) x = x * 0.9999999 + 1e-7;
  return x;
}

__attribute__((noinline)) double light(void) {
  uint64_t end = cpu_now() + 1 * UNIT_NS;
  volatile double x = 1.0;
  while (cpu_now() < end)
    for (int i = 0; i < 100000; i++) x = x * 0.9999999 + 1e-7;
  return x;
}

/* ------------------------------------------------------------ main */

static double now_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  scalene_profile_t *p = scalene_profile_new();
  if (p == NULL) return 1;
  scalene_profile_set_program(p, argv[0], argc - 1, (const char *const *)argv + 1);

  scalene_sampler_options_t opts;
  scalene_sampler_options_init(&opts);
  opts.interval_ns = 5000000; /* 5 ms of CPU time between samples */
  opts.locator = locate;

  scalene_sampler_t *s = NULL;
  scalene_error_t err;
  int rc = scalene_sampler_new(&opts, p, &s, &err);
  if (rc == 0) rc = scalene_sampler_start(s, &err);
  if (rc != 0) {
    fprintf(stderr, "hotspots: %s: %s\n", scalene_err_name(rc), err.text);
    return 1;
  }
  double t0 = now_wall();
  double sum = heavy() + medium() + light();
  scalene_sampler_stop(s);
  scalene_profile_set_elapsed(p, now_wall() - t0, (double)time(NULL));

  rc = scalene_output_write_json(p, "hotspots.json", NULL, &err);
  if (rc != 0) fprintf(stderr, "hotspots: writing hotspots.json: %s\n", err.text);
  scalene_output_text(p, stdout, NULL);

  /* Per function, its share of all CPU time sampled. */
  static const char *const names[] = {"heavy", "medium", "light"};
  double sec[3] = {0, 0, 0};
  for (size_t f = 0; f < scalene_profile_file_count(p); f++) {
    const scalene_line_stats_t *fn;
    for (size_t j = 0; (fn = scalene_profile_file_function(p, f, j)) != NULL; j++)
      for (int k = 0; k < 3; k++)
        if (strcmp(fn->function, names[k]) == 0)
          sec[k] += fn->cpu_sec[0] + fn->cpu_sec[1] + fn->cpu_sec[2];
  }
  scalene_profile_info_t info;
  memset(&info, 0, sizeof info);
  info.size = sizeof info;
  scalene_profile_get_info(p, &info);
  scalene_sampler_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  scalene_sampler_get_stats(s, &st);
  printf("== hotspots == (%llu samples, %.3f s CPU, checksum %.3f)\n",
         (unsigned long long)st.samples, info.total_cpu_sec, sum);
  for (int k = 0; k < 3; k++)
    printf("%s %.1f%%\n", names[k],
           info.total_cpu_sec > 0 ? 100.0 * sec[k] / info.total_cpu_sec : 0.0);

  scalene_sampler_free(s);
  scalene_profile_free(p);
  return 0;
}
