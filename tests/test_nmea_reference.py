"""The firmware NMEA parser against pynmea2 and exact decimal arithmetic, and under fuzzing.

CPython only. pynmea2 is the reference for what each sentence says (it splits the fields and
checks the checksum); the expected integers are worked out from its field strings with
``Decimal`` so they are exact, and its float properties are checked within one unit as well.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pynmea2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from simulators import nmea_out
from tracker import nmea
from tracker.nmea import ALT_UNKNOWN

# The parser-feeding helpers of the portable tests (tests/firmware/nmea_feed.py).
sys.path.insert(0, str(Path(__file__).resolve().parent / "firmware"))
from nmea_feed import counted, parse

DATA = Path(__file__).resolve().parent / "data" / "nmea"
TALKERS = ["GP", "GL", "GA", "GB", "BD", "GQ", "GI", "GN"]


def one(line: bytes) -> nmea.Fix:
    """The fix of a single sentence, which must be accepted."""
    fixes, p = parse(line)
    assert p.stats()["rejected"] == {}, line
    assert len(fixes) == 1
    return fixes[0]


def e6(value: str, hemisphere: str, degree_digits: int) -> int:
    """Exact micro-degrees of ``ddmm.mmmm`` (round half up), from pynmea2's field strings."""
    degrees = Decimal(value[:degree_digits])
    minutes = Decimal(value[degree_digits:])
    exact = ((degrees + minutes / 60) * 1_000_000).quantize(Decimal(1), ROUND_HALF_UP)
    return -int(exact) if hemisphere in "SW" else int(exact)


def scaled(value: str | float | None, places: int, unknown: int = -1) -> int:
    """``value`` times 10**places, rounded half up; ``unknown`` for an empty field."""
    if value is None or value == "":
        return unknown
    return int((Decimal(str(value)) * 10**places).quantize(Decimal(1), ROUND_HALF_UP))


def course_cdeg(value: str | float | None) -> int:
    c = scaled(value, 2)
    return -1 if c < 0 else c % 36000


def knots_cmps(knots: str | float | None) -> int:
    k = scaled(knots, 3)
    return -1 if k < 0 else (k * 463 + 4500) // 9000


def epoch_s(date: dt.date, time: dt.time) -> int:
    return int(dt.datetime.combine(date, time, tzinfo=dt.UTC).timestamp())


# -- a generated corpus, sentence by sentence against pynmea2 ---------------------------------
def corpus(seed: int = 7, n: int = 150) -> list[bytes]:
    rng = random.Random(seed)
    t0 = dt.datetime(2026, 12, 31, 23, 59, 50, tzinfo=dt.UTC).timestamp()
    lines = []
    for k in range(n):
        t = t0 + k * rng.choice((0.1, 1, 37, 3601, 86399))  # over midnight, months, years
        lat = rng.choice((rng.uniform(-89.9, 89.9), rng.uniform(-1e-4, 1e-4)))
        lon = rng.choice((rng.uniform(-179.9, 179.9), rng.uniform(-1e-4, 1e-4)))
        talker = rng.choice(TALKERS)
        valid = rng.random() > 0.15
        speed = rng.uniform(0, 40)
        course = rng.uniform(0, 359.99)
        lines += [
            nmea_out.rmc(t, lat, lon, speed, course, talker=talker, valid=valid,
                         mode=rng.choice("ADEFR")),
            nmea_out.gga(t, lat, lon, sats=rng.randint(0, 24), hdop=rng.uniform(0.5, 25),
                         alt_m=rng.uniform(-400, 8000), quality=rng.choice((0, 1, 2, 4, 5, 6)),
                         talker=talker),
            nmea_out.gll(t, lat, lon, talker=talker, valid=valid),
            nmea_out.vtg(course, speed, talker=talker, valid=valid),
            nmea_out.gsa(rng.sample(range(1, 33), rng.randint(0, 12)), rng.uniform(1, 9),
                         rng.uniform(0.5, 5), rng.uniform(1, 9), rng.choice((1, 2, 3)),
                         talker=talker, system_id=rng.choice((None, 1, 2, 3, 4))),
            *nmea_out.gsv(talker, [(rng.randint(1, 99), rng.randint(0, 90), rng.randint(0, 359),
                                    rng.choice((None, rng.randint(0, 60))))
                                   for _ in range(rng.randint(0, 14))],
                          signal_id=rng.choice((None, 1, 7))),
            nmea_out.zda(t, talker=talker),
            nmea_out.gst(t, rng.uniform(0, 50), rng.uniform(0, 50), talker=talker),
        ]
    return lines


CORPUS = corpus()


def check_against(msg, fix: nmea.Fix) -> None:
    kind = msg.sentence_type
    if kind in ("RMC", "GGA", "GLL", "GNS"):
        assert fix.lat_e6 == e6(msg.lat, msg.lat_dir, 2)
        assert fix.lon_e6 == e6(msg.lon, msg.lon_dir, 3)
        assert abs(fix.lat_e6 - round(msg.latitude * 1e6)) <= 1
        assert abs(fix.lon_e6 - round(msg.longitude * 1e6)) <= 1
        assert fix.ms == msg.timestamp.microsecond // 1000
    if kind == "RMC":
        assert fix.t == epoch_s(msg.datestamp, msg.timestamp.replace(microsecond=0))
        assert fix.speed_cmps == knots_cmps(msg.spd_over_grnd)
        assert abs(fix.speed_cmps - msg.spd_over_grnd * 51.4444) <= 1
        assert fix.course_cdeg == course_cdeg(msg.true_course)
        assert fix.valid == (msg.status == "A" and msg.mode_indicator not in "NMS"
                             and getattr(msg, "nav_status", "") != "U")  # 4.10: V = none
        assert fix.mode == ord(msg.mode_indicator)
    elif kind == "GGA":
        assert fix.quality == msg.gps_qual
        assert fix.sats == int(msg.num_sats)
        assert fix.hdop_x100 == scaled(msg.horizontal_dil, 2)
        assert fix.alt_cm == scaled(msg.altitude, 2) if msg.altitude is not None else ALT_UNKNOWN
        assert fix.acc_cm == fix.hdop_x100 * 5
        assert not fix.valid  # a time of day without a date
    elif kind == "GNS":
        assert fix.sats == int(msg.num_sats)
        assert fix.hdop_x100 == scaled(msg.hdop, 2)
        assert fix.alt_cm == scaled(msg.altitude, 2)
        assert chr(fix.mode) in msg.mode_indicator
        assert fix.valid is False  # GNS carries no date
    elif kind == "GLL":
        assert fix.mode == ord(msg.faa_mode)
        assert fix.valid is False  # GLL carries no date
    elif kind == "VTG":
        assert fix.course_cdeg == course_cdeg(msg.true_track)
        assert fix.speed_cmps == knots_cmps(msg.spd_over_grnd_kts)
        if msg.spd_over_grnd_kmph is not None:
            assert abs(fix.speed_cmps - msg.spd_over_grnd_kmph / 0.036) <= 1
        assert fix.mode == ord(msg.faa_mode)
    elif kind == "GSA":
        prns = [getattr(msg, f"sv_id{i:02d}") for i in range(1, 13)]
        assert fix.sats == sum(1 for p in prns if p)
        assert fix.fix_type == int(msg.mode_fix_type)
        assert fix.pdop_x100 == scaled(msg.pdop, 2)
        assert fix.hdop_x100 == scaled(msg.hdop, 2)
        assert fix.vdop_x100 == scaled(msg.vdop, 2)
    elif kind == "GSV":
        assert fix.sats_view == int(msg.num_sv_in_view)
        snrs = [getattr(msg, f"snr_{i}", "") for i in range(1, 5)]
        assert fix.snr_max == max((int(s) for s in snrs if s), default=-1)
    elif kind == "ZDA":
        assert fix.t == epoch_s(dt.date(int(msg.year), int(msg.month), int(msg.day)),
                                msg.timestamp.replace(microsecond=0))
    elif kind == "GST":
        slat = scaled(msg.std_dev_latitude, 2)
        slon = scaled(msg.std_dev_longitude, 2)
        assert fix.acc_cm == int(Decimal(slat * slat + slon * slon).sqrt())


def test_every_generated_sentence_matches_pynmea2() -> None:
    kinds = set()
    for line in CORPUS:
        msg = pynmea2.parse(line.decode().strip(), check=True)
        kinds.add(msg.sentence_type)
        check_against(msg, one(line))
    assert kinds == {"RMC", "GGA", "GLL", "VTG", "GSA", "GSV", "ZDA", "GST"}


EDGE_CASES = [
    # hemispheres and the meridian/equator, exactly
    "GPRMC,000000.00,A,0000.00001,S,00000.00001,W,0.000,0.00,010100,,,A",
    "GNGGA,120000.00,8959.99999,N,17959.99999,E,4,12,0.50,-12.3,M,0.0,M,1.2,0001",
    "GAGLL,0100.00000,S,00000.50000,E,235959.99,A,A",
    # empty fields, status V, NMEA 4.11 nav status and system ids
    "GPRMC,081836,V,,,,,,,130998,,,N",
    "GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A,V",
    "GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A,U",
    "GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,D,S",
    "GNGNS,074211.00,5129.98765,N,00001.23456,E,DDDA,21,0.55,31.0,45.8,,0000,V",
    "GPGNS,224749.00,3333.4268304,N,11153.3538273,W,D,19,0.6,406.110,-26.294,6.0,0138",
    "GPVTG,,T,,M,,N,,K,N",
    "GNGSA,A,3,80,71,73,79,69,,,,,,,,1.83,1.09,1.47,2",
    "GBGSV,1,1,01,07,45,100,47,5",
    "GPZDA,160012.71,11,03,2004,-1,00",
    "GPGST,172814.0,0.006,0.023,0.020,273.6,0.023,0.020,0.031",
]


@pytest.mark.parametrize("body", EDGE_CASES)
def test_hand_made_edge_cases_match_pynmea2(body: str) -> None:
    line = nmea_out.sentence(body)
    msg = pynmea2.parse(line.decode().strip(), check=True)
    fix = one(line)
    if msg.sentence_type in ("RMC", "GGA", "GLL") and not msg.lat:
        assert (fix.lat_e6, fix.lon_e6, fix.valid) == (0, 0, False)
        return
    check_against(msg, fix)


# -- real-shaped streams ------------------------------------------------------------------------
def test_ublox_cold_start_into_the_new_year_on_the_greenwich_meridian() -> None:
    data = (DATA / "ublox_m8_cold_start_new_year.nmea").read_bytes()
    fixes, p = parse(data)
    assert p.stats() == {"sentences": {"RMC": 7, "VTG": 7, "GGA": 7, "GSA": 14, "GSV": 22,
                                       "GLL": 7, "proprietary": 4, "unknown": 4},
                         "rejected": {"noise": 1}}
    assert [f.valid for f in fixes] == [False] * 3 + [True] * 4
    assert [f.t for f in fixes[2:]] == [1798761598 + k for k in range(5)]  # 31 Dec -> 1 Jan
    assert [f.lon_e6 for f in fixes[3:]] == [-40, -10, 20, 50]
    assert all(f.lat_e6 == 51477811 and f.sats_view == 15 for f in fixes[3:])
    for line in data.split(b"\n"):
        text = line.strip(b"\r\x00").decode()
        if text:
            pynmea2.parse(text, check=True)  # the reference agrees every line is well formed


def test_older_gps_only_receiver_with_a_corrupt_line_and_a_lost_line_break() -> None:
    data = (DATA / "sirf_gps_only_rio.nmea").read_bytes()
    fixes, p = parse(data)
    assert p.stats() == {"sentences": {"RMC": 5, "GGA": 5, "GSA": 5, "GSV": 9},
                         "rejected": {"checksum": 1}}
    assert [f.t for f in fixes] == [1781512559 + k for k in range(5)]
    assert all(f.valid and f.lon_e6 == -43210487 and f.sats == 7 for f in fixes)
    assert [f.lat_e6 for f in fixes] == [-22951915, -22951905, -22951895, -22951885, -22951875]
    assert fixes[0].snr_max == 44 and fixes[0].hdop_x100 == 120 and fixes[0].alt_cm == 2840


def test_an_hour_of_m8_output_gives_one_valid_fix_per_second() -> None:
    lines = list(nmea_out.m8_stream(seconds=600))
    fixes, p = parse(b"".join(lines), chunk=256)
    assert len(fixes) == 600 and all(f.valid for f in fixes)
    assert [f.t for f in fixes] == list(range(1_795_000_000, 1_795_000_600))
    assert sum(p.stats()["sentences"].values()) == len(lines) == 6600
    assert {f.lon_e6 > 0 for f in fixes} == {True, False}  # both sides of Greenwich


# -- fuzzing --------------------------------------------------------------------------------------
SAMPLE = b"".join(CORPUS[:40])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=97))
def test_arbitrary_bytes_never_raise_and_every_dollar_is_accounted(data: bytes, chunk: int):
    whole, p = parse(data)
    assert counted(p) == data.count(b"$")
    split, q = parse(data, chunk)
    assert q.stats() == p.stats()
    assert [f.as_tuple() for f in split] == [f.as_tuple() for f in whole]


mutation = st.tuples(st.integers(min_value=0, max_value=len(SAMPLE) - 1),
                     st.sampled_from(["insert", "delete", "replace"]), st.binary(max_size=3))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, max_size=8), st.integers(min_value=1, max_value=80))
@example([(70, "insert", b"\x00")], 1)  # found by hypothesis: a NUL cutting a checksum, byte-fed
def test_mutated_sentences_are_rejected_or_parsed_never_raise(mutations, chunk: int) -> None:
    data = bytearray(SAMPLE)
    for at, how, blob in sorted(mutations, reverse=True):
        if how == "insert":
            data[at:at] = blob
        elif how == "delete":
            del data[at : at + len(blob) + 1]
        else:
            data[at : at + len(blob)] = blob
    data = bytes(data)
    whole, p = parse(data)
    assert counted(p) == data.count(b"$")
    split, q = parse(data, chunk)
    assert q.stats() == p.stats()
    assert [f.as_tuple() for f in split] == [f.as_tuple() for f in whole]
    for fix in whole:
        if fix.valid:
            assert -90_000_000 <= fix.lat_e6 <= 90_000_000
            assert -180_000_000 <= fix.lon_e6 <= 180_000_000
            assert fix.t > 0


NUMBER = re.compile(r"(\d+)\.?\d*|\.\d+")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789.-+ e_", max_size=12), st.integers(min_value=0, max_value=6))
@example(".0", 0)  # found by hypothesis: a fraction rounded away was once an error
@example(".", 0)
@example("5.", 2)
def test_the_number_reader_rounds_like_decimal_or_refuses(text: str, places: int) -> None:
    """Digits with at most one dot, at most 9 digits before the dot once scaled; else an error."""
    raw = text.encode()
    match = NUMBER.fullmatch(text)
    try:
        got = nmea._udec(raw, 0, len(raw), places)
    except ValueError:
        got = "error"
    if match is None or len(match.group(1) or "") + places > 9:
        assert got == "error"
    else:
        assert got == scaled(text, places)


# -- the command ----------------------------------------------------------------------------------
@pytest.mark.micropython
def test_nmea_parse_prints_the_same_json_on_cpython_and_micropython(micropython) -> None:
    import json

    from click.testing import CliRunner

    from hotspots.cli import cli

    path = DATA / "ublox_m8_cold_start_new_year.nmea"
    on_cpython = CliRunner().invoke(cli, ["nmea", "parse", str(path)])
    on_micropython = CliRunner().invoke(cli, ["nmea", "parse", "--micropython", str(path)])
    assert on_cpython.exit_code == 0 and on_micropython.exit_code == 0, on_micropython.output
    assert on_micropython.output == on_cpython.output
    rows = [json.loads(line) for line in on_cpython.output.splitlines()]
    assert rows[-1] == {"sentences": {"GGA": 7, "GLL": 7, "GSA": 14, "GSV": 22, "RMC": 7,
                                      "VTG": 7, "proprietary": 4, "unknown": 4},
                        "rejected": {"noise": 1}}
    assert rows[0] == {"t": None, "ms": 0, "valid": False, "lat": None, "lon": None,
                       "speed_mps": None, "course": None, "alt_m": None, "fix": 0, "sats": 0,
                       "hdop": 99.99, "acc_m": 499.95}
    assert rows[3]["lat"] == 51.477811 and rows[3]["lon"] == -0.00004
    assert rows[3]["t"] == 1798761599 and rows[3]["valid"] is True
