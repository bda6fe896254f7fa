"""The dock link over the tracker's own USB serial (USB CDC), shared with the console.

On the ESP32-S3 (native USB) and the RP2040 the USB CDC is MicroPython's console: ``sys.stdin``
and ``sys.stdout``. While ``main.py`` runs the tracker, the REPL is not reading it, so the dock's
frames (``tracker.dock``: ``@rid VERB ...*crc``) arrive on ``sys.stdin.buffer`` and the answers go
out on ``sys.stdout.buffer``. The tracker's log lines (``print``) share the same stream: the
gateway's ``DockClient`` skips any line whose CRC does not hold, so they cost nothing but a
count. Ctrl-C is left enabled: USB is CRC-checked packets, so a stray 0x03 never comes from a
dock frame (they are printable ASCII), and ``mpremote`` still interrupts the tracker. The way
back to a clean REPL, before the watchdog starts, is the boot button (``boards.ports``).

``readline`` never blocks the event loop: it polls the stream (``select.poll``) and reads only
the bytes that are there, one at a time into a preallocated line buffer, so a frame cut short by
pulling the tracker out leaves the GNSS reader running. Between polls it sleeps ``POLL_MS``
while the dock is talking and ``QUIET_POLL_MS`` once it has been silent for ``QUIET_MS`` (the
gateway waits 0.5 s for an answer and asks once more, so the first frame after a quiet spell is
always answered in time).
"""

import asyncio
import select

from tracker.compat import const, ticks_diff, ticks_ms

#: One frame is at most 1024 bytes (``tracker.dock``); one byte more lets ``DockLink`` see a
#: longer line and refuse it (``too_long``, counted) instead of this driver cutting it silently.
LINE_MAX = const(1025)
POLL_MS = const(10)
QUIET_POLL_MS = const(200)
QUIET_MS = const(2000)
_POLLIN = const(1)


async def _sleep_ms(ms):
    await asyncio.sleep(ms / 1000)


_SLEEP_MS = getattr(asyncio, "sleep_ms", _sleep_ms)


class DockUsb:
    """Lines from, and frames to, the dock over a console stream (``DockSerial``'s interface).

    :param rx: the stream the dock writes into (``sys.stdin.buffer`` on a board): ``readinto``
    :param tx: the stream to the dock (``sys.stdout.buffer``): ``write``
    :param poller: ``select.poll()`` (the default), or a stand-in with ``register``/``poll``
    """

    def __init__(self, rx, tx, poller=None):
        self.rx = rx
        self.tx = tx
        self._poll = select.poll() if poller is None else poller
        self._poll.register(rx, _POLLIN)
        self._ipoll = getattr(self._poll, "ipoll", None)  # MicroPython: no list per call
        self._flush = getattr(tx, "flush", None)  # a buffered file on CPython
        self._line = bytearray(LINE_MAX + 1)
        self._one = bytearray(1)
        self._n = 0
        self._skipping = False  # inside the rest of an over-long line
        self._last_rx = ticks_ms()
        self.lines = 0
        self.overlong = 0
        self.write_errors = 0

    def _ready(self):
        if self._ipoll is not None:
            for _ in self._ipoll(0):
                return True
            return False
        return bool(self._poll.poll(0))

    async def readline(self):
        """The next line (with its ``\\n``), or ``b""`` when the stream is gone (the host hung
        up: the caller waits and asks again)."""
        line = self._line
        one = self._one
        while True:
            while self._ready():
                try:
                    got = self.rx.readinto(one)
                except OSError:  # EIO: the host side hung up
                    got = 0
                if not got:
                    self._n = 0
                    return b""
                self._last_rx = ticks_ms()
                byte = one[0]
                if self._skipping:
                    if byte == 10:
                        self._skipping = False
                    continue
                line[self._n] = byte
                self._n += 1
                if byte == 10 or self._n > LINE_MAX:
                    n = self._n
                    self._n = 0
                    if byte != 10:  # too long: hand it on to be refused, drop the rest
                        self._skipping = True
                        self.overlong += 1
                    self.lines += 1
                    return bytes(memoryview(line)[:n])
            quiet = ticks_diff(ticks_ms(), self._last_rx) > QUIET_MS
            await _SLEEP_MS(QUIET_POLL_MS if quiet else POLL_MS)

    def write(self, data):
        try:
            self.tx.write(data)
            if self._flush is not None:
                self._flush()
        except OSError:  # unplugged while answering: the gateway asks again
            self.write_errors += 1


def console():
    """The board's console USB CDC as a :class:`DockUsb`."""
    import sys

    return DockUsb(sys.stdin.buffer, sys.stdout.buffer)
