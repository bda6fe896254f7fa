"""Build hook: compile the firmware's NMEA parser for CPython (all metadata is in pyproject.toml).

``firmware/tracker/nmea.py`` is compiled with Cython, using the C types declared in ``nmea.pxd``
beside it, into ``tracker.nmea``; an editable install puts the module next to the source, where
it takes precedence. The C build is optional: without Cython or a working C compiler the install
still succeeds, with a warning, and CPython imports ``nmea.py`` itself (same results, slower;
``hotspots bench nmea`` says which one ran). MicroPython never sees any of this. A Cython error
in ``nmea.pxd`` still fails the install: that is a mistake to fix, not a machine to tolerate.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def warn(message: str) -> None:
    print(f"WARNING: {message}; CPython will run firmware/tracker/nmea.py uncompiled",
          file=sys.stderr)


class OptionalBuildExt(build_ext):
    """Leaves out, with a warning, an extension the C compiler fails on. (setuptools' own
    ``optional=True`` still fails an editable install when it then copies the missing module.)
    An older in-place build of it is deleted, so that a stale module never shadows the source.
    """

    def build_extensions(self):
        self.check_extensions_list(self.extensions)
        for ext in list(self.extensions):
            try:
                self.build_extension(ext)
            except Exception as error:  # noqa: BLE001 - any compiler failure means "use nmea.py"
                warn(f"{ext.name} not compiled ({error})")
                self.extensions.remove(ext)
                stale = self.in_source_path(ext)
                if os.path.exists(stale):
                    os.remove(stale)

    def in_source_path(self, ext: Extension) -> str:
        """Where an in-place (editable) build puts the module: beside its source."""
        package = ext.name.rpartition(".")[0]
        package_dir = self.get_finalized_command("build_py").get_package_dir(package)
        return os.path.join(package_dir, os.path.basename(self.get_ext_filename(ext.name)))


try:
    from Cython.Build import cythonize
except ImportError:  # e.g. --no-build-isolation without Cython installed
    warn("Cython is not installed")
    setup()
else:
    parser = Extension("tracker.nmea", ["firmware/tracker/nmea.py"])
    setup(ext_modules=cythonize([parser], language_level=3, quiet=True),
          cmdclass={"build_ext": OptionalBuildExt})
