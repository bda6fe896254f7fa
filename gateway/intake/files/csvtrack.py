"""CSV track exports: one fix per row, from body-worn cameras, dash cams and other systems.

Columns are found by their header, case and spacing ignored, from the names exports use:

=============  ===============================================================================
field          headers recognised (first match wins)
=============  ===============================================================================
``time``       timestamp, datetime, date time, date/time, time (utc), utc time, gps time,
               recorded, time
``date``       date (joined with a ``time`` column holding only a time of day)
``lat``        latitude, lat, gps latitude, latitude (deg)
``lon``        longitude, lon, lng, long, gps longitude, longitude (deg)
``acc``        accuracy, accuracy (m), horizontal accuracy, hacc, acc, hdop (then x 5 m)
``speed``      speed (m/s), speed_mps (m/s); speedkph, speed (km/h), speed_kmh (km/h);
               speed (mph), speed_mph (mph); speed (unit unknown: not read)
``course``     heading, course, bearing, direction
``alt``        altitude, alt, elevation, ele
=============  ===============================================================================

A file with other headers is read with a mapping, ``--columns time=Date Time,lat=GPS Lat,...``
(fields as above plus ``speed_kmh``, ``speed_mph``, ``speed_mps`` and ``hdop`` to state the
unit). A file delimited by ``;`` or tabs may write numbers with a decimal comma (``51,5054``).
Times follow :func:`gateway.intake.files.rows.parse_time`: a time without a zone needs
``--timezone``. The row of a fix is its line in the file (the header is line 1).

Header names seen in public descriptions of exports: a dash camera's ``Datetime, Latitude,
Longitude, FixType, SatCount, Altitude, SpeedKph, Heading``; body-worn camera systems (Axon,
Motorola VideoManager) publish no fixed GPS CSV layout, so their exports are read by header
name or with ``--columns``.
"""

from __future__ import annotations

import csv
import io
import re

from gateway.intake.files import SOURCE, Decoded, FileImportError, Options, RowError
from gateway.intake.files.rows import (
    RowValueError,
    coordinate,
    parse_number,
    parse_time,
    zone,
)
from gateway.intake.observation import LOCATION, Observation

#: Field -> normalised header names, in order of preference.
HEADERS: dict[str, tuple[str, ...]] = {
    "time": ("timestamp", "datetime", "date time", "date/time", "time (utc)", "utc time",
             "gps time", "timestamp (utc)", "recorded", "recorded at", "time"),
    "date": ("date", "utc date", "gps date"),
    "lat": ("latitude", "lat", "gps latitude", "latitude (deg)", "gps lat"),
    "lon": ("longitude", "lon", "lng", "long", "gps longitude", "longitude (deg)", "gps long",
            "gps lon"),
    "acc": ("accuracy", "accuracy (m)", "horizontal accuracy", "hacc", "acc", "acc_m"),
    "hdop": ("hdop",),
    "speed_mps": ("speed (m/s)", "speed_mps", "speed m/s"),
    "speed_kmh": ("speedkph", "speed (km/h)", "speed_kmh", "speed kph", "speed (kph)",
                  "speed km/h"),
    "speed_mph": ("speed (mph)", "speed_mph", "speedmph", "speed mph"),
    "course": ("heading", "course", "bearing", "direction", "heading (deg)", "course (deg)"),
    "alt": ("altitude", "alt", "elevation", "ele", "altitude (m)"),
}
FIELDS = tuple(HEADERS)
_SPEED = {"speed_mps": 1.0, "speed_kmh": 1 / 3.6, "speed_mph": 0.44704}
UERE_M = 5.0
_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")


def normalise(header: str) -> str:
    """Header comparison key: case, surrounding blanks, BOM and repeated blanks ignored."""
    return re.sub(r"\s+", " ", header.replace("\ufeff", "").strip().lower())


def parse_mapping(text: str) -> dict[str, str]:
    """``time=Date Time,lat=GPS Lat`` -> ``{"time": "Date Time", "lat": "GPS Lat"}``.

    :raises FileImportError: an unknown field or a pair without ``=``
    """
    mapping = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        field, sep, header = pair.partition("=")
        field = field.strip()
        if not sep or not header.strip():
            raise FileImportError(f"column mapping {pair!r}: write field=Header")
        if field not in FIELDS:
            raise FileImportError(f"column mapping: unknown field {field!r}; known:"
                                  f" {', '.join(FIELDS)}")
        mapping[field] = header.strip()
    return mapping


def columns(header: list[str], mapping: dict[str, str] | None) -> dict[str, int]:
    """Field -> column index from a header row and an optional explicit mapping.

    :raises FileImportError: a mapped header that is not in the file, or no time/lat/lon
    """
    keys = [normalise(h) for h in header]
    found: dict[str, int] = {}
    for field, names in HEADERS.items():
        for name in names:
            if name in keys and keys.index(name) not in found.values():
                found[field] = keys.index(name)
                break
    for field, name in (mapping or {}).items():
        key = normalise(name)
        if key not in keys:
            raise FileImportError(f"column mapping {field}={name!r}: no such column; the"
                                  f" header has {', '.join(repr(h) for h in header)}")
        found = {f: i for f, i in found.items() if i != keys.index(key)}
        found[field] = keys.index(key)
    if "time" in found and "date" in found and found["date"] == found["time"]:
        del found["date"]
    missing = [f for f in ("time", "lat", "lon") if f not in found]
    if missing:
        raise FileImportError(
            f"no column for {', '.join(missing)} in the header"
            f" ({', '.join(repr(h) for h in header)}); name them with --columns, for example"
            " --columns 'time=Date Time,lat=GPS Lat,lon=GPS Long'")
    return found


def decode(data: bytes, name: str, device_id: str, options: Options) -> Decoded:
    """Observations and row errors of a CSV export (see the module docstring).

    :raises FileImportError: not text, or a header without time and position columns
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", "replace")  # Excel's default on Windows
    lines = io.StringIO(text, newline="")
    first = text.split("\n", 1)[0]
    delimiter = options.delimiter or _sniff(first)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise FileImportError(f"{name}: empty file") from None
    except csv.Error as exc:
        raise FileImportError(f"{name}: header line: {exc}") from None
    index = columns(header, options.columns)
    naive = zone(options.timezone)
    out: list[Observation | RowError] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.append(RowError(f"{name}:{reader.line_num}", "bad_row", str(exc)))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if delimiter != ",":
            # Exports written with ';' or tabs come from locales with a decimal comma.
            row = [c.replace(",", ".") if _DECIMAL_COMMA.match(c) else c for c in row]
        out.append(_row(row, index, f"{name}:{reader.line_num}", device_id, naive))
    return iter(out)


def _sniff(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _row(row: list[str], index: dict[str, int], origin: str, device_id: str,
         naive) -> Observation | RowError:
    def cell(field: str) -> str | None:
        i = index.get(field)
        return row[i] if i is not None and i < len(row) else None

    try:
        when = cell("time") or ""
        if cell("date") and re.fullmatch(r"\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*", when):
            when = f"{cell('date').strip()} {when.strip()}"
        tst = parse_time(when, naive)
        lat = parse_number(cell("lat"), "latitude", required=True)
        lon = parse_number(cell("lon"), "longitude", required=True)
        assert lat is not None and lon is not None
        coordinate(lat, lon)
        acc = parse_number(cell("acc"), "accuracy")
        hdop = parse_number(cell("hdop"), "hdop")
        if acc is None and hdop is not None:
            acc = round(hdop * UERE_M, 1)
        speed = None
        for field, factor in _SPEED.items():
            value = parse_number(cell(field), field)
            if value is not None:
                speed = round(value * factor, 2)
                break
        course = parse_number(cell("course"), "course")
        alt = parse_number(cell("alt"), "altitude")
    except RowValueError as exc:
        return RowError(origin, exc.reason, exc.detail)
    return Observation(kind=LOCATION, source=SOURCE, device_id=device_id, origin=origin,
                       tst=tst, lat=lat, lon=lon, acc_m=acc, speed_mps=speed,
                       course_deg=course, alt_m=alt)
