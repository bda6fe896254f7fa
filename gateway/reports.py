"""Reports from the gateway database: visits and dwell per device and hot spot, exports.

Visits here come from the devices' own transition events, whose times are interpolated to the
boundary crossing on the device, so dwell does not depend on how often the tracker reported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

import sqlite_utils

OFFICER_AT = (
    "(SELECT collar FROM assignments a WHERE a.device_id = {table}.device_id"
    " AND a.start_ts <= {table}.tst AND (a.end_ts IS NULL OR a.end_ts > {table}.tst)"
    " ORDER BY a.start_ts DESC LIMIT 1)"
)


@dataclass
class Visit:
    """A stay of one device in one hot spot; ``leave`` is None while it is still inside."""

    device_id: str
    officer: str | None
    hotspot: str
    name: str | None
    enter: int
    leave: int | None

    @property
    def dwell_s(self) -> int | None:
        return None if self.leave is None else self.leave - self.enter

    def as_dict(self) -> dict:
        return {
            "device_id": self.device_id,
            "officer": self.officer,
            "hotspot": self.hotspot,
            "name": self.name,
            "enter": self.enter,
            "leave": self.leave,
            "dwell_s": self.dwell_s,
        }


def visits_from_transitions(db: sqlite_utils.Database) -> list[Visit]:
    """Pair each device's enter and leave events per hot spot, in time order.

    A second enter without a leave in between (a leave lost before it reached the device's
    outbox cannot happen, but a device reboot inside a hot spot can) starts a new visit and
    leaves the first one open rather than inventing a leave time.
    """
    rows = db.execute(
        "SELECT device_id, " + OFFICER_AT.format(table="transitions") + ", rid, desc, event, tst"
        " FROM transitions ORDER BY device_id, rid, tst, seq"
    ).fetchall()
    visits: list[Visit] = []
    open_visit: dict[tuple[str, str], Visit] = {}
    for device_id, officer, rid, desc, event, tst in rows:
        key = (device_id, rid)
        if event == "enter":
            visit = Visit(device_id, officer, rid, desc, tst, None)
            visits.append(visit)
            open_visit[key] = visit
        elif key in open_visit:
            open_visit.pop(key).leave = tst
    visits.sort(key=lambda v: (v.enter, v.device_id, v.hotspot))
    return visits


def format_duration(seconds: float | None) -> str:
    """``12m 05s`` style, or ``open`` for a visit still going on."""
    if seconds is None:
        return "open"
    seconds = round(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s"


def format_time(epoch_s: float | None) -> str:
    """UTC ``HH:MM:SS``."""
    if epoch_s is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%H:%M:%S")


def dwell_table(visits: list[Visit]) -> Iterator[str]:
    """The dwell report as aligned text lines."""
    yield f"{'device':<12} {'officer':<8} {'hot spot':<12} {'enter':>8} {'leave':>8} {'dwell':>8}"
    for v in visits:
        yield (
            f"{v.device_id:<12} {v.officer or '-':<8} {v.hotspot:<12} {format_time(v.enter):>8}"
            f" {format_time(v.leave):>8} {format_duration(v.dwell_s):>8}"
        )
    totals: dict[tuple[str, str], int] = {}
    for v in visits:
        if v.dwell_s is not None:
            key = (v.device_id, v.hotspot)
            totals[key] = totals.get(key, 0) + v.dwell_s
    if totals:
        yield ""
        yield "total dwell per device and hot spot:"
        for (device_id, hotspot), seconds in sorted(totals.items()):
            yield f"  {device_id:<12} {hotspot:<12} {format_duration(seconds)}"


EXPORT_COLUMNS = ("device_id", "officer", "seq", "tst", "time_utc", "lat", "lon", "speed_mps",
                  "course_deg", "acc_m", "source")


def positions(db: sqlite_utils.Database, include_filtered: bool = False) -> Iterator[dict]:
    """Stored positions in time order per device, with the officer carrying the device then."""
    where = "" if include_filtered else "WHERE filtered IS NULL"
    sql = (
        "SELECT device_id, " + OFFICER_AT.format(table="positions") + " AS officer, seq, tst,"
        " strftime('%Y-%m-%dT%H:%M:%SZ', tst, 'unixepoch') AS time_utc, lat, lon, speed_mps,"
        f" course_deg, acc_m, source FROM positions {where} ORDER BY device_id, tst, seq"
    )
    cursor = db.execute(sql)
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def export_positions(db: sqlite_utils.Database, out: TextIO, fmt: str = "csv") -> int:
    """Write positions as CSV or JSON lines; returns how many were written."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in positions(db):
            writer.writerow(row)
            count += 1
    elif fmt == "jsonl":
        for row in positions(db):
            out.write(json.dumps(row) + "\n")
            count += 1
    else:
        raise ValueError(f"unknown export format {fmt!r}: use csv or jsonl")
    return count
