"""Profile files: every format read back (folded grammar, speedscope's required fields, pprof
decoded with a protobuf parser when one is installed, the SVG parsed as XML), Profile.load,
unknown suffixes, and heap profiles of tracer snapshots."""

import gzip
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from libleak import FormatError, sampler, tracer


def handmade():
    # main -> work -> hot: 3 on thread 7 ("worker"); main -> idle: 2 on thread 9
    frames = (("main", "app.py", 10), ("work", "app.py", 4), ("hot", "lib/x;y.py", 2), ("idle", "app.py", 20))
    raw = ((("samples", "count"),), ("cpu", "nanoseconds", 1000000), 10**9, frames,
           ((7, "worker"), (9, None)), ((0, (2, 1, 0), (3,)), (1, (3, 0), (2,))))
    return sampler.Profile(raw)


def test_top_rows():
    rows = handmade().top(10)
    assert [(r.function, r.self_samples, r.total_samples) for r in rows] == [
        ("hot", 3, 3), ("idle", 2, 2), ("main", 0, 5), ("work", 0, 3)]
    assert rows[0].filename == "lib/x;y.py" and rows[0].lineno == 2
    assert handmade().samples == 5
    with pytest.raises(ValueError):
        handmade().top(-1)


def test_collapsed_grammar_and_load(tmp_path):
    path = tmp_path / "p.collapsed"
    handmade().write(path)
    lines = path.read_text().splitlines()
    grammar = re.compile(r"^[^;\n]+(;[^;\n]+)* \d+$")
    assert all(grammar.match(line) for line in lines), lines
    assert lines[0] == "main (app.py:10);work (app.py:4);hot (lib/x_y.py:2) 3"
    loaded = sampler.Profile.load(path)
    assert loaded.samples == 5
    assert [(r.function, r.filename, r.lineno, r.self_samples) for r in loaded.top(2)] == [
        ("hot", "lib/x_y.py", 2, 3), ("idle", "app.py", 20, 2)]


def test_speedscope_fields_and_load(tmp_path):
    path = tmp_path / "p.speedscope.json"
    handmade().write(path)
    doc = json.loads(path.read_text())
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert len(doc["shared"]["frames"]) == 4
    assert all({"name", "file", "line"} <= set(f) for f in doc["shared"]["frames"])
    assert [p["type"] for p in doc["profiles"]] == ["sampled", "sampled"]
    for p in doc["profiles"]:
        assert {"name", "unit", "startValue", "endValue", "samples", "weights"} <= set(p)
        assert len(p["samples"]) == len(p["weights"])
        assert p["endValue"] == sum(p["weights"])
    assert doc["profiles"][0]["samples"] == [[0, 1, 2]]  # root first
    loaded = sampler.Profile.load(path)
    assert loaded.samples == 5
    assert loaded.threads == {7: "worker", 9: None}
    assert loaded.top(1)[0].function == "hot"


def decode_varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def decode_message(data):
    """Protocol-buffers wire format: {field: [values]}; length-delimited fields stay bytes."""
    fields, i = {}, 0
    while i < len(data):
        key, i = decode_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = decode_varint(data, i)
        elif wire == 2:
            n, i = decode_varint(data, i)
            value, i = data[i:i + n], i + n
        else:
            raise AssertionError("unexpected wire type %d" % wire)
        fields.setdefault(field, []).append(value)
    return fields


def packed(values):
    out, i = [], 0
    while i < len(values):
        v, i = decode_varint(values, i)
        out.append(v)
    return out


def test_pprof_message(tmp_path):
    path = tmp_path / "p.pb.gz"
    handmade().write(path)
    raw = gzip.decompress(path.read_bytes())
    msg = decode_message(raw)
    strings = [s.decode() for s in msg[6]]
    assert strings[0] == ""
    sample_type = decode_message(msg[1][0])
    assert strings[sample_type[1][0]] == "samples" and strings[sample_type[2][0]] == "count"
    assert msg[12] == [1000000] and msg[10] == [10**9]
    functions = {decode_message(f)[1][0]: strings[decode_message(f)[2][0]] for f in msg[5]}
    locations = {}
    for loc in msg[4]:
        loc = decode_message(loc)
        line = decode_message(loc[4][0])
        locations[loc[1][0]] = (functions[line[1][0]], line[2][0])
    samples = []
    for s in msg[2]:
        s = decode_message(s)
        ids = packed(s[1][0])
        samples.append(([locations[i] for i in ids], packed(s[2][0])))
    assert samples[0] == ([("hot", 2), ("work", 4), ("main", 10)], [3])
    assert samples[1] == ([("idle", 20), ("main", 10)], [2])
    go = shutil.which("go")
    if go:
        top = subprocess.run([go, "tool", "pprof", "-top", str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True)
        assert "hot" in top.stdout, top.stdout


def test_svg_is_xml_with_frames(tmp_path):
    path = tmp_path / "p.svg"
    handmade().write(path)
    root = ET.parse(str(path)).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    frames = root.findall(".//svg:g[@class='f']", ns)
    titles = [g.find("svg:title", ns).text for g in frames]
    assert len(frames) == 5  # all, main, idle, work, hot
    assert any(t.startswith("hot (lib/x;y.py:2)\n3 samples, 60.00%") for t in titles), titles
    assert root.find(".//svg:script", ns) is not None


def test_unknown_suffix_writes_nothing(tmp_path):
    for name in ("p.txt", "p.json", "p.pb", "p"):
        with pytest.raises(ValueError):
            handmade().write(tmp_path / name)
        assert not (tmp_path / name).exists()
    with pytest.raises(ValueError):
        sampler.Profile.load(tmp_path / "p.svg")


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.collapsed"
    bad.write_text("main;work notanumber\n")
    with pytest.raises(FormatError):
        sampler.Profile.load(bad)
    bad = tmp_path / "bad.speedscope.json"
    bad.write_text('{"shared": {}}')
    with pytest.raises(FormatError):
        sampler.Profile.load(bad)


def test_live_profile_every_format(tmp_path):
    def spin():
        import time
        end = time.thread_time() + 0.1
        while time.thread_time() < end:
            pass
    with sampler.profile(interval=0.001) as prof:
        spin()
    assert prof.samples > 0
    for suffix in (".collapsed", ".speedscope.json", ".pb.gz", ".svg"):
        prof.write(tmp_path / ("live" + suffix))
        assert (tmp_path / ("live" + suffix)).stat().st_size > 0
    assert "spin" in (tmp_path / "live.collapsed").read_text()


def test_heap_profile_of_a_snapshot(tmp_path):
    tracer.start(10)
    try:
        def allocate_here():
            return [bytearray(1000) for _ in range(200)]
        keep = allocate_here()
        snap = tracer.take_snapshot()
    finally:
        tracer.stop()
    heap = sampler.heap_profile(snap)
    assert heap.sample_types == (("inuse_space", "bytes"), ("inuse_objects", "count"))
    assert heap.samples >= 200 * 1000
    heap.write(tmp_path / "heap.pb.gz")
    msg = decode_message(gzip.decompress((tmp_path / "heap.pb.gz").read_bytes()))
    strings = [s.decode() for s in msg[6]]
    types = [(strings[decode_message(t)[1][0]], strings[decode_message(t)[2][0]]) for t in msg[1]]
    assert types == [("inuse_space", "bytes"), ("inuse_objects", "count")]
    heap.write(tmp_path / "heap.svg")
    svg = (tmp_path / "heap.svg").read_text()
    assert "Memory flame graph" in svg
    ET.parse(str(tmp_path / "heap.svg"))
    heap.write(tmp_path / "heap.speedscope.json")
    doc = json.loads((tmp_path / "heap.speedscope.json").read_text())
    assert doc["profiles"][0]["unit"] == "bytes"
    top = heap.top(1)[0]
    assert top.filename == __file__ and top.self_samples >= 200 * 1000
    del keep
