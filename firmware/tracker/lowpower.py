"""Code only a board with a modem or a GNSS module driver runs: the radio's sleep between
uploads and the module's set-up. ``tracker.app.run`` imports it on first use, so a board
without them never has this bytecode in its heap (docs/memory.md).
"""

import asyncio

from tracker.compat import const

# Indexes into ``tracker.app.run``'s state list (the same values as there).
_S_EOF = const(0)
_S_RADIO_OFF = const(14)
_S_STATUS_DUE = const(2)


async def sleep(ports, client, tracker, state, wake):
    """Between uploads: end the MQTT session cleanly (no will), switch the radio off, and wait
    until something is due again. The broker keeps the session (clean=False), so fence sets
    and commands published meanwhile arrive at the next connect."""
    await client.disconnect()
    try:
        await ports.radio.sleep()
    except OSError as exc:  # the link is down anyway: the reconnect finds out
        ports.log("radio: sleep failed: %r" % (exc,))
    else:
        tracker.meter.radio_slept()
        state[_S_RADIO_OFF] = True  # the MCU may light-sleep now (read_gnss)
    while not (state[_S_EOF] or state[_S_STATUS_DUE] or tracker.upload_due()):
        if ports.watchdog is not None:
            ports.watchdog.kick()  # asleep on purpose is progress, as the idle loop's waits are
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), 1)
        except asyncio.TimeoutError:
            pass
    state[_S_RADIO_OFF] = False


async def configure_gnss(module, log, state, wake):
    """Set the module up while the reader already parses what it sends; then report."""
    await module.configure(log)
    state[_S_STATUS_DUE] = True
    wake.set()
