"""Reading one row's values: times with their zones, numbers, the row's origin.

Shared by the file decoders so that every format reads a time or a number the same way and
fails with the same reasons.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class RowValueError(ValueError):
    """A value in a row that cannot be read; ``reason`` is a counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_EPOCH_DIGITS = re.compile(r"^\d{9,13}(\.\d+)?$")


def zone(name: str | None) -> dt.tzinfo | None:
    """The zone called ``name`` (IANA, or ``UTC``); None for None.

    :raises ValueError: for a name the system's zone database does not know
    """
    if name is None:
        return None
    if name.upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as"
                         " Europe/London, or UTC") from None


def parse_time(text: str, naive_zone: dt.tzinfo | None, what: str = "time") -> int:
    """UTC epoch seconds (fractions dropped) from an ISO 8601 date-time or epoch digits.

    Accepts ``2026-12-04T09:15:02Z``, ``...02.345+01:00``, ``2026-12-04 09:15:02`` and epoch
    seconds or milliseconds (13 digits). A time without a zone is read in ``naive_zone``; when
    that is None it is an error, since guessing an hour wrong moves every fix by an hour.

    :raises RowValueError: ``no_time``, ``bad_time`` or ``no_zone``
    """
    text = (text or "").strip()
    if not text:
        raise RowValueError("no_time", f"no {what}")
    if _EPOCH_DIGITS.match(text):
        value = float(text)
        return int(value / 1000 if len(text.split(".")[0]) == 13 else value)
    iso = text.replace("Z", "+00:00").replace("z", "+00:00")
    if re.match(r"^\d{4}-\d{2}-\d{2}$", iso):
        raise RowValueError("bad_time", f"{what} {text!r} is a date without a time of day")
    try:
        value = dt.datetime.fromisoformat(iso)
    except ValueError:
        value = _other_layouts(text)
        if value is None:
            raise RowValueError("bad_time", f"cannot read {what} {text!r}: use ISO 8601"
                                " (2026-12-04T09:15:02Z) or epoch seconds") from None
    if value.tzinfo is None:
        if naive_zone is None:
            raise RowValueError("no_zone", f"{what} {text!r} has no time zone: give"
                                " --timezone (for example Europe/London or UTC)")
        if isinstance(naive_zone, ZoneInfo):
            value = value.replace(tzinfo=naive_zone, fold=0)
        else:
            value = value.replace(tzinfo=naive_zone)
    return math.floor(value.timestamp())


#: Layouts exports use besides ISO 8601 (day first, as UK and European tools write them).
_LAYOUTS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S",
            "%d-%m-%Y %H:%M:%S", "%Y%m%d%H%M%S")


def _other_layouts(text: str) -> dt.datetime | None:
    for layout in _LAYOUTS:
        try:
            return dt.datetime.strptime(text, layout)
        except ValueError:
            continue
    return None


def parse_number(text: str | None, what: str, required: bool = False) -> float | None:
    """A finite number, or None for an empty optional value.

    :raises RowValueError: ``bad_number`` (or ``no_<what>`` when required and empty)
    """
    if text is None or not text.strip():
        if required:
            raise RowValueError(f"no_{what}", f"no {what}")
        return None
    try:
        value = float(text.strip())
    except ValueError:
        raise RowValueError("bad_number", f"{what} {text.strip()[:40]!r} is not a number"
                            ) from None
    if not math.isfinite(value):
        raise RowValueError("bad_number", f"{what} {text.strip()[:40]!r} is not finite")
    return value


def coordinate(lat: float, lon: float) -> tuple[float, float]:
    """``(lat, lon)`` when both are WGS84 degrees in range.

    :raises RowValueError: ``bad_coordinate``
    """
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise RowValueError("bad_coordinate", f"lat {lat}, lon {lon} is not on Earth"
                            " (lat -90..90, lon -180..180)")
    return lat, lon
