/* The census's internals shared with the Python glue (include/libleak/heap.h is the contract).
 *
 * Besides libleak's own "module.Qualname", each row carries the two names objgraph gives a type
 * (its __name__, and __module__ + "." + __name__), so the objgraph drop-in counts by them. */
#ifndef LIBLEAK_HEAP_CENSUS_H
#define LIBLEAK_HEAP_CENSUS_H
#include "libleak/heap.h"

/* Which of a row's names a lookup by name compares. */
typedef enum leak__type_name_kind {
  LEAK__NAME_QUALIFIED = 0, /* libleak's: "module.Qualname", builtins bare */
  LEAK__NAME_SHORT = 1,     /* objgraph's short name: type.__name__ */
  LEAK__NAME_LONG = 2,      /* objgraph's long name: type.__module__ + "." + type.__name__ */
} leak__type_name_kind;

/* Row i's name of the given kind (owned by the census). */
const char *leak__census_row_name(const leak_census *census, size_t i, leak__type_name_kind kind);

/* The address of object i of the census (0 <= i < *count) and its row, for a census taken with
 * keep_addresses (otherwise *count is 0). */
void leak__census_objects(const leak_census *census, const uintptr_t **addresses, const uint32_t **rows,
                          size_t *count);

/* leak_census_new_objects, comparing `type_name` with names of kind `kind`; `old` may be NULL
 * (every object of `now` that is still alive). */
int leak__census_new_objects(const leak_census *now, const leak_census *old, leak__type_name_kind kind,
                             const char *type_name, size_t limit, PyObject ***objects, size_t *count);

#endif
