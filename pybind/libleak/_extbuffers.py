"""Buffers that C extensions report to tracemalloc (NumPy's array data), traced by libleak too.

NumPy allocates array data with ``malloc`` and reports each block with ``PyTraceMalloc_Track`` in
domain 389047.  While ``libleak.tracer`` runs, every loaded extension's import of that function
(and of ``PyTraceMalloc_Untrack``) is redirected to libleak, which records the block with the
calling thread's Python stack and then calls CPython's function, so tracemalloc still sees it.

``start()`` redirects the extensions loaded now and wraps
``importlib.machinery.ExtensionFileLoader.create_module`` so that an extension imported later
(``import numpy`` after ``libleak.tracer.start()``) is redirected as soon as it is loaded.
``stop()`` gives the slots back to CPython's functions and unwraps the loader, unless another tool
wrapped it since (the wrapper then stays, doing nothing but call through).

NumPy's own hook for this, its NEP 49 data handler (``PyDataMem_SetHandler``), was not used: it is
held in a context variable, so it applies to the context that set it while every other thread keeps
NumPy's default handler, and it covers NumPy only.  Redirecting the imports covers every thread and
every extension that reports its buffers.  Neither can see memory an extension takes from
``malloc`` without reporting it.
"""

import warnings
from importlib.machinery import ExtensionFileLoader

from libleak import _libleak
from libleak.errors import Error

# The loader method found at start (called by the wrapper), whether the wrapper is installed, and
# whether it redirects; all changed only by start() and stop(), which tracer.py calls.
_inner_create_module = None
_installed = False
_active = False


def _redirect():
    """Redirects the imports of the objects loaded since the last call; warns instead of raising,
    so that neither start() nor an import fails for it."""
    try:
        _libleak.extbuffers_redirect()
    except (Error, OSError) as error:
        warnings.warn("libleak: extension buffers (NumPy arrays) are not traced: %s" % error, RuntimeWarning, 3)


def _create_module(self, spec):
    """ExtensionFileLoader.create_module, then the redirect of what it loaded (while tracing)."""
    module = _inner_create_module(self, spec)
    if _active:
        _redirect()
    return module


def start():
    """Redirects the loaded extensions now, and those imported later while tracing."""
    global _inner_create_module, _installed, _active
    if not _installed:
        _inner_create_module = ExtensionFileLoader.create_module
        ExtensionFileLoader.create_module = _create_module
        _installed = True
    _active = True
    _redirect()


def stop():
    """Puts CPython's functions back in every redirected slot, and unwraps the loader."""
    global _installed, _active
    _active = False
    if _installed and ExtensionFileLoader.__dict__.get("create_module") is _create_module:
        ExtensionFileLoader.create_module = _inner_create_module
        _installed = False
    try:
        _libleak.extbuffers_restore()
    except (Error, OSError) as error:
        # The tracer stops anyway: a slot left redirected passes every call on to CPython.
        warnings.warn("libleak: a PyTraceMalloc_Track import could not be restored: %s" % error, RuntimeWarning, 2)


def slots():
    """[(object path, symbol, state)] for every import of PyTraceMalloc_Track/Untrack outside
    libleak; state is ``"libleak"`` (redirected), ``"original"`` (CPython's) or ``"other"`` (a
    lazy-binding stub not resolved yet, or another tool's function)."""
    return _libleak.extbuffers_slots()
