/* Deep sizes (internal entry point).  The public functions are in include/libleak/deepsize.h; the
 * class tracker and the Python glue call leak__deep_size directly for its extra inputs/outputs. */
#ifndef LIBLEAK_HEAP_DEEPSIZE_H
#define LIBLEAK_HEAP_DEEPSIZE_H

#include "core/internal.h"
#include "libleak/deepsize.h"

/* Counters of one deep-size call, for statistics. */
typedef struct leak__deepsize_result {
  size_t total;        /* bytes, sum over distinct arguments */
  size_t objects;      /* objects that were given a size (virtual instance dicts included) */
  size_t seen;         /* distinct objects the walk reached, sized or not */
  size_t deferred;     /* objects whose own __sizeof__ was called after the walk */
  size_t max_depth;    /* deepest level reached */
} leak__deepsize_result;

/* leak_deep_sizes with two additions: `excluded` objects (borrowed, may be NULL when
 * excluded_count is 0) are treated as already seen, so neither they nor what only they reference
 * are counted (asizeof(all=True) excludes its own list of objects this way); and *result (NULL: not
 * wanted) receives the counters.  Same contract and return codes as leak_deep_sizes. */
int leak__deep_size(PyObject *const *objs, size_t count, PyObject *const *excluded, size_t excluded_count,
                    const leak_deepsize_options *options, size_t *sizes, leak__deepsize_result *result);

/* The flat size of one object as asizeof computes it (its __sizeof__ plus the header sys.getsizeof
 * adds, rounded up to `align`), without following referents.  Runs the object's own __sizeof__ if
 * its class defines one in Python.  Returns 0 and *size, LEAK_EINVAL for a bad align, or
 * LEAK_EPYTHON with the exception set. */
int leak__flat_size(PyObject *obj, size_t align, size_t *size);

#endif
