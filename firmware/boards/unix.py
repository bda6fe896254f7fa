"""Board file for the MicroPython unix port: a serial device or file, sockets, a state folder.

Wiring only: it builds the ports and hands them, with the settings dict of
``tracker.config``, to ``tracker.app.run``. Run it as::

    micropython main.py --gps /dev/pts/3 --broker 127.0.0.1:1883 --device-id T-0001 \
        --state /var/lib/hotspots/T-0001 [--station main] [--exit-on-eof] [--report-s 10] \
        [--user T-0001 --password SECRET] [--tls-ca ca.pem] [--dock /dev/pts/5] \
        [--sampling adaptive|fixed] [--battery FILE] [--gnss-module ublox|mtk|nmea]
        [--modem /dev/pts/7 [--apn NAME]]

or with the settings in a board's ``config.json`` (options given as well override it)::

    micropython main.py --config config.json [--state DIR]

As on a board, a ``config.json`` in the state folder (where the dock writes it when the tracker
is enrolled) is read first when no ``--config`` is given: ``--gps X --state DIR`` then starts
the tracker with its provisioned settings. A relative ``ca`` in a file is in that file's folder.

``--dock``: the dock's serial link (the tracker then tracks only when signed out and out of the
dock, see ``tracker/dock.py``); ``--battery``: a simulated fuel gauge (``boards/dock_serial.py``);
``--modem``: reach the broker through a SIM7080G on that serial device
(``drivers/modem_sim7080.py``; ``simulators/modem.py`` is one on a pseudo-terminal) instead of the
host's sockets.
"""

import asyncio
import json
import sys

from boards.storage import DirStorage
from tracker import app

_USAGE = ("usage: main.py (--config FILE | --gps PATH --broker HOST:PORT --device-id ID) "
          "--state DIR [options]")
# command-line option -> settings key (tracker.config); every other option is its own key
_OPTION_KEYS = {"gps": "gnss_device", "tls_ca": "ca", "state": "state_dir"}
_INT_KEYS = ("report_s", "broker_port", "gnss_baud", "gnss_rate_ms", "psm_tau_s", "psm_active_s",
             "edrx_s", "register_timeout_s")


class SerialLines:
    """GNSS lines from a tty (switched to raw mode) or from a recorded file; ``write`` sends
    the module driver's commands to a tty (to a file they go nowhere: it is a recording)."""

    def __init__(self, path):
        self._file = open(path, "rb")
        self._out = None
        try:
            import termios

            termios.setraw(self._file.fileno())
        except Exception:  # a plain file, not a tty
            pass
        else:
            self._out = open(path, "wb")  # unbuffered on MicroPython: each write goes out
        self._stream = asyncio.StreamReader(self._file)

    def write(self, data):
        if self._out is not None:
            try:
                self._out.write(data)
            except OSError:  # the module's end hung up: as a module that does not answer
                pass

    async def readline(self):
        try:
            return await self._stream.readline()
        except OSError:  # EIO: the other end of the pseudo-terminal hung up
            return b""


def parse_args(argv):
    """The settings dict of ``tracker.config`` from the command line (and ``--config FILE``).

    Exits with the usage line on a malformed command line, and with the configuration error
    (which never shows a secret) on a setting that cannot run.
    """
    values = {}
    path = None
    i = 0
    while i < len(argv):
        name = argv[i]
        if name == "--exit-on-eof":
            values["exit_on_eof"] = True
            i += 1
            continue
        if i + 1 >= len(argv) or not name.startswith("--"):
            raise SystemExit(_USAGE)
        key = name[2:].replace("-", "_")
        value = argv[i + 1]
        i += 2
        if key == "config":
            path = value
        elif key == "broker":
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit():
                raise SystemExit("--broker must be HOST:PORT, got %r" % value)
            values["broker_host"] = host
            values["broker_port"] = int(port)
        else:
            key = _OPTION_KEYS.get(key, key)
            if key in _INT_KEYS:
                if not value.isdigit():
                    raise SystemExit("--%s must be a whole number, got %r" % (name[2:], value))
                value = int(value)
            values[key] = value
    if path is None and values.get("state_dir"):
        path = values["state_dir"] + "/config.json"  # tracker.config.FILE, as a board reads it
        try:
            open(path).close()
        except OSError:
            path = None  # not enrolled: the command line is all there is
    if path is not None:
        try:
            with open(path) as f:
                loaded = json.loads(f.read())
        except (OSError, ValueError) as exc:
            raise SystemExit("%s: %s" % (path, exc))
        if not isinstance(loaded, dict):
            raise SystemExit("%s: not a JSON object" % path)
        ca = loaded.get("ca")
        if isinstance(ca, str) and ca and not ca.startswith("/"):
            cut = path.rfind("/")  # beside the file (tracker.config.beside)
            loaded["ca"] = ca if cut < 0 else path[:cut + 1] + ca
        loaded.update(values)
        values = loaded
    if not values.get("gnss_device") or not values.get("state_dir"):
        raise SystemExit(_USAGE)
    return settings(values)


def settings(values):
    """``tracker.config.build(values)``, then the config module is dropped again: its bytecode
    is heap on the unix port (several KB), needed once at boot and never after."""
    from tracker import config

    try:
        return config.build(values)
    except config.ConfigError as exc:
        raise SystemExit("configuration: %s" % exc)
    finally:
        sys.modules.pop("tracker.config", None)
        import tracker

        if hasattr(tracker, "config"):
            delattr(tracker, "config")


def pem_to_der(pem):
    """The first certificate of a PEM file as DER bytes (what both TLS stacks accept)."""
    import binascii

    body = pem.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END", 1)[0]
    return binascii.a2b_base64(b"".join(body.split()))


def tls_opener(ca_path):
    """An ``open_connection`` that speaks TLS and checks the broker's certificate against the CA
    in ``ca_path`` (a PEM file), by the host name or IP address it was asked to reach."""
    import ssl

    with open(ca_path, "rb") as f:
        der = pem_to_der(f.read())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    # MicroPython's mbedTLS wants DER (its cafile path rejects PEM); CPython takes DER too.
    context.load_verify_locations(cadata=der)

    async def open_connection(host, port):
        return await asyncio.open_connection(host, port, ssl=context, server_hostname=host)

    return open_connection


def open_modem(path, settings, log=print, ca_pem=None):
    """A :class:`drivers.modem_sim7080.Modem` on the serial device ``path`` (raw mode), with
    the tracker's settings dict (``apn``, PSM/eDRX timers); its ``open_connection`` is the
    tracker's. ``ca_pem``: the broker's CA, for TLS in the modem."""
    from drivers.modem_sim7080 import Modem

    uart = open(path, "r+b")
    try:
        import termios

        fd = uart.fileno()
        termios.setraw(fd)
        # VMIN=0: MicroPython's readinto reads until the buffer is full on a blocking tty; with
        # VMIN=0 it returns what has arrived, so the event loop never waits inside a read.
        attrs = termios.tcgetattr(fd)
        attrs[6][5] = 0  # VTIME
        attrs[6][6] = 0  # VMIN
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except Exception:  # not a tty
        pass
    return Modem(asyncio.StreamReader(uart), settings, log, ca_pem)


def main(argv):
    cfg = parse_args(argv)
    opener = tls_opener(cfg["ca"]) if cfg["ca"] else asyncio.open_connection
    modem = None
    if cfg["modem"]:
        ca_pem = None
        if cfg["ca"]:  # TLS in the modem: no mbedTLS in the tracker's heap
            with open(cfg["ca"], "rb") as f:
                ca_pem = f.read()
        if not cfg["apn"]:
            cfg["apn"] = "internet"  # the simulated modem takes any APN
        modem = open_modem(cfg["modem"], cfg, print, ca_pem)
        opener = modem.open_connection
    serial = SerialLines(cfg["gnss_device"])
    ports = app.Ports(serial, opener, DirStorage(cfg["state_dir"]), radio=modem)
    if cfg["gnss_module"] != "nmea":  # UBX or PMTK set-up, and the receiver off between fixes
        from drivers.gnss_module import GnssModule

        module = GnssModule(cfg["gnss_module"], serial, cfg["gnss_rate_ms"])
        ports.gnss_module = module
        ports.gnss_power = module
    if cfg["dock"] or cfg["battery"]:  # the dock port and the fuel gauge
        from boards.dock_serial import DockSerial, FileBattery

        ports.dock = DockSerial(cfg["dock"]) if cfg["dock"] else None
        ports.battery = FileBattery(cfg["battery"]) if cfg["battery"] else None
    asyncio.run(app.run(ports, cfg))
