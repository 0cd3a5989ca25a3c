/* The raw allocator: the C library's, with an optional failure injection for tests. */
#include "core/internal.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* Whether a table of `bytes` is a mapping of its own rather than a block from the C library (see
 * alloc.h); leak__calloc_table, leak__free_table and leak__table_bytes all go by this. */
static int is_mapped_table(size_t bytes) { return bytes >= LEAK_HUGE_TABLE_BYTES; }

/* A mapped table's length in the address space: whole pages. */
static size_t mapped_bytes(size_t bytes) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (bytes + page - 1) / page * page;
}

/* A zeroed mapping of `bytes` that starts on a huge-page boundary, advised for huge pages: mapped
 * with a huge page of slack, whose ends are unmapped again.  The kernel backs the whole 2 MiB pages
 * of it with huge pages where it can; the tail past the last one keeps small pages. */
static void *map_huge_table(size_t bytes) {
  size_t length = mapped_bytes(bytes);
  size_t slack = HUGE_PAGE_BYTES - (size_t)sysconf(_SC_PAGESIZE);
  if (length > SIZE_MAX - slack) return NULL;
  char *raw = mmap(NULL, length + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *start = (char *)(((uintptr_t)raw + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1));
  char *end = start + length, *raw_end = raw + length + slack;
  if (start > raw) munmap(raw, (size_t)(start - raw));
  if (raw_end > end) munmap(end, (size_t)(raw_end - end));
#ifdef MADV_HUGEPAGE
  /* EINVAL where THP is not built in changes nothing: the table works on small pages */
  (void)madvise(start, length, MADV_HUGEPAGE);
#endif
  return start;
}

void *leak__calloc_table(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  if (!is_mapped_table(count * size)) return leak__calloc(count, size);
  return should_fail() ? NULL : map_huge_table(count * size);
}

void leak__free_table(void *table, size_t count, size_t size) {
  if (table == NULL) return;
  if (is_mapped_table(count * size))
    munmap(table, mapped_bytes(count * size));
  else
    leak__free(table);
}

size_t leak__table_bytes(const void *table, size_t count, size_t size) {
  if (table == NULL) return 0;
  if (is_mapped_table(count * size)) return mapped_bytes(count * size);
  /* a block from the C library: its usable size plus the chunk header */
  return malloc_usable_size((void *)table) + sizeof(size_t);
}
