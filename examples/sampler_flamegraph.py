"""libleak.sampler: where the CPU time goes, as a flame graph and a top table.

The sampler interrupts each thread every millisecond of its CPU time and records its Python stack
(the signal handler reads frames without allocating).  ``Profile.top`` lists the busiest
functions; ``Profile.write`` picks the format from the suffix: an SVG flame graph to open in a
browser, speedscope JSON, collapsed stacks, or pprof (``.pb.gz``, for ``go tool pprof``).

Run: ``PYTHONPATH=BUILD/pystage python3 examples/sampler_flamegraph.py [OUTDIR]`` (about a second).
"""
# expect: ^ +\d+ +\d+  parse_record +sampler_flamegraph\.py:\d+$
# expect: ^wrote .*profile\.svg$
# expect: ^wrote .*profile\.speedscope\.json$

import os
import sys
import tempfile

import libleak.sampler


def parse_record(i):
    return sum(int(part) for part in ("%d,%d,%d" % (i, i * 2, i * 3)).split(","))


def checksum(data):
    total = 0
    for byte in data:
        total = (total * 31 + byte) & 0xFFFFFFFF
    return total


def handle_batch():
    records = [parse_record(i) for i in range(100000)]
    return checksum(bytes(r & 0xFF for r in records))


with libleak.sampler.profile(interval=0.001) as profile:
    handle_batch()

print("%d samples; the busiest functions:" % profile.samples)
print("%6s %6s  %s" % ("self", "total", "function"))
for row in profile.top(5):
    print("%6d %6d  %-32s %s:%d" % (row.self_samples, row.total_samples, row.function,
                                     os.path.basename(row.filename), row.lineno))

outdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="libleak-example-")
for name in ("profile.svg", "profile.speedscope.json", "profile.collapsed"):
    path = os.path.join(outdir, name)
    profile.write(path)
    print("wrote " + path)
