"""Bounded: one device's quarantine cannot grow past its budget, and a device flooding its topic
delays no other device's fixes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time

import paho.mqtt.client as paho

from gateway.fleet.identity import register_device
from gateway.fleet.status import fleet_status, status_lines
from gateway.intake import mqtt
from gateway.intake.intake import Intake, QuarantineBudget
from gateway.intake.service import Gateway
from gateway.schema import open_db

NOW = 1_795_000_000
SMALL = QuarantineBudget(max_rows=100, max_bytes=60_000, raw_keep=1024)


def junk(i: int, size: int = 3000) -> bytes:
    return (b"{%d" % i) + b"x" * size


def usage(db, device_id: str) -> tuple[int, int]:
    return db.execute("SELECT count(*), coalesce(sum(length(raw) + length(detail)"
                      " + length(topic)), 0) FROM quarantine WHERE device_id = ?",
                      (device_id,)).fetchone()


def test_a_flood_keeps_the_newest_rows_within_budget_and_counts_the_rest(db):
    for device in ("T-9", "T-1"):
        register_device(db, device)
    intake = Intake(db, budget=SMALL)
    for i in range(5):
        mqtt.handle(intake, "hotspots/dev/T-1/loc", junk(i), NOW)
    for i in range(2000):
        assert mqtt.handle(intake, "hotspots/dev/T-9/loc", junk(i), NOW + i) == "quarantined"
        if i % 100 == 99:
            intake.commit()
    intake.commit()
    rows, size = usage(db, "T-9")
    assert rows <= SMALL.max_rows and size <= SMALL.max_bytes
    assert usage(db, "T-1")[0] == 5  # another device's quarantine is its own
    # The newest are kept, truncated to raw_keep with their full length and hash.
    newest = db.execute("SELECT raw, raw_len, raw_sha256 FROM quarantine WHERE device_id = 'T-9'"
                        " ORDER BY id DESC LIMIT 1").fetchone()
    assert newest == (junk(1999)[:1024], len(junk(1999)), hashlib.sha256(junk(1999)).hexdigest())
    evicted_n, evicted_bytes = db.execute(
        "SELECT n, bytes FROM intake_counters WHERE device_id = 'T-9'"
        " AND counter = 'quarantine_evicted'").fetchone()
    assert evicted_n + rows == 2000 and evicted_n == intake.counts.evicted
    assert intake.counts.quarantined == {"malformed": 2005}  # every message still counted
    status = fleet_status(db, NOW)
    assert status.evicted == {"T-9": (evicted_n, evicted_bytes)}
    assert any(line.startswith("quarantine over budget, oldest deleted: T-9 ")
               for line in status_lines(status))


def test_the_budget_holds_across_restarts_and_for_messages_naming_no_device(db):
    register_device(db, "T-9")
    for _restart in range(3):
        intake = Intake(db, budget=SMALL)
        for i in range(80):
            mqtt.handle(intake, "hotspots/dev/T-9/loc", junk(i), NOW)
            mqtt.handle(intake, "nowhere/at/all", junk(i), NOW)
        intake.commit()
    assert usage(db, "T-9")[0] <= SMALL.max_rows
    assert db.execute("SELECT count(*) FROM quarantine WHERE device_id IS NULL"
                      ).fetchone()[0] <= SMALL.max_rows
    assert db.execute("SELECT sum(n) FROM intake_counters WHERE counter = 'quarantine_evicted'"
                      ).fetchone()[0] == 2 * 240 - usage(db, "T-9")[0] - db.execute(
        "SELECT count(*) FROM quarantine WHERE device_id IS NULL").fetchone()[0]


def test_the_byte_budget_binds_before_the_row_budget_for_big_payloads(db):
    register_device(db, "T-9")
    intake = Intake(db, budget=QuarantineBudget(max_rows=1000, max_bytes=20_000, raw_keep=4096))
    for i in range(100):
        mqtt.handle(intake, "hotspots/dev/T-9/loc", junk(i, 50_000), NOW)
    intake.commit()
    rows, size = usage(db, "T-9")
    assert size <= 20_000 and rows < 10


def test_another_devices_fixes_are_all_stored_while_one_device_floods(mosquitto, tmp_path):
    """Through a real Mosquitto into the gateway: 3,000 junk messages from one device and 100
    fixes from another, published at the same time. Every fix is stored, every junk message is
    quarantined and counted, and the flooder's quarantine stays within its budget."""
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    for device in ("T-1", "F-1"):
        register_device(db, device)
    db.close()
    gateway = Gateway(mosquitto.address, str(db_path), batch_size=500, budget=SMALL,
                      **mosquitto.gateway.auth())
    stop = threading.Event()
    runner = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    runner.start()
    assert gateway.connected.wait(10)

    # Accounts first, from this thread: the broker fixture writes its accounts file unlocked.
    auth = {device_id: mosquitto.device(device_id).auth() for device_id in ("F-1", "T-1")}

    def client(device_id: str) -> paho.Client:
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=device_id)
        c.username_pw_set(**auth[device_id])
        c.max_inflight_messages_set(1000)
        c.connect(mosquitto.host, mosquitto.port)
        c.loop_start()
        return c

    def flood() -> None:
        c = client("F-1")
        infos = [c.publish("hotspots/dev/F-1/loc", junk(i), qos=1) for i in range(3000)]
        for info in infos:
            info.wait_for_publish(30)
        c.disconnect()
        c.loop_stop()

    flooder = threading.Thread(target=flood)
    flooder.start()
    normal = client("T-1")
    now = int(time.time())
    for seq in range(1, 101):
        payload = json.dumps({"_type": "location", "dev": "T-1", "seq": seq,
                              "tst": now - 200 + seq, "lat": 51.5, "lon": -0.001 * seq,
                              "acc": 5}).encode()
        normal.publish("hotspots/dev/T-1/loc", payload, qos=1).wait_for_publish(30)
    normal.disconnect()
    normal.loop_stop()
    flooder.join(60)
    deadline = time.monotonic() + 30
    while gateway.intake is None or gateway.intake.counts.handled < 3100:
        assert time.monotonic() < deadline, gateway.intake.counts if gateway.intake else None
        time.sleep(0.05)
    stop.set()
    runner.join(20)
    counts = gateway.intake.counts
    assert (sum(counts.stored.values()), sum(counts.quarantined.values())) == (100, 3000)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM positions WHERE device_id = 'T-1'"
                            ).fetchone() == (100,)
        rows = conn.execute("SELECT count(*) FROM quarantine WHERE device_id = 'F-1'"
                            ).fetchone()[0]
        evicted = conn.execute("SELECT n FROM intake_counters WHERE device_id = 'F-1'"
                               " AND counter = 'quarantine_evicted'").fetchone()[0]
    assert rows <= SMALL.max_rows and rows + evicted == 3000


def test_the_budget_counts_rows_another_writer_quarantined_between_batches(tmp_path):
    """The usage an intake keeps between batches is dropped as soon as another connection (the
    dock, the radio) has committed: the bound holds for both writers together."""
    path = str(tmp_path / "two.db")
    gateway_db, dock_db = open_db(path), open_db(path)
    register_device(gateway_db, "T-9")
    gateway, dock = Intake(gateway_db, budget=SMALL), Intake(dock_db, budget=SMALL)
    for turn in range(30):
        writer = gateway if turn % 2 == 0 else dock
        for i in range(30):
            writer.reject("dock:1" if writer is dock else "hotspots/dev/T-9/loc", "malformed",
                          "x", junk(turn * 100 + i, 500), NOW, "T-9")
        writer.commit()
        rows, size = usage(gateway_db, "T-9")
        assert rows <= SMALL.max_rows and size <= SMALL.max_bytes
    assert gateway.counts.evicted + dock.counts.evicted + usage(gateway_db, "T-9")[0] == 900
    gateway_db.close()
    dock_db.close()
