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

/* Test hook: make every allocation after the next `n` fail (n < 0: never fail).  Thread-safe. */
void leak__alloc_fail_after(long n);

/* uthash routes through the raw allocator and reports out-of-memory instead of exiting. */
#define HASH_NONFATAL_OOM 1
#define uthash_malloc(size) leak__malloc(size)
#define uthash_free(ptr, size) leak__free(ptr)

#endif
