"""``hotspots enrol``: a fresh tracker in a dock slot becomes a fleet device in one command.

Real parts: the station broker runs in its own folder (as ``hotspots broker --dir`` does) with a
TLS listener; the tracker is the firmware on the MicroPython unix port in a simulated dock slot
(pseudo-terminals); ``enrol`` creates the account on that running broker, writes the settings
through the dock, and registers the device. The tracker then starts with exactly what was
written (its credentials and the CA file from its flash) and publishes over TLS. The broker
password and the Wi-Fi password never appear in the command's output, the database, or the
tracker's console.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from gateway.broker import Mosquitto, login_result, provision_account
from hotspots.cli import cli
from simulators import gps, tracker_process
from simulators.dock import DockSimulator
from simulators.link import wait_for

pytestmark = pytest.mark.micropython


@pytest.fixture
def station_broker(tmp_path):
    broker = Mosquitto(workdir=tmp_path / "broker", tls=True).start()
    yield broker
    broker.cleanup()


def test_provision_account_is_live_on_a_broker_run_by_another_process(station_broker):
    # A separate Mosquitto object stands for the enrol command's process.
    account = provision_account(station_broker.workdir, "T-0700")
    host, port = station_broker.address.rsplit(":", 1)
    assert login_result(host, int(port), "T-0700", account.password) == 0
    assert provision_account(station_broker.workdir, "T-0700").password == account.password


def test_enrol_writes_credentials_through_the_dock_without_showing_them(
        tmp_path, station_broker, micropython):
    dock = DockSimulator(tmp_path / "dock", station_broker.address, slots=1, time_scale=1)
    try:
        tracker = dock.add_tracker("fresh-01ab", slot="S1")
        db_path = tmp_path / "station.db"
        wifi_password = "correct-horse-battery"
        result = CliRunner().invoke(cli, [
            "enrol", "T-0600", "--port", dock.slot("S1").port,
            "--broker-dir", str(station_broker.workdir),
            "--broker", station_broker.tls_address, "--db", str(db_path),
            "--station", "north", "--link", "wifi", "--wifi-ssid", "station-7",
            "--wifi-password", wifi_password, "--ca", str(station_broker.ca_path),
            "--report-s", "15"])
        assert result.exit_code == 0, result.output
        assert "T-0600 enrolled" in result.output and "was fresh-01ab" in result.output
        password = json.loads(station_broker.accounts_path.read_text())
        password = next(a["password"] for a in password if a["username"] == "T-0600")

        config = json.loads((tracker.state_dir / "config.json").read_text())
        host, port = station_broker.tls_address.rsplit(":", 1)
        assert config == {
            "device_id": "T-0600", "station": "north", "broker_host": host,
            "broker_port": int(port), "user": "T-0600", "password": password,
            "link": "wifi", "wifi_ssid": "station-7", "wifi_password": wifi_password,
            "report_s": 15, "ca": "ca.pem"}
        assert (tracker.state_dir / "ca.pem").read_text() == station_broker.ca_path.read_text()

        # Registered, and the enrolment is on record without a secret.
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT registered_at IS NOT NULL FROM devices"
                                " WHERE device_id = 'T-0600'").fetchone() == (1,)
            events = conn.execute("SELECT detail FROM dock_events WHERE event = 'enrolled'"
                                  ).fetchall()
            dump = "\n".join(conn.iterdump())
        assert len(events) == 1 and "password" in events[0][0]  # the key, not the value
        for secret in (password, wifi_password):
            assert secret not in result.output
            assert secret not in dump
            assert secret not in tracker.log_path.read_text()
    finally:
        dock.close()

    # The tracker starts with what was written and reaches the broker over TLS with it.
    seen = threading.Event()
    observer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="enrol-observer")
    observer.username_pw_set(**station_broker.observer.auth())
    observer.on_connect = lambda c, *_: c.subscribe("hotspots/dev/T-0600/status", 1)
    observer.on_message = lambda *_: seen.set()
    observer.connect(station_broker.host, station_broker.port)
    observer.loop_start()
    # Only the GNSS device and the state folder on the command line: the unix board reads the
    # folder's config.json first, as a board reads /state/config.json, and the relative ca
    # beside it.
    terminal = gps.PseudoTerminal()
    with open(tmp_path / "after.log", "w") as log:
        process = subprocess.Popen(
            [tracker_process.find_micropython(), str(tracker_process.FIRMWARE_DIR / "main.py"),
             "--gps", terminal.path, "--state", str(tracker.state_dir)],
            env=tracker_process.micropython_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(seen.is_set, 20), (tmp_path / "after.log").read_text()
        after = (tmp_path / "after.log").read_text()
        assert "device T-0600" in after and password not in after and wifi_password not in after
    finally:
        process.terminate()
        process.wait(10)
        terminal.hang_up()
        observer.loop_stop()
        observer.disconnect()


def test_enrol_without_a_tracker_is_a_clear_error(tmp_path, station_broker):
    terminal = gps.PseudoTerminal()  # a slot with nothing in it
    try:
        result = CliRunner().invoke(cli, [
            "enrol", "T-0601", "--port", terminal.path, "--broker-dir",
            str(station_broker.workdir), "--broker", station_broker.address,
            "--db", str(tmp_path / "s.db"), "--apn", "iot.example"])
    finally:
        terminal.hang_up()
    assert result.exit_code != 0
    assert "no tracker answers" in result.output
    assert "T-0601" not in json.dumps(json.loads(station_broker.accounts_path.read_text()))


def test_enrol_through_a_running_dock_station(tmp_path, station_broker, micropython):
    from gateway.fleet.dock import DockStation
    from gateway.fleet.enrol import spool_dir
    from gateway.schema import open_db

    dock = DockSimulator(tmp_path / "dock", station_broker.address, slots=1, time_scale=1)
    db_path = tmp_path / "station.db"
    open_db(str(db_path)).close()
    stop = threading.Event()
    station = DockStation(str(db_path), dock.ports(), poll_s=0.2)
    try:
        tracker = dock.add_tracker("fresh-02cd", slot="S1")
        station.start(stop)
        assert wait_for(lambda: station.info["S1"] is not None, 20)
        result = CliRunner().invoke(cli, [
            "enrol", "T-0602", "--slot", "S1", "--broker-dir", str(station_broker.workdir),
            "--broker", station_broker.address, "--db", str(db_path), "--link", "cellular",
            "--apn", "iot.example", "--wait-s", "20"])
        assert result.exit_code == 0, result.output
        assert "T-0602 enrolled on S1 (was fresh-02cd)" in result.output
        config = json.loads((tracker.state_dir / "config.json").read_text())
        assert config["device_id"] == "T-0602" and config["apn"] == "iot.example"
        assert config["password"] not in result.output
        # The request, with its secret, is gone from the disk.
        assert list(spool_dir(db_path).iterdir()) == []
        assert station.counts["S1"].errors == 0
    finally:
        stop.set()
        station.join()
        dock.close()


def test_enrol_through_a_station_that_is_not_running_gives_up_and_leaves_nothing(tmp_path,
                                                                                station_broker):
    from gateway.fleet.enrol import spool_dir

    db_path = tmp_path / "station.db"
    result = CliRunner().invoke(cli, [
        "enrol", "T-0603", "--slot", "S9", "--broker-dir", str(station_broker.workdir),
        "--broker", station_broker.address, "--db", str(db_path), "--link", "wifi",
        "--wifi-ssid", "x", "--wifi-password", "hunter2", "--wait-s", "0.3"])
    assert result.exit_code != 0 and "no dock station took the request" in result.output
    assert list(spool_dir(db_path).iterdir()) == []


def test_enrol_refuses_a_bad_device_id_before_creating_anything(tmp_path, station_broker,
                                                                 micropython):
    dock = DockSimulator(tmp_path / "dock", station_broker.address, slots=1, time_scale=1)
    try:
        tracker = dock.add_tracker("fresh-02cd", slot="S1")
        for bad in ("T 0602", "T/0602/#", "issi:12"):
            result = CliRunner().invoke(cli, [
                "enrol", bad, "--port", dock.slot("S1").port,
                "--broker-dir", str(station_broker.workdir), "--broker", station_broker.address,
                "--db", str(tmp_path / "s.db"), "--apn", "iot.example"])
            assert result.exit_code != 0 and "device id" in result.output, result.output
        accounts = json.loads(station_broker.accounts_path.read_text())
        assert not any(a["username"].startswith(("T ", "T/", "issi")) for a in accounts)
        assert not (tracker.state_dir / "config.json").exists()
    finally:
        dock.close()
