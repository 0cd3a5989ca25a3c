/* Error codes to text: one switch generated from LEAK_ERRNO_MAP so the list lives in one place. */
#include "core/internal.h"

/* Static text for a code, so hosts can log it without owning memory. */
const char *leak_strerror(int code) {
  switch (code) {
#define LEAK_STRERROR_CASE_(name, value, text) case LEAK_##name: return text;
    LEAK_ERRNO_MAP(LEAK_STRERROR_CASE_)
#undef LEAK_STRERROR_CASE_
    case 0: return "success";
  }
  return "unknown error";
}

/* The symbolic name, for messages that must be matched by programs rather than read by people. */
const char *leak_err_name(int code) {
  switch (code) {
#define LEAK_ERR_NAME_CASE_(name, value, text) case LEAK_##name: return #name;
    LEAK_ERRNO_MAP(LEAK_ERR_NAME_CASE_)
#undef LEAK_ERR_NAME_CASE_
    case 0: return "OK";
  }
  return "UNKNOWN";
}

/* The library's own version, for hosts that check header/library agreement at run time. */
unsigned int leak_version(void) { return LEAK_VERSION_HEX; }

/* See leak_version(). */
const char *leak_version_string(void) {
  return LEAK_STRINGIFY_(LEAK_VERSION_MAJOR) "." LEAK_STRINGIFY_(LEAK_VERSION_MINOR) "." LEAK_STRINGIFY_(
      LEAK_VERSION_PATCH);
}
