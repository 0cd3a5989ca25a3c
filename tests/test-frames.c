/* The frame reader against CPython's own view of the stack: same code objects, same line numbers,
 * innermost first, through plain calls, deep recursion, generators, coroutines and other threads;
 * and it never allocates. */
#include "internal.h"
#include "frames.h"
#include "runner.h"

/* Allocation calls seen by the counting allocator while `counting` is set. */
static volatile long allocations_seen;
static volatile int counting;
static PyMemAllocatorEx saved_allocators[3];

static void *counting_malloc(void *ctx, size_t size) {
  if (counting) allocations_seen++;
  PyMemAllocatorEx *inner = ctx;
  return inner->malloc(inner->ctx, size);
}
static void *counting_calloc(void *ctx, size_t n, size_t size) {
  if (counting) allocations_seen++;
  PyMemAllocatorEx *inner = ctx;
  return inner->calloc(inner->ctx, n, size);
}
static void *counting_realloc(void *ctx, void *ptr, size_t size) {
  if (counting) allocations_seen++;
  PyMemAllocatorEx *inner = ctx;
  return inner->realloc(inner->ctx, ptr, size);
}
static void counting_free(void *ctx, void *ptr) {
  if (counting) allocations_seen++;
  PyMemAllocatorEx *inner = ctx;
  inner->free(inner->ctx, ptr);
}

/* _probe.stack(max=1000, thread_id=None): the frames libleak reads, as [(code, lineno), ...]
 * innermost first; reading happens with every Python allocator counting calls. */
static PyObject *probe_stack(PyObject *self, PyObject *args) {
  int max = 1000;
  unsigned long thread_id = 0;
  if (!PyArg_ParseTuple(args, "|ik", &max, &thread_id)) return NULL;
  PyThreadState *tstate = leak__frames_this_thread();
  if (thread_id != 0) {
    tstate = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(PyThreadState_Get()));
    while (tstate && leak__frames_thread_id(tstate) != thread_id) tstate = PyThreadState_Next(tstate);
    if (tstate == NULL) return PyErr_Format(PyExc_LookupError, "no thread %lu", thread_id);
  }
  static leak__frame frames[1000];
  if (max > 1000) max = 1000;
  counting = 1;
  int n = leak__frames_read(tstate, frames, max);
  int depth = leak__frames_depth(tstate);
  counting = 0;
  PyObject *list = PyList_New(0);
  for (int i = 0; i < n; i++) {
    PyObject *item = Py_BuildValue("(Oi)", frames[i].code, leak__frame_lineno(frames[i].code, frames[i].lasti));
    PyList_Append(list, item);
    Py_DECREF(item);
  }
  return Py_BuildValue("(Ni)", list, depth);
}

static PyMethodDef probe_methods[] = {{"stack", probe_stack, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef probe_module = {PyModuleDef_HEAD_INIT, "_probe", NULL, -1, probe_methods};
static PyObject *probe_init(void) { return PyModule_Create(&probe_module); }

/* Starts Python with the probe module and every allocator domain wrapped by the counter. */
static void start_python_with_probe(void) {
  PyImport_AppendInittab("_probe", probe_init);
  test_python_start();
  PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
  for (int d = 0; d < 3; d++) {
    PyMem_GetAllocator(domains[d], &saved_allocators[d]);
    PyMemAllocatorEx hook = {&saved_allocators[d], counting_malloc, counting_calloc, counting_realloc,
                             counting_free};
    PyMem_SetAllocator(domains[d], &hook);
  }
}

/* Python helpers shared by the tests: what CPython itself says the stack is. */
static const char *reference_helpers =
    "import sys, _probe\n"
    "def python_view(frame):\n"
    "    out = []\n"
    "    while frame is not None:\n"
    "        out.append((frame.f_code, frame.f_lineno))\n"
    "        frame = frame.f_back\n"
    "    return out\n"
    "def check(got_depth, want):\n"
    "    got, depth = got_depth\n"
    "    assert [c.co_name for c, _ in got] == [c.co_name for c, _ in want], (got, want)\n"
    "    assert got == want, (got, want)\n"
    "    assert depth == len(want), (depth, len(want))\n";

TEST(frames_match_python_view) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(reference_helpers), 0);
  ASSERT_EQ(test_python_run("def inner():\n"
                            "    check(_probe.stack(), python_view(sys._getframe()))\n"
                            "def outer():\n"
                            "    x = 1\n"
                            "    inner()\n"
                            "outer()\n"),
            0);
  ASSERT_EQ(allocations_seen, 0);
  return 0;
}

TEST(frames_deep_recursion_and_limit) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(reference_helpers), 0);
  ASSERT_EQ(test_python_run("sys.setrecursionlimit(5000)\n"
                            "def down(n):\n"
                            "    if n == 0:\n"
                            "        got, want = _probe.stack(), python_view(sys._getframe())\n"
                            "        check(got, want)\n"
                            "        assert len(want) > 500\n"
                            "        top3, depth = _probe.stack(3)\n"
                            "        assert [c for c, _ in top3] == [c for c, _ in want[:3]]\n"
                            "        assert depth == len(want)\n"
                            "        return\n"
                            "    down(n - 1)\n"
                            "down(500)\n"),
            0);
  ASSERT_EQ(allocations_seen, 0);
  return 0;
}

TEST(frames_generators_and_coroutines) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(reference_helpers), 0);
  ASSERT_EQ(test_python_run("def gen():\n"
                            "    yield 1\n"
                            "    check(_probe.stack(), python_view(sys._getframe()))\n"
                            "    yield 2\n"
                            "g = gen(); next(g); next(g)\n"
                            "async def leaf():\n"
                            "    check(_probe.stack(), python_view(sys._getframe()))\n"
                            "async def mid():\n"
                            "    await leaf()\n"
                            "c = mid()\n"
                            "try:\n"
                            "    c.send(None)\n"
                            "except StopIteration:\n"
                            "    pass\n"
                            "def consume():\n"
                            "    return [x for x in (check(_probe.stack(), python_view(sys._getframe())) or 1 for _ in range(2))]\n"
                            "consume()\n"),
            0);
  ASSERT_EQ(allocations_seen, 0);
  return 0;
}

TEST(frames_of_another_thread) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(reference_helpers), 0);
  ASSERT_EQ(test_python_run("import threading\n"
                            "ready = threading.Event(); done = threading.Event()\n"
                            "def parked():\n"
                            "    ready.set()\n"
                            "    done.wait()\n"
                            "t = threading.Thread(target=parked); t.start(); ready.wait()\n"
                            "frame = sys._current_frames()[t.ident]\n"
                            "got, depth = _probe.stack(1000, t.ident)\n"
                            "names = [c.co_name for c, _ in got]\n"
                            "want = [c.co_name for c, _ in python_view(frame)]\n"
                            "done.set(); t.join()\n"
                            "assert names == want, (names, want)\n"
                            "assert 'parked' in names and depth == len(names)\n"),
            0);
  return 0;
}
