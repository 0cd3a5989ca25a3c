/* Retained sizes.  Read refs/retained.h first.
 *
 * The index holds referrers; the dominator computation wants successors, so the reverse CSR is
 * transposed (a counting sort by referrer) with the virtual root's edges appended. */
#include "core/internal.h"
#include "refs/retained.h"

#include <frameobject.h>
#include <string.h>

/* The successor graph of the index plus a virtual root (node n) pointing at every root. */
static int successors(const leak__ref_index *index, uint32_t **first_out, uint32_t **targets_out) {
  uint32_t n = (uint32_t)index->nodes;
  uint32_t *first = leak__calloc((size_t)n + 2, sizeof(uint32_t));
  uint8_t *is_root = leak__calloc(n ? n : 1, 1);
  if (first == NULL || is_root == NULL) {
    leak__free(first);
    leak__free(is_root);
    return LEAK_ENOMEM;
  }
  size_t roots = 0;
  for (uint32_t v = 0; v < n; v++) {
    size_t frames;
    leak__ref_index_frame_roots(index, v, &frames);
    if (frames > 0 || leak__ref_index_unaccounted(index, v) > 0) {
      is_root[v] = 1;
      roots++;
    }
  }
  /* Out-degrees, shifted by one so that the prefix sums land in first[]. */
  for (size_t e = 0; e < index->edges; e++) first[index->referrers[e] + 1]++;
  first[n + 1] = (uint32_t)roots;
  for (uint32_t v = 0; v <= n; v++) first[v + 1] += first[v];
  uint32_t *targets = leak__malloc((index->edges + roots + 1) * sizeof(uint32_t));
  uint32_t *fill = leak__malloc(((size_t)n + 1) * sizeof(uint32_t));
  if (targets == NULL || fill == NULL) {
    leak__free(first);
    leak__free(is_root);
    leak__free(targets);
    leak__free(fill);
    return LEAK_ENOMEM;
  }
  memcpy(fill, first, ((size_t)n + 1) * sizeof(uint32_t));
  for (uint32_t v = 0; v < n; v++)
    for (uint32_t i = index->in_first[v]; i < index->in_first[v + 1]; i++) targets[fill[index->referrers[i]]++] = v;
  for (uint32_t v = 0; v < n; v++)
    if (is_root[v]) targets[fill[n]++] = v;
  leak__free(fill);
  leak__free(is_root);
  *first_out = first;
  *targets_out = targets;
  return 0;
}

int leak__retained_compute(const leak__ref_index *index, const leak__dominators_options *options,
                           leak__retained **out) {
  *out = NULL;
  if (index->nodes >= UINT32_MAX - 1) return LEAK_ERANGE;
  uint32_t n = (uint32_t)index->nodes;
  leak__retained *r = leak__calloc(1, sizeof(*r));
  uint32_t *first = NULL, *targets = NULL;
  uint64_t *sizes = leak__malloc(((size_t)n + 1) * sizeof(uint64_t));
  int rc = (r == NULL || sizes == NULL) ? LEAK_ENOMEM : successors(index, &first, &targets);
  if (rc == 0) {
    r->nodes = n;
    r->idom = leak__malloc(((size_t)n + 1) * sizeof(uint32_t));
    r->retained = leak__malloc(((size_t)n + 1) * sizeof(uint64_t));
    if (r->idom == NULL || r->retained == NULL) rc = LEAK_ENOMEM;
  }
  if (rc == 0) {
    for (uint32_t v = 0; v < n; v++) sizes[v] = leak__ref_index_size(index, v);
    sizes[n] = 0;
    leak__csr_graph graph = {n + 1, first, targets};
    rc = leak__dominators_compute(&graph, n, r->idom, options);
    if (rc == 0) rc = leak__dominators_retained(n + 1, n, r->idom, sizes, r->retained);
  }
  leak__free(first);
  leak__free(targets);
  leak__free(sizes);
  if (rc != 0) {
    leak__retained_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

void leak__retained_free(leak__retained *retained) {
  if (retained == NULL) return;
  leak__free(retained->idom);
  leak__free(retained->retained);
  leak__free(retained);
}

/* Structural objects are recognised by type, and dicts by who holds them. */
int leak__refs_structural(const leak__ref_index *index, uint32_t v) {
  PyObject *obj = leak__ref_index_object(index, v);
  if (PyModule_Check(obj) || PyType_Check(obj) || PyFrame_Check(obj) || PyCode_Check(obj) || PyFunction_Check(obj))
    return 1;
  if (!PyDict_Check(obj)) return 0;
  PyInterpreterState *interp = leak__frames_interpreter(leak__frames_this_thread());
  if (obj == leak__frames_sys_dict(interp) || obj == leak__frames_builtins_dict(interp) ||
      obj == leak__frames_sys_modules(interp))
    return 1;
  for (uint32_t i = index->in_first[v]; i < index->in_first[v + 1]; i++) {
    PyObject *holder = leak__ref_index_object(index, index->referrers[i]);
    if ((PyModule_Check(holder) && PyModule_GetDict(holder) == obj) ||
        (PyType_Check(holder) && ((PyTypeObject *)holder)->tp_dict == obj))
      return 1;
  }
  return 0;
}

