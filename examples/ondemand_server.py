"""A small asyncio server that dumps its state on `kill -USR2 PID`.

Run it with the dumps asked for from the environment (libleak installed, so its .pth runs)::

    LIBLEAK_DUMP_SIGNAL=USR2 LIBLEAK_TRACE=10 LIBLEAK_DIR=/tmp/dumps python examples/ondemand_server.py

or as it is (it installs the signal itself then, into the current directory).  It prints its PID;
from another shell, ``kill -USR2 PID`` writes the stacks, the pending request tasks (each stopped
in ``slow_lookup``), the tracer's snapshot and a census, and prints where.  ``--once`` makes it
connect a few clients, send the signal to itself, and stop after the dump: a self-contained demo.
"""
# args: --once
# expect: ^serving on port \d+, pid \d+


import asyncio
import os
import signal
import sys

import libleak.ondemand

SESSIONS = {}  # grows with every request: what the census and snapshot of a dump show


async def slow_lookup(key):
    await asyncio.sleep(3600)  # a backend that never answers: the tasks file shows requests waiting here
    return key


async def handle(reader, writer):
    try:
        key = (await reader.readline()).strip()
        SESSIONS[key] = bytearray(10000)
        writer.write(b"%s\n" % await slow_lookup(key))
        await writer.drain()
    except asyncio.CancelledError:  # the server stops: end the request quietly
        pass
    writer.close()


async def clients(port, count):
    """A few clients whose requests stay pending, for the demo."""
    connections = []
    for i in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"client-%d\n" % i)
        await writer.drain()
        connections.append(writer)
    while len(SESSIONS) < count:
        await asyncio.sleep(0.01)
    return connections


async def main(once):
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print("serving on port %d, pid %d: kill -USR2 %d writes a dump" % (port, os.getpid(), os.getpid()), flush=True)
    if not once:
        await server.serve_forever()
        return
    await clients(port, 3)
    before = libleak.ondemand.dumps_written()
    os.kill(os.getpid(), libleak.ondemand.installed_signal())
    while libleak.ondemand.dumps_written() == before:  # the loop runs on while the dump is written
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    if libleak.ondemand.installed_signal() is None:  # not asked for by LIBLEAK_DUMP_SIGNAL
        libleak.ondemand.install(signal.SIGUSR2)
    try:
        asyncio.run(main("--once" in sys.argv[1:]))
    finally:
        libleak.ondemand.uninstall()
