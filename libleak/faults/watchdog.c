/* Watchdogs: stack dumps after a timeout (faulthandler.dump_traceback_later, and scoped timers that
 * never cancel each other).  The public contract is include/libleak/faults.h.
 *
 * Every watchdog has its own deadline; one service thread, started the first time a watchdog is
 * armed, sleeps until the earliest deadline (pthread_cond_timedwait on CLOCK_MONOTONIC) and dumps.
 * The dump runs while other threads hold the GIL, so it follows the signal-handler rules: it goes
 * through faults/dump.c, which neither allocates, locks, nor calls Python.  `lock` is never held
 * during a dump, so arming and cancelling never wait for one, except a cancel of the watchdog
 * being dumped, which waits until the dump is out (its fd may be closed right after). */
#include "core/internal.h"
#include "faults/dump.h"
#include "core/frames.h"
#include "core/sigsafe.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SECOND 1000000000LL

/* Longest timeout: the deadline in nanoseconds must fit an int64 (faulthandler's limit is the
 * same order: its timeout is kept in int64 nanoseconds too). */
#define MAX_TIMEOUT_SECONDS 9.0e9

struct leak_watchdog {
  leak_watchdog *next;           /* in `armed_list` while armed; under lock */
  int64_t deadline_ns;           /* CLOCK_MONOTONIC; under lock */
  int64_t timeout_ns;            /* set at start, then read-only */
  int fd;                        /* set at start, then read-only */
  unsigned flags;                /* set at start, then read-only */
  PyInterpreterState *interp;    /* the interpreter whose threads are dumped; read-only */
  PyThreadState *owner;          /* the thread that armed it, dumped alone without ALL_THREADS */
  int armed;                     /* in armed_list; under lock */
  int firing;                    /* the service thread is writing its dump; under lock */
  size_t header_len;             /* "Timeout (0:00:05)!\n", formatted at start */
  char header[64];
};

/* Protects armed_list, every watchdog's next/deadline_ns/armed/firing, and service_running. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Wakes the service thread when the earliest deadline may have changed (CLOCK_MONOTONIC). */
static pthread_cond_t wake;
/* Broadcast by the service thread after each dump, for cancels waiting on it. */
static pthread_cond_t dump_done;
/* Armed watchdogs, unordered (a handful at a time: a scan is cheaper than keeping them sorted). */
static leak_watchdog *armed_list;
/* The service thread exists (0 again in a forked child, where it does not). */
static int service_running;

/* The process-wide watchdog of leak_dump_later; protected by later_lock, which is taken before
 * `lock` when both are held. */
static pthread_mutex_t later_lock = PTHREAD_MUTEX_INITIALIZER;
static leak_watchdog *later;

/* Runs init_watchdogs once per process (pthread_once is its own protection). */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The condition variables need attributes (the monotonic clock), so they are set up at run time;
 * a forked child sets them up again because the parent's waiters do not exist there. */
static void init_conditions(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&wake, &attr);
  pthread_condattr_destroy(&attr);
  pthread_cond_init(&dump_done, NULL);
}

/* fork: both locks are held across it so the child never inherits them mid-update. */
static void before_fork(void) {
  pthread_mutex_lock(&later_lock);
  pthread_mutex_lock(&lock);
}

/* The parent keeps everything as it was. */
static void after_fork_parent(void) {
  pthread_mutex_unlock(&lock);
  pthread_mutex_unlock(&later_lock);
}

/* The child has no service thread, so the parent's watchdogs can never fire there: they are
 * disarmed (their memory stays, for the child's own leak_watchdog_cancel calls), and the next
 * leak_watchdog_start starts a fresh service thread. */
static void after_fork_child(void) {
  for (leak_watchdog *w = armed_list; w != NULL; w = w->next) {
    w->armed = 0;
    w->firing = 0;
  }
  armed_list = NULL;
  service_running = 0;
  init_conditions();
  pthread_mutex_unlock(&lock);
  pthread_mutex_unlock(&later_lock);
}

/* Condition variables and fork handlers, set up by the first watchdog call. */
static void init_watchdogs(void) {
  init_conditions();
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* Deadlines use the monotonic clock so that setting the wall clock never fires or delays them. */
static int64_t monotonic_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * NS_PER_SECOND + now.tv_nsec;
}

/* Removes `w` from armed_list.  Expects lock held. */
static void unlink_locked(leak_watchdog *w) {
  for (leak_watchdog **link = &armed_list; *link != NULL; link = &(*link)->next) {
    if (*link == w) {
      *link = w->next;
      break;
    }
  }
  w->next = NULL;
  w->armed = 0;
}

/* The armed watchdog due first, or NULL.  Expects lock held. */
static leak_watchdog *earliest_locked(void) {
  leak_watchdog *best = NULL;
  for (leak_watchdog *w = armed_list; w != NULL; w = w->next)
    if (!w->firing && (best == NULL || w->deadline_ns < best->deadline_ns)) best = w;
  return best;
}

/* The dump itself, in the service thread, without `lock`.  Async-signal-safe code only: other
 * threads hold the GIL and may be anywhere.  A watchdog whose interpreter was finalised dumps
 * nothing (finalisation clears the runtime's main interpreter).  A dump already being written (a
 * signal's, dump_traceback's) is waited for through the dump guard, so the two never interleave;
 * dumps owed to signals that arrived meanwhile are written after this one. */
static void write_dump(const leak_watchdog *w) {
  leak__dump_guard_take(-1);
  leak__sigsafe_out out;
  leak__sigsafe_init(&out, w->fd);
  leak__sigsafe_putn(&out, w->header, w->header_len);
  leak__sigsafe_flush(&out);
  if (leak__frames_main_interpreter() != NULL) {
    if ((w->flags & LEAK_DUMP_ALL_THREADS) || w->owner == NULL)
      leak__dump_all_threads(&out, w->interp, NULL);
    else
      leak__dump_thread_if_alive(&out, w->interp, w->owner);
  }
  leak__dump_guard_release();
  leak__faults_write_owed_dumps();
}

/* Dumps `w`, then re-arms it (REPEAT), ends the process (EXIT), or disarms it.  Called and returns
 * with lock held; releases it during the dump. */
static void fire_locked(leak_watchdog *w) {
  w->firing = 1;
  pthread_mutex_unlock(&lock);
  write_dump(w);
  if (w->flags & LEAK_DUMP_EXIT) _exit(1);
  pthread_mutex_lock(&lock);
  w->firing = 0;
  if (w->armed) {
    if (w->flags & LEAK_DUMP_REPEAT)
      w->deadline_ns = monotonic_ns() + w->timeout_ns;
    else
      unlink_locked(w);
  }
  pthread_cond_broadcast(&dump_done);
}

/* The service thread: sleeps until the earliest deadline, fires what is due, forever.  It lives
 * as long as the process (idle, it costs one sleeping thread). */
static void *service_main(void *unused) {
  (void)unused;
  pthread_mutex_lock(&lock);
  for (;;) {
    leak_watchdog *next = earliest_locked();
    if (next == NULL) {
      pthread_cond_wait(&wake, &lock);
      continue;
    }
    if (monotonic_ns() < next->deadline_ns) {
      struct timespec until = {(time_t)(next->deadline_ns / NS_PER_SECOND), (long)(next->deadline_ns % NS_PER_SECOND)};
      pthread_cond_timedwait(&wake, &lock, &until);
      continue;
    }
    fire_locked(next);
  }
  return NULL;
}

/* Started lazily, detached, with every signal blocked: process-directed signals (a user's kill
 * -USR1) must go to threads that run Python, not to the dumper.  Expects lock held. */
static int ensure_service_locked(void) {
  if (service_running) return 0;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, service_main, NULL);
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  pthread_attr_destroy(&attr);
  if (err != 0) return err == ENOMEM ? LEAK_ENOMEM : LEAK_EAGAIN;
  service_running = 1;
  return 0;
}

/* Argument checks shared by leak_watchdog_start and leak_dump_later (which must not cancel the old
 * watchdog for a call that will fail). */
static int check_arguments(double timeout, int fd) {
  if (!(timeout > 0)) return LEAK_EINVAL; /* also NaN */
  if (timeout > MAX_TIMEOUT_SECONDS) return LEAK_ERANGE;
  if (fd < 0) return LEAK_EBADF;
  return 0;
}

/* faulthandler's header, "Timeout (H:MM:SS)!" with ".uuuuuu" when the timeout has microseconds;
 * faulthandler rounds the timeout up to whole microseconds. */
static void format_header(leak_watchdog *w) {
  int64_t us = (w->timeout_ns + 999) / 1000;
  unsigned long long seconds = (unsigned long long)(us / 1000000);
  unsigned micro = (unsigned)(us % 1000000);
  unsigned long long hours = seconds / 3600, minutes = (seconds / 60) % 60;
  seconds %= 60;
  int n;
  if (micro != 0)
    n = snprintf(w->header, sizeof w->header, "Timeout (%llu:%02llu:%02llu.%06u)!\n", hours, minutes, seconds, micro);
  else
    n = snprintf(w->header, sizeof w->header, "Timeout (%llu:%02llu:%02llu)!\n", hours, minutes, seconds);
  w->header_len = n < 0 ? 0 : (size_t)n < sizeof w->header ? (size_t)n : sizeof w->header - 1;
}

/* Arms a watchdog of its own: nothing else ever touches its deadline.  The caller owns *out and
 * gives it back with leak_watchdog_cancel. */
int leak_watchdog_start(double timeout, int fd, unsigned flags, leak_watchdog **out) {
  if (out == NULL) return LEAK_EINVAL;
  *out = NULL;
  int rc = check_arguments(timeout, fd);
  if (rc < 0) return rc;
  pthread_once(&init_once, init_watchdogs);
  leak_watchdog *w = leak__calloc(1, sizeof *w);
  if (w == NULL) return LEAK_ENOMEM;
  double ns = timeout * (double)NS_PER_SECOND;
  w->timeout_ns = (int64_t)ns;
  if ((double)w->timeout_ns < ns) w->timeout_ns++; /* rounded up, as faulthandler does */
  w->fd = fd;
  w->flags = flags;
  leak__dump_remember_interp();
  w->owner = leak__frames_this_thread();
  w->interp = w->owner ? leak__frames_interpreter(w->owner) : leak__dump_interp();
  format_header(w);
  pthread_mutex_lock(&lock);
  rc = ensure_service_locked();
  if (rc < 0) {
    pthread_mutex_unlock(&lock);
    leak__free(w);
    return rc;
  }
  int64_t now = monotonic_ns();
  w->deadline_ns = w->timeout_ns > INT64_MAX - now ? INT64_MAX : now + w->timeout_ns;
  w->next = armed_list;
  armed_list = w;
  w->armed = 1;
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&lock);
  *out = w;
  return 0;
}

/* Disarms and frees; if the service thread is writing this watchdog's dump right now, waits for it
 * so the caller may close the fd as soon as this returns. */
void leak_watchdog_cancel(leak_watchdog *watchdog) {
  if (watchdog == NULL) return;
  pthread_once(&init_once, init_watchdogs);
  pthread_mutex_lock(&lock);
  if (watchdog->armed) unlink_locked(watchdog);
  while (watchdog->firing) pthread_cond_wait(&dump_done, &lock);
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&lock);
  leak__free(watchdog);
}

/* faulthandler.dump_traceback_later: one watchdog for the process, replaced by each call.  It
 * always dumps every thread, as faulthandler's does.  Bad arguments leave the old one armed. */
int leak_dump_later(double timeout, int fd, unsigned flags) {
  int rc = check_arguments(timeout, fd);
  if (rc < 0) return rc;
  pthread_once(&init_once, init_watchdogs);
  pthread_mutex_lock(&later_lock);
  leak_watchdog_cancel(later);
  later = NULL;
  rc = leak_watchdog_start(timeout, fd, (flags & (LEAK_DUMP_REPEAT | LEAK_DUMP_EXIT)) | LEAK_DUMP_ALL_THREADS, &later);
  pthread_mutex_unlock(&later_lock);
  return rc;
}

/* faulthandler.cancel_dump_traceback_later. */
void leak_dump_later_cancel(void) {
  pthread_once(&init_once, init_watchdogs);
  pthread_mutex_lock(&later_lock);
  leak_watchdog_cancel(later);
  later = NULL;
  pthread_mutex_unlock(&later_lock);
}
