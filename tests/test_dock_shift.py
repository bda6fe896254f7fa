"""A pooled tracker's whole shift, end to end on real parts.

Two trackers (the firmware on the MicroPython unix port) sit in a simulated dock; the gateway
runs both its MQTT side (Mosquitto) and its dock side (pyserial on the slots' pseudo-terminals).
The station pushes the hot spots, refuses the flat tracker and hands out the full one, the officer
walks the sample route through both hot spots, puts the tracker back, and the dock pulls what is
left and ends the assignment. Nothing is recorded in the dock or while not signed out.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fences.compile import compile_geojson
from gateway.fleet.attribution import history
from gateway.fleet.dock import DockStation, PickError, dock_status, pick
from gateway.fleet.identity import register_device
from gateway.intake.service import Gateway
from gateway.schema import open_db
from hotspots.cli import cli
from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
from simulators.dock import DockSimulator
from simulators.link import wait_for
from simulators.walk import make_walk

pytestmark = pytest.mark.micropython

FLAT, FULL = "T-0301", "T-0302"
COLLAR = "C4567"


class SimClock:
    """Station time for the lifecycle, set by the test to match the simulated walk."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(db_path: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, args).fetchall()


def test_a_full_shift_from_dock_to_dock(tmp_path, mosquitto, micropython):
    db_path = tmp_path / "station.db"
    db = open_db(str(db_path))
    for device in (FLAT, FULL):
        register_device(db, device)
    db.close()
    # The walk happened in the last half hour, so no position is "from the future".
    start = float(int(time.time()) - 1800)
    walk = make_walk(SAMPLE_ROUTE, SAMPLE_FENCES, start)
    before = make_walk(SAMPLE_ROUTE, SAMPLE_FENCES, start - 600)  # GNSS running in the dock
    clock = SimClock(start - 300)
    stop = threading.Event()
    gateway = Gateway(mosquitto.address, str(db_path), **mosquitto.gateway.auth())
    threading.Thread(target=gateway.run, args=(stop,), daemon=True).start()
    assert gateway.connected.wait(10)
    accounts = {d: mosquitto.device(d) for d in (FLAT, FULL)}
    sim = DockSimulator(tmp_path / "dock", mosquitto.address, slots=2, time_scale=1,
                        auth=lambda d: (accounts[d].username, accounts[d].password))
    fences = compile_geojson(Path(SAMPLE_FENCES))
    try:
        sim.add_tracker(FLAT, batt=30, slot="S1")
        sim.add_tracker(FULL, batt=97, slot="S2")
        station = DockStation(str(db_path), sim.ports(), fences_text=fences.text,
                              config={"report_s": 10}, clock=clock, poll_s=0.3).start(stop)
        # Docking: identified, hot spots pushed.
        assert wait_for(lambda: all(c.fences_pushed == 1 for c in station.counts.values()), 30)
        # GNSS fixes while docked and not signed out: nothing is recorded.
        sim.play(FULL, before, speedup=0)
        assert wait_for(lambda: sim.trackers[FULL].gnss.unread() == 0, 30)

        # Sign-out: the flat tracker is refused, the fullest suggested and handed out.
        db = open_db(str(db_path))
        with pytest.raises(PickError, match=f"take {FULL}"):
            pick(db, COLLAR, device=FLAT, now=clock())
        assignment, slot, batt = pick(db, COLLAR, now=clock(), due=start + 3 * 3600)
        assert (assignment.device_id, slot) == (FULL, "S2") and batt >= 90
        assert wait_for(lambda: (station.info["S2"] and station.info["S2"].signed_out_to)
                        == COLLAR, 10)
        assert not station.info["S2"].tracking  # armed, but still in the dock

        # Out on patrol.
        sim.unplug(FULL)
        assert wait_for(lambda: "left the dock, tracking" in sim.trackers[FULL].log(), 15)
        sim.play(FULL, walk, speedup=120)
        assert wait_for(lambda: sim.trackers[FULL].gnss.unread() == 0, 60)
        time.sleep(1)

        # Back in the dock: the rest is pulled, the assignment ends, tracking stops.
        clock.now = start + walk.duration_s + 120
        sim.plug(FULL, "S2")
        assert wait_for(lambda: any(e == "returned" for (e,) in rows(
            db_path, "SELECT event FROM dock_events WHERE device_id = ?", FULL)), 30)
        assert wait_for(lambda: station.info["S2"] is not None
                        and station.info["S2"].outbox == 0
                        and not station.info["S2"].signed_out_to, 30)
        last_seq = station.info["S2"].last_seq
        after = make_walk(SAMPLE_ROUTE, SAMPLE_FENCES, start + walk.duration_s + 300)
        sim.play(FULL, after, speedup=0)  # GNSS in the dock again
        assert wait_for(lambda: sim.trackers[FULL].gnss.unread() == 0, 30)
        time.sleep(1.5)
        assert station.info["S2"].last_seq == last_seq  # nothing new off patrol

        # Every fix of the patrol stored once, all within the assignment, all the officer's.
        seqs = sorted(s for (s,) in rows(
            db_path, "SELECT seq FROM positions WHERE device_id = ? UNION ALL"
            " SELECT seq FROM transitions WHERE device_id = ?", FULL, FULL))
        assert seqs == list(range(1, last_seq + 1)) and last_seq > 100
        (span,) = history(db, FULL)
        assert (span.collar, span.start_ts, span.end_ts) == (COLLAR, int(start - 300),
                                                            int(clock.now))
        tst = [t for (t,) in rows(db_path, "SELECT tst FROM positions WHERE device_id = ?",
                                  FULL)]
        assert start <= min(tst) and max(tst) <= start + walk.duration_s
        officers = rows(db_path, "SELECT DISTINCT officer FROM positions_attributed"
                                 " WHERE device_id = ?", FULL)
        assert officers == [(COLLAR,)]
        assert rows(db_path, "SELECT count(*) FROM positions WHERE device_id = ?", FLAT) == [
            (0,)]
        visits = rows(db_path, "SELECT DISTINCT rid FROM transitions WHERE device_id = ?", FULL)
        assert sorted(visits) == [("HS-GRN-01",), ("HS-GRN-02",)]

        # The station's record of it, and what the staff see.
        events = [e for (e,) in rows(db_path, "SELECT event FROM dock_events WHERE device_id = ?"
                                              " ORDER BY id", FULL)]
        assert events[:2] == ["docked", "fences"]
        assert "signed_out" in events and "undocked" in events
        assert events.index("returned") > events.index("docked", events.index("undocked"))
        status = dock_status(db, now=clock())
        by_slot = {s.slot: s for s in status.slots}
        assert by_slot["S2"].device_id == FULL and by_slot["S2"].officer is None
        assert by_slot["S1"].device_id == FLAT and by_slot["S1"].time_to_full_s > 0
        result = CliRunner().invoke(cli, ["dock", "status", "--db", str(db_path)])
        assert result.exit_code == 0 and FLAT in result.output and "full in" in result.output
        db.close()
    finally:
        stop.set()
        sim.close()
