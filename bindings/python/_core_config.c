/* scalene._core.load_config: reads a YAML option file with
 * scalene_config_load and hands its values to Python.  Glue only: the
 * library checks the file (config.h); this file turns the schema into
 * scalene_config_key_t, the values into Python objects and a failure into
 * scalene._core.Error("file:line:column: text"). */
#include "_core_config.h" /* first: Python.h */

#include <stdio.h>
#include <string.h>

#include <scalene/scalene.h>

static const struct {
  const char *name;
  scalene_config_type_t type;
} config_types[] = {
    {"bool", SCALENE_CONFIG_BOOL},     {"int", SCALENE_CONFIG_INT},
    {"float", SCALENE_CONFIG_FLOAT},   {"string", SCALENE_CONFIG_STRING},
    {"list", SCALENE_CONFIG_LIST},
};

/* Raises the module's Error with err's one-line message and e.code = code
 * (as _core.c's core_raise does; the message is decoded like a file name,
 * since it starts with one). */
static PyObject *config_raise(PyObject *module, int code, const scalene_error_t *err)
{
  char msg[SCALENE_ERROR_SOURCE_MAX + SCALENE_ERROR_TEXT_MAX + 64];
  if (err->text[0] != '\0')
    scalene_error_format(err, msg, sizeof msg);
  else
    snprintf(msg, sizeof msg, "%s", scalene_strerror(code));
  PyObject *type = PyObject_GetAttrString(module, "Error");
  if (type == NULL)
    return NULL;
  PyObject *text = PyUnicode_DecodeFSDefault(msg);
  PyObject *exc = text != NULL ? PyObject_CallOneArg(type, text) : NULL;
  Py_XDECREF(text);
  if (exc == NULL) {
    Py_DECREF(type);
    return NULL;
  }
  PyObject *pycode = PyLong_FromLong(code);
  if (pycode == NULL || PyObject_SetAttrString(exc, "code", pycode) < 0) {
    Py_XDECREF(pycode);
    Py_DECREF(exc);
    Py_DECREF(type);
    return NULL;
  }
  Py_DECREF(pycode);
  PyErr_SetObject(type, exc);
  Py_DECREF(exc);
  Py_DECREF(type);
  return NULL;
}

static PyObject *config_value(const scalene_config_value_t *v)
{
  switch (v->type) {
  case SCALENE_CONFIG_BOOL:
    return PyBool_FromLong(v->boolean);
  case SCALENE_CONFIG_INT:
    return PyLong_FromLongLong((long long)v->integer);
  case SCALENE_CONFIG_FLOAT:
    return PyFloat_FromDouble(v->number);
  case SCALENE_CONFIG_STRING:
    return PyUnicode_FromString(v->string);
  case SCALENE_CONFIG_LIST: {
    PyObject *list = PyList_New((Py_ssize_t)v->n_items);
    if (list == NULL)
      return NULL;
    for (size_t i = 0; i < v->n_items; i++) {
      PyObject *item = PyUnicode_FromString(v->items[i]);
      if (item == NULL) {
        Py_DECREF(list);
        return NULL;
      }
      PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
  }
  }
  PyErr_SetString(PyExc_SystemError, "load_config: a value of unknown type");
  return NULL;
}

const char core_load_config_doc[] =
    "load_config(path, schema)\n--\n\n"
    "Read the YAML option file at path (libscaleneprof's config.h).  schema is a\n"
    "sequence of (name, type) pairs, type one of \"bool\", \"int\", \"float\",\n"
    "\"string\", \"list\"; a key in the file matches a name with '-' and '_' alike.\n"
    "Returns a list of (name, value, line, column) in the file's order: name is\n"
    "the schema's str, value a bool, int, float, str or list of str.  Raises\n"
    "Error('file:line:column: text') for anything else in the file, an unknown\n"
    "key, a value of the wrong type, YAML that does not parse, or a file that\n"
    "cannot be read (e.code: ENOENT, EIO, EPARSE, EFORMAT).";

PyObject *core_load_config(PyObject *module, PyObject *args)
{
  PyObject *path = NULL, *schema_obj;
  if (!PyArg_ParseTuple(args, "O&O:load_config", PyUnicode_FSConverter, &path, &schema_obj))
    return NULL;
  PyObject *result = NULL, *seq = NULL;
  PyObject **names = NULL;
  scalene_config_key_t *keys = NULL;
  scalene_config_t *c = NULL;
  /* A tuple of its own: the names must outlive the call, which runs
   * without the GIL while another thread could change a list. */
  if (!PySequence_Check(schema_obj) || PyUnicode_Check(schema_obj)) {
    PyErr_Format(PyExc_TypeError, "schema must be a sequence of (name, type) pairs, not %.100s",
                 Py_TYPE(schema_obj)->tp_name);
    goto out;
  }
  seq = PySequence_Tuple(schema_obj);
  if (seq == NULL)
    goto out;
  Py_ssize_t n = PyTuple_GET_SIZE(seq);
  keys = PyMem_Calloc((size_t)n + 1, sizeof *keys);
  names = PyMem_Calloc((size_t)n + 1, sizeof *names);
  if (keys == NULL || names == NULL) {
    PyErr_NoMemory();
    goto out;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *pair = PyTuple_GET_ITEM(seq, i);
    PyObject *name, *type;
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
        !PyUnicode_Check(name = PyTuple_GET_ITEM(pair, 0)) ||
        !PyUnicode_Check(type = PyTuple_GET_ITEM(pair, 1))) {
      PyErr_Format(PyExc_TypeError, "schema item %zd must be a (name, type) pair of str, not %R",
                   i, pair);
      goto out;
    }
    keys[i].name = PyUnicode_AsUTF8(name); /* lives as long as the tuple in seq */
    if (keys[i].name == NULL)
      goto out;
    names[i] = name;
    const char *t = PyUnicode_AsUTF8(type);
    if (t == NULL)
      goto out;
    for (size_t j = 0; j < sizeof config_types / sizeof config_types[0]; j++)
      if (strcmp(t, config_types[j].name) == 0)
        keys[i].type = config_types[j].type;
    if (keys[i].type == 0) {
      PyErr_Format(PyExc_ValueError,
                   "schema item %zd: type must be bool, int, float, string or list, not %R", i,
                   type);
      goto out;
    }
  }
  scalene_error_t err;
  memset(&err, 0, sizeof err);
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = scalene_config_load(PyBytes_AS_STRING(path), keys, (size_t)n, &c, &err);
  Py_END_ALLOW_THREADS
  if (rc < 0) {
    config_raise(module, rc, &err);
    goto out;
  }
  size_t count = scalene_config_count(c);
  result = PyList_New((Py_ssize_t)count);
  if (result == NULL)
    goto out;
  for (size_t i = 0; i < count; i++) {
    const scalene_config_value_t *v = scalene_config_get(c, i);
    Py_ssize_t k = 0;
    while (k < n && keys[k].name != v->name)
      k++;
    PyObject *value = config_value(v);
    PyObject *item = value != NULL && k < n
                         ? Py_BuildValue("(OOii)", names[k], value, v->line, v->column)
                         : NULL;
    Py_XDECREF(value);
    if (item == NULL) {
      if (!PyErr_Occurred())
        PyErr_SetString(PyExc_SystemError, "load_config: a value without its schema key");
      Py_CLEAR(result);
      goto out;
    }
    PyList_SET_ITEM(result, (Py_ssize_t)i, item);
  }
out:
  scalene_config_free(c);
  PyMem_Free(names);
  PyMem_Free(keys);
  Py_XDECREF(seq);
  Py_DECREF(path);
  return result;
}
