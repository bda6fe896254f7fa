"""Build hook: compile the firmware's NMEA parser for CPython (all metadata is in pyproject.toml).

``firmware/tracker/nmea.py`` is compiled with Cython, using the C types declared in ``nmea.pxd``
beside it, into ``tracker.nmea``; an editable install puts the module next to the source, where
it takes precedence. The C build is optional: without a working C compiler the install still
succeeds, with a warning, and CPython imports ``nmea.py`` itself (same results, slower;
``hotspots bench nmea`` says which one ran). MicroPython never sees any of this. A Cython error
in ``nmea.pxd`` still fails the install: that is a mistake to fix, not a machine to tolerate.
"""

import sys

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Leaves out, with a warning, an extension the C compiler fails on. (setuptools' own
    ``optional=True`` still fails an editable install when it then copies the missing module.)"""

    def build_extensions(self):
        self.check_extensions_list(self.extensions)
        for ext in list(self.extensions):
            try:
                self.build_extension(ext)
            except Exception as error:  # noqa: BLE001 - any compiler failure means "use nmea.py"
                print(f"WARNING: {ext.name} not compiled ({error}); CPython will run the "
                      "Python source instead", file=sys.stderr)
                self.extensions.remove(ext)


parser = Extension("tracker.nmea", ["firmware/tracker/nmea.py"])
setup(ext_modules=cythonize([parser], language_level=3, quiet=True),
      cmdclass={"build_ext": OptionalBuildExt})
