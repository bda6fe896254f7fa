"""Position filters: bad positions are kept with their reason and left out of reports."""

from __future__ import annotations

import json

import pytest

from gateway.fleet.identity import register_device
from gateway.intake import filters, mqtt
from gateway.intake.filters import FilterConfig, FilterConfigError, Kept, check, load_config
from gateway.intake.intake import Intake
from gateway.intake.observation import Observation

NOW = 1_795_000_000
BASE = {"tst": NOW, "lat": 51.5, "lon": -0.001, "acc": 5, "fix": 1}
PREVIOUS = Kept(NOW - 10, 51.5, -0.001, 5)


def loc(**changes) -> Observation:
    fields = {**BASE, **changes}
    return Observation("location", "tracker", "T-1", "test", tst=fields["tst"],
                       lat=fields["lat"], lon=fields["lon"], acc_m=fields["acc"],
                       fix_quality=fields["fix"])


@pytest.mark.parametrize(
    "msg, previous, config, expected",
    [
        (loc(), PREVIOUS, FilterConfig(), ""),
        (loc(fix=0), None, FilterConfig(), "invalid"),
        (loc(acc=-1), None, FilterConfig(), "invalid"),
        (loc(lat=0, lon=0), None, FilterConfig(), "zero"),
        # Greenwich: longitude 0 alone is a real place in London.
        (loc(lon=0), None, FilterConfig(), ""),
        (loc(tst=NOW + 301), None, FilterConfig(), "future"),
        (loc(tst=NOW - 31 * 86400), None, FilterConfig(), "past"),
        (loc(tst=1_000_000_000), None, FilterConfig(max_age_s=None), "past"),
        (loc(acc=150), None, FilterConfig(), "accuracy"),
        (loc(acc=150), None, FilterConfig(max_acc_m=None), ""),
        (loc(tst=NOW - 10), PREVIOUS, FilterConfig(), "duplicate"),
        # 0.01 degrees of latitude (1.1 km) in 10 s: a mast jump.
        (loc(lat=51.51), PREVIOUS, FilterConfig(), "speed"),
        (loc(lat=51.51), PREVIOUS, FilterConfig(max_speed_mps=None), ""),
        # 100 m in 10 s with 5 m accuracies: a car, not a jump.
        (loc(lat=51.5009), PREVIOUS, FilterConfig(), ""),
        (loc(), PREVIOUS, FilterConfig(min_period_s=30), "period"),
        (loc(fix=0, acc=500), None, FilterConfig(), "invalid,accuracy"),
    ],
)
def test_check(msg, previous, config, expected):
    assert check(config, msg, NOW, previous) == expected


def test_distance_is_close_to_haversine_both_ways():
    near = filters.distance_m(51.5, -0.001, 51.501, 0.001)
    assert 177 < near < 178  # 111 m north, 139 m east
    far = filters.distance_m(51.5, 0.0, 52.5, 0.0)
    assert abs(far - 111_195) < 50


def test_config_file_overrides_one_source(tmp_path):
    path = tmp_path / "filters.toml"
    path.write_text("[owntracks]\nmax_acc_m = 50\nmin_period_s = 5\n")
    config = load_config(path)
    assert config["owntracks"].max_acc_m == 50
    assert config["owntracks"].min_period_s == 5
    assert config["tracker"] == filters.DEFAULTS["tracker"]
    path.write_text("[tracker]\nmax_speed = 3\n")
    with pytest.raises(FilterConfigError, match="max_speed"):
        load_config(path)


def test_filtered_positions_are_stored_with_reason_and_left_out_of_reports(db):
    register_device(db, "T-1")
    intake = Intake(db)
    fixes = [(1, 51.5000, 5), (2, 51.5001, 5), (3, 51.5200, 5), (4, 51.5002, 500),
             (5, 51.5003, 5)]
    for seq, lat, acc in fixes:
        payload = json.dumps({**BASE, "_type": "location", "dev": "T-1", "seq": seq,
                              "tst": NOW + seq * 5, "lat": lat, "acc": acc}).encode()
        assert mqtt.handle(intake, "hotspots/dev/T-1/loc", payload, NOW + 60) == "stored"
    intake.commit()
    rows = db.execute("SELECT seq, filtered FROM positions ORDER BY seq").fetchall()
    assert rows == [(1, None), (2, None), (3, "speed"), (4, "accuracy"), (5, None)]
    assert intake.counts.filtered == {"speed": 1, "accuracy": 1}
    assert db["devices"].get("T-1")["filtered"] == 2
    kept = db.execute("SELECT seq FROM positions_attributed WHERE filtered IS NULL").fetchall()
    assert kept == [(1,), (2,), (5,)]


def test_a_late_fix_is_judged_against_its_true_predecessor(db):
    register_device(db, "T-1")
    intake = Intake(db)
    for seq, tst, lat in [(1, NOW, 51.5), (3, NOW + 20, 51.5002), (2, NOW + 10, 51.5001)]:
        payload = json.dumps({**BASE, "_type": "location", "dev": "T-1", "seq": seq, "tst": tst,
                              "lat": lat}).encode()
        mqtt.handle(intake, "hotspots/dev/T-1/loc", payload, NOW + 60)
    intake.commit()
    assert db.execute("SELECT count(*) FROM positions WHERE filtered IS NULL").fetchone() == (3,)
