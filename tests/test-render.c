/* Pictures rendered by Graphviz in process: DOT that cgraph parses back with the nodes, edges and
 * escaped labels given, SVG, PNG and PDF by their signatures, the same bytes for the same picture,
 * formats from suffixes, files written or refused (nothing left behind), sizes for people, bad input
 * and out-of-memory paths. */
#include "core/internal.h"
#include "refs/render.h"
#include "runner.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gvc.h>

/* The sample of the brief: module app.cache -> dict['k42'] -> Session.data -> bytes (5.0 MiB), with a
 * fan-in of three referrers and a collapsed node into the Session. */
static leak__picture *sample_picture(void) {
  leak__picture *p = leak__picture_new();
  ASSERT(p != NULL);
  uint32_t root, cache, session, data, blob, collapsed, other;
  ASSERT_EQ(leak__picture_add_node(p, "module app.cache", NULL, LEAK_PICTURE_SIZE_UNKNOWN, LEAK_PICTURE_SIZE_UNKNOWN,
                                   LEAK_PICTURE_ROOT_MODULE, &root),
            0);
  ASSERT_EQ(leak__picture_add_node(p, "dict", "{'k42': <Session>}", 4696, 5253000, LEAK_PICTURE_PLAIN, &cache), 0);
  ASSERT_EQ(leak__picture_add_node(p, "app.Session", "<Session 42>", 56, 5243400, LEAK_PICTURE_PLAIN, &session), 0);
  ASSERT_EQ(leak__picture_add_node(p, "dict", NULL, 232, 5243300, LEAK_PICTURE_PLAIN, &data), 0);
  ASSERT_EQ(leak__picture_add_node(p, "bytes", "b'\\x00\\x00'", 5242880, 5242880, LEAK_PICTURE_TARGET, &blob), 0);
  ASSERT_EQ(leak__picture_add_node(p, "+990 more referrers", NULL, LEAK_PICTURE_SIZE_UNKNOWN,
                                   LEAK_PICTURE_SIZE_UNKNOWN, LEAK_PICTURE_COLLAPSED, &collapsed),
            0);
  ASSERT_EQ(leak__picture_add_node(p, "list", "[<Session 42>]", 64, LEAK_PICTURE_SIZE_UNKNOWN,
                                   LEAK_PICTURE_HIGHLIGHTED, &other),
            0);
  ASSERT_EQ(blob, 4);
  ASSERT_EQ(leak__picture_add_edge(p, root, cache, "CACHE"), 0);
  ASSERT_EQ(leak__picture_add_edge(p, cache, session, "['k42']"), 0);
  ASSERT_EQ(leak__picture_add_edge(p, session, data, "__dict__"), 0);
  ASSERT_EQ(leak__picture_add_edge(p, data, blob, "data"), 0);
  ASSERT_EQ(leak__picture_add_edge(p, collapsed, session, "_peer"), 0);
  ASSERT_EQ(leak__picture_add_edge(p, other, session, "[0]"), 0);
  ASSERT_EQ(leak__picture_add_edge(p, other, session, NULL), 0); /* parallel, unlabelled */
  ASSERT_EQ(leak__picture_set_caption(p, "Why is bytes alive?"), 0);
  return p;
}

/* Renders and checks the call succeeded; the caller frees *data. */
static char *render(const leak__picture *p, leak__picture_format format, size_t *size) {
  char *data = NULL;
  ASSERT_EQ(leak__picture_render(p, format, &data, size), 0);
  ASSERT(data != NULL && *size > 0);
  return data;
}

TEST(render_dot_parses_back_with_nodes_edges_and_labels) {
  leak__picture *p = sample_picture();
  size_t size;
  char *dot = render(p, LEAK_PICTURE_DOT, &size);
  ASSERT_EQ(strlen(dot), size);
  Agraph_t *g = agmemread(dot);
  ASSERT(g != NULL);
  ASSERT(agisdirected(g));
  ASSERT_EQ(agnnodes(g), 7);
  ASSERT_EQ(agnedges(g), 7);
  Agnode_t *root = agfindnode(g, "n0"), *blob = agfindnode(g, "n4"), *data = agfindnode(g, "n3");
  ASSERT(root && blob && data);
  ASSERT_STR_CONTAINS(agget(root, "label"), "module app.cache");
  ASSERT_STR_CONTAINS(agget(root, "label"), "root: module");
  ASSERT(aghtmlstr(agget(blob, "label")));
  ASSERT_STR_CONTAINS(agget(blob, "label"), "5.0 MiB");
  ASSERT_STR_CONTAINS(agget(blob, "label"), "the object asked about");
  ASSERT_STR_CONTAINS(agget(agfindnode(g, "n1"), "label"), "4.6 KiB");
  ASSERT_EQ(strcmp(agget(blob, "color"), "#d62728"), 0);
  Agedge_t *into_blob = agfstin(g, blob);
  ASSERT(into_blob != NULL && aghead(into_blob) == blob && agtail(into_blob) == data);
  ASSERT_STR_CONTAINS(agget(into_blob, "label"), "data");
  ASSERT_STR_CONTAINS(agget(g, "label"), "Why is bytes alive?");
  int edges_into_session = 0;
  for (Agedge_t *e = agfstin(g, agfindnode(g, "n2")); e; e = agnxtin(g, e)) edges_into_session++;
  ASSERT_EQ(edges_into_session, 4);
  agclose(g);
  leak__free(dot);
  leak__picture_free(p);
  return 0;
}

TEST(render_escapes_markup_backslashes_controls_and_bad_utf8) {
  leak__picture *p = leak__picture_new();
  uint32_t a;
  ASSERT_EQ(leak__picture_add_node(p, "<b>&\"x\"", "a\\nb\x01\xff\xc3\xa9", 1, 2, LEAK_PICTURE_PLAIN, &a), 0);
  ASSERT_EQ(leak__picture_add_edge(p, a, a, "['\\N']"), 0);
  size_t size;
  char *dot = render(p, LEAK_PICTURE_DOT, &size);
  Agraph_t *g = agmemread(dot);
  ASSERT(g != NULL);
  const char *label = agget(agfindnode(g, "n0"), "label");
  ASSERT_STR_CONTAINS(label, "&lt;b&gt;&amp;&quot;x&quot;");
  ASSERT_STR_CONTAINS(label, "a\\nb ?\xc3\xa9"); /* control -> space, bad byte -> ?, UTF-8 kept */
  agclose(g);
  char *svg = render(p, LEAK_PICTURE_SVG, &size);
  ASSERT_STR_CONTAINS(svg, "[&#39;\\N&#39;]"); /* the label as text, not Graphviz's \N escape */
  leak__free(dot);
  leak__free(svg);
  leak__picture_free(p);
  return 0;
}

TEST(render_long_texts_are_shortened) {
  leak__picture *p = leak__picture_new();
  char long_repr[500];
  memset(long_repr, 'x', sizeof(long_repr) - 1);
  long_repr[sizeof(long_repr) - 1] = '\0';
  ASSERT_EQ(leak__picture_add_node(p, "list", long_repr, 1, 1, LEAK_PICTURE_PLAIN, NULL), 0);
  size_t size;
  char *dot = render(p, LEAK_PICTURE_DOT, &size);
  ASSERT(strstr(dot, long_repr) == NULL);
  ASSERT_STR_CONTAINS(dot, "xxxxxxxxxx\xe2\x80\xa6"); /* ends with an ellipsis */
  leak__free(dot);
  leak__picture_free(p);
  return 0;
}

TEST(render_svg_png_pdf_by_signature_and_same_bytes_twice) {
  leak__picture *p = sample_picture();
  leak__picture *again = sample_picture();
  size_t size, size_again;
  char *svg = render(p, LEAK_PICTURE_SVG, &size);
  ASSERT_STR_CONTAINS(svg, "<svg");
  ASSERT_STR_CONTAINS(svg, "</svg>");
  ASSERT_STR_CONTAINS(svg, "module app.cache");
  char *svg_again = render(again, LEAK_PICTURE_SVG, &size_again);
  ASSERT(size == size_again && memcmp(svg, svg_again, size) == 0);

  char *png = render(p, LEAK_PICTURE_PNG, &size);
  ASSERT(size > 1000 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
  char *png_again = render(again, LEAK_PICTURE_PNG, &size_again);
  ASSERT(size == size_again && memcmp(png, png_again, size) == 0);

  char *pdf = render(p, LEAK_PICTURE_PDF, &size);
  ASSERT(memcmp(pdf, "%PDF-", 5) == 0);
  ASSERT(memmem(pdf, size, "%%EOF", 5) != NULL);
  ASSERT(memmem(pdf, size, "/CreationDate (D:20000101000000", 31) != NULL);
  char *pdf_again = render(again, LEAK_PICTURE_PDF, &size_again);
  ASSERT(size == size_again && memcmp(pdf, pdf_again, size) == 0);

  char *dot = render(p, LEAK_PICTURE_DOT, &size);
  char *dot_again = render(again, LEAK_PICTURE_DOT, &size_again);
  ASSERT(size == size_again && memcmp(dot, dot_again, size) == 0);
  leak__free(svg), leak__free(svg_again), leak__free(png), leak__free(png_again);
  leak__free(pdf), leak__free(pdf_again), leak__free(dot), leak__free(dot_again);
  leak__picture_free(p);
  leak__picture_free(again);
  return 0;
}

TEST(render_empty_picture) {
  leak__picture *p = leak__picture_new();
  size_t size;
  char *svg = render(p, LEAK_PICTURE_SVG, &size);
  ASSERT_STR_CONTAINS(svg, "</svg>");
  leak__free(svg);
  leak__picture_free(p);
  return 0;
}

TEST(render_formats_from_suffixes_and_names) {
  leak__picture_format f;
  ASSERT_EQ(leak__picture_format_from_path("a/b/graph.png", &f), 0);
  ASSERT_EQ(f, LEAK_PICTURE_PNG);
  ASSERT_EQ(leak__picture_format_from_path("graph.SVG", &f), 0);
  ASSERT_EQ(f, LEAK_PICTURE_SVG);
  ASSERT_EQ(leak__picture_format_from_path("x.y.pdf", &f), 0);
  ASSERT_EQ(f, LEAK_PICTURE_PDF);
  ASSERT_EQ(leak__picture_format_from_path("g.gv", &f), 0);
  ASSERT_EQ(f, LEAK_PICTURE_DOT);
  ASSERT_EQ(leak__picture_format_from_path("g.dot", &f), 0);
  ASSERT_EQ(f, LEAK_PICTURE_DOT);
  ASSERT_EQ(leak__picture_format_from_path("g.jpg", &f), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_format_from_path("png", &f), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_format_from_path(".png", &f), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_format_from_path("dir.png/graph", &f), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_format_from_path("graph.", &f), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_format_from_name("Pdf", &f), 0);
  ASSERT_EQ(f, LEAK_PICTURE_PDF);
  ASSERT_EQ(leak__picture_format_from_name("jpeg", &f), LEAK_EINVAL);
  leak__picture_style style;
  for (int i = 0; i < LEAK_PICTURE_STYLE_COUNT; i++) {
    ASSERT_EQ(leak__picture_style_from_name(leak__picture_style_name((leak__picture_style)i), &style), 0);
    ASSERT_EQ(style, i);
  }
  ASSERT_EQ(leak__picture_style_from_name("module", &style), 0);
  ASSERT_EQ(style, LEAK_PICTURE_ROOT_MODULE);
  ASSERT_EQ(leak__picture_style_from_name("root", &style), LEAK_EINVAL);
  return 0;
}

TEST(render_sizes_for_people) {
  char out[32];
  ASSERT_EQ(strcmp(leak__format_size(0, out, sizeof(out)), "0 B"), 0);
  ASSERT_EQ(strcmp(leak__format_size(1023, out, sizeof(out)), "1023 B"), 0);
  ASSERT_EQ(strcmp(leak__format_size(1024, out, sizeof(out)), "1.0 KiB"), 0);
  ASSERT_EQ(strcmp(leak__format_size(1536, out, sizeof(out)), "1.5 KiB"), 0);
  ASSERT_EQ(strcmp(leak__format_size(5u << 20, out, sizeof(out)), "5.0 MiB"), 0);
  ASSERT_EQ(strcmp(leak__format_size(1024 * 1024 - 1, out, sizeof(out)), "1.0 MiB"), 0); /* not 1024.0 KiB */
  ASSERT_EQ(strcmp(leak__format_size(3ull << 30, out, sizeof(out)), "3.0 GiB"), 0);
  ASSERT_EQ(strcmp(leak__format_size(UINT64_MAX - 1, out, sizeof(out)), "16.0 EiB"), 0);
  return 0;
}

/* A scratch directory of this test process, removed by the caller. */
static void scratch_dir(char *dir, size_t size) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, size, "%s/libleak-render-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  ASSERT(mkdtemp(dir) != NULL);
}

TEST(render_write_files_by_suffix_or_refuse_leaving_nothing) {
  leak__picture *p = sample_picture();
  char dir[256], path[400];
  scratch_dir(dir, sizeof(dir));
  struct stat st;

  snprintf(path, sizeof(path), "%s/graph.svg", dir);
  ASSERT_EQ(leak__picture_write(p, path, LEAK_PICTURE_FORMAT_COUNT), 0);
  char *written = test_read_file(path);
  size_t size;
  char *svg = render(p, LEAK_PICTURE_SVG, &size);
  ASSERT(written != NULL && strlen(written) == size && memcmp(written, svg, size) == 0);
  free(written);
  leak__free(svg);
  ASSERT_EQ(unlink(path), 0);

  /* an explicit format wins over the suffix */
  snprintf(path, sizeof(path), "%s/graph.txt", dir);
  ASSERT_EQ(leak__picture_write(p, path, LEAK_PICTURE_DOT), 0);
  written = test_read_file(path);
  ASSERT(written != NULL && strncmp(written, "digraph", 7) == 0);
  free(written);
  ASSERT_EQ(unlink(path), 0);

  snprintf(path, sizeof(path), "%s/graph.jpg", dir);
  ASSERT_EQ(leak__picture_write(p, path, LEAK_PICTURE_FORMAT_COUNT), LEAK_EINVAL);
  ASSERT(stat(path, &st) != 0 && errno == ENOENT);
  snprintf(path, sizeof(path), "%s/missing/graph.png", dir);
  ASSERT_EQ(leak__picture_write(p, path, LEAK_PICTURE_FORMAT_COUNT), -ENOENT);
  snprintf(path, sizeof(path), "%s/a.png", dir); /* a directory where the file should go */
  ASSERT_EQ(mkdir(path, 0700), 0);
  ASSERT_EQ(leak__picture_write(p, path, LEAK_PICTURE_FORMAT_COUNT), -EISDIR);
  ASSERT_EQ(rmdir(path), 0);
  if (access("/dev/full", W_OK) == 0) /* the disk fills up while writing: no half file stays */
    ASSERT_EQ(leak__picture_write(p, "/dev/full", LEAK_PICTURE_PNG), -ENOSPC);
  ASSERT_EQ(leak__picture_write(p, "", LEAK_PICTURE_PNG), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_write(NULL, path, LEAK_PICTURE_PNG), LEAK_EINVAL);
  ASSERT_EQ(rmdir(dir), 0); /* empty: nothing was left behind */
  leak__picture_free(p);
  return 0;
}

TEST(render_refuses_bad_input) {
  leak__picture *p = leak__picture_new();
  uint32_t a;
  ASSERT_EQ(leak__picture_add_node(p, NULL, NULL, 0, 0, LEAK_PICTURE_PLAIN, &a), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_add_node(p, "x", NULL, 0, 0, LEAK_PICTURE_STYLE_COUNT, &a), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_add_node(NULL, "x", NULL, 0, 0, LEAK_PICTURE_PLAIN, &a), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_add_node(p, "x", NULL, 0, 0, LEAK_PICTURE_PLAIN, &a), 0);
  ASSERT_EQ(leak__picture_add_edge(p, a, 1, "y"), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_add_edge(p, 1, a, "y"), LEAK_EINVAL);
  char *data = (char *)1;
  size_t size;
  ASSERT_EQ(leak__picture_render(p, LEAK_PICTURE_FORMAT_COUNT, &data, &size), LEAK_EINVAL);
  ASSERT(data == NULL);
  ASSERT_EQ(leak__picture_render(NULL, LEAK_PICTURE_SVG, &data, &size), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_set_caption(NULL, "x"), LEAK_EINVAL);
  ASSERT_EQ(leak__picture_set_caption(p, NULL), 0);
  leak__picture_free(p);
  leak__picture_free(NULL);
  return 0;
}

TEST(render_out_of_memory_while_building_and_rendering) {
  int failures = 0;
  for (long allowed = 0;; allowed++) {
    leak__alloc_fail_after(allowed);
    leak__picture *p = leak__picture_new();
    int rc = p ? 0 : LEAK_ENOMEM;
    uint32_t a = 0, b = 0;
    if (rc == 0) rc = leak__picture_add_node(p, "dict", "{}", 64, 64, LEAK_PICTURE_PLAIN, &a);
    if (rc == 0) rc = leak__picture_add_node(p, "list", "[]", 56, 56, LEAK_PICTURE_TARGET, &b);
    if (rc == 0) rc = leak__picture_add_edge(p, a, b, "items");
    if (rc == 0) rc = leak__picture_set_caption(p, "caption");
    char *dot = NULL;
    size_t size = 0;
    if (rc == 0) rc = leak__picture_render(p, LEAK_PICTURE_DOT, &dot, &size);
    leak__alloc_fail_after(-1);
    if (rc == 0) {
      ASSERT_STR_CONTAINS(dot, "items");
      leak__free(dot);
      leak__picture_free(p);
      break;
    }
    ASSERT_EQ(rc, LEAK_ENOMEM);
    ASSERT(dot == NULL);
    leak__picture_free(p);
    failures++;
  }
  ASSERT_GE(failures, 8);
  return 0;
}
