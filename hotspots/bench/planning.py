"""``hotspots bench planning``: a force's year of crime to proposed hot spots, and a week of
taskings, with figures against limits and baselines measured in the same run.

1. **Targeting.** ``--crimes`` (370,000, of which about 303,000 recorded crimes once
   anti-social behaviour is left out) synthetic crimes over a year in a ``--extent-km``
   (30 km) square, 40 planted hot spots (0.2 % of crime each) over a uniform background, are
   written as a force export and imported (timed apart). Then, in a fresh
   Python process so that its peak RSS is its own: load from SQLite, square 150 m cells, Gi*
   with the FDR correction, proposed hot spots with time profiles. Baseline: the same process
   only loading the crimes. Limits: 30 s and 1 GB (a Raspberry Pi 4 or 5 must cope).
2. **Taskings.** ``--hotspots`` (50) hot spots, 3 shifts, 20 officers, 7 days, 3 visits per hot
   spot per day: draw, place and route. Limit 10 s. Journey time against the same visits in a
   random order.
3. **Optimality.** ``--cases`` (20) single-officer cases of ``--stops`` (7) visits with time
   windows: OR-tools against the brute-force optimum (every order enumerated).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

TARGETING_S = 30.0
TARGETING_RSS_MB = 1024.0
TASKINGS_S = 10.0

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from gateway.schema import open_db
from planning.crime import load_crimes
from planning.harm import load_harm
from planning.proposals import Settings, propose
db = open_db(sys.argv[1])
crimes = load_crimes(db)
t1 = time.perf_counter()
out = {"load_s": t1 - t0, "crimes": len(crimes)}
if sys.argv[2] == "full":
    t = propose(crimes, load_harm(), Settings(cell_m=150, top=int(sys.argv[3])))
    t2 = time.perf_counter()
    out.update(targeting_s=t2 - t1, cells=len(t.grid), hot=int(t.gi.hot.sum()),
               hotspots=len(t.hotspots), share_harm=t.share_of_harm)
out["total_s"] = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent at fork, so a child of a
# big parent would report the parent's peak
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
out["rss_mb"] = (int(hwm[0].split()[1]) / 1024 if hwm
                 else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(out))
"""


def _child(db: Path, mode: str, top: int) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(db), mode, str(top)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _planted(extent_m: float, n: int, seed: int):
    """``n`` planted hot spots over the force area, each 0.2 % of crime."""
    from fences.geo import LocalFrame
    from simulators.crime import CATEGORIES, PlantedHotSpot

    rng = np.random.default_rng(seed)
    frame = LocalFrame(51_480_000, 0)
    cats = list(CATEGORIES)
    out = []
    for k in range(n):
        x, y = rng.uniform(-extent_m / 2.2, extent_m / 2.2, 2)
        lon, lat = frame.to_lonlat(x, y)
        start = int(rng.integers(0, 24))
        hours = tuple((start + h) % 24 for h in range(int(rng.integers(2, 6))))
        picks = tuple(str(c) for c in rng.choice(cats, 3, replace=False))
        out.append(PlantedHotSpot(f"planted {k + 1}", float(lon), float(lat),
                                  float(rng.uniform(40, 80)), 0.002, hours, picks))
    return out


def _targets(n: int, seed: int):
    from planning.taskings_draw import Target
    from simulators.crime import generate

    rng = np.random.default_rng(seed)
    world = generate(1, months=1, seed=seed, planted=[])
    frame = world.frame
    pts: list[tuple[float, float]] = []
    while len(pts) < n:
        p = tuple(rng.uniform(-3500, 3500, 2))
        if all(math.dist(p, q) >= 500 for q in pts):
            pts.append(p)
    from planning.projection import to_bng

    out = []
    for k, (x, y) in enumerate(pts):
        lon, lat = frame.to_lonlat(x, y)
        bx, by = to_bng(np.array([lon]), np.array([lat]))
        hours = rng.dirichlet(np.ones(24) * 0.5)
        out.append(Target(f"HS-{k + 1:03d}", f"Hot spot {k + 1}", float(bx[0]), float(by[0]),
                          float(rng.uniform(50, 2000)), hours.tolist(), []))
    return out


@click.command("planning")
@click.option("--crimes", type=int, default=370_000, show_default=True,
              help="Crimes generated; anti-social behaviour (18 %) is not in a force export.")
@click.option("--extent-km", type=float, default=30.0, show_default=True)
@click.option("--hotspots", "n_hotspots", type=int, default=50, show_default=True)
@click.option("--cases", type=int, default=20, show_default=True)
@click.option("--stops", type=int, default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def command(crimes: int, extent_km: float, n_hotspots: int, cases: int, stops: int,
            as_json: bool) -> None:
    """Year of crime to hot spots (s, peak RSS); a week of taskings (s); journeys vs optimum."""
    from gateway.schema import open_db
    from planning import routing
    from planning import taskings_draw as td
    from planning.crime import import_crime
    from simulators.crime import generate, write_force_export

    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        world = generate(crimes, months=12, seed=1, extent_m=extent_km * 1000,
                         planted=_planted(extent_km * 1000, 40, 5))
        path = write_force_export(world, tmp / "force.csv")
        t1 = time.perf_counter()
        db_path = tmp / "crime.db"
        result = import_crime(open_db(str(db_path)), path)
        t2 = time.perf_counter()
        figures.update(generate_s=t1 - t0, import_s=t2 - t1, imported=result.imported,
                       rejected=len(result.rejected))
        # each measured twice (the first run also warms the page cache); the faster one counts
        full = min((_child(db_path, "full", 20) for _ in range(2)), key=lambda f: f["total_s"])
        base = min((_child(db_path, "load", 20) for _ in range(2)), key=lambda f: f["total_s"])
        figures["load_only"] = base
        figures["targeting"] = full

    shifts = [td.Shift.parse(s) for s in ("early=07:00-15:00", "late=15:00-23:00",
                                          "night=23:00-07:00")]
    officers = [str(4000 + k) for k in range(20)]
    assignees = {"early": officers[:7], "late": officers[7:14], "night": officers[14:]}
    targets = _targets(n_hotspots, 3)
    settings = td.Settings(seed=1, shifts=shifts, assignees=assignees, visits=3, tz="UTC",
                           mode="drive")
    t0 = time.perf_counter()
    draw = td.draw(targets, dt.date(2026, 3, 2), dt.date(2026, 3, 8), settings)
    figures["taskings"] = {
        "s": time.perf_counter() - t0, "visits": len(draw.visits),
        "not_tasked": len(draw.not_placed), "shifts": draw.shifts_routed,
        "travel_h": draw.travel_s / 3600, "random_order_travel_h": draw.random_travel_s / 3600,
    }

    rng = np.random.default_rng(11)
    ratios, or_s, bf_s, infeasible = [], 0.0, 0.0, 0
    for _ in range(cases):
        xy = rng.uniform(0, 2500, (stops + 1, 2))
        matrix = routing.travel_matrix(xy, routing.SPEEDS_MPS["walk"])
        case = []
        for k in range(stops):
            a = int(rng.integers(0, 5)) * 3600
            case.append(routing.Stop(k, *xy[k + 1], a, min(a + 4 * 3600, 8 * 3600) - 900))
        a = time.perf_counter()
        best = routing.brute_force(case, matrix, 900, 8 * 3600)
        b = time.perf_counter()
        plan = routing.solve(case, matrix, 1, 900, 8 * 3600)
        c = time.perf_counter()
        bf_s += b - a
        or_s += c - b
        if best is None:
            infeasible += 1
            continue
        ratios.append(plan.routes[0].travel_s / best[0] if not plan.dropped else math.inf)
    figures["optimality"] = {"cases": cases, "stops": stops, "feasible": len(ratios),
                             "infeasible": infeasible,
                             "mean_ratio": float(np.mean(ratios)) if ratios else None,
                             "worst_ratio": float(np.max(ratios)) if ratios else None,
                             "ortools_s": or_s, "brute_force_s": bf_s}
    if as_json:
        click.echo(json.dumps(figures, indent=1))
        return
    tg, lo = figures["targeting"], figures["load_only"]
    tk, op = figures["taskings"], figures["optimality"]
    click.echo(f"crime: {figures['imported']:,} crimes generated and written in"
               f" {figures['generate_s']:.1f} s, imported in {figures['import_s']:.1f} s"
               f" ({figures['imported'] / figures['import_s']:,.0f} rows/s,"
               f" {figures['rejected']} rejected)")
    click.echo(f"targeting: {tg['crimes']:,} crimes -> {tg['cells']:,} cells of 150 m, Gi*"
               f" {tg['hot']} hot cells, {tg['hotspots']} hot spots"
               f" ({tg['share_harm']:.1%} of harm)")
    click.echo(f"  load {tg['load_s']:.2f} s + grid, Gi*, proposals and profiles"
               f" {tg['targeting_s']:.2f} s = {tg['total_s']:.2f} s"
               f" ({tg['total_s'] / TARGETING_S:.2f} of the {TARGETING_S:.0f} s limit;"
               f" {tg['total_s'] / lo['total_s']:.2f}x loading alone, {lo['total_s']:.2f} s)")
    click.echo(f"  peak RSS {tg['rss_mb']:.0f} MB ({tg['rss_mb'] / TARGETING_RSS_MB:.2f} of"
               f" 1 GB; loading alone {lo['rss_mb']:.0f} MB)")
    click.echo(f"taskings: {n_hotspots} hot spots, 3 shifts, 20 officers, 7 days:"
               f" {tk['visits']} visits over {tk['shifts']} shifts in {tk['s']:.2f} s"
               f" ({tk['s'] / TASKINGS_S:.2f} of the {TASKINGS_S:.0f} s limit;"
               f" {tk['not_tasked']} not tasked)")
    click.echo(f"  journeys {tk['travel_h']:.1f} h of travel against"
               f" {tk['random_order_travel_h']:.1f} h in random order"
               f" (ratio {tk['travel_h'] / tk['random_order_travel_h']:.2f})")
    if op["feasible"]:
        click.echo(f"optimality: {op['feasible']} feasible cases of {stops} visits (of"
                   f" {cases}): OR-tools travel / brute-force optimum mean"
                   f" {op['mean_ratio']:.3f}, worst {op['worst_ratio']:.3f};"
                   f" OR-tools {op['ortools_s']:.2f} s, brute force {op['brute_force_s']:.2f} s")
