/* Snapshots inside libleak: the immutable tables behind leak_snapshot, the builder that fills them
 * (used by the live tracer, the file loader and the tests), and grouping, diffing and filtering.
 *
 * Layout: a snapshot holds a string table (filenames, UTF-8, NUL-terminated), a frame table
 * (filename index, line), a traceback table (a run of frame indexes, most recent frame first, plus
 * the total depth), and the traces (domain, size, weight, traceback index).  The tables are shared,
 * reference-counted, between a snapshot and the snapshots filter_traces makes from it.  Strings,
 * frames and tracebacks are deduplicated while building, so equal values have equal indexes.
 *
 * Files: snapshot.c builds and frees and stands on nothing else here; snapstats.c groups and
 * compares (and holds the public C API over that), snapfilter.c filters, snaptake.c takes a snapshot
 * of the live tracer; all three stand on snapshot.c only.  core/idset.h is their hash set. */
#ifndef LIBLEAK_SNAPSHOT_INTERNAL_H
#define LIBLEAK_SNAPSHOT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "libleak/snapshot.h"

typedef struct leak_snapshot leak__snapshot;

typedef struct leak__snap_frame {
  uint32_t filename; /* string index */
  int32_t lineno;
} leak__snap_frame;

typedef struct leak__snap_traceback {
  uint32_t first;        /* index of its first frame in the frame-reference array */
  uint32_t nframe;       /* frames stored, most recent first (at least 1) */
  uint32_t total_nframe; /* frames the stack had, as far as known (>= nframe) */
  uint32_t group;        /* the first traceback with the same frames (total_nframe aside) */
} leak__snap_traceback;

typedef struct leak__snap_trace {
  uint64_t size;      /* bytes of the block */
  double weight;      /* allocations this trace stands for: 1 unless sampled */
  uint32_t traceback; /* traceback index */
  uint32_t domain;
} leak__snap_trace;

/* The shared tables.  Only the builder writes them; afterwards they are read-only. */
typedef struct leak__snap_tables {
  long refcount; /* atomic: snapshots that use these tables */
  char *bytes;   /* every string, NUL-terminated, back to back */
  size_t bytes_len, bytes_cap;
  size_t *string_offsets;
  uint32_t nstrings, strings_cap;
  leak__snap_frame *frames;
  uint32_t nframes, frames_cap;
  uint32_t *frame_refs; /* the frames of every traceback, back to back */
  uint32_t nrefs, refs_cap;
  leak__snap_traceback *tracebacks;
  uint32_t ntracebacks, tracebacks_cap;
} leak__snap_tables;

struct leak_snapshot {
  leak__snap_tables *tables;
  leak__snap_trace *traces;
  size_t ntraces, traces_cap;
  int traceback_limit;
  struct leak__snap_index *index; /* builder-only lookup tables; NULL once finished */
  /* The attributes a user set on the snapshot, as read from a file (tracer/snapfile.h says how they
   * are encoded); NULL when there were none.  Owned by this snapshot, never by its filtered copies. */
  unsigned char *attributes;
  size_t attributes_len;
};

/* A grouped row: `key` is a string index (filename), frame index (lineno) or traceback group
 * (traceback) of the snapshot `owner`.  Sizes and counts are rounded estimates when sampled. */
typedef struct leak__stat_row {
  const leak__snapshot *owner;
  uint32_t key;
  uint64_t size, count;
  int64_t size_diff, count_diff;
} leak__stat_row;

/* One filter of filter_traces, tracemalloc's Filter (is_domain_filter 0) or DomainFilter (1). */
typedef struct leak__snap_filter {
  int is_domain_filter;
  int inclusive;
  const char *pattern; /* already normalised like tracemalloc's _normalize_filename */
  int has_lineno;
  int lineno;
  int all_frames;
  int has_domain;
  uint32_t domain;
} leak__snap_filter;

/* ---- Building ------------------------------------------------------------------------------ */

/* Grows an array of `item`-byte items to hold `need` of them, updating *array and *cap (doubling,
 * at most 2^32-1 items).  0; LEAK_ERANGE past 2^32-1 items, LEAK_ENOMEM when memory ran out (the
 * array is then unchanged).  Shared by the builder and the caches of snaptake.c. */
int leak__snapshot_grow(void **array, uint32_t *cap, size_t need, size_t item);

/* A new, empty snapshot open for building; NULL when memory ran out. */
leak__snapshot *leak__snapshot_new(int traceback_limit);

/* Adds (or finds) a string of `len` bytes (no NUL inside); its index goes to *index.
 * LEAK_EINVAL for embedded NULs, LEAK_ENOMEM, LEAK_ERANGE past 2^32-1 entries. */
int leak__snapshot_add_string(leak__snapshot *s, const char *text, size_t len, uint32_t *index);

/* Adds (or finds) the frame (filename string index, lineno). */
int leak__snapshot_add_frame(leak__snapshot *s, uint32_t filename, int32_t lineno, uint32_t *index);

/* Adds (or finds) a traceback of `nframe` >= 1 frame indexes, most recent first. */
int leak__snapshot_add_traceback(leak__snapshot *s, const uint32_t *frames, uint32_t nframe, uint32_t total_nframe,
                                 uint32_t *index);

/* Appends a trace.  `weight` must be finite and positive. */
int leak__snapshot_add_trace(leak__snapshot *s, uint32_t domain, uint64_t size, double weight, uint32_t traceback);

/* Ends building: drops the lookup tables and trims the arrays.  Always succeeds. */
void leak__snapshot_finish(leak__snapshot *s);

/* Builds a snapshot from the live tracer (GIL held). */
int leak__snapshot_take(leak__snapshot **out);

/* ---- Reading ------------------------------------------------------------------------------- */

static inline const char *leak__snapshot_string(const leak__snapshot *s, uint32_t index) {
  return s->tables->bytes + s->tables->string_offsets[index];
}
static inline const leak__snap_traceback *leak__snapshot_traceback(const leak__snapshot *s, uint32_t index) {
  return &s->tables->tracebacks[index];
}
/* The i-th frame (0 = most recent) of a traceback. */
static inline const leak__snap_frame *leak__snapshot_tb_frame(const leak__snapshot *s,
                                                              const leak__snap_traceback *tb, uint32_t i) {
  return &s->tables->frames[s->tables->frame_refs[tb->first + i]];
}

/* Groups the traces by `key` and sorts the rows as tracemalloc does (size, count, traceback; biggest
 * first).  *rows is a new array from leak__malloc (the caller frees it), *nrows its length. */
int leak__snapshot_statistics(const leak__snapshot *s, leak_key_type key, int cumulative, leak__stat_row **rows,
                              size_t *nrows);

/* Rows of differences from `old` to `now`, sorted as tracemalloc's compare_to sorts them. */
int leak__snapshot_compare(const leak__snapshot *now, const leak__snapshot *old, leak_key_type key, int cumulative,
                           leak__stat_row **rows, size_t *nrows);

/* A row's key as frames: how many (`*nframe`) and the i-th through leak__stat_row_frame. */
uint32_t leak__stat_row_nframe(const leak__stat_row *row, leak_key_type key);
void leak__stat_row_frame(const leak__stat_row *row, leak_key_type key, uint32_t i, const char **filename,
                          int *lineno);

/* A new snapshot with the traces that pass the filters (tracemalloc's filter_traces); it shares the
 * tables of `s`. */
int leak__snapshot_filter(const leak__snapshot *s, const leak__snap_filter *filters, size_t nfilters,
                          leak__snapshot **out);

#endif
