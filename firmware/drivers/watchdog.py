"""The hardware watchdog, fed only while the tracker's main loop makes progress.

The main loop calls :meth:`Watchdog.kick` on every pass (at least once a second when idle). A task
feeds the hardware watchdog (``machine.WDT``) every second, but only if the last kick is newer
than ``stale_ms``. So a wedged event loop (nothing runs) resets the board after the hardware
timeout, and a main loop stuck in one await for longer than ``stale_ms`` (a modem that never
answers, a deadlock) resets it too, while a single slow TCP connect over LTE-M (up to 30 s)
does not. The RP2040's watchdog cannot wait longer than 8.3 s, hence the separate feeding task.
"""

import asyncio

from tracker.compat import ticks_diff, ticks_ms


class Watchdog:
    """:param wdt: object with ``feed()`` (``machine.WDT(timeout=...)``), or None to count only
    :param stale_ms: longest time without a kick that still feeds the hardware"""

    def __init__(self, wdt, stale_ms=120000):
        self.wdt = wdt
        self.stale_ms = stale_ms
        self._kicked = ticks_ms()
        self.fed = 0
        self.withheld = 0

    def kick(self):
        """The main loop made progress."""
        self._kicked = ticks_ms()

    def feed_if_alive(self):
        """Feed the hardware if the main loop kicked recently; True if fed."""
        if ticks_diff(ticks_ms(), self._kicked) > self.stale_ms:
            self.withheld += 1
            return False
        if self.wdt is not None:
            self.wdt.feed()
        self.fed += 1
        return True

    async def run(self, period_ms=1000):
        while True:
            self.feed_if_alive()
            await asyncio.sleep(period_ms / 1000)
