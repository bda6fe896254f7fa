"""Visits: who was in which hot spot, from when to when, from every source merged.

Two kinds of evidence exist and they are not equally good:

* **Transitions** (``enter``/``leave`` events computed on a tracker or phone) carry the
  interpolated boundary-crossing time, taken from 1 Hz GNSS on the device. Where a device sent
  transitions for a hot spot they are used as they are: they are exact.
* **Positions** (tracker locations every few seconds to minutes, Airwave reports every 2-5
  minutes) give visits only after some work, done here for every device and hot spot pair that
  has no transitions:

  - *accuracy gating*: a fix whose ``acc_m`` (horizontal error bound in metres; for a radio the
    upper bound of its LIP position-error class, e.g. 20 for "< 20 m") exceeds
    :attr:`VisitRules.max_acc_m` is ignored, so a report snapped to a mast neither starts nor
    ends a visit; filtered positions (``filtered`` set by the gateway) are ignored too;
  - *hysteresis*: a visit starts at a fix inside the hot spot and continues while fixes stay
    within :attr:`VisitRules.hysteresis_m` of it, so GNSS jitter at the edge does not chop one
    stay into many;
  - *interpolation*: the enter (leave) time is the boundary crossing on the straight segment
    between the last fix outside and the first fix inside (last inside and first outside),
    when those fixes are at most :attr:`VisitRules.interp_gap_s` apart; across a longer gap
    nothing is assumed and the visit is cut at the fixes themselves.

Then, per officer (collar number, through the assignment history; per device where nobody was
assigned) and hot spot, the device-level stays are merged: overlapping stays (a tracker and a
radio carried together) become one, stays separated by at most :attr:`VisitRules.merge_gap_s`
are joined (the gap counts as presence), and merged visits shorter than
:attr:`VisitRules.min_visit_s` are dropped (walking past). Only then are visits clipped to the
report window, so a visit that straddles midnight is cut at midnight and never dropped for being
short inside the window.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import shapely
import sqlite_utils
from shapely.geometry import Point, mapping

from fences.geo import LocalFrame
from fences.validate import FenceError, validate
from gateway.fleet import attribution

__all__ = [
    "DEFAULT_RULES",
    "FenceError",
    "HotSpotSet",
    "Presence",
    "Tracks",
    "Visit",
    "VisitRules",
    "clip_spans",
    "clip_visits",
    "compute_visits",
    "load_tracks",
    "merge_presence",
    "presence_from_positions",
    "presence_from_transitions",
    "union_seconds",
    "unknown_hotspot_transitions",
]

#: Grid cell for the candidate search, metres: about a hot spot's size, so a hot spot touches
#: few cells and a cell holds few hot spots.
CELL_M = 250.0
#: Bisection steps for a boundary crossing: 2**-14 of a 5-minute radio gap is 0.02 s.
BISECT_STEPS = 14
#: How far back to look for a transition that opened a visit still going on in the window.
TRANSITION_LOOKBACK_S = 24 * 3600

OPEN_WINDOW = (-(2**62), 2**62)


@dataclass(frozen=True)
class VisitRules:
    """The configurable rules that turn evidence into visits (see the module docstring).

    :param hysteresis_m: a visit ends only at a fix this far outside the hot spot.
    :param max_acc_m: fixes with a larger error bound are ignored.
    :param interp_gap_s: interpolate crossings only between fixes at most this far apart; also
        cuts a visit at a gap this long (a tracker switched off inside a hot spot).
    :param merge_gap_s: join visits of one officer to one hot spot at most this far apart.
    :param min_visit_s: drop merged visits shorter than this.
    :param unknown_accuracy: count positions whose only flag is ``accuracy_unknown`` (a radio's
        error class 7: real coordinates, accuracy "not known"). Off by default: a visit claim
        needs a bounded error, which such a fix cannot show; switch it on for a force whose
        radios never report a better class.
    :param vehicle_max_speed_mps: a vehicle's fix counts only when the vehicle is parked or
        moving at walking pace, at most this speed (see :func:`load_tracks`).
    """

    hysteresis_m: float = 10.0
    max_acc_m: float = 50.0
    interp_gap_s: int = 360
    merge_gap_s: int = 120
    min_visit_s: int = 60
    unknown_accuracy: bool = False
    vehicle_max_speed_mps: float = 2.0

    def lookback_s(self) -> int:
        """How much evidence before the window start can change a visit inside it."""
        return self.interp_gap_s + self.merge_gap_s + self.min_visit_s + 60


DEFAULT_RULES = VisitRules()


@dataclass(frozen=True)
class Presence:
    """One device's stay in one hot spot (before attribution and merging)."""

    device_id: str
    hotspot: str
    enter: int
    leave: int
    method: str  # "transitions" or "positions"
    open: bool = False  # no leave seen: the stay ran to the end of the evidence
    name: str | None = None


@dataclass
class Visit:
    """An officer's visit to a hot spot, merged over devices, clipped to the report window.

    ``officer`` is None for time no one was assigned to the device(s); ``clipped_start`` and
    ``clipped_end`` say the visit went on beyond the window; ``open`` that no leave was seen.
    """

    officer: str | None
    hotspot: str
    name: str | None
    enter: int
    leave: int
    devices: tuple[str, ...] = ()
    method: str = "transitions"
    clipped_start: bool = False
    clipped_end: bool = False
    open: bool = False

    @property
    def device_id(self) -> str:
        """The device(s) that saw the visit, comma-separated."""
        return ",".join(self.devices)

    @property
    def dwell_s(self) -> int:
        """Seconds in the hot spot within the window."""
        return self.leave - self.enter

    @property
    def who(self) -> str:
        """The collar number, or the device for unassigned time."""
        return self.officer or f"device:{self.device_id}"

    def as_dict(self) -> dict:
        """A JSON-ready dict; times stay epoch seconds (UTC)."""
        return {
            "officer": self.officer,
            "device_id": self.device_id,
            "hotspot": self.hotspot,
            "name": self.name,
            "enter": self.enter,
            "leave": self.leave,
            "dwell_s": self.dwell_s,
            "method": self.method,
            "clipped_start": self.clipped_start,
            "clipped_end": self.clipped_end,
            "open": self.open,
        }


# -- hot spots ------------------------------------------------------------------------------------
@dataclass
class HotSpotSet:
    """Hot spots projected into one local metric frame, ready for vectorised tests.

    The frame is equirectangular around the set's centre. That is an affine map of lon/lat, so
    point-in-polygon answers are the same as in degrees (the Greenwich meridian is nothing
    special); only the hysteresis distance carries its tiny scale error.
    """

    ids: list[str]
    names: list[str]
    frame: LocalFrame
    polygons_xy: list  # shapely geometries in metres
    lonlat: list  # shapely geometries in degrees (circles as 64-gons), for maps and exports
    properties: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, source: str | Path | dict) -> HotSpotSet:
        """Load and validate hot spot GeoJSON (see :mod:`fences.validate`).

        :raises FenceError: when the file has errors.
        """
        report = validate(source)
        report.raise_for_errors()
        spots = report.hotspots
        w = min(h.bounds()[0] for h in spots)
        s = min(h.bounds()[1] for h in spots)
        e = max(h.bounds()[2] for h in spots)
        n = max(h.bounds()[3] for h in spots)
        frame = LocalFrame(round((s + n) / 2 * 1e6), round((w + e) / 2 * 1e6))
        polys, lonlat = [], []
        for h in spots:
            if h.circle:
                lon, lat, radius = h.circle
                x, y = frame.to_xy(lon, lat)
                poly = Point(x, y).buffer(radius, quad_segs=16)
                polys.append(poly)
                lonlat.append(frame.geom_to_lonlat(poly))
            else:
                polys.append(frame.geom_to_xy(h.geometry))
                lonlat.append(h.geometry)
        return cls([h.fence_id for h in spots], [h.name or h.fence_id for h in spots], frame,
                   polys, lonlat, [dict(h.properties) for h in spots])

    def __len__(self) -> int:
        return len(self.ids)

    def name_of(self, hotspot: str) -> str | None:
        """The hot spot's display name, or None for an id not in the set."""
        try:
            return self.names[self.ids.index(hotspot)]
        except ValueError:
            return None

    def geojson_feature(self, index: int, **props) -> dict:
        """The hot spot as a GeoJSON feature in degrees."""
        return {"type": "Feature", "geometry": mapping(self.lonlat[index]),
                "properties": {"id": self.ids[index], "name": self.names[index], **props}}


# -- positions ------------------------------------------------------------------------------------
@dataclass
class Tracks:
    """Usable fixes sorted by device then time, as parallel numpy arrays (x, y in metres)."""

    device_ids: list[str]
    dev: np.ndarray  # int32 index into device_ids
    t: np.ndarray  # int64 epoch seconds
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


def load_tracks(db: sqlite_utils.Database, frame: LocalFrame, start: int, end: int,
                rules: VisitRules = DEFAULT_RULES) -> Tracks:
    """Fixes in ``[start, end)`` that pass the filters and the accuracy gate, projected.

    A vehicle's fix (source ``vehicle``) is kept only when the vehicle was parked or moving at
    walking pace: its speed, as reported or else as implied by the neighbouring fixes of the
    vehicle (the slower of the two legs), is at most :attr:`VisitRules.vehicle_max_speed_mps`.
    Driving through a hot spot is not a patrol; stopping in it, or crawling through it, is.
    """
    # One query per device along the (device_id, tst) index, numeric columns only: numpy
    # converts a list of float tuples in one call, and no per-row Python code runs.
    lo, hi = max(start, -(2**62)), min(end, 2**62)
    device_ids, parts = [], []
    for (device_id,) in db.execute("SELECT DISTINCT device_id FROM positions"
                                   " ORDER BY device_id").fetchall():
        rows = db.execute(
            "SELECT tst, lat, lon, source = 'vehicle', coalesce(speed_mps, -1)"
            " FROM positions WHERE device_id = ? AND tst >= ? AND tst < ?"
            " AND (filtered IS NULL OR (? AND filtered = 'accuracy_unknown'))"
            " AND (acc_m IS NULL OR acc_m <= ?)"
            " AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY tst, seq",
            (device_id, lo, hi, rules.unknown_accuracy, rules.max_acc_m)).fetchall()
        if rows:
            block = np.array(rows, dtype=np.float64)
            if block[:, 3].any():
                block = block[_at_walking_pace(block, frame, rules.vehicle_max_speed_mps)]
            if len(block):
                device_ids.append(device_id)
                parts.append(block[:, :3])
    if not parts:
        empty = np.zeros(0)
        return Tracks([], np.zeros(0, np.int32), np.zeros(0, np.int64), empty, empty)
    dev = np.repeat(np.arange(len(parts), dtype=np.int32), [len(p) for p in parts])
    block = np.concatenate(parts)
    t, lat, lon = block[:, 0].astype(np.int64), block[:, 1], block[:, 2]
    x, y = frame.to_xy(lon, lat)
    return Tracks(device_ids, dev, t, x, y)


def _at_walking_pace(block: np.ndarray, frame: LocalFrame, max_speed: float) -> np.ndarray:
    """Which rows of one device's ``(tst, lat, lon, is_vehicle, speed or -1)`` block count:
    every non-vehicle row; a vehicle row whose speed is at most ``max_speed``."""
    t, vehicle, speed = block[:, 0], block[:, 3] > 0, block[:, 4].copy()
    unknown = speed < 0
    if unknown.any():
        x, y = frame.to_xy(block[:, 2], block[:, 1])
        leg = np.hypot(np.diff(x), np.diff(y)) / np.maximum(np.diff(t), 1)
        before = np.concatenate(([np.inf], leg))
        after = np.concatenate((leg, [np.inf]))
        implied = np.minimum(before, after)  # a lone fix (no neighbour) stays unknown: inf
        speed[unknown] = implied[unknown]
    return ~vehicle | (speed <= max_speed)


def _candidates(tracks: Tracks, hotspots: HotSpotSet, buffers: Sequence) -> list[np.ndarray]:
    """For each hot spot, the sorted indices of fixes within its buffered outline.

    Fixes are bucketed into a grid once (one sort); each hot spot then tests only the fixes in
    the cells its bounding box covers, with shapely's vectorised ``contains_xy``.
    """
    gx = np.floor(tracks.x / CELL_M).astype(np.int64)
    gy = np.floor(tracks.y / CELL_M).astype(np.int64)
    gx0, gy0 = gx.min(), gy.min()
    height = int(gy.max() - gy0) + 1
    cell = (gx - gx0) * height + (gy - gy0)
    order = np.argsort(cell, kind="stable")
    cells_sorted = cell[order]
    out = []
    for buf in buffers:
        minx, miny, maxx, maxy = buf.bounds
        cx0, cx1 = math.floor(minx / CELL_M) - gx0, math.floor(maxx / CELL_M) - gx0
        cy0, cy1 = math.floor(miny / CELL_M) - gy0, math.floor(maxy / CELL_M) - gy0
        cy0, cy1 = max(cy0, 0), min(cy1, height - 1)
        pieces = []
        if cy0 <= cy1:
            for cx in range(max(cx0, 0), cx1 + 1):
                lo = np.searchsorted(cells_sorted, cx * height + cy0, "left")
                hi = np.searchsorted(cells_sorted, cx * height + cy1, "right")
                if hi > lo:
                    pieces.append(order[lo:hi])
        if not pieces:
            out.append(np.zeros(0, np.int64))
            continue
        idx = np.sort(np.concatenate(pieces))
        keep = shapely.contains_xy(buf, tracks.x[idx], tracks.y[idx])
        out.append(idx[keep])
    return out


def _crossing(poly, ax, ay, bx, by, a_inside: bool) -> np.ndarray:
    """Fraction along A→B where the segment crosses the outline (A inside or not, B the other).

    Vectorised bisection: the fixes are at most a few hundred metres apart, so the segment
    crosses the outline once in all but contrived cases, and 14 halvings are plenty.
    """
    lo = np.zeros(len(ax))
    hi = np.ones(len(ax))
    for _ in range(BISECT_STEPS):
        mid = (lo + hi) / 2
        inside = shapely.contains_xy(poly, ax + (bx - ax) * mid, ay + (by - ay) * mid)
        same_as_a = inside == a_inside
        lo = np.where(same_as_a, mid, lo)
        hi = np.where(same_as_a, hi, mid)
    return (lo + hi) / 2


def presence_from_positions(tracks: Tracks, hotspots: HotSpotSet,
                            rules: VisitRules = DEFAULT_RULES,
                            only: set[tuple[str, str]] | None = None,
                            skip: set[tuple[str, str]] | None = None) -> list[Presence]:
    """Device-level stays computed from fixes with hysteresis, gap handling and interpolation.

    :param skip: (device, hot spot) pairs to leave out (those covered by transitions).
    """
    if not len(tracks):
        return []
    buffers = [p.buffer(rules.hysteresis_m) for p in hotspots.polygons_xy]
    for geom in (*buffers, *hotspots.polygons_xy):
        shapely.prepare(geom)
    dev, t, x, y = tracks.dev, tracks.t, tracks.x, tracks.y
    n = len(t)
    gap = rules.interp_gap_s
    out: list[Presence] = []
    for h, cand in enumerate(_candidates(tracks, hotspots, buffers)):
        if not len(cand):
            continue
        poly = hotspots.polygons_xy[h]
        inside = shapely.contains_xy(poly, x[cand], y[cand])
        if not inside.any():
            continue
        # Runs of consecutive fixes of one device within the buffer, cut at long gaps.
        brk = np.ones(len(cand), bool)
        brk[1:] = ((cand[1:] != cand[:-1] + 1) | (dev[cand[1:]] != dev[cand[:-1]])
                   | (t[cand[1:]] - t[cand[:-1]] > gap))
        run = np.cumsum(brk)
        ins_idx, ins_run = cand[inside], run[inside]
        first = np.ones(len(ins_idx), bool)
        first[1:] = ins_run[1:] != ins_run[:-1]
        last = np.ones(len(ins_idx), bool)
        last[:-1] = ins_run[1:] != ins_run[:-1]
        k, j = ins_idx[first], ins_idx[last]

        enter = t[k].astype(np.float64)
        prev = k - 1
        ok = (prev >= 0)
        prev_c = np.where(ok, prev, 0)
        ok &= (dev[prev_c] == dev[k]) & (t[k] - t[prev_c] <= gap)
        if ok.any():
            a, b = prev_c[ok], k[ok]
            f = _crossing(poly, x[a], y[a], x[b], y[b], a_inside=False)
            enter[ok] = t[a] + f * (t[b] - t[a])

        leave = t[j].astype(np.float64)
        nxt = j + 1
        ok = nxt < n
        nxt_c = np.where(ok, nxt, 0)
        ok &= (dev[nxt_c] == dev[j]) & (t[nxt_c] - t[j] <= gap)
        open_ = ~ok & ((nxt >= n) | (dev[nxt_c] != dev[j]))
        if ok.any():
            a, b = j[ok], nxt_c[ok]
            f = _crossing(poly, x[a], y[a], x[b], y[b], a_inside=True)
            leave[ok] = t[a] + f * (t[b] - t[a])

        hid, hname = hotspots.ids[h], hotspots.names[h]
        for d, e, lv, op in zip(dev[k].tolist(), np.rint(enter).astype(np.int64).tolist(),
                                np.rint(leave).astype(np.int64).tolist(), open_.tolist(),
                                strict=True):
            device_id = tracks.device_ids[d]
            if skip and (device_id, hid) in skip:
                continue
            if only is not None and (device_id, hid) not in only:
                continue
            out.append(Presence(device_id, hid, e, lv, "positions", op, hname))
    return out


# -- transitions ----------------------------------------------------------------------------------
def phone_region_resolver(hotspots: HotSpotSet | None):
    """How a phone's region event names its region -> the hot spot it is, or None.

    A phone's regions are set on the phone: an iOS ``rid`` is the app's own id unless the force
    pushed its hot spots as waypoints with their ids, and Android sends only the region's name.
    So a phone's event is a hot spot's only when the fence set says so: its ``rid`` is a hot
    spot id, or its ``rid`` or name (``desc``) is a hot spot's id or name. Without a fence set
    no phone region is a hot spot (issue 19: kept apart in every report).
    """
    if hotspots is None:
        return lambda rid, desc: None
    ids = set(hotspots.ids)
    by_name = {}
    for hid, name in zip(hotspots.ids, hotspots.names, strict=True):
        by_name.setdefault(name.casefold(), hid)
        by_name.setdefault(hid.casefold(), hid)

    def resolve(rid: str | None, desc: str | None) -> str | None:
        if rid in ids:
            return rid
        for text in (rid, desc):
            if isinstance(text, str) and text.casefold() in by_name:
                return by_name[text.casefold()]
        return None

    return resolve


def presence_from_transitions(db: sqlite_utils.Database, start: int, end: int,
                              hotspots: HotSpotSet | None = None,
                              ) -> tuple[list[Presence], set[tuple[str, str]]]:
    """Device-level stays from enter/leave events, and the (device, hot spot) pairs they cover.

    Events are paired per device and hot spot in time order. A second enter without a leave in
    between (a reboot inside a hot spot) closes the first stay at the device's last fix before
    the new enter, and so does an enter that is never followed by a leave: the stay is marked
    open and credited only as far as the device's own fixes show it was still reporting, never
    to the end of the window. Phones' region events count only where
    :func:`phone_region_resolver` makes them a hot spot's.
    """
    lo = max(start, -(2**62)) - TRANSITION_LOOKBACK_S
    hi = min(end, 2**62) + TRANSITION_LOOKBACK_S
    rows = db.execute(
        "SELECT t.device_id, t.rid, t.desc, t.event, t.tst, d.source = 'owntracks'"
        " FROM transitions t LEFT JOIN devices d ON d.device_id = t.device_id"
        " WHERE t.tst >= ? AND t.tst < ? ORDER BY t.device_id, t.rid, t.tst, t.seq",
        (lo, hi)).fetchall()
    if any(row[5] for row in rows):
        resolve = phone_region_resolver(hotspots)
        mapped = []
        for device_id, rid, desc, event, tst, phone in rows:
            if phone:
                rid = resolve(rid, desc)
                if rid is None:
                    continue  # the phone's own region (home, office): not a hot spot
            mapped.append((device_id, rid, desc, event, tst))
        mapped.sort(key=lambda r: (r[0], r[1], r[4]))
        rows = mapped
    else:
        rows = [row[:5] for row in rows]
    pairs = {(d, r) for d, r, _, _, tst in rows if start <= tst < end}
    stays: list[Presence] = []
    opened: dict[tuple[str, str], tuple[int, str | None]] = {}

    def close_open(key: tuple[str, str], limit: int) -> None:
        enter, desc = opened.pop(key)
        last = db.execute(
            "SELECT max(tst) FROM positions WHERE device_id = ? AND tst >= ? AND tst < ?"
            " AND filtered IS NULL", (key[0], enter, limit)).fetchone()[0]
        stays.append(Presence(key[0], key[1], enter, max(enter, last or enter), "transitions",
                              True, desc))

    for device_id, rid, desc, event, tst in rows:
        key = (device_id, rid)
        if event == "enter":
            if key in opened:
                close_open(key, tst)
            opened[key] = (tst, desc)
        elif key in opened:
            enter, desc0 = opened.pop(key)
            stays.append(Presence(device_id, rid, enter, tst, "transitions", False,
                                  desc or desc0))
    for key in list(opened):
        close_open(key, hi)
    # A stay seen only through events outside the window still covers the pair.
    pairs |= {(p.device_id, p.hotspot) for p in stays if p.leave >= start and p.enter < end}
    return stays, pairs


# -- attribution and merging ----------------------------------------------------------------------
def attribute(stays: Iterable[Presence], device_spans: dict[str, list[attribution.Span]],
              crew_spans: dict[str, list[attribution.Span]] | None = None,
              ) -> list[tuple[str | None, Presence]]:
    """Split each stay at assignment boundaries and tag each piece with its collar number
    (:func:`gateway.fleet.attribution.split`); a vehicle's stay gives one piece per officer
    aboard (``crew_spans``, :func:`gateway.fleet.attribution.crew_spans`)."""
    crew_spans = crew_spans or {}
    out: list[tuple[str | None, Presence]] = []
    for p in stays:
        for collar, lo, hi in attribution.split(device_spans.get(p.device_id, []), p.enter,
                                                p.leave, crew_spans.get(p.device_id, ())):
            out.append((collar, replace(p, enter=lo, leave=hi)))
    return out


def merge_presence(pieces: Iterable[tuple[str | None, Presence]], rules: VisitRules,
                   window: tuple[int, int] = OPEN_WINDOW) -> list[Visit]:
    """Merge per officer and hot spot, apply the minimum visit, then clip to ``window``."""
    groups: dict[tuple, list[tuple[str | None, Presence]]] = defaultdict(list)
    for officer, p in pieces:
        who = officer if officer is not None else ("device", p.device_id)
        groups[(who, p.hotspot)].append((officer, p))
    visits: list[Visit] = []
    for (_, hotspot), items in groups.items():
        items.sort(key=lambda item: (item[1].enter, item[1].leave))
        current: Visit | None = None
        merged: list[Visit] = []
        for officer, p in items:
            if current is not None and p.enter - current.leave <= rules.merge_gap_s:
                if p.leave >= current.leave:
                    current.open = p.open
                current.leave = max(current.leave, p.leave)
                if p.device_id not in current.devices:
                    current.devices = (*current.devices, p.device_id)
                if p.method not in current.method.split("+"):
                    current.method = "+".join(sorted({*current.method.split("+"), p.method}))
                current.name = current.name or p.name
                continue
            current = Visit(officer, hotspot, p.name, p.enter, p.leave, (p.device_id,),
                            p.method, open=p.open)
            merged.append(current)
        for v in merged:
            if v.leave - v.enter >= rules.min_visit_s:
                v.devices = tuple(sorted(v.devices))
                visits.append(v)
    visits = clip_visits(visits, window)
    visits.sort(key=lambda v: (v.enter, v.who, v.hotspot))
    return visits


def compute_visits(db: sqlite_utils.Database, hotspots: HotSpotSet | None = None,
                   window: tuple[int, int] = OPEN_WINDOW, rules: VisitRules = DEFAULT_RULES,
                   ) -> list[Visit]:
    """All visits in ``window`` (``[start, end)`` epoch s), from every source, merged.

    Without ``hotspots`` only transitions are used (positions cannot be placed in a hot spot).
    """
    start, end = window
    stays, covered = presence_from_transitions(db, start, end, hotspots)
    if hotspots is not None:
        # A device's word that it entered a hot spot the set does not have (a stale fence set,
        # a damaged or forged message) is kept in ``transitions`` but is no visit: see
        # :func:`unknown_hotspot_transitions` for what a report says about them.
        known = set(hotspots.ids)
        stays = [p for p in stays if p.hotspot in known]
    if hotspots is not None and len(hotspots):
        lo = start - rules.lookback_s() if start > OPEN_WINDOW[0] else start
        hi = end + rules.interp_gap_s if end < OPEN_WINDOW[1] else end
        tracks = load_tracks(db, hotspots.frame, lo, hi, rules)
        stays += presence_from_positions(tracks, hotspots, rules, skip=covered)
        stays = [replace(p, name=p.name or hotspots.name_of(p.hotspot)) for p in stays]
    devices = {p.device_id for p in stays}
    pieces = attribute(stays, attribution.spans(db, devices), attribution.crew_spans(db, devices))
    return merge_presence(pieces, rules, window)


def unknown_hotspot_transitions(db: sqlite_utils.Database, hotspots: HotSpotSet,
                                window: tuple[int, int] = OPEN_WINDOW) -> dict[str, int]:
    """Transitions in ``window`` for hot spots that ``hotspots`` does not have, per hot spot id:
    :func:`compute_visits` makes no visit of them, and a report says so."""
    start, end = window
    known = set(hotspots.ids)
    counts: dict[str, int] = defaultdict(int)
    for (rid,) in db.execute("SELECT rid FROM transitions WHERE tst >= ? AND tst < ?",
                             (max(start, -(2**62)), min(end, 2**62))):
        if rid not in known:
            counts[rid] += 1
    return dict(counts)


def union_seconds(intervals: Iterable[tuple[int, int]]) -> int:
    """Length of the union of ``[a, b)`` intervals: time with at least one officer present."""
    total = 0
    cur_a = cur_b = None
    for a, b in sorted(intervals):
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += cur_b - cur_a
    return total


def clip_spans(spans: Iterable[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of the ``[a, b)`` spans that lie inside ``[lo, hi)``."""
    return [(max(a, lo), min(b, hi)) for a, b in spans if b > lo and a < hi]


def clip_visits(visits: Iterable[Visit], window: tuple[int, int]) -> list[Visit]:
    """Copies of the visits that overlap ``window``, cut at its edges (flags set)."""
    start, end = window
    out = []
    for v in visits:
        if v.leave <= start or v.enter >= end:
            continue
        c = replace(v)
        if c.enter < start:
            c.enter, c.clipped_start = start, True
        if c.leave > end:
            c.leave, c.clipped_end = end, True
        out.append(c)
    return out
