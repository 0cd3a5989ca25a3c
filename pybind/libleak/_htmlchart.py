"""Line charts as inline SVG for libleak's HTML report: numbers over time, one line per series.

The report must open without network access, so the chart is drawn here, in plain Python, as SVG
text: axes with round tick values (bytes in 1024-based units, counts, seconds or minutes), one
polyline per series with a hover title, point markers that name the value under the pointer, and
an HTML legend beside it.  Nothing here runs in the browser; the report's small script only
highlights a series when its legend entry is hovered.

    >>> from libleak._htmlchart import line_chart
    >>> svg = line_chart([0, 1, 2], [Series("dict", [0, 2048, 4096])], unit="bytes",
    ...                  title="dict over time")
"""

import math
from html import escape

from libleak.heap import _format_size

__all__ = ["Series", "line_chart", "legend", "format_bytes", "format_count", "format_seconds",
           "nice_ticks", "PALETTE"]

#: Ten colours that stay apart on light and dark backgrounds; series past ten reuse them dashed.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1",
           "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#8a8f98")

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")

# Markers on every point while a line has at most this many; past it, on an even subsample, so a
# long run does not put tens of thousands of circles in the page.
_MAX_MARKERS = 120


class Series:
    """One line of a chart: a name (user data: escaped when drawn) and one value per x, None where
    the value is unknown (the line breaks there)."""

    __slots__ = ("name", "values")

    def __init__(self, name, values):
        self.name = name
        self.values = list(values)


def _unit_of(magnitude):
    """The 1024-based unit to show byte values up to `magnitude` in: (name, bytes per unit)."""
    power = 0
    while power < len(_UNITS) - 1 and magnitude >= 1024 ** (power + 1):
        power += 1
    return _UNITS[power], 1024 ** power


def format_bytes(nbytes, sign=False):
    """A byte count for people, 1024-based as everywhere in libleak: '512 B', '1.5 KiB',
    '+20.0 MiB' (with `sign`, a plus on growth); '-' for None."""
    if nbytes is None:
        return "\u2013"
    return _format_size(nbytes, sign=sign and nbytes > 0)


def format_count(n, sign=False):
    """A count with thousands separators: '12,345', '+7' (with `sign`); '-' for None."""
    if n is None:
        return "\u2013"
    prefix = "-" if n < 0 else ("+" if sign and n > 0 else "")
    if isinstance(n, float) and not n.is_integer():
        return "%s%s" % (prefix, "{:,.1f}".format(abs(n)))
    return "%s%s" % (prefix, "{:,}".format(int(abs(n))))


def format_seconds(seconds):
    """A duration: '0.25 s', '12.5 s', '3 min 20 s', '2 h 05 min'."""
    if seconds is None:
        return "\u2013"
    if seconds < 10:
        return "%.2f s" % seconds
    if seconds < 120:
        return "%.1f s" % seconds
    if seconds < 7200:
        return "%d min %02d s" % (seconds // 60, seconds % 60)
    return "%d h %02d min" % (seconds // 3600, (seconds % 3600) // 60)


def nice_ticks(low, high, count=5):
    """Round tick values covering [low, high]: about `count` steps of 1, 2 or 5 times a power of
    ten.  Returns the ticks, first <= low and last >= high."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("nice_ticks needs finite bounds, not %r and %r" % (low, high))
    if high < low:
        low, high = high, low
    if high == low:
        high = low + (abs(low) or 1)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= raw:
            break
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value < high - 1e-9 * step:
        ticks.append(value)
        value = first + len(ticks) * step
    ticks.append(value)
    return [round(t, 10) for t in ticks]


def _decimals(ticks):
    """How many decimals tick values need so that neighbours differ: 0 for 0, 5, 10; 3 for 0.025."""
    if len(ticks) < 2:
        return 0
    step = abs(ticks[1] - ticks[0])
    digits = 0
    while digits < 6 and abs(step * 10 ** digits - round(step * 10 ** digits)) > 1e-6 * max(1, step * 10 ** digits):
        digits += 1
    return digits


def _tick_label(value, unit, digits):
    """A tick's text, `value` already in the axis' unit: '1.5 MiB', '0.025 s', '1,000'; zero as '0'."""
    if abs(value) < 1e-12:
        return "0"
    text = "{:,.{}f}".format(value, digits)
    return "%s %s" % (text, unit) if unit else text


def _value_text(value, unit):
    """A point's value for its hover title, in the chart's unit."""
    if unit == "bytes":
        return format_bytes(value)
    if unit == "objects":
        return format_count(value) + " objects"
    return format_count(value)


def _y_range(values, unit):
    """The y range to draw: from 0 when the lowest value is near 0 (growth from nothing reads
    honestly), else from just below the lowest value (a 2 MiB rise on 30 MiB stays visible)."""
    low, high = min(values), max(values)
    if low >= 0 and low <= 0.5 * high:
        low = 0
    unit_name, scale = _unit_of(max(abs(low), abs(high))) if unit == "bytes" else (None, 1)
    ticks = [t * scale for t in nice_ticks(low / scale, high / scale)]
    return ticks, unit_name, scale


def line_chart(x, series, unit="bytes", title="", x_label="time since start", css_id="chart",
               width=960, height=320):
    """An SVG line chart of `series` (a list of Series, each with one value per element of `x`,
    seconds since the start) as a str ready to go inline in HTML.  `unit` names the y values:
    'bytes' (1024-based ticks), 'objects' or 'count'.  Line i gets class 'series s<i>', which the
    legend of the same `css_id` highlights.  With no finite value at all it returns ''.

    Raises ValueError when a series' length differs from x's."""
    x = [float(v) for v in x]
    for s in series:
        if len(s.values) != len(x):
            raise ValueError("series %r has %d values for %d times" % (s.name, len(s.values), len(x)))
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if not x or not values:
        return ""
    left, right, top, bottom = 84, 40, 34 if title else 14, 46
    plot_w, plot_h = width - left - right, height - top - bottom

    y_ticks, y_unit, y_scale = _y_range(values, unit)
    y_low, y_high = y_ticks[0], y_ticks[-1]
    y_digits = _decimals([t / y_scale for t in y_ticks])
    x_unit = "min" if x[-1] - x[0] > 600 else "s"
    x_step = 60 if x_unit == "min" else 1
    x_scaled = nice_ticks(min(x) / x_step, max(x) / x_step, 8)
    x_digits = _decimals(x_scaled)
    x_ticks = [t * x_step for t in x_scaled]
    x_low, x_high = x_ticks[0], x_ticks[-1]

    def px(value):
        return left + (value - x_low) / ((x_high - x_low) or 1) * plot_w

    def py(value):
        return top + plot_h - (value - y_low) / ((y_high - y_low) or 1) * plot_h

    out = ['<svg class="chart" id="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" '
           'xmlns="http://www.w3.org/2000/svg" aria-label="%s">' % (
               escape(css_id), width, height, width, height, escape(title or "chart"))]
    if title:
        out.append('<text class="chart-title" x="%d" y="20">%s</text>' % (left, escape(title)))
    for tick in y_ticks:
        y = py(tick)
        out.append('<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>' % (left, left + plot_w, y, y))
        out.append('<text class="tick" x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>'
                   % (left - 8, y, escape(_tick_label(tick / y_scale, y_unit, y_digits))))
    for tick in x_ticks:
        x_px = px(tick)
        out.append('<line class="grid x" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/>' % (x_px, x_px, top, top + plot_h))
        out.append('<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                   % (x_px, top + plot_h + 18, escape(_tick_label(tick / x_step, x_unit, x_digits))))
    out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (left, left + plot_w, top + plot_h, top + plot_h))
    out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (left, left, top, top + plot_h))
    out.append('<text class="axis-label" x="%d" y="%d" text-anchor="middle">%s</text>'
               % (left + plot_w // 2, height - 8, escape(x_label)))

    for i, s in enumerate(series):
        out.append(_series_svg(i, s, x, px, py, unit))
    out.append("</svg>")
    return "\n".join(out)


def _series_svg(i, s, x, px, py, unit):
    """One series: its polyline(s) (broken where a value is missing), with a title, and markers."""
    colour = PALETTE[i % len(PALETTE)]
    dash = ' stroke-dasharray="7 4"' if i >= len(PALETTE) else ""
    name = escape(str(s.name))
    known = [(t, v) for t, v in zip(x, s.values) if v is not None and math.isfinite(v)]
    summary = name
    if known:
        summary = "%s: %s at start, %s at end" % (name, escape(_value_text(known[0][1], unit)),
                                                  escape(_value_text(known[-1][1], unit)))
    parts = ['<g class="series s%d" data-series="%d">' % (i, i)]
    runs, current = [], []
    for t, v in zip(x, s.values):
        if v is None or not math.isfinite(v):
            if current:
                runs.append(current)
            current = []
        else:
            current.append((px(t), py(v)))
    if current:
        runs.append(current)
    for points in runs:
        parts.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"><title>%s</title></polyline>'
                     % (colour, dash, " ".join("%.1f,%.1f" % p for p in _thin(points)), summary))
    stride = max(1, -(-len(known) // _MAX_MARKERS))
    for k, (t, v) in enumerate(known):
        if k % stride and k != len(known) - 1:
            continue
        parts.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s at %s: %s</title></circle>'
                     % (px(t), py(v), colour, name, escape(format_seconds(t)), escape(_value_text(v, unit))))
    parts.append("</g>")
    return "".join(parts)


def _thin(points):
    """The points of a polyline that can show on screen: of the points that fall in one pixel
    column, the first, the lowest, the highest and the last (so spikes survive).  A run of hours
    sampled every second draws the same picture from a few thousand points instead of millions."""
    if len(points) <= 2000:
        return points
    kept, column = [], []

    def flush():
        if column:
            keep = {0, len(column) - 1, min(range(len(column)), key=lambda k: column[k][1]),
                    max(range(len(column)), key=lambda k: column[k][1])}
            kept.extend(column[k] for k in sorted(keep))

    for point in points:
        if column and int(point[0]) != int(column[0][0]):
            flush()
            column = []
        column.append(point)
    flush()
    return kept


def legend(series, css_id="chart", notes=None):
    """The HTML legend of a chart made by line_chart with the same `series` and `css_id`: a swatch
    and the (escaped) name of each line, plus `notes[i]` (already HTML) beside it when given."""
    items = []
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        style = "dashed" if i >= len(PALETTE) else "solid"
        note = ' <span class="note">%s</span>' % notes[i] if notes and notes[i] else ""
        items.append('<li data-series="%d"><span class="swatch %s" style="border-color:%s"></span>'
                     '<span class="name">%s</span>%s</li>' % (i, style, colour, escape(str(s.name)), note))
    return '<ul class="legend" data-chart="%s">%s</ul>' % (escape(css_id), "".join(items))
