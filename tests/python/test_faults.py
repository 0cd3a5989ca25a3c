"""libleak.faults: every function, every error, and the fatal-signal dumps.

Anything that crashes, exits or installs a signal handler runs in a child interpreter
(conftest.run_python); dumps on request run here, into temporary files and pipes.  Waiting is done
on events with generous deadlines; nothing asserts how long something took.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import libleak
import libleak.faults as faults
from conftest import run_python

THREAD_HEADER = r"(Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):"
FRAME_LINE = r'  File "[^"]*", line \d+ in \S+'


def read_fd(fd):
    """Everything written so far to the temporary file behind `fd`."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode("utf-8", "replace")
        chunks.append(chunk)


def wait_for(predicate, timeout=30.0):
    """Polls `predicate` until it is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition never became true")
        time.sleep(0.01)


# ---- The package ------------------------------------------------------------------------------


def test_module_is_documented_but_not_reexported():
    assert "libleak.faults" in libleak.__doc__
    assert not hasattr(libleak, "dump_traceback")
    for name in faults.__all__:
        assert getattr(faults, name).__doc__, name


def test_dump_traceback_has_faulthandlers_signature():
    import inspect

    parameters = inspect.signature(faults.dump_traceback).parameters
    assert list(parameters) == ["file", "all_threads"]
    assert parameters["all_threads"].default is True


def test_docstring_examples_run():
    # In a child: the examples enable handlers and register signals.
    result = run_python(
        """
        import doctest, libleak, libleak.faults
        finder = doctest.DocTestFinder()
        tests = finder.find(libleak.faults, extraglobs={"libleak": libleak})
        tests += finder.find(libleak.faults.dump_traceback, "dump_traceback", globs={"libleak": libleak})
        runner = doctest.DocTestRunner()
        for test in tests:
            runner.run(test)
        print(runner.summarize(verbose=False))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "failed=0" in result.stdout and "attempted=0" not in result.stdout, result.stdout + result.stderr


# ---- dump_traceback ---------------------------------------------------------------------------


def a_recognisable_function(file, **kwargs):
    faults.dump_traceback(file, **kwargs)


def test_dump_traceback_to_a_file_object_current_thread_only():
    with tempfile.TemporaryFile("w+") as out:
        a_recognisable_function(out, all_threads=False)
        out.seek(0)
        lines = out.read().splitlines()
    assert lines[0] == "Stack (most recent call first):"
    # The caller's frame comes first: libleak's own Python code never shows in the dump.
    assert re.match(r'  File ".*test_faults\.py", line \d+ in a_recognisable_function$', lines[1]), lines
    assert re.match(r'  File ".*test_faults\.py", line \d+ in test_dump_traceback_to_a_file', lines[2]), lines
    # Compared by real path with libleak.faults' own file: the checkout itself may live in a folder
    # named libleak (a plain `git clone` makes one), so matching on words of the path would fail.
    own = os.path.realpath(faults.__file__)
    shown = [os.path.realpath(m.group(1)) for m in map(re.compile(r'  File "(.*)", line ').match, lines) if m]
    assert shown and own not in shown, (own, lines)


def test_dump_traceback_to_a_file_descriptor_all_threads():
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="waiter")
    worker.start()
    try:
        fd, path = tempfile.mkstemp()
        try:
            faults.dump_traceback(fd, all_threads=True)
            text = read_fd(fd)
        finally:
            os.close(fd)
            os.unlink(path)
    finally:
        stop.set()
        worker.join()
    headers = [line for line in text.splitlines() if re.match(THREAD_HEADER, line)]
    assert len(headers) >= 2, text
    # faulthandler's order: the worker (newer) first, the main thread last, here the calling thread.
    assert headers[0] == "Thread 0x%016x (most recent call first):" % worker.ident, text
    assert headers[-1] == "Current thread 0x%016x (most recent call first):" % threading.main_thread().ident, text


def test_dump_traceback_into_a_pipe():
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "w", closefd=False) as pipe:
            faults.dump_traceback(pipe, all_threads=False)
        data = os.read(read_end, 65536).decode()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert data.startswith("Stack (most recent call first):\n"), data
    assert "in test_dump_traceback_into_a_pipe" in data


def test_dump_traceback_flushes_the_file_first():
    with tempfile.TemporaryFile("w+") as out:
        out.write("written before the dump\n")
        faults.dump_traceback(out, all_threads=False)
        out.seek(0)
        assert out.read().startswith("written before the dump\nStack (most recent call first):")


def test_dump_traceback_defaults_to_sys_stderr():
    result = run_python(
        """
        import libleak.faults
        def g():
            libleak.faults.dump_traceback()
        g()
        """
    )
    assert result.returncode == 0, result.stderr
    assert re.match(THREAD_HEADER + "\n" + r'  File "<string>", line 4 in g\n', result.stderr), result.stderr


def test_generators_and_coroutines_appear():
    result = run_python(
        """
        import asyncio, libleak.faults
        def gen():
            libleak.faults.dump_traceback(all_threads=False)
            yield 1
        async def inner():
            next(gen())
        async def outer():
            await inner()
        asyncio.run(outer())
        """
    )
    assert result.returncode == 0, result.stderr
    functions = re.findall(r"line \d+ in (\S+)", result.stderr)
    assert functions[:3] == ["gen", "inner", "outer"], result.stderr


# ---- set_limits / get_limits ------------------------------------------------------------------


def descend_and_dump(depth, out):
    if depth == 0:
        faults.dump_traceback(out, all_threads=False)
        return
    descend_and_dump(depth - 1, out)


def test_frame_limit_cuts_and_counts():
    faults.set_limits(max_frames=5)
    try:
        assert faults.get_limits() == (5, 100, False)
        assert faults.get_limits().max_frames == 5
        with tempfile.TemporaryFile("w+") as out:
            descend_and_dump(40, out)
            out.seek(0)
            lines = out.read().splitlines()
    finally:
        faults.set_limits()
    assert faults.get_limits() == faults.Limits(100, 100, False)
    import inspect

    total = len(inspect.stack(0)) + 41  # this test's stack + descend_and_dump x 41
    frames = [line for line in lines if line.startswith("  File ")]
    assert len(frames) == 5
    assert lines[-1] == "  ... %d more frames" % (total - 5), lines


def test_thread_limit_cuts_threads():
    stop = threading.Event()
    workers = [threading.Thread(target=stop.wait) for _ in range(4)]
    for worker in workers:
        worker.start()
    faults.set_limits(max_threads=2)
    try:
        with tempfile.TemporaryFile("w+") as out:
            faults.dump_traceback(out)
            out.seek(0)
            text = out.read()
    finally:
        faults.set_limits()
        stop.set()
        for worker in workers:
            worker.join()
    headers = [line for line in text.splitlines() if re.match(THREAD_HEADER, line)]
    assert len(headers) == 2, text
    # The newest worker fills the one place left beside the main thread, which is never cut.
    assert headers[0].startswith("Thread 0x%016x" % workers[-1].ident), text
    assert headers[1].startswith("Current thread 0x%016x" % threading.main_thread().ident), text
    assert text.endswith("\n\n... 3 more threads\n"), text


def test_main_thread_first_is_an_option():
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    faults.set_limits(main_thread_first=True)
    try:
        assert faults.get_limits() == (100, 100, True)
        with tempfile.TemporaryFile("w+") as out:
            faults.dump_traceback(out)
            out.seek(0)
            text = out.read()
    finally:
        faults.set_limits()
        stop.set()
        worker.join()
    headers = [line for line in text.splitlines() if re.match(THREAD_HEADER, line)]
    assert headers[0] == "Current thread 0x%016x (most recent call first):" % threading.main_thread().ident, text
    assert headers[1] == "Thread 0x%016x (most recent call first):" % worker.ident, text


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_frames": 0}, ValueError),
        ({"max_threads": -1}, ValueError),
        ({"max_frames": "x"}, TypeError),
        ({"max_threads": 1.5}, TypeError),
        ({"main_thread_first": None}, TypeError),
        ({"main_thread_first": "yes"}, TypeError),
    ],
)
def test_set_limits_rejects_bad_values(kwargs, error):
    with pytest.raises(error):
        faults.set_limits(**kwargs)
    assert faults.get_limits() == (100, 100, False)


# ---- Errors, compared with faulthandler's own ---------------------------------------------------

ERRORS_PROGRAM = r"""
import json, os, signal, sys, tempfile, io
module = __import__(sys.argv[1], fromlist=["x"])
closed = open(os.devnull, "w"); closed.close()

class FilenoStr:
    def fileno(self): return "a"

class FilenoNegative:
    def fileno(self): return -3

class FlushFails:
    def fileno(self): return 2
    def flush(self): raise OSError("flush failed")

class Index:
    def __index__(self): return signal.SIGUSR2

cases = [
    ("dump_traceback", (None,), {}), ("dump_traceback", (-1,), {}), ("dump_traceback", ("x",), {}),
    ("dump_traceback", (1.5,), {}), ("dump_traceback", (2**70,), {}), ("dump_traceback", (-2**70,), {}),
    ("dump_traceback", (closed,), {}),
    ("dump_traceback", (FilenoStr(),), {}), ("dump_traceback", (FilenoNegative(),), {}),
    ("dump_traceback", (FlushFails(),), {}), ("dump_traceback", (io.StringIO(),), {}),
    ("dump_traceback", (2, 2), {}), ("dump_traceback", (2, "x"), {}), ("dump_traceback", (2, []), {}),
    ("dump_traceback", (), {"file": 2, "all_threads": False}), ("dump_traceback", (), {"fil": 2}),
    ("dump_traceback", (2, True, 3), {}),
    ("dump_traceback_later", (0,), {}), ("dump_traceback_later", (-1,), {}),
    ("dump_traceback_later", (-1e-12,), {}), ("dump_traceback_later", (1e30,), {}),
    ("dump_traceback_later", (9.3e9,), {}), ("dump_traceback_later", (9223372037,), {}),
    ("dump_traceback_later", (9.2e9,), {}), ("dump_traceback_later", (9223372036,), {}),
    ("dump_traceback_later", (1e-12,), {}),
    ("dump_traceback_later", (float("inf"),), {}), ("dump_traceback_later", (float("nan"),), {}),
    ("dump_traceback_later", ("x",), {}), ("dump_traceback_later", (None,), {}),
    ("dump_traceback_later", (2**70,), {}), ("dump_traceback_later", (5, "x"), {}),
    ("dump_traceback_later", (5,), {"exit": "x"}), ("dump_traceback_later", (5,), {"file": closed}),
    ("dump_traceback_later", (5,), {"file": -1}), ("dump_traceback_later", (Index(),), {}),
    ("cancel_dump_traceback_later", (), {}), ("cancel_dump_traceback_later", (1,), {}),
    ("register", (signal.SIGSEGV,), {}), ("register", (signal.SIGFPE,), {}),
    ("register", (signal.SIGABRT,), {}), ("register", (signal.SIGBUS,), {}),
    ("register", (signal.SIGILL,), {}), ("register", (0,), {}), ("register", (-1,), {}),
    ("register", (signal.NSIG,), {}), ("register", (signal.NSIG - 1,), {}), ("register", ("x",), {}),
    ("register", (1.0,), {}), ("register", (2**70,), {}), ("register", (signal.SIGKILL,), {}),
    ("register", (signal.SIGUSR1,), {"chain": "x"}), ("register", (signal.SIGUSR1,), {"all_threads": "x"}),
    ("register", (signal.SIGUSR1, closed), {}), ("register", (Index(),), {}),
    ("unregister", (signal.SIGUSR1,), {}), ("unregister", (signal.SIGUSR1,), {}),
    ("unregister", (signal.SIGSEGV,), {}), ("unregister", (0,), {}), ("unregister", (100,), {}),
    ("unregister", ("x",), {}), ("unregister", (Index(),), {}),
    ("enable", (closed,), {}), ("enable", (-1,), {}), ("enable", (2, "x"), {}), ("is_enabled", (), {}),
    ("is_enabled", (1,), {}), ("disable", (), {}), ("disable", (), {}), ("enable", (), {}),
    ("is_enabled", (), {}), ("disable", (), {}), ("disable", (1,), {}),
    ("STDERR_NONE", None, None),
    ("dump_traceback", (), {}), ("enable", (), {}), ("dump_traceback_later", (5,), {}),
    ("register", (signal.SIGUSR2,), {}), ("dump_traceback", (None,), {}),
]
results = []
for name, args, kwargs in cases:
    if name == "STDERR_NONE":
        sys.stderr = None
        continue
    try:
        value = getattr(module, name)(*args, **kwargs)
        results.append(["ok", repr(value)])
    except Exception as error:
        results.append([type(error).__name__, str(error)])
    module.cancel_dump_traceback_later()
print(json.dumps(results))
"""

# Messages written by faulthandler itself (not by CPython's argument parsing): ours must say the
# same thing.  The ones left out are CPython's parser messages, which change wording per version.
SAME_MESSAGES = (
    "timeout must be greater than 0",
    "signal number out of range",
    "cannot be registered, use enable() instead",
    "sys.stderr is None",
    "file.fileno() is not a valid file descriptor",
    "I/O operation on closed file",
    "Invalid value NaN",
)


def test_errors_and_results_match_faulthandler():
    results = {}
    for module in ("faulthandler", "libleak.faults"):
        proc = run_python(ERRORS_PROGRAM, module)
        assert proc.returncode == 0, proc.stderr
        results[module] = json.loads(proc.stdout.splitlines()[-1])
    theirs, ours = results["faulthandler"], results["libleak.faults"]
    assert len(theirs) == len(ours)
    for index, (their, our) in enumerate(zip(theirs, ours)):
        assert their[0] == our[0], "case %d: faulthandler %r, libleak %r" % (index, their, our)
        if their[0] == "ok":
            assert their[1] == our[1], "case %d: faulthandler %r, libleak %r" % (index, their, our)
        elif any(message in their[1] for message in SAME_MESSAGES):
            assert their[1] == our[1], "case %d: faulthandler %r, libleak %r" % (index, their, our)
    # The documented ones, spelled out.
    texts = [our[1] for our in ours]
    assert "timeout must be greater than 0" in texts
    assert "signal number out of range" in texts
    assert "signal %d cannot be registered, use enable() instead" % signal.SIGSEGV in texts
    assert "sys.stderr is None" in texts


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError):
        faults.dump_traceback_later("soon")
    with pytest.raises(TypeError):
        faults.register("SIGUSR1")
    with pytest.raises(TypeError):
        faults.unregister(None)
    with pytest.raises(TypeError):
        faults.watchdog(None)


# ---- enable / disable and the fatal signals -----------------------------------------------------

FATAL_NAMES = {
    "segv": (signal.SIGSEGV, "Segmentation fault"),
    "abort": (signal.SIGABRT, "Aborted"),
    # faulthandler spells it with a hyphen from 3.13 on
    "fpe": (signal.SIGFPE, "Floating-point exception" if sys.version_info >= (3, 13) else "Floating point exception"),
    "bus": (signal.SIGBUS, "Bus error"),
    "ill": (signal.SIGILL, "Illegal instruction"),
}


@pytest.mark.parametrize("kind", sorted(FATAL_NAMES))
def test_fatal_signal_dumps_then_dies(kind):
    signum, name = FATAL_NAMES[kind]
    result = run_python(
        """
        import sys, libleak.faults
        from libleak import _libleak
        libleak.faults.enable()
        def crasher():
            _libleak._test_crash(sys.argv[1])
        crasher()
        """,
        kind,
    )
    assert result.returncode == -signum, result.stderr
    pattern = (
        r"^Fatal Python error: %s\n\n"
        r"Current thread 0x[0-9a-f]{16} \(most recent call first\):\n"
        r'  File "<string>", line 6 in crasher\n'
        r'  File "<string>", line 7 in <module>\n'
    ) % re.escape(name)
    assert re.match(pattern, result.stderr), result.stderr


def test_fatal_signal_with_all_threads_false_and_an_fd():
    result = run_python(
        """
        import os, sys, tempfile, libleak.faults
        from libleak import _libleak
        fd = os.open(sys.argv[1], os.O_WRONLY)
        libleak.faults.enable(fd, all_threads=False)
        _libleak._test_crash("segv")
        """,
        os.devnull,
    )
    assert result.returncode == -signal.SIGSEGV
    assert result.stderr == "", "the dump went to the fd, not to stderr: %r" % result.stderr
    with tempfile.NamedTemporaryFile("r") as out:
        result = run_python(
            """
            import sys, libleak.faults
            from libleak import _libleak
            out = open(sys.argv[1], "w")
            libleak.faults.enable(out, all_threads=False)
            del out   # libleak keeps the file object, so its descriptor stays open
            import gc; gc.collect()
            _libleak._test_crash("abort")
            """,
            out.name,
        )
        text = out.read()
    assert result.returncode == -signal.SIGABRT
    expected = r'^Fatal Python error: Aborted\n\nStack \(most recent call first\):\n  File "<string>", line 8 in <module>'
    assert re.match(expected, text), text


def test_disabled_handler_prints_nothing():
    result = run_python(
        """
        import libleak.faults
        from libleak import _libleak
        libleak.faults.enable()
        assert libleak.faults.is_enabled()
        assert libleak.faults.disable() is True
        assert libleak.faults.disable() is False
        assert not libleak.faults.is_enabled()
        _libleak._test_crash("segv")
        """
    )
    assert result.returncode == -signal.SIGSEGV
    assert "Fatal Python error" not in result.stderr, result.stderr


def test_enable_keeps_the_file_alive_until_disable():
    result = run_python(
        """
        import gc, tempfile, weakref, libleak.faults
        out = tempfile.TemporaryFile("w")
        ref = weakref.ref(out)
        libleak.faults.enable(out)
        del out; gc.collect()
        assert ref() is not None, "the file was closed under the handler"
        libleak.faults.disable()
        gc.collect()
        assert ref() is None, "disable() kept the file"
        print("ok")
        """
    )
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_test_crash_rejects_unknown_names():
    from libleak import _libleak

    with pytest.raises(ValueError):
        _libleak._test_crash("explode")
    with pytest.raises(TypeError):
        _libleak._test_crash(11)


# ---- register / unregister --------------------------------------------------------------------


def test_register_dumps_on_a_user_signal_without_chain():
    result = run_python(
        """
        import signal, threading, time, libleak.faults
        seen = []
        signal.signal(signal.SIGUSR1, lambda *a: seen.append(1))
        libleak.faults.register(signal.SIGUSR1)
        def poke():
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
        poke()
        for _ in range(20):
            time.sleep(0.01)
        print("python handler ran" if seen else "python handler did not run")
        assert libleak.faults.unregister(signal.SIGUSR1) is True
        assert libleak.faults.unregister(signal.SIGUSR1) is False
        poke()                 # the Python handler is back
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        print("restored" if seen else "not restored")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["python handler did not run", "restored"], result.stdout
    expected = r"^Current thread 0x[0-9a-f]{16} \(most recent call first\):\n" r'  File "<string>", line 7 in poke\n'
    assert re.match(expected, result.stderr), result.stderr
    assert result.stderr.count("most recent call first") == 1


def test_register_with_chain_runs_the_previous_handler():
    result = run_python(
        """
        import signal, threading, time, libleak.faults
        seen = []
        signal.signal(signal.SIGUSR2, lambda *a: seen.append(1))
        libleak.faults.register(signal.SIGUSR2, chain=True, all_threads=False)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        print("python handler ran" if seen else "python handler did not run")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "python handler ran\n"
    assert result.stderr.startswith("Stack (most recent call first):\n"), result.stderr


def test_register_again_replaces_the_file():
    with tempfile.NamedTemporaryFile("r") as first, tempfile.NamedTemporaryFile("r") as second:
        result = run_python(
            """
            import os, signal, sys, libleak.faults
            a = open(sys.argv[1], "w"); b = open(sys.argv[2], "w")
            libleak.faults.register(signal.SIGUSR1, a)
            libleak.faults.register(signal.SIGUSR1, b)
            signal.raise_signal(signal.SIGUSR1)
            """,
            first.name,
            second.name,
        )
        assert result.returncode == 0, result.stderr
        assert first.read() == ""
        assert "most recent call first" in second.read()


def test_signal_arriving_while_another_thread_allocates():
    result = run_python(
        """
        import os, signal, sys, tempfile, threading, time, libleak.faults
        out = tempfile.TemporaryFile("w+")
        libleak.faults.register(signal.SIGUSR1, out, all_threads=False)
        stop = threading.Event()
        def allocate():
            junk = []
            while not stop.is_set():
                junk.append([bytes(100), {"k": object()}, "x" * 300])
                if len(junk) > 1000:
                    junk.clear()
        worker = threading.Thread(target=allocate)
        worker.start()
        def dumps():
            # a dump is complete once the worker's outermost frame is out: the next signal must
            # not arrive while the handler still runs (libleak drops a dump requested mid-dump)
            return open("/proc/self/fd/%d" % out.fileno()).read().count("in _bootstrap\\n")
        for i in range(20):
            before = dumps()
            signal.pthread_kill(worker.ident, signal.SIGUSR1)
            deadline = time.monotonic() + 30
            while dumps() == before and time.monotonic() < deadline:
                time.sleep(0.001)
        stop.set()
        worker.join()
        text = open("/proc/self/fd/%d" % out.fileno()).read()
        print(text.count("Stack (most recent call first)"), text.count("in allocate"))
        """,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    stacks, allocate = map(int, result.stdout.split())
    assert stacks == 20 and allocate == 20, result.stdout


# ---- dump_traceback_later -----------------------------------------------------------------------


def test_dump_traceback_later_fires_once():
    result = run_python(
        """
        import os, sys, tempfile, threading, time, libleak.faults
        out = tempfile.TemporaryFile("w+")
        def text():  # pread: seeking would move the offset the dump is being written at
            return os.pread(out.fileno(), 1 << 20, 0).decode()
        def waiting():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if "most recent call first" in text():
                    break
                time.sleep(0.01)
        libleak.faults.dump_traceback_later(0.5, file=out)
        waiting()
        time.sleep(1.0)   # a repeat would have fired again by now
        libleak.faults.cancel_dump_traceback_later()
        sys.stdout.write(text())
        """
    )
    assert result.returncode == 0, result.stderr
    assert re.match(r"^Timeout \(0:00:00\.500000\)!\n" + THREAD_HEADER + "\n", result.stdout), result.stdout
    assert result.stdout.count("Timeout (") == 1
    assert "in waiting" in result.stdout


def test_dump_traceback_later_repeats_until_cancelled():
    result = run_python(
        """
        import os, sys, time, libleak.faults
        r, w = os.pipe()
        libleak.faults.dump_traceback_later(0.05, repeat=True, file=w)
        seen = b""
        while seen.count(b"Timeout (") < 3:
            seen += os.read(r, 65536)
        libleak.faults.cancel_dump_traceback_later()
        print("three dumps")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "three dumps\n"


def test_dump_traceback_later_exit():
    result = run_python(
        """
        import threading, libleak.faults
        libleak.faults.dump_traceback_later(0.5, exit=True)
        def stuck():
            threading.Event().wait(60)
        stuck()
        print("not reached")
        """
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Timeout (0:00:00.500000)!" in result.stderr
    assert re.search(r'  File "<string>", line 5 in stuck\n', result.stderr), result.stderr


def test_cancelled_dump_traceback_later_prints_nothing():
    result = run_python(
        """
        import time, libleak.faults
        libleak.faults.dump_traceback_later(0.5)
        libleak.faults.cancel_dump_traceback_later()
        libleak.faults.cancel_dump_traceback_later()   # twice is fine
        time.sleep(1.5)
        """
    )
    assert result.returncode == 0
    assert result.stderr == ""


def test_dump_traceback_later_second_call_replaces_the_first():
    with tempfile.NamedTemporaryFile("r") as first, tempfile.NamedTemporaryFile("r") as second:
        result = run_python(
            """
            import sys, time, libleak.faults
            a = open(sys.argv[1], "w"); b = open(sys.argv[2], "w")
            libleak.faults.dump_traceback_later(0.5, file=a)
            libleak.faults.dump_traceback_later(0.2, file=b, exit=True)
            time.sleep(60)
            """,
            first.name,
            second.name,
        )
        assert result.returncode == 1, result.stderr
        assert first.read() == ""
        assert "Timeout (0:00:00.200000)!" in second.read()


# ---- The example --------------------------------------------------------------------------------


def test_example_dump_threads_runs():
    srcdir = os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    example = os.path.join(srcdir, "examples", "dump_threads.py")
    proc = subprocess.run(
        [sys.executable, example],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout
    assert "Current thread 0x" in proc.stdout
    assert "Timeout (" in proc.stdout
