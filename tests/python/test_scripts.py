"""The set-up scripts refuse arguments they cannot use, with a message, instead of doing nothing:
`scripts/deps --python X` once took "--python" for the interpreter and installed nothing."""

import os
import subprocess

import pytest

SRCDIR = os.environ.get("LIBLEAK_SRCDIR")
pytestmark = pytest.mark.skipif(not SRCDIR, reason="needs LIBLEAK_SRCDIR (run through make check)")


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option --bogus"),
    (["--python"], "--python needs an interpreter"),
    (["--python", "/nonexistent/python3"], "/nonexistent/python3 is not a Python interpreter that runs"),
    (["/nonexistent/python3"], "/nonexistent/python3 is not a Python interpreter that runs"),
])
def test_deps_refuses_what_it_cannot_use(args, message):
    out = subprocess.run(["sh", os.path.join(SRCDIR, "scripts", "deps")] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
