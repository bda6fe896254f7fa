"""Lifecycle alerts, the battery model and the hand-out rules, on a real SQLite file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gateway.fleet.dock import BatteryModel, PickError, dock_status, pick
from gateway.fleet.identity import assign, register_device
from gateway.fleet.status import AlertRules, fleet_status
from gateway.intake import mqtt
from gateway.intake.intake import Intake
from gateway.schema import open_db
from hotspots.cli import cli

T0 = 1_795_000_000


def location(device: str, seq: int, tst: int, lat: float, lon: float) -> bytes:
    return json.dumps({"_type": "location", "dev": device, "seq": seq, "tst": tst, "lat": lat,
                       "lon": lon, "acc": 5}).encode()


def track(db, device: str, points: list[tuple[int, float, float]]) -> None:
    intake = Intake(db)
    for seq, (tst, lat, lon) in enumerate(points, start=1):
        mqtt.handle(intake, f"hotspots/dev/{device}/loc", location(device, seq, tst, lat, lon), tst)
    intake.commit()


def docked(db, slot: str, device: str, batt: int) -> None:
    with db.conn:
        db.execute("INSERT INTO dock_slots (slot, port, device_id, state, batt, charging,"
                   " updated_at) VALUES (?, '/dev/null', ?, 'docked', ?, 1, ?)",
                   (slot, device, batt, T0))
    register_device(db, device, at=T0 - 10)


@pytest.fixture
def station(tmp_path):
    db = open_db(str(tmp_path / "station.db"))
    yield db
    db.close()


def test_left_on_and_still_while_assigned_is_an_alert(station):
    register_device(station, "T-1", at=T0 - 100)
    assign(station, "T-1", "C1", at=T0)
    walking = [(T0 + 10 * i, 51.48, -0.001 + 0.0002 * i) for i in range(30)]  # ~14 m a fix
    parked = [(T0 + 300 + 60 * i, 51.48 + 0.00001 * (i % 2), 0.0048) for i in range(1, 41)]
    track(station, "T-1", walking + parked)
    last = parked[-1][0]
    rules = AlertRules(still_min=30, silent_min=10)
    alerts = fleet_status(station, now=last + 30, rules=rules).alerts
    # Parked where the walk ended: the still run starts with the last few walking fixes.
    assert "STILL T-1 (officer C1): not moved for 40 min at 51.48000,0.00480 while on;" \
        " left in a locker or vehicle?" in alerts
    # Still only 20 minutes: not yet; walking: never.
    assert not any(a.startswith("STILL") for a in fleet_status(
        station, now=parked[19][0] + 30, rules=rules).alerts)
    # Switched off (nothing reported for the whole window): that is SILENT, not STILL.
    later = fleet_status(station, now=last + 40 * 60, rules=rules).alerts
    assert not any(a.startswith("STILL") for a in later)
    assert any(a.startswith("SILENT T-1") for a in later)


def test_not_returned_says_where_it_was_last(station):
    register_device(station, "T-2", at=T0 - 100)
    assign(station, "T-2", "C2", at=T0, due=T0 + 3600)
    track(station, "T-2", [(T0 + 600, 51.47712, -0.00154), (T0 + 700, 51.47701, -0.00102)])
    alerts = fleet_status(station, now=T0 + 2 * 3600).alerts
    line = next(a for a in alerts if a.startswith("NOT RETURNED T-2"))
    assert line.endswith("last known at 51.47701,-0.00102 1h48m ago")


def test_battery_health_trend_from_shifts_off_the_dock(station):
    register_device(station, "T-3", at=T0 - 100)
    drains = [5.0, 5.2, 4.9, 5.5, 6.8, 7.1, 7.4]  # % per hour, shift after shift
    events = []
    for day, rate in enumerate(drains):
        out = T0 + day * 86400
        events += [(out, "undocked", 100), (out + 8 * 3600, "docked", int(100 - 8 * rate))]
    events.append((T0 + 9 * 86400, "undocked", 100))
    events.append((T0 + 9 * 86400 + 600, "docked", 99))  # a quick re-seat is not a shift
    with station.conn:
        for ts, event, batt in events:
            station.execute("INSERT INTO dock_events (ts, slot, device_id, event, batt)"
                            " VALUES (?, 'S1', 'T-3', ?, ?)", (ts, event, batt))
    alerts = fleet_status(station, now=T0 + 10 * 86400).alerts
    line = next(a for a in alerts if a.startswith("BATTERY HEALTH T-3"))
    assert "drains 7.1%/h over the last 3 shifts, 5.0%/h at first (+4" in line
    # Before the wear showed, no alert.
    assert not any(a.startswith("BATTERY HEALTH") for a in fleet_status(
        station, now=T0 + 5 * 86400).alerts)


@pytest.mark.parametrize(("pct", "minutes"), [(100, 0), (95, 31), (80, 61), (20, 133)])
def test_time_to_full_from_the_cc_cv_model(pct, minutes):
    model = BatteryModel(capacity_mah=2600, charge_ma=1300, cv_from_pct=80, taper_end=0.1)
    assert abs(model.time_to_full_s(pct) / 60 - minutes) <= 2
    # Charging for the time to full gets there; the taper makes the last 20 % the slowest.
    assert model.charge(pct, model.time_to_full_s(pct) + 20) == pytest.approx(100, abs=0.1)
    assert model.time_to_full_s(80) > 0.8 * (model.time_to_full_s(20) - model.time_to_full_s(80))


def test_pick_refuses_a_flat_tracker_and_suggests_the_fullest(station):
    docked(station, "S1", "T-10", 35)
    docked(station, "S2", "T-11", 92)
    docked(station, "S3", "T-12", 71)
    with pytest.raises(PickError, match=r"T-10 is at 35% \(below 50%\).*take T-11 \(92%, slot S2"):
        pick(station, "C9", device="T-10", now=T0)
    a, slot, batt = pick(station, "C9", now=T0)
    assert (a.device_id, slot, batt, a.collar) == ("T-11", "S2", 92, "C9")
    a, slot, _ = pick(station, "C8", now=T0 + 1)  # T-11 is taken now
    assert (a.device_id, slot) == ("T-12", "S3")
    with pytest.raises(PickError, match="no tracker is charged to 50%: the fullest, T-10"):
        pick(station, "C7", now=T0 + 2)
    status = dock_status(station, now=T0 + 3)
    assert [(s.slot, s.officer) for s in status.slots] == [
        ("S1", None), ("S2", "C9"), ("S3", "C8")]


def test_dock_commands_pick_and_status(tmp_path):
    db_path = tmp_path / "station.db"
    db = open_db(str(db_path))
    docked(db, "S1", "T-20", 64)
    docked(db, "S2", "T-21", 100)
    register_device(db, "T-22", at=T0)
    assign(db, "T-22", "C5", at=T0)
    db.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["dock", "pick", "C6", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "take T-21 from slot S2 (100%): signed out to C6" in result.output
    result = runner.invoke(cli, ["dock", "pick", "C6", "--db", str(db_path), "--min-charge",
                                 "80"])
    assert result.exit_code != 0 and "no tracker is charged to 80%" in result.output
    result = runner.invoke(cli, ["dock", "status", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split()[:4] == ["S1", "T-20", "docked", "64%"]
    assert "C6" in lines[2]
    assert any(line.strip().startswith("T-22") and "with C5" in line for line in lines)
    doc = json.loads(runner.invoke(cli, ["dock", "status", "--db", str(db_path),
                                         "--json"]).output)
    assert doc["slots"][0]["time_to_full_s"] > 0 and doc["out"][0]["device_id"] == "T-22"
