/* The address set: open addressing, linear probing, 8 bytes a slot.  See addrset.h. */
#include "core/internal.h"
#include "core/addrset.h"

#include <string.h>

#define ADDRSET_MIN_CAPACITY 64

/* The smallest power of two whose 3/4 holds `count` entries, so the set does not grow before. */
static size_t addrset_capacity_for(size_t count) {
  size_t capacity = ADDRSET_MIN_CAPACITY;
  while (capacity - capacity / 4 < count) {
    if (capacity > SIZE_MAX / 2 / sizeof(uintptr_t)) return 0;
    capacity *= 2;
  }
  return capacity;
}

/* Places an address known to be absent into a slot array; used when rehashing, where no compare
 * is needed. */
static void addrset_place(uintptr_t *slots, size_t mask, uintptr_t address) {
  size_t i = leak__addrset_mix(address) & mask;
  while (slots[i] != 0) i = (i + 1) & mask;
  slots[i] = address;
}

/* Moves every entry into a fresh array of `capacity` slots; the old array is freed only once the
 * new one exists, so failure leaves the set as it was. */
static int addrset_resize(leak__addrset *set, size_t capacity) {
  uintptr_t *slots = leak__calloc_table(capacity, sizeof(uintptr_t));
  if (slots == NULL) return LEAK_ENOMEM;
  if (set->slots != NULL) {
    for (size_t i = 0; i <= set->mask; i++)
      if (set->slots[i] != 0) addrset_place(slots, capacity - 1, set->slots[i]);
    leak__free_table(set->slots, set->mask + 1, sizeof(uintptr_t));
  }
  set->slots = slots;
  set->mask = capacity - 1;
  return 0;
}

int leak__addrset_init(leak__addrset *set, size_t expected) {
  set->slots = NULL;
  set->mask = 0;
  set->count = 0;
  size_t capacity = addrset_capacity_for(expected);
  if (capacity == 0) return LEAK_ENOMEM;
  return addrset_resize(set, capacity);
}

int leak__addrset_add(leak__addrset *set, uintptr_t address) {
  if (address == 0) return LEAK_EINVAL;
  if (set->slots == NULL) {
    int rc = addrset_resize(set, ADDRSET_MIN_CAPACITY);
    if (rc < 0) return rc;
  }
  size_t mask = set->mask;
  size_t i = leak__addrset_mix(address) & mask;
  for (;;) {
    uintptr_t here = set->slots[i];
    if (here == address) return 0;
    if (here == 0) break;
    i = (i + 1) & mask;
  }
  /* Absent.  Keep the load at or under 3/4 after this insert; growing moves entries, so the free
   * slot found above is searched again in the new array. */
  size_t capacity = mask + 1;
  if (set->count + 1 > capacity - capacity / 4) {
    if (capacity > SIZE_MAX / 2 / sizeof(uintptr_t)) return LEAK_ENOMEM;
    int rc = addrset_resize(set, capacity * 2);
    if (rc < 0) return rc;
    addrset_place(set->slots, set->mask, address);
  } else {
    set->slots[i] = address;
  }
  set->count++;
  return 1;
}

int leak__addrset_contains(const leak__addrset *set, uintptr_t address) {
  if (address == 0 || set->slots == NULL) return 0;
  size_t mask = set->mask;
  size_t i = leak__addrset_mix(address) & mask;
  for (;;) {
    uintptr_t here = set->slots[i];
    if (here == address) return 1;
    if (here == 0) return 0;
    i = (i + 1) & mask;
  }
}

size_t leak__addrset_memory(const leak__addrset *set) {
  return leak__table_bytes(set->slots, set->mask + 1, sizeof(uintptr_t));
}

void leak__addrset_free(leak__addrset *set) {
  leak__free_table(set->slots, set->mask + 1, sizeof(uintptr_t));
  set->slots = NULL;
  set->mask = 0;
  set->count = 0;
}
