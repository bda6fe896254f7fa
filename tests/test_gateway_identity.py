"""Assignment history: every position attributed to the collar number carrying the device."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gateway.fleet.attribution import current, history
from gateway.fleet.identity import (
    IdentityError,
    assign,
    check_name,
    is_name,
    parse_time,
    register_device,
    return_device,
)
from gateway.intake import mqtt
from gateway.intake.intake import Intake
from gateway.schema import open_db
from hotspots.cli import cli

T0 = 1_795_000_000


def store_fixes(db, device_id: str, times: list[int]) -> None:
    register_device(db, device_id)
    intake = Intake(db)
    for seq, tst in enumerate(times, start=1):
        payload = json.dumps({"_type": "location", "dev": device_id, "seq": seq, "tst": tst,
                              "lat": 51.5, "lon": -0.001 + seq * 1e-5, "acc": 5}).encode()
        mqtt.handle(intake, f"hotspots/dev/{device_id}/loc", payload, tst + 1)
    intake.commit()


def officers(db) -> list[tuple[int, str | None]]:
    return db.execute("SELECT seq, officer FROM positions_attributed ORDER BY seq").fetchall()


def test_assignment_recorded_after_the_fact_reattributes_positions(db):
    store_fixes(db, "T-1", [T0 + 60 * i for i in range(6)])
    assert {o for _, o in officers(db)} == {None}
    assign(db, "T-1", "C100", at=T0 + 90)
    return_device(db, "T-1", at=T0 + 250)
    assert officers(db) == [(1, None), (2, None), (3, "C100"), (4, "C100"), (5, "C100"),
                            (6, None)]


def test_handover_ends_the_running_assignment_and_late_entry_fits_between(db):
    assign(db, "T-1", "C100", at=T0)
    assign(db, "T-1", "C300", at=T0 + 200)
    # The paper log says C200 had it from T0 + 100: typed in afterwards.
    assign(db, "T-1", "C200", at=T0 + 100)
    spans = [(a.collar, a.start_ts, a.end_ts) for a in history(db, "T-1")]
    assert spans == [("C100", T0, T0 + 100), ("C200", T0 + 100, T0 + 200),
                     ("C300", T0 + 200, None)]
    assert current(db, "T-1", T0 + 150).collar == "C200"


def test_an_entry_inside_a_returned_stretch_ends_where_that_stretch_ended(db):
    assign(db, "T-1", "C100", at=T0)
    return_device(db, "T-1", at=T0 + 8 * 3600)  # back in the dock at 8 h
    assign(db, "T-1", "C300", at=T0 + 10 * 3600)
    # C200 took it over at 4 h: the device was still back in the dock from 8 h to 10 h.
    assign(db, "T-1", "C200", at=T0 + 4 * 3600)
    spans = [(a.collar, a.start_ts, a.end_ts) for a in history(db, "T-1")]
    assert spans == [("C100", T0, T0 + 4 * 3600), ("C200", T0 + 4 * 3600, T0 + 8 * 3600),
                     ("C300", T0 + 10 * 3600, None)]
    assert current(db, "T-1", T0 + 9 * 3600) is None


def test_an_explicit_end_is_kept_but_never_runs_into_the_next_holder(db):
    assign(db, "T-1", "C100", at=T0)
    return_device(db, "T-1", at=T0 + 8 * 3600)
    # A paper log with both times overrides the stretch it was typed into...
    a = assign(db, "T-1", "C200", at=T0 + 4 * 3600, until=T0 + 10 * 3600)
    assert (a.start_ts, a.end_ts) == (T0 + 4 * 3600, T0 + 10 * 3600)
    # ...but stops where a later recorded holder starts.
    assign(db, "T-1", "C400", at=T0 + 12 * 3600)
    b = assign(db, "T-1", "C300", at=T0 + 11 * 3600, until=T0 + 13 * 3600)
    assert (b.start_ts, b.end_ts) == (T0 + 11 * 3600, T0 + 12 * 3600)
    with pytest.raises(IdentityError, match="end must be after the start"):
        assign(db, "T-1", "C500", at=T0 + 20 * 3600, until=T0 + 20 * 3600)


def test_return_needs_a_running_assignment(db):
    register_device(db, "T-1")
    with pytest.raises(IdentityError, match="not assigned"):
        return_device(db, "T-1", at=T0)
    assign(db, "T-1", "C100", at=T0)
    assert return_device(db, "T-1", at=T0 + 10).end_ts == T0 + 10
    assert current(db, "T-1", T0 + 20) is None


@pytest.mark.parametrize("text, expected", [
    ("1795000000", 1795000000),
    ("2026-11-18T11:06:40Z", 1795000000),
    ("2026-11-18 11:06:40", 1795000000),
    ("2026-11-18T12:06:40+01:00", 1795000000),
])
def test_parse_time(text, expected):
    assert parse_time(text) == expected


def test_parse_time_rejects_nonsense():
    with pytest.raises(IdentityError, match="ISO 8601"):
        parse_time("tuesday")


def test_cli_assign_return_and_bad_input(tmp_path):
    db_path = str(tmp_path / "g.db")
    runner = CliRunner()
    result = runner.invoke(cli, ["assign", "T-7", "C123", "--db", db_path, "--at", str(T0)])
    assert result.exit_code == 0, result.output
    assert "T-7 assigned to C123" in result.output
    result = runner.invoke(cli, ["return", "T-7", "--db", db_path, "--at", str(T0 + 3600)])
    assert result.exit_code == 0 and "returned by C123" in result.output
    result = runner.invoke(cli, ["return", "T-7", "--db", db_path])
    assert result.exit_code != 0 and "not assigned" in result.output
    result = runner.invoke(cli, ["assign", "T-7", "C 1", "--db", db_path])
    assert result.exit_code != 0 and "collar number" in result.output
    db = open_db(db_path)
    assert db["devices"].get("T-7")["registered_at"] is not None


def test_a_radio_id_registers_as_a_radio_however_it_is_first_named(tmp_path):
    """``issi:<ISSI>`` is an Airwave radio, whether it comes in through ``register``, the
    general ``assign`` or ``airwave assign``: never a pooled tracker the dock would count."""
    db_path = str(tmp_path / "g.db")
    runner = CliRunner()
    for args in (["register", "issi:2340001"], ["assign", "issi:2340002", "C123"],
                 ["register", "T-7"], ["register", "phone-1", "--source", "owntracks"]):
        result = runner.invoke(cli, [*args, "--db", db_path])
        assert result.exit_code == 0, result.output
    db = open_db(db_path)
    assert {row["device_id"]: row["source"] for row in db["devices"].rows} == {
        "issi:2340001": "airwave", "issi:2340002": "airwave", "T-7": "tracker",
        "phone-1": "owntracks"}
    # Registering again is fine; registering as something else is not silently ignored.
    result = runner.invoke(cli, ["register", "T-7", "--db", db_path])
    assert result.exit_code == 0 and "T-7 was already registered" in result.output
    result = runner.invoke(cli, ["register", "T-7", "--source", "airwave", "--db", db_path])
    assert result.exit_code == 1
    assert "T-7 is already registered as tracker, not airwave" in result.output


def test_upgrading_makes_radios_registered_as_trackers_radios(database_before):
    """Databases from before register_device knew the issi: prefix: the dock counted those
    radios as pooled trackers out of the dock."""
    from gateway import schema

    db = database_before(schema._v_radio_source)
    for device_id, source in (("issi:2340001", "tracker"), ("T-7", "tracker"),
                              ("issi:2340002", "airwave")):
        register_device(db, device_id, source)
    db.conn.commit()
    schema.migrate(db)
    assert {row["device_id"]: row["source"] for row in db["devices"].rows} == {
        "issi:2340001": "airwave", "T-7": "tracker", "issi:2340002": "airwave"}


# -- names: one grammar at every entry (issue 16) --------------------------------------------------
BAD_NAMES = ["a/b", "#", "+", "..", "", "T-1\n", "\n", "T\u202e1", "x" * 5000, "-T1", ".hidden",
             "T 1", "T\x00", "Té", "issi:", "issi:0", "issi:16777216", "issi:0123", "ISSI:12"]
GOOD_DEVICES = ["T-0001", "4711", "a", "A.b_c-9", "x" * 64, "issi:1", "issi:16777215"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_check_name_refuses_a_device_id_outside_the_grammar(name):
    with pytest.raises(IdentityError, match="device id"):
        check_name(name)
    assert not is_name(name)


@pytest.mark.parametrize("name", GOOD_DEVICES)
def test_check_name_accepts_device_ids_of_the_grammar(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name, kind, ok", [
    ("PC1234", "collar", True), ("x" * 32, "collar", True), ("x" * 33, "collar", False),
    ("issi:1", "collar", False), ("C1\n", "collar", False), (2340001, "issi", True),
    ("2340001", "issi", True), (0, "issi", False), (-5, "issi", False), (2**24, "issi", False),
    (True, "issi", False), (None, "device", False), (12, "device", False),
])
def test_check_name_for_collar_numbers_and_issis(name, kind, ok):
    assert is_name(name, kind) is ok


@pytest.mark.parametrize("name", BAD_NAMES)
def test_every_cli_entry_refuses_a_bad_device_id(tmp_path, name):
    db_path = str(tmp_path / "g.db")
    runner = CliRunner()
    # ``--`` so that a name starting with "-" is taken as the name, not as an option.
    for args in (["register", "--db", db_path, "--", name],
                 ["assign", "--db", db_path, "--", name, "C1"],
                 ["return", "--db", db_path, "--", name],
                 ["dock", "pick", "--db", db_path, f"--device={name}", "C1"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert "device id" in result.output and "Traceback" not in result.output
    if (tmp_path / "g.db").exists():
        db = open_db(db_path)
        assert db["devices"].count == 0 and db["assignments"].count == 0


@pytest.mark.parametrize("collar", ["a/b", "#", "", "C1\n", "C\u202e1", "x" * 5000])
def test_every_cli_entry_refuses_a_bad_collar_number(tmp_path, collar):
    db_path = str(tmp_path / "g.db")
    runner = CliRunner()
    for args in (["assign", "T-1", collar], ["dock", "pick", collar],
                 ["airwave", "assign", "--issi", "2340001", "--collar", collar, "--from",
                  str(T0)]):
        result = runner.invoke(cli, [*args, "--db", db_path])
        assert result.exit_code == 1, (args, result.output)
        assert "collar number" in result.output


@pytest.mark.parametrize("issi", ["0", "-1", "16777216"])
def test_airwave_assign_refuses_what_is_no_issi(tmp_path, issi):
    result = CliRunner().invoke(cli, ["airwave", "assign", "--db", str(tmp_path / "g.db"),
                                      "--issi", issi, "--collar", "C1", "--from", str(T0)])
    assert result.exit_code == 1 and "device id" in result.output


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n and "/" not in n])
def test_a_topic_naming_a_bad_device_is_quarantined_without_a_device(db, name):
    intake = Intake(db)
    topic = f"hotspots/dev/{name}/loc"
    assert mqtt.handle(intake, topic, b'{"_type":"location"}', T0) == "quarantined"
    intake.commit()
    assert db.execute("SELECT device_id FROM quarantine").fetchall() == [(None,)]
    assert db["devices"].count == 0


def test_the_dock_registers_only_a_valid_device_id(db):
    """The dock registers what a tracker answers to ``ID`` through the same gate."""
    with pytest.raises(IdentityError):
        register_device(db, "../etc")
    assert db["devices"].count == 0
