"""What the "any day" page shows: taskings and their outcomes, dwell per hot spot and officer,
the exception report, charts, and every export as a download.

A day is computed with the hot spot set that was in force at its end (for today: now), see
:mod:`gateway.web.fence_sets`, so a later edit of a boundary does not rewrite a past report.
The figures are the very ones ``hotspots report daily`` writes (:mod:`gateway.reports.daily`).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass

import sqlite_utils

from gateway.reports import daily, exports, maps
from gateway.reports.dwell import ReportError, daily_stats, day_window, parse_date
from gateway.reports.visits import HotSpotSet, clip_visits
from gateway.web import fence_sets

#: Downloads offered on the day page: name to (file name pattern, media type).
EXPORTS = {
    "visits.csv": "text/csv",
    "daily.csv": "text/csv",
    "hourly.csv": "text/csv",
    "exceptions.csv": "text/csv",
    "positions.csv": "text/csv",
    "tracks.geojson": "application/geo+json",
    "tracks-gpx.zip": "application/zip",
    "map.html": "text/html",
    "summary.json": "application/json",
}


@dataclass
class Day:
    """One computed day."""

    date: dt.date
    tz: dt.tzinfo
    tz_name: str
    window: tuple[int, int]
    hotspots: HotSpotSet | None
    fence_set: dict | None
    visits: list
    stats: list
    outcomes: list
    untasked: list
    #: The day page's map data (tracks, hot spot shapes), filled once on first request.
    map_data: dict | None = None

    @property
    def officers(self) -> set[str]:
        return {v.officer for v in self.visits if v.officer}


def compute(db: sqlite_utils.Database, date_text: str, tz: dt.tzinfo = dt.UTC,
            tz_name: str = "UTC", now: float | None = None) -> Day:
    """The day's visits, figures and exceptions with the set in force at its end.

    :raises ReportError: for a bad date, or when there is no hot spot set at all.
    """
    date = parse_date(date_text)
    window = day_window(date, tz)
    now = time.time() if now is None else now
    row = fence_sets.in_force(db, min(window[1] - 1, now))
    if row is None:
        raise ReportError("no hot spot set yet: draw one in the fence editor (or start the web"
                          " app with --fences FILE)")
    spots = HotSpotSet.load(row.geojson)
    window, all_visits, outcomes, untasked = daily.day_exceptions(db, date, spots, tz)
    visits = clip_visits(all_visits, window)
    return Day(date, tz, tz_name, window, spots, {"id": row.id, "version": row.version},
               visits, daily_stats(visits, date, tz, spots), outcomes,
               clip_visits(untasked, window))


def state_key(db: sqlite_utils.Database) -> tuple:
    """What a day's figures depend on besides the date: newest stored position and crossing,
    the assignment history, the plan and the hot spot sets. Cheap (indexes and small tables),
    so a page and its map data share one computation until something changes."""
    return db.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM positions),"
        " (SELECT coalesce(max(id), 0) FROM transitions),"
        " (SELECT count(*) || ':' || coalesce(max(id), 0) || ':' || total(start_ts) || ':'"
        "  || total(end_ts) FROM assignments),"
        " (SELECT count(*) || ':' || coalesce(max(id), 0) FROM taskings),"
        " (SELECT count(*) FROM team_members),"
        " (SELECT coalesce(max(id), 0) || ':' || total(published_at) FROM fence_sets)"
    ).fetchone()


class DayCache:
    """The last few computed days, keyed by date, zone and :func:`state_key`."""

    def __init__(self, size: int = 4) -> None:
        import threading

        self.size = size
        self._items: dict[tuple, Day] = {}
        self._lock = threading.Lock()

    def get(self, db: sqlite_utils.Database, date_text: str, tz: dt.tzinfo, tz_name: str
            ) -> Day:
        """The day, computed once per state of the database (see :func:`compute`)."""
        # The set in force for today is "now", but a newer set is a newer published_at: in key.
        key = (date_text, tz_name, state_key(db))
        with self._lock:
            hit = self._items.get(key)
        if hit is not None:
            return hit
        computed = compute(db, date_text, tz, tz_name)
        with self._lock:
            self._items[key] = computed
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))
        return computed


def dwell_matrix(day: Day) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """Officers (rows), hot spots (columns) and seconds of dwell per pair."""
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for v in day.visits:
        cells[(v.who, v.hotspot)] += v.dwell_s
    officers = sorted({who for who, _ in cells})
    spots = list(day.hotspots.ids) if day.hotspots else sorted({h for _, h in cells})
    return officers, spots, dict(cells)


def as_json(day: Day) -> dict:
    """The page's data (times as epoch seconds and ISO 8601 in the day's zone)."""
    officers, spots, cells = dwell_matrix(day)
    fmt = lambda t: exports.format_datetime(t, day.tz)  # noqa: E731
    return {
        "date": day.date.isoformat(), "tz": day.tz_name, "window": list(day.window),
        "fence_set": day.fence_set,
        "hotspots": [s.as_dict() for s in day.stats],
        "taskings": [{**o.as_dict(), "start_time": fmt(o.tasking.start_ts),
                      "end_time": fmt(o.tasking.end_ts)} for o in day.outcomes],
        "untasked": [{**v.as_dict(), "enter_time": fmt(v.enter), "leave_time": fmt(v.leave)}
                     for v in day.untasked],
        "dwell": {"officers": officers, "hotspots": spots,
                  "seconds": [[cells.get((o, h), 0) for h in spots] for o in officers]},
        "visits": [{**v.as_dict(), "enter_time": fmt(v.enter), "leave_time": fmt(v.leave)}
                   for v in day.visits],
    }


def export(db: sqlite_utils.Database, day: Day, name: str) -> tuple[bytes, int]:
    """The bytes of one download and how many records it holds.

    :raises KeyError: for a name not in :data:`EXPORTS`.
    """
    if name not in EXPORTS:
        raise KeyError(name)
    out = io.StringIO()
    tz = day.tz
    if name == "visits.csv":
        n = exports.write_visits_csv(day.visits, out, tz)
    elif name == "daily.csv":
        n = exports.write_rows_csv(
            [{k: v for k, v in s.as_dict().items() if k != "hourly_patrol_minutes"}
             for s in day.stats], out)
    elif name == "hourly.csv":
        n = exports.write_rows_csv(
            [{"hotspot": s.hotspot, **{f"h{h:02d}": round(s.hourly_patrol_s[h] / 60, 2)
                                       for h in range(24)}} for s in day.stats], out)
    elif name == "exceptions.csv":
        n = exports.write_rows_csv(daily.exceptions_rows(day.outcomes, day.untasked, tz), out)
    elif name == "positions.csv":
        n = exports.export_positions(db, out, "csv", day.window)
    elif name == "tracks.geojson":
        track_list = exports.day_tracks(db, day.window, tz)
        json.dump(exports.tracks_geojson(track_list, day.visits, day.hotspots, tz), out)
        n = len(track_list)
    elif name == "tracks-gpx.zip":
        track_list = exports.day_tracks(db, day.window, tz)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for track in track_list:
                archive.writestr(exports.gpx_filename(track), exports.gpx_text(track))
        return buffer.getvalue(), len(track_list)
    elif name == "map.html":
        track_list = exports.day_tracks(db, day.window, tz)
        out.write(maps.map_html(day.hotspots, day.stats, track_list, day.visits,
                                f"Hot spots, {day.date.isoformat()} ({day.tz_name})", tz))
        n = len(track_list)
    else:  # summary.json
        data = as_json(day)
        json.dump(data, out, indent=1)
        n = len(data["visits"])
    return out.getvalue().encode(), n


__all__ = ["EXPORTS", "Day", "DayCache", "ReportError", "as_json", "compute", "dwell_matrix",
           "export", "state_key"]
