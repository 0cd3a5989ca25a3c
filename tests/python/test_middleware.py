"""The WSGI and ASGI middleware: a request with the secret is profiled into files that the response
names, a wrong or missing secret is an ordinary request, and the response passes through as the
application made it (streamed, closed; lifespan and websocket scopes untouched).  WSGI apps are
called directly with wsgiref's test environ; ASGI apps run under asyncio.run."""

import asyncio
import gzip
import os
import re
import xml.etree.ElementTree as ET
from wsgiref.util import setup_testing_defaults

import pytest

from libleak import middleware, tracer
from libleak.middleware import ASGIMiddleware, WSGIMiddleware

SECRET = "correct horse"


class Leaked:
    pass


LEAKED = []


def spin():
    total = 0
    for i in range(20000):
        total += i * i
    return total


class LeakyWSGI:
    """A WSGI app that leaks 50 Leaked per request and streams its body as a generator, recording
    whether close() was called."""

    def __init__(self):
        self.closed = 0

    def __call__(self, environ, start_response):
        LEAKED.extend(Leaked() for _ in range(50))
        spin()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return self.body()

    def body(self):
        try:
            yield b"hello "
            yield b"world"
        finally:
            self.closed += 1


def call_wsgi(app, headers=None, query=""):
    """Calls a WSGI app as a server would: returns (status, headers, body bytes), close() called."""
    environ = {"PATH_INFO": "/api/users", "QUERY_STRING": query}
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, list(response_headers)
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return seen["status"], seen["headers"], body


def files_of(headers):
    for name, value in headers:
        if name.lower() == middleware.FILES_HEADER.lower():
            return value.split(", ")
    return None


@pytest.fixture(autouse=True)
def no_tracer_left():
    was = tracer.is_tracing()
    yield
    assert tracer.is_tracing() == was
    del LEAKED[:]


def test_profiled_wsgi_request_writes_the_files_it_names(tmp_path):
    inner = LeakyWSGI()
    app = WSGIMiddleware(inner, secret=SECRET, directory=tmp_path)
    status, headers, body = call_wsgi(app, {"X-Libleak-Profile": SECRET})
    assert status == "200 OK" and body == b"hello world" and inner.closed == 1
    assert ("Content-Type", "text/plain") in headers
    names = files_of(headers)
    assert names is not None and len(names) == 4
    assert sorted(os.listdir(tmp_path)) == sorted(names)
    by_suffix = {name.split("-GET-api_users.")[1]: tmp_path / name for name in names}
    assert set(by_suffix) == {"snapshot-diff.txt", "census-diff.txt", "cpu.svg", "cpu.pb.gz"}
    census = by_suffix["census-diff.txt"].read_text()
    assert re.match(r"census diff for GET /api/users \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, pid %d, \d+\.\d ms\)\n"
                    % os.getpid(), census), census
    assert "%s.Leaked: count=50 (+50)" % __name__ in census, census
    snapshot = by_suffix["snapshot-diff.txt"].read_text()
    assert "the tracer was started for this request" in snapshot
    # The line of the app that made the Leaked objects, and no line of libleak's own.
    assert "test_middleware.py:%d:" % (LeakyWSGI.__call__.__code__.co_firstlineno + 1) in snapshot, snapshot
    by_line = snapshot.split("\n\n")[0]
    assert middleware._LIBLEAK_DIR not in by_line, by_line
    assert "libleak." not in census  # libleak's own objects for the request are not counted
    root = ET.parse(str(by_suffix["cpu.svg"])).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    with gzip.open(str(by_suffix["cpu.pb.gz"])) as f:
        assert f.read()[:1]  # a gzip stream that decompresses (pprof's protobuf inside)


def test_wrong_or_missing_secret_is_an_ordinary_request(tmp_path):
    inner = LeakyWSGI()
    app = WSGIMiddleware(inner, secret=SECRET, directory=tmp_path / "out")
    for headers in ({}, {"X-Libleak-Profile": "wrong"}, {"X-Libleak-Profile": SECRET + " "},
                    {"X-Libleak-Profile": ""}):
        status, response_headers, body = call_wsgi(app, headers)
        assert (status, body) == ("200 OK", b"hello world")
        assert response_headers == [("Content-Type", "text/plain")]
    assert inner.closed == 4
    assert not (tmp_path / "out").exists()
    # The query parameter does not count when the trigger is the header.
    status, response_headers, body = call_wsgi(app, query="libleak_profile=" + SECRET.replace(" ", "+"))
    assert files_of(response_headers) is None and not (tmp_path / "out").exists()


def test_no_secret_means_off(tmp_path, monkeypatch):
    monkeypatch.delenv("LIBLEAK_PROFILE_SECRET", raising=False)
    app = WSGIMiddleware(LeakyWSGI(), directory=tmp_path)
    assert not app.enabled
    status, headers, body = call_wsgi(app, {"X-Libleak-Profile": ""})
    assert files_of(headers) is None and os.listdir(tmp_path) == []
    monkeypatch.setenv("LIBLEAK_PROFILE_SECRET", SECRET)
    app = WSGIMiddleware(LeakyWSGI(), directory=tmp_path)
    assert app.enabled
    status, headers, body = call_wsgi(app, {"X-Libleak-Profile": SECRET})
    assert len(files_of(headers)) == 4
    # An explicit empty secret turns it off whatever the environment says.
    assert not WSGIMiddleware(LeakyWSGI(), secret="", directory=tmp_path).enabled


def test_query_trigger(tmp_path):
    app = WSGIMiddleware(LeakyWSGI(), secret=SECRET, directory=tmp_path, trigger="query")
    status, headers, body = call_wsgi(app, query="page=2&libleak_profile=correct%20horse")
    assert body == b"hello world" and len(files_of(headers)) == 4
    status, headers, body = call_wsgi(app, {"X-Libleak-Profile": SECRET}, query="libleak_profile=nope")
    assert files_of(headers) is None


def test_tracer_already_running_is_kept(tmp_path):
    tracer.start(3)
    try:
        app = WSGIMiddleware(LeakyWSGI(), secret=SECRET, directory=tmp_path)
        status, headers, body = call_wsgi(app, {"X-Libleak-Profile": SECRET})
        assert tracer.is_tracing()
        snapshot = [n for n in files_of(headers) if n.endswith("snapshot-diff.txt")][0]
        text = (tmp_path / snapshot).read_text()
        assert "started for this request" not in text
        assert "tracebacks that grew most" in text
    finally:
        tracer.stop()


def test_one_profile_at_a_time(tmp_path):
    inner = LeakyWSGI()
    app = WSGIMiddleware(inner, secret=SECRET, directory=tmp_path)
    environ = {"PATH_INFO": "/slow", "HTTP_X_LIBLEAK_PROFILE": SECRET}
    setup_testing_defaults(environ)
    first_headers = []
    first = app(environ, lambda status, headers, exc_info=None: first_headers.extend(headers))
    # The first response is not complete (not closed): a second profiled request is served, unprofiled.
    status, headers, body = call_wsgi(app, {"X-Libleak-Profile": SECRET})
    assert body == b"hello world" and files_of(headers) is None
    assert (middleware.REQUEST_HEADER, "busy: another request is being profiled") in headers
    assert b"".join(first) == b"hello world"
    first.close()
    assert sorted(os.listdir(tmp_path)) == sorted(files_of(first_headers))
    status, headers, body = call_wsgi(app, {"X-Libleak-Profile": SECRET})
    assert len(files_of(headers)) == 4


def test_app_raising_ends_the_profile(tmp_path):
    def broken(environ, start_response):
        raise RuntimeError("broken app")

    app = WSGIMiddleware(broken, secret=SECRET, directory=tmp_path)
    with pytest.raises(RuntimeError, match="broken app"):
        call_wsgi(app, {"X-Libleak-Profile": SECRET})
    # The lock was released and the files of the failed request written.
    assert len(os.listdir(tmp_path)) == 4
    app = WSGIMiddleware(LeakyWSGI(), secret=SECRET, directory=tmp_path / "next")
    assert len(files_of(call_wsgi(app, {"X-Libleak-Profile": SECRET})[1])) == 4


def test_bad_arguments():
    with pytest.raises(ValueError, match="trigger must be 'header' or 'query'"):
        WSGIMiddleware(LeakyWSGI(), secret=SECRET, trigger="cookie")
    with pytest.raises(TypeError, match="secret must be a str, bytes or None"):
        WSGIMiddleware(LeakyWSGI(), secret=42)
    with pytest.raises(TypeError, match="app must be a callable"):
        WSGIMiddleware(None, secret=SECRET)
    with pytest.raises(ValueError, match="interval"):
        ASGIMiddleware(LeakyWSGI(), secret=SECRET, interval=0)
    with pytest.raises(ValueError, match="mode"):
        ASGIMiddleware(LeakyWSGI(), secret=SECRET, mode="gpu")
    with pytest.raises(ValueError, match="top must be at least 1"):
        WSGIMiddleware(LeakyWSGI(), secret=SECRET, top=0)


# ---- ASGI --------------------------------------------------------------------------------------


async def leaky_asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": "lifespan.startup.complete"})
        return message
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        return None
    await receive()
    LEAKED.extend(Leaked() for _ in range(30))
    spin()
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
    await send(start)
    await send({"type": "http.response.body", "body": b"part one ", "more_body": True})
    await send({"type": "http.response.body", "body": b"part two"})
    # The application's own message was not changed by the middleware.
    assert start["headers"] == [(b"content-type", b"text/plain")]
    return None


def run_asgi(app, scope_type="http", headers=(), query=b""):
    scope = {"type": scope_type, "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/items/7", "raw_path": b"/items/7", "query_string": query,
             "headers": [(b"host", b"testserver")] + list(headers)}
    inbox = [{"type": "lifespan.startup"} if scope_type == "lifespan" else
             {"type": "http.request", "body": b"", "more_body": False}]
    sent = []

    async def receive():
        return inbox.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def asgi_files(sent):
    for name, value in sent[0].get("headers", ()):
        if name == b"x-libleak-profile-files":
            return value.decode().split(", ")
    return None


def test_profiled_asgi_request(tmp_path):
    app = ASGIMiddleware(leaky_asgi, secret=SECRET, directory=tmp_path)
    sent = run_asgi(app, headers=[(b"x-libleak-profile", SECRET.encode())])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body", "http.response.body"]
    assert b"".join(m["body"] for m in sent[1:]) == b"part one part two"
    assert sent[0]["status"] == 200 and sent[0]["headers"][0] == (b"content-type", b"text/plain")
    names = asgi_files(sent)
    assert sorted(os.listdir(tmp_path)) == sorted(names)
    census = (tmp_path / [n for n in names if n.endswith("census-diff.txt")][0]).read_text()
    assert census.startswith("census diff for GET /items/7 (")
    assert "%s.Leaked: count=30 (+30)" % __name__ in census, census
    root = ET.parse(str(tmp_path / [n for n in names if n.endswith(".svg")][0])).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_asgi_wrong_secret_and_other_scopes_pass_through(tmp_path):
    app = ASGIMiddleware(leaky_asgi, secret=SECRET, directory=tmp_path)
    sent = run_asgi(app, headers=[(b"x-libleak-profile", b"guess")])
    assert sent[0]["headers"] == [(b"content-type", b"text/plain")] and asgi_files(sent) is None
    assert run_asgi(app, "lifespan", headers=[(b"x-libleak-profile", SECRET.encode())]) == [
        {"type": "lifespan.startup.complete"}]
    assert run_asgi(app, "websocket", headers=[(b"x-libleak-profile", SECRET.encode())]) == [
        {"type": "websocket.accept"}]
    assert os.listdir(tmp_path) == []


def test_asgi_query_trigger(tmp_path):
    app = ASGIMiddleware(leaky_asgi, secret=SECRET, directory=tmp_path, trigger="query")
    sent = run_asgi(app, query=b"libleak_profile=correct+horse")
    assert len(asgi_files(sent)) == 4


def test_wsgi_example_serves_a_profiled_request(tmp_path):
    import subprocess
    import sys

    srcdir = os.environ.get("LIBLEAK_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    done = subprocess.run([sys.executable, os.path.join(os.path.abspath(srcdir), "examples", "wsgi_profile.py"),
                           "--self-test"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, cwd=str(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hello from /users/7\n")
    listed = [line.strip() for line in done.stdout.splitlines() if line.startswith("  ")]
    assert len(listed) == 4
    assert sorted(os.listdir(str(tmp_path / "request-profiles"))) == sorted(listed)
