/* libleak's C test harness.
 *
 * A test is `TEST(name) { ...; return 0; }` in any tests/test-*.c file: it registers itself, and
 * tests/run-tests forks each one into its own process with a timeout and reports TAP.  A test passes
 * when it returns 0; it fails when an ASSERT fails (the child aborts), it returns non-zero, it dies
 * on a signal, or it outlives its timeout.  Return TEST_SKIP(reason) only when the thing under test
 * cannot exist on this machine. */
#ifndef LIBLEAK_TESTS_RUNNER_H
#define LIBLEAK_TESTS_RUNNER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when built with AddressSanitizer.  Its allocator (GCC 12's) is not fork-safe: a child forked
 * while another thread is inside malloc can hang on its first allocation. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif

typedef int (*test_fn)(void);

/* Adds a test to the run; called by the TEST macro before main. */
void test_register(const char *name, test_fn fn);

#define TEST(name)                                                         \
  static int test_##name(void);                                            \
  __attribute__((constructor)) static void test_register_##name(void) {    \
    test_register(#name, test_##name);                                     \
  }                                                                        \
  static int test_##name(void)

/* Reason printed after "# SKIP"; set by TEST_SKIP. */
extern const char *test_skip_reason;
#define TEST_SKIP_CODE 77
#define TEST_SKIP(reason) (test_skip_reason = (reason), TEST_SKIP_CODE)

#define ASSERT(expr)                                                                     \
  do {                                                                                   \
    if (!(expr)) {                                                                       \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr);       \
      fflush(stderr);                                                                    \
      abort();                                                                           \
    }                                                                                    \
  } while (0)

#define ASSERT_INT_(a, op, b)                                                             \
  do {                                                                                    \
    long long a_ = (long long)(a), b_ = (long long)(b);                                   \
    if (!(a_ op b_)) {                                                                    \
      fprintf(stderr, "%s:%d: assertion failed: %s %s %s (%lld vs %lld)\n", __FILE__,     \
              __LINE__, #a, #op, #b, a_, b_);                                             \
      fflush(stderr);                                                                     \
      abort();                                                                            \
    }                                                                                     \
  } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_(a, !=, b)
#define ASSERT_GE(a, b) ASSERT_INT_(a, >=, b)
#define ASSERT_GT(a, b) ASSERT_INT_(a, >, b)
#define ASSERT_LE(a, b) ASSERT_INT_(a, <=, b)
#define ASSERT_LT(a, b) ASSERT_INT_(a, <, b)
#define ASSERT_STR_CONTAINS(haystack, needle)                                             \
  do {                                                                                    \
    const char *h_ = (haystack), *n_ = (needle);                                          \
    if (h_ == NULL || strstr(h_, n_) == NULL) {                                           \
      fprintf(stderr, "%s:%d: %s does not contain \"%s\":\n%s\n", __FILE__, __LINE__,     \
              #haystack, n_, h_ ? h_ : "(null)");                                         \
      fflush(stderr);                                                                     \
      abort();                                                                            \
    }                                                                                     \
  } while (0)

/* Starts an embedded interpreter (the one the tests were built for) in this test's process. */
void test_python_start(void);

/* Runs Python source in __main__; returns 0 on success, -1 (after printing the traceback) on error. */
int test_python_run(const char *source);

/* Runs body(arg) in a forked child whose stdout and stderr (merged) are collected into a malloc'd
 * string in *output (NULL: discarded); the child exits 0 when body returns.  Returns the raw wait
 * status, or -1 when the child could not be started. */
int test_run_child(void (*body)(void *), void *arg, char **output);

/* Runs `argv` (NULL-terminated) in a child process, with stdin from /dev/null, and collects its
 * stdout+stderr (merged) into a malloc'd string in *output.  Returns the raw wait status, or -1. */
int test_spawn(char *const argv[], char **output);

/* A malloc'd copy of a file's whole content, or NULL. */
char *test_read_file(const char *path);

#endif
