"""Position filters per source: keep bad positions out of reports without destroying evidence.

A filtered position is still stored, with the reasons it failed in ``positions.filtered``
(comma-separated, the same convention as :mod:`gateway.intake.airwave.filters`); reports and exports
leave such rows out, and anyone investigating can still see them.

Reasons
-------
``invalid``   the device said the fix is no fix (``fix`` quality 0) or gave a negative accuracy.
``zero``      latitude and longitude both 0 ("null island"), a classic default-value fix.
``duplicate`` the same fix time and place as the device's previous position (a re-sent fix
              under a new sequence number; a re-delivered message is caught earlier, by
              ``(device, seq)``).
``future``    fix time more than ``max_future_s`` after it was received: a bad GNSS clock.
``past``      fix time more than ``max_age_s`` before it was received, or before 2020.
``accuracy``  stated accuracy worse than ``max_acc_m``.
``speed``     reaching it from the previous kept position needs more than ``max_speed_mps``
              (mast jumps, multipath spikes).
``period``    less than ``min_period_s`` after the previous kept position (phones in a burst).

Each source (``tracker``, ``owntracks``, ``airwave``, ...) has its own :class:`FilterConfig`;
:func:`load_config` reads overrides from a TOML file::

    [owntracks]
    max_acc_m = 150
    min_period_s = 5
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from gateway.intake.observation import Observation

EARTH_RADIUS_M = 6_371_008.8
#: Earlier than this is a GNSS week-rollover or unset-clock artefact, not a fix.
EARLIEST_TST = 1_577_836_800  # 2020-01-01


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds for one source; ``None`` (or 0 for ``min_period_s``) switches a check off."""

    max_future_s: float | None = 300
    #: Long enough for a tracker's outbox to come back from a lost fortnight in a locker.
    max_age_s: float | None = 30 * 86400
    max_acc_m: float | None = 100
    #: 250 km/h: faster than any response vehicle in a town.
    max_speed_mps: float | None = 70
    min_period_s: float = 0
    check_invalid: bool = True
    check_zero: bool = True
    check_duplicate: bool = True
    #: Positions whose device says their accuracy is not known (an Airwave error class 7):
    #: ``keep`` (stored, flagged ``accuracy_unknown``; reports decide whether they count) or
    #: ``drop`` (logged, not stored as positions), for forces that never want them.
    unknown_accuracy: str = "keep"


DEFAULTS: dict[str, FilterConfig] = {
    "tracker": FilterConfig(),
    # Phones report network-assisted fixes of a few hundred metres indoors.
    "owntracks": FilterConfig(max_acc_m=200),
    # Radios: accuracy and speed are judged by the radio's own rules (``coarse``, ``jump`` in
    # gateway.intake.airwave.filters, which know an unknown error bound and mast snapping);
    # the rest (future, past, zero, duplicate) is the same as for every source.
    "airwave": FilterConfig(max_acc_m=None, max_speed_mps=None),
    # Imported files are often weeks old by the time they are imported: no age limit.
    "import": FilterConfig(max_age_s=None),
    # Vehicle AVL units: GNSS like a tracker, at road speeds.
    "vehicle": FilterConfig(),
}


class FilterConfigError(ValueError):
    """A filter configuration file names an unknown setting or has a wrong value."""


def load_config(path: str | Path | None) -> dict[str, FilterConfig]:
    """Per-source configuration: :data:`DEFAULTS` with the overrides of a TOML file, if any."""
    config = dict(DEFAULTS)
    if path is None:
        return config
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FilterConfigError(f"{path}: {exc}") from exc
    known = {f.name for f in fields(FilterConfig)}
    for source, overrides in data.items():
        if not isinstance(overrides, dict):
            raise FilterConfigError(f"{path}: [{source}] must be a table of settings")
        unknown = set(overrides) - known
        if unknown:
            raise FilterConfigError(f"{path}: [{source}] unknown settings {sorted(unknown)};"
                                    f" known: {sorted(known)}")
        if overrides.get("unknown_accuracy", "keep") not in ("keep", "drop"):
            raise FilterConfigError(f"{path}: [{source}] unknown_accuracy must be \"keep\" or"
                                    " \"drop\"")
        config[source] = replace(config.get(source, FilterConfig()), **overrides)
    return config


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance, metres.

    Close points (the per-message case) use the equirectangular approximation, a third of the
    cost and within 0.1 % below 50 km; the haversine is kept for everything farther.
    """
    dlat, dlon = lat2 - lat1, lon2 - lon1
    if abs(dlat) < 0.5 and abs(dlon) < 0.5:
        x = math.radians(dlon) * math.cos(math.radians((lat1 + lat2) / 2))
        return EARTH_RADIUS_M * math.hypot(x, math.radians(dlat))
    return haversine_m(lat1, lon1, lat2, lon2)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) at any range, metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Kept:
    """A device's previous unfiltered position, what the movement checks compare against."""

    tst: int
    lat: float
    lon: float
    acc_m: float


def check(config: FilterConfig, obs: Observation, received_at: float,
          previous: Kept | None) -> str:
    """Reasons the location ``obs`` fails, comma-separated; ``""`` when it passes.

    ``obs`` has been through :func:`gateway.intake.validate.check` (finite values in range).
    ``previous`` is the device's kept position closest before this one in fix time, so a
    late-arriving fix from an outbox replay is judged against its true predecessor.
    Pure: no database, so it is cheap to table-test and to run per message.
    """
    reasons = []
    tst, lat, lon = obs.tst, obs.lat, obs.lon
    acc = obs.acc_m
    if config.check_invalid and (obs.fix_quality == 0 or (acc is not None and acc < 0)):
        reasons.append("invalid")
    if config.check_zero and lat == 0 and lon == 0:
        reasons.append("zero")
    if config.max_future_s is not None and tst > received_at + config.max_future_s:
        reasons.append("future")
    if tst < EARLIEST_TST or (config.max_age_s is not None
                              and tst < received_at - config.max_age_s):
        reasons.append("past")
    if config.max_acc_m is not None and acc is not None and acc > config.max_acc_m:
        reasons.append("accuracy")
    if previous is not None:
        dt = tst - previous.tst
        if config.check_duplicate and dt == 0 and (lat, lon) == (previous.lat, previous.lon):
            reasons.append("duplicate")
        elif config.max_speed_mps is not None:
            # Both ends may be off by their stated accuracy: only a jump that no error budget
            # explains is flagged, so a walk with noisy fixes is not.
            slack = (acc or 0) + previous.acc_m
            moved = max(0.0, distance_m(previous.lat, previous.lon, lat, lon) - slack)
            if moved > config.max_speed_mps * max(abs(dt), 1):
                reasons.append("speed")
        if config.min_period_s and 0 < dt < config.min_period_s:
            reasons.append("period")
    return ",".join(reasons)
