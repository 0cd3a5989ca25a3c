"""`make install` gives a working package and a linkable library: the package imports from the
installed site directory, and a C host compiles against the installed headers and libleak.pc."""

import os
import subprocess
import sys
import sysconfig

import pytest

BUILDDIR = os.environ.get("LIBLEAK_BUILDDIR")
SRCDIR = os.environ.get("LIBLEAK_SRCDIR")
pytestmark = pytest.mark.skipif(not BUILDDIR, reason="needs LIBLEAK_BUILDDIR (run through make check)")


def make_var(name):
    out = subprocess.check_output(["make", "-s", "-C", BUILDDIR, "--no-print-directory", "print-install-dirs"])
    dirs = dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)
    return dirs[name]


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("install"))
    subprocess.run(["make", "-s", "-C", BUILDDIR, "install", "DESTDIR=" + dest], check=True,
                   stdout=subprocess.DEVNULL)
    return dest


def test_installed_package_imports(destdir):
    sitedir = destdir + make_var("pythonsitedir")
    env = dict(os.environ, PYTHONPATH=sitedir)
    out = subprocess.check_output(
        [sys.executable, "-c", "import libleak, libleak.faults; print(libleak.__file__)"], env=env)
    assert out.decode().strip().startswith(sitedir)


def test_c_host_builds_against_installed_library(destdir, tmp_path):
    libdir = destdir + make_var("libdir")
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"), PKG_CONFIG_SYSROOT_DIR=destdir)
    flags = subprocess.check_output(["pkg-config", "--cflags", "--libs", "libleak"], env=env).decode().split()
    python_flags = ["-I" + sysconfig.get_paths()["include"], "-L" + sysconfig.get_config_var("LIBDIR"),
                    "-lpython" + sysconfig.get_config_var("LDVERSION")]
    exe = str(tmp_path / "embed-host")
    subprocess.run(["cc", "-o", exe, os.path.join(SRCDIR, "examples", "embed_host.c")] + flags + python_flags,
                   check=True)
    run_env = dict(os.environ, LD_LIBRARY_PATH=libdir + ":" + sysconfig.get_config_var("LIBDIR"),
                   PYTHONHOME=sys.base_prefix)
    result = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=run_env, timeout=60)
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert 'in handle_request' in out and 'in slow_query' in out, out
    # the tracer's top line is the dict comprehension of load_cache (line 2 of that snippet)
    top = out.split("which lines hold the most memory\n", 1)[1].splitlines()[0]
    assert top.startswith("<string>:2: size="), out
