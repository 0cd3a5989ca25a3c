/* Edge labels.  Read refs/labels.h first. */
#include "core/internal.h"
#include "refs/labels.h"
#include "core/frames.h"

#include <frameobject.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <structmember.h>

/* snprintf that reports the length written (cut to the buffer). */
static size_t put(char *out, size_t capacity, const char *format, ...) {
  va_list args;
  va_start(args, format);
  int n = vsnprintf(out, capacity, format, args);
  va_end(args);
  if (n < 0) {
    out[0] = '\0';
    return 0;
  }
  return (size_t)n < capacity ? (size_t)n : capacity - 1;
}

/* A str for a label: its UTF-8 text, cut to 40 bytes with "..." (never inside a character). */
static size_t put_text(char *out, size_t capacity, const char *before, PyObject *text, const char *after) {
  const char *utf8 = PyUnicode_Check(text) ? PyUnicode_AsUTF8(text) : NULL;
  if (utf8 == NULL) {
    PyErr_Clear();
    return put(out, capacity, "%s?%s", before, after);
  }
  size_t length = strlen(utf8);
  if (length <= 40) return put(out, capacity, "%s%s%s", before, utf8, after);
  size_t cut = 37;
  while (cut > 0 && ((unsigned char)utf8[cut] & 0xC0) == 0x80) cut--;
  return put(out, capacity, "%s%.*s...%s", before, (int)cut, utf8, after);
}

/* A dict key as it would be written: 'text', 42, or <type> for anything else. */
static size_t put_key(char *out, size_t capacity, PyObject *key, const char *open, const char *close) {
  char head[8];
  if (PyUnicode_Check(key)) {
    snprintf(head, sizeof(head), "%s'", open);
    char tail[8];
    snprintf(tail, sizeof(tail), "'%s", close);
    return put_text(out, capacity, head, key, tail);
  }
  if (PyLong_CheckExact(key)) {
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(key, &overflow);
    if (!overflow && !PyErr_Occurred()) return put(out, capacity, "%s%lld%s", open, value, close);
    PyErr_Clear();
  }
  if (key == Py_None || key == Py_True || key == Py_False)
    return put(out, capacity, "%s%s%s", open, key == Py_None ? "None" : key == Py_True ? "True" : "False", close);
  return put(out, capacity, "%s<%s>%s", open, Py_TYPE(key)->tp_name, close);
}

static size_t dict_label(PyObject *dict, PyObject *referent, char *out, size_t capacity) {
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  while (PyDict_Next(dict, &pos, &key, &value)) {
    if (value == referent) return put_key(out, capacity, key, "[", "]");
    if (key == referent) return put(out, capacity, " (a key)");
  }
  return put(out, capacity, "%s", "");
}

/* An attribute held in a __slots__ slot: the member descriptors of the type and its bases. */
static PyObject *slot_name(PyObject *obj, PyObject *referent) {
  PyObject *mro = Py_TYPE(obj)->tp_mro;
  if (mro == NULL || !PyTuple_Check(mro)) return NULL;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
    PyObject *base = PyTuple_GET_ITEM(mro, i);
    PyObject *dict = ((PyTypeObject *)base)->tp_dict;
    if (dict == NULL || !PyDict_Check(dict)) continue;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(dict, &pos, &key, &value)) {
      if (Py_TYPE(value) != &PyMemberDescr_Type) continue;
      PyMemberDef *member = ((PyMemberDescrObject *)value)->d_member;
      if (member->type != T_OBJECT_EX && member->type != T_OBJECT) continue;
      if (*(PyObject **)((char *)obj + member->offset) == referent) return key;
    }
  }
  return NULL;
}

/* A field of a well-known type, by pointer comparison: `fields` pairs each field's value with its
 * name. */
typedef struct named_field {
  PyObject *value;
  const char *name;
} named_field;

static size_t field_label(const named_field *fields, size_t count, PyObject *referent, char *out, size_t capacity) {
  for (size_t i = 0; i < count; i++)
    if (fields[i].value == referent) return put(out, capacity, ".%s", fields[i].name);
  return (size_t)-1;
}

#define FIELDS_LABEL(...)                                                                       \
  do {                                                                                          \
    const named_field fields_[] = {__VA_ARGS__};                                                \
    size_t n_ = field_label(fields_, LEAK_ARRAY_SIZE(fields_), referent, out, capacity);        \
    if (n_ != (size_t)-1) return n_;                                                            \
  } while (0)

size_t leak__ref_label(PyObject *referrer, PyObject *referent, char *out, size_t capacity) {
  if (capacity == 0) return 0;
  out[0] = '\0';
  if (PyDict_Check(referrer)) return dict_label(referrer, referent, out, capacity);
  if (PyList_Check(referrer)) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(referrer); i++)
      if (PyList_GET_ITEM(referrer, i) == referent) return put(out, capacity, "[%zd]", i);
  }
  if (PyTuple_Check(referrer)) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(referrer); i++)
      if (PyTuple_GET_ITEM(referrer, i) == referent) return put(out, capacity, "[%zd]", i);
  }
  if (PyAnySet_Check(referrer)) return put(out, capacity, " (an item)");
  if (PyCell_Check(referrer)) return put(out, capacity, ".cell_contents");
  if (PyFunction_Check(referrer)) {
    PyFunctionObject *f = (PyFunctionObject *)referrer;
    FIELDS_LABEL({f->func_closure, "__closure__"}, {f->func_globals, "__globals__"},
                 {f->func_defaults, "__defaults__"}, {f->func_kwdefaults, "__kwdefaults__"},
                 {f->func_code, "__code__"}, {f->func_dict, "__dict__"}, {f->func_module, "__module__"},
                 {f->func_annotations, "__annotations__"}, {f->func_qualname, "__qualname__"},
                 {f->func_name, "__name__"}, {f->func_doc, "__doc__"});
  }
  if (PyMethod_Check(referrer))
    FIELDS_LABEL({PyMethod_GET_SELF(referrer), "__self__"}, {PyMethod_GET_FUNCTION(referrer), "__func__"});
  if (PyTraceBack_Check(referrer)) {
    PyTracebackObject *tb = (PyTracebackObject *)referrer;
    FIELDS_LABEL({(PyObject *)tb->tb_frame, "tb_frame"}, {(PyObject *)tb->tb_next, "tb_next"});
  }
  if (PyExceptionInstance_Check(referrer)) {
    PyBaseExceptionObject *e = (PyBaseExceptionObject *)referrer;
    FIELDS_LABEL({e->traceback, "__traceback__"}, {e->context, "__context__"}, {e->cause, "__cause__"},
                 {e->args, "args"}, {e->dict, "__dict__"});
  }
  if (PyModule_Check(referrer)) FIELDS_LABEL({PyModule_GetDict(referrer), "__dict__"});
  if (PyType_Check(referrer)) {
    PyTypeObject *t = (PyTypeObject *)referrer;
    FIELDS_LABEL({t->tp_dict, "__dict__"}, {t->tp_mro, "__mro__"}, {t->tp_bases, "__bases__"},
                 {(PyObject *)t->tp_base, "__base__"});
  }
  if (PyFrame_Check(referrer) || PyGen_Check(referrer) || PyCoro_CheckExact(referrer) ||
      PyAsyncGen_CheckExact(referrer)) {
    PyObject *local = leak__frames_local_holding(referrer, referent);
    if (local != NULL) return put_text(out, capacity, " local ", local, "");
    const char *field = PyFrame_Check(referrer) ? leak__frames_frame_field(referrer, referent) : NULL;
    if (field != NULL) return put(out, capacity, ".%s", field);
  }
  /* An instance: its class, its attributes (in __dict__, inline values or __slots__), its __dict__. */
  if ((PyObject *)Py_TYPE(referrer) == referent) return put(out, capacity, ".__class__");
  PyObject *name = leak__frames_attribute_name(referrer, referent);
  if (name == NULL) name = slot_name(referrer, referent);
  if (name != NULL) return put_text(out, capacity, ".", name, "");
  PyObject **dict = _PyObject_GetDictPtr(referrer);
  if (dict != NULL && *dict == referent) return put(out, capacity, ".__dict__");
  return 0;
}
