"""Benchmark of the pytest leak gate (issue 10, item 3): what `--libleak` costs a test session.

No peer runs a test's call again to look for growth (pytest-memray's limit_leaks marker needs a
per-test byte limit, and is not installed here), so the rows compare the gate with the same
session without it.  A module of TESTS small clean tests (each makes and drops a few hundred
objects) runs in a fresh pytest process:

    plain            -p libleak.pytest_plugin, no --libleak (the plugin loaded, nothing checked)
    gate             --libleak (defaults: 2 warm-up runs, 5 measured runs, a census after each)
    gate + trace     --libleak --libleak-trace

Each row is the child process's CPU time (user + system, from getrusage), the fastest of REPEAT
runs (the machine is shared; the minimum is the least disturbed), and its ratio to `plain`; the
last column is the cost per checked test.  The gate's own summary line of the last run is printed
too.

Usage (from a build directory, so the freshly built package is importable):

    PYTHONPATH=$PWD/pystage python /path/to/bench/pytest/run.py [--repeat N] [--tests N]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile

TEST_MODULE = '''
import pytest


class Record:
    def __init__(self, n):
        self.values = [float(n)] * 4
        self.name = "record-%d" % n


@pytest.mark.parametrize("n", range({tests}))
def test_clean(n):
    records = [Record(i) for i in range(300)]
    assert sum(len(r.values) for r in records) == 1200
'''


def child_cpu(arguments, cwd):
    """Runs pytest in a child and returns (its CPU seconds, its output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                           "libleak.pytest_plugin"] + arguments, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit("pytest failed:\n" + done.stdout)
    seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tests", type=int, default=40)
    options = parser.parse_args()
    rows = [("plain", []), ("gate", ["--libleak"]), ("gate + trace", ["--libleak", "--libleak-trace"])]
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "test_clean.py"), "w") as f:
            f.write(TEST_MODULE.format(tests=options.tests))
        results, summary = {}, ""
        for name, arguments in rows:
            best = None
            for _ in range(options.repeat):
                seconds, output = child_cpu(arguments, folder)
                best = seconds if best is None else min(best, seconds)
                if arguments:
                    summary = "\n".join(line for line in output.splitlines() if "checked" in line or "own calls" in line)
            results[name] = best
    print("CPython %s, %d tests, fastest of %d, process CPU time\n" % (sys.version.split()[0], options.tests,
                                                                        options.repeat))
    print("| session | CPU s | ratio to plain | added per checked test |")
    print("|---|---|---|---|")
    for name, _ in rows:
        added = (results[name] - results["plain"]) / options.tests
        print("| %s | %.2f | %.1fx | %s |" % (name, results[name], results[name] / results["plain"],
                                              "-" if name == "plain" else "%.0f ms" % (added * 1000)))
    print("\nthe gate's own summary (last run):\n" + summary)


if __name__ == "__main__":
    main()
