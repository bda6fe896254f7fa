"""WGS84 ⇄ British National Grid (EPSG:27700) through pyproj, vectorised."""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def _transformer(src: str, dst: str):
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def to_bng(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude (degrees) to easting/northing (metres)."""
    return _transformer("EPSG:4326", "EPSG:27700").transform(np.asarray(lon), np.asarray(lat))


def to_wgs84(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Easting/northing (metres) to longitude/latitude (degrees)."""
    return _transformer("EPSG:27700", "EPSG:4326").transform(np.asarray(x), np.asarray(y))
