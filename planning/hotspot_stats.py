"""Getis-Ord Gi*: is a cell and its neighbourhood hotter than the study area as a whole?

For cell *i* with binary weights ``w_ij`` (1 for the cell itself and its neighbours), values
``x`` over all ``n`` cells, mean ``x̄`` and ``S = sqrt(Σx²/n − x̄²)``::

    Gi* = (Σ_j w_ij x_j − x̄ W_i) / (S · sqrt((n Σ_j w_ij² − W_i²) / (n − 1))),  W_i = Σ_j w_ij

(Getis & Ord 1992; Ord & Getis 1995), a z-score. The p-value is one-sided (hot spots only).
Testing thousands of cells at once finds some "significant" by chance, so the p-values are
corrected with the Benjamini-Hochberg false discovery rate (``q`` values): a cell is a hot
spot when ``q ≤ alpha``.

Why not esda/libpysal: esda 2.9 brings libpysal, geopandas, pyogrio (a GDAL build),
scikit-learn, scipy, pandas, requests and beautifulsoup4, well over 100 MB on a Raspberry Pi,
for one formula. With binary contiguity weights the neighbourhood sums are a 3×3 box sum on
the square raster (numpy shifts, no weights matrix at all: 300,000 crimes over 100,000+ cells
take well under a second) and a gather over 7 indexes for H3. The test suite checks the result
against a hand-computed case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planning.grid import Grid


@dataclass
class GiStar:
    """Gi* z-scores, one-sided p-values and BH q-values per cell, and which cells are hot."""

    z: np.ndarray
    p: np.ndarray
    q: np.ndarray
    hot: np.ndarray  # bool: z > 0 and q <= alpha
    alpha: float


def _box_sum(a: np.ndarray) -> np.ndarray:
    """Sum of each cell's 3×3 neighbourhood (cells beyond the edge count as absent)."""
    p = np.pad(a, 1)
    ny, nx = a.shape
    out = np.zeros_like(a)
    for dy in range(3):
        for dx in range(3):
            out += p[dy:dy + ny, dx:dx + nx]
    return out


def neighbourhood_sums(grid: Grid, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Σ_j w_ij x_j, W_i) for every cell, binary weights including the cell itself."""
    if grid.kind == "square":
        v = values.reshape(grid.ny, grid.nx)
        ones = np.ones_like(v)
        return _box_sum(v).ravel(), _box_sum(ones).ravel()
    lengths = np.array([len(nb) for nb in grid.neighbours])
    flat = np.concatenate(grid.neighbours)
    owner = np.repeat(np.arange(len(grid.neighbours)), lengths)
    sums = np.bincount(owner, weights=values[flat], minlength=len(grid.neighbours))
    return sums, lengths.astype(float)


def gi_star(values: np.ndarray, sums: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Gi* z-scores from the values, their neighbourhood sums and the weight totals."""
    n = len(values)
    if n < 2:
        return np.zeros(n)
    mean = values.mean()
    s = math.sqrt(max(float((values ** 2).mean() - mean ** 2), 0.0))
    if s == 0.0:
        return np.zeros(n)
    denom = s * np.sqrt((n * weights - weights ** 2) / (n - 1))  # binary: Σw² = W
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (sums - mean * weights) / denom
    return np.where(denom > 0, z, 0.0)


def upper_p(z: np.ndarray) -> np.ndarray:
    """One-sided p-value P(Z ≥ z) for a standard normal."""
    return 0.5 * np.frompyfunc(math.erfc, 1, 1)(z / math.sqrt(2.0)).astype(float)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values): reject where ``q ≤ alpha`` controls the FDR at alpha."""
    n = len(p)
    if n == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(n)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def hot_cells(grid: Grid, values: np.ndarray, alpha: float = 0.05) -> GiStar:
    """Gi* over the grid with a BH correction at ``alpha``."""
    sums, weights = neighbourhood_sums(grid, values)
    z = gi_star(values, sums, weights)
    p = upper_p(z)
    q = benjamini_hochberg(p)
    return GiStar(z, p, q, (z > 0) & (q <= alpha), alpha)
