"""The one door into ``positions`` and ``transitions``: validate, filter, de-duplicate, store.

Every source's adapter (:mod:`gateway.intake.mqtt` for trackers and OwnTracks phones, the dock's
outbox pull, the Airwave radio store, file imports) decodes what it receives into an
:class:`~gateway.intake.observation.Observation` and calls :meth:`Intake.submit`; an input it
cannot decode at all goes to :meth:`Intake.reject`. Each call ends in exactly one of:

``stored``       a position or transition row (possibly flagged by a filter, see
                 :mod:`gateway.intake.filters`)
``duplicate``    already stored (same device and ``seq``; without ``seq``, same fix time, and for
                 positions the same place), counted per device
``status``       a status report written to the device's row
``quarantined``  a row in ``quarantine`` with its reason, a detail and the raw bytes

and nothing that arrives can make it raise: an exception while storing one observation rolls
back that observation alone (a savepoint) and quarantines it (reason ``internal_error``). Only
the database failing as a whole (locked beyond the busy timeout, disk full) is raised, so the
caller keeps the batch unacknowledged and tries again.

Writes are batched: the first call opens a transaction, :meth:`Intake.commit` ends it, and the
caller acknowledges its inputs (MQTT PUBACK, dock ACK) only after that, so a crash re-delivers
rather than loses. Per-device bookkeeping (last seen, highest sequence number, counters) is
gathered in memory and written once per device per batch: one ``UPDATE`` per message would cost
as much as the insert.

The quarantine is bounded per device (:class:`QuarantineBudget`): beyond its row or byte budget
the device's oldest quarantined rows are deleted and counted (``intake_counters``), and a raw
payload beyond ``raw_keep`` bytes is kept truncated with its full length and SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import sqlite_utils

from gateway.fleet import attribution
from gateway.fleet.identity import is_name
from gateway.intake import filters, validate
from gateway.intake.observation import APP, LOCATION, STATUS, Observation

log = logging.getLogger(__name__)

RESULTS = ("stored", "duplicate", "status", "quarantined")
#: Kit that stays with an officer and may go on reporting after the patrol (phones, radios).
OFF_DUTY_SOURCES = ("owntracks", "airwave")
#: Origins of live reports (MQTT topics, the vehicle endpoint), whose fixes say the device is
#: online now; a dock pull or a file import says nothing about that.
LIVE_ORIGINS = ("hotspots/dev/", "owntracks/", "http:")
#: Longest origin, reason and detail kept in a quarantine row (characters).
TEXT_KEEP = 500


@dataclass(frozen=True)
class QuarantineBudget:
    """How much quarantine one device may hold; the oldest rows go first beyond it.

    Bytes count the stored raw payload, detail and origin. The defaults bound one device's
    quarantine to about ``max_bytes`` plus SQLite's per-row overhead (docs/gateway.md).
    """

    max_rows: int = 1000
    max_bytes: int = 2_000_000
    #: Raw payload bytes kept per row; the rest is summarised by length and SHA-256.
    raw_keep: int = 4096
    #: A phone's app messages (``app_messages``: cards, waypoint lists, its own status,
    #: commands) kept per device; every distinct one is a row, so a phone publishing new ones
    #: without end would otherwise fill the disk. The oldest go first and are counted
    #: (``app_evicted``); a station reads the latest card and region list of a phone.
    app_max_rows: int = 500
    app_max_bytes: int = 4_000_000


@dataclass
class IntakeCounts:
    """What happened to the observations seen so far."""

    stored: Counter = field(default_factory=Counter)
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)
    filtered: Counter = field(default_factory=Counter)
    status: int = 0
    #: Optional fields dropped for a bad value, by field name.
    dropped: Counter = field(default_factory=Counter)
    #: Quarantine rows deleted by the budget, and their bytes.
    evicted: int = 0
    evicted_bytes: int = 0

    @property
    def handled(self) -> int:
        """Inputs dealt with in any way (stored, duplicate, status or quarantined)."""
        return (sum(self.stored.values()) + self.duplicates + sum(self.quarantined.values())
                + self.status)


@dataclass
class _DeviceDelta:
    """Changes to one ``devices`` row, written at commit."""

    last_seen: int
    max_seq: int = 0
    duplicates: int = 0
    filtered: int = 0
    last_fix_tst: int | None = None
    batt: int | None = None
    #: Newest fix time of a live message (MQTT, HTTP): a device reporting is online.
    live_fix_tst: int | None = None


class _Rejection(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class _Bounded:
    """A table whose rows the :class:`QuarantineBudget` bounds per device: its SQL, and the
    ``intake_counters`` counter its evictions are counted under."""

    def __init__(self, table: str, size_sql: str, device_sql: str, counter: str):
        where = f"FROM {table} WHERE device_id {device_sql} ?"
        self.usage_sql = f"SELECT count(*), coalesce(sum({size_sql}), 0) {where}"
        self.oldest_sql = f"SELECT id, {size_sql} {where} ORDER BY id LIMIT ?"
        self.evict_sql = f"DELETE {where} AND id <= ?"
        self.counter = counter


# Quarantine rows may have no device (``IS`` matches NULL); an app message always has one.
_QUARANTINE = _Bounded("quarantine", "length(raw) + length(detail) + length(topic)", "IS",
                       "quarantine_evicted")
_APP_MESSAGES = _Bounded("app_messages", "length(payload)", "=", "app_evicted")


#: A source's own plausibility rules beyond :mod:`gateway.intake.filters` (the radio's mast
#: detection): given the observation about to be stored, its extra flags and earlier position
#: ids to flag too (``(position_id, flag)``).
SourceCheck = Callable[[Observation], tuple[list[str], list[tuple[int, str]]]]


class Intake:
    """Stores observations into a migrated gateway database (see :mod:`gateway.schema`).

    :param filter_config: per-source :class:`gateway.intake.filters.FilterConfig` (defaults
        otherwise)
    :param accept_unknown: store observations of devices not registered in ``devices`` instead
        of quarantining them (for a bench or a trial, not for a station)
    :param source_checks: per-source extra rules (see :data:`SourceCheck`)
    :param budget: the per-device quarantine budget
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        filter_config: dict[str, filters.FilterConfig] | None = None,
        accept_unknown: bool = False,
        source_checks: dict[str, SourceCheck] | None = None,
        budget: QuarantineBudget | None = None,
    ):
        self.db = db
        self.conn = db.conn
        self.counts = IntakeCounts()
        self.filter_config = filter_config or dict(filters.DEFAULTS)
        self.accept_unknown = accept_unknown
        self.source_checks = dict(source_checks or {})
        self.budget = budget or QuarantineBudget()
        #: The ``positions`` row of the last ``stored`` location (None otherwise).
        self.last_position_id: int | None = None
        #: The reason of the last ``quarantined`` result, and its detail.
        self.last_reason: str | None = None
        self.last_detail: str | None = None
        self._in_batch = False
        self._registered: set[str] = set()
        self._kept: dict[str, filters.Kept | None] = {}
        self._deltas: dict[str, _DeviceDelta] = {}
        self._counters: dict[tuple[str, str], list[int]] = {}
        self._usage: dict[str | None, list[int]] = {}
        self._app_usage: dict[str, list[int]] = {}
        self._regions_text: dict[tuple, str] = {}
        #: ``PRAGMA data_version`` when the budget usage above was last known exact.
        self._data_version: int | None = None

    # -- the API ------------------------------------------------------------------------------
    def submit(self, obs: Observation, received_at: float, raw: bytes | None = None) -> str:
        """Validate, filter, de-duplicate and store ``obs``; returns one of :data:`RESULTS`.

        :param received_at: when the gateway received it (the fix time is ``obs.tst``)
        :param raw: the bytes it was decoded from, kept if it is quarantined (otherwise the
            observation itself is kept, as JSON)
        :raises sqlite3.OperationalError: only when the database itself fails (locked, full)
        """
        self.begin()
        self.last_position_id = None
        self.last_reason = None
        try:
            refused = self._admit(obs, received_at)
        except sqlite3.OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever it is, it must not stop the intake
            refused = ("internal_error", f"{type(exc).__name__}: {exc}")
        if refused is not None:
            # getattr: whatever was handed over, even no observation at all, is quarantined.
            return self._quarantine(getattr(obs, "origin", None), refused[0], refused[1], raw,
                                    obs, received_at, getattr(obs, "device_id", None))
        # One observation, all or nothing. A location or transition is one INSERT (atomic by
        # itself, and nothing after it can fail), so only an observation that writes more than
        # once pays for a savepoint: a status, or a source check that flags earlier positions.
        guarded = obs.kind == STATUS or obs.source in self.source_checks
        conn = self.conn
        if guarded:
            conn.execute("SAVEPOINT intake_one")
        try:
            result = self._submit(obs, received_at)
        except _Rejection as exc:
            if guarded:
                conn.execute("ROLLBACK TO intake_one")
                conn.execute("RELEASE intake_one")
            return self._quarantine(obs.origin, exc.reason, exc.detail, raw, obs,
                                    received_at, obs.device_id)
        except sqlite3.OperationalError:
            # Locked, full, I/O: not this observation's fault. The caller rolls the batch back.
            if guarded:
                conn.execute("ROLLBACK TO intake_one")
                conn.execute("RELEASE intake_one")
            raise
        except Exception as exc:  # noqa: BLE001 - whatever it is, it must not stop the intake
            if guarded:
                conn.execute("ROLLBACK TO intake_one")
                conn.execute("RELEASE intake_one")
            self._kept.clear()  # it may have been updated before the failure
            log.warning("observation from %r quarantined after %r", obs.origin, exc)
            return self._quarantine(obs.origin, "internal_error",
                                    f"{type(exc).__name__}: {exc}", raw, obs, received_at,
                                    obs.device_id)
        if guarded:
            conn.execute("RELEASE intake_one")
        return result

    def reject(self, origin: str, reason: str, detail: str, raw: bytes | str | None,
               received_at: float, device_id: str | None = None) -> str:
        """Quarantine an input its adapter could not decode; returns ``quarantined``.

        Never fails for its content: text is stored with anything unencodable escaped, and
        ``device_id`` only if it is a valid device id (it is part of ``detail`` otherwise).
        """
        self.begin()
        self.last_position_id = None
        return self._quarantine(origin, reason, detail, raw, None, received_at, device_id)

    def begin(self) -> None:
        """Open the batch's transaction if none is open (``submit`` and ``reject`` do this)."""
        if not self._in_batch:
            # IMMEDIATE takes the write lock now: with other writers on the file (the dock, the
            # Airwave reader) a deferred transaction that reads first can be refused outright
            # when it upgrades to write, where this one waits for the busy timeout instead.
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_batch = True
            # Other writers (the dock, the radio, a file import) quarantine and evict
            # too, on their own connections: the budget usage kept from earlier batches holds
            # only while none of them has committed since (SQLite's data_version changes for
            # exactly that). Reading it afresh each batch instead costs a scan of the device's
            # quarantine per batch, a tenth of the gateway's time under a 1 % hostile stream.
            version = self.conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._usage.clear()
                self._app_usage.clear()
                self._data_version = version

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
            if d.live_fix_tst is not None:
                # A fix taken after the device's last status or last will: it is back online
                # (a phone's lwt is followed by fixes, not by a new status).
                self.conn.execute(
                    "UPDATE devices SET online = 1, status_at = ? WHERE device_id = ?"
                    " AND online = 0 AND coalesce(status_at, 0) <= ?",
                    (d.live_fix_tst, device_id, d.live_fix_tst))
        for (device_key, counter), (n, size, at) in self._counters.items():
            self.conn.execute(
                "INSERT INTO intake_counters (device_id, counter, n, bytes, last_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, counter) DO UPDATE SET"
                " n = n + excluded.n, bytes = bytes + excluded.bytes,"
                " last_at = max(last_at, excluded.last_at)",
                (device_key, counter, n, size, at))
        self.conn.execute("COMMIT")
        self._in_batch = False
        self._deltas.clear()
        self._counters.clear()

    def rollback(self) -> None:
        """Abandon the current batch (its inputs must be delivered again)."""
        if self._in_batch:
            if self.conn.in_transaction:  # SQLite may have rolled back already (disk full)
                self.conn.execute("ROLLBACK")
            self._in_batch = False
        self._deltas.clear()
        self._counters.clear()
        self._kept.clear()
        self._usage.clear()
        self._app_usage.clear()
        self._registered.clear()

    # -- one observation ----------------------------------------------------------------------
    def _admit(self, obs: Observation, at: float) -> tuple[str, str] | None:
        """Why ``obs`` cannot be considered at all (bad or unregistered device), or None.

        Outside the observation's savepoint: a device heard of for the first time stays listed
        (``hotspots status``: unknown devices) although its observation is quarantined.
        """
        if not isinstance(obs, Observation):
            return "bad_field", f"not an observation: {type(obs).__name__}"
        device_id = obs.device_id
        if obs.source not in validate.SOURCES:
            return "bad_field", f"source: {_printable(obs.source)}"
        if device_id in self._registered:
            return None
        if not is_name(device_id):
            return "bad_device_id", _printable(device_id)
        if not self._known(device_id, obs.source, at):
            return "unknown_device", device_id
        return None

    def _submit(self, obs: Observation, at: float) -> str:
        device_id = obs.device_id
        if obs.source == "tracker" and obs.seq is None and obs.kind != STATUS:
            # Trackers number every location and transition: without it, no de-duplication.
            raise _Rejection("missing_field", "seq")
        try:
            obs, dropped = validate.check(obs)
        except validate.Invalid as exc:
            raise _Rejection("bad_field", str(exc)) from None
        delta = self._deltas.get(device_id)
        if delta is None:
            delta = self._deltas[device_id] = _DeviceDelta(int(at))
        elif int(at) > delta.last_seen:
            delta.last_seen = int(at)
        for name in dropped:
            self.counts.dropped[name] += 1
            self._count(device_id, f"dropped:{name}", 1, 0, at)
        if obs.kind == STATUS:
            self._store_status(obs, at)
            self.counts.status += 1
            return "status"
        if obs.kind == APP:
            if not self._insert_app(obs, at):
                self.counts.duplicates += 1
                delta.duplicates += 1
                return "duplicate"
            self.counts.stored[APP] += 1
            return "stored"
        if obs.kind == LOCATION:
            inserted = self._insert_position(obs, at, delta)
        else:
            inserted = self._insert_transition(obs, at)
        if not inserted:
            self.counts.duplicates += 1
            delta.duplicates += 1
            return "duplicate"
        self.counts.stored[obs.kind] += 1
        if obs.seq is not None and obs.seq > delta.max_seq:
            delta.max_seq = obs.seq
        return "stored"

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

    def _store_status(self, obs: Observation, at: float) -> None:
        device_id = obs.device_id
        version = obs.fences
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
            " firmware = coalesce(?, firmware), energy = coalesce(?, energy)"
            " WHERE device_id = ?",
            (1 if obs.online else 0, int(at), obs.batt, obs.outbox, version, obs.firmware,
             json.dumps(obs.energy, sort_keys=True) if obs.energy else None, device_id),
        )
        if obs.online:
            # A tracker's status is its whole state: no ``fence_err`` means no set refused
            # (a last will says nothing about it, and leaves the alert as it was).
            self.conn.execute(
                "UPDATE devices SET fence_error = ?, fence_rejects = ? WHERE device_id = ?",
                (obs.fence_error, obs.fence_rejects, device_id))

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

    def _regions(self, regions: tuple[str, ...] | None) -> str | None:
        if regions is None:
            return None
        # Trackers repeat the same few region lists; dumping each costs as much as parsing.
        text = self._regions_text.get(regions)
        if text is None:
            text = json.dumps(list(regions), ensure_ascii=False)
            if len(regions) < 8 and len(self._regions_text) < 1024:
                self._regions_text[regions] = text
        return text

    def _insert_position(self, obs: Observation, at: float, delta: _DeviceDelta) -> bool:
        device_id, tst = obs.device_id, obs.tst
        if obs.seq is None and self.conn.execute(
                "SELECT 1 FROM positions WHERE device_id = ? AND tst = ? AND lat = ? AND lon = ?"
                " AND seq IS NULL LIMIT 1", (device_id, tst, obs.lat, obs.lon)).fetchone():
            return False  # a source without sequence numbers sent the same fix again
        config = self.filter_config.get(obs.source) or filters.DEFAULTS["tracker"]
        previous = self._previous(device_id, tst)
        reasons = filters.check(config, obs, at, previous)
        retro: list[tuple[int, str]] = []
        source_check = self.source_checks.get(obs.source)
        if source_check is not None:
            flags, retro = source_check(obs)
            if flags:
                reasons = ",".join(sorted({*filter(None, reasons.split(",")), *flags}))
        extra = validate.extra_json(obs.extra) if obs.extra else None
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO positions (device_id, seq, source, tst, lat, lon, acc_m,"
            " speed_mps, course_deg, alt_m, inregions, trigger, created_at, received_at,"
            " filtered, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                device_id, obs.seq, obs.source, tst, obs.lat, obs.lon, obs.acc_m,
                None if obs.speed_mps is None else round(obs.speed_mps, 2),
                obs.course_deg, obs.alt_m, self._regions(obs.inregions), obs.trigger,
                obs.created_at, at, reasons or None, extra,
            ),
        )
        if cursor.rowcount != 1:
            return False
        self.last_position_id = cursor.lastrowid
        for position_id, flag in retro:
            self._flag(position_id, flag)
        if reasons:
            delta.filtered += 1
            for reason in reasons.split(","):
                self.counts.filtered[reason] += 1
        else:
            latest = self._kept.get(device_id)
            if latest is None or tst >= latest.tst:
                self._kept[device_id] = filters.Kept(tst, obs.lat, obs.lon, obs.acc_m or 0)
        if delta.last_fix_tst is None or tst > delta.last_fix_tst:
            delta.last_fix_tst = tst
        if obs.origin.startswith(LIVE_ORIGINS) and (delta.live_fix_tst is None
                                                    or tst > delta.live_fix_tst):
            delta.live_fix_tst = tst
        if obs.source != "tracker" and obs.batt is not None:
            # Phones put their battery in every location; trackers in their status.
            delta.batt = obs.batt
        return True

    def _insert_app(self, obs: Observation, at: float) -> bool:
        """One app message; the same message again (a retained card or waypoint list sent at
        every reconnect) is a duplicate."""
        digest = hashlib.sha256(obs.payload.encode("utf-8")).hexdigest()
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO app_messages (device_id, type, origin, tst, payload, sha256,"
            " received_at) VALUES (?,?,?,?,?,?,?)",
            (obs.device_id, obs.app_type, _printable(obs.origin)[:TEXT_KEEP], obs.tst,
             obs.payload, digest, at))
        if cursor.rowcount != 1:
            return False
        self._charge_app(obs.device_id, len(obs.payload), at)
        return True

    def _charge_app(self, device: str, size: int, at: float) -> None:
        """Count a new app message against its device's budget; evict the oldest beyond."""
        budget = self.budget
        self._charge_table(_APP_MESSAGES, self._app_usage, device, size, at,
                           budget.app_max_rows, budget.app_max_bytes)

    def _flag(self, position_id: int, flag: str) -> None:
        """Add ``flag`` to an already stored position (a source check learned something)."""
        row = self.conn.execute("SELECT filtered, device_id FROM positions WHERE id = ?",
                                (position_id,)).fetchone()
        if row is None:
            return
        flags = set(filter(None, (row[0] or "").split(",")))
        if flag in flags:
            return
        self.conn.execute("UPDATE positions SET filtered = ? WHERE id = ?",
                          (",".join(sorted({*flags, flag})), position_id))
        self._kept.pop(row[1], None)  # it may have been the kept one

    def set_apart_off_duty(self, now: float, grace_s: int, keep_s: int,
                           sources: tuple[str, ...] = OFF_DUTY_SOURCES) -> tuple[int, int, int]:
        """After the patrol (issue 19): positions of phones and radios that no assignment covers
        are no patrol data. Returns ``(flagged, restored, purged)``.

        - a position of one of ``sources`` older than ``grace_s`` (time for a paper log to be
          typed in) that no assignment of its device covers is flagged ``off_duty``: kept
          apart, left out of every report and export (they read unflagged positions only);
        - a flagged position an assignment now covers (recorded late) gets its flag back off;
        - a flagged position older than ``keep_s`` is deleted.

        Commits its own transaction; call it between batches.
        """
        self.commit()
        officer = attribution.officer_at_sql("positions")
        marks = ",".join("?" * len(sources))
        self.begin()
        try:
            flagged = self.conn.execute(
                "UPDATE positions SET filtered = CASE WHEN filtered IS NULL THEN 'off_duty'"
                " ELSE filtered || ',off_duty' END"
                f" WHERE source IN ({marks}) AND tst < ?"
                " AND (filtered IS NULL OR ',' || filtered || ',' NOT LIKE '%,off_duty,%')"
                f" AND {officer} IS NULL",
                (*sources, int(now - grace_s))).rowcount
            restored = self.conn.execute(
                "UPDATE positions SET filtered = nullif(trim(replace(',' || filtered || ',',"
                " ',off_duty,', ','), ','), '')"
                f" WHERE ',' || filtered || ',' LIKE '%,off_duty,%' AND {officer} IS NOT NULL"
                ).rowcount
            purged = self.conn.execute(
                "DELETE FROM positions WHERE ',' || filtered || ',' LIKE '%,off_duty,%'"
                " AND tst < ?", (int(now - keep_s),)).rowcount
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        finally:
            self._in_batch = False
            self._kept.clear()
        return flagged, restored, purged

    def _insert_transition(self, obs: Observation, at: float) -> bool:
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO transitions (device_id, seq, event, rid, desc, tst, lat, lon,"
            " acc_m, created_at, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (obs.device_id, obs.seq, obs.event, obs.rid, obs.desc, obs.tst, obs.lat, obs.lon,
             obs.acc_m, obs.created_at, at),
        )
        return cursor.rowcount == 1

    # -- quarantine ---------------------------------------------------------------------------
    def _quarantine(self, origin: object, reason: str, detail: object, raw: object,
                    obs: object, at: float, device_id: object) -> str:
        """Insert one quarantine row; nothing in its arguments can make this fail."""
        reason_text = _printable(reason)[:64]
        self.counts.quarantined[reason_text] += 1
        self.last_reason = reason_text
        data = _raw_bytes(raw, obs)
        kept = data[:self.budget.raw_keep]
        origin_text = _printable(origin)[:TEXT_KEEP]
        detail_text = _printable(detail)[:TEXT_KEEP]
        self.last_detail = detail_text
        device = device_id if is_name(device_id) else None
        if device is None and device_id is not None:
            detail_text = f"{detail_text} [device {_printable(device_id)[:80]}]"[:TEXT_KEEP]
        self.conn.execute(
            "INSERT INTO quarantine (received_at, topic, reason, detail, raw, device_id, raw_len,"
            " raw_sha256) VALUES (?,?,?,?,?,?,?,?)",
            (_safe_time(at), origin_text, reason_text, detail_text, kept, device, len(data),
             hashlib.sha256(data).hexdigest()),
        )
        self._charge(device, len(kept) + len(detail_text) + len(origin_text), at)
        return "quarantined"

    def _charge(self, device: str | None, size: int, at: float) -> None:
        """Count a new quarantine row against its device's budget; evict the oldest beyond."""
        budget = self.budget
        evict_n, evict_bytes = self._charge_table(_QUARANTINE, self._usage, device, size, at,
                                                  budget.max_rows, budget.max_bytes)
        self.counts.evicted += evict_n
        self.counts.evicted_bytes += evict_bytes

    def _charge_table(self, table: _Bounded, usage_of: dict, device: str | None, size: int,
                      at: float, max_rows: int, max_bytes: int) -> tuple[int, int]:
        """Count one new row of ``device`` in ``table`` (``size`` bytes); beyond ``max_rows``
        or ``max_bytes``, delete its oldest rows down to nine tenths and count them.

        ``usage_of`` keeps each device's ``[rows, bytes]`` across calls: it is read from the
        table once, then followed. Returns the rows and bytes evicted.
        """
        usage = usage_of.get(device)
        if usage is None:
            row = self.conn.execute(table.usage_sql, (device,)).fetchone()
            usage = usage_of[device] = [row[0], row[1]]
        else:
            usage[0] += 1
            usage[1] += size
        if usage[0] <= max_rows and usage[1] <= max_bytes:
            return 0, 0
        # Evict a tenth of the budget at once, so a flood pays one DELETE per many inserts.
        rows = self.conn.execute(table.oldest_sql, (device, max(1, max_rows // 10))).fetchall()
        evict_n = evict_bytes = 0
        last_id = None
        for row_id, row_size in rows:
            if (usage[0] - evict_n <= max_rows * 9 // 10
                    and usage[1] - evict_bytes <= max_bytes * 9 // 10):
                break
            evict_n += 1
            evict_bytes += row_size or 0
            last_id = row_id
        if last_id is None:
            return 0, 0
        self.conn.execute(table.evict_sql, (device, last_id))
        usage[0] -= evict_n
        usage[1] -= evict_bytes
        self._count(device or "", table.counter, evict_n, evict_bytes, at)
        return evict_n, evict_bytes

    def _count(self, device_key: str, counter: str, n: int, size: int, at: float) -> None:
        entry = self._counters.get((device_key, counter))
        if entry is None:
            self._counters[(device_key, counter)] = [n, size, int(_safe_time(at))]
        else:
            entry[0] += n
            entry[1] += size
            entry[2] = max(entry[2], int(_safe_time(at)))


def _printable(value: object) -> str:
    """Text SQLite can always store: unencodable characters (lone surrogates) escaped."""
    if value is None:
        return ""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # noqa: BLE001 - a repr that raises is still no reason to fail
        text = f"<{type(value).__name__}>"
    if len(text) > 4 * TEXT_KEEP:
        text = text[:4 * TEXT_KEEP]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _raw_bytes(raw: object, obs: object) -> bytes:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "backslashreplace")
    if isinstance(obs, Observation):
        try:
            text = json.dumps(asdict(obs), default=repr, allow_nan=True)
        except Exception:  # noqa: BLE001 - recursion, odd types: keep what repr gives
            text = _printable(obs)
        return text.encode("utf-8", "backslashreplace")
    return b""


def _safe_time(at: object) -> float:
    try:
        value = float(at)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return value if value == value and abs(value) < 1e12 else 0.0
