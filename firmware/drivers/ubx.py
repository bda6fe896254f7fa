"""u-blox receivers over UBX: frames, acknowledgements, and the tracker's set-up.

Pure: builds and reads bytes; ``drivers.gnss_module`` writes them to the UART and waits for the
answers. Frame layout (u-blox interface descriptions, "UBX frame structure")::

    0xB5 0x62  class  id  length (u16 LE)  payload  CK_A CK_B

with an 8-bit Fletcher checksum over class, id, length and payload. A configuration message is
answered by UBX-ACK-ACK (05 01) or UBX-ACK-NAK (05 00) whose payload is the class and id it
answers. UBX-RXM-PMREQ is the exception: the receiver goes to backup without answering.

Two generations:

* u-blox 9 and 10 (M9N, M10, F9P; protocol 27 and later) take CFG-VALSET (06 8A) with
  configuration keys, written to RAM and battery-backed RAM so they survive the backup state.
* u-blox 6 to 8 (NEO-6M, NEO-M8N) NAK CFG-VALSET and take CFG-MSG (06 01), CFG-RATE (06 08) and
  CFG-RXM (06 11).

:class:`UbxReader` finds frames in the UART's byte stream, which also carries NMEA text (a UBX
frame starts with 0xB5, a byte NMEA never sends), without allocating per byte.
"""

from tracker.compat import const

SYNC1 = const(0xB5)
SYNC2 = const(0x62)
CLS_ACK = const(0x05)
ID_ACK_NAK = const(0x00)
ID_ACK_ACK = const(0x01)
CLS_CFG = const(0x06)
ID_CFG_MSG = const(0x01)
ID_CFG_RATE = const(0x08)
ID_CFG_RXM = const(0x11)
ID_CFG_VALSET = const(0x8A)
CLS_RXM = const(0x02)
ID_RXM_PMREQ = const(0x41)
CLS_NMEA = const(0xF0)

_LAYER_RAM_BBR = const(0x03)  # RAM now, battery-backed RAM across backup (not flash: no wear)
_PMREQ_BACKUP = const(0x02)  # flags bit 1: go to backup
_WAKE_UARTRX = const(0x08)  # wakeupSources bit 3: a falling edge on UART RX wakes it
_MAX_PAYLOAD = const(64)  # longer frames (MON-VER, NAV-SAT...) are skipped, not buffered
_MAX_FRAME = const(1024)  # a length beyond any UBX output message: a false start

# NMEA messages: (name, CFG-MSG id in class F0, CFG-MSGOUT-NMEA_ID_*_UART1 key)
NMEA_MESSAGES = (
    ("GGA", 0x00, 0x209100BB),
    ("GLL", 0x01, 0x209100CA),
    ("GSA", 0x02, 0x209100C0),
    ("GSV", 0x03, 0x209100C5),
    ("RMC", 0x04, 0x209100AC),
    ("VTG", 0x05, 0x209100B1),
    ("GST", 0x07, 0x209100D4),
    ("ZDA", 0x08, 0x209100D9),
    ("GNS", 0x0D, 0x209100B6),
)
KEY_RATE_MEAS = const(0x30210001)  # U2, ms between measurements
KEY_RATE_NAV = const(0x30210002)  # U2, measurements per navigation solution
KEY_PM_OPERATEMODE = const(0x20D00001)  # E1: 0 full power, 1 PSMOO, 2 PSMCT

# What the tracker needs: RMC (date, status), GGA (quality, altitude), GSA (satellites used,
# DOP), GST when the receiver has it (accuracy). GSV, GLL, VTG only cost UART time and parsing.
TRACKER_MESSAGES = ("RMC", "GGA", "GSA", "GST")


def checksum(buf, start, end):
    """The 8-bit Fletcher checksum of ``buf[start:end]`` as ``(ck_a, ck_b)``."""
    a = 0
    b = 0
    for i in range(start, end):
        a = (a + buf[i]) & 0xFF
        b = (b + a) & 0xFF
    return a, b


def frame(cls, msg_id, payload=b""):
    """A complete UBX frame (bytes). Used at set-up time; the frames sent in the main loop
    are built once in advance."""
    n = len(payload)
    buf = bytearray(8 + n)
    buf[0] = SYNC1
    buf[1] = SYNC2
    buf[2] = cls
    buf[3] = msg_id
    buf[4] = n & 0xFF
    buf[5] = n >> 8
    buf[6 : 6 + n] = payload
    buf[6 + n], buf[7 + n] = checksum(buf, 2, 6 + n)
    return bytes(buf)


def _le(value, size):
    out = bytearray(size)
    for i in range(size):
        out[i] = (value >> (8 * i)) & 0xFF
    return out


def key_size(key):
    """Bytes of a configuration key's value, from its size bits (28-30)."""
    size = (key >> 28) & 0x07
    if size == 1 or size == 2:  # one bit (L) and one byte both take a byte
        return 1
    if size == 3:
        return 2
    if size == 4:
        return 4
    if size == 5:
        return 8
    raise ValueError("bad configuration key %08X" % key)


def valset(items, layers=_LAYER_RAM_BBR):
    """CFG-VALSET of ``items`` (``(key, value)`` pairs), version 0, in ``layers``."""
    payload = bytearray(b"\x00") + bytearray((layers, 0, 0))
    for key, value in items:
        payload += _le(key, 4) + _le(value, key_size(key))
    return frame(CLS_CFG, ID_CFG_VALSET, payload)


def cfg_msg(msg_id, rate):
    """CFG-MSG, short form: NMEA message ``msg_id`` at ``rate`` per solution on this port."""
    return frame(CLS_CFG, ID_CFG_MSG, bytes((CLS_NMEA, msg_id, rate)))


def cfg_rate(meas_ms, nav_rate=1, time_ref=1):
    """CFG-RATE: measurement period, solutions per measurement, time reference (1 = GPS)."""
    return frame(CLS_CFG, ID_CFG_RATE, _le(meas_ms, 2) + _le(nav_rate, 2) + _le(time_ref, 2))


def cfg_rxm(power_save):
    """CFG-RXM (u-blox 6-8): continuous (False) or power save mode (True)."""
    return frame(CLS_CFG, ID_CFG_RXM, bytes((8, 1 if power_save else 0)))


def pmreq_backup(duration_ms=0):
    """RXM-PMREQ (16-byte version): backup for ``duration_ms`` (0: until woken), woken early
    by activity on the UART's RX line. Not acknowledged."""
    payload = (bytearray(4) + _le(duration_ms, 4) + _le(_PMREQ_BACKUP, 4)
               + _le(_WAKE_UARTRX, 4))
    return frame(CLS_RXM, ID_RXM_PMREQ, payload)


def setup_valset(rate_ms, messages=TRACKER_MESSAGES, power_save=False):
    """The one CFG-VALSET that sets a u-blox 9/10 up for the tracker."""
    items = []
    for name, _msg_id, key in NMEA_MESSAGES:
        items.append((key, 1 if name in messages else 0))
    items.append((KEY_RATE_MEAS, rate_ms))
    items.append((KEY_RATE_NAV, 1))
    items.append((KEY_PM_OPERATEMODE, 1 if power_save else 0))
    return valset(items)


def setup_legacy(rate_ms, messages=TRACKER_MESSAGES, power_save=False):
    """The CFG-MSG, CFG-RATE and CFG-RXM frames for a u-blox 6-8, each acknowledged."""
    frames = []
    for name, msg_id, _key in NMEA_MESSAGES:
        frames.append(cfg_msg(msg_id, 1 if name in messages else 0))
    frames.append(cfg_rate(rate_ms))
    frames.append(cfg_rxm(power_save))
    return frames


def answers(frame_bytes):
    """``(class, id)`` of the configuration message a frame is, for matching its ACK."""
    return frame_bytes[2], frame_bytes[3]


class UbxReader:
    """Finds UBX frames in a byte stream (NMEA around them is ignored) and keeps the last
    acknowledgement. Counts frames with a bad checksum or a payload too long to keep."""

    def __init__(self):
        self._buf = bytearray(6 + _MAX_PAYLOAD + 2)
        self._n = 0  # bytes of the current frame so far (0: looking for 0xB5)
        self._need = 0
        self.ack = None  # (class, id, True for ACK / False for NAK), last acknowledgement
        self.acks = 0
        self.naks = 0
        self.bad = 0
        self.skipped = 0
        self.frames = 0

    def feed(self, data, n=-1):
        """Take bytes from the UART (the first ``n`` of ``data`` if given)."""
        if n < 0:
            n = len(data)
        buf = self._buf
        k = self._n
        for i in range(n):
            c = data[i]
            if k == 0:
                if c == SYNC1:
                    buf[0] = c
                    k = 1
                continue
            if k == 1:
                if c == SYNC2:
                    buf[1] = c
                    k = 2
                elif c != SYNC1:
                    k = 0
                continue
            if k < len(buf):
                buf[k] = c
            k += 1
            if k == 6:
                length = buf[4] | buf[5] << 8
                if length > _MAX_FRAME:  # not a frame: resynchronise at the next 0xB5
                    self.bad += 1
                    k = 0
                    continue
                self._need = 8 + length
            if k >= 6 and k == self._need:
                self._frame(k)
                k = 0
        self._n = k

    def _frame(self, k):
        buf = self._buf
        if k > len(buf):
            self.skipped += 1
            return
        a, b = checksum(buf, 2, k - 2)
        if a != buf[k - 2] or b != buf[k - 1]:
            self.bad += 1
            return
        self.frames += 1
        if buf[2] == CLS_ACK and k == 10:
            acked = buf[3] == ID_ACK_ACK
            if acked:
                self.acks += 1
            elif buf[3] == ID_ACK_NAK:
                self.naks += 1
            else:
                return
            self.ack = (buf[6], buf[7], acked)
