/* A counting allocator for tests that prove code allocates nothing: it wraps every Python
 * allocator domain and counts the calls made while `counting` is set.  Static, so each test file
 * that includes it has its own counters. */
#ifndef LIBLEAK_TESTS_ALLOC_COUNTER_H
#define LIBLEAK_TESTS_ALLOC_COUNTER_H
#include <Python.h>

/* Allocation calls seen by the counting allocator while `counting` is set. */
static volatile long allocations_seen;
static volatile int counting;
static PyMemAllocatorEx saved_allocators[3];

static void *counting_malloc(void *ctx, size_t size) {
  if (counting) allocations_seen++;
  PyMemAllocatorEx *inner = ctx;
  return inner->malloc(inner->ctx, size);
}
static void *counting_calloc(void *ctx, size_t n, size_t size) {
  if (counting) allocations_seen++;
  PyMemAllocatorEx *inner = ctx;
  return inner->calloc(inner->ctx, n, size);
}
static void *counting_realloc(void *ctx, void *ptr, size_t size) {
  if (counting) allocations_seen++;
  PyMemAllocatorEx *inner = ctx;
  return inner->realloc(inner->ctx, ptr, size);
}
static void counting_free(void *ctx, void *ptr) {
  if (counting) allocations_seen++;
  PyMemAllocatorEx *inner = ctx;
  inner->free(inner->ctx, ptr);
}

/* Wraps the RAW, MEM and OBJ domains with the counter (after Python is initialised). */
static void install_counting_allocators(void) {
  PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
  for (int d = 0; d < 3; d++) {
    PyMem_GetAllocator(domains[d], &saved_allocators[d]);
    PyMemAllocatorEx hook = {&saved_allocators[d], counting_malloc, counting_calloc, counting_realloc,
                             counting_free};
    PyMem_SetAllocator(domains[d], &hook);
  }
}

#endif
