"""The GNSS module: set-up at boot verified by its acknowledgements, and its power between fixes.

One object per board, built from the settings (``gnss_module``: ``ublox``, ``mtk`` or ``nmea``)
with the UART (anything with ``write(bytes)``) injected. The tracker's one GNSS reader hands it
every chunk it reads (:meth:`GnssModule.feed`), so the NMEA parser keeps reading whatever the
module sends while the set-up waits for its answers: a module that never answers, or a module
of another make, still gives fixes, and the failure is counted in :attr:`GnssModule.status` and
reported in the tracker's status message.

Power (``on``/``off``, as ``tracker.app.Ports.gnss_power`` wants them):

* u-blox: ``off`` sends UBX-RXM-PMREQ backup (tens of µA with V_BCKP kept; ephemeris, almanac,
  time and configuration in battery-backed RAM), ``on`` sends a few 0xFF bytes whose falling
  edge on RX wakes it with a hot start (about 1 s to a fix while the ephemeris is valid, 2-4 h).
* MediaTek: ``off`` is ``$PMTK161,0`` standby, ``on`` any byte (a ``$PMTK000`` test packet,
  which the module also answers).
"""

import asyncio

from drivers import pmtk, ubx

_WAKE_UBX = b"\xff" * 8  # u-blox: the first bytes after a wake-up are lost; these are dummies
_PMTK_TEST = pmtk.sentence("PMTK000")


class GnssModule:
    """Set-up and power of one GNSS module.

    :param kind: ``"ublox"``, ``"mtk"`` or ``"nmea"`` (no set-up: whatever the module sends)
    :param uart: the module's serial port, ``write(bytes)``
    :param rate_ms: measurement period to set
    :param power_save: u-blox's own cyclic power save (off: the tracker switches the module
        off between fixes with :meth:`off`, which saves more at the tracker's fix intervals)
    """

    def __init__(self, kind, uart, rate_ms=1000, power_save=False):
        if kind not in ("ublox", "mtk", "nmea"):
            raise ValueError("unknown GNSS module %r" % (kind,))
        self.kind = kind
        self.uart = uart
        self.rate_ms = rate_ms
        self.power_save = power_save
        self.ubx = ubx.UbxReader() if kind == "ublox" else None
        self.pmtk = pmtk.PmtkReader() if kind == "mtk" else None
        # state: "none" (nothing to set up), "configuring", "ok", "no_answer", "refused"
        self.state = "none" if kind == "nmea" else "configuring"
        self.generation = ""  # u-blox: "9+" (CFG-VALSET) or "6-8" (CFG-MSG/RATE/RXM)
        self.sent = 0
        self.acked = 0
        self.refused = 0
        self.no_answer = 0
        self.powered = True
        self._off = ubx.pmreq_backup(0) if kind == "ublox" else pmtk.STANDBY

    # -- bytes from the module ----------------------------------------------------------------
    def feed(self, data, n=-1):
        """Every chunk read from the module's UART (NMEA and binary alike)."""
        if self.ubx is not None:
            self.ubx.feed(data, n)
        elif self.pmtk is not None:
            self.pmtk.feed(data, n)

    # -- set-up -------------------------------------------------------------------------------
    async def configure(self, log=print, timeout_ms=1500, tries=2):
        """Send the set-up and wait for each acknowledgement; True if the module took all.

        Never raises for a silent or refusing module: it is counted, logged and left as it is.
        """
        if self.kind == "nmea":
            return True
        ok = False
        if self.kind == "ublox":
            result = await self._send_ubx(ubx.setup_valset(self.rate_ms,
                                                           power_save=self.power_save),
                                          timeout_ms, tries)
            if result:
                self.generation = "9+"
                ok = True
            elif result is False:  # NAK: an older receiver without configuration keys
                self.refused -= 1  # the probe's NAK is an answer, not a refusal
                self.generation = "6-8"
                ok = True
                for frame in ubx.setup_legacy(self.rate_ms, power_save=self.power_save):
                    if not await self._send_ubx(frame, timeout_ms, tries):
                        ok = False
        else:
            ok = True
            for frame in (pmtk.set_output(), pmtk.set_rate(self.rate_ms)):
                if not await self._send_pmtk(frame, timeout_ms, tries):
                    ok = False
        if ok:
            self.state = "ok"
        elif self.acked == 0 and self.refused == 0:
            self.state = "no_answer"
        else:
            self.state = "refused"
        log("gnss: %s module %s%s (%d sent, %d acknowledged, %d refused, %d unanswered)" % (
            self.kind, self.state, " (u-blox " + self.generation + ")" if self.generation else "",
            self.sent, self.acked, self.refused, self.no_answer))
        return ok

    async def _send_ubx(self, frame, timeout_ms, tries):
        """True on ACK, False on NAK, None if nothing came back."""
        cls, msg_id = ubx.answers(frame)
        reader = self.ubx
        if reader is None:
            return None
        for _ in range(tries):
            reader.ack = None
            self.uart.write(frame)
            self.sent += 1
            waited = 0
            while waited < timeout_ms:
                await asyncio.sleep(0.02)
                waited += 20
                ack = reader.ack
                if ack is not None and ack[0] == cls and ack[1] == msg_id:
                    if ack[2]:
                        self.acked += 1
                        return True
                    self.refused += 1
                    return False
        self.no_answer += 1
        return None

    async def _send_pmtk(self, frame, timeout_ms, tries):
        cmd = pmtk.command_of(frame)
        reader = self.pmtk
        if reader is None:
            return None
        for _ in range(tries):
            reader.ack = None
            self.uart.write(frame)
            self.sent += 1
            waited = 0
            while waited < timeout_ms:
                await asyncio.sleep(0.02)
                waited += 20
                ack = reader.ack
                if ack is not None and ack[0] == cmd:
                    if ack[1] == pmtk.ACK_OK:
                        self.acked += 1
                        return True
                    self.refused += 1
                    return False
        self.no_answer += 1
        return None

    # -- power --------------------------------------------------------------------------------
    def off(self):
        """Switch the receiver off until :meth:`on` (u-blox backup, MediaTek standby)."""
        if self.kind != "nmea" and self.powered:
            self.uart.write(self._off)
            self.powered = False

    def on(self):
        """Wake the receiver (hot start: it kept its ephemeris and time)."""
        if self.kind != "nmea" and not self.powered:
            self.uart.write(_WAKE_UBX if self.kind == "ublox" else _PMTK_TEST)
            self.powered = True

    def status(self):
        """For the tracker's status message: module, set-up state and failure counts."""
        return {"module": self.kind, "state": self.state, "refused": self.refused,
                "no_answer": self.no_answer}
