/* The reverse reference index: who refers to whom, for the whole heap, from one walk.
 *
 * Nodes are every object the heap walker visits (tracked or not), numbered by address; for each,
 * its referrers (CSR arrays: in_first[node] .. in_first[node + 1] in `referrers`), its size as
 * sys.getsizeof gives it, and the references running frames hold to it (frame roots).  Built in
 * one walk and two radix sorts, with leak__malloc; about 16 bytes per node and 4 per edge.
 *
 * An index describes the heap of the moment it was built.  It holds no references: once Python
 * code has run, an address in it may be freed or reused.  leak__ref_index_is_current says whether
 * the gc saw an allocation or a free since (its counters moved); callers that hand objects back
 * must check it, or, as the Python API does, build, query and drop an index without running code
 * in between. */
#ifndef LIBLEAK_REFS_INDEX_H
#define LIBLEAK_REFS_INDEX_H
#include <Python.h>
#include <stdint.h>

#include "core/frames.h"

/* A reference held by a running frame: the frame (opaque id), its code, the slot, the thread. */
typedef struct leak__frame_root {
  const void *frame;
  PyObject *code; /* borrowed; valid while the index is current */
  int32_t slot;   /* a local's index, or LEAK__FRAME_SLOT_* */
  int32_t lasti;  /* the frame's instruction offset, for its line */
  unsigned long thread_id;
  uint32_t node;  /* the object held */
} leak__frame_root;

typedef struct leak__ref_index {
  size_t nodes, edges;
  uintptr_t *address;   /* [nodes], increasing */
  uint32_t *size;       /* [nodes], sys.getsizeof, capped at UINT32_MAX (see leak__ref_index_size) */
  uint32_t *in_first;   /* [nodes + 1] */
  uint32_t *referrers;  /* [edges]: for each node, the nodes that refer to it, once per reference */
  leak__frame_root *frame_roots; /* sorted by node */
  size_t nframe_roots;
  uint64_t fingerprint; /* the gc's counters when built */
} leak__ref_index;

/* Builds the index of the calling thread's interpreter (GIL held).  Sizes of objects whose
 * __sizeof__ is written in Python use object's formula (no Python code runs while building).
 * Returns 0, LEAK_ENOMEM, LEAK_EBUSY (the gc is collecting), LEAK_ENOPYTHON, or LEAK_ERANGE (more
 * than 2^32 - 2 objects or references). */
int leak__ref_index_build(leak__ref_index **out);

/* Frees an index; NULL is accepted. */
void leak__ref_index_free(leak__ref_index *index);

/* The node of `address`, or -1 when the index has no such object. */
int64_t leak__ref_index_find(const leak__ref_index *index, const void *address);

/* The object of `node` (borrowed; only while the index is current). */
static inline PyObject *leak__ref_index_object(const leak__ref_index *index, uint32_t node) {
  return (PyObject *)index->address[node];
}

/* The size of `node`'s object in bytes (sizes past 4 GiB are read again from the object). */
uint64_t leak__ref_index_size(const leak__ref_index *index, uint32_t node);

/* The frame roots that hold `node`: *count of them from the returned pointer. */
const leak__frame_root *leak__ref_index_frame_roots(const leak__ref_index *index, uint32_t node, size_t *count);

/* How many references to `node` nothing in the index accounts for: its reference count less the
 * references objects and frames hold (the gc's own trick).  What remains is held by C code: an
 * extension, a C global, the C stack.  0 for immortal objects (3.12+). */
Py_ssize_t leak__ref_index_unaccounted(const leak__ref_index *index, uint32_t node);

/* 1 while no gc-tracked object was made or freed since the index was built, as far as the gc's
 * counters tell (a made-and-freed pair between two checks goes unseen); else 0. */
int leak__ref_index_is_current(const leak__ref_index *index);

/* Bytes the index holds. */
size_t leak__ref_index_memory(const leak__ref_index *index);

#endif
