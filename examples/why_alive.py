"""libleak.refs.why_alive: the path from a root to a leaked object, with every edge named.

A session that should have died with its request is still alive.  ``why_alive`` walks the heap's
references backwards and prints the shortest paths from classified roots (a module attribute, a
class attribute, a running frame, C code, ...) down to it: the module, the attribute, the dict key,
the instance attribute.  ``render`` draws the same paths with Graphviz (in process, no ``dot``
program needed) as SVG, PNG, PDF or DOT, chosen by the file's suffix.

Run: ``PYTHONPATH=BUILD/pystage python3 examples/why_alive.py [OUTDIR]`` (about a second).
"""
# expect: ^module __main__: REGISTRY -> Registry\.listeners -> list\[\d+\] -> .*Session
# expect: ^class __main__\.Registry: .*Session
# expect: ^wrote .*why_alive\.svg \(\d+ bytes, an <svg> picture\)$

import os
import sys
import tempfile

import libleak
import libleak.refs


class Session:
    def __init__(self, user):
        self.user = user
        self.buffer = bytearray(64 * 1024)

    def on_event(self, event):
        pass


class Registry:
    everyone = []  # a class attribute: a second way the sessions stay alive

    def __init__(self):
        self.listeners = []

    def subscribe(self, session):
        self.listeners.append(session.on_event)  # a bound method holds its session
        Registry.everyone.append(session)


REGISTRY = Registry()


def handle_request(user):
    session = Session(user)
    REGISTRY.subscribe(session)  # forgotten: never unsubscribed
    return len(session.buffer)


for user in ("ann", "bob", "cy"):
    handle_request(user)

def main():
    leaked = Registry.everyone[1]  # the caller's own reference is not counted as a root
    retention = libleak.why_alive(leaked, max_paths=3)
    print(retention)

    outdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="libleak-example-")
    path = os.path.join(outdir, "why_alive.svg")
    libleak.refs.render(retention, path)
    with open(path) as f:
        kind = "an <svg> picture" if "<svg" in f.read() else "not an SVG"
    print("wrote %s (%d bytes, %s)" % (path, os.path.getsize(path), kind))


main()
