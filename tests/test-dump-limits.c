/* Limits: what a dump cuts is counted exactly ("  ... N more frames", "... N more threads"), the
 * main thread comes first, and the limits are validated. */
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
  limits.max_frames = 0;
  ASSERT_EQ(leak_dump_set_limits(&limits), LEAK_EINVAL);
  limits.max_frames = 5;
  limits.max_threads = -1;
  ASSERT_EQ(leak_dump_set_limits(&limits), LEAK_EINVAL);
  ASSERT_EQ(leak_dump_set_limits(NULL), LEAK_EINVAL);
  ASSERT_EQ(leak_dump_get_limits(NULL), LEAK_EINVAL);
  limits.max_threads = 7;
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  leak_dump_limits back;
  ASSERT_EQ(leak_dump_get_limits(&back), 0);
  ASSERT_EQ(back.max_frames, 5);
  ASSERT_EQ(back.max_threads, 7);
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
  leak_dump_limits limits = {3, 100};
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

/* 50 threads with max_threads 10: the main thread first, 9 others, and the other 41 counted. */
TEST(dump_limits_fifty_threads) {
  start_python_with_probe();
  leak_dump_limits limits = {100, 10};
  ASSERT_EQ(leak_dump_set_limits(&limits), 0);
  ASSERT_EQ(test_python_run("import threading, tempfile, _lprobe\n"
                            "done = threading.Event(); started = []\n"
                            "def parked(i):\n"
                            "    started.append(i)\n"
                            "    done.wait()\n"
                            "ts = [threading.Thread(target=parked, args=(i,)) for i in range(50)]\n"
                            "for t in ts: t.start()\n"
                            "while len(started) < 50: done.wait(0.01)\n"
                            "with tempfile.TemporaryFile() as out:\n"
                            "    assert _lprobe.dump(out.fileno(), 1) == 0\n"
                            "    out.seek(0); text = out.read().decode()\n"
                            "done.set()\n"
                            "for t in ts: t.join()\n"
                            "blocks = text.rstrip('\\n').split('\\n\\n')\n"
                            "assert len(blocks) == 11, len(blocks)\n"
                            "main = threading.main_thread().ident\n"
                            "assert blocks[0].startswith('Current thread 0x%016x ' % main), blocks[0]\n"
                            "assert all(b.startswith('Thread 0x') and ' in parked' in b for b in blocks[1:10]), blocks\n"
                            "assert blocks[10] == '... 41 more threads', blocks[10]\n"),
            0);
  return 0;
}
