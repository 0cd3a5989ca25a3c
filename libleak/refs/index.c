/* The reverse reference index.  Read refs/index.h first.
 *
 * The walk reports objects and edges in walk order, each edge right after its referrer (the
 * walker traverses an object just after reporting it), so an edge is stored as (referent address,
 * referrer's walk number) with no lookup.  Then two radix sorts: the objects by address (a node is
 * its rank), the edges by referent address; a merge of the two gives each edge its referent node,
 * and edges come out grouped by referent: the CSR arrays of referrers. */
#include "core/internal.h"
#include "refs/index.h"
#include "heap/sizes.h"
#include "heap/walk.h"

#include <string.h>

/* Growable arrays of the build, in walk order. */
typedef struct build_context {
  leak__sizes sizes;
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
  uintptr_t last_type;
  uint8_t last_kind;
  uint32_t last_header;
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
  if (type != b->last_type) {
    b->last_type = type;
    b->last_kind = leak__sizes_kind(&b->sizes, (PyTypeObject *)type);
    b->last_header = (uint32_t)leak__object_header_size(obj);
  }
  uint64_t size = 0;
  if (b->last_kind == LEAK__SIZE_DEFERRED || PyType_Check(obj)) {
    if (grow((void **)&b->deferred, NULL, 0, sizeof(uint32_t), b->ndeferred, &b->deferred_capacity) < 0)
      return LEAK_ENOMEM;
    b->deferred[b->ndeferred++] = (uint32_t)b->nwalk;
  } else {
    size = leak__sizes_of(b->last_kind, obj) + b->last_header;
  }
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

/* Sorts keys[0..n) and their values alike, least significant 16-bit digit first, skipping digits
 * every key shares (addresses share their top bits).  0 or LEAK_ENOMEM. */
static int radix_sort(uint64_t *keys, uint32_t *values, size_t n) {
  uint64_t *other_keys = leak__malloc((n ? n : 1) * sizeof(uint64_t));
  uint32_t *other_values = leak__malloc((n ? n : 1) * sizeof(uint32_t));
  size_t *count = leak__malloc(65536 * sizeof(size_t));
  if (other_keys == NULL || other_values == NULL || count == NULL) {
    leak__free(other_keys);
    leak__free(other_values);
    leak__free(count);
    return LEAK_ENOMEM;
  }
  uint64_t *k = keys, *k2 = other_keys;
  uint32_t *v = values, *v2 = other_values;
  for (int shift = 0; shift < 64; shift += 16) {
    memset(count, 0, 65536 * sizeof(size_t));
    for (size_t i = 0; i < n; i++) count[(k[i] >> shift) & 0xffff]++;
    if (n == 0 || count[(k[0] >> shift) & 0xffff] == n) continue; /* one digit for all: nothing to do */
    size_t sum = 0;
    for (size_t d = 0; d < 65536; d++) {
      size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++) {
      size_t at = count[(k[i] >> shift) & 0xffff]++;
      k2[at] = k[i];
      v2[at] = v[i];
    }
    uint64_t *tk = k;
    k = k2;
    k2 = tk;
    uint32_t *tv = v;
    v = v2;
    v2 = tv;
  }
  if (k != keys) {
    memcpy(keys, k, n * sizeof(uint64_t));
    memcpy(values, v, n * sizeof(uint32_t));
  }
  leak__free(other_keys);
  leak__free(other_values);
  leak__free(count);
  return 0;
}

static void free_context(build_context *b) {
  leak__sizes_fini(&b->sizes);
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

/* Turns the walk's arrays into the index (they are consumed). */
static int assemble(build_context *b, leak__ref_index *index) {
  size_t n = b->nwalk;
  /* Nodes by address: walk_size is reused to carry walk numbers through the sort. */
  uint32_t *order = leak__malloc((n ? n : 1) * sizeof(uint32_t));
  uint32_t *rank_of = leak__malloc((n ? n : 1) * sizeof(uint32_t));
  if (order == NULL || rank_of == NULL) goto nomem;
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  if (radix_sort(b->walk_address, order, n) < 0) goto nomem;
  index->nodes = n;
  index->address = (uintptr_t *)b->walk_address; /* uint64_t and uintptr_t are one type here */
  b->walk_address = NULL;
  index->size = leak__malloc((n ? n : 1) * sizeof(uint32_t));
  if (index->size == NULL) goto nomem;
  for (size_t r = 0; r < n; r++) {
    rank_of[order[r]] = (uint32_t)r;
    index->size[r] = b->walk_size[order[r]];
  }
  /* Edges by referent, then merged with the nodes. */
  if (radix_sort(b->edge_to, b->edge_from, b->nedges) < 0) goto nomem;
  index->in_first = leak__calloc(n + 1, sizeof(uint32_t));
  index->referrers = leak__malloc((b->nedges ? b->nedges : 1) * sizeof(uint32_t));
  if (index->in_first == NULL || index->referrers == NULL) goto nomem;
  size_t kept = 0, node = 0;
  for (size_t e = 0; e < b->nedges; e++) {
    uint64_t to = b->edge_to[e];
    while (node < n && index->address[node] < to) node++;
    if (node == n || index->address[node] != to) continue; /* not an object the walk visited */
    index->in_first[node + 1]++;
    index->referrers[kept++] = rank_of[b->edge_from[e]];
  }
  for (size_t i = 0; i < n; i++) index->in_first[i + 1] += index->in_first[i];
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
  leak__free(order);
  leak__free(rank_of);
  return 0;
nomem:
  leak__free(order);
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
