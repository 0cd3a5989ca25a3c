/* The live-trace table: block address -> (size, stack id), 16 bytes a slot.
 *
 * A compact open-addressing table (linear probing, backward-shift deletion: no tombstones), grown by
 * half when it is 80% full, so a live block costs between 20 and 30 bytes of table (more while a
table stays at an earlier peak: it shrinks only after staying nearly empty for a while, and one
that shrank goes back to its earlier peak at once when it grows again).  The key packs
 * a small domain index into the top 16 bits of the address (user-space addresses on the supported
 * platforms fit in 48 bits); sizes of 4 GiB and more live in a small side list.  Big tables that
 * emptied shrink again, with hysteresis.
 *
 * Not synchronised: the tracer calls every function with its lock held.  Memory comes from
 * leak__malloc only; no function here calls Python. */
#ifndef LIBLEAK_TRACES_H
#define LIBLEAK_TRACES_H

#include <stddef.h>
#include <stdint.h>

#define LEAK_TRACE_PTR_BITS 48
#define LEAK_TRACE_MAX_DOMAIN_INDEX 0xFFFFu
/* The key of a block: its address and the index of its domain (0 for Python's heap). */
#define LEAK_TRACE_KEY(domain_index, ptr) (((uint64_t)(domain_index) << LEAK_TRACE_PTR_BITS) | (uint64_t)(ptr))
#define LEAK_TRACE_KEY_PTR(key) ((uintptr_t)((key) & ((1ull << LEAK_TRACE_PTR_BITS) - 1)))
#define LEAK_TRACE_KEY_DOMAIN_INDEX(key) ((unsigned)((key) >> LEAK_TRACE_PTR_BITS))

typedef struct leak__trace {
  uint64_t key;   /* 0: free slot */
  uint32_t stack; /* leak__stack_id */
  uint32_t size;  /* UINT32_MAX: the real size is in the side list */
} leak__trace;

typedef struct leak__big_size {
  uint64_t key;
  uint64_t size;
} leak__big_size;

typedef struct leak__trace_table {
  leak__trace *slots;
  size_t capacity; /* 0 until the first insert */
  size_t count;
  leak__big_size *big; /* blocks of UINT32_MAX bytes and more, unsorted */
  size_t big_count, big_capacity;
  size_t regrow_hint;   /* the capacity before the last shrinks: the next grow goes there (traces.c) */
  size_t quiet_removes; /* removes in a row that left a big table under its shrink threshold */
} leak__trace_table;

/* The slot where the probe for `key` starts.  Fibonacci hashing: the high bits of the key times
 * 2^64/phi depend on every bit of the key, so aligned addresses spread; scaling them by the capacity
 * (the high half of a 128-bit product) picks the slot and lets the capacity be any number, not a
 * power of two.  Two multiplies, no shifts: it runs on every traced allocation and free, and for
 * every trace a deletion shifts. */
static inline size_t leak__traces_home_slot(uint64_t key, size_t capacity) {
  uint64_t h = key * 0x9E3779B97F4A7C15ull;
  return (size_t)(((unsigned __int128)h * capacity) >> 64);
}

/* Asks the CPU to start fetching the cache line where the probe for `key` starts, and the next one:
 * at 80% load an insert's probe and a removal's backward shift often run on into it.  The tracer
 * calls it when it queues an update (pending.h), some updates before the update is applied.  A
 * prefetch never faults, whatever the address (the next line may lie past the table's end). */
static inline void leak__traces_prefetch(const leak__trace_table *table, uint64_t key) {
  if (table->slots == NULL) return;
  const leak__trace *slot = &table->slots[leak__traces_home_slot(key, table->capacity)];
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  /* Volatile: GCC may sink a __builtin_prefetch below the work it was meant to overlap with. */
  __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)slot));
  __asm__ volatile("prefetcht0 %0" : : "m"(*((const char *)slot + 64)));
#else
  __builtin_prefetch(slot, 1);
  __builtin_prefetch((const char *)slot + 64, 1);
#endif
}

/* Makes sure the table can take `count` traces without growing; LEAK_ENOMEM leaves it as it was. */
int leak__traces_reserve(leak__trace_table *table, size_t count);

/* Stores a trace.  When the key is already there its trace is replaced and *replaced_size is set to
 * the old size (else *replaced_size is left alone) and 1 is returned; 0 for a new trace;
 * LEAK_ENOMEM when the table is full and cannot grow (nothing is stored). */
int leak__traces_put(leak__trace_table *table, uint64_t key, uint32_t stack, uint64_t size,
                     uint64_t *replaced_size);

/* Removes the trace of `key`; returns 1 and its size and stack (either pointer may be NULL) when
 * there was one, else 0.  May shrink the table (never fails). */
int leak__traces_remove(leak__trace_table *table, uint64_t key, uint64_t *size, uint32_t *stack);

/* The slot of `key`, or NULL.  Valid until the next put or remove. */
leak__trace *leak__traces_find(const leak__trace_table *table, uint64_t key);

/* The size of a stored trace (reads the side list for big blocks). */
uint64_t leak__traces_size(const leak__trace_table *table, const leak__trace *trace);

/* Frees everything and leaves an empty table. */
void leak__traces_reset(leak__trace_table *table);

/* Real bytes held by the table. */
size_t leak__traces_memory(const leak__trace_table *table);

#endif
