"""libleak's command line: ``libleak run`` and ``libleak report`` (also ``python -m libleak``).

``libleak run [options] (script.py | -m module) [args...]`` runs a program in this interpreter as
``python script.py`` / ``python -m module`` would (``__main__``, ``sys.argv``, ``sys.path[0]``),
samples its memory while it runs, and at exit prints a leak report on stderr: the verdict (a leak
of Python objects, native memory, fragmentation, or none), the types that grew with why they are
alive, and the allocation lines that grew.  The program's output, exit status and tracebacks are
its own.  The run directory (``-o DIR``) keeps everything: run.json, the census series, snapshots,
graphs and flame graphs, and the HTML report.

``libleak report FILE...`` prints a run's report again, a snapshot's top lines, or the difference
of two snapshots; ``--html OUT`` writes a run's HTML report.

Errors (a missing script, a bad option, an unwritable directory, an unreadable file) print one line
``libleak: error: ...`` on stderr and exit non-zero (2 for usage), never a traceback.
"""

import argparse
import builtins
import os
import signal
import sys
import threading
import types

__all__ = ["main"]

#: Defaults of the run options.  16 frames name the caller's caller's... line of a leak in a web
#: handler (tracemalloc's 1 names only the innermost line, often a library's); 100 Hz of CPU
#: samples cost about 1% and give a readable flame graph after a few seconds.
DEFAULT_TRACE_FRAMES = 16
DEFAULT_CPU_HZ = 100
DEFAULT_EVERY = 1.0

USAGE = """\
usage: libleak run [--trace[=NFRAME]] [--sample-bytes N] [--cpu[=HZ]] [--every SECONDS] [-o DIR]
                   (script.py | -m module) [args...]
       libleak report FILE... [--html OUT]
       libleak --version
"""

RUN_HELP = USAGE.split("\n       libleak report")[0] + """

Runs the program as python would, samples its memory every SECONDS, and prints a leak report on
stderr at exit.  Options (before the program; what follows it is the program's own arguments):
  --trace[=NFRAME]    trace allocations with NFRAME frames per traceback (default %d): allocation
                      lines that grew, where leaked objects were allocated, extension buffers
  --sample-bytes N    trace a sample: one allocation per N bytes on average (implies --trace)
  --cpu[=HZ]          sample CPU time HZ times a second per thread (default %d): cpu.svg, cpu.pb.gz
  --every SECONDS     seconds between two sample points (default %g)
  -o DIR, --output DIR
                      the run directory (default ./libleak-SCRIPT-PID)
""" % (DEFAULT_TRACE_FRAMES, DEFAULT_CPU_HZ, DEFAULT_EVERY)

REPORT_HELP = """\
usage: libleak report FILE... [--html OUT]

FILE is a run directory of `libleak run` (or its run.json): its report is printed again; one
snapshot file (libleak.tracer's Snapshot.dump, .llsnap): its top lines; two snapshot files: the
top differences from the first to the second.  --html OUT writes a run's HTML report to OUT.
"""


class UsageError(Exception):
    """A bad command line: exit status 2."""


class CommandError(Exception):
    """A command that cannot run (a file that cannot be read or written): exit status ``status``."""

    def __init__(self, message, status=2):
        Exception.__init__(self, message)
        self.status = status


def _error(message):
    sys.stderr.write("libleak: error: %s\n" % message)


# ---- libleak run: the command line --------------------------------------------------------------


def _positive_int(option, text):
    try:
        value = int(text)
    except ValueError:
        raise UsageError("%s expects a whole number, not %r" % (option, text)) from None
    if value <= 0:
        raise UsageError("%s expects a number above 0, not %s" % (option, text))
    return value


def _positive_float(option, text):
    try:
        value = float(text)
    except ValueError:
        raise UsageError("%s expects a number of seconds, not %r" % (option, text)) from None
    if not value > 0 or value == float("inf"):
        raise UsageError("%s expects a number of seconds above 0, not %s" % (option, text))
    return value


def parse_run(args):
    """The ``run`` command line, parsed by hand: options stop at the program's name (what follows
    is the program's), and ``--trace``/``--cpu`` take a value only after ``=``, so ``--trace app.py``
    never takes the script for a frame count.  Returns a dict; raises UsageError."""
    from libleak.runrecord import RunOptions

    options = RunOptions(every=DEFAULT_EVERY)
    parsed = {"options": options, "outdir": None, "module": None, "script": None, "args": [], "help": False}
    i = 0

    def value_of(arg, name):
        nonlocal i
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
        if i + 1 >= len(args):
            raise UsageError("%s expects a value" % name)
        i += 1
        return args[i]

    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            parsed["help"] = True
            return parsed
        if arg == "--":
            i += 1
            break
        if arg == "--trace":
            options.trace = DEFAULT_TRACE_FRAMES
        elif arg.startswith("--trace="):
            options.trace = _positive_int("--trace", arg[len("--trace="):])
            if options.trace > 1024:
                raise UsageError("--trace expects at most 1024 frames, not %d" % options.trace)
        elif arg == "--cpu":
            options.cpu = DEFAULT_CPU_HZ
        elif arg.startswith("--cpu="):
            options.cpu = _positive_int("--cpu", arg[len("--cpu="):])
            if options.cpu > 10000:
                raise UsageError("--cpu expects at most 10000 Hz, not %d" % options.cpu)
        elif arg == "--sample-bytes" or arg.startswith("--sample-bytes="):
            options.sample_bytes = _positive_int("--sample-bytes", value_of(arg, "--sample-bytes"))
        elif arg == "--every" or arg.startswith("--every="):
            options.every = _positive_float("--every", value_of(arg, "--every"))
        elif arg in ("-o", "--output") or arg.startswith("--output="):
            parsed["outdir"] = value_of(arg, "--output" if arg.startswith("--output") else "-o")
        elif arg.startswith("-o") and len(arg) > 2:
            parsed["outdir"] = arg[2:]
        elif arg == "-m" or (arg.startswith("-m") and len(arg) > 2):
            parsed["module"] = arg[2:] if len(arg) > 2 else value_of(arg, "-m")
            parsed["args"] = args[i + 1:]
            break
        elif arg.startswith("-") and arg != "-":
            raise UsageError("unknown option %s (see libleak run --help)" % arg)
        else:
            break
        i += 1
    if parsed["module"] is None:
        if i >= len(args):
            raise UsageError("run needs a script or -m module (see libleak run --help)")
        if args[i] == "-":
            raise UsageError("run needs a script file, not standard input")
        parsed["script"] = args[i]
        parsed["args"] = args[i + 1:]
    if options.sample_bytes and not options.trace:
        options.trace = DEFAULT_TRACE_FRAMES
    if parsed["outdir"] == "":
        raise UsageError("-o expects a directory")
    return parsed


# ---- libleak run: the program ----------------------------------------------------------------------


class _Program:
    """The program to run: its code, its ``__main__`` module's attributes, sys.argv and
    sys.path[0] as python would set them, and the name the report gives ``__main__``."""

    def __init__(self, code, attributes, argv, path0, display_name):
        self.code = code
        self.attributes = attributes
        self.argv = argv
        self.path0 = path0
        self.display_name = display_name


def _load_script(script, args):
    """The program of ``python script.py args``.  CommandError (status 2, as python) when the file
    cannot be read; SyntaxError propagates."""
    if os.path.isdir(script):
        raise CommandError("can't run %r: it is a directory (give its script)" % script)
    try:
        with open(script, "rb") as stream:
            source = stream.read()
    except OSError as error:
        raise CommandError("can't open file %r: %s" % (script, error.strerror or error)) from None
    path = os.path.abspath(script)
    code = compile(source, path, "exec", dont_inherit=True)
    from importlib.machinery import SourceFileLoader

    attributes = {"__file__": path, "__cached__": None, "__package__": None, "__spec__": None,
                  "__loader__": SourceFileLoader("__main__", path)}
    path0 = os.path.dirname(os.path.realpath(script))
    name = os.path.splitext(os.path.basename(script))[0] or "__main__"
    return _Program(code, attributes, [script] + list(args), path0, name)


def _load_module(name, args):
    """The program of ``python -m name args``: CommandError (status 1, as python) when it cannot
    be found."""
    import runpy

    if not name:
        raise UsageError("-m expects a module name")
    sys.path.insert(0, os.getcwd())
    try:
        # runpy's own lookup of `python -m`: packages run their __main__, errors read as python's.
        mod_name, spec, code = runpy._get_module_details(name)
    except ImportError as error:
        raise CommandError(str(error) or "No module named %s" % name, status=1) from None
    except SyntaxError:
        raise
    except Exception as error:
        raise CommandError("error while finding module specification for %r (%s: %s)"
                           % (name, type(error).__name__, error), status=1) from None
    finally:
        del sys.path[0]
    attributes = {"__file__": spec.origin, "__cached__": spec.cached, "__package__": spec.parent,
                  "__spec__": spec, "__loader__": spec.loader}
    return _Program(code, attributes, [spec.origin] + list(args), os.getcwd(), name)


def _install_main(program):
    """A fresh ``__main__`` module for the program, kept in sys.modules after it ends so that its
    globals still have their module when the report names what holds them."""
    module = types.ModuleType("__main__")
    module.__dict__.update(program.attributes)
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv[:] = program.argv
    if not getattr(sys.flags, "safe_path", False):
        if sys.path:
            sys.path[0] = program.path0
        else:
            sys.path.append(program.path0)
    return module


def _trim_traceback(error, code):
    """The exception's traceback from the program's first frame on, as python prints it (the
    runner's frames left out)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    return tb if tb is not None else error.__traceback__


def _exit_status(code):
    """The exit status of SystemExit(code), as python gives it (a message is printed)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        sys.stderr.write("%s\n" % (code,))
    except Exception:
        pass
    return 1


def _execute(program, module):
    """Runs the program; returns (exit status, interrupted).  The program's exceptions are
    printed as python prints them (through sys.excepthook)."""
    try:
        exec(program.code, module.__dict__)
    except SystemExit as error:
        return _exit_status(error.code), False
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        tb = _trim_traceback(error, program.code)
        try:
            sys.excepthook(type(error), error.with_traceback(tb), tb)
        except Exception:
            pass
        del error, tb
        return (128 + signal.SIGINT, True) if interrupted else (1, False)
    return 0, False


def _wait_for_threads():
    """Waits for the program's non-daemon threads, as the interpreter does before it exits, so that
    the last sample point sees the program finished."""
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon or thread is threading.main_thread():
            continue
        thread.join()


class _Progress:
    """Progress lines on stderr, only when it is a terminal."""

    def __init__(self):
        try:
            self.enabled = sys.stderr.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.shown = False

    def __call__(self, text):
        if self.enabled:
            sys.stderr.write("\rlibleak: %s...\033[K" % text)
            sys.stderr.flush()
            self.shown = True

    def clear(self):
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


def _prepare_outdir(outdir, display_name):
    """Creates the run directory (default ./libleak-NAME-PID); CommandError when it cannot be made
    or written."""
    if outdir is None:
        outdir = "libleak-%s-%d" % (display_name, os.getpid())
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise CommandError("cannot use %s as the run directory: not a directory" % outdir)
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as error:
        raise CommandError("cannot create the run directory %s: %s" % (outdir, error.strerror or error)) from None
    if not os.path.isdir(outdir):
        raise CommandError("cannot use %s as the run directory: not a directory" % outdir)
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise CommandError("cannot write the run directory %s: permission denied" % outdir)
    return outdir


def write_html(rundir, out):
    """Writes the HTML report of a run directory to ``out``."""
    from libleak import htmlreport

    htmlreport.write_report(rundir, out)


def command_run(args):
    """``libleak run``: returns the program's exit status (or 2 for a usage error, before it runs)."""
    from libleak.runrecord import Recorder
    from libleak.textreport import format_run

    parsed = parse_run(args)
    if parsed["help"]:
        sys.stdout.write(RUN_HELP)
        return 0
    try:
        if parsed["module"] is not None:
            program = _load_module(parsed["module"], parsed["args"])
        else:
            program = _load_script(parsed["script"], parsed["args"])
    except SyntaxError as error:
        sys.excepthook(type(error), error.with_traceback(None), None)
        return 1
    outdir = _prepare_outdir(parsed["outdir"], program.display_name)
    progress = _Progress()
    recorder = Recorder(outdir, parsed["options"], program.argv, program.display_name, progress)
    try:
        recorder.start()
    except OSError as error:
        raise CommandError("cannot write the run directory %s: %s" % (outdir, error.strerror or error)) from None
    except (ValueError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    module = _install_main(program)
    status, interrupted = _execute(program, module)
    del module
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    _wait_for_threads()
    try:
        run = recorder.finish(status)
        if _html_into(outdir, run, progress):
            run = recorder.rewrite_files(run, report_html="report.html")
    except OSError as error:
        progress.clear()
        _error("cannot write the run directory %s: %s" % (outdir, error.strerror or error))
        return status
    progress.clear()
    sys.stderr.write(format_run(run, outdir))
    sys.stderr.flush()
    if interrupted:
        _die_of_sigint()
    return status


def _html_into(outdir, run, progress):
    progress("HTML report")
    try:
        write_html(outdir, os.path.join(outdir, "report.html"))
        return True
    except Exception as error:  # the text report and the files are still there
        sys.stderr.write("libleak: warning: the HTML report failed: %s\n" % error)
        return False


def _die_of_sigint():
    """Ends the process as python does after an uncaught KeyboardInterrupt: the program's atexit
    handlers run, then SIGINT kills it, so its parent sees it was interrupted."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


# ---- libleak report ---------------------------------------------------------------------------------


def _is_run(path):
    if os.path.isdir(path):
        return True
    if os.path.basename(path) == "run.json":
        return True
    try:
        with open(path, "rb") as stream:
            return stream.read(1) == b"{"
    except OSError:
        return False


def _load_snapshot(path):
    from libleak import tracer
    from libleak.errors import Error

    try:
        return tracer.Snapshot.load(path)
    except OSError as error:
        raise CommandError("%s: %s" % (path, error.strerror or error)) from None
    except (Error, ValueError) as error:
        raise CommandError("%s: %s" % (path, error)) from None


def _format_snapshot(path, snapshot, limit=10):
    stats = snapshot.statistics("lineno")
    total = sum(stat.size for stat in stats)
    from libleak.heap import _format_size

    lines = ["Top %d lines of %s (%d traces, %s live):" % (min(limit, len(stats)), path, len(snapshot.traces),
                                                             _format_size(total))]
    for index, stat in enumerate(stats[:limit], 1):
        lines.append("#%d: %s" % (index, stat))
    if len(stats) > limit:
        rest = stats[limit:]
        lines.append("%d other lines: %s" % (len(rest), _format_size(sum(stat.size for stat in rest))))
    return "\n".join(lines) + "\n"


def _format_comparison(old_path, old, new_path, new, limit=10):
    diffs = new.compare_to(old, "lineno")
    lines = ["Top %d differences, %s compared to %s:" % (min(limit, len(diffs)), new_path, old_path)]
    for index, diff in enumerate(diffs[:limit], 1):
        lines.append("#%d: %s" % (index, diff))
    return "\n".join(lines) + "\n"


def command_report(args):
    """``libleak report``: 0, or raises UsageError / CommandError."""
    from libleak.errors import FormatError
    from libleak.runrecord import load_run
    from libleak.textreport import format_run

    if any(arg in ("-h", "--help") for arg in args):
        sys.stdout.write(REPORT_HELP)
        return 0
    parser = _ArgumentParser(prog="libleak report", add_help=False)
    parser.add_argument("files", nargs="*")
    parser.add_argument("--html", metavar="OUT")
    parsed = parser.parse_args(args)
    if not parsed.files:
        raise UsageError("report needs a run directory or snapshot files (see libleak report --help)")
    runs = [path for path in parsed.files if _is_run(path)]
    if runs:
        if len(parsed.files) != 1:
            raise UsageError("report takes one run directory, or one or two snapshot files")
        path = runs[0]
        try:
            run = load_run(path)
        except OSError as error:
            raise CommandError("%s: %s" % (path, error.strerror or error)) from None
        except FormatError as error:
            raise CommandError("%s: %s" % (path, error)) from None
        rundir = path if os.path.isdir(path) else (os.path.dirname(path) or ".")
        try:
            text = format_run(run, rundir)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            raise CommandError("%s: not a complete libleak run (%s: %s)" % (path, type(error).__name__, error)) from None
        sys.stdout.write(text)
        if parsed.html is not None:
            try:
                write_html(rundir, parsed.html)
            except OSError as error:
                raise CommandError("cannot write %s: %s" % (parsed.html, error.strerror or error)) from None
        return 0
    if parsed.html is not None:
        raise UsageError("--html needs a run directory")
    if len(parsed.files) > 2:
        raise UsageError("report compares at most two snapshot files, not %d" % len(parsed.files))
    snapshots = [_load_snapshot(path) for path in parsed.files]
    if len(snapshots) == 1:
        sys.stdout.write(_format_snapshot(parsed.files[0], snapshots[0]))
    else:
        sys.stdout.write(_format_comparison(parsed.files[0], snapshots[0], parsed.files[1], snapshots[1]))
    return 0


class _ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, with its errors turned into UsageError: one line, no usage dump."""

    def error(self, message):
        raise UsageError(message)


# ---- main ------------------------------------------------------------------------------------------


def main(argv=None):
    """Runs the command line ``argv`` (default sys.argv[1:]) and returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args:
            sys.stderr.write(USAGE)
            return 2
        command, rest = args[0], args[1:]
        if command in ("-h", "--help"):
            sys.stdout.write(USAGE + "\n" + RUN_HELP.split("\n\n", 1)[1] + "\n" + REPORT_HELP.split("\n\n", 1)[1])
            return 0
        if command == "--version":
            from libleak import __version__

            sys.stdout.write("libleak %s\n" % __version__)
            return 0
        if command == "run":
            return command_run(rest)
        if command == "report":
            return command_report(rest)
        raise UsageError("unknown command %r (expected run or report)" % command)
    except UsageError as error:
        _error(str(error))
        return 2
    except CommandError as error:
        _error(str(error))
        return error.status
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
