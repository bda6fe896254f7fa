"""LIP short and long location reports: bit-exact vectors, round trips, clear rejections."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.intake.airwave import lip
from hotspots.cli import cli


def bits(value: int, width: int) -> str:
    """``value`` as a ``width``-bit two's complement string (the test's own packing)."""
    return format(value & ((1 << width) - 1), f"0{width}b")


def to_hex(bitstring: str) -> str:
    bitstring += "0" * (-len(bitstring) % 8)
    return f"{int(bitstring, 2):0{len(bitstring) // 4}X}"


# -- vectors worked from the standard's formulas --------------------------------------------------
# lon units 360/2^25 degrees, lat units 180/2^24 degrees, rounded to the nearest unit.
PLACES = [
    # name, lat, lon, lat_raw, lon_raw (computed by hand: round(lat*2^24/180), round(lon*2^25/360))
    ("Greenwich, west of the meridian", 51.4807, -0.0073, 4798349, -680),
    ("Charing Cross", 51.5073, -0.1275, 4800828, -11884),
    ("Sydney (south and east)", -33.8688, 151.2093, -3156801, 14093728),
    ("Rio (south and west)", -22.9068, -43.1729, -2135069, -4024006),
    ("Anchorage", 61.2181, -149.9003, 5705940, -13971721),
]


@pytest.mark.parametrize(("name", "lat", "lon", "lat_raw", "lon_raw"), PLACES)
def test_short_report_bits_match_the_standard_layout(name, lat, lon, lat_raw, lon_raw):
    assert lip.lat_to_raw(lat) == lat_raw, name
    assert lip.lon_to_raw(lon) == lon_raw, name
    # PDU type 00, time elapsed 01 (<5 min), lon 25, lat 24, position error 010 (<200 m),
    # velocity code 12 (12 km/h), direction 0100 (90 deg), additional data type 0, reason 130.
    expected = to_hex("00" + "01" + bits(lon_raw, 25) + bits(lat_raw, 24) + "010"
                      + bits(12, 7) + "0100" + "0" + bits(130, 8))
    report = lip.short_report(lat, lon, time_elapsed=1, pos_err_class=2, speed=12,
                              direction=90, reason=130)
    data, nbits = lip.encode(report)
    assert nbits == 76
    assert data.hex().upper() == expected
    decoded = lip.decode_hex("0A" + expected)
    assert decoded == report
    assert decoded.lat == pytest.approx(lat, abs=lip.LAT_UNIT_DEG / 2)
    assert decoded.lon == pytest.approx(lon, abs=lip.LON_UNIT_DEG / 2)
    assert (decoded.lon < 0) == (lon < 0) and (decoded.lat < 0) == (lat < 0)


def test_public_decoder_vector_southern_latitude_is_negative():
    # Latitude field 0xCA1959 and longitude field 0x0CE6C98 (Melbourne), as a public decoder
    # documents them: -37.899131, 145.142012.
    assert lip.to_signed(0xCA1959, 24) * lip.LAT_UNIT_DEG == pytest.approx(-37.899131, abs=1e-6)
    assert lip.to_signed(0x0CE6C98, 25) * lip.LON_UNIT_DEG == pytest.approx(145.142012, abs=1e-6)


def test_west_of_greenwich_is_not_359_degrees_east():
    # Regression: reading the 25-bit longitude as unsigned puts -0.0073 at 359.9927.
    report = lip.decode_hex("0A" + to_hex("0000" + bits(-680, 25) + bits(4798349, 24) + "001"
                                          + bits(0, 7) + "0000" + "0" + bits(0, 8)))
    assert report.lon == pytest.approx(-0.0073, abs=1e-5)


@pytest.mark.parametrize(("code", "kmh"), [
    (0, 0.0), (1, 1.0), (28, 28.0), (29, 29.06), (33, 33.73), (50, 63.59), (100, 410.48),
    (125, 1042.85), (126, None), (127, None),
])
def test_speed_code_is_linear_to_28_then_geometric(code, kmh):
    got = lip.speed_kmh(code)
    assert got == kmh if kmh is None or code <= 28 else got == pytest.approx(kmh, abs=0.05)


@pytest.mark.parametrize("kmh", [0, 3.4, 12, 28.4, 29, 47, 130, 999])
def test_speed_code_round_trip_is_within_half_a_step(kmh):
    code = lip.speed_code(kmh)
    assert abs(lip.speed_kmh(code) - kmh) <= max(0.5, 0.02 * kmh)


@pytest.mark.parametrize(("code", "metres"), [
    (1, -200), (201, 0), (1201, 1000), (1202, 1002), (1926, 2450), (1927, 2525), (2047, 11525),
    (0, None),
])
def test_altitude_code_ranges(code, metres):
    assert lip.altitude_m(code) == metres
    if metres is not None:
        assert lip.altitude_code(metres) == code


def test_uncertainty_bounds_follow_the_standards_table_from_above():
    # A few rows of the standard's horizontal position accuracy table ("less than ...").
    table = {0: 1.0, 1: 2.0, 2: 3.2, 5: 8.4, 10: 26.8, 20: 186.8, 40: 7310.5, 62: 403802.7}
    for code, bound in table.items():
        assert bound - 1e-9 <= lip.uncertainty_m(code) <= bound * 1.005 + 0.05
    assert lip.uncertainty_m(63) is None
    assert lip.uncertainty_m(lip.uncertainty_code(15.0)) >= 15.0


def test_long_report_with_time_of_position_circle_and_result_code():
    lat_raw, lon_raw = lip.lat_to_raw(-41.2865), lip.lon_to_raw(174.7762)
    bitstring = (
        "01" + "0011"  # long location report
        + "10" + bits(29, 5) + bits(23, 5) + bits(59, 6) + bits(58, 6)  # day 29 23:59:58
        + bits(2, 4) + bits(lon_raw, 25) + bits(lat_raw, 24) + bits(9, 6)  # circle, code 9
        + bits(5, 3) + bits(40, 7) + bits(64, 8)  # velocity 5: 40 -> 44 km/h, 90 degrees
        + "1" + "0" + bits(130, 8)  # ack requested, reason 130
        + bits(6, 5) + bits(8, 6) + bits(77, 8)  # location message reference 77
        + bits(12, 5) + bits(8, 6) + bits(0, 8)  # result code 0 (success)
    )
    report = lip.decode_hex("0A" + to_hex(bitstring))
    assert report.kind == lip.LONG and report.shape == 2
    assert report.time_of_position == (29, 23, 59, 58)
    assert report.lat == pytest.approx(-41.2865, abs=1e-5)
    assert report.lon == pytest.approx(174.7762, abs=1e-5)
    assert report.pos_err_m == pytest.approx(5 * 1.2**9 - 4)
    assert report.speed_kmh == pytest.approx(16 * 1.038**27)
    assert report.direction_deg == 90.0
    assert report.ack_request == 1 and report.reason == 130
    assert report.result_code == 0 and report.type5_value(6) == 77
    assert lip.encode(report) == (bytes.fromhex(to_hex(bitstring)), len(bitstring))


def test_long_no_shape_report_is_nofix_with_its_result_code():
    bitstring = ("01" + "0011" + "01" + "11" + "0000" + "000" + "0" + "0" + bits(21, 8)
                 + bits(12, 5) + bits(8, 6) + bits(14, 8))
    report = lip.decode_hex("0A" + to_hex(bitstring))
    assert report.nofix and report.lat is None
    assert report.time_elapsed == 3 and report.result_code == 14 and report.reason == 21
    out = report.as_dict()
    assert out["nofix"] is True and out["result_code"] == 14 and out["lat"] is None


def test_short_report_with_unknown_error_and_unknown_age_is_nofix():
    report = lip.short_report(51.5, -0.1, pos_err_class=7, time_elapsed=3)
    assert report.nofix and not report.accuracy_unknown
    assert not lip.short_report(51.5, -0.1, pos_err_class=6).nofix


def test_short_report_with_unknown_error_but_known_age_is_a_position():
    """Issue 19: class 7 with real coordinates is a position of unknown accuracy."""
    report = lip.short_report(51.5, -0.1, pos_err_class=7, time_elapsed=0)
    assert not report.nofix and report.accuracy_unknown and report.pos_err_m is None
    assert report.as_dict()["accuracy_unknown"] is True
    zeros = lip.short_report(0.0, 0.0, pos_err_class=7, time_elapsed=0)
    assert zeros.nofix and not zeros.accuracy_unknown


@pytest.mark.parametrize(("hex_text", "reason"), [
    ("0A0FFFEAC249", "truncated"),  # short report cut after the longitude
    ("0A8000", "reserved_pdu_type"),  # PDU type 10
    ("0A44", "unsupported_pdu"),  # extension 0001: immediate location report request
    ("0A4F", "reserved_time_type"),  # long report, time type 11
    ("0A4CB0", "unsupported_shape"),  # long report, no time, shape 11
    ("0A4C1", "truncated"),  # long report, shape 1, no coordinates
    ("82041234", "not_lip"),
    ("0AXYZ", "bad_hex"),
    ("", "empty"),
])
def test_bad_reports_are_rejected_with_a_reason(hex_text, reason):
    with pytest.raises(lip.LipError) as caught:
        lip.decode_hex(hex_text)
    assert caught.value.reason == reason


def test_broken_type5_tail_keeps_the_position_and_warns():
    report = lip.LipReport(lip.LONG, time_type=0, shape=1, lon_raw=-680, lat_raw=4798349,
                           velocity_type=0)
    data, nbits = lip.encode(report)
    broken = to_hex(format(int.from_bytes(data, "big") >> (-nbits % 8), f"0{nbits}b")
                    + bits(12, 5) + bits(40, 6) + bits(3, 8))
    decoded = lip.decode_hex("0A" + broken)
    assert decoded.lon == pytest.approx(-0.0073, abs=1e-5)
    assert decoded.type5 == [] and decoded.warnings


# -- round trips over random reports --------------------------------------------------------------
def _widths(names):
    return {name: st.integers(0, (1 << lip.WIDTHS[name]) - 1) for name in names}


@st.composite
def reports(draw):
    lon_raw = draw(st.integers(-(1 << 24), (1 << 24) - 1))
    lat_raw = draw(st.integers(-(1 << 23), (1 << 23) - 1))
    additional_type = draw(st.integers(0, 1))
    additional = draw(st.integers(0, 255))
    if draw(st.booleans()):
        return lip.LipReport(
            lip.SHORT, lon_raw=lon_raw, lat_raw=lat_raw, time_elapsed=draw(st.integers(0, 3)),
            pos_err_class=draw(st.integers(0, 7)), speed_code=draw(st.integers(0, 127)),
            direction_code=draw(st.integers(0, 15)), additional_type=additional_type,
            additional=additional)
    shape = draw(st.sampled_from(sorted(lip.SHAPE_NAMES)))
    velocity_type = draw(st.integers(0, 7))
    time_type = draw(st.integers(0, 2))
    report = lip.LipReport(
        lip.LONG, time_type=time_type, shape=shape, velocity_type=velocity_type,
        ack_request=draw(st.integers(0, 1)), additional_type=additional_type,
        additional=additional,
        type5=draw(st.lists(st.tuples(st.integers(1, 31), st.just(8), st.integers(0, 255)),
                            max_size=3)))
    if time_type == 1:
        report.time_elapsed = draw(st.integers(0, 3))
    elif time_type == 2:
        report.time_of_position = (draw(st.integers(0, 31)), draw(st.integers(0, 31)),
                                   draw(st.integers(0, 63)), draw(st.integers(0, 63)))
    if shape:
        report.lon_raw, report.lat_raw = lon_raw, lat_raw
        for name, strategy in _widths(lip.SHAPE_LAYOUT[shape]).items():
            setattr(report, name, draw(strategy))
    for name, strategy in _widths(lip.VELOCITY_LAYOUT[velocity_type]).items():
        setattr(report, name, draw(strategy))
    return report


@settings(max_examples=400, deadline=None)
@given(reports())
def test_encode_then_decode_is_the_identity(report):
    data, nbits = lip.encode(report)
    assert lip.decode(data, nbits) == report
    # and with the octet padding a radio adds:
    assert lip.decode(data) == report


@settings(max_examples=200, deadline=None)
@given(reports(), st.data())
def test_every_truncation_is_rejected_or_loses_only_optional_elements(report, data):
    encoded, nbits = lip.encode(report)
    cut = data.draw(st.integers(0, nbits - 1))
    try:
        decoded = lip.decode(encoded, cut)
    except lip.LipError as exc:
        assert exc.reason == "truncated"
    else:  # only a long report's optional type-5 tail may be cut without an error
        assert report.kind == lip.LONG and report.type5
        assert decoded.lat_raw == report.lat_raw and decoded.lon_raw == report.lon_raw
        assert len(decoded.type5) < len(report.type5)


@settings(max_examples=200, deadline=None)
@given(st.floats(-90, 90), st.floats(-180, 180, exclude_max=True))
def test_coordinates_survive_within_half_a_unit(lat, lon):
    report = lip.short_report(lat, lon)
    decoded = lip.decode(*lip.encode(report))
    assert abs(decoded.lat - lat) <= lip.LAT_UNIT_DEG / 2 + 1e-12 or lat > 90 - lip.LAT_UNIT_DEG
    assert abs((decoded.lon - lon + 180) % 360 - 180) <= lip.LON_UNIT_DEG / 2 + 1e-12


# -- the CLI --------------------------------------------------------------------------------------
def test_cli_decode_prints_json_and_no_pid_takes_the_bare_pdu():
    report = lip.short_report(51.4807, -0.0073, speed=5, direction=180, reason=129)
    data, _ = lip.encode(report)
    runner = CliRunner()
    with_pid = runner.invoke(cli, ["airwave", "decode", "0A" + data.hex()])
    bare = runner.invoke(cli, ["airwave", "decode", data.hex(), "--no-pid"])
    assert with_pid.exit_code == 0 and bare.exit_code == 0, with_pid.output + bare.output
    out = json.loads(with_pid.output)
    assert out == json.loads(bare.output)
    assert out["kind"] == "short" and out["nofix"] is False
    assert out["lon"] == pytest.approx(-0.0073, abs=1e-5)
    assert (out["pos_err_m"], out["speed_kmh"], out["direction_deg"], out["reason"]) == \
        (20.0, 5.0, 180.0, 129)
    assert out["time_elapsed"] == "<5 s" and out["result_code"] is None


def test_cli_decode_bad_hex_is_a_clear_error():
    result = CliRunner().invoke(cli, ["airwave", "decode", "0A0FFF"])
    assert result.exit_code != 0 and "truncated" in result.output
