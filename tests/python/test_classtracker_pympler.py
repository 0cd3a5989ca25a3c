"""libleak.classtracker side by side with pympler's: its documented example runs with the import
changed and prints the same table layout.  Skipped when pympler is not installed."""
import io
import re
import sys

import pytest

pympler_classtracker = pytest.importorskip("pympler.classtracker")

from libleak import classtracker  # noqa: E402


class Document:
    def __init__(self):
        self.title = "a title"
        self.pages = [None] * 8


def create_documents():
    return [Document() for _ in range(50)]


def documented_example(module):
    """pympler's example from its ClassTracker documentation, with `module` as classtracker."""
    out = io.StringIO()
    tr = module.ClassTracker(stream=out)
    tr.track_class(Document)
    tr.create_snapshot()
    docs = create_documents()
    tr.create_snapshot()
    tr.stats.print_summary()
    tr.detach_all()
    del docs
    return out.getvalue()


def layout(text):
    """The table with every number replaced by N and runs of spaces by one (the column widths are
    compared through the line lengths): what must be equal between the two."""
    return re.sub(r" +", " ", re.sub(r"\d+(\.\d+)?", "N", text))


def test_documented_example_same_layout():
    ours = documented_example(classtracker)
    theirs = documented_example(pympler_classtracker)
    assert layout(ours) == layout(theirs), "\n" + ours + "\n" + theirs
    ours_lines, their_lines = ours.splitlines(), theirs.splitlines()
    assert [len(l) for l in ours_lines] == [len(l) for l in their_lines]
    # Same counts of active instances (the sizes differ: pympler sizes referents deeply).
    active = lambda lines: [l.split()[1] for l in lines if l.startswith("  ") and "average" not in l]
    assert active(ours_lines) == active(their_lines) == ["0", "50"]


def test_same_api():
    for name in ("track_class", "track_object", "track_change", "create_snapshot", "start_periodic_snapshots",
                 "stop_periodic_snapshots", "detach_class", "detach_all_classes", "detach_all", "clear",
                 "close"):
        assert callable(getattr(classtracker.ClassTracker, name)), name
    import inspect
    for name in ("track_object", "track_change", "create_snapshot", "start_periodic_snapshots"):
        ours = inspect.signature(getattr(classtracker.ClassTracker, name))
        theirs = inspect.signature(getattr(pympler_classtracker.ClassTracker, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == \
            [(p.name, p.default) for p in theirs.parameters.values()], name
    ours = inspect.signature(classtracker.ClassTracker.track_class)
    theirs = inspect.signature(pympler_classtracker.ClassTracker.track_class)
    assert list(ours.parameters)[: len(theirs.parameters)] == list(theirs.parameters)


def test_instances_pympler_misses():
    import copy
    counts = {}
    for module in (classtracker, pympler_classtracker):
        tr = module.ClassTracker(stream=io.StringIO())
        tr.track_class(Document)
        first = Document()
        more = [copy.copy(first), Document.__new__(Document)]
        tr.create_snapshot()
        counts[module.__name__] = len(tr.objects)
        tr.detach_all()
        del first, more
    assert counts["libleak.classtracker"] == 3
    assert counts["pympler.classtracker"] == 1
