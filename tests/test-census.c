/* The census through its C API, as an embedding host uses it: rows, a diff and its text, new
 * objects checked against a fresh walk, and out-of-memory at every allocation. */
#include "core/internal.h"
#include "heap/census.h"
#include "runner.h"

#include <unistd.h>

/* The row of `name`, or NULL. */
static int find_row(const leak_census *census, const char *name, leak_census_row *out) {
  for (size_t i = 0; i < leak_census_rows(census); i++) {
    leak_census_row row;
    ASSERT_EQ(leak_census_row_at(census, i, &row), 0);
    if (strcmp(row.type_name, name) == 0) {
      *out = row;
      return 1;
    }
  }
  return 0;
}

TEST(census_counts_a_class_and_diffs_it) {
  test_python_start();
  ASSERT_EQ(test_python_run("class Session:\n"
                            "    def __init__(self, i):\n"
                            "        self.data = b'x' * 100 + str(i).encode()\n"
                            "sessions = []\n"),
            0);
  leak_census *before, *after;
  ASSERT_EQ(leak_census_take(NULL, &before), 0);
  ASSERT_EQ(test_python_run("sessions.extend(Session(i) for i in range(500))\n"), 0);
  ASSERT_EQ(leak_census_take(NULL, &after), 0);
  leak_census_row row;
  ASSERT(find_row(after, "__main__.Session", &row));
  ASSERT_EQ(row.count, 500);
  ASSERT(!find_row(before, "__main__.Session", &row));
  leak_census_row_at(after, 0, &row);
  ASSERT_EQ(leak_census_row_at(after, leak_census_rows(after), &row), LEAK_ERANGE);

  leak_census_diff_row *rows;
  size_t n;
  ASSERT_EQ(leak_census_diff(after, before, &rows, &n), 0);
  int seen_session = 0, seen_bytes = 0;
  for (size_t i = 0; i < n; i++) {
    if (i > 0) ASSERT(rows[i - 1].size_diff >= rows[i].size_diff);
    if (strcmp(rows[i].type_name, "__main__.Session") == 0) {
      seen_session = 1;
      ASSERT_EQ(rows[i].count_diff, 500);
    }
    if (strcmp(rows[i].type_name, "bytes") == 0) {
      seen_bytes = 1;
      ASSERT_GE(rows[i].count_diff, 450); /* 500 new, less temporaries freed since `before` */
      ASSERT_GE(rows[i].size_diff, 450 * 133);
    }
  }
  ASSERT(seen_session && seen_bytes);
  leak_census_diff_free(rows);

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(leak_census_write_diff(after, before, fds[1], 5), 0);
  close(fds[1]);
  char text[8192] = {0};
  ssize_t got = read(fds[0], text, sizeof(text) - 1);
  close(fds[0]);
  ASSERT_GT(got, 0);
  ASSERT_STR_CONTAINS(text, "type");
  ASSERT_STR_CONTAINS(text, "bytes");
  ASSERT_STR_CONTAINS(text, "+500");
  ASSERT_EQ(leak_census_write_diff(after, before, -1, 0), LEAK_EBADF);
  leak_census_free(before);
  leak_census_free(after);
  leak_census_free(NULL);
  return 0;
}

TEST(census_new_objects_are_alive_and_never_reused_addresses) {
  test_python_start();
  ASSERT_EQ(test_python_run("class Item: pass\n"
                            "kept = []\n"),
            0);
  leak_census *before, *after;
  ASSERT_EQ(leak_census_take(NULL, &before), 0);
  ASSERT_EQ(test_python_run("kept.extend(Item() for i in range(100))\n"
                            "dropped = [Item() for i in range(100)]\n"),
            0);
  ASSERT_EQ(leak_census_take(NULL, &after), 0);
  /* The dropped ones die; their addresses go to new objects of another type. */
  ASSERT_EQ(test_python_run("del dropped\n"
                            "others = [[i] for i in range(300)]\n"),
            0);
  struct _object **objects;
  size_t count;
  ASSERT_EQ(leak_census_new_objects(after, before, "__main__.Item", 0, &objects, &count), 0);
  ASSERT_EQ(count, 100);
  PyObject *kept = PyDict_GetItemString(PyModule_GetDict(PyImport_AddModule("__main__")), "kept");
  for (size_t i = 0; i < count; i++) {
    ASSERT(PySequence_Contains(kept, (PyObject *)objects[i]) == 1);
    Py_DecRef((PyObject *)objects[i]);
  }
  leak_census_objects_free(objects);
  ASSERT_EQ(leak_census_new_objects(after, before, "__main__.Item", 7, &objects, &count), 0);
  ASSERT_EQ(count, 7);
  for (size_t i = 0; i < count; i++) Py_DecRef((PyObject *)objects[i]);
  leak_census_objects_free(objects);

  leak_census_options no_addresses = LEAK_CENSUS_OPTIONS_INIT;
  no_addresses.keep_addresses = 0;
  leak_census *bare;
  ASSERT_EQ(leak_census_take(&no_addresses, &bare), 0);
  ASSERT_EQ(leak_census_new_objects(bare, before, NULL, 0, &objects, &count), LEAK_EINVAL);
  leak_census_free(bare);
  leak_census_free(before);
  leak_census_free(after);
  return 0;
}

TEST(census_survives_running_out_of_memory_anywhere) {
  test_python_start();
  ASSERT_EQ(test_python_run("data = [{'k': str(i)} for i in range(3000)]\n"), 0);
  int succeeded = 0;
  for (long fail = 0; fail < 100000 && !succeeded; fail += 1 + fail / 3) {
    leak_census *census = NULL;
    leak__alloc_fail_after(fail);
    int rc = leak_census_take(NULL, &census);
    leak__alloc_fail_after(-1);
    if (rc == 0) {
      succeeded = 1;
      leak_census_row row;
      ASSERT(find_row(census, "dict", &row));
      ASSERT_GE(row.count, 3000);
    } else {
      ASSERT_EQ(rc, LEAK_ENOMEM);
      ASSERT(census == NULL);
      ASSERT(!PyErr_Occurred());
    }
    leak_census_free(census);
  }
  ASSERT(succeeded);
  return 0;
}

TEST(census_excludes_what_it_is_told_to) {
  test_python_start();
  ASSERT_EQ(test_python_run("class Mine: pass\n"
                            "private = [Mine() for i in range(50)]\n"
                            "public = [Mine() for i in range(20)]\n"),
            0);
  PyObject *private_list = PyDict_GetItemString(PyModule_GetDict(PyImport_AddModule("__main__")), "private");
  leak_census_options options = LEAK_CENSUS_OPTIONS_INIT;
  struct _object *roots[1] = {(struct _object *)private_list};
  options.exclude = roots;
  options.exclude_count = 1;
  leak_census *census;
  ASSERT_EQ(leak_census_take(&options, &census), 0);
  leak_census_row row;
  ASSERT(find_row(census, "__main__.Mine", &row));
  ASSERT_EQ(row.count, 20);
  leak_census_free(census);
  options.exclude = NULL;
  options.exclude_count = 0;
  options.exclude_alone = roots;
  options.exclude_alone_count = 1;
  ASSERT_EQ(leak_census_take(&options, &census), 0);
  ASSERT(find_row(census, "__main__.Mine", &row));
  ASSERT_EQ(row.count, 70);
  leak_census_free(census);
  return 0;
}
