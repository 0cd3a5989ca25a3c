/* The live-trace table (traces.c) against a plain array: puts, replacements, removes and lookups
 * stay right through growth, shrinking and growing back to an earlier peak, with big sizes in the
 * side list; a table drained in bulk is kept, one that stays nearly empty shrinks, and a build-up
 * after a shrink regrows in one step. */
#include "core/internal.h"
#include "tracer/traces.h"
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { KEYS = 300000 };

/* The reference: size and stack of key i + 1, present or not. */
static uint64_t ref_size[KEYS];
static uint32_t ref_stack[KEYS];
static char ref_present[KEYS];

/* Addresses as pymalloc hands them out: 16-byte aligned, in runs, in a few regions. */
static uint64_t key_of(size_t i) {
  return LEAK_TRACE_KEY(0, 0x7f0000000000ull + (i / 1000) * 0x100000ull + (i % 1000) * 48);
}

/* Every key against the reference, both ways: stored traces found with their size and stack, others
 * not found, and the count agrees. */
static int check_all(const leak__trace_table *table) {
  size_t present = 0;
  for (size_t i = 0; i < KEYS; i++) {
    const leak__trace *trace = leak__traces_find(table, key_of(i));
    if (!ref_present[i]) {
      ASSERT(trace == NULL);
      continue;
    }
    present++;
    ASSERT(trace != NULL);
    ASSERT_EQ(leak__traces_size(table, trace), ref_size[i]);
    ASSERT_EQ(trace->stack, ref_stack[i]);
  }
  ASSERT_EQ(table->count, present);
  return 0;
}

TEST(tracer_traces_table_matches_reference_through_cycles) {
  leak__trace_table table = {0};
  srand(7);
  size_t peak_capacity = 0;
  for (int cycle = 0; cycle < 4; cycle++) {
    /* fill: most keys, a few replaced, some of them big */
    int grows = 0;
    size_t capacity = table.capacity;
    for (size_t i = 0; i < KEYS; i++) {
      if (rand() % 10 == 0) continue;
      uint64_t size = rand() % 1000 == 0 ? (5ull << 32) + i : 16 + i % 4000;
      uint64_t replaced = 12345;
      int rc = leak__traces_put(&table, key_of(i), (uint32_t)(i * 3 + cycle), size, &replaced);
      ASSERT_EQ(rc, ref_present[i] ? 1 : 0);
      if (ref_present[i]) ASSERT_EQ(replaced, ref_size[i]);
      ref_present[i] = 1, ref_size[i] = size, ref_stack[i] = (uint32_t)(i * 3 + cycle);
      grows += table.capacity != capacity;
      capacity = table.capacity;
    }
    /* the first build-up grows step by step; later ones go back to the earlier peak in one grow
     * (perhaps one more, when this fill is a little bigger than the last) */
    if (cycle == 0) {
      ASSERT_GT(grows, 5);
      peak_capacity = table.capacity;
    } else {
      ASSERT_LE(grows, 2);
      ASSERT_GE(table.capacity, peak_capacity);
    }
    if (check_all(&table)) return 1;
    /* drain in bulk, except a few */
    for (size_t i = 0; i < KEYS; i++) {
      if (i % 997 == 0 || !ref_present[i]) continue;
      uint64_t size = 0;
      uint32_t stack = 0;
      ASSERT_EQ(leak__traces_remove(&table, key_of(i), &size, &stack), 1);
      ASSERT_EQ(size, ref_size[i]);
      ASSERT_EQ(stack, ref_stack[i]);
      ASSERT_EQ(leak__traces_remove(&table, key_of(i), NULL, NULL), 0);
      ref_present[i] = 0;
    }
    /* drained in bulk: the table is kept for the next build-up */
    ASSERT_EQ(table.capacity, capacity);
    if (check_all(&table)) return 1;
    /* staying nearly empty through churn: it shrinks */
    for (size_t n = 0; n < capacity; n++) {
      ASSERT_EQ(leak__traces_put(&table, key_of(0) + 16, 9, 32, NULL), 0);
      ASSERT_EQ(leak__traces_remove(&table, key_of(0) + 16, NULL, NULL), 1);
    }
    ASSERT_LT(table.capacity, peak_capacity / 8);
    if (check_all(&table)) return 1;
  }
  leak__traces_reset(&table);
  ASSERT_EQ(table.capacity, 0);
  ASSERT(leak__traces_find(&table, key_of(1)) == NULL);
  return 0;
}

TEST(tracer_traces_table_grows_from_empty_and_keeps_memory_small) {
  leak__trace_table table = {0};
  for (size_t i = 0; i < 100000; i++) ASSERT_EQ(leak__traces_put(&table, key_of(i), 1, 64, NULL), 0);
  ASSERT_EQ(table.count, 100000);
  /* 16-byte slots, at least 53% full after a grow: at most ~30 bytes per trace */
  ASSERT_LE(leak__traces_memory(&table), (size_t)100000 * 31);
  leak__traces_reset(&table);
  return 0;
}

/* Calls `visit` with the range and the VmFlags line of every mapping in /proc/self/smaps, until it
 * returns nonzero. */
typedef int mapping_visit(unsigned long start, unsigned long end, const char *flags, void *data);
static void each_mapping(mapping_visit *visit, void *data) {
  FILE *smaps = fopen("/proc/self/smaps", "r");
  if (smaps == NULL) return;
  char line[512];
  unsigned long start = 0, end = 0;
  while (fgets(line, sizeof line, smaps) != NULL) {
    unsigned long from, to;
    char dash;
    if (sscanf(line, "%lx%c%lx ", &from, &dash, &to) == 3 && dash == '-') {
      start = from;
      end = to;
    } else if (strncmp(line, "VmFlags:", 8) == 0 && visit(start, end, line + 8, data)) {
      break;
    }
  }
  fclose(smaps);
}

typedef struct flags_of {
  uintptr_t address;
  char *flags;
  size_t size;
} flags_of;

static int copy_flags_if_inside(unsigned long start, unsigned long end, const char *flags, void *data) {
  flags_of *want = data;
  if (want->address < start || want->address >= end) return 0;
  snprintf(want->flags, want->size, "%s", flags);
  return 1;
}

/* The VmFlags of the mapping that holds `address`, into `flags` (empty when it is not found). */
static void mapping_flags(const void *address, char *flags, size_t size) {
  flags[0] = '\0';
  flags_of want = {(uintptr_t)address, flags, size};
  each_mapping(copy_flags_if_inside, &want);
}

static int add_if_advised(unsigned long start, unsigned long end, const char *flags, void *data) {
  if (strstr(flags, " hg") != NULL) *(size_t *)data += end - start;
  return 0;
}

/* The bytes of every mapping of this process whose VmFlags carry "hg" (advised for huge pages). */
static size_t advised_bytes(void) {
  size_t total = 0;
  each_mapping(add_if_advised, &total);
  return total;
}

/* A table past LEAK_HUGE_TABLE_BYTES asks for transparent huge pages ("hg" in its mapping's flags):
 * a million live blocks make a table of tens of MiB, probed at random.  It starts on a huge-page
 * boundary, so every 2 MiB of it can be one huge page. */
TEST(tracer_traces_big_table_asks_for_huge_pages) {
  if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0)
    return TEST_SKIP("this kernel has no transparent huge pages");
  leak__trace_table table = {0};
  for (size_t i = 0; i < KEYS; i++) ASSERT_EQ(leak__traces_put(&table, key_of(i), 1, 64, NULL), 0);
  ASSERT_GE(table.capacity * sizeof(leak__trace), LEAK_HUGE_TABLE_BYTES);
  ASSERT_EQ((uintptr_t)table.slots % ((uintptr_t)2 << 20), 0);
  char flags[512];
  mapping_flags(table.slots, flags, sizeof flags);
  ASSERT_STR_CONTAINS(flags, " hg");
  leak__traces_reset(&table);
  return 0;
}

/* Freed big tables leave no advice behind.  The second table is smaller than the first one freed,
 * the case where glibc (its mmap threshold raised by that free) would serve it from its heap: advice
 * given there would outlive the table and give the host's later blocks huge pages. */
TEST(tracer_traces_freed_big_tables_leave_no_memory_advised) {
  if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0)
    return TEST_SKIP("this kernel has no transparent huge pages");
  size_t before = advised_bytes();
  leak__trace_table table = {0};
  for (size_t i = 0; i < KEYS; i++) ASSERT_EQ(leak__traces_put(&table, key_of(i), 1, 64, NULL), 0);
  size_t first = table.capacity * sizeof(leak__trace);
  ASSERT_GT(advised_bytes(), before);
  leak__traces_reset(&table);
  for (size_t i = 0; i < KEYS * 2 / 3; i++) ASSERT_EQ(leak__traces_put(&table, key_of(i), 1, 64, NULL), 0);
  ASSERT_GE(table.capacity * sizeof(leak__trace), LEAK_HUGE_TABLE_BYTES);
  ASSERT_LT(table.capacity * sizeof(leak__trace), first);
  leak__traces_reset(&table);
  ASSERT_EQ(advised_bytes(), before);
  return 0;
}
