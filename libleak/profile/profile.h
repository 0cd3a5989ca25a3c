/* The profile: frames, threads and samples with values, shared by the CPU sampler and heap
 * profiles and read by every writer (collapsed, speedscope, pprof, SVG).
 *
 * Internal view of include/libleak/profile.h's leak_profile: the writers read the arrays directly.
 * Everything is allocated with the raw allocator and owned by the profile. */
#ifndef LIBLEAK_PROFILE_PROFILE_H
#define LIBLEAK_PROFILE_PROFILE_H

#include "core/internal.h"

typedef struct leak__profile_frame {
  char *function;
  char *filename;
  int lineno;
} leak__profile_frame;

typedef struct leak__profile_thread {
  uint64_t id;
  char *name; /* NULL: unnamed */
} leak__profile_thread;

typedef struct leak__profile_sample {
  uint32_t thread;
  uint32_t first;  /* index of its innermost frame in leak_profile.stack_frames */
  uint32_t nframe;
  int64_t values[LEAK_PROFILE_MAX_TYPES];
} leak__profile_sample;

struct leak__profile_index; /* the lookup tables of profile.c */

struct leak_profile {
  int ntypes;
  char *type_names[LEAK_PROFILE_MAX_TYPES];
  char *type_units[LEAK_PROFILE_MAX_TYPES];
  char *period_type, *period_unit; /* NULL: no period */
  int64_t period;
  int64_t duration_ns;
  leak__profile_frame *frames;
  size_t nframes, frames_cap;
  leak__profile_thread *threads;
  size_t nthreads, threads_cap;
  leak__profile_sample *samples;
  size_t nsamples, samples_cap;
  uint32_t *stack_frames; /* every sample's frames back to back, innermost first */
  size_t nstack_frames, stack_frames_cap;
  struct leak__profile_index *frame_index, *sample_index;
};

/* The total of value type `type` over every sample (for percentages and widths). */
int64_t leak__profile_total(const leak_profile *profile, int type);

/* The writers, one per format (collapsed.c, speedscope.c, pprof.c, flamegraph.c).  Each writes the
 * whole file to `fd` and returns 0 or a negative LEAK_E* code. */
int leak__profile_write_collapsed(const leak_profile *profile, int fd);
int leak__profile_write_speedscope(const leak_profile *profile, int fd);
int leak__profile_write_pprof(const leak_profile *profile, int fd);
int leak__profile_write_svg(const leak_profile *profile, int fd);

#endif
