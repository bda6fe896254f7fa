"""The planning pages over a database with synthetic crime (simulators/crime.py, planted hot
spots): harm map data, proposals handed to the fence editor as a draft, seeded taskings with
their downloads and import, one hot spot's report. Access control is in test_web_access.py
(it walks the route table)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile

import pytest
from starlette.testclient import TestClient

from gateway.schema import open_db
from gateway.web import fence_sets
from planning import taskings_draw as td
from planning.crime import import_crime
from simulators.crime import generate, write_force_export
from tests.web_fixtures import csrf_of, login, make_app, make_db

FORM = {"cell_m": "150", "top": "4", "max_radius_m": "150", "min_spacing_m": "500",
        "measure": "count"}
TASKINGS = {"from": "2026-03-02", "to": "2026-03-04", "shifts": "early=07:00-15:00\n"
            "late=15:00-23:00", "officers": "early=4521,4522\nlate=4601,team:B-relief",
            "seed": "20260302", "per_day": "3", "visits": "2"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("webplan")
    db_path = make_db(tmp / "gateway.db")
    crimes = generate(4000, months=4, seed=7)
    db = open_db(str(db_path))
    result = import_crime(db, write_force_export(crimes, tmp / "force.csv"))
    db.conn.close()
    assert result.imported > 3000 and not result.rejected
    return db_path, result.imported


@pytest.fixture(scope="module")
def app(world):
    return make_app(world[0])


@pytest.fixture()
def analyst(app):
    with TestClient(app) as client:
        assert login(client, "ann").status_code == 303
        yield client


@pytest.fixture()
def supervisor(app):
    with TestClient(app) as client:
        assert login(client, "sue").status_code == 303
        yield client


def _audit(db_path, action):
    db = open_db(str(db_path))
    try:
        return db.execute("SELECT username, subject, detail FROM audit_log WHERE action = ?"
                          " ORDER BY id", (action,)).fetchall()
    finally:
        db.conn.close()


def test_harm_map_data_covers_every_crime_and_outlines_the_proposals(analyst, world):
    page = analyst.get("/plan", params=FORM)
    assert page.status_code == 200, page.text[:500]
    assert "<script>" not in page.text
    rows = re.findall(r'<tr id="proposal-(HS-\d+)">', page.text)
    assert rows == ["HS-001", "HS-002", "HS-003", "HS-004"]
    assert page.text.count("crime by hour") >= 4  # each proposal's hour profile, as SVG
    data = analyst.get("/api/plan/cells", params=FORM).json()
    assert sum(c["c"] for c in data["cells"]) == world[1]  # every crime is in a drawn cell
    assert data["months"] == ["2026-01", "2026-04"]
    ids = [f["properties"]["id"] for f in data["proposals"]["features"]]
    assert ids == rows and len(data["hotspots"]) == 4
    hot = [c for c in data["cells"] if c["hot"]]
    assert hot and min(c["z"] for c in hot) > max(c["z"] for c in data["cells"] if not c["hot"]
                                                  and c["h"] == 0) - 1e-9
    # a shorter period holds fewer crimes
    part = analyst.get("/api/plan/cells", params={**FORM, "from_month": "2026-02",
                                                   "to_month": "2026-02"}).json()
    assert 0 < sum(c["c"] for c in part["cells"]) < world[1] / 2


@pytest.mark.parametrize("params,why", [
    ({"cell_m": "ten"}, "cell_m"), ({"from_month": "2026-5"}, "YYYY-MM"),
    ({"from_month": "2026-04", "to_month": "2026-01"}, "before"),
    ({"from_month": "2030-01", "to_month": "2030-02"}, "no crimes"),
    ({"share": "2"}, "share")])
def test_bad_constraints_are_refused_with_the_reason(analyst, params, why):
    page = analyst.get("/plan", params=params)
    assert page.status_code == 400 and why in page.text
    api = analyst.get("/api/plan/cells", params=params)
    assert api.status_code == 400 and why in api.json()["error"]


def test_share_and_spacing_constraints_change_the_proposals(analyst, world):
    for share in (0.02, 0.05):
        got = analyst.get("/api/plan/cells", params={**FORM, "top": "", "share": str(share)}
                          ).json()
        crimes = [f["properties"]["crimes"] for f in got["proposals"]["features"]]
        assert sum(crimes[:-1]) < share * world[1] <= sum(crimes)
    wide = analyst.get("/api/plan/cells", params={**FORM, "top": "10",
                                                  "min_spacing_m": "2500"}).json()
    narrow = analyst.get("/api/plan/cells", params={**FORM, "top": "10",
                                                    "min_spacing_m": "200"}).json()
    assert len(wide["proposals"]["features"]) < len(narrow["proposals"]["features"])


def test_proposals_saved_as_a_draft_for_the_fence_editor_not_published(analyst, world):
    db_path, _ = world
    response = analyst.post("/plan/draft", data={**FORM, "csrf": csrf_of(analyst)},
                            follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/fences")
    editor = analyst.get("/api/fences").json()
    ids = [f["properties"]["id"] for f in editor["set"]["geojson"]["features"]]
    assert ids == ["HS-001", "HS-002", "HS-003", "HS-004"]
    assert editor["set"]["published_at"] is None and editor["check"]["ok"]
    assert editor["in_force"]["id"] != editor["set"]["id"]  # the sample set stays in force
    saved = _audit(db_path, "fences_save")
    assert saved[-1][0] == "ann" and "draft from proposals" in saved[-1][2]


def _draft_id(app_client) -> int:
    return app_client.get("/api/fences").json()["set"]["id"]


def test_taskings_are_drawn_shown_downloaded_and_imported(analyst, supervisor, world):
    db_path, _ = world
    analyst.post("/plan/draft", data={**FORM, "csrf": csrf_of(analyst)})
    set_id = _draft_id(analyst)
    params = {**TASKINGS, "set": str(set_id)}
    page = supervisor.get("/plan/taskings", params=params)  # supervisors read
    assert page.status_code == 200, page.text[:800]
    assert 'id="import-form"' not in page.text  # but do not import
    page = analyst.get("/plan/taskings", params=params)
    assert 'id="import-form"' in page.text and "seed 20260302" in page.text
    # the same draw as the library gives for the same seed and set
    db = open_db(str(db_path))
    doc = fence_sets.get(db, set_id).geojson
    db.conn.close()
    expected = td.draw(td.load_targets(doc), dt.date(2026, 3, 2), dt.date(2026, 3, 4),
                       td.Settings(20260302, [td.Shift.parse("early=07:00-15:00"),
                                              td.Shift.parse("late=15:00-23:00")],
                                   {"early": ["4521", "4522"], "late": ["4601", "team:B-relief"]},
                                   per_day=3, visits=2))
    body = analyst.get("/plan/download/taskings.csv", params=params)
    assert body.status_code == 200 and "attachment" in body.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(body.text)))
    assert len(rows) == len(expected.visits) > 0
    assert [(r["date"], r["hotspot"], r["start"], r["officer"] or r["team"]) for r in rows] == [
        (v.window_start.strftime("%Y-%m-%d"), v.target.id, v.window_start.strftime("%H:%M"),
         v.assignee.removeprefix("team:")) for v in expected.visits]
    assert all("seed=20260302" in r["note"] for r in rows)
    # the page lists each journey in order, one row per day, shift and assignee
    journeys = re.findall(r'<ol class="journey">(.*?)</ol>', page.text)
    assert sum(j.count("<li") for j in journeys) == len(rows)
    design = analyst.get("/plan/download/design.csv", params=params).text.splitlines()
    assert design[0] == "date,hotspot,arm,weight,seed" and len(design) == 1 + 3 * 4
    sheets = zipfile.ZipFile(io.BytesIO(analyst.get("/plan/download/sheets.zip",
                                                    params=params).content))
    assert sorted(sheets.namelist()) == sorted(
        f"sheets/{who}.txt" for who in {"4521", "4522", "4601", "team_B-relief"}
        if any(v.assignee.replace(":", "_") == who for v in expected.visits))
    exports = _audit(db_path, "export")
    assert exports[-1][0] == "ann" and "seed 20260302" in exports[-1][2]
    # import, twice: stored once
    form = {**params, "csrf": csrf_of(analyst)}
    first = analyst.post("/plan/import-taskings", data=form)
    assert f"{len(rows)} new" in first.text
    again = analyst.post("/plan/import-taskings", data=form)
    assert f"0 new, {len(rows)} already there" in again.text
    db = open_db(str(db_path))
    stored = db.execute("SELECT count(*) FROM taskings WHERE note LIKE '%seed=20260302%'"
                        ).fetchone()[0]
    db.conn.close()
    assert stored == len(rows)
    assert _audit(db_path, "taskings_import")[-1][0] == "ann"
    day = analyst.get("/day", params={"date": "2026-03-02"})
    assert day.status_code == 200
    assert rows[0]["hotspot"] in day.text


@pytest.mark.parametrize("change,why", [
    ({"from": "2026-03-05", "to": "2026-03-01"}, "before"),
    ({"shifts": "early=7-15"}, "bad shift"), ({"officers": "night=1234"}, "unknown shift"),
    ({"seed": ""}, "seed"), ({"to": "2026-05-30"}, "at most"), ({"per_day": "99"}, "per-day"),
    ({"set": "999"}, "no saved hot spot set")])
def test_bad_taskings_forms_say_why(analyst, change, why):
    analyst.post("/plan/draft", data={**FORM, "csrf": csrf_of(analyst)})
    params = {**TASKINGS, "set": str(_draft_id(analyst)), **change}
    page = analyst.get("/plan/taskings", params=params)
    assert page.status_code == 400 and why in page.text
    assert analyst.get("/plan/download/taskings.csv", params=params).status_code == 400


def test_hot_spot_page_shows_crime_harm_trend_and_dosage(analyst, world):
    db_path, _ = world
    analyst.post("/plan/draft", data={**FORM, "csrf": csrf_of(analyst)})
    set_id = _draft_id(analyst)
    listing = analyst.get("/plan/hotspot", params={"set": set_id})
    assert listing.status_code == 200 and '<option value="HS-001"' in listing.text
    page = analyst.get("/plan/hotspot", params={"set": set_id, "id": "HS-001"})
    assert page.status_code == 200, page.text[:500]
    for title in ("Crimes by hour", "Harm by hour", "Crimes by weekday", "Crimes by month"):
        assert f"<title>{title}" in page.text
    crimes = int(re.search(r'id="hotspot-totals">(\d+) crimes', page.text).group(1))
    assert crimes > 20
    assert _audit(db_path, "view_hotspot")[-1][1] == "hotspot:HS-001"
    # a proposal not saved: the same figures from the same form
    proposed = analyst.get("/plan/hotspot", params={**FORM, "proposed": "1", "id": "HS-001"})
    assert f'id="hotspot-totals">{crimes} crimes' in proposed.text
    missing = analyst.get("/plan/hotspot", params={"set": set_id, "id": "HS-999"})
    assert missing.status_code == 404 and "no hot spot" in missing.text
    no_set = analyst.get("/plan/hotspot", params={"set": 999, "id": "HS-001"})
    assert no_set.status_code == 404 and "no saved hot spot set 999" in no_set.text


def test_map3d_page_loads_deckgl_from_the_app_without_inline_script(analyst):
    page = analyst.get("/plan/map3d", params=FORM)
    assert page.status_code == 200
    assert "<script>" not in page.text
    from planning.map3d import deckgl_path

    if deckgl_path().is_file():
        assert '<script src="/static/deckgl/deck.gl.min.js">' in page.text
        with TestClient(analyst.app) as anonymous:  # a library, no personal data: public
            asset = anonymous.get("/static/deckgl/deck.gl.min.js")
        assert asset.status_code == 200 and "PolygonLayer" in asset.text
    else:
        assert "make map-assets" in page.text


def test_an_empty_database_says_what_to_import(tmp_path):
    app = make_app(make_db(tmp_path / "empty.db"))
    with TestClient(app) as client:
        login(client, "ann")
        page = client.get("/plan")
        assert page.status_code == 200 and "hotspots crime import" in page.text
        assert client.get("/api/plan/cells").json()["cells"] == []
        assert client.get("/plan/taskings").status_code == 200
