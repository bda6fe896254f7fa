"""Fix times for radio reports, which never carry a full timestamp.

A short report says only how old its fix is, as a class (< 5 s, < 5 min, < 30 min, not known).
A long report may instead say the day of the month and the UTC time of the fix, without month or
year. Both are resolved against the gateway's receive time:

- time elapsed: the fix happened in ``[received - max_age, received]``; the stored time is the
  middle of that window and the window's half-width is kept as the uncertainty, so nobody reads
  a class-2 report as if it were to the second;
- time of position: the latest calendar instant with that day and time that is not later than
  the receive time plus a small tolerance for a radio clock running ahead. That walks back over
  day, month and year ends (a report stamped "day 31, 23:59:58" received on 1 March at 00:00:03
  is 31 January only if February had no such day — it did not, so the search continues to
  January) and forward over them when the radio's clock is a few seconds ahead.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from gateway.intake.airwave.lip import TIME_ELAPSED_MAX_S, LipReport

FUTURE_TOLERANCE_S = 300


@dataclass(frozen=True)
class FixTime:
    """When a report's fix was taken.

    :ivar tst: UTC epoch seconds (best estimate)
    :ivar basis: ``time_of_position``, ``time_elapsed`` or ``received`` (no time in the report)
    :ivar age_max_s: the age class's upper bound (time elapsed only; None when not known)
    :ivar uncertainty_s: half-width of the window the fix time lies in (None: unbounded)
    """

    tst: int
    basis: str
    age_max_s: int | None
    uncertainty_s: int | None


def resolve_time_of_position(day: int, hour: int, minute: int, second: int, received_at: float,
                             future_tolerance_s: int = FUTURE_TOLERANCE_S) -> int | None:
    """The epoch second of "day D, HH:MM:SS UTC" nearest before ``received_at`` (see module).

    Returns None when the fields are not a time at all (day 0, hour 24, minute 60 ...).
    """
    if not (1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    limit = received_at + future_tolerance_s
    received = dt.datetime.fromtimestamp(received_at, dt.UTC)
    best: int | None = None
    # One month ahead (radio clock a little ahead across a month end) back to three months
    # before (a day 31 after two short months).
    for offset in range(1, -4, -1):
        year, month = _add_months(received.year, received.month, offset)
        if day > calendar.monthrange(year, month)[1]:
            continue
        stamp = calendar.timegm((year, month, day, hour, minute, second))
        if stamp <= limit and (best is None or stamp > best):
            best = stamp
    return best


def _add_months(year: int, month: int, offset: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + offset
    return index // 12, index % 12 + 1


def fix_time(report: LipReport, received_at: float,
             future_tolerance_s: int = FUTURE_TOLERANCE_S) -> FixTime:
    """The fix time of ``report`` received at ``received_at`` (UTC epoch seconds)."""
    if report.time_of_position is not None:
        stamp = resolve_time_of_position(*report.time_of_position, received_at,
                                         future_tolerance_s)
        if stamp is not None:
            return FixTime(stamp, "time_of_position", None, 0)
        report.warnings.append(f"time of position {report.time_of_position} is not a time")
    if report.time_elapsed is not None:
        age_max = TIME_ELAPSED_MAX_S[report.time_elapsed]
        if age_max is not None:
            half = age_max // 2
            return FixTime(int(received_at) - half, "time_elapsed", age_max, half)
        return FixTime(int(received_at), "time_elapsed", None, None)
    return FixTime(int(received_at), "received", None, None)
