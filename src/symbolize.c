/* libscaleneprof: scalene_symbolize, code address -> function, file, line.
 *
 * The function name and the object come from dladdr.  When the library is
 * built with libdw (HAVE_LIBDW), one Dwfl session per process, made lazily on
 * first use (normally on the sampler's thread) from /proc/<pid>/maps, gives
 * the source file and line (dwfl_module_getsrc), the innermost function
 * containing the address, inlined or not (dwarf_getscopes), and that
 * function's first line; objects loaded after the session was made are
 * found by reporting the process's modules again on a miss.  Without debug
 * information the file is the object's path and the line 0.
 *
 * libdw is loaded with dlopen on the first call, not linked: it brings
 * libelf, libz, liblzma and libbz2 along (~1.8 ms to load and relocate at
 * every start of a program, and their mappings to tear down at its exit),
 * while most profiles of Python programs never symbolise a native address.
 * Without libdw at run time (libdw1 not installed), dladdr alone answers.
 *
 * Not async-signal-safe: it allocates, loads a library and takes a lock. */
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#endif

static void copy_str(char *dst, size_t n, const char *src) {
  if (src == NULL) src = "";
  size_t len = strlen(src);
  if (len >= n) len = n - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

#ifdef HAVE_LIBDW
/* The libdw functions used here, from dlopen (dw_load), typed by their
 * declarations in libdw's headers; each is named as the function without
 * its dwfl_ or dwarf_ prefix. */
#define DW_FN(name) __typeof__(&name)
static struct {
  DW_FN(dwfl_begin) begin;
  DW_FN(dwfl_end) end;
  DW_FN(dwfl_report_begin) report_begin;
  DW_FN(dwfl_report_end) report_end;
  DW_FN(dwfl_linux_proc_report) linux_proc_report;
  DW_FN(dwfl_addrmodule) addrmodule;
  DW_FN(dwfl_module_info) module_info;
  DW_FN(dwfl_module_getsrc) module_getsrc;
  DW_FN(dwfl_lineinfo) lineinfo;
  DW_FN(dwfl_module_addrdie) module_addrdie;
  DW_FN(dwfl_module_addrname) module_addrname;
  DW_FN(dwarf_getscopes) getscopes;
  DW_FN(dwarf_tag) tag;
  DW_FN(dwarf_diename) diename;
  DW_FN(dwarf_decl_line) decl_line;
} dw;

static pthread_mutex_t dw_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t dw_once = PTHREAD_ONCE_INIT;
static int dw_tried;  /* dw_load has run (under dw_lock) */
static int dw_loaded; /* 1: dw and dw_callbacks are filled; 0: no libdw (dladdr only) */
static Dwfl *dw_session;
static pid_t dw_pid;
static char *dw_debuginfo_path;
static Dwfl_Callbacks dw_callbacks = {.debuginfo_path = &dw_debuginfo_path};

/* Stores dlsym(h, name) in the function pointer at fn; returns 0 or -1. */
static int dw_sym(void *h, const char *name, void *fn) {
  void *p = dlsym(h, name);
  if (p == NULL) return -1;
  memcpy(fn, &p, sizeof p); /* POSIX: a function pointer has an object pointer's size */
  return 0;
}

/* Loads libdw (SCALENE_LIBDW_SONAME, from configure) and looks up every
 * function; on any failure libdw stays unused and is unloaded. */
static void dw_load(void) {
  void *h = dlopen(SCALENE_LIBDW_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return;
  if (dw_sym(h, "dwfl_begin", &dw.begin) || dw_sym(h, "dwfl_end", &dw.end) ||
      dw_sym(h, "dwfl_report_begin", &dw.report_begin) ||
      dw_sym(h, "dwfl_report_end", &dw.report_end) ||
      dw_sym(h, "dwfl_linux_proc_report", &dw.linux_proc_report) ||
      dw_sym(h, "dwfl_addrmodule", &dw.addrmodule) ||
      dw_sym(h, "dwfl_module_info", &dw.module_info) ||
      dw_sym(h, "dwfl_module_getsrc", &dw.module_getsrc) ||
      dw_sym(h, "dwfl_lineinfo", &dw.lineinfo) ||
      dw_sym(h, "dwfl_module_addrdie", &dw.module_addrdie) ||
      dw_sym(h, "dwfl_module_addrname", &dw.module_addrname) ||
      dw_sym(h, "dwarf_getscopes", &dw.getscopes) || dw_sym(h, "dwarf_tag", &dw.tag) ||
      dw_sym(h, "dwarf_diename", &dw.diename) || dw_sym(h, "dwarf_decl_line", &dw.decl_line) ||
      dw_sym(h, "dwfl_linux_proc_find_elf", &dw_callbacks.find_elf) ||
      dw_sym(h, "dwfl_standard_find_debuginfo", &dw_callbacks.find_debuginfo)) {
    dlclose(h);
    return;
  }
  dw_loaded = 1;
}

/* A fork() while another thread symbolises must not leave the child with
 * the lock held, nor with libdw half loaded: dw_load runs under dw_lock,
 * which fork() waits for (not inside pthread_once, whose "running" state a
 * child forked meanwhile would inherit and wait on forever). */
static void dw_prepare(void) { pthread_mutex_lock(&dw_lock); }
static void dw_release(void) { pthread_mutex_unlock(&dw_lock); }
static void dw_init(void) { pthread_atfork(dw_prepare, dw_release, dw_release); }

/* (Re)reads the process's modules into the session.  Returns 0 or -1. */
static int dw_report(void) {
  if (dw_session != NULL && dw_pid != getpid()) {
    dw.end(dw_session); /* inherited across fork(): the maps may differ */
    dw_session = NULL;
  }
  if (dw_session == NULL) {
    dw_session = dw.begin(&dw_callbacks);
    if (dw_session == NULL) return -1;
    dw_pid = getpid();
  }
  dw.report_begin(dw_session);
  int rc = dw.linux_proc_report(dw_session, dw_pid);
  dw.report_end(dw_session, NULL, NULL);
  return rc == 0 ? 0 : -1;
}

/* Fills file, line, function and function_line from DWARF where known.
 * Returns 1 when a module contains pc. */
static int dw_lookup(uintptr_t pc, scalene_location_t *loc, int *have_name) {
  *have_name = 0;
  if ((dw_session == NULL || dw_pid != getpid()) && dw_report() != 0) return 0;
  Dwfl_Module *mod = dw.addrmodule(dw_session, (Dwarf_Addr)pc);
  if (mod == NULL) {
    if (dw_report() != 0) return 0;
    mod = dw.addrmodule(dw_session, (Dwarf_Addr)pc);
    if (mod == NULL) return 0;
  }
  const char *modname = NULL;
  dw.module_info(mod, NULL, NULL, NULL, NULL, NULL, &modname, NULL);
  if (modname != NULL && loc->file[0] == '\0') copy_str(loc->file, sizeof loc->file, modname);

  Dwfl_Line *line = dw.module_getsrc(mod, (Dwarf_Addr)pc);
  if (line != NULL) {
    int lineno = 0;
    const char *src = dw.lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
    if (src != NULL) {
      copy_str(loc->file, sizeof loc->file, src);
      loc->line = lineno > 0 ? (uint32_t)lineno : 0;
    }
  }

  Dwarf_Addr bias = 0;
  Dwarf_Die *cu = dw.module_addrdie(mod, (Dwarf_Addr)pc, &bias);
  if (cu != NULL) {
    Dwarf_Die *scopes = NULL;
    int n = dw.getscopes(cu, (Dwarf_Addr)pc - bias, &scopes);
    for (int i = 0; i < n; i++) {
      int tag = dw.tag(&scopes[i]);
      if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine) continue;
      const char *name = dw.diename(&scopes[i]);
      if (name != NULL) {
        copy_str(loc->function, sizeof loc->function, name);
        *have_name = 1;
      }
      int decl = 0;
      if (dw.decl_line(&scopes[i], &decl) == 0 && decl > 0)
        loc->function_line = (uint32_t)decl;
      break;
    }
    free(scopes);
  }
  if (!*have_name) {
    const char *sym = dw.module_addrname(mod, (GElf_Addr)pc);
    if (sym != NULL) {
      copy_str(loc->function, sizeof loc->function, sym);
      *have_name = 1;
    }
  }
  return 1;
}
#endif

int scalene_symbolize(uintptr_t pc, scalene_location_t *loc) {
  if (loc == NULL || pc == 0) return SCALENE_EINVAL;
  memset(loc, 0, sizeof *loc);
  loc->pc = pc;
  int known = 0;
  Dl_info info;
  memset(&info, 0, sizeof info);
  if (dladdr((void *)pc, &info) != 0) {
    known = 1;
    if (info.dli_fname != NULL) copy_str(loc->file, sizeof loc->file, info.dli_fname);
    if (info.dli_sname != NULL) copy_str(loc->function, sizeof loc->function, info.dli_sname);
  }
#ifdef HAVE_LIBDW
  pthread_once(&dw_once, dw_init);
  pthread_mutex_lock(&dw_lock);
  if (!dw_tried) {
    dw_tried = 1;
    dw_load();
  }
  char dl_name[SCALENE_LOCATION_FUNCTION_MAX];
  copy_str(dl_name, sizeof dl_name, loc->function);
  int have_name = 0;
  if (dw_loaded && dw_lookup(pc, loc, &have_name)) known = 1;
  if (!have_name) copy_str(loc->function, sizeof loc->function, dl_name);
  pthread_mutex_unlock(&dw_lock);
#endif
  if (!known) {
    memset(loc, 0, sizeof *loc);
    loc->pc = pc;
    return SCALENE_EINVAL;
  }
  if (loc->line == 0 && loc->file[0] != '\0' && loc->file[0] != '<') {
    /* No debug information: the "file" is the object (the program or a
     * shared library), not a source file.  Name it <object> so that no
     * reader takes the binary for source text (Python's own convention for
     * code without a file, e.g. <frozen runpy>). */
    char obj[SCALENE_LOCATION_FILE_MAX];
    copy_str(obj, sizeof obj, loc->file);
    size_t n = strlen(obj);
    if (n > sizeof loc->file - 3) n = sizeof loc->file - 3;
    loc->file[0] = '<';
    memcpy(loc->file + 1, obj, n);
    loc->file[n + 1] = '>';
    loc->file[n + 2] = '\0';
  }
  return 0;
}
