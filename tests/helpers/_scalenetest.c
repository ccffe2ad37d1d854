/* _scalenetest: a CPython extension with ground-truth native work for the
 * accuracy tests (tests/python/test_accuracy.py) and the benchmark.
 *
 * Every busy loop here runs in this module's own machine code, so a profiler
 * that decides Python vs native by the interrupted program counter must see
 * its time as native.  The loops consult their clock only every few tens of
 * microseconds, so the kernel time spent reading the clock (the thread CPU
 * clock is a system call, not a vDSO read) stays below about 1 % of the
 * spin.  See tests/helpers/README for the list of functions. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

/* ---------------------------------------------------------------- helpers */

static double ts_sec(const struct timespec *ts) {
  return (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
}

static double clock_sec(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) {
    return -1.0;
  }
  return ts_sec(&ts);
}

/* A chunk of pure user-mode arithmetic, about 100-300 us on a current core.
 * noinline and the volatile sink keep it a real loop in this object. */
static volatile uint64_t sink;

__attribute__((noinline)) static void burn_chunk(void) {
  uint64_t x = sink | 1u;
  for (int i = 0; i < 100000; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    x ^= x >> 29;
  }
  sink = x;
}

/* Burns until `id` advanced by `sec`; returns how far it advanced. */
static double burn_until(clockid_t id, double sec) {
  double start = clock_sec(id);
  double now = start;
  while (now - start < sec) {
    burn_chunk();
    now = clock_sec(id);
  }
  return now - start;
}

static int parse_ms(PyObject *arg, double *ms) {
  *ms = PyFloat_AsDouble(arg);
  if (*ms == -1.0 && PyErr_Occurred()) {
    return -1;
  }
  if (!(*ms >= 0.0) || *ms > 3.6e6) {
    PyErr_Format(PyExc_ValueError, "ms must be in [0, 3600000], got %R", arg);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- functions */

PyDoc_STRVAR(spin_doc,
             "spin(ms, release_gil=True) -> float\n\n"
             "Busy-loop in native code until this thread's CPU clock\n"
             "(CLOCK_THREAD_CPUTIME_ID) advanced by ms milliseconds; returns the\n"
             "thread CPU seconds used.  With release_gil=False the GIL is held.");

static PyObject *spin(PyObject *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"ms", "release_gil", NULL};
  PyObject *ms_obj;
  int release = 1;
  double ms, used;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:spin", kwlist, &ms_obj, &release)) {
    return NULL;
  }
  if (parse_ms(ms_obj, &ms) < 0) {
    return NULL;
  }
  if (release) {
    Py_BEGIN_ALLOW_THREADS
    used = burn_until(CLOCK_THREAD_CPUTIME_ID, ms / 1000.0);
    Py_END_ALLOW_THREADS
  } else {
    used = burn_until(CLOCK_THREAD_CPUTIME_ID, ms / 1000.0);
  }
  return PyFloat_FromDouble(used);
}

PyDoc_STRVAR(spin_in_c_thread_doc,
             "spin_in_c_thread(ms) -> float\n\n"
             "Starts a plain pthread (no Python thread state) that busy-loops until\n"
             "its own CPU clock advanced by ms milliseconds, and joins it with the\n"
             "GIL released; returns the CPU seconds that thread used.");

struct c_thread_arg {
  double seconds;
  double used;
};

static void *c_thread_main(void *p) {
  struct c_thread_arg *a = p;
  a->used = burn_until(CLOCK_THREAD_CPUTIME_ID, a->seconds);
  return NULL;
}

static PyObject *spin_in_c_thread(PyObject *self, PyObject *arg) {
  double ms;
  (void)self;
  if (parse_ms(arg, &ms) < 0) {
    return NULL;
  }
  struct c_thread_arg a = {ms / 1000.0, 0.0};
  pthread_t t;
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = pthread_create(&t, NULL, c_thread_main, &a);
  if (rc == 0) {
    pthread_join(t, NULL);
  }
  Py_END_ALLOW_THREADS
  if (rc != 0) {
    errno = rc;
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  return PyFloat_FromDouble(a.used);
}

PyDoc_STRVAR(spin_wall_doc,
             "spin_wall(ms, release_gil=True) -> float\n\n"
             "Busy-loop in native code until the monotonic clock advanced by ms\n"
             "milliseconds; returns the thread CPU seconds used meanwhile.");

static PyObject *spin_wall(PyObject *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"ms", "release_gil", NULL};
  PyObject *ms_obj;
  int release = 1;
  double ms, cpu0, cpu1;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:spin_wall", kwlist, &ms_obj, &release)) {
    return NULL;
  }
  if (parse_ms(ms_obj, &ms) < 0) {
    return NULL;
  }
  cpu0 = clock_sec(CLOCK_THREAD_CPUTIME_ID);
  if (release) {
    Py_BEGIN_ALLOW_THREADS
    burn_until(CLOCK_MONOTONIC, ms / 1000.0);
    Py_END_ALLOW_THREADS
  } else {
    burn_until(CLOCK_MONOTONIC, ms / 1000.0);
  }
  cpu1 = clock_sec(CLOCK_THREAD_CPUTIME_ID);
  return PyFloat_FromDouble(cpu1 - cpu0);
}

PyDoc_STRVAR(sleep_ms_doc,
             "sleep_ms(ms) -> None\n\n"
             "nanosleep for ms milliseconds without the GIL, resuming after\n"
             "signals until the whole time has passed.");

static PyObject *sleep_ms(PyObject *self, PyObject *arg) {
  double ms;
  struct timespec req, rem;
  int rc;
  (void)self;
  if (parse_ms(arg, &ms) < 0) {
    return NULL;
  }
  req.tv_sec = (time_t)(ms / 1000.0);
  req.tv_nsec = (long)((ms / 1000.0 - (double)req.tv_sec) * 1e9);
  Py_BEGIN_ALLOW_THREADS
  while ((rc = nanosleep(&req, &rem)) != 0 && errno == EINTR) {
    req = rem;
  }
  Py_END_ALLOW_THREADS
  if (rc != 0) {
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  Py_RETURN_NONE;
}

PyDoc_STRVAR(thread_cpu_doc, "thread_cpu() -> float\n\nThis thread's CPU clock, in seconds.");

static PyObject *thread_cpu(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyFloat_FromDouble(clock_sec(CLOCK_THREAD_CPUTIME_ID));
}

PyDoc_STRVAR(process_cpu_doc,
             "process_cpu() -> float\n\nThe process's CPU clock (all threads), in seconds.");

static PyObject *process_cpu(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyFloat_FromDouble(clock_sec(CLOCK_PROCESS_CPUTIME_ID));
}

PyDoc_STRVAR(gettid_doc, "gettid() -> int\n\nThe calling thread's kernel thread id.");

static PyObject *gettid_(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyLong_FromLong((long)syscall(SYS_gettid));
}

/* ---------------------------------------------------------------- memory */

/* Blocks kept by malloc_keep, for the memory tests: allocated with this
 * module's own malloc call (through its PLT/GOT, as any C library's), and
 * written so that the pages are really there. */
#define KEPT_MAX 4096
static void *kept[KEPT_MAX];
static size_t kept_n;

PyDoc_STRVAR(malloc_keep_doc,
             "malloc_keep(nbytes) -> None\n\nmalloc(nbytes) in C, touch every page, keep the "
             "block until free_kept().");

static PyObject *malloc_keep(PyObject *self, PyObject *arg) {
  (void)self;
  Py_ssize_t n = PyLong_AsSsize_t(arg);
  if (n == -1 && PyErr_Occurred()) {
    return NULL;
  }
  if (n <= 0) {
    PyErr_SetString(PyExc_ValueError, "nbytes must be positive");
    return NULL;
  }
  if (kept_n >= KEPT_MAX) {
    PyErr_SetString(PyExc_RuntimeError, "too many kept blocks");
    return NULL;
  }
  char *p = malloc((size_t)n);
  if (p == NULL) {
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < n; i += 4096) {
    p[i] = 1;
  }
  kept[kept_n++] = p;
  Py_RETURN_NONE;
}

PyDoc_STRVAR(free_kept_doc, "free_kept() -> int\n\nfree() every block malloc_keep kept; "
                            "returns how many.");

static PyObject *free_kept(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  size_t n = kept_n;
  for (size_t i = 0; i < n; i++) {
    free(kept[i]);
    kept[i] = NULL;
  }
  kept_n = 0;
  return PyLong_FromSize_t(n);
}

/* ---------------------------------------------------------------- churn and copies */

static int parse_sizes(PyObject *args, const char *fmt, Py_ssize_t *total, Py_ssize_t *block) {
  if (!PyArg_ParseTuple(args, fmt, total, block)) {
    return -1;
  }
  if (*total <= 0 || *block <= 0 || *block > *total) {
    PyErr_SetString(PyExc_ValueError, "need 0 < block <= total");
    return -1;
  }
  return 0;
}

/* malloc, touch and free blocks of `block` bytes until `total` bytes were
 * allocated: a call through this object's PLT/GOT each time.  noinline keeps
 * the calls here. */
__attribute__((noinline)) static size_t churn(size_t total, size_t block) {
  size_t done = 0;
  while (done + block <= total) {
    char *p = malloc(block);
    if (p == NULL) {
      return done;
    }
    p[0] = 1;
    p[block - 1] = 1;
    /* The block escapes: the compiler may not elide the malloc/free pair. */
    __asm__ __volatile__("" : : "r"(p) : "memory");
    free(p);
    done += block;
  }
  return done;
}

PyDoc_STRVAR(malloc_free_doc,
             "malloc_free(total, block) -> int\n\n"
             "With the GIL released, malloc and free blocks of `block` bytes, one\n"
             "at a time, until total // block blocks were made; returns the bytes\n"
             "allocated (total rounded down to whole blocks).");

static PyObject *malloc_free(PyObject *self, PyObject *args) {
  Py_ssize_t total, block;
  size_t done;
  (void)self;
  if (parse_sizes(args, "nn:malloc_free", &total, &block) < 0) {
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS
  done = churn((size_t)total, (size_t)block);
  Py_END_ALLOW_THREADS
  if (done + (size_t)block <= (size_t)total) {
    return PyErr_NoMemory();
  }
  return PyLong_FromSize_t(done);
}

/* memcpy with a length the compiler cannot know: always a real call to the
 * C library's memcpy through this object's PLT/GOT, never inlined. */
__attribute__((noinline)) static void copy_chunks(char *dst, const char *src, size_t total,
                                                  size_t chunk) {
  for (size_t done = 0; done < total; done += chunk) {
    memcpy(dst, src, chunk);
    __asm__ __volatile__("" : : "r"(dst) : "memory");
  }
}

PyDoc_STRVAR(copy_mb_doc,
             "copy_mb(n_mib, chunk) -> int\n\n"
             "memcpy exactly n_mib MiB, `chunk` bytes per call (n_mib MiB must be\n"
             "a multiple of chunk), between two buffers of this module, with the\n"
             "GIL held; returns the bytes copied.");

static PyObject *copy_mb(PyObject *self, PyObject *args) {
  Py_ssize_t n_mib, chunk;
  (void)self;
  if (!PyArg_ParseTuple(args, "nn:copy_mb", &n_mib, &chunk)) {
    return NULL;
  }
  if (n_mib <= 0 || chunk <= 0 || ((size_t)n_mib << 20) % (size_t)chunk != 0) {
    PyErr_SetString(PyExc_ValueError, "need n_mib > 0, chunk > 0 dividing n_mib MiB");
    return NULL;
  }
  char *src = malloc((size_t)chunk), *dst = malloc((size_t)chunk);
  if (src == NULL || dst == NULL) {
    free(src);
    free(dst);
    return PyErr_NoMemory();
  }
  memset(src, 7, (size_t)chunk);
  size_t total = (size_t)n_mib << 20;
  copy_chunks(dst, src, total, (size_t)chunk);
  free(src);
  free(dst);
  return PyLong_FromSize_t(total);
}

PyDoc_STRVAR(raise_then_block_doc,
             "raise_then_block(signum, check) -> None\n\n"
             "raise(signum), then block in pause() without the GIL: the race of a\n"
             "signal that lands just before a blocking call (SemLock.acquire's\n"
             "sem_trywait, then sem_wait), made certain.  The signal's C handler has\n"
             "run, the Python one has not.  With check true, each EINTR is followed\n"
             "by PyErr_CheckSignals(), as CPython's blocking calls do: a handler that\n"
             "raises ends the call with its exception, else it blocks again.  With\n"
             "check false it blocks again at once, like native code deaf to signals.\n"
             "signum 0 raises nothing.  Returns only through an exception.");

static PyObject *raise_then_block(PyObject *self, PyObject *args) {
  int signum, check;
  (void)self;
  if (!PyArg_ParseTuple(args, "ip:raise_then_block", &signum, &check)) {
    return NULL;
  }
  if (raise(signum) != 0) {
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  for (;;) {
    Py_BEGIN_ALLOW_THREADS
    pause();
    Py_END_ALLOW_THREADS
    if (check && PyErr_CheckSignals() < 0) {
      return NULL;
    }
  }
}

/* ---------------------------------------------------------------- module */

PyDoc_STRVAR(datastack_doc,
             "datastack() -> (root, offset)\n\n"
             "Where the calling thread's next frame would go in CPython's data stack\n"
             "(3.11+): whether the current chunk is the thread's root chunk, and the\n"
             "free slot's index in it.  Called at the same point of a program, a\n"
             "plain run and a profiled one give the same pair when the program's\n"
             "frames lie where plain Python puts them.");

static PyObject *datastack(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
#if PY_VERSION_HEX >= 0x030B0000
  PyThreadState *ts = PyThreadState_Get();
  _PyStackChunk *c = ts->datastack_chunk;
  if (c == NULL || ts->datastack_top == NULL) return Py_BuildValue("(On)", Py_None, (Py_ssize_t)-1);
  return Py_BuildValue("(On)", c->previous == NULL ? Py_True : Py_False,
                       (Py_ssize_t)(ts->datastack_top - &c->data[0]));
#else
  PyErr_SetString(PyExc_NotImplementedError, "datastack() needs CPython 3.11 or later");
  return NULL;
#endif
}

static PyMethodDef methods[] = {
    {"spin", (PyCFunction)(void (*)(void))spin, METH_VARARGS | METH_KEYWORDS, spin_doc},
    {"spin_wall", (PyCFunction)(void (*)(void))spin_wall, METH_VARARGS | METH_KEYWORDS,
     spin_wall_doc},
    {"sleep_ms", sleep_ms, METH_O, sleep_ms_doc},
    {"spin_in_c_thread", spin_in_c_thread, METH_O, spin_in_c_thread_doc},
    {"thread_cpu", thread_cpu, METH_NOARGS, thread_cpu_doc},
    {"process_cpu", process_cpu, METH_NOARGS, process_cpu_doc},
    {"gettid", gettid_, METH_NOARGS, gettid_doc},
    {"malloc_keep", malloc_keep, METH_O, malloc_keep_doc},
    {"free_kept", free_kept, METH_NOARGS, free_kept_doc},
    {"malloc_free", malloc_free, METH_VARARGS, malloc_free_doc},
    {"copy_mb", copy_mb, METH_VARARGS, copy_mb_doc},
    {"raise_then_block", raise_then_block, METH_VARARGS, raise_then_block_doc},
    {"datastack", datastack, METH_NOARGS, datastack_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#if PY_VERSION_HEX >= 0x030c0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_scalenetest",
    .m_doc = "Ground-truth native work for libscaleneprof's accuracy tests.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC PyInit__scalenetest(void) { return PyModuleDef_Init(&module_def); }
