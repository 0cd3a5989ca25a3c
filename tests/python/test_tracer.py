"""libleak.tracer: every API function, tracemalloc's semantics on constructed snapshots (checked
against tracemalloc itself), files, bad inputs, and live tracing compared with tracemalloc."""

import collections
import json
import os
import sys
import textwrap
import tracemalloc

import pytest

import libleak
import libleak.tracer as tracer
from libleak import _libleak

HAS_TOTAL_NFRAME = sys.version_info >= (3, 9)


@pytest.fixture
def tracing():
    """Traces with 5 frames for the duration of a test."""
    tracer.start(5)
    yield
    tracer.stop()


# ---- The tracing functions ---------------------------------------------------------------------


def test_start_stop_and_limits():
    assert not tracer.is_tracing()
    assert tracer.get_traced_memory() == (0, 0)
    tracer.start(7)
    try:
        assert tracer.is_tracing()
        assert tracer.get_traceback_limit() == 7
        tracer.start(3)  # already tracing: nothing changes, as in tracemalloc
        assert tracer.get_traceback_limit() == 7
    finally:
        tracer.stop()
    assert not tracer.is_tracing()
    tracer.start()
    try:
        assert tracer.get_traceback_limit() == 1
    finally:
        tracer.stop()


def test_traced_memory_peak_and_clear(tracing):
    data = [bytes(10000) for _ in range(100)]
    current, peak = tracer.get_traced_memory()
    assert current >= 100 * 10000
    assert peak >= current
    del data
    current2, peak2 = tracer.get_traced_memory()
    assert current2 < current - 900000
    assert peak2 >= current
    tracer.reset_peak()
    assert tracer.get_traced_memory()[1] < peak2
    assert tracer.get_tracemalloc_memory() > 0
    assert tracer.get_tracer_memory is tracer.get_tracemalloc_memory
    assert tracer.get_dropped_traces() == 0
    tracer.clear_traces()
    assert tracer.is_tracing()
    assert tracer.get_traced_memory()[0] < current2 + 100000


def test_take_snapshot_sees_a_line(tracing):
    def allocate():
        return [bytearray(5000) for _ in range(200)]  # the line we look for

    line = allocate.__code__.co_firstlineno + 1
    before = tracer.take_snapshot()
    kept = allocate()
    after = tracer.take_snapshot()
    assert after.traceback_limit == 5
    top = after.statistics("lineno")
    hit = [s for s in top if s.traceback[0].filename == __file__ and s.traceback[0].lineno == line]
    assert hit and hit[0].size >= 200 * 5000 and hit[0].count >= 200
    diff = after.compare_to(before, "lineno")
    grow = [d for d in diff if d.traceback[0].lineno == line and d.traceback[0].filename == __file__]
    assert grow[0].size_diff >= 200 * 5000 and grow[0].count_diff >= 200
    by_tb = after.statistics("traceback")
    assert any(len(s.traceback) >= 2 for s in by_tb)
    del kept


@pytest.mark.parametrize("nframe", [1, 2, 5, 32])
def test_one_line_reached_from_two_callers_in_turn_keeps_both_stacks(nframe):
    # The same line allocating again usually has the same whole stack, which the tracer checks
    # without hashing it again; here every other call comes from another caller at the same depth,
    # so only the frames below the innermost tell the stacks apart (and after clear_traces, the
    # stacks are stored again under new ids).
    def alloc():
        return bytearray(3000)  # the allocating line

    def via_a():
        return alloc()

    def via_b():
        return alloc()

    line = alloc.__code__.co_firstlineno + 1
    callers = {via_a.__code__.co_firstlineno + 1: "a", via_b.__code__.co_firstlineno + 1: "b"}
    tracer.start(nframe)
    try:
        for round in range(2):
            tracer.clear_traces()
            kept = []
            for _ in range(40):
                for via in (via_a, via_b, via_b):
                    kept.append(via())
            stats = tracer.take_snapshot().statistics("traceback")
            ours = [s for s in stats if s.traceback[-1].filename == __file__ and s.traceback[-1].lineno == line]
            # (a bytearray may take two blocks: its object and its buffer)
            if nframe == 1:
                assert len(ours) == 1 and ours[0].count % 120 == 0 and ours[0].size >= 120 * 3000, ours
                continue
            by_caller = {callers.get(s.traceback[-2].lineno): s for s in ours}
            assert sorted(by_caller) == ["a", "b"], ours
            a, b = by_caller["a"], by_caller["b"]
            assert b.count == 2 * a.count and a.count % 40 == 0 and a.count > 0, ours
            assert b.size == 2 * a.size and a.size >= 40 * 3000, ours
            del kept
    finally:
        tracer.stop()


def test_lines_taking_turns_at_nframe_1_keep_their_own_line_and_depth():
    # At nframe=1 the tracer remembers the ids of recent one-frame stacks by frame and depth: three
    # lines that allocate in turn, each reached at two depths, keep their own line and their own
    # depth (total_nframe), also after clear_traces stored the stacks again under new ids.
    def make(n):
        a = bytearray(1000 + n)  # line A
        b = bytearray(2000 + n)  # line B
        c = bytearray(3000 + n)  # line C
        return a, b, c

    def deeper(n):
        return make(n)

    first = make.__code__.co_firstlineno
    size_of_line = {first + 1: 1000, first + 2: 2000, first + 3: 3000}
    tracer.start(1)
    try:
        for round in range(2):
            tracer.clear_traces()
            kept = []
            for n in range(1, 31):
                kept.append(make(n))
                kept.append(deeper(n))
            buffers = [t for t in tracer.take_snapshot().traces
                       if t.traceback[0].filename == __file__ and t.traceback[0].lineno in size_of_line
                       and t.size > 1000]
            assert len(buffers) == 180, buffers
            depths = collections.defaultdict(collections.Counter)
            for t in buffers:
                base = size_of_line[t.traceback[0].lineno]
                assert base < t.size <= base + 31, (t.traceback[0].lineno, t.size)
                depths[t.traceback[0].lineno][getattr(t.traceback, "total_nframe", None)] += 1
            for line, counted in depths.items():
                if sys.version_info >= (3, 9):
                    assert sorted(counted.values()) == [30, 30], (line, counted)
                    (low, _), (high, _) = sorted(counted.items())
                    assert high == low + 1, (line, counted)
                else:
                    assert sum(counted.values()) == 60, (line, counted)
            del kept
    finally:
        tracer.stop()


class Thing:
    """Instances come from the allocator, not from a freelist (lists and dicts may be reused from
    freelists filled before tracing started; tracemalloc cannot place those either before 3.13)."""


def test_get_object_traceback(tracing):
    def make():
        return Thing(), bytes(100000)  # both allocated on this line

    line = make.__code__.co_firstlineno + 1
    for obj in make():
        tb = tracer.get_object_traceback(obj)
        assert tb is not None, type(obj)
        assert (tb[-1].filename, tb[-1].lineno) == (__file__, line)
        assert len(tb) >= 2
        if HAS_TOTAL_NFRAME:  # tracemalloc builds this Traceback from its frames alone
            assert tb.total_nframe is None
        else:  # as tracemalloc 3.8's Traceback
            assert not hasattr(tb, "total_nframe")
    tracer.stop()
    assert tracer.get_object_traceback(obj) is None
    tracer.start(5)


def test_take_snapshot_needs_tracing():
    assert not tracer.is_tracing()
    with pytest.raises(RuntimeError):
        tracer.take_snapshot()


# ---- Bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize("nframe", [0, -1, 1025, 100000])
def test_start_rejects_bad_nframe(nframe):
    with pytest.raises(ValueError, match="number of frames"):
        tracer.start(nframe)
    assert not tracer.is_tracing()


@pytest.mark.parametrize("args, kwargs", [(("5",), {}), ((1.5,), {}), ((True,), {}), ((1,), {"sample_bytes": "x"})])
def test_start_rejects_wrong_types(args, kwargs):
    with pytest.raises(TypeError):
        tracer.start(*args, **kwargs)


def test_start_rejects_negative_sample_bytes():
    with pytest.raises(ValueError, match="sample_bytes"):
        tracer.start(1, sample_bytes=-1)


def raw_trace(domain, size, frames, total_nframe):
    """A raw trace in the running interpreter's layout (3.8 has no total_nframe)."""
    return (domain, size, frames, total_nframe) if HAS_TOTAL_NFRAME else (domain, size, frames)


def make_snapshot():
    return tracer.Snapshot(
        [
            raw_trace(0, 100, (("a.py", 1), ("main.py", 10)), 2),
            raw_trace(0, 50, (("b.py", 2),), 1),
        ],
        2,
    )


def test_statistics_and_compare_reject_bad_arguments():
    snap = make_snapshot()
    with pytest.raises(ValueError, match="unknown key_type"):
        snap.statistics("function")
    with pytest.raises(ValueError, match="cumulative"):
        snap.statistics("traceback", cumulative=True)
    with pytest.raises(TypeError):
        snap.compare_to("not a snapshot", "lineno")
    with pytest.raises(TypeError):
        snap.filter_traces(5)
    with pytest.raises(TypeError):
        snap.filter_traces([5])
    with pytest.raises(TypeError):
        snap.filter_traces([tracer.Filter(True, "*", lineno="3")])
    with pytest.raises(TypeError):
        tracer.Snapshot([raw_trace(0, 1, "not frames", 1)], 1)
    with pytest.raises(TypeError):
        tracer.Snapshot([], "1")


def test_dump_and_load_errors(tmp_path):
    snap = make_snapshot()
    with pytest.raises(OSError):
        snap.dump(str(tmp_path / "no-such-dir" / "x.snap"))
    with pytest.raises(OSError):
        tracer.Snapshot.load(str(tmp_path / "missing.snap"))
    garbage = tmp_path / "garbage.snap"
    garbage.write_bytes(b"this is not a snapshot at all" * 10)
    with pytest.raises(libleak.FormatError):
        tracer.Snapshot.load(str(garbage))
    empty = tmp_path / "empty.snap"
    empty.write_bytes(b"")
    with pytest.raises(libleak.FormatError):
        tracer.Snapshot.load(str(empty))


def test_truncated_and_corrupted_files_raise_format_error(tmp_path):
    path = tmp_path / "good.snap"
    make_snapshot().dump(str(path))
    data = path.read_bytes()
    bad = tmp_path / "bad.snap"
    for cut in range(len(data)):
        bad.write_bytes(data[:cut])
        with pytest.raises(libleak.FormatError):
            tracer.Snapshot.load(str(bad))
    for i in range(len(data)):
        bad.write_bytes(data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1 :])
        with pytest.raises(libleak.FormatError):
            tracer.Snapshot.load(str(bad))
    # A pickle (what tracemalloc writes) is refused, not executed.
    pickled = tmp_path / "pickle.snap"
    tm_snapshot = tracemalloc.Snapshot([], 1)
    tm_snapshot.dump(str(pickled))
    with pytest.raises(libleak.FormatError):
        tracer.Snapshot.load(str(pickled))


def test_dump_load_round_trip(tmp_path, tracing):
    data = [str(i) * 50 for i in range(2000)]
    snap = tracer.take_snapshot()
    path = str(tmp_path / "live.snap")
    snap.dump(path)
    back = tracer.Snapshot.load(path)
    assert back.traceback_limit == snap.traceback_limit
    assert len(back.traces) == len(snap.traces)
    assert back.traces == snap.traces
    for key in ("filename", "lineno", "traceback"):
        assert back.statistics(key) == snap.statistics(key)
    assert back.compare_to(snap, "lineno")[0].size_diff == 0
    del data


# ---- tracemalloc's classes (constructed snapshots are compared in test_tracer_compat.py) ----------


def test_classes_behave_like_tracemalloc():
    raw = ((("b.py", 2), ("a.py", 1)), 3)[: 2 if HAS_TOTAL_NFRAME else 1]
    ours, theirs = tracer.Traceback(*raw), tracemalloc.Traceback(*raw)
    assert [str(f) for f in ours] == ["a.py:1", "b.py:2"]
    assert getattr(ours, "total_nframe", None) == (3 if HAS_TOTAL_NFRAME else None)
    assert str(ours) == "a.py:1"
    assert ours.format() == ['  File "a.py", line 1', '  File "b.py", line 2']
    assert ours.format(limit=1) == ['  File "b.py", line 2']
    assert ours.format(most_recent_first=True)[0] == '  File "b.py", line 2'
    assert repr(ours) == repr(theirs)
    assert ours.format(limit=-1) == theirs.format(limit=-1)
    frame = tracer.Frame(("x.py", 5))
    assert repr(frame) == "<Frame filename='x.py' lineno=5>"
    assert frame == tracer.Frame(("x.py", 5)) and frame < tracer.Frame(("y.py", 1))
    assert hash(frame) == hash(tracer.Frame(("x.py", 5)))
    assert tracer.Traceback((("b.py", 2),)) in {tracer.Traceback(*((("b.py", 2),), 9)[: len(raw)])}
    stat = tracer.Statistic(tracer.Traceback((("x.py", 5),)), 2048, 2)
    tm_stat = tracemalloc.Statistic(tracemalloc.Traceback((("x.py", 5),)), 2048, 2)
    assert str(stat) == str(tm_stat)
    diff = tracer.StatisticDiff(tracer.Traceback((("x.py", 5),)), 150000, -2048, 3, -1)
    tm_diff = tracemalloc.StatisticDiff(tracemalloc.Traceback((("x.py", 5),)), 150000, -2048, 3, -1)
    assert str(diff) == str(tm_diff)
    f = tracer.Filter(True, "foo.pyc", lineno=3)
    assert f.filename_pattern == "foo.py" and f.lineno == 3 and f.inclusive and f.domain is None
    assert isinstance(f, tracer.BaseFilter)
    d = tracer.DomainFilter(False, 5)
    assert d.domain == 5 and not d.inclusive
    snap = make_snapshot()
    trace = snap.traces[0]
    assert isinstance(trace, tracer.Trace)
    assert (trace.domain, trace.size, trace.weight) == (0, 100, 1.0)
    assert getattr(trace.traceback, "total_nframe", None) == (2 if HAS_TOTAL_NFRAME else None)
    assert len(snap.traces) == 2 and snap.traces[-1].size == 50
    assert [t.size for t in snap.traces[0:2]] == [100, 50]
    with pytest.raises(IndexError):
        snap.traces[2]
    assert snap.traces[0] in snap.traces
    assert repr(snap.traces) == "<Traces len=2>"


def test_sampled_weights_in_statistics():
    # Three traces of 10 bytes standing for 1.4 blocks each, plus an exact one of 5 bytes.
    core = _libleak.snapshot_build([(0, 10, (("s.py", 1),), 1, 1.4)] * 3 + [(0, 5, (("s.py", 1),), 1)], 1)
    snap = tracer.Snapshot._from_core(core)
    (stat,) = snap.statistics("lineno")
    assert (stat.size, stat.count) == (47, 5)
    assert snap.traces[0].weight == pytest.approx(1.4)
    # A snapshot rebuilt from the traces (whole, as Trace objects, or with another limit) keeps the
    # weights: the raw tuples of _traces have no room for them.
    for traces, limit in ((snap.traces, 1), (list(snap.traces), 1), (snap.traces, 4)):
        again = tracer.Snapshot(traces, limit)
        assert again.traceback_limit == limit
        assert [(s.size, s.count) for s in again.statistics("lineno")] == [(47, 5)]


# ---- Live tracing compared with tracemalloc ------------------------------------------------------

WORKLOAD = """
import sys, json
def strings():
    return ["x" * 3000 + str(i) for i in range(300)]
def blobs():
    return [bytes(20000) for i in range(40)]
def dicts():
    return [{"k%d" % j: j for j in range(40)} for i in range(400)]
def lists():
    return [list(range(100)) for i in range(700)]
def arrays():
    return [bytearray(7000) for i in range(90)]
class Point:
    def __init__(self, x):
        self.x = x
        self.y = [x] * 30
def points():
    return [Point(i) for i in range(3000)]
def tuples():
    return [tuple(range(i % 50, i % 50 + 60)) for i in range(900)]
def sets():
    return [set(range(i, i + 20)) for i in range(300)]
def floats():
    return [[float(i)] * 200 for i in range(250)]
def texts():
    return ["%d-%s" % (i, "abc" * 40) for i in range(2500)]
"""

# Every line of the top 10 holds at least ~250 KB, so the few blocks that freelists hand out
# differently in the two processes (CPython reuses objects freed before tracing started) stay far
# below 1%.
DRIVER = """
import sys, json
sys.path.insert(0, sys.argv[1])
MODULE
MODULE.start(1)
import workload
keep = [workload.strings(), workload.blobs(), workload.dicts(), workload.lists(), workload.arrays(),
        workload.points(), workload.tuples(), workload.sets(), workload.floats(), workload.texts()]
snap = MODULE.take_snapshot().filter_traces([MODULE.Filter(True, workload.__file__)])
print(json.dumps([[s.traceback[0].lineno, s.size, s.count] for s in snap.statistics("lineno")[:10]]))
"""


def run_workload(python, tmp_path, module_import, module_name):
    (tmp_path / "workload.py").write_text(WORKLOAD)
    source = DRIVER.replace("MODULE\n", module_import + "\n", 1).replace("MODULE", module_name)
    result = python(source, str(tmp_path))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_same_top_lines_as_tracemalloc(python, tmp_path):
    theirs = run_workload(python, tmp_path, "import tracemalloc", "tracemalloc")
    ours = run_workload(python, tmp_path, "import libleak.tracer", "libleak.tracer")
    assert len(ours) == len(theirs) == 10
    assert min(row[1] for row in theirs) > 200000, theirs
    theirs_by_line = {line: (size, count) for line, size, count in theirs}
    for line, size, count in ours:
        assert line in theirs_by_line, (ours, theirs)
        their_size, their_count = theirs_by_line[line]
        assert abs(size - their_size) <= 0.01 * their_size, (line, size, their_size)
    # The big lines come in the same order.
    assert [row[0] for row in ours[:5]] == [row[0] for row in theirs[:5]]


TRACEMALLOC_PROGRAM = """
import libleak.tracer as tracemalloc

tracemalloc.start(10)
snapshot1 = tracemalloc.take_snapshot()
cache = {i: "value %d" % i * 10 for i in range(5000)}
snapshot2 = tracemalloc.take_snapshot()
snapshot2 = snapshot2.filter_traces((
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<unknown>"),
))
top_stats = snapshot2.compare_to(snapshot1, 'lineno')
print("[ Top 3 differences ]")
for stat in top_stats[:3]:
    print(stat)
stat = snapshot2.statistics('traceback')[0]
print("%s memory blocks: %.1f KiB" % (stat.count, stat.size / 1024))
for line in stat.traceback.format():
    print(line)
current, peak = tracemalloc.get_traced_memory()
print("current", current, "peak", peak)
print("limit", tracemalloc.get_traceback_limit(), "memory", tracemalloc.get_tracer_memory() > 0)
tracemalloc.clear_traces()
tracemalloc.reset_peak()
tracemalloc.stop()
print("tracing", tracemalloc.is_tracing())
"""


def test_tracemalloc_program_runs_unchanged(python, tmp_path):
    program = tmp_path / "program.py"
    program.write_text(TRACEMALLOC_PROGRAM)
    result = python("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')", str(program))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[ Top 3 differences ]" in out
    assert "%s:6: size=" % program in out
    assert 'cache = {i: "value %d" % i * 10 for i in range(5000)}' in out
    assert "tracing False" in out


# ---- Sampling ----------------------------------------------------------------------------------


def test_sampled_estimates_within_documented_error():
    """50,000 live blocks of 1,000 bytes sampled every 8 KiB on average: each block is sampled with
    probability p = 1 - exp(-1000/8192) ~ 11.5%, about 5,700 samples, so the documented relative
    error is sqrt((1-p)/samples) ~ 1.2%; we allow 5 standard errors, and a fixed seed makes the run
    reproducible."""
    count = 50000
    kept = [None] * count
    _libleak.tracer_start(1, 8192, 12345)
    try:
        assert _libleak.tracer_sample_bytes() == 8192

        def allocate():
            for i in range(count):
                kept[i] = bytes(1000 - sys.getsizeof(b""))  # one block of exactly 1,000 bytes

        line = allocate.__code__.co_firstlineno + 2
        allocate()
        true_size = sum(sys.getsizeof(b) for b in kept)
        assert true_size == 1000 * count
        snap = tracer.take_snapshot()
        stats = [s for s in snap.statistics("lineno") if s.traceback[0].lineno == line and s.traceback[0].filename == __file__]
        assert stats, "the sampled line is missing"
        samples = sum(1 for t in snap.traces if t.traceback[0].lineno == line and t.traceback[0].filename == __file__)
        assert samples > 1000
        bound = 5 / samples ** 0.5
        assert abs(stats[0].size - true_size) <= bound * true_size, (stats[0].size, true_size, samples)
        assert abs(stats[0].count - count) <= bound * count, (stats[0].count, count)
    finally:
        tracer.stop()


def test_sampled_mode_through_start():
    tracer.start(2, sample_bytes=4096)
    try:
        data = [bytes(100000) for _ in range(50)]  # blocks far above R: always traced, weight ~1
        snap = tracer.take_snapshot()
        big = [t for t in snap.traces if t.size >= 100000 and t.traceback[-1].filename == __file__]
        assert len(big) == 50
        assert all(abs(t.weight - 1) < 1e-6 for t in big)
        # Small blocks of the same line (the list) may be sampled too, with large weights.
        (line,) = {t.traceback[-1].lineno for t in big}
        (stat,) = [s for s in snap.statistics("lineno") if (s.traceback[0].filename, s.traceback[0].lineno) == (__file__, line)]
        assert stat.size >= 50 * 100000 and stat.count >= 50
        del data
    finally:
        tracer.stop()


# ---- LIBLEAK_TRACE at interpreter start -----------------------------------------------------------


def pth_site(tmp_path):
    """A user site-packages directory under tmp_path holding libleak's .pth file."""
    version = "python%d.%d" % sys.version_info[:2]
    site_dir = tmp_path / "lib" / version / "site-packages"
    site_dir.mkdir(parents=True)
    src = os.path.join(os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")), "pybind", "libleak.pth")
    site_dir.joinpath("libleak.pth").write_text(open(src).read())
    return {"PYTHONUSERBASE": str(tmp_path), "PYTHONNOUSERSITE": ""}


def test_libleak_trace_env_starts_tracing(python, tmp_path):
    env = pth_site(tmp_path)
    env["LIBLEAK_TRACE"] = "5"
    result = python(
        """
        import sys
        import libleak.tracer as t
        print(t.is_tracing(), t.get_traceback_limit())
        x = [bytes(1000) for _ in range(100)]
        print(len(t.take_snapshot().traces) > 100)
        """,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "5", "True"], result.stdout + result.stderr


def test_pth_costs_nothing_without_the_variable(python, tmp_path):
    env = pth_site(tmp_path)
    env["LIBLEAK_TRACE"] = ""  # set but empty: off
    result = python("import sys; print('libleak' in sys.modules)", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    del env["LIBLEAK_TRACE"]
    clean = {k: v for k, v in os.environ.items() if k != "LIBLEAK_TRACE"}
    clean.update(env)
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", "import sys; print('libleak' in sys.modules)"],
        env=clean,
        stdout=subprocess.PIPE,
        universal_newlines=True,
    )
    assert out.stdout.strip() == "False"


def test_bad_libleak_trace_value_is_reported_not_fatal(python, tmp_path):
    env = pth_site(tmp_path)
    env["LIBLEAK_TRACE"] = "lots"
    result = python("import libleak.tracer as t; print(t.is_tracing())", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert "LIBLEAK_TRACE" in result.stderr


def test_docstring_examples_run(python):
    result = python(
        """
        import doctest, libleak.tracer as t
        failed, attempted = doctest.testmod(t)
        t.stop()
        print(failed, attempted)
        """
    )
    assert result.returncode == 0, result.stderr
    failed, attempted = result.stdout.split()[-2:]
    assert failed == "0" and int(attempted) >= 6, result.stdout


def test_package_reexports_take_snapshot():
    assert libleak.take_snapshot is tracer.take_snapshot


def test_snapshots_while_threads_allocate():
    """Snapshots taken, grouped and diffed while four threads allocate and free (a fixed amount of
    work, not a timed run): every snapshot is consistent and the held blocks are all found."""
    import threading

    tracer.start(3)
    stop = threading.Event()
    held = []

    def worker(n):
        local = []
        i = 0
        while not stop.is_set():
            local.append(bytes(100 + n))
            if len(local) > 2000:
                del local[:1000]
            i += 1
        held.append(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        previous = tracer.take_snapshot()
        for _ in range(30):
            snap = tracer.take_snapshot()
            stats = snap.statistics("lineno")
            assert sum(s.count for s in stats) == len(snap.traces)
            assert sum(s.size for s in stats) == sum(t.size for t in snap.traces)
            diff = snap.compare_to(previous, "traceback")
            assert sum(d.count_diff for d in diff) == len(snap.traces) - len(previous.traces)
            previous = snap
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    try:
        snap = tracer.take_snapshot()
        line = worker.__code__.co_firstlineno + 4
        mine = [s for s in snap.statistics("lineno") if s.traceback[0].filename == __file__ and s.traceback[0].lineno == line]
        assert mine and mine[0].count >= sum(len(local) for local in held)
    finally:
        tracer.stop()


def test_snapshots_pickle_through_the_file_format():
    import pickle

    snap = make_snapshot()
    back = pickle.loads(pickle.dumps(snap))
    assert isinstance(back, tracer.Snapshot)
    assert back.traces == snap.traces and back.traceback_limit == 2
    assert back.statistics("traceback") == snap.statistics("traceback")
    with pytest.raises(libleak.FormatError):
        _libleak.snapshot_decode(b"LEAKSNAP" + bytes(40))
    with pytest.raises(TypeError):
        _libleak.snapshot_decode("not bytes")
