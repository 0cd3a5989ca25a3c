"""Benchmark of the heap census against objgraph and pympler (issue 7, item 9).

One run, one interpreter, one heap: 200,000 instances of a class, each holding a list with a float,
plus a str (about a million objects, 400,000 of them tracked by the gc).  Then, each measured
REPEAT times with the fastest run counting (the machine is shared; the minimum is the least
disturbed), in CPU time (time.process_time):

    libleak census()                   every object, untracked ones included, sizes as sys.getsizeof
    libleak census(tracked_only=True)  what gc.get_objects() returns (objgraph's view)
    objgraph.typestats()               objgraph's count of the gc-tracked objects
    pympler summarize(get_objects())   pympler's summary (run once: it takes seconds)

and the memory a census holds per object (outside the Python heap).  The ClassTracker and asizeof
rows live in bench/classtracker and bench/asizeof.

Usage (from a build directory, so the freshly built package is importable):

    PYTHONPATH=$PWD/pystage python /path/to/bench/heap/run.py [--repeat N] [--instances N]

Prints a Markdown table and whether each target of the issue is met.
"""

import argparse
import gc
import sys
import time

import libleak
from libleak import heap


class Item:
    def __init__(self, i):
        self.values = [float(i)]
        self.name = "item-%d" % i


def best(fn, repeat):
    times = []
    result = None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
        if _ < repeat - 1:
            del result
            result = None
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--instances", type=int, default=200000)
    parser.add_argument("--no-pympler", action="store_true", help="leave out pympler (it takes seconds)")
    args = parser.parse_args()

    # The peers are imported first, so that every measurement sees the same heap.
    try:
        import objgraph
    except ImportError:
        objgraph = None
        print("objgraph is not installed: pip install objgraph", file=sys.stderr)
    try:
        from pympler import muppy, summary
    except ImportError:
        muppy = summary = None
        print("pympler is not installed: pip install pympler", file=sys.stderr)
    items = [Item(i) for i in range(args.instances)]
    gc.collect()
    rows = []

    t_census, full = best(heap.census, args.repeat)
    rows.append(("libleak census()", t_census, full.count))
    t_bare, bare = best(lambda: heap.census(keep_objects=False), args.repeat)
    rows.append(("libleak census(keep_objects=False)", t_bare, bare.count))
    del bare
    t_tracked, tracked = best(lambda: heap.census(tracked_only=True), args.repeat)
    rows.append(("libleak census(tracked_only=True)", t_tracked, tracked.count))
    per_object = full.memory / float(full.count)

    t_objgraph = None
    if objgraph is not None:
        t_objgraph, stats = best(objgraph.typestats, args.repeat)
        rows.append(("objgraph.typestats()", t_objgraph, sum(stats.values())))
        del stats

    t_pympler = None
    if muppy is not None and not args.no_pympler:
        t_pympler, result = best(lambda: summary.summarize(muppy.get_objects()), 1)
        rows.append(("pympler summarize(muppy.get_objects())", t_pympler, sum(row[1] for row in result)))
        del result

    print("Heap: %d instances of Item (a list with a float, and a str each); CPython %s; libleak %s"
          % (args.instances, sys.version.split()[0], libleak.__version__))
    print()
    print("| operation | CPU time | objects counted | libleak census is faster by |")
    print("|---|---|---|---|")
    for name, seconds, count in rows:
        print("| %s | %.1f ms | %d | %.1fx |" % (name, seconds * 1e3, count, seconds / t_census))
    print()
    print("Census memory: %.1f bytes per object held (addresses and types, outside the Python heap)" % per_object)
    print()
    checks = [
        ("census <= 100 ms", t_census <= 0.100, "%.1f ms" % (t_census * 1e3)),
        ("census memory <= 16 bytes/object", per_object <= 16, "%.1f" % per_object),
    ]
    if t_pympler is not None:
        checks.append(("census >= 40x faster than pympler, counting at least as many",
                       t_pympler / t_census >= 40 and full.count >= rows[-1][2],
                       "%.1fx, %d vs %d objects" % (t_pympler / t_census, full.count, rows[-1][2])))
    if t_objgraph is not None:
        checks.append(("census >= 1.5x faster than objgraph.typestats()", t_objgraph / t_census >= 1.5,
                       "%.2fx" % (t_objgraph / t_census)))
    for name, met, figure in checks:
        print("- %s: %s (%s)" % (name, "met" if met else "MISSED", figure))
    del items


if __name__ == "__main__":
    main()
