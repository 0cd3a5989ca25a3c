/* Extension buffers: the blocks that C extensions report to CPython with PyTraceMalloc_Track and
 * PyTraceMalloc_Untrack (NumPy's array data, domain 389047), traced by libleak as well.
 *
 * CPython sends those calls to tracemalloc only.  libleak sees them by redirecting each loaded
 * object's own import of the two functions (its GOT slot) to a function that records the block with
 * leak_track / leak_untrack and then calls CPython's function, so tracemalloc, when it runs too,
 * still gets every call.  See extbuffers.c for why this and not NumPy's NEP 49 handler.
 *
 * Redirect, restore and the slot walk below serialise on one mutex of their own; they need neither
 * the GIL nor a running tracer (the redirected functions do nothing of libleak's while the tracer
 * is stopped). */
#ifndef LIBLEAK_TRACER_EXTBUFFERS_H
#define LIBLEAK_TRACER_EXTBUFFERS_H

#include <stddef.h>

/* leak_extbuffers_redirect and leak_extbuffers_restore are public (libleak/tracer.h). */

/* The state of one import slot, for tests and diagnostics. */
typedef enum leak__extbuffers_slot_state {
  LEAK_EXTBUFFERS_REDIRECTED, /* holds libleak's function */
  LEAK_EXTBUFFERS_ORIGINAL,   /* holds CPython's function */
  LEAK_EXTBUFFERS_OTHER       /* anything else: a lazy-binding stub not resolved yet, another tool */
} leak__extbuffers_slot_state;

/* Called once per import slot of PyTraceMalloc_Track/Untrack found: the object's path ("" for the
 * main program), the symbol's name and the slot's state.  Returning nonzero stops the walk. */
typedef int (*leak__extbuffers_visit)(const char *object, const char *symbol, leak__extbuffers_slot_state state,
                                      void *data);

/* Walks the slots of every loaded object (libleak's own object excluded) without changing any.
 * Returns 0, the nonzero value of the visit that stopped the walk, or LEAK_ENOSYS. */
int leak__extbuffers_slots(leak__extbuffers_visit visit, void *data);

#endif
