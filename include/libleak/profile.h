/* libleak: the CPU sampler and profiles (CPU and heap) in the formats other tools read.
 *
 * The sampler puts a timer on every Python thread (its CPU clock, or the wall clock) and, on each
 * tick, the thread records its own Python stack from a signal handler into a preallocated buffer;
 * a manager thread folds those stacks into counts.  Stopping it gives a leak_profile.
 *
 * A leak_profile is plain data that no longer needs Python: frames (function, file, line), threads,
 * and samples (a stack of frame indices with one value per sample type).  CPU profiles have one
 * sample type ("samples", "count"); heap profiles built from a tracer snapshot have "inuse_space"
 * (bytes) and "inuse_objects" (count).  Any profile writes in every format: folded stacks,
 * speedscope JSON, pprof (gzip-compressed profile.proto) and an interactive SVG flame graph. */
#ifndef LIBLEAK_PROFILE_H
#define LIBLEAK_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Profiles ------------------------------------------------------------------------------ */

/* A profile; build one with leak_profile_new and the _add functions, or get one from
 * leak_sampler_stop or leak_snapshot_profile.  Free it with leak_profile_free. */
typedef struct leak_profile leak_profile;

/* The output formats. */
typedef enum leak_profile_format {
  LEAK_PROFILE_COLLAPSED = 0, /* "root;child;leaf N" per line (Brendan Gregg's folded stacks) */
  LEAK_PROFILE_SPEEDSCOPE = 1, /* speedscope's JSON file format, one sampled profile per thread */
  LEAK_PROFILE_PPROF = 2,      /* pprof's profile.proto, gzip-compressed */
  LEAK_PROFILE_SVG = 3,        /* a self-contained SVG flame graph: click to zoom, search, tooltips */
} leak_profile_format;

/* The most sample types a profile can carry. */
#define LEAK_PROFILE_MAX_TYPES 4

/* A new empty profile with `ntypes` sample types (1 to LEAK_PROFILE_MAX_TYPES), named by
 * `type_names[i]` with units `type_units[i]` (pprof's vocabulary: "samples"/"count",
 * "inuse_space"/"bytes", ...); the strings are copied.  Stores the profile in *out (free it with
 * leak_profile_free).  LEAK_EINVAL for a bad count or a NULL name, LEAK_ENOMEM. */
LEAK_EXTERN int leak_profile_new(int ntypes, const char *const *type_names, const char *const *type_units,
                                 leak_profile **out);

/* Frees a profile and everything it holds; NULL is accepted. */
LEAK_EXTERN void leak_profile_free(leak_profile *profile);

/* What one sample stands for, for pprof's period fields: e.g. "cpu"/"nanoseconds" and the interval.
 * The strings are copied.  A profile without a period writes none.  LEAK_EINVAL, LEAK_ENOMEM. */
LEAK_EXTERN int leak_profile_set_period(leak_profile *profile, const char *type, const char *unit, int64_t period);

/* How long the profile ran, in nanoseconds (0: unknown), for pprof's duration_nanos. */
LEAK_EXTERN void leak_profile_set_duration(leak_profile *profile, int64_t duration_ns);

/* Adds a frame (function name, file name, line; the strings are copied) or finds the same one
 * already added, and stores its index in *index.  LEAK_EINVAL for NULL strings, LEAK_ENOMEM. */
LEAK_EXTERN int leak_profile_add_frame(leak_profile *profile, const char *function, const char *filename, int lineno,
                                       uint32_t *index);

/* Adds a thread (its identifier and an optional name, copied) or finds the one with the same
 * identifier (then a non-NULL name replaces the old one); its index goes to *index.  Samples of a
 * profile without threads belong to one unnamed thread. */
LEAK_EXTERN int leak_profile_add_thread(leak_profile *profile, uint64_t thread_id, const char *name,
                                        uint32_t *index);

/* Adds `values` (one per sample type) to the stack `frames[0..nframe)` of thread `thread`
 * (an index from leak_profile_add_thread, ignored when the profile has no threads).  Frames are
 * indices from leak_profile_add_frame, INNERMOST FIRST (pprof's order).  Samples of the same stack
 * and thread add up.  LEAK_EINVAL for an unknown frame or thread index, LEAK_ENOMEM. */
LEAK_EXTERN int leak_profile_add_sample(leak_profile *profile, uint32_t thread, const uint32_t *frames, uint32_t nframe,
                                        const int64_t *values);

/* Writes the profile to `fd` in `format`.  The fd is not closed.  LEAK_EINVAL for an unknown
 * format, LEAK_EIO (or another errno-twin code) when writing fails, LEAK_ENOMEM. */
LEAK_EXTERN int leak_profile_write(const leak_profile *profile, leak_profile_format format, int fd);

/* Reading a profile back, for bindings and tests.  Counts first, then items by index; every
 * string returned points into the profile and lives as long as it.  Out-of-range indices give
 * LEAK_EINVAL. */
LEAK_EXTERN size_t leak_profile_frame_count(const leak_profile *profile);
LEAK_EXTERN size_t leak_profile_thread_count(const leak_profile *profile);
LEAK_EXTERN size_t leak_profile_sample_count(const leak_profile *profile);
LEAK_EXTERN int leak_profile_type_count(const leak_profile *profile);
LEAK_EXTERN int leak_profile_type(const leak_profile *profile, int i, const char **name, const char **unit);
LEAK_EXTERN int leak_profile_frame(const leak_profile *profile, size_t i, const char **function, const char **filename,
                                   int *lineno);
LEAK_EXTERN int leak_profile_thread(const leak_profile *profile, size_t i, uint64_t *thread_id, const char **name);
/* Sample i: its thread index, its frames (innermost first; *frames points into the profile) and its
 * values (an array of leak_profile_type_count entries, pointing into the profile). */
LEAK_EXTERN int leak_profile_sample(const leak_profile *profile, size_t i, uint32_t *thread, const uint32_t **frames,
                                    uint32_t *nframe, const int64_t **values);

/* ---- The CPU sampler ----------------------------------------------------------------------- */

typedef enum leak_sampler_mode {
  LEAK_SAMPLER_CPU = 0,  /* each thread is sampled per `interval_ns` of its own CPU time */
  LEAK_SAMPLER_WALL = 1, /* each thread is sampled per `interval_ns` of real time, running or not; a
                            thread mostly off the CPU is not woken: its time off the CPU is counted
                            every 20 ms at the stack it shows (sampler.c explains) */
} leak_sampler_mode;

typedef struct leak_sampler_options {
  int64_t interval_ns;  /* time between two samples of a thread; > 0 */
  leak_sampler_mode mode;
  int nframe;           /* frames kept per sample, innermost first: 1 to 512 */
  int buffer_samples;   /* samples the signal handlers can hold until the manager folds them */
  int max_threads;      /* threads sampled at once; more are counted in threads_missed */
} leak_sampler_options;

#define LEAK_SAMPLER_OPTIONS_INIT {1000000, LEAK_SAMPLER_CPU, 128, 1024, 256}

/* Counters of a running (or the last) sampling session. */
typedef struct leak_sampler_stats {
  uint64_t samples;        /* samples folded into the profile: timer expirations (ticks) they stand for */
  uint64_t signals;        /* stacks actually read; fewer than samples when the kernel merged expirations
                              (CPU clocks expire on the scheduler tick, e.g. 250 Hz) */
  uint64_t dropped;        /* samples lost because the buffer was full */
  uint64_t threads;        /* threads that got a timer */
  uint64_t threads_missed; /* threads not sampled: max_threads reached or their timer failed */
  int64_t duration_ns;     /* wall time since start (to stop, once stopped) */
} leak_sampler_stats;

/* Starts sampling every thread of the main interpreter, those started later included.  The caller
 * holds the GIL.  The SIGPROF handler stays installed after stop (a late signal is then ignored).
 * Stop the sampler before Py_Finalize.  LEAK_EBUSY when already running, LEAK_EINVAL for bad
 * options, LEAK_ENOMEM, or an errno-twin code when a timer or thread could not be made. */
LEAK_EXTERN int leak_sampler_start(const leak_sampler_options *options);

/* Stops the sampler, folds what is left and, when `out` is not NULL, stores the profile in *out
 * (free it with leak_profile_free; one sample type, "samples"/"count").  The caller holds the GIL,
 * which is released while the manager thread ends.  LEAK_ENOTSTARTED when not running. */
LEAK_EXTERN int leak_sampler_stop(leak_profile **out);

/* 1 while sampling, else 0.  A child forked while sampling starts with the sampler stopped (timers
 * and the manager thread do not survive fork): it may start its own session. */
LEAK_EXTERN int leak_sampler_is_running(void);

/* The counters of the current session (or of the last one, after stop).  The caller holds the GIL
 * (the manager thread updates them under it). */
LEAK_EXTERN void leak_sampler_get_stats(leak_sampler_stats *stats);

/* ---- Heap profiles ------------------------------------------------------------------------- */

struct leak_snapshot;

/* A heap profile of a tracer snapshot's live blocks: sample types "inuse_space" (bytes) and
 * "inuse_objects" (count), estimated from the sampling weights for sampled snapshots.  Frames carry
 * no function name (the tracer records file and line only): the name is "file:line".  Free *out
 * with leak_profile_free.  LEAK_ENOMEM. */
LEAK_EXTERN int leak_snapshot_profile(const struct leak_snapshot *snapshot, leak_profile **out);

#ifdef __cplusplus
}
#endif
#endif
