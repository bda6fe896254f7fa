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
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

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
cfg = board.load_settings(state)
p = hw.build(cfg, print, state)
out = {{"ca": cfg["ca"], "root": p.storage.root, "radio": type(p.radio).__name__,
       "same": p.radio.open_connection == p.open_connection}}

async def main():
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

asyncio.run(main())
print("out", json.dumps(out))
"""


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
    try:
        assert ready.wait(10)
        with SimulatedModem(register_delay_s=0) as sim:
            script.write_text(SCRIPT.format(
                tests=str(ROOT / "tests" / "firmware"), modem=sim.path, state=str(state),
                ca=str(tls_mosquitto.ca_path), settings=settings, board=board))
            output = run_micropython(str(script), timeout=90)
            ssl_cids = dict(sim.ssl_cids)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        observer.loop_stop()
        observer.disconnect()
    assert f"pend (True, b'{len(settings) + 1}')" in output  # the settings and the CA's path
    out = json.loads(output.split("out ", 1)[1])
    assert out["ca"] == f"{state}/ca.pem" and out["root"] == str(state)
    assert out["same"]  # the tracker's open_connection is the radio's
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
