/* Shared glue for the _libleak extension: one exception mapping, and the areas' entry points.
 *
 * The extension is thin: each area (faults, tracer, ...) parses arguments, calls the C core, and
 * hands back plain tuples, ints and strings; the Python package wraps them. */
#ifndef LIBLEAK_PYBIND_GLUE_H
#define LIBLEAK_PYBIND_GLUE_H

#include "core/internal.h"

/* libleak.Error and libleak.FormatError (created at module init; owned by the module). */
extern PyObject *leak__py_error;
extern PyObject *leak__py_format_error;

/* Raises the Python exception that matches a LEAK_E* code, with `context` leading the message, and
 * returns NULL so callers can `return leak__py_raise(rc, "...")`.  LEAK_EPYTHON means an exception
 * is already set and is left as it is. */
PyObject *leak__py_raise(int code, const char *context);

/* One area of the extension: its functions and an init hook run at import (NULL: none). */
typedef struct leak__py_area {
  PyMethodDef *methods;
  int (*init)(PyObject *module);
} leak__py_area;

/* The faults area: stack dumps, fatal-signal handlers, watchdogs (pybind/faults.c). */
extern const leak__py_area leak__py_faults_area;

/* The tracer area: allocation tracing and snapshots (pybind/tracer.c). */
extern const leak__py_area leak__py_tracer_area;

/* The extension-buffers area: PyTraceMalloc_Track imports redirected to the tracer
 * (pybind/extbuffers.c). */
extern const leak__py_area leak__py_extbuffers_area;

/* The heap area: censuses, and objects picked out of the heap (pybind/heap.c). */
extern const leak__py_area leak__py_heap_area;

/* The refs area: why objects are alive (pybind/refs.c). */
extern const leak__py_area leak__py_refs_area;
/* The rendering area: Graphviz pictures in process and dominator trees (pybind/render.c). */
extern const leak__py_area leak__py_render_area;
/* The deep-size area: libleak.asizeof (pybind/deepsize.c). */
extern const leak__py_area leak__py_deepsize_area;
/* The class-tracking area: pympler's ClassTracker at the C level (pybind/classtrack.c). */
extern const leak__py_area leak__py_classtrack_area;
/* The profile area: the CPU sampler and the profile writers (pybind/profile.c). */
extern const leak__py_area leak__py_profile_area;

/* The chains area: objgraph's reference chains and graph neighbours (pybind/chains.c). */
extern const leak__py_area leak__py_chains_area;

/* The on-demand area: the signal that wakes libleak.ondemand's dump thread (pybind/ondemand.c). */
extern const leak__py_area leak__py_ondemand_area;

#endif
