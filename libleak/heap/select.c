/* Picking objects out of the heap.  Read heap/select.h first. */
#include "core/internal.h"
#include "heap/select.h"
#include "heap/walk.h"

/* A growing array of new references. */
typedef struct picked {
  PyObject **objects;
  size_t count, capacity;
} picked;

static int pick(picked *p, PyObject *obj) {
  if (p->count == p->capacity) {
    size_t capacity = p->capacity ? 2 * p->capacity : 64;
    PyObject **objects = leak__realloc(p->objects, capacity * sizeof(*objects));
    if (objects == NULL) return LEAK_ENOMEM;
    p->objects = objects;
    p->capacity = capacity;
  }
  Py_INCREF(obj); /* no allocation, no code: allowed inside a walk */
  p->objects[p->count++] = obj;
  return 0;
}

static int finish(picked *p, int rc, PyObject ***out, size_t *found) {
  if (rc != 0) {
    for (size_t i = 0; i < p->count; i++) Py_DECREF(p->objects[i]);
    leak__free(p->objects);
    return rc;
  }
  *out = p->objects;
  *found = p->count;
  return 0;
}

typedef struct at_context {
  leak__objset wanted;
  picked result;
} at_context;

static int pick_if_wanted(void *arg, PyObject *obj, int tracked) {
  at_context *ctx = arg;
  return leak__objset_contains(&ctx->wanted, obj) ? pick(&ctx->result, obj) : 0;
}

int leak__heap_objects_at(const uintptr_t *addresses, size_t count, int tracked_only, PyObject ***out,
                          size_t *found) {
  *out = NULL;
  *found = 0;
  at_context ctx = {{0}, {0}};
  int rc = 0;
  for (size_t i = 0; i < count && rc == 0; i++)
    if (leak__objset_add(&ctx.wanted, (const void *)addresses[i]) < 0) rc = LEAK_ENOMEM;
  if (rc == 0 && count > 0) {
    leak__heap_walk walk = {0};
    leak__heap_visitor visitor = {.object = pick_if_wanted, .arg = &ctx};
    rc = leak__heap_walk_all(&walk, &visitor, tracked_only ? LEAK__WALK_NO_PERMANENT : LEAK__WALK_UNTRACKED);
    leak__heap_walk_free(&walk);
  }
  leak__objset_free(&ctx.wanted);
  return finish(&ctx.result, rc, out, found);
}

typedef struct referenced_context {
  leak__objset referenced;
  PyObject *ignored;
} referenced_context;

static int mark_referent(void *arg, PyObject *referrer, PyObject *referent) {
  referenced_context *ctx = arg;
  if (referrer == ctx->ignored) return 0;
  int rc = leak__objset_add(&ctx->referenced, referent);
  return rc < 0 ? rc : 0;
}

typedef struct unreferenced_context {
  leak__objset *referenced;
  picked result;
} unreferenced_context;

static int pick_unreferenced(void *arg, PyObject *obj, int tracked) {
  unreferenced_context *ctx = arg;
  return leak__objset_contains(ctx->referenced, obj) ? 0 : pick(&ctx->result, obj);
}

int leak__heap_unreferenced(PyObject *ignored, PyObject *const *candidates, size_t ncandidates, PyObject ***out,
                            size_t *found) {
  *out = NULL;
  *found = 0;
  referenced_context marks = {{0}, ignored};
  leak__heap_walk walk = {0};
  leak__heap_visitor visitor = {.edge = mark_referent, .arg = &marks};
  int rc = leak__heap_walk_all(&walk, &visitor, LEAK__WALK_NO_PERMANENT);
  leak__heap_walk_free(&walk);
  unreferenced_context ctx = {&marks.referenced, {0}};
  if (rc == 0 && candidates != NULL) {
    for (size_t i = 0; i < ncandidates && rc == 0; i++)
      if (!leak__objset_contains(&marks.referenced, candidates[i])) rc = pick(&ctx.result, candidates[i]);
  } else if (rc == 0) {
    leak__heap_visitor second = {.object = pick_unreferenced, .arg = &ctx};
    rc = leak__heap_walk_all(&walk, &second, LEAK__WALK_NO_PERMANENT);
    leak__heap_walk_free(&walk);
  }
  leak__objset_free(&marks.referenced);
  return finish(&ctx.result, rc, out, found);
}
