"""Every example runs and prints what it says it prints; the embedding C host reports the leak.

Examples are found by glob (examples/*.py), so a new one is tested without editing this file.  Each
runs in a fresh interpreter from a scratch directory (TMPDIR there too, for the files it writes),
must exit 0 without a traceback, and must print a line matching each of its own `# expect: REGEX`
comment lines (Python regular expressions, matched line by line against its standard output)."""

import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

SRCDIR = os.environ.get("LIBLEAK_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDDIR = os.environ.get("LIBLEAK_BUILDDIR")
EXAMPLES = sorted(glob.glob(os.path.join(SRCDIR, "examples", "*.py")))
EXPECT = re.compile(r"^# expect: (.+)$", re.M)
# A server example names the arguments that make it serve once and exit: `# args: --once`.
ARGS = re.compile(r"^# args: (.+)$", re.M)


def expectations(path):
    with open(path) as f:
        return EXPECT.findall(f.read())


def arguments(path):
    with open(path) as f:
        found = ARGS.findall(f.read())
    return found[0].split() if found else []


def test_examples_are_found():
    names = {os.path.basename(p) for p in EXAMPLES}
    assert {"tracer_snapshot_diff.py", "faults_watchdog.py", "census_growth.py", "why_alive.py",
            "classtracker_lifetimes.py", "asizeof_sizes.py", "sampler_flamegraph.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_runs_and_prints_what_it_promises(path, tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    result = subprocess.run([sys.executable, path] + arguments(path), cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback (most recent call last)" not in result.stderr, result.stderr
    for pattern in expectations(path):
        assert re.search(pattern, result.stdout, re.M), "no line matches %r in:\n%s" % (pattern, result.stdout)


def test_expect_lines_are_checked(tmp_path):
    """The `# expect:` reader sees each line (so an example's promises cannot silently go unchecked)."""
    example = tmp_path / "sample.py"
    example.write_text("# expect: ^one$\nprint('one')\n# expect: two \\d+\n")
    assert expectations(str(example)) == ["^one$", "two \\d+"]


# ---- examples/embed: a C host that embeds CPython and uses the C API --------------------------

def check_leak_report(result):
    """The embedding host's output: the census diff, the grown allocation lines and a retention path."""
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    # the census diff names the leaking type and its growth (500 requests, one Session each)
    assert re.search(r"^app\.Session +\d+ +\+500 ", out, re.M), out
    # the allocation line of each session's payload grew, by at least 500 KiB
    sites = out.split("== the allocation lines that grew\n", 1)[1].split("\n\n", 1)[0].splitlines()
    payload = [line for line in sites if line.startswith("app.py:4: ")]
    assert payload, out
    grown = int(re.search(r"\(\+(\d+) B\)", payload[0]).group(1))
    assert grown >= 500 * 1024, out
    # and the retention path goes from the module attribute down to the session
    assert re.search(r"^module app: SESSIONS -> list\[\d+\] -> Session \(\d+ B\)$", out, re.M), out


def run_host(program, **env_extra):
    env = dict(os.environ, PYTHONHOME=sys.base_prefix, **env_extra)
    env.pop("PYTHONPATH", None)  # the host uses no Python code of libleak's
    return subprocess.run([program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=env, timeout=120)


needs_build = pytest.mark.skipif(not BUILDDIR, reason="needs the build tree (LIBLEAK_BUILDDIR, set by make check)")


@needs_build
def test_embedding_host_reports_census_sites_and_retention():
    program = os.path.join(BUILDDIR, "examples", "embed", "leak-report")
    assert os.path.exists(program), "make did not build " + program
    check_leak_report(run_host(program))


@needs_build
def test_embedding_host_builds_with_its_makefile_against_an_installed_libleak(tmp_path):
    """examples/embed/Makefile, as a user runs it: pkg-config libleak and python3-config."""
    python_config = os.path.join(sysconfig.get_config_var("BINDIR"), "python%s-config" % sysconfig.get_config_var("VERSION"))
    if not os.path.exists(python_config):
        pytest.skip("this interpreter has no %s (Debian: apt-get install python3-dev)" % python_config)
    dest = str(tmp_path / "dest")
    subprocess.run(["make", "-s", "-C", BUILDDIR, "install", "DESTDIR=" + dest], check=True, stdout=subprocess.DEVNULL)
    dirs = subprocess.check_output(["make", "-s", "-C", BUILDDIR, "--no-print-directory", "print-install-dirs"])
    libdir = dest + dict(line.split("=", 1) for line in dirs.decode().splitlines() if "=" in line)["libdir"]
    work = str(tmp_path / "embed")
    shutil.copytree(os.path.join(SRCDIR, "examples", "embed"), work,
                    ignore=shutil.ignore_patterns("leak-report", "*.o"))
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"), PKG_CONFIG_SYSROOT_DIR=dest)
    built = subprocess.run(["make", "-C", work, "PYTHON_CONFIG=" + python_config], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert built.returncode == 0, built.stdout
    check_leak_report(run_host(os.path.join(work, "leak-report"),
                               LD_LIBRARY_PATH=libdir + ":" + sysconfig.get_config_var("LIBDIR")))
