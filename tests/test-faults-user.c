/* User signals: register dumps on a signal, with and without chaining to the handler that was
 * there, unregister puts it back, bad signal numbers are refused, errno survives the handler, and
 * a burst of signals while other threads allocate neither deadlocks nor tears the output. */
#include "core/internal.h"
#include "runner.h"
#include "test-dump-util.h"

#include <pthread.h>
#include <sys/syscall.h>

static volatile sig_atomic_t previous_ran;
static void previous_handler(int signum) { previous_ran++; }

static volatile sig_atomic_t previous_info_ran;
static void previous_info_handler(int signum, siginfo_t *info, void *context) {
  if (info != NULL && info->si_signo == signum) previous_info_ran++;
}

/* Python running a known function when the signal arrives (raise() delivers it synchronously). */
static const char *python_raiser =
    "import signal, os\n"
    "def sender():\n"
    "    os.kill(os.getpid(), signal.SIGUSR1)\n";

TEST(faults_register_without_chain) {
  test_python_start();
  signal(SIGUSR1, previous_handler);
  int fd = dt_tempfd();
  ASSERT_EQ(leak_faults_register(SIGUSR1, fd, LEAK_DUMP_ALL_THREADS), 0);
  struct sigaction now;
  ASSERT_EQ(sigaction(SIGUSR1, NULL, &now), 0);
  ASSERT(now.sa_flags & SA_ONSTACK);
  ASSERT(!(now.sa_flags & SA_NODEFER)); /* a repeat waits for the dump (faulthandler does the same) */
  ASSERT_EQ(test_python_run(python_raiser), 0);
  ASSERT_EQ(test_python_run("sender()\n"), 0);
  char *text = dt_read_all(fd);
  ASSERT_MATCHES(text, "^Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                       "  File \"<string>\", line 3 in sender\n  File \"<string>\", line 1 in <module>\n$");
  free(text);
  ASSERT_EQ(previous_ran, 0);
  /* Unregister puts the previous handler back, once. */
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 1);
  ASSERT_EQ(sigaction(SIGUSR1, NULL, &now), 0);
  ASSERT(now.sa_handler == previous_handler);
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 0);
  raise(SIGUSR1);
  ASSERT_EQ(previous_ran, 1);
  return 0;
}

TEST(faults_register_with_chain) {
  test_python_start();
  signal(SIGUSR1, previous_handler);
  struct sigaction info_action;
  memset(&info_action, 0, sizeof info_action);
  info_action.sa_sigaction = previous_info_handler;
  info_action.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR2, &info_action, NULL);
  int fd = dt_tempfd();
  ASSERT_EQ(leak_faults_register(SIGUSR1, fd, LEAK_DUMP_CHAIN), 0);
  ASSERT_EQ(leak_faults_register(SIGUSR2, fd, LEAK_DUMP_CHAIN), 0);
  /* Registering again changes the flags but keeps the first previous handler. */
  ASSERT_EQ(leak_faults_register(SIGUSR1, fd, LEAK_DUMP_CHAIN | LEAK_DUMP_ALL_THREADS), 0);
  ASSERT_EQ(test_python_run(python_raiser), 0);
  ASSERT_EQ(test_python_run("sender()\n"), 0);
  ASSERT_EQ(previous_ran, 1);
  raise(SIGUSR2);
  ASSERT_EQ(previous_info_ran, 1);
  char *text = dt_read_all(fd);
  ASSERT_MATCHES(text, "^Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n  File \"<string>\", line 3 in sender\n");
  /* The SIGUSR2 dump ran in C code called from no Python frame at all. */
  ASSERT_MATCHES(text, "^Stack \\(most recent call first\\):\n(  )?<no Python frame>\n$");
  ASSERT(dt_all_lines_valid(text));
  free(text);
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 1);
  ASSERT_EQ(leak_faults_unregister(SIGUSR2), 1);
  struct sigaction now;
  ASSERT_EQ(sigaction(SIGUSR2, NULL, &now), 0);
  ASSERT(now.sa_sigaction == previous_info_handler);
  return 0;
}

/* Chaining to SIG_DFL does what faulthandler does: the default action, here death by SIGUSR1,
 * after the dump; SIG_IGN stays ignored. */
static void default_action_body(void *arg) {
  test_python_start();
  signal(SIGUSR2, SIG_IGN);
  ASSERT_EQ(leak_faults_register(SIGUSR2, 2, LEAK_DUMP_CHAIN), 0);
  raise(SIGUSR2);
  ssize_t unused = write(2, "survived SIGUSR2\n", 17);
  (void)unused;
  signal(SIGUSR1, SIG_DFL);
  ASSERT_EQ(leak_faults_register(SIGUSR1, 2, LEAK_DUMP_CHAIN | LEAK_DUMP_ALL_THREADS), 0);
  test_python_run("import os, signal\nos.kill(os.getpid(), signal.SIGUSR1)\n");
}

TEST(faults_register_chain_to_default_action) {
  char *out = NULL;
  int status = dt_run_child(default_action_body, NULL, &out);
  ASSERT(WIFSIGNALED(status));
  ASSERT_EQ(WTERMSIG(status), SIGUSR1);
  ASSERT_MATCHES(out, "^Stack \\(most recent call first\\):\n(  )?<no Python frame>\nsurvived SIGUSR2\n"
                      "Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n  File \"<string>\", line 2 in <module>\n$");
  free(out);
  return 0;
}

TEST(faults_register_refuses_bad_signals) {
  test_python_start();
  int fatal[] = {SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};
  for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
    ASSERT_EQ(leak_faults_register(fatal[i], 2, 0), LEAK_EINVAL);
    ASSERT_EQ(leak_faults_unregister(fatal[i]), LEAK_EINVAL);
  }
  ASSERT_EQ(leak_faults_register(0, 2, 0), LEAK_EINVAL);
  ASSERT_EQ(leak_faults_register(-3, 2, 0), LEAK_EINVAL);
  ASSERT_EQ(leak_faults_register(NSIG, 2, 0), LEAK_EINVAL);
  ASSERT_EQ(leak_faults_register(SIGKILL, 2, 0), LEAK_EINVAL);
  ASSERT_EQ(leak_faults_unregister(NSIG), LEAK_EINVAL);
  ASSERT_EQ(leak_faults_register(SIGUSR1, -1, 0), LEAK_EBADF);
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 0);
  return 0;
}

TEST(faults_handler_preserves_errno) {
  test_python_start();
  int fd = dt_tempfd();
  close(fd); /* the dump's write fails with EBADF inside the handler */
  ASSERT_EQ(leak_faults_register(SIGUSR1, fd, LEAK_DUMP_ALL_THREADS), 0);
  errno = EILSEQ;
  raise(SIGUSR1);
  ASSERT_EQ(errno, EILSEQ);
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 1);
  return 0;
}

/* A C thread that allocates and frees as fast as it can, taking the C library's allocator locks
 * all the time: a handler that allocated would deadlock on them sooner or later. */
static volatile int stop_allocating;
static void *allocate_forever(void *arg) {
  while (!stop_allocating) {
    void *blocks[64];
    for (int i = 0; i < 64; i++) blocks[i] = malloc((size_t)(16 + i * 24));
    for (int i = 0; i < 64; i++) free(blocks[i]);
  }
  return NULL;
}

TEST(faults_signal_while_other_threads_allocate) {
  test_python_start();
  int fd = dt_tempfd();
  ASSERT_EQ(leak_faults_register(SIGUSR1, fd, LEAK_DUMP_ALL_THREADS), 0);
  pthread_t c_threads[2];
  for (int i = 0; i < 2; i++) ASSERT_EQ(pthread_create(&c_threads[i], NULL, allocate_forever, NULL), 0);
  /* Two Python threads allocate objects; the main thread sends the signals to the process, so
   * they land on whichever thread the kernel picks, often one in the middle of malloc. */
  ASSERT_EQ(test_python_run("import threading, os, signal, time\n"
                            "stop = threading.Event()\n"
                            "def churn():\n"
                            "    while not stop.is_set():\n"
                            "        junk = [dict(a=i, b=str(i)) for i in range(200)]\n"
                            "workers = [threading.Thread(target=churn) for _ in range(2)]\n"
                            "for w in workers: w.start()\n"
                            "for _ in range(100):\n"
                            "    os.kill(os.getpid(), signal.SIGUSR1)\n"
                            "    time.sleep(0.002)\n"
                            "stop.set()\n"
                            "for w in workers: w.join()\n"),
            0);
  stop_allocating = 1;
  for (int i = 0; i < 2; i++) pthread_join(c_threads[i], NULL);
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 1);
  char *text = dt_read_all(fd);
  ASSERT(dt_all_lines_valid(text));
  /* Each dump starts with the main thread (signals that arrive together are merged by the
   * kernel, and one arriving during a dump is not dumped twice, so the count is not exact). */
  int dumps = dt_count(text, " in <module>\n");
  ASSERT_GE(dumps, 1);
  ASSERT_GE(dt_count(text, " in churn\n"), 2 * dumps);
  free(text);
  return 0;
}

/* A second signal that arrives while the first dump is blocked in write(2).  With chain the handler
 * has SA_NODEFER, so the same signal interrupts the dump; a different registered signal always can.
 * Either way the re-entry guard keeps it from starting a dump in the middle of the first, and its
 * dump is written right after the first one.  Without chain the same signal is blocked during the
 * handler, so the kernel delivers it after the first dump.  In every case: two whole dumps, one after
 * the other, nothing lost.  The helper waits until /proc shows the main thread blocked writing to the
 * full pipe, sends the second signal to it, then drains the pipe. */
typedef struct reentry {
  pid_t main_tid;
  pthread_t main_thread;
  int read_fd;
  int write_fd;
  int second_signum;
  char *output;
} reentry;

static int blocked_in_write(pid_t tid, int fd) {
  char path[64], line[256] = "";
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  char *got = fgets(line, sizeof line, f);
  fclose(f);
  long number = -1, arg0 = -1;
  if (got == NULL || sscanf(line, "%ld 0x%lx", &number, &arg0) != 2) return 0;
  return number == 1 /* write */ && arg0 == fd;
}

static void *second_signal_then_drain(void *arg) {
  reentry *r = arg;
  while (!blocked_in_write(r->main_tid, r->write_fd)) dt_sleep_ms(1);
  pthread_kill(r->main_thread, r->second_signum);
  size_t cap = 1 << 20, len = 0;
  r->output = malloc(cap);
  ssize_t n;
  while ((n = read(r->read_fd, r->output + len, cap - 1 - len)) != 0) {
    if (n < 0) {
      ASSERT(errno == EINTR);
      continue;
    }
    len += (size_t)n;
  }
  r->output[len] = '\0';
  return NULL;
}

/* Sends SIGUSR1 and then `second_signum` as described above, SIGUSR1 registered with `flags` and
 * SIGUSR2 (if that is the second) without; returns the number of whole dumps written after the
 * pipe's filler. */
static int dumps_with_second_signal_during_first(unsigned flags, int second_signum) {
  int fds[2];
  ASSERT(pipe(fds) == 0);
  /* Fill the pipe so the dump's first write blocks. */
  int capacity = fcntl(fds[1], F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  char *filler = malloc((size_t)capacity);
  memset(filler, 'x', (size_t)capacity);
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  ASSERT_EQ(write(fds[1], filler, (size_t)capacity), capacity);
  fcntl(fds[1], F_SETFL, 0);
  reentry r = {(pid_t)syscall(SYS_gettid), pthread_self(), fds[0], fds[1], second_signum, NULL};
  ASSERT_EQ(leak_faults_register(SIGUSR1, fds[1], flags), 0);
  if (second_signum != SIGUSR1) ASSERT_EQ(leak_faults_register(second_signum, fds[1], 0), 0);
  pthread_t helper;
  ASSERT_EQ(pthread_create(&helper, NULL, second_signal_then_drain, &r), 0);
  raise(SIGUSR1);
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 1);
  if (second_signum != SIGUSR1) ASSERT_EQ(leak_faults_unregister(second_signum), 1);
  close(fds[1]);
  pthread_join(helper, NULL);
  ASSERT_GE(strlen(r.output), (size_t)capacity);
  const char *dump = r.output + capacity;
  ASSERT(dt_all_lines_valid(dump));
  int dumps = dt_count(dump, "Stack (most recent call first):\n");
  free(r.output);
  free(filler);
  return dumps;
}

TEST(faults_user_signal_during_chained_dump_is_owed_not_lost) {
  test_python_start();
  signal(SIGUSR1, previous_handler); /* chained to, so it must not be the default action */
  ASSERT_EQ(dumps_with_second_signal_during_first(LEAK_DUMP_CHAIN, SIGUSR1), 2);
  ASSERT_EQ(previous_ran, 2); /* each delivery chains once */
  return 0;
}

TEST(faults_user_signal_during_dump_is_deferred_not_lost) {
  test_python_start();
  ASSERT_EQ(dumps_with_second_signal_during_first(0, SIGUSR1), 2);
  return 0;
}

TEST(faults_other_user_signal_during_dump_is_owed_not_lost) {
  test_python_start();
  ASSERT_EQ(dumps_with_second_signal_during_first(0, SIGUSR2), 2);
  return 0;
}
