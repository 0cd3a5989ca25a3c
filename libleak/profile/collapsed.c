/* The folded-stacks writer: one line per stack, frames root first joined by ';', then the count
 * ("main (app.py:10);work (app.py:4) 42"), the format flamegraph.pl, speedscope and most flame
 * graph tools read.  A frame is "function (file:line)", as py-spy writes it. */
#include "core/internal.h"
#include "profile/profile.h"
#include "profile/textbuf.h"

/* A frame label with the characters that would break the line grammar (';' separates frames, the
 * last space separates the count, newlines end the record) replaced. */
static void put_label_part(leak__textbuf *out, const char *text) {
  for (const char *p = text; *p; p++) {
    char c = *p;
    if (c == ';' || c == '\n' || c == '\r') c = '_';
    leak__textbuf_append(out, &c, 1);
  }
}

int leak__profile_write_collapsed(const leak_profile *p, int fd) {
  leak__textbuf out;
  leak__textbuf_init(&out, fd);
  for (size_t i = 0; i < p->nsamples; i++) {
    const leak__profile_sample *s = &p->samples[i];
    if (s->values[0] <= 0) continue;
    if (s->nframe == 0) leak__textbuf_puts(&out, "[no Python frame]");
    for (uint32_t k = s->nframe; k-- > 0;) {
      const leak__profile_frame *f = &p->frames[p->stack_frames[s->first + k]];
      put_label_part(&out, f->function);
      leak__textbuf_puts(&out, " (");
      put_label_part(&out, f->filename);
      leak__textbuf_printf(&out, ":%d)%s", f->lineno, k ? ";" : "");
    }
    leak__textbuf_printf(&out, " %lld\n", (long long)s->values[0]);
  }
  return leak__textbuf_flush(&out);
}
