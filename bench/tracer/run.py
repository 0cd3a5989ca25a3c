"""Benchmark of the allocation tracer against tracemalloc (issue 3, item 11).

Runs every configuration in a fresh interpreter, so no run inherits another's heap or caches:

    untraced, tracemalloc nframe=1 and 25, libleak exact nframe=1, 32 and 128, libleak sampled 512 KiB

on two workloads:

    alloc  an allocation-heavy loop at stack depth ~30 (dicts of small objects, strings, lists)
    mixed  json round-trips, regular expressions and a class-heavy simulation

Time is the process CPU time of the workload only (time.process_time() around the timed loop, after
the interpreter started and the tracer was switched on), so start-up is subtracted.  Each
configuration runs REPEAT times and the fastest run counts (the machine is shared; the minimum is the
least disturbed).  Then: bytes per live traced block with a million live blocks (RSS growth and the
tracer's own report), and take_snapshot + compare_to on a million traces.

Usage (from a build directory, so the freshly built package is importable):

    PYTHONPATH=$PWD/pystage python /path/to/bench/tracer/run.py [--quick] [--repeat N]

Prints a Markdown table with ratios to the untraced run and whether each target of the issue is met.
"""

import argparse
import json
import os
import re
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

    def at_depth(depth, fn, n):
        if depth <= 0:
            return fn(n)
        return at_depth(depth - 1, fn, n)

    def main(tool, nframe, sample, workload, loops):
        fn = alloc_work if workload == "alloc" else mixed_work
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


def main_instructions():
    """--instructions: the untraced and sampled configurations (and tracemalloc nframe=1 as the
    peer) in instructions per loop, with ratios."""
    loops = {"alloc": 20000, "mixed": 400}
    wanted = ("untraced", "tracemalloc nframe=1", "libleak exact nframe=1", "libleak sampled 512 KiB")
    print("CPython %s, %s: instructions per loop (callgrind)" % (sys.version.split()[0], os.uname().machine))
    print()
    print("| configuration | alloc loop (ratio) | mixed (ratio) |")
    print("|---|---|---|")
    base = {}
    for config in CONFIGS:
        if config[0] not in wanted:
            continue
        cells = []
        for workload in ("alloc", "mixed"):
            value = instructions_per_loop(config, workload, loops[workload])
            base.setdefault(workload, value)
            cells.append("%.0f (%.3fx)" % (value, value / base[workload]))
        print("| %s | %s | %s |" % (config[0], cells[0], cells[1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer loops, for a smoke run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per loop with callgrind instead of timing")
    args = parser.parse_args()
    if args.instructions:
        return main_instructions()
    loops = {"alloc": 20000, "mixed": 400} if args.quick else {"alloc": 100000, "mixed": 2000}

    print("CPython %s, %s" % (sys.version.split()[0], os.uname().machine))
    results = {}
    for workload in ("alloc", "mixed"):
        for config in CONFIGS:
            results[(workload, config[0])] = measure(config, workload, loops[workload], args.repeat)
            sys.stderr.write("%s / %s: %.3f s\n" % (workload, config[0], results[(workload, config[0])]))

    print()
    print("| configuration | alloc loop (ratio) | mixed (ratio) |")
    print("|---|---|---|")
    for config in CONFIGS:
        cells = []
        for workload in ("alloc", "mixed"):
            base = results[(workload, "untraced")]
            value = results[(workload, config[0])]
            cells.append("%.3f s (%.2fx)" % (value, value / base))
        print("| %s | %s | %s |" % (config[0], cells[0], cells[1]))

    print()
    print("Targets:")
    for workload in ("alloc", "mixed"):
        base = results[(workload, "untraced")]
        added = {name: results[(workload, name)] - base for _, name in [(0, c[0]) for c in CONFIGS]}
        ratio_32 = added["libleak exact nframe=32"] / max(added["tracemalloc nframe=25"], 1e-9)
        ratio_1 = added["libleak exact nframe=1"] / max(added["tracemalloc nframe=1"], 1e-9)
        sampled = results[(workload, "libleak sampled 512 KiB")] / base
        print("- %s: added cost of exact nframe=32 = %.3f of tracemalloc(25)'s (target <= 0.100) %s"
              % (workload, ratio_32, "met" if ratio_32 <= 0.1 else "MISSED"))
        print("- %s: added cost of exact nframe=1 = %.3f of tracemalloc(1)'s (target <= 0.333) %s"
              % (workload, ratio_1, "met" if ratio_1 <= 1 / 3 else "MISSED"))
        print("- %s: sampled 512 KiB = %.3fx untraced (target <= 1.05x) %s"
              % (workload, sampled, "met" if sampled <= 1.05 else "MISSED"))

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
