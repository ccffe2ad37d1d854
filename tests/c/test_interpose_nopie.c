/* Regression test of GOT interposition in a non-PIE executable that takes
 * the address of malloc and calloc (as Debian's /usr/bin/python3 takes
 * malloc's).  Built with -fno-pie and linked with -no-pie, this program
 * gets canonical PLT entries for them: its dynamic symbol table lists
 * malloc undefined with the address of its own PLT stub, which is then
 * what dlsym(RTLD_DEFAULT, "malloc") and other objects' GLOB_DAT entries
 * return, while their JUMP_SLOT entries are bound to the real malloc in
 * libc (or in libasan under AddressSanitizer).  install() must still store
 * the real function (never the stub) in *original and take over both kinds
 * of entry of tests/c/interpose_victim.so (VICTIM_SO), dlopened with
 * RTLD_NOW so that its JUMP_SLOT entries are bound eagerly. */
#include "config.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>

#include <cmocka.h>

#include "interpose.h"

#ifndef VICTIM_SO
#error "VICTIM_SO must name the victim shared object"
#endif

/* Taking the addresses in non-PIC code (an absolute address in an
 * instruction, not a data initialiser, which gets a dynamic relocation)
 * forces the canonical PLT entries. */
void *(*volatile taken_malloc)(size_t);
void *(*volatile taken_calloc)(size_t, size_t);

static void take_addresses(void) {
  taken_malloc = malloc;
  taken_calloc = calloc;
}

#include "interpose_counting.h"
#define N 1000

/* The file name of the object holding addr, or "". */
static const char *object_name(const void *addr) {
  Dl_info di;
  if (dladdr(addr, &di) == 0 || di.dli_fname == NULL) return "";
  return di.dli_fname;
}

static size_t (*alloc_loop)(size_t);
static size_t (*alloc_loop_got)(size_t);
static void *(*(*calloc_address)(void))(size_t, size_t);

static void counted(size_t (*fn)(size_t), size_t *mallocs, size_t *frees) {
  atomic_store(&n_malloc, 0);
  atomic_store(&n_free, 0);
  counting = 1;
  size_t ok = fn(N);
  counting = 0;
  assert_int_equal(ok, N);
  *mallocs = atomic_load(&n_malloc);
  *frees = atomic_load(&n_free);
}

static void test_canonical_plt(void **state) {
  (void)state;
  take_addresses();
  /* The premise: dlsym finds this program's PLT stub, not libc's malloc. */
  void *stub = dlsym(RTLD_DEFAULT, "malloc");
  assert_non_null(stub);
  assert_ptr_equal(stub, (void *)taken_malloc);
  const char *self = object_name((void *)&test_canonical_plt);
  assert_string_equal(object_name(stub), self);

  void *victim = dlopen(VICTIM_SO, RTLD_NOW | RTLD_LOCAL);
  if (victim == NULL) fail_msg("dlopen %s: %s", VICTIM_SO, dlerror());
  *(void **)&alloc_loop = dlsym(victim, "victim_alloc_loop");
  *(void **)&alloc_loop_got = dlsym(victim, "victim_alloc_loop_got");
  *(void **)&calloc_address = dlsym(victim, "victim_calloc_address");
  assert_non_null(alloc_loop);
  assert_non_null(alloc_loop_got);
  assert_non_null(calloc_address);
  /* The victim's GLOB_DAT entry for calloc holds this program's stub. */
  assert_ptr_equal((void *)calloc_address(), (void *)taken_calloc);

  assert_int_equal(scalene__interpose_install(hooks, NHOOKS), 0);
  /* *original is the real implementation, outside this program. */
  assert_non_null(real_malloc);
  assert_non_null(real_calloc);
  assert_ptr_not_equal((void *)real_malloc, stub);
  assert_ptr_not_equal((void *)real_calloc, (void *)taken_calloc);
  const char *mname = object_name((void *)real_malloc);
  assert_string_not_equal(mname, self);
  assert_true(strstr(mname, "libc.so.6") != NULL || strstr(mname, "libasan") != NULL);
  assert_string_equal(object_name((void *)real_calloc), mname);

  size_t m, f;
  /* malloc through the eagerly bound JUMP_SLOT entry. */
  counted(alloc_loop, &m, &f);
  assert_int_equal(m, N);
  assert_int_equal(f, N);
  /* calloc through the GLOB_DAT entry that held the stub. */
  assert_ptr_equal((void *)calloc_address(), (void *)count_calloc);
  counted(alloc_loop_got, &m, &f);
  assert_int_equal(m, N);
  assert_int_equal(f, N);

  assert_int_equal(scalene__interpose_remove(), 0);
  assert_ptr_equal((void *)calloc_address(), (void *)taken_calloc);
  counted(alloc_loop, &m, &f);
  assert_int_equal(m, 0);
  assert_int_equal(f, 0);
  assert_int_equal(dlclose(victim), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_canonical_plt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
