"""A published fence set on a real tracker: the firmware on the MicroPython unix port receives it
over MQTT, reports its version in its retained status, the gateway records it, and the tracker
still runs it after a power cut."""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import struct
import sys
import threading
import time
from pathlib import Path

import pytest

from fences.compile import compile_geojson
from fences.publish import publish
from gateway.fleet.identity import register_device
from gateway.intake.service import Gateway
from gateway.schema import open_db
from hotspots.demo import SAMPLE_FENCES
from simulators import gps, tracker_process
from simulators.link import wait_for
from tracker import wire

pytestmark = pytest.mark.micropython
DEVICE = "T-0300"


def test_a_published_set_is_applied_reported_recorded_and_kept(tmp_path, mosquitto,
                                                              micropython):
    compiled = compile_geojson(SAMPLE_FENCES)
    gw = mosquitto.gateway
    publish(compiled, mosquitto.host, mosquitto.port, "main", **mosquitto.fences.auth())
    db_path = tmp_path / "hotspots.db"
    db = open_db(str(db_path))
    register_device(db, DEVICE)
    db.close()
    stop = threading.Event()
    gateway = Gateway(mosquitto.address, str(db_path), **gw.auth())
    thread = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    thread.start()
    assert gateway.connected.wait(10)

    account = mosquitto.device(DEVICE)
    terminal = gps.PseudoTerminal()  # no fixes needed: the set comes over MQTT
    state = tmp_path / "state"  # empty flash: the tracker starts without fences
    logs = [tmp_path / "firmware-1.log", tmp_path / "firmware-2.log"]

    def start(log):
        return tracker_process.start(terminal.path, mosquitto.address, DEVICE, state,
                                     log_path=log, user=account.username,
                                     password=account.password)

    def recorded_version():
        with sqlite3.connect(db_path) as conn:
            row = conn.execute("SELECT fence_version FROM devices WHERE device_id = ?",
                               (DEVICE,)).fetchone()
        return row[0] if row else None

    firmware = start(logs[0])
    try:
        assert wait_for(lambda: f"fences {compiled.version} active" in logs[0].read_text(), 30), \
            logs[0].read_text()
        assert "fences none" in logs[0].read_text().splitlines()[0]
        # The status after the swap carries the version; the gateway stores it per device.
        assert wait_for(lambda: recorded_version() == compiled.version, 30)
        # A power cut, then a reboot: the set comes from flash before any broker is reached.
        firmware.send_signal(signal.SIGKILL)
        firmware.wait()
        firmware = start(logs[1])
        assert wait_for(lambda: logs[1].exists() and logs[1].read_text(), 30)
        assert f"fences {compiled.version}" in logs[1].read_text().splitlines()[0]
    finally:
        firmware.kill()
        firmware.wait()
        stop.set()
        thread.join(30)
        terminal.close(drain_timeout_s=0)


@pytest.fixture(scope="module")
def precompiled(tmp_path_factory, micropython):
    """The firmware as ``.mpy`` files, as a board runs it (source would be compiled in heap)."""
    return tracker_process.precompile(tmp_path_factory.mktemp("mpy"))


def _city_set(tmp_path, broker, **options):
    """A 200-hot-spot set (42 KB as published) retained for a tracker started with ``options``
    (:func:`simulators.tracker_process.command`); returns the set, the tracker's log once it has
    dealt with it, and whether it is still running."""
    from fences.synthetic import city_fences

    compiled = compile_geojson(city_fences(200, vertices=20))
    publish(compiled, broker.host, broker.port, "main", **broker.fences.auth())
    account = broker.device(DEVICE)
    terminal = gps.PseudoTerminal()
    log = tmp_path / "firmware.log"
    address = options.pop("address", broker.address)
    firmware = tracker_process.start(terminal.path, address, DEVICE, tmp_path / "state",
                                     log_path=log, user=account.username,
                                     password=account.password, **options)
    try:
        assert wait_for(lambda: "fence" in log.read_text().split("\n", 1)[-1], 30), \
            log.read_text()
        time.sleep(3)  # long enough for a reconnect loop to show
        return compiled, log.read_text(), firmware.poll() is None
    finally:
        firmware.kill()
        firmware.wait()
        terminal.close(drain_timeout_s=0)


def start_tracker(mosquitto, address: str, state, log, precompiled):
    """The compiled tracker on a fresh GNSS pseudo-terminal, connecting to ``address`` with its
    broker account, in a 160 KB heap (above tests/test_memory_budget.py's budget, so these
    tests are about delivery, not memory): the terminal and the process."""
    account = mosquitto.device(DEVICE)
    terminal = gps.PseudoTerminal()
    firmware = tracker_process.start(terminal.path, address, DEVICE, state, log_path=log,
                                     user=account.username, password=account.password,
                                     precompiled=precompiled, heap="160K")
    return terminal, firmware


def test_a_city_sized_set_is_spooled_to_flash_and_applied_on_a_small_heap(
        tmp_path, mosquitto, precompiled):
    """220 KB of heap on the 64-bit unix port (bytecode in RAM, pointers twice a board's): the
    42 KB payload goes to flash as it arrives, so only the set's arrays are in memory. Holding
    the payload in RAM, this needed over 240 KB."""
    compiled, log, alive = _city_set(tmp_path, mosquitto, precompiled=precompiled, heap="220K")
    assert f"fences {compiled.version} active" in log, log
    assert alive and "retry" not in log, log
    assert (tmp_path / "state" / "fences.json").stat().st_size == len(compiled.text)
    assert not (tmp_path / "state" / "fences.json.new").exists()


def test_a_damaged_set_is_refused_reported_and_alerted_and_the_old_one_runs_on(
        tmp_path, mosquitto, precompiled):
    """A set whose content hash is right but whose tables are wrong (issue 16 item 6): the
    tracker refuses it with its reason, keeps the set it has, says so in its status, and the
    gateway raises an alert. Before, a set that could not be used left no trace anywhere."""
    import paho.mqtt.publish as mqtt_publish

    from gateway.fleet.status import fleet_status

    sys.path.insert(0, str(Path(__file__).resolve().parent / "firmware"))
    from test_fence_damage import rehash

    good = compile_geojson(SAMPLE_FENCES)
    # A grid entry pointing past the last fence, sizes intact: only the structure check sees it.
    n, nr, nv, ng, ne = struct.unpack_from("<HHHHH", good.data, 16)
    gent = 48 + 8 * n + 8 * n + 8 * n + n + 2 * (n + 1) + 2 * (nr + 1) + 4 * nv + 4 * ng \
        + 2 * (ng + 1)
    damaged = bytearray(good.data)
    struct.pack_into("<H", damaged, gent, n + 7)
    damaged = rehash(damaged)
    text = json.dumps({"format": "hsf1", "version": damaged[4:16].decode(),
                       "data": base64.b64encode(damaged).decode()})
    db_path = tmp_path / "hotspots.db"
    db = open_db(str(db_path))
    register_device(db, DEVICE)
    db.close()
    stop = threading.Event()
    gateway = Gateway(mosquitto.address, str(db_path), **mosquitto.gateway.auth())
    thread = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    thread.start()
    assert gateway.connected.wait(10)
    state = tmp_path / "state"
    state.mkdir()
    (state / "fences.json").write_text(good.text)
    log = tmp_path / "firmware.log"
    terminal, firmware = start_tracker(mosquitto, mosquitto.address, state, log, precompiled)
    try:
        assert wait_for(lambda: f"fences {good.version}" in log.read_text(), 30), \
            log.read_text()
        version = damaged[4:16].decode()
        mqtt_publish.multiple(
            [{"topic": wire.fences_set_topic("main", version), "payload": text, "qos": 1,
              "retain": True},
             {"topic": wire.fences_topic("main"), "qos": 1, "retain": True,
              "payload": wire.fences_announcement(version, len(text))}],
            hostname=mosquitto.host, port=mosquitto.port, auth=mosquitto.fences.auth())
        assert wait_for(lambda: "fence set rejected" in log.read_text(), 30), log.read_text()
        assert "fence set rejected: structure: grid cell" in log.read_text()

        def alerts():
            gdb = open_db(str(db_path))
            try:
                return [a for a in fleet_status(gdb).alerts if a.startswith("FENCES REFUSED")]
            finally:
                gdb.close()

        assert wait_for(lambda: alerts(), 30)
        alert = alerts()[0]
        assert DEVICE in alert and "structure: grid cell" in alert
        assert f"still running {good.version}" in alert and "1 refused" in alert
        assert firmware.poll() is None and "retry" not in log.read_text()
        assert (state / "fences.json").read_text() == good.text  # the old set, still in flash
    finally:
        firmware.kill()
        firmware.wait()
        stop.set()
        thread.join(30)
        terminal.close(drain_timeout_s=0)


def test_a_city_sized_set_arrives_over_tls_on_a_slow_link(tmp_path, tls_mosquitto, micropython):
    """TLS hands the payload over record by record; on a slow link a record arrives in pieces,
    and the socket wakes the reader with nothing to read yet. That must mean "wait", not "end of
    stream" (which dropped the link, and the retained set came again at every reconnect)."""
    from simulators.link import FlakyLink

    link = FlakyLink(tls_mosquitto.tls_address)
    link.trickle(512, 0.002)
    try:
        compiled, log, alive = _city_set(tmp_path, tls_mosquitto, address=link.address,
                                         tls_ca=tls_mosquitto.ca_path)
    finally:
        link.close()
    assert f"fences {compiled.version} active" in log, log
    assert alive and "retry" not in log, log


def test_an_unchanged_set_costs_an_announcement_per_connect_and_no_flash_write(
        tmp_path, mosquitto, precompiled):
    """Issue 18 item 2, counted at a TCP proxy: before, every connect downloaded the retained
    set again (42 KB for 200 hot spots) and wrote it to flash. Now the retained message on the
    fences topic names the version; a tracker that runs it fetches nothing."""
    from fences.synthetic import city_fences
    from simulators.link import FlakyLink

    compiled = compile_geojson(city_fences(200, vertices=20))
    publish(compiled, mosquitto.host, mosquitto.port, "main", **mosquitto.fences.auth())
    state = tmp_path / "state"
    state.mkdir()
    (state / "fences.json").write_text(compiled.text)  # the tracker already runs this set
    written = (state / "fences.json").stat().st_mtime_ns
    link = FlakyLink(mosquitto.address)
    log = tmp_path / "firmware.log"
    terminal, firmware = start_tracker(mosquitto, link.address, state, log, precompiled)
    try:
        for k in range(4):
            assert wait_for(lambda k=k: link.connections >= k + 1, 60), (k, log.read_text())
            time.sleep(1.5)  # connected, subscribed, status published, announcement received
            if k < 3:
                link.cut()
        down = link.down_bytes
        connects = link.connections
    finally:
        firmware.kill()
        firmware.wait()
        link.close()
        terminal.close(drain_timeout_s=0)
    text = log.read_text()
    assert f"fences {compiled.version}" in text.splitlines()[0]
    assert "active" not in text and "rejected" not in text, text
    announcement = len(wire.fences_announcement(compiled.version, len(compiled.text)))
    per_connect = down / connects
    print(f"{down} bytes from the broker over {connects} connects ({per_connect:.0f} per"
          f" connect, the announcement is {announcement} bytes); the set is"
          f" {len(compiled.text)} bytes")
    # CONNACK, two SUBACKs, a PUBACK and the announcement PUBLISH: under 140 bytes a connect.
    assert per_connect < 140
    assert down < len(compiled.text) // 10
    assert (state / "fences.json").stat().st_mtime_ns == written  # no flash write
    assert not (state / "fences.json.new").exists()
