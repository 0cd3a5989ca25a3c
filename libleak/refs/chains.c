/* Chains of references, breadth first (refs/chains.h). */
#include "refs/chains.h"

#include "core/internal.h"

#include <stdint.h>

#define NO_PARENT UINT32_MAX

/* Drops the source's index and the references it pinned (which may run finalizers). */
static void drop_index(leak__chain_source *source) {
  leak__ref_index *index = source->index;
  source->index = NULL;
  if (index == NULL) return;
  for (size_t node = 0; node < index->nodes; node++)
    if (leak__ref_index_object(index, node) != source->owner) Py_DECREF(leak__ref_index_object(index, node));
  leak__ref_index_free(index);
}

/* Ensures the source holds an index that describes the heap of this moment, building one when
 * there is none or the gc's counters moved since.  A new index pins every object it names (a
 * strong reference each, dropped with the index): Python code that runs between two steps can
 * then leave the index out of date, never pointing at freed memory, even when the gc's counters
 * miss a change.  0 or an index build's error. */
static int current_index(leak__chain_source *source) {
  if (source->index != NULL && leak__ref_index_is_current(source->index)) return 0;
  drop_index(source);
  leak__ref_index *index;
  int rc = leak__ref_index_build(&index);
  if (rc < 0) return rc;
  for (size_t node = 0; node < index->nodes; node++)
    if (leak__ref_index_object(index, node) != source->owner) Py_INCREF(leak__ref_index_object(index, node));
  source->index = index;
  source->builds++;
  return 0;
}

/* What a forward listing carries through tp_traverse's void pointer. */
typedef struct forward_listing {
  leak__objset *ignore;
  leak__chain_each_fn each;
  void *arg;
} forward_listing;

/* tp_traverse's visitor for forward listings: passes each referent on unless it is ignored. */
static int visit_referent(PyObject *referent, void *arg) {
  forward_listing *listing = arg;
  if (referent == NULL) return 0;
  if (listing->ignore != NULL && leak__objset_contains(listing->ignore, referent)) return 0;
  return listing->each(listing->arg, referent);
}

int leak__chain_neighbours(leak__chain_source *source, PyObject *obj, leak__chain_direction direction,
                           leak__objset *ignore, leak__chain_each_fn each, void *arg) {
  if (direction == LEAK__CHAIN_FORWARD) {
    /* gc.get_referents' rule: only objects the gc handles are traversed. */
    if (!PyObject_IS_GC(obj) || Py_TYPE(obj)->tp_traverse == NULL) return 0;
    forward_listing listing = {ignore, each, arg};
    return Py_TYPE(obj)->tp_traverse(obj, visit_referent, &listing);
  }
  int rc = current_index(source);
  if (rc < 0) return rc;
  const leak__ref_index *index = source->index;
  int64_t node = leak__ref_index_find(index, obj);
  if (node < 0) return 0; /* nothing the walk reached refers to it */
  for (uint32_t e = index->in_first[node]; e < index->in_first[node + 1]; e++) {
    PyObject *referrer = leak__ref_index_object(index, index->referrers[e]);
    if (ignore != NULL && leak__objset_contains(ignore, referrer)) continue;
    rc = each(arg, referrer);
    if (rc != 0) return rc;
  }
  return 0;
}

void leak__chain_source_free(leak__chain_source *source) { drop_index(source); }

/* A search's queue: every object met, in the order met, each held (a strong reference), with the
 * queue position it was met from and its depth. */
typedef struct chain_queue {
  PyObject **objects;
  uint32_t *parent;
  uint32_t *depth;
  size_t count, capacity;
  leak__objset seen; /* the addresses queued: each is held, so none is freed or reused */
  leak__objset *ignore;
  uint32_t from;     /* the position whose neighbours are being queued */
} chain_queue;

/* Queues `obj` (taking a reference) met from position `from`, unless it is queued or ignored.
 * 0 or LEAK_ENOMEM (LEAK_ERANGE past 2^32 - 1 objects). */
static int queue_push(chain_queue *queue, PyObject *obj, uint32_t from) {
  if (queue->ignore != NULL && leak__objset_contains(queue->ignore, obj)) return 0;
  if (leak__objset_contains(&queue->seen, obj)) return 0;
  if (queue->count == queue->capacity) {
    size_t capacity = queue->capacity ? queue->capacity * 2 : 256;
    if (capacity >= NO_PARENT) return LEAK_ERANGE;
    PyObject **objects = leak__realloc(queue->objects, capacity * sizeof(*objects));
    if (objects == NULL) return LEAK_ENOMEM;
    queue->objects = objects;
    uint32_t *parent = leak__realloc(queue->parent, capacity * sizeof(*parent));
    if (parent == NULL) return LEAK_ENOMEM;
    queue->parent = parent;
    uint32_t *depth = leak__realloc(queue->depth, capacity * sizeof(*depth));
    if (depth == NULL) return LEAK_ENOMEM;
    queue->depth = depth;
    queue->capacity = capacity;
  }
  if (leak__objset_add(&queue->seen, obj) < 0) return LEAK_ENOMEM;
  size_t at = queue->count++;
  Py_INCREF(obj);
  queue->objects[at] = obj;
  queue->parent[at] = from;
  queue->depth[at] = from == NO_PARENT ? 0 : queue->depth[from] + 1;
  return 0;
}

/* leak__chain_each_fn that queues a neighbour of position queue->from. */
static int queue_neighbour(void *arg, PyObject *neighbour) {
  chain_queue *queue = arg;
  return queue_push(queue, neighbour, queue->from);
}

/* Drops the queue's references (which may run finalizers) and frees its memory. */
static void queue_free(chain_queue *queue) {
  PyObject **objects = queue->objects;
  size_t count = queue->count;
  leak__objset_free(&queue->seen);
  leak__free(queue->parent);
  leak__free(queue->depth);
  queue->objects = NULL;
  queue->count = 0;
  for (size_t i = 0; i < count; i++) Py_DECREF(objects[i]);
  leak__free(objects);
}

/* The chain from queue position `found` back to the start, as new references (chains.h). */
static int chain_from(const chain_queue *queue, uint32_t found, PyObject ***chain, size_t *length) {
  size_t n = 1;
  for (uint32_t at = found; queue->parent[at] != NO_PARENT; at = queue->parent[at]) n++;
  PyObject **result = leak__malloc(n * sizeof(*result));
  if (result == NULL) return LEAK_ENOMEM;
  size_t i = 0;
  for (uint32_t at = found;; at = queue->parent[at]) {
    result[i++] = Py_NewRef(queue->objects[at]);
    if (queue->parent[at] == NO_PARENT) break;
  }
  *chain = result;
  *length = n;
  return 0;
}

/* Objects are tried in queue order; the neighbours of a whole level are queued at once, when the
 * last object of the queue has been tried.  The order of discovery is objgraph's (each object's
 * neighbours after those of the objects before it), and no Python code runs within a level's
 * backward steps, so one index check covers the whole level. */
int leak__chain_find(leak__chain_source *source, PyObject *start, leak__chain_direction direction,
                     size_t max_depth, leak__objset *ignore, leak__chain_predicate_fn predicate, void *arg,
                     PyObject ***chain, size_t *length) {
  *chain = NULL;
  *length = 0;
  chain_queue queue = {0};
  queue.ignore = NULL; /* the start is tried even when ignored, as objgraph does */
  int rc = queue_push(&queue, start, NO_PARENT);
  queue.ignore = ignore;
  size_t tried = 0, expanded = 0;
  while (rc == 0) {
    if (tried == queue.count) {
      if (expanded == queue.count) break; /* nothing left: no match */
      size_t level_end = queue.count;
      for (; expanded < level_end && rc == 0; expanded++) {
        if (queue.depth[expanded] >= max_depth) continue;
        queue.from = (uint32_t)expanded;
        rc = leak__chain_neighbours(source, queue.objects[expanded], direction, ignore, queue_neighbour, &queue);
      }
      continue;
    }
    int verdict = predicate(arg, queue.objects[tried]);
    if (verdict < 0) rc = verdict;
    else if (verdict > 0) {
      rc = chain_from(&queue, (uint32_t)tried, chain, length);
      break;
    } else
      tried++;
  }
  queue_free(&queue);
  return rc;
}
