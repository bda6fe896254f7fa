"""Fence sets loaded whole into memory: for host tools, tests and replays on CPython.

The tracker never imports this module: it checks a set where it lies in flash and reads the hot
spots near it a cell at a time (``tracker.fence.FenceStore``), so this bytecode stays out of its
heap (docs/memory.md). ``FenceSet.from_json``, ``from_bytes`` and ``from_stream`` call in here.
"""

import binascii
import struct
from array import array

from tracker.compat import MICROPYTHON, const
from tracker.fence import (
    FenceSetError,
    Strings,
    counts,
    offsets,
)
from tracker.fence_check import check, wrapper

try:
    import hashlib
except ImportError:  # pragma: no cover - port without hashlib: structure checks only
    hashlib = None

MAGIC = b"HSF1"
HEADER = "<4s12sHHHHHHiiBBHHHHH"  # struct format of the 48-byte header (docs/fences.md)
_HEADER_SIZE = const(48)  # tracker.fence._HEADER_SIZE
_CHUNK = const(384)  # bytes read at a time while loading (a multiple of 2, 3 and 4)
_B64_CHUNK = const(512)  # base64 characters decoded at a time (384 bytes)


class _MemReader:
    """``read(n)`` over bytes held in memory (small copies, never the whole set)."""

    def __init__(self, data):
        self._mv = memoryview(data)
        self._pos = 0

    def read(self, n):
        p = self._pos
        self._pos = p + n
        return bytes(self._mv[p : p + n])


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


def mem_reader(data):
    """``read(n)`` over a set held in memory."""
    return _MemReader(data)


def from_json(cls, text):
    """Parse the JSON wrapper (str, bytes, or a :class:`FileText` over a file) or, if it
    starts with the magic, raw binary.

    The base64 ``data`` is decoded piecewise straight into the set's arrays, so the peak
    memory is the text plus the set, not the text plus two copies of the set.
    """
    if isinstance(text, memoryview):
        text = bytes(text)
    # A FileText is recognised by its ``file``, not by its class: on MicroPython
    # tracker.fence_check is dropped after every FenceStore.load and imported afresh, so a
    # FileText made before and one this module imported need not be the same class.
    filetext = hasattr(text, "file") and hasattr(text, "find")
    if filetext or isinstance(text, (bytes, bytearray)):
        if bytes(text[:4]) == MAGIC:
            if filetext:
                text.file.seek(0)
                return from_stream(cls, text.file, len(text))
            return from_stream(cls, _MemReader(text), len(text))
    elif not isinstance(text, str):
        raise FenceSetError("format", "expected str or bytes, not %s" % type(text).__name__)
    start, end, size, version = wrapper(text)
    reader = _Base64Reader(text, start, end)
    fs = from_stream(cls, reader, size)
    if not reader.exhausted():
        raise FenceSetError("size", "trailing data after the set")
    if fs.version != version:
        raise FenceSetError("hash", "wrapper version does not match content")
    return fs



def from_stream(cls, f, size=-1):
    """Parse a binary fence set from a stream with ``read(n)`` (e.g. an open flash file)."""
    try:
        return _parse(cls, f, size)
    except MemoryError:
        raise
    except FenceSetError:
        raise
    except Exception as e:  # struct.error, OverflowError...: all mean corrupt
        raise FenceSetError("structure", "corrupt or truncated (%r)" % (e,))



def _parse(cls, f, size):
    head = f.read(_HEADER_SIZE)
    if len(head) != _HEADER_SIZE:
        raise FenceSetError("size", "truncated header")
    (magic, version, n, nr, nv, ng, ne, ns, g_lat0, g_lon0, g_shift, _flags, g_cols, g_rows,
     near_lat, near_m, _reserved) = struct.unpack(HEADER, head)
    if magic != MAGIC:
        raise FenceSetError("format", "bad magic")
    _offs, total = offsets(counts((n, nr, nv, ng, ne, ns)))
    if size >= 0 and size != total:
        raise FenceSetError("size", "size %d, header says %d" % (size, total))
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
                raise FenceSetError("size", "truncated body")
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
                raise FenceSetError("size", "truncated body")
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
            raise FenceSetError("hash", "content hash does not match version " + version)
    arrays = (fs.lat0, fs.lon0, fs.bb, fs.kxq, fs.kyq, fs.hmax, fs.radius, fs.density,
              fs.ring, fs.rstart, fs.v, fs.gkey, fs.goff, fs.gent, soff, blob)
    check((n, nr, nv, ng, ne, ns, g_lat0, g_lon0, g_shift, _flags, g_cols, g_rows,
            near_lat, near_m, _reserved),
           lambda sec: iter(arrays[sec]), lambda a, b: bytes(blob[a:b]))
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
    fs.ids = Strings(blob, soff, 0)
    fs.names = Strings(blob, soff, 1)
    return fs
