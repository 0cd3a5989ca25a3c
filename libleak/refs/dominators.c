/* Dominator trees by Semi-NCA, retained sizes over them, and the largest retainers.
 *
 * Semi-NCA (Georgiadis, Tarjan and Werneck, "Finding dominators in practice", 2006) computes
 * Lengauer-Tarjan's semidominators with the same path-compressed forest, then finds each immediate
 * dominator as the nearest common ancestor of the node's semidominator and its DFS parent, walking up
 * the partly built dominator tree.  It needs fewer arrays than Lengauer-Tarjan (no buckets, no second
 * pass) and is as fast or faster on graphs shaped like heaps, which are shallow and wide.
 *
 * Everything is iterative: the depth-first search keeps its own stack, and path compression records
 * the path in an array before rewriting it, so a chain of millions of nodes costs memory, not C stack.
 * Inside the computation nodes are named by their depth-first (preorder) number: 0 is the root, and
 * every node's DFS parent, semidominator and dominators have smaller numbers than the node. */
#include "core/internal.h"
#include "refs/dominators.h"

#include <string.h>

/* How many nodes pass between two progress reports (a power of two, so the test is a mask). */
#define PROGRESS_INTERVAL 65536u

const char *leak__dominators_phase_name(leak__dominators_phase phase) {
  switch (phase) {
    case LEAK_DOMINATORS_SEARCH: return "searching";
    case LEAK_DOMINATORS_PREDECESSORS: return "reversing edges";
    case LEAK_DOMINATORS_SEMI: return "semidominators";
    case LEAK_DOMINATORS_IDOM: return "dominators";
  }
  return "unknown";
}

/* Tells the caller's callback how far a phase got, if there is a callback. */
static void report(const leak__dominators_options *options, leak__dominators_phase phase, uint64_t done,
                   uint64_t total) {
  if (options && options->progress) options->progress(phase, done, total, options->progress_data);
}

/* Checks the CSR arrays once up front, so the search can index without checks and bad input is
 * refused before any output is written. */
static int check_graph(const leak__csr_graph *graph) {
  uint32_t n = graph->node_count;
  const uint32_t *first = graph->first_edge;
  if (first == NULL || first[0] != 0) return LEAK_EINVAL;
  for (uint32_t v = 0; v < n; v++)
    if (first[v + 1] < first[v]) return LEAK_EINVAL;
  uint32_t edges = first[n];
  if (edges > 0 && graph->targets == NULL) return LEAK_EINVAL;
  for (uint32_t e = 0; e < edges; e++)
    if (graph->targets[e] >= n) return LEAK_EINVAL;
  return 0;
}

/* The scratch arrays of one computation, indexed by preorder number unless said otherwise. */
typedef struct scratch {
  uint32_t *vertex;     /* preorder number -> node */
  uint32_t *parent;     /* DFS tree parent; becomes the immediate dominator in the last phase */
  uint32_t *semi;       /* semidominator; the DFS stack's edge cursors during the search */
  uint32_t *label;      /* node of least semidominator on the compressed path; the DFS stack's nodes */
  uint32_t *ancestor;   /* forest link, compressed as paths are evaluated */
  uint32_t *path;       /* the path being compressed */
  uint32_t *pred_first; /* CSR index of predecessors, reachable_count + 1 entries */
  uint32_t *preds;      /* predecessors' preorder numbers */
} scratch;

static void scratch_free(scratch *s) {
  leak__free(s->vertex);
  leak__free(s->parent);
  leak__free(s->semi);
  leak__free(s->label);
  leak__free(s->ancestor);
  leak__free(s->path);
  leak__free(s->pred_first);
  leak__free(s->preds);
}

/* Numbers the nodes reachable from root in depth-first preorder (number[] is indexed by node and holds
 * LEAK_DOMINATOR_UNREACHABLE for nodes never reached), recording each node's DFS parent.  The
 * semidominator theory needs a true depth-first tree, so the stack holds an edge cursor per node and a
 * node is numbered when first seen from its parent.  Returns how many nodes were reached. */
static uint32_t depth_first_number(const leak__csr_graph *graph, uint32_t root, uint32_t *number, scratch *s,
                                   const leak__dominators_options *options) {
  const uint32_t *first = graph->first_edge, *targets = graph->targets;
  uint32_t *stack_node = s->label, *stack_cursor = s->semi;
  for (uint32_t v = 0; v < graph->node_count; v++) number[v] = LEAK_DOMINATOR_UNREACHABLE;
  uint32_t count = 1;
  number[root] = 0;
  s->vertex[0] = root;
  s->parent[0] = 0;
  size_t depth = 1;
  stack_node[0] = root;
  stack_cursor[0] = first[root];
  while (depth > 0) {
    uint32_t v = stack_node[depth - 1];
    uint32_t cursor = stack_cursor[depth - 1];
    if (cursor == first[v + 1]) {
      depth--;
      continue;
    }
    stack_cursor[depth - 1] = cursor + 1;
    uint32_t t = targets[cursor];
    if (number[t] != LEAK_DOMINATOR_UNREACHABLE) continue;
    number[t] = count;
    s->vertex[count] = t;
    s->parent[count] = number[v];
    count++;
    if ((count & (PROGRESS_INTERVAL - 1)) == 0) report(options, LEAK_DOMINATORS_SEARCH, count, graph->node_count);
    stack_node[depth] = t;
    stack_cursor[depth] = first[t];
    depth++;
  }
  report(options, LEAK_DOMINATORS_SEARCH, count, count);
  return count;
}

/* Builds the predecessor lists of the reachable nodes, in preorder numbers, as CSR (edges into the
 * root are left out: the root has no semidominator to compute).  Returns 0 or LEAK_ENOMEM. */
static int build_predecessors(const leak__csr_graph *graph, const uint32_t *number, uint32_t reachable,
                              scratch *s, const leak__dominators_options *options) {
  const uint32_t *first = graph->first_edge, *targets = graph->targets;
  s->pred_first = leak__calloc((size_t)reachable + 1, sizeof(uint32_t));
  if (s->pred_first == NULL) return LEAK_ENOMEM;
  uint32_t *pred_first = s->pred_first;
  for (uint32_t i = 0; i < reachable; i++) {
    uint32_t v = s->vertex[i];
    for (uint32_t e = first[v]; e < first[v + 1]; e++) {
      uint32_t t = number[targets[e]];
      if (t != 0) pred_first[t + 1]++;
    }
  }
  for (uint32_t i = 0; i < reachable; i++) pred_first[i + 1] += pred_first[i];
  s->preds = leak__malloc((size_t)(pred_first[reachable] ? pred_first[reachable] : 1) * sizeof(uint32_t));
  if (s->preds == NULL) return LEAK_ENOMEM;
  uint32_t *fill = s->ancestor; /* free until the semidominator phase */
  memcpy(fill, pred_first, (size_t)reachable * sizeof(uint32_t));
  for (uint32_t i = 0; i < reachable; i++) {
    uint32_t v = s->vertex[i];
    for (uint32_t e = first[v]; e < first[v + 1]; e++) {
      uint32_t t = number[targets[e]];
      if (t != 0) s->preds[fill[t]++] = i;
    }
    if (((i + 1) & (PROGRESS_INTERVAL - 1)) == 0) report(options, LEAK_DOMINATORS_PREDECESSORS, i + 1, reachable);
  }
  report(options, LEAK_DOMINATORS_PREDECESSORS, reachable, reachable);
  return 0;
}

/* Lengauer-Tarjan's EVAL while node w is being processed: the forest holds exactly the nodes numbered
 * above w, each linked to its DFS parent, so a node is a forest root when its number is <= w.  For a
 * linked node v, compresses the path from v to just below its forest root and returns the node of least
 * semidominator on it.  The path goes into s->path first and is rewritten from the top down, which is
 * what the recursive formulation does on its way back. */
static uint32_t eval_linked(scratch *s, uint32_t v, uint32_t w) {
  uint32_t *ancestor = s->ancestor, *label = s->label, *semi = s->semi;
  if (ancestor[v] <= w) return label[v];
  size_t top = 0;
  uint32_t x = v;
  while (ancestor[x] > w) {
    s->path[top++] = x;
    x = ancestor[x];
  }
  while (top > 0) {
    uint32_t y = s->path[--top];
    uint32_t a = ancestor[y];
    if (semi[label[a]] < semi[label[y]]) label[y] = label[a];
    ancestor[y] = ancestor[a];
  }
  return label[v];
}

/* Semidominators, highest preorder number first: semi(w) is the least number reachable into w from a
 * lower-numbered node, directly or through nodes numbered above w. */
static void compute_semidominators(scratch *s, uint32_t reachable, const leak__dominators_options *options) {
  uint32_t *semi = s->semi, *label = s->label;
  for (uint32_t i = 0; i < reachable; i++) {
    semi[i] = i;
    label[i] = i;
    s->ancestor[i] = s->parent[i];
  }
  for (uint32_t w = reachable - 1; w > 0; w--) {
    uint32_t least = s->parent[w];
    for (uint32_t e = s->pred_first[w]; e < s->pred_first[w + 1]; e++) {
      uint32_t v = s->preds[e];
      uint32_t candidate = v <= w ? v : semi[eval_linked(s, v, w)];
      if (candidate < least) least = candidate;
    }
    semi[w] = least;
    uint32_t done = reachable - w;
    if ((done & (PROGRESS_INTERVAL - 1)) == 0) report(options, LEAK_DOMINATORS_SEMI, done, reachable);
  }
  report(options, LEAK_DOMINATORS_SEMI, reachable, reachable);
}

/* Immediate dominators, lowest preorder number first: idom(w) is the nearest common ancestor of
 * semi(w) and parent(w) in the dominator tree built so far, i.e. the first node at or above parent(w)
 * whose number is not above semi(w).  Rewrites s->parent in place into the immediate dominators. */
static void compute_immediate_dominators(scratch *s, uint32_t reachable, const leak__dominators_options *options) {
  uint32_t *idom = s->parent;
  for (uint32_t w = 1; w < reachable; w++) {
    uint32_t d = idom[w];
    while (d > s->semi[w]) d = idom[d];
    idom[w] = d;
    if ((w & (PROGRESS_INTERVAL - 1)) == 0) report(options, LEAK_DOMINATORS_IDOM, w, reachable);
  }
  report(options, LEAK_DOMINATORS_IDOM, reachable, reachable);
}

int leak__dominators_compute(const leak__csr_graph *graph, uint32_t root, uint32_t *idom,
                             const leak__dominators_options *options) {
  if (graph == NULL || idom == NULL || root >= graph->node_count) return LEAK_EINVAL;
  int rc = check_graph(graph);
  if (rc < 0) return rc;
  size_t bytes = (size_t)graph->node_count * sizeof(uint32_t);
  scratch s = {0};
  s.vertex = leak__malloc(bytes);
  s.parent = leak__malloc(bytes);
  s.semi = leak__malloc(bytes);
  s.label = leak__malloc(bytes);
  s.ancestor = leak__malloc(bytes);
  s.path = leak__malloc(bytes);
  if (!s.vertex || !s.parent || !s.semi || !s.label || !s.ancestor || !s.path) {
    scratch_free(&s);
    return LEAK_ENOMEM;
  }
  /* idom[] holds each node's preorder number until the very end. */
  uint32_t reachable = depth_first_number(graph, root, idom, &s, options);
  rc = build_predecessors(graph, idom, reachable, &s, options);
  if (rc < 0) {
    scratch_free(&s);
    return rc;
  }
  compute_semidominators(&s, reachable, options);
  compute_immediate_dominators(&s, reachable, options);
  /* Preorder numbers back to node numbers; unreached nodes keep their mark. */
  for (uint32_t i = 0; i < reachable; i++) idom[s.vertex[i]] = s.vertex[s.parent[i]];
  scratch_free(&s);
  return 0;
}

/* Sums sizes bottom-up in the dominator tree without knowing its order: counts each node's children,
 * starts from the leaves, and hands a node's total to its dominator once all its children are in
 * (Kahn's topological order).  A node that never becomes ready sits on a cycle: idom[] was no tree. */
int leak__dominators_retained(uint32_t node_count, uint32_t root, const uint32_t *idom, const uint64_t *sizes,
                              uint64_t *retained) {
  if (idom == NULL || retained == NULL || root >= node_count || idom[root] != root) return LEAK_EINVAL;
  uint32_t reachable = 0;
  for (uint32_t v = 0; v < node_count; v++) {
    uint32_t d = idom[v];
    if (d == LEAK_DOMINATOR_UNREACHABLE) continue;
    if (d >= node_count || idom[d] == LEAK_DOMINATOR_UNREACHABLE || (d == v && v != root)) return LEAK_EINVAL;
    reachable++;
  }
  uint32_t *pending = leak__calloc(node_count, sizeof(uint32_t));
  uint32_t *ready = leak__malloc((size_t)node_count * sizeof(uint32_t));
  if (pending == NULL || ready == NULL) {
    leak__free(pending);
    leak__free(ready);
    return LEAK_ENOMEM;
  }
  for (uint32_t v = 0; v < node_count; v++)
    if (idom[v] != LEAK_DOMINATOR_UNREACHABLE && v != root) pending[idom[v]]++;
  uint32_t head = 0, tail = 0;
  for (uint32_t v = 0; v < node_count; v++) {
    if (idom[v] == LEAK_DOMINATOR_UNREACHABLE) {
      retained[v] = 0;
      continue;
    }
    retained[v] = sizes ? sizes[v] : 1;
    if (pending[v] == 0) ready[tail++] = v;
  }
  while (head < tail) {
    uint32_t v = ready[head++];
    if (v == root) continue;
    uint32_t d = idom[v];
    retained[d] += retained[v];
    if (--pending[d] == 0) ready[tail++] = d;
  }
  leak__free(pending);
  leak__free(ready);
  return tail == reachable ? 0 : LEAK_EINVAL;
}

/* True when a should rank below b: smaller retained size, or the same size and a higher number. */
static int ranks_below(const uint64_t *retained, uint32_t a, uint32_t b) {
  return retained[a] < retained[b] || (retained[a] == retained[b] && a > b);
}

/* Restores the heap below position i of a heap whose top is its lowest-ranked entry. */
static void sift_down(const uint64_t *retained, uint32_t *heap, size_t count, size_t i) {
  for (;;) {
    size_t lowest = i, left = 2 * i + 1, right = left + 1;
    if (left < count && ranks_below(retained, heap[left], heap[lowest])) lowest = left;
    if (right < count && ranks_below(retained, heap[right], heap[lowest])) lowest = right;
    if (lowest == i) return;
    uint32_t swap = heap[i];
    heap[i] = heap[lowest];
    heap[lowest] = swap;
    i = lowest;
  }
}

/* Keeps the best `limit` nodes seen so far in a heap whose top is the weakest of them, so each node
 * costs one comparison unless it displaces that weakest; then heap-sorts them best first in place. */
size_t leak__dominators_top(uint32_t node_count, uint32_t root, const uint32_t *idom, const uint64_t *retained,
                            uint32_t *top, size_t limit) {
  if (idom == NULL || retained == NULL || top == NULL || limit == 0) return 0;
  size_t count = 0;
  for (uint32_t v = 0; v < node_count; v++) {
    if (v == root || idom[v] == LEAK_DOMINATOR_UNREACHABLE) continue;
    if (count < limit) {
      size_t i = count++;
      top[i] = v;
      while (i > 0 && ranks_below(retained, top[i], top[(i - 1) / 2])) {
        uint32_t swap = top[i];
        top[i] = top[(i - 1) / 2];
        top[(i - 1) / 2] = swap;
        i = (i - 1) / 2;
      }
    } else if (ranks_below(retained, top[0], v)) {
      top[0] = v;
      sift_down(retained, top, count, 0);
    }
  }
  for (size_t end = count; end > 1; end--) {
    uint32_t swap = top[0];
    top[0] = top[end - 1];
    top[end - 1] = swap;
    sift_down(retained, top, end - 1, 0);
  }
  return count;
}
