"""Visits computed from positions against the walk simulator's exact ground truth.

Four officers each walk a beat through six hot spots (squares, a circle, a polygon with a hole;
on both sides of the Greenwich meridian), stopping 5-12 minutes in each. The simulator knows the
exact enter and leave times. From their positions alone (no transitions):

* trackers reporting every 10 s with GNSS noise: dwell per visit within 15 s at the 95th
  percentile;
* Airwave radios reporting every 2-5 minutes: every visit found, and its enter and leave each
  within the interval between the two reports around the true crossing.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from shapely.geometry import LineString

from fences.geo import LocalFrame
from gateway.reports.visits import HotSpotSet, compute_visits
from simulators.walk import Walk, load_hotspots

FRAME = LocalFrame(51_480_000, 0)
T0 = 1_772_442_000  # 2026-03-02T09:00:00Z
CENTRES = [(-900, 0), (-450, 150), (0, 0), (450, -150), (900, 0), (1350, 200)]


def _ring(cx: float, cy: float, half: float, ccw: bool = True) -> list[list[float]]:
    pts = [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half),
           (cx - half, cy + half)]
    if not ccw:
        pts.reverse()
    ring = [list(FRAME.to_lonlat(x, y)) for x, y in pts]
    return [*ring, ring[0]]


def _fences() -> dict:
    features = []
    for i, (cx, cy) in enumerate(CENTRES):
        props = {"id": f"HS-{i}", "name": f"Hot spot {i}", "density": "high"}
        if i == 2:
            props["radius_m"] = 60
            geom = {"type": "Point", "coordinates": list(FRAME.to_lonlat(cx, cy))}
        elif i == 4:  # a yard in the middle that is not part of the hot spot
            geom = {"type": "Polygon", "coordinates": [_ring(cx, cy, 70),
                                                       _ring(cx + 35, cy + 35, 15, ccw=False)]}
        else:
            geom = {"type": "Polygon", "coordinates": [_ring(cx, cy, 55)]}
        features.append({"type": "Feature", "properties": props, "geometry": geom})
    return {"type": "FeatureCollection", "features": features}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Four walks through the hot spots; their samples and truth."""
    path = tmp_path_factory.mktemp("truth") / "fences.geojson"
    path.write_text(json.dumps(_fences()))
    polygons = load_hotspots(path, FRAME)
    rng = random.Random(9)
    walks = []
    for officer in range(4):
        # Beats run west to east or east to west, detouring north or south between hot spots:
        # the simulator's truth assumes a route that never crosses itself.
        order = list(range(len(CENTRES)))
        if officer % 2:
            order.reverse()
        side = 260 if officer < 2 else -260
        coords = [(CENTRES[order[0]][0] - 300, CENTRES[order[0]][1] + side)]
        stops = {}
        for k in order:
            cx, cy = CENTRES[k]
            coords.append((cx + rng.uniform(-8, 8), cy + rng.uniform(-8, 8)))
            stops[len(coords) - 1] = rng.uniform(300, 720)
            coords.append((cx + rng.uniform(-40, 40), cy + side))  # out of the hot spot
        walk = Walk(LineString(coords), FRAME, T0 + officer * 97, 1.4, stops, polygons)
        samples = list(walk.samples(noise_m=3.0, seed=officer + 1, step_s=1.0))
        walks.append((walk, samples))
    return HotSpotSet.load(path), walks


def _store(db, device: str, samples, acc: float, source: str) -> None:
    db.conn.executemany(
        "INSERT INTO positions (device_id, seq, source, tst, lat, lon, acc_m)"
        " VALUES (?,?,?,?,?,?,?)",
        [(device, i + 1, source, int(s.t), round(s.reported_lat, 6), round(s.reported_lon, 6),
          acc) for i, s in enumerate(samples)])


def _stays(walk):
    """True visits well over the minimum visit (60 s): a beat also cuts corners of hot spots on
    the way between them, and a cut near 60 s may fall either side of the rule."""
    return [tv for tv in walk.visits() if tv.dwell_s >= 90]


def _no_phantoms(walk, visits) -> None:
    """Every computed visit overlaps a true one."""
    truth = walk.visits()
    for v in visits:
        assert any(t.hotspot == v.hotspot and t.leave > v.enter and t.enter < v.leave
                   for t in truth), f"phantom visit {v}"


def _match(truth, visits):
    """Each true visit with the computed visit of the same hot spot it overlaps most."""
    pairs = []
    for tv in truth:
        best = max((v for v in visits if v.hotspot == tv.hotspot),
                   key=lambda v: min(v.leave, tv.leave) - max(v.enter, tv.enter), default=None)
        assert best is not None and best.leave > tv.enter and best.enter < tv.leave, \
            f"true visit {tv} not found"
        pairs.append((tv, best))
    return pairs


def test_tracker_positions_every_10_s_give_dwell_within_15_s_p95(db, scenario):
    hotspots, walks = scenario
    truth_count = 0
    errors = []
    for n, (walk, samples) in enumerate(walks):
        device = f"T-{n}"
        _store(db, device, samples[::10], 5.0, "tracker")
        truth = _stays(walk)
        visits = [v for v in compute_visits(db, hotspots) if v.device_id == device]
        _no_phantoms(walk, visits)
        truth_count += len(truth)
        errors += [abs(v.dwell_s - tv.dwell_s) for tv, v in _match(truth, visits)]
    assert truth_count >= 24  # at least the stops
    assert np.percentile(errors, 95) <= 15, sorted(errors)


def test_radio_reports_every_2_to_5_minutes_stay_within_the_ping_interval(db, scenario):
    hotspots, walks = scenario
    rng = random.Random(5)
    for n, (walk, samples) in enumerate(walks):
        device = f"{2001 + n}"
        picks, t = [], 0
        while t < len(samples):
            picks.append(samples[t])
            t += rng.randint(120, 300)
        picks.append(samples[-1])  # the radio still reports once the beat is over
        _store(db, device, picks, 20.0, "airwave")
        times = [p.t for p in picks]
        visits = [v for v in compute_visits(db, hotspots) if v.device_id == device]
        _no_phantoms(walk, visits)
        for tv, v in _match(_stays(walk), visits):
            for true_t, got in ((tv.enter, v.enter), (tv.leave, v.leave)):
                before = max((x for x in times if x <= true_t), default=times[0])
                after = min((x for x in times if x >= true_t), default=times[-1])
                assert abs(got - true_t) <= after - before, (tv, v)
