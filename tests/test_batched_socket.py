"""The gateway's batched socket, on real socket pairs, and the gateway using it against Mosquitto:
read-ahead, write coalescing in order, back-pressure, TLS, batches bounded by ``batch_size``."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest

from gateway.fleet.identity import register_device
from gateway.intake.batched_socket import BatchedSocket, puback_packets
from gateway.intake.service import Gateway
from gateway.schema import open_db
from tests.test_gateway_service import publish, wait_rows


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield BatchedSocket(ours, chunk=64), theirs
    ours.close()
    theirs.close()


def test_small_reads_are_served_from_one_read_ahead(pair):
    sock, peer = pair
    peer.sendall(b"0123456789" * 3)
    assert sock.recv(1) == b"0"
    assert sock.pending() == 29  # the rest was read with the first byte
    assert sock.recv(2) == b"12"
    assert sock.recv(100) == b"3456789" + b"0123456789" * 2  # never more than is buffered
    assert sock.pending() == 0


def test_nothing_arrived_raises_would_block_and_end_of_stream_reads_empty(pair):
    sock, peer = pair
    with pytest.raises(BlockingIOError):
        sock.recv(1)
    peer.sendall(b"ab")
    peer.shutdown(socket.SHUT_WR)
    assert sock.recv(5) == b"ab"
    assert sock.recv(5) == b""


def test_writes_wait_for_flush_and_keep_their_order(pair):
    sock, peer = pair
    assert sock.send(b"PAHO1") == 5  # paho believes it all went
    sock.write(b"ours")
    assert sock.send(b"PAHO2") == 5
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)
    assert sock.flush() is True
    assert peer.recv(100) == b"PAHO1oursPAHO2"


def test_a_full_socket_keeps_the_rest_for_the_next_flush(pair):
    sock, peer = pair
    big = bytes(range(256)) * 8192  # 2 MiB: more than a socket pair buffers
    sock.write(big)
    assert sock.flush() is False
    received = bytearray()
    while len(received) < len(big):
        received += peer.recv(1 << 16)
        sock.flush()
    assert bytes(received) == big


def test_close_waits_briefly_for_a_full_socket(pair):
    sock, peer = pair
    big = bytes(range(256)) * 1024  # 256 KiB: more than the socket pair holds at once
    sock.write(big)
    received = bytearray()

    def drain() -> None:
        while len(received) < len(big):
            data = peer.recv(1 << 16)
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()
    sock.close()
    reader.join(5)
    assert bytes(received) == big


def test_close_sends_what_is_buffered(pair):
    sock, peer = pair
    sock.send(b"\xe0\x00")  # DISCONNECT, as paho writes it just before closing
    sock.close()
    assert peer.recv(10) == b"\xe0\x00"


def test_pubacks_are_mqtt_311_pubacks_in_order():
    assert puback_packets([1, 258, 65535]) == b"\x40\x02\x00\x01\x40\x02\x01\x02\x40\x02\xff\xff"
    assert puback_packets([]) == b""


def _registered_db(path, *devices: str) -> None:
    db = open_db(str(path))
    for device in devices:
        register_device(db, device)
    db.close()


@contextmanager
def running(gateway: Gateway, on_batch=None):
    """The gateway in a thread, connected and subscribed; stopped (and joined) on exit."""
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop, on_batch), daemon=True)
    thread.start()
    try:
        assert gateway.connected.wait(10)
        yield gateway
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()


def test_gateway_stores_over_tls(tls_mosquitto, tmp_path):
    db_path = tmp_path / "g.db"
    _registered_db(db_path, "T-1")
    with running(Gateway(tls_mosquitto.tls_address, str(db_path), tls_ca=tls_mosquitto.ca_path,
                         **tls_mosquitto.gateway.auth())) as gateway:
        # paho made its connection with our hook (a private method: a paho release that renames
        # it would be caught here, not in production).
        assert isinstance(gateway.client.socket(), BatchedSocket)
        publish(tls_mosquitto, "T-1", list(range(1, 201)))
        assert wait_rows(db_path, 200) == [("T-1", s) for s in range(1, 201)]


def test_a_backlog_is_stored_in_batches_no_bigger_than_batch_size(mosquitto, tmp_path):
    db_path = tmp_path / "g.db"
    _registered_db(db_path, "T-1")
    auth = mosquitto.gateway.auth()
    # Open the persistent session, then let 700 messages queue up for it while it is away.
    with running(Gateway(mosquitto.address, str(db_path), **auth)):
        pass
    publish(mosquitto, "T-1", list(range(1, 701)))

    batches: list[int] = []
    handled = [0]

    def on_batch(counts) -> None:
        batches.append(counts.handled - handled[0])
        handled[0] = counts.handled

    with running(Gateway(mosquitto.address, str(db_path), batch_size=100, **auth), on_batch):
        assert len(wait_rows(db_path, 700)) == 700
    assert sum(batches) == 700 and max(batches) <= 100
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(DISTINCT seq), max(seq) FROM positions").fetchone() \
            == (700, 700)


def test_the_broker_gets_every_puback(mosquitto, tmp_path):
    """After the gateway stops, nothing is left for its session: every message was acknowledged,
    so a second gateway on the same session receives none again."""
    db_path = tmp_path / "g.db"
    _registered_db(db_path, "T-1")
    auth = mosquitto.gateway.auth()
    with running(Gateway(mosquitto.address, str(db_path), **auth)):
        publish(mosquitto, "T-1", list(range(1, 301)))
        assert len(wait_rows(db_path, 300)) == 300
    with running(Gateway(mosquitto.address, str(db_path), **auth)) as again:
        time.sleep(1.0)
    assert again.intake.counts.handled == 0
