/* The frame reader.  Read core/frames.h first.
 *
 * Each CPython version gets three small static functions: where a thread's innermost frame is, the
 * next older frame, and how to turn one frame into (code, byte offset) or say it must be skipped.
 * Nothing outside this file depends on which version is being read.
 *
 * Rules for every function here: no allocation, no locks, no Python API calls that could allocate
 * or take locks (PyCode_Addr2Line is the one API call, and only in leak__frame_lineno).  The line
 * tables at the end are the exception, and say so. */
/* The internal headers that describe frames need Py_BUILD_CORE, and it must be set before Python.h
 * is first included; this file is the only one that sets it. */
#define Py_BUILD_CORE 1
#include "core/internal.h"
#include "core/frames.h"

#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_frame.h>
typedef struct _PyInterpreterFrame raw_frame;
#else
#include <frameobject.h>
typedef PyFrameObject raw_frame;
#endif
#if PY_VERSION_HEX >= 0x03090000
#include <internal/pycore_interp.h>
#else
#include <internal/pycore_pystate.h>
#endif

/* ---- Per-version layout ------------------------------------------------------------------- */

#if PY_VERSION_HEX >= 0x030D0000 /* 3.13 */

static raw_frame *innermost_frame(PyThreadState *tstate) { return tstate->current_frame; }

static raw_frame *older_frame(raw_frame *frame) { return frame->previous; }

/* 3.13 frames may run things that are not code objects (f_executable), and entry shims sit on
 * the C stack; both are skipped, as are frames that have not reached their first real instruction. */
static int describe_frame(raw_frame *frame, leak__frame *out) {
  if (frame->owner == FRAME_OWNED_BY_CSTACK) return 0;
  PyObject *executable = frame->f_executable;
  if (executable == NULL || !PyCode_Check(executable)) return 0;
  PyCodeObject *code = (PyCodeObject *)executable;
  _Py_CODEUNIT *first = _PyCode_CODE(code);
  if (frame->owner != FRAME_OWNED_BY_GENERATOR && frame->instr_ptr < first + code->_co_firsttraceable)
    return 0;
  out->code = code;
  out->lasti = (int32_t)((frame->instr_ptr - first) * (int32_t)sizeof(_Py_CODEUNIT));
  return 1;
}

/* What describe_frame returns, without describing: for counting a stack's depth. */
static inline int frame_counts(raw_frame *frame) {
  PyObject *executable = frame->f_executable;
  if (LEAK_UNLIKELY(executable == NULL || !PyCode_Check(executable))) return 0;
  PyCodeObject *code = (PyCodeObject *)executable;
  /* the usual case first: a frame past its first traceable instruction (unless it is a C-stack shim) */
  if (LEAK_LIKELY(frame->instr_ptr >= _PyCode_CODE(code) + code->_co_firsttraceable))
    return frame->owner != FRAME_OWNED_BY_CSTACK;
  return frame->owner == FRAME_OWNED_BY_GENERATOR;
}

#elif PY_VERSION_HEX >= 0x030B0000 /* 3.11, 3.12 */

static raw_frame *innermost_frame(PyThreadState *tstate) {
  return tstate->cframe ? tstate->cframe->current_frame : NULL;
}

static raw_frame *older_frame(raw_frame *frame) { return frame->previous; }

/* Skips entry shims (3.12) and incomplete frames, the same test as _PyFrame_IsIncomplete. */
static int describe_frame(raw_frame *frame, leak__frame *out) {
#if PY_VERSION_HEX >= 0x030C0000
  if (frame->owner == FRAME_OWNED_BY_CSTACK) return 0;
#endif
  PyCodeObject *code = frame->f_code;
  if (code == NULL) return 0;
  _Py_CODEUNIT *first = _PyCode_CODE(code);
  if (frame->owner != FRAME_OWNED_BY_GENERATOR && frame->prev_instr < first + code->_co_firsttraceable)
    return 0;
  out->code = code;
  out->lasti = (int32_t)((frame->prev_instr - first) * (int32_t)sizeof(_Py_CODEUNIT));
  return 1;
}

/* What describe_frame returns, without describing: for counting a stack's depth. */
static inline int frame_counts(raw_frame *frame) {
  /* No NULL test of f_code here (it costs a sixth of the loop): a frame is linked into the chain
   * only after _PyFrame_InitializeSpecials set its code (3.11, 3.12), and CPython's own walk
   * (_PyFrame_IsIncomplete, used by tracemalloc) reads it unconditionally; describe_frame's test
   * is defensive only. */
  PyCodeObject *code = frame->f_code;
  /* the usual case first: a frame past its first traceable instruction */
  if (LEAK_LIKELY(frame->prev_instr >= _PyCode_CODE(code) + code->_co_firsttraceable)) {
#if PY_VERSION_HEX >= 0x030C0000
    return frame->owner != FRAME_OWNED_BY_CSTACK;
#else
    return 1;
#endif
  }
  return frame->owner == FRAME_OWNED_BY_GENERATOR;
}

#else /* 3.8, 3.9, 3.10: frames are PyFrameObjects linked by f_back */

static raw_frame *innermost_frame(PyThreadState *tstate) { return tstate->frame; }

static raw_frame *older_frame(raw_frame *frame) { return frame->f_back; }

/* f_lasti counts bytes up to 3.9 and code units in 3.10; -1 means the frame has not started. */
static int describe_frame(raw_frame *frame, leak__frame *out) {
  if (frame->f_code == NULL) return 0;
  out->code = frame->f_code;
#if PY_VERSION_HEX >= 0x030A0000
  out->lasti = frame->f_lasti < 0 ? -1 : frame->f_lasti * (int32_t)sizeof(_Py_CODEUNIT);
#else
  out->lasti = frame->f_lasti;
#endif
  return 1;
}

/* What describe_frame returns, without describing: for counting a stack's depth. */
static inline int frame_counts(raw_frame *frame) { return frame->f_code != NULL; }

#endif

/* ---- Version-independent walking ---------------------------------------------------------- */

PyThreadState *leak__frames_this_thread(void) { return PyGILState_GetThisThreadState(); }

void leak__frames_begin(leak__frame_cursor *cursor, PyThreadState *tstate) {
  cursor->next = tstate ? innermost_frame(tstate) : NULL;
}

int leak__frames_next(leak__frame_cursor *cursor, leak__frame *out) {
  raw_frame *frame = cursor->next;
  while (frame != NULL) {
    raw_frame *older = older_frame(frame);
    if (describe_frame(frame, out)) {
      cursor->next = older;
      return 1;
    }
    frame = older;
  }
  cursor->next = NULL;
  return 0;
}

int leak__frames_read(PyThreadState *tstate, leak__frame *out, int max) {
  if (tstate == NULL) return 0;
  int stored = 0;
  for (raw_frame *frame = innermost_frame(tstate); frame != NULL && stored < max; frame = older_frame(frame))
    stored += describe_frame(frame, &out[stored]);
  return stored;
}

/* Two loops: the first stores, the second only counts what the first would have stored (the cost of
 * an exact total_nframe: a few instructions per frame below the stored ones). */
int leak__frames_read_depth(PyThreadState *tstate, leak__frame *out, int max, int depth_limit, int *depth) {
  *depth = 0;
  if (tstate == NULL) return 0;
  leak__frame *next = out, *end = out + (max > 0 ? max : 0);
  raw_frame *frame = innermost_frame(tstate);
  for (; frame != NULL && next < end; frame = older_frame(frame)) next += describe_frame(frame, next);
  int stored = (int)(next - out);
  /* No limit test in the loop (it costs as much as the rest of it): the count is clamped after. */
  int counted = stored;
  for (; frame != NULL; frame = older_frame(frame)) counted += frame_counts(frame);
  *depth = counted < depth_limit ? counted : depth_limit;
  return stored;
}

int leak__frames_depth(PyThreadState *tstate) {
  leak__frame_cursor cursor;
  leak__frame ignored;
  int depth = 0;
  leak__frames_begin(&cursor, tstate);
  while (leak__frames_next(&cursor, &ignored)) depth++;
  return depth;
}

int leak__frame_lineno(PyCodeObject *code, int32_t lasti) {
  if (lasti < 0) return code->co_firstlineno;
  return PyCode_Addr2Line(code, lasti);
}

unsigned long leak__frames_thread_id(PyThreadState *tstate) { return tstate->thread_id; }

int leak__frames_gc_collecting(PyThreadState *tstate) {
#if PY_VERSION_HEX >= 0x03090000
  return tstate->interp->gc.collecting != 0;
#else
  return _PyRuntime.gc.collecting != 0;
#endif
}

/* ---- Added for the stack dumper ----------------------------------------------------------- */

#if PY_VERSION_HEX >= 0x03090000
#include <internal/pycore_runtime.h> /* _PyRuntime moved out of pycore_pystate.h in 3.9 */
#endif

/* The dumper prints the main thread first; CPython records its id in the runtime state (the thread
 * that initialised Python, updated in a forked child), the same field _Py_IsMainThread reads. */
unsigned long leak__frames_main_thread_id(void) { return _PyRuntime.main_thread; }

/* A plain field read: PyThreadState_GetInterpreter is an API call, which signal handlers avoid. */
PyInterpreterState *leak__frames_interpreter(PyThreadState *tstate) { return tstate->interp; }

/* What PyInterpreterState_Main returns, without the call; NULL before init and after finalisation,
 * which the watchdog uses to stop dumping a finalised interpreter. */
PyInterpreterState *leak__frames_main_interpreter(void) { return _PyRuntime.interpreters.main; }

/* The list of extension modules after a fatal error reads sys.modules and sys.__dict__ from the
 * interpreter, as CPython's own dumper does: the import state got its own struct in 3.12. */
PyObject *leak__frames_sys_modules(PyInterpreterState *interp) {
#if PY_VERSION_HEX >= 0x030C0000
  return interp->imports.modules;
#else
  return interp->modules;
#endif
}

PyObject *leak__frames_sys_dict(PyInterpreterState *interp) { return interp->sysdict; }

/* The set's hash table, slot by slot (the layout of PySetObject is the same on 3.8 - 3.13): empty
 * slots have no key, deleted ones a dummy key that is not a str, which the caller skips. */
int leak__frames_set_next(PyObject *set, Py_ssize_t *pos, PyObject **item) {
  PySetObject *so = (PySetObject *)set;
  while (*pos <= so->mask) {
    PyObject *key = so->table[*pos].key;
    (*pos)++;
    if (key != NULL) {
      *item = key;
      return 1;
    }
  }
  return 0;
}

/* ---- Added by the tracer: where an object's memory block starts ----------------------------- */

#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_object.h>
#endif

/* 3.11+ count the GC header and the managed pre-header together (_PyType_PreHeaderSize); before,
 * only GC objects have a header, a PyGC_Head. */
uintptr_t leak__object_block_address(PyObject *obj) {
#if PY_VERSION_HEX >= 0x030B0000
  return (uintptr_t)obj - _PyType_PreHeaderSize(Py_TYPE(obj));
#else
  return (uintptr_t)obj - (PyType_IS_GC(Py_TYPE(obj)) ? sizeof(PyGC_Head) : 0);
#endif
}

/* Managed dicts (3.11+) sit before the object, each version in its own layout; other dicts are at
 * tp_dictoffset, where _PyObject_GetDictPtr finds them without creating anything. */
PyObject *leak__object_existing_dict(PyObject *obj) {
#if PY_VERSION_HEX >= 0x030B0000
  if (Py_TYPE(obj)->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
#if PY_VERSION_HEX >= 0x030D0000
    return (PyObject *)_PyObject_GetManagedDict(obj);
#elif PY_VERSION_HEX >= 0x030C0000
    PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(obj);
    return _PyDictOrValues_IsValues(dorv) ? NULL : _PyDictOrValues_GetDict(dorv);
#else
    return *_PyObject_ManagedDictPointer(obj);
#endif
  }
#endif
  PyObject **dict = _PyObject_GetDictPtr(obj);
  return dict != NULL ? *dict : NULL;
}

/* ---- Line tables --------------------------------------------------------------------------- */

/* Unlike the readers above, building a table runs outside hot paths (when a snapshot is taken, the
 * GIL held): it calls the Python API and allocates, with leak__malloc.  Looking a line up does
 * neither.  Per-version code again: the line table format changed in 3.10 (PEP 626). */

/* A table under construction: ranges appended by increasing start, in one block that grows. */
typedef struct line_table_builder {
  leak__line_table *table;
  uint32_t cap;
} line_table_builder;

/* Appends the range starting at `start`.  A range starting where the last one did replaces it (the
 * last one was empty).  Returns 0, LEAK_ENOMEM, or LEAK_EPYTHON when starts go backwards, which
 * would break the bisection: the caller then falls back to walking. */
static int line_table_append(line_table_builder *b, int32_t start, int32_t line) {
  leak__line_table *t = b->table;
  if (t->count > 0) {
    leak__line_range *last = &t->ranges[t->count - 1];
    if (start < last->start) return LEAK_EPYTHON;
    if (start == last->start) {
      last->line = line;
      return 0;
    }
  }
  if (t->count == b->cap) {
    uint32_t cap = b->cap ? 2 * b->cap : 16;
    if (cap > (UINT32_MAX - sizeof(*t)) / sizeof(leak__line_range) / 2) return LEAK_ENOMEM;
    t = leak__realloc(t, sizeof(*t) + (size_t)cap * sizeof(leak__line_range));
    if (t == NULL) return LEAK_ENOMEM;
    b->table = t;
    b->cap = cap;
  }
  t->ranges[t->count++] = (leak__line_range){start, line};
  return 0;
}

/* Merges neighbours on the same line (a line spans many instructions) and gives the spare room
 * back, so the table costs about 8 bytes per line change. */
static void line_table_compact(line_table_builder *b) {
  leak__line_table *t = b->table;
  uint32_t kept = 0;
  for (uint32_t i = 0; i < t->count; i++)
    if (kept == 0 || t->ranges[kept - 1].line != t->ranges[i].line) t->ranges[kept++] = t->ranges[i];
  t->count = kept;
  leak__line_table *shrunk = leak__realloc(t, sizeof(*t) + (size_t)(kept ? kept : 1) * sizeof(leak__line_range));
  if (shrunk != NULL) b->table = shrunk;
}

#if PY_VERSION_HEX >= 0x030A0000

/* 3.10+ (PEP 626): code.co_lines() yields (start, end, line), line None where an instruction has
 * no line.  PyCode_Addr2Line answers -1 there and past the last range, and for an offset in a gap
 * between two ranges (none are seen in practice) the line of the range before it: so each range
 * becomes its start, and the end of the last one a final range on line -1. */
static int line_table_decode(PyCodeObject *code, line_table_builder *b) {
  b->table->uncovered = -1;
  PyObject *lines = PyObject_CallMethod((PyObject *)code, "co_lines", NULL);
  if (lines == NULL) return LEAK_EPYTHON;
  PyObject *iterator = PyObject_GetIter(lines);
  Py_DECREF(lines);
  if (iterator == NULL) return LEAK_EPYTHON;
  int rc = 0, any = 0;
  long end = 0;
  PyObject *item;
  while (rc == 0 && (item = PyIter_Next(iterator)) != NULL) {
    long start = -1, line = -1;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
      rc = LEAK_EPYTHON;
    } else {
      start = PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
      end = PyLong_AsLong(PyTuple_GET_ITEM(item, 1));
      PyObject *number = PyTuple_GET_ITEM(item, 2);
      if (number != Py_None) line = PyLong_AsLong(number);
      if (PyErr_Occurred() || start < 0 || end < start || end > INT32_MAX || line < -1 || line > INT32_MAX)
        rc = LEAK_EPYTHON;
    }
    Py_DECREF(item);
    if (rc == 0) rc = line_table_append(b, (int32_t)start, (int32_t)line);
    any = 1;
  }
  Py_DECREF(iterator);
  if (rc == 0 && PyErr_Occurred()) rc = LEAK_EPYTHON;
  if (rc == 0 && any) rc = line_table_append(b, (int32_t)end, -1);
  return rc;
}

#else

/* 3.8, 3.9: co_lnotab holds (address increment, line increment) byte pairs, the line increment
 * signed (Objects/lnotab_notes.txt).  PyCode_Addr2Line adds up every pair whose address is at or
 * before the offset, starting from co_firstlineno at address 0; past the end it keeps the last
 * line.  Pairs at the same address (long jumps are split into several) fold into one range. */
static int line_table_decode(PyCodeObject *code, line_table_builder *b) {
  PyObject *lnotab = code->co_lnotab;
  if (lnotab == NULL || !PyBytes_Check(lnotab)) return LEAK_EPYTHON;
  const unsigned char *pairs = (const unsigned char *)PyBytes_AS_STRING(lnotab);
  Py_ssize_t npairs = PyBytes_GET_SIZE(lnotab) / 2;
  int32_t address = 0, line = code->co_firstlineno;
  b->table->uncovered = line;
  int rc = line_table_append(b, 0, line);
  for (Py_ssize_t i = 0; rc == 0 && i < npairs; i++) {
    address += pairs[2 * i];
    line += (signed char)pairs[2 * i + 1];
    rc = line_table_append(b, address, line);
  }
  return rc;
}

#endif

int leak__line_table_new(PyCodeObject *code, leak__line_table **out) {
  *out = NULL;
  line_table_builder b = {leak__malloc(sizeof(leak__line_table) + 16 * sizeof(leak__line_range)), 16};
  if (b.table == NULL) return LEAK_ENOMEM;
  b.table->first_line = code->co_firstlineno;
  b.table->count = 0;
  int rc = line_table_decode(code, &b);
  if (rc < 0) {
    PyErr_Clear();
    leak__free(b.table);
    return rc;
  }
  line_table_compact(&b);
  *out = b.table;
  return 0;
}

/* The last range starting at or before `lasti`, by bisection. */
int leak__line_table_lookup(const leak__line_table *table, int32_t lasti) {
  if (lasti < 0) return table->first_line;
  uint32_t low = 0, high = table->count; /* ranges[low..high) may hold the answer */
  while (low < high) {
    uint32_t middle = low + (high - low) / 2;
    if (table->ranges[middle].start <= lasti)
      low = middle + 1;
    else
      high = middle;
  }
  return low == 0 ? table->uncovered : table->ranges[low - 1].line;
}

void leak__line_table_free(leak__line_table *table) { leak__free(table); }
