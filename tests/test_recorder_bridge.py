"""The trackers as OwnTracks devices for the OwnTracks Recorder (issue 19): republished as
``owntracks/<station>/<device>`` with an ``lwt``, through a real Mosquitto, read back the way
the Recorder reads them.

The Recorder itself is not packaged for Debian; :func:`recorder_reads` applies the rules of its
``handle_message`` (recorder.c): a topic of at least three levels is ``<base>/<user>/<device>``
and what follows is the "relative topic" (``*`` for the base topic); JSON with ``_type``
``location``, ``transition`` or ``waypoint`` needs numeric ``lat`` and ``lon`` (a NaN is logged
and dropped); ``lwt``, ``cmd``, ``steps`` are filed as they are; retained messages are skipped
(its default, without ``-R``). ``ocat`` and the API list a user/device's locations: base-topic
``location`` records.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time

import paho.mqtt.client as paho
import pytest

from gateway.fleet.identity import register_device
from gateway.intake.service import Gateway
from gateway.recorder_bridge import RecorderBridge, translate
from gateway.schema import open_db
from tracker import wire


def recorder_reads(topic: str, payload: bytes, retained: bool) -> tuple | None:
    """``(user, device, reltopic, _type)`` the Recorder files for a message, or None."""
    if retained:
        return None
    parts = topic.split("/")
    if len(parts) < 3:
        return None
    user, device = parts[1], parts[2]
    rel = "/".join(parts[3:]) or "*"
    try:
        msg = json.loads(payload)
    except ValueError:
        return user, device, rel, None
    kind = msg.get("_type")
    if kind in ("location", "transition", "waypoint"):
        lat, lon = msg.get("lat"), msg.get("lon")
        if not all(isinstance(v, (int, float)) and not math.isnan(v) for v in (lat, lon)):
            return None
    return user, device, rel, kind


class Fix:
    def __init__(self, t: int, lat: float, lon: float):
        self.t, self.lat_e6, self.lon_e6 = t, round(lat * 1e6), round(lon * 1e6)
        self.acc_cm, self.speed_cmps, self.course_cdeg = 300, 140, 9000
        self.alt_cm, self.quality, self.sats, self.hdop_x100 = 2000, 1, 9, 90


NOW = int(time.time())
LOC = wire.location("T-1", 7, Fix(NOW - 30, 51.48, -0.001), NOW - 29).encode()
EVENT = wire.transition("T-1", 8, True, "HS-GRN-01", "Greenwich Park west gate", NOW - 20,
                        51_480_000, -1_000, 300, NOW - 19).encode()
OFFLINE = wire.status("T-1", False, NOW - 10).encode()
ONLINE = wire.status("T-1", True, NOW - 5, fences="abc", batt=80).encode()


@pytest.mark.parametrize(("topic", "payload", "want"), [
    ("hotspots/dev/T-1/loc", LOC, ("owntracks/main/T-1", LOC)),
    ("hotspots/dev/T-1/event", EVENT, ("owntracks/main/T-1/event", EVENT)),
    ("hotspots/dev/T-1/status", OFFLINE,
     ("owntracks/main/T-1", b'{"_type":"lwt","tst":%d,"tid":"-1"}' % (NOW - 10))),
    ("hotspots/dev/T-1/status", ONLINE, None),
    ("hotspots/dev/T-1/loc", b"[" * 5000, None),
    ("owntracks/a/b", LOC, None),
])
def test_translate(topic, payload, want):
    assert translate(topic, payload, "main") == want


def test_recorder_reads_what_the_bridge_publishes():
    for topic, payload in (("hotspots/dev/T-1/loc", LOC), ("hotspots/dev/T-1/event", EVENT),
                           ("hotspots/dev/T-1/status", OFFLINE)):
        out = translate(topic, payload, "main")
        assert recorder_reads(*out, retained=False) is not None
    # what the Recorder made of the trackers' own topics (the issue's finding): user "dev",
    # relative topic "loc", so never a base-topic location that ocat or the API would list
    assert recorder_reads("hotspots/dev/T-1/loc", LOC, False) == ("dev", "T-1", "loc",
                                                                  "location")


def test_bridge_through_mosquitto(mosquitto, tmp_path):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, "T-1")
    db.close()
    station = mosquitto.account("station1", "recorder")
    gateway = Gateway(mosquitto.address, str(db_path), **mosquitto.gateway.auth(),
                      ignore_accounts=frozenset({"station1"}))
    stop = threading.Event()
    threads = [threading.Thread(target=gateway.run, args=(stop,), daemon=True)]
    bridge = RecorderBridge(mosquitto.host, mosquitto.port, station.username, station.password)
    threads.append(threading.Thread(target=bridge.run, args=(stop,), daemon=True))
    seen: list[tuple] = []
    recorder = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="observer")
    recorder.username_pw_set(**mosquitto.observer.auth())
    recorder.on_message = lambda _c, _u, m: seen.append(
        recorder_reads(m.topic, m.payload, m.retain))
    recorder.on_connect = lambda c, *_: c.subscribe("owntracks/#", qos=1)
    recorder.connect(mosquitto.host, mosquitto.port)
    recorder.loop_start()
    for thread in threads:
        thread.start()
    try:
        assert gateway.connected.wait(10) and bridge.connected.wait(10)
        tracker = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="T-1")
        tracker.username_pw_set(**mosquitto.device("T-1").auth())
        tracker.will_set("hotspots/dev/T-1/status", OFFLINE, qos=1, retain=True)
        tracker.connect(mosquitto.host, mosquitto.port)
        tracker.loop_start()
        for i in range(5):
            fix = Fix(NOW - 100 + 10 * i, 51.48, -0.001 + i * 1e-4)
            tracker.publish("hotspots/dev/T-1/loc",
                            wire.location("T-1", i + 1, fix, NOW).encode(), qos=1
                            ).wait_for_publish(5)
        tracker.publish("hotspots/dev/T-1/event", EVENT, qos=1).wait_for_publish(5)
        tracker.loop_stop()
        tracker.socket().close()  # vanishes: the broker publishes its last will
        deadline = time.monotonic() + 10
        while len([s for s in seen if s]) < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
        recorder.loop_stop()
    filed = [s for s in seen if s]
    locations = [s for s in filed if s[2] == "*" and s[3] == "location"]
    assert {(s[0], s[1]) for s in locations} == {("station1", "T-1")}
    assert len(locations) == 5  # what ocat and the API list for station1/T-1
    assert ("station1", "T-1", "event", "transition") in filed
    assert ("station1", "T-1", "*", "lwt") in filed
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (5,)
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    assert gateway.ignored >= 7  # the bridge's own output, acknowledged and not stored
