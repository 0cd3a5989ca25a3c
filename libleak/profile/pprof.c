/* The pprof writer: the profile as a perftools.profiles.Profile message (profile.proto, encoded by
 * protobuf-c), gzip-compressed with zlib, as go tool pprof, Grafana Pyroscope and Parca read it.
 *
 * One Location per profile frame (one Line each), one Function per distinct (name, file); samples
 * keep their locations innermost first and carry the thread as a "thread_id" number label (and a
 * "thread_name" label when known).  Strings are deduplicated; string_table[0] is "". */
#include "core/internal.h"
#include "profile/profile.h"
#include "profile/textbuf.h"
#include "libleak/profile/profile.pb-c.h"

#include <string.h>
#include <zlib.h>

/* The string table under construction, with an open-addressing index (entries stored +1). */
typedef struct string_table {
  const char **strings;
  size_t count, cap;
  uint32_t *slots;
  size_t nslots;
} string_table;

static uint64_t hash_string(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

static int strings_init(string_table *t, size_t expected) {
  memset(t, 0, sizeof *t);
  t->cap = expected + 1;
  t->nslots = 64;
  while (t->nslots < 2 * t->cap) t->nslots *= 2;
  t->strings = leak__malloc(t->cap * sizeof *t->strings);
  t->slots = leak__calloc(t->nslots, sizeof *t->slots);
  if (t->strings == NULL || t->slots == NULL) return LEAK_ENOMEM;
  t->strings[t->count++] = "";
  return 0;
}

/* The index of `s` in the table (added when new).  The table is sized for every string up front
 * (strings_init's `expected`), so adding never grows it; -1 only if that estimate was wrong. */
static int64_t strings_intern(string_table *t, const char *s) {
  if (s[0] == '\0') return 0;
  size_t j = (size_t)hash_string(s) & (t->nslots - 1);
  for (; t->slots[j]; j = (j + 1) & (t->nslots - 1))
    if (strcmp(t->strings[t->slots[j] - 1], s) == 0) return t->slots[j] - 1;
  if (t->count >= t->cap) return -1;
  t->strings[t->count] = s;
  t->slots[j] = (uint32_t)++t->count;
  return (int64_t)t->count - 1;
}

static void strings_free(string_table *t) {
  leak__free(t->strings);
  leak__free(t->slots);
}

/* gzip-compresses `data` and writes it to `fd`.  0, LEAK_ENOMEM or a write error code. */
static int write_gzip(int fd, const uint8_t *data, size_t len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return LEAK_ENOMEM;
  unsigned char chunk[65536];
  int rc = 0;
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)len;
  int status;
  do {
    z.next_out = chunk;
    z.avail_out = sizeof chunk;
    status = deflate(&z, Z_FINISH);
    if (status == Z_STREAM_ERROR) {
      rc = LEAK_EIO;
      break;
    }
    rc = leak__write_all(fd, chunk, sizeof chunk - z.avail_out);
  } while (rc == 0 && status != Z_STREAM_END);
  deflateEnd(&z);
  return rc;
}

int leak__profile_write_pprof(const leak_profile *p, int fd) {
  typedef Perftools__Profiles__ValueType ValueType;
  typedef Perftools__Profiles__Sample Sample;
  typedef Perftools__Profiles__Label Label;
  typedef Perftools__Profiles__Location Location;
  typedef Perftools__Profiles__Line Line;
  typedef Perftools__Profiles__Function Function;

  int rc = LEAK_ENOMEM;
  int ntypes = p->ntypes;
  size_t nframes = p->nframes, nsamples = p->nsamples;
  int with_threads = p->nthreads > 0;
  string_table strings;
  /* Every string: types and units, period, frames' names and files, thread names, label keys. */
  size_t expected = 2 * (size_t)ntypes + 2 + 2 * nframes + p->nthreads + 2;

  ValueType *types = leak__calloc((size_t)ntypes + 1, sizeof *types);
  ValueType **type_ptrs = leak__calloc((size_t)ntypes, sizeof *type_ptrs);
  Function *functions = leak__calloc(nframes + 1, sizeof *functions);
  Function **function_ptrs = leak__calloc(nframes + 1, sizeof *function_ptrs);
  uint64_t *function_of_frame = leak__calloc(nframes + 1, sizeof *function_of_frame);
  Location *locations = leak__calloc(nframes + 1, sizeof *locations);
  Location **location_ptrs = leak__calloc(nframes + 1, sizeof *location_ptrs);
  Line *lines = leak__calloc(nframes + 1, sizeof *lines);
  Line **line_ptrs = leak__calloc(nframes + 1, sizeof *line_ptrs);
  Sample *samples = leak__calloc(nsamples + 1, sizeof *samples);
  Sample **sample_ptrs = leak__calloc(nsamples + 1, sizeof *sample_ptrs);
  uint64_t *location_ids = leak__calloc(p->nstack_frames + 1, sizeof *location_ids);
  int64_t *values = leak__calloc(nsamples * (size_t)ntypes + 1, sizeof *values);
  Label *labels = leak__calloc(2 * nsamples + 1, sizeof *labels);
  Label **label_ptrs = leak__calloc(2 * nsamples + 1, sizeof *label_ptrs);
  uint32_t *function_slots = NULL;
  uint8_t *packed = NULL;
  size_t nslots = 64;
  while (nslots < 2 * (nframes + 1)) nslots *= 2;
  function_slots = leak__calloc(nslots, sizeof *function_slots);
  int strings_rc = strings_init(&strings, expected);
  if (!types || !type_ptrs || !functions || !function_ptrs || !function_of_frame || !locations || !location_ptrs ||
      !lines || !line_ptrs || !samples || !sample_ptrs || !location_ids || !values || !labels || !label_ptrs ||
      !function_slots || strings_rc < 0)
    goto done;

  Perftools__Profiles__Profile msg = PERFTOOLS__PROFILES__PROFILE__INIT;
  for (int t = 0; t < ntypes; t++) {
    perftools__profiles__value_type__init(&types[t]);
    types[t].type = strings_intern(&strings, p->type_names[t]);
    types[t].unit = strings_intern(&strings, p->type_units[t]);
    type_ptrs[t] = &types[t];
  }
  msg.n_sample_type = (size_t)ntypes;
  msg.sample_type = type_ptrs;
  if (p->period_type) {
    ValueType *period = &types[ntypes];
    perftools__profiles__value_type__init(period);
    period->type = strings_intern(&strings, p->period_type);
    period->unit = strings_intern(&strings, p->period_unit);
    msg.period_type = period;
    msg.period = p->period;
  }
  msg.duration_nanos = p->duration_ns;

  /* Functions: one per distinct (name, file), found through a small index over the frames. */
  size_t nfunctions = 0;
  for (size_t i = 0; i < nframes; i++) {
    const leak__profile_frame *f = &p->frames[i];
    size_t j = (size_t)(hash_string(f->function) * 31 + hash_string(f->filename)) & (nslots - 1);
    for (; function_slots[j]; j = (j + 1) & (nslots - 1)) {
      const leak__profile_frame *g = &p->frames[function_slots[j] - 1];
      if (strcmp(g->function, f->function) == 0 && strcmp(g->filename, f->filename) == 0) break;
    }
    if (function_slots[j]) {
      function_of_frame[i] = function_of_frame[function_slots[j] - 1];
    } else {
      function_slots[j] = (uint32_t)i + 1;
      Function *fn = &functions[nfunctions];
      perftools__profiles__function__init(fn);
      fn->id = nfunctions + 1;
      fn->name = strings_intern(&strings, f->function);
      fn->system_name = fn->name;
      fn->filename = strings_intern(&strings, f->filename);
      function_ptrs[nfunctions] = fn;
      function_of_frame[i] = fn->id;
      nfunctions++;
    }
    perftools__profiles__line__init(&lines[i]);
    lines[i].function_id = function_of_frame[i];
    lines[i].line = f->lineno;
    line_ptrs[i] = &lines[i];
    perftools__profiles__location__init(&locations[i]);
    locations[i].id = i + 1;
    locations[i].n_line = 1;
    locations[i].line = &line_ptrs[i];
    location_ptrs[i] = &locations[i];
  }
  msg.n_function = nfunctions;
  msg.function = function_ptrs;
  msg.n_location = nframes;
  msg.location = location_ptrs;

  int64_t key_thread_id = with_threads ? strings_intern(&strings, "thread_id") : 0;
  int64_t key_thread_name = with_threads ? strings_intern(&strings, "thread_name") : 0;
  size_t nlabels = 0;
  for (size_t i = 0; i < nsamples; i++) {
    const leak__profile_sample *s = &p->samples[i];
    Sample *out = &samples[i];
    perftools__profiles__sample__init(out);
    for (uint32_t k = 0; k < s->nframe; k++) location_ids[s->first + k] = (uint64_t)p->stack_frames[s->first + k] + 1;
    out->n_location_id = s->nframe;
    out->location_id = location_ids + s->first;
    for (int t = 0; t < ntypes; t++) values[i * (size_t)ntypes + (size_t)t] = s->values[t];
    out->n_value = (size_t)ntypes;
    out->value = values + i * (size_t)ntypes;
    if (with_threads) {
      const leak__profile_thread *th = &p->threads[s->thread];
      out->label = &label_ptrs[nlabels];
      Label *id = &labels[nlabels];
      perftools__profiles__label__init(id);
      id->key = key_thread_id;
      id->num = (int64_t)th->id;
      label_ptrs[nlabels++] = id;
      out->n_label = 1;
      if (th->name) {
        Label *name = &labels[nlabels];
        perftools__profiles__label__init(name);
        name->key = key_thread_name;
        name->str = strings_intern(&strings, th->name);
        label_ptrs[nlabels++] = name;
        out->n_label = 2;
      }
    }
    sample_ptrs[i] = out;
  }
  msg.n_sample = nsamples;
  msg.sample = sample_ptrs;
  msg.n_string_table = strings.count;
  msg.string_table = (char **)strings.strings;

  size_t size = perftools__profiles__profile__get_packed_size(&msg);
  packed = leak__malloc(size + 1);
  if (packed == NULL) goto done;
  perftools__profiles__profile__pack(&msg, packed);
  rc = write_gzip(fd, packed, size);

done:
  leak__free(packed);
  strings_free(&strings);
  leak__free(function_slots);
  leak__free(label_ptrs);
  leak__free(labels);
  leak__free(values);
  leak__free(location_ids);
  leak__free(sample_ptrs);
  leak__free(samples);
  leak__free(line_ptrs);
  leak__free(lines);
  leak__free(location_ptrs);
  leak__free(locations);
  leak__free(function_of_frame);
  leak__free(function_ptrs);
  leak__free(functions);
  leak__free(type_ptrs);
  leak__free(types);
  return rc;
}
