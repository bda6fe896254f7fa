"""GNSS module drivers: UBX and PMTK bytes, acknowledgements, set-up and power.

Portable (pytest and the MicroPython unix port). Expected bytes are the documented ones: the
u-blox interface descriptions' frames (CFG-RATE 1 Hz ``... 01 39``, CFG-RXM power save
``... 22 92``, MON-VER poll ``... 0E 34``, RXM-PMREQ backup ``... 4D 3B``) and the MTK packet
manual's sentences with their checksums. ``tests/test_gnss_module_sim.py`` runs the same driver
against the module simulator through a pseudo-terminal.
"""

import asyncio

from drivers import pmtk, ubx
from drivers.gnss_module import GnssModule


def unhex(text):
    return bytes(int(h, 16) for h in text.split())


# -- UBX frames ------------------------------------------------------------------------------
def test_ubx_frames_match_the_documented_bytes():
    assert ubx.cfg_rate(1000) == unhex("B5 62 06 08 06 00 E8 03 01 00 01 00 01 39")
    assert ubx.cfg_msg(0x01, 0) == unhex("B5 62 06 01 03 00 F0 01 00 FB 11")  # GLL off
    assert ubx.cfg_rxm(True) == unhex("B5 62 06 11 02 00 08 01 22 92")
    assert ubx.cfg_rxm(False) == unhex("B5 62 06 11 02 00 08 00 21 91")
    assert ubx.frame(0x0A, 0x04) == unhex("B5 62 0A 04 00 00 0E 34")  # MON-VER poll
    assert ubx.frame(0x02, 0x41, unhex("00 00 00 00 02 00 00 00")) == unhex(
        "B5 62 02 41 08 00 00 00 00 00 02 00 00 00 4D 3B")  # PMREQ, 8-byte form, backup
    assert ubx.frame(0x05, 0x01, unhex("06 08")) == unhex("B5 62 05 01 02 00 06 08 16 3F")


def test_pmreq_backup_wakes_on_uart_rx():
    frame = ubx.pmreq_backup(0)
    assert frame[:6] == unhex("B5 62 02 41 10 00")
    payload = frame[6:-2]
    assert payload[0] == 0  # version 0
    assert payload[4:8] == bytes(4)  # duration 0: until woken
    assert payload[8:12] == unhex("02 00 00 00")  # backup
    assert payload[12:16] == unhex("08 00 00 00")  # wake-up source: UART RX
    assert ubx.checksum(frame, 2, len(frame) - 2) == (frame[-2], frame[-1])
    assert ubx.pmreq_backup(30000)[10:14] == unhex("30 75 00 00")


def test_valset_keys_and_values_little_endian_by_key_size():
    frame = ubx.valset(((ubx.KEY_RATE_MEAS, 1000), (0x209100AC, 1), (0x10930003, 1)))
    assert frame[:6] == unhex("B5 62 06 8A 14 00")  # 4 + 6 + 5 + 5 bytes
    assert frame[6:10] == unhex("00 03 00 00")  # version 0, RAM + BBR
    assert frame[10:16] == unhex("01 00 21 30 E8 03")  # CFG-RATE-MEAS, U2 1000
    assert frame[16:21] == unhex("AC 00 91 20 01")  # CFG-MSGOUT-NMEA_ID_RMC_UART1, U1
    assert frame[21:26] == unhex("03 00 93 10 01")  # a one-bit key takes a byte
    try:
        ubx.valset(((0x00000001, 1),))
    except ValueError:
        pass
    else:
        raise AssertionError("a key without a size accepted")


def test_setup_selects_the_tracker_messages_and_rate():
    frame = ubx.setup_valset(500)
    items = {}
    i = 10
    while i < len(frame) - 2:
        key = frame[i] | frame[i + 1] << 8 | frame[i + 2] << 16 | frame[i + 3] << 24
        size = ubx.key_size(key)
        value = 0
        for j in range(size):
            value |= frame[i + 4 + j] << (8 * j)
        items[key] = value
        i += 4 + size
    on = [name for name, _, key in ubx.NMEA_MESSAGES if items[key]]
    assert on == ["GGA", "GSA", "RMC", "GST"]
    assert items[ubx.KEY_RATE_MEAS] == 500 and items[ubx.KEY_PM_OPERATEMODE] == 0
    legacy = ubx.setup_legacy(2000, power_save=True)
    assert len(legacy) == len(ubx.NMEA_MESSAGES) + 2
    assert legacy[-2] == ubx.cfg_rate(2000) and legacy[-1] == ubx.cfg_rxm(True)


# -- UBX reader ------------------------------------------------------------------------------
ACK_RATE = unhex("B5 62 05 01 02 00 06 08 16 3F")
NMEA = b"$GNGGA,101530.00,5130.04521,N,00007.51234,W,1,12,0.68,23.4,M,45.9,M,,*64\r\n"


def test_acknowledgements_are_found_between_nmea_sentences_split_anywhere():
    nak = ubx.frame(0x05, 0x00, unhex("06 8A"))
    stream = NMEA + ACK_RATE + NMEA[:20] + b"\xb5" + nak + NMEA
    for chunk in (1, 2, 3, 7, 30):
        r = ubx.UbxReader()
        acks = []
        for i in range(0, len(stream), chunk):
            r.feed(stream[i : i + chunk])
            if r.ack is not None and (not acks or acks[-1] != r.ack):
                acks.append(r.ack)
        assert acks == [(0x06, 0x08, True), (0x06, 0x8A, False)], chunk
        assert (r.acks, r.naks, r.bad) == (1, 1, 0)


def test_corrupt_and_oversized_frames_are_counted_not_believed():
    r = ubx.UbxReader()
    r.feed(ACK_RATE[:-1] + b"\x00")  # checksum off
    assert r.ack is None and r.bad == 1
    r.feed(unhex("B5 62 05 01 FF FF") + NMEA + ACK_RATE)  # 65535-byte "frame": a false start
    assert r.bad == 2 and r.ack == (0x06, 0x08, True)
    big = ubx.frame(0x0A, 0x04, bytes(100))  # MON-VER sized: skipped without buffering
    r.feed(big + ACK_RATE)
    assert r.skipped == 1 and r.acks == 2
    buf = bytearray(64)
    buf[: len(ACK_RATE)] = ACK_RATE
    r.feed(buf, len(ACK_RATE))
    assert r.acks == 3


# -- PMTK ------------------------------------------------------------------------------------
def test_pmtk_sentences_match_the_documented_ones():
    rmc_gga = pmtk.set_output(("RMC", "GGA"))
    assert rmc_gga == b"$PMTK314,0,1,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0*28\r\n"
    assert pmtk.set_output(("RMC",)) == b"$PMTK314,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0*29\r\n"
    assert pmtk.set_output(()) == b"$PMTK314,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0*28\r\n"
    assert pmtk.set_rate(1000) == b"$PMTK220,1000*1F\r\n"
    assert pmtk.set_rate(200) == b"$PMTK220,200*2C\r\n"
    assert pmtk.STANDBY == b"$PMTK161,0*28\r\n"
    assert pmtk.HOT_START == b"$PMTK101*32\r\n" and pmtk.COLD_START == b"$PMTK103*30\r\n"
    assert pmtk.command_of(pmtk.set_rate(1000)) == 220
    for bad in (50, 20000):
        try:
            pmtk.set_rate(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)


def test_pmtk_answers_are_read_split_anywhere_and_checked():
    stream = (NMEA + b"$PMTK001,314,3*36\r\n" + b"$PMTK010,001*2E\r\n" + b"$PMTK001,220,2*31\r\n"
              + b"$PMTK001,161,3*00\r\n" + NMEA)
    for chunk in (1, 5, 19):
        r = pmtk.PmtkReader()
        seen = []
        for i in range(0, len(stream), chunk):
            r.feed(stream[i : i + chunk])
            if r.ack is not None and (not seen or seen[-1] != r.ack):
                seen.append(r.ack)
        assert seen == [(314, 3), (220, 2)], chunk
        assert (r.acks, r.bad) == (2, 1)


# -- the module driver -----------------------------------------------------------------------
class ScriptedUart:
    """Answers each frame written with ``reply(frame)`` after a short delay, through the same
    ``feed`` the tracker's reader uses (the pseudo-terminal test uses the real simulator)."""

    def __init__(self, reply):
        self.reply = reply
        self.written = []
        self.module = None

    def write(self, data):
        self.written.append(bytes(data))
        answer = self.reply(bytes(data))
        if answer:
            asyncio.create_task(self._later(answer))

    async def _later(self, answer):
        await asyncio.sleep(0.03)
        self.module.feed(NMEA + answer)


def run_configure(kind, reply, rate_ms=1000):
    uart = ScriptedUart(reply)
    module = GnssModule(kind, uart, rate_ms)
    uart.module = module
    lines = []
    ok = asyncio.run(module.configure(lines.append, timeout_ms=200, tries=2))
    return ok, module, uart, lines


def ubx_reply(generation):
    def reply(frame):
        if frame[2] == 0x06:
            acked = not (generation == "m8" and frame[3] == 0x8A)
            return ubx.frame(0x05, 0x01 if acked else 0x00, frame[2:4])
        return b""
    return reply


def test_ublox_9_and_10_take_one_valset():
    ok, module, uart, lines = run_configure("ublox", ubx_reply("m10"))
    assert ok and module.state == "ok" and module.generation == "9+"
    assert uart.written == [ubx.setup_valset(1000)]
    assert (module.sent, module.acked, module.refused, module.no_answer) == (1, 1, 0, 0)
    assert "ublox module ok (u-blox 9+)" in lines[0]


def test_ublox_8_naks_valset_and_gets_cfg_msg_rate_rxm():
    ok, module, uart, _ = run_configure("ublox", ubx_reply("m8"), rate_ms=2000)
    assert ok and module.generation == "6-8"
    assert uart.written == [ubx.setup_valset(2000)] + ubx.setup_legacy(2000)
    assert (module.acked, module.refused) == (len(ubx.NMEA_MESSAGES) + 2, 0)


def test_a_silent_module_is_counted_and_reported_not_fatal():
    ok, module, uart, lines = run_configure("ublox", lambda frame: b"")
    assert not ok and module.state == "no_answer"
    assert len(uart.written) == 2 and module.no_answer == 1  # tried twice, one step unanswered
    assert module.status() == {"module": "ublox", "state": "no_answer", "refused": 0,
                               "no_answer": 1}
    assert "no_answer" in lines[0]
    ok, module, uart, _ = run_configure("mtk", lambda frame: b"")
    assert not ok and module.state == "no_answer" and module.no_answer == 2


def test_mediatek_set_up_and_a_refusal():
    ok, module, uart, _ = run_configure(
        "mtk", lambda f: pmtk.sentence("PMTK001,%d,3" % pmtk.command_of(f)))
    assert ok and uart.written == [pmtk.set_output(), pmtk.set_rate(1000)]
    ok, module, uart, _ = run_configure(
        "mtk", lambda f: pmtk.sentence("PMTK001,%d,%d" % (pmtk.command_of(f),
                                                         1 if b"220" in f else 3)))
    assert not ok and module.state == "refused" and module.refused == 1


def test_power_off_and_on_send_backup_standby_and_wake_bytes_once():
    for kind, off, on in (("ublox", ubx.pmreq_backup(0), b"\xff" * 8),
                          ("mtk", pmtk.STANDBY, b"$PMTK000*32\r\n")):
        uart = ScriptedUart(lambda f: b"")
        module = GnssModule(kind, uart)
        module.off()
        module.off()
        module.on()
        module.on()
        assert uart.written == [off, on], kind
    uart = ScriptedUart(lambda f: b"")
    module = GnssModule("nmea", uart)
    module.off()
    module.on()
    assert uart.written == [] and asyncio.run(module.configure(lambda s: None))


def test_scanning_nmea_for_answers_allocates_nothing():
    try:
        import micropython
    except ImportError:  # CPython: nothing to prove
        micropython = None
    u = ubx.UbxReader()
    p = pmtk.PmtkReader()
    lines = [NMEA, b"$GNRMC,101530.00,A,5130.04521,N,00007.51234,W,0.012,,041226,,,A,V*2B\r\n",
             b"$GPTXT,01,01,02,u-blox ag*00\r\n"]
    u.feed(lines[0])
    p.feed(lines[0])
    if micropython is not None:
        micropython.heap_lock()
    try:
        for _ in range(20):
            for line in lines:
                u.feed(line)
                p.feed(line)
    finally:
        if micropython is not None:
            micropython.heap_unlock()
    assert (u.frames, u.bad, p.acks, p.bad) == (0, 0, 0, 0)
