"""Exports parse back to what was stored: positions and visits as CSV, tracks and visits as
GeoJSON, GPX per officer per shift (a tracker and a radio issued together make one shift)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from shapely.geometry import shape

from gateway.reports import exports
from gateway.reports.dwell import day_window
from gateway.reports.visits import HotSpotSet, compute_visits
from hotspots.cli import cli

DAY = "2026-03-02"
T0 = day_window(DAY)[0] + 8 * 3600  # 08:00Z
GPX = "{http://www.topografix.com/GPX/1/1}"
FENCES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"id": "A", "name": "Spot A", "density": 2},
     "geometry": {"type": "Polygon", "coordinates": [[[-0.001, 51.48], [0.001, 51.48],
                                                      [0.001, 51.481], [-0.001, 51.481],
                                                      [-0.001, 51.48]]]}}]}


@pytest.fixture
def stored(db):
    rows = []
    # T-1 (tracker) walks east through A, is silent 20 min, walks again; 1001 (radio) pings.
    for k in range(60):
        rows.append(("T-1", k + 1, "tracker", T0 + 10 * k, 51.4805, -0.003 + k * 0.0001))
    for k in range(10):
        rows.append(("T-1", 61 + k, "tracker", T0 + 1800 + 10 * k, 51.4805, 0.004))
    for k in range(5):
        rows.append(("1001", k + 1, "airwave", T0 + 180 * k, 51.4806, -0.0001))
    rows.append(("T-9", 1, "tracker", T0 + 50, 51.47, 0.01))  # nobody assigned
    db.conn.executemany("INSERT INTO positions (device_id, seq, source, tst, lat, lon, acc_m)"
                        " VALUES (?,?,?,?,?,?,10)", rows)
    for device, end in (("T-1", T0 + 4 * 3600), ("1001", T0 + 5 * 3600)):
        db.execute("INSERT INTO assignments (device_id, collar, start_ts, end_ts)"
                   " VALUES (?, '4521', ?, ?)", (device, T0 - 600, end))
    db.conn.commit()
    return rows


def test_positions_csv_parses_back_with_officers(db, stored):
    out = io.StringIO()
    assert exports.export_positions(db, out, "csv") == len(stored)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == len(stored)
    assert {r["officer"] for r in rows if r["device_id"] != "T-9"} == {"4521"}
    assert [r["officer"] for r in rows if r["device_id"] == "T-9"] == [""]
    first = next(r for r in rows if r["device_id"] == "T-1")
    assert (first["time_utc"], float(first["lon"])) == ("2026-03-02T08:00:00Z", -0.003)


def test_tracks_group_per_officer_shift_and_split_at_gaps(db, stored):
    tracks = exports.tracks(db)
    # In order of shift start: the unassigned device's day starts at midnight.
    assert [(t.label, t.fixes) for t in tracks] == [("device-T-9", 1), ("4521", 75)]
    assert [(device, len(points)) for device, points in tracks[1].segments] == [
        ("1001", 5), ("T-1", 60), ("T-1", 10)]


def test_geojson_has_linestrings_and_visit_features(db, stored):
    hotspots = HotSpotSet.load(FENCES)
    visits = compute_visits(db, hotspots)
    doc = json.loads(json.dumps(exports.tracks_geojson(exports.tracks(db), visits, hotspots)))
    kinds = [(f["properties"]["kind"], f["geometry"]["type"]) for f in doc["features"]]
    assert kinds == [("track", "Point")] + [("track", "LineString")] * 3 + [("visit", "Point")]
    line = shape(doc["features"][2]["geometry"])
    assert line.coords[0] == (-0.003, 51.4805) and len(line.coords) == 60
    (visit,) = [f for f in doc["features"] if f["properties"]["kind"] == "visit"]
    assert visit["properties"]["officer"] == "4521"
    assert visit["properties"]["device_id"] == "1001,T-1"
    assert shape(FENCES["features"][0]["geometry"]).contains(shape(visit["geometry"]))


def test_gpx_one_file_per_officer_shift_parses_back(db, stored, tmp_path):
    paths = exports.write_gpx(exports.tracks(db), tmp_path)
    assert [p.name for p in paths] == ["device-T-9_20260302T0000Z.gpx",
                                       "4521_20260302T0750Z.gpx"]
    root = ET.parse(paths[1]).getroot()
    trks = root.findall(f"{GPX}trk")
    assert [t.find(f"{GPX}src").text for t in trks] == ["1001", "T-1"]
    segs = trks[1].findall(f"{GPX}trkseg")
    assert [len(s.findall(f"{GPX}trkpt")) for s in segs] == [60, 10]
    pt = segs[0].find(f"{GPX}trkpt")
    assert (pt.get("lat"), pt.get("lon"), pt.find(f"{GPX}time").text) == (
        "51.480500", "-0.003000", "2026-03-02T08:00:00Z")


def test_visits_csv_parses_back(db, stored):
    hotspots = HotSpotSet.load(FENCES)
    out = io.StringIO()
    visits = compute_visits(db, hotspots)
    exports.write_visits_csv(visits, out)
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    (v,) = visits
    assert (row["officer"], row["hotspot"], int(row["enter"]), int(row["dwell_s"])) == (
        "4521", "A", v.enter, v.dwell_s)
    assert row["enter_time"].endswith("Z") and row["method"] == "positions"


def test_cli_exports(db, stored, tmp_path):
    path = tmp_path / "e.db"
    db.conn.execute("VACUUM INTO ?", (str(path),))
    fences = tmp_path / "f.geojson"
    fences.write_text(json.dumps(FENCES))
    run = CliRunner().invoke
    result = run(cli, ["export", "positions", "--db", str(path), "--format", "csv"])
    assert result.exit_code == 0 and len(result.output.splitlines()) == len(stored) + 1
    result = run(cli, ["export", "tracks", "--db", str(path), "--format", "gpx", "--out",
                       str(tmp_path / "gpx"), "--date", DAY])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "gpx").glob("*.gpx"))) == 2
    result = run(cli, ["export", "visits", "--db", str(path), "--fences", str(fences),
                       "--format", "geojson", "--date", DAY])
    assert result.exit_code == 0, result.output
    assert [f["properties"]["hotspot"] for f in json.loads(result.output)["features"]] == ["A"]
    result = run(cli, ["report", "dwell", "--db", str(path), "--fences", str(fences), "--json"])
    assert json.loads(result.output)["officer"] == "4521"
    result = run(cli, ["report", "dwell", "--db", str(tmp_path / "missing.db")])
    assert result.exit_code != 0 and "no database" in result.output
