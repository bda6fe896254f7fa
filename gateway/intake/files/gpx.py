"""GPX 1.0 and 1.1 track points with a time.

What writers put where (all read here):

- ``<trkpt lat lon>`` with ``<ele>``, ``<time>`` (ISO 8601; the GPX schema says UTC, so a time
  without a zone is read as UTC), ``<hdop>``;
- speed and course: GPX 1.0 has ``<speed>`` (m/s) and ``<course>`` in the point, which
  GPSLogger still writes; OsmAnd writes ``<extensions><speed>`` and ``<heading>``; Garmin writes
  ``<extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>`` / ``<gpxtpx:course>``;
- accuracy: an ``hdop`` times 5 m (the firmware's rule for receivers without GST), except in
  files whose ``creator`` is OsmAnd, which writes the phone's accuracy in metres into
  ``<hdop>``.

Only track points (``trkpt``) are where the device was. Route points (``rtept``) are a plan and
waypoints (``wpt``) marks that may have been loaded from elsewhere: they are counted as skipped
(``not_a_fix``), not stored. A track point without ``<time>`` cannot be placed in a patrol and
is a row error (``no_time``), as is one with an unreadable coordinate or time. The row is the
line the point starts on.
"""

from __future__ import annotations

import datetime as dt

from gateway.intake.files import SOURCE, Decoded, Options, RowError, xmlstream
from gateway.intake.files.rows import RowValueError, coordinate, parse_number, parse_time
from gateway.intake.observation import LOCATION, Observation

#: Metres of horizontal error per unit of HDOP (firmware/tracker/nmea.py, _UERE_CM).
UERE_M = 5.0
POINTS = ("trkpt", "rtept", "wpt")
#: Child elements whose text is kept for the point being read.
FIELDS = ("time", "ele", "hdop", "speed", "course", "heading", "sat")


def decode(data: bytes, name: str, device_id: str, options: Options) -> Decoded:
    """Observations and row errors of a GPX document (see the module docstring)."""
    out: list[Observation | RowError] = []
    state: dict = {"point": None, "creator": ""}

    def start(tag: str, attrs: dict[str, str], line: int) -> None:
        if tag == "gpx":
            state["creator"] = attrs.get("creator", "")
        elif tag in POINTS and state["point"] is None:
            state["point"] = {"line": line, "lat": attrs.get("lat"), "lon": attrs.get("lon"),
                              "tag": tag}

    def end(tag: str, text: str, line: int) -> None:
        point = state["point"]
        if point is None:
            return
        if tag in FIELDS:
            point.setdefault(tag, text)  # the first one: a point's own before an extension's
        elif tag in POINTS:
            state["point"] = None
            out.append(_point(point, name, device_id, state["creator"]))

    xmlstream.read(data, name, start, end)
    if not out:
        out.append(RowError(f"{name}:1", "empty", "no trkpt, rtept or wpt in the file"))
    return iter(out)


def _point(point: dict, name: str, device_id: str, creator: str) -> Observation | RowError:
    origin = f"{name}:{point['line']}"
    if point["tag"] != "trkpt":
        return RowError(origin, "not_a_fix", f"<{point['tag']}> is a plan or a mark, not a fix")
    try:
        lat = parse_number(point["lat"], "latitude", required=True)
        lon = parse_number(point["lon"], "longitude", required=True)
        assert lat is not None and lon is not None
        coordinate(lat, lon)
        if "time" not in point:
            raise RowValueError("no_time", f"<{point['tag']}> without <time>")
        tst = parse_time(point["time"], dt.UTC, "<time>")
        hdop = parse_number(point.get("hdop"), "hdop")
        speed = parse_number(point.get("speed"), "speed")
        course = parse_number(point.get("course") or point.get("heading"), "course")
        alt = parse_number(point.get("ele"), "ele")
    except RowValueError as exc:
        return RowError(origin, exc.reason, exc.detail)
    acc = None
    if hdop is not None:
        acc = hdop if creator.lower().startswith("osmand") else round(hdop * UERE_M, 1)
    extra = {"file_creator": creator[:80]} if creator else {}
    return Observation(kind=LOCATION, source=SOURCE, device_id=device_id, origin=origin,
                       tst=tst, lat=lat, lon=lon, acc_m=acc, speed_mps=speed,
                       course_deg=course, alt_m=alt, extra=extra)

