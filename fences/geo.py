"""Local projection shared by the compiler, the validator and the reference evaluator.

The device measures distances in a local equirectangular projection centred on each fence's
origin, with WGS84 meridional and prime-vertical radii at the origin's latitude. The host side
uses the very same scale factors (as floats) so that the reference evaluator agrees with the
device to within rounding.
"""

from __future__ import annotations

import math

WGS84_A = 6378137.0
WGS84_E2 = 0.00669437999014

#: Largest boundary shift the compiler's simplification may cause by default, in metres of this
#: projection (here rather than in fences.compile so that the CLI shows it without loading
#: shapely and numpy).
DEFAULT_TOLERANCE_M = 1.0
#: Quarter metres are the device's distance unit; scale factors carry 16 fractional bits.
QM_PER_M = 4
SCALE_BITS = 16


def metres_per_e6(lat_deg: float) -> tuple[float, float]:
    """Return (metres per micro-degree of longitude, metres per micro-degree of latitude).

    :param lat_deg: latitude of the local origin in degrees.
    """
    phi = math.radians(lat_deg)
    s2 = math.sin(phi) ** 2
    w = math.sqrt(1.0 - WGS84_E2 * s2)
    m_radius = WGS84_A * (1.0 - WGS84_E2) / (w * w * w)
    n_radius = WGS84_A / w
    k = math.pi / 180.0 * 1e-6
    return n_radius * math.cos(phi) * k, m_radius * k


def scale_factors(lat_deg: float) -> tuple[int, int]:
    """Return the device's integer factors (kxq, kyq): quarter metres per micro-degree << 16."""
    mx, my = metres_per_e6(lat_deg)
    f = QM_PER_M * (1 << SCALE_BITS)
    return max(1, round(mx * f)), max(1, round(my * f))


class LocalFrame:
    """Equirectangular metres around an origin given in micro-degrees.

    :param lat0_e6: origin latitude, micro-degrees.
    :param lon0_e6: origin longitude, micro-degrees.
    """

    def __init__(self, lat0_e6: int, lon0_e6: int) -> None:
        self.lat0_e6 = lat0_e6
        self.lon0_e6 = lon0_e6
        self.mx, self.my = metres_per_e6(lat0_e6 / 1e6)

    def to_xy(self, lon_deg: float, lat_deg: float) -> tuple[float, float]:
        """Project degrees to local metres (x east, y north); numpy arrays work element-wise."""
        return (
            (lon_deg * 1e6 - self.lon0_e6) * self.mx,
            (lat_deg * 1e6 - self.lat0_e6) * self.my,
        )

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        """Inverse of :meth:`to_xy` (also element-wise on numpy arrays)."""
        return (
            (x / self.mx + self.lon0_e6) / 1e6,
            (y / self.my + self.lat0_e6) / 1e6,
        )

    def e6_to_xy(self, lat_e6, lon_e6):
        """Project micro-degrees to local metres: ``(x, y)``; numpy arrays work element-wise."""
        return (lon_e6 - self.lon0_e6) * self.mx, (lat_e6 - self.lat0_e6) * self.my

    def xy_to_e6(self, x, y):
        """Inverse of :meth:`e6_to_xy`, unrounded: ``(lat_e6, lon_e6)`` as floats."""
        return y / self.my + self.lat0_e6, x / self.mx + self.lon0_e6

    def geom_to_xy(self, geom):
        """Project a shapely geometry given in lon/lat degrees to local metres."""
        import shapely

        return shapely.transform(geom, self._fwd)

    def geom_to_lonlat(self, geom):
        """Project a shapely geometry in local metres back to lon/lat degrees."""
        import shapely

        return shapely.transform(geom, self._inv)

    def _fwd(self, coords):
        out = coords.copy()
        out[:, 0] = (coords[:, 0] * 1e6 - self.lon0_e6) * self.mx
        out[:, 1] = (coords[:, 1] * 1e6 - self.lat0_e6) * self.my
        return out

    def _inv(self, coords):
        out = coords.copy()
        out[:, 0] = (coords[:, 0] / self.mx + self.lon0_e6) / 1e6
        out[:, 1] = (coords[:, 1] / self.my + self.lat0_e6) / 1e6
        return out
