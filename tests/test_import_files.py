"""``hotspots import``: GPX, KML, NMEA logs and CSV exports as their producers write them.

Each file in ``tests/data/files`` is written the way its tool writes it (Garmin eTrex with
TrackPointExtension, OsmAnd with accuracy in ``hdop`` and a time zone offset, GPSLogger with
GPX 1.0 speed/course, Google Earth's gx:Track, timed placemarks, a dash camera's CSV, a
semicolon export with a decimal comma); the NMEA logs are the receiver logs of
``tests/data/nmea``, compared with the firmware parser's own output.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from gateway.fleet import attribution, identity
from gateway.intake.files import FileImportError, Options, RowError, decode, detect_format
from gateway.intake.files.csvtrack import parse_mapping
from gateway.intake.files.importer import import_file
from gateway.intake.observation import Observation
from gateway.schema import open_db
from hotspots.cli import cli
from tests.conftest import DATA

FILES = DATA / "files"


def ts(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def decoded(name: str, fmt: str | None = None, options: Options | None = None):
    path = FILES / name if (FILES / name).exists() else DATA / "nmea" / name
    data = path.read_bytes()
    items = list(decode(data, path.name, "CAM-1", fmt or detect_format(path, data), options))
    return ([i for i in items if isinstance(i, Observation)],
            [i for i in items if isinstance(i, RowError)])


def positions(db, device="CAM-1"):
    return db.execute("SELECT tst, lat, lon, acc_m, speed_mps, course_deg, alt_m, source,"
                      " filtered FROM positions WHERE device_id = ? ORDER BY tst",
                      (device,)).fetchall()


# -- decoders -------------------------------------------------------------------------------------
def test_garmin_gpx_extensions_and_bad_points():
    fixes, errors = decoded("garmin_etrex.gpx")
    assert [(f.tst, f.lat, f.lon) for f in fixes] == [
        (ts("2026-11-24T09:00:12Z"), 51.50722, -0.00127),
        (ts("2026-11-24T09:00:22Z"), 51.507224, -0.00107),
        (ts("2026-11-24T09:01:22Z"), 51.50723, 0.00013),  # east of Greenwich: positive
    ]
    assert (fixes[0].speed_mps, fixes[0].course_deg, fixes[0].alt_m) == (1.39, 91.0, 11.4)
    assert fixes[2].speed_mps is None
    assert all(f.source == "import" and f.origin.startswith("garmin_etrex.gpx:") for f in fixes)
    assert fixes[0].origin == "garmin_etrex.gpx:23"  # the line the trkpt starts on
    reasons = {(e.origin, e.reason) for e in errors}
    assert reasons == {("garmin_etrex.gpx:9", "not_a_fix"),  # the waypoint
                       ("garmin_etrex.gpx:47", "bad_number"),  # 51.5O7240 (letter O)
                       ("garmin_etrex.gpx:51", "no_time")}


def test_osmand_gpx_time_zone_and_accuracy_in_metres():
    fixes, errors = decoded("osmand.gpx")
    assert not errors
    assert [f.tst for f in fixes] == [ts("2026-11-24T09:00:05Z"), ts("2026-11-24T09:00:15Z")]
    # OsmAnd writes the phone's accuracy in metres into <hdop>
    assert [(f.acc_m, f.speed_mps, f.course_deg) for f in fixes] == [(4, 1.2, 180),
                                                                     (6, 1.3, 181)]


def test_gpslogger_gpx_speed_course_in_point_and_hdop():
    fixes, errors = decoded("gpslogger.gpx")
    assert not errors and len(fixes) == 3
    assert (fixes[0].speed_mps, fixes[0].course_deg, fixes[0].acc_m) == (1.6, 270.4, 4.5)


def test_google_earth_gx_track_pairs_when_and_coord():
    fixes, errors = decoded("google_earth_track.kml")
    assert [(f.tst, f.lon, f.lat) for f in fixes] == [
        (ts("2026-11-24T12:00:00Z"), -0.0883, 51.5101),
        (ts("2026-11-24T12:00:30Z"), -0.0881, 51.5102),
        (ts("2026-11-24T12:01:00Z"), -0.0879, 51.5103),
    ]
    reasons = sorted(e.reason for e in errors)
    assert reasons == ["no_zone", "unpaired"]  # 12:01:30 without a zone; 5 whens, 4 coords


def test_kml_naive_time_read_in_the_given_zone():
    fixes, errors = decoded("google_earth_track.kml", options=Options(timezone="Europe/London"))
    assert len(fixes) == 4 and fixes[3].tst == ts("2026-11-24T12:01:30Z")  # GMT in November
    assert [e.reason for e in errors] == ["unpaired"]


def test_kml_placemarks_timestamp_points_only():
    fixes, errors = decoded("placemarks.kml")
    assert [(f.tst, f.lat, f.lon) for f in fixes] == [
        (ts("2026-11-24T13:05:00Z"), 51.5072, -0.1276),
        (ts("2026-11-24T13:20:00Z"), 51.5075, -0.128),
    ]
    assert sorted((e.reason, e.detail.split(";")[0]) for e in errors) == [
        ("bad_coordinate", "lat -0.13, lon 251.5 is not on Earth (lat -90..90, lon -180..180)"),
        ("no_time", "a LineString has no time per point"),
        ("no_time", "a TimeSpan is not the time of a fix"),
    ]


def test_dashcam_csv_headers_found_by_name():
    fixes, errors = decoded("dashcam.csv", options=Options(timezone="UTC"))
    assert [f.origin for f in fixes] == [f"dashcam.csv:{n}" for n in (2, 3, 5, 6)]
    assert fixes[0].speed_mps == round(4.3 / 3.6, 2) and fixes[0].alt_m == 8.0
    assert fixes[3].tst == ts("2026-11-24T15:01:00Z")  # day-first UK layout
    assert {(e.origin, e.reason) for e in errors} == {("dashcam.csv:4", "no_latitude"),
                                                      ("dashcam.csv:7", "bad_time")}


def test_dashcam_csv_without_zone_is_an_error_per_row_not_a_guess():
    fixes, errors = decoded("dashcam.csv")
    assert not fixes and {e.reason for e in errors} >= {"no_zone"}


def test_camera_export_mapping_and_decimal_comma():
    with pytest.raises(FileImportError, match="no column for time"):
        decoded("camera_export.csv")
    options = Options(columns=parse_mapping("time=Event Time (UTC)"))
    fixes, errors = decoded("camera_export.csv", options=options)
    assert not errors
    assert [(f.lat, f.lon, f.acc_m) for f in fixes] == [(51.5, -0.07, 5), (51.50551, -0.0741, 6),
                                                        (51.50552, -0.074, 4)]


@pytest.mark.parametrize("text, message", [
    ("time", "write field=Header"),
    ("when=Time", "unknown field 'when'"),
])
def test_bad_mapping(text, message):
    with pytest.raises(FileImportError, match=message):
        parse_mapping(text)


def test_mapping_to_a_missing_column():
    with pytest.raises(FileImportError, match="no such column"):
        decoded("camera_export.csv", options=Options(columns={"time": "Nope"}))


@pytest.mark.parametrize("name", ["ublox_m8_cold_start_new_year.nmea", "sirf_gps_only_rio.nmea"])
def test_nmea_log_same_fixes_as_the_firmware_parser(name):
    from hotspots.cli_nmea import parse_file

    lines = list(parse_file(DATA / "nmea" / name))
    epochs = [json.loads(line) for line in lines[:-1]]
    valid = [e for e in epochs if e["valid"]]
    fixes, errors = decoded(name)
    assert [(f.tst, f.lat, f.lon) for f in fixes] == [(e["t"], e["lat"], e["lon"])
                                                      for e in valid]
    assert [f.acc_m for f in fixes] == [e["acc_m"] for e in valid]
    nofix = [e for e in errors if e.reason == "no_fix"]
    assert len(nofix) == len(epochs) - len(valid)
    # every rejection the parser counted is a row error with its line
    counts = json.loads(lines[-1])["rejected"]
    bad = [e for e in errors if e.reason != "no_fix"]
    assert len(bad) == sum(counts.values())
    assert all(e.origin.split(":")[1].isdigit() for e in bad)


def test_hostile_xml_is_refused_whole():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b'<gpx><trk><trkseg><trkpt lat="1" lon="1"><time>&b;</time></trkpt></trkseg>'
            b'</trk></gpx>')
    with pytest.raises(FileImportError, match="DOCTYPE"):
        list(decode(bomb, "x.gpx", "CAM-1", "gpx"))
    with pytest.raises(FileImportError, match="not well-formed XML at line 1"):
        list(decode(b"<gpx><trk>", "x.gpx", "CAM-1", "gpx"))


def test_format_from_content_when_the_name_does_not_say():
    assert detect_format("track.xml", b"<?xml version='1.0'?><gpx version='1.1'>") == "gpx"
    assert detect_format("export.txt", b"$GPRMC,1,2*00\r\n") == "nmea"
    assert detect_format("a.dat", b"time,lat,lon\n") == "csv"
    with pytest.raises(FileImportError, match="give --format"):
        detect_format("a.bin", b"\x00\x01")


# -- import into the database ---------------------------------------------------------------------
@pytest.fixture
def filedb(tmp_path):
    db = open_db(str(tmp_path / "g.db"))
    yield db
    db.close()


def test_import_stores_good_rows_and_quarantines_bad_ones(filedb):
    result = import_file(filedb, FILES / "garmin_etrex.gpx", "CAM-1", received_at=ts(
        "2026-12-01T00:00:00Z"))
    assert (result.stored, result.duplicates, len(result.errors)) == (3, 0, 2)
    assert result.skipped == {"not_a_fix": 1}
    assert result.rows == 6
    rows = positions(filedb)
    assert [r[:3] for r in rows] == [(ts("2026-11-24T09:00:12Z"), 51.50722, -0.00127),
                                     (ts("2026-11-24T09:00:22Z"), 51.507224, -0.00107),
                                     (ts("2026-11-24T09:01:22Z"), 51.50723, 0.00013)]
    assert {r[7] for r in rows} == {"import"} and {r[8] for r in rows} == {None}
    quarantined = filedb.execute("SELECT topic, reason, device_id FROM quarantine"
                                 " ORDER BY topic").fetchall()
    assert quarantined == [("garmin_etrex.gpx:47", "bad_number", "CAM-1"),
                           ("garmin_etrex.gpx:51", "no_time", "CAM-1")]
    assert filedb.execute("SELECT source, registered_at IS NOT NULL FROM devices"
                          " WHERE device_id = 'CAM-1'").fetchone() == ("import", 1)


def test_reimport_stores_nothing_new(filedb):
    first = import_file(filedb, FILES / "osmand.gpx", "CAM-1")
    again = import_file(filedb, FILES / "osmand.gpx", "CAM-1")
    assert (first.stored, again.stored, again.duplicates) == (2, 0, 2)
    assert len(positions(filedb)) == 2
    bad = import_file(filedb, FILES / "placemarks.kml", "CAM-1")
    bad_again = import_file(filedb, FILES / "placemarks.kml", "CAM-1")
    assert len(bad.errors) == len(bad_again.errors) == 3
    assert filedb.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 3


def test_old_files_are_not_flagged_as_past(filedb):
    """An import weeks later is normal: the import source has no age limit."""
    result = import_file(filedb, FILES / "gpslogger.gpx", "CAM-1",
                         received_at=ts("2027-03-01T00:00:00Z"))
    assert result.stored == 3 and not result.flagged


def test_collar_records_the_assignment_over_the_file_span(filedb):
    result = import_file(filedb, FILES / "google_earth_track.kml", "CAM-1", collar="1234",
                         options=Options(timezone="UTC"))
    a = result.assignment
    assert (a.collar, a.start_ts, a.end_ts) == ("1234", ts("2026-11-24T12:00:00Z"),
                                                ts("2026-11-24T12:01:30Z") + 1)
    officers = filedb.execute("SELECT DISTINCT officer FROM positions_attributed"
                              " WHERE device_id = 'CAM-1'").fetchall()
    assert officers == [("1234",)]
    again = import_file(filedb, FILES / "google_earth_track.kml", "CAM-1", collar="1234",
                        options=Options(timezone="UTC"))
    assert again.assignment.id == a.id and len(attribution.history(filedb, "CAM-1")) == 1


def test_collar_contradicting_the_history_stores_nothing(filedb):
    identity.assign(filedb, "CAM-1", "9999", at=ts("2026-11-24T08:00:00Z"))
    with pytest.raises(FileImportError, match="was with collar 9999"):
        import_file(filedb, FILES / "osmand.gpx", "CAM-1", collar="1234")
    assert positions(filedb) == []


def test_cli_import(tmp_path):
    db_path = str(tmp_path / "c.db")
    runner = CliRunner()
    args = ["import", str(FILES / "dashcam.csv"), "--device", "CAM-7", "--collar", "4321",
            "--db", db_path, "--timezone", "Europe/London"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "dashcam.csv:4: no_latitude: no latitude" in result.output
    assert "6 rows, 4 stored" in result.output and "2 errors" in result.output
    again = runner.invoke(cli, args)
    assert "0 stored" in again.output and "4 already stored" in again.output
    bad = runner.invoke(cli, ["import", str(FILES / "camera_export.csv"), "--device", "CAM-7",
                              "--db", db_path])
    assert bad.exit_code == 1 and "--columns" in bad.output
    zone = runner.invoke(cli, [*args[:-1], "Mars/Olympus"])
    assert zone.exit_code == 1 and "unknown time zone" in zone.output
