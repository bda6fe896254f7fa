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

import struct

from tracker.compat import MICROPYTHON, const

try:
    from array import array
except ImportError:  # pragma: no cover - very old MicroPython
    from uarray import array

try:
    import hashlib
except ImportError:  # pragma: no cover - port without hashlib: structure checks only
    hashlib = None

import binascii
import json

MAGIC = b"HSF1"
HEADER = "<4s12sHHHHHHiiBBHHHHH"
HEADER_SIZE = const(48)

_RING = const(32)  # fixes kept to estimate crossing times
_NONE = const(-(1 << 29))  # "fence not within the near range of this fix"
_CLAMP_Q = const(800)  # depths beyond +-200 m are clamped in the crossing estimate
_H_MIN_Q = const(8)  # hysteresis band never below 2 m
_H_K = const(12)  # band = 3 x accuracy: acc_cm * 12 // 100 quarter metres
_EV_K = const(2)  # ... or evidence (sum of depth beyond half the band) reaches 2 bands
_GAP_S = const(30)  # after a gap this long a single deep fix confirms
_CR_FINE = const(1 << 25)  # below these, distances use 4 more bits: (cr << 4) < 2**29 ...
_L2_FINE = const(1 << 22)  # ... and (l2 << 8) < 2**30
_CHUNK = const(384)  # bytes read at a time while loading (a multiple of 2, 3 and 4)
_B64_CHUNK = const(512)  # base64 characters decoded at a time (384 bytes)


class _Strings:
    """Read-only sequence of str decoded on access from one UTF-8 blob."""

    def __init__(self, blob, off, first):
        self._blob = blob
        self._off = off
        self._first = first
        self._n = (len(off) - 1) // 2

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if i < 0:
            i += self._n
        if i < 0 or i >= self._n:
            raise IndexError(i)
        k = 2 * i + self._first
        return str(self._blob[self._off[k] : self._off[k + 1]], "utf-8")

    def __iter__(self):
        for i in range(self._n):
            yield self[i]

    def index(self, s):
        for i in range(self._n):
            if self[i] == s:
                return i
        raise ValueError(s)

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        return repr(list(self))


class _MemReader:
    """``read(n)`` over bytes held in memory (small copies, never the whole set)."""

    def __init__(self, data):
        self._mv = memoryview(data)
        self._pos = 0

    def read(self, n):
        p = self._pos
        self._pos = p + n
        return bytes(self._mv[p : p + n])


class FileText:
    """The bytes of a seekable binary file (``read``, ``seek``), with just what
    :meth:`FenceSet.from_json` asks of its text: ``len``, ``find``, indexing and slicing
    (non-negative indexes, step 1).

    So a fence set spooled to flash as it arrived is parsed from flash, and neither the JSON
    text nor the decoded set is ever whole in RAM beside the arrays being filled.
    """

    def __init__(self, f):
        self._f = f
        self._size = f.seek(0, 2)

    def __len__(self):
        return self._size

    def rewound(self):
        """The file, at its start."""
        self._f.seek(0)
        return self._f

    def _read(self, start, stop):
        if stop > self._size:
            stop = self._size
        if start >= stop:
            return b""
        self._f.seek(start)
        return self._f.read(stop - start)

    def __getitem__(self, key):
        if isinstance(key, slice):
            start = 0 if key.start is None else key.start
            stop = self._size if key.stop is None else key.stop
            return self._read(start, stop)
        data = self._read(key, key + 1)
        if not data:
            raise IndexError("offset beyond the file")
        return data[0]

    def find(self, sub, start=0):
        """Offset of ``sub`` at or after ``start``, or -1; reads a few hundred bytes at a time."""
        n = len(sub)
        while start < self._size:
            chunk = self._read(start, start + _B64_CHUNK + n - 1)
            i = chunk.find(sub)
            if i >= 0:
                return start + i
            start += _B64_CHUNK
        return -1


class _Base64Reader:
    """``read(n)`` that decodes a base64 slice of a str or bytes a few hundred bytes at a time.

    So a JSON wrapper is turned into a fence set without ever holding the decoded copy of the
    whole set beside the text (that copy alone would not fit a 64 KB heap).
    """

    def __init__(self, text, start, end):
        self._text = memoryview(text) if isinstance(text, (bytes, bytearray)) else text
        self._pos = start
        self._end = end
        self._pending = b""

    def read(self, n):
        out = self._pending
        while len(out) < n and self._pos < self._end:
            q = self._pos + _B64_CHUNK
            if q > self._end:
                q = self._end
            out += binascii.a2b_base64(self._text[self._pos : q])
            self._pos = q
        self._pending = out[n:]
        return out[:n]

    def exhausted(self):
        return self._pos >= self._end and not self._pending


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

    def __len__(self):
        return self.n

    @classmethod
    def from_json(cls, text):
        """Parse the JSON wrapper (str, bytes, or a :class:`FileText` over a file) or, if it
        starts with the magic, raw binary.

        The base64 ``data`` is decoded piecewise straight into the set's arrays, so the peak
        memory is the text plus the set, not the text plus two copies of the set.
        """
        if isinstance(text, memoryview):
            text = bytes(text)
        if isinstance(text, (bytes, bytearray, FileText)):
            if bytes(text[:4]) == MAGIC:
                if isinstance(text, FileText):
                    return cls.from_stream(text.rewound(), len(text))
                return cls.from_bytes(text)
            quote = 34  # ord('"') for bytes
            key = b'"data"'
        elif isinstance(text, str):
            quote = '"'
            key = '"data"'
        else:
            raise ValueError("fence set: expected str or bytes, not %s" % type(text).__name__)
        k = text.find(key)
        # The value's opening quote: the first quote after the colon that follows the key.
        colon = text.find(b":" if quote == 34 else ":", k + 6) if k >= 0 else -1
        start = text.find(b'"' if quote == 34 else '"', colon + 1) if colon >= 0 else -1
        end = text.find(b'"' if quote == 34 else '"', start + 1) if start >= 0 else -1
        if end < 0:
            raise ValueError("fence set: bad JSON wrapper: no data")
        start += 1
        try:
            # The wrapper without its payload is a few dozen bytes: parse it properly.
            if quote == 34:
                doc = json.loads(str(bytes(text[:start]) + bytes(text[end:]), "utf-8"))
            else:
                doc = json.loads(text[:start] + text[end:])
            fmt = doc["format"]
            version = doc["version"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError("fence set: bad JSON wrapper: %r" % (e,))
        if fmt != "hsf1":
            raise ValueError("fence set: unknown format %r" % (fmt,))
        n64 = end - start
        if n64 % 4:
            raise ValueError("fence set: base64 data length is not a multiple of 4")
        size = n64 // 4 * 3
        for j in (end - 1, end - 2):
            if n64 and text[j] in (61, "="):
                size -= 1
        reader = _Base64Reader(text, start, end)
        fs = cls.from_stream(reader, size)
        if not reader.exhausted():
            raise ValueError("fence set: trailing data after the set")
        if fs.version != version:
            raise ValueError("fence set: wrapper version does not match content")
        return fs

    @classmethod
    def from_bytes(cls, data):
        """Parse a binary fence set held in memory."""
        return cls.from_stream(_MemReader(data), len(data))

    @classmethod
    def from_stream(cls, f, size=-1):
        """Parse a binary fence set from a stream with ``read(n)`` (e.g. an open flash file)."""
        try:
            return cls._parse(f, size)
        except MemoryError:
            raise
        except Exception as e:  # struct.error, IndexError, UnicodeError...: all mean corrupt
            if isinstance(e, ValueError) and str(e).startswith("fence set"):
                raise
            raise ValueError("fence set: corrupt or truncated (%r)" % (e,))

    @classmethod
    def _parse(cls, f, size):
        head = f.read(HEADER_SIZE)
        if len(head) != HEADER_SIZE:
            raise ValueError("fence set: truncated header")
        (magic, version, n, nr, nv, ng, ne, ns, g_lat0, g_lon0, g_shift, _flags, g_cols, g_rows,
         near_lat, near_m, _reserved) = struct.unpack(HEADER, head)
        if magic != MAGIC:
            raise ValueError("fence set: bad magic")
        body = (
            4 * n * 2 + 2 * 4 * n + 2 * n * 4 + n + 2 * (n + 1) + 2 * (nr + 1) + 4 * nv
            + 4 * ng + 2 * (ng + 1) + 2 * ne + 2 * (2 * n + 1) + ns
        )
        if size >= 0 and size != HEADER_SIZE + body:
            raise ValueError("fence set: size %d, header says %d" % (size, HEADER_SIZE + body))
        h = hashlib.sha256() if hashlib is not None else None
        if h is not None:
            h.update(head[:4])
            h.update(bytes(12))  # the version field itself is zeroed in the hash
            h.update(head[16:])
        fs = cls()

        readinto = getattr(f, "readinto", None)

        def take(code, count):
            # Allocate the array once, then fill it a chunk at a time: the whole section is
            # never held twice (as bytes and as array) while the heap is filling up.
            width = 1 if code == "B" else (4 if code == "i" else 2)
            total = width * count
            if code == "B":
                arr = bytearray(total)
            elif MICROPYTHON:
                # Sized from range()'s length without a temporary buffer; values overwritten.
                arr = array(code, range(count))
            else:
                arr = array(code, bytes(total))
            if readinto is not None:
                # A file: straight into the array, no temporary buffers at all (they would
                # fragment a small heap between the big arrays).
                if total and readinto(arr) != total:
                    raise ValueError("fence set: truncated body")
                if h is not None and total:
                    h.update(arr)
                return arr
            pos = 0
            while pos < total:
                step = total - pos
                if step > _CHUNK:
                    step = _CHUNK
                raw = f.read(step)
                if len(raw) != step:
                    raise ValueError("fence set: truncated body")
                if h is not None:
                    h.update(raw)
                if code == "B":
                    arr[pos : pos + step] = raw
                else:
                    arr[pos // width : (pos + step) // width] = array(code, raw)
                pos += step
            return arr

        fs.n = n
        fs.lat0 = take("i", n)
        fs.lon0 = take("i", n)
        fs.bb = take("h", 4 * n)
        fs.kxq = take("H", n)
        fs.kyq = take("H", n)
        fs.hmax = take("H", n)
        fs.radius = take("H", n)
        fs.density = take("B", n)
        fs.ring = take("H", n + 1)
        fs.rstart = take("H", nr + 1)
        fs.v = take("h", 2 * nv)
        fs.gkey = take("i", ng)
        fs.goff = take("H", ng + 1)
        fs.gent = take("H", ne)
        soff = take("H", 2 * n + 1)
        blob = take("B", ns)
        version = str(version, "ascii")
        if h is not None:
            if str(binascii.hexlify(h.digest()[:6]), "ascii") != version:
                raise ValueError("fence set: content hash does not match version " + version)
        # Structure checks so that evaluation can never index out of range.
        if fs.ring[0] != 0 or fs.ring[n] != nr or fs.rstart[0] != 0 or fs.rstart[nr] != nv:
            raise ValueError("fence set: inconsistent ring tables")
        for i in range(n):
            if fs.ring[i + 1] < fs.ring[i]:
                raise ValueError("fence set: inconsistent ring tables")
            if fs.ring[i + 1] == fs.ring[i] and fs.radius[i] == 0:
                raise ValueError("fence set: fence %d has no geometry" % i)
            if fs.kxq[i] == 0 or fs.kyq[i] == 0:
                raise ValueError("fence set: zero scale factor")
        for r in range(nr):
            if fs.rstart[r + 1] < fs.rstart[r] + 3:
                raise ValueError("fence set: ring with fewer than 3 vertices")
        if fs.goff[0] != 0 or fs.goff[ng] != ne:
            raise ValueError("fence set: inconsistent grid")
        for e in fs.gent:
            if e >= n:
                raise ValueError("fence set: grid entry out of range")
        if soff[0] != 0 or soff[2 * n] != ns:
            raise ValueError("fence set: inconsistent strings")
        fs.version = version
        fs.g_lat0 = g_lat0
        fs.g_lon0 = g_lon0
        fs.g_shift = g_shift
        fs.g_cols = g_cols
        fs.g_rows = g_rows
        fs.near_lat = near_lat
        fs.near_m = near_m
        # Near margin in lon micro-degrees, per fence (same formula as the compiler).
        fs.near_lon = array("H", bytearray(2 * n))
        for i in range(n):
            fs.near_lon[i] = near_lat * fs.kyq[i] // fs.kxq[i] + 1
        fs.ids = _Strings(blob, soff, 0)
        fs.names = _Strings(blob, soff, 1)
        return fs

    # -- queries used by the engine and by tests --------------------------------------------

    def candidates(self, lat_e6, lon_e6):
        """Return ``(start, end)`` into ``gent``: fences whose near range may hold the point."""
        s = self.cand_start(lat_e6, lon_e6)
        return s, self.cand_end

    def cand_start(self, lat_e6, lon_e6):
        """Like :meth:`candidates` without building a tuple: returns start, sets ``cand_end``."""
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
        s, e = self.candidates(lat_e6, lon_e6)
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


class FenceEngine:
    """Confirmed enter/leave with hysteresis and interpolated crossing times (see module doc)."""

    def __init__(self, fence_set, on_transition):
        self._cb = on_transition
        self._rt = array("i", [0] * _RING)
        self._rlat = array("i", [0] * _RING)
        self._rlon = array("i", [0] * _RING)
        self._bind(fence_set)
        self.reset()

    def _bind(self, fs):
        n = len(fs)
        self.fences = fs
        self._st = bytearray(n)  # confirmed inside
        self._prev = bytearray(n)  # previous fix was a band deep on the other side
        self._ev = array("i", bytearray(4 * n))  # evidence for the other side (CUSUM), q
        self._act = bytearray(n)  # listed in _active
        self._lo = array("i", [0] * n)  # seq of last fix deep on the confirmed side
        self._seen = array("i", [-1] * n)  # seq at which the fence was last evaluated
        self._active = []  # fences inside or with a run pending
        self.inside = []
        self.pending = 0  # fences with _prev set: a change that the next deep fix confirms

    def reset(self):
        """Forget all state (no events are emitted)."""
        n = len(self.fences)
        for i in range(n):
            self._st[i] = 0
            self._prev[i] = 0
            self._ev[i] = 0
            self._act[i] = 0
            self._lo[i] = 0
            self._seen[i] = -1
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
        """Swap in a new fence set atomically; vanished fences the tracker is in get a leave."""
        old = self.fences
        kept = []
        for i in self.inside:
            j = new_set.index_of(old.ids[i])
            if j >= 0:
                kept.append(j)
            elif self._seq >= 0:
                k = self._seq % _RING
                self._cb(False, i, self._t0 + self._rt[k], self._rlat[k], self._rlon[k])
        self._bind(new_set)
        for j in kept:
            self._st[j] = 1
            self._act[j] = 1
            self._active.append(j)
        for j in range(len(new_set)):
            self._lo[j] = self._seq if self._seq > 0 else 0
        kept.sort()
        self.inside = kept

    def update(self, t, lat_e6, lon_e6, acc_cm):
        """Feed one valid fix (time order); emits confirmed transitions through the callback."""
        if self._t0 is None:
            self._t0 = t
        dt = t - self._t0
        gap = dt - self._dt if self._seq >= 0 else _GAP_S
        self._dt = dt
        self._seq += 1
        seq = self._seq
        k = seq % _RING
        self._rt[k] = dt
        self._rlat[k] = lat_e6
        self._rlon[k] = lon_e6
        h = acc_cm * _H_K // 100
        if h < _H_MIN_Q:
            h = _H_MIN_Q
        fs = self.fences
        seen = self._seen
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
        st = self._st[i]
        prev = self._prev[i]
        other = d if not st else -d  # positive = on the other side than confirmed
        half = h >> 1
        ev = self._ev[i]
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
            self._lo[i] = seq  # deep on the confirmed side: crossings are searched after this
        if ev < 0:
            ev = 0
        if ev >= _EV_K * h:
            confirm = True
        if confirm:
            tst, lat, lon = self._crossing(i, seq, not st)
            self._st[i] = 1 - st
            self._ev[i] = 0
            self._prev[i] = 0
            self.pending -= prev
            self._lo[i] = seq
            if st:
                self.inside.remove(i)
                self._act[i] = 0
                self._active.remove(i)
            else:
                self.inside.append(i)
                self.inside.sort()
                if not self._act[i]:
                    self._act[i] = 1
                    self._active.append(i)
            self._cb(not st, i, tst, lat, lon)
            return
        self._ev[i] = ev
        dp = 1 if deep else 0
        if dp != prev:
            self._prev[i] = dp
            self.pending += dp - prev
        if not st:
            # Outside fences stay listed while an enter is pending, so they are still
            # evaluated (as far outside) if the next fix is beyond their near range.
            pending = ev > 0 or deep
            if pending and not self._act[i]:
                self._act[i] = 1
                self._active.append(i)
            elif not pending and self._act[i]:
                self._act[i] = 0
                self._active.remove(i)

    def _crossing(self, i, seq, entering):
        """Estimate when and where the tracker crossed fence ``i``'s boundary.

        Over the fixes since the last one that was deep on the old side, pick the split that
        minimises the summed depth of fixes on the wrong side of it (the minimum of the prefix
        sums of the signed depths), then interpolate linearly between the two fixes around it.
        """
        fs = self.fences
        first = self._lo[i]
        if first < seq - _RING + 1:
            first = seq - _RING + 1
        if first < 0:
            first = 0
        rt = self._rt
        rlat = self._rlat
        rlon = self._rlon
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
