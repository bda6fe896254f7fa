"""Compiling hot spots: deterministic versions, bounded simplification, corrupt sets rejected."""

from __future__ import annotations

import base64
import json
import math

import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from fences.compile import compile_geojson
from fences.geo import LocalFrame
from fences.synthetic import city_fences
from fences.validate import FenceError
from tracker.fence import FenceSet

SAMPLE = "fences/sample.geojson"


def wiggly(n: int = 400, holes: bool = True) -> dict:
    """A 150 m disc with 20 cm wiggles on its outline (and a hole): much to simplify."""
    frame = LocalFrame(51_480_000, 0)

    def ring(r: float, ccw: bool) -> list[list[float]]:
        pts = []
        for k in range(n):
            a = 2 * math.pi * k / n
            rr = r + 0.2 * math.sin(37 * a)
            lon, lat = frame.to_lonlat(rr * math.cos(a), rr * math.sin(a))
            pts.append([round(lon, 8), round(lat, 8)])
        pts = pts if ccw else pts[::-1]
        return pts + [pts[0]]

    rings = [ring(150, True)] + ([ring(40, False)] if holes else [])
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "W", "name": "Wiggly", "density": 1},
        "geometry": {"type": "Polygon", "coordinates": rings}}]}


def test_same_input_gives_the_same_bytes_and_version():
    a = compile_geojson(SAMPLE)
    b = compile_geojson(json.loads(open(SAMPLE).read()))
    assert a.data == b.data and a.version == b.version
    assert len(a.version) == 12 and int(a.version, 16) >= 0
    # Key order and whitespace in the source do not matter; only content does.
    doc = json.loads(open(SAMPLE).read())
    for f in doc["features"]:
        f["properties"] = dict(reversed(list(f["properties"].items())))
    assert compile_geojson(json.dumps(doc, indent=4)).version == a.version


def test_any_content_change_changes_the_version():
    base = compile_geojson(SAMPLE, tolerance_m=0).version
    doc = json.loads(open(SAMPLE).read())
    doc["features"][0]["geometry"]["coordinates"][0][1][0] += 0.000002
    assert compile_geojson(doc, tolerance_m=0).version != base
    doc = json.loads(open(SAMPLE).read())
    doc["features"][1]["properties"]["name"] = "Maze Hill"
    assert compile_geojson(doc, tolerance_m=0).version != base


def test_wrapper_and_binary_hold_the_same_set():
    c = compile_geojson(SAMPLE)
    doc = json.loads(c.text)
    assert doc == {"format": "hsf1", "version": c.version,
                   "data": base64.b64encode(c.data).decode()}
    assert FenceSet.from_json(c.text).version == FenceSet.from_bytes(c.data).version == c.version


def test_size_report_lists_sections_and_fences():
    c = compile_geojson(SAMPLE)
    report = c.size_report()
    assert f"fence set {c.version}: 2 fences, {len(c.data)} bytes binary" in report
    assert sum(c.sections.values()) == len(c.data)
    for name in ("header", "vertices", "grid", "strings", "HS-GRN-01", "HS-GRN-02"):
        assert name in report


@pytest.mark.parametrize("tolerance_m", [0.25, 1.0, 3.0])
def test_simplification_stays_within_tolerance_and_keeps_holes(tolerance_m):
    doc = wiggly()
    c = compile_geojson(doc, tolerance_m=tolerance_m)
    (info,) = c.fences
    assert info.vertices_in == 802 and info.rings == 2
    assert info.vertices_out < info.vertices_in / 3
    assert info.shift_m <= tolerance_m + 0.1
    # Independent check of the shift: rebuild the compiled outline and measure it.
    fs = FenceSet.from_bytes(c.data)
    frame = LocalFrame(fs.lat0[0], fs.lon0[0])
    rings = []
    for r in range(fs.ring[0], fs.ring[1]):
        rings.append([frame.to_xy((fs.lon0[0] + fs.v[2 * j]) / 1e6,
                                  (fs.lat0[0] + fs.v[2 * j + 1]) / 1e6)
                      for j in range(fs.rstart[r], fs.rstart[r + 1])])
    compiled = Polygon(rings[0], rings[1:])
    source = frame.geom_to_xy(shapely.geometry.shape(doc["features"][0]["geometry"]))
    assert compiled.is_valid and len(compiled.interiors) == 1
    assert compiled.hausdorff_distance(source) <= tolerance_m + 0.1


def test_zero_tolerance_keeps_every_vertex():
    (info,) = compile_geojson(wiggly(holes=False), tolerance_m=0).fences
    assert info.vertices_out == info.vertices_in - 1  # the closing vertex is implicit


def test_simplification_never_merges_two_close_parts():
    # Two blocks 0.5 m apart: a 3 m tolerance must not join them into one polygon.
    frame = LocalFrame(51_480_000, 0)

    def block(x0: float) -> list[list[list[float]]]:
        pts = [frame.to_lonlat(x, y) for x, y in
               ((x0, 0), (x0 + 40, 0), (x0 + 40, 40), (x0, 40), (x0, 0))]
        return [[[round(lon, 8), round(lat, 8)] for lon, lat in pts]]

    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "TWO", "name": "Two", "density": 1},
        "geometry": {"type": "MultiPolygon", "coordinates": [block(0), block(40.5)]}}]}
    fs = FenceSet.from_bytes(compile_geojson(doc, tolerance_m=3).data)
    assert fs.ring[1] - fs.ring[0] == 2
    assert fs.locate(51_480_000 + 180, round(40.25 * frame.mx ** -1)) == []


@pytest.mark.parametrize("kwargs,needle", [
    ({"tolerance_m": -1}, "tolerance"),
    ({"tolerance_m": 50}, "tolerance"),
    ({"near_m": 5}, "near range"),
])
def test_bad_options_are_fence_errors(kwargs, needle):
    with pytest.raises(FenceError, match=needle):
        compile_geojson(SAMPLE, **kwargs)


def test_invalid_input_does_not_compile_and_lists_problems():
    doc = json.loads(open(SAMPLE).read())
    doc["features"][1]["properties"]["id"] = "HS-GRN-01"
    with pytest.raises(FenceError) as info:
        compile_geojson(doc)
    assert "duplicate id" in str(info.value) and "feature 1" in str(info.value)


CITY = compile_geojson(city_fences(40, vertices=12, seed=9)).data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(CITY) - 1), st.integers(1, 255)),
                min_size=1, max_size=4))
def test_fuzzed_sets_are_rejected_with_value_error(flips):
    data = bytearray(CITY)
    for at, mask in flips:
        data[at] ^= mask
    assume(bytes(data) != CITY)  # two flips of the same bits cancel out
    with pytest.raises(ValueError, match="^fence set"):
        FenceSet.from_bytes(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(CITY) - 1), st.binary(max_size=64))
def test_truncated_or_padded_sets_are_rejected(cut, tail):
    data = CITY[:cut] + tail
    if data == CITY:
        return
    with pytest.raises(ValueError, match="^fence set"):
        FenceSet.from_bytes(data)
    wrapper = json.dumps({"format": "hsf1", "version": CITY[4:16].decode(),
                          "data": base64.b64encode(data).decode()})
    with pytest.raises(ValueError, match="^fence set"):
        FenceSet.from_json(wrapper)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_garbage_is_rejected_with_value_error(blob):
    with pytest.raises(ValueError, match="^fence set"):
        FenceSet.from_json(blob)
