/* The address set: adds report new/present, lookups find exactly what was added across many
 * growths, the load stays at or under 3/4, 0 is refused, and a failed growth leaves the set intact. */
#include "core/internal.h"
#include "core/addrset.h"
#include "runner.h"

/* Addresses shaped like object pointers: 16-byte aligned and in runs, the case the mix must spread. */
static uintptr_t fake_address(size_t i) { return (uintptr_t)0x7f0000000000ULL + (uintptr_t)i * 16; }

TEST(addrset_add_reports_new_then_present) {
  leak__addrset set;
  ASSERT_EQ(leak__addrset_init(&set, 0), 0);
  ASSERT_EQ(leak__addrset_add(&set, fake_address(1)), 1);
  ASSERT_EQ(leak__addrset_add(&set, fake_address(1)), 0);
  ASSERT_EQ(leak__addrset_add(&set, fake_address(2)), 1);
  ASSERT_EQ(leak__addrset_count(&set), 2);
  ASSERT_EQ(leak__addrset_contains(&set, fake_address(1)), 1);
  ASSERT_EQ(leak__addrset_contains(&set, fake_address(3)), 0);
  ASSERT_EQ(leak__addrset_add(&set, 0), LEAK_EINVAL);
  ASSERT_EQ(leak__addrset_contains(&set, 0), 0);
  leak__addrset_free(&set);
  ASSERT_EQ(leak__addrset_count(&set), 0);
  ASSERT_EQ(leak__addrset_contains(&set, fake_address(1)), 0);
  leak__addrset_free(&set); /* twice is fine */
  return 0;
}

TEST(addrset_survives_growth_with_every_entry) {
  leak__addrset set = {0}; /* zero-initialised: allocates on first add */
  const size_t n = 200000;
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(leak__addrset_add(&set, fake_address(i * 3)), 1);
    /* 8 bytes a slot and a load at or under 3/4 */
    ASSERT_LE(set.count * 4, (set.mask + 1) * 3);
  }
  ASSERT_EQ(leak__addrset_count(&set), n);
  ASSERT_LE(leak__addrset_memory(&set), n * 8 * 2 * 4 / 3 + 8 * 64);
  for (size_t i = 0; i < n * 3; i++)
    ASSERT_EQ(leak__addrset_contains(&set, fake_address(i)), i % 3 == 0);
  for (size_t i = 0; i < n; i++) ASSERT_EQ(leak__addrset_add(&set, fake_address(i * 3)), 0);
  ASSERT_EQ(leak__addrset_count(&set), n);
  leak__addrset_free(&set);
  return 0;
}

TEST(addrset_init_sizes_for_expected_count) {
  leak__addrset set;
  ASSERT_EQ(leak__addrset_init(&set, 1000), 0);
  size_t memory = leak__addrset_memory(&set);
  ASSERT_GE((set.mask + 1) * 3 / 4, 1000);
  for (size_t i = 1; i <= 1000; i++) ASSERT_EQ(leak__addrset_add(&set, fake_address(i)), 1);
  ASSERT_EQ(leak__addrset_memory(&set), memory); /* no growth before `expected` */
  leak__addrset_free(&set);
  return 0;
}

TEST(addrset_failed_growth_leaves_set_intact) {
  leak__addrset set;
  ASSERT_EQ(leak__addrset_init(&set, 0), 0);
  size_t i = 1;
  /* Fill to the brink of growing, then make the growth fail. */
  while ((set.count + 1) * 4 <= (set.mask + 1) * 3) ASSERT_EQ(leak__addrset_add(&set, fake_address(i++)), 1);
  size_t before = set.count;
  leak__alloc_fail_after(0);
  ASSERT_EQ(leak__addrset_add(&set, fake_address(i)), LEAK_ENOMEM);
  leak__alloc_fail_after(-1);
  ASSERT_EQ(set.count, before);
  ASSERT_EQ(leak__addrset_contains(&set, fake_address(i)), 0);
  for (size_t j = 1; j < i; j++) ASSERT_EQ(leak__addrset_contains(&set, fake_address(j)), 1);
  ASSERT_EQ(leak__addrset_add(&set, fake_address(i)), 1); /* and it grows once memory is back */
  leak__addrset_free(&set);
  /* A failed init leaves a usable empty set. */
  leak__alloc_fail_after(0);
  ASSERT_EQ(leak__addrset_init(&set, 10), LEAK_ENOMEM);
  leak__alloc_fail_after(-1);
  ASSERT_EQ(leak__addrset_contains(&set, fake_address(1)), 0);
  ASSERT_EQ(leak__addrset_add(&set, fake_address(1)), 1);
  leak__addrset_free(&set);
  return 0;
}
