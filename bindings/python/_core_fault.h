/* scalene._core: the fatal-signal note (_core_fault.c), the module
 * functions _core.c lists in its method table.  Never installed. */
#ifndef SCALENE_CORE_FAULT_H
#define SCALENE_CORE_FAULT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyObject *core_fault_install(PyObject *module, PyObject *ignored);
PyObject *core_fault_note(PyObject *module, PyObject *arg);
PyObject *core_fault_remove(PyObject *module, PyObject *ignored);
extern const char core_fault_install_doc[];
extern const char core_fault_note_doc[];
extern const char core_fault_remove_doc[];

#define CORE_FAULT_METHODS                                                              \
  {"_fault_install", core_fault_install, METH_NOARGS, core_fault_install_doc},          \
      {"_fault_note", core_fault_note, METH_O, core_fault_note_doc},                    \
      {"_fault_remove", core_fault_remove, METH_NOARGS, core_fault_remove_doc},

#endif
