"""Seeded patrol shifts with exact ground truth."""

from __future__ import annotations

import numpy as np
from shapely.geometry import LineString, Polygon

from fences.geo import LocalFrame
from simulators.scenario import SHIFT_START, make_scenario
from simulators.walk import Walk


def test_same_seed_same_shifts_other_seed_other_shifts() -> None:
    a, b, c = make_scenario(2, 2, seed=3), make_scenario(2, 2, seed=3), make_scenario(2, 2, 4)
    assert np.array_equal(a.officers[0].trace.lat_e6, b.officers[0].trace.lat_e6)
    assert [v.enter for v in a.officers[1].truth] == [v.enter for v in b.officers[1].truth]
    assert not np.array_equal(a.officers[0].trace.lat_e6[:100], c.officers[0].trace.lat_e6[:100])


def test_shifts_have_long_visits_pass_throughs_and_dead_spots() -> None:
    sc = make_scenario(3, 4, seed=5)
    for o in sc.officers:
        assert len(o.trace) == 4 * 3600 + 1
        # 10-16 minute stays (plus the walk in from the edge)
        assert len([v for v in o.truth if 600 <= v.dwell_s <= 1100]) >= 3
        assert o.gnss_outages and not o.trace.gnss_ok.all()
        assert o.cell_outages and not o.trace.cell_ok.all()
    assert any(v.dwell_s < 120 for o in sc.officers for v in o.truth)  # pass-throughs


def test_walk_visits_handle_a_route_that_comes_back() -> None:
    frame = LocalFrame(51_480_000, 0)
    square = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)])
    route = LineString([(-10, 5), (20, 5), (-10, 5)])  # through, back through
    walk = Walk(route, frame, SHIFT_START, 1.0, {1: 100.0}, {"sq": square})
    visits = walk.visits()
    assert [(round(v.enter - SHIFT_START), round(v.leave - SHIFT_START)) for v in visits] == [
        (10, 20), (140, 150)]


def test_trace_noise_is_metres_not_tens_of_metres() -> None:
    o = make_scenario(1, 1, seed=2).officers[0]
    frame = o.walk.projection
    t = np.arange(len(o.trace))
    true = [o.walk.route.interpolate(o.walk.distance_at(s)) for s in t[::300]]
    x, y = frame.e6_to_xy(o.trace.lat_e6[::300], o.trace.lon_e6[::300])
    err = np.hypot(x - [p.x for p in true], y - [p.y for p in true])
    assert np.median(err) < 3 * o.noise_m and err.max() < 8 * o.noise_m
