"""The patrol scoreboard: five sampling and reporting strategies over the same shifts.

Every strategy drives the same simulated hardware (:mod:`simulators.energy`) second by second
over an officer's :class:`~simulators.scenario.Trace`, and the visits it yields are scored
against the walk's exact ground truth:

``policy``
    (a) this project's :class:`tracker.policy.Policy` with the real :class:`FenceEngine`.
``fixed-1hz``
    (b) GNSS at 1 Hz all shift, fences on the device, a report (one radio wake-up) every 10 s.
``radio``
    (c) Airwave-style: GNSS on, a report every 2-5 minutes (per officer) or after 50 m moved; no
    fences on the device, so visits are what the gateway makes of the positions
    (:func:`gateway.reports.visits.presence_from_positions`); a report in a dead spot is lost.
``owntracks``
    (d) OwnTracks move mode: a fix every 10 s or 100 m (receiver hot-started for each), a report
    for each; regions evaluated on the device, as the app does.
``oracle``
    (e) knows the route: powers the receiver only around each true boundary crossing (from one
    hysteresis band before it until the device's fence engine has confirmed it) and sends
    one radio wake-up per transition. The energy lower bound for a tracker that reports every
    visit as it happens.

Visits: device transitions paired per hot spot (an enter without a leave is closed at the last
fix); for ``radio``, the gateway's stays from positions. Both the truth and each strategy's visits
are then counted as a supervisor's report counts them (:func:`as_reported`): visits of one hot
spot at most the report's merge gap apart are one visit. Each truth visit is matched to at most
one detected visit of the same hot spot (largest overlap first); unmatched truth visits are
*missed*, unmatched detections *false*. Dwell error = |detected dwell - true dwell| of matched
visits.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from fences.compile import compile_geojson
from simulators.energy import (
    DEFAULT_HARDWARE,
    GnssReceiver,
    Hardware,
    HardwareLog,
    Radio,
    ShiftEnergy,
    shift_energy,
)
from simulators.scenario import OfficerShift, Scenario, Trace, trace_from_walk
from simulators.walk import Visit, Walk
from tracker.fence import FenceEngine, FenceSet
from tracker.policy import Policy, approx_distance_m, density_near

STRATEGIES = ("policy", "fixed-1hz", "radio", "owntracks", "oracle")
LABELS = {
    "policy": "(a) adaptive policy",
    "fixed-1hz": "(b) fixed 1 Hz, report 10 s",
    "radio": "(c) radio 2-5 min / 50 m",
    "owntracks": "(d) OwnTracks move 10 s/100 m",
    "oracle": "(e) oracle (lower bound)",
}
#: Shift length the issue's battery target is stated for.
REFERENCE_SHIFT_H = 10.0


@dataclass
class Stay:
    """A visit as one strategy detected it."""

    hotspot: str
    enter: float
    leave: float


@dataclass
class Run:
    """One strategy over one officer's shift."""

    strategy: str
    collar: str
    log: HardwareLog
    energy: ShiftEnergy
    stays: list[Stay]
    truth: list[Visit]


class _Device:
    """Fence engine, receiver, radio and outbox of one simulated tracker."""

    def __init__(self, fence_set: FenceSet, trace: Trace, hw: Hardware) -> None:
        self.fence_set = fence_set
        self.trace = trace
        self.log = HardwareLog(duration_s=len(trace))
        self.gnss = GnssReceiver(hw.gnss, self.log)
        self.radio = Radio(self.log)
        self.transitions: list[tuple[bool, int, int]] = []
        self.engine = FenceEngine(fence_set, self._on_transition)
        self.pending: list[int] = []  # queue times of messages not yet sent
        self.last_fix_t = trace.t0

    def _on_transition(self, entering: bool, index: int, tst: int, lat: int, lon: int) -> None:
        self.transitions.append((entering, index, tst))
        self.queue(self.last_fix_t)

    def queue(self, t: int) -> None:
        self.pending.append(t)
        self.log.messages += 1

    def fix(self, i: int) -> bool:
        """Feed the fix of second ``i`` to the fence engine; True if a transition followed."""
        tr = self.trace
        t = tr.t0 + i
        self.last_fix_t = t
        self.log.fixes += 1
        n = len(self.transitions)
        self.engine.update(t, int(tr.lat_e6[i]), int(tr.lon_e6[i]), tr.acc_cm)
        return len(self.transitions) > n

    def send(self, i: int) -> bool:
        ok = self.radio.send(self.trace.t0 + i, len(self.pending), bool(self.trace.cell_ok[i]))
        if ok:
            self.pending.clear()
        return ok

    def stays(self) -> list[Stay]:
        """Transitions paired per hot spot; a visit still open closes at the end of the shift."""
        ids = self.fence_set.ids
        open_: dict[int, int] = {}
        out = []
        for entering, index, tst in self.transitions:
            if entering:
                open_.setdefault(index, tst)
            elif index in open_:
                out.append(Stay(ids[index], open_.pop(index), tst))
        end_t = self.trace.t0 + len(self.trace) - 1  # docked at the end of the shift
        for index, tst in open_.items():
            out.append(Stay(ids[index], tst, end_t))
        return sorted(out, key=lambda s: s.enter)


# -- the strategies ---------------------------------------------------------------------------
def run_policy(dev: _Device, battery_pct: int = 100, hw: Hardware = DEFAULT_HARDWARE) -> None:
    """(a) The firmware policy, charged for what it asked: receiver power and radio wake-ups."""
    tr = dev.trace
    fs = dev.fence_set
    pol = Policy(capacity_mah=int(hw.battery.capacity_mah))
    end_t = tr.t0 + len(tr)
    start_mah = hw.battery.capacity_mah * (100 - battery_pct) / 100
    pol.power(tr.t0, battery_pct, False, False, end_t)
    wake_t = tr.t0
    for i in range(len(tr)):
        t = tr.t0 + i
        if i and i % 600 == 0:  # the battery gauge, read every 10 minutes
            dev.log.duration_s = i
            used = start_mah + shift_energy(dev.log, hw).total_mah
            pct = max(0, int(100 - 100 * used / hw.battery.capacity_mah))
            pol.power(t, pct, False, False, end_t)
            dev.log.duration_s = len(tr)
        if not dev.gnss.on and t >= wake_t:
            dev.gnss.power_on(t)
            pol.gnss_on(t)
        if dev.gnss.on:
            if dev.gnss.second(t, bool(tr.gnss_ok[i])):
                moved = dev.fix(i)
                lat, lon = int(tr.lat_e6[i]), int(tr.lon_e6[i])
                nearest = dev.engine.nearest_m
                dens = density_near(fs, lat, lon, nearest)
                if pol.fix(t, lat, lon, int(tr.speed_cmps[i]), tr.acc_cm, nearest, dens, moved,
                           dev.engine.pending):
                    dev.queue(t)
                if pol.off_s:
                    dev.gnss.power_off()
                    wake_t = pol.wake_t
            elif pol.no_fix(t):
                dev.gnss.power_off()
                wake_t = pol.wake_t
        if dev.pending and pol.upload_due(t, len(dev.pending), dev.pending[0]):
            pol.uploaded(t, dev.send(i))


def run_fixed(dev: _Device, report_s: int = 10) -> None:
    """(b) Receiver always on, every fix to the fence engine, a radio wake-up every 10 s."""
    tr = dev.trace
    dev.gnss.power_on(tr.t0)
    last = None
    for i in range(len(tr)):
        t = tr.t0 + i
        if dev.gnss.second(t, bool(tr.gnss_ok[i])):
            dev.fix(i)
            if last is None or t - last >= report_s:
                dev.queue(t)
                last = t
        if dev.pending and last == t:
            dev.send(i)  # without coverage the batch waits for the next report


def run_radio(dev: _Device, interval_s: int, move_m: int = 50) -> list[tuple[int, int, int]]:
    """(c) Radio-style: a report every ``interval_s`` or after ``move_m``; returns the
    positions that reached the gateway as (t, lat_e6, lon_e6)."""
    tr = dev.trace
    dev.gnss.power_on(tr.t0)
    last_t = None
    last = (0, 0)
    received = []
    for i in range(len(tr)):
        t = tr.t0 + i
        if not dev.gnss.second(t, bool(tr.gnss_ok[i])):
            continue
        dev.log.fixes += 1
        lat, lon = int(tr.lat_e6[i]), int(tr.lon_e6[i])
        if (last_t is None or t - last_t >= interval_s
                or approx_distance_m(last[0], last[1], lat, lon) >= move_m):
            last_t, last = t, (lat, lon)
            dev.queue(t)
            if dev.send(i):
                received.append((t, lat, lon))
            else:
                dev.pending.clear()  # a radio does not store and forward: the report is lost
    return received


def run_owntracks(dev: _Device, interval_s: int = 10, move_m: int = 100) -> None:
    """(d) OwnTracks move mode: a fix every 10 s (or 100 m), each reported at once.

    The receiver stays on, as a phone's location service does at this rate: cycling it every
    10 s would never download fresh ephemeris, and warm starts (25 s) cost more than tracking.
    """
    tr = dev.trace
    dev.gnss.power_on(tr.t0)
    next_t = tr.t0
    last = None
    for i in range(len(tr)):
        t = tr.t0 + i
        if not dev.gnss.second(t, bool(tr.gnss_ok[i])):
            continue
        lat, lon = int(tr.lat_e6[i]), int(tr.lon_e6[i])
        moved = last is not None and approx_distance_m(*last, lat, lon) >= move_m
        if t >= next_t or moved:
            dev.fix(i)
            dev.queue(t)
            dev.send(i)
            last = (lat, lon)
            next_t = t + interval_s


def run_oracle(dev: _Device, truth: list[Visit], speed_mps: float) -> None:
    """(e) Receiver on only around true crossings; one radio wake-up per transition.

    The window opens early enough for one fix beyond the fence engine's hysteresis band
    (3 x accuracy) on the old side: without it the engine has nothing to split the crossing
    from and interpolates across the whole gap before it.
    """
    tr = dev.trace
    lead = 5 + int((3 * tr.acc_cm / 100 + 2) / speed_mps)
    ids = list(dev.fence_set.ids)
    crossings = []
    for v in truth:
        k = ids.index(v.hotspot)
        crossings.append((v.enter, k, True))
        if v.leave < tr.t0 + len(tr) - 1:
            crossings.append((v.leave, k, False))
    crossings.sort()
    p = dev.gnss.params
    c = 0
    sent = len(dev.transitions)
    for i in range(len(tr)):
        t = tr.t0 + i
        if c < len(crossings) and not dev.gnss.on:
            tc = crossings[c][0]
            first = not sum(dev.log.gnss_starts.values())
            ttff = p.ttff_cold_s if first else p.ttff_hot_s
            if t >= tc - lead - ttff:
                dev.gnss.power_on(t)
        if dev.gnss.on and dev.gnss.second(t, bool(tr.gnss_ok[i])):
            dev.fix(i)
        if dev.gnss.on and c < len(crossings):
            tc, k, entering = crossings[c]
            confirmed = (k in dev.engine.inside) == entering and t > tc
            if confirmed or t > tc + 30:
                # Keep the ephemeris fresh (hot starts) once in its validity, like the policy.
                ephemeris_t = dev.gnss.ephemeris_t
                refresh = ephemeris_t is None or t - ephemeris_t > 3 * 3600
                if not refresh or dev.gnss.tracked_s(t) >= p.ephemeris_download_s:
                    c += 1
                    while c < len(crossings) and crossings[c][0] <= t:
                        c += 1
                    if c >= len(crossings) or crossings[c][0] - lead - p.ttff_hot_s > t + 1:
                        dev.gnss.power_off()
        if len(dev.transitions) > sent:
            sent = len(dev.transitions)
            dev.send(i)  # without coverage it waits for the next transition, or a retry below
        elif dev.pending and tr.cell_ok[i] and \
                dev.log.failed_connections and dev.log.failed_connections[-1] < t - 60:
            dev.send(i)


# -- scoring ----------------------------------------------------------------------------------
def gateway_stays(received: list[tuple[int, int, int]], fences: dict) -> list[Stay]:
    """Visits the gateway makes of position reports (its own rules,
    :mod:`gateway.reports.visits`)."""
    from gateway.reports.visits import HotSpotSet, Tracks, presence_from_positions

    if not received:
        return []
    hs = HotSpotSet.load(fences)
    arr = np.array(received, dtype=np.float64)
    x, y = hs.frame.e6_to_xy(arr[:, 1], arr[:, 2])
    tracks = Tracks(["dev"], np.zeros(len(arr), np.int32), arr[:, 0].astype(np.int64), x, y)
    return sorted((Stay(p.hotspot, p.enter, p.leave) for p in presence_from_positions(tracks, hs)),
                  key=lambda s: s.enter)


_V = TypeVar("_V", Visit, Stay)


def as_reported(visits: Sequence[_V], merge_gap_s: int | None = None) -> list[_V]:
    """Visits as a supervisor's report counts them: per hot spot, visits at most
    ``merge_gap_s`` apart (default: the report's rule, ``VisitRules.merge_gap_s``) are one
    visit and the gap counts; joined by the report's own
    :func:`gateway.reports.visits.merge_presence`.

    Applied to the truth *and* to every strategy's visits before matching. The walk's exact
    truth splits a stay wherever the route leaves the polygon, even for seconds (a path that
    clips a hole, or steps between the parts of a two-part hot spot), while the fence engine's
    hysteresis rightly keeps a tracker with metres of GNSS noise inside for such an excursion
    unless it is deep or long enough to confirm. Matched piece by piece, either answer would be
    scored as an error of the whole excursion plus the piece on its far side; joined by the
    report's rule on both sides, both become the one visit the supervisor sees. The minimum
    visit is not applied: short pass-throughs stay on the scoreboard, to be found. Returns new
    objects of the visits' own type: the runs keep their own visits.
    """
    from gateway.reports.visits import DEFAULT_RULES, Presence, merge_presence

    if not visits:
        return []
    rules = replace(DEFAULT_RULES, min_visit_s=0)
    if merge_gap_s is not None:
        rules = replace(rules, merge_gap_s=merge_gap_s)
    kind = type(visits[0])
    pieces = [(None, Presence("", v.hotspot, v.enter, v.leave, "")) for v in visits]
    return [kind(v.hotspot, v.enter, v.leave) for v in merge_presence(pieces, rules)]


def match(truth: list[Visit], stays: list[Stay]) -> tuple[list[tuple[Visit, Stay]],
                                                           list[Visit], list[Stay]]:
    """One-to-one matching by largest overlap, per hot spot: (pairs, missed, false)."""
    candidates = []
    for a, v in enumerate(truth):
        for b, s in enumerate(stays):
            if s.hotspot != v.hotspot:
                continue
            overlap = min(v.leave, s.leave) - max(v.enter, s.enter)
            if overlap > 0:
                candidates.append((overlap, a, b))
    candidates.sort(reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for _, a, b in candidates:
        if a in used_a or b in used_b:
            continue
        used_a.add(a)
        used_b.add(b)
        pairs.append((truth[a], stays[b]))
    missed = [v for a, v in enumerate(truth) if a not in used_a]
    false = [s for b, s in enumerate(stays) if b not in used_b]
    return pairs, missed, false


@dataclass
class Score:
    """A strategy's line on the scoreboard (over all officers)."""

    strategy: str
    officers: int
    hours: float
    energy_mwh: float  # mean per officer-shift of ``hours``
    energy_10h_mah: float  # scaled to a 10-hour shift at the same mean current
    gnss_mah: float
    modem_mah: float
    mcu_mah: float
    battery_life_h: float
    connections: float  # mean radio wake-ups per shift
    visits: int
    detected: int
    missed: int
    missed_2min: int
    false: int
    dwell_err_median_s: float
    dwell_err_p95_s: float
    dwell_err_max_s: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready figures."""
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in vars(self).items()}


def score(strategy: str, runs: list[Run], hours: float) -> Score:
    """Aggregate the runs of one strategy (visits counted by the report's rules on both sides,
    :func:`as_reported`)."""
    errors: list[float] = []
    visits = detected = missed = missed_2 = false = 0
    for r in runs:
        truth, stays = as_reported(r.truth), as_reported(r.stays)
        pairs, miss, fal = match(truth, stays)
        errors += [abs((s.leave - s.enter) - v.dwell_s) for v, s in pairs]
        visits += len(truth)
        detected += len(stays)
        missed += len(miss)
        missed_2 += sum(1 for v in miss if v.dwell_s >= 120)
        false += len(fal)
    n = len(runs)
    e = [r.energy for r in runs]
    mean_ma = sum(x.mean_ma for x in e) / n
    err = np.array(errors) if errors else np.array([0.0])
    return Score(
        strategy, n, hours,
        energy_mwh=sum(x.total_mwh for x in e) / n,
        energy_10h_mah=mean_ma * REFERENCE_SHIFT_H,
        gnss_mah=sum(x.gnss_mah for x in e) / n,
        modem_mah=sum(x.modem_mah for x in e) / n,
        mcu_mah=sum(x.mcu_mah for x in e) / n,
        battery_life_h=e[0].battery.capacity_mah / mean_ma,
        connections=sum(len(r.log.connections) for r in runs) / n,
        visits=visits, detected=detected, missed=missed, missed_2min=missed_2, false=false,
        dwell_err_median_s=float(np.median(err)),
        dwell_err_p95_s=float(np.percentile(err, 95)),
        dwell_err_max_s=float(err.max()),
    )


def run_one(strategy: str, shift: OfficerShift, fence_set: FenceSet, fences: dict,
            hw: Hardware = DEFAULT_HARDWARE, seed: int = 0) -> Run:
    """Run one strategy over one officer's shift."""
    dev = _Device(fence_set, shift.trace, hw)
    if strategy == "policy":
        run_policy(dev, hw=hw)
        stays = dev.stays()
    elif strategy == "fixed-1hz":
        run_fixed(dev)
        stays = dev.stays()
    elif strategy == "radio":
        interval = random.Random(f"{seed}-{shift.collar}").randint(120, 300)
        stays = gateway_stays(run_radio(dev, interval), fences)
    elif strategy == "owntracks":
        run_owntracks(dev)
        stays = dev.stays()
    elif strategy == "oracle":
        # Every exact crossing, not the joined visits: the oracle cannot know which excursions
        # the engine will confirm, and sleeping through one it does confirm loses a visit.
        run_oracle(dev, shift.truth, shift.walk.speed_mps)
        stays = dev.stays()
    else:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    return Run(strategy, shift.collar, dev.log, shift_energy(dev.log, hw), stays, shift.truth)


def compiled_fence_set(fences: dict | str | Path) -> FenceSet:
    """The device's fence set for a GeoJSON document or file (compiled as the gateway does)."""
    return FenceSet.from_json(compile_geojson(fences).text)


def scoreboard(scenario: Scenario, strategies: tuple[str, ...] = STRATEGIES,
               hw: Hardware = DEFAULT_HARDWARE,
               progress: Callable[[str], None] | None = None) -> dict[str, Score]:
    """Every strategy over every officer of ``scenario``; returns a :class:`Score` each."""
    fence_set = compiled_fence_set(scenario.fences)
    out = {}
    for name in strategies:
        runs = [run_one(name, s, fence_set, scenario.fences, hw, scenario.seed)
                for s in scenario.officers]
        out[name] = score(name, runs, scenario.hours)
        if progress:
            progress(name)
    return out


def targets(board: dict[str, Score]) -> dict[str, tuple[bool, str]]:
    """The issue's targets for the policy: name -> (met, measured)."""
    a, b, e = board["policy"], board.get("fixed-1hz"), board.get("oracle")
    out = {
        "dwell p95 <= 15 s": (a.dwell_err_p95_s <= 15, f"{a.dwell_err_p95_s:.1f} s"),
        "no visit >= 2 min missed": (a.missed_2min == 0, f"{a.missed_2min} missed"),
        "10 h shift <= 1000 mAh": (a.energy_10h_mah <= 1000, f"{a.energy_10h_mah:.0f} mAh"),
    }
    if e is not None:
        r = a.energy_mwh / e.energy_mwh
        out["energy <= 1.5 x oracle"] = (r <= 1.5, f"{r:.2f} x")
    if b is not None:
        r = a.energy_mwh / b.energy_mwh
        out["energy <= 30 % of fixed 1 Hz"] = (r <= 0.30, f"{100 * r:.0f} %")
    return out


HEADER = (f"{'strategy':<31} {'mWh/shift':>9} {'mAh/10h':>8} {'life h':>7} {'wakes':>6} "
          f"{'visits':>6} {'found':>5} {'miss':>4} {'miss2m':>6} {'false':>5} "
          f"{'dwell err s med/p95/max':>24}")


def format_score(s: Score) -> str:
    """One scoreboard line."""
    err = f"{s.dwell_err_median_s:.1f}/{s.dwell_err_p95_s:.1f}/{s.dwell_err_max_s:.0f}"
    found = s.visits - s.missed
    return (f"{LABELS.get(s.strategy, s.strategy):<31} {s.energy_mwh:>9.1f} "
            f"{s.energy_10h_mah:>8.1f} {s.battery_life_h:>7.0f} {s.connections:>6.0f} "
            f"{s.visits:>6} {found:>5} {s.missed:>4} {s.missed_2min:>6} {s.false:>5} "
            f"{err:>24}")


def scoreboard_line(walk: Walk, fences_path: str | Path, noise_m: float = 2.0,
                    seed: int = 1) -> str:
    """The policy's scoreboard line for one walk (e.g. the demo's own patrol) with a ratio to
    fixed 1 Hz on the same walk: what ``hotspots demo`` prints."""
    import json

    fences = json.loads(Path(fences_path).read_text())
    fence_set = compiled_fence_set(fences)
    trace = trace_from_walk(walk, noise_m, seed)
    shift = OfficerShift("demo", walk, walk.visits(), trace, noise_m)
    hours = len(trace) / 3600
    a = score("policy", [run_one("policy", shift, fence_set, fences)], hours)
    b = score("fixed-1hz", [run_one("fixed-1hz", shift, fence_set, fences)], hours)
    return (f"adaptive policy on this walk: {a.energy_mwh:.1f} mWh"
            f" ({100 * a.energy_mwh / b.energy_mwh:.0f} % of fixed 1 Hz,"
            f" {a.energy_10h_mah:.0f} mAh per 10 h), visits {a.visits - a.missed}/{a.visits},"
            f" false {a.false}, dwell error median {a.dwell_err_median_s:.1f} s,"
            f" max {a.dwell_err_max_s:.1f} s")
