/* Dominator trees, retained sizes and top retainers: textbook graphs, diamonds, cycles, unreachable
 * nodes, long chains (no recursion), random graphs checked against a brute-force definition (d
 * dominates v when removing d makes v unreachable), bad input and every out-of-memory path. */
#include "core/internal.h"
#include "refs/dominators.h"
#include "runner.h"

#define U LEAK_DOMINATOR_UNREACHABLE

/* A small graph built edge by edge, turned into CSR by graph_csr. */
typedef struct edge_list {
  uint32_t n, count;
  uint32_t from[4096], to[4096];
  uint32_t first[257], targets[4096];
} edge_list;

static void add_edge(edge_list *g, uint32_t from, uint32_t to) {
  ASSERT(g->count < 4096);
  g->from[g->count] = from;
  g->to[g->count] = to;
  g->count++;
}

/* CSR of the edges so far, in insertion order per node (counting sort keeps it stable). */
static leak__csr_graph graph_csr(edge_list *g) {
  ASSERT(g->n <= 256);
  memset(g->first, 0, sizeof(g->first));
  for (uint32_t e = 0; e < g->count; e++) g->first[g->from[e] + 1]++;
  for (uint32_t v = 0; v < g->n; v++) g->first[v + 1] += g->first[v];
  uint32_t fill[257];
  memcpy(fill, g->first, sizeof(fill));
  for (uint32_t e = 0; e < g->count; e++) g->targets[fill[g->from[e]]++] = g->to[e];
  leak__csr_graph csr = {g->n, g->first, g->targets};
  return csr;
}

/* Nodes reachable from root when `removed` (may be U: none) is taken out of the graph. */
static void reach_without(const leak__csr_graph *g, uint32_t root, uint32_t removed, unsigned char *seen) {
  uint32_t stack[256], depth = 0;
  memset(seen, 0, g->node_count);
  if (root == removed) return;
  seen[root] = 1;
  stack[depth++] = root;
  while (depth > 0) {
    uint32_t v = stack[--depth];
    for (uint32_t e = g->first_edge[v]; e < g->first_edge[v + 1]; e++) {
      uint32_t t = g->targets[e];
      if (t == removed || seen[t]) continue;
      seen[t] = 1;
      stack[depth++] = t;
    }
  }
}

/* The definition, slowly: dominates[d][v] when every path from root to v goes through d. */
static void brute_dominators(const leak__csr_graph *g, uint32_t root, unsigned char dominates[256][256],
                             unsigned char *reachable) {
  reach_without(g, root, U, reachable);
  for (uint32_t d = 0; d < g->node_count; d++) {
    unsigned char seen[256];
    reach_without(g, root, d, seen);
    for (uint32_t v = 0; v < g->node_count; v++) dominates[d][v] = reachable[v] && reachable[d] && !seen[v];
  }
}

/* Checks idom[], retained[] (with sizes v * 7 + 1) and the top list of `g` against the brute force. */
static void check_against_brute_force(edge_list *edges, uint32_t root) {
  leak__csr_graph g = graph_csr(edges);
  uint32_t n = g.node_count;
  static unsigned char dominates[256][256];
  unsigned char reachable[256];
  brute_dominators(&g, root, dominates, reachable);
  uint32_t idom[256];
  uint64_t sizes[256], retained[256];
  ASSERT_EQ(leak__dominators_compute(&g, root, idom, NULL), 0);
  for (uint32_t v = 0; v < n; v++) sizes[v] = v * 7 + 1;
  ASSERT_EQ(leak__dominators_retained(n, root, idom, sizes, retained), 0);
  for (uint32_t v = 0; v < n; v++) {
    if (!reachable[v]) {
      ASSERT_EQ(idom[v], U);
      ASSERT_EQ(retained[v], 0);
      continue;
    }
    if (v == root) {
      ASSERT_EQ(idom[v], root);
    } else {
      /* the immediate dominator is the strict dominator that has the most dominators itself */
      uint32_t best = U, best_count = 0;
      for (uint32_t d = 0; d < n; d++) {
        if (d == v || !dominates[d][v]) continue;
        uint32_t count = 0;
        for (uint32_t x = 0; x < n; x++) count += dominates[x][d];
        if (best == U || count > best_count) best = d, best_count = count;
      }
      ASSERT_EQ(idom[v], best);
    }
    uint64_t expected = 0;
    for (uint32_t x = 0; x < n; x++)
      if (dominates[v][x]) expected += sizes[x];
    ASSERT_EQ(retained[v], expected);
  }
  /* top: the reachable non-root nodes by retained size, largest first, ties by lower number */
  uint32_t top[256];
  size_t count = leak__dominators_top(n, root, idom, retained, top, 5);
  uint32_t candidates = 0;
  for (uint32_t v = 0; v < n; v++) candidates += reachable[v] && v != root;
  ASSERT_EQ(count, candidates < 5 ? candidates : 5);
  for (size_t i = 0; i < count; i++) {
    ASSERT(top[i] != root && reachable[top[i]]);
    if (i > 0) ASSERT(retained[top[i - 1]] > retained[top[i]] || (retained[top[i - 1]] == retained[top[i]] &&
                                                                   top[i - 1] < top[i]));
    uint32_t better = 0; /* nodes ranked above top[i] must all be listed before it */
    for (uint32_t v = 0; v < n; v++)
      if (v != root && reachable[v] &&
          (retained[v] > retained[top[i]] || (retained[v] == retained[top[i]] && v < top[i])))
        better++;
    ASSERT_EQ(better, i);
  }
}

TEST(dominators_lengauer_tarjan_paper_example) {
  /* The flow graph of Lengauer and Tarjan's 1979 paper: R=0, A..L = 1..12. */
  enum { R, A, B, C, D, E, F, G, H, I, J, K, L };
  static edge_list g;
  g.n = 13;
  uint32_t pairs[][2] = {{R, A}, {R, B}, {R, C}, {A, D}, {B, A}, {B, D}, {B, E}, {C, F}, {C, G}, {D, L},
                         {E, H}, {F, I}, {G, I}, {G, J}, {H, E}, {H, K}, {I, K}, {J, I}, {K, I}, {K, R},
                         {L, H}};
  for (size_t i = 0; i < LEAK_ARRAY_SIZE(pairs); i++) add_edge(&g, pairs[i][0], pairs[i][1]);
  leak__csr_graph csr = graph_csr(&g);
  uint32_t idom[13];
  ASSERT_EQ(leak__dominators_compute(&csr, R, idom, NULL), 0);
  uint32_t expected[13] = {R, R, R, R, R, R, C, C, R, R, G, R, D};
  for (int v = 0; v < 13; v++) ASSERT_EQ(idom[v], expected[v]);
  check_against_brute_force(&g, R);
  return 0;
}

TEST(dominators_diamond_cycle_and_unreachable) {
  static edge_list g;
  /* 0 -> {1, 2} -> 3 (diamond); 3 -> 4 -> 5 -> 4 (cycle); 6 -> 3 unreachable; 7 isolated; 5 -> 5 */
  g.n = 8;
  add_edge(&g, 0, 1), add_edge(&g, 0, 2), add_edge(&g, 1, 3), add_edge(&g, 2, 3), add_edge(&g, 3, 4);
  add_edge(&g, 4, 5), add_edge(&g, 5, 4), add_edge(&g, 6, 3), add_edge(&g, 5, 5), add_edge(&g, 1, 3);
  leak__csr_graph csr = graph_csr(&g);
  uint32_t idom[8];
  ASSERT_EQ(leak__dominators_compute(&csr, 0, idom, NULL), 0);
  uint32_t expected[8] = {0, 0, 0, 0, 3, 4, U, U};
  for (int v = 0; v < 8; v++) ASSERT_EQ(idom[v], expected[v]);
  uint64_t sizes[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000}, retained[8];
  ASSERT_EQ(leak__dominators_retained(8, 0, idom, sizes, retained), 0);
  uint64_t expected_retained[8] = {111111, 10, 100, 111000, 110000, 100000, 0, 0};
  for (int v = 0; v < 8; v++) ASSERT_EQ(retained[v], expected_retained[v]);
  /* without sizes, every node counts 1: the number of nodes each one keeps alive */
  ASSERT_EQ(leak__dominators_retained(8, 0, idom, NULL, retained), 0);
  ASSERT_EQ(retained[0], 6);
  ASSERT_EQ(retained[3], 3);
  uint32_t top[8];
  ASSERT_EQ(leak__dominators_top(8, 0, idom, retained, top, 8), 5); /* no root, no unreachable */
  ASSERT_EQ(top[0], 3);
  ASSERT_EQ(top[1], 4);
  ASSERT_EQ(top[2], 1); /* 1, 2 and 5 all retain 1: by number */
  ASSERT_EQ(top[3], 2);
  ASSERT_EQ(top[4], 5);
  ASSERT_EQ(leak__dominators_top(8, 0, idom, retained, top, 0), 0);
  /* the same graph from another root */
  ASSERT_EQ(leak__dominators_compute(&csr, 6, idom, NULL), 0);
  uint32_t from6[8] = {U, U, U, 6, 3, 4, 6, U};
  for (int v = 0; v < 8; v++) ASSERT_EQ(idom[v], from6[v]);
  check_against_brute_force(&g, 0);
  check_against_brute_force(&g, 6);
  return 0;
}

TEST(dominators_single_node_and_no_edges) {
  uint32_t first[4] = {0, 0, 0, 0};
  leak__csr_graph g = {3, first, NULL};
  uint32_t idom[3];
  ASSERT_EQ(leak__dominators_compute(&g, 1, idom, NULL), 0);
  ASSERT_EQ(idom[0], U);
  ASSERT_EQ(idom[1], 1);
  ASSERT_EQ(idom[2], U);
  uint64_t retained[3];
  uint64_t sizes[3] = {5, 6, 7};
  ASSERT_EQ(leak__dominators_retained(3, 1, idom, sizes, retained), 0);
  ASSERT_EQ(retained[1], 6);
  uint32_t top[3];
  ASSERT_EQ(leak__dominators_top(3, 1, idom, retained, top, 3), 0);
  return 0;
}

/* xorshift64: a fixed sequence, so a failure can be replayed. */
static uint64_t next_random(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return *state = x;
}

TEST(dominators_random_graphs_match_brute_force) {
  static edge_list g;
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int round = 0; round < 400; round++) {
    memset(&g, 0, sizeof(g));
    g.n = 1 + (uint32_t)(next_random(&state) % 60);
    /* sparse to dense: some graphs mostly unreachable, some nearly complete */
    uint32_t edges = (uint32_t)(next_random(&state) % (g.n * (1 + round % 5) + 1));
    for (uint32_t e = 0; e < edges; e++) {
      uint32_t from = (uint32_t)(next_random(&state) % g.n);
      /* half the rounds favour edges forward in number, which makes long chains and deep trees */
      uint32_t to = (round & 1) ? (uint32_t)((from + 1 + next_random(&state) % 3) % g.n)
                                : (uint32_t)(next_random(&state) % g.n);
      add_edge(&g, from, to);
    }
    check_against_brute_force(&g, (uint32_t)(next_random(&state) % g.n));
  }
  return 0;
}

/* A chain of a million nodes in both directions of numbering, and a million-node star: the search and
 * the path compression must not recurse, and retained sizes must add up along the chain. */
TEST(dominators_million_node_chain_without_recursion) {
  enum { N = 1000000 };
  uint32_t *first = malloc((N + 1) * sizeof(uint32_t)), *targets = malloc(2 * N * sizeof(uint32_t));
  uint32_t *idom = malloc(N * sizeof(uint32_t));
  uint64_t *retained = malloc(N * sizeof(uint64_t));
  ASSERT(first && targets && idom && retained);
  /* chain N-1 -> N-2 -> ... -> 0, plus an edge back from each node to the root N-1 */
  uint32_t e = 0;
  for (uint32_t v = 0; v < N; v++) {
    first[v] = e;
    if (v > 0) targets[e++] = v - 1;
    targets[e++] = N - 1;
  }
  first[N] = e;
  leak__csr_graph g = {N, first, targets};
  ASSERT_EQ(leak__dominators_compute(&g, N - 1, idom, NULL), 0);
  ASSERT_EQ(idom[N - 1], N - 1);
  for (uint32_t v = 0; v + 1 < N; v++) ASSERT_EQ(idom[v], v + 1);
  ASSERT_EQ(leak__dominators_retained(N, N - 1, idom, NULL, retained), 0);
  for (uint32_t v = 0; v < N; v++) ASSERT_EQ(retained[v], v + 1);
  uint32_t top[3];
  ASSERT_EQ(leak__dominators_top(N, N - 1, idom, retained, top, 3), 3);
  ASSERT_EQ(top[0], N - 2);
  ASSERT_EQ(top[2], N - 4);
  /* the chain again, with a shortcut from the root to the middle: everything below the middle is now
   * dominated by the root only through the middle node */
  e = 0;
  for (uint32_t v = 0; v < N; v++) {
    first[v] = e;
    if (v > 0) targets[e++] = v - 1;
    if (v == N - 1) targets[e++] = N / 2;
  }
  first[N] = e;
  ASSERT_EQ(leak__dominators_compute(&g, N - 1, idom, NULL), 0);
  ASSERT_EQ(idom[N / 2], N - 1);
  ASSERT_EQ(idom[N / 2 - 1], N / 2);
  ASSERT_EQ(idom[N / 2 + 1], N / 2 + 2);
  free(first), free(targets), free(idom), free(retained);
  return 0;
}

TEST(dominators_refuse_bad_graphs) {
  uint32_t idom[3];
  uint32_t first[4] = {0, 1, 2, 2}, targets[2] = {1, 2};
  leak__csr_graph g = {3, first, targets};
  ASSERT_EQ(leak__dominators_compute(&g, 3, idom, NULL), LEAK_EINVAL);
  ASSERT_EQ(leak__dominators_compute(NULL, 0, idom, NULL), LEAK_EINVAL);
  ASSERT_EQ(leak__dominators_compute(&g, 0, NULL, NULL), LEAK_EINVAL);
  targets[1] = 3; /* out of range */
  ASSERT_EQ(leak__dominators_compute(&g, 0, idom, NULL), LEAK_EINVAL);
  targets[1] = 2;
  first[1] = 2, first[2] = 1; /* decreasing */
  ASSERT_EQ(leak__dominators_compute(&g, 0, idom, NULL), LEAK_EINVAL);
  first[1] = 1, first[2] = 2;
  first[0] = 1; /* must start at 0 */
  ASSERT_EQ(leak__dominators_compute(&g, 0, idom, NULL), LEAK_EINVAL);
  first[0] = 0;
  leak__csr_graph no_targets = {3, first, NULL};
  ASSERT_EQ(leak__dominators_compute(&no_targets, 0, idom, NULL), LEAK_EINVAL);
  ASSERT_EQ(leak__dominators_compute(&g, 0, idom, NULL), 0);

  /* idom arrays that are not trees */
  uint64_t retained[3];
  uint32_t cycle[3] = {0, 2, 1};
  ASSERT_EQ(leak__dominators_retained(3, 0, cycle, NULL, retained), LEAK_EINVAL);
  uint32_t self[3] = {0, 1, 0};
  ASSERT_EQ(leak__dominators_retained(3, 0, self, NULL, retained), LEAK_EINVAL);
  uint32_t out_of_range[3] = {0, 7, 0};
  ASSERT_EQ(leak__dominators_retained(3, 0, out_of_range, NULL, retained), LEAK_EINVAL);
  uint32_t under_unreachable[3] = {0, 2, U};
  ASSERT_EQ(leak__dominators_retained(3, 0, under_unreachable, NULL, retained), LEAK_EINVAL);
  uint32_t root_not_self[3] = {1, 0, 0};
  ASSERT_EQ(leak__dominators_retained(3, 0, root_not_self, NULL, retained), LEAK_EINVAL);
  ASSERT_EQ(leak__dominators_retained(3, 3, idom, NULL, retained), LEAK_EINVAL);
  return 0;
}

/* Records the calls of the progress callback. */
typedef struct progress_log {
  int calls;
  int last_phase;
  int phases_finished;
  int out_of_order;
} progress_log;

static void record_progress(leak__dominators_phase phase, uint64_t done, uint64_t total, void *data) {
  progress_log *log = data;
  if ((int)phase < log->last_phase || done > total) log->out_of_order++;
  log->last_phase = (int)phase;
  if (done == total) log->phases_finished++;
  log->calls++;
}

TEST(dominators_report_progress_phase_by_phase) {
  enum { N = 200000 };
  uint32_t *first = malloc((N + 1) * sizeof(uint32_t)), *targets = malloc(N * sizeof(uint32_t));
  uint32_t *idom = malloc(N * sizeof(uint32_t));
  ASSERT(first && targets && idom);
  for (uint32_t v = 0; v < N; v++) first[v] = v, targets[v] = (v + 1) % N; /* a ring */
  first[N] = N;
  leak__csr_graph g = {N, first, targets};
  progress_log log = {0, 0, 0, 0};
  leak__dominators_options options = LEAK_DOMINATORS_OPTIONS_INIT;
  options.progress = record_progress;
  options.progress_data = &log;
  ASSERT_EQ(leak__dominators_compute(&g, 0, idom, &options), 0);
  ASSERT_EQ(log.out_of_order, 0);
  ASSERT_EQ(log.last_phase, LEAK_DOMINATORS_IDOM);
  ASSERT_GE(log.phases_finished, 4);
  ASSERT_GT(log.calls, 4 + 4); /* a few reports inside each long phase too */
  ASSERT_EQ(idom[N - 1], N - 2);
  ASSERT_EQ(strcmp(leak__dominators_phase_name(LEAK_DOMINATORS_SEMI), "semidominators"), 0);
  free(first), free(targets), free(idom);
  return 0;
}

TEST(dominators_out_of_memory_everywhere) {
  static edge_list g;
  g.n = 13;
  uint32_t pairs[][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 4}, {2, 1}, {2, 4}, {2, 5}, {3, 6}, {3, 7}, {4, 12},
                         {5, 8}, {6, 9}, {7, 9}, {7, 10}, {8, 5}, {8, 11}, {9, 11}, {10, 9}, {11, 9}, {11, 0},
                         {12, 8}};
  for (size_t i = 0; i < LEAK_ARRAY_SIZE(pairs); i++) add_edge(&g, pairs[i][0], pairs[i][1]);
  leak__csr_graph csr = graph_csr(&g);
  uint32_t idom[13], expected[13];
  uint64_t retained[13], expected_retained[13];
  ASSERT_EQ(leak__dominators_compute(&csr, 0, expected, NULL), 0);
  ASSERT_EQ(leak__dominators_retained(13, 0, expected, NULL, expected_retained), 0);
  int failures = 0;
  for (long allowed = 0;; allowed++) {
    leak__alloc_fail_after(allowed);
    int rc = leak__dominators_compute(&csr, 0, idom, NULL);
    leak__alloc_fail_after(-1);
    if (rc == 0) break;
    ASSERT_EQ(rc, LEAK_ENOMEM);
    failures++;
  }
  ASSERT_GE(failures, 7); /* six arrays up front, then the predecessor index */
  for (int v = 0; v < 13; v++) ASSERT_EQ(idom[v], expected[v]);
  failures = 0;
  for (long allowed = 0;; allowed++) {
    leak__alloc_fail_after(allowed);
    int rc = leak__dominators_retained(13, 0, idom, NULL, retained);
    leak__alloc_fail_after(-1);
    if (rc == 0) break;
    ASSERT_EQ(rc, LEAK_ENOMEM);
    failures++;
  }
  ASSERT_EQ(failures, 2);
  for (int v = 0; v < 13; v++) ASSERT_EQ(retained[v], expected_retained[v]);
  return 0;
}
