/* The refs area of _libleak: why an object is alive (libleak/refs/).  The index is built, searched
 * and labelled without running Python code, the objects on the paths are then held, and only after
 * that are Python results made (which may run the gc).  libleak/refs.py wraps these functions. */
#include "glue.h"
#include "refs/index.h"
#include "refs/labels.h"
#include "refs/retention.h"

#include <frameobject.h> /* PyFrame_Check, before 3.9 */

#include <string.h>

#define LABEL_CAPACITY 120

/* Holds every object on the paths (a strong reference each): after this, Python code may run. */
static void hold_paths(const leak__ref_index *index, const leak__retention_path *paths, size_t count) {
  for (size_t p = 0; p < count; p++) {
    for (size_t i = 0; i < paths[p].length; i++) Py_INCREF(leak__ref_index_object(index, paths[p].nodes[i]));
    Py_XINCREF(paths[p].holder);
    if (paths[p].frame != NULL) Py_XINCREF(paths[p].frame->code);
  }
}

/* One path as (kind, holder, frame, unaccounted, [(object, label), ...], sizes) where the list goes
 * from the root's object down to the target (whose label is ""), frame is (code, lineno,
 * thread_id, local name) or None, and sizes lists each object's size.  Steals the references
 * hold_paths took for this path. */
static PyObject *path_tuple(const leak__ref_index *index, const leak__retention_path *path, char (*labels)[LABEL_CAPACITY]) {
  PyObject *edges = PyList_New((Py_ssize_t)path->length);
  PyObject *sizes = PyList_New((Py_ssize_t)path->length);
  for (size_t i = 0; i < path->length; i++) {
    PyObject *obj = leak__ref_index_object(index, path->nodes[i]); /* the reference hold_paths took */
    PyObject *item = edges ? Py_BuildValue("(Os)", obj, labels[i]) : NULL;
    Py_DECREF(obj);
    if (item == NULL) Py_CLEAR(edges);
    else PyList_SET_ITEM(edges, (Py_ssize_t)i, item);
    PyObject *size = sizes ? PyLong_FromUnsignedLongLong(leak__ref_index_size(index, path->nodes[i])) : NULL;
    if (size == NULL) Py_CLEAR(sizes);
    else PyList_SET_ITEM(sizes, (Py_ssize_t)i, size);
  }
  PyObject *frame = Py_None;
  Py_INCREF(frame);
  if (path->frame != NULL) {
    Py_DECREF(frame);
    const leak__frame_root *root = path->frame;
    PyObject *name = leak__frames_local_name(root->code, root->slot);
    int lineno = root->code && PyCode_Check(root->code) ? leak__frame_lineno((PyCodeObject *)root->code, root->lasti) : 0;
    frame = Py_BuildValue("(OikO)", root->code ? root->code : Py_None, lineno, root->thread_id, name ? name : Py_None);
    Py_XDECREF(root->code);
  }
  PyObject *holder = path->holder ? path->holder : Py_None;
  PyObject *result = NULL;
  if (edges != NULL && sizes != NULL && frame != NULL)
    result = Py_BuildValue("(sOOnOO)", leak__root_kind_name(path->kind), holder, frame, path->unaccounted, edges, sizes);
  Py_XDECREF(path->holder);
  Py_XDECREF(edges);
  Py_XDECREF(sizes);
  Py_XDECREF(frame);
  return result;
}

/* refs_why_alive(obj, max_paths, skip_frame, skip_prefix, target_held) -> [path tuples]:
 * skip_frame is the caller's frame object (or None), skip_prefix libleak's directory (or None),
 * target_held the references to obj the call itself holds on the interpreter's value stacks. */
static PyObject *py_refs_why_alive(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  /* METH_FASTCALL: no argument tuple, which would be one more (C-held) referrer of obj. */
  PyObject *obj, *skip_frame;
  Py_ssize_t max_paths, target_held;
  const char *skip_prefix = NULL;
  if (nargs != 5) {
    PyErr_SetString(PyExc_TypeError, "refs_why_alive() takes 5 arguments");
    return NULL;
  }
  obj = args[0];
  skip_frame = args[2];
  max_paths = PyLong_AsSsize_t(args[1]);
  target_held = PyLong_AsSsize_t(args[4]);
  if (PyErr_Occurred()) return NULL;
  if (args[3] != Py_None && (skip_prefix = PyUnicode_AsUTF8(args[3])) == NULL) return NULL;
  if (max_paths < 1) return leak__py_raise(LEAK_EINVAL, "max_paths must be at least 1");
  if (skip_frame != Py_None && !PyFrame_Check(skip_frame)) {
    PyErr_SetString(PyExc_TypeError, "skip_frame must be a frame or None");
    return NULL;
  }
  leak__ref_index *index;
  int rc = leak__ref_index_build(&index);
  if (rc < 0) return leak__py_raise(rc, "building the reference index");
  int64_t target = leak__ref_index_find(index, obj);
  if (target < 0) {
    leak__ref_index_free(index);
    return PyList_New(0); /* nothing the walk reaches refers to it (a static object) */
  }
  leak__retention_options options = {(size_t)max_paths,
                                     skip_frame == Py_None ? NULL : leak__frames_frame_id(skip_frame),
                                     skip_prefix, target_held};
  leak__retention_path *paths;
  size_t count;
  rc = leak__retention_find(index, (uint32_t)target, &options, &paths, &count);
  if (rc < 0) {
    leak__ref_index_free(index);
    return leak__py_raise(rc, "searching the reference index");
  }
  size_t nlabels = 0;
  for (size_t p = 0; p < count; p++) nlabels += paths[p].length;
  char(*labels)[LABEL_CAPACITY] = leak__calloc(nlabels ? nlabels : 1, LABEL_CAPACITY);
  if (labels == NULL) {
    leak__retention_free(paths, count);
    leak__ref_index_free(index);
    return PyErr_NoMemory();
  }
  size_t at = 0;
  for (size_t p = 0; p < count; p++)
    for (size_t i = 0; i < paths[p].length; i++, at++)
      if (i + 1 < paths[p].length)
        leak__ref_label(leak__ref_index_object(index, paths[p].nodes[i]),
                        leak__ref_index_object(index, paths[p].nodes[i + 1]), labels[at], LABEL_CAPACITY);
  hold_paths(index, paths, count);
  PyObject *result = PyList_New((Py_ssize_t)count);
  at = 0;
  for (size_t p = 0; p < count; p++) {
    PyObject *item = path_tuple(index, &paths[p], labels + at);
    at += paths[p].length;
    if (item == NULL || result == NULL) {
      Py_XDECREF(item);
      Py_CLEAR(result);
      continue;
    }
    PyList_SET_ITEM(result, (Py_ssize_t)p, item);
  }
  leak__free(labels);
  leak__retention_free(paths, count);
  leak__ref_index_free(index);
  return result;
}

/* refs_index_stats() -> (nodes, edges, bytes): the size of an index of the heap now (for the tests
 * and the benchmark). */
static PyObject *py_refs_index_stats(PyObject *module, PyObject *unused) {
  leak__ref_index *index;
  int rc = leak__ref_index_build(&index);
  if (rc < 0) return leak__py_raise(rc, "building the reference index");
  PyObject *result = Py_BuildValue("(nnn)", (Py_ssize_t)index->nodes, (Py_ssize_t)index->edges,
                                   (Py_ssize_t)leak__ref_index_memory(index));
  leak__ref_index_free(index);
  return result;
}

static PyMethodDef refs_methods[] = {
    {"refs_why_alive", (PyCFunction)(void (*)(void))py_refs_why_alive, METH_FASTCALL,
     "refs_why_alive(obj, max_paths, skip_frame, skip_prefix, target_held) -> [paths]"},
    {"refs_index_stats", py_refs_index_stats, METH_NOARGS, "refs_index_stats() -> (nodes, edges, bytes)"},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_refs_area = {refs_methods, NULL};
