/* Edge labels: how a referrer holds a referent, in words a Python programmer reads.
 *
 * ".data" (an attribute, in __dict__, inline values or __slots__), "['k42']" (a dict value; a key
 * that is not a str is named by its type), "[3]" (a list or tuple item), ".__closure__",
 * ".cell_contents", ".__self__", ".tb_frame", ".f_back", " local big" (a frame's or generator's
 * local), ".__traceback__", ".__class__", ".__dict__", ...  Labels are found when a path is printed,
 * only for its edges: a whole index of labels would cost more than the index. */
#ifndef LIBLEAK_REFS_LABELS_H
#define LIBLEAK_REFS_LABELS_H
#include <Python.h>

/* Writes the label of the reference from `referrer` to `referent` (both alive) into `out` (NUL
 * terminated, cut to `capacity`), or "" when no rule knows it.  Reads fields and dicts; runs no
 * Python code and creates no objects (a str key's UTF-8 form may be cached, as PyUnicode_AsUTF8
 * does).  Returns the label's length. */
size_t leak__ref_label(PyObject *referrer, PyObject *referent, char *out, size_t capacity);

#endif
