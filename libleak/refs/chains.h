/* Chains of references, breadth first: objgraph's find_backref_chain and find_ref_chain, and the
 * neighbours its show_backrefs and show_refs draw.
 *
 * Backward steps read the reverse reference index (refs/index.h): one heap walk answers every
 * "who refers to this?" of a search, where objgraph scans the whole heap with gc.get_referrers for
 * each object it visits.  Forward steps call tp_traverse, as gc.get_referents does.
 *
 * A search calls a predicate (Python code) on the objects it meets, and Python code may make and
 * free objects.  So a search holds a strong reference to every object it has queued, and an index
 * holds one to every object it names while it lives: out of date it may be, pointing at freed
 * memory it cannot.  It is built again whenever leak__ref_index_is_current says the heap changed
 * (a made-and-freed pair between two checks goes unseen by the gc's counters: such a change is
 * missed, harmlessly).  Objects a predicate drops stay alive until the search ends. */
#ifndef LIBLEAK_REFS_CHAINS_H
#define LIBLEAK_REFS_CHAINS_H
#include <Python.h>
#include <stddef.h>

#include "heap/objset.h"
#include "refs/index.h"

/* Where a step goes: to the referrers of an object, or to its referents. */
typedef enum leak__chain_direction {
  LEAK__CHAIN_BACKWARD = 0,
  LEAK__CHAIN_FORWARD = 1,
} leak__chain_direction;

/* The neighbours of objects: holds the reverse index of backward steps between calls, and builds
 * it again when the heap has changed.  Zero-initialise it ({0}); leak__chain_source_free frees it. */
typedef struct leak__chain_source {
  leak__ref_index *index;
  size_t builds; /* how many indexes were built (for the tests and the benchmark) */
  /* The object that owns the source (a capsule), or NULL: never pinned, or it would keep itself
   * alive. */
  const PyObject *owner;
} leak__chain_source;

/* Reports one neighbour (borrowed: take a reference to keep it).  Must not run Python code.
 * Nonzero stops the listing and is returned by it. */
typedef int (*leak__chain_each_fn)(void *arg, PyObject *neighbour);

/* Lists the neighbours of `obj` (alive, held by the caller) in `direction`, once per reference
 * (a list holding x twice names it twice), leaving out the addresses in `ignore` (may be NULL).
 * Backward: the referrers of the reverse index, built again first unless it is current; forward:
 * what tp_traverse reports, for objects the gc handles (gc.get_referents' rule).  Returns 0, a
 * callback's nonzero value, or an index build's error (LEAK_ENOMEM, LEAK_EBUSY, ...). */
int leak__chain_neighbours(leak__chain_source *source, PyObject *obj, leak__chain_direction direction,
                           leak__objset *ignore, leak__chain_each_fn each, void *arg);

/* Frees the source's index and drops the references it pinned (finalizers may run); the source
 * is empty and reusable.  Accepts {0}. */
void leak__chain_source_free(leak__chain_source *source);

/* The predicate of a search: 1 when `obj` (held by the search during the call) is the one sought,
 * 0 when not, or a negative LEAK_E* code to stop the search (LEAK_EPYTHON: a Python exception is
 * set).  It may run any Python code. */
typedef int (*leak__chain_predicate_fn)(void *arg, PyObject *obj);

/* A breadth-first search from `start` in `direction`, up to `max_depth` steps, skipping the
 * addresses in `ignore` (may be NULL), for the nearest object the predicate accepts; objects at
 * equal depth are tried in objgraph's order (the order of discovery).  On a match, *chain gets a
 * new array of new references, from the match back to `start` (start last; just `start` when it
 * matches itself) and *length its length; the caller Py_DECREFs each and frees the array with
 * leak__free.  When nothing matches, *chain is NULL and *length 0.  Returns 0, the predicate's
 * negative code, LEAK_ENOMEM, or an index build's error; *chain is NULL on every error. */
int leak__chain_find(leak__chain_source *source, PyObject *start, leak__chain_direction direction,
                     size_t max_depth, leak__objset *ignore, leak__chain_predicate_fn predicate, void *arg,
                     PyObject ***chain, size_t *length);

#endif
