/* The public C API of the refs area (include/libleak/refs.h): an index with its retained sizes made
 * on demand, why-alive reports as text or pictures, retained sizes and top retainers. */
#include "core/internal.h"
#include "core/sigsafe.h"
#include "refs/index.h"
#include "refs/labels.h"
#include "refs/render.h"
#include "refs/retained.h"
#include "refs/retention.h"

#include <errno.h>
#include <stdarg.h>
#include <frameobject.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct leak_refs_index {
  leak__ref_index *index;
  leak__retained *retained; /* computed when first asked */
};

int leak_refs_index_build(leak_refs_index **out) {
  *out = NULL;
  leak_refs_index *refs = leak__calloc(1, sizeof(*refs));
  if (refs == NULL) return LEAK_ENOMEM;
  int rc = leak__ref_index_build(&refs->index);
  if (rc < 0) {
    leak__free(refs);
    return rc;
  }
  *out = refs;
  return 0;
}

void leak_refs_index_free(leak_refs_index *refs) {
  if (refs == NULL) return;
  leak__retained_free(refs->retained);
  leak__ref_index_free(refs->index);
  leak__free(refs);
}

int leak_refs_index_is_current(const leak_refs_index *refs) { return leak__ref_index_is_current(refs->index); }

void leak_refs_index_stats(const leak_refs_index *refs, size_t *objects, size_t *references, size_t *bytes) {
  if (objects) *objects = refs->index->nodes;
  if (references) *references = refs->index->edges;
  if (bytes) *bytes = leak__ref_index_memory(refs->index);
}

/* The index to use: the caller's when current, or a fresh one (*made, freed by the caller). */
static int usable(leak_refs_index *given, leak_refs_index **made, leak_refs_index **use) {
  *made = NULL;
  if (given != NULL) {
    if (!leak__ref_index_is_current(given->index)) return LEAK_EAGAIN;
    *use = given;
    return 0;
  }
  int rc = leak_refs_index_build(made);
  *use = *made;
  return rc;
}

/* A type's short name: the qualified name of a class, the last part of a C type's tp_name. */
static const char *short_type_name(PyTypeObject *type, char *out, size_t capacity) {
  if (type->tp_flags & Py_TPFLAGS_HEAPTYPE) {
    PyObject *qualname = ((PyHeapTypeObject *)type)->ht_qualname;
    const char *utf8 = qualname && PyUnicode_Check(qualname) ? PyUnicode_AsUTF8(qualname) : NULL;
    if (utf8 != NULL) {
      snprintf(out, capacity, "%s", utf8);
      return out;
    }
    PyErr_Clear();
  }
  const char *dot = strrchr(type->tp_name, '.');
  snprintf(out, capacity, "%s", dot ? dot + 1 : type->tp_name);
  return out;
}

/* Appends formatted text to a growing line. */
typedef struct line {
  char text[4096];
  size_t length;
} line;

static void add(line *l, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void add(line *l, const char *format, ...) {
  if (l->length >= sizeof(l->text) - 1) return;
  va_list args;
  va_start(args, format);
  int n = vsnprintf(l->text + l->length, sizeof(l->text) - l->length, format, args);
  va_end(args);
  if (n > 0) l->length += (size_t)n < sizeof(l->text) - l->length ? (size_t)n : sizeof(l->text) - l->length - 1;
}

/* A dict label "['name']" as the attribute name it stands for in a module's or class's namespace. */
static void add_key(line *l, const char *label) {
  size_t n = strlen(label);
  if (n >= 4 && strncmp(label, "['", 2) == 0 && strcmp(label + n - 2, "']") == 0)
    add(l, "%.*s", (int)(n - 4), label + 2);
  else
    add(l, "%s", label);
}

/* One path as libleak.refs prints it (without its naming of closure variables). */
static void format_path(const leak__ref_index *index, const leak__retention_path *path, leak__path_label *labels,
                        line *l) {
  char name[128];
  size_t start = 0;
  switch (path->kind) {
    case LEAK__ROOT_MODULE: {
      const char *module = PyModule_GetName(path->holder);
      if (module == NULL) PyErr_Clear();
      add(l, "module %s: ", module ? module : "?");
      add_key(l, labels[0]);
      start = 1;
      break;
    }
    case LEAK__ROOT_CLASS:
      add(l, "class %s: ", short_type_name((PyTypeObject *)path->holder, name, sizeof(name)));
      add_key(l, labels[0]);
      start = 1;
      break;
    case LEAK__ROOT_SYS:
    case LEAK__ROOT_BUILTINS:
      add(l, "%s: ", leak__root_kind_name(path->kind));
      add_key(l, labels[0]);
      start = 1;
      break;
    case LEAK__ROOT_FRAME: {
      const leak__frame_root *root = path->frame;
      PyCodeObject *code = (PyCodeObject *)root->code;
      const char *function = code && PyCode_Check(code) ? PyUnicode_AsUTF8(code->co_name) : NULL;
      const char *file = code && PyCode_Check(code) ? PyUnicode_AsUTF8(code->co_filename) : NULL;
      if (function == NULL || file == NULL) PyErr_Clear();
      int lineno = code && PyCode_Check(code) ? leak__frame_lineno(code, root->lasti) : 0;
      add(l, "frame %s (%s:%d) in thread %lu", function ? function : "?", file ? file : "?", lineno, root->thread_id);
      PyObject *local = leak__frames_local_name(root->code, root->slot);
      const char *local_name = local ? PyUnicode_AsUTF8(local) : NULL;
      if (local_name) add(l, ": %s", local_name);
      break;
    }
    case LEAK__ROOT_THREAD:
      add(l, "thread %lu (%s):", path->thread_id, path->owned_as ? path->owned_as : "?");
      break;
    case LEAK__ROOT_EXTERNAL:
      add(l, "external %zd reference%s not held by Python objects:", path->unaccounted,
          path->unaccounted == 1 ? "" : "s");
      break;
    default:
      add(l, "garbage (an unreachable cycle: the collector will free it):");
      break;
  }
  for (size_t i = start; i < path->length; i++) {
    PyObject *obj = leak__ref_index_object(index, path->nodes[i]);
    int after_colon = i == start && (path->kind == LEAK__ROOT_EXTERNAL || path->kind == LEAK__ROOT_GARBAGE ||
                                     path->kind == LEAK__ROOT_THREAD);
    add(l, "%s%s", after_colon ? " " : " -> ",
        short_type_name(Py_TYPE(obj), name, sizeof(name)));
    if (i + 2 < path->length && strcmp(labels[i], ".__dict__") == 0 && strncmp(labels[i + 1], "['", 2) == 0) {
      /* instance.__dict__ -> dict['name'] reads instance.name, as 3.11+ instances without a dict */
      size_t n = strlen(labels[i + 1]);
      add(l, ".%.*s", (int)(n > 4 ? n - 4 : 0), labels[i + 1] + 2);
      i++;
    } else if (i + 1 < path->length) {
      add(l, "%s", labels[i]);
    } else {
      char size[32];
      add(l, " (%s)", leak__format_size(leak__ref_index_size(index, path->nodes[i]), size, sizeof(size)));
    }
  }
  add(l, "\n");
}

/* Finds the paths to obj and their labels: *paths, *count and *labels (one per node, flattened)
 * are the caller's to free. */
static int find_paths(leak_refs_index *refs, PyObject *obj, size_t max_paths, leak__retention_path **paths,
                      size_t *count, leak__path_label **labels) {
  int64_t target = leak__ref_index_find(refs->index, obj);
  if (target < 0) return LEAK_ENOENT;
  /* An embedding host's caller has no Python frame of its own; a C extension's does: its innermost. */
  const void *caller = NULL;
  PyFrameObject *frame = PyEval_GetFrame();
  if (frame != NULL) caller = leak__frames_frame_id((PyObject *)frame);
  leak__retention_options options = {max_paths, caller, NULL, 0};
  int rc = leak__retention_find(refs->index, (uint32_t)target, &options, paths, count);
  if (rc < 0) return rc;
  size_t total = leak__retention_nodes(*paths, *count);
  *labels = leak__malloc((total ? total : 1) * sizeof(leak__path_label));
  if (*labels == NULL) {
    leak__retention_free(*paths, *count);
    return LEAK_ENOMEM;
  }
  leak__retention_label(refs->index, *paths, *count, *labels);
  return 0;
}


int leak_refs_write_why_alive(leak_refs_index *given, struct _object *obj, size_t max_paths, int fd) {
  if (max_paths == 0) return LEAK_EINVAL;
  leak_refs_index *made, *refs;
  int rc = usable(given, &made, &refs);
  if (rc < 0) return rc;
  leak__retention_path *paths;
  size_t count;
  leak__path_label *labels;
  rc = find_paths(refs, (PyObject *)obj, max_paths, &paths, &count, &labels);
  if (rc == 0) {
    size_t at = 0;
    for (size_t p = 0; p < count && rc == 0; p++) {
      line l = {{0}, 0};
      format_path(refs->index, &paths[p], labels + at, &l);
      at += paths[p].length;
      rc = leak__sigsafe_write(fd, l.text, l.length);
    }
    if (rc == 0 && count == 0) rc = leak__sigsafe_write(fd, "nothing but the caller's own references holds it\n", 49);
    leak__free(labels);
    leak__retention_free(paths, count);
  }
  leak_refs_index_free(made);
  return rc;
}

static leak__picture_style style_of(leak__root_kind kind) {
  static const leak__picture_style styles[] = {LEAK_PICTURE_ROOT_MODULE,   LEAK_PICTURE_ROOT_CLASS,
                                               LEAK_PICTURE_ROOT_SYS,      LEAK_PICTURE_ROOT_BUILTINS,
                                               LEAK_PICTURE_ROOT_FRAME,    LEAK_PICTURE_ROOT_THREAD,
                                               LEAK_PICTURE_ROOT_EXTERNAL, LEAK_PICTURE_ROOT_GARBAGE};
  return styles[kind];
}

int leak_refs_render_why_alive(leak_refs_index *given, struct _object *obj, size_t max_paths, const char *file) {
  leak__picture_format format;
  if (max_paths == 0 || file == NULL || leak__picture_format_from_path(file, &format) < 0) return LEAK_EINVAL;
  leak_refs_index *made, *refs;
  int rc = usable(given, &made, &refs);
  if (rc < 0) return rc;
  leak__retention_path *paths = NULL;
  size_t count = 0;
  leak__path_label *labels = NULL;
  rc = find_paths(refs, (PyObject *)obj, max_paths, &paths, &count, &labels);
  int found = rc == 0;
  leak__picture *picture = rc == 0 ? leak__picture_new() : NULL;
  if (rc == 0 && picture == NULL) rc = LEAK_ENOMEM;
  if (rc == 0) {
    /* one node per object (paths share them), one root node per path */
    uint32_t *node_of = leak__calloc(refs->index->nodes, sizeof(uint32_t)); /* node + 1; 0: none */
    if (node_of == NULL) rc = LEAK_ENOMEM;
    size_t at = 0;
    for (size_t p = 0; rc == 0 && p < count; p++) {
      line head = {{0}, 0};
      format_path(refs->index, &paths[p], labels + at, &head);
      char *colon = strchr(head.text, ':');
      if (colon) *colon = '\0';
      uint32_t previous;
      rc = leak__picture_add_node(picture, head.text, NULL, LEAK_PICTURE_SIZE_UNKNOWN, LEAK_PICTURE_SIZE_UNKNOWN,
                                  style_of(paths[p].kind), &previous);
      for (size_t i = 0; rc == 0 && i < paths[p].length; i++) {
        uint32_t v = paths[p].nodes[i];
        if (node_of[v] == 0) {
          char name[128];
          int last = i + 1 == paths[p].length;
          uint32_t added;
          rc = leak__picture_add_node(picture, short_type_name(Py_TYPE(leak__ref_index_object(refs->index, v)), name, sizeof(name)),
                                      NULL, leak__ref_index_size(refs->index, v), LEAK_PICTURE_SIZE_UNKNOWN,
                                      last ? LEAK_PICTURE_TARGET : LEAK_PICTURE_PLAIN, &added);
          node_of[v] = added + 1;
        }
        if (rc == 0) rc = leak__picture_add_edge(picture, previous, node_of[v] - 1, i == 0 ? NULL : labels[at + i - 1]);
        previous = node_of[v] - 1;
      }
      at += paths[p].length;
    }
    leak__free(node_of);
    if (rc == 0) rc = leak__picture_write(picture, file, format);
  }
  leak__picture_free(picture);
  if (found) {
    leak__free(labels);
    leak__retention_free(paths, count);
  }
  leak_refs_index_free(made);
  return rc;
}

/* Retained sizes of the index, computed once. */
static int ensure_retained(leak_refs_index *refs) {
  if (refs->retained != NULL) return 0;
  return leak__retained_compute(refs->index, NULL, &refs->retained);
}

int leak_refs_retained_size(leak_refs_index *given, struct _object *obj, uint64_t *size, uint64_t *retained) {
  leak_refs_index *made, *refs;
  int rc = usable(given, &made, &refs);
  if (rc == 0) rc = ensure_retained(refs);
  if (rc == 0) {
    int64_t node = leak__ref_index_find(refs->index, obj);
    if (node < 0) {
      rc = LEAK_ENOENT;
    } else {
      if (size) *size = leak__ref_index_size(refs->index, (uint32_t)node);
      if (retained) *retained = refs->retained->retained[node];
    }
  }
  leak_refs_index_free(made);
  return rc;
}

int leak_refs_top_retainers(leak_refs_index *given, leak_refs_retainer *rows, size_t limit, size_t *count) {
  *count = 0;
  if (given == NULL) return LEAK_EINVAL; /* the rows borrow objects: the index must outlive them */
  if (!leak__ref_index_is_current(given->index)) return LEAK_EAGAIN;
  int rc = ensure_retained(given);
  if (rc < 0) return rc;
  size_t wanted = limit * 8 + 64;
  uint32_t *top = leak__malloc(wanted * sizeof(uint32_t));
  if (top == NULL) return LEAK_ENOMEM;
  leak__retained *r = given->retained;
  size_t found = leak__dominators_top(r->nodes + 1, r->nodes, r->idom, r->retained, top, wanted);
  for (size_t i = 0; i < found && *count < limit; i++) {
    PyObject *obj = leak__ref_index_object(given->index, top[i]);
    if (leak__refs_structural(given->index, top[i])) continue;
    leak_refs_retainer *row = &rows[(*count)++];
    row->object = obj;
    snprintf(row->type_name, sizeof(row->type_name), "%s", Py_TYPE(obj)->tp_name);
    row->size = leak__ref_index_size(given->index, top[i]);
    row->retained = r->retained[top[i]];
  }
  leak__free(top);
  return 0;
}
