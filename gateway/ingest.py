"""Turning MQTT messages into rows: idempotent, counted, filtered, nothing good ever lost.

:class:`Ingest` takes ``(topic, payload)`` pairs, parses them with the shared wire-format module
and writes them in batches (one transaction each). A message delivered twice (QoS 1 is
at-least-once) hits the unique ``(device_id, seq)`` index and is counted as a duplicate; a message
that cannot be parsed, is too big, or comes from a device the gateway does not know goes to
``quarantine`` with its reason and raw bytes. Positions that parse but fail a plausibility
filter (:mod:`gateway.filters`) are stored with the reasons in ``positions.filtered``.

Per-device bookkeeping (last seen, highest sequence number, counters) is gathered in memory and
written once per device per batch: one ``UPDATE`` per message would cost as much as the insert.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import sqlite_utils

from gateway import filters
from tracker import wire

KMH_TO_MPS = 1 / 3.6


@dataclass
class IngestCounts:
    """What happened to the messages seen so far."""

    stored: Counter = field(default_factory=Counter)
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)
    filtered: Counter = field(default_factory=Counter)
    status: int = 0

    @property
    def handled(self) -> int:
        """Messages dealt with in any way (stored, duplicate, status or quarantined)."""
        return (sum(self.stored.values()) + self.duplicates + sum(self.quarantined.values())
                + self.status)


@dataclass
class _DeviceDelta:
    """Changes to one ``devices`` row, written at commit."""

    source: str
    last_seen: int
    max_seq: int = 0
    duplicates: int = 0
    filtered: int = 0
    last_fix_tst: int | None = None
    batt: int | None = None


class Ingest:
    """Stores messages into a migrated gateway database (see :mod:`gateway.schema`).

    Call :meth:`handle` for each message and :meth:`commit` to end a batch; nothing is visible to
    readers until it is committed, and the caller acknowledges messages to the broker only after
    that, so a crash re-delivers rather than loses.

    :param filter_config: per-source :class:`gateway.filters.FilterConfig` (defaults otherwise)
    :param accept_unknown: store messages of devices not registered in ``devices`` instead of
        quarantining them (for a bench or a trial, not for a station)
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        filter_config: dict[str, filters.FilterConfig] | None = None,
        accept_unknown: bool = False,
    ):
        self.db = db
        self.conn = db.conn
        self.counts = IngestCounts()
        self.filter_config = filter_config or dict(filters.DEFAULTS)
        self.accept_unknown = accept_unknown
        self._in_batch = False
        self._registered: set[str] = set()
        self._kept: dict[str, filters.Kept | None] = {}
        self._deltas: dict[str, _DeviceDelta] = {}
        self._regions_text: dict[tuple, str] = {}

    def handle(self, topic: str, payload: bytes, received_at: float | None = None) -> str:
        """Store one message; returns ``stored``, ``duplicate``, ``status`` or ``quarantined``.

        Never raises for bad input: every rejection is quarantined and counted.
        """
        received_at = time.time() if received_at is None else received_at
        self._begin()
        device_id = None
        try:
            source, device_id, kind = wire.parse_topic(topic)
            msg = wire.decode(payload)
        except wire.WireError as exc:
            return self._quarantine(topic, exc.reason, exc.detail, payload, received_at,
                                    device_id)
        if source == "tracker" and msg.get("dev", device_id) != device_id:
            return self._quarantine(topic, "device_mismatch", str(msg.get("dev")), payload,
                                    received_at, device_id)
        if not self._known(device_id, source, received_at):
            return self._quarantine(topic, "unknown_device", device_id, payload, received_at,
                                    device_id)
        msg_type = msg["_type"]
        delta = self._delta(device_id, source, received_at)
        if msg_type in ("status", "lwt"):
            self._store_status(device_id, msg, received_at)
            self.counts.status += 1
            return "status"
        if "seq" not in msg and source == "tracker":
            return self._quarantine(topic, "missing_field", "seq", payload, received_at,
                                    device_id)
        try:
            if msg_type == "location":
                inserted = self._insert_position(device_id, source, msg, received_at, delta)
            else:
                inserted = self._insert_transition(device_id, msg, received_at)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            # decode() checks what every consumer needs; anything odder still must not crash.
            return self._quarantine(topic, "bad_field", repr(exc), payload, received_at,
                                    device_id)
        if not inserted:
            self.counts.duplicates += 1
            delta.duplicates += 1
            return "duplicate"
        self.counts.stored[msg_type] += 1
        if "seq" in msg and msg["seq"] > delta.max_seq:
            delta.max_seq = msg["seq"]
        return "stored"

    def commit(self) -> None:
        """End the current batch: write the per-device bookkeeping and commit."""
        if not self._in_batch:
            return
        for device_id, d in self._deltas.items():
            self.conn.execute(
                "UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?),"
                " max_seq = max(coalesce(max_seq, 0), ?),"
                " duplicates = coalesce(duplicates, 0) + ?, filtered = coalesce(filtered, 0) + ?,"
                " last_fix_tst = max(coalesce(last_fix_tst, 0), coalesce(?, 0)),"
                " batt = coalesce(?, batt) WHERE device_id = ?",
                (d.last_seen, d.max_seq, d.duplicates, d.filtered, d.last_fix_tst, d.batt,
                 device_id),
            )
        self._deltas.clear()
        self.conn.execute("COMMIT")
        self._in_batch = False

    def rollback(self) -> None:
        """Abandon the current batch (the broker will deliver it again)."""
        if self._in_batch:
            self.conn.execute("ROLLBACK")
            self._in_batch = False
        self._deltas.clear()
        self._kept.clear()

    def _begin(self) -> None:
        if not self._in_batch:
            # IMMEDIATE takes the write lock now: with other writers on the file (the dock, the
            # Airwave reader) a deferred transaction that reads first can be refused outright
            # when it upgrades to write, where this one waits for the busy timeout instead.
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_batch = True

    # -- devices ----------------------------------------------------------------------------------
    def _known(self, device_id: str, source: str, at: float) -> bool:
        if device_id in self._registered:
            return True
        row = self.conn.execute(
            "SELECT registered_at FROM devices WHERE device_id = ?", (device_id,)).fetchone()
        if row is None:
            # Heard of now, so `hotspots status` can list it among the unknown devices.
            self.conn.execute(
                "INSERT INTO devices (device_id, source, first_seen, last_seen, duplicates,"
                " max_seq, filtered, registered_at) VALUES (?, ?, ?, ?, 0, 0, 0, ?)",
                (device_id, source, int(at), int(at), int(at) if self.accept_unknown else None),
            )
            row = (int(at) if self.accept_unknown else None,)
        if row[0] is None and not self.accept_unknown:
            self.conn.execute("UPDATE devices SET last_seen = ? WHERE device_id = ?",
                              (int(at), device_id))
            return False
        self._registered.add(device_id)
        return True

    def _delta(self, device_id: str, source: str, at: float) -> _DeviceDelta:
        delta = self._deltas.get(device_id)
        if delta is None:
            delta = self._deltas[device_id] = _DeviceDelta(source, int(at))
        else:
            delta.last_seen = max(delta.last_seen, int(at))
        return delta

    def _quarantine(self, topic: str, reason: str, detail: str, raw: bytes, at: float,
                    device_id: str | None) -> str:
        self.counts.quarantined[reason] += 1
        self.conn.execute(
            "INSERT INTO quarantine (received_at, topic, reason, detail, raw, device_id)"
            " VALUES (?,?,?,?,?,?)",
            (at, topic[:500], reason, str(detail)[:500], bytes(raw), device_id),
        )
        return "quarantined"

    def _store_status(self, device_id: str, msg: dict, at: float) -> None:
        online = 0 if msg["_type"] == "lwt" else (1 if msg["online"] else 0)
        version = _str_or_none(msg.get("fences"))
        if version is not None:
            row = self.conn.execute("SELECT fence_version FROM devices WHERE device_id = ?",
                                    (device_id,)).fetchone()
            if row is None or row[0] != version:
                self.conn.execute(
                    "INSERT INTO fence_history (device_id, version, reported_at)"
                    " VALUES (?, ?, ?)", (device_id, version, int(at)))
        self.conn.execute(
            "UPDATE devices SET online = ?, status_at = ?, batt = coalesce(?, batt),"
            " outbox = coalesce(?, outbox), fence_version = coalesce(?, fence_version),"
            " firmware = coalesce(?, firmware) WHERE device_id = ?",
            (
                online,
                int(at),
                _int_or_none(msg.get("batt")),
                _int_or_none(msg.get("outbox")),
                version,
                _str_or_none(msg.get("fw")),
                device_id,
            ),
        )
        if msg["_type"] == "status" and msg["online"]:
            # A tracker's status is its whole state: no ``fence_err`` means no set refused.
            self.conn.execute(
                "UPDATE devices SET fence_error = ?, fence_rejects = ? WHERE device_id = ?",
                (_str_or_none(msg.get("fence_err")), _count_or_none(msg.get("fence_rej")),
                 device_id))

    # -- positions and transitions ----------------------------------------------------------------
    def _previous(self, device_id: str, tst: int) -> filters.Kept | None:
        """The device's kept position closest before ``tst``: the cache when in order (the
        usual case), the database for a late arrival."""
        if device_id not in self._kept:
            self._kept[device_id] = self._kept_before(device_id, None)
        latest = self._kept[device_id]
        if latest is None or latest.tst <= tst:
            return latest
        return self._kept_before(device_id, tst)

    def _kept_before(self, device_id: str, tst: int | None) -> filters.Kept | None:
        sql = ("SELECT tst, lat, lon, coalesce(acc_m, 0) FROM positions"
               " WHERE device_id = ? AND filtered IS NULL")
        args: tuple = (device_id,)
        if tst is not None:
            sql += " AND tst <= ?"
            args = (device_id, tst)
        row = self.conn.execute(sql + " ORDER BY tst DESC LIMIT 1", args).fetchone()
        return filters.Kept(*row) if row else None

    def _insert_position(self, device_id: str, source: str, msg: dict, at: float,
                         delta: _DeviceDelta) -> bool:
        config = self.filter_config.get(source) or filters.DEFAULTS["tracker"]
        tst = msg["tst"]
        previous = self._previous(device_id, tst)
        reasons = filters.check(config, msg, at, previous)
        vel = _num_or_none(msg.get("vel"))
        regions = msg.get("inregions")
        if regions is not None:
            # Trackers repeat the same few region lists; dumping each costs as much as parsing.
            # (Unhashable items fail the lookup with TypeError: quarantined as ``bad_field``.)
            key = tuple(regions) if isinstance(regions, list) and len(regions) < 8 else None
            text = self._regions_text.get(key) if key is not None else None
            if text is None:
                text = json.dumps(regions)
                if key is not None and len(self._regions_text) < 1024:
                    self._regions_text[key] = text
            regions = text
        acc = _num_or_none(msg.get("acc"))
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO positions (device_id, seq, source, tst, lat, lon, acc_m,"
            " speed_mps, course_deg, alt_m, inregions, trigger, created_at, received_at,"
            " filtered) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                device_id,
                msg.get("seq"),
                source,
                tst,
                msg["lat"],
                msg["lon"],
                acc,
                None if vel is None else round(vel * KMH_TO_MPS, 2),
                _num_or_none(msg.get("cog")),
                _num_or_none(msg.get("alt")),
                regions,
                _str_or_none(msg.get("t")),
                _int_or_none(msg.get("created_at")),
                at,
                reasons or None,
            ),
        )
        if cursor.rowcount != 1:
            return False
        if reasons:
            delta.filtered += 1
            for reason in reasons.split(","):
                self.counts.filtered[reason] += 1
        else:
            latest = self._kept.get(device_id)
            if latest is None or tst >= latest.tst:
                self._kept[device_id] = filters.Kept(tst, msg["lat"], msg["lon"], acc or 0)
        if delta.last_fix_tst is None or tst > delta.last_fix_tst:
            delta.last_fix_tst = tst
        if source != "tracker":
            # Phones put their battery in every location; trackers in their status.
            batt = _int_or_none(msg.get("batt"))
            if batt is not None:
                delta.batt = batt
        return True

    def _insert_transition(self, device_id: str, msg: dict, at: float) -> bool:
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO transitions (device_id, seq, event, rid, desc, tst, lat, lon,"
            " acc_m, created_at, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                device_id,
                msg.get("seq"),
                msg["event"],
                msg["rid"],
                _str_or_none(msg.get("desc")),
                msg["tst"],
                _num_or_none(msg.get("lat")),
                _num_or_none(msg.get("lon")),
                _num_or_none(msg.get("acc")),
                _int_or_none(msg.get("created_at")),
                at,
            ),
        )
        return cursor.rowcount == 1


def _num_or_none(value: object) -> float | int | None:
    """Optional numeric fields: a wrong JSON type is dropped, not stored as text."""
    # type() rather than isinstance(): bool is an int subclass and must not pass.
    return value if type(value) in _NUMBERS else None


_NUMBERS = (int, float)


def _int_or_none(value: object) -> int | None:
    number = _num_or_none(value)
    return None if number is None else int(number)


def _count_or_none(value: object) -> int | None:
    """A non-negative integer counter that SQLite can hold, or None."""
    return value if type(value) is int and 0 <= value < 1 << 31 else None


def _str_or_none(value: object) -> str | None:
    return value[:200] if isinstance(value, str) else None
