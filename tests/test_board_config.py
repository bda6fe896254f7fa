"""The unix board's command line and ``config.json`` build one settings dict, on MicroPython."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHOW = ("import sys, json\nfrom boards import unix\nfrom tracker import config\n"
        "try:\n    cfg = unix.parse_args(sys.argv[1:])\nexcept SystemExit as exc:\n"
        "    print('EXIT', exc.args[0])\nelse:\n    print(json.dumps(config.redacted(cfg)))\n")


@pytest.fixture
def show(run_micropython, tmp_path: Path):
    script = tmp_path / "show.py"
    script.write_text(SHOW)

    def run(*argv: str) -> dict | str:
        out = run_micropython(str(script), *argv).strip()
        return out[5:] if out.startswith("EXIT ") else json.loads(out)

    return run


def test_command_line_options_become_the_settings_dict(show, tmp_path: Path) -> None:
    cfg = show("--gps", "/dev/pts/9", "--broker", "127.0.0.1:18830", "--device-id", "T-0001",
               "--state", str(tmp_path), "--report-s", "5", "--user", "T-0001",
               "--password", "hunter2", "--gnss-module", "ublox", "--exit-on-eof")
    assert cfg["device_id"] == "T-0001"
    assert (cfg["broker_host"], cfg["broker_port"], cfg["report_s"]) == ("127.0.0.1", 18830, 5)
    assert (cfg["gnss_device"], cfg["gnss_module"], cfg["exit_on_eof"]) == (
        "/dev/pts/9", "ublox", True)
    assert cfg["password"] == "***"


def test_a_config_file_with_options_on_top(show, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"device_id": "T-0042", "broker_host": "gw", "station": "north",
                                "user": "T-0042", "password": "s3cret", "gnss_module": "mtk"}))
    cfg = show("--config", str(path), "--gps", "nmea.log", "--state", str(tmp_path),
               "--station", "south")
    assert (cfg["device_id"], cfg["broker_port"], cfg["station"], cfg["gnss_module"]) == (
        "T-0042", 1883, "south", "mtk")


def test_bad_settings_exit_with_the_reason_and_no_secret(show, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"broker_host": "gw", "device_id": "T-1", "password": "s3cret"}))
    reason = show("--config", str(path), "--gps", "x", "--state", str(tmp_path))
    assert reason == "configuration: user and password go together: give both or neither"
    assert "usage" in show("--gps", "x")
    assert "HOST:PORT" in show("--gps", "x", "--state", "s", "--broker", "nohost")
    assert "report-s" in show("--gps", "x", "--state", "s", "--broker", "h:1", "--report-s", "x")


def test_the_state_folders_config_is_read_first_as_on_a_board(show, tmp_path: Path) -> None:
    # What the dock wrote at enrolment: the tracker starts with it from --gps and --state alone.
    state = tmp_path / "state"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({
        "device_id": "T-0600", "broker_host": "10.0.0.2", "broker_port": 8883,
        "user": "T-0600", "password": "s3cret", "ca": "ca.pem", "link": "wifi",
        "wifi_ssid": "station-7"}))
    cfg = show("--gps", "nmea.log", "--state", str(state))
    assert (cfg["device_id"], cfg["broker_host"], cfg["broker_port"], cfg["user"]) == (
        "T-0600", "10.0.0.2", 8883, "T-0600")
    assert cfg["ca"] == f"{state}/ca.pem" and cfg["password"] == "***"
    # options still go on top; an explicit --config wins over the folder's file
    assert show("--gps", "x", "--state", str(state), "--report-s", "7")["report_s"] == 7
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"device_id": "T-0601", "broker_host": "gw", "ca": "c.pem"}))
    cfg = show("--config", str(other), "--gps", "x", "--state", str(state))
    assert cfg["device_id"] == "T-0601" and cfg["ca"] == f"{tmp_path}/c.pem"
    # without a file there, the command line is all there is
    assert show("--gps", "x", "--state", str(tmp_path / "empty")) == (
        "configuration: broker_host is required")
