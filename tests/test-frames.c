/* The frame reader against CPython's own view of the stack: same code objects, same line numbers,
 * innermost first, through plain calls, deep recursion, generators, coroutines and other threads;
 * and it never allocates. */
#include "core/internal.h"
#include "core/frames.h"
#include "runner.h"
#include "test-alloc-counter.h"


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

/* _probe.lines(code): builds code's line table and checks it against leak__frame_lineno at every
 * byte offset from -1 to len(co_code) + 10, with every allocator counting (a lookup must not
 * allocate).  Raises AssertionError at the first difference; otherwise returns
 * (ranges, smallest line jump, largest line jump) so callers can check what the code exercised. */
static PyObject *probe_lines(PyObject *self, PyObject *args) {
  PyObject *code;
  if (!PyArg_ParseTuple(args, "O!", &PyCode_Type, &code)) return NULL;
  PyObject *bytes = PyObject_GetAttrString(code, "co_code");
  if (bytes == NULL) return NULL;
  int32_t size = (int32_t)PyBytes_Size(bytes);
  Py_DECREF(bytes);
  leak__line_table *table = NULL;
  int rc = leak__line_table_new((PyCodeObject *)code, &table);
  if (rc < 0) return PyErr_Format(PyExc_AssertionError, "building failed: %s", leak_strerror(rc));
  long before = allocations_seen;
  counting = 1;
  for (int32_t lasti = -1; lasti <= size + 10; lasti++) {
    int want = leak__frame_lineno((PyCodeObject *)code, lasti);
    int got = leak__line_table_lookup(table, lasti);
    if (got != want) {
      counting = 0;
      leak__line_table_free(table);
      return PyErr_Format(PyExc_AssertionError, "%R at offset %d of %d: table says %d, PyCode_Addr2Line %d", code,
                          (int)lasti, (int)size, got, want);
    }
  }
  counting = 0;
  if (allocations_seen != before) {
    leak__line_table_free(table);
    return PyErr_Format(PyExc_AssertionError, "looking lines up allocated");
  }
  long smallest = 0, largest = 0;
  for (uint32_t i = 1; i < table->count; i++) {
    if (table->ranges[i - 1].line < 0 || table->ranges[i].line < 0) continue;
    long jump = (long)table->ranges[i].line - table->ranges[i - 1].line;
    if (jump < smallest) smallest = jump;
    if (jump > largest) largest = jump;
  }
  PyObject *result = Py_BuildValue("(Ill)", table->count, smallest, largest);
  leak__line_table_free(table);
  return result;
}

static PyMethodDef probe_methods[] = {{"stack", probe_stack, METH_VARARGS, NULL},
                                      {"lines", probe_lines, METH_VARARGS, NULL},
                                      {NULL, NULL, 0, NULL}};
static struct PyModuleDef probe_module = {PyModuleDef_HEAD_INIT, "_probe", NULL, -1, probe_methods};
static PyObject *probe_init(void) { return PyModule_Create(&probe_module); }

/* Starts Python with the probe module and every allocator domain wrapped by the counter. */
static void start_python_with_probe(void) {
  PyImport_AppendInittab("_probe", probe_init);
  test_python_start();
  install_counting_allocators();
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

/* ---- Line tables ------------------------------------------------------------------------------ */

/* Python helpers for the line-table tests: every code object nested in a code object, and a check
 * of each against PyCode_Addr2Line at every offset. */
static const char *line_helpers =
    "import sys, _probe\n"
    "def nested(code):\n"
    "    out = [code]\n"
    "    for const in code.co_consts:\n"
    "        if isinstance(const, type(code)):\n"
    "            out.extend(nested(const))\n"
    "    return out\n"
    "def check_all(codes):\n"
    "    smallest = largest = ranges = 0\n"
    "    for code in codes:\n"
    "        n, low, high = _probe.lines(code)\n"
    "        ranges += n\n"
    "        smallest, largest = min(smallest, low), max(largest, high)\n"
    "    return len(codes), ranges, smallest, largest\n"
    "def module_codes(module):\n"
    "    with open(module.__file__, encoding='utf-8') as f:\n"
    "        compiled = compile(f.read(), module.__file__, 'exec')\n"
    "    live = [v.__code__ for v in vars(module).values() if hasattr(v, '__code__')]\n"
    "    return nested(compiled) + live\n";

TEST(line_table_matches_addr2line_on_stdlib) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(line_helpers), 0);
  ASSERT_EQ(test_python_run("import json, json.decoder, json.encoder, json.scanner\n"
                            "try:\n"
                            "    import re._compiler as compiler, re._parser as parser\n"
                            "except ImportError:\n"
                            "    import sre_compile as compiler, sre_parse as parser\n"
                            "json.loads(json.dumps({'a': [1, 2.5, None, 'x' * 40]}))\n"
                            "for i in range(50):\n"
                            "    compiler.compile('(a|b)*c[0-9]{2,%d}' % (i + 3))\n"
                            "codes = []\n"
                            "for module in (json, json.decoder, json.encoder, json.scanner, compiler, parser):\n"
                            "    codes += module_codes(module)\n"
                            "count, ranges, smallest, largest = check_all(codes)\n"
                            "assert count > 100 and ranges > 2000, (count, ranges)\n"),
            0);
  return 0;
}

TEST(line_table_matches_addr2line_on_odd_code) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(line_helpers), 0);
  /* Generators, coroutines, lambdas, class bodies, comprehensions, a module; decorators and
   * multi-line expressions split by 300 blank lines, which make line jumps beyond a byte both
   * ways (co_lnotab splits those into several pairs). */
  ASSERT_EQ(test_python_run("blank = '\\n' * 300\n"
                            "source = (\n"
                            "    'def deco(f):\\n    return f\\n'\n"
                            "    '@deco\\n@deco' + blank + '\\n'\n"
                            "    'def jumps(a, b):\\n'\n"
                            "    '    x = (a +' + blank + '         b)\\n'\n"
                            "    '    y = max(' + blank + '        a,\\n        b)\\n'\n"
                            "    '    z = [a for a in range(3)\\n' + blank + '         if a]\\n'\n"
                            "    '    return (x, y,' + blank + ' z)\\n'\n"
                            "    'def gen(n):\\n    for i in range(n):\\n        yield i\\n    yield from range(2)\\n'\n"
                            "    'async def coro(x):\\n    try:\\n        await x\\n    finally:\\n        pass\\n'\n"
                            "    'square = lambda v: (v *\\n  v)\\n'\n"
                            "    'class Box:\\n    size = 1\\n    def area(self):\\n        return self.size ** 2\\n'\n"
                            "    'while False:\\n    pass\\n'\n"
                            ")\n"
                            "module = compile(source, 'odd.py', 'exec')\n"
                            "ns = {}\n"
                            "exec(module, ns)\n"
                            "list(ns['gen'](3)); ns['jumps'](1, 2); ns['square'](3)\n"
                            "codes = nested(module) + [ns['jumps'].__code__]\n"
                            "names = {c.co_name for c in codes}\n"
                            "assert {'<module>', 'jumps', 'gen', 'coro', '<lambda>', 'Box', 'area'} <= names, names\n"
                            "count, ranges, smallest, largest = check_all(codes)\n"
                            "assert smallest < -255 and largest > 255, (smallest, largest)\n"
                            "def empty(): pass\n"
                            "check_all([empty.__code__, compile('', 'e.py', 'exec'), compile('1', 'e.py', 'eval')])\n"),
            0);
  return 0;
}

TEST(line_table_matches_addr2line_on_long_function) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run(line_helpers), 0);
  /* 3,000 lines in one function, the shape the snapshot benchmark resolves, and one whose lines are
   * 1,000 apart (jumps of four bytes' worth of co_lnotab pairs). */
  ASSERT_EQ(test_python_run("body = ''.join('    n += %d\\n' % i for i in range(3000))\n"
                            "ns = {}\n"
                            "exec(compile('def big(n):\\n' + body + '    return n\\n', 'big.py', 'exec'), ns)\n"
                            "ns['big'](0)\n"
                            "count, ranges, smallest, largest = check_all([ns['big'].__code__])\n"
                            "assert ranges >= 3000, ranges\n"
                            "far = ''.join('    n += 1' + '\\n' * 1000 for i in range(20))\n"
                            "exec(compile('def far(n):\\n' + far + '    return n\\n', 'far.py', 'exec'), ns)\n"
                            "count, ranges, smallest, largest = check_all([ns['far'].__code__])\n"
                            "assert largest >= 1000, largest\n"),
            0);
  return 0;
}

TEST(line_table_out_of_memory) {
  test_python_start();
  ASSERT_EQ(test_python_run("body = ''.join('    n += %d\\n' % i for i in range(500))\n"
                            "exec(compile('def big(n):\\n' + body + '    return n\\n', 'big.py', 'exec'))\n"),
            0);
  PyObject *main_module = PyImport_AddModule("__main__");
  PyObject *function = PyObject_GetAttrString(main_module, "big");
  ASSERT(function != NULL);
  PyCodeObject *code = (PyCodeObject *)PyFunction_GetCode(function);
  /* The first allocation, then the first growth, then the final shrink (which may fail harmlessly). */
  for (long fail = 0; fail < 8; fail++) {
    leak__line_table *table = (leak__line_table *)1;
    leak__alloc_fail_after(fail);
    int rc = leak__line_table_new(code, &table);
    leak__alloc_fail_after(-1);
    ASSERT(PyErr_Occurred() == NULL);
    if (rc < 0) {
      ASSERT_EQ(rc, LEAK_ENOMEM);
      ASSERT(table == NULL);
      continue;
    }
    ASSERT(fail >= 2);
    for (int32_t lasti = -1; lasti < 4000; lasti += 3)
      ASSERT_EQ(leak__line_table_lookup(table, lasti), leak__frame_lineno(code, lasti));
    leak__line_table_free(table);
  }
  leak__line_table_free(NULL);
  Py_DECREF(function);
  return 0;
}
