/* The profile and its writers, on profiles built by hand: deduplication, the folded-stack grammar,
 * speedscope's fields, the pprof message decoded back with protobuf-c, the SVG's frames, a heap
 * profile of a constructed snapshot, and bad input. */
#include "core/internal.h"
#include "profile/profile.h"
#include "tracer/snapshot.h"
#include "libleak/profile/profile.pb-c.h"
#include "runner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <zlib.h>

/* main -> work -> hot (3 samples) and main -> work (1), thread 7 "worker"; main -> idle (2) on
 * thread 9. */
static leak_profile *sample_profile(void) {
  static const char *const names[] = {"samples"};
  static const char *const units[] = {"count"};
  leak_profile *p = NULL;
  ASSERT_EQ(leak_profile_new(1, names, units, &p), 0);
  uint32_t main_f, work, hot, idle, again, t7, t9;
  ASSERT_EQ(leak_profile_add_frame(p, "main", "app.py", 10, &main_f), 0);
  ASSERT_EQ(leak_profile_add_frame(p, "work", "app.py", 4, &work), 0);
  ASSERT_EQ(leak_profile_add_frame(p, "hot", "lib/<x&y>.py", 2, &hot), 0);
  ASSERT_EQ(leak_profile_add_frame(p, "idle", "app.py", 20, &idle), 0);
  ASSERT_EQ(leak_profile_add_frame(p, "work", "app.py", 4, &again), 0);
  ASSERT_EQ(again, work);
  ASSERT_EQ(leak_profile_frame_count(p), 4);
  ASSERT_EQ(leak_profile_add_thread(p, 7, "worker", &t7), 0);
  ASSERT_EQ(leak_profile_add_thread(p, 9, NULL, &t9), 0);
  uint32_t s1[] = {hot, work, main_f}, s2[] = {work, main_f}, s3[] = {idle, main_f};
  int64_t one = 1, two = 2;
  ASSERT_EQ(leak_profile_add_sample(p, t7, s1, 3, &two), 0);
  ASSERT_EQ(leak_profile_add_sample(p, t7, s1, 3, &one), 0); /* adds up */
  ASSERT_EQ(leak_profile_add_sample(p, t7, s2, 2, &one), 0);
  ASSERT_EQ(leak_profile_add_sample(p, t9, s3, 2, &two), 0);
  ASSERT_EQ(leak_profile_sample_count(p), 3);
  ASSERT_EQ(leak__profile_total(p, 0), 6);
  return p;
}

/* Writes `p` in `format` to a temporary file and returns its bytes (malloc'd) and length. */
static char *write_to_memory(const leak_profile *p, leak_profile_format format, size_t *len) {
  char path[] = "/tmp/libleak-profile-XXXXXX";
  int fd = mkstemp(path);
  ASSERT(fd >= 0);
  unlink(path);
  ASSERT_EQ(leak_profile_write(p, format, fd), 0);
  off_t size = lseek(fd, 0, SEEK_END);
  char *data = malloc((size_t)size + 1);
  ASSERT_EQ(pread(fd, data, (size_t)size, 0), size);
  data[size] = '\0';
  close(fd);
  *len = (size_t)size;
  return data;
}

TEST(profile_collapsed_lines) {
  leak_profile *p = sample_profile();
  size_t len;
  char *text = write_to_memory(p, LEAK_PROFILE_COLLAPSED, &len);
  ASSERT_EQ(strcmp(text,
                   "main (app.py:10);work (app.py:4);hot (lib/<x&y>.py:2) 3\n"
                   "main (app.py:10);work (app.py:4) 1\n"
                   "main (app.py:10);idle (app.py:20) 2\n"),
            0);
  free(text);
  leak_profile_free(p);
  return 0;
}

TEST(profile_speedscope_fields) {
  leak_profile *p = sample_profile();
  size_t len;
  char *text = write_to_memory(p, LEAK_PROFILE_SPEEDSCOPE, &len);
  ASSERT_STR_CONTAINS(text, "\"$schema\":\"https://www.speedscope.app/file-format-schema.json\"");
  ASSERT_STR_CONTAINS(text, "{\"name\":\"hot\",\"file\":\"lib/<x&y>.py\",\"line\":2}");
  ASSERT_STR_CONTAINS(text, "\"type\":\"sampled\",\"name\":\"worker (7)\",\"unit\":\"none\",\"startValue\":0,"
                            "\"endValue\":4,\"samples\":[[0,1,2],[0,1]],\"weights\":[3,1]");
  ASSERT_STR_CONTAINS(text, "\"name\":\"thread 9\",\"unit\":\"none\",\"startValue\":0,\"endValue\":2,"
                            "\"samples\":[[0,3]],\"weights\":[2]");
  free(text);
  leak_profile_free(p);
  return 0;
}

/* gunzips `data` into a malloc'd buffer. */
static uint8_t *gunzip(const char *data, size_t len, size_t *out_len) {
  size_t cap = 1 << 20;
  uint8_t *out = malloc(cap);
  z_stream z;
  memset(&z, 0, sizeof z);
  ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  ASSERT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  *out_len = cap - z.avail_out;
  inflateEnd(&z);
  return out;
}

TEST(profile_pprof_decodes) {
  leak_profile *p = sample_profile();
  ASSERT_EQ(leak_profile_set_period(p, "cpu", "nanoseconds", 1000000), 0);
  leak_profile_set_duration(p, 5000000000);
  size_t len, raw_len;
  char *data = write_to_memory(p, LEAK_PROFILE_PPROF, &len);
  ASSERT_EQ((unsigned char)data[0], 0x1f); /* gzip magic */
  ASSERT_EQ((unsigned char)data[1], 0x8b);
  uint8_t *raw = gunzip(data, len, &raw_len);
  Perftools__Profiles__Profile *m = perftools__profiles__profile__unpack(NULL, raw_len, raw);
  ASSERT(m != NULL);
  char **st = m->string_table;
  ASSERT_EQ(strcmp(st[0], ""), 0);
  ASSERT_EQ(m->n_sample_type, 1);
  ASSERT_EQ(strcmp(st[m->sample_type[0]->type], "samples"), 0);
  ASSERT_EQ(strcmp(st[m->sample_type[0]->unit], "count"), 0);
  ASSERT_EQ(strcmp(st[m->period_type->type], "cpu"), 0);
  ASSERT_EQ(m->period, 1000000);
  ASSERT_EQ(m->duration_nanos, 5000000000);
  ASSERT_EQ(m->n_location, 4);
  ASSERT_EQ(m->n_function, 4); /* work appears once */
  ASSERT_EQ(m->n_sample, 3);
  /* First sample: hot <- work <- main, value 3, thread 7 named worker. */
  Perftools__Profiles__Sample *s = m->sample[0];
  ASSERT_EQ(s->n_location_id, 3);
  ASSERT_EQ(s->n_value, 1);
  ASSERT_EQ(s->value[0], 3);
  const char *expect[] = {"hot", "work", "main"};
  const int expect_line[] = {2, 4, 10};
  for (size_t k = 0; k < 3; k++) {
    Perftools__Profiles__Location *loc = NULL;
    for (size_t i = 0; i < m->n_location; i++)
      if (m->location[i]->id == s->location_id[k]) loc = m->location[i];
    ASSERT(loc != NULL);
    ASSERT_EQ(loc->n_line, 1);
    ASSERT_EQ(loc->line[0]->line, expect_line[k]);
    Perftools__Profiles__Function *fn = NULL;
    for (size_t i = 0; i < m->n_function; i++)
      if (m->function[i]->id == loc->line[0]->function_id) fn = m->function[i];
    ASSERT(fn != NULL);
    ASSERT_EQ(strcmp(st[fn->name], expect[k]), 0);
  }
  ASSERT_EQ(s->n_label, 2);
  ASSERT_EQ(strcmp(st[s->label[0]->key], "thread_id"), 0);
  ASSERT_EQ(s->label[0]->num, 7);
  ASSERT_EQ(strcmp(st[s->label[1]->str], "worker"), 0);
  ASSERT_EQ(m->sample[2]->n_label, 1); /* thread 9 has no name */
  perftools__profiles__profile__free_unpacked(m, NULL);
  free(raw);
  free(data);
  leak_profile_free(p);
  return 0;
}

TEST(profile_svg_frames) {
  leak_profile *p = sample_profile();
  size_t len;
  char *text = write_to_memory(p, LEAK_PROFILE_SVG, &len);
  ASSERT(strncmp(text, "<?xml", 5) == 0);
  ASSERT_STR_CONTAINS(text, "<title>hot (lib/&lt;x&amp;y&gt;.py:2)\n3 samples, 50.00%");
  ASSERT_STR_CONTAINS(text, "<title>main (app.py:10)\n6 samples, 100.00%");
  ASSERT_STR_CONTAINS(text, "<title>all\n6 samples, 100.00%");
  ASSERT_STR_CONTAINS(text, "function zoom(");
  ASSERT_STR_CONTAINS(text, "function search(");
  ASSERT(strstr(text, "</svg>\n") == text + len - 7);
  free(text);
  leak_profile_free(p);
  return 0;
}

TEST(profile_bad_input) {
  static const char *const names[] = {"a", "b", "c", "d", "e"};
  leak_profile *p = NULL;
  ASSERT_EQ(leak_profile_new(0, names, names, &p), LEAK_EINVAL);
  ASSERT_EQ(leak_profile_new(5, names, names, &p), LEAK_EINVAL);
  ASSERT_EQ(leak_profile_new(1, names, NULL, &p), LEAK_EINVAL);
  p = sample_profile();
  uint32_t bad[] = {99};
  int64_t one = 1;
  ASSERT_EQ(leak_profile_add_sample(p, 0, bad, 1, &one), LEAK_EINVAL);
  ASSERT_EQ(leak_profile_add_sample(p, 5, NULL, 0, &one), LEAK_EINVAL);
  ASSERT_EQ(leak_profile_write(p, (leak_profile_format)42, 1), LEAK_EINVAL);
  ASSERT_EQ(leak_profile_write(p, LEAK_PROFILE_COLLAPSED, -1), LEAK_EBADF);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  ASSERT_EQ(leak_profile_write(p, LEAK_PROFILE_SVG, fds[1]), LEAK_EIO);
  close(fds[1]);
  leak_profile_free(p);
  leak_profile_free(NULL);
  return 0;
}

TEST(profile_out_of_memory) {
  /* Every allocation failing in turn: each call fails cleanly or succeeds, and nothing leaks
   * (valgrind checks the latter). */
  for (long n = 0; n < 60; n++) {
    leak__alloc_fail_after(n);
    static const char *const names[] = {"samples"};
    leak_profile *p = NULL;
    int rc = leak_profile_new(1, names, names, &p);
    if (rc == 0) {
      uint32_t f = 0;
      int64_t v = 1;
      rc = leak_profile_add_frame(p, "f", "x.py", 1, &f);
      if (rc == 0) rc = leak_profile_add_sample(p, 0, &f, 1, &v);
      if (rc == 0) {
        int fd = open("/dev/null", O_WRONLY);
        for (int format = 0; format < 4; format++) {
          int w = leak_profile_write(p, (leak_profile_format)format, fd);
          ASSERT(w == 0 || w == LEAK_ENOMEM);
        }
        close(fd);
      }
      ASSERT(rc == 0 || rc == LEAK_ENOMEM);
    } else {
      ASSERT_EQ(rc, LEAK_ENOMEM);
    }
    leak__alloc_fail_after(-1);
    leak_profile_free(p);
  }
  return 0;
}

TEST(profile_heap_from_snapshot) {
  leak__snapshot *s = leak__snapshot_new(2);
  ASSERT(s != NULL);
  uint32_t file, f1, f2, tb1, tb2;
  ASSERT_EQ(leak__snapshot_add_string(s, "m.py", 4, &file), 0);
  ASSERT_EQ(leak__snapshot_add_frame(s, file, 3, &f1), 0);
  ASSERT_EQ(leak__snapshot_add_frame(s, file, 8, &f2), 0);
  uint32_t frames1[] = {f1, f2}, frames2[] = {f2};
  ASSERT_EQ(leak__snapshot_add_traceback(s, frames1, 2, 2, &tb1), 0);
  ASSERT_EQ(leak__snapshot_add_traceback(s, frames2, 1, 1, &tb2), 0);
  ASSERT_EQ(leak__snapshot_add_trace(s, 0, 100, 1.0, tb1), 0);
  ASSERT_EQ(leak__snapshot_add_trace(s, 0, 50, 1.0, tb1), 0);
  ASSERT_EQ(leak__snapshot_add_trace(s, 0, 1000, 4.0, tb2), 0); /* sampled: stands for 4 blocks */
  leak__snapshot_finish(s);
  leak_profile *p = NULL;
  ASSERT_EQ(leak_snapshot_profile(s, &p), 0);
  ASSERT_EQ(leak_profile_type_count(p), 2);
  const char *name, *unit;
  ASSERT_EQ(leak_profile_type(p, 0, &name, &unit), 0);
  ASSERT_EQ(strcmp(name, "inuse_space"), 0);
  ASSERT_EQ(strcmp(unit, "bytes"), 0);
  ASSERT_EQ(leak_profile_sample_count(p), 2);
  ASSERT_EQ(leak__profile_total(p, 0), 150 + 4000);
  ASSERT_EQ(leak__profile_total(p, 1), 2 + 4);
  size_t len;
  char *text = write_to_memory(p, LEAK_PROFILE_COLLAPSED, &len);
  ASSERT_EQ(strcmp(text, "m.py:8 (m.py:8);m.py:3 (m.py:3) 150\nm.py:8 (m.py:8) 4000\n"), 0);
  free(text);
  text = write_to_memory(p, LEAK_PROFILE_SVG, &len);
  ASSERT_STR_CONTAINS(text, "Memory flame graph: 4150 bytes (inuse_space)");
  free(text);
  text = write_to_memory(p, LEAK_PROFILE_SPEEDSCOPE, &len);
  ASSERT_STR_CONTAINS(text, "\"unit\":\"bytes\"");
  free(text);
  leak_profile_free(p);
  leak_snapshot_free(s);
  return 0;
}

/* ---- The sample buffer ------------------------------------------------------------------- */
#include "profile/samplebuf.h"

static void count_slot(const leak__sample_slot *slot, void *arg) {
  int *seen = arg;
  seen[0]++;
  if (slot->nframe < 0) seen[1]++;
}

TEST(samplebuf_claim_publish_drain_forget) {
  leak__samplebuf *buf = leak__samplebuf_new(20, 4);
  ASSERT(buf != NULL);
  ASSERT_EQ(leak__samplebuf_nframe(buf), 4);
  static int code_a, code_b; /* stand-ins: the buffer only compares addresses */
  int claimed = 0;
  leak__sample_slot *slot;
  while ((slot = leak__samplebuf_claim(buf)) != NULL) {
    slot->nframe = 2;
    slot->frames[0].code = (PyCodeObject *)&code_a;
    slot->frames[1].code = (PyCodeObject *)(claimed % 2 ? &code_b : &code_a);
    slot->weight = 1;
    leak__samplebuf_publish(buf, slot);
    claimed++;
  }
  ASSERT_EQ(claimed, 20);
  ASSERT_EQ(leak__samplebuf_dropped(buf), 1); /* the claim that found it full */
  leak__samplebuf_forget_code(buf, &code_b);  /* every other sample names code_b */
  int seen[2] = {0, 0};
  ASSERT_EQ(leak__samplebuf_drain(buf, count_slot, seen), 20);
  ASSERT_EQ(seen[0], 20);
  ASSERT_EQ(seen[1], 10);
  ASSERT_EQ(leak__samplebuf_drain(buf, count_slot, seen), 0); /* drained slots are free again */
  ASSERT(leak__samplebuf_claim(buf) != NULL);
  leak__samplebuf_free(buf);
  leak__samplebuf_free(NULL);
  ASSERT(leak__samplebuf_new(0, 4) == NULL);
  return 0;
}
