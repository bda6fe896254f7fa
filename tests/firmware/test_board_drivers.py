"""Board drivers with the hardware replaced by its register map or its documented behaviour:
fuel gauge and ADC divider, RTC from GNSS time, watchdog, light sleep, LED states.

Portable (pytest and the MicroPython unix port, which has no I2C, RTC or watchdog to drive).
"""

import asyncio

from drivers import battery, clock, indicator
from drivers.sleep import LightSleep
from drivers.watchdog import Watchdog
from tracker.compat import ticks_diff, ticks_ms
from tracker.nmea import days_from_civil


class Max17048Registers:
    """An I2C bus with a MAX17048 at 0x36 holding the given 16-bit registers (big-endian)."""

    def __init__(self, regs, present=True):
        self.regs = regs
        self.present = present

    def readfrom_mem_into(self, address, register, buf):
        if not self.present or address != 0x36:
            raise OSError(19)  # ENODEV, as machine.I2C raises for a missing device
        value = self.regs[register]
        buf[0] = value >> 8
        buf[1] = value & 0xFF


def test_fuel_gauge_registers_as_the_datasheet_scales_them():
    regs = {0x02: 0xC350, 0x04: 0x5780, 0x08: 0x0012, 0x16: 0x0030}
    gauge = battery.Max17048(Max17048Registers(regs))
    assert gauge.present()
    assert gauge.millivolts() == 3906  # 0xC350 x 78.125 µV
    assert gauge.percent() == 87  # 0x57 %, the low byte is 1/256 %
    assert gauge.charging()  # CRATE +48 x 0.208 %/h
    regs[0x16] = 0xFFD0  # -48: discharging
    regs[0x04] = 0x6500  # 101 %: reported full
    assert not gauge.charging() and gauge.percent() == 100


def test_a_missing_gauge_reads_as_unknown_not_a_crash():
    gauge = battery.Max17048(Max17048Registers({}, present=False))
    assert not gauge.present()
    assert (gauge.percent(), gauge.millivolts(), gauge.charging()) == (-1, -1, False)
    assert gauge.errors == 3


class Adc:
    def __init__(self, value):
        self.value = value

    def read_u16(self):
        return self.value


class Pin:
    def __init__(self, level=1):
        self.level = level
        self.history = []

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v
        self.history.append(v)


def test_adc_divider_and_the_lipo_curve():
    # 3.3 V full scale, 100k/100k: the pin sees half the cell.
    cell = battery.AdcBattery(Adc(65535 * 1950 // 3300), 100, 100, charge_pin=Pin(1))
    assert 3895 <= cell.millivolts() <= 3900
    assert cell.percent() == 74
    assert not cell.charging()
    assert battery.percent_from_mv(4250) == 100 and battery.percent_from_mv(3200) == 0
    assert battery.percent_from_mv(3750) == 40
    assert battery.AdcBattery(Adc(0), 100, 100, charge_pin=Pin(0)).charging()


class Rtc:
    """machine.RTC: datetime() reads, datetime(tuple) sets."""

    def __init__(self, now=(2000, 1, 1, 5, 0, 0, 0, 0)):
        self.now = now

    def datetime(self, value=None):
        if value is None:
            return self.now
        self.now = value


def test_rtc_tuples_round_trip_and_weekdays():
    assert clock.rtc_tuple(0) == (1970, 1, 1, 3, 0, 0, 0, 0)  # a Thursday
    t = 1796379330  # 2026-12-04 10:15:30 UTC, a Friday
    assert clock.rtc_tuple(t) == (2026, 12, 4, 4, 10, 15, 30, 0)
    for t in (951782400, 4107542399, 1709164800 + 86399):  # 29 Feb 2000, 2100 eve, 29 Feb 2024
        assert clock.rtc_seconds(clock.rtc_tuple(t)) == t
    for days in range(-1000, 50000, 97):
        y, m, d = clock.civil_from_days(days)
        assert days_from_civil(y, m, d) == days


def test_the_rtc_follows_gnss_time_and_gives_time_after_a_reboot():
    rtc = Rtc()
    gnss_clock = clock.GnssClock(rtc)
    assert gnss_clock.now_s() == 0  # never set: no time rather than year 2000
    assert gnss_clock.sync(1796379330)
    assert gnss_clock.now_s() == 1796379330
    assert not gnss_clock.sync(1796379331)  # within 2 s: left alone
    assert not gnss_clock.sync(86400)  # not a plausible GNSS time
    after_reboot = clock.GnssClock(rtc)
    assert after_reboot.now_s() == 1796379330 and gnss_clock.sets == 1


class Wdt:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


def test_watchdog_is_fed_only_while_the_main_loop_kicks():
    wdt = Wdt()
    dog = Watchdog(wdt, stale_ms=100)
    dog.kick()
    assert dog.feed_if_alive() and wdt.feeds == 1

    async def stall():
        await asyncio.sleep(0.2)

    asyncio.run(stall())
    assert not dog.feed_if_alive() and wdt.feeds == 1 and dog.withheld == 1
    dog.kick()
    assert dog.feed_if_alive() and wdt.feeds == 2


def test_light_sleep_when_idle_and_ordinary_sleep_when_busy():
    slept = []
    dog = Watchdog(Wdt(), stale_ms=100000)
    idle = LightSleep(slept.append, dog, chunk_ms=150, min_ms=50)
    asyncio.run(idle.pause(0.4, lambda: False))  # the fake lightsleep returns at once:
    assert slept and all(ms <= 150 for ms in slept)  # chunks until ticks say time is up
    assert dog.fed == len(slept)
    slept.clear()
    assert asyncio.run(idle.pause(0.3, lambda: True)) == 0  # busy: nothing counted asleep
    assert slept == [] and idle.awake_ms >= 300


def test_light_sleep_reports_the_time_really_slept():
    def nap(ms):
        t = ticks_ms()
        while ticks_diff(ticks_ms(), t) < ms:
            pass

    idle = LightSleep(nap, chunk_ms=100, min_ms=50)
    slept = asyncio.run(idle.pause(0.35, lambda: False))
    assert 250 <= slept <= 400 and idle.slept_ms == slept
    # Busy for the whole pause: awake, and the next pause adds to the total.
    assert asyncio.run(idle.pause(0.1, lambda: True)) == 0
    assert idle.slept_ms == slept
    # A wake source (the board's lightsleep returns true) ends the whole pause early.
    woken = LightSleep(lambda ms: True, chunk_ms=100, min_ms=50)
    t = ticks_ms()
    asyncio.run(woken.pause(5, lambda: False))
    assert ticks_diff(ticks_ms(), t) < 1000


def test_indicator_states_most_urgent_first():
    s = indicator.state_of
    now = 1796379330
    assert s(True, True, 5, False, now, now) == indicator.IDLE  # docked: the dock shows it
    assert s(False, True, 10, False, now, now) == indicator.BATTERY_LOW
    assert s(False, True, 10, True, now, now) == indicator.TRACKING  # charging: not "low"
    assert s(False, False, 80, False, now, now) == indicator.NOT_SIGNED_OUT
    assert s(False, True, 80, False, now, now - 31) == indicator.NO_FIX
    assert s(False, True, 80, False, now, 0) == indicator.NO_FIX
    assert s(False, True, -1, False, now, now - 5) == indicator.TRACKING  # no gauge: not low
    assert [len(p) % 2 for p in indicator.LED_PATTERNS] == [0, 0, 0, 0]


def test_indicator_blinks_the_pattern_of_the_state():
    led = Pin(0)
    buzzer = Pin(0)
    ind = indicator.Indicator(led, buzzer)
    calls = []

    def get_state():
        calls.append(1)
        if len(calls) > 2:
            raise SystemExit  # stop the loop after two cycles
        return indicator.NOT_SIGNED_OUT

    try:
        asyncio.run(ind.run(get_state))
    except SystemExit:
        pass
    assert led.history == [1, 0, 0] * 2
    assert buzzer.history == [1, 0, 1, 0, 1, 0]  # three beeps, once per 30 s
