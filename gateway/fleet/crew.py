"""Vehicle crews: which officers rode in a vehicle, from when to when.

A vehicle is a device (source ``vehicle``) whose positions belong to everyone aboard: one or
more collar numbers at once, changing during a shift (one officer dropped off at the station,
another picked up). Unlike a tracker's :mod:`assignments <gateway.fleet.identity>`, which never
overlap, crew spans of one vehicle overlap by nature; each officer's own spans do not (boarding
a vehicle one is already aboard is an error).

This module writes the ``crews`` table; reports read it through
:func:`gateway.fleet.attribution.crew_spans` (the one reader of who had which device), which
splits a vehicle's stay into one piece per officer aboard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlite_utils

from gateway.fleet import identity

SOURCE = "vehicle"
OPEN_END = 2**62


class CrewError(ValueError):
    """A boarding or alighting that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Seat:
    """One officer aboard one vehicle from ``start_ts`` to ``end_ts`` (None: still aboard)."""

    id: int
    device_id: str
    collar: str
    start_ts: int
    end_ts: int | None


def register_vehicle(db: sqlite_utils.Database, device_id: str) -> bool:
    """Make ``device_id`` a known vehicle; returns False if it already was registered.

    :raises CrewError: the id is registered as another kind of device
    """
    row = db.execute("SELECT source, registered_at FROM devices WHERE device_id = ?",
                     (device_id,)).fetchone()
    if row is not None and row[1] is not None and row[0] != SOURCE:
        raise CrewError(f"{device_id} is registered as a {row[0]} device, not a vehicle")
    return identity.register_device(db, device_id, source=SOURCE)


def board(db: sqlite_utils.Database, device_id: str, collar: str, at: float | None = None,
          until: float | None = None) -> Seat:
    """Record that ``collar`` is aboard vehicle ``device_id`` from ``at`` (now by default)
    until ``until`` (open if not given). Registers the vehicle if needed.

    :raises CrewError: a bad collar number, an end not after the start, or the officer
        already aboard this vehicle over part of that time
    """
    if not identity.is_name(collar, "collar"):
        raise CrewError(f"collar number {collar!r}: 1-32 letters, digits, '_', '.', '-'")
    if not identity.is_name(device_id):
        raise CrewError(f"vehicle id {device_id!r}: 1-64 letters, digits, '_', '.', '-'")
    start = int(time.time() if at is None else at)
    end = None if until is None else int(until)
    if end is not None and end <= start:
        raise CrewError("the end must be after the start")
    register_vehicle(db, device_id)
    with db.conn:
        clash = db.execute(
            "SELECT start_ts, end_ts FROM crews WHERE device_id = ? AND collar = ?"
            " AND start_ts < ? AND (end_ts IS NULL OR end_ts > ?)",
            (device_id, collar, OPEN_END if end is None else end, start)).fetchone()
        if clash:
            until_text = "still aboard" if clash[1] is None else f"until {clash[1]}"
            raise CrewError(f"{collar} is already aboard {device_id} from {clash[0]}"
                            f" ({until_text})")
        cursor = db.execute(
            "INSERT INTO crews (device_id, collar, start_ts, end_ts, recorded_at)"
            " VALUES (?, ?, ?, ?, ?)", (device_id, collar, start, end, int(time.time())))
    return Seat(cursor.lastrowid, device_id, collar, start, end)


def alight(db: sqlite_utils.Database, device_id: str, collar: str, at: float | None = None
           ) -> Seat:
    """Record that ``collar`` left vehicle ``device_id`` at ``at`` (now by default).

    :raises CrewError: the officer was not aboard at that time
    """
    end = int(time.time() if at is None else at)
    with db.conn:
        row = db.execute(
            "SELECT id, start_ts FROM crews WHERE device_id = ? AND collar = ?"
            " AND start_ts < ? AND (end_ts IS NULL OR end_ts >= ?) ORDER BY start_ts DESC"
            " LIMIT 1", (device_id, collar, end, end)).fetchone()
        if row is None:
            raise CrewError(f"{collar} was not aboard {device_id} at {end}")
        db.execute("UPDATE crews SET end_ts = ? WHERE id = ?", (end, row[0]))
    return Seat(row[0], device_id, collar, row[1], end)


def crew(db: sqlite_utils.Database, device_id: str, at: float | None = None) -> list[str]:
    """Collar numbers aboard ``device_id`` at ``at`` (now by default), sorted."""
    t = int(time.time() if at is None else at)
    return [r[0] for r in db.execute(
        "SELECT collar FROM crews WHERE device_id = ? AND start_ts <= ?"
        " AND (end_ts IS NULL OR end_ts > ?) ORDER BY collar", (device_id, t, t))]


def seats(db: sqlite_utils.Database, device_id: str) -> list[Seat]:
    """Every crew span of the vehicle in time order."""
    return [Seat(*r) for r in db.execute(
        "SELECT id, device_id, collar, start_ts, end_ts FROM crews WHERE device_id = ?"
        " ORDER BY start_ts, collar", (device_id,))]
