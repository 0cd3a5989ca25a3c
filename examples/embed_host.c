/* A C program that embeds CPython and uses libleak's C API: crash dumps switched on for the whole
 * run, an on-demand dump of every thread, a scoped watchdog that catches a stuck call, and the
 * allocation tracer saying which Python lines hold memory.
 *
 * Build (installed libleak):  cc embed_host.c $(pkg-config --cflags --libs libleak) \
 *                              $(python3-config --cflags --embed --ldflags)
 * Run it with PYTHONHOME set if the interpreter cannot find its standard library by itself. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <libleak.h>
#include <stdio.h>

/* host.dump(): lets the Python side ask the host for a dump of every thread, from inside its frames. */
static PyObject *host_dump(PyObject *self, PyObject *unused) {
  fflush(stdout);
  int rc = leak_dump_stacks(1, LEAK_DUMP_ALL_THREADS);
  if (rc < 0) return PyErr_Format(PyExc_RuntimeError, "leak_dump_stacks: %s", leak_strerror(rc));
  Py_RETURN_NONE;
}

static PyMethodDef host_methods[] = {{"dump", host_dump, METH_NOARGS, "Dump every thread's stack."},
                                     {NULL, NULL, 0, NULL}};
static struct PyModuleDef host_module = {PyModuleDef_HEAD_INIT, "host", NULL, -1, host_methods};
static PyObject *host_init(void) { return PyModule_Create(&host_module); }

static const char *workers =
    "import threading, time\n"
    "stop = threading.Event()\n"
    "def wait_for_orders():\n"
    "    stop.wait()\n"
    "def crunch(n):\n"
    "    return crunch(n - 1) if n else stop.wait()\n"
    "threads = [threading.Thread(target=wait_for_orders, name='orders'),\n"
    "           threading.Thread(target=crunch, args=(5,), name='cruncher')]\n"
    "for t in threads: t.start()\n"
    "time.sleep(0.1)\n";

static const char *request =
    "import host\n"
    "def handle_request():\n"
    "    host.dump()\n"
    "handle_request()\n";

int main(void) {
  PyImport_AppendInittab("host", host_init);
  Py_InitializeEx(0);

  /* From here on a crash prints every Python thread's stack before the process dies. */
  int rc = leak_faults_enable(2, LEAK_DUMP_ALL_THREADS);
  if (rc < 0) {
    fprintf(stderr, "leak_faults_enable: %s\n", leak_strerror(rc));
    return 1;
  }

  printf("== libleak %s: every thread, dumped from inside a request handler\n", leak_version_string());
  if (PyRun_SimpleString(workers) != 0 || PyRun_SimpleString(request) != 0) return 1;

  printf("\n== a watchdog around a call that takes too long (0.3 s budget, 0.6 s call)\n");
  fflush(stdout);
  leak_watchdog *watchdog = NULL;
  rc = leak_watchdog_start(0.3, 1, LEAK_DUMP_ALL_THREADS, &watchdog);
  if (rc < 0) {
    fprintf(stderr, "leak_watchdog_start: %s\n", leak_strerror(rc));
    return 1;
  }
  PyRun_SimpleString("import time\ndef slow_query():\n    time.sleep(0.6)\nslow_query()\n");
  leak_watchdog_cancel(watchdog);

  PyRun_SimpleString("stop.set()\nfor t in threads: t.join()\n");

  printf("\n== the allocation tracer: which lines hold the most memory\n");
  leak_tracer_options options = LEAK_TRACER_OPTIONS_INIT;
  options.nframe = 4;
  rc = leak_tracer_start(&options);
  if (rc < 0) {
    fprintf(stderr, "leak_tracer_start: %s\n", leak_strerror(rc));
    return 1;
  }
  PyRun_SimpleString("def load_cache():\n"
                     "    return {i: str(i) * 100 for i in range(2000)}\n"
                     "cache = load_cache()\n");
  leak_snapshot *snapshot = NULL;
  leak_stat top[3];
  size_t rows = 0;
  rc = leak_snapshot_take(&snapshot);
  if (rc == 0) rc = leak_snapshot_top(snapshot, LEAK_KEY_LINENO, 0, top, 3, &rows);
  if (rc < 0) {
    fprintf(stderr, "snapshot: %s\n", leak_strerror(rc));
    return 1;
  }
  for (size_t i = 0; i < rows; i++)
    printf("%s:%d: size=%llu B, count=%llu\n", top[i].filename, top[i].lineno,
           (unsigned long long)top[i].size, (unsigned long long)top[i].count);
  leak_snapshot_free(snapshot);
  leak_tracer_stop();

  leak_faults_disable();
  return Py_FinalizeEx() < 0 ? 1 : 0;
}
