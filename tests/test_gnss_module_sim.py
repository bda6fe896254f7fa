"""The GNSS module simulator, and the firmware's module driver against it through a real
pseudo-terminal on the MicroPython unix port."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from simulators import tracker_process
from simulators.gnss_module import GnssModuleSim, serve, ubx_frame
from simulators.gps import PseudoTerminal
from simulators.walk import Sample
from tracker import wire
from tracker.nmea import NmeaParser

START_T = 1_795_000_000


def walk(seconds: int) -> list[Sample]:
    """North from Westminster at 1.4 m/s, one sample a second."""
    out = []
    for i in range(seconds):
        lat = 51.5007 + i * 1.4 / 111_200
        out.append(Sample(START_T + i, lat, -0.1246, 1.4, 0.0, False, lat, -0.1246))
    return out


def fixes(data: bytes) -> list:
    got: list = []
    p = NmeaParser(lambda f: got.append(f.copy()))
    p.feed(data)
    p.flush()
    return got


def valset(items: list[tuple[int, int, int]]) -> bytes:
    payload = bytes((0, 3, 0, 0))
    for key, size, value in items:
        payload += key.to_bytes(4, "little") + value.to_bytes(size, "little")
    return ubx_frame(0x06, 0x8A, payload)


# -- the simulator itself ------------------------------------------------------------------------
def test_m10_applies_valset_and_answers_ack():
    m = GnssModuleSim("ublox", walk(10), cold_start_s=0)
    m.receive(valset([(0x209100C5, 1, 0), (0x209100CA, 1, 0), (0x30210001, 2, 2000)]))
    assert m.take_output() == bytes.fromhex("B562 0501 0200 068A 98C1")
    assert "GSV" not in m.output and "GLL" not in m.output and m.rate_ms == 2000
    out = m.epoch()
    assert b"GSV" not in out and b"$GNRMC" in out
    assert [f.valid for f in fixes(out)] == [True]  # NMEA 4.11 with navigational status V


def test_m10_naks_unknown_keys_and_legacy_messages_m8_the_reverse():
    m10 = GnssModuleSim("ublox", walk(5))
    m10.receive(valset([(0x10110013, 1, 1)]))  # a key this simulator does not know
    m10.receive(bytes.fromhex("B562 0608 0600 E803 0100 0100 0139"))  # CFG-RATE
    out = m10.take_output()
    assert out == (ubx_frame(0x05, 0x00, b"\x06\x8a") + ubx_frame(0x05, 0x00, b"\x06\x08"))
    m8 = GnssModuleSim("ublox", walk(5), generation="m8")
    m8.receive(valset([(0x30210001, 2, 500)]))
    m8.receive(bytes.fromhex("B562 0608 0600 F401 0100 0100 0B77"))  # CFG-RATE 500 ms
    assert m8.take_output() == (ubx_frame(0x05, 0x00, b"\x06\x8a")
                                + ubx_frame(0x05, 0x01, b"\x06\x08"))
    assert m8.rate_ms == 500


def test_a_frame_with_a_bad_checksum_gets_no_answer():
    m = GnssModuleSim("ublox", walk(5))
    m.receive(bytes.fromhex("B562 0608 0600 E803 0100 0100 0138"))
    assert m.take_output() == b"" and m.counts.bad_frames == 1


def test_backup_stops_output_and_a_byte_on_rx_wakes_it_with_a_hot_start():
    m = GnssModuleSim("ublox", walk(60), cold_start_s=20, hot_start_s=3)
    valid = []
    for _ in range(25):
        valid.append(bool(fixes(m.epoch())[0].valid))
        m.advance(1)
    assert valid == [False] * 20 + [True] * 5  # cold start
    m.receive(bytes.fromhex("B562 0241 1000 0000 0000 0000 0000 0200 0000 0800 0000 5D4B"))
    assert m.take_output() == b"" and not m.powered  # PMREQ is not acknowledged
    for _ in range(10):
        assert m.epoch() == b""
        m.advance(1)
    m.receive(b"\xff" * 8)
    assert m.powered and m.take_output() == b""  # the wake-up bytes are lost
    valid = []
    for _ in range(5):
        valid.append(bool(fixes(m.epoch())[0].valid))
        m.advance(1)
    assert valid == [False, False, False, True, True]  # hot start
    assert (m.counts.backups, m.counts.wakes) == (1, 1)


PMREQ_BACKUP = bytes.fromhex("B562 0241 1000 0000 0000 0000 0000 0200 0000 0800 0000 5D4B")


def test_a_command_read_together_with_the_wake_bytes_is_taken():
    # Regression (the energy bench at 4x speed): a busy host's wake-up dummies and its next
    # PMREQ arrived in one read; the whole read was dropped as "lost while waking", so the
    # module stayed on while the firmware believed it off and light-slept, and its epochs were
    # lost. Only the dummy 0xFF bytes are lost.
    m = GnssModuleSim("ublox", walk(60), cold_start_s=0, hot_start_s=1)
    m.receive(PMREQ_BACKUP)
    assert not m.powered
    m.receive(b"\xff" * 8 + PMREQ_BACKUP)
    assert not m.powered and (m.counts.wakes, m.counts.backups) == (1, 2)
    assert m.epoch() == b""


def test_serve_drops_epochs_that_do_not_fit_the_hosts_uart_buffer():
    # A host that does not read (asleep, or busy) loses what overflows its UART buffer; the
    # module's clock runs on instead of waiting for the host.
    m = GnssModuleSim("ublox", walk(30), cold_start_s=0, hot_start_s=1)
    terminal = PseudoTerminal()
    try:
        serve(m, terminal, speedup=0, rx_buffer=600)
        assert m.counts.epochs == 30 and 0 < terminal.unread() <= 600
        assert m.counts.lost_epochs >= 25  # an epoch is a few hundred bytes
    finally:
        terminal.hang_up()


def test_mediatek_answers_pmtk_and_sleeps_in_standby():
    m = GnssModuleSim("mtk", walk(30), cold_start_s=0)
    m.receive(b"$PMTK314,0,1,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0*28\r\n$PMTK220,200*2C\r\n"
              b"$PMTK220,50*1B\r\n$PMTK999*3B\r\n$PMTK220,1000*00\r\n")
    assert m.take_output() == (b"$PMTK001,314,3*36\r\n$PMTK001,220,3*30\r\n"
                               b"$PMTK001,220,0*33\r\n$PMTK001,999,1*3B\r\n")
    assert m.output == {"RMC", "GGA"} and m.rate_ms == 200 and m.counts.bad_frames == 1
    m.receive(b"$PMTK161,0*28\r\n")
    assert m.take_output() == b"$PMTK001,161,3*36\r\n" and m.epoch() == b""
    m.receive(b"$PMTK000*32\r\n")
    assert m.powered and m.take_output() == b""


# -- the firmware's driver through a pseudo-terminal, on MicroPython ------------------------------
DRIVER_SCRIPT = r"""
import asyncio, json, sys
from boards.unix import SerialLines
from drivers.gnss_module import GnssModule
from tracker.nmea import NmeaParser

async def main():
    port = SerialLines(sys.argv[1])
    module = GnssModule(sys.argv[2], port, 1000)
    phases = {"before": [], "off": [], "after": []}
    phase = ["before"]
    parser = NmeaParser(lambda f: phases[phase[0]].append(bool(f.valid)))
    async def read():
        while True:
            line = await port.readline()
            if not line:
                return
            module.feed(line)
            parser.feed_line(line)
    reader = asyncio.create_task(read())
    ok = await module.configure(lambda s: print(s), timeout_ms=1000)
    await asyncio.sleep(1)
    module.off()
    phase[0] = "off"
    await asyncio.sleep(1.5)
    module.on()
    phase[0] = "after"
    await reader
    print(json.dumps({"ok": ok, "status": module.status(), "generation": module.generation,
                      "phases": phases, "stats": parser.stats()}))

asyncio.run(main())
"""


def run_driver(micropython: str, tmp_path: Path, kind: str, **sim) -> tuple[dict, GnssModuleSim]:
    module = GnssModuleSim(kind, walk(120), cold_start_s=0, hot_start_s=3, **sim)
    terminal = PseudoTerminal()
    thread = threading.Thread(target=serve, args=(module, terminal, 20.0), daemon=True)
    thread.start()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER_SCRIPT)
    try:
        proc = subprocess.Popen([micropython, str(script), terminal.path, kind],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=tracker_process.micropython_env())
        thread.join(60)
        terminal.close(drain_timeout_s=10)
        out, err = proc.communicate(timeout=30)
    finally:
        terminal.hang_up()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), module


@pytest.mark.parametrize(("kind", "generation"), [("ublox", "m10"), ("ublox", "m8"),
                                                  ("mtk", "m10")])
def test_driver_sets_up_switches_off_and_wakes_the_simulated_module(micropython, tmp_path, kind,
                                                                      generation):
    got, module = run_driver(micropython, tmp_path, kind, generation=generation)
    assert got["ok"] and got["status"]["state"] == "ok"
    if kind == "ublox":
        assert got["generation"] == ("9+" if generation == "m10" else "6-8")
        assert module.rate_ms == 1000 and "GSV" not in module.output
        assert module.output == {"RMC", "GGA", "GSA", "GST"}
    else:
        assert module.output == {"RMC", "GGA", "GSA"}
    assert (module.counts.backups, module.counts.wakes) == (1, 1)
    phases = got["phases"]
    assert any(phases["before"]) and len(phases["off"]) <= 1  # an epoch may be on its way
    assert phases["after"][:2] == [False, False] and any(phases["after"])  # hot start
    assert got["stats"]["rejected"].get("checksum", 0) == 0


def test_a_silent_module_is_reported_and_its_nmea_still_parsed(micropython, tmp_path):
    got, module = run_driver(micropython, tmp_path, "ublox", silent=True)
    assert not got["ok"]
    assert got["status"] == {"module": "ublox", "state": "no_answer", "refused": 0,
                             "no_answer": 1}
    assert any(got["phases"]["before"])  # fixes all along, from its factory output
    assert module.output >= {"GSV", "GLL", "VTG"}  # the silent module applied nothing...
    assert module.counts.ignored_bytes >= 2 * 74  # ...though it heard the set-up twice


# -- the whole firmware, through the broker ------------------------------------------------------
@pytest.mark.parametrize("silent", [False, True])
def test_firmware_sets_up_a_ublox_module_and_reports_it(micropython, mosquitto, tmp_path, silent):
    module = GnssModuleSim("ublox", walk(40), cold_start_s=2, silent=silent)
    terminal = PseudoTerminal()
    thread = threading.Thread(target=serve, args=(module, terminal, 10.0), daemon=True)
    thread.start()
    device = "T-GNSS1"
    account = mosquitto.device(device)
    log = tmp_path / "tracker.log"
    proc = tracker_process.start(terminal.path, mosquitto.address, device, tmp_path / "state",
                                 log_path=log, exit_on_eof=True, sampling="fixed",
                                 user=account.username, password=account.password,
                                 gnss_module="ublox")
    try:
        thread.join(60)
        terminal.close(drain_timeout_s=10)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        terminal.hang_up()
    text = log.read_text()
    assert account.password not in text
    status = retained_status(mosquitto, device)
    assert status["online"] is False  # the tracker said goodbye at the end of the stream
    if silent:  # counted and reported, and the fixes it sends anyway are used
        assert "gnss: ublox module no_answer" in text
        assert status["gnss"] == {"module": "ublox", "state": "no_answer", "refused": 0,
                                  "no_answer": 1}
    else:
        assert "gnss: ublox module ok (u-blox 9+)" in text
        assert module.counts.acks == 1 and "GSV" not in module.output
        assert status["gnss"] == {"module": "ublox", "state": "ok", "refused": 0,
                                  "no_answer": 0}
    used = int(text.split("gnss: ")[2].split()[0])
    assert used >= 35  # 38 epochs, the first two before the (simulated) cold start ended
    assert "published 4 messages" in text  # one location every 10 s (fixed sampling)


def retained_status(mosquitto, device: str) -> dict:
    got = threading.Event()
    box: dict = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="status-reader")
    client.username_pw_set(**mosquitto.observer.auth())

    def on_message(_c, _u, message):
        box.update(json.loads(message.payload))
        got.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(wire.device_topic(device, wire.KIND_STATUS), 1)
    host, port = mosquitto.address.rsplit(":", 1)
    client.connect(host, int(port))
    client.loop_start()
    try:
        assert got.wait(10), "no retained status"
    finally:
        client.loop_stop()
        client.disconnect()
    return box


def test_the_commands_sim_gps_module_and_firmware_run_gnss_module(micropython, mosquitto,
                                                                  tmp_path):
    import os
    import sys

    env = dict(os.environ)
    sim = subprocess.Popen(
        [sys.executable, "-m", "hotspots", "sim", "gps", "--route", "fences/sample_route.geojson",
         "--module", "mtk", "--speedup", "200", "--cold-start-s", "3",
         "--truth", str(tmp_path / "truth.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=Path(__file__).resolve().parent.parent)
    try:
        path = sim.stdout.readline().strip()
        assert path.startswith("/dev/pts/"), path
        account = mosquitto.device("T-GNSS2")
        run = subprocess.run(
            [sys.executable, "-m", "hotspots", "firmware", "run", "--gps", path, "--broker",
             mosquitto.address, "--device-id", "T-GNSS2", "--state", str(tmp_path / "state"),
             "--exit-on-eof", "--sampling", "fixed", "--gnss-module", "mtk",
             "--user", account.username, "--password", account.password],
            capture_output=True, text=True, timeout=120, env=env)
        _, err = sim.communicate(timeout=60)
    finally:
        if sim.poll() is None:
            sim.kill()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "gnss: mtk module ok" in run.stdout
    assert "mtk module:" in err and "2 acknowledged" in err, err
    assert "0 refused" in err
