/* scalene._core: one line on stderr when the profiled program dies of a
 * fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT), saying which
 * profile is left; then the process dies of that same signal, as it would
 * without the profiler.
 *
 * FAULT_HANDLER AND EVERYTHING IT CALLS RUN INSIDE A SIGNAL HANDLER, on any
 * thread, in a process that may be corrupt: async-signal-safe, allocation-
 * free and lock-free.  It calls only write(2), getpid(2), sigaction(2),
 * raise(3) and the previous handler; it reads the note that Python
 * preformatted (fault_note) through a sequence lock and copies bytes with
 * volatile loads (no memcpy: the copy sampler may have patched it).  errno
 * is saved and restored.
 *
 * Chaining.  The handler remembers the disposition it replaced (Python's
 * faulthandler when it is on, else usually SIG_DFL).  On a signal it writes
 * the note (once per process: the first thread to fault), then
 *   - if the previous disposition is a handler: reinstalls it and calls it,
 *     so that it runs as it would have without us (faulthandler dumps the
 *     tracebacks, restores SIG_DFL and re-raises);
 *   - else: installs SIG_DFL and re-raises the signal, which stays pending
 *     until the handler returns and then kills the process; a hardware
 *     fault would also fault again at the same instruction.
 * A signal sent by kill() while the previous disposition was SIG_IGN is
 * ignored, without a note.  A handler a program installs later replaces
 * ours; if it chains back to us (faulthandler.enable() during the run),
 * we pass the signal on to what we had replaced.
 *
 * The main thread gets an alternate signal stack (a static buffer, never
 * freed) if it has none, so that a stack overflow still gets its note. */
#include "_core_fault.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FAULT_NSIG 5
static const int fault_signals[FAULT_NSIG] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static const char *const fault_names[FAULT_NSIG] = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE",
                                                    "SIGABRT"};

static const char fault_prefix[] = "Scalene: the program was killed by signal ";

/* The rest of the line after "signal N (NAME)", set from Python; a
 * sequence lock: odd while fault_note rewrites it (one writer, under the
 * GIL). */
#define FAULT_TAIL_MAX 8192
static char fault_tail[FAULT_TAIL_MAX];
static size_t fault_tail_len;
static atomic_uint fault_tail_seq;

static struct sigaction fault_prev[FAULT_NSIG]; /* what install replaced */
static struct sigaction fault_dfl;              /* SIG_DFL, made by install */
static int fault_ours[FAULT_NSIG];              /* install replaced it (fault_prev is valid) */
static atomic_int fault_active;                 /* between install and remove */
static atomic_int fault_noted;                  /* the note was written */
static pid_t fault_pid;                         /* the process that installed: not a child */

static char fault_altstack[1 << 16] __attribute__((aligned(64)));
static int fault_altstack_set;  /* install set it on fault_altstack_tid */
static pid_t fault_altstack_tid;

/* ------------------------------------------------------------ the handler */

static void fault_write_all(const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

static size_t fault_put(char *out, size_t o, size_t cap, const volatile char *s, size_t n)
{
  for (size_t i = 0; i < n && o < cap; i++)
    out[o++] = s[i];
  return o;
}

static size_t fault_put_str(char *out, size_t o, size_t cap, const volatile char *s)
{
  while (*s != '\0' && o < cap)
    out[o++] = *s++;
  return o;
}

static void fault_write_note(int i)
{
  char line[sizeof fault_prefix + 32 + FAULT_TAIL_MAX];
  size_t cap = sizeof line, o = 0;
  o = fault_put_str(line, o, cap, fault_prefix);
  char num[12];
  int k = (int)sizeof num, sig = fault_signals[i];
  do {
    num[--k] = (char)('0' + sig % 10);
    sig /= 10;
  } while (sig > 0 && k > 0);
  o = fault_put(line, o, cap, num + k, sizeof num - (size_t)k);
  o = fault_put_str(line, o, cap, " (");
  o = fault_put_str(line, o, cap, fault_names[i]);
  o = fault_put_str(line, o, cap, ")");
  size_t head = o;
  int ok = 0;
  /* A bounded wait: the writer may be this very thread, interrupted. */
  for (int tries = 0; tries < 1000 && !ok; tries++) {
    unsigned s1 = atomic_load_explicit(&fault_tail_seq, memory_order_acquire);
    if (s1 & 1u)
      continue;
    size_t n = fault_tail_len;
    if (n > FAULT_TAIL_MAX)
      continue;
    o = fault_put(line, head, cap, fault_tail, n);
    atomic_thread_fence(memory_order_acquire);
    ok = atomic_load_explicit(&fault_tail_seq, memory_order_relaxed) == s1;
  }
  if (!ok)
    o = fault_put_str(line, head, cap, "\n");
  fault_write_all(line, o);
}

static void fault_handler(int signum, siginfo_t *si, void *uc)
{
  int saved_errno = errno;
  int i;
  for (i = 0; i < FAULT_NSIG && fault_signals[i] != signum; i++)
    ;
  if (i == FAULT_NSIG) {
    errno = saved_errno;
    return;
  }
  const struct sigaction *prev = &fault_prev[i]; /* no struct copy: no memcpy call */
  int is_handler = prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN;
  int sent = si != NULL && si->si_code <= 0; /* kill, raise, abort: not a fault */
  if (!is_handler && prev->sa_handler == SIG_IGN && sent) {
    errno = saved_errno;
    return;
  }
  if (atomic_load(&fault_active) && getpid() == fault_pid &&
      atomic_exchange(&fault_noted, 1) == 0)
    fault_write_note(i);
  if (is_handler) {
    (void)sigaction(signum, prev, NULL);
    if (prev->sa_flags & SA_SIGINFO)
      prev->sa_sigaction(signum, si, uc);
    else
      prev->sa_handler(signum);
    errno = saved_errno;
    return;
  }
  (void)sigaction(signum, &fault_dfl, NULL);
  (void)raise(signum); /* blocked here: delivered when we return */
  errno = saved_errno;
}

/* ------------------------------------------------------------ module functions */

static int fault_is_ours(const struct sigaction *sa)
{
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == fault_handler;
}

const char core_fault_install_doc[] =
    "_fault_install()\n--\n\n"
    "Install the fatal-signal note for SIGSEGV, SIGBUS, SIGILL, SIGFPE and\n"
    "SIGABRT, chaining to the handlers it replaces, and give the calling thread\n"
    "an alternate signal stack if it has none.  Idempotent.  Raises OSError.";

PyObject *core_fault_install(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
  fault_pid = getpid();
  atomic_store(&fault_noted, 0);
  memset(&fault_dfl, 0, sizeof fault_dfl);
  fault_dfl.sa_handler = SIG_DFL;
  sigemptyset(&fault_dfl.sa_mask);
  for (int i = 0; i < FAULT_NSIG; i++) {
    struct sigaction cur;
    if (sigaction(fault_signals[i], NULL, &cur) != 0)
      return PyErr_SetFromErrno(PyExc_OSError);
    if (fault_is_ours(&cur)) {
      fault_ours[i] = 1; /* still ours: fault_prev is what we replaced first */
      continue;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    fault_prev[i] = cur; /* the handler is not installed yet: no reader */
    if (sigaction(fault_signals[i], &sa, NULL) != 0)
      return PyErr_SetFromErrno(PyExc_OSError);
    fault_ours[i] = 1;
  }
  if (!fault_altstack_set) {
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
      stack_t ss;
      memset(&ss, 0, sizeof ss);
      ss.ss_sp = fault_altstack;
      ss.ss_size = sizeof fault_altstack;
      if (sigaltstack(&ss, NULL) == 0) {
        fault_altstack_set = 1;
        fault_altstack_tid = (pid_t)syscall(SYS_gettid);
      }
    }
  }
  atomic_store(&fault_active, 1);
  Py_RETURN_NONE;
}

const char core_fault_note_doc[] =
    "_fault_note(text)\n--\n\n"
    "What the note says after \"Scalene: the program was killed by signal N\n"
    "(NAME)\": text, which should end with a newline (at most 8191 bytes of\n"
    "UTF-8; longer is cut).";

PyObject *core_fault_note(PyObject *Py_UNUSED(module), PyObject *arg)
{
  Py_ssize_t n;
  const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
  if (s == NULL)
    return NULL;
  if (n > FAULT_TAIL_MAX - 1)
    n = FAULT_TAIL_MAX - 1;
  unsigned seq = atomic_load_explicit(&fault_tail_seq, memory_order_relaxed);
  atomic_store_explicit(&fault_tail_seq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  volatile char *dst = fault_tail;
  for (Py_ssize_t i = 0; i < n; i++)
    dst[i] = s[i];
  fault_tail_len = (size_t)n;
  atomic_store_explicit(&fault_tail_seq, seq + 2, memory_order_release);
  Py_RETURN_NONE;
}

const char core_fault_remove_doc[] =
    "_fault_remove()\n--\n\n"
    "Stop noting fatal signals and put back the handlers _fault_install\n"
    "replaced, where ours is still the one installed (a handler installed\n"
    "since stays, and what it chains to passes signals on silently).  Takes\n"
    "the alternate stack down if this thread got it and still has it.";

PyObject *core_fault_remove(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
  atomic_store(&fault_active, 0);
  for (int i = 0; i < FAULT_NSIG; i++) {
    struct sigaction cur;
    if (!fault_ours[i] || sigaction(fault_signals[i], NULL, &cur) != 0)
      continue;
    if (fault_is_ours(&cur) && sigaction(fault_signals[i], &fault_prev[i], NULL) == 0)
      fault_ours[i] = 0;
    /* else another handler replaced ours and may chain to it: fault_prev
     * stays valid for it. */
  }
  if (fault_altstack_set && (pid_t)syscall(SYS_gettid) == fault_altstack_tid) {
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == (void *)fault_altstack &&
        !(cur.ss_flags & SS_ONSTACK)) {
      stack_t off;
      memset(&off, 0, sizeof off);
      off.ss_flags = SS_DISABLE;
      if (sigaltstack(&off, NULL) == 0)
        fault_altstack_set = 0;
    }
  }
  Py_RETURN_NONE;
}
