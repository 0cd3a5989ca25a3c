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

/* Re-entry guard shared by every handler: a signal that arrives while a dump is being written (the
 * same signal again, or a fault inside the dump) must not start a second dump on top of it.  Set
 * and cleared with atomic exchanges, which are lock-free and so async-signal-safe. */
static volatile sig_atomic_t dumping;

/* Registered signals whose dump is owed (bit signum - 1).  A user-signal handler sets its bit, then
 * tries to take the guard; whoever holds the guard takes the bits over before letting go of it, so
 * a registered signal that arrives during another dump (a different signal, or the same one with
 * chain) gets its dump right after, instead of none.  Lock-free atomics: async-signal-safe. */
static uint64_t pending_user_signals;
_Static_assert(NSIG <= 65, "pending_user_signals has one bit per signal number 1 - 64");

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

/* The dump both kinds of handler write: every thread with the faulting/receiving one marked as
 * current, or that thread alone.  Signal handler context: async-signal-safe only. */
static void dump_from_handler(leak__sigsafe_out *out, unsigned flags) {
  PyThreadState *current = leak__frames_this_thread();
  if (flags & LEAK_DUMP_ALL_THREADS)
    leak__dump_all_threads(out, current ? leak__frames_interpreter(current) : leak__dump_interp(), current);
  else if (current != NULL)
    leak__dump_current_thread(out, current);
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
  if (__atomic_exchange_n(&dumping, 1, __ATOMIC_ACQ_REL) == 0) {
    leak__sigsafe_out out;
    leak__sigsafe_init(&out, fatal_fd);
    leak__sigsafe_puts(&out, "Fatal Python error: ");
    leak__sigsafe_puts(&out, leak__dump_fatal_name(signum));
    leak__sigsafe_puts(&out, "\n\n");
    leak__sigsafe_flush(&out);
    dump_from_handler(&out, fatal_flags);
    __atomic_store_n(&dumping, 0, __ATOMIC_RELEASE);
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

/* The dump of one registered signal, to its file with its flags; nothing if it was unregistered
 * meanwhile.  SIGNAL HANDLER context, with the guard held. */
static void dump_user_signal(int signum) {
  user_signal *entry = &user_signals[signum];
  if (!entry->installed) return;
  leak__sigsafe_out out;
  leak__sigsafe_init(&out, entry->fd);
  dump_from_handler(&out, entry->flags);
}

/* Writes every owed dump while this handler can hold the guard; re-checks after letting go, so a
 * bit set by a handler that found the guard taken is never left behind.  A dump owed to a signal
 * that another thread received marks the writing thread as current.  SIGNAL HANDLER context. */
static void dump_pending_user_signals(void) {
  while (__atomic_load_n(&pending_user_signals, __ATOMIC_SEQ_CST) != 0 &&
         __atomic_exchange_n(&dumping, 1, __ATOMIC_SEQ_CST) == 0) {
    uint64_t owed = __atomic_exchange_n(&pending_user_signals, 0, __ATOMIC_SEQ_CST);
    for (int signum = 1; owed != 0; signum++, owed >>= 1)
      if (owed & 1) dump_user_signal(signum);
    __atomic_store_n(&dumping, 0, __ATOMIC_SEQ_CST);
  }
}

/* Signals given to leak_faults_register.  SIGNAL HANDLER: no malloc, no locks, no Python API;
 * errno preserved. */
static void user_signal_handler(int signum, siginfo_t *info, void *context) {
  int saved_errno = errno;
  if (signum < 1 || signum >= NSIG) return;
  user_signal *entry = &user_signals[signum];
  if (!entry->installed) return;
  unsigned flags = entry->flags;
  __atomic_fetch_or(&pending_user_signals, 1ull << (signum - 1), __ATOMIC_SEQ_CST);
  dump_pending_user_signals();
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
