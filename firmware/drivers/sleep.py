"""Light sleep while the tracker has nothing to do.

When the sampling policy switches the GNSS receiver off (``tracker.app``: the receiver is off for
``policy.off_s``) and no upload or dock exchange is due, the CPU has nothing to do either:
``machine.lightsleep(ms)`` stops it with RAM and peripherals' state kept (ESP32-S3 about 240 µA
against about 20-40 mA idling at 80-240 MHz; RP2040 a few mA against about 20 mA), and the event
loop resumes where it was. A sleep is cut into chunks no longer than the hardware watchdog
allows, feeding it between chunks, and it is skipped (an ordinary ``asyncio.sleep``) whenever
``busy()`` says something is due (an upload, a dock on the line), because nothing else runs
during a light sleep.
"""

import asyncio

from tracker.compat import ticks_add, ticks_diff, ticks_ms


class LightSleep:
    """``pause`` for ``tracker.app.Ports.idle``.

    :param lightsleep: ``machine.lightsleep`` (takes milliseconds; a true result means a wake
        source ended it early and the pause ends too)
    :param watchdog: ``drivers.watchdog.Watchdog`` to feed between chunks, or None
    :param chunk_ms: longest single light sleep (below the watchdog's timeout)
    :param min_ms: below this a light sleep is not worth its wake-up cost
    """

    def __init__(self, lightsleep, watchdog=None, chunk_ms=5000, min_ms=200):
        self.lightsleep = lightsleep
        self.watchdog = watchdog
        self.chunk_ms = chunk_ms
        self.min_ms = min_ms
        self.slept_ms = 0
        self.awake_ms = 0

    async def pause(self, seconds, busy):
        """Wait ``seconds``, in light sleep whenever ``busy()`` is false; returns the
        milliseconds spent in light sleep (the tracker's meter counts only those as asleep)."""
        end = ticks_add(ticks_ms(), int(seconds * 1000))
        slept = 0
        while True:
            left = ticks_diff(end, ticks_ms())
            if left <= 0:
                self.slept_ms += slept
                return slept
            if busy() or left < self.min_ms:
                step = left if left < 1000 else 1000
                await asyncio.sleep(step / 1000)
                self.awake_ms += step
                continue
            step = left if left < self.chunk_ms else self.chunk_ms
            t = ticks_ms()  # (ticks run on through a light sleep, on both boards)
            woken = self.lightsleep(step)
            slept += ticks_diff(ticks_ms(), t)
            if woken:  # a board's wake source fired (the unix port: the GNSS line hung up)
                end = ticks_ms()
            if self.watchdog is not None:
                self.watchdog.kick()  # the loop is alive: it chose to sleep
                self.watchdog.feed_if_alive()
            await asyncio.sleep(0)  # let the other tasks see the time that passed
