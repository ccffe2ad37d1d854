/* scalene._core: the Python binding of libscaleneprof.
 *
 * A thin layer: it turns Python arguments into library calls and library
 * errors into scalene._core.Error, and it supplies the one thing the library
 * cannot know -- where a Python thread is.  That is the locator
 * (core_locate), which reads the interpreter's frames directly; see the
 * section "The locator" below, which runs inside a signal handler.
 *
 * Layout (CPython's Modules/_lsprof.c): includes; module state; helpers; the
 * locator; the Profiler type's methods, method table and spec; module
 * functions; module exec; module def; PyInit__core.  Heap types from specs,
 * multi-phase initialisation, per-module state.
 *
 * Supported interpreters: CPython 3.11 to 3.13 with the GIL.  Built against
 * any other version the module compiles, but importing it raises ImportError
 * (docs/python-versions.md). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <scalene/scalene.h>
#include <scalene/memcpy.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define CORE_SUPPORTED 1
#else
#define CORE_SUPPORTED 0
#endif

#if CORE_SUPPORTED

#include "frames.h"
#include "_core_fault.h"
#include "_core_term.h"
#include "_core_config.h"

/* ------------------------------------------------------------------ module state */

typedef struct core_state {
  PyObject *Error;          /* scalene._core.Error */
  PyTypeObject *Profiler;   /* scalene._core.Profiler */
  PyObject *running;        /* the running Profiler (borrowed), or NULL */
} core_state;

static struct PyModuleDef core_module;

static inline core_state *core_get_state(PyObject *module)
{
  return (core_state *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------ helpers */

/* Raises scalene._core.Error for a library error: the message is err's
 * "source:line:column: text" when the library filled it, else the code's
 * sentence; e.code is the SCALENE_E* code. */
static PyObject *core_raise(core_state *st, int code, const scalene_error_t *err)
{
  char msg[SCALENE_ERROR_SOURCE_MAX + SCALENE_ERROR_TEXT_MAX + 64];
  if (err != NULL && err->text[0] != '\0')
    scalene_error_format(err, msg, sizeof msg);
  else
    snprintf(msg, sizeof msg, "%s", scalene_strerror(code));
  PyObject *exc = PyObject_CallFunction(st->Error, "s", msg);
  if (exc == NULL)
    return NULL;
  PyObject *pycode = PyLong_FromLong(code);
  if (pycode == NULL || PyObject_SetAttrString(exc, "code", pycode) < 0) {
    Py_XDECREF(pycode);
    Py_DECREF(exc);
    return NULL;
  }
  Py_DECREF(pycode);
  PyErr_SetObject(st->Error, exc);
  Py_DECREF(exc);
  return NULL;
}

static PyObject *core_raise_msg(core_state *st, int code, const char *text)
{
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  snprintf(err.text, sizeof err.text, "%s", text);
  return core_raise(st, code, &err);
}

static pid_t core_gettid(void)
{
  return (pid_t)syscall(SYS_gettid);
}

static double core_now(clockid_t clock)
{
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A UTF-8 string with its length, and an array of them: the filter settings
 * in the form the locator reads. */
typedef struct core_str {
  char *s;
  size_t n;
} core_str;

typedef struct core_strv {
  core_str *v;
  size_t n;
} core_strv;

/* The functions decorated with @profile (Profiler.add_profile_range): source
 * ranges of files.  Once there is one, only lines inside a range are
 * charged.  Append-only while the Profiler lives: an entry is written
 * (holding the GIL), then published by raising count (release), so the
 * locator, which reads count (acquire) and the entries below it, never sees
 * a half-written one; the entries are freed with the Profiler, after its
 * samplers. */
#define CORE_MAX_RANGES 1024

typedef struct core_range {
  char *file; /* co_filename, UTF-8 */
  size_t n;
  uint32_t first, last;
} core_range;

typedef struct core_ranges {
  _Atomic size_t count;
  core_range v[CORE_MAX_RANGES];
} core_ranges;

/* What the locator reads: built by start() before the timers are armed and
 * freed after stop() has disarmed them. */
typedef struct core_filter {
  core_str own_prefix;       /* our package: never charged */
  core_str program_path;     /* charged files start with it (unless profile_all) */
  core_strv profile_only;    /* substrings; one must match when non-empty */
  core_strv profile_exclude; /* substrings; none may match */
  core_strv exclude_prefixes;/* stdlib, site-packages (unless profile_all) */
  core_strv include_prefixes;/* charged like program_path (--profile-system-libraries) */
  const core_ranges *ranges; /* @profile functions: the Profiler's, never NULL */
  int profile_all;
  const PyThreadState *start_tstate; /* remote mode reads this thread only */
  pid_t start_tid;
} core_filter;

static int core_str_set(core_str *dst, PyObject *str)
{
  Py_ssize_t n;
  const char *s = PyUnicode_AsUTF8AndSize(str, &n);
  if (s == NULL)
    return -1;
  dst->s = PyMem_RawMalloc((size_t)n + 1);
  if (dst->s == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  memcpy(dst->s, s, (size_t)n + 1);
  dst->n = (size_t)n;
  return 0;
}

static void core_str_clear(core_str *s)
{
  PyMem_RawFree(s->s);
  s->s = NULL;
  s->n = 0;
}

static void core_strv_clear(core_strv *v)
{
  for (size_t i = 0; i < v->n; i++)
    core_str_clear(&v->v[i]);
  PyMem_RawFree(v->v);
  v->v = NULL;
  v->n = 0;
}

/* tuple: a tuple of str (checked when the Profiler was made). */
static int core_strv_set(core_strv *dst, PyObject *tuple)
{
  Py_ssize_t n = PyTuple_GET_SIZE(tuple);
  dst->n = 0;
  dst->v = PyMem_RawCalloc(n > 0 ? (size_t)n : 1, sizeof *dst->v);
  if (dst->v == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    if (core_str_set(&dst->v[i], PyTuple_GET_ITEM(tuple, i)) < 0) {
      core_strv_clear(dst);
      return -1;
    }
    dst->n++;
  }
  return 0;
}

static void core_filter_clear(core_filter *f)
{
  core_str_clear(&f->own_prefix);
  core_str_clear(&f->program_path);
  core_strv_clear(&f->profile_only);
  core_strv_clear(&f->profile_exclude);
  core_strv_clear(&f->exclude_prefixes);
  core_strv_clear(&f->include_prefixes);
  f->start_tstate = NULL;
  f->start_tid = 0;
}

/* Any iterable of str (but not a str itself) as a new tuple of exact str. */
static PyObject *core_str_tuple(PyObject *seq, const char *what)
{
  if (PyUnicode_Check(seq) || PyBytes_Check(seq)) {
    PyErr_Format(PyExc_TypeError, "%s must be a sequence of str, not %.100s", what,
                 Py_TYPE(seq)->tp_name);
    return NULL;
  }
  PyObject *t = PySequence_Tuple(seq);
  if (t == NULL)
    return NULL;
  PyObject *out = PyTuple_New(PyTuple_GET_SIZE(t));
  if (out == NULL)
    goto fail;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
    PyObject *item = PyTuple_GET_ITEM(t, i);
    if (!PyUnicode_Check(item)) {
      PyErr_Format(PyExc_TypeError, "%s must contain str, not %.100s", what,
                   Py_TYPE(item)->tp_name);
      goto fail;
    }
    PyObject *s = PyUnicode_FromObject(item); /* an exact str */
    if (s == NULL)
      goto fail;
    PyTuple_SET_ITEM(out, i, s);
  }
  Py_DECREF(t);
  return out;
fail:
  Py_DECREF(t);
  Py_XDECREF(out);
  return NULL;
}

/* ------------------------------------------------------------------ the locator
 *
 * ASYNC-SIGNAL-SAFE.  Everything from here to the end of this section runs
 * inside the sampler's signal handler on the interrupted thread, inside the
 * heap or copy sampler's hook on the allocating thread (ctx->in_hook), or
 * (remote mode, ctx->remote) on the sampler's own thread while the thread
 * that called start() is off the CPU -- and may wake up under us.  Rules:
 *  - no allocation, no locks, no stdio, no Python API that could allocate,
 *    take a lock or look at the GIL; PyGILState_GetThisThreadState() is only
 *    a pthread_getspecific() read;
 *  - every pointer is followed through core_fetch() (reader.h): a safe read
 *    (scalene_safe_read) in the handler and in remote mode, a plain load in
 *    a hook, where the thread's own frames are consistent;
 *  - every object is validated before use (type pointers, sizes, bounded
 *    loops), because a frame may be half pushed when the signal arrives;
 * What it reads (core_filter) was built before the timers were armed. */

#define CORE_MAX_DEPTH 256
#define CORE_STACK_BYTES 1024 /* a sample's stack text with --stacks */
#define CORE_STACK_RING 128    /* samples buffered per thread with --stacks */

/* Byte b of a bytes object's data: read in place, or (safe) through the
 * walk's reader, whose windows hold the table after the first read. */
typedef struct core_bytes {
  const unsigned char *addr; /* the data in the process */
  Py_ssize_t len;
  core_reader *r;
} core_bytes;

static int core_byte(core_bytes *b, Py_ssize_t i)
{
  if (i < 0 || i >= b->len)
    return -1;
  if (b->r->win == NULL) /* plain loads */
    return b->addr[i];
  unsigned char c;
  if (core_fetch(b->r, &c, b->addr + i, 1) < 0)
    return -1;
  return c;
}

static int core_bytes_open(core_bytes *b, const void *obj, core_reader *r)
{
  PyBytesObject hdr;
  if (core_fetch(r, &hdr, obj, offsetof(PyBytesObject, ob_sval)) < 0)
    return -1;
  if (Py_TYPE(&hdr) != &PyBytes_Type || Py_SIZE(&hdr) < 0)
    return -1;
  b->addr = (const unsigned char *)obj + offsetof(PyBytesObject, ob_sval);
  b->len = Py_SIZE(&hdr);
  b->r = r;
  return 0;
}

/* The line of code unit `instr` from a 3.11+ location table (CPython's
 * Objects/locations.md).  The table is a sequence of entries, each covering
 * a run of code units.  An entry's first byte has bit 7 set; bits 0-2 hold
 * the run length minus one (in code units) and bits 3-6 a code:
 *   15     no location (the line stays where it was);
 *   14     long form: signed varint line delta, then end line, start and
 *          end column as varints;
 *   13     no columns: signed varint line delta;
 *   10-12  one line: line delta = code - 10, then two column bytes;
 *   0-9    short form: same line, one column byte.
 * Varints are little-endian 6-bit chunks with bit 6 as "more follows"; a
 * signed varint keeps the sign in bit 0.  Lines start at co_firstlineno and
 * each entry adds its delta; other bytes of an entry have bit 7 clear.  This
 * is what CPython's PyCode_Addr2Line does (Objects/codeobject.c: advance),
 * except that a "no location" entry answers with the line before it instead
 * of -1, so that time there still lands on a nearby line.  Returns 0 when
 * the table is malformed or ends before instr. */
static uint32_t core_line_for(core_bytes *t, int firstlineno, Py_ssize_t instr)
{
  Py_ssize_t i = 0, unit = 0;
  long line = firstlineno;
  int b = core_byte(t, 0);
  while (b >= 0) {
    if (!(b & 0x80))
      return 0;
    int code = (b >> 3) & 15;
    if (code == 13 || code == 14) {
      unsigned long v = 0;
      int shift = 0, c;
      do {
        c = core_byte(t, ++i);
        if (c < 0 || shift > 28)
          return 0;
        v |= (unsigned long)(c & 63) << shift;
        shift += 6;
      } while (c & 64);
      line += (v & 1) ? -(long)(v >> 1) : (long)(v >> 1);
    } else if (code >= 10 && code <= 12) {
      line += code - 10;
    }
    unit += (b & 7) + 1;
    if (instr < unit)
      return line > 0 ? (uint32_t)line : 0;
    do
      b = core_byte(t, ++i);
    while (b >= 0 && !(b & 0x80));
  }
  return 0;
}

/* Appends code point c as UTF-8 to out[*o..cap-1); 0, or -1 when it does not
 * fit (then nothing is written).  Surrogates (file names that were not
 * valid UTF-8 arrive as surrogateescape'd U+DC80..U+DCFF) become '?', as
 * str.encode("utf-8", "replace") gives, so that the result is always valid
 * UTF-8 and the Python side can compute the same name. */
static int core_put_utf8(char *out, size_t *o, size_t cap, uint32_t c)
{
  unsigned char u[4];
  size_t k;
  if (c < 0x80) {
    u[0] = (unsigned char)c;
    k = 1;
  } else if (c >= 0xD800 && c <= 0xDFFF) {
    u[0] = '?';
    k = 1;
  } else if (c < 0x800) {
    u[0] = (unsigned char)(0xC0 | (c >> 6));
    u[1] = (unsigned char)(0x80 | (c & 63));
    k = 2;
  } else if (c < 0x10000) {
    u[0] = (unsigned char)(0xE0 | (c >> 12));
    u[1] = (unsigned char)(0x80 | ((c >> 6) & 63));
    u[2] = (unsigned char)(0x80 | (c & 63));
    k = 3;
  } else {
    u[0] = (unsigned char)(0xF0 | (c >> 18));
    u[1] = (unsigned char)(0x80 | ((c >> 12) & 63));
    u[2] = (unsigned char)(0x80 | ((c >> 6) & 63));
    u[3] = (unsigned char)(0x80 | (c & 63));
    k = 4;
  }
  if (*o + k >= cap)
    return -1;
  memcpy(out + *o, u, k);
  *o += k;
  return 0;
}

/* Copies the UTF-8 form of str object `obj` into out (cap > 0 bytes, always
 * NUL-terminated, truncated at a character boundary).  Compact ASCII data
 * follows the PyASCIIObject header and is UTF-8 as it is; other strings use
 * their cached UTF-8 form when there is one, and are encoded here from their
 * 1-, 2- or 4-byte code units otherwise.  Returns the length, or -1 when obj
 * is not a readable str. */
static Py_ssize_t core_utf8(const void *obj, core_reader *r, char *out, size_t cap)
{
  PyUnicodeObject u; /* the largest header; only the relevant part is read */
  out[0] = '\0';
  if (core_fetch(r, &u, obj, sizeof(PyASCIIObject)) < 0)
    return -1;
  PyASCIIObject *a = (PyASCIIObject *)&u;
  if (Py_TYPE(a) != &PyUnicode_Type || a->length < 0)
    return -1;
  unsigned int kind = a->state.kind;
  const char *data;
  if (a->state.compact && a->state.ascii) {
    data = (const char *)obj + sizeof(PyASCIIObject);
    kind = 0; /* UTF-8 already */
  } else {
    if (core_fetch(r, &u, obj, a->state.compact ? sizeof(PyCompactUnicodeObject)
                                                     : sizeof(PyUnicodeObject)) < 0)
      return -1;
    PyCompactUnicodeObject *c = (PyCompactUnicodeObject *)&u;
    if (c->utf8 != NULL && c->utf8_length >= 0) {
      size_t n = (size_t)c->utf8_length;
      if (n < cap) {
        if (core_fetch(r, out, c->utf8, n) < 0)
          return -1;
      } else { /* cut at a character boundary: read the byte after the cut too */
        n = cap - 1;
        if (core_fetch(r, out, c->utf8, n + 1) < 0)
          return -1;
        while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80)
          n--;
      }
      out[n] = '\0';
      return (Py_ssize_t)n;
    }
    if (a->state.compact)
      data = (const char *)obj + sizeof(PyCompactUnicodeObject);
    else
      data = u.data.any;
    if (data == NULL || (kind != 1 && kind != 2 && kind != 4))
      return -1;
  }
  if (kind == 0) {
    size_t n = (size_t)a->length < cap ? (size_t)a->length : cap - 1;
    if (core_fetch(r, out, data, n) < 0)
      return -1;
    out[n] = '\0';
    return (Py_ssize_t)n;
  }
  unsigned char chunk[256];
  size_t o = 0;
  Py_ssize_t len = a->length;
  for (Py_ssize_t i = 0; i < len;) {
    Py_ssize_t n = len - i;
    if (n > (Py_ssize_t)(sizeof chunk / kind))
      n = (Py_ssize_t)(sizeof chunk / kind);
    if (core_fetch(r, chunk, data + (size_t)i * kind, (size_t)n * kind) < 0)
      return -1;
    for (Py_ssize_t j = 0; j < n; j++) {
      uint32_t c;
      if (kind == 1) {
        c = chunk[j];
      } else if (kind == 2) {
        uint16_t c16;
        memcpy(&c16, chunk + 2 * j, 2);
        c = c16;
      } else {
        memcpy(&c, chunk + 4 * j, 4);
      }
      if (core_put_utf8(out, &o, cap, c) < 0)
        goto done;
    }
    i += n;
  }
done:
  out[o] = '\0';
  return (Py_ssize_t)o;
}

/* Whether path s (n bytes) is prefix or lies under it: a whole-component
 * match, so that "/a/scalene" does not take in "/a/scalene_tests/x.py".
 * The empty prefix takes in everything. */
static int core_under(const char *s, size_t n, const core_str *prefix)
{
  size_t k = prefix->n;
  if (k == 0)
    return 1;
  if (k > n || memcmp(s, prefix->s, k) != 0)
    return 0;
  return k == n || prefix->s[k - 1] == '/' || s[k] == '/';
}

static int core_contains(const char *s, size_t n, const core_str *needle)
{
  if (needle->n == 0)
    return 1;
  for (size_t i = 0; i + needle->n <= n; i++)
    if (s[i] == needle->s[0] && memcmp(s + i, needle->s, needle->n) == 0)
      return 1;
  return 0;
}

/* Whether samples in file `name` are charged to it, in this order: never our
 * own package (own_prefix); never "<...>" pseudo-files (<string>, <frozen
 * ...>, numpy's <__array_function__ internals>); never a profile_exclude
 * substring; unless profile_all, never the stdlib or site-packages
 * (exclude_prefixes); with profile_only, only a name containing one of its
 * substrings; unless profile_all, only files under program_path or one of
 * include_prefixes.  Prefixes match whole path components (core_under). */
static int core_file_passes(const core_filter *f, const char *name, size_t n)
{
  if (f->own_prefix.n > 0 && core_under(name, n, &f->own_prefix))
    return 0;
  if (n == 0 || name[0] == '<')
    return 0;
  for (size_t i = 0; i < f->profile_exclude.n; i++)
    if (core_contains(name, n, &f->profile_exclude.v[i]))
      return 0;
  if (!f->profile_all)
    for (size_t i = 0; i < f->exclude_prefixes.n; i++)
      if (f->exclude_prefixes.v[i].n > 0 && core_under(name, n, &f->exclude_prefixes.v[i]))
        return 0;
  if (f->profile_only.n > 0) {
    size_t i;
    for (i = 0; i < f->profile_only.n; i++)
      if (core_contains(name, n, &f->profile_only.v[i]))
        break;
    if (i == f->profile_only.n)
      return 0;
  }
  if (!f->profile_all && !core_under(name, n, &f->program_path)) {
    size_t i;
    for (i = 0; i < f->include_prefixes.n; i++)
      if (f->include_prefixes.v[i].n > 0 && core_under(name, n, &f->include_prefixes.v[i]))
        break;
    if (i == f->include_prefixes.n)
      return 0;
  }
  return 1;
}

/* Whether line `line` of file `name` (n bytes) may be charged: always while
 * no function is decorated with @profile, else only inside one of them. */
static int core_line_passes(const core_filter *f, const char *name, size_t n, uint32_t line)
{
  size_t count = atomic_load_explicit(&f->ranges->count, memory_order_acquire);
  if (count == 0)
    return 1;
  for (size_t i = 0; i < count; i++) {
    const core_range *r = &f->ranges->v[i];
    if (line >= r->first && line <= r->last && r->n == n && memcmp(r->file, name, n) == 0)
      return 1;
  }
  return 0;
}

/* Puts one frame, "<file> <function>:<line>;" (Scalene's frame string), in
 * front of the stack text being built at the end of buf: the walk goes
 * innermost first, so the text grows towards the start of buf, and *pos is
 * where it begins.  Returns 0, or -1 (nothing written) when the frame does
 * not fit.  Async-signal-safe: memcpy and strlen only. */
static int core_stack_push(char *buf, size_t *pos, const char *file, size_t file_n,
                           const char *func, uint32_t line)
{
  char num[10]; /* a uint32_t has at most 10 digits */
  size_t nn = 0;
  do {
    num[sizeof num - 1 - nn++] = (char)('0' + line % 10);
    line /= 10;
  } while (line != 0);
  size_t func_n = strlen(func);
  size_t need = file_n + 1 + func_n + 1 + nn + 1;
  if (need > *pos)
    return -1;
  char *o = buf + *pos - need;
  memcpy(o, file, file_n);
  o += file_n;
  *o++ = ' ';
  memcpy(o, func, func_n);
  o += func_n;
  *o++ = ':';
  memcpy(o, num + sizeof num - nn, nn);
  o += nn;
  *o = ';';
  *pos -= need;
  return 0;
}

/* What a walk learnt of one code object, so that the frames of a
 * recursion (copy.deepcopy's, a parser's, a framework's) cost one read of
 * their code object and file name per walk, not one per frame.  A walk
 * sees the thread stopped (or, remote, a snapshot at best), so what it
 * read stays true until it returns. */
#define CORE_CODE_MEMO 8
typedef struct core_code_memo {
  const void *code; /* NULL: an empty slot */
  const void *filename, *qualname, *linetable;
  Py_ssize_t size; /* Py_SIZE: code units */
  int firstlineno, firsttraceable;
  int passes; /* the file filter's verdict on co_filename: 1, 0, or -1 not asked yet */
} core_code_memo;

typedef struct core_code_cache {
  core_code_memo v[CORE_CODE_MEMO];
  int next; /* the slot to fill next (round robin) */
} core_code_cache;

/* The memo of the code object at `code`, reading it on first sight; NULL
 * when it is not a readable code object. */
static core_code_memo *core_code_get(core_code_cache *cc, core_reader *r, const void *code)
{
  for (int i = 0; i < CORE_CODE_MEMO; i++)
    if (cc->v[i].code == code && code != NULL)
      return &cc->v[i];
  PyCodeObject co;
  if (core_fetch(r, &co, code, offsetof(PyCodeObject, co_code_adaptive)) < 0)
    return NULL;
  if (Py_TYPE(&co) != &PyCode_Type)
    return NULL;
  core_code_memo *m = &cc->v[cc->next];
  cc->next = (cc->next + 1) % CORE_CODE_MEMO;
  m->code = code;
  m->filename = co.co_filename;
  m->qualname = co.co_qualname;
  m->linetable = co.co_linetable;
  m->size = Py_SIZE(&co);
  m->firstlineno = co.co_firstlineno;
  m->firsttraceable = co._co_firsttraceable;
  m->passes = -1;
  for (int i = 0; i < CORE_CODE_MEMO; i++) /* another function of the same file */
    if (&cc->v[i] != m && cc->v[i].code != NULL && cc->v[i].filename == m->filename &&
        cc->v[i].passes >= 0) {
      m->passes = cc->v[i].passes;
      break;
    }
  return m;
}

/* Where a walk last put the text of a str object (a file or function
 * name), so that the next frame with the same object copies it instead of
 * reading it again.  `at` is one of the walk's own buffers, all of one
 * capacity; every text written there goes through core_text_get. */
typedef struct core_text {
  const void *obj; /* NULL: nothing known */
  const char *at;
  Py_ssize_t n;
} core_text;

/* The UTF-8 text of str object obj in out (core_utf8): its length, or -1. */
static Py_ssize_t core_text_get(core_text *t, const void *obj, core_reader *r, char *out,
                                size_t cap)
{
  if (obj != NULL && t->obj == obj) {
    if (t->at != out)
      memcpy(out, t->at, (size_t)t->n + 1);
    t->at = out;
    return t->n;
  }
  Py_ssize_t n = core_utf8(obj, r, out, cap);
  t->obj = n >= 0 ? obj : NULL;
  t->at = out;
  t->n = n;
  return n;
}

/* core_locate's walk from thread state ts, reading through r. */
static inline int core_walk(const scalene_sample_context_t *ctx, scalene_location_t *loc,
                            const core_filter *f, const PyThreadState *ts, core_reader *r)
{
  char *stk = ctx->stack_cap > 1 ? ctx->stack : NULL;
  size_t pos = stk != NULL ? ctx->stack_cap - 1 : 0; /* the text is stk[pos .. cap - 1) */
  if (stk != NULL)
    stk[pos] = '\0';
  core_code_cache codes;
  memset(&codes, 0, sizeof codes);
  core_text files = {NULL, NULL, -1}, funcs = {NULL, NULL, -1};
  /* The first frame found goes to *loc; the outer ones, read for the stack
   * only, to these. */
  char file_buf[SCALENE_LOCATION_FILE_MAX], func_buf[SCALENE_LOCATION_FUNCTION_MAX];
  int found = 0;
  const void *addr = core_frames_top(ts, r);
  for (int depth = 0; addr != NULL && depth < CORE_MAX_DEPTH; depth++) {
    core_frame_t fr;
    if (core_frames_read(addr, r, &fr) < 0)
      break;
    addr = fr.previous;
    if (fr.cstack)
      continue;
    core_code_memo *co = core_code_get(&codes, r, fr.code);
    if (co == NULL)
      continue;
    const char *code_start = (const char *)fr.code + offsetof(PyCodeObject, co_code_adaptive);
    ptrdiff_t off = (const char *)fr.instr - code_start;
    Py_ssize_t instr = (Py_ssize_t)(off / (ptrdiff_t)sizeof(_Py_CODEUNIT));
    if (off < 0 || instr >= co->size)
      continue; /* not started, or garbage */
    if (!fr.generator && instr < co->firsttraceable)
      continue; /* incomplete: still setting up cells or a generator */
    if (co->passes == 0)
      continue; /* a file the filter turned down earlier in this walk */
    char *file = found ? file_buf : loc->file;
    Py_ssize_t n = core_text_get(&files, co->filename, r, file, SCALENE_LOCATION_FILE_MAX);
    if (co->passes < 0) {
      co->passes = n >= 0 && core_file_passes(f, file, (size_t)n);
      for (int i = 0; i < CORE_CODE_MEMO; i++) /* the same file's other functions */
        if (codes.v[i].code != NULL && codes.v[i].filename == co->filename)
          codes.v[i].passes = co->passes;
    }
    if (!co->passes)
      continue;
    core_bytes table;
    uint32_t line = 0;
    if (core_bytes_open(&table, co->linetable, r) == 0)
      line = core_line_for(&table, co->firstlineno, instr);
    if (!core_line_passes(f, file, (size_t)n, line))
      continue; /* outside every @profile function: charge a caller that is inside one */
    char *func = found ? func_buf : loc->function;
    if (core_text_get(&funcs, co->qualname, r, func, SCALENE_LOCATION_FUNCTION_MAX) < 0)
      func[0] = '\0';
    if (!found) {
      loc->line = line;
      loc->function_line = co->firstlineno > 0 ? (uint32_t)co->firstlineno : 0;
      found = 1;
      if (stk == NULL)
        return SCALENE_LOCATE_FOUND;
    }
    if (core_stack_push(stk, &pos, file, (size_t)n, func, line) < 0)
      break; /* full: the outer frames are left out */
  }
  if (stk != NULL && pos > 0) {
    size_t len = ctx->stack_cap - 1 - pos;
    memmove(stk, stk + pos, len);
    stk[len] = '\0';
  }
  if (found)
    return SCALENE_LOCATE_FOUND;
  loc->file[0] = '\0';
  return SCALENE_LOCATE_UNATTRIBUTED;
}

/* The walk with safe reads (the signal handler, remote mode) and the one
 * with plain loads (inside a hook), apart so that each stack frame holds
 * only what its walk uses: the read windows take 2 KiB, on the stack of
 * whatever thread the signal interrupted.  Not inlined into core_locate,
 * so that a thread with no Python state, which returns before walking,
 * does not reserve them either. */
static __attribute__((noinline)) int core_walk_safe(const scalene_sample_context_t *ctx,
                                                    scalene_location_t *loc,
                                                    const core_filter *f,
                                                    const PyThreadState *ts)
{
  unsigned char win[CORE_WINDOWS][CORE_WINDOW];
  core_reader r;
  core_reader_init(&r, win);
  return core_walk(ctx, loc, f, ts, &r);
}

static __attribute__((noinline)) int core_walk_plain(const scalene_sample_context_t *ctx,
                                                     scalene_location_t *loc,
                                                     const core_filter *f,
                                                     const PyThreadState *ts)
{
  core_reader r;
  core_reader_init(&r, NULL);
  return core_walk(ctx, loc, f, ts, &r);
}

/* The scalene_locator_fn.  Walks out from the thread's innermost frame to
 * the first complete Python frame whose file passes the filter and reports
 * its file, function and line: time spent in the stdlib, in numpy's
 * dispatcher or in a library is charged to the user's line that called it.
 * When the sampler asks for the stack (ctx->stack, --stacks), the walk goes
 * on to the outermost frame and writes every frame that passes the filter
 * (file and @profile ranges alike) into ctx->stack, outermost first; when
 * the buffer is full the outer frames that do not fit are left out. */
static int core_locate(const scalene_sample_context_t *ctx, scalene_location_t *loc, void *arg)
{
  const core_filter *f = arg;
  const PyThreadState *ts;
  int remote = ctx->remote;
  if (ctx->stack_cap > 1)
    ctx->stack[0] = '\0';
  if (!remote) {
    ts = PyGILState_GetThisThreadState();
  } else {
    if (ctx->tid != f->start_tid)
      return SCALENE_LOCATE_SKIP;
    ts = f->start_tstate;
  }
  if (ts == NULL)
    /* A thread with no Python thread state (a C library's worker, a BLAS
     * pool): its CPU time is the program's too, at no Python line. */
    return SCALENE_LOCATE_UNATTRIBUTED;
  if (remote || !ctx->in_hook)
    return core_walk_safe(ctx, loc, f, ts);
  return core_walk_plain(ctx, loc, f, ts);
}

/* ------------------------------------------------------------------ Python's allocators
 *
 * With memory profiling on, the RAW, MEM and OBJ allocators are replaced
 * (PyMem_SetAllocator) by the library's wrappers of the originals
 * (scalene_heap_wrap_allocator; for pymalloc's MEM and OBJ domains
 * scalene_heap_wrap_pool, whose free is pymalloc's own, so that the
 * interpreter keeps the inlined free its build specialises for the default
 * allocator, heap.h): one call into the library per allocation or free
 * (pymalloc's frees: none), which counts each block once, as Python's, and keeps
 * the malloc hooks from counting the malloc an allocator makes; the
 * wrappers call core_locate, itself allocation-free.  The RAW domain runs
 * without the GIL, so they may run on any thread at once; they only read
 * core_mem_wrap, which is written with the GIL held while no wrapper is
 * installed and never cleared, so that a thread still inside a wrapper
 * after stop() restored the originals keeps a valid allocator.  Every
 * start wraps them again (core_mem_install), so that the pooled wrappers'
 * countdowns are drawn for that start (SCALENE_HEAP_SERIALIZED, heap.h). */

static PyMemAllocatorEx core_mem_orig[3]; /* RAW, MEM, OBJ: what start() replaced */
static scalene_heap_wrapper_t core_mem_wrap[3];
static PyObjectArenaAllocator core_arena_orig;
static int core_mem_installed, core_arena_installed;

static const PyMemAllocatorDomain core_mem_domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                        PYMEM_DOMAIN_OBJ};

/* pymalloc's largest pool request (SMALL_REQUEST_THRESHOLD, 512 in 3.8 and
 * later): bigger requests, and those its pools cannot serve, go to the RAW
 * domain. */
#define CORE_PYMALLOC_MAX 512

/* Before 3.12 the MEM and OBJ domains are called with the GIL held, so
 * their wrappers may count on a countdown of their own
 * (SCALENE_HEAP_SERIALIZED: fewer instructions on the interpreter's most
 * frequent call).  From 3.12 on every allocator must be thread-safe
 * (subinterpreters with a GIL of their own allocate at the same time), and
 * they count on the calling thread's. */
#if PY_VERSION_HEX < 0x030C0000
#define CORE_POOL_SERIALIZED SCALENE_HEAP_SERIALIZED
#else
#define CORE_POOL_SERIALIZED 0u
#endif

/* pymalloc's arenas are the pools' memory, counted block by block by the
 * pooled wrappers: the mmap that makes an arena is not counted again. */
static void *core_arena_alloc(void *ctx, size_t size)
{
  scalene_heap_enter();
  void *p = core_arena_orig.alloc(ctx, size);
  scalene_heap_leave();
  return p;
}

/* Whether the MEM and OBJ domains are plain pymalloc, which then need no
 * bracket (SCALENE_HEAP_POOLED, heap.h): no debug hooks (their ctx is set),
 * no tracemalloc or other wrapper (ctx set too), not PYTHONMALLOC=malloc
 * (then OBJ is RAW's function). */
static int core_is_pymalloc(void)
{
  const PyMemAllocatorEx *raw = &core_mem_orig[0], *mem = &core_mem_orig[1],
                         *obj = &core_mem_orig[2];
  return obj->ctx == NULL && mem->ctx == NULL && obj->malloc == mem->malloc &&
         obj->free == mem->free && obj->malloc != raw->malloc && core_arena_orig.alloc != NULL;
}

/* Installs the wrappers; with the GIL held. */
static void core_mem_install(void)
{
  if (core_mem_installed)
    return;
  for (int i = 0; i < 3; i++)
    PyMem_GetAllocator(core_mem_domains[i], &core_mem_orig[i]);
  PyObject_GetArenaAllocator(&core_arena_orig);
  int pooled = core_is_pymalloc();
  for (int i = 0; i < 3; i++) {
    scalene_allocator_t inner = {core_mem_orig[i].ctx, core_mem_orig[i].malloc,
                                 core_mem_orig[i].calloc, core_mem_orig[i].realloc,
                                 core_mem_orig[i].free};
    scalene_allocator_t out;
    int rc;
    if (pooled && i > 0) {
      /* pymalloc: its free stays the interpreter's own (scalene_heap_wrap_pool);
       * sampled requests come from the RAW allocator, whose wrapper counts
       * their frees, since pymalloc hands it every block it did not allocate. */
      scalene_allocator_t raw = {core_mem_orig[0].ctx, core_mem_orig[0].malloc,
                                 core_mem_orig[0].calloc, core_mem_orig[0].realloc,
                                 core_mem_orig[0].free};
      rc = scalene_heap_wrap_pool(&core_mem_wrap[i], &inner, &raw,
                                  SCALENE_HEAP_PYTHON | CORE_POOL_SERIALIZED, CORE_PYMALLOC_MAX,
                                  &out);
    } else {
      rc = scalene_heap_wrap_allocator(&core_mem_wrap[i], &inner, SCALENE_HEAP_PYTHON,
                                       CORE_PYMALLOC_MAX, &out);
    }
    if (rc != 0)
      continue; /* cannot happen: CPython's allocators have all four functions */
    PyMemAllocatorEx hook = {out.ctx, out.malloc, out.calloc, out.realloc, out.free};
    PyMem_SetAllocator(core_mem_domains[i], &hook);
  }
  if (pooled) {
    PyObjectArenaAllocator arena = {core_arena_orig.ctx, core_arena_alloc, core_arena_orig.free};
    PyObject_SetArenaAllocator(&arena);
    core_arena_installed = 1;
  }
  core_mem_installed = 1;
}

/* Puts the original allocators back; with the GIL held. */
static void core_mem_restore(void)
{
  if (!core_mem_installed)
    return;
  for (int i = 0; i < 3; i++)
    PyMem_SetAllocator(core_mem_domains[i], &core_mem_orig[i]);
  if (core_arena_installed)
    PyObject_SetArenaAllocator(&core_arena_orig);
  core_arena_installed = 0;
  core_mem_installed = 0;
}

/* ------------------------------------------------------------------ the Profiler */

typedef struct ProfilerObject {
  PyObject_HEAD
  scalene_profile_t *profile;
  scalene_sampler_t *sampler;
  scalene_heap_t *heap;        /* memory profiling (memory=True), else NULL */
  scalene_memcpy_t *copy;      /* copy profiling: with the heap sampler, else NULL */
  core_filter filter;          /* the locator's argument; filled while running */
  /* the settings, as given */
  int profile_all;
  PyObject *program_path;      /* str */
  PyObject *own_prefix;        /* str */
  PyObject *profile_only;      /* tuple of str */
  PyObject *profile_exclude;   /* tuple of str */
  PyObject *exclude_prefixes;  /* tuple of str */
  PyObject *include_prefixes;  /* tuple of str */
  core_ranges *ranges;         /* @profile functions (PyMem_RawCalloc'ed) */
  /* the samplers' settings, to make them again in a forked child */
  double interval;
  int signum, offcpu, memory, stacks;
  long long sampling_bytes, copy_bytes;
  /* state */
  int running;
  double elapsed_done;         /* wall seconds of the finished intervals */
  double started;              /* CLOCK_MONOTONIC at the running interval's start */
  double start_absolute;       /* CLOCK_REALTIME at the first start, 0 before */
} ProfilerObject;

static core_state *profiler_state(PyObject *self)
{
  PyObject *module = PyType_GetModuleByDef(Py_TYPE(self), &core_module);
  return module != NULL ? core_get_state(module) : NULL;
}

static double profiler_elapsed(const ProfilerObject *p)
{
  return p->elapsed_done + (p->running ? core_now(CLOCK_MONOTONIC) - p->started : 0.0);
}

static int profiler_build_filter(ProfilerObject *p)
{
  core_filter *f = &p->filter;
  f->profile_all = p->profile_all;
  f->ranges = p->ranges;
  if (core_str_set(&f->own_prefix, p->own_prefix) < 0 ||
      core_str_set(&f->program_path, p->program_path) < 0 ||
      core_strv_set(&f->profile_only, p->profile_only) < 0 ||
      core_strv_set(&f->profile_exclude, p->profile_exclude) < 0 ||
      core_strv_set(&f->exclude_prefixes, p->exclude_prefixes) < 0 ||
      core_strv_set(&f->include_prefixes, p->include_prefixes) < 0) {
    core_filter_clear(f);
    return -1;
  }
  return 0;
}

/* Makes the samplers of self->profile from the settings stored in self
 * (at creation, and again in a forked child); raises and returns -1 on
 * failure. */
static int profiler_make_samplers(ProfilerObject *self, core_state *st)
{
  scalene_sampler_options_t opts;
  scalene_sampler_options_init(&opts);
  opts.interval_ns = (uint64_t)(self->interval * 1e9 + 0.5);
  if (self->signum != 0)
    opts.signum = self->signum;
  opts.clock = self->offcpu ? SCALENE_CLOCK_WALL : SCALENE_CLOCK_CPU;
  opts.locator = core_locate;
  opts.locator_arg = &self->filter;
  opts.interpreter_addr = (const void *)&PyEval_EvalCode;
  /* --stacks: room for the frames core_locate writes, per sample (a
   * frame is at most about 400 bytes; deeper stacks lose their outer
   * frames).  The CPU sampler only. */
  opts.stack_bytes = self->stacks ? CORE_STACK_BYTES : 0;
  /* Each record then carries a stack buffer: 128 records (1.28 s of one
   * thread's samples at the default interval; the sampler's thread drains
   * every tick) keep that at 128 KiB per thread instead of 512 KiB. */
  if (self->stacks)
    opts.ring_capacity = CORE_STACK_RING;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  int rc = scalene_sampler_new(&opts, self->profile, &self->sampler, &err);
  if (rc < 0) {
    core_raise(st, rc, &err);
    return -1;
  }
  if (self->memory) {
    /* Same profile, same locator: inside an allocation (ctx->in_hook) it
     * reads the allocating thread's own frames with plain loads. */
    scalene_heap_options_t hopts;
    scalene_heap_options_init(&hopts);
    hopts.sampling_bytes = (uint64_t)self->sampling_bytes;
    hopts.hooks = SCALENE_HEAP_HOOK_MALLOC;
    hopts.locator = core_locate;
    hopts.locator_arg = &self->filter;
    rc = scalene_heap_new(&hopts, self->profile, &self->heap, &err);
    if (rc < 0) {
      core_raise(st, rc, &err);
      return -1;
    }
    /* The copy sampler: same profile and locator.  The locator never
     * allocates; the copies it makes with plain loads inside a hook (a
     * string of variable length is a memcpy call) run inside either
     * sampler's slow path, where a copy is not counted (the shared depth of
     * hook_tls.h). */
    scalene_memcpy_options_t copts;
    scalene_memcpy_options_init(&copts);
    copts.sampling_bytes = (uint64_t)self->copy_bytes;
    copts.locator = core_locate;
    copts.locator_arg = &self->filter;
    rc = scalene_memcpy_new(&copts, self->profile, &self->copy, &err);
    if (rc < 0) {
      core_raise(st, rc, &err);
      return -1;
    }
  }
  return 0;
}

static PyObject *profiler_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
  static char *kwlist[] = {"interval",      "signum",          "offcpu",
                           "program_path",  "profile_all",     "profile_only",
                           "profile_exclude", "exclude_prefixes", "own_prefix",
                           "memory",        "malloc_sampling_bytes",
                           "copy_sampling_bytes", "include_prefixes", "stacks", NULL};
  double interval = 0.01;
  int signum = 0, offcpu = 1, profile_all = 0, memory = 0, stacks = 0;
  long long sampling_bytes = 1048576, copy_bytes = 0;
  PyObject *program_path = NULL, *own_prefix = NULL;
  PyObject *only = NULL, *exclude = NULL, *prefixes = NULL, *includes = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$dipUpOOOUpLLOp:Profiler", kwlist, &interval,
                                   &signum, &offcpu, &program_path, &profile_all, &only,
                                   &exclude, &prefixes, &own_prefix, &memory, &sampling_bytes,
                                   &copy_bytes, &includes, &stacks))
    return NULL;
  if (copy_bytes == 0)
    copy_bytes = sampling_bytes;
  if (copy_bytes < 0) {
    PyErr_Format(PyExc_ValueError, "copy_sampling_bytes must be positive (0: as malloc), not %lld",
                 copy_bytes);
    return NULL;
  }
  if (sampling_bytes <= 0) {
    PyErr_Format(PyExc_ValueError, "malloc_sampling_bytes must be positive, not %lld",
                 sampling_bytes);
    return NULL;
  }
  if (!(interval > 0.0) || interval > 3600.0) {
    char msg[96];
    snprintf(msg, sizeof msg, "interval must be in (0, 3600] seconds, not %g", interval);
    PyErr_SetString(PyExc_ValueError, msg);
    return NULL;
  }
  if (signum < 0) {
    PyErr_Format(PyExc_ValueError, "signum must be a signal number or 0, not %d", signum);
    return NULL;
  }
  PyObject *module = PyType_GetModuleByDef(type, &core_module);
  if (module == NULL)
    return NULL;
  core_state *st = core_get_state(module);

  ProfilerObject *self = (ProfilerObject *)type->tp_alloc(type, 0);
  if (self == NULL)
    return NULL;
  /* tp_alloc zeroed everything, so dealloc copes with a half-built object. */
  self->profile_all = profile_all;
  self->program_path = program_path ? PyUnicode_FromObject(program_path) : PyUnicode_FromString("");
  self->own_prefix = own_prefix ? PyUnicode_FromObject(own_prefix) : PyUnicode_FromString("");
  if (self->program_path == NULL || self->own_prefix == NULL)
    goto fail;
  self->profile_only = only ? core_str_tuple(only, "profile_only") : PyTuple_New(0);
  if (self->profile_only == NULL)
    goto fail;
  self->profile_exclude = exclude ? core_str_tuple(exclude, "profile_exclude") : PyTuple_New(0);
  if (self->profile_exclude == NULL)
    goto fail;
  self->exclude_prefixes = prefixes ? core_str_tuple(prefixes, "exclude_prefixes") : PyTuple_New(0);
  if (self->exclude_prefixes == NULL)
    goto fail;
  self->include_prefixes =
      includes ? core_str_tuple(includes, "include_prefixes") : PyTuple_New(0);
  if (self->include_prefixes == NULL)
    goto fail;
  self->ranges = PyMem_RawCalloc(1, sizeof *self->ranges);
  if (self->ranges == NULL) {
    PyErr_NoMemory();
    goto fail;
  }

  self->profile = scalene_profile_new();
  if (self->profile == NULL) {
    PyErr_NoMemory();
    goto fail;
  }
  self->interval = interval;
  self->signum = signum;
  self->offcpu = offcpu;
  self->memory = memory;
  self->stacks = stacks;
  self->sampling_bytes = sampling_bytes;
  self->copy_bytes = copy_bytes;
  if (profiler_make_samplers(self, st) < 0)
    goto fail;
  return (PyObject *)self;
fail:
  Py_DECREF(self);
  return NULL;
}

/* Stops a running profiler and books the interval; the caller raises. */
static int profiler_stop_impl(ProfilerObject *self)
{
  if (!self->running)
    return 0;
  /* Python's allocators first, then the malloc hooks: no hook is left
   * installed, and nothing calls the locator once the filter is cleared. */
  int hrc = 0;
  if (self->heap != NULL) {
    core_mem_restore();
    if (self->copy != NULL)
      hrc = scalene_memcpy_stop(self->copy);
    int r = scalene_heap_stop(self->heap);
    if (hrc == 0)
      hrc = r;
  }
  int rc = scalene_sampler_stop(self->sampler);
  if (rc == 0)
    rc = hrc;
  /* The timers are disarmed and the handler restored: nothing reads the
   * filter any more. */
  self->elapsed_done += core_now(CLOCK_MONOTONIC) - self->started;
  self->running = 0;
  core_filter_clear(&self->filter);
  scalene_profile_set_elapsed(self->profile, self->elapsed_done, self->start_absolute);
  core_state *st = profiler_state((PyObject *)self);
  if (st != NULL && st->running == (PyObject *)self)
    st->running = NULL;
  return rc;
}

/* Frees the samplers (stopped) and forgets them. */
static void profiler_free_samplers(ProfilerObject *self)
{
  scalene_memcpy_free(self->copy);
  self->copy = NULL;
  scalene_heap_free(self->heap);
  self->heap = NULL;
  scalene_sampler_free(self->sampler);
  self->sampler = NULL;
}

static void profiler_dealloc(PyObject *op)
{
  ProfilerObject *self = (ProfilerObject *)op;
  PyTypeObject *tp = Py_TYPE(op);
  if (self->running) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (profiler_stop_impl(self) < 0 || PyErr_Occurred())
      PyErr_WriteUnraisable(op);
    PyErr_Restore(type, value, tb);
  }
  profiler_free_samplers(self);
  scalene_profile_free(self->profile);
  core_filter_clear(&self->filter);
  Py_XDECREF(self->program_path);
  Py_XDECREF(self->own_prefix);
  Py_XDECREF(self->profile_only);
  Py_XDECREF(self->profile_exclude);
  Py_XDECREF(self->exclude_prefixes);
  Py_XDECREF(self->include_prefixes);
  if (self->ranges != NULL) {
    size_t count = atomic_load(&self->ranges->count);
    for (size_t i = 0; i < count; i++)
      PyMem_RawFree(self->ranges->v[i].file);
    PyMem_RawFree(self->ranges);
  }
  tp->tp_free(op);
  Py_DECREF(tp);
}

PyDoc_STRVAR(profiler_start_doc,
"start()\n--\n\n"
"Arm the CPU sampler on every thread (and with memory=True, hook the\n"
"allocators).  Raises Error when the signal is taken\n"
"(the message names it) or when another Profiler runs.");

static PyObject *profiler_start(PyObject *op, PyObject *Py_UNUSED(ignored))
{
  ProfilerObject *self = (ProfilerObject *)op;
  core_state *st = profiler_state(op);
  if (st == NULL)
    return NULL;
  if (self->running)
    return core_raise_msg(st, SCALENE_ESTATE, "this Profiler is already running");
  if (st->running != NULL)
    return core_raise_msg(st, SCALENE_ESTATE, "another Profiler is running");
  if (profiler_build_filter(self) < 0)
    return NULL;
  self->filter.start_tstate = PyThreadState_Get();
  self->filter.start_tid = core_gettid();
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  double started = core_now(CLOCK_MONOTONIC);
  int rc = scalene_sampler_start(self->sampler, &err);
  if (rc < 0) {
    core_filter_clear(&self->filter);
    return core_raise(st, rc, &err);
  }
  if (self->heap != NULL) {
    rc = scalene_heap_start(self->heap, &err);
    if (rc < 0) {
      (void)scalene_sampler_stop(self->sampler);
      core_filter_clear(&self->filter);
      return core_raise(st, rc, &err);
    }
    if (self->copy != NULL) {
      rc = scalene_memcpy_start(self->copy, &err);
      if (rc < 0) {
        (void)scalene_heap_stop(self->heap);
        (void)scalene_sampler_stop(self->sampler);
        core_filter_clear(&self->filter);
        return core_raise(st, rc, &err);
      }
    }
    core_mem_install();
  }
  self->running = 1;
  self->started = started;
  if (self->start_absolute == 0.0)
    self->start_absolute = core_now(CLOCK_REALTIME);
  st->running = op;
  Py_RETURN_NONE;
}

PyDoc_STRVAR(profiler_stop_doc,
"stop()\n--\n\n"
"Disarm the sampler and drain what it buffered into the profile.  Calling it\n"
"when the Profiler is not running does nothing.");

static PyObject *profiler_stop(PyObject *op, PyObject *Py_UNUSED(ignored))
{
  ProfilerObject *self = (ProfilerObject *)op;
  int rc = profiler_stop_impl(self);
  if (rc < 0) {
    core_state *st = profiler_state(op);
    return st != NULL ? core_raise(st, rc, NULL) : NULL;
  }
  Py_RETURN_NONE;
}

PyDoc_STRVAR(profiler_drain_doc,
"drain()\n--\n\n"
"Move the samples buffered so far into the profile (the sampler also does\n"
"this at every tick).");

static PyObject *profiler_drain(PyObject *op, PyObject *Py_UNUSED(ignored))
{
  ProfilerObject *self = (ProfilerObject *)op;
  if (self->running) {
    int rc = scalene_sampler_drain(self->sampler);
    if (rc == 0 && self->heap != NULL)
      rc = scalene_heap_drain(self->heap);
    if (rc == 0 && self->copy != NULL)
      rc = scalene_memcpy_drain(self->copy);
    if (rc < 0) {
      core_state *st = profiler_state(op);
      return st != NULL ? core_raise(st, rc, NULL) : NULL;
    }
  }
  Py_RETURN_NONE;
}

PyDoc_STRVAR(profiler_set_program_doc,
"set_program(program, args)\n--\n\n"
"Record the profiled program and its arguments in the profile.");

static PyObject *profiler_set_program(PyObject *op, PyObject *args, PyObject *kwds)
{
  static char *kwlist[] = {"program", "args", NULL};
  ProfilerObject *self = (ProfilerObject *)op;
  const char *program;
  PyObject *argseq;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "sO:set_program", kwlist, &program, &argseq))
    return NULL;
  PyObject *t = core_str_tuple(argseq, "args");
  if (t == NULL)
    return NULL;
  Py_ssize_t n = PyTuple_GET_SIZE(t);
  const char **argv = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof *argv);
  if (argv == NULL) {
    Py_DECREF(t);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    argv[i] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, i));
    if (argv[i] == NULL) {
      PyMem_Free(argv);
      Py_DECREF(t);
      return NULL;
    }
  }
  int rc = scalene_profile_set_program(self->profile, program, (int)n, argv);
  PyMem_Free(argv);
  Py_DECREF(t);
  if (rc < 0) {
    core_state *st = profiler_state(op);
    return st != NULL ? core_raise(st, rc, NULL) : NULL;
  }
  Py_RETURN_NONE;
}

PyDoc_STRVAR(profiler_write_json_doc,
"write_json(path, *, memory=False, reduced=False, leaks=True,\n"
"           malloc_threshold=0)\n--\n\n"
"Write the profile as Scalene-compatible JSON to path, atomically.  With\n"
"leaks=False every file's \"leaks\" is {}; a likely leak is listed only\n"
"with at least malloc_threshold sampled allocations or 1 MiB allocated.");

static PyObject *profiler_write_json(PyObject *op, PyObject *args, PyObject *kwds)
{
  static char *kwlist[] = {"path", "memory", "reduced", "leaks", "malloc_threshold", NULL};
  ProfilerObject *self = (ProfilerObject *)op;
  PyObject *path = NULL;
  int memory = 0, reduced = 0, leaks = 1;
  unsigned long long threshold = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|$pppK:write_json", kwlist,
                                   PyUnicode_FSConverter, &path, &memory, &reduced, &leaks,
                                   &threshold))
    return NULL;
  core_state *st = profiler_state(op);
  if (st == NULL) {
    Py_DECREF(path);
    return NULL;
  }
  if (self->running) {
    (void)scalene_sampler_drain(self->sampler);
    if (self->heap != NULL)
      (void)scalene_heap_drain(self->heap);
    if (self->copy != NULL)
      (void)scalene_memcpy_drain(self->copy);
  }
  scalene_profile_set_elapsed(self->profile, profiler_elapsed(self), self->start_absolute);
  scalene_output_options_t opts;
  scalene_output_options_init(&opts);
  opts.memory = memory;
  opts.reduced = reduced;
  opts.leaks = leaks;
  opts.malloc_threshold = (uint64_t)threshold;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  int rc;
  Py_BEGIN_ALLOW_THREADS
  /* A write while the samplers run (--profile-interval) allocates and
   * copies for itself, not for the program: none of it is counted. */
  scalene_heap_enter();
  rc = scalene_output_write_json(self->profile, PyBytes_AS_STRING(path), &opts, &err);
  scalene_heap_leave();
  Py_END_ALLOW_THREADS
  Py_DECREF(path);
  if (rc < 0)
    return core_raise(st, rc, &err);
  Py_RETURN_NONE;
}

PyDoc_STRVAR(profiler_stats_doc,
"stats()\n--\n\n"
"The sampler's counters as a dict: samples, offcpu_samples, dropped,\n"
"skipped, threads_armed, threads_live; with memory profiling also 'heap':\n"
"a dict of samples, frees_matched, dropped, live_bytes, hooked_objects (GOT\n"
"entries patched now) and python_hooks (1 while Python's allocators are\n"
"hooked), and 'copy': a dict of samples, dropped, copied_bytes and hooked\n"
"(memcpy-family GOT entries patched now).");

static PyObject *profiler_stats(PyObject *op, PyObject *Py_UNUSED(ignored))
{
  ProfilerObject *self = (ProfilerObject *)op;
  scalene_sampler_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  int rc = scalene_sampler_get_stats(self->sampler, &s);
  if (rc < 0) {
    core_state *st = profiler_state(op);
    return st != NULL ? core_raise(st, rc, NULL) : NULL;
  }
  PyObject *d = Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:I}", "samples",
                              (unsigned long long)s.samples, "offcpu_samples",
                              (unsigned long long)s.offcpu_samples, "dropped",
                              (unsigned long long)s.dropped, "skipped",
                              (unsigned long long)s.skipped, "threads_armed",
                              (unsigned long long)s.threads_armed, "threads_live",
                              s.threads_live);
  if (d == NULL || self->heap == NULL)
    return d;
  scalene_heap_stats_t h;
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  rc = scalene_heap_get_stats(self->heap, &h);
  if (rc < 0) {
    Py_DECREF(d);
    core_state *st = profiler_state(op);
    return st != NULL ? core_raise(st, rc, NULL) : NULL;
  }
  PyObject *hd = Py_BuildValue("{s:K,s:K,s:K,s:d,s:I,s:i}", "samples",
                               (unsigned long long)h.samples, "frees_matched",
                               (unsigned long long)h.frees_matched, "dropped",
                               (unsigned long long)h.dropped, "live_bytes", h.live_bytes,
                               "hooked_objects", h.hooked_objects, "python_hooks",
                               core_mem_installed);
  if (hd == NULL || PyDict_SetItemString(d, "heap", hd) < 0) {
    Py_XDECREF(hd);
    Py_DECREF(d);
    return NULL;
  }
  Py_DECREF(hd);
  if (self->copy == NULL)
    return d;
  scalene_memcpy_stats_t c;
  memset(&c, 0, sizeof c);
  c.size = sizeof c;
  rc = scalene_memcpy_get_stats(self->copy, &c);
  if (rc < 0) {
    Py_DECREF(d);
    core_state *st = profiler_state(op);
    return st != NULL ? core_raise(st, rc, NULL) : NULL;
  }
  PyObject *cd = Py_BuildValue("{s:K,s:K,s:d,s:I}", "samples", (unsigned long long)c.samples,
                               "dropped", (unsigned long long)c.dropped, "copied_bytes",
                               c.copied_bytes, "hooked", c.hooked);
  if (cd == NULL || PyDict_SetItemString(d, "copy", cd) < 0) {
    Py_XDECREF(cd);
    Py_DECREF(d);
    return NULL;
  }
  Py_DECREF(cd);
  return d;
}

PyDoc_STRVAR(profiler_probe_doc,
"_probe(thread_id=None, hook=False, stack=False)\n--\n\n"
"Test hook: run the locator now with this Profiler's filter and return\n"
"(result, file, function, line, function_line), and with stack=True the\n"
"stack the locator writes for --stacks as a sixth item (16 KiB at most,\n"
"outer frames left out beyond).  Without thread_id it reads\n"
"the calling thread as the signal handler does (scalene_safe_read), or with\n"
"hook=True as the heap and copy samplers' hooks do (plain loads); with the\n"
"threading ident of another thread it reads that thread in remote mode\n"
"(scalene_safe_read), as the off-CPU sampler does.  Remote probes are\n"
"refused while running.");

static PyObject *profiler_probe(PyObject *op, PyObject *args, PyObject *kwds)
{
  static char *kwlist[] = {"thread_id", "hook", "stack", NULL};
  ProfilerObject *self = (ProfilerObject *)op;
  PyObject *ident = Py_None;
  int hook = 0, want_stack = 0;
  static char stack[16384]; /* under the GIL */
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Opp:_probe", kwlist, &ident, &hook,
                                   &want_stack))
    return NULL;
  if (hook && ident != Py_None)
    return PyErr_Format(PyExc_ValueError, "hook=True reads the calling thread only");
  core_state *st = profiler_state(op);
  if (st == NULL)
    return NULL;
  scalene_sample_context_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.tid = core_gettid();
  ctx.in_hook = hook;
  if (want_stack) {
    ctx.stack = stack;
    ctx.stack_cap = sizeof stack;
  }
  PyThreadState *target = NULL;
  if (ident != Py_None) {
    if (self->running)
      return core_raise_msg(st, SCALENE_ESTATE, "remote _probe while the Profiler runs");
    unsigned long want = PyLong_AsUnsignedLong(ident);
    if (want == (unsigned long)-1 && PyErr_Occurred())
      return NULL;
    for (PyThreadState *t = PyInterpreterState_ThreadHead(PyInterpreterState_Get()); t != NULL;
         t = PyThreadState_Next(t))
      if (t->thread_id == want)
        target = t;
    if (target == NULL)
      return PyErr_Format(PyExc_ValueError, "no Python thread with ident %lu", want);
    ctx.remote = 1;
  }
  int built = 0;
  if (!self->running) {
    if (profiler_build_filter(self) < 0)
      return NULL;
    built = 1;
  }
  const PyThreadState *saved_ts = self->filter.start_tstate;
  pid_t saved_tid = self->filter.start_tid;
  if (target != NULL) {
    self->filter.start_tstate = target;
    self->filter.start_tid = ctx.tid;
  }
  scalene_location_t loc;
  memset(&loc, 0, sizeof loc);
  int r = core_locate(&ctx, &loc, &self->filter);
  self->filter.start_tstate = saved_ts;
  self->filter.start_tid = saved_tid;
  if (built)
    core_filter_clear(&self->filter);
  /* The stack is decoded before anything else runs that could call
   * _probe again; without stack=True the format leaves `text` out. */
  PyObject *text = NULL;
  if (want_stack && (text = PyUnicode_DecodeUTF8(stack, (Py_ssize_t)strlen(stack), NULL)) == NULL)
    return NULL;
  return Py_BuildValue(want_stack ? "(is#s#IIN)" : "(is#s#II)", r, loc.file,
                       (Py_ssize_t)strlen(loc.file), loc.function,
                       (Py_ssize_t)strlen(loc.function), (unsigned int)loc.line,
                       (unsigned int)loc.function_line, text);
}

static PyObject *profiler_get_running(PyObject *op, void *Py_UNUSED(closure))
{
  return PyBool_FromLong(((ProfilerObject *)op)->running);
}

static PyObject *profiler_get_memory(PyObject *op, void *Py_UNUSED(closure))
{
  return PyBool_FromLong(((ProfilerObject *)op)->heap != NULL);
}

static PyObject *profiler_get_elapsed(PyObject *op, void *Py_UNUSED(closure))
{
  return PyFloat_FromDouble(profiler_elapsed((ProfilerObject *)op));
}

PyDoc_STRVAR(profiler_add_profile_range_doc,
"add_profile_range(filename, first_line, last_line)\n--\n\n"
"Registers a function decorated with @profile: lines first_line..last_line\n"
"of filename (a code object's co_filename).  From the first registration on,\n"
"only lines inside registered functions are charged (a sample elsewhere goes\n"
"to the innermost caller that is inside one, or to no line).  Takes effect\n"
"at once, also while running.");

static PyObject *profiler_add_profile_range(PyObject *op, PyObject *args)
{
  ProfilerObject *self = (ProfilerObject *)op;
  PyObject *file;
  unsigned int first, last;
  if (!PyArg_ParseTuple(args, "UII:add_profile_range", &file, &first, &last))
    return NULL;
  if (first > last)
    return PyErr_Format(PyExc_ValueError, "first_line %u is after last_line %u", first, last);
  Py_ssize_t n;
  const char *s = PyUnicode_AsUTF8AndSize(file, &n);
  if (s == NULL)
    return NULL;
  core_ranges *r = self->ranges;
  size_t count = atomic_load_explicit(&r->count, memory_order_relaxed);
  for (size_t i = 0; i < count; i++)
    if (r->v[i].first == first && r->v[i].last == last && r->v[i].n == (size_t)n &&
        memcmp(r->v[i].file, s, (size_t)n) == 0)
      Py_RETURN_NONE; /* decorated twice */
  if (count == CORE_MAX_RANGES)
    return PyErr_Format(PyExc_ValueError, "more than %d functions decorated with @profile",
                        CORE_MAX_RANGES);
  char *copy = PyMem_RawMalloc((size_t)n + 1);
  if (copy == NULL)
    return PyErr_NoMemory();
  memcpy(copy, s, (size_t)n + 1);
  r->v[count].file = copy;
  r->v[count].n = (size_t)n;
  r->v[count].first = first;
  r->v[count].last = last;
  atomic_store_explicit(&r->count, count + 1, memory_order_release);
  Py_RETURN_NONE;
}

PyDoc_STRVAR(profiler_reset_after_fork_doc,
"_reset_after_fork()\n--\n\n"
"In a forked child (os.register_at_fork(after_in_child=...)), with the GIL:\n"
"drops what was inherited -- the parent's samplers (their threads and\n"
"timers do not exist here), hooks and profile -- and makes fresh samplers\n"
"with the same settings on an empty profile whose pid is this process's.\n"
"Profiling is then off; returns whether it was on, for the caller to\n"
"start() again.");

static PyObject *profiler_reset_after_fork(PyObject *op, PyObject *Py_UNUSED(ignored))
{
  ProfilerObject *self = (ProfilerObject *)op;
  core_state *st = profiler_state(op);
  if (st == NULL)
    return NULL;
  int was_running = self->running;
  if (self->running)
    (void)profiler_stop_impl(self); /* the sampler says ESTATE: it has no thread here */
  profiler_free_samplers(self);
  scalene_profile_free(self->profile);
  self->profile = scalene_profile_new();
  if (self->profile == NULL)
    return PyErr_NoMemory();
  self->elapsed_done = 0;
  self->start_absolute = 0;
  scalene_profile_set_pid(self->profile, (long)getpid());
  if (profiler_make_samplers(self, st) < 0)
    return NULL;
  return PyBool_FromLong(was_running);
}

PyDoc_STRVAR(profiler_set_pid_doc,
"set_pid(pid)\n--\n\n"
"Records the id of the process this profile describes.");

static PyObject *profiler_set_pid(PyObject *op, PyObject *arg)
{
  long pid = PyLong_AsLong(arg);
  if (pid == -1 && PyErr_Occurred())
    return NULL;
  scalene_profile_set_pid(((ProfilerObject *)op)->profile, pid);
  Py_RETURN_NONE;
}

PyDoc_STRVAR(profiler_merge_child_doc,
"merge_child(path)\n--\n\n"
"Adds the profile a child process saved at path (JSON) to this one: its\n"
"samples and records, and an entry of its own among the processes\n"
"(scalene_profile_merge_child); the elapsed time stays this one's.  Call it\n"
"after this profile's own collection has ended.  Raises _core.Error when\n"
"the file cannot be read or is not a profile.");

static PyObject *profiler_merge_child(PyObject *op, PyObject *arg)
{
  ProfilerObject *self = (ProfilerObject *)op;
  core_state *st = profiler_state(op);
  if (st == NULL)
    return NULL;
  PyObject *bytes = NULL;
  if (!PyUnicode_FSConverter(arg, &bytes))
    return NULL;
  scalene_profile_t *child = NULL;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = scalene_output_read_json(PyBytes_AS_STRING(bytes), &child, &err);
  if (rc == 0)
    rc = scalene_profile_merge_child(self->profile, child);
  Py_END_ALLOW_THREADS
  scalene_profile_free(child);
  Py_DECREF(bytes);
  if (rc < 0)
    return core_raise(st, rc, &err);
  Py_RETURN_NONE;
}

static PyMethodDef profiler_methods[] = {
    {"_reset_after_fork", profiler_reset_after_fork, METH_NOARGS,
     profiler_reset_after_fork_doc},
    {"set_pid", profiler_set_pid, METH_O, profiler_set_pid_doc},
    {"merge_child", profiler_merge_child, METH_O, profiler_merge_child_doc},
    {"add_profile_range", profiler_add_profile_range, METH_VARARGS,
     profiler_add_profile_range_doc},
    {"start", profiler_start, METH_NOARGS, profiler_start_doc},
    {"stop", profiler_stop, METH_NOARGS, profiler_stop_doc},
    {"drain", profiler_drain, METH_NOARGS, profiler_drain_doc},
    {"set_program", (PyCFunction)(void (*)(void))profiler_set_program,
     METH_VARARGS | METH_KEYWORDS, profiler_set_program_doc},
    {"write_json", (PyCFunction)(void (*)(void))profiler_write_json,
     METH_VARARGS | METH_KEYWORDS, profiler_write_json_doc},
    {"stats", profiler_stats, METH_NOARGS, profiler_stats_doc},
    {"_probe", (PyCFunction)(void (*)(void))profiler_probe, METH_VARARGS | METH_KEYWORDS,
     profiler_probe_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef profiler_getset[] = {
    {"running", profiler_get_running, NULL, "True between start() and stop().", NULL},
    {"memory", profiler_get_memory, NULL, "True when memory is profiled too.", NULL},
    {"elapsed", profiler_get_elapsed, NULL,
     "Wall seconds summed over the start()..stop() intervals.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(profiler_doc,
"Profiler(*, interval=0.01, signum=0, offcpu=True, program_path='',\n"
"         profile_all=False, profile_only=(), profile_exclude=(),\n"
"         exclude_prefixes=(), own_prefix='', memory=False,\n"
"         malloc_sampling_bytes=1048576, copy_sampling_bytes=0,\n"
"         include_prefixes=())\n--\n\n"
"A CPU profile of this process: per-thread CPU-clock sampling every\n"
"`interval` seconds of each thread's CPU time.  Samples are charged to the\n"
"innermost frame whose file starts with program_path (unless profile_all),\n"
"is not under own_prefix nor exclude_prefixes, contains no profile_exclude\n"
"substring and, when profile_only is given, contains one of its substrings;\n"
"files under include_prefixes count as under program_path.  Once a function\n"
"is registered with add_profile_range (@profile), only lines inside such\n"
"functions are charged.\n"
"With memory=True, start() also starts the heap sampler (heap.h) on the\n"
"same profile, with a mean of malloc_sampling_bytes bytes between samples:\n"
"the malloc family is hooked, and Python's RAW, MEM and OBJ allocators are\n"
"wrapped (PyMem_SetAllocator) so that their blocks count as Python's;\n"
"stop() restores Python's allocators, then removes the malloc hooks.\n"
"Memory profiling includes copy profiling: the memcpy sampler (memcpy.h)\n"
"with a mean of copy_sampling_bytes (0: malloc_sampling_bytes) bytes\n"
"copied between samples, stopped before the heap sampler.\n"
"Only one Profiler may run at a time.");

static PyType_Slot profiler_slots[] = {
    {Py_tp_new, profiler_new},
    {Py_tp_dealloc, profiler_dealloc},
    {Py_tp_methods, profiler_methods},
    {Py_tp_getset, profiler_getset},
    {Py_tp_doc, (void *)profiler_doc},
    {0, NULL},
};

static PyType_Spec profiler_spec = {
    .name = "scalene._core.Profiler",
    .basicsize = sizeof(ProfilerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = profiler_slots,
};

/* ------------------------------------------------------------------ module functions */

PyDoc_STRVAR(core_library_version_doc,
"library_version()\n--\n\n"
"The version of the libscaleneprof shared library in use.");

static PyObject *core_library_version(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
  return PyUnicode_FromString(scalene_version());
}

/* The options render_text and render_html share, from their keywords. */
static void core_view_options(scalene_output_options_t *opts, int reduced, double threshold,
                              int leaks, unsigned long long malloc_threshold)
{
  scalene_output_options_init(opts);
  opts->reduced = reduced;
  opts->cpu_percent_threshold = threshold;
  opts->leaks = leaks;
  opts->malloc_threshold = (uint64_t)malloc_threshold;
}

PyDoc_STRVAR(core_render_text_doc,
"render_text(path, *, reduced=False, color=False, width=132,\n"
"            cpu_percent_threshold=1.0, leaks=True, malloc_threshold=0)\n--\n\n"
"Load a JSON profile (ours or Scalene's) and render the terminal table as a\n"
"str.  Raises Error('file:line:column: message') when it cannot be read.");

static PyObject *core_render_text(PyObject *module, PyObject *args, PyObject *kwds)
{
  static char *kwlist[] = {"path",  "reduced", "color", "width", "cpu_percent_threshold",
                           "leaks", "malloc_threshold", NULL};
  core_state *st = core_get_state(module);
  PyObject *path = NULL;
  int reduced = 0, color = 0, width = 132, leaks = 1;
  double threshold = 1.0;
  unsigned long long malloc_threshold = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|$ppidpK:render_text", kwlist,
                                   PyUnicode_FSConverter, &path, &reduced, &color, &width,
                                   &threshold, &leaks, &malloc_threshold))
    return NULL;
  if (width <= 0) {
    Py_DECREF(path);
    return PyErr_Format(PyExc_ValueError, "width must be positive, not %d", width);
  }
  scalene_output_options_t opts;
  core_view_options(&opts, reduced, threshold, leaks, malloc_threshold);
  opts.color = color;
  opts.width = width;
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  scalene_profile_t *p = NULL;
  char *buf = NULL;
  size_t size = 0;
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = scalene_output_read_json(PyBytes_AS_STRING(path), &p, &err);
  if (rc == 0) {
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL) {
      rc = SCALENE_ENOMEM;
    } else {
      rc = scalene_output_text(p, f, &opts);
      if (fclose(f) != 0 && rc == 0)
        rc = SCALENE_EIO;
    }
    scalene_profile_free(p);
  }
  Py_END_ALLOW_THREADS
  Py_DECREF(path);
  if (rc < 0) {
    free(buf);
    return core_raise(st, rc, &err);
  }
  PyObject *text = PyUnicode_DecodeUTF8(buf != NULL ? buf : "", (Py_ssize_t)size, "replace");
  free(buf);
  return text;
}

PyDoc_STRVAR(core_render_html_doc,
"render_html(json_path, out_path, *, reduced=False, cpu_percent_threshold=1.0,\n"
"            leaks=True, malloc_threshold=0)\n--\n\n"
"Load a JSON profile (ours or Scalene's) and write the HTML view to\n"
"out_path: one self-contained page, replaced atomically.  Raises\n"
"Error('file:line:column: message') when the profile cannot be read and\n"
"Error('out_path: message') when the page cannot be written.");

static PyObject *core_render_html(PyObject *module, PyObject *args, PyObject *kwds)
{
  static char *kwlist[] = {"json_path", "out_path", "reduced", "cpu_percent_threshold",
                           "leaks", "malloc_threshold", NULL};
  core_state *st = core_get_state(module);
  PyObject *path = NULL, *out = NULL;
  int reduced = 0, leaks = 1;
  double threshold = 1.0;
  unsigned long long malloc_threshold = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&O&|$pdpK:render_html", kwlist,
                                   PyUnicode_FSConverter, &path, PyUnicode_FSConverter, &out,
                                   &reduced, &threshold, &leaks, &malloc_threshold))
    return NULL;
  scalene_output_options_t opts;
  core_view_options(&opts, reduced, threshold, leaks, malloc_threshold);
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  scalene_profile_t *p = NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = scalene_output_read_json(PyBytes_AS_STRING(path), &p, &err);
  if (rc == 0) {
    rc = scalene_output_write_html(p, PyBytes_AS_STRING(out), &opts, &err);
    scalene_profile_free(p);
  }
  Py_END_ALLOW_THREADS
  Py_DECREF(path);
  Py_DECREF(out);
  if (rc < 0)
    return core_raise(st, rc, &err);
  Py_RETURN_NONE;
}

PyDoc_STRVAR(core_addr2line_doc,
"_addr2line(code, index, remote=False)\n--\n\n"
"Test hook: the line the locator's own location-table decoder gives for\n"
"code unit `index` of `code` (0 when unknown), reading the table with plain\n"
"loads or, with remote=True, through scalene_safe_read as in remote mode.\n"
"Compare with code.co_lines().  Remote reads are refused while a Profiler\n"
"runs (they share the sampler thread's buffer).");

static PyObject *core_addr2line(PyObject *module, PyObject *args, PyObject *kwds)
{
  static char *kwlist[] = {"code", "index", "remote", NULL};
  core_state *st = core_get_state(module);
  PyObject *code;
  Py_ssize_t index;
  int remote = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!n|p:_addr2line", kwlist, &PyCode_Type, &code,
                                   &index, &remote))
    return NULL;
  if (remote && st->running != NULL)
    return core_raise_msg(st, SCALENE_ESTATE, "remote _addr2line while a Profiler runs");
  PyCodeObject *co = (PyCodeObject *)code;
  if (index < 0 || index >= Py_SIZE(co))
    return PyErr_Format(PyExc_IndexError, "code unit %zd outside 0..%zd", index, Py_SIZE(co) - 1);
  unsigned char win[CORE_WINDOWS][CORE_WINDOW];
  core_reader rd;
  core_reader_init(&rd, remote ? win : NULL);
  core_bytes table;
  uint32_t line = 0;
  if (core_bytes_open(&table, co->co_linetable, &rd) == 0)
    line = core_line_for(&table, co->co_firstlineno, index);
  return PyLong_FromUnsignedLong(line);
}

PyDoc_STRVAR(core_ignore_thread_doc,
"_ignore_thread()\n--\n\n"
"From now on the calling thread's allocations and copies are never counted\n"
"(scalene_heap_enter without a leave): for the profiler's own threads, such\n"
"as the periodic writer.");

static PyObject *core_ignore_thread(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
  scalene_heap_enter();
  Py_RETURN_NONE;
}

/* Plain Python runs a script's first frame at the start of the thread's
 * frame stack: the root chunk of CPython's data stack, at data[1]
 * (Python/pystate.c: push_chunk).  Under the profiler the runner's own
 * frames come first, which moves every frame of the program by their
 * size.  That matters: when a frame does not fit in the current 16 KiB
 * chunk CPython maps a new chunk, and unmaps it when that frame returns,
 * so a recursion that goes back and forth across a chunk's end makes an
 * mmap and a munmap per call.  Whether a program does so depends on where
 * its frames start.  copy.deepcopy of a 40-deep structure ran 1.8 times
 * slower under the profiler for that reason alone (6000 mmap/munmap pairs
 * against none plain).  So the program's code is called with the thread's
 * data stack set aside: datastack_chunk, _top and _limit NULL, as in a new
 * thread, so that its first frame makes a new root chunk and lands where
 * it would in a plain run.  (greenlet sets a new greenlet's data stack up
 * the same way.)  The caller's frames stay where they are; only the
 * thread state stops pointing at their chunk until the call returns.  A
 * root chunk is never freed by CPython while in use (push_chunk), so it is
 * freed here afterwards, by the arena allocator that made it. */
PyDoc_STRVAR(core_call_fresh_doc,
"_call_on_fresh_stack(fn, *args)\n--\n\n"
"fn(*args), with the calling thread's frame stack (CPython's data stack)\n"
"started afresh, as when python3 runs a script: the program's frames then\n"
"lie in memory as they would without the profiler.");

static PyObject *core_call_on_fresh_stack(PyObject *Py_UNUSED(module), PyObject *args)
{
  Py_ssize_t n = PyTuple_GET_SIZE(args);
  if (n < 1) {
    PyErr_SetString(PyExc_TypeError, "_call_on_fresh_stack() needs a callable");
    return NULL;
  }
  PyObject *rest = PyTuple_GetSlice(args, 1, n);
  if (rest == NULL)
    return NULL;
  PyThreadState *ts = PyThreadState_Get();
  _PyStackChunk *chunk = ts->datastack_chunk;
  PyObject **top = ts->datastack_top, **limit = ts->datastack_limit;
  PyObjectArenaAllocator arena;
  PyObject_GetArenaAllocator(&arena);
  ts->datastack_chunk = NULL;
  ts->datastack_top = NULL;
  ts->datastack_limit = NULL;
  PyObject *result = PyObject_Call(PyTuple_GET_ITEM(args, 0), rest, NULL);
  _PyStackChunk *fresh = ts->datastack_chunk;
  if (fresh != NULL && fresh->previous == NULL && ts->datastack_top == &fresh->data[1]) {
    /* every frame of the call returned: only the empty root chunk is left */
    PyObjectArenaAllocator now;
    PyObject_GetArenaAllocator(&now);
    if (now.free == arena.free) /* else leave it: freed by another allocator, it could crash */
      now.free(now.ctx, fresh, fresh->size);
  }
  /* else no frame was pushed (fresh NULL), or chunks are left over, which
   * CPython never does: they stay allocated, unreachable but harmless */
  ts->datastack_chunk = chunk;
  ts->datastack_top = top;
  ts->datastack_limit = limit;
  Py_DECREF(rest);
  return result;
}

static PyMethodDef core_methods[] = {
    {"_ignore_thread", core_ignore_thread, METH_NOARGS, core_ignore_thread_doc},
    {"_call_on_fresh_stack", core_call_on_fresh_stack, METH_VARARGS, core_call_fresh_doc},
    {"library_version", core_library_version, METH_NOARGS, core_library_version_doc},
    {"render_text", (PyCFunction)(void (*)(void))core_render_text, METH_VARARGS | METH_KEYWORDS,
     core_render_text_doc},
    {"render_html", (PyCFunction)(void (*)(void))core_render_html, METH_VARARGS | METH_KEYWORDS,
     core_render_html_doc},
    {"_addr2line", (PyCFunction)(void (*)(void))core_addr2line, METH_VARARGS | METH_KEYWORDS,
     core_addr2line_doc},
    CORE_FAULT_METHODS
    CORE_TERM_METHODS
    CORE_CONFIG_METHODS
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------ module exec */

static int core_exec(PyObject *module)
{
  core_state *st = core_get_state(module);
  unsigned int have = scalene_version_hex();
  if ((have >> 8) != ((unsigned int)SCALENE_VERSION_HEX >> 8)) {
    PyErr_Format(PyExc_ImportError,
                 "scalene._core was built for libscaleneprof %u.%u but the loaded library is "
                 "%u.%u (%s): reinstall scalene so that both match",
                 (unsigned int)SCALENE_VERSION_MAJOR, (unsigned int)SCALENE_VERSION_MINOR,
                 (have >> 16) & 0xffu, (have >> 8) & 0xffu, scalene_version());
    return -1;
  }

  PyObject *dict = Py_BuildValue("{s:i}", "code", 0);
  if (dict == NULL)
    return -1;
  st->Error = PyErr_NewExceptionWithDoc(
      "scalene._core.Error",
      "A libscaleneprof call failed.  str(e) is a one-line message; e.code is\n"
      "the library's negative SCALENE_E* code (see the E* constants).",
      NULL, dict);
  Py_DECREF(dict);
  if (st->Error == NULL || PyModule_AddObjectRef(module, "Error", st->Error) < 0)
    return -1;

  st->Profiler = (PyTypeObject *)PyType_FromModuleAndSpec(module, &profiler_spec, NULL);
  if (st->Profiler == NULL || PyModule_AddType(module, st->Profiler) < 0)
    return -1;

  static const struct {
    const char *name;
    int code;
  } codes[] = {
      {"EINVAL", SCALENE_EINVAL}, {"ENOMEM", SCALENE_ENOMEM},   {"EBUSY", SCALENE_EBUSY},
      {"ESTATE", SCALENE_ESTATE}, {"ENOTSUP", SCALENE_ENOTSUP}, {"EIO", SCALENE_EIO},
      {"ENOENT", SCALENE_ENOENT}, {"EPARSE", SCALENE_EPARSE},   {"EFORMAT", SCALENE_EFORMAT},
      {"ESYS", SCALENE_ESYS},
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (PyModule_AddIntConstant(module, codes[i].name, codes[i].code) < 0)
      return -1;
  if (PyModule_AddStringConstant(module, "FRAME_LAYOUT", CORE_FRAMES_LAYOUT) < 0)
    return -1;
  return 0;
}

static int core_traverse(PyObject *module, visitproc visit, void *arg)
{
  core_state *st = core_get_state(module);
  Py_VISIT(st->Error);
  Py_VISIT(st->Profiler);
  return 0;
}

static int core_clear(PyObject *module)
{
  core_state *st = core_get_state(module);
  Py_CLEAR(st->Error);
  Py_CLEAR(st->Profiler);
  return 0;
}

static void core_free(void *module)
{
  core_clear((PyObject *)module);
}

/* ------------------------------------------------------------------ module def */

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* One sampler per process: the module refuses subinterpreters. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(core_doc,
"The C core of scalene: libscaleneprof's CPU sampler, profile and output,\n"
"and the locator that reads where each Python thread is.");

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "scalene._core",
    .m_doc = core_doc,
    .m_size = sizeof(core_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void)
{
  return PyModuleDef_Init(&core_module);
}

#else /* !CORE_SUPPORTED */

/* Built against an interpreter whose frames the locator cannot read: the
 * module exists, so the build succeeds, but importing it says why it cannot
 * be used (docs/python-versions.md). */
PyMODINIT_FUNC PyInit__core(void)
{
#ifdef Py_GIL_DISABLED
  PyErr_SetString(PyExc_ImportError,
                  "free-threaded Python builds are not supported by this build of scalene: "
                  "it needs CPython 3.11 to 3.13 with the GIL");
#else
  PyErr_Format(PyExc_ImportError,
               "Python %d.%d is not supported by this build of scalene: it needs 3.11 to 3.13",
               PY_MAJOR_VERSION, PY_MINOR_VERSION);
#endif
  return NULL;
}

#endif /* CORE_SUPPORTED */
