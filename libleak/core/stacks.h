/* The stack table: each distinct Python stack stored once, named by a small integer.
 *
 * A stack is up to LEAK_TRACER_MAX_NFRAME (code object, instruction offset) pairs, innermost first,
 * plus whether the real stack was deeper than what was stored.  The tracer, and later the sampler
 * and the class tracker, speak in stack ids; snapshots turn ids into frames with leak__stacks_lookup.
 *
 * Lifetime: an entry holds a strong reference to each of its code objects (taken when the stack is
 * first interned, with the GIL held), so a code object address in the table is never reused while
 * the entry exists.  Entries go away only in a clear, and only when no snapshot pins the table
 * (leak__stacks_pin/unpin): a snapshot's stack ids stay valid for as long as it lives.
 *
 * Locking: one spinlock (leak__stacks_lock) guards the table.  The tracer borrows the same lock for
 * its trace table, so that a traced allocation takes one lock, not two.  Functions named _unlocked
 * expect the caller to hold it; the others take it themselves. */
#ifndef LIBLEAK_STACKS_H
#define LIBLEAK_STACKS_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#include "core/frames.h"

typedef uint32_t leak__stack_id; /* 0 is the empty stack */

#define LEAK_STACK_EMPTY ((leak__stack_id)0)
/* What leak__stacks_intern_unlocked returns when the table cannot take a new stack. */
#define LEAK_STACK_NONE ((leak__stack_id)UINT32_MAX)
/* The largest depth recorded; deeper stacks say this much (tracemalloc caps total_nframe the same). */
#define LEAK_STACK_MAX_DEPTH 65535

/* Takes and releases the table lock (a spinlock that yields the CPU when it spins too long).  Never
 * held across a call into Python or into the hooked allocators.  Inline, because every traced
 * allocation and free takes it: an uncontended take is one exchange, a release one store; only a
 * contended take calls into stacks.c.  The lock word is hidden in the declaration too, so that every
 * module reads it directly, not through the GOT. */
extern __attribute__((visibility("hidden"))) int leak__stacks_lock_word;
void leak__stacks_lock_contended(void);
static inline void leak__stacks_lock(void) {
  if (__builtin_expect(__atomic_exchange_n(&leak__stacks_lock_word, 1, __ATOMIC_ACQUIRE) != 0, 0))
    leak__stacks_lock_contended();
}
static inline void leak__stacks_unlock(void) { __atomic_store_n(&leak__stacks_lock_word, 0, __ATOMIC_RELEASE); }

/* Which giving-out of ids is current: a clear that frees the table starts ids from 1 again and adds
 * one here (under the lock), so an id remembered with an older value may name another stack now.
 * Read under the lock. */
extern __attribute__((visibility("hidden"))) uint64_t leak__stacks_generation;

/* a[0..n) == b[0..n), field by field (leak__frame has padding that frames.c leaves uninitialised),
 * without a branch a frame: a stack found again (the usual case) is equal all the way down. */
static inline int leak__stacks_same_frames(const leak__frame *a, const leak__frame *b, int n) {
  uint64_t differ = 0;
  for (int i = 0; i < n; i++)
    differ |= ((uint64_t)(uintptr_t)a[i].code ^ (uint64_t)(uintptr_t)b[i].code) |
              (uint64_t)(uint32_t)(a[i].lasti ^ b[i].lasti);
  return differ == 0;
}

/* A 32-bit hash of a frame array and its depth, to compute outside the lock and pass to intern. */
uint32_t leak__stacks_hash(const leak__frame *frames, int nframe, int depth);

/* Interns a stack and returns its id; nframe 0 gives LEAK_STACK_EMPTY.  `depth` is the depth of the
 * whole stack (nframe <= depth <= LEAK_STACK_MAX_DEPTH; out-of-range values are clamped).  With `may_reference` (the
 * caller holds the GIL) a new stack is stored and its code objects get a reference; without it, only
 * an already stored stack can be found, and an unknown one gives LEAK_STACK_EMPTY.  Returns
 * LEAK_STACK_NONE when memory ran out.  Caller holds the lock; nothing here calls Python (Py_INCREF
 * is a field increment). */
leak__stack_id leak__stacks_intern_unlocked(const leak__frame *frames, int nframe, int depth, uint32_t hash,
                                            int may_reference);

/* The frames of an interned stack (a known id, not LEAK_STACK_EMPTY), for a caller that holds the
 * lock; valid until a clear frees the table (leak__stacks_generation changes). */
const leak__frame *leak__stacks_frames_unlocked(leak__stack_id id);

/* Frames of an interned stack, innermost first, and whether the real stack was deeper than what was
 * stored.  The pointers stay valid until leak__stacks_clear() frees the table (never while it is
 * pinned); the code objects are kept alive by the table.  LEAK_ENOENT for an unknown id. */
int leak__stacks_lookup(leak__stack_id id, const leak__frame **frames, int *nframe, int *truncated);

/* The same, with the depth of the whole stack instead of the truncated flag (0 for the empty stack);
 * truncated is depth > nframe. */
int leak__stacks_lookup_depth(leak__stack_id id, const leak__frame **frames, int *nframe, int *depth);

/* Pins the table: until the matching unpin, leak__stacks_clear keeps every entry.  Each successful
 * leak__tracer_copy_traces pins once for its caller.  unpin needs the GIL (it may run a clear that
 * was put off, which releases code objects). */
void leak__stacks_pin(void);
void leak__stacks_pin_unlocked(void);
void leak__stacks_unpin(void);

/* Frees every entry and releases its code objects (needs the GIL and the lock NOT held).  When the
 * table is pinned nothing is freed: the stacks stay (and new ones are added) until a clear finds it
 * unpinned.  Ids restart from 1 after a clear that freed. */
void leak__stacks_clear(void);

/* The two halves of a clear, for the tracer, which must empty its trace table and the stack table in
 * one step under the lock: detach (lock held) takes the whole table out and leaves it empty, or
 * returns NULL when it is pinned or empty; release (GIL held, lock NOT held) frees what was detached
 * and drops its references.  release(NULL) does nothing. */
typedef struct leak__stack_store leak__stack_store;
leak__stack_store *leak__stacks_detach_unlocked(void);
void leak__stacks_release(leak__stack_store *store);

/* After fork(), in the child: the lock is free again (its holder does not exist there). */
void leak__stacks_lock_reset_after_fork(void);

/* Number of stacks stored (the empty stack not counted). */
size_t leak__stacks_count(void);

/* Real bytes held by the table and its entries (the _unlocked one with the lock held). */
size_t leak__stacks_memory(void);
size_t leak__stacks_memory_unlocked(void);

#endif
