/* Pictures of reference graphs: a small builder, then cgraph and gvc from Graphviz, in process.
 *
 * Readability rules the drawing follows, so a newcomer sees the story at a glance: edges go from
 * referrer to referent and ranks go top to bottom, so a root sits at the top and the path runs down to
 * the object asked about; each root kind has its own colour and says what it is in a small line above
 * its title; the object asked about has a red border; sizes are written for people ("5.0 MiB"), and the
 * retained size, the number that explains a leak, is in bold; edge labels (attribute names, dict keys,
 * indexes) sit on the edges.  Labels are Graphviz HTML-like labels, so every text is escaped here and
 * backslashes in keys are never read as Graphviz escapes. */
#include "core/internal.h"
#include "refs/render.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <strings.h>
#include <unistd.h>

#include <gvc.h>

/* Longest texts shown, in characters; longer ones end with an ellipsis. */
#define TITLE_MAX_CHARS 60
#define REPR_MAX_CHARS 56
#define LABEL_MAX_CHARS 40
#define CAPTION_MAX_CHARS 160

#define FONT "Helvetica,Arial,sans-serif"

typedef struct picture_node {
  char *title, *repr;
  uint64_t shallow, retained;
  leak__picture_style style;
} picture_node;

typedef struct picture_edge {
  uint32_t from, to;
  char *label;
} picture_edge;

struct leak__picture {
  picture_node *nodes;
  size_t node_count, node_capacity;
  picture_edge *edges;
  size_t edge_count, edge_capacity;
  char *caption;
};

/* How each style looks: fill, border, border width, dashed or not, and the small line above the
 * title (NULL: none). */
typedef struct style_look {
  const char *name;
  const char *fill, *border;
  const char *penwidth;
  int dashed;
  const char *caption;
} style_look;

static const style_look looks[LEAK_PICTURE_STYLE_COUNT] = {
    [LEAK_PICTURE_PLAIN] = {"plain", "#ffffff", "#8c8c8c", "1", 0, NULL},
    [LEAK_PICTURE_TARGET] = {"target", "#ffe3e3", "#d62728", "3", 0, "the object asked about"},
    [LEAK_PICTURE_HIGHLIGHTED] = {"highlighted", "#fff4c2", "#c49a00", "2", 0, NULL},
    [LEAK_PICTURE_ROOT_MODULE] = {"module", "#dcebff", "#2f6fd0", "2", 0, "root: module"},
    [LEAK_PICTURE_ROOT_CLASS] = {"class", "#ebe0ff", "#6a3fc4", "2", 0, "root: class attribute"},
    [LEAK_PICTURE_ROOT_FRAME] = {"frame", "#ffe9cf", "#d9822b", "2", 0, "root: running frame"},
    [LEAK_PICTURE_ROOT_THREAD] = {"thread", "#ffdcbc", "#b35900", "2", 0, "root: thread state"},
    [LEAK_PICTURE_ROOT_SYS] = {"sys", "#d6f2ef", "#1f8a80", "2", 0, "root: sys"},
    [LEAK_PICTURE_ROOT_BUILTINS] = {"builtins", "#e8e8e8", "#5f5f5f", "2", 0, "root: builtins"},
    [LEAK_PICTURE_ROOT_EXTERNAL] = {"external", "#ffd9ea", "#b0306a", "2", 0, "root: held by C code"},
    [LEAK_PICTURE_ROOT_GARBAGE] = {"garbage", "#f0f0f0", "#9a9a9a", "2", 1, "garbage: unreachable cycle"},
    [LEAK_PICTURE_COLLAPSED] = {"collapsed", "#f6f6f6", "#a8a8a8", "1", 1, NULL},
};

/* ---- A growable string (leak__malloc'd), for labels and DOT text ----------------------------- */

typedef struct text {
  char *data;
  size_t length, capacity;
  int failed; /* memory ran out once: every later append is ignored */
} text;

static void text_append_bytes(text *t, const char *bytes, size_t count) {
  if (t->failed) return;
  if (t->length + count + 1 > t->capacity) {
    size_t capacity = t->capacity ? t->capacity : 256;
    while (capacity < t->length + count + 1) capacity *= 2;
    char *grown = leak__realloc(t->data, capacity);
    if (grown == NULL) {
      t->failed = 1;
      return;
    }
    t->data = grown;
    t->capacity = capacity;
  }
  memcpy(t->data + t->length, bytes, count);
  t->length += count;
  t->data[t->length] = '\0';
}

static void text_append(text *t, const char *s) { text_append_bytes(t, s, strlen(s)); }

static void text_printf(text *t, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(text *t, const char *format, ...) {
  char buffer[256];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(buffer, sizeof(buffer), format, args);
  va_end(args);
  if (n > 0) text_append_bytes(t, buffer, (size_t)n < sizeof(buffer) ? (size_t)n : sizeof(buffer) - 1);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there are not one. */
static size_t utf8_sequence_length(const unsigned char *s) {
  if (s[0] < 0x80) return 1;
  size_t length;
  uint32_t code;
  if ((s[0] & 0xE0) == 0xC0) length = 2, code = s[0] & 0x1F;
  else if ((s[0] & 0xF0) == 0xE0) length = 3, code = s[0] & 0x0F;
  else if ((s[0] & 0xF8) == 0xF0) length = 4, code = s[0] & 0x07;
  else return 0;
  for (size_t i = 1; i < length; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    code = (code << 6) | (s[i] & 0x3F);
  }
  static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < least[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

/* Appends s escaped for a Graphviz HTML-like label, at most max_chars characters (then an ellipsis):
 * markup characters become entities, control characters a space, invalid UTF-8 a '?'. */
static void text_append_html(text *t, const char *s, size_t max_chars) {
  const unsigned char *p = (const unsigned char *)s;
  size_t chars = 0;
  while (*p) {
    if (chars == max_chars) {
      text_append(t, "\xe2\x80\xa6"); /* U+2026 ... */
      return;
    }
    size_t length = utf8_sequence_length(p);
    if (length == 0) {
      text_append(t, "?");
      p++;
    } else if (length > 1) {
      text_append_bytes(t, (const char *)p, length);
      p += length;
    } else {
      switch (*p) {
        case '&': text_append(t, "&amp;"); break;
        case '<': text_append(t, "&lt;"); break;
        case '>': text_append(t, "&gt;"); break;
        case '"': text_append(t, "&quot;"); break;
        default: text_append_bytes(t, *p < 0x20 || *p == 0x7F ? " " : (const char *)p, 1); break;
      }
      p++;
    }
    chars++;
  }
}

/* ---- Sizes for people ------------------------------------------------------------------------- */

/* Units of 1024 with one decimal, moving up a unit when rounding would print 1024.0. */
char *leak__format_size(uint64_t bytes, char *out, size_t out_size) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) {
    snprintf(out, out_size, "%u B", (unsigned)bytes);
    return out;
  }
  double value = (double)bytes;
  size_t unit = 0;
  while (unit + 1 < LEAK_ARRAY_SIZE(units) && value >= 1023.95) {
    value /= 1024.0;
    unit++;
  }
  snprintf(out, out_size, "%.1f %s", value, units[unit]);
  return out;
}

/* ---- Building ----------------------------------------------------------------------------------- */

/* A leak__malloc'd copy of s; NULL for NULL or "" (meaning "none"), *failed set when memory ran out. */
static char *copy_optional(const char *s, int *failed) {
  if (s == NULL || s[0] == '\0') return NULL;
  size_t length = strlen(s);
  char *copy = leak__malloc(length + 1);
  if (copy == NULL) {
    *failed = 1;
    return NULL;
  }
  memcpy(copy, s, length + 1);
  return copy;
}

/* Grows an array of `item` bytes per entry so one more fits; 0 or LEAK_ENOMEM. */
static int reserve_one(void **array, size_t *capacity, size_t count, size_t item) {
  if (count < *capacity) return 0;
  size_t grown_capacity = *capacity ? *capacity * 2 : 16;
  void *grown = leak__realloc(*array, grown_capacity * item);
  if (grown == NULL) return LEAK_ENOMEM;
  *array = grown;
  *capacity = grown_capacity;
  return 0;
}

leak__picture *leak__picture_new(void) { return leak__calloc(1, sizeof(leak__picture)); }

void leak__picture_free(leak__picture *picture) {
  if (picture == NULL) return;
  for (size_t i = 0; i < picture->node_count; i++) {
    leak__free(picture->nodes[i].title);
    leak__free(picture->nodes[i].repr);
  }
  for (size_t i = 0; i < picture->edge_count; i++) leak__free(picture->edges[i].label);
  leak__free(picture->nodes);
  leak__free(picture->edges);
  leak__free(picture->caption);
  leak__free(picture);
}

int leak__picture_add_node(leak__picture *picture, const char *title, const char *repr, uint64_t shallow,
                           uint64_t retained, leak__picture_style style, uint32_t *node) {
  if (picture == NULL || title == NULL || (unsigned)style >= LEAK_PICTURE_STYLE_COUNT ||
      picture->node_count >= UINT32_MAX)
    return LEAK_EINVAL;
  if (reserve_one((void **)&picture->nodes, &picture->node_capacity, picture->node_count, sizeof(picture_node)) < 0)
    return LEAK_ENOMEM;
  int failed = 0;
  char *title_copy = copy_optional(title[0] ? title : "?", &failed);
  char *repr_copy = copy_optional(repr, &failed);
  if (failed) {
    leak__free(title_copy);
    leak__free(repr_copy);
    return LEAK_ENOMEM;
  }
  picture_node *added = &picture->nodes[picture->node_count];
  added->title = title_copy;
  added->repr = repr_copy;
  added->shallow = shallow;
  added->retained = retained;
  added->style = style;
  if (node) *node = (uint32_t)picture->node_count;
  picture->node_count++;
  return 0;
}

int leak__picture_add_edge(leak__picture *picture, uint32_t from, uint32_t to, const char *label) {
  if (picture == NULL || from >= picture->node_count || to >= picture->node_count) return LEAK_EINVAL;
  if (reserve_one((void **)&picture->edges, &picture->edge_capacity, picture->edge_count, sizeof(picture_edge)) < 0)
    return LEAK_ENOMEM;
  int failed = 0;
  char *label_copy = copy_optional(label, &failed);
  if (failed) return LEAK_ENOMEM;
  picture_edge *added = &picture->edges[picture->edge_count++];
  added->from = from;
  added->to = to;
  added->label = label_copy;
  return 0;
}

int leak__picture_set_caption(leak__picture *picture, const char *caption) {
  if (picture == NULL) return LEAK_EINVAL;
  int failed = 0;
  char *copy = copy_optional(caption, &failed);
  if (failed) return LEAK_ENOMEM;
  leak__free(picture->caption);
  picture->caption = copy;
  return 0;
}

/* ---- Names ---------------------------------------------------------------------------------------- */

static const char *const format_names[LEAK_PICTURE_FORMAT_COUNT] = {"dot", "svg", "png", "pdf"};

int leak__picture_format_from_name(const char *name, leak__picture_format *format) {
  if (name == NULL || format == NULL) return LEAK_EINVAL;
  for (int i = 0; i < LEAK_PICTURE_FORMAT_COUNT; i++) {
    if (strcasecmp(name, format_names[i]) == 0) {
      *format = (leak__picture_format)i;
      return 0;
    }
  }
  if (strcasecmp(name, "gv") == 0) {
    *format = LEAK_PICTURE_DOT;
    return 0;
  }
  return LEAK_EINVAL;
}

int leak__picture_format_from_path(const char *path, leak__picture_format *format) {
  if (path == NULL || format == NULL) return LEAK_EINVAL;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  if (dot == NULL || dot == base) return LEAK_EINVAL; /* no suffix, or a hidden file's name only */
  return leak__picture_format_from_name(dot + 1, format);
}

int leak__picture_style_from_name(const char *name, leak__picture_style *style) {
  if (name == NULL || style == NULL) return LEAK_EINVAL;
  for (int i = 0; i < LEAK_PICTURE_STYLE_COUNT; i++) {
    if (strcmp(name, looks[i].name) == 0) {
      *style = (leak__picture_style)i;
      return 0;
    }
  }
  return LEAK_EINVAL;
}

const char *leak__picture_style_name(leak__picture_style style) {
  return (unsigned)style < LEAK_PICTURE_STYLE_COUNT ? looks[style].name : "?";
}

/* ---- Graphviz ------------------------------------------------------------------------------------ */

/* Serialises every use of Graphviz: gvc and cgraph keep process-wide state (the error handler and
 * level, the last error message, plugin loading), and none of it is thread-safe.  Also protects
 * graphviz_context. */
static pthread_mutex_t graphviz_lock = PTHREAD_MUTEX_INITIALIZER;

/* The one gvc context of the process, made at the first render and never freed (graphviz_lock).
 * Graphviz 2.42's pango plugin caches a pointer to a font name owned by the context that was current
 * when it last measured text; freeing that context and making another leaves the cache pointing into
 * freed memory (memcheck sees the read on the next render).  One lasting context avoids that, and
 * saves loading the plugin configuration on every render. */
static GVC_t *graphviz_context;

/* Takes Graphviz's messages instead of letting them reach the host's stderr (called with
 * graphviz_lock held).  The render's return code says what went wrong. */
static int swallow_graphviz_message(char *message) {
  (void)message;
  return 0;
}

/* agwrite's output goes to a `text` through this I/O discipline, so DOT never touches a file. */
static int put_text(void *channel, const char *s) {
  text_append((text *)channel, s);
  return ((text *)channel)->failed ? EOF : 0;
}
static int flush_nothing(void *channel) {
  (void)channel;
  return 0;
}

/* Sets an HTML-like label: agstrdup_html marks the string as HTML in the graph's string pool, and
 * agsafeset then finds that same pooled string. */
static void set_html(void *object, Agraph_t *graph, const char *name, const char *html) {
  char *pooled = agstrdup_html(graph, (char *)html);
  agsafeset(object, (char *)name, pooled, "");
  agstrfree(graph, pooled);
}

/* The HTML label of a node: the style's small line, the title in bold, the repr, the sizes. */
static void node_label(text *t, const picture_node *node) {
  const style_look *look = &looks[node->style];
  text_append(t, "<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"1\">");
  if (look->caption)
    text_printf(t, "<TR><TD><FONT POINT-SIZE=\"8\" COLOR=\"%s\">%s</FONT></TD></TR>", look->border, look->caption);
  if (node->style == LEAK_PICTURE_COLLAPSED) {
    text_append(t, "<TR><TD><FONT COLOR=\"#555555\"><I>");
    text_append_html(t, node->title, TITLE_MAX_CHARS);
    text_append(t, "</I></FONT></TD></TR>");
  } else {
    text_append(t, "<TR><TD><B>");
    text_append_html(t, node->title, TITLE_MAX_CHARS);
    text_append(t, "</B></TD></TR>");
  }
  if (node->repr) {
    text_append(t, "<TR><TD><FONT POINT-SIZE=\"9\" COLOR=\"#404040\">");
    text_append_html(t, node->repr, REPR_MAX_CHARS);
    text_append(t, "</FONT></TD></TR>");
  }
  int has_shallow = node->shallow != LEAK_PICTURE_SIZE_UNKNOWN;
  int has_retained = node->retained != LEAK_PICTURE_SIZE_UNKNOWN;
  if (has_shallow || has_retained) {
    char size[32];
    text_append(t, "<TR><TD><FONT POINT-SIZE=\"9\" COLOR=\"#595959\">");
    if (has_shallow) text_printf(t, "own %s", leak__format_size(node->shallow, size, sizeof(size)));
    if (has_shallow && has_retained) text_append(t, "  \xc2\xb7  "); /* U+00B7 middle dot */
    if (has_retained) text_printf(t, "retains <B>%s</B>", leak__format_size(node->retained, size, sizeof(size)));
    text_append(t, "</FONT></TD></TR>");
  }
  text_append(t, "</TABLE>");
}

/* Builds the cgraph graph of a picture (graphviz_lock held).  Graph, node and edge defaults give the
 * overall look; each node and edge then sets what its style changes.  NULL when memory ran out. */
static Agraph_t *build_graph(const leak__picture *picture, Agdisc_t *discipline) {
  Agraph_t *graph = agopen("libleak", Agdirected, discipline);
  if (graph == NULL) return NULL;
  agattr(graph, AGRAPH, "rankdir", "TB");
  agattr(graph, AGRAPH, "nodesep", "0.35");
  agattr(graph, AGRAPH, "ranksep", "0.45");
  agattr(graph, AGRAPH, "pad", "0.2");
  agattr(graph, AGRAPH, "bgcolor", "white");
  agattr(graph, AGRAPH, "fontname", FONT);
  agattr(graph, AGRAPH, "fontsize", "10");
  agattr(graph, AGNODE, "shape", "box");
  agattr(graph, AGNODE, "style", "rounded,filled");
  agattr(graph, AGNODE, "fontname", FONT);
  agattr(graph, AGNODE, "fontsize", "11");
  agattr(graph, AGNODE, "margin", "0.12,0.05");
  agattr(graph, AGNODE, "color", (char *)looks[LEAK_PICTURE_PLAIN].border);
  agattr(graph, AGNODE, "fillcolor", (char *)looks[LEAK_PICTURE_PLAIN].fill);
  agattr(graph, AGNODE, "penwidth", "1");
  agattr(graph, AGEDGE, "fontname", FONT);
  agattr(graph, AGEDGE, "fontsize", "9");
  agattr(graph, AGEDGE, "fontcolor", "#333333");
  agattr(graph, AGEDGE, "color", "#707070");
  agattr(graph, AGEDGE, "arrowsize", "0.7");

  text label = {0};
  Agnode_t **nodes = leak__calloc(picture->node_count ? picture->node_count : 1, sizeof(Agnode_t *));
  if (nodes == NULL) goto fail;
  if (picture->caption) {
    text_append(&label, "<FONT COLOR=\"#404040\">");
    text_append_html(&label, picture->caption, CAPTION_MAX_CHARS);
    text_append(&label, "</FONT>");
    if (label.failed) goto fail;
    set_html(graph, graph, "label", label.data);
    agsafeset(graph, "labelloc", "b", "");
  }
  for (size_t i = 0; i < picture->node_count; i++) {
    const picture_node *node = &picture->nodes[i];
    const style_look *look = &looks[node->style];
    char name[24];
    snprintf(name, sizeof(name), "n%zu", i);
    nodes[i] = agnode(graph, name, 1);
    if (nodes[i] == NULL) goto fail;
    label.length = 0;
    node_label(&label, node);
    if (label.failed) goto fail;
    set_html(nodes[i], graph, "label", label.data);
    if (node->style != LEAK_PICTURE_PLAIN) {
      agsafeset(nodes[i], "fillcolor", (char *)look->fill, "");
      agsafeset(nodes[i], "color", (char *)look->border, "");
      agsafeset(nodes[i], "penwidth", (char *)look->penwidth, "");
      if (look->dashed) agsafeset(nodes[i], "style", "rounded,filled,dashed", "");
    }
  }
  for (size_t i = 0; i < picture->edge_count; i++) {
    const picture_edge *edge = &picture->edges[i];
    Agedge_t *drawn = agedge(graph, nodes[edge->from], nodes[edge->to], NULL, 1);
    if (drawn == NULL) goto fail;
    if (edge->label) {
      label.length = 0;
      text_append_html(&label, edge->label, LABEL_MAX_CHARS);
      if (label.failed) goto fail;
      set_html(drawn, graph, "label", label.data);
    }
    /* the last link into the object asked about is drawn like its border */
    if (picture->nodes[edge->to].style == LEAK_PICTURE_TARGET) {
      agsafeset(drawn, "color", (char *)looks[LEAK_PICTURE_TARGET].border, "");
      agsafeset(drawn, "penwidth", "1.6", "");
    }
  }
  leak__free(label.data);
  leak__free(nodes);
  return graph;
fail:
  leak__free(label.data);
  leak__free(nodes);
  agclose(graph);
  return NULL;
}

/* Cairo stamps the time into a PDF's /CreationDate (and /ModDate, when written); a fixed date of the
 * same length keeps the cross-reference offsets right and the same picture's bytes the same. */
static void fix_pdf_dates(char *data, size_t size) {
  static const char *const keys[] = {"/CreationDate (D:", "/ModDate (D:"};
  for (size_t k = 0; k < LEAK_ARRAY_SIZE(keys); k++) {
    size_t key_length = strlen(keys[k]);
    for (size_t i = 0; i + key_length + 14 <= size; i++) {
      if (memcmp(data + i, keys[k], key_length) != 0) continue;
      char *digits = data + i + key_length;
      size_t count = 0;
      while (count < 14 && digits[count] >= '0' && digits[count] <= '9') count++;
      if (count == 14) memcpy(digits, "20000101000000", 14);
    }
  }
}

/* Lays the graph out with dot and renders it with gvc (graphviz_lock held); the result is copied
 * into a leak__malloc'd buffer so the caller frees it like everything else of libleak's. */
static int layout_and_render(Agraph_t *graph, leak__picture_format format, char **data, size_t *size) {
  if (graphviz_context == NULL) graphviz_context = gvContext();
  GVC_t *context = graphviz_context;
  if (context == NULL) return LEAK_ENOMEM;
  int rc = 0;
  /* gvLayout fails on a graph cgraph accepted when the dot layout plugin is missing */
  if (gvLayout(context, graph, "dot") != 0) return LEAK_ENOSYS;
  char *rendered = NULL;
  unsigned int length = 0;
  if (gvRenderData(context, graph, format_names[format], &rendered, &length) != 0 || rendered == NULL) {
    /* a laid-out graph fails to render when no plugin renders this format here */
    rc = LEAK_ENOSYS;
  } else {
    *data = leak__malloc((size_t)length + 1);
    if (*data == NULL) {
      rc = LEAK_ENOMEM;
    } else {
      memcpy(*data, rendered, length);
      (*data)[length] = '\0';
      *size = length;
      if (format == LEAK_PICTURE_PDF) fix_pdf_dates(*data, *size);
    }
  }
  if (rendered) gvFreeRenderData(rendered);
  gvFreeLayout(context, graph);
  return rc;
}

int leak__picture_render(const leak__picture *picture, leak__picture_format format, char **data, size_t *size) {
  if (data) *data = NULL;
  if (picture == NULL || data == NULL || size == NULL || (unsigned)format >= LEAK_PICTURE_FORMAT_COUNT)
    return LEAK_EINVAL;
  text dot = {0};
  Agiodisc_t io = AgIoDisc;
  io.putstr = put_text;
  io.flush = flush_nothing;
  Agdisc_t discipline = {&AgMemDisc, &AgIdDisc, &io};
  int rc = 0;

  pthread_mutex_lock(&graphviz_lock);
  agusererrf previous_handler = agseterrf(swallow_graphviz_message);
  /* every level to the handler: cgraph writes messages below the level to a temporary file */
  agerrlevel_t previous_level = agseterr(AGWARN);
  Agraph_t *graph = build_graph(picture, &discipline);
  if (graph == NULL) {
    rc = LEAK_ENOMEM;
  } else if (format == LEAK_PICTURE_DOT) {
    if (agwrite(graph, &dot) != 0 || dot.failed) rc = LEAK_ENOMEM;
  } else {
    rc = layout_and_render(graph, format, data, size);
  }
  if (graph) agclose(graph);
  agseterr(previous_level);
  agseterrf(previous_handler);
  pthread_mutex_unlock(&graphviz_lock);

  if (format == LEAK_PICTURE_DOT) {
    if (rc == 0) {
      *data = dot.data;
      *size = dot.length;
    } else {
      leak__free(dot.data);
    }
  }
  return rc;
}

/* write(2) until everything is written; 0 or a negated errno. */
static int write_all(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    data += n;
    size -= (size_t)n;
  }
  return 0;
}

int leak__picture_write(const leak__picture *picture, const char *path, leak__picture_format format) {
  if (picture == NULL || path == NULL || path[0] == '\0') return LEAK_EINVAL;
  if (format == LEAK_PICTURE_FORMAT_COUNT && leak__picture_format_from_path(path, &format) < 0) return LEAK_EINVAL;
  if ((unsigned)format >= LEAK_PICTURE_FORMAT_COUNT) return LEAK_EINVAL;
  char *data;
  size_t size;
  int rc = leak__picture_render(picture, format, &data, &size);
  if (rc < 0) return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    rc = -errno;
  } else {
    rc = write_all(fd, data, size);
    if (close(fd) != 0 && rc == 0 && errno != EINTR) rc = -errno;
    if (rc < 0) unlink(path);
  }
  leak__free(data);
  return rc;
}
