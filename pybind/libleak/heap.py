"""libleak.heap: which kinds of objects are alive, and which grow.

A census counts every live object once, per type, with its size as ``sys.getsizeof`` gives it: the
objects the garbage collector tracks and the ones they reach that it does not track (str, int,
float, bytes, ...), which objgraph never sees.  It runs in C over the heap, keeps its bookkeeping
outside the Python heap (it never counts itself), and does not force a ``gc.collect()``: cycles
that are waiting for the collector are counted, as they are alive.

Example::

    import libleak.heap

    before = libleak.heap.census()
    cache = {i: str(i) * 10 for i in range(1000)}
    after = libleak.heap.census()
    for row in after.compare_to(before)[:3]:
        print(row)
    new_strs = after.new_objects(before, "str")

``leak_check(func, *args, runs=10, warmup=3, **kwargs)`` calls ``func`` again and again and reports
the types (and, with ``libleak.tracer`` running, the allocation lines) that grow on (nearly) every
call: a slope per run, not one difference.
"""

import gc
import sys

from libleak import _libleak

__all__ = ["Census", "CensusDiff", "census", "leak_check", "LeakReport", "LeakType", "LeakSite"]

# Name kinds understood by the C census (heap/census.h).
_QUALIFIED, _SHORT, _LONG = 0, 1, 2


def _format_size(size, sign=False):
    """A byte count as people read it: '512 B', '+5.0 KiB'."""
    prefix = "-" if size < 0 else ("+" if sign else "")
    value = float(abs(size))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    if unit == "B":
        return "%s%d %s" % (prefix, value, unit)
    return "%s%.1f %s" % (prefix, value, unit)


def _type_name(cls):
    """libleak's name for a class: 'module.Qualname', builtins bare (as the census names them)."""
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", cls.__name__)
    if not module or module == "builtins":
        return qualname
    return "%s.%s" % (module, qualname)


class CensusDiff:
    """One row of ``Census.compare_to``: a type's count and size now, and their change."""

    __slots__ = ("type_name", "count", "count_diff", "size", "size_diff")

    def __init__(self, type_name, count, count_diff, size, size_diff):
        self.type_name = type_name
        self.count = count
        self.count_diff = count_diff
        self.size = size
        self.size_diff = size_diff

    def _key(self):
        return (self.type_name, self.count, self.count_diff, self.size, self.size_diff)

    def __eq__(self, other):
        return isinstance(other, CensusDiff) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return "<CensusDiff %s count=%d (%+d) size=%d (%+d)>" % self._key()

    def _repr_html_(self):
        """Jupyter shows the row as a one-row table (libleak._display)."""
        from libleak._display import census_diff_html

        return census_diff_html([self])

    def __str__(self):
        return "%s: count=%d (%+d), size=%s (%s)" % (
            self.type_name,
            self.count,
            self.count_diff,
            _format_size(self.size),
            _format_size(self.size_diff, sign=True),
        )


class Census:
    """The live objects of the interpreter counted per type, at one moment.

    ``by_type`` maps the type's name ('module.Qualname'; builtins as 'int', 'list') to
    ``(count, size)``; ``count`` and ``size`` are the totals.  Two classes with one name in two
    modules are two names; two distinct classes with the same module and name (a class made again
    and again) are added together in ``by_type`` but stay apart in ``compare_to``.
    """

    __slots__ = ("_handle", "_by_type", "tracked_only")

    def __init__(self, handle, tracked_only):
        self._handle = handle
        self._by_type = None
        self.tracked_only = tracked_only

    # The totals are read from C when asked, so that a census kept between two others adds no
    # Python objects but itself and its handle to them.
    @property
    def count(self):
        """The number of objects counted."""
        return _libleak.census_totals(self._handle)[0]

    @property
    def size(self):
        """Their total size in bytes (sys.getsizeof of each)."""
        return _libleak.census_totals(self._handle)[1]

    @property
    def memory(self):
        """The bytes the census itself holds, outside the Python heap."""
        return _libleak.census_totals(self._handle)[2]

    @property
    def by_type(self):
        """dict: type name -> (count, size)."""
        if self._by_type is None:
            by_type = {}
            for name, count, size in _libleak.census_rows(self._handle, _QUALIFIED):
                old = by_type.get(name)
                by_type[name] = (count, size) if old is None else (old[0] + count, old[1] + size)
            self._by_type = by_type
        return self._by_type

    def compare_to(self, old):
        """Rows (``CensusDiff``) for every type in either census, largest size_diff first."""
        if not isinstance(old, Census):
            raise TypeError("compare_to() expects a Census, not %s" % type(old).__name__)
        return [CensusDiff(*row) for row in _libleak.census_diff(self._handle, old._handle)]

    def new_objects(self, old, type_name=None, limit=None):
        """The objects this census counted and ``old`` did not, that are still alive now with the
        same type: a list of the objects themselves.  ``type_name`` ('module.Qualname', or a class)
        keeps one type; ``limit`` caps the number returned.  Objects are told apart by address and
        type: an object made after ``old`` at the address of one of the same type that ``old``
        counted and that died since is taken for that old one (and not returned), as objgraph's
        ``get_new_ids`` does; a reused address of another type never is."""
        if not isinstance(old, Census):
            raise TypeError("new_objects() expects a Census, not %s" % type(old).__name__)
        return _new_objects(self, old, type_name, limit)

    def __repr__(self):
        return "<Census %d objects, %s, %d types>" % (self.count, _format_size(self.size), len(self.by_type))


def _check_name(type_name):
    if type_name is None or isinstance(type_name, str):
        return type_name
    if isinstance(type_name, type):
        return _type_name(type_name)
    raise TypeError("type_name must be a str, a class or None, not %s" % type(type_name).__name__)


def _check_limit(limit):
    if limit is None:
        return 0
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError("limit must be an int or None, not %s" % type(limit).__name__)
    if limit < 0:
        raise ValueError("limit must be >= 0, not %d" % limit)
    return limit


def _new_objects(now, old, type_name, limit):
    name = _check_name(type_name)
    limit = _check_limit(limit)
    return _libleak.census_new_objects(now._handle, None if old is None else old._handle, _QUALIFIED, name, limit)


def census(*, gc_collect=False, tracked_only=False, keep_objects=True, exclude=(), exclude_alone=()):
    """Counts the live objects per type and returns a ``Census``.

    gc_collect: run ``gc.collect()`` first (by default nothing is collected: what is alive is
        counted, cycles waiting for the collector included).
    tracked_only: count only what the gc tracks (what ``gc.get_objects()`` returns, as objgraph does).
    keep_objects: remember addresses, for ``Census.new_objects`` (12 bytes per object, outside the
        Python heap).
    exclude: objects not to count, with everything reachable from them.
    exclude_alone: objects not to count, one by one (what they reach is counted).
    """
    for name, value in (("exclude", exclude), ("exclude_alone", exclude_alone)):
        if not isinstance(value, (tuple, list)):
            raise TypeError("%s must be a tuple or list of objects, not %s" % (name, type(value).__name__))
    handle = _libleak.census_take(bool(gc_collect), bool(tracked_only), bool(keep_objects), exclude, exclude_alone)
    return Census(handle, bool(tracked_only))


# ---- leak_check ------------------------------------------------------------------------------


class LeakType:
    """A type whose live objects grow on (nearly) every run: its growth per run (a least-squares
    slope over the runs), its count and size at the end, and its growth over all runs."""

    __slots__ = ("type_name", "count_per_run", "size_per_run", "count", "size", "count_diff", "size_diff")

    def __init__(self, type_name, count_per_run, size_per_run, count, size, count_diff, size_diff):
        self.type_name = type_name
        self.count_per_run = count_per_run
        self.size_per_run = size_per_run
        self.count = count
        self.size = size
        self.count_diff = count_diff
        self.size_diff = size_diff

    def __repr__(self):
        return "<LeakType %s %+.1f objects/run %s/run>" % (
            self.type_name,
            self.count_per_run,
            _format_size(int(round(self.size_per_run)), sign=True),
        )


class LeakSite:
    """An allocation traceback (from ``libleak.tracer``) whose live memory grows on (nearly) every
    run, with its growth per run."""

    __slots__ = ("traceback", "size_per_run", "count_per_run", "size", "count")

    def __init__(self, traceback, size_per_run, count_per_run, size, count):
        self.traceback = traceback
        self.size_per_run = size_per_run
        self.count_per_run = count_per_run
        self.size = size
        self.count = count

    def __repr__(self):
        return "<LeakSite %s %s/run>" % (self.traceback, _format_size(int(round(self.size_per_run)), sign=True))


class LeakReport:
    """What ``leak_check`` found: false when nothing grows.

    ``types``: ``LeakType`` rows, the largest growth in bytes first.  ``sites``: ``LeakSite`` rows
    when the tracer was running: the allocation tracebacks whose live memory grew on (nearly)
    every run, listed when some type grows.  ``samples(type_name, n)`` returns a few of the leaked objects
    themselves (still alive, made during the runs), for ``libleak.refs.why_alive``.
    ``str(report)`` is the readable report.
    """

    def __init__(self, func_name, runs, warmup, types, sites, baseline, final, series):
        self.func_name = func_name
        self.runs = runs
        self.warmup = warmup
        self.types = types
        self.sites = sites
        self._baseline = baseline
        self._final = final
        self.series = series

    def __bool__(self):
        return bool(self.types)

    def samples(self, type_name, n=5):
        """Up to ``n`` objects of ``type_name`` (a name from ``types`` or a class) that were made
        during the runs and are still alive."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be an int, not %s" % type(n).__name__)
        if n < 0:
            raise ValueError("n must be >= 0, not %d" % n)
        if n == 0:
            return []
        return _new_objects(self._final, self._baseline, type_name, n)

    def __str__(self):
        head = "leak_check(%s): %d runs after %d warm-up runs" % (self.func_name, self.runs, self.warmup)
        if not self:
            return head + ": nothing grows.\n"
        lines = [head + ": %d types and %d allocation sites grow on every run." % (len(self.types), len(self.sites))]
        if self.types:
            width = max([len("type")] + [len(t.type_name) for t in self.types])
            lines.append("  %-*s %12s %12s %10s %12s" % (width, "type", "objects/run", "bytes/run", "count", "size"))
            for t in self.types:
                lines.append(
                    "  %-*s %+12.1f %12s %10d %12s"
                    % (
                        width,
                        t.type_name,
                        t.count_per_run,
                        _format_size(int(round(t.size_per_run)), sign=True),
                        t.count,
                        _format_size(t.size),
                    )
                )
        if self.sites:
            lines.append("  allocation sites:")
            for s in self.sites:
                lines.append(
                    "    %s: %s/run (%+.1f blocks/run), %s live"
                    % (s.traceback, _format_size(int(round(s.size_per_run)), sign=True), s.count_per_run,
                       _format_size(s.size))
                )
        return "\n".join(lines) + "\n"

    def __repr__(self):
        return "<LeakReport %s: %d types, %d sites>" % (self.func_name, len(self.types), len(self.sites))

    def _repr_html_(self):
        """Jupyter shows the report as tables (libleak._display)."""
        from libleak._display import leak_report_html

        return leak_report_html(self)


def _slope(values):
    """The least-squares slope of values[0..n) against 0..n."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2.0
    mean_y = sum(values) / float(n)
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def _grows(values, runs):
    """True when values (baseline, then one per run) rose on nearly every run: at most one run in
    five (at least one) without a rise when there are five runs or more, none with fewer; and
    the whole series rose."""
    rises = sum(1 for a, b in zip(values, values[1:]) if b > a)
    allowed = max(1, runs // 5) if runs >= 5 else 0
    return rises >= runs - allowed and values[-1] > values[0] and _slope(values) > 0


# Modules whose caches grow without bound being a leak: their allocation lines are not reported.
# Named by module (their files are found where this interpreter keeps them), never by a piece of a
# path: a checkout in a folder called "re" or "libleak" must not hide a user's own lines.
_NOISE_MODULES = ("re", "sre_compile", "sre_parse", "linecache", "logging", "tracemalloc", "functools",
                  "typing", "abc", "_weakrefset", "libleak")
_NOISE_FROZEN = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def _noise_places():
    """(exact file names, package folders) of the noise modules that are imported."""
    import os

    files, folders = set(_NOISE_FROZEN), []
    for name in _NOISE_MODULES:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.abspath(path)
        if os.path.basename(path) == "__init__.py":
            folders.append(os.path.dirname(path) + os.sep)
        else:
            files.add(path)
    return files, tuple(folders)


def _is_noise(filename, places):
    import os

    files, folders = places
    if filename in files:
        return True
    path = os.path.abspath(filename) if not filename.startswith("<") else filename
    return path in files or path.startswith(folders)


def _noise_roots():
    """The interpreter's caches that may grow while a program is healthy: (roots whose whole reach
    is excluded, objects excluded alone).  re's pattern caches, linecache, bounded lru_caches'
    entries, and logging's registry of loggers (the loggers, not the handlers added to them)."""
    deep, shallow = [], []
    re = sys.modules.get("re")
    for name in ("_cache", "_cache2"):
        cache = getattr(re, name, None)
        if isinstance(cache, dict):
            deep.append(cache)
    linecache = sys.modules.get("linecache")
    if linecache is not None and isinstance(getattr(linecache, "cache", None), dict):
        deep.append(linecache.cache)
    logging = sys.modules.get("logging")
    manager = getattr(getattr(logging, "Logger", None), "manager", None)
    logger_dict = getattr(manager, "loggerDict", None)
    if isinstance(logger_dict, dict):
        shallow.append(logger_dict)
        for key, logger in list(logger_dict.items()):
            deep.append(key)
            shallow.append(logger)
            attributes = getattr(logger, "__dict__", None)
            if attributes is not None:
                shallow.append(attributes)
                for name, value in attributes.items():
                    if name in ("_cache", "name") or isinstance(value, (int, float, str)):
                        deep.append(value)
                    elif isinstance(value, (list, dict)):
                        shallow.append(value)  # handlers, filters, loggerMap: not what they hold
    return deep, shallow


def _bounded_lru_caches():
    """Every functools.lru_cache with a maxsize: it stops growing once full, so its entries are
    noise for a few runs (an lru_cache without a maxsize is not here)."""
    wrappers = []
    for wrapper in gc.get_objects():
        if type(wrapper).__name__ != "_lru_cache_wrapper":
            continue
        try:
            if wrapper.cache_info().maxsize is None:
                continue
        except Exception:
            continue
        wrappers.append(wrapper)
    return wrappers


def _lru_entries(wrappers):
    """What bounded lru_caches hold: their entry tables, keys and results (gc.get_referents of the
    wrapper, its function, attribute dict and classes left out: those are not cache entries)."""
    entries = []
    for wrapper in wrappers:
        for referent in gc.get_referents(wrapper):
            if isinstance(referent, type) or referent is getattr(wrapper, "__wrapped__", None):
                continue
            if referent is getattr(wrapper, "__dict__", None):
                continue
            entries.append(referent)
    return entries


def _site_series(snapshots, runs):
    """Per allocation traceback (innermost frame outside the noise modules): live bytes and blocks
    in each snapshot."""
    series = {}
    places = _noise_places()
    for k, snapshot in enumerate(snapshots):
        for stat in snapshot.statistics("traceback"):
            frame = stat.traceback[-1]  # the innermost frame: tracebacks run oldest first
            if _is_noise(frame.filename, places):
                continue
            key = stat.traceback
            sizes, counts = series.setdefault(key, ([0] * len(snapshots), [0] * len(snapshots)))
            sizes[k] += stat.size
            counts[k] += stat.count
    return series


def leak_check(func, *args, runs=10, warmup=3, **kwargs):
    """Calls ``func(*args, **kwargs)`` ``warmup`` times, then ``runs`` times more with a census of
    the heap after each call (after ``gc.collect()``, so garbage cycles do not count), and returns a
    ``LeakReport`` of the types whose live objects grow on (nearly) every run, with their growth per
    run.  With ``libleak.tracer`` running, the allocation tracebacks whose live memory grows are
    reported too.  The interpreter's own caches (re, linecache, logging's loggers, bounded
    lru_caches) and leak_check's bookkeeping are not counted; what warm-up made once (imports,
    caches that filled up) does not grow afterwards, so it is not reported.

    Example::

        report = leak_check(handle_request, fake_request, runs=10)
        if report:
            print(report)
            leaked = report.samples(report.types[0].type_name, 3)
    """
    if not callable(func):
        raise TypeError("leak_check() needs a callable, not %s" % type(func).__name__)
    for name, value in (("runs", runs), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    if runs < 1:
        raise ValueError("runs must be at least 1, not %d" % runs)
    if warmup < 0:
        raise ValueError("warmup must be at least 0, not %d" % warmup)
    from libleak import tracer

    for _ in range(warmup):
        func(*args, **kwargs)
    # Everything kept here is reachable from `state`, which every census leaves out.
    state = {"rows": [], "snapshots": [], "censuses": [], "lru": _bounded_lru_caches(), "exclude": None}
    tracing = tracer.is_tracing()

    def measure(keep):
        gc.collect()
        deep, shallow = _noise_roots()
        # Kept in `state` (so excluded with it), read in place by the census: no list or tuple made
        # here is counted.  The shallow list excludes itself, alone.
        exclude = state["exclude"] = [state] + _lru_entries(state["lru"]) + deep
        shallow.append(shallow)
        taken = census(keep_objects=keep, exclude=exclude, exclude_alone=shallow)
        del exclude, deep, shallow
        state["censuses"].append(taken) if keep else None
        state["rows"].append(taken.by_type)
        if tracing:
            state["snapshots"].append(tracer.take_snapshot())
        return taken

    baseline = measure(True)
    for run in range(runs):
        func(*args, **kwargs)
        final = measure(run == runs - 1)
    rows = state["rows"]
    names = set()
    for by_type in rows:
        names.update(by_type)
    types = []
    for name in names:
        counts = [by_type.get(name, (0, 0))[0] for by_type in rows]
        sizes = [by_type.get(name, (0, 0))[1] for by_type in rows]
        if _grows(counts, runs) or _grows(sizes, runs):
            types.append(
                LeakType(name, _slope(counts), _slope(sizes), counts[-1], sizes[-1], counts[-1] - counts[0],
                         sizes[-1] - sizes[0])
            )
    types.sort(key=lambda t: (-t.size_per_run, -t.count_per_run, t.type_name))
    sites = []
    # Allocation lines are evidence for growing types: alone they cannot tell a leak from a cache
    # of the interpreter filling up (its objects are left out of the census, not of the traces).
    if types and tracing and len(state["snapshots"]) == runs + 1:
        for traceback, (sizes, counts) in _site_series(state["snapshots"], runs).items():
            if _grows(sizes, runs):
                sites.append(LeakSite(traceback, _slope(sizes), _slope(counts), sizes[-1], counts[-1]))
        sites.sort(key=lambda s: -s.size_per_run)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    series = {t.type_name: [by_type.get(t.type_name, (0, 0))[0] for by_type in rows] for t in types}
    return LeakReport(name, runs, warmup, types, sites, baseline, final, series)

