/* The snapshot file format: encoding a snapshot to bytes and decoding bytes into a snapshot.
 *
 * Layout (all integers little-endian):
 *   8 bytes  magic "LEAKSNAP"
 *   4 bytes  format version (1)
 *   4 bytes  CRC-32 (zlib's) of the payload
 *   8 bytes  payload length; the file ends right after the payload
 *   payload  LEB128 varints: flags (bit 0: traces carry weights; bit 1: attributes follow the
 *            traces), traceback limit,
 *            strings (count, then length + UTF-8 bytes each),
 *            frames (count, then string index + zigzag line each),
 *            tracebacks (count, then nframe, total_nframe - nframe, frame indexes most recent first),
 *            traces (count, then traceback index, domain, size, and an IEEE-754 double weight
 *            (8 bytes) when flag bit 0 is set),
 *            attributes when flag bit 1 is set: byte length, then one value (below), a dict whose
 *            keys are str: the attributes a user set on the Python Snapshot.
 * Files without attributes are byte for byte those written before attributes existed; readers from
 * before refuse files with them (unknown flag), as they should.
 *
 * A value is a tag byte and what the tag says:
 *   'N' None, 'F' False, 'T' True;
 *   'i' an int of 64 bits as a zigzag varint; 'I' a larger int: length, then ASCII hex digits
 *       ([0-9a-f], at least one) after an optional '-';
 *   'f' a float: IEEE-754 double, 8 bytes little-endian (NaN and infinities included);
 *   's' a str: length, then UTF-8 as CPython's surrogatepass writes it (NUL allowed);
 *   'b' bytes: length, then the bytes;
 *   'l' a list, 't' a tuple: count, then that many values;
 *   'd' a dict: count, then that many key and value pairs, in order; a key is hashable (no list
 *       or dict, nor a tuple holding one).
 * Containers nest at most LEAK_SNAPFILE_MAX_DEPTH deep, the attribute dict included.
 *
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
#define LEAK_SNAPFILE_MAX_DEPTH 64u

/* Encodes `s` with its own attributes (those it was read with, if any) into a new buffer from
 * leak__malloc (*bytes, *len; the caller frees it). */
int leak__snapfile_encode(const leak__snapshot *s, unsigned char **bytes, size_t *len);

/* Encodes `s` with the given attributes instead (an encoded attribute dict as described above, or
 * NULL for none).  LEAK_EINVAL when the attributes do not check (the file would not load). */
int leak__snapfile_encode_with(const leak__snapshot *s, const unsigned char *attributes, size_t attributes_len,
                               unsigned char **bytes, size_t *len);

/* leak_snapshot_write with the given attributes instead of the snapshot's own. */
int leak__snapfile_write_with(const leak__snapshot *s, const unsigned char *attributes, size_t attributes_len, int fd);

/* 0 when [bytes, bytes + len) is exactly one attribute dict as described above, else LEAK_EFORMAT.
 * Iterative: hostile nesting cannot overflow the stack. */
int leak__snapfile_check_attributes(const unsigned char *bytes, size_t len);

/* Decodes a whole file held in memory into a new snapshot.  LEAK_EFORMAT for anything malformed,
 * LEAK_ENOMEM when memory ran out; never reads outside [bytes, bytes + len). */
int leak__snapfile_decode(const unsigned char *bytes, size_t len, leak__snapshot **out);

#endif
