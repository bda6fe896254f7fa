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
"""

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


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1_initial]


def open_db(path: str) -> sqlite_utils.Database:
    """Open (creating if needed) the gateway database at ``path`` and migrate it.

    Uses WAL so that reports can read while the gateway writes.
    """
    db = sqlite_utils.Database(path)
    if path != ":memory:":
        db.enable_wal()
    migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the migrations not yet applied; returns the schema version now in force."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with db.conn:
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
    return len(MIGRATIONS)
