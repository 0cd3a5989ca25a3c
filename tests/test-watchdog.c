/* Watchdogs: each has its own deadline, so nested watchdogs and watchdogs of several threads fire
 * independently and cancelling one never cancels another; repeat fires again; exit ends the
 * process with status 1; cancel before the deadline prints nothing; the process-wide
 * leak_dump_later is replaced by each call; a forked child can start its own.  No assertion
 * depends on timing: long timeouts are never reached, short ones are waited for generously. */
#include "core/internal.h"
#include "runner.h"
#include "test-dump-util.h"

#include <math.h>
#include <pthread.h>

/* Python started, and the main thread parked in C without the GIL (as a host would be). */
static PyThreadState *start_python_parked(void) {
  test_python_start();
  ASSERT_EQ(test_python_run("import threading\n"
                            "done = threading.Event(); ready = threading.Event()\n"
                            "def parked_worker():\n"
                            "    ready.set()\n"
                            "    done.wait()\n"
                            "worker = threading.Thread(target=parked_worker, daemon=True)\n"
                            "worker.start()\n"
                            "ready.wait()\n"),
            0);
  return PyEval_SaveThread();
}

TEST(watchdog_rejects_bad_arguments) {
  test_python_start();
  leak_watchdog *w = (leak_watchdog *)&w;
  ASSERT_EQ(leak_watchdog_start(0, 2, 0, &w), LEAK_EINVAL);
  ASSERT(w == NULL);
  ASSERT_EQ(leak_watchdog_start(-1, 2, 0, &w), LEAK_EINVAL);
  ASSERT_EQ(leak_watchdog_start(NAN, 2, 0, &w), LEAK_EINVAL);
  ASSERT_EQ(leak_watchdog_start(1e12, 2, 0, &w), LEAK_ERANGE);
  ASSERT_EQ(leak_watchdog_start(1, -1, 0, &w), LEAK_EBADF);
  ASSERT_EQ(leak_watchdog_start(1, 2, 0, NULL), LEAK_EINVAL);
  ASSERT_EQ(leak_dump_later(-0.5, 2, 0), LEAK_EINVAL);
  leak_watchdog_cancel(NULL);
  leak_dump_later_cancel();
  return 0;
}

TEST(watchdog_cancel_before_deadline_prints_nothing) {
  PyThreadState *saved = start_python_parked();
  int fd = dt_tempfd();
  leak_watchdog *w = NULL;
  ASSERT_EQ(leak_watchdog_start(60, fd, LEAK_DUMP_ALL_THREADS, &w), 0);
  leak_watchdog_cancel(w);
  /* A second, short watchdog proves the service thread is alive and would have written. */
  int probe = dt_tempfd();
  ASSERT_EQ(leak_watchdog_start(0.01, probe, LEAK_DUMP_ALL_THREADS, &w), 0);
  ASSERT(dt_wait_for(probe, "in parked_worker", 1, 60));
  leak_watchdog_cancel(w);
  char *text = dt_read_all(fd);
  ASSERT(strcmp(text, "") == 0);
  free(text);
  PyEval_RestoreThread(saved);
  return 0;
}

/* Two nested watchdogs of the same thread: the inner one cancelled, the outer one still fires;
 * then two that both fire, each into its own file with its own header. */
TEST(watchdog_nested_fire_independently) {
  PyThreadState *saved = start_python_parked();
  int outer_fd = dt_tempfd(), inner_fd = dt_tempfd();
  leak_watchdog *outer = NULL, *inner = NULL;
  ASSERT_EQ(leak_watchdog_start(0.2, outer_fd, LEAK_DUMP_ALL_THREADS, &outer), 0);
  ASSERT_EQ(leak_watchdog_start(60, inner_fd, LEAK_DUMP_ALL_THREADS, &inner), 0);
  leak_watchdog_cancel(inner);
  ASSERT(dt_wait_for(outer_fd, "in parked_worker", 1, 60));
  leak_watchdog_cancel(outer);
  char *text = dt_read_all(outer_fd);
  /* faulthandler's order: the worker (newer) first, the parked main thread last. */
  ASSERT_MATCHES(text, "^Timeout \\(0:00:00\\.200000\\)!\nThread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                       "(  File .*\n)+\nThread 0x[0-9a-f]{16} \\(most recent call first\\):\n(  )?<no Python frame>\n$");
  ASSERT_EQ(dt_count(text, "Current thread"), 0);
  ASSERT(dt_all_lines_valid(text));
  free(text);
  text = dt_read_all(inner_fd);
  ASSERT(strcmp(text, "") == 0);
  free(text);
  /* Both armed, both fire. */
  int a_fd = dt_tempfd(), b_fd = dt_tempfd();
  leak_watchdog *a = NULL, *b = NULL;
  ASSERT_EQ(leak_watchdog_start(0.05, a_fd, LEAK_DUMP_ALL_THREADS, &a), 0);
  ASSERT_EQ(leak_watchdog_start(1, b_fd, LEAK_DUMP_ALL_THREADS, &b), 0);
  ASSERT(dt_wait_for(a_fd, "Timeout (0:00:00.050000)!\n", 1, 60));
  ASSERT(dt_wait_for(b_fd, "Timeout (0:00:01)!\n", 1, 60));
  ASSERT(dt_wait_for(b_fd, "in parked_worker", 1, 60));
  leak_watchdog_cancel(b);
  leak_watchdog_cancel(a);
  PyEval_RestoreThread(saved);
  return 0;
}

typedef struct thread_case {
  int index;
  int fd;
  int fired;
} thread_case;

/* Four threads each arm their own watchdog, each with a Python thread state of its own
 * (PyGILState_Ensure) so the watchdog has an owner to dump (no ALL_THREADS: the owner alone); the
 * odd ones cancel theirs before the (long) deadline, the even ones wait until theirs fired. */
static void *arm_in_thread(void *arg) {
  thread_case *c = arg;
  PyGILState_STATE gil = PyGILState_Ensure();
  char source[256];
  snprintf(source, sizeof source, "def owner_%d():\n    pass\nowner_%d()\n", c->index, c->index);
  ASSERT_EQ(PyRun_SimpleString(source), 0);
  PyThreadState *me = PyEval_SaveThread();
  leak_watchdog *w = NULL;
  double timeout = c->index % 2 ? 60 : 0.05 * (c->index + 1);
  ASSERT_EQ(leak_watchdog_start(timeout, c->fd, 0, &w), 0);
  if (c->index % 2 == 0) c->fired = dt_wait_for(c->fd, "(most recent call first):\n", 1, 60);
  leak_watchdog_cancel(w);
  PyEval_RestoreThread(me);
  PyGILState_Release(gil);
  return NULL;
}

TEST(watchdog_threads_fire_independently) {
  test_python_start();
  PyThreadState *saved = PyEval_SaveThread();
  thread_case cases[4];
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) {
    cases[i] = (thread_case){i, dt_tempfd(), 0};
    ASSERT_EQ(pthread_create(&threads[i], NULL, arm_in_thread, &cases[i]), 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  PyEval_RestoreThread(saved);
  for (int i = 0; i < 4; i++) {
    char *text = dt_read_all(cases[i].fd);
    if (i % 2 == 0) {
      ASSERT(cases[i].fired);
      /* Only the owner thread, which is in C code under PyGILState_Ensure: no Python frame. */
      ASSERT_MATCHES(text, "^Timeout \\([0-9:.]+\\)!\nThread 0x[0-9a-f]{16} \\(most recent call first\\):\n(  )?<no Python frame>\n$");
    } else {
      ASSERT(strcmp(text, "") == 0);
    }
    free(text);
  }
  return 0;
}

TEST(watchdog_repeat_fires_again_until_cancelled) {
  PyThreadState *saved = start_python_parked();
  int fd = dt_tempfd();
  leak_watchdog *w = NULL;
  ASSERT_EQ(leak_watchdog_start(0.02, fd, LEAK_DUMP_ALL_THREADS | LEAK_DUMP_REPEAT, &w), 0);
  ASSERT(dt_wait_for(fd, "Timeout (0:00:00.020000)!\n", 3, 60));
  leak_watchdog_cancel(w);
  /* Cancel waited for a dump in progress: nothing is written afterwards. */
  char *before = dt_read_all(fd);
  dt_sleep_ms(200);
  char *after = dt_read_all(fd);
  ASSERT(strcmp(before, after) == 0);
  ASSERT(dt_all_lines_valid(after));
  free(before);
  free(after);
  PyEval_RestoreThread(saved);
  return 0;
}

/* The watchdog is armed just before the stuck call, with a timeout far longer than it takes to
 * get there. */
static void exit_body(void *arg) {
  test_python_start();
  ASSERT_EQ(test_python_run("import time\n"
                            "def stuck():\n"
                            "    time.sleep(120)\n"),
            0);
  leak_watchdog *w = NULL;
  ASSERT_EQ(leak_watchdog_start(0.5, 2, LEAK_DUMP_ALL_THREADS | LEAK_DUMP_EXIT, &w), 0);
  test_python_run("stuck()\n");
}

TEST(watchdog_exit_ends_process_with_status_1) {
  char *out = NULL;
  int status = dt_run_child(exit_body, NULL, &out);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 1);
  ASSERT_MATCHES(out, "^Timeout \\(0:00:00\\.500000\\)!\nThread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                      "  File \"<string>\", line 3 in stuck\n  File \"<string>\", line 1 in <module>\n$");
  free(out);
  return 0;
}

/* faulthandler.dump_traceback_later: a second call replaces the first. */
TEST(watchdog_dump_later_is_replaced) {
  PyThreadState *saved = start_python_parked();
  int first = dt_tempfd(), second = dt_tempfd();
  ASSERT_EQ(leak_dump_later(60, first, 0), 0);
  ASSERT_EQ(leak_dump_later(0.05, second, LEAK_DUMP_REPEAT), 0);
  ASSERT(dt_wait_for(second, "Timeout (0:00:00.050000)!\n", 2, 60));
  leak_dump_later_cancel();
  leak_dump_later_cancel();
  char *text = dt_read_all(first);
  ASSERT(strcmp(text, "") == 0);
  free(text);
  text = dt_read_all(second);
  ASSERT(dt_all_lines_valid(text));
  ASSERT_MATCHES(text, "in parked_worker$");
  free(text);
  /* Bad arguments leave the current one armed. */
  int third = dt_tempfd();
  ASSERT_EQ(leak_dump_later(0.05, third, 0), 0);
  ASSERT_EQ(leak_dump_later(0, third, 0), LEAK_EINVAL);
  ASSERT(dt_wait_for(third, "Timeout (0:00:00.050000)!\n", 1, 60));
  leak_dump_later_cancel();
  PyEval_RestoreThread(saved);
  return 0;
}

/* After fork the parent's watchdogs are gone in the child (their thread does not exist there); the
 * child can cancel its copies and start its own, and the parent's still fires in the parent. */
TEST(watchdog_after_fork) {
  PyThreadState *saved = start_python_parked();
  int parent_fd = dt_tempfd(), child_fd = dt_tempfd(), inherited_fd = dt_tempfd();
  leak_watchdog *inherited = NULL, *parent_w = NULL;
  ASSERT_EQ(leak_watchdog_start(60, inherited_fd, LEAK_DUMP_ALL_THREADS, &inherited), 0);
  /* Fork only once the service thread has fired once and sits idle: a thread still starting up
   * may hold the allocator's lock, and ASan's allocator (unlike glibc's) is not fork-safe, so the
   * child's first malloc would hang.  The library never forks; this is about the test. */
  leak_watchdog *warm_up = NULL;
  int warm_up_fd = dt_tempfd();
  ASSERT_EQ(leak_watchdog_start(0.01, warm_up_fd, 0, &warm_up), 0);
  ASSERT(dt_wait_for(warm_up_fd, "Timeout (0:00:00.010000)!\n", 1, 60));
  leak_watchdog_cancel(warm_up);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    leak_watchdog_cancel(inherited);
    leak_watchdog *w = NULL;
    if (leak_watchdog_start(0.05, child_fd, LEAK_DUMP_ALL_THREADS, &w) != 0) _exit(2);
    int fired = dt_wait_for(child_fd, "Timeout (0:00:00.050000)!\n", 1, 60);
    leak_watchdog_cancel(w);
    _exit(fired ? 0 : 3);
  }
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_EQ(leak_watchdog_start(0.05, parent_fd, LEAK_DUMP_ALL_THREADS, &parent_w), 0);
  ASSERT(dt_wait_for(parent_fd, "in parked_worker", 1, 60));
  leak_watchdog_cancel(parent_w);
  leak_watchdog_cancel(inherited);
  char *text = dt_read_all(inherited_fd);
  ASSERT(strcmp(text, "") == 0);
  free(text);
  PyEval_RestoreThread(saved);
  return 0;
}
