/* Error codes: every code has a name and a sentence, and unknown codes are handled. */
#include "core/internal.h"
#include "runner.h"

TEST(errors_have_names_and_text) {
  ASSERT(strcmp(leak_err_name(LEAK_EINVAL), "EINVAL") == 0);
  ASSERT(strcmp(leak_err_name(LEAK_EFORMAT), "EFORMAT") == 0);
  ASSERT(strcmp(leak_strerror(LEAK_ENOMEM), "out of memory") == 0);
  ASSERT(strcmp(leak_strerror(0), "success") == 0);
  ASSERT(strcmp(leak_strerror(-123456), "unknown error") == 0);
  ASSERT(strcmp(leak_err_name(-123456), "UNKNOWN") == 0);
  ASSERT_EQ(LEAK_EINVAL, -EINVAL);
  return 0;
}

TEST(version_matches_header) {
  ASSERT_EQ(leak_version(), LEAK_VERSION_HEX);
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", LEAK_VERSION_MAJOR, LEAK_VERSION_MINOR, LEAK_VERSION_PATCH);
  ASSERT(strcmp(leak_version_string(), expected) == 0);
  return 0;
}

TEST(alloc_failure_injection) {
  leak__alloc_fail_after(2);
  void *a = leak__malloc(8), *b = leak__calloc(1, 8), *c = leak__malloc(8);
  ASSERT(a != NULL && b != NULL && c == NULL);
  leak__alloc_fail_after(-1);
  c = leak__malloc(8);
  ASSERT(c != NULL);
  leak__free(a);
  leak__free(b);
  leak__free(c);
  return 0;
}
