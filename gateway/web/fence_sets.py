"""Hot spot sets as the fence editor keeps them: every saved version in ``fence_sets``, every
changed boundary in ``fence_edits``, and which set was in force when.

A set is *saved* (validated and compiled: the content-hash version and device size are stored
with it) and later *published* to the trackers through the broker. The set **in force** at a
moment is the last one published at or before it; a report of a day uses the set in force at the
end of that day (or now, for today), so editing a boundary tomorrow does not change yesterday's
report. Before anything was published, the first saved set is used.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import sqlite_utils

from fences.compile import compile_geojson
from fences.validate import FenceError, Problem, feature_id, validate


@dataclass
class Checked:
    """What the editor shows for a drawn set: problems per feature, compiled version and size."""

    problems: list[Problem]
    version: str | None
    device_bytes: int | None
    hotspots: int
    compile_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.version is not None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok, "version": self.version, "device_bytes": self.device_bytes,
            "hotspots": self.hotspots, "compile_error": self.compile_error,
            "problems": [{"level": p.level, "feature": p.feature, "id": p.fence_id,
                          "message": p.message, "text": str(p)} for p in self.problems],
        }


def check(doc: dict) -> Checked:
    """Validate and compile ``doc`` as the device would get it (nothing stored)."""
    report = validate(doc)
    if not report.ok:
        return Checked(report.problems, None, None, len(report.hotspots))
    try:
        compiled = compile_geojson(doc)
    except FenceError as exc:
        return Checked(report.problems, None, None, len(report.hotspots), str(exc))
    return Checked(report.problems, compiled.version, len(compiled.data), len(report.hotspots))


@dataclass
class FenceSetRow:
    """One saved set."""

    id: int
    version: str
    geojson: dict
    hotspots: int
    device_bytes: int
    created_at: int
    created_by: str
    published_at: int | None
    published_by: str | None


_COLUMNS = ("id, version, geojson, hotspots, device_bytes, created_at, created_by, published_at,"
            " published_by")


def _row(row: tuple | None) -> FenceSetRow | None:
    if row is None:
        return None
    values = list(row)
    values[2] = json.loads(values[2])
    return FenceSetRow(*values)


def get(db: sqlite_utils.Database, set_id: int) -> FenceSetRow | None:
    """The saved set ``set_id``."""
    return _row(db.execute(f"SELECT {_COLUMNS} FROM fence_sets WHERE id = ?",
                           (set_id,)).fetchone())


def latest(db: sqlite_utils.Database) -> FenceSetRow | None:
    """The newest saved set (what the editor opens), published or not."""
    return _row(db.execute(f"SELECT {_COLUMNS} FROM fence_sets ORDER BY id DESC LIMIT 1"
                           ).fetchone())


def in_force(db: sqlite_utils.Database, at: float) -> FenceSetRow | None:
    """The set in force at ``at`` (see the module docstring)."""
    row = db.execute(f"SELECT {_COLUMNS} FROM fence_sets WHERE published_at <= ?"
                     " ORDER BY published_at DESC, id DESC LIMIT 1", (at,)).fetchone()
    if row is None:
        row = db.execute(f"SELECT {_COLUMNS} FROM fence_sets ORDER BY id LIMIT 1").fetchone()
    return _row(row)


def history(db: sqlite_utils.Database, limit: int = 50) -> list[dict]:
    """Saved sets, newest first, without their GeoJSON."""
    cursor = db.execute(
        "SELECT id, version, hotspots, device_bytes, created_at, created_by, published_at,"
        " published_by FROM fence_sets ORDER BY id DESC LIMIT ?", (limit,))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def edits(db: sqlite_utils.Database, limit: int = 200) -> list[dict]:
    """Boundary changes, newest first: who changed which hot spot when, in which saved set."""
    cursor = db.execute(
        "SELECT e.id, strftime('%Y-%m-%dT%H:%M:%SZ', e.ts, 'unixepoch') AS time, e.username,"
        " e.hotspot, e.change, e.fence_set_id, s.version FROM fence_edits e"
        " JOIN fence_sets s ON s.id = e.fence_set_id ORDER BY e.id DESC LIMIT ?", (limit,))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _by_id(doc: dict | None) -> dict[str, dict]:
    """Features by hot spot id, read as the validator reads it (``properties.id``, then the
    feature's own ``id`` as geojson.io writes it, then QGIS's ``fid``): the audit trail names
    the hot spots the devices get."""
    out = {}
    for feat in (doc or {}).get("features", []):
        if not isinstance(feat, dict):
            continue
        fid, _ = feature_id(feat)
        if fid is not None:
            out[fid] = feat
    return out


def diff(before: dict | None, after: dict) -> list[tuple[str, str, dict | None, dict | None]]:
    """``(hotspot, change, before, after)`` for every added, removed or changed feature."""
    old, new = _by_id(before), _by_id(after)
    out = []
    for hid in sorted(set(old) | set(new)):
        a, b = old.get(hid), new.get(hid)
        if a is None:
            out.append((hid, "added", None, b))
        elif b is None:
            out.append((hid, "removed", a, None))
        elif a.get("geometry") != b.get("geometry"):
            out.append((hid, "boundary", a, b))
        elif (a.get("properties") or {}) != (b.get("properties") or {}):
            out.append((hid, "properties", a, b))
    return out


def save(db: sqlite_utils.Database, doc: dict, username: str,
         now: float | None = None) -> tuple[FenceSetRow, list[tuple]]:
    """Validate, compile and store ``doc`` as a new set, with a ``fence_edits`` row per change.

    Saving the same content as the newest set stores nothing new and returns that set.

    :raises FenceError: when the set does not validate or compile (``problems`` attached).
    """
    report = validate(doc)
    report.raise_for_errors()
    compiled = compile_geojson(doc)
    now = int(time.time() if now is None else now)
    previous = latest(db)
    changes = diff(previous.geojson if previous else None, doc)
    if previous is not None and previous.version == compiled.version and not changes:
        return previous, []
    with db.conn:
        cur = db.conn.execute(
            "INSERT INTO fence_sets (version, geojson, hotspots, device_bytes, created_at,"
            " created_by) VALUES (?, ?, ?, ?, ?, ?)",
            (compiled.version, json.dumps(doc), len(report.hotspots), len(compiled.data), now,
             username))
        set_id = cur.lastrowid
        db.conn.executemany(
            "INSERT INTO fence_edits (ts, username, fence_set_id, hotspot, change, before,"
            " after) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(now, username, set_id, hid, change,
              json.dumps(a["geometry"]) if a else None, json.dumps(b["geometry"]) if b else None)
             for hid, change, a, b in changes])
    return get(db, set_id), changes


def mark_published(db: sqlite_utils.Database, set_id: int, username: str,
                   now: float | None = None) -> None:
    """Record that set ``set_id`` is on the broker from ``now``."""
    now = int(time.time() if now is None else now)
    with db.conn:
        db.conn.execute("UPDATE fence_sets SET published_at = ?, published_by = ? WHERE id = ?",
                        (now, username, set_id))


def seed(db: sqlite_utils.Database, path: str, now: float | None = None) -> FenceSetRow | None:
    """Store the file at ``path`` as the first set (in force from the beginning) when the
    database has none yet; does nothing otherwise."""
    if latest(db) is not None:
        return None
    doc = json.loads(open(path, encoding="utf-8").read())
    row, _ = save(db, doc, "(file)", now)
    mark_published(db, row.id, "(file)", 0)
    return get(db, row.id)
