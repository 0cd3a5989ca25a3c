/* The stack table: each distinct stack stored once under one id (the depth of the whole stack is
 * part of the key), references to code objects taken once per entry and dropped by a clear, lookups
 * without the GIL finding only stored stacks, and pinned tables surviving clears. */
#include "core/internal.h"
#include "core/stacks.h"
#include "runner.h"

/* Two distinct code objects from the embedded interpreter (new references). */
static void two_codes(PyCodeObject **a, PyCodeObject **b) {
  test_python_start();
  ASSERT_EQ(test_python_run("def alpha():\n    return 1\n"
                            "def beta():\n    return 2\n"),
            0);
  PyObject *main_module = PyImport_AddModule("__main__");
  PyObject *alpha = PyObject_GetAttrString(main_module, "alpha");
  PyObject *beta = PyObject_GetAttrString(main_module, "beta");
  ASSERT(alpha && beta);
  *a = (PyCodeObject *)PyObject_GetAttrString(alpha, "__code__");
  *b = (PyCodeObject *)PyObject_GetAttrString(beta, "__code__");
  ASSERT(*a && *b);
  Py_DECREF(alpha);
  Py_DECREF(beta);
}

/* Interns under the lock, with the hash the tracer would compute; depth 0 means "not cut" (the
 * table stores at least nframe). */
static leak__stack_id intern(const leak__frame *frames, int nframe, int depth, int may_reference) {
  leak__stacks_lock();
  leak__stack_id id = leak__stacks_intern_unlocked(frames, nframe, depth, leak__stacks_hash(frames, nframe, depth),
                                                   may_reference);
  leak__stacks_unlock();
  return id;
}

TEST(stacks_same_stack_same_id) {
  PyCodeObject *a, *b;
  two_codes(&a, &b);
  leak__frame one[2] = {{a, 10}, {b, 4}};
  leak__frame same[2];
  memset(same, 0xA5, sizeof(same)); /* padding differs: must not matter */
  same[0].code = a, same[0].lasti = 10, same[1].code = b, same[1].lasti = 4;
  leak__frame other_offset[2] = {{a, 12}, {b, 4}};
  leak__frame swapped[2] = {{b, 4}, {a, 10}};

  leak__stack_id id = intern(one, 2, 0, 1);
  ASSERT(id != LEAK_STACK_EMPTY && id != LEAK_STACK_NONE);
  ASSERT_EQ(intern(same, 2, 0, 1), id);
  ASSERT_NE(intern(other_offset, 2, 0, 1), id);
  ASSERT_NE(intern(swapped, 2, 0, 1), id);
  ASSERT_NE(intern(one, 2, 3, 1), id); /* the depth is part of the stack */
  ASSERT_NE(intern(one, 1, 0, 1), id);
  ASSERT_EQ(intern(one, 0, 0, 1), LEAK_STACK_EMPTY);
  ASSERT_EQ(leak__stacks_count(), 5);

  const leak__frame *frames;
  int nframe, truncated;
  ASSERT_EQ(leak__stacks_lookup(id, &frames, &nframe, &truncated), 0);
  ASSERT_EQ(nframe, 2);
  ASSERT_EQ(truncated, 0);
  ASSERT(frames[0].code == a && frames[0].lasti == 10 && frames[1].code == b && frames[1].lasti == 4);
  ASSERT_EQ(intern(one, 2, 2, 1), id); /* depth 0 is stored as nframe: not cut */
  ASSERT_EQ(leak__stacks_lookup(LEAK_STACK_EMPTY, &frames, &nframe, &truncated), 0);
  ASSERT_EQ(nframe, 0);
  ASSERT_EQ(leak__stacks_lookup(9999, &frames, &nframe, &truncated), LEAK_ENOENT);
  return 0;
}

TEST(stacks_depth_is_recorded_capped_and_keyed) {
  PyCodeObject *a, *b;
  two_codes(&a, &b);
  leak__frame one[1] = {{a, 6}};
  enum { DEPTHS = 2000 };
  static leak__stack_id ids[DEPTHS];
  /* the same frame cut from stacks of every depth: one stack per depth, each giving its depth back */
  for (int depth = 1; depth < DEPTHS; depth++) {
    ids[depth] = intern(one, 1, depth, 1);
    ASSERT(ids[depth] != LEAK_STACK_NONE && ids[depth] != LEAK_STACK_EMPTY);
  }
  ASSERT_EQ(leak__stacks_count(), DEPTHS - 1);
  for (int depth = 1; depth < DEPTHS; depth++) {
    ASSERT_EQ(intern(one, 1, depth, 0), ids[depth]);
    const leak__frame *frames;
    int nframe = -1, got = -1, truncated = -1;
    ASSERT_EQ(leak__stacks_lookup_depth(ids[depth], &frames, &nframe, &got), 0);
    ASSERT_EQ(nframe, 1);
    ASSERT_EQ(got, depth);
    ASSERT(frames[0].code == a && frames[0].lasti == 6);
    ASSERT_EQ(leak__stacks_lookup(ids[depth], &frames, &nframe, &truncated), 0);
    ASSERT_EQ(truncated, depth > 1);
  }
  /* deeper than a uint16_t: stored as tracemalloc's cap, and every such depth is the same stack */
  leak__frame two[2] = {{b, 2}, {a, 4}};
  leak__stack_id deep = intern(two, 2, LEAK_STACK_MAX_DEPTH + 1, 1);
  ASSERT_EQ(intern(two, 2, 1000000, 1), deep);
  ASSERT_EQ(intern(two, 2, LEAK_STACK_MAX_DEPTH, 1), deep);
  ASSERT_NE(intern(two, 2, LEAK_STACK_MAX_DEPTH - 1, 1), deep);
  const leak__frame *frames;
  int nframe, depth;
  ASSERT_EQ(leak__stacks_lookup_depth(deep, &frames, &nframe, &depth), 0);
  ASSERT_EQ(nframe, 2);
  ASSERT_EQ(depth, LEAK_STACK_MAX_DEPTH);
  ASSERT_EQ(leak__stacks_lookup_depth(LEAK_STACK_EMPTY, &frames, &nframe, &depth), 0);
  ASSERT_EQ(nframe, 0);
  ASSERT_EQ(depth, 0);
  ASSERT_EQ(leak__stacks_lookup_depth(9999999, &frames, &nframe, &depth), LEAK_ENOENT);
  return 0;
}

TEST(stacks_many_stacks_grow_and_stay_distinct) {
  PyCodeObject *a, *b;
  two_codes(&a, &b);
  enum { N = 20000 };
  static leak__stack_id ids[N];
  for (int i = 0; i < N; i++) {
    leak__frame frames[2] = {{a, i}, {b, i / 7}};
    ids[i] = intern(frames, 2, 0, 1);
    ASSERT(ids[i] != LEAK_STACK_NONE && ids[i] != LEAK_STACK_EMPTY);
  }
  for (int i = 0; i < N; i++) {
    leak__frame frames[2] = {{a, i}, {b, i / 7}};
    ASSERT_EQ(intern(frames, 2, 0, 0), ids[i]);
    const leak__frame *got;
    int nframe, truncated;
    ASSERT_EQ(leak__stacks_lookup(ids[i], &got, &nframe, &truncated), 0);
    ASSERT_EQ(got[0].lasti, i);
  }
  ASSERT_EQ(leak__stacks_count(), N);
  ASSERT_GT(leak__stacks_memory(), (size_t)N * 2 * sizeof(leak__frame));
  return 0;
}

TEST(stacks_references_taken_once_and_released_by_clear) {
  PyCodeObject *a, *b;
  two_codes(&a, &b);
  Py_ssize_t a_refs = Py_REFCNT(a), b_refs = Py_REFCNT(b);
  leak__frame frames[3] = {{a, 2}, {a, 6}, {b, 0}};
  leak__stack_id id = intern(frames, 3, 0, 1);
  ASSERT_EQ(Py_REFCNT(a), a_refs + 2);
  ASSERT_EQ(Py_REFCNT(b), b_refs + 1);
  ASSERT_EQ(intern(frames, 3, 0, 1), id); /* found again: no new reference */
  ASSERT_EQ(Py_REFCNT(a), a_refs + 2);
  leak__stacks_clear();
  ASSERT_EQ(Py_REFCNT(a), a_refs);
  ASSERT_EQ(Py_REFCNT(b), b_refs);
  ASSERT_EQ(leak__stacks_count(), 0);
  const leak__frame *got;
  int nframe, truncated;
  ASSERT_EQ(leak__stacks_lookup(id, &got, &nframe, &truncated), LEAK_ENOENT);
  return 0;
}

TEST(stacks_without_gil_only_finds_stored_stacks) {
  PyCodeObject *a, *b;
  two_codes(&a, &b);
  Py_ssize_t a_refs = Py_REFCNT(a);
  leak__frame known[1] = {{a, 8}};
  leak__frame unknown[1] = {{b, 8}};
  leak__stack_id id = intern(known, 1, 0, 1);
  ASSERT_EQ(intern(known, 1, 0, 0), id);
  ASSERT_EQ(intern(unknown, 1, 0, 0), LEAK_STACK_EMPTY);
  ASSERT_EQ(leak__stacks_count(), 1);
  ASSERT_EQ(Py_REFCNT(a), a_refs + 1);
  return 0;
}

TEST(stacks_pinned_table_survives_clear) {
  PyCodeObject *a, *b;
  two_codes(&a, &b);
  leak__frame frames[1] = {{a, 8}};
  leak__stack_id id = intern(frames, 1, 0, 1);
  Py_ssize_t a_refs = Py_REFCNT(a);
  leak__stacks_pin();
  leak__stacks_clear();
  const leak__frame *got;
  int nframe, truncated;
  ASSERT_EQ(leak__stacks_lookup(id, &got, &nframe, &truncated), 0);
  ASSERT(got[0].code == a);
  ASSERT_EQ(Py_REFCNT(a), a_refs);
  leak__stacks_unpin();
  leak__stacks_clear();
  ASSERT_EQ(leak__stacks_lookup(id, &got, &nframe, &truncated), LEAK_ENOENT);
  ASSERT_EQ(Py_REFCNT(a), a_refs - 1);
  return 0;
}

TEST(stacks_out_of_memory_gives_none) {
  PyCodeObject *a, *b;
  two_codes(&a, &b);
  leak__frame frames[1] = {{a, 8}};
  leak__stack_id id = intern(frames, 1, 0, 1);
  leak__alloc_fail_after(0);
  for (int i = 0; i < 1000; i++) {
    leak__frame other[1] = {{b, i}};
    ASSERT_EQ(intern(other, 1, 0, 1), LEAK_STACK_NONE);
  }
  ASSERT_EQ(intern(frames, 1, 0, 1), id); /* lookups need no memory */
  leak__alloc_fail_after(-1);
  leak__frame other[1] = {{b, 1}};
  ASSERT(intern(other, 1, 0, 1) != LEAK_STACK_NONE);
  return 0;
}
