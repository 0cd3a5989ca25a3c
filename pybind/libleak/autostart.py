"""Starts libleak from the environment when the interpreter starts, with no change to the program.

The ``libleak.pth`` file installed next to the package runs :func:`start` at interpreter start
when one of these variables is set and not empty (otherwise it imports nothing, and costs one
dictionary lookup per variable):

``LIBLEAK_TRACE=N``
    Starts :mod:`libleak.tracer` with N frames (``LIBLEAK_SAMPLE_BYTES=R`` as well: sampled),
    as ``PYTHONTRACEMALLOC`` does for tracemalloc.
``LIBLEAK_FAULTS=1``
    :func:`libleak.faults.enable`: every thread's stack on stderr on a fatal signal
    (``1``, ``true``, ``yes``, ``on``; ``0``, ``false``, ``no``, ``off`` leave it off).
``LIBLEAK_DUMP_SIGNAL=SIGUSR2``
    :func:`libleak.ondemand.install`: that signal (a name, with or without ``SIG``, or a number)
    writes a dump of the process (stacks, asyncio tasks, the tracer's snapshot, a census) into
    ``LIBLEAK_DIR`` (default: the directory the program started in; created if missing).

A value libleak cannot use is reported in one line on stderr (``libleak: ignoring ...``) and the
program runs on as if the variable were not set: a typo must never stop a server.

Example (a shell)::

    LIBLEAK_TRACE=10 LIBLEAK_DUMP_SIGNAL=USR2 LIBLEAK_DIR=/var/tmp/dumps gunicorn app:wsgi &
    kill -USR2 <worker pid>
"""

import os
import sys

__all__ = ["start"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _warn(text):
    """One line on stderr; never raises."""
    try:
        os.write(2, ("libleak: " + text + "\n").encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def _start_tracer(environ):
    if not environ.get("LIBLEAK_TRACE"):
        return
    from libleak import tracer

    tracer._start_from_environment(environ)


def _start_faults(environ):
    value = environ.get("LIBLEAK_FAULTS", "")
    if not value:
        return
    flag = value.strip().lower()
    if flag in _FALSE:
        return
    if flag not in _TRUE:
        _warn("ignoring LIBLEAK_FAULTS=%r: expected 1 or 0 (true/false, yes/no, on/off)" % value)
        return
    import libleak.faults

    libleak.faults.enable()


def _start_dumps(environ):
    value = environ.get("LIBLEAK_DUMP_SIGNAL", "")
    if not value:
        return
    import libleak.ondemand

    try:
        signum = libleak.ondemand.signal_number(value)
    except ValueError as error:
        _warn("ignoring LIBLEAK_DUMP_SIGNAL=%r: %s" % (value, error))
        return
    directory = environ.get("LIBLEAK_DIR") or None
    try:
        libleak.ondemand.install(signum, directory)
    except (OSError, ValueError) as error:
        _warn("ignoring LIBLEAK_DUMP_SIGNAL=%r: LIBLEAK_DIR=%r cannot hold dumps: %s"
              % (value, environ.get("LIBLEAK_DIR", ""), error))


def start(environ=None):
    """Starts what ``environ`` (default: ``os.environ``) asks for: the tracer, the fatal-signal
    dumps, the dump signal, each independently.  Never raises: a failure is one line on stderr.

    Example::

        >>> start({})          # nothing asked: nothing started
    """
    environ = os.environ if environ is None else environ
    for name, starter in (("LIBLEAK_TRACE", _start_tracer), ("LIBLEAK_FAULTS", _start_faults),
                          ("LIBLEAK_DUMP_SIGNAL", _start_dumps)):
        try:
            starter(environ)
        except Exception as error:  # an unexpected failure must not stop the program either
            _warn("ignoring %s: %s: %s" % (name, type(error).__name__, error))
