"""Traceback.total_nframe: the depth of the whole stack at allocation time, exactly as tracemalloc
counts it (3.9+), in exact and in sampled mode, cut or not.  Each check runs tracemalloc and libleak
one after the other in one fresh interpreter (a shallow stack, so that tracebacks both cut and not
cut are seen) on the same allocations, and compares what each recorded for the same blocks."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 9), reason="tracemalloc has no total_nframe before 3.9")

# The child: allocates blocks of distinct sizes at known depths, through plain recursion, a
# generator, a class's __init__ (specialised calls on 3.12+ go through shim frames, which are not
# counted), a C function calling back into Python (map), and a thread; then reports, for every
# block allocated on ALLOC_LINE, its size -> (total_nframe, frames) as each tool recorded it.
CHILD = r'''
import json, sys, threading, tracemalloc
import libleak.tracer

DEPTHS = (0, 1, 2, 3, 4, 5, 6, 10, 22, 23, 24, 25, 26, 40, 120)
SIZE = 200000   # big enough that sampled mode samples every block (1 - exp(-SIZE/1024))

def alloc(size):
    return bytearray(size)  # ALLOC_LINE

def down(n, size):
    if n == 0:
        return alloc(size)
    return down(n - 1, size)

def gen(n, size):
    yield down(n, size)

class Holder:
    def __init__(self, n, size):
        self.block = down(n, size)

def workload(keep):
    size = SIZE
    for depth in DEPTHS:
        size += 16
        keep[size] = down(depth, size)
        size += 16
        keep[size] = next(gen(depth, size))
        for _ in range(3):  # repeated, so that 3.12+ specialises the call
            size += 16
            keep[size] = Holder(depth, size).block
        size += 16
        keep[size] = list(map(lambda s: down(depth, s), [size]))[0]
    size += 16
    sizes = [size]
    def in_thread():
        keep[sizes[0]] = down(7, sizes[0])
    t = threading.Thread(target=in_thread)
    t.start()
    t.join()

def record(snapshot):
    line = alloc.__code__.co_firstlineno + 1
    out = {}
    for trace in snapshot.traces:
        tb = trace.traceback
        if tb[-1].filename == __file__ and tb[-1].lineno == line and trace.size >= SIZE:
            out[trace.size] = [tb.total_nframe, [(f.filename, f.lineno) for f in tb]]
    return out

def run(tool, nframe, sample_bytes):
    module = tracemalloc if tool == "tracemalloc" else libleak.tracer
    if tool == "tracemalloc":
        tracemalloc.start(nframe)
    else:
        libleak.tracer.start(nframe, sample_bytes=sample_bytes)
    keep = {}
    workload(keep)  # one line for both tools: their frames must match
    got = record(module.take_snapshot())
    # get_object_traceback: the traceback of each bytearray's own (small) block
    objects = {}
    for size, obj in keep.items():
        tb = module.get_object_traceback(obj)
        if tb is not None:
            objects[size] = [tb.total_nframe, [(f.filename, f.lineno) for f in tb]]
    module.stop()
    del keep
    return {"snapshot": got, "objects": objects}

nframe, sample_bytes = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({"tracemalloc": run("tracemalloc", nframe, 0), "libleak": run("libleak", nframe, sample_bytes)}))
'''


def run_child(tmp_path, nframe, sample_bytes):
    # A script file run directly: its frames have a filename, and the stack under it is short.
    script = tmp_path / "depth_child.py"
    script.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(script), str(nframe), str(sample_bytes)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["tracemalloc"]["snapshot"], result["libleak"]["snapshot"]


def run_child_objects(tmp_path, nframe):
    """get_object_traceback's answers of both tools for the same objects (exact tracing)."""
    script = tmp_path / "depth_child.py"
    script.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(script), str(nframe), "0"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["tracemalloc"]["objects"], result["libleak"]["objects"]


@pytest.mark.parametrize("sample_bytes", [0, 1024], ids=["exact", "sampled"])
@pytest.mark.parametrize("nframe", [1, 5, 25])
def test_total_nframe_matches_tracemalloc(tmp_path, nframe, sample_bytes):
    expected, got = run_child(tmp_path, nframe, sample_bytes)
    # 15 depths x 6 call shapes, plus the thread
    assert len(expected) == 15 * 6 + 1, sorted(expected)
    assert sorted(got) == sorted(expected)
    for size in expected:
        want_total, want_frames = expected[size]
        total, frames = got[size]
        assert frames == want_frames, (size, frames, want_frames)
        assert total == want_total, (size, total, want_total)


@pytest.mark.parametrize("sample_bytes", [0, 1024], ids=["exact", "sampled"])
@pytest.mark.parametrize("nframe", [1, 5, 25])
def test_total_nframe_exceeds_length_exactly_when_cut(tmp_path, nframe, sample_bytes):
    _, got = run_child(tmp_path, nframe, sample_bytes)
    cut = uncut = 0
    for size, (total, frames) in got.items():
        # the traceback is cut exactly when the stack was deeper than nframe, and then says so
        assert len(frames) == min(nframe, total), (size, total, len(frames))
        cut += total > len(frames)
        uncut += total == len(frames)
    # both cases occur (the depths straddle 5 and 25; at nframe=1 every stack is deeper)
    assert cut > 0 and (uncut > 0 or nframe == 1)


@pytest.mark.parametrize("nframe", [1, 5, 25])
def test_object_traceback_total_nframe_matches_tracemalloc(tmp_path, nframe):
    """get_object_traceback gives the same frames as tracemalloc, and total_nframe as it does (None:
    tracemalloc builds that Traceback from the frames alone)."""
    expected, got = run_child_objects(tmp_path, nframe)
    assert len(expected) == 15 * 6 + 1, sorted(expected)
    assert sorted(got) == sorted(expected)
    for size in expected:
        assert got[size] == expected[size], (size, got[size], expected[size])
