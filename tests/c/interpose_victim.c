/* A shared object that tests/c/test_interpose.c dlopens: its calls to
 * malloc/calloc/free/dlopen go through its own GOT, which src/interpose.c
 * rewrites.  Built with -fno-builtin and the buffers are used through a
 * volatile pointer so that the compiler keeps every malloc/free pair. */
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

void *volatile victim_sink;

/* malloc and free n times through the PLT (JUMP_SLOT entries).  Returns
 * how many allocations succeeded. */
size_t victim_alloc_loop(size_t n) {
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) {
    char *p = malloc(16 + (i & 63));
    if (p == NULL) continue;
    p[0] = (char)i;
    victim_sink = p; /* escapes: the pair cannot be elided */
    free(p);
    ok++;
  }
  return ok;
}

/* The address of calloc as this object sees it: read from its GOT (a
 * GLOB_DAT entry, which lives in RELRO).  Since the address is taken, the
 * linker also routes the PLT calls to calloc through that entry (.plt.got),
 * so calloc has no JUMP_SLOT entry here; malloc and free have only one. */
typedef void *(*victim_calloc_fn)(size_t, size_t);
victim_calloc_fn victim_calloc_address(void) { return calloc; }

/* calloc through the GLOB_DAT entry and free (through the PLT) n times. */
size_t victim_alloc_loop_got(size_t n) {
  victim_calloc_fn volatile c = calloc;
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) {
    char *p = c(1, 32);
    if (p == NULL) continue;
    p[0] = (char)i;
    victim_sink = p;
    free(p);
    ok++;
  }
  return ok;
}

/* dlopen called from this object (through its patched GOT entry). */
void *victim_dlopen(const char *path, int flags) { return dlopen(path, flags); }
