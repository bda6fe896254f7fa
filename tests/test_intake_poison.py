"""Nothing a device sends can stop the intake: every shape of issue 16 is stored with the bad
field dropped, or quarantined, and the next good message of every device is stored.

These run at the intake level (the MQTT adapter and :class:`Intake`, real SQLite); the same
shapes through a real Mosquitto into a gateway process are the hostile-input suite's.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
import sys

import pytest

from gateway.fleet.identity import register_device
from gateway.intake import mqtt
from gateway.intake.intake import Intake
from gateway.intake.observation import Observation

NOW = 1_795_000_000
DEEP = "[" * 2000 + "]" * 2000


def location(dev: str = "T-1", seq: int = 1, **fields) -> dict:
    return {"_type": "location", "dev": dev, "seq": seq, "tst": NOW + seq, "lat": 51.5,
            "lon": -0.1, "acc": 5, **fields}


def raw(msg: dict | str) -> bytes:
    # json.dumps writes NaN/Infinity and "\ud800" escapes exactly as an attacker would send them.
    return (msg if isinstance(msg, str) else json.dumps(msg)).encode()


@pytest.fixture
def intake(db):
    register_device(db, "T-1")
    register_device(db, "T-2")
    register_device(db, "P", source="owntracks")
    return Intake(db)


def good_messages_still_stored(intake: Intake, db, seq: int = 50) -> None:
    """After the poison: both trackers' next fix is stored, in the same batch."""
    for dev in ("T-1", "T-2"):
        assert mqtt.handle(intake, f"hotspots/dev/{dev}/loc", raw(location(dev, seq)),
                           NOW + 60) == "stored"
    intake.commit()
    assert db.execute("SELECT count(*) FROM positions WHERE seq = ?", (seq,)).fetchone() == (2,)


# -- the shapes that stopped the gateway -----------------------------------------------------------
@pytest.mark.parametrize("topic, payload", [
    ("hotspots/dev/T-1/loc", raw('{"_type":"location","dev":"T-1","seq":1,"tst":1795000001,'
                                 '"lat":51.5,"lon":0,"inregions":' + DEEP + "}")),
    ("hotspots/dev/T-1/status", raw('{"_type":"status","online":true,"fences":' + DEEP + "}")),
    ("owntracks/P/phone", raw('{"_type":"location","tst":1795000001,"lat":51.5,"lon":0,'
                              '"x":' + DEEP + "}")),
    ("hotspots/dev/T-1/loc", raw(DEEP)),
])
def test_arrays_nested_2000_deep_are_quarantined(intake, db, topic, payload):
    assert mqtt.handle(intake, topic, payload, NOW) == "quarantined"
    good_messages_still_stored(intake, db)
    assert db.execute("SELECT raw_len FROM quarantine").fetchall() == [(len(payload),)]


def _tracker_status(intake: Intake, payload: bytes) -> str:
    return mqtt.handle(intake, "hotspots/dev/T-1/status", payload, NOW)


def _dock_record(intake: Intake, payload: bytes) -> str:
    return mqtt.handle_record(intake, "T-1", "status", payload, "dock:slot-1", NOW)


@pytest.mark.parametrize("deliver", [_tracker_status, _dock_record])
@pytest.mark.parametrize("depth", [5, 50, 990, 2000])
def test_a_tracker_message_nested_deep_is_refused_on_its_text_before_any_parser_runs(
        intake, db, deliver, depth):
    """The wire format counts brackets before it parses, so a tracker's message (over MQTT or
    from the dock) never makes a parser recurse: with stack left for 40 more calls only,
    nesting 50 to 2,000 deep is ``too_deep``, never a RecursionError."""
    payload = raw('{"_type":"status","online":true,"fw":' + "[" * depth + "]" * depth + "}")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 40)
    try:
        result = deliver(intake, payload)
    finally:
        sys.setrecursionlimit(limit)
    assert result == "quarantined"
    assert (intake.last_reason, intake.last_detail) == ("too_deep", "nested deeper than 4")
    good_messages_still_stored(intake, db)


def test_a_phone_configuration_nested_600_deep_is_quarantined_as_nested_too_deep(intake, db):
    """Regression for the adapter's RecursionError rejection: JSON parses a phone's app message
    600 deep, and redacting its secrets at any depth then recurses beyond Python's limit."""
    nested = "[" * 600 + '{"password":"s3cret"}' + "]" * 600
    payload = raw('{"_type":"configuration","waypoints":' + nested + "}")
    assert mqtt.handle(intake, "owntracks/P/phone", payload, NOW) == "quarantined"
    assert (intake.last_reason, intake.last_detail) == ("malformed", "nested too deep")
    good_messages_still_stored(intake, db)
    assert db.execute("SELECT count(*) FROM app_messages").fetchone() == (0,)
    assert db.execute("SELECT reason, device_id, raw_len FROM quarantine").fetchall() == [
        ("malformed", "P", len(payload))]


@pytest.mark.parametrize("field", ["dev", "fences", "fw"])
def test_a_lone_surrogate_is_quarantined_or_dropped_never_a_failed_insert(intake, db, field):
    msg = {"_type": "status", "dev": "T-1", "online": True, "fences": "abc", "fw": "1.0",
           field: "x\ud800y"}
    result = mqtt.handle(intake, "hotspots/dev/T-1/status", raw(msg), NOW)
    good_messages_still_stored(intake, db)
    # The wire decoder refuses text that is not text (a lone surrogate) outright: quarantined
    # as bad_text, the detail naming the field. Were it to let it through, the intake would
    # quarantine the mismatching dev and drop the other fields.
    reasons = db.execute("SELECT reason, detail FROM quarantine").fetchall()
    if reasons and reasons[0][0] == "bad_text":
        assert result == "quarantined" and reasons[0][1].startswith(field + ":")
    elif field == "dev":
        assert result == "quarantined"
        assert reasons == [("device_mismatch", "x\\ud800y")]
    else:
        assert result == "status"  # the status is kept, the unencodable field dropped
        device = db["devices"].get("T-1")
        assert (device["fence_version"], device["firmware"]) == (
            {"fences": (None, "1.0"), "fw": ("abc", None)}[field])
        assert intake.counts.dropped == {"fences" if field == "fences" else "firmware": 1}


@pytest.mark.parametrize("fields, dropped", [
    ('"batt": NaN', "batt"),
    ('"outbox": Infinity', "outbox"),
    ('"batt": 18446744073709551616', "batt"),
    ('"outbox": -1', "outbox"),
    ('"batt": 101', "batt"),
    ('"batt": true', "batt"),
])
def test_bad_numbers_in_a_status_are_dropped_and_counted(intake, db, fields, dropped):
    payload = raw('{"_type":"status","dev":"T-1","online":true,"batt":80,"outbox":3,'
                  + fields + "}")
    # The wire decoder may refuse NaN and huge numbers outright (quarantined); if it lets them
    # through, the intake drops the field and counts it. Never stored, never raised.
    result = mqtt.handle(intake, "hotspots/dev/T-1/status", payload, NOW)
    good_messages_still_stored(intake, db)
    device = db["devices"].get("T-1")
    assert device[dropped] is None  # never stored: the first status of this device
    if result == "status":
        assert device["online"] == 1
        assert db.execute("SELECT device_id, counter, n FROM intake_counters").fetchall() == [
            ("T-1", f"dropped:{dropped}", 1)]
    else:
        assert result == "quarantined" and db["quarantine"].count == 1


@pytest.mark.parametrize("field, value", [
    ("batt", float("nan")), ("batt", 2**64), ("batt", -1), ("batt", True), ("batt", 55.5),
    ("outbox", float("inf")), ("outbox", 2**64), ("fences", "a\ud800"), ("firmware", "\x1b[2J"),
    ("fences", "v" * 65),
])
def test_bad_status_fields_handed_to_the_intake_are_dropped_and_counted(intake, db, field,
                                                                        value):
    fields = {"batt": 80, "outbox": 3, "fences": "abc", "firmware": "1.0", field: value}
    obs = Observation("status", "tracker", "T-1", "test", online=True, **fields)
    assert intake.submit(obs, NOW) == "status"
    intake.commit()
    column = {"fences": "fence_version"}.get(field, field)
    assert db["devices"].get("T-1")[column] is None
    assert intake.counts.dropped == {field: 1}


def test_owntracks_battery_of_2_to_the_64_is_dropped(intake, db):
    payload = raw('{"_type":"location","tst":1795000001,"lat":51.5,"lon":-0.1,"acc":9,'
                  '"batt":18446744073709551616}')
    result = mqtt.handle(intake, "owntracks/P/phone", payload, NOW + 5)
    good_messages_still_stored(intake, db)
    assert db["devices"].get("P")["batt"] is None
    if result == "stored":
        assert intake.counts.dropped == {"batt": 1}
    else:  # refused by the wire decoder as a number beyond its contract
        assert result == "quarantined"


# -- stored when they should not have been ---------------------------------------------------------
@pytest.mark.parametrize("fields, detail", [
    ('"acc": NaN', "acc_m"),  # used to become NULL and escape the accuracy filter
    ('"acc": -Infinity', "acc_m"),
    ('"seq": 9223372036854775807', "seq"),  # used to make status report 9e18 missing
    ('"seq": 4294967296', "seq"),
    ('"tst": 99999999999999999999', "tst"),
    ('"tst": 1', "tst"),
])
def test_values_out_of_their_range_quarantine_the_message(intake, db, fields, detail):
    payload = raw('{"_type":"location","dev":"T-1","seq":7,"tst":1795000001,"lat":51.5,'
                  '"lon":-0.1,"acc":5,' + fields + "}")
    assert mqtt.handle(intake, "hotspots/dev/T-1/loc", payload, NOW) == "quarantined"
    good_messages_still_stored(intake, db)
    reason, text = db.execute("SELECT reason, detail FROM quarantine").fetchone()
    # bad_field from the intake's ranges (or the wire decoder's, which may refuse it first)
    assert reason == "bad_field" and (text.startswith(detail) or detail[:3] in text)
    assert db["devices"].get("T-1")["max_seq"] == 50


@pytest.mark.parametrize("fields, dropped", [
    ('"vel": Infinity', "speed_mps"),  # used to be exported as inf
    ('"vel": 1000', "speed_mps"),  # 1000 km/h: no patrol goes that fast
    ('"cog": 361', "course_deg"),
    ('"alt": NaN', "alt_m"),
    ('"inregions": "HS1"', "inregions"),
    ('"inregions": {"a": 1}', "inregions"),
    ('"inregions": ["HS1", 7]', "inregions"),
    ('"inregions": ["' + "x" * 33 + '"]', "inregions"),
    ('"t": "\\u0000"', "trigger"),
    ('"fix": 9', "fix_quality"),
])
def test_bad_optional_fields_are_dropped_and_the_fix_is_stored(intake, db, fields, dropped):
    payload = raw('{"_type":"location","dev":"T-1","seq":7,"tst":1795000001,"lat":51.5,'
                  '"lon":-0.1,"acc":5,' + fields + "}")
    result = mqtt.handle(intake, "hotspots/dev/T-1/loc", payload, NOW)
    if "NaN" in fields or "Infinity" in fields:
        # Not JSON (RFC 8259): the wire decoder may refuse the whole message instead.
        assert result in ("stored", "quarantined")
        if result == "quarantined":
            good_messages_still_stored(intake, db)
            return
    assert result == "stored"
    intake.commit()
    column = {"fix_quality": "filtered"}.get(dropped, dropped).replace("trigger", '"trigger"')
    assert db.execute(f"SELECT {column} FROM positions WHERE seq = 7").fetchone() == (None,)
    assert intake.counts.dropped == {dropped: 1}
    assert db.execute("SELECT counter, n FROM intake_counters WHERE device_id = 'T-1'"
                      ).fetchall() == [(f"dropped:{dropped}", 1)]


def test_a_transition_for_a_hot_spot_id_that_is_no_id_is_quarantined(intake, db):
    msg = {"_type": "transition", "dev": "T-1", "seq": 3, "tst": NOW, "event": "enter",
           "rid": "a\nb"}
    assert mqtt.handle(intake, "hotspots/dev/T-1/event", raw(msg), NOW) == "quarantined"
    good_messages_still_stored(intake, db)
    assert db["transitions"].count == 0


# -- whatever goes wrong while storing one message, the batch goes on ------------------------------
def test_an_exception_while_storing_quarantines_that_message_and_the_batch_goes_on(db):
    """A real SQLite failure inside the store path (a trigger refusing one row)."""
    register_device(db, "T-1")
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON positions WHEN NEW.lat = 12.5"
               " BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END")
    intake = Intake(db)
    results = [mqtt.handle(intake, "hotspots/dev/T-1/loc", raw(location(seq=seq, lat=lat)),
                           NOW) for seq, lat in [(1, 51.5), (2, 12.5), (3, 51.5001)]]
    intake.commit()
    assert results == ["stored", "quarantined", "stored"]
    assert db.execute("SELECT reason, detail FROM quarantine").fetchone() == (
        "internal_error", "IntegrityError: refused by test trigger")
    assert [r[0] for r in db.execute("SELECT seq FROM positions ORDER BY seq")] == [1, 3]


def test_a_failing_source_check_rolls_back_its_own_writes_only(db):
    register_device(db, "T-1")

    def check(obs: Observation):
        if obs.lat == 12.5:
            raise ZeroDivisionError("a bug in a source's rules")
        return [], []

    intake = Intake(db, source_checks={"tracker": check})
    results = [mqtt.handle(intake, "hotspots/dev/T-1/loc", raw(location(seq=seq, lat=lat)),
                           NOW) for seq, lat in [(1, 51.5), (2, 12.5), (3, 51.5001)]]
    intake.commit()
    assert results == ["stored", "quarantined", "stored"]
    assert db["positions"].count == 2
    assert intake.counts.quarantined == {"internal_error": 1}


def test_the_database_failing_as_a_whole_is_raised_not_quarantined(db):
    """Locked or full is not the message's fault: the caller keeps it unacknowledged."""
    register_device(db, "T-1")
    intake = Intake(db)
    mqtt.handle(intake, "hotspots/dev/T-1/loc", raw(location(seq=1)), NOW)
    intake.commit()
    db.execute("PRAGMA max_page_count = " + str(db.execute("PRAGMA page_count").fetchone()[0]))
    with pytest.raises(sqlite3.OperationalError, match="full"):
        for seq in range(2, 2000):
            mqtt.handle(intake, "hotspots/dev/T-1/loc", raw(location(seq=seq, extra="x" * 500)),
                        NOW)
    intake.rollback()
    assert db["quarantine"].count == 0


@pytest.mark.parametrize("origin, detail, device_id", [
    ("hotspots/dev/\ud800/loc", "detail \udfff", "T-\ud800"),
    ("x" * 100_000, "y" * 100_000, "z" * 5000),
    (None, None, None),
    (b"bytes", 12, 3.5),
])
def test_a_quarantine_insert_never_fails_for_its_content(intake, db, origin, detail, device_id):
    assert intake.reject(origin, "malformed", detail, "raw \ud800 text", NOW,
                         device_id) == "quarantined"
    intake.commit()
    row = db.execute("SELECT topic, detail, device_id, raw FROM quarantine").fetchone()
    assert len(row[0]) <= 500 and len(row[1]) <= 500
    assert row[2] is None  # not a device id: kept in the detail, not as one
    assert isinstance(row[3], bytes)


def test_an_observation_with_nonsense_types_is_quarantined(intake, db):
    """Adapters of later sources may hand over anything; the intake judges it all."""
    odd = Observation("location", "tracker", "T-1", "test", seq=True, tst=1.5e9,
                      lat=float("nan"), lon=[1], acc_m="5")
    assert intake.submit(odd, NOW) == "quarantined"
    unknown = Observation("location", "satellite", "T-1", "test", tst=NOW, lat=1, lon=1)
    assert intake.submit(unknown, NOW) == "quarantined"
    nobody = Observation("location", "tracker", "a/b", "test", seq=1, tst=NOW, lat=1, lon=1)
    assert intake.submit(nobody, NOW) == "quarantined"
    assert intake.submit({"kind": "location"}, NOW) == "quarantined"  # not even an observation
    good_messages_still_stored(intake, db)
    assert dict(db.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason")) == {
        "bad_field": 3, "bad_device_id": 1}
