"""libleak.asizeof's own behaviour (no pympler needed): sizes, options, sharing, depth, bad input."""

import array
import sys

import pytest

from libleak import asizeof


def flat(obj, align=8):
    """sys.getsizeof rounded up to align: what asizeof counts for one object."""
    size = sys.getsizeof(obj)
    return (size + align - 1) & ~(align - 1)


class Plain:
    def __init__(self, i):
        self.data = [float(i)]
        self.name = "item-%d" % i


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = [1.5, 2.5]
        self.b = "slot value"


def test_flat_objects_are_their_aligned_getsizeof():
    for obj in (1.5, 10**40, "abc", "h\u00e9llo\u20ac", b"x" * 100, bytearray(300), (), None, True):
        assert asizeof.asizeof(obj) == flat(obj)
        assert asizeof.flatsize(obj) == sys.getsizeof(obj)
        assert asizeof.flatsize(obj, align=8) == flat(obj)


def test_containers_add_their_items():
    items = [1.5, "text", (2.5, b"zz")]
    expected = flat(items) + flat(1.5) + flat("text") + flat(items[2]) + flat(2.5) + flat(b"zz")
    assert asizeof.asizeof(items) == expected
    d = {"key": 3.25}
    assert asizeof.asizeof(d) == flat(d) + flat("key") + flat(3.25)
    s = {4.5, "x"}
    assert asizeof.asizeof(s) == flat(s) + flat(4.5) + flat("x")


def test_instances_count_attributes_and_dict():
    obj = Plain(7)
    size = asizeof.asizeof(obj)
    # the instance, a dict, the list, the float, the str, the two key strings at most
    parts = flat(obj) + flat(obj.data) + flat(obj.data[0]) + flat(obj.name)
    assert parts < size <= parts + flat(obj.__dict__) + flat("data") + flat("name")
    # after obj.__dict__ was read, the dict exists; the size counts it the same way
    assert abs(asizeof.asizeof(obj) - size) <= flat("data") + flat("name")


def test_slots_values_are_followed():
    obj = Slotted()
    expected = flat(obj) + flat(obj.a) + flat(1.5) + flat(2.5) + flat(obj.b)
    assert asizeof.asizeof(obj) == expected


def test_shared_objects_count_once():
    shared = [1.5] * 100
    assert asizeof.asizeof([shared, shared, shared]) == flat([shared] * 3) + asizeof.asizeof(shared)
    assert asizeof.asizeof(shared, shared) == asizeof.asizeof(shared)
    outer = [shared]
    both = asizeof.asizesof(outer, shared)
    assert both == (flat(outer), asizeof.asizeof(shared))
    assert asizeof.asizeof(outer, shared) == sum(both)
    assert asizeof.asizesof(shared, shared) == (asizeof.asizeof(shared),) * 2


def test_million_deep_nesting_needs_no_recursion():
    deep = []
    for _ in range(1000000):
        deep = [deep]
    one = flat([[]])
    assert asizeof.asizeof(deep, limit=None) == 1000000 * one + flat([])
    assert asizeof.asizeof(deep) == 101 * one  # pympler's default limit of 100 levels
    assert asizeof.asizeof(deep, limit=0) == one
    # tear it down without recursion either
    while deep:
        deep = deep[0]


def test_limit_cuts_levels():
    nested = [[[[1.5]]]]
    assert asizeof.asizeof(nested, limit=0) == flat(nested)
    assert asizeof.asizeof(nested, limit=1) == 2 * flat(nested)
    assert asizeof.asizeof(nested, limit=4) == 4 * flat(nested) + flat(1.5)


def test_align_option():
    s = "abcde"
    assert asizeof.asizeof(s, align=1) == sys.getsizeof(s)
    assert asizeof.asizeof(s, align=0) == sys.getsizeof(s)
    assert asizeof.asizeof(s, align=256) == 256


def test_modules_classes_and_functions_are_not_followed_by_default():
    def function():
        return 1

    holder = [sys, Plain, function, len]
    assert asizeof.asizeof(holder) == flat(holder) + flat(sys)
    with_code = asizeof.asizeof(holder, code=True)
    assert with_code > asizeof.asizeof(holder)
    # builtin functions and classes need ignored=False too
    assert asizeof.asizeof([len], code=True) == flat([len])
    assert asizeof.asizeof([len], code=True, ignored=False) == flat([len]) + flat(len)
    # a module given as an argument is followed through its globals
    assert asizeof.asizeof(array) > flat(array)


def test_frames_option():
    frame = sys._getframe()
    assert asizeof.asizeof([frame]) == flat([frame])
    assert asizeof.asizeof([frame], frames=True) > flat([frame])


def test_buffers_reported_by_sizeof_are_counted():
    arr = array.array("d", range(10000))
    assert asizeof.asizeof(arr) == flat(arr) >= 80000
    buf = bytearray(100000)
    assert asizeof.asizeof(buf) == flat(buf) >= 100000


def test_numpy_arrays_count_their_data():
    np = pytest.importorskip("numpy")
    a = np.arange(10000, dtype=np.float64)
    assert asizeof.asizeof(a) >= a.nbytes
    assert asizeof.asizeof(a) == flat(a) + flat(None)  # .base is None
    view = a[10:20]
    assert asizeof.asizeof(view) == flat(view) + asizeof.asizeof(a)


def test_user_sizeof_runs_after_the_walk():
    calls = []

    class Reported:
        __slots__ = ()  # no __dict__: the size is the instance alone

        def __sizeof__(self):
            calls.append(1)
            return 1000

    class Broken:
        def __sizeof__(self):
            raise TypeError("no size")

    class Failing:
        def __sizeof__(self):
            raise RuntimeError("boom")

    assert asizeof.asizeof([Reported()]) == flat([0]) + flat(Reported())
    assert calls
    assert asizeof.asizeof(Broken()) > 0  # a TypeError falls back to the estimate
    with pytest.raises(RuntimeError, match="boom"):
        asizeof.asizeof([Failing()])


def test_all_sizes_gc_objects():
    assert asizeof.asizeof(all=True) > asizeof.asizeof([1.5])
    assert asizeof.asizeof() == 0
    assert asizeof.asizeof(all=False) == 0


def test_stats_prints_a_summary(capsys):
    size = asizeof.asizeof([1.5, "x"], stats=1)
    out = capsys.readouterr().out
    assert "%d bytes" % size in out
    assert "objects sized" in out
    assert asizeof.asizeof([1.5, "x"], stats=0) == size
    assert capsys.readouterr().out == ""


def test_basicsize_and_itemsize():
    gc_head = sys.getsizeof([]) - [].__sizeof__()
    assert asizeof.basicsize(1.5) == float.__basicsize__
    assert asizeof.basicsize([]) == list.__basicsize__ + gc_head
    assert asizeof.itemsize([]) == 8
    assert asizeof.itemsize({}) == 24
    assert asizeof.itemsize(b"") == 1
    assert asizeof.itemsize(1.5) == 0
    assert asizeof.itemsize(array.array("d")) == 8
    assert asizeof.itemsize(array.array("h")) == 2


def test_bad_input_raises():
    with pytest.raises(ValueError, match="power of 2"):
        asizeof.asizeof([], align=3)
    with pytest.raises(ValueError, match="power of 2"):
        asizeof.flatsize([], align=12)
    with pytest.raises(TypeError, match="align"):
        asizeof.asizeof([], align="8")
    with pytest.raises(ValueError, match="limit"):
        asizeof.asizeof([], limit=-1)
    with pytest.raises(TypeError, match="limit"):
        asizeof.asizeof([], limit=1.5)
    with pytest.raises(TypeError, match="unexpected option"):
        asizeof.asizeof([], colour=True)
    with pytest.raises(TypeError, match="unexpected option"):
        asizeof.basicsize([], align=8)
    with pytest.raises(ValueError, match="all"):
        asizeof.asizeof(all="yes")
    with pytest.raises(ValueError, match="stats"):
        asizeof.asizeof([], stats=-1)
