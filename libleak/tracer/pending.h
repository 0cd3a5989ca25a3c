/* Trace-table updates that wait a few turns for their slot.
 *
 * With a million live blocks the trace table is far bigger than the caches, so the first slot an
 * insert or a remove touches is a cache miss, paid on every traced allocation and free.  The exact
 * tracer therefore does not update the table at once: it queues the update here, asks the CPU to
 * start fetching its slot, and applies the oldest queued update, whose slot was fetched
 * LEAK_PENDING_OPS updates ago.  The misses overlap with the work in between instead of stalling it.
 *
 * Updates are applied in the order they were queued, which is the order the allocator saw (all of
 * them are queued under the tracer's lock, after the allocation and before the free): a block freed
 * and handed out again is removed before it is put back, and the traced-memory peak comes out as it
 * would without the queue.  Whoever reads the table or the counters empties the queue first.
 *
 * Not synchronised: the tracer's lock protects it.  No allocation, no Python API. */
#ifndef LIBLEAK_PENDING_H
#define LIBLEAK_PENDING_H

#include <stdint.h>

/* How many updates wait: enough that a slot fetched when its update was queued has arrived when the
 * update is applied, few enough that the whole queue fits in four cache lines.  A power of two. */
#define LEAK_PENDING_OPS 16

/* `stack` of an update that removes the trace of `key` (a put carries a stack id, below this). */
#define LEAK_PENDING_REMOVE UINT32_MAX

typedef struct leak__pending_op {
  uint64_t key;
  uint32_t stack; /* the new trace's stack id, or LEAK_PENDING_REMOVE */
  uint32_t size;  /* the new trace's size (bigger blocks are never queued) */
} leak__pending_op;

typedef struct leak__pending {
  leak__pending_op ops[LEAK_PENDING_OPS];
  unsigned first; /* the oldest update */
  unsigned count;
} leak__pending;

/* Queues `op`.  When the queue was full, its oldest update leaves it for the caller to apply first
 * (returns 1 with it in *oldest); else returns 0. */
static inline int leak__pending_push(leak__pending *queue, leak__pending_op op, leak__pending_op *oldest) {
  if (queue->count == LEAK_PENDING_OPS) {
    unsigned slot = queue->first;
    *oldest = queue->ops[slot];
    queue->ops[slot] = op;
    queue->first = (slot + 1) & (LEAK_PENDING_OPS - 1);
    return 1;
  }
  queue->ops[(queue->first + queue->count) & (LEAK_PENDING_OPS - 1)] = op;
  queue->count++;
  return 0;
}

/* Takes the oldest update out of the queue; returns 0 when it was empty. */
static inline int leak__pending_pop(leak__pending *queue, leak__pending_op *oldest) {
  if (queue->count == 0) return 0;
  *oldest = queue->ops[queue->first];
  queue->first = (queue->first + 1) & (LEAK_PENDING_OPS - 1);
  queue->count--;
  return 1;
}

/* The newest queued update of `key`, or NULL: what the table will say of that block once the queue
 * is applied.  Valid until the next push or pop. */
static inline leak__pending_op *leak__pending_newest(leak__pending *queue, uint64_t key) {
  for (unsigned i = queue->count; i-- > 0;) {
    leak__pending_op *op = &queue->ops[(queue->first + i) & (LEAK_PENDING_OPS - 1)];
    if (op->key == key) return op;
  }
  return NULL;
}

/* Forgets every queued update (the table they were meant for is being emptied). */
static inline void leak__pending_drop(leak__pending *queue) {
  queue->first = 0;
  queue->count = 0;
}

#endif
