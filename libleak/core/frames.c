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

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_frame.h>
typedef struct _PyInterpreterFrame raw_frame;
#else
#include <frameobject.h>
typedef PyFrameObject raw_frame;
#endif
#if PY_VERSION_HEX >= 0x03090000
#include <internal/pycore_interp.h>
#endif
#if PY_VERSION_HEX < 0x03090000 || (PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000)
#include <internal/pycore_pystate.h> /* 3.12: _PyThreadState_GetCurrent */
#endif

/* ---- Reads that cannot fault ------------------------------------------------------------------ */

/* Copies `size` bytes at `from` to `to`; -1 when they are not all readable.  A system call
 * (process_vm_readv on this very process) because a signal handler cannot survive a fault.
 * Async-signal-safe. */
static int read_checked(void *to, const void *from, size_t size) {
  struct iovec local = {to, size}, remote = {(void *)from, size};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)size ? 0 : -1;
}

/* 1 when read_checked works here, 0 when the system refuses it (seccomp, ENOSYS), -1 not known yet. */
static int checked_reads = -1;

/* Whether read_checked works here, asked of the system once. */
static int checked_reads_work(void) {
  int usable = __atomic_load_n(&checked_reads, __ATOMIC_RELAXED);
  if (usable < 0) {
    int probe = 1, copy = 0;
    usable = read_checked(&copy, &probe, sizeof probe) == 0 && copy == 1;
    __atomic_store_n(&checked_reads, usable, __ATOMIC_RELAXED);
  }
  return usable;
}

/* ---- Per-version layout ------------------------------------------------------------------- */

#if PY_VERSION_HEX >= 0x030D0000 /* 3.13 */

static raw_frame *innermost_frame(PyThreadState *tstate) { return tstate->current_frame; }

/* 3.13 links a frame (its `previous` set) before it publishes it in tstate->current_frame, so the
 * innermost frame is never caught half made. */
static int innermost_frame_checked(PyThreadState *tstate, raw_frame **top) {
  *top = tstate->current_frame;
  return 1;
}

static raw_frame *older_frame(raw_frame *frame) { return frame->previous; }

/* See copy_frame_checked's use in leak__frames_next.  Entry shims are kept (their executable is not
 * code, and they are skipped when described); every other frame must run a code object.  A
 * generator's frame without a caller has yielded since (suspending unlinks it). */
static int copy_frame_checked(raw_frame *frame, raw_frame *copy) {
  if (read_checked(copy, frame, offsetof(raw_frame, localsplus)) < 0) return 0;
  if (copy->owner == FRAME_OWNED_BY_CSTACK) return 1;
  if (copy->owner == FRAME_OWNED_BY_GENERATOR && copy->previous == NULL) return 0;
  PyObject head;
  return copy->f_executable != NULL && read_checked(&head, copy->f_executable, sizeof head) == 0 &&
         head.ob_type == &PyCode_Type;
}

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

/* Whether `top`, read from tstate->cframe->current_frame by a signal handler, is the frame the thread
 * runs.  Every field is read with read_checked.  The frame must hold a code object, and be either on
 * the thread's live data stack or the frame of a generator (or coroutine) that is executing: an
 * uninitialised pointer is left-over stack memory, most often a stale pointer to a frame that has
 * since returned, and such a frame passes neither test. */
static int running_frame(PyThreadState *tstate, raw_frame *top) {
  raw_frame frame;
  PyObject code_head;
  if (read_checked(&frame, top, offsetof(raw_frame, localsplus)) < 0 || frame.f_code == NULL ||
      read_checked(&code_head, frame.f_code, sizeof code_head) < 0 || code_head.ob_type != &PyCode_Type)
    return 0;
  if (frame.owner == FRAME_OWNED_BY_THREAD) {
    _PyStackChunk *chunk = tstate->datastack_chunk;
    return chunk != NULL && (char *)top >= (char *)chunk->data && (PyObject **)top < tstate->datastack_top;
  }
  if (frame.owner == FRAME_OWNED_BY_GENERATOR) {
    PyGenObject *gen = (PyGenObject *)((char *)top - offsetof(PyGenObject, gi_iframe));
    int8_t state;
    return read_checked(&state, &gen->gi_frame_state, sizeof state) == 0 && state == FRAME_EXECUTING;
  }
  return 0;
}

/* The innermost frame, for a reader that may have caught the thread in the middle of anything: 1
 * with *top set (NULL for a thread with no frame), 0 when the thread is between two states.
 * CPython 3.11 and 3.12 publish a new C frame (tstate->cframe = &cframe) a few instructions before
 * they set its current_frame: a signal landing there finds an uninitialised pointer, often NULL
 * (the sampler crashed on one, entering generators from C); a generator that yields is marked
 * suspended before its C frame is left.  So a NULL frame is believed only at the thread's root C
 * frame, where a thread that runs no Python code is, and another only when running_frame() says
 * so.  A few system calls a read, on 3.11 and 3.12 only. */
static int innermost_frame_checked(PyThreadState *tstate, raw_frame **top) {
  _PyCFrame *cframe = tstate->cframe;
  *top = cframe != NULL ? cframe->current_frame : NULL;
  if (*top == NULL) return cframe == NULL || cframe == &tstate->root_cframe;
  if (!checked_reads_work() || running_frame(tstate, *top)) return 1;
  /* Not the previous C frame's current frame either: the compiler may publish the new C frame
   * before setting its `previous` too (seen on 3.11: both fields were left-over stack bytes). */
  *top = NULL;
  return 0;
}

static raw_frame *older_frame(raw_frame *frame) { return frame->previous; }

/* See copy_frame_checked's use in leak__frames_next.  3.12's entry shims are kept (they are skipped
 * when described); every frame must hold a code object.  A generator's frame without a caller has
 * returned or yielded since (both unlink it). */
static int copy_frame_checked(raw_frame *frame, raw_frame *copy) {
  if (read_checked(copy, frame, offsetof(raw_frame, localsplus)) < 0) return 0;
#if PY_VERSION_HEX >= 0x030C0000
  if (copy->owner == FRAME_OWNED_BY_CSTACK) return 1;
#endif
  if (copy->owner == FRAME_OWNED_BY_GENERATOR && copy->previous == NULL) return 0;
  PyObject head;
  return copy->f_code != NULL && read_checked(&head, copy->f_code, sizeof head) == 0 &&
         head.ob_type == &PyCode_Type;
}

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

/* 3.8 - 3.10 link a frame object (f_back set) before they publish it in tstate->frame. */
static int innermost_frame_checked(PyThreadState *tstate, raw_frame **top) {
  *top = tstate->frame;
  return 1;
}

static raw_frame *older_frame(raw_frame *frame) { return frame->f_back; }

/* See copy_frame_checked's use in leak__frames_next: the frame object's fixed part, which must name a
 * code object and be in its evaluation loop, as every frame of a running stack is (a frame that
 * returned, or a generator's that yielded, has left it, and may have been unlinked), or about to
 * enter it (a trace function's call event runs before). */
static int copy_frame_checked(raw_frame *frame, raw_frame *copy) {
  if (read_checked(copy, frame, offsetof(raw_frame, f_localsplus)) < 0) return 0;
#if PY_VERSION_HEX >= 0x030A0000
  if (copy->f_state != FRAME_EXECUTING && copy->f_state != FRAME_UNWINDING && copy->f_state != FRAME_CREATED)
    return 0;
#else
  if (!copy->f_executing && copy->f_lasti >= 0) return 0;
#endif
  PyObject head;
  return copy->f_code != NULL && read_checked(&head, copy->f_code, sizeof head) == 0 &&
         head.ob_type == &PyCode_Type;
}

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
  cursor->checked = 0;
  cursor->primed = 0;
  cursor->lost = 0;
}

/* The innermost frame of a thread that a signal handler interrupted: one caught between two
 * states cannot move on while the handler runs, so its stack reads as empty (a sampler drops it). */
static raw_frame *innermost_frame_interrupted(PyThreadState *tstate) {
  raw_frame *top;
  return innermost_frame_checked(tstate, &top) ? top : NULL;
}

void leak__frames_begin_interrupted(leak__frame_cursor *cursor, PyThreadState *tstate) {
  cursor->next = tstate ? innermost_frame_interrupted(tstate) : NULL;
  cursor->checked = 0;
  cursor->primed = 0;
  cursor->lost = 0;
}

/* A thread that runs on while another reads it leaves a between-states window within a few
 * instructions, unless it lost its CPU right there; and the frame it showed may have returned by
 * the time it is read (3.12 and 3.13 put entry shims on the C stack, which the next C call
 * overwrites).  So the innermost frame is read here, with checked reads (see leak__frames_next),
 * and kept in the cursor; when the thread is between two states, or its top frame returned before
 * it could be read, it is read again after a pause, for up to about 10 ms (the pauses of timed sleeps are longer than
 * asked).  errno is kept: signal handlers call this. */
#define SETTLE_PAUSE_NS 100000L
#define SETTLE_ATTEMPTS 100

void leak__frames_begin_running(leak__frame_cursor *cursor, PyThreadState *tstate) {
  int saved_errno = errno;
  cursor->next = NULL;
  cursor->checked = checked_reads_work();
  cursor->primed = 0;
  cursor->lost = 0;
  for (int attempt = 0; tstate != NULL; attempt++) {
    raw_frame *top;
    if (innermost_frame_checked(tstate, &top)) {
      if (top == NULL) break;
      cursor->next = top;
      if (leak__frames_next(cursor, &cursor->first)) {
        cursor->primed = 1;
        break;
      }
      if (!cursor->lost) break; /* a stack with no frame to show (all incomplete) */
      cursor->lost = 0;
    }
    if (attempt == SETTLE_ATTEMPTS) break;
    struct timespec pause = {0, SETTLE_PAUSE_NS};
    nanosleep(&pause, NULL);
  }
  errno = saved_errno;
}

/* A checked cursor walks a thread that runs on meanwhile: a frame below its top may return while it
 * is read, and its memory be reused (by another frame on the data stack, by other C calls for an
 * entry shim on the C stack), so each frame is copied with read_checked and must hold a code object
 * before anything it points to is followed.  A frame that fails ends the walk: the stack it belonged
 * to is gone. */
int leak__frames_next(leak__frame_cursor *cursor, leak__frame *out) {
  if (cursor->primed) {
    *out = cursor->first;
    cursor->primed = 0;
    return 1;
  }
  raw_frame *frame = cursor->next;
  raw_frame copy;
  while (frame != NULL) {
    raw_frame *view = frame;
    if (cursor->checked) {
      if (!copy_frame_checked(frame, &copy)) {
        cursor->lost = 1;
        break;
      }
      view = &copy;
    }
    raw_frame *older = older_frame(view);
    if (describe_frame(view, out)) {
      cursor->next = older;
      return 1;
    }
    frame = older;
  }
  cursor->next = NULL;
  return 0;
}

int leak__frames_lost(const leak__frame_cursor *cursor) { return cursor->lost; }

int leak__frames_read(PyThreadState *tstate, leak__frame *out, int max) {
  if (tstate == NULL) return 0;
  int stored = 0;
  for (raw_frame *frame = innermost_frame(tstate); frame != NULL && stored < max; frame = older_frame(frame))
    stored += describe_frame(frame, &out[stored]);
  return stored;
}

/* Two loops: the first stores, the second only counts what the first would have stored (the cost of
 * an exact total_nframe: a few instructions per frame below the stored ones). */
static inline int read_depth_from(raw_frame *frame, leak__frame *out, int max, int depth_limit, int *depth) {
  leak__frame *next = out, *end = out + (max > 0 ? max : 0);
  for (; frame != NULL && next < end; frame = older_frame(frame)) next += describe_frame(frame, next);
  int stored = (int)(next - out);
  /* No limit test in the loop (it costs as much as the rest of it): the count is clamped after. */
  int counted = stored;
  for (; frame != NULL; frame = older_frame(frame)) counted += frame_counts(frame);
  *depth = counted < depth_limit ? counted : depth_limit;
  return stored;
}

int leak__frames_read_depth(PyThreadState *tstate, leak__frame *out, int max, int depth_limit, int *depth) {
  *depth = 0;
  if (tstate == NULL) return 0;
  return read_depth_from(innermost_frame(tstate), out, max, depth_limit, depth);
}

int leak__frames_read_depth_interrupted(PyThreadState *tstate, leak__frame *out, int max, int depth_limit,
                                        int *depth) {
  *depth = 0;
  if (tstate == NULL) return 0;
  return read_depth_from(innermost_frame_interrupted(tstate), out, max, depth_limit, depth);
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

uint64_t leak__frames_thread_serial(PyThreadState *tstate) { return tstate->id; }

int leak__frames_native_thread_id(PyThreadState *tstate) {
#if PY_VERSION_HEX >= 0x030B0000
  return (int)tstate->native_thread_id;
#else
  (void)tstate;
  return 0;
#endif
}

int leak__frames_gc_collecting(PyThreadState *tstate) {
#if PY_VERSION_HEX >= 0x03090000
  return tstate->interp->gc.collecting != 0;
#else
  return _PyRuntime.gc.collecting != 0;
#endif
}

#if PY_VERSION_HEX >= 0x03090000
#include <internal/pycore_runtime.h> /* _PyRuntime moved out of pycore_pystate.h in 3.9 */
#endif

#if PY_VERSION_HEX < 0x030C0000
/* pthread_self of the calling thread, 0 until asked: CPython's thread_id of its thread states. */
static __thread unsigned long this_thread_ident LEAK_TLS_FAST;

/* Out of line, so that the common path needs no stack frame. */
static __attribute__((noinline)) unsigned long learn_this_thread_ident(void) {
  return this_thread_ident = (unsigned long)pthread_self();
}
#endif

/* 3.12+ keep the attached thread state in a thread-local (NULL while detached: without the GIL);
 * before, the runtime holds the GIL holder's state, which is ours when its thread id is.  A thread
 * that holds the GIL under another of its thread states (a subinterpreter) gets that one: the one
 * whose frames run. */
PyThreadState *leak__frames_this_thread_if_holding_gil(void) {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#elif PY_VERSION_HEX >= 0x030C0000
  return _PyThreadState_GetCurrent();
#else
  /* The field is an _Py_atomic_address, a uintptr_t (an _Atomic one under stdatomic.h); its macro
   * reader costs a dozen instructions with GCC's fallback, so the word is read as what it is. */
  uintptr_t *word = (uintptr_t *)(void *)&_PyRuntime.gilstate.tstate_current;
  PyThreadState *holder = (PyThreadState *)__atomic_load_n(word, __ATOMIC_RELAXED);
  if (holder == NULL) return NULL;
  unsigned long me = this_thread_ident;
  if (LEAK_UNLIKELY(me == 0)) me = learn_this_thread_ident();
  return holder->thread_id == me ? holder : NULL;
#endif
}

/* ---- Added for the stack dumper ----------------------------------------------------------- */

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

PyObject *leak__frames_builtins_dict(PyInterpreterState *interp) { return interp->builtins; }

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

/* ---- Added for the heap walker: the gc's lists, threads' frames, sizes as sys.getsizeof ------ */

#if PY_VERSION_HEX >= 0x030D0000
/* Exported by libpython on every version, but declared only in an internal header from 3.13. */
extern Py_ssize_t _PyDict_SizeOf(PyDictObject *);
#endif

/* The gc's state: in the runtime before 3.9, per interpreter after. */
static struct _gc_runtime_state *gc_state(PyInterpreterState *interp) {
#if PY_VERSION_HEX >= 0x03090000
  return &interp->gc;
#else
  (void)interp;
  return &_PyRuntime.gc;
#endif
}

/* Every generation's list is a ring of PyGC_Head linked by _gc_next (a plain pointer outside a
 * collection, which is why the walker refuses to run during one); the object follows its header. */
int leak__frames_gc_each(PyInterpreterState *interp, int permanent, leak__gc_object_fn fn, void *arg) {
  struct _gc_runtime_state *gc = gc_state(interp);
  for (int g = 0; g < NUM_GENERATIONS + (permanent != 0); g++) {
    PyGC_Head *head = g < NUM_GENERATIONS ? &gc->generations[g].head : &gc->permanent_generation.head;
    for (PyGC_Head *node = (PyGC_Head *)head->_gc_next; node != head; node = (PyGC_Head *)node->_gc_next) {
      int rc = fn((PyObject *)(node + 1), arg);
      if (rc != 0) return rc;
    }
  }
  return 0;
}

int leak__frames_gc_is_tracked(PyObject *obj) { return PyObject_IS_GC(obj) && _PyObject_GC_IS_TRACKED(obj); }

/* int.__sizeof__: the digits array holds at least one digit from 3.11 on (and the digit count moved
 * into lv_tag in 3.12). */
size_t leak__frames_int_sizeof(PyObject *obj) {
  size_t basic = (size_t)Py_TYPE(obj)->tp_basicsize;
#if PY_VERSION_HEX >= 0x030C0000
  size_t digits = (size_t)(((PyLongObject *)obj)->long_value.lv_tag >> _PyLong_NON_SIZE_BITS);
  (void)basic;
  return offsetof(PyLongObject, long_value.ob_digit) + sizeof(digit) * (digits ? digits : 1);
#elif PY_VERSION_HEX >= 0x030B0000
  size_t digits = (size_t)Py_ABS(Py_SIZE(obj));
  (void)basic;
  return offsetof(PyLongObject, ob_digit) + sizeof(digit) * (digits ? digits : 1);
#else
  (void)basic;
  return offsetof(PyLongObject, ob_digit) + sizeof(digit) * (size_t)Py_ABS(Py_SIZE(obj));
#endif
}

/* str.__sizeof__: the compact layouts keep the characters after the header; other strs (str
 * subclasses) point to a block of their own; a UTF-8 copy and, before 3.12, a wchar_t copy count
 * when they are blocks of their own. */
size_t leak__frames_str_sizeof(PyObject *obj) {
  PyASCIIObject *ascii = (PyASCIIObject *)obj;
  size_t length = (size_t)ascii->length, kind = ascii->state.kind, size;
  if (ascii->state.compact && ascii->state.ascii) {
    size = sizeof(PyASCIIObject) + length + 1;
  } else if (ascii->state.compact) {
    size = sizeof(PyCompactUnicodeObject) + (length + 1) * kind;
  } else {
    size = sizeof(PyUnicodeObject);
    if (((PyUnicodeObject *)obj)->data.any != NULL) size += (length + 1) * kind;
  }
  if (!(ascii->state.compact && ascii->state.ascii)) {
    PyCompactUnicodeObject *compact = (PyCompactUnicodeObject *)obj;
    const void *data = ascii->state.compact ? (const void *)(compact + 1) : ((PyUnicodeObject *)obj)->data.any;
    if (compact->utf8 != NULL && (const void *)compact->utf8 != data) size += (size_t)compact->utf8_length + 1;
  }
#if PY_VERSION_HEX < 0x030C0000
  if (ascii->wstr != NULL) {
    const void *data = ascii->state.compact ? (ascii->state.ascii ? (const void *)(ascii + 1)
                                                                   : (const void *)((PyCompactUnicodeObject *)obj + 1))
                                            : ((PyUnicodeObject *)obj)->data.any;
    if ((const void *)ascii->wstr != data) {
      size_t wlength = ascii->state.ascii ? length : (size_t)((PyCompactUnicodeObject *)obj)->wstr_length;
      size += (wlength + 1) * sizeof(wchar_t);
    }
  }
#endif
  return size;
}

/* dict.__sizeof__ is an exported function on every version; it reads the keys and values tables
 * only. */
size_t leak__frames_dict_sizeof(PyObject *obj) { return (size_t)_PyDict_SizeOf((PyDictObject *)obj); }

#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_dict.h>

/* 3.11+: tables are "general" (any keys, both reported) or "unicode" (str keys only, values
 * reported), and split tables are always unicode. */
int leak__frames_dict_hides_keys(PyObject *dict) { return DK_IS_UNICODE(((PyDictObject *)dict)->ma_keys); }

int leak__frames_prepare_heap_walk(void) { return 0; }

#else

/* 3.8 - 3.10: the keys object is private (Objects/dict-common.h); its first fields are a reference
 * count, a size and the lookup function, and dict_traverse reports keys only when that function is
 * the general one (lookdict), which is static: it is learnt from a dict with an int key. */
typedef struct keys_prefix {
  Py_ssize_t dk_refcnt;
  Py_ssize_t dk_size;
  void *dk_lookup;
} keys_prefix;

static void *general_lookup; /* set once, by leak__frames_prepare_heap_walk */

int leak__frames_dict_hides_keys(PyObject *dict) {
  return ((keys_prefix *)((PyDictObject *)dict)->ma_keys)->dk_lookup != general_lookup;
}

int leak__frames_prepare_heap_walk(void) {
  if (general_lookup != NULL) return 0;
  PyObject *dict = PyDict_New();
  if (dict == NULL || PyDict_SetItem(dict, Py_None, Py_None) < 0) {
    Py_XDECREF(dict);
    PyErr_Clear();
    return LEAK_EPYTHON;
  }
  general_lookup = ((keys_prefix *)((PyDictObject *)dict)->ma_keys)->dk_lookup;
  Py_DECREF(dict);
  return 0;
}

#endif

/* From 3.11 on a running frame is a struct on the thread's frame stack, not an object: the gc never
 * sees the references it holds unless a generator or a frame object owns it.  _PyFrame_Traverse
 * lists them: the frame object, f_locals, the function, the code, and the locals and value stack.
 * Before 3.11 frames are objects and the thread state holds the innermost one. */
int leak__frames_visit_refs(PyThreadState *tstate, leak__frame_ref_fn fn, void *arg) {
  if (tstate == NULL) return 0;
#if PY_VERSION_HEX >= 0x030B0000
  for (raw_frame *frame = innermost_frame(tstate); frame != NULL; frame = older_frame(frame)) {
    if (frame->owner != FRAME_OWNED_BY_THREAD) continue;
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *code = frame->f_executable, *func = frame->f_funcobj;
#elif PY_VERSION_HEX >= 0x030C0000
    PyObject *code = (PyObject *)frame->f_code, *func = frame->f_funcobj;
#else
    PyObject *code = (PyObject *)frame->f_code, *func = (PyObject *)frame->f_func;
#endif
    leak__frame described = {NULL, -1};
    describe_frame(frame, &described);
    leak__frame_ref ref = {frame, code, LEAK__FRAME_SLOT_FRAME_OBJECT, described.lasti};
    int rc = 0;
#define VISIT_SLOT(object, slot_id)                           \
  if ((object) != NULL) {                                     \
    ref.slot = (slot_id);                                     \
    if ((rc = fn(arg, tstate, &ref, (PyObject *)(object))) != 0) return rc; \
  }
    VISIT_SLOT(frame->frame_obj, LEAK__FRAME_SLOT_FRAME_OBJECT);
    VISIT_SLOT(frame->f_locals, LEAK__FRAME_SLOT_LOCALS_DICT);
    VISIT_SLOT(func, LEAK__FRAME_SLOT_FUNCTION);
    VISIT_SLOT(code, LEAK__FRAME_SLOT_CODE);
    /* A frame that is executing (every frame of a running thread, unless it is calling a Python
     * function) keeps no valid stack top (stacktop is -1): its named locals are valid, what lies
     * past them may be stale. */
    int slots = frame->stacktop;
    if (slots < 0) slots = code != NULL && PyCode_Check(code) ? ((PyCodeObject *)code)->co_nlocalsplus : 0;
    for (int i = 0; i < slots; i++) VISIT_SLOT(frame->localsplus[i], i);
#undef VISIT_SLOT
  }
  return 0;
#else
  for (raw_frame *frame = innermost_frame(tstate); frame != NULL; frame = older_frame(frame)) {
    leak__frame described = {NULL, -1};
    describe_frame(frame, &described);
    leak__frame_ref ref = {frame, (PyObject *)frame->f_code, LEAK__FRAME_SLOT_FRAME_OBJECT, described.lasti};
    int rc = fn(arg, tstate, &ref, (PyObject *)frame);
    if (rc != 0) return rc;
  }
  return 0;
#endif
}

/* Searches a dict (borrowed) for the str key whose value is `value`. */
static PyObject *key_of_value(PyObject *dict, PyObject *value) {
  if (dict == NULL || !PyDict_Check(dict)) return NULL;
  Py_ssize_t pos = 0;
  PyObject *key, *item;
  while (PyDict_Next(dict, &pos, &key, &item))
    if (item == value && PyUnicode_Check(key)) return key;
  return NULL;
}

PyObject *leak__frames_attribute_name(PyObject *obj, PyObject *value) {
#if PY_VERSION_HEX >= 0x030B0000
  PyTypeObject *type = Py_TYPE(obj);
  if (type->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
    PyDictValues *values = NULL;
#if PY_VERSION_HEX >= 0x030D0000
    if ((type->tp_flags & Py_TPFLAGS_INLINE_VALUES) && _PyObject_InlineValues(obj)->valid)
      values = _PyObject_InlineValues(obj);
#elif PY_VERSION_HEX >= 0x030C0000
    PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(obj);
    if (_PyDictOrValues_IsValues(dorv)) values = _PyDictOrValues_GetValues(dorv);
#else
    values = *_PyObject_ValuesPointer(obj);
#endif
    PyDictKeysObject *keys = ((PyHeapTypeObject *)type)->ht_cached_keys;
    if (values != NULL && keys != NULL) {
      PyDictUnicodeEntry *entries = DK_UNICODE_ENTRIES(keys);
      for (Py_ssize_t i = 0; i < keys->dk_nentries; i++)
        if (values->values[i] == value) return entries[i].me_key;
    }
  }
#endif
  return key_of_value(leak__object_existing_dict(obj), value);
}

/* The named locals of a frame whose locals are all valid (not one that is running: see
 * leak__frames_visit_refs), searched for `value`. */
static PyObject *local_in(PyObject *code, PyObject **locals, int count, PyObject *value) {
  for (int i = 0; i < count; i++)
    if (locals[i] == value) return leak__frames_local_name(code, i);
  return NULL;
}

PyObject *leak__frames_local_holding(PyObject *holder, PyObject *value) {
#if PY_VERSION_HEX >= 0x030B0000
  raw_frame *frame = NULL;
  if (PyFrame_Check(holder)) {
    frame = ((PyFrameObject *)holder)->f_frame;
  } else if (PyGen_Check(holder) || PyCoro_CheckExact(holder) || PyAsyncGen_CheckExact(holder)) {
    PyGenObject *gen = (PyGenObject *)holder;
    if (gen->gi_frame_state >= FRAME_CLEARED) return NULL;
    frame = (raw_frame *)gen->gi_iframe;
  }
  if (frame == NULL) return NULL;
#if PY_VERSION_HEX >= 0x030D0000
  PyObject *code = frame->f_executable;
#else
  PyObject *code = (PyObject *)frame->f_code;
#endif
  if (code == NULL || !PyCode_Check(code)) return NULL;
  return local_in(code, frame->localsplus, ((PyCodeObject *)code)->co_nlocalsplus, value);
#else
  if (!PyFrame_Check(holder)) return NULL;
  PyFrameObject *frame = (PyFrameObject *)holder;
  PyCodeObject *code = frame->f_code;
  int count = (int)(PyTuple_GET_SIZE(code->co_varnames) + PyTuple_GET_SIZE(code->co_cellvars) +
                    PyTuple_GET_SIZE(code->co_freevars));
  return local_in((PyObject *)code, frame->f_localsplus, count, value);
#endif
}

const char *leak__frames_frame_field(PyObject *frame_object, PyObject *value) {
  PyFrameObject *f = (PyFrameObject *)frame_object;
  if (value == f->f_trace) return "f_trace";
#if PY_VERSION_HEX >= 0x030B0000
  raw_frame *frame = f->f_frame;
  if (frame->previous != NULL && frame->previous->frame_obj == (PyFrameObject *)value) return "f_back";
  if ((PyObject *)f->f_back == value) return "f_back";
#if PY_VERSION_HEX >= 0x030D0000
  if (frame->f_executable == value) return "f_code";
#else
  if ((PyObject *)frame->f_code == value) return "f_code";
#endif
  if (frame->f_globals == value) return "f_globals";
  if (frame->f_builtins == value) return "f_builtins";
  if (frame->f_locals == value) return "f_locals";
#else
  if ((PyObject *)f->f_back == value) return "f_back";
  if ((PyObject *)f->f_code == value) return "f_code";
  if (f->f_globals == value) return "f_globals";
  if (f->f_builtins == value) return "f_builtins";
  if (f->f_locals == value) return "f_locals";
#endif
  return NULL;
}

PyObject *leak__frames_frame_code(PyObject *frame_object) {
#if PY_VERSION_HEX >= 0x030D0000
  return ((PyFrameObject *)frame_object)->f_frame->f_executable;
#elif PY_VERSION_HEX >= 0x030B0000
  return (PyObject *)((PyFrameObject *)frame_object)->f_frame->f_code;
#else
  return (PyObject *)((PyFrameObject *)frame_object)->f_code;
#endif
}

const void *leak__frames_frame_id(PyObject *frame_object) {
#if PY_VERSION_HEX >= 0x030B0000
  return ((PyFrameObject *)frame_object)->f_frame;
#else
  return frame_object;
#endif
}

int leak__frames_thread_owned(PyThreadState *tstate, leak__thread_owned_fn fn, void *arg) {
  int rc = 0;
#define OWNED(object, text) \
  if (rc == 0 && (object) != NULL) rc = fn(arg, tstate, (PyObject *)(object), text)
  OWNED(tstate->dict, "its thread state dict");
#if PY_VERSION_HEX >= 0x030C0000
  OWNED(tstate->current_exception, "the exception being raised");
#else
  OWNED(tstate->curexc_value, "the exception being raised");
  OWNED(tstate->curexc_traceback, "the traceback of the exception being raised");
#endif
  for (_PyErr_StackItem *item = tstate->exc_info; item != NULL && rc == 0; item = item->previous_item) {
    OWNED(item->exc_value, "the exception being handled");
#if PY_VERSION_HEX < 0x030B0000
    OWNED(item->exc_traceback, "the traceback of the exception being handled");
#endif
  }
  OWNED(tstate->async_exc, "a pending asynchronous exception");
#undef OWNED
  return rc;
}

int leak__frames_is_immortal(PyObject *obj) {
#if PY_VERSION_HEX >= 0x030C0000
  return _Py_IsImmortal(obj);
#else
  (void)obj;
  return 0;
#endif
}

uint64_t leak__frames_gc_fingerprint(PyInterpreterState *interp) {
  struct _gc_runtime_state *gc = gc_state(interp);
  uint64_t print = 0;
  for (int g = 0; g < NUM_GENERATIONS; g++)
    print = print * 1000003u + (uint64_t)(uint32_t)gc->generations[g].count * 31u +
            (uint64_t)gc->generation_stats[g].collections;
  return print;
}

/* The name of local slot `slot` of `code` (a borrowed str), or NULL past the named locals (the
 * value stack). */
PyObject *leak__frames_local_name(PyObject *code, int slot) {
  if (code == NULL || !PyCode_Check(code) || slot < 0) return NULL;
  PyCodeObject *co = (PyCodeObject *)code;
#if PY_VERSION_HEX >= 0x030B0000
  PyObject *names = co->co_localsplusnames;
#else
  /* 3.8 - 3.10: fast locals, then cell and free variables, in that order. */
  Py_ssize_t nlocals = PyTuple_GET_SIZE(co->co_varnames), ncells = PyTuple_GET_SIZE(co->co_cellvars);
  if (slot < nlocals) return PyTuple_GET_ITEM(co->co_varnames, slot);
  if (slot < nlocals + ncells) return PyTuple_GET_ITEM(co->co_cellvars, slot - nlocals);
  PyObject *names = co->co_freevars;
  slot -= (int)(nlocals + ncells);
#endif
  if (names == NULL || slot >= PyTuple_GET_SIZE(names)) return NULL;
  return PyTuple_GET_ITEM(names, slot);
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

/* ---- Object layout facts for sizing --------------------------------------------------------- */

#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_object.h>
#include <internal/pycore_dict.h>
#endif

/* Mirrors sys.getsizeof's own addition, per version: 3.8 - 3.10 add the gc header of objects the
 * gc tracks; 3.11 adds the type's pre-header (gc header plus managed-dict words); 3.12+ does the
 * same except for static type objects. */
size_t leak__object_header_size(PyObject *obj) {
#if PY_VERSION_HEX >= 0x030C0000
  if (PyType_CheckExact(obj) && !PyType_HasFeature((PyTypeObject *)obj, Py_TPFLAGS_HEAPTYPE)) return 0;
  return _PyType_PreHeaderSize(Py_TYPE(obj));
#elif PY_VERSION_HEX >= 0x030B0000
  return _PyObject_IS_GC(obj) ? _PyType_PreHeaderSize(Py_TYPE(obj)) : 0;
#else
  return PyObject_IS_GC(obj) ? sizeof(PyGC_Head) : 0;
#endif
}

#if PY_VERSION_HEX >= 0x030B0000
/* dict.__sizeof__ of a dict built over the type's shared keys: the dict object plus one value slot
 * for each entry the shared keys can hold (dk_nentries + dk_usable). */
static size_t shared_keys_dict_size(PyTypeObject *type) {
  PyDictKeysObject *keys = ((PyHeapTypeObject *)type)->ht_cached_keys;
  size_t slots = keys == NULL ? 0 : (size_t)(keys->dk_nentries + keys->dk_usable);
  return sizeof(PyDictObject) + slots * sizeof(PyObject *);
}
#endif

/* 3.11 keeps a values pointer and a dict pointer before the object; 3.12 one tagged word that is
 * either; 3.13 a dict pointer and, for most classes, the values inline after the header. */
leak__instance_dict_kind leak__object_instance_dict(PyObject *obj, PyObject **dict, size_t *virtual_size) {
  *dict = NULL;
  *virtual_size = 0;
#if PY_VERSION_HEX >= 0x030B0000
  PyTypeObject *type = Py_TYPE(obj);
  if (!PyType_HasFeature(type, Py_TPFLAGS_MANAGED_DICT)) return LEAK_INSTANCE_DICT_NONE;
#if PY_VERSION_HEX >= 0x030D0000
  PyDictObject *real = _PyObject_GetManagedDict(obj);
  int inline_valid = PyType_HasFeature(type, Py_TPFLAGS_INLINE_VALUES) && _PyObject_InlineValues(obj)->valid;
  if (real != NULL) {
    *dict = (PyObject *)real;
    return inline_valid ? LEAK_INSTANCE_DICT_SHARED : LEAK_INSTANCE_DICT_REAL;
  }
  if (inline_valid) {
    *virtual_size = shared_keys_dict_size(type);
    return LEAK_INSTANCE_DICT_VIRTUAL;
  }
  return LEAK_INSTANCE_DICT_NONE;
#elif PY_VERSION_HEX >= 0x030C0000
  PyDictOrValues dict_or_values = *_PyObject_DictOrValuesPointer(obj);
  if (_PyDictOrValues_IsValues(dict_or_values)) {
    *virtual_size = shared_keys_dict_size(type);
    return LEAK_INSTANCE_DICT_VIRTUAL;
  }
  *dict = dict_or_values.dict;
  return *dict != NULL ? LEAK_INSTANCE_DICT_REAL : LEAK_INSTANCE_DICT_NONE;
#else
  if (*_PyObject_ValuesPointer(obj) != NULL) {
    *virtual_size = shared_keys_dict_size(type);
    return LEAK_INSTANCE_DICT_VIRTUAL;
  }
  *dict = *_PyObject_ManagedDictPointer(obj);
  return *dict != NULL ? LEAK_INSTANCE_DICT_REAL : LEAK_INSTANCE_DICT_NONE;
#endif
#else
  (void)obj;
  return LEAK_INSTANCE_DICT_NONE;
#endif
}
