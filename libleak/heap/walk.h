/* The heap walker: one pass over the objects of the interpreter.
 *
 * It visits every object the gc tracks (every generation, the permanent one included), and, when
 * asked, the untracked objects they reach through tp_traverse, transitively (str, int, float,
 * bytes, tuples and dicts the gc untracked, static types, ...), each object once.  It is the engine
 * of the census, of the class and deep-size code, and of the reverse reference index.
 *
 * Rules it keeps: no allocation on the Python heap (its own memory comes from leak__malloc), no
 * Python code runs (only tp_traverse, which must not run any), no reference counts touched.  The
 * callbacks must keep the same rules: no Python API that allocates or runs code, no Py_DECREF.  A
 * walk needs the GIL held from its start to its end, and refuses to start while the gc collects.
 * Nothing survives from one walk to the next but what the caller copied, so a finalizer that runs
 * between two walks cannot leave a dangling pointer in the walker. */
#ifndef LIBLEAK_HEAP_WALK_H
#define LIBLEAK_HEAP_WALK_H
#include <Python.h>

#include "core/frames.h"
#include "heap/objset.h"

/* What a walk reports, through callbacks (each may be NULL).  A callback returning nonzero stops
 * the walk, which returns that value. */
typedef struct leak__heap_visitor {
  /* Each object, once; `tracked` says whether the gc tracks it. */
  int (*object)(void *arg, PyObject *obj, int tracked);
  /* Each reference tp_traverse reports, from an object the walk visits to `referent`: once per
   * reference (a list holding x twice reports two), whether or not the referent is visited. */
  int (*edge)(void *arg, PyObject *referrer, PyObject *referent);
  /* Each reference a thread's running frames hold that no object reports (core/frames.h). */
  int (*frame_ref)(void *arg, PyThreadState *tstate, const leak__frame_ref *ref, PyObject *referent);
  void *arg;
} leak__heap_visitor;

enum {
  /* Also visit the untracked objects that visited objects reach (otherwise: tracked ones only). */
  LEAK__WALK_UNTRACKED = 1 << 0,
  /* Leave out the permanent generation (what gc.freeze() moved there), as gc.get_objects() does. */
  LEAK__WALK_NO_PERMANENT = 1 << 1,
  /* In a walk from roots, do not go into classes, modules and functions: what an object reaches
   * through its class's methods' globals is the whole program, not what the object owns. */
  LEAK__WALK_STOP_AT_DEFINITIONS = 1 << 2,
};

/* A walk's state: the visited set and the stack of objects still to traverse.  Zero-initialise it
 * ({0}); leak__heap_walk_free releases what it holds. */
typedef struct leak__heap_walk {
  leak__objset visited; /* untracked objects met so far, and every object marked excluded */
  PyObject **stack;     /* objects reached but not yet traversed */
  size_t depth, capacity;
  int excluded;         /* nonzero once leak__heap_walk_exclude marked something */
  unsigned flags;
  const leak__heap_visitor *visitor;
} leak__heap_walk;

/* Marks every object reachable from `roots` (the roots included, tracked or not), without going
 * into classes, modules and functions (LEAK__WALK_STOP_AT_DEFINITIONS), as excluded: later walks
 * with this state neither report nor traverse them.  Reports nothing.  0 or LEAK_ENOMEM. */
int leak__heap_walk_exclude(leak__heap_walk *walk, PyObject *const *roots, size_t count);

/* Marks `objects` alone as excluded (not what they reach).  0 or LEAK_ENOMEM. */
int leak__heap_walk_exclude_alone(leak__heap_walk *walk, PyObject *const *objects, size_t count);

/* The whole heap: every tracked object of the calling thread's interpreter, then (with
 * LEAK__WALK_UNTRACKED) what they reach and what every thread's running frames reach; the frames'
 * references are reported to visitor->frame_ref when it is set.  Returns 0, a callback's nonzero value,
 * LEAK_ENOMEM, LEAK_EBUSY while the gc collects, or LEAK_ENOPYTHON without a thread state. */
int leak__heap_walk_all(leak__heap_walk *walk, const leak__heap_visitor *visitor, unsigned flags);

/* Only what `roots` reach, tracked or not, each object once (the roots included, unless excluded
 * or already visited by this state); `flags` may hold LEAK__WALK_STOP_AT_DEFINITIONS.  Returns as
 * leak__heap_walk_all. */
int leak__heap_walk_from(leak__heap_walk *walk, const leak__heap_visitor *visitor, PyObject *const *roots,
                         size_t count, unsigned flags);

/* Frees the walk's memory; the state is zeroed and reusable. */
void leak__heap_walk_free(leak__heap_walk *walk);

#endif
