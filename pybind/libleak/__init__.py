"""libleak: find what leaks in a CPython program, and why.

The everyday names live here; each capability has its own module:

- ``libleak.faults``: faulthandler's stack dumps, plus scoped watchdogs.

Example::

    import libleak.faults
    libleak.faults.enable()
"""

from libleak._libleak import __version__
from libleak.errors import Error, FormatError

__all__ = ["Error", "FormatError", "__version__"]
