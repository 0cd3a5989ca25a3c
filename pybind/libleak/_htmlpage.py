"""The style sheet and the two small scripts of libleak's HTML report, kept as text so the report
is one file that opens without network access.

The page reads without scripts; ``ERROR_WATCH`` (first in <head>) counts script errors on the
<html> element (``data-js-errors``, and ``data-ready`` once loaded) so a headless browser can tell
a page that broke, and ``BEHAVIOUR`` highlights a chart's line while its legend entry is hovered.
Colours follow the reader's light or dark preference.
"""

STYLE = r"""
:root {
  --bg: #fbfbfa; --fg: #1f2328; --muted: #5f6670; --card: #ffffff; --line: #d9dce1; --soft: #f2f3f5;
  --accent: #1a5fb4; --code: #f4f5f7; --graph-bg: #ffffff;
  --python: #c0392b; --native: #b85c00; --fragmentation: #7d3c98; --none: #2e7d32; --other: #5f6670;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #16181c; --fg: #e6e8eb; --muted: #9aa1ab; --card: #1e2126; --line: #343841; --soft: #262a30;
    --accent: #78aeff; --code: #272b31; --graph-bg: #f4f4f2;
    --python: #ff7b6e; --native: #ffae57; --fragmentation: #d49cf0; --none: #6fcf75; --other: #9aa1ab;
  }
}
* { box-sizing: border-box; }
html { background: var(--bg); color: var(--fg); }
body {
  margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  -webkit-font-smoothing: antialiased;
}
main { max-width: 1240px; margin: 0 auto; padding: 0 28px 48px; }
header.top { border-bottom: 1px solid var(--line); background: var(--card); }
header.top .inner { max-width: 1240px; margin: 0 auto; padding: 22px 28px 16px; }
header.top .brand { color: var(--muted); font-size: 13px; letter-spacing: .06em; text-transform: uppercase; }
h1 { font-size: 26px; line-height: 1.25; margin: 4px 0 10px; font-weight: 650; word-break: break-word; }
h1 code { font-size: 24px; background: none; padding: 0; }
h2 { font-size: 19px; margin: 38px 0 12px; font-weight: 650; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 8px; font-weight: 600; }
p { margin: 0 0 10px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
code { background: var(--code); padding: 1px 5px; border-radius: 4px; }
.meta { display: flex; flex-wrap: wrap; gap: 6px 8px; margin: 0; padding: 0; list-style: none; }
.meta li { background: var(--soft); border: 1px solid var(--line); border-radius: 999px; padding: 2px 11px; font-size: 13px; }
.meta li b { font-weight: 600; }
.meta li.bad { border-color: var(--python); color: var(--python); }
nav.toc { display: flex; flex-wrap: wrap; gap: 4px 18px; margin-top: 14px; font-size: 14px; }
.verdict {
  margin: 26px 0 8px; padding: 18px 22px; border-radius: 10px; background: var(--card);
  border: 1px solid var(--line); border-left: 6px solid var(--kind);
}
.verdict .kind {
  display: inline-block; font-size: 12px; font-weight: 700; letter-spacing: .07em; text-transform: uppercase;
  color: var(--kind); margin-bottom: 4px;
}
.verdict h2 { border: 0; margin: 0 0 8px; padding: 0; font-size: 22px; }
.verdict p { max-width: 92ch; }
.kind-python { --kind: var(--python); } .kind-native { --kind: var(--native); }
.kind-fragmentation { --kind: var(--fragmentation); } .kind-none { --kind: var(--none); }
.kind-other { --kind: var(--other); }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { padding: 7px 12px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); font-weight: 600; background: var(--soft); }
tr:last-child td { border-bottom: 0; }
table.growth td:first-child { width: 46%; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.grow { font-weight: 600; }
td.grow.up { color: var(--python); }
td.grow.down { color: var(--none); }
td .sub { color: var(--muted); font-size: 13px; }
.muted { color: var(--muted); }
.note { color: var(--muted); font-size: 13px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; margin: 0 0 16px; }
.chart-box { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 10px 14px 12px; margin-bottom: 16px; }
svg.chart { width: 100%; height: auto; display: block; font-family: inherit; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .axis { stroke: var(--muted); stroke-width: 1; }
svg.chart .tick { fill: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
svg.chart .axis-label { fill: var(--muted); font-size: 12px; }
svg.chart .chart-title { fill: var(--fg); font-size: 14px; font-weight: 600; }
svg.chart .series polyline { transition: stroke-width .1s; }
svg.chart .series:hover polyline { stroke-width: 3.5; }
svg.chart .series circle { opacity: .0; }
svg.chart .series:hover circle, svg.chart .series circle:hover { opacity: 1; }
svg.chart.dim .series { opacity: .15; }
svg.chart.dim .series.hot { opacity: 1; }
svg.chart.dim .series.hot polyline { stroke-width: 3.5; }
svg.chart.dim .series.hot circle { opacity: 1; }
.legend { list-style: none; margin: 8px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; }
.legend li { display: flex; align-items: center; gap: 7px; cursor: default; }
.legend li:hover .name { text-decoration: underline; }
.legend .swatch { width: 22px; height: 0; border-top: 3px solid; display: inline-block; }
.legend .swatch.dashed { border-top-style: dashed; }
.legend .name { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
.toggle { display: flex; gap: 0; margin: 0 0 8px; font-size: 13px; }
.toggle input { position: absolute; opacity: 0; }
.toggle label { border: 1px solid var(--line); padding: 3px 12px; cursor: pointer; background: var(--soft); color: var(--muted); }
.toggle label:first-of-type { border-radius: 6px 0 0 6px; } .toggle label:last-of-type { border-radius: 0 6px 6px 0; border-left: 0; }
#by-size:checked ~ .toggle label[for=by-size], #by-count:checked ~ .toggle label[for=by-count] { background: var(--accent); color: var(--card); border-color: var(--accent); }
#by-size:checked ~ .view-count, #by-count:checked ~ .view-size { display: none; }
.radio-hidden { position: absolute; opacity: 0; pointer-events: none; }
.leak { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px; margin-bottom: 14px; }
.leak .head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; margin-bottom: 8px; }
.leak .head h3 { margin: 0; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 15.5px; word-break: break-all; }
.leak .head .grow { color: var(--python); font-weight: 600; font-variant-numeric: tabular-nums; }
.paths { margin: 4px 0 6px; padding-left: 22px; }
.paths li { margin: 3px 0; }
.paths code { white-space: pre-wrap; word-break: break-word; background: none; padding: 0; }
details > summary { cursor: pointer; color: var(--accent); font-size: 14px; user-select: none; }
details[open] > summary { margin-bottom: 8px; }
.graph { background: var(--graph-bg); border-radius: 8px; padding: 10px; overflow: auto; max-height: 720px; text-align: center; }
.graph svg { max-width: 100%; height: auto; }
.site-where { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; word-break: break-all; }
.site-where .src { display: block; color: var(--muted); white-space: pre-wrap; word-break: break-word; margin-top: 2px; }
ol.traceback { margin: 6px 0 2px; padding-left: 26px; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
ol.traceback li { margin: 2px 0; word-break: break-all; }
ol.traceback li.last { font-weight: 650; }
ol.traceback .src { display: block; color: var(--muted); white-space: pre-wrap; word-break: break-word; font-weight: 400; }
.flame { background: #f8f8f8; border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
.flame object { display: block; width: 100%; height: auto; border: 0; }
footer { margin-top: 44px; padding-top: 12px; border-top: 1px solid var(--line); color: var(--muted); font-size: 13px; }
ul.files { columns: 2; padding-left: 20px; margin: 0; }
ul.files li { margin: 2px 0; }
@media (max-width: 760px) { main { padding: 0 12px 32px; } ul.files { columns: 1; } }
@media print { nav.toc, .toggle { display: none; } .graph { max-height: none; } }
"""

# First in <head>: any uncaught script error in the page is counted on <html data-js-errors="N">
# (its message in data-js-error-last), and data-ready="1" is set once everything has loaded.
ERROR_WATCH = r"""
(function () {
  var root = document.documentElement, count = 0;
  function note(message) {
    count += 1;
    root.setAttribute('data-js-errors', String(count));
    root.setAttribute('data-js-error-last', String(message).slice(0, 300));
  }
  window.addEventListener('error', function (e) { note(e.message || 'error'); });
  window.addEventListener('unhandledrejection', function (e) { note('unhandled rejection: ' + e.reason); });
  window.addEventListener('load', function () { root.setAttribute('data-ready', '1'); });
})();
"""

# Last in <body>: hovering a legend entry brings its line forward and dims the others.
BEHAVIOUR = r"""
(function () {
  Array.prototype.forEach.call(document.querySelectorAll('ul.legend'), function (legend) {
    var chart = document.getElementById(legend.getAttribute('data-chart'));
    if (!chart) { return; }
    Array.prototype.forEach.call(legend.querySelectorAll('li'), function (item) {
      var line = chart.querySelector('g.series[data-series="' + item.getAttribute('data-series') + '"]');
      if (!line) { return; }
      item.addEventListener('mouseenter', function () { chart.classList.add('dim'); line.classList.add('hot'); });
      item.addEventListener('mouseleave', function () { chart.classList.remove('dim'); line.classList.remove('hot'); });
    });
  });
})();
"""
