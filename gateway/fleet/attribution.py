"""Who carried which device when: the one place that reads the assignment history.

Pooled trackers change hands every shift and radios are issued per shift, so a position,
transition or visit belongs to a collar number only through ``assignments``
(:mod:`gateway.fleet.identity` writes it: ``assign``, ``return``). The rule, everywhere:

    a fix of device *d* at time *t* belongs to the collar number of *d*'s assignment with
    ``start_ts <= t < end_ts`` (``end_ts`` NULL: still out); if two were recorded over *t*,
    the one that started last; nobody's if none covers *t*.

Attribution is computed when something reads the positions, never stored with them, so an
assignment recorded after the fact (the paper log typed in at the end of the shift)
re-attributes everything it covers. Every reader takes the rule from here: SQL for a query
(:func:`officer_at_sql`, the ``positions_attributed`` view built by the schema's migration with
the same rule spelt out), spans for code (:func:`spans`, :func:`officer_at`, :func:`split`,
:func:`shifts`), and the running assignment for the fleet status (:func:`current`,
:func:`running`).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

#: Stands for "no end yet" in spans (far beyond any fix time).
FOREVER = 2**62

_OFFICER_AT = (
    "(SELECT collar FROM assignments a WHERE a.device_id = {table}.device_id"
    " AND a.start_ts <= {table}.{time} AND (a.end_ts IS NULL OR a.end_ts > {table}.{time})"
    " ORDER BY a.start_ts DESC LIMIT 1)"
)


@dataclass(frozen=True)
class Assignment:
    """One stretch of one device with one officer; ``end_ts`` is None while still out."""

    id: int
    device_id: str
    collar: str
    start_ts: int
    end_ts: int | None
    due_ts: int | None


@dataclass(frozen=True)
class Span:
    """``[start, end)`` of one device with ``collar`` (``end`` is :data:`FOREVER` while out)."""

    start: int
    end: int
    collar: str


def officer_at_sql(table: str, time_column: str = "tst") -> str:
    """SQL for the collar number carrying ``{table}.device_id`` at ``{table}.{time_column}``
    (NULL if nobody), to use as a column: ``SELECT p.*, <this> AS officer FROM positions p``."""
    return _OFFICER_AT.format(table=table, time=time_column)


def history(db: sqlite_utils.Database, device_id: str) -> list[Assignment]:
    """The device's assignments in time order."""
    rows = db.execute(
        "SELECT id, device_id, collar, start_ts, end_ts, due_ts FROM assignments"
        " WHERE device_id = ? ORDER BY start_ts, id", (device_id,)).fetchall()
    return [Assignment(*row) for row in rows]


def current(db: sqlite_utils.Database, device_id: str, at: float | None = None
            ) -> Assignment | None:
    """The assignment of ``device_id`` running at ``at`` (now by default), if any."""
    at = int(time.time() if at is None else at)
    row = db.execute(
        "SELECT id, device_id, collar, start_ts, end_ts, due_ts FROM assignments"
        " WHERE device_id = ? AND start_ts <= ? AND (end_ts IS NULL OR end_ts > ?)"
        " ORDER BY start_ts DESC LIMIT 1", (device_id, at, at)).fetchone()
    return Assignment(*row) if row else None


def running(db: sqlite_utils.Database, at: float) -> dict[str, Assignment]:
    """Every device's assignment running at ``at`` (the fleet status's "officer" column)."""
    out: dict[str, Assignment] = {}
    for row in db.execute(
            "SELECT id, device_id, collar, start_ts, end_ts, due_ts FROM assignments"
            " WHERE start_ts <= :at AND (end_ts IS NULL OR end_ts > :at)"
            " ORDER BY device_id, start_ts", {"at": int(at)}):
        out[row[1]] = Assignment(*row)  # the last started wins, as in officer_at_sql
    return out


def spans(db: sqlite_utils.Database, devices: Iterable[str] | None = None,
          window: tuple[int, int] | None = None) -> dict[str, list[Span]]:
    """Assignment spans per device in start order: of ``devices`` (all when None), overlapping
    ``window`` (``[start, end)``, all time when None)."""
    out: dict[str, list[Span]] = defaultdict(list)
    clauses, args = [], []
    if window is not None:
        clauses.append("start_ts < ? AND (end_ts IS NULL OR end_ts > ?)")
        args += [window[1], window[0]]
    chunks: list[list[str] | None] = [None]
    if devices is not None:
        names = sorted(set(devices))
        chunks = [names[i:i + 500] for i in range(0, len(names), 500)]
    for chunk in chunks:
        where = list(clauses)
        chunk_args = list(args)
        if chunk is not None:
            where.append(f"device_id IN ({','.join('?' * len(chunk))})")
            chunk_args += chunk
        sql = "SELECT device_id, collar, start_ts, end_ts FROM assignments"
        if where:
            sql += " WHERE " + " AND ".join(where)
        for device_id, collar, a, b in db.execute(sql + " ORDER BY device_id, start_ts, id",
                                                  chunk_args):
            out[device_id].append(Span(a, FOREVER if b is None else b, collar))
    return out


def officer_at(device_spans: list[Span], t: int) -> str | None:
    """The collar number of the span covering ``t`` (the last started, as the SQL rule)."""
    collar = None
    for span in device_spans:
        if span.start > t:
            break
        if t < span.end:
            collar = span.collar
    return collar


def crew_spans(db: sqlite_utils.Database, devices: Iterable[str] | None = None
               ) -> dict[str, list[Span]]:
    """Vehicle crew spans per device in start order (table ``crews``,
    :mod:`gateway.fleet.crew`): unlike assignments, a vehicle's spans overlap, one per officer
    aboard."""
    out: dict[str, list[Span]] = defaultdict(list)
    chunks: list[list[str] | None] = [None]
    if devices is not None:
        names = sorted(set(devices))
        chunks = [names[i:i + 500] for i in range(0, len(names), 500)]
    for chunk in chunks:
        sql = "SELECT device_id, collar, start_ts, end_ts FROM crews"
        args: list = []
        if chunk is not None:
            sql += f" WHERE device_id IN ({','.join('?' * len(chunk))})"
            args = chunk
        for device_id, collar, a, b in db.execute(sql + " ORDER BY device_id, start_ts, id",
                                                  args):
            out[device_id].append(Span(a, FOREVER if b is None else b, collar))
    return out


def split(device_spans: list[Span], enter: int, leave: int, crew: Iterable[Span] = (),
          ) -> list[tuple[str | None, int, int]]:
    """``[enter, leave]`` cut at assignment boundaries: ``(collar or None, from, to)`` pieces
    covering it in order. A zero-length stay is one piece.

    With a vehicle's ``crew`` spans, each officer aboard gets their own piece as well (the
    pieces overlap), and only time neither an assignment nor a crew member covers is left
    without an officer.
    """
    pieces = _split(device_spans, enter, leave)
    crew = list(crew)
    if not crew:
        return pieces
    out = [p for p in pieces if p[0] is not None]
    covered = []
    for span in crew:
        inside = span.start <= enter < span.end if enter == leave else (
            span.start < leave and span.end > enter)
        if inside:
            lo, hi = max(span.start, enter), min(span.end, leave)
            out.append((span.collar, lo, hi))
            covered.append((lo, hi))
    for collar, a, b in pieces:
        if collar is None:
            out += [(None, lo, hi) for lo, hi in _uncovered(a, b, covered)]
    out.sort(key=lambda p: (p[1], p[2], p[0] or ""))
    return out


def _uncovered(a: int, b: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[a, b]`` outside every ``covered`` span (a zero-length ``a == b``: kept
    unless a span holds it)."""
    if a == b:
        return [] if any(lo <= a <= hi for lo, hi in covered) else [(a, b)]
    out, cursor = [], a
    for lo, hi in sorted(covered):
        if hi <= cursor or lo >= b:
            continue
        if lo > cursor:
            out.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < b:
        out.append((cursor, b))
    return out


def _split(device_spans: list[Span], enter: int, leave: int,
           ) -> list[tuple[str | None, int, int]]:
    out: list[tuple[str | None, int, int]] = []
    cursor = enter
    for span in device_spans:
        if span.end <= cursor or span.start >= leave:
            continue
        if span.start > cursor:
            out.append((None, cursor, span.start))
        lo, hi = max(span.start, cursor), min(span.end, leave)
        out.append((span.collar, lo, hi))
        cursor = hi
    if cursor < leave or not out:
        out.append((None, cursor, leave))
    return out


def shifts(per_device: dict[str, list[Span]]) -> dict[str, list[tuple[int, int]]]:
    """Per collar number, its shifts: the union of its overlapping assignment spans (a tracker
    and a radio issued together make one shift), in time order."""
    per_collar: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for span in sorted((s for spans_ in per_device.values() for s in spans_),
                       key=lambda s: (s.start, s.end)):
        merged = per_collar[span.collar]
        if merged and span.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span.end))
        else:
            merged.append((span.start, span.end))
    return per_collar


def shift_of(collar_shifts: list[tuple[int, int]], t: int) -> int:
    """Index of the shift (from :func:`shifts`) that ``t`` falls in."""
    return bisect_right([a for a, _ in collar_shifts], t) - 1
