/* The heap walker and its visited set: every object once, untracked objects found through what
 * reaches them (however deep), running frames' locals reached, exclusions honoured, and no
 * allocation by any Python allocator during a walk. */
#include "core/internal.h"
#include "heap/walk.h"
#include "runner.h"
#include "test-alloc-counter.h"

/* ---- The visited set ------------------------------------------------------------------------ */

TEST(objset_tells_neighbouring_objects_apart) {
  leak__objset set = {0};
  static char block[1 << 18] __attribute__((aligned(16)));
  for (size_t offset = 0; offset < sizeof(block); offset += 16) ASSERT_EQ(leak__objset_add(&set, block + offset), 1);
  ASSERT_EQ(set.members, sizeof(block) / 16);
  for (size_t offset = 0; offset < sizeof(block); offset += 16) {
    ASSERT_EQ(leak__objset_contains(&set, block + offset), 1);
    ASSERT_EQ(leak__objset_add(&set, block + offset), 0);
  }
  ASSERT_EQ(leak__objset_contains(&set, block + sizeof(block)), 0);
  ASSERT_EQ(leak__objset_contains(&set, (char *)0x10), 0);
  /* A bitmap for every 64 KiB touched: a quarter MiB of objects costs 4 chunks, not 16384 slots. */
  ASSERT_LE(set.chunks, 5);
  leak__objset_free(&set);
  ASSERT_EQ(set.members, 0);
  ASSERT_EQ(leak__objset_contains(&set, block), 0);
  return 0;
}

TEST(objset_spreads_over_far_apart_addresses) {
  leak__objset set = {0};
  for (uintptr_t i = 1; i <= 5000; i++) ASSERT_EQ(leak__objset_add(&set, (void *)(i * 0x1000000 + 48)), 1);
  for (uintptr_t i = 1; i <= 5000; i++) {
    ASSERT_EQ(leak__objset_contains(&set, (void *)(i * 0x1000000 + 48)), 1);
    ASSERT_EQ(leak__objset_contains(&set, (void *)(i * 0x1000000 + 64)), 0);
  }
  ASSERT_EQ(set.chunks, 5000);
  leak__objset_free(&set);
  return 0;
}

TEST(objset_survives_running_out_of_memory) {
  for (long fail = 0; fail < 40; fail++) {
    leak__objset set = {0};
    leak__alloc_fail_after(fail);
    int failed = 0;
    for (uintptr_t i = 1; i <= 200; i++) {
      int rc = leak__objset_add(&set, (void *)(i * 0x100000));
      if (rc < 0) {
        ASSERT_EQ(rc, LEAK_ENOMEM);
        failed = 1;
        ASSERT_EQ(leak__objset_contains(&set, (void *)(i * 0x100000)), 0);
      } else {
        ASSERT_EQ(leak__objset_contains(&set, (void *)(i * 0x100000)), 1);
      }
    }
    leak__alloc_fail_after(-1);
    ASSERT(failed || fail >= 20);
    leak__objset_free(&set);
  }
  return 0;
}

/* ---- The walk, seen from Python through a probe module ----------------------------------------- */


/* What a probe walk gathers: every visit (to find repeats), and whether `wanted` was seen. */
typedef struct probe_walk {
  uintptr_t *visits;
  size_t count, capacity;
  size_t tracked, edges, frame_refs;
  PyObject *wanted;
  int wanted_seen;
} probe_walk;

static int probe_object(void *arg, PyObject *obj, int tracked) {
  probe_walk *p = arg;
  if (p->count == p->capacity) {
    p->capacity = p->capacity ? 2 * p->capacity : 1 << 16;
    p->visits = leak__realloc(p->visits, p->capacity * sizeof(uintptr_t));
    if (p->visits == NULL) return LEAK_ENOMEM;
  }
  p->visits[p->count++] = (uintptr_t)obj;
  p->tracked += tracked != 0;
  if (obj == p->wanted) p->wanted_seen = 1;
  return 0;
}

static int probe_edge(void *arg, PyObject *referrer, PyObject *referent) {
  ((probe_walk *)arg)->edges++;
  return 0;
}

static int probe_frame_ref(void *arg, PyThreadState *tstate, const leak__frame_ref *ref, PyObject *referent) {
  ((probe_walk *)arg)->frame_refs++;
  return 0;
}

static int by_address(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* _probe.walk(untracked, edges, wanted=None, exclude=()) -> dict of figures: visits, distinct,
 * tracked, edges, frame_refs, allocations (by any Python allocator during the walk), wanted_seen. */
static PyObject *probe_walk_heap(PyObject *self, PyObject *args) {
  int untracked, edges;
  PyObject *wanted = NULL, *exclude = NULL;
  if (!PyArg_ParseTuple(args, "pp|OO!", &untracked, &edges, &wanted, &PyTuple_Type, &exclude)) return NULL;
  probe_walk p = {.wanted = wanted};
  leak__heap_visitor visitor = {probe_object, edges ? probe_edge : NULL, probe_frame_ref, &p};
  /* What the walker learns once per process (core/frames.h) may allocate; the walks do not. */
  if (leak__frames_prepare_heap_walk() < 0) return PyErr_Format(PyExc_RuntimeError, "prepare failed");
  leak__heap_walk walk = {0};
  int rc = 0;
  if (exclude != NULL) rc = leak__heap_walk_exclude(&walk, &PyTuple_GET_ITEM(exclude, 0), (size_t)PyTuple_GET_SIZE(exclude));
  allocations_seen = 0;
  counting = 1;
  if (rc == 0) rc = leak__heap_walk_all(&walk, &visitor, untracked ? LEAK__WALK_UNTRACKED : 0);
  counting = 0;
  leak__heap_walk_free(&walk);
  if (rc != 0) {
    leak__free(p.visits);
    return PyErr_Format(PyExc_RuntimeError, "walk failed: %d", rc);
  }
  qsort(p.visits, p.count, sizeof(uintptr_t), by_address);
  size_t distinct = 0;
  for (size_t i = 0; i < p.count; i++) distinct += i == 0 || p.visits[i] != p.visits[i - 1];
  leak__free(p.visits);
  return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:l,s:i}", "visits", (Py_ssize_t)p.count, "distinct",
                       (Py_ssize_t)distinct, "tracked", (Py_ssize_t)p.tracked, "edges", (Py_ssize_t)p.edges,
                       "frame_refs", (Py_ssize_t)p.frame_refs, "allocations", allocations_seen, "wanted_seen",
                       p.wanted_seen);
}

/* _probe.walk_from(root, wanted) -> (visits, distinct, wanted_seen): a walk from one root. */
static PyObject *probe_walk_from(PyObject *self, PyObject *args) {
  PyObject *root, *wanted;
  if (!PyArg_ParseTuple(args, "OO", &root, &wanted)) return NULL;
  probe_walk p = {.wanted = wanted};
  leak__heap_visitor visitor = {probe_object, NULL, NULL, &p};
  leak__heap_walk walk = {0};
  int rc = leak__heap_walk_from(&walk, &visitor, &root, 1, 0);
  leak__heap_walk_free(&walk);
  if (rc != 0) {
    leak__free(p.visits);
    return PyErr_Format(PyExc_RuntimeError, "walk failed: %d", rc);
  }
  qsort(p.visits, p.count, sizeof(uintptr_t), by_address);
  size_t distinct = 0;
  for (size_t i = 0; i < p.count; i++) distinct += i == 0 || p.visits[i] != p.visits[i - 1];
  leak__free(p.visits);
  return Py_BuildValue("(nni)", (Py_ssize_t)p.count, (Py_ssize_t)distinct, p.wanted_seen);
}

static PyMethodDef probe_methods[] = {{"walk", probe_walk_heap, METH_VARARGS, NULL},
                                      {"walk_from", probe_walk_from, METH_VARARGS, NULL},
                                      {NULL, NULL, 0, NULL}};
static struct PyModuleDef probe_module = {PyModuleDef_HEAD_INIT, "_probe", NULL, -1, probe_methods};
static PyObject *probe_init(void) { return PyModule_Create(&probe_module); }

static void start_python_with_probe(void) {
  PyImport_AppendInittab("_probe", probe_init);
  test_python_start();
  install_counting_allocators();
}

TEST(heap_walk_visits_every_object_once_and_allocates_nothing) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run("import gc, _probe\n"
                            "data = [(i, str(i) * 3, float(i)) for i in range(20000)]\n"
                            "gc.collect()\n"
                            "figures = _probe.walk(True, True)\n"
                            "assert figures['allocations'] == 0, figures\n"
                            "assert figures['visits'] == figures['distinct'], figures\n"
                            "tracked = len(gc.get_objects()) + gc.get_freeze_count()\n"
                            "assert abs(figures['tracked'] - tracked) < 50, (figures, tracked)\n"
                            "assert figures['visits'] >= figures['tracked'] + 3 * 20000, figures\n"
                            "assert figures['edges'] > figures['visits'], figures\n"
                            "only_tracked = _probe.walk(False, False)\n"
                            "assert only_tracked['visits'] == only_tracked['tracked'], only_tracked\n"
                            "assert only_tracked['allocations'] == 0 and only_tracked['edges'] == 0\n"),
            0);
  return 0;
}

TEST(heap_walk_reaches_untracked_objects_however_deep) {
  start_python_with_probe();
  /* A chain of 300,000 tuples holding a str at its far end (recursing through it would take
   * far more than the 8 MiB C stack): a walk from the chain's head gets there with its own stack,
   * and the whole-heap walk finds the str, which no tracked object holds but the innermost tuple,
   * and untracked tuples the gc made. */
  ASSERT_EQ(test_python_run("import gc, _probe\n"
                            "far = ''.join(['only', ' reachable', ' at the end'])\n"
                            "chain = far\n"
                            "for i in range(300000):\n"
                            "    chain = (chain,)\n"
                            "visits, distinct, seen = _probe.walk_from(chain, far)\n"
                            "assert seen and visits == distinct == 300001, (visits, distinct)\n"
                            "gc.collect(); gc.collect(); gc.collect()\n"
                            "inner = chain[0][0][0][0][0][0][0][0][0][0]\n"
                            "del far\n"
                            "end = inner\n"
                            "while isinstance(end, tuple):\n"
                            "    end = end[0]\n"
                            "assert not gc.is_tracked(chain[0] if False else end)\n"
                            "figures = _probe.walk(True, False, end)\n"
                            "assert figures['wanted_seen'], figures\n"
                            "assert figures['visits'] == figures['distinct']\n"
                            "assert not _probe.walk(False, False, end)['wanted_seen']\n"),
            0);
  return 0;
}

TEST(heap_walk_reaches_what_only_running_frames_hold) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run("import _probe, sys\n"
                            "def running():\n"
                            "    local = ''.join(['held', ' by a frame', ' only'])\n"
                            "    return _probe.walk(True, False, local)\n"
                            "figures = running()\n"
                            "assert figures['wanted_seen'], figures\n"
                            "assert figures['frame_refs'] > 0, figures\n"),
            0);
  return 0;
}

TEST(heap_walk_leaves_out_what_is_excluded) {
  start_python_with_probe();
  /* The dict's str keys too, though dict_traverse does not report them. */
  ASSERT_EQ(test_python_run("import gc, _probe\n"
                            "private = {'k%d' % i: ('v%d' % i,) for i in range(1000)}\n"
                            "inside = next(iter(private.values()))\n"
                            "everything = _probe.walk(True, False)\n"
                            "excluded = _probe.walk(True, False, private, (private,))\n"
                            "assert not excluded['wanted_seen'], excluded\n"
                            "assert everything['visits'] - excluded['visits'] >= 2950, (everything, excluded)\n"
                            "assert _probe.walk(True, False, inside)['wanted_seen']\n"),
            0);
  return 0;
}
