"""Benchmark of the allocation tracer against tracemalloc (issue 3, item 11).

Runs every configuration in a fresh interpreter, so no run inherits another's heap or caches:

    untraced, tracemalloc nframe=1 and 25, libleak exact nframe=1, 32 and 128, libleak sampled 512 KiB

on five workloads:

    alloc     an allocation-heavy loop at stack depth ~30 (dicts of small objects, strings, lists)
    mixed     json round-trips, regular expressions and a class-heavy simulation
    live100k  20,000 instances of a class with an attribute dict, a list and strings, made at stack
              depth ~30 and kept (~100,000 live blocks), then freed in bulk; a loop is one round
    live1m    the same with 200,000 instances (~1,000,000 live blocks)
    threads8  8 threads running the alloc loop at once (a loop is one alloc loop in each thread);
              libleak's throughput against tracemalloc's is the inverse of the ratio of their times

Time is the process CPU time of the workload only (time.process_time() around the timed loop, after
the interpreter started and the tracer was switched on), so start-up is subtracted.  Each
configuration runs REPEAT times and the fastest run counts (the machine is shared; the minimum is the
least disturbed).  With --rounds N, every configuration runs once a round, N interleaved rounds, and
the medians count: the times, and each target's ratio taken round by round (on a shared machine whose
load drifts over minutes, this is the steadier figure).  Then: bytes per live traced block with a
million live blocks (RSS growth and the tracer's own report), and take_snapshot + compare_to on a
million traces.

Usage (from a build directory, so the freshly built package is importable):

    PYTHONPATH=$PWD/pystage python /path/to/bench/tracer/run.py [--quick] [--repeat N | --rounds N]

Prints a Markdown table with ratios to the untraced run and whether each target of the issue is met.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import textwrap

CONFIGS = [
    ("untraced", None, 0, 0),
    ("tracemalloc nframe=1", "tracemalloc", 1, 0),
    ("tracemalloc nframe=25", "tracemalloc", 25, 0),
    ("libleak exact nframe=1", "libleak", 1, 0),
    ("libleak exact nframe=32", "libleak", 32, 0),
    ("libleak exact nframe=128", "libleak", 128, 0),
    ("libleak sampled 512 KiB", "libleak", 1, 512 * 1024),
]

# The code each child runs: the workloads, then the timed loop for one configuration.
CHILD = textwrap.dedent(
    r'''
    import json, re, sys, time, random

    def alloc_work(n):
        keep = []
        for i in range(n):
            d = {"id": i, "name": "item-%d" % i, "tags": ["a", "b", str(i)], "pos": (i, i + 1)}
            s = ("x" * (i % 50)) + str(i)
            l = [d, s, [i] * 8]
            keep.append(l)
            if len(keep) > 200:
                del keep[:100]
        return len(keep)

    class Particle:
        def __init__(self, x, y, vx, vy):
            self.x, self.y, self.vx, self.vy = x, y, vx, vy
        def step(self, dt):
            return Particle(self.x + self.vx * dt, self.y + self.vy * dt, self.vx * 0.99, self.vy - 9.8 * dt)

    WORD = re.compile(r"([a-z]+)-(\d+)")
    DOC = {"users": [{"name": "user-%d" % i, "score": i * 1.5, "roles": ["r%d" % (i % 3)]} for i in range(30)]}

    def mixed_work(n):
        total = 0
        rng = random.Random(1)
        particles = [Particle(rng.random(), rng.random(), rng.random(), rng.random()) for _ in range(20)]
        for i in range(n):
            text = json.dumps(DOC)
            back = json.loads(text)
            total += len(back["users"])
            for m in WORD.finditer(text):
                total += len(m.group(1))
            particles = [p.step(0.01) for p in particles]
        return total

    class Record:
        """About 5 live blocks: the instance, its attribute dict, a list and its item array, a str."""
        def __init__(self, i):
            self.name = "record-%d" % i
            self.tags = [i & 7, "t", None]
            self.attrs = {"a": i & 3, "b": None}

    def live_work(n, count):
        total = 0
        for _ in range(n):
            records = [Record(i) for i in range(count)]
            total += len(records)
            del records  # freed in bulk
        return total

    def live100k_work(n):
        return live_work(n, 20000)

    def live1m_work(n):
        return live_work(n, 200000)

    def threads8_work(n):
        import threading
        threads = [threading.Thread(target=at_depth, args=(24, alloc_work, n)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return n

    WORKLOADS = {"alloc": alloc_work, "mixed": mixed_work, "live100k": live100k_work, "live1m": live1m_work,
                 "threads8": threads8_work}

    def at_depth(depth, fn, n):
        if depth <= 0:
            return fn(n)
        return at_depth(depth - 1, fn, n)

    def main(tool, nframe, sample, workload, loops):
        fn = WORKLOADS[workload]
        at_depth(28, fn, max(1, loops // 20))  # warm up caches and specialisations
        if tool == "tracemalloc":
            import tracemalloc
            tracemalloc.start(nframe)
        elif tool == "libleak":
            import libleak.tracer
            libleak.tracer.start(nframe, sample_bytes=sample)
        t0 = time.process_time()
        at_depth(28, fn, loops)
        t1 = time.process_time()
        print(json.dumps({"cpu": t1 - t0}))

    main(*json.loads(sys.argv[1]))
    '''
)

# A million live blocks: RSS growth and the tracer's own report, per block.
MEMORY_CHILD = textwrap.dedent(
    r'''
    import json, sys
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    tool = sys.argv[1]
    N = 1000000
    if tool == "tracemalloc":
        import tracemalloc; tracemalloc.start(1); mem = tracemalloc.get_tracemalloc_memory
    elif tool == "libleak":
        import libleak.tracer as t; t.start(1); mem = t.get_tracer_memory
    else:
        mem = lambda: 0
    holder = [None] * N
    before, mem_before = rss(), mem()
    for i in range(N):
        holder[i] = object()
    print(json.dumps({"rss": rss() - before, "tracer": mem() - mem_before}))
    '''
)

# take_snapshot + compare_to on a million traces spread over 1,000 lines, for one tool (argv[1]):
# the first pair (cold: the new snapshot's memory is touched for the first time) and the best of
# three pairs, each after the previous snapshots were freed.
SNAPSHOT_CHILD = textwrap.dedent(
    r'''
    import gc, json, sys, time
    if sys.argv[1] == "tracemalloc":
        import tracemalloc
    else:
        import libleak.tracer as tracemalloc
    tracemalloc.start(1)
    src = "def make(n):\n    out = []\n" + "".join(
        "    for i in range(n): out.append(object())\n" for _ in range(1000)) + "    return out\n"
    ns = {}
    exec(compile(src, "many_lines.py", "exec"), ns)
    old = tracemalloc.take_snapshot()
    keep = ns["make"](1000)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        snap = tracemalloc.take_snapshot()
        t1 = time.perf_counter()
        stats = snap.compare_to(old, "lineno")
        t2 = time.perf_counter()
        runs.append((t1 - t0, t2 - t1))
        traces, rows = len(snap.traces), len(stats)
        del snap, stats
        gc.collect()
    take, compare = min(runs, key=sum)
    print(json.dumps({"traces": traces, "take": take, "compare": compare, "rows": rows,
                      "cold": sum(runs[0])}))
    '''
)


def run_child(source, *args):
    out = subprocess.run(
        [sys.executable, "-c", source] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, check=False)
    if out.returncode != 0:
        raise RuntimeError("child failed: %s" % out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(config, workload, loops, repeat):
    """The fastest of `repeat` runs of one configuration, in CPU seconds."""
    _, tool, nframe, sample = config
    arg = json.dumps([tool, nframe, sample, workload, loops])
    return min(run_child(CHILD, arg)["cpu"] for _ in range(repeat))


def instructions_per_loop(config, workload, loops):
    """Instructions one loop costs under `config`, counted by valgrind's callgrind: the count of a
    run of 2*loops minus that of a run of loops, so start-up cancels out.  Deterministic, unlike CPU
    time on a shared machine, so it can resolve the few per cent the sampled-mode target is about."""
    _, tool, nframe, sample = config
    counts = []
    # A fixed hash seed: with random ones, dict layouts (and so the counts) vary by about 1% a run.
    env = dict(os.environ, PYTHONHASHSEED="0")
    for n in (loops, 2 * loops):
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", CHILD,
             json.dumps([tool, nframe, sample, workload, n])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True, check=True, env=env)
        counts.append(int(re.search(r"Collected : (\d+)", out.stderr).group(1)))
    return (counts[1] - counts[0]) / loops


WORKLOADS = ("alloc", "mixed", "live100k", "live1m", "threads8")
# Loops per workload: timed runs, --quick, and --instructions (each count is run as N and 2N).
LOOPS = {"alloc": 100000, "mixed": 2000, "live100k": 20, "live1m": 3, "threads8": 10000}
QUICK_LOOPS = {"alloc": 20000, "mixed": 400, "live100k": 4, "live1m": 1, "threads8": 1000}
INSTRUCTION_LOOPS = {"alloc": 20000, "mixed": 400, "live100k": 1, "live1m": 1, "threads8": 1000}
# The targets of issue 6, on every workload: added cost of exact nframe=32 against tracemalloc(25)'s,
# of exact nframe=1 against tracemalloc(1)'s, and sampled against untraced.
TARGET_32, TARGET_1, TARGET_SAMPLED = 0.07, 0.25, 1.03


def interleaved(by_name, configs, workloads, loops, rounds):
    """Per workload, `rounds` rounds in which every configuration runs once, one after the other, each
    in a fresh interpreter: a slow spell of the shared machine then falls on every configuration of a
    round alike, instead of on all the runs of one of them.  Returns each configuration's median time
    and the times of every round."""
    per_round = {}
    for workload in workloads:
        for number in range(rounds):
            for name in configs:
                value = measure(by_name[name], workload, loops[workload], 1)
                per_round.setdefault((workload, name), []).append(value)
                sys.stderr.write("%s / %s / round %d: %s\n" % (workload, name, number + 1, value))
    return {key: statistics.median(values) for key, values in per_round.items()}, per_round


def print_results(results, workloads, configs, unit, per_round=None):
    """The table (value and ratio to untraced per workload), then each target that can be computed.
    With `per_round` (interleaved runs), an added-cost ratio is the median of the rounds' ratios, with
    their range."""
    print("| configuration | " + " | ".join("%s (ratio)" % w for w in workloads) + " |")
    print("|---|" + "---|" * len(workloads))
    for name in configs:
        cells = []
        for workload in workloads:
            value, base = results.get((workload, name)), results.get((workload, "untraced"))
            cells.append("-" if value is None or not base else unit % value + " (%.3fx)" % (value / base))
        print("| %s | %s |" % (name, " | ".join(cells)))
    print()
    print("Targets:")
    for workload in workloads:
        got = {name: results.get((workload, name)) for name in configs}
        base = got.get("untraced")
        if not base:
            continue

        def added_ratio(ours, theirs):
            """The ratio, and how it was spread over the rounds ("" without rounds)."""
            if got.get(ours) is None or got.get(theirs) is None:
                return None, ""
            if per_round is None:
                return (got[ours] - base) / max(got[theirs] - base, 1e-12), ""
            rounds = zip(per_round[(workload, ours)], per_round[(workload, theirs)], per_round[(workload, "untraced")])
            ratios = [(o - u) / max(t - u, 1e-12) for o, t, u in rounds]
            return statistics.median(ratios), " (median of %d rounds, %.3f - %.3f)" % (len(ratios), min(ratios), max(ratios))

        for ours, theirs, target in (("libleak exact nframe=32", "tracemalloc nframe=25", TARGET_32),
                                     ("libleak exact nframe=1", "tracemalloc nframe=1", TARGET_1)):
            ratio, spread = added_ratio(ours, theirs)
            if ratio is not None:
                print("- %s: added cost of %s = %.3f%s of %s's (target <= %.2f) %s; throughput %.2fx %s's"
                      % (workload, ours[8:], ratio, spread, theirs, target, "met" if ratio <= target else "MISSED",
                         got[theirs] / got[ours], theirs))
        if got.get("libleak sampled 512 KiB") is not None:
            sampled = got["libleak sampled 512 KiB"] / base
            print("- %s: sampled 512 KiB = %.3fx untraced (target <= %.2fx) %s"
                  % (workload, sampled, TARGET_SAMPLED, "met" if sampled <= TARGET_SAMPLED else "MISSED"))


def selected(names, wanted, what):
    """The members of `names` that `wanted` (a comma-separated list, or None for all) asks for."""
    if wanted is None:
        return list(names)
    chosen = [n.strip() for n in wanted.split(",")]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise SystemExit("unknown %s: %s (known: %s)" % (what, ", ".join(unknown), ", ".join(names)))
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer loops, for a smoke run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int,
                        help="interleaved rounds instead of the fastest of --repeat runs: every configuration "
                        "once a round; medians of the times and of the rounds' added-cost ratios")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per loop with callgrind instead of timing")
    parser.add_argument("--workloads", help="comma-separated subset of: " + ", ".join(WORKLOADS))
    parser.add_argument("--configs", help="comma-separated subset of the configuration names")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory and snapshot figures")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the loop counts (at least 1 loop): e.g. 0.1 for callgrind runs of tracemalloc(25)")
    args = parser.parse_args()
    workloads = selected(WORKLOADS, args.workloads, "workloads")
    configs = selected([c[0] for c in CONFIGS], args.configs, "configurations")
    if "untraced" not in configs:
        configs.insert(0, "untraced")
    by_name = {c[0]: c for c in CONFIGS}

    if args.rounds is not None and (args.rounds < 1 or args.instructions):
        raise SystemExit("--rounds takes a count of 1 or more, and does not go with --instructions")
    if args.instructions:
        print("CPython %s, %s: instructions per loop (callgrind)" % (sys.version.split()[0], os.uname().machine))
    elif args.rounds:
        print("CPython %s, %s: CPU seconds, median of %d interleaved rounds" % (
            sys.version.split()[0], os.uname().machine, args.rounds))
    else:
        print("CPython %s, %s: CPU seconds, fastest of %d" % (sys.version.split()[0], os.uname().machine, args.repeat))
    loops = INSTRUCTION_LOOPS if args.instructions else QUICK_LOOPS if args.quick else LOOPS
    loops = {w: max(1, int(n * args.scale)) for w, n in loops.items()}
    results, per_round = {}, None
    if args.rounds:
        results, per_round = interleaved(by_name, configs, workloads, loops, args.rounds)
    else:
        for workload in workloads:
            for name in configs:
                if args.instructions:
                    value = instructions_per_loop(by_name[name], workload, loops[workload])
                else:
                    value = measure(by_name[name], workload, loops[workload], args.repeat)
                results[(workload, name)] = value
                sys.stderr.write("%s / %s: %s\n" % (workload, name, value))
    print()
    print_results(results, workloads, configs, "%.0f" if args.instructions else "%.3f s", per_round)
    if args.instructions or args.no_memory:
        return

    print()
    base = run_child(MEMORY_CHILD, "none")
    for tool in ("tracemalloc", "libleak"):
        got = run_child(MEMORY_CHILD, tool)
        per_rss = (got["rss"] - base["rss"]) / 1e6
        per_own = got["tracer"] / 1e6
        line = "- %s, 1M live blocks: %.1f bytes/block of RSS, %.1f bytes/block by its own report" % (
            tool, per_rss, per_own)
        if tool == "libleak":
            line += " (target <= 32: %s)" % ("met" if max(per_rss, per_own) <= 32 else "MISSED")
        print(line)

    for tool in ("tracemalloc", "libleak"):
        try:
            snap = run_child(SNAPSHOT_CHILD, tool)
        except (RuntimeError, ValueError) as error:
            print("- %s take_snapshot + compare_to: not measured (%s)" % (tool, str(error).strip().splitlines()[-1]))
            continue
        total = snap["take"] + snap["compare"]
        line = "- %s, take_snapshot + compare_to of %d traces: %.0f ms + %.0f ms = %.0f ms (first pair, cold: %.0f ms)" % (
            tool, snap["traces"], snap["take"] * 1e3, snap["compare"] * 1e3, total * 1e3, snap["cold"] * 1e3)
        if tool == "libleak":
            line += " (target < 100 ms: %s)" % ("met" if total < 0.1 else "MISSED")
        print(line)

if __name__ == "__main__":
    main()
