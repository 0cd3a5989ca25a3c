/* libFuzzer target for the snapshot file parser (tests/fuzz-snapfile.sh runs it for a bounded time
 * from a seed corpus of real dumps).
 *
 * Every input must decode to a snapshot or fail with LEAK_EFORMAT; a decoded snapshot must group,
 * diff and filter without trouble, and must encode and decode again to the same traces and
 * attributes.  Anything
 * else (a crash, an ASan report, another error code) is a bug the fuzzer reports. */
#include "core/internal.h"
#include "tracer/snapfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Stops the run with a message libFuzzer shows next to the input that caused it. */
static void fail(const char *what, int code) {
  fprintf(stderr, "fuzz-snapfile: %s (%s)\n", what, leak_err_name(code));
  abort();
}

/* Exercises the decoded snapshot the way users do. */
static void exercise(const leak__snapshot *s) {
  for (int key = LEAK_KEY_FILENAME; key <= LEAK_KEY_TRACEBACK; key++) {
    for (int cumulative = 0; cumulative < 2; cumulative++) {
      leak__stat_row *rows;
      size_t n;
      int rc = leak__snapshot_statistics(s, (leak_key_type)key, cumulative, &rows, &n);
      if (rc == LEAK_EINVAL && key == LEAK_KEY_TRACEBACK && cumulative) continue;
      if (rc < 0) fail("statistics failed", rc);
      leak__free(rows);
      rc = leak__snapshot_compare(s, s, (leak_key_type)key, cumulative, &rows, &n);
      if (rc < 0) fail("compare failed", rc);
      for (size_t i = 0; i < n; i++)
        if (rows[i].size_diff != 0 || rows[i].count_diff != 0) fail("a snapshot differs from itself", 0);
      leak__free(rows);
    }
  }
  leak__snap_filter filter = {0};
  filter.pattern = "*a*";
  filter.all_frames = 1;
  leak__snapshot *filtered;
  int rc = leak__snapshot_filter(s, &filter, 1, &filtered);
  if (rc < 0) fail("filter failed", rc);
  leak_snapshot_free(filtered);
}

/* A copy of the input with the header's CRC and length made to match the payload, so mutations get
 * past the checksum and reach the parser (the fuzzer could never forge a CRC by itself). */
static unsigned char *with_fixed_header(const uint8_t *data, size_t size) {
  unsigned char *copy = malloc(size ? size : 1);
  if (copy == NULL) abort();
  memcpy(copy, data, size);
  if (size >= LEAK_SNAPFILE_HEADER) {
    uint64_t payload = size - LEAK_SNAPFILE_HEADER;
    uLong crc = crc32(crc32(0L, Z_NULL, 0), copy + LEAK_SNAPFILE_HEADER, (uInt)payload);
    for (int i = 0; i < 4; i++) copy[12 + i] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 8; i++) copy[16 + i] = (unsigned char)(payload >> (8 * i));
  }
  return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  leak__snapshot *s = NULL;
  int rc = leak__snapfile_decode(data, size, &s); /* the input as it is: header checks */
  if (rc < 0 && rc != LEAK_EFORMAT) fail("decode failed with an unexpected code", rc);
  leak_snapshot_free(s);
  s = NULL;
  unsigned char *fixed = with_fixed_header(data, size);
  rc = leak__snapfile_decode(fixed, size, &s);
  free(fixed);
  if (rc == LEAK_EFORMAT) return 0;
  if (rc < 0) fail("decode failed with an unexpected code", rc);
  exercise(s);
  unsigned char *bytes;
  size_t len;
  if ((rc = leak__snapfile_encode(s, &bytes, &len)) < 0) fail("encode failed", rc);
  leak__snapshot *again = NULL;
  if ((rc = leak__snapfile_decode(bytes, len, &again)) < 0) fail("re-decoding our own encoding failed", rc);
  if (again->ntraces != s->ntraces) fail("round trip changed the number of traces", 0);
  for (size_t i = 0; i < s->ntraces; i++)
    if (again->traces[i].size != s->traces[i].size || again->traces[i].domain != s->traces[i].domain)
      fail("round trip changed a trace", 0);
  if (again->attributes_len != s->attributes_len ||
      (s->attributes && memcmp(again->attributes, s->attributes, s->attributes_len) != 0))
    fail("round trip changed the attributes", 0);
  if (s->attributes && (rc = leak__snapfile_check_attributes(s->attributes, s->attributes_len)) < 0)
    fail("decoded attributes do not check", rc);
  leak__free(bytes);
  leak_snapshot_free(again);
  leak_snapshot_free(s);
  return 0;
}
