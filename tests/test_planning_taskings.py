"""Taskings: OR-tools journeys against the brute-force optimum, a reproducible seeded draw with
patrol and control days, visits at hot times with minimum gaps, and a CSV that the exception
report imports; then the per hot spot report with the dosage that followed."""

from __future__ import annotations

import csv
import datetime as dt
import json

import numpy as np
import pytest
from click.testing import CliRunner

from gateway.reports.taskings import import_taskings, taskings_for
from hotspots.cli import cli
from planning import routing
from planning import taskings_draw as td
from planning.harm import load_harm
from planning.hotspot_report import hotspot_report, text_lines

FENCES = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature",
         "properties": {"id": f"HS-{k}", "name": f"Spot {k}", "density": "high",
                        "harm_days": harm, "hour_shares": hours},
         "geometry": {"type": "Point", "coordinates": [lon, 51.48]},
         }
        for k, lon, harm, hours in [
            (1, -0.010, 1000.0, [0.0] * 21 + [0.5, 0.5, 0.0]),  # 21:00-23:00 only
            (2, -0.004, 500.0, []),
            (3, 0.002, 200.0, []),
            (4, 0.008, 100.0, []),
            (5, 0.014, 50.0, []),
        ]
    ],
}
for _f in FENCES["features"]:
    _f["properties"]["radius_m"] = 60


@pytest.mark.parametrize("seed", range(6))
def test_ortools_journey_matches_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    n = 6
    xy = rng.uniform(0, 2000, (n + 1, 2))
    matrix = routing.travel_matrix(xy, routing.SPEEDS_MPS["walk"])
    service = 15 * 60
    shift = 8 * 3600
    stops = []
    for k in range(n):
        a = int(rng.integers(0, 6)) * 3600
        width = int(rng.choice([2, 3, 8])) * 3600
        stops.append(routing.Stop(k, *xy[k + 1], a, min(a + width, shift) - service))
    best = routing.brute_force(stops, matrix, service, shift)
    plan = routing.solve(stops, matrix, 1, service, shift)
    if best is None:
        assert plan.dropped
        return
    assert not plan.dropped
    (route,) = plan.routes
    assert routing.schedule(route.stops, stops, matrix, service, shift) is not None
    assert route.travel_s == best[0]


def test_random_order_is_no_better_than_the_optimum():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 3000, (8, 2))
    matrix = routing.travel_matrix(xy, routing.SPEEDS_MPS["walk"])
    stops = [routing.Stop(k, *xy[k + 1], 0, 8 * 3600) for k in range(7)]
    plan = routing.solve(stops, matrix, 1, 900, 10 * 3600)
    worse = [routing.random_order_travel(plan, matrix, np.random.default_rng(s))
             for s in range(20)]
    assert min(worse) >= plan.travel_s and np.mean(worse) > plan.travel_s


def _settings(**kw):
    base = dict(seed=42, shifts=[td.Shift.parse("early=07:00-15:00"),
                                 td.Shift.parse("late=15:00-23:00")],
                assignees={"early": ["4521", "4522"], "late": ["4601", "team:B-relief"]},
                per_day=2, visits=2, tz="UTC")
    base.update(kw)
    return td.Settings(**base)


@pytest.fixture
def fences_file(tmp_path):
    path = tmp_path / "hotspots.geojson"
    path.write_text(json.dumps(FENCES))
    return path


def test_draw_is_reproducible_and_records_its_seed(fences_file, tmp_path):
    targets = td.load_targets(fences_file)
    days = (dt.date(2026, 3, 2), dt.date(2026, 3, 8))
    a = td.write_taskings(td.draw(targets, *days, _settings()), tmp_path / "a.csv")
    b = td.write_taskings(td.draw(targets, *days, _settings()), tmp_path / "b.csv")
    c = td.write_taskings(td.draw(targets, *days, _settings(seed=43)), tmp_path / "c.csv")
    assert a.read_bytes() == b.read_bytes()
    assert a.with_suffix(".design.csv").read_bytes() == b.with_suffix(".design.csv").read_bytes()
    assert a.read_bytes() != c.read_bytes()
    rows = list(csv.DictReader(a.open()))
    assert rows and all("seed=42" in r["note"] for r in rows)


def test_design_patrol_and_control_days_visits_and_gaps(fences_file, tmp_path):
    targets = td.load_targets(fences_file)
    result = td.draw(targets, dt.date(2026, 3, 2), dt.date(2026, 3, 15), _settings())
    design = result.design
    assert len(design) == 14 * 5
    per_day: dict[str, list[str]] = {}
    for day, spot, arm, _ in design:
        if arm == "patrol":
            per_day.setdefault(day, []).append(spot)
    assert all(len(v) == 2 for v in per_day.values()) and len(per_day) == 14
    # harm-weighted: the 1000-day hot spot is drawn far more often than the 50-day one
    drawn = [s for v in per_day.values() for s in v]
    assert drawn.count("HS-1") > drawn.count("HS-5")
    # only patrol hot spot-days get visits, at least 120 minutes apart, 60-minute windows
    patrol = {(d, s) for d, v in per_day.items() for s in v}
    by_key: dict = {}
    for v in result.visits:
        assert (v.day.isoformat(), v.target.id) in patrol
        assert v.window_end - v.window_start == dt.timedelta(minutes=60)
        assert v.window_start <= v.planned <= v.window_end - dt.timedelta(minutes=15)
        by_key.setdefault((v.day, v.target.id), []).append(v.window_start)
    for starts in by_key.values():
        starts.sort()
        assert all(b - a >= dt.timedelta(minutes=120) for a, b in zip(starts, starts[1:],
                                                                      strict=False))
    assert len(result.visits) + len(result.not_placed) == 14 * 2 * 2
    # HS-1's crime is at 21:00-23:00: every day it is patrolled, one visit is then (the
    # second cannot be: 120 minutes apart, so it goes to another hour of a staffed shift)
    hs1: dict = {}
    for v in result.visits:
        if v.target.id == "HS-1":
            hs1.setdefault(v.day, []).append(v.window_start.hour)
    assert hs1 and all(sum(h in (21, 22) for h in hours) == 1 for hours in hs1.values())


def test_taskings_csv_imports_into_the_exception_report(fences_file, tmp_path, db):
    targets = td.load_targets(fences_file)
    result = td.draw(targets, dt.date(2026, 3, 2), dt.date(2026, 3, 4),
                     _settings(assignees={"early": ["4521"], "late": ["team:B-relief"]}))
    path = td.write_taskings(result, tmp_path / "taskings.csv")
    imported = import_taskings(db, path)
    assert (imported.imported, imported.rejected) == (len(result.visits), [])
    teams = [t for d in ("2026-03-02", "2026-03-03", "2026-03-04")
             for t in taskings_for(db, d) if t.team]
    assert teams and all(t.team == "B-relief" and not t.officer for t in teams)
    sheets = td.write_sheets(result, tmp_path / "sheets")
    names = sorted(p.name for p in sheets)
    assert names == ["4521.txt", "team_B-relief.txt"]
    text = (tmp_path / "sheets" / names[0]).read_text()
    assert "arrive" in text and "window" in text and "seed 42" in text


def test_cli_taskings_then_exceptions_and_hotspot_report(fences_file, tmp_path):
    runner = CliRunner()
    out = tmp_path / "taskings.csv"
    result = runner.invoke(cli, [
        "plan", "taskings", "--hotspots", str(fences_file), "--from", "2026-03-02",
        "--to", "2026-03-03", "--shifts", "early=07:00-15:00", "--shifts", "late=15:00-23:00",
        "--officers", "early=4521", "--officers", "late=4601,team:B-relief", "--seed", "7",
        "--per-day", "3", "--out", str(out), "--sheets", str(tmp_path / "sheets")])
    assert result.exit_code == 0, result.output
    assert "seed 7" in result.output and "random order" in result.output
    db_path = tmp_path / "patrol.db"
    rows = list(csv.DictReader(out.open()))
    first = rows[0]
    # one officer does the first tasking properly: 20 minutes inside the window
    from gateway.schema import open_db

    db = open_db(str(db_path))
    start = int(dt.datetime.fromisoformat(f"{first['date']}T{first['start']}+00:00").timestamp())
    who = first["officer"] or "9999"
    device = "T-0001"
    db.execute("INSERT INTO assignments (device_id, collar, start_ts, end_ts) VALUES (?,?,?,?)",
               (device, who, start - 3600, None))
    if not first["officer"]:
        db.execute("INSERT INTO team_members (team, collar) VALUES (?, ?)", (first["team"], who))
    for seq, (kind, t) in enumerate([("enter", start + 300), ("leave", start + 1500)], 1):
        db.execute("INSERT INTO transitions (device_id, seq, event, rid, tst) VALUES"
                   " (?,?,?,?,?)", (device, seq, kind, first["hotspot"], t))
    db.conn.commit()
    result = runner.invoke(cli, ["report", "exceptions", "--db", str(db_path), "--taskings",
                                 str(out), "--fences", str(fences_file), "--date",
                                 first["date"], "--all", "--json"])
    assert result.exit_code == 0, result.output
    outcomes = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    taskings = [o for o in outcomes if o.get("kind") == "tasking"]
    assert len(taskings) == sum(1 for r in rows if r["date"] == first["date"])
    done = [o for o in taskings if o["status"] == "done"]
    assert [o["hotspot"] for o in done] == [first["hotspot"]]

    report = hotspot_report(db, fences_file, first["hotspot"], load_harm(), "UTC")
    assert report["dosage_by_day"] == [{"date": first["date"], "officer_min": 20.0}]
    assert report["patrol_design"]["patrol"]["days"] >= 1
    assert "no times" in report["time_basis"] or report["crimes"] == 0
    text = "\n".join(text_lines(report))
    assert "officer-minutes" in text and "patrol days against non-patrol days" in text
    result = runner.invoke(cli, ["report", "hotspot", first["hotspot"], "--db", str(db_path),
                                 "--fences", str(fences_file), "--tz", "UTC"])
    assert result.exit_code == 0, result.output
    assert "20.0 officer-minutes" in result.output


def test_bad_inputs_are_errors(fences_file):
    targets = td.load_targets(fences_file)
    with pytest.raises(td.DrawError, match="no shift has officers"):
        td.draw(targets, dt.date(2026, 3, 2), dt.date(2026, 3, 2), _settings(assignees={}))
    with pytest.raises(td.DrawError, match="unknown shift"):
        td.draw(targets, dt.date(2026, 3, 2), dt.date(2026, 3, 2),
                _settings(assignees={"nights": ["1"]}))
    with pytest.raises(td.DrawError, match="NAME=HH:MM"):
        td.Shift.parse("late")
    result = CliRunner().invoke(cli, ["plan", "taskings", "--hotspots", str(fences_file),
                                      "--from", "2026-03-02", "--to", "2026-03-01",
                                      "--shifts", "a=07:00-15:00", "--officers", "a=1",
                                      "--seed", "1", "--out", "/dev/null"])
    assert result.exit_code != 0 and "before the first" in result.output


def test_profile_hours_are_read_in_their_own_zone(tmp_path):
    # crime at 21:00-23:00 London time is 20:00-22:00 UTC in July: taskings in UTC follow it
    doc = json.loads(json.dumps(FENCES))
    doc["properties"] = {"profile_tz": "Europe/London"}
    doc["features"] = doc["features"][:1]
    path = tmp_path / "h.geojson"
    path.write_text(json.dumps(doc))
    (target,) = td.load_targets(path)
    assert target.profile_tz == "Europe/London"
    result = td.draw([target], dt.date(2026, 7, 6), dt.date(2026, 7, 12),
                     _settings(per_day=1, visits=1, window_min=60))
    hours = [v.window_start.hour for v in result.visits]
    assert len(hours) == 7 and all(h in (20, 21) for h in hours)
