"""libleak.refs: why is this object still alive?

``why_alive(obj)`` walks the heap once in C, builds a reverse index of every reference, and returns
the shortest paths of references from roots down to ``obj``, each edge labelled the way you would
write it: ``module app.cache: CACHE -> dict['k42'] -> Session.data -> bytes (5.0 MiB)``.  Roots are
classified: a module or class attribute (preferred: it is the one you can act on), ``sys`` or the
builtins, a local of a running frame (with its thread, function and line), or ``external``: an
object held by references that no Python object accounts for (a C extension, a C global, the C
stack; found with the gc's own trick of subtracting the references the heap holds from the
reference count).  An object that only unreachable cycles hold is ``garbage``: the collector will
free it.

Example::

    import libleak.refs
    retention = libleak.refs.why_alive(session)
    print(retention)
    for path in retention.paths:
        print(path.root_kind, path.root_name, [label for _, label in path.edges])
"""

import os
import sys

from libleak import _libleak, _render

__all__ = ["why_alive", "retained_size", "top_retainers", "render", "Retention", "RetentionPath", "Retainer"]

_LIBLEAK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

# References to the object that a call why_alive(obj) itself holds where no walk sees them (the
# arguments on the interpreter's value stacks: why_alive's own when it calls the C core, and before
# 3.11 the caller's too).  Measured once, on an object only the measuring frame holds.
_call_held = None


class _Probe:
    pass


def _measure_call_held():
    probe = _Probe()
    retention = why_alive(probe, _held=0)
    return sum(path.unaccounted for path in retention.paths if path.root_kind == "external")


def _format_size(size):
    # One unit convention everywhere (text, pictures, reports): 1024-based KiB and MiB.
    return _render.format_size(size)


def _type_name(obj):
    cls = type(obj)
    return getattr(cls, "__qualname__", cls.__name__)


def _node_name(obj):
    """How a path names an object on it: its class, or for a function or a frame, which one."""
    import types

    if isinstance(obj, types.FunctionType):
        return "function %s" % getattr(obj, "__qualname__", obj.__name__)
    if isinstance(obj, types.FrameType):
        return "frame of %s" % obj.f_code.co_name
    return _type_name(obj)


def _attributes(chain):
    """Folds instance.__dict__ -> dict['name'] into instance.name, as 3.11+ instances without a
    __dict__ object read, so paths read the same on every version."""
    out = []
    i = 0
    while i < len(chain):
        obj, label = chain[i]
        if label == ".__dict__" and i + 1 < len(chain) and not isinstance(obj, type):
            key = chain[i + 1][1]
            if key.startswith("['") and key.endswith("']") and key[2:-2].isidentifier():
                out.append((obj, "." + key[2:-2]))
                i += 2
                continue
        out.append((obj, label))
        i += 1
    return out


def _closure_names(chain):
    """Rewrites function.__closure__ -> tuple[i] -> cell.cell_contents into one step naming the
    captured variable: function hook closure 'payload'."""
    out = []
    i = 0
    while i < len(chain):
        obj, label = chain[i]
        if (label == ".__closure__" and i + 2 < len(chain) and chain[i + 1][1].startswith("[")
                and chain[i + 2][1] == ".cell_contents" and hasattr(obj, "__code__")):
            index = int(chain[i + 1][1][1:-1])
            names = obj.__code__.co_freevars
            name = names[index] if index < len(names) else "?"
            out.append((obj, " closure variable %s" % name))
            i += 3
            continue
        out.append((obj, label))
        i += 1
    return out


def _thread_name(thread_id):
    threading = sys.modules.get("threading")
    thread = getattr(threading, "_active", {}).get(thread_id) if threading else None
    return thread.name if thread is not None else "thread %d" % thread_id


def _key_of(label):
    """The attribute name in a dict label "['CACHE']" (a module's or class's __dict__)."""
    if label.startswith("['") and label.endswith("']"):
        return label[2:-2]
    return label.strip(" .[]") or "?"


class RetentionPath:
    """One chain of references from a root down to the object.

    ``root_kind``: 'module', 'class', 'sys', 'builtins', 'frame', 'thread', 'external' or 'garbage';
    ``root_name``: the module, the class ('module.Qualname'), the frame ('func (file:line) in thread
    NAME'), or for external roots how many references are unaccounted for; ``edges``: (referrer,
    label) pairs from the root down, each referrer holding the next object (the last holds the
    target) under that label; ``target`` and ``size`` (sys.getsizeof of the target).
    """

    __slots__ = ("root_kind", "root_name", "root_label", "edges", "target", "size", "sizes", "unaccounted")

    def __init__(self, kind, holder, frame, unaccounted, chain, sizes):
        chain = _attributes(chain)
        self.root_kind = kind
        self.unaccounted = unaccounted
        self.target = chain[-1][0]
        self.size = sizes[-1]
        self.sizes = sizes
        self.root_label = ""
        if kind == "module":
            self.root_name = holder.__name__
        elif kind == "class":
            module = getattr(holder, "__module__", None)
            qualname = getattr(holder, "__qualname__", holder.__name__)
            self.root_name = "%s.%s" % (module, qualname) if module and module != "builtins" else qualname
        elif kind in ("sys", "builtins"):
            self.root_name = kind
        elif kind == "frame":
            code, lineno, thread_id, local = frame
            where = "%s (%s:%d)" % (getattr(code, "co_name", "?"), getattr(code, "co_filename", "?"), lineno)
            self.root_name = "%s in thread %s" % (where, _thread_name(thread_id))
            if local is not None:
                self.root_label = local
        elif kind == "thread":
            _, _, thread_id, what = frame
            self.root_name = "%s (%s)" % (_thread_name(thread_id), what)
        elif kind == "external":
            self.root_name = "%d reference%s not held by Python objects" % (unaccounted, "" if unaccounted == 1 else "s")
        else:
            self.root_name = "(an unreachable cycle: the collector will free it)"
        self.edges = [(obj, label) for obj, label in chain[:-1]]

    def __str__(self):
        parts = []
        chain = list(self.edges) + [(self.target, "")]
        head = "%s %s" % (self.root_kind, self.root_name) if self.root_kind not in ("sys", "builtins") else self.root_kind
        if self.root_kind in ("module", "class", "sys", "builtins") and self.edges:
            head += ": " + _key_of(chain[0][1])
            chain = chain[1:]
        elif self.root_kind == "frame":
            if self.root_label:
                head += ": " + self.root_label
            elif self.edges and chain[0][1].startswith(" local "):
                head += ": " + chain[0][1][len(" local "):]
                chain = chain[1:]
        else:
            head += ":"
        for obj, label in _closure_names(chain[:-1]):
            parts.append("%s%s" % (_node_name(obj), label))
        parts.append("%s (%s)" % (_type_name(self.target), _format_size(self.size)))
        return head + (" " if head.endswith(":") else " -> ") + " -> ".join(parts)

    def __repr__(self):
        return "<RetentionPath %s>" % self

    def _repr_svg_(self):
        return render(self).to_svg()

    @property
    def labels(self):
        """The edge labels, from the root down."""
        return [label for _, label in self.edges]


class Retention:
    """Why an object is alive: ``paths`` (``RetentionPath``), the most useful first; ``str()``
    prints one line a path.  Empty when the object is not on the heap the walker sees (a static
    object of C code)."""

    __slots__ = ("target", "paths")

    def __init__(self, target, paths):
        self.target = target
        self.paths = paths

    def __bool__(self):
        return bool(self.paths)

    def __str__(self):
        if not self.paths:
            return "%s: nothing but the caller's own references holds it" % _type_name(self.target)
        return "\n".join(str(path) for path in self.paths)

    def __repr__(self):
        return "<Retention of %s: %d paths>" % (_type_name(self.target), len(self.paths))

    def _repr_svg_(self):
        """Jupyter shows the paths as a picture."""
        return render(self).to_svg()


def why_alive(obj, max_paths=3, *, _held=None):
    """The shortest distinct paths of references from roots down to ``obj`` (a ``Retention``):
    at most ``max_paths``, paths from module and class attributes first, then running frames'
    locals, then objects C code holds.  Your own frame (the caller's) and libleak's internals are
    never roots."""
    if isinstance(max_paths, bool) or not isinstance(max_paths, int):
        raise TypeError("max_paths must be an int, not %s" % type(max_paths).__name__)
    if max_paths < 1:
        raise ValueError("max_paths must be at least 1, not %d" % max_paths)
    global _call_held
    if _held is None:
        if _call_held is None:
            _call_held = _measure_call_held()
        _held = _call_held
    caller = sys._getframe(1)
    try:
        raw = _libleak.refs_why_alive(obj, max_paths, caller, _LIBLEAK_DIR, _held)
    finally:
        del caller
    return Retention(obj, [RetentionPath(*path) for path in raw])


def _show_progress():
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def retained_size(obj):
    """The bytes that would be freed with ``obj``: its own size plus that of every object only it
    keeps alive (its subtree in the dominator tree of the whole heap, rooted above every root).
    Shows progress on stderr when it is a terminal."""
    return _libleak.refs_retained_size(obj, _show_progress())[1]


class Retainer:
    """A row of ``top_retainers``: the object, its type's name, its own size, the bytes it keeps
    alive (``retained_size``), and its first retention path (a ``RetentionPath``, or None)."""

    __slots__ = ("object", "type_name", "size", "retained_size", "path")

    def __init__(self, obj, size, retained, path):
        self.object = obj
        self.type_name = _type_name(obj)
        self.size = size
        self.retained_size = retained
        self.path = path

    def __repr__(self):
        return "<Retainer %s %s retains %s>" % (self.type_name, _format_size(self.size), _format_size(self.retained_size))

    def __str__(self):
        where = str(self.path) if self.path is not None else "(no path)"
        return "%10s  %s: %s" % (_format_size(self.retained_size), self.type_name, where)


def top_retainers(n=20):
    """The ``n`` objects that keep the most memory alive, largest first, from the dominator tree of
    the whole heap: each a ``Retainer`` (object, type, own size, retained size, retention path).
    Modules, classes, functions, frames and their dicts, which keep whole programs alive, are left
    out: what remains is data.  Shows progress on stderr when it is a terminal."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError("n must be an int, not %s" % type(n).__name__)
    if n < 0:
        raise ValueError("n must be at least 0, not %d" % n)
    caller = sys._getframe(1)
    try:
        rows = _libleak.refs_top_retainers(n, _show_progress(), caller, _LIBLEAK_DIR)
    finally:
        del caller
    return [Retainer(obj, size, retained, RetentionPath(*path) if path is not None else None)
            for obj, size, retained, path in rows]


def _short_repr(obj):
    """A short repr for a picture's node, never raising: 40 characters at most."""
    try:
        text = repr(obj)
    except Exception:
        text = "<%s>" % _type_name(obj)
    return text if len(text) <= 40 else text[:37] + "..."


def render(what, filename=None):
    """Draws a ``Retention`` (all its paths, sharing their common objects) or one ``RetentionPath``
    with Graphviz, in process: roots styled by kind at the top, labelled edges down to the object
    asked about.  Writes ``filename`` when given (the suffix picks the format: .dot, .svg, .png,
    .pdf) and returns the picture (``to_svg()``, ``to_dot()``, ``render(path)``)."""
    from libleak._render import Picture

    if isinstance(what, RetentionPath):
        paths = [what]
    elif isinstance(what, Retention):
        paths = what.paths
    else:
        raise TypeError("render() draws a Retention or a RetentionPath, not %s" % type(what).__name__)
    target = paths[0].target if paths else getattr(what, "target", None)
    picture = Picture(caption="why is this %s alive?" % _type_name(target))
    nodes = {}

    def node_of(obj, style="plain", size=None):
        key = id(obj)
        if key not in nodes:
            nodes[key] = picture.add_node(_node_name(obj), _short_repr(obj), shallow=size, style=style)
        return nodes[key]

    if not paths:
        node_of(target, "target", sys.getsizeof(target))
    for path in paths:
        head = "%s %s" % (path.root_kind, path.root_name) if path.root_kind not in ("sys", "builtins") else path.root_kind
        root = picture.add_node(head, None, style=path.root_kind if path.root_kind != "frame" else "frame")
        chain = _closure_names(list(path.edges) + [(path.target, "")])
        previous, label = root, ""
        if path.root_kind in ("module", "class", "sys", "builtins") and len(chain) > 1:
            label = _key_of(chain[0][1])
            chain = chain[1:]
        elif path.root_kind == "frame" and path.root_label:
            label = path.root_label
        for i, (obj, next_label) in enumerate(chain):
            style = "target" if obj is path.target else "plain"
            size = path.size if obj is path.target else None
            current = node_of(obj, style, size)
            picture.add_edge(previous, current, label or None)
            previous, label = current, next_label
    if filename is not None:
        picture.render(filename)
    return picture
