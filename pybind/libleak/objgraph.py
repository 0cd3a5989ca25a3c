"""libleak.objgraph: objgraph's functions, counted by libleak's heap walker in C.

A drop-in for objgraph: ``import libleak.objgraph as objgraph`` and code written for objgraph runs
unchanged, with the same signatures, defaults, return shapes and printed layouts.  Like objgraph,
the counting functions see what ``gc.get_objects()`` returns (the objects the gc tracks), so their
counts match objgraph's; ``all_objects=True`` widens them to every live object (str, int, float,
... which objgraph never sees).  Unlike objgraph, nothing calls ``gc.collect()`` unless asked
(``collect=True``): a forced collection hides the reference cycles a leak hunt is looking for.

Example::

    import libleak.objgraph as objgraph
    objgraph.show_growth(limit=3)
    ...
    objgraph.show_growth()
"""

import gc
import inspect
import operator
import sys

from libleak import _libleak

__all__ = [
    "count",
    "typestats",
    "most_common_types",
    "show_most_common_types",
    "growth",
    "show_growth",
    "get_new_ids",
    "get_leaking_objects",
    "by_type",
    "at",
    "at_addrs",
    "is_proper_module",
]

# Name kinds of the C census (heap/census.h): objgraph's short name is type.__name__, its long name
# type.__module__ + "." + type.__name__.
_SHORT, _LONG = 1, 2


def _short_typename(obj):
    return type(obj).__name__


def _long_typename(obj):
    objtype = type(obj)
    name = objtype.__name__
    module = getattr(objtype, "__module__", None)
    if module:
        return "%s.%s" % (module, name)
    return name


def _census(all_objects, keep=False):
    return _libleak.census_take(False, not all_objects, keep, (), ())


def _name_kind(typename):
    if not isinstance(typename, str):
        raise TypeError("typename must be a str, not %s" % type(typename).__name__)
    return _LONG if "." in typename else _SHORT


def _maybe_collect(collect):
    if collect:
        gc.collect()


def count(typename, objects=None, *, all_objects=False):
    """Count objects tracked by the garbage collector with a given class name (short, or
    qualified with its module: 'mymodule.MyClass').  ``objects`` counts in that collection
    instead; ``all_objects=True`` counts untracked objects (str, int, ...) too."""
    kind = _name_kind(typename)
    if objects is not None:
        name_of = _long_typename if kind == _LONG else _short_typename
        return sum(1 for o in objects if name_of(o) == typename)
    handle = _census(all_objects)
    return sum(n for name, n, _ in _libleak.census_rows(handle, kind) if name == typename)


def typestats(objects=None, shortnames=True, filter=None, *, all_objects=False):
    """Count the number of instances for each type tracked by the GC: a dict from type name to
    count.  With ``shortnames`` classes of one name in different modules are lumped together.
    ``filter(obj)`` returning False leaves an object out."""
    if objects is None and filter is None:
        stats = {}
        for name, n, _ in _libleak.census_rows(_census(all_objects), _SHORT if shortnames else _LONG):
            stats[name] = stats.get(name, 0) + n
        return stats
    if objects is None:
        objects = gc.get_objects() if not all_objects else _every_object()
    typename = _short_typename if shortnames else _long_typename
    stats = {}
    for o in objects:
        if filter and not filter(o):
            continue
        n = typename(o)
        stats[n] = stats.get(n, 0) + 1
    return stats


def _every_object():
    handle = _census(True, keep=True)
    return _libleak.census_new_objects(handle, None, _SHORT, None, 0)


def most_common_types(limit=10, objects=None, shortnames=True, filter=None, *, all_objects=False):
    """Count the names of types with the most instances: a list of (type_name, count), the most
    frequent first, at most ``limit`` (None: all)."""
    stats = sorted(
        typestats(objects, shortnames=shortnames, filter=filter, all_objects=all_objects).items(),
        key=operator.itemgetter(1),
        reverse=True,
    )
    if limit:
        stats = stats[:limit]
    return stats


def show_most_common_types(limit=10, objects=None, shortnames=True, file=None, filter=None, *, all_objects=False):
    """Print the table of types of most common instances (to ``file``, default sys.stdout)."""
    if file is None:
        file = sys.stdout
    stats = most_common_types(limit, objects, shortnames=shortnames, filter=filter, all_objects=all_objects)
    width = max(len(name) for name, count in stats)
    for name, count in stats:
        file.write("%-*s %i\n" % (width, name, count))


def growth(limit=10, peak_stats={}, shortnames=True, filter=None, *, collect=False, all_objects=False):
    """Count the increase in peak object counts since the last call: a list of (type_name,
    total_count, increase_delta), the largest increase first, at most ``limit`` (None: all).
    ``peak_stats`` (shared between calls by default, as in objgraph) is read and updated.
    ``collect=True`` runs gc.collect() first, as objgraph always does."""
    _maybe_collect(collect)
    stats = typestats(shortnames=shortnames, filter=filter, all_objects=all_objects)
    deltas = {}
    for name, n in stats.items():
        old_count = peak_stats.get(name, 0)
        if n > old_count:
            deltas[name] = n - old_count
            peak_stats[name] = n
    deltas = sorted(deltas.items(), key=operator.itemgetter(1), reverse=True)
    if limit:
        deltas = deltas[:limit]
    return [(name, stats[name], delta) for name, delta in deltas]


def show_growth(limit=10, peak_stats=None, shortnames=True, file=None, filter=None, *, collect=False,
                all_objects=False):
    """Print the increase in peak object counts since the last call (see ``growth``)."""
    if peak_stats is None:
        result = growth(limit, shortnames=shortnames, filter=filter, collect=collect, all_objects=all_objects)
    else:
        result = growth(limit, peak_stats, shortnames, filter, collect=collect, all_objects=all_objects)
    if result:
        if file is None:
            file = sys.stdout
        width = max(len(name) for name, _, _ in result)
        for name, n, delta in result:
            file.write("%-*s%9d %+9d\n" % (width, name, n, delta))


def get_new_ids(skip_update=False, limit=10, sortby="deltas", shortnames=None, file=None, _state={}, *,
                collect=False, all_objects=False):
    """Find and display new objects allocated since the last call: prints a table of old, current
    and new ids per type and returns a dict from type name to the set of ids of new objects (for
    ``at_addrs``).  ``skip_update`` returns the previous result; ``limit`` caps the printed rows (0:
    print nothing, None: all); ``sortby`` is 'old', 'current', 'new' or 'deltas'; ``shortnames``
    None keeps the previous call's choice (True at first)."""
    import collections

    if not _state:
        _state["old"] = collections.defaultdict(set)
        _state["current"] = collections.defaultdict(set)
        _state["new"] = collections.defaultdict(set)
        _state["shortnames"] = True
    new_ids = _state["new"]
    if skip_update:
        return new_ids
    old_ids = _state["old"]
    current_ids = _state["current"]
    if shortnames is None:
        shortnames = _state["shortnames"]
    else:
        _state["shortnames"] = shortnames
    _maybe_collect(collect)
    ids_by_name = _libleak.census_ids(_census(all_objects, keep=True), _SHORT if shortnames else _LONG)
    for class_name in old_ids:
        old_ids[class_name].clear()
    for class_name, ids_set in current_ids.items():
        old_ids[class_name].update(ids_set)
    for class_name in current_ids:
        current_ids[class_name].clear()
    for class_name, ids in ids_by_name.items():
        current_ids[class_name].update(ids)
    for class_name in new_ids:
        new_ids[class_name].clear()
    rows = []
    keys_to_remove = []
    for class_name in current_ids:
        num_old = len(old_ids[class_name])
        num_current = len(current_ids[class_name])
        if num_old == 0 and num_current == 0:
            keys_to_remove.append(class_name)
            continue
        new_ids_set = current_ids[class_name] - old_ids[class_name]
        new_ids[class_name].update(new_ids_set)
        rows.append((class_name, num_old, num_current, len(new_ids_set), num_current - num_old))
    for key in keys_to_remove:
        del old_ids[key]
        del current_ids[key]
        del new_ids[key]
    index_by_sortby = {"old": 1, "current": 2, "new": 3, "deltas": 4}
    rows.sort(key=operator.itemgetter(index_by_sortby[sortby], 0), reverse=True)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        return new_ids
    if file is None:
        file = sys.stdout
    width = max(len(row[0]) for row in rows)
    print("=" * (width + 13 * 4), file=file)
    print("%-*s%13s%13s%13s%13s" % (width, "Type", "Old_ids", "Current_ids", "New_ids", "Count_Deltas"), file=file)
    print("=" * (width + 13 * 4), file=file)
    for row_class, old, current, new, delta in rows:
        print("%-*s%13d%13d%+13d%+13d" % (width, row_class, old, current, new, delta), file=file)
    print("=" * (width + 13 * 4), file=file)
    return new_ids


def get_leaking_objects(objects=None, *, collect=False):
    """Return the objects that no object tracked by the gc refers to (among ``objects`` when given,
    else among all tracked objects).  These could be reference-counting bugs in C code, or
    legitimate (module dicts, objects only C code holds)."""
    _maybe_collect(collect)
    if objects is not None and not isinstance(objects, list):
        objects = list(objects)
    return _libleak.heap_unreferenced(objects)


def by_type(typename, objects=None, *, all_objects=False):
    """Return the objects tracked by the garbage collector with a given class name (short, or
    qualified with its module)."""
    kind = _name_kind(typename)
    if objects is not None:
        name_of = _long_typename if kind == _LONG else _short_typename
        return [o for o in objects if name_of(o) == typename]
    handle = _census(all_objects, keep=True)
    return _libleak.census_new_objects(handle, None, kind, typename, 0)


def at(addr, *, all_objects=False):
    """Return the object at a given memory address (the reverse of id(obj)), or None.  Like
    objgraph's, only objects the gc tracks are found, unless ``all_objects=True``."""
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise TypeError("addr must be an int, not %s" % type(addr).__name__)
    found = _libleak.heap_objects_at((addr,), not all_objects)
    return found[0] if found else None


def at_addrs(address_set, *, all_objects=False):
    """Return a list of the objects at the given memory addresses (in no set order)."""
    return _libleak.heap_objects_at(list(address_set), not all_objects)


def is_proper_module(obj):
    """Return True if ``obj`` is a module imported under its own name in sys.modules."""
    return inspect.ismodule(obj) and obj is sys.modules.get(getattr(obj, "__name__", None))
