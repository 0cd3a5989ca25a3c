"""libleak.ondemand: kill -USR2 on a running process writes its stacks, asyncio tasks, snapshot and
census, whatever the main thread is doing; fork workers write their own; blocking calls survive.

Each test runs a program in a child process, waits (never for a fixed time: for a line or a file,
with a generous deadline) and reads what the dump wrote."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

DEADLINE = 120.0  # seconds: a loaded shared machine, not a speed requirement


class Child:
    """A Python program in a process of its own (its own session, so fork workers die with it)."""

    def __init__(self, tmp_path, source, env=None):
        self.script = tmp_path / "program.py"
        self.script.write_text(textwrap.dedent(source))
        self.dumps = tmp_path / "dumps"
        self.dumps.mkdir(exist_ok=True)
        full_env = dict(os.environ)
        for name in ("LIBLEAK_TRACE", "LIBLEAK_FAULTS", "LIBLEAK_DUMP_SIGNAL", "LIBLEAK_DIR"):
            full_env.pop(name, None)
        full_env.update(env or {})
        full_env["DUMPS"] = str(self.dumps)
        self.process = subprocess.Popen([sys.executable, str(self.script)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                                        universal_newlines=True, start_new_session=True)

    def line_number(self, marker):
        """The line of the script that carries `# marker`."""
        for number, line in enumerate(self.script.read_text().splitlines(), 1):
            if line.rstrip().endswith("# " + marker):
                return number
        raise AssertionError("no line marked %s" % marker)

    def read_stdout_line(self):
        line = self.process.stdout.readline()
        assert line, "the child ended early: " + self.finish()
        return line.strip()

    def wait_for_dump_line(self):
        """The stderr line of the next dump (a blocking read: the line comes, or the child dies)."""
        while True:
            line = self.process.stderr.readline()
            assert line, "no dump line; the child ended: " + self.finish()
            if line.startswith("libleak: dump of process"):
                return line.strip()

    def stacks_showing(self, needle, pid=None, attempts=100, times=1):
        """Signals the child (or process `pid`) until a dump's stacks contain `needle` (`times` times
        or more: it may still be a line short of the call it was about to make when it said it was
        ready); returns those stacks."""
        for _ in range(attempts):
            self.kill(pid=pid)
            line = self.wait_for_dump_line()
            assert "dump of process %d " % (pid or self.process.pid) in line, line
            stem = re.search(r"written to (.*)-\{", line).group(1)
            stacks = read(stem + "-stacks.txt")
            if stacks.count(needle) >= times:
                return stacks
        raise AssertionError("%d dumps, none showing %r; the last:\n%s" % (attempts, needle, stacks))

    def wait_for_file(self, suffix, pid=None):
        """The path of the first dump file with `suffix` (a complete file: it is renamed into place)."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            for name in sorted(os.listdir(str(self.dumps))):
                if name.endswith(suffix) and (pid is None or name.startswith("libleak-%d-" % pid)):
                    return str(self.dumps / name)
            time.sleep(0.05)
        raise AssertionError("no %s file in %s" % (suffix, os.listdir(str(self.dumps))))

    def kill(self, signum=signal.SIGUSR2, pid=None):
        os.kill(pid or self.process.pid, signum)

    def finish(self):
        """Ends the child and everything it forked; returns what it printed."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = self.process.communicate(timeout=DEADLINE)
        return "stdout:\n%s\nstderr:\n%s" % (out, err)


@pytest.fixture
def child(tmp_path):
    made = []

    def make(source, env=None):
        made.append(Child(tmp_path, source, env))
        return made[-1]

    yield make
    for c in made:
        if c.process.poll() is None:
            c.finish()


def cpu_ticks(pid):
    """User plus system CPU time of a process so far, in clock ticks (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def read(path):
    with open(path) as stream:
        return stream.read()


def thread_block(stacks, header_regex):
    """The frames of the thread whose header matches, from a faulthandler-format dump."""
    for block in stacks.split("\n\n"):
        if re.match(header_regex, block):
            return block
    raise AssertionError("no thread block matching %r in:\n%s" % (header_regex, stacks))


PRELUDE = """\
import os, signal, sys, threading
import libleak.ondemand
libleak.ondemand.install(signal.SIGUSR2, os.environ["DUMPS"])
"""


def test_usr2_while_the_main_thread_sleeps(child):
    c = child(PRELUDE + """
import time
def nap():
    print("ready", flush=True)
    time.sleep(3600)  # SLEEP
    print("woke early", flush=True)
nap()
""")
    assert c.read_stdout_line() == "ready"
    c.kill()
    line = c.wait_for_dump_line()
    pid = c.process.pid
    assert "libleak: dump of process %d written to %s/libleak-%d-" % (pid, c.dumps, pid) in line
    assert "{stacks.txt,census.json}" in line  # no asyncio, no tracer: no such files
    stacks = c.stacks_showing('program.py", line %d in nap' % c.line_number("SLEEP"))
    main = thread_block(stacks, r"Thread 0x[0-9a-f]+ \(most recent call first\):\n.*line %d in nap" % c.line_number("SLEEP"))
    assert 'program.py", line %d in nap' % c.line_number("SLEEP") in main
    assert re.search(r"^Current thread 0x[0-9a-f]{16} \(most recent call first\):\n.*in _serve", stacks, re.M)
    # The signal did not end the sleep: a second signal is served by the same, still sleeping, process.
    c.kill()
    c.wait_for_dump_line()
    assert c.process.poll() is None
    assert "woke early" not in c.finish()


def test_usr2_while_the_main_thread_spins_in_python(child):
    c = child(PRELUDE + """
def spin():
    print("ready", flush=True)
    n = 0
    while True:  # LOOP
        n += 1  # SPIN
spin()
""")
    assert c.read_stdout_line() == "ready"
    c.kill()
    c.wait_for_dump_line()
    stacks = c.stacks_showing(" in spin\n")
    lines = (c.line_number("LOOP"), c.line_number("SPIN"))
    assert re.search(r'program.py", line (%d|%d) in spin' % lines, stacks), stacks
    census = json.loads(read(c.wait_for_file("-census.json")))
    assert census["pid"] == c.process.pid
    assert census["count"] > 1000 and census["size"] > 0
    types = {row["type"]: row for row in census["types"]}
    assert types["function"]["count"] >= 1 and types["str"]["size"] > 0
    sizes = [row["size"] for row in census["types"]]
    assert sizes == sorted(sizes, reverse=True)
    assert [name for name in os.listdir(str(c.dumps)) if name.endswith(".tmp")] == []


def test_stacks_are_written_while_a_thread_keeps_the_gil(child):
    # A catastrophic regular expression runs in C for ages without letting the GIL go: the rest of
    # the dump must wait, but the stacks are written without the GIL and show where it is stuck.
    c = child(PRELUDE + """
import re
def stuck():
    print("ready", flush=True)
    re.match(r"(a+)+$", "a" * 64 + "b")  # STUCK
stuck()
""")
    assert c.read_stdout_line() == "ready"
    needle = 'program.py", line %d in stuck' % c.line_number("STUCK")
    # Signal once the regular expression surely runs (the child burns CPU in it, and only there):
    # a dump that started before would be stuck itself, waiting for the GIL after its stacks.
    burned = cpu_ticks(c.process.pid)
    deadline = time.monotonic() + DEADLINE
    while cpu_ticks(c.process.pid) < burned + 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    c.kill()
    stacks = read(c.wait_for_file("-stacks.txt"))
    assert needle in stacks, stacks
    c.finish()


def test_usr2_while_blocked_in_accept_and_the_accept_goes_on(child):
    c = child(PRELUDE + """
import socket
def serve():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    print(server.getsockname()[1], flush=True)
    connection, _ = server.accept()  # ACCEPT
    print("accepted", connection.recv(10).decode(), flush=True)
serve()
""")
    port = int(c.read_stdout_line())
    c.stacks_showing('program.py", line %d in serve' % c.line_number("ACCEPT"))
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as client:
        client.sendall(b"hello")
        assert c.read_stdout_line() == "accepted hello"
    assert c.process.wait(timeout=DEADLINE) == 0


def test_blocking_read_is_not_broken_by_the_signal(child):
    c = child(PRELUDE + """
def wait_for_input():
    print("ready", flush=True)
    data = os.read(0, 100)  # READ
    print("read", data.decode().strip(), flush=True)
wait_for_input()
""")
    assert c.read_stdout_line() == "ready"
    c.stacks_showing('program.py", line %d in wait_for_input' % c.line_number("READ"))
    for _ in range(3):
        c.kill()
        c.wait_for_dump_line()
    c.process.stdin.write("payload\n")
    c.process.stdin.flush()
    assert c.read_stdout_line() == "read payload"
    assert c.process.wait(timeout=DEADLINE) == 0


ASYNC_PROGRAM = PRELUDE + """
import asyncio

async def query(n):
    await asyncio.sleep(3600)  # LEAF

async def handler(n):
    await query(n)  # MIDDLE

async def other_main(started):
    task = asyncio.ensure_future(handler(99))
    task.set_name("other-handler") if hasattr(task, "set_name") else None
    # set once this coroutine and the handler are both suspended (the callback runs after them)
    asyncio.get_running_loop().call_soon(started.set)
    await task  # OTHER-TOP

def other_thread(started):
    asyncio.run(other_main(started))

async def main():
    started = threading.Event()
    threading.Thread(target=other_thread, args=(started,), name="second-loop", daemon=True).start()
    started.wait()
    workers = [asyncio.ensure_future(handler(i)) for i in range(2)]
    for i, worker in enumerate(workers):
        worker.set_name("worker-%d" % i)
    gathered = asyncio.gather(*workers)
    await asyncio.sleep(0)
    # "ready" once main is suspended at the gather too: the callback runs in the loop's next round
    asyncio.get_running_loop().call_soon(lambda: print("ready", flush=True))
    await gathered  # GATHER

asyncio.run(main())
"""


def test_asyncio_task_stacks_of_every_running_loop(child):
    c = child(ASYNC_PROGRAM)
    assert c.read_stdout_line() == "ready"
    c.kill()
    line = c.wait_for_dump_line()
    assert "tasks.txt" in line
    tasks = read(c.wait_for_file("-tasks.txt"))
    assert re.search(r"asyncio tasks of process %d at \S+Z: 2 running event loops" % c.process.pid, tasks), tasks
    loops = tasks.split("\nEvent loop ")[1:]
    assert len(loops) == 2, tasks
    (main_loop,) = [text for text in loops if "(MainThread)" in text]
    (other_loop,) = [text for text in loops if "(second-loop)" in text]
    assert ": 3 pending tasks" in main_loop and ": 2 pending tasks" in other_loop, tasks
    leaf, middle = c.line_number("LEAF"), c.line_number("MIDDLE")
    for name, text in (("worker-0", main_loop), ("worker-1", main_loop), ("other-handler", other_loop)):
        block = text.split("Task %r (pending):\n" % name, 1)[1].split("\n\n", 1)[0]
        frames = re.findall(r'File "([^"]+)", line (\d+) in (\w+)', block)
        # Outermost first: handler at its await, query at its await, then asyncio.sleep suspended.
        assert frames[0] == (str(c.script), str(middle), "handler"), block
        assert frames[1] == (str(c.script), str(leaf), "query"), block
        assert frames[2][2] == "sleep" and frames[2][0].endswith(os.path.join("asyncio", "tasks.py")), block
        assert "    await query(n)  # MIDDLE" in block and "    await asyncio.sleep(3600)  # LEAF" in block
        assert block.splitlines()[-2].endswith("<- suspended here") or "<- suspended here" in block
        assert re.search(r"  awaiting: <Future pending", block), block
    main_block = main_loop.split("Task 'Task-1' (pending):\n", 1)[1].split("\n\n", 1)[0]
    assert 'line %d in main  <- suspended here' % c.line_number("GATHER") in main_block, main_block
    assert re.search(r"awaiting: <_GatheringFuture pending.*> gathering 'worker-0', 'worker-1'", main_block), main_block
    top_block = other_loop.split("(pending):\n", 1)[1].split("\n\n", 1)[0]
    assert "line %d in other_main  <- suspended here" % c.line_number("OTHER-TOP") in top_block, top_block
    assert "awaiting: <Task pending name='other-handler'" in top_block, top_block
    # The stacks show both loops' threads waiting in their selectors (the main thread may be a few
    # lines short of its select when the first signal lands: signal again until it is there).
    stacks = read(c.wait_for_file("-stacks.txt"))
    if stacks.count(" in select\n") < 2:
        stacks = c.stacks_showing(" in select\n", times=2)
    assert stacks.count(" in select\n") >= 2, stacks


def test_snapshot_when_tracing(child):
    c = child(PRELUDE + """
import libleak.tracer
libleak.tracer.start(4)
hoard = [bytes(1000) for _ in range(2000)]  # HOARD
print("ready", flush=True)
threading.Event().wait()
""")
    assert c.read_stdout_line() == "ready"
    c.kill()
    line = c.wait_for_dump_line()
    assert "snapshot.snap" in line
    import libleak.tracer

    snapshot = libleak.tracer.Snapshot.load(c.wait_for_file("-snapshot.snap"))
    assert snapshot.traceback_limit == 4
    top = [s for s in snapshot.statistics("lineno") if s.traceback[0].filename == str(c.script)]
    assert top and top[0].traceback[0].lineno == c.line_number("HOARD") and top[0].size >= 2000 * 1000


def test_fork_workers_write_their_own_dumps(child):
    c = child(PRELUDE + """
import time
def worker():
    os.write(1, b"%d\\n" % os.getpid())  # one write: the two workers' lines never interleave
    time.sleep(3600)  # WORKER

pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        try:
            worker()
        finally:
            os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
""")
    # Each worker says it is up (a server signals its workers once they serve, not mid-fork).
    workers = [int(c.read_stdout_line()) for _ in range(2)]
    assert len(workers) == 2
    for pid in workers:
        stacks = c.stacks_showing('program.py", line %d in worker' % c.line_number("WORKER"), pid=pid)
        assert "(most recent call first)" in stacks
    names = os.listdir(str(c.dumps))
    pids = {int(name.split("-")[1]) for name in names}
    assert pids == set(workers), names  # the parent wrote nothing: it was not signalled
    c.finish()


def test_dump_from_python_and_its_names(tmp_path, python):
    result = python("""
        import os, re, libleak.ondemand
        first = libleak.ondemand.dump(%r)
        second = libleak.ondemand.dump(%r)
        print(first[0]); print(second[0])
    """ % (str(tmp_path), str(tmp_path)))
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split()
    assert re.match(r".*/libleak-\d+-\d{8}T\d{6}Z-stacks.txt$", first), first
    assert first != second  # two dumps in one second do not overwrite each other
    assert result.stderr.count("libleak: dump of process") == 2
    stems = {os.path.basename(path)[: -len("-stacks.txt")] for path in (first, second)}
    expected = {stem + suffix for stem in stems for suffix in ("-stacks.txt", "-census.json")}
    assert set(os.listdir(str(tmp_path))) == expected  # no temporary file left, no tasks without asyncio


def test_chains_to_the_previous_handler_and_uninstall_restores_it(tmp_path, python):
    result = python("""
        import os, signal, threading
        seen = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
        import libleak.ondemand
        libleak.ondemand.install("SIGUSR1", %r)
        os.kill(os.getpid(), signal.SIGUSR1)
        libleak.ondemand.uninstall()     # waits for the dump the signal asked for
        print(len(seen), len(os.listdir(%r)) > 0)
        os.kill(os.getpid(), signal.SIGUSR1)
        print(len(seen), libleak.ondemand.installed_signal())
        print([t.name for t in threading.enumerate() if t.name == "libleak-ondemand"])
    """ % (str(tmp_path), str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["1 True", "2 None", "[]"], result.stdout + result.stderr


def test_bad_arguments(python):
    result = python("""
        import libleak.ondemand as o
        for bad in ("SIGKILL", "STOP", "SIGSEGV", 0, -3, 100000, "nope", "", "SIG_IGN"):
            try:
                o.install(bad)
            except ValueError as error:
                print("ValueError", error)
        for bad in (None, 2.5, True, b"USR2"):
            try:
                o.install(bad)
            except TypeError as error:
                print("TypeError")
        print(o.installed_signal())
        o.install("USR2", ".")
        try:
            o.install("USR2", "")
        except ValueError as error:
            print("ValueError", error)
        o.install("USR1", ".")   # another signal replaces the first
        import signal
        print(o.installed_signal() == signal.SIGUSR1, signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL)
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:13]] == ["ValueError"] * 9 + ["TypeError"] * 4, lines
    assert "SIGKILL cannot be used" in lines[0] and "SIGSTOP" in lines[1] and "out of range" in lines[3]
    assert lines[13] == "None"
    assert lines[14].startswith("ValueError") and "empty" in lines[14]
    assert lines[15] == "True True"


def test_docstring_examples_run(python):
    result = python("""
        import doctest, libleak.ondemand as o
        print(*doctest.testmod(o))
    """)
    assert result.returncode == 0, result.stderr
    failed, attempted = map(int, result.stdout.split())
    assert failed == 0 and attempted >= 4, result.stdout


def test_the_example_server_dumps_its_pending_requests(tmp_path):
    srcdir = os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIBLEAK_") or k in ("LIBLEAK_SRCDIR", "LIBLEAK_BUILDDIR")}
    result = subprocess.run([sys.executable, os.path.join(srcdir, "examples", "ondemand_server.py"), "--once"],
                            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    assert "libleak: dump of process" in result.stderr and "Traceback" not in result.stderr, result.stderr
    (tasks,) = [name for name in os.listdir(str(tmp_path)) if name.endswith("-tasks.txt")]
    text = read(str(tmp_path / tasks))
    assert text.count(" in slow_lookup\n") == 3, text
    assert text.count(" in handle\n") == 3, text


def test_installing_again_moves_the_directory(tmp_path, python):
    first, second = tmp_path / "first", tmp_path / "second"
    result = python("""
        import os, signal, time, libleak.ondemand as o
        o.install("USR1", %r)
        o.install("USR1", %r)
        os.kill(os.getpid(), signal.SIGUSR1)
        while o.dumps_written() == 0:
            time.sleep(0.01)
        print(len(os.listdir(%r)), sorted(name.rsplit("-", 1)[1] for name in os.listdir(%r)))
    """ % (str(first), str(second), str(first), str(second)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 ['census.json', 'stacks.txt']", result.stdout + result.stderr
