/* The faults area of _libleak: stack dumps on request, on fatal signals, on user signals and on
 * timeouts, over the C API of include/libleak/faults.h.
 *
 * Thin on purpose: every function takes plain ints and floats (a file descriptor, LEAK_DUMP_* flags,
 * a timeout in seconds, a signal number) and returns None, a bool or a handle.  libleak/faults.py
 * does what faulthandler does with its arguments (file objects, sys.stderr, range checks, the
 * exceptions users expect) and keeps the file objects alive while a handler may write to them. */
#include "glue.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The capsule name of a watchdog handle; the capsule's context is non-NULL once it is cancelled. */
#define LEAK_WATCHDOG_CAPSULE "libleak._libleak.watchdog"
#define LEAK_WATCHDOG_CANCELLED ((void *)1)

/* Turns a failed call into an exception.  Codes that are errno values become OSError with that
 * errno, as faulthandler reports a failed sigaction(); the others go through leak__py_raise. */
static PyObject *faults_raise(int code, const char *context) {
  if (code == LEAK_EINVAL || code == LEAK_EBADF || code == LEAK_EAGAIN || code == LEAK_EIO) {
    errno = -code;
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  return leak__py_raise(code, context);
}

/* The Python function that turns dump_traceback's arguments into (fd, flags): faults.py's own
 * argument handling, registered at its import.  Protected by the GIL. */
static PyObject *dump_arguments;

/* faults_set_dump_arguments(function): registers the argument handler of dump_traceback. */
static PyObject *faults_set_dump_arguments(PyObject *self, PyObject *function) {
  if (!PyCallable_Check(function)) {
    PyErr_Format(PyExc_TypeError, "expected a callable, got %.200s", Py_TYPE(function)->tp_name);
    return NULL;
  }
  Py_XSETREF(dump_arguments, Py_NewRef(function));
  Py_RETURN_NONE;
}

/* dump_traceback(file=None, all_threads=True): libleak.faults.dump_traceback itself (named as
 * the public function, since that is the name users see in help() and tracebacks).
 * It is C so that no frame of libleak's shows on top of the caller's stack: faulthandler prints
 * the caller's frame first, and so must we.  The arguments go through the Python handler, which
 * returns before the dump starts, and the file object stays referenced until the dump is done.
 * The GIL stays held during the dump, as faulthandler holds it: other threads are parked at a
 * known place while their frames are read. */
static PyObject *faults_dump_traceback(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"file", "all_threads", NULL};
  PyObject *file = Py_None, *all_threads = Py_True;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:dump_traceback", keywords, &file, &all_threads))
    return NULL;
  if (dump_arguments == NULL) {
    PyErr_SetString(leak__py_error, "dump_traceback: import libleak.faults first");
    return NULL;
  }
  PyObject *parsed = PyObject_CallFunctionObjArgs(dump_arguments, file, all_threads, NULL);
  if (parsed == NULL) return NULL;
  int fd;
  unsigned int flags;
  PyObject *keep;
  if (!PyArg_ParseTuple(parsed, "iIO:dump_traceback", &fd, &flags, &keep)) {
    Py_DECREF(parsed);
    return NULL;
  }
  int rc = leak_dump_stacks(fd, flags);
  Py_DECREF(parsed);
  /* faulthandler ignores a failed write (a closed descriptor, a full disk): so does its drop-in. */
  if (rc < 0 && rc != LEAK_EBADF && rc != LEAK_EIO) return faults_raise(rc, "dump_traceback");
  /* A signal that arrived during the dump runs its Python handler now, as after faulthandler's. */
  if (PyErr_CheckSignals() < 0) return NULL;
  Py_RETURN_NONE;
}

/* faults_enable(fd, flags): installs the fatal-signal handlers (again, with a new fd, if installed). */
static PyObject *faults_enable(PyObject *self, PyObject *args) {
  int fd;
  unsigned int flags;
  if (!PyArg_ParseTuple(args, "iI:faults_enable", &fd, &flags)) return NULL;
  int rc = leak_faults_enable(fd, flags);
  if (rc < 0) return faults_raise(rc, "enable");
  Py_RETURN_NONE;
}

/* faults_disable() -> bool: restores the previous handlers; says whether they were installed, which
 * is what faulthandler.disable() returns. */
static PyObject *faults_disable(PyObject *self, PyObject *unused) {
  int was_enabled = leak_faults_is_enabled();
  int rc = leak_faults_disable();
  if (rc < 0) return faults_raise(rc, "disable");
  return PyBool_FromLong(was_enabled);
}

/* faults_is_enabled() -> bool. */
static PyObject *faults_is_enabled(PyObject *self, PyObject *unused) {
  return PyBool_FromLong(leak_faults_is_enabled());
}

/* faults_register(signum, fd, flags): dumps on `signum`; registering again replaces fd and flags. */
static PyObject *faults_register(PyObject *self, PyObject *args) {
  int signum, fd;
  unsigned int flags;
  if (!PyArg_ParseTuple(args, "iiI:faults_register", &signum, &fd, &flags)) return NULL;
  int rc = leak_faults_register(signum, fd, flags);
  if (rc < 0) return faults_raise(rc, "register");
  Py_RETURN_NONE;
}

/* faults_unregister(signum) -> bool: True if a handler was registered for signum. */
static PyObject *faults_unregister(PyObject *self, PyObject *args) {
  int signum;
  if (!PyArg_ParseTuple(args, "i:faults_unregister", &signum)) return NULL;
  int rc = leak_faults_unregister(signum);
  if (rc < 0) return faults_raise(rc, "unregister");
  return PyBool_FromLong(rc);
}

/* faults_dump_later(timeout, fd, flags): the one process-wide watchdog of dump_traceback_later. */
static PyObject *faults_dump_later(PyObject *self, PyObject *args) {
  double timeout;
  int fd;
  unsigned int flags;
  if (!PyArg_ParseTuple(args, "diI:faults_dump_later", &timeout, &fd, &flags)) return NULL;
  int rc;
  /* Replacing a watchdog waits for a dump in progress: let other threads run meanwhile. */
  Py_BEGIN_ALLOW_THREADS
  rc = leak_dump_later(timeout, fd, flags);
  Py_END_ALLOW_THREADS
  if (rc < 0) return faults_raise(rc, "dump_traceback_later");
  Py_RETURN_NONE;
}

/* faults_dump_later_cancel(): cancel_dump_traceback_later.  It may wait for a dump in progress, so
 * the GIL is released meanwhile. */
static PyObject *faults_dump_later_cancel(PyObject *self, PyObject *unused) {
  Py_BEGIN_ALLOW_THREADS
  leak_dump_later_cancel();
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

/* Cancels the watchdog of a handle once; later calls do nothing.  The GIL is released because
 * leak_watchdog_cancel waits for a dump in progress, and the dump never needs the GIL. */
static void watchdog_cancel_once(PyObject *capsule) {
  if (PyCapsule_GetContext(capsule) == LEAK_WATCHDOG_CANCELLED) return;
  leak_watchdog *watchdog = PyCapsule_GetPointer(capsule, LEAK_WATCHDOG_CAPSULE);
  if (watchdog == NULL) return;
  PyCapsule_SetContext(capsule, LEAK_WATCHDOG_CANCELLED);
  Py_BEGIN_ALLOW_THREADS
  leak_watchdog_cancel(watchdog);
  Py_END_ALLOW_THREADS
}

/* A handle dropped without faults_watchdog_cancel still disarms its timer: the timer belongs to the
 * scope that made it, and nothing else could ever cancel it. */
static void watchdog_capsule_destructor(PyObject *capsule) {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  watchdog_cancel_once(capsule);
  PyErr_Clear();
  PyErr_Restore(type, value, traceback);
}

/* faults_watchdog_start(timeout, fd, flags) -> handle: a watchdog of its own, independent of every
 * other; the handle (a capsule) is passed to faults_watchdog_cancel. */
static PyObject *faults_watchdog_start(PyObject *self, PyObject *args) {
  double timeout;
  int fd;
  unsigned int flags;
  if (!PyArg_ParseTuple(args, "diI:faults_watchdog_start", &timeout, &fd, &flags)) return NULL;
  leak_watchdog *watchdog = NULL;
  int rc = leak_watchdog_start(timeout, fd, flags, &watchdog);
  if (rc < 0) return faults_raise(rc, "watchdog");
  PyObject *capsule = PyCapsule_New(watchdog, LEAK_WATCHDOG_CAPSULE, watchdog_capsule_destructor);
  if (capsule == NULL) {
    Py_BEGIN_ALLOW_THREADS
    leak_watchdog_cancel(watchdog);
    Py_END_ALLOW_THREADS
  }
  return capsule;
}

/* faults_watchdog_cancel(handle): disarms the watchdog; a second cancel of the same handle is a
 * no-op. */
static PyObject *faults_watchdog_cancel(PyObject *self, PyObject *capsule) {
  if (!PyCapsule_IsValid(capsule, LEAK_WATCHDOG_CAPSULE)) {
    PyErr_SetString(PyExc_TypeError, "expected a handle from faults_watchdog_start()");
    return NULL;
  }
  watchdog_cancel_once(capsule);
  Py_RETURN_NONE;
}

/* faults_get_limits() -> (max_frames, max_threads, main_thread_first): what the C core uses now (a
 * host may have changed them too). */
static PyObject *faults_get_limits(PyObject *self, PyObject *unused) {
  leak_dump_limits limits = LEAK_DUMP_LIMITS_INIT;
  int rc = leak_dump_get_limits(&limits);
  if (rc < 0) return leak__py_raise(rc, "get_limits");
  return Py_BuildValue("(iiN)", limits.max_frames, limits.max_threads, PyBool_FromLong(limits.main_thread_first));
}

/* faults_set_limits(max_frames, max_threads, main_thread_first): the limits and thread order of
 * every later dump. */
static PyObject *faults_set_limits(PyObject *self, PyObject *args) {
  leak_dump_limits limits = LEAK_DUMP_LIMITS_INIT;
  if (!PyArg_ParseTuple(args, "iip:faults_set_limits", &limits.max_frames, &limits.max_threads,
                        &limits.main_thread_first))
    return NULL;
  int rc = leak_dump_set_limits(&limits);
  if (rc < 0) return leak__py_raise(rc, "set_limits");
  Py_RETURN_NONE;
}

/* The crash triggers below must really fault.  The sanitizers would otherwise catch the null store
 * and the division by zero first and turn them into a report and an abort. */
#define LEAK_NO_SANITIZE __attribute__((noinline, no_sanitize_address, no_sanitize_undefined))

/* SIGSEGV: a store to address 0.  The address is read from a volatile so the compiler cannot prove
 * it null and drop the store as undefined behaviour (GCC does, for a plain null pointer). */
LEAK_NO_SANITIZE static void crash_segv(void) {
  volatile uintptr_t address = 0;
  *(volatile int *)address = 42;
  raise(SIGSEGV);
}

/* SIGFPE: an integer division by a zero the compiler cannot see; raise() if the CPU did not trap. */
LEAK_NO_SANITIZE static void crash_fpe(void) {
  volatile int zero = 0;
  volatile int result = 1 / zero;
  (void)result;
  raise(SIGFPE);
}

/* SIGBUS: a read past the end of a file through a shared mapping of a page the file no longer has. */
LEAK_NO_SANITIZE static int crash_bus(void) {
  char path[] = "/tmp/libleak-sigbus-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -errno;
  unlink(path);
  long page = sysconf(_SC_PAGESIZE);
  if (ftruncate(fd, page) < 0) {
    close(fd);
    return -errno;
  }
  volatile char *map = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    close(fd);
    return -errno;
  }
  if (ftruncate(fd, 0) < 0) {
    close(fd);
    return -errno;
  }
  volatile char value = map[0];
  (void)value;
  raise(SIGBUS);
  return 0;
}

/* SIGILL: an instruction the CPU refuses (ud2 on x86). */
LEAK_NO_SANITIZE static void crash_ill(void) {
  __builtin_trap();
}

/* _test_crash(name): TEST-ONLY.  Kills the process with a real fault so the tests can check what the
 * fatal-signal handlers print: 'segv', 'abort', 'fpe', 'bus' or 'ill'.  Never call it otherwise. */
static PyObject *faults_test_crash(PyObject *self, PyObject *args) {
  const char *name;
  if (!PyArg_ParseTuple(args, "s:_test_crash", &name)) return NULL;
  if (strcmp(name, "segv") == 0) {
    crash_segv();
  } else if (strcmp(name, "abort") == 0) {
    abort();
  } else if (strcmp(name, "fpe") == 0) {
    crash_fpe();
  } else if (strcmp(name, "bus") == 0) {
    int rc = crash_bus();
    if (rc < 0) {
      errno = -rc;
      return PyErr_SetFromErrno(PyExc_OSError);
    }
  } else if (strcmp(name, "ill") == 0) {
    crash_ill();
  } else {
    return PyErr_Format(PyExc_ValueError, "expected 'segv', 'abort', 'fpe', 'bus' or 'ill', got %R",
                        PyTuple_GET_ITEM(args, 0));
  }
  /* Still alive: a handler returned without re-raising, or the signal is ignored. */
  PyErr_Format(leak__py_error, "the %s crash did not kill the process", name);
  return NULL;
}

/* The flags and the fatal signals, so the Python module never hard-codes C values. */
static int faults_init(PyObject *module) {
  if (PyModule_AddIntConstant(module, "DUMP_ALL_THREADS", LEAK_DUMP_ALL_THREADS) < 0 ||
      PyModule_AddIntConstant(module, "DUMP_REPEAT", LEAK_DUMP_REPEAT) < 0 ||
      PyModule_AddIntConstant(module, "DUMP_EXIT", LEAK_DUMP_EXIT) < 0 ||
      PyModule_AddIntConstant(module, "DUMP_CHAIN", LEAK_DUMP_CHAIN) < 0)
    return -1;
  PyObject *fatal = Py_BuildValue("(iiiii)", SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL);
  if (fatal == NULL) return -1;
  if (PyModule_AddObject(module, "FATAL_SIGNALS", fatal) < 0) {
    Py_DECREF(fatal);
    return -1;
  }
  return PyModule_AddIntConstant(module, "NSIG", NSIG);
}

static PyMethodDef faults_methods[] = {
    {"faults_set_dump_arguments", faults_set_dump_arguments, METH_O,
     "faults_set_dump_arguments(function): function(file, all_threads) -> (fd, flags, file_to_keep)."},
    {"dump_traceback", (PyCFunction)(void (*)(void))faults_dump_traceback, METH_VARARGS | METH_KEYWORDS,
     "dump_traceback($module, /, file=None, all_threads=True)\n--\n\n"
     "Writes the stacks now: every thread, in faulthandler's order (the newest first, the main\n"
     "thread last, the calling one marked \"Current thread\"), or, with all_threads=False, only the\n"
     "calling one.  file is a file object or a file descriptor; None means sys.stderr.\n"
     "\n"
     "Example::\n"
     "\n"
     "    >>> import libleak.faults, tempfile\n"
     "    >>> with tempfile.TemporaryFile(\"w+\") as out:\n"
     "    ...     libleak.faults.dump_traceback(out, all_threads=False)\n"
     "    ...     _ = out.seek(0)\n"
     "    ...     out.readline()\n"
     "    'Stack (most recent call first):\\n'\n"},
    {"faults_enable", faults_enable, METH_VARARGS, "faults_enable(fd, flags): dump on fatal signals."},
    {"faults_disable", faults_disable, METH_NOARGS, "faults_disable() -> bool: True if it was enabled."},
    {"faults_is_enabled", faults_is_enabled, METH_NOARGS, "faults_is_enabled() -> bool."},
    {"faults_register", faults_register, METH_VARARGS, "faults_register(signum, fd, flags): dump on signum."},
    {"faults_unregister", faults_unregister, METH_VARARGS, "faults_unregister(signum) -> bool."},
    {"faults_dump_later", faults_dump_later, METH_VARARGS,
     "faults_dump_later(timeout, fd, flags): the process-wide watchdog (replaced by each call)."},
    {"faults_dump_later_cancel", faults_dump_later_cancel, METH_NOARGS, "faults_dump_later_cancel()."},
    {"faults_watchdog_start", faults_watchdog_start, METH_VARARGS,
     "faults_watchdog_start(timeout, fd, flags) -> handle: a watchdog of its own."},
    {"faults_watchdog_cancel", faults_watchdog_cancel, METH_O, "faults_watchdog_cancel(handle)."},
    {"faults_get_limits", faults_get_limits, METH_NOARGS,
     "faults_get_limits() -> (max_frames, max_threads, main_thread_first)."},
    {"faults_set_limits", faults_set_limits, METH_VARARGS,
     "faults_set_limits(max_frames, max_threads, main_thread_first)."},
    {"_test_crash", faults_test_crash, METH_VARARGS,
     "_test_crash(name): TEST-ONLY, kills the process with 'segv', 'abort', 'fpe', 'bus' or 'ill'."},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_faults_area = {faults_methods, faults_init};
