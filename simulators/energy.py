"""Energy model of a pooled tracker: charge exactly what a strategy asked the hardware to do.

A strategy drives simulated hardware (:class:`GnssReceiver`, :class:`Radio`) and the hardware
writes down what it did in a :class:`HardwareLog`: seconds in GNSS acquisition, tracking and
backup, fixes handed to the MCU, radio connections. :func:`shift_energy` turns the log into
battery charge per component. Nothing is estimated from the strategy's *intent*: a receiver
switched on in a dead spot is charged acquisition current until it is switched off, and a radio
wake-up is charged its connection set-up and the network's connected tail (cut short only when
the next connection starts inside it).

Every parameter below carries its source. Currents are drawn from the cell through an LDO, so the
battery current equals the load current; energy in mWh uses the cell's nominal voltage.
Where a figure is an engineering estimate rather than a datasheet value, it says so; those are
the parameters to measure first on a real board.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GnssParams:
    """A GNSS module. Default: u-blox M8 (NEO-M8N / MAX-M8Q), 3.0 V, GPS+GLONASS.

    Sources: u-blox NEO-M8 data sheet (UBX-15031086) "Current consumption" and "TTFF" tables;
    MAX-M8Q GNSS HAT specification (module current 23 mA at 3 V, continuous tracking; cold start
    26 s, hot start 1 s); u-blox M8 Receiver Description (UBX-13003221), section "Power
    management": ephemeris is valid about 4 h, and it takes at least one 30 s frame of
    continuous tracking to download it, which is what keeps restarts *hot*.
    """

    acquisition_ma: float = 29.0  # NEO-M8 data sheet, acquisition, GPS+GLONASS, typ.
    tracking_ma: float = 23.0  # MAX-M8Q spec / NEO-M8 data sheet, continuous tracking, typ.
    backup_ma: float = 0.015  # NEO-M8 data sheet, V_BCKP backup current (RTC + BBR), 15 uA
    ttff_cold_s: int = 26  # NEO-M8 / MAX-M8Q: cold start, GPS+GLONASS
    ttff_warm_s: int = 25  # M8 modules (e.g. M8030-KT spec sheets): warm start 25 s
    ttff_hot_s: int = 1  # NEO-M8 / MAX-M8Q: hot start 1 s
    ephemeris_valid_s: int = 4 * 3600  # M8 Receiver Description: ephemeris ~4 h
    ephemeris_download_s: int = 30  # one GPS frame (subframes 1-3 repeat every 30 s)


#: A newer, lower-power alternative (u-blox MAX-M10S data sheet UBX-20035208: about 25 mW in
#: continuous tracking at 3.0 V, hot start 1 s, cold start ~29 s). Approximate: check the
#: current table of the module you fit.
GNSS_M10 = GnssParams(acquisition_ma=12.0, tracking_ma=8.5, backup_ma=0.035, ttff_cold_s=29,
                      ttff_warm_s=27, ttff_hot_s=1)


@dataclass(frozen=True)
class ModemParams:
    """A cellular modem. Default: LTE-M (Cat-M1) module such as Quectel BG95 / u-blox SARA-R4.

    One radio wake-up: leave PSM, RRC connection set-up and MQTT over TCP (CONNECT, the batch,
    PUBACKs), then the *connected tail*: the network keeps the RRC connection for its inactivity
    timer (typically 10 s, set by the operator, not the device) with connected-mode DRX, then
    idle paging for the PSM active timer (T3324), then PSM.

    Sources: Sørensen et al., "Modelling and Experimental Validation for Battery Lifetime
    Estimation in NB-IoT and LTE-M" (IEEE IoT Journal 2022, arXiv:2106.13286) for the state
    structure and the order of magnitude of each state's current; the 10 s RRC inactivity timer
    is the usual operator setting (also Huang et al., "A close examination of performance and
    power characteristics of 4G LTE networks", MobiSys 2012, who measured the LTE tail); PSM
    floor from the Quectel BG95 hardware design (a few uA). The set-up time and mean currents
    are engineering estimates for good coverage (+23 dBm peaks are rare at MCL < 144 dB).
    """

    setup_s: float = 2.5  # PSM exit, RRC set-up, TCP + MQTT CONNECT (estimate, good coverage)
    active_ma: float = 90.0  # mean current while exchanging data (estimate, TX bursts included)
    per_message_s: float = 0.05  # extra airtime per queued message in the batch (estimate)
    tail_s: float = 10.0  # RRC inactivity timer (operator setting, typically 10 s)
    tail_ma: float = 12.0  # connected-mode DRX mean current (order of magnitude, Sørensen)
    idle_s: float = 6.0  # PSM active timer T3324 before PSM (device-requested, estimate)
    idle_ma: float = 1.0  # idle paging with eDRX (order of magnitude, Sørensen)
    psm_ma: float = 0.005  # PSM floor (BG95 hardware design: a few uA)
    failed_attempt_s: float = 8.0  # cell search without coverage before giving up (estimate)
    search_ma: float = 60.0  # mean current while searching (estimate)


#: 2G fallback (GSM/GPRS, e.g. SIMCom SIM800): no PSM, a longer and costlier connection.
#: SIM800 hardware design: idle ~ 1 mA in sleep mode with DRX, GPRS transfer mean ~ 200-450 mA;
#: the GPRS "tail" (the TBF kept open) is a few seconds. Estimates from that document.
MODEM_2G = ModemParams(setup_s=4.0, active_ma=250.0, per_message_s=0.1, tail_s=5.0,
                       tail_ma=60.0, idle_s=0.0, idle_ma=0.0, psm_ma=1.0,
                       failed_attempt_s=10.0, search_ma=80.0)


@dataclass(frozen=True)
class McuParams:
    """The MCU running MicroPython. Default: ESP32 (Wi-Fi and Bluetooth off).

    Source: Espressif "ESP32 Series Datasheet", table "Power consumption by power modes":
    modem-sleep (CPU on, radio off) 20-31 mA at 80 MHz; light-sleep 0.8 mA; deep-sleep with RTC
    timer and memory 10 uA. Light-sleep keeps RAM (the fence state, the outbox indexes), so the
    tracker light-sleeps while the receiver is off and nothing is due.

    It stays awake whenever the receiver is on: the receiver streams NMEA every second and
    a UART stops in light sleep (bytes arriving then are lost; MicroPython has no UART wake
    that keeps them), so the MCU reads the stream in modem-sleep, the fix's parsing and fence
    update included. (An earlier model charged 0.05 s per fix only, as if the MCU could sleep
    between epochs; the firmware, run and counted on the unix port by ``hotspots bench patrol
    --firmware``, cannot, and neither can a board: docs/energy.md.) The active time per radio
    message is an estimate, to be measured.
    """

    active_ma: float = 30.0  # modem-sleep at 80 MHz, upper typical
    light_sleep_ma: float = 0.8  # light-sleep
    per_message_s: float = 0.02  # build JSON, append to the flash outbox (estimate)


@dataclass(frozen=True)
class BatteryParams:
    """The cell. 2,000 mAh Li-ion (18650 / pouch), 3.7 V nominal (the issue's reference cell)."""

    capacity_mah: float = 2000.0
    nominal_v: float = 3.7


@dataclass(frozen=True)
class Hardware:
    """The parts a tracker is built from."""

    gnss: GnssParams = field(default_factory=GnssParams)
    modem: ModemParams = field(default_factory=ModemParams)
    mcu: McuParams = field(default_factory=McuParams)
    battery: BatteryParams = field(default_factory=BatteryParams)


DEFAULT_HARDWARE = Hardware()


@dataclass
class HardwareLog:
    """What the hardware did during a shift (written by the simulated parts)."""

    duration_s: int = 0
    gnss_acquisition_s: int = 0
    gnss_tracking_s: int = 0
    gnss_starts: dict[str, int] = field(default_factory=lambda: {"cold": 0, "warm": 0, "hot": 0})
    fixes: int = 0
    messages: int = 0
    connections: list[tuple[float, int]] = field(default_factory=list)  # (time, messages)
    failed_connections: list[float] = field(default_factory=list)

    @property
    def gnss_on_s(self) -> int:
        """Seconds the receiver was powered."""
        return self.gnss_acquisition_s + self.gnss_tracking_s


class GnssReceiver:
    """A GNSS module as a strategy sees it: power it on and off, ask for the fix of a second.

    Start type after power-on: cold the first time; hot while the ephemeris downloaded in the
    last ``ephemeris_valid_s`` is still valid (downloaded by ``ephemeris_download_s`` of
    continuous tracking); warm otherwise. No fix is available in a GNSS dead spot; the receiver
    then stays in acquisition (and is charged for it).
    """

    def __init__(self, params: GnssParams, log: HardwareLog) -> None:
        self.params = params
        self.log = log
        self.on = False
        self._first_fix_at = 0
        self._ephemeris_t: float | None = None
        self._tracking_since: float | None = None

    def power_on(self, t: int) -> None:
        """Switch the receiver on at second ``t`` (a no-op if it is on)."""
        if self.on:
            return
        self.on = True
        p = self.params
        if self._ephemeris_t is None and not sum(self.log.gnss_starts.values()):
            kind, ttff = "cold", p.ttff_cold_s
        elif self._ephemeris_t is not None and t - self._ephemeris_t < p.ephemeris_valid_s:
            kind, ttff = "hot", p.ttff_hot_s
        else:
            kind, ttff = "warm", p.ttff_warm_s
        self.log.gnss_starts[kind] += 1
        self._first_fix_at = t + ttff
        self._tracking_since = None

    @property
    def ephemeris_t(self) -> float | None:
        """When the receiver last had a fresh ephemeris downloaded (None: never)."""
        return self._ephemeris_t

    def tracked_s(self, t: int) -> int:
        """Seconds of continuous tracking up to and including second ``t`` (0 if not
        tracking)."""
        return 0 if self._tracking_since is None else t - self._tracking_since + 1

    def power_off(self) -> None:
        """Switch the receiver off (to backup)."""
        self.on = False
        self._tracking_since = None

    def second(self, t: int, signal: bool) -> bool:
        """Account for second ``t`` while on; returns True if a fix is output for it.

        ``signal`` is False in a GNSS dead spot. A receiver that loses the signal falls back to
        acquisition; when the signal returns within the ephemeris validity it re-acquires at
        once (re-acquisition ~1 s on M8).
        """
        if not self.on:
            return False
        if signal and t >= self._first_fix_at:
            self.log.gnss_tracking_s += 1
            if self._tracking_since is None:
                self._tracking_since = t
            if self.tracked_s(t) >= self.params.ephemeris_download_s:
                self._ephemeris_t = t
            return True
        self.log.gnss_acquisition_s += 1
        self._tracking_since = None
        if not signal and t >= self._first_fix_at:
            self._first_fix_at = t + 1  # re-acquisition once the sky is back
        return False


class Radio:
    """The modem as a strategy sees it: ``send(t, n)`` wakes it and sends ``n`` messages."""

    def __init__(self, log: HardwareLog) -> None:
        self.log = log

    def send(self, t: float, messages: int, coverage: bool) -> bool:
        """One radio wake-up at ``t`` carrying ``messages``; False (and charged) without
        coverage."""
        if not coverage:
            self.log.failed_connections.append(t)
            return False
        self.log.connections.append((t, messages))
        return True


@dataclass
class ShiftEnergy:
    """Battery charge used in one shift, per component, in mAh (and the totals)."""

    duration_s: float
    gnss_mah: float
    modem_mah: float
    mcu_mah: float
    battery: BatteryParams

    @property
    def total_mah(self) -> float:
        return self.gnss_mah + self.modem_mah + self.mcu_mah

    @property
    def total_mwh(self) -> float:
        return self.total_mah * self.battery.nominal_v

    @property
    def mean_ma(self) -> float:
        return self.total_mah / (self.duration_s / 3600) if self.duration_s else 0.0

    @property
    def battery_life_h(self) -> float:
        """Hours a full cell lasts at this shift's mean current."""
        return self.battery.capacity_mah / self.mean_ma if self.mean_ma else float("inf")


def modem_charge_mas(params: ModemParams, connections: list[tuple[float, int]],
                     failed: list[float], duration_s: float) -> tuple[float, float]:
    """Modem charge in mA·s for connections at the given times (sorted or not), and the
    seconds spent exchanging data or searching (the MCU is awake for those).

    A connection that starts while the previous one's connected tail is still running needs no
    new set-up (the RRC connection is still up) and cuts that tail short; this is why a report
    every 10 s keeps an LTE-M modem connected all shift. Failed attempts (no coverage) overlap
    in the same way: a modem cannot search more than all the time.
    """
    charge = 0.0
    busy_s = 0.0  # seconds out of PSM
    work_s = 0.0
    previous_end = None  # end of the previous data exchange
    for t, messages in sorted(connections):
        data_s = params.per_message_s * messages
        if previous_end is not None and t < previous_end + params.tail_s:
            gap = max(0.0, t - previous_end)
            charge += gap * params.tail_ma
            busy_s += gap
            t_start = max(t, previous_end)
        else:
            if previous_end is not None:
                charge += params.tail_s * params.tail_ma + params.idle_s * params.idle_ma
                busy_s += params.tail_s + params.idle_s
            data_s += params.setup_s
            t_start = t
        charge += data_s * params.active_ma
        busy_s += data_s
        work_s += data_s
        previous_end = t_start + data_s
    if previous_end is not None:
        charge += params.tail_s * params.tail_ma + params.idle_s * params.idle_ma
        busy_s += params.tail_s + params.idle_s
    failed = sorted(failed)
    for k, t in enumerate(failed):
        search_s = params.failed_attempt_s
        if k + 1 < len(failed):
            search_s = min(search_s, failed[k + 1] - t)
        charge += search_s * params.search_ma
        busy_s += search_s
        work_s += search_s
    charge += max(0.0, duration_s - busy_s) * params.psm_ma
    return charge, work_s


def mcu_active_s(log: HardwareLog, hw: Hardware = DEFAULT_HARDWARE) -> float:
    """Seconds the MCU is awake: while the receiver is on (it reads the receiver's stream:
    :class:`McuParams`), for each message built, and while the modem exchanges data or
    searches (AT commands, MQTT); asleep otherwise."""
    _, radio_s = modem_charge_mas(hw.modem, log.connections, log.failed_connections,
                                  log.duration_s)
    active_s = log.gnss_on_s + log.messages * hw.mcu.per_message_s + radio_s
    return min(active_s, log.duration_s)


def shift_energy(log: HardwareLog, hw: Hardware = DEFAULT_HARDWARE) -> ShiftEnergy:
    """Battery charge for everything in ``log``."""
    g, m, mcu = hw.gnss, hw.modem, hw.mcu
    off_s = max(0, log.duration_s - log.gnss_on_s)
    gnss = (log.gnss_acquisition_s * g.acquisition_ma + log.gnss_tracking_s * g.tracking_ma
            + off_s * g.backup_ma)
    modem, _ = modem_charge_mas(m, log.connections, log.failed_connections, log.duration_s)
    active_s = mcu_active_s(log, hw)
    mcu_mas = active_s * mcu.active_ma + (log.duration_s - active_s) * mcu.light_sleep_ma
    return ShiftEnergy(log.duration_s, gnss / 3600, modem / 3600, mcu_mas / 3600, hw.battery)
