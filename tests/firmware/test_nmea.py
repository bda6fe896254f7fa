"""NMEA parsing on the device: sentences, epochs, framing and accounting.

Portable: runs under pytest on CPython and on the MicroPython unix port (tests/firmware/mprun.py),
so plain functions and asserts only. Sentences are written by hand here (with ``nmea()`` adding
the checksum) because the simulators' writer is CPython-only.
"""

from nmea_feed import counted, parse

from tracker import nmea as nmea_module
from tracker.nmea import ALT_UNKNOWN, NmeaParser

try:
    import micropython
except ImportError:  # CPython
    micropython = None


def nmea(body):
    """``$body*hh\\r\\n`` with the right checksum."""
    if isinstance(body, str):
        body = body.encode()
    x = 0
    for c in body:
        x ^= c
    return b"$" + body + b"*" + ("%02X" % x).encode() + b"\r\n"


RMC = nmea("GPRMC,123519.00,A,4807.03800,N,01131.00000,E,022.4,084.4,230394,003.1,W,A")
GGA = nmea("GPGGA,123519.00,4807.03800,N,01131.00000,E,1,08,0.90,545.4,M,46.9,M,,")
GST = nmea("GPGST,123519.00,2.0,,,,1.20,1.60,3.0")


# -- one fix per epoch -----------------------------------------------------------------------
def test_rmc_gga_gst_merge_into_one_exact_fix():
    fixes, p = parse(RMC + GGA + GST)
    assert len(fixes) == 1
    f = fixes[0]
    assert f.valid
    assert f.t == 764426119  # 1994-03-23 12:35:19 UTC
    assert f.ms == 0
    assert (f.lat_e6, f.lon_e6) == (48117300, 11516667)
    assert f.speed_cmps == 1152  # 22.4 knots
    assert f.course_cdeg == 8440
    assert f.alt_cm == 54540
    assert (f.quality, f.sats, f.hdop_x100, f.mode) == (1, 8, 90, ord("A"))
    assert f.acc_cm == 200  # sqrt(1.2^2 + 1.6^2) m from GST
    assert p.stats() == {"sentences": {"RMC": 1, "GGA": 1, "GST": 1}, "rejected": {}}


def test_accuracy_from_hdop_without_gst():
    fixes, _ = parse(RMC + GGA)
    assert fixes[0].acc_cm == 450  # HDOP 0.9 x 5 m


def test_all_four_hemispheres_greenwich_and_equator():
    cases = [
        ("5130.00000,N,00007.50000,W", 51500000, -125000),  # London, west of Greenwich
        ("5130.00000,N,00007.50000,E", 51500000, 125000),  # east of Greenwich
        ("3352.12000,S,15112.60000,E", -33868667, 151210000),  # Sydney
        ("2254.24000,S,04310.56000,W", -22904000, -43176000),  # Rio
        ("0000.00060,N,00000.00060,W", 10, -10),  # a few cm from the equator and meridian
        ("0000.00060,S,00000.00060,E", -10, 10),
        ("9000.00000,N,18000.00000,W", 90000000, -180000000),
    ]
    for pos, lat, lon in cases:
        fixes, p = parse(nmea("GPGGA,120000.00," + pos + ",1,05,1.0,10.0,M,0,M,,"))
        assert (fixes[0].lat_e6, fixes[0].lon_e6) == (lat, lon), pos
        assert p.stats()["rejected"] == {}


def test_out_of_range_angles_are_rejected():
    for pos in ("9000.00100,N,00000.0,E", "0000.0,N,18000.00100,E", "4860.00000,N,00000.0,E",
                "4807.038,X,01131.000,E", "4807.038,N,01131.000,", "48.07038,N,01131.000,E",
                # a decimal point before the two minute digits (found by review: once accepted)
                "12.5,N,00000.0,E", "1.5,N,00000.0,E", "12.,N,00000.0,E", "00.0,N,00000.0,E",
                "4807.038,N,1.5,E", "4807.038,N,12.5,E"):
        fixes, p = parse(nmea("GPGGA,120000.00," + pos + ",1,05,1.0,10.0,M,0,M,,"))
        assert p.stats()["rejected"] == {"bad_field": 1}, pos
        assert fixes == []


def test_midnight_and_year_end_with_dates_from_rmc():
    data = (nmea("GPRMC,235959.00,A,5130.0,N,00000.5,W,0.0,0.0,311226,,,A")
            + nmea("GPRMC,000000.00,A,5130.0,N,00000.5,W,0.0,0.0,010127,,,A"))
    fixes, _ = parse(data)
    assert [f.t for f in fixes] == [1798761599, 1798761600]  # 2026-12-31 23:59:59, 2027-01-01


def test_midnight_without_a_date_sentence_rolls_the_day():
    data = (nmea("GPRMC,235958.00,A,5130.0,N,00000.5,W,0.0,0.0,280224,,,A")
            + nmea("GPGGA,235959.00,5130.0,N,00000.5,W,1,05,1.0,1.0,M,0,M,,")
            + nmea("GPGGA,000000.00,5130.0,N,00000.5,W,1,05,1.0,1.0,M,0,M,,")
            + nmea("GPGGA,000001.50,5130.0,N,00000.5,W,1,05,1.0,1.0,M,0,M,,"))
    fixes, _ = parse(data)
    # 2024-02-28 23:59:58 then into the leap day 29 February
    assert [f.t for f in fixes] == [1709164798, 1709164799, 1709164800, 1709164801]
    assert fixes[3].ms == 500
    assert all(f.valid for f in fixes)


def test_time_going_back_a_little_is_not_midnight():
    data = (nmea("GPRMC,120005.00,A,5130.0,N,00000.5,W,0.0,0.0,150626,,,A")
            + nmea("GPGGA,120004.00,5130.0,N,00000.5,W,1,05,1.0,1.0,M,0,M,,"))
    fixes, _ = parse(data)
    assert fixes[1].t - fixes[0].t == -1


def test_zda_gives_the_date_and_month_end():
    data = (nmea("GPZDA,235959.00,30,04,2026,00,00")
            + nmea("GPGGA,235959.00,5130.0,N,00000.5,W,1,05,1.0,1.0,M,0,M,,")
            + nmea("GPZDA,000000.00,01,05,2026,00,00")
            + nmea("GPGGA,000000.00,5130.0,N,00000.5,W,1,05,1.0,1.0,M,0,M,,"))
    fixes, _ = parse(data)
    assert [f.t for f in fixes] == [1777593599, 1777593600]


def test_impossible_dates_are_rejected():
    for body in ("GPRMC,120000.00,A,5130.0,N,00000.5,W,0.0,0.0,310426,,,A",
                 "GPRMC,120000.00,A,5130.0,N,00000.5,W,0.0,0.0,290227,,,A",
                 "GPRMC,120000.00,A,5130.0,N,00000.5,W,0.0,0.0,001326,,,A",
                 "GPZDA,120000.00,32,01,2026,00,00", "GPRMC,246000.00,A,,,,,,,010126,,,A",
                 "GPRMC,12000,A,,,,,,,010126,,,A"):
        _, p = parse(nmea(body))
        assert p.stats()["rejected"] == {"bad_field": 1}, body


def test_position_without_any_date_is_not_valid():
    fixes, _ = parse(GGA)
    assert len(fixes) == 1 and not fixes[0].valid and fixes[0].t == 0


def test_status_v_and_no_fix_epochs_are_reported_invalid():
    for data in (
        nmea("GPRMC,123519.00,V,4807.038,N,01131.000,E,0.0,0.0,230394,,,N"),
        nmea("GPRMC,123519.00,A,4807.038,N,01131.000,E,0.0,0.0,230394,,,A")
        + nmea("GPGGA,123519.00,4807.038,N,01131.000,E,0,00,99.99,,,,,,"),
        nmea("GPRMC,123519.00,A,4807.038,N,01131.000,E,0.0,0.0,230394,,,N"),
        nmea("GPRMC,123519.00,A,4807.038,N,01131.000,E,0.0,0.0,230394,,,A,U"),  # 4.10 unsafe
        nmea("GPRMC,123519.00,A,4807.038,N,01131.000,E,0.0,0.0,230394,,,A")
        + nmea("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,1"),
        nmea("GPRMC,123519.00,A,4807.038,N,01131.000,E,0.0,0.0,230394,,,A")
        + nmea("GPGLL,4807.038,N,01131.000,E,123519.00,V,N"),
    ):
        fixes, _ = parse(data)
        assert len(fixes) == 1 and not fixes[0].valid, data


def test_cold_start_without_time_gives_invalid_epochs():
    epoch = (nmea("GPRMC,,V,,,,,,,,,,N") + nmea("GPVTG,,,,,,,,,N")
             + nmea("GPGGA,,,,,,0,00,99.99,,,,,,") + nmea("GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99")
             + nmea("GPGSV,1,1,00") + nmea("GPGLL,,,,,,V,N"))
    fixes, p = parse(epoch * 3)
    assert len(fixes) == 3
    assert not any(f.valid for f in fixes)
    assert all(f.t == 0 and f.lat_e6 == 0 and f.alt_cm == ALT_UNKNOWN for f in fixes)
    assert p.stats()["rejected"] == {}


def test_empty_optional_fields_stay_unknown():
    data = (nmea("GPRMC,123519,A,4807.038,N,01131.000,E,,,230394,,")  # NMEA 2.0: no mode
            + nmea("GPGGA,123519,4807.038,N,01131.000,E,1,,,,,,,,"))
    fixes, p = parse(data)
    f = fixes[0]
    assert f.valid and p.stats()["rejected"] == {}
    assert (f.speed_cmps, f.course_cdeg, f.alt_cm, f.hdop_x100, f.acc_cm, f.mode) == (
        -1, -1, ALT_UNKNOWN, -1, -1, 0)


# -- the other sentences and NMEA 4.x fields -------------------------------------------------
def test_multi_gnss_epoch_with_nmea_411_fields():
    data = (
        nmea("GNRMC,083559.40,A,5130.12345,N,00005.54321,W,1.944,270.00,150626,,,D,S")
        + nmea("GNVTG,270.00,T,,M,1.944,N,3.600,K,D")
        + nmea("GNGGA,083559.40,5130.12345,N,00005.54321,W,2,12,0.71,12.3,M,45.1,M,1.0,0123")
        + nmea("GNGSA,A,3,02,05,06,12,13,,,,,,,,1.32,0.71,1.11,1")
        + nmea("GNGSA,A,3,65,66,72,,,,,,,,,,1.32,0.71,1.11,2")
        + nmea("GNGSA,A,3,07,11,,,,,,,,,,,1.32,0.71,1.11,3")
        + nmea("GPGSV,2,1,06,02,13,130,20,05,68,230,32,06,53,107,,12,67,014,45,1")
        + nmea("GPGSV,2,2,06,13,54,221,36,15,05,356,,1")
        + nmea("GPGSV,1,1,03,02,13,130,28,05,68,230,31,12,67,014,33,8")  # L5: same satellites
        + nmea("GLGSV,1,1,04,65,07,013,37,66,74,004,29,72,32,216,40,73,08,270,,1")
        + nmea("GAGSV,1,1,02,07,45,100,47,11,30,200,41,7")
        + nmea("GNGLL,5130.12345,N,00005.54321,W,083559.40,A,D")
        + nmea("GNGST,083559.40,1.1,0.9,0.6,45.0,0.81,0.62,1.4")
        + nmea("GNZDA,083559.40,15,06,2026,00,00"))
    fixes, p = parse(data)
    assert len(fixes) == 1
    f = fixes[0]
    assert f.valid
    assert (f.t, f.ms) == (1781512559, 400)
    assert (f.lat_e6, f.lon_e6) == (51502058, -92387)
    assert (f.speed_cmps, f.course_cdeg, f.alt_cm) == (100, 27000, 1230)
    assert (f.quality, f.mode, f.fix_type) == (2, ord("D"), 3)
    assert f.sats == 12  # GGA 12; GSA lists 5 + 3 + 2 = 10
    assert f.sats_view == 6 + 4 + 2  # GPS counted once across its two signals
    assert f.snr_max == 47
    assert (f.hdop_x100, f.pdop_x100, f.vdop_x100) == (71, 132, 111)
    assert f.acc_cm == 102  # sqrt(0.81^2 + 0.62^2) m
    assert p.stats() == {"sentences": {"RMC": 1, "VTG": 1, "GGA": 1, "GSA": 3, "GSV": 5, "GLL": 1,
                                       "GST": 1, "ZDA": 1}, "rejected": {}}


def test_every_supported_talker_is_accepted():
    for talker in ("GP", "GL", "GA", "GB", "BD", "GQ", "GI", "GN"):
        _, p = parse(nmea(talker + "GSV,1,1,01,02,13,130,20"))
        assert p.stats()["sentences"] == {"GSV": 1}, talker


def test_gsa_satellites_used_when_gga_has_none():
    data = nmea("GNGSA,A,3,02,05,06,12,13,15,19,24,25,29,30,31,1.0,0.6,0.8,1") + nmea(
        "GNGSA,A,3,65,66,72,,,,,,,,,,1.0,0.6,0.8,2")
    fixes, _ = parse(data)
    assert fixes[0].sats == 15 and fixes[0].hdop_x100 == 60


def test_vtg_alone_and_in_the_pre_nmea_2_format():
    fixes, p = parse(nmea("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A"))
    assert (fixes[0].course_cdeg, fixes[0].speed_cmps) == (5470, 283)
    fixes, p = parse(nmea("GPVTG,054.7,034.4,005.5,010.2"))
    assert (fixes[0].course_cdeg, fixes[0].speed_cmps) == (5470, 283)
    fixes, p = parse(nmea("GPVTG,,T,,M,,N,36.0,K,A"))  # km/h only
    assert (fixes[0].course_cdeg, fixes[0].speed_cmps) == (-1, 1000)
    assert p.stats()["rejected"] == {}


def test_gll_old_and_new():
    fixes, _ = parse(nmea("GPGLL,4916.45,N,12311.12,W,225444,A,A")
                     + nmea("GPRMC,225444,A,4916.45,N,12311.12,W,000.5,054.7,191194,020.3,E"))
    assert fixes[0].valid and (fixes[0].lat_e6, fixes[0].lon_e6) == (49274167, -123185333)
    fixes, p = parse(nmea("GPGLL,4916.45,N,12311.12,W"))  # NMEA 1.5: no time or status
    assert (fixes[0].lat_e6, fixes[0].t) == (49274167, 0)
    assert p.stats()["sentences"] == {"GLL": 1}


def test_course_360_is_north_and_lowercase_checksum_is_accepted():
    line = nmea("GPVTG,360.00,T,,M,0.000,N,0.000,K,A")
    fixes, p = parse(line[:-4] + line[-4:-2].lower() + b"\r\n")
    assert fixes[0].course_cdeg == 0 and fixes[0].speed_cmps == 0


def test_numbers_stay_small_ints():
    # Every field is capped at 9 digits with its scale, so products stay below 2**30 on a board.
    big = 2 ** 30
    assert nmea_module._knots_to_cmps(999999999) < big
    assert nmea_module._udec(b"999999.999", 0, 10, 3) == 999999999
    for text, places in ((b"9999999.99", 3), (b"1234567890", 0)):
        try:
            nmea_module._udec(text, 0, len(text), places)
        except ValueError:
            pass
        else:
            raise AssertionError(text)
    fixes, _ = parse(nmea("GPGST,120000.00,2.0,,,,99999.9,99999.9,3.0")
                     + nmea("GPGGA,120000.00,4807.038,N,01131.000,E,1,05,99.99,999999.9,M,,,,"))
    assert fixes[0].acc_cm == 1414200  # clamped to 10 km a side, then worked in metres
    assert fixes[0].alt_cm == 99999990 and fixes[0].alt_cm < big
    assert nmea_module.days_from_civil(2099, 12, 31) == 47481


def test_fixed_helper():
    assert nmea_module.fixed(b"-12.345", 2) == -1235
    assert nmea_module.fixed(b".5", 1) == 5
    assert nmea_module.fixed(b"7", 3) == 7000
    for bad in (b"", b".", b"1.2.3", b"+1", b"1e3", b" 1"):
        try:
            nmea_module.fixed(bad, 2)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)


# -- checksums and rejections ----------------------------------------------------------------
def test_checksum_is_always_verified():
    bad = RMC[:-4] + b"00\r\n"
    missing = RMC[:-5] + b"\r\n"
    not_hex = RMC[:-4] + b"ZZ\r\n"
    fixes, p = parse(bad + missing + not_hex)
    assert fixes == []
    assert p.stats() == {"sentences": {}, "rejected": {"checksum": 1, "no_checksum": 2}}


def test_proprietary_unknown_and_bad_addresses_are_counted():
    data = (nmea("PUBX,00,081350.00,4717.113210,N,00833.915187,E,546.589,G3,2.1,2.0")
            + nmea("PGRME,15.0,M,45.0,M,25.0,M") + nmea("GPTXT,01,01,02,u-blox ag - www.u-blox.com")
            + nmea("IIRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W")
            + nmea("GPRMCX,1") + nmea("GP,1") + nmea("GPRMC"))
    fixes, p = parse(data)
    assert fixes == []
    assert p.stats() == {"sentences": {"proprietary": 2, "unknown": 2},
                         "rejected": {"bad_address": 2, "bad_field": 1}}


# -- framing ---------------------------------------------------------------------------------
STREAM = (b"\x00\x00\xff" + RMC + b"garbage" + GGA + b"\r\n\r\n" + GST[:20] + RMC[:30] + b"\r\n"
          + nmea("GPRMC,123520.00,A,4807.03900,N,01131.00000,E,022.4,084.4,230394,003.1,W,A")
          .rstrip(b"\r\n")
          + nmea("GPGGA,123520.00,4807.03900,N,01131.00000,E,1,08,0.90,545.4,M,,,,")
          .replace(b"\r\n", b"\n") + b"$" + b"X" * 200 + b"\n"
          + nmea("GPRMC,123521.00,A,4807.04000,N,01131.00000,E,022.4,084.4,230394,003.1,W,A")
          .replace(b"\r\n", b"\r"))


def test_noisy_stream_resynchronises_at_each_dollar():
    fixes, p = parse(STREAM)
    assert [f.lat_e6 for f in fixes] == [48117300, 48117317, 48117333]
    assert p.stats() == {
        "sentences": {"RMC": 3, "GGA": 2},
        "rejected": {"noise": 2, "truncated": 1, "no_checksum": 1, "too_long": 1}}


def test_any_split_of_the_stream_gives_the_same_result():
    whole, p = parse(STREAM)
    for chunk in (1, 2, 3, 7, 64, 500):
        fixes, q = parse(STREAM, chunk)
        assert [f.as_tuple() for f in fixes] == [f.as_tuple() for f in whole], chunk
        assert q.stats() == p.stats(), chunk


def test_every_dollar_is_accounted_for_once():
    fixes, p = parse(STREAM)
    assert counted(p) == STREAM.count(b"$")


def test_feed_line_and_feed_with_a_length():
    p = NmeaParser(lambda fix: None)
    p.feed_line(RMC.decode())
    p.feed_line(memoryview(GGA))
    p.feed_line(b"$GPGGA,123519.00,48")  # a line that ends before its checksum
    buf = bytearray(200)
    buf[: len(GST)] = GST
    p.feed(buf, len(GST))
    p.flush()
    assert p.stats() == {"sentences": {"RMC": 1, "GGA": 1, "GST": 1},
                         "rejected": {"no_checksum": 1}}
    assert p.fix.acc_cm == 200


def test_a_bad_field_does_not_touch_the_epoch():
    data = RMC + nmea("GPGGA,123519.00,4807.03800,N,01131.00000,E,1,08,0.90,5x5.4,M,,,,") + GST
    fixes, p = parse(data)
    assert len(fixes) == 1 and fixes[0].valid and fixes[0].alt_cm == ALT_UNKNOWN
    assert p.stats()["rejected"] == {"bad_field": 1}


# -- when fixes are delivered ----------------------------------------------------------------
def epoch(second, lat="4807.03800"):
    t = "1235%02d.00" % second
    return (nmea("GPRMC," + t + ",A," + lat + ",N,01131.00000,E,0.0,0.0,230394,,,A")
            + nmea("GPGGA," + t + "," + lat + ",N,01131.00000,E,1,08,0.90,545.4,M,,,,")
            + nmea("GPGSV,1,1,01,02,13,130,20") + nmea("GPGLL," + lat + ",N,01131.00000,E," + t
                                                       + ",A,A"))


def test_fix_arrives_with_the_last_sentence_of_the_burst_once_learned():
    fixes = []
    p = NmeaParser(lambda fix: fixes.append(fix.t))
    p.feed(epoch(10))
    assert fixes == []  # the end of a burst is not known yet
    p.feed(epoch(11))
    assert fixes == [764426110, 764426111]  # learned: GLL ends the burst
    p.feed(epoch(12))
    assert fixes[-1] == 764426112
    p.flush()
    assert len(fixes) == 3


def test_a_late_sentence_is_dropped_and_the_burst_end_relearned():
    fixes = []
    p = NmeaParser(lambda fix: fixes.append(fix.copy()))
    p.feed(epoch(10) + epoch(11))
    p.feed(epoch(12) + nmea("GPGST,123512.00,2.0,,,,1.20,1.60,3.0"))  # after the learned end
    p.feed(epoch(13) + nmea("GPGST,123513.00,2.0,,,,1.20,1.60,3.0") + epoch(14)
           + nmea("GPGST,123514.00,2.0,,,,1.20,1.60,3.0"))
    p.flush()
    assert [f.t % 100 for f in fixes] == [10, 11, 12, 13, 14]
    assert [f.acc_cm for f in fixes] == [450, 450, 450, 200, 200]  # GST joins once relearned
    assert p.stats()["sentences"]["GST"] == 3


# -- allocation ------------------------------------------------------------------------------
def run_locked(p, lines):
    """Feed ``lines`` with the heap locked on MicroPython (any allocation raises)."""
    if micropython is None:
        for line in lines:
            p.feed(line)
        return
    micropython.heap_lock()
    try:
        for line in lines:
            p.feed(line)
    finally:
        micropython.heap_unlock()


def test_skipped_sentences_allocate_nothing():
    lines = [nmea("PUBX,00,081350.00,4717.113210,N,00833.915187,E,546.589,G3,2.1,2.0"),
             nmea("GPTXT,01,01,02,ANTSTATUS=OK"), nmea("IIMWV,045.0,R,12.6,N,A"),
             RMC[:-4] + b"00\r\n"]
    p = NmeaParser(lambda fix: None)
    p.feed(lines[0])  # the first call may set up the interpreter's caches
    run_locked(p, lines * 20)
    assert p.stats() == {"sentences": {"proprietary": 21, "unknown": 40},
                         "rejected": {"checksum": 20}}


def test_parsing_a_burst_allocates_nothing():
    # On a 32-bit board the epoch time (> 2**30) is one big integer per epoch, built in _emit;
    # on the 64-bit unix port even that is a small int.
    count = [0]

    def on_fix(fix):
        count[0] += 1

    p = NmeaParser(on_fix)
    lines = [epoch(s) for s in range(1, 6)]
    p.feed(epoch(0))
    run_locked(p, lines)
    p.flush()
    assert count[0] == 6
    assert p.stats() == {"sentences": {"RMC": 6, "GGA": 6, "GSV": 6, "GLL": 6}, "rejected": {}}
