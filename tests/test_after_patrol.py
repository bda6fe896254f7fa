"""After the patrol (issue 19): phone and radio positions outside their officer's assignment
are set apart (not patrol data) and purged after a set time; ``hotspots status`` alerts when a
phone keeps reporting long after its patrol or tasking window ended."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner

from gateway.fleet.after_patrol import patrol_end, still_reporting
from gateway.fleet.identity import assign, register_device
from gateway.fleet.status import AlertRules, fleet_status
from gateway.intake import mqtt
from gateway.intake.intake import Intake
from gateway.reports.exports import positions as export_positions
from gateway.reports.taskings import import_taskings
from gateway.schema import open_db
from hotspots.cli import cli

DAY = 1_795_000_000 - 1_795_000_000 % 86400  # 00:00 UTC
H = 3600


def phone_fix(intake: Intake, account: str, tst: int) -> str:
    payload = json.dumps({"_type": "location", "lat": 51.48, "lon": -0.001, "acc": 8,
                          "tst": tst, "t": "p", "tid": "ph"}).encode()
    return mqtt.handle(intake, f"owntracks/{account}/phone", payload, tst + 1)


def day_of_fixes(db) -> None:
    """A phone on duty 08:00-16:00 that goes on reporting until 20:00, every 30 min."""
    register_device(db, "pc1", source="owntracks")
    assign(db, "pc1", "PC1", at=DAY + 8 * H, until=DAY + 16 * H)
    intake = Intake(db, accept_unknown=False)
    for t in range(DAY + 7 * H, DAY + 20 * H + 1, 1800):
        assert phone_fix(intake, "pc1", t) == "stored"
    intake.commit()


def test_positions_outside_the_patrol_are_set_apart_then_purged(db):
    day_of_fixes(db)
    register_device(db, "T-9")  # a pooled tracker is not a phone: left alone
    intake = Intake(db)
    now = DAY + 21 * H
    flagged, restored, purged = intake.set_apart_off_duty(now, grace_s=2 * H, keep_s=14 * 86400)
    # 07:00, 07:30 (before) and 16:00 ... 18:30 (after); from 19:00 on within the grace
    assert (flagged, restored, purged) == (8, 0, 0)
    kept = [r["tst"] - DAY for r in export_positions(db)]
    assert kept == [*range(8 * H, 16 * H, 1800), 19 * H, 19.5 * H, 20 * H]
    # the paper log comes in: PC1 had the phone until 17:00 after all
    assign(db, "pc1", "PC1", at=DAY + 16 * H, until=DAY + 17 * H)
    assert intake.set_apart_off_duty(now, 2 * H, 14 * 86400) == (0, 2, 0)
    # a fortnight on, what stayed set apart is gone
    later = now + 15 * 86400
    flagged, restored, purged = intake.set_apart_off_duty(later, 2 * H, 14 * 86400)
    assert (flagged, restored, purged) == (3, 0, 9)
    assert db.execute("SELECT count(*) FROM positions WHERE device_id = 'pc1'").fetchone() == (
        16 + 2,)  # 08:00-16:30: the patrol, as the two assignments have it


def test_still_reporting_after_the_assignment(db):
    day_of_fixes(db)
    now = DAY + 20 * H + 60
    assert patrol_end(db, "pc1", now) == (DAY + 16 * H, "PC1")
    lines = list(still_reporting(db, now, after_min=60))
    assert lines and lines[0].startswith("STILL REPORTING pc1 (officer PC1): fixes 4h 00m")
    assert not list(still_reporting(db, now, after_min=300))
    status = fleet_status(db, now=now, rules=AlertRules(after_patrol_min=60))
    assert any(a.startswith("STILL REPORTING pc1") for a in status.alerts)


def test_still_reporting_after_the_tasking_window(db, tmp_path):
    register_device(db, "pc2", source="owntracks")
    assign(db, "pc2", "PC2", at=DAY + 8 * H)  # signed out, never signed back in
    csv = tmp_path / "t.csv"
    day = dt.datetime.fromtimestamp(DAY, dt.UTC).date().isoformat()
    csv.write_text("date,hotspot,start,end,officer,required_minutes\n"
                   f"{day},HS1,09:00,12:00,PC2,15\n")
    import_taskings(db, csv)
    intake = Intake(db)
    for t in range(DAY + 9 * H, DAY + 15 * H + 1, 1800):
        phone_fix(intake, "pc2", t)
    intake.commit()
    assert patrol_end(db, "pc2", DAY + 15 * H + 60) == (DAY + 12 * H, "PC2")
    assert list(still_reporting(db, DAY + 15 * H + 60, 60))[0].startswith(
        "STILL REPORTING pc2 (officer PC2): fixes 3h 00m")
    # while the tasking runs, nothing is over
    assert patrol_end(db, "pc2", DAY + 11 * H) is None


def test_purge_and_status_commands(tmp_path):
    path = str(tmp_path / "p.db")
    db = open_db(path)
    day_of_fixes(db)
    db.close()
    runner = CliRunner()
    done = runner.invoke(cli, ["purge", "--db", path, "--now", str(DAY + 21 * H),
                               "--grace-hours", "2"])
    assert done.exit_code == 0 and "set apart 8" in done.output, done.output
    shown = runner.invoke(cli, ["status", "--db", path, "--now", str(DAY + 20 * H + 60)])
    assert "STILL REPORTING pc1" in shown.output
    assert "off_duty 8" in shown.output  # counted among the positions left out of reports
    bad = runner.invoke(cli, ["purge", "--db", path, "--keep-days", "0.01"])
    assert bad.exit_code == 2
