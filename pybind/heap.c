/* The heap area of _libleak: censuses (libleak/heap/census.c) and picking objects out of the heap
 * (libleak/heap/select.c).  A census travels to Python as a capsule that frees it; libleak/heap.py
 * and libleak/objgraph.py wrap these functions. */
#include "glue.h"
#include "heap/census.h"
#include "heap/select.h"

#define CENSUS_CAPSULE "libleak.census"

static void free_census_capsule(PyObject *capsule) {
  leak_census_free(PyCapsule_GetPointer(capsule, CENSUS_CAPSULE));
}

/* The census inside `capsule`, or NULL with TypeError. */
static leak_census *census_of(PyObject *capsule) {
  if (!PyCapsule_IsValid(capsule, CENSUS_CAPSULE)) {
    PyErr_SetString(PyExc_TypeError, "expected a census handle from census_take()");
    return NULL;
  }
  return PyCapsule_GetPointer(capsule, CENSUS_CAPSULE);
}

/* A list owning the references of `objects` (count n); the array is freed either way. */
static PyObject *list_of_new_references(PyObject **objects, size_t n) {
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; i < n; i++) {
    if (list != NULL)
      PyList_SET_ITEM(list, (Py_ssize_t)i, objects[i]);
    else
      Py_DECREF(objects[i]);
  }
  leak__free(objects);
  return list;
}

/* census_take(gc_collect, tracked_only, keep_addresses, exclude, exclude_alone) -> census handle.
 * `exclude` is a list or tuple of objects not to count, with what they reach; `exclude_alone` a
 * list or tuple of objects not to count, one by one.  Lists are read in place (no copy), so a
 * caller can keep every object it made out of the count. */
static PyObject *py_census_take(PyObject *module, PyObject *args) {
  int gc_collect, tracked_only, keep_addresses;
  PyObject *exclude, *exclude_alone;
  if (!PyArg_ParseTuple(args, "pppOO:census_take", &gc_collect, &tracked_only, &keep_addresses, &exclude,
                        &exclude_alone))
    return NULL;
  if (!(PyList_Check(exclude) || PyTuple_Check(exclude)) || !(PyList_Check(exclude_alone) || PyTuple_Check(exclude_alone))) {
    PyErr_SetString(PyExc_TypeError, "exclude and exclude_alone must be lists or tuples");
    return NULL;
  }
  leak_census_options options = LEAK_CENSUS_OPTIONS_INIT;
  options.gc_collect = gc_collect;
  options.tracked_only = tracked_only;
  options.keep_addresses = keep_addresses;
  options.exclude = (struct _object *const *)PySequence_Fast_ITEMS(exclude);
  options.exclude_count = (size_t)PySequence_Fast_GET_SIZE(exclude);
  options.exclude_alone = (struct _object *const *)PySequence_Fast_ITEMS(exclude_alone);
  options.exclude_alone_count = (size_t)PySequence_Fast_GET_SIZE(exclude_alone);
  leak_census *census;
  int rc = leak_census_take(&options, &census);
  if (rc < 0) return leak__py_raise(rc, "taking a census");
  PyObject *capsule = PyCapsule_New(census, CENSUS_CAPSULE, free_census_capsule);
  if (capsule == NULL) leak_census_free(census);
  return capsule;
}

/* census_rows(census, name_kind) -> [(type_name, count, size), ...]; name_kind 0: module.Qualname,
 * 1: __name__, 2: __module__.__name__ (objgraph's two). */
static PyObject *py_census_rows(PyObject *module, PyObject *args) {
  PyObject *capsule;
  int kind;
  if (!PyArg_ParseTuple(args, "Oi:census_rows", &capsule, &kind)) return NULL;
  leak_census *census = census_of(capsule);
  if (census == NULL) return NULL;
  if (kind < LEAK__NAME_QUALIFIED || kind > LEAK__NAME_LONG) return leak__py_raise(LEAK_EINVAL, "name kind");
  size_t n = leak_census_rows(census);
  PyObject *rows = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; rows != NULL && i < n; i++) {
    leak_census_row row;
    leak_census_row_at(census, i, &row);
    PyObject *item = Py_BuildValue("(sKK)", leak__census_row_name(census, i, (leak__type_name_kind)kind),
                                   (unsigned long long)row.count, (unsigned long long)row.size);
    if (item == NULL) Py_CLEAR(rows);
    else PyList_SET_ITEM(rows, (Py_ssize_t)i, item);
  }
  return rows;
}

/* census_totals(census) -> (objects, bytes, bytes the census holds). */
static PyObject *py_census_totals(PyObject *module, PyObject *capsule) {
  leak_census *census = census_of(capsule);
  if (census == NULL) return NULL;
  uint64_t count, size, memory;
  leak_census_totals(census, &count, &size, &memory);
  return Py_BuildValue("(KKK)", (unsigned long long)count, (unsigned long long)size, (unsigned long long)memory);
}

/* census_diff(now, old) -> [(type_name, count, count_diff, size, size_diff), ...], largest
 * size_diff first. */
static PyObject *py_census_diff(PyObject *module, PyObject *args) {
  PyObject *now_capsule, *old_capsule;
  if (!PyArg_ParseTuple(args, "OO:census_diff", &now_capsule, &old_capsule)) return NULL;
  leak_census *now = census_of(now_capsule), *old = now ? census_of(old_capsule) : NULL;
  if (old == NULL) return NULL;
  leak_census_diff_row *rows;
  size_t n;
  int rc = leak_census_diff(now, old, &rows, &n);
  if (rc < 0) return leak__py_raise(rc, "comparing censuses");
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; list != NULL && i < n; i++) {
    PyObject *item = Py_BuildValue("(sLLLL)", rows[i].type_name, (long long)rows[i].count,
                                   (long long)rows[i].count_diff, (long long)rows[i].size,
                                   (long long)rows[i].size_diff);
    if (item == NULL) Py_CLEAR(list);
    else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
  }
  leak_census_diff_free(rows);
  return list;
}

/* census_write_diff(now, old, fd, limit) -> None: the C API's text table, for the tests. */
static PyObject *py_census_write_diff(PyObject *module, PyObject *args) {
  PyObject *now_capsule, *old_capsule;
  int fd;
  Py_ssize_t limit;
  if (!PyArg_ParseTuple(args, "OOin:census_write_diff", &now_capsule, &old_capsule, &fd, &limit)) return NULL;
  leak_census *now = census_of(now_capsule), *old = now ? census_of(old_capsule) : NULL;
  if (old == NULL) return NULL;
  if (limit < 0) return leak__py_raise(LEAK_EINVAL, "limit");
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = leak_census_write_diff(now, old, fd, (size_t)limit);
  Py_END_ALLOW_THREADS if (rc < 0) return leak__py_raise(rc, "writing a census diff");
  Py_RETURN_NONE;
}

/* census_new_objects(now, old or None, name_kind, type_name or None, limit) -> [objects]. */
static PyObject *py_census_new_objects(PyObject *module, PyObject *args) {
  PyObject *now_capsule, *old_capsule;
  int kind;
  const char *type_name;
  Py_ssize_t limit;
  if (!PyArg_ParseTuple(args, "OOizn:census_new_objects", &now_capsule, &old_capsule, &kind, &type_name, &limit))
    return NULL;
  leak_census *now = census_of(now_capsule), *old = NULL;
  if (now == NULL) return NULL;
  if (old_capsule != Py_None && (old = census_of(old_capsule)) == NULL) return NULL;
  if (kind < LEAK__NAME_QUALIFIED || kind > LEAK__NAME_LONG || limit < 0)
    return leak__py_raise(LEAK_EINVAL, "name kind or limit");
  PyObject **objects;
  size_t n;
  /* One more than asked: this call's own argument tuple was made after `now` was taken, and may sit
   * at the address of a tuple that `now` counted and that died since (the tuple free lists hand such
   * addresses out first); it is dropped below, not returned as a new object. */
  size_t wanted = limit == 0 ? 0 : (size_t)limit + 1; /* 0: no limit */
  int rc = leak__census_new_objects(now, old, (leak__type_name_kind)kind, type_name, wanted, &objects, &n);
  if (rc == LEAK_EINVAL) {
    PyErr_SetString(PyExc_ValueError, "new_objects needs censuses taken with keep_addresses=True");
    return NULL;
  }
  if (rc < 0) return leak__py_raise(rc, "finding new objects");
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    if (objects[i] == args || (limit != 0 && kept == (size_t)limit))
      Py_DECREF(objects[i]);
    else
      objects[kept++] = objects[i];
  }
  return list_of_new_references(objects, kept);
}

/* census_ids(census, name_kind) -> {type_name: set of ids}: objgraph's get_new_ids bookkeeping. */
static PyObject *py_census_ids(PyObject *module, PyObject *args) {
  PyObject *capsule;
  int kind;
  if (!PyArg_ParseTuple(args, "Oi:census_ids", &capsule, &kind)) return NULL;
  leak_census *census = census_of(capsule);
  if (census == NULL) return NULL;
  if (kind < LEAK__NAME_QUALIFIED || kind > LEAK__NAME_LONG) return leak__py_raise(LEAK_EINVAL, "name kind");
  size_t nrows = leak_census_rows(census), n;
  const uintptr_t *addresses;
  const uint32_t *rows;
  leak__census_objects(census, &addresses, &rows, &n);
  PyObject *result = PyDict_New();
  PyObject **sets = leak__calloc(nrows ? nrows : 1, sizeof(PyObject *));
  if (result == NULL || sets == NULL) goto fail;
  for (size_t r = 0; r < nrows; r++) {
    const char *name = leak__census_row_name(census, r, (leak__type_name_kind)kind);
    PyObject *set = PyDict_GetItemString(result, name); /* rows of one name share a set */
    if (set == NULL) {
      set = PySet_New(NULL);
      if (set == NULL || PyDict_SetItemString(result, name, set) < 0) {
        Py_XDECREF(set);
        goto fail;
      }
      Py_DECREF(set);
    }
    sets[r] = set;
  }
  for (size_t i = 0; i < n; i++) {
    PyObject *id = PyLong_FromVoidPtr((void *)addresses[i]);
    if (id == NULL || PySet_Add(sets[rows[i]], id) < 0) {
      Py_XDECREF(id);
      goto fail;
    }
    Py_DECREF(id);
  }
  leak__free(sets);
  return result;
fail:
  leak__free(sets);
  Py_XDECREF(result);
  return PyErr_Occurred() ? NULL : PyErr_NoMemory();
}

/* heap_objects_at(addresses, tracked_only) -> [objects]: the live objects at those addresses (an
 * iterable of ints). */
static PyObject *py_heap_objects_at(PyObject *module, PyObject *args) {
  PyObject *iterable;
  int tracked_only;
  if (!PyArg_ParseTuple(args, "Op:heap_objects_at", &iterable, &tracked_only)) return NULL;
  PyObject *sequence = PySequence_Fast(iterable, "addresses must be an iterable of ints");
  if (sequence == NULL) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
  uintptr_t *addresses = leak__malloc((size_t)(n ? n : 1) * sizeof(*addresses));
  if (addresses == NULL) {
    Py_DECREF(sequence);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(sequence, i);
    if (!PyLong_Check(item)) {
      PyErr_Format(PyExc_TypeError, "addresses must be ints, not %.100s", Py_TYPE(item)->tp_name);
      addresses[i] = 0;
    } else {
      addresses[i] = (uintptr_t)PyLong_AsUnsignedLongLongMask(item);
    }
    if (PyErr_Occurred()) {
      leak__free(addresses);
      Py_DECREF(sequence);
      return NULL;
    }
  }
  Py_DECREF(sequence);
  PyObject **objects;
  size_t found;
  int rc = leak__heap_objects_at(addresses, (size_t)n, tracked_only, &objects, &found);
  leak__free(addresses);
  if (rc < 0) return leak__py_raise(rc, "finding objects by address");
  return list_of_new_references(objects, found);
}

/* heap_unreferenced(candidates or None) -> [objects]: tracked objects no tracked object refers to
 * (among the list `candidates`, whose own references do not count). */
static PyObject *py_heap_unreferenced(PyObject *module, PyObject *candidates) {
  if (candidates != Py_None && !PyList_Check(candidates)) {
    PyErr_SetString(PyExc_TypeError, "candidates must be a list or None");
    return NULL;
  }
  PyObject **objects;
  size_t found;
  int rc;
  if (candidates == Py_None)
    rc = leak__heap_unreferenced(NULL, NULL, 0, &objects, &found);
  else
    rc = leak__heap_unreferenced(candidates, &PyList_GET_ITEM(candidates, 0), (size_t)PyList_GET_SIZE(candidates),
                                 &objects, &found);
  if (rc < 0) return leak__py_raise(rc, "finding unreferenced objects");
  return list_of_new_references(objects, found);
}

static PyMethodDef heap_methods[] = {
    {"census_take", py_census_take, METH_VARARGS,
     "census_take(gc_collect, tracked_only, keep_addresses, exclude, exclude_alone) -> census handle"},
    {"census_rows", py_census_rows, METH_VARARGS, "census_rows(census, name_kind) -> [(type_name, count, size)]"},
    {"census_totals", py_census_totals, METH_O, "census_totals(census) -> (objects, bytes, census bytes)"},
    {"census_diff", py_census_diff, METH_VARARGS,
     "census_diff(now, old) -> [(type_name, count, count_diff, size, size_diff)]"},
    {"census_write_diff", py_census_write_diff, METH_VARARGS, "census_write_diff(now, old, fd, limit)"},
    {"census_new_objects", py_census_new_objects, METH_VARARGS,
     "census_new_objects(now, old, name_kind, type_name, limit) -> [objects]"},
    {"census_ids", py_census_ids, METH_VARARGS, "census_ids(census, name_kind) -> {type_name: set of ids}"},
    {"heap_objects_at", py_heap_objects_at, METH_VARARGS, "heap_objects_at(addresses, tracked_only) -> [objects]"},
    {"heap_unreferenced", py_heap_unreferenced, METH_O, "heap_unreferenced(candidates) -> [objects]"},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_heap_area = {heap_methods, NULL};
