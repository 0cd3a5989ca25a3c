/* Why an object is alive.  Read refs/retention.h first. */
#include "core/internal.h"
#include "refs/retention.h"
#include "refs/labels.h"

#include <frameobject.h>
#include <string.h>

#define UNSEEN UINT32_MAX

const char *leak__root_kind_name(leak__root_kind kind) {
  static const char *const names[] = {"module", "class", "sys", "builtins", "frame", "thread", "external", "garbage"};
  return (unsigned)kind < LEAK_ARRAY_SIZE(names) ? names[kind] : "?";
}

/* A root found by the search, before its path is copied out. */
typedef struct candidate {
  leak__root_kind kind;
  uint32_t node;
  uint32_t next; /* the node after the root on the path (UNSEEN: follow `toward` from node) */
  PyObject *holder;
  const leak__frame_root *frame;
  Py_ssize_t unaccounted;
  unsigned long thread_id;
  const char *owned_as;
} candidate;

typedef struct search {
  const leak__ref_index *index;
  const leak__retention_options *options;
  PyObject *sys_dict, *builtins_dict;
  candidate *found;
  size_t nfound, capacity;
  size_t preferred; /* module, class, sys and builtins roots found */
  size_t frames, externals;
  int held_elsewhere; /* something other than a skipped frame refers to the target's component */
  uint8_t *terminal;  /* per node: 0 not looked at, 1 not a namespace root, 2 + kind: a namespace root */
  PyObject *holder_of_last; /* the module or class of the last namespace root looked at */
  struct owned {
    PyObject *obj;
    unsigned long thread_id;
    const char *what;
  } owned[64]; /* what thread states hold, every thread's (the first 64) */
  size_t nowned;
} search;

static int note_owned(void *arg, PyThreadState *tstate, PyObject *obj, const char *what) {
  search *s = arg;
  if (s->nowned < LEAK_ARRAY_SIZE(s->owned))
    s->owned[s->nowned++] = (struct owned){obj, leak__frames_thread_id(tstate), what};
  return 0;
}

static int note(search *s, candidate c) {
  if (s->nfound == s->capacity) {
    size_t capacity = s->capacity ? 2 * s->capacity : 16;
    candidate *grown = leak__realloc(s->found, capacity * sizeof(*grown));
    if (grown == NULL) return LEAK_ENOMEM;
    s->found = grown;
    s->capacity = capacity;
  }
  s->found[s->nfound++] = c;
  if (c.kind <= LEAK__ROOT_BUILTINS) s->preferred++;
  if (c.kind == LEAK__ROOT_FRAME) s->frames++;
  if (c.kind == LEAK__ROOT_EXTERNAL) s->externals++;
  return 0;
}

/* True when `code` is libleak's own (its file is under options->skip_prefix). */
static int skipped_code(const search *s, PyObject *code) {
  if (s->options->skip_prefix == NULL || code == NULL || !PyCode_Check(code)) return 0;
  PyObject *file = ((PyCodeObject *)code)->co_filename;
  const char *utf8 = PyUnicode_Check(file) ? PyUnicode_AsUTF8(file) : NULL;
  if (utf8 == NULL) PyErr_Clear();
  return utf8 != NULL && strncmp(utf8, s->options->skip_prefix, strlen(s->options->skip_prefix)) == 0;
}

/* A frame reference that counts as a root: not the caller's frame, not libleak's own code. */
static int frame_counts(const search *s, const leak__frame_root *root) {
  if (s->options->skip_frame != NULL && root->frame == s->options->skip_frame) return 0;
  return !skipped_code(s, root->code);
}

/* The kind of namespace root node v is (a module's, class's, sys's or builtins' __dict__, which
 * ends a path), or -1; cached per node, and the module or class is kept in s->holder_of_last. */
static int namespace_root(search *s, uint32_t v) {
  const leak__ref_index *index = s->index;
  if (s->terminal[v] == 1) return -1;
  PyObject *obj = leak__ref_index_object(index, v);
  int kind = -1;
  s->holder_of_last = NULL;
  if (PyDict_Check(obj)) {
    if (obj == s->sys_dict) kind = LEAK__ROOT_SYS;
    else if (obj == s->builtins_dict) kind = LEAK__ROOT_BUILTINS;
    for (uint32_t i = index->in_first[v]; kind < 0 && i < index->in_first[v + 1]; i++) {
      PyObject *holder = leak__ref_index_object(index, index->referrers[i]);
      if (PyModule_Check(holder) && PyModule_GetDict(holder) == obj) {
        kind = LEAK__ROOT_MODULE;
        s->holder_of_last = holder;
      } else if (PyType_Check(holder) && (((PyTypeObject *)holder)->tp_flags & Py_TPFLAGS_HEAPTYPE) &&
                 ((PyTypeObject *)holder)->tp_dict == obj) {
        kind = LEAK__ROOT_CLASS;
        s->holder_of_last = holder;
      }
    }
  }
  s->terminal[v] = kind < 0 ? 1 : (uint8_t)(2 + kind);
  return kind;
}

/* Notes the frame and external roots at node v, which let the search go on (0), or says that v is
 * a frame the search must not go through and that holds nothing worth telling (2: the caller's,
 * libleak's).  Negative: out of memory. */
static int classify(search *s, uint32_t v, uint32_t target) {
  const leak__ref_index *index = s->index;
  PyObject *obj = leak__ref_index_object(index, v);
  /* Before 3.11 the caller's frame and libleak's are objects on the heap: the search stops there,
   * silently. */
  if (PyFrame_Check(obj) &&
      ((const void *)obj == s->options->skip_frame || skipped_code(s, leak__frames_frame_code(obj))))
    return 2;
  size_t nroots;
  const leak__frame_root *roots = leak__ref_index_frame_roots(index, v, &nroots);
  for (size_t i = 0; i < nroots && s->frames < s->options->max_paths; i++) {
    if (!frame_counts(s, &roots[i])) continue;
    if (note(s, (candidate){LEAK__ROOT_FRAME, v, UNSEEN, NULL, &roots[i], 0, 0, NULL}) < 0) return LEAK_ENOMEM;
    /* A frame object of a thread's stack (before 3.11) is the root itself: the frames it called
     * refer to it through f_back, which is no reason to keep it alive. */
    if (PyFrame_Check(obj)) return 1;
    break;
  }
  Py_ssize_t unaccounted = leak__ref_index_unaccounted(index, v);
  if (v == target) unaccounted -= s->options->target_held;
  if (unaccounted > 0)
    for (size_t i = 0; i < s->nowned; i++)
      if (s->owned[i].obj == obj) {
        /* a thread state's reference: not C code's at large */
        if (note(s, (candidate){LEAK__ROOT_THREAD, v, UNSEEN, NULL, NULL, 0, s->owned[i].thread_id, s->owned[i].what}) < 0)
          return LEAK_ENOMEM;
        if (--unaccounted == 0) break;
      }
  if (unaccounted > 0 && s->externals < s->options->max_paths)
    if (note(s, (candidate){LEAK__ROOT_EXTERNAL, v, UNSEEN, NULL, NULL, unaccounted, 0, NULL}) < 0) return LEAK_ENOMEM;
  return 0;
}

/* The order paths are given in: preferred kinds first, then frames, then external; within a kind,
 * the order found (shortest first). */
static int group_of(leak__root_kind kind) {
  return kind <= LEAK__ROOT_BUILTINS ? 0 : (kind == LEAK__ROOT_FRAME || kind == LEAK__ROOT_THREAD) ? 1 : 2;
}

/* Copies the path from candidate c's node down to the target, following `toward`. */
static int make_path(const candidate *c, const uint32_t *toward, uint32_t target, leak__retention_path *path) {
  uint32_t from = c->next != UNSEEN ? c->next : c->node;
  size_t length = 1 + (c->next != UNSEEN);
  for (uint32_t v = from; v != target; v = toward[v]) length++;
  path->nodes = leak__malloc(length * sizeof(uint32_t));
  if (path->nodes == NULL) return LEAK_ENOMEM;
  size_t i = 0;
  if (c->next != UNSEEN) path->nodes[i++] = c->node;
  for (uint32_t v = from; v != target; v = toward[v]) path->nodes[i++] = v;
  path->nodes[i] = target;
  path->length = length;
  path->kind = c->kind;
  path->holder = c->holder;
  path->frame = c->frame;
  path->unaccounted = c->unaccounted;
  path->thread_id = c->thread_id;
  path->owned_as = c->owned_as;
  return 0;
}

int leak__retention_find(const leak__ref_index *index, uint32_t target, const leak__retention_options *options,
                         leak__retention_path **paths, size_t *count) {
  *paths = NULL;
  *count = 0;
  size_t max_paths = options->max_paths ? options->max_paths : 1;
  uint32_t *toward = leak__malloc(index->nodes * sizeof(uint32_t));
  uint32_t *queue = leak__malloc(index->nodes * sizeof(uint32_t));
  PyThreadState *tstate = leak__frames_this_thread();
  PyInterpreterState *interp = tstate ? leak__frames_interpreter(tstate) : NULL;
  search s = {index, options, interp ? leak__frames_sys_dict(interp) : NULL,
              interp ? leak__frames_builtins_dict(interp) : NULL, NULL, 0, 0, 0, 0, 0, 0,
              leak__calloc(index->nodes ? index->nodes : 1, 1), NULL, {{NULL, 0, NULL}}, 0};
  for (PyThreadState *t = interp ? PyInterpreterState_ThreadHead(interp) : NULL; t != NULL; t = PyThreadState_Next(t))
    leak__frames_thread_owned(t, note_owned, &s);
  int rc = 0;
  if (toward == NULL || queue == NULL || s.terminal == NULL) rc = LEAK_ENOMEM;
  if (rc == 0) {
    memset(toward, 0xff, index->nodes * sizeof(uint32_t));
    size_t head = 0, tail = 0;
    queue[tail++] = target;
    toward[target] = target;
    /* A namespace (a module's or class's __dict__) ends paths, and is a root once for each object
     * it holds on the way: CACHE and blob of one module are two paths. */
    int kind = namespace_root(&s, target);
    if (kind >= 0 && note(&s, (candidate){(leak__root_kind)kind, target, UNSEEN, s.holder_of_last, NULL, 0, 0, NULL}) < 0)
      rc = LEAK_ENOMEM;
    while (rc == 0 && kind < 0 && head < tail && s.preferred < max_paths) {
      uint32_t v = queue[head++];
      int ends = classify(&s, v, target);
      if (ends < 0) {
        rc = ends;
        break;
      }
      if (v != target && ends != 2) s.held_elsewhere = 1;
      if (ends) continue;
      for (uint32_t i = index->in_first[v]; rc == 0 && i < index->in_first[v + 1] && s.preferred < max_paths; i++) {
        uint32_t referrer = index->referrers[i];
        int root = namespace_root(&s, referrer);
        if (root >= 0) {
          s.held_elsewhere = 1;
          if (note(&s, (candidate){(leak__root_kind)root, referrer, v, s.holder_of_last, NULL, 0, 0, NULL}) < 0)
            rc = LEAK_ENOMEM;
          continue;
        }
        if (toward[referrer] != UNSEEN) continue;
        toward[referrer] = v;
        queue[tail++] = referrer;
      }
    }
  }
  leak__retention_path *out = NULL;
  size_t n = 0;
  if (rc == 0) {
    out = leak__calloc(max_paths, sizeof(*out));
    if (out == NULL) rc = LEAK_ENOMEM;
  }
  for (int group = 0; rc == 0 && group < 3; group++)
    for (size_t i = 0; rc == 0 && i < s.nfound && n < max_paths; i++)
      if (group_of(s.found[i].kind) == group) rc = make_path(&s.found[i], toward, target, &out[n++]);
  /* No root at all: what refers to the target is unreachable (cycles: garbage), or nothing but the
   * skipped frames does (no path to give). */
  if (rc == 0 && n == 0 && s.held_elsewhere) {
    /* the path shows one reference of the cycle: its first referrer, down to the target */
    uint32_t first = index->in_first[target] < index->in_first[target + 1] ? index->referrers[index->in_first[target]] : target;
    if (first != target) toward[first] = target;
    candidate garbage = {LEAK__ROOT_GARBAGE, first, UNSEEN, NULL, NULL, 0, 0, NULL};
    rc = make_path(&garbage, toward, target, &out[n++]);
  }
  leak__free(toward);
  leak__free(queue);
  leak__free(s.found);
  leak__free(s.terminal);
  if (rc != 0) {
    leak__retention_free(out, n);
    return rc;
  }
  *paths = out;
  *count = n;
  return 0;
}

void leak__retention_free(leak__retention_path *paths, size_t count) {
  if (paths == NULL) return;
  for (size_t i = 0; i < count; i++) leak__free(paths[i].nodes);
  leak__free(paths);
}

size_t leak__retention_nodes(const leak__retention_path *paths, size_t count) {
  size_t nodes = 0;
  for (size_t p = 0; p < count; p++) nodes += paths[p].length;
  return nodes;
}

void leak__retention_label(const leak__ref_index *index, const leak__retention_path *paths, size_t count,
                           leak__path_label *labels) {
  for (size_t p = 0; p < count; p++)
    for (size_t i = 0; i < paths[p].length; i++, labels++) {
      (*labels)[0] = '\0';
      if (i + 1 < paths[p].length)
        leak__ref_label(leak__ref_index_object(index, paths[p].nodes[i]),
                        leak__ref_index_object(index, paths[p].nodes[i + 1]), *labels, LEAK__LABEL_CAPACITY);
    }
}
