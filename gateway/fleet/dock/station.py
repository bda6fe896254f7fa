"""The dock station: one thread per slot that docks, pulls, pushes, arms and notices removal
(see :mod:`gateway.fleet.dock`)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlite_utils

from gateway.fleet import attribution, identity
from gateway.fleet.dock.battery import BatteryModel
from gateway.fleet.dock.desk import MIN_CHARGE_PCT, refusal
from gateway.fleet.dock.link import BadAnswer, DeviceInfo, DockClient, DockError, LinkDown
from gateway.intake import mqtt as tracker_messages
from gateway.intake.intake import Intake, IntakeCounts
from gateway.schema import open_db

MISSED_POLLS = 3  # unanswered polls in a row: the slot is empty


# -- the station ----------------------------------------------------------------------------
@dataclass
class SlotCounts:
    """What happened at one slot since the station started."""

    dockings: int = 0
    undockings: int = 0
    pulled: int = 0
    intake: IntakeCounts = field(default_factory=IntakeCounts)
    fences_pushed: int = 0
    refused: int = 0
    errors: int = 0
    #: Every poll ends in exactly one of: ``ok``, ``link_down`` (nothing answered),
    #: ``errors`` (a bad answer, a refusal, or anything else: counted, the slot goes on).
    polls: int = 0
    ok: int = 0
    link_down: int = 0


class DockStation:
    """Serves every slot of a dock, one thread per slot (each with its own SQLite connection).

    :param db_path: the gateway database (shared with ``hotspots gateway run``: WAL)
    :param slots: slot name -> serial port (or pyserial URL)
    :param fences_text: the station's compiled fence set (JSON wrapper text), or None
    :param config: settings for the trackers (``{"report_s": 10}``)
    :param clock: station time for the lifecycle (docking, returns), UTC epoch seconds;
        injected so a simulated shift can run on simulated time
    :param min_charge_pct: refuse to arm a tracker below this charge
    """

    def __init__(self, db_path: str, slots: dict[str, str], *, fences_text: str | None = None,
                 config: dict | None = None, clock: Callable[[], float] = time.time,
                 min_charge_pct: int = MIN_CHARGE_PCT, poll_s: float = 0.5,
                 timeout_s: float = 0.5, model: BatteryModel | None = None,
                 battery_log_s: float = 60):
        self.db_path = db_path
        self.slots = dict(slots)
        self.fences_text = fences_text
        self.fences_version = _fence_version(fences_text) if fences_text else None
        self.config = dict(config or {})
        self.clock = clock
        self.min_charge_pct = min_charge_pct
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.model = model or BatteryModel()
        self.battery_log_s = battery_log_s
        self.counts = {name: SlotCounts() for name in self.slots}
        #: The latest ``ID`` answer per slot (None while empty).
        self.info: dict[str, DeviceInfo | None] = {name: None for name in self.slots}
        self._threads: list[threading.Thread] = []
        #: Builds each slot's :class:`DockClient` (a test hands in one on another transport).
        self.client_factory: Callable[..., DockClient] = DockClient

    # -- threads ----------------------------------------------------------------------------
    def start(self, stop: threading.Event) -> DockStation:
        for name in self.slots:
            thread = threading.Thread(target=self.serve_slot, args=(name, stop),
                                      name=f"dock-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def join(self, timeout: float = 10) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def run(self, stop: threading.Event) -> dict[str, SlotCounts]:
        """Serve every slot until ``stop`` is set."""
        self.start(stop)
        self.join(timeout=None)
        return self.counts

    def serve_slot(self, name: str, stop: threading.Event) -> None:
        """Poll one slot until ``stop``: dock, pull, push, arm, and notice removal."""
        db = open_db(self.db_path)
        db.execute("PRAGMA synchronous = FULL")  # an ACK releases the device's only copy
        db.conn.execute("PRAGMA busy_timeout = 10000")
        intake = Intake(db)
        intake.counts = self.counts[name].intake
        client = self.client_factory(self.slots[name], timeout_s=self.timeout_s)
        from gateway.fleet import enrol  # (imports this package)

        _slot_row(db, name, self.slots[name], None, "empty", self.clock())
        device: str | None = None
        missed = 0
        last_log = 0.0
        try:
            while not stop.is_set():
                started = time.monotonic()
                self.counts[name].polls += 1
                try:
                    info = client.identify()
                except LinkDown:
                    missed += 1
                    self.counts[name].link_down += 1
                    if device is not None and missed >= MISSED_POLLS:
                        self._undocked(db, name, device)
                        device = None
                    continue
                except BadAnswer:
                    self.counts[name].errors += 1  # the link is fine; the answer was not
                    stop.wait(self.poll_s)
                    continue
                except Exception:  # noqa: BLE001 - serial errors and anything else: the
                    # slot thread must outlive any device; reopen the port and go on.
                    self.counts[name].errors += 1
                    client.close()
                    stop.wait(self.poll_s)
                    continue
                missed = 0
                self.info[name] = info
                try:
                    if enrol.run_pending(self.db_path, name, client, info, db, self.clock):
                        info = client.identify()  # enrolled (hotspots enrol --slot)
                    if info.device_id != device:
                        if device is not None:
                            self._undocked(db, name, device)
                        device = info.device_id
                        self._docked(db, intake, client, name, info)
                        last_log = 0.0
                        info = client.identify()
                    self._docked_poll(db, intake, client, name, info)
                    if self.clock() - last_log >= self.battery_log_s:
                        last_log = self.clock()
                        db.execute("INSERT INTO battery_log (device_id, ts, batt, charging, docked)"
                                   " VALUES (?, ?, ?, ?, 1)",
                                   (info.device_id, int(self.clock()), info.batt,
                                    _flag(info.charging)))
                        db.conn.commit()
                except LinkDown:
                    missed += 1  # pulled out mid-conversation: the next polls will tell
                    self.counts[name].link_down += 1
                except Exception as exc:  # noqa: BLE001 - a bad answer, a refused request, a
                    # database hiccup: counted and logged for this slot, which keeps serving.
                    self.counts[name].errors += 1
                    try:
                        self._event(db, name, device, "error", info.batt,
                                    f"{type(exc).__name__}: {exc}"[:200])
                    except sqlite3.Error:
                        pass
                else:
                    self.counts[name].ok += 1
                stop.wait(max(0.0, self.poll_s - (time.monotonic() - started)))
        finally:
            client.close()
            intake.rollback()
            db.close()

    # -- what happens at the dock -----------------------------------------------------------
    def _docked(self, db: sqlite_utils.Database, intake: Intake, client: DockClient, slot: str,
                info: DeviceInfo) -> None:
        now = int(self.clock())
        identity.register_device(db, info.device_id, at=now)
        counts = self.counts[slot]
        counts.dockings += 1
        _slot_row(db, slot, self.slots[slot], info, "docked", now, docked_at=now)
        self._event(db, slot, info.device_id, "docked", info.batt,
                    f"outbox {info.outbox}, fences {info.fences or '-'}, fw {info.firmware}")
        # Data first, so the positions are stored while the assignment still covers them.
        self._pull(db, intake, client, slot, info.device_id)
        running = attribution.current(db, info.device_id, now)
        if running is not None and running.start_ts < now:
            identity.return_device(db, info.device_id, at=now)
            self._event(db, slot, info.device_id, "returned", info.batt,
                        f"officer {running.collar}")
        if info.signed_out_to and (running is None or running.start_ts < now):
            client.sign_in()
        if self.config and info.report_s != self.config.get("report_s", info.report_s):
            client.push_config(self.config)
            self._event(db, slot, info.device_id, "config", info.batt, json.dumps(self.config))
        if self.fences_text and info.fences != self.fences_version:
            version = client.push_fences(self.fences_text)
            counts.fences_pushed += 1
            self._event(db, slot, info.device_id, "fences", info.batt,
                        f"{info.fences or '-'} -> {version}")

    def _docked_poll(self, db: sqlite_utils.Database, intake: Intake, client: DockClient,
                     slot: str, info: DeviceInfo) -> None:
        now = int(self.clock())
        if info.outbox:
            self._pull(db, intake, client, slot, info.device_id)
        running = attribution.current(db, info.device_id, now)
        state, detail = "docked", ""
        if running is not None and info.signed_out_to != running.collar:
            if info.batt < self.min_charge_pct:
                state = "refused"
                detail = refusal(db, info.device_id, info.batt, self.min_charge_pct, self.model,
                                 now)
                if _slot_state(db, slot) != "refused":
                    self.counts[slot].refused += 1
                    self._event(db, slot, info.device_id, "refused", info.batt, detail)
            else:
                client.sign_out(running.collar, running.due_ts)
                info.signed_out_to = running.collar
                self._event(db, slot, info.device_id, "signed_out", info.batt,
                            f"officer {running.collar}")
        elif running is None and info.signed_out_to:
            client.sign_in()
            info.signed_out_to = ""
        _slot_row(db, slot, self.slots[slot], info, state, now, detail=detail)

    def _pull(self, db: sqlite_utils.Database, intake: Intake, client: DockClient, slot: str,
              device_id: str) -> None:
        counts = self.counts[slot]
        before = (sum(intake.counts.stored.values()), intake.counts.duplicates)
        origin = f"dock:{slot}"

        def store(records: list[tuple[int, str, bytes]]) -> None:
            for attempt in range(20):
                try:
                    received_at = time.time()
                    for _seq, kind, payload in records:
                        tracker_messages.handle_record(intake, device_id, kind, payload, origin,
                                                       received_at)
                    intake.commit()
                    counts.pulled += len(records)  # committed, even if the ACK gets lost
                    return
                except sqlite3.OperationalError:  # the MQTT gateway holds the write lock
                    intake.rollback()
                    time.sleep(0.05 * (attempt + 1))
            raise DockError("database stayed locked; records left on the device")

        pulled = client.pull(store)
        if pulled:
            stored = sum(intake.counts.stored.values()) - before[0]
            dups = intake.counts.duplicates - before[1]
            self._event(db, slot, device_id, "pulled", None,
                        f"{pulled} records: {stored} new, {dups} already stored")

    def _undocked(self, db: sqlite_utils.Database, slot: str, device_id: str) -> None:
        self.counts[slot].undockings += 1
        self.info[slot] = None
        row = db.execute("SELECT batt, signed_out_to FROM dock_slots WHERE slot = ?",
                         (slot,)).fetchone()
        batt, collar = row if row else (None, None)
        self._event(db, slot, device_id, "undocked", batt,
                    f"officer {collar}" if collar else "not signed out")
        with db.conn:
            db.execute("UPDATE dock_slots SET device_id = NULL, state = 'empty', detail = NULL,"
                       " updated_at = ? WHERE slot = ?", (int(self.clock()), slot))

    def _event(self, db: sqlite_utils.Database, slot: str, device_id: str | None, event: str,
               batt: int | None, detail: str = "") -> None:
        with db.conn:
            db.execute("INSERT INTO dock_events (ts, slot, device_id, event, batt, detail)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (int(self.clock()), slot, device_id, event, batt, detail))


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


def _fence_version(text: str) -> str:
    from tracker.fence import FenceSet

    return FenceSet.from_json(text).version


def _slot_state(db: sqlite_utils.Database, slot: str) -> str | None:
    row = db.execute("SELECT state FROM dock_slots WHERE slot = ?", (slot,)).fetchone()
    return row[0] if row else None


def _slot_row(db: sqlite_utils.Database, slot: str, port: str, info: DeviceInfo | None,
              state: str, now: float, docked_at: int | None = None, detail: str = "") -> None:
    with db.conn:
        if info is None:
            db.execute("INSERT INTO dock_slots (slot, port, state, updated_at) VALUES (?,?,?,?)"
                       " ON CONFLICT(slot) DO UPDATE SET port = excluded.port,"
                       " device_id = NULL, state = excluded.state, detail = NULL,"
                       " updated_at = excluded.updated_at", (slot, port, state, int(now)))
            return
        db.execute(
            "INSERT INTO dock_slots (slot, port, device_id, state, docked_at, batt, charging,"
            " outbox, fence_version, firmware, signed_out_to, detail, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(slot) DO UPDATE SET"
            " port = excluded.port, device_id = excluded.device_id, state = excluded.state,"
            " docked_at = coalesce(excluded.docked_at, docked_at), batt = excluded.batt,"
            " charging = excluded.charging, outbox = excluded.outbox,"
            " fence_version = excluded.fence_version, firmware = excluded.firmware,"
            " signed_out_to = excluded.signed_out_to, detail = excluded.detail,"
            " updated_at = excluded.updated_at",
            (slot, port, info.device_id, state, docked_at, info.batt, _flag(info.charging),
             info.outbox, info.fences, info.firmware, info.signed_out_to or None,
             detail or None, int(now)))
