"""Gateway intake: every good message stored once, every bad one quarantined with a reason."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from gateway.fleet.identity import register_device
from gateway.intake import mqtt
from gateway.intake.intake import Intake

GOLDEN = Path(__file__).parent / "data" / "wire"


def golden(name: str) -> bytes:
    return (GOLDEN / name).read_bytes().strip()


@pytest.fixture
def intake(db):
    for device_id in ("T-0001", "T-0002", "4711"):
        register_device(db, device_id)
    return Intake(db)


def test_golden_location_is_stored_with_fix_time_not_receive_time(intake, db):
    assert mqtt.handle(intake, "hotspots/dev/T-0001/loc", golden("location.json"),
                       1800000000.5) == "stored"
    intake.commit()
    row = db.execute("SELECT device_id, seq, tst, lat, lon, acc_m, speed_mps, course_deg,"
                     " inregions, received_at, source FROM positions").fetchone()
    assert row == ("T-0001", 17, 1795000000, 51.480123, -0.001234, 4, 1.39, 91,
                   '["HS-GRN-01"]', 1800000000.5, "tracker")


def test_the_same_message_twice_is_stored_once_and_counted(intake, db):
    for _ in range(3):
        mqtt.handle(intake, "hotspots/dev/T-0001/loc", golden("location.json"))
    mqtt.handle(intake, "hotspots/dev/T-0001/event", golden("transition_enter.json"))
    mqtt.handle(intake, "hotspots/dev/T-0001/event", golden("transition_enter.json"))
    intake.commit()
    assert db["positions"].count == 1
    assert db["transitions"].count == 1
    assert intake.counts.duplicates == 3
    assert db["devices"].get("T-0001")["duplicates"] == 3
    assert db["devices"].get("T-0001")["max_seq"] == 19


def test_status_updates_the_device_row(intake, db):
    assert mqtt.handle(intake, "hotspots/dev/T-0001/status", golden("status.json")) == "status"
    intake.commit()
    device = db["devices"].get("T-0001")
    assert (device["online"], device["batt"], device["outbox"], device["fence_version"],
            device["firmware"]) == (1, 87, 3, "f3a9c2d1", "0.1.0")


def test_a_refused_fence_set_is_kept_until_the_next_status_and_bad_values_are_dropped(
        intake, db):
    from tracker import wire

    def status(at: float, **fields: object) -> tuple:
        payload = wire.status("T-0001", True, 1800000000, "f3a9c2d1", **fields)
        assert mqtt.handle(intake, "hotspots/dev/T-0001/status", payload.encode(), at) == "status"
        intake.commit()
        device = db["devices"].get("T-0001")
        return device["fence_error"], device["fence_rejects"]

    assert status(1, fence_err="structure: grid cell 3: fence index out of range",
                  fence_rej=2) == ("structure: grid cell 3: fence index out of range", 2)
    # A last will says nothing about fence sets: the alert stays as it was.
    mqtt.handle(intake, "hotspots/dev/T-0001/status", wire.status("T-0001", False, 0).encode(), 2)
    intake.commit()
    assert db["devices"].get("T-0001")["fence_error"] is not None
    # Applied since: a status without ``fence_err`` clears it.
    assert status(3) == (None, None)
    # Out of range: dropped (stored as NULL) and counted, the status itself still stored.
    assert status(4, fence_err="bad\u202etext", fence_rej=-1) == (None, None)
    payload = (b'{"_type":"status","dev":"T-0001","online":true,"created_at":1800000000,'
               b'"fence_err":"a\\u0007b","fence_rej":4294967296}')
    assert mqtt.handle(intake, "hotspots/dev/T-0001/status", payload, 5) == "status"
    intake.commit()
    device = db["devices"].get("T-0001")
    assert (device["fence_error"], device["fence_rejects"], device["online"]) == (None, None, 1)
    counters = dict(db.execute("SELECT counter, n FROM intake_counters"
                               " WHERE device_id = 'T-0001'").fetchall())
    assert counters["dropped:fence_error"] >= 1
    assert counters["dropped:fence_rejects"] >= 1


def test_each_fence_set_a_device_reports_is_kept_with_when_it_was_first_reported(intake, db):
    def status(version: str, at: float) -> None:
        msg = json.dumps({"_type": "status", "dev": "T-0001", "online": True, "fences": version})
        mqtt.handle(intake, "hotspots/dev/T-0001/status", msg.encode(), at)
        intake.commit()

    status("aaaa", 1000)
    status("aaaa", 1060)  # still the same set: nothing new
    status("bbbb", 2000)
    status("aaaa", 3000)  # back to the first set: a change too
    rows = db.execute("SELECT version, reported_at FROM fence_history WHERE device_id = 'T-0001'"
                      " ORDER BY id").fetchall()
    assert rows == [("aaaa", 1000), ("bbbb", 2000), ("aaaa", 3000)]
    assert db["devices"].get("T-0001")["fence_version"] == "aaaa"


@pytest.mark.parametrize(
    "topic, payload, reason",
    [
        ("hotspots/dev/T-0001/loc", b"{broken", "malformed"),
        ("hotspots/dev/T-0001/loc", b'{"_type":"location","tst":1,"lat":1,"lon":1}',
         "missing_field"),
        ("hotspots/dev/T-0002/loc", golden("location.json"), "device_mismatch"),
        ("somewhere/else", golden("location.json"), "unknown_topic"),
        ("hotspots/dev/T-0001/loc", b"{" + b" " * 10000 + b"}", "oversize"),
    ],
)
def test_bad_messages_go_to_quarantine_with_reason_and_raw_bytes(intake, db, topic, payload,
                                                                 reason):
    assert mqtt.handle(intake, topic, payload) == "quarantined"
    intake.commit()
    row = db.execute("SELECT topic, reason, raw, raw_len, raw_sha256 FROM quarantine").fetchone()
    # Raw bytes beyond 4 KB are kept truncated, with their full length and hash.
    assert row == (topic, reason, payload[:4096], len(payload),
                   hashlib.sha256(payload).hexdigest())
    assert intake.counts.quarantined[reason] == 1
    assert db["positions"].count == 0


def test_a_bad_message_does_not_lose_the_good_ones_in_its_batch(intake, db):
    mqtt.handle(intake, "hotspots/dev/T-0001/loc", golden("location.json"))
    mqtt.handle(intake, "hotspots/dev/T-0001/loc", b"\x00\x01")
    mqtt.handle(intake, "hotspots/dev/T-0001/event", golden("transition_enter.json"))
    intake.commit()
    assert (db["positions"].count, db["transitions"].count, db["quarantine"].count) == (1, 1, 1)


def test_owntracks_phone_messages_land_in_the_same_table(intake, db):
    payload = json.dumps({"_type": "location", "tid": "ph", "tst": 1795000000, "lat": 51.5,
                          "lon": -0.1, "acc": 12, "vel": 4}).encode()
    assert mqtt.handle(intake, "owntracks/4711/phone", payload) == "stored"
    intake.commit()
    row = db.execute("SELECT device_id, source, seq, lat, speed_mps FROM positions").fetchone()
    assert row == ("4711", "owntracks", None, 51.5, 1.11)


def test_an_unknown_device_is_quarantined_and_listed_but_not_stored(intake, db):
    payload = golden("location.json").replace(b"T-0001", b"T-0099")
    assert mqtt.handle(intake, "hotspots/dev/T-0099/loc", payload) == "quarantined"
    intake.commit()
    assert db.execute("SELECT reason, device_id, raw FROM quarantine").fetchone() == (
        "unknown_device", "T-0099", payload)
    assert db["devices"].get("T-0099")["registered_at"] is None
    assert db["positions"].count == 0


def test_a_device_registered_later_is_stored_from_then_on(intake, db):
    payload = golden("location.json").replace(b"T-0001", b"T-0099")
    mqtt.handle(intake, "hotspots/dev/T-0099/loc", payload)
    intake.commit()
    register_device(db, "T-0099")
    assert mqtt.handle(intake, "hotspots/dev/T-0099/loc", payload) == "stored"


def test_counters_and_last_seen_are_written_once_per_batch(intake, db):
    for _ in range(2):
        mqtt.handle(intake, "hotspots/dev/T-0001/loc", golden("location.json"), 1795000100.0)
    intake.commit()
    device = db["devices"].get("T-0001")
    assert (device["last_seen"], device["max_seq"], device["duplicates"],
            device["last_fix_tst"]) == (1795000100, 17, 1, 1795000000)


def test_owntracks_last_will_marks_the_phone_offline(intake, db):
    mqtt.handle(intake, "owntracks/4711/phone", b'{"_type":"lwt","tst":1795000000}')
    intake.commit()
    assert db["devices"].get("4711")["online"] == 0


def test_owntracks_redelivery_without_seq_is_stored_once(intake, db):
    payload = json.dumps({"_type": "location", "tid": "ph", "tst": 1795000000, "lat": 51.5,
                          "lon": -0.1, "acc": 12, "batt": 55}).encode()
    assert [mqtt.handle(intake, "owntracks/4711/phone", payload, 1795000001.0)
            for _ in range(2)] == ["stored", "duplicate"]
    intake.commit()
    assert db["positions"].count == 1
    assert db["devices"].get("4711")["batt"] == 55


@pytest.mark.parametrize("payload", [
    b'{"_type":"location","dev":"T-0001","seq":5,"tst":99999999999999999999999,"lat":1,"lon":1}',
    b'{"_type":"location","dev":"T-0001","seq":5,"tst":1795000000,"lat":1,"lon":1,"acc":"x",'
    b'"vel":true,"inregions":[{"a":1}]}',
    b'{"_type":"transition","dev":"T-0001","seq":6,"tst":1795000000,"event":"enter","rid":"x",'
    b'"desc":7}',
    b"\xff\xfe", b"[]", b"null", b'{"_type":"location","tst":1,"lat":91,"lon":0}',
])
def test_odd_payloads_never_raise(intake, db, payload):
    assert mqtt.handle(intake, "hotspots/dev/T-0001/loc", payload) in ("stored", "quarantined")
    intake.commit()


def test_upgrading_keeps_the_fence_set_devices_already_reported(database_before):
    """A database from before fence_history starts it with each device's current version."""
    from gateway import schema

    db = database_before(schema._v_fence_history)
    register_device(db, "T-0001")
    db.execute("UPDATE devices SET fence_version = 'cccc', status_at = 1234"
               " WHERE device_id = 'T-0001'")
    db.conn.commit()
    schema.migrate(db)
    assert db.execute("SELECT device_id, version, reported_at FROM fence_history").fetchall() \
        == [("T-0001", "cccc", 1234)]


# -- topic to device: exact, the account is the device ------------------------------------------
def test_account_t_publishing_owntracks_t_0001_is_phone_t_not_tracker_t_0001(db):
    """Regression (issue 16): ``owntracks/T/0001`` was stored as a position of ``T-0001``."""
    register_device(db, "T-0001")
    register_device(db, "T", source="owntracks")
    intake = Intake(db)
    payload = json.dumps({"_type": "location", "tid": "01", "tst": 1795000000, "lat": 51.5,
                          "lon": -0.1, "acc": 12}).encode()
    assert mqtt.handle(intake, "owntracks/T/0001", payload, 1795000001.0) == "stored"
    intake.commit()
    assert db.execute("SELECT device_id, source, extra FROM positions").fetchall() == [
        ("T", "owntracks", '{"tid":"01","topic_device":"0001"}')]
    assert db.execute("SELECT count(*) FROM positions WHERE device_id = 'T-0001'"
                      ).fetchone() == (0,)


@pytest.mark.parametrize("topic, reason", [
    ("owntracks/T", "unknown_topic"),
    ("owntracks/T/0001/nonsense", "unknown_topic"),
    ("owntracks//0001", "unknown_topic"),
    ("owntracks/a b/0001", "bad_device_id"),
    ("hotspots/dev/T-0001/other", "unknown_topic"),
    ("hotspots/dev/T-0001/loc/extra", "unknown_topic"),
    ("hotspots/dev/../loc", "bad_device_id"),
    ("hotspots/dev/issi:12/loc", "bad_device_id"),
])
def test_topics_that_name_no_device_are_quarantined(intake, db, topic, reason):
    assert mqtt.handle(intake, topic, golden("location.json")) == "quarantined"
    intake.commit()
    assert db.execute("SELECT reason, device_id FROM quarantine").fetchall() == [(reason, None)]


# -- one door ----------------------------------------------------------------------------------
WRITES = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+"
                    r"[\"'`\[]?(positions|transitions)\b", re.IGNORECASE)


def test_nothing_but_the_intake_writes_positions_or_transitions():
    """A new source is a new adapter, never a new writer of ``positions`` (issue 16)."""
    root = Path(__file__).parent.parent
    writers = set()
    for folder in ("gateway", "hotspots", "simulators", "fences", "firmware"):
        for path in (root / folder).rglob("*.py"):
            if WRITES.search(path.read_text(encoding="utf-8")):
                writers.add(path.relative_to(root).as_posix())
    assert writers == {"gateway/intake/intake.py"}
    # The pattern itself finds what it is meant to find.
    assert WRITES.search('"INSERT OR IGNORE INTO positions (device_id) VALUES (?)"')
    assert WRITES.search("update transitions set rid = 1")
    assert not WRITES.search("SELECT * FROM positions")
