"""NMEA 0183 sentences as a GNSS receiver writes them (the simulators' side of the UART).

Each sentence function returns one complete line, ``$...*hh\\r\\n``, as bytes (``gsv`` returns
the list of lines of one GSV group). Times are UTC epoch seconds (fractions give
``hhmmss.ss``); positions are decimal degrees, written with five decimals of minutes (about
2 cm), which is what u-blox receivers send in high-precision mode. ``m8_epoch`` writes the burst
a multi-GNSS u-blox M8 sends each second (11 sentences) and ``m8_stream`` an hour of them.
"""

from __future__ import annotations

import datetime as _dt
import math
import random
from collections.abc import Iterator, Sequence


def checksum(body: str | bytes) -> str:
    """The two hex digits of the XOR of every character between ``$`` and ``*`` (text is
    ASCII; bytes, as a receiver reads them, are taken as they are)."""
    value = 0
    for ch in body.encode("ascii") if isinstance(body, str) else body:
        value ^= ch
    return f"{value:02X}"


def sentence(body: str) -> bytes:
    """Frame ``body`` (without ``$``) as a line with its checksum."""
    return f"${body}*{checksum(body)}\r\n".encode("ascii")


def _utc(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(round(t, 2), tz=_dt.UTC)


def _time_field(t: float) -> str:
    when = _utc(t)
    return f"{when:%H%M%S}.{when.microsecond // 10000:02d}"


def _date_field(t: float) -> str:
    return f"{_utc(t):%d%m%y}"


def _angle(value: float, degree_digits: int, positive: str, negative: str) -> tuple[str, str]:
    hemisphere = positive if value >= 0 else negative
    # Work in 1e-5 minutes so rounding never produces 60.00000 minutes.
    units = round(abs(value) * 60 * 100_000)
    degrees, minute_units = divmod(units, 60 * 100_000)
    minutes, fraction = divmod(minute_units, 100_000)
    return f"{degrees:0{degree_digits}d}{minutes:02d}.{fraction:05d}", hemisphere


def latitude(lat: float) -> tuple[str, str]:
    """``ddmm.mmmmm`` and ``N``/``S``."""
    return _angle(lat, 2, "N", "S")


def longitude(lon: float) -> tuple[str, str]:
    """``dddmm.mmmmm`` and ``E``/``W``."""
    return _angle(lon, 3, "E", "W")


def rmc(t: float, lat: float, lon: float, speed_mps: float, course_deg: float,
        talker: str = "GP", valid: bool = True, mode: str = "A") -> bytes:
    """Recommended minimum data (NMEA 2.3+ with mode indicator)."""
    la, ns = latitude(lat)
    lo, ew = longitude(lon)
    knots = speed_mps / 0.514444
    course = math.fmod(course_deg, 360.0) % 360.0
    status = "A" if valid else "V"
    return sentence(f"{talker}RMC,{_time_field(t)},{status},{la},{ns},{lo},{ew},{knots:.3f},"
                    f"{course:.2f},{_date_field(t)},,,{_mode_field(valid, mode)}")


def gga(t: float, lat: float, lon: float, sats: int = 9, hdop: float = 0.9,
        alt_m: float = 45.0, quality: int = 1, talker: str = "GP") -> bytes:
    """Fix data: quality, satellites used, HDOP, altitude."""
    la, ns = latitude(lat)
    lo, ew = longitude(lon)
    return sentence(f"{talker}GGA,{_time_field(t)},{la},{ns},{lo},{ew},{quality},{sats:02d},"
                    f"{hdop:.2f},{alt_m:.1f},M,47.0,M,,")


def gst(t: float, sigma_lat_m: float, sigma_lon_m: float, sigma_alt_m: float = 3.0,
        talker: str = "GP") -> bytes:
    """Pseudorange error statistics: the receiver's own accuracy estimate in metres."""
    rms = math.hypot(sigma_lat_m, sigma_lon_m)
    return sentence(f"{talker}GST,{_time_field(t)},{rms:.1f},,,,{sigma_lat_m:.1f},"
                    f"{sigma_lon_m:.1f},{sigma_alt_m:.1f}")


def _mode_field(valid: bool, mode: str) -> str:
    return mode if valid else "N"


def gll(t: float, lat: float, lon: float, talker: str = "GP", valid: bool = True,
        mode: str = "A") -> bytes:
    """Geographic position, NMEA 2.3+ (time, status and mode indicator)."""
    la, ns = latitude(lat)
    lo, ew = longitude(lon)
    status = "A" if valid else "V"
    return sentence(f"{talker}GLL,{la},{ns},{lo},{ew},{_time_field(t)},{status},"
                    f"{_mode_field(valid, mode)}")


def vtg(course_deg: float, speed_mps: float, talker: str = "GP", valid: bool = True,
        mode: str = "A") -> bytes:
    """Course and speed over ground (true course, knots and km/h, mode indicator)."""
    course = math.fmod(course_deg, 360.0) % 360.0
    knots = speed_mps / 0.514444
    kmh = speed_mps * 3.6
    return sentence(f"{talker}VTG,{course:.2f},T,,M,{knots:.3f},N,{kmh:.3f},K,"
                    f"{_mode_field(valid, mode)}")


def gsa(prns: Sequence[int], pdop: float = 1.6, hdop: float = 0.9, vdop: float = 1.3,
        fix_type: int = 3, talker: str = "GN", system_id: int | None = None) -> bytes:
    """DOP and active satellites: up to 12 PRNs used; ``system_id`` adds the NMEA 4.10 field."""
    if len(prns) > 12:
        raise ValueError("GSA lists at most 12 satellites")
    slots = [f"{p:02d}" for p in prns] + [""] * (12 - len(prns))
    tail = "" if system_id is None else f",{system_id:X}"
    return sentence(f"{talker}GSA,A,{fix_type},{','.join(slots)},{pdop:.2f},{hdop:.2f},"
                    f"{vdop:.2f}{tail}")


def gsv(talker: str, sats: Sequence[tuple[int, int, int, int | None]],
        signal_id: int | None = None) -> list[bytes]:
    """Satellites in view: ``(prn, elevation, azimuth, snr or None)``, four per sentence.

    ``signal_id`` adds the NMEA 4.10 field. No satellites gives the one empty message.
    """
    groups = [sats[i : i + 4] for i in range(0, len(sats), 4)] or [[]]
    tail = "" if signal_id is None else f",{signal_id:X}"
    out = []
    for num, group in enumerate(groups, 1):
        blocks = "".join(f",{prn:02d},{elev:02d},{az:03d},{'' if snr is None else f'{snr:02d}'}"
                         for prn, elev, az, snr in group)
        out.append(sentence(f"{talker}GSV,{len(groups)},{num},{len(sats):02d}{blocks}{tail}"))
    return out


def zda(t: float, talker: str = "GP") -> bytes:
    """Time and date (four-digit year), local zone 00:00."""
    when = _utc(t)
    return sentence(f"{talker}ZDA,{_time_field(t)},{when:%d},{when:%m},{when:%Y},00,00")


def proprietary(body: str = "UBX,00,081350.00,4717.113210,N,00833.915187,E,546.589,G3,2.1,"
                "2.0,0.007,77.52,0.007,,0.92,1.19,0.77,9,0,0") -> bytes:
    """A proprietary sentence (u-blox ``PUBX`` by default)."""
    return sentence(f"P{body}")


_GPS_PRNS = (2, 5, 6, 12, 13, 15, 19, 24, 25, 29)
_GLONASS_PRNS = (65, 66, 72, 73, 74, 80, 81, 88)


def m8_epoch(t: float, lat: float, lon: float, speed_mps: float, course_deg: float,
             rng: random.Random | None = None, alt_m: float = 45.0, valid: bool = True,
             gst_sigma_m: tuple[float, float] | None = (1.8, 2.3)) -> list[bytes]:
    """The 11 sentences a multi-GNSS u-blox M8 (NMEA 4.10) sends for one epoch.

    GNRMC, GNVTG, GNGGA, two GNGSA (GPS, GLONASS), GPGSV x2, GLGSV x2, GNGLL, GNGST.
    """
    rng = rng or random.Random(int(t))
    gps = [(p, rng.randint(5, 85), rng.randint(0, 359), rng.choice((None, *range(18, 48))))
           for p in _GPS_PRNS[:8]]
    glo = [(p, rng.randint(5, 85), rng.randint(0, 359), rng.choice((None, *range(18, 44))))
           for p in _GLONASS_PRNS[:7]]
    used_gps = [p for p, _, _, snr in gps if snr is not None][:12]
    used_glo = [p for p, _, _, snr in glo if snr is not None][:12]
    n_used = len(used_gps) + len(used_glo) if valid else 0
    hdop = round(rng.uniform(0.6, 1.8), 2) if valid else 99.99
    lines = [
        rmc(t, lat, lon, speed_mps, course_deg, talker="GN", valid=valid),
        vtg(course_deg, speed_mps, talker="GN", valid=valid),
        gga(t, lat, lon, sats=min(n_used, 12), hdop=hdop, alt_m=alt_m,
            quality=1 if valid else 0, talker="GN"),
        gsa(used_gps if valid else [], hdop=hdop, fix_type=3 if valid else 1, system_id=1),
        gsa(used_glo if valid else [], hdop=hdop, fix_type=3 if valid else 1, system_id=2),
        *gsv("GP", gps),
        *gsv("GL", glo),
        gll(t, lat, lon, talker="GN", valid=valid),
    ]
    if gst_sigma_m is not None:
        lines.append(gst(t, *gst_sigma_m, talker="GN"))
    return lines


def m8_stream(start_t: float = 1_795_000_000, seconds: int = 3600, lat: float = 51.5007,
              lon: float = -0.0005, seed: int = 1) -> Iterator[bytes]:
    """An hour (by default) of M8 epochs at 1 Hz for an officer walking loops of about 200 m
    across the Greenwich meridian; one line at a time."""
    rng = random.Random(seed)
    for k in range(seconds):
        angle = 2 * math.pi * k / 600
        here_lat = lat + 0.0009 * math.sin(angle)
        here_lon = lon + 0.0014 * math.cos(angle)
        course = (math.degrees(-angle) + 360) % 360
        yield from m8_epoch(start_t + k, here_lat, here_lon, 1.4 + rng.uniform(-0.2, 0.2),
                            course, rng)
