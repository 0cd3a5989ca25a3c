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

/* `stack` of an update that removes the trace of `key`.  A put carries the id of a stored stack,
 * never this value (it is LEAK_STACK_NONE, "no stack", which the tracer drops instead of storing). */
#define LEAK_PENDING_REMOVE UINT32_MAX

typedef struct leak__pending_op {
  uint64_t key;   /* 0: no update (an empty place, or an update called off) */
  uint32_t stack; /* the new trace's stack id, or LEAK_PENDING_REMOVE */
  uint32_t size;  /* the new trace's size (bigger blocks are never queued) */
} leak__pending_op;

/* A ring that is always full: pushing an update takes out the one queued LEAK_PENDING_OPS before,
 * with no count to keep on the hot path.  Zeroed, it holds no update. */
typedef struct leak__pending {
  leak__pending_op ops[LEAK_PENDING_OPS];
  unsigned next; /* the place of the oldest update, where the next one goes */
  int queued;    /* some place may hold an update */
} leak__pending;

/* Queues `op` and returns the update it pushed out (key 0: none), for the caller to apply first. */
static inline leak__pending_op leak__pending_push(leak__pending *queue, leak__pending_op op) {
  unsigned slot = queue->next;
  leak__pending_op oldest = queue->ops[slot];
  queue->ops[slot] = op;
  queue->next = (slot + 1) & (LEAK_PENDING_OPS - 1);
  queue->queued = 1;
  return oldest;
}

/* Takes the oldest update out of the queue; returns 0 when none is left. */
static inline int leak__pending_pop(leak__pending *queue, leak__pending_op *oldest) {
  if (!queue->queued) return 0;
  for (unsigned i = 0; i < LEAK_PENDING_OPS; i++) {
    unsigned slot = (queue->next + i) & (LEAK_PENDING_OPS - 1);
    if (queue->ops[slot].key != 0) {
      *oldest = queue->ops[slot];
      queue->ops[slot].key = 0;
      queue->next = (slot + 1) & (LEAK_PENDING_OPS - 1);
      return 1;
    }
  }
  queue->queued = 0;
  return 0;
}

/* The newest queued update of `key` (not 0), or NULL: what the table will say of that block once
 * the queue is applied.  Valid until the next push or pop. */
static inline leak__pending_op *leak__pending_newest(leak__pending *queue, uint64_t key) {
  if (!queue->queued) return NULL;
  for (unsigned i = 1; i <= LEAK_PENDING_OPS; i++) {
    leak__pending_op *op = &queue->ops[(queue->next - i) & (LEAK_PENDING_OPS - 1)];
    if (op->key == key) return op;
  }
  return NULL;
}

/* Forgets every queued update (the table they were meant for is being emptied). */
static inline void leak__pending_drop(leak__pending *queue) {
  for (unsigned i = 0; i < LEAK_PENDING_OPS; i++) queue->ops[i].key = 0;
  queue->next = 0;
  queue->queued = 0;
}

#endif
