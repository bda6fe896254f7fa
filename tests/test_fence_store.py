"""A fence set read from flash a grid cell at a time (``tracker.fence.FenceStore``) is evaluated
exactly as the whole set in memory: same transitions, same times and places, same distances."""

from __future__ import annotations

import random

import pytest

from fences.compile import compile_geojson
from fences.synthetic import city_fences
from tracker.fence import FenceEngine, FenceSet, FenceStore

T0 = 1_795_000_000


@pytest.fixture(scope="module")
def city():
    return compile_geojson(city_fences(200, vertices=20))


def hotspot_tour(fs: FenceSet, visits: int, seed: int) -> list[tuple[int, int, int, int]]:
    """Fixes ``(t, lat_e6, lon_e6, acc_cm)`` walking from hot spot to hot spot (through them),
    5 m apart with GNSS noise, a gap now and then: every hot spot visited is entered and left."""
    rng = random.Random(seed)
    order = rng.sample(range(len(fs)), visits)
    lat, lon = fs.lat0[order[0]] - 3000, fs.lon0[order[0]]
    t = T0
    out = []
    for i in order:
        tlat, tlon = fs.lat0[i], fs.lon0[i]
        for target in ((tlat, tlon), (tlat + 1500, tlon + 2000)):
            steps = max(1, int(max(abs(target[0] - lat) / 45, abs(target[1] - lon) / 70)))
            dlat = (target[0] - lat) / steps
            dlon = (target[1] - lon) / steps
            for _ in range(steps):
                lat += dlat
                lon += dlon
                t += 1 if rng.random() > 0.01 else 45
                out.append((t, round(lat + rng.gauss(0, 20)), round(lon + rng.gauss(0, 30)),
                            rng.choice((200, 300, 500, 1500))))
    return out


def run(engine_set, fixes, swap_at=None, swap_to=None):
    events: list[tuple] = []
    eng = FenceEngine(engine_set, lambda *e: events.append(
        (e[0], eng.fences.ids[e[1]], e[2], e[3], e[4])))
    trace = []
    for k, (t, lat, lon, acc) in enumerate(fixes):
        if k == swap_at:
            eng.set_fences(swap_to)
        eng.update(t, lat, lon, acc)
        trace.append((eng.nearest_m, eng.pending, [eng.fences.ids[i] for i in eng.inside]))
    return events, trace, eng


def test_a_store_evaluates_exactly_as_the_whole_set_in_memory(city):
    whole = FenceSet.from_bytes(city.data)
    fixes = hotspot_tour(whole, 25, seed=3)
    events_mem, trace_mem, _ = run(whole, fixes)
    events_store, trace_store, eng = run(FenceStore.from_text(city.text), fixes)
    assert len(events_mem) >= 40  # the tour really goes in and out of hot spots
    assert events_store == events_mem
    assert trace_store == trace_mem
    assert eng.windows > 20  # it did move from cell to cell
    assert len(eng.fences) <= 20  # and never held more than a cell's fences


def test_a_store_on_flash_as_raw_binary_and_as_the_json_wrapper(city, tmp_path):
    for name, blob in (("fences.bin", city.data), ("fences.json", city.text.encode())):
        path = tmp_path / name
        path.write_bytes(blob)
        store = FenceStore.load(lambda p=path: open(p, "rb"))  # noqa: SIM115
        assert store.version == city.version and len(store) == 200
        whole = FenceSet.from_bytes(city.data)
        for i in (0, 57, 199):
            key = store.cell_key(whole.lat0[i], whole.lon0[i])
            w = store.window(key)
            j = list(w.gidx).index(i)
            assert w.ids[j] == whole.ids[i] and w.names[j] == whole.names[i]
            assert w.locate(whole.lat0[i], whole.lon0[i]) == [
                list(w.gidx).index(g) for g in whole.locate(whole.lat0[i], whole.lon0[i])]


def test_swapping_to_a_store_mid_walk_matches_swapping_the_whole_set(city):
    other = compile_geojson(city_fences(200, vertices=20, seed=1), tolerance_m=0)
    whole = FenceSet.from_bytes(city.data)
    fixes = hotspot_tour(whole, 10, seed=5)
    at = len(fixes) // 2
    events_mem, trace_mem, _ = run(whole, fixes, at, FenceSet.from_bytes(other.data))
    events_store, trace_store, _ = run(FenceStore.from_text(city.text), fixes, at,
                                       FenceStore.from_text(other.text))
    assert events_store == events_mem
    assert trace_store == trace_mem
