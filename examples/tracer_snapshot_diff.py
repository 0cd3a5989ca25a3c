"""libleak.tracer, tracemalloc's API: two snapshots around a leaking loop, compared line by line.

The lines whose memory grew between the snapshots come first: here the line that keeps every
request's buffer in a module-level list.  ``libleak.tracer`` is a drop-in for ``tracemalloc``
(``import libleak.tracer as tracemalloc`` runs tracemalloc code unchanged).

Run: ``PYTHONPATH=BUILD/pystage python3 examples/tracer_snapshot_diff.py`` (about a second).
"""
# expect: ^tracer_snapshot_diff\.py:\d+: size=.*\(\+\d+(\.\d+)? [KM]iB\), count=\d+ \(\+\d+\)
# expect: ^  +BUFFERS\.append\(bytearray\(4096\)\)

import linecache
import os

import libleak.tracer as tracer

BUFFERS = []


def handle_request(n):
    data = str(n) * 100  # freed when the request ends
    BUFFERS.append(bytearray(4096))  # kept forever: the leak
    return len(data)


tracer.start(10)
before = tracer.take_snapshot()
for n in range(300):
    handle_request(n)
after = tracer.take_snapshot()
tracer.stop()

# Only this file's lines: the interpreter's own caches are not what we are after here.
mine = tracer.Filter(True, __file__)
print("The lines that grew, biggest first:")
for diff in after.filter_traces([mine]).compare_to(before.filter_traces([mine]), "lineno")[:3]:
    frame = diff.traceback[0]
    print(str(diff).replace(frame.filename, os.path.basename(frame.filename)))
    print("    " + linecache.getline(frame.filename, frame.lineno).strip())
