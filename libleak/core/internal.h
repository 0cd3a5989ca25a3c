/* libleak internal header: included first by every .c file of the core.  Never installed.
 *
 * It pulls in Python.h (the core is compiled against one interpreter's headers), the public API,
 * and the small helpers every part shares.  Per-CPython-version code does not belong here: it lives
 * in frames.c and pycompat.h only. */
#ifndef LIBLEAK_INTERNAL_H
#define LIBLEAK_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "config.h"
#include "libleak.h"
#include "core/alloc.h"
#include "core/pycompat.h"

#include <stddef.h>
#include <stdint.h>

#define LEAK_STRINGIFY2_(x) #x
#define LEAK_STRINGIFY_(x) LEAK_STRINGIFY2_(x)
#define LEAK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LEAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LEAK_LIKELY(x) __builtin_expect(!!(x), 1)

/* The initial-exec TLS model makes every access to a thread-local variable one instruction instead of
 * a call to __tls_get_addr (the allocator hooks run on every allocation); it uses a few dozen bytes of
 * the static TLS surplus glibc keeps for dlopen'ed modules. */
#define LEAK_TLS_FAST __attribute__((tls_model("initial-exec")))

#endif
