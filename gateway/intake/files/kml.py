"""KML 2.2: Google Earth's ``gx:Track`` and timed ``Placemark`` points.

- ``<gx:Track>`` (also inside ``<gx:MultiTrack>``): a list of ``<when>`` and a list of
  ``<gx:coord>`` (``lon lat [alt]``, space-separated), paired in order; the row of each fix is the
  line of its ``<when>``. Counts that differ leave the unpaired ones as row errors.
- ``<Placemark>`` with a ``<TimeStamp><when>`` and a ``<Point><coordinates>`` (``lon,lat[,alt]``).
- A ``<LineString>`` or a ``<Point>`` without a time, or with only a ``<TimeSpan>``, carries no
  time per point: it is a row error (``no_time``), never given invented times.

A ``<when>`` without a zone is read in ``--timezone`` and is an error without it (the KML
reference leaves such times to the reader); a date without a time of day is an error.
"""

from __future__ import annotations

from gateway.intake.files import SOURCE, Decoded, Options, RowError, xmlstream
from gateway.intake.files.rows import (
    RowValueError,
    coordinate,
    parse_number,
    parse_time,
    zone,
)
from gateway.intake.observation import LOCATION, Observation


def decode(data: bytes, name: str, device_id: str, options: Options) -> Decoded:
    """Observations and row errors of a KML document (see the module docstring)."""
    naive = zone(options.timezone)
    out: list[Observation | RowError] = []
    stack: list[str] = []
    track: dict | None = None
    mark: dict | None = None

    def start(tag: str, attrs: dict[str, str], line: int) -> None:
        nonlocal track, mark
        stack.append(tag)
        if tag == "Track":
            track = {"whens": [], "coords": [], "line": line}
        elif tag == "Placemark":
            mark = {"line": line, "when": None, "point": None, "line_string": False,
                    "span": False, "track": False}

    def end(tag: str, text: str, line: int) -> None:
        nonlocal track, mark
        stack.pop()
        parent = stack[-1] if stack else ""
        if track is not None and tag == "when" and parent == "Track":
            track["whens"].append((text, line))
        elif track is not None and tag == "coord":
            track["coords"].append((text, line))
        elif tag == "Track" and track is not None:
            out.extend(_track(track, name, device_id, naive))
            if mark is not None:
                mark["track"] = True
            track = None
        elif mark is not None and tag == "when" and parent == "TimeStamp":
            mark["when"] = text
        elif mark is not None and tag == "TimeSpan":
            mark["span"] = True
        elif mark is not None and tag == "coordinates" and parent == "Point":
            mark["point"] = text
        elif mark is not None and tag == "LineString":
            mark["line_string"] = True
        elif tag == "Placemark" and mark is not None:
            item = _placemark(mark, name, device_id, naive)
            if item is not None:
                out.append(item)
            mark = None

    xmlstream.read(data, name, start, end)
    if not out:
        out.append(RowError(f"{name}:1", "empty", "no gx:Track and no Placemark with a point"))
    return iter(out)


def _track(track: dict, name: str, device_id: str, naive) -> list[Observation | RowError]:
    out: list[Observation | RowError] = []
    whens, coords = track["whens"], track["coords"]
    for i in range(max(len(whens), len(coords))):
        if i >= len(whens) or i >= len(coords):
            line = coords[i][1] if i < len(coords) else whens[i][1]
            out.append(RowError(f"{name}:{line}", "unpaired",
                                f"gx:Track has {len(whens)} <when> and {len(coords)}"
                                " <gx:coord>: this one has no partner"))
            continue
        (when, line), (coord, _) = whens[i], coords[i]
        out.append(_fix(name, line, device_id, when, coord.split(), naive))
    return out


def _placemark(mark: dict, name: str, device_id: str, naive) -> Observation | RowError | None:
    origin = f"{name}:{mark['line']}"
    if mark["track"]:
        return None  # its gx:Track gave the fixes
    if mark["point"] is None:
        if mark["line_string"]:
            return RowError(origin, "no_time", "a LineString has no time per point; export"
                            " the track as gx:Track (Google Earth) or GPX")
        return None  # a polygon, a folder's label ...: not a position
    if mark["when"] is None:
        detail = ("a TimeSpan is not the time of a fix" if mark["span"]
                  else "a Point without <TimeStamp><when>")
        return RowError(origin, "no_time", detail)
    return _fix(name, mark["line"], device_id, mark["when"], mark["point"].split(","), naive)


def _fix(name: str, line: int, device_id: str, when: str, parts: list[str],
         naive) -> Observation | RowError:
    origin = f"{name}:{line}"
    try:
        if len(parts) < 2:
            raise RowValueError("bad_coordinate", f"coordinate {' '.join(parts)!r}: expected"
                                " longitude, latitude[, altitude]")
        lon = parse_number(parts[0], "longitude", required=True)
        lat = parse_number(parts[1], "latitude", required=True)
        alt = parse_number(parts[2], "altitude") if len(parts) > 2 else None
        assert lat is not None and lon is not None
        coordinate(lat, lon)
        tst = parse_time(when, naive, "<when>")
    except RowValueError as exc:
        return RowError(origin, exc.reason, exc.detail)
    return Observation(kind=LOCATION, source=SOURCE, device_id=device_id, origin=origin,
                       tst=tst, lat=lat, lon=lon, alt_m=alt)
