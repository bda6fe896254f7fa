"""Travel times over a road network the user supplies: shortest paths, not straight lines."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from fences.geo import LocalFrame
from planning.projection import to_bng
from planning.roads import RoadError, RoadNetwork

FRAME = LocalFrame(51_480_000, 0)


def _lonlat(x: float, y: float) -> list[float]:
    lon, lat = FRAME.to_lonlat(x, y)
    return [round(lon, 8), round(lat, 8)]


def _bng(x: float, y: float) -> tuple[float, float]:
    lon, lat = FRAME.to_lonlat(x, y)
    bx, by = to_bng(np.array([lon]), np.array([lat]))
    return float(bx[0]), float(by[0])


def _network(tmp_path, lines) -> RoadNetwork:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "LineString", "coordinates": [_lonlat(*p) for p in line]}}
        for line in lines]}
    path = tmp_path / "roads.geojson"
    path.write_text(json.dumps(doc))
    return RoadNetwork.load(path)


def test_a_river_between_two_points_sends_the_walk_round_by_the_bridge(tmp_path):
    # A at (0, 0) and B at (300, 0) on either bank; the only bridge is 1 km north
    net = _network(tmp_path, [[(0, 0), (0, 1000)], [(0, 1000), (300, 1000)],
                              [(300, 1000), (300, 0)]])
    points = np.array([_bng(0, 0), _bng(300, 0)])
    m = net.travel_matrix(points, 1.4)
    road_m = m[0, 1] * 1.4
    assert road_m == pytest.approx(2300, abs=5)  # not 300 m as the crow flies
    assert m[0, 1] == m[1, 0]
    # a point 20 m off the road joins it at the nearest vertex
    m2 = net.travel_matrix(np.array([_bng(0, -20), _bng(300, 0)]), 1.4)
    assert abs(m2[0, 1] * 1.4 - 2320) < 5


def test_unconnected_or_distant_points_are_errors(tmp_path):
    net = _network(tmp_path, [[(0, 0), (0, 100)], [(500, 0), (500, 100)]])
    with pytest.raises(RoadError, match="not connected"):
        net.travel_matrix(np.array([_bng(0, 0), _bng(500, 0)]), 1.4)
    with pytest.raises(RoadError, match="from the road network"):
        net.travel_matrix(np.array([_bng(0, 0), _bng(3000, 3000)]), 1.4)
    empty = tmp_path / "e.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(RoadError, match="no LineString"):
        RoadNetwork.load(empty)


def test_taskings_route_over_the_network(tmp_path):
    from planning import taskings_draw as td

    _network(tmp_path, [[(0, 0), (0, 1000)], [(0, 1000), (300, 1000)],
                        [(300, 1000), (300, 0)]])
    fences = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": f"HS-{k}", "name": k, "density": "high",
                                           "radius_m": 40},
         "geometry": {"type": "Point", "coordinates": _lonlat(x, 0)}}
        for k, x in (("A", 0), ("B", 300))]}
    path = tmp_path / "h.geojson"
    path.write_text(json.dumps(fences))
    settings = td.Settings(seed=1, shifts=[td.Shift.parse("day=08:00-16:00")],
                           assignees={"day": ["4521"]}, visits=1, window_min=240,
                           station=tuple(_lonlat(0, 0)))
    straight = td.draw(td.load_targets(path), dt.date(2026, 3, 2), dt.date(2026, 3, 2),
                       settings)
    settings.roads = str(tmp_path / "roads.geojson")
    road = td.draw(td.load_targets(path), dt.date(2026, 3, 2), dt.date(2026, 3, 2), settings)
    # station -> A -> B -> station: 0 + 2300 + 2300 m over the bridge, against 2 x 300 x 1.3
    assert abs(road.travel_s * 1.4 - 4600) < 10
    assert abs(straight.travel_s * 1.4 - 2 * 300 * 1.3) < 10
