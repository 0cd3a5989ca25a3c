"""Dumps on demand: ``kill -USR2 PID`` makes a running server write what it is doing and holding.

After ``install()`` (or ``LIBLEAK_DUMP_SIGNAL=SIGUSR2`` in the environment, see
:mod:`libleak.autostart`), each signal writes, into the dump directory, files named with the
process id and the UTC time of the dump::

    libleak-1234-20261203T030405Z-stacks.txt    every thread's stack, faulthandler's format
    libleak-1234-20261203T030405Z-tasks.txt     every pending asyncio task of every running loop
    libleak-1234-20261203T030405Z-snapshot.snap the tracer's snapshot (only while libleak.tracer traces)
    libleak-1234-20261203T030405Z-census.json   the live objects per type (libleak.heap.census)

and one line on stderr saying where they are.  A second dump within the same second gets
``-2``, ``-3``, ... after the time.  Each file is written under a temporary name and renamed
when complete, so a reader never sees half a file.

How it works, and why it is safe in a server:

- The signal handler is C and only writes one byte to a pipe (errno kept, ``SA_RESTART``), so
  whatever the process was doing when the signal came (a ``sleep``, a blocking ``accept``, a busy
  loop) goes on undisturbed.
- A daemon thread, ``libleak-ondemand``, waits on the pipe.  It writes the stacks first, without
  taking the GIL, so they show what every thread (the main one included) was doing, even when a
  thread holds the GIL in C code and never lets go.  Then it takes the GIL and writes the rest
  (in that case the rest of the dump, and the next dumps, wait for the GIL).
- The asyncio tasks file lists every running event loop of any thread (found in the heap, as
  asyncio keeps no list of them) and, for each pending task, its name, its coroutine chain from
  the outermost coroutine to the innermost, one ``File "...", line N in function`` line and the
  source line per ``await`` level, the line it is suspended at, and what it awaits (a future, a
  task, the tasks a ``gather`` waits for).  Nothing runs on the loops: their coroutines' frames
  are only read.
- The census is JSON: ``{"pid", "time", "count", "size", "types": [{"type", "count", "size"},
  ...]}``, the types largest first (``type`` is libleak's 'module.Qualname' name).
- After ``fork()`` the child gets a pipe and a thread of its own, so ``kill -USR2`` on one worker
  of a pre-fork server (gunicorn, uWSGI) writes that worker's files, with its own PID in the names.

The signal is installed with ``sigaction``, so ``signal.getsignal()`` does not see it, and a later
``signal.signal()`` for the same signal replaces it.  A handler that was there before (a C one, or
Python's) still runs after ours.

Example::

    import libleak.ondemand
    libleak.ondemand.install("SIGUSR2", "/var/tmp/dumps")
    # ... later, from a shell: kill -USR2 <pid>
    paths = libleak.ondemand.dump()   # or write a dump now, from Python
"""

import atexit
import errno
import gc
import json
import linecache
import os
import signal
import sys
import threading
import time

from libleak import _libleak

__all__ = ["install", "uninstall", "installed_signal", "dump", "dumps_written", "signal_number"]

# The signals faults.enable() owns, and the ones that cannot be caught.
_REFUSED = ("SIGKILL", "SIGSTOP", "SIGSEGV", "SIGFPE", "SIGABRT", "SIGBUS", "SIGILL")

# How deep an await chain is followed; a deeper one ends with a line saying so.
_MAX_AWAIT_DEPTH = 100


class _Server:
    """One installed signal: its pipe, its thread and where it writes.  The thread owns read_fd
    (it closes it when the write end is closed); install/uninstall own write_fd."""

    __slots__ = ("signum", "directory", "read_fd", "write_fd", "thread")

    def __init__(self, signum, directory):
        self.signum = signum
        self.directory = directory
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)  # a full pipe drops the handler's byte, never blocks it
        self.thread = None

    def start_thread(self):
        """Starts the dump thread and waits until it waits on the pipe without the GIL (up to 10 s,
        then goes on anyway): until then it needs the GIL, which the program may never give back."""
        entries = _libleak.ondemand_wait_entries()
        self.thread = threading.Thread(target=_serve, args=(self,), name="libleak-ondemand", daemon=True)
        self.thread.start()
        _libleak.ondemand_wait_started(self.read_fd, entries, 10.0)


# The installed server, or None.  Protected by _lock (replaced by a new lock in a forked child,
# where another thread may have held it).
_lock = threading.Lock()
_server = None
_fork_hook_registered = False

# How many dumps the signal thread finished in this process (reset in a forked child).  Written by
# that thread only.
_dumps_written = 0


def signal_number(value):
    """The signal number `value` names: a number (12, "12"), a name ("SIGUSR2") or a name
    without its SIG ("USR2", "usr2").  ValueError for anything else, and for the signals a dump
    cannot use (SIGKILL, SIGSTOP, and the fatal ones, which ``libleak.faults.enable`` owns).

    Example::

        >>> import signal
        >>> signal_number("usr2") == signal.SIGUSR2
        True
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError("a signal must be a number or a name like 'SIGUSR2', not %s" % type(value).__name__)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            number = int(text)
        else:
            name = text.upper()
            if not name.startswith("SIG"):
                name = "SIG" + name
            member = signal.Signals.__members__.get(name)
            if member is None or name.startswith("SIG_"):
                raise ValueError("not a signal name or number: %r" % value)
            number = int(member)
    else:
        number = int(value)
    if not 1 <= number < signal.NSIG:
        raise ValueError("signal number out of range: %d (1 to %d)" % (number, signal.NSIG - 1))
    refused = [name for name in _REFUSED if getattr(signal, name, None) == number]
    if refused:
        raise ValueError("%s cannot be used for on-demand dumps" % refused[0])
    return number


def _directory(directory):
    """`directory` (None: the current one) as an absolute path that exists (created if missing)."""
    if directory is None:
        directory = os.getcwd()
    directory = os.fsdecode(os.fspath(directory))
    if not directory:
        raise ValueError("the dump directory must not be empty")
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError("the dump directory is not writable: %s" % directory)
    return directory


def install(signum=signal.SIGUSR2, directory=None):
    """Makes `signum` (a number or a name: ``"SIGUSR2"``, ``"USR2"``) write a dump into
    `directory` (default: the current directory, taken now as an absolute path; created if
    missing).  Installing the same signal again changes the directory; another signal replaces
    the first.  ValueError for a signal that cannot be used, OSError when the directory cannot be
    made or written.

    Example::

        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> install("SIGUSR2", folder)
        >>> installed_signal() == signal.SIGUSR2
        True
        >>> uninstall()
        True
    """
    global _server, _fork_hook_registered
    signum = signal_number(signum)
    directory = _directory(directory)
    with _lock:
        if _server is not None and _server.signum == signum:
            _server.directory = directory
            entries = _libleak.ondemand_wait_entries()
            try:
                os.write(_server.write_fd, b"D")  # the thread waits again, with the new directory
            except BlockingIOError:
                return  # the pipe is full of signals' bytes: a dump comes anyway
            _libleak.ondemand_wait_started(_server.read_fd, entries, 10.0)
            return
        if _server is not None:
            _stop_locked()
        server = _Server(signum, directory)
        try:
            _libleak.ondemand_install(signum, server.write_fd)
        except BaseException:
            os.close(server.read_fd)
            os.close(server.write_fd)
            raise
        server.start_thread()
        _server = server
        if not _fork_hook_registered:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            atexit.register(uninstall)
            _fork_hook_registered = True


def _stop_locked():
    """Puts the previous handler back and ends the thread (closing the write end wakes it with
    end of file; it closes the read end).  _lock held."""
    global _server
    server, _server = _server, None
    _libleak.ondemand_uninstall()
    os.close(server.write_fd)
    return server


def uninstall():
    """Puts back the handler install() replaced and ends the dump thread; returns True if a signal
    was installed.  A dump in progress, or one whose signal came before, finishes first (waiting up
    to a minute for it)."""
    with _lock:
        if _server is None:
            return False
        server = _stop_locked()
    if server.thread is not None and server.thread is not threading.current_thread():
        server.thread.join(60.0)
    return True


def installed_signal():
    """The signal number that writes dumps now, or None."""
    server = _server
    return None if server is None else server.signum


def dumps_written():
    """How many dumps the signal has written in this process so far (a dump that failed in part
    counts too): a program can wait for the dump it asked for with ``os.kill``."""
    return _dumps_written


def _after_fork_in_child():
    """The child of a fork has no dump thread and shares the parent's pipe: it gets its own pipe
    and thread, so its dumps are its own, named with its own PID."""
    global _lock, _server, _dumps_written
    _lock = threading.Lock()
    _dumps_written = 0
    parent = _server
    if parent is None:
        return
    try:
        server = _Server(parent.signum, parent.directory)
        _libleak.ondemand_set_fd(server.write_fd)
        _server = server
        for fd in (parent.read_fd, parent.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        server.start_thread()
    except Exception as error:  # never break the child's start
        _report("libleak: on-demand dumps are off in process %d: %s" % (os.getpid(), error))


def _report(line):
    """One line on stderr, straight to the descriptor (sys.stderr may be replaced or buffered)."""
    try:
        os.write(2, (line + "\n").encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def _serve(server):
    """The dump thread: waits for the signal's byte (the stacks are written by the wait, before
    the GIL is taken), writes the rest of the dump, again and again until the write end closes."""
    global _dumps_written
    try:
        while True:
            try:
                woke = _libleak.ondemand_wait(server.read_fd, server.directory)
            except OSError as error:
                _report("libleak: on-demand dump failed: %s" % error)
                if error.errno == errno.EBADF:  # the pipe is gone (closed by someone else)
                    return
                time.sleep(1.0)
                continue
            if woke is None:
                return
            if woke is False:  # install() changed the directory
                continue
            stem, stacks_errno = woke
            try:
                _write_rest(stem, stacks_errno)
            except Exception as error:  # a dump must never end the thread
                _report("libleak: on-demand dump %s-* failed: %s" % (stem, error))
            _dumps_written += 1
    finally:
        try:
            os.close(server.read_fd)
        except OSError:
            pass


def dump(directory=None):
    """Writes a dump now, as the signal does, into `directory` (default: the installed one, else
    the current directory); returns the paths written.  Works whether or not a signal is
    installed.  The stderr line is printed too."""
    if directory is None and _server is not None:
        directory = _server.directory
    directory = _directory(directory)
    stem, stacks_errno = _libleak.ondemand_write_stacks(directory)
    return _write_rest(stem, stacks_errno)


def _write_rest(stem, stacks_errno):
    """Everything after the stacks: asyncio tasks, tracer snapshot, census; then the stderr line.
    Each part that fails is named in that line; the others are still written."""
    written, failed = [], []
    if stacks_errno:
        failed.append("stacks (%s)" % os.strerror(stacks_errno))
    else:
        written.append(stem + "-stacks.txt")
    parts = [("tasks", "-tasks.txt", _write_tasks), ("snapshot", "-snapshot.snap", _write_snapshot),
             ("census", "-census.json", _write_census)]
    for name, suffix, writer in parts:
        path = stem + suffix
        try:
            if writer(path + ".tmp"):
                os.replace(path + ".tmp", path)
                written.append(path)
        except Exception as error:
            failed.append("%s (%s)" % (name, error))
            try:
                os.unlink(path + ".tmp")
            except OSError:
                pass
    names = " ".join(os.path.basename(path)[len(os.path.basename(stem)) + 1:] for path in written)
    line = "libleak: dump of process %d written to %s-{%s}" % (os.getpid(), stem, names.replace(" ", ","))
    if failed:
        line += "; failed: " + ", ".join(failed)
    _report(line)
    return written


def _utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---- the tracer's snapshot and the census -------------------------------------------------------


def _write_snapshot(path):
    """The tracer's snapshot, when libleak.tracer traces (else nothing is written)."""
    tracer = sys.modules.get("libleak.tracer")
    if tracer is None or not tracer.is_tracing():
        return False
    tracer.take_snapshot().dump(path)
    return True


def _write_census(path):
    """The census as JSON, types largest first, one type a line."""
    import libleak.heap

    census = libleak.heap.census(keep_objects=False)
    rows = sorted(census.by_type.items(), key=lambda item: (-item[1][1], item[0]))
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"pid": %d, "time": %s, "count": %d, "size": %d, "types": [\n'
                  % (os.getpid(), json.dumps(_utc_now()), census.count, census.size))
        for i, (name, (count, size)) in enumerate(rows):
            out.write(' {"type": %s, "count": %d, "size": %d}%s\n' % (json.dumps(name), count, size,
                                                                  "," if i + 1 < len(rows) else ""))
        out.write("]}\n")
    return True


# ---- asyncio tasks ------------------------------------------------------------------------------


def _running_loops(asyncio):
    """Every event loop that runs now, in any thread.  asyncio keeps the running loop of each thread
    in that thread's own state, out of reach of others, so the loops are found in the heap (every
    loop has a __dict__, so the collector tracks it).  type(), never isinstance(): isinstance may
    run the __class__ property of odd objects."""
    base = asyncio.AbstractEventLoop
    loops = []
    for obj in gc.get_objects():
        try:
            if issubclass(type(obj), base) and obj.is_running():
                loops.append(obj)
        except Exception:
            continue
    return loops


def _pending_tasks(asyncio, loop):
    """The loop's pending tasks.  all_tasks() copies a weak set that the loop's thread may change
    meanwhile: a RuntimeError there means "changed during iteration", and the copy is tried again."""
    for _ in range(1000):
        try:
            tasks = list(asyncio.all_tasks(loop))
            break
        except RuntimeError:
            continue
    else:
        return None
    return sorted(tasks, key=_task_sort_key)


def _task_sort_key(task):
    """Names in natural order: Task-2 before Task-10."""
    name = _task_name(task)
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return (head, int(tail) if tail else -1, name)


def _task_name(task):
    get_name = getattr(task, "get_name", None)
    return str(get_name()) if get_name is not None else "Task-%x" % id(task)


def _safe_repr(obj, limit=300):
    try:
        text = repr(obj)
    except Exception as error:
        text = "<%s object (repr failed: %s)>" % (type(obj).__name__, error)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _frame_of(obj):
    """(is_coroutine_like, frame) for a coroutine, generator or async generator (frame None when
    it has finished); (False, None) for anything else."""
    for attribute in ("cr_frame", "gi_frame", "ag_frame"):
        if hasattr(type(obj), attribute):
            return True, getattr(obj, attribute)
    return False, None


def _awaited_by(obj):
    """What a suspended coroutine, generator or async generator awaits or yields from."""
    for attribute in ("cr_await", "gi_yieldfrom", "ag_await"):
        if hasattr(type(obj), attribute):
            return getattr(obj, attribute)
    return None


def _is_running(obj):
    for attribute in ("cr_running", "gi_running", "ag_running"):
        if hasattr(type(obj), attribute):
            return bool(getattr(obj, attribute))
    return False


def _task_lines(task):
    """A task's block of the tasks file: its name and state, its await chain outermost first
    (file, line, function and source line per level), and what it awaits."""
    lines = ["Task %r (%s):" % (_task_name(task), "cancelling" if _cancelling(task) else "pending")]
    get_coro = getattr(task, "get_coro", None)
    obj = get_coro() if get_coro is not None else getattr(task, "_coro", None)
    levels = []
    seen = set()
    running = False
    while obj is not None and id(obj) not in seen:
        is_coroutine, frame = _frame_of(obj)
        if not is_coroutine:
            break
        if len(levels) >= _MAX_AWAIT_DEPTH:
            lines.append("  ... the await chain goes deeper than %d levels" % _MAX_AWAIT_DEPTH)
            obj = None
            break
        seen.add(id(obj))
        running = running or _is_running(obj)
        if frame is None:
            levels.append(None)
            obj = None
            break
        levels.append(frame)
        obj = _awaited_by(obj)
    if not levels:
        lines.append("  (no coroutine: %s)" % _safe_repr(get_coro() if get_coro is not None else None))
    for i, frame in enumerate(levels):
        if frame is None:
            lines.append("  <finished coroutine>")
            continue
        code = frame.f_code
        lineno = frame.f_lineno
        innermost = i == len(levels) - 1
        lines.append('  File "%s", line %s in %s%s' % (code.co_filename, lineno, code.co_name,
                                                       ("  <- running" if running else "  <- suspended here") if innermost else ""))
        source = linecache.getline(code.co_filename, lineno or 0).strip()
        if source:
            lines.append("    " + source)
    lines.append("  awaiting: " + _awaiting(task, obj, running))
    return lines


def _cancelling(task):
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None:
        try:
            return bool(cancelling())
        except Exception:
            return False
    return bool(getattr(task, "_must_cancel", False))


def _awaiting(task, leaf, running):
    """What the task waits for: the future it is blocked on (the task's own record of it, since a
    future's __await__ iterator does not show its future), with the tasks a gather waits for."""
    if running:
        return "nothing: the task is running now in its loop's thread"
    waiter = getattr(task, "_fut_waiter", None)
    target = waiter if waiter is not None else leaf
    if target is None:
        return "nothing: ready to run at the loop's next turn"
    text = _safe_repr(target)
    children = getattr(target, "_children", None)
    if children:
        names = []
        for child in list(children):
            names.append(repr(_task_name(child)) if hasattr(child, "get_coro") else _safe_repr(child, 80))
        text += " gathering " + ", ".join(names)
    return text


def _write_tasks(path):
    """The asyncio tasks file; nothing when asyncio was never imported (then there is no loop)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or not hasattr(asyncio, "all_tasks"):
        return False
    loops = _running_loops(asyncio)
    out = ["asyncio tasks of process %d at %s: %d running event loop%s" % (
        os.getpid(), _utc_now(), len(loops), "" if len(loops) == 1 else "s")]
    threads = {thread.ident: thread.name for thread in threading.enumerate()}
    for loop in loops:
        thread_id = getattr(loop, "_thread_id", None)
        where = ("thread 0x%016x (%s)" % (thread_id, threads.get(thread_id, "?"))) if thread_id else "an unknown thread"
        tasks = _pending_tasks(asyncio, loop)
        out.append("")
        if tasks is None:
            out.append("Event loop %s in %s: its tasks kept changing, not listed" % (_safe_repr(loop), where))
            continue
        out.append("Event loop %s in %s: %d pending task%s" % (_safe_repr(loop), where, len(tasks),
                                                                "" if len(tasks) == 1 else "s"))
        for task in tasks:
            out.append("")
            out.extend(_task_lines(task))
    with open(path, "w", encoding="utf-8", errors="backslashreplace") as stream:
        stream.write("\n".join(out) + "\n")
    return True
