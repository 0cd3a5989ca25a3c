/* Class tracking: every instance of a tracked class seen from its allocation to its release.
 *
 * Why tp_alloc and tp_free.  Every way of making an instance of a heap type ends in the type's
 * tp_alloc: object_new and PyType_GenericNew call it, and so do the tp_new of the built-in bases
 * (list, dict, int, tuple, ...).  So calling the class, copy.copy, pickle and cls.__new__ without
 * __init__ are all seen, and nothing needs a weak reference (__slots__ classes without __weakref__
 * work).  At the other end subtype_dealloc hands the memory back through Py_TYPE(self)->tp_free, with
 * the exact type, as its last step.  Wrapping tp_dealloc instead would be fragile: subtype_dealloc
 * finds the base deallocator by walking tp_base comparing tp_dealloc pointers.
 *
 * Slots and subclasses.  type_new gives every class made by a class statement PyType_GenericAlloc and
 * PyObject_GC_Del (or PyObject_Del) of its own, but PyType_Ready copies slots a type leaves empty from
 * its base, so a type made while its base is tracked (PyType_FromSpec) may carry our wrappers without
 * being in the table.  The wrappers therefore look a type up along tp_base, and detaching walks the
 * subclasses and gives such inherited copies what their base has again.  After changing slots,
 * PyType_Modified drops what the interpreter cached about the type (3.13 specialises class calls on
 * the type's version tag).
 *
 * Locking: every table here is guarded by the GIL.  The wrappers run under it (tp_alloc and tp_free
 * are called by code that holds it) and so does every entry point.  Tables allocate with the raw
 * allocator (the instance table directly, the class and type tables through uthash as core/alloc.h
 * sets it up), so they never appear in the Python heap. */
#include "core/internal.h"
#include "libleak/deepsize.h"
#include "heap/classtrack.h"
#include "tracer/tracer.h"

#include <string.h>
#include <time.h>

/* Set by uthash when it could not allocate (HASH_NONFATAL_OOM); checked after each add. */
static int table_out_of_memory;
#define uthash_nonfatal_oom(element) (table_out_of_memory = 1)
#include <uthash.h>

/* A tracked class: its options and counters.  Holds a strong reference to the type. */
typedef struct tracked_class {
  PyTypeObject *type; /* key */
  leak_classtrack_options options;
  uint64_t created, destroyed, alive, peak_alive;
  uint64_t total_size;
  double lifetime_sum, lifetime_max; /* seconds, over destroyed instances */
  UT_hash_handle hh;
} tracked_class;

/* A type whose slots carry our wrappers: the tracked class itself, or one of its subclasses.  Holds a
 * strong reference to the type, so its address cannot be reused while the slots are ours. */
typedef struct hooked_type {
  PyTypeObject *type; /* key */
  allocfunc saved_alloc;
  freefunc saved_free;
  tracked_class *owner;
  UT_hash_handle hh;
} hooked_type;

/* A live instance, stored inline in the instance table (address 0: an empty slot). */
typedef struct instance {
  uintptr_t address;
  tracked_class *owner;
  uint64_t birth_ns;
  uint64_t size;
  leak__stack_id stack;
  uint32_t kept; /* we hold a reference for options.keep */
} instance;

/* The instance table: open addressing with linear probing on the address, records inline (one
 * allocation for the whole table, none per instance: a tracked instance costs one probe), load kept
 * at or under 1/2, removal by backward shift so no tombstones build up.  Guarded by the GIL. */
typedef struct instance_table {
  instance *slots;
  size_t mask; /* capacity - 1; capacity is a power of two, 0 slots when never used */
  size_t count;
} instance_table;

/* The tables (GIL).  stacks_pinned: whether this module holds a pin on the stack table, which it
 * does while any class is tracked with trace. */
static tracked_class *classes;
static hooked_type *hooked;
static instance_table instances;
static int stacks_pinned;

/* Addresses are 16-byte aligned and clustered: Fibonacci hashing of address/16 spreads them. */
static size_t home_slot(uintptr_t address, size_t mask) {
  return (size_t)(((uint64_t)(address >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & mask;
}

/* The record of `address`, or NULL. */
static instance *instances_find(uintptr_t address) {
  if (instances.count == 0) return NULL;
  for (size_t i = home_slot(address, instances.mask);; i = (i + 1) & instances.mask) {
    if (instances.slots[i].address == address) return &instances.slots[i];
    if (instances.slots[i].address == 0) return NULL;
  }
}

/* Doubles the table (or makes its first 1024 slots).  0, or LEAK_ENOMEM with the table unchanged. */
static int instances_grow(void) {
  size_t capacity = instances.slots ? (instances.mask + 1) * 2 : 1024;
  instance *slots = leak__calloc(capacity, sizeof(*slots));
  if (slots == NULL) return LEAK_ENOMEM;
  size_t mask = capacity - 1;
  if (instances.slots != NULL) {
    for (size_t i = 0; i <= instances.mask; i++) {
      if (instances.slots[i].address == 0) continue;
      size_t j = home_slot(instances.slots[i].address, mask);
      while (slots[j].address != 0) j = (j + 1) & mask;
      slots[j] = instances.slots[i];
    }
  }
  leak__free(instances.slots);
  instances.slots = slots;
  instances.mask = mask;
  return 0;
}

/* A free slot for a new record of an address not in the table, or NULL when the table is full and
 * cannot grow (the instance then goes untracked). */
static instance *instances_insert(uintptr_t address) {
  if (instances.slots == NULL || (instances.count + 1) * 2 > instances.mask + 1) {
    if (instances_grow() < 0 && (instances.slots == NULL || (instances.count + 1) * 8 > (instances.mask + 1) * 7))
      return NULL; /* out of memory: keep probing short rather than fill the table */
  }
  size_t i = home_slot(address, instances.mask);
  while (instances.slots[i].address != 0) i = (i + 1) & instances.mask;
  instances.count++;
  instances.slots[i].address = address;
  return &instances.slots[i];
}

/* Removes the record `inst` points at, shifting later members of its cluster back so that every
 * lookup still finds them without tombstones. */
static void instances_remove(instance *inst) {
  size_t mask = instances.mask;
  size_t hole = (size_t)(inst - instances.slots);
  for (size_t i = (hole + 1) & mask; instances.slots[i].address != 0; i = (i + 1) & mask) {
    size_t home = home_slot(instances.slots[i].address, mask);
    /* The entry at i may move into the hole when its home is not cyclically in (hole, i]. */
    if (((i - home) & mask) >= ((i - hole) & mask)) {
      instances.slots[hole] = instances.slots[i];
      hole = i;
    }
  }
  memset(&instances.slots[hole], 0, sizeof(instances.slots[hole]));
  instances.count--;
}

/* Frees the table's memory once it is empty (detach_all leaves no footprint). */
static void instances_release_if_empty(void) {
  if (instances.count != 0) return;
  leak__free(instances.slots);
  memset(&instances, 0, sizeof(instances));
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The hooked entry for `type`, or for the nearest base that is hooked when `type` only inherited our
 * slots; NULL when neither. */
static hooked_type *find_hook(PyTypeObject *type) {
  for (PyTypeObject *t = type; t != NULL; t = t->tp_base) {
    hooked_type *hook;
    HASH_FIND_PTR(hooked, &t, hook);
    if (hook != NULL) return hook;
  }
  return NULL;
}

/* What tp_alloc/tp_free a type should have if we were not there: the hooked entry's saved slot, or
 * CPython's generic ones (the type_new defaults) when no hooked base is left. */
static allocfunc original_alloc(hooked_type *hook) { return hook ? hook->saved_alloc : PyType_GenericAlloc; }

static freefunc original_free(hooked_type *hook, PyTypeObject *type) {
  if (hook) return hook->saved_free;
  return PyType_IS_GC(type) ? PyObject_GC_Del : PyObject_Free;
}

/* The bytes allocated for an instance of `type` with `nitems` items, as sys.getsizeof would count a
 * fresh one: the object, its items and the gc header.  PyGC_Head is internal from 3.9 on; it is two
 * words on every supported version (3.8 - 3.13). */
static uint64_t allocated_size(PyTypeObject *type, Py_ssize_t nitems) {
  uint64_t size = (uint64_t)type->tp_basicsize;
  if (type->tp_itemsize > 0 && nitems > 0) size += (uint64_t)type->tp_itemsize * (uint64_t)nitems;
  if (PyType_IS_GC(type)) size += 2 * sizeof(void *);
  return size;
}

/* The stack that is creating `obj`: the tracer's, when it traced the block, else read here and
 * interned (the GIL is held, so the stack table may take references to the code objects). */
static leak__stack_id creation_stack(PyObject *obj) {
  leak__stack_id id;
  if (leak__tracer_object_stack(obj, &id) == 0) return id;
  leak__frame frames[LEAK_CLASSTRACK_NFRAME];
  int depth = 0;
  int nframe = leak__frames_read_depth(leak__frames_this_thread(), frames, LEAK_CLASSTRACK_NFRAME,
                                       LEAK_STACK_MAX_DEPTH, &depth);
  uint32_t hash = leak__stacks_hash(frames, nframe, depth);
  leak__stacks_lock();
  id = leak__stacks_intern_unlocked(frames, nframe, depth, hash, 1);
  leak__stacks_unlock();
  return id == LEAK_STACK_NONE ? LEAK_STACK_EMPTY : id;
}

/* Forgets the record `inst`, counting the instance as destroyed now. */
static void retire_instance(instance *inst, uint64_t now) {
  tracked_class *owner = inst->owner;
  double lifetime = (double)(now - inst->birth_ns) / 1e9;
  owner->destroyed++;
  owner->alive--;
  owner->total_size -= inst->size;
  owner->lifetime_sum += lifetime;
  if (lifetime > owner->lifetime_max) owner->lifetime_max = lifetime;
  instances_remove(inst);
}

/* Records a new instance of `owner`.  Runs inside tp_alloc: no Python code, raw allocations only.
 * When memory for the record runs out the instance is simply not tracked (the program goes on). */
static void record_instance(tracked_class *owner, PyObject *obj, Py_ssize_t nitems) {
  uint64_t now = now_ns();
  uintptr_t address = (uintptr_t)obj;
  instance *inst = instances_find(address);
  if (inst != NULL) retire_instance(inst, now); /* its free was not seen (__class__ was reassigned) */
  inst = instances_insert(address);
  if (inst == NULL) return;
  inst->owner = owner;
  inst->birth_ns = now;
  inst->size = allocated_size(Py_TYPE(obj), nitems);
  inst->stack = owner->options.trace ? creation_stack(obj) : LEAK_STACK_EMPTY;
  inst->kept = 0;
  if (owner->options.keep) {
    Py_INCREF(obj);
    inst->kept = 1;
  }
  owner->created++;
  owner->alive++;
  owner->total_size += inst->size;
  if (owner->alive > owner->peak_alive) owner->peak_alive = owner->alive;
}

/* The tp_alloc of tracked types.  Hot path: one lookup of the type, the original allocation, one
 * record.  No Python code runs here (Py_INCREF for keep aside). */
PyObject *leak__classtrack_alloc(PyTypeObject *type, Py_ssize_t nitems) {
  hooked_type *hook = find_hook(type);
  PyObject *obj = original_alloc(hook)(type, nitems);
  if (obj == NULL || hook == NULL) return obj;
  if (hook->type == type || hook->owner->options.subclasses) record_instance(hook->owner, obj, nitems);
  return obj;
}

/* The tp_free of tracked types: forgets the instance, then frees it the way the type did before. */
void leak__classtrack_free(void *ptr) {
  PyTypeObject *type = Py_TYPE((PyObject *)ptr);
  instance *inst = instances_find((uintptr_t)ptr);
  if (inst != NULL) retire_instance(inst, now_ns());
  original_free(find_hook(type), type)(ptr);
}

static tracked_class *find_class(PyTypeObject *type) {
  tracked_class *cls;
  HASH_FIND_PTR(classes, &type, cls);
  return cls;
}

/* Every subclass of `type`, transitively, appended to `list` (a Python list; duplicates are possible
 * with multiple inheritance and are harmless).  -1 with an exception set on failure. */
static int collect_subclasses(PyTypeObject *type, PyObject *list) {
  PyObject *direct = PyObject_CallMethod((PyObject *)type, "__subclasses__", NULL);
  if (direct == NULL) return -1;
  int rc = 0;
  for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(direct); i++) {
    PyObject *sub = PyList_GET_ITEM(direct, i);
    if (!PyType_Check(sub)) continue;
    rc = PyList_Append(list, sub);
    if (rc == 0) rc = collect_subclasses((PyTypeObject *)sub, list);
  }
  Py_DECREF(direct);
  return rc;
}

/* Puts our wrappers into `type`'s slots, for `owner`.  A type hooked already (for another class, or
 * as a subclass) is given to `owner` when it IS owner's class: the most specific class wins, as in
 * pympler.  Returns 0 or LEAK_ENOMEM (nothing changed). */
static int hook_type(PyTypeObject *type, tracked_class *owner) {
  hooked_type *hook;
  HASH_FIND_PTR(hooked, &type, hook);
  if (hook != NULL) {
    if (type == owner->type) hook->owner = owner;
    return 0;
  }
  hook = leak__calloc(1, sizeof(*hook));
  if (hook == NULL) return LEAK_ENOMEM;
  hook->type = type;
  hook->owner = owner;
  /* A type that only inherited our wrappers from a hooked base gets that base's originals saved. */
  hooked_type *base_hook = type->tp_alloc == leak__classtrack_alloc ? find_hook(type->tp_base) : NULL;
  hook->saved_alloc = type->tp_alloc == leak__classtrack_alloc ? original_alloc(base_hook) : type->tp_alloc;
  base_hook = type->tp_free == leak__classtrack_free ? find_hook(type->tp_base) : NULL;
  hook->saved_free = type->tp_free == leak__classtrack_free ? original_free(base_hook, type) : type->tp_free;
  table_out_of_memory = 0;
  HASH_ADD_PTR(hooked, type, hook);
  if (table_out_of_memory) {
    leak__free(hook);
    return LEAK_ENOMEM;
  }
  Py_INCREF(type);
  type->tp_alloc = leak__classtrack_alloc;
  type->tp_free = leak__classtrack_free;
  PyType_Modified(type);
  return 0;
}

/* Gives `type` back the slots it had, and fixes the subclasses that inherited our wrappers from it.
 * Drops the entry and returns the type reference the entry held, for the caller to release once the
 * tables are consistent. */
static PyTypeObject *unhook_type(hooked_type *hook) {
  PyTypeObject *type = hook->type;
  if (type->tp_alloc == leak__classtrack_alloc) type->tp_alloc = hook->saved_alloc;
  if (type->tp_free == leak__classtrack_free) type->tp_free = hook->saved_free;
  HASH_DEL(hooked, hook);
  leak__free(hook);
  PyType_Modified(type);
  return type;
}

/* Subclasses that carry our wrappers without being hooked get what their nearest base has now.
 * Needs the subclass list, so it calls Python; errors are cleared (best effort: the wrappers stay
 * safe for such a type, they find no hook and call the generic slots). */
static void fix_inherited_slots(PyTypeObject *type) {
  PyObject *subs = PyList_New(0);
  if (subs == NULL || collect_subclasses(type, subs) < 0) {
    PyErr_Clear();
    Py_XDECREF(subs);
    return;
  }
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(subs); i++) {
    PyTypeObject *sub = (PyTypeObject *)PyList_GET_ITEM(subs, i);
    hooked_type *own;
    HASH_FIND_PTR(hooked, &sub, own);
    if (own != NULL || sub->tp_base == NULL) continue;
    int changed = 0;
    if (sub->tp_alloc == leak__classtrack_alloc && sub->tp_base->tp_alloc != leak__classtrack_alloc)
      sub->tp_alloc = sub->tp_base->tp_alloc, changed = 1;
    if (sub->tp_free == leak__classtrack_free && sub->tp_base->tp_free != leak__classtrack_free)
      sub->tp_free = sub->tp_base->tp_free, changed = 1;
    if (changed) PyType_Modified(sub);
  }
  Py_DECREF(subs);
}

/* Keeps the stack table pinned exactly while some tracked class has trace (its records hold ids). */
static void update_stack_pin(void) {
  int want = 0;
  for (tracked_class *cls = classes; cls != NULL; cls = cls->hh.next)
    if (cls->options.trace) want = 1;
  if (want && !stacks_pinned) leak__stacks_pin();
  if (!want && stacks_pinned) leak__stacks_unpin();
  stacks_pinned = want;
}

/* Validates the argument of attach: a heap type with the slots we wrap. */
static int check_class(void *type) {
  if (type == NULL || !PyType_Check((PyObject *)type)) return LEAK_EINVAL;
  PyTypeObject *t = type;
  if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE) || t->tp_alloc == NULL || t->tp_free == NULL) return LEAK_EINVAL;
  return 0;
}

int leak_classtrack_attach(void *type_arg, const leak_classtrack_options *options) {
  int rc = check_class(type_arg);
  if (rc < 0) return rc;
  PyTypeObject *type = type_arg;
  leak_classtrack_options opts = LEAK_CLASSTRACK_OPTIONS_INIT;
  if (options != NULL) opts = *options;

  /* The subclasses are listed before anything changes, so a Python failure leaves nothing half done. */
  PyObject *subs = PyList_New(0);
  if (subs == NULL) return LEAK_ENOMEM;
  if (opts.subclasses && collect_subclasses(type, subs) < 0) {
    Py_DECREF(subs);
    return LEAK_EPYTHON;
  }

  tracked_class *cls = find_class(type);
  int is_new = cls == NULL;
  if (is_new) {
    cls = leak__calloc(1, sizeof(*cls));
    if (cls == NULL) {
      Py_DECREF(subs);
      return LEAK_ENOMEM;
    }
    cls->type = type;
    table_out_of_memory = 0;
    HASH_ADD_PTR(classes, type, cls);
    if (table_out_of_memory) {
      leak__free(cls);
      Py_DECREF(subs);
      return LEAK_ENOMEM;
    }
    Py_INCREF(type);
  }
  cls->options = opts;
  rc = hook_type(type, cls);
  for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(subs); i++)
    rc = hook_type((PyTypeObject *)PyList_GET_ITEM(subs, i), cls);
  Py_DECREF(subs);
  if (rc < 0 && is_new) {
    leak_classtrack_detach(type); /* undoes the hooks made for it; the class was new, nothing else lost */
    return rc;
  }
  update_stack_pin();
  return rc;
}

/* Removes `cls` (or every class when NULL): slots, records, the class entries.  Kept instances and
 * type references are released at the very end, when the tables are consistent again, because
 * releasing them may run Python code that creates or frees tracked instances. */
static void detach_classes(tracked_class *only) {
  PyObject *release = PyList_New(0); /* objects to release; NULL if Python is out of memory */
  size_t pending = 0;
  PyObject **fallback = NULL;

  /* Records of the detached classes.  Removal shifts later entries back into slot i, so i advances
   * only past a slot it keeps; entries that wrapped around to the front were already visited or
   * are visited again harmlessly (a kept record is checked, a removed one is gone). */
  for (size_t i = 0; instances.count != 0 && i <= instances.mask;) {
    instance *inst = &instances.slots[i];
    if (inst->address == 0 || (only != NULL && inst->owner != only)) {
      i++;
      continue;
    }
    if (inst->kept) {
      PyObject *obj = (PyObject *)inst->address;
      if (release == NULL || PyList_Append(release, obj) < 0) {
        /* No Python memory: remember in raw memory (or, failing that, leave the reference held). */
        PyErr_Clear();
        PyObject **grown = leak__realloc(fallback, (pending + 1) * sizeof(*grown));
        if (grown != NULL) fallback = grown, fallback[pending++] = obj;
      } else {
        Py_DECREF(obj); /* the list holds it now */
      }
    }
    instances_remove(inst);
  }
  instances_release_if_empty();

  /* Slots, then inherited copies in subclasses, then the class entries. */
  PyTypeObject *restored_head[64];
  size_t restored = 0;
  hooked_type *hook, *next_hook;
  HASH_ITER(hh, hooked, hook, next_hook) {
    if (only != NULL && hook->owner != only) continue;
    PyTypeObject *type = unhook_type(hook);
    if (release == NULL || PyList_Append(release, (PyObject *)type) < 0) PyErr_Clear();
    else Py_DECREF(type); /* the list holds it */
    if (restored < LEAK_ARRAY_SIZE(restored_head)) restored_head[restored++] = type;
  }
  for (size_t i = 0; i < restored; i++) fix_inherited_slots(restored_head[i]);
  tracked_class *cls, *next_cls;
  HASH_ITER(hh, classes, cls, next_cls) {
    if (only != NULL && cls != only) continue;
    HASH_DEL(classes, cls);
    if (release == NULL || PyList_Append(release, (PyObject *)cls->type) < 0) PyErr_Clear();
    else Py_DECREF(cls->type);
    leak__free(cls);
  }
  update_stack_pin();

  for (size_t i = 0; i < pending; i++) Py_DECREF(fallback[i]);
  leak__free(fallback);
  Py_XDECREF(release);
}

int leak_classtrack_detach(void *type) {
  if (type == NULL) return LEAK_EINVAL;
  tracked_class *cls = find_class(type);
  if (cls == NULL) return LEAK_ENOENT;
  detach_classes(cls);
  return 0;
}

int leak_classtrack_detach_all(void) {
  detach_classes(NULL);
  return 0;
}

int leak_classtrack_is_tracked(void *type) { return type != NULL && find_class(type) != NULL; }

int leak_classtrack_get_counters(void *type, leak_classtrack_counters *out) {
  tracked_class *cls = type ? find_class(type) : NULL;
  if (cls == NULL) return LEAK_ENOENT;
  if (out == NULL) return LEAK_EINVAL;
  out->created = cls->created;
  out->alive = cls->alive;
  out->destroyed = cls->destroyed;
  out->peak_alive = cls->peak_alive;
  out->avg_lifetime = cls->destroyed ? cls->lifetime_sum / (double)cls->destroyed : 0.0;
  out->max_lifetime = cls->lifetime_max;
  out->total_size = cls->total_size;
  out->avg_size = cls->alive ? (double)cls->total_size / (double)cls->alive : 0.0;
  return 0;
}

int leak_classtrack_foreach(void *type, int (*visit)(const leak_classtrack_instance *instance, void *data),
                            void *data) {
  tracked_class *cls = type ? find_class(type) : NULL;
  if (cls == NULL) return LEAK_ENOENT;
  if (visit == NULL) return LEAK_EINVAL;
  for (size_t i = 0; instances.count != 0 && i <= instances.mask; i++) {
    instance *inst = &instances.slots[i];
    if (inst->address == 0 || inst->owner != cls) continue;
    leak_classtrack_instance view = {(void *)inst->address, inst->birth_ns, inst->size};
    int rc = visit(&view, data);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Whether a record is stale: its address holds an object whose type does not carry our tp_free, so
 * the instance recorded there was freed unseen.  CPython refuses __class__ assignment between types
 * whose tp_free differ, so this should not happen; it is checked because reading a stale record would
 * touch whatever lives there now.  (Assignment between two tracked classes keeps our tp_free: the
 * record stays with the class that made the instance.) */
static int record_is_stale(const instance *inst) {
  return find_hook(Py_TYPE((PyObject *)inst->address)) == NULL;
}

int leak__classtrack_records(PyTypeObject *type, leak__classtrack_record **out, size_t *count) {
  *out = NULL;
  *count = 0;
  tracked_class *cls = type ? find_class(type) : NULL;
  if (cls == NULL) return LEAK_ENOENT;
  /* First drop stale records (retiring shifts the next entry into slot i, which is checked again),
   * then copy: a second pass, because a shift may bring back an entry from the front of the table. */
  for (size_t i = 0; cls->alive != 0 && i <= instances.mask;) {
    instance *inst = &instances.slots[i];
    if (inst->address != 0 && inst->owner == cls && record_is_stale(inst))
      retire_instance(inst, now_ns());
    else
      i++;
  }
  if (cls->alive == 0) return 0;
  leak__classtrack_record *records = leak__malloc(cls->alive * sizeof(*records));
  if (records == NULL) return LEAK_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; n < cls->alive && i <= instances.mask; i++) {
    instance *inst = &instances.slots[i];
    PyObject *obj = (PyObject *)inst->address;
    if (inst->address == 0 || inst->owner != cls || Py_REFCNT(obj) <= 0) continue;
    Py_INCREF(obj);
    records[n].object = obj;
    records[n].birth_ns = inst->birth_ns;
    records[n].size = inst->size;
    records[n].stack = cls->options.trace ? inst->stack : LEAK_STACK_EMPTY;
    n++;
  }
  *out = records;
  *count = n;
  return 0;
}

int leak__classtrack_instance_size(PyObject *obj, uint64_t *size) {
  /* pympler's snapshots size each instance with asizeof and its defaults: the deep size */
  size_t deep = 0;
  int rc = leak_deep_size((struct _object *)obj, NULL, &deep);
  if (rc < 0) return rc;
  *size = deep;
  return 0;
}

void leak__classtrack_set_size(PyTypeObject *type, PyObject *object, uint64_t size) {
  instance *inst = instances_find((uintptr_t)object);
  if (inst == NULL || inst->owner->type != type) return;
  inst->owner->total_size += size - inst->size; /* wraps correctly in unsigned arithmetic */
  inst->size = size;
}

int leak_classtrack_measure(void *type, uint64_t *total) {
  leak__classtrack_record *records;
  size_t count;
  int rc = leak__classtrack_records(type, &records, &count);
  if (rc < 0) return rc;
  uint64_t sum = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t size = 0;
    if (rc == 0) rc = leak__classtrack_instance_size(records[i].object, &size);
    if (rc == 0) {
      leak__classtrack_set_size(type, records[i].object, size);
      sum += size;
    }
  }
  for (size_t i = 0; i < count; i++) Py_DECREF(records[i].object);
  leak__free(records);
  if (rc == 0 && total != NULL) *total = sum;
  return rc;
}

size_t leak__classtrack_record_count(void) { return instances.count; }
