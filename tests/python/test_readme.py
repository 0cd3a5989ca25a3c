"""The README's snippets run: every ```python block executes, and the ```c host compiles against
the build tree and runs.  A README that drifts from the API fails here."""

import os
import re
import subprocess
import sys
import sysconfig

import pytest

SRCDIR = os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("LIBLEAK_BUILDDIR")


def snippets(language):
    with open(os.path.join(SRCDIR, "README.md")) as f:
        text = f.read()
    return re.findall(r"```%s\n(.*?)```" % language, text, re.S)


@pytest.mark.parametrize("index", range(len(snippets("python"))))
def test_python_snippet_runs(index, tmp_path):
    source = snippets("python")[index]
    result = subprocess.run([sys.executable, "-c", source], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=120)
    assert result.returncode == 0, source + "\n----\n" + result.stdout.decode()


@pytest.mark.skipif(not BUILDDIR, reason="needs LIBLEAK_BUILDDIR (run through make check)")
def test_c_snippet_compiles_and_runs(tmp_path):
    (source,) = snippets("c")
    (tmp_path / "host.c").write_text(source)
    exe = str(tmp_path / "host")
    libs = os.path.join(BUILDDIR, ".libs")
    subprocess.run(
        ["cc", "-o", exe, str(tmp_path / "host.c"), "-I" + os.path.join(SRCDIR, "include"),
         "-I" + sysconfig.get_paths()["include"], "-L" + libs, "-lleak",
         "-L" + sysconfig.get_config_var("LIBDIR"), "-lpython" + sysconfig.get_config_var("LDVERSION")],
        check=True)
    env = dict(os.environ, LD_LIBRARY_PATH=libs + ":" + sysconfig.get_config_var("LIBDIR"),
               PYTHONHOME=sys.base_prefix)
    result = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=60)
    assert result.returncode == 0, result.stdout.decode()
    assert "most recent call first" in result.stdout.decode()
