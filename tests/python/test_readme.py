"""The README's commands run, from a checkout in a folder named `libleak`, the folder a plain
`git clone` of this repository creates: the checkout is copied there and built with the README's
"Building by hand" commands, every ```python block executes against that build with the copy as its
working directory, the ```c host compiles against it and runs, and the stack dumper's tests run from
the copy.  A README that drifts from the API fails here, and so does a test that matches on where
the tree lives (a path with `libleak` in it once made test_faults.py fail)."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

SRCDIR = os.path.abspath(os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")))

# What a copy of a checkout that is not a git repository leaves out: build products and caches.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", "build", "build-*", "pystage", "pystage.stamp", ".libs", ".deps", "autom4te.cache", "__pycache__",
    ".pytest_cache", "*.o", "*.lo", "*.la", "*.so", "config.status", "config.log", "libtool", "stamp-h1",
)


def readme():
    with open(os.path.join(SRCDIR, "README.md")) as f:
        return f.read()


def snippets(language):
    return re.findall(r"```%s\n(.*?)```" % language, readme(), re.S)


def copy_checkout(source, dest):
    """Copies what a clone of `source` would hold, with its uncommitted changes, to `dest`: the files
    git tracks or would track, or (not a git checkout) every file but build products."""
    listed = subprocess.run(["git", "-C", source, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if listed.returncode != 0:
        shutil.copytree(source, dest, ignore=NOT_SOURCE)
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        path = os.path.join(source, name)
        if not os.path.isfile(path):  # deleted in the work tree, not yet committed
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        shutil.copy2(path, os.path.join(dest, name))


def build_commands():
    """The README's "Building by hand" block, checked, as the commands this test runs: the
    interpreter running the tests instead of /usr/bin/python3, and `make` alone (the suite that
    `make check` would run is the one running now)."""
    (block,) = [s for s in snippets("sh") if "autoreconf" in s]
    assert "autoreconf -fi" in block and "./configure --with-python=" in block and "\nmake " in block, block
    return [["autoreconf", "-fi"], ["./configure", "-q", "--with-python=" + sys.executable], ["make", "-s", "-j2"]]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The checkout copied to <tmp>/x/libleak and built there, once for this module."""
    dest = str(tmp_path_factory.mktemp("x") / "libleak")
    copy_checkout(SRCDIR, dest)
    # The tools of the build must not inherit a sanitizer runtime preloaded into the interpreter.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MAKEFLAGS", "MFLAGS")}
    for command in build_commands():
        result = subprocess.run(command, cwd=dest, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=900)
        assert result.returncode == 0, "%s failed:\n%s" % (" ".join(command), result.stdout.decode()[-4000:])
    return dest


def clone_env(clone, **extra):
    env = dict(os.environ, PYTHONPATH=os.path.join(clone, "pystage"), LIBLEAK_SRCDIR=clone, LIBLEAK_BUILDDIR=clone)
    env.update(extra)
    return env


def test_the_copy_lives_in_a_folder_named_libleak(clone):
    assert os.path.basename(clone) == "libleak"
    assert os.path.isfile(os.path.join(clone, "pystage", "libleak", "faults.py"))


@pytest.mark.parametrize("index", range(len(snippets("python"))))
def test_python_snippet_runs(index, clone):
    source = snippets("python")[index]
    result = subprocess.run([sys.executable, "-c", source], cwd=clone, env=clone_env(clone), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=120)
    assert result.returncode == 0, source + "\n----\n" + result.stdout.decode()


def test_c_snippet_compiles_and_runs(clone, tmp_path):
    (source,) = snippets("c")
    (tmp_path / "host.c").write_text(source)
    exe = str(tmp_path / "host")
    libs = os.path.join(clone, ".libs")
    subprocess.run(
        ["cc", "-o", exe, str(tmp_path / "host.c"), "-I" + os.path.join(clone, "include"),
         "-I" + sysconfig.get_paths()["include"], "-L" + libs, "-lleak",
         "-L" + sysconfig.get_config_var("LIBDIR"), "-lpython" + sysconfig.get_config_var("LDVERSION")],
        check=True)
    env = dict(os.environ, LD_LIBRARY_PATH=libs + ":" + sysconfig.get_config_var("LIBDIR"),
               PYTHONHOME=sys.base_prefix)
    result = subprocess.run([exe], cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=60)
    assert result.returncode == 0, result.stdout.decode()
    assert "most recent call first" in result.stdout.decode()
    assert re.search(r"^dict +\d+ +\+1000 ", result.stdout.decode(), re.M), result.stdout.decode()


def test_faults_tests_pass_from_the_copy(clone):
    """test_faults.py compares the frames of its own dumps with libleak's files: from a path with
    `libleak` in it, as here, a check on words of the path would fail."""
    tests = os.path.join(clone, "tests", "python", "test_faults.py")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests], cwd=clone,
                            env=clone_env(clone), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert result.returncode == 0, result.stdout.decode()[-6000:]


def default_python():
    """The interpreter `python3` runs here (the one the README's commands use without --python)."""
    found = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"], stdout=subprocess.PIPE,
                           universal_newlines=True)
    return os.path.realpath(found.stdout.strip()) if found.returncode == 0 else None


def test_the_demo_command_names_the_three_leaks(tmp_path):
    """The README's first command, ./scripts/demo, from a fresh copy: it builds libleak and hunts the
    planted leaks of examples/leaky_server.py.  It runs for the python3 on PATH, so it is checked in
    that interpreter's run of the suite."""
    if default_python() != os.path.realpath(sys.executable):
        pytest.skip("./scripts/demo runs with the python3 on PATH (%s); checked in its run" % default_python())
    dest = str(tmp_path / "demo" / "libleak")
    copy_checkout(SRCDIR, dest)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MAKEFLAGS", "MFLAGS", "PYTHONPATH")}
    result = subprocess.run(["./scripts/demo"], cwd=dest, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=1500)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    held = result.stderr.split("Held by (")[1].split("\n\n")[0]
    for holder in ("module leaky_server: _CACHE -> dict", "module leaky_server: HOOKS -> list",
                   "Logger.handlers -> list"):
        assert holder in held, result.stderr[-6000:]
    assert "Verdict: Python objects leak" in result.stderr
