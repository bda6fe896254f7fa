"""Synthetic hot spot sets and walks for tests and benchmarks (deterministic, seeded).

A city-sized area straddling the Greenwich meridian is filled with star-shaped polygons (some with
a hole, some as two-part MultiPolygons) and circles, the way a force's hot spot map looks: many
small areas, a few hundred metres to several kilometres apart.
"""

from __future__ import annotations

import math
import random

from fences.geo import LocalFrame

#: Centre of the synthetic city: Greenwich, on the meridian.
CITY_LAT_E6 = 51_480_000
CITY_LON_E6 = 0


def star_ring(rng: random.Random, frame: LocalFrame, cx: float, cy: float, radius_m: float,
              vertices: int, ccw: bool = True) -> list[list[float]]:
    """A closed star-shaped ring (simple by construction) around ``(cx, cy)`` local metres."""
    # Keep vertices apart so that rounding to micro-degrees never collapses two of them.
    angles = [2 * math.pi * k / vertices + rng.uniform(-0.3, 0.3) * math.pi / vertices
              for k in range(vertices)]
    pts = []
    for a in angles:
        r = radius_m * rng.uniform(0.55, 1.0)
        lon, lat = frame.to_lonlat(cx + r * math.cos(a), cy + r * math.sin(a))
        pts.append([round(lon, 7), round(lat, 7)])
    if not ccw:
        pts.reverse()
    pts.append(list(pts[0]))
    return pts


def city_fences(n: int, vertices: int = 20, seed: int = 1, extent_m: float = 20_000.0,
                holes: bool = True, circles: bool = True) -> dict:
    """Return a FeatureCollection of ``n`` hot spots scattered over ``extent_m`` square.

    Every fifth feature has a hole, every seventh is a two-part MultiPolygon, every eleventh is a
    circle (when enabled); the rest are star-shaped polygons with ``vertices`` corners.
    """
    rng = random.Random(seed)
    frame = LocalFrame(CITY_LAT_E6, CITY_LON_E6)
    features = []
    placed: list[tuple[float, float, float]] = []
    half = extent_m / 2
    while len(features) < n:
        k = len(features)
        radius = rng.uniform(60.0, 180.0)
        cx = rng.uniform(-half + radius, half - radius)
        cy = rng.uniform(-half + radius, half - radius)
        if any(math.hypot(cx - x, cy - y) < radius + r + 20 for x, y, r in placed):
            continue  # hot spots do not overlap in this set (they may in real ones)
        placed.append((cx, cy, radius))
        props = {"id": f"HS-{k:04d}", "name": f"Synthetic hot spot {k}",
                 "density": k % 5}
        if circles and k % 11 == 10:
            lon, lat = frame.to_lonlat(cx, cy)
            props["radius_m"] = round(radius * 0.7, 1)
            geom = {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}
        elif k % 7 == 6:
            a = star_ring(rng, frame, cx - radius / 2, cy, radius / 2.2, max(3, vertices // 2))
            b = star_ring(rng, frame, cx + radius / 2, cy, radius / 2.2, max(3, vertices // 2))
            geom = {"type": "MultiPolygon", "coordinates": [[a], [b]]}
        else:
            shell = star_ring(rng, frame, cx, cy, radius, vertices)
            rings = [shell]
            if holes and k % 5 == 4:
                rings.append(star_ring(rng, frame, cx, cy, radius * 0.3, 6, ccw=False))
            geom = {"type": "Polygon", "coordinates": rings}
        features.append({"type": "Feature", "properties": props, "geometry": geom})
    return {"type": "FeatureCollection", "features": features}


def city_walk(n: int, seed: int = 2, extent_m: float = 20_000.0, step_m: float = 40.0,
              ) -> list[tuple[int, int]]:
    """``n`` positions (lat_e6, lon_e6) of a random walk across the city, ``step_m`` apart.

    Steps are long (a vehicle, or a sparse ping rate) so that a short walk still meets many
    hot spots; the walk turns back at the edge of the area.
    """
    rng = random.Random(seed)
    frame = LocalFrame(CITY_LAT_E6, CITY_LON_E6)
    half = extent_m / 2 - 100
    x = y = 0.0
    heading = rng.uniform(0, 2 * math.pi)
    out = []
    for _ in range(n):
        heading += rng.gauss(0, 0.3)
        nx = x + step_m * math.cos(heading)
        ny = y + step_m * math.sin(heading)
        if abs(nx) > half or abs(ny) > half:
            heading += math.pi
            continue
        x, y = nx, ny
        lon, lat = frame.to_lonlat(x, y)
        out.append((round(lat * 1e6), round(lon * 1e6)))
    while len(out) < n:
        out.append(out[-1])
    return out
