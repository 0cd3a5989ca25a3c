"""A WSGI app behind libleak's middleware: a request with `X-Libleak-Profile: <secret>` is profiled into
./request-profiles (allocation diff, census diff, CPU flame graph); the others run untouched.

    python3 examples/wsgi_profile.py                 # serves on http://127.0.0.1:8000
    curl -D - -H 'X-Libleak-Profile: s3cret' http://127.0.0.1:8000/users/7
    python3 examples/wsgi_profile.py --self-test     # serves one profiled request to itself and exits
"""
# args: --self-test
# expect: GET-users_7\.cpu\.svg$


import sys
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

from libleak.middleware import WSGIMiddleware

SECRET = "s3cret"
CACHE = {}  # the planted leak: one entry per request path, never evicted


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    CACHE[path + str(len(CACHE))] = [str(i) * 20 for i in range(500)]
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [("hello from %s\n" % path).encode()]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # no access log on stderr for the self-test
        pass


def main(argv):
    profiled = WSGIMiddleware(app, secret=SECRET, directory="request-profiles")
    if "--self-test" not in argv:
        with make_server("127.0.0.1", 8000, profiled) as server:
            print("serving on http://127.0.0.1:8000 (profile with -H 'X-Libleak-Profile: %s')" % SECRET)
            server.serve_forever()
        return 0
    with make_server("127.0.0.1", 0, profiled, handler_class=QuietHandler) as server:
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        url = "http://127.0.0.1:%d/users/7" % server.server_port
        with urllib.request.urlopen(urllib.request.Request(url, headers={"X-Libleak-Profile": SECRET})) as response:
            print(response.read().decode().strip())
            files = response.headers["X-Libleak-Profile-Files"]
        thread.join()
    print("profile files in request-profiles/:")
    for name in files.split(", "):
        print("  " + name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
