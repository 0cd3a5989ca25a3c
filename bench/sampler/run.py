"""The CPU sampler against the peers (issue 9, item 6): overhead, samples delivered, hot share.

Run from a build directory so the freshly built package is importable:

    cd build/py3.11 && PYTHONPATH=$PWD/pystage python3 /path/to/libleak/bench/sampler/run.py

Each configuration runs the same fixed workload in a fresh interpreter: two threads, each calling
hot_loop() (a pure-Python loop, the hot function) and c_calls() (zlib, sorted and sha256: time spent
in C) in turn.  The figure is the process CPU time of the workload (all threads, the profiler's own
threads and signal handling included), the best of --repeat runs, as a ratio to the unprofiled run.

- delivered: samples folded / samples asked for (the threads' CPU time divided by the interval);
  for libleak's cpu mode also the signals actually taken (CPU clocks expire on the kernel tick).
- hot share: the hot function's share of self time: libleak's and py-spy's samples, cProfile's
  tottime (one cProfile per thread, merged; "cprofile" times with the wall clock, as cProfile does by
  default, "cprofile-cpu" with each thread's CPU clock, the measure libleak's cpu mode samples),
  pyinstrument's self time (it follows one thread: the main one).  Wall-clock measures count the
  time a thread waits for the GIL in the function it waits in, so they differ from CPU shares.

Options: --repeat N (default 3), --rounds N (work per thread, default 40), --quick.

--instructions counts instructions instead, under valgrind's callgrind, where the noise of a shared
machine does not reach: the cost of one round is the count of a run of 2N rounds minus that of N
rounds, divided by N (start-up, imports, the session's start and stop and the profile's making
cancel out).  Under callgrind the workload runs S times slower (S is measured: the unprofiled run's
CPU time there against here), so the sampler is asked for HZ / S samples a second, which gives the
same samples per round as HZ natively.  Two things make the figure an upper bound: the manager's
20 ms rounds come S times as often per round there, and CPU clocks are not held to the kernel tick
(~250 signals a second here), so every sample is a signal.  The kernel's side of a signal (a few
microseconds) is not counted.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

WORKLOAD = r'''
import hashlib, json, os, statistics, sys, threading, time, zlib
config = sys.argv[1]
rounds = int(sys.argv[2])
DATA = bytes(range(256)) * 200

def hot_loop(n):
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return total

def c_calls():
    zlib.compress(DATA, 6)
    sorted(range(20000, 0, -1))
    hashlib.sha256(DATA * 4).digest()

profiles = []
def work(thread_cpu):
    prof = None
    if config.startswith("cprofile"):
        import cProfile
        # cprofile-cpu measures each thread's CPU time, as libleak's cpu mode samples it
        prof = cProfile.Profile(time.thread_time) if config == "cprofile-cpu" else cProfile.Profile()
        prof.enable()
    start = time.thread_time()
    for _ in range(rounds):
        hot_loop(60000)
        c_calls()
    thread_cpu.append(time.thread_time() - start)
    if prof is not None:
        prof.disable()
        profiles.append(prof)

def run_workload():
    cpu = []
    t = threading.Thread(target=work, args=(cpu,))
    t.start()
    work(cpu)
    t.join()
    return sum(cpu)
'''

CHILD = WORKLOAD + r'''
result = {}
sampler = None
pyi = None
if config.startswith("libleak"):
    from libleak import sampler as libleak_sampler
    _, mode, hz = config.split("-")
    sampler = libleak_sampler.Sampler(interval=1.0 / float(hz), mode=mode)
elif config == "pyinstrument":
    import pyinstrument
    pyi = pyinstrument.Profiler(interval=0.001)

c0, w0 = time.process_time(), time.perf_counter()
if sampler: sampler.start()
if pyi: pyi.start()
threads_cpu = run_workload()
if pyi: pyi.stop()
if sampler: prof = sampler.stop()
c1, w1 = time.process_time(), time.perf_counter()
result.update(cpu=c1 - c0, wall=w1 - w0, threads_cpu=threads_cpu)

if sampler:
    stats = libleak_sampler.Sampler.stats()
    hot = sum(r.self_samples for r in prof.top(1000) if r.function == "hot_loop")
    result.update(samples=prof.samples, signals=stats["signals"], dropped=prof.dropped,
                  hot_share=hot / max(1, prof.samples), interval=sampler.interval)
elif config.startswith("cprofile"):
    import pstats
    st = pstats.Stats(profiles[0])
    for p in profiles[1:]:
        st.add(p)
    total = sum(v[2] for v in st.stats.values())
    hot = sum(v[2] for k, v in st.stats.items() if k[2] == "hot_loop")
    result.update(hot_share=hot / total)
elif pyi:
    def walk(frame, acc):
        acc[0] += frame.total_self_time
        if frame.function == "hot_loop":
            acc[1] += frame.total_self_time
        for child in frame.children:
            walk(child, acc)
    acc = [0.0, 0.0]
    root = pyi.last_session.root_frame()
    if root is not None:
        walk(root, acc)
    result.update(hot_share=acc[1] / acc[0] if acc[0] else None)
print("RESULT " + json.dumps(result))
'''


# The sampler's overhead without the noise between processes (code and heap layout alone move a
# CPU-bound loop by several per cent from one interpreter to the next): one interpreter runs the
# workload in blocks, sampler on and off in turn (on-off, off-on, ...), and the figure is the median
# of the on/off ratios of neighbouring blocks, so that load changes hit both halves of a pair alike.
# Each "on" block starts and stops a whole session, so its fixed costs are in the figure.
PAIRED = WORKLOAD + r'''
from libleak import sampler as libleak_sampler
_, mode, hz = config.split("-")
ratios = []
for pair in range(int(sys.argv[3])):
    cpu = {}
    for on in ((True, False) if pair % 2 == 0 else (False, True)):
        c0 = time.process_time()
        if on:
            sampler = libleak_sampler.Sampler(interval=1.0 / int(hz), mode=mode)
            sampler.start()
        run_workload()
        if on:
            sampler.stop()
        cpu[on] = time.process_time() - c0
    ratios.append(cpu[True] / cpu[False])
print("RESULT " + json.dumps({"median": statistics.median(ratios), "ratios": sorted(ratios)}))
'''


def run_paired(python, paired, config, rounds, pairs):
    out = subprocess.run([python, paired, config, str(rounds), str(pairs)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError("paired %s failed:\n%s" % (config, out.stderr))


def run_child(python, child, config, rounds):
    out = subprocess.run([python, child, config, str(rounds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError("%s failed:\n%s" % (config, out.stderr))


def run_pyspy(python, child, rounds, workdir):
    """py-spy record at 1 kHz around a child running the unprofiled config; None and a reason when
    py-spy is missing or cannot attach."""
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(python), "py-spy")
    if not os.path.exists(pyspy):
        return None, "py-spy is not installed"
    raw = os.path.join(workdir, "pyspy.txt")
    out = subprocess.run([pyspy, "record", "-r", "1000", "-f", "raw", "-t", "-o", raw, "--", python, child, "none",
                          str(rounds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    result = None
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    if out.returncode != 0 or result is None or not os.path.exists(raw):
        return None, "py-spy could not attach: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    total = hot = 0
    with open(raw) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            total += int(count)
            if stack.split(";")[-1].startswith("hot_loop "):
                hot += int(count)
    result.update(samples=total, hot_share=hot / max(1, total), interval=0.001)
    return result, None


def run_counted(python, child, config, rounds):
    """Instructions and the child's result, under callgrind."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, child, config,
                          str(rounds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    counted = re.search(r"Collected : (\d+)", out.stderr)
    result = [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or counted is None or not result:
        raise RuntimeError("callgrind run of %s failed:\n%s" % (config, out.stderr[-2000:]))
    return int(counted.group(1)), result[0]


def instructions(python, child, rounds):
    """The --instructions table: instructions per round, unprofiled and under libleak (see the top)."""
    native = min(run_child(python, child, "none", rounds)["cpu"] for _ in range(3)) / rounds
    base_n, base = run_counted(python, child, "none", rounds)
    base_2n, _ = run_counted(python, child, "none", 2 * rounds)
    per_round = (base_2n - base_n) / rounds
    slowdown = base["cpu"] / rounds / native
    print("CPython %s: instructions per round (callgrind), %d and %d rounds; callgrind runs the workload %.0fx"
          " slower than here, so each rate is asked for %.0fx slower" % (sys.version.split()[0], rounds, 2 * rounds,
                                                                          slowdown, slowdown))
    print("| configuration | instructions per round | overhead | samples per round | signals per round |")
    print("|---|---|---|---|---|")
    print("| none | %.0f | - | - | - |" % per_round)
    for mode in ("cpu", "wall"):
        for hz in (100, 1000):
            config = "libleak-%s-%g" % (mode, hz / slowdown)
            count_n, r_n = run_counted(python, child, config, rounds)
            count_2n, r_2n = run_counted(python, child, config, 2 * rounds)
            cost = (count_2n - count_n) / rounds
            print("| libleak %s %d Hz | %.0f | %+.2f%% | %.1f | %.1f |" % (
                mode, hz, cost, 100.0 * (cost / per_round - 1), (r_2n["samples"] - r_n["samples"]) / rounds,
                (r_2n["signals"] - r_n["signals"]) / rounds))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pairs", type=int, default=20, help="on/off pairs of the in-process overhead figure")
    ap.add_argument("--pair-rounds", type=int, default=10, help="rounds per thread in one block of a pair")
    ap.add_argument("--instructions", action="store_true", help="count instructions under callgrind (see the top)")
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.rounds, args.pairs, args.pair_rounds = 1, 8, 3, 4
    python = sys.executable
    configs = ["none", "libleak-cpu-100", "libleak-cpu-1000", "libleak-wall-100", "libleak-wall-1000", "cprofile",
               "cprofile-cpu"]
    try:
        import pyinstrument  # noqa: F401
        configs.append("pyinstrument")
    except ImportError:
        print("pyinstrument: not installed, skipped")
    with tempfile.TemporaryDirectory() as workdir:
        child = os.path.join(workdir, "child.py")
        with open(child, "w") as f:
            f.write(CHILD)
        paired = os.path.join(workdir, "paired.py")
        with open(paired, "w") as f:
            f.write(PAIRED)
        if args.instructions:
            if not shutil.which("valgrind"):
                raise SystemExit("--instructions needs valgrind")
            instructions(python, child, 4 if args.quick else 10)
            return
        best = {}
        for _ in range(args.repeat):
            for config in configs:  # interleaved, so load changes hit every configuration alike
                r = run_child(python, child, config, args.rounds)
                if config not in best or r["cpu"] < best[config]["cpu"]:
                    best[config] = r
            r, why = run_pyspy(python, child, args.rounds, workdir)
            if r is None:
                pyspy_skip = why
            elif "py-spy" not in best or r["cpu"] < best["py-spy"]["cpu"]:
                best["py-spy"] = r
        base = best["none"]["cpu"]
        print("CPython %s, %d rounds per thread, best of %d" % (sys.version.split()[0], args.rounds, args.repeat))
        print("| configuration | CPU s | overhead | samples | delivered | signals | hot share |")
        print("|---|---|---|---|---|---|---|")
        for config, r in best.items():
            delivered = signals = samples = "-"
            if "samples" in r:
                samples = str(r["samples"])
                asked = r["threads_cpu"] / r["interval"]
                delivered = "%.0f%%" % (100.0 * r["samples"] / asked) if "-wall-" not in config and config != "py-spy" else "(wall)"
            if "signals" in r:
                signals = str(r["signals"])
            share = "-" if r.get("hot_share") is None else "%.1f%%" % (100 * r["hot_share"])
            overhead = "%+.1f%%" % (100.0 * (r["cpu"] / base - 1)) if config != "none" else "-"
            print("| %s | %.3f | %s | %s | %s | %s | %s |" % (config, r["cpu"], overhead, samples, delivered, signals,
                                                             share))
        if "py-spy" not in best:
            print("py-spy: skipped: %s" % pyspy_skip)
        else:
            print("py-spy runs outside the process: its CPU is not in the child's figure (overhead is the"
                  " pauses it causes)")
        print()
        print("Overhead in one process, sampler on and off in turn: median of %d on/off pairs, %d rounds per"
              " thread a block" % (args.pairs, args.pair_rounds))
        print("| configuration | overhead (median pair) | middle half of the pairs |")
        print("|---|---|---|")
        for config in [c for c in configs if c.startswith("libleak")]:
            r = run_paired(python, paired, config, args.pair_rounds, args.pairs)
            ratios = r["ratios"]
            quarter = len(ratios) // 4
            print("| %s | %+.1f%% | %+.1f%% to %+.1f%% |" % (config, 100 * (r["median"] - 1),
                                                          100 * (ratios[quarter] - 1), 100 * (ratios[-1 - quarter] - 1)))


if __name__ == "__main__":
    main()
