"""Airwave error class 7 ("position error not known") with real coordinates (issue 19).

The reports are public decodes: the short location reports of a Sepura radio posted on the
RadioReference forum ("Sepura SDS LIP", 2016, with the AVL log's own reading of one of them, and
"Unable to decode GPS positioning from Sepura radio"). None of those carries class 7, so the
class-7 cases are those same reports with the 3-bit position error field set to 7 by the
encoder (every other bit unchanged), as a radio reporting a fix it cannot qualify sends them.
"""

from __future__ import annotations

import pytest

from gateway.intake.airwave import lip
from gateway.intake.airwave.sds import PeiParser, ctsdsr
from gateway.intake.airwave.store import AirwaveStore, assign_radio, radio_rows
from gateway.intake.filters import FilterConfigError, load_config
from gateway.reports.visits import HotSpotSet, VisitRules, compute_visits

#: (hex after the protocol identifier byte, lat, lon, error class, age class)
PUBLIC = [
    # the AVL log read this one as 52.37570 16.23886
    ("00B8C31A53EB496D6200", 52.37570, 16.23886, 1, 0),
    ("001BDE31D89B7900081", 41.537751, 2.449329, 1, 0),
    ("301BB981D8A74100081", 41.541796, 2.436733, 1, 3),
    ("201BDC61D89AE102881", 41.537547, 2.448707, 1, 2),
]


def with_class(hex_text: str, klass: int) -> lip.LipReport:
    report = lip.decode_hex("0A" + hex_text)
    report.pos_err_class = klass
    return report


@pytest.mark.parametrize(("hex_text", "lat", "lon", "klass", "age"), PUBLIC)
def test_public_reports_decode_as_published(hex_text, lat, lon, klass, age):
    report = lip.decode_hex("0A" + hex_text)
    assert (round(report.lat, 5), round(report.lon, 5)) == (round(lat, 5), round(lon, 5))
    assert (report.pos_err_class, report.time_elapsed) == (klass, age)
    assert not report.nofix and not report.accuracy_unknown


@pytest.mark.parametrize(("hex_text", "lat", "lon", "klass", "age"), PUBLIC)
def test_class_7_is_a_position_unless_its_age_is_unknown_too(hex_text, lat, lon, klass, age):
    report = with_class(hex_text, 7)
    data, nbits = lip.encode(report)
    again = lip.decode(data, nbits)
    assert again.pos_err_class == 7 and round(again.lat, 5) == round(lat, 5)
    if age == 3:  # neither accuracy nor age known: repeating something stale
        assert again.nofix and not again.accuracy_unknown
    else:
        assert not again.nofix and again.accuracy_unknown


def frame(report: lip.LipReport, issi: int = 2340001) -> bytes:
    data, nbits = lip.encode(report)
    return ctsdsr(issi, 9999, bytes([lip.PROTOCOL_ID]) + data, 8 + nbits)


def feed(store: AirwaveStore, frames: bytes, at: float) -> list[str]:
    parser = PeiParser()
    return [store.handle(e.sds, at) for e in parser.feed(frames) + parser.flush()
            if e.kind == "sds"]


T = 1_795_000_000


def test_stored_flagged_with_no_accuracy(db):
    assign_radio(db, 2340001, "PC77", T - 3600)
    store = AirwaveStore(db)
    assert feed(store, frame(with_class(PUBLIC[0][0], 7)), T) == ["stored"]
    row = db.execute("SELECT lat, lon, acc_m, filtered FROM positions").fetchone()
    assert (round(row[0], 4), round(row[1], 4), row[2], row[3]) == (
        52.3757, 16.2389, None, "accuracy_unknown")
    logged = list(radio_rows(db))
    assert [(r["outcome"], r["pos_err_m"]) for r in logged] == [("stored", None)]
    # class 6 (> 200 km) stays "coarse": known to be useless, not unknown
    feed(store, frame(with_class(PUBLIC[1][0], 6)), T + 600)
    assert db.execute("SELECT filtered FROM positions ORDER BY id DESC").fetchone() == (
        "coarse",)


def test_fleet_setting_drop_logs_them_only(db):
    store = AirwaveStore(db, unknown_accuracy="drop")
    assert feed(store, frame(with_class(PUBLIC[0][0], 7)), T) == ["dropped"]
    assert db["positions"].count == 0
    assert [(r["outcome"], r["reason"]) for r in radio_rows(db, include_all=True)] == [
        ("dropped", "accuracy_unknown")]
    with pytest.raises(ValueError, match="unknown_accuracy"):
        AirwaveStore(db, unknown_accuracy="maybe")


def test_fleet_setting_in_the_filters_file(tmp_path):
    path = tmp_path / "filters.toml"
    path.write_text('[airwave]\nunknown_accuracy = "drop"\n')
    assert load_config(path)["airwave"].unknown_accuracy == "drop"
    assert load_config(None)["airwave"].unknown_accuracy == "keep"
    path.write_text('[airwave]\nunknown_accuracy = "sometimes"\n')
    with pytest.raises(FilterConfigError, match="keep"):
        load_config(path)


def test_reports_decide_whether_they_count(db):
    """A radio that only ever sends class 7, standing 10 minutes in a hot spot."""
    lat, lon = 41.537751, 2.449329
    d = 0.0005
    spot = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "HS1", "name": "Market", "density": "high"},
        "geometry": {"type": "Polygon", "coordinates": [[
            [lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d],
            [lon - d, lat - d]]]}}]}
    hotspots = HotSpotSet.load(spot)
    assign_radio(db, 2340001, "PC77", T - 3600)
    store = AirwaveStore(db)
    for i in range(6):
        # the radio creeps a metre each time: not the same LIP cell, so no mast is learned
        report = lip.short_report(lat + i * 1e-5, lon, pos_err_class=7, time_elapsed=0)
        assert feed(store, frame(report), T + 120 * i) == ["stored"]
    assert compute_visits(db, hotspots) == []  # default: not evidence of a visit
    visits = compute_visits(db, hotspots, rules=VisitRules(unknown_accuracy=True))
    assert [(v.officer, v.hotspot, v.leave - v.enter) for v in visits] == [
        ("PC77", "HS1", 600)]


def test_report_cli_option(db, tmp_path):
    from click.testing import CliRunner

    from gateway.schema import open_db
    from hotspots.cli import cli

    path = tmp_path / "r.db"
    disk = open_db(str(path))
    assign_radio(disk, 2340001, "PC77", T - 3600)
    store = AirwaveStore(disk)
    lat, lon = 41.537751, 2.449329
    for i in range(6):
        feed(store, frame(lip.short_report(lat + i * 1e-5, lon, pos_err_class=7)), T + 120 * i)
    disk.close()
    fences = tmp_path / "f.geojson"
    d = 0.0005
    fences.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties":'
        ' {"id": "HS1", "name": "Market", "density": "high"}, "geometry": {"type": "Polygon",'
        ' "coordinates":'
        f' [[[{lon - d}, {lat - d}], [{lon + d}, {lat - d}], [{lon + d}, {lat + d}],'
        f' [{lon - d}, {lat + d}], [{lon - d}, {lat - d}]]]}}}}]}}')
    base = ["report", "dwell", "--db", str(path), "--fences", str(fences), "--json"]
    ignored = CliRunner().invoke(cli, base)
    counted = CliRunner().invoke(cli, [*base, "--unknown-accuracy", "count"])
    assert ignored.exit_code == 0 and counted.exit_code == 0, counted.output
    assert "HS1" not in ignored.output and "HS1" in counted.output
