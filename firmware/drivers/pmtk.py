"""MediaTek receivers (MT3333/MT3339: PA1010D, Quectel L76/L80, Adafruit Ultimate GPS) over PMTK.

Pure: builds the ``$PMTK`` sentences and reads their ``$PMTK001`` acknowledgements; the
sentences use the NMEA framing and checksum. From the MTK NMEA packet manual:

* ``$PMTK314,GLL,RMC,VTG,GGA,GSA,GSV,(6 reserved),...,ZDA,MCHN`` (19 fields): output of each
  sentence, every N position fixes (0 off);
* ``$PMTK220,ms``: position fix interval (100-10000 ms);
* ``$PMTK161,0``: standby (the module stops and draws about 1 mA; any byte on RX wakes it with
  its almanac and ephemeris kept: a hot start);
* ``$PMTK101``: hot start, ``$PMTK103``: cold start;
* answer ``$PMTK001,cmd,flag``: flag 0 invalid command, 1 unsupported, 2 valid but failed,
  3 succeeded. ``$PMTK161`` is answered before the module stops.
"""

# $PMTK314 field order: GLL RMC VTG GGA GSA GSV, then 12 fields that MT3339 firmware ignores or
# gives to GRS/GST (field 6 is GRS... left 0 here), ZDA (field 17), MCHN (field 18).
_PMTK314_ORDER = ("GLL", "RMC", "VTG", "GGA", "GSA", "GSV")
TRACKER_MESSAGES = ("RMC", "GGA", "GSA")
ACK_OK = 3


def sentence(body):
    """``$body*hh\\r\\n`` (bytes) with the NMEA checksum."""
    if isinstance(body, str):
        body = body.encode()
    x = 0
    for c in body:
        x ^= c
    return b"$" + body + b"*" + ("%02X" % x).encode() + b"\r\n"


def set_output(messages=TRACKER_MESSAGES, zda=False):
    """``$PMTK314``: each named sentence once per fix, the others off."""
    fields = [("1" if name in messages else "0") for name in _PMTK314_ORDER]
    fields += ["0"] * 11
    fields.append("1" if zda else "0")
    fields.append("0")
    return sentence("PMTK314," + ",".join(fields))


def set_rate(interval_ms):
    """``$PMTK220``: one fix every ``interval_ms`` (100-10000)."""
    if not 100 <= interval_ms <= 10000:
        raise ValueError("MTK fix interval must be 100-10000 ms")
    return sentence("PMTK220,%d" % interval_ms)


STANDBY = sentence("PMTK161,0")
HOT_START = sentence("PMTK101")
COLD_START = sentence("PMTK103")


def command_of(frame_bytes):
    """The packet type of a ``$PMTK`` sentence (``314`` for ``$PMTK314,...``), for matching
    its ``$PMTK001`` answer."""
    i = 5
    v = 0
    while i < len(frame_bytes) and 48 <= frame_bytes[i] <= 57:
        v = v * 10 + frame_bytes[i] - 48
        i += 1
    return v


class PmtkReader:
    """Reads ``$PMTK001,cmd,flag*hh`` answers from the module's byte stream (split anywhere).

    ``ack`` is the last answer as ``(cmd, flag)``; checksum failures are counted in ``bad``.
    """

    _PREFIX = b"$PMTK001,"

    def __init__(self):
        self._buf = bytearray(32)
        self._n = 0
        self.ack = None
        self.acks = 0
        self.bad = 0

    def feed(self, data, n=-1):
        if n < 0:
            n = len(data)
        buf = self._buf
        k = self._n
        prefix = self._PREFIX
        for i in range(n):
            c = data[i]
            if c == 36:  # '$' always starts again
                buf[0] = c
                k = 1
                continue
            if k == 0:
                continue
            if k < len(prefix):
                if c != prefix[k]:
                    k = 0
                    continue
                buf[k] = c
                k += 1
                continue
            if c == 13 or c == 10 or k >= len(buf):
                self._answer(k)
                k = 0
                continue
            buf[k] = c
            k += 1
        self._n = k

    def _answer(self, k):
        buf = self._buf
        star = -1
        x = 0
        for i in range(1, k):
            if buf[i] == 42:
                star = i
                break
            x ^= buf[i]
        if star < 0 or star + 3 != k:
            self.bad += 1
            return
        try:
            if int(bytes(buf[star + 1 : k]), 16) != x:
                raise ValueError
            cmd, flag = bytes(buf[9:star]).split(b",")
            self.ack = (int(cmd), int(flag))
        except ValueError:
            self.bad += 1
            return
        self.acks += 1
