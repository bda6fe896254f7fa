"""The tracker core on CPython: a simulated board for ``hotspots firmware run --cpython``.

The same ``tracker.app.run`` as on the MicroPython unix port, with CPython's asyncio streams
and a reader thread for the serial device (CPython's event loop cannot poll every tty kind).
"""

from __future__ import annotations

import asyncio
import os
import threading
import tty

from boards.storage import DirStorage
from boards.unix import tls_opener
from tracker import app, config


class ThreadedLines:
    """GNSS lines read by a thread from a tty or file, handed to the event loop."""

    def __init__(self, path: str):
        self.path = path
        self._queue: asyncio.Queue[bytes] | None = None

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            with open(self.path, "rb", buffering=0) as f:
                pending = b""
                while True:
                    try:
                        chunk = f.read(4096)
                    except OSError:  # EIO: the pseudo-terminal was hung up
                        chunk = b""
                    if not chunk:
                        break
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        loop.call_soon_threadsafe(self._queue.put_nowait, line + b"\n")
                if pending:
                    loop.call_soon_threadsafe(self._queue.put_nowait, pending)
        finally:
            loop.call_soon_threadsafe(self._queue.put_nowait, b"")

    async def readline(self) -> bytes:
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._pump, args=(loop,), daemon=True).start()
        return await self._queue.get()


class FdStream:
    """An asyncio stream over a tty on CPython (the modem's UART): ``readinto``, ``read``,
    ``write``, ``drain``, as MicroPython's ``asyncio.StreamReader`` gives the unix board."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self._out = bytearray()

    async def _ready(self, add, remove) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        add(self.fd, lambda: future.done() or future.set_result(None))
        try:
            await future
        finally:
            remove(self.fd)

    async def readinto(self, buf) -> int:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.readv(self.fd, [buf])
            except BlockingIOError:
                await self._ready(loop.add_reader, loop.remove_reader)
            except OSError:  # EIO: the other end hung up
                return 0

    async def read(self, n: int) -> bytes:
        buf = bytearray(n)
        return bytes(buf[: await self.readinto(buf)])

    def write(self, data) -> None:
        self._out += data

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._out:
            try:
                n = os.write(self.fd, self._out)
            except BlockingIOError:
                await self._ready(loop.add_writer, loop.remove_writer)
                continue
            del self._out[:n]

    def close(self) -> None:
        os.close(self.fd)


def run(gps: str, broker: str, device_id: str, state: str, station: str = "main",
        exit_on_eof: bool = False, report_s: int = 10, user: str | None = None,
        password: str | None = None, tls_ca: str | None = None,
        sampling: str = "adaptive", modem: str | None = None,
        apn: str = "internet") -> app.Tracker:
    """Run the tracker on CPython until the GNSS stream ends (with ``exit_on_eof``);
    ``modem``: through a SIM7080G on that serial device (the same driver as on a board).

    The options become the same settings dict as the boards' ``config.json`` (``ConfigError``
    if one cannot run).
    """
    host, port = broker.rsplit(":", 1)
    cfg = config.build({"device_id": device_id, "broker_host": host, "broker_port": int(port),
                        "station": station, "exit_on_eof": exit_on_eof, "report_s": report_s,
                        "user": user, "password": password, "ca": tls_ca,
                        "sampling": sampling, "gnss_device": gps, "state_dir": state,
                        "modem": modem, "apn": apn if modem else None})
    opener = tls_opener(tls_ca) if tls_ca else asyncio.open_connection
    radio = None
    if modem:
        from drivers.modem_sim7080 import Modem

        ca_pem = open(tls_ca, "rb").read() if tls_ca else None  # noqa: SIM115
        radio = Modem(FdStream(modem), cfg, print, ca_pem)
        opener = radio.open_connection
    ports = app.Ports(ThreadedLines(gps), opener, DirStorage(state), radio=radio)
    return asyncio.run(app.run(ports, cfg))
