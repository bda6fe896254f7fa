"""Reports for supervisors: visits and dwell, per hot spot per day figures, report windows.

Visits come from :mod:`gateway.reports.visits` (transitions where the device sent them, positions
otherwise); taskings and the exception report from :mod:`gateway.reports.taskings`; files from
:mod:`gateway.reports.exports` and :mod:`gateway.reports.maps`. All times are UTC epoch seconds
inside; a report
shows them in UTC unless given a time zone, and a "day" is the local calendar day of that zone
(23 or 25 hours long at a daylight-saving change).

Figures per hot spot and day:

* ``visits``: officer visits that overlap the day (a visit over midnight counts on both days,
  each with its own part);
* ``officer_minutes``: each officer's time there, added up (two officers for ten minutes: 20);
* ``patrol_minutes``: time with at least one officer there (the same two together: 10);
* ``minutes_per_visit``: ``officer_minutes / visits``;
* ``hourly``: patrol-minutes in each local hour of the day, the time-of-day distribution.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils

from gateway.reports.visits import (
    OPEN_WINDOW,
    HotSpotSet,
    Visit,
    VisitRules,
    clip_spans,
    compute_visits,
    union_seconds,
)

__all__ = [
    "DailyStats",
    "ReportError",
    "Visit",
    "daily_stats",
    "day_window",
    "dwell_table",
    "format_duration",
    "format_time",
    "visits_from_transitions",
    "zone",
]


class ReportError(ValueError):
    """A report cannot be made as asked (bad date, unknown time zone, ...)."""


def zone(name: str | None) -> dt.tzinfo:
    """The time zone called ``name`` (``UTC`` when None).

    :raises ReportError: for an unknown name.
    """
    if not name or name.upper() == "UTC":
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportError(f"unknown time zone {name!r}: use a name such as Europe/London") from exc


def parse_date(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` date. :raises ReportError: for anything else."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ReportError(f"bad date {text!r}: use YYYY-MM-DD") from exc


def day_window(day: dt.date | str, tz: dt.tzinfo = dt.UTC) -> tuple[int, int]:
    """``[start, end)`` epoch seconds of the local calendar day ``day`` in ``tz``."""
    if isinstance(day, str):
        day = parse_date(day)
    start = dt.datetime.combine(day, dt.time(0), tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)
    return int(start.timestamp()), int(end.timestamp())


def hour_edges(day: dt.date, tz: dt.tzinfo = dt.UTC) -> list[int]:
    """Epoch seconds of each local hour's start in ``day``, plus the day's end (25 values)."""
    start, end = day_window(day, tz)
    edges = [int(dt.datetime.combine(day, dt.time(h), tz).timestamp()) for h in range(24)]
    edges[0] = start
    return [*edges, end]


def visits_from_transitions(db: sqlite_utils.Database) -> list[Visit]:
    """Visits from the devices' transition events only, no window and default rules.

    The demo's view: the tracker's own crossings, exact to GNSS time.
    """
    return compute_visits(db, None, OPEN_WINDOW, VisitRules(min_visit_s=0, merge_gap_s=0))


def format_duration(seconds: float | None) -> str:
    """``12m 05s`` style, or ``open`` for a visit still going on."""
    if seconds is None:
        return "open"
    seconds = round(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s"


def format_time(epoch_s: float | None, tz: dt.tzinfo = dt.UTC) -> str:
    """``HH:MM:SS`` in ``tz`` (UTC by default)."""
    if epoch_s is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch_s, tz).strftime("%H:%M:%S")


def dwell_table(visits: list[Visit], tz: dt.tzinfo = dt.UTC) -> Iterator[str]:
    """The dwell report as aligned text lines, then totals per officer (or device) and hot spot.

    A visit with no leave seen shows ``open`` beside its credited dwell; a clipped end shows
    ``>`` (``<`` at the start).
    """
    yield (f"{'device':<12} {'officer':<8} {'hot spot':<12} {'enter':>9} {'leave':>9}"
           f" {'dwell':>8}  source")
    for v in visits:
        enter = ("<" if v.clipped_start else "") + format_time(v.enter, tz)
        leave = format_time(v.leave, tz) + (">" if v.clipped_end else "")
        note = v.method + (", open" if v.open else "")
        yield (f"{v.device_id:<12} {v.officer or '-':<8} {v.hotspot:<12} {enter:>9} {leave:>9}"
               f" {format_duration(v.dwell_s):>8}  {note}")
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for v in visits:
        totals[(v.who, v.hotspot)] += v.dwell_s
    if totals:
        yield ""
        yield "total dwell per officer (or device) and hot spot:"
        for (who, hotspot), seconds in sorted(totals.items()):
            yield f"  {who:<20} {hotspot:<12} {format_duration(seconds)}"


@dataclass
class DailyStats:
    """One hot spot's figures for one day (see the module docstring)."""

    date: str
    hotspot: str
    name: str | None
    visits: int = 0
    officers: int = 0
    officer_s: int = 0
    patrol_s: int = 0
    hourly_patrol_s: list[int] = field(default_factory=lambda: [0] * 24)

    @property
    def officer_minutes(self) -> float:
        return round(self.officer_s / 60, 2)

    @property
    def patrol_minutes(self) -> float:
        return round(self.patrol_s / 60, 2)

    @property
    def minutes_per_visit(self) -> float:
        return round(self.officer_s / 60 / self.visits, 2) if self.visits else 0.0

    def as_dict(self) -> dict:
        """A flat, JSON- and CSV-ready dict."""
        return {
            "date": self.date, "hotspot": self.hotspot, "name": self.name,
            "visits": self.visits, "officers": self.officers,
            "officer_minutes": self.officer_minutes, "patrol_minutes": self.patrol_minutes,
            "minutes_per_visit": self.minutes_per_visit,
            "hourly_patrol_minutes": [round(s / 60, 2) for s in self.hourly_patrol_s],
        }


def daily_stats(visits: list[Visit], day: dt.date | str, tz: dt.tzinfo = dt.UTC,
                hotspots: HotSpotSet | None = None) -> list[DailyStats]:
    """Per hot spot figures for one local day from visits (already clipped to it or not).

    Every hot spot of ``hotspots`` gets a row, visited or not, so a supervisor sees the ones
    nobody went to; hot spots seen only in the data are added.
    """
    if isinstance(day, str):
        day = parse_date(day)
    start, end = day_window(day, tz)
    edges = hour_edges(day, tz)
    by_spot: dict[str, list[Visit]] = defaultdict(list)
    for v in visits:
        if v.leave > start and v.enter < end:
            by_spot[v.hotspot].append(v)
    names = dict(zip(hotspots.ids, hotspots.names, strict=True)) if hotspots else {}
    order = list(names) + sorted(set(by_spot) - set(names))
    out = []
    for spot in order:
        row = DailyStats(day.isoformat(), spot, names.get(spot))
        spans = [(max(v.enter, start), min(v.leave, end)) for v in by_spot.get(spot, [])]
        row.visits = len(spans)
        row.officers = len({v.who for v in by_spot.get(spot, [])})
        row.officer_s = sum(b - a for a, b in spans)
        row.patrol_s = union_seconds(spans)
        for h in range(24):
            row.hourly_patrol_s[h] = union_seconds(clip_spans(spans, edges[h], edges[h + 1]))
        if by_spot.get(spot):
            row.name = row.name or by_spot[spot][0].name
        out.append(row)
    return out
