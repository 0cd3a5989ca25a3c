/* The stack dumper: Python stacks printed in faulthandler's format, from anywhere.
 *
 * Everything here except leak__dump_remember_interp is async-signal-safe: it reads frames through
 * the frame reader (core/frames.h), prints through core/sigsafe.h, and never allocates,
 * locks or calls into Python beyond the two thread-list accessors faulthandler itself uses
 * (PyInterpreterState_ThreadHead, PyThreadState_Next).  The public entry points are
 * leak_dump_stacks and leak_dump_set_limits (include/libleak/faults.h); the signal handlers
 * (faults.c) and the watchdogs (watchdog.c) call the functions below. */
#ifndef LIBLEAK_DUMP_H
#define LIBLEAK_DUMP_H

#include <Python.h>

#include "core/sigsafe.h"

/* Records the interpreter whose threads later dumps walk when they cannot tell from the dumping
 * thread: the calling thread's interpreter, else the main one.  Call it from normal code (enable,
 * register, watchdog start), not from a handler. */
void leak__dump_remember_interp(void);

/* The interpreter recorded by leak__dump_remember_interp, else the main one; NULL before Python is
 * initialised.  Async-signal-safe. */
PyInterpreterState *leak__dump_interp(void);

/* The name faulthandler prints for a fatal signal ("Segmentation fault", ...), as the CPython
 * libleak was built for spells it.  Static storage. */
const char *leak__dump_fatal_name(int signum);

/* Every thread of `interp` in faulthandler's format ("Thread 0x...", frames, a blank line between
 * threads), in the interpreter's order (newest first, the main thread last) or, when the limits ask
 * for it, with the main thread moved to the top.  `current` (may be NULL) is printed as "Current
 * thread" in its place.  The thread limit never cuts `current` nor the main thread.  Returns 0,
 * LEAK_ENOPYTHON if `interp` is NULL or has no thread, or the stream's write error. */
int leak__dump_all_threads(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *current);

/* faulthandler's last lines after a fatal error, from 3.10 on: a blank line, then "Extension modules:
 * a, b (total: 2)" naming the modules of sys.modules that are extensions (a module object whose
 * definition has methods) and not in sys.stdlib_module_names, in sys.modules' order.  Prints
 * nothing when there are none, and nothing at all before 3.10, as faulthandler.  Reads the
 * dictionaries without allocating or locking.  Returns 0 or the stream's write error. */
int leak__dump_extension_modules(leak__sigsafe_out *out, PyInterpreterState *interp);

/* The dump guard: one dump at a time in the whole process, so that dumps written to one descriptor
 * never interleave.  It is an atomic word holding the kernel id of the thread writing, taken and
 * given back with atomic operations only: async-signal-safe, and no mutex a handler could wait on
 * forever.
 *
 * leak__dump_guard_take returns LEAK_DUMP_GUARD_TAKEN when the caller now holds it;
 * LEAK_DUMP_GUARD_MINE when the calling thread holds it already (a signal interrupted a dump of
 * this very thread: waiting would never end, and writing would cut into the dump); and
 * LEAK_DUMP_GUARD_BUSY when another thread holds it and `max_wait_ms` ran out (0: do not wait; a
 * negative value waits as long as it takes).  Waiting sleeps a millisecond between attempts with
 * nanosleep, which is async-signal-safe. */
#define LEAK_DUMP_GUARD_TAKEN 1
#define LEAK_DUMP_GUARD_MINE 0
#define LEAK_DUMP_GUARD_BUSY (-1)
int leak__dump_guard_take(long max_wait_ms);

/* Gives the guard back.  Only the holder calls it. */
void leak__dump_guard_release(void);

/* Implemented in faults.c: writes the dumps owed to registered signals that arrived while another
 * thread held the guard, each naming the thread that received its signal as the current one.  The
 * holder of the guard calls it after giving the guard back (the user-signal handler and the
 * watchdog do).  Async-signal-safe. */
void leak__faults_write_owed_dumps(void);

/* "Stack (most recent call first):" and the frames of `tstate`: faulthandler's single-thread dump.
 * Returns 0 or the stream's write error. */
int leak__dump_current_thread(leak__sigsafe_out *out, PyThreadState *tstate);

/* leak__dump_current_thread for a thread that may not be the caller and may have ended: `tstate`
 * is looked up among `interp`'s threads (never dereferenced before that).  Returns LEAK_ENOENT,
 * printing nothing, if it is gone. */
int leak__dump_current_thread_if_alive(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *tstate);

/* One thread, with its "Thread 0x..." line, but only if `tstate` is still one of `interp`'s
 * threads (it is looked up, never dereferenced before that).  Returns LEAK_ENOENT if it is gone. */
int leak__dump_thread_if_alive(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *tstate);

#endif
