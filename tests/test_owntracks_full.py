"""OwnTracks in full (issue 19): every ``_type`` the current iOS and Android apps publish,
through a real Mosquitto with the generated ACL into a real gateway.

Payloads follow the apps' own serialisation (Android's MessageLocation, MessageTransition,
MessageCard, MessageWaypoint(s), MessageStatus; iOS adds ``rid``, ``steps``, an image on a
location) and the OwnTracks booklet's JSON reference (docs/tech/json.md).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time

import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner

from gateway.broker import denied_publishes
from gateway.fleet.identity import assign, register_device
from gateway.intake import mqtt
from gateway.intake.intake import Intake
from gateway.reports.visits import HotSpotSet, compute_visits
from gateway.schema import open_db
from hotspots.cli import cli
from tests.test_gateway_service import Running

NOW = int(time.time())
LAT, LON = 51.4807, -0.0012


def location(tst: int, **more) -> dict:
    """An Android 2.5 location with extended data on."""
    msg = {"_type": "location", "acc": 9, "alt": 21, "batt": 64, "bs": 1, "conn": "w",
           "created_at": tst + 2, "lat": LAT, "lon": LON, "m": 1, "t": "p", "tid": "al",
           "tst": tst, "vac": 3, "vel": 4, "SSID": "StationWiFi", "BSSID": "aa:bb:cc:dd:ee:ff",
           "inregions": ["Home", "Market Square"], "inrids": ["5f2a", "9c01"],
           "source": "fused", "poi": "Cafe", "tag": "beat-3",
           "motionactivities": ["walking"]}
    msg.update(more)
    return msg


PNG = base64.b64encode(bytes(range(256)) * 24).decode()  # 6 KB of image, 8 KB in base64

MESSAGES = [
    # (topic suffix, payload, retained)
    ("", location(NOW - 600), True),
    # iOS with an image attached (8 KB): over the 4 KB wire limit unless the image goes
    ("", location(NOW - 590, image=PNG, imagename="IMG_0001.png"), False),
    # Android transitions: no rid, the region's name in desc
    ("/event", {"_type": "transition", "acc": 9, "desc": "Market Square", "event": "enter",
                "lat": LAT, "lon": LON, "t": "c", "tid": "al", "tst": NOW - 580,
                "wtst": NOW - 86400}, False),
    ("/event", {"_type": "transition", "acc": 9, "desc": "Home", "event": "leave",
                "lat": LAT, "lon": LON, "t": "c", "tid": "al", "tst": NOW - 575,
                "wtst": NOW - 86400}, False),
    ("/event", {"_type": "transition", "acc": 9, "desc": "Market Square", "event": "leave",
                "lat": LAT, "lon": LON, "t": "c", "tid": "al", "tst": NOW - 280,
                "wtst": NOW - 86400, "rid": "9c01"}, False),
    ("/info", {"_type": "card", "name": "PC 1234 Alice", "face": PNG, "tid": "al"}, True),
    ("/waypoint", {"_type": "waypoint", "desc": "Home", "lat": 51.5, "lon": -0.1, "rad": 80,
                   "tst": NOW - 86400, "rid": "5f2a"}, False),
    ("/waypoints", {"_type": "waypoints", "_creator": "owntracks", "waypoints": [
        {"_type": "waypoint", "desc": "Home", "lat": 51.5, "lon": -0.1, "rad": 80,
         "tst": NOW - 86400, "rid": "5f2a"},
        {"_type": "waypoint", "desc": "Market Square", "lat": LAT, "lon": LON, "rad": 50,
         "tst": NOW - 86400, "rid": "9c01"}]}, False),
    ("/status", {"_type": "status", "android": {"hib": 1, "bo": 1, "loc": 0, "ps": 0,
                                                "wifi": 1}}, False),
    ("/step", {"_type": "steps", "tst": NOW - 100, "steps": 4321, "from": NOW - 3700,
               "to": NOW - 100}, False),
]


def wait_for(db_path, sql: str, want, timeout_s: float = 10):
    deadline = time.monotonic() + timeout_s
    while True:
        with sqlite3.connect(db_path) as conn:
            got = conn.execute(sql).fetchall()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


class Phone:
    def __init__(self, broker, account: str):
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=account)
        self.client.username_pw_set(**broker.device(account).auth())
        self.client.will_set(f"owntracks/{account}/phone",
                             json.dumps({"_type": "lwt", "tst": NOW - 700}), qos=1, retain=True)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.account = account

    def send(self, suffix: str, msg: dict, retain: bool = False) -> None:
        topic = f"owntracks/{self.account}/phone{suffix}"
        self.client.publish(topic, json.dumps(msg), qos=1, retain=retain).wait_for_publish(5)

    def vanish(self) -> None:
        """Drop the TCP connection without DISCONNECT: the broker publishes the last will."""
        self.client.loop_stop()
        self.client.socket().close()


@pytest.fixture
def hotspot_set():
    d = 0.0004
    return HotSpotSet.load({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "HS7", "name": "Market Square",
                                          "density": "high"},
        "geometry": {"type": "Polygon", "coordinates": [[
            [LON - d, LAT - d], [LON + d, LAT - d], [LON + d, LAT + d], [LON - d, LAT + d],
            [LON - d, LAT - d]]]}}]})


def test_every_type_from_the_apps(mosquitto, tmp_path, hotspot_set):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, "alice", source="owntracks")
    assign(db, "alice", "PC1234", at=NOW - 3600)
    db.close()
    phone = Phone(mosquitto, "alice")
    with Running(mosquitto, db_path) as gateway:
        for suffix, msg, retain in MESSAGES:
            phone.send(suffix, msg, retain)
        assert wait_for(db_path, "SELECT count(*) FROM app_messages", [(5,)]) == [(5,)]
        assert wait_for(db_path, "SELECT count(*) FROM transitions", [(3,)]) == [(3,)]
        assert wait_for(db_path, "SELECT count(*) FROM positions", [(2,)]) == [(2,)]
        # the phone vanishes: its last will says offline ...
        phone.vanish()
        assert wait_for(db_path, "SELECT online FROM devices WHERE device_id = 'alice'",
                        [(0,)]) == [(0,)]
        # ... and its next fix says it is back
        again = Phone(mosquitto, "alice")
        again.send("", location(int(time.time())), True)
        assert wait_for(db_path, "SELECT online FROM devices WHERE device_id = 'alice'",
                        [(1,)]) == [(1,)]
        again.client.disconnect()
        again.client.loop_stop()
        counts = gateway.intake.counts
        assert not counts.quarantined, counts.quarantined
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT tst, inregions, extra FROM positions ORDER BY tst").fetchall()
        apps = dict(conn.execute("SELECT type, payload FROM app_messages").fetchall())
        transitions = conn.execute("SELECT rid, desc, event FROM transitions ORDER BY tst"
                                   ).fetchall()
    assert len(rows) == 3 and all(r[1] is None for r in rows)  # names never as hot spot ids
    extra = json.loads(rows[0][2])
    for name in ("bs", "conn", "SSID", "BSSID", "m", "vac", "tid", "poi", "tag",
                 "motionactivities", "source"):
        assert name in extra, name
    assert extra["regions"] == ["Home", "Market Square"]
    with_image = json.loads(rows[1][2])
    assert with_image["dropped"]["image"] > 8000 and "imagename" in with_image["dropped"]
    assert transitions == [("Market Square", "Market Square", "enter"),
                           ("Home", "Home", "leave"), ("9c01", "Market Square", "leave")]
    card = json.loads(apps["card"])
    assert card["name"] == "PC 1234 Alice" and "face" not in card and card["_dropped"]["face"]
    assert len(json.loads(apps["waypoints"])["waypoints"]) == 2
    assert json.loads(apps["steps"])["steps"] == 4321
    assert set(apps) == {"card", "waypoint", "waypoints", "status", "steps"}

    # Reports: the phone's "Market Square" is the hot spot HS7 by name; "Home" is nobody's
    db = open_db(str(db_path))
    visits = compute_visits(db, hotspot_set)
    assert [(v.officer, v.hotspot, v.leave - v.enter) for v in visits
            if v.method == "transitions"] == [("PC1234", "HS7", 300)]
    assert all(v.hotspot == "HS7" for v in visits)
    assert compute_visits(db, None) == []  # without a fence set no phone region is a hot spot
    db.close()

    # A restart: the broker hands over the retained location and card again; stored once
    with Running(mosquitto, db_path) as gateway:
        deadline = time.monotonic() + 3
        while gateway.intake.counts.duplicates < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gateway.intake.counts.duplicates >= 2
    assert wait_for(db_path, "SELECT count(*) FROM positions", [(3,)]) == [(3,)]
    assert wait_for(db_path, "SELECT count(*) FROM app_messages", [(5,)]) == [(5,)]


def test_a_refused_publish_leaves_a_trace(mosquitto, tmp_path):
    db_path = tmp_path / "g.db"
    open_db(str(db_path)).close()
    phone = Phone(mosquitto, "bob")
    for suffix in ("/event", "/info", "/waypoint", "/waypoints", "/status", "/step"):
        phone.send(suffix, {"_type": "card", "name": "x"})
    phone.send("/dump", {"_type": "configuration", "password": "s3cret"})  # refused
    phone.client.publish("owntracks/alice/phone", b"{}", qos=1).wait_for_publish(5)  # not his
    phone.client.disconnect()
    phone.client.loop_stop()
    log = mosquitto.workdir / "mosquitto.log"
    deadline = time.monotonic() + 5
    while len(denied_publishes(log)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert denied_publishes(log) == {("bob", "owntracks/bob/phone/dump"): 1,
                                     ("bob", "owntracks/alice/phone"): 1}
    shown = CliRunner().invoke(cli, ["status", "--db", str(db_path), "--broker-log", str(log)])
    assert shown.exit_code == 0, shown.output
    assert "publishes refused by the broker: 2" in shown.output


def test_configuration_secrets_never_stored(db):
    register_device(db, "carol", source="owntracks")
    intake = Intake(db)
    payload = json.dumps({"_type": "configuration", "password": "s3cret", "host": "x",
                          "encryptionKey": "k", "waypoints": []}).encode()
    assert mqtt.handle(intake, "owntracks/carol/phone/dump", payload, NOW) == "stored"
    intake.commit()
    stored = json.loads(db.execute("SELECT payload FROM app_messages").fetchone()[0])
    assert stored["password"] == "***" and stored["encryptionKey"] == "***"
    assert stored["host"] == "x"


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"_type": "beacon2"}', "unknown_type"),
    (b'{"_type": "location", "lat": 1}', "missing_field"),
    (b"[" * 100_000, "oversize"),
    (b'{"_type": "card", "name": "\\ud800"}', "bad_field"),
])
def test_bad_app_messages_are_quarantined(db, payload, reason):
    register_device(db, "dave", source="owntracks")
    intake = Intake(db)
    assert mqtt.handle(intake, "owntracks/dave/phone/info", payload, NOW) == "quarantined"
    assert intake.last_reason == reason
