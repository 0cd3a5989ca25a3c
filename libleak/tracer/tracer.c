/* The allocation tracer: allocator hooks, live traces, counters, domains, fork.
 *
 * How it works.  leak_tracer_start wraps CPython's three allocator domains (RAW, MEM, OBJ) with
 * hooks that call the allocator found before (saved in `domains[].inner`) and then record the new
 * block: its size and the stack id of the calling thread's innermost `nframe` frames (read with the
 * frame reader, interned in the stack table).  The free hook drops the trace; realloc moves it.
 * Traces live in the compact table of traces.c; everything the tracer keeps comes from leak__malloc,
 * never from the hooked allocators, and no hook calls the Python API.
 *
 * Locking.  One spinlock (stacks.c's, leak__stacks_lock) protects the stack table, the trace table,
 * the counters and the domain list.  The RAW hooks run without the GIL, so the GIL protects nothing
 * here.  The lock is never held across a call into an allocator of Python's, nor across Py_DECREF.
 * The free path never takes the GIL (CPython frees thread states without it).
 *
 * Queued updates.  In exact mode, once the trace table outgrows the caches, the hooks do not write
 * it at once: they queue the update (pending.h), start fetching its slot, and apply the update
 * queued LEAK_PENDING_OPS before, so that the table's cache misses overlap.  The queue is applied in
 * order under the same lock, and everything that reads the table or the counters, or updates them
 * directly, empties it first.
 *
 * Reentrancy.  A thread-local flag is set while a slow path runs: allocations nested inside it
 * (pymalloc asking the RAW domain for a large block, the hook of another tool under ours) go straight
 * to the allocator below, so a block is traced once, by the outermost domain, and is never counted
 * twice.  The slow path also parks the thread's countdown at its maximum meanwhile, so that nested
 * fast paths pass without counting the same bytes again.  MEM and OBJ requests above pymalloc's
 * small-request threshold, which pymalloc passes on to the RAW domain, always take the slow path.
 *
 * Code-object lifetime and the GIL.  A stack entry holds a strong reference to its code objects,
 * taken when the stack is first interned; taking it needs the GIL.  MEM and OBJ allocations are made
 * with the GIL held (CPython's rule).  RAW allocations may not be: for those the hook asks
 * PyGILState_Check().  With the GIL, as any other.  Without it, the thread's frames are still read
 * (its stack cannot change while it does not hold the GIL, and the frames keep their code objects
 * alive), but the stack is only LOOKED UP: if the very same stack is already in the table, every one
 * of its code objects is already held by that entry and the trace gets its id; otherwise the trace
 * gets the empty stack (id 0).  No refcount is ever touched without the GIL.  References are
 * released (clear, stop) with the GIL held and the lock released.
 *
 * Fast paths.  Every hook starts with a fast path that needs no stack frame and ends in a tail call
 * to the allocator below: malloc and calloc pass when the thread's sampling countdown is current and
 * does not cross zero (sampling.h), free when a byte map indexed by the address (`maybe_traced`)
 * says the block certainly has no trace.  Everything else goes to a slow path.  In exact mode and
 * while not tracing the countdown is never current, so every allocation takes the slow path; in
 * exact mode the map is all saturated, so every free does.  In sampled mode only the allocation that
 * crosses zero, and the free of a block whose counter is not zero, take the slow path (and the lock).
 *
 * Sampled mode over CPython's own pymalloc: no free hook in MEM and OBJ.  pymalloc hands every block
 * it did not carve from one of its pools to PyMem_RawFree (and PyMem_RawRealloc), where our RAW hook
 * sees it.  So when MEM and OBJ are plain pymalloc at start (_PyMem_GetCurrentAllocatorName says
 * "pymalloc": no debug hooks, no other tool), a sampled MEM/OBJ block of pool size is requested one
 * byte above pymalloc's small-request threshold: pymalloc itself takes it from the RAW domain and
 * counts it as its own (sys.getallocatedblocks stays right).  Every traced MEM/OBJ block then lives
 * outside the pools, its free reaches the RAW hook, and MEM and OBJ keep pymalloc's own free: the
 * free of an untraced small object costs nothing at all.  The price is memory: a sampled block of
 * 16 bytes takes 513 in malloc, so the live heap grows by up to 497/R of itself (R the sampling
 * interval); hence only from R = 64 KiB (0.8% at most; 0.1% at 512 KiB).  Exact mode traces pool
 * blocks and keeps the free hooks.
 *
 * Domains.  leak_track/leak_untrack trace any allocator's blocks under a domain number; domain 0 is
 * Python's heap, where the hooks record.  Extensions that report their own buffers call
 * PyTraceMalloc_Track/Untrack, which on 3.8 - 3.13 go to tracemalloc only (no hook routes them
 * elsewhere); extbuffers.c redirects the extensions' imports of those two functions to leak_track /
 * leak_untrack (then CPython's), which is how NumPy's arrays are seen (libleak.tracer does it while
 * it traces; a C host calls leak_extbuffers_redirect).
 * Their memory is not double counted: those buffers come from malloc or from the RAW domain with
 * the reentrancy rule above, so only the outermost allocation is traced.
 *
 * Other tools.  Our hooks chain to whatever was installed before (tracemalloc, a debug allocator).
 * stop puts the old allocators back only where our hook is still on top: a tool that wrapped ours
 * later (tracemalloc started after us) keeps working, and our hook stays below it, pass-through.
 *
 * Object allocation site.  leak__tracer_object_stack finds the trace of the object's memory block
 * (frames.c knows where the block starts on each version).  On 3.13+ objects handed out again from a
 * freelist do not go through the allocator, so a reference tracer (PyRefTracer_SetTracer, chained to
 * the one found before and restored at stop) re-records the site of a traced block when an object is
 * created in it, as tracemalloc does.
 *
 * fork.  pthread_atfork: prepare takes the lock (so no other thread is mid-update when the address
 * space is copied), parent releases it; the child resets it (its holder does not exist there), drops
 * the parent's traces (their memory is shared copy-on-write and the counters are per process) and,
 * by the fork_mode option, keeps tracing with empty tables or stops (the hooks stay installed but
 * pass-through: the child cannot safely call PyMem_SetAllocator before CPython's own after-fork
 * code has run).  The stack table is kept: its references are valid in the child. */
#include "core/internal.h"
#include "tracer/tracer.h"
#include "core/stacks.h"
#include "tracer/traces.h"
#include "tracer/pending.h"
#include "tracer/sampling.h"

#include <pthread.h>
#include <string.h>

/* One hooked domain: the allocator found before and whether its callers may lack the GIL.  Written by
 * start (GIL held, hooks not installed), read by the hooks through their ctx pointer. */
typedef struct hooked_domain {
  PyMemAllocatorEx inner;
  int raw;
  int frees_unhooked; /* MEM/OBJ over plain pymalloc in sampled mode: traced blocks kept out of the pools */
} hooked_domain;
static hooked_domain domains[3];
static const PyMemAllocatorDomain domain_ids[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};

/* Whether our hooks are installed, per domain and in any domain: changed by start/stop with the GIL
 * held.  A hook stays installed after stop when another tool wrapped it meanwhile (see
 * uninstall_hooks); it is then pass-through. */
static int domain_hooked[3];
static int hooks_installed;
/* Whether blocks are being traced: read by the hooks without the lock (relaxed; a stale read only
 * costs a wasted lock), written under the lock, re-checked under the lock before any insert. */
static int tracing;
/* The options of the current or last start: written by start (GIL held, not tracing), read by the
 * hooks. */
static leak_tracer_options options = LEAK_TRACER_OPTIONS_INIT;

/* Protected by the lock (leak__stacks_lock): the traces, the traced-memory counters and the list of
 * domain numbers (domain index i + 1 -> domain_numbers[i]; index 0 is domain 0). */
static leak__trace_table traces;
static leak__pending pending; /* exact mode's queued updates of `traces` (see the top comment) */
static size_t traced_current, traced_peak;
#define MAX_DOMAINS 1024
static unsigned domain_numbers[MAX_DOMAINS];
static unsigned domain_count;

/* Traces dropped for want of memory since start: atomics, counted by hooks with or without the lock. */
static uint64_t dropped;

/* The free hook's "maybe traced" filter: saturating counters indexed by the address itself (16 bytes
 * a counter, wrapping every 128 KiB), not by a hash, so that frees of neighbouring blocks read the
 * same cache line.  In sampled mode a counter counts the traced blocks of its slot; in exact mode
 * every counter is saturated (every block may be traced); while not tracing, all are zero.  Written
 * under the lock; the free hook reads one byte without it (a relaxed read is enough: the thread that
 * frees a block got it through some synchronisation after the allocation that counted it here).
 * With L sampled blocks alive, a free takes the lock needlessly with probability about L/8192. */
#define FILTER_BITS 13
static uint8_t maybe_traced[1u << FILTER_BITS];

/* Recent stacks of one frame and their ids, by frame and depth (see trace_block_of_one); under the
 * lock.  An entry holds for the generation of the stack table it was made in (generation 0: none). */
#define RECENT_STACK_BITS 6
#define RECENT_STACKS (1u << RECENT_STACK_BITS)
typedef struct recent_stack {
  leak__frame frame;
  int depth;
  leak__stack_id id;
  uint64_t generation;
} recent_stack;
static recent_stack recent_stacks[RECENT_STACKS];

/* A thread's last stack of more than one frame and its id (see trace_block_of_many); nframe 0: none. */
typedef struct last_long_stack {
  leak__frame frame;         /* its innermost frame, to tell most other stacks apart without the lock */
  int depth, nframe;
  leak__stack_id id;
  uint64_t generation;
  const leak__frame *frames; /* the stack table's copy of its frames, kept as long as `generation` */
} last_long_stack;

/* What the hooks keep per thread, in one thread-local block so that one address serves every field.
 * Thread-local: no lock. */
typedef struct hook_thread {
  leak__sampler_thread sampler; /* the sampling countdown (sampling.h) */
  last_long_stack last_long_stack;
  int in_hook;                  /* inside a slow path (see the top comment) */
  uintptr_t last_traced_block;  /* the 3.13 ref tracer skips re-recording a block just recorded */
  uintptr_t forwarded_block;    /* see fast_realloc */
} hook_thread;
static __thread hook_thread this_thread LEAK_TLS_FAST;

/* fork: set by prepare when it took the lock, for parent/child to release it.  Only the forking
 * thread touches it, between its own prepare and parent/child handlers. */
static int fork_locked;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

#if PY_VERSION_HEX >= 0x030D0000
/* The reference tracer found at start (3.13+ has one slot for it); GIL held. */
static PyRefTracer previous_ref_tracer;
static void *previous_ref_tracer_data;
static int ref_tracer_installed;
#endif

/* ---- Small helpers (lock held where the name says _unlocked) -------------------------------- */

static inline size_t filter_slot(uint64_t key) { return (size_t)((key >> 4) & ((1u << FILTER_BITS) - 1)); }

/* Bytes a trace adds to the traced-memory counters: the size, or its unbiased estimate when sampled. */
static inline size_t counted_bytes(uint64_t size) {
  if (options.sample_bytes <= 0) return (size_t)size;
  return (size_t)((double)size * leak__sampling_weight(size) + 0.5);
}

/* Counts a new trace in the traced-memory counters (and the peak) and in the sampled-mode filter. */
static inline void count_added_unlocked(uint64_t key, uint64_t size) {
  traced_current += counted_bytes(size);
  if (traced_current > traced_peak) traced_peak = traced_current;
  if (options.sample_bytes > 0) {
    uint8_t *counter = &maybe_traced[filter_slot(key)];
    if (*counter != UINT8_MAX) __atomic_store_n(counter, (uint8_t)(*counter + 1), __ATOMIC_RELAXED);
  }
}

/* Undoes count_added_unlocked.  A saturated filter counter stays saturated: it may have been counted
 * more times than it can say, so it can never prove a block untraced again. */
static inline void count_removed_unlocked(uint64_t key, uint64_t size) {
  size_t bytes = counted_bytes(size);
  traced_current = traced_current >= bytes ? traced_current - bytes : 0;
  if (options.sample_bytes > 0) {
    uint8_t *counter = &maybe_traced[filter_slot(key)];
    if (*counter != UINT8_MAX && *counter != 0) __atomic_store_n(counter, (uint8_t)(*counter - 1), __ATOMIC_RELAXED);
  }
}

/* True when `key` may have a trace; false only when it certainly has none.  Lock-free (see above). */
static inline int may_be_traced(uint64_t key) {
  return __atomic_load_n(&maybe_traced[filter_slot(key)], __ATOMIC_RELAXED) != 0;
}

/* Empties the filter: all saturated when every block may be traced (exact mode, tracing), else
 * zeros.  Under the lock, or where no hook runs (fork child). */
static void reset_filter_unlocked(int exact_and_tracing) {
  for (size_t i = 0; i < sizeof(maybe_traced); i++)
    __atomic_store_n(&maybe_traced[i], exact_and_tracing ? UINT8_MAX : 0, __ATOMIC_RELAXED);
}

/* A trace the tracer could not store (memory ran out, or an address it cannot key). */
static void count_dropped(void) { __atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED); }

/* The domain index of `domain` (adding it when `add`), or -1. */
static int domain_index_unlocked(unsigned domain, int add) {
  if (domain == 0) return 0;
  for (unsigned i = 0; i < domain_count; i++)
    if (domain_numbers[i] == domain) return (int)i + 1;
  if (!add || domain_count == MAX_DOMAINS) return -1;
  domain_numbers[domain_count++] = domain;
  return (int)domain_count;
}

/* Stores a trace, with the counters; the lock is held and tracing was re-checked. */
static int put_trace_unlocked(uint64_t key, leak__stack_id stack, uint64_t size) {
  uint64_t replaced = 0;
  int rc = leak__traces_put(&traces, key, stack, size, &replaced);
  if (rc < 0) return rc;
  if (rc == 1) count_removed_unlocked(key, replaced);
  count_added_unlocked(key, size);
  return 0;
}

/* Puts (stack != LEAK_PENDING_REMOVE) or removes the trace of `key` now, with the counters. */
static void apply_update_unlocked(uint64_t key, uint32_t stack, uint64_t size) {
  if (stack == LEAK_PENDING_REMOVE) {
    uint64_t old_size;
    if (leak__traces_remove(&traces, key, &old_size, NULL)) count_removed_unlocked(key, old_size);
  } else if (put_trace_unlocked(key, stack, size) < 0) {
    count_dropped();
  }
}

/* Applies the queued updates: before anything reads the table or the counters, or updates them
 * other than through the queue. */
static void flush_pending_unlocked(void) {
  leak__pending_op op;
  while (leak__pending_pop(&pending, &op)) apply_update_unlocked(op.key, op.stack, op.size);
}

/* The table size from which exact mode queues its updates: 1 MiB of slots, about 50,000 live
 * blocks.  A smaller table stays in the caches, where queueing would only add instructions.
 * Sampled mode never queues (SIZE_MAX): the free hook's filter must count a new trace before its
 * block can be freed, and sampled updates are too rare to gain from it.  Set by start. */
#define QUEUE_FROM_CAPACITY ((size_t)1 << 16)
static size_t queue_from_capacity = SIZE_MAX;
static size_t exact_queue_from = QUEUE_FROM_CAPACITY; /* what start sets in exact mode (tests change it) */

/* Whether an update of a block of `size` bytes is queued (blocks of 4 GiB and more do not fit). */
static inline int queueing_unlocked(uint64_t size) {
  return traces.capacity >= queue_from_capacity && size < UINT32_MAX;
}

/* update_trace_unlocked for an update that is not queued: the queue first, then the update. */
static __attribute__((noinline)) void update_now_unlocked(uint64_t key, uint32_t stack, uint64_t size) {
  flush_pending_unlocked();
  apply_update_unlocked(key, stack, size);
}

/* Puts (stack != LEAK_PENDING_REMOVE) or removes the trace of `key`: queued, with its slot fetched
 * now to be written LEAK_PENDING_OPS updates later, or at once after the queue.  Inlined into the
 * hooks' slow paths: a few instructions on every traced allocation and free. */
static inline __attribute__((always_inline)) void update_trace_unlocked(uint64_t key, uint32_t stack,
                                                                         uint64_t size) {
  if (!queueing_unlocked(size)) {
    update_now_unlocked(key, stack, size);
    return;
  }
  leak__traces_prefetch(&traces, key);
  leak__pending_op oldest = leak__pending_push(&pending, (leak__pending_op){key, stack, (uint32_t)size});
  if (oldest.key != 0) apply_update_unlocked(oldest.key, oldest.stack, oldest.size);
}

/* A stack captured outside the lock: how many frames were stored, the depth of the whole stack
 * (tracemalloc's total_nframe), and whether its code objects may be referenced. */
typedef struct captured_stack {
  int nframe;
  int depth;
  int may_reference;
} captured_stack;

/* Reads at most nframe frames of the calling thread and counts the rest of its stack.
 * `frames` has room for options.nframe frames.  Code objects may be referenced with the GIL: always
 * in MEM and OBJ (CPython's rule), in RAW when the thread holds it.
 * Hot path: no lock, no malloc, no Python API (the thread state is read, thread-locally). */
static inline __attribute__((always_inline)) void capture_stack(leak__frame *frames, int nframe, int raw,
                                                                 captured_stack *out) {
  PyThreadState *tstate = leak__frames_this_thread_if_holding_gil();
  int holds_gil = tstate != NULL;
  if (!holds_gil) tstate = leak__frames_this_thread();
  out->nframe = leak__frames_read_depth(tstate, frames, nframe, LEAK_STACK_MAX_DEPTH, &out->depth);
  out->may_reference = raw ? holds_gil : 1;
}

/* The id of a captured stack (LEAK_STACK_NONE when memory ran out); the lock is held.  `hash` is
 * leak__stacks_hash's, taken outside the lock. */
static inline leak__stack_id intern_unlocked(const leak__frame *frames, const captured_stack *stack, uint32_t hash) {
  return leak__stacks_intern_unlocked(frames, stack->nframe, stack->depth, hash, stack->may_reference);
}

/* Stores a block's trace (or counts it dropped when its stack could not be stored); the lock is held. */
static inline void record_trace_unlocked(uint64_t key, leak__stack_id id, size_t size) {
  if (id == LEAK_STACK_NONE)
    count_dropped();
  else
    update_trace_unlocked(key, id, size);
}

/* The place of a stack of one frame in recent_stacks: a hash of the frame and the depth, taken
 * outside the lock. */
static inline size_t recent_stack_slot(const leak__frame *frame, int depth) {
  uint32_t h = (uint32_t)((uintptr_t)frame->code >> 4) ^ ((uint32_t)frame->lasti * 0x9E3779B1u) ^ (uint32_t)depth;
  return (h * 0x9E3779B1u) >> (32 - RECENT_STACK_BITS);
}

/* trace_block at nframe=1.  A few lines take turns allocating (an object, its dict, its list and the
 * list's items, then the next object): a stack of one frame found in recent_stacks, from the stack
 * table's current generation, keeps its id without being hashed and interned again. */
static inline __attribute__((always_inline)) void trace_block_of_one(int raw, uint64_t key, size_t size) {
  leak__frame frames[1];
  captured_stack stack;
  capture_stack(frames, 1, raw, &stack);
  recent_stack *recent = &recent_stacks[stack.nframe == 1 ? recent_stack_slot(&frames[0], stack.depth) : 0];
  leak__stacks_lock();
  if (__atomic_load_n(&tracing, __ATOMIC_RELAXED)) {
    leak__stack_id id;
    if (stack.nframe == 1 && recent->frame.code == frames[0].code && recent->frame.lasti == frames[0].lasti &&
        recent->depth == stack.depth && recent->generation == leak__stacks_generation) {
      id = recent->id;
    } else {
      id = intern_unlocked(frames, &stack, leak__stacks_hash(frames, stack.nframe, stack.depth));
      if (stack.nframe == 1 && id != LEAK_STACK_NONE && id != LEAK_STACK_EMPTY)
        *recent = (recent_stack){frames[0], stack.depth, id, leak__stacks_generation};
    }
    record_trace_unlocked(key, id, size);
  }
  leak__stacks_unlock();
}

/* trace_block at nframe > 1.  The same line allocating again has the same stack, all of it: when the
 * innermost frame, the depth and the count match the thread's last stack (checked without the lock),
 * the other frames are compared with the table's copy (under it, where the copy is known to be
 * alive), which costs less than hashing them and finding them in the table. */
static __attribute__((noinline)) void trace_block_of_many(int raw, uint64_t key, size_t size, int nframe) {
  leak__frame frames[nframe];
  captured_stack stack;
  capture_stack(frames, nframe, raw, &stack);
  last_long_stack *last = &this_thread.last_long_stack;
  int maybe_repeated = stack.nframe > 0 && stack.nframe == last->nframe && last->depth == stack.depth &&
                       last->frame.code == frames[0].code && last->frame.lasti == frames[0].lasti;
  uint32_t hash = maybe_repeated ? 0 : leak__stacks_hash(frames, stack.nframe, stack.depth);
  leak__stacks_lock();
  if (__atomic_load_n(&tracing, __ATOMIC_RELAXED)) {
    leak__stack_id id;
    if (maybe_repeated && last->generation == leak__stacks_generation &&
        leak__stacks_same_frames(frames + 1, last->frames + 1, stack.nframe - 1)) {
      id = last->id;
    } else {
      if (maybe_repeated) hash = leak__stacks_hash(frames, stack.nframe, stack.depth);
      id = intern_unlocked(frames, &stack, hash);
      if (stack.nframe > 0 && id != LEAK_STACK_NONE && id != LEAK_STACK_EMPTY)
        *last = (last_long_stack){frames[0], stack.depth, stack.nframe, id, leak__stacks_generation,
                                  leak__stacks_frames_unlocked(id)};
    }
    record_trace_unlocked(key, id, size);
  }
  leak__stacks_unlock();
}

/* Records a new block of domain 0 (in sampled mode: a block that was sampled).  Hot path (allocator
 * hooks): no malloc but leak__malloc, no Python API, the lock for the insert only.  nframe=1, the
 * cheapest setting, gets a body of its own with the frame count known to the compiler. */
static __attribute__((noinline)) void trace_block(int raw, void *ptr, size_t size) {
  uintptr_t address = (uintptr_t)ptr;
  if (LEAK_UNLIKELY(address >> LEAK_TRACE_PTR_BITS)) {
    count_dropped();
    return;
  }
  uint64_t key = LEAK_TRACE_KEY(0, address);
  int nframe = options.nframe;
  if (nframe == 1)
    trace_block_of_one(raw, key, size);
  else
    trace_block_of_many(raw, key, size, nframe);
  this_thread.last_traced_block = address;
}

/* Forgets the trace of a freed domain-0 block (queued in exact mode).  Hot path. */
static __attribute__((noinline)) void forget_block(void *ptr) {
  leak__stacks_lock();
  update_trace_unlocked(LEAK_TRACE_KEY(0, (uintptr_t)ptr), LEAK_PENDING_REMOVE, 0);
  leak__stacks_unlock();
}

/* How realloc took a block's trace out before resizing it: there was none, it was taken out now
 * (its size and stack kept), or its removal was queued. */
enum { UNTRACED_NONE, UNTRACED_NOW, UNTRACED_QUEUED };

/* Takes the trace of a domain-0 block out before realloc resizes it; says how (above), so that the
 * trace can stay if the block does.  Callers in sampled mode check may_be_traced first, without the
 * lock. */
static __attribute__((noinline)) int untrace_block(void *ptr, uint64_t *size, uint32_t *stack) {
  uint64_t key = LEAK_TRACE_KEY(0, (uintptr_t)ptr);
  int how = UNTRACED_NONE;
  leak__stacks_lock();
  if (queueing_unlocked(0)) {
    update_trace_unlocked(key, LEAK_PENDING_REMOVE, 0);
    how = UNTRACED_QUEUED;
  } else {
    flush_pending_unlocked();
    if (leak__traces_remove(&traces, key, size, stack)) {
      count_removed_unlocked(key, *size);
      how = UNTRACED_NOW;
    }
  }
  leak__stacks_unlock();
  return how;
}

/* A realloc failed: the block stays where it was, and so does its trace.  A removal still queued is
 * called off.  One that updates of other threads pushed out of the queue meanwhile (16 of them
 * during one failing call) took the trace with it: counted as a dropped trace. */
static void keep_trace_of_unmoved_block(void *ptr, int how, uint64_t size, uint32_t stack) {
  uint64_t key = LEAK_TRACE_KEY(0, (uintptr_t)ptr);
  leak__stacks_lock();
  if (__atomic_load_n(&tracing, __ATOMIC_RELAXED)) {
    if (how == UNTRACED_NOW) {
      update_trace_unlocked(key, stack, size);
    } else if (how == UNTRACED_QUEUED) {
      leak__pending_op *queued = leak__pending_newest(&pending, key);
      if (queued != NULL && queued->stack == LEAK_PENDING_REMOVE)
        queued->key = 0; /* called off (pending.h) */
      else
        count_dropped();
    }
  }
  leak__stacks_unlock();
}

/* ---- The hooks ------------------------------------------------------------------------------
 * Rules for every hook: may run without the GIL (RAW) and on any thread; no Python API (apart from
 * PyGILState_Check and Py_INCREF as described at the top); no allocation except leak__malloc; one
 * spinlock, never held while calling the allocator below.  The fast paths (hook_*) touch nothing but
 * the thread's countdown and the filter bitmap and end in a tail call; the slow paths are separate,
 * non-inlined functions, so that the fast paths need no stack frame. */

/* MEM and OBJ requests above this go from pymalloc to the RAW domain (its small-request threshold,
 * 512 bytes on 3.8 - 3.13): they take the slow path, which keeps the nested RAW call from counting
 * the same bytes again. */
#define POOL_REQUEST_MAX 512

/* Marks the calling thread as inside a slow path: nested allocations go straight (in_hook for the
 * slow paths, a countdown parked at its maximum for the fast paths).  Returns the countdown, which
 * resume_countdown puts back before the outer call makes its own sampling decision. */
static inline uint64_t enter_hook(void) {
  uint64_t countdown = this_thread.sampler.countdown;
  this_thread.sampler.countdown = UINT64_MAX;
  this_thread.in_hook = 1;
  return countdown;
}

static inline void resume_countdown(uint64_t countdown) { this_thread.sampler.countdown = countdown; }

/* The end of what enter_hook began (after resume_countdown). */
static inline void leave_hook(void) { this_thread.in_hook = 0; }

/* True when a new block of `size` bytes, already allocated, is to be traced: always in exact mode,
 * when the countdown is crossed in sampled mode.  Only in slow paths, whose fast path did not pass. */
static inline int should_trace(size_t size) {
  return options.sample_bytes <= 0 || leak__sampling_decide(&this_thread.sampler, size);
}

/* What a new allocation that missed its fast path needs: to go straight to the allocator below, to
 * be traced (sampling said yes, or exact mode), or a sampling decision after the allocator below
 * ran (requests that pymalloc passes on to the RAW domain). */
enum { ALLOC_STRAIGHT, ALLOC_TRACE, ALLOC_DECIDE_AFTER };
static inline int allocation_plan(const hooked_domain *domain, size_t size) {
  if (this_thread.in_hook || !__atomic_load_n(&tracing, __ATOMIC_RELAXED)) return ALLOC_STRAIGHT;
  if (options.sample_bytes <= 0) return ALLOC_TRACE;
  if (!domain->raw && size > POOL_REQUEST_MAX) return ALLOC_DECIDE_AFTER;
  return leak__sampling_decide(&this_thread.sampler, size) ? ALLOC_TRACE : ALLOC_STRAIGHT;
}

/* The size to ask the allocator below for a new block of `size` bytes: one above pymalloc's
 * threshold when the block will be traced and must live outside the pools (see the top comment). */
static inline size_t outside_pools(const hooked_domain *domain, int plan, size_t size) {
  return plan == ALLOC_TRACE && domain->frees_unhooked && size <= POOL_REQUEST_MAX ? POOL_REQUEST_MAX + 1 : size;
}

/* malloc's slow path: calls the allocator below inside enter_hook/leave_hook, then traces. */
static __attribute__((noinline)) void *malloc_slow(hooked_domain *domain, size_t size) {
  int plan = allocation_plan(domain, size);
  if (plan == ALLOC_STRAIGHT) return domain->inner.malloc(domain->inner.ctx, size);
  uint64_t countdown = enter_hook();
  void *ptr = domain->inner.malloc(domain->inner.ctx, outside_pools(domain, plan, size));
  resume_countdown(countdown);
  if (ptr != NULL && __atomic_load_n(&tracing, __ATOMIC_RELAXED) && (plan == ALLOC_TRACE || should_trace(size)))
    trace_block(domain->raw, ptr, size);
  leave_hook();
  return ptr;
}

/* calloc's slow path (see malloc_slow).  An overflowing count * size makes the allocator below fail,
 * so nothing is traced then. */
static __attribute__((noinline)) void *calloc_slow(hooked_domain *domain, size_t count, size_t size) {
  size_t bytes;
  int plan = __builtin_mul_overflow(count, size, &bytes) ? ALLOC_STRAIGHT : allocation_plan(domain, bytes);
  if (plan == ALLOC_STRAIGHT) return domain->inner.calloc(domain->inner.ctx, count, size);
  uint64_t countdown = enter_hook();
  void *ptr = outside_pools(domain, plan, bytes) != bytes ? domain->inner.calloc(domain->inner.ctx, 1, POOL_REQUEST_MAX + 1)
                                                          : domain->inner.calloc(domain->inner.ctx, count, size);
  resume_countdown(countdown);
  if (ptr != NULL && __atomic_load_n(&tracing, __ATOMIC_RELAXED) && (plan == ALLOC_TRACE || should_trace(bytes)))
    trace_block(domain->raw, ptr, bytes);
  leave_hook();
  return ptr;
}

/* realloc's slow path.  The old trace is removed (or its removal queued) BEFORE the block is
 * resized: once realloc has freed the old address, another thread may get it and trace it, and that
 * trace must not be the one removed.  If realloc fails, the old block is still ours and keeps its
 * trace. */
static __attribute__((noinline)) void *realloc_slow(hooked_domain *domain, void *ptr, size_t size) {
  if (this_thread.in_hook || !__atomic_load_n(&tracing, __ATOMIC_RELAXED))
    return domain->inner.realloc(domain->inner.ctx, ptr, size);
  /* Outside the pools, the sampling decision comes first: a traced block is asked for at its size. */
  int plan = ALLOC_DECIDE_AFTER;
  if (domain->frees_unhooked && size <= POOL_REQUEST_MAX) plan = should_trace(size) ? ALLOC_TRACE : ALLOC_STRAIGHT;
  uint64_t countdown = enter_hook();
  uint64_t old_size = 0;
  uint32_t old_stack = 0;
  int untraced = UNTRACED_NONE;
  if (ptr != NULL && may_be_traced(LEAK_TRACE_KEY(0, (uintptr_t)ptr)))
    untraced = untrace_block(ptr, &old_size, &old_stack);
  void *moved = domain->inner.realloc(domain->inner.ctx, ptr, outside_pools(domain, plan, size));
  resume_countdown(countdown);
  if (moved == NULL) {
    if (untraced != UNTRACED_NONE) keep_trace_of_unmoved_block(ptr, untraced, old_size, old_stack);
  } else if (__atomic_load_n(&tracing, __ATOMIC_RELAXED) &&
             (plan == ALLOC_DECIDE_AFTER ? should_trace(size) : plan == ALLOC_TRACE)) {
    trace_block(domain->raw, moved, size);
  }
  leave_hook();
  return moved;
}

/* free's slow path: drop the trace first (once freed, the address may be handed out and traced
 * again), with in_hook set so that the allocator below does not look again for the blocks it frees
 * inside.  Nested frees (in_hook) are left alone: the outer hook already dropped the trace. */
static __attribute__((noinline)) void free_slow(hooked_domain *domain, void *ptr) {
  if (ptr == NULL || this_thread.in_hook || !__atomic_load_n(&tracing, __ATOMIC_RELAXED)) {
    domain->inner.free(domain->inner.ctx, ptr);
    return;
  }
  uint64_t countdown = enter_hook();
  forget_block(ptr);
  domain->inner.free(domain->inner.ctx, ptr);
  resume_countdown(countdown);
  leave_hook();
}

/* The fast paths, one function per domain and operation: each reads the allocator below from its
 * own hooked_domain at a fixed address instead of through ctx, which saves two loads per call. */
enum { RAW, MEM, OBJ }; /* indexes into domains[] */

/* malloc: straight when the sampling countdown passes; MEM and OBJ requests that pymalloc hands to
 * the RAW domain always take the slow path. */
static inline __attribute__((always_inline)) void *fast_malloc(int index, size_t size) {
  hooked_domain *domain = &domains[index];
  if (LEAK_LIKELY((index == RAW || size <= POOL_REQUEST_MAX) && leak__sampling_skip(&this_thread.sampler, size)))
    return domain->inner.malloc(domain->inner.ctx, size);
  return malloc_slow(domain, size);
}

/* calloc: as malloc, for count * size bytes (an overflow goes to the slow path, which passes it on). */
static inline __attribute__((always_inline)) void *fast_calloc(int index, size_t count, size_t size) {
  hooked_domain *domain = &domains[index];
  size_t bytes;
  if (LEAK_LIKELY(!__builtin_mul_overflow(count, size, &bytes) && (index == RAW || bytes <= POOL_REQUEST_MAX) &&
                  leak__sampling_skip(&this_thread.sampler, bytes)))
    return domain->inner.calloc(domain->inner.ctx, count, size);
  return calloc_slow(domain, count, size);
}

/* realloc: straight when the old block certainly has no trace and the new size is not sampled.  In
 * MEM and OBJ, only up to pymalloc's threshold (bigger requests go through malloc_slow's reasoning),
 * and pymalloc hands a block it did not allocate (a big one being shrunk) to the RAW domain, which
 * must not count the same bytes again: the fast path leaves the address in forwarded_block, and the
 * RAW hook passes a realloc of that very block straight.  (A MEM/OBJ block that pymalloc did own
 * leaves a stale address there; pool addresses are not malloc's, so it only matters if an arena's
 * address range is handed out by malloc later and then realloc'ed: one realloc not counted.) */
static inline __attribute__((always_inline)) void *fast_realloc(int index, void *ptr, size_t size) {
  hooked_domain *domain = &domains[index];
  hook_thread *thread = &this_thread;
  if (index == RAW && LEAK_UNLIKELY((uintptr_t)ptr == thread->forwarded_block && ptr != NULL)) {
    thread->forwarded_block = 0;
    return domain->inner.realloc(domain->inner.ctx, ptr, size);
  }
  if (LEAK_LIKELY((index == RAW || size <= POOL_REQUEST_MAX) && !may_be_traced(LEAK_TRACE_KEY(0, (uintptr_t)ptr)) &&
                  leak__sampling_skip(&thread->sampler, size))) {
    if (index != RAW) thread->forwarded_block = (uintptr_t)ptr;
    return domain->inner.realloc(domain->inner.ctx, ptr, size);
  }
  return realloc_slow(domain, ptr, size);
}

/* free: straight when the filter says the block certainly has no trace. */
static inline __attribute__((always_inline)) void fast_free(int index, void *ptr) {
  hooked_domain *domain = &domains[index];
  if (LEAK_LIKELY(!may_be_traced(LEAK_TRACE_KEY(0, (uintptr_t)ptr)))) {
    domain->inner.free(domain->inner.ctx, ptr);
    return;
  }
  free_slow(domain, ptr);
}

/* The hooks PyMem_SetAllocator installs; `ctx` (the hooked_domain) is only used to recognise them. */
static void *hook_raw_malloc(void *ctx, size_t size) { (void)ctx; return fast_malloc(RAW, size); }
static void *hook_raw_calloc(void *ctx, size_t n, size_t size) { (void)ctx; return fast_calloc(RAW, n, size); }
static void *hook_raw_realloc(void *ctx, void *ptr, size_t size) { (void)ctx; return fast_realloc(RAW, ptr, size); }
static void hook_raw_free(void *ctx, void *ptr) { (void)ctx; fast_free(RAW, ptr); }
static void *hook_mem_malloc(void *ctx, size_t size) { (void)ctx; return fast_malloc(MEM, size); }
static void *hook_mem_calloc(void *ctx, size_t n, size_t size) { (void)ctx; return fast_calloc(MEM, n, size); }
static void *hook_mem_realloc(void *ctx, void *ptr, size_t size) { (void)ctx; return fast_realloc(MEM, ptr, size); }
static void hook_mem_free(void *ctx, void *ptr) { (void)ctx; fast_free(MEM, ptr); }
static void *hook_obj_malloc(void *ctx, size_t size) { (void)ctx; return fast_malloc(OBJ, size); }
static void *hook_obj_calloc(void *ctx, size_t n, size_t size) { (void)ctx; return fast_calloc(OBJ, n, size); }
static void *hook_obj_realloc(void *ctx, void *ptr, size_t size) { (void)ctx; return fast_realloc(OBJ, ptr, size); }
static void hook_obj_free(void *ctx, void *ptr) { (void)ctx; fast_free(OBJ, ptr); }

/* The hooks of domains[i], in domain_ids order (ctx is filled in at install). */
static const PyMemAllocatorEx hook_sets[3] = {
    {NULL, hook_raw_malloc, hook_raw_calloc, hook_raw_realloc, hook_raw_free},
    {NULL, hook_mem_malloc, hook_mem_calloc, hook_mem_realloc, hook_mem_free},
    {NULL, hook_obj_malloc, hook_obj_calloc, hook_obj_realloc, hook_obj_free},
};

#if PY_VERSION_HEX >= 0x030D0000
/* 3.13+: an object was created (possibly in a block reused from a freelist, which the allocator
 * never saw): give its block the current stack if the block is traced, as tracemalloc does; then
 * let the previous tracer run.  Called with the GIL held; same rules as the hooks.
 *
 * The creation that follows the allocation of its block needs no new stack: the hook recorded this
 * very stack a moment ago (last_traced_block).  That shortcut holds once: the block is forgotten
 * here, because the next creation in the same block, with no allocation in between, is a reuse
 * from a freelist and must record its own site. */
static int ref_tracer(PyObject *obj, PyRefTracerEvent event, void *data) {
  (void)data;
  if (event == PyRefTracer_CREATE && !this_thread.in_hook && __atomic_load_n(&tracing, __ATOMIC_RELAXED)) {
    uintptr_t block = leak__object_block_address(obj);
    uint64_t key = LEAK_TRACE_KEY(0, block);
    if (block == this_thread.last_traced_block) {
      this_thread.last_traced_block = 0;
    } else if (may_be_traced(key)) {
      this_thread.in_hook = 1;
      int nframe = options.nframe;
      leak__frame frames[nframe + 1];
      captured_stack stack;
      capture_stack(frames, nframe, 0, &stack);
      uint32_t hash = leak__stacks_hash(frames, stack.nframe, stack.depth);
      leak__stacks_lock();
      /* the block's newest update may still be queued: a put gets the new stack there */
      leak__pending_op *queued = leak__pending_newest(&pending, key);
      leak__trace *trace = queued == NULL ? leak__traces_find(&traces, key) : NULL;
      if ((queued != NULL && queued->stack != LEAK_PENDING_REMOVE) || trace != NULL) {
        leak__stack_id id = intern_unlocked(frames, &stack, hash);
        if (id != LEAK_STACK_NONE) {
          if (queued != NULL)
            queued->stack = id;
          else
            trace->stack = id;
        }
      }
      leak__stacks_unlock();
      this_thread.in_hook = 0;
    }
  }
  if (previous_ref_tracer != NULL) return previous_ref_tracer(obj, event, previous_ref_tracer_data);
  return 0;
}
#endif

/* ---- fork ------------------------------------------------------------------------------------ */

/* The forking thread must not trace while it holds the lock (an atfork handler of someone else could
 * allocate), hence in_hook. */
static void atfork_prepare(void) {
  if (!hooks_installed) return;
  this_thread.in_hook = 1;
  leak__stacks_lock();
  fork_locked = 1;
}

/* In the parent: what prepare took is released; tracing goes on. */
static void atfork_parent(void) {
  if (!fork_locked) return;
  fork_locked = 0;
  leak__stacks_unlock();
  this_thread.in_hook = 0;
}

/* Only the forking thread exists here; everything runs before CPython's own after-fork code, so no
 * Python API at all.  leak__free is the C library's free, which glibc makes safe in a fork child. */
static void atfork_child(void) {
  if (!fork_locked) return;
  fork_locked = 0;
  leak__stacks_lock_reset_after_fork();
  leak__traces_reset(&traces);
  leak__pending_drop(&pending);
  traced_current = traced_peak = 0;
  domain_count = 0;
  __atomic_store_n(&dropped, 0, __ATOMIC_RELAXED);
  if (options.fork_mode == LEAK_TRACER_FORK_STOP) {
    __atomic_store_n(&tracing, 0, __ATOMIC_RELAXED);
    leak__sampling_end();
  }
  reset_filter_unlocked(__atomic_load_n(&tracing, __ATOMIC_RELAXED) && options.sample_bytes <= 0);
  this_thread.in_hook = 0;
}

/* Once per process (pthread_once): the handlers are no-ops while the hooks are not installed. */
static void register_atfork(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* ---- The C API ------------------------------------------------------------------------------- */

/* True when the three domains are CPython's defaults, malloc under pymalloc, with nothing on top. */
static int plain_pymalloc(void) {
  const char *name = _PyMem_GetCurrentAllocatorName();
  return name != NULL && strcmp(name, "pymalloc") == 0;
}

/* Installs the hooks on the domains that do not have them yet, each chained to the allocator found
 * there.  Sampling every 64 KiB or more over plain pymalloc, MEM and OBJ keep pymalloc's free (see the
 * top comment); their ctx is then pymalloc's own, for that free, and the hooks never read it. */
#define UNHOOKED_FREES_MIN_INTERVAL (64 * 1024)
static void install_hooks(int64_t sample_bytes) {
  int frees_unhooked = sample_bytes >= UNHOOKED_FREES_MIN_INTERVAL && !hooks_installed && plain_pymalloc();
  for (int i = 0; i < 3; i++) {
    if (domain_hooked[i]) continue;
    PyMem_GetAllocator(domain_ids[i], &domains[i].inner);
    domains[i].raw = domain_ids[i] == PYMEM_DOMAIN_RAW;
    domains[i].frees_unhooked = frees_unhooked && !domains[i].raw;
    PyMemAllocatorEx hook = hook_sets[i];
    hook.ctx = &domains[i];
    if (domains[i].frees_unhooked) {
      hook.ctx = domains[i].inner.ctx;
      hook.free = domains[i].inner.free;
    }
    PyMem_SetAllocator(domain_ids[i], &hook);
    domain_hooked[i] = 1;
  }
#if PY_VERSION_HEX >= 0x030D0000
  if (!ref_tracer_installed) {
    previous_ref_tracer = PyRefTracer_GetTracer(&previous_ref_tracer_data);
    if (PyRefTracer_SetTracer(ref_tracer, NULL) == 0) ref_tracer_installed = 1;
  }
#endif
  hooks_installed = 1;
}

/* Puts back what install_hooks found, where our hook is still on top.  Where another tool (say
 * tracemalloc) wrapped ours meanwhile, restoring would silently unhook it too, so our hook stays,
 * pass-through while not tracing, and the next start reuses it. */
static void uninstall_hooks(void) {
  int left = 0;
  for (int i = 0; i < 3; i++) {
    if (!domain_hooked[i]) continue;
    PyMemAllocatorEx current;
    PyMem_GetAllocator(domain_ids[i], &current);
    if (current.malloc == hook_sets[i].malloc) {
      PyMem_SetAllocator(domain_ids[i], &domains[i].inner);
      domain_hooked[i] = 0;
    } else {
      left = 1;
    }
  }
#if PY_VERSION_HEX >= 0x030D0000
  if (ref_tracer_installed) {
    void *data;
    if (PyRefTracer_GetTracer(&data) == ref_tracer) {
      PyRefTracer_SetTracer(previous_ref_tracer, previous_ref_tracer_data);
      ref_tracer_installed = 0;
      previous_ref_tracer = NULL;
    } else {
      left = 1;
    }
  }
#endif
  hooks_installed = left;
}

/* Empties the traces (and the stacks unless a snapshot pins them) in one step; what was detached is
 * freed after the lock is released, because dropping code objects runs Python's deallocators. */
static void clear_tables(int stop) {
  leak__trace_table old_traces;
  leak__stacks_lock();
  if (stop) __atomic_store_n(&tracing, 0, __ATOMIC_RELAXED);
  old_traces = traces;
  memset(&traces, 0, sizeof(traces));
  leak__pending_drop(&pending);
  traced_current = traced_peak = 0;
  domain_count = 0;
  reset_filter_unlocked(__atomic_load_n(&tracing, __ATOMIC_RELAXED) && options.sample_bytes <= 0);
  leak__stack_store *old_stacks = leak__stacks_detach_unlocked();
  leak__stacks_unlock();
  leak__traces_reset(&old_traces);
  leak__stacks_release(old_stacks);
}

/* Validates everything before touching anything, so a refused start leaves the tracer as it was. */
int leak_tracer_start(const leak_tracer_options *requested) {
  leak_tracer_options wanted = LEAK_TRACER_OPTIONS_INIT;
  if (requested != NULL) wanted = *requested;
  if (wanted.nframe < 1 || wanted.nframe > LEAK_TRACER_MAX_NFRAME) return LEAK_EINVAL;
  if (wanted.sample_bytes < 0) return LEAK_EINVAL;
  if (wanted.fork_mode != LEAK_TRACER_FORK_CONTINUE && wanted.fork_mode != LEAK_TRACER_FORK_STOP)
    return LEAK_EINVAL;
  if (!Py_IsInitialized()) return LEAK_ENOPYTHON;
  if (__atomic_load_n(&tracing, __ATOMIC_RELAXED)) return LEAK_EBUSY;
  /* Hooks left below another tool's after a stop: unhook those that are on top again by now.  Hooks
   * of a sampled run that still lack their free cannot trace exactly. */
  if (hooks_installed) uninstall_hooks();
  if (wanted.sample_bytes <= 0 && ((domain_hooked[MEM] && domains[MEM].frees_unhooked) ||
                                   (domain_hooked[OBJ] && domains[OBJ].frees_unhooked)))
    return LEAK_EAGAIN;
  /* A stopped fork child may still have its hooks (pass-through) and stale traces. */
  clear_tables(0);
  leak__stacks_lock();
  int rc = leak__traces_reserve(&traces, 1);
  leak__stacks_unlock();
  if (rc < 0) return rc;
  options = wanted;
  queue_from_capacity = options.sample_bytes > 0 ? SIZE_MAX : exact_queue_from;
  /* Sampled: the fast paths pass from the first allocation that seeds each thread.  Exact: they
   * never pass, and the filter sends every free to the slow path. */
  if (options.sample_bytes > 0)
    leak__sampling_configure(options.sample_bytes, options.seed);
  else
    leak__sampling_end();
  leak__stacks_lock();
  reset_filter_unlocked(options.sample_bytes <= 0);
  leak__stacks_unlock();
  __atomic_store_n(&dropped, 0, __ATOMIC_RELAXED);
  pthread_once(&atfork_once, register_atfork);
  install_hooks(options.sample_bytes);
  __atomic_store_n(&tracing, 1, __ATOMIC_RELEASE);
  return 0;
}

/* Tracing off first (the hooks turn pass-through), then unhook, then free: a hook still running on
 * another thread finds `tracing` clear under the lock and stores nothing. */
int leak_tracer_stop(void) {
  if (!hooks_installed && !__atomic_load_n(&tracing, __ATOMIC_RELAXED)) return 0;
  __atomic_store_n(&tracing, 0, __ATOMIC_RELEASE);
  leak__sampling_end();
  if (hooks_installed) uninstall_hooks();
  clear_tables(1);
  return 0;
}

int leak_tracer_is_tracing(void) { return __atomic_load_n(&tracing, __ATOMIC_RELAXED) != 0; }

int leak_tracer_clear(void) {
  clear_tables(0);
  return 0;
}

int leak_tracer_traceback_limit(void) { return options.nframe; }

int leak_tracer_get_options(leak_tracer_options *out) {
  if (out == NULL) return LEAK_EINVAL;
  *out = options;
  return 0;
}

int leak_tracer_traced_memory(size_t *current, size_t *peak) {
  leak__stacks_lock();
  flush_pending_unlocked();
  if (current) *current = traced_current;
  if (peak) *peak = traced_peak;
  leak__stacks_unlock();
  return 0;
}

int leak_tracer_reset_peak(void) {
  leak__stacks_lock();
  flush_pending_unlocked();
  traced_peak = traced_current;
  leak__stacks_unlock();
  return 0;
}

int leak_tracer_memory(size_t *bytes) {
  if (bytes == NULL) return LEAK_EINVAL;
  leak__stacks_lock();
  flush_pending_unlocked();
  size_t total = leak__traces_memory(&traces) + leak__stacks_memory_unlocked();
  leak__stacks_unlock();
  total += sizeof(maybe_traced);
  *bytes = total + sizeof(domain_numbers);
  return 0;
}

int leak_tracer_dropped(uint64_t *count) {
  if (count == NULL) return LEAK_EINVAL;
  *count = __atomic_load_n(&dropped, __ATOMIC_RELAXED);
  return 0;
}

/* Safe with or without the GIL: the stack is interned only with it, as in the RAW hook. */
int leak_track(unsigned domain, uintptr_t ptr, size_t size) {
  if (ptr == 0 || (ptr >> LEAK_TRACE_PTR_BITS) != 0) return LEAK_EINVAL;
  if (!__atomic_load_n(&tracing, __ATOMIC_RELAXED)) return LEAK_ENOTSTARTED;
  if (options.sample_bytes > 0 && !leak__sampling_decide(&this_thread.sampler, size)) {
    /* Not sampled this time: an older trace of the same block must not survive. */
    leak_untrack(domain, ptr);
    return 0;
  }
  int nframe = options.nframe;
  leak__frame frames[nframe];
  captured_stack stack;
  capture_stack(frames, nframe, 1, &stack);
  uint32_t hash = leak__stacks_hash(frames, stack.nframe, stack.depth);
  int rc = 0;
  leak__stacks_lock();
  flush_pending_unlocked();
  int index = domain_index_unlocked(domain, 1);
  if (!__atomic_load_n(&tracing, __ATOMIC_RELAXED)) {
    rc = LEAK_ENOTSTARTED;
  } else if (index < 0) {
    rc = LEAK_ENOMEM;
  } else {
    leak__stack_id id = intern_unlocked(frames, &stack, hash);
    rc = id == LEAK_STACK_NONE ? LEAK_ENOMEM : put_trace_unlocked(LEAK_TRACE_KEY(index, ptr), id, size);
  }
  leak__stacks_unlock();
  if (rc == LEAK_ENOMEM) count_dropped();
  return rc;
}

int leak_untrack(unsigned domain, uintptr_t ptr) {
  if (!__atomic_load_n(&tracing, __ATOMIC_RELAXED)) return LEAK_ENOTSTARTED;
  if ((ptr >> LEAK_TRACE_PTR_BITS) != 0) return 0;
  leak__stacks_lock();
  flush_pending_unlocked();
  int index = domain_index_unlocked(domain, 0);
  uint64_t size;
  if (index >= 0) {
    uint64_t key = LEAK_TRACE_KEY(index, ptr);
    if (leak__traces_remove(&traces, key, &size, NULL)) count_removed_unlocked(key, size);
  }
  leak__stacks_unlock();
  return 0;
}

/* ---- For the snapshot code ------------------------------------------------------------------- */

/* One pass over the table under the lock: the copy is a consistent picture of one instant, and its
 * stacks are pinned in the same critical section so no clear can free them in between. */
int leak__tracer_copy_traces(leak__trace_copy **out, size_t *count) {
  *out = NULL;
  *count = 0;
  leak__stacks_lock();
  flush_pending_unlocked();
  size_t n = traces.count;
  leak__trace_copy *copy = NULL;
  if (n > 0) {
    copy = leak__malloc(n * sizeof(*copy));
    if (copy == NULL) {
      leak__stacks_unlock();
      return LEAK_ENOMEM;
    }
    size_t j = 0;
    for (size_t i = 0; i < traces.capacity; i++) {
      const leak__trace *trace = &traces.slots[i];
      if (trace->key == 0) continue;
      unsigned index = LEAK_TRACE_KEY_DOMAIN_INDEX(trace->key);
      copy[j].ptr = LEAK_TRACE_KEY_PTR(trace->key);
      copy[j].size = leak__traces_size(&traces, trace);
      copy[j].weight = leak__tracer_weight(copy[j].size);
      copy[j].stack = trace->stack;
      copy[j].domain = index == 0 ? 0 : domain_numbers[index - 1];
      j++;
    }
  }
  /* pinned inside the same critical section, so no clear can come between the copy and the pin */
  leak__stacks_pin_unlocked();
  leak__stacks_unlock();
  *out = copy;
  *count = n;
  return 0;
}

/* The object's block is found by its start address (frames.c knows the headers of each version). */
int leak__tracer_object_stack(PyObject *obj, leak__stack_id *out) {
  if (obj == NULL || out == NULL) return LEAK_EINVAL;
  uint64_t key = LEAK_TRACE_KEY(0, leak__object_block_address(obj));
  int rc = LEAK_ENOENT;
  leak__stacks_lock();
  flush_pending_unlocked();
  const leak__trace *trace = leak__traces_find(&traces, key);
  if (trace != NULL) {
    *out = trace->stack;
    rc = 0;
  }
  leak__stacks_unlock();
  return rc;
}

/* In sampled mode the weight depends only on the size (and R), so traces need not store it. */
double leak__tracer_weight(uint64_t size) {
  return options.sample_bytes > 0 ? leak__sampling_weight(size) : 1.0;
}

/* Under the lock: the count is a size_t that concurrent hooks update. */
size_t leak__tracer_trace_count(void) {
  leak__stacks_lock();
  flush_pending_unlocked();
  size_t n = traces.count;
  leak__stacks_unlock();
  return n;
}

/* Read by the next start only. */
void leak__tracer_queue_from(size_t capacity) { exact_queue_from = capacity; }

/* Thread-local, so only the calling thread's own. */
uint64_t leak__tracer_thread_countdown(void) { return this_thread.sampler.countdown; }
