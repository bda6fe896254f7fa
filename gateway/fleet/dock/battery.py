"""The tracker battery as the dock sees it: charge state and time to full (constant current
to ``cv_from_pct``, then a linear taper). The dock simulator charges its trackers with it too."""

from __future__ import annotations

from dataclasses import dataclass


# -- battery model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatteryModel:
    """A Li-ion cell on a CC/CV charger, in percent of its capacity.

    Constant current until ``cv_from_pct``, then the current tapers linearly to
    ``taper_end`` × the charge current at 100 %. Good to a few minutes for time-to-full, which
    is all the dock display needs; :mod:`simulators.dock` charges its trackers with it too.
    """

    capacity_mah: float = 2600
    charge_ma: float = 1300
    cv_from_pct: float = 80
    taper_end: float = 0.1

    def rate_pct_per_s(self, pct: float) -> float:
        """Charging speed at ``pct`` (percent per second)."""
        full_rate = self.charge_ma / self.capacity_mah * 100 / 3600
        if pct < self.cv_from_pct:
            return full_rate
        span = 100 - self.cv_from_pct
        share = 1 - (1 - self.taper_end) * (pct - self.cv_from_pct) / span
        return full_rate * max(share, self.taper_end)

    def charge(self, pct: float, seconds: float, step_s: float = 10) -> float:
        """Charge after ``seconds`` on the dock, starting at ``pct``."""
        while seconds > 0 and pct < 100:
            dt = min(step_s, seconds)
            pct = min(100.0, pct + self.rate_pct_per_s(pct) * dt)
            seconds -= dt
        return pct

    def drain(self, pct: float, seconds: float, current_ma: float) -> float:
        """Charge after ``seconds`` drawing ``current_ma``."""
        return max(0.0, pct - current_ma * seconds / 3600 / self.capacity_mah * 100)

    def time_to_full_s(self, pct: float, step_s: float = 10) -> int:
        """Seconds on the dock from ``pct`` to 100 % (0 when full)."""
        total = 0.0
        while pct < 99.95:
            rate = self.rate_pct_per_s(pct)
            dt = min(step_s, (100 - pct) / rate)
            pct += rate * dt
            total += dt
        return int(round(total))


def time_to(model: BatteryModel, pct: float, target: float) -> int:
    """Seconds on the dock from ``pct`` to ``target`` percent (0 when already there)."""
    total = 0.0
    while pct < target:
        rate = model.rate_pct_per_s(pct)
        dt = min(10.0, (target - pct) / rate)
        pct += rate * dt
        total += dt
    return int(total)
