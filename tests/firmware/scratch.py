"""Scratch folders for the portable tests: real files under /tmp, on CPython and MicroPython."""

import os
import random

from boards.storage import DirStorage


def scratch(prefix="hotspots-test"):
    """A ``DirStorage`` over an empty folder of its own under /tmp."""
    storage = DirStorage("/tmp/%s-%d" % (prefix, random.getrandbits(30)))
    for name in storage.names():
        storage.remove(name)
    return storage


def wipe(storage):
    """Remove the folder and everything in it."""
    for name in storage.names():
        storage.remove(name)
    os.rmdir(storage.root)
