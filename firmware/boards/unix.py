"""Board file for the MicroPython unix port: a serial device or file, sockets, a state folder.

Wiring only: it builds the ports and hands them to ``tracker.app.run``. Run it as::

    micropython main.py --gps /dev/pts/3 --broker 127.0.0.1:1883 --device-id T-0001 \
        --state /var/lib/hotspots/T-0001 [--station main] [--exit-on-eof] [--report-s 10] \
        [--user T-0001 --password SECRET] [--tls-ca ca.pem] [--dock /dev/pts/5] \
        [--sampling adaptive|fixed]
        [--battery FILE] [--modem /dev/pts/7 [--apn NAME]]

``--dock``: the dock's serial link (the tracker then tracks only when signed out and out of the
dock, see ``tracker/dock.py``); ``--battery``: a simulated fuel gauge (``boards/dock_serial.py``);
``--modem``: reach the broker through a SIM7080G on that serial device
(``drivers/modem_sim7080.py``; ``simulators/modem.py`` is one on a pseudo-terminal) instead of the
host's sockets.
"""

import asyncio

from boards.storage import DirStorage
from tracker import app

_USAGE = "usage: main.py --gps PATH --broker HOST:PORT --device-id ID --state DIR"


class SerialLines:
    """GNSS lines from a tty (switched to raw mode) or from a recorded file."""

    def __init__(self, path):
        self._file = open(path, "rb")
        try:
            import termios

            termios.setraw(self._file.fileno())
        except Exception:  # a plain file, not a tty
            pass
        self._stream = asyncio.StreamReader(self._file)

    async def readline(self):
        try:
            return await self._stream.readline()
        except OSError:  # EIO: the other end of the pseudo-terminal hung up
            return b""


def parse_args(argv):
    """Options as a dict; exits with the usage line on anything unknown."""
    opts = {"station": "main", "exit_on_eof": False, "report_s": 10, "sampling": "adaptive",
            "user": None,
            "password": None}
    i = 0
    while i < len(argv):
        name = argv[i]
        if name == "--exit-on-eof":
            opts["exit_on_eof"] = True
            i += 1
            continue
        if i + 1 >= len(argv) or not name.startswith("--"):
            raise SystemExit(_USAGE)
        opts[name[2:].replace("-", "_")] = argv[i + 1]
        i += 2
    for required in ("gps", "broker", "device_id", "state"):
        if required not in opts:
            raise SystemExit(_USAGE)
    return opts


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
    opts = parse_args(argv)
    host, port = opts["broker"].rsplit(":", 1)
    opener = tls_opener(opts["tls_ca"]) if opts.get("tls_ca") else asyncio.open_connection
    modem = None
    if opts.get("modem"):
        ca_pem = None
        if opts.get("tls_ca"):  # TLS in the modem: no mbedTLS in the tracker's heap
            with open(opts["tls_ca"], "rb") as f:
                ca_pem = f.read()
        modem = open_modem(opts["modem"], {"apn": opts.get("apn", "internet")}, print, ca_pem)
        opener = modem.open_connection
    ports = app.Ports(SerialLines(opts["gps"]), opener, DirStorage(opts["state"]), radio=modem)
    if opts.get("dock") or opts.get("battery"):  # the dock port and the fuel gauge
        from boards.dock_serial import DockSerial, FileBattery

        ports.dock = DockSerial(opts["dock"]) if opts.get("dock") else None
        ports.battery = FileBattery(opts["battery"]) if opts.get("battery") else None
    asyncio.run(app.run(ports, opts["device_id"], host, int(port), opts["station"],
                        opts["exit_on_eof"], int(opts["report_s"]), opts["user"],
                        opts["password"], opts["sampling"]))
