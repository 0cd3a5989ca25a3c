/* The snapshot file format.  Read tracer/snapfile.h first for the layout.
 *
 * The decoder is written for hostile input: a cursor that can only move forward inside the buffer,
 * varints limited to 64 bits, counts checked against the bytes that remain before any allocation,
 * indexes checked against the tables already read, strings checked to be UTF-8 without NULs.  Every
 * failure is LEAK_EFORMAT (or LEAK_ENOMEM); nothing aborts. */
#include "core/internal.h"
#include "tracer/snapfile.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- Encoding -------------------------------------------------------------------------------- */

typedef struct out_buffer {
  unsigned char *bytes;
  size_t len, cap;
  int failed; /* set once memory ran out; later writes are ignored */
} out_buffer;

/* Makes room for `more` bytes, doubling the buffer. */
static int out_reserve(out_buffer *b, size_t more) {
  if (b->failed) return 0;
  if (b->len + more <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) cap *= 2;
  unsigned char *bytes = leak__realloc(b->bytes, cap);
  if (bytes == NULL) {
    b->failed = 1;
    return 0;
  }
  b->bytes = bytes;
  b->cap = cap;
  return 1;
}

/* Appends raw bytes (strings, the magic). */
static void out_bytes(out_buffer *b, const void *data, size_t len) {
  if (!out_reserve(b, len)) return;
  memcpy(b->bytes + b->len, data, len);
  b->len += len;
}

/* Appends a LEB128 varint: small numbers, the common case, take one byte. */
static void out_varint(out_buffer *b, uint64_t v) {
  if (!out_reserve(b, 10)) return;
  while (v >= 0x80) {
    b->bytes[b->len++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  b->bytes[b->len++] = (unsigned char)v;
}

/* Appends a fixed-width little-endian integer (header fields, weights). */
static void out_le(out_buffer *b, uint64_t v, int nbytes) {
  if (!out_reserve(b, (size_t)nbytes)) return;
  for (int i = 0; i < nbytes; i++) b->bytes[b->len++] = (unsigned char)(v >> (8 * i));
}

/* Line numbers can be negative: zigzag keeps small magnitudes small as varints. */
static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* The snapshot's own attributes go wherever no others are given. */
int leak__snapfile_encode(const leak__snapshot *s, unsigned char **bytes, size_t *len) {
  return leak__snapfile_encode_with(s, s->attributes, s->attributes_len, bytes, len);
}

/* Writes every table whole (filtered snapshots keep their parent's tables), then the traces, then
 * the attributes.  The attributes are checked first, so that no file is written that would not
 * load. */
int leak__snapfile_encode_with(const leak__snapshot *s, const unsigned char *attributes, size_t attributes_len,
                               unsigned char **bytes, size_t *len) {
  const leak__snap_tables *t = s->tables;
  out_buffer b = {0};
  int weighted = 0;
  if (attributes != NULL && leak__snapfile_check_attributes(attributes, attributes_len) < 0) return LEAK_EINVAL;
  for (size_t i = 0; i < s->ntraces && !weighted; i++) weighted = s->traces[i].weight != 1.0;
  out_bytes(&b, LEAK_SNAPFILE_MAGIC, 8);
  out_le(&b, LEAK_SNAPFILE_VERSION, 4);
  out_le(&b, 0, 4); /* CRC, filled in below */
  out_le(&b, 0, 8); /* payload length, likewise */
  out_varint(&b, (uint64_t)weighted | (attributes != NULL ? 2u : 0u));
  out_varint(&b, s->traceback_limit < 0 ? 0 : (uint64_t)s->traceback_limit);
  out_varint(&b, t->nstrings);
  for (uint32_t i = 0; i < t->nstrings; i++) {
    const char *text = leak__snapshot_string(s, i);
    size_t n = strlen(text);
    out_varint(&b, n);
    out_bytes(&b, text, n);
  }
  out_varint(&b, t->nframes);
  for (uint32_t i = 0; i < t->nframes; i++) {
    out_varint(&b, t->frames[i].filename);
    out_varint(&b, zigzag(t->frames[i].lineno));
  }
  out_varint(&b, t->ntracebacks);
  for (uint32_t i = 0; i < t->ntracebacks; i++) {
    const leak__snap_traceback *tb = &t->tracebacks[i];
    out_varint(&b, tb->nframe);
    out_varint(&b, tb->total_nframe - tb->nframe);
    for (uint32_t f = 0; f < tb->nframe; f++) out_varint(&b, t->frame_refs[tb->first + f]);
  }
  out_varint(&b, s->ntraces);
  for (size_t i = 0; i < s->ntraces; i++) {
    const leak__snap_trace *trace = &s->traces[i];
    out_varint(&b, trace->traceback);
    out_varint(&b, trace->domain);
    out_varint(&b, trace->size);
    if (weighted) {
      uint64_t bits;
      memcpy(&bits, &trace->weight, sizeof(bits));
      out_le(&b, bits, 8);
    }
  }
  if (attributes != NULL) {
    out_varint(&b, attributes_len);
    out_bytes(&b, attributes, attributes_len);
  }
  if (b.failed) {
    leak__free(b.bytes);
    return LEAK_ENOMEM;
  }
  size_t payload = b.len - LEAK_SNAPFILE_HEADER;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < payload;) { /* zlib takes uInt lengths */
    uInt chunk = payload - done > (1u << 30) ? (1u << 30) : (uInt)(payload - done);
    crc = crc32(crc, b.bytes + LEAK_SNAPFILE_HEADER + done, chunk);
    done += chunk;
  }
  for (int i = 0; i < 4; i++) b.bytes[12 + i] = (unsigned char)(crc >> (8 * i));
  for (int i = 0; i < 8; i++) b.bytes[16 + i] = (unsigned char)((uint64_t)payload >> (8 * i));
  *bytes = b.bytes;
  *len = b.len;
  return 0;
}

/* ---- Decoding -------------------------------------------------------------------------------- */

typedef struct in_cursor {
  const unsigned char *p, *end;
} in_cursor;

/* Bytes not yet read: the bound every count is checked against. */
static size_t in_left(const in_cursor *c) { return (size_t)(c->end - c->p); }

/* A LEB128 varint of at most 64 bits; 0 on success, LEAK_EFORMAT when truncated or too long. */
static int in_varint(in_cursor *c, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (c->p == c->end) return LEAK_EFORMAT;
    unsigned char byte = *c->p++;
    if (shift == 63 && byte > 1) return LEAK_EFORMAT;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return LEAK_EFORMAT;
}

/* A varint that must be at most `max`. */
static int in_bounded(in_cursor *c, uint64_t max, uint64_t *out) {
  int rc = in_varint(c, out);
  if (rc < 0) return rc;
  return *out <= max ? 0 : LEAK_EFORMAT;
}

/* Reads a fixed-width little-endian integer; the caller checked the bytes are there. */
static uint64_t in_le(const unsigned char *p, int nbytes) {
  uint64_t v = 0;
  for (int i = 0; i < nbytes; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* UTF-8 as CPython's surrogatepass writes it: well-formed sequences, surrogates allowed; NUL only
 * where allowed (attribute strings may hold it, file names may not). */
static int valid_utf8(const unsigned char *s, size_t len, int allow_nul) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c == 0 && !allow_nul) return 0;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (len - i < n) return 0;
    for (size_t k = 1; k < n; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    i += n;
  }
  return 1;
}

/* One open container while checking attributes: how many values it still holds (a dict counts
 * its keys and values), whether the next one is a dict key, and what its values may be. */
typedef struct attribute_level {
  uint64_t left;
  int is_dict;
  int hashable; /* inside a dict key: no list or dict below */
  int names;    /* the attribute dict itself: its keys are str */
} attribute_level;

/* Skips a length-prefixed run of bytes; *start and *n say where it was.  The length is checked
 * against what is left after the length itself. */
static int in_run(in_cursor *c, const unsigned char **start, uint64_t *n) {
  int rc = in_varint(c, n);
  if (rc < 0) return rc;
  if (*n > in_left(c)) return LEAK_EFORMAT;
  *start = c->p;
  c->p += *n;
  return 0;
}

/* Checks one scalar value after its tag; containers are handled by the caller. */
static int check_scalar(in_cursor *c, unsigned char tag) {
  const unsigned char *run;
  uint64_t n, v;
  switch (tag) {
    case 'N': case 'F': case 'T':
      return 0;
    case 'i':
      return in_varint(c, &v);
    case 'f':
      if (in_left(c) < 8) return LEAK_EFORMAT;
      c->p += 8;
      return 0;
    case 's':
      if (in_run(c, &run, &n) < 0) return LEAK_EFORMAT;
      return valid_utf8(run, (size_t)n, 1) ? 0 : LEAK_EFORMAT;
    case 'b':
      return in_run(c, &run, &n);
    case 'I': {
      if (in_run(c, &run, &n) < 0) return LEAK_EFORMAT;
      size_t i = n > 0 && run[0] == '-';
      if (i == n) return LEAK_EFORMAT;
      for (; i < n; i++)
        if (!((run[i] >= '0' && run[i] <= '9') || (run[i] >= 'a' && run[i] <= 'f'))) return LEAK_EFORMAT;
      return 0;
    }
    default:
      return LEAK_EFORMAT;
  }
}

/* A stack of open containers instead of recursion; every count is checked against the bytes left
 * (each value takes at least its tag byte). */
int leak__snapfile_check_attributes(const unsigned char *bytes, size_t len) {
  attribute_level stack[LEAK_SNAPFILE_MAX_DEPTH];
  in_cursor c = {bytes, bytes + len};
  uint64_t n;
  if (len == 0 || *c.p++ != 'd' || in_bounded(&c, in_left(&c) / 2, &n) < 0) return LEAK_EFORMAT;
  stack[0] = (attribute_level){2 * n, 1, 0, 1};
  unsigned depth = 1;
  while (depth > 0) {
    attribute_level *top = &stack[depth - 1];
    if (top->left == 0) {
      depth--;
      continue;
    }
    int is_key = top->is_dict && top->left % 2 == 0;
    int hashable = top->hashable || is_key;
    top->left--;
    if (c.p == c.end) return LEAK_EFORMAT;
    unsigned char tag = *c.p++;
    if (is_key && top->names && tag != 's') return LEAK_EFORMAT;
    if (tag != 'l' && tag != 't' && tag != 'd') {
      if (check_scalar(&c, tag) < 0) return LEAK_EFORMAT;
      continue;
    }
    if ((hashable && tag != 't') || depth == LEAK_SNAPFILE_MAX_DEPTH) return LEAK_EFORMAT;
    uint64_t per_item = tag == 'd' ? 2 : 1;
    if (in_bounded(&c, in_left(&c) / per_item, &n) < 0) return LEAK_EFORMAT;
    stack[depth++] = (attribute_level){n * per_item, tag == 'd', hashable, 0};
  }
  return c.p == c.end ? 0 : LEAK_EFORMAT;
}

/* Per-table maps from file indexes to the builder's (which deduplicates). */
typedef struct decode_state {
  uint32_t *strings, *frames, *tracebacks, *frame_buffer;
} decode_state;

/* Reads the tables in file order into a builder; *out gets the snapshot even on failure, so the
 * caller frees it whatever happens. */
static int decode_payload(in_cursor *c, leak__snapshot **out, decode_state *st) {
  uint64_t flags, limit, n, v;
  int rc;
  if ((rc = in_bounded(c, 3, &flags)) < 0 || (rc = in_bounded(c, 1u << 20, &limit)) < 0) return rc;
  leak__snapshot *s = leak__snapshot_new((int)limit);
  if (s == NULL) return LEAK_ENOMEM;
  *out = s;
  /* Strings: each needs at least its length byte. */
  if ((rc = in_bounded(c, in_left(c), &n)) < 0) return rc;
  uint64_t nstrings = n;
  if ((st->strings = leak__malloc((size_t)(n ? n : 1) * sizeof(uint32_t))) == NULL) return LEAK_ENOMEM;
  for (uint64_t i = 0; i < nstrings; i++) {
    if ((rc = in_bounded(c, LEAK_SNAPFILE_MAX_STRING, &v)) < 0) return rc;
    if (v > in_left(c) || !valid_utf8(c->p, (size_t)v, 0)) return LEAK_EFORMAT;
    if ((rc = leak__snapshot_add_string(s, (const char *)c->p, (size_t)v, &st->strings[i])) < 0)
      return rc == LEAK_EINVAL ? LEAK_EFORMAT : rc;
    c->p += v;
  }
  /* Frames: at least two bytes each. */
  if ((rc = in_bounded(c, in_left(c) / 2, &n)) < 0) return rc;
  uint64_t nframes = n;
  if ((st->frames = leak__malloc((size_t)(n ? n : 1) * sizeof(uint32_t))) == NULL) return LEAK_ENOMEM;
  for (uint64_t i = 0; i < nframes; i++) {
    uint64_t filename, zline;
    if ((rc = in_bounded(c, nstrings ? nstrings - 1 : 0, &filename)) < 0 || nstrings == 0) return LEAK_EFORMAT;
    if ((rc = in_varint(c, &zline)) < 0) return rc;
    int64_t lineno = unzigzag(zline);
    if (lineno < INT32_MIN || lineno > INT32_MAX) return LEAK_EFORMAT;
    if ((rc = leak__snapshot_add_frame(s, st->strings[filename], (int32_t)lineno, &st->frames[i])) < 0) return rc;
  }
  /* Tracebacks: at least three bytes each (nframe, extra depth, one frame). */
  if ((rc = in_bounded(c, in_left(c) / 3, &n)) < 0) return rc;
  uint64_t ntracebacks = n;
  if ((st->tracebacks = leak__malloc((size_t)(n ? n : 1) * sizeof(uint32_t))) == NULL) return LEAK_ENOMEM;
  for (uint64_t i = 0; i < ntracebacks; i++) {
    uint64_t nframe, extra;
    if ((rc = in_bounded(c, LEAK_SNAPFILE_MAX_NFRAME, &nframe)) < 0 || nframe == 0) return LEAK_EFORMAT;
    if ((rc = in_bounded(c, UINT32_MAX - nframe, &extra)) < 0) return rc;
    if (nframe > in_left(c)) return LEAK_EFORMAT;
    if (st->frame_buffer == NULL &&
        (st->frame_buffer = leak__malloc(LEAK_SNAPFILE_MAX_NFRAME * sizeof(uint32_t))) == NULL)
      return LEAK_ENOMEM;
    for (uint64_t f = 0; f < nframe; f++) {
      if ((rc = in_bounded(c, nframes ? nframes - 1 : 0, &v)) < 0 || nframes == 0) return LEAK_EFORMAT;
      st->frame_buffer[f] = st->frames[v];
    }
    rc = leak__snapshot_add_traceback(s, st->frame_buffer, (uint32_t)nframe, (uint32_t)(nframe + extra),
                                      &st->tracebacks[i]);
    if (rc < 0) return rc == LEAK_EINVAL ? LEAK_EFORMAT : rc;
  }
  /* Traces: at least three bytes each, eleven with weights. */
  if ((rc = in_bounded(c, in_left(c) / (flags & 1 ? 11 : 3), &n)) < 0) return rc;
  if (n > 0) {
    if ((s->traces = leak__malloc((size_t)n * sizeof(leak__snap_trace))) == NULL) return LEAK_ENOMEM;
    s->traces_cap = (size_t)n;
  }
  for (uint64_t i = 0; i < n; i++) {
    uint64_t traceback, domain, size, bits;
    double weight = 1.0;
    if ((rc = in_bounded(c, ntracebacks ? ntracebacks - 1 : 0, &traceback)) < 0 || ntracebacks == 0)
      return LEAK_EFORMAT;
    if ((rc = in_bounded(c, UINT32_MAX, &domain)) < 0 || (rc = in_varint(c, &size)) < 0) return rc;
    if (flags & 1) {
      if (in_left(c) < 8) return LEAK_EFORMAT;
      bits = in_le(c->p, 8);
      c->p += 8;
      memcpy(&weight, &bits, sizeof(weight));
      if (!isfinite(weight) || !(weight >= 1.0)) return LEAK_EFORMAT;
    }
    if ((rc = leak__snapshot_add_trace(s, (uint32_t)domain, size, weight, st->tracebacks[traceback])) < 0) return rc;
  }
  /* Attributes: checked whole, then kept as bytes for the Python layer to turn into objects. */
  if (flags & 2) {
    const unsigned char *run;
    if (in_run(c, &run, &n) < 0 || leak__snapfile_check_attributes(run, (size_t)n) < 0) return LEAK_EFORMAT;
    if ((s->attributes = leak__malloc((size_t)n)) == NULL) return LEAK_ENOMEM;
    memcpy(s->attributes, run, (size_t)n);
    s->attributes_len = (size_t)n;
  }
  return in_left(c) == 0 ? 0 : LEAK_EFORMAT;
}

/* Header first (magic, version, length, CRC), so random data is refused before parsing. */
int leak__snapfile_decode(const unsigned char *bytes, size_t len, leak__snapshot **out) {
  if (len < LEAK_SNAPFILE_HEADER || memcmp(bytes, LEAK_SNAPFILE_MAGIC, 8) != 0) return LEAK_EFORMAT;
  if (in_le(bytes + 8, 4) != LEAK_SNAPFILE_VERSION) return LEAK_EFORMAT;
  uint64_t payload = in_le(bytes + 16, 8);
  if (payload != len - LEAK_SNAPFILE_HEADER) return LEAK_EFORMAT;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < payload;) {
    uInt chunk = payload - done > (1u << 30) ? (1u << 30) : (uInt)(payload - done);
    crc = crc32(crc, bytes + LEAK_SNAPFILE_HEADER + done, chunk);
    done += chunk;
  }
  if ((uint32_t)crc != (uint32_t)in_le(bytes + 12, 4)) return LEAK_EFORMAT;
  in_cursor c = {bytes + LEAK_SNAPFILE_HEADER, bytes + len};
  decode_state st = {0};
  leak__snapshot *s = NULL;
  int rc = decode_payload(&c, &s, &st);
  leak__free(st.strings);
  leak__free(st.frames);
  leak__free(st.tracebacks);
  leak__free(st.frame_buffer);
  if (rc < 0) {
    leak_snapshot_free(s);
    return rc;
  }
  leak__snapshot_finish(s);
  *out = s;
  return 0;
}

/* ---- Files ----------------------------------------------------------------------------------- */

/* errno to the matching LEAK_E* code, for I/O failures the caller should see as OSError. */
static int io_error(int err) {
  switch (err) {
    case EBADF: return LEAK_EBADF;
    case EACCES: case EPERM: return LEAK_EACCES;
    case ENOENT: return LEAK_ENOENT;
    case ENOMEM: return LEAK_ENOMEM;
    case EAGAIN: return LEAK_EAGAIN;
    default: return LEAK_EIO;
  }
}

/* The snapshot with the attributes it was read with, if any. */
int leak_snapshot_write(const leak__snapshot *s, int fd) {
  if (s == NULL) return LEAK_EINVAL;
  return leak__snapfile_write_with(s, s->attributes, s->attributes_len, fd);
}

/* Encodes in memory, then writes everything, retrying short writes and EINTR. */
int leak__snapfile_write_with(const leak__snapshot *s, const unsigned char *attributes, size_t attributes_len, int fd) {
  if (s == NULL || fd < 0) return s == NULL ? LEAK_EINVAL : LEAK_EBADF;
  unsigned char *bytes;
  size_t len;
  int rc = leak__snapfile_encode_with(s, attributes, attributes_len, &bytes, &len);
  if (rc < 0) return rc;
  for (size_t done = 0; done < len;) {
    ssize_t n = write(fd, bytes + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = io_error(n < 0 ? errno : EIO);
      break;
    }
    done += (size_t)n;
  }
  leak__free(bytes);
  return rc;
}

/* Reads to end of file into a buffer that grows with the data actually read, so a header that
 * claims a huge payload cannot make us allocate it. */
int leak_snapshot_read(int fd, leak__snapshot **out) {
  if (out == NULL) return LEAK_EINVAL;
  if (fd < 0) return LEAK_EBADF;
  size_t cap = 1 << 16, len = 0;
  unsigned char *bytes = leak__malloc(cap);
  if (bytes == NULL) return LEAK_ENOMEM;
  int rc = 0;
  for (;;) {
    if (len == cap) {
      unsigned char *more = cap <= SIZE_MAX / 2 ? leak__realloc(bytes, cap * 2) : NULL;
      if (more == NULL) {
        rc = LEAK_ENOMEM;
        break;
      }
      bytes = more;
      cap *= 2;
    }
    ssize_t n = read(fd, bytes + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = io_error(errno);
      break;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  if (rc == 0) rc = leak__snapfile_decode(bytes, len, out);
  leak__free(bytes);
  return rc;
}
