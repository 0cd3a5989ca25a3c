/* Class tracking through the C API: bad arguments refused, every creation path counted, slots
 * restored exactly on detach (also after memory ran out half way), instances freed after detach,
 * and live instances visited. */
#include "core/internal.h"
#include "heap/classtrack.h"
#include "runner.h"

/* A class from __main__ (a new reference). */
static PyTypeObject *main_class(const char *name) {
  PyObject *obj = PyObject_GetAttrString(PyImport_AddModule("__main__"), name);
  ASSERT(obj != NULL && PyType_Check(obj));
  return (PyTypeObject *)obj;
}

static const char *classes_source =
    "import copy, pickle\n"
    "class Doc:\n"
    "    def __init__(self): self.x = [1, 2]\n"
    "class Slots:\n"
    "    __slots__ = ('a',)\n"
    "class Sub(Doc):\n"
    "    pass\n"
    "kept = []\n";

TEST(classtrack_refuses_what_is_not_a_class) {
  test_python_start();
  leak_classtrack_options options = LEAK_CLASSTRACK_OPTIONS_INIT;
  ASSERT_EQ(leak_classtrack_attach(NULL, &options), LEAK_EINVAL);
  PyObject *number = PyLong_FromLong(12345);
  ASSERT_EQ(leak_classtrack_attach(number, &options), LEAK_EINVAL);
  Py_DECREF(number);
  ASSERT_EQ(leak_classtrack_attach(&PyDict_Type, &options), LEAK_EINVAL); /* a static type */
  ASSERT(PyDict_Type.tp_alloc != leak__classtrack_alloc);
  ASSERT_EQ(leak_classtrack_detach(&PyDict_Type), LEAK_ENOENT);
  ASSERT_EQ(leak_classtrack_detach(NULL), LEAK_EINVAL);
  leak_classtrack_counters counters;
  ASSERT_EQ(leak_classtrack_get_counters(&PyDict_Type, &counters), LEAK_ENOENT);
  ASSERT_EQ(leak__classtrack_record_count(), 0);
  return 0;
}

TEST(classtrack_counts_every_creation_path) {
  test_python_start();
  ASSERT_EQ(test_python_run(classes_source), 0);
  PyTypeObject *doc = main_class("Doc");
  PyTypeObject *slots = main_class("Slots");
  allocfunc alloc_before = doc->tp_alloc;
  freefunc free_before = doc->tp_free;
  ASSERT_EQ(leak_classtrack_attach(doc, NULL), 0);
  ASSERT_EQ(leak_classtrack_attach(slots, NULL), 0);
  ASSERT(doc->tp_alloc == leak__classtrack_alloc && doc->tp_free == leak__classtrack_free);
  ASSERT_EQ(test_python_run("d = Doc()\n"
                            "kept.extend([d, copy.copy(d), pickle.loads(pickle.dumps(d)), Doc.__new__(Doc)])\n"
                            "kept.extend(Slots() for _ in range(3))\n"
                            "Sub()\n"          /* a subclass: not counted without the option */
                            "del d\n"),
            0);
  leak_classtrack_counters c;
  ASSERT_EQ(leak_classtrack_get_counters(doc, &c), 0);
  ASSERT_EQ(c.created, 4);
  ASSERT_EQ(c.alive, 4);
  ASSERT_EQ(c.peak_alive, 4);
  ASSERT_GT(c.total_size, 0);
  ASSERT_EQ(leak_classtrack_get_counters(slots, &c), 0);
  ASSERT_EQ(c.created, 3);

  ASSERT_EQ(test_python_run("del kept[1:3]\n"), 0);
  ASSERT_EQ(leak_classtrack_get_counters(doc, &c), 0);
  ASSERT_EQ(c.alive, 2);
  ASSERT_EQ(c.destroyed, 2);
  ASSERT_EQ(c.peak_alive, 4);
  ASSERT(c.max_lifetime >= c.avg_lifetime && c.avg_lifetime >= 0);

  uint64_t total = 0;
  ASSERT_EQ(leak_classtrack_measure(doc, &total), 0);
  ASSERT_EQ(leak_classtrack_get_counters(doc, &c), 0);
  ASSERT_EQ(c.total_size, total);

  /* Detach restores exactly; instances made while tracked are freed afterwards without records. */
  ASSERT_EQ(leak_classtrack_detach(doc), 0);
  ASSERT_EQ(leak_classtrack_detach(doc), LEAK_ENOENT);
  ASSERT(doc->tp_alloc == alloc_before && doc->tp_free == free_before);
  ASSERT_EQ(leak__classtrack_record_count(), 3); /* the Slots instances */
  ASSERT_EQ(leak_classtrack_detach_all(), 0);
  ASSERT_EQ(leak__classtrack_record_count(), 0);
  ASSERT_EQ(test_python_run("del kept[:]\nimport gc; gc.collect()\n"), 0);
  Py_DECREF(doc);
  Py_DECREF(slots);
  return 0;
}

static int count_visit(const leak_classtrack_instance *instance, void *data) {
  ASSERT(instance->object != NULL && instance->size > 0 && instance->birth_ns > 0);
  (*(int *)data)++;
  return 0;
}

TEST(classtrack_subclasses_keep_and_foreach) {
  test_python_start();
  ASSERT_EQ(test_python_run(classes_source), 0);
  PyTypeObject *doc = main_class("Doc");
  PyTypeObject *sub = main_class("Sub");
  allocfunc sub_alloc = sub->tp_alloc;
  leak_classtrack_options options = LEAK_CLASSTRACK_OPTIONS_INIT;
  options.subclasses = 1;
  options.keep = 1;
  ASSERT_EQ(leak_classtrack_attach(doc, &options), 0);
  ASSERT(sub->tp_alloc == leak__classtrack_alloc);
  ASSERT_EQ(test_python_run("for _ in range(5): Sub(); Doc()\n"), 0); /* kept alive by the tracker */
  int visited = 0;
  ASSERT_EQ(leak_classtrack_foreach(doc, count_visit, &visited), 0);
  ASSERT_EQ(visited, 10);
  ASSERT_EQ(leak_classtrack_detach(doc), 0); /* releases the kept instances */
  ASSERT(sub->tp_alloc == sub_alloc);
  ASSERT_EQ(leak__classtrack_record_count(), 0);
  Py_DECREF(doc);
  Py_DECREF(sub);
  return 0;
}

TEST(classtrack_out_of_memory_leaves_nothing_tracked) {
  test_python_start();
  ASSERT_EQ(test_python_run(classes_source), 0);
  PyTypeObject *doc = main_class("Doc");
  allocfunc alloc_before = doc->tp_alloc;
  leak_classtrack_options options = LEAK_CLASSTRACK_OPTIONS_INIT;
  options.subclasses = 1;
  int succeeded = 0;
  for (long fail = 0; fail < 20 && !succeeded; fail++) {
    leak__alloc_fail_after(fail);
    int rc = leak_classtrack_attach(doc, &options);
    leak__alloc_fail_after(-1);
    if (rc == 0) {
      succeeded = 1;
      break;
    }
    ASSERT_EQ(rc, LEAK_ENOMEM);
    ASSERT(!leak_classtrack_is_tracked(doc));
    ASSERT(doc->tp_alloc == alloc_before);
  }
  ASSERT(succeeded);
  /* Out of memory for an instance record: the instance is made, just not counted. */
  leak__alloc_fail_after(0);
  ASSERT_EQ(test_python_run("x = Doc()\n"), 0);
  leak__alloc_fail_after(-1);
  ASSERT_EQ(test_python_run("del x\n"), 0);
  ASSERT_EQ(leak_classtrack_detach_all(), 0);
  ASSERT(doc->tp_alloc == alloc_before);
  Py_DECREF(doc);
  return 0;
}

TEST(classtrack_table_survives_churn) {
  test_python_start();
  ASSERT_EQ(test_python_run(classes_source), 0);
  PyTypeObject *doc = main_class("Doc");
  ASSERT_EQ(leak_classtrack_attach(doc, NULL), 0);
  /* Creations and frees in a shuffled order, through several growths of the instance table. */
  ASSERT_EQ(test_python_run("import random\n"
                            "rng = random.Random(7)\n"
                            "live = [Doc() for _ in range(5000)]\n"
                            "for _ in range(8):\n"
                            "    rng.shuffle(live)\n"
                            "    del live[:1500]\n"
                            "    live.extend(Doc() for _ in range(1000))\n"),
            0);
  leak_classtrack_counters c;
  ASSERT_EQ(leak_classtrack_get_counters(doc, &c), 0);
  ASSERT_EQ(c.alive, 5000 - 8 * 500);
  ASSERT_EQ(c.created, 5000 + 8 * 1000);
  ASSERT_EQ(c.destroyed, c.created - c.alive);
  ASSERT_EQ(leak__classtrack_record_count(), c.alive);
  leak__classtrack_record *records;
  size_t count;
  ASSERT_EQ(leak__classtrack_records(doc, &records, &count), 0);
  ASSERT_EQ(count, c.alive);
  PyObject *live = PyObject_GetAttrString(PyImport_AddModule("__main__"), "live");
  ASSERT(live != NULL);
  for (size_t i = 0; i < count; i++) {
    ASSERT(Py_TYPE(records[i].object) == doc);
    ASSERT_EQ(PySequence_Contains(live, records[i].object), 1);
    Py_DECREF(records[i].object);
  }
  leak__free(records);
  Py_DECREF(live);
  ASSERT_EQ(test_python_run("del live[:]\n"), 0);
  ASSERT_EQ(leak__classtrack_record_count(), 0);
  ASSERT_EQ(leak_classtrack_detach_all(), 0);
  Py_DECREF(doc);
  return 0;
}
