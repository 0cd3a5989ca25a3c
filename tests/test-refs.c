/* The refs C API as an embedding host uses it: why-alive text and pictures, retained sizes, top
 * retainers, a stale index refused, and out-of-memory anywhere in the index build. */
#include "core/internal.h"
#include "refs/index.h"
#include "runner.h"

#include <stdlib.h>
#include <unistd.h>

static PyObject *main_global(const char *name) {
  return PyDict_GetItemString(PyModule_GetDict(PyImport_AddModule("__main__")), name);
}

/* What leak_refs_write_why_alive writes, read back through a pipe. */
static void why_alive_text(leak_refs_index *index, PyObject *obj, size_t max_paths, char *out, size_t capacity) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(leak_refs_write_why_alive(index, (struct _object *)obj, max_paths, fds[1]), 0);
  close(fds[1]);
  ssize_t n = read(fds[0], out, capacity - 1);
  close(fds[0]);
  ASSERT_GT(n, 0);
  out[n] = '\0';
}

TEST(refs_why_alive_writes_labelled_paths) {
  test_python_start();
  ASSERT_EQ(test_python_run("class Session:\n"
                            "    def __init__(self):\n"
                            "        self.data = bytearray(5000000)\n"
                            "CACHE = {'k42': Session()}\n"
                            "blob = CACHE['k42'].data\n"),
            0);
  char text[4096];
  why_alive_text(NULL, main_global("blob"), 3, text, sizeof(text));
  ASSERT_STR_CONTAINS(text, "module __main__: blob -> bytearray (");
  ASSERT_STR_CONTAINS(text, "module __main__: CACHE -> dict['k42'] -> Session.data -> bytearray (");

  PyObject *blob = main_global("blob");
  /* borrowed: CACHE keeps it alive once the global is gone (a reference of ours would be a C one) */
  ASSERT_EQ(test_python_run("del blob\n"), 0);
  leak_refs_index *index;
  ASSERT_EQ(leak_refs_index_build(&index), 0);
  size_t objects, references, bytes;
  leak_refs_index_stats(index, &objects, &references, &bytes);
  ASSERT_GT(objects, 1000);
  ASSERT_GT(references, objects / 2);
  ASSERT_LE(bytes, 16 * objects + 4 * references + 4096 + 64 * 100);
  ASSERT_EQ(leak_refs_write_why_alive(index, (struct _object *)blob, 0, 1), LEAK_EINVAL);

  uint64_t size = 0, retained = 0;
  ASSERT_EQ(leak_refs_retained_size(index, (struct _object *)main_global("CACHE"), &size, &retained), 0);
  ASSERT_GT(retained, 5000000);
  ASSERT_LT(size, 1000);
  leak_refs_retainer rows[3];
  size_t count;
  ASSERT_EQ(leak_refs_top_retainers(index, rows, 3, &count), 0);
  ASSERT_GE(count, 1);
  ASSERT((PyObject *)rows[0].object == main_global("CACHE") || (PyObject *)rows[0].object == blob ||
         PyObject_IsInstance((PyObject *)rows[0].object, (PyObject *)&PyBaseObject_Type));
  ASSERT_GE(rows[0].retained, 5000000);
  ASSERT_EQ(leak_refs_top_retainers(NULL, rows, 3, &count), LEAK_EINVAL);

  char path[] = "/tmp/libleak-refs-XXXXXX";
  ASSERT(mkdtemp(path) != NULL);
  char png[64], bad[64];
  snprintf(png, sizeof(png), "%s/why.png", path);
  snprintf(bad, sizeof(bad), "%s/why.bmp", path);
  ASSERT_EQ(leak_refs_render_why_alive(index, (struct _object *)blob, 2, png), 0);
  FILE *f = fopen(png, "rb");
  ASSERT(f != NULL);
  unsigned char head[8];
  ASSERT_EQ(fread(head, 1, 8, f), 8);
  fclose(f);
  ASSERT(memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0);
  ASSERT_EQ(leak_refs_render_why_alive(index, (struct _object *)blob, 2, bad), LEAK_EINVAL);
  ASSERT(access(bad, F_OK) != 0);
  unlink(png);
  rmdir(path);

  /* Python code that makes objects leaves the index stale: refused, never read. */
  ASSERT_EQ(test_python_run("more = [[i] for i in range(100)]\n"), 0);
  ASSERT_EQ(leak_refs_index_is_current(index), 0);
  ASSERT_EQ(leak_refs_write_why_alive(index, (struct _object *)blob, 3, 1), LEAK_EAGAIN);
  ASSERT_EQ(leak_refs_retained_size(index, (struct _object *)blob, &size, &retained), LEAK_EAGAIN);
  leak_refs_index_free(index);
  leak_refs_index_free(NULL);
  return 0;
}

TEST(refs_index_survives_running_out_of_memory_anywhere) {
  test_python_start();
  ASSERT_EQ(test_python_run("data = [{'k': (i,)} for i in range(2000)]\n"), 0);
  int built = 0;
  for (long fail = 0; fail < 100000 && !built; fail += 1 + fail / 3) {
    leak__ref_index *index = NULL;
    leak__alloc_fail_after(fail);
    int rc = leak__ref_index_build(&index);
    leak__alloc_fail_after(-1);
    if (rc == 0) {
      built = 1;
      ASSERT_GT(index->nodes, 6000);
    } else {
      ASSERT_EQ(rc, LEAK_ENOMEM);
      ASSERT(index == NULL);
      ASSERT(!PyErr_Occurred());
    }
    leak__ref_index_free(index);
  }
  ASSERT(built);
  return 0;
}
