/* scalene._core: load_config (_core_config.c), the module function _core.c
 * lists in its method table.  Never installed. */
#ifndef SCALENE_CORE_CONFIG_H
#define SCALENE_CORE_CONFIG_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyObject *core_load_config(PyObject *module, PyObject *args);
extern const char core_load_config_doc[];

#define CORE_CONFIG_METHODS \
  {"load_config", core_load_config, METH_VARARGS, core_load_config_doc},

#endif /* SCALENE_CORE_CONFIG_H */
