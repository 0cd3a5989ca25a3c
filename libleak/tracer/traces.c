/* The live-trace table.  Read traces.h first.
 *
 * Rules: runs inside the allocator hooks with the tracer lock held: no Python API, memory only from
 * leak__malloc (the C library), nothing that can block except the C allocator. */
#include "core/internal.h"
#include "tracer/traces.h"

#include <malloc.h>
#include <string.h>

#define MIN_CAPACITY 1024
/* Grow past 80% full (by half, so a grown table is ~53% full).  Shrink only big tables under 1/16
 * full, by 4 (to at most 1/4 full): the wide gap keeps a live set that swings up and down (a loop
 * that frees half of what it keeps) from rehashing the table back and forth, and a table that
 * empties gets small in a few steps.  And only once it has STAYED that empty for as many removes as
 * half its capacity (quiet_removes): a live set built up and freed in bulk again and again keeps
 * its table, instead of giving the memory back and faulting in a new table (and rehashing a dozen
 * times) on each build-up; a table that really emptied shrinks after some churn (or at the next
 * clear).  When it did shrink, the size it came down from is remembered (regrow_hint) and the next
 * grow goes straight back there in one rehash.  The cost is memory: a table that grows again after
 * a shrink takes the earlier peak's size at once (the next shrink brings it down again). */
#define GROW_AT(capacity) ((capacity) / 5 * 4)
#define SHRINK_AT(capacity) ((capacity) / 16)
#define SHRINK_ABOVE (64 * MIN_CAPACITY)

static inline size_t next_slot(size_t slot, size_t capacity) { return slot + 1 == capacity ? 0 : slot + 1; }

/* Inserts into a table known to have room and not to hold `key`. */
static void place(leak__trace *slots, size_t capacity, leak__trace trace) {
  size_t slot = leak__traces_home_slot(trace.key, capacity);
  while (slots[slot].key != 0) slot = next_slot(slot, capacity);
  slots[slot] = trace;
}

/* Moves every trace into a new array of `capacity` slots; on failure the table is unchanged. */
static int rehash(leak__trace_table *table, size_t capacity) {
  leak__trace *slots = leak__calloc_table(capacity, sizeof(leak__trace));
  if (slots == NULL) return LEAK_ENOMEM;
  for (size_t i = 0; i < table->capacity; i++)
    if (table->slots[i].key != 0) place(slots, capacity, table->slots[i]);
  leak__free_table(table->slots, table->capacity, sizeof(leak__trace));
  table->slots = slots;
  table->capacity = capacity;
  return 0;
}

int leak__traces_reserve(leak__trace_table *table, size_t count) {
  if (count <= GROW_AT(table->capacity)) return 0;
  size_t capacity = table->capacity ? table->capacity : MIN_CAPACITY;
  while (count > GROW_AT(capacity)) capacity += capacity / 2;
  /* Back to the earlier peak when it is bigger; if that much memory is not there, what is needed. */
  if (table->regrow_hint > capacity && rehash(table, table->regrow_hint) == 0) {
    table->regrow_hint = 0;
    return 0;
  }
  int rc = rehash(table, capacity);
  if (rc == 0) table->regrow_hint = 0;
  return rc;
}

leak__trace *leak__traces_find(const leak__trace_table *table, uint64_t key) {
  if (table->capacity == 0) return NULL;
  for (size_t slot = leak__traces_home_slot(key, table->capacity); table->slots[slot].key != 0;
       slot = next_slot(slot, table->capacity))
    if (table->slots[slot].key == key) return &table->slots[slot];
  return NULL;
}

/* Index of `key` in the side list of big sizes, or -1. */
static long find_big(const leak__trace_table *table, uint64_t key) {
  for (size_t i = 0; i < table->big_count; i++)
    if (table->big[i].key == key) return (long)i;
  return -1;
}

static void remove_big(leak__trace_table *table, uint64_t key) {
  long i = find_big(table, key);
  if (i >= 0) table->big[i] = table->big[--table->big_count];
}

/* Records a big size for `key` (replacing an older one). */
static int store_big(leak__trace_table *table, uint64_t key, uint64_t size) {
  long i = find_big(table, key);
  if (i >= 0) {
    table->big[i].size = size;
    return 0;
  }
  if (table->big_count == table->big_capacity) {
    size_t capacity = table->big_capacity ? table->big_capacity * 2 : 8;
    leak__big_size *big = leak__realloc(table->big, capacity * sizeof(*big));
    if (big == NULL) return LEAK_ENOMEM;
    table->big = big;
    table->big_capacity = capacity;
  }
  table->big[table->big_count].key = key;
  table->big[table->big_count].size = size;
  table->big_count++;
  return 0;
}

uint64_t leak__traces_size(const leak__trace_table *table, const leak__trace *trace) {
  if (trace->size != UINT32_MAX) return trace->size;
  long i = find_big(table, trace->key);
  return i >= 0 ? table->big[i].size : UINT32_MAX;
}

/* One probe run finds the key or the free slot where it goes (linear probing puts a key before the
 * first free slot of its run). */
int leak__traces_put(leak__trace_table *table, uint64_t key, uint32_t stack, uint64_t size,
                     uint64_t *replaced_size) {
  uint32_t small = size >= UINT32_MAX ? UINT32_MAX : (uint32_t)size;
  if (table->capacity == 0 && leak__traces_reserve(table, 1) < 0) return LEAK_ENOMEM;
  size_t capacity = table->capacity;
  size_t slot = leak__traces_home_slot(key, capacity);
  leak__trace *slots = table->slots;
  while (slots[slot].key != 0 && slots[slot].key != key) slot = next_slot(slot, capacity);
  if (slots[slot].key == key) {
    leak__trace *found = &slots[slot];
    uint64_t old = leak__traces_size(table, found);
    if (small == UINT32_MAX && store_big(table, key, size) < 0) return LEAK_ENOMEM;
    if (found->size == UINT32_MAX && small != UINT32_MAX) remove_big(table, key);
    found->stack = stack;
    found->size = small;
    if (replaced_size) *replaced_size = old;
    return 1;
  }
  if (table->count + 1 > GROW_AT(capacity)) {
    /* A failed grow is fine while the table still has slack: linear probing copes up to ~95%. */
    if (leak__traces_reserve(table, table->count + 1) < 0 && table->count + 1 > capacity / 20 * 19)
      return LEAK_ENOMEM;
    if (table->capacity != capacity) {
      capacity = table->capacity;
      slots = table->slots;
      slot = leak__traces_home_slot(key, capacity);
      while (slots[slot].key != 0) slot = next_slot(slot, capacity);
    }
  }
  if (small == UINT32_MAX && store_big(table, key, size) < 0) return LEAK_ENOMEM;
  slots[slot] = (leak__trace){key, stack, small};
  table->count++;
  return 0;
}

int leak__traces_remove(leak__trace_table *table, uint64_t key, uint64_t *size, uint32_t *stack) {
  if (table->capacity == 0) return 0;
  leak__trace *found = NULL;
  for (size_t slot = leak__traces_home_slot(key, table->capacity); table->slots[slot].key != 0;
       slot = next_slot(slot, table->capacity))
    if (table->slots[slot].key == key) {
      found = &table->slots[slot];
      break;
    }
  if (found == NULL) return 0;
  if (size) *size = leak__traces_size(table, found);
  if (stack) *stack = found->stack;
  if (found->size == UINT32_MAX) remove_big(table, key);
  /* Backward-shift deletion: pull later members of the probe run into the hole, so lookups never
   * meet a tombstone and the table never needs cleaning. */
  size_t capacity = table->capacity;
  size_t hole = (size_t)(found - table->slots);
  for (size_t slot = next_slot(hole, capacity); table->slots[slot].key != 0; slot = next_slot(slot, capacity)) {
    size_t home = leak__traces_home_slot(table->slots[slot].key, capacity);
    size_t from_home = slot >= home ? slot - home : slot + capacity - home;
    size_t from_hole = slot >= hole ? slot - hole : slot + capacity - hole;
    if (from_home >= from_hole) {
      table->slots[hole] = table->slots[slot];
      hole = slot;
    }
  }
  table->slots[hole].key = 0;
  table->count--;
  if (capacity > SHRINK_ABOVE && table->count < SHRINK_AT(capacity)) {
    if (++table->quiet_removes >= capacity / 2) {
      size_t hint = table->regrow_hint > capacity ? table->regrow_hint : capacity;
      if (rehash(table, capacity / 4 > MIN_CAPACITY ? capacity / 4 : MIN_CAPACITY) == 0) table->regrow_hint = hint;
      table->quiet_removes = 0;
    }
  } else {
    table->quiet_removes = 0;
  }
  return 1;
}

void leak__traces_reset(leak__trace_table *table) {
  leak__free_table(table->slots, table->capacity, sizeof(leak__trace));
  leak__free(table->big);
  memset(table, 0, sizeof(*table));
}

size_t leak__traces_memory(const leak__trace_table *table) {
  size_t bytes = 0;
  bytes += leak__table_bytes(table->slots, table->capacity, sizeof(leak__trace));
  if (table->big) bytes += malloc_usable_size(table->big) + sizeof(size_t);
  return bytes;
}
