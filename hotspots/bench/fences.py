"""``hotspots bench fences``: µs per fix of the on-device fence engine at 10, 100 and 500 hot
spots, on the MicroPython unix port and on CPython, against baselines measured in the same run:
shapely (STRtree + prepared polygons, the obvious host implementation) on CPython, and a naive
scan of every fence (no prefilter) on MicroPython. Target: <= 200 µs per fix at 500 fences on
MicroPython.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from fences.compile import compile_geojson
from fences.synthetic import city_fences
from simulators import tracker_process

SIZES = (10, 100, 500)
FIXES = 3000
TARGET_US = 200.0
EXTENT_M = 10_000.0  # 500 hot spots in 10 km x 10 km: a dense inner-city map

# Runs on MicroPython (and CPython): engine.update per fix, then a naive scan baseline.
_DEVICE_SCRIPT = r'''
import gc, json, sys, time
from tracker.fence import FenceEngine, FenceSet

try:
    now_us = time.ticks_us
    diff = time.ticks_diff
except AttributeError:
    def now_us():
        return int(time.perf_counter() * 1000000)

    def diff(a, b):
        return a - b

sets, walks, repeat = sys.argv[1].split(","), sys.argv[2].split(","), int(sys.argv[3])
out = []
for path, walk in zip(sets, walks):
    with open(walk) as f:
        fixes = json.load(f)
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    with open(path, "rb") as f:
        fs = FenceSet.from_stream(f)
    gc.collect()
    ram = (gc.mem_alloc() - before) if hasattr(gc, "mem_alloc") else 0
    events = []
    best = None
    for _ in range(repeat):
        eng = FenceEngine(fs, lambda *a: events.append(a))
        t = 1795000000
        t0 = now_us()
        for lat, lon, acc in fixes:
            eng.update(t, lat, lon, acc)
            t += 1
        us = diff(now_us(), t0)
        best = us if best is None or us < best else best
    n = len(fs)
    t0 = now_us()
    inside = 0
    for lat, lon, acc in fixes:
        for i in range(n):
            d = fs.depth_q(i, lat, lon)
            if d > 0:
                inside += 1
    naive = diff(now_us(), t0)
    out.append({"fences": n, "engine_us": best / len(fixes), "naive_us": naive / len(fixes),
                "ram_bytes": ram, "events": len(events) // repeat})
print(json.dumps(out))
'''


def patrol(doc: dict, fixes: int, seed: int) -> list[list[int]]:
    """A 1 Hz patrol of the set's own hot spots: walk through one from 150 m outside to 150 m
    past its centre at 1.4 m/s with 3 m GNSS noise, then the next; fixes are inside, on the
    edge of or near fences, as on a real shift."""
    from fences.geo import LocalFrame

    rng = random.Random(seed)
    frame = LocalFrame(51_480_000, 0)
    pts: list[list[int]] = []
    while len(pts) < fixes:
        geom = rng.choice(doc["features"])["geometry"]
        if geom["type"] == "Point":
            ring = [geom["coordinates"]]
        elif geom["type"] == "Polygon":
            ring = geom["coordinates"][0][:-1]
        else:
            ring = geom["coordinates"][0][0][:-1]
        cx, cy = frame.to_xy(sum(p[0] for p in ring) / len(ring),
                             sum(p[1] for p in ring) / len(ring))
        heading = rng.uniform(0, 6.283)
        ux, uy = math.cos(heading), math.sin(heading)
        for k in range(215):
            s_m = -150 + 1.4 * k
            lon, lat = frame.to_lonlat(cx + s_m * ux + rng.gauss(0, 3),
                                       cy + s_m * uy + rng.gauss(0, 3))
            pts.append([round(lat * 1e6), round(lon * 1e6), 400])
    return pts[:fixes]


def make_inputs(workdir: Path, sizes: tuple[int, ...] = SIZES, fixes: int = FIXES,
                ) -> tuple[list[Path], list[Path], dict[int, dict]]:
    """Compile the synthetic sets and a patrol of each; returns their paths and the GeoJSON."""
    paths = []
    walks = []
    docs = {}
    for n in sizes:
        doc = city_fences(n, vertices=20, seed=n, extent_m=EXTENT_M)
        docs[n] = doc
        path = workdir / f"fences{n}.hsf"
        path.write_bytes(compile_geojson(doc).data)
        paths.append(path)
        walk = workdir / f"patrol{n}.json"
        walk.write_text(json.dumps(patrol(doc, fixes, seed=n)))
        walks.append(walk)
    return paths, walks, docs


def run_device(argv0: list[str], paths: list[Path], walks: list[Path], repeat: int,
               env: dict | None) -> list[dict]:
    """Run the device script under an interpreter; returns its per-size figures."""
    result = subprocess.run(
        [*argv0, "-c", _DEVICE_SCRIPT, ",".join(str(p) for p in paths),
         ",".join(str(w) for w in walks), str(repeat)],
        capture_output=True, text=True, env=env, timeout=1200)
    if result.returncode != 0:
        raise click.ClickException(f"{argv0[0]} failed: {result.stderr.strip()[-1500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def shapely_baseline(doc: dict, fixes_path: Path, near_m: float = 250.0) -> float:
    """µs per fix for shapely: which hot spots contain the fix, and the nearest boundary."""
    import shapely

    from fences.reference import ReferenceFences

    ref = ReferenceFences(doc)
    fixes = json.loads(fixes_path.read_text())
    near_deg = near_m / 111_000 * 1.7  # generous in longitude at 51.5 N
    boxes = shapely.STRtree([shapely.box(*r.hotspot.bounds()).buffer(near_deg) for r in ref.refs])
    t0 = time.perf_counter()
    for lat_e6, lon_e6, _ in fixes:
        p = shapely.Point(lon_e6 / 1e6, lat_e6 / 1e6)
        nearest = near_m
        for i in boxes.query(p):
            d = ref.depth_m(int(i), lat_e6, lon_e6)
            nearest = min(nearest, abs(d))
    return (time.perf_counter() - t0) / len(fixes) * 1e6


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--fixes", type=int, default=FIXES, show_default=True, help="Fixes per run.")
@click.option("--repeat", type=int, default=3, show_default=True,
              help="Runs per size; the fastest is reported.")
def command(as_json: bool, fixes: int, repeat: int) -> None:
    """µs per fix at 10, 100 and 500 fences: MicroPython, CPython, shapely and a naive scan."""
    binary = tracker_process.find_micropython()
    with tempfile.TemporaryDirectory(prefix="hotspots-bench-") as tmp:
        paths, walks, docs = make_inputs(Path(tmp), fixes=fixes)
        mp = (run_device([binary], paths, walks, repeat, tracker_process.micropython_env())
              if binary else None)
        cp = run_device([sys.executable], paths, walks, repeat, None)
        base = {n: shapely_baseline(docs[n], walks[k]) for k, n in enumerate(SIZES)}
        sizes = [p.stat().st_size for p in paths]
    rows = []
    for k, n in enumerate(SIZES):
        row = {"fences": n, "fixes": fixes,
               "cpython_engine_us": round(cp[k]["engine_us"], 2),
               "cpython_shapely_us": round(base[n], 2),
               "cpython_naive_us": round(cp[k]["naive_us"], 2),
               "events": cp[k]["events"],
               "set_bytes": sizes[k]}
        if mp:
            row.update({"micropython_engine_us": round(mp[k]["engine_us"], 2),
                        "micropython_naive_us": round(mp[k]["naive_us"], 2),
                        "micropython_ram_bytes": mp[k]["ram_bytes"]})
            assert mp[k]["events"] == cp[k]["events"], "MicroPython and CPython disagree"
        rows.append(row)
    last = rows[-1]
    summary = {
        "target_us": TARGET_US,
        "micropython_us_at_500": last.get("micropython_engine_us"),
        "meets_target": (last["micropython_engine_us"] <= TARGET_US) if mp else None,
        "micropython": "available" if mp else tracker_process.MICROPYTHON_MISSING,
    }
    if as_json:
        click.echo(json.dumps({"benchmark": "fences", "rows": rows, "summary": summary}))
        return
    click.echo(f"fence engine, µs per fix ({fixes} fixes of a 1 Hz patrol through the set's hot "
               f"spots, spread over {EXTENT_M / 1000:g} km x {EXTENT_M / 1000:g} km; best of "
               f"{repeat})")
    head = (f"{'fences':>6} {'set B':>7} {'events':>6} | {'MPy engine':>10} {'MPy naive':>10} "
            f"{'naive/eng':>9} {'MPy RAM B':>9} | {'CPy engine':>10} {'shapely':>8} "
            f"{'shapely/eng':>11}")
    click.echo(head)
    for r in rows:
        mpe = r.get("micropython_engine_us")
        mpn = r.get("micropython_naive_us")
        click.echo(
            f"{r['fences']:>6} {r['set_bytes']:>7} {r['events']:>6} | "
            + (f"{mpe:>10.1f} {mpn:>10.1f} {mpn / mpe:>8.1f}x {r['micropython_ram_bytes']:>9} | "
               if mp else f"{'-':>10} {'-':>10} {'-':>9} {'-':>9} | ")
            + f"{r['cpython_engine_us']:>10.1f} {r['cpython_shapely_us']:>8.1f} "
            f"{r['cpython_shapely_us'] / r['cpython_engine_us']:>10.1f}x")
    if mp:
        verdict = "meets" if summary["meets_target"] else "MISSES"
        click.echo(f"MicroPython at 500 fences: {last['micropython_engine_us']:.1f} µs per fix; "
                   f"{verdict} the target of {TARGET_US:g} µs")
    else:
        click.echo(f"MicroPython not measured: {tracker_process.MICROPYTHON_MISSING}")
