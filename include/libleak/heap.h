/* libleak: the live objects of the interpreter, counted per type (a census), and what changed
 * between two censuses.
 *
 * A census is one walk over the heap: every object the gc tracks and, unless asked otherwise, every
 * untracked object they reach (str, int, float, bytes, ...), counted once each with its size as
 * sys.getsizeof computes it, per type.  Types are named "module.Qualname" ("int", "list" for
 * builtins); two classes of one name in two modules are two rows.  Its bookkeeping lives outside
 * the Python heap, so a census never counts itself.  All functions need the GIL held. */
#ifndef LIBLEAK_HEAP_H
#define LIBLEAK_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

struct _object; /* PyObject, without needing Python.h here */

/* A census: opaque; made by leak_census_take, freed by leak_census_free. */
typedef struct leak_census leak_census;

typedef struct leak_census_options {
  int gc_collect;     /* run a full gc collection first (default 0: count what is there, cycles included) */
  int tracked_only;   /* count only what gc.get_objects() returns: tracked objects, the permanent
                         generation (gc.freeze()) left out (default 0: every object) */
  int keep_addresses; /* remember each object's address, for leak_census_new_objects (default 1) */
  struct _object *const *exclude; /* objects not to count, with everything only they reach... */
  size_t exclude_count;           /* ...(see leak_census_take); NULL/0: none */
  struct _object *const *exclude_alone; /* objects not to count, without what they reach */
  size_t exclude_alone_count;
} leak_census_options;
#define LEAK_CENSUS_OPTIONS_INIT {0, 0, 1, NULL, 0, NULL, 0}

/* One type's row: its name (owned by the census) and how many objects of it, of how many bytes. */
typedef struct leak_census_row {
  const char *type_name;
  uint64_t count;
  uint64_t size;
} leak_census_row;

/* One row of a comparison: the type's figures now and their change since the older census. */
typedef struct leak_census_diff_row {
  const char *type_name; /* owned by one of the two censuses: valid while both live */
  int64_t count, count_diff;
  int64_t size, size_diff;
} leak_census_diff_row;

/* Takes a census of the calling thread's interpreter into *out (free it with leak_census_free).
 * Objects reachable from options->exclude (the roots themselves included) are not counted: a tool
 * passes its own bookkeeping there; options->exclude_alone are left out one by one (what they
 * reach is counted unless something else excludes it).  Returns 0, LEAK_ENOMEM, LEAK_EBUSY when called while the gc
 * collects, LEAK_ENOPYTHON without the GIL, or LEAK_EPYTHON when gc_collect raised (the exception is
 * left set).  options may be NULL (the defaults). */
LEAK_EXTERN int leak_census_take(const leak_census_options *options, leak_census **out);

/* Frees a census; NULL is accepted. */
LEAK_EXTERN void leak_census_free(leak_census *census);

/* The number of rows (types), and row i (0 <= i < that number) in *row; rows are in no set order.
 * leak_census_row returns LEAK_ERANGE for an i out of range. */
LEAK_EXTERN size_t leak_census_rows(const leak_census *census);
LEAK_EXTERN int leak_census_row_at(const leak_census *census, size_t i, leak_census_row *row);

/* Totals: objects counted, their bytes, and the bytes the census itself holds. */
LEAK_EXTERN void leak_census_totals(const leak_census *census, uint64_t *count, uint64_t *size, uint64_t *memory);

/* Compares `now` with `old`: one row per type present in either, largest size_diff first (then by
 * name), into *rows (an array the caller frees with leak_census_diff_free) of *count rows.  Types
 * are matched by identity and name.  Returns 0 or LEAK_ENOMEM (*rows NULL). */
LEAK_EXTERN int leak_census_diff(const leak_census *now, const leak_census *old, leak_census_diff_row **rows,
                                 size_t *count);
LEAK_EXTERN void leak_census_diff_free(leak_census_diff_row *rows);

/* Writes the comparison of `now` with `old` as a text table to file descriptor `fd`: at most
 * `limit` rows (0: all), rows whose counts and sizes did not change left out.  Returns 0,
 * LEAK_ENOMEM, or the errno code of a failed write (LEAK_EBADF, LEAK_EIO, ...). */
LEAK_EXTERN int leak_census_write_diff(const leak_census *now, const leak_census *old, int fd, size_t limit);

/* The objects that `now` counted and `old` did not, that are still alive now with the same type
 * (checked by a new walk: an address freed since `now` and reused is never handed out), of type
 * `type_name` (NULL: any), at most `limit` (0: no limit).  *objects receives an array of new
 * references (the caller releases each with Py_DecRef, then the array with leak_census_objects_free)
 * and *count its length.  Both censuses need keep_addresses.  Returns 0, LEAK_EINVAL (a census
 * without addresses), LEAK_ENOMEM, LEAK_EBUSY or LEAK_ENOPYTHON. */
LEAK_EXTERN int leak_census_new_objects(const leak_census *now, const leak_census *old, const char *type_name,
                                        size_t limit, struct _object ***objects, size_t *count);
LEAK_EXTERN void leak_census_objects_free(struct _object **objects);

#ifdef __cplusplus
}
#endif
#endif
