"""Hostile OwnTracks app messages (issue 16): every ``_type`` the gateway accepts beyond the
location, on every per-device topic, sent by an attacker holding one phone's credentials,
through a real Mosquitto into a running ``hotspots gateway run``.

Each message must end stored (``app_messages``, or a position) or quarantined with a reason,
acknowledged, the gateway alive, and the next good fix of every device stored. The app
messages one phone can keep are bounded (:class:`gateway.intake.intake.QuarantineBudget`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

from test_hostile_input import (
    ATTACKER_PHONE,
    BASE_T,
    DEEP,
    Station,
    _counts,
    phone_id,
    phone_topic,
)

from gateway.intake import mqtt, owntracks_crypto
from gateway.intake.intake import Intake, QuarantineBudget
from gateway.schema import open_db

KEY = "correct horse"


def _app_poisons() -> list[tuple[str, str, bytes, str | None]]:
    """``(name, topic, payload, expected quarantine reason or None when stored)``."""
    t = phone_topic(ATTACKER_PHONE)
    waypoints = {"_type": "waypoints", "waypoints": [
        {"_type": "waypoint", "desc": f"w{i}", "lat": 51.5, "lon": 0.0, "rad": 50, "tst": i}
        for i in range(10_000)]}
    sealed = owntracks_crypto.seal
    return [
        ("card with a 36 KB face", t + "/info", json.dumps(
            {"_type": "card", "name": "PC 1", "face": base64.b64encode(os.urandom(27_000))
             .decode()}).encode(), None),
        # 10,000 regions do not fit the broker's packet limit; 500 fit and are over the
        # intake's 32 KB app message limit.
        ("waypoints, 500 of them", t + "/waypoints", json.dumps(
            {**waypoints, "waypoints": waypoints["waypoints"][:500]}).encode(), "bad_field"),
        ("steps NaN and Infinity", t + "/step",
         b'{"_type":"steps","steps":NaN,"from":Infinity,"to":-Infinity}', "bad_field"),
        ("status nested 2000 deep", t + "/status", f'{{"_type":"status","x":{DEEP}}}'.encode(),
         "malformed"),
        # A phone may only read its /cmd topic (gateway.broker): the broker drops this one.
        ("cmd on the phone's command topic", t + "/cmd", b'{"_type":"cmd","action":"x"}',
         "broker"),
        # The same type on a topic it may write: decoded by its _type.
        ("cmd with a lone surrogate", t + "/status", b'{"_type":"cmd","action":"\\ud800"}',
         "bad_field"),
        ("cmd with control characters", t + "/status",
         b'{"_type":"cmd","action":"\\u0000\\u001b[2J\\u202e"}', None),
        ("cmd with a 4000-digit tst", t + "/status",
         b'{"_type":"cmd","action":"x","tst":' + b"9" * 4000 + b"}", None),
        ("_type a list", t + "/status", b'{"_type":["status"]}', "unknown_type"),
        ("configuration with nested secrets", t, json.dumps(
            {"_type": "configuration", "password": "p1", "encryptionKey": "k1",
             "extra": {"password": "p2"}}).encode(), None),
        # Phones with an encryptionKey send their card encrypted too: face and all.
        ("encrypted card with a 24 KB face", t + "/info", sealed(json.dumps(
            {"_type": "card", "name": "PC 2", "face": base64.b64encode(os.urandom(18_000))
             .decode()}).encode(), KEY), None),
        ("encrypted garbage", t, b'{"_type":"encrypted","data":"!!!!"}',
         "encrypted_bad_envelope"),
        ("encrypted, bad base64 padding", t, b'{"_type":"encrypted","data":"QUJD="}',
         "encrypted_bad_envelope"),
        ("encrypted, data a number", t, b'{"_type":"encrypted","data":12}',
         "encrypted_bad_envelope"),
        ("encrypted with the wrong key", t, sealed(
            json.dumps({"_type": "location", "tst": BASE_T, "lat": 51.5, "lon": 0}).encode(),
            "not the key"), "encrypted_decrypt_failed"),
        ("encrypted, deep inside", t, sealed(f'{{"_type":"status","x":{DEEP}}}'.encode(), KEY),
         "malformed"),
        ("encrypted, an envelope inside", t, sealed(sealed(b"{}", KEY), KEY), "unknown_type"),
        ("encrypted, not UTF-8 inside", t, sealed(b'\xff{"_type":"cmd"}', KEY), "malformed"),
        ("lwt tst NaN", t, b'{"_type":"lwt","tst":NaN}', "bad_field"),
        ("transition without rid, desc surrogates", t + "/event", json.dumps(
            {"_type": "transition", "event": "enter", "desc": "\ud800" * 5, "tst": BASE_T,
             "lat": 51.5, "lon": 0, "acc": 5}).encode(), "malformed"),
        ("transition without rid, desc a list", t + "/event", json.dumps(
            {"_type": "transition", "event": "enter", "desc": ["a"], "tst": BASE_T,
             "lat": 51.5, "lon": 0, "acc": 5}).encode(), "missing_field"),
        ("transition without rid, desc control characters", t + "/event", json.dumps(
            {"_type": "transition", "event": "leave", "desc": "\u0000\u202e\n", "tst": BASE_T,
             "lat": 51.5, "lon": 0, "acc": 5}).encode(), "bad_field"),
        ("beacon with a surrogate", t + "/beacon",
         b'{"_type":"beacon","uuid":"\\ud800","major":1e400}', "bad_field"),
        ("an object with a surrogate key", t + "/status", b'{"_type":"status","\\ud800":1}',
         "bad_field"),
    ]


def test_every_app_message_type_is_stored_or_quarantined_and_every_device_goes_on(tmp_path):
    station = Station(tmp_path)
    try:
        with open_db(str(station.db_path)) as db:  # the gateway reads keys per message
            owntracks_crypto.set_key(db, phone_id(ATTACKER_PHONE), KEY)
        device = phone_id(ATTACKER_PHONE)
        poisons = _app_poisons()
        sent = station.devices[ATTACKER_PHONE].send_many(
            [(topic, payload, False) for _name, topic, payload, _reason in poisons])
        expected = station.good_round()
        station.wait_stored(expected)
        station.gateway.assert_alive()
        held = station.query("SELECT reason, raw_sha256 FROM quarantine WHERE device_id = ?",
                             (device,))
        apps = station.query("SELECT type, payload FROM app_messages WHERE device_id = ?",
                             (device,))
        by_sha = {sha: reason for reason, sha in held}
        for name, _topic, payload, reason in poisons:
            got = by_sha.get(hashlib.sha256(payload).hexdigest())
            if reason == "broker":
                assert got is None and not any(p == payload.decode() for _t, p in apps)
                sent -= 1
                continue
            assert got == reason, f"{name}: quarantined as {got!r}, expected {reason!r}"
        # Every message acknowledged is accounted for: the rest are app messages.
        assert len(held) + len(apps) == sent, (held, apps)
        assert sorted(t for t, _p in apps) == ["card", "card", "cmd", "cmd", "configuration"]
        cards = {c["name"]: c for c in (json.loads(p) for t, p in apps if t == "card")}
        assert "face" not in cards["PC 1"] and cards["PC 1"]["_dropped"]["face"] > 36_000
        assert "face" not in cards["PC 2"] and cards["PC 2"]["_dropped"]["face"] > 24_000
        config = json.loads(next(p for t, p in apps if t == "configuration"))
        assert config["password"] == config["encryptionKey"] == "***"
        assert config["extra"]["password"] == "***", "a nested secret was stored"
        for _t, payload in apps:
            json.loads(payload, parse_constant=lambda c: pytest_fail(c))
        line = station.gateway.stop()
        counts = _counts(line)
        assert counts["reasons"].get("bad_field", 0) >= 5
    finally:
        station.close()


def pytest_fail(constant: str) -> None:
    raise AssertionError(f"{constant} stored in an app message: not JSON")


def test_the_app_messages_of_one_phone_are_bounded(tmp_path):
    """A phone publishing new commands without end: its oldest app messages go, counted;
    another phone's stay."""
    db = open_db(str(tmp_path / "apps.db"))
    from gateway.fleet.identity import register_device
    for dev in ("P6", "P1"):
        register_device(db, dev, "owntracks")
    intake = Intake(db, budget=QuarantineBudget(app_max_rows=50, app_max_bytes=40_000))
    assert mqtt.handle(intake, "owntracks/P1/phone/info", b'{"_type":"card","name":"PC 1"}',
                       BASE_T) == "stored"
    for i in range(300):
        payload = json.dumps({"_type": "cmd", "action": "x" * 500, "n": i}).encode()
        assert mqtt.handle(intake, "owntracks/P6/phone/cmd", payload, BASE_T + i) == "stored"
        if i % 37 == 0:
            intake.commit()
    intake.commit()
    rows, size = db.execute("SELECT count(*), sum(length(payload)) FROM app_messages"
                            " WHERE device_id = 'P6'").fetchone()
    assert rows <= 50 and size <= 40_000
    newest = json.loads(db.execute("SELECT payload FROM app_messages WHERE device_id = 'P6'"
                                   " ORDER BY id DESC LIMIT 1").fetchone()[0])
    assert newest["n"] == 299
    evicted = db.execute("SELECT n FROM intake_counters WHERE device_id = 'P6'"
                         " AND counter = 'app_evicted'").fetchone()[0]
    assert evicted + rows == 300
    assert db.execute("SELECT count(*) FROM app_messages WHERE device_id = 'P1'"
                      ).fetchone()[0] == 1
    db.close()
