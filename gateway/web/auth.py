"""Accounts, passwords, sessions and CSRF tokens of the station web app.

Passwords are hashed with scrypt (:func:`hashlib.scrypt`, memory-hard, in the standard library,
so nothing to compile on a Pi). A session is a random token in an ``HttpOnly``, ``SameSite=Strict``
cookie; the database keeps only its SHA-256, so a copy of the database opens no session. Each
session has its own CSRF token, which every form and every state-changing request must carry.

Roles (what each may do is in the route table of :mod:`gateway.web.app`):

``supervisor``
    live map, fleet, any day's reports and exports, fence editor and publishing, audit log;
``staff``
    station staff: the fleet (docking, charging, not returned), no officers' positions;
``analyst``
    any day's reports and exports, the fence editor (saving, not publishing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import sqlite_utils

ROLES = ("supervisor", "staff", "analyst")
SESSION_COOKIE = "hotspots_session"
#: A session ends after this long without a request, and in any case after ``SESSION_MAX_S``.
SESSION_IDLE_S = 8 * 3600
SESSION_MAX_S = 24 * 3600
MIN_PASSWORD_LEN = 10
# scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB and ~50 ms per login on a Pi 4.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AuthError(ValueError):
    """A user cannot be created or changed as asked (the message says why)."""


@dataclass(frozen=True)
class User:
    """A logged-in person."""

    username: str
    role: str


@dataclass(frozen=True)
class Session:
    """A live session: who, and the CSRF token their forms carry."""

    user: User
    csrf: str
    expires_at: int


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) for ``password``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (constant-time compare)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), maxmem=64 * 1024 * 1024, dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


# A fixed hash to verify against when the user does not exist, so that a wrong name takes as
# long as a wrong password (no account enumeration by timing).
_DUMMY_HASH = hash_password("not a password", b"\0" * 16)


def add_user(db: sqlite_utils.Database, username: str, role: str, password: str) -> User:
    """Create an account. :raises AuthError: bad name, role or password, or name taken."""
    if not _NAME.match(username):
        raise AuthError(f"bad user name {username!r}: 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    check_password_strength(password)
    if db["web_users"].count_where("username = ?", [username]):
        raise AuthError(f"user {username!r} exists already")
    with db.conn:
        db["web_users"].insert({"username": username, "role": role,
                                "password_hash": hash_password(password),
                                "created_at": int(time.time()), "disabled": 0})
    return User(username, role)


def check_password_strength(password: str) -> None:
    """:raises AuthError: for a password shorter than :data:`MIN_PASSWORD_LEN`."""
    if len(password) < MIN_PASSWORD_LEN:
        raise AuthError(f"password too short: at least {MIN_PASSWORD_LEN} characters")


def set_password(db: sqlite_utils.Database, username: str, password: str) -> None:
    """Change a password and end the user's sessions."""
    check_password_strength(password)
    with db.conn:
        cur = db.conn.execute("UPDATE web_users SET password_hash = ? WHERE username = ?",
                              (hash_password(password), username))
        if cur.rowcount != 1:
            raise AuthError(f"no user {username!r}")
        db.conn.execute("DELETE FROM web_sessions WHERE username = ?", (username,))


def set_disabled(db: sqlite_utils.Database, username: str, disabled: bool) -> None:
    """Disable (or enable) an account; disabling ends its sessions at once."""
    with db.conn:
        cur = db.conn.execute("UPDATE web_users SET disabled = ? WHERE username = ?",
                              (int(disabled), username))
        if cur.rowcount != 1:
            raise AuthError(f"no user {username!r}")
        if disabled:
            db.conn.execute("DELETE FROM web_sessions WHERE username = ?", (username,))


def list_users(db: sqlite_utils.Database) -> list[dict]:
    """Every account without its hash."""
    return [dict(zip(("username", "role", "created_at", "disabled"), row, strict=True))
            for row in db.execute("SELECT username, role, created_at, disabled FROM web_users"
                                  " ORDER BY username")]


def authenticate(db: sqlite_utils.Database, username: str, password: str) -> User | None:
    """The user if the name and password match an enabled account, else None."""
    row = db.execute("SELECT role, password_hash, disabled FROM web_users WHERE username = ?",
                     (username,)).fetchone()
    if row is None:
        verify_password(password, _DUMMY_HASH)
        return None
    role, stored, disabled = row
    if not verify_password(password, stored) or disabled:
        return None
    return User(username, role)


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: sqlite_utils.Database, user: User, now: float | None = None) -> str:
    """A new session for ``user``; returns the token for the cookie."""
    now = int(time.time() if now is None else now)
    token = secrets.token_urlsafe(32)
    with db.conn:
        db.conn.execute("DELETE FROM web_sessions WHERE expires_at < ?", (now,))
        db.conn.execute(
            "INSERT INTO web_sessions (token_sha256, username, csrf, created_at, last_seen,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (_sha(token), user.username, secrets.token_urlsafe(32), now, now,
             now + SESSION_MAX_S))
    return token


def find_session(db: sqlite_utils.Database, token: str | None,
                 now: float | None = None) -> Session | None:
    """The live session for a cookie token, or None (unknown, expired, idle, user disabled)."""
    if not token:
        return None
    now = int(time.time() if now is None else now)
    row = db.execute(
        "SELECT s.username, u.role, s.csrf, s.last_seen, s.expires_at, u.disabled"
        " FROM web_sessions s JOIN web_users u ON u.username = s.username"
        " WHERE s.token_sha256 = ?", (_sha(token),)).fetchone()
    if row is None:
        return None
    username, role, csrf, last_seen, expires_at, disabled = row
    if disabled or now >= expires_at or now - last_seen > SESSION_IDLE_S:
        return None
    if now - last_seen > 60:  # write at most once a minute per session
        with db.conn:
            db.conn.execute("UPDATE web_sessions SET last_seen = ? WHERE token_sha256 = ?",
                            (now, _sha(token)))
    return Session(User(username, role), csrf, expires_at)


def end_session(db: sqlite_utils.Database, token: str | None) -> None:
    """Log out: forget the session."""
    if token:
        with db.conn:
            db.conn.execute("DELETE FROM web_sessions WHERE token_sha256 = ?", (_sha(token),))


def csrf_matches(session: Session, sent: str | None) -> bool:
    """True when a request carries its session's CSRF token."""
    return bool(sent) and hmac.compare_digest(session.csrf, sent)
