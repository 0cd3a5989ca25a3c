/* The speedscope writer: speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json),
 * the shared frame table plus one "sampled" profile per thread whose samples are root-first arrays
 * of frame indices with their weights.  Heap profiles weigh by their first value (bytes). */
#include "core/internal.h"
#include "profile/profile.h"
#include "profile/textbuf.h"

/* speedscope's unit for a pprof-style unit name. */
static const char *speedscope_unit(const char *unit) {
  if (strcmp(unit, "bytes") == 0) return "bytes";
  if (strcmp(unit, "nanoseconds") == 0) return "nanoseconds";
  return "none";
}

/* One profile object for thread index `thread` (or every sample when `all` is set). */
static void write_thread_profile(leak__textbuf *out, const leak_profile *p, uint32_t thread, int all) {
  char name[96];
  if (all)
    snprintf(name, sizeof name, "all threads");
  else if (p->threads[thread].name)
    snprintf(name, sizeof name, "%.60s (%llu)", p->threads[thread].name, (unsigned long long)p->threads[thread].id);
  else
    snprintf(name, sizeof name, "thread %llu", (unsigned long long)p->threads[thread].id);
  int64_t total = 0;
  for (size_t i = 0; i < p->nsamples; i++)
    if ((all || p->samples[i].thread == thread) && p->samples[i].values[0] > 0) total += p->samples[i].values[0];
  leak__textbuf_puts(out, "{\"type\":\"sampled\",\"name\":\"");
  leak__textbuf_json(out, name);
  leak__textbuf_printf(out, "\",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%lld,\"samples\":[",
                       speedscope_unit(p->type_units[0]), (long long)total);
  int first = 1;
  for (size_t i = 0; i < p->nsamples; i++) {
    const leak__profile_sample *s = &p->samples[i];
    if ((!all && s->thread != thread) || s->values[0] <= 0) continue;
    leak__textbuf_puts(out, first ? "[" : ",[");
    first = 0;
    for (uint32_t k = s->nframe; k-- > 0;)
      leak__textbuf_printf(out, "%u%s", p->stack_frames[s->first + k], k ? "," : "");
    leak__textbuf_puts(out, "]");
  }
  leak__textbuf_puts(out, "],\"weights\":[");
  first = 1;
  for (size_t i = 0; i < p->nsamples; i++) {
    const leak__profile_sample *s = &p->samples[i];
    if ((!all && s->thread != thread) || s->values[0] <= 0) continue;
    leak__textbuf_printf(out, "%s%lld", first ? "" : ",", (long long)s->values[0]);
    first = 0;
  }
  leak__textbuf_puts(out, "]}");
}

int leak__profile_write_speedscope(const leak_profile *p, int fd) {
  leak__textbuf out;
  leak__textbuf_init(&out, fd);
  leak__textbuf_puts(&out, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"shared\":{\"frames\":[");
  for (size_t i = 0; i < p->nframes; i++) {
    const leak__profile_frame *f = &p->frames[i];
    leak__textbuf_puts(&out, i ? ",{\"name\":\"" : "{\"name\":\"");
    leak__textbuf_json(&out, f->function);
    leak__textbuf_puts(&out, "\",\"file\":\"");
    leak__textbuf_json(&out, f->filename);
    leak__textbuf_printf(&out, "\",\"line\":%d}", f->lineno);
  }
  leak__textbuf_puts(&out, "]},\"profiles\":[");
  if (p->nthreads == 0) {
    write_thread_profile(&out, p, 0, 1);
  } else {
    for (uint32_t t = 0; t < p->nthreads; t++) {
      if (t) leak__textbuf_puts(&out, ",");
      write_thread_profile(&out, p, t, 0);
    }
  }
  leak__textbuf_printf(&out, "],\"name\":\"libleak %s profile\",\"activeProfileIndex\":0,\"exporter\":\"libleak %s\"}\n",
                       p->type_names[0], leak_version_string());
  return leak__textbuf_flush(&out);
}
