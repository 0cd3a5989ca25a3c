/* Helpers shared by the stack dumper's C tests (test-dump-*.c, test-faults-*.c, test-watchdog-*.c):
 * anonymous temp files to dump into, polling for output without timing assertions, running a body
 * in a child process that may crash, and checking that every line of a dump is well-formed. */
#ifndef LIBLEAK_TESTS_DUMP_UTIL_H
#define LIBLEAK_TESTS_DUMP_UTIL_H

#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* An unlinked temp file: a dump target that never fills up like a pipe. */
static inline int dt_tempfd(void) {
  char path[] = "/tmp/libleak-dump-XXXXXX";
  int fd = mkstemp(path);
  ASSERT(fd >= 0);
  unlink(path);
  return fd;
}

/* The whole content of a file descriptor opened on a regular file (malloc'd, NUL-terminated). */
static inline char *dt_read_all(int fd) {
  struct stat st;
  ASSERT(fstat(fd, &st) == 0);
  char *buf = malloc((size_t)st.st_size + 1);
  ASSERT(buf != NULL);
  ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
  ASSERT(n >= 0);
  buf[n] = '\0';
  return buf;
}

/* Occurrences of `needle` in `haystack`. */
static inline int dt_count(const char *haystack, const char *needle) {
  int n = 0;
  size_t len = strlen(needle);
  for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + len, needle)) n++;
  return n;
}

static inline void dt_sleep_ms(long ms) {
  struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
  }
}

/* Waits until the file behind `fd` holds `needle` at least `times` times; returns 1 when it does, 0
 * after `max_seconds` (a generous bound, so a slow machine never fails a correct test). */
static inline int dt_wait_for(int fd, const char *needle, int times, int max_seconds) {
  for (long waited = 0; waited < max_seconds * 1000L; waited += 10) {
    char *text = dt_read_all(fd);
    int seen = dt_count(text, needle);
    free(text);
    if (seen >= times) return 1;
    dt_sleep_ms(10);
  }
  return 0;
}

/* Runs `body` in a forked child with stdout and stderr captured (see test_run_child); a child that
 * cannot be started fails the test. */
static inline int dt_run_child(void (*body)(void *), void *arg, char **output) {
  int status = test_run_child(body, arg, output);
  ASSERT(status != -1);
  return status;
}

/* True when `text` matches the extended regular expression `pattern` (REG_NEWLINE: ^ and $ match
 * at line boundaries). */
static inline int dt_matches(const char *text, const char *pattern) {
  regex_t re;
  ASSERT(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB) == 0);
  int found = regexec(&re, text, 0, NULL, 0) == 0;
  regfree(&re);
  return found;
}

#define ASSERT_MATCHES(text, pattern)                                                          \
  do {                                                                                         \
    const char *t_ = (text);                                                                   \
    if (!dt_matches(t_, (pattern))) {                                                          \
      fprintf(stderr, "%s:%d: output does not match /%s/:\n%s\n", __FILE__, __LINE__, (pattern), \
              t_);                                                                             \
      fflush(stderr);                                                                          \
      abort();                                                                                 \
    }                                                                                          \
  } while (0)

/* Every line a dump may contain; a torn or interleaved write shows up as a line matching none. */
static const char *const dt_line_patterns[] = {
    "^Fatal Python error: [A-Za-z -]+$",
    "^Timeout \\([0-9]+:[0-9]{2}:[0-9]{2}(\\.[0-9]{6})?\\)!$",
    "^Stack \\(most recent call first\\):$",
    "^(Current thread|Thread) 0x[0-9a-f]{16} \\(most recent call first\\):$",
    "^  File (\"[ -~]*\"|\\?\\?\\?), line ([0-9]+|\\?\\?\\?) in [ -~]+$",
    "^ ?( )?<no Python frame>$",
    "^  Garbage-collecting$",
    "^  \\.\\.\\. [0-9]+ more frames?$",
    "^\\.\\.\\. [0-9]+ more threads?$",
    "^Extension modules: [ -~]+ \\(total: [0-9]+\\)$",
    "^$",
};

/* 1 when every line of `text` is a line a dump may print (and the text ends with a newline). */
static inline int dt_all_lines_valid(const char *text) {
  if (text[0] != '\0' && text[strlen(text) - 1] != '\n') return 0;
  regex_t res[sizeof dt_line_patterns / sizeof dt_line_patterns[0]];
  size_t n_res = sizeof res / sizeof res[0];
  for (size_t i = 0; i < n_res; i++) ASSERT(regcomp(&res[i], dt_line_patterns[i], REG_EXTENDED | REG_NOSUB) == 0);
  int ok = 1;
  const char *line = text;
  char buf[4096];
  while (*line != '\0' && ok) {
    const char *end = strchr(line, '\n');
    size_t len = (size_t)(end - line);
    if (len >= sizeof buf) len = sizeof buf - 1;
    memcpy(buf, line, len);
    buf[len] = '\0';
    int matched = 0;
    for (size_t i = 0; i < n_res && !matched; i++) matched = regexec(&res[i], buf, 0, NULL, 0) == 0;
    if (!matched) {
      fprintf(stderr, "unexpected dump line: [%s]\n", buf);
      ok = 0;
    }
    line = end + 1;
  }
  for (size_t i = 0; i < n_res; i++) regfree(&res[i]);
  return ok;
}

#endif
