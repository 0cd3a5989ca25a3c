/* Class tracking, the internal half (the public one is include/libleak/classtrack.h).
 *
 * The Python glue needs two things the public API leaves out: the creation stack of each instance
 * (a stack id of core/stacks.h, which is not public) and the one function that decides what "the
 * size of an instance" is. */
#ifndef LIBLEAK_HEAP_CLASSTRACK_H
#define LIBLEAK_HEAP_CLASSTRACK_H

#include <Python.h>
#include <stdint.h>

#include "core/stacks.h"

/* At most this many frames are kept of a creation stack that libleak reads itself (when the tracer
 * did not trace the instance's block, whose stack is then used as the tracer kept it). */
#define LEAK_CLASSTRACK_NFRAME 32

/* One live instance with its creation stack (LEAK_STACK_EMPTY when the class is tracked without
 * trace).  The stack id stays valid while any class is tracked with trace: the tracker pins the stack
 * table meanwhile. */
typedef struct leak__classtrack_record {
  PyObject *object;
  uint64_t birth_ns;
  uint64_t size;
  leak__stack_id stack;
} leak__classtrack_record;

/* Copies the live instances of tracked class `type` into a new array from leak__malloc (the caller
 * frees it with leak__free; NULL when there are none) and takes a strong reference to each object
 * (the caller releases them), so that the caller may run Python code while it reads them.  Instances
 * whose deallocation has begun are left out.  LEAK_ENOENT when not tracked, LEAK_ENOMEM. */
int leak__classtrack_records(PyTypeObject *type, leak__classtrack_record **out, size_t *count);

/* The size a snapshot records for instance `obj`: its deep size as pympler's asizeof gives it with
 * its defaults (libleak/heap/deepsize.c), which a snapshot computes without creating instance
 * dicts.  May call a __sizeof__ written in Python; the GIL must be held.  Returns 0 and sets *size,
 * or a negative LEAK_E* code (LEAK_EPYTHON with the exception set). */
int leak__classtrack_instance_size(PyObject *obj, uint64_t *size);

/* Stores a size measured by the caller for the instance at `object`, if it is still a live instance of
 * tracked class `type` (the class's total follows). */
void leak__classtrack_set_size(PyTypeObject *type, PyObject *object, uint64_t size);

/* The tp_alloc and tp_free that tracked types carry (tests compare slots against them). */
PyObject *leak__classtrack_alloc(PyTypeObject *type, Py_ssize_t nitems);
void leak__classtrack_free(void *ptr);

/* Test hook: the number of instance records held for all classes (0 after detach_all). */
size_t leak__classtrack_record_count(void);

#endif
