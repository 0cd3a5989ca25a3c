"""libleak.objgraph, the counting half: objgraph's signatures, return shapes and printed layouts,
counts that match objgraph's (compared with objgraph itself when it is installed), no forced
gc.collect(), and the untracked objects objgraph cannot see when asked."""

import ctypes
import gc
import io
import re
import sys

import pytest

import libleak.objgraph as objgraph

try:
    import objgraph as real_objgraph
except ImportError:  # the comparisons skip; everything else runs
    real_objgraph = None

needs_objgraph = pytest.mark.skipif(real_objgraph is None, reason="objgraph is not installed (pip install objgraph)")


class Leaf:
    pass


class Other:
    pass


def test_count_by_short_and_qualified_name():
    keep = [Leaf() for _ in range(37)]
    assert objgraph.count("Leaf") == 37
    assert objgraph.count("%s.Leaf" % __name__) == 37
    assert objgraph.count("Leaf", keep[:5]) == 5
    assert objgraph.count("NoSuchType") == 0
    with pytest.raises(TypeError):
        objgraph.count(5)


@needs_objgraph
def test_counts_match_objgraph():
    keep = [Leaf() for _ in range(50)] + [Other() for _ in range(20)]
    ours = objgraph.typestats()
    theirs = real_objgraph.typestats()
    assert ours["Leaf"] == theirs["Leaf"] == 50
    assert ours["Other"] == theirs["Other"] == 20
    for name in ("function", "type", "dict", "tuple", "list"):
        assert abs(ours[name] - theirs[name]) <= max(20, theirs[name] // 50), (name, ours[name], theirs[name])
    long_ours = objgraph.typestats(shortnames=False)
    long_theirs = real_objgraph.typestats(shortnames=False)
    assert long_ours["%s.Leaf" % __name__] == long_theirs["%s.Leaf" % __name__] == 50
    assert "builtins.dict" in long_ours and "builtins.dict" in long_theirs
    assert objgraph.count("Leaf") == real_objgraph.count("Leaf")
    del keep


@needs_objgraph
def test_printed_layouts_are_objgraphs():
    objects = [Leaf() for _ in range(3)] + [Other()] + [[] for _ in range(2)]
    for call in (
        lambda o, f: o.show_most_common_types(limit=3, objects=objects, file=f),
        lambda o, f: o.show_most_common_types(objects=objects, shortnames=False, file=f),
    ):
        ours, theirs = io.StringIO(), io.StringIO()
        call(objgraph, ours)
        call(real_objgraph, theirs)
        assert ours.getvalue() == theirs.getvalue()
    assert objgraph.most_common_types(objects=objects) == real_objgraph.most_common_types(objects=objects)


def test_show_most_common_types_from_the_heap():
    # More than any type the suite's own imports make (10,000+ functions once every test module is
    # collected), so Leaf is in the top 4 however many modules the suite holds.
    keep = [Leaf() for _ in range(30000)]
    out = io.StringIO()
    objgraph.show_most_common_types(limit=4, file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    width = max(len(line.rsplit(" ", 1)[0].rstrip()) for line in lines)
    for line in lines:
        assert re.match(r"^\S+ +\d+$", line)
        assert line.index(line.split()[1]) == width + 1
    assert any(line.startswith("Leaf ") for line in lines)
    del keep


def test_growth_and_show_growth_like_objgraph():
    peak = {}
    objgraph.growth(peak_stats=peak)
    keep = [Leaf() for _ in range(123)]
    result = objgraph.growth(limit=None, peak_stats=peak)
    assert ("Leaf", 123, 123) in result
    assert result == sorted(result, key=lambda r: r[2], reverse=True)
    assert objgraph.growth(peak_stats=peak) == [] or all(r[0] != "Leaf" for r in objgraph.growth(peak_stats=peak))
    more = [Leaf() for _ in range(7)]
    out = io.StringIO()
    objgraph.show_growth(peak_stats=peak, file=out)
    line = next(l for l in out.getvalue().splitlines() if l.startswith("Leaf"))
    assert re.match(r"^Leaf +130 +\+7$", line), line
    width = max(len(l.split()[0]) for l in out.getvalue().splitlines())
    assert line == "%-*s%9d %+9d" % (width, "Leaf", 130, 7)
    del keep, more


def test_no_forced_collection_unless_asked():
    class Cyclic:
        pass

    gc.collect()
    gc.disable()
    try:
        peak = {}
        objgraph.growth(peak_stats=peak, collect=True)
        for _ in range(10):
            a, b = Cyclic(), Cyclic()
            a.b, b.a = b, a
        del a, b
        assert ("Cyclic", 20, 20) in objgraph.growth(peak_stats=dict(peak))
        assert all(row[0] != "Cyclic" for row in objgraph.growth(peak_stats=dict(peak), collect=True))
    finally:
        gc.enable()


def test_get_new_ids_and_at_addrs():
    objgraph.get_new_ids(limit=0)
    objgraph.get_new_ids(limit=0)
    a = [Leaf() for _ in range(3)]
    out = io.StringIO()
    new_ids = objgraph.get_new_ids(limit=3, file=out)
    text = out.getvalue().splitlines()
    assert text[0] == text[2] == text[-1] and set(text[0]) == {"="}
    assert re.match(r"^Type +Old_ids +Current_ids +New_ids +Count_Deltas$", text[1])
    leaf_line = next(line for line in text if line.startswith("Leaf"))
    assert re.match(r"^Leaf +\d+ +\d+ +\+3 +\+3$", leaf_line), leaf_line
    found = objgraph.at_addrs(new_ids["Leaf"])
    assert sorted(map(id, found)) == sorted(map(id, a))
    assert objgraph.get_new_ids(skip_update=True) is new_ids


def test_by_type_and_at():
    keep = [Other() for _ in range(4)]
    assert sorted(map(id, objgraph.by_type("Other"))) == sorted(map(id, keep))
    assert sorted(map(id, objgraph.by_type("%s.Other" % __name__))) == sorted(map(id, keep))
    assert objgraph.by_type("Other", keep[:2]) == keep[:2]
    assert objgraph.at(id(keep[0])) is keep[0]
    text = "".join(["untracked ", "str"])
    assert objgraph.at(id(text)) is None  # like objgraph: the gc does not track strs
    assert objgraph.at(id(text), all_objects=True) is text
    assert objgraph.at(12345) is None
    with pytest.raises(TypeError):
        objgraph.at("0x10")


def test_typestats_all_objects_sees_untracked_ones():
    tracked = objgraph.typestats()
    everything = objgraph.typestats(all_objects=True)
    assert "str" not in tracked and everything["str"] > 1000
    filtered = objgraph.typestats(filter=lambda o: isinstance(o, Leaf))
    assert set(filtered) <= {"Leaf"}


def test_get_leaking_objects_finds_what_only_c_holds():
    orphan = Leaf()
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(orphan))
    address = id(orphan)
    del orphan
    try:
        leaking = objgraph.get_leaking_objects()
        assert address in {id(o) for o in leaking}
        held = [Leaf()]
        assert id(held[0]) not in {id(o) for o in objgraph.get_leaking_objects()}
        subset = objgraph.get_leaking_objects(held)
        assert subset == [held[0]]  # only the candidates' own list refers to it
    finally:
        ctypes.pythonapi.Py_DecRef(ctypes.py_object(objgraph.at(address)))


def test_is_proper_module():
    import types

    assert objgraph.is_proper_module(sys)
    assert not objgraph.is_proper_module(types.ModuleType("not_imported"))
    assert not objgraph.is_proper_module(5)
