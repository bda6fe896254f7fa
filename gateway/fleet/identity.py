"""Who carried which device when: the fleet registry and the assignment history.

Pooled trackers change hands every shift, so a position belongs to a collar number only through
the history kept here: one row per (device, collar, from, to). Attribution is computed when a
report reads the positions (see the ``positions_attributed`` view), so an assignment recorded
after the fact — the paper log typed in at the end of the shift — re-attributes every position
it covers without rewriting a single position row.

The history of one device never overlaps: assigning a device at time ``t`` ends whatever
assignment was running at ``t``, and the new one never runs past the start of the next recorded
one (:func:`assign` says where else it ends).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

import sqlite_utils

COLLAR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
#: An Airwave radio is kept as device ``issi:<ISSI>`` with source ``airwave``
#: (``gateway.intake.airwave.store``).
RADIO_PREFIX = "issi:"
RADIO_SOURCE = "airwave"

#: SQL for the collar number carrying ``{table}.device_id`` at ``{table}.tst`` (NULL if nobody):
#: ``OFFICER_AT.format(table="p")`` inside a query over rows with a device and a fix time.
OFFICER_AT = (
    "(SELECT collar FROM assignments a WHERE a.device_id = {table}.device_id"
    " AND a.start_ts <= {table}.tst AND (a.end_ts IS NULL OR a.end_ts > {table}.tst)"
    " ORDER BY a.start_ts DESC LIMIT 1)"
)


class IdentityError(ValueError):
    """An assignment or return that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Assignment:
    """One stretch of one device with one officer; ``end_ts`` is None while still out."""

    id: int
    device_id: str
    collar: str
    start_ts: int
    end_ts: int | None
    due_ts: int | None


def parse_time(text: str, now: float | None = None) -> int:
    """UTC epoch seconds from ``1795000000``, ISO 8601 (naive means UTC) or ``HH:MM`` today (UTC).

    :raises IdentityError: with the accepted forms
    """
    text = text.strip()
    if re.fullmatch(r"\d{9,11}", text):
        return int(text)
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text):
        today = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).date()
        parts = [int(p) for p in text.split(":")]
        clock = dt.time(*parts, tzinfo=dt.UTC)
        return int(dt.datetime.combine(today, clock).timestamp())
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise IdentityError(f"cannot read time {text!r}: use epoch seconds, ISO 8601"
                            " (2026-11-24T09:00:00Z) or HH:MM (today, UTC)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp())


def register_device(db: sqlite_utils.Database, device_id: str, source: str | None = None,
                    at: float | None = None) -> bool:
    """Make ``device_id`` known to the gateway; returns False if it already was.

    ``source`` says what it is: ``tracker`` (a pooled tracker) by default, ``airwave`` for a
    radio's ``issi:<ISSI>``, or ``owntracks`` for a phone. Only trackers are counted by the dock.

    Messages it sent before it was registered stay in quarantine (reason ``unknown_device``);
    :func:`gateway.intake.ingest.Ingest` does not replay them by itself.
    """
    if source is None:
        source = RADIO_SOURCE if device_id.startswith(RADIO_PREFIX) else "tracker"
    at = int(time.time() if at is None else at)
    with db.conn:
        row = db.execute("SELECT registered_at FROM devices WHERE device_id = ?",
                         (device_id,)).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO devices (device_id, source, duplicates, max_seq, filtered,"
                " registered_at) VALUES (?, ?, 0, 0, 0, ?)", (device_id, source, at))
            return True
        if row[0] is None:
            db.execute("UPDATE devices SET registered_at = ? WHERE device_id = ?",
                       (at, device_id))
            return True
    return False


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


def assign(db: sqlite_utils.Database, device_id: str, collar: str, at: float | None = None,
           due: float | None = None, register: bool = True, until: float | None = None
           ) -> Assignment:
    """Record that officer ``collar`` has carried ``device_id`` since ``at`` (now by default).

    Whatever assignment of the device was running at ``at`` ends there. The new one ends at
    ``until`` when given (a paper log with both times), and otherwise where the stretch it was
    recorded in ended (the device came back then); it stays open if neither is known. It never
    runs past the start of the device's next recorded assignment. ``due`` is when the device
    should be back (end of the shift), for the "not returned" alert. Registers the device if
    needed (a radio's ``issi:<ISSI>`` as a radio), once everything asked is known to be valid:
    handing a tracker to an officer makes it part of the fleet.
    """
    if not COLLAR.match(collar):
        raise IdentityError(f"collar number {collar!r}: 1-32 letters, digits, '_', '.', '-'")
    now = int(time.time())
    start = int(now if at is None else at)
    if due is not None and due <= start:
        raise IdentityError("the due time must be after the start of the assignment")
    if until is not None and until <= start:
        raise IdentityError("the end must be after the start of the assignment")
    if register:
        register_device(db, device_id, at=now)
    elif db.execute("SELECT registered_at FROM devices WHERE device_id = ?",
                    (device_id,)).fetchone() in (None, (None,)):
        raise IdentityError(f"device {device_id!r} is not registered")
    with db.conn:
        if db.execute("SELECT 1 FROM assignments WHERE device_id = ? AND start_ts = ?",
                      (device_id, start)).fetchone():
            raise IdentityError(f"{device_id} already has an assignment starting at {start}")
        running = current(db, device_id, start)
        if running is not None:
            db.execute("UPDATE assignments SET end_ts = ? WHERE id = ?", (start, running.id))
        following = db.execute(
            "SELECT min(start_ts) FROM assignments WHERE device_id = ? AND start_ts > ?",
            (device_id, start)).fetchone()[0]
        if until is not None:
            end = int(until)
        elif running is not None:
            # Recorded inside a stretch: the new holder had it until that stretch ended.
            end = running.end_ts
        else:
            end = None
        if following is not None and (end is None or following < end):
            end = following
        cursor = db.execute(
            "INSERT INTO assignments (device_id, collar, start_ts, end_ts, due_ts, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (device_id, collar, start, end, None if due is None else int(due), now))
    return Assignment(cursor.lastrowid, device_id, collar, start, end,
                      None if due is None else int(due))


def return_device(db: sqlite_utils.Database, device_id: str, at: float | None = None
                  ) -> Assignment:
    """Record that ``device_id`` came back at ``at`` (now by default); returns the closed
    assignment.

    :raises IdentityError: if nobody had the device at that time
    """
    end = int(time.time() if at is None else at)
    with db.conn:
        running = current(db, device_id, end - 1)
        if running is None or running.start_ts >= end:
            raise IdentityError(f"{device_id} was not assigned to anyone at {end}")
        db.execute("UPDATE assignments SET end_ts = ? WHERE id = ?", (end, running.id))
    return Assignment(running.id, device_id, running.collar, running.start_ts, end,
                      running.due_ts)
