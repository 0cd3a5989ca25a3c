"""libleak.asizeof: deep sizes, a drop-in for pympler.asizeof.

``sys.getsizeof`` tells the size of one object; ``asizeof`` adds everything the object references,
each object counted once, so a cache's real weight shows.  The walk runs in C (no recursion limit,
no Python objects of its own).

Run: ``PYTHONPATH=BUILD/pystage python3 examples/asizeof_sizes.py`` (well under a second).
"""
# expect: ^cache: sys\.getsizeof \d+ B, asizeof \d+(\.\d)? KiB$
# expect: ^shared rows counted once: True$
# expect: ^deeply nested list: asizeof \d+ B, no RecursionError$

import sys

from libleak import asizeof

cache = {"user%d" % i: {"name": "user%d" % i, "tags": ["a", "b"], "avatar": bytes(256)} for i in range(100)}
print("cache: sys.getsizeof %d B, asizeof %.1f KiB" % (sys.getsizeof(cache), asizeof.asizeof(cache) / 1024))

row = list(range(50))
table = [row, row, row]
# The table's own list plus ONE row: the row it references three times is counted once.
print("shared rows counted once: %s" % (asizeof.asizeof(table) == asizeof.flatsize(table) + asizeof.asizeof(row)))

for name, size in zip(("list", "dict", "bytes(256)"), asizeof.asizesof([], {}, bytes(256))):
    print("%-10s %4d B" % (name, size))

nested = []
for _ in range(100000):
    nested = [nested]
print("deeply nested list: asizeof %d B, no RecursionError" % asizeof.asizeof(nested, limit=None))
