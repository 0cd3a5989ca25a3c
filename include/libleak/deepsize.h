/* libleak: deep sizes.  How many bytes an object holds, counting everything it references, each
 * object once, as pympler's asizeof counts them (see pybind/libleak/asizeof.py for the rules).
 *
 * The walk runs in C with an explicit stack (no recursion limit) and remembers what it has seen
 * in a table outside the Python heap.  It runs no Python code while it walks: a class's own
 * __sizeof__ written in Python is called after the walk, for the objects that need it. */
#ifndef LIBLEAK_DEEPSIZE_H
#define LIBLEAK_DEEPSIZE_H

#include <stddef.h>
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

struct _object; /* PyObject, from Python.h */

/* What to count.  Initialise with LEAK_DEEPSIZE_OPTIONS_INIT, then change fields. */
typedef struct leak_deepsize_options {
  size_t align; /* each object's size is rounded up to this power of two; 0 or 1: no rounding */
  long limit;   /* referents are followed this many levels deep (0: flat sizes); negative: no limit */
  int code;     /* nonzero: also size code objects, functions, methods and classes */
  int frames;   /* nonzero: also size frame objects */
  int ignored;  /* nonzero: builtin functions, builtin classes and plain `object()`s stay uncounted
                 * even when `code` is set */
} leak_deepsize_options;

#define LEAK_DEEPSIZE_OPTIONS_INIT {8, 100, 0, 0, 1}

/* The deep size of `count` objects at once: each object reachable from any of them is counted
 * once, under the first argument whose walk reaches it, and never under another argument (an
 * argument referenced by another is counted as its own).  sizes[i] (an array of `count` the caller
 * owns; NULL: not wanted) receives each argument's share, the same share again for an argument
 * given twice; *total (NULL: not wanted) the sum over distinct arguments.  The caller holds the
 * GIL.  Returns 0; LEAK_EINVAL when options are bad (align not a power of two) or an object is
 * NULL; LEAK_ENOMEM; LEAK_EPYTHON when a class's own __sizeof__ raised something other than
 * TypeError (the Python exception is left set).  On failure the outputs are unspecified. */
LEAK_EXTERN int leak_deep_sizes(struct _object *const *objs, size_t count, const leak_deepsize_options *options,
                                size_t *sizes, size_t *total);

/* The deep size of one object; see leak_deep_sizes.  options NULL means the defaults. */
LEAK_EXTERN int leak_deep_size(struct _object *obj, const leak_deepsize_options *options, size_t *size);

#ifdef __cplusplus
}
#endif
#endif
