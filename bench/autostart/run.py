"""What libleak.pth costs at interpreter start, and what a dump costs (run by hand).

    PYTHONPATH=build/py3.11/pystage python bench/autostart/run.py [--runs 21]

Startup: `python -c pass` with a user site holding libleak.pth against the same site without it
(no LIBLEAK_* variable set: the .pth must cost next to nothing), and with LIBLEAK_DUMP_SIGNAL set
(libleak imported, the dump thread started) against PYTHONFAULTHANDLER=1, the peer's way of
asking for stack dumps at start.  Runs are interleaved and the medians compared, as ratios.

Dump: one libleak.ondemand.dump() (stacks, census) of a process holding 100,000 small lists,
against the peer's pieces of the same job: faulthandler.dump_traceback plus a gc.get_objects()
count by type (what objgraph's typestats does).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PTH = os.path.join(HERE, "..", "..", "pybind", "libleak.pth")


def user_site(root, with_pth):
    site = os.path.join(root, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    os.makedirs(site)
    if with_pth:
        shutil.copy(PTH, site)
    return root


def start_time(env):
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - began


def startup(runs):
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIBLEAK_") and k != "PYTHONFAULTHANDLER"}
    with tempfile.TemporaryDirectory() as root:
        plain = dict(base, PYTHONUSERBASE=user_site(os.path.join(root, "plain"), False))
        with_pth = dict(base, PYTHONUSERBASE=user_site(os.path.join(root, "pth"), True))
        dumps = dict(with_pth, LIBLEAK_DUMP_SIGNAL="USR2", LIBLEAK_DIR=root)
        faulthandler = dict(plain, PYTHONFAULTHANDLER="1")
        cases = {"no .pth": plain, ".pth, no variable": with_pth, "LIBLEAK_DUMP_SIGNAL": dumps,
                 "PYTHONFAULTHANDLER": faulthandler}
        times = {name: [] for name in cases}
        for _ in range(runs):
            for name, env in cases.items():
                times[name].append(start_time(env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print("interpreter start, median of %d (%s):" % (runs, sys.version.split()[0]))
    for name, value in medians.items():
        print("  %-22s %7.1f ms" % (name, value * 1000))
    print("  .pth without variables / no .pth:        %.3fx" % (medians[".pth, no variable"] / medians["no .pth"]))
    print("  LIBLEAK_DUMP_SIGNAL / PYTHONFAULTHANDLER: %.2fx" % (medians["LIBLEAK_DUMP_SIGNAL"] / medians["PYTHONFAULTHANDLER"]))


DUMP_CODE = r"""
import collections, faulthandler, gc, os, sys, tempfile, time
import libleak.ondemand
held = [[float(i), str(i)] for i in range(100000)]
folder = tempfile.mkdtemp()
def peer():
    with open(os.path.join(folder, "peer-stacks.txt"), "w") as out:
        faulthandler.dump_traceback(out)
    counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
    with open(os.path.join(folder, "peer-census.txt"), "w") as out:
        out.writelines("%s %d\n" % item for item in counts.most_common())
def ours():
    libleak.ondemand.dump(folder)
for f in (peer, ours):
    f()
best = {}
for f in (peer, ours) * 5:
    began = time.process_time()
    f()
    best[f.__name__] = min(best.get(f.__name__, 1e9), time.process_time() - began)
print("  peer (faulthandler + gc.get_objects census): %.1f ms CPU" % (best["peer"] * 1000))
print("  libleak.ondemand.dump (stacks + full census):  %.1f ms CPU" % (best["ours"] * 1000))
print("  ratio ours / peer: %.2fx" % (best["ours"] / best["peer"]))
"""


def dump_cost():
    print("one dump of a process holding 100,000 lists of a float and a str (best of 5, CPU):")
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-c", DUMP_CODE], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, universal_newlines=True, check=True)
    sys.stdout.write(result.stdout)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    startup(args.runs)
    dump_cost()
