/* libleak: class tracking (pympler's ClassTracker, done at the C level).
 *
 * Tracking a class wraps two slots of its type object: tp_alloc, which every way of making an
 * instance goes through (calling the class, copy.copy, pickle, cls.__new__ without __init__,
 * __slots__ classes with or without __weakref__), and tp_free, which the instance's deallocator
 * calls last with the exact type.  Each instance is then recorded from its allocation to its
 * release: address, creation time, size, and on request the stack that made it.  Detaching puts
 * back exactly the slots that were there.  The bookkeeping lives outside the Python heap, so
 * tracking never shows up in what it measures.
 *
 * Types are passed as `void *` (a PyTypeObject *) so that this header does not need Python.h.  Every
 * function needs the GIL: the wrapped slots run under it, and the tables are guarded by it. */
#ifndef LIBLEAK_CLASSTRACK_H
#define LIBLEAK_CLASSTRACK_H

#include <stddef.h>
#include <stdint.h>
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct leak_classtrack_options {
  int subclasses; /* also track the class's subclasses that exist now (their instances count here) */
  int trace;      /* remember the stack that created each instance */
  int keep;       /* hold a reference to each new instance, so none is freed until detached */
} leak_classtrack_options;

#define LEAK_CLASSTRACK_OPTIONS_INIT {0, 0, 0}

/* What happened to one tracked class's instances since it was attached.  Lifetimes are in seconds,
 * over the instances already released; sizes are the last measured sizes of the live instances (set
 * at creation to the allocated size, updated by leak_classtrack_measure). */
typedef struct leak_classtrack_counters {
  uint64_t created;
  uint64_t alive;
  uint64_t destroyed;
  uint64_t peak_alive;
  double avg_lifetime;
  double max_lifetime;
  uint64_t total_size;
  double avg_size;
} leak_classtrack_counters;

/* One live instance, as leak_classtrack_foreach hands it out (borrowed for the call only). */
typedef struct leak_classtrack_instance {
  void *object;      /* the PyObject * */
  uint64_t birth_ns; /* CLOCK_MONOTONIC nanoseconds (Python's time.monotonic_ns()) */
  uint64_t size;     /* last measured size in bytes */
} leak_classtrack_instance;

/* Starts tracking `type` (a class: a heap type, i.e. one made by a class statement or type()).
 * Instances that exist already are not counted, as in pympler.  Tracking a tracked class again
 * updates its options (subclasses found now are added).  LEAK_EINVAL when `type` is NULL, not a type
 * object, or a static (built-in or extension) type; LEAK_ENOMEM when memory ran out, in which case
 * nothing was changed. */
LEAK_EXTERN int leak_classtrack_attach(void *type, const leak_classtrack_options *options);

/* Stops tracking `type`: its slots (and those of the subclasses tracked with it) are restored to
 * exactly what they were, and its records are forgotten; instances still alive are freed later by
 * the restored slots.  References held for `keep` are released last (that may free instances and run
 * their finalizers).  LEAK_ENOENT when `type` is not tracked. */
LEAK_EXTERN int leak_classtrack_detach(void *type);

/* Detaches every tracked class.  Always succeeds. */
LEAK_EXTERN int leak_classtrack_detach_all(void);

/* 1 when `type` is a tracked class (not one of its subclasses), 0 otherwise. */
LEAK_EXTERN int leak_classtrack_is_tracked(void *type);

/* Copies the counters of tracked class `type` into *out.  LEAK_ENOENT when it is not tracked. */
LEAK_EXTERN int leak_classtrack_get_counters(void *type, leak_classtrack_counters *out);

/* Measures every live instance of `type` now (sys.getsizeof of the instance plus that of its
 * __dict__), stores the sizes, and sets *total (may be NULL) to their sum.  Calls Python (__sizeof__
 * may be user code); instances created or freed meanwhile are handled.  LEAK_ENOENT when `type` is
 * not tracked, LEAK_ENOMEM, or LEAK_EPYTHON when a __sizeof__ raised (the exception is left set). */
LEAK_EXTERN int leak_classtrack_measure(void *type, uint64_t *total);

/* Calls visit(instance, data) for each live instance of `type`, in no particular order; a nonzero
 * return stops the walk and is returned.  `visit` must not create or free instances of
 * tracked classes (so it must not run arbitrary Python code).  LEAK_ENOENT when not tracked. */
LEAK_EXTERN int leak_classtrack_foreach(void *type, int (*visit)(const leak_classtrack_instance *instance, void *data),
                                        void *data);

#ifdef __cplusplus
}
#endif
#endif
