"""A published fence set on a real tracker: the firmware on the MicroPython unix port receives it
over MQTT, reports its version in its retained status, the gateway records it, and the tracker
still runs it after a power cut."""

from __future__ import annotations

import signal
import sqlite3
import threading

import pytest

from fences.compile import compile_geojson
from fences.publish import publish
from gateway.identity import register_device
from gateway.schema import open_db
from gateway.service import Gateway
from hotspots.demo import SAMPLE_FENCES
from simulators import gps, tracker_process
from simulators.link import wait_for

pytestmark = pytest.mark.micropython
DEVICE = "T-0300"


def test_a_published_set_is_applied_reported_recorded_and_kept(tmp_path, mosquitto,
                                                              micropython):
    compiled = compile_geojson(SAMPLE_FENCES)
    gw = mosquitto.gateway
    publish(compiled, mosquitto.host, mosquitto.port, "main",
            username=gw.username, password=gw.password)
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
