"""What the ESP32-S3 and Pico W boards wire the same way: a UART as the GNSS line source, the
network link, the broker's address resolved before the event loop, TLS, and the board tasks.

Board-side only (``machine``, ``network``, ``socket``, ``ssl``): ``firmware/boards/esp32s3.py``
and ``firmware/boards/picow.py`` call these with their pins. Type-checked against the official
port stubs (``make typecheck``), never imported on the unix port.
"""

import asyncio
import time

import machine

from tracker import app, config
from tracker.compat import ticks_diff, ticks_ms

_WIFI_TIMEOUT_MS = 20000
_DNS_TRIES = 3


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


def wifi_up(cfg, log):
    """Join the configured Wi-Fi network (blocking, before the event loop); the WLAN object.

    The password is never logged. On timeout it returns anyway: the tracker records fixes
    offline and the connection is retried by :func:`opener` before each broker connection.
    """
    import network

    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(cfg["wifi_ssid"], cfg["wifi_password"] or "")
        start = ticks_ms()
        while not wlan.isconnected() and ticks_diff(ticks_ms(), start) < _WIFI_TIMEOUT_MS:
            time.sleep_ms(100)
    log("wifi: %s %s" % (cfg["wifi_ssid"], "connected" if wlan.isconnected() else
                         "not connected yet (status %s)" % (wlan.status(),)))
    return wlan


def resolve(host, port, log):
    """The broker's IPv4 address, looked up now, before the event loop: a DNS query inside it
    (``socket.getaddrinfo`` blocks) would stop GNSS parsing for seconds. Falls back to the name
    (looked up at connect time) if DNS does not answer yet."""
    import socket

    for _ in range(_DNS_TRIES):
        try:
            address = socket.getaddrinfo(host, port)[0][-1]
        except OSError:
            time.sleep_ms(500)
            continue
        ip = address[0] if isinstance(address, tuple) else host
        log("dns: %s is %s" % (host, ip))
        return ip
    log("dns: %s did not resolve yet; resolving at connect time" % host)
    return host


def opener(cfg, ip, wlan=None):
    """``open_connection(host, port)`` for the MQTT client: to the address resolved before the
    loop, with TLS checked against the configured CA by the broker's *name*, after rejoining
    Wi-Fi if it dropped."""
    context = None
    if cfg["ca"]:
        import ssl

        with open(cfg["ca"], "rb") as f:
            der = _pem_to_der(f.read())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # Required: MicroPython's client context verifies nothing by default (verify_mode 0,
        # checked on the unix port). The port stubs lack the attribute; the ports have it.
        context.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]
        context.load_verify_locations(cadata=der)

    async def open_connection(host, port):
        if wlan is not None and not wlan.isconnected():
            wlan.connect(cfg["wifi_ssid"], cfg["wifi_password"] or "")
            for _ in range(150):
                if wlan.isconnected():
                    break
                await asyncio.sleep(0.1)
        if context is None:
            return await asyncio.open_connection(ip, port)
        return await asyncio.open_connection(ip, port, ssl=context, server_hostname=host)

    return open_connection


def _pem_to_der(pem):
    import binascii

    body = pem.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END", 1)[0]
    return binascii.a2b_base64(b"".join(body.split()))


def device_id_default():
    """``machine.unique_id()`` in hex: the device id when ``config.json`` names none."""
    import binascii

    return binascii.hexlify(machine.unique_id()).decode()


def load_settings(path="config.json"):
    """The settings dict from flash; a bad file stops the boot with the reason on the console
    (the REPL shows it; the LED stays dark)."""
    return config.load_file(path, device_id_default())


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
