"""Lifecycle alerts for pooled trackers: left on and still, and a battery wearing out.

Both read only SQLite, like the rest of ``hotspots status``:

- **Still while assigned**: a signed-out tracker that keeps reporting fixes from one spot for
  ``still_min`` minutes has most likely been left in a locker or a vehicle. Its newest fixes are
  walked back while they stay within ``radius_m`` of the newest one; if that run covers
  ``still_min`` and the tracker is still reporting, it is an alert (with the place).
- **Battery health**: the dock records the charge when a tracker leaves and when it comes back
  (``dock_events``); the drain per hour off the dock, shift after shift, rises as the cell loses
  capacity. The recent shifts' median is compared with the first shifts'.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass

import sqlite_utils

from gateway.intake.filters import distance_m


@dataclass(frozen=True)
class ShiftDrain:
    """One stretch off the dock: left at ``start`` with ``start_pct``, back at ``end``."""

    start: int
    end: int
    start_pct: int
    end_pct: int

    @property
    def pct_per_h(self) -> float:
        return (self.start_pct - self.end_pct) / max((self.end - self.start) / 3600, 1e-9)


def still_for_s(db: sqlite_utils.Database, device_id: str, now: int, window_s: int,
                radius_m: float = 30) -> tuple[int, float, float] | None:
    """How long the device's newest fixes (within ``window_s`` + 1 h before ``now``) have stayed
    within ``radius_m`` of the newest: ``(seconds, lat, lon)``, or None without fixes."""
    rows = db.execute(
        "SELECT tst, lat, lon FROM positions WHERE device_id = ? AND filtered IS NULL"
        " AND tst <= ? AND tst >= ? ORDER BY tst DESC LIMIT 2000",
        (device_id, now, now - window_s - 3600)).fetchall()
    if not rows:
        return None
    t_last, lat, lon = rows[0]
    earliest = t_last
    for tst, la, lo in rows[1:]:
        if distance_m(lat, lon, la, lo) > radius_m:
            break
        earliest = tst
    return t_last - earliest, lat, lon


def still_alerts(db: sqlite_utils.Database, assigned: list[tuple[str, str]], now: int,
                 still_min: float, radius_m: float = 30) -> Iterator[str]:
    """``STILL`` lines for assigned devices that report but have not moved for ``still_min``."""
    window = int(still_min * 60)
    for device_id, officer in assigned:
        found = still_for_s(db, device_id, now, window, radius_m)
        if found is None:
            continue
        seconds, lat, lon = found
        last = db.execute("SELECT max(tst) FROM positions WHERE device_id = ?",
                          (device_id,)).fetchone()[0]
        reporting = last is not None and now - last < window
        if seconds >= window and reporting:
            yield (f"STILL {device_id} (officer {officer}): not moved for {seconds // 60} min at"
                   f" {lat:.5f},{lon:.5f} while on; left in a locker or vehicle?")


def shift_drains(db: sqlite_utils.Database, device_id: str) -> list[ShiftDrain]:
    """Every stretch off the dock with a known charge at both ends, oldest first."""
    rows = db.execute(
        "SELECT ts, event, batt FROM dock_events WHERE device_id = ?"
        " AND event IN ('docked', 'undocked') ORDER BY ts, id", (device_id,)).fetchall()
    drains = []
    left: tuple[int, int] | None = None
    for ts, event, batt in rows:
        if event == "undocked":
            left = (ts, batt) if batt is not None and batt >= 0 else None
        elif left is not None and batt is not None and batt >= 0:
            if ts - left[0] >= 3600 and left[1] > batt:  # shifts, not a quick re-seat
                drains.append(ShiftDrain(left[0], ts, left[1], batt))
            left = None
    return drains


def battery_alerts(db: sqlite_utils.Database, now: int, ratio: float = 1.3,
                   shifts: int = 3) -> Iterator[str]:
    """``BATTERY HEALTH`` lines: recent drain per hour ``ratio`` × that of the first shifts."""
    devices = [row[0] for row in db.execute(
        "SELECT DISTINCT device_id FROM dock_events WHERE event = 'undocked' AND ts <= ?",
        (now,))]
    for device_id in devices:
        drains = [d for d in shift_drains(db, device_id) if d.end <= now]
        if len(drains) < 2 * shifts:
            continue
        first = statistics.median(d.pct_per_h for d in drains[:shifts])
        recent = statistics.median(d.pct_per_h for d in drains[-shifts:])
        if first > 0 and recent >= ratio * first:
            yield (f"BATTERY HEALTH {device_id}: drains {recent:.1f}%/h over the last {shifts}"
                   f" shifts, {first:.1f}%/h at first (+{(recent / first - 1) * 100:.0f}%);"
                   " replace the battery before it lets a shift down")


def last_location(db: sqlite_utils.Database, device_id: str) -> tuple[int, float, float] | None:
    """``(tst, lat, lon)`` of the device's newest kept position, or None."""
    row = db.execute(
        "SELECT tst, lat, lon FROM positions WHERE device_id = ? AND filtered IS NULL"
        " ORDER BY tst DESC LIMIT 1", (device_id,)).fetchone()
    return tuple(row) if row else None
