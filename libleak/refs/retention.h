/* Why an object is alive: the shortest paths of references from classified roots down to it,
 * found by a breadth-first search backwards over the reverse reference index (refs/index.h).
 *
 * A root is where a path starts, of one of these kinds: a module's __dict__ (module), a class's
 * __dict__ (class), sys.__dict__ (sys), the builtins' __dict__ (builtins), a running frame's local
 * (frame), an object a thread state holds (thread: its exception, its dict), or an object some of
 * whose references nothing in the index accounts for (external: C code holds it).  Module, class, sys and builtins roots end a path; frame and external roots are
 * noted and the search goes on, since a path from a module is the one a user can act on.  When no
 * root reaches the object at all, it is garbage: only unreachable cycles hold it. */
#ifndef LIBLEAK_REFS_RETENTION_H
#define LIBLEAK_REFS_RETENTION_H
#include "refs/index.h"

typedef enum leak__root_kind {
  LEAK__ROOT_MODULE,
  LEAK__ROOT_CLASS,
  LEAK__ROOT_SYS,
  LEAK__ROOT_BUILTINS,
  LEAK__ROOT_FRAME,
  LEAK__ROOT_THREAD,
  LEAK__ROOT_EXTERNAL,
  LEAK__ROOT_GARBAGE,
} leak__root_kind;

/* One path: nodes[0] is the root's object (a module's dict, a local's value, ...), nodes[length-1]
 * the target. */
typedef struct leak__retention_path {
  leak__root_kind kind;
  PyObject *holder;              /* module: the module; class: the class; else NULL (borrowed) */
  const leak__frame_root *frame; /* frame: the frame's reference (in the index) */
  Py_ssize_t unaccounted;        /* external: the references nothing in the index accounts for */
  unsigned long thread_id;       /* thread: the thread whose state holds the root... */
  const char *owned_as;          /* ...and how ("the exception being handled"; static text) */
  uint32_t *nodes;
  size_t length;
} leak__retention_path;

typedef struct leak__retention_options {
  size_t max_paths;
  const void *skip_frame; /* a frame (leak__frames_frame_id) whose references are not roots: the caller's */
  const char *skip_prefix; /* frames of code whose file name starts with this are not roots (libleak's); NULL: none */
  Py_ssize_t target_held; /* references to the target that the query's own call holds, unseen by the walk */
} leak__retention_options;

/* Finds at most options->max_paths paths to `target` (a node of `index`, which must be current),
 * preferring module, class, sys and builtins roots, then frames, then external ones, each group
 * shortest first.  *paths (free with leak__retention_free) receives *count paths; a garbage object
 * held by unreachable objects only gets one path of kind garbage; one held by nothing but the
 * skipped frames, no path.  Reads objects' fields (the GIL held, no code runs).  Returns 0 or
 * LEAK_ENOMEM. */
int leak__retention_find(const leak__ref_index *index, uint32_t target, const leak__retention_options *options,
                         leak__retention_path **paths, size_t *count);

void leak__retention_free(leak__retention_path *paths, size_t count);

/* One edge label (refs/labels.h), NUL-terminated. */
#define LEAK__LABEL_CAPACITY 120
typedef char leak__path_label[LEAK__LABEL_CAPACITY];

/* The number of nodes on all `paths`: the labels leak__retention_label writes. */
size_t leak__retention_nodes(const leak__retention_path *paths, size_t count);

/* Writes the label of each path's edges into labels[], one per node, the paths one after another
 * (the label after a path's last node is ""), while the index is current.  Runs no Python code. */
void leak__retention_label(const leak__ref_index *index, const leak__retention_path *paths, size_t count,
                           leak__path_label *labels);

/* The kind's name: "module", "class", "sys", "builtins", "frame", "thread", "external", "garbage". */
const char *leak__root_kind_name(leak__root_kind kind);

#endif
