"""``hotspots demo --planning``: the whole loop, from a crime export to the exception report.

1. a year of synthetic crime (planted hot spots, known places and hours) as a force export,
   imported into SQLite;
2. hot spots proposed from it (Gi*, harm), validated and compiled as fences;
3. taskings drawn for a short (3-hour) shift for officer 4521, with the journey order;
4. the officer patrols: a simulated GNSS walk following the sheet (but skipping the last visit,
   so there is an exception to report), through the real firmware on the MicroPython unix port
   (or CPython), a private Mosquitto and the gateway, into the same database;
5. the exception report for those taskings, and the per hot spot report with the dosage.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gateway.broker import Mosquitto
from gateway.schema import open_db

COLLAR = "4521"
DEVICE = "T-0001"
SHIFT_H = 3


def _route(draw, station_xy, start_ts: float, skip_last: bool) -> tuple[dict, list]:
    """A walk for the officer's journey: stand in each hot spot from the planned arrival for
    17 minutes (15 required), walking 1.4 m/s between them."""
    from planning.projection import to_wgs84

    visits = sorted(draw.visits, key=lambda v: v.planned)
    if skip_last and len(visits) > 1:
        visits = visits[:-1]
    points = [station_xy] + [(v.target.x, v.target.y) for v in visits]
    lon, lat = to_wgs84(np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    t = start_ts
    stops = []
    for k, v in enumerate(visits):
        walk_s = math.dist(points[k], points[k + 1]) / 1.4
        planned = v.planned.timestamp()
        wait = max(0.0, planned - (t + walk_s))
        stops.append([k, wait])  # wait at the previous point, then walk in
        t += wait + walk_s + 17 * 60
    # stop k is the wait before leaving vertex k; the 17 minutes are spent at vertex k + 1
    stop_at: dict[int, float] = {}
    for k, wait in stops:
        stop_at[k] = stop_at.get(k, 0.0) + wait
        stop_at[k + 1] = stop_at.get(k + 1, 0.0) + 17 * 60
    coords = [[round(a, 7), round(b, 7)] for a, b in zip(lon.tolist(), lat.tolist(),
                                                          strict=True)]
    # a short leg out of the last hot spot, so the walk ends outside it (a clean "leave")
    last = points[-1]
    out_lon, out_lat = to_wgs84(np.array([last[0] + 250.0]), np.array([last[1]]))
    coords.append([round(float(out_lon[0]), 7), round(float(out_lat[0]), 7)])
    route = {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"name": f"officer {COLLAR}'s journey", "speed_mps": 1.4,
                       "stops": [[k, round(s)] for k, s in sorted(stop_at.items()) if s > 0]},
        "geometry": {"type": "LineString", "coordinates": coords}}]}
    return route, visits


def run_planning_demo(workdir: Path, speedup: float = 60.0, cpython: bool = False
                      ) -> Iterator[str]:
    """Run the loop; yields report lines as they become known."""
    from fences.compile import compile_geojson
    from fences.validate import validate
    from gateway.fleet.identity import assign
    from gateway.reports.dwell import day_window
    from gateway.reports.taskings import (
        exception_report,
        import_taskings,
        taskings_for,
        team_members,
    )
    from gateway.reports.visits import HotSpotSet, compute_visits
    from planning import taskings_draw as td
    from planning.crime import import_crime, load_crimes
    from planning.harm import load_harm
    from planning.hotspot_report import hotspot_report
    from planning.proposals import Settings, propose, summary_lines, write_geojson
    from simulators.crime import generate, write_force_export
    from simulators.patrol import run_patrol
    from simulators.walk import replay_start

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    db_path = workdir / "hotspots.db"
    db = open_db(str(db_path))

    # 1. crime
    today = dt.datetime.now(dt.UTC).date()
    first_month = (today.replace(day=1) - dt.timedelta(days=330)).strftime("%Y-%m")
    world = generate(20_000, months=12, start=first_month, seed=3)
    export = write_force_export(world, workdir / "force-export.csv")
    result = import_crime(db, export)
    yield (f"crime: {export.name} from {first_month}, {result.summary()}; planted: "
           + "; ".join(f"{p.name} at {p.lat:.4f},{p.lon:.4f} hours {list(p.hours)}"
                       for p in world.planted))

    # 2. hot spots -> fences
    targeting = propose(load_crimes(db), load_harm(), Settings(cell_m=100, top=3))
    yield from ("targeting: " + line for line in summary_lines(targeting))
    proposed = write_geojson(targeting, workdir / "proposed.geojson")
    report = validate(proposed)
    compiled = compile_geojson(json.loads(proposed.read_text()))
    yield (f"fences: {proposed.name}: {len(report.hotspots)} hot spots,"
           f" {len(report.errors)} errors, {len(report.warnings)} warnings; compiled"
           f" version {getattr(compiled, 'version', '?')}")

    # 3. taskings for a short shift that has just ended (played back at speedup)
    start_ts = replay_start(SHIFT_H * 3600, speedup)
    start = dt.datetime.fromtimestamp(start_ts, dt.UTC)
    end = start + dt.timedelta(hours=SHIFT_H)
    shift = td.Shift("demo", start.time(), end.time())
    targets = td.load_targets(proposed)
    settings = td.Settings(seed=2026, shifts=[shift], assignees={"demo": [COLLAR]}, visits=1,
                           window_min=90, tz="UTC")
    draw = td.draw(targets, start.date(), start.date(), settings)
    taskings_csv = td.write_taskings(draw, workdir / "taskings.csv")
    sheets = td.write_sheets(draw, workdir / "sheets")
    yield from ("taskings: " + line for line in td.summary_lines(draw))
    yield f"taskings: {taskings_csv}; sheet {sheets[0] if sheets else '-'}:"
    if sheets:
        yield from ("  " + line for line in sheets[0].read_text().splitlines()[3:])

    # 4. the patrol, skipping the last tasked visit
    station = (float(np.mean([t.x for t in targets])), float(np.mean([t.y for t in targets])))
    route_doc, walked = _route(draw, station, start_ts, skip_last=True)
    route_path = workdir / "route.geojson"
    route_path.write_text(json.dumps(route_doc))
    assign(db, DEVICE, COLLAR, at=start_ts - 60)
    db.conn.commit()
    with Mosquitto(workdir=workdir / "broker") as broker:
        runtime = "CPython" if cpython else "the MicroPython unix port"
        yield (f"patrol: officer {COLLAR} with tracker {DEVICE} ({runtime}) walks"
               f" {len(walked)} of {len(draw.visits)} tasked visits, at {speedup:g}x ...")
        patrol = run_patrol(broker.address, workdir / "patrol", route_path, proposed,
                            device_id=DEVICE, speedup=speedup, start=start_ts, cpython=cpython,
                            db_path=db_path)
    yield (f"patrol: {patrol.walk_duration_s / 60:.0f} simulated minutes in"
           f" {patrol.wall_s:.0f} s; firmware published {patrol.published} messages")

    # 5. exceptions and the hot spot report
    db = open_db(str(db_path))
    imported = import_taskings(db, taskings_csv)
    yield (f"exceptions: {taskings_csv.name}: {imported.imported} imported,"
           f" {len(imported.rejected)} rejected")
    spots = HotSpotSet.load(proposed)
    days = sorted({v.window_start.date().isoformat() for v in draw.visits})
    for day in days:
        window = day_window(day)
        planned = taskings_for(db, day)
        lo = min([window[0]] + [t.start_ts for t in planned])
        hi = max([window[1]] + [t.end_ts for t in planned])
        visits = compute_visits(db, spots, (lo, hi))
        outcomes, untasked = exception_report(planned, visits, team_members(db), window)
        for o in outcomes:
            t = o.tasking
            yield (f"  {day} {t.hotspot} {dt.datetime.fromtimestamp(t.start_ts, dt.UTC):%H:%M}-"
                   f"{dt.datetime.fromtimestamp(t.end_ts, dt.UTC):%H:%M} officer {t.officer}:"
                   f" {o.status} ({o.in_window_s / 60:.1f} min in the window)")
        for v in untasked:
            yield f"  untasked presence: {v.who} at {v.hotspot}, {v.dwell_s / 60:.1f} min"
    if walked:
        hs = walked[0].target.id
        rep = hotspot_report(db, proposed, hs, load_harm(), "UTC")
        peak = int(np.argmax(rep["by_hour"]["crimes"])) if rep["by_hour"] else None
        yield (f"report hotspot {hs}: {rep['crimes']} crimes, {rep['harm_days']:,.0f}"
               f" harm-days, busiest hour {peak}:00 UTC; dosage "
               + ", ".join(f"{d['date']} {d['officer_min']:.0f} officer-min"
                           for d in rep["dosage_by_day"]))
    from planning.map3d import AssetError, write_map

    try:
        map_path = write_map(targeting, workdir / "harm-3d.html", proposed)
        yield f"3D harm map: {map_path} (offline; open it in a browser)"
    except AssetError as exc:
        yield f"3D harm map: not written: {exc}"
    yield f"database: {db_path}"
