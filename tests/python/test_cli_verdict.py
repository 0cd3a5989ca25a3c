"""The verdict of `libleak run`: a pure function of the series, tested on constructed series, and
the verdict of real programs: a leak of Python objects (NumPy arrays, with their buffers named),
native memory (libc's malloc through ctypes), fragmentation of pymalloc's arenas, and a clean
program."""

import json
import os
import subprocess
import sys

import pytest

from libleak.verdict import grows_steadily, judge

# Under AddressSanitizer (scripts/test --sanitizers) RSS also counts ASan's quarantine of freed
# memory and its shadow memory, so RSS grows with any allocation: the verdicts that weigh RSS
# against live bytes are checked on normal builds only; what the run found is checked on both.
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")
PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs")
MIB = 1 << 20


def rows(rss, live, objects=None, traced=True, peaks=None):
    """A series from lists of RSS and live bytes (traced, or census bytes when traced=False)."""
    objects = objects or [10000 + i for i in range(len(rss))]
    out = []
    for i, (r, l, n) in enumerate(zip(rss, live, objects)):
        row = {"t": i * 1.0, "rss": r, "traced": l if traced else None, "objects": n, "object_bytes": l}
        if peaks is not None:
            row["traced_peak"] = peaks[i]
        out.append(row)
    return out


def test_steady_growth_rule():
    assert grows_steadily([1, 2, 3])
    assert not grows_steadily([1, 2])  # one difference is not a trend
    assert not grows_steadily([1, 2, 2])  # with two intervals, both must rise
    assert grows_steadily([1, 2, 3, 3])  # one interval in four may miss
    assert not grows_steadily([1, 2, 2, 2, 3])
    assert not grows_steadily([5, 6, 7, 8, 1])
    assert not grows_steadily([3, 3, 3, 3])


def test_python_leak_names_the_culprits_and_buffers():
    series = rows([50 * MIB + i * 3 * MIB for i in range(6)], [10 * MIB + i * 2 * MIB for i in range(6)])
    leaks = [{"type_name": "dict", "count_growth": 500, "size_growth": 4 * MIB},
             {"type_name": "app.Session", "count_growth": 500, "size_growth": 2 * MIB}]
    verdict = judge(series, baseline=1, leaks=leaks, extension_buffers=[{"module": "numpy", "size_diff": 3 * MIB}])
    assert verdict["kind"] == "python"
    assert verdict["title"] == "Python objects leak: app.Session, dict"  # classes before builtin types
    assert "app.Session (+2.0 MiB, +500 objects)" in verdict["text"]
    assert "Extension buffers that grew: numpy +3.0 MiB" in verdict["text"]
    assert "+8.0 MiB" in verdict["text"]  # traced growth from the baseline (row 1)


def test_python_growth_without_a_single_type():
    series = rows([50 * MIB + i * MIB for i in range(6)], [10 * MIB + i * MIB for i in range(6)], traced=False)
    verdict = judge(series)
    assert verdict["kind"] == "python" and verdict["title"] == "Python's live heap grows"
    assert "live objects (census)" in verdict["text"].lower()


def test_native_growth():
    series = rows([50 * MIB + i * 8 * MIB for i in range(8)], [10 * MIB + (i % 2) * 1000 for i in range(8)])
    verdict = judge(series, baseline=1)
    assert verdict["kind"] == "native"
    assert verdict["title"] == "memory grows outside Python's heap (native)"
    assert "RSS grew by 48.0 MiB, rising on 6 of 6" in verdict["text"]
    assert "No traced extension buffer" in verdict["text"]
    untraced = judge(rows([50 * MIB + i * 8 * MIB for i in range(8)], [10 * MIB] * 8, traced=False))
    assert untraced["kind"] == "native" and "measured only with --trace" in untraced["text"]


def test_native_needs_steady_and_large_growth():
    once = rows([50 * MIB] * 3 + [90 * MIB] * 5, [10 * MIB] * 8)
    verdict = judge(once, baseline=1)
    assert verdict["kind"] == "none" and "not on most sample points" in verdict["text"]
    small = rows([50 * MIB + i * 100000 for i in range(8)], [10 * MIB] * 8)
    assert judge(small)["kind"] == "none"
    explained = rows([50 * MIB + i * 4 * MIB for i in range(8)], [10 * MIB + i * 3 * MIB for i in range(8)])
    assert judge(explained)["kind"] == "python"


def test_fragmentation():
    rss = [20 * MIB, 20 * MIB, 120 * MIB, 120 * MIB, 118 * MIB, 118 * MIB]
    live = [5 * MIB, 5 * MIB, 100 * MIB, 11 * MIB, 11 * MIB, 11 * MIB]
    verdict = judge(rows(rss, live), baseline=1)
    assert verdict["kind"] == "fragmentation"
    assert "MALLOC_ARENA_MAX" in verdict["text"] and "pymalloc" in verdict["text"]
    assert "fell by 89.0 MiB" in verdict["text"]
    # The peak between two sample points, seen by the tracer's peak.
    flat = [5 * MIB, 5 * MIB, 11 * MIB, 11 * MIB, 11 * MIB, 11 * MIB]
    peaks = [5 * MIB, 5 * MIB, 100 * MIB, 100 * MIB, 100 * MIB, 100 * MIB]
    assert judge(rows(rss, flat, peaks=peaks), baseline=1)["kind"] == "fragmentation"
    # RSS that followed live bytes down is not fragmentation.
    followed = [20 * MIB, 20 * MIB, 120 * MIB, 30 * MIB, 30 * MIB, 30 * MIB]
    assert judge(rows(followed, live), baseline=1)["kind"] == "none"


def test_none_and_too_short():
    assert judge(rows([50 * MIB] * 6, [10 * MIB] * 6))["kind"] == "none"
    short = judge(rows([50 * MIB, 90 * MIB], [10 * MIB, 10 * MIB]))
    assert short["kind"] == "none" and short["title"] == "too short to judge"


def test_bad_series():
    with pytest.raises(ValueError, match="rss"):
        judge([{"t": 0, "objects": 1, "object_bytes": 1}])
    with pytest.raises(ValueError, match="baseline"):
        judge(rows([1, 2, 3], [1, 2, 3]), baseline=-1)


def run_program(tmp_path, name, *options):
    outdir = str(tmp_path / name)
    result = subprocess.run([sys.executable, "-m", "libleak", "run", "--every", "0.2", "-o", outdir] + list(options)
                            + [os.path.join(PROGRAMS, name + ".py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(outdir, "run.json")) as stream:
        return json.load(stream), result.stderr


def test_program_native_leak(tmp_path):
    run, report = run_program(tmp_path, "native_leak")
    assert run["verdict"]["kind"] == "native", report
    assert "Verdict: memory grows outside Python's heap (native)" in report
    assert run["leaks"] == [], report


def test_program_fragmentation(tmp_path):
    run, report = run_program(tmp_path, "fragmentation")
    assert run["verdict"]["kind"] == "fragmentation", report
    assert "MALLOC_ARENA_MAX" in report


def test_program_clean(tmp_path):
    run, report = run_program(tmp_path, "clean", "--trace")
    assert run["leaks"] == [], report
    if not UNDER_ASAN:
        assert run["verdict"]["kind"] == "none", report
        assert "Verdict: no leak found" in report


def test_program_numpy_arrays(tmp_path):
    pytest.importorskip("numpy")
    run, report = run_program(tmp_path, "numpy_leak", "--trace")
    assert run["verdict"]["kind"] == "python" or UNDER_ASAN, report
    assert run["leaks"][0]["type_name"] == "numpy.ndarray", report
    assert any(path.startswith("module numpy_leak: HISTORY -> list[") for path in run["leaks"][0]["paths"]), report
    (numpy_buffers,) = [b for b in run["extension_buffers"] if b["module"] == "numpy"]
    assert numpy_buffers["size_diff"] >= 10 * MIB
    assert "Extension buffers that grew: numpy +" in run["verdict"]["text"] or UNDER_ASAN


def test_holder_of_a_retention_path():
    from libleak.textreport import holder_of

    assert holder_of("module app: CACHE -> dict['k42'] -> Session.data -> bytes (5.0 MiB)") == \
        "module app: CACHE -> dict"
    assert holder_of("module app: HOOKS -> list[3] -> function (152 B)") == "module app: HOOKS -> list"
    assert holder_of("module app: log -> Logger.handlers -> list[7] -> NullHandler (56 B)") == \
        "module app: log -> Logger.handlers -> list"
    assert holder_of("module app: CACHE -> dict (a key) -> str (59 B)") == "module app: CACHE -> dict"
    assert holder_of("class app.Registry: entries -> Session (56 B)") == "class app.Registry: entries -> Session"
