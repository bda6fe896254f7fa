"""The dock desk: what the station staff see (``hotspots dock status``) and do (``hotspots dock
pick``: hand out the fullest tracker, or say why not)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlite_utils

from gateway.fleet import attribution, identity
from gateway.fleet.dock.battery import BatteryModel, time_to

#: Trackers below this charge are not handed out.
MIN_CHARGE_PCT = 50


class PickError(ValueError):
    """No tracker can be handed out as asked; the message names what can."""


# -- what the station staff see and do ---------------------------------------------------------
@dataclass
class SlotStatus:
    """One slot as ``hotspots dock status`` shows it."""

    slot: str
    device_id: str | None
    state: str
    batt: int | None
    charging: bool | None
    time_to_full_s: int | None
    outbox: int | None
    fence_version: str | None
    officer: str | None
    docked_since: int | None
    detail: str | None
    updated_age_s: int | None


@dataclass
class OutStatus:
    """A tracker that is not in any slot."""

    device_id: str
    officer: str | None
    since: int | None
    due_ts: int | None
    batt: int | None
    last_fix_age_s: int | None


@dataclass
class DockStatus:
    slots: list[SlotStatus]
    out: list[OutStatus]
    now: int


def dock_status(db: sqlite_utils.Database, now: float | None = None,
                model: BatteryModel | None = None) -> DockStatus:
    """Every slot (with charge and time to full) and every registered tracker out of the dock."""
    now = int(time.time() if now is None else now)
    model = model or BatteryModel()
    slots = []
    for (slot, device, state, batt, charging, outbox, fences, docked_at, detail,
         updated) in db.execute(
            "SELECT slot, device_id, state, batt, charging, outbox, fence_version, docked_at,"
            " detail, updated_at FROM dock_slots ORDER BY slot"):
        running = attribution.current(db, device, now) if device else None
        to_full = None
        if device is not None and batt is not None and batt >= 0:
            to_full = model.time_to_full_s(batt) if batt < 100 else 0
        slots.append(SlotStatus(slot, device, state or "empty", batt,
                                None if charging is None else bool(charging), to_full, outbox,
                                fences, running.collar if running else None,
                                docked_at if device else None, detail,
                                None if updated is None else max(0, now - updated)))
    docked = {s.device_id for s in slots if s.device_id}
    out = []
    for device, batt, last_fix in db.execute(
            "SELECT device_id, batt, last_fix_tst FROM devices WHERE registered_at IS NOT NULL"
            " AND source = 'tracker' ORDER BY device_id"):
        if device in docked:
            continue
        running = attribution.current(db, device, now)
        out.append(OutStatus(device, running.collar if running else None,
                             running.start_ts if running else None,
                             running.due_ts if running else None, batt,
                             None if not last_fix else max(0, now - last_fix)))
    return DockStatus(slots, out, now)


def status_lines(status: DockStatus) -> list[str]:
    """``hotspots dock status`` as aligned text."""
    lines = [f"{'slot':<8} {'device':<12} {'state':<8} {'batt':>5} {'charging':<9}"
             f" {'full in':>8} {'outbox':>6} {'fences':<12} {'officer':<8} detail"]
    for s in status.slots:
        lines.append(
            f"{s.slot:<8} {s.device_id or '-':<12} {s.state:<8} {_pct(s.batt):>5}"
            f" {('yes' if s.charging else 'no') if s.charging is not None else '-':<9}"
            f" {_mins(s.time_to_full_s):>8} {_opt(s.outbox):>6} {(s.fence_version or '-'):<12}"
            f" {s.officer or '-':<8} {s.detail or ''}".rstrip())
    lines.append("")
    lines.append("out of the dock:" if status.out else "out of the dock: none")
    for o in status.out:
        who = f"with {o.officer} since {_clock(o.since)}" if o.officer else "not signed out"
        due = f", due {_clock(o.due_ts)}" if o.due_ts else ""
        fix = f", last fix {_mins(o.last_fix_age_s)} ago" if o.last_fix_age_s is not None else ""
        lines.append(f"  {o.device_id:<12} {who}{due}, batt {_pct(o.batt)}{fix}")
    return lines


def candidates(db: sqlite_utils.Database, now: float) -> list[tuple[str, str, int]]:
    """Docked trackers nobody has signed out: ``(device, slot, batt)``, fullest first."""
    rows = db.execute(
        "SELECT device_id, slot, coalesce(batt, -1) FROM dock_slots WHERE device_id IS NOT NULL"
        " ORDER BY coalesce(batt, -1) DESC, slot").fetchall()
    return [(d, s, b) for d, s, b in rows if attribution.current(db, d, now) is None]


def refusal(db: sqlite_utils.Database, device_id: str, batt: int, min_pct: int,
            model: BatteryModel, now: float) -> str:
    """Why ``device_id`` is not handed out, and what to take instead."""
    text = (f"{device_id} is at {batt}% (below {min_pct}%), charged enough in"
            f" {_mins(time_to(model, batt, min_pct))}")
    others = [c for c in candidates(db, now) if c[0] != device_id and c[2] >= min_pct]
    if others:
        best = others[0]
        text += f"; take {best[0]} ({best[2]}%, slot {best[1]}): hotspots dock pick COLLAR"
    return text


def pick(db: sqlite_utils.Database, collar: str, *, device: str | None = None,
         min_pct: int = MIN_CHARGE_PCT, now: float | None = None, due: float | None = None,
         model: BatteryModel | None = None) -> tuple[attribution.Assignment, str, int]:
    """Sign the fullest docked tracker (or ``device``) out to ``collar``.

    Returns ``(assignment, slot, batt)``; the running dock station arms the tracker at its next
    poll. Raises :class:`PickError` if the tracker is below ``min_pct`` (naming the fullest
    one instead) or none is docked and free.
    """
    now = int(time.time() if now is None else now)
    model = model or BatteryModel()
    free = candidates(db, now)
    if not free:
        raise PickError("no tracker in the dock is free to hand out")
    if device is None:
        chosen = free[0]
        if chosen[2] < min_pct:
            raise PickError(
                f"no tracker is charged to {min_pct}%: the fullest, {chosen[0]} in slot"
                f" {chosen[1]}, is at {chosen[2]}% and will be in"
                f" {_mins(time_to(model, chosen[2], min_pct))}")
    else:
        match = [c for c in free if c[0] == device]
        if not match:
            raise PickError(f"{device} is not in the dock, or already signed out;"
                            f" free: {', '.join(f'{d} ({b}%)' for d, _, b in free)}")
        chosen = match[0]
        if chosen[2] < min_pct:
            raise PickError(refusal(db, device, chosen[2], min_pct, model, now))
    try:
        assignment = identity.assign(db, chosen[0], collar, at=now, due=due)
    except identity.IdentityError as exc:
        raise PickError(str(exc)) from exc
    return assignment, chosen[1], chosen[2]


def _pct(value: int | None) -> str:
    return "-" if value is None or value < 0 else f"{value}%"


def _opt(value: object) -> str:
    return "-" if value is None else str(value)


def _mins(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{(seconds + 59) // 60}m"


def _clock(ts: int | None) -> str:
    return "-" if ts is None else time.strftime("%H:%M", time.gmtime(ts))
