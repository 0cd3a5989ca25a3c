"""A small request-handling service with three planted leaks, for `libleak run`.

It simulates N requests (default 2000, a few seconds) through one handler, the way a web framework
would call it.  Three mistakes that real services make leak memory on every request:

1. an unbounded cache: every response is kept in a module-level dict keyed by the request id;
2. a logging handler added per request (and never removed) to the service's logger;
3. a closure appended to a module-level hook list on every request.

It also does what healthy services do and what must NOT be reported as leaks: regular expressions
compiled from varying patterns (re's cache), a bounded functools.lru_cache, and source lines read
through linecache (the traceback module's cache).

    libleak run --trace examples/leaky_server.py            # the report names the three leaks
    libleak run --trace examples/leaky_server.py --fixed    # the same service with the leaks fixed

Standard library only.
"""

import argparse
import functools
import linecache
import logging
import re
import sys
import time

log = logging.getLogger("leaky_server")

# Leak 1: responses are cached by request id, and nothing ever evicts them.
_CACHE = {}

# Leak 3: callbacks to run "when the request is done"; they are appended, never removed.
HOOKS = []

ROUTES = ("users", "orders", "items", "search", "health")


class Request:
    def __init__(self, request_id, route, path, body):
        self.id = request_id
        self.route = route
        self.path = path
        self.body = body


class Response:
    def __init__(self, status, body):
        self.status = status
        self.body = body


@functools.lru_cache(maxsize=128)
def route_pattern(route, group):
    """Noise: a bounded cache; it stops growing at 128 entries."""
    return r"^/%s/(\d+)(?:/(%s))?$" % (route, group)


def parse(request):
    """Noise: re.compile of patterns that vary with the request (re keeps a bounded cache)."""
    route = request.route
    version = str(len(request.body) % 40)
    pattern = re.compile(route_pattern(route, r"\w+") + "|^/" + route + "/v" + version + "$")
    match = pattern.match(request.path)
    return route, match.group(1) if match else None


def source_line(number):
    """Noise: linecache keeps the source of this file once read."""
    return linecache.getline(__file__, number % 40 + 1)


def handle(request):
    route, item = parse(request)
    body = ("%s %s: " % (route, item)).encode() + request.body
    response = Response(200, body)
    _CACHE[request.id] = response  # leak 1: unbounded cache

    handler = logging.NullHandler()
    log.addHandler(handler)  # leak 2: a handler per request, never removed

    request_id = request.id

    def on_done():  # leak 3: a closure per request, kept in HOOKS forever
        return request_id

    HOOKS.append(on_done)
    source_line(len(body))
    return response


# The same handler with the three leaks fixed (run with --fixed): where docs/walkthrough.md ends.
RECENT_RESPONSES = 100


def handle_fixed(request):
    route, item = parse(request)
    body = ("%s %s: " % (route, item)).encode() + request.body
    response = Response(200, body)
    _CACHE[request.id] = response
    if len(_CACHE) > RECENT_RESPONSES:  # fix 1: the cache keeps the latest responses only
        del _CACHE[next(iter(_CACHE))]
    # fix 2: the handler is added once, at start-up (see main)
    request_id = request.id

    def on_done():
        return request_id

    HOOKS.append(on_done)
    try:
        source_line(len(body))
        return response
    finally:
        HOOKS.remove(on_done)  # fix 3: the hook goes when its request is done


def serve(handler, requests, pause):
    for number in range(requests):
        route = ROUTES[number % len(ROUTES)]
        request = Request("req-%06d" % number, route, "/%s/%d" % (route, number), b"x" * (200 + number % 300))
        handler(request)
        time.sleep(pause)


def main(argv):
    parser = argparse.ArgumentParser(description="A request loop with three planted leaks.")
    parser.add_argument("--requests", type=int, default=2000, help="how many requests to simulate")
    parser.add_argument("--fixed", action="store_true", help="run the handler with the leaks fixed")
    options = parser.parse_args(argv[1:])
    if options.fixed:
        log.addHandler(logging.NullHandler())
    started = time.monotonic()
    serve(handle_fixed if options.fixed else handle, options.requests, 0.002)
    print("served %d requests in %.1f s; %d cached, %d handlers, %d hooks"
          % (options.requests, time.monotonic() - started, len(_CACHE), len(log.handlers), len(HOOKS)))


if __name__ == "__main__":
    main(sys.argv)
