/* libleak: error codes.  Every function that can fail returns 0 or one of these negative codes. */
#ifndef LIBLEAK_ERRORS_H
#define LIBLEAK_ERRORS_H

#include <errno.h>
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Codes that have an errno twin are that errno negated, so a host can hand them to strerror(-code);
 * libleak's own codes sit far above the errno range. */
#define LEAK_ERRNO_MAP(XX)                                                   \
  XX(EINVAL, -EINVAL, "invalid argument")                                    \
  XX(ENOMEM, -ENOMEM, "out of memory")                                       \
  XX(EBADF, -EBADF, "bad file descriptor")                                   \
  XX(EIO, -EIO, "input/output error")                                        \
  XX(EBUSY, -EBUSY, "already running")                                       \
  XX(ENOENT, -ENOENT, "no such file or entry")                               \
  XX(EACCES, -EACCES, "permission denied")                                   \
  XX(ERANGE, -ERANGE, "value out of range")                                  \
  XX(EAGAIN, -EAGAIN, "resource temporarily unavailable")                    \
  XX(ENOTSTARTED, -4001, "not started")                                      \
  XX(EFORMAT, -4002, "malformed or unsupported file")                        \
  XX(ENOPYTHON, -4003, "no Python interpreter is running")                   \
  XX(EPYTHON, -4004, "a Python exception was raised")                        \
  XX(ENOSYS, -4005, "not supported on this platform or CPython")

typedef enum {
#define LEAK_ERRNO_ENUM_(name, value, text) LEAK_##name = (value),
  LEAK_ERRNO_MAP(LEAK_ERRNO_ENUM_)
#undef LEAK_ERRNO_ENUM_
  LEAK_ERRNO_MAX_ = -5000
} leak_errno_t;

/* A sentence describing `code`; static storage.  Unknown codes get "unknown error". */
LEAK_EXTERN const char *leak_strerror(int code);

/* The code's name without the LEAK_ prefix ("EINVAL"); static storage. */
LEAK_EXTERN const char *leak_err_name(int code);

#ifdef __cplusplus
}
#endif
#endif
