"""The audit log: who viewed or exported whose positions, who changed which boundary, who
logged in (or failed to). Officers' locations are personal data, so every look at them leaves
a row that a supervisor (or a data protection officer with the database) can read.

``action`` is one of :data:`ACTIONS`; ``subject`` says whose data or which thing (``officers:
4521,4522``, ``day:2026-03-02``, ``hotspot:HS-01``); ``detail`` the rest (export format, row
count, fence version).
"""

from __future__ import annotations

import time

import sqlite_utils

ACTIONS = ("login", "login_failed", "logout", "view_live", "view_fleet", "view_day", "export",
           "fences_save", "fences_publish", "view_audit", "view_hotspot", "taskings_import")


def record(db: sqlite_utils.Database, username: str | None, role: str | None, action: str,
           subject: str = "", detail: str = "", address: str = "") -> None:
    """Append one row (committed at once: an audit row must not wait for anything else)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    with db.conn:
        db.conn.execute(
            "INSERT INTO audit_log (ts, username, role, action, subject, detail, address)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), username, role, action, subject, detail, address))


def recent(db: sqlite_utils.Database, limit: int = 500, username: str | None = None
           ) -> list[dict]:
    """The newest rows first, with ISO 8601 UTC times."""
    where, args = ("WHERE username = ?", [username]) if username else ("", [])
    cursor = db.execute(
        "SELECT id, strftime('%Y-%m-%dT%H:%M:%SZ', ts, 'unixepoch') AS time, username, role,"
        f" action, subject, detail, address FROM audit_log {where} ORDER BY id DESC LIMIT ?",
        [*args, limit])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def recent_failures(db: sqlite_utils.Database, username: str, within_s: float) -> int:
    """Failed logins for ``username`` in the last ``within_s`` seconds since its last login."""
    since = time.time() - within_s
    last_ok = db.execute("SELECT max(ts) FROM audit_log WHERE username = ? AND action = 'login'",
                         (username,)).fetchone()[0] or 0
    return db.execute("SELECT count(*) FROM audit_log WHERE username = ? AND action ="
                      " 'login_failed' AND ts >= ?", (username, max(since, last_ok))).fetchone()[0]


def officers_subject(officers: set[str] | list[str], limit: int = 50) -> str:
    """``officers:a,b,c`` (sorted, cut at ``limit`` with a count) for a subject column."""
    names = sorted({o for o in officers if o})
    text = ",".join(names[:limit])
    if len(names) > limit:
        text += f",+{len(names) - limit} more"
    return f"officers:{text}"
