"""A patrol that crosses midnight is on the map of both days it touches, whole.

Regression: the supervisor browser test failed when its real-time patrol ran from 23:45 to just
after midnight UTC: the day page of the later date drew only the fixes after 00:00, one fix made
no line, and the page showed 0 tracks although the officer had patrolled until minutes before.
The day (the station's local calendar day, ``hotspots web --tz``) keeps its figures cut at
midnight, but its map shows each shift that overlaps it from its first fix to its last
(:func:`gateway.reports.exports.day_tracks`).
"""

from __future__ import annotations

import io
import json
import zipfile
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from gateway.reports import exports, maps
from gateway.reports.dwell import day_window
from gateway.schema import open_db
from tests.test_web_app import add_device, add_fix
from tests.web_fixtures import login, make_app, make_db

#: Walked west to east through HS-GRN-01 of fences/sample.geojson (Greenwich), as the sample
#: route does: a fix every 50 s.
START_LON, END_LON, LAT = -0.0060, 0.0020, 51.4806


def _patrol(db, device: str, start: int, fixes: int, step_s: int = 50, seq0: int = 1) -> list:
    out = []
    for i in range(fixes):
        lon = START_LON + (END_LON - START_LON) * i / max(1, fixes - 1)
        add_fix(db, device, seq0 + i, start + i * step_s, LAT, round(lon, 6))
        out.append((start + i * step_s, LAT, round(lon, 6)))
    return out


def _client(db_path, tz_name: str) -> TestClient:
    client = TestClient(make_app(db_path, tz_name=tz_name))
    assert login(client, "sue").status_code == 303
    return client


@pytest.mark.parametrize(("tz_name", "before", "after"), [
    # The failing run: UTC, the shift issued at 22:05, 20 fixes up to 23:59:55, one after.
    ("UTC", "2026-12-04", "2026-12-05"),
    # The station's zone decides where midnight is: 23:00 UTC in London's summer time.
    ("Europe/London", "2026-07-04", "2026-07-05"),
])
def test_a_patrol_across_midnight_is_whole_on_both_days(tmp_path, tz_name, before, after):
    tz = ZoneInfo(tz_name)
    midnight = day_window(after, tz)[0]
    db_path = make_db(tmp_path / "gateway.db")
    db = open_db(str(db_path))
    add_device(db, "T-0001", "4521", midnight - 7200 + 300, midnight)  # open assignment
    walked = _patrol(db, "T-0001", midnight - 20 * 50 + 5, 21)
    assert sum(t >= midnight for t, _, _ in walked) == 1  # one fix after midnight
    db.conn.close()

    with _client(db_path, tz_name) as client:
        days = {d: client.get("/api/day", params={"date": d}).json() for d in (after, before)}
        for date, data in days.items():
            assert data["window"] == list(day_window(date, tz))
            tracks = data["tracks"]
            assert [t["label"] for t in tracks] == ["4521"], date
            coords = tracks[0]["coords"]
            # From the shift's first fix to its last, across midnight, on either date.
            assert coords[0] == [LAT, walked[0][2]] and coords[-1] == [LAT, walked[-1][2]]
            assert data["officers_shown"] == ["4521"]
        # The figures stay cut at midnight: the visit to HS-GRN-01 was before it.
        assert {v["hotspot"] for v in days[before]["visits"]} == {"HS-GRN-01"}
        assert days[after]["visits"] == [] and days[after]["dwell"]["officers"] == []

        # The downloads of the later day carry the same whole shift.
        geo = client.get("/export/tracks.geojson", params={"date": after}).json()
        lines = [f for f in geo["features"] if f["properties"]["kind"] == "track"]
        assert [f["properties"]["fixes"] for f in lines] == [21]
        archive = zipfile.ZipFile(io.BytesIO(
            client.get("/export/tracks-gpx.zip", params={"date": after}).content))
        (name,) = archive.namelist()
        assert archive.read(name).decode().count("<trkpt ") == 21
        page = client.get("/export/map.html", params={"date": after}).text
        data = json.loads(page.split("const DATA = ", 1)[1].split(";\n", 1)[0])
        assert len(data["tracks"]) == 1 and len(data["tracks"][0]["coords"]) == 21


def test_a_day_takes_only_the_shifts_that_touch_it_and_not_for_ever(tmp_path):
    day = "2026-12-05"
    start, end = day_window(day)
    db = open_db(str(make_db(tmp_path / "gateway.db")))
    # A day shift the day before, returned at 16:00: not on this day's map.
    db["assignments"].insert({"device_id": "T-0002", "collar": "4600",
                              "start_ts": start - 16 * 3600, "end_ts": start - 8 * 3600})
    _patrol(db, "T-0002", start - 15 * 3600, 5)
    # A tracker never returned since three days ago: only its last 12 hours before the day.
    db["assignments"].insert({"device_id": "T-0003", "collar": "4700",
                              "start_ts": start - 3 * 86400})
    old = _patrol(db, "T-0003", start - 2 * 86400, 3)
    recent = _patrol(db, "T-0003", start - 3600, 3, seq0=10)
    # A fix nobody was assigned to, alone on this day, and one from the evening before.
    _patrol(db, "T-0004", start - 600, 1)
    lone = _patrol(db, "T-0004", start + 3600, 1, seq0=2)
    # The next day's fixes of a shift that ended on this day.
    db["assignments"].insert({"device_id": "T-0005", "collar": "4800",
                              "start_ts": end - 3600, "end_ts": end + 3600})
    _patrol(db, "T-0005", end - 1800, 4, step_s=900)  # 23:30 .. 00:15, all one shift

    found = {t.label: t for t in exports.day_tracks(db, (start, end))}
    assert set(found) == {"4700", "device-T-0004", "4800"}
    times = [p[0] for _, points in found["4700"].segments for p in points]
    assert times == [t for t, _, _ in recent] and old[0][0] not in times
    assert [p[0] for _, pts in found["device-T-0004"].segments for p in pts] == [lone[0][0]]
    assert sum(len(p) for _, p in found["4800"].segments) == 4
    # A lone fix is drawn (as a dot), never left out.
    lines = {line["label"]: line for line in maps.track_lines(found.values())}
    assert lines["device-T-0004"]["coords"] == [[LAT, lone[0][2]]]
    # Without a day's reach, a window holds only its own fixes (exports of --from/--to).
    assert sum(t.fixes for t in exports.tracks(db, (start, end))) == 1 + 2


def test_the_day_page_draws_a_lone_fix(tmp_path):
    start, _ = day_window("2026-12-05")
    db_path = make_db(tmp_path / "gateway.db")
    db = open_db(str(db_path))
    add_device(db, "T-0001", "4521", start + 3600, start + 3600)
    _patrol(db, "T-0001", start + 3600, 1)
    db.conn.close()
    with _client(db_path, "UTC") as client:
        data = client.get("/api/day", params={"date": "2026-12-05"}).json()
    assert [(t["label"], len(t["coords"])) for t in data["tracks"]] == [("4521", 1)]
