"""A whole patrol through the simulated cellular modem: the firmware on the MicroPython unix
port (and the core on CPython, through ``hotspots firmware run --cpython --modem``), its MQTT
over the SIM7080G driver, AT commands over a real pseudo-terminal to ``simulators/modem.py``,
real TCP from there to Mosquitto, the gateway storing into SQLite."""

from __future__ import annotations

import json
import sqlite3

import pytest

from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
from simulators.modem import SimulatedModem
from simulators.patrol import run_patrol


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_patrol_through_the_simulated_modem_is_stored_exactly_once(mosquitto, tmp_path,
                                                                    micropython, runtime):
    stats = tmp_path / "modem.json"
    with SimulatedModem(register_delay_s=1.0, stats_path=stats) as sim:
        result = run_patrol(mosquitto.address, tmp_path, SAMPLE_ROUTE, SAMPLE_FENCES,
                            speedup=120, modem=sim.path, timeout_s=60,
                            cpython=runtime == "cpython")
        counters = sim.counters
    assert f" on {runtime} " in result.firmware_log.splitlines()[0]
    assert "modem: up" in result.firmware_log
    with sqlite3.connect(result.db_path) as conn:
        keys = conn.execute("SELECT device_id, seq FROM positions UNION ALL"
                            " SELECT device_id, seq FROM transitions").fetchall()
    assert len(keys) == len(set(keys)) == result.published > 0
    assert result.counts.duplicates == 0
    # Both hot spot visits made it, through the modem.
    with sqlite3.connect(result.db_path) as conn:
        entered = {r[0] for r in conn.execute(
            "SELECT rid FROM transitions WHERE event = 'enter'")}
    assert entered == {v.hotspot for v in result.truth}
    # The bytes really went through the simulated modem's sockets, and it counted them.
    assert counters.registrations >= 1 and counters.sockets_opened >= 1
    assert counters.bytes_up > 100 * result.published
    assert counters.bytes_down > 0
    assert counters.unknown_commands == 0
    # Adaptive sampling batches uploads; between them the radio was off (AT+CFUN=0) and woke
    # (AT+CFUN=1, re-registration) for the next one.
    assert counters.sleeps >= 1 and counters.wake_ups == counters.sleeps
    assert counters.sockets_opened == counters.sleeps + 1
    assert json.loads(stats.read_text())["bytes_up"] == counters.bytes_up
