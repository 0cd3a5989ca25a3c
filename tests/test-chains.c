/* Reference chains through the C core (refs/chains.h): backward through the reverse index,
 * forward through tp_traverse, max_depth, ignored addresses, and a predicate that frees objects
 * and makes new ones while the search runs (the index is built again, no freed address read). */
#include "core/internal.h"
#include "refs/chains.h"
#include "runner.h"

/* An object of __main__ (borrowed: the module's dict holds it). */
static PyObject *main_object(const char *name) {
  PyObject *main_module = PyImport_AddModule("__main__");
  return main_module ? PyDict_GetItemString(PyModule_GetDict(main_module), name) : NULL;
}

/* Matches the one object passed as arg. */
static int is_object(void *arg, PyObject *obj) { return obj == (PyObject *)arg; }

/* Matches modules: a backward search's usual goal. */
static int is_module(void *arg, PyObject *obj) {
  (void)arg;
  return PyModule_Check(obj);
}

/* Matches nothing, but on every call drops a list of 200 fresh objects and makes another: the heap
 * changes under the search at each object it tries. */
static int churn(void *arg, PyObject *obj) {
  (void)obj;
  size_t *calls = arg;
  (*calls)++;
  return test_python_run("junk = [[i] for i in range(200)]\n") == 0 ? 0 : LEAK_EPYTHON;
}

TEST(chains_backward_finds_the_module_through_the_containers) {
  test_python_start();
  ASSERT_EQ(test_python_run("class Holder:\n"
                            "    pass\n"
                            "target = object()\n"
                            "h = Holder()\n"
                            "h.box = [target]\n"
                            "holders = {'k': h}\n"
                            "del target\n"),
            0);
  PyObject *holders = main_object("holders");
  PyObject *h = PyDict_GetItemString(holders, "k");
  PyObject *box = PyObject_GetAttrString(h, "box");
  PyObject *target = PyList_GET_ITEM(box, 0);
  Py_INCREF(target);
  Py_DECREF(box);
  leak__chain_source source = {0};
  PyObject **chain;
  size_t length;
  ASSERT_EQ(leak__chain_find(&source, target, LEAK__CHAIN_BACKWARD, 20, NULL, is_module, NULL, &chain, &length), 0);
  ASSERT(chain != NULL);
  /* module __main__ -> its dict -> holders dict -> h -> h.__dict__ (3.8-3.10) -> box -> target */
  ASSERT_GE(length, 5);
  ASSERT(PyModule_Check(chain[0]));
  ASSERT(chain[length - 1] == target);
  ASSERT(chain[length - 2] == PyObject_GetAttrString(h, "box"));
  Py_DECREF(chain[length - 2]); /* the GetAttr's reference */
  for (size_t i = 0; i < length; i++) Py_DECREF(chain[i]);
  leak__free(chain);
  ASSERT_EQ(source.builds, 1);

  /* Too shallow: nothing found, no chain. */
  ASSERT_EQ(leak__chain_find(&source, target, LEAK__CHAIN_BACKWARD, 2, NULL, is_module, NULL, &chain, &length), 0);
  ASSERT(chain == NULL);
  ASSERT_EQ(length, 0);

  /* The holders dict ignored: no way to the module is left but through h's class... which does not
   * lead to h.  The search must not find a chain through holders. */
  leak__objset ignore = {0};
  ASSERT_EQ(leak__objset_add(&ignore, holders), 1);
  ASSERT_EQ(leak__chain_find(&source, target, LEAK__CHAIN_BACKWARD, 20, &ignore, is_object, holders, &chain, &length), 0);
  ASSERT(chain == NULL);
  leak__objset_free(&ignore);
  leak__chain_source_free(&source);
  Py_DECREF(target);
  return 0;
}

TEST(chains_forward_follows_tp_traverse) {
  test_python_start();
  ASSERT_EQ(test_python_run("leaf = 'leaf-' + str(42)\n"
                            "outer = {'a': [1, (2, [leaf])]}\n"),
            0);
  PyObject *outer = main_object("outer"), *leaf = main_object("leaf");
  leak__chain_source source = {0};
  PyObject **chain;
  size_t length;
  ASSERT_EQ(leak__chain_find(&source, outer, LEAK__CHAIN_FORWARD, 20, NULL, is_object, leaf, &chain, &length), 0);
  ASSERT(chain != NULL);
  ASSERT_EQ(length, 5); /* leaf <- [leaf] <- (2, [leaf]) <- [1, ...] <- outer */
  ASSERT(chain[0] == leaf);
  ASSERT(chain[4] == outer);
  ASSERT(PyList_Check(chain[1]) && PyTuple_Check(chain[2]) && PyList_Check(chain[3]));
  for (size_t i = 0; i < length; i++) Py_DECREF(chain[i]);
  leak__free(chain);
  ASSERT_EQ(source.builds, 0); /* forward steps need no index */
  ASSERT_EQ(leak__chain_find(&source, outer, LEAK__CHAIN_FORWARD, 3, NULL, is_object, leaf, &chain, &length), 0);
  ASSERT(chain == NULL);
  /* Matching the start itself: a chain of one. */
  ASSERT_EQ(leak__chain_find(&source, outer, LEAK__CHAIN_FORWARD, 0, NULL, is_object, outer, &chain, &length), 0);
  ASSERT_EQ(length, 1);
  ASSERT(chain[0] == outer);
  Py_DECREF(chain[0]);
  leak__free(chain);
  return 0;
}

TEST(chains_predicate_that_changes_the_heap_rebuilds_the_index) {
  test_python_start();
  ASSERT_EQ(test_python_run("target = object()\n"
                            "level = [target]\n"
                            "for i in range(6):\n"
                            "    level = [level, [level]]\n"
                            "junk = None\n"),
            0);
  PyObject *target = main_object("target");
  Py_INCREF(target);
  ASSERT_EQ(test_python_run("del target\n"), 0);
  leak__chain_source source = {0};
  PyObject **chain;
  size_t length, calls = 0;
  /* Levels 0 - 7: target, level 0, then each level list and the list around it. */
  ASSERT_EQ(leak__chain_find(&source, target, LEAK__CHAIN_BACKWARD, 7, NULL, churn, &calls, &chain, &length), 0);
  ASSERT(chain == NULL);
  ASSERT_EQ(calls, 14);
  ASSERT_EQ(source.builds, 7); /* built again for each level: the predicates changed the heap */
  leak__chain_source_free(&source);
  Py_DECREF(target);
  return 0;
}

/* Stops the search with an error on its third call. */
static int fails_third(void *arg, PyObject *obj) {
  (void)obj;
  size_t *calls = arg;
  return ++*calls == 3 ? LEAK_EINVAL : 0;
}

TEST(chains_predicate_error_stops_the_search) {
  test_python_start();
  ASSERT_EQ(test_python_run("x = [[[[1]]]]\n"), 0);
  PyObject *x = main_object("x");
  leak__chain_source source = {0};
  PyObject **chain = (PyObject **)&chain;
  size_t length = 9, calls = 0;
  ASSERT_EQ(leak__chain_find(&source, x, LEAK__CHAIN_FORWARD, 20, NULL, fails_third, &calls, &chain, &length),
            LEAK_EINVAL);
  ASSERT(chain == NULL);
  ASSERT_EQ(length, 0);
  ASSERT_EQ(calls, 3);
  return 0;
}
