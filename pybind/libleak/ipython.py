"""libleak in IPython and Jupyter: ``%load_ext libleak``.

Magics (``%magic?`` prints each one's options):

- ``%%leak_check [--runs N] [--warmup N] [--trace[=NFRAME]] [--why] [-o VAR]``: runs the cell again
  and again as ``libleak.heap.leak_check`` does and shows what grows on every run (a table in a
  notebook, the text report in a terminal), or "no leak".  ``--trace`` runs the allocation tracer
  during the runs (started and stopped by the magic unless it already runs) so the report names the
  growing allocation lines; ``--why`` adds a retention path for one leaked object of each growing
  type; ``-o VAR`` keeps the ``LeakReport`` in the variable ``VAR``.
- ``%census_baseline`` then ``%census_diff [-n ROWS] [--all]``: which types grew (or shrank) between
  the two, largest change in bytes first.  Between cells the census also sees IPython's own history
  (the inputs, their compiled code, ``Out``).
- ``%why_alive [-n PATHS] EXPR``: why the value of ``EXPR`` is alive: its retention paths as text
  and, in a notebook, as a Graphviz picture.
- ``%%cpu_profile [--interval S] [--mode cpu|wall] [--top N] [-o FILE]``: samples the cell and shows
  its flame graph (``-o`` also writes the profile; the suffix picks the format).
- ``%heap_profile [--top N] [-o FILE]``: the flame graph of the live bytes the tracer sees now.

The objects themselves display inline too: a ``Retention`` or a ``RetentionPath`` as a picture, a
``Profile`` as its flame graph, a ``LeakReport`` or a ``CensusDiff`` as a table.

A cell under ``%%leak_check`` or ``%%cpu_profile`` runs as plain Python in the notebook's namespace,
after IPython's input transformations (``!ls``, ``%magic`` lines); top-level ``await`` is not
supported there.

Example (in a notebook)::

    %load_ext libleak

    %%leak_check --runs 8 --warmup 2 --trace
    handle_request(fake_request)
"""

import gc

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from libleak import heap, refs, sampler, tracer

__all__ = ["LeakMagics", "load_ipython_extension"]

# The frames the tracer keeps when --trace starts it without a number.  leak_check names a site
# by the first frame of its traceback, the oldest, so one frame (the allocating line) is what a
# report about a cell can name.
_DEFAULT_NFRAME = 1


def load_ipython_extension(ipython):
    """What ``%load_ext libleak`` calls: registers libleak's magics on the shell."""
    ipython.register_magics(LeakMagics)


def _show(text, html=None, svg=None):
    """Displays one result: the text in a terminal, the richest of html and svg in a notebook."""
    bundle = {"text/plain": text.rstrip("\n")}
    if html is not None:
        bundle["text/html"] = html
    if svg is not None:
        bundle["image/svg+xml"] = svg
    display(bundle, raw=True)


def _positive(name, value, smallest):
    if value < smallest:
        raise UsageError("%s must be at least %d, not %d" % (name, smallest, value))
    return value


def _check_suffix(output):
    """An -o file whose suffix names no profile format fails before anything runs."""
    if output:
        try:
            sampler._format_of(output)
        except ValueError as e:
            raise UsageError(str(e)) from None


def _top_text(rows, unit):
    """Profile.top rows as a short text table."""
    lines = ["%12s %12s  function (file:line)" % ("self " + unit, "total " + unit)]
    for row in rows:
        lines.append("%12d %12d  %s (%s:%d)" % (row.self_samples, row.total_samples, row.function, row.filename,
                                              row.lineno))
    return "\n".join(lines)


@magics_class
class LeakMagics(Magics):
    """libleak's magics; one instance per shell, holding the census baseline between cells."""

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self._baseline = None

    def _compile_cell(self, cell, magic):
        """The cell as IPython would run it (input transformations applied), compiled once under a
        file name that linecache knows, so tracebacks and allocation lines show its source.
        Returns a function that runs it in the user's namespace."""
        transformed = self.shell.transform_cell(cell)
        filename = self.shell.compile.cache(transformed, self.shell.execution_count, raw_code=cell)
        code = self.shell.compile(transformed, filename, "exec")
        user_globals, user_locals = self.shell.user_global_ns, self.shell.user_ns

        def run_cell():
            exec(code, user_globals, user_locals)

        run_cell.__qualname__ = run_cell.__name__ = "<%s cell>" % magic
        return run_cell

    @magic_arguments()
    @argument("--runs", type=int, default=10, help="runs measured after the warm-up (default 10)")
    @argument("--warmup", type=int, default=3, help="runs before measuring, to fill caches (default 3)")
    @argument("--trace", type=int, nargs="?", const=_DEFAULT_NFRAME, default=None, metavar="NFRAME",
              help="trace allocations during the runs (NFRAME frames, default %d) to name the growing lines"
              % _DEFAULT_NFRAME)
    @argument("--why", action="store_true", help="show a retention path for one leaked object of each growing type")
    @argument("-o", "--output", metavar="VAR", help="store the LeakReport in the variable VAR")
    @cell_magic
    def leak_check(self, line, cell):
        """Runs the cell again and again and reports the types (and with --trace the allocation
        lines) that grow on every run, or "no leak"."""
        args = parse_argstring(self.leak_check, line)
        runs = _positive("--runs", args.runs, 1)
        warmup = _positive("--warmup", args.warmup, 0)
        if args.trace is not None:
            _positive("--trace", args.trace, 1)
        run_cell = self._compile_cell(cell, "leak_check")
        started = args.trace is not None and not tracer.is_tracing()
        if started:
            tracer.start(args.trace)
        try:
            report = heap.leak_check(run_cell, runs=runs, warmup=warmup)
        finally:
            if started:
                tracer.stop()
        if args.output:
            self.shell.user_ns[args.output] = report
        if not report:
            _show("no leak: nothing grows over %d runs after %d warm-up runs." % (runs, warmup),
                  html=report._repr_html_())
        else:
            _show(str(report), html=report._repr_html_())
            if args.why:
                self._show_why(report)
        del report

    def _show_why(self, report):
        """One retention path for a leaked object of each of the first three growing types."""
        lines = []
        for row in report.types[:3]:
            samples = report.samples(row.type_name, 1)
            if not samples:
                continue
            retention = refs.why_alive(samples[0], max_paths=1)
            del samples
            lines.append("%s: %s" % (row.type_name, retention))
            del retention
        if lines:
            _show("why they are alive:\n" + "\n".join(lines))

    @line_magic
    def census_baseline(self, line):
        """Counts the live objects per type now, for a later %census_diff."""
        if line.strip():
            raise UsageError("%census_baseline takes no arguments")
        self._baseline = None
        self._baseline = heap.census(gc_collect=True)
        print("census baseline: %d objects, %s" % (self._baseline.count, heap._format_size(self._baseline.size)))

    @magic_arguments()
    @argument("-n", "--rows", type=int, default=15, help="rows shown (default 15)")
    @argument("--all", action="store_true", help="also the types that did not change")
    @line_magic
    def census_diff(self, line):
        """Which types grew or shrank since %census_baseline, largest change in bytes first."""
        args = parse_argstring(self.census_diff, line)
        limit = _positive("--rows", args.rows, 1)
        if self._baseline is None:
            raise UsageError("no baseline: run %census_baseline first")
        now = heap.census(gc_collect=True)
        rows = [r for r in now.compare_to(self._baseline) if args.all or r.count_diff or r.size_diff]
        del now
        if not rows:
            _show("census diff since the baseline: nothing changed")
            return
        shown = rows[:limit]
        head = "census diff since the baseline: %d types changed" % len(rows)
        text = "\n".join([head] + ["  %s" % row for row in shown])
        from libleak._display import census_diff_html

        _show(text, html=census_diff_html(shown, head))

    @magic_arguments()
    @argument("-n", "--paths", type=int, default=3, help="paths shown at most (default 3)")
    @argument("expr", nargs="+", help="the expression whose value is looked for")
    @line_magic
    def why_alive(self, line):
        """Why the value of EXPR is alive: retention paths from roots down to it."""
        args = parse_argstring(self.why_alive, line)
        paths = _positive("--paths", args.paths, 1)
        # The value is evaluated here, in this frame, which why_alive leaves out of its roots.
        obj = self.shell.ev(" ".join(args.expr))
        retention = refs.why_alive(obj, max_paths=paths)
        del obj
        svg = retention._repr_svg_() if retention else None
        _show(str(retention), svg=svg)

    def _show_profile(self, profile, top, unit, output):
        if output:
            profile.write(output)
        text = _top_text(profile.top(top), unit)
        if profile.samples == 0:
            _show("no samples: the cell ran for less than one sampling interval\n" + text)
            return
        _show(text, svg=profile._repr_svg_())

    @magic_arguments()
    @argument("--interval", type=float, default=0.001, help="seconds between samples (default 0.001)")
    @argument("--mode", choices=("cpu", "wall"), default="cpu", help="CPU time or wall-clock time (default cpu)")
    @argument("--top", type=int, default=10, help="functions listed (default 10)")
    @argument("-o", "--output", metavar="FILE", help="also write the profile (.svg, .collapsed, .speedscope.json, .pb.gz)")
    @cell_magic
    def cpu_profile(self, line, cell):
        """Samples the cell's stacks and shows its flame graph and its busiest functions."""
        args = parse_argstring(self.cpu_profile, line)
        top = _positive("--top", args.top, 1)
        _check_suffix(args.output)
        run_cell = self._compile_cell(cell, "cpu_profile")
        try:
            session = sampler.Sampler(interval=args.interval, mode=args.mode)
        except (TypeError, ValueError) as e:
            raise UsageError(str(e)) from None
        with session:
            run_cell()
        self._show_profile(session.profile, top, "samples", args.output)

    @magic_arguments()
    @argument("--top", type=int, default=10, help="allocation lines listed (default 10)")
    @argument("-o", "--output", metavar="FILE", help="also write the profile (.svg, .collapsed, .speedscope.json, .pb.gz)")
    @line_magic
    def heap_profile(self, line):
        """The flame graph of the live bytes the allocation tracer sees now, per traceback."""
        args = parse_argstring(self.heap_profile, line)
        top = _positive("--top", args.top, 1)
        if not tracer.is_tracing():
            raise UsageError("the tracer is not running: start it with libleak.tracer.start(10)")
        _check_suffix(args.output)
        gc.collect()
        profile = sampler.heap_profile(tracer.take_snapshot())
        self._show_profile(profile, top, "bytes", args.output)
