"""libleak: find what leaks in a CPython program, and why.

The everyday names live here; each capability has its own module:

- ``libleak.faults``: faulthandler's stack dumps, plus scoped watchdogs.
- ``libleak.tracer``: tracemalloc's allocation tracing and snapshots, cheap enough to leave on.
- ``libleak.sampler``: a CPU sampler of every thread; profiles as pprof, speedscope, SVG flame graphs.

Example::

    import libleak.faults
    libleak.faults.enable()
"""

from libleak._libleak import __version__
from libleak.errors import Error, FormatError
from libleak.tracer import take_snapshot

__all__ = ["Error", "FormatError", "take_snapshot", "__version__"]
