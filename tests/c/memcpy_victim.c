/* A shared object that tests/c/test_memcpy.c dlopens: each function makes
 * one call to the copy function it is named after, through this object's
 * own GOT (the PLT's JUMP_SLOT entries), which the memcpy sampler rewrites.
 * Built with -fno-builtin so that the compiler keeps every call (the test
 * program itself holds libscaleneprof-internal, so its own calls are never
 * hooked). */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

void *__memcpy_chk(void *, const void *, size_t, size_t);
char *__strcpy_chk(char *, const char *, size_t);
char *__strncpy_chk(char *, const char *, size_t, size_t);

void *victim_memcpy(void *d, const void *s, size_t n) { return memcpy(d, s, n); }
void *victim_memmove(void *d, const void *s, size_t n) { return memmove(d, s, n); }
void *victim_mempcpy(void *d, const void *s, size_t n) { return mempcpy(d, s, n); }
char *victim_strcpy(char *d, const char *s) { return strcpy(d, s); }
char *victim_stpcpy(char *d, const char *s) { return stpcpy(d, s); }
char *victim_strcat(char *d, const char *s) { return strcat(d, s); }
char *victim_strncpy(char *d, const char *s, size_t n) { return strncpy(d, s, n); }
char *victim_stpncpy(char *d, const char *s, size_t n) { return stpncpy(d, s, n); }
char *victim_strncat(char *d, const char *s, size_t n) { return strncat(d, s, n); }
wchar_t *victim_wmemcpy(wchar_t *d, const wchar_t *s, size_t n) { return wmemcpy(d, s, n); }
wchar_t *victim_wmemmove(wchar_t *d, const wchar_t *s, size_t n) { return wmemmove(d, s, n); }
void *victim_memcpy_chk(void *d, const void *s, size_t n, size_t dn) {
  return __memcpy_chk(d, s, n, dn);
}
char *victim_strcpy_chk(char *d, const char *s, size_t dn) { return __strcpy_chk(d, s, dn); }
char *victim_strncpy_chk(char *d, const char *s, size_t n, size_t dn) {
  return __strncpy_chk(d, s, n, dn);
}

/* total bytes in pieces of `piece` bytes, by memcpy; returns the bytes copied. */
size_t victim_copy_loop(void *d, const void *s, size_t total, size_t piece) {
  size_t done = 0;
  for (; done + piece <= total; done += piece) memcpy(d, s, piece);
  return done;
}

/* malloc and free through the PLT, for the tests that run the heap
 * sampler alongside. */
void *victim_malloc(size_t n) { return malloc(n); }
void victim_free(void *p) { free(p); }

/* An LD_PRELOAD shim's announcement (heap.h), switched by the test: the
 * test makes this object global (RTLD_NOLOAD | RTLD_GLOBAL) so that
 * dlsym(RTLD_DEFAULT, "scalene_preload_active") finds it. */
int victim_preload_on;
int scalene_preload_active(void) { return victim_preload_on; }
