"""A day of mixed sources, replayed through the real parts, with its ground truth.

Six officers patrol the two sample hot spots (``fences/sample.geojson``) yesterday (UTC), each
with different kit, and each source reaches the database the way it would at a station:

==========  =====================  ==========================================================
collar      kit                    how it arrives
==========  =====================  ==========================================================
PC101       tracker ``T-101``      MQTT through a private Mosquitto into the gateway process:
                                   locations every 10 s and the tracker's own transitions
PC202       phone ``pc202``        MQTT (OwnTracks app messages): locations every 30 s, an
                                   Android transition without ``rid`` for the hot spot, one
                                   for the phone's own "Home" region (not a hot spot)
PC303       radio ``issi:2340303``  LIP short reports every 2 minutes through the PEI framing
                                   and the Airwave store (its serial path after the port)
PC404,      vehicle ``VEH-1``      OsmAnd-protocol reports over HTTP to the AVL endpoint:
PC405                              parked in a hot spot (PC405 gets out half-way), later
                                   driving straight through the other one at 12 m/s
PC506       camera ``CAM-9``       a body-worn camera's CSV export, ``hotspots import``
==========  =====================  ==========================================================

:func:`build` writes the day's inputs into a folder (the camera CSV, the taskings CSV, the
truth); :func:`replay` sends everything through the parts; :func:`check` compares the dwell
report with the truth minute by minute and the exception report with the expected outcomes.
``hotspots sim mixed-day`` does all three.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from shapely.geometry import shape
from shapely.ops import polylabel

from fences.geo import LocalFrame

FENCES = Path(__file__).resolve().parent.parent / "fences" / "sample.geojson"
HS1, HS2 = "HS-GRN-01", "HS-GRN-02"
#: Minutes of tolerance between the reported dwell and the truth (fixes every 10 s to 2 min).
TOLERANCE_MIN = 2.5


@dataclass
class Stay:
    """Ground truth: ``collar`` was in ``hotspot`` from ``enter`` to ``leave``."""

    collar: str
    hotspot: str
    enter: int
    leave: int


@dataclass
class Day:
    """The day's plan: its date, the truth, the expected exception outcomes."""

    date: str
    t0: int
    plans: list[Stay] = field(default_factory=list)
    truth: list[Stay] = field(default_factory=list)
    #: (collar, hot spot, start HH:MM, end HH:MM, required minutes, expected outcome)
    taskings: list[tuple[str, str, str, str, int, str]] = field(default_factory=list)


def _inside_points(frame: LocalFrame) -> dict[str, tuple[float, float]]:
    doc = json.loads(FENCES.read_text())
    out = {}
    for feature in doc["features"]:
        # the point farthest from the outline: standing about there stays inside
        point = polylabel(shapely.Polygon(shape(feature["geometry"]).exterior), 0.00001)
        out[feature["properties"]["id"]] = frame.to_xy(point.x, point.y)
    return out


def _polygons() -> dict[str, object]:
    return {f["properties"]["id"]: shape(f["geometry"])
            for f in json.loads(FENCES.read_text())["features"]}


def plan(now: float | None = None) -> Day:
    """Yesterday's patrols (UTC) and what should come out of them."""
    today = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).date()
    day = today - dt.timedelta(days=1)
    t0 = int(dt.datetime.combine(day, dt.time(0, 0), dt.UTC).timestamp())

    def at(hhmm: str) -> int:
        h, m = hhmm.split(":")
        return t0 + int(h) * 3600 + int(m) * 60

    d = Day(day.isoformat(), t0)
    #: Where each officer stands still (the walkers walk in and out; the vehicle parks).
    d.plans = [
        Stay("PC101", HS1, at("09:00"), at("09:20")),
        Stay("PC202", HS2, at("10:00"), at("10:16")),
        Stay("PC303", HS1, at("11:00"), at("11:20")),
        Stay("PC404", HS2, at("12:00"), at("12:40")),
        Stay("PC405", HS2, at("12:00"), at("12:30")),
        Stay("PC506", HS1, at("14:00"), at("14:15")),
    ]
    frame = LocalFrame(51_481_000, 0)
    points = _inside_points(frame)
    polygons = _polygons()
    for s in d.plans:
        if s.collar in ("PC404", "PC405"):
            # the vehicle's rule: it counts while parked (it drives in and out at 10 m/s)
            d.truth.append(s)
        else:
            a, b = _truth_span(frame, points[s.hotspot], s.enter, s.leave,
                               polygons[s.hotspot])
            d.truth.append(Stay(s.collar, s.hotspot, a, b))
    d.taskings = [
        ("PC101", HS1, "08:55", "09:30", 15, "done"),
        ("PC202", HS2, "09:55", "10:30", 15, "done"),
        ("PC303", HS1, "10:55", "11:30", 15, "done"),
        ("PC404", HS2, "11:55", "13:00", 30, "done"),
        ("PC405", HS2, "11:55", "13:00", 45, "too_short"),
        ("PC404", HS1, "13:00", "13:30", 5, "not_performed"),  # drove through only
        ("PC506", HS1, "13:55", "14:30", 10, "done"),
    ]
    return d


def _track(frame: LocalFrame, target: tuple[float, float], enter: int, leave: int,
           step_s: int, approach_m: float = 400.0, speed_mps: float = 1.4,
           ) -> list[tuple[int, float, float, float]]:
    """``(t, lat, lon, speed)``: walk in from the west, stay (a few metres of wander), walk out
    east; the walker crosses the edge at about ``enter`` and ``leave``."""
    x0, y0 = target
    walk_s = int(approach_m / speed_mps)
    out = []
    for t in range(enter - walk_s, leave + walk_s + 1, step_s):
        x, y, v = _where(x0, y0, t, enter, leave, speed_mps)
        lon, lat = frame.to_lonlat(x, y)
        out.append((t, lat, lon, v))
    return out


def _where(x0: float, y0: float, t: int, enter: int, leave: int, speed_mps: float
           ) -> tuple[float, float, float]:
    """Where the walker of :func:`_track` is at ``t`` (metres), and how fast."""
    if t < enter:
        return x0 - speed_mps * (enter - t), y0, speed_mps
    if t > leave:
        return x0 + speed_mps * (t - leave), y0, speed_mps
    # standing about: a different spot (to the metre) every minute, as a person does; a
    # radio reporting one spot again and again is what the mast filter looks for
    k = (t - enter) // 60
    return x0 + 1.5 * (k % 9 - 4), y0 + 1.2 * (k % 7 - 3), 0.0


def _truth_span(frame: LocalFrame, target: tuple[float, float], enter: int, leave: int,
                polygon, speed_mps: float = 1.4) -> tuple[int, int]:
    """When the walker of :func:`_track` is truly inside ``polygon``, to the second."""
    inside = []
    for t in range(enter - 600, leave + 601):
        x, y, _ = _where(target[0], target[1], t, enter, leave, speed_mps)
        lon, lat = frame.to_lonlat(x, y)
        if polygon.contains(shapely.Point(lon, lat)):
            inside.append(t)
    if inside[-1] - inside[0] + 1 != len(inside):
        raise AssertionError("the planned stay leaves the hot spot: one stay is the truth")
    return inside[0], inside[-1] + 1


def _edge_times(frame: LocalFrame, track, polygon) -> list[tuple[int, bool, float, float]]:
    """Where a track crosses the hot spot outline: ``(t, entering, lat, lon)`` at the first
    fix inside / outside (what a tracker's fence engine reports, to the fix)."""
    out, inside = [], False
    for t, lat, lon, _ in track:
        now = polygon.contains(shapely.Point(lon, lat))
        if now != inside:
            out.append((t, now, lat, lon))
            inside = now
    return out


def build(folder: str | Path, now: float | None = None) -> Day:
    """Write the day's files into ``folder``: ``camera.csv`` (CAM-9's export),
    ``taskings.csv``, ``truth.json``; returns the plan."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    day = plan(now)
    frame = LocalFrame(51_481_000, 0)
    points = _inside_points(frame)
    cam = day.plans[5]
    with open(folder / "camera.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Device Serial", "Officer", "Event Time (UTC)", "GPS Lat", "GPS Long",
                      "Accuracy (m)"])
        for t, lat, lon, _ in _track(frame, points[cam.hotspot], cam.enter, cam.leave, 15):
            stamp = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            out.writerow(["X6039811A", cam.collar, stamp, f"{lat:.6f}", f"{lon:.6f}", 5])
    with open(folder / "taskings.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["date", "hotspot", "start", "end", "officer", "required_minutes"])
        for collar, hotspot, start, end, required, _ in day.taskings:
            out.writerow([day.date, hotspot, start, end, collar, required])
    (folder / "truth.json").write_text(json.dumps({
        "date": day.date, "stays": [s.__dict__ for s in day.truth],
        "outcomes": [[c, h, s, e, o] for c, h, s, e, _, o in day.taskings]}, indent=1))
    return day


@dataclass
class Replayed:
    """What the replay sent, per source."""

    sent: dict[str, int] = field(default_factory=dict)


def replay(db_path: str | Path, folder: str | Path, day: Day) -> Replayed:
    """Register the kit, record who carried it, and send the day through the real parts:
    a private Mosquitto and the gateway (tracker, phone), the PEI framing and the Airwave store
    (radio), the AVL endpoint over HTTP (vehicle) and the file import (camera)."""
    import paho.mqtt.client as paho

    from gateway.broker import Mosquitto
    from gateway.fleet import crew, identity
    from gateway.intake.airwave import lip
    from gateway.intake.airwave.sds import PeiParser, ctsdsr
    from gateway.intake.airwave.store import AirwaveStore, assign_radio
    from gateway.intake.files import Options
    from gateway.intake.files.csvtrack import parse_mapping
    from gateway.intake.files.importer import import_file
    from gateway.intake.service import Gateway
    from gateway.intake.vehicle_http import AvlServer
    from gateway.reports.taskings import import_taskings
    from gateway.schema import open_db
    from tracker import wire

    folder = Path(folder)
    frame = LocalFrame(51_481_000, 0)
    points = _inside_points(frame)
    polygons = _polygons()
    t = {s.collar: s for s in day.plans}
    shift = (day.t0 + 7 * 3600, day.t0 + 17 * 3600)
    db = open_db(str(db_path))
    identity.assign(db, "T-101", "PC101", at=shift[0], until=shift[1])
    identity.register_device(db, "pc202", source="owntracks")
    identity.assign(db, "pc202", "PC202", at=shift[0], until=shift[1])
    assign_radio(db, 2340303, "PC303", shift[0], shift[1])
    crew.board(db, "VEH-1", "PC404", at=day.t0 + 11 * 3600, until=shift[1])
    crew.board(db, "VEH-1", "PC405", at=day.t0 + 11 * 3600, until=t["PC405"].leave)
    with open(folder / "taskings.csv") as f:
        import_taskings(db, f)
    db.close()
    done = Replayed()

    # -- tracker and phone: MQTT through Mosquitto into the gateway -----------------------------
    broker = Mosquitto(workdir=folder / "broker").start()
    try:
        gateway = Gateway(broker.address, str(db_path), **broker.gateway.auth())
        stop = threading.Event()
        runner = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
        runner.start()
        if not gateway.connected.wait(10):
            raise RuntimeError("the gateway did not connect to the broker")
        messages: list[tuple[str, str, bytes]] = []
        stay = t["PC101"]
        track = _track(frame, points[stay.hotspot], stay.enter, stay.leave, 10)
        seq = 0
        for ts, lat, lon, v in track:
            seq += 1
            fix = _Fix(ts, lat, lon, v)
            messages.append(("T-101", "hotspots/dev/T-101/loc",
                             wire.location("T-101", seq, fix, ts + 1).encode()))
        for ts, entering, lat, lon in _edge_times(frame, track, polygons[stay.hotspot]):
            seq += 1
            messages.append(("T-101", "hotspots/dev/T-101/event", wire.transition(
                "T-101", seq, entering, stay.hotspot, "", ts, round(lat * 1e6),
                round(lon * 1e6), 300, ts + 1).encode()))
        stay = t["PC202"]
        track = _track(frame, points[stay.hotspot], stay.enter, stay.leave, 30)
        for ts, lat, lon, v in track:
            messages.append(("pc202", "owntracks/pc202/phone", json.dumps(
                {"_type": "location", "acc": 8, "batt": 70, "bs": 1, "conn": "m", "lat": lat,
                 "lon": lon, "t": "p", "tid": "02", "tst": ts, "vel": round(v * 3.6),
                 "created_at": ts + 1}).encode()))
        for ts, entering, lat, lon in _edge_times(frame, track, polygons[stay.hotspot]):
            messages.append(("pc202", "owntracks/pc202/phone/event", json.dumps(
                {"_type": "transition", "acc": 8, "desc": "Maze Hill estate",
                 "event": "enter" if entering else "leave", "lat": lat, "lon": lon, "t": "c",
                 "tid": "02", "tst": ts, "wtst": day.t0 - 86400}).encode()))
        for ts, event in ((stay.leave + 3600, "enter"), (stay.leave + 7200, "leave")):
            messages.append(("pc202", "owntracks/pc202/phone/event", json.dumps(
                {"_type": "transition", "acc": 8, "desc": "Home", "event": event,
                 "lat": 51.49, "lon": -0.02, "t": "c", "tid": "02", "tst": ts,
                 "wtst": day.t0 - 86400}).encode()))
        clients = {}
        for account, topic, payload in messages:
            client = clients.get(account)
            if client is None:
                client = clients[account] = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                                        client_id=account)
                client.username_pw_set(**broker.device(account).auth())
                client.connect(broker.host, broker.port)
                client.loop_start()
            client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 30
        while (gateway.intake is None or gateway.intake.counts.handled < len(messages)) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        for client in clients.values():
            client.disconnect()
            client.loop_stop()
        stop.set()
        runner.join(20)
        done.sent["mqtt"] = len(messages)
    finally:
        broker.cleanup()

    # -- radio: LIP through the PEI framing and the Airwave store -------------------------------
    db = open_db(str(db_path))
    store = AirwaveStore(db)
    parser = PeiParser()
    stay = t["PC303"]
    sent = 0
    for ts, lat, lon, v in _track(frame, points[stay.hotspot], stay.enter, stay.leave, 120):
        report = lip.short_report(lat, lon, time_elapsed=0, pos_err_class=1, speed=v * 3.6)
        data, nbits = lip.encode(report)
        frame_bytes = ctsdsr(2340303, 9999, bytes([lip.PROTOCOL_ID]) + data, 8 + nbits)
        for event in parser.feed(frame_bytes):
            if event.kind == "sds":
                store.handle(event.sds, ts + 2.0)
                sent += 1
    done.sent["radio"] = sent
    db.close()

    # -- vehicle: OsmAnd protocol over HTTP ----------------------------------------------------
    server = AvlServer(str(db_path), port=0).start()
    try:
        reports = []
        park = t["PC404"]
        x0, y0 = points[park.hotspot]
        for ts in range(park.enter - 120, park.leave + 121, 20):
            if park.enter <= ts <= park.leave:
                x, v = x0, 0.0
            else:
                x, v = x0 + (ts - park.enter if ts < park.enter else ts - park.leave) * 10, 10.0
            lon, lat = frame.to_lonlat(x, y0)
            reports.append((ts, lat, lon, v))
        hx, hy = points[HS1]
        drive = day.t0 + 13 * 3600 + 300
        for i in range(-10, 11):
            lon, lat = frame.to_lonlat(hx + i * 60, hy)
            reports.append((drive + i * 5, lat, lon, 12.0))
        for ts, lat, lon, v in reports:
            query = urllib.parse.urlencode({"id": "VEH-1", "timestamp": ts, "lat": f"{lat:.6f}",
                                            "lon": f"{lon:.6f}", "speed": v / 0.514444,
                                            "accuracy": 5})
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/?{query}",
                                        timeout=10) as answer:
                answer.read()
        done.sent["vehicle"] = len(reports)
    finally:
        server.shutdown()

    # -- camera: its CSV export ----------------------------------------------------------------
    db = open_db(str(db_path))
    result = import_file(db, folder / "camera.csv", "CAM-9", collar=t["PC506"].collar,
                         options=Options(columns=parse_mapping("time=Event Time (UTC)")))
    done.sent["camera"] = result.rows
    db.close()
    return done


class _Fix:
    """What ``tracker.wire.location`` reads from a fix."""

    def __init__(self, t: int, lat: float, lon: float, speed_mps: float):
        self.t = t
        self.lat_e6 = round(lat * 1e6)
        self.lon_e6 = round(lon * 1e6)
        self.acc_cm = 300
        self.speed_cmps = round(speed_mps * 100)
        self.course_cdeg = -1
        self.alt_cm = -1000000
        self.quality = 1
        self.sats = 9
        self.hdop_x100 = 90


@dataclass
class Check:
    """Report against truth: per (collar, hot spot) minutes reported and true, outcomes."""

    minutes: dict[tuple[str, str], tuple[float, float]]
    outcomes: list[tuple[str, str, str, str]]  # collar, hot spot, expected, reported
    stray: list[str]  # visits no truth explains (wrong officer, a phone's own region ...)

    @property
    def ok(self) -> bool:
        return (not self.stray and all(abs(a - b) <= TOLERANCE_MIN
                                       for a, b in self.minutes.values())
                and all(e == r for _, _, e, r in self.outcomes))

    def lines(self) -> list[str]:
        out = [f"{'collar':<8} {'hot spot':<10} {'reported':>9} {'truth':>7}"]
        for (collar, hotspot), (got, want) in sorted(self.minutes.items()):
            mark = "" if abs(got - want) <= TOLERANCE_MIN else "  <-- differs"
            out.append(f"{collar:<8} {hotspot:<10} {got:>8.1f}m {want:>6.1f}m{mark}")
        out.append("")
        out.append(f"{'collar':<8} {'hot spot':<10} {'expected':<14} reported")
        for collar, hotspot, expected, got in self.outcomes:
            mark = "" if expected == got else "  <-- differs"
            out.append(f"{collar:<8} {hotspot:<10} {expected:<14} {got}{mark}")
        for text in self.stray:
            out.append(f"unexplained visit: {text}")
        out.append("replay matches the truth" if self.ok else "replay DIFFERS from the truth")
        return out


def check(db_path: str | Path, day: Day) -> Check:
    """The dwell and exception reports of the replayed day against its truth."""
    from gateway.reports.dwell import day_window
    from gateway.reports.taskings import exception_report, taskings_for, team_members
    from gateway.reports.visits import HotSpotSet, compute_visits, union_seconds
    from gateway.schema import open_db

    db = open_db(str(db_path))
    hotspots = HotSpotSet.load(FENCES)
    window = day_window(day.date)
    visits = compute_visits(db, hotspots, window)
    minutes: dict[tuple[str, str], tuple[float, float]] = {}
    truth = {(s.collar, s.hotspot): (s.leave - s.enter) / 60 for s in day.truth}
    got: dict[tuple[str, str], list[tuple[int, int]]] = {}
    stray = []
    for v in visits:
        key = (v.officer or f"device {v.device_id}", v.hotspot)
        if key not in truth:
            stray.append(f"{key[0]} in {v.hotspot} {v.enter}-{v.leave} ({v.device_id})")
        got.setdefault(key, []).append((v.enter, v.leave))
    for key, want in truth.items():
        minutes[key] = (union_seconds(got.get(key, [])) / 60, want)
    outcomes_by = {}
    outcomes, _untasked = exception_report(taskings_for(db, day.date), visits,
                                           team_members(db), window)
    for o in outcomes:
        outcomes_by[(o.tasking.officer, o.tasking.hotspot, o.tasking.start_ts)] = o.status
    results = []
    for collar, hotspot, start, _end, _req, expected in day.taskings:
        h, m = start.split(":")
        start_ts = day.t0 + int(h) * 3600 + int(m) * 60
        results.append((collar, hotspot, expected,
                        outcomes_by.get((collar, hotspot, start_ts), "missing")))
    db.close()
    return Check(minutes, results, stray)
