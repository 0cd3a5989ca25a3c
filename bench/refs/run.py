"""Benchmark of the reference index, why_alive and find_backref_chain against objgraph and guppy3
(issue 8, item 8; the dominator rows are bench/refs/dominators').

One run, one interpreter, one heap: 200,000 instances of a class, each holding a list with a float
and a str (about a million objects).  On it, in CPU time (time.process_time: the machine is shared; each libleak row the best of
--repeat runs; the peers run once, they take seconds):

    why_alive, 10-link chain     a module attribute -> 9 Link objects -> the target; index build included
    why_alive, fan-in            a target held by 1,000 lists that a module holds; index build included
    find_backref_chain, fan-in   libleak's and objgraph's, predicate is_proper_module
    guppy3 shortest path         hpy().iso(target).sp on the fan-in target (when guppy3 imports)
    index bytes per edge         _libleak.refs_index_stats()

Usage (from a build directory, so the freshly built package is importable):

    PYTHONPATH=$PWD/pystage python /path/to/bench/refs/run.py [--repeat N] [--instances N] [--no-objgraph]

Prints a Markdown table, the ratios and whether each target is met.
"""

import argparse
import sys
import time
import types

import libleak.objgraph as lobjgraph
from libleak import _libleak, refs


class Item:
    def __init__(self, i):
        self.values = [float(i), "item-%d" % i]


class Link:
    def __init__(self, next_link):
        self.next = next_link


def best(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
    return min(times), result


def once(fn):
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--instances", type=int, default=200000)
    parser.add_argument("--no-objgraph", action="store_true", help="leave out objgraph (about 20 s)")
    args = parser.parse_args()

    # The peers are imported first, so that every measurement sees the same heap.
    try:
        import objgraph
    except ImportError:
        objgraph = None
    try:
        from guppy import hpy

        guppy_why = None
    except ImportError as e:
        hpy, guppy_why = None, "guppy3 does not import here (%s)" % e

    module = types.ModuleType("bench_refs_app")
    sys.modules[module.__name__] = module
    module.ITEMS = [Item(i) for i in range(args.instances)]

    chain_target = bytearray(64)
    link = Link(chain_target)
    for _ in range(8):
        link = Link(link)
    module.CHAIN = link  # module -> dict -> 9 Links (.next) -> target: 10 links from the module's dict
    fan_target = bytearray(64)
    module.HOLDERS = [[fan_target] for _ in range(1000)]

    nodes, edges, nbytes = _libleak.refs_index_stats()
    rows = []
    t_chain, retention = best(lambda: refs.why_alive(chain_target), args.repeat)
    assert retention.paths and retention.paths[0].root_kind == "module", retention
    rows.append(("libleak why_alive, 10-link chain from a module", t_chain, len(retention.paths[0].edges)))
    t_fan, retention = best(lambda: refs.why_alive(fan_target), args.repeat)
    assert retention.paths and retention.paths[0].root_kind == "module", retention
    rows.append(("libleak why_alive, target held by 1,000 containers", t_fan, len(retention.paths[0].edges)))
    t_lchain, chain = best(lambda: lobjgraph.find_backref_chain(fan_target, lobjgraph.is_proper_module), args.repeat)
    assert chain[0] is module, chain[0]
    rows.append(("libleak objgraph.find_backref_chain, fan-in", t_lchain, len(chain)))

    t_ochain = None
    if objgraph is not None and not args.no_objgraph:
        t_ochain, theirs = once(lambda: objgraph.find_backref_chain(fan_target, objgraph.is_proper_module))
        assert theirs[0] is module and len(theirs) == len(chain), (len(theirs), len(chain))
        rows.append(("objgraph find_backref_chain, fan-in", t_ochain, len(theirs)))
    t_guppy = None
    if hpy is not None:
        h = hpy()
        t_guppy, path = once(lambda: str(h.iso(fan_target).sp))
        rows.append(("guppy3 hpy().iso(target).sp, fan-in", t_guppy, None))

    print("Python %s, %d instances: %d objects in the index, %d references, %.1f bytes per reference "
          "(%.1f MB)" % (sys.version.split()[0], args.instances, nodes, edges, nbytes / edges, nbytes / 1e6))
    print()
    print("| operation | time | path length |")
    print("|---|---:|---:|")
    for name, seconds, length in rows:
        print("| %s | %.1f ms | %s |" % (name, seconds * 1000, "" if length is None else length))
    print()
    print("why_alive, chain <= 100 ms: %s (%.1f ms)" % ("met" if t_chain <= 0.1 else "MISSED", t_chain * 1000))
    print("why_alive, fan-in <= 100 ms: %s (%.1f ms)" % ("met" if t_fan <= 0.1 else "MISSED", t_fan * 1000))
    if t_ochain is not None:
        ratio = t_ochain / t_lchain
        print("find_backref_chain vs objgraph: %.0fx faster (target >= 100x: %s)" % (ratio, "met" if ratio >= 100 else "MISSED"))
    else:
        print("find_backref_chain vs objgraph: not measured (objgraph %s)" % ("left out" if objgraph else "not installed"))
    if t_guppy is not None:
        print("guppy3 .sp vs libleak why_alive (fan-in): %.1fx; vs libleak find_backref_chain: %.1fx"
              % (t_guppy / t_fan, t_guppy / t_lchain))
    else:
        print("guppy3: not measured: %s" % guppy_why)
    print("index bytes per reference <= 24: %s (%.1f)" % ("met" if nbytes / edges <= 24 else "MISSED", nbytes / edges))


if __name__ == "__main__":
    main()
