"""The dock commands as a station runs them: ``dock sim`` and ``dock run`` as processes on real
pseudo-terminals and the locked-down broker, ``dock status`` and ``dock pick`` against their
database, and both processes stopping cleanly on a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotspots.cli import cli
from hotspots.demo import SAMPLE_FENCES
from simulators.link import wait_for

pytestmark = pytest.mark.micropython

ROOT = Path(__file__).resolve().parents[1]
FLAT, FULL = "T-0401", "T-0402"


def hotspots(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hotspots", *args], cwd=ROOT, **popen)


def status(db_path: Path) -> dict:
    result = CliRunner().invoke(cli, ["dock", "status", "--db", str(db_path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def docked(db_path: Path) -> dict[str, dict]:
    """Slot name -> what the dock knows of the tracker in it."""
    return {slot["slot"]: slot for slot in status(db_path)["slots"] if slot.get("device_id")}


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_dock_sim_and_dock_run_hand_out_the_fullest_tracker(tmp_path, mosquitto, micropython):
    for device in (FLAT, FULL):
        mosquitto.device(device)  # provisioned: an account in accounts.json
    db_path = tmp_path / "station.db"
    sim = hotspots("dock", "sim", "--broker", mosquitto.address, "--dir", str(tmp_path / "dock"),
                   "--slots", "2", "--tracker", f"{FLAT}=30", "--tracker", f"{FULL}=97",
                   "--time-scale", "1", "--accounts", str(mosquitto.accounts_path),
                   stdout=subprocess.PIPE, text=True)
    run = None
    try:
        slots = [sim.stdout.readline().strip() for _ in range(2)]
        assert [s.split("=")[0] for s in slots] == ["S1", "S2"], slots
        run = hotspots("dock", "run", "--db", str(db_path), "--fences", str(SAMPLE_FENCES),
                       *[arg for s in slots for arg in ("--slot", s)],
                       stderr=subprocess.DEVNULL)
        # Docked, identified and given the hot spots.
        assert wait_for(lambda: db_path.exists() and len(docked(db_path)) == 2 and all(
            s["fence_version"] for s in docked(db_path).values()), 60), \
            status(db_path) if db_path.exists() else "no database"
        slots_now = docked(db_path)
        assert slots_now["S1"]["device_id"] == FLAT and slots_now["S2"]["device_id"] == FULL
        assert slots_now["S1"]["batt"] < 50 <= slots_now["S2"]["batt"]

        refused = CliRunner().invoke(cli, ["dock", "pick", "C1", "--db", str(db_path),
                                           "--device", FLAT])
        assert refused.exit_code != 0 and FULL in refused.output
        picked = CliRunner().invoke(cli, ["dock", "pick", "C1", "--db", str(db_path)])
        assert picked.exit_code == 0, picked.output
        assert picked.output.startswith(f"take {FULL} from slot S2")
        assert wait_for(lambda: docked(db_path)["S2"]["officer"] == "C1", 30), \
            status(db_path)
        assert docked(db_path)["S1"]["officer"] is None
    finally:
        if run is not None:
            assert stop(run) == 0
        assert stop(sim) == 0
    # The simulator's trackers (firmware processes) went with it.
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "dock")], capture_output=True)
    assert leftovers.stdout == b""


def test_dock_sim_refuses_a_tracker_the_broker_has_no_account_for(tmp_path, mosquitto):
    result = CliRunner().invoke(cli, [
        "dock", "sim", "--broker", mosquitto.address, "--dir", str(tmp_path / "dock"),
        "--tracker", "T-9999=80", "--accounts", str(mosquitto.accounts_path)])
    assert result.exit_code != 0 and "no account 'T-9999'" in result.output


def test_dock_sim_refuses_more_trackers_than_slots(tmp_path, mosquitto):
    result = CliRunner().invoke(cli, [
        "dock", "sim", "--broker", mosquitto.address, "--dir", str(tmp_path / "dock"),
        "--slots", "1", "--tracker", "A=80", "--tracker", "B=80"])
    assert result.exit_code != 0 and "2 trackers for 1 slots" in result.output


@pytest.mark.parametrize("args, message", [
    (["dock", "run", "--db", "no.db", "--slot", "S1"], "--slot: 'S1': use NAME=PORT"),
    (["dock", "run", "--db", "no.db", "--slot", "=/dev/pts/9"],
     "--slot: '=/dev/pts/9': use NAME=PORT"),
    (["sim", "modem", "--dns", "broker="], "--dns: 'broker=': use NAME=ADDRESS"),
])
def test_a_name_value_option_without_its_name_or_value_is_a_usage_error(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert f"Invalid value for {message}" in result.output
