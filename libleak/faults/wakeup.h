/* A signal that wakes a thread: its handler writes one byte to a pipe, and a thread blocked on the
 * other end of the pipe does the real work outside the handler.
 *
 * This is how libleak.ondemand turns `kill -USR2 PID` into dump files: the handler obeys the
 * signal-handler rules (no malloc, no locks, no Python API, errno saved), so it is safe whatever
 * the receiving thread was doing, and the waiting thread runs Python code in its own good time.
 * One signal at a time is installed; the functions below are serialised by their own lock and are
 * never called from a handler. */
#ifndef LIBLEAK_WAKEUP_H
#define LIBLEAK_WAKEUP_H

/* The byte the handler writes for each signal it receives. */
#define LEAK_WAKEUP_SIGNAL_BYTE 'S'

/* Makes `signum` write LEAK_WAKEUP_SIGNAL_BYTE to `fd` (the write end of a pipe; make it
 * non-blocking, so that a full pipe drops the byte instead of blocking the handler: a wake-up is
 * pending then anyway).  The handler is installed with SA_RESTART, so the system calls it
 * interrupts are restarted where the kernel can, and it calls the handler that was there before
 * when that was a function (not SIG_DFL nor SIG_IGN).  Installing the same signal again only
 * changes the descriptor; another signal while one is installed gives LEAK_EBUSY.  LEAK_EINVAL
 * for signals that cannot be caught (SIGKILL, SIGSTOP), the fatal ones (SIGSEGV, SIGFPE, SIGABRT,
 * SIGBUS, SIGILL: leak_faults_enable owns them) and numbers outside 1..NSIG-1; LEAK_EBADF for
 * fd < 0; LEAK_EIO if sigaction fails.  The caller keeps owning `fd`: close it only after
 * leak__wakeup_uninstall or after pointing the handler at another descriptor. */
int leak__wakeup_install(int signum, int fd);

/* Points the installed handler at another descriptor (after fork, the child's own pipe).
 * LEAK_ENOTSTARTED when nothing is installed, LEAK_EBADF for fd < 0. */
int leak__wakeup_set_fd(int fd);

/* Puts back the handler leak__wakeup_install replaced.  Returns 1 if one was installed, else 0. */
int leak__wakeup_uninstall(void);

/* The signal installed now, or 0. */
int leak__wakeup_signal(void);

/* Blocks until bytes arrive on `fd` (the read end of the pipe), retrying on EINTR, and reads what
 * is there.  Returns LEAK_WAKEUP_SIGNALLED when a LEAK_WAKEUP_SIGNAL_BYTE was among them (several
 * signals that arrived together are one wake-up), LEAK_WAKEUP_OTHER when only other bytes came (the
 * owner's way of making the waiting thread look at its settings again), LEAK_WAKEUP_CLOSED when the
 * write end was closed (the owner's way of stopping it: uninstall, then close the write end), and
 * LEAK_EBADF or LEAK_EIO when read fails.  Call it without holding the GIL. */
#define LEAK_WAKEUP_CLOSED 0
#define LEAK_WAKEUP_SIGNALLED 1
#define LEAK_WAKEUP_OTHER 2
int leak__wakeup_wait(int fd);

#endif
