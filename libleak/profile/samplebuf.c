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
  unsigned long next;  /* atomic: where the next producer starts looking */
  uint64_t dropped;    /* atomic */
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
  buf->slots = leak__calloc(buf->nslots, buf->slot_size);
  if (buf->slots == NULL) {
    leak__free(buf);
    return NULL;
  }
  return buf;
}

void leak__samplebuf_free(leak__samplebuf *buf) {
  if (buf == NULL) return;
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
    leak__sample_slot *slot = slot_at(buf, (start + (unsigned long)k) % buf->nslots);
    int expected = SLOT_FREE;
    if (__atomic_compare_exchange_n(&slot->state, &expected, SLOT_WRITING, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
      return slot;
  }
  __atomic_fetch_add(&buf->dropped, 1, __ATOMIC_RELAXED);
  return NULL;
}

/* Async-signal-safe: one release store. */
void leak__samplebuf_publish(leak__sample_slot *slot) { __atomic_store_n(&slot->state, SLOT_READY, __ATOMIC_RELEASE); }

size_t leak__samplebuf_drain(leak__samplebuf *buf, void (*fn)(const leak__sample_slot *slot, void *arg), void *arg) {
  size_t taken = 0;
  for (size_t i = 0; i < buf->nslots; i++) {
    leak__sample_slot *slot = slot_at(buf, i);
    if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != SLOT_READY) continue;
    fn(slot, arg);
    __atomic_store_n(&slot->state, SLOT_FREE, __ATOMIC_RELEASE);
    taken++;
  }
  return taken;
}

void leak__samplebuf_forget_code(leak__samplebuf *buf, const void *code) {
  for (size_t i = 0; i < buf->nslots; i++) {
    leak__sample_slot *slot = slot_at(buf, i);
    if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != SLOT_READY) continue;
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
