"""Crime import (police.uk and force exports) and harm weights: formats as their producers
write them, counted rejections with line numbers, idempotent re-import, BNG via pyproj."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from hotspots.cli import cli
from planning.crime import CrimeImportError, import_crime, load_crimes
from planning.harm import DEFAULT_TABLE, HarmError, load_harm
from simulators.crime import (
    CATEGORIES,
    POLICE_UK_COLUMNS,
    generate,
    write_force_export,
    write_police_uk,
)


@pytest.fixture(scope="module")
def world():
    return generate(3000, months=2, seed=11)


def test_police_uk_files_have_the_published_columns_and_no_times(world, tmp_path):
    paths = write_police_uk(world, tmp_path)
    assert [p.name for p in paths] == ["2026-01-metropolitan-police-service-street.csv",
                                       "2026-02-metropolitan-police-service-street.csv"]
    with paths[0].open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Crime ID", "Month", "Reported by", "Falls within", "Longitude",
                       "Latitude", "Location", "LSOA code", "LSOA name", "Crime type",
                       "Last outcome category", "Context"] == POLICE_UK_COLUMNS
    asb = [r for r in rows[1:] if r[9] == "Anti-social behaviour"]
    assert asb and all(r[0] == "" and r[10] == "" for r in asb)
    assert {r[9] for r in rows[1:]} <= set(CATEGORIES)
    assert all(r[1] == "2026-01" for r in rows[1:])


def test_police_uk_import_is_idempotent_and_snapped(world, tmp_path, db):
    paths = write_police_uk(world, tmp_path)
    first = [import_crime(db, p) for p in paths]
    assert sum(r.imported for r in first) == len(world.records)
    assert all(r.format == "police-uk" and not r.rejected for r in first)
    again = [import_crime(db, p) for p in paths]
    assert sum(r.imported for r in again) == 0
    assert sum(r.duplicates for r in again) == len(world.records)
    crimes = load_crimes(db)
    assert len(crimes) == len(world.records)
    assert not crimes.has_times.any()  # police.uk gives a month only
    # snapped to map points: far fewer distinct points than crimes
    assert len(set(zip(crimes.lon.tolist(), crimes.lat.tolist(), strict=True))) < len(crimes)


@pytest.mark.parametrize("crs", ["bng", "wgs84"])
def test_force_export_import_keeps_windows_and_places(world, tmp_path, db, crs):
    path = write_force_export(world, tmp_path / "force.csv", crs=crs)
    result = import_crime(db, path, tz="Europe/London")
    timed = [r for r in world.records if r.category != "Anti-social behaviour"]
    assert (result.format, result.imported, result.rejected) == ("force", len(timed), [])
    crimes = load_crimes(db)
    assert crimes.has_times.all() and (crimes.to_ts >= crimes.from_ts).all()
    # the true time lies in every window; the position is back within a metre of the truth
    truth_ts = np.array([int(r.when.timestamp()) for r in timed])
    assert ((crimes.from_ts <= truth_ts) & (truth_ts <= crimes.to_ts + 59)).all()
    err_m = np.hypot((crimes.lon - [r.lon for r in timed]) * 69_000,
                     (crimes.lat - [r.lat for r in timed]) * 111_000)
    assert err_m.max() < 1.5
    # London straddles the meridian: both signs of longitude come through
    assert (crimes.lon < 0).any() and (crimes.lon > 0).any()
    assert import_crime(db, path).duplicates == len(timed)


FORCE_BAD = """URN,Offence Code,Offence Group,Committed From,Committed To,Easting,Northing
A1,34B,Robbery,02/03/2026 21:15,02/03/2026 21:20,538900,177500
A2,46,Shoplifting,31/02/2026 10:00,,538900,177500
A3,28E,Burglary,02/03/2026 22:00,02/03/2026 08:00,538900,177500
A4,45,Vehicle offences,02/03/2026 22:00,,,177500
A5,,,02/03/2026 22:00,,538900,177500
A6,9,Public order offences,02/03/2026 22:00,,9538900,177500
A7,9,Public order offences,02/03/2026 22:00,,east,177500
A8,9,Public order offences
A9,8N,Violence with injury,2026-03-02T23:30,2026-03-03T00:10,538950,177550
"""


def test_force_rows_are_rejected_with_line_numbers(tmp_path, db):
    path = tmp_path / "force.csv"
    path.write_text(FORCE_BAD)
    result = import_crime(db, path)
    assert result.imported == 2
    lines = dict(result.rejected)
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9]
    assert "bad date-time" in lines[3]
    assert "before Committed From" in lines[4]
    assert "no coordinates" in lines[5]
    assert "no offence" in lines[6]
    assert "outside the British National Grid" in lines[7]
    assert "not numbers" in lines[8]
    assert "fields" in lines[9]


def test_police_uk_rows_without_location_are_counted(tmp_path, db):
    path = tmp_path / "2026-01-x-street.csv"
    head = ",".join(POLICE_UK_COLUMNS)
    path.write_text(
        head + "\n"
        ",2026-01,F,F,-0.001,51.48,On or near X,E01,N,Anti-social behaviour,,\n"
        ",2026-01,F,F,-0.001,51.48,On or near X,E01,N,Anti-social behaviour,,\n"
        "abc,2026-01,F,F,,,No Location,,,Burglary,Under investigation,\n"
        "abd,2026-13,F,F,-0.001,51.48,On or near X,E01,N,Burglary,Under investigation,\n"
        "abe,2026-01,F,F,-74.0,40.7,On or near X,E01,N,Burglary,Under investigation,\n")
    result = import_crime(db, path)
    # two identical ASB rows are two incidents, and stay two on re-import
    assert result.imported == 2
    assert [line for line, _ in result.rejected] == [4, 5, 6]
    assert "no location" in result.rejected[0][1]
    assert "YYYY-MM" in result.rejected[1][1]
    assert "outside Great Britain" in result.rejected[2][1]
    assert import_crime(db, path).duplicates == 2


def test_police_uk_rows_that_make_no_crime_are_rejected_with_their_reason(tmp_path, db):
    path = tmp_path / "2026-01-x-street.csv"
    path.write_text(
        ",".join(POLICE_UK_COLUMNS) + "\n"
        "abf,2026-01,F,F,west,51.48,On or near X,E01,N,Burglary,,\n"
        "abg,2026-01,F,F,-0.001,51.48,On or near X,E01,N,,,\n"
        "abh,2026-01,F,F\n"
        "abi,2026-01,F,F,-0.001,51.48,On or near X,E01,N,Burglary,,\n")
    result = import_crime(db, path)
    assert result.imported == 1
    assert result.rejected == [
        (2, "Longitude/Latitude is not a number"), (3, "Crime type is empty"),
        (4, f"4 fields, the header has {len(POLICE_UK_COLUMNS)}")]


def test_unreadable_files_are_errors(tmp_path, db):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CrimeImportError, match="Easting/Northing"):
        import_crime(db, path)
    with pytest.raises(CrimeImportError, match="not a police.uk"):
        import_crime(db, path, "police-uk")


def test_harm_defaults_cover_every_category_with_a_source():
    table = load_harm()
    assert all(row.source for row in table.rows)
    for category, (_, group, _) in CATEGORIES.items():
        assert table.weight(category) is not None, category
        assert table.weight(group) is not None, group
    assert table.weight("Robbery") > 100 * table.weight("Shoplifting")
    assert table.weight("violence-and-sexual-offences") == table.weight(
        "Violence and sexual offences")
    estimates = [r for r in table.rows if r.estimate]
    assert estimates and "estimate" in DEFAULT_TABLE.read_text()


def test_force_index_overrides_and_codes_win(tmp_path):
    path = tmp_path / "own.csv"
    path.write_text("category,harm_days\nShoplifting,7\n34B,500\n")
    table = load_harm(path)
    assert table.weight("Shoplifting") == 7
    assert table.weight("Robbery", "34B") == 500
    assert table.weight("Robbery") is None
    bad = tmp_path / "bad.csv"
    bad.write_text("category,harm_days\nShoplifting,seven\n,3\nRobbery,-1\n")
    with pytest.raises(HarmError) as err:
        load_harm(bad)
    assert "line 2" in str(err.value) and "line 3" in str(err.value) and "line 4" in str(
        err.value)


def test_cli_import_lists_rejections_and_unweighted_categories(tmp_path):
    path = tmp_path / "force.csv"
    path.write_text(FORCE_BAD.replace("Violence with injury", "Littering"))
    db = tmp_path / "c.db"
    result = CliRunner().invoke(cli, ["crime", "import", str(path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "2 imported, 0 already there, 7 rejected" in result.output
    assert "line 3: bad date-time" in result.output
    assert "no harm weight for 'Littering' (1 crimes)" in result.output
    again = CliRunner().invoke(cli, ["crime", "import", str(path), "--db", str(db)])
    assert "0 imported, 2 already there" in again.output


def test_a_window_across_the_clocks_going_back_is_not_negative(tmp_path, db):
    # 25 October 2026: 01:00-02:00 happens twice in Europe/London
    path = tmp_path / "force.csv"
    path.write_text("URN,Offence Group,Committed From,Committed To,Longitude,Latitude\n"
                    "B1,Burglary,25/10/2026 01:50,25/10/2026 01:10,-0.01,51.48\n")
    result = import_crime(db, path)
    assert (result.imported, result.rejected) == (1, [])
    crimes = load_crimes(db)
    assert crimes.to_ts[0] - crimes.from_ts[0] == 20 * 60


def test_a_window_across_the_clocks_going_forward_is_read(tmp_path, db):
    # 29 March 2026: 01:00-02:00 does not exist in Europe/London; a system may still write it
    path = tmp_path / "force.csv"
    path.write_text("URN,Offence Group,Committed From,Committed To,Longitude,Latitude\n"
                    "B2,Public order offences,29/03/2026 01:59,29/03/2026 02:06,-0.01,51.48\n")
    result = import_crime(db, path)
    assert (result.imported, result.rejected) == (1, [])
    crimes = load_crimes(db)
    assert crimes.to_ts[0] - crimes.from_ts[0] == 7 * 60
