"""The fleet registry and the assignment history's writes: register, assign, return; and the
grammar of names (device ids, ISSIs, collar numbers) that every entry checks.

Pooled trackers change hands every shift, so a position belongs to a collar number only through
the history written here: one row per (device, collar, from, to). Reading it — which collar
number carried a device at a time — is :mod:`gateway.fleet.attribution`'s, and every report,
export and status asks that module, so an assignment recorded after the fact — the paper log
typed in at the end of the shift — re-attributes every position it covers without rewriting a
single position row.

The history of one device never overlaps: assigning a device at time ``t`` ends whatever
assignment was running at ``t``, and the new one never runs past the start of the next recorded
one (:func:`assign` says where else it ends).
"""

from __future__ import annotations

import datetime as dt
import re
import time

import sqlite_utils

from gateway.fleet.attribution import Assignment, current

#: An Airwave radio is kept as device ``issi:<ISSI>`` with source ``airwave``
#: (``gateway.intake.airwave.store``).
RADIO_PREFIX = "issi:"
RADIO_SOURCE = "airwave"

# The grammar of names (docs/gateway.md, "Names"). ASCII only, so nothing that looks like
# something else (a right-to-left override, a homoglyph) and nothing that is special in an MQTT
# topic (``/``, ``+``, ``#``), a path (``..``, ``/``), a CSV cell or a terminal (control
# characters). ``\Z`` rather than ``$``: ``$`` also matches before a final newline.
#: A device id: the broker account of a tracker or phone (the same grammar as
#: ``gateway.broker.ACCOUNT_NAME``), or ``issi:<ISSI>`` for a radio.
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
#: A collar number.
COLLAR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")
#: An ISSI: TETRA's 24-bit individual subscriber identity, in decimal.
ISSI_TEXT = re.compile(r"[0-9]{1,8}\Z")
ISSI_MAX = 0xFFFFFF
NAME_KINDS = ("device", "collar", "issi")

class IdentityError(ValueError):
    """An assignment or return that cannot be recorded; the message says why."""


def check_name(value: object, kind: str = "device") -> str:
    """``value`` if it is a valid ``kind`` (``device``, ``collar`` or ``issi``) name.

    The one gate for names at every entry: CLI commands, MQTT topics, dock answers, radio
    reports. Grammar: a device id is 1-64 of ``A-Z a-z 0-9 _ . -`` starting with a letter or
    digit, or ``issi:`` and an ISSI; a collar number the same in 1-32; an ISSI a decimal number
    1-16777215 (24 bits), no leading zeros.

    :raises IdentityError: naming the kind, a printable form of the value and the grammar
    """
    if kind not in NAME_KINDS:
        raise ValueError(f"unknown kind of name {kind!r}")
    if isinstance(value, int) and not isinstance(value, bool) and kind == "issi":
        value = str(value)
    if isinstance(value, str) and len(value) <= 80:
        if kind == "device":
            if value.startswith(RADIO_PREFIX) and _is_issi(value[len(RADIO_PREFIX):]):
                return value
            if DEVICE_ID.match(value) and not value.startswith(RADIO_PREFIX):
                return value
        elif kind == "collar" and COLLAR.match(value):
            return value
        elif kind == "issi" and _is_issi(value):
            return value
    shown = ascii(value)[:60] + ("..." if len(ascii(value)) > 60 else "")
    rules = {
        "device": "1-64 letters, digits, '_', '.', '-', starting with a letter or digit"
                  f" (or {RADIO_PREFIX}<ISSI> for a radio)",
        "collar": "1-32 letters, digits, '_', '.', '-', starting with a letter or digit",
        "issi": f"a whole number from 1 to {ISSI_MAX}",
    }
    label = {"device": "device id", "collar": "collar number", "issi": "ISSI"}[kind]
    raise IdentityError(f"{label} {shown}: {rules[kind]}")


def is_name(value: object, kind: str = "device") -> bool:
    """Whether :func:`check_name` accepts ``value`` (for counting rather than raising)."""
    try:
        check_name(value, kind)
    except IdentityError:
        return False
    return True


def _is_issi(text: str) -> bool:
    return (bool(ISSI_TEXT.match(text)) and not text.startswith("0")
            and 1 <= int(text) <= ISSI_MAX)


def parse_time(text: str, now: float | None = None) -> int:
    """UTC epoch seconds from ``1795000000``, ISO 8601 (naive means UTC) or ``HH:MM`` today (UTC).

    :raises IdentityError: with the accepted forms
    """
    text = text.strip()
    if re.fullmatch(r"\d{9,11}", text):
        return int(text)
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text):
        today = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).date()
        parts = [int(p) for p in text.split(":")]
        clock = dt.time(*parts, tzinfo=dt.UTC)
        return int(dt.datetime.combine(today, clock).timestamp())
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise IdentityError(f"cannot read time {text!r}: use epoch seconds, ISO 8601"
                            " (2026-11-24T09:00:00Z) or HH:MM (today, UTC)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp())


def register_device(db: sqlite_utils.Database, device_id: str, source: str | None = None,
                    at: float | None = None) -> bool:
    """Make ``device_id`` known to the gateway; returns False if it already was.

    ``source`` says what it is: ``tracker`` (a pooled tracker) by default, ``airwave`` for a
    radio's ``issi:<ISSI>``, or ``owntracks`` for a phone. Only trackers are counted by the dock.

    Messages it sent before it was registered stay in quarantine (reason ``unknown_device``);
    :class:`gateway.intake.intake.Intake` does not replay them by itself.
    """
    check_name(device_id)
    if source is None:
        source = RADIO_SOURCE if device_id.startswith(RADIO_PREFIX) else "tracker"
    at = int(time.time() if at is None else at)
    with db.conn:
        row = db.execute("SELECT registered_at FROM devices WHERE device_id = ?",
                         (device_id,)).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO devices (device_id, source, duplicates, max_seq, filtered,"
                " registered_at) VALUES (?, ?, 0, 0, 0, ?)", (device_id, source, at))
            return True
        if row[0] is None:
            db.execute("UPDATE devices SET registered_at = ? WHERE device_id = ?",
                       (at, device_id))
            return True
    return False


def assign(db: sqlite_utils.Database, device_id: str, collar: str, at: float | None = None,
           due: float | None = None, register: bool = True, until: float | None = None
           ) -> Assignment:
    """Record that officer ``collar`` has carried ``device_id`` since ``at`` (now by default).

    Whatever assignment of the device was running at ``at`` ends there. The new one ends at
    ``until`` when given (a paper log with both times), and otherwise where the stretch it was
    recorded in ended (the device came back then); it stays open if neither is known. It never
    runs past the start of the device's next recorded assignment. ``due`` is when the device
    should be back (end of the shift), for the "not returned" alert. Registers the device if
    needed (a radio's ``issi:<ISSI>`` as a radio), once everything asked is known to be valid:
    handing a tracker to an officer makes it part of the fleet.
    """
    check_name(device_id)
    check_name(collar, "collar")
    now = int(time.time())
    start = int(now if at is None else at)
    if due is not None and due <= start:
        raise IdentityError("the due time must be after the start of the assignment")
    if until is not None and until <= start:
        raise IdentityError("the end must be after the start of the assignment")
    if register:
        register_device(db, device_id, at=now)
    elif db.execute("SELECT registered_at FROM devices WHERE device_id = ?",
                    (device_id,)).fetchone() in (None, (None,)):
        raise IdentityError(f"device {device_id!r} is not registered")
    with db.conn:
        if db.execute("SELECT 1 FROM assignments WHERE device_id = ? AND start_ts = ?",
                      (device_id, start)).fetchone():
            raise IdentityError(f"{device_id} already has an assignment starting at {start}")
        running = current(db, device_id, start)
        if running is not None:
            db.execute("UPDATE assignments SET end_ts = ? WHERE id = ?", (start, running.id))
        following = db.execute(
            "SELECT min(start_ts) FROM assignments WHERE device_id = ? AND start_ts > ?",
            (device_id, start)).fetchone()[0]
        if until is not None:
            end = int(until)
        elif running is not None:
            # Recorded inside a stretch: the new holder had it until that stretch ended.
            end = running.end_ts
        else:
            end = None
        if following is not None and (end is None or following < end):
            end = following
        cursor = db.execute(
            "INSERT INTO assignments (device_id, collar, start_ts, end_ts, due_ts, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (device_id, collar, start, end, None if due is None else int(due), now))
    return Assignment(cursor.lastrowid, device_id, collar, start, end,
                      None if due is None else int(due))


def return_device(db: sqlite_utils.Database, device_id: str, at: float | None = None
                  ) -> Assignment:
    """Record that ``device_id`` came back at ``at`` (now by default); returns the closed
    assignment.

    :raises IdentityError: if nobody had the device at that time
    """
    check_name(device_id)
    end = int(time.time() if at is None else at)
    with db.conn:
        running = current(db, device_id, end - 1)
        if running is None or running.start_ts >= end:
            raise IdentityError(f"{device_id} was not assigned to anyone at {end}")
        db.execute("UPDATE assignments SET end_ts = ? WHERE id = ?", (end, running.id))
    return Assignment(running.id, device_id, running.collar, running.start_ts, end,
                      running.due_ts)
