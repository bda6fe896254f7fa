"""Attribution has one owner: the SQL rule, the view, the spans and the fleet status agree."""

from __future__ import annotations

import pytest

from gateway.fleet import attribution
from gateway.fleet.attribution import FOREVER, Span
from gateway.fleet.identity import assign, register_device, return_device

T0 = 1_795_000_000


@pytest.fixture
def fleet(db):
    """Two devices with hand-overs, a gap, a late paper entry and an open assignment."""
    register_device(db, "T-1")
    register_device(db, "T-2")
    assign(db, "T-1", "C1", at=T0)
    assign(db, "T-1", "C2", at=T0 + 100)  # hand-over ends C1's stretch
    return_device(db, "T-1", at=T0 + 200)
    assign(db, "T-1", "C3", at=T0 + 300)  # after a gap; still out
    assign(db, "T-1", "C4", at=T0 + 150, until=T0 + 180)  # typed in late, inside C2's stretch
    assign(db, "T-2", "C1", at=T0 + 50, until=T0 + 250)
    times = [T0 - 1, T0, T0 + 99, T0 + 100, T0 + 150, T0 + 179, T0 + 180, T0 + 199, T0 + 200,
             T0 + 299, T0 + 300, T0 + 10**6]
    db.execute("CREATE TEMP TABLE probe (device_id TEXT, tst INTEGER)")
    db.conn.executemany("INSERT INTO probe VALUES (?, ?)",
                        [(d, t) for d in ("T-1", "T-2") for t in times])
    return db


def test_sql_rule_spans_and_running_give_the_same_officer_everywhere(fleet):
    db = fleet
    spans = attribution.spans(db)
    rows = db.execute("SELECT device_id, tst, " + attribution.officer_at_sql("probe")
                      + " FROM probe ORDER BY device_id, tst").fetchall()
    expected = {
        # C4's late entry ends C2's stretch at its start (identity.assign's rule).
        "T-1": [None, "C1", "C1", "C2", "C4", "C4", None, None, None, None, "C3", "C3"],
        "T-2": [None, None, "C1", "C1", "C1", "C1", "C1", "C1", "C1", None, None, None],
    }
    assert {d: [o for dd, _, o in rows if dd == d] for d in ("T-1", "T-2")} == expected
    for device_id, tst, officer in rows:
        assert attribution.officer_at(spans.get(device_id, []), tst) == officer
        running = attribution.running(db, tst).get(device_id)
        assert (running.collar if running else None) == officer
        current = attribution.current(db, device_id, tst)
        assert (current.collar if current else None) == officer


def test_the_positions_attributed_view_follows_the_same_rule(fleet):
    db = fleet
    for device_id, tst in db.execute("SELECT device_id, tst FROM probe").fetchall():
        db.execute("INSERT INTO positions (device_id, seq, source, tst, lat, lon)"
                   " VALUES (?, ?, 'tracker', ?, 51.5, 0)", (device_id, tst, tst))
    view = db.execute("SELECT device_id, tst, officer FROM positions_attributed"
                      " ORDER BY device_id, tst").fetchall()
    rule = db.execute("SELECT device_id, tst, " + attribution.officer_at_sql("p")
                      + " FROM positions p ORDER BY device_id, tst").fetchall()
    assert view == rule


@pytest.mark.parametrize("spans, enter, leave, pieces", [
    ([], 10, 20, [(None, 10, 20)]),
    ([Span(0, 15, "A")], 10, 20, [("A", 10, 15), (None, 15, 20)]),
    ([Span(12, 14, "A"), Span(16, FOREVER, "B")], 10, 20,
     [(None, 10, 12), ("A", 12, 14), (None, 14, 16), ("B", 16, 20)]),
    ([Span(0, 5, "A")], 10, 20, [(None, 10, 20)]),
    ([Span(0, 50, "A")], 10, 10, [("A", 10, 10)]),
    ([], 10, 10, [(None, 10, 10)]),
])
def test_split_cuts_a_stay_at_assignment_boundaries(spans, enter, leave, pieces):
    assert attribution.split(spans, enter, leave) == pieces


def test_shifts_merge_overlapping_kit_of_one_officer():
    per_device = {"T-1": [Span(0, 100, "C1"), Span(300, 400, "C1")],
                  "issi:5": [Span(50, 150, "C1")], "T-2": [Span(0, 10, "C2")]}
    shifts = attribution.shifts(per_device)
    assert shifts == {"C1": [(0, 150), (300, 400)], "C2": [(0, 10)]}
    assert [attribution.shift_of(shifts["C1"], t) for t in (0, 149, 300, 399)] == [0, 0, 1, 1]
