"""NMEA 0183 from the GNSS module: framing, checksums, and one fix per epoch.

A receiver sends a burst of sentences per epoch (RMC, VTG, GGA, GSA, GSV..., GLL, GST, ZDA, all
about the same moment). ``NmeaParser`` frames raw serial bytes into sentences, verifies every
checksum, merges the sentences of one epoch into a single :class:`Fix` and hands it to
``on_fix`` once per epoch. See ``docs/nmea.md`` for the rules; in short:

* Framing: a sentence runs from ``$`` to ``*hh``. CR, LF, another ``$`` or a control byte end it
  early (the next ``$`` always starts a new one), so lost bytes, noise, NULs, missing CR or LF and
  partial reads never cost more than the damaged sentence. Over-long sentences are dropped.
* Every candidate sentence is counted exactly once, either by type (``RMC`` ... ``GST``,
  ``proprietary``, ``unknown``) or as a rejection by reason; bytes outside sentences that are not
  line breaks count as ``noise``. ``stats()`` returns the counts; nothing raises out of ``feed``.
  A field that does not parse raises ``ValueError("bad field")`` inside, counted as
  ``bad_field``: one message for every case, as it is never shown and each distinct one is an
  object in a board's heap.
* Epochs: a sentence with a new time of day, or a second once-per-epoch sentence (RMC, GGA, GLL,
  VTG, ZDA, GST), closes the epoch being assembled. The parser also learns which sentence ends
  the receiver's burst and then emits as soon as that sentence arrives, without waiting a second.

Allocation: the per-sentence path allocates nothing on MicroPython. Sentences are parsed in
place, in the caller's buffer or, for a sentence split across reads, in one preallocated buffer;
field boundaries go to a preallocated list; numbers are parsed digit by digit into small
integers (every field is capped at 9 digits so values stay below 2**30 on a board); counts live
in a preallocated list.

CPython runs this same source, compiled with Cython where the set-up found a C compiler:
``nmea.pxd`` beside this file only declares C types for it (see ``docs/nmea.md``). Without the
compiled module CPython imports this file as it is: same results, about 20 times slower.
"""

from tracker.compat import const

_MAX_SENTENCE = const(128)  # from '$' to '*'; NMEA says 82 with CRLF, some receivers exceed it
_UERE_CM = const(500)  # accuracy from HDOP when the receiver sends no GST: 5 m per HDOP unit
_SIGMA_MAX_CM = const(1000000)  # GST sigmas are clamped to 10 km so squares stay small ints
ALT_UNKNOWN = const(-1000000)
_DAY_S = const(86400)
_LATE_EVENING_CS = const(8280000)  # 23:00:00, see _emit (midnight without a date sentence)
_EARLY_MORNING_CS = const(360000)  # 01:00:00

# Counter slots: sentence kinds first (a sentence's kind is its counter's index), then rejections.
_RMC = const(0)
_GGA = const(1)
_GLL = const(2)
_VTG = const(3)
_GSA = const(4)
_GSV = const(5)
_ZDA = const(6)
_GST = const(7)
_GNS = const(8)
_PROPRIETARY = const(9)
_UNKNOWN = const(10)
_NOISE = const(11)
_TOO_LONG = const(12)
_TRUNCATED = const(13)
_NO_CHECKSUM = const(14)
_CHECKSUM = const(15)
_BAD_ADDRESS = const(16)
_BAD_FIELD = const(17)
_FIRST_REJECTION = const(11)
_N_COUNTERS = const(18)
_N_KINDS = const(9)
COUNTER_NAMES = ("RMC", "GGA", "GLL", "VTG", "GSA", "GSV", "ZDA", "GST", "GNS", "proprietary",
                 "unknown", "noise", "too_long", "truncated", "no_checksum", "checksum",
                 "bad_address", "bad_field")
# Kinds a receiver sends once per epoch: a second one means a new epoch (bit per kind).
_ONCE = const(0b111001111)

# Mode indicator letters (RMC, GLL, VTG from NMEA 2.3) that mean "not a real position".
_MODE_NONE = const(78)  # N: data not valid
_MODE_MANUAL = const(77)  # M: manual input
_MODE_SIMULATOR = const(83)  # S: simulator
# Navigational status (RMC and GNS from NMEA 4.10): S safe, C caution, U unsafe, V "not valid",
# which 4.10 defines as "the equipment does not provide a navigational status". Only U says
# the position must not be used; u-blox M9/M10/F9 send V in every RMC and GNS.
_NAV_SAFE = const(83)  # S
_NAV_CAUTION = const(67)  # C
_NAV_UNSAFE = const(85)  # U
_NAV_NONE = const(86)  # V

_HEX = bytes(
    [(c - 48) if 48 <= c <= 57 else (c - 55) if 65 <= c <= 70 else (c - 87) if 97 <= c <= 102
     else 255 for c in range(256)])


# Sentence type (its three letters as one number, b"RMC" -> 0x524D43) -> kind.
_KINDS = {0x524D43: _RMC, 0x474741: _GGA, 0x474C4C: _GLL, 0x565447: _VTG, 0x475341: _GSA,
          0x475356: _GSV, 0x5A4441: _ZDA, 0x475354: _GST, 0x474E53: _GNS}
# Talker -> constellation slot (for satellites in view): GPS, GLONASS, Galileo, BeiDou (GB and the
# older BD), QZSS, NavIC, and GN (combined solution).
_TALKERS = {0x4750: 0, 0x474C: 1, 0x4741: 2, 0x4742: 3, 0x4244: 3, 0x4751: 4, 0x4749: 5,
            0x474E: 6}
_N_SYSTEMS = const(7)

# The parser's counters and state live in one preallocated list, ``NmeaParser._st`` (a C array
# once compiled), in these slots: named by const()s they cost no interned name on a board, where
# as attributes each of ~20 did (docs/memory.md). Flags are 0 or 1.
# Slots 0 to _N_COUNTERS - 1: the counters above (kinds, then rejections).
_SEEN = const(18)  # _N_KINDS slots, per kind: how many sentences of it this epoch
_VIEW = const(27)  # _N_SYSTEMS slots, per constellation: satellites in view this epoch
_KEPT = const(34)  # bytes of a sentence split across reads, kept in _buf
_QUIET = const(35)  # skipping the rest of a rejected sentence up to the next '$'
_NOISY = const(36)  # saw noise bytes since the last sentence
# the epoch being assembled
_OPEN = const(37)
_TOD = const(38)  # its time of day, cs (-1: none yet)
_EP_DAYS = const(39)  # its date from RMC or ZDA, days since 1970 (-1: none)
_POS = const(40)  # a valid position joined it
_BAD = const(41)  # a sentence said its position must not be used
_GST_CM = const(42)  # accuracy from GST (-1: none)
_GGA_SATS = const(43)  # satellites used, from GGA or GNS (-1: none)
_GSA_USED = const(44)  # satellites used, summed over its GSA sentences (-1: none)
_KEY = const(45)  # kind << 8 | occurrence of the last sentence added
_LAT = const(46)  # position parsed by _position, before it joins the epoch
_LON = const(47)
# across epochs
_END_KEY = const(48)  # learned: the sentence that ends the receiver's burst
_CLOSED_TOD = const(49)  # time of the epoch emitted last (late sentences are dropped)
_LAST_DAYS = const(50)  # date of the last dated epoch, days since 1970
_LAST_TOD = const(51)  # its time of day
_N_STATE = const(52)


# -- numbers ---------------------------------------------------------------------------------
def _udec(b, s, e, digits):
    """Unsigned decimal ``b[s:e]`` (``12``, ``12.5``, ``.5``) times 10**digits, rounded half up.

    Raises ``ValueError`` unless the field is digits with at most one dot, or if the integer
    part and ``digits`` together exceed 9 digits.
    """
    v = 0
    i = s
    stop = e if e - s <= 10 else s + 10  # a 10th digit is already too many: stop reading there
    while i < stop:
        c = b[i] - 48
        if c < 0 or c > 9:
            break
        v = v * 10 + c
        i += 1
    if i - s + digits > 9:
        raise ValueError("bad field")
    p = digits
    if i < e:
        if b[i] != 46:  # '.'
            raise ValueError("bad field")
        i += 1
        if i == e and i == s + 1:
            raise ValueError("bad field")
        first = True
        while i < e:
            c = b[i] - 48
            if c < 0 or c > 9:
                raise ValueError("bad field")
            if p:
                v = v * 10 + c
                p -= 1
            elif first:
                first = False
                if c >= 5:
                    v += 1
            i += 1
    elif i == s:
        raise ValueError("bad field")
    while p:
        v *= 10
        p -= 1
    return v


def _uint(b, s, e):
    """Unsigned integer ``b[s:e]``, 1 to 9 digits; ``ValueError`` otherwise."""
    if s >= e or e - s > 9:
        raise ValueError("bad field")
    v = 0
    while s < e:
        c = b[s] - 48
        if c < 0 or c > 9:
            raise ValueError("bad field")
        v = v * 10 + c
        s += 1
    return v


def _field_udec(b, fs, i, digits):
    """Field ``i`` of a sentence as :func:`_udec`, or -1 when the field is empty."""
    s = fs[i]
    e = fs[i + 1] - 1
    return _udec(b, s, e, digits) if e > s else -1


def _sdec(b, s, e, digits):
    """Signed decimal (optional leading ``-``) times 10**digits."""
    if s < e and b[s] == 45:  # '-'
        return -_udec(b, s + 1, e, digits)
    return _udec(b, s, e, digits)


def _time_cs(b, s, e):
    """``hhmmss[.sss]`` to centiseconds since midnight; -1 for an empty field."""
    if s == e:
        return -1
    if e - s < 6:
        raise ValueError("bad field")
    h1 = b[s] - 48
    h2 = b[s + 1] - 48
    m1 = b[s + 2] - 48
    m2 = b[s + 3] - 48
    if (h1 < 0 or h1 > 2 or h2 < 0 or h2 > 9 or m1 < 0 or m1 > 5 or m2 < 0 or m2 > 9
            or h1 == 2 and h2 > 3):
        raise ValueError("bad field")
    sec = _udec(b, s + 4, e, 2)
    if sec >= 6100:  # 60.xx is a leap second
        raise ValueError("bad field")
    return ((h1 * 10 + h2) * 3600 + (m1 * 10 + m2) * 60) * 100 + sec


def _angle_e6(b, fs, i, limit):
    """Field ``i`` (``d...dmm.mmmm``) and its hemisphere letter (field ``i + 1``) to signed
    micro-degrees; ``limit`` is 90 for a latitude (N or S), 180 for a longitude (E or W)."""
    s = fs[i]
    e = fs[i + 1] - 1
    hemi = b[fs[i + 1]] if fs[i + 2] - fs[i + 1] == 2 else 0
    dot = s  # a loop rather than b.find: the compiled module reads b as a plain byte view
    while dot < e and b[dot] != 46:  # '.'
        dot += 1
    if dot - s < 3:  # at least one degree digit and two of minutes
        raise ValueError("bad field")
    degrees = _uint(b, s, dot - 2)
    minutes_e6 = _udec(b, dot - 2, e, 6)
    if minutes_e6 >= 60000000 or degrees > limit:
        raise ValueError("bad field")
    value = degrees * 1000000 + (minutes_e6 + 30) // 60
    if value > limit * 1000000:
        raise ValueError("bad field")
    if limit == 90:
        if hemi == 83:  # 'S'
            return -value
        if hemi != 78:  # 'N'
            raise ValueError("bad field")
        return value
    if hemi == 87:  # 'W'
        return -value
    if hemi != 69:  # 'E'
        raise ValueError("bad field")
    return value


def _knots_to_cmps(knots_e3):
    # 1 knot = 463/9 cm/s; split so the products stay small ints for any 9-digit input.
    return knots_e3 // 9000 * 463 + (knots_e3 % 9000 * 463 + 4500) // 9000


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


def _days(y, m, d):
    """Days since 1970 of a checked date (``ValueError`` for 31 April, 29 February 2027...)."""
    if m < 1 or m > 12 or d < 1:
        raise ValueError("bad field")
    if m == 2:
        last = 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    else:
        last = 30 if m in (4, 6, 9, 11) else 31
    if d > last:
        raise ValueError("bad field")
    return days_from_civil(y, m, d)


def fixed(field, digits):
    """Parse a decimal field such as ``b"-12.345"`` as an integer scaled by 10**digits.

    Extra fraction digits are rounded half up; ``ValueError`` for anything but an optional sign,
    digits and one dot (at most 9 integer digits with the scale).
    """
    return _sdec(field, 0, len(field), digits)


class Fix:
    """One GNSS epoch, all integers (see ``docs/contracts.md``)."""

    def __init__(self):
        self.t = 0
        self.ms = 0
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
        self.sats_view = 0
        self.snr_max = -1
        self.fix_type = 0
        self.pdop_x100 = -1
        self.vdop_x100 = -1

    def copy(self):
        """An independent copy (the parser reuses this object for the next epoch)."""
        other = Fix()
        for name in FIELDS:
            setattr(other, name, getattr(self, name))
        return other

    def as_tuple(self):
        """All fields in :data:`FIELDS` order (for comparisons and tests)."""
        return tuple(getattr(self, name) for name in FIELDS)

    def __repr__(self):
        return "Fix(%s)" % ", ".join("%s=%r" % (n, getattr(self, n)) for n in FIELDS)


FIELDS = ("t", "ms", "valid", "lat_e6", "lon_e6", "speed_cmps", "course_cdeg", "alt_cm",
          "quality", "mode", "sats", "hdop_x100", "acc_cm", "sats_view", "snr_max", "fix_type",
          "pdop_x100", "vdop_x100")


class NmeaParser:
    """Frames serial bytes, checks sentences and assembles epochs (see the module docstring).

    :param on_fix: called with the shared :class:`Fix` once per completed epoch (valid or not).
    """

    def __init__(self, on_fix):
        self.on_fix = on_fix
        self.fix = Fix()
        self._buf = bytearray(_MAX_SENTENCE + 2)  # a sentence split across reads
        # Field i is b[fs[i] : fs[i + 1] - 1]. Built in a local first: compiled (nmea.pxd),
        # the attribute is a C array, which takes its values from a finished list (as _st).
        starts = [0] * (_MAX_SENTENCE + 2)
        self._fs = starts
        # Counters and state: the slots named at the top of the module.
        st = [0] * _N_STATE
        for i in (_TOD, _EP_DAYS, _GST_CM, _GGA_SATS, _GSA_USED, _END_KEY, _CLOSED_TOD,
                  _LAST_DAYS, _LAST_TOD):
            st[i] = -1
        self._st = st

    # -- framing -------------------------------------------------------------------------------
    def feed(self, chunk, n=-1):
        """Take serial bytes (``bytes`` or ``bytearray``; the first ``n`` if given, e.g. after
        ``readinto``); complete sentences are parsed at once, a partial one is kept."""
        if n < 0 or n > len(chunk):
            n = len(chunk)
        st = self._st
        i = 0
        if st[_KEPT]:
            i = self._resume(chunk, n)
        while i < n:
            if chunk[i] == 36:  # '$'
                if st[_NOISY]:
                    st[_NOISY] = 0
                    st[_NOISE] += 1
                st[_QUIET] = 0
                j = self._sentence(chunk, i, n)
                if j < 0:  # the sentence goes on in the next read: keep what came of it
                    buf = self._buf
                    k = 0
                    while i < n:
                        buf[k] = chunk[i]
                        k += 1
                        i += 1
                    st[_KEPT] = k
                    return
                i = j
            else:
                j = chunk.find(b"$", i, n)
                if j < 0:
                    j = n
                if not st[_QUIET] and not st[_NOISY]:
                    self._outside(chunk, i, j)
                i = j

    def feed_line(self, line):
        """Parse one line (bytes, str or memoryview, with or without the line ending)."""
        if isinstance(line, str):
            line = line.encode()
        elif isinstance(line, memoryview):
            line = bytes(line)
        self.feed(line)
        self._end_line()

    def flush(self):
        """End of stream: reject a partial sentence (counted) and emit the epoch being
        assembled."""
        self._end_line()
        self._emit()

    def stats(self):
        """Counts so far: ``{"sentences": {type: n}, "rejected": {reason: n}}`` (non-zero only)."""
        sentences = {}
        rejected = {}
        st = self._st
        for i in range(_N_COUNTERS):
            if st[i]:
                (rejected if i >= _FIRST_REJECTION else sentences)[COUNTER_NAMES[i]] = st[i]
        return {"sentences": sentences, "rejected": rejected}

    def _end_line(self):
        st = self._st
        if st[_KEPT]:
            st[_KEPT] = 0
            st[_NO_CHECKSUM] += 1
        if st[_NOISY]:
            st[_NOISY] = 0
            st[_NOISE] += 1
        st[_QUIET] = 0

    def _outside(self, b, s, e):
        # Bytes between sentences: line breaks, spaces and tabs are fine, anything else is noise.
        while s < e:
            c = b[s]
            if c != 13 and c != 10 and c != 32 and c != 9:
                self._st[_NOISY] = 1
                return
            s += 1

    def _resume(self, b, n):
        """Continue the sentence kept from the last read; returns where to go on in ``b``."""
        st = self._st
        buf = self._buf
        k = st[_KEPT]
        size = len(buf)
        star = -1  # a kept '*' can only be one of the last two bytes
        if buf[k - 1] == 42:
            star = k - 1
        elif k > 1 and buf[k - 2] == 42:
            star = k - 2
        i = 0
        c = 0
        while i < n and k < size and (star < 0 or k < star + 3):
            c = b[i]
            if c == 36 or c < 32:
                break
            buf[k] = c
            if c == 42 and star < 0:
                star = k
            k += 1
            i += 1
        st[_KEPT] = k
        if i >= n and k < size and (star < 0 or k < star + 3):
            return n  # still incomplete
        st[_KEPT] = 0
        j = self._sentence(buf, 0, k)
        if j < 0:  # ended by a stop byte before '*hh': as _sentence counts it in one buffer
            st[_NO_CHECKSUM if star >= 0 or c == 13 or c == 10 else _TRUNCATED] += 1
            if star >= 0:
                st[_QUIET] = 1  # a cut checksum: the rest of the line is its debris, as in
                # _sentence, not noise
            return i
        if j < k and not st[_QUIET]:
            self._outside(buf, j, k)
        return i

    # -- sentences -----------------------------------------------------------------------------
    def _sentence(self, b, s, n):
        """Check and dispatch the sentence starting at ``b[s] == '$'``.

        Returns the index after it, or -1 if ``b`` ends before the sentence does.
        """
        st = self._st
        fs = self._fs
        lim = s + _MAX_SENTENCE
        if lim > n:
            lim = n
        # XOR and field starts up to '*' (or a stop byte, or lim): nf fields.
        fs[0] = s + 1
        nf = 1
        x = 0
        i = s + 1
        while i < lim:
            c = b[i]
            if c <= 44:
                if c == 44:  # ','
                    fs[nf] = i + 1
                    nf += 1
                elif c == 42 or c == 36 or c < 32:  # '*', '$', control bytes
                    break
            x ^= c
            i += 1
        fs[nf] = i + 1
        if i >= lim:
            if i - s >= _MAX_SENTENCE:
                st[_TOO_LONG] += 1
                st[_QUIET] = 1
                return i
            return -1
        c = b[i]
        if c != 42:
            st[_NO_CHECKSUM if c == 13 or c == 10 else _TRUNCATED] += 1
            return i
        if i + 2 >= n:
            return -1
        hi = _HEX[b[i + 1]]
        lo = _HEX[b[i + 2]]
        if hi > 15 or lo > 15:
            st[_NO_CHECKSUM] += 1
            st[_QUIET] = 1
            return i + 1
        if hi << 4 | lo != x:
            st[_CHECKSUM] += 1
            return i + 3
        a = s + 1
        if b[a] == 80:  # 'P': proprietary
            st[_PROPRIETARY] += 1
            return i + 3
        if fs[1] - a != 6:
            st[_BAD_ADDRESS] += 1
            return i + 3
        kind = _KINDS.get((b[a + 2] << 16) | (b[a + 3] << 8) | b[a + 4], -1)
        system = _TALKERS.get((b[a] << 8) | b[a + 1], -1)
        if kind < 0 or system < 0:
            st[_UNKNOWN] += 1
            return i + 3
        try:
            self._fields(b, fs, nf, kind, system)
        except (ValueError, IndexError):
            st[_BAD_FIELD] += 1
            return i + 3
        st[kind] += 1
        if st[_KEY] == st[_END_KEY] and st[_OPEN]:
            self._emit()
        # Step over the usual CR LF here rather than as bytes between sentences.
        i += 3
        if i < n and b[i] == 13:
            i += 1
        if i < n and b[i] == 10:
            i += 1
        return i

    # -- epochs --------------------------------------------------------------------------------
    def _begin(self, kind, tod, pos=False, usable=False):
        """Add a sentence of ``kind`` stamped ``tod`` (-1 if untimed) to the epoch it belongs to,
        with the position :meth:`_position` read from it (``pos``), which the sentence says is
        a real one (``usable``).

        Returns False for a late sentence of an epoch already emitted (its data is dropped).
        """
        st = self._st
        if st[_OPEN]:
            if (tod >= 0 and st[_TOD] >= 0 and tod != st[_TOD]) or (
                    st[_SEEN + kind] and _ONCE >> kind & 1):
                st[_END_KEY] = st[_KEY]  # the burst ends with this sentence: learn it
                self._emit()
        elif tod >= 0 and tod == st[_CLOSED_TOD]:
            st[_END_KEY] = -1  # emitted too early: relearn at the next boundary
            return False
        if not st[_OPEN]:  # a new epoch
            st[_OPEN] = 1
            self.fix.clear()
            st[_TOD] = -1
            st[_EP_DAYS] = -1
            st[_POS] = 0
            st[_BAD] = 0
            st[_GST_CM] = -1
            st[_GGA_SATS] = -1
            st[_GSA_USED] = -1
            for i in range(_SEEN, _VIEW + _N_SYSTEMS):
                st[i] = 0
        if tod >= 0 and st[_TOD] < 0:
            st[_TOD] = tod
        k = st[_SEEN + kind]
        if k < 255:
            k += 1
            st[_SEEN + kind] = k
        st[_KEY] = kind << 8 | k
        if pos:
            fix = self.fix
            fix.lat_e6 = st[_LAT]
            fix.lon_e6 = st[_LON]
            if usable:
                st[_POS] = 1
        return True

    def _emit(self):
        st = self._st
        if not st[_OPEN]:
            return
        st[_OPEN] = 0
        fix = self.fix
        tod = st[_TOD]
        st[_CLOSED_TOD] = tod
        days = st[_EP_DAYS]
        if tod >= 0 and days < 0 and st[_LAST_DAYS] >= 0:
            days = st[_LAST_DAYS]
            if st[_LAST_TOD] >= _LATE_EVENING_CS and tod < _EARLY_MORNING_CS:
                days += 1  # midnight passed and no RMC or ZDA told us the new date yet
        fix.ms = tod % 100 * 10 if tod >= 0 else 0
        if tod >= 0 and days >= 0:
            st[_LAST_DAYS] = days
            st[_LAST_TOD] = tod
            fix.t = days * _DAY_S + tod // 100
        else:
            fix.t = 0
        if st[_GST_CM] >= 0:
            fix.acc_cm = st[_GST_CM]
        elif fix.hdop_x100 >= 0:
            fix.acc_cm = fix.hdop_x100 * _UERE_CM // 100
        sats = st[_GGA_SATS]
        if st[_GSA_USED] > sats:
            sats = st[_GSA_USED]
        if sats >= 0:
            fix.sats = sats
        total = 0
        for i in range(_VIEW, _VIEW + _N_SYSTEMS):
            total += st[i]
        fix.sats_view = total
        mode = fix.mode
        fix.valid = (fix.t > 0 and st[_POS] != 0 and st[_BAD] == 0 and mode != _MODE_NONE
                     and mode != _MODE_MANUAL and mode != _MODE_SIMULATOR)
        self.on_fix(fix)

    # -- the fields of each sentence: all parsed first, then the epoch changed -----------------
    def _position(self, b, fs, i):
        """Fields i..i+3 (lat, N/S, lon, E/W) into the _LAT and _LON slots; False if all are
        empty."""
        if fs[i + 1] - fs[i] == 1 and fs[i + 4] - fs[i + 1] == 3:
            return False
        st = self._st
        st[_LAT] = _angle_e6(b, fs, i, 90)
        st[_LON] = _angle_e6(b, fs, i + 2, 180)
        return True

    def _fields(self, b, fs, nf, kind, system):
        """One sentence of ``kind`` from talker ``system``, ``nf`` fields: one branch per kind,
        most frequent first (one method, not nine: each costs heap and a name on a board).

        A branch parses every field first (``ValueError`` or ``IndexError`` reject the sentence,
        and the epoch is untouched), then adds the sentence to its epoch (:meth:`_begin`).
        """
        st = self._st
        fix = self.fix
        nav = 0
        if (kind == _RMC or kind == _GNS) and nf > 13 and fs[14] - fs[13] >= 2:
            # Navigational status letter (NMEA 4.10+; field 13 of both), 0 when absent or empty.
            if fs[14] - fs[13] != 2:
                raise ValueError("bad field")
            nav = b[fs[13]]
            if (nav != _NAV_NONE and nav != _NAV_SAFE and nav != _NAV_CAUTION
                    and nav != _NAV_UNSAFE):
                raise ValueError("bad field")
        if kind == _GSV:
            # $--GSV,total,num,in_view{,prn,elev,azim,snr}*1..4[,signal_id]
            if nf < 4:
                raise ValueError("bad field")
            total = _uint(b, fs[1], fs[2] - 1)
            num = _uint(b, fs[2], fs[3] - 1)
            s = fs[3]
            e = fs[4] - 1
            in_view = _uint(b, s, e) if e > s else 0
            if num < 1 or num > total:
                raise ValueError("bad field")
            best = -1
            i = 7
            while i < nf:
                s = fs[i]
                e = fs[i + 1] - 1
                if e > s:
                    snr = _uint(b, s, e)
                    if snr > best:
                        best = snr
                i += 4
            if not self._begin(_GSV, -1):
                return
            if in_view > 255:
                in_view = 255
            # several signals of one system: each lists the same satellites
            if in_view > st[_VIEW + system]:
                st[_VIEW + system] = in_view
            if best > fix.snr_max:
                fix.snr_max = best
        elif kind == _GSA:
            # $--GSA,M/A,fix_type,prn*12,pdop,hdop,vdop[,system_id]  (system id since NMEA 4.1)
            if nf < 18:
                raise ValueError("bad field")
            s = fs[2]
            e = fs[3] - 1
            fix_type = _uint(b, s, e) if e > s else 0
            if fix_type > 3:  # 1 none, 2 2D, 3 3D
                raise ValueError("bad field")
            used = 0
            for i in range(3, 15):
                if fs[i + 1] - fs[i] > 1:
                    used += 1
            pdop = _field_udec(b, fs, 15, 2)
            hdop = _field_udec(b, fs, 16, 2)
            vdop = _field_udec(b, fs, 17, 2)
            if not self._begin(_GSA, -1):
                return
            if fix_type:
                fix.fix_type = fix_type
                if fix_type == 1:
                    st[_BAD] = 1
            st[_GSA_USED] = used if st[_GSA_USED] < 0 else st[_GSA_USED] + used
            if pdop >= 0:
                fix.pdop_x100 = pdop
            if hdop >= 0 and fix.hdop_x100 < 0:
                fix.hdop_x100 = hdop
            if vdop >= 0:
                fix.vdop_x100 = vdop
        elif kind == _RMC:
            # $--RMC,time,status,lat,N,lon,E,knots,course,ddmmyy,magvar,E[,mode[,navstatus]]
            if nf < 10:
                raise ValueError("bad field")
            tod = _time_cs(b, fs[1], fs[2] - 1)
            status = b[fs[2]] if fs[3] - fs[2] == 2 else 0
            s = fs[9]
            days = -1
            if fs[10] - s == 7:
                yy = _uint(b, s + 4, s + 6)  # ddmmyy
                days = _days(yy + (2000 if yy < 80 else 1900), _uint(b, s + 2, s + 4),
                             _uint(b, s, s + 2))
            elif fs[10] - s != 1:
                raise ValueError("bad field")
            s = fs[7]
            e = fs[8] - 1
            speed = _knots_to_cmps(_udec(b, s, e, 3)) if e > s else -1
            s = fs[8]
            e = fs[9] - 1
            course = _udec(b, s, e, 2) % 36000 if e > s else -1
            mode = b[fs[12]] if nf > 12 and fs[13] - fs[12] > 1 else 0
            pos = self._position(b, fs, 3)
            if not self._begin(_RMC, tod, pos, status == 65):
                return
            if days >= 0:
                st[_EP_DAYS] = days
            if status != 65:  # 'A'
                st[_BAD] = 1
            if nav == _NAV_UNSAFE:  # 'V' (4.10: not provided) says nothing about the position
                st[_BAD] = 1
            if speed >= 0:
                fix.speed_cmps = speed
            if course >= 0:
                fix.course_cdeg = course
            if mode:
                fix.mode = mode
        elif kind == _GGA or kind == _GNS:
            # $--GGA,time,lat,N,lon,E,quality,sats,hdop,alt,M,sep,M,age,station
            # $--GNS,time,lat,N,lon,E,mode,sats,hdop,alt,sep,age,station[,navstatus] (4.10+)
            # The same fields but the sixth. GNS's mode: one letter per constellation (GPS,
            # GLONASS, Galileo, BeiDou, QZSS, NavIC); the position is real when any of them is,
            # and that letter becomes the epoch's mode.
            if nf < 10:
                raise ValueError("bad field")
            tod = _time_cs(b, fs[1], fs[2] - 1)
            s = fs[6]
            e = fs[7] - 1
            if kind == _GGA:
                quality = _uint(b, s, e) if e > s else 0
                if quality > 8:  # 0-8 since NMEA 2.3; anything else is not a GGA to trust
                    raise ValueError("bad field")
                usable = quality != 0
                valid = usable and quality != 7 and quality != 8  # none, manual, simulator
            else:
                if e <= s:
                    raise ValueError("bad field")
                mode = 0
                while s < e:
                    c = b[s]
                    if c < 65 or c > 90:
                        raise ValueError("bad field")
                    if c != _MODE_NONE and c != _MODE_MANUAL and c != _MODE_SIMULATOR:
                        if not mode or mode == _MODE_NONE or mode == _MODE_MANUAL or (
                                mode == _MODE_SIMULATOR):
                            mode = c
                    elif not mode:
                        mode = c
                    s += 1
                usable = (mode != _MODE_NONE and mode != _MODE_MANUAL
                          and mode != _MODE_SIMULATOR)
                valid = usable and nav != _NAV_UNSAFE
            s = fs[7]
            e = fs[8] - 1
            sats = _uint(b, s, e) if e > s else -1
            if sats > 255:
                raise ValueError("bad field")
            hdop = _field_udec(b, fs, 8, 2)
            s = fs[9]
            e = fs[10] - 1
            alt = _sdec(b, s, e, 2) if e > s else ALT_UNKNOWN
            pos = self._position(b, fs, 2)
            if not self._begin(kind, tod, pos, usable):
                return
            if not valid:
                st[_BAD] = 1
            if kind == _GGA:
                fix.quality = quality
                if sats >= 0:
                    st[_GGA_SATS] = sats
                if hdop >= 0:
                    fix.hdop_x100 = hdop
                if alt != ALT_UNKNOWN:
                    fix.alt_cm = alt
            else:  # GGA's figures win where an epoch has both
                fix.mode = mode
                if sats > st[_GGA_SATS]:
                    st[_GGA_SATS] = sats
                if hdop >= 0 and fix.hdop_x100 < 0:
                    fix.hdop_x100 = hdop
                if alt != ALT_UNKNOWN and fix.alt_cm == ALT_UNKNOWN:
                    fix.alt_cm = alt
        elif kind == _VTG:
            # $--VTG,course,T,course_mag,M,knots,N,kmh,K[,mode]; before NMEA 2.0 without letters
            if nf > 8 and fs[3] - fs[2] <= 2:
                ic = 1
                ik = 5
                ih = 7
            elif nf == 5:
                ic = 1
                ik = 3
                ih = 4
            else:
                raise ValueError("bad field")
            s = fs[ic]
            e = fs[ic + 1] - 1
            course = _udec(b, s, e, 2) % 36000 if e > s else -1
            s = fs[ik]
            e = fs[ik + 1] - 1
            if e > s:
                speed = _knots_to_cmps(_udec(b, s, e, 3))
            else:
                s = fs[ih]
                e = fs[ih + 1] - 1
                speed = (_udec(b, s, e, 3) + 18) // 36 if e > s else -1  # km/h * 1000 -> cm/s
            mode = b[fs[9]] if nf > 9 and fs[10] - fs[9] > 1 else 0
            if not self._begin(_VTG, -1):
                return
            if course >= 0:
                fix.course_cdeg = course
            if speed >= 0:
                fix.speed_cmps = speed
            if mode:
                fix.mode = mode
                if mode == _MODE_NONE:
                    st[_BAD] = 1
        elif kind == _GLL:
            # $--GLL,lat,N,lon,E[,time,status[,mode]]  (time and status since NMEA 2.0)
            if nf < 5:
                raise ValueError("bad field")
            tod = _time_cs(b, fs[5], fs[6] - 1) if nf > 5 else -1
            status = b[fs[6]] if nf > 6 and fs[7] - fs[6] == 2 else 65
            mode = b[fs[7]] if nf > 7 and fs[8] - fs[7] > 1 else 0
            pos = self._position(b, fs, 1)
            if not self._begin(_GLL, tod, pos, status == 65):
                return
            if status != 65:
                st[_BAD] = 1
            if mode:
                fix.mode = mode
        elif kind == _GST:
            # $--GST,time,rms,sd_major,sd_minor,orient,sd_lat,sd_lon,sd_alt
            if nf < 8:
                raise ValueError("bad field")
            tod = _time_cs(b, fs[1], fs[2] - 1)
            slat = _field_udec(b, fs, 6, 2)
            slon = _field_udec(b, fs, 7, 2)
            if not self._begin(_GST, tod):
                return
            if slat >= 0 and slon >= 0:
                if slat > _SIGMA_MAX_CM:
                    slat = _SIGMA_MAX_CM
                if slon > _SIGMA_MAX_CM:
                    slon = _SIGMA_MAX_CM
                scale = 1
                if slat >= 20000 or slon >= 20000:  # in metres, so the squares stay small ints
                    slat //= 100
                    slon //= 100
                    scale = 100
                # The integer square root of slat² + slon² (Newton's method).
                sq = slat * slat + slon * slon
                x = sq
                y = (x + 1) >> 1
                while y < x:
                    x = y
                    y = (x + sq // x) >> 1
                st[_GST_CM] = x * scale
        else:
            # $--ZDA,time,day,month,year,zone_h,zone_min
            if nf < 5:
                raise ValueError("bad field")
            tod = _time_cs(b, fs[1], fs[2] - 1)
            days = -1
            if fs[3] - fs[2] == 3 and fs[4] - fs[3] == 3 and fs[5] - fs[4] == 5:
                days = _days(_uint(b, fs[4], fs[4] + 4), _uint(b, fs[3], fs[3] + 2),
                             _uint(b, fs[2], fs[2] + 2))
            elif fs[3] - fs[2] != 1 or fs[4] - fs[3] != 1 or fs[5] - fs[4] != 1:
                raise ValueError("bad field")
            if not self._begin(_ZDA, tod):
                return
            if days >= 0:
                st[_EP_DAYS] = days
