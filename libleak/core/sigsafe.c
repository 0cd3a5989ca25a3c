/* Async-signal-safe output.  Read core/sigsafe.h first.
 *
 * Rules for every function here: callable from a signal handler and from a thread that does not
 * hold the GIL.  No allocation, no locks, no stdio, no Python API calls (str objects are read
 * through their struct fields); errno may change, so signal handlers save it around their use. */
#include "core/internal.h"
#include "core/sigsafe.h"

#include <errno.h>
#include <unistd.h>

/* Lower case, as faulthandler prints thread ids and escapes (read-only). */
static const char hex_digits[] = "0123456789abcdef";

/* A signal may interrupt write(2) before or after part of the data went out; both are retried so a
 * dump is never cut short by the very signals it is reporting. */
int leak__sigsafe_write(int fd, const void *data, size_t len) {
  const char *next = data;
  while (len > 0) {
    ssize_t written = write(fd, next, len);
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno == EBADF ? LEAK_EBADF : LEAK_EIO;
    }
    if (written == 0) return LEAK_EIO;
    next += written;
    len -= (size_t)written;
  }
  return 0;
}

/* Streams start empty and error-free. */
void leak__sigsafe_init(leak__sigsafe_out *out, int fd) {
  out->fd = fd;
  out->error = 0;
  out->used = 0;
}

/* One write(2) per buffer keeps lines whole when two dumps write to the same descriptor. */
int leak__sigsafe_flush(leak__sigsafe_out *out) {
  if (out->used > 0 && out->error == 0) out->error = leak__sigsafe_write(out->fd, out->buf, out->used);
  out->used = 0;
  return out->error;
}

/* Copies into the buffer, flushing whenever it fills; once a write failed the rest is dropped. */
void leak__sigsafe_putn(leak__sigsafe_out *out, const char *text, size_t len) {
  while (len > 0) {
    if (out->error != 0) return;
    if (out->used == sizeof out->buf) leak__sigsafe_flush(out);
    size_t room = sizeof out->buf - out->used;
    size_t chunk = len < room ? len : room;
    for (size_t i = 0; i < chunk; i++) out->buf[out->used + i] = text[i];
    out->used += chunk;
    text += chunk;
    len -= chunk;
  }
}

/* strlen by hand: the C library's is safe in practice, but this file promises to depend on nothing. */
void leak__sigsafe_puts(leak__sigsafe_out *out, const char *text) {
  size_t len = 0;
  while (text[len] != '\0') len++;
  leak__sigsafe_putn(out, text, len);
}

/* Digits are produced backwards into a local buffer large enough for 2^64 - 1. */
void leak__sigsafe_decimal(leak__sigsafe_out *out, unsigned long long value) {
  char digits[24];
  size_t start = sizeof digits;
  do {
    digits[--start] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  leak__sigsafe_putn(out, digits + start, sizeof digits - start);
}

/* Zero padding to `width` reproduces faulthandler's fixed-width thread ids. */
void leak__sigsafe_hex(leak__sigsafe_out *out, unsigned long long value, int width) {
  char digits[16];
  size_t start = sizeof digits;
  if (width > (int)sizeof digits) width = (int)sizeof digits;
  do {
    digits[--start] = hex_digits[value & 15];
    value >>= 4;
  } while (value != 0 || (int)(sizeof digits - start) < width);
  leak__sigsafe_putn(out, digits + start, sizeof digits - start);
}

/* One character, as faulthandler escapes it. */
static void put_escaped(leak__sigsafe_out *out, uint32_t ch) {
  if (ch >= ' ' && ch <= 126) {
    char c = (char)ch;
    leak__sigsafe_putn(out, &c, 1);
  } else if (ch <= 0xff) {
    leak__sigsafe_putn(out, "\\x", 2);
    leak__sigsafe_hex(out, ch, 2);
  } else if (ch <= 0xffff) {
    leak__sigsafe_putn(out, "\\u", 2);
    leak__sigsafe_hex(out, ch, 4);
  } else {
    leak__sigsafe_putn(out, "\\U", 2);
    leak__sigsafe_hex(out, ch, 8);
  }
}

/* The str is read through its struct, because every accessor of the C API may assert or (for old
 * strings that are not "ready") compute; the fields used here mean the same on 3.8 - 3.13. */
const void *leak__sigsafe_unicode_data(PyObject *text, unsigned *kind, Py_ssize_t *length) {
  PyASCIIObject *ascii = (PyASCIIObject *)text;
  const void *data;
  if (ascii->state.compact)
    data = ascii->state.ascii ? (const void *)(ascii + 1) : (const void *)((PyCompactUnicodeObject *)text + 1);
  else
    data = ((PyUnicodeObject *)text)->data.any;
  *kind = ascii->state.kind;
  *length = ascii->length;
  return (*kind == 1 || *kind == 2 || *kind == 4) ? data : NULL;
}

/* A string whose data is missing or whose kind is unknown prints nothing rather than risking a bad
 * read. */
void leak__sigsafe_unicode(leak__sigsafe_out *out, PyObject *text) {
  if (text == NULL || !PyUnicode_Check(text)) return;
  unsigned kind;
  Py_ssize_t length;
  const void *data = leak__sigsafe_unicode_data(text, &kind, &length);
  if (data == NULL) return;
  int truncated = length > LEAK_SIGSAFE_MAX_STRING;
  if (truncated) length = LEAK_SIGSAFE_MAX_STRING;
  for (Py_ssize_t i = 0; i < length; i++) {
    uint32_t ch = kind == 1   ? ((const uint8_t *)data)[i]
                  : kind == 2 ? ((const uint16_t *)data)[i]
                              : ((const uint32_t *)data)[i];
    put_escaped(out, ch);
  }
  if (truncated) leak__sigsafe_putn(out, "...", 3);
}
