"""libleak.heap.leak_check: the scenarios of real leaks it must name (with the allocating line when
the tracer runs), the interpreter's caches it must not blame, and bad input."""

import functools
import itertools
import logging
import re
import threading

import pytest

from libleak import heap, tracer

NAME = __name__


class Payload:
    def __init__(self):
        self.blob = bytearray(256)


_CACHE = {}


def fill_module_cache():
    _CACHE[len(_CACHE)] = Payload()  # the leaking line


class Service:
    @functools.lru_cache(maxsize=None)
    def lookup(self, key):
        return key * 2


def use_a_service():
    Service().lookup(1)


class Worker:
    def __init__(self):
        self.log = logging.getLogger("libleak.tests.worker")
        self.log.addHandler(logging.NullHandler())


def make_worker():
    Worker()


_THREADS = []
_STOP = threading.Event()


def start_a_thread():
    thread = threading.Thread(target=_STOP.wait, daemon=True)
    thread.start()
    _THREADS.append(thread)


class Plugin:
    registry = []

    def __init__(self):
        Plugin.registry.append(self)


def make_plugin():
    Plugin()


def type_names(report):
    return [row.type_name for row in report.types]


@pytest.fixture
def tracing():
    tracer.start(1)
    try:
        yield
    finally:
        tracer.stop()


def test_an_unbounded_module_dict_cache_is_named_with_its_line(tracing):
    report = heap.leak_check(fill_module_cache)
    assert report
    assert "%s.Payload" % NAME in type_names(report)
    row = next(r for r in report.types if r.type_name == "%s.Payload" % NAME)
    assert row.count_per_run == pytest.approx(1.0)
    assert row.size_per_run > 0
    lines = [(site.traceback[-1].filename, site.traceback[-1].lineno) for site in report.sites]
    line = fill_module_cache.__code__.co_firstlineno + 1
    assert any(f.endswith("test_leak_check.py") and n == line for f, n in lines), lines
    samples = report.samples("%s.Payload" % NAME, 3)
    assert len(samples) == 3 and all(type(s) is Payload for s in samples)
    assert all(s in _CACHE.values() for s in samples)
    text = str(report)
    assert "%s.Payload" % NAME in text and "test_leak_check.py" in text
    _CACHE.clear()


def test_sites_are_named_by_their_innermost_frame_with_deep_tracebacks():
    # With more than one frame kept, a site is still the line that allocated (the innermost frame),
    # and leak_check's own allocations are not sites even though its caller's line is in their trace.
    tracer.start(5)
    try:
        report = heap.leak_check(fill_module_cache)
    finally:
        tracer.stop()
    innermost = [(site.traceback[-1].filename, site.traceback[-1].lineno) for site in report.sites]
    line = fill_module_cache.__code__.co_firstlineno + 1
    assert innermost and all(f.endswith("test_leak_check.py") for f, n in innermost), innermost
    assert any(n == line for f, n in innermost), innermost
    _CACHE.clear()


def test_an_lru_cache_without_maxsize_on_a_method_keeps_every_instance():
    report = heap.leak_check(use_a_service)
    assert "%s.Service" % NAME in type_names(report), report
    Service.lookup.cache_clear()


def test_a_logging_handler_added_in_every_init():
    try:
        report = heap.leak_check(make_worker)
        assert "logging.NullHandler" in type_names(report), report
    finally:
        logging.getLogger("libleak.tests.worker").handlers.clear()


def test_threads_started_and_kept():
    try:
        report = heap.leak_check(start_a_thread)
        assert "threading.Thread" in type_names(report), report
    finally:
        _STOP.set()
        for thread in _THREADS:
            thread.join()


def test_a_class_registry_of_instances():
    report = heap.leak_check(make_plugin, runs=6, warmup=1)
    assert "%s.Plugin" % NAME in type_names(report), report
    assert report.runs == 6 and report.warmup == 1
    Plugin.registry.clear()


def test_a_bounded_lru_cache_after_warm_up_is_not_reported(tracing):
    counter = itertools.count()

    @functools.lru_cache(maxsize=128)
    def square(n):
        return [n] * 10

    report = heap.leak_check(lambda: square(next(counter)))
    assert not report, report
    assert "nothing grows" in str(report)


def test_re_compile_and_get_logger_are_not_reported(tracing):
    counter = itertools.count()

    def churn():
        n = next(counter)
        re.compile("pattern-%d-[a-z]+" % n)
        logging.getLogger("libleak.tests.churn.%d" % n)

    report = heap.leak_check(churn)
    assert not report, report


def test_arguments_reach_the_function():
    calls = []
    report = heap.leak_check(lambda a, b=0: calls.append((a, b)), 1, b=2, runs=3, warmup=2)
    assert calls == [(1, 2)] * 5
    assert "tuple" in type_names(report)  # the list keeps every call's tuple: a leak
    calls.clear()


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="callable"):
        heap.leak_check(5)
    with pytest.raises(ValueError, match="runs"):
        heap.leak_check(print, runs=0)
    with pytest.raises(ValueError, match="warmup"):
        heap.leak_check(print, warmup=-1)
    with pytest.raises(TypeError, match="runs"):
        heap.leak_check(print, runs=2.5)
    report = heap.leak_check(lambda: None, runs=2, warmup=0)
    with pytest.raises(TypeError):
        report.samples("x", "3")
    with pytest.raises(ValueError):
        report.samples("x", -1)
    with pytest.raises(TypeError):
        report.samples(5, 1)


def test_sites_are_reported_from_any_checkout_path(tmp_path):
    """A program in a folder named like a noise module ("re", "libleak") keeps its own lines."""
    import subprocess
    import sys

    folder = tmp_path / "re" / "libleak" / "logging"
    folder.mkdir(parents=True)
    script = folder / "app.py"
    script.write_text(
        "from libleak import heap, tracer\n"
        "KEPT = []\n"
        "def leak():\n"
        "    KEPT.append(bytearray(1000))\n"
        "tracer.start(1)\n"
        "report = heap.leak_check(leak)\n"
        "print([(s.traceback[0].filename, s.traceback[0].lineno) for s in report.sites])\n"
    )
    result = subprocess.run([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(%r, 4)" % str(script) in result.stdout, result.stdout
