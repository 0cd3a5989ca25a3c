/* The CPU sampler: a POSIX timer on every Python thread, a SIGPROF handler in which the ticked thread
 * records its own stack, and a manager thread that folds those stacks into counts.
 *
 * Why per-thread timers: setitimer(ITIMER_PROF) and process CPU clocks are capped by the kernel tick
 * (about 250 signals per CPU-second here) and land on whichever thread runs.  A timer_create timer
 * on each thread's own CPU clock (or on CLOCK_MONOTONIC in wall mode), delivered with
 * SIGEV_THREAD_ID, ticks at the rate asked and interrupts exactly the thread it measures, so each
 * thread reads its own frames: no racy walk of another thread's stack.
 *
 * CPU-clock timers expire on the kernel's scheduler tick (250 Hz here): asked for 1 kHz, a running
 * thread gets about one signal per tick, and the timer counts the expirations it could not
 * signal (si_overrun).  Each sample therefore weighs 1 + si_overrun, so counts stay proportional to
 * CPU time at any interval; stats.signals says how many stacks were actually read.
 *
 * SIGEV_THREAD_ID needs the kernel thread id, which thread states carry only from 3.11: there the
 * timer is made as soon as the thread is found.  Before 3.11 the scan writes the thread's pthread
 * id into a free entry of the thread table and sends the thread SIGPROF with pthread_kill; the
 * handler, seeing SI_TKILL, stores its gettid() in its entry, and the timer is made by the next
 * scan: at start, a moment later (start waits for the answers, so a short profile is not missing
 * its beginning); for threads started later, the manager's next round.
 *
 * Wall mode without waking sleepers.  A wall-clock timer interrupts its thread whether it runs or
 * not: a thread blocked in a system call, or waiting for the GIL, is woken for every sample, and at
 * 1 kHz those wake-ups cost more than all the rest (they displace the threads that run).  So a
 * thread that used less than 90% of the wall time on the CPU in the manager's last round is parked:
 * its wall timer stops and a timer on its CPU clock samples the time it still runs, while the
 * manager, at each round, counts the time it spent off the CPU as samples of the stack it shows
 * then.  The manager holds the GIL for that, and no thread's Python frames move while another
 * thread holds the GIL, so reading them is safe without a signal.  A parked thread that runs 90% of
 * a round again gets its wall timer back.  Off-CPU time is thus placed at the manager's 50 Hz:
 * exact for long waits, a statistical sample for short ones (waits for the GIL between two busy
 * threads).
 *
 * Who touches what:
 * - The signal handler (async-signal-safe: no malloc, no locks, no Python API, errno saved) reads
 *   `active`, `buffer`, `nframe` and the thread table's `ident` fields, writes a buffer slot or an
 *   entry's `tid`, all with atomics.  `inflight` counts handlers running, so that stop can wait for
 *   them before freeing the buffer.
 * - `table_mutex` guards the thread table (entries, timers).  Lock order: the GIL, then table_mutex;
 *   nothing waits for the GIL while holding table_mutex (the fork handlers take it).
 * - The counts (`counts`) and the stack table are touched only with the GIL held: by the manager
 *   between rounds, and by start/stop. */
#include "core/internal.h"
#include "core/frames.h"
#include "core/stacks.h"
#include "profile/profile.h"
#include "profile/samplebuf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

/* How often the manager folds the buffer and looks for new threads. */
#define MANAGER_PERIOD_NS (20 * 1000 * 1000)
#define MAX_NFRAME 512

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

typedef struct thread_entry {
  unsigned long ident; /* atomic: pthread id (threading.get_ident()); 0 = free entry */
  uint64_t serial;     /* the thread state's serial number (leak__frames_thread_serial); 0 when free */
  int tid;             /* atomic: kernel thread id, stored by the thread's own handler; 0 = not yet */
  int timer_state;     /* TIMER_NONE, TIMER_ARMED or TIMER_FAILED */
  int seen;            /* found in the current scan */
  timer_t timer;       /* the thread's CPU clock (cpu mode), the wall clock (wall mode) */
  /* Wall mode only (see "Wall mode without waking sleepers"); table_mutex. */
  int parked;          /* the wall timer is off, cpu_timer and the manager sample the thread */
  int can_park;        /* cpu_timer and cpu_clock exist */
  timer_t cpu_timer;   /* on the thread's CPU clock, armed while parked */
  clockid_t cpu_clock;
  int64_t wall_mark, cpu_mark; /* both clocks at the last round */
  int64_t off_carry;   /* off-CPU time not yet counted: less than one interval */
} thread_entry;
#define TIMER_NONE 0
#define TIMER_ARMED 1
#define TIMER_FAILED 2

typedef struct count_key {
  leak__stack_id stack;
  uint32_t pad; /* zero: the key is hashed as bytes */
  unsigned long thread;
} count_key;
typedef struct count_entry {
  count_key key;
  uint64_t count;
  UT_hash_handle hh;
} count_entry;

/* Read by the signal handler. */
static int active;                /* atomic: handlers record samples only while set */
static int inflight;              /* atomic: handlers running now */
static leak__samplebuf *buffer;   /* set before `active`, freed after it and inflight fall to 0 */
static int nframe_limit;
static thread_entry *threads;     /* table_mutex, except the atomic fields above */
static int max_threads;

static pthread_mutex_t table_mutex = PTHREAD_MUTEX_INITIALIZER;
static leak_sampler_options options;
static int running;               /* GIL: between a successful start and stop */
static int stale_child;           /* GIL: a forked child holds a session its parent started */
static PyThreadState *manager_tstate;
static pthread_t manager;
static int stop_requested;        /* wake_mutex */
static pthread_mutex_t wake_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond;  /* monotonic clock; initialised once */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static count_entry *counts;       /* GIL */
static leak_sampler_stats stats;  /* GIL, except threads counters (table_mutex) */
static struct timespec started;
static int fork_paused;           /* table_mutex held across fork */

/* A code object about to be freed may still be named by samples waiting in the buffer (they hold
 * no reference: a signal handler cannot take one).  Code made by exec or compile and dropped at once
 * (namedtuple, dataclasses, templates) is freed within the manager's period often enough to matter,
 * so the samples that name it are voided before the code goes.  CPython 3.12 added code watchers for
 * this, but 3.8 - 3.11 have none, so the sampler wraps the code type's deallocator instead: one
 * mechanism on every version.  The wrapper runs with the GIL held, like the consumer, so no drain
 * runs meanwhile; producers never write a frame of it (a code object on a live stack is not freed).
 * It stays installed once set (a pointer compare when the sampler is off). */
static destructor original_code_dealloc; /* GIL: set once */

static void code_dealloc_hook(PyObject *code) {
  if (__atomic_load_n(&active, __ATOMIC_SEQ_CST) && buffer) leak__samplebuf_forget_code(buffer, code);
  original_code_dealloc(code);
}

static void hook_code_dealloc_once(void) {
  if (original_code_dealloc) return;
  original_code_dealloc = PyCode_Type.tp_dealloc;
  PyCode_Type.tp_dealloc = code_dealloc_hook;
}

/* A clock's time in nanoseconds; -1 when it cannot be read (a thread's CPU clock after it ended). */
static int64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) return -1;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* Starts (every interval) or stops a timer. */
static void arm_timer(timer_t timer, int on) {
  struct itimerspec spec = {{0, 0}, {0, 0}};
  if (on) {
    spec.it_interval.tv_sec = options.interval_ns / 1000000000;
    spec.it_interval.tv_nsec = options.interval_ns % 1000000000;
    spec.it_value = spec.it_interval;
  }
  timer_settime(timer, 0, &spec, NULL);
}

/* A timer on `clock` that sends SIGPROF to the entry's thread, not armed yet; 0 or -1. */
static int new_timer(thread_entry *entry, clockid_t clock, timer_t *out) {
  struct sigevent event;
  memset(&event, 0, sizeof event);
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = SIGPROF;
  event.sigev_notify_thread_id = __atomic_load_n(&entry->tid, __ATOMIC_ACQUIRE);
  return timer_create(clock, &event, out) == 0 ? 0 : -1;
}


/* The handler's answer to the manager's ping: store this thread's kernel id in its entry.
 * Async-signal-safe: pthread_self reads a register, gettid is a system call. */
static void register_this_thread(void) {
  unsigned long self = (unsigned long)pthread_self();
  thread_entry *table = threads;
  for (int i = 0; i < max_threads; i++) {
    if (__atomic_load_n(&table[i].ident, __ATOMIC_ACQUIRE) == self) {
      __atomic_store_n(&table[i].tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
      return;
    }
  }
}

/* SIGPROF handler.  Async-signal-safe: no malloc, no locks, no Python API; errno saved.  Timer ticks
 * (SI_TIMER) record the interrupted thread's own stack; pings from the manager (SI_TKILL) register
 * the thread; anything else, and everything while not active, is ignored. */
static void on_sigprof(int signo, siginfo_t *info, void *context) {
  (void)signo;
  (void)context;
  int saved_errno = errno;
  __atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
  if (!__atomic_load_n(&active, __ATOMIC_SEQ_CST)) goto out;
  if (info->si_code == SI_TKILL) {
    register_this_thread();
    goto out;
  }
  if (info->si_code != SI_TIMER) goto out;
  PyThreadState *tstate = leak__frames_this_thread();
  if (tstate == NULL) goto out;
  leak__sample_slot *slot = leak__samplebuf_claim(buffer);
  if (slot == NULL) goto out;
  slot->nframe = leak__frames_read_depth_interrupted(tstate, slot->frames, nframe_limit, LEAK_STACK_MAX_DEPTH, &slot->depth);
  slot->thread_id = leak__frames_thread_id(tstate);
  slot->weight = info->si_overrun >= 0 ? 1 + info->si_overrun : 1;
  /* No frame read: the thread runs no Python, or was caught publishing a frame (see
   * leak__frames_read_depth_interrupted); the void slot is dropped by the consumer. */
  if (slot->nframe == 0) slot->nframe = -1;
  leak__samplebuf_publish(buffer, slot);
out:
  __atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
  errno = saved_errno;
}

/* Timers stop ticking while a fork copies the process (a tick in the forking thread would only
 * slow it, and a child must not inherit half-made state), and restart in the parent.  The child
 * has no timers and no manager thread: its session is over (stale_child) and is cleaned up by the
 * next start or stop there. */
static void arm_all_unlocked(int on) {
  for (int i = 0; i < max_threads; i++) {
    thread_entry *entry = &threads[i];
    if (entry->ident == 0 || entry->timer_state != TIMER_ARMED) continue;
    arm_timer(entry->timer, on && !entry->parked);
    if (entry->can_park) arm_timer(entry->cpu_timer, on && entry->parked);
  }
}
static void before_fork(void) {
  pthread_mutex_lock(&table_mutex);
  fork_paused = threads != NULL && __atomic_load_n(&active, __ATOMIC_SEQ_CST);
  if (fork_paused) arm_all_unlocked(0);
}
static void after_fork_parent(void) {
  if (fork_paused) arm_all_unlocked(1);
  fork_paused = 0;
  pthread_mutex_unlock(&table_mutex);
}
static void after_fork_child(void) {
  if (fork_paused) {
    __atomic_store_n(&active, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&inflight, 0, __ATOMIC_SEQ_CST);
    stale_child = running;
    running = 0;
  }
  fork_paused = 0;
  pthread_mutex_init(&wake_mutex, NULL);
  pthread_mutex_unlock(&table_mutex);
}

static void init_once(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&wake_cond, &attr);
  pthread_condattr_destroy(&attr);
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* Folds one buffered sample into the counts (GIL held: interning a new stack takes references). */
/* Adds `weight` samples of a stack of `thread` to the counts (GIL held: interning takes references). */
static void count_stack(const leak__frame *frames, int nframe, int depth, unsigned long thread, uint64_t weight) {
  uint32_t hash = leak__stacks_hash(frames, nframe, depth);
  leak__stacks_lock();
  leak__stack_id id = leak__stacks_intern_unlocked(frames, nframe, depth, hash, 1);
  leak__stacks_unlock();
  if (id == LEAK_STACK_NONE) {
    stats.dropped++;
    return;
  }
  count_key key;
  memset(&key, 0, sizeof key);
  key.stack = id;
  key.thread = thread;
  count_entry *entry;
  HASH_FIND(hh, counts, &key, sizeof key, entry);
  if (entry == NULL) {
    entry = leak__calloc(1, sizeof *entry);
    if (entry == NULL) {
      stats.dropped++;
      return;
    }
    entry->key = key;
    HASH_ADD(hh, counts, key, sizeof key, entry);
    if (entry->hh.tbl == NULL) { /* uthash ran out of memory (HASH_NONFATAL_OOM) */
      leak__free(entry);
      stats.dropped++;
      return;
    }
  }
  entry->count += weight;
  stats.samples += weight;
}

/* Folds one buffered sample into the counts (GIL held). */
static void fold_sample(const leak__sample_slot *slot, void *arg) {
  (void)arg;
  if (slot->nframe < 0) {
    stats.dropped++;
    return;
  }
  count_stack(slot->frames, slot->nframe, slot->depth, slot->thread_id, (uint64_t)slot->weight);
  stats.signals++;
}

/* Makes and arms the timer of a registered thread (table_mutex held, GIL held: the thread is alive).
 * In wall mode also the CPU-clock timer it is parked on: the thread starts parked. */
static void make_timer_unlocked(thread_entry *entry) {
  clockid_t cpu_clock;
  int have_cpu_clock = pthread_getcpuclockid((pthread_t)entry->ident, &cpu_clock) == 0;
  clockid_t clock = options.mode == LEAK_SAMPLER_CPU ? cpu_clock : CLOCK_MONOTONIC;
  if ((options.mode == LEAK_SAMPLER_CPU && !have_cpu_clock) || new_timer(entry, clock, &entry->timer) < 0) {
    entry->timer_state = TIMER_FAILED;
    stats.threads_missed++;
    return;
  }
  entry->parked = 0;
  entry->can_park = 0;
  if (options.mode == LEAK_SAMPLER_WALL && have_cpu_clock && new_timer(entry, cpu_clock, &entry->cpu_timer) == 0) {
    entry->can_park = 1;
    entry->parked = 1; /* until a round shows it busy: most threads wait (a new one often for the GIL) */
    entry->cpu_clock = cpu_clock;
    entry->wall_mark = now_ns();
    entry->cpu_mark = clock_ns(cpu_clock);
    entry->off_carry = 0;
    arm_timer(entry->cpu_timer, 1);
  }
  arm_timer(entry->timer, !entry->parked);
  entry->timer_state = TIMER_ARMED;
  stats.threads++;
}

static void release_entry_unlocked(thread_entry *entry) {
  if (entry->timer_state == TIMER_ARMED) timer_delete(entry->timer);
  if (entry->timer_state == TIMER_ARMED && entry->can_park) timer_delete(entry->cpu_timer);
  entry->can_park = 0;
  entry->timer_state = TIMER_NONE;
  __atomic_store_n(&entry->tid, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&entry->ident, 0, __ATOMIC_RELEASE);
  entry->serial = 0;
}

/* The entry of a thread state: matched on the pthread id and on the state's serial number, because a
 * pthread id is reused by the next thread as soon as one is joined (an entry matched on the id alone
 * kept the dead thread's timer, and the new thread was never sampled). */
static thread_entry *find_entry_unlocked(unsigned long ident, uint64_t serial) {
  for (int i = 0; i < max_threads; i++)
    if (threads[i].ident == ident && threads[i].serial == serial) return &threads[i];
  return NULL;
}

/* Gives every thread of the interpreter an entry (and a ping, then a timer), and lets go of the
 * entries of threads that are gone.  GIL held: a thread whose state is listed is alive, so
 * pthread_kill and pthread_getcpuclockid are safe on it.  Entries of gone threads are let go before
 * new ones are made, so that the ping of a thread that reuses a dead thread's id finds its own entry. */
static void scan_threads(PyInterpreterState *interp) {
  pthread_mutex_lock(&table_mutex);
  for (int i = 0; i < max_threads; i++) threads[i].seen = 0;
  for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
    thread_entry *entry = find_entry_unlocked(leak__frames_thread_id(ts), leak__frames_thread_serial(ts));
    if (entry != NULL) entry->seen = 1;
  }
  for (int i = 0; i < max_threads; i++)
    if (threads[i].ident != 0 && !threads[i].seen) release_entry_unlocked(&threads[i]);
  uint64_t missed = 0;
  for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
    if (ts == manager_tstate) continue;
    unsigned long ident = leak__frames_thread_id(ts);
    if (ident == 0) continue;
    uint64_t serial = leak__frames_thread_serial(ts);
    thread_entry *entry = find_entry_unlocked(ident, serial);
    if (entry == NULL) {
      entry = find_entry_unlocked(0, 0);
      if (entry == NULL) {
        missed++;
        continue;
      }
      int tid = leak__frames_native_thread_id(ts);
      __atomic_store_n(&entry->tid, tid, __ATOMIC_RELEASE);
      entry->serial = serial;
      __atomic_store_n(&entry->ident, ident, __ATOMIC_RELEASE);
      entry->timer_state = TIMER_NONE;
      if (tid == 0) pthread_kill((pthread_t)ident, SIGPROF); /* the handler stores its tid */
    }
    entry->seen = 1;
    if (entry->timer_state == TIMER_NONE && __atomic_load_n(&entry->tid, __ATOMIC_ACQUIRE) != 0)
      make_timer_unlocked(entry);
  }
  if (missed > stats.threads_missed) stats.threads_missed = missed;
  pthread_mutex_unlock(&table_mutex);
}

/* Waits up to `limit_ns` for every pinged thread to store its kernel id (before 3.11; see the top).
 * GIL held: the handlers that answer do not need it. */
static void await_pings(int64_t limit_ns) {
  int64_t deadline = now_ns() + limit_ns;
  for (;;) {
    int waiting = 0;
    pthread_mutex_lock(&table_mutex);
    for (int i = 0; i < max_threads; i++)
      if (threads[i].ident != 0 && threads[i].timer_state == TIMER_NONE && __atomic_load_n(&threads[i].tid, __ATOMIC_ACQUIRE) == 0)
        waiting = 1;
    pthread_mutex_unlock(&table_mutex);
    if (!waiting || now_ns() >= deadline) return;
    struct timespec pause = {0, 200 * 1000};
    nanosleep(&pause, NULL);
  }
}

/* Wall mode, once a round, GIL held (see "Wall mode without waking sleepers"): counts each parked
 * thread's time off the CPU since the last round as samples of the stack it shows now, and parks or
 * unparks each thread by how much of the round it ran.  `self` (the manager, or the thread stopping
 * the sampler, which runs) is left alone. */
static void pace_wall_threads(PyInterpreterState *interp, PyThreadState *self) {
  leak__frame frames[MAX_NFRAME];
  int64_t now = now_ns();
  pthread_mutex_lock(&table_mutex);
  for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
    if (ts == self || ts == manager_tstate) continue;
    thread_entry *entry = find_entry_unlocked(leak__frames_thread_id(ts), leak__frames_thread_serial(ts));
    if (entry == NULL || entry->timer_state != TIMER_ARMED || !entry->can_park) continue;
    int64_t cpu = clock_ns(entry->cpu_clock);
    if (cpu < 0) continue;
    int64_t wall_spent = now - entry->wall_mark, cpu_spent = cpu - entry->cpu_mark;
    entry->wall_mark = now;
    entry->cpu_mark = cpu;
    if (entry->parked && wall_spent > cpu_spent) {
      entry->off_carry += wall_spent - cpu_spent;
      uint64_t whole = (uint64_t)(entry->off_carry / options.interval_ns);
      entry->off_carry -= (int64_t)whole * options.interval_ns;
      if (whole > 0) {
        int depth;
        int n = leak__frames_read_depth(ts, frames, nframe_limit, LEAK_STACK_MAX_DEPTH, &depth);
        if (n > 0) count_stack(frames, n, depth, leak__frames_thread_id(ts), whole);
      }
    }
    int busy = cpu_spent >= wall_spent / 10 * 9;
    if (entry->parked == busy) {
      entry->parked = !busy;
      entry->off_carry = 0;
      arm_timer(entry->timer, busy);
      arm_timer(entry->cpu_timer, !busy);
    }
  }
  pthread_mutex_unlock(&table_mutex);
}

/* One round of the manager, GIL held: fold what the handlers buffered, then cover new threads. */
static void manager_round(void) {
  leak__samplebuf_drain(buffer, fold_sample, NULL);
  scan_threads(PyThreadState_GetInterpreter(manager_tstate));
  if (options.mode == LEAK_SAMPLER_WALL) pace_wall_threads(PyThreadState_GetInterpreter(manager_tstate), manager_tstate);
}

/* The manager thread: every MANAGER_PERIOD_NS, takes the GIL for one round.  It blocks SIGPROF so
 * that it is never sampled itself.  Its thread state is made by PyGILState_Ensure in the thread
 * itself (a state made elsewhere is bound to its maker's thread from 3.12 on) and goes with
 * PyGILState_Release when it ends, under the GIL that stop released while joining it. */
static void *manager_main(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  PyGILState_STATE gil = PyGILState_Ensure();
  manager_tstate = PyThreadState_Get();
  PyThreadState *saved = PyEval_SaveThread();
  pthread_mutex_lock(&wake_mutex);
  while (!stop_requested) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += MANAGER_PERIOD_NS;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
    while (!stop_requested && pthread_cond_timedwait(&wake_cond, &wake_mutex, &deadline) != ETIMEDOUT) {
    }
    if (stop_requested) break;
    pthread_mutex_unlock(&wake_mutex);
    PyEval_RestoreThread(saved);
    manager_round();
    saved = PyEval_SaveThread();
    pthread_mutex_lock(&wake_mutex);
  }
  pthread_mutex_unlock(&wake_mutex);
  PyEval_RestoreThread(saved);
  manager_tstate = NULL;
  PyGILState_Release(gil);
  return NULL;
}

static void free_counts(void) {
  count_entry *entry, *tmp;
  HASH_ITER(hh, counts, entry, tmp) {
    HASH_DEL(counts, entry);
    leak__free(entry);
  }
  counts = NULL;
}

/* What a forked child inherited from its parent's session: drop it (GIL held). */
static void forget_stale_session(void) {
  if (!stale_child) return;
  stale_child = 0;
  free_counts();
  leak__free(threads);
  threads = NULL;
  leak__samplebuf_free(buffer);
  buffer = NULL;
  manager_tstate = NULL; /* its thread does not exist here; the state is left as it is */
  leak__stacks_unpin();
}

/* Installs the handler (once per start: another library may have replaced it meanwhile). */
static int install_handler(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_sigprof;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  return sigaction(SIGPROF, &action, NULL) == 0 ? 0 : -errno;
}

int leak_sampler_start(const leak_sampler_options *opts) {
  if (opts == NULL || opts->interval_ns <= 0 || (opts->mode != LEAK_SAMPLER_CPU && opts->mode != LEAK_SAMPLER_WALL) ||
      opts->nframe < 1 || opts->nframe > MAX_NFRAME || opts->buffer_samples < 1 || opts->max_threads < 1)
    return LEAK_EINVAL;
  if (!Py_IsInitialized() || !PyGILState_Check()) return LEAK_ENOPYTHON;
  forget_stale_session();
  if (running) return LEAK_EBUSY;
  pthread_once(&once, init_once);
  hook_code_dealloc_once();
  leak__samplebuf *buf = leak__samplebuf_new(opts->buffer_samples, opts->nframe);
  thread_entry *table = leak__calloc((size_t)opts->max_threads, sizeof *table);
  if (buf == NULL || table == NULL) {
    leak__samplebuf_free(buf);
    leak__free(table);
    return LEAK_ENOMEM;
  }
  int rc = install_handler();
  if (rc < 0) {
    leak__samplebuf_free(buf);
    leak__free(table);
    return rc;
  }
  pthread_mutex_lock(&table_mutex);
  options = *opts;
  buffer = buf;
  nframe_limit = opts->nframe;
  threads = table;
  max_threads = opts->max_threads;
  memset(&stats, 0, sizeof stats);
  manager_tstate = NULL; /* the manager sets it */
  stop_requested = 0;
  clock_gettime(CLOCK_MONOTONIC, &started);
  leak__stacks_pin(); /* the counts hold stack ids: no clear may free them until stop */
  __atomic_store_n(&active, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&table_mutex);
  /* Cover the threads that exist now at once: timers now, or (before 3.11) after their answers. */
  PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
  scan_threads(interp);
  await_pings(20 * 1000 * 1000);
  scan_threads(interp);
  rc = pthread_create(&manager, NULL, manager_main, NULL);
  if (rc != 0) {
    __atomic_store_n(&active, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&table_mutex);
    for (int i = 0; i < max_threads; i++)
      if (threads[i].ident) release_entry_unlocked(&threads[i]);
    pthread_mutex_unlock(&table_mutex);
    while (__atomic_load_n(&inflight, __ATOMIC_SEQ_CST) != 0) sched_yield();
    leak__stacks_unpin();
    leak__samplebuf_free(buffer);
    leak__free(threads);
    buffer = NULL;
    threads = NULL;
    return -rc;
  }
  running = 1;
  return 0;
}

/* Turns counts into a profile (GIL held): names and lines of each code object resolved once per
 * (code, offset) through the profile's own frame deduplication. */
static int build_profile(leak_profile **out) {
  static const char *const names[] = {"samples"};
  static const char *const units[] = {"count"};
  leak_profile *p = NULL;
  int rc = leak_profile_new(1, names, units, &p);
  if (rc < 0) return rc;
  leak_profile_set_period(p, options.mode == LEAK_SAMPLER_CPU ? "cpu" : "wall", "nanoseconds", options.interval_ns);
  leak_profile_set_duration(p, stats.duration_ns);
  uint32_t frames[MAX_NFRAME];
  count_entry *entry, *tmp;
  HASH_ITER(hh, counts, entry, tmp) {
    const leak__frame *stack;
    int n, depth;
    if (leak__stacks_lookup_depth(entry->key.stack, &stack, &n, &depth) < 0) continue;
    if (n > MAX_NFRAME) n = MAX_NFRAME;
    uint32_t thread;
    rc = leak_profile_add_thread(p, entry->key.thread, NULL, &thread);
    for (int i = 0; rc == 0 && i < n; i++) {
      PyCodeObject *code = stack[i].code;
      PyObject *name = PyObject_GetAttrString((PyObject *)code, "co_qualname");
      if (name == NULL) {
        PyErr_Clear();
        name = Py_NewRef(code->co_name);
      }
      const char *fn = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
      const char *file = PyUnicode_Check(code->co_filename) ? PyUnicode_AsUTF8(code->co_filename) : NULL;
      if (fn == NULL || file == NULL) PyErr_Clear();
      rc = leak_profile_add_frame(p, fn ? fn : "?", file ? file : "?", leak__frame_lineno(code, stack[i].lasti),
                                  &frames[i]);
      Py_DECREF(name);
    }
    int64_t value = (int64_t)entry->count;
    if (rc == 0) rc = leak_profile_add_sample(p, thread, frames, (uint32_t)n, &value);
    if (rc < 0) break;
  }
  if (rc < 0) {
    leak_profile_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int leak_sampler_stop(leak_profile **out) {
  if (!Py_IsInitialized() || !PyGILState_Check()) return LEAK_ENOPYTHON;
  forget_stale_session();
  if (!running) return LEAK_ENOTSTARTED;
  pthread_mutex_lock(&wake_mutex);
  stop_requested = 1;
  pthread_cond_signal(&wake_cond);
  pthread_mutex_unlock(&wake_mutex);
  Py_BEGIN_ALLOW_THREADS pthread_join(manager, NULL);
  Py_END_ALLOW_THREADS

  /* The parked threads' time off the CPU since the last round. */
  if (options.mode == LEAK_SAMPLER_WALL)
    pace_wall_threads(PyThreadState_GetInterpreter(PyThreadState_Get()), PyThreadState_Get());
  /* No more ticks, then no handler left mid-sample: the buffer can be drained for the last time. */
  pthread_mutex_lock(&table_mutex);
  for (int i = 0; i < max_threads; i++)
    if (threads[i].ident) release_entry_unlocked(&threads[i]);
  __atomic_store_n(&active, 0, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&table_mutex);
  while (__atomic_load_n(&inflight, __ATOMIC_SEQ_CST) != 0) sched_yield();
  leak__samplebuf_drain(buffer, fold_sample, NULL);
  stats.dropped += leak__samplebuf_dropped(buffer);
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  stats.duration_ns = (int64_t)(end.tv_sec - started.tv_sec) * 1000000000 + (end.tv_nsec - started.tv_nsec);

  int rc = 0;
  if (out) rc = build_profile(out);
  free_counts();
  leak__stacks_unpin();
  leak__samplebuf_free(buffer);
  buffer = NULL;
  leak__free(threads);
  threads = NULL;
  running = 0;
  return rc;
}

int leak_sampler_is_running(void) { return running; }

void leak_sampler_get_stats(leak_sampler_stats *out) {
  if (out == NULL) return;
  *out = stats;
  if (running) {
    out->dropped += leak__samplebuf_dropped(buffer);
    out->duration_ns = now_ns() - ((int64_t)started.tv_sec * 1000000000 + started.tv_nsec);
  }
}
