/* The `_tprobe` module the tracer tests drive from Python: allocate in a chosen domain (with or
 * without the GIL), read one trace back with its frames resolved, the counters, track/untrack, and
 * the object traceback.  No tests here; see tests/test-tracer*.c. */
#include "core/internal.h"
#include "tracer/tracer.h"
#include "test-tracer-probe.h"
#include "runner.h"

/* Allocation kinds: the domain, and whether the call releases the GIL first. */
typedef enum { KIND_RAW, KIND_MEM, KIND_OBJ, KIND_RAW_NOGIL, KIND_BAD } alloc_kind;

static alloc_kind parse_kind(const char *name) {
  if (strcmp(name, "raw") == 0) return KIND_RAW;
  if (strcmp(name, "mem") == 0) return KIND_MEM;
  if (strcmp(name, "obj") == 0) return KIND_OBJ;
  if (strcmp(name, "raw_nogil") == 0) return KIND_RAW_NOGIL;
  return KIND_BAD;
}

static void *kind_malloc(alloc_kind kind, size_t size, int zeroed) {
  void *ptr = NULL;
  switch (kind) {
    case KIND_RAW:
      return zeroed ? PyMem_RawCalloc(1, size) : PyMem_RawMalloc(size);
    case KIND_MEM:
      return zeroed ? PyMem_Calloc(1, size) : PyMem_Malloc(size);
    case KIND_OBJ:
      return zeroed ? PyObject_Calloc(1, size) : PyObject_Malloc(size);
    case KIND_RAW_NOGIL:
      Py_BEGIN_ALLOW_THREADS ptr = zeroed ? PyMem_RawCalloc(1, size) : PyMem_RawMalloc(size);
      Py_END_ALLOW_THREADS return ptr;
    default:
      return NULL;
  }
}

static void kind_free(alloc_kind kind, void *ptr) {
  switch (kind) {
    case KIND_RAW:
      PyMem_RawFree(ptr);
      break;
    case KIND_MEM:
      PyMem_Free(ptr);
      break;
    case KIND_OBJ:
      PyObject_Free(ptr);
      break;
    case KIND_RAW_NOGIL:
      Py_BEGIN_ALLOW_THREADS PyMem_RawFree(ptr);
      Py_END_ALLOW_THREADS break;
    default:
      break;
  }
}

static void *kind_realloc(alloc_kind kind, void *ptr, size_t size) {
  void *moved = NULL;
  switch (kind) {
    case KIND_RAW:
      return PyMem_RawRealloc(ptr, size);
    case KIND_MEM:
      return PyMem_Realloc(ptr, size);
    case KIND_OBJ:
      return PyObject_Realloc(ptr, size);
    case KIND_RAW_NOGIL:
      Py_BEGIN_ALLOW_THREADS moved = PyMem_RawRealloc(ptr, size);
      Py_END_ALLOW_THREADS return moved;
    default:
      return NULL;
  }
}

/* start(nframe=1, sample_bytes=0, seed=0, fork_mode=0) -> the return code */
static PyObject *probe_start(PyObject *self, PyObject *args) {
  (void)self;
  leak_tracer_options options = LEAK_TRACER_OPTIONS_INIT;
  if (!PyArg_ParseTuple(args, "|iLKi", &options.nframe, &options.sample_bytes, &options.seed, &options.fork_mode))
    return NULL;
  return PyLong_FromLong(leak_tracer_start(&options));
}

static PyObject *probe_stop(PyObject *self, PyObject *args) {
  (void)self, (void)args;
  return PyLong_FromLong(leak_tracer_stop());
}

static PyObject *probe_clear(PyObject *self, PyObject *args) {
  (void)self, (void)args;
  return PyLong_FromLong(leak_tracer_clear());
}

/* alloc(kind, size, zeroed=False) -> address */
static PyObject *probe_alloc(PyObject *self, PyObject *args) {
  (void)self;
  const char *name;
  Py_ssize_t size;
  int zeroed = 0;
  if (!PyArg_ParseTuple(args, "sn|p", &name, &size, &zeroed)) return NULL;
  alloc_kind kind = parse_kind(name);
  if (kind == KIND_BAD) return PyErr_Format(PyExc_ValueError, "bad kind %s", name);
  void *ptr = kind_malloc(kind, (size_t)size, zeroed);
  if (ptr == NULL) return PyErr_NoMemory();
  return PyLong_FromVoidPtr(ptr);
}

/* free(kind, address) */
static PyObject *probe_free(PyObject *self, PyObject *args) {
  (void)self;
  const char *name;
  PyObject *address;
  if (!PyArg_ParseTuple(args, "sO", &name, &address)) return NULL;
  kind_free(parse_kind(name), PyLong_AsVoidPtr(address));
  Py_RETURN_NONE;
}

/* realloc(kind, address, size) -> new address, or None when it failed */
static PyObject *probe_realloc(PyObject *self, PyObject *args) {
  (void)self;
  const char *name;
  PyObject *address;
  Py_ssize_t size;
  if (!PyArg_ParseTuple(args, "sOn", &name, &address, &size)) return NULL;
  void *moved = kind_realloc(parse_kind(name), PyLong_AsVoidPtr(address), (size_t)size);
  if (moved == NULL) Py_RETURN_NONE;
  return PyLong_FromVoidPtr(moved);
}

/* The frames of a stack id as [(co_name, lineno), ...] plus the depth of the whole stack. */
static PyObject *stack_as_python(leak__stack_id id) {
  const leak__frame *frames;
  int nframe, depth;
  if (leak__stacks_lookup_depth(id, &frames, &nframe, &depth) < 0)
    return PyErr_Format(PyExc_LookupError, "unknown stack %u", (unsigned)id);
  PyObject *list = PyList_New(nframe);
  if (list == NULL) return NULL;
  for (int i = 0; i < nframe; i++)
    PyList_SET_ITEM(list, i,
                    Py_BuildValue("(Oi)", frames[i].code->co_name,
                                  leak__frame_lineno(frames[i].code, frames[i].lasti)));
  return Py_BuildValue("(Ni)", list, depth);
}

/* trace(address, domain=0) -> None or (size, weight, [(name, lineno)...], depth, stack_id) */
static PyObject *probe_trace(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *address;
  unsigned domain = 0;
  if (!PyArg_ParseTuple(args, "O|I", &address, &domain)) return NULL;
  uintptr_t ptr = (uintptr_t)PyLong_AsVoidPtr(address);
  leak__trace_copy *copy;
  size_t count;
  if (leak__tracer_copy_traces(&copy, &count) < 0) return PyErr_NoMemory();
  PyObject *result = Py_None;
  Py_INCREF(result);
  for (size_t i = 0; i < count; i++) {
    if (copy[i].ptr != ptr || copy[i].domain != domain) continue;
    PyObject *stack = stack_as_python(copy[i].stack);
    Py_DECREF(result);
    result = stack ? Py_BuildValue("(KdNI)", (unsigned long long)copy[i].size, copy[i].weight, stack,
                                   (unsigned)copy[i].stack)
                   : NULL;
    break;
  }
  leak__free(copy);
  leak__stacks_unpin();
  if (result != NULL && result != Py_None) {
    /* flatten (size, weight, (frames, depth), id) into (size, weight, frames, depth, id) */
    PyObject *flat = Py_BuildValue("(OOOOO)", PyTuple_GET_ITEM(result, 0), PyTuple_GET_ITEM(result, 1),
                                   PyTuple_GET_ITEM(PyTuple_GET_ITEM(result, 2), 0),
                                   PyTuple_GET_ITEM(PyTuple_GET_ITEM(result, 2), 1), PyTuple_GET_ITEM(result, 3));
    Py_DECREF(result);
    result = flat;
  }
  return result;
}

/* summary() -> (count, sum of sizes, sum of weights, sum of size*weight) over all traces */
static PyObject *probe_summary(PyObject *self, PyObject *args) {
  (void)self, (void)args;
  leak__trace_copy *copy;
  size_t count;
  if (leak__tracer_copy_traces(&copy, &count) < 0) return PyErr_NoMemory();
  unsigned long long bytes = 0;
  double weights = 0, weighted_bytes = 0;
  for (size_t i = 0; i < count; i++) {
    bytes += copy[i].size;
    weights += copy[i].weight;
    weighted_bytes += copy[i].weight * (double)copy[i].size;
  }
  leak__free(copy);
  leak__stacks_unpin();
  return Py_BuildValue("(nKdd)", (Py_ssize_t)count, bytes, weights, weighted_bytes);
}

/* consistency() -> (traces, their bytes, live-trace counter, traced-memory counter), read back to back
 * with no Python code in between */
static PyObject *probe_consistency(PyObject *self, PyObject *args) {
  (void)self, (void)args;
  leak__trace_copy *copy;
  size_t count, current;
  if (leak__tracer_copy_traces(&copy, &count) < 0) return PyErr_NoMemory();
  leak_tracer_traced_memory(&current, NULL);
  size_t counted = leak__tracer_trace_count();
  unsigned long long bytes = 0;
  for (size_t i = 0; i < count; i++) bytes += copy[i].size;
  leak__free(copy);
  leak__stacks_unpin();
  return Py_BuildValue("(nKnn)", (Py_ssize_t)count, bytes, (Py_ssize_t)counted, (Py_ssize_t)current);
}

/* traces() -> [(address, size, domain), ...] */
static PyObject *probe_traces(PyObject *self, PyObject *args) {
  (void)self, (void)args;
  leak__trace_copy *copy;
  size_t count;
  if (leak__tracer_copy_traces(&copy, &count) < 0) return PyErr_NoMemory();
  PyObject *list = PyList_New(0);
  for (size_t i = 0; list != NULL && i < count; i++) {
    PyObject *item = Py_BuildValue("(KKI)", (unsigned long long)copy[i].ptr, (unsigned long long)copy[i].size,
                                   (unsigned)copy[i].domain);
    if (item == NULL || PyList_Append(list, item) < 0) Py_CLEAR(list);
    Py_XDECREF(item);
  }
  leak__free(copy);
  leak__stacks_unpin();
  return list;
}

/* counters() -> (current, peak, live traces, dropped, tracer memory) */
static PyObject *probe_counters(PyObject *self, PyObject *args) {
  (void)self, (void)args;
  size_t current, peak, memory;
  uint64_t dropped;
  leak_tracer_traced_memory(&current, &peak);
  leak_tracer_dropped(&dropped);
  leak_tracer_memory(&memory);
  return Py_BuildValue("(nnnKn)", (Py_ssize_t)current, (Py_ssize_t)peak, (Py_ssize_t)leak__tracer_trace_count(),
                       (unsigned long long)dropped, (Py_ssize_t)memory);
}

/* track(domain, address, size, nogil=False) / untrack(domain, address) -> return code */
static PyObject *probe_track(PyObject *self, PyObject *args) {
  (void)self;
  unsigned domain;
  unsigned long long address;
  Py_ssize_t size;
  int nogil = 0;
  if (!PyArg_ParseTuple(args, "IKn|p", &domain, &address, &size, &nogil)) return NULL;
  int rc;
  if (nogil) {
    Py_BEGIN_ALLOW_THREADS rc = leak_track(domain, (uintptr_t)address, (size_t)size);
    Py_END_ALLOW_THREADS
  } else {
    rc = leak_track(domain, (uintptr_t)address, (size_t)size);
  }
  return PyLong_FromLong(rc);
}

static PyObject *probe_untrack(PyObject *self, PyObject *args) {
  (void)self;
  unsigned domain;
  unsigned long long address;
  if (!PyArg_ParseTuple(args, "IK", &domain, &address)) return NULL;
  return PyLong_FromLong(leak_untrack(domain, (uintptr_t)address));
}

/* object_trace(obj) -> None or ([(name, lineno)...], depth) */
static PyObject *probe_object_trace(PyObject *self, PyObject *obj) {
  (void)self;
  leak__stack_id id;
  if (leak__tracer_object_stack(obj, &id) < 0) Py_RETURN_NONE;
  return stack_as_python(id);
}

/* fail_after(n): leak__alloc_fail_after */
static PyObject *probe_fail_after(PyObject *self, PyObject *arg) {
  (void)self;
  leak__alloc_fail_after(PyLong_AsLong(arg));
  Py_RETURN_NONE;
}

/* queue_from(capacity): exact mode queues its table updates from that table size on (next start) */
static PyObject *probe_queue_from(PyObject *self, PyObject *arg) {
  (void)self;
  size_t capacity = PyLong_AsSize_t(arg);
  if (capacity == (size_t)-1 && PyErr_Occurred()) return NULL;
  leak__tracer_queue_from(capacity);
  Py_RETURN_NONE;
}

static PyObject *probe_stack_count(PyObject *self, PyObject *args) {
  (void)self, (void)args;
  return PyLong_FromSize_t(leak__stacks_count());
}

static PyMethodDef probe_methods[] = {
    {"start", probe_start, METH_VARARGS, NULL},
    {"stop", probe_stop, METH_NOARGS, NULL},
    {"clear", probe_clear, METH_NOARGS, NULL},
    {"alloc", probe_alloc, METH_VARARGS, NULL},
    {"free", probe_free, METH_VARARGS, NULL},
    {"realloc", probe_realloc, METH_VARARGS, NULL},
    {"trace", probe_trace, METH_VARARGS, NULL},
    {"summary", probe_summary, METH_NOARGS, NULL},
    {"counters", probe_counters, METH_NOARGS, NULL},
    {"consistency", probe_consistency, METH_NOARGS, NULL},
    {"traces", probe_traces, METH_NOARGS, NULL},
    {"track", probe_track, METH_VARARGS, NULL},
    {"untrack", probe_untrack, METH_VARARGS, NULL},
    {"object_trace", probe_object_trace, METH_O, NULL},
    {"fail_after", probe_fail_after, METH_O, NULL},
    {"stack_count", probe_stack_count, METH_NOARGS, NULL},
    {"queue_from", probe_queue_from, METH_O, NULL},
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef probe_module = {PyModuleDef_HEAD_INIT, "_tprobe", NULL, -1, probe_methods};
static PyObject *probe_init(void) { return PyModule_Create(&probe_module); }

void tracer_probe_start_python(void) {
  PyImport_AppendInittab("_tprobe", probe_init);
  test_python_start();
  ASSERT_EQ(test_python_run("import sys, _tprobe\n"
                            "def here():\n"
                            "    return sys._getframe(1).f_lineno\n"),
            0);
}
