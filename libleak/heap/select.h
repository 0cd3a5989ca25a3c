/* Picking objects out of the heap with one walk: by address (objgraph's at and at_addrs), and the
 * objects nothing refers to (objgraph's get_leaking_objects).  Results are arrays of new references
 * (leak__malloc'd; the caller releases each reference, then frees the array with leak__free). */
#ifndef LIBLEAK_HEAP_SELECT_H
#define LIBLEAK_HEAP_SELECT_H
#include <Python.h>
#include <stdint.h>

/* The live objects whose address is one of `addresses`: tracked ones only, or untracked ones too.
 * An address that holds no object is skipped (it is never dereferenced).  Returns 0, LEAK_ENOMEM,
 * LEAK_EBUSY or LEAK_ENOPYTHON. */
int leak__heap_objects_at(const uintptr_t *addresses, size_t count, int tracked_only, PyObject ***out,
                          size_t *found);

/* The tracked objects (those gc.get_objects() returns) that no tracked object refers to (through tp_traverse), leaving out the
 * references of `ignored` (the caller's own list); among `candidates` when it is not NULL (borrowed
 * references the caller keeps alive), else among all tracked objects.  Returns as above. */
int leak__heap_unreferenced(PyObject *ignored, PyObject *const *candidates, size_t ncandidates, PyObject ***out,
                            size_t *found);

#endif
