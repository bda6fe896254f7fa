"""Counts and harm per cell: square cells on the British National Grid, or H3 hexagons.

Square cells are ``cell_m`` metres on a side, aligned to BNG metres (so two analyses with the
same size share cells). The study area is the bounding box of the crimes, one cell wider on
every side, and every cell in it counts (empty cells are part of the picture Gi* compares
against). H3 cells use the resolution whose hexagon (twice the edge) is closest to ``cell_m``;
the study area is the occupied hexagons and their neighbours.

Neighbours: a cell and the 8 around it (queen contiguity) for squares; a hexagon and its 6
for H3. The cell itself is included, as Gi* (the "star") wants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Refuse grids larger than this many cells (about 1.2 GB of float64 work arrays).
MAX_CELLS = 20_000_000


class GridError(ValueError):
    """The grid cannot be built (no crimes, area too large for the cell size)."""


@dataclass
class Grid:
    """Cells with their crime counts and harm, and a way to find neighbours.

    For ``kind == "square"`` the cells form a dense ``ny`` × ``nx`` raster (row-major,
    ``origin`` the south-west corner in BNG metres); for ``"h3"`` ``ids`` are H3 indexes and
    ``neighbours`` lists, per cell, the indexes of its neighbours (itself included).
    """

    kind: str
    cell_m: float
    count: np.ndarray
    harm: np.ndarray
    crime_cell: np.ndarray  # per crime, the index of its cell
    nx: int = 0
    ny: int = 0
    origin: tuple[float, float] = (0.0, 0.0)
    ids: list[str] | None = None
    neighbours: list[np.ndarray] | None = None
    resolution: int | None = None

    def __len__(self) -> int:
        return len(self.count)

    def centre_xy(self, idx: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """BNG centre of cells."""
        idx = np.asarray(idx)
        if self.kind == "square":
            iy, ix = np.divmod(idx, self.nx)
            return (self.origin[0] + (ix + 0.5) * self.cell_m,
                    self.origin[1] + (iy + 0.5) * self.cell_m)
        import h3

        from planning.projection import to_bng

        pts = [h3.cell_to_latlng(self.ids[int(i)]) for i in np.atleast_1d(idx)]
        lon = np.array([p[1] for p in pts])
        lat = np.array([p[0] for p in pts])
        x, y = to_bng(lon, lat)
        return (x, y) if idx.ndim else (x[0], y[0])

    def polygon_xy(self, i: int) -> list[tuple[float, float]]:
        """The cell's outline in BNG metres (closed ring)."""
        if self.kind == "square":
            iy, ix = divmod(int(i), self.nx)
            x0, y0 = self.origin[0] + ix * self.cell_m, self.origin[1] + iy * self.cell_m
            c = self.cell_m
            return [(x0, y0), (x0 + c, y0), (x0 + c, y0 + c), (x0, y0 + c), (x0, y0)]
        import h3

        from planning.projection import to_bng

        ring = h3.cell_to_boundary(self.ids[int(i)])
        x, y = to_bng(np.array([p[1] for p in ring]), np.array([p[0] for p in ring]))
        pts = list(zip(x.tolist(), y.tolist(), strict=True))
        return pts + [pts[0]]

    def neighbours_of(self, i: int) -> np.ndarray:
        """Indexes of the cell's neighbours, itself included."""
        if self.kind == "square":
            iy, ix = divmod(int(i), self.nx)
            out = [(y * self.nx + x) for y in range(iy - 1, iy + 2) for x in range(ix - 1, ix + 2)
                   if 0 <= x < self.nx and 0 <= y < self.ny]
            return np.array(out)
        return self.neighbours[int(i)]

    def cell_label(self, i: int) -> str:
        """A stable name for the cell: BNG corner (``E530150N177300``) or the H3 index."""
        if self.kind == "square":
            iy, ix = divmod(int(i), self.nx)
            return (f"E{self.origin[0] + ix * self.cell_m:.0f}"
                    f"N{self.origin[1] + iy * self.cell_m:.0f}")
        return self.ids[int(i)]


def square_grid(x: np.ndarray, y: np.ndarray, harm: np.ndarray, cell_m: float) -> Grid:
    """Count crimes and sum harm into square BNG cells of ``cell_m`` metres."""
    if len(x) == 0:
        raise GridError("no crimes to grid")
    if not cell_m > 0:
        raise GridError(f"cell size must be positive, got {cell_m}")
    x0 = (math.floor(float(x.min()) / cell_m) - 1) * cell_m
    y0 = (math.floor(float(y.min()) / cell_m) - 1) * cell_m
    nx = int(math.floor((float(x.max()) - x0) / cell_m)) + 2
    ny = int(math.floor((float(y.max()) - y0) / cell_m)) + 2
    if nx * ny > MAX_CELLS:
        raise GridError(f"{nx} x {ny} cells of {cell_m:g} m is more than {MAX_CELLS:,}: use larger"
                        " cells or a smaller area")
    ix = ((x - x0) // cell_m).astype(np.int64)
    iy = ((y - y0) // cell_m).astype(np.int64)
    cell = iy * nx + ix
    count = np.bincount(cell, minlength=nx * ny).astype(float)
    total = np.bincount(cell, weights=harm, minlength=nx * ny)
    return Grid("square", cell_m, count, total, cell, nx=nx, ny=ny, origin=(x0, y0))


def h3_resolution(cell_m: float) -> int:
    """The H3 resolution whose hexagons (twice the mean edge) are closest to ``cell_m``."""
    import h3

    return min(range(0, 16), key=lambda r: abs(math.log(
        2 * h3.average_hexagon_edge_length(r, "m") / cell_m)))


def h3_grid(lon: np.ndarray, lat: np.ndarray, harm: np.ndarray, cell_m: float) -> Grid:
    """Count crimes and sum harm into H3 hexagons near ``cell_m`` across."""
    import h3

    if len(lon) == 0:
        raise GridError("no crimes to grid")
    res = h3_resolution(cell_m)
    cells_of = [h3.latlng_to_cell(la, lo, res) for lo, la in zip(lon.tolist(), lat.tolist(),
                                                                 strict=True)]
    occupied = sorted(set(cells_of))
    area = set(occupied)
    for c in occupied:
        area.update(h3.grid_disk(c, 1))
    ids = sorted(area)
    index = {c: i for i, c in enumerate(ids)}
    crime_cell = np.array([index[c] for c in cells_of], dtype=np.int64)
    count = np.bincount(crime_cell, minlength=len(ids)).astype(float)
    total = np.bincount(crime_cell, weights=harm, minlength=len(ids))
    neighbours = [np.array([index[n] for n in h3.grid_disk(c, 1) if n in index]) for c in ids]
    edge = h3.average_hexagon_edge_length(res, "m")
    return Grid("h3", 2 * edge, count, total, crime_cell, ids=ids, neighbours=neighbours,
                resolution=res)
