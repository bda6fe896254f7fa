"""A configurable GNSS module on a pseudo-terminal: u-blox (UBX) or MediaTek (PMTK).

It answers the configuration a real module answers, in its protocol, and behaves as the
settings say: which sentences it sends, how often, whether it is powered, and how long it takes
to a fix after a cold or a hot start. The firmware's module driver (``drivers.gnss_module``) runs
against it unchanged, on the MicroPython unix port, through a real pseudo-terminal.

u-blox (``generation`` ``"m10"``: protocol 27+; ``"m8"``: older):

* CFG-VALSET (06 8A): M10 applies the NMEA output keys, CFG-RATE-MEAS and CFG-PM-OPERATEMODE
  and answers ACK-ACK; M8 answers ACK-NAK. CFG-MSG (06 01), CFG-RATE (06 08), CFG-RXM (06 11):
  M8 applies and ACKs, M10 NAKs. Other class-06 messages: NAK. A frame with a bad checksum is
  dropped without an answer, as a receiver does.
* RXM-PMREQ (02 41) with the backup flag: no answer, output stops; a byte on RX (with the UART
  wake-up source) or the end of the duration wakes it with a hot start.
* Output: NMEA 4.11 as an M10 sends it (talker GN, RMC ending in navigational status ``V``).

MediaTek: ``$PMTK314`` (sentence selection), ``$PMTK220`` (100-10000 ms), ``$PMTK161,0``
(standby, any byte wakes), ``$PMTK101``/``$PMTK103`` (hot/cold start), ``$PMTK000`` (test),
each answered ``$PMTK001,cmd,flag`` (3 done, 1 unsupported, 0 invalid); NMEA 3.01, talker GP.

Before a fix (cold start: no time either; hot start: time kept) it sends the receiver's no-fix
sentences. Time is simulated time: ``speedup`` plays it faster than real time.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
from dataclasses import dataclass, field

from simulators import nmea_out
from simulators.gps import PseudoTerminal
from simulators.walk import Sample

UBLOX_DEFAULT = {"GGA", "GLL", "GSA", "GSV", "RMC", "VTG"}  # an M10's factory output on UART1
MTK_DEFAULT = {"GLL", "RMC", "VTG", "GGA", "GSA", "GSV"}
# CFG-MSGOUT-NMEA_ID_*_UART1 keys and CFG-MSG ids (class F0) the simulator honours
UBX_KEYS = {0x209100BB: "GGA", 0x209100CA: "GLL", 0x209100C0: "GSA", 0x209100C5: "GSV",
            0x209100AC: "RMC", 0x209100B1: "VTG", 0x209100D4: "GST", 0x209100D9: "ZDA",
            0x209100B6: "GNS"}
UBX_MSG_IDS = {0x00: "GGA", 0x01: "GLL", 0x02: "GSA", 0x03: "GSV", 0x04: "RMC", 0x05: "VTG",
               0x07: "GST", 0x08: "ZDA", 0x0D: "GNS"}
KEY_RATE_MEAS = 0x30210001
KEY_RATE_NAV = 0x30210002
KEY_PM_OPERATEMODE = 0x20D00001
PMTK314_ORDER = ("GLL", "RMC", "VTG", "GGA", "GSA", "GSV")


def ubx_checksum(data: bytes) -> bytes:
    a = b = 0
    for byte in data:
        a = (a + byte) & 0xFF
        b = (b + a) & 0xFF
    return bytes((a, b))


def ubx_frame(cls: int, msg_id: int, payload: bytes = b"") -> bytes:
    body = struct.pack("<BBH", cls, msg_id, len(payload)) + payload
    return b"\xb5\x62" + body + ubx_checksum(body)


def _key_size(key: int) -> int:
    return {1: 1, 2: 1, 3: 2, 4: 4, 5: 8}[(key >> 28) & 7]


@dataclass
class ModuleCounts:
    """What the module saw and did (printed by the CLI, asserted by the tests)."""

    commands: int = 0
    acks: int = 0
    naks: int = 0
    bad_frames: int = 0
    backups: int = 0
    wakes: int = 0
    epochs: int = 0
    fixes: int = 0
    ignored_bytes: int = 0
    lost_epochs: int = 0  # did not fit the host's UART buffer (``serve``'s ``rx_buffer``)
    applied: list[str] = field(default_factory=list)


class GnssModuleSim:
    """One module: feed it RX bytes (:meth:`receive`), ask it for the output of an epoch
    (:meth:`epoch`). :func:`serve` runs it on a pseudo-terminal.

    :param kind: ``"ublox"`` or ``"mtk"``
    :param generation: u-blox ``"m10"`` (CFG-VALSET) or ``"m8"`` (CFG-MSG/RATE/RXM)
    :param samples: positions, one per second of simulated time (``Sample.t`` from the first)
    :param cold_start_s: time to the first fix from power-on or a cold start
    :param hot_start_s: time to a fix after a wake-up or a hot start
    :param silent: ignore configuration altogether (a module whose RX is not wired, or of
        another make): it keeps its factory output and answers nothing
    """

    def __init__(self, kind: str, samples: list[Sample], generation: str = "m10",
                 cold_start_s: float = 30.0, hot_start_s: float = 2.0,
                 silent: bool = False) -> None:
        if kind not in ("ublox", "mtk"):
            raise ValueError(f"unknown module kind {kind!r}")
        if generation not in ("m10", "m8"):
            raise ValueError(f"unknown u-blox generation {generation!r}")
        if not samples:
            raise ValueError("no positions to send")
        self.kind = kind
        self.generation = generation
        self.samples = samples
        self.cold_start_s = cold_start_s
        self.hot_start_s = hot_start_s
        self.silent = silent
        self.output = set(UBLOX_DEFAULT if kind == "ublox" else MTK_DEFAULT)
        self.rate_ms = 1000
        self.power_save = False
        self.powered = True
        self.t = samples[0].t  # simulated time (s), advanced by the caller
        self.fix_at = self.t + cold_start_s
        self.time_known_at = self.t + min(cold_start_s, 5.0)  # time comes before position
        self.backup_until = 0.0
        self.wake_on_rx = True
        self.counts = ModuleCounts()
        self._rx = bytearray()
        self._out = bytearray()

    # -- RX: configuration from the host --------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Bytes the host wrote to the module's RX."""
        if not self.powered:
            # Any byte wakes it (u-blox: a falling edge on RX; MTK: any byte); those bytes are
            # lost, as on the real modules. A u-blox host sends dummy 0xFF bytes for that; a
            # command that came after them in the same read (a busy or sped-up host) was sent
            # once the module was awake, and is taken.
            if self.kind == "mtk" or self.wake_on_rx:
                self._wake()
                rest = data.lstrip(b"\xff") if self.kind == "ublox" else b""
                if rest and len(rest) < len(data):
                    self.receive(rest)
            return
        if self.silent:
            self.counts.ignored_bytes += len(data)
            return
        self._rx += data
        if self.kind == "ublox":
            self._ubx_frames()
        else:
            self._pmtk_lines()

    def take_output(self) -> bytes:
        """Answers waiting to go out on TX."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _answer(self, data: bytes) -> None:
        self._out += data

    def _backup(self) -> None:
        """Off (backup mode): no output until woken."""
        self.powered = False
        self.counts.backups += 1

    def _count_answer(self, ok: bool) -> None:
        if ok:
            self.counts.acks += 1
        else:
            self.counts.naks += 1

    def _set_output(self, name: str, on: object) -> None:
        """Switch one sentence's output on or off."""
        if on:
            self.output.add(name)
        else:
            self.output.discard(name)

    def _wake(self) -> None:
        self.powered = True
        self.backup_until = 0.0
        self.counts.wakes += 1
        self.fix_at = self.t + self.hot_start_s  # ephemeris and time kept: a hot start
        self.time_known_at = self.t

    # -- UBX --------------------------------------------------------------------------------
    def _ubx_frames(self) -> None:
        rx = self._rx
        while True:
            start = rx.find(b"\xb5\x62")
            if start < 0:
                del rx[: max(0, len(rx) - 1)]  # keep a trailing 0xB5
                return
            del rx[:start]
            if len(rx) < 6:
                return
            cls, msg_id, length = struct.unpack_from("<BBH", rx, 2)
            if len(rx) < 8 + length:
                return
            body = bytes(rx[2 : 6 + length])
            check = bytes(rx[6 + length : 8 + length])
            del rx[: 8 + length]
            if ubx_checksum(body) != check:
                self.counts.bad_frames += 1
                continue
            self._ubx(cls, msg_id, body[4:])

    def _ack(self, cls: int, msg_id: int, ok: bool) -> None:
        self._count_answer(ok)
        self._answer(ubx_frame(0x05, 0x01 if ok else 0x00, bytes((cls, msg_id))))

    def _ubx(self, cls: int, msg_id: int, payload: bytes) -> None:
        self.counts.commands += 1
        m10 = self.generation == "m10"
        if cls == 0x02 and msg_id == 0x41:  # RXM-PMREQ: no answer
            if len(payload) == 16:
                _version, duration, flags, sources = struct.unpack("<B3xIII", payload)
            elif len(payload) == 8:
                duration, flags = struct.unpack("<II", payload)
                sources = 0x08
            else:
                return
            if flags & 0x02:
                self._backup()
                self.backup_until = self.t + duration / 1000 if duration else 0.0
                self.wake_on_rx = bool(sources & 0x08)
            return
        if cls != 0x06:
            return
        if msg_id == 0x8A and m10:
            self._ack(cls, msg_id, self._valset(payload))
        elif msg_id == 0x01 and not m10 and len(payload) in (3, 8):
            name = UBX_MSG_IDS.get(payload[1]) if payload[0] == 0xF0 else None
            if name is not None:
                rate = payload[2] if len(payload) == 3 else payload[3]  # 8-byte form: UART1
                self._set_output(name, rate)
                self.counts.applied.append(f"CFG-MSG {name}={rate}")
            self._ack(cls, msg_id, name is not None)
        elif msg_id == 0x08 and not m10 and len(payload) == 6:
            meas, nav, _ref = struct.unpack("<HHH", payload)
            ok = 25 <= meas and nav >= 1
            if ok:
                self.rate_ms = meas * nav
                self.counts.applied.append(f"CFG-RATE {meas}")
            self._ack(cls, msg_id, ok)
        elif msg_id == 0x11 and not m10 and len(payload) == 2:
            self.power_save = payload[1] == 1
            self.counts.applied.append(f"CFG-RXM {payload[1]}")
            self._ack(cls, msg_id, True)
        else:
            self._ack(cls, msg_id, False)

    def _valset(self, payload: bytes) -> bool:
        if len(payload) < 4 or payload[0] != 0:
            return False
        items = []
        i = 4
        while i < len(payload):
            if i + 4 > len(payload):
                return False
            (key,) = struct.unpack_from("<I", payload, i)
            try:
                size = _key_size(key)
            except KeyError:
                return False
            if i + 4 + size > len(payload):
                return False
            value = int.from_bytes(payload[i + 4 : i + 4 + size], "little")
            items.append((key, value))
            i += 4 + size
        known = set(UBX_KEYS) | {KEY_RATE_MEAS, KEY_RATE_NAV, KEY_PM_OPERATEMODE}
        if any(key not in known for key, _ in items):
            return False  # a real receiver rejects the whole transaction for an unknown key
        for key, value in items:
            if key in UBX_KEYS:
                self._set_output(UBX_KEYS[key], value)
            elif key == KEY_RATE_MEAS:
                self.rate_ms = value
            elif key == KEY_PM_OPERATEMODE:
                self.power_save = value != 0
            self.counts.applied.append(f"{key:08X}={value}")
        return True

    # -- PMTK -------------------------------------------------------------------------------
    def _pmtk_lines(self) -> None:
        rx = self._rx
        while b"\n" in rx:
            line, _, rest = bytes(rx).partition(b"\n")
            rx[:] = rest
            line = line.strip()
            start = line.find(b"$PMTK")
            if start < 0:
                continue
            line = line[start:]
            body, star, check = line[1:].partition(b"*")
            if not star or check.upper() != nmea_out.checksum(body).encode():
                self.counts.bad_frames += 1
                continue
            self._pmtk(body.decode("ascii", "replace"))

    def _pmtk(self, body: str) -> None:
        self.counts.commands += 1
        cmd, *fields = body[4:].split(",")
        if not cmd.isdigit():
            return
        number = int(cmd)
        flag = 3
        if number == 314:
            if len(fields) != 19 or not all(f.isdigit() for f in fields):
                flag = 0
            else:
                self.output = {name for name, f in zip(PMTK314_ORDER, fields[:6], strict=True)
                               if f != "0"}
                if fields[17] != "0":
                    self.output.add("ZDA")
                self.counts.applied.append("PMTK314 " + ",".join(sorted(self.output)))
        elif number == 220:
            if len(fields) == 1 and fields[0].isdigit() and 100 <= int(fields[0]) <= 10000:
                self.rate_ms = int(fields[0])
                self.counts.applied.append(f"PMTK220 {self.rate_ms}")
            else:
                flag = 0
        elif number == 161:
            self._pmtk_ack(number, 3)
            self._backup()
            return
        elif number in (101, 103):  # restarts answer with the start-up message, not PMTK001
            self.fix_at = self.t + (self.hot_start_s if number == 101 else self.cold_start_s)
            self._answer(nmea_out.sentence("PMTK010,001"))
            return
        elif number != 0:
            flag = 1
        self._pmtk_ack(number, flag)

    def _pmtk_ack(self, number: int, flag: int) -> None:
        self._count_answer(flag == 3)
        self._answer(nmea_out.sentence(f"PMTK001,{number},{flag}"))

    # -- TX: NMEA per epoch ---------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Let simulated time pass (a backup with a duration ends by itself)."""
        self.t += seconds
        if not self.powered and self.backup_until and self.t >= self.backup_until:
            self._wake()

    def sample(self) -> Sample:
        index = int(self.t - self.samples[0].t)
        return self.samples[min(max(index, 0), len(self.samples) - 1)]

    def epoch(self) -> bytes:
        """The sentences of the epoch at the current time (nothing while off)."""
        if not self.powered:
            return b""
        self.counts.epochs += 1
        s = self.sample()
        fix = self.t >= self.fix_at
        timed = self.t >= self.time_known_at
        if fix:
            self.counts.fixes += 1
        talker = "GN" if self.kind == "ublox" else "GP"
        out = []
        for name in ("RMC", "VTG", "GGA", "GSA", "GSV", "GLL", "ZDA"):
            if name in self.output:
                out.append(self._sentence(name, s, talker, fix, timed))
        return b"".join(out)

    def _sentence(self, name: str, s: Sample, talker: str, fix: bool, timed: bool) -> bytes:
        t = self.t
        ublox = self.kind == "ublox"
        nav = ",V" if ublox else ""  # NMEA 4.11 navigational status: not provided
        if name == "RMC":
            if fix:
                line = nmea_out.rmc(t, s.reported_lat, s.reported_lon, s.speed_mps,
                                    s.course_deg, talker=talker)
                return nmea_out.sentence(line[1:-5].decode() + nav)
            tf = time.strftime("%H%M%S.00,", time.gmtime(t)) if timed else ","
            date = time.strftime("%d%m%y", time.gmtime(t)) if timed else ""
            return nmea_out.sentence(f"{talker}RMC,{tf}V,,,,,,,{date},,,N{nav}")
        if name == "GGA":
            if fix:
                return nmea_out.gga(t, s.reported_lat, s.reported_lon, sats=12, talker=talker)
            tf = time.strftime("%H%M%S.00", time.gmtime(t)) if timed else ""
            return nmea_out.sentence(f"{talker}GGA,{tf},,,,,0,00,99.99,,,,,,")
        if name == "VTG":
            return nmea_out.vtg(s.course_deg, s.speed_mps, talker=talker, valid=fix)
        if name == "GSA":
            suffix = ",1" if ublox else ""
            if fix:
                return nmea_out.sentence(f"{talker}GSA,A,3,02,05,07,13,15,20,24,,,,,,1.60,0.90,"
                                         f"1.30{suffix}")
            return nmea_out.sentence(f"{talker}GSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99{suffix}")
        if name == "GSV":
            suffix = ",1" if ublox else ""
            return nmea_out.sentence(f"GPGSV,1,1,04,02,40,060,38,05,55,120,41,07,25,200,35,"
                                     f"13,60,300,44{suffix}")
        if name == "GLL":
            return nmea_out.gll(t, s.reported_lat, s.reported_lon, talker=talker, valid=fix)
        return nmea_out.zda(t, talker=talker)


def serve(module: GnssModuleSim, terminal: PseudoTerminal, speedup: float = 1.0,
          stop: threading.Event | None = None, on_epoch=None,
          rx_buffer: int | None = None) -> None:
    """Run ``module`` on ``terminal`` until the positions run out or ``stop`` is set.

    Reads the host's writes as they come, answers at once, and sends an epoch every
    ``rate_ms`` of simulated time (paced by ``speedup``; 0: as fast as the reader takes it).
    ``rx_buffer``: the host's UART receive buffer in bytes. An epoch that does not fit beside
    what the host has not read yet is lost (``counts.lost_epochs``), as on a UART whose host
    is asleep or busy, instead of holding the module's clock back until the host reads (the
    default, None: a replay that must deliver every epoch).
    """
    stop = stop or threading.Event()
    end_t = module.samples[-1].t
    next_wall = time.monotonic()
    while not stop.is_set() and module.t <= end_t:
        timeout = max(0.0, next_wall - time.monotonic()) if speedup > 0 else 0.0
        ready, _, _ = select.select([terminal.controller], [], [], timeout)
        if ready:
            try:
                data = os.read(terminal.controller, 4096)
            except OSError:
                return  # the host closed its end
            module.receive(data)
            answer = module.take_output()
            if answer:
                terminal.write(answer)
            continue
        if speedup > 0 and time.monotonic() < next_wall:
            continue
        out = module.epoch()
        if out and rx_buffer is not None and terminal.unread() + len(out) > rx_buffer:
            module.counts.lost_epochs += 1
        elif out:
            before = terminal.unread() if rx_buffer is not None else 0
            terminal.write(out)
            if rx_buffer is not None:
                # The kernel moves written bytes to the reader's side in deferred work: on a
                # loaded host FIONREAD lags behind, and epochs written meanwhile would all seem
                # to fit. Wait (briefly) until they arrived or the reader took some.
                settle = time.monotonic() + 0.05
                while (before <= terminal.unread() < before + len(out)
                       and time.monotonic() < settle):
                    time.sleep(0.0005)
        if on_epoch is not None:
            on_epoch(module)
        step_s = module.rate_ms / 1000
        module.advance(step_s)
        next_wall += step_s / speedup if speedup > 0 else 0.0
