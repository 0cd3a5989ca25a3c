"""Jupyter: `%load_ext libleak` and its magics, run in IPython's InteractiveShell (in a child
interpreter each, since a shell takes over __main__, the display hook and builtins), and the
display methods of libleak's results (HTML well-formed as XML, SVG parsed as XML), which need no
IPython at all."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from libleak import heap, refs, sampler, tracer

try:
    import IPython  # noqa: F401

    HAVE_IPYTHON = True
except ImportError:
    HAVE_IPYTHON = False

needs_ipython = pytest.mark.skipif(not HAVE_IPYTHON, reason="IPython is not installed for this interpreter "
                                   "(scripts/deps installs it with pip)")

SVG = "{http://www.w3.org/2000/svg}svg"

# Runs the cells given as JSON on stdin in a fresh InteractiveShell, each one's stdout, stderr, rich
# outputs and success recorded, and prints the records as JSON on the last line.
DRIVER = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
shell = InteractiveShell.instance()
records = []
for cell in json.loads(sys.stdin.read()):
    with capture_output() as captured:
        result = shell.run_cell(cell)
    records.append({"stdout": captured.stdout, "stderr": captured.stderr,
                    "outputs": [dict(o.data) for o in captured.outputs],
                    "success": result.success})
print(json.dumps(records))
"""


def texts(record):
    """Everything a terminal would show for one cell."""
    return record["stdout"] + record["stderr"] + "".join(o.get("text/plain", "") + "\n" for o in record["outputs"])


def parse_svg(text):
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == SVG
    return root


def parse_html(text):
    """libleak's HTML fragments are well-formed XML: parsed inside one element."""
    return ET.fromstring("<div>%s</div>" % text)


LOAD = "%load_ext libleak"
SETUP = "class Blob:\n    pass\nkeep = []"

# What each test runs in the shell: one child interpreter runs them all, one after the other, in
# one shell (each starts with %load_ext, which says it is loaded already after the first).
SCENARIOS = {
    'load_ext_registers_the_magics': [LOAD, "import json\nprint(json.dumps({k: sorted(v) for k, v in "
                                       "get_ipython().magics_manager.magics.items()}))"],
    'leaking_cell_is_reported_with_its_type_and_line': [
        LOAD, SETUP,
        "%%leak_check --runs 6 --warmup 1 --trace -o report\nkeep.append(Blob())\nkeep.append(bytes(1000))",
        "import libleak.tracer\nprint(bool(report), type(report).__name__, libleak.tracer.is_tracing(), "
        "[t.type_name for t in report.types])",
    ],
    'clean_cell_says_no_leak': [LOAD, SETUP, "%%leak_check --runs 5 --warmup 1\nlatest = [Blob() for _ in range(20)]"],
    'why_option_names_the_holder': [LOAD, SETUP, "%%leak_check --runs 5 --warmup 1 --why\nkeep.append(Blob())"],
    'tracer_already_running_is_left_running': [
        LOAD, SETUP, "import libleak.tracer\nlibleak.tracer.start(1)",
        "%%leak_check --runs 5 --warmup 1 --trace\nkeep.append(Blob())",
        "print(libleak.tracer.is_tracing())\nlibleak.tracer.stop()",
    ],
    'bad_options_are_usage_errors': [
        LOAD, "%%leak_check --runs 0\npass", "%%leak_check --bogus\npass", "%census_diff",
        "%heap_profile", "%why_alive -n 0 keep", "%%cpu_profile -o out.txt\npass", "%%cpu_profile --interval -1\npass",
    ],
    'census_diff_after_a_baseline': [
        LOAD, SETUP, "%census_baseline", "made = [Blob() for _ in range(500)]", "%census_diff -n 40",
    ],
    'why_alive_magic_shows_paths_and_a_picture': [LOAD, SETUP, "keep.append(Blob())", "%why_alive keep[0]"],
    'cpu_profile_magic_shows_a_flame_graph': [
        LOAD,
        "def spin(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total",
        "%%cpu_profile --top 5 -o {OUT}\nfor _ in range(40):\n    spin(100000)",
    ],
    'heap_profile_magic': [
        LOAD, "import libleak.tracer\nlibleak.tracer.start(1)", "held = [bytes(5000) for _ in range(200)]",
        "%heap_profile --top 3", "libleak.tracer.stop()",
    ],
}


@pytest.fixture(scope="module")
def shell_runs(tmp_path_factory):
    """The records of every scenario's cells (by scenario name), and "out", the file -o writes."""
    if not HAVE_IPYTHON:
        pytest.skip("IPython is not installed for this interpreter (scripts/deps installs it with pip)")
    out = tmp_path_factory.mktemp("ipython") / "cell.collapsed"
    cells = [cell.replace("{OUT}", str(out)) for scenario in SCENARIOS.values() for cell in scenario]
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(cells), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout.strip().splitlines()[-1])
    runs = {"out": out}
    for name, scenario in SCENARIOS.items():
        runs[name], records = records[:len(scenario)], records[len(scenario):]
    return runs



@needs_ipython
def test_load_ext_registers_the_magics(shell_runs):
    records = shell_runs['load_ext_registers_the_magics']
    assert records[0]["success"], texts(records[0])
    magics = json.loads(records[1]["stdout"])
    assert {"leak_check", "cpu_profile"} <= set(magics["cell"])
    assert {"census_baseline", "census_diff", "why_alive", "heap_profile"} <= set(magics["line"])


@needs_ipython
def test_leaking_cell_is_reported_with_its_type_and_line(shell_runs):
    records = shell_runs['leaking_cell_is_reported_with_its_type_and_line']
    leak = records[2]
    assert leak["success"], texts(leak)
    text = texts(leak)
    assert "__main__.Blob" in text and "bytes" in text
    assert "2 types" in text
    assert "no leak" not in text
    # The growing allocation lines are the cell's own: lines 1 and 2 of its code.
    assert ":1: +" in text and ":2: +1.0 KiB/run" in text, text
    bundle = leak["outputs"][0]
    table = parse_html(bundle["text/html"])
    cells = [td.text for td in table.iter("td")]
    assert "__main__.Blob" in cells and "bytes" in cells
    # -o kept the report; the tracer the magic started is stopped again.
    assert records[3]["stdout"].split()[:3] == ["True", "LeakReport", "False"]
    assert "__main__.Blob" in records[3]["stdout"]


@needs_ipython
def test_clean_cell_says_no_leak(shell_runs):
    records = shell_runs['clean_cell_says_no_leak']
    record = records[2]
    assert record["success"], texts(record)
    assert texts(record).startswith("no leak: nothing grows over 5 runs after 1 warm-up runs"), texts(record)
    assert "no leak" in "".join(parse_html(record["outputs"][0]["text/html"]).itertext())


@needs_ipython
def test_why_option_names_the_holder(shell_runs):
    records = shell_runs['why_option_names_the_holder']
    text = texts(records[2])
    assert "why they are alive:" in text
    assert "__main__.Blob: module __main__: keep -> list[" in text, text


@needs_ipython
def test_tracer_already_running_is_left_running(shell_runs):
    records = shell_runs['tracer_already_running_is_left_running']
    assert "__main__.Blob" in texts(records[3])
    assert records[4]["stdout"].strip() == "True"


@needs_ipython
def test_bad_options_are_usage_errors(shell_runs):
    records = shell_runs['bad_options_are_usage_errors']
    expected = ["--runs must be at least 1", "unrecognized arguments: --bogus", "run %census_baseline first",
                "the tracer is not running", "--paths must be at least 1", "unknown profile suffix",
                "interval must be > 0"]
    for record, message in zip(records[1:], expected):
        assert "UsageError" in texts(record) and message in texts(record), texts(record)


@needs_ipython
def test_census_diff_after_a_baseline(shell_runs):
    records = shell_runs['census_diff_after_a_baseline']
    assert records[2]["stdout"].startswith("census baseline: ")
    diff = records[4]
    text = texts(diff)
    assert "__main__.Blob: count=500 (+500)" in text, text
    table = parse_html(diff["outputs"][0]["text/html"])
    rows = [[td.text for td in tr.iter("td")] for tr in table.iter("tr")]
    assert ["__main__.Blob", "500", "+500"] in [row[:3] for row in rows]


@needs_ipython
def test_why_alive_magic_shows_paths_and_a_picture(shell_runs):
    records = shell_runs['why_alive_magic_shows_paths_and_a_picture']
    record = records[3]
    assert record["success"], texts(record)
    bundle = record["outputs"][0]
    assert bundle["text/plain"].startswith("module __main__: keep -> list[0] -> Blob"), bundle["text/plain"]
    root = parse_svg(bundle["image/svg+xml"])
    labels = "".join(root.itertext())
    assert "Blob" in labels and "keep" in labels


@needs_ipython
def test_cpu_profile_magic_shows_a_flame_graph(shell_runs):
    out = shell_runs["out"]
    records = shell_runs['cpu_profile_magic_shows_a_flame_graph']
    record = records[2]
    assert record["success"], texts(record)
    bundle = record["outputs"][0]
    assert "spin" in bundle["text/plain"]
    root = parse_svg(bundle["image/svg+xml"])
    assert "CPU flame graph" in "".join(root.itertext())
    assert "spin" in out.read_text()


@needs_ipython
def test_heap_profile_magic(shell_runs):
    records = shell_runs['heap_profile_magic']
    bundle = records[3]["outputs"][0]
    assert "bytes" in bundle["text/plain"].splitlines()[0]
    root = parse_svg(bundle["image/svg+xml"])
    assert "Memory flame graph" in "".join(root.itertext())


def test_package_names_the_extension_entry_point():
    import libleak

    assert callable(libleak.load_ipython_extension)


# ---- display methods, without IPython ------------------------------------------------------------


class Held:
    pass


HOLDER = []


def leaky():
    HOLDER.append(Held())


def test_leak_report_html_is_well_formed_and_escaped():
    report = heap.leak_check(leaky, runs=5, warmup=1)
    assert report
    table = parse_html(report._repr_html_())
    cells = [td.text for td in table.iter("td")]
    assert __name__ + ".Held" in cells
    clean = heap.leak_check(lambda: None, runs=3, warmup=1)
    assert "no leak" in "".join(parse_html(clean._repr_html_()).itertext())
    # Names are escaped: a type name with markup in it stays text.
    from libleak._display import census_diff_html

    row = heap.CensusDiff("<b>&", 1, 1, 10, 10)
    assert "<b>&" in [td.text for td in parse_html(census_diff_html([row])).iter("td")]


def test_census_diff_row_html():
    row = heap.CensusDiff("app.Session", 3, 2, 300, 200)
    cells = [td.text for td in parse_html(row._repr_html_()).iter("td")]
    assert cells == ["app.Session", "3", "+2", "300 B", "+200 B"]


def test_profile_and_heap_profile_svg():
    frames = (("main", "app.py", 10), ("work", "app.py", 4))
    raw = ((("samples", "count"),), ("cpu", "nanoseconds", 1000000), 10 ** 9, frames, ((7, "main"),),
           ((0, (1, 0), (3,)),))
    root = parse_svg(sampler.Profile(raw)._repr_svg_())
    text = "".join(root.itertext())
    assert "CPU flame graph: 3 samples" in text and "work" in text
    # Static: the file's script measures the document it is in, which inline in a notebook's page
    # is the page; the frames keep the places and widths the writer gave them.
    assert root.find(".//{http://www.w3.org/2000/svg}script") is None
    widths = [float(rect.get("width")) for rect in root.iter("{http://www.w3.org/2000/svg}rect")]
    assert len(widths) >= 4 and all(width > 0 for width in widths)
    started = not tracer.is_tracing()
    if started:
        tracer.start(1)
    try:
        kept = [bytes(4096) for _ in range(50)]
        snapshot = tracer.take_snapshot()
    finally:
        if started:
            tracer.stop()
    root = parse_svg(sampler.heap_profile(snapshot)._repr_svg_())
    assert "Memory flame graph" in "".join(root.itertext())
    del kept


def test_retention_svg():
    held = Held()
    HOLDER.append(held)
    try:
        retention = refs.why_alive(held)
        root = parse_svg(retention._repr_svg_())
        assert "Held" in "".join(root.itertext())
        parse_svg(retention.paths[0]._repr_svg_())
    finally:
        HOLDER.remove(held)


SRCDIR = os.path.abspath(os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")))


@needs_ipython
def test_notebook_example_runs(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(SRCDIR, "examples", "notebook_leak_check.py")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, cwd=str(tmp_path),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "__main__.Session" in done.stdout and "no leak: nothing grows" in done.stdout
    assert "module __main__: SESSIONS -> list[" in done.stdout, done.stdout
