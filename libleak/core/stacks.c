/* The stack table.  Read stacks.h first.
 *
 * Layout: every distinct stack is one allocation (a small header and its frames); `entries` maps an
 * id to its entry (id 0, the empty stack, has none), and `index` is an open-addressing hash set of
 * ids keyed by the entry's hash, so interning a stack costs one hash of the frames, usually one
 * probe and one comparison of the frames.
 *
 * Rules: everything here may run inside an allocator hook, with or without the GIL: no Python API
 * (Py_INCREF, a field increment, only when the caller says it holds the GIL), and memory only from
 * leak__malloc, never from the hooked allocators.  Py_DECREF happens only in release_store, which
 * runs with the GIL held and the lock released (a code object's deallocation frees memory through
 * the hooked allocators, which take the lock). */
#include "core/internal.h"
#include "core/stacks.h"

#include <malloc.h>
#include <sched.h>
#include <string.h>

typedef struct stack_entry {
  uint32_t hash;
  uint16_t nframe;
  uint16_t depth; /* of the whole stack, >= nframe */
  leak__frame frames[];
} stack_entry;

/* The stored stacks.  A store can be detached from the global table in one step (under the lock)
 * and released later (without it). */
typedef struct leak__stack_store {
  stack_entry **entries; /* id -> entry; entries[0] is NULL (the empty stack) */
  size_t count;          /* ids in use, id 0 included once the store holds anything */
  size_t entries_capacity;
  uint32_t *index; /* hash set of ids, 0 = free slot; capacity a power of two */
  size_t index_capacity;
  size_t entry_bytes; /* real bytes of the entries themselves */
} leak__stack_store;

/* The table and its pin count, protected by leak__stacks_lock_word. */
static leak__stack_store table;
static unsigned pins;

/* The spinlock that protects `table`, `pins` and (borrowed by tracer.c) the trace table.  A spinlock
 * rather than a mutex: it is taken on every traced allocation, held for a few hundred nanoseconds,
 * and a store-release is the cheapest possible unlock; after a short spin it yields the CPU, so a
 * long holder (a resize, a copy of a million traces) does not burn the other cores.  Not recursive:
 * the hooks' reentrancy flag keeps a thread from taking it twice.  Taken and released by the inline
 * functions of stacks.h. */
int leak__stacks_lock_word;
uint64_t leak__stacks_generation = 1;

/* A real-memory estimate for one block from the C allocator: its usable size plus the chunk header. */
static size_t real_bytes(void *ptr) { return ptr ? malloc_usable_size(ptr) + sizeof(size_t) : 0; }

/* The inline take found the lock held: spin on the lock word, then yield; the lock holder never
 * waits on anything but the C allocator. */
void leak__stacks_lock_contended(void) {
  unsigned spins = 0;
  for (;;) {
    while (__atomic_load_n(&leak__stacks_lock_word, __ATOMIC_RELAXED)) {
      if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        sched_yield();
      }
    }
    if (!__atomic_exchange_n(&leak__stacks_lock_word, 1, __ATOMIC_ACQUIRE)) return;
  }
}

/* After fork() only the forking thread exists in the child: whoever held the lock is gone, so the
 * child starts with it free.  Called from the tracer's atfork child handler only. */
void leak__stacks_lock_reset_after_fork(void) { __atomic_store_n(&leak__stacks_lock_word, 0, __ATOMIC_RELAXED); }

/* The depth a stack is stored with: never less than its frames, never more than a uint16_t holds. */
static int stored_depth(int nframe, int depth) {
  if (depth < nframe) depth = nframe;
  return depth > LEAK_STACK_MAX_DEPTH ? LEAK_STACK_MAX_DEPTH : depth;
}

/* One frame as one word: the code address and the offset folded together (a collision only costs a
 * compare).  Field by field, because leak__frame has padding that frames.c leaves uninitialised. */
static inline uint64_t frame_word(const leak__frame *frame) {
  return (uint64_t)(uintptr_t)frame->code ^ ((uint64_t)(uint32_t)frame->lasti << 47);
}

#define HASH_MULTIPLIER 0xFF51AFD7ED558CCDull

/* One multiply a frame, then a final mix so that the low bits, which pick the slot, depend on every
 * frame.  A chain of multiplies waits for each one (3 - 4 cycles): long stacks (the tracer's
 * nframe=32 and more) go through four chains side by side, frame i in chain i % 4, joined with
 * rotations so that which chain a frame went through still counts. */
uint32_t leak__stacks_hash(const leak__frame *frames, int nframe, int depth) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)nframe ^ ((uint64_t)stored_depth(nframe, depth) << 24);
  int i = 0;
  if (nframe >= 8) {
    uint64_t a = h, b = h ^ 1, c = h ^ 2, d = h ^ 3;
    for (; i + 4 <= nframe; i += 4) {
      a = (a ^ frame_word(&frames[i])) * HASH_MULTIPLIER;
      b = (b ^ frame_word(&frames[i + 1])) * HASH_MULTIPLIER;
      c = (c ^ frame_word(&frames[i + 2])) * HASH_MULTIPLIER;
      d = (d ^ frame_word(&frames[i + 3])) * HASH_MULTIPLIER;
    }
    h = a ^ ((b << 16) | (b >> 48)) ^ ((c << 32) | (c >> 32)) ^ ((d << 48) | (d >> 16));
  }
  for (; i < nframe; i++) h = (h ^ frame_word(&frames[i])) * HASH_MULTIPLIER;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 29;
  return (uint32_t)h;
}

/* True when `entry` stores exactly this stack. */
static int entry_equals(const stack_entry *entry, const leak__frame *frames, int nframe, int depth,
                        uint32_t hash) {
  if (entry->hash != hash || entry->nframe != nframe || entry->depth != depth) return 0;
  return leak__stacks_same_frames(entry->frames, frames, nframe);
}

/* Rebuilds the index at `capacity` (a power of two); on failure the old index stays. */
static int resize_index_unlocked(leak__stack_store *store, size_t capacity) {
  uint32_t *index = leak__calloc_table(capacity, sizeof(uint32_t));
  if (index == NULL) return LEAK_ENOMEM;
  size_t mask = capacity - 1;
  for (size_t id = 1; id < store->count; id++) {
    size_t slot = store->entries[id]->hash & mask;
    while (index[slot] != 0) slot = (slot + 1) & mask;
    index[slot] = (uint32_t)id;
  }
  leak__free_table(store->index, store->index_capacity, sizeof(uint32_t));
  store->index = index;
  store->index_capacity = capacity;
  return 0;
}

/* Makes room for one more id in `entries` and keeps the index at most half full. */
static int reserve_one_unlocked(leak__stack_store *store) {
  if (store->count >= UINT32_MAX - 1) return LEAK_ENOMEM;
  if (store->count + 1 > store->entries_capacity) {
    size_t capacity = store->entries_capacity ? store->entries_capacity * 2 : 256;
    stack_entry **entries = leak__realloc(store->entries, capacity * sizeof(*entries));
    if (entries == NULL) return LEAK_ENOMEM;
    if (store->count == 0) {
      entries[0] = NULL;
      store->count = 1;
    }
    store->entries = entries;
    store->entries_capacity = capacity;
  }
  if ((store->count + 1) * 2 > store->index_capacity) {
    int rc = resize_index_unlocked(store, store->index_capacity ? store->index_capacity * 2 : 512);
    if (rc < 0) return rc;
  }
  return 0;
}

leak__stack_id leak__stacks_intern_unlocked(const leak__frame *frames, int nframe, int depth, uint32_t hash,
                                            int may_reference) {
  if (nframe <= 0) return LEAK_STACK_EMPTY;
  depth = stored_depth(nframe, depth);
  leak__stack_store *store = &table;
  if (store->index_capacity) {
    size_t mask = store->index_capacity - 1;
    for (size_t slot = hash & mask; store->index[slot] != 0; slot = (slot + 1) & mask) {
      uint32_t id = store->index[slot];
      if (entry_equals(store->entries[id], frames, nframe, depth, hash)) return id;
    }
  }
  /* Unknown: only a thread holding the GIL may store it, because storing takes references. */
  if (!may_reference) return LEAK_STACK_EMPTY;
  if (reserve_one_unlocked(store) < 0) return LEAK_STACK_NONE;
  stack_entry *entry = leak__malloc(sizeof(stack_entry) + (size_t)nframe * sizeof(leak__frame));
  if (entry == NULL) return LEAK_STACK_NONE;
  entry->hash = hash;
  entry->nframe = (uint16_t)nframe;
  entry->depth = (uint16_t)depth;
  for (int i = 0; i < nframe; i++) {
    entry->frames[i].code = frames[i].code;
    entry->frames[i].lasti = frames[i].lasti;
    Py_INCREF(frames[i].code);
  }
  uint32_t id = (uint32_t)store->count++;
  store->entries[id] = entry;
  store->entry_bytes += real_bytes(entry);
  size_t mask = store->index_capacity - 1;
  size_t slot = hash & mask;
  while (store->index[slot] != 0) slot = (slot + 1) & mask;
  store->index[slot] = id;
  return id;
}

const leak__frame *leak__stacks_frames_unlocked(leak__stack_id id) { return table.entries[id]->frames; }

int leak__stacks_lookup_depth(leak__stack_id id, const leak__frame **frames, int *nframe, int *depth) {
  if (id == LEAK_STACK_EMPTY) {
    *frames = NULL;
    *nframe = 0;
    *depth = 0;
    return 0;
  }
  leak__stacks_lock();
  stack_entry *entry = id < table.count ? table.entries[id] : NULL;
  leak__stacks_unlock();
  if (entry == NULL) return LEAK_ENOENT;
  *frames = entry->frames;
  *nframe = entry->nframe;
  *depth = entry->depth;
  return 0;
}

int leak__stacks_lookup(leak__stack_id id, const leak__frame **frames, int *nframe, int *truncated) {
  int depth = 0;
  int rc = leak__stacks_lookup_depth(id, frames, nframe, &depth);
  if (rc == 0) *truncated = depth > *nframe;
  return rc;
}

void leak__stacks_pin_unlocked(void) { pins++; }

void leak__stacks_pin(void) {
  leak__stacks_lock();
  pins++;
  leak__stacks_unlock();
}

void leak__stacks_unpin(void) {
  leak__stacks_lock();
  if (pins > 0) pins--;
  leak__stacks_unlock();
}

leak__stack_store *leak__stacks_detach_unlocked(void) {
  if (pins > 0 || table.count == 0) return NULL;
  leak__stack_store *store = leak__malloc(sizeof(*store));
  if (store == NULL) return NULL; /* keep the stacks: a later clear will try again */
  *store = table;
  memset(&table, 0, sizeof(table));
  leak__stacks_generation++;
  return store;
}

void leak__stacks_release(leak__stack_store *store) {
  if (store == NULL) return;
  for (size_t id = 1; id < store->count; id++) {
    stack_entry *entry = store->entries[id];
    for (int i = 0; i < entry->nframe; i++) Py_DECREF(entry->frames[i].code);
    leak__free(entry);
  }
  leak__free(store->entries);
  leak__free_table(store->index, store->index_capacity, sizeof(uint32_t));
  leak__free(store);
}

void leak__stacks_clear(void) {
  leak__stacks_lock();
  leak__stack_store *store = leak__stacks_detach_unlocked();
  leak__stacks_unlock();
  leak__stacks_release(store);
}

size_t leak__stacks_count(void) {
  leak__stacks_lock();
  size_t count = table.count ? table.count - 1 : 0;
  leak__stacks_unlock();
  return count;
}

size_t leak__stacks_memory_unlocked(void) {
  return table.entry_bytes + real_bytes(table.entries) +
         leak__table_bytes(table.index, table.index_capacity, sizeof(uint32_t));
}

size_t leak__stacks_memory(void) {
  leak__stacks_lock();
  size_t bytes = leak__stacks_memory_unlocked();
  leak__stacks_unlock();
  return bytes;
}
