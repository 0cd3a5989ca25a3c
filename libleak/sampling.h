/* Sampling by bytes: which allocations the tracer records in sampled mode.
 *
 * Each thread counts down a number of bytes drawn from an exponential distribution of mean R; the
 * allocation that takes the countdown to zero or below is sampled and a new countdown is drawn.
 * Because the exponential distribution has no memory, this is a Poisson process of rate 1/R over
 * the allocated bytes, whatever the sizes: a block of S bytes is sampled with probability
 * 1 - exp(-S/R), independently of the others (see include/libleak/tracer.h for the weights and the
 * expected error).  An unsampled allocation costs a comparison, a subtraction and a branch.
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

typedef struct leak__sampler_thread {
  int64_t countdown;   /* bytes left before the next sample */
  uint64_t rng;        /* xorshift64* state */
  uint32_t generation; /* the configuration this state was drawn for */
} leak__sampler_thread;

/* This thread's sampler state.  Thread-local: no lock.  The initial-exec TLS model makes every access
 * one instruction instead of a call to __tls_get_addr (the hooks run on every allocation); it uses a
 * few dozen bytes of the static TLS surplus glibc keeps for dlopen'ed modules. */
#define LEAK_TLS_FAST __attribute__((tls_model("initial-exec")))
extern __thread leak__sampler_thread leak__sampler_tls LEAK_TLS_FAST;
/* Bumped by each leak__sampling_configure, so that every thread redraws its countdown.  Written with
 * the GIL held while the tracer is not tracing; read with relaxed atomics by the hooks. */
extern uint32_t leak__sampling_generation;

/* Sets the mean interval (bytes, > 0) and the seed (0: a fresh one from the clock) for every thread. */
void leak__sampling_configure(int64_t mean_bytes, uint64_t seed);

/* The slow path of leak__sampling_take: redraws the countdown; returns 1 when the allocation that
 * crossed it is sampled. */
int leak__sampling_crossed(size_t size);

/* 1 when an allocation of `size` bytes is to be sampled, else 0. */
static inline int leak__sampling_take(size_t size) {
  leak__sampler_thread *state = &leak__sampler_tls;
  if (__builtin_expect(state->generation == __atomic_load_n(&leak__sampling_generation, __ATOMIC_RELAXED), 1)) {
    state->countdown -= (int64_t)size;
    if (__builtin_expect(state->countdown > 0, 1)) return 0;
  }
  return leak__sampling_crossed(size);
}

/* The weight of a sampled block of `size` bytes: 1 / (1 - exp(-size/R)). */
double leak__sampling_weight(uint64_t size);

/* The mean interval in effect. */
int64_t leak__sampling_mean(void);

#endif
