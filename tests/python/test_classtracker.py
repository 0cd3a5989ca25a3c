"""libleak.classtracker: instances seen however they are made, counters, detach restoring the type's
slots, traces, bad input.  None of these need pympler."""
import copy
import gc
import io
import pickle
import re

import pytest

from libleak import _libleak, classtracker


class Document:
    def __init__(self, n=3):
        self.data = list(range(n))


class Slotted:
    __slots__ = ("a", "b")


class Child(Document):
    pass


class ListBased(list):
    pass


@pytest.fixture
def tracker():
    tr = classtracker.ClassTracker()
    yield tr
    tr.clear()
    assert _libleak.classtrack_record_count() == 0


def counters(tr, cls):
    return tr.stats.by_class["%s.%s" % (cls.__module__, cls.__qualname__)]


def test_every_creation_path_is_counted(tracker):
    tracker.track_class(Document)
    first = Document()
    made = [first, copy.copy(first), copy.deepcopy(first), pickle.loads(pickle.dumps(first)),
            Document.__new__(Document), object.__new__(Document)]
    c = counters(tracker, Document)
    assert (c["created"], c["alive"], c["destroyed"], c["peak_alive"]) == (6, 6, 0, 6)
    del made[2:]
    c = counters(tracker, Document)
    assert (c["created"], c["alive"], c["destroyed"], c["peak_alive"]) == (6, 2, 4, 6)
    assert c["max_lifetime"] >= c["avg_lifetime"] > 0


def test_slots_class_without_weakref(tracker):
    tracker.track_class(Slotted)
    objs = [Slotted() for _ in range(5)]
    objs.append(copy.copy(objs[0]))
    assert counters(tracker, Slotted)["alive"] == 6
    tracker.create_snapshot()
    assert tracker.snapshots[-1]._class_summary("%s.Slotted" % __name__)["active"] == 6
    assert set(tracker.objects) == set(id(o) for o in objs)


def test_builtin_base(tracker):
    tracker.track_class(ListBased)
    objs = [ListBased([1, 2]) for _ in range(3)]
    objs.append(copy.copy(objs[0]))
    assert counters(tracker, ListBased)["alive"] == 4
    del objs
    assert counters(tracker, ListBased)["destroyed"] == 4


def test_subclasses_only_when_asked(tracker):
    tracker.track_class(Document)
    keep = [Child(), Document()]
    assert counters(tracker, Document)["created"] == 1
    tracker.track_class(Document, subclasses=True)
    keep += [Child(), Child()]
    assert counters(tracker, Document)["created"] == 3
    tracker.detach_class(Document)
    assert _libleak.classtrack_slots(Child)[:2] == (False, False)
    del keep


def test_detach_restores_slots_exactly():
    before = {cls: _libleak.classtrack_slots(cls) for cls in (Document, Child, Slotted, ListBased)}
    tr = classtracker.ClassTracker()
    for cls in before:
        tr.track_class(cls)
        assert _libleak.classtrack_slots(cls)[:2] == (True, True)
    tr.close()
    assert {cls: _libleak.classtrack_slots(cls) for cls in before} == before
    assert not any(_libleak.classtrack_is_tracked(cls) for cls in before)


def test_instances_freed_after_detach():
    tr = classtracker.ClassTracker()
    tr.track_class(Document)
    tr.track_class(Slotted)
    objs = [Document() for _ in range(100)] + [Slotted() for _ in range(100)]
    assert _libleak.classtrack_record_count() == 200
    tr.detach_all()
    assert _libleak.classtrack_record_count() == 0
    del objs
    gc.collect()
    # Tracking again starts from zero; objects made before are not counted.
    old = Document()
    tr.track_class(Document)
    new = Document()
    assert counters(tr, Document)["created"] == 1
    del old, new
    assert counters(tr, Document)["destroyed"] == 1
    tr.clear()


def test_class_created_while_tracked_restored():
    tr = classtracker.ClassTracker()
    tr.track_class(Document)
    Late = type("Late", (Document,), {})
    late = Late()
    tr.track_class(Document, subclasses=True)
    assert _libleak.classtrack_slots(Late)[:2] == (True, True)
    tr.close()
    assert _libleak.classtrack_slots(Late)[:2] == (False, False)
    del late
    gc.collect()


def test_keep_holds_instances(tracker):
    tracker.track_class(Document, keep=True)
    for _ in range(4):
        Document()
    assert counters(tracker, Document)["alive"] == 4
    tracker.detach_all()
    assert _libleak.classtrack_record_count() == 0


def test_sizes_and_counters(tracker):
    import sys
    tracker.track_class(Document)
    from libleak import asizeof

    docs = [Document(n) for n in (1, 100)]
    expected = [asizeof.asizeof(d) for d in docs]  # pympler's sizes: each instance's deep size
    tracker.create_snapshot()
    c = counters(tracker, Document)
    assert c["total_size"] == sum(expected)
    assert c["avg_size"] == sum(expected) / 2
    assert tracker.snapshots[-1].tracked_total == sum(expected)


def test_snapshot_does_not_create_instance_dicts(tracker):
    import sys
    tracker.track_class(Document)
    doc = Document()
    tracker.create_snapshot()
    has_dict = any(type(r) is dict for r in gc.get_referents(doc))
    if sys.version_info >= (3, 11):
        # Attributes live in a values array until __dict__ is asked for: the snapshot must not ask.
        assert not has_dict
        from libleak import asizeof

        assert counters(tracker, Document)["total_size"] == asizeof.asizeof(doc)
        assert not any(type(r) is dict for r in gc.get_referents(doc))
    else:
        assert has_dict


def test_trace_gives_allocation_line(tracker):
    tracker.track_class(Document, trace=True)
    doc = Document()  # the allocation line
    line = test_trace_gives_allocation_line.__code__.co_firstlineno + 2
    (tobj,) = tracker.objects.values()
    assert tobj.ref() is doc
    fname, lineno, func = tobj.trace[-1][:3]
    assert fname == __file__ and lineno == line and func == "test_trace_gives_allocation_line"


def test_trace_from_tracer(tracker):
    from libleak import tracer
    tracer.stop()  # whatever an earlier test left running: this test needs nframe=1 from here
    tracer.start(1)
    try:
        tracker.track_class(Document, trace=True)
        doc = Document.__new__(Document)
        line = test_trace_from_tracer.__code__.co_firstlineno + 6
    finally:
        tracer.stop()
    (tobj,) = tracker.objects.values()
    assert tobj.trace[-1][:2] == (__file__, line)
    del doc


def test_summary_layout(tracker):
    tracker.track_class(Document)
    tracker.create_snapshot("before")
    docs = [Document() for _ in range(10)]
    tracker.create_snapshot("after")
    out = io.StringIO()
    tracker.stats.print_summary(file=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "---- SUMMARY " + "-" * 66
    assert re.match(r"^before {29} {6}active +0 +B +average   pct$", lines[1]), lines[1]
    name = "%s.Document" % __name__
    assert re.match(r"^  %s +0 +0 +B +0 +B +0%%$" % re.escape(name), lines[2]), lines[2]
    assert re.match(r"^  %s +10 +[\d.]+ +K?B +\d+ +B +\d%%$" % re.escape(name), lines[4]), lines[4]
    assert lines[-1] == "-" * 79
    assert all(len(l) == 79 for l in lines[1:5]), [len(l) for l in lines]
    del docs


def test_history_and_index(tracker):
    tracker.track_class(Document)
    a = [Document() for _ in range(3)]
    tracker.create_snapshot()
    del a[0]
    tracker.create_snapshot()
    name = "%s.Document" % __name__
    assert [n for _, n in tracker.history[name]] == [3, 2, 2]
    index = tracker.index[name]
    assert len(index) == 3
    assert sum(1 for t in index if t.death is not None) == 1


def test_periodic_snapshots(tracker):
    import time
    tracker.track_class(Document)
    tracker.start_periodic_snapshots(0.01)
    deadline = time.monotonic() + 30
    while len(tracker.snapshots) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    tracker.stop_periodic_snapshots()
    assert len(tracker.snapshots) >= 2


def test_track_object(tracker):
    doc = Document()
    tracker.track_object(doc, name="one")
    tracker.create_snapshot()
    assert "one" in tracker.stats.tracked_classes
    assert tracker.objects[id(doc)].name == "one"
    tracker.track_change(doc, resolution_level=2)
    with pytest.raises(TypeError):
        tracker.track_object(Slotted())  # not weakly referenceable, as in pympler


def test_bad_input():
    tr = classtracker.ClassTracker()
    with pytest.raises(TypeError, match="needs a class, not int"):
        tr.track_class(42)
    with pytest.raises(TypeError, match="built-in or extension type 'dict'"):
        tr.track_class(dict)
    with pytest.raises(TypeError):
        tr.track_class(Document, name=3)
    with pytest.raises(KeyError):
        tr.detach_class(Document)
    assert not _libleak.classtrack_is_tracked(dict)
    assert not _libleak.classtrack_is_tracked(Document)
    assert tr.stats.by_class == {}
    assert _libleak.classtrack_record_count() == 0


def test_specialized_call_sites_are_seen(python):
    # 3.13 specialises `Cls()` call sites on the type's version; hooking must invalidate that.
    out = python(
        "from libleak import classtracker\n"
        "class C:\n"
        "    def __init__(self): self.x = 1\n"
        "def make(n):\n"
        "    return [C() for _ in range(n)]\n"
        "make(5000)\n"
        "tr = classtracker.ClassTracker()\n"
        "tr.track_class(C)\n"
        "keep = make(5000)\n"
        "print(tr.stats.by_class['__main__.C']['created'])\n"
        "tr.close()\n"
        "keep2 = make(10)\n"
        "print(len(keep2))\n")
    assert out.stdout.split() == ["5000", "10"], out


def test_class_assignment(tracker):
    # CPython refuses __class__ assignment between classes whose tp_free differ, so an instance cannot
    # leave a tracked class for an untracked one (its free would go unseen).  Between two tracked
    # classes it works, and the instance is counted where it was created.
    class Other(object):
        pass

    class Tracked(object):
        pass

    class AlsoTracked(object):
        pass

    tracker.track_class(Tracked)
    obj = Tracked()
    with pytest.raises(TypeError, match="deallocator differs"):
        obj.__class__ = Other
    tracker.track_class(AlsoTracked)
    obj.__class__ = AlsoTracked
    tracker.create_snapshot()
    assert counters(tracker, Tracked)["alive"] == 1
    del obj
    assert counters(tracker, Tracked)["destroyed"] == 1
    assert _libleak.classtrack_record_count() == 0


def test_print_stats(tracker):
    tracker.track_class(Document, trace=True)
    docs = [Document(n) for n in (1, 50)]
    tracker.create_snapshot("one")
    del docs[0]
    tracker.create_snapshot("two")
    out = io.StringIO()
    stats = classtracker.ConsoleStats(tracker, stream=out)
    stats.sort_stats("size").print_stats(limit=10)
    text = out.getvalue()
    name = "%s.Document" % __name__
    assert len(re.findall(r"^%s +0x[0-9a-f]+ <" % re.escape(name), text, re.M)) == 1
    assert len(re.findall(r"^%s +\( free \)" % re.escape(name), text, re.M)) == 1
    assert "finalize" in text and "in test_print_stats" in text
    with pytest.raises(ValueError):
        stats.sort_stats("nonsense")
