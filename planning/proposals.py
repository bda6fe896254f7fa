"""Proposed hot spots: rank Gi* hot cells by harm and draw polygons under practical limits.

The hottest significant cell (by harm, or count) seeds a hot spot; its significant neighbours
join, hottest first, while the whole still fits in a circle of ``max_radius_m`` (Birmingham's
hot spots: at most 150 m radius). A seed whose hot spot would lie closer than
``min_spacing_m`` to one already chosen is passed over (centres at least 500 m apart), so one
patrol does not cover two hot spots. Selection stops at ``top`` hot spots or once they hold
``share`` of all harm in the area, whichever is given (top 20 when neither is).

The GeoJSON written is a hot spot file :mod:`fences.validate` accepts as it is (``id``,
``name``, ``density``), with the evidence in the other properties: crimes, harm, Gi* z and q,
cells, and the time profile (hour and weekday shares, or why there is none).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from shapely.geometry import Polygon, mapping

from planning.aoristic import Profile, profile
from planning.crime import Crimes
from planning.grid import Grid, h3_grid, square_grid
from planning.harm import HarmTable
from planning.hotspot_stats import GiStar, hot_cells
from planning.projection import to_wgs84


class PlanningError(ValueError):
    """Targeting cannot run with these inputs."""


@dataclass
class Settings:
    """The knobs of :func:`propose` (defaults: Birmingham's 150 m radius and 500 m spacing)."""

    cell_m: float = 150.0
    grid: str = "square"
    top: int | None = None
    share: float | None = None
    max_radius_m: float = 150.0
    min_spacing_m: float = 500.0
    alpha: float = 0.05
    measure: str = "harm"
    tz: str = "Europe/London"
    density: str = "high"


@dataclass
class ProposedHotSpot:
    """One proposed hot spot: its cells, outline (BNG) and evidence."""

    rank: int
    cells: list[int]
    outline: Polygon  # BNG metres
    centre: tuple[float, float]
    radius_m: float
    crimes: int
    harm: float
    z_max: float
    q_min: float
    profile: Profile | None = None
    harm_profile: Profile | None = None

    @property
    def id(self) -> str:
        return f"HS-{self.rank:03d}"


@dataclass
class Targeting:
    """Everything :func:`propose` worked out."""

    grid: Grid
    gi: GiStar
    hotspots: list[ProposedHotSpot]
    total_crimes: int
    total_harm: float
    settings: Settings
    no_harm_weight: dict[str, int] = field(default_factory=dict)
    skipped_spacing: int = 0

    @property
    def share_of_harm(self) -> float:
        return sum(h.harm for h in self.hotspots) / self.total_harm if self.total_harm else 0.0

    @property
    def share_of_crime(self) -> float:
        return sum(h.crimes for h in self.hotspots) / self.total_crimes if self.total_crimes \
            else 0.0


def build_grid(crimes: Crimes, harm: np.ndarray, settings: Settings) -> Grid:
    """Count and harm per cell, on the grid the settings ask for."""
    if settings.grid == "square":
        return square_grid(crimes.x, crimes.y, harm, settings.cell_m)
    if settings.grid == "h3":
        return h3_grid(crimes.lon, crimes.lat, harm, settings.cell_m)
    raise PlanningError(f"grid must be square or h3, got {settings.grid!r}")


def propose(crimes: Crimes, table: HarmTable, settings: Settings | None = None) -> Targeting:
    """Grid, Gi*, ranking and proposed hot spots for ``crimes``.

    :raises PlanningError: on bad settings or no crimes.
    """
    s = settings or Settings()
    if len(crimes) == 0:
        raise PlanningError("no crimes in the database (import some with hotspots crime import)")
    if s.top is not None and s.top < 1:
        raise PlanningError("top must be at least 1")
    if s.share is not None and not 0 < s.share <= 1:
        raise PlanningError("share must be in (0, 1]")
    if s.measure not in ("harm", "count"):
        raise PlanningError(f"measure must be harm or count, got {s.measure!r}")
    if s.max_radius_m <= 0 or s.min_spacing_m < 0:
        raise PlanningError("max radius must be positive and min spacing not negative")
    weights, missing = table.weights(crimes.category, crimes.code)
    harm = np.array(weights)
    grid = build_grid(crimes, harm, s)
    values = grid.harm if s.measure == "harm" else grid.count
    if values.sum() <= 0:
        raise PlanningError(f"every crime weighs 0 ({s.measure}): nothing to rank; check the harm"
                            " table")
    gi = hot_cells(grid, values, s.alpha)
    hotspots, skipped = _select(grid, gi, values, s)
    tz = ZoneInfo(s.tz)
    for h in hotspots:
        mask = np.isin(grid.crime_cell, h.cells)
        h.profile = profile(crimes.from_ts[mask], crimes.to_ts[mask], tz)
        h.harm_profile = profile(crimes.from_ts[mask], crimes.to_ts[mask], tz, harm[mask])
    return Targeting(grid, gi, hotspots, len(crimes), float(harm.sum()), s, missing, skipped)


def _select(grid: Grid, gi: GiStar, values: np.ndarray, s: Settings,
            ) -> tuple[list[ProposedHotSpot], int]:
    candidates = np.flatnonzero(gi.hot & (values > 0))
    candidates = candidates[np.lexsort((-gi.z[candidates], -values[candidates]))]
    used: set[int] = set()
    chosen: list[ProposedHotSpot] = []
    skipped = 0
    total = float(values.sum())
    hot = set(candidates.tolist())
    got = 0.0
    for seed in candidates.tolist():
        if seed in used:
            continue
        if s.top is not None and len(chosen) >= s.top:
            break
        if s.top is None and s.share is None and len(chosen) >= 20:
            break
        if s.share is not None and got >= s.share * total:
            break
        cells = [seed]
        shape = Polygon(grid.polygon_xy(seed))
        if shapely.minimum_bounding_radius(shape) > s.max_radius_m:
            skipped += 1  # a single cell larger than the limit: the cell size is too big
            continue
        while True:
            frontier = {int(n) for c in cells for n in grid.neighbours_of(c)
                        if int(n) in hot and int(n) not in used and int(n) not in cells}
            grown = False
            for n in sorted(frontier, key=lambda k: -values[k]):
                trial = shapely.union(shape, Polygon(grid.polygon_xy(n)))
                if shapely.minimum_bounding_radius(trial) <= s.max_radius_m:
                    cells.append(n)
                    shape = trial
                    grown = True
                    break
            if not grown:
                break
        circle = shapely.minimum_bounding_circle(shape)
        centre = (circle.centroid.x, circle.centroid.y)
        if any(np.hypot(centre[0] - h.centre[0], centre[1] - h.centre[1]) < s.min_spacing_m
               for h in chosen):
            skipped += 1
            continue
        used.update(cells)
        idx = np.array(cells)
        chosen.append(ProposedHotSpot(
            len(chosen) + 1, cells, shapely.normalize(shape).buffer(0), centre,
            float(shapely.minimum_bounding_radius(shape)), int(grid.count[idx].sum()),
            float(grid.harm[idx].sum()), float(gi.z[idx].max()), float(gi.q[idx].min())))
        got += float(values[idx].sum())
    return chosen, skipped


def _outline_lonlat(poly: Polygon) -> Polygon:
    def inv(coords):
        lon, lat = to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([np.round(lon, 7), np.round(lat, 7)])
    return shapely.transform(poly, inv)


def to_geojson(t: Targeting) -> dict:
    """The proposed hot spots as a FeatureCollection ready for ``hotspots fences validate``."""
    features = []
    for h in t.hotspots:
        props = {
            "id": h.id, "name": f"Proposed hot spot {h.rank}", "density": t.settings.density,
            "rank": h.rank, "crimes": h.crimes, "harm_days": round(h.harm, 1),
            "harm_share": round(h.harm / t.total_harm, 4) if t.total_harm else 0.0,
            "gi_z": round(h.z_max, 2), "q_value": float(f"{h.q_min:.3g}"),
            "cells": [t.grid.cell_label(c) for c in h.cells],
            "radius_m": round(h.radius_m, 1), "area_m2": round(h.outline.area, 0),
        }
        p = h.profile
        props["time_basis"] = p.basis if p else "none"
        if p and p.timed:
            props["hour_shares"] = p.hour_shares()
            props["weekday_shares"] = p.weekday_shares()
            props["harm_hour_shares"] = h.harm_profile.hour_shares() if h.harm_profile else []
            props["peak_hours"] = p.peak_hours()
        poly = shapely.geometry.polygon.orient(_outline_lonlat(h.outline), 1.0)
        geometry = json.loads(json.dumps(mapping(poly)))  # lists, as a file would give
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    s = t.settings
    return {
        "type": "FeatureCollection", "name": "proposed-hotspots",
        "properties": {
            "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "grid": s.grid, "cell_m": round(t.grid.cell_m, 1), "measure": s.measure,
            "profile_tz": s.tz,
            "alpha_fdr": s.alpha, "max_radius_m": s.max_radius_m,
            "min_spacing_m": s.min_spacing_m, "crimes": t.total_crimes,
            "harm_days": round(t.total_harm, 1), "cells_total": len(t.grid),
            "cells_hot": int(t.gi.hot.sum()),
            "share_of_harm": round(t.share_of_harm, 4),
            "share_of_crime": round(t.share_of_crime, 4),
        },
        "features": features,
    }


def write_geojson(t: Targeting, path: str | Path) -> Path:
    """Write :func:`to_geojson` to ``path``."""
    path = Path(path)
    path.write_text(json.dumps(to_geojson(t), indent=1) + "\n", encoding="utf-8")
    return path


def write_cells(t: Targeting, path: str | Path) -> Path:
    """Every cell with crime, ranked by harm (then z): ``rank, cell, lon, lat, crimes,
    harm_days, gi_z, p_value, q_value, hot, hotspot``."""
    import csv

    grid, gi = t.grid, t.gi
    idx = np.flatnonzero(grid.count > 0)
    idx = idx[np.lexsort((-gi.z[idx], -grid.harm[idx]))]
    member = {c: h.id for h in t.hotspots for c in h.cells}
    x, y = grid.centre_xy(idx)
    lon, lat = to_wgs84(np.atleast_1d(x), np.atleast_1d(y))
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "cell", "lon", "lat", "crimes", "harm_days", "gi_z", "p_value",
                    "q_value", "hot", "hotspot"])
        for rank, (i, lo, la) in enumerate(zip(idx.tolist(), lon.tolist(), lat.tolist(),
                                               strict=True), 1):
            w.writerow([rank, grid.cell_label(i), f"{lo:.6f}", f"{la:.6f}", int(grid.count[i]),
                        round(float(grid.harm[i]), 1), round(float(gi.z[i]), 3),
                        f"{gi.p[i]:.3g}", f"{gi.q[i]:.3g}", int(gi.hot[i]), member.get(i, "")])
    return path


def summary_lines(t: Targeting) -> list[str]:
    """What targeting found, for people."""
    s = t.settings
    lines = [
        f"{t.total_crimes} crimes, {t.total_harm:,.0f} harm-days; {len(t.grid)} {s.grid} cells"
        f" of {t.grid.cell_m:.0f} m; Gi* on {s.measure}: {int(t.gi.hot.sum())} hot cells at"
        f" FDR {s.alpha:g}",
        f"{len(t.hotspots)} proposed hot spots hold {t.share_of_crime:.1%} of crime and"
        f" {t.share_of_harm:.1%} of harm ({t.skipped_spacing} candidates passed over for"
        f" spacing or size)",
    ]
    if t.no_harm_weight:
        lines.append("no harm weight (counted as 0): " + ", ".join(
            f"{k} ({v})" for k, v in sorted(t.no_harm_weight.items())))
    for h in t.hotspots:
        p = h.profile
        when = (f"peak hours {','.join(map(str, p.peak_hours()))}" if p and p.timed
                else "no times in the data")
        lines.append(f"  {h.id}  crimes {h.crimes:5d}  harm {h.harm:8.0f}  Gi* z {h.z_max:5.1f}"
                     f"  radius {h.radius_m:4.0f} m  {when}")
    return lines
