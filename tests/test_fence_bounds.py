"""The device's per-fix integer maths stays below 2**30 (31-bit small ints on boards).

``fences.compile.device_bounds`` is the compiler's worst-case estimate; here the real
``FenceSet.depth_q`` runs on traced integers that record every intermediate value, on the
largest fences the compiler accepts, at the corners of their near range, at several latitudes.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from fences.compile import SMALL_INT_LIMIT, compile_geojson, device_bounds
from fences.geo import LocalFrame
from fences.validate import MAX_EXTENT_E6, FenceError
from tracker.fence import FenceSet

_seen = [0]


class Traced(int):
    """An int that records the magnitude of every arithmetic result."""

    def _wrap(self, value):
        if isinstance(value, int):
            _seen[0] = max(_seen[0], abs(int(value)))
            return Traced(value)
        return value


def _op(name):
    base = getattr(int, name)

    def method(self, *args):
        return self._wrap(base(self, *args))

    return method


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__floordiv__", "__rfloordiv__", "__rshift__", "__lshift__", "__neg__",
              "__xor__", "__rxor__"):
    setattr(Traced, _name, _op(_name))

ARRAYS = ("lat0", "lon0", "bb", "kxq", "kyq", "radius", "ring", "rstart", "v", "near_lon")


def traced(fs: FenceSet) -> FenceSet:
    """Replace the set's arrays by lists of traced ints."""
    for name in ARRAYS:
        setattr(fs, name, [Traced(x) for x in getattr(fs, name)])
    fs.near_lat = Traced(fs.near_lat)
    return fs


def strip(lat_deg: float, width_m: float = 30.0) -> dict:
    """A diagonal strip spanning the largest extent the format allows, at ``lat_deg``."""
    frame = LocalFrame(round(lat_deg * 1e6), 0)
    w = width_m / frame.my
    ext = MAX_EXTENT_E6 - w - 10
    pts = [(0, 0), (ext, ext), (ext, ext - w), (0, -w)]
    ring = [[x / 1e6 - 0.0115, lat_deg + y / 1e6 - 0.0115] for x, y in pts]
    ring.append(ring[0])
    return {"type": "Feature", "properties": {"id": f"STRIP-{lat_deg:g}", "name": "strip",
                                              "density": 1},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def circle(lat_deg: float, radius_m: float) -> dict:
    return {"type": "Feature",
            "properties": {"id": f"C-{lat_deg:g}", "name": "circle", "density": 1,
                           "radius_m": radius_m},
            "geometry": {"type": "Point", "coordinates": [0.0005, lat_deg]}}


def extremes(fs: FenceSet, i: int, rng: random.Random) -> list[tuple[int, int]]:
    """Corners and edges of the near range around fence ``i``'s box, plus random points."""
    x0, y0, x1, y1 = (int(v) for v in fs.bb[4 * i: 4 * i + 4])
    nx, ny = int(fs.near_lon[i]), int(fs.near_lat)
    lat0, lon0 = int(fs.lat0[i]), int(fs.lon0[i])
    xs = [x0 - nx, x0, (x0 + x1) // 2, x1, x1 + nx]
    ys = [y0 - ny, y0, (y0 + y1) // 2, y1, y1 + ny]
    pts = [(lat0 + y, lon0 + x) for x, y in itertools.product(xs, ys)]
    for _ in range(200):
        pts.append((lat0 + rng.randint(y0 - ny, y1 + ny), lon0 + rng.randint(x0 - nx, x1 + nx)))
    return pts


@pytest.mark.parametrize("lat_deg", [0.0, 35.0, 51.48, 60.8, 70.0])
def test_largest_fences_keep_every_intermediate_below_2_to_the_30(lat_deg: float) -> None:
    radius = min(1000.0, MAX_EXTENT_E6 / 2 * LocalFrame(round(lat_deg * 1e6), 0).mx * 0.99)
    doc = {"type": "FeatureCollection", "features": [strip(lat_deg), circle(lat_deg, radius)]}
    compiled = compile_geojson(doc, tolerance_m=0)
    fs = FenceSet.from_bytes(compiled.data)
    plain = FenceSet.from_bytes(compiled.data)
    traced(fs)
    rng = random.Random(1)
    for i in range(len(fs)):
        bounds = device_bounds(tuple(plain.bb[4 * i: 4 * i + 4]), plain.near_lon[i],
                               plain.near_lat, plain.kxq[i], plain.kyq[i], plain.radius[i])
        assert max(bounds.values()) < SMALL_INT_LIMIT
        _seen[0] = 0
        for lat, lon in extremes(plain, i, rng):
            got = fs.depth_q(i, Traced(lat), Traced(lon))
            assert int(got) == plain.depth_q(i, lat, lon)  # tracing changes nothing
        # Coordinates themselves (about 5e7) are inputs, not intermediates of the per-fix maths:
        # the largest traced value must be below the small-int limit and the compiler's bound.
        assert _seen[0] < SMALL_INT_LIMIT
        assert _seen[0] <= max(max(bounds.values()), 180_000_000), (_seen[0], bounds)


def test_traced_values_beyond_coordinates_are_bounded_by_device_bounds() -> None:
    doc = {"type": "FeatureCollection", "features": [strip(51.48)]}
    compiled = compile_geojson(doc, tolerance_m=0)
    plain = FenceSet.from_bytes(compiled.data)
    bounds = device_bounds(tuple(plain.bb[0:4]), plain.near_lon[0], plain.near_lat,
                           plain.kxq[0], plain.kyq[0], 0)
    fs = traced(FenceSet.from_bytes(compiled.data))
    # Work in offsets from the origin so only the engine's own products are traced.
    fs.lat0 = [Traced(0)]
    fs.lon0 = [Traced(0)]
    _seen[0] = 0
    for lat, lon in extremes(plain, 0, random.Random(2)):
        fs.depth_q(0, Traced(lat - plain.lat0[0]), Traced(lon - plain.lon0[0]))
    assert 0 < _seen[0] <= max(bounds.values())
    # The bound is not slack by orders of magnitude: it is a useful estimate.
    assert _seen[0] * 64 > max(bounds.values())


def test_fence_wider_than_the_format_is_rejected_with_a_clear_message() -> None:
    f = strip(51.48)
    ring = f["geometry"]["coordinates"][0]
    f["geometry"]["coordinates"][0] = [[p[0] * 1.3, p[1]] for p in ring]
    with pytest.raises(FenceError) as info:
        compile_geojson({"type": "FeatureCollection", "features": [f]})
    assert "STRIP-51.48" in str(info.value) and "split it" in str(info.value)


def test_scale_factors_fit_unsigned_16_bits_at_every_latitude() -> None:
    from fences.geo import scale_factors

    for lat in range(-80, 81, 5):
        kx, ky = scale_factors(lat)
        assert 0 < kx <= 0xFFFF and 0 < ky <= 0xFFFF
        assert math.isclose(ky / kx, 1 / math.cos(math.radians(lat)), rel_tol=0.01)
