"""A TCP proxy that counts the bytes each way: what really crossed the link.

Put it between the tracker's link (the host's sockets, or the simulated modem's) and Mosquitto:
the firmware dials the proxy, the proxy dials the broker. It counts every byte of every
connection in both directions — MQTT framing, CONNECT/CONNACK, PINGREQs, PUBACKs, retained
messages re-delivered at each connect — so the bytes a shift costs can be set against the bytes
of the messages themselves.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass


@dataclass
class ProxyCounters:
    """Totals over all connections through the proxy."""

    connections: int = 0
    bytes_up: int = 0  # client (tracker) -> server (broker)
    bytes_down: int = 0  # server -> client


class CountingProxy:
    """Listen on ``127.0.0.1:<free port>`` and forward each connection to ``target``.

    :param target: ``(host, port)`` of the server (Mosquitto)
    """

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.counters = ProxyCounters()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(8)
        self.host, self.port = self._listener.getsockname()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``host:port`` to hand the client."""
        return f"{self.host}:{self.port}"

    def __enter__(self) -> CountingProxy:
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting and drop every open connection."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.close()
        if self._thread is not None:
            self._thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()  # the broker is down: the client sees the link fail
                continue
            server.settimeout(None)
            with self._lock:
                self.counters.connections += 1
                self._sockets += [client, server]
            for src, dst, up in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, up), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                with self._lock:
                    if up:
                        self.counters.bytes_up += len(data)
                    else:
                        self.counters.bytes_down += len(data)
        except OSError:
            pass
        finally:
            # Half-close the other side so it sees the end too; then both go.
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
