/* The _libleak extension module: creates the exceptions and gathers every area's functions. */
#include "glue.h"

PyObject *leak__py_error;
PyObject *leak__py_format_error;

PyObject *leak__py_raise(int code, const char *context) {
  if (code == LEAK_EPYTHON && PyErr_Occurred()) return NULL;
  PyObject *type;
  switch (code) {
    case LEAK_EINVAL:
    case LEAK_ERANGE:
      type = PyExc_ValueError;
      break;
    case LEAK_ENOMEM:
      return PyErr_NoMemory();
    case LEAK_EFORMAT:
      type = leak__py_format_error;
      break;
    case LEAK_EBADF:
    case LEAK_EIO:
    case LEAK_ENOENT:
    case LEAK_EACCES:
    case LEAK_EAGAIN:
      errno = -code;
      return PyErr_SetFromErrnoWithFilename(PyExc_OSError, context);
    default:
      type = leak__py_error;
      break;
  }
  if (context && context[0])
    PyErr_Format(type, "%s: %s", context, leak_strerror(code));
  else
    PyErr_SetString(type, leak_strerror(code));
  return NULL;
}

/* Every area of the extension, in the order their init hooks run. */
static const leak__py_area *const areas[] = {
    &leak__py_faults_area,
    &leak__py_tracer_area,
    &leak__py_extbuffers_area,
    &leak__py_heap_area,
    &leak__py_refs_area,
    &leak__py_render_area,
    &leak__py_deepsize_area,
    &leak__py_classtrack_area,
    &leak__py_profile_area,
    &leak__py_chains_area,
    &leak__py_ondemand_area,
    NULL,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "libleak._libleak", "libleak's C core (use the libleak package instead).", -1, NULL,
};

/* Exported by hand: before 3.9 PyMODINIT_FUNC carries no visibility, and the build hides everything. */
LEAK_EXTERN PyMODINIT_FUNC PyInit__libleak(void) {
  PyObject *module = PyModule_Create(&module_def);
  if (module == NULL) return NULL;
  leak__py_error = PyErr_NewExceptionWithDoc("libleak.Error", "Base class of libleak's errors.", NULL, NULL);
  if (leak__py_error == NULL || PyModule_AddObject(module, "Error", Py_NewRef(leak__py_error)) < 0) goto fail;
  leak__py_format_error = PyErr_NewExceptionWithDoc(
      "libleak.FormatError", "A snapshot or profile file is truncated, corrupted or not libleak's.",
      leak__py_error, NULL);
  if (leak__py_format_error == NULL ||
      PyModule_AddObject(module, "FormatError", Py_NewRef(leak__py_format_error)) < 0)
    goto fail;
  if (PyModule_AddStringConstant(module, "__version__", leak_version_string()) < 0) goto fail;
  for (size_t i = 0; areas[i] != NULL; i++) {
    if (areas[i]->methods && PyModule_AddFunctions(module, areas[i]->methods) < 0) goto fail;
    if (areas[i]->init && areas[i]->init(module) < 0) goto fail;
  }
  return module;
fail:
  Py_DECREF(module);
  return NULL;
}
