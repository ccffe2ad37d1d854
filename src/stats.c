/* libscaleneprof: stats.h -- the profile.
 *
 * Layout.  A profile owns
 *  - an intern table of strings (file and function names), so that records
 *    compare names by pointer;
 *  - one heap-allocated record per (file, line) and per (file, function),
 *    found through one open-addressed hash table each, keyed by
 *    (interned file pointer, line number or interned function pointer);
 *  - one entry per file with the sums of its lines and the lists of its
 *    line and function records;
 *  - the run-wide totals and metadata;
 *  - a table of stacks (owned texts with their seconds and samples, in the
 *    order first added, found through a hash index).
 * Records are allocated one by one and never move, so a pointer handed out
 * stays valid while records are only added; scalene_profile_clear and
 * scalene_profile_free release them.
 *
 * Sorted views.  Iteration wants files by name, lines by number and
 * functions by first line.  Appending keeps the per-file lists unsorted and
 * marks them dirty; the first iteration call after a change sorts what is
 * dirty (O(n log n) once per batch of changes, not per call).
 *
 * Locking.  One recursive mutex per profile: every public function takes
 * it, and the output layer holds it across a whole rendering
 * (scalene__profile_lock) so that it sees one consistent state while a
 * sampler keeps adding. */
#include "internal.h" /* first: config.h sets _GNU_SOURCE */

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------ hash tables */

/* Open addressing with linear probing; keys are (pointer, integer) pairs,
 * a NULL pointer marks an empty slot.  The table doubles at 50 % load. */
typedef struct slot {
  const void *a;
  uint64_t b;
  void *v;
} slot_t;

typedef struct table {
  slot_t *slots;
  size_t cap; /* a power of two, or 0 */
  size_t n;
} table_t;

static uint64_t mix(uint64_t x) {
  /* splitmix64's finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static size_t slot_of(const table_t *t, const void *a, uint64_t b) {
  return (size_t)(mix((uint64_t)(uintptr_t)a ^ mix(b + 0x9e3779b97f4a7c15ULL)) & (t->cap - 1));
}

static void *table_get(const table_t *t, const void *a, uint64_t b) {
  if (t->cap == 0) return NULL;
  for (size_t i = slot_of(t, a, b);; i = (i + 1) & (t->cap - 1)) {
    const slot_t *s = &t->slots[i];
    if (s->a == NULL) return NULL;
    if (s->a == a && s->b == b) return s->v;
  }
}

static int table_put(table_t *t, const void *a, uint64_t b, void *v) {
  if (2 * (t->n + 1) > t->cap) {
    size_t ncap = t->cap ? 2 * t->cap : 64;
    slot_t *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL) return SCALENE_ENOMEM;
    table_t nt = {ns, ncap, 0};
    for (size_t i = 0; i < t->cap; i++)
      if (t->slots[i].a != NULL) {
        size_t j = slot_of(&nt, t->slots[i].a, t->slots[i].b);
        while (ns[j].a != NULL) j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
      }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
  }
  size_t i = slot_of(t, a, b);
  while (t->slots[i].a != NULL) i = (i + 1) & (t->cap - 1);
  t->slots[i] = (slot_t){a, b, v};
  t->n++;
  return 0;
}

static void table_free(table_t *t) {
  free(t->slots);
  *t = (table_t){NULL, 0, 0};
}

/* ------------------------------------------------------------ the profile */

/* A bounded timeline: at most TIMELINE_CAP points [seconds, MB], kept
 * sorted by time.  See timeline_offer for the sampling. */
#define TIMELINE_CAP 100

typedef struct timeline {
  double (*pts)[2];
  size_t n;
  uint64_t seen; /* points offered so far */
} timeline_t;

typedef struct record {
  scalene_line_stats_t s;
  char *source; /* owned; s.source points here */
  /* Memory state behind the public members. */
  double live_bytes;     /* allocated here and not freed yet, floored at 0 */
  double avg_bytes;      /* time-average of live_bytes over [first, last event] */
  double live_integral;  /* integral of live_bytes dt (byte-seconds) */
  double span_sec;       /* last - first event time */
  double first_sec, last_sec;
  int have_time;
  uint64_t grow_events, shrink_events; /* events that raised / lowered live_bytes */
  timeline_t tl;
} record_t;

typedef struct file_entry {
  scalene_file_stats_t s;
  record_t **lines;
  size_t lines_cap;
  record_t **funcs;
  size_t funcs_cap;
  int lines_dirty, funcs_dirty;
} file_entry_t;

/* One stack of the stack table (stats.h, "Stacks"). */
typedef struct stack_entry {
  char *text; /* owned */
  uint64_t hash;
  double sec[SCALENE_CPU_KINDS];
  uint64_t samples;
} stack_entry_t;

/* A child process merged into a profile. */
typedef struct proc_entry {
  long pid;
  const char *program; /* interned */
  double elapsed_sec, total_cpu_sec, alloc_bytes, max_footprint_bytes;
  uint64_t cpu_samples;
} proc_entry_t;

struct scalene_profile {
  pthread_mutex_t mu;
  scalene_profile_t *next_live, *prev_live; /* g_profiles (under g_profiles_mu) */

  /* Interned strings: FNV-1a hashed, linear probing, NULL = empty. */
  char **strings;
  size_t strings_cap, strings_n;

  table_t line_index; /* (file, line) -> record_t* */
  table_t func_index; /* (file, function) -> record_t* */
  table_t file_index; /* (file, 0) -> file_entry_t* */

  file_entry_t **files;
  size_t n_files, files_cap;
  int files_dirty;

  char *program;
  char **args;
  int n_args;
  double elapsed_sec;
  double start_time_absolute;
  double total_cpu_sec;
  double unattributed_cpu_sec;
  uint64_t cpu_samples;
  double share_units; /* > 0: the "seconds" are shares of this many units */

  /* Memory, process-wide. */
  int memory;
  double alloc_bytes;
  double live_bytes;
  double max_footprint_bytes;
  const char *max_footprint_file; /* interned, or NULL */
  uint32_t max_footprint_line;
  /* The last attributed location that allocated: a peak reached by an
   * unattributed allocation (an interpreter-internal block, a thread with
   * no Python state) is credited to it rather than to nowhere. */
  const char *last_alloc_file;
  uint32_t last_alloc_line;
  double max_footprint_python_fraction;
  uint64_t alloc_samples;
  timeline_t footprint;
  uint64_t rng; /* the reservoirs' PRNG state: deterministic per profile */

  /* Stacks: entries in the order first added, found through an
   * open-addressed index of entry numbers + 1 (0 = empty), keyed by the
   * text's FNV-1a hash; the index doubles at 50 % load. */
  stack_entry_t *stacks;
  size_t n_stacks, stacks_cap;
  size_t *stack_index;
  size_t stack_index_cap;

  /* Processes (scalene_profile_merge_child). */
  long pid;
  double own_footprint_bytes; /* max_footprint_bytes before the first child */
  proc_entry_t *children;     /* program strings interned */
  size_t n_children, children_cap;
};

#define RNG_SEED 0x5ca1e5ca1e5ca1e5ULL

#define LOCK(p) pthread_mutex_lock(&((scalene_profile_t *)(p))->mu)
#define UNLOCK(p) pthread_mutex_unlock(&((scalene_profile_t *)(p))->mu)

void scalene__profile_lock(const scalene_profile_t *p) { LOCK(p); }
void scalene__profile_unlock(const scalene_profile_t *p) { UNLOCK(p); }

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

/* Returns the interned copy of s, or NULL when out of memory. */
static const char *intern(scalene_profile_t *p, const char *s) {
  if (2 * (p->strings_n + 1) > p->strings_cap) {
    size_t ncap = p->strings_cap ? 2 * p->strings_cap : 64;
    char **ns = calloc(ncap, sizeof *ns);
    if (ns == NULL) return NULL;
    for (size_t i = 0; i < p->strings_cap; i++)
      if (p->strings[i] != NULL) {
        size_t j = fnv1a(p->strings[i]) & (ncap - 1);
        while (ns[j] != NULL) j = (j + 1) & (ncap - 1);
        ns[j] = p->strings[i];
      }
    free(p->strings);
    p->strings = ns;
    p->strings_cap = ncap;
  }
  size_t i = fnv1a(s) & (p->strings_cap - 1);
  for (; p->strings[i] != NULL; i = (i + 1) & (p->strings_cap - 1))
    if (strcmp(p->strings[i], s) == 0) return p->strings[i];
  char *copy = strdup(s);
  if (copy == NULL) return NULL;
  p->strings[i] = copy;
  p->strings_n++;
  return copy;
}

/* ------------------------------------------------------------ fork */

/* Every live profile, so that fork() never happens while one of them is
 * locked: a thread that writes a profile (a periodic write) may hold its
 * lock when another thread forks, and the child, which has no such
 * thread, would then wait for it for ever.  pthread_atfork's prepare
 * handler takes every profile's lock (after the samplers' handlers, which
 * were registered later and so run earlier, have stopped their drains),
 * and both other handlers release them. */
static pthread_mutex_t g_profiles_mu = PTHREAD_MUTEX_INITIALIZER;
static scalene_profile_t *g_profiles; /* linked through next_live */
static pthread_once_t g_profiles_once = PTHREAD_ONCE_INIT;

static void profiles_prepare(void) {
  pthread_mutex_lock(&g_profiles_mu);
  for (scalene_profile_t *q = g_profiles; q != NULL; q = q->next_live) pthread_mutex_lock(&q->mu);
}

static void init_recursive(pthread_mutex_t *mu) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(mu, &attr);
  pthread_mutexattr_destroy(&attr);
}

static void profiles_parent(void) {
  for (scalene_profile_t *q = g_profiles; q != NULL; q = q->next_live)
    pthread_mutex_unlock(&q->mu);
  pthread_mutex_unlock(&g_profiles_mu);
}

/* In the child the forking thread has another thread id, and a recursive
 * mutex can only be unlocked by the id that locked it: the locks are made
 * anew instead (nothing else runs in the child yet). */
static void profiles_child(void) {
  for (scalene_profile_t *q = g_profiles; q != NULL; q = q->next_live) init_recursive(&q->mu);
  pthread_mutex_init(&g_profiles_mu, NULL);
}

static void profiles_register_atfork(void) {
  pthread_atfork(profiles_prepare, profiles_parent, profiles_child);
}

scalene_profile_t *scalene_profile_new(void) {
  pthread_once(&g_profiles_once, profiles_register_atfork);
  scalene_profile_t *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  int rc = pthread_mutex_init(&p->mu, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) {
    free(p);
    return NULL;
  }
  p->rng = RNG_SEED;
  p->program = strdup("");
  if (p->program == NULL) {
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
  }
  pthread_mutex_lock(&g_profiles_mu);
  p->next_live = g_profiles;
  if (g_profiles != NULL) g_profiles->prev_live = p;
  g_profiles = p;
  pthread_mutex_unlock(&g_profiles_mu);
  return p;
}

/* Frees every record and file entry (the caller holds the lock). */
static void drop_records(scalene_profile_t *p) {
  for (size_t f = 0; f < p->n_files; f++) {
    file_entry_t *fe = p->files[f];
    for (size_t i = 0; i < fe->s.n_lines; i++) {
      free(fe->lines[i]->source);
      free(fe->lines[i]->tl.pts);
      free(fe->lines[i]);
    }
    for (size_t i = 0; i < fe->s.n_functions; i++) {
      free(fe->funcs[i]->source);
      free(fe->funcs[i]->tl.pts);
      free(fe->funcs[i]);
    }
    free(fe->lines);
    free(fe->funcs);
    free(fe);
  }
  free(p->files);
  p->files = NULL;
  p->n_files = p->files_cap = 0;
  p->files_dirty = 0;
  table_free(&p->line_index);
  table_free(&p->func_index);
  table_free(&p->file_index);
  /* Process-wide memory (the footprint location names an interned string,
   * which stays). */
  free(p->footprint.pts);
  p->footprint = (timeline_t){NULL, 0, 0};
  p->memory = 0;
  p->alloc_bytes = p->live_bytes = p->max_footprint_bytes = 0;
  p->max_footprint_file = NULL;
  p->max_footprint_line = 0;
  p->last_alloc_file = NULL;
  p->last_alloc_line = 0;
  p->max_footprint_python_fraction = 0;
  p->alloc_samples = 0;
  p->rng = RNG_SEED;
}

/* Frees the stack table (the caller holds the lock). */
static void drop_stacks(scalene_profile_t *p) {
  for (size_t i = 0; i < p->n_stacks; i++) free(p->stacks[i].text);
  free(p->stacks);
  free(p->stack_index);
  p->stacks = NULL;
  p->stack_index = NULL;
  p->n_stacks = p->stacks_cap = p->stack_index_cap = 0;
}

static void free_args(scalene_profile_t *p) {
  for (int i = 0; i < p->n_args; i++) free(p->args[i]);
  free(p->args);
  p->args = NULL;
  p->n_args = 0;
}

void scalene_profile_free(scalene_profile_t *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&g_profiles_mu);
  if (p->prev_live != NULL)
    p->prev_live->next_live = p->next_live;
  else
    g_profiles = p->next_live;
  if (p->next_live != NULL) p->next_live->prev_live = p->prev_live;
  pthread_mutex_unlock(&g_profiles_mu);
  drop_records(p);
  drop_stacks(p);
  for (size_t i = 0; i < p->strings_cap; i++) free(p->strings[i]);
  free(p->strings);
  free(p->program);
  free_args(p);
  free(p->children);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

void scalene_profile_clear(scalene_profile_t *p) {
  if (p == NULL) return;
  LOCK(p);
  drop_records(p);
  drop_stacks(p);
  p->share_units = 0;
  p->total_cpu_sec = 0;
  p->unattributed_cpu_sec = 0;
  p->cpu_samples = 0;
  p->n_children = 0;
  UNLOCK(p);
}

/* Finds or makes the entry of an interned file name. */
static file_entry_t *file_entry(scalene_profile_t *p, const char *file) {
  file_entry_t *fe = table_get(&p->file_index, file, 0);
  if (fe != NULL) return fe;
  if (p->n_files == p->files_cap) {
    size_t ncap = p->files_cap ? 2 * p->files_cap : 8;
    file_entry_t **nf = realloc(p->files, ncap * sizeof *nf);
    if (nf == NULL) return NULL;
    p->files = nf;
    p->files_cap = ncap;
  }
  fe = calloc(1, sizeof *fe);
  if (fe == NULL) return NULL;
  fe->s.name = file;
  if (table_put(&p->file_index, file, 0, fe) != 0) {
    free(fe);
    return NULL;
  }
  p->files[p->n_files++] = fe;
  p->files_dirty = 1;
  return fe;
}

static int push(record_t ***arr, size_t *n, size_t *cap, record_t *r) {
  if (*n == *cap) {
    size_t ncap = *cap ? 2 * *cap : 16;
    record_t **na = realloc(*arr, ncap * sizeof *na);
    if (na == NULL) return SCALENE_ENOMEM;
    *arr = na;
    *cap = ncap;
  }
  (*arr)[(*n)++] = r;
  return 0;
}

/* Finds or makes the line record (file, line); file is interned. */
static record_t *line_record(scalene_profile_t *p, const char *file, uint32_t line) {
  record_t *r = table_get(&p->line_index, file, line);
  if (r != NULL) return r;
  file_entry_t *fe = file_entry(p, file);
  if (fe == NULL) return NULL;
  r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->s.file = file;
  r->s.function = "";
  r->s.line = line;
  if (push(&fe->lines, &fe->s.n_lines, &fe->lines_cap, r) != 0) {
    free(r);
    return NULL;
  }
  if (table_put(&p->line_index, file, line, r) != 0) {
    fe->s.n_lines--;
    free(r);
    return NULL;
  }
  fe->lines_dirty = 1;
  return r;
}

/* Finds or makes the function record (file, function); both interned. */
static record_t *func_record(scalene_profile_t *p, const char *file, const char *function,
                             uint32_t first_line) {
  record_t *r = table_get(&p->func_index, file, (uint64_t)(uintptr_t)function);
  if (r != NULL) {
    if (r->s.line == 0 && first_line != 0) {
      r->s.line = r->s.function_line = first_line;
      file_entry_t *fe = table_get(&p->file_index, file, 0);
      if (fe != NULL) fe->funcs_dirty = 1;
    }
    return r;
  }
  file_entry_t *fe = file_entry(p, file);
  if (fe == NULL) return NULL;
  r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->s.file = file;
  r->s.function = function;
  r->s.line = r->s.function_line = first_line;
  if (push(&fe->funcs, &fe->s.n_functions, &fe->funcs_cap, r) != 0) {
    free(r);
    return NULL;
  }
  if (table_put(&p->func_index, file, (uint64_t)(uintptr_t)function, r) != 0) {
    fe->s.n_functions--;
    free(r);
    return NULL;
  }
  fe->funcs_dirty = 1;
  return r;
}

static int valid_seconds(const double s[SCALENE_CPU_KINDS]) {
  for (int k = 0; k < SCALENE_CPU_KINDS; k++)
    if (!isfinite(s[k]) || s[k] < 0) return 0;
  return 1;
}

static void charge(record_t *r, const double s[SCALENE_CPU_KINDS], uint64_t samples) {
  for (int k = 0; k < SCALENE_CPU_KINDS; k++) r->s.cpu_sec[k] += s[k];
  r->s.cpu_samples += samples;
}

/* Whether loc names a file (a location with only a pc is the sampler's to
 * symbolise before it charges; one that reaches us unresolved counts as
 * unattributed), and if so its file and function names, NUL-terminated:
 * the fixed-size fields may lack a NUL when the writer truncated them. */
static int location_names(const scalene_location_t *loc,
                          char file_buf[SCALENE_LOCATION_FILE_MAX],
                          char func_buf[SCALENE_LOCATION_FUNCTION_MAX]) {
  if (loc == NULL || loc->file[0] == '\0') return 0;
  memcpy(file_buf, loc->file, SCALENE_LOCATION_FILE_MAX);
  file_buf[SCALENE_LOCATION_FILE_MAX - 1] = '\0';
  memcpy(func_buf, loc->function, SCALENE_LOCATION_FUNCTION_MAX);
  func_buf[SCALENE_LOCATION_FUNCTION_MAX - 1] = '\0';
  return 1;
}

int scalene_profile_add_cpu(scalene_profile_t *p, const scalene_location_t *loc,
                            const double seconds[SCALENE_CPU_KINDS], uint64_t samples) {
  if (p == NULL || seconds == NULL || !valid_seconds(seconds)) return SCALENE_EINVAL;
  double sum = seconds[0] + seconds[1] + seconds[2];
  char file_buf[SCALENE_LOCATION_FILE_MAX], func_buf[SCALENE_LOCATION_FUNCTION_MAX];
  int attributed = location_names(loc, file_buf, func_buf);
  int rc = 0;
  LOCK(p);
  if (attributed) {
    const char *file = intern(p, file_buf);
    const char *func = func_buf[0] != '\0' ? intern(p, func_buf) : "";
    record_t *r = file && func ? line_record(p, file, loc->line) : NULL;
    file_entry_t *fe = file ? table_get(&p->file_index, file, 0) : NULL;
    if (r == NULL || fe == NULL) {
      rc = SCALENE_ENOMEM;
      goto out;
    }
    record_t *fr = NULL;
    if (func[0] != '\0') {
      fr = func_record(p, file, func, loc->function_line);
      if (fr == NULL) {
        rc = SCALENE_ENOMEM;
        goto out;
      }
    }
    if (r->s.function[0] == '\0' && func[0] != '\0') {
      r->s.function = func;
      r->s.function_line = loc->function_line;
    }
    charge(r, seconds, samples);
    if (fr != NULL) charge(fr, seconds, samples);
    for (int k = 0; k < SCALENE_CPU_KINDS; k++) fe->s.cpu_sec[k] += seconds[k];
    fe->s.cpu_samples += samples;
  } else {
    p->unattributed_cpu_sec += sum;
  }
  p->total_cpu_sec += sum;
  p->cpu_samples += samples;
out:
  UNLOCK(p);
  return rc;
}

/* ------------------------------------------------------------ stacks */

/* Adds to the entry of `text`, making it when new; the caller holds the
 * lock.  When the entry exists nothing is allocated, so merging a profile
 * into itself (whose entries all exist) never moves what it iterates. */
static int stack_add_locked(scalene_profile_t *p, const char *text,
                            const double sec[SCALENE_CPU_KINDS], uint64_t samples) {
  uint64_t h = fnv1a(text);
  if (p->stack_index_cap > 0) {
    size_t mask = p->stack_index_cap - 1;
    for (size_t i = (size_t)h & mask; p->stack_index[i] != 0; i = (i + 1) & mask) {
      stack_entry_t *e = &p->stacks[p->stack_index[i] - 1];
      if (e->hash == h && strcmp(e->text, text) == 0) {
        for (int k = 0; k < SCALENE_CPU_KINDS; k++) e->sec[k] += sec[k];
        e->samples += samples;
        return 0;
      }
    }
  }
  if (2 * (p->n_stacks + 1) > p->stack_index_cap) {
    size_t ncap = p->stack_index_cap ? 2 * p->stack_index_cap : 64;
    size_t *ni = calloc(ncap, sizeof *ni);
    if (ni == NULL) return SCALENE_ENOMEM;
    for (size_t k = 0; k < p->n_stacks; k++) {
      size_t j = (size_t)p->stacks[k].hash & (ncap - 1);
      while (ni[j] != 0) j = (j + 1) & (ncap - 1);
      ni[j] = k + 1;
    }
    free(p->stack_index);
    p->stack_index = ni;
    p->stack_index_cap = ncap;
  }
  if (p->n_stacks == p->stacks_cap) {
    size_t ncap = p->stacks_cap ? 2 * p->stacks_cap : 16;
    stack_entry_t *ns = realloc(p->stacks, ncap * sizeof *ns);
    if (ns == NULL) return SCALENE_ENOMEM;
    p->stacks = ns;
    p->stacks_cap = ncap;
  }
  char *copy = strdup(text);
  if (copy == NULL) return SCALENE_ENOMEM;
  stack_entry_t *e = &p->stacks[p->n_stacks];
  e->text = copy;
  e->hash = h;
  for (int k = 0; k < SCALENE_CPU_KINDS; k++) e->sec[k] = sec[k];
  e->samples = samples;
  size_t j = (size_t)h & (p->stack_index_cap - 1);
  while (p->stack_index[j] != 0) j = (j + 1) & (p->stack_index_cap - 1);
  p->stack_index[j] = ++p->n_stacks;
  return 0;
}

int scalene_profile_add_stack(scalene_profile_t *p, const char *stack,
                              const double seconds[SCALENE_CPU_KINDS], uint64_t samples) {
  if (p == NULL || stack == NULL || stack[0] == '\0' || seconds == NULL ||
      !valid_seconds(seconds))
    return SCALENE_EINVAL;
  LOCK(p);
  int rc = stack_add_locked(p, stack, seconds, samples);
  UNLOCK(p);
  return rc;
}

size_t scalene_profile_stack_count(const scalene_profile_t *p) {
  if (p == NULL) return 0;
  LOCK(p);
  size_t n = p->n_stacks;
  UNLOCK(p);
  return n;
}

int scalene_profile_stack(const scalene_profile_t *p, size_t i, const char **stack,
                          double seconds[SCALENE_CPU_KINDS], uint64_t *samples) {
  if (p == NULL) return SCALENE_EINVAL;
  LOCK(p);
  int rc = 0;
  if (i >= p->n_stacks) {
    rc = SCALENE_EINVAL;
  } else {
    const stack_entry_t *e = &p->stacks[i];
    if (stack != NULL) *stack = e->text;
    if (seconds != NULL)
      for (int k = 0; k < SCALENE_CPU_KINDS; k++) seconds[k] = e->sec[k];
    if (samples != NULL) *samples = e->samples;
  }
  UNLOCK(p);
  return rc;
}

/* ---------------------------------------------- internal entry points for loaders */

int scalene__profile_add_line(scalene_profile_t *p, const char *file, uint32_t line,
                              const double seconds[SCALENE_CPU_KINDS], uint64_t samples) {
  if (p == NULL || file == NULL || seconds == NULL || !valid_seconds(seconds))
    return SCALENE_EINVAL;
  int rc = 0;
  LOCK(p);
  const char *f = intern(p, file);
  record_t *r = f ? line_record(p, f, line) : NULL;
  file_entry_t *fe = f ? table_get(&p->file_index, f, 0) : NULL;
  if (r == NULL || fe == NULL) {
    rc = SCALENE_ENOMEM;
  } else {
    charge(r, seconds, samples);
    for (int k = 0; k < SCALENE_CPU_KINDS; k++) fe->s.cpu_sec[k] += seconds[k];
    fe->s.cpu_samples += samples;
  }
  UNLOCK(p);
  return rc;
}

int scalene__profile_add_function(scalene_profile_t *p, const char *file, const char *function,
                                  uint32_t first_line, const double seconds[SCALENE_CPU_KINDS],
                                  uint64_t samples) {
  if (p == NULL || file == NULL || function == NULL || function[0] == '\0' || seconds == NULL ||
      !valid_seconds(seconds))
    return SCALENE_EINVAL;
  int rc = 0;
  LOCK(p);
  const char *f = intern(p, file);
  const char *fn = intern(p, function);
  record_t *r = f && fn ? func_record(p, f, fn, first_line) : NULL;
  if (r == NULL)
    rc = SCALENE_ENOMEM;
  else
    charge(r, seconds, samples);
  UNLOCK(p);
  return rc;
}

void scalene__profile_add_totals(scalene_profile_t *p, double total_cpu_sec,
                                 double unattributed_cpu_sec, uint64_t samples) {
  if (p == NULL) return;
  LOCK(p);
  p->total_cpu_sec += total_cpu_sec;
  p->unattributed_cpu_sec += unattributed_cpu_sec;
  p->cpu_samples += samples;
  UNLOCK(p);
}

/* ------------------------------------------------------------ memory */

/* xorshift64* -- the reservoirs' pseudo-random numbers.  Seeded with a
 * constant per profile (and again by clear), so that a run is reproducible. */
static uint64_t rng_next(scalene_profile_t *p) {
  uint64_t x = p->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  p->rng = x;
  return x * 0x2545f4914f6cdd1dULL;
}

/* Puts [t, mb] into the sorted array (n < TIMELINE_CAP) after the last
 * point not later than t: the points stay sorted by time. */
static void timeline_insert(timeline_t *tl, double t, double mb) {
  size_t i = tl->n;
  while (i > 0 && tl->pts[i - 1][0] > t) i--;
  memmove(&tl->pts[i + 1], &tl->pts[i], (tl->n - i) * sizeof tl->pts[0]);
  tl->pts[i][0] = t;
  tl->pts[i][1] = mb;
  tl->n++;
}

/* Offers a point to a bounded timeline: Vitter's algorithm R.  The first
 * TIMELINE_CAP points are kept; the k-th point after that (k counted from
 * 1 over all points offered) replaces a uniformly chosen kept point with
 * probability TIMELINE_CAP / k, so that at every moment the kept points
 * are a uniform sample of all points offered, and a run of any length
 * keeps at most TIMELINE_CAP.  The array stays sorted by time: the victim
 * is removed (memmove of at most TIMELINE_CAP points) and the new point
 * inserted in order, at the end when times are monotonic. */
static int timeline_offer(scalene_profile_t *p, timeline_t *tl, double t, double mb) {
  if (tl->pts == NULL) {
    tl->pts = malloc(TIMELINE_CAP * sizeof tl->pts[0]);
    if (tl->pts == NULL) return SCALENE_ENOMEM;
  }
  tl->seen++;
  if (tl->n < TIMELINE_CAP) {
    timeline_insert(tl, t, mb);
    return 0;
  }
  uint64_t j = rng_next(p) % tl->seen;
  if (j < TIMELINE_CAP) {
    memmove(&tl->pts[j], &tl->pts[j + 1], (tl->n - j - 1) * sizeof tl->pts[0]);
    tl->n--;
    timeline_insert(tl, t, mb);
  }
  return 0;
}

/* Adds src's points into dst.  The union is sorted by time; when it is
 * longer than TIMELINE_CAP, TIMELINE_CAP points are kept at evenly spaced
 * ranks (deterministic, and each source keeps a share proportional to the
 * points it holds).  seen adds up. */
static int timeline_merge(timeline_t *dst, const timeline_t *src) {
  if (src->n == 0) {
    dst->seen += src->seen;
    return 0;
  }
  size_t n = dst->n + src->n;
  double(*all)[2] = malloc(n * sizeof all[0]);
  if (all == NULL) return SCALENE_ENOMEM;
  size_t i = 0, j = 0, k = 0, dn = dst->n, sn = src->n;
  while (i < dn || j < sn) {
    if (j >= sn || (i < dn && dst->pts[i][0] <= src->pts[j][0])) {
      all[k][0] = dst->pts[i][0];
      all[k++][1] = dst->pts[i++][1];
    } else {
      all[k][0] = src->pts[j][0];
      all[k++][1] = src->pts[j++][1];
    }
  }
  if (dst->pts == NULL) {
    dst->pts = malloc(TIMELINE_CAP * sizeof dst->pts[0]);
    if (dst->pts == NULL) {
      free(all);
      return SCALENE_ENOMEM;
    }
  }
  if (n <= TIMELINE_CAP) {
    memcpy(dst->pts, all, n * sizeof all[0]);
    dst->n = n;
  } else {
    for (size_t r = 0; r < TIMELINE_CAP; r++) {
      size_t idx = (size_t)((double)r * (double)(n - 1) / (TIMELINE_CAP - 1));
      dst->pts[r][0] = all[idx][0];
      dst->pts[r][1] = all[idx][1];
    }
    dst->n = TIMELINE_CAP;
  }
  dst->seen += src->seen;
  free(all);
  return 0;
}

/* Replaces a timeline with given points (a loader's), bounded the same way. */
static int timeline_set(timeline_t *tl, size_t n, const double (*pts)[2]) {
  free(tl->pts);
  *tl = (timeline_t){NULL, 0, 0};
  timeline_t src = {(double(*)[2])pts, n, n};
  return timeline_merge(tl, &src);
}

/* Times are kept to the nanosecond, the JSON's unit, so that a written
 * profile reads back exactly. */
static double quantize_ns(double t) {
  if (!(t > 0)) return 0;
  if (t > 1e9) return t; /* beyond 30 years: no int64 nanoseconds */
  return (double)(int64_t)(t * 1e9 + 0.5) / 1e9; /* no libm: t > 0 */
}

#define MB 1048576.0

static void publish_timeline(record_t *r) {
  r->s.n_memory_samples = r->tl.n;
  r->s.memory_samples = (const double(*)[2])r->tl.pts;
}

/* Charges one memory event to a line or function record.  Live bytes move
 * by alloc - freed (floored at 0), the peak follows, the time-average
 * integrates the live bytes as a step function of time, and a point
 * [t, live MB] is offered to the record's timeline when live bytes
 * changed hands. */
static int charge_memory(scalene_profile_t *p, record_t *r, const scalene_memory_event_t *ev,
                         double t) {
  r->s.alloc_bytes += ev->alloc_bytes;
  r->s.python_bytes += ev->python_bytes;
  r->s.freed_bytes += ev->freed_bytes;
  r->s.copy_bytes += ev->copy_bytes;
  r->s.alloc_samples += ev->alloc_samples;
  if (ev->alloc_bytes == 0 && ev->freed_bytes == 0) return 0;
  if (!r->have_time) {
    r->first_sec = r->last_sec = t;
    r->have_time = 1;
  } else if (t > r->last_sec) {
    r->live_integral += r->live_bytes * (t - r->last_sec);
    r->last_sec = t;
    r->span_sec = r->last_sec - r->first_sec;
  }
  double before = r->live_bytes;
  double live = before + ev->alloc_bytes - ev->freed_bytes;
  if (live < 0) live = 0;
  r->live_bytes = live;
  if (live > before) r->grow_events++;
  if (live < before) r->shrink_events++;
  if (live > r->s.peak_bytes) r->s.peak_bytes = live;
  r->avg_bytes = r->span_sec > 0 ? r->live_integral / r->span_sec : live;
  if (r->avg_bytes > r->s.peak_bytes) r->avg_bytes = r->s.peak_bytes;
  int rc = timeline_offer(p, &r->tl, t, live / MB);
  publish_timeline(r);
  return rc;
}

static int valid_event(const scalene_memory_event_t *ev) {
  if (ev == NULL || ev->size < sizeof *ev) return 0;
  const double v[] = {ev->alloc_bytes, ev->python_bytes, ev->freed_bytes, ev->copy_bytes,
                      ev->time_sec};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    if (!isfinite(v[i]) || v[i] < 0) return 0;
  return 1;
}

int scalene_profile_add_memory(scalene_profile_t *p, const scalene_location_t *loc,
                               const scalene_memory_event_t *ev) {
  if (p == NULL || !valid_event(ev)) return SCALENE_EINVAL;
  scalene_memory_event_t e = *ev;
  if (e.python_bytes > e.alloc_bytes) e.python_bytes = e.alloc_bytes;
  double t = quantize_ns(e.time_sec);
  char file_buf[SCALENE_LOCATION_FILE_MAX], func_buf[SCALENE_LOCATION_FUNCTION_MAX];
  int attributed = location_names(loc, file_buf, func_buf);
  int rc = 0;
  LOCK(p);
  const char *file = NULL;
  if (attributed) {
    file = intern(p, file_buf);
    const char *func = func_buf[0] != '\0' ? intern(p, func_buf) : "";
    record_t *r = file && func ? line_record(p, file, loc->line) : NULL;
    file_entry_t *fe = file ? table_get(&p->file_index, file, 0) : NULL;
    record_t *fr = NULL;
    if (r != NULL && fe != NULL && func[0] != '\0')
      fr = func_record(p, file, func, loc->function_line);
    if (r == NULL || fe == NULL || (func[0] != '\0' && fr == NULL)) {
      rc = SCALENE_ENOMEM;
      goto out;
    }
    if (r->s.function[0] == '\0' && func[0] != '\0') {
      r->s.function = func;
      r->s.function_line = loc->function_line;
    }
    if ((rc = charge_memory(p, r, &e, t)) != 0) goto out;
    if (fr != NULL && (rc = charge_memory(p, fr, &e, t)) != 0) goto out;
    fe->s.alloc_bytes += e.alloc_bytes;
    fe->s.python_bytes += e.python_bytes;
    fe->s.freed_bytes += e.freed_bytes;
    fe->s.copy_bytes += e.copy_bytes;
    if (e.alloc_bytes > 0) {
      p->last_alloc_file = file;
      p->last_alloc_line = loc->line;
    }
  }
  p->memory = 1;
  p->alloc_bytes += e.alloc_bytes;
  p->alloc_samples += e.alloc_samples;
  if (e.alloc_bytes != 0 || e.freed_bytes != 0) {
    double live = p->live_bytes + e.alloc_bytes - e.freed_bytes;
    p->live_bytes = live > 0 ? live : 0;
    if (p->live_bytes > p->max_footprint_bytes) {
      p->max_footprint_bytes = p->live_bytes;
      p->max_footprint_file = file != NULL ? file : p->last_alloc_file;
      p->max_footprint_line = file != NULL ? loc->line : p->last_alloc_line;
      p->max_footprint_python_fraction = e.alloc_bytes > 0 ? e.python_bytes / e.alloc_bytes : 0;
    }
    rc = timeline_offer(p, &p->footprint, t, p->live_bytes / MB);
  }
out:
  UNLOCK(p);
  return rc;
}

/* The leak rule (docs/json-format.md, "Leaks"). */
int scalene__leak(const scalene_line_stats_t *s, double elapsed_sec, double *likelihood,
                  double *velocity_mb_s) {
  const record_t *r = (const record_t *)s;
  double live = r->live_bytes;
  double denom = (double)r->grow_events - (double)r->shrink_events + 2.0;
  double l = denom > 0 ? 1.0 - ((double)r->shrink_events + 1.0) / denom : 0.0;
  if (l < 0) l = 0;
  if (likelihood) *likelihood = l;
  if (velocity_mb_s) *velocity_mb_s = elapsed_sec > 0 ? live / MB / elapsed_sec : 0.0;
  return l >= SCALENE__LEAK_LIKELIHOOD && live > 0 &&
         live >= SCALENE__LEAK_LIVE_SHARE * s->alloc_bytes;
}

void scalene__line_memory(const scalene_line_stats_t *s, scalene__line_memory_t *m) {
  const record_t *r = (const record_t *)s;
  memset(m, 0, sizeof *m);
  m->live_bytes = r->live_bytes;
  m->avg_bytes = r->avg_bytes;
  m->span_sec = r->span_sec;
  m->grow_events = r->grow_events;
  m->shrink_events = r->shrink_events;
}

/* Adds loaded memory values to a record (the caller holds the lock). */
static int load_memory(record_t *r, const scalene__line_memory_t *m) {
  double span = r->span_sec + m->span_sec;
  double integral = r->avg_bytes * r->span_sec + m->avg_bytes * m->span_sec;
  r->s.alloc_bytes += m->alloc_bytes;
  r->s.python_bytes += m->python_bytes;
  r->s.freed_bytes += m->freed_bytes;
  r->s.copy_bytes += m->copy_bytes;
  r->s.alloc_samples += m->alloc_samples;
  r->grow_events += m->grow_events;
  r->shrink_events += m->shrink_events;
  double had = r->live_bytes;
  r->live_bytes += m->live_bytes;
  if (m->peak_bytes > r->s.peak_bytes) r->s.peak_bytes = m->peak_bytes;
  if (r->live_bytes > r->s.peak_bytes) r->s.peak_bytes = r->live_bytes;
  /* An empty record takes the values as they are (exact round trip). */
  if (had == 0 && r->span_sec == 0 && r->avg_bytes == 0) {
    r->avg_bytes = m->avg_bytes;
    r->span_sec = m->span_sec;
    r->live_integral = m->avg_bytes * m->span_sec;
  } else {
    r->span_sec = span;
    r->live_integral = integral;
    r->avg_bytes = span > 0 ? integral / span : (r->avg_bytes > m->avg_bytes ? r->avg_bytes : m->avg_bytes);
  }
  if (r->avg_bytes > r->s.peak_bytes) r->avg_bytes = r->s.peak_bytes;
  timeline_t src = {(double(*)[2])m->samples, m->n_samples, m->n_samples};
  int rc = timeline_merge(&r->tl, &src);
  publish_timeline(r);
  return rc;
}

int scalene__profile_add_line_memory(scalene_profile_t *p, const char *file, uint32_t line,
                                     const char *function, uint32_t first_line,
                                     const scalene__line_memory_t *m) {
  if (p == NULL || file == NULL || m == NULL) return SCALENE_EINVAL;
  int rc = 0;
  LOCK(p);
  const char *f = intern(p, file);
  if (f == NULL) {
    rc = SCALENE_ENOMEM;
  } else if (function != NULL) {
    const char *fn = intern(p, function);
    record_t *r = fn ? func_record(p, f, fn, first_line) : NULL;
    rc = r == NULL ? SCALENE_ENOMEM : load_memory(r, m);
  } else {
    record_t *r = line_record(p, f, line);
    file_entry_t *fe = table_get(&p->file_index, f, 0);
    if (r == NULL || fe == NULL) {
      rc = SCALENE_ENOMEM;
    } else {
      rc = load_memory(r, m);
      fe->s.alloc_bytes += m->alloc_bytes;
      fe->s.python_bytes += m->python_bytes;
      fe->s.freed_bytes += m->freed_bytes;
      fe->s.copy_bytes += m->copy_bytes;
    }
  }
  UNLOCK(p);
  return rc;
}

void scalene__profile_memory(const scalene_profile_t *p, scalene__profile_memory_t *m) {
  memset(m, 0, sizeof *m);
  LOCK(p);
  m->memory = p->memory;
  m->alloc_bytes = p->alloc_bytes;
  m->live_bytes = p->live_bytes;
  m->max_footprint_bytes = p->max_footprint_bytes;
  m->max_footprint_file = p->max_footprint_file;
  m->max_footprint_line = p->max_footprint_line;
  m->max_footprint_python_fraction = p->max_footprint_python_fraction;
  m->alloc_samples = p->alloc_samples;
  m->n_samples = p->footprint.n;
  m->samples = (const double(*)[2])p->footprint.pts;
  UNLOCK(p);
}

int scalene__profile_set_memory(scalene_profile_t *p, const scalene__profile_memory_t *m) {
  if (p == NULL || m == NULL) return SCALENE_EINVAL;
  int rc = 0;
  LOCK(p);
  const char *f = NULL;
  if (m->max_footprint_file != NULL && m->max_footprint_file[0] != '\0' &&
      (f = intern(p, m->max_footprint_file)) == NULL) {
    rc = SCALENE_ENOMEM;
  } else {
    p->memory = m->memory;
    p->alloc_bytes = m->alloc_bytes;
    p->live_bytes = m->live_bytes;
    p->max_footprint_bytes = m->max_footprint_bytes;
    p->max_footprint_file = f;
    p->max_footprint_line = m->max_footprint_line;
    p->max_footprint_python_fraction = m->max_footprint_python_fraction;
    p->alloc_samples = m->alloc_samples;
    rc = timeline_set(&p->footprint, m->n_samples, m->samples);
  }
  UNLOCK(p);
  return rc;
}

/* ------------------------------------------------------------ metadata */

int scalene_profile_set_program(scalene_profile_t *p, const char *program, int n_args,
                                const char *const *args) {
  if (p == NULL || n_args < 0 || (n_args > 0 && args == NULL)) return SCALENE_EINVAL;
  for (int i = 0; i < n_args; i++)
    if (args[i] == NULL) return SCALENE_EINVAL;
  char *prog = strdup(program ? program : "");
  char **nargs = calloc((size_t)n_args + 1, sizeof *nargs);
  int ok = prog != NULL && nargs != NULL;
  for (int i = 0; ok && i < n_args; i++)
    if ((nargs[i] = strdup(args[i])) == NULL) ok = 0;
  if (!ok) {
    free(prog);
    if (nargs != NULL)
      for (int i = 0; i < n_args; i++) free(nargs[i]);
    free(nargs);
    return SCALENE_ENOMEM;
  }
  LOCK(p);
  free(p->program);
  free_args(p);
  p->program = prog;
  p->args = nargs;
  p->n_args = n_args;
  UNLOCK(p);
  return 0;
}

void scalene_profile_set_elapsed(scalene_profile_t *p, double elapsed_sec,
                                 double start_time_absolute) {
  if (p == NULL) return;
  LOCK(p);
  p->elapsed_sec = elapsed_sec;
  p->start_time_absolute = start_time_absolute;
  UNLOCK(p);
}

int scalene_profile_get_info(const scalene_profile_t *p, scalene_profile_info_t *info) {
  if (p == NULL || info == NULL || info->size < sizeof(size_t)) return SCALENE_EINVAL;
  scalene_profile_info_t tmp;
  memset(&tmp, 0, sizeof tmp);
  LOCK(p);
  tmp.program = p->program;
  tmp.elapsed_sec = p->elapsed_sec;
  tmp.total_cpu_sec = p->total_cpu_sec;
  tmp.unattributed_cpu_sec = p->unattributed_cpu_sec;
  tmp.cpu_samples = p->cpu_samples;
  tmp.start_time_absolute = p->start_time_absolute;
  tmp.n_args = p->n_args;
  tmp.args = (const char *const *)p->args;
  tmp.memory = p->memory;
  tmp.alloc_bytes = p->alloc_bytes;
  tmp.max_footprint_bytes = p->max_footprint_bytes;
  tmp.max_footprint_file = p->max_footprint_file;
  tmp.max_footprint_line = p->max_footprint_line;
  tmp.n_footprint_samples = p->footprint.n;
  tmp.footprint_samples = (const double(*)[2])p->footprint.pts;
  UNLOCK(p);
  /* Copy only as much as the caller's version of the struct holds. */
  size_t n = info->size < sizeof tmp ? info->size : sizeof tmp;
  tmp.size = info->size;
  memcpy(info, &tmp, n);
  return 0;
}

/* ------------------------------------------------------------ iteration */

static int cmp_file(const void *a, const void *b) {
  return strcmp((*(file_entry_t *const *)a)->s.name, (*(file_entry_t *const *)b)->s.name);
}

static int cmp_line(const void *a, const void *b) {
  uint32_t x = (*(record_t *const *)a)->s.line, y = (*(record_t *const *)b)->s.line;
  return (x > y) - (x < y);
}

static int cmp_func(const void *a, const void *b) {
  const record_t *x = *(record_t *const *)a, *y = *(record_t *const *)b;
  if (x->s.line != y->s.line) return (x->s.line > y->s.line) - (x->s.line < y->s.line);
  return strcmp(x->s.function, y->s.function);
}

/* Sorts what changed since the last iteration (the caller holds the lock). */
static void refresh(scalene_profile_t *p) {
  if (p->files_dirty) {
    if (p->n_files > 1) qsort(p->files, p->n_files, sizeof *p->files, cmp_file);
    p->files_dirty = 0;
  }
}

static file_entry_t *file_at(scalene_profile_t *p, size_t f) {
  refresh(p);
  return f < p->n_files ? p->files[f] : NULL;
}

size_t scalene_profile_file_count(const scalene_profile_t *p) {
  if (p == NULL) return 0;
  LOCK(p);
  size_t n = p->n_files;
  UNLOCK(p);
  return n;
}

const scalene_file_stats_t *scalene_profile_file(const scalene_profile_t *p, size_t i) {
  if (p == NULL) return NULL;
  LOCK(p);
  file_entry_t *fe = file_at((scalene_profile_t *)p, i);
  UNLOCK(p);
  return fe ? &fe->s : NULL;
}

/* The i-th of n records kept sorted by cmp, sorting them first when they
 * changed since the last sort; NULL past the end.  Under the profile's lock. */
static const scalene_line_stats_t *sorted_at(record_t **recs, size_t n, int *dirty,
                                             int (*cmp)(const void *, const void *), size_t i) {
  if (*dirty) {
    qsort(recs, n, sizeof *recs, cmp);
    *dirty = 0;
  }
  return i < n ? &recs[i]->s : NULL;
}

const scalene_line_stats_t *scalene_profile_file_line(const scalene_profile_t *p, size_t f,
                                                      size_t i) {
  if (p == NULL) return NULL;
  const scalene_line_stats_t *r = NULL;
  LOCK(p);
  file_entry_t *fe = file_at((scalene_profile_t *)p, f);
  if (fe != NULL) r = sorted_at(fe->lines, fe->s.n_lines, &fe->lines_dirty, cmp_line, i);
  UNLOCK(p);
  return r;
}

const scalene_line_stats_t *scalene_profile_file_function(const scalene_profile_t *p, size_t f,
                                                          size_t i) {
  if (p == NULL) return NULL;
  const scalene_line_stats_t *r = NULL;
  LOCK(p);
  file_entry_t *fe = file_at((scalene_profile_t *)p, f);
  if (fe != NULL) r = sorted_at(fe->funcs, fe->s.n_functions, &fe->funcs_dirty, cmp_func, i);
  UNLOCK(p);
  return r;
}

const scalene_line_stats_t *scalene_profile_find_line(const scalene_profile_t *p,
                                                      const char *file, uint32_t line) {
  if (p == NULL || file == NULL) return NULL;
  const scalene_line_stats_t *r = NULL;
  LOCK(p);
  /* Look the name up without interning it: a miss must not allocate. */
  scalene_profile_t *mp = (scalene_profile_t *)p;
  if (mp->strings_cap != 0) {
    size_t i = fnv1a(file) & (mp->strings_cap - 1);
    for (; mp->strings[i] != NULL; i = (i + 1) & (mp->strings_cap - 1))
      if (strcmp(mp->strings[i], file) == 0) {
        record_t *rec = table_get(&mp->line_index, mp->strings[i], line);
        if (rec != NULL) r = &rec->s;
        break;
      }
  }
  UNLOCK(p);
  return r;
}

/* ------------------------------------------------------------ merge, sources */

static int set_source_locked(scalene_profile_t *p, const char *file, uint32_t line,
                             const char *text) {
  const char *f = intern(p, file);
  record_t *r = f ? line_record(p, f, line) : NULL;
  if (r == NULL) return SCALENE_ENOMEM;
  /* Stored without its line terminator. */
  size_t n = strlen(text);
  if (n > 0 && text[n - 1] == '\n') n--;
  if (n > 0 && text[n - 1] == '\r') n--;
  char *copy = malloc(n + 1);
  if (copy == NULL) return SCALENE_ENOMEM;
  memcpy(copy, text, n);
  copy[n] = '\0';
  free(r->source);
  r->source = copy;
  r->s.source = copy;
  return 0;
}

int scalene_profile_set_source(scalene_profile_t *p, const char *file, uint32_t line,
                               const char *text) {
  if (p == NULL || file == NULL || file[0] == '\0' || text == NULL) return SCALENE_EINVAL;
  LOCK(p);
  int rc = set_source_locked(p, file, line, text);
  UNLOCK(p);
  return rc;
}

/* Adds the memory of record s into d: sums, the larger peak (at least the
 * summed live bytes), time-averages weighted by their spans, timelines
 * merged and re-bounded (timeline_merge). */
static int merge_memory(record_t *d, const record_t *s) {
  scalene__line_memory_t m;
  scalene__line_memory(&s->s, &m);
  m.alloc_bytes = s->s.alloc_bytes;
  m.python_bytes = s->s.python_bytes;
  m.freed_bytes = s->s.freed_bytes;
  m.copy_bytes = s->s.copy_bytes;
  m.peak_bytes = s->s.peak_bytes;
  m.alloc_samples = s->s.alloc_samples;
  m.n_samples = s->tl.n;
  m.samples = (const double(*)[2])s->tl.pts;
  return load_memory(d, &m);
}

/* Adds src's records into dst; the caller holds both locks. */
static int merge_locked(scalene_profile_t *dst, const scalene_profile_t *src) {
  /* Iterate over a snapshot of the counts: when dst == src no record is
   * created (every key exists), and otherwise src does not change.  charge()
   * reads each element before it writes it, so aliasing is harmless. */
  size_t n_files = src->n_files;
  for (size_t f = 0; f < n_files; f++) {
    const file_entry_t *sf = src->files[f];
    const char *file = intern(dst, sf->s.name);
    file_entry_t *df = file ? file_entry(dst, file) : NULL;
    if (df == NULL) return SCALENE_ENOMEM;
    size_t n_lines = sf->s.n_lines, n_funcs = sf->s.n_functions;
    for (size_t i = 0; i < n_lines; i++) {
      const record_t *s = sf->lines[i];
      record_t *d = line_record(dst, file, s->s.line);
      if (d == NULL) return SCALENE_ENOMEM;
      if (d->s.function[0] == '\0' && s->s.function[0] != '\0') {
        const char *fn = intern(dst, s->s.function);
        if (fn == NULL) return SCALENE_ENOMEM;
        d->s.function = fn;
        d->s.function_line = s->s.function_line;
      }
      charge(d, s->s.cpu_sec, s->s.cpu_samples);
      int rc = merge_memory(d, s);
      if (rc != 0) return rc;
      if (d->source == NULL && s->source != NULL) {
        int rc = set_source_locked(dst, file, s->s.line, s->source);
        if (rc != 0) return rc;
      }
    }
    for (size_t i = 0; i < n_funcs; i++) {
      const record_t *s = sf->funcs[i];
      const char *fn = intern(dst, s->s.function);
      record_t *d = fn ? func_record(dst, file, fn, s->s.line) : NULL;
      if (d == NULL) return SCALENE_ENOMEM;
      charge(d, s->s.cpu_sec, s->s.cpu_samples);
      int rc = merge_memory(d, s);
      if (rc != 0) return rc;
    }
    /* Element by element, so that dst == src doubles every value. */
    for (int k = 0; k < SCALENE_CPU_KINDS; k++) df->s.cpu_sec[k] += sf->s.cpu_sec[k];
    df->s.cpu_samples += sf->s.cpu_samples;
    df->s.alloc_bytes += sf->s.alloc_bytes;
    df->s.python_bytes += sf->s.python_bytes;
    df->s.freed_bytes += sf->s.freed_bytes;
    df->s.copy_bytes += sf->s.copy_bytes;
  }
  /* Memory, process-wide: sums, and the larger of the two peaks. */
  if (src->max_footprint_bytes > dst->max_footprint_bytes) {
    dst->max_footprint_bytes = src->max_footprint_bytes;
    dst->max_footprint_file =
        src->max_footprint_file != NULL ? intern(dst, src->max_footprint_file) : NULL;
    dst->max_footprint_line = src->max_footprint_line;
    dst->max_footprint_python_fraction = src->max_footprint_python_fraction;
  }
  dst->memory |= src->memory;
  dst->alloc_bytes += src->alloc_bytes;
  dst->live_bytes += src->live_bytes;
  dst->alloc_samples += src->alloc_samples;
  int mrc = timeline_merge(&dst->footprint, &src->footprint);
  if (mrc != 0) return mrc;
  /* Stacks, over a snapshot of the count (dst == src adds no entry).  The
   * values are copied first: with dst == src the entry read is the one
   * written. */
  size_t n_stacks = src->n_stacks;
  for (size_t i = 0; i < n_stacks; i++) {
    double sec[SCALENE_CPU_KINDS];
    memcpy(sec, src->stacks[i].sec, sizeof sec);
    mrc = stack_add_locked(dst, src->stacks[i].text, sec, src->stacks[i].samples);
    if (mrc != 0) return mrc;
  }
  dst->total_cpu_sec += src->total_cpu_sec;
  dst->unattributed_cpu_sec += src->unattributed_cpu_sec;
  dst->cpu_samples += src->cpu_samples;
  dst->elapsed_sec += src->elapsed_sec;
  if (src->start_time_absolute > 0 &&
      (dst->start_time_absolute <= 0 || src->start_time_absolute < dst->start_time_absolute))
    dst->start_time_absolute = src->start_time_absolute;
  return 0;
}

int scalene_profile_merge(scalene_profile_t *dst, const scalene_profile_t *src) {
  if (dst == NULL || src == NULL) return SCALENE_EINVAL;
  /* Two locks are always taken in address order, so that merge(a, b) and
   * merge(b, a) running at once cannot deadlock. */
  const void *first = (const void *)dst < (const void *)src ? (const void *)dst : (const void *)src;
  const void *second = first == (const void *)dst ? (const void *)src : (const void *)dst;
  LOCK(first);
  if (second != first) LOCK(second);
  int rc = merge_locked(dst, src);
  if (second != first) UNLOCK(second);
  UNLOCK(first);
  return rc;
}

/* ------------------------------------------------------------ processes */

long scalene__profile_pid(const scalene_profile_t *p) { return p != NULL ? p->pid : 0; }

void scalene_profile_set_pid(scalene_profile_t *p, long pid) {
  if (p == NULL) return;
  LOCK(p);
  p->pid = pid;
  UNLOCK(p);
}

/* The profile's own process: its totals without its children's. */
static proc_entry_t own_process(const scalene_profile_t *p) {
  proc_entry_t e;
  memset(&e, 0, sizeof e);
  e.pid = p->pid;
  e.program = p->program != NULL ? p->program : "";
  e.elapsed_sec = p->elapsed_sec;
  e.total_cpu_sec = p->total_cpu_sec;
  e.cpu_samples = p->cpu_samples;
  e.alloc_bytes = p->alloc_bytes;
  for (size_t i = 0; i < p->n_children; i++) {
    e.total_cpu_sec -= p->children[i].total_cpu_sec;
    e.cpu_samples -= p->children[i].cpu_samples;
    e.alloc_bytes -= p->children[i].alloc_bytes;
  }
  if (e.total_cpu_sec < 0) e.total_cpu_sec = 0; /* rounding */
  if (e.alloc_bytes < 0) e.alloc_bytes = 0;
  e.max_footprint_bytes = p->n_children > 0 ? p->own_footprint_bytes : p->max_footprint_bytes;
  return e;
}

static int push_child(scalene_profile_t *dst, proc_entry_t e) {
  if (dst->n_children == dst->children_cap) {
    size_t ncap = dst->children_cap ? 2 * dst->children_cap : 8;
    proc_entry_t *nc = realloc(dst->children, ncap * sizeof *nc);
    if (nc == NULL) return SCALENE_ENOMEM;
    dst->children = nc;
    dst->children_cap = ncap;
  }
  e.program = intern(dst, e.program != NULL ? e.program : "");
  if (e.program == NULL) return SCALENE_ENOMEM;
  dst->children[dst->n_children++] = e;
  return 0;
}

int scalene_profile_merge_child(scalene_profile_t *dst, const scalene_profile_t *src) {
  if (dst == NULL || src == NULL || dst == src) return SCALENE_EINVAL;
  const void *first = (const void *)dst < (const void *)src ? (const void *)dst : (const void *)src;
  const void *second = first == (const void *)dst ? (const void *)src : (const void *)dst;
  LOCK(first);
  LOCK(second);
  if (dst->n_children == 0) dst->own_footprint_bytes = dst->max_footprint_bytes;
  double elapsed = dst->elapsed_sec, start = dst->start_time_absolute;
  int rc = merge_locked(dst, src);
  dst->elapsed_sec = elapsed;
  dst->start_time_absolute = start;
  if (rc == 0) rc = push_child(dst, own_process(src));
  for (size_t i = 0; rc == 0 && i < src->n_children; i++) rc = push_child(dst, src->children[i]);
  UNLOCK(second);
  UNLOCK(first);
  return rc;
}

int scalene__profile_add_process(scalene_profile_t *p, const scalene_process_stats_t *ps,
                                 int own) {
  if (p == NULL || ps == NULL) return SCALENE_EINVAL;
  LOCK(p);
  int rc = 0;
  if (own) {
    p->pid = ps->pid;
    p->own_footprint_bytes = ps->max_footprint_bytes;
  } else {
    proc_entry_t e = {ps->pid, ps->program, ps->elapsed_sec, ps->total_cpu_sec,
                      ps->alloc_bytes, ps->max_footprint_bytes, ps->cpu_samples};
    rc = push_child(p, e);
  }
  UNLOCK(p);
  return rc;
}

size_t scalene_profile_process_count(const scalene_profile_t *p) {
  if (p == NULL) return 0;
  LOCK(p);
  size_t n = p->n_children > 0 ? p->n_children + 1 : 0;
  UNLOCK(p);
  return n;
}

int scalene_profile_process(const scalene_profile_t *p, size_t i, scalene_process_stats_t *out) {
  if (p == NULL || out == NULL) return SCALENE_EINVAL;
  LOCK(p);
  int rc = 0;
  if (p->n_children == 0 || i > p->n_children) {
    rc = SCALENE_EINVAL;
  } else {
    proc_entry_t e = i == 0 ? own_process(p) : p->children[i - 1];
    out->pid = e.pid;
    out->program = e.program;
    out->elapsed_sec = e.elapsed_sec;
    out->total_cpu_sec = e.total_cpu_sec;
    out->cpu_samples = e.cpu_samples;
    out->alloc_bytes = e.alloc_bytes;
    out->max_footprint_bytes = e.max_footprint_bytes;
  }
  UNLOCK(p);
  return rc;
}

void scalene__profile_mark_seconds_unknown(scalene_profile_t *p, double units) {
  if (p == NULL) return;
  LOCK(p);
  p->share_units = units > 0 ? units : 0;
  UNLOCK(p);
}

int scalene__profile_seconds_unknown(const scalene_profile_t *p) {
  if (p == NULL) return 0;
  LOCK(p);
  int unknown = p->share_units > 0 && p->elapsed_sec == 0 && p->total_cpu_sec == p->share_units;
  UNLOCK(p);
  return unknown;
}
