/* The sample buffer: fixed slots that signal handlers fill and one consumer empties, lock-free.
 *
 * Each slot holds one stack (up to the buffer's nframe frames, innermost first) and the thread it
 * came from.  A producer (a signal handler) claims a free slot with one compare-and-swap, fills it
 * and publishes it; the consumer takes every published slot, in no particular order (the sampler
 * only counts stacks), and frees it.  When no free slot is found after a few tries the sample is
 * counted as dropped.  Nothing here allocates after leak__samplebuf_new, locks, or calls Python.
 *
 * The slots' states live in an array of their own, apart from the frames: the consumer's scan then
 * reads a few cache lines instead of touching a page of every slot (a 1024-slot buffer of 128
 * frames is 2 MB, and a scan of it 50 times a second was a cost of the sampler in itself). */
#ifndef LIBLEAK_PROFILE_SAMPLEBUF_H
#define LIBLEAK_PROFILE_SAMPLEBUF_H

#include "core/internal.h"
#include "core/frames.h"

typedef struct leak__sample_slot {
  int nframe;              /* frames stored; -1: void (a code object of it was freed) */
  int depth;               /* frames the stack had */
  int weight;              /* ticks this sample stands for: 1 + the timer's overruns */
  unsigned long thread_id; /* threading.get_ident() of the sampled thread */
  leak__frame frames[];    /* `nframe` of the buffer's capacity */
} leak__sample_slot;

typedef struct leak__samplebuf leak__samplebuf;

/* A buffer of `nslots` slots of `nframe` frames each (leak__malloc'd; free with
 * leak__samplebuf_free).  NULL when memory ran out. */
leak__samplebuf *leak__samplebuf_new(int nslots, int nframe);
void leak__samplebuf_free(leak__samplebuf *buf);

/* The frames a slot holds at most. */
int leak__samplebuf_nframe(const leak__samplebuf *buf);

/* Producer side (async-signal-safe): a free slot now owned by the caller, or NULL when the buffer
 * is full (the drop is counted).  Fill it, then leak__samplebuf_publish it. */
leak__sample_slot *leak__samplebuf_claim(leak__samplebuf *buf);
void leak__samplebuf_publish(leak__samplebuf *buf, leak__sample_slot *slot);

/* Consumer side (one consumer at a time): calls fn(slot, arg) for every published slot and frees
 * each after the call; returns how many it took. */
size_t leak__samplebuf_drain(leak__samplebuf *buf, void (*fn)(const leak__sample_slot *slot, void *arg), void *arg);

/* Marks every published sample that has a frame of `code` as void (nframe -1: the consumer drops
 * it), so that a code object about to be freed is named by no sample.  Consumer side: never concurrent
 * with a drain; slots being written are left alone (their frames are on a live stack). */
void leak__samplebuf_forget_code(leak__samplebuf *buf, const void *code);

/* Samples lost because the buffer was full. */
uint64_t leak__samplebuf_dropped(const leak__samplebuf *buf);

#endif
