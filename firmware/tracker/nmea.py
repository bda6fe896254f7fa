"""NMEA 0183 from the GNSS module: framing, checksums, and one fix per epoch.

A receiver sends a burst of sentences per epoch (RMC, GGA, GST... all stamped with the same
time of day). ``NmeaParser`` frames raw serial bytes into lines, verifies every checksum, merges
the sentences of one epoch into a single :class:`Fix` and hands it to ``on_fix`` when the epoch is
complete: when a sentence with a later time arrives, or at ``flush()``.

Everything is integer maths on fixed-point decimals: coordinates in micro-degrees are exact to the
digits the receiver sent (floats on a board are 32-bit and would lose metres). The line buffer is
preallocated; the ``Fix`` object is allocated once and updated in place, so consumers copy what
they keep (``Fix.copy()``).

Rejected input is never silent: ``stats()`` counts sentences by type and rejections by reason.
See ``docs/contracts.md`` for the fix fields.
"""

from tracker.compat import const

_MAX_LINE = const(120)  # NMEA says 82; some receivers send longer proprietary lines
_UERE_CM = const(500)  # accuracy from HDOP when the receiver sends no GST: 5 m per HDOP unit
ALT_UNKNOWN = const(-1000000)
_DAY_S = const(86400)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a Gregorian date (integer only, any year)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = m + 9 if m <= 2 else m - 3
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def fixed(field, digits):
    """Parse a decimal field such as ``b"12.345"`` as an integer scaled by 10**digits.

    Extra fraction digits are rounded half up. Raises ``ValueError`` on anything but an optional
    sign, digits and one dot.
    """
    neg = False
    if field[:1] == b"-":
        neg = True
        field = field[1:]
    dot = field.find(b".")
    if dot < 0:
        whole = field
        frac = b""
    else:
        whole = field[:dot]
        frac = field[dot + 1 :]
    if not whole and not frac:
        raise ValueError("empty number")
    if whole and not whole.isdigit() or frac and not frac.isdigit():
        raise ValueError("not a number")
    value = int(whole) if whole else 0
    for i in range(digits):
        value = value * 10 + (frac[i] - 48 if i < len(frac) else 0)
    if len(frac) > digits and frac[digits] >= 53:  # b"5"
        value += 1
    return -value if neg else value


def _angle_e6(field, hemisphere, degree_digits, limit_e6):
    """``ddmm.mmmm`` (or ``dddmm.mmmm``) and ``N``/``S``/``E``/``W`` to signed micro-degrees."""
    dot = field.find(b".")
    if dot < 0:
        dot = len(field)
    if dot != degree_digits + 2:
        raise ValueError("bad angle")
    degrees = int(field[:degree_digits])
    minutes_e6 = fixed(field[degree_digits:], 6)
    if minutes_e6 >= 60000000 or minutes_e6 < 0:
        raise ValueError("bad minutes")
    value = degrees * 1000000 + (minutes_e6 + 30) // 60
    if value > limit_e6:
        raise ValueError("angle out of range")
    if hemisphere in (b"S", b"W"):
        return -value
    if hemisphere not in (b"N", b"E"):
        raise ValueError("bad hemisphere")
    return value


def _time_cs(field):
    """``hhmmss.ss`` to centiseconds since midnight."""
    if len(field) < 6:
        raise ValueError("bad time")
    h = int(field[0:2])
    m = int(field[2:4])
    s = fixed(field[4:], 2)
    if h > 23 or m > 59 or s < 0 or s >= 6100:  # allow a leap second
        raise ValueError("bad time")
    return (h * 3600 + m * 60) * 100 + s


class Fix:
    """One GNSS epoch, all integers (see ``docs/contracts.md``)."""

    def __init__(self):
        self.t = 0
        self.clear()

    def clear(self):
        """Forget everything but the time."""
        self.valid = False
        self.lat_e6 = 0
        self.lon_e6 = 0
        self.speed_cmps = -1
        self.course_cdeg = -1
        self.alt_cm = ALT_UNKNOWN
        self.quality = 0
        self.mode = 0
        self.sats = 0
        self.hdop_x100 = -1
        self.acc_cm = -1

    def copy(self):
        """An independent copy (the parser reuses this object for the next epoch)."""
        other = Fix()
        for name in _FIELDS:
            setattr(other, name, getattr(self, name))
        return other

    def __repr__(self):
        return "Fix(" + ", ".join("%s=%r" % (n, getattr(self, n)) for n in _FIELDS) + ")"


_FIELDS = ("t", "valid", "lat_e6", "lon_e6", "speed_cmps", "course_cdeg", "alt_cm", "quality",
           "mode", "sats", "hdop_x100", "acc_cm")


class NmeaParser:
    """Frames serial bytes, checks sentences and assembles epochs (see the module docstring).

    :param on_fix: called with the shared :class:`Fix` once per completed epoch (valid or not).
    """

    def __init__(self, on_fix):
        self.on_fix = on_fix
        self.fix = Fix()
        self._buf = bytearray(_MAX_LINE)
        self._n = 0
        self._overflow = False
        self._sentences = {}
        self._rejected = {}
        self._tod = -1  # time of day (cs) of the epoch being assembled, -1 when none
        self._days = -1  # date of the last RMC, days since 1970, -1 until known
        self._last_tod = -1
        self._pending = False
        self._pos = False  # the epoch has a position
        self._status_ok = True  # RMC status A (or no RMC seen this epoch)
        self._gst_cm = -1

    # -- framing -------------------------------------------------------------------------------
    def feed(self, chunk):
        """Take any number of bytes from the serial port; complete lines are parsed at once."""
        buf = self._buf
        mv = memoryview(chunk)
        start = 0
        end = len(chunk)
        while start < end:
            nl = chunk.find(b"\n", start)
            stop = end if nl < 0 else nl
            k = stop - start
            if k:
                n = self._n
                if n + k > _MAX_LINE:
                    self._overflow = True
                else:
                    buf[n : n + k] = mv[start:stop]
                    self._n = n + k
            if nl < 0:
                break
            self._end_line()
            start = nl + 1

    def _end_line(self):
        n = self._n
        self._n = 0
        if self._overflow:
            self._overflow = False
            self._reject("too_long")
            return
        if n:
            self.feed_line(memoryview(self._buf)[:n])

    def flush(self):
        """End of stream: drop a partial line (counted) and emit the epoch being assembled."""
        if self._n or self._overflow:
            self._n = 0
            self._overflow = False
            self._reject("truncated")
        self._emit()

    def stats(self):
        """Counts so far: ``{"sentences": {type: n}, "rejected": {reason: n}}``."""
        return {"sentences": dict(self._sentences), "rejected": dict(self._rejected)}

    def _reject(self, reason):
        self._rejected[reason] = self._rejected.get(reason, 0) + 1

    # -- sentences -----------------------------------------------------------------------------
    def feed_line(self, line):
        """Parse one line (bytes, str or memoryview, with or without the line ending)."""
        if isinstance(line, str):
            line = line.encode()
        line = bytes(line)
        end = len(line)
        while end and line[end - 1] in (10, 13, 32):
            end -= 1
        start = line.rfind(b"$", 0, end)
        if start < 0:
            if end:
                self._reject("no_start")
            return
        if start > 0:
            # A sentence cut short by a new '$' (lost bytes on the UART).
            self._reject("truncated")
        star = end - 3
        if star <= start or line[star] != 42:  # b"*"
            self._reject("no_checksum")
            return
        total = 0
        for i in range(start + 1, star):
            total ^= line[i]
        try:
            sent = int(line[star + 1 : end], 16)
        except ValueError:
            self._reject("no_checksum")
            return
        if sent != total:
            self._reject("checksum")
            return
        fields = line[start + 1 : star].split(b",")
        address = fields[0]
        if address[:1] == b"P":
            self._count("proprietary")
            return
        if len(address) != 5:
            self._reject("bad_address")
            return
        kind = address[2:]
        handler = _HANDLERS.get(kind)
        if handler is None:
            self._count("unknown")
            return
        try:
            handler(self, fields)
        except (ValueError, IndexError):
            self._reject("bad_field")
            return
        self._count(str(kind, "ascii"))

    def _count(self, kind):
        self._sentences[kind] = self._sentences.get(kind, 0) + 1

    # -- epochs --------------------------------------------------------------------------------
    def _begin(self, tod):
        """Start (or continue) the epoch stamped ``tod``; emits the previous one if different."""
        if tod != self._tod:
            self._emit()
            self._tod = tod
            self.fix.clear()
            self._pos = False
            self._status_ok = True
            self._gst_cm = -1
        self._pending = True

    def _emit(self):
        if not self._pending:
            return
        self._pending = False
        fix = self.fix
        tod = self._tod
        days = self._days
        if days >= 0:
            if self._last_tod >= 0 and tod < self._last_tod and not self._date_this_epoch:
                # Midnight passed and no RMC told us the new date yet.
                days += 1
                self._days = days
            fix.t = days * _DAY_S + tod // 100
        self._last_tod = tod
        self._date_this_epoch = False
        if self._gst_cm >= 0:
            fix.acc_cm = self._gst_cm
        elif fix.hdop_x100 >= 0:
            fix.acc_cm = fix.hdop_x100 * _UERE_CM // 100
        fix.valid = (self._pos and days >= 0 and self._status_ok and fix.mode != 78)  # b"N"
        self.on_fix(fix)

    _date_this_epoch = False

    def _position(self, fields, i):
        if not fields[i]:
            return
        fix = self.fix
        fix.lat_e6 = _angle_e6(fields[i], fields[i + 1], 2, 90000000)
        fix.lon_e6 = _angle_e6(fields[i + 2], fields[i + 3], 3, 180000000)
        self._pos = True

    def _rmc(self, f):
        # $--RMC,time,status,lat,N,lon,E,knots,course,ddmmyy,magvar,E[,mode[,navstatus]]
        tod = _time_cs(f[1])
        date = f[9]
        if len(date) != 6:
            raise ValueError("bad date")
        d = int(date[0:2])
        m = int(date[2:4])
        y = 2000 + int(date[4:6])
        if not 1 <= m <= 12 or not 1 <= d <= 31:
            raise ValueError("bad date")
        self._begin(tod)
        fix = self.fix
        self._days = days_from_civil(y, m, d)
        self._date_this_epoch = True
        self._status_ok = f[2] == b"A"
        self._position(f, 3)
        if f[7]:
            fix.speed_cmps = (fixed(f[7], 3) * 463 + 4500) // 9000  # knots: 463/9 cm/s
        if f[8]:
            fix.course_cdeg = fixed(f[8], 2) % 36000
        if len(f) > 12 and f[12]:
            fix.mode = f[12][0]

    def _gga(self, f):
        # $--GGA,time,lat,N,lon,E,quality,sats,hdop,alt,M,sep,M,age,station
        tod = _time_cs(f[1])
        quality = int(f[6]) if f[6] else 0
        self._begin(tod)
        fix = self.fix
        fix.quality = quality
        if quality == 0:
            self._status_ok = False
        self._position(f, 2)
        if f[7]:
            fix.sats = int(f[7])
        if f[8]:
            fix.hdop_x100 = fixed(f[8], 2)
        if f[9]:
            fix.alt_cm = fixed(f[9], 2)

    def _gst(self, f):
        # $--GST,time,rms,smaj,smin,orient,sigma_lat,sigma_lon,sigma_alt
        tod = _time_cs(f[1])
        self._begin(tod)
        if f[6] and f[7]:
            slat = fixed(f[6], 2)
            slon = fixed(f[7], 2)
            self._gst_cm = _isqrt(slat * slat + slon * slon)


def _isqrt(n):
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


_HANDLERS = {b"RMC": NmeaParser._rmc, b"GGA": NmeaParser._gga, b"GST": NmeaParser._gst}
