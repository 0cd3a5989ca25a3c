/* The open-addressing set of indexes and the hash functions.  Read idset.h first.
 *
 * Separate from snapshot.c because three parts use it: the snapshot builder (deduplicating strings,
 * frames and tracebacks), the comparison of two snapshots (matching rows by content) and the caches
 * of one take of the live tracer. */
#include "core/internal.h"
#include "core/idset.h"

/* Lookup: returns the index found (and 1) or the slot where it would go (and 0). */
int leak__idset_find(const leak__idset *set, uint32_t hash, leak__idset_equal_fn equal, const void *context,
                     uint32_t *found, size_t *slot) {
  size_t i = hash & set->mask;
  for (;;) {
    uint64_t entry = set->slots[i];
    if (entry == 0) {
      *slot = i;
      return 0;
    }
    if ((uint32_t)(entry >> 32) == hash && equal(context, (uint32_t)entry - 1)) {
      *found = (uint32_t)entry - 1;
      return 1;
    }
    i = (i + 1) & set->mask;
  }
}

/* Grows the set so one more entry keeps the load under 1/2; LEAK_ENOMEM leaves it unchanged. */
int leak__idset_reserve(leak__idset *set) {
  if (set->slots != NULL && (set->count + 1) * 2 <= set->mask + 1) return 0;
  size_t capacity = set->slots ? (set->mask + 1) * 2 : 64;
  uint64_t *slots = leak__calloc_table(capacity, sizeof(uint64_t));
  if (slots == NULL) return LEAK_ENOMEM;
  if (set->slots) {
    for (size_t i = 0; i <= set->mask; i++) {
      uint64_t entry = set->slots[i];
      if (entry == 0) continue;
      size_t j = (size_t)(entry >> 32) & (capacity - 1);
      while (slots[j] != 0) j = (j + 1) & (capacity - 1);
      slots[j] = entry;
    }
    leak__free_table(set->slots, set->mask + 1, sizeof(uint64_t));
  }
  set->slots = slots;
  set->mask = capacity - 1;
  return 0;
}

/* Stores an entry in the slot leak__idset_find returned (after leak__idset_reserve made room). */
void leak__idset_put(leak__idset *set, size_t slot, uint32_t hash, uint32_t index) {
  set->slots[slot] = ((uint64_t)hash << 32) | ((uint64_t)index + 1);
  set->count++;
}

/* Frees the slots; the set can be reused from empty. */
void leak__idset_free(leak__idset *set) {
  leak__free_table(set->slots, set->mask + 1, sizeof(uint64_t));
  set->slots = NULL;
  set->mask = set->count = 0;
}

/* FNV-1a over bytes, then mixed: cheap and good enough for filenames and index runs. */
uint32_t leak__hash_bytes(const void *data, size_t len, uint32_t seed) {
  const unsigned char *p = data;
  uint32_t h = 2166136261u ^ seed;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 16777619u;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  return h;
}

/* A 64-bit finaliser (splitmix's), so keys that differ in few bits spread over the table. */
uint32_t leak__hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return (uint32_t)x;
}
