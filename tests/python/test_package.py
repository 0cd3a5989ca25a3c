"""The package imports from the build tree, exposes its exceptions, and matches the C version."""

import libleak


def test_version_is_the_c_library_version():
    from libleak import _libleak

    assert libleak.__version__ == _libleak.__version__
    assert all(part.isdigit() for part in libleak.__version__.split("."))


def test_exception_hierarchy():
    assert issubclass(libleak.FormatError, libleak.Error)
    assert issubclass(libleak.Error, Exception)
    assert libleak.FormatError.__module__ == "libleak"
