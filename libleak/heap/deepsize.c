/* Deep sizes: one walk over what a set of objects references, each object counted once.
 *
 * The walk is a depth-first pre-order with an explicit stack, the order pympler's recursive
 * asizeof visits objects in, so that depth limits cut (nearly) the same objects.  Every object gets a kind
 * from its type (cached per type for the call): whether it is counted and which referents are
 * followed.  Sizes are what sys.getsizeof reports, rounded up to the alignment: builtin types'
 * __sizeof__ are C functions called directly (or a formula when the type keeps object's own
 * __sizeof__); a __sizeof__ written in Python is called after the walk, so that no Python code
 * runs while the walk holds borrowed pointers.  The visited set is a leak__addrset. */
#include "core/internal.h"
#include "core/addrset.h"
#include "core/frames.h"
#include "heap/deepsize.h"

#include <frameobject.h> /* PyFrame_Type before 3.11 */

#include <string.h>

/* What the walk does with an object of a given type. */
typedef enum object_kind {
  KIND_SKIP,      /* seen, not counted, not followed (code without code=True, frames, ...) */
  KIND_LEAF,      /* counted, no referents followed */
  KIND_TRAVERSE,  /* counted, referents from tp_traverse */
  KIND_DICT,      /* counted, keys and values */
  KIND_INSTANCE,  /* counted, tp_traverse plus a managed __dict__ tp_traverse may not show */
  KIND_MODULE,    /* counted; its globals followed only when it is an argument itself */
  KIND_FUNCTION,  /* (code=True) counted, tp_traverse without the globals and builtins dicts */
  KIND_NUMPY,     /* counted, its .base (the array a view looks into) followed */
  KIND_CLASS      /* (code=True) a class: builtin ones counted only with ignored=False */
} object_kind;

/* How an object's __sizeof__ is obtained. */
typedef enum sizing {
  SIZING_LINEAR,  /* object.__sizeof__: constant + itemsize * Py_SIZE, learnt from the first one */
  SIZING_C,       /* a builtin method written in C, called directly */
  SIZING_DEFERRED /* written in Python: called after the walk */
} sizing;

/* One type's cached facts for this call. */
typedef struct type_info {
  PyTypeObject *type; /* NULL: empty slot */
  object_kind kind;
  sizing how;
  int constant_known;
  Py_ssize_t constant;    /* SIZING_LINEAR: __sizeof__ minus itemsize * Py_SIZE */
  PyObject *sizeof_descr; /* SIZING_C: the method descriptor (borrowed; the type holds it) */
} type_info;

typedef struct stack_entry {
  PyObject *obj;
  size_t depth;
} stack_entry;

typedef struct deferred_entry {
  PyObject *obj; /* a strong reference */
  size_t argument;
} deferred_entry;

/* The state of one call. */
typedef struct walker {
  const leak_deepsize_options *options;
  size_t mask; /* align - 1 */
  leak__addrset seen;
  stack_entry *stack;
  size_t stack_count, stack_capacity;
  type_info *types; /* open addressing by type pointer */
  size_t types_mask, types_count;
  deferred_entry *deferred;
  size_t deferred_count, deferred_capacity;
  PyObject *object_sizeof; /* object.__sizeof__, to recognise types that keep it */
  PyObject *skip_a, *skip_b; /* referents not to follow while traversing a function */
  size_t dict_header;        /* what sys.getsizeof adds to a dict */
  size_t push_depth;         /* depth given to referents pushed by the visit callback */
  int error;                 /* first failure inside a callback */
  leak__deepsize_result result;
} walker;

/* Rounds up to the alignment (mask = align - 1, 0 for none). */
static inline size_t aligned(size_t size, size_t mask) { return (size + mask) & ~mask; }

/* ---- The stack ---------------------------------------------------------------------------- */

/* Grows the stack geometrically (the stack, the seen set, the type table and the deferred list are
 * the walk's only allocations, all outside the Python heap). */
static int stack_reserve(walker *w, size_t more) {
  if (w->stack_count + more <= w->stack_capacity) return 0;
  size_t capacity = w->stack_capacity ? w->stack_capacity : 1024;
  while (capacity < w->stack_count + more) capacity *= 2;
  stack_entry *grown = leak__realloc(w->stack, capacity * sizeof(*grown));
  if (grown == NULL) return LEAK_ENOMEM;
  w->stack = grown;
  w->stack_capacity = capacity;
  return 0;
}

/* Pushes one referent; whether it was seen is decided for the whole batch by keep_new_from. */
static inline int push(walker *w, PyObject *obj) {
  if (obj == NULL || obj == w->skip_a || obj == w->skip_b) return 0;
  if (LEAK_UNLIKELY(w->stack_count == w->stack_capacity) && stack_reserve(w, 1) < 0) return LEAK_ENOMEM;
  w->stack[w->stack_count].obj = obj;
  w->stack[w->stack_count].depth = w->push_depth;
  w->stack_count++;
  return 0;
}

/* True when `obj` was pushed since `start` (an object's handful of referents). */
static int pushed_since(const walker *w, size_t start, PyObject *obj) {
  for (size_t i = start; i < w->stack_count; i++)
    if (w->stack[i].obj == obj) return 1;
  return 0;
}

/* How many entries ahead keep_new_from prefetches the seen set's slots. */
#define DEEPSIZE_PREFETCH_AHEAD 8

/* Marks the referents pushed since `start` as seen and keeps only those that were new.  Marking
 * when pushed (not when popped) costs one lookup per reference, and the batch lets the lookups'
 * cache misses overlap; an object referenced from two places is counted where it was first
 * pushed, which changes the total only when a depth limit cuts between the two. */
static int keep_new_from(walker *w, size_t start) {
  size_t kept = start, end = w->stack_count;
  for (size_t i = start; i < end; i++) {
    if (i + DEEPSIZE_PREFETCH_AHEAD < end)
      leak__addrset_prefetch(&w->seen, (uintptr_t)w->stack[i + DEEPSIZE_PREFETCH_AHEAD].obj);
    PyObject *obj = w->stack[i].obj;
    /* An object with one reference is reached only through its one referrer, which the walk
     * visits once: it needs no entry in the seen set.  (Arguments are in the set whatever their
     * count; anything else that holds a reference, the C stack included, raises the count.)  Most
     * objects of ordinary data are held once, so this saves most of the set's cache misses. */
    if (Py_REFCNT(obj) == 1) {
      w->stack[kept++] = w->stack[i];
      w->result.seen++;
      continue;
    }
    int added = leak__addrset_add(&w->seen, (uintptr_t)obj);
    if (added < 0) return added;
    if (added) w->stack[kept++] = w->stack[i];
  }
  w->stack_count = kept;
  return 0;
}

/* tp_traverse's callback: a nonzero return stops the traversal, which is how running out of memory
 * is reported back. */
static int visit_referent(PyObject *obj, void *arg) {
  walker *w = arg;
  int rc = push(w, obj);
  if (rc < 0) w->error = rc;
  return rc;
}

/* Referents are pushed in the order the type reports them, then reversed, so that the first
 * referent is popped (and so visited) first, as in a recursive walk. */
static void reverse_from(walker *w, size_t start) {
  size_t i = start, j = w->stack_count;
  while (j > i + 1) {
    stack_entry t = w->stack[i];
    w->stack[i] = w->stack[j - 1];
    w->stack[j - 1] = t;
    i++, j--;
  }
}

/* ---- Types -------------------------------------------------------------------------------- */

/* True for numpy's arrays and scalars: their __sizeof__ counts the data buffer, and a view's
 * .base is the array it looks into. */
static int is_numpy_array_type(PyTypeObject *type) {
  for (PyTypeObject *t = type; t != NULL; t = t->tp_base)
    if (strcmp(t->tp_name, "numpy.ndarray") == 0) return 1;
  return 0;
}

/* pympler's rules, by type: code objects, functions, methods and classes are sized only with
 * code=True (builtin ones, and `object()`s, only with ignored=False too); frames only with
 * frames=True; a module's globals are followed only at the top; dicts by their items; instances of
 * Python classes by their attributes (__dict__ and __slots__); everything else by what its
 * tp_traverse reports. */
static object_kind classify(const walker *w, PyTypeObject *type) {
  const leak_deepsize_options *o = w->options;
  if (PyType_IsSubtype(type, &PyType_Type)) return o->code ? KIND_CLASS : KIND_SKIP;
  if (type == &PyCFunction_Type || PyType_IsSubtype(type, &PyCFunction_Type) || type == &PyBaseObject_Type ||
      type == &PySuper_Type)
    return o->code && !o->ignored ? KIND_LEAF : KIND_SKIP;
  if (type == &PyFunction_Type) return o->code ? KIND_FUNCTION : KIND_SKIP;
  if (type == &PyCode_Type || type == &PyMethod_Type || type == &PyClassMethod_Type ||
      type == &PyStaticMethod_Type)
    return o->code ? KIND_TRAVERSE : KIND_SKIP;
  if (type == &PyFrame_Type) return o->frames ? KIND_TRAVERSE : KIND_SKIP;
  if (PyType_IsSubtype(type, &PyModule_Type)) return KIND_MODULE;
  if (PyType_IsSubtype(type, &PyDict_Type)) return KIND_DICT;
  if (is_numpy_array_type(type)) return KIND_NUMPY;
  if (PyType_HasFeature(type, Py_TPFLAGS_HEAPTYPE)) return KIND_INSTANCE;
  if (type->tp_traverse != NULL && PyType_HasFeature(type, Py_TPFLAGS_HAVE_GC)) return KIND_TRAVERSE;
  return KIND_LEAF;
}

/* Where a type's __sizeof__ comes from.  The lookup reads the type's MRO dicts only. */
static sizing sizing_of(walker *w, PyTypeObject *type, PyObject **descr) {
  static PyObject *name; /* interned "__sizeof__", kept for the process */
  if (name == NULL) name = PyUnicode_InternFromString("__sizeof__");
  *descr = NULL;
  if (name == NULL) {
    PyErr_Clear();
    return SIZING_DEFERRED;
  }
  PyObject *found = _PyType_Lookup(type, name);
  if (found == NULL || found == w->object_sizeof) return SIZING_LINEAR;
  if (Py_TYPE(found) == &PyMethodDescr_Type) {
    PyMethodDef *method = ((PyMethodDescrObject *)found)->d_method;
    if ((method->ml_flags & (METH_VARARGS | METH_KEYWORDS | METH_NOARGS | METH_O | METH_CLASS | METH_STATIC)) ==
        METH_NOARGS) {
      *descr = found;
      return SIZING_C;
    }
  }
  return SIZING_DEFERRED;
}

/* Doubles the type table; entries are re-placed by their type pointer. */
static int types_grow(walker *w) {
  size_t capacity = w->types ? (w->types_mask + 1) * 2 : 64;
  type_info *table = leak__calloc(capacity, sizeof(*table));
  if (table == NULL) return LEAK_ENOMEM;
  for (size_t i = 0; w->types && i <= w->types_mask; i++) {
    if (w->types[i].type == NULL) continue;
    size_t j = ((uintptr_t)w->types[i].type >> 4) & (capacity - 1);
    while (table[j].type != NULL) j = (j + 1) & (capacity - 1);
    table[j] = w->types[i];
  }
  leak__free(w->types);
  w->types = table;
  w->types_mask = capacity - 1;
  return 0;
}

/* The cached facts of `type`, computed on first sight; NULL when memory ran out. */
static type_info *type_info_of(walker *w, PyTypeObject *type) {
  if (w->types != NULL) {
    size_t i = ((uintptr_t)type >> 4) & w->types_mask;
    for (; w->types[i].type != NULL; i = (i + 1) & w->types_mask)
      if (w->types[i].type == type) return &w->types[i];
  }
  if ((w->types == NULL || (w->types_count + 1) * 2 > w->types_mask + 1) && types_grow(w) < 0) return NULL;
  size_t i = ((uintptr_t)type >> 4) & w->types_mask;
  while (w->types[i].type != NULL) i = (i + 1) & w->types_mask;
  type_info *info = &w->types[i];
  info->type = type;
  info->kind = classify(w, type);
  info->how = sizing_of(w, type, &info->sizeof_descr);
  info->constant_known = 0;
  w->types_count++;
  return info;
}

/* ---- Sizes -------------------------------------------------------------------------------- */

/* A C __sizeof__'s answer, or -1 (no exception left set) when it failed or was not an int. */
static Py_ssize_t call_c_sizeof(PyObject *descr, PyObject *obj) {
  PyMethodDef *method = ((PyMethodDescrObject *)descr)->d_method;
  PyObject *answer = method->ml_meth(obj, NULL);
  if (answer == NULL) {
    PyErr_Clear();
    return -1;
  }
  Py_ssize_t size = PyLong_Check(answer) ? PyLong_AsSsize_t(answer) : -1;
  Py_DECREF(answer);
  if (size < 0) PyErr_Clear();
  return size;
}

/* pympler's estimate when __sizeof__ fails: the basic size plus the items. */
static size_t estimated_sizeof(PyObject *obj) {
  PyTypeObject *type = Py_TYPE(obj);
  size_t size = (size_t)type->tp_basicsize;
  /* ints keep their digit count elsewhere from 3.12; their own __sizeof__ does not fail */
  if (type->tp_itemsize > 0 && !PyLong_Check(obj)) size += (size_t)type->tp_itemsize * (size_t)Py_ABS(Py_SIZE(obj));
  return size;
}

/* The object's __sizeof__ when it can be had without running Python code; -1 for deferred ones. */
static Py_ssize_t sizeof_now(const walker *w, type_info *info, PyObject *obj) {
  switch (info->how) {
    case SIZING_LINEAR: {
      /* object.__sizeof__ itself trusts ob_size whenever tp_itemsize is set */
      Py_ssize_t items = info->type->tp_itemsize > 0 ? info->type->tp_itemsize * Py_SIZE(obj) : 0;
      if (LEAK_LIKELY(info->constant_known)) return info->constant + items;
      {
        Py_ssize_t first = -1;
        if (w->object_sizeof != NULL && Py_TYPE(w->object_sizeof) == &PyMethodDescr_Type)
          first = call_c_sizeof(w->object_sizeof, obj);
        if (first < 0) return (Py_ssize_t)estimated_sizeof(obj);
        info->constant = first - items;
        info->constant_known = 1;
        return first;
      }
    }
    case SIZING_C: {
      Py_ssize_t size = call_c_sizeof(info->sizeof_descr, obj);
      return size >= 0 ? size : (Py_ssize_t)estimated_sizeof(obj);
    }
    default:
      return -1;
  }
}

/* Remembers an object whose own __sizeof__ must run after the walk (a strong reference). */
static int defer(walker *w, PyObject *obj, size_t argument) {
  if (w->deferred_count == w->deferred_capacity) {
    size_t capacity = w->deferred_capacity ? w->deferred_capacity * 2 : 64;
    deferred_entry *grown = leak__realloc(w->deferred, capacity * sizeof(*grown));
    if (grown == NULL) return LEAK_ENOMEM;
    w->deferred = grown;
    w->deferred_capacity = capacity;
  }
  w->deferred[w->deferred_count].obj = Py_NewRef(obj);
  w->deferred[w->deferred_count].argument = argument;
  w->deferred_count++;
  return 0;
}

/* ---- The walk ----------------------------------------------------------------------------- */

/* A NumPy array's .base (a new reference), read through its C getter; NULL (no exception set)
 * when the attribute is not a C getter or fails. */
static PyObject *numpy_base(PyObject *obj) {
  static PyObject *name; /* interned "base", kept for the process */
  if (name == NULL && (name = PyUnicode_InternFromString("base")) == NULL) {
    PyErr_Clear();
    return NULL;
  }
  PyObject *descr = _PyType_Lookup(Py_TYPE(obj), name);
  if (descr == NULL || Py_TYPE(descr) != &PyGetSetDescr_Type) return NULL;
  PyGetSetDef *getset = ((PyGetSetDescrObject *)descr)->d_getset;
  if (getset->get == NULL) return NULL;
  PyObject *base = getset->get(obj, getset->closure);
  if (base == NULL) PyErr_Clear();
  return base;
}

/* Counts an object's own size, without its referents, unless it was seen; marks it seen.  For a
 * dict whose values the walk has already reported through their other holder. */
static int count_flat_once(walker *w, PyObject *obj, size_t *share) {
  int added = leak__addrset_add(&w->seen, (uintptr_t)obj);
  if (added <= 0) return added;
  type_info *info = type_info_of(w, Py_TYPE(obj));
  if (info == NULL) return LEAK_ENOMEM;
  Py_ssize_t size = sizeof_now(w, info, obj);
  if (size < 0) size = (Py_ssize_t)estimated_sizeof(obj); /* dicts never get here */
  *share += aligned((size_t)size + leak__object_header_size(obj), w->mask);
  w->result.objects++;
  return 0;
}

/* Counts one object (already marked seen) at `depth` and pushes the referents its kind follows.
 * Adds its size to *share, or defers it under `argument`. */
static int size_object(walker *w, PyObject *obj, size_t depth, size_t argument, size_t *share) {
  type_info *info = type_info_of(w, Py_TYPE(obj));
  if (info == NULL) return LEAK_ENOMEM;
  if (info->kind == KIND_SKIP) return 0;
  if (info->kind == KIND_CLASS && w->options->ignored && !PyType_HasFeature((PyTypeObject *)obj, Py_TPFLAGS_HEAPTYPE))
    return 0; /* builtin classes, like builtin functions, need ignored=False */
  w->result.objects++;
  if (depth > w->result.max_depth) w->result.max_depth = depth;
  Py_ssize_t size = sizeof_now(w, info, obj);
  if (size >= 0) {
    *share += aligned((size_t)size + leak__object_header_size(obj), w->mask);
  } else {
    int rc = defer(w, obj, argument);
    if (rc < 0) return rc;
  }
  int follow = w->options->limit < 0 || depth < (size_t)w->options->limit;
  if (!follow || info->kind == KIND_LEAF) return 0;
  w->push_depth = depth + 1;
  size_t start = w->stack_count;
  switch (info->kind) {
    case KIND_DICT: {
      Py_ssize_t pos = 0;
      PyObject *key, *value;
      while (PyDict_Next(obj, &pos, &key, &value)) {
        if (push(w, key) < 0 || push(w, value) < 0) return LEAK_ENOMEM;
      }
      break;
    }
    case KIND_MODULE: {
      if (depth != 0) return 0; /* modules met on the way are counted, not followed */
      PyObject *globals = PyModule_GetDict(obj); /* borrowed; cannot fail for a module */
      Py_ssize_t pos = 0;
      PyObject *key, *value;
      while (globals && PyDict_Next(globals, &pos, &key, &value)) {
        if (push(w, key) < 0 || push(w, value) < 0) return LEAK_ENOMEM;
      }
      break;
    }
    case KIND_NUMPY: {
      /* ndarray.base is a C getter returning the array a view looks into, or None; it is called
       * directly, and only when no subclass replaced it with Python code. */
      PyObject *base = numpy_base(obj);
      if (base == NULL) break;
      int rc = push(w, base);
      Py_DECREF(base); /* the view keeps its base alive */
      if (rc < 0) return rc;
      break;
    }
    case KIND_FUNCTION:
      w->skip_a = PyFunction_GET_GLOBALS(obj);
      w->skip_b = PyEval_GetBuiltins();
      /* fall through */
    case KIND_CLASS:
    case KIND_TRAVERSE:
    case KIND_INSTANCE: {
      /* PyObject_IS_GC, not the type's flag: static classes are type objects without gc. */
      traverseproc traverse = Py_TYPE(obj)->tp_traverse;
      if (traverse != NULL && PyObject_IS_GC(obj)) traverse(obj, visit_referent, w);
      w->skip_a = w->skip_b = NULL;
      if (w->error) return w->error;
      if (info->kind == KIND_INSTANCE) {
        PyObject *dict;
        size_t virtual_size;
        leak__instance_dict_kind where = leak__object_instance_dict(obj, &dict, &virtual_size);
        if (where == LEAK_INSTANCE_DICT_REAL && !pushed_since(w, start, dict)) {
          /* once only: a dict held once is not looked up in the seen set */
          if (push(w, dict) < 0) return LEAK_ENOMEM;
        } else if (where == LEAK_INSTANCE_DICT_SHARED) {
          int rc = count_flat_once(w, dict, share);
          if (rc < 0) return rc;
        } else if (where == LEAK_INSTANCE_DICT_VIRTUAL) {
          /* Counted as the dict that reading obj.__dict__ would create (pympler creates it). */
          *share += aligned(virtual_size + w->dict_header, w->mask);
          w->result.objects++;
        }
      }
      break;
    }
    default:
      break;
  }
  int rc = keep_new_from(w, start);
  if (rc < 0) return rc;
  reverse_from(w, start);
  return 0;
}

/* Walks everything reachable from one argument that is not seen yet; the argument itself is
 * already marked seen. */
static int walk_argument(walker *w, PyObject *root, size_t argument, size_t *share) {
  int rc = size_object(w, root, 0, argument, share);
  while (rc == 0 && w->stack_count > 0) {
    stack_entry top = w->stack[--w->stack_count]; /* marked seen when it was pushed */
    rc = size_object(w, top.obj, top.depth, argument, share);
  }
  w->stack_count = 0;
  return rc;
}

/* Calls the deferred Python-level __sizeof__s through sys.getsizeof (which adds the header), as
 * pympler does; a TypeError falls back to the estimate, as sys.getsizeof(obj, default) does. */
static int run_deferred(walker *w, size_t *shares) {
  PyObject *getsizeof = PySys_GetObject("getsizeof"); /* borrowed */
  for (size_t i = 0; i < w->deferred_count; i++) {
    PyObject *obj = w->deferred[i].obj;
    Py_ssize_t size = -1;
    if (getsizeof != NULL) {
      PyObject *answer = PyObject_CallFunctionObjArgs(getsizeof, obj, NULL);
      if (answer != NULL) {
        size = PyLong_AsSsize_t(answer);
        Py_DECREF(answer);
      }
      if (size < 0) {
        if (!PyErr_Occurred() || !PyErr_ExceptionMatches(PyExc_TypeError)) {
          if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "__sizeof__() should return >= 0");
          return LEAK_EPYTHON;
        }
        PyErr_Clear();
      }
    }
    if (size < 0) size = (Py_ssize_t)(estimated_sizeof(obj) + leak__object_header_size(obj));
    shares[w->deferred[i].argument] += aligned((size_t)size, w->mask);
    w->result.deferred++;
  }
  return 0;
}

static void walker_free(walker *w) {
  leak__addrset_free(&w->seen);
  leak__free(w->stack);
  leak__free(w->types);
  for (size_t i = 0; i < w->deferred_count; i++) Py_DECREF(w->deferred[i].obj);
  leak__free(w->deferred);
}

static int options_valid(const leak_deepsize_options *o) {
  return o->align == 0 || (o->align & (o->align - 1)) == 0;
}

int leak__deep_size(PyObject *const *objs, size_t count, PyObject *const *excluded, size_t excluded_count,
                    const leak_deepsize_options *options, size_t *sizes, leak__deepsize_result *result) {
  leak_deepsize_options defaults = LEAK_DEEPSIZE_OPTIONS_INIT;
  if (options == NULL) options = &defaults;
  if (!options_valid(options) || (count > 0 && objs == NULL)) return LEAK_EINVAL;
  for (size_t i = 0; i < count; i++)
    if (objs[i] == NULL) return LEAK_EINVAL;

  walker w;
  memset(&w, 0, sizeof(w));
  w.options = options;
  w.mask = options->align > 1 ? options->align - 1 : 0;
  size_t *shares = leak__calloc(count ? count : 1, sizeof(size_t));
  char *first = leak__calloc(count ? count : 1, 1); /* 1: first occurrence of that argument */
  int rc = shares && first ? leak__addrset_init(&w.seen, 1024) : LEAK_ENOMEM;
  PyObject *name = rc == 0 ? PyUnicode_InternFromString("__sizeof__") : NULL;
  if (rc == 0 && name == NULL) rc = LEAK_EPYTHON;
  if (rc == 0) {
    w.object_sizeof = _PyType_Lookup(&PyBaseObject_Type, name);
    PyObject *probe = PyDict_New();
    if (probe == NULL) rc = LEAK_EPYTHON;
    else {
      w.dict_header = leak__object_header_size(probe);
      Py_DECREF(probe);
    }
  }
  Py_XDECREF(name);
  /* Arguments and excluded objects are seen before the walk starts: what references them does
   * not count them; each argument is then counted as its own. */
  for (size_t i = 0; rc == 0 && i < excluded_count; i++) {
    int added = leak__addrset_add(&w.seen, (uintptr_t)excluded[i]);
    if (added < 0) rc = added;
  }
  for (size_t i = 0; rc == 0 && i < count; i++) {
    int added = leak__addrset_add(&w.seen, (uintptr_t)objs[i]);
    if (added < 0) rc = added;
    first[i] = added == 1;
  }
  for (size_t i = 0; rc == 0 && i < count; i++)
    if (first[i]) rc = walk_argument(&w, objs[i], i, &shares[i]);
  if (rc == 0) rc = run_deferred(&w, shares);
  if (rc == 0) {
    /* a repeated argument reports the share of its first occurrence */
    for (size_t i = 0; i < count; i++) {
      if (first[i]) {
        w.result.total += shares[i];
        continue;
      }
      for (size_t j = 0; j < i; j++)
        if (objs[j] == objs[i] && first[j]) shares[i] = shares[j];
    }
    w.result.seen += leak__addrset_count(&w.seen) - excluded_count;
    if (sizes) memcpy(sizes, shares, count * sizeof(size_t));
    if (result) *result = w.result;
  }
  walker_free(&w);
  leak__free(shares);
  leak__free(first);
  return rc;
}

int leak__flat_size(PyObject *obj, size_t align, size_t *size) {
  leak_deepsize_options options = LEAK_DEEPSIZE_OPTIONS_INIT;
  options.align = align;
  if (!options_valid(&options)) return LEAK_EINVAL;
  walker w;
  memset(&w, 0, sizeof(w));
  w.options = &options;
  w.mask = align > 1 ? align - 1 : 0;
  PyObject *name = PyUnicode_InternFromString("__sizeof__");
  if (name == NULL) return LEAK_EPYTHON;
  w.object_sizeof = _PyType_Lookup(&PyBaseObject_Type, name);
  Py_DECREF(name);
  type_info *info = type_info_of(&w, Py_TYPE(obj));
  if (info == NULL) return LEAK_ENOMEM;
  Py_ssize_t now = sizeof_now(&w, info, obj);
  size_t share = 0;
  int rc = 0;
  if (now >= 0) {
    share = aligned((size_t)now + leak__object_header_size(obj), w.mask);
  } else {
    rc = defer(&w, obj, 0);
    if (rc == 0) rc = run_deferred(&w, &share);
  }
  walker_free(&w);
  if (rc == 0) *size = share;
  return rc;
}

int leak_deep_sizes(PyObject *const *objs, size_t count, const leak_deepsize_options *options, size_t *sizes,
                    size_t *total) {
  leak__deepsize_result result;
  int rc = leak__deep_size(objs, count, NULL, 0, options, sizes, &result);
  if (rc == 0 && total) *total = result.total;
  return rc;
}

int leak_deep_size(PyObject *obj, const leak_deepsize_options *options, size_t *size) {
  return leak_deep_sizes(&obj, 1, options, size, NULL);
}
