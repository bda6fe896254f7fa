"""Validate hot spot GeoJSON: every message names the feature and says what to fix.

Conventions (see ``docs/fences.md``): a FeatureCollection whose features are ``Polygon`` or
``MultiPolygon`` (holes allowed) or ``Point`` with a ``radius_m`` property (a circle). Every
feature has an id (unique, short text or a number): ``properties.id``, else the feature's own
``id`` member (RFC 7946, as geojson.io and QGIS with an id field write it), else QGIS's
``properties.fid`` (with a warning: a row number is not a lasting name). ``properties.name``
defaults to the id and ``properties.density`` (an integer class 0..255, or one of ``low``,
``medium``, ``high``, ``very_high``) to ``medium``, each with a warning. A ``crs`` member (the
2008 GeoJSON spec, still written by QGIS) is accepted when it names WGS 84 longitude/latitude.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import explain_validity

from fences.geo import LocalFrame, scale_factors

#: Largest extent of one fence along either axis in micro-degrees. With the origin at the
#: centre, products of two coordinate differences stay below 2**29 (see docs/fences.md).
MAX_EXTENT_E6 = 23000
MIN_AREA_M2 = 50.0
SMALL_AREA_M2 = 400.0
LARGE_AREA_M2 = 1_000_000.0
MAX_AREA_M2 = 4_000_000.0
MIN_RADIUS_M = 5.0
MAX_RADIUS_M = 1000.0
MAX_ID_LEN = 32
MAX_NAME_LEN = 64
MANY_VERTICES = 200
DENSITY_NAMES = {"low": 1, "medium": 2, "high": 3, "very_high": 4}
DEFAULT_DENSITY = "medium"
#: ``crs`` names meaning WGS 84 longitude, latitude (GDAL writes the first for EPSG:4326 data).
WGS84_CRS = {"urn:ogc:def:crs:ogc:1.3:crs84", "urn:ogc:def:crs:ogc::crs84", "crs84",
             "epsg:4326", "urn:ogc:def:crs:epsg::4326", "urn:ogc:def:crs:epsg:6.6:4326",
             "http://www.opengis.net/def/crs/ogc/1.3/crs84",
             "http://www.opengis.net/def/crs/epsg/0/4326"}


class FenceError(ValueError):
    """A hot spot file cannot be used; ``problems`` lists what to fix."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Problem:
    """One finding about one feature (``feature`` is its 0-based index, -1 for the file)."""

    level: str
    feature: int
    fence_id: str | None
    message: str

    def __str__(self) -> str:
        if self.feature < 0:
            where = "file"
        elif self.fence_id:
            where = f"feature {self.feature} (id {self.fence_id!r})"
        else:
            where = f"feature {self.feature}"
        return f"{self.level}: {where}: {self.message}"


@dataclass
class HotSpot:
    """A parsed hot spot: polygonal geometry in lon/lat degrees, or a circle."""

    index: int
    fence_id: str
    name: str
    density: int
    geometry: Polygon | MultiPolygon | None = None
    circle: tuple[float, float, float] | None = None  # lon, lat, radius_m
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``circle`` or ``polygon``."""
        return "circle" if self.circle else "polygon"

    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) in degrees; a circle's via its local frame."""
        if self.circle:
            lon, lat, r = self.circle
            frame = LocalFrame(round(lat * 1e6), round(lon * 1e6))
            w, s = frame.to_lonlat(-r, -r)
            e, n = frame.to_lonlat(r, r)
            return (w, s, e, n)
        return self.geometry.bounds

    def area_m2(self) -> float:
        """Area in square metres in the fence's local frame."""
        if self.circle:
            return math.pi * self.circle[2] ** 2
        frame = self.frame()
        return frame.geom_to_xy(self.geometry).area

    def frame(self) -> LocalFrame:
        """The local frame centred on the bounding box (the device's origin)."""
        w, s, e, n = self.bounds()
        if self.circle:
            lon, lat, _ = self.circle
            return LocalFrame(round(lat * 1e6), round(lon * 1e6))
        return LocalFrame(round((s + n) / 2 * 1e6), round((w + e) / 2 * 1e6))


@dataclass
class ValidationReport:
    """Result of :func:`validate`: parsed hot spots plus errors and warnings."""

    hotspots: list[HotSpot] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that stop compilation."""
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems worth a look that do not stop compilation."""
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise :class:`FenceError` listing the errors, if any."""
        if self.errors:
            lines = "\n".join(str(p) for p in self.errors)
            raise FenceError(f"{len(self.errors)} error(s) in hot spot file:\n{lines}",
                             self.errors)


def load_geojson(source: dict | str | Path) -> dict:
    """Return the GeoJSON document from a dict, JSON text or a file path.

    :raises FenceError: when the file cannot be read or is not JSON.
    """
    if isinstance(source, dict):
        return source
    if isinstance(source, str) and source.lstrip().startswith("{"):
        text = source
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise FenceError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise FenceError(f"not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from e
    if not isinstance(doc, dict):
        raise FenceError("expected a GeoJSON FeatureCollection object at the top level")
    return doc


def validate(source: dict | str | Path) -> ValidationReport:
    """Check a hot spot GeoJSON document and parse its features.

    :param source: the document, its JSON text or a path to it.
    :returns: the report; ``report.hotspots`` holds the features that parsed.
    :raises FenceError: only when the input is not JSON at all.
    """
    doc = load_geojson(source)
    rep = ValidationReport()
    if doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        rep.problems.append(Problem("error", -1, None,
                                    "top level must be {\"type\": \"FeatureCollection\", "
                                    "\"features\": [...]}"))
        return rep
    if not doc["features"]:
        rep.problems.append(Problem("error", -1, None, "no features: add at least one hot spot"))
    if "crs" in doc:
        crs = doc["crs"]
        name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
        if not isinstance(name, str) or name.strip().lower() not in WGS84_CRS:
            rep.problems.append(Problem(
                "error", -1, None,
                f"coordinates are in {name or crs!r}, not WGS 84 longitude/latitude: export "
                "the layer with CRS EPSG:4326 (in QGIS: Export > Save Features As, CRS "
                "EPSG:4326 - WGS 84)"))
            return rep
    seen: dict[str, int] = {}
    for idx, feat in enumerate(doc["features"]):
        before = len(rep.errors)
        hs = _check_feature(idx, feat, rep)
        if hs is None or len(rep.errors) > before:
            continue  # only usable hot spots are returned
        if hs.fence_id in seen:
            rep.problems.append(Problem(
                "error", idx, hs.fence_id,
                f"duplicate id: feature {seen[hs.fence_id]} already uses {hs.fence_id!r}; "
                "give every hot spot its own id"))
            continue
        seen[hs.fence_id] = idx
        rep.hotspots.append(hs)
    return rep


def _err(rep: ValidationReport, idx: int, fid: str | None, msg: str) -> None:
    rep.problems.append(Problem("error", idx, fid, msg))


def _warn(rep: ValidationReport, idx: int, fid: str | None, msg: str) -> None:
    rep.problems.append(Problem("warning", idx, fid, msg))


def _check_feature(idx: int, feat: Any, rep: ValidationReport) -> HotSpot | None:
    if not isinstance(feat, dict) or feat.get("type") != "Feature":
        _err(rep, idx, None, "not a GeoJSON Feature object ({\"type\": \"Feature\", ...})")
        return None
    props = feat.get("properties")
    if not isinstance(props, dict):
        props = {}
    fid, id_source = feature_id(feat)
    ok = True
    if fid is None:
        _err(rep, idx, None, "missing properties.id (and no feature \"id\" member): add a "
                             "short unique text id, e.g. \"HS-01\"")
        ok = False
    elif not fid.strip():
        _err(rep, idx, None, "the id is empty: give a short unique text such as \"HS-01\"")
        fid = None
        ok = False
    elif id_source == "fid":
        _warn(rep, idx, fid, f"no id: using QGIS's fid {fid} as the hot spot id; a row number "
                             "can change when the layer is edited, so add an id field")
    elif len(fid.encode()) > MAX_ID_LEN:
        _err(rep, idx, fid, f"id is longer than {MAX_ID_LEN} bytes: shorten it")
        ok = False
    name = props.get("name")
    if name is None:
        _warn(rep, idx, fid, "no properties.name: the id will be shown to supervisors instead")
        name = fid or ""
    elif not isinstance(name, str):
        _err(rep, idx, fid, "properties.name must be text")
        ok = False
    elif len(name.encode()) > MAX_NAME_LEN:
        _err(rep, idx, fid, f"name is longer than {MAX_NAME_LEN} bytes: shorten it")
        ok = False
    if props.get("density") is None:
        _warn(rep, idx, fid, f"no properties.density: using {DEFAULT_DENSITY!r}")
        density = DENSITY_NAMES[DEFAULT_DENSITY]
    else:
        density = _density(props.get("density"))
    if density is None:
        _err(rep, idx, fid, "properties.density must be an integer class 0..255 or one of "
                            + ", ".join(DENSITY_NAMES) + f" (got {props.get('density')!r})")
        ok = False
    geom = feat.get("geometry")
    if not isinstance(geom, dict) or "type" not in geom:
        _err(rep, idx, fid, "missing geometry: add a Polygon, MultiPolygon or Point + radius_m")
        return None
    gtype = geom.get("type")
    coords = geom.get("coordinates")
    if gtype == "Point":
        hs = _check_circle(idx, fid, coords, props, rep)
        if hs is None or not ok:
            return None
        hs.name, hs.density, hs.properties = name, density, props
        return hs
    if gtype not in ("Polygon", "MultiPolygon"):
        _err(rep, idx, fid, f"geometry type {gtype!r} is not supported: use Polygon, "
                            "MultiPolygon, or Point with a radius_m property")
        return None
    polys = [coords] if gtype == "Polygon" else coords
    if not isinstance(polys, list) or not polys:
        _err(rep, idx, fid, "geometry has no coordinates")
        return None
    good = True
    for p_i, poly in enumerate(polys):
        where = f"polygon {p_i} " if gtype == "MultiPolygon" else ""
        if not isinstance(poly, list) or not poly:
            _err(rep, idx, fid, f"{where}has no rings")
            good = False
            continue
        for r_i, ring in enumerate(poly):
            good &= _check_ring(idx, fid, f"{where}ring {r_i}", ring, rep)
    if not good:
        return None
    try:
        g = shape(geom)
    except Exception as e:  # shapely raises various errors for malformed input
        _err(rep, idx, fid, f"geometry cannot be built: {e}")
        return None
    if not g.is_valid:
        _err(rep, idx, fid, _explain(g))
        return None
    _check_orientation(idx, fid, g, rep)
    hs = HotSpot(idx, fid or "", name, density or 0, geometry=g, properties=props)
    _check_size(idx, fid, hs, rep)
    nverts = shapely.get_num_coordinates(g)
    if nverts > MANY_VERTICES:
        _warn(rep, idx, fid, f"{nverts} vertices: the device evaluates every edge near the "
                             "tracker; simplify the outline if you can")
    if not ok:
        return None
    return hs


def feature_id(feat: dict) -> tuple[str | None, str | None]:
    """A feature's hot spot id and where it was found (``properties``, ``feature`` or ``fid``).

    Numbers (GeoJSON allows a numeric feature id; QGIS writes integer fields) become text.
    """
    props = feat.get("properties") if isinstance(feat.get("properties"), dict) else {}
    for where, value in (("properties", props.get("id")), ("feature", feat.get("id")),
                         ("fid", props.get("fid"))):
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            return str(value), where
        if isinstance(value, str):
            return value, where
        if isinstance(value, float) and value.is_integer():
            return str(int(value)), where
    return None, None


def _density(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= 255:
        return value
    if isinstance(value, str) and value.lower() in DENSITY_NAMES:
        return DENSITY_NAMES[value.lower()]
    return None


def _check_position(idx: int, fid: str | None, where: str, pos: Any,
                    rep: ValidationReport) -> bool:
    if (not isinstance(pos, list) or len(pos) < 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in pos[:2])):
        _err(rep, idx, fid, f"{where}: {pos!r} is not a [longitude, latitude] pair of numbers")
        return False
    lon, lat = pos[0], pos[1]
    if not (math.isfinite(lon) and math.isfinite(lat)):
        _err(rep, idx, fid, f"{where}: {pos!r} is not a finite number")
        return False
    if not -180.0 <= lon <= 180.0 or not -90.0 <= lat <= 90.0:
        hint = ""
        if -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0:
            hint = " (are longitude and latitude swapped? GeoJSON wants [longitude, latitude])"
        _err(rep, idx, fid, f"{where}: {pos!r} is out of range: longitude must be -180..180 "
                            f"and latitude -90..90{hint}")
        return False
    return True


def _check_ring(idx: int, fid: str | None, where: str, ring: Any,
                rep: ValidationReport) -> bool:
    if not isinstance(ring, list) or len(ring) < 4:
        _err(rep, idx, fid, f"{where} has fewer than 4 positions: a ring needs at least three "
                            "corners and must repeat the first position at the end")
        return False
    ok = True
    for p_i, pos in enumerate(ring):
        ok &= _check_position(idx, fid, f"{where} position {p_i}", pos, rep)
    if ok and ring[0][:2] != ring[-1][:2]:
        _err(rep, idx, fid, f"{where} is not closed: repeat the first position "
                            f"{ring[0]!r} as the last one")
        ok = False
    return ok


_LOC = re.compile(r"\[\s*([-0-9.eE+]+)\s+([-0-9.eE+]+)\s*\]")


def _explain(g: Polygon | MultiPolygon) -> str:
    why = explain_validity(g)
    m = _LOC.search(why)
    at = ""
    if m:
        at = f" near latitude {float(m.group(2)):.6f}, longitude {float(m.group(1)):.6f}"
    reason = why.split("[")[0].strip()
    fixes = {
        "Self-intersection": "edges cross each other; reorder or move the vertices so the "
                             "outline does not cross itself (split a figure-eight into two "
                             "polygons)",
        "Ring Self-intersection": "a ring touches itself; move the vertex or split the polygon",
        "Hole lies outside shell": "a hole is not inside its outer ring; fix the hole or drop it",
        "Nested shells": "one polygon of the MultiPolygon lies inside another; use a hole "
                         "instead",
        "Interior is disconnected": "the holes cut the polygon in two; make it a MultiPolygon",
        "Too few points": "a ring has fewer than three distinct corners",
        "Duplicate Rings": "the same ring appears twice; delete one",
    }
    fix = fixes.get(reason, "fix the outline so that it is a valid simple polygon")
    return f"invalid geometry: {reason}{at}: {fix}"


def _check_orientation(idx: int, fid: str | None, g: Polygon | MultiPolygon,
                       rep: ValidationReport) -> None:
    polys = g.geoms if isinstance(g, MultiPolygon) else [g]
    for p in polys:
        if not p.exterior.is_ccw:
            _warn(rep, idx, fid, "outer ring is clockwise; RFC 7946 asks for counter-clockwise "
                                 "(the compiler reorients it, but fix the source if you can)")
            return
        for hole in p.interiors:
            if hole.is_ccw:
                _warn(rep, idx, fid, "a hole is counter-clockwise; RFC 7946 asks for clockwise "
                                     "holes (the compiler reorients it)")
                return


def _check_circle(idx: int, fid: str | None, coords: Any, props: dict,
                  rep: ValidationReport) -> HotSpot | None:
    if not _check_position(idx, fid, "point", coords, rep):
        return None
    r = props.get("radius_m")
    if not isinstance(r, (int, float)) or isinstance(r, bool) or not math.isfinite(r):
        _err(rep, idx, fid, "a Point hot spot needs a numeric properties.radius_m (metres)")
        return None
    if not MIN_RADIUS_M <= r <= MAX_RADIUS_M:
        _err(rep, idx, fid, f"radius_m {r} is implausible: use {MIN_RADIUS_M:g}.."
                            f"{MAX_RADIUS_M:g} m (or a polygon for large areas)")
        return None
    hs = HotSpot(idx, fid or "", "", 0, circle=(float(coords[0]), float(coords[1]), float(r)))
    _check_size(idx, fid, hs, rep)
    return hs


def _check_size(idx: int, fid: str | None, hs: HotSpot, rep: ValidationReport) -> None:
    area = hs.area_m2()
    if area < MIN_AREA_M2:
        _err(rep, idx, fid, f"area {area:.1f} m² is implausibly small (minimum "
                            f"{MIN_AREA_M2:g} m²): check the coordinates or use a circle")
    elif area < SMALL_AREA_M2:
        _warn(rep, idx, fid, f"area {area:.0f} m² is small; GNSS error of a few metres will "
                             "make visits hard to confirm")
    elif area > MAX_AREA_M2:
        _err(rep, idx, fid, f"area {area / 1e6:.2f} km² is implausibly large for a hot spot "
                            f"(maximum {MAX_AREA_M2 / 1e6:g} km²): split it or check the "
                            "coordinates")
    elif area > LARGE_AREA_M2:
        _warn(rep, idx, fid, f"area {area / 1e6:.2f} km² is large for a hot spot")
    w, s, e, n = hs.bounds()
    frame = hs.frame()
    kxq, kyq = scale_factors(frame.lat0_e6 / 1e6)
    for label, ext, metres_per in (
        ("east-west", (e - w) * 1e6, frame.mx),
        ("north-south", (n - s) * 1e6, frame.my),
    ):
        if ext > MAX_EXTENT_E6:
            _err(rep, idx, fid, f"spans {ext * metres_per:.0f} m {label}; the device format "
                                f"allows at most {MAX_EXTENT_E6 * metres_per:.0f} m here: "
                                "split it into smaller hot spots")
