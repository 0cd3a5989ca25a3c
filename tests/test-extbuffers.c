/* Extension buffers: an object's imports of PyTraceMalloc_Track/Untrack redirected to the tracer,
 * found in read-only (RELRO) pages, answered as tracemalloc would while only libleak traces, and
 * given back to CPython at restore.  The object is tests/extbuffers-user.c. */
#include "core/internal.h"
#include "tracer/extbuffers.h"
#include "runner.h"

#include <dlfcn.h>

typedef int (*track_fn)(unsigned int, uintptr_t, size_t);
typedef int (*untrack_fn)(unsigned int, uintptr_t);

/* Counts the user object's slots by state (the walk also sees every other loaded object). */
typedef struct slot_counts {
  int redirected, original, other;
} slot_counts;

static int count_user_slots(const char *object, const char *symbol, leak__extbuffers_slot_state state, void *data) {
  slot_counts *counts = data;
  (void)symbol;
  if (strstr(object, "extbuffers-user") == NULL) return 0;
  if (state == LEAK_EXTBUFFERS_REDIRECTED) counts->redirected++;
  if (state == LEAK_EXTBUFFERS_ORIGINAL) counts->original++;
  if (state == LEAK_EXTBUFFERS_OTHER) counts->other++;
  return 0;
}

static slot_counts user_slots(void) {
  slot_counts counts = {0, 0, 0};
  ASSERT_EQ(leak__extbuffers_slots(count_user_slots, &counts), 0);
  return counts;
}

static size_t traced_now(void) {
  size_t current = 0;
  ASSERT_EQ(leak_tracer_traced_memory(&current, NULL), 0);
  return current;
}

TEST(extbuffers_redirect_and_restore) {
  test_python_start();
  void *user = dlopen(LEAK_TEST_EXTBUFFERS_USER, RTLD_NOW | RTLD_LOCAL);
  if (user == NULL) fprintf(stderr, "dlopen: %s\n", dlerror());
  ASSERT(user != NULL);
  track_fn track = (track_fn)dlsym(user, "extbuffers_user_track");
  untrack_fn untrack = (untrack_fn)dlsym(user, "extbuffers_user_untrack");
  ASSERT(track != NULL && untrack != NULL);
  const unsigned domain = 4242;
  const uintptr_t block = 0x10000;

  /* Bound at load (-z now): both slots hold CPython's functions, which say "not tracing". */
  slot_counts counts = user_slots();
  ASSERT_EQ(counts.original, 2);
  ASSERT_EQ(counts.redirected + counts.other, 0);
  ASSERT_EQ(track(domain, block, 100), -2);

  ASSERT_EQ(leak_tracer_start(NULL), 0);
  size_t changed = 0;
  ASSERT_EQ(leak_extbuffers_redirect(&changed), 0);
  ASSERT_GE(changed, 2);
  counts = user_slots();
  ASSERT_EQ(counts.redirected, 2);
  ASSERT_EQ(counts.original + counts.other, 0);
  /* Nothing loaded since: no walk, nothing changed. */
  ASSERT_EQ(leak_extbuffers_redirect(&changed), 0);
  ASSERT_EQ(changed, 0);

  /* Through the slot: traced by libleak, and 0 although tracemalloc is not tracing. */
  size_t before = traced_now();
  ASSERT_EQ(track(domain, block, 123457), 0);
  ASSERT_EQ(traced_now() - before, 123457);
  ASSERT_EQ(untrack(domain, block), 0);
  ASSERT_EQ(traced_now(), before);
  /* A block libleak cannot trace (address 0) is not reported as a failure: an extension may free
   * its buffer when Track answers -1. */
  ASSERT_EQ(track(domain, 0, 64), 0);
  ASSERT_EQ(traced_now(), before);

  ASSERT_EQ(leak_extbuffers_restore(&changed), 0);
  ASSERT_EQ(changed, 2);
  counts = user_slots();
  ASSERT_EQ(counts.original, 2);
  ASSERT_EQ(counts.redirected + counts.other, 0);
  /* Straight to CPython again: libleak sees nothing, CPython answers "not tracing". */
  ASSERT_EQ(track(domain, block, 5000), -2);
  ASSERT_EQ(traced_now(), before);
  ASSERT_EQ(leak_extbuffers_restore(&changed), 0);
  ASSERT_EQ(changed, 0);

  /* A later redirect walks again even though no object was loaded: the slots were given back. */
  ASSERT_EQ(leak_extbuffers_redirect(&changed), 0);
  ASSERT_GE(changed, 2);
  ASSERT_EQ(leak_extbuffers_restore(&changed), 0);
  ASSERT_EQ(leak_tracer_stop(), 0);
  dlclose(user);
  return 0;
}

TEST(extbuffers_untraced_calls_pass_through) {
  test_python_start();
  void *user = dlopen(LEAK_TEST_EXTBUFFERS_USER, RTLD_NOW | RTLD_LOCAL);
  ASSERT(user != NULL);
  track_fn track = (track_fn)dlsym(user, "extbuffers_user_track");
  untrack_fn untrack = (untrack_fn)dlsym(user, "extbuffers_user_untrack");
  ASSERT(track != NULL && untrack != NULL);
  /* Redirected while the tracer is stopped: CPython's answer, unchanged. */
  size_t changed = 0;
  ASSERT_EQ(leak_extbuffers_redirect(&changed), 0);
  ASSERT_GE(changed, 2);
  ASSERT_EQ(track(7, 0x20000, 64), -2);
  ASSERT_EQ(untrack(7, 0x20000), -2);
  ASSERT_EQ(leak_extbuffers_restore(&changed), 0);
  ASSERT_EQ(changed, 2);
  dlclose(user);
  return 0;
}
