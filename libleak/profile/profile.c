/* The profile: building it (frames and samples deduplicated as they are added), reading it back,
 * and picking the writer for a format. */
#include "core/internal.h"
#include "profile/profile.h"

#include <string.h>

/* An open-addressing set of frame or sample indices (stored +1; 0 is an empty slot), looked up by a
 * hash of what the index names.  Load factor at most 1/2. */
struct leak__profile_index {
  uint32_t *slots;
  size_t cap; /* a power of two */
  size_t count;
};

static uint64_t hash_bytes(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
#define HASH_SEED 0xcbf29ce484222325ull

static uint64_t frame_hash(const char *function, const char *filename, int lineno) {
  uint64_t h = hash_bytes(HASH_SEED, function, strlen(function) + 1);
  h = hash_bytes(h, filename, strlen(filename) + 1);
  return hash_bytes(h, &lineno, sizeof lineno);
}

static uint64_t sample_hash(uint32_t thread, const uint32_t *frames, uint32_t nframe) {
  uint64_t h = hash_bytes(HASH_SEED, &thread, sizeof thread);
  return hash_bytes(h, frames, nframe * sizeof *frames);
}

static char *copy_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = leak__malloc(n);
  if (copy) memcpy(copy, s, n);
  return copy;
}

/* Grows an array of `item`-byte entries so it holds `need`; 0 or LEAK_ENOMEM. */
static int grow(void **array, size_t *cap, size_t need, size_t item) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap * 2 : 64;
  while (n < need) n *= 2;
  void *p = leak__realloc(*array, n * item);
  if (p == NULL) return LEAK_ENOMEM;
  *array = p;
  *cap = n;
  return 0;
}

static int index_new(struct leak__profile_index **out) {
  struct leak__profile_index *ix = leak__calloc(1, sizeof *ix);
  if (ix == NULL) return LEAK_ENOMEM;
  ix->cap = 256;
  ix->slots = leak__calloc(ix->cap, sizeof *ix->slots);
  if (ix->slots == NULL) {
    leak__free(ix);
    return LEAK_ENOMEM;
  }
  *out = ix;
  return 0;
}

static void index_free(struct leak__profile_index *ix) {
  if (ix == NULL) return;
  leak__free(ix->slots);
  leak__free(ix);
}

/* Doubles the table; `rehash(i)` gives the hash of the entry with index i. */
static int index_grow(struct leak__profile_index *ix, const leak_profile *p, uint64_t (*rehash)(const leak_profile *, uint32_t)) {
  size_t cap = ix->cap * 2;
  uint32_t *slots = leak__calloc(cap, sizeof *slots);
  if (slots == NULL) return LEAK_ENOMEM;
  for (size_t i = 0; i < ix->cap; i++) {
    if (ix->slots[i] == 0) continue;
    size_t j = (size_t)rehash(p, ix->slots[i] - 1) & (cap - 1);
    while (slots[j]) j = (j + 1) & (cap - 1);
    slots[j] = ix->slots[i];
  }
  leak__free(ix->slots);
  ix->slots = slots;
  ix->cap = cap;
  return 0;
}

static uint64_t frame_rehash(const leak_profile *p, uint32_t i) {
  return frame_hash(p->frames[i].function, p->frames[i].filename, p->frames[i].lineno);
}
static uint64_t sample_rehash(const leak_profile *p, uint32_t i) {
  const leak__profile_sample *s = &p->samples[i];
  return sample_hash(s->thread, p->stack_frames + s->first, s->nframe);
}

int leak_profile_new(int ntypes, const char *const *type_names, const char *const *type_units, leak_profile **out) {
  if (out == NULL || ntypes < 1 || ntypes > LEAK_PROFILE_MAX_TYPES || type_names == NULL || type_units == NULL)
    return LEAK_EINVAL;
  for (int i = 0; i < ntypes; i++)
    if (type_names[i] == NULL || type_units[i] == NULL) return LEAK_EINVAL;
  leak_profile *p = leak__calloc(1, sizeof *p);
  if (p == NULL) return LEAK_ENOMEM;
  p->ntypes = ntypes;
  int rc = index_new(&p->frame_index);
  if (rc == 0) rc = index_new(&p->sample_index);
  for (int i = 0; rc == 0 && i < ntypes; i++) {
    p->type_names[i] = copy_string(type_names[i]);
    p->type_units[i] = copy_string(type_units[i]);
    if (p->type_names[i] == NULL || p->type_units[i] == NULL) rc = LEAK_ENOMEM;
  }
  if (rc < 0) {
    leak_profile_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

void leak_profile_free(leak_profile *p) {
  if (p == NULL) return;
  for (int i = 0; i < LEAK_PROFILE_MAX_TYPES; i++) {
    leak__free(p->type_names[i]);
    leak__free(p->type_units[i]);
  }
  leak__free(p->period_type);
  leak__free(p->period_unit);
  for (size_t i = 0; i < p->nframes; i++) {
    leak__free(p->frames[i].function);
    leak__free(p->frames[i].filename);
  }
  leak__free(p->frames);
  for (size_t i = 0; i < p->nthreads; i++) leak__free(p->threads[i].name);
  leak__free(p->threads);
  leak__free(p->samples);
  leak__free(p->stack_frames);
  index_free(p->frame_index);
  index_free(p->sample_index);
  leak__free(p);
}

int leak_profile_set_period(leak_profile *p, const char *type, const char *unit, int64_t period) {
  if (p == NULL || type == NULL || unit == NULL) return LEAK_EINVAL;
  char *t = copy_string(type), *u = copy_string(unit);
  if (t == NULL || u == NULL) {
    leak__free(t);
    leak__free(u);
    return LEAK_ENOMEM;
  }
  leak__free(p->period_type);
  leak__free(p->period_unit);
  p->period_type = t;
  p->period_unit = u;
  p->period = period;
  return 0;
}

void leak_profile_set_duration(leak_profile *p, int64_t duration_ns) {
  if (p) p->duration_ns = duration_ns;
}

int leak_profile_add_frame(leak_profile *p, const char *function, const char *filename, int lineno, uint32_t *index) {
  if (p == NULL || function == NULL || filename == NULL || index == NULL) return LEAK_EINVAL;
  struct leak__profile_index *ix = p->frame_index;
  uint64_t h = frame_hash(function, filename, lineno);
  size_t j = (size_t)h & (ix->cap - 1);
  for (; ix->slots[j]; j = (j + 1) & (ix->cap - 1)) {
    const leak__profile_frame *f = &p->frames[ix->slots[j] - 1];
    if (f->lineno == lineno && strcmp(f->function, function) == 0 && strcmp(f->filename, filename) == 0) {
      *index = ix->slots[j] - 1;
      return 0;
    }
  }
  if (p->nframes >= UINT32_MAX - 1) return LEAK_ENOMEM;
  if (grow((void **)&p->frames, &p->frames_cap, p->nframes + 1, sizeof *p->frames) < 0) return LEAK_ENOMEM;
  char *fn = copy_string(function), *file = copy_string(filename);
  if (fn == NULL || file == NULL) {
    leak__free(fn);
    leak__free(file);
    return LEAK_ENOMEM;
  }
  uint32_t i = (uint32_t)p->nframes++;
  p->frames[i] = (leak__profile_frame){fn, file, lineno};
  ix->slots[j] = i + 1;
  ix->count++;
  if (ix->count * 2 > ix->cap) (void)index_grow(ix, p, frame_rehash); /* a failed grow only slows lookups */
  *index = i;
  return 0;
}

int leak_profile_add_thread(leak_profile *p, uint64_t thread_id, const char *name, uint32_t *index) {
  if (p == NULL || index == NULL) return LEAK_EINVAL;
  char *copy = NULL;
  if (name && (copy = copy_string(name)) == NULL) return LEAK_ENOMEM;
  for (size_t i = 0; i < p->nthreads; i++) {
    if (p->threads[i].id != thread_id) continue;
    if (copy) {
      leak__free(p->threads[i].name);
      p->threads[i].name = copy;
    }
    *index = (uint32_t)i;
    return 0;
  }
  if (grow((void **)&p->threads, &p->threads_cap, p->nthreads + 1, sizeof *p->threads) < 0) {
    leak__free(copy);
    return LEAK_ENOMEM;
  }
  p->threads[p->nthreads] = (leak__profile_thread){thread_id, copy};
  *index = (uint32_t)p->nthreads++;
  return 0;
}

int leak_profile_add_sample(leak_profile *p, uint32_t thread, const uint32_t *frames, uint32_t nframe,
                            const int64_t *values) {
  if (p == NULL || values == NULL || (nframe > 0 && frames == NULL)) return LEAK_EINVAL;
  if (p->nthreads == 0)
    thread = 0;
  else if (thread >= p->nthreads)
    return LEAK_EINVAL;
  for (uint32_t i = 0; i < nframe; i++)
    if (frames[i] >= p->nframes) return LEAK_EINVAL;
  struct leak__profile_index *ix = p->sample_index;
  uint64_t h = sample_hash(thread, frames, nframe);
  size_t j = (size_t)h & (ix->cap - 1);
  for (; ix->slots[j]; j = (j + 1) & (ix->cap - 1)) {
    leak__profile_sample *s = &p->samples[ix->slots[j] - 1];
    if (s->thread == thread && s->nframe == nframe &&
        memcmp(p->stack_frames + s->first, frames, nframe * sizeof *frames) == 0) {
      for (int t = 0; t < p->ntypes; t++) s->values[t] += values[t];
      return 0;
    }
  }
  if (p->nstack_frames + nframe >= UINT32_MAX || p->nsamples >= UINT32_MAX - 1) return LEAK_ENOMEM;
  if (grow((void **)&p->samples, &p->samples_cap, p->nsamples + 1, sizeof *p->samples) < 0 ||
      grow((void **)&p->stack_frames, &p->stack_frames_cap, p->nstack_frames + nframe + 1, sizeof *p->stack_frames) < 0)
    return LEAK_ENOMEM;
  leak__profile_sample *s = &p->samples[p->nsamples];
  memset(s, 0, sizeof *s);
  s->thread = thread;
  s->first = (uint32_t)p->nstack_frames;
  s->nframe = nframe;
  for (int t = 0; t < p->ntypes; t++) s->values[t] = values[t];
  if (nframe) memcpy(p->stack_frames + p->nstack_frames, frames, nframe * sizeof *frames);
  p->nstack_frames += nframe;
  ix->slots[j] = (uint32_t)++p->nsamples;
  ix->count++;
  if (ix->count * 2 > ix->cap) (void)index_grow(ix, p, sample_rehash);
  return 0;
}

int64_t leak__profile_total(const leak_profile *p, int type) {
  int64_t total = 0;
  for (size_t i = 0; i < p->nsamples; i++) total += p->samples[i].values[type];
  return total;
}

int leak_profile_write(const leak_profile *p, leak_profile_format format, int fd) {
  if (p == NULL || fd < 0) return p == NULL ? LEAK_EINVAL : LEAK_EBADF;
  switch (format) {
    case LEAK_PROFILE_COLLAPSED:
      return leak__profile_write_collapsed(p, fd);
    case LEAK_PROFILE_SPEEDSCOPE:
      return leak__profile_write_speedscope(p, fd);
    case LEAK_PROFILE_PPROF:
      return leak__profile_write_pprof(p, fd);
    case LEAK_PROFILE_SVG:
      return leak__profile_write_svg(p, fd);
  }
  return LEAK_EINVAL;
}

size_t leak_profile_frame_count(const leak_profile *p) { return p ? p->nframes : 0; }
size_t leak_profile_thread_count(const leak_profile *p) { return p ? p->nthreads : 0; }
size_t leak_profile_sample_count(const leak_profile *p) { return p ? p->nsamples : 0; }
int leak_profile_type_count(const leak_profile *p) { return p ? p->ntypes : 0; }

int leak_profile_type(const leak_profile *p, int i, const char **name, const char **unit) {
  if (p == NULL || i < 0 || i >= p->ntypes) return LEAK_EINVAL;
  if (name) *name = p->type_names[i];
  if (unit) *unit = p->type_units[i];
  return 0;
}

int leak_profile_frame(const leak_profile *p, size_t i, const char **function, const char **filename, int *lineno) {
  if (p == NULL || i >= p->nframes) return LEAK_EINVAL;
  if (function) *function = p->frames[i].function;
  if (filename) *filename = p->frames[i].filename;
  if (lineno) *lineno = p->frames[i].lineno;
  return 0;
}

int leak_profile_thread(const leak_profile *p, size_t i, uint64_t *thread_id, const char **name) {
  if (p == NULL || i >= p->nthreads) return LEAK_EINVAL;
  if (thread_id) *thread_id = p->threads[i].id;
  if (name) *name = p->threads[i].name;
  return 0;
}

int leak_profile_sample(const leak_profile *p, size_t i, uint32_t *thread, const uint32_t **frames, uint32_t *nframe,
                        const int64_t **values) {
  if (p == NULL || i >= p->nsamples) return LEAK_EINVAL;
  const leak__profile_sample *s = &p->samples[i];
  if (thread) *thread = s->thread;
  if (frames) *frames = p->stack_frames + s->first;
  if (nframe) *nframe = s->nframe;
  if (values) *values = s->values;
  return 0;
}
