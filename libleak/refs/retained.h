/* Retained sizes: how much memory would be freed with an object, from the dominator tree of the
 * whole heap (refs/dominators.h) over the reverse reference index (refs/index.h).
 *
 * The heap graph gets a virtual root above every root of the index: the objects some of whose
 * references nothing in the heap accounts for (held by C: sys.modules, the interpreter's state,
 * extensions) and the objects running frames hold.  An object's retained size is its own size plus
 * the retained sizes of the objects it immediately dominates.  Objects the virtual root does not
 * reach (unreachable cycles) retain nothing. */
#ifndef LIBLEAK_REFS_RETAINED_H
#define LIBLEAK_REFS_RETAINED_H
#include "refs/dominators.h"
#include "refs/index.h"

typedef struct leak__retained {
  uint32_t nodes;     /* the index's nodes; the virtual root is number `nodes` */
  uint32_t *idom;     /* [nodes + 1] */
  uint64_t *retained; /* [nodes + 1] */
} leak__retained;

/* Computes the dominator tree and retained sizes of `index` (which must be current).  options may
 * be NULL (no progress reports).  Returns 0 or LEAK_ENOMEM; *out is freed with leak__retained_free. */
int leak__retained_compute(const leak__ref_index *index, const leak__dominators_options *options,
                           leak__retained **out);

void leak__retained_free(leak__retained *retained);

/* True for what keeps a whole program alive rather than data: modules, classes, functions, frames,
 * code, their dicts, the interpreter's sys and builtins dicts and sys.modules.  Top-retainer lists
 * leave these out. */
int leak__refs_structural(const leak__ref_index *index, uint32_t node);

#endif
