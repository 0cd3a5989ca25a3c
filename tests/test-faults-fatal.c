/* Fatal signals for real: each test runs Python in a grandchild, enables the handlers, and makes
 * the fault happen inside a Python call (a null store, abort(), raise(SIGFPE), a read past a
 * truncated mapping, a trap instruction, a C stack overflow).  The parent checks the report line
 * by line and that the grandchild died by that very signal, i.e. the previous handler (here the
 * default action) ran after the dump. */
#include "core/internal.h"
#include "runner.h"
#include "test-dump-util.h"

#include <sys/auxv.h>
#include <sys/mman.h>

#define NO_SANITIZE __attribute__((noinline, no_sanitize_address, no_sanitize_undefined))

NO_SANITIZE static void crash_segv(void) {
  volatile int *volatile nowhere = NULL;
  *nowhere = 1;
}

NO_SANITIZE static void crash_bus(void) {
  char path[] = "/tmp/libleak-bus-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  long page = sysconf(_SC_PAGESIZE);
  if (fd < 0 || ftruncate(fd, page) != 0) return;
  volatile char *map = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return;
  if (ftruncate(fd, 0) != 0) return;
  (void)map[0];
}

NO_SANITIZE static void crash_ill(void) { __builtin_trap(); }

/* Deep enough to run off the thread's stack (the bound is never reached: 4 KiB a frame); the
 * array keeps each frame large and alive. */
static volatile int overflow_bound = 1 << 30;
NO_SANITIZE static int overflow(int depth) {
  volatile char pad[4096];
  pad[0] = (char)depth;
  if (depth >= overflow_bound) return 0;
  return overflow(depth + 1) + pad[0];
}

/* _crash.now(name): the fault, raised inside a Python call. */
static PyObject *crash_now(PyObject *self, PyObject *arg) {
  const char *name = PyUnicode_AsUTF8(arg);
  if (name == NULL) return NULL;
  if (strcmp(name, "segv") == 0) crash_segv();
  if (strcmp(name, "abort") == 0) abort();
  if (strcmp(name, "fpe") == 0) raise(SIGFPE);
  if (strcmp(name, "bus") == 0) crash_bus();
  if (strcmp(name, "ill") == 0) crash_ill();
  if (strcmp(name, "overflow") == 0) overflow(0);
  PyErr_Format(PyExc_RuntimeError, "crash %s did not kill the process", name);
  return NULL;
}

static PyMethodDef crash_methods[] = {{"now", crash_now, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef crash_module = {PyModuleDef_HEAD_INIT, "_crash", NULL, -1, crash_methods};
static PyObject *crash_init(void) { return PyModule_Create(&crash_module); }

typedef struct crash_case {
  const char *name;
  unsigned flags;
  int with_previous; /* install a previous handler of our own before enabling */
} crash_case;

/* A handler the host had before libleak: it must run after the dump. */
static void host_handler(int signum) {
  static const char text[] = "host handler ran\n";
  ssize_t unused = write(2, text, sizeof text - 1);
  (void)unused;
  _exit(42);
}

/* The grandchild: Python with a worker thread, the handlers on stderr, then the crash from a
 * known line of a known file. */
static void crash_body(void *arg) {
  const crash_case *c = arg;
  PyImport_AppendInittab("_crash", crash_init);
  test_python_start();
  if (c->with_previous) signal(SIGSEGV, host_handler);
  ASSERT_EQ(leak_faults_enable(2, c->flags), 0);
  ASSERT_EQ(leak_faults_is_enabled(), 1);
  char source[1024];
  snprintf(source, sizeof source,
           "import threading, _crash\n"
           "ready = threading.Event()\n"
           "def worker():\n"
           "    ready.set()\n"
           "    threading.Event().wait()\n"
           "threading.Thread(target=worker, daemon=True).start()\n"
           "ready.wait()\n"
           "src = 'def trigger():\\n    x = 1\\n    _crash.now(%s%s%s)\\ndef outer():\\n    trigger()\\n'\n"
           "exec(compile(src, 'crashme.py', 'exec'))\n"
           "outer()\n",
           "\"", c->name, "\"");
  test_python_run(source);
}

/* Runs one case and checks the report; returns the output (malloc'd). */
static char *run_crash(const char *name, unsigned flags, int expect_signal) {
  crash_case c = {name, flags, 0};
  char *out = NULL;
  int status = dt_run_child(crash_body, &c, &out);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != expect_signal) {
    fprintf(stderr, "%s: wait status %#x, expected death by signal %d; output:\n%s\n", name, status, expect_signal,
            out);
    ASSERT(0);
  }
  ASSERT_MATCHES(out, "^  File \"crashme.py\", line 3 in trigger\n  File \"crashme.py\", line 5 in outer\n"
                      "  File \"<string>\", line 10 in <module>$");
  ASSERT(dt_all_lines_valid(out));
  /* From 3.10 the report ends, as faulthandler's, with the extension modules outside the standard
   * library: here the test's own _crash. */
  if (PY_VERSION_HEX >= 0x030A0000)
    ASSERT_MATCHES(out, "line 10 in <module>\n\nExtension modules: _crash \\(total: 1\\)\n");
  else
    ASSERT_EQ(dt_count(out, "Extension modules"), 0);
  return out;
}

/* The all-threads report: header, blank line, then faulthandler's order: the worker (newer) first,
 * the main thread (which crashed) last, marked current. */
static void check_all_threads(const char *name, int signum, const char *title) {
  char *out = run_crash(name, LEAK_DUMP_ALL_THREADS, signum);
  char header[128];
  snprintf(header, sizeof header, "^Fatal Python error: %s\n\nThread 0x[0-9a-f]{16} \\(most recent call first\\):\n",
           title);
  ASSERT_MATCHES(out, header);
  /* The worker is parked in Event.wait, or just about to be (it may still be in ready.set()). */
  ASSERT_MATCHES(out, "^Thread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                      "(  File .*\n)*  File \"<string>\", line [45] in worker\n(  File .*\n)*\n"
                      "Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n  File \"crashme.py\", line 3 in trigger\n");
  free(out);
}

TEST(faults_fatal_sigsegv) {
  check_all_threads("segv", SIGSEGV, "Segmentation fault");
  return 0;
}

TEST(faults_fatal_sigabrt) {
  check_all_threads("abort", SIGABRT, "Aborted");
  return 0;
}

TEST(faults_fatal_sigfpe) {
  /* faulthandler's spelling changed in 3.13. */
  check_all_threads("fpe", SIGFPE, PY_VERSION_HEX >= 0x030D0000 ? "Floating-point exception" : "Floating point exception");
  return 0;
}

TEST(faults_fatal_sigbus) {
  check_all_threads("bus", SIGBUS, "Bus error");
  return 0;
}

TEST(faults_fatal_sigill) {
  check_all_threads("ill", SIGILL, "Illegal instruction");
  return 0;
}

/* Without LEAK_DUMP_ALL_THREADS: faulthandler's "Stack" block for the faulting thread only. */
TEST(faults_fatal_current_thread_only) {
  char *out = run_crash("segv", 0, SIGSEGV);
  ASSERT_MATCHES(out, "^Fatal Python error: Segmentation fault\n\nStack \\(most recent call first\\):\n"
                      "  File \"crashme.py\", line 3 in trigger\n");
  ASSERT_EQ(dt_count(out, "Thread 0x"), 0);
  free(out);
  return 0;
}

/* A C stack overflow can only be reported from the alternate signal stack. */
TEST(faults_fatal_stack_overflow_uses_alt_stack) {
  char *out = run_crash("overflow", LEAK_DUMP_ALL_THREADS, SIGSEGV);
  ASSERT_MATCHES(out, "^Fatal Python error: Segmentation fault\n\nThread 0x");
  ASSERT_MATCHES(out, "^Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n  File \"crashme.py\", line 3 in trigger\n");
  free(out);
  return 0;
}

/* The host's own SIGSEGV handler runs after the dump. */
TEST(faults_fatal_chains_to_previous_handler) {
  crash_case c = {"segv", LEAK_DUMP_ALL_THREADS, 1};
  char *out = NULL;
  int status = dt_run_child(crash_body, &c, &out);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42);
  ASSERT_MATCHES(out, "^Fatal Python error: Segmentation fault\n\nThread 0x[0-9a-f]{16} \\(most recent call first\\):\n");
  ASSERT_MATCHES(out, "^Current thread 0x[0-9a-f]{16} \\(most recent call first\\):\n"
                      "  File \"crashme.py\", line 3 in trigger\n(.*\n)*host handler ran\n");
  free(out);
  return 0;
}

/* The handlers are installed with SA_NODEFER|SA_ONSTACK on an alternate stack of the size the
 * kernel asks for; disable puts the previous handlers back; enabling twice keeps the first
 * previous handler. */
static void note_signal(int signum) { (void)signum; }

TEST(faults_enable_installs_and_disable_restores) {
  test_python_start();
  signal(SIGFPE, note_signal);
  ASSERT_EQ(leak_faults_is_enabled(), 0);
  ASSERT_EQ(leak_faults_enable(2, LEAK_DUMP_ALL_THREADS), 0);
  ASSERT_EQ(leak_faults_enable(2, 0), 0);
  int fatal[] = {SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};
  for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
    struct sigaction now;
    ASSERT_EQ(sigaction(fatal[i], NULL, &now), 0);
    ASSERT(now.sa_flags & SA_NODEFER);
    ASSERT(now.sa_flags & SA_ONSTACK);
    ASSERT(now.sa_handler != SIG_DFL && now.sa_handler != note_signal);
  }
  stack_t alt;
  ASSERT_EQ(sigaltstack(NULL, &alt), 0);
  ASSERT(!(alt.ss_flags & SS_DISABLE));
  ASSERT_GE(alt.ss_size, (size_t)SIGSTKSZ + getauxval(AT_MINSIGSTKSZ));
  ASSERT_EQ(leak_faults_disable(), 0);
  ASSERT_EQ(leak_faults_is_enabled(), 0);
  struct sigaction now;
  ASSERT_EQ(sigaction(SIGFPE, NULL, &now), 0);
  ASSERT(now.sa_handler == note_signal);
  ASSERT_EQ(sigaction(SIGSEGV, NULL, &now), 0);
  ASSERT(now.sa_handler == SIG_DFL);
  ASSERT_EQ(leak_faults_disable(), 0);
  ASSERT_EQ(leak_faults_enable(-1, 0), LEAK_EBADF);
  return 0;
}
