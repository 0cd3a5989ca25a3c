/* Small compatibility shims for the CPython C API across 3.8 - 3.13.
 *
 * Only API spelling differences live here; anything that knows interpreter internals (frame layouts,
 * thread-state fields) lives in frames.c. */
#ifndef LIBLEAK_PYCOMPAT_H
#define LIBLEAK_PYCOMPAT_H

#include <Python.h>

#if PY_VERSION_HEX < 0x030A0000
/* Py_NewRef arrived in 3.10. */
static inline PyObject *leak__py_newref(PyObject *o) {
  Py_INCREF(o);
  return o;
}
#define Py_NewRef(o) leak__py_newref((PyObject *)(o))
#endif

#if PY_VERSION_HEX < 0x03090000
/* The interpreter of a thread state: a plain field read before 3.9 added the accessor. */
#define PyThreadState_GetInterpreter(ts) ((ts)->interp)
/* Py_IS_TYPE arrived in 3.9. */
#define Py_IS_TYPE(o, t) (Py_TYPE(o) == (t))
#endif

#if PY_VERSION_HEX >= 0x030D0000
/* sys.getsizeof's C function: exported by libpython on every version, declared in a public header
 * until 3.12 only. */
extern size_t _PySys_GetSizeOf(PyObject *);
/* The name of the allocators in place ("pymalloc" for the defaults): exported on every version,
 * declared in a public header until 3.12 only. */
extern const char *_PyMem_GetCurrentAllocatorName(void);
#endif

#endif
