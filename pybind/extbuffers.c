/* The extension-buffers area of _libleak: redirects the imports of PyTraceMalloc_Track/Untrack of
 * loaded extensions to the tracer while it runs (libleak/tracer/extbuffers.c does the work), and
 * lists those import slots for the tests.  libleak/_extbuffers.py decides when to call these. */
#include "glue.h"
#include "tracer/extbuffers.h"

/* extbuffers_redirect() -> the number of slots redirected now (0 when nothing new was loaded). */
static PyObject *py_extbuffers_redirect(PyObject *module, PyObject *unused) {
  size_t redirected = 0;
  int rc = leak_extbuffers_redirect(&redirected);
  if (rc < 0) return leak__py_raise(rc, "redirecting PyTraceMalloc_Track");
  return PyLong_FromSize_t(redirected);
}

/* extbuffers_restore() -> the number of slots given back to CPython's functions. */
static PyObject *py_extbuffers_restore(PyObject *module, PyObject *unused) {
  size_t restored = 0;
  int rc = leak_extbuffers_restore(&restored);
  if (rc < 0) return leak__py_raise(rc, "restoring PyTraceMalloc_Track");
  return PyLong_FromSize_t(restored);
}

/* Appends one (object, symbol, state) tuple to the list in `data`; nonzero stops the walk when
 * Python ran out of memory (the exception is then set). */
static int append_slot(const char *object, const char *symbol, leak__extbuffers_slot_state state, void *data) {
  static const char *const state_names[] = {"libleak", "original", "other"};
  PyObject *row = Py_BuildValue("(sss)", object, symbol, state_names[state]);
  if (row == NULL) return 1;
  int rc = PyList_Append((PyObject *)data, row);
  Py_DECREF(row);
  return rc < 0;
}

/* extbuffers_slots() -> [(object path, symbol, "libleak" | "original" | "other"), ...]. */
static PyObject *py_extbuffers_slots(PyObject *module, PyObject *unused) {
  PyObject *rows = PyList_New(0);
  if (rows == NULL) return NULL;
  int rc = leak__extbuffers_slots(append_slot, rows);
  if (rc != 0) {
    Py_DECREF(rows);
    return rc > 0 ? NULL : leak__py_raise(rc, "listing PyTraceMalloc_Track imports");
  }
  return rows;
}

static PyMethodDef extbuffers_methods[] = {
    {"extbuffers_redirect", py_extbuffers_redirect, METH_NOARGS, "extbuffers_redirect() -> slots redirected"},
    {"extbuffers_restore", py_extbuffers_restore, METH_NOARGS, "extbuffers_restore() -> slots restored"},
    {"extbuffers_slots", py_extbuffers_slots, METH_NOARGS, "extbuffers_slots() -> [(object, symbol, state)]"},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_extbuffers_area = {extbuffers_methods, NULL};
