"""Allocation tracing with tracemalloc's API, cheap enough to leave on.

``libleak.tracer`` is a drop-in for the standard ``tracemalloc`` module: the same functions, the
same classes, attributes, reprs and sort orders, so existing code runs unchanged with::

    import libleak.tracer as tracemalloc

Differences worth knowing:

- ``start(nframe, sample_bytes=N)`` samples allocations by bytes (mean interval ``N``) instead of
  tracing all of them; statistics then hold unbiased estimates (see ``Trace.weight``).
- Snapshots live in C: grouping, sorting, diffing and filtering a million traces takes
  milliseconds, and ``Snapshot.dump``/``load`` use libleak's own checked file format, never pickle
  (a damaged or hostile file raises ``libleak.FormatError``).
- ``Traceback.total_nframe`` is the stored depth, plus one when the stack was deeper than
  ``nframe`` (libleak never walks the whole stack, so it is a lower bound).
- ``nframe`` goes up to 1024.

Example::

    import libleak.tracer as tracemalloc
    tracemalloc.start(10)
    before = tracemalloc.take_snapshot()
    data = [bytes(1000) for _ in range(1000)]
    after = tracemalloc.take_snapshot()
    for stat in after.compare_to(before, "lineno")[:3]:
        print(stat)

Setting ``LIBLEAK_TRACE=N`` in the environment starts tracing with ``N`` frames when the
interpreter starts (like ``PYTHONTRACEMALLOC``); ``LIBLEAK_SAMPLE_BYTES=R`` as well makes it
sampled.  This goes through the ``libleak-trace.pth`` file installed next to the package, which
does nothing (and imports nothing) when ``LIBLEAK_TRACE`` is unset or empty.

What is traced: every block of Python's allocators (domain 0), and the buffers that C extensions
report to CPython with ``PyTraceMalloc_Track``, in the extension's domain: NumPy's array data
(domain 389047) counts at the Python line that made the array, on every thread, whether numpy was
imported before or after ``start()`` (libleak redirects the extensions' imports of that function
while tracing, and still calls CPython's, so tracemalloc sees them too; see ``libleak._extbuffers``).
``DomainFilter(True, 389047)`` keeps only NumPy's buffers.  Not traced: memory an extension takes
from ``malloc`` without reporting it (tracemalloc does not see it either).
"""

import fnmatch
import linecache
import os.path
from collections.abc import Iterable, Sequence
from functools import total_ordering

from libleak import _libleak
from libleak import _extbuffers  # NumPy's buffers: PyTraceMalloc_Track redirected while tracing

__all__ = [
    "BaseFilter",
    "DomainFilter",
    "Filter",
    "Frame",
    "Snapshot",
    "Statistic",
    "StatisticDiff",
    "Trace",
    "Traceback",
    "clear_traces",
    "get_object_traceback",
    "get_traceback_limit",
    "get_traced_memory",
    "get_tracer_memory",
    "get_dropped_traces",
    "is_tracing",
    "reset_peak",
    "start",
    "stop",
    "take_snapshot",
]

#: The deepest traceback ``start`` accepts.
MAX_NFRAME = 1024

_KEY_TYPES = {"filename": 0, "lineno": 1, "traceback": 2}


def _format_size(size, sign):
    """Human-readable bytes, as tracemalloc prints them: ``'12.3 KiB'`` (``'+12.3 KiB'``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 100 and unit != "B":
            return "%+.1f %s" % (size, unit) if sign else "%.1f %s" % (size, unit)
        if abs(size) < 10 * 1024 or unit == "TiB":
            return "%+.0f %s" % (size, unit) if sign else "%.0f %s" % (size, unit)
        size /= 1024


def _check_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))


# ---- Tracing --------------------------------------------------------------------------------


def start(nframe=1, *, sample_bytes=0):
    """Starts tracing allocations, keeping up to ``nframe`` frames (1 to 1024) per traceback.

    ``sample_bytes=0`` traces every allocation; ``sample_bytes=N`` traces about one allocation per
    ``N`` bytes allocated and weights it so statistics stay unbiased.  Calling ``start`` while
    tracing does nothing, as in tracemalloc.

    >>> start(5); is_tracing()
    True
    """
    _check_int("nframe", nframe)
    _check_int("sample_bytes", sample_bytes)
    if not 1 <= nframe <= MAX_NFRAME:
        raise ValueError("the number of frames must be in range [1; %d], not %d" % (MAX_NFRAME, nframe))
    if sample_bytes < 0:
        raise ValueError("sample_bytes must be 0 (trace everything) or positive, not %d" % sample_bytes)
    _libleak.tracer_start(nframe, sample_bytes)
    _extbuffers.start()  # extension buffers (NumPy), see libleak/_extbuffers.py


def stop():
    """Stops tracing and forgets every trace (snapshots already taken stay valid)."""
    _extbuffers.stop()  # extension buffers (NumPy), see libleak/_extbuffers.py
    _libleak.tracer_stop()


def is_tracing():
    """True while allocations are traced."""
    return _libleak.tracer_is_tracing()


def clear_traces():
    """Forgets every trace and resets the counters; tracing goes on."""
    _libleak.tracer_clear()


def get_traceback_limit():
    """The ``nframe`` given to ``start`` (1 before the first start)."""
    return _libleak.tracer_traceback_limit()


def get_traced_memory():
    """``(current, peak)`` bytes of the traced blocks; ``(0, 0)`` when not tracing.

    In sampled mode both are estimates.
    """
    return _libleak.tracer_traced_memory()


def reset_peak():
    """Sets the peak of ``get_traced_memory()`` to the current traced memory."""
    _libleak.tracer_reset_peak()


def get_tracer_memory():
    """Bytes the tracer's own tables really use (traces and stacks)."""
    return _libleak.tracer_memory()


def get_dropped_traces():
    """How many allocations could not be traced because the tracer ran out of memory.

    The allocations themselves succeeded; only their traces are missing.
    """
    return _libleak.tracer_dropped()


def get_object_traceback(obj):
    """Where ``obj`` was allocated, as a ``Traceback``, or None if that was not traced.

    >>> start(); x = bytes(1000); get_object_traceback(x) is not None
    True
    """
    raw = _libleak.tracer_object_traceback(obj)
    if raw is None:
        return None
    frames, total_nframe = raw
    return Traceback(frames, total_nframe)


def take_snapshot():
    """A ``Snapshot`` of every live traced block.  Raises RuntimeError when not tracing."""
    if not is_tracing():
        raise RuntimeError("the tracemalloc module must be tracing memory to take a snapshot")
    core = _libleak.snapshot_take()
    return Snapshot._from_core(core)


# ---- Frames and tracebacks --------------------------------------------------------------------


@total_ordering
class Frame:
    """One frame of a traceback: ``filename`` and ``lineno``.

    >>> Frame(("app.py", 12))
    <Frame filename='app.py' lineno=12>
    """

    __slots__ = ("_frame",)

    def __init__(self, frame):
        self._frame = frame

    @property
    def filename(self):
        return self._frame[0]

    @property
    def lineno(self):
        return self._frame[1]

    def __eq__(self, other):
        if not isinstance(other, Frame):
            return NotImplemented
        return self._frame == other._frame

    def __lt__(self, other):
        if not isinstance(other, Frame):
            return NotImplemented
        return self._frame < other._frame

    def __hash__(self):
        return hash(self._frame)

    def __str__(self):
        return "%s:%s" % (self.filename, self.lineno)

    def __repr__(self):
        return "<Frame filename=%r lineno=%r>" % (self.filename, self.lineno)


@total_ordering
class Traceback(Sequence):
    """Frames from the oldest call to the most recent one, like tracemalloc's Traceback.

    ``frames`` is given most recent first (tracemalloc's raw order).  ``total_nframe`` is the
    depth of the stack as far as known.

    >>> tb = Traceback((("b.py", 2), ("a.py", 1)))
    >>> [str(frame) for frame in tb]
    ['a.py:1', 'b.py:2']
    """

    __slots__ = ("_frames", "_total_nframe")

    def __init__(self, frames, total_nframe=None):
        Sequence.__init__(self)
        self._frames = tuple(reversed(frames))
        self._total_nframe = total_nframe

    @property
    def total_nframe(self):
        return self._total_nframe

    def __len__(self):
        return len(self._frames)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(Frame(trace) for trace in self._frames[index])
        return Frame(self._frames[index])

    def __contains__(self, frame):
        return isinstance(frame, Frame) and frame._frame in self._frames

    def __hash__(self):
        return hash(self._frames)

    def __eq__(self, other):
        if not isinstance(other, Traceback):
            return NotImplemented
        return self._frames == other._frames

    def __lt__(self, other):
        if not isinstance(other, Traceback):
            return NotImplemented
        return self._frames < other._frames

    def __str__(self):
        return str(self[0])

    def __repr__(self):
        text = "<Traceback %r" % (tuple(self),)
        if self._total_nframe is None:
            return text + ">"
        return text + " total_nframe=%s>" % self.total_nframe

    def format(self, limit=None, most_recent_first=False):
        """Lines as the traceback module prints them, with the source line of each frame.

        ``limit > 0`` keeps the most recent ``limit`` frames, ``limit < 0`` the oldest ones.
        """
        lines = []
        if limit is not None:
            frame_slice = self[-limit:] if limit > 0 else self[:limit]
        else:
            frame_slice = self
        if most_recent_first:
            frame_slice = reversed(frame_slice)
        for frame in frame_slice:
            lines.append('  File "%s", line %s' % (frame.filename, frame.lineno))
            line = linecache.getline(frame.filename, frame.lineno).strip()
            if line:
                lines.append("    %s" % line)
        return lines


# ---- Statistics ------------------------------------------------------------------------------


class Statistic:
    """Memory of one group of traces: ``traceback``, ``size`` (bytes) and ``count`` (blocks)."""

    __slots__ = ("traceback", "size", "count")

    def __init__(self, traceback, size, count):
        self.traceback = traceback
        self.size = size
        self.count = count

    def __hash__(self):
        return hash((self.traceback, self.size, self.count))

    def __eq__(self, other):
        if not isinstance(other, Statistic):
            return NotImplemented
        return (self.traceback, self.size, self.count) == (other.traceback, other.size, other.count)

    def __str__(self):
        text = "%s: size=%s, count=%i" % (self.traceback, _format_size(self.size, False), self.count)
        if self.count:
            text += ", average=%s" % _format_size(self.size / self.count, False)
        return text

    def __repr__(self):
        return "<Statistic traceback=%r size=%i count=%i>" % (self.traceback, self.size, self.count)

    def _sort_key(self):
        return (self.size, self.count, self.traceback)


class StatisticDiff:
    """A group's memory now and its change since the older snapshot."""

    __slots__ = ("traceback", "size", "size_diff", "count", "count_diff")

    def __init__(self, traceback, size, size_diff, count, count_diff):
        self.traceback = traceback
        self.size = size
        self.size_diff = size_diff
        self.count = count
        self.count_diff = count_diff

    def _fields(self):
        return (self.traceback, self.size, self.size_diff, self.count, self.count_diff)

    def __hash__(self):
        return hash(self._fields())

    def __eq__(self, other):
        if not isinstance(other, StatisticDiff):
            return NotImplemented
        return self._fields() == other._fields()

    def __str__(self):
        text = "%s: size=%s (%s), count=%i (%+i)" % (
            self.traceback,
            _format_size(self.size, False),
            _format_size(self.size_diff, True),
            self.count,
            self.count_diff,
        )
        if self.count:
            text += ", average=%s" % _format_size(self.size / self.count, False)
        return text

    def __repr__(self):
        return "<StatisticDiff traceback=%r size=%i (%+i) count=%i (%+i)>" % self._fields()

    def _sort_key(self):
        return (abs(self.size_diff), self.size, abs(self.count_diff), self.count, self.traceback)


# ---- Filters -----------------------------------------------------------------------------------


def _normalize_filename(filename):
    filename = os.path.normcase(filename)
    if filename.endswith(".pyc"):
        filename = filename[:-1]
    return filename


class BaseFilter:
    """What every filter has: ``inclusive`` (keep what matches) or not (drop it)."""

    def __init__(self, inclusive):
        self.inclusive = inclusive

    def _match(self, trace):
        """Abstract, as in tracemalloc: Filter and DomainFilter say whether `trace` matches."""
        raise NotImplementedError


class Filter(BaseFilter):
    """Keeps (``inclusive``) or drops traces whose most recent frame matches a filename pattern.

    ``lineno`` restricts the match to one line, ``all_frames`` looks at every frame, ``domain``
    to one allocator domain.

    >>> Filter(False, "<frozen importlib._bootstrap>")
    <Filter inclusive=False filename_pattern='<frozen importlib._bootstrap>' lineno=None all_frames=False domain=None>
    """

    def __init__(self, inclusive, filename_pattern, lineno=None, all_frames=False, domain=None):
        super().__init__(inclusive)
        self.inclusive = inclusive
        self._filename_pattern = _normalize_filename(filename_pattern)
        self.lineno = lineno
        self.all_frames = all_frames
        self.domain = domain

    @property
    def filename_pattern(self):
        return self._filename_pattern

    def __repr__(self):
        return "<Filter inclusive=%r filename_pattern=%r lineno=%r all_frames=%r domain=%r>" % (
            self.inclusive,
            self._filename_pattern,
            self.lineno,
            self.all_frames,
            self.domain,
        )

    def _match_frame_impl(self, filename, lineno):
        filename = _normalize_filename(filename)
        if not fnmatch.fnmatch(filename, self._filename_pattern):
            return False
        return self.lineno is None or lineno == self.lineno

    def _match_frame(self, filename, lineno):
        return self._match_frame_impl(filename, lineno) ^ (not self.inclusive)

    def _match_traceback(self, traceback):
        if self.all_frames:
            hit = any(self._match_frame_impl(filename, lineno) for filename, lineno in traceback)
            return self.inclusive if hit else not self.inclusive
        filename, lineno = traceback[0]
        return self._match_frame(filename, lineno)

    def _match(self, trace):
        domain, size, traceback = trace[0], trace[1], trace[2]
        result = self._match_traceback(traceback)
        if self.domain is None:
            return result
        if self.inclusive:
            return result and domain == self.domain
        return result or domain != self.domain

    def _spec(self):
        if not isinstance(self._filename_pattern, str):
            raise TypeError("filename_pattern must be a str, not %s" % type(self._filename_pattern).__name__)
        if self.lineno is not None:
            _check_int("lineno", self.lineno)
        if self.domain is not None:
            _check_int("domain", self.domain)
        return (False, bool(self.inclusive), self._filename_pattern, self.lineno, bool(self.all_frames), self.domain)


class DomainFilter(BaseFilter):
    """Keeps (``inclusive``) or drops the traces of one allocator domain.

    >>> DomainFilter(False, 389047)   # NumPy's domain
    <DomainFilter inclusive=False domain=389047>
    """

    def __init__(self, inclusive, domain):
        super().__init__(inclusive)
        self._domain = domain

    @property
    def domain(self):
        return self._domain

    def __repr__(self):
        return "<DomainFilter inclusive=%r domain=%r>" % (self.inclusive, self._domain)

    def _match(self, trace):
        return (trace[0] == self.domain) ^ (not self.inclusive)

    def _spec(self):
        _check_int("domain", self._domain)
        return (True, bool(self.inclusive), None, None, False, self._domain)


# ---- Traces and snapshots ------------------------------------------------------------------------


class Trace:
    """One traced block: ``domain``, ``size``, ``traceback`` and ``weight``.

    ``weight`` is 1 unless the tracer sampled: then the block stands for ``weight`` blocks of its
    size (statistics sum ``size * weight`` and ``weight``).
    """

    __slots__ = ("_trace",)

    def __init__(self, trace):
        self._trace = trace

    @property
    def domain(self):
        return self._trace[0]

    @property
    def size(self):
        return self._trace[1]

    @property
    def traceback(self):
        return Traceback(*self._trace[2:4])

    @property
    def weight(self):
        return self._trace[4] if len(self._trace) > 4 else 1.0

    def __eq__(self, other):
        if not isinstance(other, Trace):
            return NotImplemented
        return self._trace[:4] == other._trace[:4]

    def __hash__(self):
        return hash(self._trace[:4])

    def __str__(self):
        return "%s: %s" % (self.traceback, _format_size(self.size, False))

    def __repr__(self):
        return "<Trace domain=%s size=%s, traceback=%r>" % (
            self.domain,
            _format_size(self.size, False),
            self.traceback,
        )


class _Traces(Sequence):
    """The traces of a snapshot, made into ``Trace`` objects only when read."""

    __slots__ = ("_core",)

    def __init__(self, core):
        Sequence.__init__(self)
        self._core = core

    def __len__(self):
        return len(self._core)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(Trace(self._core.trace(i)) for i in range(*index.indices(len(self))))
        return Trace(self._core.trace(index))

    def __contains__(self, trace):
        return isinstance(trace, Trace) and any(t == trace for t in self)

    def __eq__(self, other):
        if not isinstance(other, _Traces):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __repr__(self):
        return "<Traces len=%s>" % len(self)

    @property
    def _traces(self):
        return [self._core.trace(i)[:4] for i in range(len(self))]


class Snapshot:
    """The traced blocks at one moment; immutable.

    ``Snapshot(traces, traceback_limit)`` builds one from tracemalloc-style tuples
    ``(domain, size, frames, total_nframe)`` with frames most recent first (tests do this);
    ``take_snapshot()`` and ``Snapshot.load(path)`` are the usual ways.

    >>> snap = Snapshot([(0, 100, (("a.py", 1),), 1)], 1)
    >>> snap.statistics("lineno")
    [<Statistic traceback=<Traceback (<Frame filename='a.py' lineno=1>,)> size=100 count=1>]
    """

    __slots__ = ("_core", "traces")

    def __init__(self, traces, traceback_limit):
        _check_int("traceback_limit", traceback_limit)
        if isinstance(traces, _Traces):
            raw = traces._traces
        else:
            raw = [t._trace if isinstance(t, Trace) else t for t in traces]
        self._set_core(_libleak.snapshot_build(raw, traceback_limit))

    def _set_core(self, core):
        self._core = core
        self.traces = _Traces(core)

    @classmethod
    def _from_core(cls, core):
        snapshot = cls.__new__(cls)
        snapshot._set_core(core)
        return snapshot

    @property
    def traceback_limit(self):
        return self._core.traceback_limit

    def __reduce__(self):
        # Pickles (multiprocessing, caches) carry the snapshot in libleak's file format.
        return (_snapshot_from_bytes, (self._core.encode(),))

    def dump(self, filename):
        """Writes the snapshot to ``filename`` in libleak's snapshot format."""
        with open(filename, "wb") as stream:
            self._core.write(stream.fileno())

    @staticmethod
    def load(filename):
        """Reads a snapshot written by ``dump``; ``libleak.FormatError`` if the file is not one."""
        with open(filename, "rb") as stream:
            return Snapshot._from_core(_libleak.snapshot_read(stream.fileno()))

    def filter_traces(self, filters):
        """A new snapshot with the traces the filters keep (``Filter`` and ``DomainFilter``).

        A trace is kept when at least one inclusive filter matches it (if there are inclusive
        filters) and no exclusive filter rejects it.
        """
        if not isinstance(filters, Iterable):
            raise TypeError("filters must be a list of filters, not %s" % type(filters).__name__)
        specs = []
        for trace_filter in filters:
            if not isinstance(trace_filter, (Filter, DomainFilter)):
                raise TypeError("filters must be Filter or DomainFilter objects, not %s" % type(trace_filter).__name__)
            specs.append(trace_filter._spec())
        return Snapshot._from_core(self._core.filter(specs))

    @staticmethod
    def _key(key_type, cumulative):
        if key_type not in _KEY_TYPES:
            raise ValueError("unknown key_type: %r" % (key_type,))
        if cumulative and key_type not in ("lineno", "filename"):
            raise ValueError("cumulative mode cannot by used with key type %r" % key_type)
        return _KEY_TYPES[key_type]

    def statistics(self, key_type, cumulative=False):
        """Statistics grouped by ``'filename'``, ``'lineno'`` or ``'traceback'``, biggest first.

        With ``cumulative``, every frame of a traceback counts, not only the most recent.
        """
        key = self._key(key_type, cumulative)
        return [
            Statistic(Traceback(frames), size, count)
            for frames, size, count in self._core.statistics(key, bool(cumulative))
        ]

    def compare_to(self, old_snapshot, key_type, cumulative=False):
        """Differences from ``old_snapshot`` grouped by key, biggest change first."""
        if not isinstance(old_snapshot, Snapshot):
            raise TypeError("old_snapshot must be a Snapshot, not %s" % type(old_snapshot).__name__)
        key = self._key(key_type, cumulative)
        return [
            StatisticDiff(Traceback(frames), size, size_diff, count, count_diff)
            for frames, size, size_diff, count, count_diff in self._core.compare_to(
                old_snapshot._core, key, bool(cumulative)
            )
        ]


def _snapshot_from_bytes(data):
    """Rebuilds a pickled Snapshot (see Snapshot.__reduce__)."""
    return Snapshot._from_core(_libleak.snapshot_decode(data))


def _start_from_environment(environ=None):
    """Starts tracing as ``LIBLEAK_TRACE=N`` (and optionally ``LIBLEAK_SAMPLE_BYTES=R``) ask.

    Run at interpreter start by the ``libleak-trace.pth`` file installed next to the package; that
    file imports libleak only when ``LIBLEAK_TRACE`` is set.  A value that is not a positive
    integer is reported on stderr and ignored, so a typo never stops the program.
    """
    import sys

    environ = os.environ if environ is None else environ
    try:
        nframe = int(environ.get("LIBLEAK_TRACE", "0"))
        sample_bytes = int(environ.get("LIBLEAK_SAMPLE_BYTES", "0") or "0")
        if nframe > 0:
            start(nframe, sample_bytes=sample_bytes)
    except (ValueError, TypeError) as error:
        sys.stderr.write("libleak: ignoring LIBLEAK_TRACE: %s\n" % error)
