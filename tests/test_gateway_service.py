"""The gateway process against a real, locked-down Mosquitto: persistent session, QoS 1."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from gateway.fleet.identity import register_device
from gateway.intake.service import Gateway
from gateway.schema import open_db


def publish(broker, device_id: str, seqs: list[int]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=device_id)
    client.username_pw_set(**broker.device(device_id).auth())
    client.connect(broker.host, broker.port)
    client.loop_start()
    for seq in seqs:
        payload = json.dumps({"_type": "location", "dev": device_id, "seq": seq,
                              "tst": int(time.time()) - 100 + seq, "lat": 51.5,
                              "lon": -0.001, "acc": 5}).encode()
        client.publish(f"hotspots/dev/{device_id}/loc", payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


class Running:
    """A gateway in a thread, stopped on exit."""

    def __init__(self, broker, db_path) -> None:
        self.gateway = Gateway(broker.address, str(db_path), **broker.gateway.auth())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.gateway.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        assert self.gateway.connected.wait(10)
        return self.gateway

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(20)


def wait_rows(db_path, n: int, timeout_s: float = 10) -> list[tuple]:
    deadline = time.monotonic() + timeout_s
    while True:
        with sqlite3.connect(db_path) as conn:
            rows = conn.execute("SELECT device_id, seq FROM positions ORDER BY seq").fetchall()
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_messages_sent_while_the_gateway_is_down_arrive_once_after_restart(mosquitto,
                                                                           tmp_path):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, "T-1")
    db.close()
    with Running(mosquitto, db_path):
        publish(mosquitto, "T-1", [1, 2, 3])
        assert len(wait_rows(db_path, 3)) == 3
    publish(mosquitto, "T-1", [4, 5, 3])  # 3 again: a device retry after a lost PUBACK
    with Running(mosquitto, db_path) as gateway:
        rows = wait_rows(db_path, 5)
        time.sleep(0.3)
        assert gateway.intake.counts.duplicates == 1
    assert rows == [("T-1", s) for s in range(1, 6)]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT duplicates FROM devices WHERE device_id = 'T-1'"
                            ).fetchone() == (1,)


def test_wrong_password_is_reported_not_retried_silently(mosquitto, tmp_path):
    gateway = Gateway(mosquitto.address, str(tmp_path / "g.db"), username="gateway",
                      password="wrong")
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while gateway.refused is None and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(20)
    assert gateway.refused is not None and not gateway.connected.is_set()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_gateway_command_stops_cleanly_on_a_signal_with_everything_counted(mosquitto, tmp_path,
                                                                           how):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, "T-1")
    db.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotspots", "gateway", "run", "--broker", mosquitto.address,
         "--db", str(db_path), "--accounts", str(mosquitto.accounts_path)],
        stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stderr.readline().startswith("gateway:")
        assert proc.stderr.readline().strip() == "gateway: subscribed"
        publish(mosquitto, "T-1", list(range(1, 51)))
        assert len(wait_rows(db_path, 50)) == 50
        proc.send_signal(how)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    # The last line counts what this run stored: every message, none twice.
    assert proc.stderr.read().strip().splitlines()[-1] == "stored {'location': 50}, duplicates 0"
