"""Radio reports into SQLite: fix times across day and month ends, ISSI to collar number,
no-fix never a position, every SDS logged, filters for jumps and masts; radio assignments follow
the same identity rules as trackers."""

from __future__ import annotations

import calendar
import sqlite3

import pytest
from click.testing import CliRunner

from gateway.fleet.attribution import history
from gateway.fleet.dock import dock_status
from gateway.fleet.identity import IdentityError, register_device
from gateway.fleet.status import fleet_status
from gateway.intake.airwave import lip
from gateway.intake.airwave.filters import FilterSettings, RadioFilters
from gateway.intake.airwave.sds import PeiParser, ctsdsr
from gateway.intake.airwave.store import AirwaveStore, assign_radio, radio_device_id, radio_rows
from gateway.intake.airwave.timing import fix_time, resolve_time_of_position
from gateway.reports.exports import positions
from gateway.schema import open_db
from hotspots.cli import cli


def utc(*fields: int) -> int:
    return calendar.timegm(fields)


# -- fix times ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tod", "received", "expected"), [
    ((15, 10, 0, 0), utc(2024, 5, 15, 10, 0, 3), utc(2024, 5, 15, 10, 0, 0)),
    # across midnight
    ((31, 23, 59, 58), utc(2024, 6, 1, 0, 0, 2), utc(2024, 5, 31, 23, 59, 58)),
    # across a month end into a leap day
    ((29, 23, 59, 50), utc(2024, 3, 1, 0, 0, 5), utc(2024, 2, 29, 23, 59, 50)),
    # across a year end
    ((31, 23, 58, 0), utc(2025, 1, 1, 0, 1, 0), utc(2024, 12, 31, 23, 58, 0)),
    # day 31 received on 1 March of a common year: February had no 31st, January did
    ((31, 23, 0, 0), utc(2023, 3, 1, 0, 0, 5), utc(2023, 1, 31, 23, 0, 0)),
    # radio clock a few seconds ahead, across a month end
    ((1, 0, 0, 3), utc(2024, 4, 30, 23, 59, 59), utc(2024, 5, 1, 0, 0, 3)),
    # too far ahead to be this month: last month's
    ((15, 12, 0, 0), utc(2024, 5, 15, 11, 0, 0), utc(2024, 4, 15, 12, 0, 0)),
])
def test_time_of_position_resolves_against_receive_time(tod, received, expected):
    assert resolve_time_of_position(*tod, received) == expected


@pytest.mark.parametrize("tod", [(0, 1, 1, 1), (3, 24, 0, 0), (3, 1, 60, 0), (3, 1, 0, 61)])
def test_time_of_position_that_is_not_a_time(tod):
    assert resolve_time_of_position(*tod, utc(2024, 5, 15, 10, 0, 0)) is None


@pytest.mark.parametrize(("klass", "tst", "age_max"), [
    (0, 1000 - 2, 5), (1, 1000 - 150, 300), (2, 1000 - 900, 1800), (3, 1000, None)])
def test_short_report_time_is_the_middle_of_its_age_window(klass, tst, age_max):
    when = fix_time(lip.short_report(51.5, 0.0, time_elapsed=klass), 1000.7)
    assert (when.tst, when.basis, when.age_max_s) == (tst, "time_elapsed", age_max)


# -- storing --------------------------------------------------------------------------------------
def feed(store: AirwaveStore, frames: bytes, received_at: float) -> list[str]:
    parser = PeiParser()
    outcomes = []
    for event in parser.feed(frames) + parser.flush():
        if event.kind == "sds":
            outcomes.append(store.handle(event.sds, received_at))
        elif event.kind == "reject":
            store.reject(event.reason, event.text, received_at)
            outcomes.append("frame_rejected")
    return outcomes


def lip_frame(report: lip.LipReport, issi: int = 2340001) -> bytes:
    data, nbits = lip.encode(report)
    return ctsdsr(issi, 9999, bytes([lip.PROTOCOL_ID]) + data, 8 + nbits)


def long_report(lat: float, lon: float, tod: tuple[int, int, int, int], **extra):
    return lip.LipReport(lip.LONG, time_type=2, time_of_position=tod, shape=2,
                         lat_raw=lip.lat_to_raw(lat), lon_raw=lip.lon_to_raw(lon),
                         radius=lip.uncertainty_code(10), velocity_type=0, **extra)


@pytest.fixture
def store(db):
    for issi in (2340001, 2340002):
        register_device(db, radio_device_id(issi))
    return AirwaveStore(db)


@pytest.fixture
def unregistered_store(db):
    return AirwaveStore(db)


def test_positions_are_stored_under_the_radio_and_attributed_to_the_collar(store, db):
    t0 = utc(2024, 2, 29, 23, 59, 0)
    assign_radio(db, 2340001, "PC1234", t0 - 3600)
    assign_radio(db, 2340001, "PC5678", t0 + 30)  # hand-over: ends PC1234's assignment
    assert feed(store, lip_frame(lip.short_report(51.4807, -0.0073)), t0 + 1.0) == ["stored"]
    frame = lip_frame(long_report(51.4810, -0.0070, (1, 0, 0, 4)))
    assert feed(store, frame, t0 + 65.0) == ["stored"]
    rows = list(positions(db))
    assert [(r["device_id"], r["officer"], r["tst"], r["source"]) for r in rows] == [
        ("issi:2340001", "PC1234", t0 - 1, "airwave"),
        ("issi:2340001", "PC5678", utc(2024, 3, 1, 0, 0, 4), "airwave")]
    assert rows[0]["lon"] == pytest.approx(-0.0073, abs=1e-5) and rows[0]["acc_m"] == 20.0
    detail = list(radio_rows(db))
    assert [(d["time_basis"], d["age_max_s"], d["pos_err_class"]) for d in detail] == [
        ("time_elapsed", 5, 1), ("time_of_position", None, None)]
    assert detail[1]["pos_err_m"] == pytest.approx(lip.uncertainty_m(lip.uncertainty_code(10)))
    assert db["radios"].get(2340001)["device_id"] == "issi:2340001"


def test_nofix_reports_are_recorded_never_stored_as_positions(store, db):
    nofix_long = lip.LipReport(lip.LONG, time_type=1, time_elapsed=3, shape=0, velocity_type=0,
                               additional=21, type5=[(12, 8, 14)])
    frames = lip_frame(nofix_long) + lip_frame(lip.short_report(51.5, -0.1, pos_err_class=7,
                                                                  time_elapsed=3))
    assert feed(store, frames, 1.7e9) == ["nofix", "nofix"]
    assert db["positions"].count == 0
    rows = list(radio_rows(db, include_all=True))
    assert sorted((r["outcome"], r["kind"], r["result_code"] or 0) for r in rows) == [
        ("nofix", "long", 14), ("nofix", "short", 0)]


def test_other_sds_are_logged_and_counted_bad_ones_rejected_good_ones_kept(store, db):
    frames = (
        ctsdsr(2340001, 9999, bytes.fromhex("8002"), 16, ai_service=13)
        + ctsdsr(2340001, 9999, bytes.fromhex("820001014869"), 48)
        + ctsdsr(2340001, 9999, bytes.fromhex("0A0FFFEAC2"), 40)  # truncated LIP
        + b"\r\n+CTSDSR: 12,2340001,0,9999,0,84\r\nnot hex at all\r\n"
        + lip_frame(lip.short_report(51.4807, -0.0073))
        + lip_frame(lip.short_report(51.0, 0.0), 2340002)
        # ISSI 0 is no subscriber identity (identity.check_name): rejected, not stored
        + ctsdsr(0, 9999, bytes([10]) + lip.encode(lip.short_report(51, 0))[0], 84)
    )
    outcomes = feed(store, frames, 1.7e9)
    assert outcomes == ["logged", "logged", "rejected", "frame_rejected", "frame_rejected",
                        "stored", "stored", "rejected"]
    assert db["positions"].count == 2
    assert store.counts["sds_status"] == 1 and store.counts["sds_text"] == 1
    assert store.counts["rejected_truncated"] == 1
    kept = db.execute("SELECT outcome, reason, hex FROM radio_reports WHERE outcome ="
                      " 'rejected' ORDER BY id").fetchall()
    assert kept[0] == ("rejected", "truncated", "0A0FFFEAC2")
    assert {row[1] for row in kept} >= {"missing_payload", "garbage"}


def test_short_declared_length_falls_back_to_the_hex(store, db):
    data, _ = lip.encode(lip.short_report(51.4807, -0.0073))
    frame = ctsdsr(2340001, 9999, bytes([10]) + data, 64)  # declares less than the report
    assert feed(store, frame, 1.7e9) == ["stored"]
    assert "declared 64 bits" in db.execute("SELECT detail FROM radio_reports").fetchone()[0]


def test_a_repeated_long_report_is_a_duplicate(store, db):
    frame = lip_frame(long_report(51.48, -0.007, (15, 10, 0, 0)))
    received = utc(2024, 5, 15, 10, 0, 2)
    assert feed(store, frame + frame, received) == ["stored", "duplicate"]
    assert db["positions"].count == 1


def test_a_radio_nobody_registered_is_quarantined_like_an_unknown_tracker(unregistered_store,
                                                                          db):
    """Regression (issue 16): the radio store used to store every radio it heard."""
    store = unregistered_store
    frame = lip_frame(lip.short_report(51.4807, -0.0073), 2340005)
    assert feed(store, frame, 1.7e9) == ["quarantined"]
    assert db["positions"].count == 0
    assert db.execute("SELECT reason, device_id, raw FROM quarantine").fetchall() == [
        ("unknown_device", "issi:2340005", frame.split(b"\r\n")[2])]
    assert db.execute("SELECT outcome, reason FROM radio_reports").fetchall() == [
        ("quarantined", "unknown_device")]
    assert any(a.startswith("UNKNOWN DEVICE issi:2340005")
               for a in fleet_status(db, 1.7e9).alerts)
    register_device(db, "issi:2340005")
    assert feed(store, frame, 1.7e9 + 60) == ["stored"]


# -- filters --------------------------------------------------------------------------------------
def test_implausible_jump_is_flagged_not_dropped(store, db):
    t = utc(2024, 5, 15, 10, 0, 0)
    feed(store, lip_frame(long_report(51.4800, -0.0070, (15, 10, 0, 0))), t + 1)
    # 5.5 km north one minute later: 90 m/s even after the error circles
    feed(store, lip_frame(long_report(51.5300, -0.0070, (15, 10, 1, 0))), t + 61)
    # 100 m on a further minute later: plausible from the first
    feed(store, lip_frame(long_report(51.4809, -0.0070, (15, 10, 2, 0))), t + 121)
    flags = [r[0] for r in db.execute("SELECT filtered FROM positions ORDER BY tst")]
    assert flags == [None, "jump", None]
    assert [r["lat"] for r in positions(db)] == [pytest.approx(51.48, abs=1e-5),
                                                 pytest.approx(51.4809, abs=1e-5)]


def test_known_mast_and_learned_mast_are_flagged_retroactively(db):
    for issi in (2340001, 2340002):
        register_device(db, radio_device_id(issi))
    filters = RadioFilters(db, FilterSettings(mast_repeats=3, mast_radios=2))
    store = AirwaveStore(db, filters)
    filters.add_mast(51.4900, 0.0100, "configured mast")
    t = utc(2024, 5, 15, 10, 0, 0)
    feed(store, lip_frame(long_report(51.49001, 0.01001, (15, 10, 0, 0))), t + 1)
    mast = (51.4850, 0.0050)
    feed(store, lip_frame(long_report(*mast, (15, 10, 5, 0)), 2340001), t + 301)
    assert [r[0] for r in db.execute("SELECT filtered FROM positions ORDER BY id")] == \
        ["mast", None]
    feed(store, lip_frame(long_report(*mast, (15, 10, 6, 0)), 2340002), t + 361)
    assert [r[0] for r in db.execute("SELECT filtered FROM positions ORDER BY id")] == \
        ["mast", "mast", "mast"]
    assert db.execute("SELECT source FROM radio_masts WHERE lat = ?", (
        lip.lat_to_raw(mast[0]) * lip.LAT_UNIT_DEG,)).fetchone() == ("learned",)
    assert store.counts["flagged_mast"] == 2  # at insert; the first learned one retroactively
    assert list(positions(db)) == []


def test_coarse_fix_is_flagged(store, db):
    feed(store, lip_frame(lip.short_report(51.48, -0.007, pos_err_class=3)), 1.7e9)
    assert db.execute("SELECT filtered FROM positions").fetchone() == ("coarse",)


# -- assignments: the identity rules, as for trackers ---------------------------------------------
# Regression: assign_radio used to write `assignments` with its own SQL — no collar check, no
# registration, an overlapping open row for a late entry, a second row at the same start.
RADIO = "issi:2340001"
T0 = utc(2024, 5, 15, 8, 0, 0)


def spans(db) -> list[tuple[str, int, int | None]]:
    return [(a.collar, a.start_ts, a.end_ts) for a in history(db, RADIO)]


@pytest.mark.parametrize("collar", ["PC 1234", "", "-PC1", "PC1;DROP", "C" * 33])
def test_a_bad_collar_number_is_refused_and_nothing_is_written(db, collar):
    with pytest.raises(IdentityError, match="collar number"):
        assign_radio(db, 2340001, collar, T0)
    assert db["assignments"].count == 0
    assert db["devices"].count == 0  # not even registered


def test_a_hand_over_ends_the_previous_holders_assignment(db):
    first = assign_radio(db, 2340001, "PC1234", T0)
    assert (first.collar, first.start_ts, first.end_ts) == ("PC1234", T0, None)
    second = assign_radio(db, 2340001, "PC5678", T0 + 3600)
    assert (second.device_id, second.end_ts) == (RADIO, None)
    assert spans(db) == [("PC1234", T0, T0 + 3600), ("PC5678", T0 + 3600, None)]


def test_a_hand_over_inside_a_closed_stretch_keeps_its_end(db):
    assign_radio(db, 2340001, "PC1234", T0, T0 + 8 * 3600)
    assign_radio(db, 2340001, "PC5678", T0 + 4 * 3600)
    assert spans(db) == [("PC1234", T0, T0 + 4 * 3600),
                         ("PC5678", T0 + 4 * 3600, T0 + 8 * 3600)]


def test_an_end_time_inside_a_closed_stretch_is_kept_past_that_stretch(db):
    """``--to`` says when this holder gave it back; the split stretch's own end was the
    previous holder's, so it does not cut the new one short."""
    assign_radio(db, 2340001, "PC1234", T0, T0 + 8 * 3600)
    later = assign_radio(db, 2340001, "PC5678", T0 + 4 * 3600, T0 + 10 * 3600)
    assert later.end_ts == T0 + 10 * 3600
    assert spans(db) == [("PC1234", T0, T0 + 4 * 3600),
                         ("PC5678", T0 + 4 * 3600, T0 + 10 * 3600)]


def test_a_late_entry_ends_where_the_next_recorded_assignment_starts(db):
    assign_radio(db, 2340001, "PC5678", T0 + 3600)
    late = assign_radio(db, 2340001, "PC1234", T0)  # the paper log, typed in afterwards
    assert late.end_ts == T0 + 3600
    assert spans(db) == [("PC1234", T0, T0 + 3600), ("PC5678", T0 + 3600, None)]


def test_an_end_time_ends_it_earlier_but_never_past_a_later_record(db):
    assign_radio(db, 2340001, "PC5678", T0 + 3600)
    early = assign_radio(db, 2340001, "PC1234", T0, T0 + 1800)
    assert early.end_ts == T0 + 1800
    assert assign_radio(db, 2340001, "PC9999", T0 + 2000, T0 + 7200).end_ts == T0 + 3600
    assert spans(db) == [("PC1234", T0, T0 + 1800), ("PC9999", T0 + 2000, T0 + 3600),
                         ("PC5678", T0 + 3600, None)]


def test_a_second_assignment_at_the_same_start_and_an_end_before_the_start_are_refused(db):
    assign_radio(db, 2340001, "PC1234", T0)
    with pytest.raises(IdentityError, match="already has an assignment starting"):
        assign_radio(db, 2340001, "PC5678", T0)
    with pytest.raises(IdentityError, match="end must be after the start"):
        assign_radio(db, 2340001, "PC5678", T0 + 60, T0 + 60)
    assert spans(db) == [("PC1234", T0, None)]


def test_an_assigned_radio_is_registered_as_a_radio_not_as_a_pooled_tracker(unregistered_store,
                                                                            db):
    store = unregistered_store
    feed(store, lip_frame(lip.short_report(51.4807, -0.0073)), T0 + 1)  # heard: not registered
    assert any(a.startswith(f"UNKNOWN DEVICE {RADIO}") for a in fleet_status(db, T0 + 2).alerts)
    assign_radio(db, 2340001, "PC1234", T0)
    assign_radio(db, 2340002, "PC5678", T0)  # assigned before it was ever heard
    rows = {r["device_id"]: r for r in db["devices"].rows}
    assert {d: (r["source"], r["registered_at"] is not None) for d, r in rows.items()} == {
        RADIO: ("airwave", True), "issi:2340002": ("airwave", True)}
    assert not [a for a in fleet_status(db, T0 + 2).alerts if a.startswith("UNKNOWN")]
    assert dock_status(db, T0 + 2).out == []  # the dock lists pooled trackers only


def test_cli_assign_follows_the_identity_rules_on_a_database_file(tmp_path):
    db_path = str(tmp_path / "gateway.db")
    runner = CliRunner()

    def assign(*args: str):
        return runner.invoke(cli, ["airwave", "assign", "--db", db_path, "--issi", "2340001",
                                   *args])

    result = assign("--collar", "PC5678", "--from", str(T0 + 3600))
    assert result.exit_code == 0, result.output
    assert result.output == f"{RADIO} -> PC5678 from {T0 + 3600}\n"
    result = assign("--collar", "PC1234", "--from", str(T0))  # late entry
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{RADIO} -> PC1234 from {T0}\n")
    assert f"note: recorded until {T0 + 3600}, not open" in result.output
    db = open_db(db_path)
    try:
        assert spans(db) == [("PC1234", T0, T0 + 3600), ("PC5678", T0 + 3600, None)]
    finally:
        db.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--collar", "PC 1234", "--from", str(T0)], "collar number 'PC 1234'"),
    (["--collar", "PC1234", "--from", str(T0), "--to", str(T0)], "--to must be after --from"),
])
def test_cli_assign_refuses_bad_input_with_a_clear_error(tmp_path, args, message):
    db_path = str(tmp_path / "gateway.db")
    result = CliRunner().invoke(cli, ["airwave", "assign", "--db", db_path, "--issi", "2340001",
                                      *args])
    assert result.exit_code == 1, result.output
    assert f"Error: {message}" in result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    db = open_db(db_path)
    try:
        assert db["assignments"].count == 0
    finally:
        db.close()


def test_a_locked_database_costs_the_reader_one_counted_report_not_its_thread(tmp_path):
    from gateway.intake.airwave.reader import AirwaveReader

    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    register_device(db, radio_device_id(2340001))
    db.execute("PRAGMA busy_timeout = 50")
    reader = AirwaveReader("loop://", lambda: AirwaveStore(db), clock=lambda: 1.7e9)
    reader.store = reader.store_factory()
    sds = [e.sds for e in PeiParser().feed(lip_frame(lip.short_report(51.48, -0.007)))
           if e.kind == "sds"][0]
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    reader._store(sds)  # locked throughout: counted and logged, no exception
    other.execute("ROLLBACK")
    assert reader.counts["store_failures"] == 1 and db["positions"].count == 0
    reader._store(sds)
    assert db["positions"].count == 1
