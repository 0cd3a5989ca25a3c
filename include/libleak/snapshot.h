/* libleak: snapshots of the allocation tracer's live traces, their statistics and diffs, and the
 * snapshot file format.
 *
 * A snapshot is immutable once taken or read: it holds the traced blocks (domain, size, weight,
 * traceback) and the resolved frames (filename, line) they were allocated from.  Statistics group
 * the traces by file, by line or by whole traceback, exactly as tracemalloc's Snapshot.statistics
 * and compare_to do, and write rows into a buffer the caller owns.  Taking a snapshot needs the GIL
 * (line numbers are resolved then); everything else does not touch Python. */
#ifndef LIBLEAK_SNAPSHOT_H
#define LIBLEAK_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An immutable snapshot; free it with leak_snapshot_free. */
typedef struct leak_snapshot leak_snapshot;

/* How statistics group traces (tracemalloc's key_type). */
typedef enum leak_key_type {
  LEAK_KEY_FILENAME = 0,  /* the file of the most recent frame */
  LEAK_KEY_LINENO = 1,    /* the file and line of the most recent frame */
  LEAK_KEY_TRACEBACK = 2, /* the whole traceback (not allowed with cumulative) */
} leak_key_type;

/* One row of leak_snapshot_top.  `filename` points into the snapshot and stays valid while the
 * snapshot lives; `lineno` is 0 for LEAK_KEY_FILENAME; for LEAK_KEY_TRACEBACK both describe the
 * most recent frame of the traceback.  Sampled snapshots hold estimates rounded to integers. */
typedef struct leak_stat {
  const char *filename;
  int lineno;
  uint64_t size;  /* bytes */
  uint64_t count; /* blocks */
} leak_stat;

/* One row of leak_snapshot_compare; like leak_stat plus the change since the old snapshot.
 * `filename` points into whichever snapshot holds the group (the old one for groups that vanished). */
typedef struct leak_stat_diff {
  const char *filename;
  int lineno;
  uint64_t size;
  int64_t size_diff;
  uint64_t count;
  int64_t count_diff;
} leak_stat_diff;

/* Copies the tracer's live traces into a new snapshot in *out (free it with leak_snapshot_free).
 * The caller holds the GIL.  LEAK_ENOTSTARTED when the tracer is not tracing. */
LEAK_EXTERN int leak_snapshot_take(leak_snapshot **out);

/* Frees a snapshot; NULL is accepted. */
LEAK_EXTERN void leak_snapshot_free(leak_snapshot *snapshot);

/* The number of traces in the snapshot. */
LEAK_EXTERN size_t leak_snapshot_trace_count(const leak_snapshot *snapshot);

/* Writes the snapshot to `fd` in libleak's snapshot format (see libleak/snapfile.c).  LEAK_EIO or
 * another errno-twin code when writing fails. */
LEAK_EXTERN int leak_snapshot_write(const leak_snapshot *snapshot, int fd);

/* Reads a snapshot written by leak_snapshot_write from `fd` (to its end) into *out.  LEAK_EFORMAT
 * when the data is truncated, corrupted or not a libleak snapshot; never trusts a count it has not
 * checked against the bytes actually present. */
LEAK_EXTERN int leak_snapshot_read(int fd, leak_snapshot **out);

/* Groups the traces by `key` (tracemalloc's statistics(key, cumulative)), sorts them biggest first
 * and writes the first `max` rows into `rows`; *n receives the number of rows written.  With
 * `cumulative`, every frame of a traceback counts (LEAK_KEY_TRACEBACK then gives LEAK_EINVAL). */
LEAK_EXTERN int leak_snapshot_top(const leak_snapshot *snapshot, leak_key_type key, int cumulative,
                                  leak_stat *rows, size_t max, size_t *n);

/* Differences from `old` to `now` grouped by `key` (tracemalloc's compare_to), biggest change first,
 * into the caller's `rows` (at most `max`); *n receives the number of rows written. */
LEAK_EXTERN int leak_snapshot_compare(const leak_snapshot *now, const leak_snapshot *old, leak_key_type key,
                                      int cumulative, leak_stat_diff *rows, size_t max, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
