"""Plausibility filters for radio positions: implausible jumps, mast locations, coarse fixes.

Radios fail in ways GNSS trackers do not. Indoors or in a dead spot a radio may report the
location of its serving mast, with an error class that still claims metres, so an officer
"appears" hundreds of metres away; a stale or corrupted fix puts an officer across town and back
within a minute. These filters never delete anything: a flagged position is stored with its
flags in ``positions.filtered`` (which the standard reports and exports leave out) and remains
visible for anyone who wants to look. The intake applies them: it calls
:meth:`RadioFilters.check_observation` as the radios' source check
(:data:`gateway.intake.intake.SourceCheck`).

Flags
-----
``mast``
    The coordinate is a mast: within ``mast_match_m`` of a known mast (configured in the
    ``radio_masts`` table, or learned), or a coordinate reported bit-for-bit identically
    ``mast_repeats`` times or by ``mast_radios`` different radios. People do not stand on the
    same LIP grid cell (about 1 m) again and again, or share it with colleagues; a mast does.
    When a coordinate becomes a mast this way it is learned, and the earlier positions at it are
    flagged too. The price: a radio lying still with a frozen fix for three reports is flagged;
    that is the right call for a filter whose job is to stop "was there" claims.
``jump``
    Reaching this position from the radio's nearest earlier unflagged position would need a
    speed above ``max_speed_mps``, even after moving both ends by their stated position errors.
``coarse``
    The report's position error bound is unknown or larger than ``max_error_m``: it cannot
    place an officer in a hot spot.
``accuracy_unknown``
    The radio said its position error is "not known" (class 7) while giving real coordinates
    with a known age. Not ``coarse``: whether such fixes count in visits is the report's choice
    (``hotspots report dwell --unknown-accuracy count``; left out by default), and a force that
    never wants them sets ``unknown_accuracy = "drop"`` under ``[airwave]`` in the filters file.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

# The exact haversine at every range; simulators.radio imports it from here as ``distance_m``.
from gateway.intake.filters import haversine_m as distance_m
from gateway.intake.observation import Observation


@dataclass
class FilterSettings:
    """Thresholds of :class:`RadioFilters` (defaults suit foot and vehicle patrols)."""

    max_speed_mps: float = 70.0  # 250 km/h: faster than any response vehicle in a town
    max_error_m: float = 200.0
    mast_repeats: int = 3
    mast_radios: int = 2
    mast_match_m: float = 3.0


class RadioFilters:
    """Flags one radio position at a time against what the database already holds.

    State lives in the database (``positions``, ``radio_reports``, ``radio_masts``), so a
    restarted gateway judges exactly as before.
    """

    def __init__(self, db: sqlite_utils.Database, settings: FilterSettings | None = None):
        self.db = db
        self.settings = settings or FilterSettings()
        self._learned: list[int] = []

    def add_mast(self, lat: float, lon: float, label: str = "", source: str = "configured",
                 at: float | None = None) -> None:
        """Record a known mast location (idempotent)."""
        from gateway.intake.airwave.lip import lat_to_raw, lon_to_raw

        self.db.execute(
            "INSERT OR IGNORE INTO radio_masts (lat_raw, lon_raw, lat, lon, source, label,"
            " first_seen) VALUES (?,?,?,?,?,?,?)",
            (lat_to_raw(lat), lon_to_raw(lon), lat, lon, source, label, at),
        )

    def check_observation(self, obs: Observation) -> tuple[list[str], list[tuple[int, str]]]:
        """The intake's source check: flags for the radio position ``obs`` about to be stored,
        and earlier positions to flag ``mast`` because this one made their spot a mast."""
        from gateway.intake.airwave.lip import LAT_UNIT_DEG, LON_UNIT_DEG

        self._learned = []
        lat_raw, lon_raw = int(obs.extra.get("lat_raw") or 0), int(obs.extra.get("lon_raw") or 0)
        # The stored position is rounded to 7 places; masts are kept at the exact LIP grid point.
        flags = self.check(obs.device_id, obs.tst, lat_raw * LAT_UNIT_DEG,
                           lon_raw * LON_UNIT_DEG, lat_raw, lon_raw, obs.acc_m,
                           accuracy_unknown=obs.extra.get("pos_err_class") == 7)
        learned, self._learned = self._learned, []
        return flags, [(position_id, "mast") for position_id in learned]

    def check(self, device_id: str, tst: int, lat: float, lon: float, lat_raw: int,
              lon_raw: int, pos_err_m: float | None, accuracy_unknown: bool = False
              ) -> list[str]:
        """The flags for a position about to be stored (it is not in the database yet)."""
        flags = []
        s = self.settings
        if accuracy_unknown:
            flags.append("accuracy_unknown")
        elif pos_err_m is None or pos_err_m > s.max_error_m:
            flags.append("coarse")
        if self._is_mast(lat, lon, lat_raw, lon_raw, device_id):
            flags.append("mast")
        previous = self.db.execute(
            "SELECT tst, lat, lon, acc_m FROM positions WHERE device_id = ? AND source ="
            " 'airwave' AND filtered IS NULL ORDER BY (tst > ?), abs(tst - ?) LIMIT 1",
            (device_id, tst, tst),
        ).fetchone()
        if previous is not None and "coarse" not in flags:
            p_tst, p_lat, p_lon, p_err = previous
            slack = (p_err or 0.0) + (pos_err_m or 0.0)
            moved = max(0.0, distance_m(p_lat, p_lon, lat, lon) - slack)
            if moved / max(1, abs(tst - p_tst)) > s.max_speed_mps:
                flags.append("jump")
        return flags

    def _is_mast(self, lat: float, lon: float, lat_raw: int, lon_raw: int,
                 device_id: str) -> bool:
        s = self.settings
        # Known masts near this point (a box query on raw units first, then metres).
        box = 1 + int(s.mast_match_m / 0.5)
        for m_lat, m_lon in self.db.execute(
            "SELECT lat, lon FROM radio_masts WHERE lat_raw BETWEEN ? AND ?"
            " AND lon_raw BETWEEN ? AND ?",
            (lat_raw - box, lat_raw + box, lon_raw - 2 * box, lon_raw + 2 * box),
        ):
            if distance_m(lat, lon, m_lat, m_lon) <= s.mast_match_m:
                return True
        count, radios, mine = self.db.execute(
            "SELECT count(*), count(DISTINCT device_id), sum(device_id = ?) FROM radio_reports"
            " WHERE lat_raw = ? AND lon_raw = ? AND position_id IS NOT NULL",
            (device_id, lat_raw, lon_raw),
        ).fetchone()
        distinct = radios + (0 if mine else 1)  # this report's radio counts too
        if count + 1 >= s.mast_repeats or distinct >= s.mast_radios:
            self._learn_mast(lat, lon, lat_raw, lon_raw)
            return True
        return False

    def _learn_mast(self, lat: float, lon: float, lat_raw: int, lon_raw: int) -> None:
        """Remember a learned mast, and the positions already stored at it (to be flagged by
        the intake: :meth:`check_observation`)."""
        self.db.execute(
            "INSERT OR IGNORE INTO radio_masts (lat_raw, lon_raw, lat, lon, source, label)"
            " VALUES (?,?,?,?, 'learned', '')",
            (lat_raw, lon_raw, lat, lon),
        )
        self._learned = [row[0] for row in self.db.execute(
            "SELECT p.id FROM positions p JOIN radio_reports r ON r.position_id = p.id"
            " WHERE r.lat_raw = ? AND r.lon_raw = ? AND (p.filtered IS NULL OR"
            " ',' || p.filtered || ',' NOT LIKE '%,mast,%')",
            (lat_raw, lon_raw),
        )]
