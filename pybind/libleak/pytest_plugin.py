"""libleak.pytest_plugin: a leak gate for pytest.

``pytest -p libleak.pytest_plugin --libleak`` (or just ``pytest --libleak`` when libleak is installed
with pip, which registers the plugin) runs the call phase of each test several times and fails the
tests whose live objects grow on every run, with the growing types, the allocating lines (with
``--libleak-trace``) and one retention path of a leaked object::

    libleak: test_list_global leaks: its objects grow on every run (1 + 2 warm-up runs, then 5 measured)
    leak_check(test_list_global): 5 runs after 2 warm-up runs: 2 types and 2 allocation sites grow ...
      type                objects/run    bytes/run      count         size
      bytearray                  +1.0       +257 B          8      2.0 KiB
      app.Payload                +1.0        +56 B          8        448 B
      allocation sites:
        /src/app.py:9: +257 B/run (+2.0 blocks/run), 1.8 KiB live
        /src/test_app.py:16: +95 B/run (+2.2 blocks/run), 624 B live
    why is a bytearray alive:
      module app: RESULTS -> list[5] -> Payload.blob -> bytearray (257 B)

How a test is checked: its fixtures are set up once, its call runs once as usual (a failure there is
the test's own and is reported as such; nothing is run again), then ``warmup`` more times so caches
that fill once are full, then ``runs`` times with a census of the heap after each
(``libleak.heap.leak_check``).  A type that grows on (nearly) every measured run fails the test.
Not blamed on the test: what fixtures made at setup (in every census alike), what a fixture fills
on first use (during the warm-up), what only the test's function-scoped fixtures hold (pytest tears
them down after the test: monkeypatch's undo list grows with every setenv), what pytest's log and
warning capture keep of the reruns.  With the tracer running, traced memory that grows by 1 KiB or
more on every run while no type of object grows (a C extension or ctypes allocating and keeping)
fails the test too.  A test that passes its first run and fails when run again is not repeatable:
it fails, saying so (mark it ``no_leak_check``).

Options: ``--libleak`` (check every test), ``--libleak-runs N`` (measured runs, default 5),
``--libleak-warmup N`` (extra warm-up runs, default 2), ``--libleak-trace`` (run ``libleak.tracer``
during the checks, for allocation lines).  Markers: ``@pytest.mark.leak_check(runs=..., warmup=...,
ignore_types=[...])`` checks a test even without ``--libleak`` and sets its own counts and the types
not to blame (names as ``'module.Qualname'`` or classes); ``@pytest.mark.no_leak_check`` never
checks it.  Only Python test functions are checked (coroutine tests through the plugin that runs
them; not doctests or unittest.TestCase methods).  The terminal summary says how many tests were
checked and what the gate cost next to the tests' own time.
"""

import argparse
import array
import logging
import os
import time
import unittest
import warnings

import pytest

from libleak import heap

__all__ = ["DEFAULT_RUNS", "DEFAULT_WARMUP"]

DEFAULT_RUNS = 5
DEFAULT_WARMUP = 2
_MIN_RUNS = 2  # one run cannot show growth on every run

_MARKER_ARGUMENTS = ("runs", "warmup", "ignore_types")


def _count_option(minimum):
    """An argparse type: an int of at least ``minimum``, with a message naming the rule."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected a whole number, not %r" % text)
        if value < minimum:
            raise argparse.ArgumentTypeError("must be at least %d, not %d" % (minimum, value))
        return value

    return parse


def pytest_addoption(parser):
    group = parser.getgroup("libleak", "libleak leak gate")
    group.addoption("--libleak", action="store_true", default=False, dest="libleak",
                    help="run each test's call several times and fail the tests whose objects grow on every run")
    group.addoption("--libleak-runs", type=_count_option(_MIN_RUNS), default=DEFAULT_RUNS, metavar="N",
                    dest="libleak_runs", help="measured runs of each checked test (default %d)" % DEFAULT_RUNS)
    group.addoption("--libleak-warmup", type=_count_option(0), default=DEFAULT_WARMUP, metavar="N",
                    dest="libleak_warmup",
                    help="runs after the test's own run and before the first census (default %d)" % DEFAULT_WARMUP)
    group.addoption("--libleak-trace", action="store_true", default=False, dest="libleak_trace",
                    help="trace allocations during the checks (libleak.tracer), to name the allocating lines")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "leak_check(runs=%d, warmup=%d, ignore_types=()): fail the test when its objects grow on every run of "
        "its call (checked even without --libleak); ignore_types names types not to blame" % (DEFAULT_RUNS,
                                                                                              DEFAULT_WARMUP))
    config.addinivalue_line("markers", "no_leak_check: never run this test again to look for leaks")
    config.pluginmanager.register(LeakGate(config), "libleak-leak-gate")


class _Settings:
    """How one test is checked."""

    __slots__ = ("runs", "warmup", "ignore_types")

    def __init__(self, runs, warmup, ignore_types):
        self.runs = runs
        self.warmup = warmup
        self.ignore_types = ignore_types


def _marker_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("leak_check marker: %s must be an int, not %s" % (name, type(value).__name__))
    if value < minimum:
        raise ValueError("leak_check marker: %s must be at least %d, not %d" % (name, minimum, value))
    return value


def _ignored_names(value):
    """The type names ``ignore_types`` lists: strings as given, classes as the census names them."""
    if isinstance(value, (str, type)):
        value = [value]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError("leak_check marker: ignore_types must be a list of type names or classes, not %s"
                        % type(value).__name__)
    names = set()
    for entry in value:
        if isinstance(entry, str):
            names.add(entry)
        elif isinstance(entry, type):
            names.add(heap._type_name(entry))
        else:
            raise TypeError("leak_check marker: ignore_types holds type names or classes, not %s"
                            % type(entry).__name__)
    return frozenset(names)


def _is_checkable(item):
    """Python test functions can be called again on their own; a unittest.TestCase method runs
    setUp and tearDown around each call and reports its failures another way, so it is not."""
    if not isinstance(item, pytest.Function):
        return False
    cls = getattr(item, "cls", None)
    return not (isinstance(cls, type) and issubclass(cls, unittest.TestCase))


def _log_capture_marks():
    """pytest's logging capture handlers attached now (caplog's and the report's), each with how
    much it holds: records the reruns log are dropped after each run (they are pytest's, not the
    test's, and the first run's are kept), so they do not grow."""
    capture = None
    try:
        from _pytest.logging import LogCaptureHandler as capture
    except ImportError:
        return ()
    marks = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, capture) and isinstance(getattr(handler, "records", None), list):
            stream = getattr(handler, "stream", None)
            position = stream.tell() if stream is not None and hasattr(stream, "tell") else None
            marks.append((handler, len(handler.records), position))
    return tuple(marks)


def _trim_log_captures(marks):
    for handler, length, position in marks:
        del handler.records[length:]
        stream = getattr(handler, "stream", None)
        if position is not None and stream is not None:
            stream.seek(position)
            stream.truncate(position)


def _pytest_folders():
    """The folders of pytest's and pluggy's own modules."""
    import _pytest
    import pluggy

    return tuple(os.path.dirname(os.path.abspath(module.__file__)) + os.sep for module in (_pytest, pluggy))


def _test_sites(sites):
    """The allocation sites outside pytest: what pytest allocates around each call (the arguments
    it passes, the cells of a test's closures counted at its call line) is never the test's line."""
    folders = _pytest_folders()
    return [site for site in sites
            if site.traceback[0].filename.startswith("<") or
            not os.path.abspath(site.traceback[0].filename).startswith(folders)]


def _function_fixture_ids(item):
    """The ids of the values of the item's function-scoped fixtures: pytest tears them down after
    the test, so what only they hold is not leaked (monkeypatch's undo list grows with every
    setenv).  ``request`` is left out: it holds the item, and through it everything."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", None) or {}
    ids = set()
    for name, value in getattr(item, "funcargs", {}).items():
        chain = definitions.get(name)
        if name != "request" and chain and getattr(chain[-1], "scope", None) == "function":
            ids.add(id(value))
    return ids


def _judge(report, type_name, fixture_ids):
    """Why a growing type's leaked objects are alive: ``(held only by function-scoped fixtures,
    the first retention path as text or None)``.  A type with no leaked object left to look at
    (its objects grew in size, not in number) is blamed."""
    from libleak.refs import why_alive

    samples = report.samples(type_name, 2)
    first = None
    only_fixtures = bool(samples)
    while samples:
        leaked = samples.pop()
        retention = why_alive(leaked, max_paths=3)
        del leaked
        if first is None and retention.paths:
            first = str(retention.paths[0])
        if not retention.paths or not all(
                any(id(referrer) in fixture_ids for referrer, _ in path.edges) for path in retention.paths):
            only_fixtures = False
    return only_fixtures, first


# Traced memory that grows while no object does is reported from this many bytes a run: below it,
# the interpreter's own tables grow by a few bytes when code runs again (3.13's io.open keeps ~12
# bytes a call with tmp_path and monkeypatch in use).
_NATIVE_MIN_BYTES_PER_RUN = 1024


class _TracedGrowth:
    """The traced bytes allocated outside libleak, the interpreter's caches and pytest, measured
    before each measured run and after the last, for memory that grows while no object does (a C
    extension or ctypes allocating and keeping).  The totals sit in an array of C integers and one
    snapshot is kept from the first measurement on, so this bookkeeping adds no object per run
    that the censuses between the runs would count."""

    def __init__(self, warmup, runs):
        self.warmup = warmup
        self.runs = runs
        self.calls = 0
        self.totals = array.array("q", [0] * (runs + 1))
        self.first = None
        self.places = heap._noise_places()
        self.folders = _pytest_folders()

    def _ours(self, filename):
        if heap._is_noise(filename, self.places):
            return False
        return filename.startswith("<") or not os.path.abspath(filename).startswith(self.folders)

    def _total(self):
        from libleak import tracer

        snapshot = tracer.take_snapshot()
        total = sum(stat.size for stat in snapshot.statistics("filename") if self._ours(stat.traceback[0].filename))
        return snapshot, total

    def before_call(self):
        """Called before each rerun: the ones after the baseline census measure the previous run."""
        index = self.calls - self.warmup
        self.calls += 1
        if 0 <= index < self.runs:
            snapshot, self.totals[index] = self._total()
            if index == 0:
                self.first = snapshot

    def finish(self):
        """After the last run: ``(bytes per run, top growing lines)`` when the total grew on every
        run, else None."""
        if self.first is None:
            return None
        final, self.totals[self.runs] = self._total()
        totals = list(self.totals)
        if not heap._grows(totals, self.runs) or heap._slope(totals) < _NATIVE_MIN_BYTES_PER_RUN:
            return None
        lines = [diff for diff in final.compare_to(self.first, "lineno")
                 if diff.size_diff > 0 and self._ours(diff.traceback[0].filename)][:5]
        return heap._slope(totals), lines


# Types past these many are blamed without looking at why their objects are alive (a heap walk each).
_JUDGED_TYPES = 8


def _blame(report, item, settings):
    """The growing types the test is blamed for: not those it ignores, nor those whose leaked
    objects only its function-scoped fixtures hold; with the first retention path found among them,
    as ``(type name, path text)`` or None."""
    kept = [row for row in report.types if row.type_name not in settings.ignore_types]
    blamed, retention = [], None
    fixture_ids = _function_fixture_ids(item) if kept else set()
    for rank, row in enumerate(kept):
        if rank >= _JUDGED_TYPES:
            blamed.append(row)
            continue
        only_fixtures, path = _judge(report, row.type_name, fixture_ids)
        if not only_fixtures:
            blamed.append(row)
            if retention is None and path is not None:
                retention = (row.type_name, path)
    return blamed, retention


def _native_text(item, settings, per_run, lines):
    """The report of traced memory that grows while no type of object does."""
    text = ["libleak: %s leaks: traced memory grows on every run (1 + %d warm-up runs, then %d measured) "
            "by %s/run while no type of object grows: memory allocated outside Python objects "
            "(a C extension, ctypes) and kept" % (item.name, settings.warmup, settings.runs,
                                                   heap._format_size(int(round(per_run)), sign=True))]
    if lines:
        text.append("  allocation lines (growth over the measured runs):")
        for diff in lines:
            text.append("    %s: %s (%+d blocks)" % (diff.traceback[0], heap._format_size(diff.size_diff, sign=True),
                                                      diff.count_diff))
    return "\n".join(text)


class LeakGate:
    """The plugin's state for one session: its options and what the checks cost."""

    def __init__(self, config):
        self.enabled = bool(config.getoption("libleak"))
        self.runs = config.getoption("libleak_runs")
        self.warmup = config.getoption("libleak_warmup")
        self.trace = bool(config.getoption("libleak_trace"))
        self.checked = 0
        self.leaked = 0
        self.not_repeatable = 0
        self.own_seconds = 0.0
        self.rerun_seconds = 0.0
        self.check_seconds = 0.0

    def settings(self, item):
        """The item's _Settings, or None when it is not checked.  A marker with a bad argument
        raises TypeError or ValueError, which fails the test before it runs."""
        if item.get_closest_marker("no_leak_check") is not None:
            return None
        marker = item.get_closest_marker("leak_check")
        if marker is None and not self.enabled:
            return None
        if not _is_checkable(item):
            return None
        runs, warmup, ignored = self.runs, self.warmup, frozenset()
        if marker is not None:
            if marker.args:
                raise TypeError("leak_check marker takes keyword arguments only (%s), not %r"
                                % (", ".join(_MARKER_ARGUMENTS), marker.args))
            unknown = sorted(set(marker.kwargs) - set(_MARKER_ARGUMENTS))
            if unknown:
                raise TypeError("leak_check marker: unknown argument %s (it takes %s)"
                                % (", ".join(unknown), ", ".join(_MARKER_ARGUMENTS)))
            runs = _marker_count("runs", marker.kwargs.get("runs", runs), _MIN_RUNS)
            warmup = _marker_count("warmup", marker.kwargs.get("warmup", warmup), 0)
            ignored = _ignored_names(marker.kwargs.get("ignore_types", ()))
        return _Settings(runs, warmup, ignored)

    # The innermost wrapper of the call phase: pytest's output and log capture, warning recorder
    # and xfail handling are around every run, as they are around the test's own.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item):
        settings = self.settings(item)
        if settings is None:
            return (yield)
        started = time.perf_counter()
        result = yield  # the test's own run: its failure is its own, and nothing runs again
        self.own_seconds += time.perf_counter() - started
        self.checked += 1
        self.check(item, settings)
        return result

    def check(self, item, settings):
        """Runs the call again (warm-up, then measured runs with a census after each) and fails
        the test when some type it does not ignore grows on every run."""
        __tracebackhide__ = True
        from libleak import tracer

        marks = _log_capture_marks()
        clock = [0.0]  # seconds spent in the reruns; a float replaced, so no object count grows

        def rerun():
            __tracebackhide__ = True
            if traced is not None:
                traced.before_call()
            started = time.perf_counter()
            try:
                # Warnings were reported by the first run; pytest's recorder would keep one more
                # of each per rerun.
                with warnings.catch_warnings(record=True):
                    item.runtest()
            finally:
                _trim_log_captures(marks)
                clock[0] += time.perf_counter() - started

        started_tracer = self.trace and not tracer.is_tracing()
        if started_tracer:
            tracer.start(1)
        traced = _TracedGrowth(settings.warmup, settings.runs) if tracer.is_tracing() else None
        started = time.perf_counter()
        try:
            try:
                report = heap.leak_check(rerun, runs=settings.runs, warmup=settings.warmup)
            except (Exception, pytest.fail.Exception, pytest.skip.Exception):
                self.not_repeatable += 1
                pytest.fail("libleak: %s passed its own run but failed when run again by the leak gate "
                            "(above): it is not repeatable; make it so or mark it "
                            "@pytest.mark.no_leak_check" % item.name)
            else:
                native = traced.finish() if traced is not None and not report.types else None
            finally:
                traced = None
                if started_tracer:
                    tracer.stop()
            if native is not None:
                self.leaked += 1
                pytest.fail(_native_text(item, settings, *native), pytrace=False)
            blamed, retention = _blame(report, item, settings)
            if not blamed:
                return
            report.types = blamed
            report.sites = _test_sites(report.sites)
            report.func_name = item.name
        finally:
            self.rerun_seconds += clock[0]
            self.check_seconds += time.perf_counter() - started
        self.leaked += 1
        lines = ["libleak: %s leaks: its objects grow on every run (1 + %d warm-up runs, then %d measured)"
                 % (item.name, settings.warmup, settings.runs), str(report).rstrip("\n")]
        if report.types and not report.sites and not self.trace:
            lines.append("  (run with --libleak-trace for the allocating lines)")
        if retention is not None:
            lines.append("why is a %s alive:" % retention[0])
            lines.append("  " + retention[1])
        del report
        pytest.fail("\n".join(lines), pytrace=False)

    def pytest_terminal_summary(self, terminalreporter):
        if not self.enabled and not self.checked:
            return
        own, added = self.own_seconds, self.check_seconds
        census = max(0.0, added - self.rerun_seconds)
        terminalreporter.write_sep("-", "libleak leak gate")
        terminalreporter.write_line(
            "%d test%s checked: %d leaked, %d not repeatable" % (
                self.checked, "" if self.checked == 1 else "s", self.leaked, self.not_repeatable))
        ratio = " (%.1fx the tests' own time)" % (added / own) if own > 0 else ""
        terminalreporter.write_line(
            "tests' own calls %.3f s; the gate added %.3f s%s: %.3f s running calls again, %.3f s in "
            "censuses and analysis" % (own, added, ratio, self.rerun_seconds, census))
