"""The unix port's clock and light sleep, optionally running faster than the host's clock.

``light_sleep(scale)`` is the unix port's ``machine.lightsleep``: the process blocks (in
``time.sleep``, or ``poll`` on the GNSS line), so nothing else runs, as on a board
(``drivers.sleep.LightSleep`` calls it only when nothing is due).

With ``scale`` > 1 (``--time-scale``, for benches) the firmware's time runs ``scale`` times
faster than the host's, so a whole patrol plays in minutes: everything the firmware times goes
through ``tracker.compat`` (ticks) and asyncio's sleeps and timeouts, and :func:`install`
replaces those, before the core is imported, by versions that divide durations by ``scale``
and multiply elapsed ticks by it. The simulators on the other side of the serial lines must be
paced to the same clock (``simulators.firmware_energy``: the GNSS module simulator plays
``scale`` times faster, the modem simulator's registration delay is divided by it). What
cannot be scaled is the host: a millisecond of real work or I/O latency counts as ``scale``
milliseconds of firmware time, so awake time is overstated, never understated.
"""

import asyncio
import time


def light_sleep(scale=1, wake=None):
    """``lightsleep(ms)`` for ``drivers.sleep.LightSleep``, in firmware milliseconds.

    ``wake``: a file whose hang-up ends the sleep early (true result), as a wake pin would on a
    board: the GNSS line, so that a replayed stream's end is noticed at once, not at the end
    of the receiver's off time (up to an hour)."""
    if wake is None:
        return lambda ms: time.sleep_us(ms * 1000 // scale)
    import select

    poller = select.poll()
    poller.register(wake, 0)  # no events asked: only a hang-up (or an error) is reported

    def lightsleep(ms):
        return bool(poller.poll(ms // scale))

    return lightsleep


def install(scale):
    """Run the firmware's clock ``scale`` times faster (call before importing the core)."""
    from tracker import compat

    t0 = time.ticks_us()
    # The scaled ticks start at 0 and, on the 64-bit port, never wrap within a run.
    compat.ticks_ms = lambda: time.ticks_diff(time.ticks_us(), t0) * scale // 1000
    compat.ticks_diff = lambda a, b: a - b
    compat.ticks_add = lambda a, b: a + b
    sleep, sleep_ms = asyncio.sleep, asyncio.sleep_ms
    wait_for, wait_for_ms = asyncio.wait_for, asyncio.wait_for_ms
    asyncio.sleep = lambda s: sleep(s / scale)
    asyncio.sleep_ms = lambda ms: sleep_ms(ms // scale)
    asyncio.wait_for = lambda aw, s: wait_for(aw, s / scale)
    asyncio.wait_for_ms = lambda aw, ms: wait_for_ms(aw, ms // scale)
