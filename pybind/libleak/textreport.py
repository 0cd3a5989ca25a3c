"""libleak.textreport: the leak report of a run, as text for a terminal.

``format_run(run, rundir)`` turns run.json's dict (``libleak.runrecord``) into the report that
``libleak run`` prints at exit and ``libleak report DIR`` prints again: the memory figures side by
side, the verdict, the types that grew with why they are alive and where they were allocated, the
allocation lines that grew, and the files of the run directory.  It reads nothing but the run
dict (and the program's source lines, when they are still there, to quote them).
"""

import linecache
import os
import re
import textwrap

from libleak.heap import _format_size

__all__ = ["format_run"]

_SHOWN_SITES = 10
_SHOWN_CALLERS = 3


def _count(value):
    return "{:,}".format(value)


def _signed_count(value):
    return "{:+,}".format(value)


def _where(filename, lineno):
    """file:line, the file relative to the working directory when it lies under it."""
    shown = filename
    if not filename.startswith("<"):
        try:
            relative = os.path.relpath(filename)
            if not relative.startswith(os.pardir):
                shown = relative
        except ValueError:
            pass
    return "%s:%d" % (shown, lineno)


def _source(filename, lineno, stored=None):
    """': the source line', as run.json kept it (else as the file reads now), or ''."""
    line = stored if stored is not None else linecache.getline(filename, lineno).strip()
    return ": " + line if line else ""


def _wrap(text, indent="  "):
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


def _figures(run):
    """The side-by-side lines: RSS, traced bytes, live objects, from the baseline to the end."""
    series = run["series"]
    window = series[min(run.get("baseline", 0), len(series) - 1):] if series else []
    if not window:
        return ["  (no sample points)"]
    first, last = window[0], window[-1]
    lines = ["  %-14s %12s -> %-12s (%s)" % ("RSS", _format_size(first["rss"]), _format_size(last["rss"]),
                                             _format_size(last["rss"] - first["rss"], sign=True))]
    if first.get("traced") is not None and last.get("traced") is not None:
        lines.append("  %-14s %12s -> %-12s (%s)" % ("traced", _format_size(first["traced"]),
                                                     _format_size(last["traced"]),
                                                     _format_size(last["traced"] - first["traced"], sign=True)))
    else:
        lines.append("  %-14s %s" % ("traced", "(not traced: run with --trace)"))
    lines.append("  %-14s %12s -> %-12s (%s), %s objects (%s)" % (
        "live objects", _format_size(first["object_bytes"]), _format_size(last["object_bytes"]),
        _format_size(last["object_bytes"] - first["object_bytes"], sign=True), _count(last["objects"]),
        _signed_count(last["objects"] - first["objects"])))
    return lines


def _leak_lines(run):
    leaks = run.get("leaks") or []
    if not leaks:
        return []
    lines = ["", "Types that grew on (nearly) every sample point, most bytes first:"]
    width = max(len(leak["type_name"]) for leak in leaks)
    for leak in leaks:
        lines.append("  %-*s %12s objects %12s" % (width, leak["type_name"], _signed_count(leak["count_growth"]),
                                                   _format_size(leak["size_growth"], sign=True)))
        for path in leak.get("paths") or []:
            lines.append("      held by   %s" % path)
        allocated = leak.get("allocated")
        if allocated:
            filename, lineno = allocated[-1]
            lines.append("      allocated %s%s" % (_where(filename, lineno),
                                                 _source(filename, lineno, leak.get("allocated_source"))))
        if leak.get("graph"):
            lines.append("      graph     %s" % leak["graph"])
    return lines


# One step of a retention path that is an entry of a container: list[5], dict['k'], dict (a key).
_ENTRY = re.compile(r"^([\w.<>]+)(\[.*\]| \(a key\))$")


def holder_of(path):
    """The container a retention path's object hangs from: the path up to its first container entry,
    without the entry (``module app: CACHE -> dict['k42'] -> Session`` -> ``module app: CACHE -> dict``);
    the whole path when it has no entry.  Objects that one holder keeps are one leak."""
    steps = path.rsplit(" (", 1)[0].split(" -> ") if path.endswith(")") else path.split(" -> ")
    for i, step in enumerate(steps[1:], 1):
        entry = _ENTRY.match(step)
        if entry:
            return " -> ".join(steps[:i] + [entry.group(1)])
    return " -> ".join(steps)


def holders(run):
    """A run's leaks grouped by holder (each type by its first retention path), most bytes first:
    [(holder, [type names], bytes grown)].  The short answer to "what leaks", which the text and HTML
    reports give before the per-type detail."""
    grouped = {}
    for leak in run.get("leaks") or []:
        paths = leak.get("paths") or []
        if not paths:
            continue
        types, size = grouped.setdefault(holder_of(paths[0]), ([], [0]))
        types.append(leak["type_name"])
        size[0] += leak.get("size_growth") or 0
    rows = [(holder, types, size[0]) for holder, (types, size) in grouped.items()]
    return sorted(rows, key=lambda row: -row[2])


def _holder_lines(run):
    """The "Held by" lines of the text report: holders(run) as a table."""
    rows = holders(run)
    if not rows:
        return []
    width = max(len(holder) for holder, _, _ in rows)
    lines = ["", "Held by (the container each growing type's objects hang from), most bytes first:"]
    for holder, types, size in rows:
        lines.append("  %12s  %-*s  %s" % (_format_size(size, sign=True), width, holder, ", ".join(types)))
    return lines


def _site_lines(run):
    sites = run.get("sites") or []
    if not sites:
        return []
    lines = ["", "Allocation lines whose live memory grew (first snapshot to last), most bytes first:"]
    if tuple(int(part) for part in run.get("python", "0.0").split(".")[:2]) < (3, 13):
        lines.append(_wrap("(Python %s: tuples, lists and dicts that CPython recycles from its freelists count at the "
                           "line that first allocated their memory, which may be another line than the one that made "
                           "them; 3.13 tells them apart.)" % ".".join(run["python"].split(".")[:2])))
    for site in sites[:_SHOWN_SITES]:
        frames = site["traceback"]
        filename, lineno = frames[-1]
        lines.append("  %12s %14s blocks  %s%s" % (_format_size(site["size_diff"], sign=True),
                                                   _signed_count(site["count_diff"]), _where(filename, lineno),
                                                   _source(filename, lineno, site.get("source"))))
        callers = [_where(f, n) for f, n in reversed(frames[:-1])][:_SHOWN_CALLERS]
        if callers:
            lines.append("  %12s %14s         called from %s" % ("", "", " <- ".join(callers)))
    if len(sites) > _SHOWN_SITES:
        lines.append("  ... %d more in run.json" % (len(sites) - _SHOWN_SITES))
    return lines


def _buffer_lines(run):
    grown = [b for b in run.get("extension_buffers") or [] if b.get("size_diff")]
    if not grown:
        return []
    return ["", "Extension buffers (traced): %s" % ", ".join(
        "%s %s" % (b["module"], _format_size(b["size_diff"], sign=True)) for b in grown)]


def format_run(run, rundir=None):
    """The report of a run (run.json's dict) as text, ending with a newline.  ``rundir``, when
    given, is named as where the files are."""
    argv = run.get("argv") or ["?"]
    series = run.get("series") or []
    options = run.get("options") or {}
    baseline = run.get("baseline", 0)
    head = "libleak: %s ran %.1f s (exit code %s) on Python %s; %d sample points every %s s" % (
        " ".join(argv), run.get("duration", 0.0), run.get("exit_code"), run.get("python", "?"), len(series),
        options.get("every", "?"))
    if series and 0 < baseline < len(series):
        head += "; growth counted from t=%.1f s" % series[baseline]["t"]
    lines = [head] + _figures(run)
    verdict = run.get("verdict") or {}
    lines += ["", "Verdict: %s" % verdict.get("title", "?"), _wrap(verdict.get("text", ""))]
    lines += _holder_lines(run)
    lines += _leak_lines(run)
    lines += _site_lines(run)
    lines += _buffer_lines(run)
    files = sorted(name for name in (run.get("files") or {}).values() if name)
    graphs = sorted(leak["graph"] for leak in run.get("leaks") or [] if leak.get("graph"))
    if rundir is not None:
        listed = ["run.json"] + files + graphs
        lines += ["", "Results in %s: %s" % (rundir, ", ".join(listed))]
    for error in run.get("errors") or []:
        lines.append("libleak: warning: %s" % error)
    return "\n".join(lines) + "\n"
