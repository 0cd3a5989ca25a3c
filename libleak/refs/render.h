/* Pictures of reference graphs, rendered by Graphviz inside the process.
 *
 * A picture is a small graph description: nodes (a type name, a short repr, a shallow and a retained
 * size, a style saying what the node is: the object asked about, a root of some kind, a collapsed
 * fan-in, ...) and labelled edges from referrer to referent.  Callers (why_alive, objgraph's
 * show_backrefs and show_refs, top_retainers) build one with the functions below, then render it:
 * Graphviz's cgraph builds the graph and gvc lays it out and renders it in this process, with no
 * subprocess and no temporary file, to DOT, SVG, PNG or PDF, into memory or into a file.
 *
 * The same picture always gives the same bytes: Graphviz names come from node positions in the
 * picture, never from pointers, and the one clock reading a renderer writes (the PDF creation date)
 * is replaced by a fixed date.  Strings are UTF-8 (invalid bytes are shown as '?') and are copied;
 * long texts are shortened with an ellipsis. */
#ifndef LIBLEAK_REFS_RENDER_H
#define LIBLEAK_REFS_RENDER_H

#include <stddef.h>
#include <stdint.h>

/* What a node is; decides its colours, border and the small caption above its title. */
typedef enum leak__picture_style {
  LEAK_PICTURE_PLAIN,          /* an object on the way */
  LEAK_PICTURE_TARGET,         /* the object asked about */
  LEAK_PICTURE_HIGHLIGHTED,    /* an object the caller wants noticed (objgraph's highlight=) */
  LEAK_PICTURE_ROOT_MODULE,    /* a module's namespace */
  LEAK_PICTURE_ROOT_CLASS,     /* a class attribute */
  LEAK_PICTURE_ROOT_FRAME,     /* a live frame's locals */
  LEAK_PICTURE_ROOT_THREAD,    /* what a thread state owns */
  LEAK_PICTURE_ROOT_SYS,       /* an attribute of sys */
  LEAK_PICTURE_ROOT_BUILTINS,  /* the builtins */
  LEAK_PICTURE_ROOT_EXTERNAL,  /* references the gc cannot see: C code */
  LEAK_PICTURE_ROOT_GARBAGE,   /* unreachable cyclic garbage */
  LEAK_PICTURE_COLLAPSED,      /* "+N more referrers": many nodes drawn as one */
  LEAK_PICTURE_STYLE_COUNT
} leak__picture_style;

/* Output formats. */
typedef enum leak__picture_format {
  LEAK_PICTURE_DOT, /* DOT text, not laid out (what objgraph's output= receives) */
  LEAK_PICTURE_SVG,
  LEAK_PICTURE_PNG,
  LEAK_PICTURE_PDF,
  LEAK_PICTURE_FORMAT_COUNT
} leak__picture_format;

/* A size the picture should show as unknown. */
#define LEAK_PICTURE_SIZE_UNKNOWN UINT64_MAX

typedef struct leak__picture leak__picture;

/* A new empty picture, or NULL when memory ran out.  Free it with leak__picture_free. */
leak__picture *leak__picture_new(void);

/* Frees the picture and every string it copied; NULL is fine. */
void leak__picture_free(leak__picture *picture);

/* Adds a node and stores its number (0, 1, 2, ... in order of addition) in *node when node is not
 * NULL.  title is required (the type name, or for a root its name such as "module app.cache");
 * repr may be NULL or empty (no repr line); shallow and retained are byte counts or
 * LEAK_PICTURE_SIZE_UNKNOWN.  The strings are copied.
 * Returns 0; LEAK_EINVAL for a NULL picture or title or a style out of range; LEAK_ENOMEM (the picture
 * is unchanged). */
int leak__picture_add_node(leak__picture *picture, const char *title, const char *repr, uint64_t shallow,
                           uint64_t retained, leak__picture_style style, uint32_t *node);

/* Adds an edge from referrer `from` to referent `to` (node numbers already added), labelled with
 * `label` (NULL or empty: no label; copied).  Parallel edges and self-loops are drawn as given.
 * Returns 0; LEAK_EINVAL for an unknown node number; LEAK_ENOMEM (the picture is unchanged). */
int leak__picture_add_edge(leak__picture *picture, uint32_t from, uint32_t to, const char *label);

/* Sets a caption drawn under the picture (NULL or empty: none; copied).  0, LEAK_EINVAL or
 * LEAK_ENOMEM (the old caption is kept). */
int leak__picture_set_caption(leak__picture *picture, const char *caption);

/* Renders the picture into a new buffer of *size bytes in *data, which the caller frees with
 * leak__free.  DOT and SVG are text (the buffer has a NUL after the last byte, not counted in *size).
 * Returns 0; LEAK_EINVAL for a NULL argument or unknown format; LEAK_ENOSYS when Graphviz has no
 * layout or renderer for the format on this machine (its plugins are missing or not registered:
 * `dot -c`); LEAK_ENOMEM.  On error *data is NULL.  Graphviz's own messages never reach stderr.
 * Thread-safe: renders are serialised, as Graphviz keeps process-wide state. */
int leak__picture_render(const leak__picture *picture, leak__picture_format format, char **data, size_t *size);

/* Renders the picture into the file at path, in `format`, or, when format is
 * LEAK_PICTURE_FORMAT_COUNT, in the format its suffix names (.dot or .gv, .svg, .png, .pdf; any
 * case).  The picture is rendered before the file is opened, so an unknown suffix or a failed render
 * leaves no file behind; a file that cannot be written is removed.
 * Returns 0; LEAK_EINVAL for an unknown suffix; the errors of leak__picture_render; a negated errno
 * when the file cannot be created or written (-EACCES, -ENOENT, -EISDIR, -ENOSPC, ...). */
int leak__picture_write(const leak__picture *picture, const char *path, leak__picture_format format);

/* The format a path's suffix names into *format: 0 or LEAK_EINVAL. */
int leak__picture_format_from_path(const char *path, leak__picture_format *format);

/* The format named "dot", "svg", "png" or "pdf" (any case) into *format: 0 or LEAK_EINVAL. */
int leak__picture_format_from_name(const char *name, leak__picture_format *format);

/* The style named "plain", "target", "highlighted", "module", "class", "frame", "thread", "sys",
 * "builtins", "external", "garbage" or "collapsed" into *style: 0 or LEAK_EINVAL. */
int leak__picture_style_from_name(const char *name, leak__picture_style *style);

/* A style's name as leak__picture_style_from_name takes it; static storage ("?" when out of range). */
const char *leak__picture_style_name(leak__picture_style style);

/* Writes a byte count for people into out (at least 16 bytes): "0 B", "999 B", "1.0 KB", "5.0 MB"
 * (units of 1024, one decimal from KB up, up to EB).  Returns out. */
char *leak__format_size(uint64_t bytes, char *out, size_t out_size);

#endif
