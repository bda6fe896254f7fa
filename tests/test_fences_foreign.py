"""Hot spots drawn elsewhere: GeoJSON exactly as geojson.io and QGIS (GDAL's writer) save it.

geojson.io writes ``"properties": {}`` (or only what was typed in) and keeps a feature's id in
the feature's own ``id`` member; QGIS writes a ``crs`` member, the layer ``name``, GeoPackage's
``fid`` as a property, and MultiPolygons for polygon layers. These files used to be refused
(``id`` and ``density`` required, the feature-level id ignored, "got None" for a missing
density); now the feature's id is taken, the name defaults to it and the density to medium, with
warnings, and every file compiles for the device.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fences.compile import compile_geojson
from fences.validate import DENSITY_NAMES, validate
from hotspots.cli import cli
from tests.conftest import DATA

FOREIGN = DATA / "fences"

ACCEPTED = [
    # file, ids, names, warnings that must be there
    ("geojsonio_empty_properties.geojson", ["0", "1"], ["0", "1"],
     ["no properties.name", "no properties.density: using 'medium'"]),
    ("geojsonio_name_only.geojson", ["HS-GRN-01"], ["Greenwich Park west gate"],
     ["no properties.density"]),
    ("qgis_crs_fid.geojson", ["1", "2"], ["Greenwich Park west gate", "Maze Hill estate"],
     ["using QGIS's fid 1", "no properties.density"]),
    ("qgis_crs_fid_name_only.geojson", ["HS-GRN-01"], ["Greenwich Park west gate"],
     ["no properties.density"]),
    ("qgis_id_field_multipolygon.geojson", ["7"], ["Two car parks"],
     ["no properties.density"]),
]


@pytest.mark.parametrize("name,ids,names,warnings", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_files_from_geojson_io_and_qgis_are_accepted(name, ids, names, warnings):
    report = validate(FOREIGN / name)
    assert report.ok, [str(p) for p in report.errors]
    assert [h.fence_id for h in report.hotspots] == ids
    assert [h.name for h in report.hotspots] == names
    assert all(h.density == DENSITY_NAMES["medium"] for h in report.hotspots)
    text = " | ".join(str(p) for p in report.warnings)
    for needle in warnings:
        assert needle in text, (needle, text)
    compiled = compile_geojson(FOREIGN / name)
    assert [f.fence_id for f in compiled.fences] == ids
    assert len(compiled.data) > 0


def test_qgis_multipolygon_keeps_both_parts():
    report = validate(FOREIGN / "qgis_id_field_multipolygon.geojson")
    assert report.hotspots[0].geometry.geom_type == "MultiPolygon"
    assert len(report.hotspots[0].geometry.geoms) == 2
    assert [f.rings for f in compile_geojson(FOREIGN / "qgis_id_field_multipolygon.geojson")
            .fences] == [2]


def test_a_projected_crs_is_refused_with_what_to_do():
    report = validate(FOREIGN / "qgis_british_national_grid.geojson")
    assert not report.ok
    text = str(report.errors[0])
    assert "EPSG::27700" in text and "EPSG:4326" in text


def test_an_explicit_density_still_has_to_be_valid():
    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": "A", "properties": {"density": "extreme"},
        "geometry": {"type": "Polygon", "coordinates": [[[0, 51.48], [0.002, 51.48],
                                                         [0.002, 51.4812], [0, 51.48]]]}}]}
    report = validate(doc)
    assert not report.ok and "'extreme'" in str(report.errors[0])


def test_a_feature_without_any_id_is_still_refused():
    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[[0, 51.48], [0.002, 51.48],
                                                         [0.002, 51.4812], [0, 51.48]]]}}]}
    report = validate(doc)
    assert "missing properties.id" in str(report.errors[0])


@pytest.mark.parametrize("name", [a[0] for a in ACCEPTED])
def test_cli_validate_and_compile_accept_them(name, tmp_path):
    path = str(FOREIGN / name)
    result = CliRunner().invoke(cli, ["fences", "validate", path])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output
    result = CliRunner().invoke(cli, ["fences", "compile", path, "--out",
                                      str(tmp_path / "set.json")])
    assert result.exit_code == 0, result.output
