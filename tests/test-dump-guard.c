/* The dump guard: dumps written to one descriptor never interleave.  A watchdog that fires while a
 * signal's dump is blocked in write(2) waits for that dump and writes its own after it; a registered
 * signal received by another thread during a dump is owed, and its dump (written by the thread that
 * held the guard) names the thread that received the signal as the current one; a host's handler
 * that calls leak_dump_stacks during a dump of its own thread gets LEAK_EBUSY; and the child of a
 * fork made while another thread was dumping does not wait for that thread, which it does not have.
 *
 * Each test blocks the first dump on a full pipe and looks at /proc to know where the other threads
 * are, so the order of events is forced rather than hoped for; a helper thread then drains the pipe
 * and the whole output is checked. */
#include "core/internal.h"
#include "runner.h"
#include "test-dump-util.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/syscall.h>

/* The system call `tid` is blocked in (-1 when running or unreadable) and its first argument. */
static long blocked_syscall(pid_t tid, long *arg0) {
  char path[64], line[256] = "";
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  char *got = fgets(line, sizeof line, f);
  fclose(f);
  long number = -1, first = -1;
  if (got == NULL || sscanf(line, "%ld 0x%lx", &number, &first) != 2) return -1;
  *arg0 = first;
  return number;
}

static int blocked_in_write(pid_t tid, int fd) {
  long arg0 = -1;
  return blocked_syscall(tid, &arg0) == SYS_write && arg0 == fd;
}

/* Where a thread other than `a` and `b` waits to dump: 2 when it is blocked writing to `fd` (a
 * second dump cutting into the one in progress: what the guard prevents), 1 when it is sleeping
 * (the guard's wait is a nanosleep loop; the watchdog's service thread sleeps nowhere else, it waits
 * for deadlines on a condition variable), 0 when no thread is at either place yet. */
static int another_dump_waits(pid_t a, pid_t b, int fd) {
  DIR *dir = opendir("/proc/self/task");
  ASSERT(dir != NULL);
  int found = 0;
  struct dirent *entry;
  while (!found && (entry = readdir(dir)) != NULL) {
    pid_t tid = (pid_t)atoi(entry->d_name);
    if (tid <= 0 || tid == a || tid == b) continue;
    long arg0 = -1;
    long number = blocked_syscall(tid, &arg0);
    if (number == SYS_write && arg0 == fd)
      found = 2;
    else if (number == SYS_nanosleep || number == SYS_clock_nanosleep)
      found = 1;
  }
  closedir(dir);
  return found;
}

/* A pipe whose buffer is full, so the next write to it blocks. */
static void full_pipe(int fds[2], int *capacity) {
  ASSERT(pipe(fds) == 0);
  *capacity = fcntl(fds[1], F_GETPIPE_SZ);
  ASSERT_GT(*capacity, 0);
  char *filler = malloc((size_t)*capacity);
  memset(filler, 'x', (size_t)*capacity);
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  ASSERT_EQ(write(fds[1], filler, (size_t)*capacity), *capacity);
  fcntl(fds[1], F_SETFL, 0);
  free(filler);
}

/* Reads `fd` to end of file; returns the text (malloc'd). */
static char *drain(int fd) {
  size_t cap = 1 << 20, len = 0;
  char *text = malloc(cap);
  ssize_t n;
  while ((n = read(fd, text + len, cap - 1 - len)) != 0) {
    if (n < 0) {
      ASSERT(errno == EINTR);
      continue;
    }
    len += (size_t)n;
    ASSERT(len < cap - 1);
  }
  text[len] = '\0';
  return text;
}

/* Drains `read_fd` until `writer` has finished its dump, closes `write_fd`, and reads the rest;
 * returns the text (malloc'd).  `done` is 1 while the writer runs. */
static char *drain_until_writer_done(int read_fd, int write_fd, pthread_t writer, volatile int *done) {
  size_t cap = 1 << 20, len = 0;
  char *text = malloc(cap);
  fcntl(read_fd, F_SETFL, O_NONBLOCK);
  while (*done == 1) {
    ssize_t n = read(read_fd, text + len, cap - 1 - len);
    if (n > 0) len += (size_t)n;
    ASSERT(len < cap - 1);
    if (n <= 0) dt_sleep_ms(1);
  }
  pthread_join(writer, NULL);
  close(write_fd);
  fcntl(read_fd, F_SETFL, 0);
  char *rest = drain(read_fd);
  size_t rest_len = strlen(rest);
  ASSERT(len + rest_len < cap);
  memcpy(text + len, rest, rest_len + 1);
  free(rest);
  return text;
}

/* ---- a watchdog during a signal's dump ------------------------------------------------------ */

typedef struct watchdog_race {
  pid_t main_tid;
  int read_fd, write_fd;
  int watchdog_wrote_during_dump; /* seen blocked in write(2) while the signal's dump was */
  leak_watchdog *watchdog;
  char *output;
} watchdog_race;

/* Waits until the signal's dump is blocked, arms a watchdog on the same pipe, waits until it has
 * fired and is waiting (or, without the guard, writing), then drains the pipe. */
static void *arm_watchdog_then_drain(void *arg) {
  watchdog_race *r = arg;
  while (!blocked_in_write(r->main_tid, r->write_fd)) dt_sleep_ms(1);
  ASSERT_EQ(leak_watchdog_start(0.001, r->write_fd, LEAK_DUMP_ALL_THREADS, &r->watchdog), 0);
  pid_t self = (pid_t)syscall(SYS_gettid);
  int where;
  while ((where = another_dump_waits(r->main_tid, self, r->write_fd)) == 0) dt_sleep_ms(1);
  r->watchdog_wrote_during_dump = where == 2;
  r->output = drain(r->read_fd);
  return NULL;
}

/* _race.leak_watchdog_cancel(): the main thread cancels the watchdog (waiting for its dump), so the
 * pipe's last writer is gone before the test closes it. */
static watchdog_race *current_race;
static PyObject *race_cancel(PyObject *self, PyObject *unused) {
  leak_watchdog *w = current_race->watchdog;
  Py_BEGIN_ALLOW_THREADS
  leak_watchdog_cancel(w);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

static PyMethodDef race_methods[] = {{"cancel", race_cancel, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef race_module = {PyModuleDef_HEAD_INIT, "_race", NULL, -1, race_methods};
static PyObject *race_init(void) { return PyModule_Create(&race_module); }

TEST(dump_guard_watchdog_waits_for_a_signal_dump) {
  PyImport_AppendInittab("_race", race_init);
  test_python_start();
  int fds[2], capacity;
  full_pipe(fds, &capacity);
  watchdog_race r = {(pid_t)syscall(SYS_gettid), fds[0], fds[1], 0, NULL, NULL};
  current_race = &r;
  ASSERT_EQ(leak_faults_register(SIGUSR1, fds[1], LEAK_DUMP_ALL_THREADS), 0);
  pthread_t helper;
  ASSERT_EQ(pthread_create(&helper, NULL, arm_watchdog_then_drain, &r), 0);
  /* 40 frames deep, so each dump is about 40 lines: room for lines of the two to interleave. */
  ASSERT_EQ(test_python_run("import signal, _race\n"
                            "def down(n):\n"
                            "    if n == 0:\n"
                            "        signal.raise_signal(signal.SIGUSR1)\n"
                            "        _race.cancel()\n"
                            "        return\n"
                            "    down(n - 1)\n"
                            "down(40)\n"),
            0);
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 1);
  close(fds[1]);
  pthread_join(helper, NULL);
  /* The watchdog waited; it did not start writing into the pipe the signal's dump was blocked on. */
  ASSERT_EQ(r.watchdog_wrote_during_dump, 0);
  ASSERT_GE(strlen(r.output), (size_t)capacity);
  const char *dumps = r.output + capacity;
  ASSERT(dt_all_lines_valid(dumps));
  /* The signal's dump whole, then the watchdog's whole. */
  const char *timeout = strstr(dumps, "Timeout (0:00:00.001000)!\n");
  ASSERT(timeout != NULL);
  ASSERT_EQ(dt_count(dumps, "Timeout ("), 1);
  size_t first_len = (size_t)(timeout - dumps);
  char *first = strndup(dumps, first_len);
  ASSERT_MATCHES(first, "^Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                        "  File \"<string>\", line 4 in down\n(  File \"<string>\", line 7 in down\n){40}"
                        "  File \"<string>\", line 8 in <module>\n$");
  ASSERT_MATCHES(timeout, "^Timeout \\(0:00:00\\.001000\\)!\nThread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                          "  File \"<string>\", line [45] in down\n(  File \"<string>\", line 7 in down\n){40}"
                          "  File \"<string>\", line 8 in <module>\n$");
  free(first);
  free(r.output);
  return 0;
}

/* ---- a signal received by another thread during a dump ---------------------------------------- */

/* A Python thread parks in C (GIL released) and says who it is; the test sends it SIGUSR2. */
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int parked, unparked;
static pthread_t parked_thread;

static PyObject *owed_park(PyObject *self, PyObject *unused) {
  Py_BEGIN_ALLOW_THREADS
  pthread_mutex_lock(&park_lock);
  parked_thread = pthread_self();
  parked = 1;
  pthread_cond_broadcast(&park_cond);
  while (!unparked) pthread_cond_wait(&park_cond, &park_lock);
  pthread_mutex_unlock(&park_lock);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

static PyObject *owed_wait_parked(PyObject *self, PyObject *unused) {
  Py_BEGIN_ALLOW_THREADS
  pthread_mutex_lock(&park_lock);
  while (!parked) pthread_cond_wait(&park_cond, &park_lock);
  pthread_mutex_unlock(&park_lock);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

static PyObject *owed_unpark(PyObject *self, PyObject *unused) {
  pthread_mutex_lock(&park_lock);
  unparked = 1;
  pthread_cond_broadcast(&park_cond);
  pthread_mutex_unlock(&park_lock);
  Py_RETURN_NONE;
}

static PyMethodDef owed_methods[] = {
    {"park", owed_park, METH_NOARGS, NULL},
    {"wait_parked", owed_wait_parked, METH_NOARGS, NULL},
    {"unpark", owed_unpark, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef owed_module = {PyModuleDef_HEAD_INIT, "_owed", NULL, -1, owed_methods};
static PyObject *owed_init(void) { return PyModule_Create(&owed_module); }

/* Chained after libleak's SIGUSR2 handler: by then the signal's dump has been owed. */
static volatile sig_atomic_t usr2_handled;
static void after_usr2(int signum) { usr2_handled = 1; }

typedef struct owed_race {
  pid_t main_tid;
  int read_fd, write_fd;
  char *output;
} owed_race;

static void *signal_parked_thread_then_drain(void *arg) {
  owed_race *r = arg;
  while (!blocked_in_write(r->main_tid, r->write_fd)) dt_sleep_ms(1);
  pthread_kill(parked_thread, SIGUSR2);
  while (!usr2_handled) dt_sleep_ms(1);
  r->output = drain(r->read_fd);
  return NULL;
}

TEST(dump_guard_owed_dump_names_the_thread_that_got_the_signal) {
  PyImport_AppendInittab("_owed", owed_init);
  test_python_start();
  int fds[2], capacity;
  full_pipe(fds, &capacity);
  owed_race r = {(pid_t)syscall(SYS_gettid), fds[0], fds[1], NULL};
  signal(SIGUSR2, after_usr2);
  ASSERT_EQ(leak_faults_register(SIGUSR1, fds[1], LEAK_DUMP_ALL_THREADS), 0);
  ASSERT_EQ(leak_faults_register(SIGUSR2, fds[1], LEAK_DUMP_ALL_THREADS | LEAK_DUMP_CHAIN), 0);
  pthread_t helper;
  ASSERT_EQ(pthread_create(&helper, NULL, signal_parked_thread_then_drain, &r), 0);
  ASSERT_EQ(test_python_run("import signal, threading, _owed\n"
                            "def parked_worker():\n"
                            "    _owed.park()\n"
                            "worker = threading.Thread(target=parked_worker)\n"
                            "worker.start()\n"
                            "_owed.wait_parked()\n"
                            "signal.raise_signal(signal.SIGUSR1)\n"
                            "_owed.unpark()\n"
                            "worker.join()\n"),
            0);
  ASSERT_EQ(leak_faults_unregister(SIGUSR1), 1);
  ASSERT_EQ(leak_faults_unregister(SIGUSR2), 1);
  close(fds[1]);
  pthread_join(helper, NULL);
  ASSERT_EQ(usr2_handled, 1);
  const char *dumps = r.output + capacity;
  ASSERT(dt_all_lines_valid(dumps));
  /* Two dumps of two threads each: SIGUSR1's names the main thread current, SIGUSR2's the worker. */
  char worker_current[64], worker_other[64], main_current[64], main_other[64];
  snprintf(worker_current, sizeof worker_current, "Current thread 0x%016lx ", (unsigned long)parked_thread);
  snprintf(worker_other, sizeof worker_other, "\nThread 0x%016lx ", (unsigned long)parked_thread);
  snprintf(main_current, sizeof main_current, "Current thread 0x%016lx ", (unsigned long)pthread_self());
  snprintf(main_other, sizeof main_other, "\nThread 0x%016lx ", (unsigned long)pthread_self());
  const char *second = strstr(dumps, " in <module>\n");
  ASSERT(second != NULL);
  second += strlen(" in <module>\n");
  char *first = strndup(dumps, (size_t)(second - dumps));
  ASSERT_MATCHES(first, "^Thread 0x[0-9a-f]{16} \\(most recent call first\\):\n  File \"<string>\", line 3 in parked_worker\n");
  ASSERT(strstr(first, main_current) != NULL);
  ASSERT(strncmp(first, worker_other + 1, strlen(worker_other + 1)) == 0);
  ASSERT_EQ(dt_count(first, "Current thread"), 1);
  ASSERT_MATCHES(second, "^Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                         "  File \"<string>\", line 3 in parked_worker\n");
  ASSERT(strncmp(second, worker_current, strlen(worker_current)) == 0);
  ASSERT(strstr(second, main_other) != NULL);
  ASSERT_EQ(dt_count(second, "Current thread"), 1);
  ASSERT_EQ(dt_count(second, " in <module>\n"), 1);
  free(first);
  free(r.output);
  return 0;
}

/* ---- leak_dump_stacks and the guard ----------------------------------------------------------- */

/* A host's own handler that dumps: it interrupts a dump of its own thread, which it must not cut
 * into. */
static volatile int host_dump_rc = 1;
static int host_dump_fd = -1;
static void host_handler_dumps(int signum) { host_dump_rc = leak_dump_stacks(host_dump_fd, LEAK_DUMP_ALL_THREADS); }

typedef struct interrupt_race {
  pid_t main_tid;
  pthread_t main_thread;
  int read_fd, write_fd;
  char *output;
} interrupt_race;

static void *interrupt_then_drain(void *arg) {
  interrupt_race *r = arg;
  while (!blocked_in_write(r->main_tid, r->write_fd)) dt_sleep_ms(1);
  pthread_kill(r->main_thread, SIGUSR2);
  while (host_dump_rc == 1) dt_sleep_ms(1);
  r->output = drain(r->read_fd);
  return NULL;
}

/* The handler's call returns LEAK_EBUSY at once instead of writing into the dump it interrupted;
 * that dump comes out whole. */
TEST(dump_guard_host_handler_cannot_cut_into_its_own_threads_dump) {
  test_python_start();
  int fds[2], capacity;
  full_pipe(fds, &capacity);
  host_dump_fd = fds[1];
  signal(SIGUSR2, host_handler_dumps);
  interrupt_race r = {(pid_t)syscall(SYS_gettid), pthread_self(), fds[0], fds[1], NULL};
  pthread_t helper;
  ASSERT_EQ(pthread_create(&helper, NULL, interrupt_then_drain, &r), 0);
  PyThreadState *saved = PyEval_SaveThread();
  ASSERT_EQ(leak_dump_stacks(fds[1], LEAK_DUMP_ALL_THREADS), 0);
  PyEval_RestoreThread(saved);
  close(fds[1]);
  pthread_join(helper, NULL);
  ASSERT_EQ(host_dump_rc, LEAK_EBUSY);
  const char *dump = r.output + capacity;
  ASSERT_MATCHES(dump, "^Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n(  )?<no Python frame>\n$");
  free(r.output);
  return 0;
}

/* A process that forks while another thread writes a dump: the child has no such thread, so the
 * guard it inherited is taken over instead of waited for forever (the runner's timeout would fail
 * this test). */
typedef struct fork_race {
  int write_fd;
  volatile int rc; /* 1 until the dump returns */
} fork_race;

static void *dump_into_full_pipe(void *arg) {
  fork_race *f = arg;
  f->rc = leak_dump_stacks(f->write_fd, LEAK_DUMP_ALL_THREADS);
  return NULL;
}

TEST(dump_guard_child_of_a_fork_during_a_dump_can_dump) {
  test_python_start();
  int fds[2], capacity;
  full_pipe(fds, &capacity);
  fork_race f = {fds[1], 1};
  PyThreadState *saved = PyEval_SaveThread();
  pthread_t writer;
  ASSERT_EQ(pthread_create(&writer, NULL, dump_into_full_pipe, &f), 0);
  /* The writer holds the guard once it is blocked writing. */
  pid_t writer_tid = 0;
  while (writer_tid == 0) {
    DIR *dir = opendir("/proc/self/task");
    ASSERT(dir != NULL);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
      pid_t tid = (pid_t)atoi(entry->d_name);
      if (tid > 0 && blocked_in_write(tid, fds[1])) writer_tid = tid;
    }
    closedir(dir);
    if (writer_tid == 0) dt_sleep_ms(1);
  }
  pid_t child = fork();
  ASSERT(child >= 0);
  if (child == 0) {
    int fd = dt_tempfd();
    int rc = leak_dump_stacks(fd, LEAK_DUMP_ALL_THREADS);
    char *text = dt_read_all(fd);
    _exit(rc == 0 && strstr(text, "(most recent call first):\n") != NULL ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  char *out = drain_until_writer_done(fds[0], fds[1], writer, &f.rc);
  free(out);
  PyEval_RestoreThread(saved);
  ASSERT_EQ(f.rc, 0);
  return 0;
}
