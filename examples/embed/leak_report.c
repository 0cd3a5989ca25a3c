/* A C program that embeds CPython, runs a request handler that leaks, and asks libleak's C API
 * what leaked, where it was allocated and what keeps it alive: the census diff (heap.h), the
 * allocation lines that grew (tracer.h, snapshot.h) and a retention path (refs.h).  No Python
 * code of libleak runs: the host links the library and calls it directly.
 *
 * Build against an installed libleak:  make -C examples/embed  (see the Makefile next to this file)
 * or by hand:  cc leak_report.c $(pkg-config --cflags --libs libleak) $(python3-config --cflags --ldflags --embed)
 * Run it with PYTHONHOME set if the interpreter cannot find its standard library by itself. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <libleak.h>
#include <stdio.h>
#include <unistd.h>

/* The host's application module: a handler that keeps every session in a module-level list. */
static const char *app_source =
    "class Session:\n"
    "    def __init__(self, user):\n"
    "        self.user = user\n"
    "        self.payload = bytearray(1024)\n"
    "\n"
    "SESSIONS = []\n"
    "\n"
    "def handle_request(n):\n"
    "    session = Session('user%d' % n)\n"
    "    SESSIONS.append(session)\n"
    "    return len(session.payload)\n";

/* Prints what a libleak call returned when it failed; returns 1 then, so main can bail out. */
static int failed(int rc, const char *what) {
  if (rc >= 0) return 0;
  fprintf(stderr, "%s: %s (%s)\n", what, leak_strerror(rc), leak_err_name(rc));
  return 1;
}

/* Creates the module `app` from app_source, compiled as "app.py" so allocation sites name it. */
static PyObject *load_app(void) {
  PyObject *module = PyImport_AddModule("app"); /* borrowed, kept alive by sys.modules */
  if (module == NULL) return NULL;
  PyObject *globals = PyModule_GetDict(module);
  if (PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0) return NULL;
  PyObject *code = Py_CompileString(app_source, "app.py", Py_file_input);
  if (code == NULL) return NULL;
  PyObject *result = PyEval_EvalCode(code, globals, globals);
  Py_DECREF(code);
  if (result == NULL) return NULL;
  Py_DECREF(result);
  return module;
}

/* Serves `requests` requests through app.handle_request. */
static int serve(PyObject *app, int requests) {
  PyObject *handler = PyObject_GetAttrString(app, "handle_request");
  if (handler == NULL) return -1;
  for (int i = 0; i < requests; i++) {
    PyObject *result = PyObject_CallFunction(handler, "i", i);
    if (result == NULL) {
      Py_DECREF(handler);
      return -1;
    }
    Py_DECREF(result);
  }
  Py_DECREF(handler);
  return 0;
}

int main(void) {
  Py_InitializeEx(0);
  PyObject *app = load_app();
  if (app == NULL || serve(app, 10) < 0) { /* warm up: first-call caches are not leaks */
    PyErr_Print();
    return 1;
  }

  leak_tracer_options options = LEAK_TRACER_OPTIONS_INIT;
  options.nframe = 4;
  if (failed(leak_tracer_start(&options), "leak_tracer_start")) return 1;

  leak_census *census_before = NULL, *census_after = NULL;
  leak_snapshot *snapshot_before = NULL, *snapshot_after = NULL;
  if (failed(leak_census_take(NULL, &census_before), "leak_census_take") ||
      failed(leak_snapshot_take(&snapshot_before), "leak_snapshot_take"))
    return 1;
  if (serve(app, 500) < 0) {
    PyErr_Print();
    return 1;
  }
  if (failed(leak_snapshot_take(&snapshot_after), "leak_snapshot_take") ||
      failed(leak_census_take(NULL, &census_after), "leak_census_take"))
    return 1;
  leak_tracer_stop();

  printf("== libleak %s: the types that grew over 500 requests\n", leak_version_string());
  fflush(stdout);
  if (failed(leak_census_write_diff(census_after, census_before, STDOUT_FILENO, 5), "leak_census_write_diff"))
    return 1;

  printf("\n== the allocation lines that grew\n");
  leak_stat_diff sites[3];
  size_t site_count = 0;
  if (failed(leak_snapshot_compare(snapshot_after, snapshot_before, LEAK_KEY_LINENO, 0, sites, 3, &site_count),
             "leak_snapshot_compare"))
    return 1;
  for (size_t i = 0; i < site_count; i++)
    printf("%s:%d: size=%llu B (%+lld B), count=%llu (%+lld)\n", sites[i].filename, sites[i].lineno,
           (unsigned long long)sites[i].size, (long long)sites[i].size_diff, (unsigned long long)sites[i].count,
           (long long)sites[i].count_diff);

  printf("\n== why one new Session is still alive\n");
  fflush(stdout);
  PyObject **sessions = NULL;
  size_t session_count = 0;
  if (failed(leak_census_new_objects(census_after, census_before, "app.Session", 1, &sessions, &session_count),
             "leak_census_new_objects"))
    return 1;
  if (session_count == 0) {
    fprintf(stderr, "no new app.Session found\n");
    return 1;
  }
  int rc = leak_refs_write_why_alive(NULL, sessions[0], 1, STDOUT_FILENO);
  Py_DecRef(sessions[0]);
  leak_census_objects_free(sessions);
  if (failed(rc, "leak_refs_write_why_alive")) return 1;

  leak_snapshot_free(snapshot_before);
  leak_snapshot_free(snapshot_after);
  leak_census_free(census_before);
  leak_census_free(census_after);
  return Py_FinalizeEx() < 0 ? 1 : 0;
}
