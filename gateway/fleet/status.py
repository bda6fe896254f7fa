"""Live status of the fleet from the gateway database: what a station sergeant looks at.

Per device: online or offline (from its retained status and its last will), battery, age of the
last fix, fence version, outbox depth as last reported, the officer it is assigned to, sequence
gaps (fixes the device numbered but the gateway never got), duplicates dropped and positions
filtered. Then alerts: assigned devices silent for too long, low batteries, devices not returned
by the end of the shift (with where they were last), unknown devices knocking, and the pooled
tracker lifecycle (:mod:`gateway.fleet.lifecycle`: left on and still, battery health). Then the
rejection counters.

Everything is read from SQLite, so ``hotspots status`` works beside a running gateway (WAL) and
after it has stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import sqlite_utils

from gateway.fleet import after_patrol, attribution, lifecycle


@dataclass(frozen=True)
class AlertRules:
    """When a device needs someone's attention."""

    silent_min: float = 10
    low_batt_pct: int = 20
    #: An assignment without a due time is overdue after this long.
    shift_hours: float = 10
    #: An assigned device reporting from one spot (``still_radius_m``) this long was left on.
    still_min: float = 30
    still_radius_m: float = 30
    #: Recent drain per hour off the dock this many times the first shifts': battery health.
    health_ratio: float = 1.3
    #: A phone still reporting this long after its patrol ended (gateway.fleet.after_patrol).
    after_patrol_min: float = 60


@dataclass
class DeviceStatus:
    """One device as the status table shows it."""

    device_id: str
    source: str | None
    registered: bool
    online: bool | None
    status_age_s: int | None
    last_seen_age_s: int | None
    last_fix_age_s: int | None
    batt: int | None
    fence_version: str | None
    outbox: int | None
    officer: str | None
    assigned_since: int | None
    due_ts: int | None
    max_seq: int
    missing: int
    gaps: list[tuple[int, int]] = field(default_factory=list)
    duplicates: int = 0
    filtered: int = 0
    quarantined: int = 0
    #: Newest kept position ``(tst, lat, lon)``, for "not returned: last seen at".
    last_location: tuple[int, float, float] | None = None
    #: The tracker's energy counters from its last status (``tracker.meter``: ``up_ms``,
    #: ``awake_ms``, ``gnss_on_ms``, ``fixes``, ``wakeups``, ``connects``, ``tx``, ``rx``).
    energy: dict | None = None
    #: Why the device refused the last fence set offered (it runs ``fence_version``), or None.
    fence_error: str | None = None
    fence_rejects: int | None = None


@dataclass
class FleetStatus:
    """The whole picture at ``now``."""

    now: int
    devices: list[DeviceStatus]
    alerts: list[str]
    quarantine: dict[str, int]
    filtered: dict[str, int]
    #: Quarantine rows the per-device budget deleted (oldest first): device -> (rows, bytes).
    evicted: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Optional fields dropped for a bad value, by field (``gateway.intake.validate``).
    dropped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def sequence_gaps(db: sqlite_utils.Database, device_id: str, limit: int = 20
                  ) -> tuple[int, list[tuple[int, int]]]:
    """Missing sequence numbers of a device: how many, and the first ``limit`` ranges.

    Sequence numbers start at 1 and count locations and transitions together, so a number that
    is in neither table never reached the gateway (lost in a device outbox overflow, or still
    on its way). Uses the ``(device_id, seq)`` indexes: a scan of one device's numbers.
    """
    rows = db.execute(
        "WITH s AS (SELECT seq FROM positions WHERE device_id = :d AND seq IS NOT NULL"
        " UNION SELECT seq FROM transitions WHERE device_id = :d AND seq IS NOT NULL),"
        " n AS (SELECT seq, lag(seq, 1, 0) OVER (ORDER BY seq) AS prev FROM s)"
        " SELECT prev + 1, seq - 1 FROM n WHERE seq - prev > 1 ORDER BY seq",
        {"d": device_id},
    ).fetchall()
    missing = sum(b - a + 1 for a, b in rows)
    return missing, [(a, b) for a, b in rows[:limit]]


def fleet_status(db: sqlite_utils.Database, now: float | None = None,
                 rules: AlertRules | None = None) -> FleetStatus:
    """Read the status of every device the gateway has heard of or registered."""
    now = int(time.time() if now is None else now)
    rules = rules or AlertRules()
    quarantined_by_device = dict(db.execute(
        "SELECT device_id, count(*) FROM quarantine WHERE device_id IS NOT NULL"
        " GROUP BY device_id").fetchall())
    carried = attribution.running(db, now)
    rows = db.execute(
        "SELECT d.device_id, d.source, d.registered_at, d.online, d.status_at, d.last_seen,"
        " d.last_fix_tst, d.batt, d.fence_version, d.outbox, d.max_seq,"
        " coalesce(d.duplicates, 0), coalesce(d.filtered, 0), d.energy,"
        " d.fence_error, d.fence_rejects"
        " FROM devices d ORDER BY d.device_id").fetchall()
    devices = []
    for (device_id, source, registered_at, online, status_at, last_seen, last_fix, batt,
         fences, outbox, max_seq, duplicates, filtered, energy, fence_error,
         fence_rejects) in rows:
        running = carried.get(device_id)
        collar, since, due = ((running.collar, running.start_ts, running.due_ts) if running
                              else (None, None, None))
        missing, gaps = sequence_gaps(db, device_id)
        place = lifecycle.last_location(db, device_id) if collar is not None else None
        devices.append(DeviceStatus(
            device_id=device_id, source=source, registered=registered_at is not None,
            online=None if online is None else bool(online),
            status_age_s=_age(now, status_at), last_seen_age_s=_age(now, last_seen),
            last_fix_age_s=_age(now, last_fix), batt=batt, fence_version=fences,
            outbox=outbox, officer=collar, assigned_since=since, due_ts=due,
            max_seq=max_seq or 0, missing=missing, gaps=gaps, duplicates=duplicates,
            filtered=filtered, quarantined=quarantined_by_device.get(device_id, 0),
            last_location=place, energy=json.loads(energy) if energy else None,
            fence_error=fence_error, fence_rejects=fence_rejects,
        ))
    assigned = [(d.device_id, d.officer) for d in devices if d.officer is not None]
    return FleetStatus(
        now=now,
        devices=devices,
        alerts=[*alerts(devices, now, rules),
                *lifecycle.still_alerts(db, assigned, now, rules.still_min, rules.still_radius_m),
                *lifecycle.battery_alerts(db, now, rules.health_ratio),
                *after_patrol.still_reporting(db, now, rules.after_patrol_min)],
        quarantine=dict(db.execute(
            "SELECT reason, count(*) FROM quarantine GROUP BY reason ORDER BY reason")),
        filtered=_filtered_counts(db),
        evicted={device or "-": (n, size) for device, n, size in db.execute(
            "SELECT device_id, n, bytes FROM intake_counters WHERE counter ="
            " 'quarantine_evicted' ORDER BY device_id")},
        dropped={counter.removeprefix("dropped:"): n for counter, n in db.execute(
            "SELECT counter, sum(n) FROM intake_counters WHERE counter LIKE 'dropped:%'"
            " GROUP BY counter ORDER BY counter")},
    )


def alerts(devices: list[DeviceStatus], now: int, rules: AlertRules) -> Iterator[str]:
    """The alert lines, most urgent kinds first."""
    for d in devices:
        if d.officer is None:
            continue
        heard = min(x for x in (d.last_seen_age_s, now - (d.assigned_since or now))
                    if x is not None)
        if heard > rules.silent_min * 60:
            yield (f"SILENT {d.device_id} (officer {d.officer}): nothing for"
                   f" {_duration(heard)}")
    for d in devices:
        if d.batt is not None and d.batt < rules.low_batt_pct and d.registered:
            yield f"LOW BATTERY {d.device_id}: {d.batt}%"
    for d in devices:
        # Only pooled trackers go back to the dock; a radio or a phone stays with its officer.
        if d.officer is None or d.assigned_since is None or d.source != "tracker":
            continue
        due = d.due_ts if d.due_ts is not None else d.assigned_since + rules.shift_hours * 3600
        if now > due:
            where = ""
            if d.last_location is not None:
                tst, lat, lon = d.last_location
                where = f"; last known at {lat:.5f},{lon:.5f} {_duration(now - tst)} ago"
            yield (f"NOT RETURNED {d.device_id} (officer {d.officer}):"
                   f" due back {_duration(now - due)} ago{where}")
    for d in devices:
        # The tracker kept its old set (or has none): hot spots added or changed since are
        # not enforced on it until someone fixes the set or the tracker.
        if d.fence_error:
            running = f"still running {d.fence_version}" if d.fence_version else "no hot spots"
            yield (f"FENCES REFUSED {d.device_id}: {d.fence_error} ({running};"
                   f" {d.fence_rejects or 1} refused since start-up)")
    for d in devices:
        if not d.registered:
            yield (f"UNKNOWN DEVICE {d.device_id}: {d.quarantined} messages quarantined;"
                   f" register it with: hotspots register {d.device_id}")


def status_lines(status: FleetStatus) -> Iterator[str]:
    """The status as aligned text."""
    yield (f"{'device':<14} {'state':<8} {'batt':>4} {'last fix':>9} {'seen':>8} {'fences':<10}"
           f" {'outbox':>6} {'officer':<8} {'max seq':>7} {'missing':>7} {'dups':>5}"
           f" {'filtered':>8}")
    for d in status.devices:
        state = "unknown" if not d.registered else (
            "-" if d.online is None else "online" if d.online else "offline")
        yield (f"{d.device_id:<14} {state:<8} {_opt(d.batt):>4} {_age_text(d.last_fix_age_s):>9}"
               f" {_age_text(d.last_seen_age_s):>8} {(d.fence_version or '-')[:10]:<10}"
               f" {_opt(d.outbox):>6} {d.officer or '-':<8} {d.max_seq:>7} {d.missing:>7}"
               f" {d.duplicates:>5} {d.filtered:>8}")
        if d.gaps:
            ranges = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in d.gaps)
            yield f"{'':<14} sequence gaps: {ranges}"
    yield ""
    yield "alerts:" if status.alerts else "alerts: none"
    yield from (f"  {line}" for line in status.alerts)
    yield ""
    quarantined = ", ".join(f"{k} {v}" for k, v in status.quarantine.items()) or "none"
    filtered = ", ".join(f"{k} {v}" for k, v in status.filtered.items()) or "none"
    yield f"quarantined: {quarantined}"
    if status.evicted:
        evicted = ", ".join(f"{d} {n} ({size} bytes)" for d, (n, size) in status.evicted.items())
        yield f"quarantine over budget, oldest deleted: {evicted}"
    if status.dropped:
        yield "fields dropped for a bad value: " + ", ".join(
            f"{k} {v}" for k, v in status.dropped.items())
    yield f"filtered positions (kept, left out of reports): {filtered}"


def _filtered_counts(db: sqlite_utils.Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reasons, n in db.execute(
            "SELECT filtered, count(*) FROM positions WHERE filtered IS NOT NULL"
            " GROUP BY filtered"):
        for reason in reasons.split(","):
            counts[reason] = counts.get(reason, 0) + n
    return dict(sorted(counts.items()))


def _age(now: int, then: float | None) -> int | None:
    return None if then is None else max(0, int(now - then))


def _opt(value: object) -> str:
    return "-" if value is None else str(value)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _age_text(seconds: int | None) -> str:
    return "-" if seconds is None else _duration(seconds)
