"""A simulated officer walking a route, with exact ground truth for every hot spot visit.

The walker moves along a GeoJSON LineString at a steady pace, optionally stopping at vertices
(``stops`` property: ``[[vertex_index, seconds], ...]``). Positions are computed in a local metric
projection around the route, so a walk that crosses the Greenwich meridian is no different from
one that does not. Ground truth visits come from intersecting the route with each hot spot in the
same projection: the enter and leave times are exact, not sampled.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry import LineString, Point, shape

from fences.geo import LocalFrame


class RouteError(ValueError):
    """The route file is not a usable LineString."""


@dataclass
class Sample:
    """Where the walker truly is at second ``t``, and what the GNSS module reports."""

    t: float
    lat: float
    lon: float
    speed_mps: float
    course_deg: float
    inside: list[str]
    reported_lat: float
    reported_lon: float


@dataclass
class Visit:
    """One ground-truth stay in a hot spot: ``enter`` and ``leave`` in epoch seconds."""

    hotspot: str
    enter: float
    leave: float

    @property
    def dwell_s(self) -> float:
        return self.leave - self.enter


@dataclass
class Walk:
    """A walker on a route: positions over time and the true visits."""

    route: LineString  # in local metres
    projection: LocalFrame
    start: float
    speed_mps: float = 1.4
    stops: dict[int, float] = field(default_factory=dict)
    hotspots: dict[str, object] = field(default_factory=dict)  # id -> polygon in local metres

    def __post_init__(self) -> None:
        # Timeline: (elapsed seconds, distance along the route) knots, at each vertex and at the
        # end of each stop; walking between them, standing at stops.
        coords = list(self.route.coords)
        self.knots: list[tuple[float, float]] = [(0.0, 0.0)]
        t = distance = 0.0
        for index in range(len(coords)):
            if index > 0:
                step = math.dist(coords[index - 1], coords[index])
                t += step / self.speed_mps
                distance += step
                self.knots.append((t, distance))
            pause = self.stops.get(index, 0.0)
            if pause:
                t += pause
                self.knots.append((t, distance))
        self.duration_s = t

    def distance_at(self, elapsed: float) -> float:
        """Distance along the route after ``elapsed`` seconds."""
        knots = self.knots
        if elapsed <= 0:
            return 0.0
        for (t0, d0), (t1, d1) in zip(knots, knots[1:], strict=False):
            if elapsed <= t1:
                return d0 if t1 == t0 else d0 + (d1 - d0) * (elapsed - t0) / (t1 - t0)
        return knots[-1][1]

    def visits(self) -> list[Visit]:
        """Exact ground-truth visits, segment by segment.

        Each straight segment is intersected with each hot spot on its own, where position is
        linear in time, and the inside intervals are joined through the stops; so a route that
        comes back to a hot spot, or moves about inside one, gets each of its visits right.
        """
        coords = list(self.route.coords)
        speed = self.speed_mps
        end_t = self.start + self.duration_s
        intervals: dict[str, list[list[float]]] = {h: [] for h in self.hotspots}
        depart = self.start + self.stops.get(0, 0.0)
        for hid, poly in self.hotspots.items():
            if poly.contains(Point(coords[0])) and self.stops.get(0):
                intervals[hid].append([self.start, depart])
        for i in range(1, len(coords)):
            a, b = coords[i - 1], coords[i]
            length = math.dist(a, b)
            arrive = depart + length / speed
            stop = self.stops.get(i, 0.0)
            if length > 0:
                seg = LineString([a, b])
                for hid, poly in self.hotspots.items():
                    if not seg.intersects(poly):
                        continue
                    inside = seg.intersection(poly)
                    for piece in getattr(inside, "geoms", [inside]):
                        if piece.is_empty or piece.length == 0:
                            continue
                        d = sorted(math.dist(a, c) for c in (piece.coords[0], piece.coords[-1]))
                        t0 = depart + d[0] / speed
                        t1 = depart + d[1] / speed
                        if stop and abs(d[1] - length) < 1e-6:
                            t1 = arrive + stop  # standing at the vertex, still inside
                        intervals[hid].append([t0, t1])
            depart = arrive + stop
        out = []
        for hid, spans in intervals.items():
            spans.sort()
            merged: list[list[float]] = []
            for t0, t1 in spans:
                if merged and t0 - merged[-1][1] < 1e-6:
                    merged[-1][1] = max(merged[-1][1], t1)
                else:
                    merged.append([t0, t1])
            for t0, t1 in merged:
                if t0 < end_t:
                    out.append(Visit(hid, t0, min(t1, end_t)))
        out.sort(key=lambda v: v.enter)
        return out

    def samples(self, noise_m: float = 2.0, seed: int = 1, step_s: float = 1.0) -> Iterator[Sample]:
        """One sample per ``step_s`` from start to end, with correlated GNSS noise."""
        rng = random.Random(seed)
        # First-order autoregressive noise: GNSS errors wander slowly rather than jump.
        ex = ey = 0.0
        keep = 0.9
        kick = noise_m * math.sqrt(1 - keep * keep)
        previous = None
        steps = int(self.duration_s // step_s) + 1
        for i in range(steps):
            elapsed = i * step_s
            point = self.route.interpolate(self.distance_at(elapsed))
            ex = keep * ex + rng.gauss(0, kick)
            ey = keep * ey + rng.gauss(0, kick)
            lon, lat = self.projection.to_lonlat(point.x, point.y)
            rlon, rlat = self.projection.to_lonlat(point.x + ex, point.y + ey)
            speed = course = 0.0
            if previous is not None:
                dx, dy = point.x - previous.x, point.y - previous.y
                speed = math.hypot(dx, dy) / step_s
                course = math.degrees(math.atan2(dx, dy)) % 360 if speed > 0.05 else 0.0
            previous = point
            inside = [hid for hid, poly in self.hotspots.items() if poly.contains(point)]
            yield Sample(self.start + elapsed, lat, lon, speed, course, inside, rlat, rlon)


def load_route(path: str | Path) -> tuple[list[tuple[float, float]], dict]:
    """Coordinates and properties of the first LineString in a GeoJSON file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RouteError(f"cannot read route {path}: {exc}") from exc
    features = data.get("features", [data]) if isinstance(data, dict) else []
    for feature in features:
        geometry = feature.get("geometry", feature)
        if geometry.get("type") == "LineString" and len(geometry.get("coordinates", [])) >= 2:
            return [tuple(c[:2]) for c in geometry["coordinates"]], feature.get("properties") or {}
    raise RouteError(f"{path}: no LineString with at least two points")


def load_hotspots(path: str | Path, projection: LocalFrame) -> dict[str, object]:
    """Hot spots of a fences GeoJSON file as polygons in local metres, keyed by id."""
    return hotspots_xy(json.loads(Path(path).read_text()), projection)


def hotspots_xy(doc: dict, projection: LocalFrame) -> dict[str, object]:
    """Hot spots of a fences GeoJSON document as polygons in local metres, keyed by id.

    Circles (a Point with ``radius_m``) become 256-gons (64 segments a quarter).
    """
    out = {}
    for index, feature in enumerate(doc.get("features", [])):
        props = feature.get("properties") or {}
        hotspot_id = str(props.get("id", feature.get("id", index)))
        geom = shape(feature["geometry"])
        if geom.geom_type == "Point":
            x, y = projection.to_xy(geom.x, geom.y)
            out[hotspot_id] = Point(x, y).buffer(float(props["radius_m"]), 64)
        else:
            out[hotspot_id] = projection.geom_to_xy(geom)
    return out


def replay_start(duration_s: float, speedup: float, now: float | None = None) -> float:
    """A start time (whole minute) such that a walk played at ``speedup`` never has a fix time
    later than the wall clock: the gateway rightly flags fixes from the future.

    ``speedup`` 0 means as fast as possible: the whole walk lies in the past.
    """
    now = time.time() if now is None else now
    ahead = duration_s if speedup <= 0 else max(0.0, duration_s * (1 - 1 / speedup))
    return float(int(now - ahead) // 60 * 60)


def make_walk(
    route_path: str | Path,
    fences_path: str | Path | None,
    start: float,
    speed_mps: float | None = None,
) -> Walk:
    """Build a :class:`Walk` from a route file and (optionally) a fences file."""
    coords, props = load_route(route_path)
    lon0 = sum(c[0] for c in coords) / len(coords)
    lat0 = sum(c[1] for c in coords) / len(coords)
    projection = LocalFrame(round(lat0 * 1e6), round(lon0 * 1e6))
    route = LineString([projection.to_xy(lon, lat) for lon, lat in coords])
    stops = {int(v): float(s) for v, s in props.get("stops", [])}
    speed = speed_mps or float(props.get("speed_mps", 1.4))
    hotspots = load_hotspots(fences_path, projection) if fences_path else {}
    return Walk(route, projection, start, speed, stops, hotspots)
