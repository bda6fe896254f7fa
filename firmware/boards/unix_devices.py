"""The unix board's optional devices: the bench clock (``--time-scale``), the modem
(``--modem``), the GNSS module's driver (``--gnss-module``), the dock's serial link (``--dock``)
and the fuel gauge (``--battery``).

A module of its own so that a run which names none of them (the memory test's, most benches')
never loads this code nor the drivers' names: ``boards.unix.main`` imports it only when the
settings ask for one, and drops it once the devices are built (docs/memory.md).
"""

import asyncio


def open_raw(path):
    """The serial device ``path`` (a tty: a pseudo-terminal from a simulator) opened for
    reading and writing in raw mode with VMIN=0. MicroPython's ``readinto`` reads until the
    buffer is full on a blocking tty; with VMIN=0 it returns what has arrived, so the event loop
    never waits inside a read (a frame cut short by unplugging must not freeze it). Anything
    that is not a tty (a test double on a pipe) is opened as it is."""
    f = open(path, "r+b")
    try:
        import termios

        fd = f.fileno()
        termios.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[6][5] = 0  # VTIME
        attrs[6][6] = 0  # VMIN
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except Exception:  # not a tty
        pass
    return f


def open_modem(path, settings, log=print, ca_pem=None):
    """A :class:`drivers.modem_sim7080.Modem` on the serial device ``path`` (:func:`open_raw`),
    with the tracker's settings dict (``apn``, PSM/eDRX timers); its ``open_connection`` is the
    tracker's. ``ca_pem``: the broker's CA, for TLS in the modem."""
    from drivers.modem_sim7080 import Modem

    return Modem(asyncio.StreamReader(open_raw(path)), settings, log, ca_pem)


def start(cfg, serial):
    """Build the devices the settings ``cfg`` name, before the core is imported (the bench
    clock must be in place first); returns them as ``tracker.app.Ports`` attributes (a dict).
    ``serial``: the GNSS line (``boards.unix.SerialLines``)."""
    ports = {}
    scale = cfg.get("time_scale") or 1
    if scale > 1:  # a bench: the firmware's clock runs faster (before the core reads it)
        from boards import unix_clock

        unix_clock.install(scale)
    if cfg["modem"]:
        ca_pem = None
        if cfg["ca"]:  # TLS in the modem: no mbedTLS in the tracker's heap
            with open(cfg["ca"], "rb") as f:
                ca_pem = f.read()
        if not cfg["apn"]:
            cfg["apn"] = "internet"  # the simulated modem takes any APN
        modem = open_modem(cfg["modem"], cfg, print, ca_pem)
        ports["open_connection"] = modem.open_connection
        ports["radio"] = modem
        # As on the cellular board: the radio sleeps between uploads, so while the receiver
        # is off nothing can arrive and the MCU light-sleeps (here: the process blocks).
        from boards.unix_clock import light_sleep
        from drivers.sleep import LightSleep

        ports["idle"] = LightSleep(light_sleep(scale, serial.tty()))
    if cfg["gnss_module"] != "nmea":  # UBX or PMTK set-up, and the receiver off between fixes
        from drivers.gnss_module import GnssModule

        module = GnssModule(cfg["gnss_module"], serial, cfg["gnss_rate_ms"])
        ports["gnss_module"] = module
        ports["gnss_power"] = module
    if cfg["dock"] or cfg["battery"]:  # the dock port and the fuel gauge
        from boards.dock_serial import DockSerial, FileBattery

        ports["dock"] = DockSerial(cfg["dock"]) if cfg["dock"] else None
        ports["battery"] = FileBattery(cfg["battery"]) if cfg["battery"] else None
    return ports
