"""Vehicles: a crew of collar numbers changing during a shift, dwell only when parked or at
walking pace, and the AVL feed over real HTTP in the OsmAnd protocol (as Traccar Client sends
it)."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from click.testing import CliRunner

from fences.geo import LocalFrame
from gateway.fleet import crew
from gateway.fleet.attribution import Span
from gateway.fleet.identity import assign, register_device
from gateway.intake.vehicle_http import KNOT_MPS, AvlError, AvlServer, decode, fix_time
from gateway.reports.visits import HotSpotSet, Presence, VisitRules, attribute, compute_visits
from gateway.schema import open_db
from hotspots.cli import cli

CENTRE = LocalFrame(51_480_450, 0)
T0 = 1_795_000_000  # 2026-11-18T11:06:40Z


def lonlat(x: float, y: float = 0.0) -> tuple[float, float]:
    return CENTRE.to_lonlat(x, y)


def square(half: float = 50.0) -> HotSpotSet:
    ring = [list(lonlat(dx, dy)) for dx, dy in ((-half, -half), (half, -half), (half, half),
                                                (-half, half), (-half, -half))]
    return HotSpotSet.load({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "HS1", "name": "Square", "density": "high"},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]})


# -- the protocol ---------------------------------------------------------------------------------
def test_decode_a_traccar_client_report():
    obs = decode({"id": "VEH-1", "timestamp": "1795000000", "lat": "51.5", "lon": "-0.01",
                  "speed": "10", "bearing": "270.5", "altitude": "12", "accuracy": "4",
                  "batt": "88", "charge": "true", "driverUniqueId": "D42"}, "http:1.2.3.4")
    assert (obs.source, obs.device_id, obs.tst, obs.lat, obs.lon) == (
        "vehicle", "VEH-1", T0, 51.5, -0.01)
    assert obs.speed_mps == round(10 * KNOT_MPS, 2) == 5.14  # knots on the wire
    assert (obs.course_deg, obs.alt_m, obs.acc_m) == (270.5, 12, 4)
    assert obs.batt == 88 and obs.fix_quality is None
    assert obs.extra == {"charge": "true", "driverUniqueId": "D42"}
    invalid = decode({"id": "V", "lat": "1", "lon": "1", "timestamp": "1795000000",
                      "valid": "false"}, "http:x")
    assert invalid.fix_quality == 0  # the intake's filters flag it "invalid"


@pytest.mark.parametrize(("text", "tst"), [
    ("1795000000", T0), ("1795000000123", T0), ("2026-11-18T11:06:40Z", T0),
    ("2026-11-18T12:06:40+01:00", T0), ("2026-11-18 11:06:40", T0)])
def test_timestamps_as_traccar_reads_them(text, tst):
    assert fix_time(text) == tst


@pytest.mark.parametrize(("params", "reason"), [
    ({"lat": "1", "lon": "1", "timestamp": "1795000000"}, "no_device"),
    ({"id": "a/b", "lat": "1", "lon": "1", "timestamp": "1795000000"}, "bad_device_id"),
    ({"id": "V", "lat": "1", "lon": "1"}, "no_time"),
    ({"id": "V", "lat": "1", "lon": "1", "timestamp": "yesterday"}, "bad_time"),
    ({"id": "V", "timestamp": "1795000000"}, "no_position"),
    ({"id": "V", "lat": "nan", "lon": "1", "timestamp": "1795000000"}, "bad_field"),
    ({"id": "V", "lat": "91", "lon": "1", "timestamp": "1795000000"}, "bad_field"),
    ({"id": "V", "location": "1;2", "timestamp": "1795000000"}, "bad_field"),
])
def test_bad_reports(params, reason):
    with pytest.raises(AvlError) as info:
        decode(params, "http:x")
    assert info.value.reason == reason


def test_location_parameter():
    obs = decode({"id": "V", "location": "51.5,-0.2", "timestamp": "1795000000"}, "http:x")
    assert (obs.lat, obs.lon) == (51.5, -0.2)


# -- crews ----------------------------------------------------------------------------------------
def test_crew_changes_during_a_shift(db):
    crew.board(db, "VEH-1", "PC1", at=T0)
    crew.board(db, "VEH-1", "PC2", at=T0)
    crew.alight(db, "VEH-1", "PC2", at=T0 + 1800)
    crew.board(db, "VEH-1", "PC3", at=T0 + 2400)
    assert crew.crew(db, "VEH-1", T0 + 60) == ["PC1", "PC2"]
    assert crew.crew(db, "VEH-1", T0 + 2000) == ["PC1"]
    assert crew.crew(db, "VEH-1", T0 + 3000) == ["PC1", "PC3"]
    with pytest.raises(crew.CrewError, match="already aboard"):
        crew.board(db, "VEH-1", "PC1", at=T0 + 100)
    with pytest.raises(crew.CrewError, match="not aboard"):
        crew.alight(db, "VEH-1", "PC2", at=T0 + 2000)
    with pytest.raises(crew.CrewError, match="collar"):
        crew.board(db, "VEH-1", "no way", at=T0)
    assert db.execute("SELECT source FROM devices WHERE device_id = 'VEH-1'").fetchone() == (
        "vehicle",)
    register_device(db, "T-1")
    with pytest.raises(crew.CrewError, match="tracker"):
        crew.board(db, "T-1", "PC1", at=T0)


def test_a_stay_is_split_per_officer_aboard():
    stay = Presence("VEH-1", "HS1", T0, T0 + 1000, "positions")
    crews = {"VEH-1": [Span(T0 - 100, T0 + 600, "PC2"), Span(T0 - 100, 2**62, "PC1"),
                       Span(T0 + 800, 2**62, "PC3")]}
    pieces = sorted((who, p.enter - T0, p.leave - T0) for who, p in attribute([stay], {}, crews))
    assert pieces == [("PC1", 0, 1000), ("PC2", 0, 600), ("PC3", 800, 1000)]
    alone = attribute([stay], {}, {"VEH-1": [Span(T0 + 200, T0 + 400, "PC2")]})
    assert sorted((w or "-", p.enter - T0, p.leave - T0) for w, p in alone) == [
        ("-", 0, 200), ("-", 400, 1000), ("PC2", 200, 400)]
    # a tracker's assignments cut as before, without crews
    solo = attribute([stay], {"VEH-1": [Span(T0 + 500, 2**62, "PC4")]})
    assert [(w, p.enter - T0, p.leave - T0) for w, p in solo] == [(None, 0, 500),
                                                                  ("PC4", 500, 1000)]


def fix(db, device: str, t: int, x: float, speed: float | None, source: str = "vehicle"):
    lon, lat = lonlat(x)
    db.execute("INSERT INTO positions (device_id, source, tst, lat, lon, acc_m, speed_mps)"
               " VALUES (?,?,?,?,?,?,?)", (device, source, t, lat, lon, 5.0, speed))


def test_parked_counts_driving_through_does_not(db):
    spots = square()
    crew.board(db, "VEH-1", "PC1", at=T0 - 60)
    crew.board(db, "VEH-1", "PC2", at=T0 - 60)
    crew.alight(db, "VEH-1", "PC2", at=T0 + 300)
    # drives in at 12 m/s, parks 10 minutes in the hot spot, drives out
    t = T0
    for x in range(-300, 0, 60):
        fix(db, "VEH-1", t, x, 12.0)
        t += 5
    for _ in range(21):
        fix(db, "VEH-1", t, 0, 0.0)
        t += 30
    for x in range(60, 400, 60):
        fix(db, "VEH-1", t, x, 12.0)
        t += 5
    # later: straight through at 13 m/s without stopping, speeds not reported (implied)
    t += 3600
    for x in range(-300, 400, 65):
        fix(db, "VEH-1", t, x, None)
        t += 5
    visits = compute_visits(db, spots)
    got = sorted((v.officer, v.enter - T0, v.leave - T0) for v in visits)
    parked_from, parked_to = 25, 25 + 600
    assert [(o, a) for o, a, _ in got] == [("PC1", parked_from), ("PC2", parked_from)]
    assert got[0][2] >= parked_to and got[1][2] == 300  # PC2 got out at +300
    # the drive-through is gone because of the speed rule, not the minimum visit: with the
    # rule switched off (say, a mounted unit) and no minimum, it appears
    strict = compute_visits(db, spots, rules=VisitRules(min_visit_s=0))
    loose = compute_visits(db, spots, rules=VisitRules(min_visit_s=0,
                                                       vehicle_max_speed_mps=100))
    assert len([v for v in strict if v.officer == "PC1"]) == 1
    assert len([v for v in loose if v.officer == "PC1"]) == 2


def test_walking_officers_are_not_affected(db):
    spots = square()
    assign(db, "T-1", "PC9", at=T0 - 60)
    for i in range(21):
        fix(db, "T-1", T0 + 30 * i, 0, 25.0, source="tracker")  # a tracker's noisy speed
    assert [(v.officer, v.hotspot) for v in compute_visits(db, spots)] == [("PC9", "HS1")]


# -- over real HTTP -------------------------------------------------------------------------------
def get(port: int, **params) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}/?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post(port: int, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def avl(tmp_path):
    path = str(tmp_path / "v.db")
    db = open_db(path)
    crew.board(db, "VEH-1", "PC1", at=T0 - 3600)
    db.close()
    server = AvlServer(path, port=0, clock=lambda: T0 + 60).start()
    yield server, path
    server.shutdown()


def test_reports_over_http_stored_once_and_bad_ones_quarantined(avl):
    server, path = avl
    report = {"id": "VEH-1", "timestamp": T0, "lat": 51.48045, "lon": -0.0001, "speed": 0,
              "bearing": 0, "altitude": 20, "accuracy": 5, "batt": 77}
    assert get(server.port, **report) == (200, "stored")
    assert get(server.port, **report) == (200, "duplicate")  # a resend after a lost answer
    assert post(server.port, urllib.parse.urlencode({**report, "timestamp": T0 + 5}).encode()
                ) == (200, "stored")
    status, text = get(server.port, **{**report, "id": "VEH-9"})
    assert status == 400 and text.startswith("unknown_device")
    status, text = get(server.port, id="VEH-1", lat=51.5, lon=0)
    assert status == 400 and text.startswith("no_time")
    status, _ = post(server.port, b"\xff\xfe not a form")
    assert status == 400
    # the server is still there after all that
    assert get(server.port, **{**report, "timestamp": T0 + 10})[0] == 200
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT device_id, source, tst, speed_mps, alt_m FROM positions"
                            " ORDER BY tst").fetchall()
        held = conn.execute("SELECT reason, device_id FROM quarantine ORDER BY id").fetchall()
    assert rows == [("VEH-1", "vehicle", T0 + dt, 0.0, 20.0) for dt in (0, 5, 10)]
    assert held == [("unknown_device", "VEH-9"), ("no_time", "VEH-1"), ("malformed", None)]
    assert server.counts["stored"] == 3 and server.counts["duplicate"] == 1


def test_oversize_body_refused(avl):
    server, _ = avl
    assert post(server.port, b"id=VEH-1&x=" + b"a" * 9000)[0] == 413


def test_slow_client_does_not_block_others(tmp_path):
    path = str(tmp_path / "s.db")
    db = open_db(path)
    crew.board(db, "VEH-1", "PC1", at=T0 - 3600)
    db.close()
    server = AvlServer(path, port=0, timeout_s=0.5, clock=lambda: T0 + 60).start()
    try:
        stalled = socket.create_connection(("127.0.0.1", server.port))
        stalled.sendall(b"GET /?id=VEH-1 HTTP/1.1\r\n")  # and never finishes
        status, _ = get(server.port, id="VEH-1", timestamp=T0, lat=51.5, lon=0.0)
        assert status == 200
        stalled.close()
    finally:
        server.shutdown()


def test_vehicle_serve_command(tmp_path):
    path = tmp_path / "cli.db"
    assert CliRunner().invoke(cli, ["vehicle", "board", "VEH-2", "PC1", "PC2", "--db",
                                    str(path), "--at", str(T0 - 60)]).exit_code == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "hotspots", "vehicle", "serve", "--db",
                             str(path), "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in proc.stderr.readline()
        assert get(port, id="VEH-2", timestamp=int(time.time()) - 5, lat=51.5, lon=0.001
                   ) == (200, "stored")
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=10)[1]
    assert proc.returncode == 0 and "stored 1" in out
    shown = CliRunner().invoke(cli, ["vehicle", "crew", "VEH-2", "--db", str(path)])
    assert "PC1" in shown.output and "PC2" in shown.output
