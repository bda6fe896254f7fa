"""After the patrol: phones that go on reporting when their officer's patrol is over.

Officers forget to switch the app off; a force phone then goes on sending its officer's
whereabouts home and back. Two things follow (issue 19):

- those positions are no patrol data: :meth:`gateway.intake.intake.Intake.set_apart_off_duty`
  (``hotspots purge``) flags phone and radio positions no assignment covers as ``off_duty``,
  which every report and export leaves out, and deletes them after a set number of days;
- ``hotspots status`` raises **STILL REPORTING** for a phone whose newest fix is more than
  ``after_min`` minutes past the end of its patrol: the end of its last assignment, or, while
  the assignment is still open, the end of its officer's last tasking window that has ended
  today (the patrol the officer was sent on is over, the app is not).
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlite_utils

from gateway.fleet import attribution

PHONE_SOURCE = "owntracks"


def patrol_end(db: sqlite_utils.Database, device_id: str, now: int) -> tuple[int, str] | None:
    """When the device's patrol ended, before ``now``, and whose it was; None if it has not.

    The latest assignment of the device that started before ``now``: its end if it has one
    before ``now``; if it is still open, the end of the latest tasking window of its officer
    (or the officer's team) that ended after the assignment started and before ``now``.
    """
    history = [a for a in attribution.history(db, device_id) if a.start_ts <= now]
    if not history:
        return None
    last = history[-1]
    if last.end_ts is not None and last.end_ts <= now:
        return last.end_ts, last.collar
    # Still on duty by the assignment: the taskings may say the patrol is over.
    row = db.execute(
        "SELECT max(t.end_ts) FROM taskings t WHERE t.end_ts > ? AND t.end_ts <= ?"
        " AND (t.officer = ? OR t.team IN (SELECT team FROM team_members WHERE collar = ?))",
        (last.start_ts, now, last.collar, last.collar)).fetchone()
    if row and row[0] is not None:
        later = db.execute(
            "SELECT 1 FROM taskings t WHERE t.start_ts <= ? AND t.end_ts > ?"
            " AND (t.officer = ? OR t.team IN (SELECT team FROM team_members WHERE collar = ?))",
            (now, now, last.collar, last.collar)).fetchone()
        if later is None:  # no tasking running now: the last one ended the patrol
            return row[0], last.collar
    return None


def still_reporting(db: sqlite_utils.Database, now: int, after_min: float
                    ) -> Iterator[str]:
    """Alert lines for phones reporting ``after_min`` minutes or more after their patrol."""
    for device_id, last_fix in db.execute(
            "SELECT device_id, last_fix_tst FROM devices WHERE source = ?"
            " AND last_fix_tst IS NOT NULL ORDER BY device_id", (PHONE_SOURCE,)).fetchall():
        ended = patrol_end(db, device_id, now)
        if ended is None:
            continue
        end, collar = ended
        late = last_fix - end
        if late >= after_min * 60:
            yield (f"STILL REPORTING {device_id} (officer {collar}): fixes {_duration(late)}"
                   f" after the patrol ended; its positions since are set apart, not patrol"
                   f" data (hotspots purge)")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"
