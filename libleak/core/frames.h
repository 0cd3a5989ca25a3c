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

/* leak__frames_read, and the depth of the whole stack in *depth (what leak__frames_depth returns,
 * but at most `depth_limit`): the frames past `max` are walked (all of them), not stored.  tracemalloc's
 * total_nframe counts the same frames.  Async-signal-safe. */
int leak__frames_read_depth(PyThreadState *tstate, leak__frame *out, int max, int depth_limit, int *depth);

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

/* Added for the stack dumper (faults/dump.c). */

/* The OS thread id of the interpreter's main thread (threading.main_thread().ident), read from the
 * runtime state.  Async-signal-safe (reads one field). */
unsigned long leak__frames_main_thread_id(void);

/* The interpreter `tstate` belongs to.  Async-signal-safe (reads one field). */
PyInterpreterState *leak__frames_interpreter(PyThreadState *tstate);

/* The main interpreter, or NULL before Python is initialised.  Async-signal-safe (reads one field
 * of the runtime state, as PyInterpreterState_Main does, without the API call). */
PyInterpreterState *leak__frames_main_interpreter(void);

/* sys.modules of `interp` (the dict the import system uses), or NULL.  Async-signal-safe (reads
 * one field; where it lives changed in 3.12). */
PyObject *leak__frames_sys_modules(PyInterpreterState *interp);

/* sys.__dict__ of `interp`, or NULL.  Async-signal-safe (reads one field). */
PyObject *leak__frames_sys_dict(PyInterpreterState *interp);

/* Walks the items of a set or frozenset without allocating, locking or touching reference counts:
 * start with *pos = 0; each call stores the next item (borrowed) in *item and returns 1, then 0 at
 * the end.  Async-signal-safe; the set must not change meanwhile (faulthandler's assumption too). */
int leak__frames_set_next(PyObject *set, Py_ssize_t *pos, PyObject **item);

/* Added by the tracer (get_object_traceback): the address of the memory block that holds `obj`, i.e.
 * what the allocator returned for it.  GC objects have the GC header before them, and from 3.11 the
 * managed dict/weakref pre-header too, so the block starts before the object.  Reads type flags only. */
uintptr_t leak__object_block_address(PyObject *obj);

/* Added for the class tracker: the instance __dict__ of `obj` when it exists as a dict object, without
 * making one (from 3.11 an instance's attributes may live in a values array until __dict__ is first
 * asked for, and asking creates the dict for good).  Borrowed; NULL when there is none.  Reads fields
 * only; the GIL must be held. */
PyObject *leak__object_existing_dict(PyObject *obj);

/* ---- Line tables: many line numbers of one code object, each in O(log n) ------------------------
 *
 * leak__frame_lineno walks the code's line table from its start on every call, so resolving every
 * line of a long function one by one is quadratic.  A snapshot that meets many offsets of one code
 * object decodes its table once into sorted address ranges and looks each offset up by bisection. */

/* One range of byte offsets, from `start` up to the next range's start, all on `line` (-1: no line). */
typedef struct leak__line_range {
  int32_t start;
  int32_t line;
} leak__line_range;

/* A decoded line table; built by leak__line_table_new, freed by leak__line_table_free. */
typedef struct leak__line_table {
  int32_t first_line; /* the answer for offsets < 0 (a frame that has not started) */
  int32_t uncovered;  /* the answer for offsets before the first range (only when there is none) */
  uint32_t count;
  leak__line_range ranges[]; /* by increasing start; the last one runs past the end of the code */
} leak__line_table;

/* Decodes `code`'s line table into *out, which the caller frees with leak__line_table_free.
 * Calls the Python API (the GIL must be held, with no exception set) and allocates with
 * leak__malloc.  Returns 0, LEAK_ENOMEM, or LEAK_EPYTHON when Python failed or the table was not
 * what was expected; on failure *out is NULL and no Python exception is left set, so the caller
 * can fall back to leak__frame_lineno. */
int leak__line_table_new(PyCodeObject *code, leak__line_table **out);

/* The line of byte offset `lasti`: always what leak__frame_lineno(code, lasti) returns for the code
 * the table was built from, for every offset (negative, without a line, past the end).  Does not
 * allocate nor call the Python API; the code object need not be alive. */
int leak__line_table_lookup(const leak__line_table *table, int32_t lasti);

/* Frees a table from leak__line_table_new; NULL is accepted. */
void leak__line_table_free(leak__line_table *table);

#endif
