/* The snapshot file format: encoding a snapshot to bytes and decoding bytes into a snapshot.
 *
 * Layout (all integers little-endian):
 *   8 bytes  magic "LEAKSNAP"
 *   4 bytes  format version (1)
 *   4 bytes  CRC-32 (zlib's) of the payload
 *   8 bytes  payload length; the file ends right after the payload
 *   payload  LEB128 varints: flags (bit 0: traces carry weights), traceback limit,
 *            strings (count, then length + UTF-8 bytes each),
 *            frames (count, then string index + zigzag line each),
 *            tracebacks (count, then nframe, total_nframe - nframe, frame indexes most recent first),
 *            traces (count, then traceback index, domain, size, and an IEEE-754 double weight
 *            (8 bytes) when flag bit 0 is set).
 * The decoder checks every count against the bytes left before it allocates anything sized by it,
 * every index against its table, and every varint for overflow; it never recurses. */
#ifndef LIBLEAK_SNAPFILE_H
#define LIBLEAK_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "tracer/snapshot.h"

#define LEAK_SNAPFILE_MAGIC "LEAKSNAP"
#define LEAK_SNAPFILE_VERSION 1u
#define LEAK_SNAPFILE_HEADER 24u
/* Bounds a well-formed file respects: anything larger is refused as hostile. */
#define LEAK_SNAPFILE_MAX_NFRAME 65536u
#define LEAK_SNAPFILE_MAX_STRING (1u << 20)

/* Encodes `s` into a new buffer from leak__malloc (*bytes, *len; the caller frees it). */
int leak__snapfile_encode(const leak__snapshot *s, unsigned char **bytes, size_t *len);

/* Decodes a whole file held in memory into a new snapshot.  LEAK_EFORMAT for anything malformed,
 * LEAK_ENOMEM when memory ran out; never reads outside [bytes, bytes + len). */
int leak__snapfile_decode(const unsigned char *bytes, size_t len, leak__snapshot **out);

#endif
