"""libleak's exceptions.

``Error`` is the base of everything libleak raises on its own account; ``FormatError`` means a
snapshot or profile file is truncated, corrupted, or not one of libleak's.  Wrong argument types and
values raise the usual ``TypeError`` and ``ValueError``.
"""

from libleak._libleak import Error, FormatError

__all__ = ["Error", "FormatError"]
