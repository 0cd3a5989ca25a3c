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

/* Every thread of `interp`, main thread first, in faulthandler's format ("Thread 0x...", frames, a
 * blank line between threads); `current` (may be NULL) is printed as "Current thread".  Returns 0,
 * LEAK_ENOPYTHON if `interp` is NULL or has no thread, or the stream's write error. */
int leak__dump_all_threads(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *current);

/* "Stack (most recent call first):" and the frames of `tstate`: faulthandler's single-thread dump.
 * Returns 0 or the stream's write error. */
int leak__dump_current_thread(leak__sigsafe_out *out, PyThreadState *tstate);

/* One thread, with its "Thread 0x..." line, but only if `tstate` is still one of `interp`'s
 * threads (it is looked up, never dereferenced before that).  Returns LEAK_ENOENT if it is gone. */
int leak__dump_thread_if_alive(leak__sigsafe_out *out, PyInterpreterState *interp, PyThreadState *tstate);

#endif
