"""Checks of a compiled fence set at load: content hash, then structure.

Imported only while a set is loaded (``tracker.fence.FenceStore.load``, and the host loaders in
``tracker.fence_load``): on the tracker its bytecode is dropped again once the set is checked,
so it costs heap only then (docs/memory.md). A set that passes can never make evaluation raise:
every index, count and offset is checked against what it points into, every string decoded.
"""

import binascii
import json
import struct

from tracker.compat import const
from tracker.fence import (
    _CODES,
    FenceSetError,
    _Source,
    _values,
    counts,
    offsets,
)

try:
    import hashlib
except ImportError:  # pragma: no cover - port without hashlib: structure checks only
    hashlib = None

# Section numbers of tracker.fence (its constants are private to it once compiled).
_S_LAT0 = const(0)
_S_LON0 = const(1)
_S_KXQ = const(3)
_S_KYQ = const(4)
_S_RADIUS = const(6)
_S_RING = const(8)
_S_RSTART = const(9)
_S_GKEY = const(11)
_S_GOFF = const(12)
_S_GENT = const(13)
_S_SOFF = const(14)
_S_BLOB = const(15)
_CHUNK = const(384)
_HEADER_SIZE = const(48)  # tracker.fence._HEADER_SIZE
_B64_CHUNK = const(512)  # base64 characters searched at a time


class FileText:
    """The bytes of a seekable binary file (``read``, ``seek``), with just what :func:`wrapper`
    and :meth:`tracker.fence.FenceSet.from_json` ask of its text: ``len``, ``find``, indexing
    and slicing (non-negative indexes, step 1).

    So a fence set spooled to flash as it arrived is parsed from flash, and neither the JSON
    text nor the decoded set is ever whole in RAM beside the arrays being filled.
    """

    def __init__(self, f):
        self.file = f
        self._size = f.seek(0, 2)

    def __len__(self):
        return self._size

    def _read(self, start, stop):
        if stop > self._size:
            stop = self._size
        if start >= stop:
            return b""
        self.file.seek(start)
        return self.file.read(stop - start)

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


def load(opener):
    """Check the set ``opener()`` opens: ``(header fields, version, base64 start or -1)``.
    Raises :class:`FenceSetError` (``MemoryError`` passes through)."""
    f = opener()
    if f is None:
        raise FenceSetError("format", "no set stored")
    try:
        text = FileText(f)
        if bytes(text[:4]) == b"HSF1":  # tracker.fence_load.MAGIC: raw binary
            start = -1
            wrapped = None
            size = len(text)
            src = _Source(f, -1, size)
        else:
            start, _end, size, wrapped = wrapper(text)
            src = _Source(f, start, size)
        # Hash and structure of the set behind ``src``.
        head = src.read_at(0, _HEADER_SIZE)
        if len(head) != _HEADER_SIZE:
            raise FenceSetError("size", "truncated header")
        fields = struct.unpack("<4s12sHHHHHHiiBBHHHHH", head)  # tracker.fence_load.HEADER
        if fields[0] != b"HSF1":
            raise FenceSetError("format", "bad magic")
        hd = fields[2:]
        sizes = counts(hd)
        offs, total = offsets(sizes)
        if size != total:
            raise FenceSetError("size", "size %d, header says %d" % (size, total))
        version = ""  # unless 12 lowercase hex digits (then the hash check names it)
        for c in fields[1]:
            if not (48 <= c <= 57 or 97 <= c <= 102):
                break
        else:
            version = str(fields[1], "ascii")
        if hashlib is not None:
            h = hashlib.sha256()
            h.update(head[:4])
            h.update(bytes(12))
            h.update(head[16:])
            pos = _HEADER_SIZE
            while pos < total:
                k = total - pos if total - pos < _CHUNK else _CHUNK
                raw = src.read_at(pos, k)
                if len(raw) != k:
                    raise FenceSetError("size", "truncated body")
                h.update(raw)
                pos += k
            if str(binascii.hexlify(h.digest()[:6]), "ascii") != version:
                raise FenceSetError("hash", "content hash does not match version %r" % (version,))
        check(hd, lambda s: _values(src, offs[s], _CODES[s], sizes[s]),
               lambda a, b: src.read_at(offs[_S_BLOB] + a, b - a))
    except (FenceSetError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - a read error or garbage: corrupt either way
        raise FenceSetError("structure", "corrupt or truncated (%r)" % (e,))
    finally:
        f.close()
    if wrapped is not None and wrapped != version:
        raise FenceSetError("hash", "wrapper version does not match content")
    return hd, version, start


def wrapper(text):
    """Where the base64 ``data`` of a JSON wrapper is: ``(start, end, size, version)``.

    ``text`` is a str, bytes or :class:`FileText`. Only the few dozen bytes around the payload
    are parsed as JSON.
    """
    binary = not isinstance(text, str)
    k = text.find(b'"data"' if binary else '"data"')
    # The value's opening quote: the first quote after the colon that follows the key.
    colon = text.find(b":" if binary else ":", k + 6) if k >= 0 else -1
    start = text.find(b'"' if binary else '"', colon + 1) if colon >= 0 else -1
    end = text.find(b'"' if binary else '"', start + 1) if start >= 0 else -1
    if end < 0:
        raise FenceSetError("format", "bad JSON wrapper: no data")
    start += 1
    try:
        if binary:
            doc = json.loads(str(bytes(text[:start]) + bytes(text[end:]), "utf-8"))
        else:
            doc = json.loads(text[:start] + text[end:])
        fmt = doc["format"]
        version = doc["version"]
    except (ValueError, KeyError, TypeError) as e:
        raise FenceSetError("format", "bad JSON wrapper: %r" % (e,))
    if fmt != "hsf1":
        raise FenceSetError("format", "unknown format %r" % (fmt,))
    n64 = end - start
    if n64 % 4:
        raise FenceSetError("format", "base64 data length is not a multiple of 4")
    size = n64 // 4 * 3
    for j in (end - 1, end - 2):
        if n64 and text[j] in (61, "="):
            size -= 1
    return start, end, size, version


def _bad(detail):
    raise FenceSetError("structure", detail)


def check(hd, seq, text):
    """Structure checks, so that evaluating a set that passes can never raise.

    ``hd``: the header fields after the version (n, nr, nv, ng, ne, ns, g_lat0, g_lon0,
    g_shift, flags, g_cols, g_rows, near_lat, near_m, reserved); ``seq(section)``: an iterator
    over that section's values; ``text(a, b)``: bytes ``a:b`` of the string blob. Every index,
    count and offset is checked against what it points into, every string is decoded.
    Raises :class:`FenceSetError`.
    """
    n, nr, nv, ng, ne, ns = hd[0], hd[1], hd[2], hd[3], hd[4], hd[5]
    g_cols = hd[10]
    g_rows = hd[11]
    near_lat = hd[12]
    lat0 = seq(_S_LAT0)
    lon0 = seq(_S_LON0)
    kxq = seq(_S_KXQ)
    kyq = seq(_S_KYQ)
    radius = seq(_S_RADIUS)
    ring = seq(_S_RING)
    r0 = next(ring)
    if r0 != 0:
        _bad("ring table does not start at 0")
    for i in range(n):
        la = next(lat0)
        lo = next(lon0)
        kx = next(kxq)
        ky = next(kyq)
        rad = next(radius)
        r1 = next(ring)
        if not -90000000 <= la <= 90000000 or not -180000000 <= lo <= 180000000:
            _bad("fence %d: origin out of range" % i)
        if kx == 0 or ky == 0:
            _bad("fence %d: zero scale factor" % i)
        if near_lat * ky // kx + 1 > 0xFFFF:
            _bad("fence %d: near range too large" % i)
        if r1 < r0 or r1 > nr:
            _bad("fence %d: ring index out of range" % i)
        if r1 == r0 and rad == 0:
            _bad("fence %d has no geometry" % i)
        r0 = r1
    if r0 != nr:
        _bad("ring table does not end at the ring count")
    # Each section reader holds a chunk of the set while it is alive: let them go as soon as
    # they are done (a new set is checked beside the running one, in what heap is left).
    lat0 = lon0 = kxq = kyq = radius = ring = None
    rs = seq(_S_RSTART)
    p = next(rs)
    if p != 0:
        _bad("vertex table does not start at 0")
    for r in range(nr):
        q = next(rs)
        if q < p + 3 or q > nv:
            _bad("ring %d: fewer than 3 vertices or vertex index out of range" % r)
        p = q
    if p != nv:
        _bad("vertex table does not end at the vertex count")
    rs = None
    if ng and g_cols * g_rows == 0:
        _bad("grid has cells but no rows or columns")
    keys = seq(_S_GKEY)
    goff = seq(_S_GOFF)
    gent = seq(_S_GENT)
    o0 = next(goff)
    if o0 != 0:
        _bad("grid offsets do not start at 0")
    last = -1
    for c in range(ng):
        key = next(keys)
        o1 = next(goff)
        if key <= last or key >= g_cols * g_rows:
            _bad("grid cell %d: key out of order or out of range" % c)
        last = key
        if o1 < o0 or o1 > ne:
            _bad("grid cell %d: entries out of range" % c)
        prev = -1
        for _ in range(o1 - o0):
            e = next(gent)
            if e <= prev or e >= n:
                _bad("grid cell %d: fence index out of range or repeated" % c)
            prev = e
        o0 = o1
    if o0 != ne:
        _bad("grid offsets do not end at the entry count")
    keys = goff = gent = None
    soff = seq(_S_SOFF)
    a = next(soff)
    if a != 0:
        _bad("string offsets do not start at 0")
    for k in range(2 * n):
        b = next(soff)
        if b < a or b > ns:
            _bad("string %d: offset out of range" % k)
        try:
            str(text(a, b), "utf-8")
        except UnicodeError:
            raise FenceSetError("strings", "fence %d: %s is not UTF-8" % (k // 2, (
                "id", "name")[k % 2]))
        a = b
    if a != ns:
        _bad("string offsets do not end at the blob size")
