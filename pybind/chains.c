/* The chains area of _libleak: objgraph's reference chains and the neighbours its graphs draw
 * (libleak/refs/chains.h).  libleak/objgraph.py wraps these functions. */
#include "glue.h"
#include "refs/chains.h"
#include "refs/labels.h"

#define SOURCE_CAPSULE "libleak.chain_source"

/* Fills `set` with the addresses of the ints in `ids` (any iterable of ints, as objgraph's
 * extra_ignore).  0, or -1 with an exception set. */
static int ignore_set(PyObject *ids, leak__objset *set) {
  PyObject *iterator = PyObject_GetIter(ids);
  if (iterator == NULL) return -1;
  PyObject *item;
  while ((item = PyIter_Next(iterator)) != NULL) {
    void *address = PyLong_Check(item) ? PyLong_AsVoidPtr(item) : NULL;
    if (!PyLong_Check(item))
      PyErr_Format(PyExc_TypeError, "extra_ignore must hold object ids (ints), not %.100s", Py_TYPE(item)->tp_name);
    Py_DECREF(item);
    if (PyErr_Occurred()) break;
    if (address != NULL && leak__objset_add(set, address) < 0) {
      PyErr_NoMemory();
      break;
    }
  }
  Py_DECREF(iterator);
  return PyErr_Occurred() ? -1 : 0;
}

/* The predicate of chains_find: a Python callable, its answer's truth (as objgraph's `if`). */
static int call_predicate(void *arg, PyObject *obj) {
  PyObject *answer = PyObject_CallFunctionObjArgs((PyObject *)arg, obj, NULL);
  if (answer == NULL) return LEAK_EPYTHON;
  int truth = PyObject_IsTrue(answer);
  Py_DECREF(answer);
  return truth < 0 ? LEAK_EPYTHON : truth;
}

/* chains_find(obj, predicate, max_depth, ignore_ids, forward) -> (chain or None, index_builds):
 * the chain goes from the match back to obj (objgraph's _find_chain order). */
static PyObject *py_chains_find(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  /* METH_FASTCALL: no argument tuple, which would be one more referrer of obj. */
  if (nargs != 5) {
    PyErr_SetString(PyExc_TypeError, "chains_find() takes 5 arguments");
    return NULL;
  }
  PyObject *obj = args[0], *predicate = args[1];
  if (!PyCallable_Check(predicate)) {
    PyErr_Format(PyExc_TypeError, "predicate must be callable, not %.100s", Py_TYPE(predicate)->tp_name);
    return NULL;
  }
  Py_ssize_t max_depth = PyLong_AsSsize_t(args[2]);
  if (max_depth == -1 && PyErr_Occurred()) return NULL;
  if (max_depth < 0) return leak__py_raise(LEAK_EINVAL, "max_depth must be >= 0");
  int forward = PyObject_IsTrue(args[4]);
  if (forward < 0) return NULL;
  leak__objset ignore = {0};
  if (ignore_set(args[3], &ignore) < 0) {
    leak__objset_free(&ignore);
    return NULL;
  }
  leak__chain_source source = {0};
  PyObject **chain;
  size_t length;
  int rc = leak__chain_find(&source, obj, forward ? LEAK__CHAIN_FORWARD : LEAK__CHAIN_BACKWARD, (size_t)max_depth,
                            &ignore, call_predicate, predicate, &chain, &length);
  size_t builds = source.builds;
  leak__chain_source_free(&source);
  leak__objset_free(&ignore);
  if (rc < 0) return leak__py_raise(rc, "searching for a chain of references");
  PyObject *list = Py_None;
  Py_INCREF(list);
  if (chain != NULL) {
    Py_DECREF(list);
    list = PyList_New((Py_ssize_t)length);
    for (size_t i = 0; i < length; i++) {
      if (list != NULL) PyList_SET_ITEM(list, (Py_ssize_t)i, chain[i]); /* steals */
      else Py_DECREF(chain[i]);
    }
    leak__free(chain);
    if (list == NULL) return NULL;
  }
  PyObject *result = Py_BuildValue("(Nn)", list, (Py_ssize_t)builds);
  return result;
}

/* Frees the chain source a capsule holds. */
static void free_source_capsule(PyObject *capsule) {
  leak__chain_source *source = PyCapsule_GetPointer(capsule, SOURCE_CAPSULE);
  if (source == NULL) {
    PyErr_Clear();
    return;
  }
  leak__chain_source_free(source);
  leak__free(source);
}

/* chains_source() -> capsule: a neighbour source that keeps its reverse index between calls to
 * chains_neighbours (built again when the heap changed). */
static PyObject *py_chains_source(PyObject *module, PyObject *unused) {
  leak__chain_source *source = leak__calloc(1, sizeof(*source));
  if (source == NULL) return PyErr_NoMemory();
  PyObject *capsule = PyCapsule_New(source, SOURCE_CAPSULE, free_source_capsule);
  if (capsule == NULL) leak__free(source);
  else source->owner = capsule;
  return capsule;
}

/* Neighbours collected with a reference each, in a raw array (growing it runs no Python code). */
typedef struct held_objects {
  PyObject **objects;
  size_t count, capacity;
} held_objects;

/* leak__chain_each_fn that holds a neighbour in a held_objects array. */
static int hold_neighbour(void *arg, PyObject *neighbour) {
  held_objects *held = arg;
  if (held->count == held->capacity) {
    size_t capacity = held->capacity ? held->capacity * 2 : 64;
    PyObject **objects = leak__realloc(held->objects, capacity * sizeof(*objects));
    if (objects == NULL) return LEAK_ENOMEM;
    held->objects = objects;
    held->capacity = capacity;
  }
  Py_INCREF(neighbour);
  held->objects[held->count++] = neighbour;
  return 0;
}

/* chains_neighbours(source, objs, forward, ignore_ids) -> [[neighbour, ...], ...]: one list per
 * object of objs, once per reference, in the index's (backward) or tp_traverse's (forward) order.
 * Every listing is done, and each neighbour held, before the first Python object is made: making
 * one may start the gc, which would make the index stale halfway. */
static PyObject *py_chains_neighbours(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 4) {
    PyErr_SetString(PyExc_TypeError, "chains_neighbours() takes 4 arguments");
    return NULL;
  }
  leak__chain_source *source = PyCapsule_GetPointer(args[0], SOURCE_CAPSULE);
  if (source == NULL) return NULL;
  int forward = PyObject_IsTrue(args[2]);
  if (forward < 0) return NULL;
  PyObject *objs = PySequence_Fast(args[1], "objs must be a sequence");
  if (objs == NULL) return NULL;
  leak__objset ignore = {0};
  PyObject *result = NULL;
  Py_ssize_t count = PySequence_Fast_GET_SIZE(objs);
  held_objects held = {0};
  size_t *ends = leak__calloc((size_t)count + 1, sizeof(*ends));
  if (ends == NULL) {
    PyErr_NoMemory();
    goto done;
  }
  if (ignore_set(args[3], &ignore) < 0) goto done;
  leak__chain_direction direction = forward ? LEAK__CHAIN_FORWARD : LEAK__CHAIN_BACKWARD;
  for (Py_ssize_t i = 0; i < count; i++) {
    int rc = leak__chain_neighbours(source, PySequence_Fast_GET_ITEM(objs, i), direction, &ignore, hold_neighbour, &held);
    if (rc < 0) {
      leak__py_raise(rc, "listing the neighbours of an object");
      goto done;
    }
    ends[i] = held.count;
  }
  result = PyList_New(count);
  size_t at = 0;
  for (Py_ssize_t i = 0; result != NULL && i < count; i++) {
    PyObject *list = PyList_New((Py_ssize_t)(ends[i] - at));
    if (list == NULL) {
      Py_CLEAR(result);
      break;
    }
    for (Py_ssize_t k = 0; at < ends[i]; at++, k++) {
      PyList_SET_ITEM(list, k, held.objects[at]); /* steals the reference held */
      held.objects[at] = NULL;
    }
    PyList_SET_ITEM(result, i, list);
  }
done:
  for (size_t k = 0; k < held.count; k++) Py_XDECREF(held.objects[k]);
  leak__free(held.objects);
  leak__free(ends);
  leak__objset_free(&ignore);
  Py_DECREF(objs);
  return result;
}

/* chains_edge_label(referrer, referent) -> str: how referrer holds referent (refs/labels.h), or ""
 * when no rule knows it. */
static PyObject *py_chains_edge_label(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "chains_edge_label() takes 2 arguments");
    return NULL;
  }
  char label[160];
  size_t length = leak__ref_label(args[0], args[1], label, sizeof(label));
  return PyUnicode_DecodeUTF8(label, (Py_ssize_t)length, "replace");
}

static PyMethodDef chains_methods[] = {
    {"chains_find", (PyCFunction)(void (*)(void))py_chains_find, METH_FASTCALL,
     "chains_find(obj, predicate, max_depth, ignore_ids, forward) -> (chain or None, index_builds)"},
    {"chains_source", py_chains_source, METH_NOARGS,
     "chains_source() -> a neighbour source (keeps its reverse index between calls)"},
    {"chains_neighbours", (PyCFunction)(void (*)(void))py_chains_neighbours, METH_FASTCALL,
     "chains_neighbours(source, objs, forward, ignore_ids) -> [[neighbour, ...], ...]"},
    {"chains_edge_label", (PyCFunction)(void (*)(void))py_chains_edge_label, METH_FASTCALL,
     "chains_edge_label(referrer, referent) -> str"},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_chains_area = {chains_methods, NULL};
