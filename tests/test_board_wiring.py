"""The reference boards boot with what the dock provisioned, and their links carry it.

On the MicroPython unix port: the dock's provisioning (the device side, ``tracker.dock``, fed the
gateway's PBEGIN/PSET/PADD/PEND frames) writes ``config.json`` and ``ca.pem`` into a state
folder; the real board files (``boards/esp32s3.py``, ``boards/picow.py``) then read their
settings from that folder exactly as ``main.py`` does on the board (``boards.ports.STATE_DIR``)
and build their ports. Only pins, I2C, ADC, watchdog and the WLAN association are stand-ins
(``tests/firmware/board_fakes.py``). The links are real: the ESP32-S3's SIM7080G driver talks
to the simulated modem over a pseudo-terminal, with TLS in the modem against the provisioned
CA, and the Pico W's Wi-Fi driver opens MicroPython's own TLS to the broker, checked against
the provisioned CA; both log in with the provisioned account and publish to a real Mosquitto.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
import tty
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.fleet.dock.link import DeviceInfo, DockClient, LinkDown
from simulators.modem import SimulatedModem

pytestmark = pytest.mark.micropython

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import asyncio, json, sys
sys.path.append({tests!r})
import board_fakes
board_fakes.install()
board_fakes.UART_PATHS[2] = {modem!r}
from boards.storage import DirStorage
from test_dock import docked_tracker, provision
from tracker import wire
from tracker.mqtt import MQTTClient

state = {state!r}
with open({ca!r}) as f:
    ca = f.read()
tracker, link = docked_tracker(DirStorage(state))
print("pend", provision(link, {settings!r}, ca))

from boards import ports as board
from boards import {board} as hw
from tracker import app, dock
from tracker.outbox import Outbox
cfg = board.load_settings(state)
# The dock's USB CDC: on the board the console; here the pseudo-terminal the test's
# DockClient is on (opened as a file, as sys.stdin.buffer is a stream).
p = hw.build(cfg, print, state, dock_io=open({dock!r}, "r+b"))
out = {{"ca": cfg["ca"], "root": p.storage.root, "radio": type(p.radio).__name__,
       "same": p.radio.open_connection == p.open_connection,
       "dock": type(p.dock).__name__}}

async def main():
    # The tracker's real dock service (tracker.app) on the board's dock port.
    docked = app.Tracker(cfg["device_id"], Outbox(None), None, battery=p.battery)
    dock.start(p, docked, lambda: None)
    if out["radio"] == "Modem":
        out["ca_pem"] = p.radio.ca_pem == ca.encode()
        out["apn"] = p.radio.apn
        board_fakes.Pin.writes.clear()
        p.radio.power_key()
        out["key_down"] = list(board_fakes.Pin.writes)
        await asyncio.sleep_ms(1300)
        out["key_up"] = list(board_fakes.Pin.writes)
    c = MQTTClient(cfg["device_id"], p.open_connection, user=cfg["user"],
                   password=cfg["password"])
    await c.connect(cfg["broker_host"], cfg["broker_port"])
    await c.publish(wire.device_topic(cfg["device_id"], wire.KIND_STATUS),
                    b"booted from the provisioned settings", 1)
    await c.disconnect()
    if out["radio"] == "WiFi":
        out["joined"] = board_fakes.WLAN.last.joined
        await p.radio.sleep()
        out["active_after_sleep"] = board_fakes.WLAN.last.active()
    for _ in range(300):  # until the gateway's ID and PING are answered (or 30 s)
        if p.dock.lines >= 2:
            break
        await asyncio.sleep_ms(100)
    out["dock_lines"] = p.dock.lines

asyncio.run(main())
print("out", json.dumps(out))
"""


class PtyEnd:
    """The dock's end of the pseudo-terminal as the serial port ``DockClient`` reads and writes
    (the USB CDC's host side in a real dock)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read(self, n: int) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], 0.05)
        return os.read(self.fd, n) if ready else b""

    def write(self, data: bytes) -> int:
        return os.write(self.fd, data)

    def close(self) -> None:
        pass


def ask_the_dock(fd: int, answers: dict, done: threading.Event) -> None:
    """The gateway's ``DockClient`` asks the board ``ID`` then ``PING`` until it answers."""
    client = DockClient("board-usb", timeout_s=0.5)
    client.link = PtyEnd(fd)  # type: ignore[assignment]
    while not done.is_set():
        try:
            answers["id"] = DeviceInfo.parse(client.request("ID"))
            answers["ping"] = client.request("PING")
            return
        except LinkDown:  # the tracker is still booting
            continue


@pytest.mark.parametrize("board", ["esp32s3", "picow"])
def test_the_board_reads_the_provisioned_settings_and_reaches_the_broker_with_them(
        board: str, tmp_path: Path, tls_mosquitto, run_micropython) -> None:
    device = f"T-{board.upper()}"
    account = tls_mosquitto.device(device)
    settings = {"device_id": device, "broker_host": "127.0.0.1",
                "broker_port": tls_mosquitto.tls_port, "user": account.username,
                "password": account.password}
    if board == "esp32s3":
        settings.update(link="cellular", apn="iot.example")
    else:
        settings.update(link="wifi", wifi_ssid="station-7", wifi_password="wifi-s3cret")
    topic = f"hotspots/dev/{device}/status"
    received: list[bytes] = []
    ready = threading.Event()
    observer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{board}-observer")
    observer.username_pw_set(**tls_mosquitto.observer.auth())
    observer.on_connect = lambda c, *_: c.subscribe(topic, 1)
    observer.on_subscribe = lambda *_: ready.set()
    observer.on_message = lambda _c, _u, m: received.append(m.payload)
    observer.connect(tls_mosquitto.host, tls_mosquitto.port)
    observer.loop_start()
    state = tmp_path / "state"
    state.mkdir()
    script = tmp_path / "boot.py"
    host_fd, board_fd = os.openpty()
    tty.setraw(board_fd)  # no echo of frames sent before the board opens it
    answers: dict = {}
    done = threading.Event()
    gateway = threading.Thread(target=ask_the_dock, args=(host_fd, answers, done), daemon=True)
    gateway.start()
    try:
        assert ready.wait(10)
        with SimulatedModem(register_delay_s=0) as sim:
            script.write_text(SCRIPT.format(
                tests=str(ROOT / "tests" / "firmware"), modem=sim.path, state=str(state),
                ca=str(tls_mosquitto.ca_path), settings=settings, board=board,
                dock=os.ttyname(board_fd)))
            output = run_micropython(str(script), timeout=90)
            ssl_cids = dict(sim.ssl_cids)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        done.set()
        gateway.join(5)
        os.close(host_fd)
        os.close(board_fd)
        observer.loop_stop()
        observer.disconnect()
    assert f"pend (True, b'{len(settings) + 1}')" in output  # the settings and the CA's path
    out = json.loads(output.split("out ", 1)[1])
    assert out["ca"] == f"{state}/ca.pem" and out["root"] == str(state)
    assert out["same"]  # the tracker's open_connection is the radio's
    # The board's dock port (drivers.dock_usb) answered the gateway's DockClient
    assert out["dock"] == "DockUsb" and out["dock_lines"] >= 2, output
    assert answers["id"].device_id == device and answers["id"].outbox == 0
    assert answers["ping"] == b""
    assert received == [b"booted from the provisioned settings"], output
    assert (state / "ca.pem").read_text() == tls_mosquitto.ca_path.read_text()
    assert json.loads((state / "config.json").read_text())["ca"] == "ca.pem"
    if board == "esp32s3":
        assert out["radio"] == "Modem" and out["apn"] == "iot.example" and out["ca_pem"]
        assert ssl_cids == {0: "hotspots-ca.pem"}  # TLS in the modem, with the provisioned CA
        # PWRKEY (GPIO 6 through the NPN): pressed, released by a task 1.1 s later
        assert out["key_down"] == [[6, 1]] and out["key_up"] == [[6, 1], [6, 0]]
    else:
        assert out["radio"] == "WiFi" and ssl_cids == {}
        assert out["joined"] == [["station-7", "wifi-s3cret"]]
        assert out["active_after_sleep"] is False
    assert account.password not in output and "wifi-s3cret" not in output.split("out ")[0]


ENROL_SCRIPT = """
import sys
sys.path.append({tests!r})
import board_fakes
board_fakes.install()
from boards import ports as board
from tracker import config
state = {state!r}
try:
    board.load_settings(state)
except config.ConfigError as e:  # what boards/esp32s3.py and picow.py main() do
    board.serve_until_enrolled(str(e), state, dock_io=open({dock!r}, "r+b"),
                               reset=lambda: print("reset"))
cfg = board.load_settings(state)
print("booted", cfg["device_id"], cfg["broker_host"], cfg["ca"])
"""


def test_a_board_flashed_without_settings_is_enrolled_through_its_dock_port(
        tmp_path: Path, tls_mosquitto, run_micropython) -> None:
    """A fresh board (no ``config.json``) serves only the dock; the gateway's ``DockClient``
    identifies it and writes its settings and CA; the board resets and boots with them."""
    state = tmp_path / "state"
    state.mkdir()
    host_fd, board_fd = os.openpty()
    tty.setraw(board_fd)
    ca_pem = tls_mosquitto.ca_path.read_text()
    answers: dict = {}

    def enrol() -> None:
        client = DockClient("board-usb", timeout_s=0.5)
        client.link = PtyEnd(host_fd)  # type: ignore[assignment]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                answers["id"] = DeviceInfo.parse(client.request("ID"))
                break
            except LinkDown:
                continue
        answers["written"] = client.provision(
            {"device_id": "T-0042", "broker_host": "10.20.0.2", "broker_port": 8883,
             "user": "T-0042", "password": "s3cret-pw", "link": "wifi",
             "wifi_ssid": "station-7", "wifi_password": "wifi-s3cret"}, ca_pem)

    gateway = threading.Thread(target=enrol, daemon=True)
    gateway.start()
    script = tmp_path / "enrol.py"
    script.write_text(ENROL_SCRIPT.format(tests=str(ROOT / "tests" / "firmware"),
                                          state=str(state), dock=os.ttyname(board_fd)))
    try:
        output = run_micropython(str(script), timeout=90)
    finally:
        gateway.join(10)
        os.close(host_fd)
        os.close(board_fd)
    assert "waiting to be enrolled at the dock" in output
    assert answers["id"].device_id == "0b0a0d"  # machine.unique_id() in hex before enrolment
    assert answers["written"] == 9  # eight settings and the CA
    assert "reset" in output
    assert f"booted T-0042 10.20.0.2 {state}/ca.pem" in output
    assert (state / "ca.pem").read_text() == ca_pem
    assert "s3cret-pw" not in output and "wifi-s3cret" not in output
