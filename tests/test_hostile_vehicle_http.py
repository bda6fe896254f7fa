"""Hostile requests to the vehicle AVL endpoint (issue 16): what anyone with HTTP access to
the port can send must never stop it or hold it, every request is answered, and every request
is counted exactly once (:class:`gateway.intake.vehicle_http.AvlServer`).

Real parts: the server on a free port, raw sockets speaking HTTP, a SQLite file.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import pytest

from gateway.fleet import crew
from gateway.intake.vehicle_http import AvlServer
from gateway.schema import open_db

T0 = int(time.time()) - 3600


def exchange(port: int, request: bytes, timeout: float = 10.0) -> tuple[int | None, bytes]:
    """Send ``request`` as it is; the status code (None if there was no status line) and body."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            raise
        except OSError:
            pass  # reset: refused as busy while still sending (its answer may be lost with it)
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") else None
    return status, body


def refusal(port: int, source: str = "127.0.0.1") -> bytes:
    """What a connection from ``source`` is told as it is accepted, before it sends anything
    (a refused client that had sent its request may see the reset before the answer)."""
    with socket.socket() as sock:
        sock.bind((source, 0))  # Linux delivers all of 127/8 to the loopback
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def get(port: int, query: bytes) -> tuple[int | None, bytes]:
    return exchange(port, b"GET /?" + query + b" HTTP/1.0\r\n\r\n")


def report(dev: str, tst: int) -> bytes:
    return b"id=%s&timestamp=%d&lat=51.4805&lon=-0.0001" % (dev.encode(), tst)


def start(tmp_path, max_clients: int, max_per_address: int | None = None
          ) -> tuple[AvlServer, str]:
    path = str(tmp_path / "v.db")
    db = open_db(path)
    for dev in ("VEH-1", "VEH-2"):
        crew.board(db, dev, "PC1", at=T0 - 3600)
    db.close()
    server = AvlServer(path, port=0, timeout_s=1.0, deadline_s=3.0, max_clients=max_clients,
                       max_per_address=max_per_address or max_clients).start()
    return server, path


@pytest.fixture
def avl(tmp_path):
    server, path = start(tmp_path, max_clients=8)
    yield server, path
    server.shutdown()


@pytest.fixture
def avl_default(tmp_path):
    server, path = start(tmp_path, max_clients=32)  # the default: room for every thread
    yield server, path
    server.shutdown()


#: (request, expected status, expected counts key)
HOSTILE = [
    (b"GET /?" + b"&".join(b"a%d=1" % i for i in range(65)) + b"&" + report("VEH-1", T0)
     + b" HTTP/1.0\r\n\r\n", 400, "malformed"),
    (b"GET /?id=VEH-1&timestamp=" + b"9" * 5000 + b"&lat=51&lon=0 HTTP/1.0\r\n\r\n", 400,
     "bad_time"),
    (b"GET /?id=VEH-1&timestamp=%D9%A1%D9%A2&lat=51&lon=0 HTTP/1.0\r\n\r\n", 400, "bad_time"),
    (b"GET /?id=VEH-1&timestamp=%d&lat=nan&lon=0 HTTP/1.0\r\n\r\n" % T0, 400, "bad_field"),
    (b"GET /?id=VEH-1&timestamp=%d&lat=51&lon=0&altitude=inf HTTP/1.0\r\n\r\n" % T0, 400,
     "bad_field"),
    (b"GET /?id=VEH-1&timestamp=%d&lat=51&lon=0&hdop=1e308 HTTP/1.0\r\n\r\n" % T0, 400,
     "bad_field"),
    (b"GET /?id=VEH-1&lat=51&lon=0 HTTP/1.0\r\n\r\n", 400, "no_time"),
    (b"GET /?id=VEH-9&timestamp=%d&lat=51&lon=0 HTTP/1.0\r\n\r\n" % T0, 400, "unknown_device"),
    (b"GET /?id=VEH-1%%ff&timestamp=%d&lat=51&lon=0 HTTP/1.0\r\n\r\n" % T0, 400,
     "bad_device_id"),
    (b"GET /?" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n", 414, "http_414"),
    (b"GET / HTTP/1.0\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431, "http_431"),
    (b"POST / HTTP/1.0\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000, 413, "too_large"),
    (b"POST / HTTP/1.0\r\nContent-Length: -5\r\n\r\n", 413, "too_large"),
    (b"POST / HTTP/1.0\r\nContent-Length: 100\r\n\r\nid=VEH-1&timestamp=1", 400, "incomplete"),
    (b"POST / HTTP/1.0\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x01", 400, "malformed"),
    # Not HTTP (a TLS hello): http.server answers as to HTTP/0.9, an error page without a
    # status line.
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 4, None,
     "http_400"),
    (b"DELETE / HTTP/1.0\r\n\r\n", 501, "http_501"),
]


def test_hostile_requests_are_answered_counted_and_good_reports_stored(avl):
    server, path = avl
    for i, (request, status, key) in enumerate(HOSTILE):
        before = server.counts[key]
        got, body = exchange(server.port, request)
        assert got == status, (i, got, body[:200])
        assert server.counts[key] == before + 1, (i, key, dict(server.counts))
        # and the next good report is stored
        assert get(server.port, report("VEH-2", T0 + i)) == (200, b"stored")
    assert sum(server.counts.values()) == 2 * len(HOSTILE)
    # A report the intake refuses says why, not just whose it was.
    status, body = get(server.port, b"id=VEH-1&timestamp=%d&lat=51&lon=0&hdop=1e308" % (T0 + 1))
    assert status == 400 and body.startswith(b"bad_field: acc_m"), body
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM positions").fetchone()[0] == len(HOSTILE)
        reports = sum(1 for _r, s, k in HOSTILE if s == 400 and k not in (
            "incomplete", "http_400"))
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == reports + 1


def test_trickling_and_idle_clients_hold_nothing(avl):
    """A client sending one byte a second, and idle connections up to the cap: another
    vehicle's report is answered at once, the trickler is cut at the deadline, and a client
    beyond the cap is told busy."""
    server, path = avl
    cut = threading.Event()

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            try:
                for byte in b"GET /?id=VEH-1&timestamp=1 HTTP/1.0\r\n":
                    sock.send(bytes([byte]))
                    time.sleep(0.5)
            except OSError:
                cut.set()

    trickler = threading.Thread(target=trickle)
    trickler.start()
    time.sleep(0.3)
    assert get(server.port, report("VEH-2", T0)) == (200, b"stored")
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(7)]
    try:
        time.sleep(0.3)
        answer = refusal(server.port)  # the ninth: over the cap
        assert answer.startswith(b"HTTP/1.0 503") and answer.endswith(b"\r\n\r\nbusy\n")
    finally:
        for sock in idle:
            sock.close()
    trickler.join(30)
    assert cut.is_set(), "the trickling client was never cut off"
    deadline = time.monotonic() + 10
    while get(server.port, report("VEH-2", T0 + 2))[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert server.counts["busy"] >= 1 and server.counts["timeout"] >= 1


def test_one_address_cannot_take_every_reader(tmp_path):
    """Idle connections from one address up to its share: the next from that address is told
    busy (counted apart from the whole endpoint being busy), while a vehicle reporting from
    another address is stored at once."""
    server, _path = start(tmp_path, max_clients=8, max_per_address=3)
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        try:
            time.sleep(0.3)
            answer = refusal(server.port)
            assert answer.startswith(b"HTTP/1.0 503") and answer.endswith(b"\r\n\r\nbusy\n")
            with socket.socket() as sock:  # a vehicle reporting from another address
                sock.bind(("127.0.0.2", 0))
                sock.settimeout(10)
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(b"GET /?" + report("VEH-2", T0) + b" HTTP/1.0\r\n\r\n")
                sock.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"stored")
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 10
        while get(server.port, report("VEH-1", T0 + 1))[0] != 200:  # its share is back
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert server.counts["busy_address"] >= 1 and server.counts["busy"] == 0
        assert server.counts["stored"] == 2
    finally:
        server.shutdown()


def test_a_flood_from_one_vehicle_does_not_cost_another_a_report(avl_default):
    """Eight threads of VEH-1 resending, out of order, while VEH-2 reports every fix once:
    every request answered, every VEH-2 fix stored, the counts exact."""
    server, path = avl_default
    answers: list[int | None] = []
    lock = threading.Lock()

    def flood(k: int) -> None:
        for i in range(25):
            status, _ = get(server.port, report("VEH-1", T0 + (i * 7 + k) % 40))
            with lock:
                answers.append(status)

    threads = [threading.Thread(target=flood, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    innocent = [get(server.port, report("VEH-2", T0 + 100 + i)) for i in range(30)]
    for t in threads:
        t.join(60)
    assert innocent == [(200, b"stored")] * 30
    assert answers == [200] * 200
    with sqlite3.connect(path) as conn:
        stored = dict(conn.execute("SELECT device_id, count(*) FROM positions GROUP BY 1"))
    assert stored["VEH-2"] == 30 and stored["VEH-1"] == 40
    counts = server.counts
    assert counts["stored"] == 70
    assert counts["stored"] + counts["duplicate"] == 230 and sum(counts.values()) == 230
