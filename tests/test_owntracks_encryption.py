"""OwnTracks encrypted payloads (``_type: encrypted``): opened with the device's key, as the
apps make it, or quarantined with a reason; through a real Mosquitto into a real gateway."""

from __future__ import annotations

import base64
import json
import sqlite3
import time

import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner
from nacl.secret import SecretBox

from gateway.fleet.identity import register_device
from gateway.intake import mqtt, owntracks_crypto
from gateway.intake.intake import Intake
from gateway.schema import open_db
from hotspots.cli import cli
from tests.test_gateway_service import Running

#: An Android location as the app serialises it (fields from the app's MessageLocation).
LOCATION = {"_type": "location", "acc": 12, "alt": 31, "batt": 81, "bs": 1, "conn": "w",
            "created_at": 1795000105, "lat": 51.50722, "lon": -0.00127, "m": 1, "t": "u",
            "tid": "al", "tst": 1795000100, "vac": 4, "vel": 3}


@pytest.mark.parametrize(("secret", "key"), [
    # the apps copy the UTF-8 bytes into 32 zero bytes: no hashing
    ("s3cret", b"s3cret" + b"\0" * 26),
    ("é" * 20, ("é" * 16).encode()),  # 40 bytes: cut at 32
    ("x" * 32, b"x" * 32),
])
def test_key_is_the_secret_padded_or_cut_to_32_bytes(secret, key):
    assert owntracks_crypto.key_bytes(secret) == key


def test_envelope_layout_is_nonce_then_ciphertext():
    nonce = bytes(range(24))
    envelope = json.loads(owntracks_crypto.seal(b'{"_type":"lwt","tst":1}', "s3cret", nonce))
    raw = base64.b64decode(envelope["data"])
    assert envelope["_type"] == "encrypted" and raw[:24] == nonce
    box = SecretBox(b"s3cret" + b"\0" * 26)
    assert box.decrypt(raw[24:], raw[:24]) == b'{"_type":"lwt","tst":1}'


@pytest.mark.parametrize(("payload", "secret", "reason"), [
    (b'{"_type":"encrypted","data":"AAAA"}', "k", "bad_envelope"),
    (b'{"_type":"encrypted","data":"not base64!"}', "k", "bad_envelope"),
    (b'{"_type":"encrypted"}', "k", "bad_envelope"),
    (b'[' * 3000 + b'"encrypted"', "k", "bad_envelope"),
    (owntracks_crypto.seal(b"{}", "right"), "wrong", "decrypt_failed"),
    (owntracks_crypto.seal(b"{}", "right"), None, "no_key"),
])
def test_envelopes_that_do_not_open(payload, secret, reason):
    with pytest.raises(owntracks_crypto.SealedError) as info:
        owntracks_crypto.open_envelope(payload, secret)
    assert info.value.reason == reason


def test_intake_opens_or_quarantines(db):
    register_device(db, "alice", source="owntracks")
    owntracks_crypto.set_key(db, "alice", "correct horse")
    intake = Intake(db)
    sealed = owntracks_crypto.seal(json.dumps(LOCATION).encode(), "correct horse")
    assert mqtt.handle(intake, "owntracks/alice/phone", sealed, 1795000110) == "stored"
    assert mqtt.handle(intake, "owntracks/alice/phone", sealed, 1795000111) == "duplicate"
    wrong = owntracks_crypto.seal(json.dumps(LOCATION).encode(), "battery staple")
    assert mqtt.handle(intake, "owntracks/alice/phone", wrong, 1795000112) == "quarantined"
    register_device(db, "bob", source="owntracks")
    assert mqtt.handle(intake, "owntracks/bob/phone", sealed, 1795000113) == "quarantined"
    intake.commit()
    assert db.execute("SELECT device_id, lat, lon, acc_m FROM positions").fetchall() == [
        ("alice", 51.50722, -0.00127, 12)]
    assert db.execute("SELECT device_id, reason FROM quarantine ORDER BY id").fetchall() == [
        ("alice", "encrypted_decrypt_failed"), ("bob", "encrypted_no_key")]


def test_cli_key(tmp_path):
    path = str(tmp_path / "k.db")
    open_db(path).close()
    key_file = tmp_path / "key.txt"
    key_file.write_text("correct horse\n")
    runner = CliRunner()
    ok = runner.invoke(cli, ["owntracks", "key", "alice-phone", "--db", path, "--key-file",
                             str(key_file)])
    assert ok.exit_code == 0 and "key set" in ok.output
    db = open_db(path)
    assert owntracks_crypto.get_key(db, "alice-phone") == "correct horse"
    db.close()
    prompted = runner.invoke(cli, ["owntracks", "key", "bob-phone", "--db", path],
                             input="abc\nabc\n")
    assert prompted.exit_code == 0, prompted.output
    gone = runner.invoke(cli, ["owntracks", "key", "bob-phone", "--db", path, "--remove"])
    assert gone.exit_code == 0
    again = runner.invoke(cli, ["owntracks", "key", "bob-phone", "--db", path, "--remove"])
    assert again.exit_code == 1 and "has no key" in again.output
    key_file.write_text("")
    empty = runner.invoke(cli, ["owntracks", "key", "x-y", "--db", path, "--key-file",
                                str(key_file)])
    assert empty.exit_code == 1 and "empty" in empty.output


def test_encrypted_phone_through_mosquitto(mosquitto, tmp_path):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, "alice", source="owntracks")
    owntracks_crypto.set_key(db, "alice", "correct horse")
    db.close()
    now = int(time.time())
    phone = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="alice")
    phone.username_pw_set(**mosquitto.device("alice").auth())
    with Running(mosquitto, db_path):
        phone.connect(mosquitto.host, mosquitto.port)
        phone.loop_start()
        for i, secret in enumerate(["correct horse", "correct horse", "wrong"]):
            msg = {**LOCATION, "tst": now - 60 + i * 10, "created_at": now}
            sealed = owntracks_crypto.seal(json.dumps(msg).encode(), secret)
            phone.publish("owntracks/alice/phone", sealed, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(db_path) as conn:
                stored = conn.execute("SELECT count(*) FROM positions").fetchone()[0]
                held = conn.execute("SELECT reason FROM quarantine").fetchall()
            if stored == 2 and held:
                break
            time.sleep(0.05)
        phone.disconnect()
        phone.loop_stop()
    assert stored == 2 and held == [("encrypted_decrypt_failed",)]
