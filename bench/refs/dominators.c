/* Benchmark: the dominator tree and retained sizes of a graph shaped like a heap of ~1M objects.
 *
 * The graph is what the heap walker would hand over for 200,000 class instances, each with an
 * attribute dict holding a list (a float and strings in it), a str and a reference to another
 * instance: ~1M nodes, ~3M edges, a module root, a shared class, shared interned key strings, all
 * under a virtual root.  It times libleak's Semi-NCA (leak__dominators_compute, then
 * leak__dominators_retained and leak__dominators_top) against a textbook Lengauer-Tarjan ("simple"
 * version, path compression without balancing) written here on the same input, checks that both
 * give the same tree, and prints CPU times (best of --repeat runs) and their ratio.
 *
 * --shuffle numbers the nodes in a random order (the worst case for memory locality).
 *
 * Usage: bench/refs/dominators [--instances N] [--repeat R] [--shuffle]    (from a build directory) */
#include "core/internal.h"
#include "refs/dominators.h"

#include <time.h>

/* ---- The heap-shaped graph -------------------------------------------------------------------- */

enum { VIRTUAL_ROOT, MODULE_DICT, CLASS, NONE, KEY_NAME, KEY_DATA, KEY_PEER, KEY_LABEL, INSTANCE_LIST, FIXED_NODES };
enum { PER_INSTANCE = 5 }; /* instance, its dict, its list, a float, a str */

typedef struct heap_graph {
  uint32_t node_count, edge_count;
  uint32_t *first_edge, *targets;
  uint64_t *sizes;
} heap_graph;

static uint64_t next_random(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return *state = x;
}

/* Appends the successors of one node; nodes are filled in order, so first_edge is built as we go. */
static void begin_node(heap_graph *g, uint32_t v) { g->first_edge[v] = g->edge_count; }
static void edge(heap_graph *g, uint32_t to) { g->targets[g->edge_count++] = to; }

static int build_heap_graph(heap_graph *g, uint32_t instances) {
  g->node_count = FIXED_NODES + PER_INSTANCE * instances;
  size_t max_edges = 16 + (size_t)instances * 15;
  g->first_edge = malloc(((size_t)g->node_count + 1) * sizeof(uint32_t));
  g->targets = malloc(max_edges * sizeof(uint32_t));
  g->sizes = malloc((size_t)g->node_count * sizeof(uint64_t));
  if (!g->first_edge || !g->targets || !g->sizes) return -1;
  g->edge_count = 0;
  uint64_t state = 0x2545F4914F6CDD1Dull;
  static const uint64_t fixed_sizes[FIXED_NODES] = {0, 4696, 1072, 16, 53, 53, 53, 54, 0};
  for (uint32_t v = 0; v < FIXED_NODES; v++) g->sizes[v] = fixed_sizes[v];
  g->sizes[INSTANCE_LIST] = 56 + 8 * (uint64_t)instances;
  begin_node(g, VIRTUAL_ROOT); /* the classified roots: a module, the builtins' None */
  edge(g, MODULE_DICT), edge(g, NONE);
  begin_node(g, MODULE_DICT); /* app.items = [...]; app.Item = class */
  edge(g, INSTANCE_LIST), edge(g, CLASS), edge(g, KEY_NAME);
  begin_node(g, CLASS);
  edge(g, KEY_NAME), edge(g, KEY_DATA), edge(g, KEY_PEER), edge(g, MODULE_DICT);
  for (uint32_t v = NONE; v < INSTANCE_LIST; v++) begin_node(g, v);
  begin_node(g, INSTANCE_LIST);
  for (uint32_t i = 0; i < instances; i++) edge(g, FIXED_NODES + PER_INSTANCE * i);
  for (uint32_t i = 0; i < instances; i++) {
    uint32_t instance = FIXED_NODES + PER_INSTANCE * i, dict = instance + 1, list = instance + 2,
             number = instance + 3, text = instance + 4;
    uint32_t peer = FIXED_NODES + PER_INSTANCE * (uint32_t)(next_random(&state) % instances);
    uint32_t previous = i > 0 ? instance - PER_INSTANCE : instance;
    begin_node(g, instance); /* the instance: its dict and its class */
    edge(g, dict), edge(g, CLASS);
    begin_node(g, dict); /* {'name': str, 'data': list, 'peer': instance} */
    edge(g, KEY_NAME), edge(g, text), edge(g, KEY_DATA), edge(g, list), edge(g, KEY_PEER), edge(g, peer);
    begin_node(g, list); /* [float, str, None, 'label', previous instance] */
    edge(g, number), edge(g, text), edge(g, NONE), edge(g, KEY_LABEL), edge(g, previous);
    begin_node(g, number);
    begin_node(g, text);
    g->sizes[instance] = 56, g->sizes[dict] = 232, g->sizes[list] = 96, g->sizes[number] = 24;
    g->sizes[text] = 49 + i % 16;
  }
  g->first_edge[g->node_count] = g->edge_count;
  return 0;
}

/* Renumbers the nodes in a random order (the root too), for the worst case of memory locality: a heap
 * walker numbers objects roughly in allocation order, which keeps neighbours close; this does not. */
static int shuffle_graph(heap_graph *g, uint32_t *root) {
  uint32_t n = g->node_count;
  uint32_t *new_number = malloc((size_t)n * sizeof(uint32_t)), *old_number = malloc((size_t)n * sizeof(uint32_t));
  uint32_t *first = malloc(((size_t)n + 1) * sizeof(uint32_t)), *targets = malloc((size_t)g->edge_count * 4 + 4);
  uint64_t *sizes = malloc((size_t)n * sizeof(uint64_t));
  if (!new_number || !old_number || !first || !targets || !sizes) return -1;
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (uint32_t v = 0; v < n; v++) old_number[v] = v;
  for (uint32_t v = n - 1; v > 0; v--) {
    uint32_t j = (uint32_t)(next_random(&state) % (v + 1)), swap = old_number[v];
    old_number[v] = old_number[j], old_number[j] = swap;
  }
  for (uint32_t v = 0; v < n; v++) new_number[old_number[v]] = v;
  uint32_t e = 0;
  for (uint32_t v = 0; v < n; v++) {
    uint32_t old = old_number[v];
    first[v] = e;
    sizes[v] = g->sizes[old];
    for (uint32_t k = g->first_edge[old]; k < g->first_edge[old + 1]; k++) targets[e++] = new_number[g->targets[k]];
  }
  first[n] = e;
  *root = new_number[*root];
  free(g->first_edge), free(g->targets), free(g->sizes), free(new_number), free(old_number);
  g->first_edge = first, g->targets = targets, g->sizes = sizes;
  return 0;
}

/* ---- Lengauer-Tarjan, the textbook "simple" version, for comparison --------------------------- */

/* Same conventions as libleak's: preorder numbers inside, iterative search and compression. */
static int lengauer_tarjan(const heap_graph *g, uint32_t root, uint32_t *idom_out) {
  uint32_t n = g->node_count;
  const uint32_t *first = g->first_edge, *targets = g->targets;
  size_t bytes = (size_t)n * sizeof(uint32_t);
  uint32_t *number = idom_out, *vertex = malloc(bytes), *parent = malloc(bytes), *semi = malloc(bytes),
           *label = malloc(bytes), *ancestor = malloc(bytes), *path = malloc(bytes), *idom = malloc(bytes),
           *bucket_head = malloc(bytes), *bucket_next = malloc(bytes), *pred_first = calloc((size_t)n + 1, 4);
  if (!vertex || !parent || !semi || !label || !ancestor || !path || !idom || !bucket_head || !bucket_next ||
      !pred_first)
    return -1;
  /* depth-first numbering */
  for (uint32_t v = 0; v < n; v++) number[v] = UINT32_MAX;
  uint32_t *stack_node = label, *stack_cursor = semi, count = 1;
  size_t depth = 1;
  number[root] = 0, vertex[0] = root, parent[0] = 0, stack_node[0] = root, stack_cursor[0] = first[root];
  while (depth > 0) {
    uint32_t v = stack_node[depth - 1], cursor = stack_cursor[depth - 1];
    if (cursor == first[v + 1]) {
      depth--;
      continue;
    }
    stack_cursor[depth - 1] = cursor + 1;
    uint32_t t = targets[cursor];
    if (number[t] != UINT32_MAX) continue;
    number[t] = count, vertex[count] = t, parent[count] = number[v], count++;
    stack_node[depth] = t, stack_cursor[depth] = first[t], depth++;
  }
  /* predecessors */
  for (uint32_t i = 0; i < count; i++)
    for (uint32_t e = first[vertex[i]]; e < first[vertex[i] + 1]; e++)
      if (number[targets[e]]) pred_first[number[targets[e]] + 1]++;
  for (uint32_t i = 0; i < count; i++) pred_first[i + 1] += pred_first[i];
  uint32_t *preds = malloc((size_t)(pred_first[count] + 1) * sizeof(uint32_t));
  if (!preds) return -1;
  memcpy(ancestor, pred_first, (size_t)count * sizeof(uint32_t));
  for (uint32_t i = 0; i < count; i++)
    for (uint32_t e = first[vertex[i]]; e < first[vertex[i] + 1]; e++)
      if (number[targets[e]]) preds[ancestor[number[targets[e]]]++] = i;
  for (uint32_t i = 0; i < count; i++) {
    semi[i] = label[i] = i, ancestor[i] = parent[i], bucket_head[i] = UINT32_MAX;
  }
  /* semidominators, buckets, and the first pass of immediate dominators; node w is linked once done,
   * so "linked" is "numbered above the node being processed" */
  for (uint32_t w = count - 1; w > 0; w--) {
    uint32_t least = parent[w];
    for (uint32_t e = pred_first[w]; e < pred_first[w + 1]; e++) {
      uint32_t v = preds[e], candidate;
      if (v <= w) {
        candidate = v;
      } else {
        size_t top = 0;
        uint32_t x = v;
        while (ancestor[x] > w) path[top++] = x, x = ancestor[x];
        while (top > 0) {
          uint32_t y = path[--top], a = ancestor[y];
          if (semi[label[a]] < semi[label[y]]) label[y] = label[a];
          ancestor[y] = ancestor[a];
        }
        candidate = semi[label[v]];
      }
      if (candidate < least) least = candidate;
    }
    semi[w] = least;
    bucket_next[w] = bucket_head[least], bucket_head[least] = w;
    /* LINK(parent[w], w) is implicit; now empty parent[w]'s bucket */
    uint32_t p = parent[w];
    for (uint32_t v = bucket_head[p]; v != UINT32_MAX; v = bucket_next[v]) {
      uint32_t u = v;
      if (ancestor[v] > w - 1) { /* EVAL(v) with w linked */
        size_t top = 0;
        uint32_t x = v;
        while (ancestor[x] > w - 1) path[top++] = x, x = ancestor[x];
        while (top > 0) {
          uint32_t y = path[--top], a = ancestor[y];
          if (semi[label[a]] < semi[label[y]]) label[y] = label[a];
          ancestor[y] = ancestor[a];
        }
      }
      u = v > w - 1 ? label[v] : v;
      idom[v] = semi[u] < semi[v] ? u : p;
    }
    bucket_head[p] = UINT32_MAX;
  }
  idom[0] = 0;
  for (uint32_t w = 1; w < count; w++)
    if (idom[w] != semi[w]) idom[w] = idom[idom[w]];
  for (uint32_t i = 0; i < count; i++) idom_out[vertex[i]] = vertex[idom[i]];
  free(vertex), free(parent), free(semi), free(label), free(ancestor), free(path), free(idom);
  free(bucket_head), free(bucket_next), free(pred_first), free(preds);
  return 0;
}

/* ---- Timing -------------------------------------------------------------------------------------- */

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  uint32_t instances = 200000;
  int repeat = 3, shuffle = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--instances") == 0 && i + 1 < argc) instances = (uint32_t)strtoul(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) repeat = atoi(argv[++i]);
    else if (strcmp(argv[i], "--shuffle") == 0) shuffle = 1;
    else {
      fprintf(stderr, "usage: %s [--instances N] [--repeat R] [--shuffle]\n", argv[0]);
      return 2;
    }
  }
  if (instances == 0 || repeat < 1) return 2;
  heap_graph g;
  uint32_t root = VIRTUAL_ROOT;
  if (build_heap_graph(&g, instances) < 0 || (shuffle && shuffle_graph(&g, &root) < 0)) return 1;
  uint32_t *idom = malloc((size_t)g.node_count * sizeof(uint32_t));
  uint32_t *idom_lt = malloc((size_t)g.node_count * sizeof(uint32_t));
  uint64_t *retained = malloc((size_t)g.node_count * sizeof(uint64_t));
  uint32_t top[20];
  if (!idom || !idom_lt || !retained) return 1;
  leak__csr_graph csr = {g.node_count, g.first_edge, g.targets};

  double best_tree = 1e9, best_retained = 1e9, best_total = 1e9, best_lt = 1e9;
  size_t top_count = 0;
  for (int run = 0; run < repeat; run++) {
    double start = cpu_seconds();
    if (leak__dominators_compute(&csr, root, idom, NULL) != 0) return 1;
    double tree_done = cpu_seconds();
    if (leak__dominators_retained(g.node_count, root, idom, g.sizes, retained) != 0) return 1;
    top_count = leak__dominators_top(g.node_count, root, idom, retained, top, 20);
    double end = cpu_seconds();
    if (tree_done - start < best_tree) best_tree = tree_done - start;
    if (end - tree_done < best_retained) best_retained = end - tree_done;
    if (end - start < best_total) best_total = end - start;
    start = cpu_seconds();
    if (lengauer_tarjan(&g, root, idom_lt) != 0) return 1;
    end = cpu_seconds();
    if (end - start < best_lt) best_lt = end - start;
  }
  uint32_t differences = 0;
  for (uint32_t v = 0; v < g.node_count; v++) differences += idom[v] != idom_lt[v];

  printf("heap-shaped graph: %u instances, %u nodes, %u edges, numbered %s\n", instances, g.node_count,
         g.edge_count, shuffle ? "at random" : "in allocation order");
  printf("scratch memory of the dominator tree: %.1f MB\n",
         ((double)g.node_count * 28 + (double)g.edge_count * 4) / (1024.0 * 1024.0));
  printf("libleak Semi-NCA dominator tree:        %7.3f s CPU (best of %d)\n", best_tree, repeat);
  printf("  + retained sizes and top 20:          %7.3f s CPU\n", best_retained);
  printf("  = total (target <= 2 s):              %7.3f s CPU\n", best_total);
  printf("textbook Lengauer-Tarjan (simple), same graph: %7.3f s CPU\n", best_lt);
  printf("ratio Semi-NCA / Lengauer-Tarjan (tree only): %.2f\n", best_tree / best_lt);
  printf("trees identical: %s (%u nodes differ)\n", differences ? "NO" : "yes", differences);
  if (top_count > 0)
    printf("largest retainer: node %u, %llu bytes of %llu\n", top[0], (unsigned long long)retained[top[0]],
           (unsigned long long)retained[root]);
  free(idom), free(idom_lt), free(retained), free(g.first_edge), free(g.targets), free(g.sizes);
  return differences ? 1 : 0;
}
