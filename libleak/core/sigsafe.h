/* Async-signal-safe output: what a signal handler or the watchdog thread may use to print.
 *
 * Text is gathered in a small buffer that lives on the caller's stack and goes out with write(2),
 * retried on EINTR and on partial writes.  Numbers are formatted by hand (printf is not
 * async-signal-safe).  Nothing here allocates, takes a lock, or calls the Python API: Python strings
 * are read through the fields of the unicode object, as faulthandler does. */
#ifndef LIBLEAK_SIGSAFE_H
#define LIBLEAK_SIGSAFE_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

/* faulthandler prints at most this many characters of a string, then "...". */
#define LEAK_SIGSAFE_MAX_STRING 500

/* An output stream on a file descriptor.  Declare it on the stack, leak__sigsafe_init it, append,
 * and leak__sigsafe_flush at the end of each line (or whenever the text must be out). */
typedef struct leak__sigsafe_out {
  int fd;
  int error;   /* the first write error as a negative LEAK_E* code; later output is dropped */
  size_t used; /* bytes waiting in buf */
  char buf[256];
} leak__sigsafe_out;

/* Writes all `len` bytes to fd, retrying on EINTR and after partial writes.  Returns 0, or a
 * negative LEAK_E* code (LEAK_EBADF for a bad descriptor, LEAK_EIO for anything else). */
int leak__sigsafe_write(int fd, const void *data, size_t len);

/* Starts an empty stream on `fd`. */
void leak__sigsafe_init(leak__sigsafe_out *out, int fd);

/* Sends what is buffered; returns out->error (0 when everything written so far went out). */
int leak__sigsafe_flush(leak__sigsafe_out *out);

/* Appends `len` bytes. */
void leak__sigsafe_putn(leak__sigsafe_out *out, const char *text, size_t len);

/* Appends a NUL-terminated string. */
void leak__sigsafe_puts(leak__sigsafe_out *out, const char *text);

/* Appends `value` in decimal. */
void leak__sigsafe_decimal(leak__sigsafe_out *out, unsigned long long value);

/* Appends `value` in lower-case hexadecimal, zero-padded to at least `width` digits (at most 16). */
void leak__sigsafe_hex(leak__sigsafe_out *out, unsigned long long value, int width);

/* Appends a str object's text as faulthandler prints it: printable ASCII as is, every other
 * character as \xNN, \uNNNN or \UNNNNNNNN, and cut at LEAK_SIGSAFE_MAX_STRING characters followed
 * by "...".  Prints nothing for objects that are not str or whose data is not there. */
void leak__sigsafe_unicode(leak__sigsafe_out *out, PyObject *text);

/* The characters of a str object (`text` must be one), read through its struct without calling the
 * C API: the data, its kind (1, 2 or 4 bytes a character) in *kind and its length in *length; NULL
 * when the data is missing or the kind unknown.  Async-signal-safe. */
const void *leak__sigsafe_unicode_data(PyObject *text, unsigned *kind, Py_ssize_t *length);

#endif
