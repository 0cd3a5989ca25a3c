/* The raw allocator libleak uses for its own tables.
 *
 * libleak's bookkeeping must never go through the Python allocators it hooks (it would trace itself
 * and recurse), so every table allocates here, straight from the C library.  Tests can make the Nth
 * allocation fail, so that every out-of-memory path of the library is exercised. */
#ifndef LIBLEAK_ALLOC_H
#define LIBLEAK_ALLOC_H

#include <stddef.h>

/* malloc/calloc/realloc/free from the C library; NULL when memory ran out (or a test injected that). */
void *leak__malloc(size_t size);
void *leak__calloc(size_t count, size_t size);
void *leak__realloc(void *ptr, size_t size);
void leak__free(void *ptr);

/* Zeroed memory for a hash table probed at random slots.  Small tables come from leak__calloc.  From
 * LEAK_HUGE_TABLE_BYTES on, a table is a mapping of its own, started on a 2 MiB boundary and advised
 * to the kernel for transparent huge pages (madvise MADV_HUGEPAGE): with 4 KiB pages a probe of a
 * table of tens of MiB misses the TLB as well as the caches.  Only advice: where the kernel has huge
 * pages off, or none free, the table works the same.  NULL when memory ran out.
 *
 * A mapping, not calloc: the C library serves blocks of several MiB from its heap once its mmap
 * threshold has risen (glibc raises it to the biggest block freed), and advice given to heap memory
 * outlives the table: the host's later blocks there would get huge pages too.
 *
 * Freed with leak__free_table, given the same count and size. */
#define LEAK_HUGE_TABLE_BYTES ((size_t)4 << 20)
void *leak__calloc_table(size_t count, size_t size);
void leak__free_table(void *table, size_t count, size_t size);

/* The real bytes a table from leak__calloc_table holds (0 for NULL). */
size_t leak__table_bytes(const void *table, size_t count, size_t size);

/* Test hook: make every allocation after the next `n` fail (n < 0: never fail).  Thread-safe. */
void leak__alloc_fail_after(long n);

/* uthash routes through the raw allocator and reports out-of-memory instead of exiting. */
#define HASH_NONFATAL_OOM 1
#define uthash_malloc(size) leak__malloc(size)
#define uthash_free(ptr, size) leak__free(ptr)

#endif
