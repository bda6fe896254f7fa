"""Reference evaluator (shapely, floats) that the device's integer engine is tested against.

:class:`ReferenceFences` answers the same questions as ``tracker.fence.FenceSet`` -- which hot
spots contain a point, and how far the point is from each boundary -- from the *source* GeoJSON,
in the same local equirectangular frame (:mod:`fences.geo`) as the device. Differences between
the two are then only the device's rounding (vertices to micro-degrees, distances to quarter
metres), which the tests bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.geometry import Point

from fences.geo import LocalFrame
from fences.validate import HotSpot, validate


@dataclass
class _Ref:
    hotspot: HotSpot
    frame: LocalFrame
    geom_xy: object  # shapely geometry in local metres (polygons only)


class ReferenceFences:
    """Shapely geometry for each hot spot of a GeoJSON document, in the order the compiler uses.

    :param geojson: the FeatureCollection (dict, JSON text or path); it must validate.
    """

    def __init__(self, geojson: dict | str | Path) -> None:
        report = validate(geojson)
        report.raise_for_errors()
        self.refs: list[_Ref] = []
        for hs in report.hotspots:
            frame = hs.frame()
            geom_xy = None if hs.circle else frame.geom_to_xy(hs.geometry)
            if geom_xy is not None:
                shapely.prepare(geom_xy)
            self.refs.append(_Ref(hs, frame, geom_xy))
        self.ids = [r.hotspot.fence_id for r in self.refs]
        self.tree = shapely.STRtree([shapely.box(*r.hotspot.bounds()) for r in self.refs])

    def __len__(self) -> int:
        return len(self.refs)

    def depth_m(self, i: int, lat_e6: int, lon_e6: int) -> float:
        """Signed distance (metres) from the point to fence ``i``'s boundary: + inside."""
        ref = self.refs[i]
        x, y = ref.frame.to_xy(lon_e6 / 1e6, lat_e6 / 1e6)
        if ref.hotspot.circle:
            return ref.hotspot.circle[2] - math.hypot(x, y)
        p = Point(x, y)
        d = ref.geom_xy.boundary.distance(p)
        return d if ref.geom_xy.contains(p) else -d

    def locate(self, lat_e6: int, lon_e6: int) -> list[int]:
        """Sorted indexes of the hot spots containing the point (bounding-box tree first)."""
        lon, lat = lon_e6 / 1e6, lat_e6 / 1e6
        hits = self.tree.query(Point(lon, lat))
        return sorted(int(i) for i in hits if self.depth_m(int(i), lat_e6, lon_e6) > 0)
