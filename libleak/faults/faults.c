/* Fatal-signal and user-signal handlers that dump the Python stacks (faulthandler's enable() and
 * register()).  The public contract is include/libleak/faults.h.
 *
 * The functions that install and remove handlers run in normal code and are serialised by
 * config_lock.  The handlers themselves (fatal_signal_handler, user_signal_handler) follow the
 * signal-handler rules: no malloc, no locks, no Python API, errno saved and restored, only
 * async-signal-safe calls (write, sigaction, raise); they never take config_lock, and read the
 * tables below through fields that are written before the handler is installed. */
#include "core/internal.h"
#include "faults/dump.h"
#include "core/frames.h"
#include "core/sigsafe.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>

/* One fatal signal and the handler we replaced. */
typedef struct fatal_signal {
  int signum;
  volatile sig_atomic_t installed; /* our handler is in place; cleared by the handler itself */
  struct sigaction previous;
} fatal_signal;

/* The fatal signals, in faulthandler's order.  Written under config_lock; read by the handler. */
static fatal_signal fatal_signals[] = {
    {SIGBUS, 0, {{0}}}, {SIGILL, 0, {{0}}}, {SIGFPE, 0, {{0}}}, {SIGABRT, 0, {{0}}}, {SIGSEGV, 0, {{0}}},
};

/* Where and how the fatal handler dumps.  Written under config_lock before the handlers are
 * installed; read by the handler without a lock (one int each). */
static volatile int fatal_fd = -1;
static volatile unsigned fatal_flags;
static volatile sig_atomic_t fatal_enabled;

/* One user signal (leak_faults_register).  Indexed by signal number; written under config_lock,
 * read by the handler. */
typedef struct user_signal {
  volatile sig_atomic_t installed;
  volatile int fd;
  volatile unsigned flags;
  struct sigaction previous;
} user_signal;
static user_signal user_signals[NSIG];

/* Registered signals whose dump is owed (bit signum - 1).  A user-signal handler records who
 * received the signal, sets its bit, then tries to take the dump guard (faults/dump.h) without
 * waiting; whoever holds the guard writes the owed dumps after giving it back, so a registered
 * signal that arrives during another dump (a different signal, the same one with chain, a
 * watchdog's dump, dump_traceback) gets its dump right after, instead of none and instead of one cut
 * into the other.  Lock-free atomics: async-signal-safe. */
static uint64_t pending_user_signals;
_Static_assert(NSIG <= 65, "pending_user_signals has one bit per signal number 1 - 64");

/* The thread that received each owed signal (its thread state, NULL for a thread without Python),
 * stored before the signal's bit is set and read after the bit is taken: its dump names that thread
 * as the current one, whoever writes it.  Only compared with the interpreter's threads, never read
 * through, since the thread may have ended meanwhile.  Atomic pointers. */
static PyThreadState *owed_receiver[NSIG];

/* How long a fatal signal waits for another thread's dump to finish before writing its report
 * anyway: a crash report must not be lost, nor the crash turned into a hang, because a watchdog's
 * dump is stuck on a pipe nobody reads. */
#define FATAL_GUARD_WAIT_MS 5000

/* Serialises enable/disable/register/unregister and the alternate stack below.  Never taken by a
 * handler. */
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;

/* The alternate signal stack, so a stack overflow can still be reported.  Allocated once, under
 * config_lock, and installed on the first thread that enables a handler (a signal stack belongs
 * to one thread: sharing it between threads would let two handlers run on the same memory). */
static stack_t alt_stack;

/* A fork while another thread holds config_lock would leave it locked forever in the child, so
 * fork handlers hold it across fork; atfork_once registers them once (pthread_once protects it). */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void lock_for_fork(void) { pthread_mutex_lock(&config_lock); }
static void unlock_after_fork(void) { pthread_mutex_unlock(&config_lock); }
static void register_atfork(void) { pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork); }

/* Takes config_lock, registering the fork handlers the first time. */
static void config_lock_take(void) {
  pthread_once(&atfork_once, register_atfork);
  pthread_mutex_lock(&config_lock);
}

/* Allocated at enable time, never in a handler, and sized as the kernel asks
 * (SIGSTKSZ + AT_MINSIGSTKSZ: the latter grows with the CPU's register file).  A thread that already
 * has an alternate stack (the host's, or Python's faulthandler's) keeps it.  Expects config_lock. */
static int ensure_alt_stack_locked(void) {
  if (alt_stack.ss_sp != NULL) return 0;
  stack_t current;
  if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return 0;
  size_t size = (size_t)SIGSTKSZ + (size_t)getauxval(AT_MINSIGSTKSZ);
  void *memory = leak__malloc(size);
  if (memory == NULL) return LEAK_ENOMEM;
  stack_t stack = {.ss_sp = memory, .ss_size = size, .ss_flags = 0};
  if (sigaltstack(&stack, NULL) != 0) {
    leak__free(memory);
    return LEAK_EIO;
  }
  alt_stack = stack;
  return 0;
}

/* The table entry of a fatal signal, or NULL.  Async-signal-safe. */
static fatal_signal *find_fatal(int signum) {
  for (size_t i = 0; i < LEAK_ARRAY_SIZE(fatal_signals); i++)
    if (fatal_signals[i].signum == signum) return &fatal_signals[i];
  return NULL;
}

/* The dump both kinds of handler write, for a signal that `receiver` got (NULL: a thread without
 * Python): every thread with the receiver marked as current, or the receiver's stack alone.  The
 * receiver may be another thread than the one writing (an owed dump), which may have ended: it is
 * looked up among the interpreter's threads before its stack is read.  Signal handler context:
 * async-signal-safe only. */
static void dump_from_handler(leak__sigsafe_out *out, unsigned flags, PyThreadState *receiver) {
  PyThreadState *writer = leak__frames_this_thread();
  PyInterpreterState *interp = writer ? leak__frames_interpreter(writer) : leak__dump_interp();
  if (flags & LEAK_DUMP_ALL_THREADS)
    leak__dump_all_threads(out, interp, receiver);
  else if (receiver != NULL && receiver == writer)
    leak__dump_current_thread(out, receiver);
  else if (receiver != NULL)
    leak__dump_current_thread_if_alive(out, interp, receiver);
}

/* SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL.  SIGNAL HANDLER: no malloc, no locks, no Python API;
 * errno preserved.  The previous handler is restored first, so a fault inside the dump goes
 * straight to it; then the report is written and the signal raised again so the previous handler
 * (or the default action: core dump and death) runs as if we had never been there. */
static void fatal_signal_handler(int signum, siginfo_t *info, void *context) {
  int saved_errno = errno;
  fatal_signal *entry = find_fatal(signum);
  if (entry == NULL) return;
  /* `previous` is filled by the sigaction call that installed us, before any delivery. */
  sigaction(signum, &entry->previous, NULL);
  entry->installed = 0;
  /* A fault inside a dump of this thread gets no report of its own (it would cut into that dump);
   * another thread's dump is waited for, within a bound. */
  int guard = leak__dump_guard_take(FATAL_GUARD_WAIT_MS);
  if (guard != LEAK_DUMP_GUARD_MINE) {
    leak__sigsafe_out out;
    leak__sigsafe_init(&out, fatal_fd);
    leak__sigsafe_puts(&out, "Fatal Python error: ");
    leak__sigsafe_puts(&out, leak__dump_fatal_name(signum));
    leak__sigsafe_puts(&out, "\n\n");
    leak__sigsafe_flush(&out);
    PyThreadState *current = leak__frames_this_thread();
    dump_from_handler(&out, fatal_flags, current);
    leak__dump_extension_modules(&out, current ? leak__frames_interpreter(current) : leak__dump_interp());
    if (guard == LEAK_DUMP_GUARD_TAKEN) leak__dump_guard_release();
  }
  errno = saved_errno;
  raise(signum);
}

/* Chains to the handler that was there before.  SIGNAL HANDLER context.  A handler function is
 * called directly (with the siginfo if it wants one); SIG_IGN means nothing more to do; SIG_DFL is
 * what faulthandler does: put it back, raise the signal so the kernel performs the default action
 * (for most signals: terminate), and reinstall ours if the process survives. */
static void call_previous(int signum, siginfo_t *info, void *context, const struct sigaction *previous) {
  if (previous->sa_flags & SA_SIGINFO) {
    if (previous->sa_sigaction != NULL) previous->sa_sigaction(signum, info, context);
  } else if (previous->sa_handler == SIG_DFL) {
    struct sigaction ours;
    if (sigaction(signum, previous, &ours) != 0) return;
    raise(signum);
    sigaction(signum, &ours, NULL);
  } else if (previous->sa_handler != SIG_IGN && previous->sa_handler != NULL) {
    previous->sa_handler(signum);
  }
}

/* The dump of one registered signal, to its file with its flags, naming the thread that received
 * it; nothing if it was unregistered meanwhile.  SIGNAL HANDLER context, with the guard held. */
static void dump_user_signal(int signum) {
  user_signal *entry = &user_signals[signum];
  if (!entry->installed) return;
  leak__sigsafe_out out;
  leak__sigsafe_init(&out, entry->fd);
  dump_from_handler(&out, entry->flags, __atomic_load_n(&owed_receiver[signum], __ATOMIC_ACQUIRE));
}

/* See faults/dump.h.  Writes every owed dump while this thread can take the guard; re-checks after
 * letting go, so a bit set by a handler that found the guard taken is never left behind.  SIGNAL
 * HANDLER context (also called by the watchdog thread and leak_dump_stacks). */
void leak__faults_write_owed_dumps(void) {
  while (__atomic_load_n(&pending_user_signals, __ATOMIC_SEQ_CST) != 0 &&
         leak__dump_guard_take(0) == LEAK_DUMP_GUARD_TAKEN) {
    uint64_t owed = __atomic_exchange_n(&pending_user_signals, 0, __ATOMIC_SEQ_CST);
    for (int signum = 1; owed != 0; signum++, owed >>= 1)
      if (owed & 1) dump_user_signal(signum);
    leak__dump_guard_release();
  }
}

/* Signals given to leak_faults_register.  SIGNAL HANDLER: no malloc, no locks, no Python API;
 * errno preserved.  The receiver is recorded before the bit is set, so whoever takes the bit finds
 * it; two deliveries of one signal before its dump is written make one dump, naming the later
 * receiver (the kernel merges repeats of a pending signal the same way). */
static void user_signal_handler(int signum, siginfo_t *info, void *context) {
  int saved_errno = errno;
  if (signum < 1 || signum >= NSIG) return;
  user_signal *entry = &user_signals[signum];
  if (!entry->installed) return;
  unsigned flags = entry->flags;
  __atomic_store_n(&owed_receiver[signum], leak__frames_this_thread(), __ATOMIC_RELEASE);
  __atomic_fetch_or(&pending_user_signals, 1ull << (signum - 1), __ATOMIC_SEQ_CST);
  leak__faults_write_owed_dumps();
  if (flags & LEAK_DUMP_CHAIN) {
    errno = saved_errno;
    call_previous(signum, info, context, &entry->previous);
  }
  errno = saved_errno;
}

/* sigaction failures become error codes: EINVAL for signals that cannot be caught. */
static int sigaction_error(void) { return errno == EINVAL ? LEAK_EINVAL : LEAK_EIO; }

/* faulthandler.enable(): the previous handlers are saved once, so enabling again only changes where
 * and how the dump is written.  If one signal cannot be hooked, the ones hooked by this call are
 * put back and nothing changes. */
int leak_faults_enable(int fd, unsigned flags) {
  if (fd < 0) return LEAK_EBADF;
  config_lock_take();
  int rc = ensure_alt_stack_locked();
  if (rc < 0) goto done;
  leak__dump_remember_interp();
  fatal_fd = fd;
  fatal_flags = flags;
  struct sigaction action;
  sigemptyset(&action.sa_mask);
  action.sa_sigaction = fatal_signal_handler;
  action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  int hooked_now[LEAK_ARRAY_SIZE(fatal_signals)] = {0};
  for (size_t i = 0; i < LEAK_ARRAY_SIZE(fatal_signals); i++) {
    fatal_signal *entry = &fatal_signals[i];
    if (entry->installed) continue;
    if (sigaction(entry->signum, &action, &entry->previous) != 0) {
      rc = sigaction_error();
      for (size_t j = 0; j < i; j++) {
        if (!hooked_now[j]) continue;
        sigaction(fatal_signals[j].signum, &fatal_signals[j].previous, NULL);
        fatal_signals[j].installed = 0;
      }
      goto done;
    }
    entry->installed = 1;
    hooked_now[i] = 1;
  }
  fatal_enabled = 1;
done:
  pthread_mutex_unlock(&config_lock);
  return rc;
}

/* faulthandler.disable(): every handler goes back to what it was. */
int leak_faults_disable(void) {
  config_lock_take();
  for (size_t i = 0; i < LEAK_ARRAY_SIZE(fatal_signals); i++) {
    fatal_signal *entry = &fatal_signals[i];
    if (!entry->installed) continue;
    sigaction(entry->signum, &entry->previous, NULL);
    entry->installed = 0;
  }
  fatal_enabled = 0;
  pthread_mutex_unlock(&config_lock);
  return 0;
}

/* faulthandler.is_enabled(). */
int leak_faults_is_enabled(void) { return fatal_enabled ? 1 : 0; }

/* Signals faulthandler refuses to register (enable() owns them) and numbers the kernel does not
 * have. */
static int check_user_signum(int signum) {
  if (signum < 1 || signum >= NSIG) return LEAK_EINVAL;
  if (find_fatal(signum) != NULL) return LEAK_EINVAL;
  return 0;
}

/* faulthandler.register(): registering again keeps the handler saved the first time (otherwise
 * unregister would "restore" our own) and updates fd, flags and the sigaction flags. */
int leak_faults_register(int signum, int fd, unsigned flags) {
  int rc = check_user_signum(signum);
  if (rc < 0) return rc;
  if (fd < 0) return LEAK_EBADF;
  config_lock_take();
  rc = ensure_alt_stack_locked();
  if (rc < 0) goto done;
  leak__dump_remember_interp();
  user_signal *entry = &user_signals[signum];
  entry->fd = fd;
  entry->flags = flags;
  struct sigaction action;
  sigemptyset(&action.sa_mask);
  action.sa_sigaction = user_signal_handler;
  /* As faulthandler: without chain the signal stays blocked while its handler runs, so a repeat
   * that arrives during its dump is delivered after it.  With chain it must not be blocked, because
   * a previous SIG_DFL is re-raised from inside the handler; a repeat then finds the guard taken and
   * its dump is owed (pending_user_signals), as for any other registered signal. */
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  if (flags & LEAK_DUMP_CHAIN) action.sa_flags |= SA_NODEFER;
  if (sigaction(signum, &action, entry->installed ? NULL : &entry->previous) != 0) {
    rc = sigaction_error();
    goto done;
  }
  entry->installed = 1;
done:
  pthread_mutex_unlock(&config_lock);
  return rc;
}

/* faulthandler.unregister(): the previous handler is back before the entry is cleared, so a signal
 * arriving meanwhile is handled by one of the two, never by neither. */
int leak_faults_unregister(int signum) {
  int rc = check_user_signum(signum);
  if (rc < 0) return rc;
  config_lock_take();
  user_signal *entry = &user_signals[signum];
  int was_installed = entry->installed ? 1 : 0;
  if (was_installed) {
    sigaction(signum, &entry->previous, NULL);
    entry->installed = 0;
  }
  pthread_mutex_unlock(&config_lock);
  return was_installed;
}
