/* scalene._core: the SIGTERM guard (_core_term.c), the module functions
 * _core.c lists in its method table.  Never installed. */
#ifndef SCALENE_CORE_TERM_H
#define SCALENE_CORE_TERM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyObject *core_term_guard(PyObject *module, PyObject *args);
PyObject *core_term_taken(PyObject *module, PyObject *ignored);
PyObject *core_term_unguard(PyObject *module, PyObject *ignored);
extern const char core_term_guard_doc[];
extern const char core_term_taken_doc[];
extern const char core_term_unguard_doc[];

#define CORE_TERM_METHODS                                                               \
  {"_term_guard", core_term_guard, METH_VARARGS, core_term_guard_doc},                  \
      {"_term_taken", core_term_taken, METH_NOARGS, core_term_taken_doc},               \
      {"_term_unguard", core_term_unguard, METH_NOARGS, core_term_unguard_doc},

#endif
