/* The no-allocation proof: every dump path runs with every allocator forbidden.
 *
 * This program replaces malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign,
 * valloc and pvalloc for the whole process (the executable's definitions interpose on the C
 * library's, for libpython too) and wraps Python's three allocator domains; while `forbidden` is
 * set, any call prints what was called and aborts.  Each scenario runs in its own child with an
 * interpreter of its own and several parked Python threads: leak_dump_stacks (all threads and
 * current thread), a user signal's handler, a watchdog's dump in the service thread, and a fatal
 * signal's handler.  Prints TAP.  Not built with the sanitizers: they replace malloc themselves. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "libleak.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXPORTED __attribute__((visibility("default")))

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

/* Set around the code under test; read by every allocator below (any thread). */
static volatile int forbidden;

/* A forbidden call: say which and die, so the scenario fails with the culprit named. */
static void refuse(const char *what) {
  forbidden = 0;
  static const char text[] = "FORBIDDEN ALLOCATION during a dump: ";
  ssize_t unused = write(2, text, sizeof text - 1);
  unused = write(2, what, strlen(what));
  unused = write(2, "\n", 1);
  (void)unused;
  abort();
}

EXPORTED void *malloc(size_t size) {
  if (forbidden) refuse("malloc");
  return __libc_malloc(size);
}
EXPORTED void *calloc(size_t count, size_t size) {
  if (forbidden) refuse("calloc");
  return __libc_calloc(count, size);
}
EXPORTED void *realloc(void *ptr, size_t size) {
  if (forbidden) refuse("realloc");
  return __libc_realloc(ptr, size);
}
EXPORTED void free(void *ptr) {
  if (forbidden) refuse("free");
  __libc_free(ptr);
}
EXPORTED int posix_memalign(void **out, size_t alignment, size_t size) {
  if (forbidden) refuse("posix_memalign");
  void *p = __libc_memalign(alignment, size);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
EXPORTED void *aligned_alloc(size_t alignment, size_t size) {
  if (forbidden) refuse("aligned_alloc");
  return __libc_memalign(alignment, size);
}
EXPORTED void *memalign(size_t alignment, size_t size) {
  if (forbidden) refuse("memalign");
  return __libc_memalign(alignment, size);
}
EXPORTED void *valloc(size_t size) {
  if (forbidden) refuse("valloc");
  return __libc_valloc(size);
}
EXPORTED void *pvalloc(size_t size) {
  if (forbidden) refuse("pvalloc");
  return __libc_pvalloc(size);
}

/* Python's allocators, each domain wrapped around the one it had. */
static PyMemAllocatorEx saved_domains[3];
static void *py_malloc(void *ctx, size_t size) {
  if (forbidden) refuse("PyMem malloc");
  PyMemAllocatorEx *inner = ctx;
  return inner->malloc(inner->ctx, size);
}
static void *py_calloc(void *ctx, size_t count, size_t size) {
  if (forbidden) refuse("PyMem calloc");
  PyMemAllocatorEx *inner = ctx;
  return inner->calloc(inner->ctx, count, size);
}
static void *py_realloc(void *ctx, void *ptr, size_t size) {
  if (forbidden) refuse("PyMem realloc");
  PyMemAllocatorEx *inner = ctx;
  return inner->realloc(inner->ctx, ptr, size);
}
static void py_free(void *ctx, void *ptr) {
  if (forbidden) refuse("PyMem free");
  PyMemAllocatorEx *inner = ctx;
  inner->free(inner->ctx, ptr);
}

static void hook_python_allocators(void) {
  PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
  for (int d = 0; d < 3; d++) {
    PyMem_GetAllocator(domains[d], &saved_domains[d]);
    PyMemAllocatorEx hook = {&saved_domains[d], py_malloc, py_calloc, py_realloc, py_free};
    PyMem_SetAllocator(domains[d], &hook);
  }
}

/* ---- The code under test, called from Python so the calling thread has frames too ---------- */

/* _noalloc.dump(fd, flags) -> rc */
static PyObject *noalloc_dump(PyObject *self, PyObject *args) {
  int fd;
  unsigned int flags;
  if (!PyArg_ParseTuple(args, "iI", &fd, &flags)) return NULL;
  forbidden = 1;
  int rc = leak_dump_stacks(fd, flags);
  forbidden = 0;
  return PyLong_FromLong(rc);
}

/* _noalloc.signal_dump(fd): the SIGUSR1 handler's dump. */
static PyObject *noalloc_signal_dump(PyObject *self, PyObject *args) {
  int fd;
  if (!PyArg_ParseTuple(args, "i", &fd)) return NULL;
  if (leak_faults_register(SIGUSR1, fd, LEAK_DUMP_ALL_THREADS) != 0) return PyErr_Format(PyExc_OSError, "register");
  forbidden = 1;
  raise(SIGUSR1);
  forbidden = 0;
  leak_faults_unregister(SIGUSR1);
  Py_RETURN_NONE;
}

static off_t file_size(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_size : 0;
}

/* _noalloc.watchdog_dump(fd, later_fd): the service thread dumps into fd while allocation is
 * forbidden; it is serial, so once the second watchdog's header appears the first dump is done. */
static PyObject *noalloc_watchdog_dump(PyObject *self, PyObject *args) {
  int fd, later_fd;
  if (!PyArg_ParseTuple(args, "ii", &fd, &later_fd)) return NULL;
  leak_watchdog *first = NULL, *second = NULL;
  if (leak_watchdog_start(0.05, fd, LEAK_DUMP_ALL_THREADS, &first) != 0 ||
      leak_watchdog_start(0.1, later_fd, LEAK_DUMP_ALL_THREADS, &second) != 0)
    return PyErr_Format(PyExc_OSError, "watchdog_start");
  forbidden = 1;
  for (int waited = 0; file_size(later_fd) == 0 && waited < 60000; waited++) {
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
  }
  forbidden = 0;
  leak_watchdog_cancel(second);
  leak_watchdog_cancel(first);
  Py_RETURN_NONE;
}

/* _noalloc.crash(): a null store with allocation forbidden; the fatal handler dumps. */
__attribute__((noinline)) static PyObject *noalloc_crash(PyObject *self, PyObject *unused) {
  volatile int *volatile nowhere = NULL;
  forbidden = 1;
  *nowhere = 1;
  forbidden = 0;
  Py_RETURN_NONE;
}

static PyMethodDef noalloc_methods[] = {
    {"dump", noalloc_dump, METH_VARARGS, NULL},
    {"signal_dump", noalloc_signal_dump, METH_VARARGS, NULL},
    {"watchdog_dump", noalloc_watchdog_dump, METH_VARARGS, NULL},
    {"crash", noalloc_crash, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef noalloc_module = {PyModuleDef_HEAD_INIT, "_noalloc", NULL, -1, noalloc_methods};
static PyObject *noalloc_init(void) { return PyModule_Create(&noalloc_module); }

/* Parked threads of every kind the dumper reads: plain calls, a deep recursion, a generator, a
 * coroutine; `check(text)` asserts a dump shows all of them. */
static const char *python_setup =
    "import threading, tempfile, _noalloc\n"
    "done = threading.Event(); ready = []\n"
    "def park():\n"
    "    e = threading.Event(); ready.append(e); e.set()\n"
    "    done.wait()\n"
    "def deep(n):\n"
    "    return deep(n - 1) if n else park()\n"
    "def gen():\n"
    "    park(); yield 1\n"
    "async def coro():\n"
    "    park()\n"
    "def run_coro():\n"
    "    c = coro()\n"
    "    try: c.send(None)\n"
    "    except StopIteration: pass\n"
    "targets = [park, lambda: deep(300), lambda: next(gen()), run_coro]\n"
    "threads = [threading.Thread(target=t) for t in targets]\n"
    "for t in threads: t.start()\n"
    "while len(ready) < len(threads): threading.Event().wait(0.01)\n"
    "def read(f):\n"
    "    f.seek(0); return f.read().decode()\n"
    "def check(text, current=True):\n"
    "    for name in ('in park', 'in deep', 'in gen', 'in coro', 'in run_coro'):\n"
    "        assert name in text, (name, text)\n"
    "    assert ('Current thread' in text) == current, text\n"
    "def stop():\n"
    "    done.set()\n"
    "    for t in threads: t.join()\n";

static const char *scenario_sources[] = {
    "with tempfile.TemporaryFile() as f:\n"
    "    assert _noalloc.dump(f.fileno(), 1) == 0\n"
    "    check(read(f))\n"
    "with tempfile.TemporaryFile() as f:\n"
    "    assert _noalloc.dump(f.fileno(), 0) == 0\n"
    "    assert read(f).startswith('Stack (most recent call first):\\n  File ')\n"
    "stop()\n",

    "with tempfile.TemporaryFile() as f:\n"
    "    _noalloc.signal_dump(f.fileno())\n"
    "    check(read(f))\n"
    "stop()\n",

    "with tempfile.TemporaryFile() as f, tempfile.TemporaryFile() as g:\n"
    "    _noalloc.watchdog_dump(f.fileno(), g.fileno())\n"
    "    text = read(f)\n"
    "    assert text.startswith('Timeout (0:00:00.050000)!\\n'), text\n"
    "    check(text, current=False)\n"
    "stop()\n",

    "_noalloc.crash()\n",
};
static const char *scenario_names[] = {
    "leak_dump_stacks allocates nothing",
    "a user signal's dump allocates nothing",
    "a watchdog's dump allocates nothing",
    "a fatal signal's dump allocates nothing",
};
#define SCENARIOS 4
#define FATAL_SCENARIO 3

/* One scenario in this (child) process: Python up, allocators hooked, threads parked, the test. */
static int run_scenario(int index) {
  PyImport_AppendInittab("_noalloc", noalloc_init);
  Py_InitializeEx(0);
  hook_python_allocators();
  if (index == FATAL_SCENARIO && leak_faults_enable(2, LEAK_DUMP_ALL_THREADS) != 0) return 1;
  if (PyRun_SimpleString(python_setup) != 0) return 1;
  return PyRun_SimpleString(scenario_sources[index]) == 0 ? 0 : 1;
}

/* The interpreter's home, asked from the real interpreter (this program lives in the build tree). */
static void set_python_home(void) {
  if (getenv("PYTHONHOME") != NULL) return;
  FILE *p = popen(LEAK_TEST_PYTHON " -c \"import sys; print(sys.base_prefix, end='')\"", "r");
  char home[4096] = "";
  if (p == NULL || fgets(home, sizeof home, p) == NULL) {
    fprintf(stderr, "cannot ask %s for its prefix\n", LEAK_TEST_PYTHON);
    exit(99);
  }
  pclose(p);
  setenv("PYTHONHOME", home, 1);
}

int main(void) {
  set_python_home();
  printf("1..%d\n", SCENARIOS);
  fflush(stdout);
  int failed = 0;
  for (int i = 0; i < SCENARIOS; i++) {
    int fds[2];
    if (pipe(fds) != 0) return 99;
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      _exit(run_scenario(i));
    }
    close(fds[1]);
    static char output[1 << 20];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], output + len, sizeof output - 1 - len)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      len += (size_t)n;
    }
    output[len] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    int ok;
    if (i == FATAL_SCENARIO)
      ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV &&
           strstr(output, "Fatal Python error: Segmentation fault\n\nThread 0x") != NULL &&
           strstr(output, "\nCurrent thread 0x") != NULL && strstr(output, " in deep\n") != NULL &&
           strstr(output, " in coro\n") != NULL &&
           /* from 3.10, the list of extension modules, read without allocating too */
           (PY_VERSION_HEX < 0x030A0000) == (strstr(output, "\n\nExtension modules: _noalloc (total: 1)\n") == NULL);
    else
      ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (strstr(output, "FORBIDDEN ALLOCATION") != NULL) ok = 0;
    printf("%s %d - %s\n", ok ? "ok" : "not ok", i + 1, scenario_names[i]);
    if (!ok) {
      printf("# wait status %#x; output:\n", status);
      for (char *line = strtok(output, "\n"); line != NULL; line = strtok(NULL, "\n")) printf("# %s\n", line);
      failed++;
    }
    fflush(stdout);
  }
  return failed ? 1 : 0;
}
