"""At-least-once from the device, exactly once in SQLite, through every fault we can cause.

Each test walks the sample route with the firmware on the MicroPython unix port, a real
Mosquitto and the gateway as its own process, breaks one thing mid-patrol, and then checks the
database against the firmware's own account: every sequence number it ever took, 1..N, is stored
exactly once, and fix times increase with sequence numbers (in order per device).
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.broker import Mosquitto, make_test_ca
from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
from simulators import gps, tracker_process
from simulators.link import FlakyLink, wait_for
from simulators.patrol import enrol
from simulators.walk import make_walk

pytestmark = pytest.mark.micropython

SPEEDUP = 120  # 20 simulated minutes in 10 s
# Fixed sampling publishes every 10 s of the walk: the most traffic for the faults to hit.
# (Adaptive sampling goes through the same outbox and client; test_e2e_patrol runs it.)
SAMPLING = "fixed"
DEVICE = "T-0042"
ROOT = Path(__file__).resolve().parent.parent


class Patrol:
    """One tracker on one walk, with every process under the test's control."""

    def __init__(self, workdir: Path, mosquitto: Mosquitto) -> None:
        self.workdir = workdir
        self.broker = mosquitto.address
        self.accounts = mosquitto.accounts_path
        self.device = mosquitto.device(DEVICE)
        self.db_path = workdir / "hotspots.db"
        self.state = workdir / "state"
        enrol(self.db_path, DEVICE, self.state, SAMPLE_FENCES)
        self.walk = make_walk(SAMPLE_ROUTE, SAMPLE_FENCES, 1795000000.0)
        self.terminal = gps.PseudoTerminal()
        self.firmware: subprocess.Popen | None = None
        self.gateway: subprocess.Popen | None = None
        self.runs = 0
        self.played = threading.Event()

    # -- processes --------------------------------------------------------------------------
    def start_gateway(self) -> None:
        """Start the gateway and wait until it is subscribed (its session exists from then on)."""
        log = self.workdir / "gateway.log"
        before = log.read_text().count("subscribed") if log.exists() else 0
        with open(log, "a") as err:
            self.gateway = subprocess.Popen(
                [sys.executable, "-m", "hotspots", "gateway", "run", "--broker", self.broker,
                 "--db", str(self.db_path), "--accounts", str(self.accounts)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        assert wait_for(lambda: log.read_text().count("subscribed") > before, 30), \
            log.read_text()

    def kill_gateway(self) -> None:
        self.gateway.send_signal(signal.SIGKILL)
        self.gateway.wait()

    def stop_gateway(self) -> None:
        self.gateway.send_signal(signal.SIGINT)
        self.gateway.wait(timeout=30)

    def start_firmware(self, broker: str | None = None, **options) -> None:
        """Start the firmware with the device's account (``options`` for
        :func:`simulators.tracker_process.command` override the defaults)."""
        self.runs += 1
        options = {"exit_on_eof": True, "user": self.device.username,
                   "password": self.device.password, "sampling": SAMPLING, **options}
        self.firmware = tracker_process.start(
            self.terminal.path, broker or self.broker, DEVICE, self.state,
            log_path=self.workdir / f"firmware-{self.runs}.log", **options)

    def kill_firmware(self) -> None:
        self.firmware.send_signal(signal.SIGKILL)
        self.firmware.wait()

    def play_in_background(self) -> threading.Thread:
        def play() -> None:
            gps.play(self.walk, self.terminal, speedup=SPEEDUP, seed=3)
            self.played.set()

        thread = threading.Thread(target=play, daemon=True)
        thread.start()
        return thread

    def finish(self, player: threading.Thread) -> str:
        """Let the walk end, the firmware drain its outbox and exit; returns its last log."""
        player.join(timeout=120)
        self.terminal.close()
        assert self.firmware.wait(timeout=120) == 0, self.log()
        return self.log()

    def log(self) -> str:
        return (self.workdir / f"firmware-{self.runs}.log").read_text()

    # -- the database -------------------------------------------------------------------------
    def stored(self) -> list[tuple[int, int]]:
        if not self.db_path.exists():
            return []
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(
                "SELECT seq, tst FROM positions WHERE device_id = ? UNION ALL "
                "SELECT seq, tst FROM transitions WHERE device_id = ? ORDER BY 1",
                (DEVICE, DEVICE)).fetchall()

    def wait_stored(self, last_seq: int, timeout_s: float = 60) -> None:
        wait_for(lambda: len(self.stored()) >= last_seq, timeout_s, 0.2)

    def cleanup(self) -> None:
        for proc in (self.firmware, self.gateway):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def last_seq(log: str) -> int:
    match = re.search(r"outbox: last seq (\d+), pending 0", log)
    assert match, log
    return int(match.group(1))


def assert_exactly_once_in_order(patrol: Patrol, last: int) -> None:
    patrol.wait_stored(last)
    patrol.stop_gateway()
    rows = patrol.stored()
    seqs = [seq for seq, _t in rows]
    assert seqs == list(range(1, last + 1))
    # Locations and transitions interleave, and a transition carries the (earlier) crossing
    # time, so "in order" is checked on the locations: fix times increase with seq.
    with sqlite3.connect(patrol.db_path) as conn:
        times = [t for (t,) in conn.execute(
            "SELECT tst FROM positions WHERE device_id = ? ORDER BY seq", (DEVICE,))]
    assert times == sorted(times) and len(set(times)) == len(times)


@pytest.fixture
def patrol(tmp_path, mosquitto, micropython):
    p = Patrol(tmp_path, mosquitto)
    yield p
    p.cleanup()


def test_broker_down_for_ten_simulated_minutes(tmp_path, micropython):
    broker = Mosquitto(workdir=tmp_path / "broker").start()
    patrol = Patrol(tmp_path, broker)
    try:
        patrol.start_gateway()
        patrol.start_firmware()
        player = patrol.play_in_background()
        time.sleep(3 * 60 / SPEEDUP)
        broker.stop()
        time.sleep(10 * 60 / SPEEDUP)
        broker.start()
        log = patrol.finish(player)
        assert "retry" in log  # it did notice the broker was gone
        assert_exactly_once_in_order(patrol, last_seq(log))
    finally:
        patrol.cleanup()
        broker.cleanup()


def test_gateway_killed_mid_stream_and_restarted(patrol):
    patrol.start_gateway()
    patrol.start_firmware()
    player = patrol.play_in_background()
    time.sleep(4 * 60 / SPEEDUP)
    patrol.kill_gateway()
    time.sleep(3 * 60 / SPEEDUP)
    patrol.start_gateway()
    log = patrol.finish(player)
    assert_exactly_once_in_order(patrol, last_seq(log))


def test_device_killed_mid_write_and_restarted(patrol):
    patrol.start_gateway()
    patrol.start_firmware()
    player = patrol.play_in_background()
    for _ in range(3):
        time.sleep(3 * 60 / SPEEDUP)
        patrol.kill_firmware()
        time.sleep(0.5)
        patrol.start_firmware()
    log = patrol.finish(player)
    assert patrol.runs == 4
    assert_exactly_once_in_order(patrol, last_seq(log))


def test_network_flapping_every_few_seconds(patrol):
    link = FlakyLink(patrol.broker)
    try:
        patrol.start_gateway()
        patrol.start_firmware(broker=link.address)
        player = patrol.play_in_background()
        link.flap_every(2.0)
        log = patrol.finish(player)
    finally:
        link.close()
    assert link.cuts >= 3
    assert "retry" in log
    assert_exactly_once_in_order(patrol, last_seq(log))


@pytest.mark.parametrize("cpython", [False, True], ids=["micropython", "cpython"])
def test_device_delivers_over_tls_checking_the_broker_certificate(tmp_path, tls_mosquitto,
                                                                  cpython):
    patrol = Patrol(tmp_path, tls_mosquitto)
    try:
        patrol.start_gateway()
        patrol.start_firmware(tls_mosquitto.tls_address, tls_ca=tls_mosquitto.ca_path,
                              cpython=cpython)
        log = patrol.finish(patrol.play_in_background())
        assert "retry" not in log
        assert_exactly_once_in_order(patrol, last_seq(log))
    finally:
        patrol.cleanup()


def test_device_refuses_a_broker_it_cannot_verify(tmp_path, tls_mosquitto, micropython):
    other_ca = make_test_ca(tmp_path / "other")["ca"]
    patrol = Patrol(tmp_path, tls_mosquitto)
    try:
        patrol.start_firmware(tls_mosquitto.tls_address, tls_ca=other_ca, exit_on_eof=False,
                              sampling="adaptive")
        assert wait_for(lambda: "retry" in patrol.log(), 30), patrol.log()
        assert patrol.firmware.poll() is None  # still running, still trying: not crashed
    finally:
        patrol.cleanup()
