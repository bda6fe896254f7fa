"""NMEA 0183 sentences as a GNSS receiver writes them (the simulators' side of the UART).

Each function returns one complete line, ``$...*hh\\r\\n``, as bytes. Times are UTC epoch
seconds (fractions give ``hhmmss.ss``); positions are decimal degrees, written with five decimals
of minutes (about 2 cm), which is what u-blox receivers send in high-precision mode.
"""

from __future__ import annotations

import datetime as _dt
import math


def checksum(body: str) -> str:
    """The two hex digits of the XOR of every character between ``$`` and ``*``."""
    value = 0
    for ch in body.encode("ascii"):
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
                    f"{course:.2f},{_date_field(t)},,,{mode if valid else 'N'}")


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
