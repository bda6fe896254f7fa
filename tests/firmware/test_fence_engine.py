"""The on-device fence engine; runs under pytest and on the MicroPython unix port.

Fence sets and shapely's answers come precompiled from ``tests/data/fences/`` (see
``tests/test_fences_data.py``), so this file needs neither the compiler nor shapely.
Walks are generated here with a small seeded generator so both interpreters see the same fixes.
"""

import json
import math

from scratch import scratch, wipe

from tracker.fence import FenceEngine, FenceSet, isqrt
from tracker.fence_check import FileText

DATA = "tests/data/fences/"
T0 = 1795000000  # epoch seconds: a big int on boards, which the engine must cope with
LAT_PER_M = 8.9932  # micro-degrees of latitude per metre at 51.48 N
LON_PER_M = 14.4444  # micro-degrees of longitude per metre at 51.48 N


def load(name):
    with open(DATA + name) as f:
        return f.read()


def meridian():
    return FenceSet.from_json(load("meridian.json"))


class Noise:
    """Seeded Gaussian noise (LCG + Box-Muller): identical on CPython and MicroPython."""

    def __init__(self, seed):
        self.state = seed

    def uniform(self):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state + 1) / 2147483649.0

    def gauss(self, sigma):
        u1 = self.uniform()
        u2 = self.uniform()
        return sigma * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, entering, index, tst, lat_e6, lon_e6):
        self.events.append((entering, index, tst, lat_e6, lon_e6))

    def kinds(self, index):
        return ["enter" if e[0] else "leave" for e in self.events if e[1] == index]


def pos(lat_deg_e6, lon_deg_e6, north_m=0.0, east_m=0.0):
    return (lat_deg_e6 + int(round(north_m * LAT_PER_M)),
            lon_deg_e6 + int(round(east_m * LON_PER_M)))


def walk_north(engine, lon_e6, lat_from_e6, lat_to_e6, speed_mps, step_s, acc_cm=300,
               noise=None, sigma_m=0.0, t_start=T0):
    """Walk due north at constant speed with fixes every ``step_s``; returns the end time."""
    t = t_start
    dist_e6 = lat_to_e6 - lat_from_e6
    total_s = dist_e6 / (speed_mps * LAT_PER_M)
    k = 0
    while k * step_s <= total_s:
        lat = lat_from_e6 + int(round(k * step_s * speed_mps * LAT_PER_M))
        lon = lon_e6
        if noise is not None:
            lat, lon = pos(lat, lon, noise.gauss(sigma_m), noise.gauss(sigma_m))
        engine.update(t + k * step_s, lat, lon, acc_cm)
        k += 1
    return t + k * step_s


# -- loading ---------------------------------------------------------------------------------
def test_wrapper_text_bytes_and_raw_binary_load_the_same_set():
    import binascii

    text = load("meridian.json")
    raw = binascii.a2b_base64(json.loads(text)["data"])
    a = FenceSet.from_json(text)
    b = FenceSet.from_json(text.encode())
    c = FenceSet.from_json(raw)
    d = FenceSet.from_bytes(raw)
    assert a.version == b.version == c.version == d.version == json.loads(text)["version"]
    assert list(a.ids) == ["M-SQ", "M-CIR", "M-MULTI", "M-U", "M-OVER"]
    assert a.names[1] == "Circle on the meridian"
    assert list(d.density) == [3, 3, 1, 2, 2]
    assert len(a) == len(d) == 5
    assert a.index_of("M-U") == 3 and a.index_of("nope") == -1


def test_sample_set_has_one_hot_spot_each_side_of_the_meridian():
    fs = FenceSet.from_json(load("sample.json"))
    assert list(fs.ids) == ["HS-GRN-01", "HS-GRN-02"]
    assert fs.locate(51480500, -2000) == [0]
    assert fs.locate(51480500, 6700) == [1]
    assert fs.locate(51481000, 6700) == []  # in the estate's hole
    assert fs.locate(51480500, 2000) == []


def test_corrupt_sets_are_rejected_with_value_error():
    import binascii

    text = load("meridian.json")
    raw = binascii.a2b_base64(json.loads(text)["data"])
    bad = [b"", b"HSF1", b"HSF2" + raw[4:], raw[:-1], raw + b"\x00", raw[:48], "{}", "[1, 2]",
           "not json", '{"format": "hsf1", "version": "x", "data": "AAAA"}',
           text.replace('"hsf1"', '"hsf9"'), text.replace('"version":"', '"version":"0'),
           text[:-20] + '"}', 12345]
    for cut in range(0, len(raw), 37):
        bad.append(raw[:cut])
    for at in range(4, len(raw), 23):
        flipped = bytearray(raw)
        flipped[at] ^= 0x41
        bad.append(bytes(flipped))
    rejected = 0
    for blob in bad:
        try:
            FenceSet.from_json(blob)
        except ValueError as e:
            assert str(e).startswith("fence set"), str(e)
            rejected += 1
    assert rejected == len(bad)


def _spooled(storage, blob):
    """``blob`` written to flash piece by piece, as the tracker spools an MQTT payload."""
    f = storage.create("fences.json")
    for i in range(0, len(blob), 100):
        f.write(blob[i : i + 100])
    f.close()
    return storage.open("fences.json", True)


def test_a_set_spooled_to_flash_loads_as_from_memory():
    import binascii

    storage = scratch()
    try:
        for name in ("meridian.json", "sample.json"):
            text = load(name)
            raw = binascii.a2b_base64(json.loads(text)["data"])
            for blob in (text.encode(), raw):
                f = _spooled(storage, blob)
                try:
                    fs = FenceSet.from_json(FileText(f))
                finally:
                    f.close()
                assert fs.version == FenceSet.from_json(blob).version
                assert list(fs.ids) == list(FenceSet.from_json(blob).ids)
        # Nothing replaced until asked: the old version stays readable until then.
        assert storage.open("fences.json") is None
        storage.replace("fences.json")
        f = storage.open("fences.json")
        assert FenceSet.from_json(FileText(f)).version == FenceSet.from_json(raw).version
        f.close()
    finally:
        wipe(storage)


def test_a_corrupt_spooled_set_is_rejected_and_discarded():
    storage = scratch()
    try:
        text = load("meridian.json")
        for blob in (text[:-20] + '"}', text.replace('"hsf1"', '"hsf9"'), "x" * 700, ""):
            f = _spooled(storage, blob.encode())
            try:
                FenceSet.from_json(FileText(f))
            except ValueError as e:
                assert str(e).startswith("fence set"), str(e)
            else:
                raise AssertionError("accepted: %r" % blob[:40])
            finally:
                f.close()
            storage.discard("fences.json")
            assert storage.open("fences.json", True) is None
    finally:
        wipe(storage)


def test_file_text_finds_across_its_read_chunks():
    storage = scratch()
    try:
        blob = b"a" * 1020 + b'"data"' + b"b" * 600 + b"=" + b"c" * 10
        f = _spooled(storage, blob)
        text = FileText(f)
        assert len(text) == len(blob)
        for sub, start in ((b'"data"', 0), (b"=", 0), (b"c", 1700), (b"zz", 0), (b"a", 1019)):
            assert text.find(sub, start) == blob.find(sub, start), sub
        assert text[1020] == blob[1020] and text[len(blob) - 1] == blob[-1]
        assert text[1000:1030] == blob[1000:1030] and text[1630:] == blob[1630:]
        f.close()
        storage.discard("fences.json")
    finally:
        wipe(storage)


def test_from_stream_reads_a_binary_file_in_pieces():
    import binascii

    raw = binascii.a2b_base64(json.loads(load("sample.json"))["data"])

    class Trickle:
        def __init__(self, data):
            self.data = data
            self.pos = 0
            self.largest = 0

        def read(self, n):
            self.largest = max(self.largest, n)
            out = self.data[self.pos : self.pos + n]
            self.pos += n
            return out

    src = Trickle(raw)
    fs = FenceSet.from_stream(src)
    assert fs.locate(51480500, -2000) == [0]
    assert src.largest <= 384


# -- geometry against shapely ----------------------------------------------------------------
def test_locate_agrees_with_shapely_on_every_reference_point():
    fs = meridian()
    rows = json.loads(load("meridian_points.json"))
    assert len(rows) >= 500
    wrong = []
    for lat, lon, inside, _ in rows:
        if fs.locate(lat, lon) != inside:
            wrong.append((lat, lon, inside, fs.locate(lat, lon)))
    assert not wrong, wrong[:5]


def test_boundary_distance_agrees_with_shapely_within_60_cm():
    fs = meridian()
    rows = json.loads(load("meridian_points.json"))
    worst = 0
    checked = 0
    for lat, lon, _, depths in rows:
        for i in range(len(depths)):
            if depths[i] is None:
                continue
            q = fs.depth_q(i, lat, lon)
            assert q != -(1 << 29), (lat, lon, i)  # within 200 m: never "out of range"
            assert (q > 0) == (depths[i] > 0)
            err = abs(q * 25 - depths[i])
            worst = max(worst, err)
            checked += 1
    assert checked > 1000
    assert worst <= 60, worst


def test_isqrt_is_exact_up_to_two_to_the_thirty():
    for n in list(range(0, 2000)) + [(1 << 30) - 1, (1 << 30) - 2, 32767 * 32767, 1 << 28]:
        r = isqrt(n)
        assert r * r <= n < (r + 1) * (r + 1), n


def test_prefilter_skips_far_fences_and_caps_the_nearest_distance():
    fs = meridian()
    rec = Recorder()
    eng = FenceEngine(fs, rec)
    assert fs.cand_start(52500000, 0) == 0 == fs.cand_end  # 110 km north: no candidate at all
    eng.update(T0, 52500000, 0, 300)
    assert eng.nearest_m == fs.near_m == 250
    s = fs.cand_start(51480900, -1000)
    e = fs.cand_end
    assert 0 < e - s < len(fs)  # near the square: some fences, not all
    eng.update(T0 + 1, 51479900, -1000, 300)  # about 11 m south of the square
    assert 10 <= eng.nearest_m <= 12, eng.nearest_m
    assert eng.inside == [] and rec.events == []


# -- hysteresis and crossing times -----------------------------------------------------------
def test_walk_through_the_square_gives_one_enter_and_one_leave_at_the_edges():
    fs = meridian()
    rec = Recorder()
    eng = FenceEngine(fs, rec)
    # Due north along lon -0.0010, 1.4 m/s, 1 Hz: south edge 51.4800, north edge 51.4818.
    walk_north(eng, -1000, 51479000, 51482800, 1.4, 1)
    assert rec.kinds(0) == ["enter", "leave"]
    enter, leave = [e for e in rec.events if e[1] == 0]
    speed = 1.4 * LAT_PER_M
    assert abs(enter[2] - (T0 + 1000 / speed)) <= 1
    assert abs(leave[2] - (T0 + 2800 / speed)) <= 1
    assert abs(enter[3] - 51480000) <= 15 and abs(leave[3] - 51481800) <= 15
    assert enter[4] == -1000
    assert eng.inside == []


def test_sparse_fixes_still_give_the_crossing_times():
    fs = meridian()
    rec = Recorder()
    eng = FenceEngine(fs, rec)
    # A fix every 37 s (52 m apart) through the west block of M-MULTI (51.4860 to 51.4872).
    walk_north(eng, -1750, 51485000, 51488400, 1.4, 37)
    assert rec.kinds(2) == ["enter", "leave"]
    enter, leave = [e for e in rec.events if e[1] == 2]
    speed = 1.4 * LAT_PER_M
    true_enter = T0 + 1000 / speed
    true_leave = T0 + 2200 / speed
    assert abs(enter[2] - true_enter) <= 3, enter[2] - true_enter
    assert abs(leave[2] - true_leave) <= 3, leave[2] - true_leave
    assert abs((leave[2] - enter[2]) - (true_leave - true_enter)) <= 3


def test_standing_on_a_boundary_does_not_flap():
    for seed in (1, 2, 3, 4, 5):
        fs = meridian()
        rec = Recorder()
        eng = FenceEngine(fs, rec)
        noise = Noise(seed)
        drift_n = 0.0
        drift_e = 0.0
        for k in range(1800):  # half an hour at 1 Hz on the south edge of the west block
            # GNSS error wanders: a slow random walk plus white noise.
            drift_n = 0.95 * drift_n + noise.gauss(0.9)
            drift_e = 0.95 * drift_e + noise.gauss(0.9)
            lat, lon = pos(51486000, -1750, drift_n + noise.gauss(1.0), drift_e)
            eng.update(T0 + k, lat, lon, 400)
        kinds = rec.kinds(2)
        assert len(kinds) <= 2 and kinds in ([], ["enter"], ["enter", "leave"]), (seed, kinds)


def pace(eng, noise, t, north_m, minutes):
    """Pace east and back along the south edge of the west block, ``north_m`` from it."""
    for k in range(60 * minutes):
        phase = k % 120
        east = (phase if phase < 60 else 120 - phase) * 1.2 - 36
        lat, lon = pos(51486000, -1750, north_m + noise.gauss(2.5), east + noise.gauss(2.5))
        eng.update(t, lat, lon, 400)
        t += 1
    return t


def test_pacing_along_a_boundary_gives_one_pair_per_genuine_crossing():
    for seed in (11, 12, 13):
        fs = meridian()
        rec = Recorder()
        eng = FenceEngine(fs, rec)
        noise = Noise(seed)
        t = T0
        # In from 40 m south to 40 m inside, back to 2 m inside the edge, pace there for 15
        # minutes, then out to 40 m south: two genuine crossings.
        for k in range(80):
            lat, lon = pos(51486000, -1750, -40 + k + noise.gauss(2.0), noise.gauss(2.0))
            eng.update(t, lat, lon, 400)
            t += 1
        for k in range(38):
            lat, lon = pos(51486000, -1750, 40 - k + noise.gauss(2.0), noise.gauss(2.0))
            eng.update(t, lat, lon, 400)
            t += 1
        t = pace(eng, noise, t, 2.0, 15)
        for k in range(42):
            lat, lon = pos(51486000, -1750, 2 - k + noise.gauss(2.0), noise.gauss(2.0))
            eng.update(t, lat, lon, 400)
            t += 1
        assert rec.kinds(2) == ["enter", "leave"], (seed, rec.kinds(2))
        enter, leave = [e for e in rec.events if e[1] == 2]
        assert abs(enter[2] - (T0 + 40)) <= 5, enter[2] - T0
        assert abs(leave[2] - (t - 40)) <= 5, leave[2] - t


def test_pacing_just_outside_a_boundary_gives_nothing():
    for seed in (21, 22, 23):
        rec = Recorder()
        eng = FenceEngine(meridian(), rec)
        pace(eng, Noise(seed), T0, -2.0, 20)
        assert rec.kinds(2) == [], (seed, rec.kinds(2))


def test_a_gap_in_fixes_confirms_with_a_single_deep_fix():
    fs = meridian()
    rec = Recorder()
    eng = FenceEngine(fs, rec)
    eng.update(T0, 51485000, -1750, 300)  # 110 m south of the west block
    eng.update(T0 + 300, 51486600, -1750, 300)  # five minutes later, 67 m inside
    assert rec.kinds(2) == ["enter"]
    assert T0 < rec.events[0][2] < T0 + 300
    assert eng.inside == [2]


def test_circle_and_overlapping_fences_are_entered_independently():
    fs = meridian()
    rec = Recorder()
    eng = FenceEngine(fs, rec)
    # North through the circle (centre 51.4840, lon 0.0002, 60 m) ...
    walk_north(eng, 200, 51483000, 51485000, 1.5, 2)
    assert rec.kinds(1) == ["enter", "leave"]
    enter, leave = [e for e in rec.events if e[1] == 1]
    assert abs((leave[2] - enter[2]) - 120 / 1.5) <= 2
    # ... and through the square's corner that M-OVER overlaps.
    rec.events = []
    walk_north(eng, 1200, 51479000, 51483000, 1.5, 1, t_start=T0 + 5000)
    assert rec.kinds(0) == ["enter", "leave"] and rec.kinds(4) == ["enter", "leave"]
    order = [(e[0], e[1]) for e in rec.events]
    assert order.index((True, 4)) > order.index((True, 0))  # M-OVER starts further north


def test_hole_is_outside():
    fs = meridian()
    rec = Recorder()
    eng = FenceEngine(fs, rec)
    # North along lon 0: through the square's south strip, across the hole, and out.
    walk_north(eng, 0, 51479000, 51482800, 1.4, 1)
    assert rec.kinds(0) == ["enter", "leave", "enter", "leave"]
    times = [e[2] - T0 for e in rec.events if e[1] == 0]
    speed = 1.4 * LAT_PER_M
    for got, lat in zip(times, (51480000, 51480600, 51481200, 51481800)):
        assert abs(got - (lat - 51479000) / speed) <= 1, (got, lat)


# -- swapping sets ---------------------------------------------------------------------------
def test_set_fences_keeps_state_for_kept_ids_and_closes_vanished_visits():
    rec = Recorder()
    fs = meridian()
    eng = FenceEngine(fs, rec)
    walk_north(eng, -1000, 51479000, 51480500, 1.4, 1)
    assert eng.inside == [0]
    n_events = len(rec.events)
    eng.set_fences(meridian())  # same content, same ids: nothing happens
    assert eng.inside == [0] and len(rec.events) == n_events
    eng.update(T0 + 200, 51480520, -1000, 300)
    assert eng.inside == [0] and len(rec.events) == n_events
    eng.set_fences(FenceSet.from_json(load("sample.json")))  # M-SQ vanishes: visit closed
    assert len(rec.events) == n_events + 1
    entering, index, tst, lat, lon = rec.events[-1]
    assert not entering and index == 0 and tst == T0 + 200 and lat == 51480520
    assert eng.inside == [] and eng.version == FenceSet.from_json(load("sample.json")).version
    eng.update(T0 + 201, 51480500, -2000, 300)  # inside HS-GRN-01 of the new set
    eng.update(T0 + 202, 51480500, -2000, 300)
    eng.update(T0 + 203, 51480500, -2000, 300)
    assert eng.inside == [0] and rec.events[-1][0] is True


def test_reset_forgets_without_events():
    rec = Recorder()
    eng = FenceEngine(meridian(), rec)
    walk_north(eng, -1000, 51479000, 51480500, 1.4, 1)
    n = len(rec.events)
    eng.reset()
    assert eng.inside == [] and len(rec.events) == n


def test_update_allocates_nothing_in_steady_state():
    try:
        import micropython
    except ImportError:  # CPython: the same walk runs, only the heap lock is MicroPython's
        micropython = None
    cases = [((51480900, -1000), [0]), ((51484000, 200), [1]), ((51481000, 0), []),
             ((52500000, 0), []), ((51486600, -1750), [2])]
    for (lat, lon), expected in cases:
        rec = Recorder()
        eng = FenceEngine(meridian(), rec)
        for k in range(5):  # settle: confirm whatever is to be entered
            eng.update(1000 + k, lat, lon, 300)
        n = len(rec.events)
        if micropython is not None:
            micropython.heap_lock()
        try:
            for k in range(5, 25):
                eng.update(1000 + k, lat + (k & 3), lon - (k & 1), 300)
        finally:
            if micropython is not None:
                micropython.heap_unlock()
        assert len(rec.events) == n
        assert eng.inside == expected, (lat, lon, eng.inside)


def test_pending_counts_a_deep_fix_until_it_is_confirmed_or_undone():
    fs = meridian()
    rec = Recorder()
    eng = FenceEngine(fs, rec)
    steps = [  # (metres north of the west block's south edge, pending after, inside after)
        (-110, 0, []), (-11, 0, []),
        (22, 1, []),  # a band (9 m) deep inside, 1 s after the last fix: one more confirms
        (5, 0, []),  # back within the band: nothing pending any more
        (22, 1, []), (27, 0, [2]),  # two deep fixes in a row: entered
        (-22, 1, [2]), (-33, 0, []),  # and the same on the way out
        (22, 1, []),
    ]
    for k, (north, pending, inside) in enumerate(steps):
        lat, lon = pos(51486000, -1750, north)
        eng.update(T0 + k, lat, lon, 300)
        assert (eng.pending, eng.inside) == (pending, inside), (k, north, eng.pending)
    assert rec.kinds(2) == ["enter", "leave"]
    eng.set_fences(meridian())
    assert eng.pending == 0
    eng.update(T0 + 20, *pos(51486000, -1750, 22), 300)  # 12 s after the last fix: pending
    assert eng.pending == 1
    eng.reset()
    assert eng.pending == 0
