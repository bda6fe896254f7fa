"""What the ESP32-S3 and Pico W boards wire the same way: the state folder and the settings in
it, a UART as the GNSS line source, the link (Wi-Fi or the SIM7080G modem, with TLS), and the
board tasks.

Board-side only (``machine``, ``network``, ``socket``, ``ssl``): ``firmware/boards/esp32s3.py``
and ``firmware/boards/picow.py`` call these with their pins. Type-checked against the official
port stubs (``make typecheck``), never imported on the unix port.
"""

import asyncio

import machine

from boards.storage import DirStorage
from tracker import app, config

#: The tracker's flash folder: outbox, fence set, dock state, and its settings (``config.json``
#: with ``ca.pem`` beside it), which the dock writes there when the tracker is enrolled and
#: ``hotspots firmware bundle --config`` puts there at flashing. The one place settings live.
STATE_DIR = "/state"


class UartLines:
    """The GNSS module's UART as the tracker's line source (``async readline``) and the module
    driver's ``write``. The UART's own receive buffer holds a whole epoch's burst."""

    def __init__(self, uart):
        self.uart = uart
        self._stream = asyncio.StreamReader(uart)

    async def readline(self):
        return await self._stream.readline()

    def write(self, data):
        self.uart.write(data)


def gnss_uart(cfg, uart_id, tx, rx):
    """The GNSS UART: the settings' number, pins and baud over the board's default wiring."""
    return machine.UART(
        cfg["gnss_uart"] if cfg["gnss_uart"] is not None else uart_id,
        baudrate=cfg["gnss_baud"],
        tx=machine.Pin(cfg["gnss_tx"] if cfg["gnss_tx"] is not None else tx),
        rx=machine.Pin(cfg["gnss_rx"] if cfg["gnss_rx"] is not None else rx),
        rxbuf=2048,  # one second of a multi-GNSS burst at 9600 baud is under 1 KB
    )


def wifi_link(cfg, log):
    """The Wi-Fi radio (:class:`drivers.wifi.WiFi`): it joins inside the event loop (never
    blocking it), rejoins with backoff, resolves the broker once per join and switches the radio
    off between uploads; its ``open_connection`` speaks TLS when ``ca`` is set, checked against
    the broker's *name* (the driver dials the address it resolved)."""
    import random
    import socket

    import network

    from drivers.wifi import WiFi

    context = tls_context(cfg)
    name = cfg["broker_host"]

    async def open_tcp(address, port):
        if context is None:
            return await asyncio.open_connection(address, port)
        return await asyncio.open_connection(address, port, ssl=context, server_hostname=name)

    return WiFi(network.WLAN(network.STA_IF), cfg, socket.getaddrinfo, open_tcp,
                lambda: random.getrandbits(16), log)


def modem_link(cfg, uart, power_key, log):
    """The SIM7080G (:class:`drivers.modem_sim7080.Modem`) on ``uart``: DNS and sockets in the
    modem, TLS in the modem against ``ca`` (its PEM is uploaded to the modem at bring-up, so no
    mbedTLS in the tracker's heap), ``power_key`` to wake it from PSM."""
    from drivers.modem_sim7080 import Modem

    return Modem(asyncio.StreamReader(uart), cfg, log, read_ca(cfg), power_key)


def read_ca(cfg):
    """The CA certificate (PEM bytes) named by ``ca``, or None without TLS."""
    if not cfg["ca"]:
        return None
    with open(cfg["ca"], "rb") as f:
        return f.read()


def tls_context(cfg):
    """An ``ssl.SSLContext`` that requires the broker's certificate to be signed by ``ca``, or
    None without TLS."""
    pem = read_ca(cfg)
    if pem is None:
        return None
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Required: MicroPython's client context verifies nothing by default (verify_mode 0,
    # checked on the unix port). The port stubs lack the attribute; the ports have it.
    context.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]
    context.load_verify_locations(cadata=_pem_to_der(pem))
    return context


def _pem_to_der(pem):
    import binascii

    body = pem.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END", 1)[0]
    return binascii.a2b_base64(b"".join(body.split()))


def device_id_default():
    """``machine.unique_id()`` in hex: the device id when ``config.json`` names none."""
    import binascii

    return binascii.hexlify(machine.unique_id()).decode()


def storage(state_dir=STATE_DIR):
    """The storage port over the state folder."""
    return DirStorage(state_dir)


def load_settings(state_dir=STATE_DIR):
    """The settings dict from ``config.json`` in the state folder (a relative ``ca`` is in that
    folder too); a bad file stops the boot with the reason on the console (the REPL shows it;
    the LED stays dark)."""
    return config.load_file(state_dir + "/" + config.FILE, device_id_default())


def dock_link(io=None):
    """The dock's serial link (``drivers.dock_usb``): the console's USB CDC, or ``io`` (a
    stream read and written both, e.g. a test's pseudo-terminal)."""
    from drivers.dock_usb import DockUsb, console

    return console() if io is None else DockUsb(io, io)


def serve_until_enrolled(reason, state_dir=STATE_DIR, dock_io=None, log=print, reset=None):
    """No usable settings (a board flashed without ``config.json``, or a bad one): the tracker
    cannot start, so only the dock service runs (``tracker.dock``: ``ID``, ``PING``, the
    provisioning frames), answering as ``machine.unique_id()`` in hex, until ``hotspots enrol``
    has written ``config.json``; then the board resets and boots with it. No watchdog yet:
    nothing here can stall but the wait for the dock."""
    from tracker.compat import ticks_ms
    from tracker.dock import DockLink
    from tracker.outbox import Outbox

    log("no settings (%s): waiting to be enrolled at the dock" % reason)
    link = DockLink(app.Tracker(device_id_default(), Outbox(None), None), storage(state_dir))
    link.load()
    dock = dock_link(dock_io)

    async def serve():
        written = False
        while True:
            if written:  # the settings are in flash: restart once the gateway is done
                try:
                    line = await asyncio.wait_for(dock.readline(), 2)
                except asyncio.TimeoutError:
                    return
            else:
                line = await dock.readline()
            if not line:
                await asyncio.sleep(1)  # no host on the USB yet
                continue
            reply = link.handle_line(line, ticks_ms())
            if reply is not None:
                dock.write(reply)
            if link.provisioned and not written:
                written = True
                log("dock: settings written, restarting with them")

    asyncio.run(serve())
    (machine.reset if reset is None else reset)()


def repl_requested(pressed, log):
    """True when the boot button is held at start: ``main`` then returns before the tracker
    (and its watchdog, which no port can stop) starts, leaving the REPL to ``mpremote``."""
    if pressed:
        log("boot button held: not starting the tracker, REPL free")
    return pressed


def boot(pressed, build, state_dir=STATE_DIR, check=None):
    """A board's ``main``: leave the REPL free if the boot button is held (``pressed``), else
    load the settings (or serve the dock until enrolled), ``check`` them for this board (raises
    ``config.ConfigError``) and run the tracker on ``build(cfg, state_dir=...)``'s ports."""
    if repl_requested(pressed, print):
        return
    try:
        cfg = load_settings(state_dir)
    except config.ConfigError as e:  # not enrolled yet (or a bad file): the dock can fix it
        serve_until_enrolled(str(e), state_dir)
        return
    if check is not None:
        check(cfg)
    run(build(cfg, state_dir=state_dir), cfg)


def indicator_task(indicator, battery):
    """A ``Ports.tasks`` entry: the LED/buzzer shows the tracker's state."""
    from drivers.indicator import state_of

    def start(tracker):
        def get_state():
            pct = battery.percent() if battery is not None else -1
            charging = battery.charging() if battery is not None else False
            return state_of(tracker.docked, tracker.tracking(), pct, charging,
                            tracker.now_s(), tracker.last_fix_t)

        return indicator.run(get_state)

    return start


def watchdog_task(watchdog):
    """A ``Ports.tasks`` entry: feed the hardware watchdog while the main loop kicks it."""

    def start(tracker):
        return watchdog.run()

    return start


def run(ports, cfg):
    """Start the tracker's event loop (never returns on a board)."""
    asyncio.run(app.run(ports, cfg))
