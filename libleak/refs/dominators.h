/* Dominator trees and retained sizes of a directed graph.
 *
 * A node d dominates v when every path from the root to v passes through d; the immediate dominator
 * of v is its closest strict dominator.  In a heap graph rooted in a virtual node above every root,
 * freeing v's immediate dominator frees v, so the memory a node keeps alive (its retained size) is
 * its own size plus the retained sizes of the nodes it immediately dominates.
 *
 * These functions take a plain graph and know nothing of Python: the heap walker turns the heap into
 * node numbers and successor lists in CSR form (first_edge[v] .. first_edge[v + 1] - 1 index the
 * successors of v in targets[]).  Every output array is the caller's; scratch memory comes from
 * leak__malloc and is freed before returning.  Nothing here recurses, so graphs of millions of nodes
 * and chains of millions of links are fine. */
#ifndef LIBLEAK_REFS_DOMINATORS_H
#define LIBLEAK_REFS_DOMINATORS_H

#include <stddef.h>
#include <stdint.h>

/* idom[v] of a node the root cannot reach. */
#define LEAK_DOMINATOR_UNREACHABLE UINT32_MAX

/* A graph in CSR form: node_count nodes numbered 0 .. node_count - 1, first_edge of node_count + 1
 * entries (non-decreasing, first_edge[0] == 0), targets of first_edge[node_count] entries, each a node
 * number.  Duplicate edges and self-loops are allowed. */
typedef struct leak__csr_graph {
  uint32_t node_count;
  const uint32_t *first_edge;
  const uint32_t *targets;
} leak__csr_graph;

/* Phases reported to the progress callback, in the order they run. */
typedef enum leak__dominators_phase {
  LEAK_DOMINATORS_SEARCH,       /* depth-first numbering from the root */
  LEAK_DOMINATORS_PREDECESSORS, /* the reverse edges of the reachable part */
  LEAK_DOMINATORS_SEMI,         /* semidominators, highest number first */
  LEAK_DOMINATORS_IDOM,         /* immediate dominators, lowest number first */
} leak__dominators_phase;

/* Called now and then during a long computation (about every 2^16 nodes, and at the end of each
 * phase with done == total) so that a caller can show progress; it must not call back into the
 * computation. */
typedef void (*leak__dominators_progress_fn)(leak__dominators_phase phase, uint64_t done, uint64_t total,
                                             void *data);

typedef struct leak__dominators_options {
  leak__dominators_progress_fn progress; /* NULL: no progress reports */
  void *progress_data;                   /* handed to progress */
} leak__dominators_options;

#define LEAK_DOMINATORS_OPTIONS_INIT {NULL, NULL}

/* A short English name of a phase ("searching"), static storage. */
const char *leak__dominators_phase_name(leak__dominators_phase phase);

/* Computes the immediate dominator of every node of `graph` reachable from `root` into idom[], which
 * the caller provides with graph->node_count entries: idom[root] == root, idom[v] is a node number
 * for every other reachable node, and LEAK_DOMINATOR_UNREACHABLE for the rest.  options may be NULL.
 * Uses the Semi-NCA algorithm (Lengauer-Tarjan's semidominators, then nearest common ancestors),
 * iteratively, with about 32 bytes of scratch per node and 4 per edge.
 * Returns 0; LEAK_EINVAL when root >= node_count, first_edge is not a valid CSR index or a target is
 * out of range (idom[] then is unspecified); LEAK_ENOMEM when scratch memory ran out (idom[]
 * unspecified, nothing leaked). */
int leak__dominators_compute(const leak__csr_graph *graph, uint32_t root, uint32_t *idom,
                             const leak__dominators_options *options);

/* Fills retained[v] (caller's array of node_count entries) with the retained size of every node of
 * the dominator tree idom[] (as leak__dominators_compute gives it, rooted at `root`): sizes[v] plus
 * the retained sizes of the nodes whose immediate dominator is v.  retained[root] is the total of all
 * reachable nodes; a node marked unreachable gets 0 (nothing reachable keeps it alive).  Sums wrap
 * only past 2^64 bytes.
 * Returns 0; LEAK_EINVAL when root >= node_count or idom[] is not a tree rooted at root (a cycle, a
 * node out of range, or idom[root] != root); LEAK_ENOMEM when scratch memory ran out. */
int leak__dominators_retained(uint32_t node_count, uint32_t root, const uint32_t *idom, const uint64_t *sizes,
                              uint64_t *retained);

/* Writes into top[] (caller's array of `limit` entries) the reachable nodes other than the root with
 * the largest retained sizes, largest first (ties: lower node number first), and returns how many it
 * wrote (fewer than limit when fewer nodes qualify).  Allocates nothing; O(node_count log limit). */
size_t leak__dominators_top(uint32_t node_count, uint32_t root, const uint32_t *idom, const uint64_t *retained,
                            uint32_t *top, size_t limit);

#endif
