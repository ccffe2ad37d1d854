/* libscaleneprof: function interposition by rewriting GOT entries
 * (memray's technique).  See src/interpose.h and docs/interpose.md.
 *
 * CALLED WHILE MALLOC MAY BE HOOKED: nothing in this file calls malloc or
 * anything that may (no stdio, no dlerror buffers on the refresh path).
 * The patch table is mmap'ed at install.  install() calls dlsym to find the
 * real functions; refresh() and remove() call only dl_iterate_phdr,
 * mprotect, the internal mutex and C atomics, so that the dlopen hook can
 * run them from inside any thread's dlopen.  Nothing here is
 * async-signal-safe (the mutex, dl_iterate_phdr's loader lock).
 *
 * How an object is patched.  dl_iterate_phdr gives each loaded object's
 * load bias and program headers.  PT_DYNAMIC leads to the relocation tables:
 * DT_JMPREL/DT_PLTRELSZ (the PLT's JUMP_SLOT relocations) and
 * DT_RELA/DT_RELASZ (the others, among them GLOB_DAT: the GOT entries that
 * code reads a function's address from when it is built with -fno-plt or
 * takes the function's address), with DT_SYMTAB/DT_STRTAB to name their
 * symbols.  glibc stores relocated addresses in the d_ptr fields of a
 * writable dynamic section and leaves them as offsets in the vDSO and on
 * systems where the section is read-only (musl always): a value below the
 * load bias is therefore an offset and gets the bias added.  Each
 * JUMP_SLOT/GLOB_DAT relocation that names a hooked symbol designates an
 * entry at bias + r_offset; the entry's current value is recorded and the
 * replacement is stored there.  Entries holding NULL (an undefined weak
 * symbol), already the replacement, or a function other than the real one
 * (and not a lazy PLT stub of their own object) are left alone.
 *
 * RELRO.  After relocation the loader makes PT_GNU_RELRO read-only, from its
 * start rounded down to a page to its end rounded DOWN to a page (glibc's
 * _dl_protect_relro, musl likewise): the last partial page stays writable
 * because it shares data with .got.plt/.data.  An entry inside that page
 * range is written between mprotect(PROT_READ|PROT_WRITE) and
 * mprotect(PROT_READ); an entry elsewhere gets the protection of its
 * PT_LOAD segment, and is written directly when that is writable.
 *
 * Unloaded objects.  An object is identified by (load bias, program header
 * address, name pointer).  Writes to an object's entries happen only inside
 * the dl_iterate_phdr callback that presents that object: the loader holds
 * its list lock during the callback and unlinks an object (under that lock)
 * before unmapping it, so the object cannot disappear under the write.
 * Records of objects no longer presented are dropped.  remove() writes an
 * entry back only if it still holds our replacement, so an entry the loader
 * or another tool rewrote since is not clobbered. */
#include "config.h"

#include "interpose.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <scalene/error.h>

#if defined(__x86_64__) && defined(__LP64__) /* not x32 */
#define SCALENE__R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define SCALENE__R_GLOB_DAT R_X86_64_GLOB_DAT
#define SCALENE__INTERPOSE_SUPPORTED 1
#elif defined(__aarch64__) && defined(__LP64__)
#define SCALENE__R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define SCALENE__R_GLOB_DAT R_AARCH64_GLOB_DAT
#define SCALENE__INTERPOSE_SUPPORTED 1
#else
#define SCALENE__INTERPOSE_SUPPORTED 0
#endif

/* One rewritten GOT entry. */
typedef struct slot {
  void **addr;
  void *old;  /* what it held before */
  void *repl; /* what we stored */
} slot_t;

/* One patched object for one hook set, and its range of slots[]: an
 * object patched for two sets has two records. */
typedef struct object {
  uintptr_t base;
  const void *phdr;
  const char *name;
  size_t first, n;
  unsigned int set;
  int seen;
} object_t;

/* What the callbacks need of one object's dynamic section. */
typedef struct elf_view {
  uintptr_t base;
  const ElfW(Rela) *jmprel;
  size_t njmprel;
  const ElfW(Rela) *rela;
  size_t nrela;
  const ElfW(Sym) *symtab;
  const char *strtab;
  size_t strsz;
  uintptr_t relro_lo, relro_hi; /* pages the loader made read-only */
  const ElfW(Phdr) *phdr;
  size_t phnum;
} elf_view_t;

/* Set 0 is internal: the dlopen/dlmopen hooks, installed with the first
 * caller set and removed with the last. */
#define SET_INTERNAL 0u
#define NHOOKS_MAX (SCALENE__INTERPOSE_MAX_SETS * SCALENE__INTERPOSE_MAX_HOOKS + 2)

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
/* Read without the lock by the dlopen hook's fast path only as a hint:
 * nonzero while any set is installed. */
static int g_installed;
static unsigned int g_sets; /* bit s: set s installed (bit 0: the internal one) */
static scalene__hook_t g_hooks[NHOOKS_MAX];
static unsigned int g_hook_set[NHOOKS_MAX]; /* the set each hook belongs to */
/* Per hook: a second address that also counts as "the real function" when
 * deciding which entries to take over: the canonical PLT stub that
 * dlsym(RTLD_DEFAULT) returned (see find_real), or NULL. */
static void *g_alt[NHOOKS_MAX];
static size_t g_nhooks;
static void *g_table;
static size_t g_table_size;
static slot_t *g_slots;
static size_t g_nslots;
static object_t *g_objects;
static size_t g_nobjects;
static unsigned long long g_adds, g_subs;
static uintptr_t g_pagesize;
static int g_err; /* first error of the current pass */

/* Real dlopen/dlmopen for the internal hooks.  Set once at install and
 * never cleared, so that a thread still inside a hook after remove() can
 * finish its call. */
typedef void *(*dlopen_fn)(const char *, int);
typedef void *(*dlmopen_fn)(Lmid_t, const char *, int);
static void *g_real_dlopen;
static void *g_real_dlmopen;

static void *hook_dlopen(const char *file, int flags);
static void *hook_dlmopen(Lmid_t lmid, const char *file, int flags);

/* ------------------------------------------------------------ ELF helpers */

static int object_contains(const struct dl_phdr_info *info, uintptr_t addr) {
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (addr >= lo && addr - lo < ph->p_memsz) return 1;
  }
  return 0;
}

static uintptr_t dyn_ptr(uintptr_t base, ElfW(Addr) p) {
  return (uintptr_t)p < base ? base + (uintptr_t)p : (uintptr_t)p;
}

/* Fills *v from info's PT_DYNAMIC.  Returns 0, or -1 when the object has
 * nothing we can patch. */
static int elf_view_init(const struct dl_phdr_info *info, elf_view_t *v) {
  memset(v, 0, sizeof *v);
  v->base = info->dlpi_addr;
  v->phdr = info->dlpi_phdr;
  v->phnum = info->dlpi_phnum;
  const ElfW(Dyn) *dyn = NULL;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_DYNAMIC) {
      dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
    } else if (ph->p_type == PT_GNU_RELRO) {
      uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
      v->relro_lo = lo & ~(g_pagesize - 1);
      v->relro_hi = (lo + ph->p_memsz) & ~(g_pagesize - 1);
    }
  }
  if (dyn == NULL) return -1;
  uintptr_t jmprel = 0, rela = 0, symtab = 0, strtab = 0;
  size_t pltrelsz = 0, relasz = 0, relaent = sizeof(ElfW(Rela));
  long pltrel = DT_RELA;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    switch (dyn->d_tag) {
    case DT_JMPREL: jmprel = dyn_ptr(v->base, dyn->d_un.d_ptr); break;
    case DT_PLTRELSZ: pltrelsz = dyn->d_un.d_val; break;
    case DT_PLTREL: pltrel = (long)dyn->d_un.d_val; break;
    case DT_RELA: rela = dyn_ptr(v->base, dyn->d_un.d_ptr); break;
    case DT_RELASZ: relasz = dyn->d_un.d_val; break;
    case DT_RELAENT: relaent = dyn->d_un.d_val; break;
    case DT_SYMTAB: symtab = dyn_ptr(v->base, dyn->d_un.d_ptr); break;
    case DT_STRTAB: strtab = dyn_ptr(v->base, dyn->d_un.d_ptr); break;
    case DT_STRSZ: v->strsz = dyn->d_un.d_val; break;
    default: break;
    }
  }
  if (symtab == 0 || strtab == 0 || relaent != sizeof(ElfW(Rela))) return -1;
  v->symtab = (const ElfW(Sym) *)symtab;
  v->strtab = (const char *)strtab;
  if (jmprel != 0 && pltrel == DT_RELA) {
    v->jmprel = (const ElfW(Rela) *)jmprel;
    v->njmprel = pltrelsz / sizeof(ElfW(Rela));
  }
  if (rela != 0) {
    v->rela = (const ElfW(Rela) *)rela;
    v->nrela = relasz / sizeof(ElfW(Rela));
  }
  return 0;
}

/* The name of the symbol relocation r refers to, if r is a JUMP_SLOT or
 * GLOB_DAT relocation; else NULL. */
static const char *reloc_name(const elf_view_t *v, const ElfW(Rela) *r) {
#if SCALENE__INTERPOSE_SUPPORTED
  unsigned long type = (unsigned long)ELF64_R_TYPE(r->r_info);
  if (type != SCALENE__R_JUMP_SLOT && type != SCALENE__R_GLOB_DAT) return NULL;
  size_t sym = (size_t)ELF64_R_SYM(r->r_info);
  if (sym == 0) return NULL;
  size_t off = v->symtab[sym].st_name;
  if (v->strsz != 0 && off >= v->strsz) return NULL;
  return v->strtab + off;
#else
  (void)v;
  (void)r;
  return NULL;
#endif
}

/* The protection the page holding addr has now, or -1 when addr is in no
 * segment of the object. */
static int slot_prot(const elf_view_t *v, uintptr_t addr) {
  uintptr_t page = addr & ~(g_pagesize - 1);
  if (page >= v->relro_lo && page < v->relro_hi) return PROT_READ;
  for (size_t i = 0; i < v->phnum; i++) {
    const ElfW(Phdr) *ph = &v->phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = v->base + ph->p_vaddr;
    if (addr >= lo && addr - lo < ph->p_memsz) {
      int prot = 0;
      if (ph->p_flags & PF_R) prot |= PROT_READ;
      if (ph->p_flags & PF_W) prot |= PROT_WRITE;
      if (ph->p_flags & PF_X) prot |= PROT_EXEC;
      return prot;
    }
  }
  return -1;
}

/* Stores val into the entry at slot (one aligned atomic store), lifting
 * write protection around it if needed.  Returns 0 or SCALENE_ESYS. */
static int write_slot(const elf_view_t *v, void **slot, void *val) {
  int prot = slot_prot(v, (uintptr_t)slot);
  if (prot < 0) return SCALENE_EINVAL;
  if (prot & PROT_WRITE) {
    __atomic_store_n(slot, val, __ATOMIC_SEQ_CST);
    return 0;
  }
  /* An aligned pointer never straddles a page. */
  void *page = (void *)((uintptr_t)slot & ~(g_pagesize - 1));
  if (mprotect(page, g_pagesize, prot | PROT_READ | PROT_WRITE) != 0) return SCALENE_ESYS;
  __atomic_store_n(slot, val, __ATOMIC_SEQ_CST);
  if (mprotect(page, g_pagesize, prot) != 0) return SCALENE_ESYS;
  return 0;
}

static int name_is_loader(const char *name) {
  if (name == NULL) return 0;
  const char *b = strrchr(name, '/');
  b = b != NULL ? b + 1 : name;
  return strncmp(b, "ld-linux", 8) == 0 || strncmp(b, "ld64.so", 7) == 0 ||
         strncmp(b, "ld-musl", 7) == 0 || strncmp(b, "linux-vdso", 10) == 0 ||
         strncmp(b, "linux-gate", 10) == 0;
}

/* Whether info is an object we never patch: ourselves (the object holding
 * this code), the dynamic loader, the vDSO. */
static int object_skipped(const struct dl_phdr_info *info) {
  if (object_contains(info, (uintptr_t)&scalene__interpose_install)) return 1;
  uintptr_t ldbase = (uintptr_t)getauxval(AT_BASE);
  if (ldbase != 0 && info->dlpi_addr == ldbase) return 1;
  uintptr_t vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
  if (vdso != 0 && object_contains(info, vdso)) return 1;
  return name_is_loader(info->dlpi_name);
}

/* ------------------------------------------------------------ patch pass */

/* The hook of set `set` for symbol name, or NULL.  Called for every
 * relocation of every object at each install: the first bytes are compared
 * before strcmp is called. */
static const scalene__hook_t *hook_for(const char *name, unsigned int set) {
  for (size_t h = 0; h < g_nhooks; h++)
    if (g_hooks[h].symbol[0] == name[0] && g_hook_set[h] == set &&
        *g_hooks[h].original != NULL && strcmp(g_hooks[h].symbol, name) == 0)
      return &g_hooks[h];
  return NULL;
}

/* The record of info for set `set`, or NULL. */
static object_t *object_find(const struct dl_phdr_info *info, unsigned int set) {
  for (size_t i = 0; i < g_nobjects; i++) {
    object_t *o = &g_objects[i];
    if (o->set == set && o->base == info->dlpi_addr &&
        o->phdr == (const void *)info->dlpi_phdr && o->name == info->dlpi_name)
      return o;
  }
  return NULL;
}

static void note_err(int rc) {
  if (rc < 0 && g_err == 0) g_err = rc;
}

/* Patches info's entries that name a hook of set *(unsigned int *)arg. */
static int patch_object_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  unsigned int set = *(const unsigned int *)arg;
  object_t *known = object_find(info, set);
  if (known != NULL) {
    known->seen = 1;
    return 0;
  }
  if (object_skipped(info)) return 0;
  elf_view_t v;
  if (elf_view_init(info, &v) != 0) return 0;
  /* Count first, so that an object is patched whole or not at all. */
  size_t want = 0;
  for (int pass = 0; pass < 2; pass++) {
    const ElfW(Rela) *r = pass == 0 ? v.jmprel : v.rela;
    size_t n = pass == 0 ? v.njmprel : v.nrela;
    for (size_t i = 0; i < n; i++) {
      const char *name = reloc_name(&v, &r[i]);
      if (name != NULL && hook_for(name, set) != NULL) want++;
    }
  }
  if (want == 0) return 0;
  if (g_nobjects >= SCALENE__INTERPOSE_MAX_OBJECTS ||
      want > SCALENE__INTERPOSE_MAX_SLOTS - g_nslots) {
    note_err(SCALENE_ENOMEM);
    return 0;
  }
  object_t *o = &g_objects[g_nobjects++];
  o->base = info->dlpi_addr;
  o->phdr = info->dlpi_phdr;
  o->name = info->dlpi_name;
  o->first = g_nslots;
  o->n = 0;
  o->set = set;
  o->seen = 1;
  for (int pass = 0; pass < 2; pass++) {
    const ElfW(Rela) *r = pass == 0 ? v.jmprel : v.rela;
    size_t n = pass == 0 ? v.njmprel : v.nrela;
    for (size_t i = 0; i < n; i++) {
      const char *name = reloc_name(&v, &r[i]);
      const scalene__hook_t *h = name != NULL ? hook_for(name, set) : NULL;
      if (h == NULL) continue;
      void **addr = (void **)(v.base + r[i].r_offset);
      void *cur = __atomic_load_n(addr, __ATOMIC_RELAXED);
      /* NULL: an undefined weak reference; the replacement: DT_RELA also
       * covering DT_JMPREL (some linkers), or a double entry. */
      if (cur == NULL || cur == h->replacement) continue;
      /* Only entries bound to the real function, or not bound yet (a lazy
       * JUMP_SLOT points back into its own object's PLT), are taken over:
       * one bound elsewhere (the object's own or a DEEPBIND allocator,
       * another symbol version, another tool's hook) is left alone, since
       * our replacement would pair its frees with the wrong allocator. */
      void *alt = g_alt[h - g_hooks];
      if (cur != *h->original && (alt == NULL || cur != alt) &&
          !object_contains(info, (uintptr_t)cur))
        continue;
      int rc = write_slot(&v, addr, h->replacement);
      if (rc != 0) {
        note_err(rc);
        continue;
      }
      g_slots[g_nslots++] = (slot_t){addr, cur, h->replacement};
      o->n++;
    }
  }
  return 0;
}

/* Restores info's entries of the sets in the mask *(unsigned int *)arg
 * and marks those records seen (restored). */
static int restore_object_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  unsigned int mask = *(const unsigned int *)arg;
  elf_view_t v;
  int have_view = 0;
  for (unsigned int set = 0; set < SCALENE__INTERPOSE_MAX_SETS; set++) {
    if (!(mask & (1u << set))) continue;
    object_t *o = object_find(info, set);
    if (o == NULL || o->seen) continue;
    o->seen = 1; /* restored */
    if (!have_view) {
      if (elf_view_init(info, &v) != 0) return 0;
      have_view = 1;
    }
    for (size_t i = o->first; i < o->first + o->n; i++) {
      slot_t *s = &g_slots[i];
      if (__atomic_load_n(s->addr, __ATOMIC_RELAXED) != s->repl) continue;
      note_err(write_slot(&v, s->addr, s->old));
    }
  }
  return 0;
}

/* Copies the objects still marked seen (and their slots) to the front of
 * the tables, dropping the others. */
static void compact(void) {
  size_t no = 0, ns = 0;
  for (size_t i = 0; i < g_nobjects; i++) {
    object_t o = g_objects[i];
    if (!o.seen) continue;
    memmove(&g_slots[ns], &g_slots[o.first], o.n * sizeof *g_slots);
    o.first = ns;
    ns += o.n;
    g_objects[no++] = o;
  }
  g_nobjects = no;
  g_nslots = ns;
}

typedef struct counts {
  unsigned long long adds, subs;
  int valid;
} counts_t;

static int counts_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  counts_t *c = arg;
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    c->adds = info->dlpi_adds;
    c->subs = info->dlpi_subs;
    c->valid = 1;
  }
  return 1; /* the first object is enough */
}

/* One pass over the loaded objects per installed set: patch the objects
 * new to that set, forget the gone ones.  Called with g_lock held. */
static int patch_pass(void) {
  counts_t c = {0, 0, 0};
  dl_iterate_phdr(counts_cb, &c);
  for (size_t i = 0; i < g_nobjects; i++) g_objects[i].seen = 0;
  g_err = 0;
  for (unsigned int set = 0; set < SCALENE__INTERPOSE_MAX_SETS; set++)
    if (g_sets & (1u << set)) dl_iterate_phdr(patch_object_cb, &set);
  compact();
  g_adds = c.adds;
  g_subs = c.subs;
  return g_err;
}

/* ------------------------------------------------------------ dlopen hooks */

static void *hook_dlopen(const char *file, int flags) {
  void *h = ((dlopen_fn)g_real_dlopen)(file, flags);
  if (h != NULL) {
    int saved = errno;
    (void)scalene__interpose_refresh();
    errno = saved;
  }
  return h;
}

static void *hook_dlmopen(Lmid_t lmid, const char *file, int flags) {
  void *h = ((dlmopen_fn)g_real_dlmopen)(lmid, file, flags);
  if (h != NULL) {
    int saved = errno;
    (void)scalene__interpose_refresh();
    errno = saved;
  }
  return h;
}

/* ------------------------------------------------------------ API */

/* The function that GOT entries naming symbol resolve to: the definition
 * in the global scope (RTLD_DEFAULT), which is also what an LD_PRELOADed
 * allocator or a sanitizer runtime provides.  RTLD_NEXT would not do: from
 * an object loaded with dlopen(RTLD_LOCAL), as libscaleneprof is under
 * Python, it searches that object's local scope and finds glibc's malloc
 * even when jemalloc was preloaded.  RTLD_NEXT only when the replacement is
 * itself the global definition (a preloaded shim). */
static void *find_real_raw(const char *symbol, const void *replacement) {
  void *p = dlsym(RTLD_DEFAULT, symbol);
  if (p == NULL || p == replacement) p = dlsym(RTLD_NEXT, symbol);
  return p == replacement ? NULL : p;
}

/* Canonical PLT entries.  A non-PIE executable that takes the address of
 * an imported function (Debian's /usr/bin/python3 takes malloc's) gets a
 * "canonical PLT entry": its dynamic symbol table lists the function as
 * undefined (SHN_UNDEF) but with a nonzero value, the address of its own
 * PLT stub, so that &malloc compares equal everywhere.  dlsym(RTLD_DEFAULT)
 * returns that stub, and so do the GLOB_DAT entries of other objects; but
 * JUMP_SLOT entries (lookups that skip undefined symbols) are bound to the
 * real definition in libc.  So when the address found lies in an object
 * where the symbol is undefined, the real function is taken from the first
 * object in load order (dl_iterate_phdr order, the global search order)
 * that defines it, and the stub is kept as a second address that marks an
 * entry as bound to the real function.  The definer is asked with dlsym on
 * its own handle (dlopen RTLD_NOLOAD), which runs an IFUNC resolver rather
 * than returning it; an answer outside that object (found among its
 * dependencies) means the object itself does not define the symbol.
 * dlopen and dlsym are not called inside dl_iterate_phdr callbacks: the
 * names are collected a batch at a time first. */
typedef struct undef_query {
  uintptr_t addr;
  const char *symbol;
  int found, undef;
  struct dl_phdr_info obj; /* the object holding addr */
} undef_query_t;

static int undef_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  undef_query_t *q = arg;
  if (!object_contains(info, q->addr)) return 0;
  q->found = 1;
  q->obj = *info;
  elf_view_t v;
  if (elf_view_init(info, &v) != 0) return 1;
  for (int pass = 0; pass < 2 && !q->undef; pass++) {
    const ElfW(Rela) *r = pass == 0 ? v.jmprel : v.rela;
    size_t n = pass == 0 ? v.njmprel : v.nrela;
    for (size_t i = 0; i < n; i++) {
      const char *name = reloc_name(&v, &r[i]);
      if (name == NULL || strcmp(name, q->symbol) != 0) continue;
      const ElfW(Sym) *sym = &v.symtab[ELF64_R_SYM(r[i].r_info)];
      if (sym->st_shndx == SHN_UNDEF) {
        q->undef = 1;
        break;
      }
    }
  }
  return 1;
}

#define DEFINER_BATCH 32

typedef struct objs_batch {
  size_t skip, seen, n;
  struct dl_phdr_info objs[DEFINER_BATCH];
} objs_batch_t;

static int objs_batch_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  objs_batch_t *b = arg;
  if (b->seen++ < b->skip) return 0;
  b->objs[b->n++] = *info;
  return b->n == DEFINER_BATCH;
}

/* The definition of symbol in the first loaded object other than
 * stub_obj that defines it, or NULL. */
static void *find_definer(const char *symbol, const struct dl_phdr_info *stub_obj) {
  objs_batch_t b;
  for (size_t skip = 0;; skip += DEFINER_BATCH) {
    memset(&b, 0, sizeof b);
    b.skip = skip;
    dl_iterate_phdr(objs_batch_cb, &b);
    for (size_t i = 0; i < b.n; i++) {
      const struct dl_phdr_info *o = &b.objs[i];
      if (o->dlpi_addr == stub_obj->dlpi_addr && o->dlpi_phdr == stub_obj->dlpi_phdr) continue;
      /* "" is the main program: dlopen(NULL) would be the global scope. */
      if (o->dlpi_name == NULL || o->dlpi_name[0] == '\0') continue;
      if (object_contains(o, (uintptr_t)getauxval(AT_SYSINFO_EHDR))) continue;
      void *h = dlopen(o->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
      if (h == NULL) continue;
      void *p = dlsym(h, symbol);
      dlclose(h);
      if (p != NULL && object_contains(o, (uintptr_t)p)) return p;
    }
    if (b.n < DEFINER_BATCH) return NULL;
  }
}

/* find_real_raw, with canonical PLT stubs resolved as above: returns the
 * real function and stores the stub (or NULL) in *stub. */
static void *find_real(const char *symbol, const void *replacement, void **stub) {
  *stub = NULL;
  void *p = find_real_raw(symbol, replacement);
  if (p == NULL) return NULL;
  undef_query_t q;
  memset(&q, 0, sizeof q);
  q.addr = (uintptr_t)p;
  q.symbol = symbol;
  dl_iterate_phdr(undef_cb, &q);
  if (!q.found || !q.undef) return p;
  void *def = find_definer(symbol, &q.obj);
  if (def == NULL || def == replacement) return p; /* nothing better known */
  *stub = p;
  return def;
}

/* Maps the table and installs the internal dlopen/dlmopen hooks (set 0),
 * if no set is installed yet.  Called with g_lock held.  Returns 0 or
 * SCALENE_ENOMEM. */
static int base_install(void) {
  if (g_sets & (1u << SET_INTERNAL)) return 0;
  g_pagesize = (uintptr_t)sysconf(_SC_PAGESIZE);
  g_table_size = SCALENE__INTERPOSE_MAX_SLOTS * sizeof(slot_t) +
                 SCALENE__INTERPOSE_MAX_OBJECTS * sizeof(object_t);
  g_table = mmap(NULL, g_table_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (g_table == MAP_FAILED) {
    g_table = NULL;
    return SCALENE_ENOMEM;
  }
  g_slots = g_table;
  g_objects = (object_t *)(g_slots + SCALENE__INTERPOSE_MAX_SLOTS);
  g_nslots = g_nobjects = 0;
  g_nhooks = 0;
  void *stub_dlopen, *stub_dlmopen;
  void *real_dlopen = find_real("dlopen", (void *)hook_dlopen, &stub_dlopen);
  void *real_dlmopen = find_real("dlmopen", (void *)hook_dlmopen, &stub_dlmopen);
  if (g_real_dlopen == NULL) g_real_dlopen = real_dlopen;
  if (g_real_dlmopen == NULL) g_real_dlmopen = real_dlmopen;
  g_alt[g_nhooks] = stub_dlopen;
  g_hook_set[g_nhooks] = SET_INTERNAL;
  g_hooks[g_nhooks++] = (scalene__hook_t){"dlopen", (void *)hook_dlopen, &g_real_dlopen};
  g_alt[g_nhooks] = stub_dlmopen;
  g_hook_set[g_nhooks] = SET_INTERNAL;
  g_hooks[g_nhooks++] = (scalene__hook_t){"dlmopen", (void *)hook_dlmopen, &g_real_dlmopen};
  g_sets = 1u << SET_INTERNAL;
  return 0;
}

int scalene__interpose_install_set(unsigned int set, const scalene__hook_t *hooks, size_t n) {
  if (!SCALENE__INTERPOSE_SUPPORTED) return SCALENE_ENOTSUP;
  if (set == SET_INTERNAL || set >= SCALENE__INTERPOSE_MAX_SETS) return SCALENE_EINVAL;
  if (n > SCALENE__INTERPOSE_MAX_HOOKS || (n > 0 && hooks == NULL)) return SCALENE_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (hooks[i].symbol == NULL || hooks[i].replacement == NULL || hooks[i].original == NULL ||
        strcmp(hooks[i].symbol, "dlopen") == 0 || strcmp(hooks[i].symbol, "dlmopen") == 0)
      return SCALENE_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(hooks[i].symbol, hooks[j].symbol) == 0) return SCALENE_EINVAL;
  }
  pthread_mutex_lock(&g_lock);
  if (g_sets & (1u << set)) {
    pthread_mutex_unlock(&g_lock);
    return SCALENE_EBUSY;
  }
  /* A symbol has at most one replacement at a time. */
  for (size_t i = 0; i < n; i++)
    for (size_t h = 0; h < g_nhooks; h++)
      if (strcmp(hooks[i].symbol, g_hooks[h].symbol) == 0) {
        pthread_mutex_unlock(&g_lock);
        return SCALENE_EINVAL;
      }
  int rc = base_install();
  if (rc != 0) {
    pthread_mutex_unlock(&g_lock);
    return rc;
  }
  /* The real functions are set before any entry points at a replacement. */
  for (size_t i = 0; i < n; i++) {
    g_hooks[g_nhooks] = hooks[i];
    g_hook_set[g_nhooks] = set;
    *hooks[i].original = find_real(hooks[i].symbol, hooks[i].replacement, &g_alt[g_nhooks]);
    g_nhooks++;
  }
  g_sets |= 1u << set;
  __atomic_store_n(&g_installed, 1, __ATOMIC_RELAXED);
  rc = patch_pass();
  pthread_mutex_unlock(&g_lock);
  return rc;
}

int scalene__interpose_install(const scalene__hook_t *hooks, size_t n) {
  return scalene__interpose_install_set(SCALENE__INTERPOSE_SET_DEFAULT, hooks, n);
}

int scalene__interpose_refresh(void) {
  if (!__atomic_load_n(&g_installed, __ATOMIC_RELAXED)) return 0;
  pthread_mutex_lock(&g_lock);
  int rc = 0;
  if (g_installed) {
    counts_t c = {0, 0, 0};
    dl_iterate_phdr(counts_cb, &c);
    if (!c.valid || c.adds != g_adds || c.subs != g_subs) rc = patch_pass();
  }
  pthread_mutex_unlock(&g_lock);
  return rc;
}

/* Restores the entries of the sets in mask and drops their records and
 * hooks.  Called with g_lock held. */
static int restore_sets(unsigned int mask) {
  for (size_t i = 0; i < g_nobjects; i++) g_objects[i].seen = !(mask & (1u << g_objects[i].set));
  g_err = 0;
  dl_iterate_phdr(restore_object_cb, &mask);
  int rc = g_err;
  /* Records of the sets in mask go, whether restored or of objects gone. */
  for (size_t i = 0; i < g_nobjects; i++) g_objects[i].seen = !(mask & (1u << g_objects[i].set));
  compact();
  size_t k = 0;
  for (size_t h = 0; h < g_nhooks; h++) {
    if (mask & (1u << g_hook_set[h])) continue;
    g_hooks[k] = g_hooks[h];
    g_alt[k] = g_alt[h];
    g_hook_set[k] = g_hook_set[h];
    k++;
  }
  g_nhooks = k;
  g_sets &= ~mask;
  return rc;
}

int scalene__interpose_remove_set(unsigned int set) {
  if (set == SET_INTERNAL || set >= SCALENE__INTERPOSE_MAX_SETS) return SCALENE_EINVAL;
  pthread_mutex_lock(&g_lock);
  if (!(g_sets & (1u << set))) {
    pthread_mutex_unlock(&g_lock);
    return SCALENE_ESTATE;
  }
  unsigned int mask = 1u << set;
  /* The last caller set takes the internal dlopen hooks with it. */
  if ((g_sets & ~(mask | (1u << SET_INTERNAL))) == 0) mask |= 1u << SET_INTERNAL;
  int rc = restore_sets(mask);
  if (g_sets == 0) {
    munmap(g_table, g_table_size);
    g_table = NULL;
    g_slots = NULL;
    g_objects = NULL;
    g_nslots = g_nobjects = 0;
    g_nhooks = 0;
    __atomic_store_n(&g_installed, 0, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&g_lock);
  return rc;
}

int scalene__interpose_remove(void) {
  return scalene__interpose_remove_set(SCALENE__INTERPOSE_SET_DEFAULT);
}

size_t scalene__interpose_slot_count(void) {
  pthread_mutex_lock(&g_lock);
  size_t n = g_nslots;
  pthread_mutex_unlock(&g_lock);
  return n;
}

size_t scalene__interpose_set_slot_count(unsigned int set) {
  pthread_mutex_lock(&g_lock);
  size_t n = 0;
  for (size_t i = 0; i < g_nobjects; i++)
    if (g_objects[i].set == set) n += g_objects[i].n;
  pthread_mutex_unlock(&g_lock);
  return n;
}

typedef struct got_query {
  uintptr_t addr;
  const char *symbol;
  void ***slots;
  size_t max;
  int found;
  int count;
} got_query_t;

static int got_slots_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  got_query_t *q = arg;
  if (!object_contains(info, q->addr)) return 0;
  q->found = 1;
  elf_view_t v;
  if (elf_view_init(info, &v) != 0) return 1;
  for (int pass = 0; pass < 2; pass++) {
    const ElfW(Rela) *r = pass == 0 ? v.jmprel : v.rela;
    size_t n = pass == 0 ? v.njmprel : v.nrela;
    for (size_t i = 0; i < n; i++) {
      const char *name = reloc_name(&v, &r[i]);
      if (name == NULL || strcmp(name, q->symbol) != 0) continue;
      void **slot = (void **)(v.base + r[i].r_offset);
      int dup = 0; /* DT_RELA may cover DT_JMPREL */
      for (int k = 0; k < q->count && (size_t)k < q->max; k++) dup |= q->slots[k] == slot;
      if (dup) continue;
      if ((size_t)q->count < q->max) q->slots[q->count] = slot;
      q->count++;
    }
  }
  return 1;
}

int scalene__interpose_got_slots(const void *addr, const char *symbol, void ***slots,
                                 size_t max) {
  if (!SCALENE__INTERPOSE_SUPPORTED) return SCALENE_ENOTSUP;
  if (symbol == NULL || (max > 0 && slots == NULL)) return SCALENE_EINVAL;
  if (g_pagesize == 0) g_pagesize = (uintptr_t)sysconf(_SC_PAGESIZE);
  got_query_t q = {(uintptr_t)addr, symbol, slots, max, 0, 0};
  dl_iterate_phdr(got_slots_cb, &q);
  return q.found ? q.count : SCALENE_ENOENT;
}
