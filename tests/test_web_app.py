"""What the web app's pages and APIs show and record: live positions with officers and the hot
spots being patrolled (also over the event stream of a real uvicorn), any day's taskings and
exports (audited), and hot spot sets saved, versioned and published with an audit trail."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway.reports.dwell import day_window
from gateway.schema import open_db
from gateway.web import fence_sets
from hotspots.cli import cli
from tests.web_fixtures import (
    SAMPLE_FENCES,
    LiveServer,
    csrf_of,
    login,
    make_app,
    make_db,
    session_cookie,
)

INSIDE_GRN_01 = (51.4806, -0.002)
OUTSIDE = (51.4790, -0.010)
DAY = "2026-03-02"


def add_device(db, device_id: str, collar: str | None, since: int, now: int) -> None:
    db["devices"].insert({"device_id": device_id, "source": "tracker", "first_seen": since,
                          "last_seen": now, "registered_at": since}, replace=True)
    if collar:
        db["assignments"].insert({"device_id": device_id, "collar": collar, "start_ts": since})


def add_fix(db, device_id: str, seq: int, tst: int, lat: float, lon: float) -> None:
    with db.conn:
        db.conn.execute("INSERT INTO positions (device_id, seq, source, tst, lat, lon, acc_m)"
                        " VALUES (?, ?, 'tracker', ?, ?, ?, 5)", (device_id, seq, tst, lat, lon))
        db.conn.execute("UPDATE devices SET last_seen = ?, last_fix_tst = ? WHERE device_id = ?",
                        (tst, tst, device_id))


@pytest.fixture
def db_path(tmp_path):
    return make_db(tmp_path / "gateway.db")


@pytest.fixture
def app(db_path):
    return make_app(db_path)


def logged_in(app, username: str) -> TestClient:
    client = TestClient(app)
    assert login(client, username).status_code == 303
    return client


def test_live_shows_who_is_where_and_which_hot_spot_is_patrolled(app, db_path):
    now = int(time.time())
    db = open_db(str(db_path))
    add_device(db, "T-1", "4521", now - 3600, now)
    add_device(db, "T-2", None, now - 3600, now)
    add_fix(db, "T-1", 1, now - 20, *INSIDE_GRN_01)
    add_fix(db, "T-2", 1, now - 20, *OUTSIDE)
    with logged_in(app, "sue") as client:
        live = client.get("/api/live").json()
    by_device = {f["device_id"]: f for f in live["fixes"]}
    assert by_device["T-1"]["officer"] == "4521" and by_device["T-2"]["officer"] is None
    assert live["patrolled"] == {"HS-GRN-01": ["4521"]}
    assert [f["properties"]["id"] for f in live["hotspots"]["features"]] == [
        "HS-GRN-01", "HS-GRN-02"]
    states = {d["device_id"]: d["states"] for d in live["fleet"]["devices"]}
    assert "signed out" in states["T-1"]
    row = db.execute("SELECT username, action, subject FROM audit_log"
                     " WHERE action = 'view_live'").fetchone()
    assert row == ("sue", "view_live", "officers:4521")


def officer_4600_outside(db_path):
    """Officer 4600 carries T-9, last seen outside every hot spot: the open database and now."""
    now = int(time.time())
    db = open_db(str(db_path))
    add_device(db, "T-9", "4600", now - 600, now)
    add_fix(db, "T-9", 1, now - 5, *OUTSIDE)
    return db, now


def read_live_events(url: str, cookie: str, until) -> tuple[list[tuple[str, dict]],
                                                           threading.Event, threading.Thread]:
    """Open ``/api/live/events`` on a thread and collect ``(event, data)`` pairs until
    ``until(event, data)`` holds; returns the list, an event set then, and the thread."""
    import httpx2 as httpx

    events: list[tuple[str, dict]] = []
    done = threading.Event()

    def read():
        with httpx.Client(base_url=url, cookies={"hotspots_session": cookie},
                          timeout=httpx.Timeout(10, read=30)) as client, \
                client.stream("GET", "/api/live/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    events.append((event, json.loads(line[6:])))
                    if until(*events[-1]):
                        done.set()
                        return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    return events, done, reader


def test_event_stream_sends_a_new_fix_to_the_browser(db_path):
    """Over a real uvicorn: a fix stored by another connection (the gateway) arrives as a
    ``fixes`` event on an open stream."""
    db, now = officer_4600_outside(db_path)
    with LiveServer(make_app(db_path)) as server:
        cookie = session_cookie(server.url, "sue")
        events, got_fix, _ = read_live_events(server.url, cookie,
                                              lambda event, body: event == "fixes")
        assert events and events[0][0] == "snapshot"
        assert [f["device_id"] for f in events[0][1]["fixes"]] == ["T-9"]
        add_fix(db, "T-9", 2, now, *INSIDE_GRN_01)
        assert got_fix.wait(10), events
    kind, body = events[-1]
    assert kind == "fixes"
    assert [(f["device_id"], f["officer"]) for f in body["fixes"]] == [("T-9", "4600")]
    assert body["patrolled"] == {"HS-GRN-01": ["4600"]}
    assert db.execute("SELECT username, subject FROM audit_log WHERE action = 'view_live'"
                      ).fetchall() == [("sue", "officers:4600")]


def test_an_officer_who_starts_reporting_on_an_open_stream_is_audited_as_viewed(db_path):
    """The stream is audited when it opens (officers shown then) and again for each officer
    whose positions it sends later: the log names everyone whose position the page showed."""
    db, now = officer_4600_outside(db_path)
    with LiveServer(make_app(db_path)) as server:
        cookie = session_cookie(server.url, "sue")
        events, got_new, _ = read_live_events(
            server.url, cookie, lambda event, body: event == "fixes"
            and any(f["officer"] == "4601" for f in body["fixes"]))
        assert [event for event, _ in events] == ["snapshot"]
        add_device(db, "T-10", "4601", now - 60, now)  # signed out after the page opened
        add_fix(db, "T-10", 1, now, *INSIDE_GRN_01)
        assert got_new.wait(10), events
    rows = db.execute("SELECT username, subject, detail FROM audit_log WHERE action ="
                      " 'view_live' ORDER BY id").fetchall()
    assert [r[:2] for r in rows] == [("sue", "officers:4600"), ("sue", "officers:4601")]
    assert "newly shown" in rows[1][2]


@pytest.fixture
def patrolled_day(db_path):
    """Officer 4521 spends 20 minutes in HS-GRN-01 on DAY; a tasking there is done, one at
    HS-GRN-02 is not performed."""
    db = open_db(str(db_path))
    t0 = day_window(DAY)[0] + 10 * 3600
    add_device(db, "T-1", "4521", t0 - 600, t0 + 3600)
    for k in range(150):
        lon = -0.004 + min(k, 20) * 0.0001  # walks in, then stays
        add_fix(db, "T-1", k + 1, t0 + 10 * k, 51.4806, lon)
    csv = ("date,hotspot,start,end,officer,team,required_minutes\n"
           f"{DAY},HS-GRN-01,10:00,11:00,4521,,15\n{DAY},HS-GRN-02,12:00,13:00,4521,,15\n")
    import io

    from gateway.reports.taskings import import_taskings

    import_taskings(db, io.StringIO(csv))
    return db


def test_day_page_shows_taskings_outcomes_dwell_and_charts(app, patrolled_day):
    with logged_in(app, "ann") as client:
        page = client.get(f"/day?date={DAY}").text
    taskings = re.search(r'<table id="taskings">.*?</table>', page, re.S).group(0)
    assert re.search(r"HS-GRN-01</td><td>4521</td><td>10:00–11:00.*?<td>done</td>", taskings)
    assert re.search(r"HS-GRN-02</td><td>4521</td>.*?<td>not performed</td>", taskings)
    dwell = re.search(r'<table id="dwell">.*?</table>', page, re.S).group(0)
    assert re.search(r"<td>4521</td><td>\d+\.\d</td><td></td>", dwell)
    assert page.count("<svg") == 2 and 'class="bar"' in page
    assert "HS-GRN-02 12:00–13:00 (4521): not performed" in page


def test_every_export_downloads_and_is_audited(app, patrolled_day):
    from gateway.web.day import EXPORTS

    with logged_in(app, "sue") as client:
        for name in EXPORTS:
            response = client.get(f"/export/{name}?date={DAY}")
            assert response.status_code == 200, (name, response.text[:200])
            assert response.headers["content-disposition"].startswith("attachment;")
            assert len(response.content) > 20, name
        visits = client.get(f"/export/visits.csv?date={DAY}").text.splitlines()
    assert visits[0].startswith("officer,device_id,hotspot")
    assert visits[1].startswith("4521,T-1,HS-GRN-01")
    rows = patrolled_day.execute("SELECT username, subject, detail FROM audit_log"
                                 " WHERE action = 'export'").fetchall()
    assert len(rows) == len(EXPORTS) + 1
    assert all(r[0] == "sue" and r[1] == "officers:4521" for r in rows)
    assert {r[2].split()[1] for r in rows} == set(EXPORTS)


def _moved(doc: dict, hid: str, dlon: float) -> dict:
    doc = json.loads(json.dumps(doc))
    for feat in doc["features"]:
        if feat["properties"]["id"] == hid:
            ring = feat["geometry"]["coordinates"][0]
            feat["geometry"]["coordinates"][0] = [[x + dlon, y] for x, y in ring]
    return doc


def test_saving_a_set_versions_it_and_records_who_changed_which_boundary(app, db_path):
    original = json.loads(SAMPLE_FENCES.read_text())
    with logged_in(app, "ann") as client:
        csrf = csrf_of(client)
        checked = client.post("/api/fences/check", json=_moved(original, "HS-GRN-01", 0.0005),
                              headers={"X-CSRF-Token": csrf}).json()
        assert checked["ok"] and checked["device_bytes"] > 0
        saved = client.post("/api/fences/save", json=_moved(original, "HS-GRN-01", 0.0005),
                            headers={"X-CSRF-Token": csrf}).json()
        assert saved["changes"] == [["HS-GRN-01", "boundary"]]
        assert saved["version"] == checked["version"]
        bad = json.loads(json.dumps(original))
        bad["features"][1]["properties"]["density"] = "extreme"
        refused = client.post("/api/fences/check", json=bad, headers={"X-CSRF-Token": csrf})
        problems = refused.json()["problems"]
        assert not refused.json()["ok"]
        assert problems[0]["feature"] == 1 and "'extreme'" in problems[0]["message"]
        # An analyst may save but not publish.
        assert client.post("/api/fences/publish", json={"id": saved["id"]},
                           headers={"X-CSRF-Token": csrf}).status_code == 403
    db = open_db(str(db_path))
    edits = fence_sets.edits(db)
    assert [(e["username"], e["hotspot"], e["change"]) for e in edits] == [
        ("ann", "HS-GRN-01", "boundary"),  # newest first, after the seeded file's set
        ("(file)", "HS-GRN-02", "added"), ("(file)", "HS-GRN-01", "added")]
    before, after = db.execute("SELECT before, after FROM fence_edits WHERE username = 'ann'"
                               ).fetchone()
    assert json.loads(before) != json.loads(after)
    assert db.execute("SELECT action, subject FROM audit_log WHERE action = 'fences_save'"
                      ).fetchone() == ("fences_save", "hotspots:HS-GRN-01(boundary)")


def test_a_past_day_keeps_the_boundary_it_was_computed_with(db_path, patrolled_day):
    """The officer stood in the original HS-GRN-01. After the boundary is moved away and the
    new set published, DAY is still computed with the set in force then."""
    app = make_app(db_path)
    original = json.loads(SAMPLE_FENCES.read_text())
    moved = _moved(original, "HS-GRN-01", 0.01)
    db = open_db(str(db_path))
    row, _ = fence_sets.save(db, moved, "sue")
    fence_sets.mark_published(db, row.id, "sue")  # now: long after DAY
    with logged_in(app, "sue") as client:
        past = client.get(f"/api/day?date={DAY}").json()
        assert past["fence_set"]["version"] != row.version
        assert [s["visits"] for s in past["hotspots"]] == [1, 0]
        today = client.get("/api/live").json()
        assert today["fence_set"]["version"] == row.version


def test_publish_sends_the_set_to_the_broker_and_marks_it(db_path, mosquitto):
    from fences.publish import READ_BACK_S  # noqa: F401  (publish waits for the read-back)
    from tracker import wire

    app = make_app(db_path, broker=mosquitto.address, accounts_path=str(mosquitto.accounts_path))
    with logged_in(app, "sue") as client:
        csrf = csrf_of(client)
        current = client.get("/api/fences").json()["set"]
        published = client.post("/api/fences/publish", json={"id": current["id"]},
                                 headers={"X-CSRF-Token": csrf})
        assert published.status_code == 200, published.text
        assert published.json()["version"] == current["version"]
        assert published.json()["topic"] == wire.fences_topic("main")
    db = open_db(str(db_path))
    assert db.execute("SELECT published_by FROM fence_sets WHERE id = ?",
                      (current["id"],)).fetchone() == ("sue",)
    assert db.execute("SELECT detail FROM audit_log WHERE action = 'fences_publish'"
                      ).fetchone()[0].startswith(f"version {current['version']}")


def test_user_cli_adds_lists_and_disables(tmp_path, monkeypatch):
    db = str(tmp_path / "g.db")
    monkeypatch.setenv("HOTSPOTS_WEB_PASSWORD", "long enough password")
    runner = CliRunner()
    result = runner.invoke(cli, ["web", "user", "add", "jo", "--role", "staff", "--db", db])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["web", "user", "add", "jo", "--role", "staff", "--db", db])
    assert result.exit_code != 0 and "exists already" in result.output
    result = runner.invoke(cli, ["web", "user", "add", "kim", "--role", "boss", "--db", db])
    assert result.exit_code != 0
    monkeypatch.setenv("HOTSPOTS_WEB_PASSWORD", "short")
    result = runner.invoke(cli, ["web", "user", "add", "kim", "--role", "analyst", "--db", db])
    assert result.exit_code != 0 and "too short" in result.output
    assert runner.invoke(cli, ["web", "user", "disable", "jo", "--db", db]).exit_code == 0
    listed = runner.invoke(cli, ["web", "user", "list", "--db", db]).output
    assert re.search(r"jo\s+staff\s+\(disabled\)", listed)
    stored = open_db(db).execute("SELECT password_hash FROM web_users").fetchone()[0]
    assert stored.startswith("scrypt$") and "long enough" not in stored


@pytest.mark.parametrize("body,why", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"type": "Feature"}', "FeatureCollection"),
])
def test_bad_fence_requests_get_a_clear_answer(app, body, why):
    with logged_in(app, "ann") as client:
        headers = {"X-CSRF-Token": csrf_of(client), "Content-Type": "application/json"}
        checked = client.post("/api/fences/check", content=body, headers=headers)
        saved = client.post("/api/fences/save", content=body, headers=headers)
    assert checked.status_code in (200, 400)
    text = json.dumps(checked.json())
    assert why in text and checked.json()["ok"] is False
    assert saved.status_code == 400 and why in json.dumps(saved.json())


def test_bad_day_and_unknown_export_are_refused_politely(app):
    with logged_in(app, "sue") as client:
        page = client.get("/day?date=yesterday")
        assert page.status_code == 400
        assert "bad date &#39;yesterday&#39;: use YYYY-MM-DD" in page.text
        assert client.get("/api/day?date=2026-13-01").status_code == 400
        assert client.get(f"/export/secrets.txt?date={DAY}").status_code == 404


def test_a_day_is_computed_once_until_the_data_changes(app, db_path, patrolled_day):
    from gateway.web.day import DayCache

    cache = DayCache()
    db = open_db(str(db_path))
    first = cache.get(db, DAY, dt_utc(), "UTC")
    assert cache.get(db, DAY, dt_utc(), "UTC") is first
    add_fix(db, "T-1", 1000, day_window(DAY)[0] + 12 * 3600, *INSIDE_GRN_01)
    second = cache.get(db, DAY, dt_utc(), "UTC")
    assert second is not first
    db.execute("UPDATE assignments SET end_ts = ?", (day_window(DAY)[0] + 10 * 3600 + 600,))
    db.conn.commit()
    third = cache.get(db, DAY, dt_utc(), "UTC")
    assert third is not second and {v.officer for v in third.visits} == {"4521", None}


def dt_utc():
    import datetime as dt

    return dt.UTC


def test_hotspots_web_serves_and_stops_on_sigterm(db_path):
    """The command the systemd unit runs: serves the login page, and SIGTERM stops it."""
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "hotspots", "web", "--db", str(db_path),
                               "--port", str(port), "--fences", str(SAMPLE_FENCES)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    assert r.status == 200 and b"Log in" in r.read()
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal: systemd counts an exit by
        # SIGTERM as a clean stop.
        assert server.wait(15) in (0, -signal.SIGTERM)
        log = server.stdout.read()
        assert "Finished server process" in log, log
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_an_open_live_stream_ends_when_the_session_does(db_path, monkeypatch):
    """Disabling a user stops the positions already streaming to their browser."""
    import httpx2 as httpx

    from gateway.web import auth
    from gateway.web.pages import live as web_app

    monkeypatch.setattr(web_app, "HEARTBEAT_S", 0.5)
    events: list[str] = []
    with LiveServer(make_app(db_path)) as server:
        cookie = session_cookie(server.url, "sue")
        with httpx.Client(base_url=server.url, cookies={"hotspots_session": cookie},
                          timeout=httpx.Timeout(10, read=10)) as client, \
                client.stream("GET", "/api/live/events") as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
                    if events == ["snapshot"]:
                        auth.set_disabled(open_db(str(db_path)), "sue", True)
    assert events == ["snapshot", "ended"]


def test_logins_are_refused_after_repeated_failures(app):
    with TestClient(app) as client:
        for _ in range(5):
            assert login(client, "ann", "wrong password!").status_code == 401
        refused = login(client, "ann")  # the right password, too late
        assert refused.status_code == 429 and "Too many failed logins" in refused.text
        assert login(client, "sue").status_code == 303  # another user is not affected


def test_broker_dir_gives_the_listener_and_accounts(mosquitto):
    from hotspots.cli_web import _broker_from_dir

    assert _broker_from_dir(str(mosquitto.workdir)) == mosquitto.address
    assert (mosquitto.workdir / "accounts.json").exists()


def test_publishing_to_an_unreachable_broker_says_so_and_changes_nothing(db_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    app = make_app(db_path, broker=f"127.0.0.1:{closed}")
    with logged_in(app, "sue") as client:
        current = client.get("/api/fences").json()["set"]
        answer = client.post("/api/fences/publish", json={"id": current["id"]},
                             headers={"X-CSRF-Token": csrf_of(client)})
    assert answer.status_code == 502 and "cannot reach" in answer.json()["error"]
    db = open_db(str(db_path))
    assert db.execute("SELECT published_by FROM fence_sets WHERE id = ?",
                      (current["id"],)).fetchone() == ("(file)",)
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'fences_publish'"
                      ).fetchone() == (0,)


def test_the_fence_editor_serves_geoman_from_set_up_or_says_what_to_install(
        db_path, tmp_path, monkeypatch):
    """Leaflet-Geoman comes from npm at set-up (``make map-assets``), never from a CDN; a station
    without it gets the command on the page instead of a map with no drawing tools."""
    installed = tmp_path / "geoman"
    installed.mkdir()
    (installed / "leaflet-geoman.min.js").write_text("/* geoman */")
    monkeypatch.setenv("HOTSPOTS_GEOMAN_DIR", str(installed))
    with logged_in(make_app(db_path), "sue") as client:
        page = client.get("/fences").text
        assert '<script src="/static/geoman/leaflet-geoman.min.js">' in page
        assert "editor-missing" not in page
        assert client.get("/static/geoman/leaflet-geoman.min.js").text == "/* geoman */"

    monkeypatch.setenv("HOTSPOTS_GEOMAN_DIR", str(tmp_path / "nowhere"))
    with logged_in(make_app(db_path), "sue") as client:
        page = client.get("/fences").text
        assert 'id="editor-missing"' in page and "make map-assets" in page
        assert client.get("/static/geoman/leaflet-geoman.min.js").status_code == 404
