/* libleak: stack dumps of every Python thread, on a fatal signal, on a user signal, on a timeout, or
 * on request (faulthandler's job, for hosts that embed CPython).
 *
 * Output goes straight to a file descriptor with write(2), in faulthandler's format, so existing log
 * parsers keep working.  Everything that runs inside a signal handler or the watchdog thread is
 * async-signal-safe: no malloc, no locks, no Python API. */
#ifndef LIBLEAK_FAULTS_H
#define LIBLEAK_FAULTS_H

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flags for the functions below. */
#define LEAK_DUMP_ALL_THREADS 0x1u /* every thread, not only the current one */
#define LEAK_DUMP_REPEAT 0x2u      /* watchdogs: fire every `timeout` seconds until cancelled */
#define LEAK_DUMP_EXIT 0x4u        /* watchdogs: _exit(1) after dumping */
#define LEAK_DUMP_CHAIN 0x8u       /* user signals: call the previous handler after dumping */

/* How much a dump may print, and in which order; what is cut is counted ("  ... 37 more frames").
 * Initialise with LEAK_DUMP_LIMITS_INIT and change the fields you care about. */
typedef struct leak_dump_limits {
  int max_frames;        /* frames per thread (faulthandler: 100) */
  int max_threads;       /* threads per dump (faulthandler: 100); see below for which are kept */
  int main_thread_first; /* nonzero: the main thread on top; 0 (the default): faulthandler's order */
} leak_dump_limits;
#define LEAK_DUMP_LIMITS_INIT {100, 100, 0}

/* Sets the limits used by every later dump; max_frames or max_threads below 1 give LEAK_EINVAL.
 *
 * What a limit cuts is counted on a line of its own:
 *   "  ... 37 more frames"   after the last frame printed for a thread ("  ... 1 more frame");
 *   "... 12 more threads"    after a blank line, when threads were left out ("... 1 more thread").
 * faulthandler (which always cuts at 100) prints a bare "  ..." and "..." at the same places.
 * When threads are cut, the current thread and the main thread are always printed (even if that
 * makes one more than max_threads); the others are kept in printing order until the limit. */
LEAK_EXTERN int leak_dump_set_limits(const leak_dump_limits *limits);

/* Copies the current limits into *limits (LEAK_EINVAL if it is NULL). */
LEAK_EXTERN int leak_dump_get_limits(leak_dump_limits *limits);

/* Writes the stacks of the calling thread (or, with LEAK_DUMP_ALL_THREADS, of every thread of the
 * interpreter) to `fd`.  Async-signal-safe.  The caller need not hold the GIL.
 *
 * The format is faulthandler's, line for line, for the CPython libleak was built against:
 *   Stack (most recent call first):                              (calling thread only)
 *     File "app.py", line 12 in handler
 * or, with LEAK_DUMP_ALL_THREADS, one block per thread separated by blank lines:
 *   Current thread 0x00007f3a5c1b2740 (most recent call first):  (the calling thread)
 *     Garbage-collecting                                         (3.10+, during a collection)
 *     File "app.py", line 12 in handler
 *
 *   Thread 0x00007f3a5b1ff6c0 (most recent call first):
 *     <no Python frame>                                          (not indented before 3.10)
 * Strings are escaped and cut at 500 characters as faulthandler does.  Threads come in
 * faulthandler's order, the interpreter's: the newest first, the main thread last, the calling one
 * marked "Current thread" in its place (main thread first if the limits ask for it).
 *
 * Dumps never interleave: every dump of this header (signals, watchdogs, this function) takes one
 * process-wide guard, and this function waits while another thread writes a dump.  Returns 0;
 * LEAK_EBADF for fd < 0 or a closed fd, LEAK_EIO when a write fails, LEAK_ENOPYTHON when the calling
 * thread has no Python thread state (without LEAK_DUMP_ALL_THREADS) or no interpreter runs,
 * LEAK_EBUSY when called from a signal handler that interrupted a dump of the same thread. */
LEAK_EXTERN int leak_dump_stacks(int fd, unsigned flags);

/* Installs handlers for SIGSEGV, SIGFPE, SIGABRT, SIGBUS and SIGILL that dump the stacks to `fd`
 * and then let the previous handler run.  Calling it again replaces fd and flags.
 *
 * The report is "Fatal Python error: Segmentation fault" (or "Floating point exception", spelt
 * "Floating-point exception" from 3.13 as faulthandler does, "Aborted", "Bus error", "Illegal
 * instruction"), a blank line, then the dump of
 * leak_dump_stacks with the faulting thread as the current one, then from CPython 3.10 on, as
 * faulthandler, a blank line and "Extension modules: numpy.core._multiarray_umath, ... (total: N)"
 * naming the extension modules of sys.modules that are not in sys.stdlib_module_names (no line when
 * there are none).  If another thread is writing a dump, the report waits up to 5 seconds for it,
 * then is written anyway.  The handler puts the previous
 * handler back, writes, and raises the signal again, so the previous handler (or the default
 * action) runs.  An alternate signal stack (SIGSTKSZ + AT_MINSIGSTKSZ) is installed on the first
 * thread that enables or registers a handler, unless that thread already has one, so a stack
 * overflow can be reported.  Returns LEAK_EBADF for fd < 0, LEAK_ENOMEM, or LEAK_EIO if sigaction
 * fails (nothing is changed then).  Thread-safe against the other functions of this header. */
LEAK_EXTERN int leak_faults_enable(int fd, unsigned flags);

/* Restores the handlers found by leak_faults_enable.  Not enabled is not an error. */
LEAK_EXTERN int leak_faults_disable(void);

/* 1 when the fatal-signal handlers are installed, else 0. */
LEAK_EXTERN int leak_faults_is_enabled(void);

/* Dumps the stacks to `fd` whenever `signum` arrives; LEAK_DUMP_CHAIN also calls the handler that
 * was there before.  Fatal signals give LEAK_EINVAL (use leak_faults_enable).  The thread that
 * received the signal is the current one.  A signal that arrives while another dump is being
 * written does not wait in its handler: its dump is owed, and written (still naming the thread that
 * received it) by whoever finishes the dump in progress.
 *
 * Chaining calls a previous handler function directly (with its siginfo if it takes one), does
 * nothing more for SIG_IGN, and for SIG_DFL does what faulthandler does: restores it, raises the
 * signal so the default action happens (for most signals the process ends), and reinstalls ours.
 * Registering again keeps the handler saved the first time.  LEAK_EINVAL also for signum outside
 * 1..NSIG-1 and for signals that cannot be caught (SIGKILL, SIGSTOP); LEAK_EBADF for fd < 0. */
LEAK_EXTERN int leak_faults_register(int signum, int fd, unsigned flags);

/* Restores the handler found by leak_faults_register; returns 1 if one was registered, else 0.
 * LEAK_EINVAL for the signals leak_faults_register refuses. */
LEAK_EXTERN int leak_faults_unregister(int signum);

/* A watchdog: dumps the stacks to `fd` after `timeout` seconds unless cancelled first.  Every
 * watchdog has its own timer: watchdogs never cancel or replace each other.  One service thread
 * (started by the first watchdog, all signals blocked) serves them all; its dump is
 * async-signal-safe and needs no GIL.  Each dump starts with faulthandler's header,
 * "Timeout (0:00:05)!" or "Timeout (0:00:00.500000)!", then the threads, none marked current.  A
 * watchdog that fires while another dump is being written waits for it to finish first.
 * After fork() the parent's watchdogs never fire in the child (cancel them there to free them);
 * new ones work.  Cancel watchdogs before finalising the interpreter they watch. */
typedef struct leak_watchdog leak_watchdog;

/* Arms a new watchdog in *out.  Flags: LEAK_DUMP_ALL_THREADS (otherwise only the thread that armed
 * it is dumped, with its "Thread 0x..." line, if it still exists; a thread without Python state
 * gets every thread), LEAK_DUMP_REPEAT (again every `timeout` seconds after each dump),
 * LEAK_DUMP_EXIT (_exit(1) after the dump).  timeout must be > 0 (LEAK_EINVAL otherwise, NaN
 * too) and at most 9e9 seconds (LEAK_ERANGE); LEAK_EBADF for fd < 0; LEAK_ENOMEM / LEAK_EAGAIN
 * when the watchdog or its thread cannot be created.  Free it with leak_watchdog_cancel. */
LEAK_EXTERN int leak_watchdog_start(double timeout, int fd, unsigned flags, leak_watchdog **out);

/* Disarms and frees a watchdog; waits for a dump in progress to finish.  NULL is accepted. */
LEAK_EXTERN void leak_watchdog_cancel(leak_watchdog *watchdog);

/* faulthandler.dump_traceback_later: the one process-wide watchdog, replaced by each call.  It
 * always dumps every thread (LEAK_DUMP_ALL_THREADS is implied); LEAK_DUMP_REPEAT and LEAK_DUMP_EXIT
 * as for leak_watchdog_start.  A call with bad arguments fails as leak_watchdog_start does and
 * leaves the current watchdog armed. */
LEAK_EXTERN int leak_dump_later(double timeout, int fd, unsigned flags);

/* faulthandler.cancel_dump_traceback_later: cancels the process-wide watchdog, if any. */
LEAK_EXTERN void leak_dump_later_cancel(void);

#ifdef __cplusplus
}
#endif
#endif
