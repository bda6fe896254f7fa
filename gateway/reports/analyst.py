"""Visits for analysts, in the database: ``hotspots report materialise`` computes the visits of
a window (:mod:`gateway.reports.visits`, the same rules as every report) and stores them in the
``visits`` table, replacing what was stored for that window, so sqlite-utils, Datasette or a
spreadsheet can read who was in which hot spot without running Python. The ``dwell_daily`` view
sums them per UTC day, officer and hot spot.

Each row names the hot spot set it was computed with (``fence_set_id``, ``fence_version``), so
a later boundary change is visible beside the figures it did not change.
"""

from __future__ import annotations

import time

import sqlite_utils

from gateway.reports.exports import format_datetime
from gateway.reports.visits import DEFAULT_RULES, HotSpotSet, VisitRules, clip_visits
from gateway.reports.visits import compute_visits as _compute


def materialise_visits(db: sqlite_utils.Database, hotspots: HotSpotSet | None,
                       window: tuple[int, int], rules: VisitRules = DEFAULT_RULES,
                       fence_set: tuple[int | None, str | None] = (None, None),
                       now: float | None = None) -> int:
    """Replace the stored visits that start inside ``window`` by freshly computed ones (clipped
    to the window); returns how many were stored."""
    visits = clip_visits(_compute(db, hotspots, window, rules), window)
    now = int(time.time() if now is None else now)
    rows = [(v.officer, v.device_id, v.hotspot, v.name, format_datetime(v.enter),
             format_datetime(v.leave), v.enter, v.leave, v.dwell_s, v.method, int(v.open),
             fence_set[0], fence_set[1], now) for v in visits]
    with db.conn:
        db.conn.execute('DELETE FROM visits WHERE "enter" >= ? AND "enter" < ?', window)
        db.conn.executemany(
            'INSERT INTO visits (officer, device_ids, hotspot, hotspot_name, enter_utc,'
            ' leave_utc, "enter", "leave", dwell_s, method, open, fence_set_id, fence_version,'
            " computed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    return len(rows)


def datasette_metadata(db_path: str) -> dict:
    """Datasette metadata (``gateway/reports/datasette.json``) for the database at
    ``db_path``: Datasette names a database after its file's stem."""
    import json
    from pathlib import Path

    text = (Path(__file__).with_name("datasette.json")).read_text(encoding="utf-8")
    doc = json.loads(text)
    doc["databases"] = {Path(db_path).stem: doc["databases"]["DBNAME"]}
    return doc
