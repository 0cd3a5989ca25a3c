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
  int checked;       /* the thread runs on while it is read: frames are copied with checked reads */
  int primed;        /* `first` holds the innermost frame, read already (leak__frames_begin_running) */
  int lost;          /* a checked walk ended at a frame that returned while it was read */
  leak__frame first;
} leak__frame_cursor;

/* The calling thread's own thread state, whether or not it holds the GIL; NULL when the thread has
 * never run Python.  Async-signal-safe (reads thread-specific storage). */
PyThreadState *leak__frames_this_thread(void);

/* The calling thread's thread state when the thread holds the GIL, else NULL.  Cheaper than
 * leak__frames_this_thread (one read of the interpreter's current thread state), so the allocator
 * hooks ask it first.  Not for signal handlers. */
PyThreadState *leak__frames_this_thread_if_holding_gil(void);

/* Positions `cursor` at the innermost frame of `tstate` (NULL gives an empty stack).
 * Async-signal-safe. */
void leak__frames_begin(leak__frame_cursor *cursor, PyThreadState *tstate);

/* leak__frames_begin for a signal handler that may have interrupted `tstate`'s own thread at any
 * instruction: on CPython versions that publish a frame before it is set up (3.11, 3.12), the top
 * frame is checked with a system call and skipped when it is not one yet.  Async-signal-safe. */
void leak__frames_begin_interrupted(leak__frame_cursor *cursor, PyThreadState *tstate);

/* leak__frames_begin for another thread that runs on while it is read (a dump from a watchdog, or
 * from a signal handler in another thread): a top frame caught between two states is read again
 * after a pause, for up to about 10 ms, then the stack reads as empty; every frame is read with a
 * system call that cannot fault, so frames that return meanwhile end the walk instead of crashing
 * it.  Async-signal-safe. */
void leak__frames_begin_running(leak__frame_cursor *cursor, PyThreadState *tstate);

/* Stores the next frame, innermost first, into `out` and returns 1; returns 0 at the bottom of the
 * stack.  Incomplete frames and C-stack shim frames are skipped.  Async-signal-safe. */
int leak__frames_next(leak__frame_cursor *cursor, leak__frame *out);

/* After leak__frames_next returned 0 on a cursor of leak__frames_begin_running: 1 when the walk
 * did not reach the bottom of the stack but a frame that had returned while it was read (the
 * thread moved on; reading it again gives its new stack), 0 at the bottom. */
int leak__frames_lost(const leak__frame_cursor *cursor);

/* Reads at most `max` frames of `tstate`, innermost first, into `out`; returns how many it stored.
 * Stops at `max` without walking the rest, so its cost grows with what is stored only.
 * Async-signal-safe. */
int leak__frames_read(PyThreadState *tstate, leak__frame *out, int max);

/* leak__frames_read, and the depth of the whole stack in *depth (what leak__frames_depth returns,
 * but at most `depth_limit`): the frames past `max` are walked (all of them), not stored.  tracemalloc's
 * total_nframe counts the same frames.  Async-signal-safe. */
int leak__frames_read_depth(PyThreadState *tstate, leak__frame *out, int max, int depth_limit, int *depth);

/* leak__frames_read_depth from a signal handler that interrupted the thread (see
 * leak__frames_begin_interrupted).  Async-signal-safe. */
int leak__frames_read_depth_interrupted(PyThreadState *tstate, leak__frame *out, int max, int depth_limit,
                                        int *depth);

/* The number of frames on `tstate`'s stack (what leak__frames_read would store with no limit).
 * Async-signal-safe. */
int leak__frames_depth(PyThreadState *tstate);

/* The line a frame is on (PyCode_Addr2Line); the code's first line if the frame has not started.
 * Does not allocate; needs the code object alive. */
int leak__frame_lineno(PyCodeObject *code, int32_t lasti);

/* The OS thread id CPython recorded for `tstate` (threading.get_ident()).  Async-signal-safe. */
unsigned long leak__frames_thread_id(PyThreadState *tstate);

/* The kernel's id of `tstate`'s thread (gettid()), which CPython records from 3.11 on; 0 before. */
int leak__frames_native_thread_id(PyThreadState *tstate);

/* The interpreter's serial number of a thread state, never reused in a process (unlike thread ids:
 * a pthread id comes back as soon as a thread is joined and another starts). */
uint64_t leak__frames_thread_serial(PyThreadState *tstate);

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

/* The builtins module's __dict__ of `interp`, or NULL.  Reads one field. */
PyObject *leak__frames_builtins_dict(PyInterpreterState *interp);

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

/* ---- Added for the heap walker (heap/walk.c) ------------------------------------------------
 *
 * The gc's object lists, the references running frames hold, and what sys.getsizeof computes for
 * the builtin types whose layout changed between versions.  None of these allocates or runs Python
 * code; all need the GIL held. */

/* Called for each object the gc tracks; nonzero stops the walk and is returned. */
typedef int (*leak__gc_object_fn)(PyObject *obj, void *arg);

/* Calls `fn` for every object in every generation of `interp`'s gc, and in the permanent one
 * (gc.freeze()) when `permanent` is nonzero.  `fn` must not create, free, track or untrack gc
 * objects; must not run while the gc collects. */
int leak__frames_gc_each(PyInterpreterState *interp, int permanent, leak__gc_object_fn fn, void *arg);

/* True when the gc tracks `obj` (false for objects of non-gc types, and for static types). */
int leak__frames_gc_is_tracked(PyObject *obj);

/* __sizeof__ of an int, a str and a dict (or of a subclass that does not override it). */
size_t leak__frames_int_sizeof(PyObject *obj);
size_t leak__frames_str_sizeof(PyObject *obj);
size_t leak__frames_dict_sizeof(PyObject *obj);

/* True when tp_traverse of `dict` (a dict or a subclass) reports its values but not its keys, as
 * dict_traverse does for tables of str keys (a str cannot be part of a cycle): the walker then
 * visits the keys itself, so a str only a dict holds is still found.  Call
 * leak__frames_prepare_heap_walk once before. */
int leak__frames_dict_hides_keys(PyObject *dict);

/* Learns what leak__frames_dict_hides_keys needs (before 3.11: the general lookup function, from a
 * small dict made and freed here, the first time only).  Call with the GIL held, outside a walk.
 * 0 or LEAK_EPYTHON (no exception left set). */
int leak__frames_prepare_heap_walk(void);

/* Where in a running frame a reference sits: a local or value-stack slot (>= 0), or one of these. */
enum {
  LEAK__FRAME_SLOT_FRAME_OBJECT = -1, /* the frame object (before 3.11: the innermost frame itself) */
  LEAK__FRAME_SLOT_LOCALS_DICT = -2,  /* f_locals (module and class bodies, exec) */
  LEAK__FRAME_SLOT_FUNCTION = -3,
  LEAK__FRAME_SLOT_CODE = -4,
};

/* One reference held by a running frame.  `frame` identifies the frame (opaque); `code` is its code
 * object (borrowed); `slot` says where the reference sits. */
typedef struct leak__frame_ref {
  const void *frame;
  PyObject *code;
  int slot;
  int32_t lasti; /* the frame's instruction offset, as in leak__frame (-1: not started) */
} leak__frame_ref;

/* Called for each reference a running frame holds; nonzero stops the visit and is returned. */
typedef int (*leak__frame_ref_fn)(void *arg, PyThreadState *tstate, const leak__frame_ref *ref,
                                  PyObject *referent);

/* Visits the references that `tstate`'s running frames hold and that no gc object reports: from
 * 3.11 on, every frame the thread owns (frames of generators and frame objects are reported by
 * their owners' tp_traverse); before 3.11, each frame object of the thread's stack (its running
 * evaluation holds it, besides the f_back of the frame it called). */
int leak__frames_visit_refs(PyThreadState *tstate, leak__frame_ref_fn fn, void *arg);

/* ---- Added for the reference index's labels (refs/labels.c) ----------------------------------- */

/* The name (a borrowed str) of the attribute under which instance `obj` holds `value` in its
 * __dict__ or, from 3.11, in the values array that stands for it until a dict is made; NULL when
 * there is none.  Reads fields only (no dict is created); the GIL must be held. */
PyObject *leak__frames_attribute_name(PyObject *obj, PyObject *value);

/* The name (a borrowed str) of the local variable under which `holder` holds `value`: a frame
 * object, or (3.11+, where their frames are inline) a generator, coroutine or async generator;
 * NULL when none does.  Reads fields only. */
PyObject *leak__frames_local_holding(PyObject *holder, PyObject *value);

/* The name of the field of frame object `frame` that holds `value` ("f_back", "f_code",
 * "f_globals", "f_builtins", "f_locals", "f_trace"), or NULL. */
const char *leak__frames_frame_field(PyObject *frame, PyObject *value);

/* The code object a frame object runs (borrowed). */
PyObject *leak__frames_frame_code(PyObject *frame_object);

/* The frame a frame object stands for, as leak__frame_ref.frame names it. */
const void *leak__frames_frame_id(PyObject *frame_object);

/* Called for each object a thread state holds itself; `what` says which (static text). */
typedef int (*leak__thread_owned_fn)(void *arg, PyThreadState *tstate, PyObject *obj, const char *what);

/* Reports the objects `tstate` holds outside any frame: its per-thread dict, the exception being
 * raised, the exceptions being handled (sys.exc_info(), innermost first) and a pending asynchronous
 * exception.  Reads fields only; a nonzero return of fn stops and is returned. */
int leak__frames_thread_owned(PyThreadState *tstate, leak__thread_owned_fn fn, void *arg);

/* True for an immortal object (3.12+), whose reference count means nothing; 0 before 3.12. */
int leak__frames_is_immortal(PyObject *obj);

/* A number that changes when a gc-tracked object is made or freed, or the gc collects (the gc's own
 * counters; a made-and-freed pair between two readings goes unseen). */
uint64_t leak__frames_gc_fingerprint(PyInterpreterState *interp);

/* The name (a borrowed str) of local slot `slot` of code object `code`, or NULL when the slot is
 * not a named local (the value stack) or `code` is not a code object. */
PyObject *leak__frames_local_name(PyObject *code, int slot);

/* ---- Object layout facts for sizing (used by the deep size, heap/deepsize.c) ----------------
 * Like frames, these differ between CPython versions, so they live here. */

/* The bytes sys.getsizeof adds to o.__sizeof__() for `obj`: the gc header, and from 3.11 the
 * pre-header words of managed dicts and weak references.  No allocation, no Python code. */
size_t leak__object_header_size(PyObject *obj);

/* What leak__object_instance_dict found. */
typedef enum leak__instance_dict_kind {
  LEAK_INSTANCE_DICT_NONE = 0,   /* no managed dict, or tp_traverse already shows it */
  LEAK_INSTANCE_DICT_REAL = 1,   /* a dict object exists that tp_traverse may not show: *dict */
  LEAK_INSTANCE_DICT_VIRTUAL = 2, /* 3.11+: the attributes live in a values array; no dict exists */
  LEAK_INSTANCE_DICT_SHARED = 3   /* 3.13: *dict exists but shares the values tp_traverse showed:
                                   * count the dict's own size, do not follow it */
} leak__instance_dict_kind;

/* For an instance whose type keeps its __dict__ "managed" (3.11+), says where its attributes are.
 * REAL: *dict is the materialised dict (borrowed).  SHARED: the same, but its values are the
 * instance's own, already reported by tp_traverse.  VIRTUAL: *virtual_size is what
 * dict.__sizeof__ would report for the dict that reading obj.__dict__ would create (pympler's
 * asizeof creates it; libleak does not), without the gc header.  The attribute values themselves
 * are visited by the type's tp_traverse either way.  No allocation, no Python code. */
leak__instance_dict_kind leak__object_instance_dict(PyObject *obj, PyObject **dict, size_t *virtual_size);

#endif
