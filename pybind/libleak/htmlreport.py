"""libleak.htmlreport: one self-contained HTML page from a run directory of ``libleak run``.

The page needs no network access (style, scripts and pictures are inline) and shows, in order:
the program and its run (Python version, duration, exit code), the verdict, the growth of RSS,
traced Python memory and the object census, charts of memory and of the growing types over time,
the leaking types with their retention paths and Graphviz pictures, the allocation sites that
grew with their tracebacks, and the flame graphs of live bytes and of CPU time when the run made
them.  Parts the run did not produce are left out.

Example::

    from libleak.htmlreport import write_report
    path = write_report("libleak-app-1234")             # writes libleak-app-1234/report.html
    write_report("libleak-app-1234", "/tmp/app.html")   # or anywhere else

The run directory's layout (``run.json`` and the files it names) is described in the docs of
``libleak run``; a missing or malformed ``run.json`` raises :class:`libleak.FormatError`.
"""

import base64
import datetime
import json
import linecache
import math
import os
import re
import shlex
import tempfile
import xml.etree.ElementTree as ElementTree
from html import escape
from urllib.parse import quote

from libleak import _htmlchart, _htmlpage
from libleak._htmlchart import format_bytes, format_count, format_seconds
from libleak.errors import FormatError
from libleak.textreport import holders

__all__ = ["write_report", "render_report", "load_run"]

RUN_FILE = "run.json"
_FORMAT, _VERSION = "libleak-run", 1
_VERDICT_KINDS = {
    "python": "leak of Python objects",
    "native": "native memory growth",
    "fragmentation": "allocator retention / fragmentation",
    "none": "no leak found",
}
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
# Elements a picture inlined into the page may not carry: scripts, other documents, anything that
# loads from elsewhere, and style sheets (inline SVG's <style> would apply to the whole page).
_UNSAFE_TAGS = {"script", "foreignObject", "iframe", "object", "embed", "audio", "video", "image", "use",
                "style", "link"}
_OUTSIDE_URL = re.compile(r"url\(\s*(?!['\"]?#)", re.I)


# ---- reading and checking run.json ----------------------------------------------------------

class _Check:
    """Type checks of run.json's fields; each failure is a FormatError that names the file and the
    field, so a writer's bug shows where it is."""

    def __init__(self, path):
        self.path = path

    def fail(self, where, expected, value):
        raise FormatError("%s: %s must be %s, not %s" % (self.path, where, expected, _describe(value)))

    def number(self, value, where, optional=True):
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(where, "a number" + (" or null" if optional else ""), value)

    def integer(self, value, where, optional=True):
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, "an integer" + (" or null" if optional else ""), value)

    def string(self, value, where, optional=True):
        if value is None and optional:
            return
        if not isinstance(value, str):
            self.fail(where, "a string" + (" or null" if optional else ""), value)

    def array(self, value, where):
        if not isinstance(value, list):
            self.fail(where, "a list", value)
        return value

    def record(self, value, where):
        if not isinstance(value, dict):
            self.fail(where, "an object", value)
        return value


def _describe(value):
    """A short description of a JSON value for an error message."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    if type(value) in names:
        text = names[type(value)]
        if isinstance(value, str):
            text += " %r" % (value[:40],)
        return text
    return repr(value)[:40]


def load_run(rundir):
    """Reads and checks ``rundir/run.json``; returns its content as a dict (the JSON as written).

    Only ``format`` ("libleak-run") and ``version`` (1) are required; every other field may be
    missing, but one that is present must have the documented type.  Raises TypeError when
    `rundir` is not a path, FormatError (naming the file) when run.json is missing, unreadable,
    not JSON, not a libleak run, of a newer version, or has a field of the wrong type."""
    if not isinstance(rundir, (str, bytes, os.PathLike)):
        raise TypeError("rundir must be a path (str or os.PathLike), not %s" % type(rundir).__name__)
    rundir = os.fsdecode(os.fspath(rundir))
    path = os.path.join(rundir, RUN_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FormatError("%s: cannot read the run description: %s" % (path, e.strerror or e)) from None
    try:
        run = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError("%s: not UTF-8 text (%s)" % (path, e.reason)) from None
    except ValueError as e:
        raise FormatError("%s: not valid JSON: %s" % (path, e)) from None
    _check_run(run, _Check(path))
    return run


def _check_run(run, check):
    """Checks the fields of run.json that the report reads (see load_run)."""
    check.record(run, "the top level")
    if run.get("format") != _FORMAT:
        check.fail("'format'", repr(_FORMAT) + " (is this a libleak run directory?)", run.get("format"))
    version = run.get("version")
    check.integer(version, "'version'", optional=False)
    if version > _VERSION or version < 1:
        raise FormatError("%s: version %d of the run format; this libleak reads version %d"
                          % (check.path, version, _VERSION))
    if run.get("argv") is not None:
        for i, arg in enumerate(check.array(run["argv"], "'argv'")):
            check.string(arg, "'argv'[%d]" % i, optional=False)
    for key in ("python", "started"):
        check.string(run.get(key), "'%s'" % key)
    check.integer(run.get("pid"), "'pid'")
    check.integer(run.get("exit_code"), "'exit_code'")
    check.number(run.get("duration"), "'duration'")
    if run.get("options") is not None:
        check.record(run["options"], "'options'")
    rows = 0
    if run.get("series") is not None:
        for i, row in enumerate(check.array(run["series"], "'series'")):
            check.record(row, "'series'[%d]" % i)
            check.number(row.get("t"), "'series'[%d].t" % i, optional=False)
            for key in ("rss", "traced", "objects", "object_bytes"):
                check.number(row.get(key), "'series'[%d].%s" % (i, key))
        rows = len(run["series"])
    if run.get("types") is not None:
        for i, row in enumerate(check.array(run["types"], "'types'")):
            where = "'types'[%d]" % i
            check.record(row, where)
            check.string(row.get("type_name"), where + ".type_name", optional=False)
            for key in ("counts", "sizes"):
                values = check.array(row.get(key, []), "%s.%s" % (where, key))
                if len(values) != rows:
                    raise FormatError("%s: %s.%s has %d values for %d rows of 'series'"
                                      % (check.path, where, key, len(values), rows))
                for j, value in enumerate(values):
                    check.number(value, "%s.%s[%d]" % (where, key, j))
    if run.get("verdict") is not None:
        verdict = check.record(run["verdict"], "'verdict'")
        for key in ("kind", "title", "text"):
            check.string(verdict.get(key), "'verdict'.%s" % key)
    if run.get("growth") is not None:
        for key, value in check.record(run["growth"], "'growth'").items():
            check.number(value, "'growth'.%s" % key)
    if run.get("leaks") is not None:
        for i, leak in enumerate(check.array(run["leaks"], "'leaks'")):
            where = "'leaks'[%d]" % i
            check.record(leak, where)
            check.string(leak.get("type_name"), where + ".type_name", optional=False)
            check.number(leak.get("count_growth"), where + ".count_growth")
            check.number(leak.get("size_growth"), where + ".size_growth")
            check.string(leak.get("graph"), where + ".graph")
            for j, line in enumerate(check.array(leak.get("paths", []), where + ".paths")):
                check.string(line, "%s.paths[%d]" % (where, j), optional=False)
    if run.get("sites") is not None:
        for i, site in enumerate(check.array(run["sites"], "'sites'")):
            where = "'sites'[%d]" % i
            check.record(site, where)
            for key in ("size_diff", "count_diff", "size", "count"):
                check.number(site.get(key), "%s.%s" % (where, key))
            for j, frame in enumerate(check.array(site.get("traceback", []), where + ".traceback")):
                if not (isinstance(frame, list) and len(frame) == 2 and isinstance(frame[0], str)
                        and isinstance(frame[1], int) and not isinstance(frame[1], bool)):
                    check.fail("%s.traceback[%d]" % (where, j), "a [filename, lineno] pair", frame)
    if run.get("extension_buffers") is not None:
        for i, row in enumerate(check.array(run["extension_buffers"], "'extension_buffers'")):
            check.record(row, "'extension_buffers'[%d]" % i)
            check.string(row.get("module"), "'extension_buffers'[%d].module" % i, optional=False)
            check.number(row.get("size_diff"), "'extension_buffers'[%d].size_diff" % i)
    if run.get("files") is not None:
        for key, value in check.record(run["files"], "'files'").items():
            check.string(value, "'files'.%s" % key)


# ---- files of the run directory ---------------------------------------------------------------

def _member(rundir, name):
    """The path of file `name` of the run directory, or None when the name is null, leaves the
    directory (absolute, '..') or names no regular file: such entries are treated as absent."""
    if not name:
        return None
    if os.path.isabs(name) or os.pardir in name.replace("\\", "/").split("/"):
        return None
    path = os.path.join(rundir, name)
    return path if os.path.isfile(path) else None


def _read_svg_tree(path):
    """Parses an SVG file; None when it cannot be read or parsed, or declares entities."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"<!ENTITY" in data:
        return None
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None


def _local(name):
    return name.rsplit("}", 1)[-1]


def _inline_graph(path, prefix):
    """A Graphviz SVG file made safe to inline into the page: scripts, event handlers and links
    out of the picture removed, Graphviz's internal titles ('n0', 'n0->n1') dropped, and every id
    prefixed with `prefix` so two pictures on one page do not clash.  None when unreadable."""
    root = _read_svg_tree(path)
    if root is None or _local(root.tag) != "svg":
        return None
    for parent in list(root.iter()):
        for child in list(parent):
            if _local(child.tag) in _UNSAFE_TAGS:
                parent.remove(child)
            elif _local(child.tag) == "title" and _local(parent.tag) == "g":
                parent.remove(child)
    for element in root.iter():
        for key in list(element.attrib):
            value = element.attrib[key]
            name = _local(key)
            if name.lower().startswith("on"):
                del element.attrib[key]
            elif name == "href":
                if value.startswith("#"):
                    element.attrib[key] = "#" + prefix + value[1:]
                else:
                    del element.attrib[key]
            elif name == "id":
                element.attrib[key] = prefix + value
            elif _OUTSIDE_URL.search(value):
                del element.attrib[key]
            elif "url(#" in value:
                element.attrib[key] = value.replace("url(#", "url(#" + prefix)
    root.set("class", "graphviz")
    text = ElementTree.tostring(root, encoding="unicode")
    # ElementTree writes the SVG namespace as a prefix ('ns0:svg'); the HTML parser wants bare names.
    return _unprefix(text)


def _unprefix(text):
    """Rewrites ElementTree's 'ns0:tag' / 'xmlns:ns0' for the SVG namespace to bare tags."""
    match = re.search(r'xmlns:(\w+)="%s"' % re.escape(_SVG_NS), text)
    if not match:
        return text
    prefix = match.group(1)
    text = text.replace('xmlns:%s="%s"' % (prefix, _SVG_NS), 'xmlns="%s"' % _SVG_NS)
    return re.sub(r"<(/?)%s:" % re.escape(prefix), r"<\1", text)


_SIZE_ATTR = re.compile(rb'<svg\b[^>]*?\bwidth="([\d.]+)(?:px)?"[^>]*?\bheight="([\d.]+)(?:px)?"', re.S)


def _flame_object(path, label):
    """A flame graph SVG (libleak's own, interactive) as an <object> holding it as a data: URL.
    The SVG keeps its own document there, so its script (click to zoom, search, Escape) runs as
    written, and cannot reach the page around it.  None when the file is not an SVG."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    head = data[:4096].lstrip()
    if not (head.startswith(b"<?xml") or head.startswith(b"<svg")) or b"<svg" not in head:
        return None
    size = _SIZE_ATTR.search(head)
    ratio = "%s / %s" % (size.group(1).decode(), size.group(2).decode()) if size else "1200 / 400"
    source = "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")
    return ('<div class="flame"><object type="image/svg+xml" style="aspect-ratio: %s" data="%s" '
            'aria-label="%s">%s could not be shown: this browser does not display SVG documents.'
            '</object></div>' % (escape(ratio), source, escape(label), escape(label)))


# ---- small formatting helpers -----------------------------------------------------------------

def _program(argv):
    """The command line as a shell would take it."""
    if not argv:
        return "(unknown program)"
    return " ".join(shlex.quote(a) for a in argv)


def _program_name(argv):
    if not argv:
        return "(unknown program)"
    if argv[0] == "-m" and len(argv) > 1:
        return "-m " + argv[1]
    return os.path.basename(argv[0]) or argv[0]


def _started(text):
    """'2026-12-03T03:00:00Z' as '2026-12-03 03:00:00 UTC'; other texts as they are."""
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return text
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _prose(text):
    """A paragraph of the verdict as HTML: escaped, blank lines make paragraphs, `x` becomes code."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    out = []
    for p in paragraphs:
        html = _CODE_SPAN.sub(lambda m: "<code>%s</code>" % m.group(1), escape(p))
        out.append("<p>%s</p>" % html.replace("\n", "<br>"))
    return "\n".join(out)


def _growth_cell(value, formatter):
    """A table cell for a change: '+1.2 MiB' in the growth colour, '-' when unknown."""
    if value is None:
        return '<td class="num grow">\u2013</td>'
    direction = " up" if value > 0 else (" down" if value < 0 else "")
    return '<td class="num grow%s">%s</td>' % (direction, escape(formatter(value, sign=True)))


def _source_line(filename, lineno):
    """The source text of a line when the file can be read here, else ''."""
    try:
        return linecache.getline(filename, lineno).strip()
    except Exception:
        return ""


def _frame_html(filename, lineno):
    src = _source_line(filename, lineno)
    where = "%s:%d" % (escape(filename), lineno)
    return where + ('<span class="src">%s</span>' % escape(src) if src else "")


# ---- sections -----------------------------------------------------------------------------------

def _header(run, sections):
    argv = run.get("argv") or []
    chips = []
    if run.get("python"):
        chips.append("<li>Python <b>%s</b></li>" % escape(run["python"]))
    if run.get("duration") is not None:
        chips.append("<li>ran <b>%s</b></li>" % escape(format_seconds(run["duration"])))
    if run.get("exit_code") is not None:
        code = run["exit_code"]
        chips.append('<li%s>exit code <b>%d</b></li>' % (' class="bad"' if code else "", code))
    if run.get("pid") is not None:
        chips.append("<li>PID <b>%d</b></li>" % run["pid"])
    if run.get("started"):
        chips.append("<li>started <b>%s</b></li>" % escape(_started(run["started"])))
    for key, value in sorted((run.get("options") or {}).items()):
        if value in (None, 0, False, ""):
            continue
        chips.append("<li>%s</li>" % escape(_option_text(key, value)))
    toc = " ".join('<a href="#%s">%s</a>' % (anchor, escape(title)) for anchor, title in sections)
    return ('<header class="top"><div class="inner"><div class="brand">libleak report</div>'
            '<h1><code>%s</code></h1><ul class="meta">%s</ul><nav class="toc">%s</nav></div></header>'
            % (escape(_program(argv)), "".join(chips), toc))


def _option_text(key, value):
    """One option of the run as people say it."""
    if key == "trace":
        return "tracer: %s frames" % value if value is not True else "tracer on"
    if key == "cpu":
        return "CPU sampler: %s Hz" % value if value is not True else "CPU sampler on"
    if key == "sample_bytes":
        return "allocation sampling: every %s" % (format_bytes(value) if isinstance(value, int) else value)
    if key == "every":
        return "a sample every %s" % (format_seconds(value) if isinstance(value, (int, float)) else value)
    return "%s: %s" % (key, value)


def _verdict(run):
    verdict = run.get("verdict")
    if not verdict:
        return ""
    kind = verdict.get("kind") or ""
    css = kind if kind in _VERDICT_KINDS else "other"
    label = _VERDICT_KINDS.get(kind, kind or "verdict")
    return ('<section class="verdict kind-%s" id="verdict"><div class="kind">%s</div><h2>%s</h2>%s</section>'
            % (css, escape(label), escape(verdict.get("title") or ""), _prose(verdict.get("text"))))


_GROWTH_ROWS = (
    ("rss", "rss", "Resident memory (RSS)", "what the operating system gives the process", format_bytes),
    ("traced", "traced", "Traced Python memory", "live blocks of Python's allocators (tracer)", format_bytes),
    ("object_bytes", "object_bytes", "Census: object bytes", "sizes of all live objects", format_bytes),
    ("objects", "objects", "Census: objects", "number of live objects", format_count),
)


def _holders(run):
    """The leaks grouped by the container they hang from (textreport.holders), most bytes first."""
    rows = holders(run)
    if not rows:
        return ""
    body = "".join('<tr><td class="mono">%s</td><td class="mono">%s</td>%s</tr>'
                   % (escape(holder), escape(", ".join(types)), _growth_cell(size, format_bytes))
                   for holder, types, size in rows)
    return ('<section id="holders"><h2>Held by</h2><p class="note">The container each growing type&#x27;s '
            'objects hang from, by the first retention path of each type; objects that one holder keeps '
            'are one leak.</p><table><thead><tr><th>holder</th><th>types</th><th class="num">growth</th>'
            '</tr></thead><tbody>%s</tbody></table></section>' % body)


def _growth(run):
    series = run.get("series") or []
    growth = run.get("growth") or {}
    if not series and not growth:
        return ""
    first, last = (series[0], series[-1]) if series else ({}, {})
    rows = []
    for series_key, growth_key, name, explain, formatter in _GROWTH_ROWS:
        start, end = first.get(series_key), last.get(series_key)
        change = growth.get(growth_key)
        if change is None and start is not None and end is not None and growth_key not in growth:
            change = end - start
        if start is None and end is None and change is None:
            if series_key == "traced":
                rows.append('<tr><td>%s<div class="sub">not traced in this run (<code>--trace</code>)</div></td>'
                            '<td class="num">\u2013</td><td class="num">\u2013</td><td class="num grow">\u2013</td></tr>'
                            % escape(name))
            continue
        rows.append('<tr><td>%s<div class="sub">%s</div></td><td class="num">%s</td><td class="num">%s</td>%s</tr>'
                    % (escape(name), escape(explain), escape(formatter(start)), escape(formatter(end)),
                       _growth_cell(change, formatter)))
    out = ['<section id="growth"><h2>Growth over the run</h2>',
           '<table class="growth"><thead><tr><th>measure</th><th class="num">at start</th><th class="num">at end</th>'
           '<th class="num">change</th></tr></thead><tbody>%s</tbody></table>' % "".join(rows)]
    buffers = run.get("extension_buffers") or []
    if buffers:
        out.append('<h3 style="margin-top:18px">Extension buffers (traced by the extensions themselves)</h3>')
        out.append('<table><thead><tr><th>module</th><th class="num">change</th></tr></thead><tbody>%s</tbody></table>'
                   % "".join('<tr><td class="mono">%s</td>%s</tr>' % (escape(b["module"]),
                                                                      _growth_cell(b.get("size_diff"), format_bytes))
                             for b in buffers))
    out.append("</section>")
    return "\n".join(out)


def _memory_chart(run):
    series = run.get("series") or []
    if len(series) < 2:
        return ""
    times = [row["t"] for row in series]
    lines = []
    for key, name in (("rss", "RSS (resident memory)"), ("traced", "traced Python memory"),
                      ("object_bytes", "census: object bytes")):
        values = [row.get(key) for row in series]
        if any(v is not None for v in values):
            lines.append(_htmlchart.Series(name, values))
    chart = _htmlchart.line_chart(times, lines, unit="bytes", css_id="chart-memory")
    if not chart:
        return ""
    return ('<section id="memory"><h2>Memory over time</h2><div class="chart-box">%s%s</div></section>'
            % (chart, _htmlchart.legend(lines, "chart-memory")))


def _types_chart(run):
    series = run.get("series") or []
    types = run.get("types") or []
    if len(series) < 2 or not types:
        return ""
    times = [row["t"] for row in series]
    views = []
    for key, unit, css_id, view in (("sizes", "bytes", "chart-types-size", "size"),
                                    ("counts", "objects", "chart-types-count", "count")):
        lines = [_htmlchart.Series(t["type_name"], t.get(key) or [None] * len(times)) for t in types]
        notes = []
        for t in types:
            known = [v for v in (t.get(key) or []) if v is not None]
            change = known[-1] - known[0] if len(known) > 1 else None
            notes.append(escape(format_bytes(change, sign=True) if unit == "bytes" else format_count(change, sign=True))
                         if change is not None else "")
        title = "Live bytes per type" if unit == "bytes" else "Live objects per type"
        chart = _htmlchart.line_chart(times, lines, unit=unit, title=title, css_id=css_id)
        if chart:
            views.append((view, chart + _htmlchart.legend(lines, css_id, notes)))
    if not views:
        return ""
    out = ['<section id="types"><h2>Growth by type</h2><div class="chart-box">']
    if len(views) == 2:
        out.append('<input type="radio" class="radio-hidden" name="types-view" id="by-size" checked>'
                   '<input type="radio" class="radio-hidden" name="types-view" id="by-count">'
                   '<div class="toggle"><label for="by-size">bytes</label><label for="by-count">objects</label></div>')
    for view, html in views:
        out.append('<div class="view-%s">%s</div>' % (view, html))
    out.append('<p class="note">The types that grew most; hover a line or a legend entry for values.</p>')
    out.append("</div></section>")
    return "\n".join(out)


def _leaks(run, rundir):
    leaks = run.get("leaks")
    if leaks is None:
        return ""
    out = ['<section id="leaks"><h2>Leaking types</h2>']
    if not leaks:
        out.append('<p class="muted">No type of object grew steadily during the run.</p>')
    for i, leak in enumerate(leaks):
        grow = []
        if leak.get("count_growth") is not None:
            grow.append("%s objects" % format_count(leak["count_growth"], sign=True))
        if leak.get("size_growth") is not None:
            grow.append(format_bytes(leak["size_growth"], sign=True))
        out.append('<article class="leak"><div class="head"><h3>%s</h3><span class="grow">%s</span></div>'
                   % (escape(leak["type_name"]), escape(" \u00b7 ".join(grow))))
        paths = leak.get("paths") or []
        if paths:
            out.append('<div class="note">%s</div><ol class="paths">%s</ol>' % (
                "Why a sample of them is alive (from a root down to the object):",
                "".join("<li><code>%s</code></li>" % escape(p) for p in paths)))
        else:
            out.append('<p class="note">No retention path was recorded for this type.</p>')
        graph = _member(rundir, leak.get("graph"))
        if graph:
            svg = _inline_graph(graph, "g%d-" % i)
            if svg:
                out.append('<details%s><summary>Retention graph</summary><div class="graph">%s</div></details>'
                           % (" open" if i < 3 else "", svg))
            else:
                out.append('<p class="note">The retention graph %s could not be read.</p>' % escape(leak["graph"]))
        out.append("</article>")
    out.append("</section>")
    return "\n".join(out)


def _sites(run):
    sites = run.get("sites")
    if not sites:
        return ""
    rows = []
    for site in sites:
        frames = site.get("traceback") or []
        if frames:
            filename, lineno = frames[-1]
            where = _frame_html(filename, lineno)
        else:
            where = '<span class="muted">(no traceback)</span>'
        detail = ""
        if len(frames) > 1:
            items = "".join('<li%s>%s</li>' % (' class="last"' if k == len(frames) - 1 else "", _frame_html(f, n))
                            for k, (f, n) in enumerate(frames))
            detail = ('<details><summary>traceback, %d frames (most recent call last)</summary>'
                      '<ol class="traceback">%s</ol></details>' % (len(frames), items))
        rows.append('<tr>%s%s<td class="num">%s</td><td class="num">%s</td><td class="site-where">%s%s</td></tr>' % (
            _growth_cell(site.get("size_diff"), format_bytes), _growth_cell(site.get("count_diff"), format_count),
            escape(format_bytes(site.get("size"))), escape(format_count(site.get("count"))), where, detail))
    return ('<section id="sites"><h2>Allocation sites that grew</h2>'
            '<table><thead><tr><th class="num">size change</th><th class="num">blocks change</th>'
            '<th class="num">live size</th><th class="num">live blocks</th><th>where (most recent frame)</th></tr>'
            '</thead><tbody>%s</tbody></table></section>' % "".join(rows))


def _flames(run, rundir):
    files = run.get("files") or {}
    out = []
    for key, anchor, title, explain in (
            ("heap_svg", "heap", "Live memory by allocation site",
             "Bytes still allocated at the end of the run, by the call stack that allocated them."),
            ("cpu_svg", "cpu", "CPU time",
             "Where the program spent CPU time, from the sampler.")):
        path = _member(rundir, files.get(key))
        if not path:
            continue
        embedded = _flame_object(path, title)
        if not embedded:
            out.append('<section id="%s"><h2>%s</h2><p class="note">%s is not an SVG file.</p></section>'
                       % (anchor, escape(title), escape(files[key])))
            continue
        out.append('<section id="%s"><h2>%s</h2><p class="note">%s Click a frame to zoom in, '
                   '<b>Search</b> to highlight frames by name, Escape to reset.</p>%s</section>'
                   % (anchor, escape(title), escape(explain), embedded))
    return "\n".join(out)


def _files(run, rundir, out_dir):
    files = run.get("files") or {}
    items = []
    for key, name in sorted(files.items()):
        path = _member(rundir, name) if key != "report_html" else None
        if not path:
            continue
        link = quote(os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir)).replace(os.sep, "/"))
        items.append('<li><a href="%s">%s</a> <span class="note">%s, %s</span></li>' % (
            escape(link), escape(name), escape(key.replace("_", " ")), escape(format_bytes(os.path.getsize(path)))))
    if not items:
        return ""
    return '<section id="files"><h2>Files of this run</h2><ul class="files">%s</ul></section>' % "".join(items)


def _sections_present(run, rundir):
    """The table of contents: (anchor, title) of each section the page will have."""
    files = run.get("files") or {}
    present = []
    if run.get("verdict"):
        present.append(("verdict", "Verdict"))
    if holders(run):
        present.append(("holders", "Held by"))
    if run.get("series") or run.get("growth"):
        present.append(("growth", "Growth"))
    if len(run.get("series") or []) >= 2:
        present.append(("memory", "Memory over time"))
        if run.get("types"):
            present.append(("types", "By type"))
    if run.get("leaks") is not None:
        present.append(("leaks", "Leaking types"))
    if run.get("sites"):
        present.append(("sites", "Allocation sites"))
    if _member(rundir, files.get("heap_svg")):
        present.append(("heap", "Live memory flame graph"))
    if _member(rundir, files.get("cpu_svg")):
        present.append(("cpu", "CPU flame graph"))
    return present


def render_report(rundir, run=None, out_dir=None):
    """The report page of run directory `rundir` as a str (what write_report writes).  `run` is
    the content of run.json when already loaded (load_run); `out_dir` is where the page will be
    saved (links to the run's files are made relative to it; default: the run directory).
    Raises what load_run raises."""
    rundir = os.fsdecode(os.fspath(rundir))
    if run is None:
        run = load_run(rundir)
    out_dir = rundir if out_dir is None else out_dir
    from libleak import __version__

    name = _program_name(run.get("argv"))
    body = [
        _header(run, _sections_present(run, rundir)),
        "<main>",
        _verdict(run),
        _holders(run),
        _growth(run),
        _memory_chart(run),
        _types_chart(run),
        _leaks(run, rundir),
        _sites(run),
        _flames(run, rundir),
        _files(run, rundir, out_dir),
        '<footer>Made by libleak %s from <code>%s</code>.</footer>' % (
            escape(__version__), escape(os.path.join(os.path.abspath(rundir), RUN_FILE))),
        "</main>",
    ]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>libleak report: %s</title>" % escape(name),
        "<script>%s</script>" % _htmlpage.ERROR_WATCH,
        "<style>%s</style>" % _htmlpage.STYLE,
        "</head><body>",
    ] + [part for part in body if part] + [
        "<script>%s</script>" % _htmlpage.BEHAVIOUR,
        "</body></html>",
        "",
    ])


def write_report(rundir, out_path=None):
    """Writes the HTML report of run directory `rundir` to `out_path` (default:
    ``rundir/report.html``) and returns the path written.  The page is written to a temporary file
    beside `out_path` and renamed, so a reader never sees half a page.

    Raises TypeError for arguments that are not paths, FormatError (naming the file) when
    run.json is missing or malformed, and OSError when the page cannot be written (nothing is left
    behind then).  Files that run.json names but that are missing or unreadable leave their part
    of the page out."""
    if not isinstance(rundir, (str, bytes, os.PathLike)):
        raise TypeError("rundir must be a path (str or os.PathLike), not %s" % type(rundir).__name__)
    if out_path is not None and not isinstance(out_path, (str, bytes, os.PathLike)):
        raise TypeError("out_path must be a path or None, not %s" % type(out_path).__name__)
    rundir = os.fsdecode(os.fspath(rundir))
    out_path = os.path.join(rundir, "report.html") if out_path is None else os.fsdecode(os.fspath(out_path))
    run = load_run(rundir)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    page = render_report(rundir, run, out_dir).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(page)
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return out_path


def _umask():
    """The process' umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
