/* libleak: why objects are alive, for embedding hosts.
 *
 * An index of every reference on the heap (one walk) answers why an object is alive (the shortest
 * labelled paths from classified roots: a module or class attribute, sys, the builtins, a running
 * frame's local, C-held references, or unreachable cycles), how much memory an object keeps alive
 * (its retained size, from the dominator tree of the whole heap), and which objects keep the most.
 * An index describes the heap when it was built and holds no references: once Python code runs it
 * may be stale; the functions below check (leak_refs_index_is_current) and return LEAK_EAGAIN
 * rather than touch a freed object; pass NULL for the index to build a fresh one for one call.
 * All functions need the GIL held. */
#ifndef LIBLEAK_REFS_H
#define LIBLEAK_REFS_H

#include <stddef.h>
#include <stdint.h>
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

struct _object; /* PyObject */

typedef struct leak_refs_index leak_refs_index;

/* Builds an index of the calling thread's interpreter into *out.  0, LEAK_ENOMEM, LEAK_EBUSY (the
 * gc is collecting), LEAK_ENOPYTHON. */
LEAK_EXTERN int leak_refs_index_build(leak_refs_index **out);
LEAK_EXTERN void leak_refs_index_free(leak_refs_index *index);

/* 1 while the heap has not changed since the index was built (as far as the gc's counters tell). */
LEAK_EXTERN int leak_refs_index_is_current(const leak_refs_index *index);

/* Objects and references in the index, and the bytes it holds. */
LEAK_EXTERN void leak_refs_index_stats(const leak_refs_index *index, size_t *objects, size_t *references,
                                       size_t *bytes);

/* Writes why `obj` is alive to file descriptor `fd`: at most max_paths lines, one per path, e.g.
 * "module app.cache: CACHE -> dict['k42'] -> Session.data -> bytes (5.0 MB)".  The caller's own
 * references (its frames) are not roots.  Returns 0, LEAK_EAGAIN (a stale index), LEAK_EINVAL
 * (max_paths 0), LEAK_ENOMEM, or the errno code of a failed write. */
LEAK_EXTERN int leak_refs_write_why_alive(leak_refs_index *index, struct _object *obj, size_t max_paths, int fd);

/* Draws the same paths with Graphviz into `path`, the format chosen by its suffix (.dot, .svg,
 * .png, .pdf): LEAK_EINVAL for another suffix (nothing written), the errno code when the file cannot
 * be written. */
LEAK_EXTERN int leak_refs_render_why_alive(leak_refs_index *index, struct _object *obj, size_t max_paths,
                                           const char *path);

/* obj's own size (sys.getsizeof) and retained size.  LEAK_ENOENT when obj is not on the heap the
 * walker sees; LEAK_EAGAIN for a stale index. */
LEAK_EXTERN int leak_refs_retained_size(leak_refs_index *index, struct _object *obj, uint64_t *size,
                                        uint64_t *retained);

/* One of the objects that keep the most memory alive. */
typedef struct leak_refs_retainer {
  struct _object *object; /* borrowed: valid while the index is current */
  char type_name[64];     /* tp_name, cut */
  uint64_t size, retained;
} leak_refs_retainer;

/* The `limit` objects with the largest retained sizes, largest first, modules, classes, functions,
 * frames, code and their dicts left out; *count receives how many were written. */
LEAK_EXTERN int leak_refs_top_retainers(leak_refs_index *index, leak_refs_retainer *rows, size_t limit,
                                        size_t *count);

#ifdef __cplusplus
}
#endif
#endif
