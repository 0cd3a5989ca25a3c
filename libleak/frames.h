/* The frame reader: a thread's Python stack as (code object, instruction offset) pairs.
 *
 * This is the only part of libleak that knows how each CPython version lays out its frames and
 * thread states.  Every reader here is safe in an allocator hook and in a signal handler: it does
 * not allocate, take locks, or call the Python API.  Line numbers are resolved separately
 * (leak__frame_lineno), outside hot paths. */
#ifndef LIBLEAK_FRAMES_H
#define LIBLEAK_FRAMES_H

#include <Python.h>
#include <stdint.h>

/* One Python frame: the code object it runs and where.  `code` is borrowed: it stays valid only
 * while something keeps the code object alive (the frame itself, or a reference the caller took). */
typedef struct leak__frame {
  PyCodeObject *code;
  int32_t lasti; /* byte offset of the current instruction, for PyCode_Addr2Line; -1: not started */
} leak__frame;

/* A position in a thread's stack; walk it with leak__frames_next.  Opaque: only frames.c reads it. */
typedef struct leak__frame_cursor {
  void *next;
} leak__frame_cursor;

/* The calling thread's own thread state, whether or not it holds the GIL; NULL when the thread has
 * never run Python.  Async-signal-safe (reads thread-specific storage). */
PyThreadState *leak__frames_this_thread(void);

/* Positions `cursor` at the innermost frame of `tstate` (NULL gives an empty stack).
 * Async-signal-safe. */
void leak__frames_begin(leak__frame_cursor *cursor, PyThreadState *tstate);

/* Stores the next frame, innermost first, into `out` and returns 1; returns 0 at the bottom of the
 * stack.  Incomplete frames and C-stack shim frames are skipped.  Async-signal-safe. */
int leak__frames_next(leak__frame_cursor *cursor, leak__frame *out);

/* Reads at most `max` frames of `tstate`, innermost first, into `out`; returns how many it stored.
 * Stops at `max` without walking the rest, so its cost grows with what is stored only.
 * Async-signal-safe. */
int leak__frames_read(PyThreadState *tstate, leak__frame *out, int max);

/* The number of frames on `tstate`'s stack (what leak__frames_read would store with no limit).
 * Async-signal-safe. */
int leak__frames_depth(PyThreadState *tstate);

/* The line a frame is on (PyCode_Addr2Line); the code's first line if the frame has not started.
 * Does not allocate; needs the code object alive. */
int leak__frame_lineno(PyCodeObject *code, int32_t lasti);

/* The OS thread id CPython recorded for `tstate` (threading.get_ident()).  Async-signal-safe. */
unsigned long leak__frames_thread_id(PyThreadState *tstate);

/* True while the garbage collector of `tstate`'s interpreter is running a collection.
 * Async-signal-safe (reads one field). */
int leak__frames_gc_collecting(PyThreadState *tstate);

/* Added for the stack dumper (libleak/dump.c). */

/* The OS thread id of the interpreter's main thread (threading.main_thread().ident), read from the
 * runtime state.  Async-signal-safe (reads one field). */
unsigned long leak__frames_main_thread_id(void);

/* The interpreter `tstate` belongs to.  Async-signal-safe (reads one field). */
PyInterpreterState *leak__frames_interpreter(PyThreadState *tstate);

/* The main interpreter, or NULL before Python is initialised.  Async-signal-safe (reads one field
 * of the runtime state, as PyInterpreterState_Main does, without the API call). */
PyInterpreterState *leak__frames_main_interpreter(void);

/* Added by the tracer (get_object_traceback): the address of the memory block that holds `obj`, i.e.
 * what the allocator returned for it.  GC objects have the GC header before them, and from 3.11 the
 * managed dict/weakref pre-header too, so the block starts before the object.  Reads type flags only. */
uintptr_t leak__object_block_address(PyObject *obj);

#endif
