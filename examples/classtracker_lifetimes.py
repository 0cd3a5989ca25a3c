"""libleak.classtracker: pympler's ClassTracker, counting instances through the type itself.

Connections are opened and closed by a pool; some are never closed.  The tracker counts every
instance of the tracked class from its creation to its death (made by ``__init__``, ``copy.copy``
or pickle alike), and its snapshots show how many are alive and how much they hold.
``stats.print_summary()`` prints pympler's table; ``stats.by_class`` has the figures.

Run: ``PYTHONPATH=BUILD/pystage python3 examples/classtracker_lifetimes.py`` (about a second).
"""
# expect: __main__\.Connection
# expect: ^Connection: created 220, alive 20, destroyed 200, peak alive 21$

import copy

from libleak.classtracker import ClassTracker


class Connection:
    def __init__(self, host):
        self.host = host
        self.buffer = bytearray(2048)


POOL = []


def serve(n):
    conn = Connection("db%d" % (n % 3))
    if n % 10 == 0:
        POOL.append(copy.copy(conn))  # a copy kept "for later": made without __init__, still counted


tracker = ClassTracker()
tracker.track_class(Connection)
tracker.create_snapshot("start")
for n in range(200):
    serve(n)
tracker.create_snapshot("after 200 requests")
tracker.stats.print_summary()

row = tracker.stats.by_class["__main__.Connection"]
print("Connection: created %d, alive %d, destroyed %d, peak alive %d"
      % (row["created"], row["alive"], row["destroyed"], row["peak_alive"]))
tracker.close()
