/* The deep-size area of _libleak: libleak.asizeof's C side.
 *
 * deep_sizes(objs, excluded, align, limit, code, frames, ignored) walks once and returns
 * (sizes, total, objects, seen, deferred, max_depth); flat_size(obj, align) sizes one object
 * without following anything.  Argument checking beyond types is the Python module's. */
#include "glue.h"
#include "heap/deepsize.h"

/* A tuple's items as the C API wants them; the tuple keeps them alive. */
static PyObject *const *tuple_items(PyObject *tuple) { return &PyTuple_GET_ITEM(tuple, 0); }

/* Parses the options shared by the functions below; -1 with TypeError/ValueError set. */
static int parse_options(PyObject *align, PyObject *limit, int code, int frames, int ignored,
                         leak_deepsize_options *options) {
  *options = (leak_deepsize_options)LEAK_DEEPSIZE_OPTIONS_INIT;
  Py_ssize_t a = PyLong_AsSsize_t(align);
  if (a == -1 && PyErr_Occurred()) return -1;
  if (a < 0) {
    PyErr_SetString(PyExc_ValueError, "align must be a power of 2 (or 0 or 1 for none)");
    return -1;
  }
  options->align = (size_t)a;
  if (limit == Py_None) {
    options->limit = -1;
  } else {
    long l = PyLong_AsLong(limit);
    if (l == -1 && PyErr_Occurred()) return -1;
    if (l < 0) {
      PyErr_SetString(PyExc_ValueError, "limit must be >= 0 (or None for no limit)");
      return -1;
    }
    options->limit = l;
  }
  options->code = code;
  options->frames = frames;
  options->ignored = ignored;
  return 0;
}

/* deep_sizes(objs: tuple, excluded: tuple, align: int, limit: int | None, code, frames, ignored) */
static PyObject *deepsize_deep_sizes(PyObject *self, PyObject *args) {
  PyObject *objs, *excluded, *align, *limit;
  int code, frames, ignored;
  if (!PyArg_ParseTuple(args, "O!O!OOppp:deep_sizes", &PyTuple_Type, &objs, &PyTuple_Type, &excluded, &align, &limit,
                        &code, &frames, &ignored))
    return NULL;
  leak_deepsize_options options;
  if (parse_options(align, limit, code, frames, ignored, &options) < 0) return NULL;
  size_t count = (size_t)PyTuple_GET_SIZE(objs);
  size_t *sizes = PyMem_RawCalloc(count ? count : 1, sizeof(size_t));
  if (sizes == NULL) return PyErr_NoMemory();
  leak__deepsize_result result;
  int rc = leak__deep_size(count ? tuple_items(objs) : NULL, count,
                           PyTuple_GET_SIZE(excluded) ? tuple_items(excluded) : NULL,
                           (size_t)PyTuple_GET_SIZE(excluded), &options, sizes, &result);
  PyObject *answer = NULL;
  if (rc == LEAK_EINVAL) {
    PyErr_SetString(PyExc_ValueError, "align must be a power of 2 (or 0 or 1 for none)");
  } else if (rc < 0) {
    leak__py_raise(rc, "asizeof");
  } else {
    PyObject *list = PyTuple_New((Py_ssize_t)count);
    for (size_t i = 0; list && i < count; i++) {
      PyObject *n = PyLong_FromSize_t(sizes[i]);
      if (n == NULL) Py_CLEAR(list);
      else PyTuple_SET_ITEM(list, (Py_ssize_t)i, n);
    }
    if (list != NULL)
      answer = Py_BuildValue("(Nnnnnn)", list, (Py_ssize_t)result.total, (Py_ssize_t)result.objects,
                             (Py_ssize_t)result.seen, (Py_ssize_t)result.deferred, (Py_ssize_t)result.max_depth);
  }
  PyMem_RawFree(sizes);
  return answer;
}

/* flat_size(obj, align: int) -> int */
static PyObject *deepsize_flat_size(PyObject *self, PyObject *args) {
  PyObject *obj, *align;
  if (!PyArg_ParseTuple(args, "OO:flat_size", &obj, &align)) return NULL;
  leak_deepsize_options options;
  if (parse_options(align, Py_None, 0, 0, 1, &options) < 0) return NULL;
  size_t size;
  int rc = leak__flat_size(obj, options.align, &size);
  if (rc == LEAK_EINVAL) {
    PyErr_SetString(PyExc_ValueError, "align must be a power of 2 (or 0 or 1 for none)");
    return NULL;
  }
  if (rc < 0) return leak__py_raise(rc, "flatsize");
  return PyLong_FromSize_t(size);
}

static PyMethodDef deepsize_methods[] = {
    {"deep_sizes", deepsize_deep_sizes, METH_VARARGS,
     "deep_sizes(objs, excluded, align, limit, code, frames, ignored) -> "
     "(sizes, total, objects, seen, deferred, max_depth)."},
    {"flat_size", deepsize_flat_size, METH_VARARGS, "flat_size(obj, align) -> int."},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_deepsize_area = {deepsize_methods, NULL};
