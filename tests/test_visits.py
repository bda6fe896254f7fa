"""Visits: exact from transitions, computed from positions with hysteresis, interpolation,
gap handling and accuracy gating; merged per officer; clipped to the report window.

The hot spot is a 100 m square centred on the Greenwich meridian (so half of it has negative
longitudes); positions are placed in metres from its centre.
"""

from __future__ import annotations

import pytest

from fences.geo import LocalFrame
from gateway.reports.dwell import daily_stats, day_window, visits_from_transitions
from gateway.reports.visits import (
    HotSpotSet,
    VisitRules,
    clip_visits,
    compute_visits,
    union_seconds,
)

CENTRE = LocalFrame(51_480_450, 0)
T0 = 1_772_438_400  # 2026-03-02T08:00:00Z


def square(hid: str, cx: float, cy: float, half: float = 50.0) -> dict:
    ring = [CENTRE.to_lonlat(cx + dx, cy + dy)
            for dx, dy in ((-half, -half), (half, -half), (half, half), (-half, half))]
    ring.append(ring[0])
    return {"type": "Feature", "properties": {"id": hid, "name": f"Square {hid}",
                                               "density": "high"},
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}}


HOTSPOTS = {"type": "FeatureCollection",
            "features": [square("A", 0, 0), square("B", 600, 0)]}


@pytest.fixture
def hotspots() -> HotSpotSet:
    return HotSpotSet.load(HOTSPOTS)


class Fixes:
    """Inserts positions and transitions with per-device sequence numbers."""

    def __init__(self, db):
        self.db = db
        self.seq: dict[str, int] = {}

    def _next(self, device: str) -> int:
        self.seq[device] = self.seq.get(device, 0) + 1
        return self.seq[device]

    def fix(self, device: str, t: int, x: float, y: float = 0.0, acc: float | None = 5.0,
            source: str = "tracker", filtered: str | None = None) -> None:
        lon, lat = CENTRE.to_lonlat(x, y)
        self.db.execute(
            "INSERT INTO positions (device_id, seq, source, tst, lat, lon, acc_m, filtered)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (device, self._next(device), source, t, round(lat, 7), round(lon, 7), acc, filtered))

    def walk(self, device: str, t0: int, x0: float, x1: float, speed: float, period: int,
             **kw) -> None:
        t, x = t0, x0
        step = speed * period * (1 if x1 >= x0 else -1)
        while (x <= x1) if step > 0 else (x >= x1):
            self.fix(device, t, x, **kw)
            t += period
            x += step

    def event(self, device: str, t: int, event: str, rid: str = "A") -> None:
        self.db.execute("INSERT INTO transitions (device_id, seq, event, rid, desc, tst)"
                        " VALUES (?,?,?,?,?,?)",
                        (device, self._next(device), event, rid, f"Square {rid}", t))

    def assign(self, device: str, collar: str, start: int, end: int | None = None) -> None:
        self.db.execute("INSERT INTO assignments (device_id, collar, start_ts, end_ts)"
                        " VALUES (?,?,?,?)", (device, collar, start, end))


@pytest.fixture
def fixes(db) -> Fixes:
    return Fixes(db)


def spans(visits) -> list[tuple]:
    return [(v.who, v.hotspot, v.enter - T0, v.leave - T0) for v in visits]


# -- positions ------------------------------------------------------------------------------------
def test_crossings_are_interpolated_between_fixes(db, fixes, hotspots):
    # 1 m/s east from 103 m west of the centre, a fix every 10 s: the edges at -50 m and +50 m
    # are crossed at 53 s and 153 s, between fixes.
    fixes.walk("T-1", T0, -103, 200, 1.0, 10)
    visits = compute_visits(db, hotspots)
    assert spans(visits) == [("device:T-1", "A", 53, 153)]
    assert visits[0].method == "positions" and visits[0].name == "Square A"


def test_hysteresis_keeps_one_visit_through_jitter_at_the_edge(db, fixes, hotspots):
    fixes.fix("T-1", T0, -250)
    for t in range(10, 101, 10):
        fixes.fix("T-1", T0 + t, 0)
    for t in range(110, 201, 10):
        fixes.fix("T-1", T0 + t, 55)  # 5 m outside: within the 10 m hysteresis band
    for t in range(210, 301, 10):
        fixes.fix("T-1", T0 + t, 0)
    fixes.fix("T-1", T0 + 310, 300)
    one = compute_visits(db, hotspots, rules=VisitRules(hysteresis_m=10, merge_gap_s=0))
    assert spans(one) == [("device:T-1", "A", 8, 302)]
    two = compute_visits(db, hotspots, rules=VisitRules(hysteresis_m=0, merge_gap_s=0))
    assert spans(two) == [("device:T-1", "A", 8, 109), ("device:T-1", "A", 201, 302)]


def test_time_in_the_band_after_the_last_inside_fix_is_not_credited(db, fixes, hotspots):
    fixes.fix("T-1", T0, -250)
    for t in range(10, 101, 10):
        fixes.fix("T-1", T0 + t, 0)
    for t in range(110, 601, 10):
        fixes.fix("T-1", T0 + t, 55)  # lingers just outside, then leaves
    fixes.fix("T-1", T0 + 610, 300)
    assert spans(compute_visits(db, hotspots)) == [("device:T-1", "A", 8, 109)]


def test_long_gap_cuts_the_visit_at_the_fixes_themselves(db, fixes, hotspots):
    for t in range(0, 101, 10):
        fixes.fix("T-1", T0 + t, 0)
    for t in range(7300, 7401, 10):  # two hours silent (left in a locker), then inside again
        fixes.fix("T-1", T0 + t, 0)
    assert spans(compute_visits(db, hotspots)) == [("device:T-1", "A", 0, 100),
                                                   ("device:T-1", "A", 7300, 7400)]


def test_short_gap_inside_is_bridged(db, fixes, hotspots):
    for t in [*range(0, 101, 10), *range(400, 501, 10)]:  # a 300 s dead spot inside
        fixes.fix("T-1", T0 + t, 0)
    assert spans(compute_visits(db, hotspots)) == [("device:T-1", "A", 0, 500)]


def test_accuracy_gate_ignores_a_mast_snapped_radio_report(db, fixes, hotspots):
    for t, x, acc in [(0, -410, 20), (180, 0, 200), (360, -410, 20), (540, 0, 20), (720, 0, 20),
                      (900, -410, 20)]:
        fixes.fix("1001", T0 + t, x, acc=acc, source="airwave")
    # The report with a 200 m error bound does not place the radio in the hot spot; the others
    # do, from the crossing on the way in (518 s) to the crossing on the way out (742 s).
    assert spans(compute_visits(db, hotspots)) == [("device:1001", "A", 518, 742)]
    loose = compute_visits(db, hotspots, rules=VisitRules(max_acc_m=300, min_visit_s=0))
    assert spans(loose)[0] == ("device:1001", "A", 158, 202)


def test_filtered_positions_are_ignored(db, fixes, hotspots):
    fixes.walk("T-1", T0, -103, 200, 1.0, 10, filtered="speed")
    assert compute_visits(db, hotspots) == []


def test_a_pass_shorter_than_the_minimum_visit_is_dropped(db, fixes, hotspots):
    fixes.walk("T-1", T0, -104, 200, 2.0, 5)  # 50 s across the square
    assert compute_visits(db, hotspots) == []
    assert spans(compute_visits(db, hotspots, rules=VisitRules(min_visit_s=30))) == [
        ("device:T-1", "A", 27, 77)]


def test_without_hot_spots_only_transitions_count(db, fixes):
    fixes.walk("T-1", T0, -103, 200, 1.0, 10)
    assert compute_visits(db, None) == []


# -- transitions ----------------------------------------------------------------------------------
def test_transitions_win_over_positions_for_their_device_and_hot_spot(db, fixes, hotspots):
    fixes.walk("T-1", T0, -103, 800, 1.0, 10)  # positions say A 53-153, B 653-753
    fixes.event("T-1", T0 + 50, "enter", "A")
    fixes.event("T-1", T0 + 151, "leave", "A")
    visits = compute_visits(db, hotspots)
    assert spans(visits) == [("device:T-1", "A", 50, 151), ("device:T-1", "B", 653, 753)]
    assert [v.method for v in visits] == ["transitions", "positions"]


def test_enter_without_leave_is_credited_only_while_the_device_reports(db, fixes):
    fixes.event("T-1", T0, "enter")
    for t in range(0, 601, 60):
        fixes.fix("T-1", T0 + t, 0)
    (visit,) = compute_visits(db, None)
    assert (visit.enter - T0, visit.leave - T0, visit.open) == (0, 600, True)


def test_demo_view_pairs_events_without_rules(db, fixes):
    fixes.event("T-1", T0, "enter")
    fixes.event("T-1", T0 + 30, "leave")
    assert spans(visits_from_transitions(db)) == [("device:T-1", "A", 0, 30)]


# -- merging and attribution ----------------------------------------------------------------------
@pytest.mark.parametrize(("merge_gap_s", "expected"), [
    (120, [("4521", "A", 0, 1200)]),
    (30, [("4521", "A", 0, 600), ("4521", "A", 660, 1200)]),
])
def test_gap_merge_rule(db, fixes, merge_gap_s, expected):
    fixes.assign("T-1", "4521", T0 - 3600)
    for t, event in [(0, "enter"), (600, "leave"), (660, "enter"), (1200, "leave")]:
        fixes.event("T-1", T0 + t, event)
    assert spans(compute_visits(db, None, rules=VisitRules(merge_gap_s=merge_gap_s))) == expected


def test_tracker_and_radio_of_one_officer_make_one_visit(db, fixes, hotspots):
    fixes.assign("T-1", "4521", T0 - 3600)
    fixes.assign("1001", "4521", T0 - 3600)
    fixes.event("T-1", T0, "enter")
    fixes.event("T-1", T0 + 900, "leave")
    for t, x in [(-300, -410), (300, 0), (600, 0), (900, 0), (1200, 0), (1500, -410)]:
        fixes.fix("1001", T0 + t, x, acc=20, source="airwave")
    (visit,) = compute_visits(db, hotspots)
    assert (visit.officer, visit.enter - T0, visit.leave - T0) == ("4521", 0, 1237)
    assert visit.devices == ("1001", "T-1") and visit.method == "positions+transitions"


def test_a_visit_is_split_when_the_device_changes_hands(db, fixes):
    fixes.assign("T-1", "1111", T0 - 3600, T0 + 600)
    fixes.assign("T-1", "2222", T0 + 600)
    fixes.event("T-1", T0, "enter")
    fixes.event("T-1", T0 + 1200, "leave")
    assert spans(compute_visits(db, None)) == [("1111", "A", 0, 600), ("2222", "A", 600, 1200)]


# -- report window --------------------------------------------------------------------------------
def test_visits_straddling_the_window_are_clipped_not_dropped(db, fixes):
    midnight = day_window("2026-03-03")[0]
    fixes.assign("T-1", "4521", midnight - 86400)
    fixes.event("T-1", midnight - 1500, "enter")  # 23:35 to 00:05
    fixes.event("T-1", midnight + 300, "leave")
    rules = VisitRules(min_visit_s=15 * 60)
    (before,) = compute_visits(db, None, day_window("2026-03-02"), rules)
    (after,) = compute_visits(db, None, day_window("2026-03-03"), rules)
    assert (before.enter, before.leave, before.clipped_end) == (midnight - 1500, midnight, True)
    # Only five minutes fall in the 3rd, but the visit lasted 30: it is kept.
    assert (after.enter, after.leave, after.clipped_start) == (midnight, midnight + 300, True)
    assert clip_visits(compute_visits(db, None, rules=rules), day_window("2026-03-03")) == [after]


def test_positions_before_the_window_decide_a_visit_inside_it(db, fixes, hotspots):
    midnight = day_window("2026-03-03")[0]
    for t in range(-600, 121, 10):  # inside from 23:50 to 00:02
        fixes.fix("T-1", midnight + t, 0)
    (visit,) = compute_visits(db, hotspots, day_window("2026-03-03"),
                              VisitRules(min_visit_s=300))
    assert (visit.enter - midnight, visit.leave - midnight, visit.clipped_start) == (0, 120, True)


# -- figures --------------------------------------------------------------------------------------
def test_officer_minutes_and_patrol_minutes_on_overlapping_patrols(db, fixes, hotspots):
    for device, collar, start, end in [("T-1", "1111", 7200, 8400), ("T-2", "2222", 7800, 9000),
                                       ("T-3", "3333", 10800, 11100)]:
        fixes.assign(device, collar, T0 - 28800)
        fixes.event(device, T0 + start, "enter")
        fixes.event(device, T0 + end, "leave")
    day = "2026-03-02"
    visits = compute_visits(db, hotspots, day_window(day))
    a, b = daily_stats(visits, day, hotspots=hotspots)
    assert (a.hotspot, a.visits, a.officers) == ("A", 3, 3)
    assert (a.officer_minutes, a.patrol_minutes, a.minutes_per_visit) == (45.0, 35.0, 15.0)
    assert [m for m in a.as_dict()["hourly_patrol_minutes"] if m] == [30.0, 5.0]
    assert a.as_dict()["hourly_patrol_minutes"][10] == 30.0  # 10:00-10:30 UTC
    assert (b.hotspot, b.visits, b.patrol_s) == ("B", 0, 0)


def test_hours_follow_the_local_clock_on_a_daylight_saving_day():
    from gateway.reports.dwell import hour_edges, zone

    london = zone("Europe/London")
    start, end = day_window("2026-03-29", london)  # clocks go forward: a 23-hour day
    assert end - start == 23 * 3600
    edges = hour_edges(__import__("datetime").date(2026, 3, 29), london)
    assert edges[0] == start and edges[-1] == end and edges[2] - edges[1] == 0


@pytest.mark.parametrize(("intervals", "expected"), [
    ([], 0), ([(0, 10)], 10), ([(0, 10), (5, 20)], 20), ([(0, 10), (10, 20)], 20),
    ([(0, 10), (20, 30), (25, 26)], 20),
])
def test_union_seconds(intervals, expected):
    assert union_seconds(intervals) == expected
