/* The refs area of _libleak: why an object is alive (libleak/refs/).  The index is built, searched
 * and labelled without running Python code, the objects on the paths are then held, and only after
 * that are Python results made (which may run the gc).  libleak/refs.py wraps these functions. */
#include "glue.h"
#include "refs/index.h"
#include "refs/labels.h"
#include "refs/retained.h"
#include "refs/retention.h"

#include <frameobject.h> /* PyFrame_Check, before 3.9 */

#include <string.h>
#include <unistd.h>

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
static PyObject *path_tuple(const leak__ref_index *index, const leak__retention_path *path, leak__path_label *labels) {
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
  if (path->kind == LEAK__ROOT_THREAD) {
    Py_DECREF(frame);
    frame = Py_BuildValue("(Oiks)", Py_None, 0, path->thread_id, path->owned_as ? path->owned_as : "?");
  } else if (path->frame != NULL) {
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
  size_t nlabels = leak__retention_nodes(paths, count);
  leak__path_label *labels = leak__malloc((nlabels ? nlabels : 1) * sizeof(leak__path_label));
  if (labels == NULL) {
    leak__retention_free(paths, count);
    leak__ref_index_free(index);
    return PyErr_NoMemory();
  }
  leak__retention_label(index, paths, count, labels);
  hold_paths(index, paths, count);
  PyObject *result = PyList_New((Py_ssize_t)count);
  size_t at = 0;
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

/* Progress of a long dominator computation on stderr (only when asked: the caller checks that it
 * is a terminal), one line rewritten in place. */
static void show_progress(leak__dominators_phase phase, uint64_t done, uint64_t total, void *data) {
  char line[96];
  int n = snprintf(line, sizeof(line), "\rlibleak: retained sizes: %s %3d%%", leak__dominators_phase_name(phase),
                   total ? (int)(100 * done / total) : 100);
  if (n > 0) (void)!write(2, line, (size_t)n);
}

static void end_progress(int shown) {
  if (shown) (void)!write(2, "\r\033[K", 4);
}

/* Builds an index and its retained sizes; *index and *retained are freed by the caller. */
static int index_with_retained(int progress, leak__ref_index **index, leak__retained **retained) {
  int rc = leak__ref_index_build(index);
  if (rc < 0) return rc;
  leak__dominators_options options = LEAK_DOMINATORS_OPTIONS_INIT;
  if (progress) options.progress = show_progress;
  rc = leak__retained_compute(*index, &options, retained);
  end_progress(progress);
  if (rc < 0) {
    leak__ref_index_free(*index);
    *index = NULL;
  }
  return rc;
}

/* refs_retained_size(obj, progress) -> (shallow, retained): obj's size and what it keeps alive. */
static PyObject *py_refs_retained_size(PyObject *module, PyObject *args) {
  PyObject *obj;
  int progress;
  if (!PyArg_ParseTuple(args, "Op:refs_retained_size", &obj, &progress)) return NULL;
  leak__ref_index *index;
  leak__retained *retained;
  int rc = index_with_retained(progress, &index, &retained);
  if (rc < 0) return leak__py_raise(rc, "computing retained sizes");
  int64_t node = leak__ref_index_find(index, obj);
  unsigned long long shallow = 0, kept = 0;
  if (node >= 0) {
    shallow = leak__ref_index_size(index, (uint32_t)node);
    kept = retained->retained[node];
  }
  leak__retained_free(retained);
  leak__ref_index_free(index);
  return Py_BuildValue("(KK)", shallow, kept);
}

/* refs_top_retainers(n, progress, skip_frame, skip_prefix) -> [(object, shallow, retained, path)],
 * the data structures that keep the most memory alive, largest first (modules, classes and their
 * dicts left out), each with its first retention path (as refs_why_alive gives them, or None). */
static PyObject *py_refs_top_retainers(PyObject *module, PyObject *args) {
  Py_ssize_t limit;
  int progress;
  PyObject *skip_frame;
  const char *skip_prefix;
  if (!PyArg_ParseTuple(args, "npOz:refs_top_retainers", &limit, &progress, &skip_frame, &skip_prefix)) return NULL;
  if (limit < 0) return leak__py_raise(LEAK_EINVAL, "n must be at least 0");
  if (skip_frame != Py_None && !PyFrame_Check(skip_frame)) {
    PyErr_SetString(PyExc_TypeError, "skip_frame must be a frame or None");
    return NULL;
  }
  leak__ref_index *index;
  leak__retained *retained;
  int rc = index_with_retained(progress, &index, &retained);
  if (rc < 0) return leak__py_raise(rc, "computing retained sizes");
  size_t wanted = (size_t)limit * 8 + 64, found;
  uint32_t *top = leak__malloc(wanted * sizeof(uint32_t));
  uint32_t *kept = leak__malloc((limit ? (size_t)limit : 1) * sizeof(uint32_t));
  leak__retention_path **paths = leak__calloc(limit ? (size_t)limit : 1, sizeof(*paths));
  size_t *npaths = leak__calloc(limit ? (size_t)limit : 1, sizeof(size_t));
  size_t nkept = 0;
  if (top == NULL || kept == NULL || paths == NULL || npaths == NULL) rc = LEAK_ENOMEM;
  if (rc == 0) {
    found = leak__dominators_top(retained->nodes + 1, retained->nodes, retained->idom, retained->retained, top, wanted);
    leak__retention_options options = {1, skip_frame == Py_None ? NULL : leak__frames_frame_id(skip_frame),
                                       skip_prefix, 0};
    for (size_t i = 0; i < found && nkept < (size_t)limit && rc == 0; i++) {
      if (leak__refs_structural(index, top[i])) continue;
      rc = leak__retention_find(index, top[i], &options, &paths[nkept], &npaths[nkept]);
      kept[nkept++] = top[i];
    }
  }
  PyObject *result = NULL;
  if (rc == 0) {
    /* labels and references first, while the index is current; Python objects after */
    size_t nlabels = 0;
    for (size_t k = 0; k < nkept; k++) nlabels += leak__retention_nodes(paths[k], npaths[k]);
    leak__path_label *labels = leak__malloc((nlabels ? nlabels : 1) * sizeof(leak__path_label));
    if (labels == NULL) rc = LEAK_ENOMEM;
    size_t at = 0;
    for (size_t k = 0; rc == 0 && k < nkept; k++) {
      leak__retention_label(index, paths[k], npaths[k], labels + at);
      at += leak__retention_nodes(paths[k], npaths[k]);
      hold_paths(index, paths[k], npaths[k]);
      Py_INCREF(leak__ref_index_object(index, kept[k]));
    }
    if (rc == 0) {
      result = PyList_New((Py_ssize_t)nkept);
      at = 0;
      for (size_t k = 0; k < nkept; k++) {
        PyObject *obj = leak__ref_index_object(index, kept[k]);
        PyObject *path = npaths[k] ? path_tuple(index, &paths[k][0], labels + at) : (Py_INCREF(Py_None), Py_None);
        for (size_t p = 0; p < npaths[k]; p++) at += paths[k][p].length;
        PyObject *row = path ? Py_BuildValue("(OKKO)", obj, (unsigned long long)leak__ref_index_size(index, kept[k]),
                                             (unsigned long long)retained->retained[kept[k]], path)
                             : NULL;
        Py_DECREF(obj);
        Py_XDECREF(path);
        if (row == NULL || result == NULL) {
          Py_XDECREF(row);
          Py_CLEAR(result);
        } else {
          PyList_SET_ITEM(result, (Py_ssize_t)k, row);
        }
      }
    }
    leak__free(labels);
  }
  for (size_t k = 0; k < nkept; k++) leak__retention_free(paths[k], npaths[k]);
  leak__free(paths);
  leak__free(npaths);
  leak__free(top);
  leak__free(kept);
  leak__retained_free(retained);
  leak__ref_index_free(index);
  if (rc < 0) return leak__py_raise(rc, "finding the top retainers");
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
    {"refs_retained_size", py_refs_retained_size, METH_VARARGS, "refs_retained_size(obj, progress) -> (shallow, retained)"},
    {"refs_top_retainers", py_refs_top_retainers, METH_VARARGS,
     "refs_top_retainers(n, progress, skip_frame, skip_prefix) -> [(object, shallow, retained, path)]"},
    {"refs_index_stats", py_refs_index_stats, METH_NOARGS, "refs_index_stats() -> (nodes, edges, bytes)"},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_refs_area = {refs_methods, NULL};
