"""libleak: find what leaks in a CPython program, and why.

The everyday names live here; each capability has its own module:

- ``libleak.faults``: faulthandler's stack dumps, plus scoped watchdogs.
- ``libleak.tracer``: tracemalloc's allocation tracing and snapshots, cheap enough to leave on.
- ``libleak.heap``: live objects per type (``census``), their growth, and ``leak_check``.
- ``libleak.objgraph``: objgraph's functions, counted in C.
- ``libleak.refs``: why an object is alive (``why_alive``): labelled paths from classified roots.
- ``libleak.classtracker``, ``libleak.asizeof``: pympler's ClassTracker and asizeof, in C.
- ``libleak.sampler``: a CPU sampler of every thread; profiles as pprof, speedscope, SVG flame graphs.
- ``libleak.ondemand``: ``kill -USR2`` writes a server's stacks, asyncio tasks, snapshot and census;
  ``libleak.autostart`` starts it (and the tracer, and faults) from ``LIBLEAK_*`` variables.

Example::

    import libleak.faults
    libleak.faults.enable()
"""

from libleak._libleak import __version__
from libleak.errors import Error, FormatError
from libleak.heap import census, leak_check
from libleak.refs import why_alive
from libleak.tracer import take_snapshot

__all__ = ["Error", "FormatError", "census", "leak_check", "take_snapshot", "why_alive", "__version__"]


# ---- Jupyter: `%load_ext libleak` (the magics live in libleak.ipython, which needs IPython) ----
def load_ipython_extension(ipython):
    """Registers libleak's magics (%%leak_check, %why_alive, ...) on an IPython shell."""
    from libleak.ipython import load_ipython_extension as load

    load(ipython)
