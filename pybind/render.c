/* The rendering area of _libleak: pictures drawn by Graphviz in process (libleak/refs/render.c does
 * the work) and the dominator computation on a plain graph (libleak/refs/dominators.c), both from
 * plain lists so that libleak/_render.py and the tests can use them.  The real callers of the
 * dominator tree are in C; the Python entry point exists to test it from Python. */
#include "glue.h"
#include "refs/dominators.h"
#include "refs/render.h"

/* A size from Python: None is unknown, otherwise a non-negative int that fits in 64 bits. */
static int size_from_object(PyObject *object, uint64_t *size, const char *what) {
  if (object == Py_None) {
    *size = LEAK_PICTURE_SIZE_UNKNOWN;
    return 0;
  }
  if (!PyLong_Check(object)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int or None, not %.80s", what, Py_TYPE(object)->tp_name);
    return -1;
  }
  unsigned long long value = PyLong_AsUnsignedLongLong(object);
  if (PyErr_Occurred() || value == LEAK_PICTURE_SIZE_UNKNOWN) {
    PyErr_Clear();
    PyErr_Format(PyExc_ValueError, "%s must be between 0 and 2**64 - 2 bytes", what);
    return -1;
  }
  *size = value;
  return 0;
}

/* A str or None from a tuple item (NULL in *utf8 for None).  The UTF-8 is owned by the str, or, for a
 * str with lone surrogates (which UTF-8 cannot hold), by a bytes object with them written as \udcff
 * escapes, returned in *keep for the caller to release once the text is copied. */
static int text_from_object(PyObject *object, const char **utf8, PyObject **keep, int optional, const char *what) {
  *keep = NULL;
  if (object == Py_None && optional) {
    *utf8 = NULL;
    return 0;
  }
  if (!PyUnicode_Check(object)) {
    PyErr_Format(PyExc_TypeError, "%s must be a str%s, not %.80s", what, optional ? " or None" : "",
                 Py_TYPE(object)->tp_name);
    return -1;
  }
  *utf8 = PyUnicode_AsUTF8(object);
  if (*utf8 != NULL) return 0;
  PyErr_Clear();
  *keep = PyUnicode_AsEncodedString(object, "utf-8", "backslashreplace");
  if (*keep == NULL) return -1;
  *utf8 = PyBytes_AS_STRING(*keep);
  return 0;
}

/* Adds one (title, repr, shallow, retained, style) tuple to the picture; -1 with an exception set. */
static int add_node_tuple(leak__picture *picture, PyObject *item, Py_ssize_t index) {
  if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 5) {
    PyErr_Format(PyExc_TypeError, "node %zd must be a tuple (title, repr, shallow, retained, style)", index);
    return -1;
  }
  const char *title, *repr, *style_name;
  PyObject *keep_title = NULL, *keep_repr = NULL, *keep_style = NULL;
  uint64_t shallow, retained;
  leak__picture_style style;
  int rc = -1;
  if (text_from_object(PyTuple_GET_ITEM(item, 0), &title, &keep_title, 0, "a node's title") < 0 ||
      text_from_object(PyTuple_GET_ITEM(item, 1), &repr, &keep_repr, 1, "a node's repr") < 0 ||
      size_from_object(PyTuple_GET_ITEM(item, 2), &shallow, "a node's shallow size") < 0 ||
      size_from_object(PyTuple_GET_ITEM(item, 3), &retained, "a node's retained size") < 0 ||
      text_from_object(PyTuple_GET_ITEM(item, 4), &style_name, &keep_style, 0, "a node's style") < 0)
    goto done;
  if (leak__picture_style_from_name(style_name, &style) < 0) {
    PyErr_Format(PyExc_ValueError,
                 "unknown node style %R (expected plain, target, highlighted, module, class, frame, thread, "
                 "sys, builtins, external, garbage or collapsed)",
                 PyTuple_GET_ITEM(item, 4));
    goto done;
  }
  rc = leak__picture_add_node(picture, title, repr, shallow, retained, style, NULL);
  if (rc < 0) {
    leak__py_raise(rc, "adding a node");
    rc = -1;
  }
done:
  Py_XDECREF(keep_title);
  Py_XDECREF(keep_repr);
  Py_XDECREF(keep_style);
  return rc;
}

/* Adds one (from, to, label) tuple to the picture; -1 with an exception set. */
static int add_edge_tuple(leak__picture *picture, PyObject *item, Py_ssize_t index, Py_ssize_t node_count) {
  if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3 || !PyLong_Check(PyTuple_GET_ITEM(item, 0)) ||
      !PyLong_Check(PyTuple_GET_ITEM(item, 1))) {
    PyErr_Format(PyExc_TypeError, "edge %zd must be a tuple (from node index, to node index, label)", index);
    return -1;
  }
  Py_ssize_t from = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 0));
  Py_ssize_t to = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 1));
  if (PyErr_Occurred()) PyErr_Clear(), from = -1;
  if (from < 0 || to < 0 || from >= node_count || to >= node_count) {
    PyErr_Format(PyExc_ValueError, "edge %zd joins a node that does not exist (there are %zd nodes)", index,
                 node_count);
    return -1;
  }
  const char *label;
  PyObject *keep_label;
  if (text_from_object(PyTuple_GET_ITEM(item, 2), &label, &keep_label, 1, "an edge's label") < 0) return -1;
  int rc = leak__picture_add_edge(picture, (uint32_t)from, (uint32_t)to, label);
  Py_XDECREF(keep_label);
  if (rc < 0) {
    leak__py_raise(rc, "adding an edge");
    return -1;
  }
  return 0;
}

/* Turns a render or write failure into the matching exception: file errors are OSError with the
 * path, a missing Graphviz plugin says which format, the rest go through leak__py_raise. */
static PyObject *raise_render_error(int rc, PyObject *path, const char *format_name) {
  if (rc == LEAK_ENOSYS) {
    PyErr_Format(leak__py_error,
                 "Graphviz cannot render %s on this machine: its plugins are missing (install the graphviz "
                 "package, or run `dot -c` as root to register them)",
                 format_name);
    return NULL;
  }
  if (rc != LEAK_EINVAL && rc != LEAK_ENOMEM && rc > -4000 && path != NULL) {
    errno = -rc;
    return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
  }
  return leak__py_raise(rc, "rendering a picture");
}

static const char render_picture_doc[] =
    "render_picture(nodes, edges, path=None, format=None, caption=None) -> bytes or None\n"
    "\n"
    "Draws a picture with Graphviz inside the process.\n"
    "nodes: a sequence of (title, repr, shallow, retained, style) tuples: title a str (the type name,\n"
    "  or a root's name), repr a str or None, shallow and retained sizes in bytes as int or None\n"
    "  (unknown), style one of 'plain', 'target', 'highlighted', 'module', 'class', 'frame', 'thread',\n"
    "  'sys', 'builtins', 'external', 'garbage', 'collapsed'.  Node i is the i-th tuple.\n"
    "edges: a sequence of (from, to, label) tuples: node indexes (referrer, referent), label a str or\n"
    "  None.\n"
    "path: None to get the bytes back, or a file path to write (its suffix .dot/.gv, .svg, .png or\n"
    "  .pdf chooses the format unless format is given).\n"
    "format: 'dot', 'svg', 'png' or 'pdf'; required when path is None.\n"
    "caption: a line drawn under the picture, or None.\n"
    "Raises TypeError or ValueError for bad input (nothing is written), OSError when the file cannot\n"
    "be written (nothing is left behind), libleak.Error when Graphviz lacks the format's plugin.";

/* render_picture(nodes, edges, path=None, format=None, caption=None). */
static PyObject *py_render_picture(PyObject *module, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"nodes", "edges", "path", "format", "caption", NULL};
  PyObject *nodes, *edges, *path_object = Py_None, *path_bytes = NULL, *result = NULL;
  const char *format_name = NULL, *caption = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|Ozz:render_picture", keywords, &nodes, &edges, &path_object,
                                   &format_name, &caption))
    return NULL;
  leak__picture_format format = LEAK_PICTURE_FORMAT_COUNT;
  if (format_name && leak__picture_format_from_name(format_name, &format) < 0) {
    PyErr_Format(PyExc_ValueError, "unknown picture format '%s' (expected 'dot', 'svg', 'png' or 'pdf')",
                 format_name);
    return NULL;
  }
  if (path_object != Py_None) {
    if (!PyUnicode_FSConverter(path_object, &path_bytes)) return NULL;
    const char *path = PyBytes_AS_STRING(path_bytes);
    leak__picture_format from_suffix;
    if (format == LEAK_PICTURE_FORMAT_COUNT && leak__picture_format_from_path(path, &from_suffix) < 0) {
      PyErr_Format(PyExc_ValueError, "cannot tell the picture format from %R: use a .dot, .gv, .svg, .png or .pdf "
                   "suffix", path_object);
      Py_DECREF(path_bytes);
      return NULL;
    }
  } else if (format == LEAK_PICTURE_FORMAT_COUNT) {
    PyErr_SetString(PyExc_ValueError, "render_picture needs a format when path is None");
    return NULL;
  }

  PyObject *node_list = PySequence_Fast(nodes, "nodes must be a sequence of tuples");
  PyObject *edge_list = node_list ? PySequence_Fast(edges, "edges must be a sequence of tuples") : NULL;
  leak__picture *picture = edge_list ? leak__picture_new() : NULL;
  if (edge_list && picture == NULL) PyErr_NoMemory();
  if (picture == NULL) goto done;
  Py_ssize_t node_count = PySequence_Fast_GET_SIZE(node_list);
  for (Py_ssize_t i = 0; i < node_count; i++)
    if (add_node_tuple(picture, PySequence_Fast_GET_ITEM(node_list, i), i) < 0) goto done;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(edge_list); i++)
    if (add_edge_tuple(picture, PySequence_Fast_GET_ITEM(edge_list, i), i, node_count) < 0) goto done;
  if (caption) {
    int rc = leak__picture_set_caption(picture, caption);
    if (rc < 0) {
      leak__py_raise(rc, "setting the caption");
      goto done;
    }
  }

  int rc;
  if (path_bytes) {
    const char *path = PyBytes_AS_STRING(path_bytes);
    Py_BEGIN_ALLOW_THREADS
    rc = leak__picture_write(picture, path, format);
    Py_END_ALLOW_THREADS
    if (format == LEAK_PICTURE_FORMAT_COUNT) leak__picture_format_from_path(path, &format); /* for messages */
    if (rc == 0) result = Py_NewRef(Py_None);
  } else {
    char *data = NULL;
    size_t size = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = leak__picture_render(picture, format, &data, &size);
    Py_END_ALLOW_THREADS
    if (rc == 0) {
      result = PyBytes_FromStringAndSize(data, (Py_ssize_t)size);
      leak__free(data);
    }
  }
  if (rc < 0) {
    static const char *const names[] = {"DOT", "SVG", "PNG", "PDF"};
    raise_render_error(rc, path_object != Py_None ? path_object : NULL,
                       (unsigned)format < LEAK_PICTURE_FORMAT_COUNT ? names[format] : "this format");
  }
done:
  leak__picture_free(picture);
  Py_XDECREF(node_list);
  Py_XDECREF(edge_list);
  Py_XDECREF(path_bytes);
  return result;
}

/* A leak__malloc'd array of `count` uint32 from a sequence of ints, each below `limit`; NULL with an
 * exception set. */
static uint32_t *uint32_array(PyObject *sequence, Py_ssize_t count, uint64_t limit, const char *what) {
  uint32_t *array = leak__malloc((size_t)(count ? count : 1) * sizeof(uint32_t));
  if (array == NULL) return (uint32_t *)PyErr_NoMemory();
  for (Py_ssize_t i = 0; i < count; i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(sequence, i);
    unsigned long long value = PyLong_Check(item) ? PyLong_AsUnsignedLongLong(item) : 0;
    if (!PyLong_Check(item) || PyErr_Occurred() || value >= limit) {
      PyErr_Clear();
      PyErr_Format(PyLong_Check(item) ? PyExc_ValueError : PyExc_TypeError,
                   "%s[%zd] must be an int between 0 and %llu", what, i, (unsigned long long)limit - 1);
      leak__free(array);
      return NULL;
    }
    array[i] = (uint32_t)value;
  }
  return array;
}

static const char dominators_doc[] =
    "dominators(n, root, first_edge, targets, sizes=None, top=0) -> (idom, retained, top_nodes)\n"
    "\n"
    "The dominator tree of a graph of n nodes in CSR form: the successors of node v are\n"
    "targets[first_edge[v]:first_edge[v + 1]] (first_edge has n + 1 ints, starting at 0).\n"
    "sizes: n ints (None: each node counts 1).  Returns idom (a list of n node numbers, None for\n"
    "nodes the root cannot reach, idom[root] == root), retained (a list of n sizes: each node's own\n"
    "plus what it dominates; 0 for unreachable nodes) and top_nodes (up to `top` node numbers other\n"
    "than the root, largest retained size first).  For tests: libleak's own callers are in C.";

/* dominators(n, root, first_edge, targets, sizes=None, top=0). */
static PyObject *py_dominators(PyObject *module, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"n", "root", "first_edge", "targets", "sizes", "top", NULL};
  Py_ssize_t n, root, top = 0;
  PyObject *first_object, *targets_object, *sizes_object = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nnOO|On:dominators", keywords, &n, &root, &first_object,
                                   &targets_object, &sizes_object, &top))
    return NULL;
  if (n <= 0 || n >= (Py_ssize_t)UINT32_MAX || root < 0 || root >= n || top < 0) {
    PyErr_SetString(PyExc_ValueError, "dominators needs 0 < n < 2**32 - 1, 0 <= root < n and top >= 0");
    return NULL;
  }
  PyObject *first_list = NULL, *targets_list = NULL, *sizes_list = NULL, *result = NULL;
  uint32_t *first = NULL, *targets = NULL, *idom = NULL, *top_nodes = NULL;
  uint64_t *sizes = NULL, *retained = NULL;
  first_list = PySequence_Fast(first_object, "first_edge must be a sequence of ints");
  if (first_list == NULL) goto done;
  targets_list = PySequence_Fast(targets_object, "targets must be a sequence of ints");
  if (targets_list == NULL) goto done;
  if (PySequence_Fast_GET_SIZE(first_list) != n + 1) {
    PyErr_SetString(PyExc_ValueError, "first_edge must have n + 1 entries");
    goto done;
  }
  first = uint32_array(first_list, n + 1, (uint64_t)PySequence_Fast_GET_SIZE(targets_list) + 1, "first_edge");
  targets = first ? uint32_array(targets_list, PySequence_Fast_GET_SIZE(targets_list), (uint64_t)n, "targets") : NULL;
  if (targets == NULL) goto done;
  if (first[n] != (uint32_t)PySequence_Fast_GET_SIZE(targets_list)) {
    PyErr_SetString(PyExc_ValueError, "first_edge[n] must be len(targets)");
    goto done;
  }
  if (sizes_object != Py_None) {
    sizes_list = PySequence_Fast(sizes_object, "sizes must be a sequence of ints");
    if (sizes_list == NULL) goto done;
    if (PySequence_Fast_GET_SIZE(sizes_list) != n) {
      PyErr_SetString(PyExc_ValueError, "sizes must have n entries");
      goto done;
    }
    sizes = leak__malloc((size_t)n * sizeof(uint64_t));
    if (sizes == NULL) {
      PyErr_NoMemory();
      goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
      if (size_from_object(PySequence_Fast_GET_ITEM(sizes_list, i), &sizes[i], "a size") < 0 ||
          sizes[i] == LEAK_PICTURE_SIZE_UNKNOWN) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "sizes must be ints");
        goto done;
      }
  }
  idom = leak__malloc((size_t)n * sizeof(uint32_t));
  retained = leak__malloc((size_t)n * sizeof(uint64_t));
  top_nodes = leak__malloc((size_t)(top ? top : 1) * sizeof(uint32_t));
  if (idom == NULL || retained == NULL || top_nodes == NULL) {
    PyErr_NoMemory();
    goto done;
  }
  leak__csr_graph graph = {(uint32_t)n, first, targets};
  int rc;
  size_t top_count = 0;
  Py_BEGIN_ALLOW_THREADS
  rc = leak__dominators_compute(&graph, (uint32_t)root, idom, NULL);
  if (rc == 0) rc = leak__dominators_retained((uint32_t)n, (uint32_t)root, idom, sizes, retained);
  if (rc == 0) top_count = leak__dominators_top((uint32_t)n, (uint32_t)root, idom, retained, top_nodes, (size_t)top);
  Py_END_ALLOW_THREADS
  if (rc < 0) {
    leak__py_raise(rc, "computing dominators");
    goto done;
  }
  PyObject *idom_out = PyList_New(n), *retained_out = PyList_New(n), *top_out = PyList_New((Py_ssize_t)top_count);
  if (idom_out && retained_out && top_out) {
    for (Py_ssize_t i = 0; i < n; i++) {
      PyObject *d = idom[i] == LEAK_DOMINATOR_UNREACHABLE ? Py_NewRef(Py_None) : PyLong_FromUnsignedLong(idom[i]);
      PyObject *r = PyLong_FromUnsignedLongLong(retained[i]);
      if (d == NULL || r == NULL) {
        Py_XDECREF(d);
        Py_XDECREF(r);
        goto lists_failed;
      }
      PyList_SET_ITEM(idom_out, i, d);
      PyList_SET_ITEM(retained_out, i, r);
    }
    for (size_t i = 0; i < top_count; i++) {
      PyObject *v = PyLong_FromUnsignedLong(top_nodes[i]);
      if (v == NULL) goto lists_failed;
      PyList_SET_ITEM(top_out, (Py_ssize_t)i, v);
    }
    result = PyTuple_Pack(3, idom_out, retained_out, top_out);
  }
lists_failed:
  Py_XDECREF(idom_out);
  Py_XDECREF(retained_out);
  Py_XDECREF(top_out);
done:
  Py_XDECREF(first_list);
  Py_XDECREF(targets_list);
  Py_XDECREF(sizes_list);
  leak__free(first);
  leak__free(targets);
  leak__free(sizes);
  leak__free(idom);
  leak__free(retained);
  leak__free(top_nodes);
  return result;
}

/* format_size(bytes) -> "5.0 MiB": the renderer's own formatting, so Python text matches pictures. */
static PyObject *py_format_size(PyObject *module, PyObject *arg) {
  uint64_t size;
  if (size_from_object(arg, &size, "the size") < 0) return NULL;
  if (size == LEAK_PICTURE_SIZE_UNKNOWN) {
    PyErr_SetString(PyExc_TypeError, "the size must be an int");
    return NULL;
  }
  char text[32];
  return PyUnicode_FromString(leak__format_size(size, text, sizeof(text)));
}

static PyMethodDef render_methods[] = {
    {"render_picture", (PyCFunction)(void (*)(void))py_render_picture, METH_VARARGS | METH_KEYWORDS,
     render_picture_doc},
    {"dominators", (PyCFunction)(void (*)(void))py_dominators, METH_VARARGS | METH_KEYWORDS, dominators_doc},
    {"format_size", py_format_size, METH_O, "format_size(bytes) -> str such as '5.0 MiB' (units of 1024)"},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_render_area = {render_methods, NULL};
