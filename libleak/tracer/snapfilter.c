/* Snapshots: filtering (tracemalloc's Snapshot.filter_traces).  Read tracer/snapshot.h first.
 *
 * Separate from the builder because it only reads a finished snapshot and makes a new one that
 * shares its tables; it is the only part that needs fnmatch. */
#include "core/internal.h"
#include "tracer/snapshot.h"

#include <fnmatch.h>
#include <string.h>

/* tracemalloc matches with fnmatch.fnmatch ('*' crosses '/', backslash is not an escape) after
 * normalising the filename as it does the pattern: "x.pyc" is matched as "x.py".  Returns 1, 0, or
 * LEAK_ENOMEM. */
static int pattern_matches(const char *pattern, const char *filename) {
  size_t len = strlen(filename);
  if (len < 4 || strcmp(filename + len - 4, ".pyc") != 0) return fnmatch(pattern, filename, FNM_NOESCAPE) == 0;
  char *source = leak__malloc(len);
  if (source == NULL) return LEAK_ENOMEM;
  memcpy(source, filename, len - 1);
  source[len - 1] = '\0';
  int match = fnmatch(pattern, source, FNM_NOESCAPE) == 0;
  leak__free(source);
  return match;
}

/* Filter._match_frame_impl: the pattern, then the line if the filter has one. */
static int frame_matches(const leak__snap_filter *f, const unsigned char *string_match, const leak__snap_frame *frame) {
  if (!string_match[frame->filename]) return 0;
  return !f->has_lineno || frame->lineno == f->lineno;
}

/* Filter._match_traceback: the most recent frame only, or any frame with all_frames. */
static int traceback_matches(const leak__snapshot *s, const leak__snap_filter *f, const unsigned char *string_match,
                             const leak__snap_traceback *tb) {
  if (f->all_frames) {
    for (uint32_t i = 0; i < tb->nframe; i++)
      if (frame_matches(f, string_match, leak__snapshot_tb_frame(s, tb, i))) return f->inclusive;
    return !f->inclusive;
  }
  return frame_matches(f, string_match, leak__snapshot_tb_frame(s, tb, 0)) ^ !f->inclusive;
}

/* BaseFilter._match for both kinds, given the traceback's cached result. */
static int trace_matches(const leak__snap_filter *f, int traceback_result, const leak__snap_trace *trace) {
  if (f->is_domain_filter) return (trace->domain == f->domain) ^ !f->inclusive;
  if (!f->has_domain) return traceback_result;
  if (f->inclusive) return traceback_result && trace->domain == f->domain;
  return traceback_result || trace->domain != f->domain;
}

/* Each Filter's verdict per traceback is computed once (and per filename once), so the cost per trace
 * is a lookup per filter.  Keeps a trace when some inclusive filter matches (if there are any) and
 * every exclusive filter matches (tracemalloc's _filter_trace). */
int leak__snapshot_filter(const leak__snapshot *s, const leak__snap_filter *filters, size_t nfilters,
                          leak__snapshot **out) {
  const leak__snap_tables *t = s->tables;
  leak__snapshot *result = leak__calloc(1, sizeof(*result));
  unsigned char *verdicts = NULL, *string_match = NULL;
  int rc = LEAK_ENOMEM;
  if (result == NULL) return LEAK_ENOMEM;
  result->traceback_limit = s->traceback_limit;
  if (nfilters > 0 && t->ntracebacks > SIZE_MAX / nfilters) goto fail;
  verdicts = leak__malloc(nfilters * (size_t)t->ntracebacks + 1);
  string_match = leak__malloc((size_t)t->nstrings + 1);
  if (verdicts == NULL || string_match == NULL) goto fail;
  int any_inclusive = 0;
  for (size_t k = 0; k < nfilters; k++) {
    const leak__snap_filter *f = &filters[k];
    any_inclusive |= f->inclusive != 0;
    if (f->is_domain_filter) continue;
    for (uint32_t i = 0; i < t->nstrings; i++) {
      int match = pattern_matches(f->pattern, leak__snapshot_string(s, i));
      if (match < 0) goto fail;
      string_match[i] = (unsigned char)match;
    }
    for (uint32_t i = 0; i < t->ntracebacks; i++)
      verdicts[k * t->ntracebacks + i] = (unsigned char)traceback_matches(s, f, string_match, &t->tracebacks[i]);
  }
  result->traces = leak__malloc((s->ntraces ? s->ntraces : 1) * sizeof(leak__snap_trace));
  if (result->traces == NULL) goto fail;
  size_t kept = 0;
  for (size_t i = 0; i < s->ntraces; i++) {
    const leak__snap_trace *trace = &s->traces[i];
    int keep = 1, included = !any_inclusive;
    for (size_t k = 0; k < nfilters && keep; k++) {
      const leak__snap_filter *f = &filters[k];
      int verdict = f->is_domain_filter ? 0 : verdicts[k * t->ntracebacks + trace->traceback];
      int match = trace_matches(f, verdict, trace);
      if (f->inclusive)
        included |= match;
      else if (!match)
        keep = 0;
    }
    if (keep && included) result->traces[kept++] = *trace;
  }
  result->ntraces = result->traces_cap = kept;
  __atomic_add_fetch(&s->tables->refcount, 1, __ATOMIC_ACQ_REL);
  result->tables = s->tables;
  leak__free(verdicts);
  leak__free(string_match);
  *out = result;
  return 0;
fail:
  leak__free(verdicts);
  leak__free(string_match);
  leak__free(result->traces);
  leak__free(result);
  return rc;
}
