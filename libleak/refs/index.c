/* The reverse reference index.  Read refs/index.h first.
 *
 * The walk reports objects and edges in walk order, each edge right after its referrer (the
 * walker traverses an object just after reporting it), so an edge is stored as (referent address,
 * referrer's walk number) with no lookup.  Every object also goes into a bitmap of addresses
 * (heap/objset.h), whose ranks number the nodes in address order; a counting sort by referent then
 * gives the CSR arrays of referrers.  No comparison sort, no hash table. */
#include "core/internal.h"
#include "refs/index.h"
#include "heap/sizes.h"
#include "heap/objset.h"
#include "heap/walk.h"

#include <string.h>

/* Growable arrays of the build, in walk order. */
typedef struct build_context {
  leak__sizes sizes;
  leak__objset members; /* every object visited: its rank in address order is its node number */
  uint64_t *walk_address; /* the objects, in walk order */
  uint32_t *walk_size;
  size_t nwalk, walk_capacity;
  uint64_t *edge_to; /* referent addresses */
  uint32_t *edge_from; /* referrers' walk numbers */
  size_t nedges, edge_capacity;
  leak__frame_root *roots;
  uint64_t *root_to;
  size_t nroots, root_capacity;
  uint32_t *deferred; /* walk numbers of objects sized after the walk */
  size_t ndeferred, deferred_capacity;
  struct type_cache { /* direct-mapped by type pointer: walks alternate between a few types */
    uintptr_t type;
    uint8_t kind;
    uint32_t header;
  } types[256];
} build_context;

/* Makes room for one more item in an array of `width`-byte items (and its twin, if any). */
static int grow(void **items, void **twin, size_t twin_width, size_t width, size_t count, size_t *capacity) {
  if (count < *capacity) return 0;
  size_t wanted = *capacity ? 2 * *capacity : 65536;
  void *grown = leak__realloc(*items, wanted * width);
  if (grown == NULL) return LEAK_ENOMEM;
  *items = grown;
  if (twin != NULL) {
    grown = leak__realloc(*twin, wanted * twin_width);
    if (grown == NULL) return LEAK_ENOMEM;
    *twin = grown;
  }
  *capacity = wanted;
  return 0;
}

static int on_object(void *arg, PyObject *obj, int tracked) {
  build_context *b = arg;
  if (b->nwalk >= UINT32_MAX - 1) return LEAK_ERANGE;
  if (grow((void **)&b->walk_address, (void **)&b->walk_size, sizeof(uint32_t), sizeof(uint64_t), b->nwalk,
           &b->walk_capacity) < 0)
    return LEAK_ENOMEM;
  uintptr_t type = (uintptr_t)Py_TYPE(obj);
  struct type_cache *cached = &b->types[(type >> 4) & 255];
  if (cached->type != type) {
    cached->type = type;
    cached->kind = leak__sizes_kind(&b->sizes, (PyTypeObject *)type);
    cached->header = (uint32_t)leak__object_header_size(obj);
  }
  uint64_t size = 0;
  if (cached->kind == LEAK__SIZE_DEFERRED || PyType_Check(obj)) {
    if (grow((void **)&b->deferred, NULL, 0, sizeof(uint32_t), b->ndeferred, &b->deferred_capacity) < 0)
      return LEAK_ENOMEM;
    b->deferred[b->ndeferred++] = (uint32_t)b->nwalk;
  } else {
    size = leak__sizes_of(cached->kind, obj) + cached->header;
  }
  if (leak__objset_add(&b->members, obj) < 0) return LEAK_ENOMEM;
  b->walk_address[b->nwalk] = (uint64_t)(uintptr_t)obj;
  b->walk_size[b->nwalk++] = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
  return 0;
}

static int on_edge(void *arg, PyObject *referrer, PyObject *referent) {
  build_context *b = arg;
  /* the referrer is the object reported last (see the top of this file) */
  if (b->nwalk == 0 || b->walk_address[b->nwalk - 1] != (uint64_t)(uintptr_t)referrer) return LEAK_EINVAL;
  if (b->nedges >= UINT32_MAX - 1) return LEAK_ERANGE;
  if (grow((void **)&b->edge_to, (void **)&b->edge_from, sizeof(uint32_t), sizeof(uint64_t), b->nedges,
           &b->edge_capacity) < 0)
    return LEAK_ENOMEM;
  b->edge_to[b->nedges] = (uint64_t)(uintptr_t)referent;
  b->edge_from[b->nedges++] = (uint32_t)(b->nwalk - 1);
  return 0;
}

static int on_frame_ref(void *arg, PyThreadState *tstate, const leak__frame_ref *ref, PyObject *referent) {
  build_context *b = arg;
  if (grow((void **)&b->roots, (void **)&b->root_to, sizeof(uint64_t), sizeof(leak__frame_root), b->nroots,
           &b->root_capacity) < 0)
    return LEAK_ENOMEM;
  b->roots[b->nroots] = (leak__frame_root){ref->frame, ref->code, ref->slot, ref->lasti,
                                           leak__frames_thread_id(tstate), 0};
  b->root_to[b->nroots++] = (uint64_t)(uintptr_t)referent;
  return 0;
}

static void free_context(build_context *b) {
  leak__sizes_fini(&b->sizes);
  leak__objset_free(&b->members);
  leak__free(b->walk_address);
  leak__free(b->walk_size);
  leak__free(b->edge_to);
  leak__free(b->edge_from);
  leak__free(b->roots);
  leak__free(b->root_to);
  leak__free(b->deferred);
}

static int frame_root_order(const void *a, const void *b) {
  uint32_t x = ((const leak__frame_root *)a)->node, y = ((const leak__frame_root *)b)->node;
  return x < y ? -1 : x > y;
}

/* Turns the walk's arrays into the index.  A node's number is its object's rank by address, read
 * from the bitmap of members in constant time; edges are grouped by referent with a counting sort. */
static int assemble(build_context *b, leak__ref_index *index) {
  size_t n = b->nwalk;
  uint32_t *rank_of = leak__malloc((n ? n : 1) * sizeof(uint32_t));
  if (rank_of == NULL || leak__objset_prepare_ranks(&b->members) < 0) goto nomem;
  index->nodes = n;
  index->address = leak__malloc((n ? n : 1) * sizeof(uintptr_t));
  index->size = leak__malloc((n ? n : 1) * sizeof(uint32_t));
  if (index->address == NULL || index->size == NULL) goto nomem;
  for (size_t i = 0; i < n; i++) {
    uint32_t r = (uint32_t)leak__objset_rank(&b->members, (const void *)(uintptr_t)b->walk_address[i]);
    rank_of[i] = r;
    index->address[r] = (uintptr_t)b->walk_address[i];
    index->size[r] = b->walk_size[i];
  }
  /* Referents' nodes, then edges counted and placed by referent: the CSR arrays of referrers. */
  index->in_first = leak__calloc(n + 1, sizeof(uint32_t));
  index->referrers = leak__malloc((b->nedges ? b->nedges : 1) * sizeof(uint32_t));
  if (index->in_first == NULL || index->referrers == NULL) goto nomem;
  uint32_t *to = leak__malloc((b->nedges ? b->nedges : 1) * sizeof(uint32_t));
  if (to == NULL) goto nomem;
  size_t kept = 0;
  for (size_t e = 0; e < b->nedges; e++) {
    int64_t r = leak__objset_rank(&b->members, (const void *)(uintptr_t)b->edge_to[e]);
    if (r < 0) continue; /* not an object the walk visited */
    to[kept] = (uint32_t)r;
    b->edge_from[kept++] = b->edge_from[e];
    index->in_first[r + 1]++;
  }
  for (size_t i = 0; i < n; i++) index->in_first[i + 1] += index->in_first[i];
  uint32_t *fill = leak__malloc((n ? n : 1) * sizeof(uint32_t));
  if (fill == NULL) {
    leak__free(to);
    goto nomem;
  }
  memcpy(fill, index->in_first, n * sizeof(uint32_t));
  for (size_t e = 0; e < kept; e++) index->referrers[fill[to[e]]++] = rank_of[b->edge_from[e]];
  leak__free(fill);
  leak__free(to);
  index->edges = kept;
  /* Frame roots, by node. */
  index->frame_roots = leak__malloc((b->nroots ? b->nroots : 1) * sizeof(leak__frame_root));
  if (index->frame_roots == NULL) goto nomem;
  size_t nroots = 0;
  for (size_t i = 0; i < b->nroots; i++) {
    int64_t found = leak__ref_index_find(index, (const void *)(uintptr_t)b->root_to[i]);
    if (found < 0) continue;
    index->frame_roots[nroots] = b->roots[i];
    index->frame_roots[nroots++].node = (uint32_t)found;
  }
  qsort(index->frame_roots, nroots, sizeof(leak__frame_root), frame_root_order);
  index->nframe_roots = nroots;
  /* Sizes that C could not read during the walk (no Python code runs: see leak__sizes_deferred). */
  for (size_t i = 0; i < b->ndeferred; i++) {
    uint32_t r = rank_of[b->deferred[i]];
    size_t size = leak__sizes_deferred(leak__ref_index_object(index, r), 0);
    index->size[r] = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
  }
  leak__free(rank_of);
  return 0;
nomem:
  leak__free(rank_of);
  return LEAK_ENOMEM;
}

int leak__ref_index_build(leak__ref_index **out) {
  *out = NULL;
  leak__ref_index *index = leak__calloc(1, sizeof(*index));
  build_context b;
  memset(&b, 0, sizeof(b));
  if (index == NULL) return LEAK_ENOMEM;
  if (!Py_IsInitialized() || !PyGILState_Check()) {
    leak__free(index);
    return LEAK_ENOPYTHON;
  }
  int rc = leak__sizes_init(&b.sizes);
  if (rc == 0) {
    leak__heap_visitor visitor = {on_object, on_edge, on_frame_ref, &b};
    leak__heap_walk walk = {0};
    rc = leak__heap_walk_all(&walk, &visitor, LEAK__WALK_UNTRACKED);
    leak__heap_walk_free(&walk);
  }
  if (rc == 0) rc = assemble(&b, index);
  free_context(&b);
  if (rc != 0) {
    leak__ref_index_free(index);
    return rc;
  }
  index->fingerprint = leak__frames_gc_fingerprint(leak__frames_interpreter(leak__frames_this_thread()));
  *out = index;
  return 0;
}

void leak__ref_index_free(leak__ref_index *index) {
  if (index == NULL) return;
  leak__free(index->address);
  leak__free(index->size);
  leak__free(index->in_first);
  leak__free(index->referrers);
  leak__free(index->frame_roots);
  leak__free(index);
}

int64_t leak__ref_index_find(const leak__ref_index *index, const void *address) {
  uintptr_t a = (uintptr_t)address;
  size_t low = 0, high = index->nodes;
  while (low < high) {
    size_t middle = low + (high - low) / 2;
    if (index->address[middle] < a)
      low = middle + 1;
    else
      high = middle;
  }
  return (low < index->nodes && index->address[low] == a) ? (int64_t)low : -1;
}

uint64_t leak__ref_index_size(const leak__ref_index *index, uint32_t node) {
  return index->size[node];
}

const leak__frame_root *leak__ref_index_frame_roots(const leak__ref_index *index, uint32_t node, size_t *count) {
  size_t low = 0, high = index->nframe_roots;
  while (low < high) {
    size_t middle = low + (high - low) / 2;
    if (index->frame_roots[middle].node < node)
      low = middle + 1;
    else
      high = middle;
  }
  size_t end = low;
  while (end < index->nframe_roots && index->frame_roots[end].node == node) end++;
  *count = end - low;
  return index->frame_roots + low;
}

Py_ssize_t leak__ref_index_unaccounted(const leak__ref_index *index, uint32_t node) {
  PyObject *obj = leak__ref_index_object(index, node);
  if (leak__frames_is_immortal(obj)) return 0;
  size_t roots;
  leak__ref_index_frame_roots(index, node, &roots);
  Py_ssize_t known = (Py_ssize_t)(index->in_first[node + 1] - index->in_first[node]) + (Py_ssize_t)roots;
  Py_ssize_t unaccounted = Py_REFCNT(obj) - known;
  return unaccounted > 0 ? unaccounted : 0;
}

int leak__ref_index_is_current(const leak__ref_index *index) {
  PyThreadState *tstate = leak__frames_this_thread();
  if (tstate == NULL) return 0;
  return leak__frames_gc_fingerprint(leak__frames_interpreter(tstate)) == index->fingerprint;
}

size_t leak__ref_index_memory(const leak__ref_index *index) {
  return sizeof(*index) + index->nodes * (sizeof(uintptr_t) + 2 * sizeof(uint32_t)) + sizeof(uint32_t) +
         index->edges * sizeof(uint32_t) + index->nframe_roots * sizeof(leak__frame_root);
}
