"""Tests of libleak.htmlreport: the HTML page made from a run directory of `libleak run`.

The main fixture is a real run directory: a subprocess runs a small leaking program under the
tracer, takes censuses and snapshots, asks why_alive about samples and draws them with Graphviz,
writes the heap and CPU flame graphs and a run.json by the schema.  The page made from it is
checked as text here and, when Chromium is installed, opened in headless Chromium: it must load
without a script error (in the page or in its embedded flame graphs), its flame graph must still
zoom and search, and a screenshot is saved (its path is printed).
"""

import base64
import html
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import libleak
from libleak import htmlreport
from libleak._htmlchart import Series, format_bytes, format_count, legend, line_chart, nice_ticks
from libleak.textreport import holders

# The leaking program (run from a file, so tracebacks name it): a request handler that keeps each session in a module-level dict under a
# key with HTML in it, registers a closure per request, and creates instances of a class whose
# name is HTML too.  It writes the run directory named by argv[1].
MAKE_RUNDIR = r'''
import datetime, json, os, platform, sys, time
import libleak.heap, libleak.refs, libleak.sampler, libleak.tracer

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
t0 = time.monotonic()
libleak.tracer.start(8)

class Session:
    def __init__(self, n):
        self.payload = bytearray(1500)
        self.n = n

Evil = type('<Evil & "Co">', (), {})
SESSIONS = {}
HOOKS = []
EVILS = []

def handle(i):
    SESSIONS["<k%d>" % i] = Session(i)
    HOOKS.append(lambda: i)
    if i % 4 == 0:
        EVILS.append(Evil())

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def sample(census):
    return {"t": round(time.monotonic() - t0, 4), "rss": rss(), "traced": libleak.tracer.get_traced_memory()[0],
            "objects": census.count, "object_bytes": census.size}

def main():
    first_census = libleak.heap.census()
    first_snapshot = libleak.tracer.take_snapshot()
    series, by_type = [sample(first_census)], [first_census.by_type]
    census_lines = [{"t": series[0]["t"], "by_type": {k: list(v) for k, v in first_census.by_type.items()}}]
    for step in range(6):
        for i in range(step * 150, (step + 1) * 150):
            handle(i)
        time.sleep(0.01)
        census = libleak.heap.census()
        series.append(sample(census))
        by_type.append(census.by_type)
        census_lines.append({"t": series[-1]["t"], "by_type": {k: list(v) for k, v in census.by_type.items()}})
    last_snapshot = libleak.tracer.take_snapshot()
    last_census = census

    grown = [row for row in last_census.compare_to(first_census) if row.size_diff > 0][:8]
    types = [{"type_name": row.type_name,
              "counts": [b.get(row.type_name, (0, 0))[0] for b in by_type],
              "sizes": [b.get(row.type_name, (0, 0))[1] for b in by_type]} for row in grown]
    leaks = []
    for n, (name, sample_obj) in enumerate([("__main__.Session", SESSIONS["<k42>"]),
                                             ('__main__.<Evil & "Co">', EVILS[3]),
                                             ("function", HOOKS[7])]):
        row = [r for r in last_census.compare_to(first_census) if r.type_name == name][0]
        retention = libleak.refs.why_alive(sample_obj)
        graph = "retention-%d.svg" % (n + 1)
        libleak.refs.render(retention, os.path.join(out, graph))
        leaks.append({"type_name": name, "count_growth": row.count_diff, "size_growth": row.size_diff,
                      "paths": [str(p) for p in retention.paths], "graph": graph})

    sites = []
    for stat in last_snapshot.compare_to(first_snapshot, "traceback")[:6]:
        sites.append({"size_diff": stat.size_diff, "count_diff": stat.count_diff, "size": stat.size,
                      "count": stat.count, "traceback": [[f.filename, f.lineno] for f in stat.traceback]})
    libleak.sampler.heap_profile(last_snapshot).write(os.path.join(out, "heap.svg"))
    first_snapshot.dump(os.path.join(out, "snapshot-first.llsnap"))
    last_snapshot.dump(os.path.join(out, "snapshot-last.llsnap"))
    libleak.tracer.stop()

    def spin(n):
        total = 0
        for k in range(n):
            total += k * k
        return total

    with libleak.sampler.profile(interval=0.001) as cpu:
        for _ in range(20):
            spin(20000)
    cpu.write(os.path.join(out, "cpu.svg"))
    cpu.write(os.path.join(out, "cpu.collapsed"))
    with open(os.path.join(out, "census.jsonl"), "w") as f:
        for line in census_lines:
            f.write(json.dumps(line) + "\n")

    growth = {"rss": series[-1]["rss"] - series[0]["rss"], "traced": series[-1]["traced"] - series[0]["traced"],
              "object_bytes": series[-1]["object_bytes"] - series[0]["object_bytes"],
              "objects": series[-1]["objects"] - series[0]["objects"]}
    run = {
        "format": "libleak-run", "version": 1,
        "argv": ["leaky_app.py", "--requests", "900", "--name", "<b>bold</b>"],
        "python": platform.python_version(), "pid": os.getpid(), "started": started,
        "duration": round(time.monotonic() - t0, 3), "exit_code": 3,
        "options": {"trace": 8, "sample_bytes": 0, "cpu": 1000, "every": 0.5},
        "series": series, "types": types,
        "verdict": {"kind": "python", "title": "Python objects leak: __main__.Session grows on every request",
                    "text": "Traced Python memory grew by %d bytes while RSS grew by %d bytes: the growth is in "
                            "Python's heap.\n\nSessions are kept in `SESSIONS` under keys like '<k42>'; remove "
                            "them when a request ends." % (growth["traced"], growth["rss"])},
        "growth": growth, "leaks": leaks, "sites": sites,
        "extension_buffers": [{"module": "<none & such>", "size_diff": 4096}],
        "files": {"snapshot_first": "snapshot-first.llsnap", "snapshot_last": "snapshot-last.llsnap",
                  "heap_svg": "heap.svg", "cpu_svg": "cpu.svg", "cpu_pprof": None,
                  "cpu_collapsed": "cpu.collapsed", "census_series": "census.jsonl", "report_html": "report.html"},
    }
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(run, f, indent=1)


main()
print("ok")
'''


@pytest.fixture(scope="module")
def rundir(tmp_path_factory):
    """A run directory made by a real leaking program (see MAKE_RUNDIR)."""
    base = tmp_path_factory.mktemp("run")
    program = base / "leaky_app.py"
    program.write_text(MAKE_RUNDIR, encoding="utf-8")
    path = base / "libleak-leaky_app-1"
    result = subprocess.run([sys.executable, str(program), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    return path


@pytest.fixture(scope="module")
def page(rundir):
    out = htmlreport.write_report(str(rundir))
    assert out == os.path.join(str(rundir), "report.html")
    with open(out, encoding="utf-8") as f:
        return f.read()


def _section(page, anchor):
    """The HTML of the <section id=anchor> of the page (sections do not nest)."""
    match = re.search(r'<section[^>]*\bid="%s"[^>]*>(.*?)</section>' % re.escape(anchor), page, re.S)
    assert match, "no section %r in the page" % anchor
    return match.group(1)


def _write_run(directory, run):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return directory


MINIMAL = {"format": "libleak-run", "version": 1}

# The fields every run has, without any optional part (no tracer, no census types, no files).
PLAIN = {
    "format": "libleak-run", "version": 1, "argv": ["quiet.py"], "python": "3.11.7", "pid": 42,
    "started": "2026-12-03T03:00:00Z", "duration": 2.5, "exit_code": 0,
    "options": {"trace": 0, "sample_bytes": 0, "cpu": 0, "every": 1.0},
    "series": [{"t": 0.0, "rss": 10 << 20, "traced": None, "objects": 50000, "object_bytes": 6 << 20}],
    "verdict": {"kind": "none", "title": "Nothing grew", "text": "RSS and the census stayed flat."},
    "growth": {"rss": 0, "traced": None, "object_bytes": 0, "objects": 0},
}


# ---- the chart and number helpers ---------------------------------------------------------------

def test_sizes_are_1024_based_with_units():
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(20 << 20, sign=True) == "+20.0 MiB"
    assert format_bytes(-(3 << 30)) == "-3.0 GiB"
    assert format_count(1234567, sign=True) == "+1,234,567"
    assert format_count(-5) == "-5"


def test_ticks_are_round_and_cover_the_range():
    ticks = nice_ticks(3, 97)
    assert ticks[0] <= 3 and ticks[-1] >= 97
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1 and steps.pop() in (10, 20, 25, 50)
    assert nice_ticks(5, 5)[0] <= 5 <= nice_ticks(5, 5)[-1]
    with pytest.raises(ValueError):
        nice_ticks(0, float("nan"))


def test_chart_draws_one_escaped_line_per_series_with_titles():
    lines = [Series("<lambda>", [0, 1024, 4096]), Series("dict", [10, None, 30])]
    svg = line_chart([0.0, 1.0, 2.0], lines, unit="bytes", title="t & t", css_id="c1")
    assert svg.count('<g class="series') == 2
    assert "&lt;lambda&gt;" in svg and "<lambda>" not in svg and "t &amp; t" in svg
    # The None in the second series breaks its line in two.
    second = svg.split('data-series="1"')[1]
    assert second.count("<polyline") == 2
    assert "<title>&lt;lambda&gt; at 2.00 s: 4.0 KiB</title>" in svg
    assert re.search(r">\d+(\.\d+)? KiB<", svg)  # axis ticks in 1024-based units
    assert 'data-chart="c1"' in legend(lines, "c1")
    assert line_chart([0.0], [Series("x", [None])]) == ""
    with pytest.raises(ValueError):
        line_chart([0.0, 1.0], [Series("x", [1])])


def test_long_series_are_thinned_but_keep_their_spikes():
    n = 100000
    values = [1000] * n
    values[54321] = 900000  # one spike in the middle
    svg = line_chart([i * 0.1 for i in range(n)], [Series("rss", values)], unit="bytes")
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    assert 100 < len(points) < 5000
    ys = [float(p.split(",")[1]) for p in points]
    top = min(ys)  # SVG y grows downwards: the spike is the smallest y
    assert ys.count(top) == 1 and top < max(ys) - 100
    assert svg.count("<circle") <= 121


# ---- the page from a real run -----------------------------------------------------------------------

def test_page_has_every_part_of_a_full_run(page):
    for anchor in ("verdict", "growth", "memory", "types", "leaks", "sites", "heap", "cpu", "files"):
        _section(page, anchor)
        assert 'href="#%s"' % anchor in page or anchor == "files"
    header = page.split("<main>")[0]
    assert "leaky_app.py --requests 900 --name" in header
    assert "exit code <b>3</b>" in header and 'class="bad"' in header
    assert "tracer: 8 frames" in header and "CPU sampler: 1000 Hz" in header


def test_verdict_is_escaped_prose(page):
    verdict = _section(page, "verdict")
    assert "leak of Python objects" in verdict
    assert "Python objects leak: __main__.Session grows on every request" in verdict
    assert verdict.count("<p>") == 2
    assert "<code>SESSIONS</code>" in verdict and "&#x27;&lt;k42&gt;&#x27;" in verdict


def test_growth_table_shows_the_measures_with_units(page, rundir):
    run = json.loads((rundir / "run.json").read_text())
    growth = _section(page, "growth")
    for name in ("Resident memory (RSS)", "Traced Python memory", "Census: object bytes", "Census: objects"):
        assert name in growth
    assert format_bytes(run["growth"]["traced"], sign=True) in growth
    assert format_count(run["growth"]["objects"], sign=True) in growth
    assert "&lt;none &amp; such&gt;" in growth


def test_type_chart_has_a_line_per_grown_type(page, rundir):
    run = json.loads((rundir / "run.json").read_text())
    types = _section(page, "types")
    names = [t["type_name"] for t in run["types"]]
    assert "__main__.Session" in names
    for chart_id in ("chart-types-size", "chart-types-count"):
        chart = re.search(r'<svg class="chart" id="%s".*?</svg>' % chart_id, types, re.S).group(0)
        assert chart.count('<g class="series') == len(names)
    assert types.count('<li data-series=') == 2 * len(names)
    assert html.escape("__main__.Session") in types


def test_leaks_show_paths_and_safe_inline_graphs(page):
    leaks = _section(page, "leaks")
    assert leaks.count('<article class="leak">') == 3
    assert "__main__.&lt;Evil &amp; &quot;Co&quot;&gt;" in leaks
    assert "SESSIONS -&gt; dict[&#x27;&lt;k42&gt;&#x27;] -&gt; " in leaks
    graphs = re.findall(r'<svg [^>]*class="graphviz".*?</svg>', leaks, re.S)
    assert len(graphs) == 3
    for graph in graphs:
        assert "<script" not in graph and "ns0:" not in graph and "<title>n0</title>" not in graph
    assert "Session" in graphs[0]


def test_held_by_groups_the_leaks_by_their_container(page, rundir):
    # The same grouping as the text report, one row a holder, most bytes first, in the contents too.
    run = json.loads((rundir / "run.json").read_text())
    held = _section(page, "holders")
    rows = re.findall(r'<tr><td class="mono">(.*?)</td><td class="mono">(.*?)</td>', held)
    assert [holder for holder, _ in rows] == [html.escape(h) for h, _, _ in holders(run)]
    by_holder = dict(rows)
    assert by_holder["module __main__: SESSIONS -&gt; dict"] == "__main__.Session"
    assert by_holder["module __main__: HOOKS -&gt; list"] == "function"
    assert html.escape('__main__.<Evil & "Co">') in by_holder["module __main__: EVILS -&gt; list"]
    assert '<a href="#holders">Held by</a>' in page
    assert page.index('id="verdict"') < page.index('id="holders"') < page.index('id="growth"')


def test_no_held_by_without_retention_paths(tmp_path):
    run = dict(PLAIN, leaks=[{"type_name": "T", "count_growth": 1, "size_growth": 1, "paths": [], "graph": "g.svg"}])
    page = htmlreport.render_report(_write_run(tmp_path / "run", run))
    assert 'id="holders"' not in page and "#holders" not in page


def test_sites_show_the_leaking_line_with_its_traceback(page, rundir):
    run = json.loads((rundir / "run.json").read_text())
    sites = _section(page, "sites")
    assert sites.count("<tr>") == len(run["sites"]) + 1
    filename, lineno = run["sites"][0]["traceback"][-1]
    assert "%s:%d" % (html.escape(filename), lineno) in sites
    assert "most recent call last" in sites or len(run["sites"][0]["traceback"]) == 1
    # Lines of the program itself come with their source text.
    ours = [site["traceback"][-1] for site in run["sites"] if site["traceback"][-1][0].endswith("leaky_app.py")]
    assert ours, run["sites"]
    source = (rundir.parent / "leaky_app.py").read_text().splitlines()[ours[0][1] - 1].strip()
    assert '<span class="src">%s</span>' % html.escape(source) in sites


def test_flame_graphs_are_embedded_unchanged(page, rundir):
    for anchor, name in (("heap", "heap.svg"), ("cpu", "cpu.svg")):
        section = _section(page, anchor)
        data = re.search(r'data="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', section).group(1)
        assert base64.b64decode(data) == (rundir / name).read_bytes()


def test_page_is_self_contained_with_unique_ids(page):
    # Nothing from the network: no remote src/href, no @import, no url() outside the page.
    assert not re.search(r'\b(src|href)\s*=\s*"(https?:)?//', page)
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    # User data never appears unescaped.
    assert "<k42>" not in page and "<Evil" not in page and "<b>bold</b>" not in page


def test_links_to_run_files_work_from_another_output_place(rundir, tmp_path):
    out = tmp_path / "elsewhere" / "app.html"
    out.parent.mkdir()
    assert htmlreport.write_report(rundir, out) == str(out)
    text = out.read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"#][^"]*)"', _section(text, "files"))
    assert links and "cpu.pb.gz" not in text
    for link in links:
        assert (out.parent / html.unescape(link)).resolve().is_file(), link
    assert [p.name for p in out.parent.iterdir()] == ["app.html"]  # no temporary file left


# ---- runs with fewer parts, and bad runs --------------------------------------------------------------

def test_minimal_run_has_only_a_header(tmp_path):
    directory = _write_run(tmp_path / "run", MINIMAL)
    text = pathlib.Path(htmlreport.write_report(directory)).read_text(encoding="utf-8")
    assert "(unknown program)" in text
    assert "<section" not in text
    assert "None" not in text.split("<main>")[1] and "null" not in text


def test_run_without_optional_parts_shows_verdict_and_growth_only(tmp_path):
    directory = _write_run(tmp_path / "run", PLAIN)
    text = htmlreport.render_report(directory)
    assert re.findall(r'<section[^>]*id="([^"]+)"', text) == ["verdict", "growth"]
    assert "kind-none" in text and "no leak found" in text
    assert "not traced in this run" in text
    assert "10.0 MiB" in text and "50,000" in text
    assert "None" not in text.split("<main>")[1]
    assert "tracer" not in text.split("<main>")[0]  # options that are off are not listed


def test_missing_or_escaping_files_are_left_out(tmp_path):
    run = dict(PLAIN, series=PLAIN["series"] * 2,
               leaks=[{"type_name": "x.Y", "count_growth": 5, "size_growth": 500, "paths": [], "graph": "../secret.svg"},
                      {"type_name": "x.Z", "count_growth": 1, "size_growth": 10, "paths": ["p"], "graph": "gone.svg"}],
               files={"heap_svg": "/etc/hostname", "cpu_svg": "absent.svg", "report_html": None})
    (tmp_path / "secret.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><text>secret</text></svg>')
    directory = _write_run(tmp_path / "run", run)
    text = htmlreport.render_report(directory)
    assert "secret" not in text and "<object" not in text and "graphviz" not in text
    assert 'id="heap"' not in text and 'id="cpu"' not in text and 'id="files"' not in text
    assert _section(text, "leaks").count('<article class="leak">') == 2


def test_scripts_and_handlers_in_a_graph_are_removed(tmp_path):
    directory = tmp_path / "run"
    run = dict(PLAIN, leaks=[{"type_name": "T", "count_growth": 1, "size_growth": 1, "paths": [], "graph": "g.svg"}])
    _write_run(directory, run)
    (directory / "g.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" onload="alert(1)">'
        '<script>alert(2)</script><g id="node1" class="node" onclick="alert(3)"><title>n0</title>'
        '<a xlink:href="javascript:alert(4)"><text>T</text></a><rect fill="url(#grad)"/>'
        '<style>@import "http://example.com/x.css"; body { display: none }</style>'
        '<rect style="fill: url(http://example.com/p.svg#a)" stroke="url( \'https://example.com/q\')"/>'
        '<image href="http://example.com/i.png"/></g></svg>')
    graph = re.search(r'<svg [^>]*class="graphviz".*?</svg>', htmlreport.render_report(directory), re.S).group(0)
    assert "alert" not in graph and "<script" not in graph and "javascript" not in graph
    assert "example.com" not in graph and "<style" not in graph and "display" not in graph
    assert 'id="g0-node1"' in graph and "url(#g0-grad)" in graph and "<text>T</text>" in graph


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[]", "the top level must be an object"),
    (json.dumps({"format": "memray", "version": 1}).encode(), "'format' must be 'libleak-run'"),
    (json.dumps({"format": "libleak-run", "version": 9}).encode(), "version 9 of the run format"),
    (json.dumps({"format": "libleak-run"}).encode(), "'version' must be an integer"),
    (json.dumps(dict(PLAIN, series=[{"t": 0, "rss": 1}, {"t": 1, "rss": "2 MB"}])).encode(),
     "'series'[1].rss must be a number"),
    (json.dumps(dict(PLAIN, types=[{"type_name": "dict", "counts": [1, 2], "sizes": [1]}])).encode(),
     "'types'[0].counts has 2 values for 1 rows"),
    (json.dumps(dict(PLAIN, sites=[{"traceback": [["a.py", "7"]]}])).encode(),
     "'sites'[0].traceback[0] must be a [filename, lineno] pair"),
    (json.dumps(dict(PLAIN, leaks=[{"count_growth": 1}])).encode(), "'leaks'[0].type_name must be a string"),
])
def test_bad_run_json_is_a_format_error_naming_the_file(tmp_path, content, message):
    directory = tmp_path / "bad run"
    directory.mkdir()
    if content is not None:
        (directory / "run.json").write_bytes(content)
    out = tmp_path / "out.html"
    with pytest.raises(libleak.FormatError) as info:
        htmlreport.write_report(directory, out)
    assert str(directory / "run.json") in str(info.value)
    assert message in str(info.value)
    assert not out.exists()


def test_arguments_that_are_not_paths_are_type_errors(tmp_path):
    with pytest.raises(TypeError):
        htmlreport.write_report(42)
    with pytest.raises(TypeError):
        htmlreport.write_report(str(tmp_path), out_path=3.5)
    with pytest.raises(libleak.FormatError):
        htmlreport.write_report(str(tmp_path / "no such directory"))


# ---- in a browser ---------------------------------------------------------------------------------------

def _browser():
    """Headless Chromium, or a skip (a failure where CI or LIBLEAK_REQUIRE_BROWSER is set)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") or os.environ.get("LIBLEAK_REQUIRE_BROWSER"):
        pytest.fail("no Chromium found (Debian package 'chromium', installed by scripts/deps), and "
                    "CI / LIBLEAK_REQUIRE_BROWSER say the browser test must run")
    pytest.skip("no Chromium found (Debian package 'chromium'): the report is not checked in a browser here")


def _open(browser, page_path, work, screenshot=None, extra=()):
    """Loads page_path in headless Chromium; returns (DOM after load, the page's console lines)."""
    args = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--user-data-dir=%s" % (work / "profile"), "--enable-logging=stderr", "--v=0",
            "--window-size=1280,2400", "--hide-scrollbars", "--dump-dom"]
    if screenshot:
        args.append("--screenshot=%s" % screenshot)
    args += list(extra) + [pathlib.Path(page_path).resolve().as_uri()]
    # The browser gets no LD_PRELOAD: sanitizer builds preload ASan's runtime for the interpreter
    # (tests/python/run-pytest), and Chromium hangs with it.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    env["HOME"] = str(work)
    result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            timeout=90, env=env, cwd=str(work))
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, console


def _page_errors(dom, console):
    """What went wrong in a page: script errors it counted itself (data-js-errors on <html>), a
    load that never finished, and error lines on the console (its frames' included)."""
    errors = []
    root = re.search(r"<html\b[^>]*>", dom)
    attributes = root.group(0) if root else ""
    if 'data-ready="1"' not in attributes:
        errors.append("the page did not finish loading")
    count = re.search(r'data-js-errors="(\d+)"', attributes)
    if count:
        last = re.search(r'data-js-error-last="([^"]*)"', attributes)
        errors.append("%s script error(s), the last: %s" % (count.group(1), html.unescape(last.group(1)) if last else "?"))
    errors += [line for line in console if re.search(r"Uncaught|Error|ERR_|Failed", line)]
    return errors


def _screenshot_path(tmp_path):
    build = os.environ.get("LIBLEAK_BUILDDIR")
    if build and os.path.isdir(build):
        os.makedirs(os.path.join(build, "tests"), exist_ok=True)
        return pathlib.Path(build, "tests", "htmlreport-screenshot.png")  # kept after the run
    return tmp_path / "htmlreport-screenshot.png"


# Added to a copy of the report: clicks a frame of the embedded heap flame graph and runs its search,
# hovers a legend entry of the type chart, then writes what happened into the page (the flame graph is another document: the browser is
# started with web security off so the probe may reach into it).
PROBE = r'''<script>
window.addEventListener('load', function () {
  var out = document.createElement('pre'); out.id = 'probe'; document.body.appendChild(out);
  try {
    var object = document.querySelector('#heap object'), doc = object.contentDocument, win = object.contentWindow;
    var frames = doc.querySelectorAll('g.f'), target = null;
    for (var i = 0; i < frames.length; i++) {
      var w = parseFloat(frames[i].querySelector('rect').getAttribute('width'));
      if (frames[i].getAttribute('data-d') !== '0' && w > 20 && w < 1000) { target = frames[i]; break; }
    }
    var before = parseFloat(target.querySelector('rect').getAttribute('width'));
    target.dispatchEvent(new win.MouseEvent('click', {bubbles: true}));
    var after = parseFloat(target.querySelector('rect').getAttribute('width'));
    win.prompt = function () { return 'heap|leaky|stdin|<string>'; };
    doc.getElementById('search').dispatchEvent(new win.MouseEvent('click', {bubbles: true}));
    var item = document.querySelector('ul.legend[data-chart="chart-types-size"] li[data-series="1"]');
    item.dispatchEvent(new MouseEvent('mouseenter'));
    var chart = document.getElementById('chart-types-size');
    var hot = chart.classList.contains('dim') && chart.querySelector('g.series.hot').getAttribute('data-series');
    out.textContent = 'zoom ' + before + ' -> ' + after + '; matched: ' + doc.getElementById('matched').textContent
      + '; marked: ' + doc.querySelectorAll('g.f.match').length + '; legend: ' + hot;
  } catch (e) { out.textContent = 'probe failed: ' + e; }
});
</script>'''


def test_page_loads_in_chromium_without_errors(rundir, tmp_path, capsys):
    browser = _browser()
    shot = _screenshot_path(tmp_path)
    report = shot.parent / "htmlreport.html"  # kept beside the screenshot, for people to open
    htmlreport.write_report(rundir, report)
    if shot.exists():
        shot.unlink()
    dom, console = _open(browser, report, tmp_path, screenshot=shot)
    assert _page_errors(dom, console) == []
    assert shot.is_file() and shot.stat().st_size > 10000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with capsys.disabled():
        print("\nhtmlreport: screenshot of %s saved to %s" % (report, shot))


def test_flame_graph_zooms_and_searches_and_legend_highlights(rundir, tmp_path):
    browser = _browser()
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(htmlreport.render_report(rundir).replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom, console = _open(browser, probe_page, tmp_path, extra=["--disable-web-security"])
    assert _page_errors(dom, console) == []
    result = html.unescape(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1))
    match = re.match(r"zoom ([\d.]+) -> ([\d.]+); matched: Matched: ([\d.]+)%; marked: (\d+); legend: (\w+)$", result)
    assert match, result
    assert float(match.group(2)) > float(match.group(1))  # the clicked frame now spans the width
    assert float(match.group(3)) > 0 and int(match.group(4)) > 0
    assert match.group(5) == "1"  # hovering legend entry 1 brought line 1 forward


def test_browser_check_catches_a_broken_page(rundir, tmp_path):
    browser = _browser()
    broken = tmp_path / "broken.html"
    broken.write_text(htmlreport.render_report(rundir).replace(
        "</body>", "<script>document.querySelector('#nothing').remove();</script></body>"), encoding="utf-8")
    dom, console = _open(browser, broken, tmp_path)
    errors = _page_errors(dom, console)
    assert any("script error" in e for e in errors), errors
    assert any("Uncaught" in e for e in errors), errors
