"""The walking skeleton, end to end, every part real.

A simulated officer walks the sample route through both sample hot spots. The GNSS simulator
writes NMEA into a pseudo-terminal; the firmware (on the MicroPython unix port, and on CPython
for comparison) reads it through the unix board file, evaluates the fences and publishes over a
private Mosquitto; the gateway stores into an SQLite file. An independent MQTT observer records
what the firmware actually published, so "stored exactly once" is checked against the wire, not
against the firmware's own count.
"""

from __future__ import annotations

import json
import sqlite3
import threading

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from hotspots.cli import cli
from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
from simulators.patrol import run_patrol
from tracker import wire

DWELL_TOLERANCE_S = 5


class Observer:
    """Subscribes to every device topic (QoS 1) and keeps what it sees, by (device, seq)."""

    def __init__(self, address: str, auth: dict[str, str]) -> None:
        host, port = address.rsplit(":", 1)
        self.messages: dict[tuple[str, int], list[dict]] = {}
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="observer")
        self.client.username_pw_set(**auth)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(wire.device_topic("+", wire.KIND_LOCATION), 1),
             (wire.device_topic("+", wire.KIND_EVENT), 1)])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message) -> None:
        body = json.loads(message.payload)
        with self._lock:
            self.messages.setdefault((body["dev"], body["seq"]), []).append(body)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def stored_keys(db_path) -> list[tuple[str, int]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(
            "SELECT device_id, seq FROM positions UNION ALL SELECT device_id, seq FROM transitions"
        ).fetchall()


def reported_visits(db_path) -> list[dict]:
    result = CliRunner().invoke(cli, ["report", "dwell", "--db", str(db_path), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


@pytest.fixture(params=["micropython", "cpython"])
def runtime(request, micropython):
    return request.param


def test_patrol_is_stored_exactly_once_with_true_dwell(mosquitto, tmp_path, runtime):
    observer = Observer(mosquitto.address, mosquitto.observer.auth())
    assert observer.subscribed.wait(10)
    try:
        result = run_patrol(mosquitto.address, tmp_path, SAMPLE_ROUTE, SAMPLE_FENCES,
                            speedup=120, cpython=runtime == "cpython")
    finally:
        observer.stop()

    # It really ran where we asked it to.
    first_line = result.firmware_log.splitlines()[0]
    assert f" on {runtime} " in first_line, first_line

    # Every message on the wire is stored once; nothing stored that was not published.
    keys = stored_keys(result.db_path)
    assert len(keys) == len(set(keys))
    assert set(keys) == set(observer.messages)
    assert result.published == len(observer.messages) > 0
    assert result.counts.duplicates == 0
    # Simulated time never runs ahead of the clock, so no fix is flagged (as "future" or else).
    with sqlite3.connect(result.db_path) as conn:
        flagged = conn.execute(
            "SELECT count(*) FROM positions WHERE coalesce(filtered, '') != ''").fetchone()[0]
    assert flagged == 0

    # A location at least every report interval for 20 minutes, and both visits.
    assert result.walk_duration_s >= 19.5 * 60
    visits = reported_visits(result.db_path)
    assert [v["hotspot"] for v in visits] == [v.hotspot for v in result.truth]
    assert len(visits) == 2
    for got, truth in zip(visits, result.truth, strict=True):
        assert abs(got["enter"] - truth.enter) <= DWELL_TOLERANCE_S, (got, truth)
        assert abs(got["leave"] - truth.leave) <= DWELL_TOLERANCE_S, (got, truth)
        assert abs(got["dwell_s"] - truth.dwell_s) <= DWELL_TOLERANCE_S, (got, truth)


def test_demo_command_prints_report_beside_truth(tmp_path, micropython):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "demo"), "--speedup", "200"])
    assert result.exit_code == 0, result.output
    assert "on the MicroPython unix port" in result.output or "MicroPython" in result.output
    assert "ground truth" in result.output
    assert "HS-GRN-01" in result.output and "HS-GRN-02" in result.output
    assert (tmp_path / "demo" / "hotspots.db").exists()
