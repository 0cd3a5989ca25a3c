/* Object sizes as sys.getsizeof gives them.  Read heap/sizes.h first. */
#include "core/internal.h"
#include "heap/sizes.h"
#include "core/frames.h"

#include <string.h>

int leak__sizes_init(leak__sizes *sizes) {
  static const struct {
    uint8_t kind;
    PyTypeObject *type;
  } builtins[] = {
      {LEAK__SIZE_OBJECT, &PyBaseObject_Type}, {LEAK__SIZE_LIST, &PyList_Type},
      {LEAK__SIZE_DICT, &PyDict_Type},         {LEAK__SIZE_SET, &PySet_Type},
      {LEAK__SIZE_STR, &PyUnicode_Type},       {LEAK__SIZE_INT, &PyLong_Type},
      {LEAK__SIZE_BYTEARRAY, &PyByteArray_Type},
  };
  memset(sizes, 0, sizeof(*sizes));
  sizes->sizeof_name = PyUnicode_InternFromString("__sizeof__");
  if (sizes->sizeof_name == NULL) {
    PyErr_Clear();
    return LEAK_ENOMEM;
  }
  for (size_t i = 0; i < LEAK_ARRAY_SIZE(builtins); i++)
    sizes->builtin[builtins[i].kind] = _PyType_Lookup(builtins[i].type, sizes->sizeof_name);
  sizes->frozenset_sizeof = _PyType_Lookup(&PyFrozenSet_Type, sizes->sizeof_name);
  return 0;
}

void leak__sizes_fini(leak__sizes *sizes) { Py_CLEAR(sizes->sizeof_name); }

uint8_t leak__sizes_kind(const leak__sizes *sizes, PyTypeObject *type) {
  PyObject *method = _PyType_Lookup(type, sizes->sizeof_name);
  if (method == NULL) return LEAK__SIZE_OBJECT;
  if (method == sizes->frozenset_sizeof) return LEAK__SIZE_SET;
  for (int kind = LEAK__SIZE_OBJECT; kind < LEAK__SIZE_DEFERRED; kind++)
    if (method == sizes->builtin[kind]) return (uint8_t)kind;
  return LEAK__SIZE_DEFERRED;
}

size_t leak__sizes_of(uint8_t kind, PyObject *obj) {
  PyTypeObject *type = Py_TYPE(obj);
  size_t basic = (size_t)type->tp_basicsize;
  switch (kind) {
    case LEAK__SIZE_LIST:
      return basic + (size_t)((PyListObject *)obj)->allocated * sizeof(PyObject *);
    case LEAK__SIZE_DICT:
      return leak__frames_dict_sizeof(obj);
    case LEAK__SIZE_SET: {
      PySetObject *set = (PySetObject *)obj;
      return basic + (set->table != set->smalltable ? (size_t)(set->mask + 1) * sizeof(setentry) : 0);
    }
    case LEAK__SIZE_STR:
      return leak__frames_str_sizeof(obj);
    case LEAK__SIZE_INT:
      return leak__frames_int_sizeof(obj);
    case LEAK__SIZE_BYTEARRAY:
      return basic + (size_t)((PyByteArrayObject *)obj)->ob_alloc;
    default: /* object.__sizeof__ */
      if (type->tp_itemsize > 0) basic += (size_t)Py_SIZE(obj) * (size_t)type->tp_itemsize;
      return basic;
  }
}

/* A __sizeof__ written in C (a method descriptor or a slot wrapper) runs no Python code; one
 * written in Python, or anything else, may. */
static int sizeof_is_c(PyObject *obj) {
  PyObject *name = PyUnicode_InternFromString("__sizeof__");
  if (name == NULL) {
    PyErr_Clear();
    return 0;
  }
  PyObject *method = _PyType_Lookup(Py_TYPE(obj), name);
  Py_DECREF(name);
  return method != NULL && (Py_IS_TYPE(method, &PyMethodDescr_Type) || Py_IS_TYPE(method, &PyWrapperDescr_Type));
}

size_t leak__sizes_deferred(PyObject *obj, int run_python) {
  size_t size = (size_t)-1;
  if (run_python || sizeof_is_c(obj)) size = _PySys_GetSizeOf(obj);
  if (size == (size_t)-1) {
    PyErr_Clear();
    size = leak__sizes_of(LEAK__SIZE_OBJECT, obj) + leak__object_header_size(obj);
  }
  return size;
}
