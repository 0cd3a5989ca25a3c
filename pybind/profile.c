/* The profile area of _libleak: the CPU sampler and the profile writers (libleak/profile/ does the
 * work).  Profiles cross into Python as plain tuples, so that libleak.sampler.Profile can hold,
 * load, filter and write them:
 *   (types, period, duration_ns, frames, threads, samples)
 *   types:   ((name, unit), ...)              period: (type, unit, value) or None
 *   frames:  ((function, filename, lineno), ...)
 *   threads: ((thread_id, name or None), ...)
 *   samples: ((thread_index, (frame_index, ... innermost first), (value, ...)), ...) */
#include "glue.h"
#include "profile/profile.h"

/* A profile as the tuple above; NULL with an exception set on failure. */
static PyObject *profile_to_tuple(const leak_profile *p) {
  int ntypes = leak_profile_type_count(p);
  size_t nframes = leak_profile_frame_count(p), nthreads = leak_profile_thread_count(p),
         nsamples = leak_profile_sample_count(p);
  PyObject *types = PyTuple_New(ntypes), *frames = PyTuple_New((Py_ssize_t)nframes),
           *threads = PyTuple_New((Py_ssize_t)nthreads), *samples = PyTuple_New((Py_ssize_t)nsamples);
  if (!types || !frames || !threads || !samples) goto fail;
  for (int t = 0; t < ntypes; t++) {
    const char *name, *unit;
    leak_profile_type(p, t, &name, &unit);
    PyObject *item = Py_BuildValue("(ss)", name, unit);
    if (item == NULL) goto fail;
    PyTuple_SET_ITEM(types, t, item);
  }
  for (size_t i = 0; i < nframes; i++) {
    const char *fn, *file;
    int line;
    leak_profile_frame(p, i, &fn, &file, &line);
    PyObject *item = Py_BuildValue("(ssi)", fn, file, line);
    if (item == NULL) goto fail;
    PyTuple_SET_ITEM(frames, (Py_ssize_t)i, item);
  }
  for (size_t i = 0; i < nthreads; i++) {
    uint64_t id;
    const char *name;
    leak_profile_thread(p, i, &id, &name);
    PyObject *item = Py_BuildValue("(Kz)", (unsigned long long)id, name);
    if (item == NULL) goto fail;
    PyTuple_SET_ITEM(threads, (Py_ssize_t)i, item);
  }
  for (size_t i = 0; i < nsamples; i++) {
    uint32_t thread, n;
    const uint32_t *stack;
    const int64_t *values;
    leak_profile_sample(p, i, &thread, &stack, &n, &values);
    PyObject *st = PyTuple_New(n), *vals = PyTuple_New(ntypes);
    if (st == NULL || vals == NULL) {
      Py_XDECREF(st);
      Py_XDECREF(vals);
      goto fail;
    }
    for (uint32_t k = 0; k < n; k++) PyTuple_SET_ITEM(st, k, PyLong_FromUnsignedLong(stack[k]));
    for (int t = 0; t < ntypes; t++) PyTuple_SET_ITEM(vals, t, PyLong_FromLongLong(values[t]));
    PyObject *item = Py_BuildValue("(INN)", thread, st, vals);
    if (item == NULL) goto fail;
    PyTuple_SET_ITEM(samples, (Py_ssize_t)i, item);
  }
  PyObject *period = Py_None;
  Py_INCREF(period);
  if (p->period_type) {
    Py_DECREF(period);
    period = Py_BuildValue("(ssL)", p->period_type, p->period_unit, (long long)p->period);
    if (period == NULL) goto fail;
  }
  return Py_BuildValue("(NNLNNN)", types, period, (long long)p->duration_ns, frames, threads, samples);
fail:
  Py_XDECREF(types);
  Py_XDECREF(frames);
  Py_XDECREF(threads);
  Py_XDECREF(samples);
  return NULL;
}

/* Builds a C profile from the tuple form; NULL with an exception set (TypeError/ValueError for a
 * malformed tuple). */
static leak_profile *profile_from_tuple(PyObject *types, PyObject *period, long long duration, PyObject *frames,
                                        PyObject *threads, PyObject *samples) {
  const char *names[LEAK_PROFILE_MAX_TYPES], *units[LEAK_PROFILE_MAX_TYPES];
  Py_ssize_t ntypes = PyTuple_Size(types);
  if (ntypes < 1 || ntypes > LEAK_PROFILE_MAX_TYPES) {
    PyErr_Format(PyExc_ValueError, "a profile needs 1 to %d sample types", LEAK_PROFILE_MAX_TYPES);
    return NULL;
  }
  for (Py_ssize_t t = 0; t < ntypes; t++)
    if (!PyArg_ParseTuple(PyTuple_GET_ITEM(types, t), "ss;a sample type is (name, unit)", &names[t], &units[t]))
      return NULL;
  leak_profile *p = NULL;
  int rc = leak_profile_new((int)ntypes, names, units, &p);
  if (rc < 0) return (leak_profile *)leak__py_raise(rc, "making a profile");
  const char *ptype, *punit;
  long long pvalue;
  if (period != Py_None) {
    if (!PyArg_ParseTuple(period, "ssL;a period is (type, unit, value)", &ptype, &punit, &pvalue)) goto fail;
    if ((rc = leak_profile_set_period(p, ptype, punit, pvalue)) < 0) goto raise;
  }
  leak_profile_set_duration(p, duration);
  Py_ssize_t nframes = PyTuple_Size(frames);
  for (Py_ssize_t i = 0; i < nframes; i++) {
    const char *fn, *file;
    int line;
    uint32_t index;
    if (!PyArg_ParseTuple(PyTuple_GET_ITEM(frames, i), "ssi;a frame is (function, filename, lineno)", &fn, &file,
                          &line))
      goto fail;
    if ((rc = leak_profile_add_frame(p, fn, file, line, &index)) < 0) goto raise;
    if (index != (uint32_t)i) {
      PyErr_SetString(PyExc_ValueError, "a profile's frames must be distinct");
      goto fail;
    }
  }
  Py_ssize_t nthreads = PyTuple_Size(threads);
  for (Py_ssize_t i = 0; i < nthreads; i++) {
    unsigned long long id;
    const char *name;
    uint32_t index;
    if (!PyArg_ParseTuple(PyTuple_GET_ITEM(threads, i), "Kz;a thread is (thread_id, name)", &id, &name)) goto fail;
    if ((rc = leak_profile_add_thread(p, id, name, &index)) < 0) goto raise;
  }
  Py_ssize_t nsamples = PyTuple_Size(samples);
  uint32_t stack[1024];
  for (Py_ssize_t i = 0; i < nsamples; i++) {
    unsigned int thread;
    PyObject *st, *vals;
    if (!PyArg_ParseTuple(PyTuple_GET_ITEM(samples, i), "IO!O!;a sample is (thread, frames, values)", &thread,
                          &PyTuple_Type, &st, &PyTuple_Type, &vals))
      goto fail;
    Py_ssize_t n = PyTuple_GET_SIZE(st);
    if (n > (Py_ssize_t)LEAK_ARRAY_SIZE(stack) || PyTuple_GET_SIZE(vals) != ntypes) {
      PyErr_SetString(PyExc_ValueError, "a sample has too many frames or the wrong number of values");
      goto fail;
    }
    int64_t values[LEAK_PROFILE_MAX_TYPES];
    for (Py_ssize_t k = 0; k < n; k++) {
      unsigned long f = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(st, k));
      if (f == (unsigned long)-1 && PyErr_Occurred()) goto fail;
      stack[k] = (uint32_t)f;
    }
    for (Py_ssize_t t = 0; t < ntypes; t++) {
      values[t] = PyLong_AsLongLong(PyTuple_GET_ITEM(vals, t));
      if (values[t] == -1 && PyErr_Occurred()) goto fail;
    }
    if ((rc = leak_profile_add_sample(p, thread, stack, (uint32_t)n, values)) < 0) goto raise;
  }
  return p;
raise:
  leak__py_raise(rc, "building a profile");
fail:
  leak_profile_free(p);
  return NULL;
}

/* sampler_start(interval_ns, mode, nframe): mode 0 = cpu, 1 = wall. */
static PyObject *py_sampler_start(PyObject *module, PyObject *args) {
  long long interval;
  int mode, nframe;
  if (!PyArg_ParseTuple(args, "Lii", &interval, &mode, &nframe)) return NULL;
  leak_sampler_options options = LEAK_SAMPLER_OPTIONS_INIT;
  options.interval_ns = interval;
  options.mode = (leak_sampler_mode)mode;
  options.nframe = nframe;
  int rc = leak_sampler_start(&options);
  if (rc == LEAK_EBUSY) {
    PyErr_SetString(PyExc_RuntimeError, "the sampler is already running");
    return NULL;
  }
  if (rc < 0) return leak__py_raise(rc, "starting the sampler");
  Py_RETURN_NONE;
}

/* sampler_stop() -> the profile tuple. */
static PyObject *py_sampler_stop(PyObject *module, PyObject *unused) {
  leak_profile *p = NULL;
  int rc = leak_sampler_stop(&p);
  if (rc == LEAK_ENOTSTARTED) {
    PyErr_SetString(PyExc_RuntimeError, "the sampler is not running");
    return NULL;
  }
  if (rc < 0) return leak__py_raise(rc, "stopping the sampler");
  PyObject *result = profile_to_tuple(p);
  leak_profile_free(p);
  return result;
}

static PyObject *py_sampler_is_running(PyObject *module, PyObject *unused) {
  return PyBool_FromLong(leak_sampler_is_running());
}

/* sampler_stats() -> (samples, dropped, threads, threads_missed, duration_ns, signals). */
static PyObject *py_sampler_stats(PyObject *module, PyObject *unused) {
  leak_sampler_stats s;
  leak_sampler_get_stats(&s);
  return Py_BuildValue("(KKKKLK)", (unsigned long long)s.samples, (unsigned long long)s.dropped,
                       (unsigned long long)s.threads, (unsigned long long)s.threads_missed, (long long)s.duration_ns,
                       (unsigned long long)s.signals);
}

/* profile_write(fd, format, types, period, duration_ns, frames, threads, samples). */
static PyObject *py_profile_write(PyObject *module, PyObject *args) {
  int fd, format;
  long long duration;
  PyObject *types, *period, *frames, *threads, *samples;
  if (!PyArg_ParseTuple(args, "iiO!OLO!O!O!", &fd, &format, &PyTuple_Type, &types, &period, &duration, &PyTuple_Type,
                        &frames, &PyTuple_Type, &threads, &PyTuple_Type, &samples))
    return NULL;
  leak_profile *p = profile_from_tuple(types, period, duration, frames, threads, samples);
  if (p == NULL) return NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = leak_profile_write(p, (leak_profile_format)format, fd);
  Py_END_ALLOW_THREADS
  leak_profile_free(p);
  if (rc < 0) return leak__py_raise(rc, "writing the profile");
  Py_RETURN_NONE;
}

static PyMethodDef profile_methods[] = {
    {"sampler_start", py_sampler_start, METH_VARARGS, "sampler_start(interval_ns, mode, nframe)"},
    {"sampler_stop", py_sampler_stop, METH_NOARGS, "sampler_stop() -> profile tuple"},
    {"sampler_is_running", py_sampler_is_running, METH_NOARGS, "sampler_is_running() -> bool"},
    {"sampler_stats", py_sampler_stats, METH_NOARGS, "sampler_stats() -> (samples, dropped, threads, missed, ns)"},
    {"profile_write", py_profile_write, METH_VARARGS, "profile_write(fd, format, types, period, ns, frames, threads, samples)"},
    {NULL, NULL, 0, NULL},
};

const leak__py_area leak__py_profile_area = {profile_methods, NULL};
