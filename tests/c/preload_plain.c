/* preload_plain: an ordinary program that knows nothing of libscaleneprof,
 * profiled by test_preload through LD_PRELOAD=libscaleneprof-preload.so and
 * SCALENE_PRELOAD_OUTFILE.  Modes (argv[1]):
 *   work          spin() burns 0.3 s of CPU time, alloc_blocks() allocates
 *                 exactly 64 MiB in 64 KiB blocks and keeps them,
 *                 copy_blocks() copies exactly 256 MiB with memcpy in 16 MiB
 *                 pieces; prints "spin_cpu S" (the CPU seconds spin() used)
 *                 and exits 0
 *   status        prints two lines and exits with status 7
 *   fork PATH     forks; the child allocates, prints "child ok" and calls
 *                 exit(0); the parent waits, prints "child status N" and
 *                 "outfile_after_child N" (1 when PATH exists then: the
 *                 child must not write the profile), then does "work"
 *   thread-exit   a second thread does "work" and calls exit(0) while the
 *                 main thread waits in pthread_join */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (64 * 1024)
#define NBLOCKS 1024 /* 64 MiB */
static void *kept[NBLOCKS];

static inline __attribute__((always_inline)) double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) double spin(void) {
  double end = cpu_now() + 0.3;
  volatile double x = 1.0;
  while (cpu_now() < end)
    for (int i = 0; i < 100000; i++) x = x * 0.9999999 + 1e-7;
  return x;
}

__attribute__((noinline)) void alloc_blocks(void) {
  for (int i = 0; i < NBLOCKS; i++) {
    kept[i] = malloc(BLOCK);
    if (kept[i] == NULL) abort();
    memset(kept[i], 1, 64);
  }
}

#define COPY (16u << 20)
#define NCOPIES 16 /* 256 MiB */
static void *(*volatile copier)(void *, const void *, size_t) = memcpy;

/* memcpy through the PLT (the size is not known to the compiler, so the
 * call is not inlined). */
__attribute__((noinline)) void copy_blocks(size_t size) {
  char *a = malloc(size), *b = malloc(size);
  if (a == NULL || b == NULL) abort();
  memset(a, 3, size);
  for (int i = 0; i < NCOPIES; i++) memcpy(b, a, size);
  if (copier(a, b, 1) != a) abort();
  free(a);
  free(b);
}

static void work(void) {
  double t0 = cpu_now();
  double x = spin();
  double used = cpu_now() - t0;
  alloc_blocks();
  copy_blocks(COPY + (size_t)(x < 0)); /* x >= 0: exactly COPY */
  printf("spin_cpu %.6f (%g)\n", used, x > 0 ? 1.0 : 0.0);
  fflush(stdout);
}

static void *thread_main(void *arg) {
  (void)arg;
  work();
  exit(0);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "work";
  if (strcmp(mode, "work") == 0) {
    work();
    return 0;
  }
  if (strcmp(mode, "status") == 0) {
    char *s = strdup("some output");
    printf("%s\nexiting with 7\n", s);
    free(s);
    return 7;
  }
  if (strcmp(mode, "fork") == 0 && argc > 2) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
      void *p = malloc(1 << 20);
      memset(p, 2, 1 << 20);
      printf("child ok\n");
      exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return 3;
    printf("child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("outfile_after_child %d\n", access(argv[2], F_OK) == 0);
    work();
    return 0;
  }
  if (strcmp(mode, "thread-exit") == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0) return 4;
    pthread_join(t, NULL);
    return 5; /* not reached: the thread exits the process */
  }
  return 64;
}
