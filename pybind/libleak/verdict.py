"""libleak.verdict: what kind of growth a run shows, from its series of sample points alone.

``libleak run`` samples, every few seconds, the process's resident memory (RSS), the bytes the
tracer sees live (when tracing), and a census of live objects.  Set side by side they tell three
kinds of memory growth apart, which no single one of them can:

- ``"python"``: live Python objects (census) or traced bytes grow steadily and account for the
  RSS growth: a leak of Python objects; the growing types are the culprits.
- ``"native"``: RSS grows steadily while the traced heap and the census stay flat: memory taken
  outside Python's allocators, by an extension module or a C library.
- ``"fragmentation"``: live bytes rose and then fell, but RSS stayed up: the allocators keep the
  freed memory (pymalloc returns an arena only when all of it is free; glibc keeps freed chunks
  in its arenas).
- ``"none"``: nothing grows steadily.

``judge(series, ...)`` is a pure function: the same series always gives the same verdict, so it is
tested on constructed series as well as on real programs.

Example::

    >>> rows = [{"t": i, "rss": 50 << 20, "traced": None, "objects": 1000,
    ...          "object_bytes": 100000} for i in range(5)]
    >>> judge(rows)["kind"]
    'none'
"""

from libleak.heap import _format_size, _slope

__all__ = ["judge", "grows_steadily", "KINDS"]

#: The verdicts, as run.json's ``verdict.kind`` holds them.
KINDS = ("python", "native", "fragmentation", "none")

_MIB = 1 << 20
# Thresholds, in bytes.  RSS moves by whole pages and the allocators grab memory in arenas of
# 256 KiB to 64 MiB, so growth below a few MiB says nothing about where memory goes.
_NATIVE_MIN_RSS_GROWTH = 4 * _MIB  # steady RSS growth below this is not called native
_NATIVE_RATIO = 3  # RSS must grow this many times more than the live bytes
_PYTHON_MIN_LIVE_GROWTH = 256 * 1024  # steady live growth without a growing type named
_FRAGMENTATION_MIN_FALL = 8 * _MIB  # live bytes must fall at least this much from their peak

_DOMAIN_NAMES = {389047: "numpy"}


def _values(rows, key):
    return [row.get(key) for row in rows]


def _live_series(rows):
    """The live bytes the verdict weighs against RSS: traced bytes when every row has them (they
    include allocator-level sizes and extension buffers), else the census's object bytes."""
    traced = _values(rows, "traced")
    if rows and all(isinstance(v, int) for v in traced):
        return traced, "the traced Python heap"
    return _values(rows, "object_bytes"), "live objects (census)"


def grows_steadily(values):
    """True when a series of sample points rose on (nearly) every interval and overall: leak_check's
    rule, with one interval in four (at least one, from three intervals on) allowed to miss, since
    a program does not leak at the pace of the sampling clock (the point at exit, right after the
    last periodic one, often sees no new request)."""
    intervals = len(values) - 1
    if intervals < 2:  # one difference cannot tell a leak from anything else that changed once
        return False
    rises = sum(1 for a, b in zip(values, values[1:]) if b > a)
    allowed = max(1, intervals // 4) if intervals >= 3 else 0
    return rises >= intervals - allowed and values[-1] > values[0] and _slope(values) > 0


_steady = grows_steadily


def _rises(values):
    return sum(1 for a, b in zip(values, values[1:]) if b > a)


def _named_first(leaks):
    """The growing types, the program's and libraries' classes ('module.Class') before the builtin
    types they are made of (dict, str, list), each group most bytes first."""
    return [leak for leak in leaks if "." in leak["type_name"]] + [leak for leak in leaks
                                                                   if "." not in leak["type_name"]]


def _culprits(leaks, limit=5):
    names = []
    for leak in _named_first(leaks)[:limit]:
        names.append("%s (%s, %+d objects)" % (leak["type_name"], _format_size(leak["size_growth"], sign=True),
                                               leak["count_growth"]))
    return ", ".join(names)


def _buffers_text(extension_buffers, traced):
    grown = [b for b in extension_buffers if b.get("size_diff", 0) > 0]
    if grown:
        return "Extension buffers that grew: %s." % ", ".join(
            "%s %s" % (b["module"], _format_size(b["size_diff"], sign=True)) for b in grown)
    if traced:
        return "No traced extension buffer (NumPy arrays and the like) grew."
    return "Extension buffers (NumPy arrays and the like) are measured only with --trace."


def _verdict(kind, title, text):
    return {"kind": kind, "title": title, "text": text}


def judge(series, *, baseline=0, leaks=(), extension_buffers=()):
    """The verdict on a run: a dict ``{"kind", "title", "text"}`` (kind one of ``KINDS``).

    series: the run's sample points, dicts with ``rss``, ``traced`` (int or None), ``objects``
        and ``object_bytes`` (run.json's ``series``), oldest first; ``traced_peak`` is used when
        present.
    baseline: the index of the first point that counts for steady growth (the points before it are
        the program's start: imports and caches filling once).  Fragmentation looks at the whole
        series, since the peak it needs may come early.
    leaks: the growing types (dicts with ``type_name``, ``count_growth``, ``size_growth``), most
        bytes first: they are named as the culprits.
    extension_buffers: dicts with ``module`` and ``size_diff``: the traced extension buffers'
        growth, named in the text.
    Raises ValueError when a row lacks ``rss``, ``objects`` or ``object_bytes``.
    """
    rows = list(series)
    for row in rows:
        for key in ("rss", "objects", "object_bytes"):
            if not isinstance(row.get(key), int):
                raise ValueError("every series row needs an int %r, got %r" % (key, row.get(key)))
    if not isinstance(baseline, int) or isinstance(baseline, bool) or baseline < 0:
        raise ValueError("baseline must be an int >= 0, not %r" % (baseline,))
    leaks = list(leaks)
    extension_buffers = list(extension_buffers)
    window = rows[min(baseline, max(len(rows) - 3, 0)):]
    if len(window) < 3:
        return _verdict("none", "too short to judge",
                        "The run has %d sample point%s: steady growth needs three or more. Run longer, or sample "
                        "more often with --every (now: a point at the start, one every interval, one at exit)."
                        % (len(rows), "" if len(rows) == 1 else "s"))
    traced_known = all(isinstance(v, int) for v in _values(rows, "traced"))
    rss = _values(window, "rss")
    live, live_name = _live_series(window)
    objects = _values(window, "objects")
    rss_growth = rss[-1] - rss[0]
    live_growth = live[-1] - live[0]
    intervals = len(window) - 1
    facts = "RSS %s, %s %s, live objects %+d (%s) over %d sample intervals" % (
        _format_size(rss_growth, sign=True), live_name, _format_size(live_growth, sign=True),
        objects[-1] - objects[0], _format_size(window[-1]["object_bytes"] - window[0]["object_bytes"], sign=True),
        intervals)

    leaked_bytes = sum(max(0, leak["size_growth"]) for leak in leaks)
    python_growth = (leaks and leaked_bytes > 0 and live_growth > 0) or (_steady(live) and live_growth >= _PYTHON_MIN_LIVE_GROWTH)
    native_growth = (_steady(rss) and rss_growth >= _NATIVE_MIN_RSS_GROWTH
                     and rss_growth >= _NATIVE_RATIO * max(live_growth, 0))

    # Fragmentation: the whole run, since the peak of live bytes may come before the baseline.
    all_rss = _values(rows, "rss")
    all_live, _ = _live_series(rows)
    peaks = list(all_live)
    if traced_known:
        peaks += [row["traced_peak"] for row in rows if isinstance(row.get("traced_peak"), int)]
    peak = max(peaks)
    fall = peak - all_live[-1]
    kept = all_rss[-1] - all_rss[0]
    if fall >= _FRAGMENTATION_MIN_FALL and kept >= fall // 2:
        text = ("Live bytes rose to %s and fell by %s to %s, but RSS stayed %s above where the run started: the "
                "allocators keep memory the program freed. pymalloc returns an arena (%s) to the system only when "
                "every object in it is free, so a few survivors pin whole arenas; glibc's malloc keeps freed chunks "
                "in its arenas (one per thread, up to 8 per core). Free long-lived and short-lived objects apart "
                "(allocate what lives long first, or in one batch), try MALLOC_ARENA_MAX=2 for threaded programs, "
                "or PYTHONMALLOC=malloc with a compacting allocator (jemalloc, tcmalloc) to compare. (%s.)" % (
                    _format_size(peak), _format_size(fall), _format_size(all_live[-1]), _format_size(kept),
                    "256 KiB up to Python 3.9, 1 MiB from 3.10", facts))
        return _verdict("fragmentation", "the allocators hold freed memory (fragmentation)", text)

    if native_growth:
        text = ("RSS grew by %s, rising on %d of %d sample intervals, while %s grew by %s: the memory is taken "
                "outside Python's allocators, by an extension module or a C library (ctypes calls, a C extension's "
                "own malloc, a library's caches). %s Python tools cannot see this memory; look at the extensions "
                "the program calls on its hot path, or run it under a native profiler (heaptrack, valgrind's massif, "
                "memray --native). (%s.)" % (
                    _format_size(rss_growth), _rises(rss), intervals, live_name, _format_size(live_growth, sign=True),
                    _buffers_text(extension_buffers, traced_known), facts))
        if python_growth and leaks:
            text += " Python objects grow too: %s." % _culprits(leaks)
        return _verdict("native", "memory grows outside Python's heap (native)", text)

    if python_growth:
        if leaks:
            title = "Python objects leak: %s" % ", ".join(leak["type_name"] for leak in _named_first(leaks)[:3])
            culprits = "The growing types: %s. Their retention paths below name what holds them." % _culprits(leaks)
        else:
            title = "Python's live heap grows"
            culprits = ("No single type grows on nearly every sample point; the allocation lines that grew (with "
                        "--trace) show where.")
        share = ""
        if rss_growth > 0:
            share = " Live bytes account for %d%% of the RSS growth." % min(100, int(100.0 * max(live_growth, 0)
                                                                              / rss_growth))
        text = "%s grew steadily by %s (RSS %s).%s %s" % (
            live_name[0].upper() + live_name[1:], _format_size(live_growth, sign=True),
            _format_size(rss_growth, sign=True), share, culprits)
        if extension_buffers or traced_known:
            text += " " + _buffers_text(extension_buffers, traced_known)
        return _verdict("python", title, text + " (%s.)" % facts)

    text = "Nothing grows steadily: %s." % facts
    if rss_growth >= _NATIVE_MIN_RSS_GROWTH and not _steady(rss):
        text += (" RSS rose by %s, but not on most sample points: a one-time growth (a cache filling, a large "
                 "buffer), not a leak." % _format_size(rss_growth))
    return _verdict("none", "no leak found", text)


def domain_module(domain):
    """The name of the extension that reports buffers in a tracer domain: 'numpy' for NumPy's
    389047, else 'domain N'."""
    return _DOMAIN_NAMES.get(domain, "domain %d" % domain)
