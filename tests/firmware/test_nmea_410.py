"""NMEA 4.10/4.11 output of u-blox M9, M10 and F9 receivers, and the fields those versions define.

Portable (pytest and the MicroPython unix port). The streams are written from the u-blox
interface descriptions (M10 SPG 5.10, F9 HPG 1.32 and M9 SPG 4.04: their NMEA sections), in
each receiver's default configuration with NMEA protocol version 4.11: talker GN for the
combined solution (RMC, VTG, GGA, GSA, GLL, GNS), one GSA per constellation with its NMEA
system id (1 GPS, 2 GLONASS, 3 Galileo, 4 BeiDou, 5 QZSS), GSV under each constellation's own
talker (GP, GL, GA, GB, GQ) ending in its signal id (hexadecimal: ``B`` is BeiDou B2I), and
RMC/GNS ending in the navigational status, which these receivers always send as ``V``: "the
equipment does not provide navigational status" since NMEA 4.10.

Regression (issue 17): before this, every 4.10+ RMC marked its epoch invalid, so these receivers
gave zero valid fixes.

The printed examples in the interface descriptions for RMC and GSA carry the checksums of the
older, shorter sentences (``...,A,V*57`` XORs to 2D), so the sentences here are written from the
field tables with ``nmea()`` computing the checksum; ``test_documented_example_*`` shows both.
"""

from nmea_feed import parse

from tracker.nmea import ALT_UNKNOWN


def nmea(body):
    """``$body*hh\\r\\n`` with the right checksum."""
    if isinstance(body, str):
        body = body.encode()
    x = 0
    for c in body:
        x ^= c
    return b"$" + body + b"*" + ("%02X" % x).encode() + b"\r\n"


def lines(*bodies):
    out = b""
    for body in bodies:
        out += nmea(body)
    return out


# u-blox MAX-M10S, default: GPS + Galileo + BeiDou + QZSS + SBAS, 1 Hz, RMC VTG GGA GSA GSV GLL.
M10_EPOCH = lines(
    "GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.012,,041226,,,A,V",
    "GNVTG,,T,,M,0.012,N,0.022,K,A",
    "GNGGA,101530.00,5130.04521,N,00007.51234,W,1,12,0.68,23.4,M,45.9,M,,",
    "GNGSA,A,3,05,13,15,18,20,23,24,,,,,,1.21,0.68,1.00,1",
    "GNGSA,A,3,04,09,11,36,,,,,,,,,1.21,0.68,1.00,3",
    "GNGSA,A,3,19,20,,,,,,,,,,,1.21,0.68,1.00,4",
    "GNGSA,A,3,,,,,,,,,,,,,1.21,0.68,1.00,5",
    "GPGSV,3,1,10,05,45,123,41,13,60,250,44,15,35,300,38,18,20,050,33,1",
    "GPGSV,3,2,10,20,55,080,45,23,12,190,30,24,40,270,40,29,05,010,,1",
    "GPGSV,3,3,10,44,28,160,37,46,30,200,36,1",
    "GAGSV,1,1,04,04,50,060,42,09,33,140,39,11,22,310,35,36,61,220,44,7",
    "GBGSV,1,1,02,19,40,100,38,20,35,280,36,1",
    "GQGSV,1,1,00,0",
    "GNGLL,5130.04521,N,00007.51234,W,101530.00,A,A",
)

# The same receiver before its first fix (time and date already known from the satellites).
M10_NO_FIX = lines(
    "GNRMC,101531.00,V,,,,,,,041226,,,N,V",
    "GNVTG,,,,,,,,,N",
    "GNGGA,101531.00,,,,,0,00,99.99,,,,,,",
    "GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,1",
    "GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,3",
    "GPGSV,1,1,03,05,45,123,21,13,60,250,19,20,55,080,,1",
    "GNGLL,,,,,101531.00,V,N",
)

# NEO-M9N, default GPS + GLONASS + Galileo + BeiDou, with GNS and ZDA switched on.
M9N_EPOCH = lines(
    "GNRMC,074211.00,A,5129.98765,N,00001.23456,E,2.345,87.65,170325,,,D,V",
    "GNVTG,87.65,T,,M,2.345,N,4.343,K,D",
    "GNGGA,074211.00,5129.98765,N,00001.23456,E,2,12,0.55,31.0,M,45.8,M,,0000",
    "GNGNS,074211.00,5129.98765,N,00001.23456,E,DDDA,21,0.55,31.0,45.8,,0000,V",
    "GNGSA,A,3,02,05,07,13,14,15,17,30,,,,,0.98,0.55,0.81,1",
    "GNGSA,A,3,66,67,75,76,82,,,,,,,,0.98,0.55,0.81,2",
    "GNGSA,A,3,02,10,11,12,24,,,,,,,,0.98,0.55,0.81,3",
    "GNGSA,A,3,23,37,43,,,,,,,,,,0.98,0.55,0.81,4",
    "GPGSV,3,1,11,02,48,069,39,05,28,296,36,07,17,157,31,13,78,105,46,1",
    "GPGSV,3,2,11,14,29,049,34,15,34,211,40,17,15,103,29,20,01,323,,1",
    "GPGSV,3,3,11,30,56,178,43,46,28,160,33,49,31,166,35,1",
    "GLGSV,2,1,06,66,22,039,30,67,70,024,38,75,40,180,37,76,56,280,40,1",
    "GLGSV,2,2,06,82,35,220,33,83,05,260,,1",
    "GAGSV,2,1,05,02,44,200,41,10,33,080,37,11,60,300,42,12,20,150,33,7",
    "GAGSV,2,2,05,24,15,040,30,7",
    "GBGSV,1,1,03,23,55,160,39,37,35,080,36,43,20,300,31,1",
    "GNGLL,5129.98765,N,00001.23456,E,074211.00,A,D",
    "GNZDA,074211.00,17,03,2025,00,00",
)

# ZED-F9P, dual band, RTK float: every constellation on two signals (GPS L1C/A 1 and L2 CL 6,
# GLONASS L1 1 and L2 3, Galileo E1 7 and E5b 2, BeiDou B1I 1 and B2I B).
F9P_EPOCH = lines(
    "GNRMC,140005.00,A,5131.00001,N,00008.99999,W,0.051,,020624,,,F,V",
    "GNVTG,,T,,M,0.051,N,0.094,K,F",
    "GNGGA,140005.00,5131.00001,N,00008.99999,W,5,12,0.49,20.113,M,45.912,M,1.0,0000",
    "GNGSA,A,3,05,13,15,18,20,,,,,,,,0.92,0.49,0.78,1",
    "GNGSA,A,3,70,71,,,,,,,,,,,0.92,0.49,0.78,2",
    "GNGSA,A,3,04,09,,,,,,,,,,,0.92,0.49,0.78,3",
    "GNGSA,A,3,19,,,,,,,,,,,,0.92,0.49,0.78,4",
    "GPGSV,2,1,05,05,45,123,48,13,60,250,50,15,35,300,44,18,20,050,40,1",
    "GPGSV,2,2,05,20,55,080,49,1",
    "GPGSV,1,1,04,05,45,123,44,13,60,250,46,15,35,300,40,18,20,050,37,6",
    "GLGSV,1,1,02,70,40,060,45,71,25,150,41,1",
    "GLGSV,1,1,02,70,40,060,41,71,25,150,38,3",
    "GAGSV,1,1,02,04,50,060,47,09,33,140,45,7",
    "GAGSV,1,1,02,04,50,060,44,09,33,140,42,2",
    "GBGSV,1,1,01,19,40,100,43,1",
    "GBGSV,1,1,01,19,40,100,41,B",
    "GNGLL,5131.00001,N,00008.99999,W,140005.00,A,F",
)


def test_ublox_m10_default_nmea_411_epoch_is_a_valid_fix():
    fixes, p = parse(M10_EPOCH + M10_NO_FIX)
    assert len(fixes) == 2
    f = fixes[0]
    assert f.valid
    assert (f.t, f.ms) == (1796379330, 0)  # 2026-12-04 10:15:30 UTC
    assert (f.lat_e6, f.lon_e6) == (51500754, -125206)
    assert (f.speed_cmps, f.course_cdeg, f.alt_cm) == (1, -1, 2340)
    assert (f.quality, f.mode, f.fix_type) == (1, ord("A"), 3)
    assert f.sats == 13  # GSA per system 7 + 4 + 2 + 0; GGA says 12
    assert f.sats_view == 10 + 4 + 2
    assert f.snr_max == 45
    assert f.acc_cm == 340  # HDOP 0.68 x 5 m, no GST by default
    assert p.stats() == {"sentences": {"RMC": 2, "VTG": 2, "GGA": 2, "GSA": 6, "GSV": 7,
                                       "GLL": 2}, "rejected": {}}
    before = fixes[1]
    assert not before.valid and before.t == 1796379331
    assert before.lat_e6 == 0 and before.alt_cm == ALT_UNKNOWN


def test_ublox_m9n_epoch_with_gns_and_zda():
    fixes, p = parse(M9N_EPOCH)
    assert len(fixes) == 1
    f = fixes[0]
    assert f.valid
    assert f.t == 1742197331  # 2025-03-17 07:42:11 UTC
    assert (f.lat_e6, f.lon_e6) == (51499794, 20576)  # east of Greenwich
    assert (f.quality, f.mode) == (2, ord("D"))
    assert f.sats == 21  # GNS counts beyond GGA's 12
    assert f.sats_view == 11 + 6 + 5 + 3
    assert p.stats()["rejected"] == {}
    assert p.stats()["sentences"]["GNS"] == 1


def test_ublox_f9p_dual_band_rtk_float():
    fixes, p = parse(F9P_EPOCH)
    f = fixes[0]
    assert f.valid
    assert f.t == 1717336805  # 2024-06-02 14:00:05 UTC
    assert (f.quality, f.mode) == (5, ord("F"))
    assert f.alt_cm == 2011  # 20.113 m rounded to the centimetre
    assert f.sats_view == 5 + 2 + 2 + 1  # each constellation once, whatever its signals
    assert f.snr_max == 50
    assert p.stats()["rejected"] == {}


def test_documented_example_rmc_with_its_printed_checksum_is_rejected_and_parses_corrected():
    # u-blox 9 interface description, RMC example, as printed: the 4.10 fields were added to
    # an older example without recomputing its checksum (the XOR is 2D).
    printed = b"$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A,V*57\r\n"
    fixes, p = parse(printed)
    assert fixes == [] and p.stats()["rejected"] == {"checksum": 1}
    fixes, p = parse(printed[:-4] + b"2D\r\n")
    assert fixes[0].valid and fixes[0].course_cdeg == 7752


def test_navigational_status_as_nmea_410_defines_it():
    base = "GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.012,,041226,,,A,"
    for nav, valid in (("V", True), ("S", True), ("C", True), ("", True), ("U", False)):
        fixes, p = parse(nmea(base + nav))
        assert fixes[0].valid == valid, nav
        assert p.stats()["rejected"] == {}, nav
    for bad in ("X", "VV", "1"):
        fixes, p = parse(nmea(base + bad))
        assert fixes == [] and p.stats()["rejected"] == {"bad_field": 1}, bad


def test_status_and_mode_still_decide_before_410_fields():
    cases = (
        ("GNRMC,101530.00,V,5130.04521,N,00007.51234,W,0.0,,041226,,,E,V", False),  # DR, limits
        ("GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.0,,041226,,,E,V", True),  # DR fix
        ("GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.0,,041226,,,N,V", False),
        ("GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.0,,041226,,,R,V", True),  # RTK fixed
        ("GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.0,,041226,,,P,S", True),  # precise
        ("GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.0,,041226,,,S,V", False),  # simulator
    )
    for body, valid in cases:
        fixes, _ = parse(nmea(body))
        assert fixes[0].valid == valid, body


def test_gns_mode_has_one_letter_per_constellation():
    date = nmea("GNZDA,101530.00,04,12,2026,00,00")
    base = "GNGNS,101530.00,5130.04521,N,00007.51234,W,%s,14,0.68,23.4,45.9,,,%s"
    for mode, nav, valid, letter in (
            ("ANNN", "V", True, "A"), ("NNDN", "V", True, "D"), ("NNNN", "V", False, "N"),
            ("AA", "U", False, "A"), ("A", "", True, "A"), ("MNNN", "V", False, "M"),
            ("NSNN", "V", False, "N")):
        fixes, p = parse(nmea(base % (mode, nav)) + date)
        f = fixes[0]
        assert (f.valid, f.mode) == (valid, ord(letter)), mode
        assert (f.sats, f.hdop_x100, f.alt_cm) == (14, 68, 2340)
        assert p.stats() == {"sentences": {"GNS": 1, "ZDA": 1}, "rejected": {}}
    for mode in ("", "aNNN", "A1"):
        fixes, p = parse(nmea(base % (mode, "V")))
        assert fixes == [] and p.stats()["rejected"] == {"bad_field": 1}, mode


def test_gga_quality_beyond_8_and_satellites_beyond_255_are_rejections():
    # Issue 16: these used to make a valid epoch.
    rmc = nmea("GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.0,,041226,,,A,V")
    good = "GNGGA,101530.00,5130.04521,N,00007.51234,W,%s,%s,0.68,23.4,M,45.9,M,,"
    for quality in ("0", "1", "2", "3", "4", "5", "6", "7", "8"):
        _, p = parse(rmc + nmea(good % (quality, "12")))
        assert p.stats()["rejected"] == {}, quality
    for quality, sats in (("9", "12"), ("10", "12"), ("1", "256"), ("1", "999999")):
        fixes, p = parse(rmc + nmea(good % (quality, sats)))
        assert p.stats()["rejected"] == {"bad_field": 1}, (quality, sats)
        assert fixes[0].quality == 0 and fixes[0].sats == 0  # the RMC stands, GGA took nothing
    _, p = parse(rmc + nmea(good % ("1", "255")))
    assert p.stats()["rejected"] == {}


def test_gsa_fix_type_beyond_3_is_a_rejection():
    fixes, p = parse(nmea("GNGSA,A,4,05,13,,,,,,,,,,,1.21,0.68,1.00,1"))
    assert fixes == [] and p.stats()["rejected"] == {"bad_field": 1}


def test_every_sentence_of_the_ublox_streams_is_accounted_for():
    for stream in (M10_EPOCH, M10_NO_FIX, M9N_EPOCH, F9P_EPOCH):
        _, p = parse(stream)
        assert sum(p.stats()["sentences"].values()) == stream.count(b"$")
        for chunk in (1, 7, 50):
            _, q = parse(stream, chunk)
            assert q.stats() == p.stats()
