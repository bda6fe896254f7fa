"""Hot spot fences on the device: exact point-in-polygon, boundary distance, hysteresis.

Two classes, no effects (no clock, no I/O other than the stream you hand in):

``FenceSet``
    A compiled fence set (see ``docs/fences.md`` for the byte layout). Build it with
    ``FenceSet.from_bytes(data)``, ``FenceSet.from_stream(f)`` (bounded memory: arrays are
    filled straight from the stream) or ``FenceSet.from_json(text_or_bytes)``, which accepts the
    JSON wrapper that ``fences.compile`` writes *and* the raw binary (it sniffs the magic), so an
    MQTT payload can be handed over as it arrives. A corrupt, truncated or tampered set raises
    ``ValueError``; nothing is half-applied because the set is only returned once complete.
    Attributes: ``version`` (content hash, str), ``ids``, ``names`` (read-only sequences of str,
    decoded on access to save RAM), ``density`` (sequence of int), ``len(fence_set)``.

``FenceEngine(fence_set, on_transition)``
    ``update(t, lat_e6, lon_e6, acc_cm)`` once per valid fix, in time order. For every confirmed
    transition it calls ``on_transition(entering, index, tst, lat_e6, lon_e6)`` where ``tst`` and
    the position are those of the *boundary crossing*, estimated from the recent fixes, not of
    the fix that confirmed it. ``inside`` is the sorted list of confirmed fence indexes (do not
    mutate it). ``nearest_m`` is the distance in metres from the last fix to the nearest fence
    boundary (always >= 0, inside or outside; capped at ``fence_set.near_m`` when no fence is
    that close). ``pending`` is the number of fences whose last fix was a band deep on the other
    side without confirming: a transition that one more such fix confirms (the sampling policy
    takes that fix at once, see ``tracker.policy``). ``set_fences(new_set)`` swaps sets
    atomically: fences kept (same id) keep their state, fences that vanish while the tracker is
    inside them get a ``leave`` at the last fix (so every visit is closed), new fences start
    outside. ``reset()`` forgets all state without emitting anything.

Hysteresis: per fix, the band is ``h = max(2 m, 3 x accuracy)`` capped per fence at half its
inradius (so the middle of a small hot spot always confirms). A transition is confirmed by two
consecutive fixes at least ``h`` deep on the new side, by one such fix after a gap of 30 s or
more, or when the evidence -- a one-sided CUSUM of ``min(depth, h) - h/2`` over the fixes on the
new side -- reaches ``2 h``. A tracker standing on an edge adds about ``-h/2`` per fix, so GNSS
wander does not add up to a transition; a genuine crossing does within a few fixes.

Memory: ``from_stream`` on a file reads each section straight into its array (``readinto``), so
loading needs no buffer beyond the set itself; 200 fences of 20 vertices load and run in a 64 KB
heap (``tests/test_fences_device.py``).

Maths: vertices are stored as micro-degree offsets from a per-fence origin (int16). The
point-in-polygon test works on those raw offsets (an affine map of lon/lat, so it is exact for
the straight lon/lat edges that GeoJSON and shapely use); distances use a local equirectangular
projection in quarter metres with per-fence integer scale factors. The compiler guarantees that
every intermediate product on the per-fix path stays below 2**30 (31-bit small ints on boards).
Times: ``t`` may be a big int (epoch seconds exceed 2**30); the engine only keeps differences.
"""

import binascii
import gc
import struct
from array import array

from tracker.compat import MICROPYTHON, const

# The header's magic and struct format are ``tracker.fence_load.MAGIC`` and ``HEADER`` (the
# tracker's check, ``tracker.fence_check``, writes them out): as globals here their names would
# be interned on every tracker (docs/memory.md).
_HEADER_SIZE = const(48)  # bytes (struct.calcsize(HEADER)); private, so no interned name

_RING = const(32)  # fixes kept to estimate crossing times
_NONE = const(-(1 << 29))  # "fence not within the near range of this fix"
_CLAMP_Q = const(800)  # depths beyond +-200 m are clamped in the crossing estimate
_H_MIN_Q = const(8)  # hysteresis band never below 2 m
_H_K = const(12)  # band = 3 x accuracy: acc_cm * 12 // 100 quarter metres
_EV_K = const(2)  # ... or evidence (sum of depth beyond half the band) reaches 2 bands
_GAP_S = const(30)  # after a gap this long a single deep fix confirms
_CR_FINE = const(1 << 25)  # below these, distances use 4 more bits: (cr << 4) < 2**29 ...
_L2_FINE = const(1 << 22)  # ... and (l2 << 8) < 2**30
# Bytes read at a time while loading (a multiple of 2, 3 and 4); a set check has up to six
# sections open at once, each holding its chunk (twice), beside the set that runs.
_CHUNK = const(192)


class Strings:
    """Read-only sequence of str decoded on access from one UTF-8 blob."""

    def __init__(self, data, off, start):
        # ``data``: the UTF-8 blob; string ``i`` is data[off[2 * i + start] : off[2 * i + start
        # + 1]] (a window's ids and names share one blob and one offset array: start 0 and 1).
        self._blob = data
        self._off = off
        self._first = start

    def __len__(self):
        return (len(self._off) - 1) // 2

    def __getitem__(self, i):
        n = len(self)
        if i < 0:
            i += n
        if i < 0 or i >= n:
            raise IndexError(i)
        k = 2 * i + self._first
        return str(self._blob[self._off[k] : self._off[k + 1]], "utf-8")

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def index(self, s):
        for i in range(len(self)):
            if self[i] == s:
                return i
        raise ValueError(s)

    def __eq__(self, value):
        return list(self) == list(value)

    def __repr__(self):
        return repr(list(self))


class FenceSetError(ValueError):
    """A fence set refused at load; ``reason`` is a short counter key (``hash``, ``structure``,
    ``strings``, ``size``, ``format``), the message says what is wrong."""

    def __init__(self, reason, detail):
        super().__init__("fence set: " + detail)
        self.reason = reason


# Sections of the body, in file order: (typecode, count as (a, b, c): a * n + b + c * one of
# the header counts) -- see ``_counts``.
_S_LAT0 = const(0)
_S_LON0 = const(1)
_S_BB = const(2)
_S_KXQ = const(3)
_S_KYQ = const(4)
_S_HMAX = const(5)
_S_RADIUS = const(6)
_S_DENSITY = const(7)
_S_RING = const(8)
_S_RSTART = const(9)
_S_V = const(10)
_S_GKEY = const(11)
_S_GOFF = const(12)
_S_GENT = const(13)
_S_SOFF = const(14)
_S_BLOB = const(15)
_CODES = "iihHHHHBHHhiHHHB"


def _width(code):
    return 1 if code == "B" else (4 if code == "i" else 2)


def counts(hd):
    """Element count of every section, in file order; ``hd``: the header's fields after the
    version (``n, nr, nv, ng, ne, ns, ...``)."""
    n = hd[0]
    nr = hd[1]
    nv = hd[2]
    ng = hd[3]
    return (n, n, 4 * n, n, n, n, n, n, n + 1, nr + 1, 2 * nv, ng, ng + 1, hd[4], 2 * n + 1,
            hd[5])


def offsets(counts):
    """Byte offset of every section from the start of the set, and the total size."""
    out = []
    pos = _HEADER_SIZE
    for s in range(16):
        out.append(pos)
        pos += counts[s] * _width(_CODES[s])
    return out, pos


class _Source:
    """``read_at(pos, n)``: bytes of the binary set in a seekable file, raw (``start`` -1) or
    base64 in a JSON wrapper from character ``start`` on (``size``: the set's size in bytes).
    Base64 maps every 3 bytes to 4 characters, so any byte range is decoded from its own few
    characters, read from the file, without decoding what comes before."""

    def __init__(self, f, start, size):
        self._f = f
        self._start = start
        self._size = size

    def read_at(self, pos, n):
        f = self._f
        if self._start < 0:
            f.seek(pos)
            return f.read(n)
        if pos + n > self._size:
            n = self._size - pos
        if n <= 0:
            return b""
        q0 = pos // 3
        q1 = (pos + n + 2) // 3
        f.seek(self._start + 4 * q0)
        raw = binascii.a2b_base64(f.read(4 * (q1 - q0)))
        k = pos - 3 * q0
        return raw[k : k + n]


def _values(src, pos, code, count):
    """The ``count`` values of a section at ``pos``, read a chunk at a time."""
    width = _width(code)
    per = _CHUNK // width
    while count > 0:
        k = count if count < per else per
        raw = src.read_at(pos, k * width)
        if len(raw) != k * width:
            raise FenceSetError("size", "truncated body")
        if code == "B":
            for x in raw:
                yield x
        else:
            for x in array(code, raw):
                yield x
        pos += k * width
        count -= k


def isqrt(n):
    """Return floor(sqrt(n)) for 0 <= n < 2**30 with small ints only."""
    if n <= 0:
        return 0
    x = 1
    while x <= n // x:  # not x * x <= n: that product would leave the small-int range
        x <<= 1
    y = (x + n // x) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


class FenceSet:
    """A compiled, immutable set of hot spot fences (see the module docstring)."""

    def __init__(self):
        self.version = ""
        self.near_m = 0
        self.cand_end = 0
        self.gidx = None  # a window of a FenceStore: its indexes in the store

    def __len__(self):
        return self.n

    # The loaders that hold a whole set in memory (host tools, tests, replays on CPython) live
    # in ``tracker.fence_load``, imported on first use: the tracker runs a :class:`FenceStore`
    # and never loads that bytecode (docs/memory.md).
    @classmethod
    def from_json(cls, text):
        """Parse the JSON wrapper (str, bytes, or a ``tracker.fence_check.FileText`` over a
        file) or, if it starts with the magic, raw binary, into memory. Raises
        :class:`FenceSetError`."""
        from tracker.fence_load import from_json

        return from_json(cls, text)

    @classmethod
    def from_bytes(cls, data):
        """Parse a binary fence set held in memory."""
        from tracker.fence_load import from_stream, mem_reader

        return from_stream(cls, mem_reader(data), len(data))

    @classmethod
    def from_stream(cls, f, size=-1):
        """Parse a binary fence set from a stream with ``read(n)`` (e.g. an open flash file)."""
        from tracker.fence_load import from_stream

        return from_stream(cls, f, size)

    # -- queries used by the engine and by tests --------------------------------------------

    def cand_start(self, lat_e6, lon_e6):
        """Where in ``gent`` the fences whose near range may hold the point start; sets
        ``cand_end``, where they end (no tuple built)."""
        self.cand_end = 0
        r = lat_e6 - self.g_lat0
        c = lon_e6 - self.g_lon0
        if r < 0 or c < 0:
            return 0
        r >>= self.g_shift
        c >>= self.g_shift
        if r >= self.g_rows or c >= self.g_cols:
            return 0
        key = r * self.g_cols + c
        keys = self.gkey
        lo = 0
        hi = len(keys)
        while lo < hi:
            mid = (lo + hi) >> 1
            if keys[mid] < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(keys) and keys[lo] == key:
            self.cand_end = self.goff[lo + 1]
            return self.goff[lo]
        return 0

    def depth_q(self, i, lat_e6, lon_e6):
        """Signed distance of the point to fence ``i``'s boundary in quarter metres.

        Positive inside, negative outside, ``_NONE`` when the point is beyond the near range of
        the fence's bounding box (no distance computed).
        """
        dy = lat_e6 - self.lat0[i]
        dx = lon_e6 - self.lon0[i]
        bb = self.bb
        b = 4 * i
        ny = self.near_lat
        nx = self.near_lon[i]
        x0 = bb[b]
        y0 = bb[b + 1]
        x1 = bb[b + 2]
        y1 = bb[b + 3]
        if dy < y0 - ny or dy > y1 + ny or dx < x0 - nx or dx > x1 + nx:
            return _NONE
        inbox = x0 <= dx <= x1 and y0 <= dy <= y1
        kx = self.kxq[i]
        ky = self.kyq[i]
        rad = self.radius[i]
        if rad:
            # Circle: radius in latitude micro-degrees; x scaled to the same unit.
            xu = (dx * kx + (ky >> 1)) // ky
            d = isqrt(xu * xu + dy * dy)
            return ((rad - d) * ky) >> 16
        px = (dx * kx) >> 16
        py = (dy * ky) >> 16
        v = self.v
        rs = self.rstart
        inside = 0
        best = 1 << 29
        r = self.ring[i]
        rend = self.ring[i + 1]
        while r < rend:
            j = rs[r]
            jend = rs[r + 1]
            # previous vertex = last of the ring (rings are stored open)
            k = 2 * (jend - 1)
            ax = v[k]
            ay = v[k + 1]
            aqx = (ax * kx) >> 16
            aqy = (ay * ky) >> 16
            while j < jend:
                k = 2 * j
                bx = v[k]
                by = v[k + 1]
                bqx = (bx * kx) >> 16
                bqy = (by * ky) >> 16
                if inbox and ((ay > dy) != (by > dy)):
                    lhs = (dx - ax) * (by - ay)
                    rhs = (dy - ay) * (bx - ax)
                    if by > ay:
                        if lhs < rhs:
                            inside ^= 1
                    elif lhs > rhs:
                        inside ^= 1
                # Cheap lower bound: distance to the edge's bounding box (Chebyshev).
                if aqx < bqx:
                    gx = aqx - px if px < aqx else (px - bqx if px > bqx else 0)
                else:
                    gx = bqx - px if px < bqx else (px - aqx if px > aqx else 0)
                if aqy < bqy:
                    gy = aqy - py if py < aqy else (py - bqy if py > bqy else 0)
                else:
                    gy = bqy - py if py < bqy else (py - aqy if py > aqy else 0)
                if gx < best and gy < best:
                    ex = bqx - aqx
                    ey = bqy - aqy
                    wx = px - aqx
                    wy = py - aqy
                    dot = wx * ex + wy * ey
                    if dot <= 0:
                        d = isqrt(wx * wx + wy * wy)
                    else:
                        l2 = ex * ex + ey * ey
                        if dot >= l2:
                            wx = px - bqx
                            wy = py - bqy
                            d = isqrt(wx * wx + wy * wy)
                        else:
                            cr = wx * ey - wy * ex
                            if cr < 0:
                                cr = -cr
                            if cr < _CR_FINE and l2 < _L2_FINE:
                                # sqrt(l2) to 1/16 q: flooring it would inflate far distances
                                # by up to 1/length (2 % at 100 m from a 5 m edge).
                                d = (cr << 4) // isqrt(l2 << 8)
                            else:
                                d = cr // isqrt(l2)
                    if d < best:
                        best = d
                ax = bx
                ay = by
                aqx = bqx
                aqy = bqy
                j += 1
            r += 1
        if inside:
            # A point strictly inside is never at distance 0 in this sign convention.
            return best if best > 0 else 1
        return -best

    def locate(self, lat_e6, lon_e6):
        """Return the sorted indexes of fences containing the point (raw, no hysteresis)."""
        s = self.cand_start(lat_e6, lon_e6)
        e = self.cand_end
        out = []
        for k in range(s, e):
            i = self.gent[k]
            if self.depth_q(i, lat_e6, lon_e6) > 0:
                out.append(i)
        out.sort()
        return out

    def index_of(self, fence_id):
        """Return the index of the fence with this id, or -1."""
        try:
            return self.ids.index(fence_id)
        except ValueError:
            return -1


# A window's grid is one cell that holds every point on Earth (see ``FenceStore.window``):
# lat_e6 - _W_LAT0 and lon_e6 - _W_LON0 stay below 2**29, so both shift to row and column 0.
_W_LAT0 = const(-100000000)
_W_LON0 = const(-200000000)
_W_SHIFT = const(29)


class FenceStore:
    """A checked fence set left where it is (flash), read a few hot spots at a time.

    ``FenceStore.load(opener)``: ``opener()`` returns a new open binary file (seek, read,
    close) holding the set, raw or as the JSON wrapper. Loading reads it once, a chunk at a
    time, to verify the content hash and the structure (:func:`_check`), and keeps only the
    header: memory does not grow with the number of hot spots. ``window(lat_e6, lon_e6, keep)``
    reads the hot spots of the grid cell holding the point (the compiler's grid lists every
    fence whose near range touches the cell), plus the ``keep`` fences, into a small
    :class:`FenceSet` that the engine evaluates exactly as it would the whole set for any point
    in that cell. ``FenceStore.from_text(text)`` is the same over a set held in memory.
    Attributes: ``version``, ``near_m``, ``len(store)``.
    """

    def __init__(self, opener, hd, version, start):
        self._opener = opener
        self._hd = hd
        self.version = version
        self.n = hd[0]
        self.near_m = hd[13]
        self._offs, self._size = offsets(counts(hd))
        self._start = start  # where the base64 starts in a JSON wrapper; -1: raw binary

    def __len__(self):
        return self.n

    @classmethod
    def from_text(cls, text):
        """A store over a set held in memory (wrapper text or bytes, or raw binary)."""
        from io import BytesIO

        data = text.encode() if isinstance(text, str) else bytes(text)
        return cls.load(lambda: BytesIO(data))

    @classmethod
    def load(cls, opener):
        """Check the set ``opener()`` opens; raises :class:`FenceSetError` (a ``ValueError``).

        The checks (``tracker.fence_check``) run once per set; on MicroPython their bytecode
        is dropped again afterwards, so it is in the heap only while a set is being loaded.
        """
        if MICROPYTHON:
            gc.collect()  # the checks' bytecode and buffers then take the lowest holes
        try:
            from tracker.fence_check import load

            hd, version, start = load(opener)
        finally:
            if MICROPYTHON:
                import sys

                import tracker

                sys.modules.pop("tracker.fence_check", None)
                if hasattr(tracker, "fence_check"):
                    delattr(tracker, "fence_check")
        return cls(opener, hd, version, start)

    def reopen(self, opener):
        """Read the same set from elsewhere from now on (it was moved in flash)."""
        self._opener = opener

    def cell_key(self, lat_e6, lon_e6):
        """The grid cell of the point (``row * cols + col``), or -1 outside the grid."""
        hd = self._hd
        r = lat_e6 - hd[6]
        c = lon_e6 - hd[7]
        if r < 0 or c < 0:
            return -1
        r >>= hd[8]
        c >>= hd[8]
        if r >= hd[11] or c >= hd[10]:
            return -1
        return r * hd[10] + c

    def window(self, key, keep=(), into=None):
        """A :class:`FenceSet` of the fences listed in grid cell ``key`` (see :meth:`cell_key`)
        and the fences ``keep`` (global indexes), in global index order; its ``gidx`` maps its
        indexes back to the store's. ``into``: a window no longer in use, filled again rather
        than a new one built (its attribute table is already full size: growing one on every
        move fragments a small heap)."""
        f = self._opener()
        if f is None:
            raise OSError("fence set missing from flash")
        try:
            src = _Source(f, self._start, self._size)
            offs = self._offs
            hd = self._hd
            wanted = []
            if key >= 0 and hd[3]:
                lo = 0
                hi = hd[3]
                while lo < hi:  # binary search of the sorted keys, in flash
                    mid = (lo + hi) >> 1
                    if _at(src, offs[_S_GKEY], "i", mid) < key:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < hd[3] and _at(src, offs[_S_GKEY], "i", lo) == key:
                    a = _at(src, offs[_S_GOFF], "H", lo)
                    b = _at(src, offs[_S_GOFF], "H", lo + 1)
                    wanted = list(_values(src, offs[_S_GENT] + 2 * a, "H", b - a))
            for g in keep:
                if g not in wanted:
                    wanted.append(g)
            wanted.sort()
            k = len(wanted)
            fs = into if into is not None else FenceSet()
            fs.version = self.version
            fs.n = k
            fs.gidx = array("H", wanted)
            fs.lat0 = array("i", [_at(src, offs[_S_LAT0], "i", g) for g in wanted])
            fs.lon0 = array("i", [_at(src, offs[_S_LON0], "i", g) for g in wanted])
            bb = array("h", bytearray(8 * k))
            for j in range(k):
                raw = src.read_at(offs[_S_BB] + 8 * wanted[j], 8)
                bb[4 * j : 4 * j + 4] = array("h", raw)
            fs.bb = bb
            fs.kxq = array("H", [_at(src, offs[_S_KXQ], "H", g) for g in wanted])
            fs.kyq = array("H", [_at(src, offs[_S_KYQ], "H", g) for g in wanted])
            fs.hmax = array("H", [_at(src, offs[_S_HMAX], "H", g) for g in wanted])
            fs.radius = array("H", [_at(src, offs[_S_RADIUS], "H", g) for g in wanted])
            fs.density = bytearray([_at(src, offs[_S_DENSITY], "B", g) for g in wanted])
            # Rings and vertices, re-based to this window. Every array is allocated once at its
            # final size: one grown by appending is reallocated as it grows, and the blocks it
            # leaves behind fragment a small heap (docs/memory.md).
            ring = array("H", bytearray(2 * (k + 1)))
            bounds = []
            nr = 0
            for g in wanted:
                r0 = _at(src, offs[_S_RING], "H", g)
                r1 = _at(src, offs[_S_RING], "H", g + 1)
                bounds.append((r0, r1))
                nr += r1 - r0
            rstart = array("H", bytearray(2 * (nr + 1)))
            spans = []
            nv = 0
            p = 0
            for j in range(k):
                r0, r1 = bounds[j]
                v0 = _at(src, offs[_S_RSTART], "H", r0)
                for r in range(r0 + 1, r1 + 1):
                    p += 1
                    rstart[p] = nv + _at(src, offs[_S_RSTART], "H", r) - v0
                if r1 > r0:
                    v1 = rstart[p] - nv + v0
                    spans.append((v0, v1))
                    nv += v1 - v0
                ring[j + 1] = p
            fs.ring = ring
            fs.rstart = rstart
            v = array("h", bytearray(4 * nv))
            p = 0
            for v0, v1 in spans:
                q = p + 2 * (v1 - v0)
                v[p:q] = array("h", src.read_at(offs[_S_V] + 4 * v0, 4 * (v1 - v0)))
                p = q
            fs.v = v
            fs.gkey = array("i", [0])
            fs.goff = array("H", [0, k])
            fs.gent = array("H", range(k))
            fs.g_lat0 = _W_LAT0
            fs.g_lon0 = _W_LON0
            fs.g_shift = _W_SHIFT
            fs.g_cols = 1
            fs.g_rows = 1
            near_lat = hd[12]
            fs.near_lat = near_lat
            fs.near_m = hd[13]
            fs.near_lon = array("H", [near_lat * fs.kyq[j] // fs.kxq[j] + 1 for j in range(k)])
            soff = array("H", bytearray(2 * (2 * k + 1)))
            size = 0
            for j in range(k):
                a, m, b = _values(src, offs[_S_SOFF] + 4 * wanted[j], "H", 3)
                bounds[j] = (a, b)
                soff[2 * j + 1] = size + m - a
                size += b - a
                soff[2 * j + 2] = size
            blob = bytearray(size)
            for j in range(k):
                a, b = bounds[j]
                raw = src.read_at(offs[_S_BLOB] + a, b - a)
                if len(raw) != b - a:
                    raise OSError("fence set changed in flash")
                blob[soff[2 * j] : soff[2 * j + 2]] = raw
            fs.ids = Strings(blob, soff, 0)
            fs.names = Strings(blob, soff, 1)
            return fs

        finally:
            f.close()


def _at(src, pos, code, i):
    """Element ``i`` of the section at ``pos``."""
    w = _width(code)
    raw = src.read_at(pos + w * i, w)
    if len(raw) != w:
        raise OSError("fence set changed in flash")
    if code == "B":
        return raw[0]
    return struct.unpack("<" + code, raw)[0]





# The engine's per-fence state: one array per item, indexed by the bound set's fence index, held
# in one list (``FenceEngine._fence``) whose slots are these constants -- as six attributes their
# names would be interned for good (docs/memory.md).
_ST = const(0)  # bytearray: confirmed inside
_PREV = const(1)  # bytearray: the previous fix was a band deep on the other side
_EV = const(2)  # array("i"): evidence for the other side (CUSUM), quarter metres
_ACT = const(3)  # bytearray: listed in ``_active``
_LO = const(4)  # array("i"): seq of the last fix deep on the confirmed side
_SEEN = const(5)  # array("i"): seq at which the fence was last evaluated


class FenceEngine:
    """Confirmed enter/leave with hysteresis and interpolated crossing times (see module doc)."""

    def __init__(self, fence_set, on_transition):
        self._cb = on_transition
        # The last _RING fixes, by seq % _RING: time since the first (s), lat_e6, lon_e6.
        self._ring = (array("i", [0] * _RING), array("i", [0] * _RING), array("i", [0] * _RING))
        self.store = None
        self._key = -1
        self._spare = None  # the window before the current one, refilled at the next move
        if isinstance(fence_set, FenceStore):
            self.store = fence_set
            fence_set = fence_set.window(-1)
        self._bind(fence_set)
        self.reset()
        self.windows = 0  # windows read from a store (cells entered)

    def _bind(self, fs):
        n = len(fs)
        # Everything allocated before anything is assigned: a MemoryError half way must leave
        # the engine bound to its old set, with arrays of that set's size.
        fence = [bytearray(n), bytearray(n), array("i", bytearray(4 * n)), bytearray(n),
                 array("i", bytearray(4 * n)), array("i", bytearray(4 * n))]  # _ST ... _SEEN
        active = []  # fences inside or with a run pending
        inside = []
        seen = fence[_SEEN]
        for i in range(n):
            seen[i] = -1
        self.fences = fs
        self._fence = fence
        self._active = active
        self.inside = inside
        self.pending = 0  # fences with _PREV set: a change that the next deep fix confirms

    def reset(self):
        """Forget all state (no events are emitted)."""
        n = len(self.fences)
        for a in self._fence:
            for i in range(n):
                a[i] = 0
        seen = self._fence[_SEEN]
        for i in range(n):
            seen[i] = -1
        self._active = []
        self.inside = []
        self.pending = 0
        self._seq = -1
        self._t0 = None
        self._dt = 0
        self.nearest_m = self.fences.near_m

    @property
    def version(self):
        return self.fences.version

    def set_fences(self, new_set):
        """Swap in a new fence set (a :class:`FenceSet` or a :class:`FenceStore`) atomically;
        vanished fences the tracker is in get a leave.

        With a store, the fences matched by id are those near the last fix (its grid cell):
        a fence the tracker is in is always among them unless it moved or vanished.
        """
        if isinstance(new_set, FenceStore):
            store = new_set
            key = -1
            if self._seq >= 0:
                k = self._seq % _RING
                rt, rlat, rlon = self._ring
                key = store.cell_key(rlat[k], rlon[k])
            new_set = store.window(key)
            self.store = store
            self._key = key
            self._spare = None
        else:
            self.store = None
        self._swap(new_set, False)

    def _swap(self, new_set, same):
        """Bind ``new_set``, carrying state over: with ``same`` (another window of the same
        store) every fence in both keeps all of its state; otherwise fences matched by id keep
        "inside" and vanished ones the tracker is in get a leave at the last fix."""
        old = self.fences
        old_fence = self._fence
        st = old_fence[_ST]
        kept = []
        if same:
            # Both windows list their fences in store order: one merge pass.
            og = old.gidx
            ng = new_set.gidx
            j = 0
            for i in range(len(og)):
                while j < len(ng) and ng[j] < og[i]:
                    j += 1
                if j < len(ng) and ng[j] == og[i]:
                    kept.append((j, i))
        else:
            for i in self._active:
                if not st[i]:
                    continue
                j = new_set.index_of(old.ids[i])
                if j >= 0:
                    kept.append((j, i))
                elif self._seq >= 0:
                    k = self._seq % _RING
                    rt, rlat, rlon = self._ring
                    self._cb(False, i, self._t0 + rt[k], rlat[k], rlon[k])
        prev = old_fence[_PREV]
        ev = old_fence[_EV]
        lo = old_fence[_LO]
        act = old_fence[_ACT]
        active = self._active
        self._bind(new_set)
        fence = self._fence
        new_lo = fence[_LO]
        for j in range(len(new_set)):
            new_lo[j] = self._seq if self._seq > 0 else 0
        inside = []
        for j, i in kept:
            fence[_ST][j] = st[i]
            if st[i]:
                inside.append(j)
            if same:  # the same fence, only read again: it keeps its evidence
                fence[_PREV][j] = prev[i]
                fence[_EV][j] = ev[i]
                new_lo[j] = lo[i]
                self.pending += prev[i]
            if act[i] or st[i]:
                fence[_ACT][j] = 1
        # The active list in its old order (the order fences far away are stepped in).
        for i in active:
            for j, i2 in kept:
                if i2 == i:
                    self._active.append(j)
                    break
        inside.sort()
        self.inside = inside

    def update(self, t, lat_e6, lon_e6, acc_cm):
        """Feed one valid fix (time order); emits confirmed transitions through the callback."""
        if self.store is not None:
            key = self.store.cell_key(lat_e6, lon_e6)
            if key != self._key:
                # The fix is in another grid cell of the store: read that cell's fences,
                # keeping the ones inside or pending with their whole state, so that evaluation
                # goes on exactly as with the whole set in memory.
                fs = self.fences
                keep = []  # a loop, not a comprehension: one would make ``fs`` a closure cell,
                for i in self._active:  # allocated at every call of update (heap_lock test)
                    keep.append(fs.gidx[i])
                # The window's arrays live until the next cell: collected garbage first, they
                # go low in the heap instead of between the pieces of it (fragmentation is
                # what runs a small heap out of memory, not its total use; docs/memory.md).
                if MICROPYTHON:  # a few ms there; on CPython a full collection of a big process
                    gc.collect()
                # A MemoryError here leaves the current window and its state as they were (the
                # spare may be half filled: it is not in use); the next fix tries the move again.
                window = self.store.window(key, keep, self._spare)
                self._spare = None
                self._swap(window, True)
                self._spare = fs
                self._key = key
                self.windows += 1
        if self._t0 is None:
            self._t0 = t
        dt = t - self._t0
        gap = dt - self._dt if self._seq >= 0 else _GAP_S
        self._dt = dt
        self._seq += 1
        seq = self._seq
        k = seq % _RING
        rt, rlat, rlon = self._ring
        rt[k] = dt
        rlat[k] = lat_e6
        rlon[k] = lon_e6
        h = acc_cm * _H_K // 100
        if h < _H_MIN_Q:
            h = _H_MIN_Q
        fs = self.fences
        seen = self._fence[_SEEN]
        hmax = fs.hmax
        best = 1 << 29
        s = fs.cand_start(lat_e6, lon_e6)
        e = fs.cand_end
        gent = fs.gent
        while s < e:
            i = gent[s]
            s += 1
            d = fs.depth_q(i, lat_e6, lon_e6)
            if d == _NONE:
                continue
            seen[i] = seq
            a = d if d > 0 else -d
            if a < best:
                best = a
            hi = hmax[i]
            self._step(i, d, h if h < hi else hi, gap, seq)
        # Fences we are in (or about to enter) that are now out of range: far outside.
        act = self._active
        k = len(act)
        while k > 0:
            # Backwards, because _step may remove the current fence from the list.
            k -= 1
            i = act[k]
            if seen[i] != seq:
                seen[i] = seq
                hi = hmax[i]
                self._step(i, -_CLAMP_Q, h if h < hi else hi, gap, seq)
        self.nearest_m = (best + 2) >> 2 if best < (1 << 29) else fs.near_m

    def _step(self, i, d, h, gap, seq):
        """One fix for fence ``i``: signed depth ``d``, band ``h`` (both quarter metres).

        The evidence for the other side is a one-sided CUSUM: each fix adds its depth on the
        other side (capped at one band) minus half a band, and it never drops below zero. A
        tracker standing on the edge adds about minus half a band per fix, so GNSS wander of a
        band's size does not add up; a genuine crossing adds up within a few fixes.
        """
        fence = self._fence
        st = fence[_ST][i]
        prev = fence[_PREV][i]
        other = d if not st else -d  # positive = on the other side than confirmed
        half = h >> 1
        ev = fence[_EV][i]
        deep = other >= h
        confirm = False
        if deep:
            if prev or gap >= _GAP_S:
                confirm = True
            ev += h - half
        elif other > -h:
            ev += other - half
        else:
            ev = 0
            fence[_LO][i] = seq  # deep on the confirmed side: crossings are searched after this
        if ev < 0:
            ev = 0
        if ev >= _EV_K * h:
            confirm = True
        if confirm:
            tst, lat, lon = self._crossing(i, seq, not st)
            fence[_ST][i] = 1 - st
            fence[_EV][i] = 0
            fence[_PREV][i] = 0
            self.pending -= prev
            fence[_LO][i] = seq
            if st:
                self.inside.remove(i)
                fence[_ACT][i] = 0
                self._active.remove(i)
            else:
                self.inside.append(i)
                self.inside.sort()
                if not fence[_ACT][i]:
                    fence[_ACT][i] = 1
                    self._active.append(i)
            self._cb(not st, i, tst, lat, lon)
            return
        fence[_EV][i] = ev
        dp = 1 if deep else 0
        if dp != prev:
            fence[_PREV][i] = dp
            self.pending += dp - prev
        if not st:
            # Outside fences stay listed while an enter is pending, so they are still
            # evaluated (as far outside) if the next fix is beyond their near range.
            pending = ev > 0 or deep
            act = fence[_ACT]
            if pending and not act[i]:
                act[i] = 1
                self._active.append(i)
            elif not pending and act[i]:
                act[i] = 0
                self._active.remove(i)

    def _crossing(self, i, seq, entering):
        """Estimate when and where the tracker crossed fence ``i``'s boundary.

        Over the fixes since the last one that was deep on the old side, pick the split that
        minimises the summed depth of fixes on the wrong side of it (the minimum of the prefix
        sums of the signed depths), then interpolate linearly between the two fixes around it.
        """
        fs = self.fences
        first = self._fence[_LO][i]
        if first < seq - _RING + 1:
            first = seq - _RING + 1
        if first < 0:
            first = 0
        rt, rlat, rlon = self._ring
        cum = 0
        best = 0
        best_s = first
        best_da = 0
        k = first
        while k < seq:
            j = k % _RING
            d = fs.depth_q(i, rlat[j], rlon[j])
            if d == _NONE or d < -_CLAMP_Q:
                d = -_CLAMP_Q
            elif d > _CLAMP_Q:
                d = _CLAMP_Q
            if not entering:
                d = -d
            cum += d
            k += 1
            if cum < best:
                best = cum
                best_s = k
                best_da = d
        # best_s is the first fix on the new side; best_s - 1 the last on the old side.
        j = best_s % _RING
        if best_s == first:
            return self._t0 + rt[j], rlat[j], rlon[j]
        da = best_da
        db = fs.depth_q(i, rlat[j], rlon[j])
        if db == _NONE or db < -_CLAMP_Q:
            db = -_CLAMP_Q
        elif db > _CLAMP_Q:
            db = _CLAMP_Q
        if not entering:
            db = -db
        ja = (best_s - 1) % _RING
        ta = rt[ja]
        tb = rt[j]
        if da < 0 < db:
            num = -da
            den = db - da
        else:
            num = 1
            den = 2
        tc = ta + ((tb - ta) * num + (den >> 1)) // den
        lat = rlat[ja] + ((rlat[j] - rlat[ja]) * num) // den
        lon = rlon[ja] + ((rlon[j] - rlon[ja]) * num) // den
        return self._t0 + tc, lat, lon
