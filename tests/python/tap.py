"""Runs pytest and reports each test as a TAP line, so `make check` counts Python tests one by one.

Usage: python tap.py [pytest arguments...].  pytest's own output goes to stderr; TAP goes to stdout.
"""

import os
import sys


class TapReporter:
    """Turns pytest's test reports into TAP lines."""

    def __init__(self, stream):
        self.stream = stream
        self.count = 0

    def _emit(self, ok, name, directive=""):
        self.count += 1
        line = "%s %d - %s" % ("ok" if ok else "not ok", self.count, name.replace("#", "_"))
        if directive:
            line += " # " + directive
        self.stream.write(line + "\n")
        self.stream.flush()

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            if report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
                self._emit(True, report.nodeid, "SKIP " + str(reason))
            else:
                self._emit(report.passed, report.nodeid)
        elif report.failed:
            self._emit(False, report.nodeid + " [" + report.when + "]")
        elif report.when == "setup" and report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
            self._emit(True, report.nodeid, "SKIP " + str(reason))

    def pytest_collectreport(self, report):
        if report.failed:
            self._emit(False, "collect " + report.nodeid)


def main():
    try:
        import pytest
    except ImportError:
        sys.stdout.write("1..1\nnot ok 1 - pytest is not installed for %s (pip install pytest)\n" % sys.executable)
        return 1
    tap = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    reporter = TapReporter(tap)
    here = os.path.dirname(os.path.abspath(__file__))
    args = ["-p", "no:cacheprovider", "-q", "-rfE", here] + sys.argv[1:]
    code = pytest.main(args, plugins=[reporter])
    tap.write("1..%d\n" % reporter.count)
    tap.flush()
    if code == 5 and reporter.count == 0:  # no tests collected: say so rather than pass silently
        tap.write("not ok - no Python tests were collected\n")
        return 1
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
