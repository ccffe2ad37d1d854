/* libscaleneprof: function interposition by rewriting GOT entries of the
 * loaded objects (memray's technique).  Internal, never installed; all
 * symbols are scalene__* and hidden.  See docs/interpose.md.
 *
 * The heap sampler uses it to see the malloc family without LD_PRELOAD and
 * without re-executing the program: scalene__interpose_install() points the
 * GOT entries that name a hooked symbol, in every loaded object except
 * libscaleneprof itself, the dynamic loader and the vDSO, at a replacement;
 * a hook on dlopen (and dlmopen) patches the objects loaded later;
 * scalene__interpose_remove() puts back what the entries held.
 *
 * Several hook sets (the heap sampler's, the memcpy sampler's) may be
 * installed at once and removed in any order (install_set/remove_set).
 *
 * Thread-safety: install, refresh and remove serialise on one internal
 * mutex and may be called from any thread.  A thread that calls through an
 * entry while it is rewritten reads either the old or the new pointer (the
 * store is one aligned pointer-sized atomic store).  None of them is
 * async-signal-safe; none allocates with malloc (the patch table is
 * mmap'ed), so they may be called while malloc is hooked. */
#ifndef SCALENE_INTERPOSE_H
#define SCALENE_INTERPOSE_H

#include <stddef.h>

/* One function to interpose.  symbol: its dynamic symbol name ("malloc");
 * aliases are separate names, each needing its own entry (on glibc, code
 * built with _FILE_OFFSET_BITS=64, libpython among it, imports "mmap64",
 * not "mmap").
 * replacement: the function to call instead.  original: where install
 * stores the real function (dlsym(RTLD_DEFAULT, symbol), or
 * dlsym(RTLD_NEXT, symbol) when that is the replacement itself), before any
 * entry is rewritten, so that the replacement can always call it; NULL when
 * the symbol exists nowhere (then no entry is rewritten for it).  When
 * dlsym returns a non-PIE executable's canonical PLT stub (the symbol is
 * undefined in the object holding that address), *original is instead the
 * definition in the first loaded object that defines the symbol, never the
 * stub.  Only entries that hold *original, that stub, or a lazy PLT stub of
 * their own object are rewritten.
 * *original stays valid after remove: a thread still running inside a
 * replacement can finish its call. */
typedef struct scalene__hook {
  const char *symbol;
  void *replacement;
  void **original;
} scalene__hook_t;

/* At most this many caller hooks per set (dlopen and dlmopen are hooked
 * internally and may not be passed). */
#define SCALENE__INTERPOSE_MAX_HOOKS 32

/* Hook sets.  Several sets may be installed at once, each with its own
 * symbols (a symbol belongs to at most one installed set), and removed in
 * any order: installing a set patches only its symbols' entries, removing
 * it restores only those, and the others stay patched throughout.  Set 0
 * is internal (dlopen/dlmopen, installed with the first set and removed
 * with the last); ids below SCALENE__INTERPOSE_MAX_SETS. */
#define SCALENE__INTERPOSE_MAX_SETS 4
#define SCALENE__INTERPOSE_SET_DEFAULT 1 /* scalene__interpose_install/_remove */
#define SCALENE__INTERPOSE_SET_MALLOC 2  /* the heap sampler (heap_hooks.c) */
#define SCALENE__INTERPOSE_SET_MEMCPY 3  /* the memcpy sampler (memcpy_hooks.c) */
/* Capacity of the patch table: rewritten entries and patched objects.
 * Mapped (MAP_NORESERVE) at install, unmapped at remove: 1.5 MiB + 384 KiB
 * of address space, of which only the touched pages cost memory. */
#define SCALENE__INTERPOSE_MAX_SLOTS 65536
#define SCALENE__INTERPOSE_MAX_OBJECTS 8192

/* Rewrites the GOT entries (JUMP_SLOT and GLOB_DAT relocations) that name
 * one of hooks[0..n-1] in every loaded object, making read-only (RELRO)
 * pages writable for the store and read-only again after.  hooks is copied.
 * Returns 0; SCALENE_EINVAL (bad hooks, or dlopen/dlmopen among them);
 * SCALENE_EBUSY (already installed); SCALENE_ENOTSUP (not x86_64/aarch64
 * ELF); SCALENE_ENOMEM (the table could not be mapped: nothing installed;
 * or it filled up: objects that did not fit whole were skipped, the rest is
 * installed and remove must still be called); SCALENE_ESYS (mprotect
 * refused some page: those entries were skipped, the rest is installed and
 * remove must still be called). */
int scalene__interpose_install(const scalene__hook_t *hooks, size_t n);

/* install for set `set` (SCALENE__INTERPOSE_SET_*): the same, except that
 * SCALENE_EBUSY means that this set is installed, and SCALENE_EINVAL also
 * covers a bad set id and a symbol that another installed set hooks.
 * scalene__interpose_install(h, n) is install_set(SET_DEFAULT, h, n). */
int scalene__interpose_install_set(unsigned int set, const scalene__hook_t *hooks, size_t n);

/* Patches the objects loaded since the last install/refresh and forgets
 * those unloaded.  Called automatically after every dlopen/dlmopen made
 * through a patched entry; call it by hand after loading objects some other
 * way.  Returns 0 (also when nothing is installed), SCALENE_ENOMEM or
 * SCALENE_ESYS as install does. */
int scalene__interpose_refresh(void);

/* Restores every rewritten entry of the objects still loaded to the value
 * it held before, unless something else has since overwritten it, and
 * unmaps the table.  Returns 0, SCALENE_ESTATE when nothing is installed,
 * or SCALENE_ESYS (mprotect refused: such entries keep the replacement). */
int scalene__interpose_remove(void);

/* remove for one set: restores that set's entries only (the other sets'
 * stay); with the last set, the internal hooks go too and the table is
 * unmapped.  SCALENE_ESTATE when the set is not installed, SCALENE_EINVAL
 * for a bad id.  scalene__interpose_remove() is remove_set(SET_DEFAULT). */
int scalene__interpose_remove_set(unsigned int set);

/* For tests and diagnostics: the number of entries rewritten now (all
 * sets, the internal dlopen/dlmopen entries included). */
size_t scalene__interpose_slot_count(void);

/* The same for one set (0: the internal dlopen/dlmopen entries). */
size_t scalene__interpose_set_slot_count(unsigned int set);

/* For tests and diagnostics: the GOT entries that name symbol (JUMP_SLOT or
 * GLOB_DAT) in the loaded object whose mapping contains addr.  Stores up to
 * max of their addresses in slots[] and returns how many there are, or
 * SCALENE_ENOENT when no loaded object contains addr, or SCALENE_ENOTSUP. */
int scalene__interpose_got_slots(const void *addr, const char *symbol, void ***slots,
                                 size_t max);

#endif /* SCALENE_INTERPOSE_H */
