"""libleak.tracer against the real tracemalloc of the same interpreter, on constructed snapshots.

The same raw traces go into tracemalloc.Snapshot and libleak.tracer.Snapshot, in the running
interpreter's layout ((domain, size, frames) on 3.8, (domain, size, frames, total_nframe) from
3.9 on); every statistics, compare_to and filter_traces result must come out identical, down to
the reprs."""

import math
import os
import random
import struct
import sys
import tracemalloc
import zlib

import pytest

import libleak
import libleak.tracer as tracer

HAS_TOTAL_NFRAME = sys.version_info >= (3, 9)

UNKNOWN = ("<unknown>", 0)
FILES = ["/app/main.py", "/app/models.py", "/lib/json/decoder.py", "/lib/re.pyc", "<frozen importlib._bootstrap>", "/app/caf\u00e9.py"]


def raw_trace(domain, size, frames):
    """A raw trace in this interpreter's layout; total_nframe says the stack was deeper than kept."""
    if HAS_TOTAL_NFRAME:
        return (domain, size, tuple(frames), len(frames) + (size % 3))
    return (domain, size, tuple(frames))


def random_traces(rng, n, max_depth, domains=(0, 7, 389047)):
    """Raw traces with ("<unknown>", 0) frames alone and inside tracebacks, repeated frames
    (recursion, which cumulative statistics count once per occurrence) and .pyc names."""
    traces = []
    for _ in range(n):
        shape = rng.random()
        if shape < 0.1:
            frames = [UNKNOWN]
        else:
            frames = [(rng.choice(FILES), rng.randint(0, 4)) for _ in range(rng.randint(1, max_depth))]
            if shape < 0.25:
                frames.insert(rng.randint(0, len(frames)), UNKNOWN)
            elif shape < 0.35:
                frames.append(frames[0])
        size = rng.choice([8, 16, 16, 100, 4096, rng.randint(1, 10 ** 6)])
        traces.append(raw_trace(rng.choice(domains), size, frames))
    return traces


def both(traces, limit):
    return tracer.Snapshot(traces, limit), tracemalloc.Snapshot(traces, limit)


def rows(stats):
    """Everything a Statistic / StatisticDiff shows: frames, numbers, str and repr."""
    out = []
    for stat in stats:
        frames = tuple((frame.filename, frame.lineno) for frame in stat.traceback)
        numbers = tuple(getattr(stat, name) for name in ("size", "size_diff", "count", "count_diff") if hasattr(stat, name))
        out.append((frames, numbers, str(stat), repr(stat)))
    return out


def test_every_public_name_of_tracemalloc_is_there():
    names = [
        name
        for name in dir(tracemalloc)
        if not name.startswith("_") and getattr(getattr(tracemalloc, name), "__module__", None) in ("tracemalloc", "_tracemalloc")
    ]
    assert "get_tracemalloc_memory" in names
    for name in names:
        assert hasattr(tracer, name), name
        assert name in tracer.__all__, name
    assert "get_tracer_memory" in tracer.__all__
    assert tracer.get_tracer_memory is tracer.get_tracemalloc_memory
    assert isinstance(tracer.get_tracemalloc_memory(), int)


KEYS = [("filename", False), ("lineno", False), ("traceback", False), ("filename", True), ("lineno", True)]


@pytest.mark.parametrize("seed", range(4))
def test_raw_traces_come_back_in_this_interpreters_layout(seed):
    traces = random_traces(random.Random(seed), 200, 4)
    ours, theirs = both(traces, 6)
    assert ours.traces._traces == theirs.traces._traces == traces
    assert ours.traceback_limit == theirs.traceback_limit == 6
    assert len(ours.traces) == len(theirs.traces)
    for index in (0, 1, -1):
        mine, real = ours.traces[index], theirs.traces[index]
        assert (mine.domain, mine.size) == (real.domain, real.size)
        assert [(f.filename, f.lineno) for f in mine.traceback] == [(f.filename, f.lineno) for f in real.traceback]
        assert repr(mine.traceback) == repr(real.traceback)
        assert repr(mine) == repr(real) and str(mine) == str(real)
        assert hash(mine) == hash(real) and hash(mine.traceback) == hash(real.traceback)


def test_snapshot_rejects_the_other_layout():
    frames = (("a.py", 1),)
    other = (0, 10, frames) if HAS_TOTAL_NFRAME else (0, 10, frames, 1)
    with pytest.raises(ValueError, match=r"\(domain, size, frames"):
        tracer.Snapshot([other], 1)
    with pytest.raises(TypeError, match="a trace must be a tuple"):
        tracer.Snapshot([[0, 10, frames, 1]], 1)


def test_traceback_layout_matches_this_version():
    frames = (("b.py", 2), ("a.py", 1))
    if HAS_TOTAL_NFRAME:
        ours, theirs = tracer.Traceback(frames, 5), tracemalloc.Traceback(frames, 5)
        assert ours.total_nframe == theirs.total_nframe == 5
        assert tracer.Traceback(frames).total_nframe is None
    else:
        ours, theirs = tracer.Traceback(frames), tracemalloc.Traceback(frames)
        assert not hasattr(ours, "total_nframe") and not hasattr(theirs, "total_nframe")
        with pytest.raises(TypeError):
            tracer.Traceback(frames, 5)
    assert repr(ours) == repr(theirs)
    assert str(ours) == str(theirs)
    assert ours.format() == theirs.format()
    for limit in (1, -1, 5, -5):
        assert ours.format(limit=limit, most_recent_first=True) == theirs.format(limit=limit, most_recent_first=True)
    assert hash(ours) == hash(theirs)
    assert ours == tracer.Traceback(frames) and not ours < tracer.Traceback(frames)


@pytest.mark.parametrize("seed", range(6))
def test_statistics_match_tracemalloc(seed):
    traces = random_traces(random.Random(seed), 300, 4)
    ours, theirs = both(traces, 5)
    for key, cumulative in KEYS:
        assert rows(ours.statistics(key, cumulative)) == rows(theirs.statistics(key, cumulative)), (key, cumulative)


@pytest.mark.parametrize("seed", range(6))
def test_compare_to_matches_tracemalloc(seed):
    rng = random.Random(50 + seed)
    old = random_traces(rng, 200, 3)
    new = old[: rng.randint(0, 200)] + random_traces(rng, 150, 3)
    ours_new, theirs_new = both(new, 3)
    ours_old, theirs_old = both(old, 3)
    for key, cumulative in KEYS:
        mine = ours_new.compare_to(ours_old, key, cumulative)
        real = theirs_new.compare_to(theirs_old, key, cumulative)
        assert rows(mine) == rows(real), (key, cumulative)


FILTERS = [
    lambda m: [m.Filter(True, "<unknown>")],
    lambda m: [m.Filter(False, "<unknown>")],
    lambda m: [m.Filter(True, "<unknown>", lineno=0)],
    lambda m: [m.Filter(False, "<unknown>", lineno=0)],
    lambda m: [m.Filter(True, "<unknown>", all_frames=True)],
    lambda m: [m.Filter(False, "<unknown>", all_frames=True)],
    lambda m: [m.Filter(False, "<unknown>", lineno=0, all_frames=True)],
    lambda m: [m.Filter(True, "<*>", all_frames=True), m.Filter(False, "<unknown>")],
    lambda m: [m.Filter(False, "<frozen importlib._bootstrap>"), m.Filter(False, "<unknown>")],
    lambda m: [m.Filter(True, "/app/*")],
    lambda m: [m.Filter(False, "/lib/*")],
    lambda m: [m.Filter(True, "/lib/re.py")],
    lambda m: [m.Filter(True, "/app/main.py", lineno=3)],
    lambda m: [m.Filter(False, "/app/main.py", lineno=3)],
    lambda m: [m.Filter(True, "/app/main.py", lineno=3, all_frames=True)],
    lambda m: [m.Filter(False, "/app/main.py", lineno=3, all_frames=True)],
    lambda m: [m.Filter(True, "/app/m*.py", all_frames=True)],
    lambda m: [m.Filter(False, "*", lineno=0)],
    lambda m: [m.Filter(False, "*", lineno=0, all_frames=True)],
    lambda m: [m.Filter(True, "/app/*", domain=7)],
    lambda m: [m.Filter(False, "/app/*", domain=7)],
    lambda m: [m.Filter(True, "<unknown>", domain=0)],
    lambda m: [m.Filter(False, "<unknown>", domain=0)],
    lambda m: [m.Filter(True, "<unknown>", all_frames=True, domain=389047)],
    lambda m: [m.Filter(False, "/lib/*", all_frames=True, domain=7)],
    lambda m: [m.DomainFilter(True, 7)],
    lambda m: [m.DomainFilter(False, 7)],
    lambda m: [m.DomainFilter(True, 7), m.DomainFilter(True, 0)],
    lambda m: [m.DomainFilter(False, 7), m.Filter(False, "*decoder*")],
    lambda m: [m.DomainFilter(True, 389047), m.Filter(True, "<unknown>")],
    lambda m: [m.Filter(True, "/app/*"), m.Filter(True, "/lib/*"), m.Filter(False, "*", lineno=0)],
    lambda m: [m.Filter(True, "/app/[mc]*"), m.DomainFilter(False, 389047)],
    lambda m: [],
]


@pytest.mark.parametrize("index", range(len(FILTERS)))
def test_filter_traces_matches_tracemalloc(index):
    traces = random_traces(random.Random(index), 300, 3)
    ours, theirs = both(traces, 4)
    mine = ours.filter_traces(FILTERS[index](tracer))
    real = theirs.filter_traces(FILTERS[index](tracemalloc))
    assert mine.traces._traces == real.traces._traces
    assert mine.traceback_limit == real.traceback_limit
    for key, cumulative in KEYS:
        assert rows(mine.statistics(key, cumulative)) == rows(real.statistics(key, cumulative)), (key, cumulative)
    # A snapshot rebuilt from the filtered one's traces is the same snapshot.
    again = tracer.Snapshot(mine.traces, 4)
    assert again.traces._traces == real.traces._traces


def test_unknown_frame_alone_is_filtered_like_tracemalloc():
    """The smallest case of a ("<unknown>", 0) frame, one filter at a time, checked by hand too."""
    traces = [raw_trace(0, 10, [UNKNOWN]), raw_trace(0, 20, [("a.py", 3), UNKNOWN]), raw_trace(1, 30, [("b.py", 1)])]
    ours, theirs = both(traces, 2)
    kept = ours.filter_traces([tracer.Filter(False, "<unknown>")]).traces._traces
    assert kept == theirs.filter_traces([tracemalloc.Filter(False, "<unknown>")]).traces._traces
    assert kept == traces[1:]
    kept = ours.filter_traces([tracer.Filter(False, "<unknown>", all_frames=True)]).traces._traces
    assert kept == theirs.filter_traces([tracemalloc.Filter(False, "<unknown>", all_frames=True)]).traces._traces
    assert kept == traces[2:]


FREELIST_PROGRAM = """
import json, sys
tracemalloc = __import__(sys.argv[1], fromlist=["start"])
tracemalloc.start(1)
# A big table makes libleak queue its table updates (tracer/pending.h) before the sites below.
ballast = [[] for _ in range(int(sys.argv[2]))]
# Empty the freelists filled before tracing started, so that the objects below are traced.
drain = [[[] for _ in range(300)], [{} for _ in range(300)], [i + 0.5 for i in range(300)], [(i,) for i in range(300)]]
n = len(sys.argv)
obj = []  # first list
obj = None
obj = []  # second list
x = n + 0.5  # first float
x = None
x = n + 0.25  # second float
d = {}  # first dict
d = None
d = {}  # second dict
t = (n,)  # first tuple
t = None
t = (n,)  # second tuple
sites = {}
for kind, value in (("list", obj), ("float", x), ("dict", d), ("tuple", t)):
    tb = tracemalloc.get_object_traceback(value)
    sites[kind] = None if tb is None else tb[-1].lineno
print(json.dumps(sites))
"""


@pytest.mark.parametrize("ballast", [0, 100000], ids=["small_table", "queued_updates"])
def test_object_reused_from_a_freelist_reports_the_site_tracemalloc_reports(python, tmp_path, ballast):
    """3.13: an object handed out again from a freelist names its new site, as with tracemalloc
    (both through the reference tracer).  3.8 - 3.12: CPython tells only tracemalloc about the
    reuse (a direct call from _Py_NewReference, no hook another tool can take), so libleak names
    the first site there, as documented in get_object_traceback."""
    import json

    program = tmp_path / "freelists.py"
    program.write_text(FREELIST_PROGRAM)
    lines = FREELIST_PROGRAM.splitlines()

    def line_of(which, kind):
        return 1 + lines.index(next(text for text in lines if text.endswith("# %s %s" % (which, kind))))

    results = {}
    for module in ("tracemalloc", "libleak.tracer"):
        result = python("import runpy, sys; sys.argv[:] = sys.argv[1:]; runpy.run_path(sys.argv[0])", str(program), module,
                        str(ballast))
        assert result.returncode == 0, result.stderr
        results[module] = json.loads(result.stdout)
    ours = "second" if sys.version_info >= (3, 13) else "first"
    for kind in ("list", "float", "dict", "tuple"):
        assert results["tracemalloc"][kind] == line_of("second", kind), (kind, results)
        assert results["libleak.tracer"][kind] == line_of(ours, kind), (kind, results)


# ---- Attributes set on a snapshot survive dump and load (tracemalloc pickles __dict__) ------------

PLAIN_ATTRIBUTES = {
    "label": "after warm-up",
    "none": None,
    "yes": True,
    "no": False,
    "small": -5,
    "edges": [-(2 ** 63), 2 ** 63 - 1, -(2 ** 63) - 1, 2 ** 63, 10 ** 400, -(10 ** 400)],
    "floats": (0.1, -0.0, float("inf"), float("-inf"), 1e308),
    "text": "caf\u00e9 \U0001f600 a\x00b \udc80",
    "raw": bytes(range(256)),
    "nested": {"z": [1, (2, [3, {"deep": ()}])], "a": {}, 7: "int key", (1, "t"): [], None: 0, 2.5: b""},
    "empty": [],
}


def tm_round_trip(snapshot, tmp_path):
    path = str(tmp_path / "tm.pickle")
    snapshot.dump(path)
    return tracemalloc.Snapshot.load(path)


def test_attributes_survive_dump_and_load_as_with_tracemalloc(tmp_path):
    traces = random_traces(random.Random(7), 20, 3)
    ours, theirs = both(traces, 3)
    for snapshot in (ours, theirs):
        for name, value in PLAIN_ATTRIBUTES.items():
            setattr(snapshot, name, value)
        snapshot.nan = float("nan")
    path = str(tmp_path / "ours.snap")
    ours.dump(path)
    back = tracer.Snapshot.load(path)
    real = tm_round_trip(theirs, tmp_path)
    for name, value in PLAIN_ATTRIBUTES.items():
        assert getattr(back, name) == getattr(real, name) == value, name
    assert math.isnan(back.nan) and math.isnan(real.nan)
    # Types kept exactly: tuples stay tuples, bools stay bools, dict order is kept.
    assert type(back.floats) is tuple and type(back.nested["z"][1]) is tuple and type(back.empty) is list
    assert back.yes is True and back.no is False and back.none is None
    assert list(back.nested) == list(PLAIN_ATTRIBUTES["nested"]) and list(vars(back)) == list(vars(ours))
    assert math.copysign(1, back.floats[1]) == -1.0
    assert back.traces._traces == real.traces._traces
    # As in tracemalloc, filter_traces makes a new snapshot without them.
    assert not hasattr(back.filter_traces([]), "label") and not hasattr(real.filter_traces([]), "label")
    # Written again, a loaded snapshot keeps them.
    again_path = str(tmp_path / "again.snap")
    back.dump(again_path)
    assert vars(tracer.Snapshot.load(again_path)).keys() == vars(back).keys()


def test_attributes_survive_pickle():
    import pickle

    snap = tracer.Snapshot([], 2)
    snap.label = "x"
    snap.anything = {1, 2}  # pickle (not the file format) may hold any picklable value
    back = pickle.loads(pickle.dumps(snap))
    assert (back.label, back.anything, back.traceback_limit) == ("x", {1, 2}, 2)


class Custom:
    pass


@pytest.mark.parametrize(
    "value, type_name",
    [({1, 2}, "set"), (Custom(), "Custom"), ([1, {"k": frozenset()}], "frozenset"), (bytearray(b"x"), "bytearray"), (1j, "complex")],
)
def test_dump_refuses_other_attribute_types_and_writes_nothing(tmp_path, value, type_name):
    snap = tracer.Snapshot([], 1)
    snap.label = "kept"
    snap.odd = value
    path = tmp_path / "x.snap"
    with pytest.raises(TypeError, match=r"'odd'.*\b%s\b" % type_name):
        snap.dump(str(path))
    assert not path.exists()
    # An existing file is left as it was.
    path.write_bytes(b"previous")
    with pytest.raises(TypeError):
        snap.dump(str(path))
    assert path.read_bytes() == b"previous"
    del snap.odd
    snap.dump(str(path))
    assert tracer.Snapshot.load(str(path)).label == "kept"


def test_dump_refuses_self_containing_attributes(tmp_path):
    snap = tracer.Snapshot([], 1)
    loop = []
    loop.append(loop)
    snap.loop = loop
    with pytest.raises(ValueError, match="'loop'"):
        snap.dump(str(tmp_path / "x.snap"))
    assert not (tmp_path / "x.snap").exists()


def test_files_written_before_attributes_still_load():
    corpus = os.path.join(os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")), "tests", "fuzz-corpus", "snapfile")
    for name in ("exact-nframe8.snap", "sampled-nframe3.snap"):
        snap = tracer.Snapshot.load(os.path.join(corpus, name))
        assert len(snap.traces) > 0 and vars(snap) == {}
        assert snap.statistics("lineno")
    # The corpus file with attributes (what the fuzzer starts from) holds what it was written with.
    snap = tracer.Snapshot.load(os.path.join(corpus, "attributes-nframe4.snap"))
    assert snap.label == "after warm-up" and snap.run[(1, "k")] == 2 and snap.run["big"] == -(2 ** 70)


def fix_header(data):
    """The file with its CRC and length made to match the payload, so a mutation reaches the parser."""
    payload = data[24:]
    return data[:12] + struct.pack("<IQ", zlib.crc32(payload) & 0xFFFFFFFF, len(payload)) + payload


def test_damaged_attributes_raise_format_error(tmp_path):
    """Every byte of the attribute section changed (CRC fixed up), and random multi-byte damage:
    the load gives a snapshot or libleak.FormatError, nothing else."""
    snap = tracer.Snapshot([raw_trace(0, 10, [("a.py", 1)])], 1)
    for name, value in PLAIN_ATTRIBUTES.items():
        setattr(snap, name, value)
    path = tmp_path / "a.snap"
    snap.dump(str(path))
    data = path.read_bytes()
    start = len(data) - len(_encoded_attributes(snap))
    rng = random.Random(3)
    outcomes = set()
    for round_ in range(3000):
        damaged = bytearray(data)
        if round_ < len(data) - start:
            damaged[start + round_] ^= 1 << rng.randrange(8)
        else:
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(start, len(data))] = rng.randrange(256)
        path.write_bytes(fix_header(bytes(damaged)))
        try:
            tracer.Snapshot.load(str(path))
            outcomes.add("loaded")
        except libleak.FormatError:
            outcomes.add("FormatError")
    assert "FormatError" in outcomes


def _encoded_attributes(snap):
    return tracer._encode_attributes(vars(snap))


def test_empty_tracebacks_are_refused_with_a_clear_message():
    """tracemalloc never makes an empty traceback (it writes ("<unknown>", 0) instead); its Snapshot
    takes one but then fails with IndexError in filename statistics and in most filters.  libleak
    refuses it when the snapshot is built."""
    with pytest.raises(ValueError, match="<unknown>"):
        tracer.Snapshot([raw_trace(0, 10, [])], 1)
    theirs = tracemalloc.Snapshot([raw_trace(0, 10, [])], 1)
    with pytest.raises(IndexError):
        theirs.statistics("filename")


def test_attributes_removed_after_load_stay_removed(tmp_path):
    """What a snapshot was read with is not written again behind the user's back: the Python
    object's attributes are the only truth, for dump and for pickle."""
    import pickle

    snap = tracer.Snapshot([raw_trace(0, 10, [("a.py", 1)])], 1)
    snap.label, snap.other = "x", 1
    path = str(tmp_path / "a.snap")
    snap.dump(path)
    back = tracer.Snapshot.load(path)
    del back.label
    assert vars(pickle.loads(pickle.dumps(back))) == {"other": 1}
    del back.other
    back.dump(path)
    assert vars(tracer.Snapshot.load(path)) == {}
    assert vars(pickle.loads(pickle.dumps(back))) == {}
