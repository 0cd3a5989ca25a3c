"""libleak.faults on a small threaded program: what every thread is doing, and a watchdog per call.

Three worker threads get stuck in recognisable ways:

- ``order-consumer`` waits on an empty queue (blocked in a C call: a lock acquire);
- ``tree-walker`` is 20 calls deep in a recursion, waiting at the bottom;
- ``ticker`` sleeps in ``time.sleep`` inside a generator.

Part 1 dumps every thread on request, with the same lines and in the same order as faulthandler
(the newest thread first, the main thread last and marked ``Current thread``).  Part 2 guards two calls with scoped watchdogs: a nested one whose call finishes in time is
cancelled and prints nothing, and an outer one catches a call that gets stuck.  Each watchdog has
its own timer, so the inner one's cancellation does not touch the outer one (faulthandler's single
``dump_traceback_later`` timer would have been replaced).

Run it from a build tree with ``PYTHONPATH=BUILD/pystage python3 examples/dump_threads.py``
(``scripts/demo`` does that).  It takes about a second and exits 0.
"""

import os
import queue
import sys
import tempfile
import threading
import time

import libleak.faults

orders = queue.Queue()
stop = threading.Event()


def consume_orders():
    while not stop.is_set():
        order = orders.get()  # blocks: nothing is ever ordered
        if order is None:
            return


def walk_tree(depth):
    if depth == 0:
        stop.wait()
        return
    walk_tree(depth - 1)


def ticks():
    while not stop.is_set():
        time.sleep(0.05)
        yield time.monotonic()


def tick():
    for _ in ticks():
        pass


def heading(text):
    sys.stdout.write("\n=== %s ===\n\n" % text)
    sys.stdout.flush()


def quick_lookup():
    """Finishes long before its watchdog would fire."""
    return sum(range(1000))


def stuck_call(dump_file):
    """Stands for a call that hangs (a lost reply, a deadlock): it waits until its watchdog has
    dumped the stacks, and gives up after 30 seconds in any case."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "most recent call first" in read_without_moving(dump_file):
            return
        time.sleep(0.02)


def read_without_moving(file):
    """What the watchdog wrote so far.  pread leaves the file offset alone: the watchdog is
    writing at that offset, and a seek would make it overwrite its own output."""
    return os.pread(file.fileno(), os.fstat(file.fileno()).st_size, 0).decode()


def main():
    workers = [
        threading.Thread(target=consume_orders, name="order-consumer", daemon=True),
        threading.Thread(target=walk_tree, args=(20,), name="tree-walker", daemon=True),
        threading.Thread(target=tick, name="ticker", daemon=True),
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.1)  # let them reach the places where they wait

    heading("1. Every thread, on request: libleak.faults.dump_traceback(all_threads=True)")
    for worker in workers:
        print("thread 0x%016x is %s" % (worker.ident, worker.name))
    print("thread 0x%016x is the main thread\n" % threading.main_thread().ident)
    sys.stdout.flush()
    libleak.faults.dump_traceback(sys.stdout, all_threads=True)

    heading("2. Scoped watchdogs: with libleak.faults.watchdog(timeout): ...")
    with tempfile.TemporaryFile("w+") as dump_file:
        with libleak.faults.watchdog(0.3, file=dump_file):
            # A nested watchdog around a fast call: cancelled on time, prints nothing, and leaves
            # the outer watchdog armed.
            with libleak.faults.watchdog(5.0, file=dump_file):
                quick_lookup()
            print("the inner watchdog (5 s) was cancelled when quick_lookup() returned")
            print("stuck_call() now hangs; the outer watchdog (0.3 s) fires and dumps every thread:\n")
            sys.stdout.flush()
            stuck_call(dump_file)
        sys.stdout.write(read_without_moving(dump_file))

    heading("done")
    stop.set()
    orders.put(None)
    for worker in workers:
        worker.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
