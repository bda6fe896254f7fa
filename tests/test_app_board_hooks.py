"""What a board hands the tracker besides the GNSS and the link: RTC, watchdog, board tasks
(``tracker.app.Ports``), run through the real main loop against Mosquitto."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "firmware"))

from test_board_drivers import Rtc, Wdt  # noqa: E402

from boards.storage import DirStorage  # noqa: E402
from drivers.clock import GnssClock  # noqa: E402
from drivers.watchdog import Watchdog  # noqa: E402
from simulators import nmea_out  # noqa: E402
from simulators.board import ThreadedLines  # noqa: E402
from tracker import app, config  # noqa: E402
from tracker.outbox import Outbox  # noqa: E402

START_T = 1_796_379_330  # 2026-12-04 10:15:30 UTC


def test_before_a_fix_the_tracker_reads_the_rtc(tmp_path):
    tracker = app.Tracker("T-1", Outbox(DirStorage(str(tmp_path))))
    assert tracker.now_s() == 0
    rtc = Rtc((2026, 12, 4, 4, 10, 0, 0, 0))
    tracker.wall_clock = GnssClock(rtc).now_s
    assert tracker.now_s() == START_T - 15 * 60 - 30


def test_main_loop_sets_the_rtc_kicks_the_watchdog_and_runs_board_tasks(mosquitto, tmp_path):
    nmea = tmp_path / "walk.nmea"
    with open(nmea, "wb") as f:
        for i in range(30):
            lat = 51.5007 + i * 1e-5
            f.write(nmea_out.rmc(START_T + i, lat, -0.1246, 1.4, 0.0)
                    + nmea_out.gga(START_T + i, lat, -0.1246))
    account = mosquitto.device("T-HOOKS")
    host, port = mosquitto.address.rsplit(":", 1)
    cfg = config.build({"device_id": "T-HOOKS", "broker_host": host, "broker_port": int(port),
                        "user": account.username, "password": account.password,
                        "sampling": "fixed", "exit_on_eof": True})
    rtc = Rtc()
    wdt = Wdt()
    ports = app.Ports(ThreadedLines(str(nmea)), asyncio.open_connection,
                      DirStorage(str(tmp_path / "state")), log=lambda line: None)
    ports.clock = GnssClock(rtc)
    watchdog = Watchdog(wdt, stale_ms=60000)
    ports.watchdog = watchdog
    seen = []

    async def board_task(tracker):
        seen.append(tracker.device_id)
        await watchdog.run(period_ms=50)

    ports.tasks = [board_task]
    tracker = asyncio.run(app.run(ports, cfg))
    assert tracker.fixes == 30
    assert seen == ["T-HOOKS"]
    assert rtc.now[:3] == (2026, 12, 4) and rtc.now[4:6] == (10, 15)  # set from the first fix
    assert ports.clock.sets == 1  # and left alone while it agrees
    assert wdt.feeds >= 1 and watchdog.withheld == 0


class _PausedModule:
    """A GNSS module for the main loop: an epoch per second of its own time, nothing while
    off, and one epoch still in the UART buffer from before each power-off (as a board's
    UART driver keeps what arrived before the MCU slept). Time jumps over a pause."""

    def __init__(self, seconds: int) -> None:
        self.t = START_T
        self.end = START_T + seconds
        self.powered = True
        self.lines: list[bytes] = []
        self.offs = 0
        self.fresh_since_on = True
        self.repaused = 0  # switched off again with no fresh epoch read since the wake

    def _epoch(self, t: int) -> list[bytes]:
        text = nmea_out.rmc(t, 51.5007, -0.1246, 1.4, 0.0) + nmea_out.gga(t, 51.5007, -0.1246)
        return [line + b"\n" for line in text.split(b"\n") if line.strip()]

    def off(self) -> None:
        if not self.fresh_since_on:
            self.repaused += 1
        self.powered = False
        self.offs += 1
        self.lines = self._epoch(self.t)  # buffered before the sleep: stale after it
        self.t += 1

    def on(self) -> None:
        self.powered = True
        self.fresh_since_on = False

    async def pause(self, seconds: float, busy) -> int:
        self.t += int(seconds)  # the module's time passes while the MCU sleeps
        await asyncio.sleep(0)
        return int(seconds * 1000)

    async def readline(self) -> bytes:
        await asyncio.sleep(0)
        if self.lines:
            return self.lines.pop(0)
        if self.t >= self.end:
            return b""
        if self.powered:
            self.lines = self._epoch(self.t)
            self.fresh_since_on = True
        self.t += 1
        return self.lines.pop(0) if self.lines else b"\n"


def test_a_stale_epoch_after_a_pause_does_not_start_another_pause(mosquitto, tmp_path):
    # Regression (the energy bench): an epoch buffered before the receiver went off was read
    # after the pause, dropped as "receiver off" (it predates the wake time), and the loop
    # took that as a reason to switch off for another whole pause: the receiver then woke for
    # nothing, again and again, and the tracker saw almost no fixes for the rest of the walk.
    account = mosquitto.device("T-PAUSE")
    host, port = mosquitto.address.rsplit(":", 1)
    cfg = config.build({"device_id": "T-PAUSE", "broker_host": host, "broker_port": int(port),
                        "user": account.username, "password": account.password,
                        "sampling": "adaptive", "exit_on_eof": True})
    module = _PausedModule(600)
    ports = app.Ports(module, asyncio.open_connection, DirStorage(str(tmp_path / "state")),
                      log=lambda line: None, gnss_power=module)
    ports.idle = module
    tracker = asyncio.run(asyncio.wait_for(app.run(ports, cfg), 60))
    assert module.offs >= 3  # the policy switched the receiver off between fixes
    assert module.repaused == 0
    assert tracker.gnss_off_epochs >= module.offs - 1  # the stale epochs, dropped unseen
