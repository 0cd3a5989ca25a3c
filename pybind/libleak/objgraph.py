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
import re
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
    # The chain and graph half (below).
    "find_ref_chain",
    "find_backref_chain",
    "show_backrefs",
    "show_refs",
    "show_chain",
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



# ---- The chain and graph half: reference chains and pictures ------------------------------------
#
# The searches run in C (libleak/refs/chains.c): backward steps read one reverse reference index of
# the whole heap, where objgraph scans the whole heap with gc.get_referrers for every object it
# visits; forward steps use tp_traverse, as gc.get_referents.  Pictures are drawn by Graphviz
# inside the process (libleak._render), not by a ``dot`` subprocess.


def _check_depth(max_depth):
    if isinstance(max_depth, bool) or not isinstance(max_depth, int):
        raise TypeError("max_depth must be an int, not %s" % type(max_depth).__name__)
    if max_depth < 0:
        raise ValueError("max_depth must be >= 0, not %d" % max_depth)


def _check_callable(value, what):
    if value is not None and not callable(value):
        raise TypeError("%s must be callable or None, not %s" % (what, type(value).__name__))


def _ignore_ids(extra_ignore):
    try:
        ids = set(extra_ignore)
    except TypeError:
        raise TypeError("extra_ignore must be an iterable of object ids, not %s" % type(extra_ignore).__name__)
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError("extra_ignore must hold object ids (ints), not %s" % type(i).__name__)
    ids.add(id(extra_ignore))
    ids.add(id(ids))
    return ids


def _find_chain(obj, predicate, forward, max_depth, extra_ignore):
    _check_depth(max_depth)
    if not callable(predicate):
        raise TypeError("predicate must be callable, not %s" % type(predicate).__name__)
    ignore = _ignore_ids(extra_ignore)
    # The frames of this call hold obj (3.8 - 3.10 report them as its referrers), as objgraph's.
    ignore.add(id(sys._getframe()))
    ignore.add(id(sys._getframe(1)))
    chain, _ = _libleak.chains_find(obj, predicate, max_depth, ignore, forward)
    return chain if chain is not None else [obj]


def find_backref_chain(obj, predicate, max_depth=20, extra_ignore=()):
    """Find a shortest chain of references leading to ``obj``, from an object that matches
    ``predicate`` (a function of one object returning a truth value): a list that starts with the
    match and ends with ``obj``; ``[obj]`` when nothing within ``max_depth`` steps matches.
    ``extra_ignore`` holds ids of objects to leave out of the search.

        >>> find_backref_chain(obj, is_proper_module)
        [<module ...>, ..., obj]

    As objgraph's, objects are tried breadth first in the order they are met, and the predicate is
    called on ``obj`` first.  Unlike objgraph's, no ``gc.collect()`` runs first, and the referrers
    come from one index of the whole heap (libleak's reverse reference index), not from a heap
    scan per object visited; objects the gc does not track (a str, a tuple of ints) can be
    referrers too.  Objects the predicate drops stay alive until the search ends.  Raises
    ValueError for ``max_depth < 0`` and TypeError for a predicate that is not callable.
    """
    return _find_chain(obj, predicate, False, max_depth, extra_ignore)


def find_ref_chain(obj, predicate, max_depth=20, extra_ignore=()):
    """Find a shortest chain of references leading from ``obj`` to an object that matches
    ``predicate``: a list that starts with ``obj`` and ends with the match; ``[obj]`` when nothing
    within ``max_depth`` steps matches.  ``extra_ignore`` holds ids of objects to leave out.

        >>> find_ref_chain(obj, lambda x: isinstance(x, MyClass))
        [obj, ..., <MyClass object at ...>]

    The referents are gc.get_referents' (tp_traverse), found in C; no ``gc.collect()`` runs.
    Raises as :func:`find_backref_chain`.
    """
    return _find_chain(obj, predicate, True, max_depth, extra_ignore)[::-1]


def _is_interactive():
    try:
        return get_ipython() is not None  # noqa: F821 (IPython's builtin)
    except NameError:
        return False


def _short_repr(obj):
    """objgraph's short repr of a node (names for classes, modules and functions, item counts for
    containers, file:line for frames), at most 40 characters of repr otherwise."""
    import os
    import types

    def name_or_repr(value):
        name = getattr(value, "__name__", None)
        return name if isinstance(name, str) else repr(value)[:40]

    try:
        if isinstance(obj, (type, types.ModuleType, types.BuiltinFunctionType)):
            return name_or_repr(obj)
        if isinstance(obj, types.MethodType):
            return name_or_repr(obj.__func__) + (" (bound)" if obj.__self__ is not None else "")
        if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
            return "lambda: %s:%s" % (os.path.basename(obj.__code__.co_filename), obj.__code__.co_firstlineno)
        if isinstance(obj, types.FrameType):
            return "%s:%s" % (obj.f_code.co_filename, obj.f_lineno)
        if isinstance(obj, (tuple, list, dict, set)):
            return "%d items" % len(obj)
        # Addresses ("<function f at 0x7f...>") would make two drawings of one heap differ.
        return _ADDRESS.sub("", repr(obj))[:40]
    except Exception:
        return "(unrepresentable)"


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _suffix_format(filename):
    from libleak import _render

    if not isinstance(filename, str):
        raise TypeError("filename must be a str, not %s" % type(filename).__name__)
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename.rsplit("/", 1)[-1] else ""
    if suffix == "gv":
        suffix = "dot"
    if suffix not in _render.FORMATS:
        raise ValueError(
            "cannot tell the format of %r from its suffix: use .dot, .gv, .svg, .png or .pdf" % filename
        )
    return suffix


def _sort_key(pair):
    obj, label = pair
    return (type(obj).__module__ or "", type(obj).__qualname__, label, _short_repr(obj))


def _collect_graph(objs, forward, max_depth, ignore, filter, too_many, cull_func):
    """The breadth-first graph of objgraph's show_refs/show_backrefs: (nodes, depths, edges,
    collapsed) with nodes the objects in the order met, edges (referrer, referent, label) node
    numbers, collapsed (node, count) the references past too_many."""
    nodes, depths, edges, collapsed = [], [], [], []
    number = {}
    ignore.update((id(nodes), id(depths), id(edges), id(collapsed), id(number), id(sys._getframe())))
    for obj in objs:
        if id(obj) not in number:
            number[id(obj)] = len(nodes)
            nodes.append(obj)
            depths.append(0)
    del obj
    source = _libleak.chains_source()
    level = list(range(len(nodes)))
    ignore.add(id(level))
    while level:
        expand = [n for n in level if depths[n] < max_depth and not (cull_func and cull_func(nodes[n]))]
        ignore.add(id(expand))
        asked = [nodes[n] for n in expand]
        ignore.add(id(asked))
        found = _libleak.chains_neighbours(source, asked, forward, ignore)
        del asked
        ignore.add(id(found))
        ignore.update(id(x) for x in found)
        next_level = []
        ignore.add(id(next_level))
        for n, neighbours in zip(expand, found):
            here = nodes[n]
            labelled = []
            for other in neighbours:
                if filter and not filter(other):
                    continue
                referrer, referent = (here, other) if forward else (other, here)
                labelled.append((other, _libleak.chains_edge_label(referrer, referent)))
            if not forward:
                # The index lists referrers by address: sort them so one heap draws one picture.
                labelled.sort(key=_sort_key)
            for other, label in labelled[:too_many]:
                m = number.get(id(other))
                if m is None:
                    m = number[id(other)] = len(nodes)
                    nodes.append(other)
                    depths.append(depths[n] + 1)
                    next_level.append(m)
                edges.append((n, m, label or None) if forward else (m, n, label or None))
            if len(labelled) > too_many:
                collapsed.append((n, len(labelled) - too_many))
            del here, labelled, neighbours
        del found
        level = next_level
    del source  # drops the index's references before refcounts are read
    return nodes, depths, edges, collapsed


def _refcounts(nodes):
    """The reference counts of nodes, less the references this module holds: a fresh object read
    the same way gives the count of ours, whatever the interpreter's version adds."""
    nodes.append(object())
    counts = [sys.getrefcount(nodes[i]) for i in range(len(nodes))]
    nodes.pop()
    return [count - counts[-1] for count in counts[:-1]]


def _show_graph(objs, forward, max_depth, extra_ignore, filter, too_many, highlight, filename, extra_info,
                refcounts, shortnames, output, cull_func):
    from libleak import _render

    if not isinstance(objs, (list, tuple)):
        objs = [objs]
    _check_depth(max_depth)
    if isinstance(too_many, bool) or not isinstance(too_many, int) or too_many < 0:
        raise ValueError("too_many must be an int >= 0, not %r" % (too_many,))
    for value, what in ((filter, "filter"), (highlight, "highlight"), (extra_info, "extra_info")):
        _check_callable(value, what)
    if filename and output:
        raise ValueError("Cannot specify both output and filename.")
    fmt = _suffix_format(filename) if filename else None
    if output is not None and not callable(getattr(output, "write", None)):
        raise TypeError("output must be a file object with a write() method")
    ignore = _ignore_ids(extra_ignore)
    ignore.update((id(objs), id(sys._getframe()), id(sys._getframe(1))))
    nodes, depths, edges, collapsed = _collect_graph(objs, forward, max_depth, ignore, filter, too_many, cull_func)
    name_of = _short_typename if shortnames else _long_typename
    counts = _refcounts(nodes) if refcounts else None
    picture = _render.Picture()
    for n, obj in enumerate(nodes):
        title = name_of(obj)
        if refcounts:
            title += " [%d]" % counts[n]
        text = _short_repr(obj)
        if extra_info:
            # (A picture's repr is one line.)
            text += "; " + str(extra_info(obj))
        try:
            size = sys.getsizeof(obj)
        except Exception:
            size = None
        if depths[n] == 0:
            style = "target"
        elif highlight and highlight(obj):
            style = "highlighted"
        elif inspect.ismodule(obj):
            style = "module"
        elif isinstance(obj, type):
            style = "class"
        else:
            style = "plain"
        picture.add_node(title, text, size, None, style)
    del obj
    for referrer, referent, label in edges:
        picture.add_edge(referrer, referent, label)
    for n, count in collapsed:
        more = picture.add_collapsed(count, "references" if forward else "backreferences")
        picture.add_edge(n, more) if forward else picture.add_edge(more, n)
    count = len(nodes)
    del nodes
    if output is not None:
        picture.write_dot(output)
        return None
    if filename:
        picture.render(filename)
        print("Graph written to %s (%d nodes)" % (filename, count))
        if fmt != "dot":
            print("Image generated as %s" % filename)
        return None
    if _is_interactive():
        return picture
    import tempfile

    fd, dot_filename = tempfile.mkstemp(prefix="objgraph-", suffix=".dot", text=True)
    with open(fd, "w", encoding="utf-8") as f:
        picture.write_dot(f)
    print("Graph written to %s (%d nodes)" % (dot_filename, count))
    png = dot_filename[:-4] + ".png"
    picture.render(png)
    print("Image generated as %s" % png)
    return None


_GRAPH_DOC = """

    ``objs`` is an object or a list (or tuple) of objects.  ``max_depth`` and ``too_many`` limit the
    depth and the breadth of the graph: past ``too_many`` references of one object, the rest are
    drawn as one node.  ``filter`` (a predicate) and ``extra_ignore`` (object ids) leave objects
    out; ``highlight`` (a predicate) colours nodes; ``extra_info`` (a function returning a str)
    adds a line to each node; ``refcounts=True`` shows reference counts; ``shortnames=False``
    shows qualified type names.  Nodes show the type, objgraph's short repr and the size
    (sys.getsizeof); edges are labelled with how the referrer holds the referent (``.attr``,
    ``['key']``, ``[3]``, ...).  One heap draws one picture (no addresses in node names).

    ``output``, a text file object, receives the DOT text.  ``filename`` writes a picture whose
    suffix picks the format (``.dot`` or ``.gv``, ``.svg``, ``.png``, ``.pdf``), drawn by Graphviz
    inside the process: no ``dot`` program, no temporary file.  An unknown suffix raises ValueError
    and an unwritable path OSError, before anything is written.  With neither, as objgraph: under
    IPython the picture is returned (it displays inline), otherwise the DOT text goes to a
    temporary ``objgraph-*.dot`` file and a PNG is drawn beside it, and both names are printed;
    unlike objgraph, no viewer (xdot) is ever started.  No ``gc.collect()`` runs first.
    ``max_depth < 0`` raises ValueError, a ``filter``, ``highlight`` or ``extra_info`` that is not
    callable TypeError.
"""


def show_backrefs(objs, max_depth=3, extra_ignore=(), filter=None, too_many=10, highlight=None, filename=None,
                  extra_info=None, refcounts=False, shortnames=True, output=None):
    return _show_graph(objs, False, max_depth, extra_ignore, filter, too_many, highlight, filename, extra_info,
                       refcounts, shortnames, output, is_proper_module)


show_backrefs.__doc__ = (
    """Draw the objects that refer to ``objs``, directly and indirectly (a module in sys.modules
    ends a branch, as in objgraph: past it is everything).

        >>> x = [1]; y = [x]
        >>> show_backrefs([x], filename='sample-graph.png')""" + _GRAPH_DOC
)


def show_refs(objs, max_depth=3, extra_ignore=(), filter=None, too_many=10, highlight=None, filename=None,
              extra_info=None, refcounts=False, shortnames=True, output=None):
    return _show_graph(objs, True, max_depth, extra_ignore, filter, too_many, highlight, filename, extra_info,
                       refcounts, shortnames, output, None)


show_refs.__doc__ = (
    """Draw the objects that ``objs`` refer to, directly and indirectly.

        >>> show_refs([obj], max_depth=5, filename='refs.svg')""" + _GRAPH_DOC
)


def show_chain(*chains, **kw):
    """Draw one or more chains from :func:`find_backref_chain` or :func:`find_ref_chain`: the
    objects of the chains only.  ``backrefs=False`` follows the chains forward (from their first
    object) instead of backward (from their last).  Other keywords are :func:`show_backrefs`'s.

        >>> show_chain(find_backref_chain(obj, is_proper_module), filename='chain.png')
    """
    backrefs = kw.pop("backrefs", True)
    chains = [chain for chain in chains if chain]
    ids = set(id(x) for chain in chains for x in chain)

    def in_chains(x):
        return id(x) in ids

    max_depth = max(map(len, chains)) - 1
    if backrefs:
        return show_backrefs([chain[-1] for chain in chains], max_depth=max_depth, filter=in_chains, **kw)
    return show_refs([chain[0] for chain in chains], max_depth=max_depth, filter=in_chains, **kw)
