"""The board's RTC set from GNSS time, so timestamps are right from the first second after a
reboot (before the receiver has a fix again).

``machine.RTC().datetime()`` takes and gives ``(year, month, day, weekday, hours, minutes,
seconds, subseconds)`` with weekday 0 = Monday; the RTC keeps running through a soft reset and
light or deep sleep (on the ESP32-S3 also from its own 32 kHz clock), not through a power cut.
"""

from tracker.nmea import days_from_civil

_DAY_S = 86400
_YEAR_2020_S = 1577836800  # an RTC before this was never set from GNSS
_MAX_DRIFT_S = 2


def civil_from_days(days):
    """(year, month, day) of ``days`` since 1970-01-01 (inverse of ``days_from_civil``)."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def rtc_tuple(t):
    """``machine.RTC.datetime`` tuple of Unix time ``t`` (UTC)."""
    days = t // _DAY_S
    s = t - days * _DAY_S
    y, m, d = civil_from_days(days)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (3, Monday being 0)
    return (y, m, d, weekday, s // 3600, s // 60 % 60, s % 60, 0)


def rtc_seconds(dt):
    """Unix time of a ``machine.RTC.datetime`` tuple."""
    return (days_from_civil(dt[0], dt[1], dt[2]) * _DAY_S + dt[4] * 3600 + dt[5] * 60
            + dt[6])


class GnssClock:
    """Keeps ``rtc`` (``machine.RTC``) on GNSS time; :meth:`now_s` is the tracker's wall clock
    before its first fix (0 if the RTC was never set)."""

    def __init__(self, rtc):
        self.rtc = rtc
        self.sets = 0

    def now_s(self):
        t = rtc_seconds(self.rtc.datetime())
        return t if t >= _YEAR_2020_S else 0

    def sync(self, gnss_t):
        """Set the RTC to ``gnss_t`` (a valid fix's time) if it is more than 2 s off."""
        if gnss_t < _YEAR_2020_S:
            return False
        if abs(self.now_s() - gnss_t) <= _MAX_DRIFT_S:
            return False
        self.rtc.datetime(rtc_tuple(gnss_t))
        self.sets += 1
        return True
