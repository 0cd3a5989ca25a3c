/* The lock-free sample buffer (see samplebuf.h). */
#include "core/internal.h"
#include "profile/samplebuf.h"

#define SLOT_FREE 0
#define SLOT_WRITING 1
#define SLOT_READY 2
/* Slots a producer tries before it gives up and counts a drop. */
#define CLAIM_TRIES 16

struct leak__samplebuf {
  size_t nslots;
  int nframe;
  size_t slot_size;
  unsigned long next;  /* atomic: where the next producer starts looking (a hint; reset by each drain) */
  uint64_t dropped;    /* atomic */
  int *states;         /* atomic each: SLOT_FREE, SLOT_WRITING or SLOT_READY, one per slot */
  unsigned char *slots;
};

leak__samplebuf *leak__samplebuf_new(int nslots, int nframe) {
  if (nslots < 1 || nframe < 1) return NULL;
  leak__samplebuf *buf = leak__calloc(1, sizeof *buf);
  if (buf == NULL) return NULL;
  buf->nslots = (size_t)nslots;
  buf->nframe = nframe;
  /* Rounded to 64 bytes so that producers of neighbouring slots do not share a cache line. */
  buf->slot_size = (sizeof(leak__sample_slot) + (size_t)nframe * sizeof(leak__frame) + 63) & ~(size_t)63;
  buf->states = leak__calloc(buf->nslots, sizeof *buf->states);
  buf->slots = leak__calloc(buf->nslots, buf->slot_size);
  if (buf->states == NULL || buf->slots == NULL) {
    leak__samplebuf_free(buf);
    return NULL;
  }
  return buf;
}

void leak__samplebuf_free(leak__samplebuf *buf) {
  if (buf == NULL) return;
  leak__free(buf->states);
  leak__free(buf->slots);
  leak__free(buf);
}

int leak__samplebuf_nframe(const leak__samplebuf *buf) { return buf->nframe; }

static leak__sample_slot *slot_at(leak__samplebuf *buf, size_t i) {
  return (leak__sample_slot *)(buf->slots + i * buf->slot_size);
}

/* Async-signal-safe: atomics only. */
leak__sample_slot *leak__samplebuf_claim(leak__samplebuf *buf) {
  unsigned long start = __atomic_fetch_add(&buf->next, 1, __ATOMIC_RELAXED);
  for (int k = 0; k < CLAIM_TRIES; k++) {
    size_t i = (start + (unsigned long)k) % buf->nslots;
    int expected = SLOT_FREE;
    if (__atomic_compare_exchange_n(&buf->states[i], &expected, SLOT_WRITING, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
      return slot_at(buf, i);
  }
  __atomic_fetch_add(&buf->dropped, 1, __ATOMIC_RELAXED);
  return NULL;
}

/* Async-signal-safe: one release store. */
void leak__samplebuf_publish(leak__samplebuf *buf, leak__sample_slot *slot) {
  size_t i = (size_t)((unsigned char *)slot - buf->slots) / buf->slot_size;
  __atomic_store_n(&buf->states[i], SLOT_READY, __ATOMIC_RELEASE);
}

size_t leak__samplebuf_drain(leak__samplebuf *buf, void (*fn)(const leak__sample_slot *slot, void *arg), void *arg) {
  size_t taken = 0;
  for (size_t i = 0; i < buf->nslots; i++) {
    if (__atomic_load_n(&buf->states[i], __ATOMIC_ACQUIRE) != SLOT_READY) continue;
    fn(slot_at(buf, i), arg);
    __atomic_store_n(&buf->states[i], SLOT_FREE, __ATOMIC_RELEASE);
    taken++;
  }
  /* Producers start looking from the front again: `next` is only a hint (the states decide), and
   * starting low keeps the slots in use, and the pages they touch, few. */
  __atomic_store_n(&buf->next, 0, __ATOMIC_RELAXED);
  return taken;
}

void leak__samplebuf_forget_code(leak__samplebuf *buf, const void *code) {
  for (size_t i = 0; i < buf->nslots; i++) {
    if (__atomic_load_n(&buf->states[i], __ATOMIC_ACQUIRE) != SLOT_READY) continue;
    leak__sample_slot *slot = slot_at(buf, i);
    for (int k = 0; k < slot->nframe; k++) {
      if ((const void *)slot->frames[k].code == code) {
        slot->nframe = -1;
        break;
      }
    }
  }
}

uint64_t leak__samplebuf_dropped(const leak__samplebuf *buf) {
  return __atomic_load_n(&buf->dropped, __ATOMIC_RELAXED);
}
