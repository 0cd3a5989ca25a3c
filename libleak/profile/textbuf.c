/* The profile writers' text buffer (see textbuf.h). */
#include "core/internal.h"
#include "profile/textbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Past this many buffered bytes an append writes the buffer out, so writing a big profile does not
 * hold the whole file in memory. */
#define TEXTBUF_SPILL (1u << 20)

int leak__write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int code = -errno;
      return code == LEAK_EBADF || code == LEAK_EACCES || code == LEAK_EAGAIN ? code : LEAK_EIO;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

void leak__textbuf_init(leak__textbuf *buf, int fd) {
  memset(buf, 0, sizeof *buf);
  buf->fd = fd;
}

/* Writes the buffered bytes out and empties the buffer, keeping its storage. */
static void spill(leak__textbuf *buf) {
  if (buf->len == 0) return;
  if (buf->error == 0) buf->error = leak__write_all(buf->fd, buf->data, buf->len);
  buf->len = 0;
}

/* Makes room for `extra` more bytes plus a NUL; 0, or -1 after marking the buffer failed. */
static int reserve(leak__textbuf *buf, size_t extra) {
  if (buf->failed) return -1;
  if (buf->len + extra + 1 <= buf->cap) return 0;
  if (buf->len >= TEXTBUF_SPILL) spill(buf);
  if (buf->len + extra + 1 <= buf->cap) return 0;
  size_t cap = buf->cap ? buf->cap : 4096;
  while (cap < buf->len + extra + 1) cap *= 2;
  char *data = leak__realloc(buf->data, cap);
  if (data == NULL) {
    buf->failed = 1;
    return -1;
  }
  buf->data = data;
  buf->cap = cap;
  return 0;
}

void leak__textbuf_append(leak__textbuf *buf, const char *text, size_t len) {
  if (reserve(buf, len) < 0) return;
  memcpy(buf->data + buf->len, text, len);
  buf->len += len;
}

void leak__textbuf_puts(leak__textbuf *buf, const char *text) { leak__textbuf_append(buf, text, strlen(text)); }

void leak__textbuf_printf(leak__textbuf *buf, const char *format, ...) {
  char small[256];
  va_list ap;
  va_start(ap, format);
  int n = vsnprintf(small, sizeof small, format, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    leak__textbuf_append(buf, small, (size_t)n);
    return;
  }
  if (reserve(buf, (size_t)n) < 0) return;
  va_start(ap, format);
  vsnprintf(buf->data + buf->len, (size_t)n + 1, format, ap);
  va_end(ap);
  buf->len += (size_t)n;
}

void leak__textbuf_json(leak__textbuf *buf, const char *text) {
  const unsigned char *s = (const unsigned char *)text;
  size_t start = 0, i = 0;
  for (; s[i]; i++) {
    unsigned char c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    leak__textbuf_append(buf, text + start, i - start);
    if (c == '"')
      leak__textbuf_puts(buf, "\\\"");
    else if (c == '\\')
      leak__textbuf_puts(buf, "\\\\");
    else if (c == '\n')
      leak__textbuf_puts(buf, "\\n");
    else
      leak__textbuf_printf(buf, "\\u%04x", c);
    start = i + 1;
  }
  leak__textbuf_append(buf, text + start, i - start);
}

void leak__textbuf_xml(leak__textbuf *buf, const char *text) {
  const unsigned char *s = (const unsigned char *)text;
  size_t start = 0, i = 0;
  for (; s[i]; i++) {
    unsigned char c = s[i];
    const char *entity = NULL;
    if (c == '<')
      entity = "&lt;";
    else if (c == '>')
      entity = "&gt;";
    else if (c == '&')
      entity = "&amp;";
    else if (c == '"')
      entity = "&quot;";
    else if (c == '\'')
      entity = "&#39;";
    else if (c < 0x20 && c != '\t')
      entity = "?"; /* not allowed in XML 1.0 at all */
    if (entity == NULL) continue;
    leak__textbuf_append(buf, text + start, i - start);
    leak__textbuf_puts(buf, entity);
    start = i + 1;
  }
  leak__textbuf_append(buf, text + start, i - start);
}

int leak__textbuf_flush(leak__textbuf *buf) {
  spill(buf);
  int rc = buf->failed ? LEAK_ENOMEM : buf->error;
  leak__free(buf->data);
  buf->data = NULL;
  buf->len = buf->cap = 0;
  return rc;
}
