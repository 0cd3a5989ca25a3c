"""What `pip install .` needs to know to build libleak, read from the autotools files.

The autotools build is the primary one: Makefile.am lists the sources, the Python files and the
link flags; configure.ac holds the feature checks (pkg-config modules, required headers and
programs) and the warning flags.  setup.py asks this module instead of keeping lists of its own, so
a file or a check added to the autotools build reaches the pip build without anyone editing setup.py.

Only the small subset of make syntax that Makefile.am uses is understood: `NAME = words`,
`NAME += words` (with backslash continuations), `$(NAME)` references and `if COND` / `else` /
`endif` blocks.  Anything this module cannot resolve raises BuildError with a message that says what.
"""

import os
import re
import shlex
import shutil
import subprocess
import tempfile

# The automake conditionals of configure.ac as a plain (pip) build sets them: no sanitizers, no fuzzer.
CONDITIONALS = {"SANITIZERS": False, "FUZZING": False}

# Headers that configure checks by default (AC_INCLUDES_DEFAULT and libtool's dlfcn.h): config.h
# records each one found as HAVE_<NAME>, as autoheader would.
DEFAULT_HEADERS = ["stdio.h", "stdlib.h", "string.h", "inttypes.h", "stdint.h", "strings.h",
                   "sys/stat.h", "sys/types.h", "unistd.h", "dlfcn.h"]


class BuildError(Exception):
    """The build cannot go on: a missing dependency or something in the autotools files not understood."""


def _read(top, name):
    with open(os.path.join(top, name)) as f:
        return f.read()


class Makefile:
    """The variables of a Makefile.am, as they stand at the end of the file under CONDITIONALS.

    `substitutions` gives the values of configure's @SUBST@ variables the caller wants expanded
    (e.g. GRAPHVIZ_LIBS); a reference to a variable that is in neither raises BuildError."""

    _ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(\+?=)\s*(.*)$")
    _REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

    def __init__(self, text, substitutions=None):
        self.raw = {}
        self.substitutions = dict(substitutions or {})
        active = []  # one bool per open `if`
        for line in self._logical_lines(text):
            if line.startswith("\t"):  # a recipe line
                continue
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if words[0] == "if":
                name = words[1].lstrip("!")
                if name not in CONDITIONALS:
                    raise BuildError("Makefile.am: unknown conditional %s (add it to scripts/pipbuild.py)" % name)
                active.append(CONDITIONALS[name] != words[1].startswith("!"))
                continue
            if words[0] == "else":
                active[-1] = not active[-1]
                continue
            if words[0] == "endif":
                active.pop()
                continue
            if not all(active):
                continue
            match = self._ASSIGN.match(line)
            if match:
                name, op, value = match.groups()
                if op == "=":
                    self.raw[name] = value
                else:
                    self.raw[name] = (self.raw.get(name, "") + " " + value).strip()

    @staticmethod
    def _logical_lines(text):
        """Lines with their backslash continuations joined."""
        pending = ""
        for line in text.splitlines():
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            yield pending + line
            pending = ""
        if pending:
            yield pending

    def expand(self, value, _depth=0):
        """`value` with every $(NAME) replaced, recursively."""
        if _depth > 20:
            raise BuildError("Makefile.am: variables refer to each other in a loop: %s" % value)

        def one(match):
            name = match.group(1)
            if name in self.substitutions:
                return self.substitutions[name]
            if name in self.raw:
                return self.expand(self.raw[name], _depth + 1)
            raise BuildError("Makefile.am refers to $(%s), which the pip build does not know" % name)

        return self._REF.sub(one, value)

    def words(self, name):
        """The expanded value of variable `name` split into words (an empty list when unset)."""
        return shlex.split(self.expand(self.raw.get(name, "")))


def version(top):
    """The library's version, from include/libleak/version.h (what leak_version_string reports)."""
    text = _read(top, "include/libleak/version.h")
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(r"#define\s+LEAK_VERSION_%s\s+(\d+)" % part, text)
        if not match:
            raise BuildError("include/libleak/version.h has no LEAK_VERSION_%s" % part)
        parts.append(match.group(1))
    return ".".join(parts)


def configure_init(top):
    """AC_INIT's package name, version and bug-report address from configure.ac."""
    match = re.search(r"AC_INIT\(\[([^\]]*)\],\s*\[([^\]]*)\],\s*\[([^\]]*)\]", _read(top, "configure.ac"))
    if not match:
        raise BuildError("configure.ac: no AC_INIT([name], [version], [bugreport])")
    return match.groups()


def configure_checks(top):
    """The dependency checks of configure.ac, each (kind, name, what, error message):
    ("pkg", "GRAPHVIZ", "libcgraph libgvc", msg) for PKG_CHECK_MODULES, ("header", None, "uthash.h",
    msg) for AC_CHECK_HEADER (Python.h aside: setuptools finds the interpreter's headers), and
    ("program", "PROTOC_C", "protoc-c", msg) for AC_PATH_PROG followed by its AC_MSG_ERROR."""
    text = _read(top, "configure.ac")
    checks = []
    for m in re.finditer(r"PKG_CHECK_MODULES\(\[(\w+)\],\s*\[([^\]]+)\],\s*\[[^\]]*\],\s*"
                         r"\[AC_MSG_ERROR\(\[([^\]]+)\]\)\]\)", text):
        checks.append(("pkg", m.group(1), m.group(2), m.group(3)))
    for m in re.finditer(r"AC_CHECK_HEADER\(\[([^\]]+)\],\s*\[[^\]]*\],\s*\[AC_MSG_ERROR\(\[([^\]]+)\]\)\]\)", text):
        if m.group(1) != "Python.h":
            checks.append(("header", None, m.group(1), m.group(2)))
    for m in re.finditer(r"AC_PATH_PROG\(\[(\w+)\],\s*\[([^\]]+)\],\s*\[\]\)\s*\n\s*AS_IF\(\[test -z \"\$\1\"\],"
                         r"\s*\[AC_MSG_ERROR\(\[([^\]]+)\]\)\]\)", text):
        checks.append(("program", m.group(1), m.group(2), m.group(3)))
    return checks


def configure_warn_cflags(top):
    """WARN_CFLAGS as configure.ac sets it."""
    match = re.search(r'^WARN_CFLAGS="([^"]*)"', _read(top, "configure.ac"), re.M)
    if not match:
        raise BuildError('configure.ac: no WARN_CFLAGS="..." line')
    return match.group(1)


def pkg_config(modules, what):
    """pkg-config's --cflags or --libs output for `modules` (a space-separated string)."""
    pkgconfig = os.environ.get("PKG_CONFIG", "pkg-config")
    try:
        out = subprocess.run([pkgconfig, "--" + what] + modules.split(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
    except OSError:
        raise BuildError("pkg-config not found: apt-get install pkg-config")
    if out.returncode != 0:
        return None
    return out.stdout.strip()


def compiles(cc, source, cflags=()):
    """True when `source` compiles to an object with the compiler command `cc` (a list) and `cflags`."""
    work = tempfile.mkdtemp(prefix="libleak-check-")
    try:
        path = os.path.join(work, "conftest.c")
        with open(path, "w") as f:
            f.write(source)
        result = subprocess.run(list(cc) + list(cflags) + ["-c", path, "-o", os.path.join(work, "conftest.o")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return result.returncode == 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Configuration:
    """What configure would have found: substitutions for Makefile.am, the programs it located and the
    defines of config.h.  Raises BuildError, with configure's own message, for a missing dependency."""

    def __init__(self, top, cc):
        self.top = top
        self.substitutions = {"top_srcdir": ".", "srcdir": ".", "PYTHON_CFLAGS": "", "SANITIZER_FLAGS": "",
                              "PTHREAD_FLAGS": "-pthread", "WARN_CFLAGS": configure_warn_cflags(top)}
        self.programs = {}
        cflags = []
        for kind, name, what, message in configure_checks(top):
            if kind == "pkg":
                found_cflags, libs = pkg_config(what, "cflags"), pkg_config(what, "libs")
                if found_cflags is None or libs is None:
                    raise BuildError(message)
                self.substitutions[name + "_CFLAGS"] = found_cflags
                self.substitutions[name + "_LIBS"] = libs
                cflags += shlex.split(found_cflags)
            elif kind == "header":
                if not compiles(cc, "#include <%s>\n" % what, cflags):
                    raise BuildError(message)
            else:
                path = shutil.which(what)
                if not path:
                    raise BuildError(message)
                self.substitutions[name] = path
                self.programs[name] = path
        name, pkg_version, bugreport = configure_init(top)
        self.defines = [("PACKAGE", '"%s"' % name), ("PACKAGE_NAME", '"%s"' % name),
                        ("PACKAGE_TARNAME", '"%s"' % name), ("PACKAGE_VERSION", '"%s"' % pkg_version),
                        ("PACKAGE_STRING", '"%s %s"' % (name, pkg_version)),
                        ("PACKAGE_BUGREPORT", '"%s"' % bugreport), ("PACKAGE_URL", '""'),
                        ("VERSION", '"%s"' % pkg_version), ("STDC_HEADERS", "1")]
        for header in DEFAULT_HEADERS:
            if compiles(cc, "#include <%s>\n" % header):
                self.defines.append(("HAVE_" + re.sub(r"[^A-Z0-9]", "_", header.upper()), "1"))

    def write_config_h(self, builddir):
        """Writes builddir/config.h, the defines configure would have put there."""
        os.makedirs(builddir, exist_ok=True)
        lines = ["/* config.h: written by scripts/pipbuild.py for a pip build (configure writes it otherwise). */"]
        lines += ["#define %s %s" % define for define in sorted(self.defines)]
        _write_if_changed(os.path.join(builddir, "config.h"), "\n".join(lines) + "\n")


def _write_if_changed(path, text):
    """Writes `text` to `path` unless it already holds it (so the compiler does not rebuild for nothing)."""
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)


class Build:
    """The extension and the package as Makefile.am describes them, for the directory `top`.

    sources: the C files of the core and of the extension (existing files, relative to top);
    generated: C files Makefile.am generates (nodist_ sources), each with the .proto it comes from;
    package_files: the package's files (leakpy_DATA); pth_files: the .pth files (tracepth_DATA) that
    go into site-packages itself; libs: the link flags of the core."""

    CORE = "libleak_core_la"
    EXTENSION = "pybind__libleak_la"

    def __init__(self, top, substitutions=None):
        self.top = top
        self.makefile = Makefile(_read(top, "Makefile.am"), substitutions)
        files = lambda name: [w for w in self.makefile.raw.get(name, "").split() if not w.startswith("$(")]
        self.sources = [f for f in files(self.CORE + "_SOURCES") + files(self.EXTENSION + "_SOURCES")
                        if f.endswith(".c")]
        self.generated = []
        for source in files("nodist_" + self.CORE + "_SOURCES"):
            if not source.endswith(".pb-c.c"):
                continue
            proto = source[:-len(".pb-c.c")] + ".proto"
            if not os.path.exists(os.path.join(top, proto)):
                raise BuildError("Makefile.am: %s is generated from %s, which is missing" % (source, proto))
            self.generated.append((source, proto))
        self.package_files = files("leakpy_DATA")
        self.pth_files = files("tracepth_DATA")
        missing = [f for f in self.sources + self.package_files + self.pth_files
                   if not os.path.exists(os.path.join(top, f))]
        if missing:
            raise BuildError("Makefile.am names files that are not there: " + " ".join(missing))

    def libs(self):
        """The core's link flags (libleak_core_la_LIBADD, expanded)."""
        return self.makefile.words(self.CORE + "_LIBADD")

    def cflags(self):
        """AM_CFLAGS, expanded."""
        return self.makefile.words("AM_CFLAGS")

    def include_dirs(self, builddir):
        """The -I directories of AM_CPPFLAGS, with top_builddir as `builddir`; other -D/-I-less
        words (none today) are returned by cppflags_other."""
        self.makefile.substitutions["top_builddir"] = builddir
        dirs = []
        for word in self.makefile.words("AM_CPPFLAGS"):
            if word.startswith("-I"):
                dirs.append(word[2:])
        return dirs

    def cppflags_other(self, builddir):
        self.makefile.substitutions["top_builddir"] = builddir
        return [w for w in self.makefile.words("AM_CPPFLAGS") if not w.startswith("-I")]

    def generate(self, builddir, protoc_c):
        """Runs protoc-c for each generated source as Makefile.am's rule does; returns the C files made."""
        made = []
        for source, proto in self.generated:
            outdir = os.path.join(builddir, os.path.dirname(source))
            os.makedirs(outdir, exist_ok=True)
            target = os.path.join(builddir, source)
            proto_path = os.path.join(self.top, proto)
            if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(proto_path):
                subprocess.run([protoc_c, "--proto_path=" + os.path.dirname(proto_path), "--c_out=" + outdir,
                                proto_path], check=True)
            made.append(target)
        return made
