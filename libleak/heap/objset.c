/* A set of object addresses as bitmaps.  Read heap/objset.h first. */
#include "core/internal.h"
#include "heap/objset.h"
#include "core/idset.h"

#include <stdlib.h>
#include <string.h>

/* log2 of the bytes one bit stands for: sizeof(PyObject), 16 on 64-bit. */
#define GRAIN_SHIFT (sizeof(PyObject) == 16 ? 4 : 3)
#define CHUNK_SHIFT 16 /* 64 KiB of address space per bitmap */
#define CHUNK_BITS (1u << (CHUNK_SHIFT - GRAIN_SHIFT))

struct leak__objset_chunk {
  uintptr_t number; /* address >> CHUNK_SHIFT */
  uint64_t bits[CHUNK_BITS / 64];
  uint32_t base;                       /* ranks: members in chunks at lower addresses... */
  uint16_t before[CHUNK_BITS / 64];    /* ...and in this chunk's words before each word */
};

/* The slot holding chunk `number`, or the empty slot where it would go. */
static size_t chunk_slot(const leak__objset *set, uintptr_t number) {
  size_t i = leak__hash_u64(number) & set->mask;
  while (set->slots[i] != NULL && set->slots[i]->number != number) i = (i + 1) & set->mask;
  return i;
}

/* Doubles the table (load kept under 1/2); chunks themselves never move. */
static int grow(leak__objset *set) {
  size_t capacity = set->mask ? 2 * (set->mask + 1) : 64;
  leak__objset_chunk **old = set->slots;
  size_t old_capacity = set->mask ? set->mask + 1 : 0;
  leak__objset_chunk **slots = leak__calloc(capacity, sizeof(*slots));
  if (slots == NULL) return LEAK_ENOMEM;
  set->slots = slots;
  set->mask = capacity - 1;
  for (size_t i = 0; i < old_capacity; i++)
    if (old[i] != NULL) set->slots[chunk_slot(set, old[i]->number)] = old[i];
  leak__free(old);
  return 0;
}

/* The chunk of `number`, or NULL (and *slot where it would go) when there is none. */
static leak__objset_chunk *find_chunk(leak__objset *set, uintptr_t number, size_t *slot) {
  if (set->last != NULL && set->last->number == number) return set->last;
  if (set->mask == 0) return NULL;
  size_t i = chunk_slot(set, number);
  if (slot) *slot = i;
  if (set->slots[i] != NULL) set->last = set->slots[i];
  return set->slots[i];
}

int leak__objset_add(leak__objset *set, const void *address) {
  uintptr_t a = (uintptr_t)address, number = a >> CHUNK_SHIFT;
  size_t bit = (a & ((1u << CHUNK_SHIFT) - 1)) >> GRAIN_SHIFT;
  size_t slot = 0;
  leak__objset_chunk *chunk = find_chunk(set, number, &slot);
  if (chunk == NULL) {
    if (2 * (set->chunks + 1) > set->mask + 1) {
      if (grow(set) < 0) return LEAK_ENOMEM;
      slot = chunk_slot(set, number);
    }
    chunk = leak__calloc(1, sizeof(*chunk));
    if (chunk == NULL) return LEAK_ENOMEM;
    chunk->number = number;
    set->slots[slot] = chunk;
    set->chunks++;
    set->last = chunk;
  }
  uint64_t mask = (uint64_t)1 << (bit & 63);
  if (chunk->bits[bit >> 6] & mask) return 0;
  chunk->bits[bit >> 6] |= mask;
  set->members++;
  return 1;
}

int leak__objset_contains(leak__objset *set, const void *address) {
  uintptr_t a = (uintptr_t)address;
  leak__objset_chunk *chunk = find_chunk(set, a >> CHUNK_SHIFT, NULL);
  if (chunk == NULL) return 0;
  size_t bit = (a & ((1u << CHUNK_SHIFT) - 1)) >> GRAIN_SHIFT;
  return (chunk->bits[bit >> 6] >> (bit & 63)) & 1;
}

void leak__objset_free(leak__objset *set) {
  size_t capacity = set->mask ? set->mask + 1 : 0;
  for (size_t i = 0; i < capacity; i++) leak__free(set->slots[i]);
  leak__free(set->slots);
  leak__free(set->ordered);
  memset(set, 0, sizeof(*set));
}

static int chunk_order(const void *a, const void *b) {
  uintptr_t x = (*(leak__objset_chunk *const *)a)->number, y = (*(leak__objset_chunk *const *)b)->number;
  return x < y ? -1 : x > y;
}

/* Chunks sorted by number (a few thousand at most for a heap of millions), then running counts. */
int leak__objset_prepare_ranks(leak__objset *set) {
  leak__free(set->ordered);
  set->ordered = leak__malloc((set->chunks ? set->chunks : 1) * sizeof(*set->ordered));
  if (set->ordered == NULL) return LEAK_ENOMEM;
  size_t n = 0, capacity = set->mask ? set->mask + 1 : 0;
  for (size_t i = 0; i < capacity; i++)
    if (set->slots[i] != NULL) set->ordered[n++] = set->slots[i];
  qsort(set->ordered, n, sizeof(*set->ordered), chunk_order);
  uint32_t rank = 0;
  for (size_t c = 0; c < n; c++) {
    leak__objset_chunk *chunk = set->ordered[c];
    chunk->base = rank;
    uint32_t within = 0;
    for (size_t w = 0; w < CHUNK_BITS / 64; w++) {
      chunk->before[w] = (uint16_t)within;
      within += (uint32_t)__builtin_popcountll(chunk->bits[w]);
    }
    rank += within;
  }
  return 0;
}

int64_t leak__objset_rank(leak__objset *set, const void *address) {
  uintptr_t a = (uintptr_t)address;
  leak__objset_chunk *chunk = find_chunk(set, a >> CHUNK_SHIFT, NULL);
  if (chunk == NULL) return -1;
  size_t bit = (a & ((1u << CHUNK_SHIFT) - 1)) >> GRAIN_SHIFT;
  uint64_t word = chunk->bits[bit >> 6], mask = (uint64_t)1 << (bit & 63);
  if (!(word & mask)) return -1;
  return (int64_t)chunk->base + chunk->before[bit >> 6] + __builtin_popcountll(word & (mask - 1));
}
