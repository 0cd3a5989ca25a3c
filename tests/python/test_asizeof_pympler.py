"""libleak.asizeof against pympler.asizeof on a corpus of ordinary data: totals within 1%.

Skipped when pympler is not installed (pip install pympler)."""

import array
import sys

import pytest

from libleak import asizeof

pympler_asizeof = pytest.importorskip("pympler.asizeof")


class Document:
    def __init__(self, i):
        self.title = "document %d" % i
        self.words = ["w%d" % j for j in range(i % 7)]
        self.scores = {"a": i * 0.5, "b": (i, i + 1)}


class Point:
    __slots__ = ("x", "y", "tags")

    def __init__(self, i):
        self.x = float(i)
        self.y = i * 3
        self.tags = ("p", str(i))


def corpus():
    """Each entry is built fresh, so neither sizer sees objects the other has touched."""
    entries = {
        "list": lambda: [1, 2.5, "three", None, True, b"four"] * 20,
        "dict": lambda: {"k%d" % i: [i, str(i)] for i in range(500)},
        "tuple": lambda: tuple(range(1000)),
        "set": lambda: set(range(2000)),
        "frozenset": lambda: frozenset("k%d" % i for i in range(300)),
        "strings": lambda: ["ascii %d" % i for i in range(300)] + ["\u00e9\u20ac %d" % i for i in range(300)],
        "bytes": lambda: [b"x" * i for i in range(200)],
        "ints": lambda: [10**i for i in range(200)],
        "floats": lambda: [i / 3 for i in range(1000)],
        "nested": lambda: [[i, {"v": (i, [i * 0.5])}] for i in range(1000)],
        "instances": lambda: [Document(i) for i in range(1000)],
        "slots": lambda: [Point(i) for i in range(1000)],
        "bytearray": lambda: [bytearray(b"y" * i) for i in range(100)],
        # built from lists, so exactly allocated: pympler sizes every array.array by the header of
        # the first one it ever met, which is right only for arrays without spare room
        "array": lambda: [array.array("d", [0.5] * 1000), array.array("h", [7] * 500)],
    }
    return entries


def within_one_percent(ours, theirs):
    return abs(ours - theirs) <= 0.01 * theirs


@pytest.mark.parametrize("name", sorted(corpus()))
def test_totals_match_pympler(name):
    make = corpus()[name]
    ours = asizeof.asizeof(make())
    theirs = pympler_asizeof.asizeof(make())
    assert within_one_percent(ours, theirs), (name, ours, theirs)


@pytest.mark.parametrize("name", sorted(corpus()))
def test_totals_match_pympler_once_dicts_exist(name):
    # pympler creates the instance dicts CPython 3.11+ leaves virtual; size the same objects after
    obj = corpus()[name]()
    theirs = pympler_asizeof.asizeof(obj)
    assert within_one_percent(asizeof.asizeof(obj), theirs), name


def test_numpy_arrays_match_pympler():
    np = pytest.importorskip("numpy")
    make = lambda: [np.arange(10000), np.zeros((100, 100)), np.ones(5, dtype=np.int8)]
    assert within_one_percent(asizeof.asizeof(make()), pympler_asizeof.asizeof(make()))


def test_options_match_pympler():
    make = lambda: [[i, [i, [i, [i * 0.5]]]] for i in range(200)]
    for opts in ({"limit": 0}, {"limit": 1}, {"limit": 3}, {"align": 1}, {"align": 64}, {"align": 16}):
        assert within_one_percent(asizeof.asizeof(make(), **opts), pympler_asizeof.asizeof(make(), **opts)), opts
    assert asizeof.asizeof(make(), limit=0) == pympler_asizeof.asizeof(make(), limit=0)


def test_asizesof_matches_pympler():
    shared = [1.5, "shared"]
    objs = ([shared, 2.5], shared, {"k": shared}, "alone")
    ours = asizeof.asizesof(*objs)
    theirs = pympler_asizeof.asizesof(*objs)
    assert ours == theirs


def test_flatsize_and_itemsize_match_pympler():
    for obj in ([1, 2], {"a": 1}, "text", b"bytes", 1.5, 10**30, (1, 2, 3), set(), bytearray(5)):
        assert asizeof.flatsize(obj) == pympler_asizeof.flatsize(obj), obj
        assert asizeof.flatsize(obj, align=8) == pympler_asizeof.flatsize(obj, align=8), obj
        assert asizeof.itemsize(obj) == pympler_asizeof.itemsize(obj), obj


def test_modules_are_counted_flat_as_pympler():
    holder = [sys, array]
    assert asizeof.asizeof(holder) == pympler_asizeof.asizeof(holder)
