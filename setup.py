"""pip's way in: `pip install .` builds the extension libleak._libleak and installs the package.

The autotools build (configure.ac, Makefile.am) stays the primary one; this file keeps no lists of
its own.  scripts/pipbuild.py reads the sources, the package files, the .pth files, the flags and the
dependency checks from Makefile.am and configure.ac, so both builds compile the same code with the
same checks.  Metadata lives in pyproject.toml.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

TOP = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(TOP, "scripts"))
import pipbuild  # noqa: E402  (lives in scripts/, next to the autotools helpers)

# setuptools wants paths relative to the project directory.
os.chdir(TOP)
BUILD = pipbuild.Build(".")


class BuildExtension(build_ext):
    """Runs configure's checks, writes config.h, generates the protobuf-c sources, then compiles
    the C files in parallel (setuptools compiles one extension's files one at a time)."""

    def build_extension(self, ext):
        try:
            config = pipbuild.Configuration(".", self.compiler.compiler_so)
        except pipbuild.BuildError as error:
            sys.exit("libleak: %s" % error)
        generated_dir = os.path.abspath(self.build_temp)
        config.write_config_h(generated_dir)
        build = pipbuild.Build(".", config.substitutions)
        ext.sources = list(build.sources) + build.generate(generated_dir, config.programs["PROTOC_C"])
        ext.include_dirs = build.include_dirs(generated_dir) + list(ext.include_dirs)
        ext.extra_compile_args = build.cflags() + build.cppflags_other(generated_dir) + ["-DHAVE_CONFIG_H"]
        ext.extra_link_args = build.libs() + ["-pthread"]
        self._compile_in_parallel()
        super().build_extension(ext)

    def _compile_in_parallel(self):
        """Replaces the compiler's compile() with one that runs `jobs` compilers at once.  Uses the
        compiler's own _setup_compile/_compile steps, so flags and dependency checks stay its own."""
        compiler = self.compiler
        jobs = self.parallel if isinstance(self.parallel, int) and self.parallel > 0 else (os.cpu_count() or 1)

        def compile(sources, output_dir=None, macros=None, include_dirs=None, debug=0, extra_preargs=None,
                    extra_postargs=None, depends=None):
            macros, objects, extra_postargs, pp_opts, build = compiler._setup_compile(
                output_dir, macros, include_dirs, sources, depends, extra_postargs)
            cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)

            def one(obj):
                src, ext = build[obj]
                compiler._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(one, [obj for obj in objects if obj in build]))
            return objects

        compiler.compile = compile


class BuildPackage(build_py):
    """The package's files are exactly Makefile.am's leakpy_DATA, and its .pth files
    (tracepth_DATA) go to the top of site-packages, as `make install` puts them."""

    def find_package_modules(self, package, package_dir):
        wanted = {os.path.normpath(f) for f in BUILD.package_files if f.endswith(".py")}
        return [m for m in super().find_package_modules(package, package_dir) if os.path.normpath(m[2]) in wanted]

    def run(self):
        super().run()
        for name in BUILD.package_files:
            if not name.endswith(".py"):
                self.copy_file(name, os.path.join(self.build_lib, "libleak", os.path.basename(name)))
        for name in BUILD.pth_files:
            self.copy_file(name, os.path.join(self.build_lib, os.path.basename(name)))

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [
            os.path.join(self.build_lib, os.path.basename(name)) for name in BUILD.pth_files]


setup(
    version=pipbuild.version("."),
    packages=["libleak"],
    package_dir={"libleak": "pybind/libleak"},
    ext_modules=[Extension("libleak._libleak", sources=BUILD.sources)],
    cmdclass={"build_ext": BuildExtension, "build_py": BuildPackage},
    zip_safe=False,
)
