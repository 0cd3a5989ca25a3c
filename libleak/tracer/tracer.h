/* The allocation tracer's internal interface (the public one is include/libleak/tracer.h).
 *
 * The snapshot code reads the live traces through leak__tracer_copy_traces and the frames of their
 * stacks through leak__stacks_lookup (stacks.h). */
#ifndef LIBLEAK_TRACER_INTERNAL_H
#define LIBLEAK_TRACER_INTERNAL_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#include "core/stacks.h"

typedef struct leak__trace_copy {
  uintptr_t ptr;
  uint64_t size; /* bytes of the block */
  double weight; /* how many allocations this trace stands for: 1 in exact mode; in sampled mode
                    1/(1-exp(-size/R)), so size*weight and weight are unbiased estimates */
  leak__stack_id stack;
  uint32_t domain;
} leak__trace_copy;

/* Copies every live trace into a new array from leak__malloc (the caller frees it with leak__free;
 * *out is NULL when there are no traces) and pins the stack table once (the caller calls
 * leak__stacks_unpin once when it no longer needs the stack ids, even when count is 0).
 * LEAK_ENOMEM when the array cannot be allocated (nothing pinned then).  Not tracing gives 0 traces. */
int leak__tracer_copy_traces(leak__trace_copy **out, size_t *count);

/* The stack id of the trace of the memory block holding `obj` (get_object_traceback): 0 and *out set
 * when traced, LEAK_ENOENT when not (or not tracing).  Needs the GIL. */
int leak__tracer_object_stack(PyObject *obj, leak__stack_id *out);

/* The weight of a traced block of `size` bytes under the current mode (1 in exact mode). */
double leak__tracer_weight(uint64_t size);

/* Test hook: the number of live traces (all domains). */
size_t leak__tracer_trace_count(void);

/* Test hook: exact mode queues its table updates (pending.h) from tables of `capacity` slots on (0:
 * always), from the next start; the default is the size where the table outgrows the caches. */
void leak__tracer_queue_from(size_t capacity);

/* Test hook: the calling thread's sampling countdown (bytes left before its next sample). */
uint64_t leak__tracer_thread_countdown(void);

#endif
