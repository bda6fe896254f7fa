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
from gateway.intake import service
from gateway.intake.intake import Intake
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
    assert proc.stderr.read().strip().splitlines()[-1] == (
        "stored {'location': 50}, duplicates 0, status 0, quarantined {}")


class CommitFailsWithPoison(Intake):
    """Fault injection: the commit of any transaction holding a message marked ``poison``
    fails, as a commit can (I/O error, a constraint checked at commit) whatever the content."""

    poisoned = False

    def submit(self, obs, received_at, raw=None):
        self.poisoned |= bool(raw and b'"poison"' in raw)
        return super().submit(obs, received_at, raw)

    def commit(self):
        if self.poisoned:
            self.poisoned = False
            raise sqlite3.DatabaseError("injected: the commit failed")
        super().commit()

    def rollback(self):
        self.poisoned = False
        super().rollback()


def test_a_batch_whose_commit_fails_is_stored_one_by_one_and_only_the_culprit_quarantined(
        mosquitto, tmp_path, monkeypatch):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, "T-1")
    db.close()
    with Running(mosquitto, db_path):
        pass  # the gateway's persistent session now exists: the broker queues for it
    monkeypatch.setattr(service, "Intake", CommitFailsWithPoison)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="T-1")
    client.username_pw_set(**mosquitto.device("T-1").auth())
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    now = int(time.time())
    for seq in range(1, 7):
        payload = {"_type": "location", "dev": "T-1", "seq": seq, "tst": now - 100 + seq,
                   "lat": 51.5, "lon": -0.001, "acc": 5}
        if seq == 4:
            payload["note"] = "poison"
        client.publish("hotspots/dev/T-1/loc", json.dumps(payload).encode(),
                       qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    # Queued while the gateway was down: they arrive together, in one batch.
    with Running(mosquitto, db_path) as gateway:
        rows = wait_rows(db_path, 5)
        deadline = time.monotonic() + 10
        while gateway.intake.counts.handled < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert isinstance(gateway.intake, CommitFailsWithPoison)
    assert rows == [("T-1", s) for s in (1, 2, 3, 5, 6)]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT reason, detail FROM quarantine").fetchall() == [
            ("store_failed", "DatabaseError: injected: the commit failed")]
    monkeypatch.undo()
    with Running(mosquitto, db_path) as gateway:  # every message was acknowledged
        time.sleep(0.5)
        assert gateway.intake.counts.handled == 0


def test_a_database_locked_past_the_busy_timeout_delays_the_batch_and_loses_nothing(
        mosquitto, tmp_path, caplog):
    """Another writer holding the lock is not the messages' fault: nothing is quarantined, the
    batch is retried and stored once the lock is released."""
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, "T-1")
    db.close()
    with Running(mosquitto, db_path) as gateway:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # longer than the gateway's 5 s busy timeout
        publish(mosquitto, "T-1", [1, 2, 3])
        time.sleep(6)
        other.execute("ROLLBACK")
        other.close()
        rows = wait_rows(db_path, 3, timeout_s=15)
        assert gateway.intake.counts.quarantined == {}
    assert rows == [("T-1", s) for s in (1, 2, 3)]
    assert "retrying" in caplog.text  # the lock did outlast the busy timeout
