/* Snapshots on constructed inputs: grouping by file, line and traceback, cumulative counts, the
 * sort orders and tie-breaks of tracemalloc, diffs, filters, sampled weights, and out-of-memory
 * paths.  The expected values were worked out by hand from tracemalloc's rules. */
#include "core/internal.h"
#include "tracer/snapshot.h"
#include "runner.h"

/* Adds a trace whose traceback is written "file:line file:line ..." most recent first. */
static void add(leak__snapshot *s, uint32_t domain, uint64_t size, double weight, const char *frames) {
  uint32_t ids[64], n = 0;
  char buffer[512];
  snprintf(buffer, sizeof(buffer), "%s", frames);
  for (char *save = NULL, *item = strtok_r(buffer, " ", &save); item; item = strtok_r(NULL, " ", &save)) {
    char *colon = strrchr(item, ':');
    ASSERT(colon != NULL);
    uint32_t string;
    ASSERT_EQ(leak__snapshot_add_string(s, item, (size_t)(colon - item), &string), 0);
    ASSERT_EQ(leak__snapshot_add_frame(s, string, atoi(colon + 1), &ids[n++]), 0);
  }
  uint32_t tb;
  ASSERT_EQ(leak__snapshot_add_traceback(s, ids, n, n, &tb), 0);
  ASSERT_EQ(leak__snapshot_add_trace(s, domain, size, weight, tb), 0);
}

/* "file:line" of a row's most recent frame (static buffer). */
static const char *row_name(const leak__stat_row *row, leak_key_type key) {
  static char text[256];
  const char *filename;
  int lineno;
  leak__stat_row_frame(row, key, 0, &filename, &lineno);
  snprintf(text, sizeof(text), "%s:%d", filename, lineno);
  return text;
}

#define ASSERT_ROW(row, key, name, sz, cnt)           \
  do {                                                \
    ASSERT(strcmp(row_name(&(row), key), name) == 0); \
    ASSERT_EQ((row).size, sz);                        \
    ASSERT_EQ((row).count, cnt);                      \
  } while (0)

static leak__snapshot *sample_snapshot(void) {
  leak__snapshot *s = leak__snapshot_new(4);
  ASSERT(s != NULL);
  add(s, 0, 100, 1, "a.py:1 main.py:10");
  add(s, 0, 100, 1, "a.py:1 main.py:11");
  add(s, 0, 50, 1, "a.py:2 main.py:10");
  add(s, 0, 300, 1, "b.py:7 a.py:1 main.py:10");
  add(s, 0, 10, 1, "c.py:3");
  leak__snapshot_finish(s);
  return s;
}

TEST(snapshot_dedup_tables) {
  leak__snapshot *s = sample_snapshot();
  ASSERT_EQ(s->tables->nstrings, 4);  /* a.py main.py b.py c.py */
  ASSERT_EQ(s->tables->nframes, 6);   /* a:1 main:10 main:11 a:2 b:7 c:3 */
  ASSERT_EQ(s->tables->ntracebacks, 5);
  ASSERT_EQ(leak_snapshot_trace_count(s), 5);
  leak_snapshot_free(s);
  leak_snapshot_free(NULL);
  return 0;
}

TEST(snapshot_statistics_lineno_and_filename) {
  leak__snapshot *s = sample_snapshot();
  leak__stat_row *rows;
  size_t n;
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_LINENO, 0, &rows, &n), 0);
  ASSERT_EQ(n, 4);
  ASSERT_ROW(rows[0], LEAK_KEY_LINENO, "b.py:7", 300, 1);
  ASSERT_ROW(rows[1], LEAK_KEY_LINENO, "a.py:1", 200, 2);
  ASSERT_ROW(rows[2], LEAK_KEY_LINENO, "a.py:2", 50, 1);
  ASSERT_ROW(rows[3], LEAK_KEY_LINENO, "c.py:3", 10, 1);
  leak__free(rows);
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_FILENAME, 0, &rows, &n), 0);
  ASSERT_EQ(n, 3);
  ASSERT_ROW(rows[0], LEAK_KEY_FILENAME, "b.py:0", 300, 1);
  ASSERT_ROW(rows[1], LEAK_KEY_FILENAME, "a.py:0", 250, 3);
  ASSERT_ROW(rows[2], LEAK_KEY_FILENAME, "c.py:0", 10, 1);
  leak__free(rows);
  leak_snapshot_free(s);
  return 0;
}

TEST(snapshot_statistics_cumulative_counts_every_frame) {
  leak__snapshot *s = leak__snapshot_new(8);
  add(s, 0, 10, 1, "r.py:5 r.py:5 r.py:5 main.py:1"); /* recursion: the same line three times */
  add(s, 0, 20, 1, "main.py:2");
  leak__snapshot_finish(s);
  leak__stat_row *rows;
  size_t n;
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_LINENO, 1, &rows, &n), 0);
  ASSERT_EQ(n, 3);
  ASSERT_ROW(rows[0], LEAK_KEY_LINENO, "r.py:5", 30, 3); /* tracemalloc counts each occurrence */
  ASSERT_ROW(rows[1], LEAK_KEY_LINENO, "main.py:2", 20, 1);
  ASSERT_ROW(rows[2], LEAK_KEY_LINENO, "main.py:1", 10, 1);
  leak__free(rows);
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_FILENAME, 1, &rows, &n), 0);
  ASSERT_EQ(n, 2);
  ASSERT_ROW(rows[0], LEAK_KEY_FILENAME, "r.py:0", 30, 3); /* same size: more blocks first */
  ASSERT_ROW(rows[1], LEAK_KEY_FILENAME, "main.py:0", 30, 2);
  leak__free(rows);
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_TRACEBACK, 1, &rows, &n), LEAK_EINVAL);
  ASSERT_EQ(leak__snapshot_statistics(s, (leak_key_type)7, 0, &rows, &n), LEAK_EINVAL);
  leak_snapshot_free(s);
  return 0;
}

TEST(snapshot_statistics_ties_break_on_traceback) {
  /* Equal size and count: tracemalloc sorts the tracebacks in reverse, comparing frames from the
   * oldest, by filename then line. */
  leak__snapshot *s = leak__snapshot_new(2);
  add(s, 0, 8, 1, "x.py:1 a.py:9");
  add(s, 0, 8, 1, "y.py:1 a.py:2");
  add(s, 0, 8, 1, "a.py:5 b.py:1");
  add(s, 0, 8, 1, "a.py:5 a.py:2");
  leak__snapshot_finish(s);
  leak__stat_row *rows;
  size_t n;
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_TRACEBACK, 0, &rows, &n), 0);
  ASSERT_EQ(n, 4);
  /* Oldest frames: b.py:1 > a.py:9 > a.py:2 (then y.py:1 > a.py:5) */
  ASSERT_ROW(rows[0], LEAK_KEY_TRACEBACK, "a.py:5", 8, 1);
  ASSERT_EQ(leak__stat_row_nframe(&rows[0], LEAK_KEY_TRACEBACK), 2);
  const char *filename;
  int lineno;
  leak__stat_row_frame(&rows[0], LEAK_KEY_TRACEBACK, 1, &filename, &lineno);
  ASSERT(strcmp(filename, "b.py") == 0);
  ASSERT_ROW(rows[1], LEAK_KEY_TRACEBACK, "x.py:1", 8, 1);
  ASSERT_ROW(rows[2], LEAK_KEY_TRACEBACK, "y.py:1", 8, 1);
  ASSERT_ROW(rows[3], LEAK_KEY_TRACEBACK, "a.py:5", 8, 1);
  leak__free(rows);
  /* By line: a.py:5 holds 16, then the rest tie at 8 and sort by (filename, line) descending. */
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_LINENO, 0, &rows, &n), 0);
  ASSERT_EQ(n, 3);
  ASSERT_ROW(rows[0], LEAK_KEY_LINENO, "a.py:5", 16, 2);
  ASSERT_ROW(rows[1], LEAK_KEY_LINENO, "y.py:1", 8, 1);
  ASSERT_ROW(rows[2], LEAK_KEY_LINENO, "x.py:1", 8, 1);
  leak__free(rows);
  leak_snapshot_free(s);
  return 0;
}

TEST(snapshot_traceback_groups_ignore_total_nframe) {
  leak__snapshot *s = leak__snapshot_new(1);
  uint32_t string, frame, tb1, tb2;
  ASSERT_EQ(leak__snapshot_add_string(s, "deep.py", 7, &string), 0);
  ASSERT_EQ(leak__snapshot_add_frame(s, string, 3, &frame), 0);
  ASSERT_EQ(leak__snapshot_add_traceback(s, &frame, 1, 1, &tb1), 0);
  ASSERT_EQ(leak__snapshot_add_traceback(s, &frame, 1, 9, &tb2), 0);
  ASSERT_NE(tb1, tb2);
  ASSERT_EQ(leak__snapshot_add_trace(s, 0, 5, 1, tb1), 0);
  ASSERT_EQ(leak__snapshot_add_trace(s, 0, 7, 1, tb2), 0);
  ASSERT_EQ(leak__snapshot_add_traceback(s, &frame, 0, 0, &tb2), LEAK_EINVAL);
  ASSERT_EQ(leak__snapshot_add_traceback(s, &frame, 1, 0, &tb2), LEAK_EINVAL);
  ASSERT_EQ(leak__snapshot_add_trace(s, 0, 7, 0.0, tb1), LEAK_EINVAL);
  ASSERT_EQ(leak__snapshot_add_trace(s, 0, 7, 1, 99), LEAK_EINVAL);
  ASSERT_EQ(leak__snapshot_add_string(s, "a\0b", 3, &string), LEAK_EINVAL);
  leak__snapshot_finish(s);
  leak__stat_row *rows;
  size_t n;
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_TRACEBACK, 0, &rows, &n), 0);
  ASSERT_EQ(n, 1);
  ASSERT_ROW(rows[0], LEAK_KEY_TRACEBACK, "deep.py:3", 12, 2);
  leak__free(rows);
  leak_snapshot_free(s);
  return 0;
}

TEST(snapshot_sampled_weights_round_at_the_end) {
  leak__snapshot *s = leak__snapshot_new(1);
  for (int i = 0; i < 3; i++) add(s, 0, 10, 1.4, "s.py:1"); /* 3 * 1.4 = 4.2 blocks, 42 bytes */
  add(s, 0, 5, 1, "s.py:1");
  leak__snapshot_finish(s);
  leak__stat_row *rows;
  size_t n;
  ASSERT_EQ(leak__snapshot_statistics(s, LEAK_KEY_LINENO, 0, &rows, &n), 0);
  ASSERT_EQ(n, 1);
  ASSERT_ROW(rows[0], LEAK_KEY_LINENO, "s.py:1", 47, 5);
  leak__free(rows);
  leak_snapshot_free(s);
  return 0;
}

TEST(snapshot_compare_orders_by_absolute_change) {
  leak__snapshot *old = leak__snapshot_new(1), *now = leak__snapshot_new(1);
  add(old, 0, 100, 1, "same.py:1");
  add(old, 0, 500, 1, "gone.py:1");
  add(old, 0, 40, 1, "grow.py:1");
  add(now, 0, 100, 1, "same.py:1");
  add(now, 0, 40, 1, "grow.py:1");
  add(now, 0, 400, 1, "grow.py:1");
  add(now, 0, 30, 1, "new.py:2");
  leak__snapshot_finish(old);
  leak__snapshot_finish(now);
  leak__stat_row *rows;
  size_t n;
  ASSERT_EQ(leak__snapshot_compare(now, old, LEAK_KEY_LINENO, 0, &rows, &n), 0);
  ASSERT_EQ(n, 4);
  ASSERT_ROW(rows[0], LEAK_KEY_LINENO, "gone.py:1", 0, 0);
  ASSERT_EQ(rows[0].size_diff, -500);
  ASSERT_EQ(rows[0].count_diff, -1);
  ASSERT(rows[0].owner == old);
  ASSERT_ROW(rows[1], LEAK_KEY_LINENO, "grow.py:1", 440, 2);
  ASSERT_EQ(rows[1].size_diff, 400);
  ASSERT_EQ(rows[1].count_diff, 1);
  ASSERT_ROW(rows[2], LEAK_KEY_LINENO, "new.py:2", 30, 1);
  ASSERT_EQ(rows[2].size_diff, 30);
  ASSERT_ROW(rows[3], LEAK_KEY_LINENO, "same.py:1", 100, 1);
  ASSERT_EQ(rows[3].size_diff, 0);
  leak__free(rows);
  ASSERT_EQ(leak__snapshot_compare(now, old, LEAK_KEY_TRACEBACK, 1, &rows, &n), LEAK_EINVAL);
  /* The public API writes into the caller's buffer and stops at `max`. */
  leak_stat_diff diffs[2];
  ASSERT_EQ(leak_snapshot_compare(now, old, LEAK_KEY_FILENAME, 0, diffs, 2, &n), 0);
  ASSERT_EQ(n, 2);
  ASSERT(strcmp(diffs[0].filename, "gone.py") == 0);
  ASSERT_EQ(diffs[0].lineno, 0);
  ASSERT_EQ(diffs[1].size, 440);
  leak_stat top[8];
  ASSERT_EQ(leak_snapshot_top(now, LEAK_KEY_LINENO, 0, top, 8, &n), 0);
  ASSERT_EQ(n, 3);
  ASSERT(strcmp(top[0].filename, "grow.py") == 0);
  ASSERT_EQ(top[0].size, 440);
  ASSERT_EQ(top[0].count, 2);
  ASSERT_EQ(leak_snapshot_top(now, LEAK_KEY_LINENO, 0, NULL, 1, &n), LEAK_EINVAL);
  leak_snapshot_free(old);
  leak_snapshot_free(now);
  return 0;
}

/* Sum of the sizes of a snapshot's traces (cheap identity for filter results). */
static uint64_t total_size(const leak__snapshot *s) {
  uint64_t total = 0;
  for (size_t i = 0; i < s->ntraces; i++) total += s->traces[i].size;
  return total;
}

static uint64_t filtered(const leak__snapshot *s, const leak__snap_filter *filters, size_t n) {
  leak__snapshot *out;
  ASSERT_EQ(leak__snapshot_filter(s, filters, n, &out), 0);
  uint64_t total = total_size(out);
  leak_snapshot_free(out);
  return total;
}

TEST(snapshot_filters_follow_tracemalloc) {
  leak__snapshot *s = leak__snapshot_new(3);
  add(s, 0, 1, 1, "/lib/a.py:1 /app/main.py:5");
  add(s, 0, 2, 1, "/lib/a.pyc:2 /app/main.py:6");
  add(s, 0, 4, 1, "/app/b.py:3 /lib/a.py:1");
  add(s, 7, 8, 1, "/app/b.py:3");
  add(s, 7, 16, 1, "<frozen_importlib._bootstrap>:10");
  leak__snapshot_finish(s);
  leak__snap_filter f = {0};
  ASSERT_EQ(filtered(s, NULL, 0), 31);
  f.inclusive = 1;
  f.pattern = "/lib/*";
  ASSERT_EQ(filtered(s, &f, 1), 3); /* most recent frame only; .pyc normalised */
  f.pattern = "/lib/a.py";
  ASSERT_EQ(filtered(s, &f, 1), 3);
  f.has_lineno = 1;
  f.lineno = 2;
  ASSERT_EQ(filtered(s, &f, 1), 2);
  f.has_lineno = 0;
  f.all_frames = 1;
  ASSERT_EQ(filtered(s, &f, 1), 7); /* any frame */
  f.inclusive = 0;
  ASSERT_EQ(filtered(s, &f, 1), 24);
  f.all_frames = 0;
  f.pattern = "<frozen*";
  ASSERT_EQ(filtered(s, &f, 1), 15);
  /* Exclusive filter with a domain: drops only matching traces of that domain. */
  f.pattern = "/app/*";
  f.has_domain = 1;
  f.domain = 7;
  ASSERT_EQ(filtered(s, &f, 1), 23);
  /* Inclusive filter with a domain: keeps matching traces of that domain only. */
  f.inclusive = 1;
  ASSERT_EQ(filtered(s, &f, 1), 8);
  /* DomainFilter, and combining: any inclusive AND every exclusive. */
  leak__snap_filter two[2] = {{0}, {0}};
  two[0].is_domain_filter = 1;
  two[0].inclusive = 1;
  two[0].domain = 0;
  ASSERT_EQ(filtered(s, two, 1), 7);
  two[0].inclusive = 0;
  ASSERT_EQ(filtered(s, two, 1), 24);
  two[0].inclusive = 1;
  two[1].inclusive = 0;
  two[1].pattern = "/app/b.py";
  ASSERT_EQ(filtered(s, two, 2), 3);
  two[1].inclusive = 1;
  ASSERT_EQ(filtered(s, two, 2), 15); /* domain 0 OR most recent frame in b.py */
  /* Backslash is a literal character, and [seq] works as in fnmatch. */
  f = (leak__snap_filter){0};
  f.inclusive = 1;
  f.pattern = "/app/[ab].py";
  ASSERT_EQ(filtered(s, &f, 1), 12);
  leak_snapshot_free(s);
  return 0;
}

TEST(snapshot_filtered_snapshots_share_tables) {
  leak__snapshot *s = sample_snapshot(), *out;
  leak__snap_filter f = {0};
  f.inclusive = 1;
  f.pattern = "a.py";
  ASSERT_EQ(leak__snapshot_filter(s, &f, 1, &out), 0);
  ASSERT(out->tables == s->tables);
  leak_snapshot_free(s); /* the filtered one keeps the tables alive */
  leak__stat_row *rows;
  size_t n;
  ASSERT_EQ(leak__snapshot_statistics(out, LEAK_KEY_LINENO, 0, &rows, &n), 0);
  ASSERT_EQ(n, 2);
  ASSERT_ROW(rows[0], LEAK_KEY_LINENO, "a.py:1", 200, 2);
  leak__free(rows);
  leak_snapshot_free(out);
  return 0;
}

TEST(snapshot_out_of_memory_is_reported) {
  /* Fail the Nth allocation for every N until building and grouping get through: every path must
   * return LEAK_ENOMEM cleanly (ASan and valgrind builds check nothing leaks or is misused). */
  int succeeded = 0;
  for (long fail = 0; fail < 200 && !succeeded; fail++) {
    leak__alloc_fail_after(fail);
    leak__snapshot *s = leak__snapshot_new(2), *out = NULL;
    int rc = s ? 0 : LEAK_ENOMEM;
    for (int i = 0; rc == 0 && i < 40; i++) {
      char name[32];
      uint32_t string, frame, tb;
      snprintf(name, sizeof(name), "file%d.py", i % 7);
      rc = leak__snapshot_add_string(s, name, strlen(name), &string);
      if (rc == 0) rc = leak__snapshot_add_frame(s, string, i % 5, &frame);
      if (rc == 0) rc = leak__snapshot_add_traceback(s, &frame, 1, 1, &tb);
      if (rc == 0) rc = leak__snapshot_add_trace(s, 0, (uint64_t)i, 1, tb);
    }
    leak__stat_row *rows = NULL;
    size_t n;
    if (rc == 0) {
      leak__snapshot_finish(s);
      rc = leak__snapshot_statistics(s, LEAK_KEY_LINENO, 1, &rows, &n);
    }
    if (rc == 0) {
      leak__free(rows);
      rc = leak__snapshot_compare(s, s, LEAK_KEY_TRACEBACK, 0, &rows, &n);
    }
    if (rc == 0) {
      leak__free(rows);
      leak__snap_filter f = {0};
      f.pattern = "file1*";
      rc = leak__snapshot_filter(s, &f, 1, &out);
    }
    leak__alloc_fail_after(-1);
    ASSERT(rc == 0 || rc == LEAK_ENOMEM);
    succeeded = rc == 0;
    leak_snapshot_free(out);
    leak_snapshot_free(s);
  }
  ASSERT(succeeded);
  return 0;
}

TEST(snapshot_take_from_the_live_tracer) {
  /* The public C API end to end: start, allocate from Python, take, top-N into a caller buffer. */
  test_python_start();
  leak__snapshot *s = NULL;
  ASSERT_EQ(leak_snapshot_take(&s), LEAK_ENOTSTARTED);
  leak_tracer_options options = LEAK_TRACER_OPTIONS_INIT;
  options.nframe = 4;
  ASSERT_EQ(leak_tracer_start(&options), 0);
  ASSERT_EQ(test_python_run("def grow():\n"
                            "    return [bytes(4000) for _ in range(500)]\n"
                            "kept = grow()\n"),
            0);
  ASSERT_EQ(leak_snapshot_take(&s), 0);
  ASSERT_EQ(s->traceback_limit, 4);
  ASSERT_GE(leak_snapshot_trace_count(s), 500);
  leak_stat top[4];
  size_t n;
  ASSERT_EQ(leak_snapshot_top(s, LEAK_KEY_LINENO, 0, top, 4, &n), 0);
  ASSERT_GE(n, 1);
  ASSERT(strcmp(top[0].filename, "<string>") == 0);
  ASSERT_EQ(top[0].lineno, 2);
  ASSERT_GE(top[0].size, 500 * 4000);
  ASSERT_GE(top[0].count, 500);
  /* Cumulative by line: the caller's line 3 holds the same blocks. */
  ASSERT_EQ(leak_snapshot_top(s, LEAK_KEY_LINENO, 1, top, 4, &n), 0);
  int saw_caller = 0;
  for (size_t i = 0; i < n; i++) saw_caller |= top[i].lineno == 3 && top[i].size >= 500 * 4000;
  ASSERT(saw_caller);
  /* The snapshot outlives the tracer and its stack table. */
  ASSERT_EQ(leak_tracer_stop(), 0);
  ASSERT_EQ(leak_snapshot_top(s, LEAK_KEY_FILENAME, 0, top, 4, &n), 0);
  ASSERT(strcmp(top[0].filename, "<string>") == 0);
  leak_snapshot_free(s);
  return 0;
}

TEST(snapshot_take_resolves_many_lines_of_one_function) {
  /* 200 allocating lines in one function, far more than a take walks before it decodes the
   * function's line table; the lines are 300 apart and some allocations sit inside multi-line
   * calls, so the table has jumps of more than a byte both ways.  Every allocating line must come
   * out as its own row, on the line where `bytes(` is written. */
  test_python_start();
  leak_tracer_options options = LEAK_TRACER_OPTIONS_INIT;
  options.nframe = 1;
  ASSERT_EQ(leak_tracer_start(&options), 0);
  ASSERT_EQ(test_python_run("blank = '\\n' * 300\n"
                            "body = ''\n"
                            "for i in range(200):\n"
                            "    if i % 10 == 0:\n"
                            "        body += '    keep.append(max(b\"\",' + blank + '        bytes(%d)))\\n' % (100000 + i)\n"
                            "    else:\n"
                            "        body += '    keep.append(bytes(%d))\\n' % (100000 + i)\n"
                            "    if i % 7 == 0:\n"
                            "        body += blank\n"
                            "source = 'def many(keep):\\n' + body + '    return keep\\n'\n"
                            "expected = sorted(n + 1 for n, text in enumerate(source.split('\\n')) if 'bytes(' in text)\n"
                            "ns = {}\n"
                            "exec(compile(source, 'many_lines.py', 'exec'), ns)\n"
                            "kept = ns['many']([])\n"),
            0);
  leak__snapshot *s = NULL;
  ASSERT_EQ(leak_snapshot_take(&s), 0);
  static leak_stat rows[4096];
  size_t n;
  ASSERT_EQ(leak_snapshot_top(s, LEAK_KEY_LINENO, 0, rows, LEAK_ARRAY_SIZE(rows), &n), 0);
  ASSERT_LT(n, LEAK_ARRAY_SIZE(rows));
  PyObject *got = PyList_New(0);
  for (size_t i = 0; i < n; i++)
    if (strcmp(rows[i].filename, "many_lines.py") == 0 && rows[i].size >= 100000) {
      PyObject *line = PyLong_FromLong(rows[i].lineno);
      PyList_Append(got, line);
      Py_DECREF(line);
    }
  PyObject *main_module = PyImport_AddModule("__main__");
  PyObject_SetAttrString(main_module, "got", got);
  Py_DECREF(got);
  ASSERT_EQ(test_python_run("assert len(expected) == 200\n"
                            "assert sorted(got) == expected, (sorted(got), expected)\n"),
            0);
  ASSERT_EQ(leak_tracer_stop(), 0);
  leak_snapshot_free(s);
  return 0;
}
