/* libleak: the allocation tracer (tracemalloc's job, cheap enough to leave on).
 *
 * The tracer hooks CPython's three allocator domains (RAW, MEM, OBJ) and remembers, for every live
 * block, its size and the Python stack that allocated it.  Stacks are stored as (code object,
 * instruction offset) pairs and interned, so one traced allocation costs the same whatever the depth
 * of the stack beyond the `nframe` frames kept.  Snapshots (libleak/snapshot.h) turn the live traces
 * into statistics, diffs and files.
 *
 * Two modes:
 *  - exact (sample_bytes == 0): every allocation is traced, as tracemalloc does;
 *  - sampled (sample_bytes == R > 0): each thread counts down a number of bytes drawn from an
 *    exponential distribution of mean R; the allocation that crosses zero is traced and the next
 *    countdown is drawn.  Sampling is then a Poisson process over the allocated bytes, so a block of
 *    S bytes is traced with probability p(S) = 1 - exp(-S/R), and a traced block stands for
 *    w(S) = 1/p(S) blocks (Go's heap profiler and tcmalloc do the same).  Summing w and S*w over the
 *    traced blocks of a site gives unbiased estimates of its block count and bytes.
 *
 *    Expected error: for a site holding N blocks of S bytes, the number k of traced blocks is
 *    binomial(N, p) and the estimate is k/p, so its relative standard error is
 *    sqrt((1-p)/(N*p)) = 1/sqrt(expected samples) * sqrt(1-p).  With n = N*p the expected number of
 *    samples (about the site's bytes / R for small blocks), the relative error is at most 1/sqrt(n):
 *    10% for a site that drew 100 samples (~100*R bytes), 1% for 10,000 samples.  Blocks of S >= R
 *    are traced with probability >= 63%; blocks of S >> R are always traced with weight ~1.
 *    Traced-memory counters (leak_tracer_traced_memory) are estimates in sampled mode: each traced
 *    block adds round(S*w(S)) bytes.
 *
 * Threads: every function may be called from any thread, but leak_tracer_start, leak_tracer_stop and
 * leak_tracer_clear need the GIL (they take or release references to code objects).  The counters and
 * leak_track/leak_untrack do not. */
#ifndef LIBLEAK_TRACER_H
#define LIBLEAK_TRACER_H

#include <stddef.h>
#include <stdint.h>
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LEAK_TRACER_MAX_NFRAME 1024

/* What a forked child does with the tracer (pthread_atfork). */
#define LEAK_TRACER_FORK_CONTINUE 0 /* keep tracing with empty tables: the parent's traces are dropped */
#define LEAK_TRACER_FORK_STOP 1     /* stop tracing in the child */

/* Options of leak_tracer_start.  Initialise with LEAK_TRACER_OPTIONS_INIT and change the fields you
 * care about, so fields added later get their defaults. */
typedef struct leak_tracer_options {
  int nframe;              /* frames kept per stack, 1 .. LEAK_TRACER_MAX_NFRAME (tracemalloc: 1) */
  long long sample_bytes;  /* 0: trace every allocation; R > 0: sample with a mean interval of R bytes */
  int fork_mode;           /* LEAK_TRACER_FORK_CONTINUE or LEAK_TRACER_FORK_STOP */
  unsigned long long seed; /* seed of the samplers' random numbers; 0: a fresh one at each start */
} leak_tracer_options;
#define LEAK_TRACER_OPTIONS_INIT {1, 0, LEAK_TRACER_FORK_CONTINUE, 0}

/* Starts tracing (NULL options: the defaults).  LEAK_EBUSY when already tracing, LEAK_EINVAL for
 * nframe outside 1..1024, sample_bytes < 0 or an unknown fork_mode, LEAK_ENOMEM when the first
 * tables cannot be allocated.  LEAK_EAGAIN when exact tracing is asked for while the hooks of an
 * earlier sampled run are still held below another tool's (tracemalloc started after libleak and
 * still running): sampled runs over plain pymalloc leave small-object frees unhooked, which exact
 * tracing needs; stop the other tool first.  Needs an initialised interpreter and the GIL. */
LEAK_EXTERN int leak_tracer_start(const leak_tracer_options *options);

/* Stops tracing and forgets every trace (as tracemalloc.stop).  Not tracing is not an error.
 * Needs the GIL. */
LEAK_EXTERN int leak_tracer_stop(void);

/* 1 while tracing, else 0. */
LEAK_EXTERN int leak_tracer_is_tracing(void);

/* Forgets every trace and resets the counters, and keeps tracing if it was.  Needs the GIL. */
LEAK_EXTERN int leak_tracer_clear(void);

/* The nframe of the current (or last) start; 1 before the first start. */
LEAK_EXTERN int leak_tracer_traceback_limit(void);

/* The options of the current (or last) start into *out. */
LEAK_EXTERN int leak_tracer_get_options(leak_tracer_options *out);

/* Bytes of the traced blocks now and at their peak since start or leak_tracer_reset_peak (0 and 0
 * when not tracing).  Estimates in sampled mode (see above).  Either pointer may be NULL. */
LEAK_EXTERN int leak_tracer_traced_memory(size_t *current, size_t *peak);

/* Sets the peak to the current traced memory. */
LEAK_EXTERN int leak_tracer_reset_peak(void);

/* The real bytes held by the tracer's tables (traces, stacks, filters). */
LEAK_EXTERN int leak_tracer_memory(size_t *bytes);

/* How many traces were dropped because the tracer could not get memory since start (the
 * allocations themselves succeeded).  A realloc that fails keeps its block's trace, except in one
 * rare case counted here too: in exact mode with a big trace table, when other threads made 16
 * traced allocations or frees during the failing call. */
LEAK_EXTERN int leak_tracer_dropped(uint64_t *count);

/* Domains.  Blocks of Python's allocators are traced in domain 0 by the hooks.  Extensions that manage
 * their own memory (NumPy: domain 389047) report it to CPython with PyTraceMalloc_Track/Untrack; on
 * CPython 3.8 - 3.13 those calls reach tracemalloc only and return -2 unless tracemalloc itself is
 * tracing (checked on each version), and no hook lets another tracer receive them.
 * leak_extbuffers_redirect (below) redirects the loaded extensions' imports of those two functions
 * to leak_track/leak_untrack; libleak.tracer calls it while it traces.  A C extension or host may
 * also call leak_track/leak_untrack itself (as well as, or instead of, PyTraceMalloc_Track).  Nothing is counted twice: those buffers do not
 * come from Python's allocators, and within Python's allocators only the outermost call traces a
 * block (pymalloc handing a big request to the RAW domain is one block, traced once).
 *
 * Traces a block that some other allocator handed out (a memory extension's buffers): `domain`
 * names that allocator (0 is Python's heap).  Tracking a pointer already traced in the domain
 * replaces its trace.  LEAK_ENOTSTARTED when not tracing; LEAK_EINVAL for ptr 0; LEAK_ENOMEM when
 * the trace could not be stored (counted as dropped).  Safe without the GIL: the stack is recorded
 * only if the calling thread holds the GIL, else the trace gets the empty stack. */
LEAK_EXTERN int leak_track(unsigned domain, uintptr_t ptr, size_t size);

/* Forgets the trace of `ptr` in `domain`.  LEAK_ENOTSTARTED when not tracing; untracking an unknown
 * pointer is not an error. */
LEAK_EXTERN int leak_untrack(unsigned domain, uintptr_t ptr);

/* Extension buffers.  Redirects every loaded object's imports of PyTraceMalloc_Track/Untrack (C
 * extensions such as NumPy's) to functions that call leak_track/leak_untrack and then CPython's,
 * so the buffers they report are traced with the calling thread's stack, on every thread, and
 * tracemalloc still gets every call.  libleak.tracer does this at start and after each extension
 * import while it traces; a host that starts the tracer from C calls it after loading extensions
 * (it returns at once when no object was loaded since).  *redirected (may be NULL): the slots
 * changed by this call.  LEAK_ENOSYS on platforms other than Linux x86-64 and aarch64; LEAK_EACCES
 * when a read-only slot could not be made writable (the other slots are redirected anyway).
 * Needs neither the GIL nor a running tracer: while the tracer is stopped the redirected functions
 * only call CPython's. */
LEAK_EXTERN int leak_extbuffers_redirect(size_t *redirected);

/* Puts CPython's functions back in every redirected slot.  *restored (may be NULL): how many. */
LEAK_EXTERN int leak_extbuffers_restore(size_t *restored);

#ifdef __cplusplus
}
#endif
#endif
