"""Import recorded crime: police.uk street-level CSV, or a force's records export.

police.uk street-level files carry the columns ``Crime ID, Month, Reported by, Falls within,
Longitude, Latitude, Location, LSOA code, LSOA name, Crime type, Last outcome category,
Context``: a month, a point snapped to an anonymous map point, and no day or time. Anti-social
behaviour rows have no Crime ID.

A force export (there is no national format; these names, case and spacing aside, are
accepted) has one row per crime:

``URN`` (or ``crime_ref``, ``reference``, ``crime id``)
    the force's reference; re-importing it is a no-op;
``Offence Code`` (or ``offence_code``, ``ho_code``) and/or ``Offence Group`` (or ``offence``,
``offence type``, ``crime type``, ``category``)
    what it was; the harm table is looked up by the code first, then the group;
``Committed From`` / ``Committed To`` (or ``from``/``to``, ``start``/``end``)
    local date-times (``DD/MM/YYYY HH:MM`` or ISO 8601) in ``tz``; ``To`` may be empty
    (an exact time);
``Easting`` / ``Northing`` (British National Grid, EPSG:27700) or ``Longitude`` / ``Latitude``
(WGS84).

Every row ends imported, a duplicate of one already stored, or rejected with its line number
and the reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import sqlite_utils

from planning.harm import HarmTable
from planning.projection import to_bng, to_wgs84

POLICE_UK_REQUIRED = ["Month", "Longitude", "Latitude", "Crime type"]
FORMATS = ("police-uk", "force")
#: Roughly Great Britain and Northern Ireland (with sea around), where BNG can place a point.
UK_BOUNDS = (-9.0, 49.0, 2.6, 61.5)  # west, south, east, north
FORCE_ALIASES = {
    "ref": ["urn", "crime ref", "crime reference", "reference", "crime id", "crime number"],
    "code": ["offence code", "ho code", "home office code", "code"],
    "group": ["offence group", "offence", "offence type", "offence description", "crime type",
              "category"],
    "from": ["committed from", "from", "start", "date from", "first committed"],
    "to": ["committed to", "to", "end", "date to", "last committed"],
    "easting": ["easting", "x"],
    "northing": ["northing", "y"],
    "lon": ["longitude", "lon", "lng"],
    "lat": ["latitude", "lat"],
}
_DT_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y")


class CrimeImportError(ValueError):
    """A crime file cannot be read at all (missing, not CSV, no usable columns)."""


@dataclass
class CrimeImportResult:
    """What an import did; ``rejected`` holds (line number, reason)."""

    format: str
    imported: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    no_harm_weight: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for people."""
        return (f"{self.format}: {self.imported} imported, {self.duplicates} already there,"
                f" {len(self.rejected)} rejected")


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().lower())


def _read(path: str | Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CrimeImportError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
                               ) from exc
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise CrimeImportError(f"{path} is empty") from None
    except csv.Error as exc:
        raise CrimeImportError(f"{path} is not CSV: {exc}") from exc
    rows = []
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise CrimeImportError(f"{path} line {reader.line_num}: not CSV: {exc}") from exc
    return [h.strip() for h in header], rows


def detect_format(header: list[str]) -> str:
    """``police-uk`` when the police.uk columns are there, else ``force``."""
    have = {_key(h) for h in header}
    return "police-uk" if {_key(c) for c in POLICE_UK_REQUIRED} <= have else "force"


def parse_local(text: str, tz: dt.tzinfo, fold: int = 0) -> int:
    """Epoch seconds for a local date-time ``DD/MM/YYYY HH:MM`` or ISO 8601 (an offset in the
    text wins over ``tz``). ``fold=1`` takes the second of an hour that happens twice (clocks
    going back)."""
    text = text.strip()
    moment = None
    for fmt in _DT_FORMATS:
        try:
            moment = dt.datetime.strptime(text, fmt)
            break
        except ValueError:
            pass
    if moment is None:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"bad date-time {text!r}: use DD/MM/YYYY HH:MM or ISO 8601"
                             ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz, fold=fold)
    return int(moment.timestamp())


@dataclass
class _Row:
    line: int
    key: str
    ref: str
    month: str
    from_ts: int | None
    to_ts: int | None
    a: float  # lon or easting
    b: float  # lat or northing
    category: str
    code: str
    location: str
    lsoa: str
    outcome: str


def _hash_key(prefix: str, row: list[str], seen: Counter) -> str:
    digest = hashlib.sha1("\x1f".join(c.strip() for c in row).encode()).hexdigest()
    seen[digest] += 1  # identical rows are distinct crimes: their rank keeps them apart
    return f"{prefix}:{digest}:{seen[digest]}"


def _read_rows(header, rows, result, idx: dict, id_name: str, prefix: str, parse
               ) -> list[_Row]:
    """Each data row as a :class:`_Row`, or rejected with its line and the reason.

    :param idx: column index of each field name (None: no such column)
    :param id_name: the field with the crime's own reference; without one, the row's hash
        (prefixed ``prefix``) keys it
    :param parse: given ``cell(name)`` (the stripped text of a field, ``""`` if absent), the
        ``_Row`` fields from ``month`` on; a ``ValueError`` rejects the row with its message
    """
    seen: Counter = Counter()
    out = []
    for line, row in rows:
        def cell(name, row=row):
            i = idx[name]
            return row[i].strip() if i is not None and i < len(row) else ""
        try:
            if len(row) != len(header):
                raise ValueError(f"{len(row)} fields, the header has {len(header)}")
            fields = parse(cell)
        except ValueError as exc:
            result.rejected.append((line, str(exc)))
            continue
        ref = cell(id_name)
        key = f"{prefix}:{ref}" if ref else _hash_key(prefix, row, seen)
        out.append(_Row(line, key, ref, *fields))
    return out


def _police_uk_rows(header, rows, result) -> list[_Row]:
    col = {_key(h): i for i, h in enumerate(header)}
    idx = {name: col.get(_key(name)) for name in
           ("Crime ID", "Month", "Longitude", "Latitude", "Location", "LSOA code", "Crime type",
            "Last outcome category")}

    def parse(cell) -> tuple:
        month = cell("Month")
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise ValueError(f"Month {month!r} is not YYYY-MM")
        if not cell("Longitude") or not cell("Latitude"):
            raise ValueError("no location (police.uk publishes some crimes without one)")
        try:
            lon, lat = float(cell("Longitude")), float(cell("Latitude"))
        except ValueError:
            raise ValueError("Longitude/Latitude is not a number") from None
        category = cell("Crime type")
        if not category:
            raise ValueError("Crime type is empty")
        return (month, None, None, lon, lat, category, "", cell("Location"), cell("LSOA code"),
                cell("Last outcome category"))

    return _read_rows(header, rows, result, idx, "Crime ID", "police-uk", parse)


def _force_rows(header, rows, result, tz) -> tuple[list[_Row], str]:
    col = {_key(h): i for i, h in enumerate(header)}
    idx = {}
    for name, aliases in FORCE_ALIASES.items():
        idx[name] = next((col[a] for a in aliases if a in col), None)
    if idx["easting"] is not None and idx["northing"] is not None:
        crs = "bng"
    elif idx["lon"] is not None and idx["lat"] is not None:
        crs = "wgs84"
    else:
        raise CrimeImportError("force export needs Easting/Northing (British National Grid) or "
                               f"Longitude/Latitude columns; found: {', '.join(header)}")
    if idx["from"] is None:
        raise CrimeImportError("force export needs a Committed From column (or from/start)")
    if idx["code"] is None and idx["group"] is None:
        raise CrimeImportError("force export needs an Offence Code or Offence Group column")

    def parse(cell) -> tuple:
        code, group = cell("code"), cell("group")
        if not code and not group:
            raise ValueError("no offence code or group")
        if not cell("from"):
            raise ValueError("Committed From is empty")
        from_ts = parse_local(cell("from"), tz)
        to_ts = parse_local(cell("to"), tz) if cell("to") else from_ts
        if to_ts < from_ts and cell("to"):
            # clocks going back (01:50 to 01:10 can be 20 minutes: the hour happens twice)
            # or forward (01:59 does not exist that night): try the other readings
            for f_fold, t_fold in ((0, 1), (1, 0), (1, 1)):
                a = parse_local(cell("from"), tz, f_fold)
                b = parse_local(cell("to"), tz, t_fold)
                if b >= a:
                    from_ts, to_ts = a, b
                    break
        if to_ts < from_ts:
            raise ValueError("Committed To is before Committed From")
        names = ("easting", "northing") if crs == "bng" else ("lon", "lat")
        if not cell(names[0]) or not cell(names[1]):
            raise ValueError("no coordinates")
        try:
            a, b = float(cell(names[0])), float(cell(names[1]))
        except ValueError:
            raise ValueError(f"coordinates {cell(names[0])!r}, {cell(names[1])!r} are not"
                             " numbers") from None
        if crs == "bng" and not (0 <= a <= 700_000 and 0 <= b <= 1_300_000):
            raise ValueError(f"easting/northing {a:.0f}, {b:.0f} outside the British"
                             " National Grid")
        month = dt.datetime.fromtimestamp(from_ts, tz).strftime("%Y-%m")
        return month, from_ts, to_ts, a, b, group or code, code, "", "", ""

    return _read_rows(header, rows, result, idx, "ref", "force", parse), crs


def import_crime(db: sqlite_utils.Database, path: str | Path, fmt: str | None = None,
                 harm: HarmTable | None = None, tz: str | dt.tzinfo = "Europe/London",
                 ) -> CrimeImportResult:
    """Import a crime CSV into ``crimes``; idempotent (see :mod:`gateway.schema`).

    :param fmt: ``police-uk`` or ``force``; detected from the header when None.
    :param harm: when given, categories it has no weight for are counted in the result.
    :param tz: the zone of the force export's local date-times.
    :raises CrimeImportError: when the file cannot be read or lacks the needed columns.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    header, rows = _read(path)
    detected = detect_format(header)
    fmt = fmt or detected
    if fmt not in FORMATS:
        raise CrimeImportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    result = CrimeImportResult(fmt)
    if fmt == "police-uk":
        if detected != "police-uk":
            have = {_key(h) for h in header}
            missing = [c for c in POLICE_UK_REQUIRED if _key(c) not in have]
            raise CrimeImportError("not a police.uk street-level file: missing "
                                   + ", ".join(missing))
        good, crs = _police_uk_rows(header, rows, result), "wgs84"
    else:
        good, crs = _force_rows(header, rows, result, zone)
    a = np.array([r.a for r in good], dtype=float)
    b = np.array([r.b for r in good], dtype=float)
    if crs == "bng":
        lon, lat = to_wgs84(a, b)
        x, y = a, b
    else:
        lon, lat = a, b
        x, y = to_bng(lon, lat) if len(good) else (a, b)
    w, s, e, n = UK_BOUNDS
    ok = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n) & np.isfinite(x) & np.isfinite(y)
    batch = []
    for k, r in enumerate(good):
        if not ok[k]:
            result.rejected.append((r.line, f"position {lon[k]:.5f}, {lat[k]:.5f} is outside"
                                            " Great Britain and Northern Ireland"))
            continue
        batch.append((r.key, fmt, r.ref, r.month, r.from_ts, r.to_ts, round(float(lon[k]), 6),
                      round(float(lat[k]), 6), round(float(x[k]), 1), round(float(y[k]), 1),
                      r.category, r.code, r.location, r.lsoa, r.outcome))
    result.rejected.sort()
    with db.conn:
        cur = db.conn.execute(
            "INSERT INTO crime_imports (path, format, at, imported, duplicates, rejected)"
            " VALUES (?, ?, ?, 0, 0, 0)", (str(path), fmt, int(time.time())))
        import_id = cur.lastrowid
        before = db.conn.total_changes
        db.conn.executemany(
            "INSERT OR IGNORE INTO crimes (key, source, ref, month, from_ts, to_ts, lon, lat, x,"
            " y, category, offence_code, location, lsoa_code, outcome, import_id)"
            f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,{int(import_id)})", batch)
        result.imported = db.conn.total_changes - before
        result.duplicates = len(batch) - result.imported
        db.conn.execute("UPDATE crime_imports SET imported = ?, duplicates = ?, rejected = ?"
                        " WHERE id = ?", (result.imported, result.duplicates,
                                          len(result.rejected), import_id))
    if harm is not None:
        counts = Counter((row[10], row[11]) for row in batch)
        for (cat, code), count in counts.items():
            if harm.weight(cat, code) is None:
                name = cat or code
                result.no_harm_weight[name] = result.no_harm_weight.get(name, 0) + count
    return result


@dataclass
class Crimes:
    """Crimes as parallel arrays (``from_ts``/``to_ts`` -1 where the source has no times)."""

    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    from_ts: np.ndarray
    to_ts: np.ndarray
    month: list[str]
    category: list[str]
    code: list[str]

    def __len__(self) -> int:
        return len(self.x)

    @property
    def has_times(self) -> np.ndarray:
        """True where the crime has a committed from/to window."""
        return self.from_ts >= 0

    def subset(self, mask: np.ndarray) -> Crimes:
        """The crimes where ``mask`` is true."""
        idx = np.flatnonzero(mask)
        return Crimes(self.x[idx], self.y[idx], self.lon[idx], self.lat[idx], self.from_ts[idx],
                      self.to_ts[idx], [self.month[i] for i in idx],
                      [self.category[i] for i in idx], [self.code[i] for i in idx])


def load_crimes(db: sqlite_utils.Database, months: tuple[str, str] | None = None,
                categories: list[str] | None = None) -> Crimes:
    """All stored crimes, optionally within ``months`` (first, last ``YYYY-MM``, inclusive)
    and of the given categories."""
    sql = ("SELECT x, y, lon, lat, coalesce(from_ts, -1), coalesce(to_ts, -1), month, category,"
           " offence_code FROM crimes")
    where, args = [], []
    if months:
        where.append("month BETWEEN ? AND ?")
        args += list(months)
    if categories:
        where.append(f"category IN ({','.join('?' * len(categories))})")
        args += categories
    if where:
        sql += " WHERE " + " AND ".join(where)
    # Streamed into typed arrays, strings interned: a force's year (300,000+ rows) stays
    # tens of megabytes instead of the hundreds that fetchall() and its tuples take.
    xs, ys, lons, lats = (array("d") for _ in range(4))
    froms, tos = array("q"), array("q")
    month, category, code = [], [], []
    seen: dict[str, str] = {}
    for x, y, lon, lat, a, b, m, cat, off in db.conn.execute(sql + " ORDER BY id", args):
        xs.append(x)
        ys.append(y)
        lons.append(lon)
        lats.append(lat)
        froms.append(a)
        tos.append(b)
        month.append(seen.setdefault(m, m))
        category.append(seen.setdefault(cat, cat))
        off = off or ""
        code.append(seen.setdefault(off, off))
    return Crimes(np.frombuffer(xs, float), np.frombuffer(ys, float), np.frombuffer(lons, float),
                  np.frombuffer(lats, float), np.frombuffer(froms, np.int64),
                  np.frombuffer(tos, np.int64), month, category, code)
