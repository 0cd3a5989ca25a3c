/* Extension buffers: redirects the loaded objects' imports of PyTraceMalloc_Track/Untrack to
 * functions that trace the block in libleak (leak_track / leak_untrack, domain kept, the calling
 * thread's Python stack) and then call CPython's function, so tracemalloc keeps seeing them.
 *
 * Why the imports.  C extensions that allocate outside Python's allocators (NumPy's array data
 * comes from malloc in its default data handler) report their blocks with PyTraceMalloc_Track.
 * CPython 3.8 - 3.13 hands those calls to tracemalloc and to nothing else: there is no hook.  Each
 * extension calls the function through a slot of its own global offset table, filled by the
 * dynamic loader; rewriting that slot changes where that extension's calls go and nothing else.
 * It works on every thread at once, whether libpython is a shared library or linked into the
 * executable (Debian's /usr/bin/python3, CPython built without --enable-shared: extensions then
 * bind to the executable's symbol, and so does libleak's own import), for any extension that
 * reports this way, and it is undone by writing CPython's address back.
 *
 * Why not NumPy's NEP 49 handler.  PyDataMem_SetHandler (NumPy >= 1.22) installs a data allocator
 * in a context variable: it applies to the context that set it, and every new thread starts with
 * NumPy's default handler, so arrays made in other threads would be missed.  It also covers NumPy
 * only.  (The default handler is the one that calls PyTraceMalloc_Track, so the two never mix.)
 *
 * What is not seen: memory an extension takes from malloc without reporting it.  A race shared
 * with tracemalloc: NumPy's realloc path reports the old block gone after realloc returned, so a
 * block another thread got at the same address in between can lose its trace.
 *
 * How.  dl_iterate_phdr lists the loaded objects; the dynamic section of each gives its symbol
 * table, string table and relocation tables (DT_JMPREL for the PLT, DT_RELA for data); a JUMP_SLOT
 * or GLOB_DAT relocation against one of the two names locates a slot.  Slots in pages that RELRO
 * made read-only (glibc protects the pages wholly inside PT_GNU_RELRO) are written between two
 * mprotect calls; a pointer-sized aligned store is atomic, so a thread calling through the slot
 * meanwhile reaches either function, both correct.  libleak's own object is never changed: its
 * imports are how the redirected functions reach CPython's.
 *
 * Locking.  One mutex (scan_lock) serialises redirect, restore and the slot walk; it guards
 * seen_adds, seen_subs and redirect_current.  The redirected functions take no lock of this file. */
#include "core/internal.h"
#include "tracer/extbuffers.h"

#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Both architectures known here are 64-bit and use RELA relocations. */
#if defined(__x86_64__)
#define SLOT_RELOC_PLT R_X86_64_JUMP_SLOT
#define SLOT_RELOC_DATA R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define SLOT_RELOC_PLT R_AARCH64_JUMP_SLOT
#define SLOT_RELOC_DATA R_AARCH64_GLOB_DAT
#endif

/* What a redirected call returns: CPython's answer, unless that says "tracemalloc is not tracing"
 * (-2) while libleak is: then 0, as a tracing tracemalloc would answer.  Extensions act on it:
 * NumPy 2.5 (seen with 2.5.5) moves a block that PyMem_RawRealloc gave it from domain 0 to its own
 * domain only when PyTraceMalloc_Untrack(0, ...) did not return -2 (ndarray.resize lost its trace
 * until this).  A trace libleak could not store is counted as dropped, never reported as -1: an
 * extension may treat -1 as a failed allocation, and libleak must not make the program fail. */
static int combined_result(int cpython_rc, int libleak_rc) {
  return cpython_rc == -2 && libleak_rc != LEAK_ENOTSTARTED ? 0 : cpython_rc;
}

/* Called instead of CPython's PyTraceMalloc_Track by the redirected extensions, on any thread,
 * with or without the GIL (leak_track is safe either way).  Traces first, then tells tracemalloc. */
static int redirected_track(unsigned int domain, uintptr_t ptr, size_t size) {
  int rc = leak_track(domain, ptr, size);
  return combined_result(PyTraceMalloc_Track(domain, ptr, size), rc);
}

/* The same for PyTraceMalloc_Untrack: the block is still allocated here (NumPy untracks before it
 * frees), so no other thread can have been given its address yet. */
static int redirected_untrack(unsigned int domain, uintptr_t ptr) {
  int rc = leak_untrack(domain, ptr);
  return combined_result(PyTraceMalloc_Untrack(domain, ptr), rc);
}

/* The two imports: their names, libleak's functions, CPython's functions (as this object's own
 * imports resolved them, i.e. what the loader put in every other object's slot).  Constant. */
#define SYMBOL_COUNT 2
static const char *const symbol_names[SYMBOL_COUNT] = {"PyTraceMalloc_Track", "PyTraceMalloc_Untrack"};
static void *replacement(int which) {
  return which == 0 ? (void *)&redirected_track : (void *)&redirected_untrack;
}
static void *original(int which) {
  return which == 0 ? (void *)&PyTraceMalloc_Track : (void *)&PyTraceMalloc_Untrack;
}

/* Protected by scan_lock: the loader's counts of objects added and removed at the last redirect,
 * and whether the slots are redirected (so an unchanged list of objects needs no new walk). */
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long seen_adds, seen_subs;
static int redirect_current;

/* What a walk needs of one loaded object. */
typedef struct object_view {
  const char *name;
  uintptr_t base;
  const ElfW(Phdr) *phdr;
  int phnum;
  const ElfW(Sym) *symtab;
  const char *strtab;
  size_t strsz;
  const ElfW(Rela) *rela[2]; /* DT_JMPREL, DT_RELA */
  size_t rela_count[2];
} object_view;

/* What to do with each slot found, and what the walk gathers. */
typedef enum { WALK_REDIRECT, WALK_RESTORE, WALK_VISIT } walk_mode;
typedef struct walk_state {
  walk_mode mode;
  leak__extbuffers_visit visit;
  void *data;
  size_t changed;
  int error;
  int stop;
} walk_state;

/* glibc rewrites the dynamic section's addresses to absolute ones when it loads an object (not in
 * the vDSO, nor in every C library): a value below the load address is still relative. */
static uintptr_t dynamic_address(uintptr_t base, ElfW(Addr) value) {
  return (uintptr_t)value < base ? base + (uintptr_t)value : (uintptr_t)value;
}

/* True when `address` lies in one of the object's loaded segments. */
static int object_contains(const object_view *object, uintptr_t address) {
  for (int i = 0; i < object->phnum; i++) {
    const ElfW(Phdr) *ph = &object->phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t start = object->base + ph->p_vaddr;
    if (address >= start && address < start + ph->p_memsz) return 1;
  }
  return 0;
}

/* Reads the tables a walk needs from the dynamic section; 0 when the object has them all. */
static int read_dynamic(object_view *object) {
  const ElfW(Dyn) *dynamic = NULL;
  for (int i = 0; i < object->phnum; i++)
    if (object->phdr[i].p_type == PT_DYNAMIC)
      dynamic = (const ElfW(Dyn) *)(object->base + object->phdr[i].p_vaddr);
  if (dynamic == NULL) return -1;
  size_t plt_bytes = 0, rela_bytes = 0, rela_entry = sizeof(ElfW(Rela));
  long plt_kind = DT_RELA;
  for (const ElfW(Dyn) *d = dynamic; d->d_tag != DT_NULL; d++) {
    switch (d->d_tag) {
      case DT_SYMTAB: object->symtab = (const ElfW(Sym) *)dynamic_address(object->base, d->d_un.d_ptr); break;
      case DT_STRTAB: object->strtab = (const char *)dynamic_address(object->base, d->d_un.d_ptr); break;
      case DT_STRSZ: object->strsz = d->d_un.d_val; break;
      case DT_JMPREL: object->rela[0] = (const ElfW(Rela) *)dynamic_address(object->base, d->d_un.d_ptr); break;
      case DT_PLTRELSZ: plt_bytes = d->d_un.d_val; break;
      case DT_PLTREL: plt_kind = (long)d->d_un.d_val; break;
      case DT_RELA: object->rela[1] = (const ElfW(Rela) *)dynamic_address(object->base, d->d_un.d_ptr); break;
      case DT_RELASZ: rela_bytes = d->d_un.d_val; break;
      case DT_RELAENT: rela_entry = d->d_un.d_val; break;
      default: break;
    }
  }
  if (object->symtab == NULL || object->strtab == NULL || rela_entry != sizeof(ElfW(Rela))) return -1;
  /* Both architectures handled here use RELA relocations only. */
  if (plt_kind != DT_RELA) object->rela[0] = NULL;
  object->rela_count[0] = object->rela[0] ? plt_bytes / sizeof(ElfW(Rela)) : 0;
  object->rela_count[1] = object->rela[1] ? rela_bytes / sizeof(ElfW(Rela)) : 0;
  return 0;
}

/* Which of the two names a relocation binds (0 or 1), or -1. */
static int relocation_symbol(const object_view *object, const ElfW(Rela) *rela) {
#ifdef SLOT_RELOC_PLT
  unsigned long type = ELF64_R_TYPE(rela->r_info);
  if (type != SLOT_RELOC_PLT && type != SLOT_RELOC_DATA) return -1;
  size_t index = ELF64_R_SYM(rela->r_info);
  if (index == 0) return -1;
  size_t name = object->symtab[index].st_name;
  if (name >= object->strsz) return -1;
  const char *symbol = object->strtab + name;
  for (int which = 0; which < SYMBOL_COUNT; which++)
    if (strcmp(symbol, symbol_names[which]) == 0) return which;
#else
  (void)object;
  (void)rela;
#endif
  return -1;
}

/* The protection the page of `slot` has now when it is not writable (returns 1 and sets *prot),
 * else 0.  glibc makes read-only, after relocation, the pages that lie wholly inside PT_GNU_RELRO;
 * a slot elsewhere is writable if its segment is. */
static int slot_page_readonly(const object_view *object, uintptr_t slot, int *prot) {
  uintptr_t page_mask = ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
  uintptr_t page = slot & page_mask;
  for (int i = 0; i < object->phnum; i++) {
    const ElfW(Phdr) *ph = &object->phdr[i];
    if (ph->p_type != PT_GNU_RELRO) continue;
    uintptr_t start = (object->base + ph->p_vaddr) & page_mask;
    uintptr_t end = (object->base + ph->p_vaddr + ph->p_memsz) & page_mask;
    if (page >= start && page < end) {
      *prot = PROT_READ;
      return 1;
    }
  }
  for (int i = 0; i < object->phnum; i++) {
    const ElfW(Phdr) *ph = &object->phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t start = object->base + ph->p_vaddr;
    if (slot < start || slot >= start + ph->p_memsz) continue;
    if (ph->p_flags & PF_W) return 0;
    *prot = (ph->p_flags & PF_R ? PROT_READ : 0) | (ph->p_flags & PF_X ? PROT_EXEC : 0);
    return 1;
  }
  return 0;
}

/* Stores `value` in the slot, opening a read-only page for the time of the store. */
static int write_slot(const object_view *object, void **slot, void *value) {
  int prot;
  if (!slot_page_readonly(object, (uintptr_t)slot, &prot)) {
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
    return 0;
  }
  uintptr_t page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  void *page = (void *)((uintptr_t)slot & ~(page_size - 1));
  if (mprotect(page, page_size, PROT_READ | PROT_WRITE) != 0) return LEAK_EACCES;
  __atomic_store_n(slot, value, __ATOMIC_RELEASE);
  mprotect(page, page_size, prot);
  return 0;
}

/* Applies the walk's mode to one slot. */
static void handle_slot(walk_state *walk, const object_view *object, void **slot, int which) {
  void *now = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  void *wanted = NULL;
  if (walk->mode == WALK_VISIT) {
    leak__extbuffers_slot_state state = now == replacement(which) ? LEAK_EXTBUFFERS_REDIRECTED
                                        : now == original(which)  ? LEAK_EXTBUFFERS_ORIGINAL
                                                                  : LEAK_EXTBUFFERS_OTHER;
    walk->stop = walk->visit(object->name, symbol_names[which], state, walk->data);
    return;
  }
  if (walk->mode == WALK_REDIRECT && now != replacement(which)) wanted = replacement(which);
  if (walk->mode == WALK_RESTORE && now == replacement(which)) wanted = original(which);
  if (wanted == NULL) return;
  int rc = write_slot(object, slot, wanted);
  if (rc < 0)
    walk->error = rc;
  else
    walk->changed++;
}

/* dl_iterate_phdr's callback: one loaded object.  Runs under the loader's lock: no dlopen here. */
static int walk_object(struct dl_phdr_info *info, size_t size, void *data) {
  walk_state *walk = data;
  (void)size;
  object_view object;
  memset(&object, 0, sizeof(object));
  object.name = info->dlpi_name ? info->dlpi_name : "";
  object.base = info->dlpi_addr;
  object.phdr = info->dlpi_phdr;
  object.phnum = info->dlpi_phnum;
  if (object_contains(&object, (uintptr_t)&redirected_track)) return 0;
  if (read_dynamic(&object) < 0) return 0;
  for (int table = 0; table < 2 && !walk->stop; table++) {
    for (size_t i = 0; i < object.rela_count[table] && !walk->stop; i++) {
      const ElfW(Rela) *rela = &object.rela[table][i];
      int which = relocation_symbol(&object, rela);
      if (which >= 0) handle_slot(walk, &object, (void **)(object.base + rela->r_offset), which);
    }
  }
  return walk->stop;
}

/* Reads the loader's counts of objects added and removed; the first object is enough. */
static int read_counts(struct dl_phdr_info *info, size_t size, void *data) {
  unsigned long long *counts = data;
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
    counts[0] = info->dlpi_adds;
    counts[1] = info->dlpi_subs;
  }
  return 1;
}

/* Walks every object in `mode` under scan_lock's protection (the caller holds it). */
static int walk_unlocked(walk_state *walk) {
#ifdef SLOT_RELOC_PLT
  dl_iterate_phdr(walk_object, walk);
  return walk->error;
#else
  (void)walk;
  return LEAK_ENOSYS;
#endif
}

/* The loader's counts tell whether any object came or went since the last full walk. */
int leak_extbuffers_redirect(size_t *redirected) {
  if (redirected) *redirected = 0;
  unsigned long long counts[2] = {0, 0};
  dl_iterate_phdr(read_counts, counts);
  pthread_mutex_lock(&scan_lock);
  int rc = 0;
  if (!redirect_current || counts[0] != seen_adds || counts[1] != seen_subs) {
    walk_state walk = {WALK_REDIRECT, NULL, NULL, 0, 0, 0};
    rc = walk_unlocked(&walk);
    if (redirected) *redirected = walk.changed;
    if (rc == 0) {
      seen_adds = counts[0];
      seen_subs = counts[1];
      redirect_current = 1;
    }
  }
  pthread_mutex_unlock(&scan_lock);
  return rc;
}

/* Walks every object rather than remembering slots: an object unloaded meanwhile has no slot
 * left to write, and the walk cannot find it. */
int leak_extbuffers_restore(size_t *restored) {
  pthread_mutex_lock(&scan_lock);
  walk_state walk = {WALK_RESTORE, NULL, NULL, 0, 0, 0};
  int rc = walk_unlocked(&walk);
  redirect_current = 0;
  pthread_mutex_unlock(&scan_lock);
  if (restored) *restored = walk.changed;
  return rc;
}

/* Under scan_lock, so a slot is never seen half-way through a redirect. */
int leak__extbuffers_slots(leak__extbuffers_visit visit, void *data) {
  if (visit == NULL) return LEAK_EINVAL;
  pthread_mutex_lock(&scan_lock);
  walk_state walk = {WALK_VISIT, visit, data, 0, 0, 0};
  int rc = walk_unlocked(&walk);
  pthread_mutex_unlock(&scan_lock);
  return rc < 0 ? rc : walk.stop;
}
