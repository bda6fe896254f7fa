"""What the live page shows: who is where now, which hot spots are being patrolled, the fleet.

Everything is read from the gateway's SQLite file (WAL), so the web app runs beside the gateway
in its own process. New fixes are found by the ``positions`` rowid, which only grows: checking
``max(id)`` is one b-tree descent, cheap enough to do five times a second
(:class:`FixWatcher`), so a fix reaches the browser well within 2 s of being stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import shapely
import sqlite_utils
from shapely.geometry import Point

from fences.validate import FenceError
from gateway.fleet.attribution import officer_at_sql
from gateway.fleet.status import fleet_status
from gateway.reports.visits import HotSpotSet
from gateway.web import fence_sets

#: A device whose newest fix is older than this is not shown as "in" a hot spot now.
FRESH_S = 300
#: Only devices heard from within this long are on the live map.
MAP_WINDOW_S = 12 * 3600
#: A device whose latest crossing of a hot spot is "enter" counts as in it while it has been
#: heard from within this long (a stationary tracker sends a heartbeat every 15 minutes).
HEARD_S = 20 * 60


def _officer_sql() -> str:
    return officer_at_sql("p")


def latest_fixes(db: sqlite_utils.Database, now: float, window_s: int = MAP_WINDOW_S
                 ) -> list[dict]:
    """The newest kept fix of every device heard from within ``window_s``, with its officer.

    One index seek per device (``positions(device_id, tst)``), not a scan of the day.
    """
    out = []
    devices = db.execute("SELECT device_id, source FROM devices WHERE coalesce(last_seen, 0) >= ?"
                         " OR coalesce(last_fix_tst, 0) >= ? ORDER BY device_id",
                         (now - window_s, now - window_s)).fetchall()
    for device_id, source in devices:
        row = db.execute(
            f"SELECT p.id, p.tst, p.lat, p.lon, p.speed_mps, p.source, {_officer_sql()}"
            " FROM positions p WHERE p.device_id = ? AND p.filtered IS NULL AND p.tst >= ?"
            " ORDER BY p.tst DESC LIMIT 1", (device_id, now - window_s)).fetchone()
        if row:
            out.append(_fix(device_id, row, source))
    return out


def _fix(device_id: str, row: tuple, source: str | None = None) -> dict:
    pid, tst, lat, lon, speed, psource, officer = row
    return {"id": pid, "device_id": device_id, "tst": tst, "lat": lat, "lon": lon,
            "speed_mps": speed, "source": psource or source, "officer": officer}


def fixes_after(db: sqlite_utils.Database, after_id: int, limit: int = 5000) -> list[dict]:
    """Kept fixes stored after rowid ``after_id``, oldest first, with their officers."""
    rows = db.execute(
        f"SELECT p.device_id, p.id, p.tst, p.lat, p.lon, p.speed_mps, p.source, {_officer_sql()}"
        " FROM positions p WHERE p.id > ? AND p.filtered IS NULL ORDER BY p.id LIMIT ?",
        (after_id, limit)).fetchall()
    return [_fix(r[0], r[1:]) for r in rows]


def max_position_id(db: sqlite_utils.Database) -> int:
    """The newest ``positions`` rowid (0 for none)."""
    return db.execute("SELECT coalesce(max(id), 0) FROM positions").fetchone()[0]


def hotspots_now(db: sqlite_utils.Database, now: float) -> tuple[HotSpotSet | None, dict | None]:
    """The hot spot set in force now, loaded, and its row's summary."""
    row = fence_sets.in_force(db, now)
    if row is None:
        return None, None
    try:
        spots = HotSpotSet.load(row.geojson)
    except FenceError:
        return None, None
    return spots, {"id": row.id, "version": row.version}


def max_transition_id(db: sqlite_utils.Database) -> int:
    """The newest ``transitions`` rowid (0 for none)."""
    return db.execute("SELECT coalesce(max(id), 0) FROM transitions").fetchone()[0]


def inside_by_transitions(db: sqlite_utils.Database, now: float,
                          heard_s: int = HEARD_S) -> dict[str, list[str]]:
    """Hot spot id to who is in it now by the devices' own crossings: the device's latest
    transition for that hot spot is ``enter``, and the device was heard from recently.

    Trackers batch their positions (every 10 minutes in the normal tier) but send a crossing
    at once, so this is what makes the live page say "being patrolled" as it happens.
    """
    rows = db.execute(
        "SELECT t.rid, t.event, t.device_id, " + officer_at_sql("t") +
        " FROM transitions t JOIN (SELECT device_id, rid, max(tst) AS tst FROM transitions"
        "  WHERE tst >= ? GROUP BY device_id, rid) last"
        " ON last.device_id = t.device_id AND last.rid = t.rid AND last.tst = t.tst"
        " JOIN devices d ON d.device_id = t.device_id WHERE d.last_seen >= ?",
        (now - MAP_WINDOW_S, now - heard_s)).fetchall()
    out: dict[str, list[str]] = {}
    for rid, event, device_id, officer in rows:
        if event == "enter":
            who = officer or f"device:{device_id}"
            if who not in out.setdefault(rid, []):
                out[rid].append(who)
    return out


def patrolled(fixes: list[dict], spots: HotSpotSet | None, now: float,
              fresh_s: int = FRESH_S, crossings: dict[str, list[str]] | None = None
              ) -> dict[str, list[str]]:
    """Hot spot id to who is in it now (officer, or ``device:<id>``): from fresh fixes inside
    it, and from ``crossings`` (:func:`inside_by_transitions`)."""
    out: dict[str, list[str]] = {k: list(v) for k, v in (crossings or {}).items()}
    if spots is None:
        return out
    for fix in fixes:
        if now - fix["tst"] > fresh_s:
            continue
        point = Point(fix["lon"], fix["lat"])
        for hid, geom in zip(spots.ids, spots.lonlat, strict=True):
            who = fix["officer"] or f"device:{fix['device_id']}"
            if shapely.contains(geom, point) and who not in out.get(hid, []):
                out.setdefault(hid, []).append(who)
    return out


@dataclass
class DeviceState:
    """One device's row in the fleet table, with its state labels."""

    device_id: str
    source: str | None
    officer: str | None
    batt: int | None
    last_fix_age_s: int | None
    fence_version: str | None
    states: list[str] = field(default_factory=list)


def fleet(db: sqlite_utils.Database, now: float, fence_version: str | None) -> dict:
    """Fleet state per device (docked, charging, signed out, not returned, low battery, silent,
    fences refused, fences out of date, unknown device) and the status alerts, from
    :func:`fleet_status`."""
    status = fleet_status(db, now)
    docked = {row[0]: row[1] for row in db.execute(
        "SELECT device_id, charging FROM dock_slots WHERE device_id IS NOT NULL"
        " AND state = 'docked'")}
    flagged: dict[str, set[str]] = {}
    for line in status.alerts:
        for label in ("NOT RETURNED", "LOW BATTERY", "SILENT", "FENCES REFUSED",
                      "UNKNOWN DEVICE"):
            if line.startswith(label + " "):
                device = line[len(label) + 1:].split()[0].rstrip(":")
                flagged.setdefault(device, set()).add(label.lower())
    rows = []
    for d in status.devices:
        states = []
        if d.device_id in docked:
            states.append("docked")
            if docked[d.device_id]:
                states.append("charging")
        if d.officer:
            states.append("signed out")
        states += sorted(flagged.get(d.device_id, ()))
        if (fence_version and d.fence_version and d.source == "tracker"
                and d.fence_version != fence_version):
            states.append("fences out of date")
        rows.append(DeviceState(d.device_id, d.source, d.officer, d.batt, d.last_fix_age_s,
                                d.fence_version, states).__dict__)
    return {"devices": rows, "alerts": status.alerts, "quarantine": status.quarantine}


def snapshot(db: sqlite_utils.Database, now: float | None = None, with_fleet: bool = True
             ) -> dict:
    """Everything the live page draws, in one JSON-ready dict."""
    now = time.time() if now is None else now
    spots, fence_row = hotspots_now(db, now)
    fixes = latest_fixes(db, now)
    out = {
        "now": int(now),
        "last_id": max_position_id(db),
        "last_transition_id": max_transition_id(db),
        "fixes": fixes,
        "fence_set": fence_row,
        "hotspots": ({"type": "FeatureCollection",
                      "features": [spots.geojson_feature(i) for i in range(len(spots))]}
                     if spots else None),
        "patrolled": patrolled(fixes, spots, now, crossings=inside_by_transitions(db, now)),
    }
    if with_fleet:
        out["fleet"] = fleet(db, now, fence_row["version"] if fence_row else None)
    return out
