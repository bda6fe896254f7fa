"""Storage port over a filesystem folder: the board's flash on a device, a folder on a host.

Boards with a filesystem (ESP32 and RP2040 VFS, the unix port, CPython) all use this one class;
the core only sees the methods below. Small state is replaced atomically with ``write``; a
large blob (a fence set arriving over MQTT) is written piece by piece with ``create`` and put in
place with ``replace``; the outbox log grows with ``append``, which flushes before it returns.
"""

import os

# The next version of a blob written piece by piece (``create``) has its own suffix, ``.new``,
# so a ``write`` of the same name meanwhile (``.tmp``) cannot truncate or rename it. (Literals,
# not module globals: a global's name is interned for good, docs/memory.md.)


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
        """Replace ``name`` with ``text`` (str, or bytes-like: written as they are) so that a
        power cut leaves the old or the new, whole."""
        path = self.path(name)
        with open(path + ".tmp", "w" if isinstance(text, str) else "wb") as f:
            f.write(text)
        os.rename(path + ".tmp", path)

    # -- large blobs, written as they arrive ------------------------------------------------------
    def create(self, name):
        """A binary file to write the next version of ``name`` into, piece by piece; it takes
        the place of ``name`` only on :meth:`replace`, so a power cut keeps the old one."""
        return open(self.path(name) + ".new", "wb")

    def open(self, name, new=False):
        """``name`` (or its next version, with ``new``) for reading bytes, or None."""
        try:
            return open(self.path(name) + (".new" if new else ""), "rb")
        except OSError:
            return None

    def replace(self, name):
        """Make the next version of ``name`` (see :meth:`create`) the current one, atomically."""
        os.rename(self.path(name) + ".new", self.path(name))

    def discard(self, name):
        """Drop the next version of ``name``."""
        self.remove(name + ".new")

    # -- binary logs (the outbox) ---------------------------------------------------------------
    def names(self):
        """Names of the blobs in the folder."""
        return [n for n in os.listdir(self.root)
                if not n.endswith(".tmp") and not n.endswith(".new")]

    def size(self, name):
        """Size of ``name`` in bytes (0 when missing)."""
        try:
            return os.stat(self.path(name))[6]
        except OSError:
            return 0

    def read_bytes(self, name):
        """The whole of ``name`` as bytes (b"" when missing)."""
        try:
            with open(self.path(name), "rb") as f:
                return f.read()
        except OSError:
            return b""

    def read_at(self, name, pos, n):
        """``n`` bytes of ``name`` from offset ``pos``."""
        with open(self.path(name), "rb") as f:
            f.seek(pos)
            return f.read(n)

    def append(self, name, data):
        """Append ``data`` to ``name`` and flush it to the file system before returning."""
        with open(self.path(name), "ab") as f:
            f.write(data)
            f.flush()
            if hasattr(os, "fsync"):  # CPython and Linux force the data to disk; MicroPython's
                os.fsync(f.fileno())  # VFS flushes on close

    def remove(self, name):
        """Delete ``name`` if it exists."""
        try:
            os.remove(self.path(name))
        except OSError:
            pass
