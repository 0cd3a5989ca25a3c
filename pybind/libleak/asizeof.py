"""Deep sizes of Python objects: a drop-in for ``pympler.asizeof``.

``asizeof(*objs)`` is the number of bytes the objects hold together: each object's own size (what
``sys.getsizeof`` reports, rounded up to ``align`` bytes) plus the sizes of everything it
references, each object counted once.  The walk runs in libleak's C core, with no recursion
limit of its own and a visited set outside the Python heap, so it is many times faster than
pympler's and never meets a ``RecursionError``::

    >>> from libleak import asizeof
    >>> asizeof.asizeof([1.5, "text"]) >= asizeof.flatsize([])
    True
    >>> asizeof.asizesof([], {})
    (56, 64)

What is counted follows pympler: modules met along the way are counted but not followed (a module
given as an argument is followed through its globals); classes, functions, methods and code
objects are left out unless ``code=True`` (builtin ones, and bare ``object()``s, also need
``ignored=False``); frames are left out unless ``frames=True``; dicts are followed through their
keys and values; instances through their ``__dict__`` and ``__slots__``; NumPy arrays through
their ``.base``; other containers through what they reference.  An instance whose ``__dict__``
CPython keeps as a plain values array (3.11+) is counted as the dict that reading ``__dict__``
would create, which is what pympler reports after creating it; libleak does not create it.

Options, with pympler's names and defaults:

- ``align=8``: round each object's size up to this power of 2 (0 or 1: no rounding).
- ``limit=100``: follow referents this many levels deep (0: flat sizes; ``None``: no limit).
- ``code=False``, ``frames=False``, ``ignored=True``: see above.
- ``all=False``: with no positional argument, size every object the gc tracks.
- ``stats=0``: a positive value prints a summary after sizing (to ``stream`` or stdout).  The
  summary is libleak's own short table, not pympler's full report; ``above``, ``cutoff`` and
  ``clip`` are accepted for compatibility and shape nothing else.
- ``derive=False``, ``infer=False``: accepted; they change no result here (pympler uses them to
  guess how to size unknown types; libleak sizes every type through its own ``__sizeof__`` and
  its references).

Known differences from pympler: weak references are not followed; C types that pympler does not
know (``collections.deque``, ``memoryview``, ``types.SimpleNamespace``, ...) are sized with what
they reference, where pympler reports them flat or as zero; a NumPy view is counted without the
buffer it shares (pympler counts the shared buffer twice).  A ``__sizeof__`` written in Python
runs after the walk, as ``sys.getsizeof`` would call it.  Unknown options raise ``TypeError``
(pympler raises ``KeyError``).
"""

import gc as _gc
import sys as _sys

from libleak import _libleak

__all__ = ["asizeof", "asizesof", "basicsize", "itemsize", "flatsize"]

_SIZING_OPTIONS = ("align", "limit", "code", "frames", "ignored", "derive", "infer")
_PRINT_OPTIONS = ("above", "clip", "cutoff", "stats", "stream", "detail")
_TYPEDEF_OPTIONS = ("derive", "infer", "save")

# sizeof(PyGC_Head): what pympler adds to the basic size of types the gc tracks.
_GC_HEAD = _sys.getsizeof([]) - [].__sizeof__()
_POINTER = 8 if _sys.maxsize > 2**32 else 4


def _check_options(where, opts, allowed):
    """Refuses options ``where`` does not know, with the names it does."""
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise TypeError("%s() got unexpected option(s) %s; known: %s"
                        % (where, ", ".join(unknown), ", ".join(sorted(allowed))))


def _int_option(where, name, value, minimum=0):
    """An integer option, checked: TypeError for a non-int, ValueError below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s(): %s must be an int, not %s" % (where, name, type(value).__name__))
    if value < minimum:
        raise ValueError("%s(): %s must be >= %d, not %d" % (where, name, minimum, value))
    return value


def _align_option(where, align):
    """``align`` must be 0, 1 or a power of 2."""
    align = _int_option(where, "align", align)
    if align > 1 and align & (align - 1):
        raise ValueError("%s(): align must be a power of 2 (or 0 or 1 for none), not %d" % (where, align))
    return align


def _walk(where, objs, excluded, opts):
    """Checks the options and runs the C walk; returns its tuple."""
    align = _align_option(where, opts.get("align", 8))
    limit = opts.get("limit", 100)
    if limit is not None:
        limit = _int_option(where, "limit", limit)
    stats = opts.get("stats", 0)
    if isinstance(stats, bool) or not isinstance(stats, (int, float)):
        raise TypeError("%s(): stats must be a number, not %s" % (where, type(stats).__name__))
    if stats < 0:
        raise ValueError("%s(): stats must be >= 0, not %r" % (where, stats))
    return _libleak.deep_sizes(tuple(objs), tuple(excluded), align, limit, bool(opts.get("code", False)),
                               bool(opts.get("frames", False)), bool(opts.get("ignored", True)))


def _print_stats(where, objs, opts, walked):
    """The summary ``stats > 0`` asks for: totals of the walk, one line each."""
    stream = opts.get("stream") or _sys.stdout
    sizes, total, objects, seen, deferred, depth = walked
    lines = [
        "",
        "%s(..., %s) ..." % (where, ", ".join("%s=%r" % kv for kv in sorted(opts.items()) if kv[0] != "stream")),
        " %d bytes" % total,
        " %d byte aligned" % opts.get("align", 8),
        " %d byte sizeof(void*)" % _POINTER,
        " %d object%s given" % (len(objs), "" if len(objs) == 1 else "s"),
        " %d objects sized" % objects,
        " %d objects seen" % seen,
        " %d objects sized by their own __sizeof__ after the walk" % deferred,
        " %d deepest recursion" % depth,
    ]
    stream.write("\n".join(lines) + "\n")


def asizeof(*objs, **opts):
    """Return the combined size in bytes of all positional arguments, each object counted once.

    With no positional argument and ``all=True``, sizes every object the gc tracks.  Options as in
    the module documentation.  A non-int ``align``/``limit`` raises TypeError, a negative one or an
    ``align`` that is not a power of 2 ValueError, an unknown option TypeError.
    """
    _check_options("asizeof", opts, _SIZING_OPTIONS + _PRINT_OPTIONS + ("all",))
    everything = opts.pop("all", None)
    excluded = ()
    if not objs:
        if everything is True:
            objs = _gc.get_objects()
            excluded = (objs,)
        elif everything not in (False, None):
            raise ValueError("asizeof(): all must be True, False or None, not %r" % (everything,))
    walked = _walk("asizeof", objs, excluded, opts)
    if opts.get("stats", 0) and objs:
        _print_stats("asizeof", objs, opts, walked)
    return walked[1]


def asizesof(*objs, **opts):
    """Return a tuple with each argument's size in bytes.

    An object reachable from several arguments is counted under the first one that reaches it, and
    an argument referenced by another is counted as its own; an argument given twice reports the
    same size twice.  Options as for :func:`asizeof` (without ``all``).
    """
    _check_options("asizesof", opts, _SIZING_OPTIONS + _PRINT_OPTIONS)
    walked = _walk("asizesof", objs, (), opts)
    if opts.get("stats", 0) and objs:
        _print_stats("asizesof", objs, opts, walked)
    return walked[0]


def _is_gc_type(cls):
    """True when instances of ``cls`` carry the gc header (Py_TPFLAGS_HAVE_GC)."""
    return bool(cls.__flags__ & (1 << 14))


# Item sizes pympler assumes where the type's __itemsize__ is 0 (its static type definitions).
_DEFAULT_ITEMSIZE = {
    list: _POINTER,
    tuple: _POINTER,
    dict: 3 * _POINTER,  # a hash and two pointers per entry
    set: 2 * _POINTER,
    frozenset: 2 * _POINTER,
    str: 1,
    bytes: 1,
    bytearray: 1,
    slice: _POINTER,
}


def _has_buffer_itemsize(obj):
    """NumPy arrays and array.array: their item size is the element's, read from the object."""
    cls = type(obj)
    if cls.__module__ == "array" and cls.__name__ == "array":
        return True
    return any(c.__module__ == "numpy" and c.__name__ == "ndarray" for c in cls.__mro__)


def basicsize(obj, **opts):
    """Return the basic size of ``obj`` in bytes: its type's ``__basicsize__`` plus the gc header
    when instances carry one (for a class, its metaclass's, plus the header for classes made by
    ``class``).  Options ``derive``, ``infer`` and ``save`` are accepted and change nothing.
    """
    _check_options("basicsize", opts, _TYPEDEF_OPTIONS)
    cls = type(obj)
    size = cls.__basicsize__
    if isinstance(obj, type) and cls is type:
        if obj.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE
            size += _GC_HEAD
    elif _is_gc_type(cls):
        size += _GC_HEAD
    return size


def itemsize(obj, **opts):
    """Return the size in bytes of one item of ``obj``: its type's ``__itemsize__``, pympler's
    defaults for builtin containers (a list slot, a dict entry, a set entry, one character or byte),
    or the element size of a NumPy array or ``array.array``.  0 for objects without items.
    """
    _check_options("itemsize", opts, _TYPEDEF_OPTIONS)
    if _has_buffer_itemsize(obj):
        return obj.itemsize
    cls = type(obj)
    for c in cls.__mro__:
        if c in _DEFAULT_ITEMSIZE:
            return cls.__itemsize__ or _DEFAULT_ITEMSIZE[c]
    return cls.__itemsize__


def flatsize(obj, align=0, **opts):
    """Return the flat size of ``obj`` in bytes, referents not included: what ``sys.getsizeof``
    reports, rounded up to ``align`` (a power of 2; 0 or 1: no rounding, the default as in
    pympler).  A class's own ``__sizeof__`` runs.  ValueError for an ``align`` not a power of 2.
    """
    _check_options("flatsize", opts, _TYPEDEF_OPTIONS)
    return _libleak.flat_size(obj, _align_option("flatsize", align))
