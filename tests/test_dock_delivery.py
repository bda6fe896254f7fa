"""Dock pulls keep the delivery contract: every fix once in SQLite, nothing lost.

The firmware runs on the MicroPython unix port with a dock port (a pseudo-terminal cable from
``simulators/dock.py``); the gateway side is :class:`gateway.fleet.dock.DockStation` over pyserial.
A tracker that was signed out before it booted (``dock.json`` in its flash) walks the sample
route, so its outbox holds a real patrol.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from fences.compile import compile_geojson
from gateway.fleet.dock import DockStation
from gateway.fleet.identity import register_device
from gateway.intake.service import Gateway
from gateway.schema import open_db
from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
from simulators.dock import DockSimulator
from simulators.link import wait_for
from simulators.walk import make_walk

pytestmark = pytest.mark.micropython

DEVICE = "T-0201"
START = 1_795_500_000.0


def stored(db_path: Path, device: str = DEVICE) -> list[int]:
    with sqlite3.connect(db_path) as conn:
        return [row[0] for row in conn.execute(
            "SELECT seq FROM positions WHERE device_id = ? UNION ALL"
            " SELECT seq FROM transitions WHERE device_id = ? ORDER BY 1", (device, device))]


def signed_out_tracker(sim: DockSimulator, device: str) -> None:
    """A tracker handed out earlier: its flash says so, so it tracks from boot."""
    state = sim.workdir / "devices" / device
    state.mkdir(parents=True, exist_ok=True)
    (state / "dock.json").write_text(json.dumps({"asg": "C1", "due": 0, "report_s": 10}))
    sim.add_tracker(device, batt=80)


def outbox_after_walk(sim: DockSimulator, device: str) -> None:
    """Walk the route with the tracker (as fast as it parses) and let it queue the patrol."""
    sim.play(device, make_walk(SAMPLE_ROUTE, SAMPLE_FENCES, START), speedup=0)
    tracker = sim.trackers[device]
    # The walk is in the GNSS pty; wait until the firmware has parsed all of it.
    assert wait_for(lambda: tracker.gnss.unread() == 0, 60)
    time.sleep(0.5)


def test_unplugging_mid_transfer_loses_nothing(tmp_path, micropython):
    db_path = tmp_path / "g.db"
    open_db(str(db_path)).close()
    # No broker at all: everything the patrol records waits in the outbox for the dock.
    sim = DockSimulator(tmp_path / "dock", "127.0.0.1:9", slots=2, time_scale=1)
    stop = threading.Event()
    try:
        signed_out_tracker(sim, DEVICE)
        outbox_after_walk(sim, DEVICE)
        station = DockStation(str(db_path), sim.ports(), poll_s=0.2)
        station.start(stop)
        # Pulled out after ~6 records' worth of bytes: mid-frame, before the first commit.
        sim.plug(DEVICE, "S1")
        sim.unplug_after(DEVICE, 2500)
        assert wait_for(lambda: station.counts["S1"].undockings == 1, 20)
        assert stored(db_path) == []  # nothing committed, so nothing acknowledged either
        # Again, into the other slot, after about 60 records: the first batch is committed and
        # acknowledged, the second is cut short.
        sim.plug(DEVICE, "S2")
        sim.unplug_after(DEVICE, 15000)
        assert wait_for(lambda: station.counts["S2"].undockings == 1, 30)
        partial = stored(db_path)
        assert 0 < len(partial) < 100 and partial == list(range(1, len(partial) + 1))
        # Third time lucky: the rest comes over, and the outbox is empty.
        sim.plug(DEVICE, "S1")
        assert wait_for(lambda: (station.info["S1"] or _NONE).outbox == 0, 60)
        last = station.info["S1"].last_seq
        assert last > 100  # a 20-minute walk: a location every 10 s, and the transitions
        assert stored(db_path) == list(range(1, last + 1))  # every number, exactly once
        pulled = sum(c.pulled for c in station.counts.values())
        dups = sum(c.intake.duplicates for c in station.counts.values())
        assert pulled == last + dups  # only an unacknowledged record is ever sent twice
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    finally:
        stop.set()
        sim.close()


class _Empty:
    outbox = -1


_NONE = _Empty()


class PubackEater:
    """A TCP relay to the broker that drops the broker's PUBACKs for locations and transitions.

    The broker (and so the gateway) gets every message, but the tracker never learns it and
    keeps them all: the overlap a lost PUBACK causes, made certain.
    """

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.eaten = 0
        self._pids: set[int] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                while True:
                    packet, buf = _split_packet(buf)
                    if packet is None:
                        break
                    if upstream and packet[0] >> 4 == 3:  # PUBLISH: note the tracking ones
                        body = _body(packet)
                        tlen = int.from_bytes(body[:2], "big")
                        topic = body[2 : 2 + tlen].decode()
                        if topic.endswith(("/loc", "/event")):
                            self._pids.add(int.from_bytes(body[2 + tlen : 4 + tlen], "big"))
                    if not upstream and packet[0] >> 4 == 4:  # PUBACK
                        if int.from_bytes(_body(packet)[:2], "big") in self._pids:
                            self.eaten += 1
                            continue
                    dst.sendall(packet)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


def _split_packet(buf: bytes) -> tuple[bytes | None, bytes]:
    if len(buf) < 2:
        return None, buf
    length, mult, i = 0, 1, 1
    while True:
        if i >= len(buf):
            return None, buf
        byte = buf[i]
        length += (byte & 127) * mult
        mult *= 128
        i += 1
        if not byte & 128:
            break
    if len(buf) < i + length:
        return None, buf
    return buf[: i + length], buf[i + length :]


def _body(packet: bytes) -> bytes:
    i = 1
    while packet[i] & 128:
        i += 1
    return packet[i + 1 :]


def test_dock_pull_and_mqtt_delivery_together_store_each_fix_once(tmp_path, mosquitto,
                                                                   micropython):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, DEVICE)
    db.close()
    gateway = Gateway(mosquitto.address, str(db_path), **{
        k: v for k, v in mosquitto.gateway.auth().items()})
    stop = threading.Event()
    threading.Thread(target=gateway.run, args=(stop,), daemon=True).start()
    assert gateway.connected.wait(10)
    eater = PubackEater(mosquitto.address)
    account = mosquitto.device(DEVICE)
    sim = DockSimulator(tmp_path / "dock", eater.address, slots=1, time_scale=1,
                        auth=lambda _d: (account.username, account.password))
    try:
        signed_out_tracker(sim, DEVICE)
        outbox_after_walk(sim, DEVICE)
        # The broker delivered the first batch to the gateway; the tracker never heard back.
        assert wait_for(lambda: eater.eaten > 0 and len(stored(db_path)) >= 20, 30)
        by_mqtt = len(stored(db_path))
        station = DockStation(str(db_path), sim.ports(), poll_s=0.2,
                              fences_text=compile_geojson(Path(SAMPLE_FENCES)).text)
        station.start(stop)
        sim.plug(DEVICE, "S1")
        assert wait_for(lambda: station.counts["S1"].pulled > 100, 60)
        assert wait_for(lambda: (station.info["S1"] or _NONE).outbox == 0, 30)
        counts = station.counts["S1"].intake
        seqs = stored(db_path)
        assert seqs == list(range(1, station.info["S1"].last_seq + 1))  # one row per fix
        assert station.counts["S1"].pulled == len(seqs)  # the dock pulled everything ...
        assert counts.duplicates >= by_mqtt  # ... and dropped what MQTT had already stored
        assert sum(counts.stored.values()) == len(seqs) - counts.duplicates
    finally:
        stop.set()
        sim.close()
        eater.close()
