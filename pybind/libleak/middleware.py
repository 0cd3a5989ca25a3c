"""libleak.middleware: profile one request of a running web application, on demand.

Wrap a WSGI or ASGI application; a request that carries the secret (the header
``X-Libleak-Profile: <secret>``, or with ``trigger='query'`` the query parameter
``libleak_profile=<secret>``) is profiled, every other request runs as if the middleware were not
there.  For a profiled request libleak writes into ``directory``, under names that carry the time,
the process id, the method and the path:

- ``...snapshot-diff.txt``: the allocation lines whose live traced memory changed during the request
  (the tracer is started for the request when it does not run already, and stopped after);
- ``...census-diff.txt``: the types whose live objects changed (a census before and after, both
  after ``gc.collect()``);
- ``...cpu.svg`` and ``...cpu.pb.gz``: the CPU samples of the request as a flame graph and as pprof.

The response is the application's own, streamed as it streams, with one more header,
``X-Libleak-Profile-Files``, naming the files (written once the response is complete).  Without a
secret (the ``secret`` argument or ``LIBLEAK_PROFILE_SECRET`` in the environment) the middleware is
off.  A wrong secret is an ordinary request: nothing is written and no header is added (secrets are
compared in constant time).  One request is profiled at a time in a process; another one that asks
meanwhile runs unprofiled and gets ``X-Libleak-Profile: busy``.  The tracer, the census and the
sampler see the whole process: requests served at the same time by other threads (or, under ASGI,
by the same event loop) show up in the files too.  Prefer the header: query strings end up in
access logs.

Example::

    from libleak.middleware import WSGIMiddleware
    app = WSGIMiddleware(app, secret="s3cret", directory="/tmp/profiles")
    # curl -H 'X-Libleak-Profile: s3cret' http://localhost:8000/api/users -D -

    from libleak.middleware import ASGIMiddleware
    app = ASGIMiddleware(app, secret="s3cret", directory="/tmp/profiles")
"""

import hmac
import logging
import os
import re
import threading
import time
from urllib.parse import parse_qs

from libleak import heap, sampler, tracer

__all__ = ["WSGIMiddleware", "ASGIMiddleware", "REQUEST_HEADER", "QUERY_PARAMETER", "FILES_HEADER"]

#: The request header that asks for a profile, and the response header that says "busy".
REQUEST_HEADER = "X-Libleak-Profile"
#: The query parameter that asks for a profile (``trigger='query'``).
QUERY_PARAMETER = "libleak_profile"
#: The response header naming the files written for a profiled request.
FILES_HEADER = "X-Libleak-Profile-Files"

_TRIGGERS = ("header", "query")
_BUSY = "busy: another request is being profiled"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
_LIBLEAK_DIR = os.path.dirname(os.path.abspath(__file__))

# One profiled request at a time in the process: the sampler is one per process and the census
# and the tracer see every thread.  Taken without blocking by the request that profiles, released
# when its response is complete.
_profiling = threading.Lock()

_log = logging.getLogger("libleak.middleware")


def _slug(text, limit):
    """A piece of a file name from a request's method or path: letters, digits, '.', '_' and '-'."""
    return (_SLUG.sub("_", text).strip("_.") or "root")[:limit]


class _Session:
    """One profiled request: what was measured before it, the sampler running during it, and the
    files written when it ends.  ``keep`` holds the middleware's own objects for the request, which
    both censuses leave out."""

    def __init__(self, settings, method, path):
        self.settings = settings
        self.method = method
        self.path = path
        self.keep = []
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + ".%06dZ" % int((now % 1) * 1e6)
        self.when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
        self.stem = "%s-%d-%s-%s" % (stamp, os.getpid(), _slug(method, 16), _slug(path, 80))
        self.files = []
        self.notes = []
        self._census = None
        self._snapshot = None
        self._sampler = None
        self._started_tracer = False
        self._done = False
        self._clock = None
        self.seconds = None

    def start(self):
        """Measures the heap before the request and starts the sampler (and the tracer if it does
        not run).  Decides the file names, which the response header carries."""
        settings = self.settings
        self.files = [self.stem + ".snapshot-diff.txt", self.stem + ".census-diff.txt"]
        if not tracer.is_tracing():
            tracer.start(settings.trace_nframe)
            self._started_tracer = True
            self.notes.append("the tracer was started for this request: only its own allocations are traced")
        self._census = heap.census(gc_collect=True, keep_objects=False, exclude=[self])
        self._snapshot = tracer.take_snapshot()
        profiler = sampler.Sampler(interval=settings.interval, mode=settings.mode)
        try:
            profiler.start()
        except RuntimeError as e:
            self.notes.append("no CPU profile: %s" % e)
        else:
            self._sampler = profiler
            self.files += [self.stem + ".cpu.svg", self.stem + ".cpu.pb.gz"]
        self._clock = time.perf_counter()

    def header_value(self):
        return ", ".join(self.files)

    def finish(self, write=True):
        """Stops what start() started, measures again and writes the files (not when ``write`` is
        false: start() failed); runs once.  A failure to write is logged (the response has been
        sent), never raised into the server."""
        if self._done:
            return
        self._done = True
        if self._clock is not None:
            self.seconds = time.perf_counter() - self._clock
        try:
            profile = self._sampler.stop() if self._sampler is not None else None
            after = tracer.take_snapshot() if tracer.is_tracing() and write else None
            if self._started_tracer:
                tracer.stop()
            if write:
                self.keep += [profile, after]  # libleak's own results: left out of the census
                census = heap.census(gc_collect=True, keep_objects=False, exclude=[self])
                self._write(profile, after, census)
        except Exception:
            _log.exception("libleak: the profile of %s %s could not be written", self.method, self.path)
        finally:
            self._census = self._snapshot = self._sampler = None
            self.keep = []
            _profiling.release()

    def _head(self, what):
        lines = ["%s for %s %s (%s, pid %d, %.1f ms)" % (what, self.method, self.path, self.when, os.getpid(),
                                                          1000 * (self.seconds or 0.0))]
        lines += ["(%s)" % note for note in self.notes]
        return lines

    def _write(self, profile, after, census):
        directory = self.settings.directory
        os.makedirs(directory, exist_ok=True)
        top = self.settings.top
        lines = self._head("allocation diff")
        if after is None:
            lines.append("(the tracer was stopped during the request: no allocation diff)")
        else:
            # libleak's own allocations for the request (snapshots, censuses) are not the request's.
            keep = [tracer.Filter(False, os.path.join(_LIBLEAK_DIR, "*"))]
            after = after.filter_traces(keep)
            before = self._snapshot.filter_traces(keep)
            stats = [s for s in after.compare_to(before, "lineno") if s.size_diff or s.count_diff]
            lines.append("%d lines changed; the top %d, largest change first:" % (len(stats), min(top, len(stats))))
            lines += [str(stat) for stat in stats[:top]]
            tracebacks = [s for s in after.compare_to(before, "traceback") if s.size_diff > 0][:5]
            if tracebacks and after.traceback_limit > 1:
                lines.append("")
                lines.append("the %d tracebacks that grew most:" % len(tracebacks))
                for stat in tracebacks:
                    lines.append("%s B in %+d blocks:" % ("{:+,}".format(stat.size_diff), stat.count_diff))
                    lines += ["  " + line for line in stat.traceback.format()]
        self._write_text(os.path.join(directory, self.files[0]), lines)
        rows = [r for r in census.compare_to(self._census) if r.count_diff or r.size_diff]
        lines = self._head("census diff")
        lines.append("%d types changed; the top %d, largest change in bytes first:" % (len(rows), min(top, len(rows))))
        lines += [str(row) for row in rows[:top]]
        self._write_text(os.path.join(directory, self.files[1]), lines)
        if profile is not None:
            profile.write(os.path.join(directory, self.files[2]))
            profile.write(os.path.join(directory, self.files[3]))

    @staticmethod
    def _write_text(path, lines):
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


class _Settings:
    """The middleware's options, checked once."""

    __slots__ = ("secret", "directory", "trigger", "interval", "mode", "trace_nframe", "top")

    def __init__(self, secret, directory, trigger, interval, mode, trace_nframe, top):
        if secret is None:
            secret = os.environ.get("LIBLEAK_PROFILE_SECRET", "")
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if not isinstance(secret, bytes):
            raise TypeError("secret must be a str, bytes or None, not %s" % type(secret).__name__)
        self.secret = secret or None
        if trigger not in _TRIGGERS:
            raise ValueError("trigger must be 'header' or 'query', not %r" % (trigger,))
        self.trigger = trigger
        if directory is None:
            directory = os.environ.get("LIBLEAK_DIR") or "libleak-profiles"
        self.directory = os.path.abspath(os.fspath(directory))
        sampler.Sampler(interval=interval, mode=mode)  # the sampler's own checks of both
        self.interval = interval
        self.mode = mode
        for name, value, smallest in (("trace_nframe", trace_nframe, 1), ("top", top, 1)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
            if value < smallest:
                raise ValueError("%s must be at least %d, not %d" % (name, smallest, value))
        self.trace_nframe = trace_nframe
        self.top = top

    def asked(self, header, query):
        """True when the request carries the secret where the trigger says: ``header`` is the raw
        value of X-Libleak-Profile (bytes) or None, ``query`` the raw query string (bytes)."""
        if self.secret is None:
            return False
        if self.trigger == "header":
            given = header
        else:
            values = parse_qs(query or b"", keep_blank_values=True).get(QUERY_PARAMETER.encode("ascii"))
            given = values[0] if values else None
        return given is not None and hmac.compare_digest(given, self.secret)


class _Middleware:
    """What the WSGI and ASGI middlewares share: the settings and starting a session."""

    def __init__(self, app, secret=None, directory=None, trigger="header", *, interval=0.001, mode="cpu",
                 trace_nframe=5, top=30):
        if not callable(app):
            raise TypeError("app must be a callable application, not %s" % type(app).__name__)
        self.app = app
        self.settings = _Settings(secret, directory, trigger, interval, mode, trace_nframe, top)

    @property
    def enabled(self):
        """True when a secret is configured (without one, every request passes straight through)."""
        return self.settings.secret is not None

    def _session(self, method, path):
        """A started session for a request that asked for a profile, or None when another request
        is being profiled."""
        if not _profiling.acquire(blocking=False):
            return None
        try:
            return _Session(self.settings, method, path)
        except BaseException:
            _profiling.release()
            raise

    @staticmethod
    def _start(session):
        try:
            session.start()
        except BaseException:
            session.finish(write=False)
            raise


class _ProfiledBody:
    """The application's response body, passed through as it is, whose close() (which the WSGI
    server calls when the response is complete, or abandoned) ends the profile."""

    def __init__(self, session):
        self._session = session
        self.iterable = ()

    def __iter__(self):
        return iter(self.iterable)

    def close(self):
        try:
            close = getattr(self.iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._session.finish()


class WSGIMiddleware(_Middleware):
    """``WSGIMiddleware(app, secret=None, directory=None, trigger='header', *, interval=0.001,
    mode='cpu', trace_nframe=5, top=30)``: profiles the requests of the WSGI application ``app``
    that carry the secret (see the module's documentation).

    ``secret``: str or bytes; None reads ``LIBLEAK_PROFILE_SECRET``; empty turns the middleware off.
    ``directory``: where the files go (None: ``LIBLEAK_DIR``, else ``./libleak-profiles``), made
    when first needed.  ``trigger``: ``'header'`` or ``'query'``.  ``interval``, ``mode``: the CPU
    sampler's (libleak.sampler).  ``trace_nframe``: frames the tracer keeps when the middleware
    starts it.  ``top``: rows in each text file.  Bad values raise TypeError or ValueError here.
    """

    def __call__(self, environ, start_response):
        header = environ.get("HTTP_X_LIBLEAK_PROFILE")
        query = environ.get("QUERY_STRING", "")
        if header is not None:
            header = header.encode("latin-1", "replace")
        if not self.settings.asked(header, query.encode("latin-1", "replace")):
            return self.app(environ, start_response)
        session = self._session(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "") or "/")
        if session is None:
            def busy_start_response(status, headers, exc_info=None):
                return start_response(status, list(headers) + [(REQUEST_HEADER, _BUSY)], exc_info)

            return self.app(environ, busy_start_response)
        body = _ProfiledBody(session)

        def profiled_start_response(status, headers, exc_info=None):
            return start_response(status, list(headers) + [(FILES_HEADER, session.header_value())], exc_info)

        session.keep += [body, profiled_start_response]
        self._start(session)
        try:
            body.iterable = self.app(environ, profiled_start_response)
        except BaseException:
            session.finish()
            raise
        return body


class ASGIMiddleware(_Middleware):
    """``ASGIMiddleware(app, secret=None, directory=None, trigger='header', ...)``: the same as
    WSGIMiddleware for an ASGI application.  Only ``http`` requests are profiled; ``lifespan`` and
    ``websocket`` scopes go straight to the application.  The profile ends when the application
    returns, its last message sent."""

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        header = None
        for name, value in scope.get("headers", ()):
            if bytes(name).lower() == b"x-libleak-profile":
                header = bytes(value)
                break
        if not self.settings.asked(header, scope.get("query_string", b"")):
            return await self.app(scope, receive, send)
        session = self._session(scope.get("method", "GET"), scope.get("path", "") or "/")
        if session is None:
            return await self.app(scope, receive, _SendAddingHeader(send, REQUEST_HEADER, _BUSY))
        send_with_header = _SendAddingHeader(send, FILES_HEADER, "")
        session.keep.append(send_with_header)
        self._start(session)
        send_with_header.value = session.header_value()
        try:
            return await self.app(scope, receive, send_with_header)
        finally:
            session.finish()


class _SendAddingHeader:
    """An ASGI ``send`` that adds one header to the response's start message and passes every
    message on (a copy of the start message: the application's own is not changed)."""

    def __init__(self, send, name, value):
        self._send = send
        self.name = name
        self.value = value

    async def __call__(self, message):
        if message.get("type") == "http.response.start":
            message = dict(message)
            header = (self.name.lower().encode("ascii"), self.value.encode("latin-1", "replace"))
            message["headers"] = list(message.get("headers", ())) + [header]
        await self._send(message)
