/* The SVG flame graph writer: a self-contained, interactive flame graph of a profile's first value
 * (samples, or live bytes for heap profiles).  Stacks of every thread are merged into one tree,
 * root at the bottom, siblings in alphabetical order, widths proportional to the value.  The
 * embedded script zooms on click, searches by regular expression (highlighting matches and summing
 * their share), and shows each frame's details on hover; every frame also has a <title> tooltip. */
#include "core/internal.h"
#include "profile/profile.h"
#include "profile/textbuf.h"

#include <stdlib.h>
#include <string.h>

#define SVG_WIDTH 1200
#define SVG_FRAME_HEIGHT 17
#define SVG_PAD 10
#define SVG_TOP 52
#define SVG_BOTTOM 34
/* Frames narrower than this fraction of the whole are left out (they would be invisible). */
#define SVG_MIN_FRACTION 0.0004

/* A node of the merged call tree; node 0 is the root ("all"). */
typedef struct tree_node {
  int64_t value;          /* this frame and everything it called */
  int64_t self;           /* samples whose innermost frame is this one */
  uint32_t frame;         /* profile frame index (unused for the root) */
  uint32_t first_child;   /* 0: none (node 0 is never a child) */
  uint32_t next_sibling;  /* 0: none */
} tree_node;

typedef struct tree {
  tree_node *nodes;
  size_t count, cap;
  int max_depth;
} tree;

/* The child of `parent` for `frame`, added when missing; 0 when memory ran out. */
static uint32_t tree_child(tree *t, uint32_t parent, uint32_t frame) {
  for (uint32_t c = t->nodes[parent].first_child; c; c = t->nodes[c].next_sibling)
    if (t->nodes[c].frame == frame) return c;
  if (t->count == t->cap) {
    size_t cap = t->cap * 2;
    tree_node *nodes = leak__realloc(t->nodes, cap * sizeof *nodes);
    if (nodes == NULL) return 0;
    t->nodes = nodes;
    t->cap = cap;
  }
  uint32_t c = (uint32_t)t->count++;
  t->nodes[c] = (tree_node){0, 0, frame, 0, t->nodes[parent].first_child};
  t->nodes[parent].first_child = c;
  return c;
}

static int tree_build(tree *t, const leak_profile *p) {
  t->cap = 256;
  t->count = 1;
  t->max_depth = 0;
  t->nodes = leak__calloc(t->cap, sizeof *t->nodes);
  if (t->nodes == NULL) return LEAK_ENOMEM;
  for (size_t i = 0; i < p->nsamples; i++) {
    const leak__profile_sample *s = &p->samples[i];
    int64_t v = s->values[0];
    if (v <= 0) continue;
    t->nodes[0].value += v;
    uint32_t node = 0;
    for (uint32_t k = s->nframe; k-- > 0;) {
      node = tree_child(t, node, p->stack_frames[s->first + k]);
      if (node == 0) return LEAK_ENOMEM;
      t->nodes[node].value += v;
    }
    t->nodes[node].self += v;
    if ((int)s->nframe > t->max_depth) t->max_depth = (int)s->nframe;
  }
  return 0;
}

/* For sorting siblings by function name, then file, then line. */
static const leak_profile *sort_profile;
static const tree *sort_tree;
static int compare_nodes(const void *a, const void *b) {
  const leak__profile_frame *fa = &sort_profile->frames[sort_tree->nodes[*(const uint32_t *)a].frame];
  const leak__profile_frame *fb = &sort_profile->frames[sort_tree->nodes[*(const uint32_t *)b].frame];
  int c = strcmp(fa->function, fb->function);
  if (c == 0) c = strcmp(fa->filename, fb->filename);
  if (c == 0) c = (fa->lineno > fb->lineno) - (fa->lineno < fb->lineno);
  return c;
}

/* A warm color from the function name, so a function keeps its color wherever it appears. */
static void frame_color(const char *name, char *out, size_t size) {
  uint32_t h = 2166136261u;
  for (const char *s = name; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  unsigned hue = h % 50, sat = 70 + (h >> 8) % 25, light = 52 + (h >> 16) % 14;
  snprintf(out, size, "hsl(%u,%u%%,%u%%)", hue, sat, light);
}

typedef struct svg_writer {
  leak__textbuf *out;
  const leak_profile *p;
  tree *t;
  int64_t total;
  int height;
  const char *unit;
  uint32_t *scratch; /* child lists, one slice per depth */
} svg_writer;

static void write_value(leak__textbuf *out, int64_t value, const char *unit) {
  if (strcmp(unit, "bytes") == 0) {
    if (value >= 10 * 1024 * 1024)
      leak__textbuf_printf(out, "%.1f MiB", value / 1048576.0);
    else if (value >= 10 * 1024)
      leak__textbuf_printf(out, "%.1f KiB", value / 1024.0);
    else
      leak__textbuf_printf(out, "%lld bytes", (long long)value);
  } else {
    leak__textbuf_printf(out, "%lld %s", (long long)value, value == 1 ? "sample" : "samples");
  }
}

/* Writes `node` at `depth` starting at fraction `x`, then its children (depth first). */
static void write_node(svg_writer *w, uint32_t node, int depth, double x, uint32_t *scratch) {
  const tree_node *n = &w->t->nodes[node];
  double fraction = (double)n->value / (double)w->total;
  if (fraction < SVG_MIN_FRACTION) return;
  const char *label = "all";
  const leak__profile_frame *f = NULL;
  char color[40] = "hsl(30,8%,72%)";
  if (node != 0) {
    f = &w->p->frames[n->frame];
    label = f->function;
    frame_color(f->function, color, sizeof color);
  }
  double px = SVG_PAD + x * (SVG_WIDTH - 2 * SVG_PAD), pw = fraction * (SVG_WIDTH - 2 * SVG_PAD);
  int y = w->height - SVG_BOTTOM - (depth + 1) * SVG_FRAME_HEIGHT;
  leak__textbuf *out = w->out;
  leak__textbuf_printf(out, "<g class=\"f\" data-x=\"%.7f\" data-w=\"%.7f\" data-d=\"%d\" data-v=\"%lld\"><title>", x,
                       fraction, depth, (long long)n->value);
  leak__textbuf_xml(out, label);
  if (f) {
    leak__textbuf_puts(out, " (");
    leak__textbuf_xml(out, f->filename);
    leak__textbuf_printf(out, ":%d)", f->lineno);
  }
  leak__textbuf_puts(out, "\n");
  write_value(out, n->value, w->unit);
  leak__textbuf_printf(out, ", %.2f%%", 100.0 * fraction);
  if (f && n->self > 0) {
    leak__textbuf_puts(out, "; self ");
    write_value(out, n->self, w->unit);
  }
  leak__textbuf_printf(out, "</title><rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" rx=\"2\" fill=\"%s\"/>",
                       px, y, pw, SVG_FRAME_HEIGHT - 1, color);
  leak__textbuf_printf(out, "<text x=\"%.1f\" y=\"%d\">", px + 3, y + SVG_FRAME_HEIGHT - 5);
  if (pw > 30) leak__textbuf_xml(out, label); /* the script trims it to the width */
  leak__textbuf_puts(out, "</text></g>\n");

  size_t nchildren = 0;
  for (uint32_t c = n->first_child; c; c = w->t->nodes[c].next_sibling) scratch[nchildren++] = c;
  sort_profile = w->p;
  sort_tree = w->t;
  qsort(scratch, nchildren, sizeof *scratch, compare_nodes);
  double cx = x;
  for (size_t i = 0; i < nchildren; i++) {
    write_node(w, scratch[i], depth + 1, cx, scratch + nchildren);
    cx += (double)w->t->nodes[scratch[i]].value / (double)w->total;
  }
}

/* The page's style and script; the script reads the data-* attributes the frames carry. */
static const char svg_script[] =
    "<style>\n"
    "text{font-family:Verdana,Helvetica,sans-serif;font-size:12px;fill:#222}\n"
    "g.f{cursor:pointer} g.f text{pointer-events:none} g.f:hover rect{stroke:#333;stroke-width:0.6}\n"
    "g.f.anc rect{opacity:0.5} g.f.hide{display:none} g.f.match rect{fill:#d236c8}\n"
    ".ui{cursor:pointer;fill:#1a5fb4} .ui:hover{text-decoration:underline} #title{font-size:17px;fill:#000}\n"
    "</style>\n"
    "<script><![CDATA[\n"
    "'use strict';\n"
    "var W, PAD, frames, zoomed = null, details, reset, matchLabel, current = '';\n"
    "function num(g, k) { return parseFloat(g.getAttribute('data-' + k)); }\n"
    "function init() {\n"
    "  var root = document.documentElement;\n"
    "  W = parseFloat(root.getAttribute('width')); PAD = parseFloat(root.getAttribute('data-pad'));\n"
    "  frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));\n"
    "  details = document.getElementById('details'); reset = document.getElementById('reset');\n"
    "  matchLabel = document.getElementById('matched');\n"
    "  frames.forEach(function (g) {\n"
    "    g.fx = num(g, 'x'); g.fw = num(g, 'w'); g.fd = num(g, 'd');\n"
    "    g.label = g.querySelector('title').textContent;\n"
    "    g.name = g.querySelector('text').textContent || g.label.split(' (')[0];\n"
    "    g.addEventListener('click', function () { zoom(g.fd === 0 ? null : g); });\n"
    "    g.addEventListener('mouseover', function () { details.textContent = g.label.replace('\\n', ': '); });\n"
    "    g.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
    "  });\n"
    "  reset.addEventListener('click', function () { zoom(null); });\n"
    "  document.getElementById('search').addEventListener('click', askSearch);\n"
    "  document.addEventListener('keydown', function (e) {\n"
    "    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); askSearch(); }\n"
    "    if (e.key === 'Escape') { zoom(null); search(''); }\n"
    "  });\n"
    "  draw();\n"
    "}\n"
    "function draw() {\n"
    "  var x0 = 0, w0 = 1, d0 = 0, eps = 1e-9;\n"
    "  if (zoomed) { x0 = zoomed.fx; w0 = zoomed.fw; d0 = zoomed.fd; }\n"
    "  frames.forEach(function (g) {\n"
    "    var x, w, anc = false;\n"
    "    if (g.fd >= d0 && g.fx >= x0 - eps && g.fx + g.fw <= x0 + w0 + eps) { x = (g.fx - x0) / w0; w = g.fw / w0; }\n"
    "    else if (g.fd < d0 && g.fx <= x0 + eps && g.fx + g.fw >= x0 + w0 - eps) { x = 0; w = 1; anc = true; }\n"
    "    else { g.classList.add('hide'); return; }\n"
    "    g.classList.remove('hide'); g.classList.toggle('anc', anc);\n"
    "    var px = PAD + x * (W - 2 * PAD), pw = w * (W - 2 * PAD);\n"
    "    var r = g.querySelector('rect'), t = g.querySelector('text');\n"
    "    r.setAttribute('x', px.toFixed(1)); r.setAttribute('width', pw.toFixed(1));\n"
    "    t.setAttribute('x', (px + 3).toFixed(1));\n"
    "    var fit = Math.floor((pw - 6) / 7);\n"
    "    t.textContent = fit < 3 ? '' : (g.name.length <= fit ? g.name : g.name.slice(0, fit - 2) + '..');\n"
    "  });\n"
    "  reset.style.display = zoomed ? '' : 'none';\n"
    "}\n"
    "function zoom(g) { zoomed = g; draw(); }\n"
    "function askSearch() {\n"
    "  var term = prompt('Search frames (regular expression):', current);\n"
    "  if (term !== null) search(term);\n"
    "}\n"
    "function search(term) {\n"
    "  current = term; var re = null;\n"
    "  try { re = term ? new RegExp(term) : null; } catch (e) { matchLabel.textContent = 'bad expression'; return; }\n"
    "  var hits = [];\n"
    "  frames.forEach(function (g) {\n"
    "    var hit = re !== null && g.fd > 0 && re.test(g.label);\n"
    "    g.classList.toggle('match', hit); if (hit) hits.push(g);\n"
    "  });\n"
    "  hits.sort(function (a, b) { return a.fx - b.fx || a.fd - b.fd; });\n"
    "  var share = 0, end = -1;\n"
    "  hits.forEach(function (g) { if (g.fx >= end - 1e-9) { share += g.fw; end = g.fx + g.fw; } });\n"
    "  matchLabel.textContent = re ? 'Matched: ' + (100 * share).toFixed(1) + '%' : ' ';\n"
    "}\n"
    "window.addEventListener('load', init);\n"
    "]]></script>\n";

int leak__profile_write_svg(const leak_profile *p, int fd) {
  tree t = {0};
  int rc = tree_build(&t, p);
  uint32_t *scratch = NULL;
  if (rc == 0) {
    scratch = leak__malloc((t.count + 1) * sizeof *scratch);
    if (scratch == NULL) rc = LEAK_ENOMEM;
  }
  if (rc < 0) {
    leak__free(t.nodes);
    return rc;
  }
  leak__textbuf out;
  leak__textbuf_init(&out, fd);
  svg_writer w = {&out, p, &t, t.nodes[0].value, 0, p->type_units[0], scratch};
  w.height = SVG_TOP + (t.max_depth + 1) * SVG_FRAME_HEIGHT + SVG_BOTTOM;
  leak__textbuf_printf(&out,
                       "<?xml version=\"1.0\" standalone=\"no\"?>\n"
                       "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                       "viewBox=\"0 0 %d %d\" data-pad=\"%d\">\n",
                       SVG_WIDTH, w.height, SVG_WIDTH, w.height, SVG_PAD);
  leak__textbuf_puts(&out, svg_script);
  leak__textbuf_printf(&out,
                       "<defs><linearGradient id=\"bg\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
                       "<stop offset=\"5%%\" stop-color=\"#f8f8f8\"/><stop offset=\"95%%\" stop-color=\"#eeeeb0\"/>"
                       "</linearGradient></defs>\n"
                       "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"url(#bg)\"/>\n",
                       SVG_WIDTH, w.height);
  leak__textbuf_printf(&out, "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">", SVG_WIDTH / 2);
  int is_cpu = strcmp(p->type_names[0], "samples") == 0;
  leak__textbuf_puts(&out, is_cpu ? "CPU flame graph: " : "Memory flame graph: ");
  write_value(&out, w.total, w.unit);
  if (!is_cpu) {
    leak__textbuf_puts(&out, " (");
    leak__textbuf_xml(&out, p->type_names[0]);
    leak__textbuf_puts(&out, ")");
  }
  leak__textbuf_puts(&out, "</text>\n");
  leak__textbuf_printf(&out,
                       "<text id=\"reset\" class=\"ui\" x=\"%d\" y=\"24\" style=\"display:none\">Reset zoom</text>\n"
                       "<text id=\"search\" class=\"ui\" x=\"%d\" y=\"24\" text-anchor=\"end\">Search</text>\n"
                       "<text id=\"matched\" x=\"%d\" y=\"%d\" text-anchor=\"end\"> </text>\n"
                       "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n",
                       SVG_PAD, SVG_WIDTH - SVG_PAD, SVG_WIDTH - SVG_PAD, w.height - 12, SVG_PAD, w.height - 12);
  if (w.total > 0) write_node(&w, 0, 0, 0.0, scratch);
  leak__textbuf_puts(&out, "</svg>\n");
  leak__free(scratch);
  leak__free(t.nodes);
  return leak__textbuf_flush(&out);
}
