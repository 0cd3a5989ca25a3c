/* A stand-in for an extension that reports its own buffers (as NumPy does): it calls
 * PyTraceMalloc_Track/Untrack through its own import slots.  Linked with -z relro -z now, so those
 * slots sit in pages the loader made read-only, which NumPy's wheels (lazy binding) never show.
 * tests/test-extbuffers.c loads it with dlopen; it is not linked against libpython: the test
 * process provides the two functions. */
#include <Python.h>

__attribute__((visibility("default"))) int extbuffers_user_track(unsigned int domain, uintptr_t ptr, size_t size) {
  return PyTraceMalloc_Track(domain, ptr, size);
}

__attribute__((visibility("default"))) int extbuffers_user_untrack(unsigned int domain, uintptr_t ptr) {
  return PyTraceMalloc_Untrack(domain, ptr);
}
