"""One hot spot: crime and harm by hour and weekday, the trend, and the patrol dosage beside it.

Crime is what lies inside the hot spot's polygon. Dosage is officer-minutes of presence from
:func:`gateway.reports.visits.compute_visits` (every source: trackers, radios, phones), per
local day and ISO week. Where taskings exist for the hot spot, the days from the first to the
last tasked day split into patrol days (tasked) and non-patrol days (the design's controls), with
crime, harm and dosage per day in each.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import shapely
import sqlite_utils

from planning.aoristic import WEEKDAYS, profile
from planning.crime import load_crimes
from planning.harm import HarmTable


class ReportError(ValueError):
    """The report cannot be made (unknown hot spot)."""


def hotspot_report(db: sqlite_utils.Database, fences: Path | str | dict, hotspot_id: str,
                   table: HarmTable, tz: str = "Europe/London") -> dict:
    """Everything the report shows, as plain data."""
    from gateway.reports.visits import HotSpotSet, compute_visits

    spots = HotSpotSet.load(fences)
    if hotspot_id not in spots.ids:
        raise ReportError(f"no hot spot {hotspot_id!r} in the fences (have: "
                          f"{', '.join(spots.ids)})")
    zone = ZoneInfo(tz)
    k = spots.ids.index(hotspot_id)
    poly = spots.lonlat[k]
    crimes = load_crimes(db)
    inside = shapely.contains_xy(poly, crimes.lon, crimes.lat) if len(crimes) else np.zeros(
        0, bool)
    mine = crimes.subset(inside)
    harm = np.array(table.weights(mine.category, mine.code)[0]) if len(mine) else np.zeros(0)
    counts = profile(mine.from_ts, mine.to_ts, zone)
    harms = profile(mine.from_ts, mine.to_ts, zone, harm)

    months: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for m, h in zip(mine.month, harm.tolist(), strict=True):
        months[m][0] += 1
        months[m][1] += h

    def local_day(ts: int) -> str:
        return dt.datetime.fromtimestamp(ts, zone).date().isoformat()

    crime_days: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for a, b, h in zip(mine.from_ts.tolist(), mine.to_ts.tolist(), harm.tolist(), strict=True):
        if a >= 0 and b - a < 86400 and local_day(a) == local_day(max(a, b)):
            crime_days[local_day(a)][0] += 1
            crime_days[local_day(a)][1] += h

    visits = [v for v in compute_visits(db, spots) if v.hotspot == hotspot_id]
    dose_day: dict[str, float] = defaultdict(float)
    for v in visits:
        t = v.enter
        while t < v.leave:  # split a visit across midnight
            day = dt.datetime.fromtimestamp(t, zone).date()
            nxt = int(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).timestamp())
            end = min(v.leave, nxt)
            dose_day[day.isoformat()] += (end - t) / 60
            t = end
    dose_week: dict[str, float] = defaultdict(float)
    for day, mins in dose_day.items():
        y, w, _ = dt.date.fromisoformat(day).isocalendar()
        dose_week[f"{y}-W{w:02d}"] += mins

    tasked = sorted({r[0] for r in db.execute(
        "SELECT date FROM taskings WHERE hotspot = ?", (hotspot_id,))})
    design = None
    if tasked:
        first, last = dt.date.fromisoformat(tasked[0]), dt.date.fromisoformat(tasked[-1])
        days = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        groups = {"patrol": [d for d in days if d in tasked],
                  "non_patrol": [d for d in days if d not in tasked]}
        design = {"first": tasked[0], "last": tasked[-1]}
        for name, ds in groups.items():
            n = len(ds)
            design[name] = {
                "days": n,
                "crimes_per_day": round(sum(crime_days[d][0] for d in ds) / n, 3) if n else None,
                "harm_per_day": round(sum(crime_days[d][1] for d in ds) / n, 2) if n else None,
                "officer_min_per_day": round(sum(dose_day.get(d, 0.0) for d in ds) / n, 1)
                if n else None,
            }
        design["times_known"] = counts.timed > 0
    return {
        "hotspot": hotspot_id, "name": spots.names[k], "tz": tz,
        "crimes": len(mine), "harm_days": round(float(harm.sum()), 1),
        "time_basis": counts.basis,
        "by_hour": {"crimes": [round(float(v), 2) for v in counts.by_hour],
                    "harm": [round(float(v), 1) for v in harms.by_hour]} if counts.timed else None,
        "by_weekday": {"crimes": [round(float(v), 2) for v in counts.by_weekday],
                       "harm": [round(float(v), 1) for v in harms.by_weekday]}
        if counts.timed else None,
        "trend_by_month": [{"month": m, "crimes": int(c), "harm_days": round(h, 1)}
                           for m, (c, h) in sorted(months.items())],
        "dosage_by_day": [{"date": d, "officer_min": round(m, 1)}
                          for d, m in sorted(dose_day.items())],
        "dosage_by_week": [{"week": w, "officer_min": round(m, 1)}
                           for w, m in sorted(dose_week.items())],
        "visits": len(visits),
        "patrol_design": design,
    }


def _bar(value: float, top: float, width: int = 30) -> str:
    return "#" * (round(width * value / top) if top > 0 else 0)


def text_lines(r: dict) -> list[str]:
    """The report for people."""
    out = [f"hot spot {r['hotspot']} ({r['name']}): {r['crimes']} crimes, {r['harm_days']:,.0f}"
           " harm-days", f"times: {r['time_basis']}"]
    if r["by_hour"]:
        out.append("")
        out.append(f"by hour ({r['tz']})      crimes   harm-days")
        top = max(r["by_hour"]["crimes"]) or 1
        for h in range(24):
            c, hm = r["by_hour"]["crimes"][h], r["by_hour"]["harm"][h]
            out.append(f"  {h:02d}:00           {c:7.1f}  {hm:9.0f}  {_bar(c, top)}")
        out.append("by weekday          crimes   harm-days")
        top = max(r["by_weekday"]["crimes"]) or 1
        for d in range(7):
            c, hm = r["by_weekday"]["crimes"][d], r["by_weekday"]["harm"][d]
            out.append(f"  {WEEKDAYS[d]}              {c:7.1f}  {hm:9.0f}  {_bar(c, top)}")
    out.append("")
    out.append("trend by month      crimes   harm-days")
    for m in r["trend_by_month"]:
        out.append(f"  {m['month']}           {m['crimes']:7d}  {m['harm_days']:9.0f}")
    out.append("")
    out.append(f"patrol dosage: {r['visits']} visits")
    for w in r["dosage_by_week"]:
        out.append(f"  {w['week']}           {w['officer_min']:7.1f} officer-minutes")
    for d in r["dosage_by_day"]:
        out.append(f"  {d['date']}        {d['officer_min']:7.1f} officer-minutes")
    design = r["patrol_design"]
    if design:
        out.append("")
        out.append(f"patrol days against non-patrol days ({design['first']} to {design['last']}):")
        for name in ("patrol", "non_patrol"):
            g = design[name]
            if g["days"]:
                out.append(f"  {name.replace('_', '-'):<11} {g['days']:3d} days: crimes/day"
                           f" {g['crimes_per_day']}, harm/day {g['harm_per_day']},"
                           f" officer-min/day {g['officer_min_per_day']}")
            else:
                out.append(f"  {name.replace('_', '-'):<11}   0 days")
        if not design["times_known"]:
            out.append("  (the crime data has no days: crimes per day cannot be compared)")
    else:
        out.append("no taskings for this hot spot: no patrol/non-patrol comparison")
    return out
