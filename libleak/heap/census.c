/* The census: live objects counted per type, and the comparison of two censuses.  Read
 * include/libleak/heap.h for the contract and heap/walk.h for the walk it stands on.
 *
 * Sizes are sys.getsizeof's (heap/sizes.h).  Objects whose __sizeof__ may be Python code are held
 * (a strong reference, which allocates nothing) and asked after the walk, when running code is safe
 * again. */
#include "core/internal.h"
#include "core/sigsafe.h"
#include "heap/census.h"
#include "heap/walk.h"
#include "heap/sizes.h"
#include "core/idset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct census_type {
  uintptr_t type;           /* identity only: the census holds no reference to the type */
  char *names[3];           /* by leak__type_name_kind; leak__malloc'd */
  uint64_t count, size;
  uint32_t header; /* what sys.getsizeof adds to __sizeof__: the same for every instance of a type,
                    * type objects aside (deferred, so asked to sys.getsizeof itself) */
  uint8_t sizer;
} census_type;

struct leak_census {
  census_type *types;
  size_t ntypes, types_capacity;
  leak__idset type_index; /* type pointer -> row */
  uintptr_t *addresses;   /* with keep_addresses: each object counted, in walk order... */
  uint32_t *type_of;      /* ...and its row */
  size_t nobjects, objects_capacity;
  int keep_addresses, tracked_only;
  uint64_t total_count, total_size;
};

/* State of one take. */
typedef struct take_context {
  leak_census *census;
  leak__sizes sizes;
  PyObject **deferred; /* objects whose size is asked after the walk (strong references) */
  uint32_t *deferred_row;
  size_t ndeferred, deferred_capacity;
  uintptr_t last_type; /* a one-entry cache in front of type_index */
  uint32_t last_row;
} take_context;

static int row_equal(const void *context, uint32_t index) {
  const census_type *t = ((const void *const *)context)[0];
  uintptr_t type = *(const uintptr_t *)((const void *const *)context)[1];
  return t[index].type == type;
}

/* The row of `type`, added (counts zero, names unset) when new.  0 or LEAK_ENOMEM. */
static int row_of(leak_census *c, uintptr_t type, uint32_t *row) {
  uint32_t hash = leak__hash_u64(type);
  const void *context[2] = {c->types, &type};
  size_t slot;
  if (c->type_index.slots != NULL && leak__idset_find(&c->type_index, hash, row_equal, context, row, &slot))
    return 0;
  if (c->ntypes == c->types_capacity) {
    size_t capacity = c->types_capacity ? 2 * c->types_capacity : 256;
    census_type *types = leak__realloc(c->types, capacity * sizeof(*types));
    if (types == NULL) return LEAK_ENOMEM;
    c->types = types;
    c->types_capacity = capacity;
  }
  if (leak__idset_reserve(&c->type_index) < 0) return LEAK_ENOMEM;
  context[0] = c->types;
  leak__idset_find(&c->type_index, hash, row_equal, context, row, &slot);
  *row = (uint32_t)c->ntypes;
  memset(&c->types[*row], 0, sizeof(census_type));
  c->types[*row].type = type;
  leak__idset_put(&c->type_index, slot, hash, *row);
  c->ntypes++;
  return 0;
}

static int defer(take_context *ctx, PyObject *obj, uint32_t row) {
  if (ctx->ndeferred == ctx->deferred_capacity) {
    size_t capacity = ctx->deferred_capacity ? 2 * ctx->deferred_capacity : 1024;
    PyObject **objects = leak__realloc(ctx->deferred, capacity * sizeof(*objects));
    if (objects == NULL) return LEAK_ENOMEM;
    ctx->deferred = objects;
    uint32_t *rows = leak__realloc(ctx->deferred_row, capacity * sizeof(*rows));
    if (rows == NULL) return LEAK_ENOMEM;
    ctx->deferred_row = rows;
    ctx->deferred_capacity = capacity;
  }
  Py_INCREF(obj);
  ctx->deferred[ctx->ndeferred] = obj;
  ctx->deferred_row[ctx->ndeferred++] = row;
  return 0;
}

static int remember_address(leak_census *c, PyObject *obj, uint32_t row) {
  if (c->nobjects == c->objects_capacity) {
    size_t capacity = c->objects_capacity ? 2 * c->objects_capacity : 65536;
    uintptr_t *addresses = leak__realloc(c->addresses, capacity * sizeof(*addresses));
    if (addresses == NULL) return LEAK_ENOMEM;
    c->addresses = addresses;
    uint32_t *rows = leak__realloc(c->type_of, capacity * sizeof(*rows));
    if (rows == NULL) return LEAK_ENOMEM;
    c->type_of = rows;
    c->objects_capacity = capacity;
  }
  c->addresses[c->nobjects] = (uintptr_t)obj;
  c->type_of[c->nobjects++] = row;
  return 0;
}

/* The walk's callback: one object counted. */
static int count_object(void *arg, PyObject *obj, int tracked) {
  take_context *ctx = arg;
  leak_census *c = ctx->census;
  uintptr_t type = (uintptr_t)Py_TYPE(obj);
  uint32_t row = ctx->last_row;
  if (type != ctx->last_type) {
    int rc = row_of(c, type, &row);
    if (rc < 0) return rc;
    ctx->last_type = type;
    ctx->last_row = row;
  }
  census_type *t = &c->types[row];
  if (t->sizer == LEAK__SIZE_UNKNOWN) {
    t->sizer = leak__sizes_kind(&ctx->sizes, (PyTypeObject *)type);
    t->header = (uint32_t)leak__object_header_size(obj);
  }
  t->count++;
  if (t->sizer == LEAK__SIZE_DEFERRED) {
    int rc = defer(ctx, obj, row);
    if (rc < 0) return rc;
  } else {
    t->size += leak__sizes_of(t->sizer, obj) + t->header;
  }
  return c->keep_addresses ? remember_address(c, obj, row) : 0;
}

/* A copy of `text` (length `length`) made with leak__malloc, or NULL. */
static char *copy_text(const char *text, size_t length) {
  char *copy = leak__malloc(length + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, text, length);
  copy[length] = '\0';
  return copy;
}

/* "module" + "." + "name", or "name" alone when module is NULL (or "builtins", for the qualified
 * kind). */
static char *join_name(const char *module, const char *name) {
  if (module == NULL) return copy_text(name, strlen(name));
  size_t m = strlen(module), n = strlen(name);
  char *joined = leak__malloc(m + n + 2);
  if (joined == NULL) return NULL;
  memcpy(joined, module, m);
  joined[m] = '.';
  memcpy(joined + m + 1, name, n + 1);
  return joined;
}

/* A str's UTF-8 text, or NULL when `text` is not a str (or could not be encoded). */
static const char *utf8_of(PyObject *text) {
  if (text == NULL || !PyUnicode_Check(text)) return NULL;
  const char *utf8 = PyUnicode_AsUTF8(text);
  if (utf8 == NULL) PyErr_Clear();
  return utf8;
}

/* A row's three names, read from the type without running Python code: heap types keep __name__,
 * __qualname__ and __module__ (in their dict); static types keep "module.name" in tp_name, or a bare
 * name for builtins.  Runs after the walk: PyUnicode_AsUTF8 may cache an encoding. */
static int name_row(census_type *t, PyObject *module_key) {
  PyTypeObject *type = (PyTypeObject *)t->type;
  const char *module = NULL, *name = NULL, *qualname = NULL;
  char *static_module = NULL;
  if (type->tp_flags & Py_TPFLAGS_HEAPTYPE) {
    PyHeapTypeObject *heap = (PyHeapTypeObject *)type;
    name = utf8_of(heap->ht_name);
    qualname = utf8_of(heap->ht_qualname);
    PyObject *dict = type->tp_dict;
    if (dict != NULL && PyDict_Check(dict)) {
      module = utf8_of(PyDict_GetItemWithError(dict, module_key));
      PyErr_Clear();
    }
  } else {
    const char *dot = strrchr(type->tp_name, '.');
    name = qualname = dot ? dot + 1 : type->tp_name;
    if (dot) {
      static_module = copy_text(type->tp_name, (size_t)(dot - type->tp_name));
      if (static_module == NULL) return LEAK_ENOMEM;
      module = static_module;
    } else {
      module = "builtins";
    }
  }
  if (name == NULL) name = type->tp_name;
  if (qualname == NULL) qualname = name;
  int builtin = module == NULL || strcmp(module, "builtins") == 0;
  t->names[LEAK__NAME_QUALIFIED] = join_name(builtin ? NULL : module, qualname);
  t->names[LEAK__NAME_SHORT] = copy_text(name, strlen(name));
  t->names[LEAK__NAME_LONG] = join_name(module != NULL && module[0] ? module : NULL, name);
  leak__free(static_module);
  for (int k = 0; k < 3; k++)
    if (t->names[k] == NULL) return LEAK_ENOMEM;
  return 0;
}

/* Sizes of the deferred objects, through sys.getsizeof's own function (so a user __sizeof__ and
 * errors behave as sys.getsizeof's do).  Runs Python code, so it comes after everything that reads
 * type pointers. */
static void size_deferred(take_context *ctx) {
  for (size_t i = 0; i < ctx->ndeferred; i++) {
    ctx->census->types[ctx->deferred_row[i]].size += leak__sizes_deferred(ctx->deferred[i], 1);
  }
}

static void release_deferred(take_context *ctx) {
  for (size_t i = 0; i < ctx->ndeferred; i++) Py_DECREF(ctx->deferred[i]);
  leak__free(ctx->deferred);
  leak__free(ctx->deferred_row);
  ctx->deferred = NULL;
  ctx->ndeferred = 0;
}

/* Every object, or (tracked_only) exactly what gc.get_objects() returns. */
static unsigned walk_flags(const leak_census *c) {
  return c->tracked_only ? LEAK__WALK_NO_PERMANENT : LEAK__WALK_UNTRACKED;
}

int leak_census_take(const leak_census_options *options, leak_census **out) {
  static const leak_census_options defaults = LEAK_CENSUS_OPTIONS_INIT;
  if (options == NULL) options = &defaults;
  *out = NULL;
  if (!Py_IsInitialized() || !PyGILState_Check()) return LEAK_ENOPYTHON;
  if (options->gc_collect) {
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *result = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    Py_XDECREF(gc);
    if (result == NULL) return LEAK_EPYTHON;
    Py_DECREF(result);
  }
  take_context ctx = {.census = NULL};
  PyObject *module_key = PyUnicode_InternFromString("__module__");
  leak_census *c = leak__calloc(1, sizeof(*c));
  if (module_key == NULL || c == NULL || leak__sizes_init(&ctx.sizes) < 0) {
    Py_XDECREF(module_key);
    leak__free(c);
    PyErr_Clear();
    return LEAK_ENOMEM;
  }
  c->keep_addresses = options->keep_addresses;
  c->tracked_only = options->tracked_only;
  ctx.census = c;

  leak__heap_walk walk = {0};
  int rc = 0;
  if (options->exclude != NULL && options->exclude_count > 0)
    rc = leak__heap_walk_exclude(&walk, (PyObject *const *)options->exclude, options->exclude_count);
  if (rc == 0 && options->exclude_alone != NULL)
    rc = leak__heap_walk_exclude_alone(&walk, (PyObject *const *)options->exclude_alone, options->exclude_alone_count);
  leak__heap_visitor visitor = {.object = count_object, .arg = &ctx};
  if (rc == 0) rc = leak__heap_walk_all(&walk, &visitor, walk_flags(c));
  leak__heap_walk_free(&walk);
  for (size_t i = 0; rc == 0 && i < c->ntypes; i++) rc = name_row(&c->types[i], module_key);
  if (rc == 0) size_deferred(&ctx);
  release_deferred(&ctx);
  leak__sizes_fini(&ctx.sizes);
  Py_DECREF(module_key);
  if (rc != 0) {
    leak_census_free(c);
    return rc;
  }
  for (size_t i = 0; i < c->ntypes; i++) {
    c->total_count += c->types[i].count;
    c->total_size += c->types[i].size;
  }
  *out = c;
  return 0;
}

void leak_census_free(leak_census *census) {
  if (census == NULL) return;
  for (size_t i = 0; i < census->ntypes; i++)
    for (int k = 0; k < 3; k++) leak__free(census->types[i].names[k]);
  leak__free(census->types);
  leak__idset_free(&census->type_index);
  leak__free(census->addresses);
  leak__free(census->type_of);
  leak__free(census);
}

size_t leak_census_rows(const leak_census *census) { return census->ntypes; }

int leak_census_row_at(const leak_census *census, size_t i, leak_census_row *row) {
  if (i >= census->ntypes) return LEAK_ERANGE;
  const census_type *t = &census->types[i];
  row->type_name = t->names[LEAK__NAME_QUALIFIED];
  row->count = t->count;
  row->size = t->size;
  return 0;
}

const char *leak__census_row_name(const leak_census *census, size_t i, leak__type_name_kind kind) {
  return census->types[i].names[kind];
}

void leak__census_objects(const leak_census *census, const uintptr_t **addresses, const uint32_t **rows,
                          size_t *count) {
  *addresses = census->addresses;
  *rows = census->type_of;
  *count = census->keep_addresses ? census->nobjects : 0;
}

void leak_census_totals(const leak_census *census, uint64_t *count, uint64_t *size, uint64_t *memory) {
  if (count) *count = census->total_count;
  if (size) *size = census->total_size;
  if (memory)
    *memory = sizeof(*census) + census->types_capacity * sizeof(census_type) +
              (census->type_index.mask + 1) * sizeof(uint64_t) +
              census->objects_capacity * (sizeof(uintptr_t) + sizeof(uint32_t));
}

/* ---- Comparing two censuses ---------------------------------------------------------------- */

/* Rows match when they are the same type object with the same name (an address reused by another
 * type of another name is another row). */
static int same_type(const census_type *a, const census_type *b) {
  return a->type == b->type && strcmp(a->names[0], b->names[0]) == 0;
}

static int diff_order(const void *pa, const void *pb) {
  const leak_census_diff_row *a = pa, *b = pb;
  if (a->size_diff != b->size_diff) return a->size_diff > b->size_diff ? -1 : 1;
  if (a->count_diff != b->count_diff) return a->count_diff > b->count_diff ? -1 : 1;
  return strcmp(a->type_name, b->type_name);
}

int leak_census_diff(const leak_census *now, const leak_census *old, leak_census_diff_row **rows, size_t *count) {
  *rows = NULL;
  *count = 0;
  size_t capacity = now->ntypes + old->ntypes;
  leak_census_diff_row *out = leak__malloc((capacity ? capacity : 1) * sizeof(*out));
  uint8_t *matched = leak__calloc(old->ntypes ? old->ntypes : 1, 1);
  if (out == NULL || matched == NULL) {
    leak__free(out);
    leak__free(matched);
    return LEAK_ENOMEM;
  }
  size_t n = 0;
  for (size_t i = 0; i < now->ntypes; i++) {
    const census_type *t = &now->types[i];
    int64_t old_count = 0, old_size = 0;
    uint32_t j;
    size_t slot;
    const void *context[2] = {old->types, &t->type};
    if (old->type_index.slots != NULL &&
        leak__idset_find(&old->type_index, leak__hash_u64(t->type), row_equal, context, &j, &slot) &&
        same_type(t, &old->types[j])) {
      matched[j] = 1;
      old_count = (int64_t)old->types[j].count;
      old_size = (int64_t)old->types[j].size;
    }
    out[n++] = (leak_census_diff_row){t->names[0], (int64_t)t->count, (int64_t)t->count - old_count,
                                      (int64_t)t->size, (int64_t)t->size - old_size};
  }
  for (size_t j = 0; j < old->ntypes; j++) {
    if (matched[j]) continue;
    const census_type *t = &old->types[j];
    out[n++] = (leak_census_diff_row){t->names[0], 0, -(int64_t)t->count, 0, -(int64_t)t->size};
  }
  leak__free(matched);
  qsort(out, n, sizeof(*out), diff_order);
  *rows = out;
  *count = n;
  return 0;
}

void leak_census_diff_free(leak_census_diff_row *rows) { leak__free(rows); }


/* A byte count as people read it: "512 B", "5.0 KiB", "12.3 MiB"; signed when `sign`. */
static void format_size(char *out, size_t cap, int64_t bytes, int sign) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = (double)(bytes < 0 ? -bytes : bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    unit++;
  }
  const char *prefix = bytes < 0 ? "-" : (sign ? "+" : "");
  if (unit == 0)
    snprintf(out, cap, "%s%.0f %s", prefix, value, units[unit]);
  else
    snprintf(out, cap, "%s%.1f %s", prefix, value, units[unit]);
}

int leak_census_write_diff(const leak_census *now, const leak_census *old, int fd, size_t limit) {
  leak_census_diff_row *rows;
  size_t count;
  int rc = leak_census_diff(now, old, &rows, &count);
  if (rc < 0) return rc;
  char line[512];
  int n = snprintf(line, sizeof(line), "%-48s %10s %10s %12s %12s\n", "type", "count", "diff", "size", "diff");
  rc = leak__sigsafe_write(fd, line, (size_t)n);
  size_t shown = 0;
  for (size_t i = 0; rc == 0 && i < count && (limit == 0 || shown < limit); i++) {
    if (rows[i].count_diff == 0 && rows[i].size_diff == 0) continue;
    char size[32], size_diff[32];
    format_size(size, sizeof(size), rows[i].size, 0);
    format_size(size_diff, sizeof(size_diff), rows[i].size_diff, 1);
    n = snprintf(line, sizeof(line), "%-48s %10lld %+10lld %12s %12s\n", rows[i].type_name,
                 (long long)rows[i].count, (long long)rows[i].count_diff, size, size_diff);
    if (n >= (int)sizeof(line)) n = (int)sizeof(line) - 1;
    rc = leak__sigsafe_write(fd, line, (size_t)n);
    shown++;
  }
  leak_census_diff_free(rows);
  return rc;
}

/* ---- New objects --------------------------------------------------------------------------- */

typedef struct new_objects_context {
  const leak_census *now;
  leak__idset candidates; /* indexes into now->addresses */
  PyObject **found;
  size_t nfound, capacity, limit;
} new_objects_context;

static int address_equal(const void *context, uint32_t index) {
  const void *const *c = context;
  const leak_census *now = c[0];
  return now->addresses[index] == *(const uintptr_t *)c[1];
}

/* The validating walk's callback: an object at a candidate address, of the type it had then, is
 * handed out (a strong reference: no allocation).  Stops with 1 once `limit` are found. */
static int collect_new(void *arg, PyObject *obj, int tracked) {
  new_objects_context *ctx = arg;
  uintptr_t address = (uintptr_t)obj;
  uint32_t index;
  size_t slot;
  const void *context[2] = {ctx->now, &address};
  if (!leak__idset_find(&ctx->candidates, leak__hash_u64(address), address_equal, context, &index, &slot))
    return 0;
  if (ctx->now->types[ctx->now->type_of[index]].type != (uintptr_t)Py_TYPE(obj)) return 0;
  if (ctx->nfound == ctx->capacity) {
    size_t capacity = ctx->capacity ? 2 * ctx->capacity : 64;
    PyObject **found = leak__realloc(ctx->found, capacity * sizeof(*found));
    if (found == NULL) return LEAK_ENOMEM;
    ctx->found = found;
    ctx->capacity = capacity;
  }
  Py_INCREF(obj);
  ctx->found[ctx->nfound++] = obj;
  return (ctx->limit && ctx->nfound >= ctx->limit) ? 1 : 0;
}

int leak__census_new_objects(const leak_census *now, const leak_census *old, leak__type_name_kind kind,
                             const char *type_name, size_t limit, PyObject ***objects, size_t *count) {
  *objects = NULL;
  *count = 0;
  if (!now->keep_addresses || (old != NULL && !old->keep_addresses)) return LEAK_EINVAL;
  if (!Py_IsInitialized() || !PyGILState_Check()) return LEAK_ENOPYTHON;
  leak__objset before = {0};
  for (size_t i = 0; old != NULL && i < old->nobjects; i++)
    if (leak__objset_add(&before, (const void *)old->addresses[i]) < 0) {
      leak__objset_free(&before);
      return LEAK_ENOMEM;
    }
  new_objects_context ctx = {.now = now, .limit = limit};
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < now->nobjects; i++) {
    if (type_name != NULL && strcmp(now->types[now->type_of[i]].names[kind], type_name) != 0) continue;
    if (leak__objset_contains(&before, (const void *)now->addresses[i])) continue;
    if (leak__idset_reserve(&ctx.candidates) < 0) {
      rc = LEAK_ENOMEM;
      break;
    }
    uint32_t found;
    size_t slot;
    const void *context[2] = {now, &now->addresses[i]};
    if (!leak__idset_find(&ctx.candidates, leak__hash_u64(now->addresses[i]), address_equal, context, &found, &slot))
      leak__idset_put(&ctx.candidates, slot, leak__hash_u64(now->addresses[i]), (uint32_t)i);
  }
  leak__objset_free(&before);
  if (rc == 0 && ctx.candidates.count > 0) {
    leak__heap_walk walk = {0};
    leak__heap_visitor visitor = {.object = collect_new, .arg = &ctx};
    rc = leak__heap_walk_all(&walk, &visitor, walk_flags(now));
    leak__heap_walk_free(&walk);
    if (rc == 1) rc = 0;
  }
  leak__idset_free(&ctx.candidates);
  if (rc != 0) {
    for (size_t i = 0; i < ctx.nfound; i++) Py_DECREF(ctx.found[i]);
    leak__free(ctx.found);
    return rc;
  }
  *objects = ctx.found;
  *count = ctx.nfound;
  return 0;
}

int leak_census_new_objects(const leak_census *now, const leak_census *old, const char *type_name, size_t limit,
                            struct _object ***objects, size_t *count) {
  return leak__census_new_objects(now, old, LEAK__NAME_QUALIFIED, type_name, limit, (PyObject ***)objects, count);
}

void leak_census_objects_free(struct _object **objects) { leak__free(objects); }
