/* Limits: what a dump cuts is counted exactly ("  ... N more frames", "... N more threads"), the
 * thread order is faulthandler's unless the main thread is asked first, a cut never drops the
 * current or the main thread, and the limits are validated. */
#include "core/internal.h"
#include "runner.h"
#include "test-dump-util.h"

/* _lprobe.dump(fd, flags) -> rc. */
static PyObject *lprobe_dump(PyObject *self, PyObject *args) {
  int fd;
  unsigned int flags;
  if (!PyArg_ParseTuple(args, "iI", &fd, &flags)) return NULL;
  return PyLong_FromLong(leak_dump_stacks(fd, flags));
}

static PyMethodDef lprobe_methods[] = {{"dump", lprobe_dump, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef lprobe_module = {PyModuleDef_HEAD_INIT, "_lprobe", NULL, -1, lprobe_methods};
static PyObject *lprobe_init(void) { return PyModule_Create(&lprobe_module); }

static void start_python_with_probe(void) {
  PyImport_AppendInittab("_lprobe", lprobe_init);
  test_python_start();
}

TEST(dump_limits_validated) {
  leak_dump_limits limits = LEAK_DUMP_LIMITS_INIT;
  ASSERT_EQ(leak_dump_get_limits(&limits), 0);
  ASSERT_EQ(limits.max_frames, 100);
  ASSERT_EQ(limits.max_threads, 100);
  ASSERT_EQ(limits.main_thread_first, 0);
  limits.max_frames = 0;
  ASSERT_EQ(leak_dump_set_limits(&limits), LEAK_EINVAL);
  limits.max_frames = 5;
  limits.max_threads = -1;
  ASSERT_EQ(leak_dump_set_limits(&limits), LEAK_EINVAL);
  ASSERT_EQ(leak_dump_set_limits(NULL), LEAK_EINVAL);
  ASSERT_EQ(leak_dump_get_limits(NULL), LEAK_EINVAL);
  limits.max_threads = 7;
  limits.main_thread_first = 42;
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  leak_dump_limits back;
  ASSERT_EQ(leak_dump_get_limits(&back), 0);
  ASSERT_EQ(back.max_frames, 5);
  ASSERT_EQ(back.max_threads, 7);
  ASSERT_EQ(back.main_thread_first, 1);
  return 0;
}

/* A 500-deep recursion cut at 100 frames: exactly 100 frame lines, then the rest counted (the
 * depth as Python itself counts it). */
TEST(dump_limits_deep_recursion) {
  start_python_with_probe();
  ASSERT_EQ(test_python_run("import sys, tempfile, _lprobe\n"
                            "sys.setrecursionlimit(5000)\n"
                            "def down(n):\n"
                            "    if n == 0:\n"
                            "        depth = 0\n"
                            "        f = sys._getframe()\n"
                            "        while f is not None:\n"
                            "            depth += 1; f = f.f_back\n"
                            "        with tempfile.TemporaryFile() as out:\n"
                            "            assert _lprobe.dump(out.fileno(), 0) == 0\n"
                            "            out.seek(0); text = out.read().decode()\n"
                            "        return depth, text\n"
                            "    return down(n - 1)\n"
                            "depth, text = down(500)\n"
                            "assert depth > 500, depth\n"
                            "lines = text.splitlines()\n"
                            "assert lines[0] == 'Stack (most recent call first):', lines[0]\n"
                            "frames = [l for l in lines if l.startswith('  File ')]\n"
                            "assert len(frames) == 100, len(frames)\n"
                            "assert all(' in down' in l for l in frames), frames\n"
                            "assert lines[101] == '  ... %d more frames' % (depth - 100), (lines[101], depth)\n"
                            "assert len(lines) == 102, lines[100:]\n"),
            0);
  /* A smaller limit counts the same way, and a stack that fits prints no count line. */
  leak_dump_limits limits = {3, 100, 0};
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  ASSERT_EQ(test_python_run("def a(): return b()\n"
                            "def b(): return c()\n"
                            "def c():\n"
                            "    with tempfile.TemporaryFile() as out:\n"
                            "        _lprobe.dump(out.fileno(), 0); out.seek(0); return out.read().decode()\n"
                            "text = a()\n"
                            "assert text.endswith('in a\\n  ... 1 more frame\\n'), text\n"
                            "def fits():\n"
                            "    with tempfile.TemporaryFile() as out:\n"
                            "        _lprobe.dump(out.fileno(), 0); out.seek(0); return out.read().decode()\n"
                            "text = fits()\n"
                            "assert 'more frame' not in text and text.count('  File ') == 2, text\n"),
            0);
  return 0;
}

/* 50 parked threads and a dump from `dumper` ('main' or the index of a worker, which then dumps
 * from its own thread); `blocks` is the dump split at blank lines, `order` the thread ids in the
 * interpreter's order (threading.enumerate is not that order: the ids are read from faulthandler's
 * own dump, which is). */
static const char *fifty_threads =
    "import threading, tempfile, faulthandler, _lprobe\n"
    "def capture(dump, *args):\n"
    "    with tempfile.TemporaryFile() as out:\n"
    "        dump(out.fileno(), *args); out.seek(0); return out.read().decode()\n"
    "def ident(block):\n"
    "    return int(block.split('0x', 1)[1].split(' ', 1)[0], 16)\n"
    "def fifty(dumper):\n"
    "    done = threading.Event(); started = []; result = {}\n"
    "    def parked(i):\n"
    "        started.append(i)\n"
    "        if i == dumper:\n"
    "            while len(started) < 50: done.wait(0.01)\n"
    "            result['ours'] = capture(_lprobe.dump, 1)\n"
    "            result['theirs'] = capture(faulthandler.dump_traceback, True)\n"
    "        done.wait()\n"
    "    ts = [threading.Thread(target=parked, args=(i,)) for i in range(50)]\n"
    "    for t in ts: t.start()\n"
    "    while len(started) < 50: done.wait(0.01)\n"
    "    if dumper == 'main':\n"
    "        result['ours'] = capture(_lprobe.dump, 1)\n"
    "        result['theirs'] = capture(faulthandler.dump_traceback, True)\n"
    "    else:\n"
    "        while 'theirs' not in result: done.wait(0.01)\n"
    "    done.set()\n"
    "    for t in ts: t.join()\n"
    "    order = [ident(b) for b in result['theirs'].rstrip('\\n').split('\\n\\n')]\n"
    "    return result['ours'].rstrip('\\n').split('\\n\\n'), order, ts\n"
    "main = threading.main_thread().ident\n";

/* max_threads 10 in faulthandler's order: the 9 newest workers, then the main thread (the last of
 * the interpreter's list, kept although the cut falls before it), then the other 41 counted. */
TEST(dump_limits_fifty_threads) {
  start_python_with_probe();
  leak_dump_limits limits = {100, 10, 0};
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  ASSERT_EQ(test_python_run(fifty_threads), 0);
  ASSERT_EQ(test_python_run("blocks, order, ts = fifty('main')\n"
                            "assert len(blocks) == 11, len(blocks)\n"
                            "assert order[-1] == main, order\n"
                            "assert [ident(b) for b in blocks[:10]] == order[:9] + [main], (blocks, order)\n"
                            "assert all(b.startswith('Thread 0x') and ' in parked' in b for b in blocks[:9]), blocks\n"
                            "assert blocks[9].startswith('Current thread 0x%016x ' % main), blocks[9]\n"
                            "assert blocks[10] == '... 41 more threads', blocks[10]\n"),
            0);
  return 0;
}

/* The same with main_thread_first: the main thread on top, then the 9 newest workers. */
TEST(dump_limits_fifty_threads_main_first) {
  start_python_with_probe();
  leak_dump_limits limits = {100, 10, 1};
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  ASSERT_EQ(test_python_run(fifty_threads), 0);
  ASSERT_EQ(test_python_run("blocks, order, ts = fifty('main')\n"
                            "assert len(blocks) == 11, len(blocks)\n"
                            "assert [ident(b) for b in blocks[:10]] == [main] + order[:9], (blocks, order)\n"
                            "assert blocks[0].startswith('Current thread 0x%016x ' % main), blocks[0]\n"
                            "assert blocks[10] == '... 41 more threads', blocks[10]\n"),
            0);
  /* Without a cut, main first is the only difference from faulthandler's order. */
  limits.max_threads = 100;
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  ASSERT_EQ(test_python_run("blocks, order, ts = fifty('main')\n"
                            "assert [ident(b) for b in blocks] == [main] + order[:-1], (blocks, order)\n"),
            0);
  return 0;
}

/* A dump from the oldest worker (the one a cut in faulthandler's order reaches last): it is kept,
 * marked current in its place, and so is the main thread; 8 newer workers fill the limit. */
TEST(dump_limits_cut_keeps_current_and_main) {
  start_python_with_probe();
  leak_dump_limits limits = {100, 10, 0};
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  ASSERT_EQ(test_python_run(fifty_threads), 0);
  ASSERT_EQ(test_python_run("blocks, order, ts = fifty(0)\n"
                            "me = ts[0].ident\n"
                            "assert order.index(me) == len(order) - 2, (order, me)\n"
                            "assert len(blocks) == 11, len(blocks)\n"
                            "assert [ident(b) for b in blocks[:10]] == order[:8] + [me, main], (blocks, order)\n"
                            "assert blocks[8].startswith('Current thread 0x%016x ' % me), blocks[8]\n"
                            "assert blocks[9].startswith('Thread 0x%016x ' % main), blocks[9]\n"
                            "assert blocks[10] == '... 41 more threads', blocks[10]\n"),
            0);
  /* A limit of 1 still shows both. */
  limits.max_threads = 1;
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  ASSERT_EQ(test_python_run("blocks, order, ts = fifty(0)\n"
                            "assert [ident(b) for b in blocks[:2]] == [ts[0].ident, main], blocks\n"
                            "assert blocks[2] == '... 49 more threads', blocks[2]\n"),
            0);
  return 0;
}
