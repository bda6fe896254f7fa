"""A bad mobile data link between a tracker and the broker: a TCP relay that can be cut.

``FlakyLink`` listens on a loopback port and relays every connection to the broker. ``cut()``
drops every open connection at once (as a radio losing coverage does, without a clean close
handshake reaching the other side in time), ``down()`` / ``up()`` refuse new connections for a
while (a dead spot), ``flap_every(seconds)`` cuts periodically from a background thread, and
``trickle(chunk, pause_s)`` passes data on a few bytes at a time, as a slow radio bearer does.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time


class FlakyLink:
    """A relay from ``127.0.0.1:<port>`` to ``target`` ("HOST:PORT")."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut_request = threading.Event()
        self._cut_done = threading.Event()
        self._up = True
        self._stop = threading.Event()
        self.cuts = 0
        self.connections = 0
        #: Bytes relayed from the target to the clients (down) and back (up), as a TCP proxy
        #: counts them: what a tracker's radio receives and sends.
        self.down_bytes = 0
        self.up_bytes = 0
        self._servers: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._serve, name="flaky-link", daemon=True)
        self._thread.start()
        self._flapper: threading.Thread | None = None
        self._chunk = 0
        self._pause_s = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every relayed connection now (done by the relay thread, which owns them)."""
        self._cut_done.clear()
        self._cut_request.set()
        self._cut_done.wait(5)

    def down(self) -> None:
        """Cut everything and refuse new connections until :meth:`up`."""
        self._up = False
        self.cut()

    def up(self) -> None:
        self._up = True

    def flap_every(self, seconds: float) -> None:
        """Cut all connections every ``seconds`` until :meth:`close`."""

        def flap() -> None:
            while not self._stop.wait(seconds):
                self.cut()

        self._flapper = threading.Thread(target=flap, name="flapper", daemon=True)
        self._flapper.start()

    def trickle(self, chunk: int, pause_s: float) -> None:
        """From now on relay ``chunk`` bytes at a time with ``pause_s`` between them (0: whole)."""
        self._chunk = chunk
        self._pause_s = pause_s

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        self._listener.setblocking(False)
        sel.register(self._listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                sock = key.fileobj
                if sock is self._listener:
                    self._accept(sel, peers)
                    continue
                other = peers.get(sock)
                try:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if sock in self._servers:
                        self.down_bytes += len(data)
                    else:
                        self.up_bytes += len(data)
                    self._relay(other, data)
                except (OSError, AttributeError):
                    self._forget(sel, peers, sock)
            if self._cut_request.is_set():
                self._cut_request.clear()
                if peers:
                    self.cuts += 1
                for sock in list(peers):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    self._forget(sel, peers, sock)
                self._cut_done.set()
        for sock in list(peers):
            self._forget(sel, peers, sock)
        sel.close()

    def _relay(self, other: socket.socket, data: bytes) -> None:
        chunk = self._chunk or len(data)
        for i in range(0, len(data), chunk):
            other.sendall(data[i : i + chunk])
            if self._chunk:
                time.sleep(self._pause_s)

    def _accept(self, sel: selectors.BaseSelector, peers: dict) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if not self._up:
            client.close()
            return
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setblocking(True)
            s.settimeout(5)
        peers[client] = server
        peers[server] = client
        self._servers.add(server)
        self.connections += 1
        sel.register(client, selectors.EVENT_READ)
        sel.register(server, selectors.EVENT_READ)

    def _forget(self, sel: selectors.BaseSelector, peers: dict, sock: socket.socket) -> None:
        other = peers.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            peers.pop(s, None)
            self._servers.discard(s)
            with contextlib.suppress(KeyError, ValueError, OSError):
                sel.unregister(s)
            s.close()


def wait_for(predicate, timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())
