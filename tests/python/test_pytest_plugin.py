"""libleak.pytest_plugin: pytest sessions run in a subprocess (pytester) on planted leaks and on
clean tests that look like leaks (fixtures' caches, logging, output and warning capture, async and
parametrized tests), the markers, the options and their errors, and the summary."""

import os
import re

import pytest

pytest_plugins = ["pytester"]

# The counts the inner tests assert on: the test's own run, the warm-up runs, the measured runs.
RUNS, WARMUP = 3, 1

CONFTEST = '''
import asyncio
import inspect

import pytest


class LazyRegistry:
    """A session fixture's object that fills itself on first use."""

    def __init__(self):
        self.entries = {}

    def get(self, name):
        if name not in self.entries:
            self.entries[name] = [object() for _ in range(200)]
        return self.entries[name]


@pytest.fixture(scope="session")
def registry():
    return LazyRegistry()


@pytest.fixture(scope="session")
def session_list():
    return []


@pytest.fixture
def function_list():
    return []


# A minimal runner for coroutine tests, as pytest-asyncio or anyio's plugin would be: the gate runs
# a test's call again through whatever plugin runs it.
@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**arguments))
        return True
    return None
'''

GATED = '''
import asyncio
import ctypes
import logging
import warnings

import pytest

CALLS = {}


def called(name):
    CALLS[name] = CALLS.get(name, 0) + 1


class Payload:
    def __init__(self):
        self.blob = bytearray(200)


class Token:
    __slots__ = ()


class Other:
    __slots__ = ()


RESULTS = []
SESSIONS = {}
HOOKS = []
TOKENS = []
OTHERS = []
FIXTURE_CACHE = []
MODULE_CACHE = {}
STATE = []


def test_clean():
    called("clean")
    made = [Payload() for _ in range(20)]
    assert len(made) == 20


def test_list_global():
    RESULTS.append(Payload())


def test_dict_cache():
    key = "session-%d" % len(SESSIONS)
    SESSIONS[key] = Payload()


def test_closure_in_hook_list():
    payload = Payload()
    HOOKS.append(lambda: payload.blob)


@pytest.fixture
def warm_cache():
    FIXTURE_CACHE.extend(Payload() for _ in range(100))
    return FIXTURE_CACHE


@pytest.fixture(scope="module")
def module_cache():
    for i in range(100):
        MODULE_CACHE[i] = Payload()
    return MODULE_CACHE


def test_fixture_fills_a_cache_at_setup(warm_cache, module_cache):
    assert len(warm_cache) >= 100 and len(module_cache) == 100


def test_session_fixture_grows_on_first_use(registry):
    assert len(registry.get("first")) == 200


PyMem_Malloc = ctypes.pythonapi.PyMem_Malloc
PyMem_Malloc.restype = ctypes.c_void_p
PyMem_Malloc.argtypes = [ctypes.c_size_t]
PyMem_Free = ctypes.pythonapi.PyMem_Free
PyMem_Free.argtypes = [ctypes.c_void_p]


def test_native_memory_kept():
    PyMem_Malloc(4096)  # never freed: no object grows, traced bytes do


def test_native_memory_freed():
    PyMem_Free(PyMem_Malloc(4096))


def test_appends_to_a_function_scoped_fixture(function_list):
    function_list.append(Payload())  # torn down after the test: not a leak


def test_appends_to_a_session_scoped_fixture(session_list):
    session_list.append(Payload())  # kept for the whole session: a leak


def test_fails_on_its_own():
    called("fails")
    assert "own failure" == "expected", "the test's own message"


def test_not_repeatable():
    STATE.append(1)
    assert len(STATE) == 1


@pytest.mark.parametrize("leaks", [False, True])
def test_parametrized(leaks):
    called("parametrized-%s" % leaks)
    if leaks:
        RESULTS.append(Payload())


async def test_async_clean():
    called("async")
    await asyncio.sleep(0)


async def test_async_leak():
    await asyncio.sleep(0)
    RESULTS.append(Payload())


def test_logs_through_caplog(caplog):
    logging.getLogger("gated").warning("a warning with %s", Payload())
    assert "a warning" in caplog.text


def test_logs_without_caplog():
    logging.getLogger("gated.plain").error("an error %d", 42)


def test_prints(capsys):
    print("some output " * 20)
    assert capsys.readouterr().out.startswith("some output")


def test_prints_without_capsys():
    print("output the capture keeps " * 20)


def test_warns():
    warnings.warn("deprecated thing", DeprecationWarning)


def test_tmp_path_and_monkeypatch(tmp_path, monkeypatch):
    monkeypatch.setenv("GATED", "1")
    (tmp_path / "file.txt").write_text("x" * 1000)


@pytest.mark.leak_check(ignore_types=["test_gated.Token"])
def test_ignored_by_name():
    TOKENS.append(Token())


@pytest.mark.leak_check(ignore_types=[Other])
def test_ignored_by_class():
    OTHERS.append(Other())


@pytest.mark.leak_check(ignore_types=[Token])
def test_ignoring_another_type_still_fails():
    OTHERS.append(Other())


@pytest.mark.no_leak_check
def test_not_checked():
    called("not-checked")
    RESULTS.append(Payload())


@pytest.mark.xfail(reason="fails on purpose")
def test_xfail():
    assert False


def test_zz_call_counts():
    assert CALLS["fails"] == 1
    assert CALLS["not-checked"] == 1
    assert CALLS["clean"] == RUNS_EXPECTED
    assert CALLS["parametrized-False"] == CALLS["parametrized-True"] == RUNS_EXPECTED
    assert CALLS["async"] == RUNS_EXPECTED
'''.replace("RUNS_EXPECTED", str(1 + WARMUP + RUNS))

LEAKING = ["test_list_global", "test_dict_cache", "test_closure_in_hook_list", "test_parametrized[True]",
           "test_async_leak", "test_ignoring_another_type_still_fails", "test_appends_to_a_session_scoped_fixture",
           "test_native_memory_kept"]
CLEAN = ["test_clean", "test_fixture_fills_a_cache_at_setup", "test_session_fixture_grows_on_first_use",
         "test_appends_to_a_function_scoped_fixture", "test_native_memory_freed",
         "test_parametrized[False]", "test_async_clean", "test_logs_through_caplog", "test_logs_without_caplog",
         "test_prints", "test_prints_without_capsys", "test_warns", "test_tmp_path_and_monkeypatch",
         "test_ignored_by_name", "test_ignored_by_class", "test_not_checked", "test_zz_call_counts"]


def run_gate(pytester, monkeypatch, *args):
    """Runs pytest in a subprocess with the plugin given by -p and no other plugin autoloaded."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester.runpytest_subprocess("-p", "libleak.pytest_plugin", "-p", "no:cacheprovider", "-v",
                                         *args, timeout=240)


def outcomes(result):
    """test name -> PASSED / FAILED / XFAIL ... from the verbose lines."""
    found = {}
    for line in result.outlines:
        match = re.match(r"\S+::(\S+) (PASSED|FAILED|XFAIL|XPASS|SKIPPED|ERROR)\b", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def failure_section(result, name):
    """The text pytest printed for one failing test (between its ____ name ____ header and the next)."""
    text = result.stdout.str()
    match = re.search(r"_{3,} %s _{3,}\n(.*?)(?=\n_{3,} |\n={3,} )" % re.escape(name), text, re.S)
    assert match, "no failure section for %s in:\n%s" % (name, text)
    return match.group(1)


# One traced session over GATED, shared by the tests below (pytester is per test; its result is text).
_SESSIONS = {}


@pytest.fixture
def traced(pytester, monkeypatch):
    if "traced" not in _SESSIONS:
        pytester.makeconftest(CONFTEST)
        pytester.makepyfile(test_gated=GATED)
        _SESSIONS["traced"] = run_gate(pytester, monkeypatch, "--libleak", "--libleak-trace", "--libleak-runs",
                                       str(RUNS), "--libleak-warmup", str(WARMUP))
    return _SESSIONS["traced"]


def test_leaking_tests_fail_and_clean_ones_pass(traced):
    found = outcomes(traced)
    assert {name: found.get(name) for name in LEAKING} == {name: "FAILED" for name in LEAKING}, traced.stdout.str()
    assert {name: found.get(name) for name in CLEAN} == {name: "PASSED" for name in CLEAN}, traced.stdout.str()
    assert found.get("test_xfail") == "XFAIL"


def test_a_list_in_a_module_global_is_named_with_its_holder_and_line(traced):
    text = failure_section(traced, "test_list_global")
    assert "test_gated.Payload" in text and "bytearray" in text
    assert re.search(r"module test_gated: RESULTS -> list\[\d+\]", text), text
    line = GATED.lstrip("\n").splitlines().index("    RESULTS.append(Payload())") + 1
    assert re.search(r"test_gated\.py:%d: \+" % line, text), text


def test_a_dict_cache_is_named_with_its_key(traced):
    text = failure_section(traced, "test_dict_cache")
    assert re.search(r"module test_gated: SESSIONS -> dict\['session-\d+'\]", text), text


def test_a_closure_in_a_hook_list_names_the_captured_variable(traced):
    text = failure_section(traced, "test_closure_in_hook_list")
    assert re.search(r"module test_gated: HOOKS -> list\[\d+\] -> function .*<lambda> closure variable payload", text), text
    assert "_pytest" not in text  # pytest's own allocation lines are not the test's


def test_a_failing_test_keeps_its_own_failure_and_is_not_run_again(traced):
    text = failure_section(traced, "test_fails_on_its_own")
    assert "the test's own message" in text and "libleak" not in text
    assert outcomes(traced)["test_zz_call_counts"] == "PASSED"  # it counts one call of it


def test_a_test_that_fails_when_run_again_says_it_is_not_repeatable(traced):
    text = failure_section(traced, "test_not_repeatable")
    assert "assert 2 == 1" in text
    assert "not repeatable" in text and "no_leak_check" in text


def test_traced_memory_that_grows_while_no_object_does_fails_with_its_line(traced):
    text = failure_section(traced, "test_native_memory_kept")
    assert "traced memory grows on every run" in text and "while no type of object grows" in text, text
    assert re.search(r"by \+4\.0 KiB/run", text), text
    line = GATED.lstrip("\n").splitlines().index("    PyMem_Malloc(4096)  # never freed: no object grows, traced bytes do") + 1
    assert re.search(r"test_gated\.py:%d: \+12\.0 KiB \(\+3 blocks\)" % line, text), text


def test_parametrized_and_async_tests_are_checked_one_by_one(traced):
    assert "test_gated.Payload" in failure_section(traced, "test_parametrized[True]")
    assert "test_gated.Payload" in failure_section(traced, "test_async_leak")


def test_ignore_types_by_name_or_class(traced):
    text = failure_section(traced, "test_ignoring_another_type_still_fails")
    assert "test_gated.Other" in text and "test_gated.Token" not in text


def test_the_summary_reports_the_gates_overhead(traced):
    text = traced.stdout.str()
    checked = len(LEAKING) + len(CLEAN) - 1 + 1  # all but no_leak_check, plus test_not_repeatable
    leaked = len(LEAKING)
    assert re.search(r"%d tests checked: %d leaked, 1 not repeatable" % (checked, leaked), text), text
    assert re.search(r"tests' own calls \d+\.\d+ s; the gate added \d+\.\d+ s \(\d+\.\dx the tests' own time\): "
                     r"\d+\.\d+ s running calls again, \d+\.\d+ s in censuses and analysis", text), text


MARKED = '''
import pytest

CALLS = []
KEPT = []


class Item:
    pass


@pytest.mark.leak_check(runs=4, warmup=0)
def test_marked_leak():
    CALLS.append("marked")
    KEPT.append(Item())


def test_unmarked_leak():
    KEPT.append(Item())


def test_counts():
    assert CALLS.count("marked") == 1 + 0 + 4
'''


def test_only_marked_tests_are_checked_without_the_option(pytester, monkeypatch):
    pytester.makepyfile(test_marked=MARKED)
    result = run_gate(pytester, monkeypatch, "--strict-markers")
    assert outcomes(result) == {"test_marked_leak": "FAILED", "test_unmarked_leak": "PASSED", "test_counts": "PASSED"}
    text = failure_section(result, "test_marked_leak")
    assert "test_marked.Item" in text and "4 measured" in text
    assert "--libleak-trace" in text  # not traced: it says how to get the lines
    assert "1 test checked: 1 leaked, 0 not repeatable" in result.stdout.str()


def test_without_option_or_marker_nothing_is_checked_or_summarised(pytester, monkeypatch):
    pytester.makepyfile(test_marked=MARKED.replace("@pytest.mark.leak_check(runs=4, warmup=0)", ""))
    result = run_gate(pytester, monkeypatch, "-k", "leak")
    assert result.ret == 0
    assert "libleak leak gate" not in result.stdout.str()


def test_the_default_counts(pytester, monkeypatch):
    pytester.makepyfile(test_defaults='''
        CALLS = []

        def test_counted():
            CALLS.append(1)

        def test_zz_counts():
            assert len(CALLS) == 1 + 2 + 5
    ''')
    result = run_gate(pytester, monkeypatch, "--libleak")
    assert outcomes(result) == {"test_counted": "PASSED", "test_zz_counts": "PASSED"}


BAD_MARKERS = [
    ("leak_check(3)", "TypeError: leak_check marker takes keyword arguments only"),
    ("leak_check(runz=3)", "TypeError: leak_check marker: unknown argument runz"),
    ("leak_check(runs='3')", "TypeError: leak_check marker: runs must be an int, not str"),
    ("leak_check(runs=1)", "ValueError: leak_check marker: runs must be at least 2, not 1"),
    ("leak_check(warmup=-1)", "ValueError: leak_check marker: warmup must be at least 0, not -1"),
    ("leak_check(ignore_types=[3])", "TypeError: leak_check marker: ignore_types holds type names or classes, not int"),
    ("leak_check(ignore_types=3)", "TypeError: leak_check marker: ignore_types must be a list"),
]


def test_bad_marker_arguments_fail_the_test_before_it_runs(pytester, monkeypatch):
    source = ["import pytest"]
    for number, (marker, _) in enumerate(BAD_MARKERS):
        source.append("@pytest.mark.%s\ndef test_marked_%d():\n    raise RuntimeError('the test body ran')\n"
                      % (marker, number))
    pytester.makepyfile(test_bad="\n\n".join(source))
    result = run_gate(pytester, monkeypatch)
    assert outcomes(result) == {"test_marked_%d" % number: "FAILED" for number in range(len(BAD_MARKERS))}
    for number, (_, error) in enumerate(BAD_MARKERS):
        assert error in failure_section(result, "test_marked_%d" % number)
    assert "the test body ran" not in result.stdout.str()


@pytest.mark.parametrize("option, error", [
    (["--libleak-runs", "1"], "argument --libleak-runs: must be at least 2, not 1"),
    (["--libleak-runs", "many"], "argument --libleak-runs: expected a whole number, not 'many'"),
    (["--libleak-warmup", "-1"], "argument --libleak-warmup: must be at least 0, not -1"),
])
def test_bad_options_are_usage_errors(pytester, monkeypatch, option, error):
    pytester.makepyfile(test_any="def test_nothing():\n    pass\n")
    result = run_gate(pytester, monkeypatch, "--libleak", *option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert error in result.stderr.str()


# The pytest11 entry point pip installs (pyproject.toml) must be named after the module: pytest's
# `-p NAME` looks for an entry point called NAME first, so `-p libleak.pytest_plugin` then finds it
# instead of registering the module a second time under another name, which pluggy refuses.
ENTRY_POINT = "libleak.pytest_plugin = libleak.pytest_plugin"


@pytest.mark.parametrize("arguments", [["--libleak"], ["-p", "libleak.pytest_plugin", "--libleak"]])
def test_the_entry_point_alone_or_with_the_p_option(pytester, monkeypatch, arguments):
    info = pytester.mkdir("site") / "libleak_entry-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: libleak-entry\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\n%s\n" % ENTRY_POINT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(info.parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_one="KEPT = []\n\n\ndef test_leaks():\n    KEPT.append(object())\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", *arguments, timeout=240)
    assert outcomes(result) == {"test_leaks": "FAILED"}, result.stdout.str() + result.stderr.str()
    assert "1 test checked: 1 leaked" in result.stdout.str()
