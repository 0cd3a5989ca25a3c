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
- ``nframe`` goes up to 1024.
- ``get_object_traceback`` of an object reused from a freelist (lists, dicts, tuples, floats...)
  names the site of the reuse on Python 3.13+, as tracemalloc does, but the site of the first
  allocation on 3.8 - 3.12, where CPython reports the reuse to tracemalloc alone.
- ``Snapshot.dump`` keeps the attributes set on a snapshot only when they hold plain data (None,
  bool, int, float, str, bytes, and lists, tuples and dicts of those); anything else raises
  TypeError, where tracemalloc's pickle would store any picklable object.

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
sampled.  This goes through the ``libleak.pth`` file installed next to the package, which
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
import struct
import sys
from collections.abc import Iterable, Sequence
from functools import total_ordering

from libleak import _libleak
from libleak.errors import FormatError
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
    "get_tracemalloc_memory",
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

# tracemalloc's raw traces are (domain, size, frames) on 3.8 and (domain, size, frames,
# total_nframe) from 3.9 on; libleak gives and takes the layout of the running interpreter.
_HAS_TOTAL_NFRAME = sys.version_info >= (3, 9)
_TRACE_LENGTH = 4 if _HAS_TOTAL_NFRAME else 3


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
    ``N`` bytes allocated and weights it so statistics stay unbiased.  From ``N = 65536`` on, over
    CPython's own pymalloc, a sampled small block is taken from malloc instead of pymalloc's pools
    so that freeing untraced objects costs nothing (memory: at most 497/N of the live heap more).
    Calling ``start`` while tracing does nothing, as in tracemalloc.  Exact tracing raises
    RuntimeError while a tool started after a sampled run (tracemalloc) still wraps libleak's hooks.

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


def get_tracemalloc_memory():
    """Bytes the tracer's own tables really use (traces and stacks); tracemalloc's name.

    >>> get_tracemalloc_memory() >= 0
    True
    """
    return _libleak.tracer_memory()


#: The same function under a name that does not say tracemalloc.
get_tracer_memory = get_tracemalloc_memory


def get_dropped_traces():
    """How many allocations could not be traced because the tracer ran out of memory.

    The allocations themselves succeeded; only their traces are missing.  A realloc that fails keeps
    its block's trace, except in one rare case counted here too: in exact mode with a big trace
    table, when other threads made 16 traced allocations or frees during the failing call.
    """
    return _libleak.tracer_dropped()


def get_object_traceback(obj):
    """Where ``obj`` was allocated, as a ``Traceback``, or None if that was not traced.

    Objects that CPython hands out again from a freelist (lists, dicts, tuples, floats and others
    whose memory is kept for reuse instead of freed): on Python 3.13 and later the reference
    tracer reports their creation, so the new site is returned, as tracemalloc returns it.  On
    3.8 - 3.12 no hook open to other tools sees that reuse (CPython tells tracemalloc alone, by a
    direct call), so libleak returns the site where the memory was first allocated while traced.

    >>> start(); x = bytes(1000); get_object_traceback(x) is not None
    True
    """
    raw = _libleak.tracer_object_traceback(obj)
    if raw is None:
        return None
    frames, _depth = raw
    # tracemalloc builds this Traceback from the frames alone: its total_nframe is None.
    return Traceback(frames)


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

    ``frames`` is given most recent first (tracemalloc's raw order).  From Python 3.9 on,
    ``total_nframe`` is the depth of the whole stack when the block was allocated, counted as
    tracemalloc counts it, so ``total_nframe > len(traceback)`` says the traceback was cut (None for
    the tracebacks of statistics); on 3.8, as in its tracemalloc, there is no ``total_nframe``.

    >>> tb = Traceback((("b.py", 2), ("a.py", 1)))
    >>> [str(frame) for frame in tb]
    ['a.py:1', 'b.py:2']
    """

    if _HAS_TOTAL_NFRAME:
        __slots__ = ("_frames", "_total_nframe")

        def __init__(self, frames, total_nframe=None):
            Sequence.__init__(self)
            self._frames = tuple(reversed(frames))
            self._total_nframe = total_nframe

        @property
        def total_nframe(self):
            return self._total_nframe

        def __repr__(self):
            text = "<Traceback %r" % (tuple(self),)
            if self._total_nframe is None:
                return text + ">"
            return text + " total_nframe=%s>" % self.total_nframe

    else:
        __slots__ = ("_frames",)

        def __init__(self, frames):
            Sequence.__init__(self)
            self._frames = tuple(reversed(frames))

        def __repr__(self):
            return "<Traceback %r>" % (tuple(self),)

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

    ``trace`` is a raw trace tuple in the running interpreter's layout (see ``Snapshot``).
    ``weight`` is 1 unless the tracer sampled: then the block stands for ``weight`` blocks of its
    size (statistics sum ``size * weight`` and ``weight``).
    """

    __slots__ = ("_trace", "_weight")

    def __init__(self, trace, weight=1.0):
        self._trace = trace
        self._weight = weight

    @property
    def domain(self):
        return self._trace[0]

    @property
    def size(self):
        return self._trace[1]

    @property
    def traceback(self):
        return Traceback(*self._trace[2:])

    @property
    def weight(self):
        return self._weight

    def __eq__(self, other):
        if not isinstance(other, Trace):
            return NotImplemented
        return self._trace == other._trace

    def __hash__(self):
        return hash(self._trace)

    def __str__(self):
        return "%s: %s" % (self.traceback, _format_size(self.size, False))

    def __repr__(self):
        return "<Trace domain=%s size=%s, traceback=%r>" % (
            self.domain,
            _format_size(self.size, False),
            self.traceback,
        )


def _core_trace(core, index):
    """The index-th trace of a core snapshot as a Trace (raw tuple in this interpreter's layout)."""
    raw = core.trace(index)
    return Trace(raw[:_TRACE_LENGTH], raw[4])


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
            return tuple(_core_trace(self._core, i) for i in range(*index.indices(len(self))))
        return _core_trace(self._core, index)

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
        """The raw trace tuples, as tracemalloc's ``_Traces._traces`` holds them."""
        return [self._core.trace(i)[:_TRACE_LENGTH] for i in range(len(self))]


def _raw_trace(trace):
    """A trace for the C builder: (domain, size, frames, total_nframe or None, weight), from a raw
    tuple in this interpreter's layout or a Trace."""
    weight = 1.0
    if isinstance(trace, Trace):
        trace, weight = trace._trace, trace._weight
    if not isinstance(trace, tuple):
        raise TypeError("a trace must be a tuple %s, not %s" % (_TRACE_SHAPE, type(trace).__name__))
    if len(trace) != _TRACE_LENGTH:
        raise ValueError("a trace must be a tuple %s, not %d items long" % (_TRACE_SHAPE, len(trace)))
    if _HAS_TOTAL_NFRAME:
        return trace + (weight,)
    return trace + (None, weight)


_TRACE_SHAPE = "(domain, size, frames, total_nframe)" if _HAS_TOTAL_NFRAME else "(domain, size, frames)"


class Snapshot:
    """The traced blocks at one moment; immutable.

    ``Snapshot(traces, traceback_limit)`` builds one from tracemalloc's raw trace tuples in the
    running interpreter's layout: ``(domain, size, frames, total_nframe)`` from Python 3.9 on,
    ``(domain, size, frames)`` on 3.8, with frames ``(filename, lineno)`` most recent first (tests
    do this); ``take_snapshot()`` and ``Snapshot.load(path)`` are the usual ways.
    ``snapshot.traces._traces`` gives the tuples back in the same layout.

    Attributes set on a snapshot (``snapshot.label = "after warm-up"``) are kept by ``dump`` and
    ``load`` when they hold plain data: None, bool, int, float, str, bytes, and lists, tuples and
    dicts of those.

    >>> if sys.version_info >= (3, 9):
    ...     trace = (0, 100, (("a.py", 1),), 1)
    ... else:
    ...     trace = (0, 100, (("a.py", 1),))
    >>> snap = Snapshot([trace], 1)
    >>> snap.statistics("lineno")
    [<Statistic traceback=<Traceback (<Frame filename='a.py' lineno=1>,)> size=100 count=1>]
    """

    __slots__ = ("_core", "traces", "__dict__")

    def __init__(self, traces, traceback_limit):
        _check_int("traceback_limit", traceback_limit)
        if isinstance(traces, _Traces):
            core = traces._core.filter([])
            if core.traceback_limit != traceback_limit:
                core = _libleak.snapshot_build([_raw_trace(t) for t in traces], traceback_limit)
        else:
            core = _libleak.snapshot_build([_raw_trace(t) for t in traces], traceback_limit)
        self._set_core(core)

    def _set_core(self, core):
        self._core = core
        self.traces = _Traces(core)

    @classmethod
    def _from_core(cls, core):
        snapshot = cls.__new__(cls)
        snapshot._set_core(core)
        attributes = core.attributes()
        if attributes is not None:
            snapshot.__dict__.update(_decode_attributes(attributes))
        return snapshot

    @property
    def traceback_limit(self):
        return self._core.traceback_limit

    def __reduce__(self):
        # Pickles (multiprocessing, caches) carry the traces in libleak's file format and the
        # attributes as pickle's usual state, so any picklable attribute survives a pickle.
        return (_snapshot_from_bytes, (self._core.encode(),), self.__dict__ or None)

    def dump(self, filename):
        """Writes the snapshot to ``filename`` in libleak's snapshot format, with the attributes
        set on it.

        Attributes must hold plain data (None, bool, int, float, str, bytes, and lists, tuples and
        dicts of those, nested); anything else raises TypeError naming the attribute, and then
        nothing is written.

        >>> import os, tempfile
        >>> snap = Snapshot([], 1)
        >>> snap.label = "after warm-up"
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     snap.dump(os.path.join(folder, "x.snap"))
        ...     Snapshot.load(os.path.join(folder, "x.snap")).label
        'after warm-up'
        """
        attributes = _encode_attributes(self.__dict__) if self.__dict__ else None
        with open(filename, "wb") as stream:
            self._core.write(stream.fileno(), attributes)

    @staticmethod
    def load(filename):
        """Reads a snapshot written by ``dump``, attributes included; ``libleak.FormatError`` if
        the file is not one."""
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


# ---- Snapshot attributes in the file -------------------------------------------------------------
# The encoding is described in libleak/tracer/snapfile.h (C checks every file before these run).

# Containers inside one attribute value; the file allows one more level, the attribute dict itself.
_ATTRIBUTE_MAX_DEPTH = 63
_INT64 = 1 << 63


def _put_varint(out, value):
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_value(out, value, name, depth):
    kind = type(value)
    if value is None:
        out += b"N"
    elif kind is bool:
        out += b"T" if value else b"F"
    elif kind is int:
        if -_INT64 <= value < _INT64:
            out += b"i"
            _put_varint(out, value << 1 if value >= 0 else ((-value - 1) << 1) | 1)  # zigzag
        else:
            digits = ("-" if value < 0 else "") + format(abs(value), "x")
            out += b"I"
            _put_varint(out, len(digits))
            out += digits.encode("ascii")
    elif kind is float:
        out += b"f" + struct.pack("<d", value)
    elif kind is str:
        data = value.encode("utf-8", "surrogatepass")
        out += b"s"
        _put_varint(out, len(data))
        out += data
    elif kind is bytes:
        out += b"b"
        _put_varint(out, len(value))
        out += value
    elif kind in (list, tuple, dict):
        if depth >= _ATTRIBUTE_MAX_DEPTH:
            raise ValueError(
                "Snapshot attribute %r nests containers deeper than %d levels (or holds itself): dump cannot store it"
                % (name, _ATTRIBUTE_MAX_DEPTH)
            )
        out += b"l" if kind is list else b"t" if kind is tuple else b"d"
        _put_varint(out, len(value))
        if kind is dict:
            for key, item in value.items():
                if type(key) in (list, dict):
                    raise TypeError("Snapshot attribute %r has a dict key of type %s" % (name, type(key).__name__))
                _put_value(out, key, name, depth + 1)
                _put_value(out, item, name, depth + 1)
        else:
            for item in value:
                _put_value(out, item, name, depth + 1)
    else:
        raise TypeError(
            "Snapshot attribute %r holds a %s, which dump cannot store: only None, bool, int, float, str, "
            "bytes, and lists, tuples and dicts of those" % (name, kind.__name__)
        )


def _encode_attributes(attributes):
    """The attribute dict in libleak's encoding (TypeError for what it cannot hold)."""
    out = bytearray(b"d")
    _put_varint(out, len(attributes))
    for name, value in attributes.items():
        if type(name) is not str:
            raise TypeError("Snapshot attribute names must be str, not %s" % type(name).__name__)
        _put_value(out, name, name, 0)
        _put_value(out, value, name, 0)
    return bytes(out)


def _get_varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _get_value(data, pos):
    tag = data[pos : pos + 1]
    pos += 1
    if tag in (b"N", b"T", b"F"):
        return {b"N": None, b"T": True, b"F": False}[tag], pos
    if tag == b"i":
        raw, pos = _get_varint(data, pos)
        return (raw >> 1) ^ -(raw & 1), pos
    if tag == b"f":
        return struct.unpack_from("<d", data, pos)[0], pos + 8
    if tag in (b"I", b"s", b"b"):
        length, pos = _get_varint(data, pos)
        run = bytes(data[pos : pos + length])
        pos += length
        if tag == b"I":
            return int(run.decode("ascii"), 16), pos
        return (run.decode("utf-8", "surrogatepass") if tag == b"s" else run), pos
    count, pos = _get_varint(data, pos)
    if tag == b"d":
        result = {}
        for _ in range(count):
            key, pos = _get_value(data, pos)
            result[key], pos = _get_value(data, pos)
            if len(result) != _ + 1:
                raise ValueError("a dict key comes twice")
        return result, pos
    items = []
    for _ in range(count):
        item, pos = _get_value(data, pos)
        items.append(item)
    return (items if tag == b"l" else tuple(items)), pos


def _decode_attributes(data):
    """The attribute dict back from its encoding; libleak.FormatError when it is not one."""
    try:
        attributes, end = _get_value(data, 0)
        if end != len(data) or type(attributes) is not dict:
            raise ValueError("not one attribute dict")
    except (ValueError, TypeError, IndexError, struct.error, UnicodeDecodeError) as error:
        raise FormatError("not a libleak snapshot: malformed attributes (%s)" % error) from None
    return attributes


def _snapshot_from_bytes(data):
    """Rebuilds a pickled Snapshot (see Snapshot.__reduce__)."""
    return Snapshot._from_core(_libleak.snapshot_decode(data))


def _start_from_environment(environ=None):
    """Starts tracing as ``LIBLEAK_TRACE=N`` (and optionally ``LIBLEAK_SAMPLE_BYTES=R``) ask.

    Run at interpreter start by the ``libleak.pth`` file installed next to the package; that
    file imports libleak only when ``LIBLEAK_TRACE`` is set.  A value that is not a positive
    integer is reported on stderr and ignored, so a typo never stops the program.
    """
    environ = os.environ if environ is None else environ
    try:
        nframe = int(environ.get("LIBLEAK_TRACE", "0"))
        sample_bytes = int(environ.get("LIBLEAK_SAMPLE_BYTES", "0") or "0")
        if nframe > 0:
            start(nframe, sample_bytes=sample_bytes)
    except (ValueError, TypeError) as error:
        sys.stderr.write("libleak: ignoring LIBLEAK_TRACE: %s\n" % error)
