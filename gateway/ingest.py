"""Turning MQTT messages into rows: idempotent, counted, nothing good ever lost.

:class:`Ingest` takes ``(topic, payload)`` pairs, parses them with the shared wire-format module
and writes them in batches. A message that was delivered twice (QoS 1 is at-least-once) hits the
unique ``(device_id, seq)`` index and is counted as a duplicate; a message that cannot be parsed
goes to ``quarantine`` with its reason and raw bytes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import sqlite_utils

from tracker import wire

KMH_TO_MPS = 1 / 3.6


@dataclass
class IngestCounts:
    """What happened to the messages seen so far."""

    stored: Counter = field(default_factory=Counter)
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)


class Ingest:
    """Stores messages into a migrated gateway database (see :mod:`gateway.schema`).

    Call :meth:`handle` for each message and :meth:`commit` to end a batch; nothing is visible to
    readers until it is committed, and the caller acknowledges messages to the broker only after
    that, so a crash re-delivers rather than loses.
    """

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.conn = db.conn
        self.counts = IngestCounts()
        self._in_batch = False

    def handle(self, topic: str, payload: bytes, received_at: float | None = None) -> str:
        """Store one message; returns ``stored``, ``duplicate``, ``status`` or ``quarantined``."""
        received_at = time.time() if received_at is None else received_at
        self._begin()
        try:
            source, device_id, kind = wire.parse_topic(topic)
            msg = wire.decode(payload)
        except wire.WireError as exc:
            self._quarantine(topic, exc.reason, exc.detail, payload, received_at)
            return "quarantined"
        if source == "tracker" and msg.get("dev", device_id) != device_id:
            self._quarantine(topic, "device_mismatch", str(msg.get("dev")), payload, received_at)
            return "quarantined"
        msg_type = msg["_type"]
        self._touch_device(device_id, source, received_at)
        if msg_type == "status":
            self._store_status(device_id, msg)
            return "status"
        if "seq" not in msg:
            if source == "tracker":
                self._quarantine(topic, "missing_field", "seq", payload, received_at)
                return "quarantined"
        if msg_type == "location":
            inserted = self._insert_position(device_id, source, msg, received_at)
        else:
            inserted = self._insert_transition(device_id, msg, received_at)
        if not inserted:
            self.counts.duplicates += 1
            self.conn.execute(
                "UPDATE devices SET duplicates = duplicates + 1 WHERE device_id = ?", (device_id,)
            )
            return "duplicate"
        self.counts.stored[msg_type] += 1
        if "seq" in msg:
            self.conn.execute(
                "UPDATE devices SET max_seq = max(max_seq, ?) WHERE device_id = ?",
                (msg["seq"], device_id),
            )
        return "stored"

    def commit(self) -> None:
        """End the current batch."""
        if self._in_batch:
            self.conn.execute("COMMIT")
            self._in_batch = False

    def _begin(self) -> None:
        if not self._in_batch:
            self.conn.execute("BEGIN")
            self._in_batch = True

    def _quarantine(self, topic: str, reason: str, detail: str, raw: bytes, at: float) -> None:
        self.counts.quarantined[reason] += 1
        self.conn.execute(
            "INSERT INTO quarantine (received_at, topic, reason, detail, raw) VALUES (?,?,?,?,?)",
            (at, topic, reason, detail[:500], bytes(raw)),
        )

    def _touch_device(self, device_id: str, source: str, at: float) -> None:
        self.conn.execute(
            "INSERT INTO devices (device_id, source, first_seen, last_seen, duplicates, max_seq)"
            " VALUES (?, ?, ?, ?, 0, 0)"
            " ON CONFLICT(device_id) DO UPDATE SET last_seen = excluded.last_seen",
            (device_id, source, int(at), int(at)),
        )

    def _store_status(self, device_id: str, msg: dict) -> None:
        self.conn.execute(
            "UPDATE devices SET online = ?, batt = coalesce(?, batt), outbox = coalesce(?, outbox),"
            " fence_version = coalesce(?, fence_version), firmware = coalesce(?, firmware)"
            " WHERE device_id = ?",
            (
                1 if msg["online"] else 0,
                msg.get("batt"),
                msg.get("outbox"),
                msg.get("fences"),
                msg.get("fw"),
                device_id,
            ),
        )

    def _insert_position(self, device_id: str, source: str, msg: dict, at: float) -> bool:
        vel = msg.get("vel")
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO positions (device_id, seq, source, tst, lat, lon, acc_m,"
            " speed_mps, course_deg, alt_m, inregions, trigger, created_at, received_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                device_id,
                msg.get("seq"),
                source,
                msg["tst"],
                msg["lat"],
                msg["lon"],
                msg.get("acc"),
                None if vel is None else round(vel * KMH_TO_MPS, 2),
                msg.get("cog"),
                msg.get("alt"),
                json.dumps(msg["inregions"]) if "inregions" in msg else None,
                msg.get("t"),
                msg.get("created_at"),
                at,
            ),
        )
        return cursor.rowcount == 1

    def _insert_transition(self, device_id: str, msg: dict, at: float) -> bool:
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO transitions (device_id, seq, event, rid, desc, tst, lat, lon,"
            " acc_m, created_at, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                device_id,
                msg.get("seq"),
                msg["event"],
                msg["rid"],
                msg.get("desc"),
                msg["tst"],
                msg.get("lat"),
                msg.get("lon"),
                msg.get("acc"),
                msg.get("created_at"),
                at,
            ),
        )
        return cursor.rowcount == 1
