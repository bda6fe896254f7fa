"""``hotspots bench dwell``: visits for one day of a big force, against a naive baseline.

The day: ``--officers`` officers (1,000) each reporting one fix every ``--period-s`` (10 s) for
``--hours`` (10) hours, i.e. 3.6 million positions, in a 20 km city with ``--hotspots`` (500)
synthetic hot spots (stars, holes, two-part and circular ones from :mod:`fences.synthetic`).
Each officer patrols a beat: walks to a nearby hot spot, stays 8-20 minutes moving about inside
it, walks on. Fixes carry 3 m of GNSS noise. Everything is written to a SQLite gateway database
first (not timed), then timed:

* ``visits``: :func:`gateway.reports.visits.compute_visits` end to end, from the SQLite rows to
merged
  visits (loading, classification and visit building are also shown apart);
* ``naive``: a per-point shapely loop (``hotspot.contains(Point(lon, lat))`` for every hot spot)
  on a random sample of the same fixes, extrapolated to all of them. It classifies only: no
  loading and no visit building are charged to it, so the ratio understates the gain.
"""

from __future__ import annotations

import json
import math
import random
import resource
import tempfile
import time
from pathlib import Path

import click
import numpy as np

DAY_START = 1_767_254_400  # 2026-01-01T08:00:00Z


def make_day(db_path: Path, officers: int, hours: float, period_s: int, n_hotspots: int,
             seed: int = 7) -> tuple[Path, int]:
    """Write the synthetic day into ``db_path``; returns the fences file and positions stored."""
    from fences.geo import LocalFrame
    from fences.synthetic import CITY_LAT_E6, CITY_LON_E6, city_fences
    from gateway.intake.intake import Intake
    from gateway.intake.observation import Observation
    from gateway.reports.visits import HotSpotSet
    from gateway.schema import open_db

    fences_doc = city_fences(n_hotspots, seed=seed)
    fences_path = db_path.with_suffix(".geojson")
    fences_path.write_text(json.dumps(fences_doc))
    hotspots = HotSpotSet.load(fences_path)
    frame = LocalFrame(CITY_LAT_E6, CITY_LON_E6)
    centres = []
    for geom in hotspots.lonlat:
        p = geom.representative_point()
        centres.append(frame.to_xy(p.x, p.y))
    centres = np.array(centres)
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    steps = int(hours * 3600 // period_s)
    db = open_db(str(db_path))
    conn = db.conn
    stored = 0
    intake = Intake(db, accept_unknown=True)
    try:
        for officer in range(officers):
            here = centres[pyrng.randrange(len(centres))] + rng.normal(0, 300, 2)
            xs, ys = [], []
            n = 0
            while n < steps:
                near = np.argsort(np.hypot(*(centres - here).T))[1:6]
                target = centres[near[pyrng.randrange(len(near))]]
                walk = max(1, int(np.hypot(*(target - here)) / 1.4 / period_s))
                f = np.arange(1, walk + 1) / walk
                xs.append(here[0] + (target[0] - here[0]) * f)
                ys.append(here[1] + (target[1] - here[1]) * f)
                stay = int(pyrng.uniform(8, 20) * 60 / period_s)
                wander = np.cumsum(rng.normal(0, 4, (stay, 2)), axis=0)
                wander = np.clip(wander, -15, 15)  # keeps near the centre, inside the hot spot
                xs.append(target[0] + wander[:, 0])
                ys.append(target[1] + wander[:, 1])
                here = target
                n += walk + stay
            x = np.concatenate(xs)[:steps] + rng.normal(0, 3, steps)
            y = np.concatenate(ys)[:steps] + rng.normal(0, 3, steps)
            lon, lat = frame.to_lonlat(x, y)
            device = f"T-{officer:04d}"
            t0 = DAY_START + pyrng.randrange(period_s)
            # Through the intake, as every source's positions are (a fix arrives a second
            # after it was taken): the day holds what a station would have stored.
            intake.begin()
            for seq, tst, fix_lat, fix_lon in zip(
                    range(1, steps + 1), range(t0, t0 + steps * period_s, period_s),
                    np.round(lat, 6).tolist(), np.round(lon, 6).tolist(), strict=True):
                obs = Observation("location", "tracker", device, "bench", seq=seq, tst=tst,
                                  lat=fix_lat, lon=fix_lon, acc_m=5.0)
                if intake.submit(obs, tst + 1) == "stored":
                    stored += 1
            intake.commit()
            with conn:
                conn.execute("INSERT INTO assignments (device_id, collar, start_ts, end_ts)"
                             " VALUES (?, ?, ?, ?)", (device, str(10000 + officer),
                                                      DAY_START - 600,
                                                      DAY_START + int(hours * 3600) + 600))
    finally:
        intake.rollback()  # an unfinished officer is rolled back
        db.close()
    return fences_path, stored


def naive_per_point_s(hotspots, lat: np.ndarray, lon: np.ndarray) -> float:
    """Seconds per fix for the per-point shapely loop over every hot spot."""
    from shapely.geometry import Point

    geoms = hotspots.lonlat
    began = time.perf_counter()
    hits = 0
    for la, lo in zip(lat.tolist(), lon.tolist(), strict=True):
        point = Point(lo, la)
        for geom in geoms:
            if geom.contains(point):
                hits += 1
    return (time.perf_counter() - began) / len(lat)


def run(officers: int, hours: float, period_s: int, n_hotspots: int, sample: int,
        keep: str | None) -> dict:
    """Build the day (or reuse ``keep``), time both methods, return the figures.

    Without ``keep`` the day goes into a temporary folder that is removed when the run ends
    (an error, Ctrl-C, SIGTERM through the command): a day of the default size is about 400 MB.
    With ``keep`` a day is reused only if it was built to the end (a ``.complete`` marker).
    """
    if keep:
        return _run_in(Path(keep), officers, hours, period_s, n_hotspots, sample, reuse=True)
    with tempfile.TemporaryDirectory(prefix="bench-dwell-") as workdir:
        return _run_in(Path(workdir), officers, hours, period_s, n_hotspots, sample,
                       reuse=False)


def _run_in(workdir: Path, officers: int, hours: float, period_s: int, n_hotspots: int,
            sample: int, reuse: bool) -> dict:
    from gateway.schema import open_db

    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / f"day-{officers}x{hours:g}h-{period_s}s-{n_hotspots}.db"
    began = time.perf_counter()
    complete = db_path.with_suffix(".complete")
    if complete.exists() and reuse:
        fences_path = db_path.with_suffix(".geojson")
        generate_s = 0.0
    else:
        _remove_db(db_path)
        try:
            fences_path, _ = make_day(db_path, officers, hours, period_s, n_hotspots)
        except BaseException:
            _remove_db(db_path)
            raise
        # Written last: a day cut short, even by SIGKILL, has no marker and is never reused.
        complete.touch()
        generate_s = time.perf_counter() - began
    db = open_db(str(db_path))
    try:
        return _measure(db, fences_path, officers, hours, period_s, sample, generate_s)
    finally:
        db.close()


def _remove_db(db_path: Path) -> None:
    # The marker first, then the WAL with the database (a stale WAL must not be replayed into
    # the next day of this name), and the day's hot spots.
    db_path.with_suffix(".complete").unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.with_suffix(".geojson").unlink(missing_ok=True)


def _measure(db, fences_path: Path, officers: int, hours: float, period_s: int, sample: int,
             generate_s: float) -> dict:
    from gateway.reports.visits import (
        DEFAULT_RULES,
        HotSpotSet,
        compute_visits,
        load_tracks,
        presence_from_positions,
    )

    positions = db.execute("SELECT count(*) FROM positions").fetchone()[0]
    window = (DAY_START, DAY_START + int(hours * 3600))

    t = time.perf_counter()
    hotspots = HotSpotSet.load(fences_path)
    load_fences_s = time.perf_counter() - t
    t = time.perf_counter()
    visits = compute_visits(db, hotspots, window, DEFAULT_RULES)
    total_s = time.perf_counter() - t

    # The same work in its parts, for the breakdown.
    t = time.perf_counter()
    lo = window[0] - DEFAULT_RULES.lookback_s()
    tracks = load_tracks(db, hotspots.frame, lo, window[1] + DEFAULT_RULES.interp_gap_s)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    stays = presence_from_positions(tracks, hotspots, DEFAULT_RULES)
    classify_s = time.perf_counter() - t

    rng = np.random.default_rng(1)
    pick = np.sort(rng.choice(len(tracks), size=min(sample, len(tracks)), replace=False))
    lon, lat = hotspots.frame.to_lonlat(tracks.x[pick], tracks.y[pick])
    naive_pp = naive_per_point_s(hotspots, lat, lon)
    naive_total = naive_pp * positions
    dwell_min = [v.dwell_s / 60 for v in visits]
    return {
        "officers": officers, "hours": hours, "period_s": period_s, "positions": positions,
        "hotspots": len(hotspots), "generate_s": round(generate_s, 1),
        "fences_load_s": round(load_fences_s, 2),
        "visits_s": round(total_s, 2),
        "visits_positions_per_s": round(positions / total_s),
        "breakdown": {"sqlite_load_s": round(load_s, 2), "classify_and_build_s":
                      round(classify_s, 2)},
        "visits": len(visits), "device_stays": len(stays),
        "median_dwell_min": round(float(np.median(dwell_min)), 1) if dwell_min else 0,
        "naive_sample": int(len(pick)), "naive_us_per_position": round(naive_pp * 1e6, 1),
        "naive_extrapolated_s": round(naive_total, 1),
        "speedup_end_to_end": round(naive_total / total_s, 1),
        "speedup_classification": round(naive_pp * len(tracks) / classify_s, 1),
        "target_s": 15, "target_ratio": 20,
        "meets_targets": total_s <= 15 and naive_total / total_s >= 20,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


@click.command()
@click.option("--officers", type=int, default=1000, show_default=True)
@click.option("--hours", type=float, default=10.0, show_default=True)
@click.option("--period-s", type=int, default=10, show_default=True, help="Seconds between fixes.")
@click.option("--hotspots", "n_hotspots", type=int, default=500, show_default=True)
@click.option("--sample", type=int, default=2000, show_default=True,
              help="Fixes the naive baseline classifies.")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Keep (and reuse) the generated database in this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def command(officers: int, hours: float, period_s: int, n_hotspots: int, sample: int,
            keep: str | None, as_json: bool) -> None:
    """Visits for a day of 1,000 officers (3.6 M fixes, 500 hot spots) vs a naive loop."""
    from hotspots.cli_gateway import interrupt_on_signals

    interrupt_on_signals()  # SIGTERM cleans up like Ctrl-C: a day is about 400 MB
    r = run(officers, hours, period_s, n_hotspots, sample, keep)
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"day: {r['officers']} officers x {r['hours']:g} h at 1 fix/{r['period_s']} s ="
               f" {r['positions']:,} positions, {r['hotspots']} hot spots"
               f" (generated in {r['generate_s']} s)")
    parts = r["breakdown"]
    click.echo(f"visits: {r['visits_s']} s end to end from SQLite"
               f" ({r['visits_positions_per_s']:,} positions/s; load {parts['sqlite_load_s']} s,"
               f" classify+build {parts['classify_and_build_s']} s)"
               f" -> {r['visits']:,} visits, median {r['median_dwell_min']} min")
    click.echo(f"naive per-point shapely loop: {r['naive_us_per_position']} us/position on"
               f" {r['naive_sample']:,} fixes -> {r['naive_extrapolated_s']:,} s for the day")
    click.echo(f"ratio: {r['speedup_end_to_end']}x end to end"
               f" ({r['speedup_classification']}x classification alone);"
               f" targets <= {r['target_s']} s and >= {r['target_ratio']}x:"
               f" {'met' if r['meets_targets'] else 'NOT met'}; peak RSS {r['peak_rss_mb']} MB")
    if not math.isfinite(r["visits_s"]):
        raise click.ClickException("benchmark failed")
