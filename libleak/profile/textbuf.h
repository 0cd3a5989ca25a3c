/* A growable text buffer for the profile writers: append plain, formatted, JSON- or XML-escaped
 * text, then write it all to a file descriptor.
 *
 * Out of memory is sticky: once an append fails, later appends do nothing and textbuf_flush
 * reports LEAK_ENOMEM, so writers check once at the end instead of after every append. */
#ifndef LIBLEAK_PROFILE_TEXTBUF_H
#define LIBLEAK_PROFILE_TEXTBUF_H

#include <stddef.h>

typedef struct leak__textbuf {
  char *data;
  size_t len, cap;
  int failed; /* an append ran out of memory */
  int fd;     /* where leak__textbuf_flush writes; the buffer writes out when it grows past 1 MiB */
  int error;  /* first write error, a negative LEAK_E* code */
} leak__textbuf;

/* An empty buffer writing to `fd`; nothing is allocated until the first append. */
void leak__textbuf_init(leak__textbuf *buf, int fd);
void leak__textbuf_append(leak__textbuf *buf, const char *text, size_t len);
void leak__textbuf_puts(leak__textbuf *buf, const char *text);
void leak__textbuf_printf(leak__textbuf *buf, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* `text` as a JSON string body (no quotes): quotes, backslashes and control characters escaped. */
void leak__textbuf_json(leak__textbuf *buf, const char *text);
/* `text` escaped for XML character data and attribute values. */
void leak__textbuf_xml(leak__textbuf *buf, const char *text);
/* Writes what is left to the fd and frees the buffer.  Returns 0, LEAK_ENOMEM when an append had
 * failed (what was buffered is still written), or the errno-twin code of a failed write. */
int leak__textbuf_flush(leak__textbuf *buf);

/* Writes all `len` bytes to `fd`, retrying short writes and EINTR.  0 or a negative LEAK_E* code. */
int leak__write_all(int fd, const void *data, size_t len);

#endif
