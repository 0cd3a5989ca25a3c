"""libleak.sampler: an in-process CPU sampler for every thread, and profiles in the formats the
ecosystem reads.

Each Python thread gets a timer on its own CPU clock (``mode='cpu'``) or on the wall clock
(``mode='wall'``, which also samples threads that sleep or block); on every tick the thread records
its own stack.  In wall mode a thread that spent most of the last 20 ms off the CPU is not woken:
its time off the CPU is counted every 20 ms at the stack it shows then.  Stopping gives a :class:`Profile`, which writes by file suffix:

- ``.collapsed``: folded stacks, ``root;child;leaf N`` (flamegraph.pl, speedscope, inferno)
- ``.speedscope.json``: speedscope's file format, one profile per thread
- ``.pb.gz``: pprof's profile.proto, gzip-compressed (go tool pprof, Grafana Pyroscope, Parca)
- ``.svg``: an interactive flame graph (click to zoom, search, tooltips)

Example::

    from libleak import sampler
    with sampler.profile(interval=0.001) as prof:
        work()
    prof.write("work.svg")
    for row in prof.top(5):
        print(row.function, row.self_samples, row.total_samples)

Heap profiles of a tracer snapshot go through the same writers: ``heap_profile(snapshot)``.
"""

import atexit
import contextlib
import json
import os
import re
import threading

from libleak import _libleak
from libleak.errors import FormatError

__all__ = ["Sampler", "Profile", "TopRow", "profile", "heap_profile"]

_MODES = {"cpu": 0, "wall": 1}
_FORMATS = (
    (".speedscope.json", 1),
    (".collapsed", 0),
    (".pb.gz", 2),
    (".svg", 3),
)


def _format_of(path):
    name = os.fspath(path)
    if not isinstance(name, str):
        name = os.fsdecode(name)
    for suffix, code in _FORMATS:
        if name.endswith(suffix):
            return code
    raise ValueError(
        "unknown profile suffix for %r: expected one of %s" % (name, ", ".join(s for s, _ in _FORMATS))
    )


class TopRow:
    """One row of :meth:`Profile.top`: a function and its samples (or bytes, for heap profiles)."""

    __slots__ = ("function", "filename", "lineno", "self_samples", "total_samples")

    def __init__(self, function, filename, lineno, self_samples, total_samples):
        self.function = function
        self.filename = filename
        self.lineno = lineno
        self.self_samples = self_samples
        self.total_samples = total_samples

    def __repr__(self):
        return "<TopRow %s (%s:%d) self=%d total=%d>" % (
            self.function, self.filename, self.lineno, self.self_samples, self.total_samples)


class Profile:
    """Stack counts of a sampling session (or live bytes of a heap snapshot).

    ``samples`` is the total of the first value (samples; bytes for heap profiles); ``threads``
    maps thread ids to names; ``dropped`` counts samples the buffer could not hold."""

    def __init__(self, raw, dropped=0, interval=None, mode=None):
        types, period, duration_ns, frames, threads, samples = raw
        self._types = tuple(tuple(t) for t in types)
        self._period = tuple(period) if period is not None else None
        self.duration_ns = int(duration_ns)
        self._frames = tuple(tuple(f) for f in frames)
        self._threads = tuple(tuple(t) for t in threads)
        self._samples = tuple((int(t), tuple(s), tuple(v)) for t, s, v in samples)
        self.dropped = dropped
        self.interval = interval
        self.mode = mode

    def _raw(self):
        return (self._types, self._period, self.duration_ns, self._frames, self._threads, self._samples)

    @property
    def sample_types(self):
        """((name, unit), ...): what each value of a sample counts."""
        return self._types

    @property
    def samples(self):
        """The total of the first value over every stack."""
        return sum(v[0] for _, _, v in self._samples)

    @property
    def threads(self):
        """{thread id: name or None} of the threads that have samples."""
        return {tid: name for tid, name in self._threads}

    def stacks(self):
        """Yields (thread_id, frames root first as (function, filename, lineno), value)."""
        for t, stack, values in self._samples:
            tid = self._threads[t][0] if self._threads else None
            yield tid, [self._frames[i] for i in reversed(stack)], values[0]

    def top(self, n=10):
        """The `n` functions with the most samples, as :class:`TopRow`, by self samples, then total.

        Rows are per function (name and file); `lineno` is its line with the most samples."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError("n must be a non-negative int, not %r" % (n,))
        self_count, total_count, line_count = {}, {}, {}
        for _, stack, values in self._samples:
            value = values[0]
            if not stack:
                continue
            leaf = self._frames[stack[0]]
            self_count[leaf[:2]] = self_count.get(leaf[:2], 0) + value
            seen = set()
            for i in stack:
                function, filename, lineno = self._frames[i]
                key = (function, filename)
                line_count[key + (lineno,)] = line_count.get(key + (lineno,), 0) + value
                if key in seen:
                    continue  # recursion counts once per stack
                seen.add(key)
                total_count[key] = total_count.get(key, 0) + value
        best_line = {}
        for (function, filename, lineno), count in line_count.items():
            old = best_line.get((function, filename))
            if old is None or (count, -lineno) > (old[1], -old[0]):
                best_line[(function, filename)] = (lineno, count)
        rows = [TopRow(k[0], k[1], best_line[k][0], self_count.get(k, 0), total) for k, total in total_count.items()]
        rows.sort(key=lambda r: (-r.self_samples, -r.total_samples, r.function, r.filename))
        return rows[:n]

    def write(self, path):
        """Writes the profile to `path` in the format its suffix names (``.collapsed``,
        ``.speedscope.json``, ``.pb.gz``, ``.svg``).  An unknown suffix raises ValueError and
        writes nothing."""
        fmt = _format_of(path)
        with open(path, "wb") as f:
            f.flush()
            _libleak.profile_write(f.fileno(), fmt, *self._raw())

    def _repr_svg_(self):
        """Jupyter shows the profile as its SVG flame graph (libleak._display)."""
        from libleak._display import profile_svg

        return profile_svg(self)

    @classmethod
    def load(cls, path):
        """Reads a profile that libleak wrote as ``.collapsed`` or ``.speedscope.json``.  Raises
        libleak.FormatError when the file is not one; ValueError for other suffixes."""
        name = os.fspath(path)
        if name.endswith(".speedscope.json"):
            return cls._load_speedscope(name)
        if name.endswith(".collapsed"):
            return cls._load_collapsed(name)
        raise ValueError("Profile.load reads .collapsed and .speedscope.json files, not %r" % (name,))

    @classmethod
    def _load_collapsed(cls, path):
        frame_re = re.compile(r"^(.*) \((.*):(-?\d+)\)$")
        frames, index, samples = [], {}, {}
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                stack_text, _, count = line.rpartition(" ")
                try:
                    value = int(count)
                except ValueError:
                    raise FormatError("%s:%d: a folded stack ends with a count" % (path, number)) from None
                stack = []
                for part in stack_text.split(";"):
                    m = frame_re.match(part)
                    frame = (m.group(1), m.group(2), int(m.group(3))) if m else (part, "", 0)
                    if frame not in index:
                        index[frame] = len(frames)
                        frames.append(frame)
                    stack.append(index[frame])
                key = tuple(reversed(stack))
                samples[key] = samples.get(key, 0) + value
        raw = ((("samples", "count"),), None, 0, frames, (), [(0, k, (v,)) for k, v in samples.items()])
        return cls(raw)

    @classmethod
    def _load_speedscope(cls, path):
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            frames = [(fr["name"], fr.get("file", ""), int(fr.get("line", 0))) for fr in doc["shared"]["frames"]]
            unit = doc["profiles"][0].get("unit", "none") if doc["profiles"] else "none"
            types = (("inuse_space", "bytes"),) if unit == "bytes" else (("samples", "count"),)
            threads, samples = [], {}
            for t, prof in enumerate(doc["profiles"]):
                m = re.search(r"(\d+)\)?$", prof.get("name", ""))
                name = prof.get("name")
                tid = int(m.group(1)) if m else t
                if name and name.endswith(")") and " (" in name:
                    name = name[: name.rindex(" (")]
                elif name and name.startswith("thread "):
                    name = None
                threads.append((tid, name))
                for stack, weight in zip(prof["samples"], prof["weights"]):
                    key = (t, tuple(reversed(stack)))
                    samples[key] = samples.get(key, 0) + int(weight)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise FormatError("%s is not a speedscope file libleak can read: %s" % (path, e)) from None
        raw = (types, None, 0, frames, threads, [(t, s, (v,)) for (t, s), v in samples.items()])
        return cls(raw)


class Sampler:
    """A sampling session: ``Sampler(interval=0.001, mode='cpu', nframe=128)``.

    `interval` is seconds between two samples of one thread (of its CPU time in cpu mode, of real
    time in wall mode); `nframe` the frames kept per sample, innermost first (1 to 512).  Only one
    sampler runs at a time in a process.  In cpu mode each thread's CPU-clock timer is the
    kernel's: on a machine with more runnable threads than CPUs, some kernels (seen in Firecracker
    guests) leave stretches of a thread's CPU time without a tick, and ``stats()["samples"]`` falls
    short of the threads' CPU time divided by `interval`; wall mode is not affected."""

    def __init__(self, interval=0.001, mode="cpu", nframe=128):
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError("interval must be a number of seconds, not %s" % type(interval).__name__)
        if not interval > 0 or interval != interval or interval > 3600:
            raise ValueError("interval must be > 0 and at most 3600 seconds, not %r" % (interval,))
        if mode not in _MODES:
            raise ValueError("mode must be 'cpu' or 'wall', not %r" % (mode,))
        if isinstance(nframe, bool) or not isinstance(nframe, int):
            raise TypeError("nframe must be an int, not %s" % type(nframe).__name__)
        if not 1 <= nframe <= 512:
            raise ValueError("nframe must be between 1 and 512, not %r" % (nframe,))
        self.interval = float(interval)
        self.mode = mode
        self.nframe = nframe
        self._running = False

    def start(self):
        """Starts sampling every thread, those started later included.  RuntimeError if a sampler
        already runs."""
        interval_ns = max(1, int(round(self.interval * 1e9)))
        _libleak.sampler_start(interval_ns, _MODES[self.mode], self.nframe)
        self._running = True
        atexit.register(self._stop_at_exit)

    def stop(self):
        """Stops sampling and returns the :class:`Profile`."""
        raw = _libleak.sampler_stop()
        self._running = False
        atexit.unregister(self._stop_at_exit)
        stats = _libleak.sampler_stats()
        names = {t.ident: t.name for t in threading.enumerate()}
        types, period, duration, frames, threads, samples = raw
        threads = tuple((tid, names.get(tid, name)) for tid, name in threads)
        return Profile((types, period, duration, frames, threads, samples), dropped=stats[1],
                       interval=self.interval, mode=self.mode)

    def _stop_at_exit(self):
        if self._running and _libleak.sampler_is_running():
            _libleak.sampler_stop()
            self._running = False

    @staticmethod
    def stats():
        """Counters of the current (or last) session: dict with samples (timer ticks folded in),
        signals (stacks read: CPU clocks expire on the kernel tick, so one signal may stand for
        several ticks), dropped, threads, threads_missed, duration (seconds)."""
        samples, dropped, threads, missed, ns, signals = _libleak.sampler_stats()
        return {"samples": samples, "signals": signals, "dropped": dropped, "threads": threads,
                "threads_missed": missed, "duration": ns / 1e9}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        if self._running:
            self.profile = self.stop()
        return False


class _ProfileHolder(Profile):
    """The Profile a ``with profile():`` block yields: empty inside the block, filled at its end."""

    def __init__(self):
        Profile.__init__(self, ((("samples", "count"),), None, 0, (), (), ()))

    def _fill(self, other):
        self.__dict__.update(other.__dict__)
        for slot in ("_types", "_period", "_frames", "_threads", "_samples"):
            setattr(self, slot, getattr(other, slot))


@contextlib.contextmanager
def profile(interval=0.001, mode="cpu", nframe=128):
    """Samples the block and yields a :class:`Profile` that holds the samples once the block ends::

        with profile(interval=0.001, mode='wall') as prof:
            serve_one_request()
        prof.write("request.speedscope.json")
    """
    sampler = Sampler(interval, mode, nframe)
    holder = _ProfileHolder()
    sampler.start()
    try:
        yield holder
    finally:
        holder._fill(sampler.stop())


def heap_profile(snapshot):
    """A heap :class:`Profile` of a libleak.tracer Snapshot: live bytes (``inuse_space``) and blocks
    (``inuse_objects``) per allocation traceback.  Frames are named ``file:line`` (the tracer
    records no function names)."""
    stats = snapshot.statistics("traceback")
    frames, index, samples = [], {}, []
    for stat in stats:
        stack = []
        for frame in reversed(list(stat.traceback)):  # profiles store the most recent frame first
            key = ("%s:%d" % (frame.filename, frame.lineno), frame.filename, frame.lineno)
            if key not in index:
                index[key] = len(frames)
                frames.append(key)
            stack.append(index[key])
        samples.append((0, tuple(stack), (int(stat.size), int(stat.count))))
    raw = ((("inuse_space", "bytes"), ("inuse_objects", "count")), None, 0, frames, (), samples)
    return Profile(raw)
