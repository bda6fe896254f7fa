"""Hot spot files drawn elsewhere (geojson.io, QGIS: tests/data/fences/) saved through the web
app's fence editor API: accepted as ``fences validate`` accepts them, and the audit trail names
each hot spot by the id the devices get (the feature's own id, or QGIS's fid), so "who changed
which boundary" holds for them too. The editor opening them in a browser is in
tests/test_web_browser.py."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from gateway.schema import open_db
from gateway.web import fence_sets
from tests.conftest import DATA
from tests.test_fences_foreign import ACCEPTED
from tests.web_fixtures import csrf_of, login, make_app, make_db

FOREIGN = DATA / "fences"


@pytest.fixture
def db_path(tmp_path):
    return make_db(tmp_path / "gateway.db")


@pytest.mark.parametrize("name,ids,names,warnings", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_a_foreign_file_saves_with_its_hot_spots_in_the_audit_trail(db_path, name, ids, names,
                                                                     warnings):
    doc = json.loads((FOREIGN / name).read_text())
    client = TestClient(make_app(db_path))
    assert login(client, "ann").status_code == 303
    headers = {"X-CSRF-Token": csrf_of(client)}
    checked = client.post("/api/fences/check", json=doc, headers=headers).json()
    assert checked["ok"] and checked["hotspots"] == len(ids)
    assert not [p for p in checked["problems"] if p["level"] == "error"]
    saved = client.post("/api/fences/save", json=doc, headers=headers)
    assert saved.status_code == 200, saved.text
    # Against the seeded sample set (HS-GRN-01, HS-GRN-02): each of the file's hot spots is
    # added, or changed where the sample has the same id, and the sample's others removed.
    expected = {hid: "added" for hid in ids}
    for hid in ("HS-GRN-01", "HS-GRN-02"):
        expected[hid] = "removed" if hid not in ids else expected[hid]
    changes = dict(saved.json()["changes"])
    assert set(changes) == set(expected)
    assert all(changes[hid] == "added" for hid in ids if hid not in ("HS-GRN-01", "HS-GRN-02"))
    db = open_db(str(db_path))
    mine = [e for e in fence_sets.edits(db) if e["username"] == "ann"]
    assert {e["hotspot"]: e["change"] for e in mine} == changes
    subject = db.execute("SELECT subject FROM audit_log WHERE action = 'fences_save'"
                         ).fetchone()[0]
    assert all(f"{hid}({change})" in subject for hid, change in changes.items())


def test_a_boundary_moved_in_qgis_is_recorded_against_its_fid(db_path):
    doc = json.loads((FOREIGN / "qgis_crs_fid.geojson").read_text())
    db = open_db(str(db_path))
    fence_sets.save(db, doc, "ann")
    moved = json.loads(json.dumps(doc))
    ring = moved["features"][1]["geometry"]["coordinates"][0]
    if moved["features"][1]["geometry"]["type"] == "MultiPolygon":
        ring = ring[0]
    ring[:] = [[x + 0.0002, y] for x, y in ring]
    _, changes = fence_sets.save(db, moved, "sue")
    assert [(hid, change) for hid, change, _, _ in changes] == [("2", "boundary")]


def test_a_projected_file_is_refused_with_what_to_do(db_path):
    doc = json.loads((FOREIGN / "qgis_british_national_grid.geojson").read_text())
    client = TestClient(make_app(db_path))
    assert login(client, "sue").status_code == 303
    saved = client.post("/api/fences/save", json=doc, headers={"X-CSRF-Token": csrf_of(client)})
    assert saved.status_code == 400
    assert "EPSG:4326" in saved.json()["error"]
    whole = [p for p in saved.json()["check"]["problems"] if p["feature"] < 0]
    assert whole and whole[0]["level"] == "error"
