/* The stack dumper.  Read faults/dump.h first.
 *
 * Rules for every function here except leak__dump_remember_interp and leak_dump_set_limits:
 * async-signal-safe.  No allocation, no locks, no Python API other than PyInterpreterState_ThreadHead
 * and PyThreadState_Next (plain field reads, used by faulthandler in its handlers too); output only
 * through core/sigsafe.h.  Reading another thread's frames while it runs is racy, exactly as it
 * is for faulthandler: the dump is a best effort that must never crash the host itself. */
#include "core/internal.h"
#include "faults/dump.h"
#include "core/frames.h"

#include <signal.h>

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

/* The limits of every dump (faulthandler's are 100 and 100).  Written by leak_dump_set_limits and
 * read by dumps in handlers and the watchdog thread: each is one int, accessed atomically. */
static int max_frames = 100;
static int max_threads = 100;

/* The interpreter recorded by leak__dump_remember_interp; atomic pointer, no lock (handlers read it). */
static PyInterpreterState *remembered_interp;

/* Hosts change how much a dump prints; a dump already running may see either value. */
int leak_dump_set_limits(const leak_dump_limits *limits) {
  if (limits == NULL || limits->max_frames < 1 || limits->max_threads < 1) return LEAK_EINVAL;
  __atomic_store_n(&max_frames, limits->max_frames, __ATOMIC_RELAXED);
  __atomic_store_n(&max_threads, limits->max_threads, __ATOMIC_RELAXED);
  return 0;
}

/* The Python layer's get_limits() reads them back. */
int leak_dump_get_limits(leak_dump_limits *limits) {
  if (limits == NULL) return LEAK_EINVAL;
  limits->max_frames = __atomic_load_n(&max_frames, __ATOMIC_RELAXED);
  limits->max_threads = __atomic_load_n(&max_threads, __ATOMIC_RELAXED);
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

/* The frames of one thread, innermost first, cut at the frame limit; what is cut is counted so
 * the reader knows how deep the stack really was ("  ... 37 more frames"). */
static void dump_frames(leak__sigsafe_out *out, PyThreadState *tstate) {
  int limit = __atomic_load_n(&max_frames, __ATOMIC_RELAXED);
  leak__frame_cursor cursor;
  leak__frame frame;
  leak__frames_begin(&cursor, tstate);
  if (!leak__frames_next(&cursor, &frame)) {
    leak__sigsafe_puts(out, FAULTHANDLER_FORMAT_310 ? "  <no Python frame>\n" : "<no Python frame>\n");
    leak__sigsafe_flush(out);
    return;
  }
  int printed = 0;
  do {
    dump_frame(out, &frame);
    printed++;
  } while (printed < limit && leak__frames_next(&cursor, &frame));
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

/* faulthandler walks threads newest first, which buries the main thread at the bottom of a long
 * dump; ours prints it first and the others in interpreter order, cut at the thread limit. */
int leak__dump_all_threads(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *current) {
  if (interp == NULL) return LEAK_ENOPYTHON;
  PyThreadState *head = PyInterpreterState_ThreadHead(interp);
  if (head == NULL) return LEAK_ENOPYTHON;
  int limit = __atomic_load_n(&max_threads, __ATOMIC_RELAXED);
  PyThreadState *main_thread = find_main_thread(head, current);
  int printed = 0;
  long more = 0, steps = 0;
  if (main_thread != NULL) {
    dump_thread(out, main_thread, main_thread == current);
    printed++;
  }
  for (PyThreadState *t = head; t != NULL && steps < WALK_CAP; t = PyThreadState_Next(t), steps++) {
    if (t == main_thread) continue;
    if (printed >= limit) {
      more++;
      continue;
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

/* faulthandler's dump_traceback(all_threads=False) and its fatal handler without all_threads. */
int leak__dump_current_thread(leak__sigsafe_out *out, PyThreadState *tstate) {
  leak__sigsafe_puts(out, "Stack (most recent call first):\n");
  leak__sigsafe_flush(out);
  dump_frames(out, tstate);
  return leak__sigsafe_flush(out);
}

/* A watchdog may outlive the thread that armed it; a thread state that left the interpreter's list
 * may already be freed, so it is only compared, never read, until it is found in the list. */
int leak__dump_thread_if_alive(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *tstate) {
  if (interp == NULL) return LEAK_ENOPYTHON;
  long steps = 0;
  for (PyThreadState *t = PyInterpreterState_ThreadHead(interp); t != NULL && steps < WALK_CAP;
       t = PyThreadState_Next(t), steps++) {
    if (t == tstate) {
      dump_thread(out, t, 0);
      return leak__sigsafe_flush(out);
    }
  }
  return LEAK_ENOENT;
}

/* The calling thread is the "current" one: faulthandler.dump_traceback semantics, usable from a
 * host's own signal handler or a thread that does not hold the GIL. */
int leak_dump_stacks(int fd, unsigned flags) {
  if (fd < 0) return LEAK_EBADF;
  leak__sigsafe_out out;
  leak__sigsafe_init(&out, fd);
  PyThreadState *current = leak__frames_this_thread();
  if (flags & LEAK_DUMP_ALL_THREADS) {
    PyInterpreterState *interp = current ? leak__frames_interpreter(current) : leak__dump_interp();
    return leak__dump_all_threads(&out, interp, current);
  }
  if (current == NULL) return LEAK_ENOPYTHON;
  return leak__dump_current_thread(&out, current);
}
