/* The raw allocator: the C library's, with an optional failure injection for tests. */
#include "core/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

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

#define HUGE_PAGE_BYTES ((uintptr_t)2 << 20)

/* The whole huge pages inside [start, start + bytes): madvise wants page-aligned ranges, and a
 * partial huge page could not be backed by one anyway.  Errors (EINVAL where THP is not built in)
 * change nothing, so they are ignored. */
static void advise_huge_pages(void *start, size_t bytes) {
#ifdef MADV_HUGEPAGE
  uintptr_t from = ((uintptr_t)start + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1);
  uintptr_t to = ((uintptr_t)start + bytes) & ~(HUGE_PAGE_BYTES - 1);
  if (to > from) (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
  (void)start;
  (void)bytes;
#endif
}

void *leak__calloc_table(size_t count, size_t size) {
  void *table = leak__calloc(count, size);
  /* calloc checked count * size for overflow already */
  if (table != NULL && count * size >= LEAK_HUGE_TABLE_BYTES) advise_huge_pages(table, count * size);
  return table;
}
