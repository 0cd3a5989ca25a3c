"""Stack dumps of every Python thread: a drop-in for :mod:`faulthandler`, plus scoped watchdogs.

The functions have faulthandler's names, signatures, defaults, exceptions and output lines
(``Fatal Python error: Segmentation fault``, ``Current thread 0x... (most recent call first):``,
``  File "app.py", line 12 in handle``), so code and log parsers written for faulthandler keep
working::

    import libleak.faults as faulthandler

    faulthandler.enable()              # dump on SIGSEGV, SIGFPE, SIGABRT, SIGBUS and SIGILL
    faulthandler.dump_traceback()      # dump every thread now, in faulthandler's order

What faulthandler does not have:

- :class:`watchdog`, a timeout that belongs to a block of code.  Each watchdog has its own timer,
  so nested watchdogs and watchdogs in several threads never cancel or replace each other (the one
  timer of ``dump_traceback_later`` is shared by the whole process)::

      with libleak.faults.watchdog(30.0):
          handle_request()           # dumps every thread if this takes longer than 30 s

- :func:`set_limits`: how many frames per thread and how many threads a dump shows (what is cut is
  counted, ``  ... 37 more frames``, and a cut never drops the current or the main thread), and
  whether the main thread comes first.

Threads are written in faulthandler's order, the interpreter's: the newest first, the main thread
last, the current one marked ``Current thread`` in its place.  After a fatal error, from Python 3.10
on, the report ends as faulthandler's does with ``Extension modules: ... (total: N)``.  Dumps never
interleave: a watchdog that fires, or a signal that arrives, while another dump is being written
waits for it (a signal's dump is written right after it, still naming the thread that received it).

``file`` is a file object (flushed first; its ``fileno()`` is used and the object is kept alive
while a handler may write to it) or a file descriptor (an int).  The dumps are written with
``write(2)`` straight to that descriptor by async-signal-safe code.
"""

import functools
import math
import operator
import sys
import threading
import warnings
from collections import namedtuple

from libleak import _libleak

__all__ = [
    "cancel_dump_traceback_later",
    "disable",
    "dump_traceback",
    "dump_traceback_later",
    "enable",
    "get_limits",
    "is_enabled",
    "register",
    "set_limits",
    "unregister",
    "watchdog",
    "Limits",
]

# faulthandler parses all_threads and chain with truth testing from 3.12 on, and as integers
# before (a str raised TypeError); a drop-in follows the interpreter it runs on.  From 3.13 it also
# warns when a bool is passed as a file descriptor.
_TRUTH_FLAGS = sys.version_info >= (3, 12)
_WARN_BOOL_FD = sys.version_info >= (3, 13)

# The longest timeout faulthandler accepts: CPython converts it to int64 nanoseconds.
_MAX_TIMEOUT_NS = 2**63 - 1
_MAX_CORE_TIMEOUT = 9.0e9

# The file objects handlers write to, kept alive while installed (faulthandler does the same), so
# their descriptors are not closed and reused under a handler.  Protected by _lock.
_lock = threading.Lock()
_enabled_file = None
_later_file = None
_registered_files = {}

Limits = namedtuple("Limits", ["max_frames", "max_threads", "main_thread_first"])
Limits.__doc__ = """How much a dump shows and in which order: frames per thread, threads per dump, and
whether the main thread comes first (see set_limits)."""


def _as_int(value):
    """The integer value of `value` (an int or anything with ``__index__``), else TypeError."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError("%r object cannot be interpreted as an integer" % type(value).__name__) from None


def _as_flag(value):
    """all_threads/chain as this interpreter's faulthandler reads them."""
    if _TRUTH_FLAGS:
        return bool(value)
    return bool(_as_int(value))


def _file_descriptor(file):
    """(fd, obj_to_keep) for a `file` argument, with faulthandler's rules and exceptions.

    None means sys.stderr; an int is a descriptor; anything else must have fileno() and is flushed
    (flush errors are ignored, as faulthandler ignores them)."""
    if file is None:
        file = sys.stderr
        if file is None:
            raise RuntimeError("sys.stderr is None")
    if isinstance(file, int):
        if isinstance(file, bool) and _WARN_BOOL_FD:
            warnings.warn("bool is used as a file descriptor", RuntimeWarning, stacklevel=3)
        if not -(2**31) <= file <= 2**31 - 1:
            raise OverflowError("Python int too large to convert to C int")
        if file < 0:
            raise ValueError("file is not a valid file descriptor")
        return int(file), None
    fd = file.fileno()
    if not isinstance(fd, int) or fd < 0 or fd > 2**31 - 1:
        raise RuntimeError("file.fileno() is not a valid file descriptor")
    try:
        file.flush()
    except Exception:
        pass
    return fd, file


def _timeout_seconds(timeout):
    """`timeout` as a positive float of seconds, with faulthandler's exceptions."""
    if isinstance(timeout, float):
        if math.isnan(timeout):
            raise ValueError("Invalid value NaN (not a number)")
        if not abs(timeout * 1e9) < float(2**63):
            raise OverflowError("timeout value is too large")
        seconds = timeout
    else:
        whole = _as_int(timeout)
        if abs(whole) * 10**9 > _MAX_TIMEOUT_NS:
            raise OverflowError("timeout value is too large")
        seconds = float(whole)
    if seconds <= 0:
        raise ValueError("timeout must be greater than 0")
    # faulthandler rounds up to whole microseconds: 1e-12 s is a 1 us timeout, not an error.  The
    # C core takes at most 9e9 s (285 years); faulthandler accepts up to ~9.22e9 s, which is the
    # same "never" in practice, so longer timeouts are shortened rather than refused.
    return min(max(seconds, 1e-6), _MAX_CORE_TIMEOUT)


def _signal_number(signum):
    """`signum` checked as faulthandler checks it: fatal signals first, then the range."""
    signum = _as_int(signum)
    if not -(2**63) <= signum < 2**63:
        raise OverflowError("Python int too large to convert to C long")
    if signum > 2**31 - 1:
        raise OverflowError("signed integer is greater than maximum")
    if signum < -(2**31):
        raise OverflowError("signed integer is less than minimum")
    if signum in _libleak.FATAL_SIGNALS:
        raise RuntimeError("signal %d cannot be registered, use enable() instead" % signum)
    if signum < 1 or signum >= _libleak.NSIG:
        raise ValueError("signal number out of range")
    return signum


def enable(file=None, all_threads=True):
    """Dumps the stacks to `file` on SIGSEGV, SIGFPE, SIGABRT, SIGBUS and SIGILL.

    The dump is written from the signal handler; then the previous handler runs, so the process
    still dies (or a debugger still sees the fault).  Calling it again changes file and
    all_threads.  `file` defaults to sys.stderr.

    Example::

        >>> import libleak.faults
        >>> libleak.faults.enable()
        >>> libleak.faults.is_enabled()
        True
        >>> libleak.faults.disable()
        True
    """
    global _enabled_file
    flags = _libleak.DUMP_ALL_THREADS if _as_flag(all_threads) else 0
    fd, keep = _file_descriptor(file)
    with _lock:
        _libleak.faults_enable(fd, flags)
        _enabled_file = keep


def disable():
    """Restores the handlers enable() replaced; returns True if they were installed.

    Example::

        >>> libleak.faults.disable()
        False
    """
    global _enabled_file
    with _lock:
        was_enabled = _libleak.faults_disable()
        _enabled_file = None
    return was_enabled


def is_enabled():
    """True while enable()'s handlers are installed.

    Example::

        >>> libleak.faults.is_enabled()
        False
    """
    return _libleak.faults_is_enabled()


def _dump_arguments(file, all_threads):
    """dump_traceback's argument handling: (fd, flags, object to keep alive during the dump)."""
    flags = _libleak.DUMP_ALL_THREADS if _as_flag(all_threads) else 0
    fd, keep = _file_descriptor(file)
    return fd, flags, keep


# dump_traceback(file=sys.stderr, all_threads=True) is the C function itself, calling back into
# _dump_arguments: a Python wrapper would print itself as the innermost frame of the calling thread,
# and faulthandler's output starts at the caller.  See its docstring for an example.
_libleak.faults_set_dump_arguments(_dump_arguments)
dump_traceback = _libleak.dump_traceback


def dump_traceback_later(timeout, repeat=False, file=None, exit=False):
    """Dumps every thread after `timeout` seconds (every `timeout` seconds if `repeat`), then calls
    _exit(1) if `exit`.  There is ONE such timer per process, as in faulthandler: a second call
    replaces the first.  Use :class:`watchdog` for timers that must not disturb each other.

    Example::

        >>> libleak.faults.dump_traceback_later(60.0)
        >>> libleak.faults.cancel_dump_traceback_later()
    """
    global _later_file
    flags = _libleak.DUMP_ALL_THREADS
    if _as_int(repeat):
        flags |= _libleak.DUMP_REPEAT
    if _as_int(exit):
        flags |= _libleak.DUMP_EXIT
    seconds = _timeout_seconds(timeout)
    fd, keep = _file_descriptor(file)
    with _lock:
        _libleak.faults_dump_later(seconds, fd, flags)
        _later_file = keep


def cancel_dump_traceback_later():
    """Cancels the timer of dump_traceback_later(); nothing happens if none is armed.

    Example::

        >>> libleak.faults.cancel_dump_traceback_later()
    """
    global _later_file
    with _lock:
        _libleak.faults_dump_later_cancel()
        _later_file = None


def register(signum, file=None, all_threads=True, chain=False):
    """Dumps the stacks to `file` whenever signal `signum` arrives (SIGUSR1, say); with `chain`,
    the handler that was installed before runs too.  Registering a signal again replaces its file
    and options.  Fatal signals raise RuntimeError: use enable() for them.

    Example::

        >>> import signal
        >>> libleak.faults.register(signal.SIGUSR1)
        >>> libleak.faults.unregister(signal.SIGUSR1)
        True
    """
    signum = _as_int(signum)
    flags = 0
    if _as_flag(all_threads):
        flags |= _libleak.DUMP_ALL_THREADS
    if _as_flag(chain):
        flags |= _libleak.DUMP_CHAIN
    signum = _signal_number(signum)
    fd, keep = _file_descriptor(file)
    with _lock:
        _libleak.faults_register(signum, fd, flags)
        _registered_files[signum] = keep


def unregister(signum):
    """Restores the handler register() replaced for `signum`; returns True if one was registered.

    Example::

        >>> import signal
        >>> libleak.faults.unregister(signal.SIGUSR2)
        False
    """
    signum = _signal_number(signum)
    with _lock:
        was_registered = _libleak.faults_unregister(signum)
        _registered_files.pop(signum, None)
    return was_registered


def set_limits(max_frames=100, max_threads=100, main_thread_first=False):
    """Sets how many frames per thread and how many threads every later dump shows (faulthandler
    shows 100 of each), and the order of the threads.

    What is cut is counted: ``  ... 37 more frames`` after a thread's last frame shown,
    ``... 12 more threads`` at the end (faulthandler prints a bare ``  ...`` and ``...`` there).
    The current thread and the main thread are never cut, even when that shows one thread more
    than `max_threads`.  Threads come in faulthandler's order (the newest first, the main thread
    last); with `main_thread_first` the main thread is moved to the top.

    Example::

        >>> libleak.faults.set_limits(max_frames=20, main_thread_first=True)
        >>> libleak.faults.get_limits()
        Limits(max_frames=20, max_threads=100, main_thread_first=True)
        >>> libleak.faults.set_limits()
    """
    max_frames = _as_int(max_frames)
    max_threads = _as_int(max_threads)
    if not isinstance(main_thread_first, int):
        raise TypeError("main_thread_first must be a bool, got %s" % type(main_thread_first).__name__)
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1, got %d" % max_frames)
    if max_threads < 1:
        raise ValueError("max_threads must be at least 1, got %d" % max_threads)
    limit = 2**31 - 1
    _libleak.faults_set_limits(min(max_frames, limit), min(max_threads, limit), bool(main_thread_first))


def get_limits():
    """The limits and order every dump uses now, as ``Limits(max_frames, max_threads,
    main_thread_first)``.

    Example::

        >>> libleak.faults.get_limits()
        Limits(max_frames=100, max_threads=100, main_thread_first=False)
    """
    return Limits(*_libleak.faults_get_limits())


class watchdog:
    """Dumps the stacks if a block of code runs longer than `timeout` seconds.

    The timer belongs to the block: it starts when the block is entered and is cancelled when the
    block is left, and it never touches any other timer.  Watchdogs nest, run in many threads at
    once, and leave dump_traceback_later() alone.  With `repeat` it dumps every `timeout` seconds
    until the block ends; with `exit` it calls _exit(1) after the first dump (the block never
    finishes).  Arguments and errors are those of dump_traceback_later().

    As a context manager::

        >>> import time
        >>> with libleak.faults.watchdog(5.0):
        ...     time.sleep(0.01)          # fast enough: nothing is printed

    As a decorator, each call gets a timer of its own::

        >>> @libleak.faults.watchdog(30.0)
        ... def handle_request():
        ...     return "done"
        >>> handle_request()
        'done'

    The same object may be entered by several threads at once, and re-entered within a thread:
    each entry is its own timer.
    """

    __slots__ = ("timeout", "file", "repeat", "exit", "all_threads", "_flags", "_handles", "_handles_lock")

    def __init__(self, timeout, file=None, repeat=False, exit=False, all_threads=True):
        self.repeat = bool(_as_int(repeat))
        self.exit = bool(_as_int(exit))
        self.all_threads = _as_flag(all_threads)
        self.timeout = _timeout_seconds(timeout)
        _file_descriptor(file)  # fail now, not on entry, if `file` is unusable
        self.file = file
        self._flags = 0
        if self.all_threads:
            self._flags |= _libleak.DUMP_ALL_THREADS
        if self.repeat:
            self._flags |= _libleak.DUMP_REPEAT
        if self.exit:
            self._flags |= _libleak.DUMP_EXIT
        # Armed timers, per thread, innermost last: (handle, fd).
        self._handles = {}
        self._handles_lock = threading.Lock()

    def __repr__(self):
        return "watchdog(%r, repeat=%r, exit=%r, all_threads=%r)" % (
            self.timeout,
            self.repeat,
            self.exit,
            self.all_threads,
        )

    def __enter__(self):
        # The descriptor is looked up (and the file flushed) on each entry: sys.stderr may have
        # been replaced since the watchdog was made.
        fd, _ = _file_descriptor(self.file)
        handle = _libleak.faults_watchdog_start(self.timeout, fd, self._flags)
        with self._handles_lock:
            self._handles.setdefault(threading.get_ident(), []).append(handle)
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        ident = threading.get_ident()
        with self._handles_lock:
            stack = self._handles[ident]
            handle = stack.pop()
            if not stack:
                del self._handles[ident]
        _libleak.faults_watchdog_cancel(handle)
        return False

    def __call__(self, function):
        """Wraps `function` so that every call runs under a timer of its own."""

        @functools.wraps(function)
        def guarded(*args, **kwargs):
            with self:
                return function(*args, **kwargs)

        return guarded
