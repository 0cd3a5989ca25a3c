"""libleak.faults prints what faulthandler prints, frame for frame.

Each test runs the same program twice in a child interpreter, once with faulthandler and once with
libleak.faults, and compares the parsed dumps: for every thread (matched by name, since thread ids
differ between runs) the header kind and the (file, line, function) list must be equal.  The
program parks its worker threads at known places (a lock, a queue, a deep recursion, time.sleep in a
generator, a blocking call inside asyncio coroutines) and waits until every stack is still before
it dumps, so both runs see the same frames.
"""

import importlib.util
import json
import re
import signal
import sys

import pytest

from conftest import run_python

# The child program.  argv: MODULE (faulthandler | libleak.faults), SCENARIO, extra arguments.
PROGRAM = r'''
import asyncio, functools, json, os, queue, signal, sys, threading, time

MODULE, SCENARIO = sys.argv[1], sys.argv[2]
EXTRA = sys.argv[3:]
if MODULE == "faulthandler":
    import faulthandler as fh
else:
    import libleak.faults as fh

release = threading.Event()
held = threading.Lock()
held.acquire()
orders = queue.Queue()
names = {}


def blocked_on_lock():
    held.acquire()  # PARK


def waiting_for_orders():
    orders.get()


def descend(depth):
    if depth == 0:
        release.wait()
        return
    descend(depth - 1)


def deep_recursion():
    depths = [int(arg) for arg in EXTRA if arg.isdigit()]
    descend(depths[0] if depths else 30)


def ticker():
    while True:
        time.sleep(3600)  # PARK: the process ends long before
        yield


def sleeping_in_generator():
    for _ in ticker():
        if release.is_set():
            return


async def fetch():
    held.acquire()  # PARK


async def handler():
    await fetch()


async def serve():
    await asyncio.gather(handler())


def asyncio_loop():
    asyncio.run(serve())


def start(name, target):
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    names[thread.ident] = name
    return thread


def stacks():
    """Every thread's stack as sys._current_frames() sees it: {ident: [(file, line, function)]}."""
    result = {}
    for ident, frame in sys._current_frames().items():
        frames = []
        while frame is not None:
            frames.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
            frame = frame.f_back
        result[ident] = frames
    return result


def wait_until_still(expected_threads):
    """Returns once every worker is blocked: all stacks unchanged over several polls, with the GIL
    released between polls so a runnable thread would have moved."""
    deadline = time.monotonic() + 30
    previous, still = None, 0
    while still < 6:
        if time.monotonic() > deadline:
            raise SystemExit("threads never settled: %r" % (stacks(),))
        time.sleep(0.03)
        current = stacks()
        current.pop(threading.get_ident(), None)
        if len(current) >= expected_threads and current == previous:
            still += 1
        else:
            still = 0
        previous = current


def main_thread_work():
    names[threading.get_ident()] = "main"
    workers = {
        "lock": blocked_on_lock,
        "queue": waiting_for_orders,
        "recursion": deep_recursion,
        "generator": sleeping_in_generator,
        "asyncio": asyncio_loop,
    }
    if SCENARIO == "threads50":
        workers = {"sleeper-%02d" % i: blocked_on_lock for i in range(50)}
    elif SCENARIO == "threads105":
        workers = {"sleeper-%03d" % i: blocked_on_lock for i in range(105)}
    for name, target in workers.items():
        start(name, target)
    wait_until_still(len(workers))
    print(json.dumps({str(k): v for k, v in names.items()}), flush=True)
    run_scenario()


def run_scenario():
    if SCENARIO in ("dump", "threads50", "threads105", "recursion"):
        fh.dump_traceback(sys.stderr, all_threads=True)
    elif SCENARIO == "dump_current":
        fh.dump_traceback(sys.stderr, all_threads=False)
    elif SCENARIO == "crash":
        from libleak import _libleak

        try:
            import _testcapi  # an extension outside sys.stdlib_module_names (libleak's has no m_methods)
        except ImportError:
            pass

        fh.enable(sys.stderr, all_threads=True)
        crash = functools.partial(_libleak._test_crash, EXTRA[-1])
        crash()
    elif SCENARIO == "register":
        fh.register(signal.SIGUSR1, sys.stderr, all_threads=True)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
    elif SCENARIO == "later":
        fh.dump_traceback_later(1.0, exit=True)  # main is parked long before
        threading.Event().wait(60)
    sys.stderr.flush()


main_thread_work()
'''

HEADER = re.compile(r"^(Current thread|Thread) 0x([0-9a-f]+) \(most recent call first\):$")
STACK = "Stack (most recent call first):"
FRAME = re.compile(r'^  File "(.*)", line (\d+|\?\?\?) in (.*)$')
CUT = re.compile(r"^  \.\.\.( \d+ more frames?)?$")


def parse_dump(text):
    """Parses a faulthandler-style dump into (preamble lines, [blocks]); each block is
    {"kind", "ident", "frames": [(file, line, function)], "cut": None or the cut line}."""
    preamble, blocks = [], []
    block = None
    for line in text.splitlines():
        header = HEADER.match(line)
        if header:
            block = {"kind": header.group(1), "ident": int(header.group(2), 16), "frames": [], "cut": None}
            blocks.append(block)
            continue
        if line == STACK:
            block = {"kind": "Stack", "ident": None, "frames": [], "cut": None}
            blocks.append(block)
            continue
        frame = FRAME.match(line)
        if frame and block is not None:
            block["frames"].append(frame.groups())
            continue
        if CUT.match(line) and block is not None:
            block["cut"] = line
            continue
        if line.startswith("  ") and block is not None:
            block["frames"].append(("<note>", line.strip(), ""))
            continue
        block = None
        if line:
            preamble.append(line)
    return preamble, blocks


def run_program(module, scenario, *extra, timeout=120):
    """Runs PROGRAM; returns (completed process, {thread name: block}, preamble, blocks)."""
    proc = run_python(PROGRAM, module, scenario, *extra, timeout=timeout)
    first_line = proc.stdout.splitlines()[0] if proc.stdout else "{}"
    names = {int(k): v for k, v in json.loads(first_line).items()}
    preamble, blocks = parse_dump(proc.stderr)
    by_name = {}
    for block in blocks:
        name = names.get(block["ident"], "main" if block["kind"] == "Stack" else "?%x" % (block["ident"] or 0))
        assert name not in by_name, "thread %s dumped twice:\n%s" % (name, proc.stderr)
        by_name[name] = block
    return proc, by_name, preamble, blocks


def names_in_order(run):
    """The thread names of a run_program result, in the order the dump printed them."""
    names = {id(block): name for name, block in run[1].items()}
    return [names[id(block)] for block in run[3]]


def comparable(block):
    """What must match between the two dumps: the header kind and the frames.  Where a stack is cut,
    faulthandler prints '  ...' (3.8 - 3.12; 3.13.0 prints nothing) and libleak counts what it cut,
    so the cut line is checked on its own."""
    return block["kind"], block["frames"]


def assert_same_dumps(scenario, *extra, expect_rc=0):
    theirs = run_program("faulthandler", scenario, *extra)
    ours = run_program("libleak.faults", scenario, *extra)
    for proc in (theirs[0], ours[0]):
        assert proc.returncode == expect_rc, proc.stderr
    assert theirs[1], "faulthandler printed no thread:\n" + theirs[0].stderr
    assert sorted(theirs[1]) == sorted(ours[1]), (theirs[0].stderr, ours[0].stderr)
    # the same order too: the interpreter's, newest thread first and the main thread last
    assert names_in_order(theirs) == names_in_order(ours), (theirs[0].stderr, ours[0].stderr)
    for name in theirs[1]:
        assert comparable(ours[1][name]) == comparable(theirs[1][name]), "thread %s differs:\n%s\n----\n%s" % (
            name,
            theirs[0].stderr,
            ours[0].stderr,
        )
        if theirs[1][name]["cut"] is not None:
            assert ours[1][name]["cut"] is not None, "thread %s was cut without saying so" % name
    return theirs, ours


def test_dump_traceback_all_threads_matches_faulthandler():
    theirs, ours = assert_same_dumps("dump")
    names = set(ours[1])
    assert {"main", "lock", "queue", "recursion", "generator", "asyncio"} <= names
    # faulthandler's order: the newest thread first, the main thread (the caller, so "Current
    # thread") last.
    assert names_in_order(ours)[:5] == ["asyncio", "generator", "recursion", "queue", "lock"], ours[0].stderr
    assert ours[3][-1] is ours[1]["main"]
    assert ours[3][-1]["kind"] == "Current thread"


def test_blocked_threads_show_the_blocking_frame():
    _, ours = assert_same_dumps("dump")
    by_name = ours[1]
    # a thread blocked in a C call (lock.acquire) shows the Python frame that made the call.
    assert by_name["lock"]["frames"][0][2] == "blocked_on_lock"
    recursion = [f[2] for f in by_name["recursion"]["frames"]]
    assert recursion[0] == "wait" and recursion.count("descend") == 31, recursion
    # time.sleep inside a generator: the generator's frame sits on top of its consumer.
    assert [f[2] for f in by_name["generator"]["frames"][:2]] == ["ticker", "sleeping_in_generator"]
    # a blocking call inside asyncio coroutines: the coroutine frames are on the thread's stack.
    functions = [f[2] for f in by_name["asyncio"]["frames"]]
    assert functions[:2] == ["fetch", "handler"], functions


def test_dump_current_thread_only_matches_faulthandler():
    theirs, ours = assert_same_dumps("dump_current")
    assert list(ours[1]) == ["main"]
    assert ours[1]["main"]["kind"] == "Stack"


def test_fifty_threads_all_appear():
    _, ours = assert_same_dumps("threads50")
    sleepers = [name for name in ours[1] if name.startswith("sleeper-")]
    assert len(sleepers) == 50


def test_more_threads_than_the_limit_are_cut_where_faulthandler_cuts():
    """106 threads, faulthandler's limit is 100.  faulthandler writes the 100 newest and a blank line
    and "..." (every version); libleak writes the same blocks and line, with the number cut, except
    that the main thread (the caller, the last in the list) is kept in place of the 100th."""
    theirs = run_program("faulthandler", "threads105")
    ours = run_program("libleak.faults", "threads105")
    for proc in (theirs[0], ours[0]):
        assert proc.returncode == 0, proc.stderr
    their_names, our_names = names_in_order(theirs), names_in_order(ours)
    assert len(their_names) == 100 and "main" not in their_names, their_names
    assert their_names == ["sleeper-%03d" % i for i in range(104, 4, -1)], their_names
    assert our_names == their_names[:99] + ["main"], our_names
    assert ours[1]["main"]["kind"] == "Current thread"
    for name in their_names[:99]:
        assert comparable(ours[1][name]) == comparable(theirs[1][name]), name
    assert theirs[0].stderr.endswith("\n\n...\n"), theirs[0].stderr[-200:]
    assert ours[0].stderr.endswith("\n\n... 6 more threads\n"), ours[0].stderr[-200:]


def test_deep_recursion_is_cut_at_the_frame_limit():
    theirs, ours = assert_same_dumps("dump", "500")
    block = ours[1]["recursion"]
    assert len(block["frames"]) == 100
    assert len(theirs[1]["recursion"]["frames"]) == 100
    # libleak counts what it cut: 500 descend frames + wait frames + the thread's own frames - 100.
    match = re.match(r"^  \.\.\. (\d+) more frames?$", block["cut"] or "")
    assert match, block
    assert int(match.group(1)) > 400
    # faulthandler's own line there: "  ..." up to 3.12; 3.13.0 prints none (libleak still counts)
    if sys.version_info[:3] == (3, 13, 0):
        assert theirs[1]["recursion"]["cut"] is None
    elif sys.version_info < (3, 13):
        assert theirs[1]["recursion"]["cut"] == "  ...", theirs[1]["recursion"]


@pytest.mark.parametrize("kind", ["segv", "abort", "fpe", "bus", "ill"])
def test_fatal_signal_dump_matches_faulthandler(kind):
    signum = {
        "segv": signal.SIGSEGV,
        "abort": signal.SIGABRT,
        "fpe": signal.SIGFPE,
        "bus": signal.SIGBUS,
        "ill": signal.SIGILL,
    }[kind]
    theirs, ours = assert_same_dumps("crash", kind, expect_rc=-signum)
    # every line outside the thread blocks: "Fatal Python error: ...", and from 3.10 the
    # "Extension modules: ..." line when faulthandler prints one
    assert theirs[2] == ours[2], (theirs[0].stderr, ours[0].stderr)
    assert ours[2][0].startswith("Fatal Python error: ")
    assert ours[1]["main"]["kind"] == "Current thread"
    assert ours[3][-1] is ours[1]["main"]
    # _testcapi is an extension module outside sys.stdlib_module_names: both list it, from 3.10 on
    # (libleak's own _libleak is not listed by either: its definition has no m_methods, which is
    # CPython's test for an extension)
    listed = [line for line in ours[2] if line.startswith("Extension modules: ")]
    if sys.version_info >= (3, 10) and importlib.util.find_spec("_testcapi") is not None:
        assert listed and "_testcapi" in listed[0].split(": ", 1)[1].split(" (total")[0].split(", "), listed
        assert "libleak._libleak" not in listed[0], listed
        assert re.match(r"^Extension modules: .* \(total: \d+\)$", listed[0]), listed
        assert ours[0].stderr.endswith("\n\n" + listed[0] + "\n"), ours[0].stderr
    else:
        assert not listed, ours[0].stderr


def test_registered_signal_dump_matches_faulthandler():
    theirs, ours = assert_same_dumps("register")
    assert ours[1]["main"]["kind"] == "Current thread"


def test_dump_traceback_later_matches_faulthandler():
    theirs, ours = assert_same_dumps("later", expect_rc=1)
    assert any(line.startswith("Timeout (") for line in ours[2]), ours[0].stderr
    assert [l for l in theirs[2] if l.startswith("Timeout")] == [l for l in ours[2] if l.startswith("Timeout")]
