"""Differential test: the device's integer engine against shapely on generated hot spots.

Hypothesis draws star-shaped polygons (some with holes, some in two parts) and circles around
the Greenwich meridian at UK latitudes, and points around them. Points within 0.2 m of a
boundary are left out (the device rounds vertices to micro-degrees: a few centimetres); every
other point must be classified exactly as shapely does, and boundary distances must agree to
within 0.75 m (the device works in quarter metres).
"""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from fences.compile import compile_geojson
from fences.geo import LocalFrame
from fences.reference import ReferenceFences
from fences.synthetic import star_ring
from tracker.fence import FenceSet

BAND_M = 0.2
DIST_TOL_M = 0.75


@st.composite
def hot_spot_sets(draw):
    lat_e6 = draw(st.integers(50_000_000, 58_500_000))
    lon_e6 = draw(st.integers(-2_000, 2_000))  # every set straddles or touches the meridian
    frame = LocalFrame(lat_e6, lon_e6)
    rng = random.Random(draw(st.integers(0, 2**32)))
    features = []
    for k in range(draw(st.integers(1, 4))):
        cx = -300.0 + 200 * k
        cy = draw(st.floats(-50, 50))
        radius = draw(st.floats(20, 90))
        kind = draw(st.sampled_from(["star", "holed", "multi", "circle"]))
        props = {"id": f"G-{k}", "name": f"generated {k}", "density": 1}
        if kind == "circle":
            lon, lat = frame.to_lonlat(cx, cy)
            props["radius_m"] = round(radius, 2)
            geom = {"type": "Point", "coordinates": [lon, lat]}
        elif kind == "multi":
            a = star_ring(rng, frame, cx - radius / 2, cy, radius / 2.5, draw(st.integers(3, 12)))
            b = star_ring(rng, frame, cx + radius / 2, cy, radius / 2.5, draw(st.integers(3, 12)))
            geom = {"type": "MultiPolygon", "coordinates": [[a], [b]]}
        else:
            # With eight corners or more the shell stays clear of a hole of a quarter radius.
            corners = draw(st.integers(8 if kind == "holed" else 3, 30))
            rings = [star_ring(rng, frame, cx, cy, radius, corners)]
            if kind == "holed":
                rings.append(star_ring(rng, frame, cx, cy, radius * 0.25, 5, ccw=False))
            geom = {"type": "Polygon", "coordinates": rings}
        features.append({"type": "Feature", "properties": props, "geometry": geom})
    doc = {"type": "FeatureCollection", "features": features}
    points = draw(st.lists(st.tuples(st.floats(-420, 420), st.floats(-160, 160)),
                           min_size=20, max_size=60))
    pts = []
    for x, y in points:
        lon, lat = frame.to_lonlat(x, y)
        pts.append((round(lat * 1e6), round(lon * 1e6)))
    return doc, pts


@settings(max_examples=150, deadline=None)
@given(hot_spot_sets())
def test_engine_agrees_with_shapely_away_from_edges(case):
    doc, points = case
    ref = ReferenceFences(doc)
    fs = FenceSet.from_bytes(compile_geojson(doc, tolerance_m=0).data)
    assert list(fs.ids) == ref.ids
    compared = 0
    for lat, lon in points:
        depths = [ref.depth_m(i, lat, lon) for i in range(len(ref))]
        if any(abs(d) < BAND_M for d in depths):
            continue
        assert fs.locate(lat, lon) == ref.locate(lat, lon), (lat, lon, depths)
        compared += 1
        for i, d in enumerate(depths):
            q = fs.depth_q(i, lat, lon)
            if q == -(1 << 29):
                assert d < -200  # beyond the near range: no distance computed
                continue
            assert math.isclose(q / 4, d, abs_tol=DIST_TOL_M), (i, lat, lon, q / 4, d)
            compared += 1
    assert compared > 0


def test_points_straddling_the_meridian_on_a_fine_grid():
    # One hot spot centred on the meridian; a 2 m grid across its west and east edges and
    # across longitude 0 itself, where micro-degree offsets change sign.
    frame = LocalFrame(51_480_000, 0)
    rng = random.Random(5)
    ring = star_ring(rng, frame, 0.0, 0.0, 80.0, 24)
    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "MER", "name": "meridian", "density": 1},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    ref = ReferenceFences(doc)
    fs = FenceSet.from_bytes(compile_geojson(doc, tolerance_m=0).data)
    checked = 0
    for ix in range(-50, 51):
        for iy in range(-50, 51, 5):
            lon, lat = frame.to_lonlat(ix * 2.0, iy * 2.0)
            lat_e6, lon_e6 = round(lat * 1e6), round(lon * 1e6)
            d = ref.depth_m(0, lat_e6, lon_e6)
            if abs(d) < BAND_M:
                continue
            assert (fs.locate(lat_e6, lon_e6) == [0]) == (d > 0), (ix, iy, d)
            assert abs(fs.depth_q(0, lat_e6, lon_e6) / 4 - d) <= DIST_TOL_M
            checked += 1
    assert checked > 900
