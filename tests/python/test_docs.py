"""The API reference (docs/api.md, written by scripts/apidoc) keeps up with the docstrings: every public
name of every module is documented there with its docstring's first line, and every public name has
a docstring."""

import importlib
import inspect
import os
import runpy

import pytest

SRCDIR = os.environ.get("LIBLEAK_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APIDOC = os.path.join(SRCDIR, "scripts", "apidoc")
API_MD = os.path.join(SRCDIR, "docs", "api.md")


def modules():
    return runpy.run_path(APIDOC)["MODULES"]


def public_names():
    for module_name in modules():
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            # libleak.ipython needs IPython, which scripts/deps installs where pip can
            if error.name != "IPython":
                raise
            continue
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


def test_every_public_name_has_a_docstring():
    missing = ["%s.%s" % (m, n) for m, n, value in public_names()
               if (callable(value) or inspect.isclass(value)) and not inspect.getdoc(value)]
    assert missing == []


def test_reference_lists_every_name_with_its_docstring():
    with open(API_MD) as f:
        text = f.read()
    stale = []
    for module_name, name, value in public_names():
        if "## `%s`" % module_name not in text:
            stale.append(module_name)
            continue
        if "`%s" % name not in text:
            stale.append("%s.%s" % (module_name, name))
            continue
        if callable(value) or inspect.isclass(value):
            first_line = inspect.getdoc(value).splitlines()[0].strip()
            if first_line not in text:
                stale.append("%s.%s (docstring changed)" % (module_name, name))
    assert stale == [], "docs/api.md is out of date: run scripts/apidoc (%s)" % ", ".join(stale)


@pytest.mark.parametrize("module_name", ["libleak.heap", "libleak.refs", "libleak.tracer"])
def test_reference_is_the_generator_output(module_name, tmp_path):
    # The generator runs on every interpreter and documents the module it is pointed at.
    out = tmp_path / "api.md"
    namespace = runpy.run_path(APIDOC)
    namespace["main"](["apidoc", str(out)])
    assert ("## `%s`" % module_name) in out.read_text()
