/* scalene._core: the SIGTERM guard.  A Python-level SIGTERM handler of
 * ours (the runner's, which saves the profile, and every profiled child's)
 * must run even when the signal lands just before the main thread blocks.
 *
 * Why.  CPython's C handler only sets a flag; the Python handler runs when
 * the main thread next checks it, between two bytecodes or after a system
 * call fails with EINTR.  A signal taken just before a blocking call (during
 * SemLock.acquire's sem_trywait, or between it and sem_wait) sets the flag,
 * and the wait that follows blocks without EINTR: the handler never runs.
 * Without the profiler SIGTERM's default action kills the process wherever
 * it is, and multiprocessing's Pool.terminate() relies on that: with our
 * handler in a worker it joined that worker forever (about one run in 50 of
 * a forkserver Pool).
 *
 * What.  TERM_HANDLER replaces CPython's C handler for SIGTERM and calls it
 * first (the flag, the wakeup fd: everything as before).  Then, in the
 * process that installed the guard and until the Python handler has started
 * (_term_taken), it arms a one-shot timer, unless it is armed, that sends
 * SIGTERM again to the main thread 50 ms later (SIGEV_THREAD_ID).  That
 * SIGTERM interrupts a blocking call with EINTR, CPython checks its flag,
 * the Python handler runs; or it comes back here and arms the timer again.
 * Once the grace has passed since the first SIGTERM (the main thread blocked
 * in native code that retries on EINTR, or busy in a long native call), the
 * guard gives up: SIGTERM's disposition becomes SIG_DFL, the note (if any)
 * goes to stderr, and the process dies of SIGTERM as it would without the
 * profiler, without a saved profile.
 *
 * Limits.  The timer is one-shot so that the resends end with our handler:
 * a program that installs its own SIGTERM handler replaces ours and gets no
 * resends.  A handler that chains to ours (faulthandler.register(SIGTERM,
 * chain=True)) sees each resend.  While the main thread blocks SIGTERM the
 * resends stay pending and the grace is not enforced.
 *
 * TERM_HANDLER RUNS INSIDE A SIGNAL HANDLER, on any thread: async-signal-
 * safe, allocation-free and lock-free.  It calls only CPython's handler
 * (itself async-signal-safe), getpid(2), clock_gettime(2), timer_gettime(2),
 * timer_settime(2), sigaction(2), poll(2), write(2) and raise(3); errno is
 * saved and restored.  The state it reads is written before it is
 * installed, or is atomic (lock-free). */
#include "_core_term.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TERM_RESEND_NS 50000000L /* 50 ms between two SIGTERMs to the main thread */
#define TERM_NOTE_WAIT_MS 100     /* how long the note may wait for stderr */

static struct sigaction term_prev; /* CPython's handler, which ours calls */
static struct sigaction term_dfl;  /* SIG_DFL, made by _term_guard */
static atomic_int term_pid;        /* the guarded process, or 0 */
static atomic_int term_taken;      /* the Python handler has started */
static atomic_int term_gave_up;    /* the grace has passed */
static atomic_llong term_deadline; /* CLOCK_MONOTONIC ns: the first SIGTERM + grace; 0 before */
static long long term_grace_ns;
static char term_note[512];        /* written to stderr when it gives up */
static size_t term_note_len;
static timer_t term_timer;
static int term_has_timer;         /* term_timer exists in process term_owner */
static pid_t term_owner;

static long long term_now(void)
{
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0;
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The note, if stderr takes it within TERM_NOTE_WAIT_MS: a full pipe or a
 * paused terminal must not keep the process from dying. */
static void term_write_note(void)
{
  for (size_t o = 0; o < term_note_len;) {
    struct pollfd pfd = {STDERR_FILENO, POLLOUT, 0};
    int r = poll(&pfd, 1, TERM_NOTE_WAIT_MS);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0 || !(pfd.revents & POLLOUT))
      return;
    ssize_t w = write(STDERR_FILENO, term_note + o, term_note_len - o);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    o += (size_t)w;
  }
}

/* The grace has passed: SIGTERM kills as SIG_DFL would.  Not in a pid
 * namespace's init (pid 1), which SIG_DFL SIGTERM does not kill: there
 * the resends only stop, and the Python handler runs when it can. */
static void term_give_up(int signum)
{
  if (atomic_exchange(&term_gave_up, 1) || getpid() == 1)
    return;
  (void)sigaction(signum, &term_dfl, NULL);
  term_write_note();
  (void)raise(signum); /* blocked here: delivered when we return */
}

static void term_handler(int signum, siginfo_t *si, void *uc)
{
  int saved_errno = errno;
  const struct sigaction *prev = &term_prev; /* no struct copy: no memcpy call */
  if (prev->sa_flags & SA_SIGINFO)
    prev->sa_sigaction(signum, si, uc);
  else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN)
    prev->sa_handler(signum);
  if (atomic_load(&term_pid) == getpid() && !atomic_load(&term_taken) &&
      !atomic_load(&term_gave_up)) {
    long long now = term_now();
    long long deadline = 0;
    if (atomic_compare_exchange_strong(&term_deadline, &deadline, now + term_grace_ns))
      deadline = now + term_grace_ns; /* the first SIGTERM */
    if (now >= deadline) {
      term_give_up(signum);
    } else {
      /* Arm the resend unless it is armed: SIGTERMs from elsewhere do not
       * put it off. */
      struct itimerspec cur;
      if (timer_gettime(term_timer, &cur) == 0 && cur.it_value.tv_sec == 0 &&
          cur.it_value.tv_nsec == 0) {
        struct itimerspec its = {{0, 0}, {0, TERM_RESEND_NS}};
        (void)timer_settime(term_timer, 0, &its, NULL);
      }
    }
  }
  errno = saved_errno;
}

static int term_is_ours(const struct sigaction *sa)
{
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == term_handler;
}

static void term_drop_timer(void)
{
  if (term_has_timer && term_owner == getpid())
    (void)timer_delete(term_timer);
  term_has_timer = 0; /* a fork()ed child has none: timers are not inherited */
}

const char core_term_guard_doc[] =
    "_term_guard(grace, note=None)\n--\n\n"
    "Guard the Python-level SIGTERM handler just installed (signal.signal):\n"
    "until _term_taken() is called, each SIGTERM is sent again to the calling\n"
    "(main) thread 50 ms later, so that a blocking call there returns with\n"
    "EINTR and the handler runs; after grace seconds of that, SIGTERM kills the\n"
    "process by its default action, after writing note (str, at most 511\n"
    "bytes of UTF-8) to stderr.  Call it again after signal.signal\n"
    "replaces the handler (a fork()ed child).  Raises ValueError when SIGTERM\n"
    "has no handler or grace is not a number >= 0, OSError when the timer\n"
    "cannot be made.";

PyObject *core_term_guard(PyObject *Py_UNUSED(module), PyObject *args)
{
  double grace;
  const char *note = NULL;
  Py_ssize_t note_len = 0;
  if (!PyArg_ParseTuple(args, "d|z#:_term_guard", &grace, &note, &note_len))
    return NULL;
  if (note_len >= (Py_ssize_t)sizeof term_note) {
    PyErr_SetString(PyExc_ValueError, "note is too long");
    return NULL;
  }
  if (!(grace >= 0.0 && grace <= 3600.0)) {
    PyErr_SetString(PyExc_ValueError, "grace must be between 0 and 3600 seconds");
    return NULL;
  }
  struct sigaction cur;
  if (sigaction(SIGTERM, NULL, &cur) != 0)
    return PyErr_SetFromErrno(PyExc_OSError);
  int ours = term_is_ours(&cur);
  if (!ours && !(cur.sa_flags & SA_SIGINFO) &&
      (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN)) {
    PyErr_SetString(PyExc_ValueError, "SIGTERM has no handler to guard");
    return NULL;
  }
  /* Unguarded while we change it; a fork()ed child inherits our handler
   * with term_pid its parent's, which makes it call CPython's only. */
  atomic_store(&term_pid, 0);
  term_drop_timer();
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGTERM;
#ifdef sigev_notify_thread_id
  sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
#else
  sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
#endif
  if (timer_create(CLOCK_MONOTONIC, &sev, &term_timer) != 0)
    return PyErr_SetFromErrno(PyExc_OSError);
  term_has_timer = 1;
  term_owner = getpid();
  for (Py_ssize_t i = 0; i < note_len; i++)
    term_note[i] = note[i];
  term_note_len = (size_t)note_len;
  term_grace_ns = (long long)(grace * 1e9);
  memset(&term_dfl, 0, sizeof term_dfl);
  term_dfl.sa_handler = SIG_DFL;
  sigemptyset(&term_dfl.sa_mask);
  if (!ours)
    term_prev = cur; /* ours is not installed: no reader */
  atomic_store(&term_taken, 0);
  atomic_store(&term_gave_up, 0);
  atomic_store(&term_deadline, 0);
  atomic_store(&term_pid, (int)getpid());
  if (!ours) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = term_handler;
    sa.sa_mask = cur.sa_mask;
    sa.sa_flags = (cur.sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
    if (sigaction(SIGTERM, &sa, NULL) != 0) {
      int e = errno;
      atomic_store(&term_pid, 0);
      term_drop_timer();
      errno = e;
      return PyErr_SetFromErrno(PyExc_OSError);
    }
  }
  Py_RETURN_NONE;
}

const char core_term_taken_doc[] =
    "_term_taken()\n--\n\n"
    "The guarded Python-level SIGTERM handler has started: no more resends,\n"
    "however long it takes.  The first thing that handler does.";

PyObject *core_term_taken(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
  atomic_store(&term_taken, 1);
  if (term_has_timer && term_owner == getpid()) {
    struct itimerspec off;
    memset(&off, 0, sizeof off);
    (void)timer_settime(term_timer, 0, &off, NULL);
  }
  Py_RETURN_NONE;
}

const char core_term_unguard_doc[] =
    "_term_unguard()\n--\n\n"
    "Undo _term_guard: CPython's handler is put back where ours is still the\n"
    "one installed, and the timer goes.  Idempotent.";

PyObject *core_term_unguard(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
  atomic_store(&term_pid, 0);
  struct sigaction cur;
  if (sigaction(SIGTERM, NULL, &cur) == 0 && term_is_ours(&cur))
    (void)sigaction(SIGTERM, &term_prev, NULL);
  term_drop_timer();
  Py_RETURN_NONE;
}
