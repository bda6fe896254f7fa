"""Energy counters: what the tracker really did with its power-hungry parts.

The energy model (``simulators/energy.py``) prices hardware activity; these counters are that
activity as the firmware saw it, so a shift's cost can be computed from a real run instead of
from what a strategy intended. Plain integers, updated in place (no allocation after
construction); durations are ``ticks_ms`` deltas summed with ``ticks_diff``, so the tick
counter wrapping does not matter (a 32-bit board's small ints hold 12 days of milliseconds).

The byte and connection counts are the MQTT client's (``tracker.mqtt.MQTTClient``: bytes
written to and read from the link, MQTT connections made); the fix count is the tracker's.
"""

from tracker.compat import ticks_diff


class Meter:
    """Receiver on-time, MCU sleep and radio wake-ups, from the clock.

    The MCU counts as asleep only while the board's ``idle`` really light-sleeps (its
    ``pause`` returns how long); an asyncio wait is awake time, as it is on a board.

    :param now_ms: ``ticks_ms()`` at boot: the receiver and the MCU count as on from here
    """

    def __init__(self, now_ms):
        self.start_ms = now_ms
        self.gnss_on_ms = 0  # closed on-periods of the receiver
        self._gnss_since = now_ms  # start of the open on-period, or -1 while off
        self.sleep_ms = 0  # MCU in light sleep (the board's ``idle``, receiver off)
        self.radio_sleeps = 0  # the radio switched off between uploads
        self.wakeups = 0  # connections that had to wake the radio first

    def gnss_off(self, now_ms):
        """The receiver was switched off at ``now_ms``."""
        if self._gnss_since >= 0:
            self.gnss_on_ms += ticks_diff(now_ms, self._gnss_since)
            self._gnss_since = -1

    def gnss_on(self, now_ms):
        """The receiver was switched on at ``now_ms``."""
        if self._gnss_since < 0:
            self._gnss_since = now_ms

    def radio_slept(self):
        """The radio was switched off; the next connection wakes it."""
        self.radio_sleeps += 1

    def connected(self):
        """A connection was made: a wake-up if the radio had been switched off."""
        if self.wakeups < self.radio_sleeps:
            self.wakeups += 1

    def receiver_ms(self, now_ms):
        """Receiver on-time up to ``now_ms``."""
        if self._gnss_since >= 0:
            return self.gnss_on_ms + ticks_diff(now_ms, self._gnss_since)
        return self.gnss_on_ms

    def up_ms(self, now_ms):
        """Time since boot."""
        return ticks_diff(now_ms, self.start_ms)
