"""Damaged fence sets with a valid content hash: refused at load, or evaluated without error.

The content hash catches damage in transit, but a set can be damaged before it is hashed (a bug
in a compiler, a tool that rewrites it) or hashed again on purpose. Every mutation below gets a
freshly computed hash, so only the structure check stands between it and the engine. Exact
accounting, on CPython and on the MicroPython unix port: every damaged set is either refused
with ``FenceSetError`` (a ``ValueError`` with a ``reason``) or loads and then evaluates
(``FenceEngine.update``, ``locate``, ``ids``/``names``, swaps) without raising. Both loaders
(``FenceSet`` in memory, ``FenceStore`` from flash) must agree on which sets they refuse.
"""

import binascii
import hashlib
import json
import struct

from tracker.fence import FenceEngine, FenceSet, FenceSetError, FenceStore
from tracker.fence_load import HEADER

DATA = "tests/data/fences/"
T0 = 1795000000
# Mutations per base set: enough to hit every section many times; the CPython suite adds more
# (tests/test_fences_hostile.py) with the same generator.
ROUNDS = 150


def load_raw(name):
    with open(DATA + name) as f:
        return binascii.a2b_base64(json.loads(f.read())["data"])


class Lcg:
    """Seeded generator with the same sequence on both interpreters."""

    def __init__(self, seed):
        self.state = seed

    def below(self, n):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state >> 8) % n


_EXTREMES = (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)


def rehash(data):
    """``data`` with the version field set to the content hash of the rest (as the compiler
    writes it): the damage is then invisible to the hash check."""
    h = hashlib.sha256(bytes(data[:4]) + bytes(12) + bytes(data[16:])).digest()
    data[4:16] = binascii.hexlify(h[:6])
    return bytes(data)


def mutate(raw, rng):
    """One damaged copy of ``raw`` (binary set), hash recomputed."""
    data = bytearray(raw)
    kind = rng.below(6)
    body = len(data) - 48
    if kind == 0:  # one byte anywhere in the body
        data[48 + rng.below(body)] = rng.below(256)
    elif kind == 1:  # an aligned 16-bit word set to an extreme (indexes, counts, offsets)
        at = 48 + 2 * rng.below(body // 2)
        struct.pack_into("<H", data, at, _EXTREMES[rng.below(len(_EXTREMES))])
    elif kind == 2:  # a header field after the version (counts, grid, near range)
        at = 16 + 2 * rng.below(16)
        struct.pack_into("<H", data, at, _EXTREMES[rng.below(len(_EXTREMES))])
    elif kind == 3:  # two words swapped (tables out of order)
        a = 48 + 2 * rng.below(body // 2)
        b = 48 + 2 * rng.below(body // 2)
        data[a], data[a + 1], data[b], data[b + 1] = data[b], data[b + 1], data[a], data[a + 1]
    elif kind == 4:  # a burst of bytes
        at = 48 + rng.below(body)
        for k in range(at, min(at + 1 + rng.below(8), len(data))):
            data[k] = rng.below(256)
    else:  # the tail (strings): invalid UTF-8 bytes
        at = len(data) - 1 - rng.below(min(body, 200))
        data[at] = (0x80, 0xC0, 0xFF, 0xED)[rng.below(4)]
    return rehash(data)


def evaluate(fence_set, probe, rng):
    """Exercise everything the tracker calls on a loaded set (positions from ``probe``, the
    same set in memory); returns the transitions seen."""
    events = []
    eng = FenceEngine(fence_set, lambda *e: events.append(e))
    window = eng.fences
    t = T0
    for i in range(len(probe)):
        lat = probe.lat0[i]
        lon = probe.lon0[i]
        for dlat, dlon in ((0, 0), (300, -400), (-2000, 0), (0, 2500), (40000, 40000)):
            for _ in range(2):
                t += 1 + rng.below(40)
                eng.update(t, lat + dlat, lon + dlon, 100 * (1 + rng.below(20)))
            window = eng.fences
            window.locate(lat + dlat, lon + dlon)
            for j in eng.inside:
                window.ids[j]
                window.names[j]
    list(window.ids)
    list(window.names)
    return len(events)


def run(name, seed, rounds):
    """Returns ``(loaded, refused by reason, failures)``."""
    raw = load_raw(name)
    rng = Lcg(seed)
    loaded = 0
    refused = {}
    failures = []
    for k in range(rounds):
        data = mutate(raw, rng)
        try:
            fs = FenceSet.from_bytes(data)
        except FenceSetError as e:
            refused[e.reason] = refused.get(e.reason, 0) + 1
            fs = None
        except Exception as e:  # noqa: BLE001 - the point: anything else is a failure
            failures.append((k, "load", repr(e)))
            continue
        try:
            store = FenceStore.from_text(data)
        except FenceSetError:
            store = None
        except Exception as e:  # noqa: BLE001
            failures.append((k, "store load", repr(e)))
            continue
        if (fs is None) != (store is None):
            failures.append((k, "loaders disagree", fs is None))
            continue
        if fs is None:
            continue
        loaded += 1
        for target in (fs, store):
            try:
                evaluate(target, fs, rng)
            except Exception as e:  # noqa: BLE001
                failures.append((k, "evaluate " + type(target).__name__, repr(e)))
    return loaded, refused, failures


def check(name, seed, rounds):
    loaded, refused, failures = run(name, seed, rounds)
    assert not failures, failures[:5]
    assert loaded + sum(refused.values()) == rounds
    # Both outcomes happen: damage the structure check cannot see (a moved vertex, a new name)
    # loads; damage to tables is refused, for more than one reason.
    assert loaded > 0 and len(refused) >= 2, (loaded, refused)
    return loaded, refused


def test_damaged_sample_sets_are_refused_or_evaluate_without_error():
    check("sample.json", 7, ROUNDS)


def test_damaged_meridian_sets_are_refused_or_evaluate_without_error():
    check("meridian.json", 11, ROUNDS)


def test_the_undamaged_set_loads_through_the_same_path():
    raw = load_raw("sample.json")
    fs = FenceSet.from_bytes(rehash(bytearray(raw)))
    assert list(fs.ids) == list(FenceSet.from_bytes(raw).ids)
    assert HEADER.startswith("<4s12s")
