"""libleak.faults.watchdog: timers that belong to a block of code.

A watchdog that must fire is waited for (its file is polled with a generous deadline); a watchdog
that must not fire is given a short timeout and the test then waits well past it, so a wrongly
armed timer would be seen.  Nothing asserts how long anything took.
"""

import os
import re
import tempfile
import threading
import time

import pytest

import libleak.faults as faults
from conftest import run_python

DEADLINE = 30.0


class DumpFile:
    """A temporary file a watchdog writes to, and what it holds so far."""

    def __init__(self):
        self.file = tempfile.TemporaryFile("w+")

    def text(self):
        # pread: the watchdog writes through the same open file while the test reads, so reading
        # must not move the shared offset (a seek(0) would make the next write overwrite the dump).
        fd = self.file.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")

    def dumps(self):
        return self.text().count("Timeout (")

    def wait_for_dumps(self, count=1):
        # Polls ten times a second, not a hundred: the thread should be found sleeping, inside the
        # guarded block, nearly always (a dump that lands while a polling function runs shows
        # that function instead).
        deadline = time.monotonic() + DEADLINE
        while self.dumps() < count:
            assert time.monotonic() < deadline, "the watchdog never fired"
            time.sleep(0.1)

    def close(self):
        self.file.close()


@pytest.fixture
def dump_file():
    files = []

    def make():
        files.append(DumpFile())
        return files[-1]

    yield make
    for f in files:
        f.close()


def guarded_block(out):
    out.wait_for_dumps()


def test_watchdog_fires_when_the_block_is_too_slow(dump_file):
    out = dump_file()
    with faults.watchdog(1.5, file=out.file) as dog:
        guarded_block(out)
    assert isinstance(dog, faults.watchdog)
    text = out.text()
    assert re.match(r"^Timeout \(0:00:01\.500000\)!\nThread 0x[0-9a-f]{16} \(most recent call first\):\n", text), text
    # the first (here the only Python) thread is the main thread, inside the guarded block
    first_thread = text.split("\n\n")[0]
    assert "Thread 0x%016x" % threading.main_thread().ident in first_thread
    assert "in guarded_block" in first_thread
    assert out.dumps() == 1


def test_watchdog_cancelled_on_time_prints_nothing(dump_file):
    out = dump_file()
    # Margins are generous on purpose: a loaded sanitizer run must not turn "on time" into "late".
    with faults.watchdog(1.0, file=out.file):
        pass
    time.sleep(1.5)
    assert out.text() == ""


def test_watchdog_all_threads_false_dumps_only_the_thread_that_armed_it(dump_file):
    out = dump_file()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with faults.watchdog(0.5, file=out.file, all_threads=False):
            guarded_block(out)
    finally:
        stop.set()
        other.join()
    text = out.text()
    assert "in guarded_block" in text
    assert "Thread 0x%016x" % other.ident not in text
    assert text.count("most recent call first") == 1, text


def test_watchdog_repeat(dump_file):
    out = dump_file()
    with faults.watchdog(0.05, file=out.file, repeat=True):
        out.wait_for_dumps(3)
    count = out.dumps()
    time.sleep(0.3)
    assert out.dumps() == count, "the repeating watchdog kept firing after its block"


def test_timed_dumps_of_a_busy_thread_show_its_whole_stack():
    # The watchdog thread dumps, every millisecond, a thread that calls and returns all the time:
    # frames return while they are read (3.12 and 3.13 crashed on that), generators yield, and C
    # frames are published before their current frame is set (3.11 and 3.12).  Every dump must show
    # the thread's whole stack, from where it was down to <module>.  On 3.10 a generator caught on its
    # first instruction (GEN_START, which has no line) reads "line ???", as faulthandler prints it.
    result = run_python(
        """
        import os, re, sys, tempfile, libleak.faults as faults
        def leaf(x):
            return x + 1
        def gen(n):
            for i in range(n):
                yield i
        def work():
            total = 0
            for i in range(200):
                total += leaf(i)
            total += sum(gen(50))
            return total + len(sorted(range(20), key=lambda v: -v))
        def text(f):
            # pread: the watchdog writes through the same open file, so reading must not move it
            return os.pread(f.fileno(), os.fstat(f.fileno()).st_size, 0).decode()
        with tempfile.TemporaryFile("w+") as f:
            faults.dump_traceback_later(0.001, repeat=True, file=f)
            while text(f).count("Timeout (") < 2000:
                for _ in range(50):
                    work()
            faults.cancel_dump_traceback_later()
            dumps = text(f).split("Timeout (")[1:]
        frame = r'  File "[^"]+", line \\d+ in [<>\\w]+\\n'
        if sys.version_info[:2] == (3, 10):
            frame = r'(?:%s|  File "<string>", line \\?\\?\\? in gen\\n)' % frame
        whole = re.compile(r"[\\d:.]+\\)!\\nThread 0x[0-9a-f]+ \\(most recent call first\\):\\n"
                           r'(%s)*  File "<string>", line \\d+ in <module>\\n$' % frame)
        bad = [d for d in dumps if not whole.match(d)]
        print(len(dumps), len(bad))
        print(bad[:3])
        """
    )
    assert result.returncode == 0, result.stderr
    count, bad = map(int, result.stdout.split("\n")[0].split())
    assert count >= 2000 and bad == 0, result.stdout


def test_watchdog_exit():
    result = run_python(
        """
        import threading, libleak.faults
        def hang():
            threading.Event().wait(60)
        with libleak.faults.watchdog(0.5, exit=True):
            hang()
        print("not reached")
        """
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert re.search(r'  File "<string>", line 4 in hang\n', result.stderr), result.stderr


def test_nested_inner_cancel_leaves_outer_armed(dump_file):
    outer, inner = dump_file(), dump_file()
    with faults.watchdog(0.3, file=outer.file):
        with faults.watchdog(1.0, file=inner.file):
            pass  # cancelled long before it fires
        outer.wait_for_dumps()
    time.sleep(1.0)
    assert inner.text() == ""
    assert outer.dumps() == 1


def test_nested_inner_fires_outer_keeps_its_own_timer(dump_file):
    outer, inner = dump_file(), dump_file()
    with faults.watchdog(60, file=outer.file):
        with faults.watchdog(0.1, file=inner.file):
            inner.wait_for_dumps()
        assert outer.text() == ""
    assert inner.dumps() == 1


def test_the_same_watchdog_object_reentered(dump_file):
    out = dump_file()
    dog = faults.watchdog(0.2, file=out.file)
    with dog:
        with dog:
            pass
        out.wait_for_dumps()  # the outer entry's timer survived the inner exit
    time.sleep(0.3)
    assert out.dumps() == 1


def test_watchdogs_in_four_threads_are_independent(dump_file):
    # Threads 0 and 1 overstay their timeouts; threads 2 and 3 leave their blocks at once, and
    # their cancellations must not disarm the others.
    files = [dump_file() for _ in range(4)]
    errors = []
    left = threading.Barrier(4)

    def worker(index):
        try:
            # the two that leave at once get a long timeout, so only a real bug can make them fire
            with faults.watchdog(0.2 if index < 2 else 1.5, file=files[index].file):
                if index < 2:
                    left.wait(DEADLINE)
                    files[index].wait_for_dumps()
            if index >= 2:
                left.wait(DEADLINE)
        except Exception as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,), name="worker-%d" % i) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE * 2)
    assert not errors, errors
    time.sleep(1.6)
    assert [f.dumps() for f in files] == [1, 1, 0, 0]
    # each dump shows the thread that overstayed, inside its block
    for index in (0, 1):
        assert "in worker" in files[index].text()


def test_watchdog_leaves_dump_traceback_later_alone(dump_file):
    later, scoped = dump_file(), dump_file()
    faults.dump_traceback_later(0.3, file=later.file)
    try:
        with faults.watchdog(1.0, file=scoped.file):
            pass
        later.wait_for_dumps()
    finally:
        faults.cancel_dump_traceback_later()
    time.sleep(1.0)
    assert scoped.text() == ""


def test_cancel_dump_traceback_later_leaves_watchdogs_alone(dump_file):
    out = dump_file()
    with faults.watchdog(0.2, file=out.file):
        faults.dump_traceback_later(60)
        faults.cancel_dump_traceback_later()
        out.wait_for_dumps()


def test_watchdog_as_a_decorator_gives_each_call_its_own_timer(dump_file):
    out = dump_file()
    started = threading.Barrier(3)

    @faults.watchdog(1.0, file=out.file)
    def handle(slow):
        """A request handler."""
        started.wait(DEADLINE)
        if slow:
            out.wait_for_dumps()
        return "handled"

    assert handle.__name__ == "handle" and handle.__doc__ == "A request handler."
    results = []
    threads = [threading.Thread(target=lambda s=s: results.append(handle(s))) for s in (True, False)]
    for thread in threads:
        thread.start()
    started.wait(DEADLINE)
    for thread in threads:
        thread.join(DEADLINE * 2)
    time.sleep(0.4)
    assert results == ["handled", "handled"]
    assert out.dumps() == 1


def test_watchdog_with_an_fd(dump_file):
    fd, path = tempfile.mkstemp()
    try:
        with faults.watchdog(0.05, file=fd):
            deadline = time.monotonic() + DEADLINE
            while os.path.getsize(path) == 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
    finally:
        os.close(fd)
        with open(path) as f:
            text = f.read()
        os.unlink(path)
    assert text.startswith("Timeout (0:00:00.050000)!\n")


def test_watchdog_keeps_its_file_alive():
    result = run_python(
        """
        import gc, os, tempfile, time, weakref, libleak.faults
        out = tempfile.TemporaryFile("w+")
        ref = weakref.ref(out)
        dog = libleak.faults.watchdog(0.1, file=out)
        del out; gc.collect()
        def text():  # pread leaves the offset the watchdog writes at alone
            return os.pread(ref().fileno(), 1 << 20, 0).decode()
        with dog:
            assert ref() is not None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "most recent call first" not in text():
                time.sleep(0.01)
        print(text().splitlines()[0])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Timeout (0:00:00.100000)!\n"


@pytest.mark.parametrize(
    "args, kwargs, error",
    [
        ((0,), {}, ValueError),
        ((-1.5,), {}, ValueError),
        ((float("nan"),), {}, ValueError),
        ((1e30,), {}, OverflowError),
        (("soon",), {}, TypeError),
        ((None,), {}, TypeError),
        ((1,), {"repeat": "x"}, TypeError),
        ((1,), {"file": -1}, ValueError),
    ],
)
def test_watchdog_rejects_what_dump_traceback_later_rejects(args, kwargs, error):
    with pytest.raises(error):
        faults.watchdog(*args, **kwargs)


def test_watchdog_rejects_a_closed_file():
    closed = tempfile.TemporaryFile("w")
    closed.close()
    with pytest.raises(ValueError, match="closed file"):
        faults.watchdog(1, file=closed)


def test_watchdog_repr():
    assert repr(faults.watchdog(2)) == "watchdog(2.0, repeat=False, exit=False, all_threads=True)"
