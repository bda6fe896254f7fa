"""Radio reports into the gateway database: the Airwave adapter of the intake, everything logged.

A LIP report with a position is decoded into an
:class:`~gateway.intake.observation.Observation` and handed to the intake
(:class:`gateway.intake.intake.Intake`), like a tracker's fix: the same registration rule (a
radio nobody registered is quarantined as ``unknown_device``), the same per-source filter rules
(:mod:`gateway.intake.filters`, with the radio's own ``mast``, ``jump`` and ``coarse`` as its
source check, :mod:`gateway.intake.airwave.filters`) and the same de-duplication. Every SDS the
radio hands over also leaves one row in ``radio_reports`` with its outcome, so the log of what
the radio said is complete:

``stored``      a LIP report with a position: also one row in ``positions`` (``source`` =
                ``airwave``, ``device_id`` = ``issi:<ISSI>``, ``acc_m`` = the position error
                bound, ``filtered`` = the filters' flags)
``quarantined`` a position the intake refused (``reason``: ``unknown_device`` for a radio not
                registered, ``bad_field`` ...): also a ``quarantine`` row
``nofix``       a LIP report without a position (never a ``positions`` row)
``dropped``     a position of unknown accuracy (error class 7) where the fleet's setting
                ``unknown_accuracy`` is ``drop`` (reason ``accuracy_unknown``): logged here only
``area``        a LIP arc: its centre is not where the radio is, so not a position
``duplicate``   the same report again (same radio, fix time and coordinate)
``logged``      another SDS (status, text, other protocol): kept and counted, nothing else
``rejected``    undecodable (truncated, reserved PDU, unknown sender ...): reason and hex kept

Officers are found as for trackers: the ``assignments`` history says which collar number carried
``issi:<ISSI>`` when, and :func:`assign_radio` records a hand-over through
:mod:`gateway.fleet.identity`, so radios and trackers follow one set of assignment rules.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter

import sqlite_utils

from gateway.fleet import attribution, identity
from gateway.intake.airwave import lip
from gateway.intake.airwave.filters import RadioFilters
from gateway.intake.airwave.sds import Sds
from gateway.intake.airwave.timing import FUTURE_TOLERANCE_S, fix_time
from gateway.intake.filters import FilterConfig
from gateway.intake.intake import Intake
from gateway.intake.observation import LOCATION, Observation

log = logging.getLogger(__name__)

SOURCE = identity.RADIO_SOURCE
KMH_TO_MPS = 1 / 3.6
# Reason for sending -> the wire format's trigger letter (t timer, v move, p otherwise).
TRIGGER = {129: "t", 130: "v"}
#: What to do with a position of unknown accuracy (error class 7): the fleet's choice.
UNKNOWN_ACCURACY = ("keep", "drop")


def radio_device_id(issi: int) -> str:
    """The device id under which a radio's positions and assignments are kept."""
    return f"{identity.RADIO_PREFIX}{issi}"


def assign_radio(db: sqlite_utils.Database, issi: int, collar: str, start_ts: int,
                 end_ts: int | None = None) -> identity.Assignment:
    """Record that ``collar`` carries radio ``issi`` from ``start_ts`` (until ``end_ts``);
    returns the assignment as recorded.

    The rules are :func:`gateway.fleet.identity.assign`'s, as for trackers: the assignment of the
    radio
    running at ``start_ts`` ends there, and the new one runs until ``end_ts`` (or, without it,
    until the stretch it was recorded in ended, or stays open), but never past the start of the
    radio's next recorded assignment: so the returned ``end_ts`` can be earlier than asked.

    The radio is registered (as an ``airwave`` device, not a pooled tracker the dock would
    count) only once the request is known to be valid.

    :raises gateway.fleet.identity.IdentityError: a bad collar number, ``end_ts`` not after
        ``start_ts``, or an assignment of the radio already starting at ``start_ts``
    """
    return identity.assign(db, radio_device_id(issi), collar, at=start_ts, until=end_ts)


class AirwaveStore:
    """Stores SDS messages from the radio; one instance per database connection (thread).

    :param db: a migrated gateway database
    :param filters: the radio plausibility filters (default thresholds when omitted)
    :param accept_unknown: store positions of radios nobody registered (trials, benches)
    :param filter_config: per-source filter rules for the intake (defaults otherwise)
    """

    def __init__(self, db: sqlite_utils.Database, filters: RadioFilters | None = None,
                 future_tolerance_s: int = FUTURE_TOLERANCE_S, accept_unknown: bool = False,
                 filter_config: dict[str, FilterConfig] | None = None,
                 unknown_accuracy: str = "keep"):
        if unknown_accuracy not in UNKNOWN_ACCURACY:
            raise ValueError(f"unknown_accuracy {unknown_accuracy!r}: one of"
                             f" {', '.join(UNKNOWN_ACCURACY)}")
        self.db = db
        self.filters = filters or RadioFilters(db)
        self.future_tolerance_s = future_tolerance_s
        self.unknown_accuracy = unknown_accuracy
        self.intake = Intake(db, filter_config, accept_unknown,
                             source_checks={SOURCE: self.filters.check_observation})
        self.counts: Counter = Counter()

    def handle(self, sds: Sds, received_at: float) -> str:
        """Store one SDS received at ``received_at``; returns its outcome (see module).

        Never raises for what the SDS holds: a failure while storing it logs it as
        ``rejected`` (reason ``internal_error``) instead.
        """
        intake = self.intake
        try:
            intake.begin()
            outcome = self._handle(sds, received_at)
            intake.commit()
        except sqlite3.OperationalError:
            intake.rollback()  # the database, not the report: the reader retries or stops
            raise
        except Exception as exc:  # noqa: BLE001 - one report must not stop the radio
            intake.rollback()
            log.warning("SDS rejected after %r: %s", exc, sds.hex)
            intake.begin()
            outcome = self._log(received_at, None, "lip", "rejected", reason="internal_error",
                                detail=f"{type(exc).__name__}: {exc}"[:500], hex=sds.hex[:2000])
            intake.commit()
        self.counts[outcome] += 1
        return outcome

    def reject(self, reason: str, text: str, received_at: float) -> None:
        """Log a framing rejection from the serial reader (garbage, missing payload ...)."""
        self.intake.begin()
        self._log(received_at, None, "frame", "rejected", reason=reason,
                  detail=text[:500].encode("utf-8", "backslashreplace").decode())
        self.intake.commit()
        self.counts["rejected"] += 1
        self.counts[f"rejected_{reason}"] += 1

    # -- internals --------------------------------------------------------------------------------
    def _handle(self, sds: Sds, received_at: float) -> str:
        issi = sds.header.issi
        kind = sds.kind
        if kind != "lip":
            log.info("SDS logged: %s", sds.describe())
            self.counts[f"sds_{kind}"] += 1
            return self._log(received_at, sds, kind, "logged", issi=issi)
        try:
            report = _decode_sds(sds)
        except lip.LipError as exc:
            log.warning("LIP report rejected (%s): %s [%s]", exc.reason, exc.detail, sds.hex)
            self.counts[f"rejected_{exc.reason}"] += 1
            return self._log(received_at, sds, "lip", "rejected", issi=issi, reason=exc.reason,
                             detail=exc.detail)
        if issi is None or not identity.is_name(issi, "issi"):
            self.counts["rejected_no_issi"] += 1
            return self._log(received_at, sds, report.kind, "rejected", reason="no_issi",
                             detail=f"calling identity {sds.header.calling!r}")
        device_id = radio_device_id(issi)
        self._touch(issi, device_id, received_at)
        when = fix_time(report, received_at, self.future_tolerance_s)
        fields = {
            "issi": issi, "device_id": device_id, "tst": when.tst, "time_basis": when.basis,
            "age_max_s": when.age_max_s, "time_uncertainty_s": when.uncertainty_s,
            "lat": report.lat, "lon": report.lon, "lat_raw": report.lat_raw,
            "lon_raw": report.lon_raw, "pos_err_m": report.pos_err_m,
            "pos_err_class": report.pos_err_class, "shape": report.shape,
            "speed_kmh": report.speed_kmh, "direction_deg": report.direction_deg,
            "altitude_m": report.altitude_m, "send_reason": report.reason,
            "result_code": report.result_code, "detail": "; ".join(report.warnings) or None,
        }
        if report.warnings:
            self.counts["warnings"] += 1
        if report.nofix:
            return self._log(received_at, sds, report.kind, "nofix", **fields)
        if not report.is_point:
            return self._log(received_at, sds, report.kind, "area", **fields)
        if report.accuracy_unknown and self.unknown_accuracy == "drop":
            return self._log(received_at, sds, report.kind, "dropped",
                             **{**fields, "reason": "accuracy_unknown"})
        assert report.lat is not None and report.lon is not None
        speed = report.speed_kmh
        obs = Observation(
            LOCATION, SOURCE, device_id, f"airwave:{device_id}", tst=when.tst,
            lat=round(report.lat, 7), lon=round(report.lon, 7), acc_m=report.pos_err_m,
            speed_mps=None if speed is None else speed * KMH_TO_MPS,
            course_deg=report.direction_deg, alt_m=report.altitude_m,
            trigger=TRIGGER.get(report.reason or -1, "p"),
            extra={"lat_raw": report.lat_raw or 0, "lon_raw": report.lon_raw or 0,
                   "pos_err_class": report.pos_err_class})
        result = self.intake.submit(obs, received_at, raw=sds.hex.encode())
        if result == "duplicate":
            return self._log(received_at, sds, report.kind, "duplicate", **fields)
        if result != "stored":
            self.counts[f"quarantined_{self.intake.last_reason}"] += 1
            return self._log(received_at, sds, report.kind, "quarantined",
                             **{**fields, "reason": self.intake.last_reason})
        position_id = self.intake.last_position_id
        filtered = self.db.execute("SELECT filtered FROM positions WHERE id = ?",
                                   (position_id,)).fetchone()[0]
        for flag in (filtered or "").split(","):
            if flag:
                self.counts[f"flagged_{flag}"] += 1
        # Positions the intake flagged ``mast`` afterwards: the log says so too.
        self.db.execute(
            "UPDATE radio_reports SET filtered = (SELECT filtered FROM positions p"
            " WHERE p.id = radio_reports.position_id) WHERE lat_raw = ? AND lon_raw = ?"
            " AND position_id IS NOT NULL", (report.lat_raw, report.lon_raw))
        return self._log(received_at, sds, report.kind, "stored", position_id=position_id,
                         filtered=filtered, **fields)

    def _touch(self, issi: int, device_id: str, at: float) -> None:
        self.db.execute(
            "INSERT INTO radios (issi, device_id, first_seen, last_seen) VALUES (?,?,?,?)"
            " ON CONFLICT(issi) DO UPDATE SET last_seen = excluded.last_seen",
            (issi, device_id, int(at), int(at)),
        )
        self.db.execute(
            "INSERT INTO devices (device_id, source, first_seen, last_seen, duplicates, max_seq)"
            " VALUES (?, ?, ?, ?, 0, 0)"
            " ON CONFLICT(device_id) DO UPDATE SET last_seen = excluded.last_seen",
            (device_id, SOURCE, int(at), int(at)),
        )

    def _log(self, received_at: float, sds: Sds | None, kind: str, outcome: str,
             **fields) -> str:
        row = {"received_at": received_at, "kind": kind, "outcome": outcome, **fields}
        if sds is not None:
            row.setdefault("issi", sds.header.issi)
            row.update(header=sds.header.raw, hex=sds.hex, declared_bits=sds.header.length_bits)
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self.db.execute(f"INSERT INTO radio_reports ({names}) VALUES ({marks})",
                        tuple(row.values()))
        return outcome


def _decode_sds(sds: Sds) -> lip.LipReport:
    """Decode the LIP PDU after the protocol identifier, choosing between the declared and the
    actual length: the declared one first (it excludes octet padding), the hex length when the
    declaration was too short for the report the hex actually holds."""
    data = sds.data[1:]
    hex_bits = sds.hex_bits - 8
    declared = sds.header.length_bits - 8
    if declared <= 0 or hex_bits <= 0:
        raise lip.LipError("truncated", f"{sds.hex_bits} hex bits, {sds.header.length_bits} "
                           "declared: no room for a LIP PDU")
    try:
        return lip.decode(data, min(declared, hex_bits))
    except lip.LipError as exc:
        if exc.reason != "truncated" or declared >= hex_bits:
            raise
    report = lip.decode(data, hex_bits)
    report.warnings.append(f"declared {sds.header.length_bits} bits, the report needs more: "
                           f"decoded from the {sds.hex_bits} hex bits")
    return report


def radio_rows(db: sqlite_utils.Database, include_all: bool = False):
    """Radio reports with the officer who carried the radio at the fix time, in time order.

    Only stored positions unless ``include_all``; the officer comes from the same assignment
    history as for trackers.
    """
    where = "" if include_all else "WHERE r.outcome = 'stored'"
    cursor = db.execute(
        "SELECT r.id, r.issi, r.device_id, " + attribution.officer_at_sql("r") + " AS officer,"
        " r.kind, r.outcome, r.reason, r.tst,"
        " strftime('%Y-%m-%dT%H:%M:%SZ', r.tst, 'unixepoch') AS time_utc,"
        " r.time_basis, r.age_max_s, r.time_uncertainty_s, r.lat, r.lon, r.pos_err_m,"
        " r.pos_err_class, r.speed_kmh, r.direction_deg, r.send_reason, r.result_code,"
        f" r.filtered, r.position_id, r.received_at FROM radio_reports r {where}"
        " ORDER BY r.tst IS NULL, r.tst, r.id"
    )
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))
