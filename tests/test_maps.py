"""The map is one self-contained HTML file that draws hot spots, tracks and visits offline, in a
real browser (Debian's headless Chromium); the time-of-day plots are real PNG images."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

import pytest

from gateway.reports import exports
from gateway.reports.dwell import daily_stats, day_window
from gateway.reports.maps import UNPATROLLED, colour_for, map_html, plot_time_of_day, write_map
from gateway.reports.visits import HotSpotSet, compute_visits

DAY = "2026-03-02"
T0 = day_window(DAY)[0] + 10 * 3600


def _square(hid: str, lon: float) -> dict:
    ring = [[lon, 51.48], [lon + 0.002, 51.48], [lon + 0.002, 51.4812], [lon, 51.4812],
            [lon, 51.48]]
    return {"type": "Feature", "properties": {"id": hid, "name": f"Spot {hid}", "density": 1},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


FENCES = {"type": "FeatureCollection", "features": [
    _square("A", -0.001), _square("B", 0.006),
    {"type": "Feature", "properties": {"id": "C", "name": "Spot C", "density": 1,
                                       "radius_m": 50},
     "geometry": {"type": "Point", "coordinates": [0.012, 51.4806]}}]}


@pytest.fixture
def day(db):
    """Two officers; one spends 20 minutes in A, the other walks past B; C is not visited."""
    rows = [("T-1", k + 1, T0 + 10 * k, 51.4806, -0.004 + min(k, 35) * 0.0001)
            for k in range(150)]
    rows += [("T-2", k + 1, T0 + 10 * k, 51.4790, 0.005 + k * 0.0001) for k in range(60)]
    db.conn.executemany("INSERT INTO positions (device_id, seq, source, tst, lat, lon, acc_m)"
                        " VALUES (?, ?, 'tracker', ?, ?, ?, 5)", rows)
    db.execute("INSERT INTO assignments (device_id, collar, start_ts) VALUES ('T-1', '1111', ?)",
               (T0 - 60,))
    hotspots = HotSpotSet.load(FENCES)
    window = day_window(DAY)
    visits = compute_visits(db, hotspots, window)
    return hotspots, daily_stats(visits, DAY, hotspots=hotspots), exports.tracks(db), visits


def test_patrol_minutes_set_the_colour():
    assert colour_for(0) == UNPATROLLED
    assert colour_for(1) != colour_for(60) and colour_for(60) == colour_for(600)


def test_page_is_self_contained(day):
    page = map_html(*day, title="t")
    assert "L.map(" in page and "leaflet" in page.lower()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    assert "DATA.tiles" in page and '"tiles":null' in page


def test_chromium_draws_hot_spots_tracks_and_visits(day, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    hotspots, stats, tracks, visits = day
    assert [s.patrol_minutes > 0 for s in stats] == [True, False, False]
    page = write_map(tmp_path / "map.html", hotspots, stats, tracks, visits, "test")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90)
    dom = result.stdout
    assert '<body data-hotspots="3" data-tracks="2" data-visits="1"' in dom, result.stderr[-2000:]
    paths = re.findall(r'<path class="(hs-[a-z]+) leaflet-interactive"[^>]*\sd="([^"]*)"', dom)
    drawn = [kind for kind, d in paths if d.startswith("M")]
    assert drawn.count("hs-hotspot") == 3
    assert drawn.count("hs-track") == 2
    assert drawn.count("hs-visit") == 1
    # Readable without clicking (issue 21): the title with the date, a scale, a legend naming
    # each officer's colour, the officer's name on the map, and patrol-minute ranges.
    assert 'class="leaflet-control-scale-line"' in dom
    assert re.search(r'class="legend title[^"]*">test</div>', dom)
    officers = re.search(r'class="legend officers[^"]*">(.*?)</div>', dom).group(1)
    assert "1111" in officers and "device-T-2" in officers
    assert re.search(r'leaflet-tooltip[^"]*"[^>]*>1111</div>', dom)
    patrol = re.search(r"<b>hot spot patrol-minutes</b>(.*?)</div>", dom).group(1)
    labels = re.findall(r"</i>([^<]+)<br>", patrol)
    assert labels[:3] == ["not patrolled", "under 5 min", "5–10 min"]
    assert labels[-1] == "60 min or more"
    assert "0 min" not in labels and "≥ 0 min" not in labels


def test_legend_ranges_match_the_colours():
    from gateway.reports.maps import RAMP, THRESHOLDS, legend_entries

    entries = legend_entries()
    assert entries[0] == (UNPATROLLED, "not patrolled")
    assert [c for c, _ in entries[1:]] == list(RAMP)
    for (colour, label), low in zip(entries[1:], THRESHOLDS, strict=True):
        assert colour_for(low + 0.5) == colour, label
    assert colour_for(4.9) == RAMP[0] and colour_for(5) == RAMP[1]


def test_time_of_day_plots_are_png(day, tmp_path):
    _, stats, _, _ = day
    paths = plot_time_of_day(stats, tmp_path)
    assert [p.name for p in paths] == ["time_of_day_all.png", "time_of_day_A.png"]
    head = paths[0].read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (800, 300)


def test_report_map_command_in_chromium_is_readable_and_saved_for_review(tmp_path):
    """``hotspots report map`` as a supervisor runs it: the title names the date and the zone,
    a night shift across local midnight is drawn whole, and a screenshot is kept for review
    (``tests/artifacts/web/`` or ``$HOTSPOTS_TEST_ARTIFACTS``)."""
    import json
    import os
    from pathlib import Path

    from click.testing import CliRunner

    from gateway.schema import open_db
    from hotspots.cli import cli

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    fences = tmp_path / "fences.geojson"
    fences.write_text(json.dumps(FENCES))
    db_path = tmp_path / "gateway.db"
    db = open_db(str(db_path))
    midnight = day_window("2026-07-05", __import__("zoneinfo").ZoneInfo("Europe/London"))[0]
    rows = [("T-1", k + 1, midnight - 1800 + 30 * k, 51.4806, -0.004 + min(k, 35) * 0.0001)
            for k in range(90)]  # 23:30 to 00:15 local (BST), 20 minutes of it in A
    db.conn.executemany("INSERT INTO positions (device_id, seq, source, tst, lat, lon, acc_m)"
                        " VALUES (?, ?, 'tracker', ?, ?, ?, 5)", rows)
    db.conn.execute("INSERT INTO assignments (device_id, collar, start_ts) VALUES"
                    " ('T-1', '1111', ?)", (midnight - 7200,))
    db.conn.commit()
    db.close()
    out = tmp_path / "map.html"
    result = CliRunner().invoke(cli, ["report", "map", "--db", str(db_path), "--fences",
                                      str(fences), "--date", "2026-07-04", "--tz",
                                      "Europe/London", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text().split("const DATA = ", 1)[1].split(";\n", 1)[0])
    assert data["title"] == "Hot spots, 2026-07-04 (Europe/London)"
    assert [len(t["coords"]) for t in data["tracks"]] == [90]  # past midnight, whole
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
         "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=90).stdout
    assert re.search(r'class="legend title[^"]*">Hot spots, 2026-07-04 \(Europe/London\)</div>',
                     dom)
    assert 'class="leaflet-control-scale-line"' in dom
    assert re.search(r'leaflet-tooltip[^"]*"[^>]*>1111</div>', dom)
    artifacts = Path(os.environ.get("HOTSPOTS_TEST_ARTIFACTS",
                                    Path(__file__).resolve().parent / "artifacts" / "web"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report-map.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile2'}", "--virtual-time-budget=5000",
         "--window-size=1200,800", f"--screenshot={shot}", out.as_uri()],
        capture_output=True, timeout=90)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
