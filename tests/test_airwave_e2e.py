"""End to end: the radio simulator on a real pseudo-terminal, the serial reader, a real SQLite
file — positions match the simulator's truth within the reported error, lost and no-fix
reports never become positions, snapped ones are flagged; the reader reconnects and redoes the
PEI set-up; ``gateway run --airwave`` stores radio positions beside MQTT."""

from __future__ import annotations

import calendar
import threading
import time
from pathlib import Path

import pytest

from gateway.fleet.identity import register_device
from gateway.intake.airwave.filters import RadioFilters, distance_m
from gateway.intake.airwave.reader import AirwaveReader
from gateway.intake.airwave.store import AirwaveStore, radio_device_id
from gateway.schema import open_db
from simulators import radio
from simulators.link import wait_for

ROUTE = Path(__file__).resolve().parent.parent / "fences" / "sample_route.geojson"
# Ten minutes before midnight on the leap day: the walk crosses a day and a month end.
START = calendar.timegm((2024, 2, 29, 23, 50, 0))


def lip_rows(db_path: Path) -> list[dict]:
    db = open_db(str(db_path))
    try:
        cursor = db.execute(
            "SELECT r.issi, r.kind, r.outcome, r.tst, r.received_at, r.time_basis, r.lat, r.lon,"
            " r.pos_err_m,"
            " p.filtered, p.id AS position_id FROM radio_reports r LEFT JOIN positions p ON"
            " p.id = r.position_id WHERE r.hex LIKE '0A%' ORDER BY r.id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]
    finally:
        db.close()


def register_radios(db_path: Path, issis) -> None:
    """The station registers its radios; one it never registered is quarantined."""
    db = open_db(str(db_path))
    for issi in sorted(set(issis)):
        register_device(db, radio_device_id(issi))
    db.close()


def start_reader(port: str, db_path: Path, clock, masts=(), issis=()) -> tuple:
    register_radios(db_path, issis)

    def factory() -> AirwaveStore:
        db = open_db(str(db_path))
        filters = RadioFilters(db)
        for lat, lon in masts:
            filters.add_mast(lat, lon, "station mast list")
        db.conn.commit()
        return AirwaveStore(db, filters)

    reader = AirwaveReader(port, factory, clock=clock, reconnect_min_s=0.1,
                           reconnect_max_s=0.2, reply_timeout_s=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    thread.start()
    return reader, stop, thread


@pytest.mark.slow
def test_simulated_radio_through_pty_into_sqlite_matches_truth(tmp_path):
    scenario = radio.default_scenario(ROUTE, START, officers=3, seed=1)
    plan = radio.plan_reports(scenario)
    fates = {(r.fate, r.snapped, r.nofix) for r in plan}
    # The scenario exercises every failure it is meant to (else this test proves little).
    assert {("lost_dead_spot", False, False), ("dropout", False, True)} <= fates
    assert any(r.snapped and r.fate == "sent" for r in plan)
    assert any(r.nofix and r.fate == "sent" for r in plan)
    assert {r.kind for r in plan} == {"short", "long"}

    terminal = radio.RadioTerminal(plan, speedup=400, start=START - 5)
    db_path = tmp_path / "gateway.db"
    masts = [zone.mast for zone in scenario.snap_zones]
    reader, stop, thread = start_reader(terminal.path, db_path, terminal.now, masts,
                                        [r.issi for r in plan])
    try:
        reports = terminal.run(wait_for_setup_s=10)
        sent = [r for r in reports if r.fate == "sent"]
        assert wait_for(lambda: len(lip_rows(db_path)) >= len(sent), 20)
    finally:
        stop.set()
        thread.join(5)
        terminal.close()
    assert "AT+CTSP=1,3,10" in terminal.commands and "ATE0" in terminal.commands
    stats = reader.stats()
    assert stats["store_logged"] == 2  # the status and the text SDS
    assert not [k for k in stats if "rejected" in k], stats

    rows = lip_rows(db_path)
    assert len(rows) == len(sent)
    by_issi: dict[int, list[dict]] = {}
    for row in rows:
        by_issi.setdefault(row["issi"], []).append(row)
    checked = {"position": 0, "snapped": 0, "nofix": 0}
    for issi in {r.issi for r in sent}:
        truth = [r for r in sent if r.issi == issi]
        stored = by_issi.get(issi, [])
        assert len(stored) == len(truth)
        for want, got in zip(truth, stored, strict=True):
            if want.nofix:
                assert got["outcome"] == "nofix" and got["position_id"] is None
                checked["nofix"] += 1
                continue
            assert got["outcome"] == "stored"
            if want.kind == "long":
                assert (got["time_basis"], got["tst"]) == ("time_of_position", want.t_fix)
            else:
                assert got["time_basis"] == "time_elapsed"
                # A short report's time is its arrival less its age class (5 s steps), so it is
                # late by however long the reader took (on the radio's clock, 400 times real
                # time): the bound is that measured latency, not a guess at machine load.
                latency = max(0.0, got["received_at"] - want.t_send)
                assert abs(got["tst"] - want.t_fix) <= 5 + latency + 1
            off = distance_m(got["lat"], got["lon"], want.true_lat, want.true_lon)
            if want.snapped:
                assert "mast" in (got["filtered"] or "")
                assert off > got["pos_err_m"]  # which is exactly why it must be flagged
                checked["snapped"] += 1
            else:
                assert off <= got["pos_err_m"] + 1.5, (want, got)
                assert "mast" not in (got["filtered"] or "")
                checked["position"] += 1
    assert checked["position"] >= 10 and checked["snapped"] >= 1 and checked["nofix"] >= 1
    lost = [r for r in reports if r.fate != "sent"]
    assert lost and len(rows) == len(reports) - len(lost)


@pytest.mark.slow
def test_reader_reconnects_and_sets_the_radio_up_again(tmp_path):
    scenario = radio.default_scenario(ROUTE, START, officers=1, seed=3)
    scenario.dead_spots = []
    plan = [r for r in radio.plan_reports(scenario) if r.fate == "sent"]
    half = len(plan) // 2
    link = tmp_path / "radio"  # what the gateway is configured with; the pty behind it changes
    first = radio.RadioTerminal(plan[:half], speedup=2000, start=START - 5, chatter=False)
    link.symlink_to(first.path)
    db_path = tmp_path / "gateway.db"
    clock = {"terminal": first}
    reader, stop, thread = start_reader(str(link), db_path, lambda: clock["terminal"].now())
    try:
        first.run(wait_for_setup_s=10)
        assert wait_for(lambda: len(lip_rows(db_path)) >= half, 20)
        first.close()  # the radio goes away: cable pulled
        assert wait_for(lambda: reader.counts["disconnects"] >= 1, 20)
        second = radio.RadioTerminal(plan[half:], speedup=2000, start=plan[half].t_send - 5,
                                     chatter=False)
        clock["terminal"] = second
        link.unlink()
        link.symlink_to(second.path)
        second.run(wait_for_setup_s=10)
        assert wait_for(lambda: len(lip_rows(db_path)) >= len(plan), 20)
        second.close()
    finally:
        stop.set()
        thread.join(5)
    assert reader.counts["connects"] == 2
    assert "AT+CTSP=1,3,10" in second.commands  # set up again after the reconnect
    assert len(lip_rows(db_path)) == len(plan)


@pytest.mark.slow
def test_gateway_run_with_airwave_stores_radio_positions(tmp_path, mosquitto):
    from gateway.intake.service import Gateway

    now = float(int(time.time()))
    scenario = radio.default_scenario(ROUTE, now, officers=1, seed=2,
                                      kinds=("short",))
    scenario.dead_spots, scenario.snap_zones, scenario.nofix_rate = [], [], 0.0
    plan = radio.plan_reports(scenario)[:4]
    terminal = radio.RadioTerminal(plan, speedup=1000, start=now - 5, chatter=False)
    db_path = tmp_path / "gateway.db"
    register_radios(db_path, [r.issi for r in plan])
    service = Gateway(mosquitto.address, str(db_path), client_id="gw-airwave-test",
                      airwave=terminal.path)
    stop = threading.Event()
    runner = threading.Thread(target=service.run, args=(stop,), daemon=True)
    runner.start()
    try:
        terminal.run(wait_for_setup_s=10)
        assert wait_for(lambda: len(lip_rows(db_path)) >= len(plan), 20)
    finally:
        stop.set()
        runner.join(10)
        terminal.close()
    rows = lip_rows(db_path)
    assert [r["outcome"] for r in rows] == ["stored"] * len(plan)
    for want, got in zip(plan, rows, strict=True):
        assert distance_m(got["lat"], got["lon"], want.true_lat, want.true_lon) <= \
            got["pos_err_m"] + 1.5
