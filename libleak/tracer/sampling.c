/* Sampling by bytes.  Read sampling.h first.
 *
 * Rules: leak__sampling_skip and leak__sampling_decide run inside allocator hooks, with or without
 * the GIL: thread-local state only, no locks, no malloc, no Python API (log() from libm is pure). */
#include "core/internal.h"
#include "tracer/sampling.h"

#include <math.h>
#include <time.h>

uint64_t leak__sampling_generation = 0;

/* The mean and the seed, written by leak__sampling_configure (GIL held, not tracing) and only read by
 * the hooks afterwards; the per-thread counter hands each thread its own stream. */
static int64_t mean_bytes = 1;
static uint64_t base_seed = 1;
static uint64_t threads_seeded;

/* splitmix64: turns the seed and a thread number into a well-mixed, never-zero xorshift state. */
static uint64_t mix_seed(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x ? x : 0x2545F4914F6CDD1Dull;
}

/* xorshift64*: fast, small, plenty for drawing sampling intervals. */
static uint64_t next_random(leak__sampler_thread *state) {
  uint64_t x = state->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  state->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* An exponentially distributed interval of mean `mean_bytes`, at least one byte. */
static int64_t draw_interval(leak__sampler_thread *state) {
  double u = (double)((next_random(state) >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
  double bytes = -log(u) * (double)mean_bytes;
  if (bytes < 1.0) return 1;
  if (bytes > 9.0e18) return INT64_MAX;
  return (int64_t)bytes;
}

void leak__sampling_configure(int64_t mean, uint64_t seed) {
  mean_bytes = mean > 0 ? mean : 1;
  if (seed == 0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    seed = ((uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec) ^ (uint64_t)(uintptr_t)&now;
  }
  base_seed = seed;
  __atomic_store_n(&threads_seeded, 0, __ATOMIC_RELAXED);
  /* the next odd value; the release makes the mean and the seed visible to whoever reads it */
  uint64_t generation = __atomic_load_n(&leak__sampling_generation, __ATOMIC_RELAXED);
  __atomic_store_n(&leak__sampling_generation, generation + ((generation & 1) ? 2 : 1), __ATOMIC_RELEASE);
}

/* The next even value.  Only the thread that starts and stops the tracer writes (or a fork child, where
 * it is the only thread), so a plain read-modify-write of an atomic is enough. */
void leak__sampling_end(void) {
  uint64_t generation = __atomic_load_n(&leak__sampling_generation, __ATOMIC_RELAXED);
  __atomic_store_n(&leak__sampling_generation, generation + ((generation & 1) ? 1 : 2), __ATOMIC_RELEASE);
}

int leak__sampling_decide(leak__sampler_thread *state, size_t size) {
  uint64_t generation = __atomic_load_n(&leak__sampling_generation, __ATOMIC_ACQUIRE);
  if ((generation & 1) == 0) return 0;
  if (state->generation != generation) {
    /* First allocation of this thread in this session: seed and draw, then count it. */
    uint64_t thread_number = __atomic_fetch_add(&threads_seeded, 1, __ATOMIC_RELAXED);
    state->rng = mix_seed(base_seed ^ mix_seed(thread_number));
    state->generation = generation;
    state->countdown = (uint64_t)draw_interval(state);
  }
  /* a countdown of 2^63 or more was crossed by leak__sampling_skip (draws stay below 2^63) */
  if (state->countdown < (1ull << 63) && size <= state->countdown) {
    state->countdown -= size;
    return 0;
  }
  state->countdown = (uint64_t)draw_interval(state);
  return 1;
}

double leak__sampling_weight(uint64_t size) {
  double p = -expm1(-(double)size / (double)mean_bytes);
  return p > 0 ? 1.0 / p : 1.0;
}

int64_t leak__sampling_mean(void) { return mean_bytes; }
