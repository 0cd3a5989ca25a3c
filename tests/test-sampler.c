/* The CPU sampler through its C API, in an embedded interpreter: option checks, a hot function
 * found on two threads, wall mode sampling a sleeping thread, counters, stop and restart. */
#include "core/internal.h"
#include "profile/profile.h"
#include "runner.h"

/* The samples of frames named `function` (anywhere in the stack) on thread `thread_id` (0: any). */
static int64_t samples_in(const leak_profile *p, const char *function, uint64_t thread_id) {
  int64_t total = 0;
  for (size_t i = 0; i < leak_profile_sample_count(p); i++) {
    uint32_t thread, n;
    const uint32_t *frames;
    const int64_t *values;
    ASSERT_EQ(leak_profile_sample(p, i, &thread, &frames, &n, &values), 0);
    uint64_t id;
    ASSERT_EQ(leak_profile_thread(p, thread, &id, NULL), 0);
    if (thread_id && id != thread_id) continue;
    for (uint32_t k = 0; k < n; k++) {
      const char *fn;
      ASSERT_EQ(leak_profile_frame(p, frames[k], &fn, NULL, NULL), 0);
      if (strcmp(fn, function) == 0) {
        total += values[0];
        break;
      }
    }
  }
  return total;
}

/* A Python int from __main__. */
static unsigned long long main_int(const char *name) {
  PyObject *m = PyImport_AddModule("__main__");
  PyObject *v = PyObject_GetAttrString(m, name);
  ASSERT(v != NULL);
  unsigned long long x = PyLong_AsUnsignedLongLong(v);
  Py_DECREF(v);
  return x;
}

TEST(sampler_rejects_bad_options) {
  leak_sampler_options o = LEAK_SAMPLER_OPTIONS_INIT;
  ASSERT_EQ(leak_sampler_start(&o), LEAK_ENOPYTHON); /* no interpreter yet */
  test_python_start();
  ASSERT_EQ(leak_sampler_stop(NULL), LEAK_ENOTSTARTED);
  ASSERT_EQ(leak_sampler_start(NULL), LEAK_EINVAL);
  o.interval_ns = 0;
  ASSERT_EQ(leak_sampler_start(&o), LEAK_EINVAL);
  o.interval_ns = -5;
  ASSERT_EQ(leak_sampler_start(&o), LEAK_EINVAL);
  o.interval_ns = 1000000;
  o.mode = (leak_sampler_mode)7;
  ASSERT_EQ(leak_sampler_start(&o), LEAK_EINVAL);
  o.mode = LEAK_SAMPLER_WALL;
  o.nframe = 0;
  ASSERT_EQ(leak_sampler_start(&o), LEAK_EINVAL);
  o.nframe = 513;
  ASSERT_EQ(leak_sampler_start(&o), LEAK_EINVAL);
  o.nframe = 16;
  ASSERT_EQ(leak_sampler_start(&o), 0);
  ASSERT_EQ(leak_sampler_is_running(), 1);
  ASSERT_EQ(leak_sampler_start(&o), LEAK_EBUSY);
  ASSERT_EQ(leak_sampler_stop(NULL), 0);
  ASSERT_EQ(leak_sampler_is_running(), 0);
  ASSERT_EQ(leak_sampler_stop(NULL), LEAK_ENOTSTARTED);
  return 0;
}

/* Burns `seconds` of each thread's own CPU time in hot(), on the main thread and a second one;
 * the work is measured in CPU time so that the test does not depend on the machine's load. */
static const char two_threads_source[] =
    "import threading, time\n"
    "def hot(seconds):\n"
    "    end = time.thread_time() + seconds\n"
    "    x = 0\n"
    "    while time.thread_time() < end:\n"
    "        for i in range(2000): x += i * i\n"
    "    return x\n"
    "def worker():\n"
    "    global worker_id\n"
    "    worker_id = threading.get_ident()\n"
    "    hot(0.3)\n"
    "main_id = threading.get_ident()\n"
    "t = threading.Thread(target=worker)\n"
    "t.start()\n"
    "hot(0.3)\n"
    "t.join()\n";

TEST(sampler_cpu_hot_function_on_two_threads) {
  test_python_start();
  leak_sampler_options o = LEAK_SAMPLER_OPTIONS_INIT;
  o.interval_ns = 2000000;
  ASSERT_EQ(leak_sampler_start(&o), 0);
  ASSERT_EQ(test_python_run(two_threads_source), 0);
  leak_sampler_stats stats;
  leak_sampler_get_stats(&stats);
  ASSERT_EQ(stats.threads_missed, 0);
  leak_profile *p = NULL;
  ASSERT_EQ(leak_sampler_stop(&p), 0);
  ASSERT(p != NULL);
  leak_sampler_get_stats(&stats);
  int64_t total = leak__profile_total(p, 0);
  ASSERT_EQ((uint64_t)total, stats.samples);
  ASSERT_GE(stats.signals, 10);
  ASSERT_LE(stats.signals, stats.samples);
  ASSERT_GE(stats.threads, 2);
  /* 0.6 s of CPU at one sample per 2 ms is 300; the thread started after start() is covered a
   * manager round later, so ask for well over half. */
  ASSERT_GE(total, 150);
  int64_t main_hot = samples_in(p, "hot", main_int("main_id"));
  int64_t worker_hot = samples_in(p, "hot", main_int("worker_id"));
  ASSERT_GE(main_hot, 50);
  ASSERT_GE(worker_hot, 50);
  /* the hot function holds most samples (under valgrind, starting and joining the thread costs more) */
  ASSERT_GE((main_hot + worker_hot) * 10, total * 6);
  leak_profile_free(p);
  return 0;
}

TEST(sampler_wall_mode_sees_sleeping_thread) {
  test_python_start();
  leak_sampler_options o = LEAK_SAMPLER_OPTIONS_INIT;
  o.mode = LEAK_SAMPLER_WALL;
  o.interval_ns = 2000000;
  ASSERT_EQ(leak_sampler_start(&o), 0);
  ASSERT_EQ(test_python_run("import time\n"
                            "def sleeper():\n"
                            "    for _ in range(20): time.sleep(0.01)\n"
                            "sleeper()\n"),
            0);
  leak_profile *p = NULL;
  ASSERT_EQ(leak_sampler_stop(&p), 0);
  int64_t wall = samples_in(p, "sleeper", 0);
  ASSERT_GE(wall, 20);
  leak_profile_free(p);
  /* CPU mode gives the same sleeper (almost) nothing: it sleeps.  Relative to the wall figure (200 ms:
   * ~100 samples), since under valgrind each sleep call itself costs a millisecond of CPU or more. */
  o.mode = LEAK_SAMPLER_CPU;
  ASSERT_EQ(leak_sampler_start(&o), 0);
  ASSERT_EQ(test_python_run("sleeper()\n"), 0);
  ASSERT_EQ(leak_sampler_stop(&p), 0);
  ASSERT_LE(samples_in(p, "sleeper", 0) * 4, wall);
  leak_profile_free(p);
  return 0;
}

TEST(sampler_restarts_and_writes) {
  test_python_start();
  ASSERT_EQ(test_python_run("import time\n"
                            "def spin(seconds):\n"
                            "    end = time.thread_time() + seconds\n"
                            "    while time.thread_time() < end: pass\n"),
            0);
  leak_sampler_options o = LEAK_SAMPLER_OPTIONS_INIT;
  for (int round = 0; round < 3; round++) {
    ASSERT_EQ(leak_sampler_start(&o), 0);
    ASSERT_EQ(test_python_run("spin(0.1)\n"), 0);
    leak_profile *p = NULL;
    ASSERT_EQ(leak_sampler_stop(&p), 0);
    ASSERT_GE(samples_in(p, "spin", 0), 20);
    char path[] = "/tmp/libleak-sampler-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    unlink(path);
    for (int format = 0; format < 4; format++) ASSERT_EQ(leak_profile_write(p, (leak_profile_format)format, fd), 0);
    close(fd);
    leak_profile_free(p);
  }
  return 0;
}
