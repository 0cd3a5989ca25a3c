/* An open-addressing set of indexes, and the hash functions that go with it.
 *
 * The set stores no values, only indexes into the caller's own arrays: each slot packs a 32-bit hash
 * and index+1 (0 = empty), so growing never calls back for hashes, and equality is checked by the
 * caller's callback against its arrays.  The snapshot builder deduplicates strings, frames and
 * tracebacks with it, comparing matches the rows of two snapshots, and taking a snapshot caches the
 * tracer's stacks and code objects.  Memory comes from leak__calloc / leak__free.  Not thread-safe:
 * each set belongs to one builder or one call. */
#ifndef LIBLEAK_IDSET_H
#define LIBLEAK_IDSET_H

#include <stddef.h>
#include <stdint.h>

/* A set; zero-initialise it ({0}) to get an empty one. */
typedef struct leak__idset {
  uint64_t *slots;
  size_t mask; /* capacity - 1; capacity is a power of two */
  size_t count;
} leak__idset;

/* Returns nonzero when the value the caller is looking for (described by `context`) equals the one
 * at `index` of the caller's arrays. */
typedef int (*leak__idset_equal_fn)(const void *context, uint32_t index);

/* Looks up `hash`, asking `equal` about each candidate.  Returns 1 and the index in *found when
 * present; otherwise returns 0 and, in *slot, the slot where leak__idset_put would store it.  The
 * set must not be empty of slots: call leak__idset_reserve first, or check that entries exist. */
int leak__idset_find(const leak__idset *set, uint32_t hash, leak__idset_equal_fn equal, const void *context,
                     uint32_t *found, size_t *slot);

/* Makes room for one more entry (load kept under 1/2).  0, or LEAK_ENOMEM with the set unchanged.
 * Growing moves entries, so a slot from an earlier leak__idset_find is stale afterwards. */
int leak__idset_reserve(leak__idset *set);

/* Stores (hash, index) in the slot leak__idset_find returned after leak__idset_reserve made room.
 * Cannot fail. */
void leak__idset_put(leak__idset *set, size_t slot, uint32_t hash, uint32_t index);

/* Frees the slots; the set is empty again and can be reused.  Accepts a set never used. */
void leak__idset_free(leak__idset *set);

/* A 32-bit hash of `len` bytes (FNV-1a, then mixed); `seed` separates hashes of different kinds. */
uint32_t leak__hash_bytes(const void *data, size_t len, uint32_t seed);

/* A 32-bit hash of a 64-bit key (splitmix's finaliser), so keys that differ in few bits spread. */
uint32_t leak__hash_u64(uint64_t x);

#endif
