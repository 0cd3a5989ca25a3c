"""libleak.autostart through libleak.pth: each LIBLEAK_* variable at interpreter start, and bad
values that must cost one line on stderr and never the program's start."""

import os
import signal
import subprocess
import sys

import pytest

VARIABLES = ("LIBLEAK_TRACE", "LIBLEAK_SAMPLE_BYTES", "LIBLEAK_FAULTS", "LIBLEAK_DUMP_SIGNAL", "LIBLEAK_DIR")


def pth_site(tmp_path):
    """Environment for a child whose user site-packages (under tmp_path) holds libleak.pth, with
    none of libleak's variables inherited from the test run."""
    version = "python%d.%d" % sys.version_info[:2]
    site_dir = tmp_path / "userbase" / "lib" / version / "site-packages"
    site_dir.mkdir(parents=True)
    srcdir = os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(srcdir, "pybind", "libleak.pth")) as source:
        site_dir.joinpath("libleak.pth").write_text(source.read())
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update({"PYTHONUSERBASE": str(tmp_path / "userbase"), "PYTHONNOUSERSITE": ""})
    return env


def run(source, env, cwd=None):
    return subprocess.run([sys.executable, "-c", source], env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


def libleak_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("libleak:")]


def test_nothing_is_imported_without_the_variables(tmp_path):
    env = pth_site(tmp_path)
    probe = "import sys; print('libleak' in sys.modules, 'libleak.autostart' in sys.modules)"
    result = run(probe, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
    # Set but empty, and LIBLEAK_DIR alone (it only says where dumps go): still nothing.
    env.update({"LIBLEAK_TRACE": "", "LIBLEAK_FAULTS": "", "LIBLEAK_DUMP_SIGNAL": "", "LIBLEAK_DIR": str(tmp_path)})
    result = run(probe, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
    assert result.stderr == ""


def test_the_pth_is_read_at_start(tmp_path):
    # The test above passes trivially if the .pth is never read: prove it is, from the same site.
    env = pth_site(tmp_path)
    env["LIBLEAK_FAULTS"] = "1"
    result = run("import sys; print('libleak.autostart' in sys.modules)", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_libleak_trace_starts_the_tracer(tmp_path):
    env = pth_site(tmp_path)
    env["LIBLEAK_TRACE"] = "7"
    result = run("import libleak.tracer as t; print(t.is_tracing(), t.get_traceback_limit())", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "7"]
    assert result.stderr == ""


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_libleak_faults_enables_the_fatal_signal_dumps(tmp_path, value):
    env = pth_site(tmp_path)
    env["LIBLEAK_FAULTS"] = value
    result = run("import libleak.faults as f; print(f.is_enabled())", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert result.stderr == ""


def test_libleak_faults_reports_a_crash(tmp_path):
    env = pth_site(tmp_path)
    env["LIBLEAK_FAULTS"] = "1"
    source = "def crash():\n    from libleak import _libleak\n    _libleak._test_crash('segv')\ncrash()\n"
    result = run(source, env)
    assert result.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in result.stderr
    assert 'line 3 in crash' in result.stderr


def test_libleak_faults_off_values(tmp_path):
    env = pth_site(tmp_path)
    env["LIBLEAK_FAULTS"] = "0"
    result = run("import libleak.faults as f; print(f.is_enabled())", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert result.stderr == ""


@pytest.mark.parametrize("variable,value", [
    ("LIBLEAK_FAULTS", "maybe"),
    ("LIBLEAK_TRACE", "lots"),
    ("LIBLEAK_DUMP_SIGNAL", "SIGNOPE"),
    ("LIBLEAK_DUMP_SIGNAL", "0"),
    ("LIBLEAK_DUMP_SIGNAL", "100000"),
    ("LIBLEAK_DUMP_SIGNAL", "SIGKILL"),
    ("LIBLEAK_DUMP_SIGNAL", "segv"),
    ("LIBLEAK_DUMP_SIGNAL", "SIG_DFL"),
])
def test_a_bad_value_is_one_line_and_the_program_runs(tmp_path, variable, value):
    env = pth_site(tmp_path)
    env[variable] = value
    source = ("import libleak.faults, libleak.ondemand, libleak.tracer\n"
              "print('running', libleak.faults.is_enabled(), libleak.ondemand.installed_signal(), libleak.tracer.is_tracing())\n")
    result = run(source, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["running", "False", "None", "False"]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("libleak: ignoring %s" % variable), lines
    assert repr(value) in lines[0] or variable == "LIBLEAK_TRACE", lines


@pytest.mark.parametrize("value", ["SIGUSR2", "USR2", "usr2", str(int(signal.SIGUSR2))])
def test_libleak_dump_signal_spellings(tmp_path, value):
    env = pth_site(tmp_path)
    env["LIBLEAK_DUMP_SIGNAL"] = value
    env["LIBLEAK_DIR"] = str(tmp_path / "dumps")
    result = run("import libleak.ondemand as o; print(o.installed_signal())", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(int(signal.SIGUSR2))
    assert result.stderr == ""
    assert (tmp_path / "dumps").is_dir()  # made when missing


def test_libleak_dump_signal_writes_into_libleak_dir(tmp_path):
    env = pth_site(tmp_path)
    env["LIBLEAK_DUMP_SIGNAL"] = "USR1"
    env["LIBLEAK_DIR"] = str(tmp_path / "dumps")
    source = ("import os, signal, threading, sys\n"
              "def wait_for_the_dump():\n"
              "    os.kill(os.getpid(), signal.SIGUSR1)\n"
              "    import libleak.ondemand as o\n"
              "    o.uninstall()  # joins the dump thread, so the dump is complete\n"
              "wait_for_the_dump()\n")
    result = run(source, env)
    assert result.returncode == 0, result.stderr
    written = sorted(os.listdir(str(tmp_path / "dumps")))
    assert any(name.endswith("-stacks.txt") for name in written), (written, result.stderr)
    assert all(name.startswith("libleak-%s-" % name.split("-")[1]) for name in written)


def test_default_dump_directory_is_the_start_directory(tmp_path):
    env = pth_site(tmp_path)
    env["LIBLEAK_DUMP_SIGNAL"] = "USR2"
    start = tmp_path / "start"
    start.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = ("import os\n"
              "os.chdir(%r)\n"
              "import libleak.ondemand as o\n"
              "print(o.dump()[0])\n" % str(elsewhere))
    result = run(source, env, cwd=str(start))
    assert result.returncode == 0, result.stderr
    assert os.path.dirname(result.stdout.strip()) == str(start)
    assert os.listdir(str(elsewhere)) == []


def test_an_unusable_libleak_dir_is_one_line(tmp_path):
    env = pth_site(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env["LIBLEAK_DUMP_SIGNAL"] = "USR2"
    env["LIBLEAK_DIR"] = str(blocker / "dumps")
    result = run("import libleak.ondemand as o; print('running', o.installed_signal())", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["running", "None"]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("libleak: ignoring LIBLEAK_DUMP_SIGNAL"), result.stderr
    assert "LIBLEAK_DIR" in lines[0]


def test_every_variable_at_once(tmp_path):
    env = pth_site(tmp_path)
    env.update({"LIBLEAK_TRACE": "3", "LIBLEAK_FAULTS": "1", "LIBLEAK_DUMP_SIGNAL": "SIGUSR2",
                "LIBLEAK_DIR": str(tmp_path)})
    source = ("import libleak.faults, libleak.ondemand, libleak.tracer\n"
              "print(libleak.tracer.get_traceback_limit(), libleak.faults.is_enabled(), libleak.ondemand.installed_signal())\n")
    result = run(source, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "True", str(int(signal.SIGUSR2))]


def test_start_is_a_noop_on_an_empty_environment(python):
    result = python("import libleak.autostart, sys; libleak.autostart.start({}); "
                    "print(sorted(m for m in sys.modules if m.startswith('libleak.')))")
    assert result.returncode == 0, result.stderr
    modules = eval(result.stdout)
    assert "libleak.ondemand" not in modules and "libleak.faults" not in modules
