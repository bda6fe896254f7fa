"""``hotspots status``: per device last seen, outbox, gaps, duplicates; alerts; counters."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gateway.fleet.identity import assign, register_device
from gateway.fleet.status import AlertRules, fleet_status, sequence_gaps
from gateway.intake import mqtt
from gateway.intake.intake import Intake
from gateway.schema import open_db
from hotspots.cli import cli
from tracker import wire

T0 = 1_795_000_000


def location(device_id: str, seq: int) -> bytes:
    return json.dumps({"_type": "location", "dev": device_id, "seq": seq, "tst": T0 + seq,
                       "lat": 51.5, "lon": -0.001, "acc": 5}).encode()


def fill(db) -> None:
    for device_id in ("T-1", "T-2"):
        register_device(db, device_id, at=T0 - 100)
    intake = Intake(db)
    for seq in [1, 2, 3, 6, 7, 10, 3, 3]:
        mqtt.handle(intake, "hotspots/dev/T-1/loc", location("T-1", seq), T0 + seq + 1)
    mqtt.handle(intake, "hotspots/dev/T-1/status",
                  wire.status("T-1", True, T0, fences="abc123", outbox=4, batt=15, fw="0.2"),
                  T0 + 12)
    mqtt.handle(intake, "hotspots/dev/T-2/status", wire.status("T-2", False, T0), T0 + 5)
    mqtt.handle(intake, "hotspots/dev/T-9/loc", location("T-9", 1), T0 + 5)
    mqtt.handle(intake, "hotspots/dev/T-1/loc", b"{oops", T0 + 6)
    intake.commit()


def test_sequence_gaps_are_ranges_of_missing_numbers(db):
    fill(db)
    assert sequence_gaps(db, "T-1") == (4, [(4, 5), (8, 9)])
    assert sequence_gaps(db, "T-2") == (0, [])


def test_fleet_status_per_device(db):
    fill(db)
    assign(db, "T-1", "C100", at=T0)
    status = fleet_status(db, now=T0 + 60)
    t1, t2, t9 = status.devices
    assert (t1.device_id, t1.online, t1.batt, t1.outbox, t1.fence_version, t1.officer) == (
        "T-1", True, 15, 4, "abc123", "C100")
    assert (t1.last_seen_age_s, t1.last_fix_age_s, t1.max_seq, t1.missing, t1.duplicates) == (
        48, 50, 10, 4, 2)
    assert t1.quarantined == 1
    assert (t2.online, t2.officer) == (False, None)
    assert not t9.registered and t9.quarantined == 1
    assert status.quarantine == {"malformed": 1, "unknown_device": 1}


def test_alerts_silent_low_battery_not_returned_unknown(db):
    fill(db)
    assign(db, "T-1", "C100", at=T0, due=T0 + 3600)
    rules = AlertRules(silent_min=10, low_batt_pct=20)
    assert [a.split()[0] for a in fleet_status(db, now=T0 + 60, rules=rules).alerts] == [
        "LOW", "UNKNOWN"]
    later = fleet_status(db, now=T0 + 2 * 3600, rules=rules).alerts
    assert any(a.startswith("SILENT T-1 (officer C100)") for a in later)
    assert any(a.startswith("NOT RETURNED T-1") for a in later)


def test_only_pooled_trackers_are_reported_not_returned(db):
    """A radio or a phone stays with its officer; only a tracker goes back to the dock."""
    for device_id, source in (("T-5", "tracker"), ("issi:2340001", "airwave"),
                              ("phone-1", "owntracks")):
        register_device(db, device_id, source, at=T0 - 100)
        assign(db, device_id, "C" + device_id[-1], at=T0, due=T0 + 3600)
    alerts = fleet_status(db, now=T0 + 2 * 3600).alerts
    assert [a.split()[2] for a in alerts if a.startswith("NOT RETURNED")] == ["T-5"]


def test_status_command_table_and_json(tmp_path):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    fill(db)
    db.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["status", "--db", str(db_path), "--now", str(T0 + 60)])
    assert result.exit_code == 0, result.output
    assert "sequence gaps: 4-5, 8-9" in result.output
    assert "LOW BATTERY T-1: 15%" in result.output
    assert "quarantined: malformed 1, unknown_device 1" in result.output
    result = runner.invoke(cli, ["status", "--db", str(db_path), "--json",
                                 "--now", str(T0 + 60)])
    doc = json.loads(result.output)
    assert [d["device_id"] for d in doc["devices"]] == ["T-1", "T-2", "T-9"]
    assert doc["devices"][0]["duplicates"] == 2


def test_status_of_a_missing_database_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["status", "--db", str(tmp_path / "none.db")])
    assert result.exit_code != 0 and "no database" in result.output
