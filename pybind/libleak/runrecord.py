"""libleak.runrecord: what ``libleak run`` measures while a program runs, and the run directory.

A ``Recorder`` starts the chosen collectors (the tracer, the CPU sampler), takes a sample point at
the start and then every ``every`` seconds from a background thread (RSS, traced bytes, a census
of live objects per type with the interpreter's caches left out), and at the end takes a last
point, finds the types that grew and why they are alive, and writes the run directory (its files
are listed in docs/walkthrough.md): ``run.json`` (written last, atomically), ``census.jsonl`` (one
census per sample point, written as the run goes), the first and last tracer snapshots, retention
graphs, heap and CPU flame graphs.

Growth is measured from a baseline: the first periodic point, not the start.  The program's
imports and the first fill of its caches happen in its first moments, and counting them would call
every program a leak; what keeps growing after the first interval is what a leak looks like.  Runs
with fewer than four points (shorter than about three intervals) are measured from the start.

``load_run(path)`` reads a run directory (or its run.json) back; ``libleak report`` uses it.

Everything the recorder keeps lives in one dict that every census leaves out, so libleak's own
bookkeeping never shows up as growth.
"""

import datetime
import gc
import json
import os
import sys
import threading
import time
import types

from libleak import heap, tracer
from libleak.errors import FormatError
from libleak.verdict import domain_module, grows_steadily, judge

__all__ = ["Recorder", "RunOptions", "load_run", "read_rss", "RUN_FORMAT", "RUN_VERSION"]

RUN_FORMAT = "libleak-run"
RUN_VERSION = 1

#: How many growing types get retention paths, how many types the run.json census table keeps,
#: how many allocation sites it lists.
MAX_LEAKS = 12
MAX_TYPES = 20
MAX_SITES = 20
_SAMPLES_PER_TYPE = 2
_PATHS_PER_TYPE = 3
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_LIBLEAK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def read_rss():
    """The process's resident set size in bytes (from /proc/self/statm), or 0 where it cannot
    be read."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


class RunOptions:
    """The collectors of a run: ``trace`` (frames per traceback, 0 = no tracer), ``sample_bytes``
    (the tracer's sampling interval, 0 = every allocation), ``cpu`` (sampling rate in Hz, 0 = no CPU
    sampler), ``every`` (seconds between sample points)."""

    __slots__ = ("trace", "sample_bytes", "cpu", "every")

    def __init__(self, trace=0, sample_bytes=0, cpu=0, every=1.0):
        self.trace = trace
        self.sample_bytes = sample_bytes
        self.cpu = cpu
        self.every = every

    def as_dict(self):
        return {"trace": self.trace, "sample_bytes": self.sample_bytes, "cpu": self.cpu, "every": self.every}


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_atomically(path, text):
    """Writes text to path through a temporary file renamed over it: a reader never sees half a
    file.  Raises OSError."""
    temporary = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


# Builtin types whose objects CPython 3.8 - 3.12 recycles from freelists: the tracer names the line
# that first allocated the memory, not the one that made the object, so it is not quoted.
_FREELIST_TYPES = ("tuple", "list", "dict", "float", "slice", "method", "frame", "builtin_function_or_method")


def _recycled(type_name):
    return sys.version_info < (3, 13) and type_name in _FREELIST_TYPES


def _source_line(filename, lineno):
    """The line of source, stripped, as it reads while the run ends ('' when unknown): kept in
    run.json, so that a report made later quotes the code that ran."""
    import linecache

    return linecache.getline(filename, lineno).strip()


_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cli.py")


def _program_frames(traceback, places):
    """A tracer Traceback as [[filename, lineno], ...], most recent call last, cut to the program's
    own frames (those inside the runner's call of it), or None when the allocation is not the
    program's: libleak's own (its sampling thread), or one inside a noise module (re, logging...)."""
    frames = [[frame.filename, frame.lineno] for frame in traceback]
    runner = [i for i, (filename, _) in enumerate(frames) if filename == _RUNNER]
    if runner:
        frames = frames[runner[-1] + 1:]
        if frames and frames[0][0].startswith(_LIBLEAK_DIR):  # the runner's own work, not the program
            return None
    elif any(heap._is_noise(filename, places) and filename.startswith(_LIBLEAK_DIR) for filename, _ in frames):
        return None
    if not frames or heap._is_noise(frames[-1][0], places):
        return None
    if all(filename == threading.__file__ for filename, _ in frames):  # a thread starting (libleak's too)
        return None
    if any(filename.startswith("<frozen importlib") for filename, _ in frames):  # an import: once
        return None
    return frames


class Recorder:
    """Collects a run's sample points and writes its run directory.

    ``Recorder(outdir, options, argv, main_name)``: ``outdir`` must exist and be writable;
    ``main_name`` is how the report names the program's ``__main__`` module (its file's stem, or the
    module given to ``-m``).  ``start()`` before the program runs, ``finish(exit_code)`` after: it
    returns the run (run.json's dict) and has written the directory.  ``progress`` is called with a
    short text before each long step of ``finish``.
    """

    def __init__(self, outdir, options, argv, main_name, progress=None):
        self.outdir = outdir
        self.options = options
        self.argv = list(argv)
        self.main_name = main_name
        self.progress = progress or (lambda text: None)
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one sample point at a time (the thread's, then the last)
        # Everything measured is kept here; every census leaves this dict and what it reaches out.
        self._state = {"rows": [], "censuses": {}, "snapshots": [], "census_file": None, "t0": 0.0,
                       "started": None, "lru": [], "sampler": None, "errors": []}

    # ---- during the run ------------------------------------------------------------------------------

    def start(self):
        """Starts the collectors and takes the first sample point.  Raises OSError when census.jsonl
        cannot be created, ValueError/RuntimeError from the collectors."""
        state = self._state
        state["census_file"] = open(os.path.join(self.outdir, "census.jsonl"), "w", encoding="utf-8")
        state["started"] = _utc_now()
        state["t0"] = time.monotonic()
        if self.options.trace:
            tracer.start(self.options.trace, sample_bytes=self.options.sample_bytes)
        if self.options.cpu:
            from libleak import sampler

            state["sampler"] = sampler.Sampler(interval=1.0 / self.options.cpu)
            state["sampler"].start()
        # The thread starts first, so that its own objects are in the first census already.
        self._thread = threading.Thread(target=self._run_periodic, name="libleak-sampler", daemon=True)
        self._thread.start()
        self._sample()

    def _run_periodic(self):
        while not self._stop.wait(self.options.every):
            try:
                self._sample()
            except Exception as error:  # a failed point is reported, never raised into the program
                self._state["errors"].append("sample point: %s" % error)

    def _census(self, keep):
        """A census with libleak's bookkeeping and the interpreter's caches left out, as leak_check
        leaves them out."""
        state = self._state
        gc.collect()
        state["lru"] = heap._bounded_lru_caches()
        deep, shallow = heap._noise_roots()
        exclude = state["exclude"] = [state] + heap._lru_entries(state["lru"]) + deep
        shallow.append(shallow)
        taken = heap.census(keep_objects=keep, exclude=exclude, exclude_alone=shallow)
        state["exclude"] = None
        return taken

    def _sample(self, final=False):
        """Takes one sample point: a series row and a census line.  The censuses of the start, the
        baseline, the end and the latest point numbered by a power of two are kept (with their
        objects' addresses, for new_objects): the last is at least halfway through the run, so
        objects made after it are those the program keeps making, not its start-up's.  The start,
        the baseline and the end also get a tracer snapshot."""
        state = self._state
        with self._lock:
            index = len(state["rows"])
            keep = final or index < 2 or index & (index - 1) == 0
            began = time.monotonic()
            taken = self._census(keep)
            row = {"t": round(time.monotonic() - state["t0"], 3), "rss": read_rss(), "traced": None,
                   "objects": taken.count, "object_bytes": taken.size}
            if tracer.is_tracing():
                row["traced"], row["traced_peak"] = tracer.get_traced_memory()
                if final or index < 2:
                    state["snapshots"].append(tracer.take_snapshot())
            row["sample_seconds"] = round(time.monotonic() - began, 4)  # what the point cost the program
            by_type = taken.by_type
            state["census_file"].write(json.dumps({"t": row["t"], "by_type": {name: list(value) for name, value
                                                                               in by_type.items()}}) + "\n")
            state["census_file"].flush()
            state["rows"].append(row)
            if keep:
                for older in [k for k in state["censuses"] if 2 <= k < index and not final]:
                    del state["censuses"][older]
                state["censuses"][index] = taken

    # ---- at the end ------------------------------------------------------------------------------------

    def finish(self, exit_code):
        """Stops the collectors, takes the last sample point, analyses the run and writes the run
        directory; returns the run dict.  Raises OSError when the directory cannot be written."""
        state = self._state
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.progress("last sample point")
        self._sample(final=True)
        duration = round(time.monotonic() - state["t0"], 3)
        state["census_file"].close()
        rows = state["rows"]
        baseline = 1 if len(rows) >= 4 else 0
        censuses = state["censuses"]
        last_index = len(rows) - 1
        middle = max(k for k in censuses if k < last_index and k >= baseline) if last_index > baseline else baseline
        samples_since, last_census = censuses[middle], censuses[last_index]
        files = {"census_series": "census.jsonl"}
        run = {
            "format": RUN_FORMAT, "version": RUN_VERSION, "argv": self.argv,
            "python": "%d.%d.%d" % sys.version_info[:3], "pid": os.getpid(), "started": state["started"],
            "duration": duration, "exit_code": exit_code, "options": self.options.as_dict(),
            "main_module": self.main_name, "baseline": baseline, "series": rows,
        }
        self.progress("growing types")
        census_rows = self._read_census_rows()
        leak_rows = self._growing_types(census_rows[baseline:])
        run["types"] = self._type_table(census_rows, baseline, leak_rows)
        self.progress("retention paths")
        run["leaks"] = self._leaks(leak_rows, samples_since, last_census)
        run["sites"], run["extension_buffers"] = [], []
        if self.options.trace and len(state["snapshots"]) >= 2:
            self.progress("allocation sites")
            first, last = state["snapshots"][min(baseline, len(state["snapshots"]) - 2)], state["snapshots"][-1]
            run["sites"] = self._sites(first, last)
            run["extension_buffers"] = self._extension_buffers(first, last)
            files.update(self._write_snapshots(first, last))
        if tracer.is_tracing() and self.options.trace:
            tracer.stop()
        if state["sampler"] is not None:
            self.progress("CPU profile")
            files.update(self._write_profile(state["sampler"].stop()))
        window = rows[baseline:]
        run["growth"] = {
            "rss": window[-1]["rss"] - window[0]["rss"],
            "traced": (window[-1]["traced"] - window[0]["traced"]) if window[0]["traced"] is not None else None,
            "object_bytes": window[-1]["object_bytes"] - window[0]["object_bytes"],
            "objects": window[-1]["objects"] - window[0]["objects"],
        }
        # The verdict names the program's own classes first: they are what its author can change.
        own_first = sorted(run["leaks"], key=lambda leak: not leak["type_name"].startswith(self.main_name + "."))
        run["verdict"] = judge(rows, baseline=baseline, leaks=own_first,
                               extension_buffers=run["extension_buffers"])
        run["files"] = files
        run["errors"] = list(state["errors"])
        _write_atomically(os.path.join(self.outdir, "run.json"), json.dumps(run, indent=1) + "\n")
        return run

    def rewrite_files(self, run, **files):
        """Adds entries to run.json's ``files`` (a report made after run.json, from it) and writes
        run.json again; returns the run.  Raises OSError."""
        run["files"].update(files)
        _write_atomically(os.path.join(self.outdir, "run.json"), json.dumps(run, indent=1) + "\n")
        return run

    def _read_census_rows(self):
        """census.jsonl back: one by_type dict per sample point."""
        rows = []
        with open(os.path.join(self.outdir, "census.jsonl"), encoding="utf-8") as stream:
            for line in stream:
                rows.append(json.loads(line)["by_type"])
        return rows

    def _display_name(self, type_name):
        """The program's own classes are named after its file: '__main__.Session' reads
        'app.Session', as ``python -m app`` would name it."""
        if type_name.startswith("__main__."):
            return self.main_name + type_name[len("__main__"):]
        return type_name

    def _growing_types(self, census_rows):
        """Types whose count or bytes rose on (nearly) every sample interval from the baseline on,
        the largest growth first: (type_name, counts, sizes)."""
        if len(census_rows) < 2:
            return []
        names = set()
        for by_type in census_rows:
            names.update(by_type)
        grown = []
        for name in names:
            counts = [by_type.get(name, (0, 0))[0] for by_type in census_rows]
            sizes = [by_type.get(name, (0, 0))[1] for by_type in census_rows]
            # A type that appears during the run (a class first used late, objects of an extension
            # imported late) is judged from its first point on.
            start = next((i for i, count in enumerate(counts) if count), len(counts))
            if start > 0 and len(counts) - start >= 3:
                start -= 1  # its last zero: the first rise is from nothing
            tail_counts, tail_sizes = counts[start:], sizes[start:]
            if (grows_steadily(tail_counts) or grows_steadily(tail_sizes)) and sizes[-1] > sizes[0]:
                grown.append((name, counts, sizes))
        grown.sort(key=lambda g: (-(g[2][-1] - g[2][0]), -(g[1][-1] - g[1][0]), g[0]))
        return grown

    def _type_table(self, census_rows, baseline, leak_rows):
        """run.json's ``types``: the growing types first, then those that grew most in bytes, at
        most MAX_TYPES, each with its count and size at every sample point."""
        chosen = [name for name, _, _ in leak_rows][:MAX_TYPES]
        first, last = census_rows[baseline], census_rows[-1]
        others = sorted((name for name in last if name not in chosen),
                        key=lambda n: -(last[n][1] - first.get(n, (0, 0))[1]))
        for name in others:
            if len(chosen) >= MAX_TYPES or last[name][1] - first.get(name, (0, 0))[1] <= 0:
                break
            chosen.append(name)
        return [{"type_name": self._display_name(name),
                 "counts": [by_type.get(name, (0, 0))[0] for by_type in census_rows],
                 "sizes": [by_type.get(name, (0, 0))[1] for by_type in census_rows]} for name in chosen]

    def _path_text(self, path):
        if path.root_kind == "module" and path.root_name == "__main__":
            path.root_name = self.main_name
        return str(path)

    def _leaks(self, leak_rows, first_census, last_census):
        """run.json's ``leaks``: for each growing type, a few of its objects made since
        ``first_census`` and still alive, why they are alive, where they were allocated, and a picture of one path."""
        from libleak import refs

        gc.collect()  # what the last census left as garbage is not a sample
        own = self._own_objects()
        places = heap._noise_places()
        leaks = []
        # Classes ('module.Class') are sampled before the builtin types they are made of: they name
        # the leak; the budget of why_alive calls goes to them first.
        order = sorted(range(len(leak_rows)), key=lambda i: ("." not in leak_rows[i][0], i))
        sampled_types = set(order[:MAX_LEAKS])
        for index, (name, counts, sizes) in enumerate(leak_rows):
            entry = {"type_name": self._display_name(name), "count_growth": counts[-1] - counts[0],
                     "size_growth": sizes[-1] - sizes[0], "paths": [], "graph": None, "allocated": None}
            leaks.append(entry)
            if index not in sampled_types:
                continue
            try:
                samples = [obj for obj in last_census.new_objects(first_census, name, _SAMPLES_PER_TYPE + 8)
                           if id(obj) not in own]
            except Exception as error:
                self._state["errors"].append("samples of %s: %s" % (name, error))
                continue
            first_path = None
            sampled = 0
            # By index: an iterator over `samples` would hold each sample where why_alive sees a
            # reference from C (the interpreter's value stack, before 3.11).
            position = 0
            while position < len(samples) and sampled < _SAMPLES_PER_TYPE:
                sample = samples[position]
                position += 1
                try:
                    retention = refs.why_alive(sample, max_paths=2)
                except Exception as error:
                    self._state["errors"].append("why_alive(%s): %s" % (name, error))
                    break
                if retention.paths and all(path.root_kind == "garbage" for path in retention.paths):
                    continue  # the collector frees it: not a leak
                sampled += 1
                for path in retention.paths:
                    text = self._path_text(path)
                    if text not in entry["paths"] and len(entry["paths"]) < _PATHS_PER_TYPE:
                        entry["paths"].append(text)
                    first_path = first_path or path
                if entry["allocated"] is None and tracer.is_tracing() and not _recycled(name):
                    where = tracer.get_object_traceback(sample)
                    if where is not None:
                        entry["allocated"] = _program_frames(where, places)
                        if entry["allocated"]:
                            entry["allocated_source"] = _source_line(*entry["allocated"][-1])
                del retention, sample
            del samples
            if first_path is not None:
                graph = "retention-%d.svg" % (index + 1)
                try:
                    refs.render(first_path, os.path.join(self.outdir, graph))
                    entry["graph"] = graph
                except Exception as error:  # Graphviz may lack a plugin: the paths are still there
                    self._state["errors"].append("graph of %s: %s" % (name, error))
            del first_path
        return leaks

    def _own_objects(self):
        """The ids of the objects the recorder keeps (what its state reaches, short of modules,
        classes and functions): the census leaves them out, and so must the samples."""
        seen = set()
        stack = [self._state]
        while stack:
            obj = stack.pop()
            if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
                continue
            seen.add(id(obj))
            stack.extend(gc.get_referents(obj))
        return seen

    def _sites(self, first, last):
        """Allocation tracebacks whose live bytes grew from the first snapshot to the last, the
        interpreter's caches and libleak left out; most bytes first.  Tracebacks most recent call
        last, without libleak's and runpy's frames under the program."""
        places = heap._noise_places()
        sites = []
        for diff in last.compare_to(first, "traceback"):
            if diff.size_diff <= 0 or not len(diff.traceback):
                continue
            frames = _program_frames(diff.traceback, places)
            if frames is None:
                continue
            sites.append({"size_diff": diff.size_diff, "count_diff": diff.count_diff, "size": diff.size,
                          "count": diff.count, "traceback": frames, "source": _source_line(*frames[-1])})
            if len(sites) >= MAX_SITES:
                break
        return sites

    def _extension_buffers(self, first, last):
        """Growth of the buffers extensions report to the tracer (NumPy's array data), per domain."""
        grown = {}
        for snapshot, sign in ((last, 1), (first, -1)):
            for trace in snapshot.traces:
                if trace.domain != 0:
                    grown[trace.domain] = grown.get(trace.domain, 0) + sign * trace.size
        rows = [{"module": domain_module(domain), "domain": domain, "size_diff": size}
                for domain, size in grown.items() if size != 0]
        rows.sort(key=lambda row: -row["size_diff"])
        return rows

    def _write_snapshots(self, first, last):
        from libleak import sampler

        files = {}
        for name, snapshot, key in (("snapshot-first.llsnap", first, "snapshot_first"),
                                    ("snapshot-last.llsnap", last, "snapshot_last")):
            snapshot.dump(os.path.join(self.outdir, name))
            files[key] = name
        try:
            sampler.heap_profile(last).write(os.path.join(self.outdir, "heap.svg"))
            files["heap_svg"] = "heap.svg"
        except Exception as error:
            self._state["errors"].append("heap flame graph: %s" % error)
        return files

    def _write_profile(self, profile):
        files = {}
        for key, name in (("cpu_svg", "cpu.svg"), ("cpu_pprof", "cpu.pb.gz"), ("cpu_collapsed", "cpu.collapsed")):
            try:
                profile.write(os.path.join(self.outdir, name))
                files[key] = name
            except Exception as error:
                self._state["errors"].append("%s: %s" % (name, error))
        return files


def load_run(path):
    """The run dict of a run directory (or of its run.json).  Raises OSError when it cannot be
    read and libleak.FormatError when it is not a libleak run."""
    if os.path.isdir(path):
        path = os.path.join(path, "run.json")
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    try:
        run = json.loads(text)
    except ValueError as error:
        raise FormatError("not a libleak run: %s" % error) from None
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise FormatError("not a libleak run (no \"format\": \"%s\")" % RUN_FORMAT)
    if run.get("version") != RUN_VERSION:
        raise FormatError("libleak run version %r, this libleak reads version %d" % (run.get("version"), RUN_VERSION))
    for key in ("series", "verdict", "leaks", "sites"):
        if key not in run:
            raise FormatError("not a complete libleak run: no %r" % key)
    return run
