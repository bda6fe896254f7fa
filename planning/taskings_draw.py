"""Daily taskings drawn at random: which hot spot gets visits on which day and shift, by whom.

The draw, reproducible from its seed (recorded in every row's note and in the design file):

1. **Design.** Each day, ``per_day`` of the hot spots are drawn without replacement, with
   probability in proportion to their harm (Southend drew 8 of 20 each day; Bedfordshire 7 of
   21): they are that day's *patrol* hot spots, the others its *controls*. With ``per_day`` =
   all, every hot spot is patrolled every day (no controls).
2. **Visits.** A patrol hot spot gets ``visits`` visits that day. Each is put in an hour drawn
   in proportion to the hot spot's crime at that hour of that weekday (its ``hour_shares`` and
   ``weekday_shares`` from ``hotspots plan hotspots``; even when it has none), among the hours of
   shifts that have officers. Visits to one hot spot start at least ``min_gap_min`` apart
   (Koper: roughly every two hours); a visit that cannot be placed is counted.
3. **Window.** Each visit has a ``window_min`` window starting at its hour, within which the
   officer spends ``visit_min`` minutes (15 by default) in the hot spot.
4. **Journeys.** Per day and shift, OR-tools (:mod:`planning.routing`) shares the visits
   among the shift's officers or teams and orders each journey to minimise travel time within
   the windows; travel times are straight-line × detour, or shortest paths over a road network
   the user supplies (:mod:`planning.roads`).

Output: the tasking CSV :func:`gateway.reports.taskings.import_taskings` reads (``date, hotspot,
start, end, officer, team, required_minutes, note``; times local, in ``tz``), a design CSV
(``date, hotspot, arm, weight, seed``), and a printable sheet per officer or team.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from planning import routing
from planning.projection import to_bng

TASKING_COLUMNS = ["date", "hotspot", "start", "end", "officer", "team", "required_minutes",
                   "note"]


class DrawError(ValueError):
    """The taskings cannot be drawn with these inputs."""


@dataclass
class Shift:
    """A named shift, local wall-clock ``start``-``end`` (ending next day when end ≤ start)."""

    name: str
    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> Shift:
        """``late=15:00-23:00``."""
        try:
            name, span = text.split("=", 1)
            a, b = span.split("-", 1)
            return cls(name.strip(), dt.time.fromisoformat(a.strip().zfill(5)),
                       dt.time.fromisoformat(b.strip().zfill(5)))
        except ValueError:
            raise DrawError(f"bad shift {text!r}: use NAME=HH:MM-HH:MM, e.g. late=15:00-23:00"
                            ) from None

    def hours(self) -> list[int]:
        """Local hours of the day the shift covers (whole hours from its start)."""
        h, out = self.start.hour, []
        length = self.length_s() // 3600
        for k in range(length):
            out.append((h + k) % 24)
        return out

    def length_s(self) -> int:
        a = self.start.hour * 3600 + self.start.minute * 60
        b = self.end.hour * 3600 + self.end.minute * 60
        return (b - a) % 86400 or 86400

    def begins(self, day: dt.date, tz: dt.tzinfo) -> dt.datetime:
        return dt.datetime.combine(day, self.start, tz)


@dataclass
class Target:
    """A hot spot to visit: its centre (BNG metres), harm and time profile."""

    id: str
    name: str
    x: float
    y: float
    harm: float
    hour_shares: list[float]
    weekday_shares: list[float]
    profile_tz: str = "UTC"  # the zone the shares' hours and weekdays are in


@dataclass
class Settings:
    """The knobs of :func:`draw`."""

    seed: int
    shifts: list[Shift]
    assignees: dict[str, list[str]]  # shift name -> collar numbers or "team:NAME"
    per_day: int | None = None
    visits: int = 3
    visit_min: int = 15
    window_min: int = 60
    min_gap_min: int = 120
    mode: str = "walk"
    detour: float = routing.DEFAULT_DETOUR
    station: tuple[float, float] | None = None  # lon, lat
    tz: str = "UTC"
    roads: str | None = None  # GeoJSON road network (planning.roads) instead of detour
    solution_limit: int = 40
    time_limit_s: float = 2.0


@dataclass
class Visit:
    """One tasked visit, once routed."""

    day: dt.date
    shift: str
    target: Target
    window_start: dt.datetime
    window_end: dt.datetime
    assignee: str = ""
    order: int = 0
    planned: dt.datetime | None = None
    travel_s: int = 0


@dataclass
class Draw:
    """What :func:`draw` produced."""

    settings: Settings
    visits: list[Visit]
    design: list[tuple[str, str, str, float]]  # date, hotspot, arm, weight
    not_placed: list[tuple[str, str, str]] = field(default_factory=list)  # date, hotspot, why
    travel_s: int = 0
    random_travel_s: int = 0
    shifts_routed: int = 0


def load_targets(path: str | Path | dict) -> list[Target]:
    """Hot spots from a GeoJSON file or document (any valid hot spot set; harm and profile
    properties from ``hotspots plan hotspots`` are used when present)."""
    from fences.validate import validate

    report = validate(path if isinstance(path, dict) else Path(path))
    report.raise_for_errors()
    try:
        doc = path if isinstance(path, dict) else json.loads(
            Path(path).read_text(encoding="utf-8"))
        profile_tz = str((doc.get("properties") or {}).get("profile_tz") or "UTC")
        ZoneInfo(profile_tz)
    except (ValueError, KeyError, AttributeError):
        profile_tz = "UTC"
    out = []
    for h in report.hotspots:
        if h.circle:
            lon, lat = h.circle[0], h.circle[1]
        else:
            c = h.geometry.centroid
            lon, lat = c.x, c.y
        x, y = to_bng(np.array([lon]), np.array([lat]))
        p = h.properties
        harm = float(p.get("harm_days") or 1.0)
        hours = p.get("hour_shares") or []
        days = p.get("weekday_shares") or []
        out.append(Target(h.fence_id, h.name, float(x[0]), float(y[0]), max(harm, 1e-9),
                          list(hours) if len(hours) == 24 else [],
                          list(days) if len(days) == 7 else [], profile_tz))
    if not out:
        raise DrawError(f"{'the set' if isinstance(path, dict) else path} has no hot spots")
    return out


def _weighted_sample(rng: random.Random, items: list, weights: list[float], k: int) -> list:
    """``k`` distinct items drawn one at a time with probability in proportion to weight."""
    items, weights, out = list(items), list(weights), []
    for _ in range(min(k, len(items))):
        i = rng.choices(range(len(items)), weights=weights)[0]
        out.append(items.pop(i))
        weights.pop(i)
    return out


def draw(targets: list[Target], first: dt.date, last: dt.date, s: Settings) -> Draw:
    """Draw, place and route the taskings from ``first`` to ``last`` (inclusive)."""
    if last < first:
        raise DrawError("the last day is before the first")
    if not s.shifts:
        raise DrawError("give at least one shift")
    staffed = [sh for sh in s.shifts if s.assignees.get(sh.name)]
    unknown = set(s.assignees) - {sh.name for sh in s.shifts}
    if unknown:
        raise DrawError(f"officers given for unknown shift(s): {', '.join(sorted(unknown))}")
    if not staffed:
        raise DrawError("no shift has officers (--officers SHIFT=COLLAR,COLLAR,...)")
    if s.visit_min <= 0 or s.window_min < s.visit_min:
        raise DrawError("the window must be at least as long as the visit")
    tz = ZoneInfo(s.tz)
    rng = random.Random(s.seed)
    per_day = len(targets) if s.per_day is None else s.per_day
    if not 1 <= per_day <= len(targets):
        raise DrawError(f"per-day must be between 1 and {len(targets)}")
    result = Draw(s, [], [])
    day = first
    while day <= last:
        chosen = _weighted_sample(rng, targets, [t.harm for t in targets], per_day)
        ids = {t.id for t in chosen}
        for t in targets:
            arm = "patrol" if t.id in ids else "control"
            result.design.append((day.isoformat(), t.id, arm, round(t.harm, 3)))
        for t in sorted(chosen, key=lambda t: t.id):
            result.visits += _place(rng, t, day, staffed, s, tz, result.not_placed)
        day += dt.timedelta(days=1)
    _route(result, s, tz)
    return result


def _place(rng, t: Target, day: dt.date, shifts: list[Shift], s: Settings, tz,
           not_placed) -> list[Visit]:
    """Place a hot spot's visits for the day in hours drawn from its profile."""
    slots = []  # (shift, hour start local datetime, weight)
    ptz = ZoneInfo(t.profile_tz)
    for sh in shifts:
        begin = sh.begins(day, tz)
        for k in range(len(sh.hours())):
            start = begin + dt.timedelta(hours=k)
            if start + dt.timedelta(minutes=s.window_min) > begin + dt.timedelta(
                    seconds=sh.length_s()):
                continue
            there = start.astimezone(ptz)  # the profile's hours may be in another zone
            wd, hour = there.weekday(), there.hour
            w = (t.hour_shares[hour] if t.hour_shares else 1.0) * (
                t.weekday_shares[wd] * 7 if t.weekday_shares else 1.0)
            slots.append((sh, start, w + 1e-6))  # every hour stays possible, if unlikely
    placed: list[Visit] = []
    gap = dt.timedelta(minutes=s.min_gap_min)
    for _ in range(s.visits):
        ok = [(sh, st, w) for sh, st, w in slots
              if all(abs(st - v.window_start) >= gap for v in placed)]
        if not ok:
            not_placed.append((day.isoformat(), t.id, f"no hour left {s.min_gap_min} min from"
                                                     " its other visits"))
            continue
        sh, st, _ = rng.choices(ok, weights=[w for _, _, w in ok])[0]
        placed.append(Visit(day, sh.name, t, st, st + dt.timedelta(minutes=s.window_min)))
    return placed


def _route(result: Draw, s: Settings, tz) -> None:
    """Share each day-shift's visits among its officers and order the journeys."""
    groups: dict[tuple[dt.date, str], list[Visit]] = defaultdict(list)
    for v in result.visits:
        groups[(v.day, v.shift)].append(v)
    speed = routing.speed_for(s.mode)
    if s.station:
        sx, sy = to_bng(np.array([s.station[0]]), np.array([s.station[1]]))
        station = (float(sx[0]), float(sy[0]))
    else:
        ts = {v.target.id: v.target for v in result.visits}.values()
        station = (float(np.mean([t.x for t in ts])) if ts else 0.0,
                   float(np.mean([t.y for t in ts])) if ts else 0.0)
    # one matrix over the station and every hot spot visited; each shift takes its rows
    spots = sorted({v.target.id: v.target for v in result.visits}.values(), key=lambda t: t.id)
    row = {t.id: k + 1 for k, t in enumerate(spots)}
    points = np.array([station] + [(t.x, t.y) for t in spots])
    if s.roads:
        from planning.roads import RoadError, RoadNetwork

        try:
            full = RoadNetwork.load(s.roads).travel_matrix(points, speed)
        except RoadError as exc:
            raise DrawError(str(exc)) from exc
    else:
        full = routing.travel_matrix(points, speed, s.detour)
    shifts = {sh.name: sh for sh in s.shifts}
    mix = np.random.default_rng(s.seed)
    kept: list[Visit] = []
    for (day, name), visits in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        sh = shifts[name]
        begin = sh.begins(day, tz)
        service = s.visit_min * 60
        stops = [routing.Stop(k, v.target.x, v.target.y,
                              int((v.window_start - begin).total_seconds()),
                              int((v.window_end - begin).total_seconds()) - service)
                 for k, v in enumerate(visits)]
        take = np.array([0] + [row[v.target.id] for v in visits])
        matrix = full[np.ix_(take, take)]
        people = s.assignees[name]
        plan = routing.solve(stops, matrix, len(people), service, sh.length_s(),
                             s.solution_limit, s.time_limit_s)
        result.shifts_routed += 1
        result.travel_s += plan.travel_s
        result.random_travel_s += routing.random_order_travel(plan, matrix, mix)
        for route in plan.routes:
            here = 0
            for order, (k, start_s) in enumerate(zip(route.stops, route.starts_s,
                                                     strict=True), 1):
                v = visits[k]
                v.assignee = people[route.vehicle]
                v.order = order
                v.planned = begin + dt.timedelta(seconds=int(start_s))
                v.travel_s = int(matrix[here, k + 1])
                here = k + 1
                kept.append(v)
        for k in plan.dropped:
            v = visits[k]
            result.not_placed.append((v.day.isoformat(), v.target.id,
                                      f"{name} shift: no officer can reach it in its window"))
    kept.sort(key=lambda v: (v.window_start, v.target.id))
    result.visits = kept


def _row(v: Visit, s: Settings, arm: str) -> list[str]:
    officer, team = ("", v.assignee[5:]) if v.assignee.startswith("team:") else (v.assignee, "")
    note = (f"seed={s.seed} arm={arm} shift={v.shift} order={v.order}"
            f" arrive={v.planned:%H:%M} travel_min={v.travel_s / 60:.1f}")
    return [v.window_start.strftime("%Y-%m-%d"), v.target.id, v.window_start.strftime("%H:%M"),
            v.window_end.strftime("%H:%M"), officer, team, str(s.visit_min), note]


def write_taskings(result: Draw, path: str | Path) -> Path:
    """Write the tasking CSV (and ``<name>.design.csv`` beside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(TASKING_COLUMNS)
        for v in result.visits:
            w.writerow(_row(v, result.settings, "patrol"))
    design = path.with_suffix(".design.csv")
    with design.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["date", "hotspot", "arm", "weight", "seed"])
        for row in result.design:
            w.writerow([*row, result.settings.seed])
    return path


def write_sheets(result: Draw, out_dir: str | Path) -> list[Path]:
    """One printable text sheet per officer or team: each shift's visits in journey order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = result.settings
    by_who: dict[str, list[Visit]] = defaultdict(list)
    for v in result.visits:
        by_who[v.assignee].append(v)
    paths = []
    for who, visits in sorted(by_who.items()):
        label = f"Team {who[5:]}" if who.startswith("team:") else f"Officer {who}"
        how = "walk" if s.mode == "walk" else "drive"
        lines = [f"{label}: hot spot patrols",
                 f"draw seed {s.seed}; stay {s.visit_min} minutes in the hot spot, inside the"
                 " window; go in the order shown"]
        visits.sort(key=lambda v: (v.day, v.shift, v.order))
        key = None
        for v in visits:
            if (v.day, v.shift) != key:
                key = (v.day, v.shift)
                lines += ["", f"{v.day:%A %d %B %Y}, {v.shift} shift", "-" * 72]
            lines.append(f"{v.order:2d}. arrive {v.planned:%H:%M}  {v.target.id:<8}"
                         f" {v.target.name[:30]:<30} window {v.window_start:%H:%M}-"
                         f"{v.window_end:%H:%M}  ({v.travel_s / 60:.0f} min {how})")
            lines.append("    [ ] arrived ____   [ ] left ____   notes: ____________________")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in who)
        p = out / f"{safe}.txt"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


def summary_lines(result: Draw) -> list[str]:
    """What the draw did, for people."""
    s = result.settings
    patrol = sum(1 for d in result.design if d[2] == "patrol")
    ratio = (result.travel_s / result.random_travel_s) if result.random_travel_s else 1.0
    lines = [
        f"seed {s.seed}: {len(result.visits)} visits tasked over {result.shifts_routed} shifts;"
        f" {patrol} patrol and {len(result.design) - patrol} control hot spot-days",
        f"travel {result.travel_s / 3600:.1f} h in total ({ratio:.2f} of the same visits in"
        f" random order, {result.random_travel_s / 3600:.1f} h)",
    ]
    if result.not_placed:
        lines.append(f"{len(result.not_placed)} visits not tasked:")
        lines += [f"  {d} {h}: {why}" for d, h, why in result.not_placed[:20]]
    return lines


def settings_json(s: Settings) -> str:
    """The settings, to record beside the output."""
    d = dict(s.__dict__)
    d["shifts"] = [f"{x.name}={x.start:%H:%M}-{x.end:%H:%M}" for x in s.shifts]
    return json.dumps(d, default=str)
