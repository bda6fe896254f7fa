"""The planning pages' work: targeting (harm and Gi* per cell, proposed hot spots) and seeded
taskings, from a page's query parameters, with the results kept briefly so that the map's data
request and the downloads that follow a page do not compute everything again.

Everything here is a thin layer over :mod:`planning`: the same functions ``hotspots plan
hotspots``, ``hotspots plan taskings`` and ``hotspots report hotspot`` call, with the same
defaults, so the web app and the command line give the same answer for the same inputs.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from planning import taskings_draw as td
from planning.harm import HarmTable, load_harm
from planning.proposals import PlanningError, Settings, Targeting, propose, to_geojson

_MONTH = re.compile(r"^\d{4}-\d{2}$")
#: Taskings drawn in one request at most (a week of a dozen hot spots is a second on a Pi).
MAX_DAYS = 31


class FormError(ValueError):
    """A planning form's field is missing or wrong (the message names it)."""


class Recent:
    """The last few results by key: one map request and a download or two follow each page."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, make: Callable):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()  # outside the lock: two different keys compute side by side
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


_harm_table: HarmTable | None = None


def harm_table() -> HarmTable:
    """The shipped harm index (``planning/harm_weights.csv``), read once."""
    global _harm_table
    if _harm_table is None:
        _harm_table = load_harm()
    return _harm_table


def _number(params: Mapping[str, str], name: str, default: float | None, low: float,
            high: float, integer: bool = False) -> float | int | None:
    text = (params.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise FormError(f"{name}: {text!r} is not a{'whole ' if integer else ' '}number"
                        ) from None
    if not low <= value <= high:
        raise FormError(f"{name}: {value:g} is outside {low:g}-{high:g}")
    return value


@dataclass(frozen=True)
class TargetingForm:
    """The harm map's and proposals' inputs, as the page's form gives them."""

    months: tuple[str, str] | None
    settings: Settings

    @classmethod
    def parse(cls, params: Mapping[str, str], tz: str) -> TargetingForm:
        first = (params.get("from_month") or "").strip()
        last = (params.get("to_month") or "").strip()
        months = None
        if first or last:
            first, last = first or "0000-01", last or "9999-12"
            for m in (first, last):
                if not _MONTH.match(m):
                    raise FormError(f"months are YYYY-MM, got {m!r}")
            if last < first:
                raise FormError("the last month is before the first")
            months = (first, last)
        measure = params.get("measure") or "harm"
        if measure not in ("harm", "count"):
            raise FormError("measure is harm or count")
        grid = params.get("grid") or "square"
        if grid not in ("square", "h3"):
            raise FormError("grid is square or h3")
        share = _number(params, "share", None, 0.01, 1.0)
        top = _number(params, "top", None if share else 10, 1, 200, integer=True)
        settings = Settings(
            cell_m=_number(params, "cell_m", 150.0, 25.0, 2000.0), grid=grid, top=top,
            share=share, max_radius_m=_number(params, "max_radius_m", 150.0, 10.0, 5000.0),
            min_spacing_m=_number(params, "min_spacing_m", 500.0, 0.0, 20000.0),
            alpha=_number(params, "alpha", 0.05, 0.0001, 0.5), measure=measure, tz=tz)
        return cls(months, settings)

    def query(self) -> dict[str, str]:
        """The form's fields, for links that repeat it."""
        s = self.settings
        out = {"cell_m": f"{s.cell_m:g}", "grid": s.grid, "max_radius_m": f"{s.max_radius_m:g}",
               "min_spacing_m": f"{s.min_spacing_m:g}", "alpha": f"{s.alpha:g}",
               "measure": s.measure, "top": "" if s.top is None else str(s.top),
               "share": "" if s.share is None else f"{s.share:g}"}
        if self.months:
            out["from_month"], out["to_month"] = self.months
        return out


def crimes_stamp(db: sqlite_utils.Database) -> tuple[int, int]:
    """Changes when crimes are imported: results computed before are not reused."""
    return tuple(db.execute("SELECT count(*), coalesce(max(id), 0) FROM crimes").fetchone())


def months_held(db: sqlite_utils.Database) -> tuple[str, str] | None:
    """The first and last month of the stored crimes."""
    row = db.execute("SELECT min(month), max(month) FROM crimes").fetchone()
    return None if row[0] is None else (row[0], row[1])


def targeting(db: sqlite_utils.Database, form: TargetingForm, cache: Recent) -> Targeting:
    """Grid, Gi* and proposals for the form (as ``hotspots plan hotspots``).

    :raises PlanningError: no crimes (in the months), or settings targeting refuses.
    """
    from planning.crime import load_crimes
    from planning.grid import GridError

    def make() -> Targeting:
        crimes = load_crimes(db, form.months)
        if len(crimes) == 0 and form.months:
            raise PlanningError(f"no crimes in {form.months[0]} to {form.months[1]}")
        try:
            return propose(crimes, harm_table(), form.settings)
        except GridError as exc:
            raise PlanningError(str(exc)) from exc

    key = ("targeting", tuple(sorted(form.query().items())), form.settings.tz, crimes_stamp(db))
    return cache.get(key, make)


def proposals_geojson(t: Targeting) -> dict:
    """The proposals as the fence editor and ``hotspots fences validate`` take them."""
    return to_geojson(t)


# -- taskings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskingsForm:
    """The taskings page's inputs: which saved hot spot set, days, shifts, who, seed."""

    set_id: int
    first: dt.date
    last: dt.date
    shifts: tuple[str, ...]
    officers: tuple[str, ...]
    seed: int
    per_day: int | None
    visits: int
    visit_min: int
    window_min: int
    min_gap_min: int
    mode: str

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> TaskingsForm:
        try:
            set_id = int(params.get("set") or "")
        except ValueError:
            raise FormError("choose a saved hot spot set") from None
        try:
            first = dt.date.fromisoformat(params.get("from") or "")
            last = dt.date.fromisoformat(params.get("to") or "")
        except ValueError:
            raise FormError("the first and last days are YYYY-MM-DD") from None
        if last < first:
            raise FormError("the last day is before the first")
        if (last - first).days >= MAX_DAYS:
            raise FormError(f"at most {MAX_DAYS} days at a time")
        shifts = tuple(line.strip() for line in (params.get("shifts") or "").splitlines()
                       if line.strip())
        officers = tuple(line.strip() for line in (params.get("officers") or "").splitlines()
                         if line.strip())
        if not shifts:
            raise FormError("give at least one shift, e.g. late=15:00-23:00")
        if not officers:
            raise FormError("say who works each shift, e.g. late=4521,4522,team:B-relief")
        seed = _number(params, "seed", None, 0, 2**63 - 1, integer=True)
        if seed is None:
            raise FormError("give the draw's seed (it is recorded in every row)")
        mode = params.get("mode") or "walk"
        if mode not in ("walk", "drive"):
            raise FormError("travel mode is walk or drive")
        return cls(set_id, first, last, shifts, officers, seed,
                   _number(params, "per_day", None, 1, 500, integer=True),
                   _number(params, "visits", 3, 1, 12, integer=True),
                   _number(params, "visit_min", 15, 1, 240, integer=True),
                   _number(params, "window_min", 60, 1, 480, integer=True),
                   _number(params, "min_gap_min", 120, 0, 1440, integer=True), mode)

    def query(self) -> dict[str, str]:
        """The form's fields, for download links and the import form."""
        return {"set": str(self.set_id), "from": self.first.isoformat(),
                "to": self.last.isoformat(), "shifts": "\n".join(self.shifts),
                "officers": "\n".join(self.officers), "seed": str(self.seed),
                "per_day": "" if self.per_day is None else str(self.per_day),
                "visits": str(self.visits), "visit_min": str(self.visit_min),
                "window_min": str(self.window_min), "min_gap_min": str(self.min_gap_min),
                "mode": self.mode}

    def assignees(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for text in self.officers:
            if "=" not in text:
                raise FormError(f"{text!r}: use SHIFT=COLLAR,COLLAR or SHIFT=team:NAME")
            shift, people = text.split("=", 1)
            names = [p.strip() for p in people.split(",") if p.strip()]
            if not names:
                raise FormError(f"{text!r} names nobody")
            out.setdefault(shift.strip(), []).extend(names)
        return out


def draw_taskings(db: sqlite_utils.Database, form: TaskingsForm, tz: str,
                  cache: Recent) -> td.Draw:
    """The seeded draw for the form, over saved hot spot set ``form.set_id`` (as ``hotspots
    plan taskings``: the same seed and set give the same taskings).

    :raises FormError: unknown set, or inputs the draw refuses.
    """
    from fences.validate import FenceError
    from gateway.web import fence_sets

    def make() -> td.Draw:
        row = fence_sets.get(db, form.set_id)
        if row is None:
            raise FormError(f"no saved hot spot set {form.set_id}")
        try:
            targets = td.load_targets(row.geojson)
            settings = td.Settings(form.seed, [td.Shift.parse(s) for s in form.shifts],
                                   form.assignees(), form.per_day, form.visits, form.visit_min,
                                   form.window_min, form.min_gap_min, form.mode, tz=tz)
            return td.draw(targets, form.first, form.last, settings)
        except (td.DrawError, FenceError) as exc:
            raise FormError(str(exc)) from exc

    return cache.get(("taskings", form, tz), make)


def journeys(result: td.Draw) -> list[dict]:
    """Visits grouped by day, shift and officer (or team), each in journey order."""
    groups: dict[tuple, list[td.Visit]] = {}
    for v in result.visits:
        groups.setdefault((v.day, v.shift, v.assignee), []).append(v)
    out = []
    for (day, shift, who), visits in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1], kv[0][2])):
        visits.sort(key=lambda v: v.order)
        out.append({"day": day.isoformat(), "weekday": f"{day:%A}", "shift": shift,
                    "assignee": f"team {who[5:]}" if who.startswith("team:") else who,
                    "visits": [{"order": v.order, "hotspot": v.target.id,
                                "name": v.target.name,
                                "arrive": f"{v.planned:%H:%M}" if v.planned else "",
                                "window": f"{v.window_start:%H:%M}-{v.window_end:%H:%M}",
                                "travel_min": round(v.travel_s / 60, 1)} for v in visits]})
    return out


def files(result: td.Draw) -> dict[str, bytes]:
    """``taskings.csv``, ``design.csv`` and ``sheets.zip``, written by :mod:`planning` itself."""
    with tempfile.TemporaryDirectory(prefix="hotspots-taskings-") as tmp:
        path = td.write_taskings(result, Path(tmp) / "taskings.csv")
        out = {"taskings.csv": path.read_bytes(),
               "design.csv": path.with_suffix(".design.csv").read_bytes()}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for sheet in td.write_sheets(result, Path(tmp) / "sheets"):
                zf.write(sheet, f"sheets/{sheet.name}")
        out["sheets.zip"] = buffer.getvalue()
    return out


def assignees_of(result: td.Draw) -> set[str]:
    """Officers and teams in the draw (for the audit log)."""
    return {v.assignee for v in result.visits}
