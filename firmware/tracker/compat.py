"""The one place where the firmware core papers over MicroPython/CPython differences.

Everything else in ``tracker`` imports ``const`` and friends from here, so the same source
compiles with ``mpy-cross`` and runs on CPython without path tricks.
"""

try:
    from micropython import const  # noqa: F401
except ImportError:  # CPython

    def const(value):
        return value


try:
    from time import ticks_add, ticks_diff, ticks_ms  # noqa: F401
except ImportError:  # CPython
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b


import sys

MICROPYTHON = sys.implementation.name == "micropython"
