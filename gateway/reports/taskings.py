"""Taskings and the exception report: which tasked patrols did not happen, and what was done
that nobody tasked.

Taskings come from a CSV plan, one row per tasked patrol::

    date,hotspot,start,end,officer,team,required_minutes
    2026-03-02,HS-GRN-01,10:00,12:00,4521,,15
    2026-03-02,HS-GRN-02,22:00,02:00,,B-relief,15

``start``/``end`` are local wall-clock times in the report's time zone (``end`` at or before
``start`` means the next day); exactly one of ``officer`` (a collar number; ``collar`` is
accepted as the column name too) and ``team`` is given; ``required_minutes`` defaults to 15.
Teams come from a second CSV with columns ``team,collar``. Bad rows are rejected with their line
number and reason; the good rows are still imported, and importing the same plan twice stores it
once.

Outcome of each tasking, from the visits of its officer (or of any member of its team) to its
hot spot:

``done``
    at least ``required_minutes`` of presence inside the tasked window (time with at least one
    assignee there: two members together for ten minutes give ten, not twenty);
``too_short``
    some presence inside the window, but less than required;
``outside_window``
    no presence inside the window, but some at that hot spot on the tasking's day;
``not_performed``
    no presence at that hot spot that day.

Every visit that does not overlap a window tasked to its officer (or the officer's team) at its
hot spot is listed as ``untasked`` presence, and so is every visit of an unassigned device.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from gateway.reports.visits import Visit, clip_spans, union_seconds

DEFAULT_REQUIRED_MIN = 15
STATUSES = ("done", "too_short", "outside_window", "not_performed")


class TaskingError(ValueError):
    """A tasking file cannot be read at all (missing columns, not CSV)."""


@dataclass
class Tasking:
    """One tasked patrol (times UTC epoch seconds)."""

    id: int
    date: str
    hotspot: str
    start_ts: int
    end_ts: int
    officer: str
    team: str
    required_s: int

    @property
    def assignee(self) -> str:
        return self.officer or f"team:{self.team}"


@dataclass
class ImportResult:
    """What an import did: rows stored, rows already there, rows rejected (line, reason)."""

    imported: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _read_csv(source: str | Path | io.TextIOBase) -> tuple[list[str], list[tuple[int, dict]]]:
    if isinstance(source, (str, Path)):
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise TaskingError(f"cannot read {source}: {exc.strerror or exc}") from exc
    else:
        text = source.read()
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    reader.fieldnames = fields
    rows = [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k})
            for row in reader]
    return fields, rows


def _clock(text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text if len(text) > 4 else text.zfill(5))
    except ValueError as exc:
        raise ValueError(f"bad time {text!r}: use HH:MM") from exc


def import_taskings(db: sqlite_utils.Database, source: str | Path | io.TextIOBase,
                    tz: dt.tzinfo = dt.UTC) -> ImportResult:
    """Import a tasking CSV (see the module docstring) into ``taskings``.

    :raises TaskingError: when required columns are missing.
    """
    fields, rows = _read_csv(source)
    if "collar" in fields and "officer" not in fields:
        rows = [(n, {**r, "officer": r.get("collar", "")}) for n, r in rows]
        fields.append("officer")
    missing = [c for c in ("date", "hotspot", "start", "end") if c not in fields]
    if missing or not ({"officer", "team"} & set(fields)):
        raise TaskingError("tasking CSV needs the columns date, hotspot, start, end, officer "
                           f"or team (and optionally required_minutes); missing: "
                           f"{', '.join(missing) or 'officer/team'}")
    result = ImportResult()
    now = int(time.time())
    with db.conn:
        for line, row in rows:
            try:
                day = dt.date.fromisoformat(row["date"])
                start_t, end_t = _clock(row["start"]), _clock(row["end"])
                officer, team = row.get("officer", ""), row.get("team", "")
                if bool(officer) == bool(team):
                    raise ValueError("give exactly one of officer and team")
                if not row["hotspot"]:
                    raise ValueError("hotspot is empty")
                req = row.get("required_minutes") or str(DEFAULT_REQUIRED_MIN)
                required_s = round(float(req) * 60)
                if required_s <= 0:
                    raise ValueError(f"required_minutes must be positive, got {req!r}")
            except ValueError as exc:
                result.rejected.append((line, str(exc)))
                continue
            start = dt.datetime.combine(day, start_t, tz)
            end_day = day + dt.timedelta(days=1) if end_t <= start_t else day
            end = dt.datetime.combine(end_day, end_t, tz)
            cursor = db.conn.execute(
                "INSERT OR IGNORE INTO taskings (date, hotspot, start_ts, end_ts, officer, team,"
                " required_s, note, imported_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (day.isoformat(), row["hotspot"], int(start.timestamp()), int(end.timestamp()),
                 officer, team, required_s, row.get("note", ""), now))
            if cursor.rowcount == 1:
                result.imported += 1
            else:
                result.duplicates += 1
    return result


def import_teams(db: sqlite_utils.Database, source: str | Path | io.TextIOBase) -> ImportResult:
    """Import ``team,collar`` rows into ``team_members``."""
    fields, rows = _read_csv(source)
    if not {"team", "collar"} <= set(fields):
        raise TaskingError("teams CSV needs the columns team and collar")
    result = ImportResult()
    with db.conn:
        for line, row in rows:
            if not row.get("team") or not row.get("collar"):
                result.rejected.append((line, "team and collar must both be given"))
                continue
            cursor = db.conn.execute("INSERT OR IGNORE INTO team_members (team, collar)"
                                     " VALUES (?, ?)", (row["team"], row["collar"]))
            if cursor.rowcount == 1:
                result.imported += 1
            else:
                result.duplicates += 1
    return result


def taskings_for(db: sqlite_utils.Database, day: str) -> list[Tasking]:
    """The taskings planned for local day ``day`` (``YYYY-MM-DD``), in window order."""
    return [Tasking(*row) for row in db.execute(
        "SELECT id, date, hotspot, start_ts, end_ts, officer, team, required_s FROM taskings"
        " WHERE date = ? ORDER BY start_ts, hotspot, id", (day,))]


def team_members(db: sqlite_utils.Database) -> dict[str, set[str]]:
    """Team name to the set of its members' collar numbers."""
    out: dict[str, set[str]] = defaultdict(set)
    for team, collar in db.execute("SELECT team, collar FROM team_members"):
        out[team].add(collar)
    return out


@dataclass
class Outcome:
    """A tasking and what happened (see the module docstring for ``status``)."""

    tasking: Tasking
    status: str
    in_window_s: int
    outside_window_s: int
    present: list[str]

    @property
    def exception(self) -> bool:
        return self.status != "done"

    def as_dict(self) -> dict:
        t = self.tasking
        return {
            "kind": "tasking", "status": self.status, "date": t.date, "hotspot": t.hotspot,
            "assignee": t.assignee, "start": t.start_ts, "end": t.end_ts,
            "required_min": round(t.required_s / 60, 2),
            "in_window_min": round(self.in_window_s / 60, 2),
            "outside_window_min": round(self.outside_window_s / 60, 2),
            "present": ";".join(self.present),
        }


def exception_report(taskings: list[Tasking], visits: list[Visit],
                     teams: dict[str, set[str]], day_window: tuple[int, int],
                     ) -> tuple[list[Outcome], list[Visit]]:
    """Outcome of every tasking, and the visits in ``day_window`` that no tasking covers.

    ``visits`` must cover the day and every tasking window (which may run past midnight).
    """
    by_key: dict[tuple[str, str], list[Visit]] = defaultdict(list)
    for v in visits:
        if v.officer:
            by_key[(v.officer, v.hotspot)].append(v)
    outcomes = []
    covered: set[int] = set()
    for t in taskings:
        members = {t.officer} if t.officer else teams.get(t.team, set())
        mine = [v for m in sorted(members) for v in by_key.get((m, t.hotspot), [])]
        day_lo = min(day_window[0], t.start_ts)
        day_hi = max(day_window[1], t.end_ts)
        spans = [(v.enter, v.leave) for v in mine]
        inside = union_seconds(clip_spans(spans, t.start_ts, t.end_ts))
        whole_day = union_seconds(clip_spans(spans, day_lo, day_hi))
        outside = whole_day - inside
        overlapping = [v for v in mine if v.leave > t.start_ts and v.enter < t.end_ts]
        present = sorted({v.officer for v in overlapping})
        covered.update(id(v) for v in overlapping)
        if inside >= t.required_s:
            status = "done"
        elif inside > 0:
            status = "too_short"
        elif outside > 0:
            status = "outside_window"
        else:
            status = "not_performed"
        outcomes.append(Outcome(t, status, inside, outside, present))
    lo, hi = day_window
    untasked = [v for v in visits
                if id(v) not in covered and v.leave > lo and v.enter < hi]
    return outcomes, untasked
