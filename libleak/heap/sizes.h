/* Object sizes as sys.getsizeof gives them, computed in C during a heap walk.
 *
 * For the builtins whose __sizeof__ C can compute (object's formula, list, dict, set, frozenset,
 * str, int, bytearray, and subclasses that do not override it) the size comes from the object's
 * fields.  Any other __sizeof__ (type, code, frame, deque, NumPy's arrays, a user's) may be Python
 * code: its objects are "deferred", to be asked through sys.getsizeof's own function
 * (leak__sizes_deferred) once the walk is over. */
#ifndef LIBLEAK_HEAP_SIZES_H
#define LIBLEAK_HEAP_SIZES_H
#include <Python.h>
#include <stdint.h>

enum {
  LEAK__SIZE_UNKNOWN = 0, /* not looked up yet */
  LEAK__SIZE_OBJECT,      /* object.__sizeof__: basic size plus items */
  LEAK__SIZE_LIST,
  LEAK__SIZE_DICT,
  LEAK__SIZE_SET,
  LEAK__SIZE_STR,
  LEAK__SIZE_INT,
  LEAK__SIZE_BYTEARRAY,
  LEAK__SIZE_DEFERRED, /* any other __sizeof__: asked after the walk */
  LEAK__SIZE_KINDS_
};

/* The builtins' own __sizeof__ descriptors, to recognise them (and inheritors) by identity. */
typedef struct leak__sizes {
  PyObject *sizeof_name; /* "__sizeof__", interned (a reference) */
  PyObject *builtin[LEAK__SIZE_KINDS_];
  PyObject *frozenset_sizeof;
} leak__sizes;

/* Prepares `sizes` (GIL held, outside a walk: it interns a str).  0 or LEAK_ENOMEM. */
int leak__sizes_init(leak__sizes *sizes);
void leak__sizes_fini(leak__sizes *sizes);

/* Which kind of sizing the instances of `type` need: _PyType_Lookup reads the type's MRO dicts with
 * a str key, so this allocates nothing and runs no code (it may run inside a walk). */
uint8_t leak__sizes_kind(const leak__sizes *sizes, PyTypeObject *type);

/* obj.__sizeof__() for every kind but LEAK__SIZE_DEFERRED; reads fields only. */
size_t leak__sizes_of(uint8_t kind, PyObject *obj);

/* What sys.getsizeof(obj) returns, for a deferred object, outside a walk.  A __sizeof__ that fails
 * gives object's formula instead (and leaves no exception set).  When `run_python` is zero, a
 * __sizeof__ written in Python is not called (object's formula again): then no Python code runs. */
size_t leak__sizes_deferred(PyObject *obj, int run_python);

#endif
