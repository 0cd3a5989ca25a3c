"""pympler's ClassTracker, with instances seen by libleak's C core.

Replace ``from pympler import classtracker`` with ``from libleak import classtracker`` and the same
code runs::

    tr = classtracker.ClassTracker()
    tr.track_class(Document)
    tr.create_snapshot()
    create_documents()
    tr.create_snapshot()
    tr.stats.print_summary()

What differs from pympler, on purpose:

- A tracked class is watched through its type's allocation slots, not through ``__init__``: instances
  made by ``copy.copy``, pickle or ``cls.__new__`` are counted, ``__slots__`` classes without
  ``__weakref__`` work, and a tracked instance costs well under a microsecond.
- Only classes made by a class statement or ``type()`` can be tracked (pympler cannot track built-in
  types either).  ``track_class(cls, subclasses=True)`` also counts the subclasses that exist then.
- Sizes are ``sys.getsizeof`` of the instance plus that of its ``__dict__`` (``resolution_level`` is
  accepted and kept, but referents are not sized one by one).
- ``detach_class`` stops tracking the class's existing instances too: its slots are restored at once.
- ``objects``, ``index``, ``snapshots`` and ``history`` are built when read.  Instances are known
  while alive and through the snapshots that saw them; a dead instance's ``death`` is the time of the
  first snapshot that no longer saw it (or the time the view was built).

libleak's own summary: ``tracker.stats.by_class``, a dict keyed by ``module.Qualname`` with
``created, alive, destroyed, peak_alive, avg_lifetime, max_lifetime, total_size, avg_size``.
"""

import gc
import sys
import threading
import time
import weakref
from array import array

from . import _libleak

__all__ = ["ClassTracker", "TrackedObject", "Snapshot", "ConsoleStats"]

# Every timestamp is seconds since this module was imported (pympler counts from its import too),
# on the monotonic clock the C core stamps instances with.
_START_NS = time.monotonic_ns()


def _get_time():
    return (time.monotonic_ns() - _START_NS) / 1e9


def _seconds(ns):
    return (ns - _START_NS) / 1e9


def _qualified_name(cls):
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _truncate(value, width, left=False):
    """str(value) on one line, cut to `width` characters with '...' where it was cut."""
    text = str(value).replace("\n", "|")
    if len(text) <= width:
        return text
    return "..." + text[len(text) - width + 3:] if left else text[: width - 3] + "..."


def _pretty_size(n, base=1024):
    """A byte count as pympler prints it: '%4d     B' below one KB, '%7.2f KB' and up above."""
    units = ("B", "KB", "MB", "GB", "TB", "EB")
    unit = 0
    if n <= base:
        return "%4d     %s" % (n, units[0])
    while n > base:
        n = n / float(base)
        unit += 1
    return "%7.2f %s" % (n, units[unit])


def _safe_repr(obj, clip=128):
    """repr(obj), never raising ('N/A' then), cut in the middle to `clip` characters."""
    try:
        text = repr(obj)
    except Exception:
        return "N/A"
    if clip and len(text) > clip:
        return text[: clip - 4] + ".." + text[-2:]
    return text


def _pretty_time(t):
    if t is None:
        return ""
    return "%02d:%02d:%05.2f" % (int(t / 3600), int(t / 60 % 60), t % 60)


class ProcessMemoryInfo(object):
    """Virtual and resident size of this process (from /proc), as pympler's process module gives."""

    __slots__ = ("vsz", "rss", "available")

    def __init__(self):
        self.vsz = self.rss = 0
        self.available = False
        try:
            import os

            with open("/proc/self/statm") as f:
                fields = f.read().split()
            page = os.sysconf("SC_PAGE_SIZE")
            self.vsz, self.rss = int(fields[0]) * page, int(fields[1]) * page
            self.available = True
        except (OSError, ValueError, IndexError, AttributeError):
            pass

    def __repr__(self):
        return "<ProcessMemoryInfo vsz=%d rss=%d>" % (self.vsz, self.rss)


class Asized(object):
    """A measured size, shaped like pympler's Asized (no referents: resolution levels are not sized)."""

    __slots__ = ("size", "flat", "refs", "name")

    def __init__(self, size, flat, refs=(), name=None):
        self.size, self.flat, self.refs, self.name = size, flat, list(refs), name

    def __repr__(self):
        return "size %r, flat %r, refs[%d], name %r" % (self.size, self.flat, len(self.refs), self.name)


class TrackedObject(object):
    """One tracked instance as pympler describes it: ``ref`` (call it for the object, None once
    dead), ``id``, ``name``, ``birth``, ``death``, ``trace`` (outermost frame first, as
    ``(filename, lineno, function, None, None)``) and ``snapshots`` ([(timestamp, Asized)])."""

    __slots__ = ("ref", "id", "repr", "name", "birth", "death", "trace", "snapshots", "_resolution_level",
                 "__dict__")

    def __init__(self, ref, ident, name, birth, death=None, trace=None, resolution_level=0):
        self.ref = ref
        self.id = ident
        self.repr = ""
        self.name = name
        self.birth = birth
        self.death = death
        self.trace = trace
        self.snapshots = []
        self._resolution_level = resolution_level

    def get_max_size(self):
        return max([s.size for (_, s) in self.snapshots] or [0])

    def get_size_at_time(self, timestamp):
        size = 0
        for t, s in self.snapshots:
            if t == timestamp:
                size = s.size
        return size

    def set_resolution_level(self, resolution_level):
        self._resolution_level = resolution_level

    def __repr__(self):
        return "<TrackedObject %s 0x%x>" % (self.name, self.id)


class Snapshot(object):
    """Sizes of the tracked instances and of the process at one instant (pympler's fields:
    ``timestamp``, ``desc``, ``tracked_total``, ``asizeof_total``, ``overhead``, ``system_total``,
    ``classes``; ``total`` and ``label``)."""

    def __init__(self, timestamp, description=""):
        self.tracked_total = 0
        self.asizeof_total = 0
        self.overhead = 0
        self.timestamp = timestamp
        self.system_total = ProcessMemoryInfo()
        self.desc = description
        self.classes = None
        # name -> (ids, births in ns, sizes): arrays of uint64, one entry per instance sized.
        self._instances = {}

    @property
    def total(self):
        if self.system_total.available:
            return self.system_total.vsz
        if self.asizeof_total:
            return self.asizeof_total
        return self.tracked_total

    @property
    def label(self):
        if not self.desc:
            return "%.3fs" % self.timestamp
        return "%s (%.3fs)" % (self.desc, self.timestamp)

    def _class_summary(self, name):
        """pympler's per-class row: sum, avg, pct and active at this snapshot."""
        data = self._instances.get(name)
        if data is None:
            total, active = 0, 0
        else:
            total, active = sum(data[2]), len(data[0])
        try:
            pct = total * 100.0 / self.total
        except ZeroDivisionError:
            pct = 0
        avg = total / active if active else 0
        return dict(sum=total, avg=avg, pct=pct, active=active, merged=Asized(total, total))


def _heap_total():
    """Shallow size of every object the gc tracks and of the objects they refer to directly, each
    once: what compute_total reports (pympler sizes every object asizeof can reach)."""
    seen = set()
    total = 0
    getsizeof = sys.getsizeof
    objects = gc.get_objects()
    for obj in objects:
        if id(obj) not in seen:
            seen.add(id(obj))
            total += getsizeof(obj, 0)
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not gc.is_tracked(ref):
                seen.add(id(ref))
                total += getsizeof(ref, 0)
    return total


class _Observer(object):
    """Options of one tracked class, as pympler's _ClassObserver keeps them."""

    __slots__ = ("name", "detail", "keep", "trace", "subclasses")

    def __init__(self, name, detail, keep, trace, subclasses):
        self.name, self.detail, self.keep, self.trace, self.subclasses = name, detail, keep, trace, subclasses


class _PeriodicThread(threading.Thread):
    """Takes a snapshot every `interval` seconds until told to stop."""

    def __init__(self, tracker, interval):
        super(_PeriodicThread, self).__init__(name="BackgroundMonitor", daemon=True)
        self.tracker = tracker
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.tracker.create_snapshot()
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()


class ClassTracker(object):
    """Tracks the instances of classes and single objects; see the module docstring."""

    snapshot_lock = threading.Lock()

    def __init__(self, stream=None):
        self._stream = stream
        self._observers = {}  # class -> _Observer
        self._single = {}  # id -> [TrackedObject, strong ref or None] for track_object'ed objects
        self._names = {}  # index names seen (dict as an ordered set)
        self.snapshots = []
        self._periodic_thread = None

    # ---- Tracking -------------------------------------------------------------------------------

    def track_class(self, cls, name=None, resolution_level=0, keep=False, trace=False, subclasses=False):
        """Tracks every instance of `cls` made from now on, however it is made.  Tracking a tracked
        class again changes its options.  `name` is the index key (default 'module.ClassName', as
        pympler); `keep` holds every instance alive; `trace` records each instance's creation stack
        (the tracer's, when libleak.tracer traced it); `subclasses` also counts the subclasses that
        exist now.  TypeError when `cls` is not a class defined in Python."""
        if not isinstance(cls, type):
            raise TypeError("track_class() needs a class, not %s" % type(cls).__name__)
        if name is None:
            name = cls.__module__ + "." + cls.__name__
        if not isinstance(name, str):
            raise TypeError("track_class() name must be a str, not %s" % type(name).__name__)
        if not isinstance(resolution_level, int):
            raise TypeError("resolution_level must be an int, not %s" % type(resolution_level).__name__)
        _libleak.classtrack_attach(cls, bool(subclasses), bool(trace), bool(keep))
        self._observers[cls] = _Observer(name, resolution_level, bool(keep), bool(trace), bool(subclasses))

    def track_object(self, instance, name=None, resolution_level=0, keep=False, trace=False):
        """Tracks one object (it must be weakly referenceable, as in pympler, unless `keep`)."""
        ident = id(instance)
        entry = self._single.get(ident)
        if entry is not None and entry[0].ref() is not None:
            return
        name = name if name else instance.__class__.__name__
        try:
            ref = weakref.ref(instance)
        except TypeError:
            if not keep:
                raise
            ref = (lambda obj: (lambda: obj))(instance)
        tobj = TrackedObject(ref, ident, name, _get_time(), resolution_level=resolution_level)
        if trace:
            frames = []
            frame = sys._getframe(1)
            while frame is not None:
                frames.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name, None, None))
                frame = frame.f_back
            tobj.trace = frames[::-1]
        self._single[ident] = [tobj, instance if keep else None]
        self._names[name] = None

    def track_change(self, instance, resolution_level=0):
        """Changes the resolution level of a tracked object; KeyError when it is not tracked."""
        ident = id(instance)
        if ident in self._single:
            self._single[ident][0].set_resolution_level(resolution_level)
            return
        observer = self._observer_of(instance)
        if observer is None:
            raise KeyError(ident)

    def _observer_of(self, instance):
        for cls in type(instance).__mro__:
            if cls in self._observers:
                return self._observers[cls]
        return None

    def detach_class(self, cls):
        """Stops tracking `cls`: its type's slots are restored exactly, its live instances are no
        longer followed (what snapshots recorded stays).  KeyError when it is not tracked."""
        if cls not in self._observers:
            raise KeyError(cls)
        self._note_names()
        del self._observers[cls]
        _libleak.classtrack_detach(cls)

    def detach_all_classes(self):
        for cls in list(self._observers):
            self.detach_class(cls)

    def detach_all(self):
        """Detaches from every class and object and forgets the index (snapshots stay)."""
        self.detach_all_classes()
        self._single.clear()
        self._names.clear()

    def clear(self):
        """detach_all, and forgets the snapshots too."""
        self.detach_all()
        self.snapshots[:] = []

    def close(self):
        """Detaches from every class (for contextlib.closing)."""
        self.detach_all_classes()

    def _note_names(self):
        for cls, observer in self._observers.items():
            if _libleak.classtrack_counters(cls)[0]:
                self._names[observer.name] = None

    # ---- Snapshots ------------------------------------------------------------------------------

    def start_periodic_snapshots(self, interval=1.0):
        """Takes a snapshot every `interval` seconds in a daemon thread (updates the interval when
        already running)."""
        if self._periodic_thread is None:
            self._periodic_thread = _PeriodicThread(self, interval)
            self._periodic_thread.start()
        else:
            self._periodic_thread.interval = interval

    def stop_periodic_snapshots(self):
        """Stops the periodic snapshots and waits for the thread to end."""
        thread, self._periodic_thread = self._periodic_thread, None
        if thread is not None:
            thread.stop()
            if thread is not threading.current_thread():
                thread.join()

    def create_snapshot(self, description="", compute_total=False):
        """Measures every tracked instance now and records the process size.  With
        `compute_total`, also the shallow size of every object on the heap (slow)."""
        with self.snapshot_lock:
            snapshot = Snapshot(_get_time(), str(description))
            per_name = {}
            for cls, observer in list(self._observers.items()):
                ids, births, sizes, total = _libleak.classtrack_snapshot(cls)
                parts = per_name.setdefault(observer.name, (array("Q"), array("Q"), array("Q")))
                parts[0].frombytes(ids)
                parts[1].frombytes(births)
                parts[2].frombytes(sizes)
                snapshot.tracked_total += total
            for tobj, _ in list(self._single.values()):
                obj = tobj.ref()
                if obj is None:
                    continue
                size = _libleak.classtrack_instance_size(obj)
                parts = per_name.setdefault(tobj.name, (array("Q"), array("Q"), array("Q")))
                parts[0].append(tobj.id)
                parts[1].append(int(tobj.birth * 1e9) + _START_NS)
                parts[2].append(size)
                tobj.snapshots.append((snapshot.timestamp, Asized(size, size)))
                snapshot.tracked_total += size
            for name, parts in per_name.items():
                if len(parts[0]):
                    self._names[name] = None
            snapshot._instances = per_name
            if compute_total:
                snapshot.asizeof_total = _heap_total()
            snapshot.overhead = sum(a.buffer_info()[1] * a.itemsize for p in per_name.values() for a in p)
            if snapshot.asizeof_total:
                snapshot.asizeof_total -= snapshot.overhead
            self.snapshots.append(snapshot)

    # ---- Views (built when read) ----------------------------------------------------------------

    @property
    def stats(self):
        """A ConsoleStats of the current state (pympler's attribute)."""
        return ConsoleStats(tracker=self, stream=self._stream)

    def _live_objects(self):
        """TrackedObjects of every live tracked instance, by id."""
        now = {}
        for cls, observer in list(self._observers.items()):
            for obj, birth_ns, size, frames in _libleak.classtrack_instances(cls):
                try:
                    ref = weakref.ref(obj)
                except TypeError:
                    ref = (lambda o: (lambda: o))(obj)
                trace = [(f[0], f[1], f[2], None, None) for f in reversed(frames)] if observer.trace else None
                tobj = TrackedObject(ref, id(obj), observer.name, _seconds(birth_ns), trace=trace,
                                     resolution_level=observer.detail)
                now[id(obj)] = (tobj, birth_ns)
        for tobj, _ in self._single.values():
            if tobj.ref() is not None:
                now[tobj.id] = (tobj, int(tobj.birth * 1e9) + _START_NS)
        return now

    def _all_objects(self):
        """Live instances and the dead ones the snapshots saw, each with its snapshot sizes."""
        live = self._live_objects()
        everyone = {}  # (id, birth_ns) -> TrackedObject
        for ident, (tobj, birth_ns) in live.items():
            if tobj.snapshots and ident in self._single:
                tobj = TrackedObject(tobj.ref, tobj.id, tobj.name, tobj.birth, trace=tobj.trace)
            everyone[(ident, birth_ns)] = tobj
        for snapshot in self.snapshots:
            for name, (ids, births, sizes) in snapshot._instances.items():
                for ident, birth_ns, size in zip(ids, births, sizes):
                    tobj = everyone.get((ident, birth_ns))
                    if tobj is None:
                        tobj = TrackedObject(lambda: None, ident, name, _seconds(birth_ns))
                        everyone[(ident, birth_ns)] = tobj
                    tobj.snapshots.append((snapshot.timestamp, Asized(size, size)))
        live_keys = set((ident, birth) for ident, (_, birth) in live.items())
        view_time = _get_time()
        for key, tobj in everyone.items():
            if key in live_keys:
                continue
            last = max(t for t, _ in tobj.snapshots)
            later = [s.timestamp for s in self.snapshots if s.timestamp > last]
            tobj.death = min(later) if later else view_time
        return everyone, live

    @property
    def objects(self):
        """pympler's objects: id -> TrackedObject of the live tracked instances."""
        everyone, live = self._all_objects()
        return {ident: everyone[(ident, birth)] for ident, (_, birth) in live.items()}

    @property
    def index(self):
        """pympler's index: name -> [TrackedObject], the dead ones the snapshots saw included."""
        everyone, _ = self._all_objects()
        index = {}
        for tobj in sorted(everyone.values(), key=lambda t: t.birth):
            index.setdefault(tobj.name, []).append(tobj)
        return index

    @property
    def history(self):
        """name -> [(timestamp, instances alive)], one point per snapshot and one for now."""
        self._note_names()
        history = {}
        for snapshot in self.snapshots:
            for name in self._names:
                data = snapshot._instances.get(name)
                history.setdefault(name, []).append((snapshot.timestamp, len(data[0]) if data else 0))
        now = _get_time()
        alive = {}
        for cls, observer in self._observers.items():
            alive[observer.name] = alive.get(observer.name, 0) + _libleak.classtrack_counters(cls)[1]
        for tobj, _ in self._single.values():
            if tobj.ref() is not None:
                alive[tobj.name] = alive.get(tobj.name, 0) + 1
        for name in self._names:
            history.setdefault(name, []).append((now, alive.get(name, 0)))
        return history


class ConsoleStats(object):
    """pympler's ConsoleStats for a tracker: ``print_summary``, ``print_stats``, ``sort_stats``,
    ``reverse_order``, ``snapshots``, ``index``, ``tracked_classes``, ``annotate``; plus libleak's
    ``by_class``."""

    _criteria = ("classname", "tsize", "birth", "death", "name", "repr", "size")

    def __init__(self, tracker=None, stream=None):
        self.tracker = tracker
        self.stream = stream if stream is not None else sys.stdout
        self.snapshots = tracker.snapshots if tracker is not None else []
        self.index = tracker.index if tracker is not None else {}
        self.sorted = []

    def _init_sort(self):
        """Fills `sorted` with every TrackedObject of the index, each given classname, size (its
        largest measured size), tsize (its size in the snapshot that tracked the most) and repr."""
        if self.sorted:
            return
        largest = max(self.snapshots, key=lambda s: s.tracked_total, default=None)
        tmax = largest.timestamp if largest is not None else None
        for name, tobjs in self.index.items():
            for tobj in tobjs:
                obj = tobj.ref()
                if obj is not None:
                    tobj.repr = _safe_repr(obj)
                tobj.classname = name
                tobj.size = tobj.get_max_size()
                tobj.tsize = tobj.get_size_at_time(tmax)
                self.sorted.append(tobj)

    def sort_stats(self, *args):
        """Sorts the tracked objects by the given criteria (pympler's: classname, tsize, birth,
        death, name, repr, size; sizes descending).  Returns self."""
        if not set(self._criteria).issuperset(args):
            raise ValueError("Invalid sort criteria")
        keys = args or self._criteria

        def key(tobj):
            values = []
            for attr in keys:
                value = getattr(tobj, attr, "")
                if attr in ("tsize", "size"):
                    value = -int(value)
                elif attr == "death":
                    value = (value is not None, value or 0.0)
                values.append(value)
            return tuple(values)

        self._init_sort()
        self.sorted.sort(key=key)
        return self

    def reverse_order(self):
        self._init_sort()
        self.sorted.reverse()
        return self

    def print_object(self, tobj):
        """pympler's per-object block: name, address (or '( free )'), repr, trace, sizes by time."""
        if tobj.death:
            self.stream.write("%-32s ( free )   %-35s\n" % (_truncate(tobj.name, 32, left=True),
                                                           _truncate(tobj.repr, 35)))
        else:
            self.stream.write("%-32s 0x%08x %-35s\n" % (_truncate(tobj.name, 32, left=True), tobj.id,
                                                       _truncate(tobj.repr, 35)))
        if tobj.trace:
            for fname, lineno, func, _, _ in tobj.trace:
                self.stream.write("  %s:%4d in %s\n" % (fname, lineno, func))
        for timestamp, size in tobj.snapshots:
            self.stream.write("  %-30s %s\n" % (_pretty_time(timestamp), _pretty_size(size.size)))
        if tobj.death is not None:
            self.stream.write("  %-30s finalize\n" % (_pretty_time(tobj.death),))

    def print_stats(self, clsname=None, limit=1.0):
        """Prints the tracked objects whose class name contains `clsname`; a `limit` below 1 keeps
        that share of them, above 1 that many."""
        if self.tracker is not None:
            self.tracker.stop_periodic_snapshots()
        if not self.sorted:
            self.sort_stats()
        chosen = self.sorted
        if clsname:
            chosen = [t for t in chosen if clsname in t.classname]
        if limit < 1.0:
            limit = max(1, int(len(self.sorted) * limit))
        for tobj in chosen[: int(limit)]:
            self.print_object(tobj)

    @property
    def tracked_classes(self):
        """Sorted names of the classes (and named objects) that had instances."""
        if self.tracker is None:
            return []
        self.tracker._note_names()
        return sorted(self.tracker._names)

    def annotate_snapshot(self, snapshot):
        """The per-class rows of one snapshot (stored in snapshot.classes, as pympler does)."""
        snapshot.classes = {name: snapshot._class_summary(name) for name in self.tracked_classes}
        return snapshot.classes

    def annotate(self):
        for snapshot in self.snapshots:
            self.annotate_snapshot(snapshot)

    def print_summary(self, file=None):
        """Prints pympler's per-snapshot table: one header line per snapshot, then each class's
        active instances, total size, average size and share of the process size."""
        out = file if file is not None else self.stream
        names = self.tracked_classes
        out.write("---- SUMMARY " + "-" * 66 + "\n")
        for snapshot in self.snapshots:
            classes = self.annotate_snapshot(snapshot)
            out.write("%-35s %11s %12s %12s %5s\n" % (
                _truncate(snapshot.desc, 35), "active", _pretty_size(snapshot.asizeof_total), "average", "pct"))
            for name in names:
                row = classes[name]
                out.write("  %-33s %11d %12s %12s %4d%%\n" % (
                    _truncate(name, 33), row["active"], _pretty_size(row["sum"]), _pretty_size(row["avg"]),
                    row["pct"]))
        out.write("-" * 79 + "\n")

    @property
    def by_class(self):
        """module.Qualname -> dict(created, alive, destroyed, peak_alive, avg_lifetime,
        max_lifetime, total_size, avg_size) for every class tracked now."""
        result = {}
        if self.tracker is None:
            return result
        for cls in list(self.tracker._observers):
            created, alive, destroyed, peak, avg_life, max_life, total, avg = _libleak.classtrack_counters(cls)
            result[_qualified_name(cls)] = dict(
                created=created, alive=alive, destroyed=destroyed, peak_alive=peak, avg_lifetime=avg_life,
                max_lifetime=max_life, total_size=total, avg_size=avg)
        return result
