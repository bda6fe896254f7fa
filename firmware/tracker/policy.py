"""Adaptive sampling and reporting: when to power the GNSS, when to report, when to use the radio.

Pure and synchronous: every input (time, fix, fence state, battery) is passed in, every decision
is read back from attributes or return values; nothing here touches hardware or reads a clock.
Integer maths only, no allocation on the per-fix path (times are kept as differences from the
first time seen, so a big epoch ``t`` only costs one subtraction per call).

The idea: a boundary can only be crossed after walking to it. After each fix the policy takes the
distance to the nearest fence boundary (``FenceEngine.nearest_m``), removes twice the fix's
accuracy, and divides by a plausible speed (brisk walking, or 1.5 x the measured speed if that is
faster). Until then nothing can change, so the receiver sleeps. Near a boundary (inside or
outside) it samples every ``near_period_s``: a crossing may then fall inside one such gap, and the
fence engine interpolates the crossing time across it, so the dwell error stays a fraction of
that period. Sleeps shorter than ``_MIN_OFF_S`` are not worth a power cycle: the receiver keeps
tracking at 1 Hz. Dense areas (the fence's ``density`` class 3 or more) halve the periods.

Confirmation burst: when a fix lands a hysteresis band deep on the other side of a boundary
without confirming the change (``FenceEngine.pending``: one such fix confirms only after a gap
of 30 s or more), the receiver stays on and the next fix comes 1 s later, while the tracker is
most likely still there. Two deep fixes in a row confirm; a fix back within the band ends the
burst. Without it the confirming fix would come a near period later, and a walk that dips into
a hot spot for less than that (weaving between the parts of a two-part hot spot, cutting a
corner) would never be confirmed. A burst costs one extra fix per deep fix: ``pending`` can
only stay set over consecutive fixes if none of them confirms, and two deep fixes always do.

Reports (locations queued in the outbox) are decided at each fix: ``c`` after a transition,
``v`` after moving ``move_m`` since the last report (as radios do), ``t`` every ``report_s``
while moving, ``p`` (a stationary heartbeat) every ``heartbeat_s`` while still. Sending is
batched: the radio wakes when the oldest waiting message is ``upload_s`` old, and one wake-up
drains everything, because each connection costs the network's connected tail as well as the
data.

Battery tiers degrade gracefully. Each tier has an average battery current (measured by
``hotspots bench patrol``); ``power()`` picks the richest tier whose projected use until the end
of the shift fits the charge left, with a reserve, so a tracker reaches the end of a 10-hour
shift instead of going flat at hour 8. Docked: GNSS off, send everything now. On external power
(a vehicle charger): track at 1 Hz, energy is free.

How the app uses it (see ``docs/sampling.md``)::

    policy.power(now_s, battery_pct, charging, docked, shift_end_s)   # when battery state changes
    policy.gnss_on(now_s)                                             # after powering the receiver
    trigger = policy.fix(fix.t, ..., engine.nearest_m, density, transition,
                         engine.pending)                                  # each valid fix
    if policy.off_s: gnss.off(); sleep until policy.wake_t; gnss.on()
    policy.no_fix(now_s)                     # each second the receiver is on without a fix
    if policy.upload_due(now_s, len(outbox), oldest_t): connect, send all, policy.uploaded(...)
"""

from tracker.compat import const

# Tiers, richest first.
NORMAL = const(0)
SAVER = const(1)
LOW = const(2)
CRITICAL = const(3)
DOCKED = const(4)

# Per tier: max GNSS sleep far from fences (s), sample period near a boundary (s), location
# interval while moving (s), stationary heartbeat (s), movement trigger (m), radio batching
# interval (s), average battery current in 0.1 mA (the budget figure: set at or above what
# ``hotspots bench patrol`` measures with the policy held in the tier, MCU awake while the
# receiver is on; tests/test_scoreboard.py checks every tier). NORMAL's near period is the fence
# engine's 30 s gap after which one deep fix confirms: at 25 s every deep fix needed a burst fix
# and, with the MCU awake for each receiver second, cost 1.6 x the oracle (docs/sampling.md).
_TIERS = (
    (120, 30, 300, 900, 50, 600, 75),
    (300, 30, 600, 1800, 100, 1200, 70),
    (600, 45, 1200, 3600, 200, 1800, 56),
    (900, 900, 1800, 3600, 500, 3600, 16),
    (3600, 3600, 3600, 3600, 1000, 0, 0),
)

_ON_FOOT_CMPS = const(250)  # plausible speed of an officer on foot: a brisk walk, 9 km/h
_MOVING_CMPS = const(50)  # slower than this counts as standing still (heartbeat, not timer)
_MIN_OFF_S = const(5)  # a shorter sleep saves less than the hot start costs
_TTFF_HOT_S = const(1)  # wake this much early so the fix lands when planned (hot start)
_ACQ_TIMEOUT_S = const(45)  # no fix this long after power-on: a dead spot, stop searching
_EPH_RUN_S = const(30)  # continuous tracking that downloads fresh ephemeris (one GPS frame)
_EPH_REFRESH_S = const(10800)  # refresh ephemeris this often (valid ~4 h) to keep hot starts
_RESERVE_PCT = const(10)  # battery kept back when budgeting the shift
_BATCH_FULL = const(200)  # wake the radio anyway when this many messages wait
_RETRY_S = const(60)  # first retry after a failed upload; doubles up to the tier's upload_s

# The policy's private state, in one list (``Policy._st``) of these slots: named by const()s they
# cost no interned name on a board, where as attributes each did (docs/memory.md). Times are
# seconds since ``_t0``.
_REPORTED = const(0)  # 1 once a location was reported
_REPORT_REL = const(1)  # when, and where:
_REPORT_LAT = const(2)
_REPORT_LON = const(3)
_ON_REL = const(4)  # when the receiver was last powered on
_RUN_REL = const(5)  # start of the current run of consecutive 1 Hz fixes (-1: none)
_LAST_FIX_REL = const(6)  # (-1: none yet)
_REFRESH_REL = const(7)  # last ephemeris refresh
_BACKOFF_S = const(8)  # the last sleep after an acquisition time-out (0: none since a fix)
_RETRY_REL = const(9)  # no upload before this, after a failed one
_RETRY_WAIT = const(10)  # the wait after the next failed upload (s)


def approx_distance_m(lat1_e6, lon1_e6, lat2_e6, lon2_e6):
    """Rough distance in metres for the movement trigger (equirectangular, octagonal norm).

    1e-6 degree of latitude is 0.111 m; of longitude at 51.5 N, 0.069 m. Within a few percent,
    which is all a movement trigger needs; small ints for moves up to ~100 km.
    """
    dlat = lat2_e6 - lat1_e6
    if dlat < 0:
        dlat = -dlat
    dlon = lon2_e6 - lon1_e6
    if dlon < 0:
        dlon = -dlon
    dlat = dlat // 9
    dlon = dlon * 9 // 130
    if dlat < dlon:
        dlat, dlon = dlon, dlat
    return dlat + dlon * 3 // 8


def density_near(fence_set, lat_e6, lon_e6, nearest_m):
    """Highest ``density`` class among the fences whose near range holds the point (0 if none).

    ``nearest_m`` is the engine's distance to the nearest boundary for this fix: beyond the set's
    near range no fence can be near, and the grid is not even looked at.

    Uses the fence set's grid prefilter and bounding-box test only (no polygon maths), so it is
    cheap enough for every fix that is near a fence at all.
    """
    if nearest_m >= fence_set.near_m:
        return 0
    s = fence_set.cand_start(lat_e6, lon_e6)
    e = fence_set.cand_end
    best = 0
    gent = fence_set.gent
    dens = fence_set.density
    lat0 = fence_set.lat0
    lon0 = fence_set.lon0
    bb = fence_set.bb
    ny = fence_set.near_lat
    while s < e:
        i = gent[s]
        s += 1
        d = dens[i]
        if d <= best:
            continue
        dy = lat_e6 - lat0[i]
        dx = lon_e6 - lon0[i]
        nx = fence_set.near_lon[i]
        b = 4 * i
        if bb[b] - nx <= dx <= bb[b + 2] + nx and bb[b + 1] - ny <= dy <= bb[b + 3] + ny:
            best = d
    return best


class Policy:
    """Decides GNSS power, sample period, reports and radio wake-ups (see the module docstring).

    :param capacity_mah: battery capacity, for the shift budget
    :param on_foot_cmps: plausible speed when the measured one is lower (cm/s)
    :param tiers: per-tier parameter rows (see ``_TIERS``); for experiments and tests
    """

    def __init__(self, capacity_mah=2000, on_foot_cmps=_ON_FOOT_CMPS, tiers=_TIERS):
        self.capacity_mah = capacity_mah
        self.on_foot_cmps = on_foot_cmps
        self.tiers = tiers
        self.tier = NORMAL
        self.charging = False
        self._t0 = None
        # Outputs of the last decision.
        self.off_s = 0  # 0: keep tracking at 1 Hz; else power the receiver off this long
        self.wake_t = 0  # when to power it on again (same time base as the inputs)
        self.period_s = 1  # planned time to the next fix
        # State: the slots above (none reported yet, no run, no ephemeris refresh yet).
        self._st = [0, 0, 0, 0, 0, -1, -1, -_EPH_REFRESH_S, 0, 0, _RETRY_S]
        self.fixes = 0
        self.reports = 0
        # Location interval while moving set by the gateway (0: the tier's); see Tracker.
        self.report_s = 0

    # -- time base ------------------------------------------------------------------------------
    def _rel(self, t):
        if self._t0 is None:
            self._t0 = t
        return t - self._t0

    # -- power ----------------------------------------------------------------------------------
    def power(self, t, battery_pct, charging, docked, shift_end_t):
        """Update the battery state; returns the tier now in force.

        ``shift_end_t`` is when the shift ends (same time base as ``t``); the tier is the richest
        whose average current until then fits the charge above the reserve. A richer tier than
        the current one needs 20 % headroom, so the tier does not flap on every percent.
        """
        self.charging = bool(charging)
        if docked:
            self.tier = DOCKED
            self.off_s = 1
            return DOCKED
        if charging:
            self.tier = NORMAL
            return NORMAL
        rel = self._rel(t)
        left_s = shift_end_t - self._t0 - rel
        if left_s < 0:
            left_s = 0
        pct = battery_pct - _RESERVE_PCT
        if pct < 0:
            pct = 0
        have_mah = self.capacity_mah * pct // 100
        tier = NORMAL
        current = self.tier if self.tier != DOCKED else NORMAL
        while tier < CRITICAL:
            need_mah = self.tiers[tier][6] * (left_s // 60) // 600  # 0.1 mA x minutes
            if tier < current:
                need_mah = need_mah * 6 // 5
            if need_mah <= have_mah:
                break
            tier += 1
        if battery_pct <= 5:
            tier = CRITICAL
        elif battery_pct <= 15 and tier < LOW:
            tier = LOW
        self.tier = tier
        return tier

    # -- GNSS -----------------------------------------------------------------------------------
    def gnss_on(self, t):
        """The receiver was powered on at ``t``: the acquisition timeout counts from here."""
        self._st[_ON_REL] = self._rel(t)
        self.off_s = 0

    def no_fix(self, t):
        """The receiver is on and gave no valid fix at ``t``; returns True to power it off.

        After ``_ACQ_TIMEOUT_S`` without a fix (a dead spot: indoors, an underpass) searching on
        costs acquisition current for nothing: sleep, with a back-off that doubles up to the
        tier's maximum sleep, and try again.
        """
        rel = self._rel(t)
        st = self._st
        st[_RUN_REL] = -1
        if rel - st[_ON_REL] < _ACQ_TIMEOUT_S:
            return False
        cap = self.tiers[self.tier][0]
        back = st[_BACKOFF_S] * 2 if st[_BACKOFF_S] else _ACQ_TIMEOUT_S
        if back > cap:
            back = cap
        st[_BACKOFF_S] = back
        self.off_s = back
        self.wake_t = t + back
        self.period_s = back
        return True

    def fix(self, t, lat_e6, lon_e6, speed_cmps, acc_cm, nearest_m, density, transition,
            pending=0):
        """Take one valid fix with the fence state after it; returns the report trigger.

        :param t: fix time, seconds (GNSS epoch or any monotonic base, used consistently)
        :param speed_cmps: speed over ground, cm/s (-1 unknown)
        :param acc_cm: horizontal accuracy, cm
        :param nearest_m: ``FenceEngine.nearest_m`` after this fix
        :param density: density class of the fences near the fix (``density_near``), 0 if none
        :param transition: the fence engine confirmed an enter or leave at this fix
        :param pending: ``FenceEngine.pending`` after this fix: fences with a change that the
            next fix deep on the new side confirms; the receiver then stays on for that fix
        :returns: ``""`` (no report), ``"c"``, ``"v"``, ``"t"`` or ``"p"``; sets ``off_s``,
            ``wake_t`` and ``period_s`` for the receiver.
        """
        rel = self._rel(t)
        st = self._st
        self.fixes += 1
        st[_BACKOFF_S] = 0
        if st[_RUN_REL] < 0 or rel - st[_LAST_FIX_REL] > 2:
            st[_RUN_REL] = rel
        st[_LAST_FIX_REL] = rel
        if rel - st[_RUN_REL] >= _EPH_RUN_S:
            st[_REFRESH_REL] = rel
        row = self.tiers[self.tier]
        shift = 0
        if density >= 3:
            shift = 1  # halved only: quartered (6 s) was tracking in all but name
        report_s = (self.report_s or row[2]) >> shift
        heartbeat_s = row[3] >> shift
        moving = speed_cmps >= _MOVING_CMPS

        # -- report --
        trigger = ""
        since = rel - st[_REPORT_REL]
        if transition:
            trigger = "c"
        elif not st[_REPORTED]:
            trigger = "t"
        elif approx_distance_m(st[_REPORT_LAT], st[_REPORT_LON], lat_e6, lon_e6) >= row[4]:
            trigger = "v"
        elif moving and since >= report_s:
            trigger = "t"
        elif since >= heartbeat_s:
            trigger = "p"
        if trigger:
            st[_REPORTED] = 1
            st[_REPORT_REL] = rel
            st[_REPORT_LAT] = lat_e6
            st[_REPORT_LON] = lon_e6
            self.reports += 1
            since = 0

        # -- next fix --
        if self.charging or self.tier == DOCKED:
            off = 0 if self.charging else row[0]
        else:
            v = self.on_foot_cmps
            if speed_cmps * 3 // 2 > v:
                v = speed_cmps * 3 // 2
            margin_cm = nearest_m * 100 - 2 * acc_cm
            off = margin_cm // v if margin_cm > 0 else 0
            near = row[1] >> shift
            if off < near:
                off = near
            cap = row[0] >> shift
            if off > cap:
                off = cap
            due = (report_s if moving else heartbeat_s) - since
            if off > due:
                off = due
            off -= _TTFF_HOT_S
            if off < _MIN_OFF_S or pending:
                off = 0  # pending: a confirmation burst, the next fix in 1 s
            elif rel - st[_REFRESH_REL] >= _EPH_REFRESH_S:
                off = 0  # keep tracking until fresh ephemeris keeps the next starts hot
        self.off_s = off
        if off:
            self.wake_t = t + off
            self.period_s = off + _TTFF_HOT_S
            st[_RUN_REL] = -1
        else:
            self.wake_t = t + 1
            self.period_s = 1
        return trigger

    # -- radio ----------------------------------------------------------------------------------
    def upload_due(self, t, pending, oldest_t):
        """Whether to wake the radio now for ``pending`` messages, the oldest queued at
        ``oldest_t``. One wake-up should then send everything waiting."""
        if pending <= 0:
            return False
        if self.tier == DOCKED:
            return True
        if self._rel(t) < self._st[_RETRY_REL]:
            return False
        if pending >= _BATCH_FULL:
            return True
        return t - oldest_t >= self.tiers[self.tier][5]

    def uploaded(self, t, ok):
        """Result of a radio wake-up: after a failure (no coverage), back off before retrying."""
        rel = self._rel(t)
        st = self._st
        if ok:
            st[_RETRY_WAIT] = _RETRY_S
            st[_RETRY_REL] = rel
            return
        st[_RETRY_REL] = rel + st[_RETRY_WAIT]
        cap = self.tiers[self.tier][5] or _RETRY_S
        st[_RETRY_WAIT] = st[_RETRY_WAIT] * 2 if st[_RETRY_WAIT] * 2 < cap else cap
