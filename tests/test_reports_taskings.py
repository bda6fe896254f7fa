"""Taskings from CSV and the exception report: not performed, too short, outside the window,
done, and presence nobody tasked; then the whole daily report through the CLI."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from gateway.reports.dwell import day_window, zone
from gateway.reports.taskings import (
    exception_report,
    import_taskings,
    import_teams,
    taskings_for,
    team_members,
)
from gateway.reports.visits import compute_visits
from hotspots.cli import cli

DAY = "2026-03-02"
T0 = day_window(DAY)[0]  # midnight UTC

PLAN = """date,hotspot,start,end,officer,team,required_minutes
2026-03-02,A,10:00,12:00,1111,,15
2026-03-02,A,13:00,14:00,2222,,15
2026-03-02,A,15:00,16:00,3333,,15
2026-03-02,B,18:00,19:00,4444,,15
2026-03-02,B,22:00,01:00,,night,20
2026-03-02,B,09:00,10:00,,team-x,15
2026-03-02,A,9:00,25:00,1111,,15
not-a-date,A,10:00,11:00,1111,,15
2026-03-02,A,10:00,11:00,,,15
"""
TEAMS = "team,collar\nnight,5555\nnight,6666\n"


def event(db, device: str, seq: int, t: int, kind: str, rid: str) -> None:
    db.execute("INSERT INTO transitions (device_id, seq, event, rid, tst) VALUES (?,?,?,?,?)",
               (device, seq, kind, rid, t))


def visit(db, collar: str, rid: str, start_h: float, end_h: float) -> None:
    device = f"T-{collar}-{rid}-{start_h}"
    db.execute("INSERT INTO assignments (device_id, collar, start_ts, end_ts) VALUES (?,?,?,?)",
               (device, collar, T0 - 86400, None))
    event(db, device, 1, T0 + round(start_h * 3600), "enter", rid)
    event(db, device, 2, T0 + round(end_h * 3600), "leave", rid)


def build(db):
    visit(db, "1111", "A", 10.5, 10.75)  # 15 min in window: done
    visit(db, "2222", "A", 13.2, 13.3)  # 6 min: too short
    visit(db, "3333", "A", 17.0, 17.5)  # at 17:00, window 15-16: outside window
    # 4444 never goes to B: not performed. The night team: 5555 23:50-00:10 and 6666
    # 00:00-00:15 overlap, 25 patrol-minutes in 22:00-01:00, so done (20 required).
    visit(db, "5555", "B", 23 + 50 / 60, 24 + 10 / 60)
    visit(db, "6666", "B", 24.0, 24.25)
    visit(db, "7777", "B", 11.0, 11.5)  # nobody tasked 7777: untasked presence


def test_import_reports_bad_rows_and_is_idempotent(db):
    result = import_taskings(db, io.StringIO(PLAN))
    assert result.imported == 6
    assert [line for line, _ in result.rejected] == [8, 9, 10]
    assert "bad time" in result.rejected[0][1] and "exactly one" in result.rejected[2][1]
    again = import_taskings(db, io.StringIO(PLAN))
    assert (again.imported, again.duplicates) == (0, 6)
    night = [t for t in taskings_for(db, DAY) if t.team == "night"][0]
    assert (night.start_ts - T0, night.end_ts - T0, night.required_s) == (22 * 3600, 25 * 3600,
                                                                           1200)


def test_windows_are_local_times_of_the_report_zone(db):
    import_taskings(db, io.StringIO("date,hotspot,start,end,officer\n2026-07-01,A,10:00,11:00,1\n"),
                    zone("Europe/London"))
    (t,) = taskings_for(db, "2026-07-01")
    assert t.start_ts == day_window("2026-07-01")[0] + 9 * 3600  # 10:00 BST is 09:00 UTC
    assert t.required_s == 900


def test_exception_report(db):
    build(db)
    import_taskings(db, io.StringIO(PLAN))
    import_teams(db, io.StringIO(TEAMS))
    plan = taskings_for(db, DAY)
    wide = (T0, T0 + 25 * 3600)
    outcomes, untasked = exception_report(plan, compute_visits(db, None, wide),
                                          team_members(db), day_window(DAY))
    got = {(o.tasking.hotspot, o.tasking.assignee): (o.status, o.in_window_s // 60,
                                                     o.outside_window_s // 60)
           for o in outcomes}
    assert got == {
        ("A", "1111"): ("done", 15, 0),
        ("A", "2222"): ("too_short", 6, 0),
        ("A", "3333"): ("outside_window", 0, 30),
        ("B", "4444"): ("not_performed", 0, 0),
        ("B", "team:night"): ("done", 25, 0),
        ("B", "team:team-x"): ("not_performed", 0, 0),
    }
    assert [o.present for o in outcomes if o.tasking.team == "night"] == [["5555", "6666"]]
    assert sorted((v.officer, v.hotspot) for v in untasked) == [("3333", "A"), ("7777", "B")]


def test_daily_report_writes_every_file(db, tmp_path):
    build(db)
    db.conn.commit()
    path = tmp_path / "day.db"
    db.conn.execute("VACUUM INTO ?", (str(path),))
    (tmp_path / "plan.csv").write_text(PLAN)
    (tmp_path / "teams.csv").write_text(TEAMS)
    fences = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": rid, "name": f"Spot {rid}", "density": 1},
         "geometry": {"type": "Polygon", "coordinates": [[[lon, 51.48], [lon + 0.001, 51.48],
                                                          [lon + 0.001, 51.481], [lon, 51.481],
                                                          [lon, 51.48]]]}}
        for rid, lon in (("A", -0.0005), ("B", 0.01))]}
    (tmp_path / "fences.geojson").write_text(json.dumps(fences))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "report", "daily", "--db", str(path), "--date", DAY, "--out", str(out),
        "--fences", str(tmp_path / "fences.geojson"), "--taskings", str(tmp_path / "plan.csv"),
        "--teams", str(tmp_path / "teams.csv")])
    assert result.exit_code == 0, result.output
    assert "done 2, too_short 1, outside_window 1, not_performed 2" in result.output
    names = {p.name for p in out.rglob("*") if p.is_file()}
    assert {"visits.csv", "daily.csv", "hourly.csv", "exceptions.csv", "tracks.geojson",
            "map.html", "summary.json", "time_of_day_all.png", "time_of_day_A.png"} <= names
    daily = {r["hotspot"]: r for r in csv.DictReader((out / "daily.csv").open())}
    # A: 15 + 6 + 30 min; B: 5555's 10 min before midnight (clipped) + 7777's 30.
    assert (daily["A"]["visits"], daily["A"]["officer_minutes"]) == ("3", "51.0")
    assert (daily["B"]["visits"], daily["B"]["patrol_minutes"]) == ("2", "40.0")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["untasked"] == 2
    exceptions = list(csv.DictReader((out / "exceptions.csv").open()))
    assert sorted(r["status"] for r in exceptions) == sorted(
        ["done", "too_short", "outside_window", "not_performed", "done", "not_performed",
         "untasked", "untasked"])


def test_report_commands_have_help():
    for group in ("report", "export"):
        for name, command in cli.commands[group].commands.items():
            assert command.help, f"hotspots {group} {name} has no help text"
