"""Gateway ingest: every good message stored once, every bad one quarantined with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.ingest import Ingest

GOLDEN = Path(__file__).parent / "data" / "wire"


def golden(name: str) -> bytes:
    return (GOLDEN / name).read_bytes().strip()


@pytest.fixture
def ingest(db):
    return Ingest(db)


def test_golden_location_is_stored_with_fix_time_not_receive_time(ingest, db):
    assert ingest.handle("hotspots/dev/T-0001/loc", golden("location.json"), 1800000000.5) == \
        "stored"
    ingest.commit()
    row = db.execute("SELECT device_id, seq, tst, lat, lon, acc_m, speed_mps, course_deg,"
                     " inregions, received_at, source FROM positions").fetchone()
    assert row == ("T-0001", 17, 1795000000, 51.480123, -0.001234, 4, 1.39, 91,
                   '["HS-GRN-01"]', 1800000000.5, "tracker")


def test_the_same_message_twice_is_stored_once_and_counted(ingest, db):
    for _ in range(3):
        ingest.handle("hotspots/dev/T-0001/loc", golden("location.json"))
    ingest.handle("hotspots/dev/T-0001/event", golden("transition_enter.json"))
    ingest.handle("hotspots/dev/T-0001/event", golden("transition_enter.json"))
    ingest.commit()
    assert db["positions"].count == 1
    assert db["transitions"].count == 1
    assert ingest.counts.duplicates == 3
    assert db["devices"].get("T-0001")["duplicates"] == 3
    assert db["devices"].get("T-0001")["max_seq"] == 19


def test_status_updates_the_device_row(ingest, db):
    assert ingest.handle("hotspots/dev/T-0001/status", golden("status.json")) == "status"
    ingest.commit()
    device = db["devices"].get("T-0001")
    assert (device["online"], device["batt"], device["outbox"], device["fence_version"],
            device["firmware"]) == (1, 87, 3, "f3a9c2d1", "0.1.0")


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
def test_bad_messages_go_to_quarantine_with_reason_and_raw_bytes(ingest, db, topic, payload,
                                                                 reason):
    assert ingest.handle(topic, payload) == "quarantined"
    ingest.commit()
    row = db.execute("SELECT topic, reason, raw FROM quarantine").fetchone()
    assert row == (topic, reason, payload)
    assert ingest.counts.quarantined[reason] == 1
    assert db["positions"].count == 0


def test_a_bad_message_does_not_lose_the_good_ones_in_its_batch(ingest, db):
    ingest.handle("hotspots/dev/T-0001/loc", golden("location.json"))
    ingest.handle("hotspots/dev/T-0001/loc", b"\x00\x01")
    ingest.handle("hotspots/dev/T-0001/event", golden("transition_enter.json"))
    ingest.commit()
    assert (db["positions"].count, db["transitions"].count, db["quarantine"].count) == (1, 1, 1)


def test_owntracks_phone_messages_land_in_the_same_table(ingest, db):
    payload = json.dumps({"_type": "location", "tid": "ph", "tst": 1795000000, "lat": 51.5,
                          "lon": -0.1, "acc": 12, "vel": 4}).encode()
    assert ingest.handle("owntracks/4711/phone", payload) == "stored"
    ingest.commit()
    row = db.execute("SELECT device_id, source, seq, lat, speed_mps FROM positions").fetchone()
    assert row == ("4711-phone", "owntracks", None, 51.5, 1.11)
