/* The raw allocator: the C library's, with an optional failure injection for tests. */
#include "core/internal.h"

#include <stdlib.h>

/* Allocations left before injected failures start; negative means "never fail".  Touched with
 * atomics only, because the allocator hooks call in from threads without the GIL. */
static long allocations_until_failure = -1;

/* True when this allocation must fail because a test asked for it. */
static int should_fail(void) {
  long left = __atomic_load_n(&allocations_until_failure, __ATOMIC_RELAXED);
  if (LEAK_LIKELY(left < 0)) return 0;
  while (left > 0) {
    if (__atomic_compare_exchange_n(&allocations_until_failure, &left, left - 1, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      return 0;
    if (left < 0) return 0;
  }
  return 1;
}

void leak__alloc_fail_after(long n) { __atomic_store_n(&allocations_until_failure, n, __ATOMIC_RELAXED); }

void *leak__malloc(size_t size) { return should_fail() ? NULL : malloc(size); }

void *leak__calloc(size_t count, size_t size) { return should_fail() ? NULL : calloc(count, size); }

void *leak__realloc(void *ptr, size_t size) { return should_fail() ? NULL : realloc(ptr, size); }

void leak__free(void *ptr) { free(ptr); }
