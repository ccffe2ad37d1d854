/* Tests of GOT interposition (src/interpose.c).
 *
 * malloc and free are hooked with wrappers that count the calls made by a
 * thread whose `counting` flag is set, then call the real functions.  The
 * calls come from tests/c/interpose_victim.so, dlopened at run time (path
 * VICTIM_SO), through its PLT (JUMP_SLOT) and through function pointers
 * read from its GOT (GLOB_DAT, in RELRO).  This test program itself holds
 * src/interpose.c (linked from libscaleneprof-internal.la), so it is the
 * object that install() skips as "ourselves": its own calls are never
 * counted, which the dlopen tests rely on.
 *
 * Under AddressSanitizer the victim's GOT entries point at libasan's
 * malloc (its interceptor) instead of glibc's: the wrappers call that
 * (dlsym(RTLD_NEXT) from this program finds it too), so the same tests run
 * unchanged. */
#include "config.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <scalene/scalene.h>

#include "interpose.h"

#ifndef VICTIM_SO
#error "VICTIM_SO must name the victim shared object"
#endif

/* ------------------------------------------------------------ wrappers */

#include "interpose_counting.h"

static void reset_counts(void) {
  atomic_store(&n_malloc, 0);
  atomic_store(&n_free, 0);
}

/* ------------------------------------------------------------ the victim */

typedef struct victim {
  void *handle;
  size_t (*alloc_loop)(size_t);
  size_t (*alloc_loop_got)(size_t);
  void *(*(*calloc_address)(void))(size_t, size_t);
  void *(*dlopen_)(const char *, int);
  char copy[64]; /* path of the temporary copy, or "" */
} victim_t;

static void victim_bind(victim_t *v) {
  assert_non_null(v->handle);
  *(void **)&v->alloc_loop = dlsym(v->handle, "victim_alloc_loop");
  *(void **)&v->alloc_loop_got = dlsym(v->handle, "victim_alloc_loop_got");
  *(void **)&v->calloc_address = dlsym(v->handle, "victim_calloc_address");
  *(void **)&v->dlopen_ = dlsym(v->handle, "victim_dlopen");
  assert_non_null(v->alloc_loop);
  assert_non_null(v->alloc_loop_got);
  assert_non_null(v->calloc_address);
  assert_non_null(v->dlopen_);
}

static void victim_open(victim_t *v) {
  memset(v, 0, sizeof *v);
  v->handle = dlopen(VICTIM_SO, RTLD_NOW | RTLD_LOCAL);
  if (v->handle == NULL) fail_msg("dlopen %s: %s", VICTIM_SO, dlerror());
  victim_bind(v);
}

/* A copy of the victim under another name (another inode: the loader maps
 * it as a distinct object). */
static void victim_copy(victim_t *v) {
  memset(v, 0, sizeof *v);
  snprintf(v->copy, sizeof v->copy, "/tmp/interpose_victim_XXXXXX.so");
  int out = mkstemps(v->copy, 3);
  assert_true(out >= 0);
  int in = open(VICTIM_SO, O_RDONLY);
  assert_true(in >= 0);
  char buf[8192];
  ssize_t r;
  while ((r = read(in, buf, sizeof buf)) > 0) assert_int_equal(write(out, buf, (size_t)r), r);
  assert_int_equal(r, 0);
  close(in);
  close(out);
}

static void victim_close(victim_t *v) {
  if (v->handle != NULL) assert_int_equal(dlclose(v->handle), 0);
  if (v->copy[0] != '\0') unlink(v->copy);
  memset(v, 0, sizeof *v);
}

/* Calls made by fn(n) that the wrappers counted. */
static void counted(size_t (*fn)(size_t), size_t n, size_t *mallocs, size_t *frees) {
  reset_counts();
  counting = 1;
  size_t ok = fn(n);
  counting = 0;
  assert_int_equal(ok, n);
  *mallocs = atomic_load(&n_malloc);
  *frees = atomic_load(&n_free);
}

#define N 1000

/* ------------------------------------------------------------ tests */

/* The permissions ("rw-p") of the mapping holding addr. */
static void page_perms(const void *addr, char perms[5]) {
  FILE *fp = fopen("/proc/self/maps", "r");
  assert_non_null(fp);
  unsigned long long lo, hi;
  char line[512], p[5];
  strcpy(perms, "?");
  while (fgets(line, sizeof line, fp) != NULL)
    if (sscanf(line, "%llx-%llx %4s", &lo, &hi, p) == 3 && (uintptr_t)addr >= lo &&
        (uintptr_t)addr < hi)
      strcpy(perms, p);
  fclose(fp);
}

/* An object loaded before install: both kinds of entry are rewritten and
 * counted, and remove puts back exactly what they held, with the RELRO
 * page read-only again. */
static void test_loaded_before_install(void **state) {
  (void)state;
  victim_t v;
  victim_open(&v);
  size_t m, f;
  counted(v.alloc_loop, N, &m, &f);
  assert_int_equal(m, 0);

  void **ms[2], **cs[2], **fs[2];
  assert_int_equal(scalene__interpose_got_slots((const void *)v.alloc_loop, "malloc", ms, 2), 1);
  assert_int_equal(scalene__interpose_got_slots((const void *)v.alloc_loop, "calloc", cs, 2), 1);
  assert_int_equal(scalene__interpose_got_slots((const void *)v.alloc_loop, "free", fs, 2), 1);
  void *mold = *ms[0], *cold = *cs[0], *fold = *fs[0];
  void *calloc_before = (void *)v.calloc_address();
  assert_ptr_equal(calloc_before, cold);
  /* The GLOB_DAT entry is in RELRO: read-only; the JUMP_SLOT one is not
   * (Debian links with -z relro, lazy binding). */
  char perms[5];
  page_perms(cs[0], perms);
  assert_string_equal(perms, "r--p");

  assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
  assert_true(scalene__interpose_slot_count() >= 3);
  assert_non_null(real_malloc);
  assert_non_null(real_calloc);
  assert_non_null(real_free);
  /* The real function is what the victim's GLOB_DAT entry resolved to. */
  assert_ptr_equal((void *)real_calloc, cold);
  assert_ptr_equal(*ms[0], (void *)count_malloc);
  assert_ptr_equal(*cs[0], (void *)count_calloc);
  assert_ptr_equal(*fs[0], (void *)count_free);
  assert_ptr_equal((void *)v.calloc_address(), (void *)count_calloc);
  page_perms(cs[0], perms);
  assert_string_equal(perms, "r--p");

  counted(v.alloc_loop, N, &m, &f);
  assert_int_equal(m, N);
  assert_int_equal(f, N);
  counted(v.alloc_loop_got, N, &m, &f);
  assert_int_equal(m, N);
  assert_int_equal(f, N);

  assert_int_equal(scalene__interpose_install(hooks, NHOOKS), SCALENE_EBUSY);
  assert_int_equal(scalene__interpose_remove(), 0);
  assert_int_equal(scalene__interpose_remove(), SCALENE_ESTATE);
  assert_int_equal(scalene__interpose_slot_count(), 0);

  assert_ptr_equal(*ms[0], mold);
  assert_ptr_equal(*cs[0], cold);
  assert_ptr_equal(*fs[0], fold);
  assert_ptr_equal((void *)v.calloc_address(), calloc_before);
  page_perms(cs[0], perms);
  assert_string_equal(perms, "r--p");
  counted(v.alloc_loop, N, &m, &f);
  assert_int_equal(m, 0);
  assert_int_equal(f, 0);
  counted(v.alloc_loop_got, N, &m, &f);
  assert_int_equal(m, 0);
  assert_int_equal(f, 0);
  victim_close(&v);
}

/* Objects loaded after install: through a patched dlopen they are patched
 * at once; through this program's own (unpatched) dlopen, at refresh. */
static void test_loaded_after_install(void **state) {
  (void)state;
  victim_t v, a, b;
  victim_open(&v);
  victim_copy(&a);
  victim_copy(&b);
  assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
  size_t base = scalene__interpose_slot_count();
  size_t m, f;

  a.handle = v.dlopen_(a.copy, RTLD_NOW | RTLD_LOCAL);
  victim_bind(&a);
  assert_true(scalene__interpose_slot_count() >= base + 3);
  counted(a.alloc_loop, N, &m, &f);
  assert_int_equal(m, N);
  assert_int_equal(f, N);

  b.handle = dlopen(b.copy, RTLD_NOW | RTLD_LOCAL);
  victim_bind(&b);
  counted(b.alloc_loop, N, &m, &f);
  assert_int_equal(m, 0);
  assert_int_equal(scalene__interpose_refresh(), 0);
  counted(b.alloc_loop, N, &m, &f);
  assert_int_equal(m, N);
  assert_int_equal(f, N);
  counted(b.alloc_loop_got, N, &m, &f);
  assert_int_equal(m, N);
  size_t with_b = scalene__interpose_slot_count();

  /* An unloaded object's records are dropped at the next refresh, and
   * remove does not touch its (unmapped) entries. */
  assert_int_equal(dlclose(b.handle), 0);
  b.handle = NULL;
  assert_int_equal(scalene__interpose_refresh(), 0);
  assert_true(scalene__interpose_slot_count() < with_b);
  assert_int_equal(dlclose(a.handle), 0);
  a.handle = NULL;
  assert_int_equal(scalene__interpose_remove(), 0);

  counted(v.alloc_loop, N, &m, &f);
  assert_int_equal(m, 0);
  victim_close(&a);
  victim_close(&b);
  victim_close(&v);
}

static atomic_size_t n_foreign;

/* Stands for a function that an entry may be bound to other than the real
 * one: an object's own allocator, another tool's hook. */
static void *foreign_malloc(size_t size) {
  atomic_fetch_add(&n_foreign, 1);
  return malloc(size); /* this program's own GOT: never patched */
}

/* Entries bound to something else than the real function are not taken
 * over, and remove does not clobber an entry rewritten after install. */
static void test_foreign_entries(void **state) {
  (void)state;
  victim_t v;
  victim_open(&v);
  void **ms[1];
  assert_int_equal(scalene__interpose_got_slots((const void *)v.alloc_loop, "malloc", ms, 1), 1);
  char perms[5];
  page_perms(ms[0], perms);
  assert_string_equal(perms, "rw-p"); /* .got.plt: lazy binding, partial RELRO */
  void *old = *ms[0];
  size_t m, f;

  *ms[0] = (void *)foreign_malloc;
  atomic_store(&n_foreign, 0);
  assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
  assert_ptr_equal(*ms[0], (void *)foreign_malloc);
  counted(v.alloc_loop, N, &m, &f);
  assert_int_equal(m, 0);
  assert_int_equal(f, N); /* free's entry was the real free: taken over */
  assert_int_equal(atomic_load(&n_foreign), N);
  assert_int_equal(scalene__interpose_remove(), 0);
  assert_ptr_equal(*ms[0], (void *)foreign_malloc);
  *ms[0] = old;

  assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
  assert_ptr_equal(*ms[0], (void *)count_malloc);
  *ms[0] = (void *)foreign_malloc; /* someone else's hook, after ours */
  assert_int_equal(scalene__interpose_remove(), 0);
  assert_ptr_equal(*ms[0], (void *)foreign_malloc);
  *ms[0] = old;
  victim_close(&v);
}

/* A lazily bound object: its JUMP_SLOT entries still point at the PLT when
 * they are rewritten, get the stub back at remove, and bind normally on the
 * next call. */
static void test_lazy_binding(void **state) {
  (void)state;
  victim_t a;
  victim_copy(&a);
  a.handle = dlopen(a.copy, RTLD_LAZY | RTLD_LOCAL);
  victim_bind(&a);
  void **ms[1];
  assert_int_equal(scalene__interpose_got_slots((const void *)a.alloc_loop, "malloc", ms, 1), 1);
  void *stub = *ms[0];
  Dl_info where;
  assert_true(dladdr(stub, &where) != 0);
  Dl_info victim_where;
  assert_true(dladdr((void *)a.alloc_loop, &victim_where) != 0);
  /* Not bound yet: the entry points into the victim (its PLT).  With
   * LD_BIND_NOW it is bound already, and the rest still must hold. */
  if (getenv("LD_BIND_NOW") == NULL) assert_ptr_equal(where.dli_fbase, victim_where.dli_fbase);

  size_t m, f;
  assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
  assert_ptr_equal(*ms[0], (void *)count_malloc);
  counted(a.alloc_loop, N, &m, &f);
  assert_int_equal(m, N);
  assert_int_equal(scalene__interpose_remove(), 0);
  assert_ptr_equal(*ms[0], stub);
  counted(a.alloc_loop, N, &m, &f); /* binds through the stub */
  assert_int_equal(m, 0);
  assert_ptr_not_equal(*ms[0], (void *)count_malloc);
  victim_close(&a);
}

static void test_bad_arguments(void **state) {
  (void)state;
  void *orig;
  scalene__hook_t bad[] = {{"dlopen", (void *)count_malloc, &orig}};
  assert_int_equal(scalene__interpose_install(bad, 1), SCALENE_EINVAL);
  scalene__hook_t null_repl[] = {{"malloc", NULL, &orig}};
  assert_int_equal(scalene__interpose_install(null_repl, 1), SCALENE_EINVAL);
  assert_int_equal(scalene__interpose_install(NULL, 1), SCALENE_EINVAL);
  assert_int_equal(scalene__interpose_remove(), SCALENE_ESTATE);
  assert_int_equal(scalene__interpose_refresh(), 0);
  /* A symbol defined nowhere: nothing to patch, original NULL. */
  void *absent = &orig;
  scalene__hook_t none[] = {{"scalene_no_such_function_xyz", (void *)count_malloc, &absent}};
  assert_int_equal(scalene__interpose_install(none, 1), 0);
  assert_null(absent);
  assert_int_equal(scalene__interpose_remove(), 0);
  /* This program is an object (it calls fopen, for one); the stack is in
   * none. */
  void **slots[1];
  int on_stack;
  assert_true(scalene__interpose_got_slots((const void *)test_bad_arguments, "fopen", slots, 1) >= 1);
  assert_int_equal(scalene__interpose_got_slots(&on_stack, "malloc", slots, 1), SCALENE_ENOENT);
}

/* Bytes mapped in this process (sum of /proc/self/maps ranges). */
static unsigned long long mapped_bytes(void) {
  FILE *fp = fopen("/proc/self/maps", "r");
  assert_non_null(fp);
  unsigned long long total = 0, lo, hi;
  char line[512];
  while (fgets(line, sizeof line, fp) != NULL)
    if (sscanf(line, "%llx-%llx", &lo, &hi) == 2) total += hi - lo;
  fclose(fp);
  return total;
}

/* Install/remove 100 times: every cycle works and the table's mapping
 * (~1.9 MiB) is given back each time. */
static void test_install_remove_loop(void **state) {
  (void)state;
  victim_t v;
  victim_open(&v);
  size_t m, f;
  /* Warm up allocators so that their own growth is not counted. */
  assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
  assert_int_equal(scalene__interpose_remove(), 0);
  unsigned long long before = mapped_bytes();
  for (int i = 0; i < 100; i++) {
    assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
    counted(v.alloc_loop, 10, &m, &f);
    assert_int_equal(m, 10);
    assert_int_equal(f, 10);
    assert_int_equal(scalene__interpose_remove(), 0);
    counted(v.alloc_loop, 10, &m, &f);
    assert_int_equal(m, 0);
  }
  unsigned long long after = mapped_bytes();
  /* A leaked table per cycle would add ~190 MiB. */
  assert_true(after < before + 16ull * 1024 * 1024);
  victim_close(&v);
}

/* Threads calling malloc/free through the victim while the main thread
 * installs and removes the hooks: no crash, no lost allocation, and the
 * counts stay within the calls made. */
typedef struct worker {
  pthread_t thread;
  victim_t *v;
  atomic_int *stop;
  size_t calls;
  size_t failures;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  counting = 1;
  while (!atomic_load(w->stop)) {
    size_t ok = (w->calls & 1024) ? w->v->alloc_loop(100) : w->v->alloc_loop_got(100);
    w->failures += 100 - ok;
    w->calls += 100;
  }
  counting = 0;
  return NULL;
}

static void test_threads_toggle(void **state) {
  (void)state;
  victim_t v;
  victim_open(&v);
  reset_counts();
  atomic_int stop = 0;
  worker_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker_t){.v = &v, .stop = &stop};
    assert_int_equal(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < 100; i++) {
    assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
    usleep(500);
    assert_int_equal(scalene__interpose_remove(), 0);
    usleep(200);
  }
  atomic_store(&stop, 1);
  size_t calls = 0;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(w[i].thread, NULL), 0);
    assert_int_equal(w[i].failures, 0);
    calls += w[i].calls;
  }
  size_t m = atomic_load(&n_malloc), f = atomic_load(&n_free);
  assert_true(m > 0);
  assert_true(f > 0);
  assert_true(m <= calls);
  assert_true(f <= calls);
  /* Not installed any more: no call is counted. */
  size_t fm, ff;
  counted(v.alloc_loop, N, &fm, &ff);
  assert_int_equal(fm, 0);
  victim_close(&v);
}

/* After a failed test: leave nothing installed for the next one. */
static int teardown(void **state) {
  (void)state;
  (void)scalene__interpose_remove();
  counting = 0;
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_loaded_before_install, teardown),
      cmocka_unit_test_teardown(test_loaded_after_install, teardown),
      cmocka_unit_test_teardown(test_foreign_entries, teardown),
      cmocka_unit_test_teardown(test_lazy_binding, teardown),
      cmocka_unit_test_teardown(test_bad_arguments, teardown),
      cmocka_unit_test_teardown(test_install_remove_loop, teardown),
      cmocka_unit_test_teardown(test_threads_toggle, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
