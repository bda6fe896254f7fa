"""Synthetic recorded crime with planted hot spots whose places and hours are known.

A square area (Greenwich by default, so it straddles the meridian) gets a background of crime
spread uniformly in space with an ordinary daily rhythm, plus planted hot spots: small discs
where a set share of crime happens, at their own hours. The truth travels with the records
(:attr:`CrimeRecord.planted`), so tests can check that targeting finds the planted places and
that time profiles find their hours.

Two writers produce what real producers write:

- :func:`write_police_uk`: the police.uk street-level CSV (``YYYY-MM-street.csv``) with its
  exact columns; points snapped to a fixed set of anonymous map points, a month and no time,
  anti-social behaviour without a Crime ID or outcome, as police.uk publishes it;
- :func:`write_force_export`: a force records export (one row per crime: reference, Home
  Office offence code and group, committed from/to local date-times, and coordinates as
  British National Grid easting/northing or WGS84), with the from/to windows forces record:
  exact for street violence, hours wide for burglary or theft from vehicles found next morning.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from fences.geo import LocalFrame

POLICE_UK_COLUMNS = [
    "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
    "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context",
]

#: police.uk "Crime type" values, with their share of background crime (rounded from the
#: national mix; ASB is published beside crime) and the Home Office offence group and an
#: offence code the force export uses for them.
CATEGORIES: dict[str, tuple[float, str, str]] = {
    "Anti-social behaviour": (0.18, "Anti-social behaviour", "ASB"),
    "Bicycle theft": (0.02, "Bicycle theft", "44"),
    "Burglary": (0.06, "Burglary", "28E"),
    "Criminal damage and arson": (0.08, "Criminal damage and arson", "58C"),
    "Drugs": (0.03, "Drug offences", "92D"),
    "Other crime": (0.02, "Miscellaneous crimes against society", "99"),
    "Other theft": (0.09, "All other theft offences", "49"),
    "Possession of weapons": (0.01, "Possession of weapons offences", "10A"),
    "Public order": (0.07, "Public order offences", "9"),
    "Robbery": (0.02, "Robbery", "34B"),
    "Shoplifting": (0.07, "Shoplifting", "46"),
    "Theft from the person": (0.02, "Theft from the person", "39"),
    "Vehicle crime": (0.07, "Vehicle offences", "45"),
    "Violence and sexual offences": (0.26, "Violence with injury", "8N"),
}
OUTCOMES = ["Investigation complete; no suspect identified", "Unable to prosecute suspect",
            "Under investigation", "Awaiting court outcome", "Offender given a caution"]
STREETS = ["High Street", "Station Road", "Church Lane", "Park Row", "Market Square",
           "King William Walk", "Trafalgar Road", "Maze Hill", "Blackheath Hill", "Royal Hill",
           "Creek Road", "Greenwich High Road", "Vanbrugh Park", "Crooms Hill", "Nelson Road"]
#: Hours of the day for background crime: quiet at dawn, busy in the evening.
BACKGROUND_HOURS = np.array([3, 2, 2, 1, 1, 1, 2, 3, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 6, 5, 4,
                             4], dtype=float)
#: How far apart police.uk's anonymous map points are, roughly (about 750,000 points for
#: England and Wales puts them tens of metres apart in towns).
MAP_POINT_SPACING_M = 60.0
#: Window widths (hours) the force export records per offence group: exact for street crime,
#: wide for crime discovered later.
WINDOW_H = {"Burglary": (1.0, 14.0), "Vehicle offences": (1.0, 12.0),
            "Criminal damage and arson": (0.5, 10.0), "Bicycle theft": (0.5, 9.0),
            "All other theft offences": (0.0, 4.0)}


@dataclass
class PlantedHotSpot:
    """A place where ``share`` of all crime happens within ``radius_m`` of its centre, at
    ``hours`` (local hours of the day, each crime within the hour drawn) and, when given, on
    ``weekdays`` only (0 = Monday)."""

    name: str
    lon: float
    lat: float
    radius_m: float
    share: float
    hours: tuple[int, ...]
    categories: tuple[str, ...]
    weekdays: tuple[int, ...] | None = None


@dataclass
class CrimeRecord:
    """One synthetic crime: the truth (exact local time and place) and what writers show."""

    ref: str
    when: dt.datetime  # aware, local time
    lon: float
    lat: float
    category: str  # police.uk crime type
    planted: str  # the planted hot spot's name, '' for background


@dataclass
class CrimeWorld:
    """Synthetic crime and its truth."""

    records: list[CrimeRecord]
    planted: list[PlantedHotSpot]
    frame: LocalFrame
    tz: dt.tzinfo
    months: list[str] = field(default_factory=list)


def default_planted(frame: LocalFrame) -> list[PlantedHotSpot]:
    """Four planted hot spots around Greenwich, over 600 m apart, each with its own hours."""
    spec = [
        ("Night-time economy", -900.0, 400.0, 70.0, 0.03, (21, 22, 23, 0, 1),
         ("Violence and sexual offences", "Public order", "Robbery"), (4, 5)),
        ("Shopping parade", 700.0, -300.0, 60.0, 0.025, (11, 12, 13, 14, 15, 16),
         ("Shoplifting", "Theft from the person", "Other theft"), None),
        ("School run robbery", 200.0, 1300.0, 50.0, 0.012, (15, 16),
         ("Robbery", "Theft from the person"), (0, 1, 2, 3, 4)),
        ("Station car park", -300.0, -1500.0, 70.0, 0.02, (6, 7, 8, 17, 18, 19),
         ("Vehicle crime", "Bicycle theft", "Criminal damage and arson"), None),
    ]
    out = []
    for name, x, y, radius, share, hours, cats, days in spec:
        lon, lat = frame.to_lonlat(x, y)
        out.append(PlantedHotSpot(name, round(lon, 6), round(lat, 6), radius, share, hours, cats,
                                  days))
    return out


def generate(n: int = 20_000, months: int = 12, start: str = "2026-01", seed: int = 1,
             extent_m: float = 6000.0, planted: list[PlantedHotSpot] | None = None,
             centre: tuple[float, float] = (51.48, 0.0), tz: str = "Europe/London",
             ) -> CrimeWorld:
    """Generate ``n`` crimes over ``months`` months from ``start`` (``YYYY-MM``).

    :param extent_m: side of the square area, metres, centred on ``centre`` (lat, lon).
    :param planted: the planted hot spots (default :func:`default_planted`).
    """
    rng = np.random.default_rng(seed)
    frame = LocalFrame(round(centre[0] * 1e6), round(centre[1] * 1e6))
    planted = default_planted(frame) if planted is None else planted
    zone = ZoneInfo(tz)
    y0, m0 = (int(p) for p in start.split("-"))
    first = dt.date(y0, m0, 1)
    month_list = []
    for k in range(months):
        y, m = divmod(m0 - 1 + k, 12)
        month_list.append(f"{y0 + y:04d}-{m + 1:02d}")
    ey, em = divmod(m0 - 1 + months, 12)
    days = (dt.date(y0 + ey, em + 1, 1) - first).days

    counts = [int(round(n * p.share)) for p in planted]
    n_bg = n - sum(counts)
    if n_bg < 0:
        raise ValueError("planted shares add up to more than all crime")
    cat_names = list(CATEGORIES)
    cat_p = np.array([CATEGORIES[c][0] for c in cat_names])
    cat_p /= cat_p.sum()

    xs, ys, day, hour, cats, spot = [], [], [], [], [], []
    # background: uniform in space, ordinary daily rhythm, national mix of categories
    half = extent_m / 2
    xs.append(rng.uniform(-half, half, n_bg))
    ys.append(rng.uniform(-half, half, n_bg))
    day.append(rng.integers(0, days, n_bg))
    hour.append(rng.choice(24, n_bg, p=BACKGROUND_HOURS / BACKGROUND_HOURS.sum()))
    cats.append(rng.choice(len(cat_names), n_bg, p=cat_p))
    spot.append(np.full(n_bg, -1))
    for k, (p, c) in enumerate(zip(planted, counts, strict=True)):
        px, py = frame.to_xy(p.lon, p.lat)
        r = p.radius_m * np.sqrt(rng.uniform(0, 1, c))  # uniform over the disc
        a = rng.uniform(0, 2 * math.pi, c)
        xs.append(px + r * np.cos(a))
        ys.append(py + r * np.sin(a))
        d = rng.integers(0, days, c * 3)
        if p.weekdays:
            wd = (np.array([first.weekday()]) + d) % 7
            d = d[np.isin(wd, p.weekdays)]
            while len(d) < c:  # top up (rare: only when few days qualify)
                d = np.concatenate([d, d])
        day.append(d[:c])
        hour.append(rng.choice(np.array(p.hours), c))
        cats.append(rng.choice([cat_names.index(x) for x in p.categories], c))
        spot.append(np.full(c, k))
    xs_a, ys_a = np.concatenate(xs), np.concatenate(ys)
    day_a, hour_a = np.concatenate(day), np.concatenate(hour)
    cat_a, spot_a = np.concatenate(cats), np.concatenate(spot)
    minute_a = rng.integers(0, 60, len(xs_a))
    order = np.lexsort((minute_a, hour_a, day_a))
    lons, lats = frame.to_lonlat(xs_a, ys_a)

    records = []
    for i in order:
        local = dt.datetime.combine(first + dt.timedelta(days=int(day_a[i])),
                                    dt.time(int(hour_a[i]), int(minute_a[i])), zone)
        # a wall-clock time that does not exist (spring forward) is moved to a real one
        local = local.astimezone(dt.UTC).astimezone(zone)
        ref = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
        k = int(spot_a[i])
        records.append(CrimeRecord(ref, local, round(float(lons[i]), 6), round(float(lats[i]), 6),
                                   cat_names[int(cat_a[i])], planted[k].name if k >= 0 else ""))
    return CrimeWorld(records, planted, frame, zone, month_list)


def _map_point(frame: LocalFrame, lon: float, lat: float) -> tuple[float, float, int, int]:
    """Snap to the nearest anonymous map point: a lattice jittered by a fixed hash, so the same
    place always snaps to the same point (police.uk's points are fixed too)."""
    x, y = frame.to_xy(lon, lat)
    best = None
    ix0, iy0 = round(x / MAP_POINT_SPACING_M), round(y / MAP_POINT_SPACING_M)
    for ix in (ix0 - 1, ix0, ix0 + 1):
        for iy in (iy0 - 1, iy0, iy0 + 1):
            h = hashlib.blake2b(f"{ix},{iy}".encode(), digest_size=4).digest()
            jx = (h[0] / 255 - 0.5) * MAP_POINT_SPACING_M * 0.6
            jy = (h[1] / 255 - 0.5) * MAP_POINT_SPACING_M * 0.6
            px, py = ix * MAP_POINT_SPACING_M + jx, iy * MAP_POINT_SPACING_M + jy
            d = (px - x) ** 2 + (py - y) ** 2
            if best is None or d < best[0]:
                best = (d, px, py, ix, iy)
    _, px, py, ix, iy = best
    plon, plat = frame.to_lonlat(px, py)
    return plon, plat, ix, iy


def write_police_uk(world: CrimeWorld, out_dir: str | Path, force: str = "Metropolitan Police"
                    " Service") -> list[Path]:
    """Write one police.uk street-level CSV per month (``YYYY-MM-<force>-street.csv``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_month: dict[str, list[CrimeRecord]] = {}
    for r in world.records:
        by_month.setdefault(r.when.strftime("%Y-%m"), []).append(r)
    slug = force.lower().replace(" ", "-")
    paths = []
    for month in sorted(by_month):
        path = out / f"{month}-{slug}-street.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(POLICE_UK_COLUMNS)
            for r in by_month[month]:
                lon, lat, ix, iy = _map_point(world.frame, r.lon, r.lat)
                asb = r.category == "Anti-social behaviour"
                street = STREETS[(ix * 7 + iy * 13) % len(STREETS)]
                lsoa = (ix * 60 // 500, iy * 60 // 500)
                lsoa_n = (lsoa[0] % 97) * 100 + lsoa[1] % 97
                outcome = "" if asb else OUTCOMES[int(r.ref[:2], 16) % len(OUTCOMES)]
                w.writerow([
                    "" if asb else r.ref, month, force, force, f"{lon:.6f}", f"{lat:.6f}",
                    f"On or near {street}", f"E0100{lsoa_n:04d}", f"Greenwich {lsoa_n:04d}A",
                    r.category, outcome, "",
                ])
        paths.append(path)
    return paths


FORCE_COLUMNS_BNG = ["URN", "Offence Code", "Offence Group", "Committed From", "Committed To",
                     "Easting", "Northing"]
FORCE_COLUMNS_WGS84 = ["URN", "Offence Code", "Offence Group", "Committed From", "Committed To",
                       "Longitude", "Latitude"]


def write_force_export(world: CrimeWorld, path: str | Path, crs: str = "bng",
                       seed: int = 2) -> Path:
    """Write a force records export: local ``DD/MM/YYYY HH:MM`` windows around the true time
    (which always lies inside), coordinates in British National Grid (``crs="bng"``, metres
    to the nearest metre, as forces record them) or WGS84 (``crs="wgs84"``)."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [r for r in world.records if r.category != "Anti-social behaviour"]
    if crs == "bng":
        from planning.projection import to_bng

        east, north = to_bng(np.array([r.lon for r in records]),
                             np.array([r.lat for r in records]))
        coords = [(f"{e:.0f}", f"{n:.0f}") for e, n in zip(east, north, strict=True)]
        columns = FORCE_COLUMNS_BNG
    elif crs == "wgs84":
        coords = [(f"{r.lon:.6f}", f"{r.lat:.6f}") for r in records]
        columns = FORCE_COLUMNS_WGS84
    else:
        raise ValueError(f"crs must be bng or wgs84, got {crs!r}")
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for k, r in enumerate(records):
            _, group, code = CATEGORIES[r.category]
            lo_h, hi_h = WINDOW_H.get(group, (0.0, 0.25))
            width = dt.timedelta(minutes=int(rng.uniform(lo_h, hi_h) * 60))
            before = width * float(rng.uniform(0, 1))
            # real instants (UTC arithmetic), shown as local wall-clock times: never a time
            # the clocks skipped
            start_utc = (r.when.astimezone(dt.UTC) - before).replace(second=0)
            start = start_utc.astimezone(world.tz)
            end = (start_utc + width).astimezone(world.tz)
            fmt = "%d/%m/%Y %H:%M"
            w.writerow([f"01/{100000 + k}/{r.when:%y}", code, group,
                        start.strftime(fmt), end.strftime(fmt) if width else "", *coords[k]])
    return path
