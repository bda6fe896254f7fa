"""Storage port over a filesystem folder: the board's flash on a device, a folder on a host.

Boards with a filesystem (ESP32 and RP2040 VFS, the unix port, CPython) all use this one class;
the core only sees ``read(name)`` and ``write(name, text)``.
"""

import os


class DirStorage:
    """Named text blobs in a folder; ``write`` is atomic (temporary file, then rename)."""

    def __init__(self, root):
        self.root = root
        try:
            os.mkdir(root)
        except OSError:
            pass  # already there

    def path(self, name):
        """Full path of the blob ``name``."""
        return self.root + "/" + name

    def read(self, name):
        """The text stored under ``name``, or None."""
        try:
            with open(self.path(name)) as f:
                return f.read()
        except OSError:
            return None

    def write(self, name, text):
        """Replace ``name`` with ``text`` so that a power cut leaves the old or the new, whole."""
        path = self.path(name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
