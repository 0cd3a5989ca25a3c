/* The heap walker.  Read heap/walk.h first.
 *
 * Tracked objects come from the gc's own lists, so they need no visited mark: each is in exactly
 * one list.  Untracked objects have no list; they are found by traversing what the walk visits, and
 * a bitmap of addresses (heap/objset.h) makes sure each is visited once.  Traversal uses an explicit
 * stack, so a million-deep chain of untracked tuples costs memory, not C stack. */
#include "core/internal.h"
#include "heap/walk.h"

#include <string.h>

/* A stack entry tags untracked objects that still need their own visit (bit 0 set) apart from
 * tracked ones found from frames (visited already, traversal only is owed): both are aligned. */
#define UNVISITED_TAG ((uintptr_t)1)

static int push(leak__heap_walk *walk, PyObject *obj, uintptr_t tag) {
  if (walk->depth == walk->capacity) {
    size_t capacity = walk->capacity ? 2 * walk->capacity : 4096;
    PyObject **stack = leak__realloc(walk->stack, capacity * sizeof(*stack));
    if (stack == NULL) return LEAK_ENOMEM;
    walk->stack = stack;
    walk->capacity = capacity;
  }
  walk->stack[walk->depth++] = (PyObject *)((uintptr_t)obj | tag);
  return 0;
}

/* The visitproc handed to tp_traverse: reports the edge, and queues an untracked referent seen for
 * the first time.  Tracked referents are left to the gc lists.  In a walk from roots (no lists),
 * every referent goes through the visited set. */
typedef struct traverse_context {
  leak__heap_walk *walk;
  PyObject *referrer;
  int from_roots;
} traverse_context;

static int visit_referent(PyObject *referent, void *arg) {
  traverse_context *ctx = arg;
  leak__heap_walk *walk = ctx->walk;
  const leak__heap_visitor *v = walk->visitor;
  if (v != NULL && v->edge != NULL) {
    int rc = v->edge(v->arg, ctx->referrer, referent);
    if (rc != 0) return rc;
  }
  if (!ctx->from_roots) {
    if (!(walk->flags & LEAK__WALK_UNTRACKED) || leak__frames_gc_is_tracked(referent)) return 0;
  } else if ((walk->flags & LEAK__WALK_STOP_AT_DEFINITIONS) &&
             (PyType_Check(referent) || PyModule_Check(referent) || PyFunction_Check(referent))) {
    return 0;
  }
  int added = leak__objset_add(&walk->visited, referent);
  if (added <= 0) return added; /* seen before (0) or out of memory */
  return push(walk, referent, UNVISITED_TAG);
}

/* Traverses `obj` if its type can hold references the gc knows of.  Static type objects have
 * tp_traverse but must not be traversed (type_traverse is for heap types only): PyObject_IS_GC
 * asks tp_is_gc, as the gc does. */
static int traverse(leak__heap_walk *walk, PyObject *obj, int from_roots) {
  if (!PyObject_IS_GC(obj)) return 0;
  traverseproc tp_traverse = Py_TYPE(obj)->tp_traverse;
  if (tp_traverse == NULL) return 0;
  traverse_context ctx = {walk, obj, from_roots};
  int rc = tp_traverse(obj, visit_referent, &ctx);
  if (rc == 0 && PyDict_Check(obj) && leak__frames_dict_hides_keys(obj)) {
    /* str keys: reported by the walk, though no cycle can go through them. */
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (rc == 0 && PyDict_Next(obj, &pos, &key, &value)) rc = visit_referent(key, &ctx);
  }
  return rc;
}

/* Visits and traverses everything on the stack, depth first. */
static int drain(leak__heap_walk *walk, int from_roots) {
  const leak__heap_visitor *v = walk->visitor;
  while (walk->depth > 0) {
    uintptr_t entry = (uintptr_t)walk->stack[--walk->depth];
    PyObject *obj = (PyObject *)(entry & ~UNVISITED_TAG);
    if ((entry & UNVISITED_TAG) && v != NULL && v->object != NULL) {
      int rc = v->object(v->arg, obj, leak__frames_gc_is_tracked(obj));
      if (rc != 0) return rc;
    }
    int rc = traverse(walk, obj, from_roots);
    if (rc != 0) return rc;
  }
  return 0;
}

/* One tracked object from the gc lists: report it, traverse it when the visitor wants edges or the
 * walk follows untracked objects, then whatever untracked objects that queued. */
static int visit_tracked(PyObject *obj, void *arg) {
  leak__heap_walk *walk = arg;
  const leak__heap_visitor *v = walk->visitor;
  if (walk->excluded && leak__objset_contains(&walk->visited, obj)) return 0;
  if (v != NULL && v->object != NULL) {
    int rc = v->object(v->arg, obj, 1);
    if (rc != 0) return rc;
  }
  if ((walk->flags & LEAK__WALK_UNTRACKED) || (v != NULL && v->edge != NULL)) {
    int rc = traverse(walk, obj, 0);
    if (rc == 0) rc = drain(walk, 0);
    return rc;
  }
  return 0;
}

/* A running frame's reference: reported, and its referent visited when untracked and new (tracked
 * ones are in the gc lists). */
typedef struct frame_context {
  leak__heap_walk *walk;
} frame_context;

static int visit_frame_ref(void *arg, PyThreadState *tstate, const leak__frame_ref *ref, PyObject *referent) {
  leak__heap_walk *walk = ((frame_context *)arg)->walk;
  const leak__heap_visitor *v = walk->visitor;
  int rc = v != NULL && v->frame_ref != NULL ? v->frame_ref(v->arg, tstate, ref, referent) : 0;
  if (rc != 0) return rc;
  if (!(walk->flags & LEAK__WALK_UNTRACKED) || leak__frames_gc_is_tracked(referent)) return 0;
  int added = leak__objset_add(&walk->visited, referent);
  if (added <= 0) return added;
  rc = push(walk, referent, UNVISITED_TAG);
  return rc != 0 ? rc : drain(walk, 0);
}

/* The thread state of the caller, who must hold the GIL; NULL otherwise.  Also learns, once, what
 * the walk needs to know about dicts (core/frames.h). */
static PyThreadState *current_thread(void) {
  PyThreadState *tstate = leak__frames_this_thread();
  if (tstate == NULL || !PyGILState_Check()) return NULL;
  return leak__frames_prepare_heap_walk() == 0 ? tstate : NULL;
}

int leak__heap_walk_all(leak__heap_walk *walk, const leak__heap_visitor *visitor, unsigned flags) {
  PyThreadState *tstate = current_thread();
  if (tstate == NULL) return LEAK_ENOPYTHON;
  if (leak__frames_gc_collecting(tstate)) return LEAK_EBUSY;
  walk->visitor = visitor;
  walk->flags = flags;
  PyInterpreterState *interp = leak__frames_interpreter(tstate);
  int rc = leak__frames_gc_each(interp, !(flags & LEAK__WALK_NO_PERMANENT), visit_tracked, walk);
  if (rc == 0 && ((flags & LEAK__WALK_UNTRACKED) || (visitor != NULL && visitor->frame_ref != NULL))) {
    frame_context ctx = {walk};
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interp); t != NULL && rc == 0; t = PyThreadState_Next(t))
      rc = leak__frames_visit_refs(t, visit_frame_ref, &ctx);
  }
  walk->depth = 0;
  walk->visitor = NULL;
  return rc;
}

int leak__heap_walk_from(leak__heap_walk *walk, const leak__heap_visitor *visitor, PyObject *const *roots,
                         size_t count, unsigned flags) {
  PyThreadState *tstate = current_thread();
  if (tstate == NULL) return LEAK_ENOPYTHON;
  if (leak__frames_gc_collecting(tstate)) return LEAK_EBUSY;
  walk->visitor = visitor;
  walk->flags = flags;
  int rc = 0;
  for (size_t i = 0; i < count && rc == 0; i++) {
    if (roots[i] == NULL) continue;
    int added = leak__objset_add(&walk->visited, roots[i]);
    if (added < 0) rc = added;
    else if (added > 0 && (rc = push(walk, roots[i], UNVISITED_TAG)) == 0)
      rc = drain(walk, 1);
  }
  walk->depth = 0;
  walk->visitor = NULL;
  return rc;
}

int leak__heap_walk_exclude(leak__heap_walk *walk, PyObject *const *roots, size_t count) {
  int rc = leak__heap_walk_from(walk, NULL, roots, count, LEAK__WALK_STOP_AT_DEFINITIONS);
  if (rc == 0 && walk->visited.members > 0) walk->excluded = 1;
  return rc;
}

int leak__heap_walk_exclude_alone(leak__heap_walk *walk, PyObject *const *objects, size_t count) {
  for (size_t i = 0; i < count; i++) {
    if (objects[i] == NULL) continue;
    if (leak__objset_add(&walk->visited, objects[i]) < 0) return LEAK_ENOMEM;
    walk->excluded = 1;
  }
  return 0;
}

void leak__heap_walk_free(leak__heap_walk *walk) {
  leak__objset_free(&walk->visited);
  leak__free(walk->stack);
  memset(walk, 0, sizeof(*walk));
}
