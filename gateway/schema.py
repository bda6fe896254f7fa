"""The gateway's SQLite schema and its migrations: the one place that says what is stored.

Each migration is a function applied once, in order; ``PRAGMA user_version`` records how many
have run, so opening an old database brings it up to date and opening a new one builds it.

Tables
------
``devices``
    One row per tracker, phone or radio: last seen, last status (online, battery, outbox depth,
    active fence version), counters of duplicates dropped.
``positions``
    Every position from every source. ``(device_id, seq)`` is unique, so a message delivered
    twice is stored once. ``tst`` is the fix time (GNSS time, UTC epoch seconds), never the
    receive time, which is kept apart in ``received_at``.
``transitions``
    Hot spot enter/leave events computed on the device, ``tst`` being the interpolated crossing.
``assignments``
    Who carried which device, from ``start_ts`` to ``end_ts`` (NULL while still out), so every
    position of a pooled device is attributed to the right collar number.
``quarantine``
    Messages that could not be stored, with the reason and the raw bytes, so nothing is lost
    silently.
``taskings``, ``team_members``
    Planned patrols imported from CSV (:mod:`gateway.reports.taskings`) and who is in which team,
    for
    the exception report.
``crimes``, ``crime_imports``
    Recorded crime imported for planning (:mod:`planning.crime`).
``web_users``, ``web_sessions``, ``audit_log``, ``fence_sets``, ``fence_edits``
    The station web app's accounts, sessions, audit log, saved hot spot sets and boundary
    changes (:mod:`gateway.web`, ``docs/web.md``).
"""

import sqlite3
import time
from collections.abc import Callable

import sqlite_utils


def _v1_initial(db: sqlite_utils.Database) -> None:
    db["devices"].create(
        {
            "device_id": str,
            "source": str,
            "first_seen": int,
            "last_seen": int,
            "online": int,
            "batt": int,
            "outbox": int,
            "fence_version": str,
            "firmware": str,
            "max_seq": int,
            "duplicates": int,
        },
        pk="device_id",
        defaults={"duplicates": 0, "max_seq": 0},
    )
    db["positions"].create(
        {
            "id": int,
            "device_id": str,
            "seq": int,
            "source": str,
            "tst": int,
            "lat": float,
            "lon": float,
            "acc_m": float,
            "speed_mps": float,
            "course_deg": float,
            "alt_m": float,
            "inregions": str,
            "trigger": str,
            "created_at": int,
            "received_at": float,
            "filtered": str,
        },
        pk="id",
    )
    db["positions"].create_index(["device_id", "seq"], unique=True)
    db["positions"].create_index(["device_id", "tst"])
    db["positions"].create_index(["tst"])
    db["transitions"].create(
        {
            "id": int,
            "device_id": str,
            "seq": int,
            "event": str,
            "rid": str,
            "desc": str,
            "tst": int,
            "lat": float,
            "lon": float,
            "acc_m": float,
            "created_at": int,
            "received_at": float,
        },
        pk="id",
    )
    db["transitions"].create_index(["device_id", "seq"], unique=True)
    db["transitions"].create_index(["rid", "tst"])
    db["assignments"].create(
        {"id": int, "device_id": str, "collar": str, "start_ts": int, "end_ts": int},
        pk="id",
    )
    db["assignments"].create_index(["device_id", "start_ts"])
    db["quarantine"].create(
        {
            "id": int,
            "received_at": float,
            "topic": str,
            "reason": str,
            "detail": str,
            "raw": bytes,
        },
        pk="id",
    )


def _v_taskings(db: sqlite_utils.Database) -> None:
    """Taskings (which hot spot, when, who, for how long) and team membership.

    ``start_ts``/``end_ts`` are the tasked window in UTC epoch seconds; ``date`` is the local
    day it was planned for; exactly one of ``officer`` (collar number) and ``team`` is set.
    Re-importing the same plan is idempotent through the unique index.
    """
    db["taskings"].create(
        {
            "id": int,
            "date": str,
            "hotspot": str,
            "start_ts": int,
            "end_ts": int,
            "officer": str,
            "team": str,
            "required_s": int,
            "note": str,
            "imported_at": int,
        },
        pk="id",
        defaults={"officer": "", "team": ""},
    )
    db["taskings"].create_index(
        ["date", "hotspot", "start_ts", "end_ts", "officer", "team"], unique=True)
    db["taskings"].create_index(["start_ts"])
    db["team_members"].create({"team": str, "collar": str}, pk=("team", "collar"))


def _v_airwave(db: sqlite_utils.Database) -> None:
    """Airwave (TETRA) radios: their ISSIs, every SDS they sent, and mast locations.

    ``radios`` maps an ISSI to the device id its positions and assignments use
    (``issi:<ISSI>``). ``radio_reports`` keeps one row per SDS received from the radio with its
    outcome (stored, nofix, area, duplicate, logged, rejected), the decoded LIP fields that
    ``positions`` has no column for (age class, position error class, reason for sending,
    result code, time basis) and the raw hex; ``position_id`` links a stored report to its
    ``positions`` row. ``radio_masts`` holds configured and learned mast coordinates for the
    filters (see :mod:`gateway.intake.airwave.filters`).
    """
    db["radios"].create(
        {"issi": int, "device_id": str, "label": str, "first_seen": int, "last_seen": int},
        pk="issi",
    )
    db["radio_reports"].create(
        {
            "id": int, "received_at": float, "issi": int, "device_id": str, "kind": str,
            "outcome": str, "reason": str, "detail": str, "tst": int, "time_basis": str,
            "age_max_s": int, "time_uncertainty_s": int, "lat": float, "lon": float,
            "lat_raw": int, "lon_raw": int, "pos_err_m": float, "pos_err_class": int,
            "shape": int, "speed_kmh": float, "direction_deg": float, "altitude_m": int,
            "send_reason": int, "result_code": int, "position_id": int, "filtered": str,
            "declared_bits": int, "header": str, "hex": str,
        },
        pk="id",
    )
    db["radio_reports"].create_index(["issi", "tst"])
    db["radio_reports"].create_index(["lat_raw", "lon_raw"])
    db["radio_reports"].create_index(["position_id"])
    db["radio_masts"].create(
        {"id": int, "lat_raw": int, "lon_raw": int, "lat": float, "lon": float, "source": str,
         "label": str, "first_seen": float},
        pk="id",
    )
    db["radio_masts"].create_index(["lat_raw", "lon_raw"], unique=True)


def _v_fleet_identity_filters(db: sqlite_utils.Database) -> None:
    """Fleet registry, status times, assignment due times, quarantine per device, and the
    indexes the status and per-officer queries need (issue 7).

    - ``devices.registered_at``: NULL for a device the gateway has only heard of (its messages
      are quarantined as ``unknown_device``); set by ``hotspots register``/``assign``.
    - ``devices.status_at``: receive time of the last status (or last will) message, so
      ``online`` is read with its age; ``devices.last_fix_tst``: newest fix time stored.
    - ``devices.filtered``: positions kept but flagged by a filter, per device.
    - ``assignments.due_ts``: when the device should be back (end of shift); ``recorded_at``:
      when the assignment was entered, so a late entry is visible as such.
    - ``quarantine.device_id``: which device a rejected message claimed to come from, if known.
    - a unique ``(device_id, tst)`` for OwnTracks positions without ``seq``.
    - ``positions_attributed``: positions with the collar number carrying the device at the
      fix time, from the assignment history at query time, so an assignment recorded after the
      fact re-attributes the positions it covers without rewriting them.
    """
    devices = db["devices"]
    for name in ("registered_at", "status_at", "last_fix_tst", "filtered"):
        devices.add_column(name, int)
    db.execute("UPDATE devices SET filtered = 0")
    db["assignments"].add_column("due_ts", int)
    db["assignments"].add_column("recorded_at", int)
    db["assignments"].create_index(["collar", "start_ts"])
    db["assignments"].create_index(["device_id", "end_ts"])
    db["quarantine"].add_column("device_id", str)
    db["quarantine"].create_index(["reason"])
    db["quarantine"].create_index(["device_id"])
    db.execute(
        "CREATE INDEX idx_positions_filtered ON positions (device_id, filtered)"
        " WHERE filtered IS NOT NULL"
    )
    # OwnTracks phones send no sequence number: a re-delivered message is recognised by its fix
    # time instead, so it too is stored once.
    db.execute(
        "CREATE UNIQUE INDEX idx_positions_owntracks_tst ON positions (device_id, tst)"
        " WHERE seq IS NULL AND source = 'owntracks'"
    )
    db.execute(
        "CREATE UNIQUE INDEX idx_transitions_noseq ON transitions (device_id, rid, event, tst)"
        " WHERE seq IS NULL"
    )
    # The rule of gateway.fleet.attribution, spelt out: a migration is history and must build
    # the same view whatever that module says later (tests/test_attribution.py checks they agree).
    db.execute(
        "CREATE VIEW positions_attributed AS SELECT p.*, (SELECT a.collar FROM assignments a"
        " WHERE a.device_id = p.device_id AND a.start_ts <= p.tst"
        " AND (a.end_ts IS NULL OR a.end_ts > p.tst) ORDER BY a.start_ts DESC LIMIT 1)"
        " AS officer FROM positions p"
    )


def _v_dock(db: sqlite_utils.Database) -> None:
    """Docking station (issue 10): slots, what happened at the dock, and battery readings.

    - ``dock_slots``: one row per slot, the tracker in it now (``device_id`` NULL when empty,
      ``state``: ``empty``, ``docked``, ``refused``), its last identity answer (battery,
      charging, outbox depth, fence version, firmware, officer it is signed out to) and when
      it was plugged in; written by ``hotspots dock run``, read by ``dock status``/``pick``.
    - ``dock_events``: docked, undocked, pulled, returned, signed_out, refused, fences,
      config; ``batt`` at the time, for the battery health trend (drain per hour off the dock).
    - ``battery_log``: sampled battery readings per device (charging curves, trends).
    """
    db["dock_slots"].create(
        {"slot": str, "port": str, "device_id": str, "state": str, "docked_at": int,
         "batt": int, "charging": int, "outbox": int, "fence_version": str, "firmware": str,
         "signed_out_to": str, "detail": str, "updated_at": int},
        pk="slot",
    )
    db["dock_events"].create(
        {"id": int, "ts": int, "slot": str, "device_id": str, "event": str, "batt": int,
         "detail": str},
        pk="id",
    )
    db["dock_events"].create_index(["device_id", "ts"])
    db["battery_log"].create(
        {"id": int, "device_id": str, "ts": int, "batt": int, "charging": int, "docked": int},
        pk="id",
    )
    db["battery_log"].create_index(["device_id", "ts"])


def _v_fence_history(db: sqlite_utils.Database) -> None:
    """Which fence set each device ran, and from when: ``fence_history`` gets a row whenever a
    device reports a version other than its current one (``devices.fence_version``), so a
    supervisor can tell which hot spots a tracker enforced at the time of a visit."""
    db["fence_history"].create(
        {"id": int, "device_id": str, "version": str, "reported_at": int}, pk="id")
    db["fence_history"].create_index(["device_id", "reported_at"])
    db.execute(
        "INSERT INTO fence_history (device_id, version, reported_at)"
        " SELECT device_id, fence_version, coalesce(status_at, last_seen, 0) FROM devices"
        " WHERE fence_version IS NOT NULL"
    )


def _v_radio_source(db: sqlite_utils.Database) -> None:
    """Radios (``issi:<ISSI>``) registered by ``hotspots register`` or ``hotspots assign``
    before those learned the prefix were recorded as pooled trackers, which the dock then
    counted as out of the dock: they are radios. (The prefix is spelled out: migrations are
    history and must not follow a constant that may change later.)"""
    db.execute("UPDATE devices SET source = 'airwave' WHERE device_id LIKE 'issi:%'"
               " AND source = 'tracker'")


def _v_crime(db: sqlite_utils.Database) -> None:
    """Recorded crime for planning (issue 20, :mod:`planning.crime`).

    - ``crimes``: one row per imported crime. ``key`` (unique) makes re-importing a file a
      no-op: the force's crime reference where there is one, otherwise a hash of the row with
      its occurrence number among identical rows of that file. ``from_ts``/``to_ts`` are the
      committed-from/to window (UTC epoch s), NULL when the source gives only a month
      (police.uk); ``month`` is ``YYYY-MM`` always. ``lon``/``lat`` WGS84, ``x``/``y`` British
      National Grid (EPSG:27700) metres. ``category`` is the police.uk category or the offence
      group/type, ``offence_code`` the force's code if any.
    - ``crime_imports``: one row per import run, with its counts.
    """
    db["crimes"].create(
        {"id": int, "key": str, "source": str, "ref": str, "month": str, "from_ts": int,
         "to_ts": int, "lon": float, "lat": float, "x": float, "y": float, "category": str,
         "offence_code": str, "location": str, "lsoa_code": str, "outcome": str,
         "import_id": int},
        pk="id",
    )
    db["crimes"].create_index(["key"], unique=True)
    db["crimes"].create_index(["month"])
    db["crime_imports"].create(
        {"id": int, "path": str, "format": str, "at": int, "imported": int, "duplicates": int,
         "rejected": int},
        pk="id",
    )


def _v_intake(db: sqlite_utils.Database) -> None:
    """One intake for every source, bounded (issue 16).

    - ``quarantine.raw_len``, ``quarantine.raw_sha256``: the full length and hash of the raw
      input; ``raw`` keeps at most the intake's ``raw_keep`` bytes of it.
    - ``positions.extra``: fields a source sends that have no column (JSON object).
    - ``intake_counters``: per device (``''`` when none) and counter, how many and how many
      bytes: ``quarantine_evicted`` (quarantine rows deleted by the per-device budget),
      ``dropped:<field>`` (optional fields dropped for a bad value).
    """
    db["quarantine"].add_column("raw_len", int)
    db["quarantine"].add_column("raw_sha256", str)
    db.execute("UPDATE quarantine SET raw_len = length(raw)")
    db["positions"].add_column("extra", str)
    db.execute(
        "CREATE TABLE intake_counters (device_id TEXT NOT NULL, counter TEXT NOT NULL,"
        " n INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, last_at INTEGER,"
        " PRIMARY KEY (device_id, counter))")


def _v_web(db: sqlite_utils.Database) -> None:
    """The station web app (issue 21): its accounts, sessions, audit log and fence sets.

    - ``web_users``: one row per person, ``role`` one of supervisor, staff, analyst;
      ``password_hash`` is ``scrypt$n$r$p$salt$hash`` (hex), never the password.
    - ``web_sessions``: a logged-in browser; the cookie carries a random token, the table only
      its SHA-256 (a stolen database opens no session), with the session's CSRF token and expiry.
    - ``audit_log``: who viewed or exported whose positions, who changed or published which hot
      spot, who logged in or failed to (officers' locations are personal data).
    - ``fence_sets``: every hot spot set saved from the editor (or seeded from a file), its
      GeoJSON, compiled version and size, and when and by whom it was published; a report of a
      past day uses the set in force then.
    - ``fence_edits``: one row per hot spot added, changed or removed by a saved set, with the
      boundary before and after.
    """
    db["web_users"].create(
        {"username": str, "role": str, "password_hash": str, "created_at": int,
         "disabled": int},
        pk="username", defaults={"disabled": 0}, not_null={"role", "password_hash"})
    db["web_sessions"].create(
        {"token_sha256": str, "username": str, "csrf": str, "created_at": int,
         "last_seen": int, "expires_at": int},
        pk="token_sha256", foreign_keys=[("username", "web_users", "username")])
    db["audit_log"].create(
        {"id": int, "ts": float, "username": str, "role": str, "action": str,
         "subject": str, "detail": str, "address": str},
        pk="id")
    db["audit_log"].create_index(["ts"])
    db["audit_log"].create_index(["username", "ts"])
    db["fence_sets"].create(
        {"id": int, "version": str, "geojson": str, "hotspots": int, "device_bytes": int,
         "created_at": int, "created_by": str, "published_at": int, "published_by": str,
         "note": str},
        pk="id")
    db["fence_sets"].create_index(["version"])
    db["fence_sets"].create_index(["published_at"])
    db["fence_edits"].create(
        {"id": int, "ts": int, "username": str, "fence_set_id": int, "hotspot": str,
         "change": str, "before": str, "after": str},
        pk="id", foreign_keys=[("fence_set_id", "fence_sets", "id")])
    db["fence_edits"].create_index(["hotspot", "ts"])


def _v_analyst(db: sqlite_utils.Database) -> None:
    """Analyst access (issue 21): views with ISO 8601 UTC times and officers, payloads as text,
    and a ``visits`` table that ``hotspots report materialise`` fills.

    SQLite cannot add foreign keys to existing tables without rebuilding them (which would copy
    every position on a Pi while the gateway writes), so the relationships are documented in
    ``docs/analyst.md`` and in the Datasette metadata, and the views join them already. The
    views spell out their SQL here (a migration is history: it must not follow a constant).
    """
    iso = "strftime('%Y-%m-%dT%H:%M:%SZ', {0}, 'unixepoch')"
    iso_ms = "strftime('%Y-%m-%dT%H:%M:%fZ', {0}, 'unixepoch')"
    officer = ("(SELECT a.collar FROM assignments a WHERE a.device_id = {t}.device_id"
               " AND a.start_ts <= {t}.tst AND (a.end_ts IS NULL OR a.end_ts > {t}.tst)"
               " ORDER BY a.start_ts DESC LIMIT 1)")
    db.execute(
        "CREATE VIEW positions_iso AS SELECT p.id, p.device_id, " + officer.format(t="p")
        + " AS officer, p.seq, p.source, " + iso.format("p.tst") + " AS time_utc, p.tst, "
        + iso_ms.format("p.received_at") + " AS received_utc, p.lat, p.lon, p.acc_m,"
        " p.speed_mps, p.course_deg, p.alt_m, p.inregions, p.trigger, p.filtered"
        " FROM positions p")
    db.execute(
        "CREATE VIEW transitions_iso AS SELECT t.id, t.device_id, " + officer.format(t="t")
        + " AS officer, t.seq, t.event, t.rid AS hotspot, t.desc AS hotspot_name, "
        + iso.format("t.tst") + " AS time_utc, t.tst, " + iso_ms.format("t.received_at")
        + " AS received_utc, t.lat, t.lon, t.acc_m FROM transitions t")
    db.execute(
        "CREATE VIEW assignments_iso AS SELECT id, device_id, collar, "
        + iso.format("start_ts") + " AS start_utc, " + iso.format("end_ts") + " AS end_utc, "
        + iso.format("due_ts") + " AS due_utc, " + iso.format("recorded_at")
        + " AS recorded_utc, start_ts, end_ts FROM assignments")
    db.execute(
        "CREATE VIEW devices_iso AS SELECT device_id, source, "
        + iso.format("registered_at") + " AS registered_utc, " + iso.format("first_seen")
        + " AS first_seen_utc, " + iso.format("last_seen") + " AS last_seen_utc, "
        + iso.format("last_fix_tst") + " AS last_fix_utc, " + iso.format("status_at")
        + " AS status_utc, online, batt, outbox, fence_version, firmware, max_seq, duplicates,"
        " filtered FROM devices")
    # The raw MQTT payload is JSON text almost always; a payload that is not valid UTF-8 shows
    # as text with replacement characters, and payload_hex keeps the exact bytes.
    db.execute(
        "CREATE VIEW quarantine_text AS SELECT id, " + iso_ms.format("received_at")
        + " AS received_utc, topic, reason, detail, device_id, CAST(raw AS TEXT) AS payload,"
        " hex(raw) AS payload_hex FROM quarantine")
    db.execute(
        "CREATE VIEW taskings_iso AS SELECT id, date, hotspot, " + iso.format("start_ts")
        + " AS start_utc, " + iso.format("end_ts") + " AS end_utc, officer, team,"
        " required_s / 60.0 AS required_min, note FROM taskings")
    db.execute(
        "CREATE VIEW audit_log_iso AS SELECT id, " + iso_ms.format("ts")
        + " AS time_utc, username, role, action, subject, detail, address FROM audit_log")
    db["visits"].create(
        {"id": int, "officer": str, "device_ids": str, "hotspot": str, "hotspot_name": str,
         "enter_utc": str, "leave_utc": str, "enter": int, "leave": int, "dwell_s": int,
         "method": str, "open": int, "fence_set_id": int, "fence_version": str,
         "computed_at": int},
        pk="id", foreign_keys=[("fence_set_id", "fence_sets", "id")])
    db["visits"].create_index(["enter"])
    db["visits"].create_index(["officer", "enter"])
    db["visits"].create_index(["hotspot", "enter"])
    db.execute(
        "CREATE VIEW dwell_daily AS SELECT substr(enter_utc, 1, 10) AS date_utc, officer,"
        " hotspot, count(*) AS visits, sum(dwell_s) AS dwell_s,"
        " round(sum(dwell_s) / 60.0, 1) AS dwell_min FROM visits"
        " GROUP BY date_utc, officer, hotspot")


def _v_sources(db: sqlite_utils.Database) -> None:
    """More sources (issue 19): imported files, vehicles, encrypted phones.

    - a unique ``(device_id, tst)`` for imported fixes and vehicle AVL reports, which carry no
      sequence number: like OwnTracks positions, a fix delivered or imported again is
      recognised by its device and fix time, so a re-import stores nothing new;
    - ``device_keys``: a phone's OwnTracks ``encryptionKey`` (the app's shared secret, needed
      as it is to open its messages), per device;
    - ``crews``: who rode in a vehicle, from when to when; unlike ``assignments`` a vehicle's
      crew spans overlap (two officers at once, one leaving mid-shift);
    - ``app_messages``: a phone app's messages that are no position (docs/sources.md).
    """
    db.execute(
        "CREATE UNIQUE INDEX idx_positions_noseq_tst ON positions (device_id, tst)"
        " WHERE seq IS NULL AND source IN ('import', 'vehicle')"
    )
    db["device_keys"].create({"device_id": str, "secret": str, "set_at": int},
                             pk="device_id")
    db["crews"].create(
        {"id": int, "device_id": str, "collar": str, "start_ts": int, "end_ts": int,
         "recorded_at": int},
        pk="id",
    )
    db["crews"].create_index(["device_id", "start_ts"])
    db["crews"].create_index(["collar", "start_ts"])
    # OwnTracks app messages that are no position: card, waypoint(s), steps, the app's status,
    # commands. One row per distinct message (a retained one is re-sent at every reconnect).
    db["app_messages"].create(
        {"id": int, "device_id": str, "type": str, "origin": str, "tst": int, "payload": str,
         "sha256": str, "received_at": float},
        pk="id",
    )
    db["app_messages"].create_index(["device_id", "type", "sha256"], unique=True)


def _v_energy(db: sqlite_utils.Database) -> None:
    """A tracker's energy counters from its last status (issue 18): JSON text of
    ``tracker.meter``'s integers, replaced by each status that carries them."""
    db["devices"].add_column("energy", str)


def _v_fence_error(db: sqlite_utils.Database) -> None:
    """Why a device refused the last fence set offered to it (``fence_err`` in its status,
    NULL once a set is applied) and how many it refused since it started (``fence_rej``):
    ``hotspots status`` raises an alert, because the device still enforces its old set."""
    db["devices"].add_column("fence_error", str)
    db["devices"].add_column("fence_rejects", int)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_initial, _v_taskings, _v_airwave, _v_fleet_identity_filters, _v_dock, _v_fence_history,
    _v_radio_source, _v_crime, _v_intake, _v_web, _v_analyst, _v_sources, _v_energy,
    _v_fence_error,
]


def open_db(path: str) -> sqlite_utils.Database:
    """Open (creating if needed) the gateway database at ``path`` and migrate it.

    Uses WAL so that reports can read while the gateway writes.
    """
    db = sqlite_utils.Database(path)
    if path != ":memory:":
        _enable_wal(db)
    migrate(db)
    return db


def _enable_wal(db: sqlite_utils.Database, timeout_s: float = 10.0) -> None:
    """Switch the file to WAL (a persistent setting: this matters once per file).

    The switch needs the file to itself, and SQLite refuses it with "database is locked" at once
    instead of waiting, when another process opening the same new file holds it for a moment;
    so wait and retry (found by tests/test_schema_concurrent.py).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the migrations not yet applied; returns the schema version now in force.

    Safe when several processes open a new or old database at once (the gateway, the dock and
    a supervisor's ``hotspots status``, say): the migrations run in one ``BEGIN IMMEDIATE``
    transaction, which takes the write lock first, so the others wait for it (busy timeout) and
    then find the work done. All or nothing, too: a migration that fails leaves the previous
    version whole.
    """
    if db.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
        return len(MIGRATIONS)
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]  # another may have done it
        for step in MIGRATIONS[version:]:
            step(db)  # sqlite-utils joins the open transaction rather than committing
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        db.conn.commit()
    except BaseException:
        db.conn.rollback()
        raise
    return len(MIGRATIONS)
