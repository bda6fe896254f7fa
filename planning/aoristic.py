"""When crime happens: aoristic hour-of-week profiles from committed from/to windows.

A crime known only to have happened between 18:00 and 08:00 (a burglary found in the morning)
is spread over those 14 hours in proportion to how much of each hour its window covers
(Ratcliffe 2002); putting it at the midpoint would invent a 01:00 peak (Ashby & Bowers 2013).
Each crime weighs 1 in total. A window of a week or more says nothing about the time of day or
week, so it is spread evenly over all 168 hours. An exact time (from = to) falls in its hour.

Bins are local hours of the week (Monday 00:00 is bin 0) in the zone given. Hour boundaries are
taken in UTC and labelled with the local hour they start: exact for zones whose offsets are
whole hours, such as Europe/London in summer and winter.

Sources without times (police.uk: a month only) have no profile; :func:`profile` says so in
``basis``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

WEEK_H = 168
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def crime_weights(from_ts: int, to_ts: int, tz: dt.tzinfo) -> dict[int, float]:
    """Hour-of-week bin to the share of this crime's window in it (shares sum to 1)."""
    if to_ts < from_ts:
        raise ValueError("window ends before it starts")
    if to_ts - from_ts >= 7 * 86400:
        return {b: 1.0 / WEEK_H for b in range(WEEK_H)}

    def bin_of(ts: int) -> int:
        local = dt.datetime.fromtimestamp(ts, tz)
        return local.weekday() * 24 + local.hour

    if to_ts == from_ts:
        return {bin_of(from_ts): 1.0}
    total = to_ts - from_ts
    out: dict[int, float] = {}
    t = from_ts
    while t < to_ts:
        nxt = min((t // 3600 + 1) * 3600, to_ts)
        b = bin_of(t)
        out[b] = out.get(b, 0.0) + (nxt - t) / total
        t = nxt
    return out


@dataclass
class Profile:
    """Crime (or harm) by local hour of the week; ``basis`` says where it comes from."""

    week: np.ndarray  # 168 values
    timed: int  # crimes with a window
    untimed: int  # crimes without (police.uk)
    basis: str

    @property
    def by_hour(self) -> np.ndarray:
        """24 values: hour of the day."""
        return self.week.reshape(7, 24).sum(axis=0)

    @property
    def by_weekday(self) -> np.ndarray:
        """7 values, Monday first."""
        return self.week.reshape(7, 24).sum(axis=1)

    def hour_shares(self) -> list[float]:
        """Hour-of-day shares summing to 1 (empty when there are no times)."""
        total = self.week.sum()
        return [round(float(v / total), 4) for v in self.by_hour] if total > 0 else []

    def weekday_shares(self) -> list[float]:
        """Weekday shares summing to 1, Monday first (empty when there are no times)."""
        total = self.week.sum()
        return [round(float(v / total), 4) for v in self.by_weekday] if total > 0 else []

    def peak_hours(self, share: float = 0.5) -> list[int]:
        """The fewest hours of the day holding at least ``share`` of the profile, in order."""
        h = self.by_hour
        if h.sum() <= 0:
            return []
        order = np.argsort(-h, kind="stable")
        cum = np.cumsum(h[order]) / h.sum()
        k = int(np.searchsorted(cum, share - 1e-12)) + 1
        return sorted(int(i) for i in order[:k])


def profile(from_ts: np.ndarray, to_ts: np.ndarray, tz: dt.tzinfo,
            weights: np.ndarray | None = None) -> Profile:
    """Aoristic profile of crimes (``from_ts`` -1 where a crime has no time), each weighted by
    ``weights`` (harm) or 1."""
    week = np.zeros(WEEK_H)
    timed = untimed = 0
    w = np.ones(len(from_ts)) if weights is None else weights
    for a, b, wt in zip(from_ts.tolist(), to_ts.tolist(), w.tolist(), strict=True):
        if a < 0:
            untimed += 1
            continue
        timed += 1
        for k, share in crime_weights(a, max(a, b), tz).items():
            week[k] += share * wt
    if timed == 0:
        basis = ("no times: the data gives months only (police.uk); hours and weekdays unknown"
                 if untimed else "no crimes")
    elif untimed:
        basis = (f"aoristic from {timed} crimes with from/to times ({untimed} without times"
                 " left out)")
    else:
        basis = f"aoristic from {timed} crimes with from/to times"
    return Profile(week, timed, untimed, basis)
