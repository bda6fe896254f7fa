"""Build hook: compile the firmware's NMEA parser for CPython (all metadata is in pyproject.toml).

``firmware/tracker/nmea.py`` is compiled with Cython, using the C types declared in ``nmea.pxd``
beside it, into ``tracker.nmea``; an editable install puts the module next to the source, where
it takes precedence. The extension is optional: without a C compiler the install still succeeds
and CPython imports ``nmea.py`` itself (same results, slower; ``hotspots bench nmea`` says which
one ran). MicroPython never sees any of this.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

parser = Extension("tracker.nmea", ["firmware/tracker/nmea.py"], optional=True)
setup(ext_modules=cythonize([parser], language_level=3, quiet=True))
