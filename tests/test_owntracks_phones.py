"""Several phones of one OwnTracks user (issue 19): each phone its own login ``<user>.<device>``
publishing as ``owntracks/<user>/<device>``, the apps' own topic model; none throws the other
off, each is its own device, and neither can publish as the other."""

from __future__ import annotations

import json
import sqlite3
import time

import paho.mqtt.client as paho
import pytest

from gateway.broker import LOG_GENERATIONS, BrokerError, Mosquitto, denied_publishes
from gateway.fleet.identity import register_device
from gateway.schema import open_db
from tests.test_gateway_service import Running


def connect(broker, account) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=account.username)
    client.username_pw_set(**account.auth())
    client.connect(broker.host, broker.port)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    return client


def test_two_phones_of_one_user(mosquitto, tmp_path):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, "alice.phone", source="owntracks")
    register_device(db, "alice.tablet", source="owntracks")
    db.close()
    phone = connect(mosquitto, mosquitto.phone("alice", "phone"))
    tablet = connect(mosquitto, mosquitto.phone("alice", "tablet"))
    now = int(time.time())
    with Running(mosquitto, db_path):
        for i, (client, device) in enumerate([(phone, "phone"), (tablet, "tablet")] * 3):
            msg = {"_type": "location", "lat": 51.48, "lon": -0.001, "acc": 5, "tst": now - 60 + i,
                   "tid": device[:2]}
            client.publish(f"owntracks/alice/{device}", json.dumps(msg), qos=1
                           ).wait_for_publish(5)
        # the phone tries to speak for the tablet: refused by the broker (and logged)
        phone.publish("owntracks/alice/tablet", json.dumps(
            {"_type": "location", "lat": 1, "lon": 1, "tst": now}), qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(db_path) as conn:
                rows = conn.execute("SELECT device_id, count(*) FROM positions"
                                    " GROUP BY device_id ORDER BY device_id").fetchall()
            if rows == [("alice.phone", 3), ("alice.tablet", 3)]:
                break
            time.sleep(0.05)
        assert rows == [("alice.phone", 3), ("alice.tablet", 3)]
        assert phone.is_connected() and tablet.is_connected()  # neither threw the other off
    for client in (phone, tablet):
        client.disconnect()
        client.loop_stop()
    deadline = time.monotonic() + 5
    log = mosquitto.workdir / "mosquitto.log"
    while not denied_publishes(log) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert denied_publishes(log) == {("alice.phone", "owntracks/alice/tablet"): 1}


def test_a_user_has_one_account_or_one_per_phone(tmp_path):
    broker = Mosquitto(workdir=tmp_path / "b")
    broker.phone("alice", "phone")
    with pytest.raises(BrokerError, match="per-phone accounts"):
        broker.device("alice")
    broker.device("bob")
    with pytest.raises(BrokerError, match="account of its own"):
        broker.phone("bob", "phone")
    with pytest.raises(BrokerError, match="<user>.<device>"):
        broker.account("carol", "phone")


def test_the_broker_log_is_rotated_and_refusals_are_still_counted(tmp_path):
    """The debug log Mosquitto needs to say it refused a publish grows with every message: it
    is rotated (SIGHUP makes the running broker reopen it, no client dropped), and the refusals
    are counted across the generations kept; the oldest beyond them go."""
    with Mosquitto(workdir=tmp_path / "b") as mosquitto:
        account = mosquitto.account("alice.phone", "phone")
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="alice.phone")
        client.username_pw_set(account.username, account.password)
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        log = mosquitto.workdir / "mosquitto.log"

        def in_current_log() -> int:
            try:
                return log.read_text(errors="replace").count("Denied PUBLISH")
            except FileNotFoundError:  # rotated, and the broker has not written since
                return 0

        def refused_publish() -> None:
            before = in_current_log()
            client.publish("owntracks/bob/phone", b"{}", qos=1).wait_for_publish(5)
            deadline = time.monotonic() + 5
            while in_current_log() == before:  # logged by the broker (into its new log)
                assert time.monotonic() < deadline, "the refusal was not logged"
                time.sleep(0.02)

        refused = {("alice.phone", "owntracks/bob/phone"): 1}
        refused_publish()
        assert not mosquitto.rotate_log(max_bytes=10**9)  # small enough: left alone
        assert mosquitto.rotate_log(max_bytes=1)
        assert log.with_name("mosquitto.log.1").exists()
        assert denied_publishes(log) == refused
        refused_publish()  # reaches the reopened log
        assert log.exists() and denied_publishes(log) == {k: 2 for k in refused}
        for _ in range(6):  # 6 more rotations, 4 generations kept: the 4 oldest files go
            refused_publish()
            assert mosquitto.rotate_log(max_bytes=1)
        kept = sorted(p.name for p in log.parent.glob("mosquitto.log.*"))
        assert kept == [f"mosquitto.log.{n}" for n in range(1, LOG_GENERATIONS + 1)]
        refused_publish()
        # 9 refused; the first file (1) and the second (2, before and after a rotation) and
        # the next two (1 each) went: 4 generations and the current log hold 1 each.
        assert denied_publishes(log) == {k: 5 for k in refused}
        assert client.is_connected()
        client.disconnect()
        client.loop_stop()
