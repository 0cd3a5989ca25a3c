/* The wake-up signal (faults/wakeup.h): the handler writes one byte to the pipe, keeps errno,
 * restarts interrupted calls, chains to the handler it replaced, refuses signals it must not take,
 * and uninstall puts the previous handler back. */
#include "core/internal.h"
#include "faults/wakeup.h"
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t previous_ran;
static void previous_handler(int signum) { previous_ran++; }

/* A pipe whose write end does not block, as libleak.ondemand makes it. */
static void wake_pipe(int fds[2]) {
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK), 0);
}

TEST(wakeup_signal_writes_one_byte_and_keeps_errno) {
  int fds[2];
  wake_pipe(fds);
  ASSERT_EQ(leak__wakeup_install(SIGUSR2, fds[1]), 0);
  ASSERT_EQ(leak__wakeup_signal(), SIGUSR2);
  struct sigaction now;
  ASSERT_EQ(sigaction(SIGUSR2, NULL, &now), 0);
  ASSERT(now.sa_flags & SA_RESTART);
  errno = ERANGE;
  raise(SIGUSR2);
  ASSERT_EQ(errno, ERANGE);
  ASSERT_EQ(leak__wakeup_wait(fds[0]), LEAK_WAKEUP_SIGNALLED);
  /* Two signals before the reader wakes are one wake-up. */
  raise(SIGUSR2);
  raise(SIGUSR2);
  ASSERT_EQ(leak__wakeup_wait(fds[0]), LEAK_WAKEUP_SIGNALLED);
  ASSERT_EQ(leak__wakeup_uninstall(), 1);
  close(fds[0]);
  close(fds[1]);
  return 0;
}

TEST(wakeup_full_pipe_never_blocks_the_handler) {
  int fds[2];
  wake_pipe(fds);
  ASSERT_EQ(leak__wakeup_install(SIGUSR2, fds[1]), 0);
  char filler[4096];
  memset(filler, 'x', sizeof filler);
  while (write(fds[1], filler, sizeof filler) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  raise(SIGUSR2); /* would hang here if the handler blocked */
  ASSERT_EQ(leak__wakeup_wait(fds[0]), LEAK_WAKEUP_OTHER); /* only filler in the first read */
  ASSERT_EQ(leak__wakeup_uninstall(), 1);
  close(fds[0]);
  close(fds[1]);
  return 0;
}

TEST(wakeup_chains_and_uninstall_restores) {
  signal(SIGUSR1, previous_handler);
  int fds[2];
  wake_pipe(fds);
  ASSERT_EQ(leak__wakeup_install(SIGUSR1, fds[1]), 0);
  raise(SIGUSR1);
  ASSERT_EQ(previous_ran, 1);
  ASSERT_EQ(leak__wakeup_wait(fds[0]), LEAK_WAKEUP_SIGNALLED);
  /* Another signal while one is installed is refused; the same one only moves the descriptor. */
  ASSERT_EQ(leak__wakeup_install(SIGUSR2, fds[1]), LEAK_EBUSY);
  int other[2];
  wake_pipe(other);
  ASSERT_EQ(leak__wakeup_set_fd(other[1]), 0);
  raise(SIGUSR1);
  ASSERT_EQ(leak__wakeup_wait(other[0]), LEAK_WAKEUP_SIGNALLED);
  ASSERT_EQ(previous_ran, 2);
  ASSERT_EQ(leak__wakeup_uninstall(), 1);
  ASSERT_EQ(leak__wakeup_uninstall(), 0);
  ASSERT_EQ(leak__wakeup_signal(), 0);
  ASSERT_EQ(leak__wakeup_set_fd(other[1]), LEAK_ENOTSTARTED);
  struct sigaction now;
  ASSERT_EQ(sigaction(SIGUSR1, NULL, &now), 0);
  ASSERT(now.sa_handler == previous_handler);
  raise(SIGUSR1);
  ASSERT_EQ(previous_ran, 3);
  /* Closing the write end tells the waiter to stop. */
  close(other[1]);
  ASSERT_EQ(leak__wakeup_wait(other[0]), LEAK_WAKEUP_CLOSED);
  close(other[0]);
  close(fds[0]);
  close(fds[1]);
  return 0;
}

TEST(wakeup_refuses_bad_signals_and_descriptors) {
  int refused[] = {0, -1, NSIG, SIGKILL, SIGSTOP, SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};
  for (size_t i = 0; i < LEAK_ARRAY_SIZE(refused); i++) ASSERT_EQ(leak__wakeup_install(refused[i], 1), LEAK_EINVAL);
  ASSERT_EQ(leak__wakeup_install(SIGUSR2, -1), LEAK_EBADF);
  ASSERT_EQ(leak__wakeup_set_fd(-1), LEAK_EBADF);
  ASSERT_EQ(leak__wakeup_wait(-1), LEAK_EBADF);
  ASSERT_EQ(leak__wakeup_signal(), 0);
  return 0;
}
