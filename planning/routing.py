"""Journeys: which officer does which visits of a shift, in which order, minimising travel.

A vehicle routing problem with time windows solved by OR-tools: every officer (or team) starts
and ends the shift at the station, each visit lasts ``service_s`` and must start inside its
window, waiting is allowed, and the total travel time is minimised. Visits that cannot all fit
are dropped (a large penalty each) and reported, never silently lost.

Travel times are straight-line distance × a detour factor at walking or driving speed, or
shortest paths over a road network the user supplies (:mod:`planning.roads`).
:func:`brute_force` enumerates every order for one officer on small cases; the tests and the
benchmark compare OR-tools against it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

SPEEDS_MPS = {"walk": 1.4, "drive": 8.0}  # 5 km/h on foot; 29 km/h in urban traffic
DEFAULT_DETOUR = 1.3  # streets are longer than the straight line (about 1.2-1.4 in towns)
DROP_PENALTY = 10_000_000


@dataclass
class Stop:
    """A visit to place: where (metres), its window for the start (s from shift start)."""

    key: object
    x: float
    y: float
    earliest_s: int
    latest_s: int


@dataclass
class Route:
    """One officer's journey: visits in order with their planned start (s from shift start)."""

    vehicle: int
    stops: list[int] = field(default_factory=list)
    starts_s: list[int] = field(default_factory=list)
    travel_s: int = 0


@dataclass
class Plan:
    """All routes of a shift and the stops that could not be fitted."""

    routes: list[Route]
    dropped: list[int]

    @property
    def travel_s(self) -> int:
        return sum(r.travel_s for r in self.routes)


def travel_matrix(xy: np.ndarray, speed_mps: float, detour: float = DEFAULT_DETOUR
                  ) -> np.ndarray:
    """Whole seconds between every pair of points (row 0 usually the station)."""
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    return np.ceil(d * detour / speed_mps).astype(np.int64)


def route_travel(order: list[int], matrix: np.ndarray) -> int:
    """Travel of station → stops (1-based matrix indexes) → station."""
    nodes = [0, *order, 0]
    return int(sum(matrix[a, b] for a, b in itertools.pairwise(nodes)))


def schedule(order: list[int], stops: list[Stop], matrix: np.ndarray, service_s: int,
             shift_s: int) -> list[int] | None:
    """Earliest start of each stop visited in ``order`` (0-based), or None if a window or the
    end of the shift is missed."""
    t, here, starts = 0, 0, []
    for i in order:
        t = max(t + int(matrix[here, i + 1]), stops[i].earliest_s)
        if t > stops[i].latest_s:
            return None
        starts.append(t)
        t += service_s
        here = i + 1
    if t + int(matrix[here, 0]) > shift_s:
        return None
    return starts


def brute_force(stops: list[Stop], matrix: np.ndarray, service_s: int, shift_s: int,
                ) -> tuple[int, list[int]] | None:
    """The feasible order of all stops for one officer with the least travel (None if none)."""
    best = None
    for perm in itertools.permutations(range(len(stops))):
        if schedule(list(perm), stops, matrix, service_s, shift_s) is None:
            continue
        cost = route_travel([i + 1 for i in perm], matrix)
        if best is None or cost < best[0]:
            best = (cost, list(perm))
    return best


def solve(stops: list[Stop], matrix: np.ndarray, vehicles: int, service_s: int, shift_s: int,
          solution_limit: int = 40, time_limit_s: float = 2.0) -> Plan:
    """Assign and order ``stops`` over ``vehicles`` officers (OR-tools, time windows).

    ``matrix`` is (len(stops)+1)² with the station at index 0. The search stops after
    ``solution_limit`` improving solutions (so the same input gives the same plan) or
    ``time_limit_s``, whichever comes first.
    """
    if not stops:
        return Plan([Route(v) for v in range(vehicles)], [])
    if vehicles < 1:
        return Plan([], list(range(len(stops))))
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n = len(stops) + 1
    manager = pywrapcp.RoutingIndexManager(n, vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)
    # matrices, not Python callbacks: the solver calls them millions of times
    busy = matrix.copy()
    busy[1:, :] += service_s  # leaving a visit: its 15 minutes, then the journey
    cost_cb = routing.RegisterTransitMatrix(matrix.tolist())
    time_cb = routing.RegisterTransitMatrix(busy.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    routing.AddDimension(time_cb, shift_s, shift_s, False, "time")
    dim = routing.GetDimensionOrDie("time")
    for k, s in enumerate(stops):
        index = manager.NodeToIndex(k + 1)
        dim.CumulVar(index).SetRange(int(s.earliest_s), int(s.latest_s))
        routing.AddDisjunction([index], DROP_PENALTY)
    for v in range(vehicles):
        dim.CumulVar(routing.Start(v)).SetRange(0, shift_s)
        dim.CumulVar(routing.End(v)).SetRange(0, shift_s)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION)
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH)
    params.solution_limit = solution_limit
    params.time_limit.FromMilliseconds(int(time_limit_s * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return Plan([Route(v) for v in range(vehicles)], list(range(len(stops))))
    routes, visited = [], set()
    for v in range(vehicles):
        route = Route(v)
        index = routing.Start(v)
        index = solution.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            route.stops.append(node - 1)
            visited.add(node - 1)
            index = solution.Value(routing.NextVar(index))
        if route.stops:
            # earliest feasible starts for the order chosen (the solver's cumul values may sit
            # anywhere inside the slack; officers should go as soon as they can)
            route.starts_s = schedule(route.stops, stops, matrix, service_s, shift_s) or [
                solution.Min(dim.CumulVar(manager.NodeToIndex(i + 1))) for i in route.stops]
        route.travel_s = route_travel([i + 1 for i in route.stops], matrix)
        routes.append(route)
    dropped = [k for k in range(len(stops)) if k not in visited]
    return Plan(routes, dropped)


def random_order_travel(plan: Plan, matrix: np.ndarray, rng: np.random.Generator,
                        ) -> int:
    """Travel of the same assignment of visits to officers, each in a random order."""
    total = 0
    for r in plan.routes:
        order = list(rng.permutation(r.stops)) if r.stops else []
        total += route_travel([int(i) + 1 for i in order], matrix)
    return total


def speed_for(mode: str) -> float:
    """Metres per second for ``walk`` or ``drive``."""
    try:
        return SPEEDS_MPS[mode]
    except KeyError:
        raise ValueError(f"mode must be one of {', '.join(SPEEDS_MPS)}, got {mode!r}") from None


def minutes(seconds: float) -> str:
    """``12.5 min``."""
    return f"{seconds / 60:.1f} min" if not math.isnan(seconds) else "-"
