/* libleak: version numbers and the export macro every public header uses. */
#ifndef LIBLEAK_VERSION_H
#define LIBLEAK_VERSION_H

#define LEAK_VERSION_MAJOR 0
#define LEAK_VERSION_MINOR 1
#define LEAK_VERSION_PATCH 0
#define LEAK_VERSION_HEX \
  ((LEAK_VERSION_MAJOR << 16) | (LEAK_VERSION_MINOR << 8) | LEAK_VERSION_PATCH)

/* Marks a public symbol; everything else in the library is hidden. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define LEAK_EXTERN __attribute__((visibility("default")))
#else
#define LEAK_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version the library was built as, LEAK_VERSION_HEX-encoded, so a host can check
 * that the headers it compiled against match the library it loaded. */
LEAK_EXTERN unsigned int leak_version(void);

/* The same as a string, "MAJOR.MINOR.PATCH"; static storage. */
LEAK_EXTERN const char *leak_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
