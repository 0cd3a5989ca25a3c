"""Benchmark of libleak.classtracker against pympler's ClassTracker (issue 7, item 9, the ClassTracker rows).

Each configuration runs in a fresh interpreter (no run inherits another's heap):

    untracked       create N instances of a class, no tracker
    pympler         the same with pympler's ClassTracker tracking the class, then one snapshot
    libleak         the same with libleak.classtracker, then one snapshot

The workload is the one of FACTS.md section 4: N = 200,000 instances of a class, each holding a list
with a float, plus a str.  Creation time is the process CPU time of the creating loop; the time a
tracker adds is its creation time minus the untracked one, per instance (the creating loop runs
--rounds times in each process and its fastest round counts; the snapshot is measured in separate
processes that create the instances once).  The snapshot is one
create_snapshot() of the N live instances: CPU time and the growth of the peak RSS it causes
(ru_maxrss after minus before; the snapshot is the peak of the run).  Each configuration runs
--repeat times and the fastest run counts (the machine is shared; the minimum is the least
disturbed); memory is taken from the same run.

Usage (from a build directory, so the freshly built package is importable):

    PYTHONPATH=$PWD/pystage python /path/to/bench/classtracker/run.py [--n 200000] [--repeat 1] [--rounds 3]

Prints a Markdown table with the ratios and whether the targets of the issue are met:
added creation time >= 10x less than pympler's (and <= 1 us per instance), one snapshot >= 10x
faster with <= 1/10 of pympler's memory.
"""

import argparse
import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    r'''
    import json, resource, sys, time

    kind, n, ROUNDS, SNAPSHOT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "snapshot"

    class Document(object):
        def __init__(self, i):
            self.values = [i * 0.5]
            self.name = "document-%d" % i

    tracker = None
    if kind == "pympler":
        from pympler import classtracker
        tracker = classtracker.ClassTracker()
    elif kind == "libleak":
        from libleak import classtracker
        tracker = classtracker.ClassTracker()
    if tracker is not None:
        tracker.track_class(Document)

    # The creating loop runs ROUNDS times (the instances of a round are freed before the next) and the
    # fastest round counts; the last round's instances stay for the snapshot.
    create = None
    for round in range(ROUNDS):
        keep = None
        keep = [None] * n
        start = time.process_time()
        for i in range(n):
            keep[i] = Document(i)
        elapsed = time.process_time() - start
        create = elapsed if create is None else min(create, elapsed)

    snapshot = rss_growth = None
    if tracker is not None and SNAPSHOT:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.process_time()
        tracker.create_snapshot()
        snapshot = time.process_time() - start
        rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        active = tracker.stats.annotate_snapshot(tracker.snapshots[-1])[__name__ + ".Document"]["active"]
        assert active == n, (active, n)
    print(json.dumps({"create": create, "snapshot": snapshot, "rss_growth": rss_growth}))
    '''
)


def run(kind, n, repeat, rounds, snapshot):
    best = None
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", CHILD, kind, str(n), str(rounds), snapshot], stdout=subprocess.PIPE, check=True,
                             universal_newlines=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        if best is None or result["create"] + (result["snapshot"] or 0) < best["create"] + (best["snapshot"] or 0):
            best = result
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200000, help="instances (default 200,000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (the fastest counts)")
    parser.add_argument("--rounds", type=int, default=3, help="creating loops per run (the fastest counts)")
    args = parser.parse_args()

    base = run("untracked", args.n, args.repeat, args.rounds, "-")
    pympler = run("pympler", args.n, args.repeat, args.rounds, "-")
    libleak = run("libleak", args.n, args.repeat, args.rounds, "-")
    # The snapshot runs in processes of their own that create the instances once, so that pympler's
    # records of the instances freed between rounds do not weigh on its snapshot.
    for result, kind in ((pympler, "pympler"), (libleak, "libleak")):
        snap = run(kind, args.n, args.repeat, 1, "snapshot")
        result["snapshot"], result["rss_growth"] = snap["snapshot"], snap["rss_growth"]
    us = lambda seconds: seconds / args.n * 1e6
    added_pympler = max(pympler["create"] - base["create"], 0.0)
    added_libleak = libleak["create"] - base["create"]
    # When libleak's added time is lost in the noise, the ratio is given against a floor of 1% of the
    # untracked time (what two identical runs differ by on this machine), as a lower bound.
    floor = 0.01 * base["create"]
    added_ratio = added_pympler / max(added_libleak, floor)
    ratio_text = ("%.1fx" if added_libleak >= floor else ">= %.0fx (libleak within noise)") % added_ratio
    snap_ratio = pympler["snapshot"] / max(libleak["snapshot"], 1e-9)
    mem_ratio = pympler["rss_growth"] / max(libleak["rss_growth"], 1)
    mib = lambda b: b / 1048576.0

    print("CPython %s, %d instances (each a list with a float, and a str), best of %d\n"
          % (sys.version.split()[0], args.n, args.repeat))
    print("| measure | untracked | pympler | libleak | pympler / libleak | target | met |")
    print("|---|---|---|---|---|---|---|")
    print("| create %d instances (s) | %.3f | %.3f | %.3f | | | |"
          % (args.n, base["create"], pympler["create"], libleak["create"]))
    print("| added per instance (us) | | %.2f | %.3f | %s | >= 10x, <= 1 us | %s |"
          % (us(added_pympler), us(added_libleak), ratio_text,
             "yes" if added_ratio >= 10 and us(added_libleak) <= 1.0 else "NO"))
    print("| one snapshot (s) | | %.3f | %.3f | %.1fx | >= 10x | %s |"
          % (pympler["snapshot"], libleak["snapshot"], snap_ratio, "yes" if snap_ratio >= 10 else "NO"))
    print("| snapshot peak RSS growth (MiB) | | %.1f | %.1f | %.1fx | >= 10x less | %s |"
          % (mib(pympler["rss_growth"]), mib(libleak["rss_growth"]), mem_ratio, "yes" if mem_ratio >= 10 else "NO"))


if __name__ == "__main__":
    main()
