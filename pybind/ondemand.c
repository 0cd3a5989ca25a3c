/* The on-demand area of _libleak: a signal that wakes libleak.ondemand's thread (faults/wakeup.h),
 * and the all-thread stacks written to a dump file by that thread before it takes the GIL.
 *
 * Thin on purpose: libleak/ondemand.py owns the pipe, the thread, fork and every other dump file;
 * this glue only does what Python cannot: install the handler, and wait and write the stacks with
 * the GIL released, so the stacks are on disk even when another thread keeps the GIL for good
 * (stuck in C code that never lets it go). */
#include "glue.h"
#include "faults/wakeup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ondemand_install(signum, fd): the handler of `signum` writes a byte to `fd`. */
static PyObject *ondemand_install(PyObject *self, PyObject *args) {
  int signum, fd;
  if (!PyArg_ParseTuple(args, "ii:ondemand_install", &signum, &fd)) return NULL;
  int rc = leak__wakeup_install(signum, fd);
  if (rc == LEAK_EBUSY) {
    PyErr_Format(PyExc_ValueError, "signal %d: another signal (%d) already wakes the dump thread", signum,
                 leak__wakeup_signal());
    return NULL;
  }
  if (rc == LEAK_EINVAL) {
    PyErr_Format(PyExc_ValueError, "signal %d cannot be used for on-demand dumps", signum);
    return NULL;
  }
  if (rc < 0) return leak__py_raise(rc, "ondemand_install");
  Py_RETURN_NONE;
}

/* ondemand_set_fd(fd): the installed handler writes to `fd` from now on (the child's pipe after fork). */
static PyObject *ondemand_set_fd(PyObject *self, PyObject *args) {
  int fd;
  if (!PyArg_ParseTuple(args, "i:ondemand_set_fd", &fd)) return NULL;
  int rc = leak__wakeup_set_fd(fd);
  if (rc < 0) return leak__py_raise(rc, "ondemand_set_fd");
  Py_RETURN_NONE;
}

/* ondemand_uninstall() -> bool: puts the previous handler back. */
static PyObject *ondemand_uninstall(PyObject *self, PyObject *unused) {
  return PyBool_FromLong(leak__wakeup_uninstall());
}

/* ondemand_signal() -> int: the signal installed now, 0 for none. */
static PyObject *ondemand_signal(PyObject *self, PyObject *unused) { return PyLong_FromLong(leak__wakeup_signal()); }

/* The stem of one dump's files, "<directory>/libleak-<pid>-<UTC time>", into `stem` (`size`
 * bytes).  A stem whose stacks file exists already (two dumps in one second) gets "-2", "-3", ...
 * Returns 0, or ENAMETOOLONG / EEXIST. */
static int dump_stem(const char *directory, char *stem, size_t size) {
  char stamp[32];
  time_t now = time(NULL);
  struct tm utc;
  if (gmtime_r(&now, &utc) == NULL || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc) == 0)
    snprintf(stamp, sizeof stamp, "%lld", (long long)now);
  for (int attempt = 1; attempt < 1000; attempt++) {
    char suffix[16] = "";
    if (attempt > 1) snprintf(suffix, sizeof suffix, "-%d", attempt);
    int len = snprintf(stem, size, "%s/libleak-%ld-%s%s", directory, (long)getpid(), stamp, suffix);
    if (len < 0 || (size_t)len + sizeof "-stacks.txt.tmp" > size) return ENAMETOOLONG;
    char stacks[PATH_MAX + 64];
    snprintf(stacks, sizeof stacks, "%s-stacks.txt", stem);
    if (access(stacks, F_OK) != 0) return 0;
  }
  return EEXIST;
}

/* Writes every thread's stacks (faulthandler's format) to "<stem>-stacks.txt": into a temporary
 * file first, renamed when complete, so a reader never sees half a dump.  Runs without the GIL
 * (leak_dump_stacks needs none).  Returns 0 or an errno value. */
static int write_stacks_file(const char *stem) {
  char path[PATH_MAX + 64], tmp[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s-stacks.txt", stem);
  snprintf(tmp, sizeof tmp, "%s-stacks.txt.tmp", stem);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return errno;
  int rc = leak_dump_stacks(fd, LEAK_DUMP_ALL_THREADS);
  int error = rc == LEAK_EIO || rc == LEAK_EBADF ? -rc : 0;
  if (close(fd) != 0 && error == 0) error = errno;
  if (error == 0 && rename(tmp, path) != 0) error = errno;
  if (error != 0) unlink(tmp);
  return error;
}

/* Picks the stem and writes the stacks file; call it without the GIL.  Returns 0 with the errno
 * value of the stacks file in *stacks_error, or the errno value that left no stem. */
static int stacks_now(const char *directory, char *stem, size_t size, int *stacks_error) {
  int error = dump_stem(directory, stem, size);
  if (error == 0) *stacks_error = write_stacks_file(stem);
  return error;
}

/* The (stem, stacks_errno) tuple, or OSError when no stem could be made. */
static PyObject *stacks_result(const char *directory, int stem_error, const char *stem, int stacks_error) {
  if (stem_error != 0) {
    errno = stem_error;
    return PyErr_SetFromErrnoWithFilename(PyExc_OSError, directory);
  }
  return Py_BuildValue("(O&i)", PyUnicode_DecodeFSDefault, stem, stacks_error);
}

/* The read end the dump thread is blocked on, without the GIL, now (-1: none), and how many times
 * a thread entered that wait.  Set by ondemand_wait once the GIL is released; read by
 * ondemand_wait_started.  Atomic ints, so no lock is held across fork. */
static int waiting_fd = -1;
static unsigned long wait_entries;

/* ondemand_wait_entries() -> int: how many times a thread entered its wait so far. */
static PyObject *ondemand_wait_entries(PyObject *self, PyObject *unused) {
  return PyLong_FromUnsignedLong(__atomic_load_n(&wait_entries, __ATOMIC_ACQUIRE));
}

/* ondemand_wait_started(read_fd, entries_before, timeout) -> bool: waits (without the GIL, up to
 * `timeout` seconds, checking every millisecond) until a thread entered its wait on `read_fd`, with
 * the GIL released, since ondemand_wait_entries() returned `entries_before`.  install() calls it
 * before returning: a thread that has not reached its wait yet needs the GIL to get there, and a
 * program that then keeps the GIL in C for good (a runaway regular expression, a C loop) would
 * leave it stuck with the signal's byte unread; and after a change of directory, the thread must
 * wait again with the new one before a signal comes. */
static PyObject *ondemand_wait_started(PyObject *self, PyObject *args) {
  int fd;
  unsigned long before;
  double timeout;
  if (!PyArg_ParseTuple(args, "ikd:ondemand_wait_started", &fd, &before, &timeout)) return NULL;
  int started;
  Py_BEGIN_ALLOW_THREADS
  long checks = timeout > 0 ? (long)(timeout * 1000.0) : 0;
  for (;;) {
    started = __atomic_load_n(&waiting_fd, __ATOMIC_ACQUIRE) == fd &&
              __atomic_load_n(&wait_entries, __ATOMIC_ACQUIRE) != before;
    if (started || checks-- <= 0) break;
    struct timespec millisecond = {0, 1000000};
    nanosleep(&millisecond, NULL);
  }
  Py_END_ALLOW_THREADS
  return PyBool_FromLong(started);
}

/* ondemand_wait(read_fd, directory) -> None, False or (stem, stacks_errno): blocks, without the
 * GIL, until bytes arrive on `read_fd`.  For the signal's byte, it writes the stacks file, still
 * without the GIL (the stacks show what every thread was doing, the one that may hold the GIL
 * included), and returns the stem the other files of this dump are named after, with 0 or the
 * errno value of a failed stacks file.  False when only other bytes came (the directory changed:
 * wait again with the new one); None when the write end was closed: the thread should end.
 * OSError when read fails or the stem cannot be made. */
static PyObject *ondemand_wait(PyObject *self, PyObject *args) {
  int fd;
  PyObject *directory_bytes;
  if (!PyArg_ParseTuple(args, "iO&:ondemand_wait", &fd, PyUnicode_FSConverter, &directory_bytes)) return NULL;
  const char *directory = PyBytes_AS_STRING(directory_bytes);
  char stem[PATH_MAX];
  int rc, stem_error = 0, stacks_error = 0;
  Py_BEGIN_ALLOW_THREADS
  __atomic_store_n(&waiting_fd, fd, __ATOMIC_RELEASE);
  __atomic_add_fetch(&wait_entries, 1, __ATOMIC_ACQ_REL);
  rc = leak__wakeup_wait(fd);
  __atomic_store_n(&waiting_fd, -1, __ATOMIC_RELEASE);
  if (rc == LEAK_WAKEUP_SIGNALLED) stem_error = stacks_now(directory, stem, sizeof stem, &stacks_error);
  Py_END_ALLOW_THREADS
  PyObject *result;
  if (rc < 0)
    result = leak__py_raise(rc, "ondemand_wait");
  else if (rc == LEAK_WAKEUP_CLOSED)
    result = Py_NewRef(Py_None);
  else if (rc == LEAK_WAKEUP_OTHER)
    result = Py_NewRef(Py_False);
  else
    result = stacks_result(directory, stem_error, stem, stacks_error);
  Py_DECREF(directory_bytes);
  return result;
}

/* ondemand_write_stacks(directory) -> (stem, stacks_errno): a dump asked for from Python
 * (libleak.ondemand.dump), named and written as a signal's would be. */
static PyObject *ondemand_write_stacks(PyObject *self, PyObject *args) {
  PyObject *directory_bytes;
  if (!PyArg_ParseTuple(args, "O&:ondemand_write_stacks", PyUnicode_FSConverter, &directory_bytes)) return NULL;
  const char *directory = PyBytes_AS_STRING(directory_bytes);
  char stem[PATH_MAX];
  int stem_error, stacks_error = 0;
  Py_BEGIN_ALLOW_THREADS
  stem_error = stacks_now(directory, stem, sizeof stem, &stacks_error);
  Py_END_ALLOW_THREADS
  PyObject *result = stacks_result(directory, stem_error, stem, stacks_error);
  Py_DECREF(directory_bytes);
  return result;
}

static PyMethodDef ondemand_methods[] = {
    {"ondemand_install", ondemand_install, METH_VARARGS, "ondemand_install(signum, fd): signum writes a byte to fd."},
    {"ondemand_set_fd", ondemand_set_fd, METH_VARARGS, "ondemand_set_fd(fd): the installed handler writes to fd."},
    {"ondemand_uninstall", ondemand_uninstall, METH_NOARGS, "ondemand_uninstall() -> bool."},
    {"ondemand_signal", ondemand_signal, METH_NOARGS, "ondemand_signal() -> the installed signal or 0."},
    {"ondemand_wait", ondemand_wait, METH_VARARGS,
     "ondemand_wait(read_fd, directory) -> None or (stem, stacks_errno): waits for the signal, writes the stacks."},
    {"ondemand_wait_entries", ondemand_wait_entries, METH_NOARGS,
     "ondemand_wait_entries() -> int: how many times a dump thread entered its wait."},
    {"ondemand_wait_started", ondemand_wait_started, METH_VARARGS,
     "ondemand_wait_started(read_fd, entries_before, timeout) -> bool: a dump thread waits on read_fd anew."},
    {"ondemand_write_stacks", ondemand_write_stacks, METH_VARARGS,
     "ondemand_write_stacks(directory) -> (stem, stacks_errno): a dump's stacks file now."},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_ondemand_area = {ondemand_methods, NULL};
