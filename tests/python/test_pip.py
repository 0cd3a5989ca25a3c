"""`pip install .` works: a copy of the tree installs into a fresh virtual environment of the
interpreter running the tests, and the installed package traces, counts and explains from there.

pip builds with build isolation, so it fetches setuptools from the package index (a CI machine has
network; pip's cache makes later runs quick).  The venv and the install are made once per session.
The checks of scripts/pipbuild.py's reading of Makefile.am and configure.ac need no venv."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest

SRCDIR = os.environ.get("LIBLEAK_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_pipbuild():
    spec = importlib.util.spec_from_file_location("pipbuild", os.path.join(SRCDIR, "scripts", "pipbuild.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pipbuild = load_pipbuild()


def clean_env(**extra):
    """The environment for the venv's programs: nothing that points Python at the build tree, and
    no sanitizer runtime preloaded into compilers (make check sets both)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "LD_PRELOAD", "LIBLEAK_PRELOAD", "PYTHONSTARTUP")
           and not k.startswith("LIBLEAK_")}
    env.update(extra)
    return env


def copy_tree(dest):
    """A copy of the source tree as a fresh checkout holds it: no build products, no git metadata."""
    patterns = shutil.ignore_patterns(".git", "pystage", "autom4te.cache", "__pycache__", "*.o", "*.lo", "*.la",
                                      ".libs", ".deps", "*.egg-info", "*.pb-c.[ch]", ".pytest_cache")

    def ignore(folder, names):
        skipped = set(patterns(folder, names))
        if os.path.samefile(folder, SRCDIR):
            skipped |= {"build", "dist"} & set(names)  # out-of-tree builds (scripts/build's) and setuptools'
        return skipped

    shutil.copytree(SRCDIR, dest, ignore=ignore)
    return dest


def run(cmd, timeout=600, **kw):
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                            timeout=timeout, **kw)
    return result


class Venv:
    def __init__(self, path):
        self.path = path
        self.python = os.path.join(path, "bin", "python")
        self.bin = os.path.join(path, "bin")

    def run_python(self, source, env=None):
        return run([self.python, "-c", textwrap.dedent(source)], timeout=120, env=env or clean_env())

    def site_packages(self):
        out = run([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  env=clean_env())
        return out.stdout.strip()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return copy_tree(str(tmp_path_factory.mktemp("pip") / "libleak"))


@pytest.fixture(scope="module")
def venv(tree, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("venv") / "env")
    made = run([sys.executable, "-m", "venv", path], env=clean_env())
    assert made.returncode == 0, made.stdout
    env = Venv(path)
    installed = run([env.python, "-m", "pip", "install", "--no-input", tree], env=clean_env(), cwd=str(tmp_path_factory.getbasetemp()))
    assert installed.returncode == 0, installed.stdout
    return env


@pytest.fixture(scope="module")
def build_tools(venv):
    """setuptools in the venv, for the builds that run without isolation: 70.1 or later, which
    builds wheels without the `wheel` package (3.8 - 3.11 venvs come with an older one, 3.12+ with none)."""
    tools = run([venv.python, "-m", "pip", "install", "--no-input", "-q", "setuptools>=70.1"], env=clean_env())
    assert tools.returncode == 0, tools.stdout
    return venv


def test_package_imports_from_the_venv(venv):
    out = venv.run_python("""
        import libleak, libleak.tracer, libleak._libleak
        print(libleak.__file__)
        print(libleak._libleak.__file__)
        print(libleak.__version__)
    """)
    assert out.returncode == 0, out.stdout
    package, extension, version = out.stdout.split()
    site = venv.site_packages()
    assert package == os.path.join(site, "libleak", "__init__.py")
    assert extension.startswith(os.path.join(site, "libleak", "_libleak."))
    assert version == pipbuild.version(SRCDIR)


def test_installed_package_traces_counts_and_explains(venv):
    out = venv.run_python("""
        import libleak, libleak.tracer

        class Leaky:
            pass

        CACHE = []
        libleak.tracer.start()
        before = libleak.census()
        for i in range(1000):
            CACHE.append(Leaky())                    # line 11
        after = libleak.census()
        snapshot = libleak.tracer.take_snapshot()
        libleak.tracer.stop()
        top = snapshot.statistics("lineno")[0]
        print("site", top.traceback[0].lineno)
        rows = {row.type_name: row for row in after.compare_to(before)}
        print("census", rows["__main__.Leaky"].count_diff)
        print("why", libleak.why_alive(CACHE[500]))
    """)
    assert out.returncode == 0, out.stdout
    lines = out.stdout.splitlines()
    assert "site 11" in lines, out.stdout
    assert "census 1000" in lines, out.stdout
    why = [line for line in lines if line.startswith("why ")]
    assert why and re.search(r"module __main__: CACHE -> list\[500\] -> .*Leaky", why[0]), out.stdout


def test_only_the_public_api_is_exported(venv):
    """-fvisibility=hidden, as configure sets it: the extension exports its init function and leak_* only."""
    site = venv.site_packages()
    extension = [f for f in os.listdir(os.path.join(site, "libleak")) if f.startswith("_libleak.")][0]
    out = run(["nm", "-D", "--defined-only", os.path.join(site, "libleak", extension)])
    assert out.returncode == 0, out.stdout
    names = [line.split()[-1] for line in out.stdout.splitlines() if line.strip()]
    assert "PyInit__libleak" in names and "leak_census_take" in names
    assert [n for n in names if n != "PyInit__libleak" and not n.startswith("leak_")] == []


def test_package_files_are_makefile_am_lists(venv):
    """The installed package holds exactly leakpy_DATA (plus the extension and bytecode), and the
    .pth files of tracepth_DATA sit at the top of site-packages, as `make install` puts them."""
    build = pipbuild.Build(SRCDIR)
    site = venv.site_packages()
    installed = {f for f in os.listdir(os.path.join(site, "libleak"))
                 if f != "__pycache__" and not f.startswith("_libleak.")}
    assert installed == {os.path.basename(f) for f in build.package_files}
    assert build.pth_files
    for pth in build.pth_files:
        assert os.path.exists(os.path.join(site, os.path.basename(pth))), pth


def test_pth_file_is_active_in_the_venv(venv):
    """LIBLEAK_TRACE, read by the installed .pth at start-up, starts the tracer before any import."""
    out = venv.run_python("""
        import sys
        started = 'libleak.tracer' in sys.modules
        import libleak.tracer
        print(started, libleak.tracer.is_tracing())
    """, env=clean_env(LIBLEAK_TRACE="1"))
    assert out.returncode == 0, out.stdout
    assert out.stdout.split() == ["True", "True"], out.stdout


def test_console_script_and_pytest_plugin_entry_points(venv):
    script = os.path.join(venv.bin, "libleak")
    assert os.access(script, os.X_OK)
    out = venv.run_python("""
        from importlib import metadata
        dist = metadata.distribution('libleak')
        for ep in dist.entry_points:
            print(ep.group, ep.name, ep.value)
    """)
    assert out.returncode == 0, out.stdout
    assert "console_scripts libleak libleak.cli:main" in out.stdout
    assert "pytest11 libleak.pytest_plugin libleak.pytest_plugin" in out.stdout
    # The command and the plugin are other areas' modules: once they are part of the package, they must run.
    package = {os.path.basename(f) for f in pipbuild.Build(SRCDIR).package_files}
    if "cli.py" in package:
        helped = run([script, "--help"], env=clean_env(), timeout=60)
        assert helped.returncode == 0 and "run" in helped.stdout, helped.stdout
    if "pytest_plugin.py" in package:
        # The fresh venv has no pytest: this interpreter's, last on the path, stands in for the one a
        # user installs; pytest finds the plugin through the installed entry point alone.
        outer = os.path.dirname(os.path.dirname(pytest.__file__))
        loaded = venv.run_python("""
            import sys
            sys.path.append(%r)
            import pytest
            sys.exit(pytest.main(["--help"]))
        """ % outer)
        assert loaded.returncode == 0, loaded.stdout
        assert "--libleak" in loaded.stdout, loaded.stdout


def files_under(top, folders):
    found = set()
    for folder in folders:
        for root, dirs, files in os.walk(os.path.join(top, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            found |= {os.path.relpath(os.path.join(root, f), top) for f in files}
    return found


def test_sdist_carries_what_the_build_needs(build_tools, tree, tmp_path):
    """A source distribution made from the tree (MANIFEST.in) holds every file Makefile.am names and
    all the sources and headers the build reads (compiling it again would only repeat the install)."""
    venv = build_tools
    dist = str(tmp_path / "dist")
    made = run([venv.python, "setup.py", "-q", "sdist", "-d", dist], cwd=tree, env=clean_env())
    assert made.returncode == 0, made.stdout
    [archive] = os.listdir(dist)
    with tarfile.open(os.path.join(dist, archive)) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(str(tmp_path / "unpacked"), **safe)
    [top] = os.listdir(str(tmp_path / "unpacked"))
    unpacked = str(tmp_path / "unpacked" / top)
    build = pipbuild.Build(unpacked)  # raises when a listed file is missing
    assert build.sources and build.generated
    sources = files_under(SRCDIR, ["include", "libleak", "pybind"])
    sources = {f for f in sources if f.endswith((".c", ".h", ".proto", ".py", ".pyi", ".pth", ".typed"))
               and not f.endswith((".pb-c.c", ".pb-c.h"))}  # no build products of an in-tree build
    assert sources - files_under(unpacked, ["include", "libleak", "pybind"]) == set()
    for name in ("configure.ac", "Makefile.am", "pyproject.toml", "setup.py", "scripts/pipbuild.py", "README.md"):
        assert os.path.exists(os.path.join(unpacked, name)), name


def test_missing_dependency_gives_configures_message(build_tools, tree, tmp_path):
    """Without pkg-config's answers the build stops with configure's own advice, before compiling."""
    venv = build_tools
    fake = tmp_path / "pkg-config"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    out = run([venv.python, "-m", "pip", "install", "--no-input", "--no-build-isolation", tree],
              env=clean_env(PKG_CONFIG=str(fake)))
    assert out.returncode != 0
    assert "Graphviz libcgraph/libgvc not found: apt-get install libgraphviz-dev" in out.stdout, out.stdout


# ---- scripts/pipbuild.py reads the autotools files as they are ----------------------------------

def test_every_c_file_of_the_library_is_compiled():
    build = pipbuild.Build(SRCDIR)
    listed = set(build.sources) | {source for source, _ in build.generated}
    on_disk = set()
    for folder in ("libleak", "pybind"):
        for root, _, files in os.walk(os.path.join(SRCDIR, folder)):
            for name in files:
                if name.endswith(".c") and not name.endswith(".pb-c.c"):
                    on_disk.add(os.path.relpath(os.path.join(root, name), SRCDIR))
    assert on_disk - listed == set()
    assert ("libleak/profile/profile.pb-c.c", "libleak/profile/profile.proto") in build.generated


def test_every_dependency_check_of_configure_is_read():
    text = open(os.path.join(SRCDIR, "configure.ac")).read()
    checks = pipbuild.configure_checks(SRCDIR)
    expected = (len(re.findall(r"^\s*PKG_CHECK_MODULES\(", text, re.M))
                + len(re.findall(r"^\s*AC_CHECK_HEADER\(", text, re.M)) - 1  # Python.h: setuptools' job
                + len(re.findall(r"^\s*AC_PATH_PROG\(\[(?!PYTHON\])", text, re.M)))
    assert len(checks) == expected, checks
    kinds = {(kind, what) for kind, _, what, _ in checks}
    assert ("pkg", "zlib") in kinds and ("header", "uthash.h") in kinds and ("program", "protoc-c") in kinds


def test_versions_agree():
    _, configure_version, _ = pipbuild.configure_init(SRCDIR)
    assert pipbuild.version(SRCDIR) == configure_version


def test_makefile_reader_handles_conditionals_and_references():
    text = textwrap.dedent("""\
        A = one \\
        \ttwo
        if SANITIZERS
        A += sanitized
        else
        A += plain
        endif
        if !FUZZING
        B = $(A) $(SUBST)
        endif
        rule: dep
        \tA = not-an-assignment
        """)
    makefile = pipbuild.Makefile(text, {"SUBST": "-lz"})
    assert makefile.words("B") == ["one", "two", "plain", "-lz"]
    with pytest.raises(pipbuild.BuildError, match="UNKNOWN"):
        pipbuild.Makefile("C = $(UNKNOWN)\n").words("C")
    with pytest.raises(pipbuild.BuildError, match="conditional WHATEVER"):
        pipbuild.Makefile("if WHATEVER\nendif\n")
