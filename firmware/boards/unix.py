"""Board file for the MicroPython unix port: a serial device or file, sockets, a state folder.

Wiring only: it builds the ports and hands them to ``tracker.app.run``. Run it as::

    micropython main.py --gps /dev/pts/3 --broker 127.0.0.1:1883 --device-id T-0001 \
        --state /var/lib/hotspots/T-0001 [--station main] [--exit-on-eof] [--report-s 10] \
        [--user T-0001 --password SECRET] [--tls-ca ca.pem]
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
    opts = {"station": "main", "exit_on_eof": False, "report_s": 10, "user": None,
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


def tls_opener(ca_path):
    """An ``open_connection`` that speaks TLS and checks the broker's certificate against the CA
    in ``ca_path`` (a PEM file), by the host name or IP address it was asked to reach."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=ca_path)

    async def open_connection(host, port):
        return await asyncio.open_connection(host, port, ssl=context, server_hostname=host)

    return open_connection


def main(argv):
    opts = parse_args(argv)
    host, port = opts["broker"].rsplit(":", 1)
    opener = tls_opener(opts["tls_ca"]) if opts.get("tls_ca") else asyncio.open_connection
    ports = app.Ports(SerialLines(opts["gps"]), opener, DirStorage(opts["state"]))
    asyncio.run(app.run(ports, opts["device_id"], host, int(port), opts["station"],
                        opts["exit_on_eof"], int(opts["report_s"]), opts["user"],
                        opts["password"]))
