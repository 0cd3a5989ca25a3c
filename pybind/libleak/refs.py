"""libleak.refs: why is this object still alive?

``why_alive(obj)`` walks the heap once in C, builds a reverse index of every reference, and returns
the shortest paths of references from roots down to ``obj``, each edge labelled the way you would
write it: ``module app.cache: CACHE -> dict['k42'] -> Session.data -> bytes (5.0 MB)``.  Roots are
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

from libleak import _libleak

__all__ = ["why_alive", "Retention", "RetentionPath"]

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
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    return "%d B" % size if unit == "B" else "%.1f %s" % (value, unit)


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

    ``root_kind``: 'module', 'class', 'sys', 'builtins', 'frame', 'external' or 'garbage';
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
