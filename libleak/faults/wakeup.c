/* A signal whose handler only writes one byte to a pipe (see faults/wakeup.h).
 *
 * wakeup_handler follows the signal-handler rules: no malloc, no locks, no Python API, errno saved
 * and restored, only write(2) and the previous handler.  It reads wake_fd, wake_signum and
 * previous_action, which are written before the handler is installed (and wake_fd, an int, is
 * replaced in one store), so it never needs the lock. */
#include "core/internal.h"
#include "faults/wakeup.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* The write end of the pipe the handler writes to; -1 when none.  Written under install_lock. */
static volatile sig_atomic_t wake_fd = -1;

/* The signal our handler is installed on (0: none) and the action it replaced.  Written under
 * install_lock before the handler is installed; the handler reads previous_action. */
static volatile sig_atomic_t wake_signum;
static struct sigaction previous_action;

/* Serialises install, set_fd and uninstall.  Never taken by the handler. */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

/* A fork while another thread holds install_lock would leave it locked for good in the child, whose
 * first act is to point the handler at its own pipe: fork handlers hold it across fork, registered
 * once (pthread_once protects atfork_once). */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void lock_for_fork(void) { pthread_mutex_lock(&install_lock); }
static void unlock_after_fork(void) { pthread_mutex_unlock(&install_lock); }
static void register_fork_handlers(void) { pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork); }

/* Signal handler: one byte to the pipe, then the handler that was there before.  Async-signal-safe:
 * write(2) only (a full pipe refuses the byte at once, as the descriptor is non-blocking: a wake-up
 * is pending then anyway), errno kept for the code the signal interrupted. */
static void wakeup_handler(int signum, siginfo_t *info, void *context) {
  int saved_errno = errno;
  int fd = wake_fd;
  if (fd >= 0) {
    const char byte = LEAK_WAKEUP_SIGNAL_BYTE;
    while (write(fd, &byte, 1) < 0 && errno == EINTR) {
    }
  }
  if (previous_action.sa_flags & SA_SIGINFO) {
    if (previous_action.sa_sigaction != NULL) previous_action.sa_sigaction(signum, info, context);
  } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN &&
             previous_action.sa_handler != NULL) {
    previous_action.sa_handler(signum);
  }
  errno = saved_errno;
}

/* Why a signal is refused: those that cannot be caught, and the fatal ones, which belong to
 * leak_faults_enable (a byte in a pipe would never be read before the process dies). */
static int wakeup_signal_allowed(int signum) {
  if (signum < 1 || signum >= NSIG) return 0;
  switch (signum) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGFPE:
    case SIGABRT:
    case SIGBUS:
    case SIGILL:
      return 0;
    default:
      return 1;
  }
}

int leak__wakeup_install(int signum, int fd) {
  if (!wakeup_signal_allowed(signum)) return LEAK_EINVAL;
  if (fd < 0) return LEAK_EBADF;
  pthread_once(&atfork_once, register_fork_handlers);
  int rc = 0;
  pthread_mutex_lock(&install_lock);
  if (wake_signum == signum) {
    wake_fd = fd;
  } else if (wake_signum != 0) {
    rc = LEAK_EBUSY;
  } else {
    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = wakeup_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    /* The previous action is read before ours goes in, so the handler never sees it half-written. */
    if (sigaction(signum, NULL, &previous) != 0) {
      rc = LEAK_EIO;
    } else {
      previous_action = previous;
      wake_fd = fd;
      wake_signum = signum;
      if (sigaction(signum, &action, NULL) != 0) {
        wake_fd = -1;
        wake_signum = 0;
        rc = LEAK_EIO;
      }
    }
  }
  pthread_mutex_unlock(&install_lock);
  return rc;
}

int leak__wakeup_set_fd(int fd) {
  if (fd < 0) return LEAK_EBADF;
  pthread_mutex_lock(&install_lock);
  int rc = wake_signum != 0 ? 0 : LEAK_ENOTSTARTED;
  if (rc == 0) wake_fd = fd;
  pthread_mutex_unlock(&install_lock);
  return rc;
}

int leak__wakeup_uninstall(void) {
  pthread_mutex_lock(&install_lock);
  int was_installed = wake_signum != 0;
  if (was_installed) {
    sigaction(wake_signum, &previous_action, NULL);
    wake_signum = 0;
    wake_fd = -1;
  }
  pthread_mutex_unlock(&install_lock);
  return was_installed;
}

int leak__wakeup_signal(void) { return wake_signum; }

int leak__wakeup_wait(int fd) {
  if (fd < 0) return LEAK_EBADF;
  char bytes[64];
  for (;;) {
    ssize_t got = read(fd, bytes, sizeof bytes);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno == EBADF ? LEAK_EBADF : LEAK_EIO;
    if (got == 0) return LEAK_WAKEUP_CLOSED;
    return memchr(bytes, LEAK_WAKEUP_SIGNAL_BYTE, (size_t)got) != NULL ? LEAK_WAKEUP_SIGNALLED : LEAK_WAKEUP_OTHER;
  }
}
