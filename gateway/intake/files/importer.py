"""``hotspots import``: a position file into the gateway database, through the intake.

One file is one device's track (``--device``); ``--collar`` records that this officer carried it
over the file's time span, through :func:`gateway.fleet.identity.assign`, so the imported fixes
are attributed like any other. Re-importing a file stores nothing new: fixes without a sequence
number are de-duplicated by device and fix time (the unique index of ``gateway.schema``), and a
bad row already in quarantine is not quarantined again.

Every row ends in exactly one of: stored (possibly flagged by the ``import`` filters, see
:mod:`gateway.intake.filters`), duplicate, skipped (an NMEA epoch while the receiver searched, a
GPX waypoint or route point), or an error with its row and reason, kept in ``quarantine``
(``topic`` = ``<file>:<row>``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from gateway.fleet import attribution, identity
from gateway.intake.files import (
    MAX_FILE_BYTES,
    SKIPPED,
    SOURCE,
    FileImportError,
    Options,
    RowError,
    decode,
    detect_format,
)
from gateway.intake.intake import Intake
from gateway.intake.observation import Observation


@dataclass
class ImportResult:
    """What one import did, row by row counted."""

    path: str
    fmt: str
    device_id: str
    stored: int = 0
    duplicates: int = 0
    skipped: Counter = field(default_factory=Counter)
    flagged: Counter = field(default_factory=Counter)
    errors: list[RowError] = field(default_factory=list)
    first_tst: int | None = None
    last_tst: int | None = None
    assignment: attribution.Assignment | None = None

    @property
    def rows(self) -> int:
        """Rows read: every one of them is counted in exactly one outcome."""
        return (self.stored + self.duplicates + sum(self.skipped.values())
                + len(self.errors))

    def summary(self) -> str:
        """One line for a person."""
        flagged = ", ".join(f"{k} {v}" for k, v in sorted(self.flagged.items())) or "none"
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        span = ""
        if self.first_tst is not None:
            span = (f"; fixes from {_utc(self.first_tst)} to {_utc(self.last_tst)}")
        return (f"{self.path} ({self.fmt}) as {self.device_id}: {self.rows} rows, {self.stored}"
                f" stored (flagged: {flagged}), {self.duplicates} already stored,"
                f" skipped: {skipped}, {len(self.errors)} errors{span}")


def _utc(ts: int | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts or 0))


def import_file(db: sqlite_utils.Database, path: str | Path, device_id: str,
                collar: str | None = None, fmt: str | None = None,
                options: Options | None = None, received_at: float | None = None,
                filter_config: dict | None = None) -> ImportResult:
    """Import the fixes of ``path`` as device ``device_id`` (see the module docstring).

    The device is registered (as an ``import`` device) if the fleet does not know it yet.

    :raises FileImportError: a file that cannot be read at all, or ``--collar`` contradicting
        the assignment history over the file's span (nothing is stored then)
    :raises gateway.fleet.identity.IdentityError: a bad collar number
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileImportError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES}"
                                  " accepted; split the file")
        data = path.read_bytes()
    except OSError as exc:
        raise FileImportError(f"{path}: {exc.strerror or exc}") from None
    identity.check_name(device_id, "device")
    if collar is not None:
        identity.check_name(collar, "collar")
    fmt = fmt or detect_format(path, data[:4096])
    items = list(decode(data, path.name, device_id, fmt, options))
    result = ImportResult(str(path), fmt, device_id)
    fixes = [o for o in items if isinstance(o, Observation) and o.tst is not None]
    if fixes:
        result.first_tst = min(o.tst for o in fixes)
        result.last_tst = max(o.tst for o in fixes)
    identity.register_device(db, device_id, source=_source_of(db, device_id))
    if collar is not None and fixes:
        result.assignment = _assign(db, device_id, collar, result.first_tst, result.last_tst)
    at = time.time() if received_at is None else received_at
    intake = Intake(db, filter_config)
    try:
        for item in items:
            if isinstance(item, RowError):
                if item.reason in SKIPPED:
                    result.skipped[item.reason] += 1
                else:
                    result.errors.append(item)
                    _reject_once(intake, item, at, device_id)
                continue
            outcome = intake.submit(item, at)
            if outcome == "stored":
                result.stored += 1
                flags = db.execute("SELECT filtered FROM positions WHERE id = ?",
                                   (intake.last_position_id,)).fetchone()[0]
                for flag in filter(None, (flags or "").split(",")):
                    result.flagged[flag] += 1
            elif outcome == "duplicate":
                result.duplicates += 1
            else:
                reason = intake.last_reason or outcome
                result.errors.append(RowError(item.origin, reason, _detail(db, item.origin)))
        intake.commit()
    except BaseException:
        intake.rollback()
        raise
    return result


def _source_of(db: sqlite_utils.Database, device_id: str) -> str:
    row = db.execute("SELECT source FROM devices WHERE device_id = ?", (device_id,)).fetchone()
    return row[0] if row and row[0] else SOURCE


def _assign(db: sqlite_utils.Database, device_id: str, collar: str, first: int,
            last: int) -> attribution.Assignment:
    """The assignment that covers ``[first, last]`` for ``collar``: the one recorded by an
    earlier import of the same file, or a new one; never one that rewrites another officer's."""
    end = last + 1
    rows = db.execute(
        "SELECT id, device_id, collar, start_ts, end_ts, due_ts FROM assignments"
        " WHERE device_id = ? AND start_ts < ? AND (end_ts IS NULL OR end_ts > ?)"
        " ORDER BY start_ts", (device_id, end, first)).fetchall()
    others = [r for r in rows if r[2] != collar]
    if others:
        o = others[0]
        raise FileImportError(
            f"{device_id} was with collar {o[2]} from {_utc(o[3])}"
            f"{'' if o[4] is None else ' to ' + _utc(o[4])}, inside this file's span"
            f" ({_utc(first)} to {_utc(last)}): import without --collar, or correct the"
            " assignments first")
    for row in rows:
        if row[3] <= first and (row[4] is None or row[4] >= end):
            return attribution.Assignment(*row)
    return identity.assign(db, device_id, collar, at=first, until=end)


def _reject_once(intake: Intake, error: RowError, at: float, device_id: str) -> None:
    """Quarantine a row error unless the same one is there already (a re-imported file)."""
    intake.begin()
    if intake.conn.execute(
            "SELECT 1 FROM quarantine WHERE topic = ? AND reason = ? AND detail = ?",
            (error.origin[:500], error.reason, error.detail[:500])).fetchone():
        return
    intake.reject(error.origin, error.reason, error.detail, None, at, device_id)


def _detail(db: sqlite_utils.Database, origin: str) -> str:
    row = db.execute("SELECT detail FROM quarantine WHERE topic = ? ORDER BY id DESC LIMIT 1",
                     (origin[:500],)).fetchone()
    return row[0] if row else ""
