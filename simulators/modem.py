"""A SIM7080G-like cellular modem on a pseudo-terminal, carrying its sockets to real TCP.

It answers exactly the AT subset ``firmware/drivers/modem_sim7080.py`` uses, in the formats of
the SIM7070/SIM7080/SIM7090 Series AT Command Manual: ``AT``, ``ATE0/1``, ``AT+CPIN?``,
``AT+CFUN=0|1`` (and ``?``), ``AT+CGDCONT``, ``AT+CNCFG``, ``AT+CPSMS`` (and ``?``),
``AT+CEDRXS``, ``AT+CEREG?``, ``AT+CNACT=0,0|1`` (and ``?``, with the ``+APP PDP`` URC),
``AT+CDNSGIP`` (answered by a URC), ``AT+CASTATE?``, ``AT+CAOPEN``, ``AT+CASEND`` (``>``
prompt, then exactly the announced bytes), ``AT+CARECV``, ``AT+CACLOSE``, and the
``+CADATAIND`` and ``+CASTATE`` URCs; for TLS in the modem, ``AT+CFSINIT``/``AT+CFSWFILE``
(``DOWNLOAD`` prompt)/``AT+CFSTERM``, ``AT+CSSLCFG`` and ``AT+CASSLCFG``: the socket is then
wrapped in real TLS (Python's ``ssl``), checked against the CA the driver uploaded. Anything
else is ``ERROR`` and counted.

A socket the firmware opens is a real TCP connection from this process (to the test's
Mosquitto), so the bytes on the wire are what the broker sees. The network is modelled only as
far as the driver and the energy work need: a registration delay after ``AT+CFUN=1``, PSM (the
modem goes to sleep by itself when PSM timers are set and nothing happened for the active time;
the next command wakes it), and counters — wake-ups, sleeps, seconds with the radio on, bytes
each way — written to a JSON file the energy model can read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import ssl
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from simulators.gps import PseudoTerminal

MAX_SOCKETS = 13  # cids 0..12, as the SIM7080
MAX_PIECE = 1460  # largest AT+CASEND / AT+CARECV


@dataclass
class ModemCounters:
    """What the modem did, for tests and the energy model."""

    at_commands: int = 0
    unknown_commands: int = 0
    errors: int = 0
    registrations: int = 0
    wake_ups: int = 0  # CFUN=0 -> 1, or a command that ended PSM
    sleeps: int = 0  # CFUN=0 entries
    psm_entries: int = 0
    radio_on_s: float = 0.0  # CFUN=1 and not in PSM
    sockets_opened: int = 0
    bytes_up: int = 0  # device -> broker
    bytes_down: int = 0  # broker -> device
    dns_queries: int = 0
    ignored_in_psm: int = 0  # commands sent while the UART slept (pwrkey_wake)
    commands: dict[str, int] = field(default_factory=dict)


class _Socket:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.pending = bytearray()  # received from the peer, not yet read with AT+CARECV
        self.peer_closed = False


class SimulatedModem:
    """The modem: a pseudo-terminal for the firmware, a thread that answers it.

    :param register_delay_s: seconds from ``AT+CFUN=1`` until ``+CEREG`` says registered
    :param deny: the network refuses registration (``+CEREG: 0,3``)
    :param dns: host name -> address overrides (others go to this machine's resolver)
    :param stats_path: where to keep the counters as JSON (rewritten when they change)
    :param psm_time_scale: PSM active time is divided by this (a test need not wait minutes)
    :param delays: command name (``"+CEREG"``) -> seconds the modem takes before answering it
        (it is busy meanwhile, as a real one is during a network procedure)
    :param pwrkey_wake: in PSM the UART is off, as on the real module: commands are lost
        (counted in ``ignored_in_psm``) until :meth:`pwrkey` is pulsed; without it, the next
        command wakes the modem (the firmware on the unix port has no pin to pulse)
    """

    def __init__(self, register_delay_s: float = 1.0, deny: bool = False,
                 dns: dict[str, str] | None = None, stats_path: str | Path | None = None,
                 psm_time_scale: float = 1.0, delays: dict[str, float] | None = None,
                 pwrkey_wake: bool = False) -> None:
        self.terminal = PseudoTerminal(blocking=False)
        self.path = self.terminal.path
        self.register_delay_s = register_delay_s
        self.deny = deny
        self.dns = dict(dns or {})
        self.stats_path = Path(stats_path) if stats_path else None
        self.psm_time_scale = psm_time_scale
        self.delays = dict(delays or {})
        self.pwrkey_wake = pwrkey_wake
        self.counters = ModemCounters()
        self.echo = True
        self.cfun = 1
        self.cfun_at = time.monotonic()
        self.apn = ""
        self.psm: tuple[str, str] | None = None
        self.edrx = ""
        self.pdp_active = False
        self.in_psm = False
        self.sockets: dict[int, _Socket] = {}
        self._inbuf = bytearray()
        self._send_cid: int | None = None
        self._send_left = 0
        self._send_buf = bytearray()
        self._download: str | None = None  # file being written by AT+CFSWFILE
        self.fs_open = False
        self.files: dict[str, bytes] = {}  # the customer file system (AT+CFSWFILE dir 3)
        self.ssl_version = 0
        self.ssl_cids: dict[int, str] = {}  # cid -> CA file name, for AT+CASSLCFG SSL 1
        self._last_activity = time.monotonic()
        self._last_tick = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stats_written = ""

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimulatedModem:
        self._thread = threading.Thread(target=self._serve, name="sim-modem", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for s in list(self.sockets.values()):
            with contextlib.suppress(OSError):
                s.sock.close()
        self.sockets.clear()
        self._write_stats()
        self.terminal.hang_up()

    def __enter__(self) -> SimulatedModem:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the loop ----------------------------------------------------------------------------
    def _serve(self) -> None:
        controller = self.terminal.controller
        while not self._stop.is_set():
            fds = [controller] + [s.sock for s in self.sockets.values() if not s.peer_closed]
            try:
                readable, _, _ = select.select(fds, [], [], 0.05)
            except (OSError, ValueError):
                readable = []
            for fd in readable:
                if fd == controller:
                    try:
                        data = os.read(controller, 4096)
                    except BlockingIOError:
                        continue
                    except OSError:  # nobody has the device end open right now
                        time.sleep(0.05)
                        continue
                    with self._lock:
                        self._input(data)
                else:
                    with self._lock:
                        self._peer_data(fd)
            with self._lock:
                self._tick()

    def _tick(self) -> None:
        now = time.monotonic()
        if self.cfun == 1 and not self.in_psm:
            self.counters.radio_on_s += now - self._last_tick
        self._last_tick = now
        if (self.psm and self.cfun == 1 and not self.in_psm and not self.sockets
                and self._registered()):
            active_s = _timer_s(self.psm[1], _ACTIVE_UNITS) or 0
            if now - self._last_activity >= active_s / self.psm_time_scale:
                self.in_psm = True
                self.counters.psm_entries += 1
                self._emit(b"\r\nENTER PSM\r\n")
        self._write_stats()

    def _write_stats(self) -> None:
        if self.stats_path is None:
            return
        doc = asdict(self.counters)
        doc["radio_on_s"] = round(doc["radio_on_s"], 1)
        text = json.dumps(doc, sort_keys=True)
        if text != self._stats_written:
            tmp = self.stats_path.with_suffix(".tmp")
            tmp.write_text(text + "\n")
            os.replace(tmp, self.stats_path)
            self._stats_written = text

    def _emit(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.terminal.write(data)

    def _answer(self, *lines: bytes | str, ok: bool = True) -> None:
        out = b""
        for line in lines:
            out += b"\r\n" + (line.encode() if isinstance(line, str) else line) + b"\r\n"
        out += b"\r\nOK\r\n" if ok else b"\r\nERROR\r\n"
        if not ok:
            self.counters.errors += 1
        self._emit(out)

    # -- from the firmware -------------------------------------------------------------------
    def _input(self, data: bytes) -> None:
        self._inbuf += data
        while self._inbuf:
            if self._send_cid is not None or self._download is not None:
                # the bytes announced by AT+CASEND or AT+CFSWFILE
                take = self._inbuf[: self._send_left]
                del self._inbuf[: len(take)]
                self._send_buf += take
                self._send_left -= len(take)
                if self._send_left:
                    return
                self._finish_send()
                continue
            end = -1
            for i, b in enumerate(self._inbuf):
                if b in (13, 10):
                    end = i
                    break
            if end < 0:
                if len(self._inbuf) > 4096:
                    self._inbuf.clear()
                return
            line = bytes(self._inbuf[:end])
            del self._inbuf[: end + 1]
            if not line.strip():
                continue
            if self.echo:
                self._emit(line + b"\r")
            self._command(line.decode(errors="replace").strip())

    def pwrkey(self) -> None:
        """A PWRKEY pulse from the host: ends PSM (the UART answers again)."""
        with self._lock:
            self._last_activity = time.monotonic()
            if self.in_psm:
                self.in_psm = False
                self.counters.wake_ups += 1
                self._emit(b"\r\nEXIT PSM\r\n")

    def _command(self, line: str) -> None:
        if self.in_psm and self.pwrkey_wake:
            self.counters.ignored_in_psm += 1  # the UART is off: nobody hears it
            return
        self.counters.at_commands += 1
        self._last_activity = time.monotonic()
        if self.in_psm:  # on hardware, the host's PWRKEY pulse; here, the command itself
            self.in_psm = False
            self.counters.wake_ups += 1
            self._emit(b"\r\nEXIT PSM\r\n")
        upper = line.upper()
        if not upper.startswith("AT"):
            self._unknown(line)
            return
        body = line[2:]
        name = re.match(r"[+&]?[A-Z]*\d?", body.upper()).group(0) if body else ""
        self.counters.commands[name or "AT"] = self.counters.commands.get(name or "AT", 0) + 1
        handler = _HANDLERS.get(name.upper())
        if name.upper() in self.delays:
            time.sleep(self.delays[name.upper()])
        if name.upper() in ("E0", "E1"):
            self.echo = name.upper() == "E1"
            self._answer()
            return
        if body == "":
            self._answer()
            return
        if handler is None:
            self._unknown(line)
            return
        handler(self, body[len(name):])

    def _unknown(self, line: str) -> None:
        self.counters.unknown_commands += 1
        self._answer(ok=False)

    # -- registration and the data link --------------------------------------------------------
    def _registered(self) -> bool:
        return (self.cfun == 1 and not self.deny
                and time.monotonic() - self.cfun_at >= self.register_delay_s)

    def _cpin(self, rest: str) -> None:
        self._answer("+CPIN: READY") if rest == "?" else self._answer(ok=False)

    def _cfun(self, rest: str) -> None:
        if rest == "?":
            self._answer(f"+CFUN: {self.cfun}")
            return
        m = re.fullmatch(r"=([01])(,[01])?", rest)
        if not m:
            self._answer(ok=False)
            return
        value = int(m.group(1))
        if value == 0 and self.cfun == 1:
            self.counters.sleeps += 1
            self._drop_link()
        elif value == 1 and self.cfun == 0:
            self.counters.wake_ups += 1
            self.cfun_at = time.monotonic()
        self.cfun = value
        self._answer()

    def _drop_link(self) -> None:
        self.pdp_active = False
        for cid in list(self.sockets):
            self._close(cid)

    def _cgdcont(self, rest: str) -> None:
        m = re.fullmatch(r'=1,"IP","([^"]*)"', rest)
        if m:
            self.apn = m.group(1)
        self._answer(ok=bool(m))

    def _cncfg(self, rest: str) -> None:
        m = re.fullmatch(r'=0,1,"([^"]*)"(,.*)?', rest)
        self._answer(ok=bool(m) and m.group(1) == self.apn)

    def _cpsms(self, rest: str) -> None:
        if rest == "?":
            if self.psm:
                self._answer(f'+CPSMS: 1,,,"{self.psm[0]}","{self.psm[1]}"')
            else:
                self._answer("+CPSMS: 0")
            return
        if rest == "=0":
            self.psm = None
            self._answer()
            return
        m = re.fullmatch(r'=1,,,"([01]{8})","([01]{8})"', rest)
        if m:
            self.psm = (m.group(1), m.group(2))
        self._answer(ok=bool(m))

    def _cedrxs(self, rest: str) -> None:
        m = re.fullmatch(r'=([01]),([45]),"([01]{4})"', rest)
        if m:
            self.edrx = m.group(3) if m.group(1) == "1" else ""
        self._answer(ok=bool(m))

    def _cereg(self, rest: str) -> None:
        if rest != "?":
            self._answer(ok=rest in ("=0",))
            return
        if self.cfun == 0:
            stat = 0
        elif self.deny:
            stat = 3
        else:
            stat = 1 if self._registered() else 2
        self._answer(f"+CEREG: 0,{stat}")

    def _cnact(self, rest: str) -> None:
        if rest == "?":
            ip = '"10.64.0.2"' if self.pdp_active else '"0.0.0.0"'
            self._answer(f"+CNACT: 0,{int(self.pdp_active)},{ip}",
                         '+CNACT: 1,0,"0.0.0.0"')
            return
        m = re.fullmatch(r"=0,([01])", rest)
        if not m:
            self._answer(ok=False)
            return
        if m.group(1) == "1":
            if not self._registered() or not self.apn:
                self._answer(ok=False)
                return
            self._answer()
            if not self.pdp_active:
                self.counters.registrations += 1
            self.pdp_active = True
            self._emit(b"\r\n+APP PDP: 0,ACTIVE\r\n")
        else:
            self._drop_link()
            self._answer()
            self._emit(b"\r\n+APP PDP: 0,DEACTIVE\r\n")

    def _cdnsgip(self, rest: str) -> None:
        m = re.fullmatch(r'="([^"]+)"(,\d+,\d+)?', rest)
        if not m or not self.pdp_active:
            self._answer(ok=False)
            return
        self._answer()
        host = m.group(1)
        self.counters.dns_queries += 1
        address = self.dns.get(host)
        if address is None:
            try:
                address = socket.gethostbyname(host)
            except OSError:
                address = None
        if address is None:
            self._emit(b"\r\n+CDNSGIP: 0,8\r\n")
        else:
            self._emit(f'\r\n+CDNSGIP: 1,"{host}","{address}"\r\n'.encode())

    # -- sockets -----------------------------------------------------------------------------
    # -- files and TLS ------------------------------------------------------------------------
    def _cfsinit(self, rest: str) -> None:
        self.fs_open = rest == ""
        self._answer(ok=self.fs_open)

    def _cfsterm(self, rest: str) -> None:
        ok = rest == "" and self.fs_open
        self.fs_open = False
        self._answer(ok=ok)

    def _cfswfile(self, rest: str) -> None:
        m = re.fullmatch(r'=3,"([^"]+)",0,(\d+),(\d+)', rest)
        if not m or not self.fs_open or not 1 <= int(m.group(2)) <= 10240:
            self._answer(ok=False)
            return
        self._download = m.group(1)
        self._send_left = int(m.group(2))
        self._send_buf = bytearray()
        self._emit(b"\r\nDOWNLOAD\r\n")

    def _csslcfg(self, rest: str) -> None:
        m = re.fullmatch(r'="sslversion",0,([0-3])', rest)
        if m:
            self.ssl_version = int(m.group(1))
            self._answer()
            return
        m = re.fullmatch(r'="convert",2,"([^"]+)"', rest)
        if m and m.group(1) in self.files and b"BEGIN CERTIFICATE" in self.files[m.group(1)]:
            self._answer()
            return
        self._answer(ok=False)

    def _casslcfg(self, rest: str) -> None:
        m = re.fullmatch(r'=(\d+),"SSL",([01])', rest)
        if m:
            cid = int(m.group(1))
            if m.group(2) == "1":
                self.ssl_cids.setdefault(cid, "")
            else:
                self.ssl_cids.pop(cid, None)
            self._answer()
            return
        m = re.fullmatch(r'=(\d+),"CACERT","([^"]+)"', rest)
        if m and int(m.group(1)) in self.ssl_cids and m.group(2) in self.files:
            self.ssl_cids[int(m.group(1))] = m.group(2)
            self._answer()
            return
        self._answer(ok=False)

    def _connect(self, cid: int, host: str, port: int) -> socket.socket:
        address = self.dns.get(host, host)
        sock = socket.create_connection((address, port), timeout=5)
        ca_name = self.ssl_cids.get(cid)
        if ca_name is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_verify_locations(cadata=self.files.get(ca_name, b"").decode())
            sock = context.wrap_socket(sock, server_hostname=host)  # verifies the name
        sock.setblocking(False)
        return sock

    def _caopen(self, rest: str) -> None:
        m = re.fullmatch(r'=0,(\d+),"TCP","([^"]+)",(\d+)(,\d+)?', rest)
        if not m or not self.pdp_active:
            self._answer(ok=False)
            return
        cid, host, port = int(m.group(1)), m.group(2), int(m.group(3))
        if cid >= MAX_SOCKETS or cid in self.sockets:
            self._answer(ok=False)
            return
        try:
            sock = self._connect(cid, host, port)
        except OSError:  # ssl.SSLError (a certificate that does not verify) included
            self._answer(f"+CAOPEN: {cid},1")  # result 1: socket error
            return
        self.sockets[cid] = _Socket(sock)
        self.counters.sockets_opened += 1
        self._answer(f"+CAOPEN: {cid},0")

    def _casend(self, rest: str) -> None:
        m = re.fullmatch(r"=(\d+),(\d+)(,\d+)?", rest)
        if not m:
            self._answer(ok=False)
            return
        cid, n = int(m.group(1)), int(m.group(2))
        s = self.sockets.get(cid)
        if s is None or s.peer_closed or not 1 <= n <= MAX_PIECE:
            self._answer(ok=False)
            return
        self._send_cid = cid
        self._send_left = n
        self._send_buf = bytearray()
        self._emit(b"\r\n> ")

    def _finish_send(self) -> None:
        if self._download is not None:
            self.files[self._download] = bytes(self._send_buf)
            self._download = None
            self._answer()
            return
        cid, data = self._send_cid, bytes(self._send_buf)
        self._send_cid = None
        s = self.sockets.get(cid)
        try:
            if s is None:
                raise OSError("closed")
            s.sock.setblocking(True)
            s.sock.sendall(data)
            s.sock.setblocking(False)
        except OSError:
            self._answer(ok=False)
            return
        self.counters.bytes_up += len(data)
        self._answer()

    def _carecv(self, rest: str) -> None:
        m = re.fullmatch(r"=(\d+),(\d+)", rest)
        s = self.sockets.get(int(m.group(1))) if m else None
        if s is None:
            self._answer(ok=False)
            return
        n = min(int(m.group(2)), MAX_PIECE, len(s.pending))
        data = bytes(s.pending[:n])
        del s.pending[:n]
        self.counters.bytes_down += n
        if n:
            self._emit(b"\r\n+CARECV: %d," % n + data + b"\r\n\r\nOK\r\n")
        else:
            self._answer("+CARECV: 0")

    def _castate(self, rest: str) -> None:
        if rest != "?":
            self._answer(ok=False)
            return
        self._answer(*(f"+CASTATE: {cid},{0 if s.peer_closed else 1}"
                       for cid, s in sorted(self.sockets.items())))

    def _caclose(self, rest: str) -> None:
        m = re.fullmatch(r"=(\d+)", rest)
        if not m or int(m.group(1)) not in self.sockets:
            self._answer(ok=False)
            return
        self._close(int(m.group(1)))
        self._answer()

    def _close(self, cid: int) -> None:
        s = self.sockets.pop(cid, None)
        if s is not None:
            with contextlib.suppress(OSError):
                s.sock.close()

    def _peer_data(self, sock: socket.socket) -> None:
        found = [(cid, s) for cid, s in self.sockets.items() if s.sock is sock]
        if not found:
            return
        cid, s = found[0]
        data = b""
        try:
            while True:  # TLS: drain the records already decrypted, select cannot see them
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
                pending = getattr(sock, "pending", None)
                if not pending or not pending():
                    break
        except (BlockingIOError, ssl.SSLWantReadError):
            if not data:
                return
        except OSError:
            pass
        if not data:
            s.peer_closed = True
            self._emit(b"\r\n+CASTATE: %d,0\r\n" % cid)
            return
        was_empty = not s.pending
        s.pending += data
        self._last_activity = time.monotonic()
        if self.in_psm:
            # Downlink data pages the device: with PSM the network would hold it until the
            # next TAU; here the modem wakes so the test need not wait for the timer.
            self.in_psm = False
            self.counters.wake_ups += 1
        if was_empty:
            self._emit(b"\r\n+CADATAIND: %d\r\n" % cid)


_HANDLERS = {
    "+CPIN": SimulatedModem._cpin,
    "+CFUN": SimulatedModem._cfun,
    "+CGDCONT": SimulatedModem._cgdcont,
    "+CNCFG": SimulatedModem._cncfg,
    "+CPSMS": SimulatedModem._cpsms,
    "+CEDRXS": SimulatedModem._cedrxs,
    "+CEREG": SimulatedModem._cereg,
    "+CNACT": SimulatedModem._cnact,
    "+CDNSGIP": SimulatedModem._cdnsgip,
    "+CAOPEN": SimulatedModem._caopen,
    "+CASEND": SimulatedModem._casend,
    "+CARECV": SimulatedModem._carecv,
    "+CACLOSE": SimulatedModem._caclose,
    "+CASTATE": SimulatedModem._castate,
    "+CFSINIT": SimulatedModem._cfsinit,
    "+CFSTERM": SimulatedModem._cfsterm,
    "+CFSWFILE": SimulatedModem._cfswfile,
    "+CSSLCFG": SimulatedModem._csslcfg,
    "+CASSLCFG": SimulatedModem._casslcfg,
}

# T3324 units (TS 24.008 10.5.7.3), as the driver encodes them
_ACTIVE_UNITS = {0: 2, 1: 60, 2: 360}


def _timer_s(bits: str, units: dict[int, int]) -> int | None:
    byte = int(bits, 2)
    unit = units.get(byte >> 5)
    return None if unit is None else (byte & 31) * unit
