"""Hostile input (issue 16): what one tracker's or phone's credentials can send must never stop
the gateway, never be stored as if it were good, and never cost another device a fix.

Everything is real: a locked-down Mosquitto (the broker's packet limit included), the gateway as
the ``hotspots gateway run`` process, devices logged in with their own accounts. The attacker
holds the credentials of one registered tracker (``T-0666``) and one registered phone
(``P6``); two innocent trackers and one innocent phone keep reporting. After each poison, a good
message from every device (the attacker's own included) must be stored; poison queued while the
gateway is down, ahead of the innocent devices' fixes, must not lose one of them; random and
structured mutations of every wire message type must add up exactly (sent = stored + status +
quarantined + duplicates) with the process alive at the end and exiting 0.
"""

from __future__ import annotations

import ast
import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from gateway.broker import MAX_PACKET_BYTES, Mosquitto
from gateway.fleet.identity import register_device
from gateway.fleet.status import sequence_gaps
from gateway.intake.mqtt import resolve_topic
from gateway.schema import open_db
from tracker import wire

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ("T-0001", "T-0002")
ATTACKER = "T-0666"
PHONES = ("P1",)
ATTACKER_PHONE = "P6"
PHONE_DEVICE = "phone"  # owntracks/<user>/phone
#: Arrays nested 2,000 deep (beyond Python's recursion limit) fit under the wire's 4 KB.
DEEP = "[" * 2000 + "]" * 2000
#: Fix times: recent enough for the age filter, apart enough for the speed filter.
BASE_T = int(time.time()) - 6 * 3600


def phone_topic(user: str) -> str:
    return f"owntracks/{user}/{PHONE_DEVICE}"


def phone_id(user: str) -> str:
    """The device id the gateway files a phone's messages under: its account (exact topic
    resolution, issue 16)."""
    return resolve_topic(phone_topic(user))[1]


def encode(fields: dict, **raw: str) -> bytes:
    """A JSON object: ``fields`` dumped, then each ``raw`` value inserted as it is (NaN, deep
    arrays, escapes json.dumps would never write)."""
    items = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in fields.items() if k not in raw]
    items += [f"{json.dumps(k)}:{v}" for k, v in raw.items()]
    return ("{" + ",".join(items) + "}").encode()


def tracker_location(dev: str, seq: int) -> dict:
    return {"_type": "location", "tid": dev[-2:], "dev": dev, "seq": seq, "tst": BASE_T + seq,
            "created_at": BASE_T + seq, "lat": 51.480123, "lon": -0.001234, "acc": 4, "vel": 5,
            "cog": 91, "alt": 25, "batt": 87, "fix": 1, "sats": 9, "hdop": 0.9,
            "inregions": ["HS-GRN-01"], "t": "t"}


def tracker_transition(dev: str, seq: int, rid: str = "HS-GRN-01", event: str = "enter") -> dict:
    return {"_type": "transition", "tid": dev[-2:], "dev": dev, "seq": seq, "tst": BASE_T + seq,
            "created_at": BASE_T + seq, "event": event, "rid": rid, "desc": "Greenwich market",
            "lat": 51.4801, "lon": -0.002, "acc": 4, "t": "c"}


def tracker_status(dev: str, seq: int = 0) -> dict:
    return {"_type": "status", "tid": dev[-2:], "dev": dev, "online": True,
            "created_at": BASE_T, "seq": seq or 1, "fences": "f3a9c2d1e0b4", "outbox": 3,
            "batt": 77, "fw": "0.1.0"}


def phone_location(tst: int) -> dict:
    return {"_type": "location", "tid": "P1", "tst": tst, "lat": 51.4812, "lon": -0.0031,
            "acc": 12, "alt": 20, "batt": 64, "bs": 1, "vel": 4, "cog": 180, "conn": "m",
            "t": "u", "created_at": tst}


def phone_transition(tst: int) -> dict:
    return {"_type": "transition", "tid": "P1", "tst": tst, "lat": 51.4812, "lon": -0.0031,
            "acc": 12, "event": "enter", "desc": "Greenwich market", "rid": "HS-GRN-01",
            "t": "c", "wtst": 1700000000}


def phone_lwt(tst: int) -> dict:
    return {"_type": "lwt", "tst": tst}


def loc_topic(dev: str) -> str:
    return wire.device_topic(dev, wire.KIND_LOCATION)


def event_topic(dev: str) -> str:
    return wire.device_topic(dev, wire.KIND_EVENT)


def status_topic(dev: str) -> str:
    return wire.device_topic(dev, wire.KIND_STATUS)


# -- the poison: every shape from the issue, and a few the contract adds -------------------------
@dataclass
class Poison:
    """One hostile message: who sends it, where, and what the gateway must do with it.

    ``expect`` is ``quarantined`` (a quarantine row, nothing stored) or ``kept_out`` (the bad
    value must not reach the database: quarantined, or stored without that field, as
    ``docs/contracts.md`` says per field). ``check`` (optional) looks at the database after.
    """

    name: str
    account: str
    topic: str
    payload: bytes
    expect: str = "quarantined"
    check: str | None = None


def poisons(seq: int) -> list[Poison]:
    """The shapes, each with the attacker's sequence number ``seq``."""
    a, p = ATTACKER, ATTACKER_PHONE
    loc = tracker_location(a, seq)
    st = tracker_status(a, seq)
    ph = phone_location(BASE_T + seq)
    # Just the required fields, so that the deep array fits under the wire's size limit.
    small_loc = {"_type": "location", "seq": seq, "tst": BASE_T, "lat": 51.5, "lon": 0}
    small_ph = {"_type": "location", "tst": BASE_T, "lat": 51.5, "lon": 0}
    shapes = [
        # Crashed the gateway (issue 16, "Why")
        Poison("location nested 2000 deep", a, loc_topic(a), encode(small_loc, inregions=DEEP)),
        Poison("status nested 2000 deep", a, status_topic(a),
               encode({"_type": "status", "online": True}, fw=DEEP)),
        Poison("owntracks nested 2000 deep", p, phone_topic(p),
               encode(small_ph, inregions=DEEP)),
        Poison("lone surrogate in dev", a, loc_topic(a), encode(loc, dev='"T-0666\\ud800"')),
        Poison("lone surrogate in fences", a, status_topic(a),
               encode(st, fences='"f3a9\\ud800"')),
        Poison("lone surrogate in fw", a, status_topic(a), encode(st, fw='"0.1\\ud800"')),
        Poison("status batt NaN", a, status_topic(a), encode(st, batt="NaN")),
        Poison("status outbox Infinity", a, status_topic(a), encode(st, outbox="Infinity")),
        Poison("status batt 2**64", a, status_topic(a), encode(st, batt=str(2**64))),
        Poison("owntracks batt 2**64", p, phone_topic(p), encode(ph, batt=str(2**64))),
        # Were stored when they should not be
        Poison("location acc NaN", a, loc_topic(a), encode(loc, acc="NaN")),
        Poison("location vel Infinity", a, loc_topic(a), encode(loc, vel="Infinity")),
        Poison("location seq 2**63-1", a, loc_topic(a), encode(loc, seq=str(2**63 - 1)),
               check="gaps"),
        Poison("inregions a string", a, loc_topic(a), encode(loc, inregions='"HS1"'),
               expect="kept_out", check="inregions"),
        Poison("inregions an object", a, loc_topic(a), encode(loc, inregions='{"a":1}'),
               expect="kept_out", check="inregions"),
        # More of the same families
        Poison("lone surrogate in rid", a, event_topic(a),
               encode(tracker_transition(a, seq), rid='"HS\\udc00"')),
        Poison("escape sequence in desc", a, event_topic(a),
               encode(tracker_transition(a, seq), desc='"\\u001b[2J\\u202egone"'),
               expect="kept_out", check="desc"),
        Poison("inregions with a number and a control character", a, loc_topic(a),
               encode(loc, inregions='["HS-GRN-01", 7, "a\\u0007"]'), expect="kept_out",
               check="inregions"),
        Poison("owntracks lwt tst Infinity", p, phone_topic(p), encode(phone_lwt(0),
                                                                         tst="Infinity")),
        Poison("owntracks transition nested", p, phone_topic(p) + "/event",
               encode({"_type": "transition", "tst": 1, "event": "enter"}, rid=DEEP)),
        Poison("exponent overflow lat", a, loc_topic(a), encode(loc, lat="1e400")),
        Poison("empty payload", a, loc_topic(a), b""),
        Poison("not UTF-8", a, status_topic(a), b'{"_type":"status","online":true,"fw":"\xff"}'),
        Poison("payload over the wire limit", a, loc_topic(a),
               encode(loc, pad='"' + "x" * wire.MAX_PAYLOAD + '"')),
        # Ranges of the contract (docs/contracts.md): the intake's checks
        Poison("seq beyond the outbox's 32 bits", a, loc_topic(a), encode(loc, seq=str(2**32)),
               check="gaps"),
        Poison("battery 150 %", a, status_topic(a), encode(st, batt="150"), expect="kept_out",
               check="batt"),
        Poison("negative accuracy", a, loc_topic(a), encode(loc, acc="-5"), expect="kept_out",
               check="acc"),
    ]
    for shape in shapes[:3]:
        assert len(shape.payload) <= wire.MAX_PAYLOAD, (shape.name, len(shape.payload))
    return shapes


# -- the station: broker, database, gateway process, devices --------------------------------------
class GatewayProcess:
    """``hotspots gateway run`` as a child process, its stderr in a file."""

    def __init__(self, broker: Mosquitto, db_path: Path, log_path: Path):
        self.broker, self.db_path, self.log_path = broker, db_path, log_path
        self.proc: subprocess.Popen | None = None
        self.exit_lines: list[str] = []

    def start(self) -> None:
        subscribed = self._log().count("gateway: subscribed")
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotspots", "gateway", "run", "--broker",
                 self.broker.address, "--db", str(self.db_path), "--accounts",
                 str(self.broker.accounts_path)], stderr=log, stdout=subprocess.DEVNULL,
                cwd=ROOT)
        deadline = time.monotonic() + 20
        while self._log().count("gateway: subscribed") == subscribed:
            assert self.proc.poll() is None, f"gateway exited at start:\n{self._log()[-3000:]}"
            assert time.monotonic() < deadline, "gateway did not subscribe"
            time.sleep(0.05)

    def _log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self) -> None:
        assert self.alive(), f"the gateway died:\n{self._log()[-3000:]}"

    def stop(self) -> str:
        """SIGINT, wait, check the exit code; returns the accounting line it printed last."""
        self.assert_alive()
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        assert code == 0, f"gateway exited with {code}:\n{self._log()[-3000:]}"
        last = self._log().strip().splitlines()[-1]
        self.exit_lines.append(last)
        self.proc = None
        return last


class Device:
    """One account's MQTT connection (QoS 1); ``send`` returns once the broker acknowledged."""

    def __init__(self, broker: Mosquitto, account: str):
        self.account = account
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=account,
                                  protocol=paho.MQTTv311)
        self.client.username_pw_set(**broker.device(account).auth())
        self.client.max_inflight_messages_set(100)
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        self.client.connect(broker.host, broker.port, keepalive=60)
        self.client.loop_start()
        assert connected.wait(10), f"{account} could not connect"

    def send_many(self, messages: list[tuple[str, bytes, bool]]) -> int:
        infos = [self.client.publish(topic, payload, qos=1, retain=retain)
                 for topic, payload, retain in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published(), f"{self.account}: the broker did not acknowledge"
        return len(infos)

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.send_many([(topic, payload, retain)])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Station:
    """A broker, a database with the fleet registered, the gateway process and every device."""

    def __init__(self, workdir: Path):
        self.broker = Mosquitto(workdir=workdir / "broker").start()
        self.db_path = workdir / "station.db"
        db = open_db(str(self.db_path))
        for dev in (*TRACKERS, ATTACKER):
            register_device(db, dev)
        for user in (*PHONES, ATTACKER_PHONE):
            register_device(db, phone_id(user), "owntracks")
        db.close()
        self.gateway = GatewayProcess(self.broker, self.db_path, workdir / "gateway.log")
        self.gateway.start()
        self.devices = {name: Device(self.broker, name)
                        for name in (*TRACKERS, ATTACKER, *PHONES, ATTACKER_PHONE)}
        self.seq = dict.fromkeys((*TRACKERS, ATTACKER), 0)
        self.phone_tst = dict.fromkeys((*PHONES, ATTACKER_PHONE), BASE_T)

    def next_seq(self, dev: str) -> int:
        self.seq[dev] += 1
        return self.seq[dev]

    def good_round(self) -> list[tuple[str, str, int]]:
        """A good location from every device; returns what must be stored:
        ``(device_id, "seq" | "tst", value)``."""
        expected = []
        for dev in (*TRACKERS, ATTACKER):
            seq = self.next_seq(dev)
            self.devices[dev].send(loc_topic(dev), encode(tracker_location(dev, seq)))
            expected.append((dev, "seq", seq))
        for user in (*PHONES, ATTACKER_PHONE):
            self.phone_tst[user] += 30
            tst = self.phone_tst[user]
            self.devices[user].send(phone_topic(user), encode(phone_location(tst)))
            expected.append((phone_id(user), "tst", tst))
        return expected

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.db_path, timeout=30) as conn:
            return conn.execute(sql, args).fetchall()

    def wait_stored(self, expected: list[tuple[str, str, int]], timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        missing = expected
        while True:
            missing = [(d, col, v) for d, col, v in missing if not self.query(
                f"SELECT 1 FROM positions WHERE device_id = ? AND {col} = ?", (d, v))]
            if not missing:
                return
            self.gateway.assert_alive()
            assert time.monotonic() < deadline, f"never stored: {missing}"
            time.sleep(0.05)

    def quarantine_max_id(self) -> int:
        return self.query("SELECT coalesce(max(id), 0) FROM quarantine")[0][0]

    def quarantined_since(self, after_id: int, account: str) -> int:
        return self.query(
            "SELECT count(*) FROM quarantine WHERE id > ? AND (topic LIKE ? OR topic LIKE ?)",
            (after_id, f"hotspots/dev/{account}/%", f"owntracks/{account}/%"))[0][0]

    def close(self) -> None:
        for device in self.devices.values():
            device.close()
        if self.gateway.alive():
            self.gateway.stop()
        self.broker.cleanup()


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    s = Station(tmp_path_factory.mktemp("hostile"))
    yield s
    s.close()


def _stored_rows(station: Station, account: str) -> int:
    ids = (account,) if account.startswith("T-") else (phone_id(account),)
    return sum(station.query(f"SELECT count(*) FROM {table} WHERE device_id = ?", ids)[0][0]
               for table in ("positions", "transitions"))


def _check_kept_out(station: Station, poison: Poison) -> None:
    if poison.check == "gaps":
        # `hotspots status` counts the numbers between stored seqs as missing.
        db = open_db(str(station.db_path))
        try:
            missing, _gaps = sequence_gaps(db, ATTACKER)
            max_seq = db.execute("SELECT max_seq FROM devices WHERE device_id = ?",
                                 (ATTACKER,)).fetchone()[0]
        finally:
            db.close()
        assert missing < 1000 and (max_seq or 0) < 2**32, (missing, max_seq)
    elif poison.check == "batt":
        assert station.query("SELECT batt FROM devices WHERE device_id = ?",
                             (ATTACKER,))[0][0] != 150
    elif poison.check == "inregions":
        # Stored without the field (dropped, counted) or not at all: never as it came.
        for (regions,) in station.query("SELECT inregions FROM positions WHERE device_id = ?"
                                        " AND inregions IS NOT NULL", (ATTACKER,)):
            value = json.loads(regions)
            assert type(value) is list and all(type(r) is str and r.isprintable()
                                               for r in value), regions
    elif poison.check == "desc":
        for (desc,) in station.query("SELECT desc FROM transitions WHERE desc IS NOT NULL"):
            assert desc.isprintable() and "\u202e" not in desc, ascii(desc)
    elif poison.check == "acc":
        assert not station.query("SELECT 1 FROM positions WHERE device_id = ? AND acc_m < 0",
                                 (ATTACKER,))


SHAPES = poisons(1)


@pytest.mark.parametrize("poison", SHAPES, ids=[p.name for p in SHAPES])
def test_poison_is_quarantined_and_every_device_goes_on(station, poison):
    # The attacker's next sequence number: if the poison is refused, that number is missing.
    shape = poisons(station.next_seq(ATTACKER))[SHAPES.index(poison)]
    before_q = station.quarantine_max_id()
    before_rows = _stored_rows(station, shape.account)
    station.devices[shape.account].send(shape.topic, shape.payload)
    expected = station.good_round()
    station.wait_stored(expected)
    station.gateway.assert_alive()
    quarantined = station.quarantined_since(before_q, shape.account)
    stored = _stored_rows(station, shape.account) - before_rows - 1  # minus its good message
    if shape.expect == "quarantined":
        assert (quarantined, stored) == (1, 0), f"{shape.name}: {quarantined=} {stored=}"
    elif shape.topic.endswith("/status"):  # applied without the bad field: no row to count
        assert quarantined + stored <= 1 and stored == 0, f"{shape.name}: {quarantined=} {stored=}"
    else:
        assert quarantined + stored == 1, f"{shape.name}: {quarantined=} {stored=}"
    _check_kept_out(station, shape)


def test_poison_queued_while_the_gateway_is_down_loses_no_innocent_fix(station):
    """The crash loop of the issue: poison first in the gateway's queue, then twenty fixes of
    two innocent devices, a retained poison status, then the gateway starts."""
    station.gateway.stop()
    before_q = station.quarantine_max_id()
    shapes = [poisons(station.next_seq(ATTACKER))[i] for i in range(len(SHAPES))]
    by_account: dict[str, list] = {}
    for shape in shapes:
        by_account.setdefault(shape.account, []).append((shape.topic, shape.payload, False))
    for account, messages in by_account.items():
        station.devices[account].send_many(messages)
    retained = encode(tracker_status(ATTACKER), batt="NaN", fw='"\\ud800"')
    station.devices[ATTACKER].send(status_topic(ATTACKER), retained, retain=True)
    expected = []
    for dev in TRACKERS:
        seqs = [station.next_seq(dev) for _ in range(10)]
        station.devices[dev].send_many([(loc_topic(dev), encode(tracker_location(dev, s)), False)
                                        for s in seqs])
        expected += [(dev, "seq", s) for s in seqs]
    station.gateway.start()
    station.wait_stored(expected)
    station.wait_stored(station.good_round())
    must_quarantine = sum(1 for s in shapes if s.expect == "quarantined") + 1  # + retained
    assert (station.quarantined_since(before_q, ATTACKER)
            + station.quarantined_since(before_q, ATTACKER_PHONE)) >= must_quarantine
    # Restarted, the gateway gets the retained poison again (a new subscription), and shrugs.
    station.gateway.stop()
    before_q = station.quarantine_max_id()
    station.gateway.start()
    station.wait_stored(station.good_round())
    assert station.quarantined_since(before_q, ATTACKER) == 1
    # The device's next good status replaces the retained poison.
    station.devices[ATTACKER].send(status_topic(ATTACKER), encode(tracker_status(ATTACKER)),
                                   retain=True)
    station.wait_stored(station.good_round())
    assert station.query("SELECT batt, firmware FROM devices WHERE device_id = ?",
                         (ATTACKER,)) == [(77, "0.1.0")]
    station.gateway.assert_alive()


def test_a_transition_for_a_hot_spot_that_does_not_exist_is_no_visit(station):
    seq = station.next_seq(ATTACKER)
    station.next_seq(ATTACKER)
    for i, event in enumerate(("enter", "leave")):
        message = tracker_transition(ATTACKER, seq + i, rid="NOPE-99", event=event)
        message["tst"] = BASE_T + 100 + i * 45 * 60
        station.devices[ATTACKER].send(event_topic(ATTACKER), encode(message))
    good = []
    for i, event in enumerate(("enter", "leave")):
        s = station.next_seq(TRACKERS[0])
        message = tracker_transition(TRACKERS[0], s, rid="HS-GRN-01", event=event)
        message["tst"] = BASE_T + 100 + i * 20 * 60
        station.devices[TRACKERS[0]].send(event_topic(TRACKERS[0]), encode(message))
        good.append(s)
    station.wait_stored(station.good_round())
    assert len(station.query("SELECT 1 FROM transitions WHERE device_id = ? AND seq IN (?, ?)",
                             (TRACKERS[0], *good))) == 2
    kept = len(station.query("SELECT 1 FROM transitions WHERE rid = 'NOPE-99'"))
    quarantined = len(station.query("SELECT 1 FROM quarantine WHERE topic = ? AND raw LIKE ?",
                                    (event_topic(ATTACKER), b"%NOPE-99%")))
    assert kept + quarantined == 2
    result = subprocess.run(
        [sys.executable, "-m", "hotspots", "report", "dwell", "--db", str(station.db_path),
         "--fences", str(ROOT / "fences" / "sample.geojson"), "--json", "--min-visit-s", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    visits = [json.loads(line) for line in result.stdout.splitlines()]
    spots = {(v["device_id"], v["hotspot"]) for v in visits}
    assert not any(spot == "NOPE-99" for _, spot in spots), visits
    assert (TRACKERS[0], "HS-GRN-01") in spots, visits
    if kept:
        assert "NOPE-99" in result.stderr  # the report says what it left out


def test_an_oversize_publish_is_refused_by_the_broker_and_the_gateway_goes_on(station):
    """50 MB from the attacker: Mosquitto disconnects it at the packet header (max_packet_size),
    the publisher sees its publish fail, nothing reaches the gateway's database; the largest
    legitimate message (a fence set as big as a tracker takes) still passes."""
    broker = station.broker
    size_before = station.db_path.stat().st_size
    before_q = station.quarantine_max_id()
    # The attacker's own login (one connection per account: use_username_as_clientid).
    station.devices[ATTACKER].close()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=ATTACKER,
                         protocol=paho.MQTTv311)
    client.username_pw_set(**broker.device(ATTACKER).auth())
    dropped = threading.Event()
    reasons: list = []
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()

    def on_disconnect(_c, _u, _flags, reason_code, _props) -> None:
        reasons.append(reason_code)
        dropped.set()

    client.on_disconnect = on_disconnect
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert connected.wait(10)
    info = client.publish(loc_topic(ATTACKER), b"x" * (50 * 1024 * 1024), qos=1)
    assert dropped.wait(60), "the broker kept the connection of a 50 MB publish"
    client.loop_stop()
    assert not info.is_published()
    assert reasons and reasons[0].is_failure, reasons
    station.devices[ATTACKER] = Device(broker, ATTACKER)

    # The largest legitimate packet: a fence set as big as the trackers' client accepts.
    admin = broker.account("hostile-admin", "admin")
    observer_got: list[int] = []
    observed = threading.Event()
    observer = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="observer",
                           protocol=paho.MQTTv311)
    observer.username_pw_set(**broker.observer.auth())
    subscribed = threading.Event()
    observer.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c, _u, msg) -> None:
        observer_got.append(len(msg.payload))
        observed.set()

    observer.on_message = on_message
    observer.connect(broker.host, broker.port)
    observer.subscribe("hotspots/station/+/fences", 1)
    observer.loop_start()
    assert subscribed.wait(10)
    topic = wire.fences_topic("hostile-test")
    from tracker import mqtt as device_mqtt

    payload_len = device_mqtt._MAX_PACKET - (2 + len(topic) + 2)  # remaining length = limit
    sender = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="hostile-admin",
                         protocol=paho.MQTTv311)
    sender.username_pw_set(admin.username, admin.password)
    sender.connect(broker.host, broker.port)
    sender.loop_start()
    sent = sender.publish(topic, b"f" * payload_len, qos=1)
    sent.wait_for_publish(10)
    assert sent.is_published()
    assert observed.wait(10) and observer_got == [payload_len]
    assert MAX_PACKET_BYTES >= device_mqtt._MAX_PACKET + 1
    for c in (sender, observer):
        c.disconnect()
        c.loop_stop()

    station.wait_stored(station.good_round())
    station.gateway.assert_alive()
    assert station.quarantined_since(before_q, ATTACKER) == 0
    assert station.db_path.stat().st_size - size_before < 5 * 1024 * 1024


def test_a_flood_of_poison_is_bounded_and_starves_no_one(station):
    """1,500 payloads of 4 KB of junk from the attacker while the innocent devices report: their
    fixes are all stored, and the attacker's quarantine stays within its budget (count and
    bytes, oldest dropped), keeping the newest."""
    from gateway.intake.intake import QuarantineBudget

    budget = QuarantineBudget()
    flood = [(loc_topic(ATTACKER), b"%05d" % i + b"\x00junk" * 800, False) for i in range(1500)]
    expected = []
    done = threading.Thread(target=station.devices[ATTACKER].send_many, args=(flood,))
    done.start()
    for dev in TRACKERS:
        seqs = [station.next_seq(dev) for _ in range(20)]
        station.devices[dev].send_many([(loc_topic(dev), encode(tracker_location(dev, s)), False)
                                        for s in seqs])
        expected += [(dev, "seq", s) for s in seqs]
    done.join(120)
    assert not done.is_alive()
    station.wait_stored(expected + station.good_round(), timeout_s=60)
    station.gateway.assert_alive()
    rows, raw_bytes = station.query(
        "SELECT count(*), coalesce(sum(length(raw)), 0) FROM quarantine WHERE topic LIKE ?",
        (f"hotspots/dev/{ATTACKER}/%",))[0]
    assert rows <= budget.max_rows and raw_bytes <= budget.max_bytes, (rows, raw_bytes)
    newest = station.query("SELECT raw FROM quarantine WHERE topic LIKE ? ORDER BY id DESC"
                           " LIMIT 1", (f"hotspots/dev/{ATTACKER}/%",))[0][0]
    assert bytes(newest).startswith(b"01499")


# -- mutations with exact accounting --------------------------------------------------------------
HOSTILE_VALUES = ["NaN", "Infinity", "-Infinity", str(2**64), str(2**53), "-1", "0", "1e400",
                  "-1e400", "1.5", '""', '"\\ud800"', '"\\u0000"', '"\\u202e"',
                  '"' + "z" * 300 + '"', "null", "true", "[]", "{}", '["HS1"]', '{"a":1}',
                  "[" * 50 + "]" * 50,
                  '"HS1"', "123456789", "-91", "181", "3.4e38", '"enter"', '"location"']


def _valid_messages(rng: random.Random, seq: int) -> list[tuple[str, str, dict]]:
    """One valid message of every wire type: (account, topic, fields)."""
    a, p = ATTACKER, ATTACKER_PHONE
    tst = BASE_T + rng.randrange(1, 20000)
    return [
        (a, loc_topic(a), tracker_location(a, seq)),
        (a, event_topic(a), tracker_transition(a, seq, event=rng.choice(["enter", "leave"]))),
        (a, status_topic(a), tracker_status(a, seq)),
        (a, status_topic(a), {"_type": "status", "dev": a, "online": False, "created_at": 0,
                              "outbox": 0}),  # the tracker's last will
        (p, phone_topic(p), phone_location(tst)),
        (p, phone_topic(p) + "/event", phone_transition(tst)),
        (p, phone_topic(p), phone_lwt(tst)),
    ]


def _mutate(rng: random.Random, fields: dict) -> bytes:
    """A structured (field-level) or random (byte-level) mutation of a valid message."""
    how = rng.random()
    if how < 0.55:
        fields = dict(fields)
        raw = {}
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*fields, "inregions", "batt", "seq", "x"])
            op = rng.random()
            if op < 0.7:
                raw[key] = rng.choice(HOSTILE_VALUES)
            elif op < 0.85 and key in fields:
                del fields[key]
                raw.pop(key, None)
            else:
                raw[key] = json.dumps(rng.choice([-1, 0, 10**6, 2**31, -(2**31), 99.999]))
        return encode(fields, **raw)
    data = bytearray(encode(fields))
    if how < 0.75:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how < 0.85:
        del data[rng.randrange(len(data)):]
    elif how < 0.95:
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    else:
        at = rng.randrange(1, len(data))
        data[at:at] = data[:at] * rng.randint(1, 5)
    return bytes(data)


def _counts(line: str) -> dict:
    """The gateway's accounting line: stored {...}, duplicates N, status N, quarantined {...}."""
    stored_text, rest = line.split("stored ", 1)[1].split(", duplicates ", 1)
    duplicates, rest = rest.split(", status ", 1)
    status, quarantined_text = rest.split(", quarantined ", 1)
    stored = ast.literal_eval(stored_text)
    quarantined = ast.literal_eval(quarantined_text)
    return {"stored": sum(stored.values()), "by_type": stored, "duplicates": int(duplicates),
            "status": int(status), "quarantined": sum(quarantined.values()),
            "reasons": quarantined}


def test_mutations_of_every_message_type_add_up_exactly(tmp_path):
    """Structured and random mutations of location, transition, status, last will and the
    OwnTracks location, transition and lwt, from a registered tracker and phone, plus the
    valid originals (so some mutations are real duplicates): every message the broker
    acknowledged is stored, a status, quarantined or a counted duplicate; the gateway lives."""
    station = Station(tmp_path)
    try:
        rng = random.Random(16)
        # The good rounds' phone fixes come after every fix time the mutations use.
        station.phone_tst = dict.fromkeys(station.phone_tst, BASE_T + 100_000)
        before = station.gateway.exit_lines[:]
        sent: dict[str, list[tuple[str, bytes, bool]]] = {ATTACKER: [], ATTACKER_PHONE: []}
        seq = 0
        for _round in range(250):
            seq += 1
            for account, topic, fields in _valid_messages(rng, seq):
                sent[account].append((topic, encode(fields), False))
                for _ in range(2):
                    sent[account].append((topic, _mutate(rng, fields), False))
        total = 0
        for account, messages in sent.items():
            rng.shuffle(messages)
            total += station.devices[account].send_many(messages)
        # Sent after every acknowledged mutation: stored means everything before it was handled.
        good = station.good_round()
        total += len(good)
        station.wait_stored(good, timeout_s=60)
        line = station.gateway.stop()
        assert station.gateway.exit_lines[:-1] == before
        counts = _counts(line)
        handled = counts["stored"] + counts["status"] + counts["quarantined"] + counts["duplicates"]
        print(f"hostile mutations: sent {total}, stored {counts['stored']}"
              f" {counts['by_type']}, status {counts['status']}, quarantined"
              f" {counts['quarantined']} {counts['reasons']}, duplicates {counts['duplicates']},"
              " crashes 0")
        assert handled == total, (counts, total)
        # The database agrees with the counters.
        rows = sum(station.query(f"SELECT count(*) FROM {t}")[0][0]
                   for t in ("positions", "transitions"))
        assert rows == counts["stored"]
        duplicates = station.query("SELECT sum(duplicates) FROM devices")[0][0] or 0
        assert duplicates == counts["duplicates"]
        quarantine_rows = station.query("SELECT count(*) FROM quarantine")[0][0]
        assert 0 < quarantine_rows <= counts["quarantined"]
        assert counts["quarantined"] > total // 3  # the mutations were mostly refused...
        assert counts["stored"] > 100  # ...and the originals kept
        # Nothing non-finite or out of range slipped into the rows.
        assert not station.query(
            "SELECT 1 FROM positions WHERE lat NOT BETWEEN -90 AND 90 OR lon NOT BETWEEN -180"
            " AND 180 OR acc_m < 0 OR abs(speed_mps) > 1e6 OR seq > 4294967295")
        assert not station.query("SELECT 1 FROM devices WHERE batt NOT BETWEEN 0 AND 100")
        export = subprocess.run(
            [sys.executable, "-m", "hotspots", "export", "positions", "--db",
             str(station.db_path), "--format", "csv"], capture_output=True, text=True, cwd=ROOT,
            timeout=60)
        assert export.returncode == 0, export.stderr
        cells = {cell.strip().lower() for line in export.stdout.splitlines()
                 for cell in line.split(",")}
        assert len(export.stdout.splitlines()) > 100
        assert not cells & {"inf", "-inf", "nan", "infinity"}
    finally:
        station.close()


def test_the_ingest_bench_poison_is_refused_by_the_wire_format():
    """``hotspots bench ingest --hostile`` counts on every poison being quarantined."""
    from hotspots.bench.ingest import hostile_payloads

    payloads = hostile_payloads("H-01", BASE_T)
    reasons = set()
    for topic, payload in payloads:
        assert resolve_topic(topic)[1] == "H-01"
        with pytest.raises(wire.WireError) as refused:
            wire.decode(payload)
        reasons.add(refused.value.reason)
    assert reasons == {"too_deep", "bad_text", "malformed", "bad_field"}


def test_the_ingest_bench_accounts_for_its_poison(tmp_path):
    """A short run of the bench's hostile stream (1 in 20 poison): nothing lost, every fix once,
    every poison quarantined, no crash; the figures `make bench` prints rest on this."""
    from hotspots.bench.ingest import run_gateway

    with Mosquitto(workdir=tmp_path / "broker", persistence=False) as broker:
        result = run_gateway(broker, tmp_path, publishers=1, seconds=1.5, backlog=20_000,
                             sample_s=0.25, hostile_every=20)
    assert result["crashes"] == 0 and result["lost"] == 0 and result["exactly_once"]
    assert result["hostile_sent"] > 0
    assert result["hostile_quarantined"] == result["hostile_sent"]
    assert result["acked"] > 19 * result["hostile_sent"] - 20
