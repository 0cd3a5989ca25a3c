/* The frame reader.  Read libleak/frames.h first.
 *
 * Each CPython version gets three small static functions: where a thread's innermost frame is, the
 * next older frame, and how to turn one frame into (code, byte offset) or say it must be skipped.
 * Nothing outside this file depends on which version is being read.
 *
 * Rules for every function here: no allocation, no locks, no Python API calls that could allocate
 * or take locks (PyCode_Addr2Line is the one API call, and only in leak__frame_lineno). */
/* The internal headers that describe frames need Py_BUILD_CORE, and it must be set before Python.h
 * is first included; this file is the only one that sets it. */
#define Py_BUILD_CORE 1
#include "internal.h"
#include "frames.h"

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
