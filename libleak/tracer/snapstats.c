/* Snapshots: grouping, statistics and comparing, and the public C API over them
 * (leak_snapshot_top, leak_snapshot_compare).  Read tracer/snapshot.h first.
 *
 * Separate from the builder because it only reads finished snapshots.  Grouping never creates a
 * Python object: traces are grouped by small integer keys (string, frame or traceback-group indexes,
 * which are unique per value because the builder deduplicates), rows are sorted with tracemalloc's
 * keys and tie-breaks, and two snapshots are matched by the content of their keys (filename text and
 * line numbers), not by index, since each has its own tables.
 *
 * Sizes and counts are summed exactly for unsampled traces (weight 1) and as doubles of size*weight
 * and weight for sampled ones; the two parts are added and rounded once, at the end. */
#include "core/internal.h"
#include "tracer/snapshot.h"
#include "core/idset.h"

#include <math.h>
#include <string.h>

/* ---- Grouping -------------------------------------------------------------------------------- */

/* Per-key sums while grouping: exact integers for weight-1 traces, doubles for sampled ones. */
typedef struct group_sum {
  uint64_t size, count;
  double wsize, wcount;
} group_sum;

/* Adds one trace to its group, exactly when unsampled, as an estimate when sampled. */
static void sum_add(group_sum *g, const leak__snap_trace *trace) {
  if (trace->weight == 1.0) {
    g->size += trace->size;
    g->count += 1;
  } else {
    g->wsize += (double)trace->size * trace->weight;
    g->wcount += trace->weight;
  }
}

/* Exact part plus the estimate rounded once (tracemalloc's sizes are integers). */
static uint64_t sum_round(uint64_t exact, double estimate) { return exact + (uint64_t)llround(estimate); }

/* The key of one frame for cumulative grouping. */
static uint32_t frame_key(const leak__snapshot *s, uint32_t frame, leak_key_type key) {
  return key == LEAK_KEY_FILENAME ? s->tables->frames[frame].filename : frame;
}

/* How many distinct keys `key` can take in `s`, i.e. the size of a dense per-key array. */
static size_t key_space(const leak__snapshot *s, leak_key_type key) {
  switch (key) {
    case LEAK_KEY_FILENAME: return s->tables->nstrings;
    case LEAK_KEY_LINENO: return s->tables->nframes;
    default: return s->tables->ntracebacks;
  }
}

static void sum_merge(group_sum *into, const group_sum *from) {
  into->size += from->size;
  into->count += from->count;
  into->wsize += from->wsize;
  into->wcount += from->wcount;
}

/* Sums per key into a dense array indexed by key (keys are small table indexes); the caller frees
 * *sums.  Traces are first summed per traceback, so the per-frame work (cumulative grouping walks
 * every frame) is done once per distinct traceback, not once per trace.  Cumulative grouping counts
 * a trace once per frame, as tracemalloc does (a recursive line counts as often as it appears). */
static int group_traces(const leak__snapshot *s, leak_key_type key, int cumulative, group_sum **sums) {
  if (key != LEAK_KEY_FILENAME && key != LEAK_KEY_LINENO && key != LEAK_KEY_TRACEBACK) return LEAK_EINVAL;
  if (cumulative && key == LEAK_KEY_TRACEBACK) return LEAK_EINVAL;
  const leak__snap_tables *t = s->tables;
  size_t n = key_space(s, key);
  group_sum *g = leak__calloc(n ? n : 1, sizeof(group_sum));
  group_sum *per_traceback = leak__calloc(t->ntracebacks ? t->ntracebacks : 1, sizeof(group_sum));
  if (g == NULL || per_traceback == NULL) {
    leak__free(g);
    leak__free(per_traceback);
    return LEAK_ENOMEM;
  }
  for (size_t i = 0; i < s->ntraces; i++) sum_add(&per_traceback[s->traces[i].traceback], &s->traces[i]);
  for (uint32_t i = 0; i < t->ntracebacks; i++) {
    const group_sum *sum = &per_traceback[i];
    if (sum->count == 0 && sum->wcount == 0) continue;
    const leak__snap_traceback *tb = &t->tracebacks[i];
    if (key == LEAK_KEY_TRACEBACK) {
      sum_merge(&g[tb->group], sum);
    } else if (!cumulative) {
      sum_merge(&g[frame_key(s, t->frame_refs[tb->first], key)], sum);
    } else {
      for (uint32_t f = 0; f < tb->nframe; f++) sum_merge(&g[frame_key(s, t->frame_refs[tb->first + f], key)], sum);
    }
  }
  leak__free(per_traceback);
  *sums = g;
  return 0;
}

/* Rows name their key by index; these read it back as frames for sorting, matching and output. */
uint32_t leak__stat_row_nframe(const leak__stat_row *row, leak_key_type key) {
  return key == LEAK_KEY_TRACEBACK ? row->owner->tables->tracebacks[row->key].nframe : 1;
}

void leak__stat_row_frame(const leak__stat_row *row, leak_key_type key, uint32_t i, const char **filename,
                          int *lineno) {
  const leak__snapshot *s = row->owner;
  const leak__snap_frame *frame;
  switch (key) {
    case LEAK_KEY_FILENAME:
      *filename = leak__snapshot_string(s, row->key);
      *lineno = 0;
      return;
    case LEAK_KEY_LINENO:
      frame = &s->tables->frames[row->key];
      break;
    default:
      frame = leak__snapshot_tb_frame(s, &s->tables->tracebacks[row->key], i);
      break;
  }
  *filename = leak__snapshot_string(s, frame->filename);
  *lineno = frame->lineno;
}

/* Compares two keys as tracemalloc compares Traceback objects: frames from the OLDEST to the most
 * recent, each by filename (code point order, which UTF-8 byte order preserves) then line. */
static int compare_keys(const leak__stat_row *a, const leak__stat_row *b, leak_key_type key) {
  uint32_t na = leak__stat_row_nframe(a, key), nb = leak__stat_row_nframe(b, key);
  uint32_t n = na < nb ? na : nb;
  for (uint32_t i = 0; i < n; i++) {
    const char *fa, *fb;
    int la, lb;
    leak__stat_row_frame(a, key, na - 1 - i, &fa, &la);
    leak__stat_row_frame(b, key, nb - 1 - i, &fb, &lb);
    int c = strcmp(fa, fb);
    if (c != 0) return c < 0 ? -1 : 1;
    if (la != lb) return la < lb ? -1 : 1;
  }
  return na == nb ? 0 : (na < nb ? -1 : 1);
}

/* Three-way comparisons for the sort keys (no subtraction: it could overflow). */
static int compare_u64(uint64_t a, uint64_t b) { return a == b ? 0 : (a < b ? -1 : 1); }
static uint64_t abs64(int64_t v) { return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; }

/* qsort has no context argument, so the key type of the rows being sorted is passed here.  Protected
 * by being thread-local: concurrent sorts in different threads each see their own. */
static __thread leak_key_type sort_key_type;

/* Biggest first by (size, count, traceback): tracemalloc's Statistic._sort_key, reversed. */
static int by_statistic(const void *pa, const void *pb) {
  const leak__stat_row *a = pa, *b = pb;
  int c = compare_u64(a->size, b->size);
  if (c == 0) c = compare_u64(a->count, b->count);
  if (c == 0) c = compare_keys(a, b, sort_key_type);
  return -c;
}

/* Biggest first by (|size_diff|, size, |count_diff|, count, traceback): StatisticDiff._sort_key. */
static int by_difference(const void *pa, const void *pb) {
  const leak__stat_row *a = pa, *b = pb;
  int c = compare_u64(abs64(a->size_diff), abs64(b->size_diff));
  if (c == 0) c = compare_u64(a->size, b->size);
  if (c == 0) c = compare_u64(abs64(a->count_diff), abs64(b->count_diff));
  if (c == 0) c = compare_u64(a->count, b->count);
  if (c == 0) c = compare_keys(a, b, sort_key_type);
  return -c;
}

/* Turns dense sums into rows for the keys that were used. */
static int sums_to_rows(const leak__snapshot *s, leak_key_type key, const group_sum *g, leak__stat_row **rows,
                        size_t *nrows) {
  size_t n = key_space(s, key), used = 0;
  for (size_t k = 0; k < n; k++) used += (g[k].count != 0 || g[k].wcount != 0);
  leak__stat_row *r = leak__malloc((used ? used : 1) * sizeof(*r));
  if (r == NULL) return LEAK_ENOMEM;
  size_t j = 0;
  for (size_t k = 0; k < n; k++) {
    if (g[k].count == 0 && g[k].wcount == 0) continue;
    r[j].owner = s;
    r[j].key = (uint32_t)k;
    r[j].size = sum_round(g[k].size, g[k].wsize);
    r[j].count = sum_round(g[k].count, g[k].wcount);
    r[j].size_diff = (int64_t)r[j].size;
    r[j].count_diff = (int64_t)r[j].count;
    j++;
  }
  *rows = r;
  *nrows = used;
  return 0;
}

/* Rows of one snapshot grouped by key, unsorted. */
static int grouped_rows(const leak__snapshot *s, leak_key_type key, int cumulative, leak__stat_row **rows,
                        size_t *nrows) {
  group_sum *g;
  int rc = group_traces(s, key, cumulative, &g);
  if (rc < 0) return rc;
  rc = sums_to_rows(s, key, g, rows, nrows);
  leak__free(g);
  return rc;
}

/* Groups then sorts: the sort is what users read first (the top lines). */
int leak__snapshot_statistics(const leak__snapshot *s, leak_key_type key, int cumulative, leak__stat_row **rows,
                              size_t *nrows) {
  int rc = grouped_rows(s, key, cumulative, rows, nrows);
  if (rc < 0) return rc;
  sort_key_type = key;
  qsort(*rows, *nrows, sizeof(leak__stat_row), by_statistic);
  return 0;
}

/* A hash of a row's key by content, so rows of two snapshots can be matched. */
static uint32_t row_content_hash(const leak__stat_row *row, leak_key_type key) {
  uint32_t n = leak__stat_row_nframe(row, key), h = n;
  for (uint32_t i = 0; i < n; i++) {
    const char *filename;
    int lineno;
    leak__stat_row_frame(row, key, i, &filename, &lineno);
    h = leak__hash_bytes(filename, strlen(filename), h) ^ leak__hash_u64((uint64_t)(uint32_t)lineno + h);
  }
  return h;
}

struct row_probe {
  const leak__stat_row *rows;
  const leak__stat_row *row;
  leak_key_type key;
};
/* Two rows match when their keys hold the same frames, whichever snapshot owns them. */
static int row_equal(const void *context, uint32_t index) {
  const struct row_probe *p = context;
  return compare_keys(&p->rows[index], p->row, p->key) == 0;
}

/* Matches the groups of `old` to those of `now` by content through a hash set over old's rows; rows
 * of `now` get their differences, old rows left unmatched become rows of size 0. */
int leak__snapshot_compare(const leak__snapshot *now, const leak__snapshot *old, leak_key_type key, int cumulative,
                           leak__stat_row **rows, size_t *nrows) {
  leak__stat_row *new_rows = NULL, *old_rows = NULL, *out = NULL;
  size_t n_new = 0, n_old = 0;
  leak__idset set = {0};
  unsigned char *matched = NULL;
  int rc = grouped_rows(now, key, cumulative, &new_rows, &n_new);
  if (rc < 0) goto done;
  if ((rc = grouped_rows(old, key, cumulative, &old_rows, &n_old)) < 0) goto done;
  if (n_old > UINT32_MAX) {
    rc = LEAK_ERANGE;
    goto done;
  }
  matched = leak__calloc(n_old ? n_old : 1, 1);
  if (matched == NULL) {
    rc = LEAK_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n_old; i++) {
    struct row_probe probe = {old_rows, &old_rows[i], key};
    uint32_t hash = row_content_hash(&old_rows[i], key), found;
    size_t slot;
    if ((rc = leak__idset_reserve(&set)) < 0) goto done;
    if (!leak__idset_find(&set, hash, row_equal, &probe, &found, &slot)) leak__idset_put(&set, slot, hash, (uint32_t)i);
  }
  out = leak__malloc((n_new + n_old ? n_new + n_old : 1) * sizeof(*out));
  if (out == NULL) {
    rc = LEAK_ENOMEM;
    goto done;
  }
  size_t j = 0;
  for (size_t i = 0; i < n_new; i++) {
    out[j] = new_rows[i];
    struct row_probe probe = {old_rows, &new_rows[i], key};
    uint32_t found;
    size_t slot;
    if (n_old && leak__idset_find(&set, row_content_hash(&new_rows[i], key), row_equal, &probe, &found, &slot)) {
      matched[found] = 1;
      out[j].size_diff = (int64_t)(new_rows[i].size - old_rows[found].size);
      out[j].count_diff = (int64_t)(new_rows[i].count - old_rows[found].count);
    }
    j++;
  }
  for (size_t i = 0; i < n_old; i++) {
    if (matched[i]) continue;
    out[j] = old_rows[i];
    out[j].size = out[j].count = 0;
    out[j].size_diff = -(int64_t)old_rows[i].size;
    out[j].count_diff = -(int64_t)old_rows[i].count;
    j++;
  }
  sort_key_type = key;
  qsort(out, j, sizeof(*out), by_difference);
  *rows = out;
  *nrows = j;
  out = NULL;
  rc = 0;
done:
  leak__idset_free(&set);
  leak__free(matched);
  leak__free(new_rows);
  leak__free(old_rows);
  leak__free(out);
  return rc;
}

/* ---- Filtering ------------------------------------------------------------------------------- */

/* ---- The public C API ------------------------------------------------------------------------ */

/* Sorting uses a thread-local key type, so concurrent calls from different threads are fine. */
int leak_snapshot_top(const leak__snapshot *s, leak_key_type key, int cumulative, leak_stat *out, size_t max,
                      size_t *n) {
  if (s == NULL || n == NULL || (out == NULL && max > 0)) return LEAK_EINVAL;
  leak__stat_row *rows;
  size_t nrows;
  int rc = leak__snapshot_statistics(s, key, cumulative, &rows, &nrows);
  if (rc < 0) return rc;
  size_t count = nrows < max ? nrows : max;
  for (size_t i = 0; i < count; i++) {
    leak__stat_row_frame(&rows[i], key, 0, &out[i].filename, &out[i].lineno);
    out[i].size = rows[i].size;
    out[i].count = rows[i].count;
  }
  *n = count;
  leak__free(rows);
  return 0;
}

int leak_snapshot_compare(const leak__snapshot *now, const leak__snapshot *old, leak_key_type key, int cumulative,
                          leak_stat_diff *out, size_t max, size_t *n) {
  if (now == NULL || old == NULL || n == NULL || (out == NULL && max > 0)) return LEAK_EINVAL;
  leak__stat_row *rows;
  size_t nrows;
  int rc = leak__snapshot_compare(now, old, key, cumulative, &rows, &nrows);
  if (rc < 0) return rc;
  size_t count = nrows < max ? nrows : max;
  for (size_t i = 0; i < count; i++) {
    leak__stat_row_frame(&rows[i], key, 0, &out[i].filename, &out[i].lineno);
    out[i].size = rows[i].size;
    out[i].size_diff = rows[i].size_diff;
    out[i].count = rows[i].count;
    out[i].count_diff = rows[i].count_diff;
  }
  *n = count;
  leak__free(rows);
  return 0;
}
