"""Board file for the MicroPython unix port: a serial device or file, sockets, a state folder.

Wiring only: it builds the ports and hands them, with the settings dict of
``tracker.config``, to ``tracker.app.run``. Run it as::

    micropython main.py --gps /dev/pts/3 --broker 127.0.0.1:1883 --device-id T-0001 \
        --state /var/lib/hotspots/T-0001 [--station main] [--exit-on-eof] [--report-s 10] \
        [--user T-0001 --password SECRET] [--tls-ca ca.pem] [--dock /dev/pts/5] \
        [--sampling adaptive|fixed] [--battery FILE] [--gnss-module ublox|mtk|nmea]
        [--modem /dev/pts/7 [--apn NAME]] [--time-scale K]

or with the settings in a board's ``config.json`` (options given as well override it)::

    micropython main.py --config config.json [--state DIR]

As on a board, a ``config.json`` in the state folder (where the dock writes it when the tracker
is enrolled) is read first when no ``--config`` is given: ``--gps X --state DIR`` then starts
the tracker with its provisioned settings. A relative ``ca`` in a file is in that file's folder.

``--dock``: the dock's serial link (the tracker then tracks only when signed out and out of the
dock, see ``tracker/dock.py``); ``--battery``: a simulated fuel gauge (``boards/dock_serial.py``);
``--modem``: reach the broker through a SIM7080G on that serial device
(``drivers/modem_sim7080.py``; ``simulators/modem.py`` is one on a pseudo-terminal) instead of the
host's sockets; the MCU then light-sleeps while the receiver is off and nothing is due (the
process blocks, ``boards/unix_clock.py``). ``--time-scale K``: the firmware's clock runs K
times faster than the host's, for benches whose simulators are paced to match.
"""

import asyncio
import sys

from boards.storage import DirStorage


class SerialLines:
    """GNSS lines from a tty (switched to raw mode) or from a recorded file; ``write`` sends
    the module driver's commands to a tty (to a file they go nowhere: it is a recording)."""

    def __init__(self, path):
        self._f = open(path, "rb")
        self._out = None
        try:
            import termios

            termios.setraw(self._f.fileno())
        except Exception:  # a plain file, not a tty
            pass
        else:
            self._out = open(path, "wb")  # unbuffered on MicroPython: each write goes out
        self._stream = asyncio.StreamReader(self._f)

    def write(self, data):
        if self._out is not None:
            try:
                self._out.write(data)
            except OSError:  # the module's end hung up: as a module that does not answer
                pass

    def tty(self):
        """The tty (for a light sleep to wake on its hang-up), or None for a recording."""
        return self._f if self._out is not None else None

    async def readline(self):
        try:
            return await self._stream.readline()
        except OSError:  # EIO: the other end of the pseudo-terminal hung up
            return b""


def parse_args(argv):
    """The settings dict of ``tracker.config`` from the command line (``boards.unix_args``,
    dropped again once it has answered: it is boot-time code)."""
    from boards import unix_args

    try:
        return unix_args.parse(argv)
    finally:
        drop("boards.unix_args")


def drop(name):
    """Forget the module ``name`` (``package.module``) so the GC can take its bytecode."""
    sys.modules.pop(name, None)
    package, _, attr = name.rpartition(".")
    parent = sys.modules.get(package)
    if parent is not None and hasattr(parent, attr):
        delattr(parent, attr)


def tls_opener(path):
    """An ``open_connection`` that speaks TLS and checks the broker's certificate against the CA
    in the PEM file ``path``, by the host name or IP address it was asked to reach."""
    try:
        # MicroPython's built-in TLS module: ``ssl`` is a Python wrapper around it that costs
        # 1 KB of heap for a keyword argument (docs/memory.md).
        import tls
    except ImportError:  # CPython
        import ssl as tls

    import binascii

    with open(path, "rb") as f:
        pem = f.read()
    # The first certificate of the PEM file as DER bytes (what both TLS stacks accept).
    body = pem.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END", 1)[0]
    der = binascii.a2b_base64(b"".join(body.split()))
    context = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    context.verify_mode = tls.CERT_REQUIRED
    # MicroPython's mbedTLS wants DER (its cafile path rejects PEM); CPython takes DER too.
    if tls.__name__ == "tls":
        context.load_verify_locations(der)  # positional only
    else:
        context.load_verify_locations(cadata=der)

    async def open_connection(host, port):
        return await asyncio.open_connection(host, port, ssl=context, server_hostname=host)

    return open_connection


def main(argv):
    import gc

    cfg = parse_args(argv)
    # The settings were built above tracker.config's bytecode, now dropped: collected, the
    # copy lands in the lowest free space and the old dict no longer splits the freed region.
    # Then the core: loaded after the boot-time code, it fills those holes rather than leaving
    # them between itself and the fence set's arrays (a city-sized set needs large contiguous
    # blocks of a 220 KB heap: tests/test_fences_on_device.py).
    gc.collect()
    cfg = dict(cfg)
    gc.collect()
    serial = SerialLines(cfg["gnss_device"])
    devices = None
    if (cfg.get("time_scale") or 1) > 1 or cfg["modem"] or cfg["gnss_module"] != "nmea" or (
            cfg["dock"] or cfg["battery"]):
        # The bench clock, the modem, the module driver, the dock: their wiring is loaded only
        # when the settings name one, and dropped once they are built (boards.unix_devices).
        from boards import unix_devices

        devices = unix_devices.start(cfg, serial)
        drop("boards.unix_devices")
    from tracker import app

    # With a modem, TLS runs in the modem (boards.unix_devices): no mbedTLS context here.
    opener = tls_opener(cfg["ca"]) if cfg["ca"] and not cfg["modem"] else asyncio.open_connection
    ports = app.Ports(serial, opener, DirStorage(cfg["state_dir"]))
    if devices:
        for name in devices:
            setattr(ports, name, devices[name])
    asyncio.run(app.run(ports, cfg))
