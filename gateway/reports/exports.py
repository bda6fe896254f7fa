"""Exports for analysts: positions, visits and daily figures as CSV, tracks and visits as
GeoJSON, tracks as GPX per officer per shift.

A *shift* is an officer's continuous time with kit: the union of the collar number's overlapping
assignment periods (a tracker and a radio issued together make one shift). Fixes made while no
one was assigned to the device are exported per device and day, under ``device-<id>``, so
nothing stored is left out. A track is cut into segments where the device was silent for more
than ``track_gap_s``, so a line is never drawn across a gap nobody walked.

A *day's* tracks (:func:`day_tracks`: the day page's map, ``tracks.geojson``, the GPX files and
``map.html`` of ``hotspots report daily``) are the shifts that overlap the local calendar day,
each drawn whole: a night shift from 22:00 to 06:00 is on the map of both dates it touches,
from its first fix to its last, so a supervisor checking either date sees the patrol that
crossed midnight and not two stubs cut at 00:00. How far beyond the day a shift is followed is
bounded by :data:`DAY_TRACK_REACH_S` (a tracker never returned keeps its assignment open for
days). The day's *figures* (visits, dwell, patrol-minutes) stay cut at midnight, so no minute is
counted on two days; fixes nobody was assigned to stay on their own calendar day.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import escape, quoteattr

import sqlite_utils

from gateway.fleet import attribution
from gateway.reports.visits import HotSpotSet, Visit

EXPORT_COLUMNS = ("device_id", "officer", "seq", "tst", "time_utc", "lat", "lon", "speed_mps",
                  "course_deg", "acc_m", "source")
VISIT_COLUMNS = ("officer", "device_id", "hotspot", "name", "enter_time", "leave_time", "enter",
                 "leave", "dwell_s", "dwell_min", "method", "clipped_start", "clipped_end",
                 "open")
#: Silence longer than this starts a new track segment.
TRACK_GAP_S = 600
#: How far before and after a day a shift that overlaps the day is followed on its map: longer
#: than any shift (so a night shift is drawn whole), short enough that a device left assigned
#: for days brings only its last half day in.
DAY_TRACK_REACH_S = 12 * 3600
FOREVER = 2**62


class ExportError(ValueError):
    """An export cannot be written as asked."""


def format_datetime(epoch_s: float, tz: dt.tzinfo = dt.UTC) -> str:
    """ISO 8601 with offset (``Z`` for UTC), as exports carry it."""
    return dt.datetime.fromtimestamp(epoch_s, tz).isoformat().replace("+00:00", "Z")


# -- positions ------------------------------------------------------------------------------------
def positions(db: sqlite_utils.Database, include_filtered: bool = False,
              window: tuple[int, int] | None = None) -> Iterator[dict]:
    """Stored positions in time order per device, with the officer carrying the device then."""
    clauses, args = [], []
    if not include_filtered:
        clauses.append("filtered IS NULL")
    if window:
        clauses.append("tst >= ? AND tst < ?")
        args += [window[0], window[1]]
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = (
        "SELECT device_id, " + attribution.officer_at_sql("positions") + " AS officer, seq, tst,"
        " strftime('%Y-%m-%dT%H:%M:%SZ', tst, 'unixepoch') AS time_utc, lat, lon, speed_mps,"
        f" course_deg, acc_m, source FROM positions {where} ORDER BY device_id, tst, seq"
    )
    cursor = db.execute(sql, args)
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def export_positions(db: sqlite_utils.Database, out: TextIO, fmt: str = "csv",
                     window: tuple[int, int] | None = None) -> int:
    """Write positions as CSV or JSON lines; returns how many were written."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in positions(db, window=window):
            writer.writerow(row)
            count += 1
    elif fmt == "jsonl":
        for row in positions(db, window=window):
            out.write(json.dumps(row) + "\n")
            count += 1
    else:
        raise ExportError(f"unknown export format {fmt!r}: use csv or jsonl")
    return count


# -- visits and figures ---------------------------------------------------------------------------
def visit_row(v: Visit, tz: dt.tzinfo = dt.UTC) -> dict:
    """One visit as a flat CSV row (times ISO 8601 in ``tz`` and epoch seconds)."""
    return {
        "officer": v.officer or "", "device_id": v.device_id, "hotspot": v.hotspot,
        "name": v.name or "", "enter_time": format_datetime(v.enter, tz),
        "leave_time": format_datetime(v.leave, tz),
        "enter": v.enter, "leave": v.leave, "dwell_s": v.dwell_s,
        "dwell_min": round(v.dwell_s / 60, 2), "method": v.method,
        "clipped_start": int(v.clipped_start), "clipped_end": int(v.clipped_end),
        "open": int(v.open),
    }


def write_visits_csv(visits: Iterable[Visit], out: TextIO, tz: dt.tzinfo = dt.UTC) -> int:
    """Visits as CSV; returns the number of rows."""
    writer = csv.DictWriter(out, fieldnames=VISIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for v in visits:
        writer.writerow(visit_row(v, tz))
        count += 1
    return count


def write_rows_csv(rows: list[dict], out: TextIO) -> int:
    """Dicts with the same keys as CSV (lists become ``;``-joined text)."""
    if not rows:
        return 0
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v
                         for k, v in row.items()})
    return len(rows)


# -- tracks ---------------------------------------------------------------------------------------
@dataclass
class Track:
    """One officer's (or unassigned device's) fixes in one shift, in segments per device."""

    officer: str | None
    label: str  # collar number, or device-<id>
    start: int
    end: int
    segments: list[tuple[str, list[tuple[int, float, float]]]] = field(default_factory=list)

    @property
    def fixes(self) -> int:
        return sum(len(points) for _, points in self.segments)


def tracks(db: sqlite_utils.Database, window: tuple[int, int] = (-FOREVER, FOREVER),
           tz: dt.tzinfo = dt.UTC, track_gap_s: int = TRACK_GAP_S, reach_s: int = 0,
           ) -> list[Track]:
    """Unfiltered-out fixes in ``window`` grouped per officer per shift (see module docstring).

    With ``reach_s``, a shift that overlaps ``window`` also brings its fixes up to ``reach_s``
    before and after it (a shift crossing the window's edge is drawn whole); fixes of other
    shifts and of nobody's time stay inside ``window``.
    """
    lo, hi = window
    if reach_s > 0:
        lo, hi = max(lo - reach_s, -FOREVER), min(hi + reach_s, FOREVER)
    per_device = attribution.spans(db, window=(lo, hi))
    per_collar = attribution.shifts(per_device)
    found: dict[tuple, Track] = {}
    for device_id, tst, lat, lon in db.execute(
            "SELECT device_id, tst, lat, lon FROM positions WHERE filtered IS NULL"
            " AND tst >= ? AND tst < ? AND lat IS NOT NULL ORDER BY device_id, tst, seq",
            (lo, hi)):
        inside = window[0] <= tst < window[1]
        collar = attribution.officer_at(per_device.get(device_id, []), tst)
        if collar is not None:
            k = attribution.shift_of(per_collar[collar], tst)
            a, b = per_collar[collar][k]
            if not inside and not (a < window[1] and b > window[0]):
                continue  # another shift, wholly outside the window
            key = (collar, k)
            if key not in found:
                found[key] = Track(collar, collar, a, b)
        else:
            if not inside:
                continue
            day = dt.datetime.fromtimestamp(tst, tz).date()
            key = (None, device_id, day)
            if key not in found:
                found[key] = Track(None, f"device-{device_id}", *_local_day(day, tz))
        track = found[key]
        segs = track.segments
        if (not segs or segs[-1][0] != device_id
                or tst - segs[-1][1][-1][0] > track_gap_s):
            segs.append((device_id, []))
        segs[-1][1].append((tst, lat, lon))
    out = list(found.values())
    out.sort(key=lambda t: (t.start, t.label))
    return out


def _local_day(day: dt.date, tz: dt.tzinfo) -> tuple[int, int]:
    # Not 86,400 s: a local day is 23 or 25 hours long when the clocks change.
    return (int(dt.datetime.combine(day, dt.time(0), tz).timestamp()),
            int(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz).timestamp()))


def day_tracks(db: sqlite_utils.Database, window: tuple[int, int], tz: dt.tzinfo = dt.UTC,
               ) -> list[Track]:
    """A day's tracks: every shift overlapping the day's ``window``, whole (up to
    :data:`DAY_TRACK_REACH_S` beyond it), and unassigned fixes of that day (module docstring)."""
    return tracks(db, window, tz, reach_s=DAY_TRACK_REACH_S)


def tracks_geojson(track_list: list[Track], visits: Iterable[Visit] = (),
                   hotspots: HotSpotSet | None = None, tz: dt.tzinfo = dt.UTC) -> dict:
    """A FeatureCollection: one LineString per track segment, one feature per visit.

    A segment of a single fix is a Point. A visit's geometry is its hot spot's representative
    point when the hot spot is known, otherwise null (allowed by RFC 7946).
    """
    features = []
    for track in track_list:
        for device_id, points in track.segments:
            coords = [[lon, lat] for _, lat, lon in points]
            geometry = ({"type": "LineString", "coordinates": coords} if len(coords) > 1
                        else {"type": "Point", "coordinates": coords[0]})
            features.append({"type": "Feature", "geometry": geometry, "properties": {
                "kind": "track", "officer": track.officer, "label": track.label,
                "device_id": device_id, "start": format_datetime(points[0][0], tz),
                "end": format_datetime(points[-1][0], tz), "fixes": len(points),
                "times": [t for t, _, _ in points]}})
    index = {h: i for i, h in enumerate(hotspots.ids)} if hotspots else {}
    for v in visits:
        geometry = None
        if v.hotspot in index:
            p = hotspots.lonlat[index[v.hotspot]].representative_point()
            geometry = {"type": "Point", "coordinates": [round(p.x, 7), round(p.y, 7)]}
        features.append({"type": "Feature", "geometry": geometry,
                         "properties": {"kind": "visit", **visit_row(v, tz)}})
    return {"type": "FeatureCollection", "features": features}


def gpx_text(track: Track) -> str:
    """One officer's shift as a GPX 1.1 document."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<gpx version="1.1" creator="hotspots" xmlns="http://www.topografix.com/GPX/1/1">',
             f"  <metadata><name>{escape(track.label)} shift from"
             f" {format_datetime(track.start)}</name>"
             f"<time>{format_datetime(track.start)}</time></metadata>"]
    by_device: dict[str, list[list[tuple[int, float, float]]]] = {}
    for device_id, points in track.segments:
        by_device.setdefault(device_id, []).append(points)
    for device_id, segments in by_device.items():
        lines.append(f"  <trk><name>{escape(track.label)}</name><src>{escape(device_id)}</src>")
        for points in segments:
            lines.append("    <trkseg>")
            for tst, lat, lon in points:
                lines.append(f"      <trkpt lat={quoteattr(f'{lat:.6f}')}"
                             f" lon={quoteattr(f'{lon:.6f}')}>"
                             f"<time>{format_datetime(tst)}</time></trkpt>")
            lines.append("    </trkseg>")
        lines.append("  </trk>")
    lines.append("</gpx>")
    return "\n".join(lines) + "\n"


def gpx_filename(track: Track) -> str:
    """``<collar>_<shift start, UTC>.gpx``, safe as a file name."""
    stamp = dt.datetime.fromtimestamp(track.start, dt.UTC).strftime("%Y%m%dT%H%MZ")
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{track.label}_{stamp}") + ".gpx"


def write_gpx(track_list: list[Track], out_dir: Path) -> list[Path]:
    """One GPX 1.1 file per officer per shift in ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for track in track_list:
        path = out_dir / gpx_filename(track)
        path.write_text(gpx_text(track), encoding="utf-8")
        paths.append(path)
    return paths
