"""The `libleak` command line: `run` runs a program as python would (output, exit status, argv,
sys.path, tracebacks its own), writes the run directory and prints the report on stderr; `report`
prints it again or reads snapshots; every error is one line and a non-zero status."""

import json
import os
import pty
import re
import subprocess
import sys
import textwrap

import pytest

BUILDDIR = os.environ.get("LIBLEAK_BUILDDIR")


def libleak(*args, cwd=None, timeout=120, stderr=subprocess.PIPE):
    """Runs `python -m libleak ARGS` with the interpreter of the tests; text output."""
    return subprocess.run([sys.executable, "-m", "libleak"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                          stderr=stderr, universal_newlines=True, timeout=timeout)


def write(path, source):
    path.write_text(textwrap.dedent(source))
    return str(path)


def one_error_line(result, pattern, status=2):
    """The command failed with `status` and said why in one line `libleak: error: ...`."""
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("libleak: error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One traced run of a small program with arguments and exit status 3, reused by the tests
    that read its run directory."""
    folder = tmp_path_factory.mktemp("run")
    script = write(folder / "prog.py", """
        import os, sys, time
        print("argv", sys.argv)
        print("name", __name__)
        print("path0", sys.path[0])
        print("file", __file__)
        KEEP = []
        for i in range(10):
            KEEP.append(bytearray(100000))
            time.sleep(0.06)
        sys.exit(3)
    """)
    outdir = str(folder / "out")
    result = libleak("run", "--trace=4", "--every", "0.1", "-o", outdir, script, "one", "--two", cwd=str(folder))
    return folder, script, outdir, result


def test_run_keeps_the_programs_output_arguments_and_exit_status(finished_run):
    folder, script, outdir, result = finished_run
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == [
        "argv %r" % [script, "one", "--two"],
        "name __main__",
        "path0 %s" % os.path.dirname(os.path.realpath(script)),
        "file %s" % os.path.abspath(script),
    ]
    assert "libleak: %s one --two ran" % script in result.stderr
    assert "(exit code 3)" in result.stderr
    assert "\nVerdict: " in result.stderr
    assert "Results in %s: run.json" % outdir in result.stderr


def test_run_directory_follows_the_format(finished_run):
    folder, script, outdir, result = finished_run
    with open(os.path.join(outdir, "run.json")) as stream:
        run = json.load(stream)
    assert run["format"] == "libleak-run" and run["version"] == 1
    assert run["argv"] == [script, "one", "--two"]
    assert run["exit_code"] == 3 and run["pid"] > 0 and run["duration"] > 0.2
    assert run["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", run["started"])
    assert run["options"] == {"trace": 4, "sample_bytes": 0, "cpu": 0, "every": 0.1}
    series = run["series"]
    assert len(series) >= 4
    assert [row["t"] for row in series] == sorted(row["t"] for row in series)
    for row in series:
        assert row["rss"] > 0 and row["traced"] > 0 and row["objects"] > 0 and row["object_bytes"] > 0
    assert run["verdict"]["kind"] in ("python", "native", "fragmentation", "none")
    assert set(run["growth"]) == {"rss", "traced", "object_bytes", "objects"}
    for entry in run["types"]:
        assert len(entry["counts"]) == len(series) == len(entry["sizes"])
    # The bytearrays kept in KEEP grow: the type, why they are alive, where they were made.
    (leak,) = [leak for leak in run["leaks"] if leak["type_name"] == "bytearray"]
    assert leak["count_growth"] >= 3 and leak["size_growth"] >= 300000
    assert any(path.startswith("module prog: KEEP -> list[") for path in leak["paths"]), leak
    assert leak["allocated"][-1] == [os.path.abspath(script), 9]
    assert leak["graph"] and open(os.path.join(outdir, leak["graph"])).read().lstrip().startswith("<?xml")
    site = run["sites"][0]
    assert site["traceback"][-1] == [os.path.abspath(script), 9] and site["size_diff"] >= 300000
    files = run["files"]
    for key in ("snapshot_first", "snapshot_last", "heap_svg", "census_series"):
        assert os.path.isfile(os.path.join(outdir, files[key])), key
    with open(os.path.join(outdir, "census.jsonl")) as stream:
        lines = [json.loads(line) for line in stream]
    assert len(lines) == len(series)
    assert all(isinstance(line["by_type"]["list"], list) for line in lines)


def test_report_prints_a_run_again(finished_run):
    folder, script, outdir, result = finished_run
    for target in (outdir, os.path.join(outdir, "run.json")):
        again = libleak("report", target, cwd=str(folder))
        assert again.returncode == 0, again.stderr
        assert again.stdout.split("\nResults in")[0] == result.stderr.split("\nResults in")[0]


def test_report_of_one_and_two_snapshots(finished_run):
    folder, script, outdir, result = finished_run
    first, last = os.path.join(outdir, "snapshot-first.llsnap"), os.path.join(outdir, "snapshot-last.llsnap")
    one = libleak("report", last)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("Top ") and "#1: " in one.stdout
    assert "prog.py:9: size=" in one.stdout
    two = libleak("report", first, last)
    assert two.returncode == 0, two.stderr
    assert two.stdout.startswith("Top ") and "compared to %s" % first in two.stdout
    assert re.search(r"prog\.py:9: size=\S+ \S+ \(\+", two.stdout), two.stdout


def test_report_html_is_written(finished_run, tmp_path):
    folder, script, outdir, result = finished_run
    assert os.path.getsize(os.path.join(outdir, "report.html")) > 0  # run writes it
    out = str(tmp_path / "r.html")
    made = libleak("report", outdir, "--html", out)
    assert made.returncode == 0, made.stderr
    with open(out) as page:
        text = page.read()
    assert text.startswith("<!DOCTYPE html>") and "prog.py" in text


def test_report_errors(finished_run, tmp_path):
    folder, script, outdir, result = finished_run
    bad = tmp_path / "bad.llsnap"
    bad.write_bytes(b"not a snapshot at all")
    one_error_line(libleak("report", str(bad)), re.escape(str(bad)) + ": ")
    one_error_line(libleak("report", str(tmp_path / "missing.llsnap")), "missing.llsnap: No such file")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{\"format\": \"something else\"}")
    one_error_line(libleak("report", str(broken)), "broken: not a libleak run")
    one_error_line(libleak("report", str(tmp_path / "nowhere")), "nowhere: No such file")
    (broken / "run.json").write_text(json.dumps({"format": "libleak-run", "version": 1, "series": [{"t": 0}],
                                                 "verdict": {}, "leaks": [], "sites": []}))
    one_error_line(libleak("report", str(broken / "run.json")), "run.json: not a complete libleak run")
    (broken / "run.json").write_text("{ not json")
    one_error_line(libleak("report", str(broken)), "broken: not a libleak run")
    one_error_line(libleak("report"), "needs a run directory or snapshot files")
    snap = os.path.join(outdir, "snapshot-last.llsnap")
    one_error_line(libleak("report", snap, snap, snap), "at most two snapshot files")
    one_error_line(libleak("report", snap, "--html", str(tmp_path / "x.html")), "--html needs a run directory")
    one_error_line(libleak("report", outdir, snap), "one run directory")
    one_error_line(libleak("report", "--bogus"), "unrecognized arguments|--bogus")


def test_run_module_as_python_dash_m(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(package / "tool.py", """
        import sys
        print(__name__, __package__, sys.argv[1:], sys.path[0])
        print(sys.argv[0])
    """)
    result = libleak("run", "--every", "5", "-o", str(tmp_path / "out"), "-m", "pkg.tool", "a", "-b",
                     cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "__main__ pkg ['a', '-b'] %s" % str(tmp_path)
    assert lines[1] == str(package / "tool.py")
    with open(str(tmp_path / "out" / "run.json")) as stream:
        run = json.load(stream)
    assert run["argv"] == [str(package / "tool.py"), "a", "-b"] and len(run["series"]) == 2


def test_uncaught_exception_prints_pythons_traceback(tmp_path):
    script = write(tmp_path / "boom.py", """
        def fail():
            raise ValueError("boom")
        fail()
    """)
    result = libleak("run", "-o", str(tmp_path / "out"), script, cwd=str(tmp_path))
    assert result.returncode == 1
    traceback = result.stderr.split("\nlibleak: ")[0]
    # 3.11+ underline parts of a line with ^ and ~: those lines are left out here.
    assert [line for line in traceback.splitlines() if line.strip(" ^~")] == [
        "Traceback (most recent call last):",
        '  File "%s", line 4, in <module>' % os.path.abspath(script),
        "    fail()",
        '  File "%s", line 3, in fail' % os.path.abspath(script),
        '    raise ValueError("boom")',
        "ValueError: boom",
    ], traceback
    assert "(exit code 1)" in result.stderr


def test_sys_exit_with_a_message_and_none(tmp_path):
    script = write(tmp_path / "bye.py", "import sys\nsys.exit('bye now')\n")
    result = libleak("run", "-o", str(tmp_path / "a"), script)
    assert result.returncode == 1 and result.stderr.startswith("bye now\n"), result.stderr
    script = write(tmp_path / "ok.py", "import sys\nsys.exit()\n")
    assert libleak("run", "-o", str(tmp_path / "b"), script).returncode == 0


def test_keyboard_interrupt_ends_the_process_as_python_does(tmp_path):
    script = write(tmp_path / "ctrlc.py", """
        import atexit
        atexit.register(print, "atexit ran")
        raise KeyboardInterrupt
    """)
    result = libleak("run", "-o", str(tmp_path / "out"), script)
    assert result.returncode == -2, (result.returncode, result.stderr)  # killed by SIGINT
    assert "KeyboardInterrupt" in result.stderr and "(exit code 130)" in result.stderr
    assert result.stdout == "atexit ran\n"
    with open(str(tmp_path / "out" / "run.json")) as stream:
        assert json.load(stream)["exit_code"] == 130


def test_syntax_error_is_the_programs(tmp_path):
    script = write(tmp_path / "bad.py", "def (:\n")
    result = libleak("run", "-o", str(tmp_path / "out"), script)
    assert result.returncode == 1
    assert "SyntaxError" in result.stderr and "cli.py" not in result.stderr


def test_cpu_and_sampled_tracing_options(tmp_path):
    script = write(tmp_path / "busy.py", """
        import time
        end = time.process_time() + 0.4
        n = 0
        while time.process_time() < end:
            n += sum(range(1000))
    """)
    outdir = str(tmp_path / "out")
    result = libleak("run", "--cpu=200", "--sample-bytes", "4096", "--every=0.1", "-o" + outdir, script)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(outdir, "run.json")) as stream:
        run = json.load(stream)
    assert run["options"] == {"trace": 16, "sample_bytes": 4096, "cpu": 200, "every": 0.1}
    for key in ("cpu_svg", "cpu_pprof", "cpu_collapsed", "snapshot_last"):
        assert os.path.getsize(os.path.join(outdir, run["files"][key])) > 0, key
    with open(os.path.join(outdir, "cpu.collapsed")) as stream:
        assert "busy.py" in stream.read()


def test_default_run_directory_is_named_after_the_script(tmp_path):
    script = write(tmp_path / "tiny.py", "x = 1\n")
    result = libleak("run", script, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    (made,) = [name for name in os.listdir(str(tmp_path)) if name.startswith("libleak-")]
    assert re.match(r"libleak-tiny-\d+$", made)
    assert os.path.isfile(str(tmp_path / made / "run.json"))
    assert "Traced" not in result.stderr and "traced         (not traced: run with --trace)" in result.stderr


def test_run_errors_are_one_line(tmp_path):
    script = write(tmp_path / "fine.py", "print('ran')\n")
    one_error_line(libleak("run", str(tmp_path / "missing.py")), "can't open file .*missing.py.*No such file")
    one_error_line(libleak("run", "--bogus", script), "unknown option --bogus")
    one_error_line(libleak("run", "--trace=x", script), "--trace expects a whole number")
    one_error_line(libleak("run", "--trace=0", script), "--trace expects a number above 0")
    one_error_line(libleak("run", "--cpu=-5", script), "--cpu expects a number above 0")
    one_error_line(libleak("run", "--every", "0", script), "--every expects a number of seconds above 0")
    one_error_line(libleak("run", "--every", "soon", script), "--every expects a number of seconds")
    one_error_line(libleak("run", "--sample-bytes"), "--sample-bytes expects a value")
    one_error_line(libleak("run"), "run needs a script or -m module")
    one_error_line(libleak("run", "--trace"), "run needs a script or -m module")
    one_error_line(libleak("run", str(tmp_path)), "is a directory")
    one_error_line(libleak("run", "-m", "no_such_module_here_at_all"), "No module named", status=1)
    one_error_line(libleak("frobnicate"), "unknown command 'frobnicate'")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = libleak("run", "-o", str(blocker / "sub"), script)
    one_error_line(result, "cannot create the run directory")
    assert result.stdout == ""  # the program never ran
    one_error_line(libleak("run", "-o", str(blocker), script), "not a directory")


def test_options_after_the_script_are_the_programs(tmp_path):
    script = write(tmp_path / "args.py", "import sys\nprint(sys.argv[1:])\n")
    result = libleak("run", "-o", str(tmp_path / "out"), "--", script, "--trace", "-o", "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "['--trace', '-o', 'x']\n"
    with open(str(tmp_path / "out" / "run.json")) as stream:
        assert json.load(stream)["options"]["trace"] == 0


def test_help_and_version():
    for args in (["--help"], ["run", "--help"], ["report", "--help"]):
        result = libleak(*args)
        assert result.returncode == 0 and result.stdout.startswith("usage: libleak "), result.stdout
    assert "--sample-bytes N" in libleak("run", "-h").stdout
    version = libleak("--version")
    assert version.returncode == 0 and re.match(r"libleak \d+\.\d+", version.stdout)
    bare = libleak()
    assert bare.returncode == 2 and bare.stderr.startswith("usage: libleak run")


def test_progress_only_on_a_terminal(tmp_path):
    script = write(tmp_path / "quick.py", "x = [1]\n")
    quiet = libleak("run", "-o", str(tmp_path / "a"), script)
    assert "\r" not in quiet.stderr and "last sample point..." not in quiet.stderr
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "libleak", "run", "-o", str(tmp_path / "b"), script],
                                   stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(timeout=120) == 0
    finally:
        os.close(master)
    shown = b"".join(chunks).decode()
    assert "\rlibleak: last sample point..." in shown and "Verdict: " in shown


@pytest.mark.skipif(not BUILDDIR, reason="needs LIBLEAK_BUILDDIR (run through make check)")
def test_console_script(tmp_path):
    """The `libleak` script `make install` installs, as built for this interpreter."""
    command = os.path.join(BUILDDIR, "pybind", "command", "libleak")
    with open(command) as stream:
        shebang = stream.readline().strip()
    assert shebang.startswith("#!"), shebang
    # The configured interpreter (a path, or a pyenv shim that resolves to it) is this one.
    ran = subprocess.run([shebang[2:], "-c", "import sys; print(sys.version)"], stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=60)
    assert ran.stdout.strip() == sys.version
    script = write(tmp_path / "hello.py", "print('hello')\n")
    result = subprocess.run([command, "run", "-o", str(tmp_path / "out"), script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n" and "Verdict: too short to judge" in result.stderr
