"""libleak.objgraph's chain and graph half: find_backref_chain, find_ref_chain, show_backrefs,
show_refs, show_chain, compared with objgraph itself when it is installed."""

import gc
import io
import os
import re
import sys
import types

import pytest

import libleak.objgraph as lobjgraph

try:
    import objgraph as real_objgraph
except ImportError:
    real_objgraph = None


class Node(object):
    pass


def _module_chain(name):
    """A module in sys.modules holding holder -> Node.box -> [target]: returns (module, target)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    target = object()
    holder = Node()
    holder.box = [target]
    module.HOLDER = holder
    return module, target


def test_backref_chain_from_a_module_has_objgraphs_shape():
    module, target = _module_chain("chains_fixture_one")
    try:
        chain = lobjgraph.find_backref_chain(target, lobjgraph.is_proper_module)
        assert chain[0] is module
        assert chain[-1] is target
        assert module.HOLDER in chain and module.HOLDER.box in chain
        for referrer, referent in zip(chain, chain[1:]):
            assert any(r is referrer for r in gc.get_referrers(referent))
        if real_objgraph is not None:
            theirs = real_objgraph.find_backref_chain(target, real_objgraph.is_proper_module)
            assert [type(o) for o in chain] == [type(o) for o in theirs]
            assert all(a is b for a, b in zip(chain, theirs))
    finally:
        del sys.modules["chains_fixture_one"]


def test_backref_chain_nothing_found_is_obj_alone():
    target = object()
    holder = [target]
    assert lobjgraph.find_backref_chain(target, lambda o: False, max_depth=3) == [target]
    assert lobjgraph.find_backref_chain(target, lambda o: o is holder) == [holder, target]
    # The object itself is tried first.
    assert lobjgraph.find_backref_chain(target, lambda o: o is target) == [target]


def test_max_depth_is_honoured():
    target = object()
    a = [target]
    b = [a]
    c = [b]
    assert lobjgraph.find_backref_chain(target, lambda o: o is c, max_depth=3) == [c, b, a, target]
    assert lobjgraph.find_backref_chain(target, lambda o: o is c, max_depth=2) == [target]
    assert lobjgraph.find_ref_chain(c, lambda o: o is target, max_depth=3) == [c, b, a, target]
    assert lobjgraph.find_ref_chain(c, lambda o: o is target, max_depth=2) == [c]
    assert lobjgraph.find_backref_chain(target, lambda o: o is c, max_depth=0) == [target]


def test_extra_ignore_is_honoured():
    target = object()
    short = [target]
    long_inner = [target]
    long_outer = [long_inner]
    goal = {"short": short, "long": long_outer}
    found = lobjgraph.find_backref_chain(target, lambda o: o is goal)
    assert found == [goal, short, target]
    found = lobjgraph.find_backref_chain(target, lambda o: o is goal, extra_ignore=[id(short)])
    assert found == [goal, long_outer, long_inner, target]
    if real_objgraph is not None:
        theirs = real_objgraph.find_backref_chain(target, lambda o: o is goal, extra_ignore=[id(short)])
        assert all(a is b for a, b in zip(found, theirs)) and len(found) == len(theirs)


def test_ref_chain_forward_matches_objgraph():
    leaf = Node()
    root = {"a": [1, (2, [leaf])]}
    chain = lobjgraph.find_ref_chain(root, lambda o: isinstance(o, Node))
    assert chain[0] is root and chain[-1] is leaf
    assert [type(o) for o in chain] == [dict, list, tuple, list, Node]
    if real_objgraph is not None:
        theirs = real_objgraph.find_ref_chain(root, lambda o: isinstance(o, Node))
        assert all(a is b for a, b in zip(chain, theirs)) and len(chain) == len(theirs)


def test_the_call_itself_is_not_in_the_chain():
    target = object()
    holder = [target]
    chain = lobjgraph.find_backref_chain(target, lambda o: isinstance(o, types.FrameType), max_depth=1)
    # This test's own frame holds target (3.8 - 3.10 report it; objgraph's does too); libleak's
    # frames never appear.
    for obj in chain:
        if isinstance(obj, types.FrameType):
            assert "objgraph.py" not in obj.f_code.co_filename
    assert holder


def test_predicate_that_frees_and_makes_objects_does_not_crash():
    target = object()
    inner = [target]
    doomed = [[inner] for _ in range(50)]
    holders = []
    calls = []
    outers_after_free = []

    def churn(obj):
        calls.append(type(obj).__name__)
        if isinstance(obj, list) and len(obj) == 1 and obj[0] is inner and not doomed:
            outers_after_free.append(1)
        if obj is inner:
            del doomed[:]  # frees the referrers the index names for the next level
        holders.append([[i] for i in range(100)])
        return False

    chain = lobjgraph.find_backref_chain(target, churn, max_depth=4)
    assert chain == [target]
    assert calls[:2] == ["object", "list"]
    assert outers_after_free == []  # the index was built again: the freed lists are gone


def test_bad_input_raises_clearly():
    with pytest.raises(ValueError, match="max_depth"):
        lobjgraph.find_backref_chain(object(), bool, max_depth=-1)
    with pytest.raises(TypeError, match="predicate must be callable"):
        lobjgraph.find_backref_chain(object(), 42)
    with pytest.raises(TypeError, match="predicate must be callable"):
        lobjgraph.find_ref_chain(object(), None)
    with pytest.raises(TypeError, match="extra_ignore"):
        lobjgraph.find_backref_chain(object(), bool, extra_ignore=["x"])
    with pytest.raises(ValueError, match="predicate error"):
        lobjgraph.find_backref_chain([object()], _raises)


def _raises(obj):
    raise ValueError("predicate error")


# ---- Pictures -------------------------------------------------------------------------------------


def _dot_of(func, objs, **kw):
    out = io.StringIO()
    assert func(objs, output=out, **kw) is None
    return out.getvalue()


def test_documented_example_writes_a_png_in_process(tmp_path, python):
    # objgraph's documented example, only its import changed; no `dot` on PATH.
    result = python(
        "import os\n"
        "os.chdir(%r)\n"
        "import libleak.objgraph as objgraph\n"
        "x = [1]\n"
        "y = [x]\n"
        "objgraph.show_backrefs([x], filename='sample-graph.png')\n" % str(tmp_path),
        env={"PATH": "/nonexistent"},
    )
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "sample-graph.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert "Graph written to sample-graph.png" in result.stdout
    assert sorted(os.listdir(str(tmp_path))) == ["sample-graph.png"]


def test_show_backrefs_dot_has_labels_types_and_no_addresses():
    x = [1]
    y = [x]
    holder = Node()
    holder.attr = x
    text = _dot_of(lobjgraph.show_backrefs, [x], max_depth=2)
    assert text.startswith("digraph")
    assert "Node" in text and "[0]" in text
    assert ".attr" in text or "['attr']" in text  # 3.8 - 3.10: through the instance's __dict__
    assert "0x" not in text
    assert "own 64 B" in text or "own " in text
    assert y and holder


def test_same_heap_same_picture():
    x = [1]
    holders = [[x] for _ in range(5)]
    first = _dot_of(lobjgraph.show_backrefs, [x], max_depth=1)
    second = _dot_of(lobjgraph.show_backrefs, [x], max_depth=1)
    assert first == second
    assert holders


def test_too_many_collapses_fan_in():
    x = object()
    holders = [[x] for _ in range(25)]
    text = _dot_of(lobjgraph.show_backrefs, [x], max_depth=1, too_many=4)
    more = re.search(r"\+(\d+) more backreferences", text)
    assert more and int(more.group(1)) >= 21  # 25 lists, and the frame on 3.8 - 3.10
    assert text.count(" -> n0") == 5  # four referrers drawn, and the collapsed node
    assert holders


def test_filter_highlight_extra_info_refcounts_shortnames():
    x = Node()
    keep = [x]
    drop = (x,)
    text = _dot_of(
        lobjgraph.show_backrefs,
        x,
        max_depth=1,
        filter=lambda o: not isinstance(o, tuple),
        highlight=lambda o: isinstance(o, list),
        extra_info=lambda o: "extra-%s" % type(o).__name__,
        refcounts=True,
        shortnames=False,
    )
    assert "extra-list" in text and "extra-Node" in text
    assert "tuple" not in text
    assert "test_objgraph_chains.Node [" in text
    assert "list [1]" in text  # keep, held by this frame only (a frame is no object the count sees)
    assert "#2f6fd0" in text or "highlight" in text.lower() or text.count("fillcolor") >= 2
    assert keep and drop


def test_show_refs_forward_and_formats(tmp_path):
    x = {"k": [Node(), "leaf"]}
    text = _dot_of(lobjgraph.show_refs, [x], max_depth=3)
    assert "['k']" in text and "Node" in text
    import xml.dom.minidom  # here, not at collection: test_objgraph's heap rankings see what imports add

    svg = tmp_path / "g.svg"
    lobjgraph.show_refs([x], filename=str(svg))
    xml.dom.minidom.parse(str(svg))
    png = tmp_path / "g.png"
    lobjgraph.show_refs([x], filename=str(png))
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pdf = tmp_path / "g.pdf"
    lobjgraph.show_backrefs([x], filename=str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")
    dot = tmp_path / "g.dot"
    lobjgraph.show_backrefs([x], filename=str(dot))
    assert dot.read_text().startswith("digraph")


def test_show_chain(tmp_path):
    module, target = _module_chain("chains_fixture_two")
    try:
        # (3.8 - 3.10: this frame holds target too, and frames lead to other modules.)
        chain = lobjgraph.find_backref_chain(target, lambda o: o is module)
        out = io.StringIO()
        lobjgraph.show_chain(chain, output=out)
        text = out.getvalue()
        assert "chains_fixture_two" in text and "Node" in text
        assert ".box" in text or "['box']" in text  # 3.8 - 3.10: through the instance's __dict__
        assert text.count("label=<<TABLE") == len(chain)
        out = io.StringIO()
        lobjgraph.show_chain(lobjgraph.find_ref_chain(module, lambda o: o is target), backrefs=False, output=out)
        assert ".box" in out.getvalue() or "['box']" in out.getvalue()
    finally:
        del sys.modules["chains_fixture_two"]


def test_graph_bad_input_writes_nothing(tmp_path):
    x = [1]
    for bad, exc in (("g.jpeg2", ValueError), ("noext", ValueError)):
        with pytest.raises(exc, match="suffix"):
            lobjgraph.show_backrefs([x], filename=str(tmp_path / bad))
    with pytest.raises(OSError):
        lobjgraph.show_backrefs([x], filename=str(tmp_path / "missing-dir" / "g.png"))
    with pytest.raises(ValueError, match="max_depth"):
        lobjgraph.show_refs([x], max_depth=-1, filename=str(tmp_path / "g.png"))
    with pytest.raises(TypeError, match="filter"):
        lobjgraph.show_refs([x], filter=3, filename=str(tmp_path / "g.png"))
    with pytest.raises(ValueError, match="both"):
        lobjgraph.show_refs([x], filename=str(tmp_path / "g.png"), output=io.StringIO())
    assert os.listdir(str(tmp_path)) == []


def test_default_output_writes_dot_and_png_without_a_viewer(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    x = [1]
    assert lobjgraph.show_backrefs([x], max_depth=1) is None
    printed = capsys.readouterr().out
    names = sorted(os.listdir(str(tmp_path)))
    assert len(names) == 2 and names[0].endswith(".dot") and names[1].endswith(".png")
    assert "Graph written to" in printed and "Image generated as" in printed
