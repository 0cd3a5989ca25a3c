"""libleak.faults.watchdog: a timer per request, not one per process.

Two worker threads serve requests, each request under its own watchdog of 0.3 s.  Fast requests
cancel their timer and print nothing; the one request that hangs has every thread's stack dumped
while it is still stuck, naming the function it hangs in.  faulthandler's single
``dump_traceback_later`` timer cannot do this: a second request's timer would replace the first's.

Run: ``PYTHONPATH=BUILD/pystage python3 examples/faults_watchdog.py`` (about a second).
"""
# expect: ^=== 20 requests on two threads, each under a watchdog of 0\.3 s$
# expect: ^Timeout \(0:00:00\.300000\)!$
# expect: ^Thread 0x[0-9a-f]+ \(most recent call first\):$
# expect: ^  File ".*faults_watchdog\.py", line \d+ in wait_for_lock$
# expect: ^=== done: the fast requests printed nothing, the one that hung was dumped above$

import sys
import threading
import time

import libleak.faults

stuck = threading.Event()


def wait_for_lock():
    stuck.wait(1.0)  # a lock held elsewhere: the request hangs here


@libleak.faults.watchdog(0.3, file=sys.stdout)
def handle_request(n):
    if n == 13:
        wait_for_lock()
    else:
        time.sleep(0.01)


def worker(requests):
    for n in requests:
        handle_request(n)


print("=== 20 requests on two threads, each under a watchdog of 0.3 s", flush=True)
threads = [threading.Thread(target=worker, args=(range(i, 20, 2),)) for i in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("=== done: the fast requests printed nothing, the one that hung was dumped above")
