/* Heap profiles: a tracer snapshot's live blocks as a profile with "inuse_space" (bytes) and
 * "inuse_objects" (count), so the same writers give pprof, speedscope, folded stacks and flame
 * graphs of live memory.  Sampled snapshots are scaled by each trace's weight, as the snapshot's
 * own statistics are. */
#include "core/internal.h"
#include "profile/profile.h"
#include "tracer/snapshot.h"

#include <math.h>
#include <stdio.h>

int leak_snapshot_profile(const leak_snapshot *s, leak_profile **out) {
  if (s == NULL || out == NULL) return LEAK_EINVAL;
  static const char *const names[] = {"inuse_space", "inuse_objects"};
  static const char *const units[] = {"bytes", "count"};
  leak_profile *p = NULL;
  int rc = leak_profile_new(2, names, units, &p);
  if (rc < 0) return rc;
  /* The profile frame of each snapshot frame, then each trace's stack through it. */
  uint32_t *frame_map = leak__malloc(((size_t)s->tables->nframes + 1) * sizeof *frame_map);
  uint32_t *stack = leak__malloc(((size_t)s->tables->nrefs + 1) * sizeof *stack);
  if (frame_map == NULL || stack == NULL) rc = LEAK_ENOMEM;
  for (uint32_t f = 0; rc == 0 && f < s->tables->nframes; f++) {
    const leak__snap_frame *fr = &s->tables->frames[f];
    const char *file = leak__snapshot_string(s, fr->filename);
    char name[512];
    snprintf(name, sizeof name, "%s:%d", file, (int)fr->lineno);
    rc = leak_profile_add_frame(p, name, file, (int)fr->lineno, &frame_map[f]);
  }
  for (size_t i = 0; rc == 0 && i < s->ntraces; i++) {
    const leak__snap_trace *t = &s->traces[i];
    const leak__snap_traceback *tb = leak__snapshot_traceback(s, t->traceback);
    for (uint32_t k = 0; k < tb->nframe; k++) stack[k] = frame_map[s->tables->frame_refs[tb->first + k]];
    int64_t values[2];
    values[0] = (int64_t)llround((double)t->size * t->weight);
    values[1] = (int64_t)llround(t->weight);
    rc = leak_profile_add_sample(p, 0, stack, tb->nframe, values);
  }
  leak__free(frame_map);
  leak__free(stack);
  if (rc < 0) {
    leak_profile_free(p);
    return rc;
  }
  *out = p;
  return 0;
}
