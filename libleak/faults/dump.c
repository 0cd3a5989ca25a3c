/* The stack dumper.  Read faults/dump.h first.
 *
 * Rules for every function here except leak__dump_remember_interp and leak_dump_set_limits:
 * async-signal-safe.  No allocation, no locks, no Python API other than PyInterpreterState_ThreadHead,
 * PyThreadState_Next, PyDict_Next and PyModule_GetDef (plain field reads, used by faulthandler in its
 * handlers too) and the type checks; output only through core/sigsafe.h.  Reading another thread's frames while it runs is racy, exactly as it
 * is for faulthandler: the dump is a best effort that must never crash the host itself. */
#include "core/internal.h"
#include "faults/dump.h"
#include "core/frames.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* faulthandler changed details of its output over the versions: in 3.10 "<no Python frame>" got
 * the two-space indent of a frame line and the current thread says "  Garbage-collecting" during a
 * collection; in 3.13 SIGFPE became "Floating-point exception".  This is output format, not
 * interpreter layout, so these are the only version tests outside frames.c, kept together here. */
#define FAULTHANDLER_FORMAT_310 (PY_VERSION_HEX >= 0x030A0000)
#define FAULTHANDLER_FPE_NAME (PY_VERSION_HEX >= 0x030D0000 ? "Floating-point exception" : "Floating point exception")

/* The names faulthandler gives the fatal signals in "Fatal Python error: ...". */
const char *leak__dump_fatal_name(int signum) {
  switch (signum) {
    case SIGSEGV: return "Segmentation fault";
    case SIGFPE: return FAULTHANDLER_FPE_NAME;
    case SIGABRT: return "Aborted";
    case SIGBUS: return "Bus error";
    case SIGILL: return "Illegal instruction";
  }
  return "Unknown signal";
}

/* Walking a list or a stack longer than this means it is corrupted (or cyclic): stop counting. */
#define WALK_CAP (1L << 24)

/* The limits of every dump (faulthandler's are 100 and 100, in interpreter order).  Written by
 * leak_dump_set_limits and read by dumps in handlers and the watchdog thread: each is one int,
 * accessed atomically. */
static int max_frames = 100;
static int max_threads = 100;
static int main_thread_first = 0;

/* The interpreter recorded by leak__dump_remember_interp; atomic pointer, no lock (handlers read it). */
static PyInterpreterState *remembered_interp;

/* Hosts change how much a dump prints; a dump already running may see either value. */
int leak_dump_set_limits(const leak_dump_limits *limits) {
  if (limits == NULL || limits->max_frames < 1 || limits->max_threads < 1) return LEAK_EINVAL;
  __atomic_store_n(&max_frames, limits->max_frames, __ATOMIC_RELAXED);
  __atomic_store_n(&max_threads, limits->max_threads, __ATOMIC_RELAXED);
  __atomic_store_n(&main_thread_first, limits->main_thread_first ? 1 : 0, __ATOMIC_RELAXED);
  return 0;
}

/* The Python layer's get_limits() reads them back. */
int leak_dump_get_limits(leak_dump_limits *limits) {
  if (limits == NULL) return LEAK_EINVAL;
  limits->max_frames = __atomic_load_n(&max_frames, __ATOMIC_RELAXED);
  limits->max_threads = __atomic_load_n(&max_threads, __ATOMIC_RELAXED);
  limits->main_thread_first = __atomic_load_n(&main_thread_first, __ATOMIC_RELAXED);
  return 0;
}

/* A handler cannot ask Python which interpreter to dump, so the question is answered beforehand
 * by whoever installs it, as faulthandler records its interpreter at enable(). */
void leak__dump_remember_interp(void) {
  PyThreadState *tstate = leak__frames_this_thread();
  PyInterpreterState *interp = tstate ? leak__frames_interpreter(tstate) : leak__frames_main_interpreter();
  if (interp != NULL) __atomic_store_n(&remembered_interp, interp, __ATOMIC_RELEASE);
}

/* See dump.h: the recorded interpreter, falling back to the main one. */
PyInterpreterState *leak__dump_interp(void) {
  PyInterpreterState *interp = __atomic_load_n(&remembered_interp, __ATOMIC_ACQUIRE);
  return interp ? interp : leak__frames_main_interpreter();
}

/* "  File "x.py", line 12 in f", with "???" where faulthandler prints it. */
static void dump_frame(leak__sigsafe_out *out, const leak__frame *frame) {
  PyCodeObject *code = frame->code;
  leak__sigsafe_puts(out, "  File ");
  if (code->co_filename != NULL && PyUnicode_Check(code->co_filename)) {
    leak__sigsafe_puts(out, "\"");
    leak__sigsafe_unicode(out, code->co_filename);
    leak__sigsafe_puts(out, "\"");
  } else {
    leak__sigsafe_puts(out, "???");
  }
  leak__sigsafe_puts(out, ", line ");
  int lineno = leak__frame_lineno(code, frame->lasti);
  if (lineno >= 0)
    leak__sigsafe_decimal(out, (unsigned long long)lineno);
  else
    leak__sigsafe_puts(out, "???");
  leak__sigsafe_puts(out, " in ");
  if (code->co_name != NULL && PyUnicode_Check(code->co_name))
    leak__sigsafe_unicode(out, code->co_name);
  else
    leak__sigsafe_puts(out, "???");
  leak__sigsafe_puts(out, "\n");
  leak__sigsafe_flush(out);
}

/* How many frames of another thread are read before any is written, and how often its stack is read
 * again when the thread returned from one of them meanwhile.  The frames sit on the dumper's stack,
 * which may be a signal handler's alternate stack: 64 of them take 1 KiB. */
#define SETTLED_FRAMES 64
#define SETTLE_RESTARTS 10

/* Reads the first frames of `tstate` into `frames` (at most `want`) and returns how many; the cursor
 * is left after them.  Another thread may return from a frame while it is read: its stack is read
 * again from the top, so that a dump never shows half of a stack that is gone. */
static int read_settled_frames(PyThreadState *tstate, leak__frame_cursor *cursor, leak__frame *frames, int want) {
  /* A watchdog or a signal may catch a thread mid-call; only another thread can move on meanwhile. */
  int own = leak__frames_thread_id(tstate) == (unsigned long)pthread_self();
  int got = 0;
  for (int attempt = 0; attempt <= SETTLE_RESTARTS; attempt++) {
    if (own)
      leak__frames_begin_interrupted(cursor, tstate);
    else
      leak__frames_begin_running(cursor, tstate);
    for (got = 0; got < want && leak__frames_next(cursor, &frames[got]);) got++;
    if (got == want || !leak__frames_lost(cursor)) break;
  }
  return got;
}

/* The frames of one thread, innermost first, cut at the frame limit; what is cut is counted so
 * the reader knows how deep the stack really was ("  ... 37 more frames"). */
static void dump_frames(leak__sigsafe_out *out, PyThreadState *tstate) {
  int limit = __atomic_load_n(&max_frames, __ATOMIC_RELAXED);
  leak__frame_cursor cursor;
  leak__frame frames[SETTLED_FRAMES], frame;
  int settled = read_settled_frames(tstate, &cursor, frames, limit < SETTLED_FRAMES ? limit : SETTLED_FRAMES);
  if (settled == 0) {
    leak__sigsafe_puts(out, FAULTHANDLER_FORMAT_310 ? "  <no Python frame>\n" : "<no Python frame>\n");
    leak__sigsafe_flush(out);
    return;
  }
  for (int i = 0; i < settled; i++) dump_frame(out, &frames[i]);
  int printed = settled;
  /* Past the settled frames (a limit above SETTLED_FRAMES), the walk goes on as it reads. */
  while (printed < limit && leak__frames_next(&cursor, &frame)) {
    dump_frame(out, &frame);
    printed++;
  }
  if (printed < limit) return;
  long more = 0;
  while (more < WALK_CAP && leak__frames_next(&cursor, &frame)) more++;
  if (more == 0) return;
  leak__sigsafe_puts(out, "  ... ");
  leak__sigsafe_decimal(out, (unsigned long long)more);
  leak__sigsafe_puts(out, more == 1 ? " more frame\n" : " more frames\n");
  leak__sigsafe_flush(out);
}

/* "Current thread 0x00007f... (most recent call first):" then the stack; the id is padded to the
 * width of an unsigned long, as every faulthandler version does. */
static void dump_thread(leak__sigsafe_out *out, PyThreadState *tstate, int is_current) {
  leak__sigsafe_puts(out, is_current ? "Current thread 0x" : "Thread 0x");
  leak__sigsafe_hex(out, leak__frames_thread_id(tstate), (int)sizeof(unsigned long) * 2);
  leak__sigsafe_puts(out, " (most recent call first):\n");
  if (FAULTHANDLER_FORMAT_310 && is_current && leak__frames_gc_collecting(tstate))
    leak__sigsafe_puts(out, "  Garbage-collecting\n");
  leak__sigsafe_flush(out);
  dump_frames(out, tstate);
}

/* The main thread is looked up by its OS thread id.  A host may create more thread states in its
 * main thread; then the one running the dump wins, else the oldest (the last in the list, which
 * is newest first), the one made when Python started. */
static PyThreadState *find_main_thread(PyThreadState *head, PyThreadState *current) {
  unsigned long main_id = leak__frames_main_thread_id();
  PyThreadState *found = NULL;
  long steps = 0;
  for (PyThreadState *t = head; t != NULL && steps < WALK_CAP; t = PyThreadState_Next(t), steps++) {
    if (leak__frames_thread_id(t) != main_id) continue;
    if (t == current) return t;
    found = t;
  }
  return found;
}

/* faulthandler's order is the interpreter's (newest first, so the main thread comes last), and a
 * drop-in keeps it; hosts that prefer the main thread on top ask for it in the limits.  A cut keeps
 * the threads a reader looks for first, the current one and the main one, wherever they are, and
 * counts the others it leaves out.  Two walks of the list, no storage: the first finds the main
 * thread and whether `current` is listed, which tells how many other threads fit. */
int leak__dump_all_threads(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *current) {
  if (interp == NULL) return LEAK_ENOPYTHON;
  PyThreadState *head = PyInterpreterState_ThreadHead(interp);
  if (head == NULL) return LEAK_ENOPYTHON;
  int limit = __atomic_load_n(&max_threads, __ATOMIC_RELAXED);
  int main_first = __atomic_load_n(&main_thread_first, __ATOMIC_RELAXED);
  PyThreadState *main_thread = find_main_thread(head, current);
  int current_listed = 0;
  long steps = 0;
  for (PyThreadState *t = head; t != NULL && steps < WALK_CAP; t = PyThreadState_Next(t), steps++)
    if (t == current) current_listed = 1;
  long kept = (main_thread != NULL) + (current_listed && current != main_thread);
  long others_allowed = limit > kept ? limit - kept : 0;
  long others = 0, more = 0;
  int printed = 0;
  if (main_first && main_thread != NULL) {
    dump_thread(out, main_thread, main_thread == current);
    printed++;
  }
  steps = 0;
  for (PyThreadState *t = head; t != NULL && steps < WALK_CAP; t = PyThreadState_Next(t), steps++) {
    if (main_first && t == main_thread) continue;
    if (t != main_thread && t != current) {
      if (others >= others_allowed) {
        more++;
        continue;
      }
      others++;
    }
    if (printed > 0) leak__sigsafe_puts(out, "\n");
    dump_thread(out, t, t == current);
    printed++;
  }
  if (more > 0) {
    leak__sigsafe_puts(out, "\n... ");
    leak__sigsafe_decimal(out, (unsigned long long)more);
    leak__sigsafe_puts(out, more == 1 ? " more thread\n" : " more threads\n");
  }
  return leak__sigsafe_flush(out);
}


/* The character at `i` of text of that kind. */
static uint32_t unicode_char(const void *data, unsigned kind, Py_ssize_t i) {
  return kind == 1 ? ((const uint8_t *)data)[i] : kind == 2 ? ((const uint16_t *)data)[i] : ((const uint32_t *)data)[i];
}

/* str == str by characters (a str keeps its text in the narrowest kind that holds it, but the
 * characters are compared one by one so that nothing depends on it). */
static int unicode_equal(PyObject *a, PyObject *b) {
  unsigned kind_a, kind_b;
  Py_ssize_t length_a, length_b;
  const void *data_a = leak__sigsafe_unicode_data(a, &kind_a, &length_a);
  const void *data_b = leak__sigsafe_unicode_data(b, &kind_b, &length_b);
  if (data_a == NULL || data_b == NULL || length_a != length_b) return 0;
  for (Py_ssize_t i = 0; i < length_a; i++)
    if (unicode_char(data_a, kind_a, i) != unicode_char(data_b, kind_b, i)) return 0;
  return 1;
}

/* str == ASCII C string. */
static int unicode_equal_ascii(PyObject *a, const char *b) {
  unsigned kind;
  Py_ssize_t length;
  const void *data = leak__sigsafe_unicode_data(a, &kind, &length);
  if (data == NULL) return 0;
  Py_ssize_t i = 0;
  for (; i < length && b[i] != '\0'; i++)
    if (unicode_char(data, kind, i) != (unsigned char)b[i]) return 0;
  return i == length && b[i] == '\0';
}

/* sys.stdlib_module_names, found by walking sys.__dict__ (a lookup by name would have to make a str
 * object); NULL when missing or not a frozenset, and then no module counts as standard, as in
 * CPython. */
static PyObject *find_stdlib_names(PyInterpreterState *interp) {
  PyObject *sysdict = leak__frames_sys_dict(interp);
  if (sysdict == NULL || !PyDict_Check(sysdict)) return NULL;
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  while (PyDict_Next(sysdict, &pos, &key, &value))
    if (PyUnicode_Check(key) && unicode_equal_ascii(key, "stdlib_module_names"))
      return PyFrozenSet_Check(value) ? value : NULL;
  return NULL;
}

/* `name` is one of the frozenset's str items. */
static int set_has_str(PyObject *set, PyObject *name) {
  Py_ssize_t pos = 0;
  PyObject *item;
  while (leak__frames_set_next(set, &pos, &item))
    if (PyUnicode_Check(item) && unicode_equal(item, name)) return 1;
  return 0;
}

/* What CPython calls an extension module: a module object made from a definition that has
 * methods (modules written in Python have no definition). */
static int is_extension_module(PyObject *module) {
  if (!PyModule_Check(module)) return 0;
  PyModuleDef *def = PyModule_GetDef(module);
  return def != NULL && def->m_methods != NULL;
}

/* See dump.h.  PyDict_Next, PyModule_GetDef and the type checks read fields and never allocate;
 * the list is unsorted because sorting would need memory. */
int leak__dump_extension_modules(leak__sigsafe_out *out, PyInterpreterState *interp) {
  if (!FAULTHANDLER_FORMAT_310 || interp == NULL) return 0;
  PyObject *modules = leak__frames_sys_modules(interp);
  if (modules == NULL || !PyDict_Check(modules)) return 0;
  PyObject *stdlib_names = find_stdlib_names(interp);
  Py_ssize_t pos = 0;
  PyObject *name, *module;
  unsigned long long count = 0;
  while (PyDict_Next(modules, &pos, &name, &module)) {
    if (!PyUnicode_Check(name) || !is_extension_module(module)) continue;
    if (stdlib_names != NULL && set_has_str(stdlib_names, name)) continue;
    leak__sigsafe_puts(out, count == 0 ? "\nExtension modules: " : ", ");
    leak__sigsafe_unicode(out, name);
    leak__sigsafe_flush(out);
    count++;
  }
  if (count > 0) {
    leak__sigsafe_puts(out, " (total: ");
    leak__sigsafe_decimal(out, count);
    leak__sigsafe_puts(out, ")\n");
  }
  return leak__sigsafe_flush(out);
}

/* The kernel id of the thread writing a dump, 0 when none.  Changed only by compare-and-swap
 * (leak__dump_guard_take) and by its holder (leak__dump_guard_release). */
static pid_t guard_owner;

/* A holder that is not a thread of this process any more left the guard taken for good: the
 * process forked while another thread was dumping, and the child has only the forking thread.
 * tgkill with signal 0 only asks whether the thread exists; it is async-signal-safe. */
static int thread_exists(pid_t tid) {
  return syscall(SYS_tgkill, (long)getpid(), (long)tid, 0L) == 0 || errno != ESRCH;
}

/* See dump.h.  errno is preserved: signal handlers call this. */
int leak__dump_guard_take(long max_wait_ms) {
  int saved_errno = errno;
  pid_t self = (pid_t)syscall(SYS_gettid);
  long waited_ms = 0;
  int result;
  for (;;) {
    pid_t owner = 0;
    if (__atomic_compare_exchange_n(&guard_owner, &owner, self, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      result = LEAK_DUMP_GUARD_TAKEN;
      break;
    }
    if (owner == self) {
      result = LEAK_DUMP_GUARD_MINE;
      break;
    }
    if (!thread_exists(owner)) {
      if (__atomic_compare_exchange_n(&guard_owner, &owner, self, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        result = LEAK_DUMP_GUARD_TAKEN;
        break;
      }
      continue;
    }
    if (max_wait_ms >= 0 && waited_ms >= max_wait_ms) {
      result = LEAK_DUMP_GUARD_BUSY;
      break;
    }
    struct timespec pause = {0, 1000000L};
    nanosleep(&pause, NULL);
    waited_ms++;
  }
  errno = saved_errno;
  return result;
}

/* See dump.h. */
void leak__dump_guard_release(void) { __atomic_store_n(&guard_owner, 0, __ATOMIC_RELEASE); }

/* faulthandler's dump_traceback(all_threads=False) and its fatal handler without all_threads. */
int leak__dump_current_thread(leak__sigsafe_out *out, PyThreadState *tstate) {
  leak__sigsafe_puts(out, "Stack (most recent call first):\n");
  leak__sigsafe_flush(out);
  dump_frames(out, tstate);
  return leak__sigsafe_flush(out);
}

/* True when `tstate` is one of `interp`'s threads: a pointer compare only, so a thread state that
 * left the list (and may be freed) is never read. */
static int thread_is_listed(PyInterpreterState *interp, PyThreadState *tstate) {
  long steps = 0;
  for (PyThreadState *t = PyInterpreterState_ThreadHead(interp); t != NULL && steps < WALK_CAP;
       t = PyThreadState_Next(t), steps++)
    if (t == tstate) return 1;
  return 0;
}

/* An owed dump of a signal that another thread received shows that thread's stack, if it still
 * runs. */
int leak__dump_current_thread_if_alive(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *tstate) {
  if (interp == NULL) return LEAK_ENOPYTHON;
  if (!thread_is_listed(interp, tstate)) return LEAK_ENOENT;
  return leak__dump_current_thread(out, tstate);
}

/* A watchdog may outlive the thread that armed it; a thread state that left the interpreter's list
 * may already be freed, so it is only compared, never read, until it is found in the list. */
int leak__dump_thread_if_alive(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *tstate) {
  if (interp == NULL) return LEAK_ENOPYTHON;
  if (!thread_is_listed(interp, tstate)) return LEAK_ENOENT;
  dump_thread(out, tstate, 0);
  return leak__sigsafe_flush(out);
}

/* The calling thread is the "current" one: faulthandler.dump_traceback semantics, usable from a
 * host's own signal handler or a thread that does not hold the GIL.  It waits for a dump another
 * thread is writing, and refuses (LEAK_EBUSY) to cut into one its own thread was writing when a
 * signal interrupted it. */
int leak_dump_stacks(int fd, unsigned flags) {
  if (fd < 0) return LEAK_EBADF;
  PyThreadState *current = leak__frames_this_thread();
  if (!(flags & LEAK_DUMP_ALL_THREADS) && current == NULL) return LEAK_ENOPYTHON;
  int guard = leak__dump_guard_take(-1);
  if (guard == LEAK_DUMP_GUARD_MINE) return LEAK_EBUSY;
  leak__sigsafe_out out;
  leak__sigsafe_init(&out, fd);
  int rc;
  if (flags & LEAK_DUMP_ALL_THREADS) {
    PyInterpreterState *interp = current ? leak__frames_interpreter(current) : leak__dump_interp();
    rc = leak__dump_all_threads(&out, interp, current);
  } else {
    rc = leak__dump_current_thread(&out, current);
  }
  leak__dump_guard_release();
  leak__faults_write_owed_dumps();
  return rc;
}
