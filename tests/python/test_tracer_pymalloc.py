"""Sampled tracing over CPython's own pymalloc leaves small-object frees unhooked: a sampled block is
asked for above pymalloc's small-request threshold, so it lives outside the pools and its free
reaches the RAW hook (libleak/tracer/tracer.c, top comment).  It costs up to 497/R of the live heap,
so only intervals R of 64 KiB or more take it.  These tests check that the shortcut is taken exactly
when it is safe, and that no trace outlives its block either way."""

import json

import pytest

# Prints, as JSON: whether OBJ/MEM/RAW free are still the functions found before start, how many
# traces the marked lines hold while their objects live and after they are freed, and how far
# sys.getallocatedblocks() moved over the whole cycle.  argv[1]: the sampling interval (0: exact).
CYCLE = r"""
import array, ctypes, gc, json, sys
import libleak.tracer as tracer
from libleak import _libleak

class Allocator(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("ctx", "malloc", "calloc", "realloc", "free")]

def allocator(domain):  # 0 RAW, 1 MEM, 2 OBJ
    found = Allocator()
    ctypes.pythonapi.PyMem_GetAllocator(ctypes.c_int(domain), ctypes.byref(found))
    return found

# The containers are made elsewhere: list and tuple objects go to freelists, not to free, on 3.8 - 3.12.
def make(small, grown, arrays):
    for i in range(300000):
        small.append(bytes(40 + i % 50))                                # OBJ malloc, pool sizes
    for i in range(3000):
        b = bytearray(8)
        for _ in range(12):
            b.extend(b"x" * 30)                                         # OBJ realloc within the pools
        grown.append(b)
    for i in range(3000):
        a = array.array("q")
        for j in range(20):
            a.append(j)                                                 # MEM realloc (its buffer)
        arrays.append(a)

MAKE_FILE = make.__code__.co_filename
MAKE_LINES = range(make.__code__.co_firstlineno + 1, make.__code__.co_firstlineno + 14)

def ours(snapshot):
    return sum(1 for t in snapshot.traces if any(f.filename == MAKE_FILE and f.lineno in MAKE_LINES for f in t.traceback))

make([], [], [])  # warm-up: pymalloc's arena table grows now, not while traced (it is never freed)
before = [allocator(d) for d in range(3)]
sample = int(sys.argv[1])
gc.collect()
blocks_before = sys.getallocatedblocks()
_libleak.tracer_start(5, sample, 7)  # nframe, interval (0: exact), seed
after = [allocator(d) for d in range(3)]
kept = ([], [], [])
make(*kept)
alive = ours(tracer.take_snapshot())
del kept
gc.collect()
freed = ours(tracer.take_snapshot())
tracer.stop()
gc.collect()
print(json.dumps({
    "free_unhooked": [after[d].free == before[d].free for d in range(3)],
    "malloc_hooked": [after[d].malloc != before[d].malloc for d in range(3)],
    "restored": [allocator(d).free == before[d].free and allocator(d).malloc == before[d].malloc for d in range(3)],
    "alive": alive, "freed": freed,
    "blocks_moved": sys.getallocatedblocks() - blocks_before,
}))
"""


def cycle(python, sample, pythonmalloc=None):
    env = {"PYTHONMALLOC": pythonmalloc} if pythonmalloc else {"PYTHONMALLOC": ""}
    done = python(CYCLE, str(sample), env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sampled_over_pymalloc_keeps_pymallocs_free_and_loses_no_free(python):
    got = cycle(python, 65536)
    # RAW keeps its free hook; MEM and OBJ keep pymalloc's free; all three mallocs are hooked.
    assert got["free_unhooked"] == [False, True, True]
    assert got["malloc_hooked"] == [True, True, True]
    assert got["restored"] == [True, True, True]
    # About 25 MiB made, a sample every 64 KiB: ~400 of the marked lines' blocks are traced...
    assert got["alive"] > 200, got
    # ...and every one of those traces went with its block, through pymalloc's free -> RAW hook.
    assert got["freed"] == 0, got
    # pymalloc counted the blocks it forwarded: no drift by one a sample either way.
    assert abs(got["blocks_moved"]) < 100, got


def test_short_intervals_keep_the_free_hooks(python):
    """Below 64 KiB the memory price would be too high (a sample every 512 bytes: up to 97%)."""
    got = cycle(python, 512)
    assert got["free_unhooked"] == [False, False, False]
    assert got["alive"] > 3000 and got["freed"] == 0, got


def test_exact_mode_hooks_every_free(python):
    got = cycle(python, 0)
    assert got["free_unhooked"] == [False, False, False]
    assert got["alive"] > 3000 and got["freed"] == 0, got


@pytest.mark.parametrize("pythonmalloc", ["malloc", "pymalloc_debug"])
def test_other_allocators_keep_the_free_hooks(python, pythonmalloc):
    """Under malloc or the debug hooks a pool-sized block is not handed to the RAW domain, so the
    shortcut would lose frees: the free hooks stay."""
    got = cycle(python, 65536, pythonmalloc)
    assert got["free_unhooked"] == [False, False, False]
    assert got["alive"] > 200 and got["freed"] == 0, got


def test_exact_start_refused_while_a_sampled_runs_hooks_are_wrapped(python):
    """tracemalloc started after a sampled run wraps its hooks, so stop cannot take them out; exact
    tracing needs free hooks they lack: refused with a clear error, and fine once tracemalloc stops."""
    done = python(r"""
        import gc, tracemalloc
        import libleak.tracer as tracer

        def make(kept):  # into a list made elsewhere (list objects go to a freelist, not to free)
            for i in range(200000):
                kept.append(bytes(40 + i % 50))

        def ours():
            code = make.__code__
            return sum(1 for t in tracer.take_snapshot().traces
                       if any(f.filename == code.co_filename and f.lineno == code.co_firstlineno + 2
                              for f in t.traceback))

        make([])  # warm-up: pymalloc's arena table grows now, not while traced

        tracer.start(1, sample_bytes=65536)
        tracemalloc.start()
        tracer.stop()
        try:
            tracer.start(1)
        except RuntimeError as e:
            print("refused:", e)
        assert not tracer.is_tracing()
        tracer.start(1, sample_bytes=65536)  # sampled is fine: the hooks it has suit it
        kept = []
        make(kept)
        del kept
        gc.collect()
        print("sampled under tracemalloc, left:", ours())
        tracer.stop()
        tracemalloc.stop()
        tracer.start(1)
        kept = []
        make(kept)
        print("exact, alive:", ours() >= 200000)
        del kept
        gc.collect()
        print("exact, left:", ours())
        tracer.stop()
    """)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused: exact tracing cannot start") and "stop that tool first" in lines[0]
    assert lines[1:] == ["sampled under tracemalloc, left: 0", "exact, alive: True", "exact, left: 0"]
