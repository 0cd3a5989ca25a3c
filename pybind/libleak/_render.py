"""Pictures of reference graphs, drawn by Graphviz inside the process (no ``dot`` subprocess, no
temporary file).

A :class:`Picture` is a small graph: nodes that show a type name, a short repr, a shallow and a
retained size, styled by what they are (the object asked about, a root of some kind, a collapsed
fan-in), and labelled edges from referrer to referent.  ``why_alive``'s ``render``, objgraph's
``show_backrefs``/``show_refs`` and ``top_retainers`` build one and render it::

    >>> from libleak._render import Picture
    >>> p = Picture()
    >>> root = p.add_node("module app.cache", style="module")
    >>> cache = p.add_node("dict", "{'k42': <Session>, ...}", shallow=4696)
    >>> blob = p.add_node("bytes", "b'\\x00\\x00...'", shallow=5 << 20, retained=5 << 20, style="target")
    >>> p.add_edge(root, cache, "CACHE")
    >>> p.add_edge(cache, blob, "['k42']")
    >>> p.render("leak.png")            # the suffix picks the format: .dot/.gv, .svg, .png, .pdf
    >>> svg = p.to_svg()                 # or bytes in memory (Jupyter shows a Picture inline)

The same picture always gives the same bytes.
"""

from . import _libleak

#: Node styles, as render_picture takes them.  The root kinds match Retention's ``root_kind``.
STYLES = (
    "plain",
    "target",
    "highlighted",
    "module",
    "class",
    "frame",
    "thread",
    "sys",
    "builtins",
    "external",
    "garbage",
    "collapsed",
)

#: Output formats, as render_picture takes them.
FORMATS = ("dot", "svg", "png", "pdf")


def format_size(nbytes):
    """A byte count for people, as the pictures show it: ``'512 B'``, ``'1.5 KiB'``, ``'5.0 MiB'``
    (units of 1024).

    >>> format_size(5 * 1024 * 1024)
    '5.0 MiB'
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise TypeError("format_size() needs an int, not %s" % type(nbytes).__name__)
    if nbytes < 0:
        raise ValueError("format_size() needs a size >= 0, not %d" % nbytes)
    return _libleak.format_size(nbytes)


def _check_size(value, what):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int or None, not %s" % (what, type(value).__name__))
    if value < 0:
        raise ValueError("%s must be >= 0, not %d" % (what, value))
    return value


class Picture(object):
    """A picture under construction: add nodes and edges, then render it.

    Node numbers are 0, 1, 2, ... in the order of :meth:`add_node`.  ``caption`` is a line drawn
    under the picture.
    """

    __slots__ = ("_nodes", "_edges", "caption")

    def __init__(self, caption=None):
        self._nodes = []
        self._edges = []
        self.caption = caption

    def __len__(self):
        return len(self._nodes)

    def add_node(self, title, repr=None, shallow=None, retained=None, style="plain"):
        """Adds a node and returns its number.

        ``title`` is the type name (for a root, its name: ``'module app.cache'``); ``repr`` a short
        repr or None; ``shallow`` and ``retained`` sizes in bytes or None (unknown); ``style`` one of
        :data:`STYLES`.
        """
        if not isinstance(title, str):
            raise TypeError("title must be a str, not %s" % type(title).__name__)
        if repr is not None and not isinstance(repr, str):
            raise TypeError("repr must be a str or None, not %s" % type(repr).__name__)
        if style not in STYLES:
            raise ValueError("unknown style %r (expected one of %s)" % (style, ", ".join(STYLES)))
        self._nodes.append(
            (title, repr, _check_size(shallow, "shallow"), _check_size(retained, "retained"), style)
        )
        return len(self._nodes) - 1

    def add_edge(self, referrer, referent, label=None):
        """Adds an edge from node ``referrer`` to node ``referent`` (numbers from :meth:`add_node`),
        labelled with ``label`` (an attribute name, ``"['key']"``, ``'[3]'``, ... or None)."""
        for number in (referrer, referent):
            if isinstance(number, bool) or not isinstance(number, int):
                raise TypeError("node numbers are ints, not %s" % type(number).__name__)
            if not 0 <= number < len(self._nodes):
                raise ValueError("no node %d (the picture has %d)" % (number, len(self._nodes)))
        if label is not None and not isinstance(label, str):
            raise TypeError("label must be a str or None, not %s" % type(label).__name__)
        self._edges.append((referrer, referent, label))

    def add_collapsed(self, count, what="referrers"):
        """Adds one node standing for ``count`` nodes left out (``'+990 more referrers'``) and returns
        its number; connect it like any node."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("count must be an int >= 1, not %r" % (count,))
        return self.add_node("+%d more %s" % (count, what), style="collapsed")

    def render(self, path=None, format=None):
        """Writes the picture to ``path`` (format from its suffix unless ``format`` is given) and
        returns None, or returns its bytes when ``path`` is None (``format`` is then required).

        Raises ValueError for an unknown suffix or format and OSError when the file cannot be
        written; nothing is written or left behind then.
        """
        return _libleak.render_picture(self._nodes, self._edges, path, format, self.caption)

    def to_dot(self):
        """The picture as DOT text (not laid out), as objgraph's ``output=`` file receives it."""
        return self.render(None, "dot").decode("utf-8")

    def write_dot(self, file):
        """Writes the DOT text to a text file object (objgraph's ``output=``)."""
        file.write(self.to_dot())

    def to_svg(self):
        """The picture as SVG text."""
        return self.render(None, "svg").decode("utf-8")

    def _repr_svg_(self):
        """Jupyter shows a Picture inline through this."""
        return self.to_svg()
