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
