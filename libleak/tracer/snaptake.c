/* Snapshots: taking a snapshot of the live tracer.  Read tracer/snapshot.h first.
 *
 * Separate from the builder because it is the only part that talks to the tracer, the stack table
 * and Python code objects; the file loader and the tests build snapshots without any of them. */
#include "core/internal.h"
#include "tracer/snapshot.h"
#include "core/idset.h"
#include "core/frames.h"
#include "tracer/tracer.h"

#include <math.h>
#include <string.h>

/* ---- Taking a snapshot of the live tracer ----------------------------------------------------- */

/* A map from a 64-bit key to an index, for the caches of one take (stack id -> traceback,
 * code object -> take_code, (code, offset) -> frame). */
typedef struct take_map {
  leak__idset set;
  uint64_t *keys; /* key pairs, back to back */
  uint32_t *values;
  uint32_t count, cap;
} take_map;

struct take_probe {
  const take_map *map;
  uint64_t key, key2;
};
/* Key-pair equality for the take caches. */
static int take_key_equal(const void *context, uint32_t index) {
  const struct take_probe *p = context;
  return p->map->keys[2 * (size_t)index] == p->key && p->map->keys[2 * (size_t)index + 1] == p->key2;
}

static uint32_t take_hash(uint64_t key, uint64_t key2) { return leak__hash_u64(key ^ (key2 * 0x9E3779B97F4A7C15ULL)); }

/* Looks a key pair up; 1 and *value when present. */
static int take_map_get(const take_map *map, uint64_t key, uint64_t key2, uint32_t *value) {
  if (map->count == 0) return 0;
  struct take_probe probe = {map, key, key2};
  uint32_t found;
  size_t slot = 0;
  if (!leak__idset_find(&map->set, take_hash(key, key2), take_key_equal, &probe, &found, &slot)) return 0;
  *value = map->values[found];
  return 1;
}

/* Adds a key known to be absent. */
static int take_map_put(take_map *map, uint64_t key, uint64_t key2, uint32_t value) {
  int rc = leak__idset_reserve(&map->set);
  if (rc < 0) return rc;
  uint32_t cap = map->cap;
  if ((rc = leak__snapshot_grow((void **)&map->keys, &cap, (size_t)map->count + 1, 2 * sizeof(uint64_t))) < 0)
    return rc;
  if (cap != map->cap) {
    uint32_t *values = leak__realloc(map->values, (size_t)cap * sizeof(uint32_t));
    if (values == NULL) return LEAK_ENOMEM;
    map->values = values;
    map->cap = cap;
  }
  struct take_probe probe = {map, key, key2};
  uint32_t found;
  size_t slot = 0;
  leak__idset_find(&map->set, take_hash(key, key2), take_key_equal, &probe, &found, &slot);
  map->keys[2 * (size_t)map->count] = key;
  map->keys[2 * (size_t)map->count + 1] = key2;
  map->values[map->count] = value;
  leak__idset_put(&map->set, slot, take_hash(key, key2), map->count++);
  return 0;
}

/* Frees a take cache. */
static void take_map_free(take_map *map) {
  leak__idset_free(&map->set);
  leak__free(map->keys);
  leak__free(map->values);
}

/* How many distinct offsets of one code object are resolved by walking its line table from the
 * start (leak__frame_lineno) before the take decodes the whole table once (leak__line_table_new) and
 * bisects it from then on.  Decoding costs as much as several walks: measured on a 1,000-line
 * function, about 2 on 3.8 (co_lnotab is read in C), 10 on 3.12 and 3.13, 60 on 3.10 and 3.11 (one
 * Python tuple per range of co_lines()); a code object met at one or two offsets, the common case,
 * is cheaper to walk, and one met at hundreds is quadratic to walk. */
#define TAKE_WALKS_BEFORE_TABLE 32

/* What a take knows about one code object, found through take_state.codes. */
typedef struct take_code {
  uint32_t filename; /* string index of co_filename */
  uint32_t walks;    /* distinct offsets resolved by walking so far */
  leak__line_table *lines; /* the decoded line table once built; NULL before, or if building failed */
  int table_failed;        /* building failed once: keep walking rather than retry */
} take_code;

typedef struct take_state {
  leak__snapshot *s;
  take_map stacks, codes, frames;
  take_code *code_info; /* indexed by the values of `codes`, freed with their line tables */
  uint32_t ncode_info, code_info_cap;
  uint32_t unknown_traceback; /* UINT32_MAX until first needed */
  uint32_t *frame_buffer;
} take_state;

/* The filename of a code object, interned once per code object.  Filenames that are not valid
 * UTF-8 (lone surrogates) are stored with surrogatepass, which the Python glue undoes. */
static int take_filename(take_state *st, PyCodeObject *code, uint32_t *index) {
  PyObject *name = code->co_filename, *encoded = NULL;
  const char *text = "<unknown>";
  Py_ssize_t len = 9;
  if (name != NULL && PyUnicode_Check(name)) {
    text = PyUnicode_AsUTF8AndSize(name, &len);
    if (text == NULL) {
      PyErr_Clear();
      encoded = PyUnicode_AsEncodedString(name, "utf-8", "surrogatepass");
      if (encoded == NULL) return LEAK_EPYTHON;
      text = PyBytes_AS_STRING(encoded);
      len = PyBytes_GET_SIZE(encoded);
    }
  }
  int rc = leak__snapshot_add_string(st->s, text, strnlen(text, (size_t)len), index);
  Py_XDECREF(encoded);
  return rc;
}

/* The take's record of a code object, made (with its filename interned) the first time the code
 * is met.  The pointer is valid until the next call. */
static int take_code_info(take_state *st, PyCodeObject *code, take_code **out) {
  uint32_t index;
  if (take_map_get(&st->codes, (uint64_t)(uintptr_t)code, 0, &index)) {
    *out = &st->code_info[index];
    return 0;
  }
  take_code info = {0};
  int rc = take_filename(st, code, &info.filename);
  if (rc < 0) return rc;
  uint32_t cap = st->code_info_cap;
  if ((rc = leak__snapshot_grow((void **)&st->code_info, &cap, (size_t)st->ncode_info + 1, sizeof(take_code))) < 0)
    return rc;
  st->code_info_cap = cap;
  if ((rc = take_map_put(&st->codes, (uint64_t)(uintptr_t)code, 0, st->ncode_info)) < 0) return rc;
  st->code_info[st->ncode_info] = info;
  *out = &st->code_info[st->ncode_info++];
  return 0;
}

/* The line of a frame: walked for the first few offsets of a code object, then looked up in its
 * decoded line table (see TAKE_WALKS_BEFORE_TABLE).  Both give the same answer; when the table
 * cannot be built (memory, a Python error, which is cleared) the take keeps walking. */
static int take_lineno(take_code *info, const leak__frame *frame) {
  if (info->lines == NULL && !info->table_failed && info->walks >= TAKE_WALKS_BEFORE_TABLE)
    info->table_failed = leak__line_table_new(frame->code, &info->lines) < 0;
  if (info->lines != NULL) return leak__line_table_lookup(info->lines, frame->lasti);
  info->walks++;
  return leak__frame_lineno(frame->code, frame->lasti);
}

/* A frame: line numbers are computed here, once per distinct (code, offset) of the snapshot. */
static int take_frame(take_state *st, const leak__frame *frame, uint32_t *index) {
  uint64_t key = (uint64_t)(uintptr_t)frame->code, key2 = (uint32_t)frame->lasti;
  if (take_map_get(&st->frames, key, key2, index)) return 0;
  take_code *info;
  int rc = take_code_info(st, frame->code, &info);
  if (rc < 0) return rc;
  int lineno = take_lineno(info, frame);
  if (lineno < 0) lineno = 0;
  if ((rc = leak__snapshot_add_frame(st->s, info->filename, lineno, index)) < 0) return rc;
  return take_map_put(&st->frames, key, key2, *index);
}

/* tracemalloc's traceback for memory allocated with no Python frame: one ("<unknown>", 0) frame. */
static int take_unknown_traceback(take_state *st, uint32_t *index) {
  if (st->unknown_traceback != UINT32_MAX) {
    *index = st->unknown_traceback;
    return 0;
  }
  uint32_t filename, frame;
  int rc = leak__snapshot_add_string(st->s, "<unknown>", 9, &filename);
  if (rc < 0 || (rc = leak__snapshot_add_frame(st->s, filename, 0, &frame)) < 0 ||
      (rc = leak__snapshot_add_traceback(st->s, &frame, 1, 1, index)) < 0)
    return rc;
  st->unknown_traceback = *index;
  return 0;
}

/* The traceback of a stack id, resolved once per id; total_nframe is the depth of the whole stack the
 * tracer recorded with it (stacks.h). */
static int take_traceback(take_state *st, leak__stack_id id, uint32_t *index) {
  if (take_map_get(&st->stacks, id, 0, index)) return 0;
  const leak__frame *frames;
  int nframe = 0, depth = 0, rc;
  if (id == LEAK_STACK_EMPTY || leak__stacks_lookup_depth(id, &frames, &nframe, &depth) < 0 || nframe <= 0) {
    rc = take_unknown_traceback(st, index);
  } else {
    for (int i = 0; i < nframe; i++)
      if ((rc = take_frame(st, &frames[i], &st->frame_buffer[i])) < 0) return rc;
    rc = leak__snapshot_add_traceback(st->s, st->frame_buffer, (uint32_t)nframe, (uint32_t)depth, index);
  }
  if (rc < 0) return rc;
  return take_map_put(&st->stacks, id, 0, *index);
}

/* The stack table stays pinned while the copies are resolved, so no stack id goes stale. */
int leak__snapshot_take(leak__snapshot **out) {
  if (!leak_tracer_is_tracing()) return LEAK_ENOTSTARTED;
  leak__trace_copy *copies = NULL;
  size_t count = 0;
  int rc = leak__tracer_copy_traces(&copies, &count);
  if (rc < 0) return rc;
  take_state st = {0};
  st.unknown_traceback = UINT32_MAX;
  st.s = leak__snapshot_new(leak_tracer_traceback_limit());
  st.frame_buffer = leak__malloc(LEAK_TRACER_MAX_NFRAME * sizeof(uint32_t));
  if (st.s == NULL || st.frame_buffer == NULL) {
    rc = LEAK_ENOMEM;
    goto done;
  }
  /* The traces are written over the copies, in place: entry i is read before it is written, and
   * every write lands on entries already read (a trace is smaller than a copy).  That saves
   * allocating and faulting in a second array of a million entries. */
  _Static_assert(sizeof(leak__snap_trace) <= sizeof(leak__trace_copy), "traces are rewritten in place");
  leak__snap_trace *traces = (leak__snap_trace *)(void *)copies;
  leak__stack_id last_stack = 0;
  uint32_t last_traceback = UINT32_MAX;
  for (size_t i = 0; i < count; i++) {
    leak__trace_copy copy = copies[i];
    uint32_t traceback = last_traceback;
    if (copy.stack != last_stack || last_traceback == UINT32_MAX) {
      if ((rc = take_traceback(&st, copy.stack, &traceback)) < 0) goto done;
      last_stack = copy.stack;
      last_traceback = traceback;
    }
    traces[i].size = copy.size;
    traces[i].weight = copy.weight > 0 && isfinite(copy.weight) ? copy.weight : 1.0;
    traces[i].traceback = traceback;
    traces[i].domain = copy.domain;
  }
  if (count > 0) {
    leak__snap_trace *shrunk = leak__realloc(traces, count * sizeof(leak__snap_trace));
    st.s->traces = shrunk ? shrunk : traces;
    st.s->ntraces = st.s->traces_cap = count;
    copies = NULL;
  }
  leak__snapshot_finish(st.s);
  *out = st.s;
  st.s = NULL;
  rc = 0;
done:
  leak__stacks_unpin();
  leak__free(copies);
  leak__free(st.frame_buffer);
  take_map_free(&st.stacks);
  take_map_free(&st.codes);
  take_map_free(&st.frames);
  for (uint32_t i = 0; i < st.ncode_info; i++) leak__line_table_free(st.code_info[i].lines);
  leak__free(st.code_info);
  leak_snapshot_free(st.s);
  return rc;
}

/* The public entry point: the same as the internal one, with the argument checked. */
int leak_snapshot_take(leak__snapshot **out) {
  if (out == NULL) return LEAK_EINVAL;
  return leak__snapshot_take(out);
}
