/* The tracer in exact mode: options, hooks on every domain, realloc and calloc, counters and peak,
 * nframe limits and truncation, stack interning, RAW allocations without the GIL, out-of-memory,
 * fork, domains (track/untrack), object allocation sites and the tracer's memory. */
#include "core/internal.h"
#include "tracer/tracer.h"
#include "runner.h"
#include "test-tracer-probe.h"

#include <sys/wait.h>
#include <unistd.h>

TEST(tracer_start_options) {
  tracer_probe_start_python();
  leak_tracer_options options = LEAK_TRACER_OPTIONS_INIT;
  ASSERT_EQ(leak_tracer_traceback_limit(), 1);
  ASSERT_EQ(leak_tracer_is_tracing(), 0);
  options.nframe = 0;
  ASSERT_EQ(leak_tracer_start(&options), LEAK_EINVAL);
  options.nframe = 1025;
  ASSERT_EQ(leak_tracer_start(&options), LEAK_EINVAL);
  options.nframe = 1024;
  options.sample_bytes = -1;
  ASSERT_EQ(leak_tracer_start(&options), LEAK_EINVAL);
  options.sample_bytes = 0;
  options.fork_mode = 7;
  ASSERT_EQ(leak_tracer_start(&options), LEAK_EINVAL);
  ASSERT_EQ(leak_tracer_is_tracing(), 0);
  options.fork_mode = LEAK_TRACER_FORK_CONTINUE;
  ASSERT_EQ(leak_tracer_start(&options), 0);
  ASSERT_EQ(leak_tracer_is_tracing(), 1);
  ASSERT_EQ(leak_tracer_traceback_limit(), 1024);
  ASSERT_EQ(leak_tracer_start(NULL), LEAK_EBUSY);
  ASSERT_EQ(leak_tracer_stop(), 0);
  ASSERT_EQ(leak_tracer_stop(), 0);
  ASSERT_EQ(leak_tracer_is_tracing(), 0);
  ASSERT_EQ(leak_tracer_traceback_limit(), 1024);
  ASSERT_EQ(leak_tracer_start(NULL), 0);
  ASSERT_EQ(leak_tracer_traceback_limit(), 1);
  leak_tracer_options got;
  ASSERT_EQ(leak_tracer_get_options(&got), 0);
  ASSERT_EQ(got.nframe, 1);
  ASSERT_EQ(got.sample_bytes, 0);
  size_t current = 1, peak = 1;
  ASSERT_EQ(leak_tracer_stop(), 0);
  ASSERT_EQ(leak_tracer_traced_memory(&current, &peak), 0);
  ASSERT_EQ(current, 0);
  ASSERT_EQ(peak, 0);
  return 0;
}

TEST(tracer_hooks_every_domain) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run(
                "assert _tprobe.start(5) == 0\n"
                "def site(kind, size, zeroed=False):\n"
                "    return _tprobe.alloc(kind, size, zeroed), here()\n"
                "for kind in ('raw', 'mem', 'obj', 'raw_nogil'):\n"
                "    for size, zeroed in ((24, False), (1000, False), (300000, False), (333, True)):\n"
                "        addr, line = site(kind, size, zeroed)\n"
                "        t = _tprobe.trace(addr)\n"
                "        assert t is not None, (kind, size)\n"
                "        got_size, weight, frames, depth, _ = t\n"
                "        assert got_size == size and weight == 1.0, (kind, t)\n"
                /* raw_nogil finds the stack the 'raw' round stored with the GIL */
                "        assert frames[0] == ('site', line), (kind, frames)\n"
                "        assert frames[1][0] == '<module>', frames\n"
                "        assert depth == len(frames), (kind, depth, frames)\n"
                "        _tprobe.free(kind, addr)\n"
                "        assert _tprobe.trace(addr) is None, (kind, size)\n"
                "n, total, count, current = _tprobe.consistency()\n"
                "assert n == count and total == current, (n, count, total, current)\n"
                "assert _tprobe.counters()[3] == 0\n"
                "_tprobe.stop()\n"),
            0);
  return 0;
}

/* A RAW allocator below the tracer whose realloc fails for one magic size, so the failure path of
 * the realloc hook runs without asking the C library for an impossible block. */
#define FAILING_SIZE ((size_t)123456789)
static PyMemAllocatorEx raw_below;
static void *below_malloc(void *ctx, size_t size) { (void)ctx; return raw_below.malloc(raw_below.ctx, size); }
static void *below_calloc(void *ctx, size_t n, size_t size) {
  (void)ctx;
  return raw_below.calloc(raw_below.ctx, n, size);
}
static void *below_realloc(void *ctx, void *ptr, size_t size) {
  (void)ctx;
  return size == FAILING_SIZE ? NULL : raw_below.realloc(raw_below.ctx, ptr, size);
}
static void below_free(void *ctx, void *ptr) { (void)ctx; raw_below.free(raw_below.ctx, ptr); }

/* Starts Python and wraps its RAW allocator in one whose reallocs of FAILING_SIZE bytes fail (the
 * tracer, started next, hooks above it). */
static void start_over_failing_raw(void) {
  tracer_probe_start_python();
  PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw_below);
  PyMemAllocatorEx failing = {NULL, below_malloc, below_calloc, below_realloc, below_free};
  PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &failing);
}

TEST(tracer_counters_and_peak) {
  start_over_failing_raw();
  ASSERT_EQ(leak_tracer_start(NULL), 0);
  size_t current0, peak0, current, peak;
  leak_tracer_traced_memory(&current0, &peak0);
  void *a = PyMem_Malloc(100000);
  void *b = PyObject_Calloc(10, 1000);
  void *c = PyMem_RawMalloc(7);
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(current - current0, 100000 + 10000 + 7);
  ASSERT_GE(peak, current);
  PyMem_Free(a);
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(current - current0, 10000 + 7);
  ASSERT_GE(peak - current0, 100000 + 10000 + 7);
  ASSERT_EQ(leak_tracer_reset_peak(), 0);
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(peak, current);
  /* realloc: the trace moves and takes the new size */
  void *moved = PyObject_Realloc(b, 500000);
  ASSERT(moved != NULL);
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(current - current0, 500000 + 7);
  ASSERT_EQ(peak, current);
  /* a realloc that fails keeps the block and its trace */
  void *failed = PyMem_RawRealloc(c, FAILING_SIZE);
  ASSERT(failed == NULL);
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(current - current0, 500000 + 7);
  PyObject_Free(moved);
  PyMem_RawFree(c);
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(current, current0);
  /* clear forgets traces and counters but keeps tracing */
  void *d = PyMem_Malloc(4096);
  ASSERT_EQ(leak_tracer_clear(), 0);
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(current, 0);
  ASSERT_EQ(peak, 0);
  ASSERT_EQ(leak_tracer_is_tracing(), 1);
  PyMem_Free(d); /* untraced now: must not underflow */
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(current, 0);
  void *e = PyMem_Malloc(4096);
  leak_tracer_traced_memory(&current, &peak);
  ASSERT_EQ(current, 4096);
  PyMem_Free(e);
  ASSERT_EQ(leak_tracer_stop(), 0);
  return 0;
}

/* With updates queued (a big table), a realloc that fails keeps its block's trace: the removal it
 * queued is called off. */
TEST(tracer_failed_realloc_keeps_its_trace_while_updates_are_queued) {
  start_over_failing_raw();
  ASSERT_EQ(leak_tracer_start(NULL), 0);
  enum { BALLAST = 100000 };
  void **ballast = malloc(BALLAST * sizeof(void *));
  ASSERT(ballast != NULL);
  for (int i = 0; i < BALLAST; i++) ballast[i] = PyMem_RawMalloc(8);
  size_t current0, current;
  leak_tracer_traced_memory(&current0, NULL);
  void *c = PyMem_RawMalloc(7);
  ASSERT(PyMem_RawRealloc(c, FAILING_SIZE) == NULL);
  void *d = PyMem_RawMalloc(9);
  leak_tracer_traced_memory(&current, NULL);
  ASSERT_EQ(current - current0, 7 + 9);
  uint64_t dropped = 1;
  ASSERT_EQ(leak_tracer_dropped(&dropped), 0);
  ASSERT_EQ(dropped, 0);
  void *moved = PyMem_RawRealloc(c, 5000);
  ASSERT(moved != NULL);
  leak_tracer_traced_memory(&current, NULL);
  ASSERT_EQ(current - current0, 5000 + 9);
  PyMem_RawFree(moved);
  PyMem_RawFree(d);
  for (int i = 0; i < BALLAST; i++) PyMem_RawFree(ballast[i]);
  free(ballast);
  leak_tracer_traced_memory(&current, NULL);
  ASSERT(current <= current0 - BALLAST * 8);
  ASSERT_EQ(leak_tracer_stop(), 0);
  return 0;
}

/* Exact mode queues its table updates once the table is big (tracer/pending.h; here from the
 * first update, by the test hook) and applies them in order; every reader sees them applied.  A
 * random run of allocations, frees and reallocs in three domains, with no read in between, must
 * leave each live block's trace with its size and line; an address freed and handed out again
 * inside the queue's window must keep its new trace; and the peak must count a block that came and
 * went between two reads. */
TEST(tracer_queued_updates_keep_the_allocators_order) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("import random\n"
                            "_tprobe.queue_from(0)\n"
                            "assert _tprobe.start(1) == 0\n"
                            "rng = random.Random(7)\n"
                            "live, model = [], {}\n"
                            "for i in range(4000):\n"
                            "    r = rng.random()\n"
                            "    if r < 0.5 or not live:\n"
                            "        kind = rng.choice(('raw', 'mem', 'obj'))\n"
                            "        size = rng.choice((8, 24, 100, 600, 5000))\n"
                            "        addr = _tprobe.alloc(kind, size); line = here()\n"
                            "        live.append((kind, addr)); model[addr] = (size, line)\n"
                            "    elif r < 0.85:\n"
                            "        kind, addr = live.pop(rng.randrange(len(live)))\n"
                            "        _tprobe.free(kind, addr); del model[addr]\n"
                            "    else:\n"
                            "        j = rng.randrange(len(live)); kind, addr = live[j]\n"
                            "        size = rng.choice((16, 300, 7000))\n"
                            "        new = _tprobe.realloc(kind, addr, size); line = here()\n"
                            "        del model[addr]; model[new] = (size, line); live[j] = (kind, new)\n"
                            "traces = {addr: size for addr, size, domain in _tprobe.traces() if domain == 0}\n"
                            "for addr, (size, line) in model.items():\n"
                            "    assert traces.get(addr) == size, (addr, size, traces.get(addr))\n"
                            "    t = _tprobe.trace(addr)\n"
                            "    assert t[2] == [('<module>', line)], (t, line)\n"
                            "n, total, count, current = _tprobe.consistency()\n"
                            "assert n == count and total == current, (n, count, total, current)\n"
                            "for kind, addr in live: _tprobe.free(kind, addr)\n"
                            "for addr in model: assert _tprobe.trace(addr) is None, addr\n"
                            /* the same address again, freed and reused with no read in between */
                            "reused = 0\n"
                            "for i in range(200):\n"
                            "    a = _tprobe.alloc('obj', 440)\n"
                            "    _tprobe.free('obj', a)\n"
                            "    b = _tprobe.alloc('obj', 440); line = here()\n"
                            "    t = _tprobe.trace(b)\n"
                            "    assert t is not None and t[0] == 440 and t[2] == [('<module>', line)], (t, line)\n"
                            "    reused += a == b\n"
                            "    _tprobe.free('obj', b)\n"
                            "assert reused > 100, reused\n"
                            /* the peak of a block that came and went between two reads */
                            "current0 = _tprobe.counters()[0]\n"
                            "big = _tprobe.alloc('mem', 3000000)\n"
                            "_tprobe.free('mem', big)\n"
                            "small = _tprobe.alloc('mem', 10)\n"
                            "current, peak = _tprobe.counters()[:2]\n"
                            "assert peak >= current0 + 3000000 and current < current0 + 3000000, (current0, current, peak)\n"
                            "_tprobe.free('mem', small)\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

/* A thread reuses the id of its last one-frame stack (trace_block) only while the stack table is the
 * one that gave it: after a clear that emptied the table, the same site is interned again. */
TEST(tracer_last_stack_is_reused_only_within_its_table) {
  tracer_probe_start_python();
  /* nothing is allocated between the two calls of f but the clear: f's stack is the thread's last */
  ASSERT_EQ(test_python_run("assert _tprobe.start(1) == 0\n"
                            "def f():\n"
                            "    return _tprobe.alloc('mem', 100)\n"
                            "line = f.__code__.co_firstlineno + 1\n"
                            "a = f(); b = f()\n"
                            "assert _tprobe.trace(a)[4] == _tprobe.trace(b)[4]\n" /* the same id, twice */
                            "for i in range(3):\n"
                            "    _tprobe.free('mem', f())\n"
                            "    _tprobe.clear()\n"
                            "    c = f()\n"
                            "    t = _tprobe.trace(c)\n"
                            "    assert t is not None and t[2] == [('f', line)], (t, line)\n"
                            "    _tprobe.free('mem', c)\n"
                            "_tprobe.free('mem', a); _tprobe.free('mem', b)\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

TEST(tracer_realloc_moves_the_trace_with_the_current_stack) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("assert _tprobe.start(1) == 0\n"
                            "addr = _tprobe.alloc('mem', 10)\n"
                            "first = here() - 1\n"
                            "for size in (20, 40000, 5, 1 << 20):\n"
                            "    new = _tprobe.realloc('mem', addr, size); line = here()\n"
                            "    assert new is not None\n"
                            "    t = _tprobe.trace(new)\n"
                            "    assert t[0] == size and t[2] == [('<module>', line)], (t, line)\n"
                            "    addr = new\n"
                            "_tprobe.free('mem', addr)\n"
                            "assert _tprobe.trace(addr) is None\n"
                            "r = _tprobe.realloc('obj', 0, 64); line = here()\n" /* realloc(NULL) allocates */
                            "assert _tprobe.trace(r)[2] == [('<module>', line)]\n"
                            "_tprobe.free('obj', r)\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

TEST(tracer_nframe_limits_and_truncation) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("sys.setrecursionlimit(5000)\n"
                            "def down(n, kind, size):\n"
                            "    if n == 0:\n"
                            "        return _tprobe.alloc(kind, size)\n"
                            "    return down(n - 1, kind, size)\n"
                            "def depth_of_python_stack():\n"
                            "    f, n = sys._getframe(), 0\n"
                            "    while f is not None:\n"
                            "        n += 1; f = f.f_back\n"
                            "    return n\n"
                            "base = depth_of_python_stack() - 1\n" /* frames below down() */
                            "for nframe in (1, 10, 100, 1024):\n"
                            "    assert _tprobe.start(nframe) == 0\n"
                            "    for depth in (0, 5, 50, 200, 1100):\n"
                            "        addr = down(depth, 'obj', 48)\n"
                            "        size, weight, frames, depth_seen, _ = _tprobe.trace(addr)\n"
                            "        real = depth + 1 + base\n"
                            "        assert len(frames) == min(nframe, real), (nframe, depth, len(frames))\n"
                            "        assert depth_seen == real, (nframe, depth, depth_seen, real)\n"
                            "        assert all(name == 'down' for name, _ in frames[:depth + 1])\n"
                            "        _tprobe.free('obj', addr)\n"
                            "    _tprobe.stop()\n"),
            0);
  return 0;
}

TEST(tracer_same_site_same_stack_id) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("assert _tprobe.start(3) == 0\n"
                            "def loop():\n"
                            "    out = []\n"
                            "    for i in range(100):\n"
                            "        out.append(_tprobe.alloc('mem', 100 + i))\n"
                            "    out.append(_tprobe.alloc('mem', 100))\n"
                            "    return out\n"
                            "addrs, again = [loop() for _ in range(2)]\n"
                            "ids = set(_tprobe.trace(a)[4] for a in addrs[:100])\n"
                            "assert len(ids) == 1, ids\n"
                            "assert _tprobe.trace(addrs[100])[4] not in ids\n"
                            "assert _tprobe.trace(again[0])[4] in ids\n"
                            "for a in addrs + again:\n"
                            "    _tprobe.free('mem', a)\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

TEST(tracer_raw_without_gil_uses_known_stacks_only) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("assert _tprobe.start(4) == 0\n"
                            "def f():\n"
                            "    out = []\n"
                            "    for kind in ('raw', 'raw_nogil'):\n"
                            "        out.append(_tprobe.alloc(kind, 5000))\n"
                            "    return out\n"
                            "with_gil, without_gil = f()\n"
                            "a, b = _tprobe.trace(with_gil), _tprobe.trace(without_gil)\n"
                            "assert a[2][0][0] == 'f' and a[4] == b[4], (a, b)\n"
                            "def g():\n"
                            "    return _tprobe.alloc('raw_nogil', 5000)\n"
                            "c = g()\n"
                            "assert _tprobe.trace(c)[2] == [] and _tprobe.trace(c)[4] == 0\n"
                            "for x, k in ((with_gil, 'raw'), (without_gil, 'raw'), (c, 'raw')):\n"
                            "    _tprobe.free(k, x)\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

TEST(tracer_out_of_memory_drops_traces_not_allocations) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("assert _tprobe.start(2) == 0\n"
                            "_tprobe.fail_after(0)\n"
                            "addrs = []\n"
                            "for i in range(5000):\n"
                            "    addrs.append(_tprobe.alloc('mem', 64 + i % 7))\n"
                            "    addrs.append(_tprobe.alloc('obj', 100))\n"
                            "objs = [str(i) * 10 for i in range(20000)]\n"
                            "_tprobe.fail_after(-1)\n"
                            "current, peak, count, dropped, memory = _tprobe.counters()\n"
                            "assert dropped > 0, dropped\n"
                            "assert all(a != 0 for a in addrs) and len(objs) == 20000\n"
                            "traced = sum(1 for a in addrs if _tprobe.trace(a) is not None)\n"
                            "assert traced < len(addrs), traced\n"
                            "n, total, count, current = _tprobe.consistency()\n" /* counters match the table */
                            "assert n == count and total == current, (n, count, total, current)\n"
                            "for a in addrs[::2]:\n"
                            "    _tprobe.free('mem', a)\n"
                            "for a in addrs[1::2]:\n"
                            "    _tprobe.free('obj', a)\n"
                            "del objs\n"
                            "x = _tprobe.alloc('mem', 12345)\n" /* tracing works again */
                            "assert _tprobe.trace(x)[0] == 12345\n"
                            "_tprobe.free('mem', x)\n"
                            "n, total, count, current = _tprobe.consistency()\n"
                            "assert n == count and total == current, (n, count, total, current)\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

/* Runs __main__.child() in a child forked by os.fork() and returns its exit code. */
static int child_status_after_fork(void) {
  int status = 0;
  ASSERT_EQ(test_python_run("import os\n"
                            "pid = os.fork()\n"
                            "if pid == 0:\n"
                            "    code = 0\n"
                            "    try:\n"
                            "        code = child()\n"
                            "    finally:\n"
                            "        os._exit(code)\n"
                            "_, status = os.waitpid(pid, 0)\n"
                            "child_status = os.waitstatus_to_exitcode(status) if hasattr(os, 'waitstatus_to_exitcode') else status >> 8\n"),
            0);
  PyObject *main_module = PyImport_AddModule("__main__");
  PyObject *value = PyObject_GetAttrString(main_module, "child_status");
  ASSERT(value != NULL);
  status = (int)PyLong_AsLong(value);
  Py_DECREF(value);
  return status;
}

TEST(tracer_fork_child_continues_with_clean_tables) {
  tracer_probe_start_python();
  /* Under ASan the churn allocates only with the GIL, which fork holds: see TEST_ASAN. */
  ASSERT_EQ(test_python_run(TEST_ASAN ? "raw_domain = 'raw'\n" : "raw_domain = 'raw_nogil'\n"), 0);
  ASSERT_EQ(test_python_run("import threading\n"
                            "assert _tprobe.start(3) == 0\n"
                            "held = [_tprobe.alloc('mem', 1000) for _ in range(100)]\n"
                            "stop = False\n"
                            "def churn():\n" /* other threads allocate (with and without the GIL) during fork */
                            "    while not stop:\n"
                            "        a = _tprobe.alloc(raw_domain, 64); _tprobe.free(raw_domain, a)\n"
                            "        x = [str(i) for i in range(50)]\n"
                            "threads = [threading.Thread(target=churn) for _ in range(3)]\n"
                            "for t in threads: t.start()\n"
                            "def child():\n"
                            "    current, peak, count, dropped, memory = _tprobe.counters()\n"
                            "    if count >= len(held): return 10\n"
                            "    if any(_tprobe.trace(h) is not None for h in held): return 11\n"
                            "    a = _tprobe.alloc('mem', 4321); line = here()\n"
                            "    t = _tprobe.trace(a)\n"
                            "    if t is None or t[0] != 4321 or t[2][0] != ('child', line): return 12\n"
                            "    _tprobe.free('mem', held[0])\n" /* parent's block: untraced here */
                            "    _tprobe.free('mem', a)\n"
                            "    if _tprobe.trace(a) is not None: return 13\n"
                            "    return 0\n"),
            0);
  for (int i = 0; i < 20; i++) ASSERT_EQ(child_status_after_fork(), 0);
  ASSERT_EQ(test_python_run("stop = True\n"
                            "for t in threads: t.join()\n"
                            "assert _tprobe.trace(held[0])[0] == 1000\n" /* the parent keeps its traces */
                            "for a in held: _tprobe.free('mem', a)\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

TEST(tracer_fork_child_stops_when_asked) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("assert _tprobe.start(1, 0, 0, 1) == 0\n"
                            "def child():\n"
                            "    import _tprobe\n"
                            "    a = _tprobe.alloc('mem', 4321)\n"
                            "    if _tprobe.trace(a) is not None: return 20\n"
                            "    if _tprobe.counters()[2] != 0: return 21\n"
                            "    _tprobe.free('mem', a)\n"
                            "    if _tprobe.start(2) != 0: return 22\n" /* and can start again */
                            "    b = _tprobe.alloc('mem', 99)\n"
                            "    if _tprobe.trace(b) is None: return 23\n"
                            "    _tprobe.free('mem', b)\n"
                            "    _tprobe.stop()\n"
                            "    return 0\n"),
            0);
  ASSERT_EQ(child_status_after_fork(), 0);
  ASSERT_EQ(leak_tracer_is_tracing(), 1);
  ASSERT_EQ(leak_tracer_stop(), 0);
  return 0;
}

TEST(tracer_track_and_untrack_domains) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("assert _tprobe.track(7, 0x1000, 10) == -4001\n" /* ENOTSTARTED */
                            "assert _tprobe.untrack(7, 0x1000) == -4001\n"
                            "assert _tprobe.start(2) == 0\n"
                            "def ours():\n"
                            "    return {(a, s, d) for a, s, d in _tprobe.traces() if a in (0x5000, 0x6000)}\n"
                            "def consistent():\n"
                            "    n, total, count, current = _tprobe.consistency()\n"
                            "    return n == count and total == current\n"
                            "assert _tprobe.track(7, 0, 10) == -22\n" /* EINVAL */
                            "assert _tprobe.track(7, 1 << 60, 10) == -22\n"
                            "assert _tprobe.track(389047, 0x5000, 1000) == 0; line = here()\n"
                            "assert _tprobe.track(7, 0x5000, 20) == 0\n"
                            "assert _tprobe.track(0, 0x5000, 3) == 0\n"
                            "assert _tprobe.track(7, 0x6000, 5 << 32, True) == 0\n" /* big, without the GIL */
                            "t = _tprobe.trace(0x5000, 389047)\n"
                            "assert t[0] == 1000 and t[2][0] == ('<module>', line), t\n"
                            "assert _tprobe.trace(0x5000, 7)[0] == 20\n"
                            "assert _tprobe.trace(0x5000, 0)[0] == 3\n"
                            "assert _tprobe.trace(0x6000, 7)[0] == 5 << 32\n"
                            "assert ours() == {(0x5000, 1000, 389047), (0x5000, 20, 7), (0x5000, 3, 0), (0x6000, 5 << 32, 7)}\n"
                            "assert consistent()\n"
                            "assert _tprobe.track(7, 0x5000, 50) == 0\n" /* tracking again replaces */
                            "assert ours() == {(0x5000, 1000, 389047), (0x5000, 50, 7), (0x5000, 3, 0), (0x6000, 5 << 32, 7)}\n"
                            "assert consistent()\n"
                            "assert _tprobe.untrack(7, 0x5000) == 0\n"
                            "assert _tprobe.untrack(7, 0x5000) == 0\n" /* unknown: not an error */
                            "assert _tprobe.untrack(12345, 0x5000) == 0\n"
                            "assert _tprobe.trace(0x5000, 7) is None\n"
                            "assert _tprobe.trace(0x5000, 389047)[0] == 1000\n"
                            "for d, p in ((389047, 0x5000), (0, 0x5000), (7, 0x6000)):\n"
                            "    assert _tprobe.untrack(d, p) == 0\n"
                            "assert ours() == set() and consistent()\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

TEST(tracer_object_allocation_site) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("assert _tprobe.start(2) == 0\n"
                            "class Plain:\n"
                            "    pass\n"
                            "class Slotted:\n"
                            "    __slots__ = ('a',)\n"
                            "def make():\n"
                            /* types without freelists, GC and not, with and without a managed dict */
                            "    a = lambda: 0; la = here()\n"
                            "    b = Plain(); lb = here()\n"
                            "    c = Slotted(); lc = here()\n"
                            "    d = b'x' * 5000; ld = here()\n"
                            "    e = bytearray(100); le = here()\n"
                            "    return [(a, la), (b, lb), (c, lc), (d, ld), (e, le)]\n"
                            "for obj, line in make():\n"
                            "    got = _tprobe.object_trace(obj)\n"
                            "    assert got is not None, type(obj)\n"
                            "    assert got[0][0] == ('make', line), (type(obj), got, line)\n"
                            "assert _tprobe.object_trace(int) is None\n" /* static type: never allocated */
                            "if sys.version_info >= (3, 13):\n"
                            "    # a float from the freelist gets its new site\n"
                            "    f = 1.5\n"
                            "    drain = [f * i for i in range(300)]\n" /* freelist now holds traced blocks */
                            "    del drain\n"
                            "    y = f * 7.0; ly = here()\n"
                            "    t = _tprobe.object_trace(y)\n"
                            "    assert t is not None and t[0][0] == ('<module>', ly), (t, ly)\n"
                            "_tprobe.stop()\n"),
            0);
  return 0;
}

#if PY_VERSION_HEX >= 0x030D0000
/* 3.13+: the reference tracer found at start keeps running while we trace and is put back at stop. */
static long other_tracer_calls;
static int other_tracer(PyObject *obj, PyRefTracerEvent event, void *data) {
  (void)obj, (void)event;
  if (data == &other_tracer_calls) other_tracer_calls++;
  return 0;
}
#endif

TEST(tracer_ref_tracer_chained_and_restored) {
#if PY_VERSION_HEX >= 0x030D0000
  tracer_probe_start_python();
  ASSERT_EQ(PyRefTracer_SetTracer(other_tracer, &other_tracer_calls), 0);
  ASSERT_EQ(leak_tracer_start(NULL), 0);
  long before = other_tracer_calls;
  ASSERT_EQ(test_python_run("x = [str(i) for i in range(100)]\n"), 0);
  ASSERT_GT(other_tracer_calls, before + 100);
  ASSERT_EQ(leak_tracer_stop(), 0);
  void *data = NULL;
  ASSERT(PyRefTracer_GetTracer(&data) == other_tracer);
  ASSERT(data == &other_tracer_calls);
  PyRefTracer_SetTracer(NULL, NULL);
  return 0;
#else
  return TEST_SKIP("PyRefTracer exists from CPython 3.13");
#endif
}

TEST(tracer_copy_pins_stacks_across_clear_and_stop) {
  tracer_probe_start_python();
  ASSERT_EQ(test_python_run("assert _tprobe.start(3) == 0\n"
                            "def f():\n"
                            "    return _tprobe.alloc('mem', 777)\n"
                            "a = f()\n"),
            0);
  leak__trace_copy *copy;
  size_t count;
  ASSERT_EQ(leak__tracer_copy_traces(&copy, &count), 0);
  ASSERT_GT(count, 0);
  leak__stack_id id = 0;
  for (size_t i = 0; i < count; i++)
    if (copy[i].size == 777) id = copy[i].stack;
  ASSERT_NE(id, 0);
  ASSERT_EQ(leak_tracer_clear(), 0);
  ASSERT_EQ(leak_tracer_stop(), 0);
  const leak__frame *frames;
  int nframe, truncated;
  ASSERT_EQ(leak__stacks_lookup(id, &frames, &nframe, &truncated), 0);
  ASSERT_EQ(nframe, 2);
  ASSERT_STR_CONTAINS(PyUnicode_AsUTF8(frames[0].code->co_name), "f");
  leak__free(copy);
  leak__stacks_unpin();
  ASSERT_EQ(leak_tracer_start(NULL), 0); /* unpinned: this start frees the old stacks */
  ASSERT_EQ(leak__stacks_count(), 0);
  ASSERT_EQ(leak_tracer_stop(), 0);
  return 0;
}

TEST(tracer_memory_is_reported_and_compact) {
  tracer_probe_start_python();
  ASSERT_EQ(leak_tracer_start(NULL), 0);
  size_t empty, full;
  ASSERT_EQ(leak_tracer_memory(&empty), 0);
  ASSERT_GT(empty, 0);
  enum { N = 1000000 };
  void **blocks = malloc(N * sizeof(void *));
  ASSERT(blocks != NULL);
  size_t before = leak__tracer_trace_count();
  for (int i = 0; i < N; i++) blocks[i] = PyObject_Malloc(16);
  ASSERT_EQ(leak__tracer_trace_count() - before, N);
  ASSERT_EQ(leak_tracer_memory(&full), 0);
  double per_block = (double)(full - empty) / N;
  fprintf(stderr, "# tracer memory per live block: %.1f bytes\n", per_block);
  ASSERT_LE(per_block, 32.0);
  for (int i = 0; i < N; i++) PyObject_Free(blocks[i]);
  free(blocks);
  ASSERT_EQ(leak__tracer_trace_count(), before);
  ASSERT_EQ(leak_tracer_stop(), 0);
  return 0;
}

TEST(tracer_coexists_with_tracemalloc) {
  tracer_probe_start_python();
  PyMemAllocatorEx original;
  PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &original);
  ASSERT_EQ(test_python_run("import tracemalloc\n"
                            "assert _tprobe.start(1) == 0\n"
                            "tracemalloc.start(1)\n" /* wraps our hooks */
                            "a = _tprobe.alloc('obj', 5000); line = here()\n"
                            "assert _tprobe.trace(a)[0] == 5000\n"
                            "_tprobe.stop()\n" /* must not unhook tracemalloc */
                            "b = _tprobe.alloc('obj', 6000); lb = here()\n"
                            "snap = tracemalloc.take_snapshot()\n"
                            "lines = {s.traceback[0].lineno for s in snap.statistics('lineno') if s.size >= 6000}\n"
                            "assert lb in lines, (lb, lines)\n"
                            "assert _tprobe.trace(b) is None\n"
                            "tracemalloc.stop()\n"
                            "assert _tprobe.start(1) == 0\n" /* our hook, left below, is reused */
                            "c = _tprobe.alloc('obj', 7000)\n"
                            "assert _tprobe.trace(c)[0] == 7000\n"
                            "_tprobe.stop()\n"
                            "for x in (a, b, c): _tprobe.free('obj', x)\n"),
            0);
  PyMemAllocatorEx now;
  PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &now);
  ASSERT(now.malloc == original.malloc && now.ctx == original.ctx); /* fully unhooked at the end */
  return 0;
}
