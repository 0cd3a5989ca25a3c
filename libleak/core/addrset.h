/* A compact set of addresses (object pointers), kept outside the Python heap.
 *
 * Heap walks (deep sizes, the heap walker, census diffs) must remember which objects they have
 * already seen without allocating Python objects and without the 50+ bytes per entry a Python set
 * or a uthash table costs.  This set stores the bare 8-byte address in an open-addressing table
 * (linear probing, load kept at or under 3/4, capacity a power of two), scattered by a 64-bit mix
 * of the address so that aligned pointers, which share their low bits, do not cluster.  Address 0
 * (NULL) marks an empty slot and cannot be stored.  Memory comes from leak__calloc / leak__free.
 * Not thread-safe: each set belongs to one walk or one call. */
#ifndef LIBLEAK_ADDRSET_H
#define LIBLEAK_ADDRSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct leak__addrset {
  uintptr_t *slots; /* capacity slots, 0 = empty */
  size_t mask;      /* capacity - 1 (capacity a power of two), or 0 before the first slot array */
  size_t count;     /* addresses stored */
} leak__addrset;

/* Makes `set` empty, with room for `expected` addresses before it grows (0: a small default).
 * Returns 0, or LEAK_ENOMEM with the set left empty and usable (it allocates on first add). */
int leak__addrset_init(leak__addrset *set, size_t expected);

/* Adds `address`.  Returns 1 when it was new, 0 when it was already there, LEAK_ENOMEM when the
 * table had to grow and could not (the set is unchanged and still valid), or LEAK_EINVAL for 0. */
int leak__addrset_add(leak__addrset *set, uintptr_t address);

/* 1 when `address` is in the set, 0 otherwise (also for 0 and for a set never initialised). */
int leak__addrset_contains(const leak__addrset *set, uintptr_t address);

/* Number of addresses stored. */
static inline size_t leak__addrset_count(const leak__addrset *set) { return set->count; }

/* Scatters an address over the whole word (the murmur3 finaliser): object addresses are 16-byte
 * aligned and allocated in runs, so their low bits alone would pile entries into a few clusters. */
static inline size_t leak__addrset_mix(uintptr_t address) {
  uint64_t x = (uint64_t)address;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return (size_t)x;
}

/* Asks the CPU to fetch the slot where `address` would be looked up first, so that a walk can
 * overlap the cache misses of several adds.  Does nothing else; any address is fine. */
static inline void leak__addrset_prefetch(const leak__addrset *set, uintptr_t address) {
  if (set->slots != NULL) __builtin_prefetch(&set->slots[leak__addrset_mix(address) & set->mask], 1, 1);
}

/* Bytes the set holds on the raw heap (its slot array). */
size_t leak__addrset_memory(const leak__addrset *set);

/* Frees the slots; the set is empty again and may be reused after leak__addrset_init.  Accepts a
 * set that was zero-initialised or already freed. */
void leak__addrset_free(leak__addrset *set);

#endif
