"""The door observations are stored through, until the one intake lands.

Issue 16's :mod:`gateway.intake.intake` is being built beside this work; until it is merged,
sources that decode into :class:`~gateway.intake.observation.Observation` (file imports, the
vehicle AVL adapter) store their locations through :class:`gateway.intake.ingest.Ingest`'s
position path, which brings the per-source filters, the unique indexes that de-duplicate, the
device bookkeeping and the quarantine. Replace this module by the intake's ``submit``/``reject``
when it lands; the adapters call only those two.
"""

from __future__ import annotations

import sqlite_utils

from gateway.intake.observation import Observation


class IntakeDoor:
    """Stores the locations of decoded observations (see the module docstring)."""

    def __init__(self, db: sqlite_utils.Database, filter_config: dict | None = None):
        from gateway.intake.ingest import Ingest

        self.ingest = Ingest(db, filter_config)

    def submit(self, obs: Observation, received_at: float) -> tuple[str, str]:
        """Store one location; returns ``(outcome, filter flags)``, outcome ``stored`` or
        ``duplicate``. The device must be registered (:meth:`known`)."""
        from gateway.intake.ingest import KMH_TO_MPS

        ingest = self.ingest
        ingest._begin()
        delta = ingest._delta(obs.device_id, obs.source, received_at)
        msg: dict = {"tst": obs.tst, "lat": obs.lat, "lon": obs.lon}
        if obs.extra.get("valid") is False:
            msg["fix"] = 0  # the device said this is no fix: flagged "invalid"
        for key, value in (("acc", obs.acc_m), ("cog", obs.course_deg), ("alt", obs.alt_m),
                           ("vel", None if obs.speed_mps is None
                            else obs.speed_mps / KMH_TO_MPS)):
            if value is not None:
                msg[key] = value
        before = sum(ingest.counts.filtered.values())
        if not ingest._insert_position(obs.device_id, obs.source, msg, received_at, delta):
            ingest.counts.duplicates += 1
            delta.duplicates += 1
            return "duplicate", ""
        flags = ""
        if sum(ingest.counts.filtered.values()) != before:
            flags = ingest.conn.execute(
                "SELECT filtered FROM positions WHERE device_id = ? AND tst = ? AND seq IS NULL"
                " ORDER BY id DESC LIMIT 1", (obs.device_id, obs.tst)).fetchone()[0] or ""
        ingest.counts.stored["location"] += 1
        return "stored", flags

    def known(self, device_id: str, source: str, received_at: float) -> bool:
        """Whether ``device_id`` is registered (an unknown one is recorded as heard of)."""
        self.ingest._begin()
        return self.ingest._known(device_id, source, received_at)

    def reject(self, origin: str, reason: str, detail: str, received_at: float,
               device_id: str | None, raw: bytes = b"", once: bool = False) -> None:
        """Quarantine something that cannot be stored; with ``once``, not again if the same
        origin, reason and detail are already there (a re-imported file's bad rows)."""
        ingest = self.ingest
        ingest._begin()
        if once and ingest.conn.execute(
                "SELECT 1 FROM quarantine WHERE topic = ? AND reason = ? AND detail = ?",
                (origin[:500], reason, detail[:500])).fetchone():
            return
        ingest._quarantine(origin, reason, detail, raw, received_at, device_id)

    def commit(self) -> None:
        self.ingest.commit()

    def rollback(self) -> None:
        self.ingest.rollback()
