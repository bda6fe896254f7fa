"""The outbox: every message in flash until the broker has acknowledged it.

A message gets the next per-device sequence number when it is queued, is appended to a log in
flash before anything else happens, and leaves the outbox only after the broker's PUBACK. A power
cut at any byte loses nothing that was completely written; a reboot replays what is left, in
order. The gateway drops the duplicates that at-least-once delivery implies, by ``(device, seq)``.

Log layout (see ``docs/outbox.md``): numbered segment files ``ob.<n>`` of records::

    0xA5 | type (1) | length (u16 LE) | seq (u32 LE) | payload (length) | CRC-32 (u32 LE)

with the CRC over everything between the marker and the CRC. Types: ``L`` a location, ``E`` an
event (transition), ``S`` any other message, ``A`` "everything up to seq is acknowledged"
(written after each batch of PUBACKs, and as a checkpoint at the start of every segment), ``D``
"message seq was thinned out", ``Q`` "the last sequence number taken was seq" (in the
checkpoint). Recovery scans every segment, skips damaged bytes until the next record whose CRC
holds, and ignores a truncated tail; a damaged record is dropped, never half-used. Each boot
starts a new segment, so new records never follow a damaged tail.

Segments whose messages are all acknowledged are deleted. When the pending count reaches
``capacity`` the oldest routine locations are thinned out (every other one, oldest first,
pass after pass); transitions are never dropped. When the log outgrows ``max_bytes`` the live
records are copied into a fresh segment and the old ones removed (new first, so a power cut in
between only leaves duplicates, which recovery merges by sequence number).
"""

import binascii
import struct

from tracker.compat import const

try:
    from array import array
except ImportError:  # pragma: no cover
    from uarray import array

_MARK = const(0xA5)
_HEAD = const(8)
_OVERHEAD = const(12)
_SEGMENT_BYTES = const(16384)
_DEFAULT_CAPACITY = const(2000)
_DEFAULT_MAX_BYTES = const(262144)

_LOC = const(76)  # b"L": a location
_EVENT = const(69)  # b"E": an event (transition)
_ACK = const(65)  # b"A"
_DROP = const(68)  # b"D"
_OTHER = const(83)  # b"S": any other kind, named inside
_LAST = const(81)  # b"Q": the last sequence number taken, in each segment's checkpoint

# Slots of Outbox._st (named by const()s: no interned name on a board, docs/memory.md).
_THIN_AT = const(0)  # where the next thinning pass goes on
_SEGMENT = const(1)  # number of the segment being written ("ob.<n>")
_SEGMENT_SIZE = const(2)  # its size in bytes


def encode_record(rtype, seq, payload=b""):
    """One log record as bytes."""
    body = struct.pack("<BHI", rtype, len(payload), seq) + payload
    return bytes([_MARK]) + body + (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "little")


def scan(data):
    """Yield ``(offset, rtype, seq, payload_offset, length)`` for every intact record in ``data``.

    Damaged bytes are skipped until the next record whose CRC holds; a truncated tail is skipped.
    """
    n = len(data)
    p = 0
    mv = memoryview(data)
    while p + _OVERHEAD <= n:
        if data[p] != _MARK:
            p += 1
            continue
        rtype, length, seq = struct.unpack_from("<BHI", data, p + 1)
        end = p + _OVERHEAD + length
        if end > n:
            p += 1  # a truncated record, or a marker byte inside a damaged one
            continue
        crc = data[end - 4] | data[end - 3] << 8 | data[end - 2] << 16 | data[end - 1] << 24
        if binascii.crc32(mv[p + 1 : end - 4]) & 0xFFFFFFFF != crc:
            p += 1
            continue
        yield p, rtype, seq, p + _HEAD, length
        p = end


class Outbox:
    """A persistent FIFO of ``(seq, kind, payload)`` over a storage port.

    :param storage: the board's storage: ``names()``, ``size(name)``, ``read_bytes(name)``,
        ``read_at(name, offset, n)``, ``append(name, data)`` (durable when it returns) and
        ``remove(name)``; None keeps everything in RAM (tests, simulators)
    :param capacity: most pending messages before old locations are thinned out
    :param max_bytes: log size that triggers compaction
    """

    def __init__(self, storage=None, capacity=_DEFAULT_CAPACITY, max_bytes=_DEFAULT_MAX_BYTES,
                 segment_bytes=_SEGMENT_BYTES):
        self.storage = storage
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.dropped = 0  # thinned out since boot
        self.damaged_bytes = 0  # log bytes skipped at recovery (a torn write, a bad sector)
        self.last_seq = 0
        self.acked = 0
        # Pending messages, oldest first: parallel arrays to keep the heap small.
        self._seq = array("I")
        self._type = bytearray()
        self._seg = array("I")
        self._off = array("I")
        self._ram = {}  # payloads by seq when there is no storage
        self._st = [0, 0, 0]  # the _THIN_AT, _SEGMENT and _SEGMENT_SIZE slots
        self._segments = []  # numbers of the segments in flash, oldest first
        if storage is None:
            return
        # Recovery: rebuild the pending list from the segments in flash.
        numbers = []
        for name in storage.names():
            if name.startswith("ob.") and name[3:].isdigit():
                numbers.append(int(name[3:]))
        numbers.sort()
        messages = {}  # seq -> (rtype, segment, offset); dict keeps memory proportional to pending
        acked = 0
        dropped = []
        last = 0
        for number in numbers:
            data = storage.read_bytes("ob." + str(number))
            good = 0
            for off, rtype, seq, _p, length in scan(data):
                good += _OVERHEAD + length
                if seq > last:
                    last = seq
                if rtype == _ACK:
                    if seq > acked:
                        acked = seq
                elif rtype == _LAST:
                    pass
                elif rtype == _DROP:
                    dropped.append(seq)
                elif seq not in messages:
                    messages[seq] = (rtype, number, off)
            self.damaged_bytes += len(data) - good
            data = None
        if acked > last:
            last = acked
        for seq in dropped:
            messages.pop(seq, None)
        for seq in sorted(messages):
            if seq <= acked:
                continue
            rtype, number, off = messages[seq]
            self._seq.append(seq)
            self._type.append(rtype)
            self._seg.append(number)
            self._off.append(off)
        self.last_seq = last
        self.acked = acked
        self._segments = numbers
        segment = numbers[-1] if numbers else 0
        self._st[_SEGMENT] = segment
        self._delete_done_segments()
        self._start_segment(segment + 1)

    def __len__(self):
        return len(self._seq)

    # -- queueing -------------------------------------------------------------------------------
    def next_seq(self):
        """The sequence number the next ``put`` must use (taken for good once it is put)."""
        return self.last_seq + 1

    def put(self, seq, kind, payload):
        """Append a message built with sequence number ``seq``; durable when this returns.

        At ``capacity`` one old routine location is thinned out first (every other one, oldest
        first, pass after pass; with fewer than two locations pending nothing is: a bounded
        overrun beats a loss). A log larger than ``max_bytes`` after it is compacted: the
        pending records copied into fresh segments, then the old ones removed.
        """
        if seq <= self.last_seq:
            raise ValueError("sequence numbers must increase")
        st = self._st
        n = len(self._seq)
        if n >= self.capacity:
            for _ in range(2):
                i = st[_THIN_AT]
                keep = True  # keep one location, drop the next
                while i < n:
                    if self._type[i] == _LOC:
                        if keep:
                            keep = False
                        else:
                            dropped = self._seq[i]
                            if self.storage is None:
                                self._ram.pop(dropped, None)
                            self._seq = self._seq[:i] + self._seq[i + 1 :]
                            self._type = self._type[:i] + self._type[i + 1 :]
                            self._seg = self._seg[:i] + self._seg[i + 1 :]
                            self._off = self._off[:i] + self._off[i + 1 :]
                            st[_THIN_AT] = i
                            self.dropped += 1
                            self._write(encode_record(_DROP, dropped))
                            break
                    i += 1
                if i < n:
                    break
                st[_THIN_AT] = 0  # this pass reached the newest: the next starts at the oldest
        rtype = _LOC if kind == "loc" else _EVENT if kind == "event" else _OTHER
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        if rtype == _OTHER:
            data = kind.encode() + b"\n" + data
        self.last_seq = seq
        off = self._write(encode_record(rtype, seq, data))
        self._seq.append(seq)
        self._type.append(rtype)
        self._seg.append(st[_SEGMENT])
        self._off.append(off)
        storage = self.storage
        if storage is None:
            self._ram[seq] = data
            return
        total = 0
        for number in self._segments:
            total += storage.size("ob." + str(number))
        if total > self.max_bytes:
            old = self._segments
            self._segments = []
            self._start_segment(st[_SEGMENT] + 1)
            for i in range(len(self._seq)):
                record = encode_record(self._type[i], self._seq[i], self._raw(i))
                self._off[i] = self._write(record)
                self._seg[i] = st[_SEGMENT]
            for number in old:
                storage.remove("ob." + str(number))

    def peek(self):
        """The oldest pending message ``(seq, kind, payload)``, or None."""
        return self.message(0) if self._seq else None

    def batch(self, n):
        """Up to ``n`` oldest pending messages, oldest first."""
        return [self.message(i) for i in range(min(n, len(self._seq)))]

    def message(self, i):
        """Pending message ``i`` (0 is the oldest) as ``(seq, kind, payload)``."""
        data = self._raw(i)
        rtype = self._type[i]
        if rtype == _LOC:
            return self._seq[i], "loc", data
        if rtype == _EVENT:
            return self._seq[i], "event", data
        nl = data.find(b"\n")
        return self._seq[i], str(data[:nl], "utf-8"), data[nl + 1 :]

    def _raw(self, i):
        """Payload bytes of pending message ``i`` as stored (kind prefix included)."""
        if self.storage is None:
            return self._ram[self._seq[i]]
        name = "ob." + str(self._seg[i])
        head = self.storage.read_at(name, self._off[i], _HEAD)
        return self.storage.read_at(name, self._off[i] + _HEAD, head[2] | head[3] << 8)

    # -- acknowledgement ------------------------------------------------------------------------
    def ack(self, seq):
        """The broker acknowledged every pending message up to and including ``seq``."""
        k = 0
        while k < len(self._seq) and self._seq[k] <= seq:
            k += 1
        if not k:
            return
        if self.storage is None:
            for i in range(k):
                self._ram.pop(self._seq[i], None)
        # Arrays have no cheap "delete slice" on MicroPython: rebuild from the tail.
        self._seq = self._seq[k:]
        self._type = self._type[k:]
        self._seg = self._seg[k:]
        self._off = self._off[k:]
        st = self._st
        st[_THIN_AT] = st[_THIN_AT] - k if st[_THIN_AT] > k else 0
        if seq > self.acked:
            self.acked = seq
        self._write(encode_record(_ACK, seq))
        self._delete_done_segments()

    # -- the log --------------------------------------------------------------------------------
    def _write(self, data):
        """Append record ``data`` to the current segment (a new one when full); its offset."""
        if self.storage is None:
            return 0
        st = self._st
        if st[_SEGMENT_SIZE] + len(data) > self.segment_bytes:
            self._start_segment(st[_SEGMENT] + 1)
        off = st[_SEGMENT_SIZE]
        self.storage.append("ob." + str(st[_SEGMENT]), data)
        st[_SEGMENT_SIZE] += len(data)
        return off

    def _start_segment(self, n):
        """Open segment number ``n`` with a checkpoint of what is acknowledged."""
        st = self._st
        st[_SEGMENT] = n
        self._segments.append(n)
        record = encode_record(_ACK, self.acked) + encode_record(_LAST, self.last_seq)
        self.storage.append("ob." + str(n), record)
        st[_SEGMENT_SIZE] = len(record)

    def _delete_done_segments(self):
        if self.storage is None:
            return
        oldest_needed = self._seg[0] if self._seg else self._st[_SEGMENT]
        keep = []
        for number in self._segments:
            if number < oldest_needed:
                self.storage.remove("ob." + str(number))
            else:
                keep.append(number)
        self._segments = keep
