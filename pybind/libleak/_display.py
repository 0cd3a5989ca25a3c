"""How libleak's results look in Jupyter: HTML tables for leak reports and census differences, the
SVG flame graph of a profile.

The result classes (``LeakReport``, ``CensusDiff``, ``Profile``) keep one short ``_repr_html_`` or
``_repr_svg_`` that calls in here, so the markup lives in one place and the classes stay about
their data.  The tables are well-formed fragments with every value escaped, no script and no
network access; the flame graph is the profile writer's SVG without its script (static: the
interactive one is what ``Profile.write("x.svg")`` writes).
"""

import html
import os
import re
import tempfile

from libleak.heap import _format_size as format_size

__all__ = ["leak_report_html", "census_diff_html", "profile_svg", "format_size"]

# Shared by every table: right-aligned numbers, a caption, compact rows.
_TABLE_STYLE = "border-collapse:collapse;font-size:90%"
_CELL_STYLE = "padding:2px 8px;border-bottom:1px solid #ddd"


def _cell(text, number=False, tag="td"):
    align = "right" if number else "left"
    return '<%s style="%s;text-align:%s">%s</%s>' % (tag, _CELL_STYLE, align, html.escape(str(text)), tag)


def _table(caption, header, numeric, rows):
    """A table: ``header`` names, ``numeric`` flags (right-aligned columns), ``rows`` of cell texts."""
    out = ['<table style="%s">' % _TABLE_STYLE]
    if caption:
        out.append('<caption style="text-align:left;font-weight:bold">%s</caption>' % html.escape(caption))
    out.append("<tr>%s</tr>" % "".join(_cell(name, flag, "th") for name, flag in zip(header, numeric)))
    for row in rows:
        out.append("<tr>%s</tr>" % "".join(_cell(value, flag) for value, flag in zip(row, numeric)))
    out.append("</table>")
    return "".join(out)


def leak_report_html(report):
    """A ``LeakReport`` as HTML: its head line, the growing types and the growing allocation sites."""
    head = "leak_check(%s): %d runs after %d warm-up runs" % (report.func_name, report.runs, report.warmup)
    if not report:
        return "<div><p>%s: <b>no leak</b>, nothing grows.</p></div>" % html.escape(head)
    parts = ["<div><p>%s: <b>%d types and %d allocation sites grow on every run.</b></p>"
             % (html.escape(head), len(report.types), len(report.sites))]
    rows = [(t.type_name, "%+.1f" % t.count_per_run, format_size(int(round(t.size_per_run)), sign=True), t.count,
             format_size(t.size)) for t in report.types]
    parts.append(_table("growing types", ("type", "objects/run", "bytes/run", "count", "size"),
                        (False, True, True, True, True), rows))
    if report.sites:
        rows = [(str(s.traceback), format_size(int(round(s.size_per_run)), sign=True), "%+.1f" % s.count_per_run,
                 format_size(s.size)) for s in report.sites]
        parts.append(_table("allocation sites", ("traceback", "bytes/run", "blocks/run", "live"),
                            (False, True, True, True), rows))
    parts.append("</div>")
    return "".join(parts)


def census_diff_html(rows, caption=None):
    """Rows of ``Census.compare_to`` (``CensusDiff``) as one HTML table."""
    cells = [(r.type_name, r.count, "%+d" % r.count_diff, format_size(r.size), format_size(r.size_diff, sign=True))
             for r in rows]
    return _table(caption, ("type", "count", "count diff", "size", "size diff"), (False, True, True, True, True),
                  cells)


# The flame graph file's script (zoom, search) and the "Search" button it drives.  Its script
# reads the SVG as the whole document: put inline into a page (the classic Notebook inserts SVG
# output into its own HTML and runs scripts in it) it would measure the page and squash every
# frame.  Without it the frames stay where the writer drew them, and tooltips still work.
_SCRIPT = re.compile(r"<script\b.*?</script>\s*", re.S)
_SEARCH = re.compile(r'<text id="search"[^>]*>[^<]*</text>\s*')


def profile_svg(profile):
    """A ``Profile`` drawn as libleak's SVG flame graph (CPU samples, or live bytes for a heap
    profile), as text, static (no script: see _SCRIPT).  The writer takes a file descriptor, so it
    writes into an anonymous temporary file that is read back and closed."""
    from libleak import _libleak
    from libleak.sampler import _format_of

    with tempfile.TemporaryFile() as f:
        _libleak.profile_write(f.fileno(), _format_of("profile.svg"), *profile._raw())
        f.seek(0, os.SEEK_SET)
        text = f.read().decode("utf-8")
    return _SEARCH.sub("", _SCRIPT.sub("", text, count=1), count=1)
