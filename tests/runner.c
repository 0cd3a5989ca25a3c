/* The test runner: runs every registered test in a forked child with a timeout and prints TAP.
 * Usage: run-tests [SUBSTRING...]  (only tests whose names contain one of the substrings). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct {
  const char *name;
  test_fn fn;
} tests[MAX_TESTS];
static int test_count;

const char *test_skip_reason = "";

void test_register(const char *name, test_fn fn) {
  if (test_count == MAX_TESTS) {
    fprintf(stderr, "run-tests: more than %d tests; raise MAX_TESTS\n", MAX_TESTS);
    exit(2);
  }
  tests[test_count].name = name;
  tests[test_count].fn = fn;
  test_count++;
}

/* Keeps the TAP stream in order: tests print registration order, not link order. */
static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void test_python_start(void) {
  /* The runner lives in the build tree, so the embedded interpreter cannot find its standard
   * library by itself: ask the real interpreter where it is. */
  if (getenv("PYTHONHOME") == NULL) {
    char *out = NULL;
    char *argv[] = {(char *)LEAK_TEST_PYTHON, "-c", "import sys; print(sys.base_prefix, end='')", NULL};
    int status = test_spawn(argv, &out);
    if (status != 0 || out == NULL || out[0] == '\0') {
      fprintf(stderr, "cannot ask %s for its prefix\n", LEAK_TEST_PYTHON);
      abort();
    }
    setenv("PYTHONHOME", out, 1);
    free(out);
  }
  Py_InitializeEx(0);
}

int test_python_run(const char *source) {
  if (PyRun_SimpleString(source) != 0) return -1;
  return 0;
}

int test_run_child(void (*body)(void *), void *arg, char **output) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[1]);
    body(arg);
    fflush(NULL);
    _exit(0);
  }
  close(fds[1]);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 1024 > cap) buf = realloc(buf, cap *= 2);
    ssize_t n = read(fds[0], buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output)
    *output = buf;
  else
    free(buf);
  return status;
}

/* The child side of test_spawn: stdin from /dev/null, then the program. */
static void exec_argv(void *argv) {
  int devnull = open("/dev/null", O_RDONLY);
  dup2(devnull, 0);
  execvp(((char *const *)argv)[0], (char *const *)argv);
  _exit(127);
}

int test_spawn(char *const argv[], char **output) { return test_run_child(exec_argv, (void *)argv, output); }

char *test_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  fclose(f);
  return buf;
}

/* Runs one test in a child; returns "ok", or a reason it failed in `why`.  Skips set *skipped. */
static int run_one(int index, int timeout, char *why, size_t why_size, int *skipped) {
  int fds[2];
  if (pipe(fds) != 0) return snprintf(why, why_size, "pipe failed"), -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return snprintf(why, why_size, "fork failed"), -1;
  if (pid == 0) {
    /* The test's own output goes to stderr so that it can never be mistaken for TAP. */
    close(fds[0]);
    dup2(2, 1);
    setpgid(0, 0);
    int rc = tests[index].fn();
    fflush(NULL);
    if (rc == TEST_SKIP_CODE) {
      ssize_t unused = write(fds[1], test_skip_reason, strlen(test_skip_reason));
      (void)unused;
    }
    _exit(rc == 0 ? 0 : rc == TEST_SKIP_CODE ? TEST_SKIP_CODE : 1);
  }
  close(fds[1]);
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= timeout) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      close(fds[0]);
      return snprintf(why, why_size, "timed out after %d s", timeout), -1;
    }
    struct timespec pause = {0, 5 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  /* Stray grandchildren of a test must not outlive it. */
  kill(-pid, SIGKILL);
  char reason[256] = "";
  ssize_t n = read(fds[0], reason, sizeof reason - 1);
  reason[n > 0 ? n : 0] = '\0';
  close(fds[0]);
  if (WIFSIGNALED(status)) return snprintf(why, why_size, "killed by signal %d", WTERMSIG(status)), -1;
  if (WEXITSTATUS(status) == TEST_SKIP_CODE) {
    *skipped = 1;
    snprintf(why, why_size, "%s", reason);
    return 0;
  }
  if (WEXITSTATUS(status) != 0) return snprintf(why, why_size, "exit status %d", WEXITSTATUS(status)), -1;
  return 0;
}

/* Whether the command line picks a test: every test when no name is given, else those whose name
 * contains one of the names, less those that contain a name given as --skip=NAME (the valgrind run
 * leaves out the exhaustive parser tests this way). */
static int test_selected(const char *name, int nargs, char **args) {
  int picked = 1;
  for (int a = 0; a < nargs; a++)
    if (strncmp(args[a], "--skip=", 7) != 0) picked = 0;
  for (int a = 0; a < nargs; a++) {
    if (strncmp(args[a], "--skip=", 7) == 0) {
      if (strstr(name, args[a] + 7) != NULL) return 0;
    } else if (strstr(name, args[a]) != NULL) {
      picked = 1;
    }
  }
  return picked;
}

int main(int argc, char **argv) {
  int timeout = getenv("LEAK_TEST_TIMEOUT") ? atoi(getenv("LEAK_TEST_TIMEOUT")) : 120;
  qsort(tests, test_count, sizeof tests[0], by_name);
  int selected[MAX_TESTS], n_selected = 0;
  for (int i = 0; i < test_count; i++)
    if (test_selected(tests[i].name, argc - 1, argv + 1)) selected[n_selected++] = i;
  printf("1..%d\n", n_selected);
  fflush(stdout);
  int failed = 0;
  for (int k = 0; k < n_selected; k++) {
    char why[512] = "";
    int skipped = 0;
    int rc = run_one(selected[k], timeout, why, sizeof why, &skipped);
    if (rc != 0) failed++;
    if (skipped)
      printf("ok %d - %s # SKIP %s\n", k + 1, tests[selected[k]].name, why);
    else
      printf("%s %d - %s%s%s\n", rc == 0 ? "ok" : "not ok", k + 1, tests[selected[k]].name, rc ? " # " : "",
             rc ? why : "");
    fflush(stdout);
  }
  return failed ? 1 : 0;
}
