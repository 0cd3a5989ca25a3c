"""Benchmark of libleak.asizeof against pympler.asizeof (issue 7, item 9).

The structure of FACTS.md section 4: 200,000 class instances, each holding a list with a float and
a str (about a million objects with the instance dicts).  One interpreter sizes it with:

    libleak  before pympler ran (3.11+: the instance dicts are still CPython's values arrays,
             which libleak counts as the dicts pympler will create)
    pympler  (reading obj.__dict__ creates those dicts)
    libleak  again, after pympler (the dicts now exist)
    libleak  again, with every instance also held by a second list (objects held once skip the
             visited set; these cannot)

Time is process CPU time (time.process_time()) around each call; libleak's runs are repeated and
the fastest counts (the machine is shared), pympler's runs once by default (it takes seconds).
Prints a Markdown table: times, the ratio pympler / libleak (target >= 20), and the totals with
their difference (target within 1%).

Usage (from a build directory, so the freshly built package is importable):

    PYTHONPATH=$PWD/pystage python /path/to/bench/asizeof/run.py [--count N] [--repeat N]
"""

import argparse
import gc
import platform
import sys
import time


class Item:
    def __init__(self, i):
        self.values = [i * 0.5]
        self.name = "item number %d" % i


def timed(function, repeat):
    """(fastest CPU seconds, result) of `repeat` calls."""
    best, result = None, None
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        result = function()
        elapsed = time.process_time() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200000, help="instances (default 200000)")
    parser.add_argument("--repeat", type=int, default=5, help="libleak runs, the fastest counts")
    parser.add_argument("--pympler-repeat", type=int, default=1, help="pympler runs, the fastest counts")
    args = parser.parse_args()

    from libleak import asizeof as libleak_asizeof

    try:
        from pympler import asizeof as pympler_asizeof
    except ImportError:
        sys.exit("bench/asizeof: pympler is not installed (pip install pympler)")

    items = [Item(i) for i in range(args.count)]
    objects = len(items) * 5 + 1  # instance, dict, list, float, str; and the outer list

    before_time, before_total = timed(lambda: libleak_asizeof.asizeof(items), args.repeat)
    pympler_time, pympler_total = timed(lambda: pympler_asizeof.asizeof(items), args.pympler_repeat)
    after_time, after_total = timed(lambda: libleak_asizeof.asizeof(items), args.repeat)
    # Held twice, every instance needs an entry in the visited set (objects held once do not).
    also = list(items)
    shared_time, shared_total = timed(lambda: libleak_asizeof.asizeof(items), args.repeat)
    del also

    def row(name, seconds, total):
        ratio = pympler_time / seconds if seconds else float("inf")
        diff = 100.0 * (total - pympler_total) / pympler_total
        return "| %s | %.3f s | %.1fx | %d | %+.3f%% |" % (name, seconds, ratio, total, diff)

    print("asizeof of %d instances (~%d objects), CPython %s, %s" %
          (args.count, objects, platform.python_version(), time.strftime("%Y-%m-%d")))
    print()
    print("| sizer | CPU time | pympler / this | total bytes | vs pympler |")
    print("|---|---|---|---|---|")
    print(row("pympler.asizeof", pympler_time, pympler_total))
    print(row("libleak, before pympler (dicts not created)", before_time, before_total))
    print(row("libleak, after pympler (dicts exist)", after_time, after_total))
    print(row("libleak, each instance also held by a second list", shared_time, shared_total))
    worst = min(pympler_time / before_time, pympler_time / after_time, pympler_time / shared_time)
    same = all(abs(t - pympler_total) <= 0.01 * pympler_total for t in (before_total, after_total, shared_total))
    print()
    print("target >= 20x faster: %s (%.1fx at worst); totals within 1%%: %s" %
          ("met" if worst >= 20 else "MISSED", worst, "met" if same else "MISSED"))


if __name__ == "__main__":
    main()
