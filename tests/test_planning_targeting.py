"""Targeting: Gi* against a hand-computed case, the FDR correction, aoristic weights, and the
planted hot spots of synthetic crime found at their places and hours; the proposed GeoJSON goes
straight into the fence validator and compiler."""

from __future__ import annotations

import datetime as dt
import json
import math
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from click.testing import CliRunner

from fences.compile import compile_geojson
from fences.validate import validate
from hotspots.cli import cli
from planning.aoristic import crime_weights, profile
from planning.crime import import_crime, load_crimes
from planning.grid import Grid, h3_grid
from planning.harm import load_harm
from planning.hotspot_stats import benjamini_hochberg, hot_cells, neighbourhood_sums
from planning.projection import to_bng
from planning.proposals import PlanningError, Settings, propose, to_geojson
from simulators.crime import generate, write_force_export, write_police_uk

LONDON = ZoneInfo("Europe/London")


def test_gi_star_matches_a_hand_computed_case():
    # 4 x 4 cells, 8 crimes in the south-west corner cell and 4 east of it, none elsewhere.
    values = np.zeros(16)
    values[0], values[1] = 8, 4
    grid = Grid("square", 100.0, values, values, np.zeros(0, np.int64), nx=4, ny=4)
    gi = hot_cells(grid, values)
    # n = 16, mean 0.75, S² = 80/16 - 0.75² = 4.4375
    s = math.sqrt(4.4375)
    # corner cell: 4 neighbours (itself included) summing to 12
    assert gi.z[0] == pytest.approx((12 - 0.75 * 4) / (s * math.sqrt((16 * 4 - 16) / 15)))
    # edge cell east of it: 6 neighbours summing to 12
    assert gi.z[1] == pytest.approx((12 - 0.75 * 6) / (s * math.sqrt((16 * 6 - 36) / 15)))
    assert gi.z[0] == pytest.approx(2.38835, abs=1e-5)
    # a far cell: 9 neighbours, sum 0
    assert gi.z[10] == pytest.approx((0 - 0.75 * 9) / (s * math.sqrt((16 * 9 - 81) / 15)))
    assert gi.p[0] == pytest.approx(0.5 * math.erfc(gi.z[0] / math.sqrt(2)))


def test_benjamini_hochberg_by_hand():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2]))
    assert q == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])


def test_h3_neighbourhood_sums_match_a_direct_count():
    rng = np.random.default_rng(4)
    lon, lat = rng.uniform(-0.01, 0.01, 300), rng.uniform(51.475, 51.485, 300)
    grid = h3_grid(lon, lat, np.ones(300), 150.0)
    assert grid.resolution == 10
    sums, weights = neighbourhood_sums(grid, grid.count)
    import h3

    index = {c: i for i, c in enumerate(grid.ids)}
    for i in range(0, len(grid.ids), 7):
        nbrs = [index[c] for c in h3.grid_disk(grid.ids[i], 1) if c in index]
        assert sums[i] == pytest.approx(grid.count[nbrs].sum())
        assert weights[i] == len(nbrs)


@pytest.mark.parametrize("window_h", [0, 0.5, 3.25, 14, 200])
def test_aoristic_weights_sum_to_one(window_h):
    start = int(dt.datetime(2026, 3, 28, 18, 40, tzinfo=LONDON).timestamp())  # DST next night
    weights = crime_weights(start, start + round(window_h * 3600), LONDON)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert all(0 <= k < 168 for k in weights)


def test_aoristic_spreads_a_burglary_window_evenly():
    # Monday 18:00 to Tuesday 08:00: 14 hours, 1/14 each, nothing at the midpoint only
    start = int(dt.datetime(2026, 1, 5, 18, 0, tzinfo=LONDON).timestamp())
    w = crime_weights(start, start + 14 * 3600, LONDON)
    assert sorted(w) == list(range(18, 24)) + list(range(24, 32))
    assert all(v == pytest.approx(1 / 14) for v in w.values())
    half = crime_weights(start + 1800, start + 5400, LONDON)  # 18:30-19:30
    assert half == {18: pytest.approx(0.5), 19: pytest.approx(0.5)}
    assert crime_weights(start, start, LONDON) == {18: 1.0}


def test_profile_says_plainly_when_there_are_no_times():
    p = profile(np.array([-1, -1]), np.array([-1, -1]), LONDON)
    assert "no times" in p.basis and "police.uk" in p.basis
    assert p.hour_shares() == []


@pytest.fixture(scope="module")
def force_db(tmp_path_factory):
    from gateway.schema import open_db

    tmp = tmp_path_factory.mktemp("crime")
    world = generate(12000, months=6, seed=5)
    db = open_db(str(tmp / "c.db"))
    import_crime(db, write_force_export(world, tmp / "force.csv"))
    return world, db


def _centres(t):
    return [h.centre for h in t.hotspots]


def test_planted_hot_spots_are_found_at_their_places_and_hours(force_db):
    world, db = force_db
    t = propose(load_crimes(db), load_harm(),
                Settings(measure="count", cell_m=100, top=4, tz="Europe/London"))
    assert len(t.hotspots) == 4
    for planted in world.planted:
        px, py = to_bng(np.array([planted.lon]), np.array([planted.lat]))
        d = [math.hypot(cx - px[0], cy - py[0]) for cx, cy in _centres(t)]
        best = int(np.argmin(d))
        assert d[best] < 120, planted.name
        found = t.hotspots[best]
        # the busiest hour is a planted one (wide windows, e.g. car crime found next
        # morning, spread some weight to other hours: that is what aoristic analysis does)
        assert int(np.argmax(found.profile.by_hour)) in planted.hours, planted.name
        if planted.name == "Night-time economy":  # street violence: exact times
            assert set(found.profile.peak_hours()) <= set(planted.hours)
            assert set(np.flatnonzero(found.profile.by_weekday > 20)) <= set(planted.weekdays)
        assert "aoristic" in found.profile.basis
    for a in t.hotspots:  # the spacing rule held
        for b in t.hotspots:
            if a is not b:
                assert math.dist(a.centre, b.centre) >= 500
        assert a.radius_m <= 150


def test_harm_ranks_robbery_above_shoplifting(force_db):
    world, db = force_db
    t = propose(load_crimes(db), load_harm(), Settings(measure="harm", cell_m=100, top=2))
    by_name = {}
    for planted in world.planted:
        px, py = to_bng(np.array([planted.lon]), np.array([planted.lat]))
        by_name[planted.name] = (px[0], py[0])
    near = [min(by_name, key=lambda n, c=c: math.dist(c, by_name[n])) for c in _centres(t)]
    # the two high-harm places (violence and robbery), not the busy shopping parade
    assert set(near) == {"Night-time economy", "School run robbery"}


def test_proposals_validate_and_compile_as_fences(force_db):
    _, db = force_db
    doc = to_geojson(propose(load_crimes(db), load_harm(), Settings(cell_m=100, share=0.15)))
    report = validate(doc)
    assert report.ok and not report.warnings, [str(p) for p in report.problems]
    compiled = compile_geojson(doc)
    assert compiled is not None
    assert [f["properties"]["id"] for f in doc["features"]][:2] == ["HS-001", "HS-002"]
    assert doc["properties"]["share_of_harm"] >= 0.15
    assert all(len(f["properties"]["hour_shares"]) == 24 for f in doc["features"])


def test_h3_grid_finds_the_same_places(force_db):
    _, db = force_db
    crimes = load_crimes(db)
    sq = propose(crimes, load_harm(), Settings(measure="count", cell_m=100, top=4))
    hx = propose(crimes, load_harm(), Settings(measure="count", grid="h3", cell_m=150, top=4))
    for c in _centres(hx):
        assert min(math.dist(c, d) for d in _centres(sq)) < 150
    assert validate(to_geojson(hx)).ok


def test_bad_settings_are_errors(force_db):
    _, db = force_db
    with pytest.raises(PlanningError):
        propose(load_crimes(db), load_harm(), Settings(share=1.5))


def test_cli_plan_hotspots_from_police_uk_says_there_are_no_times(tmp_path):
    world = generate(6000, months=3, seed=9)
    paths = write_police_uk(world, tmp_path / "puk")
    db = tmp_path / "p.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["crime", "import", *map(str, paths), "--db", str(db)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "proposed.geojson"
    cells = tmp_path / "cells.csv"
    result = runner.invoke(cli, ["plan", "hotspots", "--db", str(db), "--out", str(out),
                                 "--measure", "count", "--top", "3", "--cells", str(cells)])
    assert result.exit_code == 0, result.output
    import csv

    ranked = list(csv.DictReader(cells.open()))
    assert [int(r["rank"]) for r in ranked[:3]] == [1, 2, 3]
    assert sum(int(r["crimes"]) for r in ranked) == 6000
    assert {r["hotspot"] for r in ranked} >= {"HS-001", "HS-002", "HS-003"}
    assert "no times in the data" in result.output
    doc = json.loads(out.read_text())
    assert len(doc["features"]) == 3
    assert all("police.uk" in f["properties"]["time_basis"] for f in doc["features"])
    result = runner.invoke(cli, ["fences", "validate", str(out), "--strict"])
    assert result.exit_code == 0, result.output


def test_a_force_index_changes_the_ranking(force_db, tmp_path):
    # a force that weighs shoplifting like robbery and robbery like shoplifting
    world, db = force_db
    own = tmp_path / "own.csv"
    rows = ["category,harm_days"] + [f"{r.category},{r.harm_days}" for r in load_harm().rows
                                     if r.category not in ("Shoplifting", "Robbery")]
    own.write_text("\n".join(rows + ["Shoplifting,365", "Robbery,2"]) + "\n")
    out = tmp_path / "p.geojson"
    db_file = db.conn.execute("PRAGMA database_list").fetchone()[2]
    result = CliRunner().invoke(cli, ["plan", "hotspots", "--db", db_file, "--out", str(out),
                                      "--cell-m", "100", "--top", "1", "--harm", str(own),
                                      "--months", "2026-01:2026-06"])
    assert result.exit_code == 0, result.output
    (feature,) = json.loads(out.read_text())["features"]
    centre = np.array(feature["geometry"]["coordinates"][0]).mean(axis=0)
    parade = next(p for p in world.planted if p.name == "Shopping parade")
    assert math.dist(centre, (parade.lon, parade.lat)) < 0.002
    bad = CliRunner().invoke(cli, ["plan", "hotspots", "--db", db_file, "--out", str(out),
                                   "--months", "2026"])
    assert bad.exit_code != 0 and "FIRST:LAST" in bad.output
