"""Hot spot validation: every message names the feature and says what to fix."""

from __future__ import annotations

import copy
import json

import pytest

from fences.validate import FenceError, validate

SQUARE = [[-0.0030, 51.4800], [-0.0008, 51.4800], [-0.0008, 51.4814], [-0.0030, 51.4814],
          [-0.0030, 51.4800]]


def feature(fid="HS-1", geometry=None, **props):
    p = {"id": fid, "name": "A hot spot", "density": "high"}
    p.update(props)
    return {"type": "Feature", "properties": p,
            "geometry": geometry or {"type": "Polygon", "coordinates": [SQUARE]}}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def messages(doc, level="error"):
    return [str(p) for p in validate(doc).problems if p.level == level]


def test_sample_file_is_clean():
    report = validate("fences/sample.geojson")
    assert report.ok and not report.problems
    assert [h.fence_id for h in report.hotspots] == ["HS-GRN-01", "HS-GRN-02"]
    assert [h.density for h in report.hotspots] == [3, 2]


BOWTIE = [[0.0, 51.48], [0.002, 51.4815], [0.002, 51.48], [0.0, 51.4815], [0.0, 51.48]]
TINY = [[0.0, 51.48], [0.00005, 51.48], [0.00005, 51.48005], [0.0, 51.48005], [0.0, 51.48]]
HUGE = [[0.0, 51.48], [0.03, 51.48], [0.03, 51.50], [0.0, 51.50], [0.0, 51.48]]
HOLE_OUT = [[0.01, 51.49], [0.0101, 51.49], [0.0101, 51.4901], [0.01, 51.49]]

ERRORS = [
    ("self-intersection", feature(geometry={"type": "Polygon", "coordinates": [BOWTIE]}),
     ["'HS-1'", "Self-intersection", "near latitude", "does not cross itself"]),
    ("too small", feature(geometry={"type": "Polygon", "coordinates": [TINY]}),
     ["'HS-1'", "implausibly small", "check the coordinates"]),
    ("too large", feature(geometry={"type": "Polygon", "coordinates": [HUGE]}),
     ["'HS-1'", "implausibly large", "split it"]),
    ("longitude out of range", feature(geometry={"type": "Polygon", "coordinates": [
        [[181.0, 51.48], [181.001, 51.48], [181.001, 51.481], [181.0, 51.48]]]}),
     ["'HS-1'", "ring 0 position 0", "out of range", "longitude must be -180..180"]),
    ("latitude and longitude swapped", feature(geometry={"type": "Polygon", "coordinates": [
        [[-33.860, 151.210], [-33.860, 151.212], [-33.858, 151.212], [-33.860, 151.210]]]}),
     ["swapped", "GeoJSON wants [longitude, latitude]"]),
    ("ring not closed", feature(geometry={"type": "Polygon", "coordinates": [SQUARE[:-1]]}),
     ["'HS-1'", "ring 0 is not closed", "repeat the first position"]),
    ("ring too short", feature(geometry={"type": "Polygon", "coordinates": [SQUARE[:3]]}),
     ["'HS-1'", "fewer than 4 positions"]),
    ("hole outside shell", feature(geometry={"type": "Polygon", "coordinates": [
        SQUARE, HOLE_OUT + [HOLE_OUT[0]]]}), ["'HS-1'", "Hole lies outside shell"]),
    ("missing id", feature(fid=None), ["missing properties.id", "HS-01"]),
    ("bad density", feature(density="extreme"), ["'HS-1'", "density", "'extreme'"]),
    ("line string", feature(geometry={"type": "LineString", "coordinates": SQUARE}),
     ["'HS-1'", "'LineString' is not supported", "Point with a radius_m"]),
    ("circle without radius", feature(geometry={"type": "Point", "coordinates": [0.0, 51.48]}),
     ["'HS-1'", "needs a numeric properties.radius_m"]),
    ("circle radius implausible", feature(geometry={"type": "Point", "coordinates": [0.0, 51.48]},
                                          radius_m=5000),
     ["'HS-1'", "radius_m 5000 is implausible"]),
    ("not a number", feature(geometry={"type": "Polygon", "coordinates": [
        [[0.0, "51.48"], [0.001, 51.48], [0.001, 51.481], [0.0, 51.48]]]}),
     ["'HS-1'", "ring 0 position 0", "is not a [longitude, latitude] pair"]),
    ("no geometry", {"type": "Feature", "properties": {"id": "HS-1", "density": 1}},
     ["'HS-1'", "missing geometry"]),
]


@pytest.mark.parametrize("doc_feature,needles", [(f, n) for _, f, n in ERRORS],
                         ids=[name for name, _, _ in ERRORS])
def test_each_error_names_the_feature_and_the_fix(doc_feature, needles):
    good = feature(fid="HS-OK", geometry={"type": "Polygon", "coordinates": [
        [[p[0] + 0.01, p[1]] for p in SQUARE]]})
    report = validate(collection(good, doc_feature))
    errors = [str(p) for p in report.errors]
    assert len(errors) >= 1, report.problems
    text = " | ".join(errors)
    assert "feature 1" in text
    for needle in needles:
        assert needle in text, (needle, text)
    # The good feature still parses; the bad one does not.
    assert [h.fence_id for h in report.hotspots] == ["HS-OK"]
    with pytest.raises(FenceError) as info:
        report.raise_for_errors()
    assert "feature 1" in str(info.value)


def test_duplicate_ids_name_both_features():
    shifted = [[p[0] + 0.01, p[1]] for p in SQUARE]
    doc = collection(feature(), feature(geometry={"type": "Polygon", "coordinates": [shifted]}))
    (msg,) = messages(doc)
    assert "feature 1 (id 'HS-1')" in msg and "feature 0 already uses" in msg


def test_clockwise_rings_are_a_warning_not_an_error():
    doc = collection(feature(geometry={"type": "Polygon", "coordinates": [SQUARE[::-1]]}))
    assert not messages(doc)
    (msg,) = messages(doc, "warning")
    assert "'HS-1'" in msg and "clockwise" in msg and "RFC 7946" in msg


def test_counter_clockwise_hole_is_a_warning():
    hole = [[-0.0020, 51.4805], [-0.0015, 51.4805], [-0.0015, 51.4809], [-0.0020, 51.4809],
            [-0.0020, 51.4805]]
    doc = collection(feature(geometry={"type": "Polygon", "coordinates": [SQUARE, hole]}))
    assert not messages(doc)
    assert any("hole is counter-clockwise" in m for m in messages(doc, "warning"))


@pytest.mark.parametrize("doc,needle", [
    ({"type": "Feature"}, "FeatureCollection"),
    ({"type": "FeatureCollection", "features": []}, "no features"),
    ({"type": "FeatureCollection", "features": "x"}, "FeatureCollection"),
])
def test_file_level_problems(doc, needle):
    (msg,) = messages(doc)
    assert msg.startswith("error: file:") and needle in msg


def test_not_json_is_a_fence_error_with_the_position(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection",\n "features": [}')
    with pytest.raises(FenceError, match=r"not valid JSON \(line 2"):
        validate(bad)
    with pytest.raises(FenceError, match="cannot read"):
        validate(tmp_path / "missing.geojson")


def test_validation_does_not_modify_the_input():
    doc = collection(feature())
    before = copy.deepcopy(doc)
    validate(doc)
    assert doc == before
    assert validate(json.dumps(doc)).ok
