"""Travel times over a road (or footpath) network the user supplies, instead of straight lines.

The network is GeoJSON: ``LineString``/``MultiLineString`` features in WGS84, such as an export
of the streets around the hot spots. Lines that share a vertex (to the centimetre) are
connected; a line crossing another without a shared vertex is a bridge, not a junction, as in
OpenStreetMap. Each hot spot centre and the station join the network at the nearest vertex
(the straight distance to it is added, without detour); travel between them is the shortest
path (Dijkstra) at the walking or driving speed.
"""

from __future__ import annotations

import heapq
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from planning.projection import to_bng

#: Points farther than this from every vertex are not on the network: an error, not a guess.
MAX_SNAP_M = 500.0


class RoadError(ValueError):
    """The network cannot be used (not LineStrings, not connected, too far from a point)."""


class RoadNetwork:
    """A graph of vertices (BNG metres) and edge lengths."""

    def __init__(self, xy: np.ndarray, edges: dict[int, list[tuple[int, float]]]) -> None:
        self.xy = xy
        self.edges = edges

    @classmethod
    def load(cls, path: str | Path) -> RoadNetwork:
        """Read a GeoJSON network.

        :raises RoadError: when the file has no lines or cannot be read.
        """
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RoadError(f"cannot read road network {path}: {exc}") from exc
        features = doc.get("features", []) if isinstance(doc, dict) else []
        lines = []
        for f in features:
            g = (f or {}).get("geometry") or {}
            if g.get("type") == "LineString":
                lines.append(g["coordinates"])
            elif g.get("type") == "MultiLineString":
                lines.extend(g["coordinates"])
        lines = [ln for ln in lines if len(ln) >= 2]
        if not lines:
            raise RoadError(f"{path} has no LineString features")
        flat = np.array([pt[:2] for ln in lines for pt in ln], dtype=float)
        x, y = to_bng(flat[:, 0], flat[:, 1])
        index: dict[tuple[int, int], int] = {}
        ids = []
        for xi, yi in zip(np.round(x * 100).astype(np.int64).tolist(),
                          np.round(y * 100).astype(np.int64).tolist(), strict=True):
            ids.append(index.setdefault((xi, yi), len(index)))
        xy = np.zeros((len(index), 2))
        for (xi, yi), k in index.items():
            xy[k] = (xi / 100, yi / 100)
        edges: dict[int, list[tuple[int, float]]] = defaultdict(list)
        pos = 0
        for ln in lines:
            for a, b in zip(ids[pos:pos + len(ln) - 1], ids[pos + 1:pos + len(ln)],
                            strict=True):
                if a != b:
                    d = float(math.dist(xy[a], xy[b]))
                    edges[a].append((b, d))
                    edges[b].append((a, d))
            pos += len(ln)
        return cls(xy, dict(edges))

    def snap(self, px: float, py: float) -> tuple[int, float]:
        """Nearest vertex and its distance.

        :raises RoadError: when it is farther than :data:`MAX_SNAP_M`.
        """
        d = np.hypot(self.xy[:, 0] - px, self.xy[:, 1] - py)
        k = int(np.argmin(d))
        if d[k] > MAX_SNAP_M:
            raise RoadError(f"a point is {d[k]:.0f} m from the road network (more than"
                            f" {MAX_SNAP_M:.0f} m): does the network cover every hot spot?")
        return k, float(d[k])

    def distances_from(self, source: int, targets: set[int]) -> dict[int, float]:
        """Shortest path lengths (m) from ``source`` to ``targets`` (Dijkstra, stops early)."""
        dist = {source: 0.0}
        left = set(targets)
        heap = [(0.0, source)]
        while heap and left:
            d, u = heapq.heappop(heap)
            if d > dist.get(u, math.inf):
                continue
            left.discard(u)
            for v, w in self.edges.get(u, ()):
                nd = d + w
                if nd < dist.get(v, math.inf):
                    dist[v] = nd
                    heapq.heappush(heap, (nd, v))
        return {t: dist[t] for t in targets if t in dist}

    def travel_matrix(self, points: np.ndarray, speed_mps: float) -> np.ndarray:
        """Whole seconds between every pair of ``points`` (BNG metres) over the network.

        :raises RoadError: when a point is off the network or two points are not connected.
        """
        snapped = [self.snap(float(px), float(py)) for px, py in points]
        nodes = {k for k, _ in snapped}
        out = np.zeros((len(points), len(points)), dtype=np.int64)
        cache: dict[int, dict[int, float]] = {}
        for i, (a, da) in enumerate(snapped):
            if a not in cache:
                cache[a] = self.distances_from(a, nodes)
            for j, (b, db) in enumerate(snapped):
                if i == j:
                    continue
                if b not in cache[a]:
                    raise RoadError("two hot spots (or a hot spot and the station) are not"
                                    " connected by the road network")
                out[i, j] = math.ceil((da + cache[a][b] + db) / speed_mps)
        return out
