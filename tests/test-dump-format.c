/* The dumper's output against faulthandler's, in the same process on the same threads: the same
 * text byte for byte, threads in the same order (the interpreter's), on
 * plain calls, parked threads, generators, coroutines, escaped and cut names, a thread state with
 * no frame and a dump during garbage collection.  Also the async-signal-safe formatting helpers. */
#include "core/internal.h"
#include "faults/dump.h"
#include "core/sigsafe.h"
#include "runner.h"
#include "test-dump-util.h"

#include <pthread.h>
#include <sys/time.h>

/* A thread state with no frame, as an embedding host creates one. */
static PyThreadState *frameless;

/* _dprobe.ours(fd, flags) -> rc: leak_dump_stacks, for comparison with faulthandler. */
static PyObject *probe_ours(PyObject *self, PyObject *args) {
  int fd;
  unsigned int flags;
  if (!PyArg_ParseTuple(args, "iI", &fd, &flags)) return NULL;
  return PyLong_FromLong(leak_dump_stacks(fd, flags));
}

static PyObject *probe_add_frameless(PyObject *self, PyObject *unused) {
  frameless = PyThreadState_New(PyThreadState_GetInterpreter(PyThreadState_Get()));
  Py_RETURN_NONE;
}

static PyObject *probe_drop_frameless(PyObject *self, PyObject *unused) {
  PyThreadState_Clear(frameless);
  PyThreadState_Delete(frameless);
  frameless = NULL;
  Py_RETURN_NONE;
}

/* Parking lot: threads that call _dprobe.park() block in C with the GIL released, so their Python
 * frames cannot move between the two dumps being compared; unpark_all() lets them go.  Protected
 * by park_lock. */
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int parked_now;
static unsigned park_generation;

static PyObject *probe_park(PyObject *self, PyObject *unused) {
  Py_BEGIN_ALLOW_THREADS
  pthread_mutex_lock(&park_lock);
  unsigned generation = park_generation;
  parked_now++;
  while (generation == park_generation) pthread_cond_wait(&park_cond, &park_lock);
  parked_now--;
  pthread_mutex_unlock(&park_lock);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

static PyObject *probe_parked(PyObject *self, PyObject *unused) {
  pthread_mutex_lock(&park_lock);
  int n = parked_now;
  pthread_mutex_unlock(&park_lock);
  return PyLong_FromLong(n);
}

static PyObject *probe_unpark_all(PyObject *self, PyObject *unused) {
  pthread_mutex_lock(&park_lock);
  park_generation++;
  pthread_cond_broadcast(&park_cond);
  pthread_mutex_unlock(&park_lock);
  Py_RETURN_NONE;
}

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
/* Two dumps of every thread from a thread without Python, while the main thread is caught between
 * two states: the first while it stays caught, the second as it moves on a millisecond later. */
struct caught_dumps {
  int fd_caught, fd_moving;
  int caught_done; /* set when the first dump is written */
};

static void *dump_twice(void *arg) {
  struct caught_dumps *d = arg;
  ASSERT_EQ(leak_dump_stacks(d->fd_caught, LEAK_DUMP_ALL_THREADS), 0);
  __atomic_store_n(&d->caught_done, 1, __ATOMIC_RELEASE);
  ASSERT_EQ(leak_dump_stacks(d->fd_moving, LEAK_DUMP_ALL_THREADS), 0);
  return NULL;
}

/* _dprobe.caught(fd_caught, fd_moving, how): puts the calling thread between two states and leaves
 * it there until the first dump is written, then a millisecond more.  how 0: where 3.11 is when a
 * frame that raised has been popped (tstate->datastack_top moved down to it) but is still the
 * current frame; how 1: where 3.11 and 3.12 are when they have published a new C frame whose current
 * frame is not set yet (here NULL).  The GIL stays held, so no Python code runs meanwhile, and the
 * frames are whole all along. */
static PyObject *probe_caught(PyObject *self, PyObject *args) {
  struct caught_dumps d = {0};
  int how;
  if (!PyArg_ParseTuple(args, "iii", &d.fd_caught, &d.fd_moving, &how)) return NULL;
  PyThreadState *tstate = PyThreadState_Get();
  PyObject **top = tstate->datastack_top;
  _PyCFrame unset = {0};
  unset.previous = tstate->cframe;
  if (how == 0)
    __atomic_store_n(&tstate->datastack_top, (PyObject **)tstate->cframe->current_frame, __ATOMIC_RELEASE);
  else
    __atomic_store_n(&tstate->cframe, &unset, __ATOMIC_RELEASE);
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, NULL, dump_twice, &d), 0);
  while (!__atomic_load_n(&d.caught_done, __ATOMIC_ACQUIRE)) dt_sleep_ms(1);
  dt_sleep_ms(1);
  __atomic_store_n(&tstate->datastack_top, top, __ATOMIC_RELEASE);
  __atomic_store_n(&tstate->cframe, unset.previous, __ATOMIC_RELEASE);
  ASSERT_EQ(pthread_join(thread, NULL), 0);
  Py_RETURN_NONE;
}
#endif

static PyMethodDef probe_methods[] = {
    {"park", probe_park, METH_NOARGS, NULL},
    {"parked", probe_parked, METH_NOARGS, NULL},
    {"unpark_all", probe_unpark_all, METH_NOARGS, NULL},
    {"ours", probe_ours, METH_VARARGS, NULL},
    {"add_frameless", probe_add_frameless, METH_NOARGS, NULL},
    {"drop_frameless", probe_drop_frameless, METH_NOARGS, NULL},
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    {"caught", probe_caught, METH_VARARGS, NULL},
#endif
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef probe_module = {PyModuleDef_HEAD_INIT, "_dprobe", NULL, -1, probe_methods};
static PyObject *probe_init(void) { return PyModule_Create(&probe_module); }

static void start_python_with_probe(void) {
  PyImport_AppendInittab("_dprobe", probe_init);
  test_python_start();
}

/* check(all_threads): both dumps taken from the same line, so every frame is the same, and the
 * threads come in the same order: the texts are equal. */
static const char *compare_helpers =
    "import faulthandler, threading, tempfile, sys, gc, _dprobe\n"
    "def capture(fn, *args):\n"
    "    with tempfile.TemporaryFile() as f:\n"
    "        rc = fn(f.fileno(), *args)\n"
    "        assert rc in (None, 0), rc\n"
    "        f.seek(0)\n"
    "        return f.read().decode('ascii')\n"
    "def blocks(text):\n"
    "    return sorted(text.rstrip('\\n').split('\\n\\n'))\n"
    "def check(all_threads=True):\n"
    "    theirs, ours = capture(faulthandler.dump_traceback, all_threads), capture(_dprobe.ours, int(all_threads))\n"
    "    assert theirs == ours, (theirs, ours)\n"
    "    if all_threads:\n"
    "        assert len(blocks(ours)) >= threading.active_count(), ours\n"
    "    assert 'File' in ours\n"
    "    return ours\n"
    "def park(n):\n"
    "    if n:\n"
    "        return park(n - 1)\n"
    "    _dprobe.park()\n"
    "def parked_gen():\n"
    "    _dprobe.park()\n"
    "    yield 1\n"
    "def wait_parked(n):\n"
    "    while _dprobe.parked() < n: threading.Event().wait(0.001)\n"
    "def start_threads():\n"
    "    ts = [threading.Thread(target=park, args=(i,)) for i in range(3)]\n"
    "    ts.append(threading.Thread(target=lambda: next(parked_gen())))\n"
    "    for t in ts: t.start()\n"
    "    wait_parked(len(ts))\n"
    "    return ts\n"
    "def stop_threads(ts):\n"
    "    _dprobe.unpark_all()\n"
    "    for t in ts: t.join()\n";

TEST(dump_format_matches_faulthandler_threads) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(compare_helpers), 0);
  ASSERT_EQ(test_python_run("ts = start_threads()\n"
                            "def inner():\n"
                            "    check(True)\n"
                            "    check(False)\n"
                            "def outer():\n"
                            "    inner()\n"
                            "outer()\n"
                            "stop_threads(ts)\n"
                            "ts = start_threads()\n"
                            "errors = []\n"
                            "def from_thread():\n"
                            "    try:\n"
                            "        wait_parked(len(ts) + 1)\n"
                            "        outer()\n"
                            "    except BaseException as e:\n"
                            "        errors.append(e)\n"
                            "    _dprobe.unpark_all()\n"
                            "t = threading.Thread(target=from_thread); t.start()\n"
                            "_dprobe.park()\n"
                            "t.join()\n"
                            "for w in ts: w.join()\n"
                            "if errors: raise errors[0]\n"),
            0);
  return 0;
}

TEST(dump_format_matches_faulthandler_generators_coroutines) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(compare_helpers), 0);
  ASSERT_EQ(test_python_run("def gen():\n"
                            "    yield check(True)\n"
                            "    yield check(False)\n"
                            "list(gen())\n"
                            "async def leaf():\n"
                            "    check(True); check(False)\n"
                            "async def mid():\n"
                            "    await leaf()\n"
                            "c = mid()\n"
                            "try:\n"
                            "    c.send(None)\n"
                            "except StopIteration:\n"
                            "    pass\n"
                            "import asyncio\n"
                            "async def task_body():\n"
                            "    await asyncio.sleep(0)\n"
                            "    check(True)\n"
                            "asyncio.run(task_body())\n"
                            "[check(False) for _ in range(1)]\n"),
            0);
  return 0;
}

TEST(dump_format_matches_faulthandler_escapes_and_cuts) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(compare_helpers), 0);
  ASSERT_EQ(test_python_run("src = 'def f\\u00fcnf():\\n    return check(True) + check(False)\\n'\n"
                            "src += 'def \\u65e5\\u672c():\\n    return f\\u00fcnf()\\n'\n"
                            "src += 'def ' + 'a' * 600 + '():\\n    return \\u65e5\\u672c()\\n'\n"
                            "ns = {'check': check}\n"
                            "exec(compile(src, 'd\\u00e9j\\u00e0/\\t\\U0001F600/' + 'x' * 550 + '.py', 'exec'), ns)\n"
                            "out = ns['a' * 600]()\n"
                            "assert '\\\\xe9' in out and '\\\\x09' in out and '\\\\U0001f600' in out, out\n"
                            "assert 'f\\\\xfcnf' in out and '\\\\u65e5\\\\u672c' in out, out\n"
                            "assert 'a' * 500 + '...' in out and 'a' * 501 not in out, out\n"),
            0);
  return 0;
}

TEST(dump_format_matches_faulthandler_frameless_and_gc) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(compare_helpers), 0);
  ASSERT_EQ(test_python_run("_dprobe.add_frameless()\n"
                            "out = check(True)\n"
                            "assert '<no Python frame>' in out, out\n"
                            "_dprobe.drop_frameless()\n"
                            "seen = []\n"
                            "class Cycle:\n"
                            "    def __del__(self):\n"
                            "        seen.append(check(True))\n"
                            "c = Cycle(); c.me = c; del c\n"
                            "gc.collect()\n"
                            "assert seen\n"
                            "assert ('Garbage-collecting' in seen[0]) == (sys.version_info >= (3, 10)), seen[0]\n"),
            0);
  return 0;
}

/* The current thread of a dump is the caller; a thread with no Python state gets LEAK_ENOPYTHON
 * for a single-thread dump and the main thread first for an all-threads dump. */
static void *dump_from_c_thread(void *arg) {
  int fd = *(int *)arg;
  ASSERT_EQ(leak_dump_stacks(fd, 0), LEAK_ENOPYTHON);
  ASSERT_EQ(leak_dump_stacks(fd, LEAK_DUMP_ALL_THREADS), 0);
  return NULL;
}

TEST(dump_from_thread_without_python) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run("import threading\n"
                            "def where_main_waits():\n"
                            "    pass\n"),
            0);
  int fd = dt_tempfd();
  PyThreadState *saved = PyEval_SaveThread();
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, NULL, dump_from_c_thread, &fd), 0);
  ASSERT_EQ(pthread_join(thread, NULL), 0);
  PyEval_RestoreThread(saved);
  char *text = dt_read_all(fd);
  ASSERT_MATCHES(text, "^Thread 0x[0-9a-f]{16} \\(most recent call first\\):\n(  )?<no Python frame>\n");
  ASSERT_EQ(dt_count(text, "Current thread"), 0);
  ASSERT(dt_all_lines_valid(text));
  free(text);
  ASSERT_EQ(leak_dump_stacks(-1, 0), LEAK_EBADF);
  return 0;
}

/* ---- A thread caught between two states ---------------------------------------------------- */

/* A dump from another thread that finds a thread between two states (3.11 and 3.12: a C frame
 * published before its current frame is set, a generator marked suspended before it is left, a
 * frame popped before its caller is current) reads it again, so a busy thread is not printed
 * without frames when it is only moving on. */
TEST(dump_of_a_thread_caught_between_two_states) {
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
  start_python_with_probe();
  for (int how = 0; how < 2; how++) {
    int fd_caught = dt_tempfd(), fd_moving = dt_tempfd();
    char code[256];
    snprintf(code, sizeof code,
             "import _dprobe\n"
             "def caught():\n"
             "    _dprobe.caught(%d, %d, %d)\n"
             "caught()\n",
             fd_caught, fd_moving, how);
    ASSERT_EQ(test_python_run(code), 0);
    char *text = dt_read_all(fd_caught);
    /* The state the test made is one the reader refuses as long as it lasts. */
    ASSERT_MATCHES(text, "^Thread 0x[0-9a-f]{16} \\(most recent call first\\):\n  <no Python frame>\n$");
    free(text);
    text = dt_read_all(fd_moving);
    ASSERT_MATCHES(text, "^Thread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                         "  File \"<string>\", line 3 in caught\n"
                         "  File \"<string>\", line 4 in <module>\n$");
    ASSERT(dt_all_lines_valid(text));
    free(text);
    close(fd_caught);
    close(fd_moving);
  }
  return 0;
#else
  return TEST_SKIP("no frame of this CPython is published before it is whole");
#endif
}

/* ---- sigsafe ------------------------------------------------------------------------------ */

/* Formats with one of the helpers into a temp file and returns the text. */
static char *format_with(void (*fill)(leak__sigsafe_out *, void *), void *arg) {
  int fd = dt_tempfd();
  leak__sigsafe_out out;
  leak__sigsafe_init(&out, fd);
  fill(&out, arg);
  ASSERT_EQ(leak__sigsafe_flush(&out), 0);
  char *text = dt_read_all(fd);
  close(fd);
  return text;
}

static void fill_numbers(leak__sigsafe_out *out, void *arg) {
  leak__sigsafe_decimal(out, 0);
  leak__sigsafe_puts(out, " ");
  leak__sigsafe_decimal(out, 18446744073709551615ULL);
  leak__sigsafe_puts(out, " ");
  leak__sigsafe_hex(out, 0xabcULL, 16);
  leak__sigsafe_puts(out, " ");
  leak__sigsafe_hex(out, 0, 2);
  leak__sigsafe_puts(out, " ");
  leak__sigsafe_hex(out, 0x1234567890abcdefULL, 4);
  leak__sigsafe_puts(out, " ");
  leak__sigsafe_hex(out, 7, 40);
}

TEST(sigsafe_numbers) {
  char *text = format_with(fill_numbers, NULL);
  ASSERT(strcmp(text, "0 18446744073709551615 0000000000000abc 00 1234567890abcdef 0000000000000007") == 0);
  free(text);
  return 0;
}

static void fill_unicode(leak__sigsafe_out *out, void *arg) { leak__sigsafe_unicode(out, arg); }

/* Checks one string's escaped form. */
static void expect_unicode(PyObject *text, const char *expected) {
  ASSERT(text != NULL);
  char *got = format_with(fill_unicode, text);
  if (strcmp(got, expected) != 0) {
    fprintf(stderr, "got [%s], expected [%s]\n", got, expected);
    ASSERT(0);
  }
  free(got);
  Py_DECREF(text);
}

TEST(sigsafe_unicode_escapes_and_cuts) {
  test_python_start();
  expect_unicode(PyUnicode_FromString("plain ascii"), "plain ascii");
  expect_unicode(PyUnicode_FromString("tab\there\x7f"), "tab\\x09here\\x7f");
  expect_unicode(PyUnicode_FromString("d\xc3\xa9j\xc3\xa0"), "d\\xe9j\\xe0");
  expect_unicode(PyUnicode_FromString("\xe6\x97\xa5\xe6\x9c\xac"), "\\u65e5\\u672c");
  expect_unicode(PyUnicode_FromString("\xf0\x9f\x98\x80!"), "\\U0001f600!");
  char long_text[601];
  memset(long_text, 'z', 600);
  long_text[600] = '\0';
  char expected[504];
  memset(expected, 'z', 500);
  memcpy(expected + 500, "...", 4);
  expect_unicode(PyUnicode_FromString(long_text), expected);
  long_text[500] = '\0';
  expect_unicode(PyUnicode_FromString(long_text), long_text);
  /* Not a str: nothing is printed. */
  PyObject *number = PyLong_FromLong(5);
  char *got = format_with(fill_unicode, number);
  ASSERT(strcmp(got, "") == 0);
  free(got);
  Py_DECREF(number);
  return 0;
}

TEST(sigsafe_reports_write_errors) {
  ASSERT_EQ(leak__sigsafe_write(-1, "x", 1), LEAK_EBADF);
  int fds[2];
  ASSERT(pipe(fds) == 0);
  close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  leak__sigsafe_out out;
  leak__sigsafe_init(&out, fds[1]);
  leak__sigsafe_puts(&out, "lost");
  ASSERT_EQ(leak__sigsafe_flush(&out), LEAK_EIO);
  leak__sigsafe_puts(&out, "dropped after the first error");
  ASSERT_EQ(leak__sigsafe_flush(&out), LEAK_EIO);
  close(fds[1]);
  return 0;
}

/* The reader drains a pipe slowly while SIGALRM (installed without SA_RESTART) keeps interrupting
 * the writer, so write(2) fails with EINTR and returns short counts; every byte must still arrive
 * in order. */
static volatile sig_atomic_t alarms;
static void count_alarm(int signum) { alarms++; }

typedef struct drain {
  int fd;
  size_t got;
  int in_order;
} drain;

static void *drain_slowly(void *arg) {
  drain *d = arg;
  char buf[997];
  ssize_t n;
  while ((n = read(d->fd, buf, sizeof buf)) != 0) {
    if (n < 0) {
      ASSERT(errno == EINTR);
      continue;
    }
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != (char)('a' + (d->got + (size_t)i) % 26)) d->in_order = 0;
    d->got += (size_t)n;
    dt_sleep_ms(1);
  }
  return NULL;
}

TEST(sigsafe_write_survives_eintr_and_partial_writes) {
  size_t size = 1 << 20;
  char *data = malloc(size);
  for (size_t i = 0; i < size; i++) data[i] = (char)('a' + i % 26);
  int fds[2];
  ASSERT(pipe(fds) == 0);
  /* The reader thread must not take the alarms: block SIGALRM while creating it. */
  sigset_t alrm, saved;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, &saved);
  drain d = {fds[0], 0, 1};
  pthread_t reader;
  ASSERT_EQ(pthread_create(&reader, NULL, drain_slowly, &d), 0);
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = count_alarm; /* no SA_RESTART: blocked writes fail with EINTR */
  sigaction(SIGALRM, &action, NULL);
  struct itimerval every_ms = {{0, 1000}, {0, 1000}};
  setitimer(ITIMER_REAL, &every_ms, NULL);
  ASSERT_EQ(leak__sigsafe_write(fds[1], data, size), 0);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  close(fds[1]);
  pthread_join(reader, NULL);
  ASSERT_EQ(d.got, size);
  ASSERT(d.in_order);
  ASSERT_GT(alarms, 0);
  free(data);
  return 0;
}
