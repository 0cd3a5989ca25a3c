/* The tracer area of _libleak: the allocation tracer's controls, and snapshots as a small C type.
 *
 * Everything heavy (grouping, sorting, diffing, filtering, file I/O) happens in the C core; this
 * file parses arguments and turns rows into plain tuples.  Frames go out as (filename, lineno)
 * tuples, most recent first, the order _tracemalloc uses; libleak/tracer.py wraps them.  Python
 * strings and frame tuples are created once per snapshot entry and cached on the snapshot object,
 * so a statistics() call costs one tuple per row, not one string per row. */
#include "glue.h"
#include "tracer/snapshot.h"
#include "tracer/snapfile.h"
#include "tracer/tracer.h"

/* ---- The snapshot type --------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  leak__snapshot *snap;
  PyObject **strings;    /* lazily created str per string index (NULL until needed) */
  PyObject **frames;     /* lazily created (filename, lineno) per frame index */
  PyObject **tracebacks; /* lazily created frames tuple per traceback index */
} SnapshotCore;

static PyTypeObject SnapshotCore_Type;

/* Wraps a snapshot; takes ownership (frees it on failure too). */
static PyObject *core_wrap(leak__snapshot *snap) {
  SnapshotCore *self = PyObject_New(SnapshotCore, &SnapshotCore_Type);
  if (self == NULL) {
    leak_snapshot_free(snap);
    return NULL;
  }
  self->snap = snap;
  self->strings = self->frames = self->tracebacks = NULL;
  return (PyObject *)self;
}

/* Drops a cache of Python objects (dealloc only). */
static void clear_cache(PyObject ***cache, uint32_t n) {
  if (*cache == NULL) return;
  for (uint32_t i = 0; i < n; i++) Py_XDECREF((*cache)[i]);
  PyMem_Free(*cache);
  *cache = NULL;
}

/* Frees the cached objects and the snapshot. */
static void core_dealloc(SnapshotCore *self) {
  if (self->snap) {
    const leak__snap_tables *t = self->snap->tables;
    clear_cache(&self->strings, t->nstrings);
    clear_cache(&self->frames, t->nframes);
    clear_cache(&self->tracebacks, t->ntracebacks);
    leak_snapshot_free(self->snap);
  }
  PyObject_Free(self);
}

/* A cache slot array, created on first use. */
static PyObject **cache_slots(PyObject ***cache, uint32_t n) {
  if (*cache == NULL) {
    *cache = PyMem_Calloc(n ? n : 1, sizeof(PyObject *));
    if (*cache == NULL) PyErr_NoMemory();
  }
  return *cache;
}

/* The filename string (new reference); stored with surrogatepass, so decoded likewise. */
static PyObject *core_string(SnapshotCore *self, uint32_t index) {
  PyObject **slots = cache_slots(&self->strings, self->snap->tables->nstrings);
  if (slots == NULL) return NULL;
  if (slots[index] == NULL) {
    const char *text = leak__snapshot_string(self->snap, index);
    slots[index] = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "surrogatepass");
    if (slots[index] == NULL) return NULL;
  }
  return Py_NewRef(slots[index]);
}

/* The (filename, lineno) tuple of a frame index (new reference), cached. */
static PyObject *core_frame(SnapshotCore *self, uint32_t index) {
  PyObject **slots = cache_slots(&self->frames, self->snap->tables->nframes);
  if (slots == NULL) return NULL;
  if (slots[index] == NULL) {
    const leak__snap_frame *frame = &self->snap->tables->frames[index];
    PyObject *filename = core_string(self, frame->filename);
    if (filename == NULL) return NULL;
    slots[index] = Py_BuildValue("(Ni)", filename, (int)frame->lineno);
    if (slots[index] == NULL) return NULL;
  }
  return Py_NewRef(slots[index]);
}

/* The frames tuple of a traceback index, most recent first (new reference), cached. */
static PyObject *core_traceback(SnapshotCore *self, uint32_t index) {
  PyObject **slots = cache_slots(&self->tracebacks, self->snap->tables->ntracebacks);
  if (slots == NULL) return NULL;
  if (slots[index] == NULL) {
    const leak__snap_traceback *tb = leak__snapshot_traceback(self->snap, index);
    PyObject *tuple = PyTuple_New(tb->nframe);
    if (tuple == NULL) return NULL;
    for (uint32_t i = 0; i < tb->nframe; i++) {
      PyObject *frame = core_frame(self, self->snap->tables->frame_refs[tb->first + i]);
      if (frame == NULL) {
        Py_DECREF(tuple);
        return NULL;
      }
      PyTuple_SET_ITEM(tuple, i, frame);
    }
    slots[index] = tuple;
  }
  return Py_NewRef(slots[index]);
}

/* A row's key as a frames tuple: ((filename, 0),) for files, one frame for lines, the traceback. */
static PyObject *row_key(SnapshotCore *owner, const leak__stat_row *row, leak_key_type key) {
  switch (key) {
    case LEAK_KEY_FILENAME: {
      PyObject *filename = core_string(owner, row->key);
      return filename ? Py_BuildValue("((Ni))", filename, 0) : NULL;
    }
    case LEAK_KEY_LINENO: {
      PyObject *frame = core_frame(owner, row->key);
      return frame ? Py_BuildValue("(N)", frame) : NULL;
    }
    default:
      return core_traceback(owner, row->key);
  }
}

/* The Python layer checks key names; this guards direct callers of _libleak. */
static int parse_key(int key, int cumulative) {
  if (key < LEAK_KEY_FILENAME || key > LEAK_KEY_TRACEBACK) {
    PyErr_Format(PyExc_ValueError, "unknown key_type: %d", key);
    return -1;
  }
  if (cumulative && key == LEAK_KEY_TRACEBACK) {
    PyErr_SetString(PyExc_ValueError, "cumulative mode cannot by used with key type 'traceback'");
    return -1;
  }
  return 0;
}

/* statistics(key, cumulative) -> [(frames, size, count), ...] sorted as tracemalloc sorts. */
static PyObject *core_statistics(SnapshotCore *self, PyObject *args) {
  int key, cumulative;
  if (!PyArg_ParseTuple(args, "ip:statistics", &key, &cumulative) || parse_key(key, cumulative) < 0) return NULL;
  leak__stat_row *rows;
  size_t n;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = leak__snapshot_statistics(self->snap, (leak_key_type)key, cumulative, &rows, &n);
  Py_END_ALLOW_THREADS if (rc < 0) return leak__py_raise(rc, "statistics");
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; list != NULL && i < n; i++) {
    PyObject *frames = row_key(self, &rows[i], (leak_key_type)key);
    PyObject *item = frames ? Py_BuildValue("(NKK)", frames, (unsigned long long)rows[i].size,
                                            (unsigned long long)rows[i].count)
                            : NULL;
    if (item == NULL) Py_CLEAR(list);
    else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
  }
  leak__free(rows);
  return list;
}

/* compare_to(old, key, cumulative) -> [(frames, size, size_diff, count, count_diff), ...]. */
static PyObject *core_compare_to(SnapshotCore *self, PyObject *args) {
  SnapshotCore *old;
  int key, cumulative;
  if (!PyArg_ParseTuple(args, "O!ip:compare_to", &SnapshotCore_Type, &old, &key, &cumulative) ||
      parse_key(key, cumulative) < 0)
    return NULL;
  leak__stat_row *rows;
  size_t n;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = leak__snapshot_compare(self->snap, old->snap, (leak_key_type)key, cumulative, &rows, &n);
  Py_END_ALLOW_THREADS if (rc < 0) return leak__py_raise(rc, "compare_to");
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; list != NULL && i < n; i++) {
    SnapshotCore *owner = rows[i].owner == self->snap ? self : old;
    PyObject *frames = row_key(owner, &rows[i], (leak_key_type)key);
    PyObject *item = frames ? Py_BuildValue("(NKLKL)", frames, (unsigned long long)rows[i].size,
                                            (long long)rows[i].size_diff, (unsigned long long)rows[i].count,
                                            (long long)rows[i].count_diff)
                            : NULL;
    if (item == NULL) Py_CLEAR(list);
    else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
  }
  leak__free(rows);
  return list;
}

/* filter(specs) -> a new snapshot.  Each spec is (is_domain_filter, inclusive, pattern or None,
 * lineno or None, all_frames, domain or None); the Python layer checks types and normalises the
 * pattern. */
static PyObject *core_filter(SnapshotCore *self, PyObject *specs) {
  PyObject *seq = PySequence_Fast(specs, "filters must be a sequence");
  if (seq == NULL) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  leak__snap_filter *filters = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*filters));
  PyObject **patterns = PyMem_Calloc(n ? (size_t)n : 1, sizeof(PyObject *));
  PyObject *result = NULL;
  if (filters == NULL || patterns == NULL) {
    PyErr_NoMemory();
    goto done;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *pattern, *lineno, *domain;
    leak__snap_filter *f = &filters[i];
    if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ppOOpO:filter", &f->is_domain_filter, &f->inclusive,
                          &pattern, &lineno, &f->all_frames, &domain))
      goto done;
    if (!f->is_domain_filter) {
      if (!PyUnicode_Check(pattern)) {
        PyErr_SetString(PyExc_TypeError, "filename_pattern must be a str");
        goto done;
      }
      patterns[i] = PyUnicode_AsEncodedString(pattern, "utf-8", "surrogatepass");
      if (patterns[i] == NULL) goto done;
      if ((size_t)PyBytes_GET_SIZE(patterns[i]) != strlen(PyBytes_AS_STRING(patterns[i]))) {
        PyErr_SetString(PyExc_ValueError, "filename_pattern must not contain NUL characters");
        goto done;
      }
      f->pattern = PyBytes_AS_STRING(patterns[i]);
      if (lineno != Py_None) {
        long value = PyLong_AsLong(lineno);
        if (value == -1 && PyErr_Occurred()) goto done;
        if (value < INT32_MIN || value > INT32_MAX) {
          PyErr_SetString(PyExc_ValueError, "lineno must fit in 32 bits");
          goto done;
        }
        f->has_lineno = 1;
        f->lineno = (int)value;
      }
    }
    if (domain != Py_None) {
      unsigned long long value = PyLong_AsUnsignedLongLong(domain);
      if (PyErr_Occurred()) {
        /* A negative or huge domain matches no trace: keep tracemalloc's answer without failing. */
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) goto done;
        PyErr_Clear();
        value = (unsigned long long)UINT32_MAX + 1;
      }
      f->has_domain = 1;
      f->domain = value > UINT32_MAX ? UINT32_MAX : (uint32_t)value; /* traces' domains are 32-bit */
    }
  }
  leak__snapshot *out;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = leak__snapshot_filter(self->snap, filters, (size_t)n, &out);
  Py_END_ALLOW_THREADS if (rc < 0) leak__py_raise(rc, "filter_traces");
  else result = core_wrap(out);
done:
  if (patterns)
    for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(patterns[i]);
  PyMem_Free(patterns);
  PyMem_Free(filters);
  Py_DECREF(seq);
  return result;
}

/* The attributes argument of write and encode: None for none, else bytes already encoded by
 * libleak/tracer.py (checked again in C before anything is written). */
static int parse_attributes(PyObject *arg, const unsigned char **bytes, size_t *len) {
  *bytes = NULL;
  *len = 0;
  if (arg == Py_None) return 0;
  if (!PyBytes_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "attributes must be bytes or None, not %.100s", Py_TYPE(arg)->tp_name);
    return -1;
  }
  *bytes = (const unsigned char *)PyBytes_AS_STRING(arg);
  *len = (size_t)PyBytes_GET_SIZE(arg);
  return 0;
}

/* write(fd, attributes=None): the snapshot in libleak's file format, with the given encoded
 * attributes instead of its own. */
static PyObject *core_write(SnapshotCore *self, PyObject *args) {
  PyObject *file, *attributes = Py_None;
  const unsigned char *bytes;
  size_t len;
  if (!PyArg_ParseTuple(args, "O|O:write", &file, &attributes) || parse_attributes(attributes, &bytes, &len) < 0)
    return NULL;
  int fd = PyObject_AsFileDescriptor(file);
  if (fd < 0) return NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = leak__snapfile_write_with(self->snap, bytes, len, fd);
  Py_END_ALLOW_THREADS if (rc < 0) return leak__py_raise(rc, rc == LEAK_EINVAL ? "malformed attributes" : NULL);
  Py_RETURN_NONE;
}

/* encode(attributes=None) -> bytes: the file format in memory, for pickling and for sending
 * between processes. */
static PyObject *core_encode(SnapshotCore *self, PyObject *args) {
  PyObject *attributes = Py_None;
  const unsigned char *in;
  size_t in_len;
  if (!PyArg_ParseTuple(args, "|O:encode", &attributes) || parse_attributes(attributes, &in, &in_len) < 0)
    return NULL;
  unsigned char *bytes;
  size_t len;
  int rc = leak__snapfile_encode_with(self->snap, in, in_len, &bytes, &len);
  if (rc < 0) return leak__py_raise(rc, rc == LEAK_EINVAL ? "malformed attributes" : "encode");
  PyObject *result = PyBytes_FromStringAndSize((const char *)bytes, (Py_ssize_t)len);
  leak__free(bytes);
  return result;
}

/* attributes() -> bytes or None: the encoded attributes the snapshot was read with. */
static PyObject *core_attributes(SnapshotCore *self, PyObject *unused) {
  if (self->snap->attributes == NULL) Py_RETURN_NONE;
  return PyBytes_FromStringAndSize((const char *)self->snap->attributes, (Py_ssize_t)self->snap->attributes_len);
}

/* trace(i) -> (domain, size, frames, total_nframe, weight): the raw trace tuples of tracemalloc,
 * plus the sampling weight. */
static PyObject *core_trace(SnapshotCore *self, PyObject *arg) {
  Py_ssize_t i = PyNumber_AsSsize_t(arg, PyExc_IndexError);
  if (i == -1 && PyErr_Occurred()) return NULL;
  if (i < 0) i += (Py_ssize_t)self->snap->ntraces;
  if (i < 0 || (size_t)i >= self->snap->ntraces) {
    PyErr_SetString(PyExc_IndexError, "trace index out of range");
    return NULL;
  }
  const leak__snap_trace *trace = &self->snap->traces[i];
  PyObject *frames = core_traceback(self, trace->traceback);
  if (frames == NULL) return NULL;
  return Py_BuildValue("(kKNkd)", (unsigned long)trace->domain, (unsigned long long)trace->size, frames,
                       (unsigned long)leak__snapshot_traceback(self->snap, trace->traceback)->total_nframe,
                       trace->weight);
}

/* len(core): the trace count, for _Traces. */
static Py_ssize_t core_length(SnapshotCore *self) { return (Py_ssize_t)self->snap->ntraces; }

/* Snapshot.traceback_limit. */
static PyObject *core_get_traceback_limit(SnapshotCore *self, void *closure) {
  return PyLong_FromLong(self->snap->traceback_limit);
}

static PyMethodDef core_methods[] = {
    {"statistics", (PyCFunction)core_statistics, METH_VARARGS, "statistics(key, cumulative) -> rows"},
    {"compare_to", (PyCFunction)core_compare_to, METH_VARARGS, "compare_to(old, key, cumulative) -> rows"},
    {"filter", (PyCFunction)core_filter, METH_O, "filter(specs) -> SnapshotCore"},
    {"write", (PyCFunction)core_write, METH_VARARGS, "write(fd, attributes=None): writes the snapshot file"},
    {"encode", (PyCFunction)core_encode, METH_VARARGS, "encode(attributes=None) -> bytes in the snapshot file format"},
    {"attributes", (PyCFunction)core_attributes, METH_NOARGS, "attributes() -> encoded attributes read, or None"},
    {"trace", (PyCFunction)core_trace, METH_O, "trace(i) -> (domain, size, frames, total_nframe, weight)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef core_getset[] = {
    {"traceback_limit", (getter)core_get_traceback_limit, NULL, "frames kept per traceback", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods core_as_sequence = {(lenfunc)core_length};

static PyTypeObject SnapshotCore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "libleak._libleak.SnapshotCore",
    .tp_basicsize = sizeof(SnapshotCore),
    .tp_dealloc = (destructor)core_dealloc,
    .tp_as_sequence = &core_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An immutable snapshot held in C (use libleak.tracer.Snapshot).",
    .tp_methods = core_methods,
    .tp_getset = core_getset,
};

/* ---- Building snapshots ---------------------------------------------------------------------- */

/* Adds one Python frames tuple ((filename, lineno), ...) most recent first to the builder. */
static int build_traceback(leak__snapshot *s, PyObject *frames, unsigned long total_nframe, uint32_t *buffer,
                           uint32_t *index) {
  PyObject *seq = PySequence_Fast(frames, "a traceback must be a sequence of (filename, lineno) frames");
  if (seq == NULL) return -1;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  int rc = 0;
  if (n < 1 || n > LEAK_SNAPFILE_MAX_NFRAME) {
    PyErr_Format(PyExc_ValueError,
                 "a traceback needs 1 to %u frames (tracemalloc gives ((\"<unknown>\", 0),) to an allocation "
                 "made without a Python frame, never an empty traceback)",
                 LEAK_SNAPFILE_MAX_NFRAME);
    rc = -1;
  }
  for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
    PyObject *filename, *encoded;
    int lineno;
    uint32_t string;
    PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
    if (!PyTuple_Check(item)) {
      PyErr_Format(PyExc_TypeError, "a frame must be a (filename, lineno) tuple, not %.100s", Py_TYPE(item)->tp_name);
      rc = -1;
      break;
    }
    if (!PyArg_ParseTuple(item, "Ui:frame", &filename, &lineno)) {
      rc = -1;
      break;
    }
    encoded = PyUnicode_AsEncodedString(filename, "utf-8", "surrogatepass");
    if (encoded == NULL) {
      rc = -1;
      break;
    }
    int code = leak__snapshot_add_string(s, PyBytes_AS_STRING(encoded), (size_t)PyBytes_GET_SIZE(encoded), &string);
    Py_DECREF(encoded);
    if (code == 0) code = leak__snapshot_add_frame(s, string, lineno, &buffer[i]);
    if (code < 0) {
      leak__py_raise(code, "filename");
      rc = -1;
    }
  }
  if (rc == 0) {
    if (total_nframe < (unsigned long)n) total_nframe = (unsigned long)n;
    if (total_nframe > UINT32_MAX) total_nframe = UINT32_MAX;
    int code = leak__snapshot_add_traceback(s, buffer, (uint32_t)n, (uint32_t)total_nframe, index);
    if (code < 0) {
      leak__py_raise(code, "traceback");
      rc = -1;
    }
  }
  Py_DECREF(seq);
  return rc;
}

/* snapshot_build(traces, traceback_limit): a snapshot from tracemalloc-style trace tuples
 * (domain, size, frames[, total_nframe[, weight]]); what Snapshot(traces, limit) and tests use. */
static PyObject *py_snapshot_build(PyObject *module, PyObject *args) {
  PyObject *traces;
  int limit;
  if (!PyArg_ParseTuple(args, "Oi:snapshot_build", &traces, &limit)) return NULL;
  PyObject *seq = PySequence_Fast(traces, "traces must be a sequence of trace tuples");
  if (seq == NULL) return NULL;
  leak__snapshot *s = leak__snapshot_new(limit);
  uint32_t *buffer = PyMem_Malloc(LEAK_SNAPFILE_MAX_NFRAME * sizeof(uint32_t));
  if (s == NULL || buffer == NULL) {
    PyErr_NoMemory();
    goto fail;
  }
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
    unsigned long domain, total_nframe = 0;
    unsigned long long size;
    PyObject *frames, *total = Py_None;
    double weight = 1.0;
    uint32_t tb;
    PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
    if (!PyTuple_Check(item)) {
      PyErr_Format(PyExc_TypeError, "a trace must be a (domain, size, frames, total_nframe) tuple, not %.100s",
                   Py_TYPE(item)->tp_name);
      goto fail;
    }
    if (!PyArg_ParseTuple(item, "kKO|Od:trace", &domain, &size, &frames, &total, &weight)) goto fail;
    if (domain > UINT32_MAX) {
      PyErr_SetString(PyExc_ValueError, "domain must fit in 32 bits");
      goto fail;
    }
    if (total != Py_None) {
      total_nframe = PyLong_AsUnsignedLong(total);
      if (PyErr_Occurred()) goto fail;
    }
    if (build_traceback(s, frames, total_nframe, buffer, &tb) < 0) goto fail;
    int rc = leak__snapshot_add_trace(s, (uint32_t)domain, size, weight, tb);
    if (rc < 0) {
      leak__py_raise(rc, "weight must be finite and positive");
      goto fail;
    }
  }
  PyMem_Free(buffer);
  Py_DECREF(seq);
  leak__snapshot_finish(s);
  return core_wrap(s);
fail:
  PyMem_Free(buffer);
  Py_DECREF(seq);
  leak_snapshot_free(s);
  return NULL;
}

/* snapshot_take(): the live traces (GIL held throughout: line numbers are resolved now). */
static PyObject *py_snapshot_take(PyObject *module, PyObject *unused) {
  leak__snapshot *s;
  int rc = leak__snapshot_take(&s);
  if (rc < 0) return leak__py_raise(rc, "take_snapshot");
  return core_wrap(s);
}

/* snapshot_read(fd): a snapshot file; FormatError when it is not one. */
static PyObject *py_snapshot_read(PyObject *module, PyObject *arg) {
  int fd = PyObject_AsFileDescriptor(arg);
  if (fd < 0) return NULL;
  leak__snapshot *s = NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = leak_snapshot_read(fd, &s);
  Py_END_ALLOW_THREADS if (rc < 0) return leak__py_raise(rc, rc == LEAK_EFORMAT ? "not a libleak snapshot" : NULL);
  return core_wrap(s);
}

/* snapshot_decode(bytes): a snapshot from bytes in the file format (what encode gave). */
static PyObject *py_snapshot_decode(PyObject *module, PyObject *arg) {
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
  leak__snapshot *s = NULL;
  int rc = leak__snapfile_decode(view.buf, (size_t)view.len, &s);
  PyBuffer_Release(&view);
  if (rc < 0) return leak__py_raise(rc, rc == LEAK_EFORMAT ? "not a libleak snapshot" : NULL);
  return core_wrap(s);
}

/* ---- Tracer controls --------------------------------------------------------------------------- */

/* tracer_start(nframe, sample_bytes, seed=0): already tracing is not an error (as tracemalloc). */
static PyObject *py_tracer_start(PyObject *module, PyObject *args) {
  leak_tracer_options options = LEAK_TRACER_OPTIONS_INIT;
  if (!PyArg_ParseTuple(args, "iL|K:tracer_start", &options.nframe, &options.sample_bytes, &options.seed))
    return NULL;
  int rc = leak_tracer_start(&options);
  if (rc == LEAK_EBUSY) Py_RETURN_FALSE;
  if (rc == LEAK_EAGAIN) {
    PyErr_SetString(PyExc_RuntimeError,
                    "exact tracing cannot start while another tool (tracemalloc?) that started after a sampled "
                    "libleak run still wraps libleak's allocator hooks: stop that tool first");
    return NULL;
  }
  if (rc < 0) return leak__py_raise(rc, "start");
  Py_RETURN_TRUE;
}

/* The controls below are one call each into the public C API. */
static PyObject *py_tracer_stop(PyObject *module, PyObject *unused) {
  int rc = leak_tracer_stop();
  if (rc < 0) return leak__py_raise(rc, "stop");
  Py_RETURN_NONE;
}

static PyObject *py_tracer_is_tracing(PyObject *module, PyObject *unused) {
  return PyBool_FromLong(leak_tracer_is_tracing());
}

/* clear_traces() when not tracing does nothing, as in tracemalloc. */
static PyObject *py_tracer_clear(PyObject *module, PyObject *unused) {
  int rc = leak_tracer_is_tracing() ? leak_tracer_clear() : 0;
  if (rc < 0) return leak__py_raise(rc, "clear_traces");
  Py_RETURN_NONE;
}

static PyObject *py_tracer_traceback_limit(PyObject *module, PyObject *unused) {
  return PyLong_FromLong(leak_tracer_traceback_limit());
}

/* The sampling interval of the current (or last) start; 0 for exact tracing. */
static PyObject *py_tracer_sample_bytes(PyObject *module, PyObject *unused) {
  leak_tracer_options options;
  int rc = leak_tracer_get_options(&options);
  if (rc < 0) return leak__py_raise(rc, "get_options");
  return PyLong_FromLongLong(options.sample_bytes);
}

static PyObject *py_tracer_traced_memory(PyObject *module, PyObject *unused) {
  size_t current = 0, peak = 0;
  int rc = leak_tracer_traced_memory(&current, &peak);
  if (rc < 0) return leak__py_raise(rc, "get_traced_memory");
  return Py_BuildValue("(nn)", (Py_ssize_t)current, (Py_ssize_t)peak);
}

static PyObject *py_tracer_reset_peak(PyObject *module, PyObject *unused) {
  int rc = leak_tracer_reset_peak();
  if (rc < 0) return leak__py_raise(rc, "reset_peak");
  Py_RETURN_NONE;
}

static PyObject *py_tracer_memory(PyObject *module, PyObject *unused) {
  size_t bytes = 0;
  int rc = leak_tracer_memory(&bytes);
  if (rc < 0) return leak__py_raise(rc, "get_tracer_memory");
  return PyLong_FromSize_t(bytes);
}

static PyObject *py_tracer_dropped(PyObject *module, PyObject *unused) {
  uint64_t count = 0;
  int rc = leak_tracer_dropped(&count);
  if (rc < 0) return leak__py_raise(rc, "dropped");
  return PyLong_FromUnsignedLongLong(count);
}

/* tracer_object_traceback(obj) -> ((filename, lineno), ...) most recent first, or None. */
static PyObject *py_tracer_object_traceback(PyObject *module, PyObject *obj) {
  leak__stack_id id;
  if (!leak_tracer_is_tracing() || leak__tracer_object_stack(obj, &id) < 0) Py_RETURN_NONE;
  const leak__frame *frames;
  int nframe = 0, depth = 0;
  if (id == LEAK_STACK_EMPTY || leak__stacks_lookup_depth(id, &frames, &nframe, &depth) < 0 || nframe <= 0)
    return Py_BuildValue("(((si)),i)", "<unknown>", 0, 1);
  PyObject *tuple = PyTuple_New(nframe);
  if (tuple == NULL) return NULL;
  for (int i = 0; i < nframe; i++) {
    int lineno = leak__frame_lineno(frames[i].code, frames[i].lasti);
    PyObject *filename = frames[i].code->co_filename;
    PyObject *frame = Py_BuildValue("(Oi)", filename ? filename : Py_None, lineno < 0 ? 0 : lineno);
    if (frame == NULL) {
      Py_DECREF(tuple);
      return NULL;
    }
    PyTuple_SET_ITEM(tuple, i, frame);
  }
  return Py_BuildValue("(Ni)", tuple, depth > nframe ? depth : nframe);
}

static PyMethodDef tracer_methods[] = {
    {"tracer_start", py_tracer_start, METH_VARARGS, "tracer_start(nframe, sample_bytes[, seed]) -> started"},
    {"tracer_stop", py_tracer_stop, METH_NOARGS, NULL},
    {"tracer_is_tracing", py_tracer_is_tracing, METH_NOARGS, NULL},
    {"tracer_clear", py_tracer_clear, METH_NOARGS, NULL},
    {"tracer_traceback_limit", py_tracer_traceback_limit, METH_NOARGS, NULL},
    {"tracer_sample_bytes", py_tracer_sample_bytes, METH_NOARGS, NULL},
    {"tracer_traced_memory", py_tracer_traced_memory, METH_NOARGS, NULL},
    {"tracer_reset_peak", py_tracer_reset_peak, METH_NOARGS, NULL},
    {"tracer_memory", py_tracer_memory, METH_NOARGS, NULL},
    {"tracer_dropped", py_tracer_dropped, METH_NOARGS, NULL},
    {"tracer_object_traceback", py_tracer_object_traceback, METH_O, NULL},
    {"snapshot_take", py_snapshot_take, METH_NOARGS, NULL},
    {"snapshot_read", py_snapshot_read, METH_O, "snapshot_read(fd) -> SnapshotCore"},
    {"snapshot_decode", py_snapshot_decode, METH_O, "snapshot_decode(bytes) -> SnapshotCore"},
    {"snapshot_build", py_snapshot_build, METH_VARARGS, "snapshot_build(traces, traceback_limit) -> SnapshotCore"},
    {NULL, NULL, 0, NULL},
};

/* Readies the snapshot type and adds it to the module. */
static int tracer_init(PyObject *module) {
  if (PyType_Ready(&SnapshotCore_Type) < 0) return -1;
  Py_INCREF(&SnapshotCore_Type);
  if (PyModule_AddObject(module, "SnapshotCore", (PyObject *)&SnapshotCore_Type) < 0) {
    Py_DECREF(&SnapshotCore_Type);
    return -1;
  }
  return 0;
}

const leak__py_area leak__py_tracer_area = {tracer_methods, tracer_init};
