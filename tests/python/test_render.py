"""libleak._render: pictures drawn by Graphviz in process (SVG that parses as XML, PNG and PDF by
their signatures, DOT text), the same bytes for the same picture, bad input refused with nothing
written; and the dominator computation seen from Python."""

import io
import os
import re
import xml.etree.ElementTree as ElementTree

import pytest

from libleak import _libleak
from libleak._render import FORMATS, STYLES, Picture, format_size

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sample():
    """The chain module app.cache -> dict['k42'] -> Session.data -> bytes (5.0 MiB), with a fan-in."""
    p = Picture(caption="Why is bytes alive?")
    root = p.add_node("module app.cache", style="module")
    cache = p.add_node("dict", "{'k42': <Session>}", shallow=4696, retained=5 * 2 ** 20 + 5000)
    session = p.add_node("app.Session", "<Session 42>", shallow=56, retained=5 * 2 ** 20 + 400)
    data = p.add_node("dict", None, shallow=232, retained=5 * 2 ** 20 + 300)
    blob = p.add_node("bytes", "b'\\x00\\x00...'", shallow=5 * 2 ** 20, retained=5 * 2 ** 20, style="target")
    p.add_edge(root, cache, "CACHE")
    p.add_edge(cache, session, "['k42']")
    p.add_edge(session, data, "__dict__")
    p.add_edge(data, blob, "data")
    more = p.add_collapsed(990)
    p.add_edge(more, session, "_peer")
    thread = p.add_node("thread worker-1", "handle() at worker.py:88", style="frame")
    p.add_edge(thread, session, "session")
    return p


def test_svg_parses_as_xml_and_shows_the_chain():
    svg = sample().to_svg()
    tree = ElementTree.fromstring(svg)
    assert tree.tag.endswith("svg")
    texts = [element.text for element in tree.iter() if element.tag.endswith("text")]
    for expected in ("module app.cache", "bytes", "CACHE", "['k42']", "data", "+990 more referrers",
                     "root: module", "the object asked about"):
        assert expected in texts, expected
    assert any("5.0 MiB" in (t or "") for t in texts)


def test_png_and_pdf_signatures():
    p = sample()
    png = p.render(None, "png")
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000
    pdf = p.render(None, "pdf")
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-64:]


def test_dot_text_structure():
    dot = sample().to_dot()
    assert dot.startswith("digraph ")
    assert dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    edges = re.findall(r"^\s*(n\d+) -> (n\d+)", dot, re.M)
    assert edges == [("n0", "n1"), ("n1", "n2"), ("n2", "n3"), ("n3", "n4"), ("n5", "n2"), ("n6", "n2")]
    assert len(re.findall(r"^\s*n\d+\s*\[", dot, re.M)) == 7
    assert "0x" not in dot  # no pointer values
    out = io.StringIO()
    sample().write_dot(out)
    assert out.getvalue() == dot


def test_same_picture_same_bytes():
    for fmt in FORMATS:
        assert sample().render(None, fmt) == sample().render(None, fmt), fmt


def test_repr_svg_for_jupyter():
    assert sample()._repr_svg_() == sample().to_svg()


@pytest.mark.parametrize("suffix,signature", [(".svg", b"<?xml"), (".png", PNG_SIGNATURE), (".PDF", b"%PDF"),
                                              (".dot", b"digraph"), (".gv", b"digraph")])
def test_file_format_from_suffix(tmp_path, suffix, signature):
    path = tmp_path / ("graph" + suffix)
    assert sample().render(path) is None
    assert path.read_bytes().startswith(signature)
    assert sample().render(str(path)) is None  # str paths too, and overwriting


def test_explicit_format_overrides_suffix(tmp_path):
    path = tmp_path / "graph.txt"
    sample().render(path, "svg")
    ElementTree.parse(str(path))


def test_unknown_suffix_or_format_raises_value_error_and_writes_nothing(tmp_path):
    for name in ("graph.jpg", "graph", "graph."):
        with pytest.raises(ValueError, match="suffix"):
            sample().render(tmp_path / name)
    with pytest.raises(ValueError, match="format"):
        sample().render(tmp_path / "graph.png", "jpeg")
    with pytest.raises(ValueError, match="format"):
        sample().render(None, None)
    assert os.listdir(str(tmp_path)) == []


def test_unwritable_path_raises_oserror_and_leaves_nothing(tmp_path):
    with pytest.raises(OSError) as missing:
        sample().render(tmp_path / "missing" / "graph.png")
    assert str(missing.value.filename) == str(tmp_path / "missing" / "graph.png")
    (tmp_path / "taken.svg").mkdir()
    with pytest.raises(OSError):
        sample().render(tmp_path / "taken.svg")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        sample().render(tmp_path / "file" / "graph.pdf")
    assert sorted(os.listdir(str(tmp_path))) == ["file", "taken.svg"]
    assert os.listdir(str(tmp_path / "taken.svg")) == []


def test_bad_nodes_and_edges():
    p = Picture()
    with pytest.raises(ValueError, match="style"):
        p.add_node("x", style="root")
    with pytest.raises(TypeError):
        p.add_node(3)
    with pytest.raises(ValueError):
        p.add_node("x", shallow=-1)
    with pytest.raises(TypeError):
        p.add_node("x", retained="big")
    a = p.add_node("x")
    with pytest.raises(ValueError, match="no node"):
        p.add_edge(a, 1)
    with pytest.raises(TypeError):
        p.add_edge(a, a, 5)
    with pytest.raises(ValueError):
        p.add_collapsed(0)
    # the raw entry point checks the tuples itself
    with pytest.raises(TypeError, match="tuple"):
        _libleak.render_picture([("x", None, None, None)], [], None, "svg")
    with pytest.raises(ValueError, match="style"):
        _libleak.render_picture([("x", None, None, None, "root")], [], None, "svg")
    with pytest.raises(ValueError, match="does not exist"):
        _libleak.render_picture([("x", None, None, None, "plain")], [(0, 1, None)], None, "svg")
    with pytest.raises(ValueError):
        _libleak.render_picture([("x", None, -5, None, "plain")], [], None, "svg")
    with pytest.raises(TypeError):
        _libleak.render_picture(5, [], None, "svg")


def test_every_style_renders():
    p = Picture()
    previous = None
    for style in STYLES:
        node = p.add_node(style, "repr of " + style, 10, 20, style)
        if previous is not None:
            p.add_edge(previous, node, style)
        previous = node
    ElementTree.fromstring(p.to_svg())


def test_format_size_matches_the_pictures():
    assert format_size(0) == "0 B"
    assert format_size(1023) == "1023 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(5 * 2 ** 20) == "5.0 MiB"
    assert format_size(2 ** 20 - 1) == "1.0 MiB"
    with pytest.raises(ValueError):
        format_size(-1)
    with pytest.raises(TypeError):
        format_size(1.5)
    p = Picture()
    p.add_node("bytes", None, 123456789, None)
    assert "own " + format_size(123456789) in p.to_dot()


def test_unicode_text_survives():
    p = Picture()
    p.add_node("Caf\u00e9", "'\u65e5\u672c' \U0001F600", 1, None)
    svg = p.to_svg()
    assert "Caf\u00e9" in svg and "\u65e5\u672c" in svg
    # a lone surrogate (a file name decoded with surrogateescape) is shown as its escape
    p = Picture()
    p.add_node("str", "'/tmp/caf\udce9.py'")
    p.add_edge(0, 0, "k\udcff")
    dot = p.to_dot()
    assert "caf\\udce9.py" in dot and "k\\udcff" in dot


def brute_force_idom(n, root, succ):
    """Immediate dominators by the definition: d dominates v when v is unreachable without d."""

    def reach(skip):
        seen, stack = set(), [] if root == skip else [root]
        seen.update(stack)
        while stack:
            for t in succ[stack.pop()]:
                if t != skip and t not in seen:
                    seen.add(t)
                    stack.append(t)
        return seen

    reachable = reach(None)
    dominated = {d: reachable - reach(d) for d in range(n)}
    idom = []
    for v in range(n):
        if v not in reachable:
            idom.append(None)
        elif v == root:
            idom.append(root)
        else:
            strict = [d for d in range(n) if d != v and v in dominated[d]]
            idom.append(max(strict, key=lambda d: sum(d in dominated[x] for x in range(n))))
    return idom


def test_dominators_from_python_match_brute_force():
    import random

    rng = random.Random(8)
    for _ in range(60):
        n = rng.randint(1, 25)
        succ = [[rng.randrange(n) for _ in range(rng.randint(0, 3))] for _ in range(n)]
        first, targets = [0], []
        for v in range(n):
            targets.extend(succ[v])
            first.append(len(targets))
        root = rng.randrange(n)
        sizes = [rng.randint(0, 1000) for _ in range(n)]
        idom, retained, top = _libleak.dominators(n, root, first, targets, sizes, top=3)
        assert idom == brute_force_idom(n, root, succ)
        for v in range(n):
            if idom[v] is None:
                assert retained[v] == 0
                continue
            below = [x for x in range(n) if idom[x] is not None and _dominates(idom, root, v, x)]
            assert retained[v] == sum(sizes[x] for x in below)
        ranked = sorted((v for v in range(n) if v != root and idom[v] is not None), key=lambda v: (-retained[v], v))
        assert top == ranked[:3]


def _dominates(idom, root, d, v):
    while True:
        if v == d:
            return True
        if v == root:
            return False
        v = idom[v]


def test_dominators_bad_input():
    with pytest.raises(ValueError):
        _libleak.dominators(2, 2, [0, 0, 0], [])
    with pytest.raises(ValueError):
        _libleak.dominators(2, 0, [0, 1], [1])  # first_edge too short
    with pytest.raises(ValueError):
        _libleak.dominators(2, 0, [0, 1, 1], [5])  # target out of range
    with pytest.raises(ValueError):
        _libleak.dominators(2, 0, [0, 2, 1], [1, 1])  # decreasing
    with pytest.raises(TypeError):
        _libleak.dominators(2, 0, [0, 1, 1], ["a"])
    assert _libleak.dominators(2, 0, [0, 1, 1], [1]) == ([0, 0], [2, 1], [])


def test_threads_render_at_once():
    import threading

    expected = sample().render(None, "svg")
    results = []

    def work():
        for _ in range(3):
            results.append(sample().render(None, "svg"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 12


def test_missing_graphviz_plugins_say_so(tmp_path, python):
    # GVBINDIR tells gvc where its plugins are: an empty folder is a machine without them
    result = python(
        """
        import libleak
        from libleak._render import Picture
        p = Picture()
        p.add_node("x")
        assert p.to_dot().startswith("digraph")   # DOT needs no plugin
        try:
            p.render(None, "png")
        except libleak.Error as e:
            print("error:", e)
        """,
        env={"GVBINDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "plugins are missing" in result.stdout
    assert result.stderr == ""  # Graphviz's own messages are kept off the host's stderr
