"""``hotspots report daily``: every supervisor's file for one day, written into one folder.

What is written (all times in the report's time zone, UTC by default):

=========================  =====================================================================
``visits.csv``             every visit that day, clipped at midnight
``daily.csv``              per hot spot: visits, officers, officer-minutes, patrol-minutes,
                           minutes per visit
``hourly.csv``             per hot spot: patrol-minutes in each local hour (time of day)
``exceptions.csv``         each tasking's outcome, then untasked presence
``tracks.geojson``         tracks (LineStrings per officer, shift and device) and visits
``gpx/``                   one GPX file per officer per shift
``map.html``               the self-contained map
``plots/``                 PNG time-of-day charts
``summary.json``           the figures above in one document
=========================  =====================================================================
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from gateway.reports import exports, maps, taskings
from gateway.reports.dwell import daily_stats, day_window, parse_date
from gateway.reports.visits import (
    DEFAULT_RULES,
    HotSpotSet,
    VisitRules,
    clip_visits,
    compute_visits,
)


@dataclass
class DailyResult:
    """Paths written and the headline figures, for the command to print."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    visits: int = 0
    officer_minutes: float = 0.0
    patrol_minutes: float = 0.0
    exceptions: dict[str, int] = field(default_factory=dict)
    untasked: int = 0


def exceptions_rows(outcomes: list[taskings.Outcome], untasked: list, tz: dt.tzinfo) -> list[dict]:
    """Tasking outcomes, then untasked visits, as rows of one CSV."""
    rows = []
    for o in outcomes:
        row = o.as_dict()
        row["start"] = exports.format_datetime(row["start"], tz)
        row["end"] = exports.format_datetime(row["end"], tz)
        rows.append(row)
    for v in untasked:
        rows.append({"kind": "presence", "status": "untasked", "date": "", "hotspot": v.hotspot,
                     "assignee": v.who, "start": exports.format_datetime(v.enter, tz),
                     "end": exports.format_datetime(v.leave, tz), "required_min": "",
                     "in_window_min": "", "outside_window_min": round(v.dwell_s / 60, 2),
                     "present": v.who})
    return rows


def day_exceptions(db: sqlite_utils.Database, date: dt.date, hotspots: HotSpotSet,
                   tz: dt.tzinfo = dt.UTC, rules: VisitRules = DEFAULT_RULES,
                   ) -> tuple[tuple[int, int], list, list[taskings.Outcome], list]:
    """The day's window, the visits around it, the taskings' outcomes and the untasked visits.

    Visits are computed over the day widened to every tasking's window, so a tasking running
    past midnight is judged on all of it; the untasked visits are not yet clipped to the day.
    """
    window = day_window(date, tz)
    plan = taskings.taskings_for(db, date.isoformat())
    wide = (min([window[0], *(t.start_ts for t in plan)]),
            max([window[1], *(t.end_ts for t in plan)]))
    visits = compute_visits(db, hotspots, wide, rules)
    outcomes, untasked = taskings.exception_report(plan, visits, taskings.team_members(db),
                                                   window)
    return window, visits, outcomes, untasked


def write_daily(db: sqlite_utils.Database, day: str, out_dir: Path, hotspots: HotSpotSet,
                tz: dt.tzinfo = dt.UTC, tz_name: str = "UTC", rules: VisitRules = DEFAULT_RULES,
                tiles_url: str | None = None, plots: bool = True) -> DailyResult:
    """Write all of the day's reports (see the module docstring) into ``out_dir``."""
    date = parse_date(day)
    window, all_visits, outcomes, untasked = day_exceptions(db, date, hotspots, tz, rules)
    visits = clip_visits(all_visits, window)
    stats = daily_stats(visits, date, tz, hotspots)
    untasked = clip_visits(untasked, window)
    track_list = exports.day_tracks(db, window, tz)

    out_dir.mkdir(parents=True, exist_ok=True)
    result = DailyResult(out_dir)

    def text_file(name: str) -> Path:
        path = out_dir / name
        result.files.append(path)
        return path

    with text_file("visits.csv").open("w", newline="") as f:
        exports.write_visits_csv(visits, f, tz)
    with text_file("daily.csv").open("w", newline="") as f:
        rows = [{k: v for k, v in s.as_dict().items() if k != "hourly_patrol_minutes"}
                for s in stats]
        exports.write_rows_csv(rows, f)
    with text_file("hourly.csv").open("w", newline="") as f:
        rows = [{"hotspot": s.hotspot, **{f"h{h:02d}": round(s.hourly_patrol_s[h] / 60, 2)
                                          for h in range(24)}} for s in stats]
        exports.write_rows_csv(rows, f)
    with text_file("exceptions.csv").open("w", newline="") as f:
        exports.write_rows_csv(exceptions_rows(outcomes, untasked, tz), f)
    geo = exports.tracks_geojson(track_list, visits, hotspots, tz)
    text_file("tracks.geojson").write_text(json.dumps(geo), encoding="utf-8")
    result.files += exports.write_gpx(track_list, out_dir / "gpx")
    result.files.append(maps.write_map(out_dir / "map.html", hotspots, stats, track_list, visits,
                                       f"Hot spots, {date.isoformat()} ({tz_name})", tz,
                                       tiles_url))
    if plots:
        result.files += maps.plot_time_of_day(stats, out_dir / "plots", tz_name)

    result.visits = len(visits)
    result.officer_minutes = round(sum(s.officer_s for s in stats) / 60, 2)
    result.patrol_minutes = round(sum(s.patrol_s for s in stats) / 60, 2)
    result.exceptions = {s: sum(o.status == s for o in outcomes) for s in taskings.STATUSES}
    result.untasked = len(untasked)
    summary = {
        "date": date.isoformat(), "tz": tz_name, "window": list(window),
        "rules": rules.__dict__, "hotspots": [s.as_dict() for s in stats],
        "taskings": [o.as_dict() for o in outcomes],
        "untasked": [v.as_dict() for v in untasked],
        "totals": {"visits": result.visits, "officer_minutes": result.officer_minutes,
                   "patrol_minutes": result.patrol_minutes, **result.exceptions,
                   "untasked": result.untasked},
    }
    text_file("summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return result
