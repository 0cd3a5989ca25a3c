/* Deep sizes through the C API: sizes are sys.getsizeof's rounded up to the alignment, shared
 * objects count once, deep chains need no recursion, limits and exclusions cut the walk, bad
 * options and running out of memory come back as codes. */
#include "core/internal.h"
#include "heap/deepsize.h"
#include "runner.h"

/* A global of __main__ (a new reference), after running `source` there. */
static PyObject *main_global(const char *source, const char *name) {
  test_python_start();
  ASSERT_EQ(test_python_run(source), 0);
  PyObject *value = PyObject_GetAttrString(PyImport_AddModule("__main__"), name);
  ASSERT(value != NULL);
  return value;
}

/* sys.getsizeof(obj) rounded up to 8, as asizeof counts one object. */
static size_t flat8(PyObject *obj) {
  PyObject *getsizeof = PySys_GetObject("getsizeof");
  PyObject *answer = PyObject_CallFunctionObjArgs(getsizeof, obj, NULL);
  ASSERT(answer != NULL);
  size_t size = PyLong_AsSize_t(answer);
  Py_DECREF(answer);
  return (size + 7) & ~(size_t)7;
}

TEST(deepsize_sums_aligned_getsizeof_of_referents) {
  PyObject *list = main_global("x = [1.5, 'abc', (7, 8.25)]\n", "x");
  size_t expected = flat8(list);
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) expected += flat8(PyList_GET_ITEM(list, i));
  PyObject *tuple = PyList_GET_ITEM(list, 2);
  expected += flat8(PyTuple_GET_ITEM(tuple, 0)) + flat8(PyTuple_GET_ITEM(tuple, 1));
  size_t size = 0;
  ASSERT_EQ(leak_deep_size(list, NULL, &size), 0);
  ASSERT_EQ(size, expected);
  Py_DECREF(list);
  return 0;
}

TEST(deepsize_counts_shared_objects_once) {
  PyObject *pair = main_global("shared = [2.5] * 1\nx = [shared, shared, {'k': shared}]\n", "x");
  PyObject *shared = PyList_GET_ITEM(pair, 0);
  size_t whole = 0, alone = 0;
  ASSERT_EQ(leak_deep_size(pair, NULL, &whole), 0);
  ASSERT_EQ(leak_deep_size(shared, NULL, &alone), 0);
  PyObject *dict = PyList_GET_ITEM(pair, 2);
  PyObject *key = PyUnicode_FromString("k");
  size_t expected = flat8(pair) + alone + flat8(dict) + flat8(key);
  Py_DECREF(key);
  ASSERT_EQ(whole, expected);
  /* Two arguments: the shared list counts under the first that reaches it, and an argument
   * referenced by another counts as its own. */
  PyObject *args[2] = {pair, shared};
  size_t sizes[2], total = 0;
  ASSERT_EQ(leak_deep_sizes(args, 2, NULL, sizes, &total), 0);
  ASSERT_EQ(sizes[1], alone);
  ASSERT_EQ(sizes[0], whole - alone);
  ASSERT_EQ(total, whole);
  Py_DECREF(pair);
  return 0;
}

TEST(deepsize_walks_deep_chains_without_recursion) {
  PyObject *chain = main_global("x = []\n"
                                "for _ in range(200000):\n"
                                "    x = [x]\n",
                                "x");
  leak_deepsize_options options = LEAK_DEEPSIZE_OPTIONS_INIT;
  options.limit = -1;
  leak__deepsize_result result;
  size_t size;
  ASSERT_EQ(leak__deep_size(&chain, 1, NULL, 0, &options, &size, &result), 0);
  size_t one = flat8(chain);
  ASSERT_EQ(result.objects, 200001);
  ASSERT_EQ(result.max_depth, 200000);
  PyObject *bottom = chain;
  while (PyList_GET_SIZE(bottom) > 0) bottom = PyList_GET_ITEM(bottom, 0);
  ASSERT_EQ(size, 200000 * one + flat8(bottom)); /* 200,000 one-item lists and the empty one */
  ASSERT_EQ(result.total, size);
  /* the default limit of 100 stops 101 levels down */
  options.limit = 100;
  ASSERT_EQ(leak__deep_size(&chain, 1, NULL, 0, &options, &size, &result), 0);
  ASSERT_EQ(result.objects, 101);
  ASSERT_EQ(size, 101 * one);
  options.limit = 0;
  ASSERT_EQ(leak_deep_size(chain, &options, &size), 0);
  ASSERT_EQ(size, one);
  Py_DECREF(chain);
  return 0;
}

TEST(deepsize_excluded_objects_are_not_counted) {
  PyObject *outer = main_global("inner = [1.25, 2.5]\nx = [inner, 'tail']\n", "x");
  PyObject *inner = PyList_GET_ITEM(outer, 0);
  size_t with = 0, without = 0, inner_size = 0;
  ASSERT_EQ(leak_deep_size(outer, NULL, &with), 0);
  ASSERT_EQ(leak_deep_size(inner, NULL, &inner_size), 0);
  ASSERT_EQ(leak__deep_size(&outer, 1, &inner, 1, NULL, &without, NULL), 0);
  ASSERT_EQ(with - without, inner_size);
  Py_DECREF(outer);
  return 0;
}

TEST(deepsize_alignment_and_bad_options) {
  PyObject *value = main_global("x = 'abcd'\n", "x");
  leak_deepsize_options options = LEAK_DEEPSIZE_OPTIONS_INIT;
  size_t size8, size1, size64;
  ASSERT_EQ(leak_deep_size(value, &options, &size8), 0);
  options.align = 1;
  ASSERT_EQ(leak_deep_size(value, &options, &size1), 0);
  options.align = 64;
  ASSERT_EQ(leak_deep_size(value, &options, &size64), 0);
  ASSERT_EQ(size8, (size1 + 7) & ~(size_t)7);
  ASSERT_EQ(size64, 64);
  options.align = 12;
  ASSERT_EQ(leak_deep_size(value, &options, &size8), LEAK_EINVAL);
  ASSERT_EQ(leak_deep_size(NULL, NULL, &size8), LEAK_EINVAL);
  ASSERT(!PyErr_Occurred());
  Py_DECREF(value);
  return 0;
}

TEST(deepsize_reports_out_of_memory) {
  PyObject *list = main_global("x = [[i, str(i)] for i in range(5000)]\n", "x");
  size_t expected, size;
  ASSERT_EQ(leak_deep_size(list, NULL, &expected), 0);
  /* Each failure point in turn: the call fails cleanly, then works again. */
  for (long fail = 0; fail < 40; fail++) {
    leak__alloc_fail_after(fail);
    int rc = leak_deep_size(list, NULL, &size);
    leak__alloc_fail_after(-1);
    ASSERT(rc == 0 || rc == LEAK_ENOMEM);
    if (rc == 0) ASSERT_EQ(size, expected);
    ASSERT(!PyErr_Occurred());
  }
  ASSERT_EQ(leak_deep_size(list, NULL, &size), 0);
  ASSERT_EQ(size, expected);
  Py_DECREF(list);
  return 0;
}
