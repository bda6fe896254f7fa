"""Patrol shifts for several officers, with ground truth for every hot spot visit (seeded).

A scenario is a patrol area with hot spots (from :mod:`fences.synthetic`) and, per officer, a
:class:`~simulators.walk.Walk`: from a start point to a hot spot, a 10-16 minute visit standing
and moving about near the middle of it, on to the next hot spot, and so on until the shift is
over. Legs are not straight: a detour point bends them, and some detours clip the edge of
another hot spot, so short pass-throughs happen the way they do on the street. The walk gives the
exact visits (shapely, in a local metric frame); on top of it each officer gets:

* noisy GNSS: AR(1) wander as in :meth:`Walk.samples`, 2-4 m per officer;
* GNSS dead spots (underpasses, shopping centres) on the legs between hot spots: no fix at all;
* cellular dead spots: stretches of time without coverage, where an upload fails.

Everything is reproducible from the seed. The per-second trace is built with numpy
(vectorised interpolation along the route), so a 10-hour shift takes milliseconds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import polylabel

from fences.geo import LocalFrame
from fences.synthetic import CITY_LAT_E6, CITY_LON_E6, city_fences
from simulators.walk import Visit, Walk, hotspots_xy

#: 2026-01-01 08:00 UTC: shifts start here (a day shift).
SHIFT_START = 1_767_254_400


@dataclass
class Trace:
    """What the GNSS module and the network offer an officer's tracker, second by second.

    Arrays are indexed by second since ``t0``. Positions are the *reported* (noisy) ones, in
    integer micro-degrees as the device sees them; ``speed_cmps`` is speed over ground (Doppler
    speed is good to ~0.1 m/s, so it is taken from the true track).
    """

    t0: int
    lat_e6: np.ndarray
    lon_e6: np.ndarray
    speed_cmps: np.ndarray
    gnss_ok: np.ndarray  # False in a GNSS dead spot
    cell_ok: np.ndarray  # False without cellular coverage
    acc_cm: int  # horizontal accuracy the receiver reports

    def __len__(self) -> int:
        return len(self.lat_e6)


@dataclass
class OfficerShift:
    """One officer's shift: the walk, the ground truth and the trace."""

    collar: str
    walk: Walk
    truth: list[Visit]
    trace: Trace
    noise_m: float
    gnss_outages: list[tuple[int, int]] = field(default_factory=list)
    cell_outages: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Scenario:
    """Hot spots (GeoJSON, for the compiler and the gateway) and the officers' shifts."""

    fences: dict
    officers: list[OfficerShift]
    hours: float
    seed: int


def _largest_part(geom):
    parts = getattr(geom, "geoms", [geom])
    return max(parts, key=lambda g: g.area)


def _visit_spot(rng: random.Random, poly) -> tuple[float, float, float]:
    """Where an officer stands in a hot spot: near its most interior point; and how much room
    there is to move about (metres) without leaving it."""
    part = _largest_part(poly)
    centre = polylabel(part, tolerance=1.0)
    room = part.exterior.distance(centre)
    for interior in part.interiors:
        room = min(room, interior.distance(centre))
    wobble = min(12.0, room * 0.3)
    return centre.x + rng.uniform(-wobble, wobble), centre.y + rng.uniform(-wobble, wobble), room


def _edge_clip(rng: random.Random, poly, near: tuple[float, float]) -> tuple[float, float]:
    """A point 8-25 m inside ``poly`` near its edge closest to ``near``: a route through it
    clips the hot spot for a short pass-through."""
    part = _largest_part(poly)
    edge = part.exterior
    p = edge.interpolate(edge.project(Point(near)))
    c = polylabel(part, tolerance=1.0)
    dist = math.hypot(c.x - p.x, c.y - p.y) or 1.0
    depth = min(rng.uniform(8, 25), dist * 0.5)
    return p.x + (c.x - p.x) * depth / dist, p.y + (c.y - p.y) * depth / dist


def _officer_route(rng: random.Random, spots: dict[str, object], half: float, hours: float,
                   speed: float) -> tuple[list[tuple[float, float]], dict[int, float]]:
    """Vertices (local metres) and stops (vertex index -> seconds) for one shift."""
    ids = sorted(spots)
    x, y = rng.uniform(-half, half), rng.uniform(-half, half)
    coords = [(x, y)]
    stops: dict[int, float] = {}
    elapsed = 0.0
    current = None
    while elapsed < hours * 3600:
        # Next hot spot: one of the four nearest that is not the one just left.
        def dist_to(hid: str, px: float = x, py: float = y) -> float:
            c = spots[hid].centroid
            return math.hypot(c.x - px, c.y - py)

        choices = sorted((h for h in ids if h != current), key=dist_to)[:4]
        target = rng.choice(choices)
        sx, sy, room = _visit_spot(rng, spots[target])
        # Bend the leg: a detour point off the straight line, sometimes clipping another hot
        # spot's edge (a pass-through).
        mx, my = (x + sx) / 2, (y + sy) / 2
        others = [h for h in ids if h not in (target, current)]
        clip = rng.random() < 0.5 and others
        if clip:
            other = min(others, key=lambda h: spots[h].distance(Point(mx, my)))
            if spots[other].distance(Point(mx, my)) < 400:
                mx, my = _edge_clip(rng, spots[other], (mx, my))
            else:
                clip = False
        if not clip:
            length = math.hypot(sx - x, sy - y) or 1.0
            off = rng.uniform(-0.25, 0.25) * length
            mx += -(sy - y) / length * off
            my += (sx - x) / length * off
        for px, py in ((mx, my), (sx, sy)):
            elapsed += math.hypot(px - coords[-1][0], py - coords[-1][1]) / speed
            coords.append((px, py))
        # The visit: 10-16 minutes, in two to four stops a few metres apart (never near the
        # edge: the officer is *in* the hot spot, not on its boundary).
        stay = rng.uniform(600, 960)
        pieces = rng.randint(2, 4)
        step = min(6.0, room * 0.2)
        for k in range(pieces):
            if k:
                px = sx + rng.uniform(-step, step)
                py = sy + rng.uniform(-step, step)
                elapsed += math.hypot(px - coords[-1][0], py - coords[-1][1]) / speed
                coords.append((px, py))
            stops[len(coords) - 1] = stay / pieces
            elapsed += stay / pieces
        x, y = coords[-1]
        current = target
    return coords, stops


def _outages(rng: random.Random, n: int, duration: int, lo: int, hi: int,
             allowed=None) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    tries = 0
    while len(out) < n and tries < 200 * max(1, n):
        tries += 1
        length = rng.randint(lo, hi)
        start = rng.randrange(0, max(1, duration - length))
        if allowed is not None and not allowed(start, start + length):
            continue
        if any(a < start + length + 60 and start < b + 60 for a, b in out):
            continue
        out.append((start, start + length))
    return sorted(out)


def trace_from_walk(walk: Walk, noise_m: float, seed: int,
                    gnss_outages: list[tuple[int, int]] = (),
                    cell_outages: list[tuple[int, int]] = ()) -> Trace:
    """Per-second trace of a walk: AR(1) GNSS noise (as :meth:`Walk.samples`), dead spots."""
    ktimes, kdist = np.array(walk.knots).T
    n = int(walk.duration_s) + 1
    elapsed = np.arange(n, dtype=np.float64)
    dist = np.interp(elapsed, ktimes, kdist)
    pts = shapely.line_interpolate_point(walk.route, dist)
    xy = shapely.get_coordinates(pts)
    rng = np.random.default_rng(seed)
    keep = 0.9
    kicks = rng.normal(0.0, noise_m * math.sqrt(1 - keep * keep), (n, 2))
    err = np.empty_like(kicks)
    e = np.zeros(2)
    for i in range(n):
        e = keep * e + kicks[i]
        err[i] = e
    frame = walk.projection
    rx = xy[:, 0] + err[:, 0]
    ry = xy[:, 1] + err[:, 1]
    lat, lon = frame.xy_to_e6(rx, ry)
    lat_e6 = np.rint(lat).astype(np.int64)
    lon_e6 = np.rint(lon).astype(np.int64)
    speed = np.zeros(n)
    speed[1:] = np.hypot(np.diff(xy[:, 0]), np.diff(xy[:, 1]))
    gnss_ok = np.ones(n, bool)
    for a, b in gnss_outages:
        gnss_ok[a:b] = False
    cell_ok = np.ones(n, bool)
    for a, b in cell_outages:
        cell_ok[a:b] = False
    return Trace(int(walk.start), lat_e6, lon_e6, np.rint(speed * 100).astype(np.int64),
                 gnss_ok, cell_ok, int(round(noise_m * 150)))


def make_scenario(officers: int = 4, hours: float = 10.0, seed: int = 1, hotspots: int = 14,
                  extent_m: float = 2400.0) -> Scenario:
    """Shifts of ``officers`` officers, ``hours`` long, among ``hotspots`` hot spots.

    :param extent_m: side of the square patrol area; hot spots are 60-180 m across-ish stars,
        circles, two-part and holed polygons, a few hundred metres apart.
    """
    doc = city_fences(hotspots, vertices=12, seed=seed, extent_m=extent_m)
    frame = LocalFrame(CITY_LAT_E6, CITY_LON_E6)
    spots = hotspots_xy(doc, frame)
    union = shapely.union_all(list(spots.values()))
    shapely.prepare(union)
    rng = random.Random(seed)
    shifts = []
    for k in range(officers):
        speed = rng.uniform(1.2, 1.6)
        noise = rng.uniform(2.0, 4.0)
        coords, stops = _officer_route(rng, spots, extent_m / 2 - 200, hours, speed)
        walk = Walk(LineString(coords), frame, SHIFT_START, speed, stops, spots)
        # Trim the last leg's overshoot: the shift ends on time.
        duration = int(min(walk.duration_s, hours * 3600))
        walk.duration_s = float(duration)
        truth = walk.visits()

        def far_from_fences(a: int, b: int, walk: Walk = walk) -> bool:
            for s in range(a, b + 1, 10):
                p = walk.route.interpolate(walk.distance_at(s))
                if union.distance(p) < 60:
                    return False
            return True

        hours_n = max(1, round(hours))
        gnss_out = _outages(rng, hours_n // 2 + 1, duration, 30, 120, far_from_fences)
        cell_out = _outages(rng, hours_n // 2 + 1, duration, 300, 1200)
        trace = trace_from_walk(walk, noise, seed * 1000 + k, gnss_out, cell_out)
        shifts.append(OfficerShift(f"{10001 + k}", walk, truth, trace, noise, gnss_out,
                                   cell_out))
    return Scenario(doc, shifts, hours, seed)
