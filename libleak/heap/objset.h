/* A set of object addresses, as bitmaps: the heap walker's "visited" mark.
 *
 * Two objects never start within sizeof(PyObject) bytes of each other (every object is at least
 * that big), so one bit per sizeof(PyObject) bytes of address space names an object exactly.  The
 * bits live in bitmaps, one per 64 KiB of address space that holds a member, found through a small
 * hash table; a heap of a million objects costs well under a byte per object, and neighbours
 * share cache lines.  Memory comes from leak__malloc.  Not thread-safe: one walk owns a set. */
#ifndef LIBLEAK_HEAP_OBJSET_H
#define LIBLEAK_HEAP_OBJSET_H
#include <stddef.h>
#include <stdint.h>

typedef struct leak__objset_chunk leak__objset_chunk;

/* A set; zero-initialise it ({0}) to get an empty one. */
typedef struct leak__objset {
  leak__objset_chunk **slots; /* open addressing by chunk number; NULL = empty */
  size_t mask;                /* capacity - 1, a power of two (0 while there are no slots) */
  size_t chunks;              /* chunks in use */
  size_t members;             /* addresses in the set */
  leak__objset_chunk *last;   /* the chunk of the latest lookup: neighbours come in runs */
  leak__objset_chunk **ordered; /* after leak__objset_prepare_ranks: the chunks by address */
} leak__objset;

/* Adds `address`: returns 1 when it was not there, 0 when it was, LEAK_ENOMEM (set unchanged). */
int leak__objset_add(leak__objset *set, const void *address);

/* 1 when `address` is in the set, else 0. */
int leak__objset_contains(leak__objset *set, const void *address);

/* Removes every address and frees the memory; the set is empty and reusable.  Accepts {0}. */
void leak__objset_free(leak__objset *set);

/* Numbers the members by address: after this (no more adds), leak__objset_rank gives each member
 * its position among all members in increasing address order, in constant time.  0 or LEAK_ENOMEM. */
int leak__objset_prepare_ranks(leak__objset *set);

/* The rank of `address` (0 .. members - 1), or -1 when it is not a member.  Needs
 * leak__objset_prepare_ranks. */
int64_t leak__objset_rank(leak__objset *set, const void *address);

#endif
