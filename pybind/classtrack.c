/* The class-tracking area of _libleak: attaches to classes, reads their counters and live instances
 * (libleak/heap/classtrack.c does the work).  libleak/classtracker.py builds pympler's ClassTracker
 * on top. */
#include "glue.h"
#include "heap/classtrack.h"

#include <string.h>

/* The type argument, or NULL with TypeError set, saying what was expected. */
static PyTypeObject *class_argument(PyObject *arg, const char *what) {
  if (!PyType_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "%s needs a class, not %.100s", what, Py_TYPE(arg)->tp_name);
    return NULL;
  }
  PyTypeObject *type = (PyTypeObject *)arg;
  if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
    PyErr_Format(PyExc_TypeError,
                 "%s cannot track the built-in or extension type '%.100s': only classes made by a class "
                 "statement or type() can be tracked",
                 what, type->tp_name);
    return NULL;
  }
  return type;
}

/* classtrack_attach(cls, subclasses, trace, keep) -> None */
static PyObject *py_classtrack_attach(PyObject *module, PyObject *args) {
  PyObject *arg;
  leak_classtrack_options options = LEAK_CLASSTRACK_OPTIONS_INIT;
  if (!PyArg_ParseTuple(args, "Oppp:classtrack_attach", &arg, &options.subclasses, &options.trace, &options.keep))
    return NULL;
  PyTypeObject *type = class_argument(arg, "track_class()");
  if (type == NULL) return NULL;
  int rc = leak_classtrack_attach(type, &options);
  if (rc < 0) return leak__py_raise(rc, "track_class()");
  Py_RETURN_NONE;
}

/* classtrack_detach(cls) -> True if it was tracked */
static PyObject *py_classtrack_detach(PyObject *module, PyObject *arg) {
  if (!PyType_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "detach_class() needs a class, not %.100s", Py_TYPE(arg)->tp_name);
    return NULL;
  }
  int rc = leak_classtrack_detach(arg);
  if (rc < 0 && rc != LEAK_ENOENT) return leak__py_raise(rc, "detach_class()");
  return PyBool_FromLong(rc == 0);
}

/* classtrack_detach_all() -> None */
static PyObject *py_classtrack_detach_all(PyObject *module, PyObject *unused) {
  leak_classtrack_detach_all();
  Py_RETURN_NONE;
}

/* classtrack_is_tracked(obj) -> bool */
static PyObject *py_classtrack_is_tracked(PyObject *module, PyObject *arg) {
  return PyBool_FromLong(PyType_Check(arg) && leak_classtrack_is_tracked(arg));
}

/* classtrack_counters(cls) -> (created, alive, destroyed, peak_alive, avg_lifetime, max_lifetime,
 * total_size, avg_size) */
static PyObject *py_classtrack_counters(PyObject *module, PyObject *arg) {
  leak_classtrack_counters c;
  int rc = PyType_Check(arg) ? leak_classtrack_get_counters(arg, &c) : LEAK_ENOENT;
  if (rc == LEAK_ENOENT) {
    PyErr_SetString(PyExc_ValueError, "the class is not tracked");
    return NULL;
  }
  if (rc < 0) return leak__py_raise(rc, "class counters");
  return Py_BuildValue("(KKKKddKd)", (unsigned long long)c.created, (unsigned long long)c.alive,
                       (unsigned long long)c.destroyed, (unsigned long long)c.peak_alive, c.avg_lifetime,
                       c.max_lifetime, (unsigned long long)c.total_size, c.avg_size);
}

/* The live instances of a tracked class (ValueError when not tracked). */
static int read_records(PyObject *arg, leak__classtrack_record **records, size_t *count) {
  int rc = PyType_Check(arg) ? leak__classtrack_records((PyTypeObject *)arg, records, count) : LEAK_ENOENT;
  if (rc == LEAK_ENOENT) {
    PyErr_SetString(PyExc_ValueError, "the class is not tracked");
    return -1;
  }
  if (rc < 0) {
    leak__py_raise(rc, "class instances");
    return -1;
  }
  return 0;
}

static void release_records(leak__classtrack_record *records, size_t count) {
  for (size_t i = 0; i < count; i++) Py_DECREF(records[i].object);
  leak__free(records);
}

/* classtrack_snapshot(cls) -> (ids, births_ns, sizes, total): measures every live instance now and
 * hands back three arrays of native uint64 as bytes (compact: a snapshot of 200k instances is 4.8 MB)
 * and the sum of the sizes. */
static PyObject *py_classtrack_snapshot(PyObject *module, PyObject *arg) {
  leak__classtrack_record *records;
  size_t count;
  if (read_records(arg, &records, &count) < 0) return NULL;
  PyObject *ids = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * 8));
  PyObject *births = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * 8));
  PyObject *sizes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * 8));
  PyObject *result = NULL;
  if (ids == NULL || births == NULL || sizes == NULL) goto done;
  uint64_t *id_out = (uint64_t *)PyBytes_AS_STRING(ids);
  uint64_t *birth_out = (uint64_t *)PyBytes_AS_STRING(births);
  uint64_t *size_out = (uint64_t *)PyBytes_AS_STRING(sizes);
  unsigned long long total = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t size;
    if (leak__classtrack_instance_size(records[i].object, &size) < 0) goto done;
    leak__classtrack_set_size((PyTypeObject *)arg, records[i].object, size);
    id_out[i] = (uint64_t)(uintptr_t)records[i].object;
    birth_out[i] = records[i].birth_ns;
    size_out[i] = size;
    total += size;
  }
  result = Py_BuildValue("(OOOK)", ids, births, sizes, total);
done:
  Py_XDECREF(ids);
  Py_XDECREF(births);
  Py_XDECREF(sizes);
  release_records(records, count);
  return result;
}

/* The frames of an interned stack as a tuple of (filename, lineno, function), innermost first; ()
 * for none. */
static PyObject *stack_frames(leak__stack_id stack) {
  const leak__frame *frames;
  int nframe, truncated;
  if (stack == LEAK_STACK_EMPTY || leak__stacks_lookup(stack, &frames, &nframe, &truncated) < 0) return PyTuple_New(0);
  PyObject *tuple = PyTuple_New(nframe);
  if (tuple == NULL) return NULL;
  for (int i = 0; i < nframe; i++) {
    PyObject *frame = Py_BuildValue("(OiO)", frames[i].code->co_filename,
                                    leak__frame_lineno(frames[i].code, frames[i].lasti), frames[i].code->co_name);
    if (frame == NULL) {
      Py_DECREF(tuple);
      return NULL;
    }
    PyTuple_SET_ITEM(tuple, i, frame);
  }
  return tuple;
}

/* classtrack_instances(cls) -> [(obj, birth_ns, size, frames), ...]: the live instances with the
 * sizes last measured and their creation stacks (() when the class is tracked without trace). */
static PyObject *py_classtrack_instances(PyObject *module, PyObject *arg) {
  leak__classtrack_record *records;
  size_t count;
  if (read_records(arg, &records, &count) < 0) return NULL;
  PyObject *list = PyList_New((Py_ssize_t)count);
  PyObject *by_stack = PyDict_New(); /* stack id -> frames, so each stack is resolved once */
  if (list == NULL || by_stack == NULL) goto fail;
  for (size_t i = 0; i < count; i++) {
    PyObject *key = PyLong_FromUnsignedLong(records[i].stack);
    if (key == NULL) goto fail;
    PyObject *frames = PyDict_GetItemWithError(by_stack, key);
    if (frames != NULL) {
      Py_INCREF(frames);
    } else if (PyErr_Occurred() || (frames = stack_frames(records[i].stack)) == NULL ||
               PyDict_SetItem(by_stack, key, frames) < 0) {
      Py_XDECREF(frames);
      Py_DECREF(key);
      goto fail;
    }
    Py_DECREF(key);
    PyObject *row = Py_BuildValue("(OKKN)", records[i].object, (unsigned long long)records[i].birth_ns,
                                  (unsigned long long)records[i].size, frames);
    if (row == NULL) goto fail;
    PyList_SET_ITEM(list, (Py_ssize_t)i, row);
  }
  Py_DECREF(by_stack);
  release_records(records, count);
  return list;
fail:
  Py_XDECREF(list);
  Py_XDECREF(by_stack);
  release_records(records, count);
  return NULL;
}

/* classtrack_instance_size(obj) -> the size the tracker reports for `obj` (one definition for all). */
static PyObject *py_classtrack_instance_size(PyObject *module, PyObject *obj) {
  uint64_t size;
  if (leak__classtrack_instance_size(obj, &size) < 0) return NULL;
  return PyLong_FromUnsignedLongLong(size);
}

/* classtrack_record_count() -> records held for every class (tests: nothing stale after detach). */
static PyObject *py_classtrack_record_count(PyObject *module, PyObject *unused) {
  return PyLong_FromSize_t(leak__classtrack_record_count());
}

/* classtrack_slots(cls) -> (alloc_is_libleak, free_is_libleak, alloc address, free address). */
static PyObject *py_classtrack_slots(PyObject *module, PyObject *arg) {
  if (!PyType_Check(arg)) {
    PyErr_SetString(PyExc_TypeError, "classtrack_slots() needs a class");
    return NULL;
  }
  PyTypeObject *type = (PyTypeObject *)arg;
  return Py_BuildValue("(NNKK)", PyBool_FromLong(type->tp_alloc == leak__classtrack_alloc),
                       PyBool_FromLong(type->tp_free == leak__classtrack_free),
                       (unsigned long long)(uintptr_t)type->tp_alloc, (unsigned long long)(uintptr_t)type->tp_free);
}

static PyMethodDef classtrack_methods[] = {
    {"classtrack_attach", py_classtrack_attach, METH_VARARGS, "classtrack_attach(cls, subclasses, trace, keep)"},
    {"classtrack_detach", py_classtrack_detach, METH_O, "classtrack_detach(cls) -> was tracked"},
    {"classtrack_detach_all", py_classtrack_detach_all, METH_NOARGS, "classtrack_detach_all()"},
    {"classtrack_is_tracked", py_classtrack_is_tracked, METH_O, "classtrack_is_tracked(cls) -> bool"},
    {"classtrack_counters", py_classtrack_counters, METH_O, "classtrack_counters(cls) -> tuple of 8 counters"},
    {"classtrack_snapshot", py_classtrack_snapshot, METH_O, "classtrack_snapshot(cls) -> (ids, births, sizes, total)"},
    {"classtrack_instances", py_classtrack_instances, METH_O, "classtrack_instances(cls) -> [(obj, birth, size, frames)]"},
    {"classtrack_instance_size", py_classtrack_instance_size, METH_O, "classtrack_instance_size(obj) -> bytes"},
    {"classtrack_record_count", py_classtrack_record_count, METH_NOARGS, "classtrack_record_count() -> int"},
    {"classtrack_slots", py_classtrack_slots, METH_O, "classtrack_slots(cls) -> (ours, ours, alloc, free)"},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_classtrack_area = {classtrack_methods, NULL};
