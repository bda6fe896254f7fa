"""Dock port and battery gauge for the MicroPython unix port (and CPython): wiring only.

``DockSerial`` is the tracker's end of the dock's USB serial, here a tty (a pseudo-terminal from
``simulators/dock.py``), opened by ``boards.unix_devices.open_raw``: raw mode with VMIN=0, so a
read returns what has arrived instead of blocking until a whole line is there: a frame cut short
by unplugging must not freeze the event loop (and with it the GNSS reader).

``FileBattery`` reads the simulated fuel gauge: a file holding ``<percent> <charging 0|1>``,
rewritten by the dock simulator's battery model.
"""

import asyncio


class DockSerial:
    """Lines from, and frames to, the dock's serial link."""

    def __init__(self, path):
        from boards.unix_devices import open_raw

        self._file = open_raw(path)
        self._stream = asyncio.StreamReader(self._file)

    async def readline(self):
        try:
            return await self._stream.readline()
        except OSError:  # EIO: the other end hung up
            return b""

    def write(self, data):
        try:
            self._file.write(data)
        except OSError:  # unplugged while answering: the gateway asks again
            pass


class FileBattery:
    """A fuel gauge read from a text file: ``<percent> <charging 0|1>``."""

    def __init__(self, path):
        self.path = path

    def _read(self):
        try:
            with open(self.path) as f:
                parts = f.read().split()
            return int(parts[0]), len(parts) > 1 and parts[1] == "1"
        except (OSError, ValueError, IndexError):
            return -1, False

    def percent(self):
        return self._read()[0]

    def charging(self):
        return self._read()[1]
