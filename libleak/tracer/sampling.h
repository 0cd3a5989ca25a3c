/* Sampling by bytes: which allocations the tracer records in sampled mode.
 *
 * Each thread counts down a number of bytes drawn from an exponential distribution of mean R; the
 * allocation that takes the countdown to zero or below is sampled and a new countdown is drawn.
 * Because the exponential distribution has no memory, this is a Poisson process of rate 1/R over
 * the allocated bytes, whatever the sizes: a block of S bytes is sampled with probability
 * 1 - exp(-S/R), independently of the others (see include/libleak/tracer.h for the weights and the
 * expected error).
 *
 * The fast path (leak__sampling_skip) is what an unsampled allocation costs in the allocator hooks:
 * one comparison of the thread's generation with the global one, one of the size with the
 * countdown, and a subtraction.  Everything else (seeding a thread, drawing, sampling off) is in the
 * slow path, leak__sampling_decide.  The generation is odd while a sampled session runs and even
 * otherwise; a thread adopts only the odd generation it read, so while sampling is off (exact mode,
 * or not tracing) no thread's fast path passes and every hook takes its slow path.
 *
 * The random numbers come from a per-thread xorshift generator seeded from a global seed and a
 * per-thread counter, so a fixed seed gives the same samples for the same sequence of allocations on
 * the same thread schedule.  (pymalloc's own bookkeeping allocations depend on where the kernel maps
 * its arenas, so two runs of one program may still differ by a sample or two.)
 * Rules: the fast path and the slow path run inside allocator hooks: no locks, no malloc, no Python. */
#ifndef LIBLEAK_SAMPLING_H
#define LIBLEAK_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

/* The tracer keeps each thread's sampler state in its own thread-local block (LEAK_TLS_FAST, in
 * core/internal.h), next to the rest of what its hooks need, so one address serves all. */
typedef struct leak__sampler_thread {
  uint64_t countdown;  /* bytes left before the next sample (< 2^63); 2^63 or more: just crossed */
  uint64_t generation; /* the sampled session this state was drawn for (odd), 0 before any */
  uint64_t rng;        /* xorshift64* state */
} leak__sampler_thread;

/* Odd while sampling is on, a new value for each session.  Written with the GIL held by configure and
 * end (tracer start and stop, or a fork child); read with relaxed atomics by the hooks. */
/* Hidden in the declaration too, so that every module reads it directly, not through the GOT. */
extern __attribute__((visibility("hidden"))) uint64_t leak__sampling_generation;

/* Starts a sampled session: the mean interval (bytes, > 0) and the seed (0: a fresh one from the
 * clock) for every thread. */
void leak__sampling_configure(int64_t mean_bytes, uint64_t seed);

/* Ends the session: from now on every fast path fails.  Async-signal-safe (one atomic add), so a
 * fork child may call it. */
void leak__sampling_end(void);

/* 1 when an allocation of `size` bytes by the thread that owns `state` is certainly not sampled: the
 * thread's countdown is current and does not go below zero; it has been counted down.  0 when the
 * slow path must decide: the countdown is stale (nothing changed), or it was crossed, and then it has
 * wrapped around below zero, to 2^63 or more, which leak__sampling_decide reads as "crossed".
 * Inline: the whole cost of an unsampled allocation.  On x86-64 the subtraction is done in memory
 * and the borrow tested directly (compilers do not fuse the two), which saves three instructions on
 * every allocation; elsewhere the same in C. */
static inline int leak__sampling_skip(leak__sampler_thread *state, size_t size) {
  if (__builtin_expect(state->generation != __atomic_load_n(&leak__sampling_generation, __ATOMIC_RELAXED), 0))
    return 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __asm__ goto("subq %1, %0\n\tjb %l[crossed]"
               : /* no outputs: asm goto; the countdown is written through its memory operand */
               : "m"(state->countdown), "r"((uint64_t)size)
               : "cc", "memory"
               : crossed);
  return 1;
crossed:
  return 0;
#else
  uint64_t countdown = state->countdown;
  state->countdown = countdown - size;
  return __builtin_expect(size <= countdown, 1);
#endif
}

/* The slow path, for an allocation whose fast path failed or was never tried (never after one that
 * passed: its bytes would count twice): 1 when the allocation is sampled (a new countdown is drawn),
 * 0 when it is not, or when sampling is off.  Seeds the thread on its first allocation of a session. */
int leak__sampling_decide(leak__sampler_thread *state, size_t size);

/* The weight of a sampled block of `size` bytes: 1 / (1 - exp(-size/R)). */
double leak__sampling_weight(uint64_t size);

/* The mean interval in effect. */
int64_t leak__sampling_mean(void);

#endif
