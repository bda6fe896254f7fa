"""One LED (and optionally a buzzer) telling the officer and the station what the tracker is
doing, from four states, most urgent first:

* ``battery low`` (below 15 %, not charging): 1 Hz blink; buzzer chirp once a minute;
* ``not signed out``: out of the dock but not assigned to an officer, so it does not track:
  fast blink; three beeps every 30 s, so whoever took it notices;
* ``no fix``: tracking but no valid fix for 30 s: double flash every 2 s;
* ``tracking``: a short flash every 5 s (a visible heartbeat that costs little).

Patterns are ``(on_ms, off_ms, ...)`` cycles; :func:`state_of` is pure and tested.
"""

import asyncio

from tracker.compat import const

TRACKING = const(0)
NO_FIX = const(1)
BATTERY_LOW = const(2)
NOT_SIGNED_OUT = const(3)
NAMES = ("tracking", "no fix", "battery low", "not signed out")
IDLE = const(-1)  # docked: the dock's own LEDs speak; ours stays dark

LED_PATTERNS = (
    (50, 4950),  # tracking
    (100, 150, 100, 1650),  # no fix
    (500, 500),  # battery low
    (100, 100),  # not signed out
)
# (beep_ms, gap_ms, beeps, every_ms) per state; None: silent
BUZZER_PATTERNS = (None, None, (80, 0, 1, 60000), (150, 150, 3, 30000))
_LOW_PCT = const(15)
_NO_FIX_S = const(30)


def state_of(docked, tracking, battery_pct, charging, now_s, last_fix_s):
    """The state to show (``IDLE`` while docked)."""
    if docked:
        return IDLE
    if 0 <= battery_pct < _LOW_PCT and not charging:
        return BATTERY_LOW
    if not tracking:
        return NOT_SIGNED_OUT
    if not last_fix_s or now_s - last_fix_s > _NO_FIX_S:
        return NO_FIX
    return TRACKING


class Indicator:
    """Drives ``led`` (``value(0/1)``, e.g. ``machine.Pin``) and ``buzzer`` (same, or a PWM
    wrapper with ``value``) by the state ``get_state()`` returns, checked once a cycle."""

    def __init__(self, led, buzzer=None):
        self.led = led
        self.buzzer = buzzer
        self.state = IDLE
        self._beeped_ms = None

    async def run(self, get_state):
        while True:
            self.state = get_state()
            if self.state == IDLE:
                self.led.value(0)
                await asyncio.sleep(1)
                continue
            if self.buzzer is not None:
                await self._beep()
            pattern = LED_PATTERNS[self.state]
            for i in range(len(pattern)):
                self.led.value(1 - i % 2)
                await asyncio.sleep(pattern[i] / 1000)
            self.led.value(0)

    async def _beep(self):
        from tracker.compat import ticks_diff, ticks_ms

        pattern = BUZZER_PATTERNS[self.state]
        if pattern is None:
            return
        beep_ms, gap_ms, beeps, every_ms = pattern
        now = ticks_ms()
        if self._beeped_ms is not None and ticks_diff(now, self._beeped_ms) < every_ms:
            return
        self._beeped_ms = now
        for _ in range(beeps):
            self.buzzer.value(1)
            await asyncio.sleep(beep_ms / 1000)
            self.buzzer.value(0)
            await asyncio.sleep(gap_ms / 1000)
