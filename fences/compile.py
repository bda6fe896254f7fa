"""Compile validated hot spot GeoJSON into the device's fence-set format (``HSF1``).

The layout is documented in ``docs/fences.md`` and parsed by ``tracker.fence.FenceSet``. The
version is a content hash (the first 6 bytes of SHA-256, in hex, over the header with its version
field zeroed and the body), so the same hot spots compiled with the same options always give the
same version, on any machine, and no byte of a set can change without its version changing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient
from shapely.ops import polylabel

from fences.geo import DEFAULT_TOLERANCE_M, LocalFrame, metres_per_e6, scale_factors
from fences.validate import MAX_EXTENT_E6, FenceError, HotSpot, validate

MAGIC = b"HSF1"
HEADER = "<4s12sHHHHHHiiBBHHHHH"
DEFAULT_NEAR_M = 250
DEFAULT_GRID_SHIFT = 12
MAX_GRID_SHIFT = 18
GRID_SMALL_BYTES = 2048
GRID_CELLS_PER_FENCE = 4
H_CAP_M = 50.0
#: What the device reads into RAM at once (``tracker.fence.FenceStore.window``): the fences of
#: one grid cell. Bounded so that no allocation on the device exceeds 4 KB (docs/memory.md).
CELL_MAX_FENCES = 64
CELL_MAX_VERTICES = 1024
SMALL_INT_LIMIT = 1 << 30


@dataclass
class CompiledFence:
    """What the compiler did to one hot spot (for the size report and ``show``)."""

    fence_id: str
    name: str
    density: int
    kind: str
    vertices_in: int
    vertices_out: int
    rings: int
    shift_m: float
    area_m2: float
    hysteresis_cap_m: float


@dataclass
class CompiledFences:
    """A compiled fence set: ``data`` (binary) and ``text`` (JSON wrapper) carry the same set."""

    data: bytes
    version: str
    tolerance_m: float
    near_m: int
    fences: list[CompiledFence] = field(default_factory=list)
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The JSON wrapper that ``FenceSet.from_json`` reads (base64 of :attr:`data`)."""
        return json.dumps(
            {"format": "hsf1", "version": self.version,
             "data": base64.b64encode(self.data).decode("ascii")},
            separators=(",", ":"),
        )

    def size_report(self) -> str:
        """Human-readable sizes: total, per section and per fence, plus simplification."""
        lines = [
            f"fence set {self.version}: {len(self.fences)} fences, {len(self.data)} bytes "
            f"binary, {len(self.text)} bytes JSON (tolerance {self.tolerance_m:g} m, "
            f"near range {self.near_m} m)",
            "sections: " + ", ".join(f"{k} {v}" for k, v in self.sections.items()),
        ]
        for f in self.fences:
            lines.append(
                f"  {f.fence_id:<16} {f.kind:<7} vertices {f.vertices_in:>4} -> "
                f"{f.vertices_out:<4} rings {f.rings:<2} max shift {f.shift_m:5.2f} m  "
                f"area {f.area_m2:>10.0f} m²"
            )
        return "\n".join(lines)


def compile_geojson(
    geojson: dict | str | Path,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    near_m: int = DEFAULT_NEAR_M,
    grid_shift: int = DEFAULT_GRID_SHIFT,
) -> CompiledFences:
    """Validate and compile hot spots to the device format.

    :param geojson: a FeatureCollection (dict, JSON text or path).
    :param tolerance_m: maximum boundary shift allowed by simplification (0 keeps every vertex).
        Simplification never changes topology: a fence whose simplified outline would change
        its number of parts or holes, become invalid or move by more than the tolerance keeps
        its original vertices.
    :param near_m: range around each fence's bounding box within which the device computes
        distances (and beyond which ``nearest_m`` is capped).
    :param grid_shift: smallest prefilter cell size as a power of two in micro-degrees; the
        compiler coarsens the grid until a fence touches about four cells on average.
    :raises FenceError: listing every problem when the input is invalid or does not fit.
    """
    if not 0 <= tolerance_m <= 10:
        raise FenceError(f"tolerance {tolerance_m} m is out of range 0..10 m")
    if not 10 <= near_m <= 2000:
        raise FenceError(f"near range {near_m} m is out of range 10..2000 m")
    report = validate(geojson)
    report.raise_for_errors()
    # The near margin in latitude micro-degrees, generous for any latitude.
    near_lat = math.ceil(near_m / metres_per_e6(0.0)[1])
    out = _Builder(near_lat, near_m, grid_shift)
    problems = []
    infos = []
    for hs in report.hotspots:
        try:
            infos.append(out.add(hs, tolerance_m))
        except FenceError as e:
            problems.append(f"feature {hs.index} (id {hs.fence_id!r}): {e}")
    if problems:
        raise FenceError("cannot compile:\n" + "\n".join(problems))
    data, sections, version = out.build()
    return CompiledFences(data, version, tolerance_m, near_m, infos, sections)


class _Builder:
    def __init__(self, near_lat: int, near_m: int, grid_shift: int) -> None:
        self.near_lat = near_lat
        self.near_m = near_m
        self.grid_shift = grid_shift
        self.lat0 = array("i")
        self.lon0 = array("i")
        self.bb = array("h")
        self.kxq = array("H")
        self.kyq = array("H")
        self.hmax = array("H")
        self.radius = array("H")
        self.density = bytearray()
        self.ring = array("H", [0])
        self.rstart = array("H", [0])
        self.v = array("h")
        self.strings: list[bytes] = []
        self.near_lon: list[int] = []

    def add(self, hs: HotSpot, tolerance_m: float) -> CompiledFence:
        frame = hs.frame()
        lat0, lon0 = frame.lat0_e6, frame.lon0_e6
        kxq, kyq = scale_factors(lat0 / 1e6)
        near_lon = self.near_lat * kyq // kxq + 1
        if hs.circle:
            lon, lat, r_m = hs.circle
            r_e6 = round(r_m / frame.my)
            rx_e6 = math.ceil(r_m / frame.mx)
            bbox = (-rx_e6, -r_e6, rx_e6, r_e6)
            rings: list[list[tuple[int, int]]] = []
            info = CompiledFence(hs.fence_id, hs.name, hs.density, "circle", 1, 0, 0,
                                 abs(r_e6 * frame.my - r_m), hs.area_m2(),
                                 min(H_CAP_M, max(1.0, r_m / 2)))
            hcap = info.hysteresis_cap_m
        else:
            rings, shift_m, n_in = _simplify(hs, frame, tolerance_m)
            xs = [x for ring in rings for x, _ in ring]
            ys = [y for ring in rings for _, y in ring]
            bbox = (min(xs), min(ys), max(xs), max(ys))
            geom_xy = frame.geom_to_xy(hs.geometry)
            inradius = _inradius(geom_xy)
            hcap = min(H_CAP_M, max(1.0, inradius / 2))
            info = CompiledFence(hs.fence_id, hs.name, hs.density, "polygon", n_in,
                                 sum(len(r) for r in rings), len(rings), shift_m,
                                 geom_xy.area, hcap)
            r_e6 = 0
        _check_bounds(bbox, near_lon, self.near_lat, kxq, kyq, r_e6)
        self.lat0.append(lat0)
        self.lon0.append(lon0)
        self.bb.extend(bbox)
        self.kxq.append(kxq)
        self.kyq.append(kyq)
        self.hmax.append(max(4, round(hcap * 4)))
        self.radius.append(r_e6)
        self.density.append(hs.density)
        for ring in rings:
            for x, y in ring:
                self.v.extend((x, y))
            self.rstart.append(len(self.v) // 2)
        self.ring.append(len(self.rstart) - 1)
        self.strings.append(hs.fence_id.encode())
        self.strings.append(hs.name.encode())
        self.near_lon.append(near_lon)
        if len(self.v) // 2 > 0xFFFF:
            raise FenceError("the set has more than 65535 vertices: split it")
        return info

    def _grid(self) -> tuple[int, int, int, int, int, array, array, array]:
        n = len(self.lat0)
        boxes = []
        for i in range(n):
            x0, y0, x1, y1 = self.bb[4 * i: 4 * i + 4]
            boxes.append((
                self.lat0[i] + y0 - self.near_lat, self.lon0[i] + x0 - self.near_lon[i],
                self.lat0[i] + y1 + self.near_lat, self.lon0[i] + x1 + self.near_lon[i],
            ))
        if not boxes:
            return 0, 0, self.grid_shift, 1, 1, array("i"), array("H", [0]), array("H")
        g_lat0 = min(b[0] for b in boxes) - 1
        g_lon0 = min(b[1] for b in boxes) - 1
        max_lat = max(b[2] for b in boxes)
        max_lon = max(b[3] for b in boxes)
        shift = self.grid_shift
        while True:
            rows = ((max_lat - g_lat0) >> shift) + 1
            cols = ((max_lon - g_lon0) >> shift) + 1
            if rows <= 0xFFFF and cols <= 0xFFFF and rows * cols < SMALL_INT_LIMIT:
                cells = _cells(boxes, g_lat0, g_lon0, shift, cols)
                entries = sum(len(v) for v in cells.values())
                # Coarser cells until each fence sits in a few of them on average: the grid
                # must not cost more RAM than the fences themselves.
                grid_bytes = 6 * len(cells) + 2 * entries
                if grid_bytes <= GRID_SMALL_BYTES or entries <= GRID_CELLS_PER_FENCE * n:
                    break
                if shift >= MAX_GRID_SHIFT:
                    break
            shift += 1
        keys = array("i", sorted(cells))
        off = array("H", [0])
        ent = array("H")
        for k in keys:
            ent.extend(cells[k])
            off.append(len(ent))
        if len(ent) > 0xFFFF:
            raise FenceError("prefilter grid too large: raise grid_shift")
        for k in keys:
            near = cells[k]
            nv = sum(self.rstart[self.ring[i + 1]] - self.rstart[self.ring[i]] for i in near)
            if len(near) > CELL_MAX_FENCES or nv > CELL_MAX_VERTICES:
                row, col = divmod(k, cols)
                lat = (g_lat0 + (row << shift)) / 1e6
                lon = (g_lon0 + (col << shift)) / 1e6
                raise FenceError(
                    f"{len(near)} hot spots with {nv} vertices are within the near range of"
                    f" the grid cell at {lat:.5f},{lon:.5f}; a tracker holds at most"
                    f" {CELL_MAX_FENCES} hot spots and {CELL_MAX_VERTICES} vertices at once:"
                    " simplify them (--tolerance-m), merge neighbours or lower the near range")
        return g_lat0, g_lon0, shift, rows, cols, keys, off, ent

    def build(self) -> tuple[bytes, dict[str, int], str]:
        n = len(self.lat0)
        g_lat0, g_lon0, shift, rows, cols, keys, off, ent = self._grid()
        soff = array("H", [0])
        blob = b""
        for s in self.strings:
            blob += s
            soff.append(len(blob))
        if len(blob) > 0xFFFF:
            raise FenceError("ids and names take more than 64 KiB: shorten them")
        near_lon_ok = all(v <= 0xFFFF for v in self.near_lon)
        if not near_lon_ok:
            raise FenceError("near range too large for this latitude")
        parts = [
            ("origins", _le(self.lat0) + _le(self.lon0)),
            ("boxes", _le(self.bb)),
            ("scales", _le(self.kxq) + _le(self.kyq) + _le(self.hmax)
             + _le(self.radius) + bytes(self.density)),
            ("rings", _le(self.ring) + _le(self.rstart)),
            ("vertices", _le(self.v)),
            ("grid", _le(keys) + _le(off) + _le(ent)),
            ("strings", _le(soff) + blob),
        ]
        body = b"".join(p for _, p in parts)
        fields = (n, len(self.rstart) - 1, len(self.v) // 2, len(keys), len(ent), len(blob),
                  g_lat0, g_lon0, shift, 0, cols, rows, self.near_lat, self.near_m, 0)
        # The hash covers the header (with the version field zeroed) and the body, so that no
        # byte of the set can change without the version changing.
        unsigned = struct.pack(HEADER, MAGIC, bytes(12), *fields)
        version = hashlib.sha256(unsigned + body).hexdigest()[:12]
        header = struct.pack(HEADER, MAGIC, version.encode("ascii"), *fields)
        sections = {"header": len(header)}
        sections.update({k: len(p) for k, p in parts})
        return header + body, sections, version


def _le(arr: array) -> bytes:
    """The array's bytes in little-endian order (the device format's), on any host."""
    if sys.byteorder == "little":
        return arr.tobytes()
    swapped = array(arr.typecode, arr)
    swapped.byteswap()
    return swapped.tobytes()


def _cells(boxes: list[tuple[int, int, int, int]], g_lat0: int, g_lon0: int, shift: int,
           cols: int) -> dict[int, list[int]]:
    """Map each grid cell key (row * cols + col) to the fences whose near box touches it."""
    cells: dict[int, list[int]] = {}
    for i, (la0, lo0, la1, lo1) in enumerate(boxes):
        for r in range((la0 - g_lat0) >> shift, ((la1 - g_lat0) >> shift) + 1):
            for c in range((lo0 - g_lon0) >> shift, ((lo1 - g_lon0) >> shift) + 1):
                cells.setdefault(r * cols + c, []).append(i)
    return cells


def _inradius(geom_xy: Polygon | MultiPolygon) -> float:
    polys = geom_xy.geoms if isinstance(geom_xy, MultiPolygon) else [geom_xy]
    best = 0.0
    for p in polys:
        label = polylabel(p, tolerance=0.5)
        best = max(best, p.exterior.distance(label) if not p.interiors
                   else p.boundary.distance(label))
    return best


def _simplify(hs: HotSpot, frame: LocalFrame,
              tolerance_m: float) -> tuple[list[list[tuple[int, int]]], float, int]:
    """Return the rings as open lists of (x, y) micro-degree offsets from the origin."""
    geom = orient_all(hs.geometry)
    n_in = int(shapely.get_num_coordinates(geom))
    original_xy = frame.geom_to_xy(geom)
    candidates = [geom]
    if tolerance_m > 0:
        simple_xy = original_xy.simplify(tolerance_m, preserve_topology=True)
        if _same_topology(original_xy, simple_xy):
            candidates.insert(0, orient_all(frame.geom_to_lonlat(simple_xy)))
    for cand in candidates:
        rings = _to_rings(cand, frame)
        if rings is None:
            continue
        rounded = _rings_to_geom(rings, cand, frame)
        if rounded is None or not rounded.is_valid or not _same_topology(geom, rounded):
            continue
        shift = original_xy.hausdorff_distance(frame.geom_to_xy(rounded))
        # Rounding to micro-degrees alone moves vertices by up to ~8 cm.
        if cand is not geom and shift > tolerance_m + 0.1:
            continue
        return rings, shift, n_in
    raise FenceError("outline does not survive rounding to micro-degrees (too thin or too "
                     "small): widen it")


def orient_all(geom: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    """Orient exterior rings counter-clockwise and holes clockwise (RFC 7946)."""
    if isinstance(geom, MultiPolygon):
        return MultiPolygon([orient(p, 1.0) for p in geom.geoms])
    return orient(geom, 1.0)


def _same_topology(a: Polygon | MultiPolygon, b: Polygon | MultiPolygon) -> bool:
    if b.is_empty or not b.is_valid or a.geom_type != b.geom_type:
        return False
    pa = a.geoms if isinstance(a, MultiPolygon) else [a]
    pb = b.geoms if isinstance(b, MultiPolygon) else [b]
    if len(pa) != len(pb):
        return False
    return all(len(x.interiors) == len(y.interiors) for x, y in zip(pa, pb, strict=True))


def _to_rings(geom: Polygon | MultiPolygon,
              frame: LocalFrame) -> list[list[tuple[int, int]]] | None:
    polys = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    rings = []
    for p in polys:
        for ring in [p.exterior, *p.interiors]:
            pts: list[tuple[int, int]] = []
            for lon, lat in list(ring.coords)[:-1]:
                pt = (round(lon * 1e6) - frame.lon0_e6, round(lat * 1e6) - frame.lat0_e6)
                if not pts or pts[-1] != pt:
                    pts.append(pt)
            while len(pts) > 1 and pts[0] == pts[-1]:
                pts.pop()
            if len(pts) < 3:
                return None
            rings.append(pts)
    return rings


def _rings_to_geom(rings: list[list[tuple[int, int]]], like: Polygon | MultiPolygon,
                   frame: LocalFrame) -> Polygon | MultiPolygon | None:
    polys = like.geoms if isinstance(like, MultiPolygon) else [like]
    out = []
    k = 0

    def deg(ring: list[tuple[int, int]]) -> list[tuple[float, float]]:
        return [((x + frame.lon0_e6) / 1e6, (y + frame.lat0_e6) / 1e6) for x, y in ring]

    for p in polys:
        shell = deg(rings[k])
        holes = [deg(rings[k + 1 + j]) for j in range(len(p.interiors))]
        k += 1 + len(p.interiors)
        out.append(Polygon(shell, holes))
    return MultiPolygon(out) if isinstance(like, MultiPolygon) else out[0]


def _check_bounds(bbox: tuple[int, int, int, int], near_lon: int, near_lat: int, kxq: int,
                  kyq: int, r_e6: int) -> None:
    """Prove that the device's per-fix integer maths stays within 31-bit small ints."""
    x0, y0, x1, y1 = bbox
    if x1 - x0 > MAX_EXTENT_E6 or y1 - y0 > MAX_EXTENT_E6:
        raise FenceError("too large for the device format: split it")
    for b in bbox:
        if not -0x8000 <= b <= 0x7FFF:
            raise FenceError("too large for the device format: split it")
    for name, value in device_bounds(bbox, near_lon, near_lat, kxq, kyq, r_e6).items():
        if value >= SMALL_INT_LIMIT:
            raise FenceError(f"intermediate {name} = {value} would overflow 31-bit ints: "
                             "make the hot spot smaller")


def device_bounds(bbox: tuple[int, int, int, int], near_lon: int, near_lat: int, kxq: int,
                  kyq: int, r_e6: int) -> dict[str, int]:
    """Worst-case magnitudes of the engine's intermediate values for one fence.

    Mirrors ``FenceSet.depth_q``; ``tests/test_fence_bounds.py`` checks it against an
    instrumented run of the engine.
    """
    x0, y0, x1, y1 = bbox
    ext_x = x1 - x0
    ext_y = y1 - y0
    dx = max(abs(x0 - near_lon), abs(x1 + near_lon))
    dy = max(abs(y0 - near_lat), abs(y1 + near_lat))
    # point and vertex coordinates in quarter metres
    pqx = dx * kxq >> 16
    pqy = dy * kyq >> 16
    vqx = max(abs(x0), abs(x1)) * kxq >> 16
    vqy = max(abs(y0), abs(y1)) * kyq >> 16
    wq = max(pqx + vqx, pqy + vqy) + 1
    eq = max(2 * vqx, 2 * vqy) + 1
    out = {
        "pip product": ext_x * ext_y,
        "dx*kxq": dx * kxq,
        "dy*kyq": dy * kyq,
        "dot": 2 * wq * eq,
        "len2": 2 * eq * eq,
        "dist2": 2 * wq * wq,
        "cross": 2 * wq * eq,
    }
    if r_e6:
        xu = (dx * kxq + kyq) // kyq
        out["circle x*kxq"] = dx * kxq + kyq
        out["circle r2"] = xu * xu + dy * dy
    return out
