/* For the C tests that fork while a sampler runs (test_heap.c,
 * test_memcpy.c): waits for a child, failing the test if it has not
 * exited within the timeout (it is then killed), and asserts that it
 * exited with status 0.  Include after <cmocka.h>. */
#ifndef SCALENE_TESTS_WAIT_CHILD_H
#define SCALENE_TESTS_WAIT_CHILD_H

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

static void wait_child_ok(pid_t pid, int timeout_ms) {
  int status = 0;
  pid_t w = 0;
  for (int waited = 0; waited < timeout_ms && w == 0; waited += 10) {
    w = waitpid(pid, &status, WNOHANG);
    if (w == 0) {
      struct timespec ts = {0, 10000000};
      nanosleep(&ts, NULL);
    }
  }
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg("the forked child hung");
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

#endif /* SCALENE_TESTS_WAIT_CHILD_H */
