"""libleak.tracer and NumPy: array data, which NumPy reports with PyTraceMalloc_Track in domain
389047, is traced with the Python line that made it, on every thread, and agrees with tracemalloc.

Each test runs in a fresh interpreter: whether numpy is imported before or after start() matters,
and the redirected import slots are process-wide.  NumPy comes from PyPI (scripts/deps installs
it); without it these tests skip, except when LIBLEAK_REQUIRE_NUMPY or CI is set."""

import importlib.util
import json
import os

import pytest

NUMPY_MISSING = importlib.util.find_spec("numpy") is None
if NUMPY_MISSING and (os.environ.get("LIBLEAK_REQUIRE_NUMPY") or os.environ.get("CI")):
    raise RuntimeError("numpy is required here (LIBLEAK_REQUIRE_NUMPY or CI is set) but is not installed")
pytestmark = pytest.mark.skipif(
    NUMPY_MISSING, reason="numpy is not installed for this interpreter (scripts/deps installs it from PyPI)"
)

# Shared by every script: the NumPy domain, sizes per line of the script, and the first body line
# of a function (where each test puts the allocation it looks for).
PRELUDE = """
import json, sys, threading
import libleak.tracer as tracer
DOMAIN = 389047

# Bytes per line of this script, each trace counted at its most recent frame in the script (so
# np.ones, whose buffer is made inside numpy's Python code, counts at the line that called it).
def line_sizes(snapshot):
    sizes = {}
    for trace in snapshot.traces:
        for frame in reversed(list(trace.traceback)):
            if frame.filename == "<string>":
                sizes[frame.lineno] = sizes.get(frame.lineno, 0) + trace.size
                break
    return sizes

def line_of(function):
    return function.__code__.co_firstlineno + 1

def report(**values):
    print("RESULT " + json.dumps(values))
"""


def run_script(python, body):
    """Runs PRELUDE + body in a fresh interpreter and returns what it passed to report()."""
    result = python(PRELUDE + body, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, result.stdout + result.stderr
    return json.loads(lines[0][len("RESULT "):])


def assert_close(actual, expected, what):
    """Within 1% of the expected bytes."""
    assert abs(actual - expected) <= expected / 100, "%s: %d bytes traced, %d expected" % (what, actual, expected)


def test_each_allocating_line_holds_its_arrays_bytes_and_freeing_drops_them(python):
    values = run_script(python, """
import numpy as np
tracer.start(10)

def zeros():
    return np.zeros(10**7)
def ones():
    return np.ones(3 * 10**6, dtype=np.int32)
def empty_filled():
    a = np.empty((1000, 2000)); a.fill(2.5)
    return a
def grown():
    a = np.zeros(0)
    for _ in range(8): a = np.concatenate([a, np.ones(10**6)])
    return a
def resized():
    a = np.zeros(10**6)
    a.resize(6 * 10**6, refcheck=False)
    return a

functions = [zeros, ones, empty_filled, grown, resized]
arrays = [f() for f in functions]
held = line_sizes(tracer.take_snapshot())
traced_before_free = tracer.get_traced_memory()[0]
resize_first_line = held.get(line_of(resized), 0)
nbytes = [a.nbytes for a in arrays]
del arrays
after_free = line_sizes(tracer.take_snapshot())
report(
    names=[f.__name__ for f in functions],
    held=[held.get(line_of(f) + (1 if f is grown else 0) + (1 if f is resized else 0), 0) for f in functions],
    freed=[after_free.get(line_of(f) + (1 if f is grown else 0) + (1 if f is resized else 0), 0) for f in functions],
    nbytes=nbytes, resize_first_line=resize_first_line,
    traced_before_free=traced_before_free, traced_after_free=tracer.get_traced_memory()[0])
""")
    for name, held, freed, nbytes in zip(values["names"], values["held"], values["freed"], values["nbytes"]):
        assert_close(held, nbytes, name)
        assert freed < nbytes / 100, "%s: %d bytes still traced after del" % (name, freed)
    # The realloc moved the trace to the line of resize(): the np.zeros line above it keeps nothing.
    assert values["resize_first_line"] < 10**6 * 8 / 100
    assert values["traced_before_free"] - values["traced_after_free"] >= sum(values["nbytes"]) * 0.99


def test_domain_filter_selects_numpy_buffers_and_nothing_is_counted_twice(python):
    values = run_script(python, """
import numpy as np
tracer.start(1)
before = tracer.get_traced_memory()[0]
arrays = [np.zeros(10**7), np.ones(5 * 10**6), np.full(2 * 10**6, 7, dtype=np.int16)]
total = tracer.get_traced_memory()[0] - before
snapshot = tracer.take_snapshot()
numpy_only = snapshot.filter_traces([tracer.DomainFilter(True, DOMAIN)])
without_numpy = snapshot.filter_traces([tracer.DomainFilter(False, DOMAIN)])
report(
    nbytes=sum(a.nbytes for a in arrays), total=total,
    numpy_domains=sorted({t.domain for t in numpy_only.traces}),
    numpy_size=sum(t.size for t in numpy_only.traces),
    numpy_big=sorted(t.size for t in numpy_only.traces if t.size >= 10**6),
    other_domains=sorted({t.domain for t in without_numpy.traces}),
    other_size=sum(t.size for t in without_numpy.traces),
    all_size=sum(t.size for t in snapshot.traces))
""")
    nbytes = values["nbytes"]
    assert values["numpy_domains"] == [389047]
    assert values["numpy_big"] == sorted([8 * 10**7, 4 * 10**7, 4 * 10**6])
    assert_close(values["numpy_size"], nbytes, "domain 389047")
    assert values["other_size"] < nbytes / 100
    assert 389047 not in values["other_domains"]
    assert values["numpy_size"] + values["other_size"] == values["all_size"]
    # Traced once: the arrays' data in domain 389047, never again in Python's domain 0.
    assert nbytes <= values["total"] <= nbytes * 1.01


def test_arrays_made_in_other_threads_are_traced(python):
    values = run_script(python, """
import numpy as np
results = []
go = threading.Event()

def worker():
    go.wait()
    results.append(np.zeros(4 * 10**6))
def early_worker():
    go.wait()
    results.append(np.ones(2 * 10**6))

# One thread exists before tracing starts, one is started after.
early = threading.Thread(target=early_worker)
early.start()
tracer.start(10)
late = threading.Thread(target=worker)
late.start()
go.set()
early.join(); late.join()
held = line_sizes(tracer.take_snapshot())
report(late=held.get(line_of(worker) + 1, 0), early=held.get(line_of(early_worker) + 1, 0))
""")
    assert_close(values["late"], 4 * 10**6 * 8, "thread started after start()")
    assert_close(values["early"], 2 * 10**6 * 8, "thread started before start()")


def test_top_lines_agree_with_tracemalloc(python):
    values = run_script(python, """
import tracemalloc
import numpy as np

def allocate():
    a = np.zeros(10**7)
    b = np.ones(5 * 10**6)
    c = np.empty(2 * 10**6); c.fill(1)
    return a, b, c

def top_lines(module):
    module.start(1)
    arrays = allocate()
    snapshot = module.take_snapshot()
    module.stop()
    return top(snapshot)

def top(snapshot):
    return [(s.traceback[0].filename, s.traceback[0].lineno, s.size) for s in snapshot.statistics("lineno")[:3]]

first = top_lines(tracemalloc)
second = top_lines(tracer)
# Both at once: libleak calls CPython's function after its own, so tracemalloc still sees them.
tracer.start(1)
tracemalloc.start(1)
arrays = allocate()
both_tracemalloc = top(tracemalloc.take_snapshot())
both_libleak = top(tracer.take_snapshot())
tracemalloc.stop()
tracer.stop()
report(tracemalloc=first, libleak=second, both_tracemalloc=both_tracemalloc, both_libleak=both_libleak,
       first_line=line_of(allocate))
""")
    # With one frame, np.ones's buffer counts at the line inside numpy that made it, for both tools.
    first = values["first_line"]
    assert [row[:2] for row in values["tracemalloc"]][0] == ["<string>", first]
    assert ["<string>", first + 2] in [row[:2] for row in values["tracemalloc"]]
    for reference, other in (("tracemalloc", "libleak"), ("both_tracemalloc", "both_libleak"),
                             ("tracemalloc", "both_tracemalloc")):
        assert [row[:2] for row in values[other]] == [row[:2] for row in values[reference]], values
        for (_, _, expected), (_, _, actual) in zip(values[reference], values[other]):
            assert_close(actual, expected, "%s against %s" % (other, reference))


def test_numpy_imported_after_start_is_traced(python):
    values = run_script(python, """
import libleak._extbuffers as extbuffers
tracer.start(10)
assert "numpy" not in sys.modules
import numpy as np

def make():
    return np.zeros(3 * 10**6)

a = make()
held = line_sizes(tracer.take_snapshot())
numpy_slots = [state for path, symbol, state in extbuffers.slots() if "numpy" in path]
report(held=held.get(line_of(make), 0), nbytes=a.nbytes, states=numpy_slots)
""")
    assert values["states"] and set(values["states"]) == {"libleak"}
    assert_close(values["held"], values["nbytes"], "numpy imported after start()")


def test_stop_puts_cpythons_functions_back(python):
    values = run_script(python, """
import tracemalloc
import libleak._extbuffers as extbuffers
from importlib.machinery import ExtensionFileLoader
import numpy as np

def numpy_states():
    return sorted({state for path, symbol, state in extbuffers.slots() if "numpy" in path})

loader_before = ExtensionFileLoader.create_module
tracer.start(1)
during = numpy_states()
loader_during = ExtensionFileLoader.create_module is not loader_before
tracer.stop()
after = numpy_states()
loader_after = ExtensionFileLoader.create_module is loader_before

# After stop, NumPy calls CPython's function directly: tracemalloc alone sees the array.
tracemalloc.start(1)
a = np.zeros(10**6)
seen_by_tracemalloc = sum(t.size for t in tracemalloc.take_snapshot().traces if t.domain == DOMAIN)
tracemalloc.stop()

# A second start redirects again.
tracer.start(1)
again = numpy_states()
b = np.zeros(10**6)
again_size = sum(t.size for t in tracer.take_snapshot().traces if t.domain == DOMAIN)
tracer.stop()
report(during=during, after=after, again=again, loader_during=loader_during, loader_after=loader_after,
       seen_by_tracemalloc=seen_by_tracemalloc, again_size=again_size)
""")
    assert values["during"] == ["libleak"]
    assert values["after"] == ["original"]
    assert values["again"] == ["libleak"]
    assert values["loader_during"] and values["loader_after"]
    assert values["seen_by_tracemalloc"] >= 8 * 10**6
    assert_close(values["again_size"], 8 * 10**6, "after a restart")


def test_sampled_tracing_weighs_numpy_buffers(python):
    values = run_script(python, """
import numpy as np
tracer.start(10, sample_bytes=512 * 1024)

def make():
    return [np.zeros(2 * 10**6) for _ in range(20)]

arrays = make()
held = line_sizes(tracer.take_snapshot())
report(held=held.get(line_of(make), 0), nbytes=sum(a.nbytes for a in arrays))
""")
    # Blocks of 16 MB against a 512 KiB mean interval: each is sampled, with a weight of ~1.
    assert_close(values["held"], values["nbytes"], "sampled")


def test_a_loader_wrapped_by_another_tool_after_start_is_left_in_place(python):
    values = run_script(python, """
import libleak._extbuffers as extbuffers
from importlib.machinery import ExtensionFileLoader
import numpy as np

tracer.start(10)
ours = ExtensionFileLoader.create_module
loaded = []
def other_tool(self, spec):
    loaded.append(spec.name)
    return ours(self, spec)
ExtensionFileLoader.create_module = other_tool
tracer.stop()
kept = ExtensionFileLoader.create_module is other_tool
# An extension module not loaded yet goes through both wrappers, ours passing through.
import importlib, importlib.util
fresh = next(name for name in ("mmap", "_bz2", "_lzma", "resource", "termios", "_multibytecodec", "_csv")
             if name not in sys.modules and isinstance(getattr(importlib.util.find_spec(name), "loader", None),
                                                       ExtensionFileLoader))
importlib.import_module(fresh)
states_stopped = sorted({state for path, symbol, state in extbuffers.slots() if "numpy" in path})
tracer.start(10)
not_rewrapped = ExtensionFileLoader.create_module is other_tool

def make():
    return np.zeros(10**6)
a = make()
held = line_sizes(tracer.take_snapshot()).get(line_of(make), 0)
tracer.stop()
report(kept=kept, loaded=loaded, fresh=fresh, states_stopped=states_stopped, not_rewrapped=not_rewrapped, held=held)
""")
    assert values["kept"] and values["not_rewrapped"]
    assert values["loaded"] == [values["fresh"]]
    assert values["states_stopped"] == ["original"]
    assert_close(values["held"], 8 * 10**6, "restarted under another tool's wrapper")
