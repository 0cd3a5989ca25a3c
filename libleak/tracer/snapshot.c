/* Snapshots: building (strings, frames, tracebacks, traces) and freeing.  Read tracer/snapshot.h
 * first.
 *
 * This file stands on nothing else of the snapshot code: grouping and comparing (snapstats.c),
 * filtering (snapfilter.c) and taking a snapshot of the live tracer (snaptake.c) all build on it,
 * never the other way round. */
#include "core/internal.h"
#include "tracer/snapshot.h"
#include "core/idset.h"

#include <math.h>
#include <string.h>

/* Builder lookup tables (strings, frames, tracebacks, traceback groups). */
struct leak__snap_index {
  leak__idset strings, frames, tracebacks, groups;
};

/* ---- Building -------------------------------------------------------------------------------- */

/* Grows an array to hold `need` items; doubles, so appends stay amortised O(1). */
int leak__snapshot_grow(void **array, uint32_t *cap, size_t need, size_t item) {
  if (need <= *cap) return 0;
  if (need > UINT32_MAX) return LEAK_ERANGE;
  size_t capacity = *cap ? (size_t)*cap * 2 : 16;
  if (capacity < need) capacity = need;
  if (capacity > UINT32_MAX) capacity = UINT32_MAX;
  void *p = leak__realloc(*array, capacity * item);
  if (p == NULL) return LEAK_ENOMEM;
  *array = p;
  *cap = (uint32_t)capacity;
  return 0;
}

/* Drops one snapshot's hold on shared tables; the last one frees them. */
static void tables_release(leak__snap_tables *t) {
  if (t == NULL || __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
  leak__free(t->bytes);
  leak__free(t->string_offsets);
  leak__free(t->frames);
  leak__free(t->frame_refs);
  leak__free(t->tracebacks);
  leak__free(t);
}

/* Every snapshot starts with its own tables; filter_traces makes snapshots that share them. */
leak__snapshot *leak__snapshot_new(int traceback_limit) {
  leak__snapshot *s = leak__calloc(1, sizeof(*s));
  if (s == NULL) return NULL;
  s->tables = leak__calloc(1, sizeof(*s->tables));
  s->index = leak__calloc(1, sizeof(*s->index));
  if (s->tables == NULL || s->index == NULL) {
    leak__free(s->tables);
    leak__free(s->index);
    leak__free(s);
    return NULL;
  }
  s->tables->refcount = 1;
  s->traceback_limit = traceback_limit;
  return s;
}

struct string_probe {
  const leak__snap_tables *t;
  const char *text;
  size_t len;
};
/* Equality callbacks: the probe's value against the entry an index names. */
static int string_equal(const void *context, uint32_t index) {
  const struct string_probe *p = context;
  const char *have = p->t->bytes + p->t->string_offsets[index];
  return strncmp(have, p->text, p->len) == 0 && have[p->len] == '\0';
}

/* Strings are deduplicated so a filename index names a filename; grouping by file relies on it. */
int leak__snapshot_add_string(leak__snapshot *s, const char *text, size_t len, uint32_t *index) {
  leak__snap_tables *t = s->tables;
  if (s->index == NULL) return LEAK_EINVAL;
  if (memchr(text, '\0', len) != NULL) return LEAK_EINVAL;
  uint32_t hash = leak__hash_bytes(text, len, 0);
  struct string_probe probe = {t, text, len};
  size_t slot = 0;
  if (t->nstrings && leak__idset_find(&s->index->strings, hash, string_equal, &probe, index, &slot)) return 0;
  int rc = leak__idset_reserve(&s->index->strings);
  if (rc < 0) return rc;
  leak__idset_find(&s->index->strings, hash, string_equal, &probe, index, &slot);
  if ((rc = leak__snapshot_grow((void **)&t->string_offsets, &t->strings_cap, (size_t)t->nstrings + 1,
                                 sizeof(size_t))) < 0)
    return rc;
  if (t->bytes_len + len + 1 > t->bytes_cap) {
    size_t capacity = t->bytes_cap ? t->bytes_cap * 2 : 1024;
    while (capacity < t->bytes_len + len + 1) capacity *= 2;
    char *bytes = leak__realloc(t->bytes, capacity);
    if (bytes == NULL) return LEAK_ENOMEM;
    t->bytes = bytes;
    t->bytes_cap = capacity;
  }
  memcpy(t->bytes + t->bytes_len, text, len);
  t->bytes[t->bytes_len + len] = '\0';
  t->string_offsets[t->nstrings] = t->bytes_len;
  t->bytes_len += len + 1;
  *index = t->nstrings++;
  leak__idset_put(&s->index->strings, slot, hash, *index);
  return 0;
}

struct frame_probe {
  const leak__snap_tables *t;
  uint32_t filename;
  int32_t lineno;
};
static int frame_equal(const void *context, uint32_t index) {
  const struct frame_probe *p = context;
  return p->t->frames[index].filename == p->filename && p->t->frames[index].lineno == p->lineno;
}

/* Frames are deduplicated so a frame index names a (file, line); grouping by line relies on it. */
int leak__snapshot_add_frame(leak__snapshot *s, uint32_t filename, int32_t lineno, uint32_t *index) {
  leak__snap_tables *t = s->tables;
  if (s->index == NULL || filename >= t->nstrings) return LEAK_EINVAL;
  uint32_t hash = leak__hash_u64(((uint64_t)filename << 32) | (uint32_t)lineno);
  struct frame_probe probe = {t, filename, lineno};
  size_t slot = 0;
  if (t->nframes && leak__idset_find(&s->index->frames, hash, frame_equal, &probe, index, &slot)) return 0;
  int rc = leak__idset_reserve(&s->index->frames);
  if (rc < 0) return rc;
  leak__idset_find(&s->index->frames, hash, frame_equal, &probe, index, &slot);
  if ((rc = leak__snapshot_grow((void **)&t->frames, &t->frames_cap, (size_t)t->nframes + 1,
                                 sizeof(leak__snap_frame))) < 0)
    return rc;
  t->frames[t->nframes].filename = filename;
  t->frames[t->nframes].lineno = lineno;
  *index = t->nframes++;
  leak__idset_put(&s->index->frames, slot, hash, *index);
  return 0;
}

struct traceback_probe {
  const leak__snap_tables *t;
  const uint32_t *frames;
  uint32_t nframe, total_nframe;
  int compare_total;
};
static int traceback_equal(const void *context, uint32_t index) {
  const struct traceback_probe *p = context;
  const leak__snap_traceback *tb = &p->t->tracebacks[index];
  if (tb->nframe != p->nframe) return 0;
  if (p->compare_total && tb->total_nframe != p->total_nframe) return 0;
  return memcmp(p->t->frame_refs + tb->first, p->frames, p->nframe * sizeof(uint32_t)) == 0;
}

/* Tracebacks are deduplicated on (frames, total_nframe); `group` links the ones with the same frames,
 * because tracemalloc's Traceback equality ignores total_nframe. */
int leak__snapshot_add_traceback(leak__snapshot *s, const uint32_t *frames, uint32_t nframe, uint32_t total_nframe,
                                 uint32_t *index) {
  leak__snap_tables *t = s->tables;
  if (s->index == NULL || nframe == 0 || total_nframe < nframe) return LEAK_EINVAL;
  for (uint32_t i = 0; i < nframe; i++)
    if (frames[i] >= t->nframes) return LEAK_EINVAL;
  uint32_t frames_hash = leak__hash_bytes(frames, nframe * sizeof(uint32_t), nframe);
  uint32_t hash = leak__hash_u64(((uint64_t)frames_hash << 32) | total_nframe);
  struct traceback_probe probe = {t, frames, nframe, total_nframe, 1};
  size_t slot = 0, group_slot = 0;
  if (t->ntracebacks && leak__idset_find(&s->index->tracebacks, hash, traceback_equal, &probe, index, &slot)) return 0;
  int rc = leak__idset_reserve(&s->index->tracebacks);
  if (rc < 0 || (rc = leak__idset_reserve(&s->index->groups)) < 0) return rc;
  leak__idset_find(&s->index->tracebacks, hash, traceback_equal, &probe, index, &slot);
  probe.compare_total = 0;
  uint32_t group;
  int group_known = t->ntracebacks && leak__idset_find(&s->index->groups, frames_hash, traceback_equal, &probe, &group,
                                                       &group_slot);
  if (!group_known) leak__idset_find(&s->index->groups, frames_hash, traceback_equal, &probe, &group, &group_slot);
  if (t->nrefs + (size_t)nframe > UINT32_MAX) return LEAK_ERANGE;
  if ((rc = leak__snapshot_grow((void **)&t->frame_refs, &t->refs_cap, (size_t)t->nrefs + nframe,
                                 sizeof(uint32_t))) < 0 ||
      (rc = leak__snapshot_grow((void **)&t->tracebacks, &t->tracebacks_cap, (size_t)t->ntracebacks + 1,
                                sizeof(leak__snap_traceback))) < 0)
    return rc;
  memcpy(t->frame_refs + t->nrefs, frames, nframe * sizeof(uint32_t));
  leak__snap_traceback *tb = &t->tracebacks[t->ntracebacks];
  tb->first = t->nrefs;
  tb->nframe = nframe;
  tb->total_nframe = total_nframe;
  tb->group = group_known ? group : t->ntracebacks;
  t->nrefs += nframe;
  *index = t->ntracebacks++;
  leak__idset_put(&s->index->tracebacks, slot, hash, *index);
  if (!group_known) leak__idset_put(&s->index->groups, group_slot, frames_hash, *index);
  return 0;
}

/* Traces are not deduplicated: two blocks from the same line are two traces. */
int leak__snapshot_add_trace(leak__snapshot *s, uint32_t domain, uint64_t size, double weight, uint32_t traceback) {
  if (s->index == NULL || traceback >= s->tables->ntracebacks || !(weight > 0) || !isfinite(weight))
    return LEAK_EINVAL;
  if (s->ntraces == s->traces_cap) {
    size_t capacity = s->traces_cap ? s->traces_cap * 2 : 64;
    if (capacity > SIZE_MAX / sizeof(leak__snap_trace)) return LEAK_ENOMEM;
    leak__snap_trace *traces = leak__realloc(s->traces, capacity * sizeof(leak__snap_trace));
    if (traces == NULL) return LEAK_ENOMEM;
    s->traces = traces;
    s->traces_cap = capacity;
  }
  leak__snap_trace *trace = &s->traces[s->ntraces++];
  trace->size = size;
  trace->weight = weight;
  trace->traceback = traceback;
  trace->domain = domain;
  return 0;
}

/* The lookup tables are only needed while values arrive; an immutable snapshot drops them. */
void leak__snapshot_finish(leak__snapshot *s) {
  if (s->index == NULL) return;
  leak__idset_free(&s->index->strings);
  leak__idset_free(&s->index->frames);
  leak__idset_free(&s->index->tracebacks);
  leak__idset_free(&s->index->groups);
  leak__free(s->index);
  s->index = NULL;
}

/* Frees the traces and releases the shared tables (filtered snapshots may still use them). */
void leak_snapshot_free(leak__snapshot *s) {
  if (s == NULL) return;
  leak__snapshot_finish(s);
  tables_release(s->tables);
  leak__free(s->traces);
  leak__free(s->attributes);
  leak__free(s);
}

/* The trace count, for hosts that size buffers or report progress. */
size_t leak_snapshot_trace_count(const leak__snapshot *s) { return s ? s->ntraces : 0; }
