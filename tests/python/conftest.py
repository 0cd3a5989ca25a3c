"""Shared fixtures for libleak's Python tests."""

import os
import subprocess
import sys
import textwrap

import pytest


def run_python(source, *args, env=None, timeout=60, input=None):
    """Runs `source` in a fresh interpreter (the one running the tests) with libleak importable;
    returns the CompletedProcess with stdout and stderr as text."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)] + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        env=full_env,
        timeout=timeout,
        input=input,
    )


@pytest.fixture
def python():
    """The run_python helper, as a fixture."""
    return run_python
