"""The SIM7080G driver against the simulated modem, over a real pseudo-terminal, to a real
Mosquitto: bring-up, registration delay, DNS, MQTT through the modem's sockets (payloads larger
than one AT+CASEND and holding line ends), a broker that closes the socket, radio sleep and
wake, PSM, and what the simulator counts."""

from __future__ import annotations

import asyncio
import json
import time

import paho.mqtt.client as mqtt
import pytest

from drivers.modem_sim7080 import Modem, ModemError
from simulators.board import FdStream
from simulators.modem import SimulatedModem
from tracker import mqtt as device_mqtt
from tracker.mqtt import MQTTClient


def run(coro, timeout_s: float = 30):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


@pytest.fixture
def sim(tmp_path):
    with SimulatedModem(register_delay_s=0.5, dns={"broker.station": "127.0.0.1"},
                        stats_path=tmp_path / "modem.json") as modem:
        yield modem


def test_bring_up_waits_for_registration_and_activates_the_pdp_context(sim):
    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "iot.example"})
        await modem.bring_up()
        return modem

    modem = run(go())
    assert modem.up and modem.ip == "10.64.0.2"
    assert sim.apn == "iot.example"
    assert not sim.echo
    # It polled while the network was still "searching" (registration delay 0.5 s).
    assert sim.counters.commands["+CEREG"] >= 2
    assert sim.counters.registrations == 1
    assert sim.counters.unknown_commands == 0 and sim.counters.errors == 0


def test_registration_denied_is_a_clear_error(tmp_path):
    with SimulatedModem(deny=True) as sim:
        async def go():
            await Modem(FdStream(sim.path), {"apn": "x"}).bring_up()

        with pytest.raises(ModemError, match="denied"):
            run(go())


def test_psm_and_edrx_timers_reach_the_modem_encoded(sim):
    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "a", "psm_tau_s": 3600, "psm_active_s": 10,
                                           "edrx_s": 80})
        await modem.bring_up()

    run(go())
    # TAU 1 h: the finest unit that holds it is 10 min (000), value 6; active 10 s: unit 2 s
    # (000), value 5; eDRX: 81.92 s is the shortest cycle of at least 80 s (0101).
    assert sim.psm == ("00000110", "00000101")
    assert sim.edrx == "0101"


def _observer(mosquitto, topic: str, received: list, ready):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="modem-observer")
    client.username_pw_set(**mosquitto.account("modem-observer", "admin").auth())
    client.on_connect = lambda c, *_: c.subscribe(topic, 1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, m: received.append(m.payload)
    host, port = mosquitto.address.rsplit(":", 1)
    client.connect(host, int(port))
    client.loop_start()
    return client


def test_mqtt_through_the_modem_both_ways(sim, mosquitto):
    import threading

    received: list[bytes] = []
    ready = threading.Event()
    observer = _observer(mosquitto, "modem/up", received, ready)
    assert ready.wait(10)
    account = mosquitto.account("modem-dev", "admin")
    # Larger than one AT+CASEND / AT+CARECV (1460 bytes), with line ends inside; within what
    # the client holds in RAM (tracker.mqtt._MAX_RAM_PAYLOAD: a larger payload is skipped).
    big = (b"line\r\n" * 600) + b"end"
    assert 1460 * 2 < len(big) <= device_mqtt._MAX_RAM_PAYLOAD
    inbox: list[tuple[str, bytes]] = []
    host, port = mosquitto.address.rsplit(":", 1)

    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "a"})
        client = MQTTClient("modem-dev", modem.open_connection, user=account.username,
                            password=account.password,
                            on_message=lambda t, p: inbox.append((t, bytes(p))))
        await client.connect("broker.station", int(port))
        await client.subscribe("modem/down")
        await client.publish("modem/up", big, 1)
        # The observer publishes back; it arrives through +CADATAIND and AT+CARECV.
        observer.publish("modem/down", big[::-1], 1)
        for _ in range(200):
            if inbox:
                break
            await asyncio.sleep(0.05)
        await client.disconnect()
        return modem

    modem = run(go())
    observer.loop_stop()
    observer.disconnect()
    assert received == [big]
    assert inbox == [("modem/down", big[::-1])]
    assert sim.counters.dns_queries == 1
    # What the modem carried is what the driver counted, both ways.
    assert sim.counters.bytes_up == modem.bytes_sent > len(big)
    assert sim.counters.bytes_down == modem.bytes_received > len(big)
    assert modem.timeouts == 0 and modem.noise == 0
    stats = json.loads((sim.stats_path).read_text())
    assert stats["bytes_up"] == modem.bytes_sent


def test_a_socket_closed_by_the_broker_raises_for_the_reader(sim, mosquitto):
    host, port = mosquitto.address.rsplit(":", 1)

    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "a"})
        reader, writer = await modem.open_connection(host, int(port))
        writer.write(b"\x10\x02\x00\x00")  # a malformed CONNECT: Mosquitto hangs up
        await writer.drain()
        with pytest.raises(ModemError, match="closed"):
            await reader.readexactly(4)
        writer.close()
        await writer.wait_closed()
        return modem

    run(go())
    assert sim.sockets == {}


def test_radio_sleeps_between_uploads_and_wakes_to_send(sim, mosquitto):
    account = mosquitto.account("modem-dev", "admin")
    host, port = mosquitto.address.rsplit(":", 1)

    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "a"})
        client = MQTTClient("modem-dev", modem.open_connection, user=account.username,
                            password=account.password)
        for i in range(3):
            await client.connect(host, int(port))
            await client.publish("modem/up", b"upload %d" % i, 1)
            await client.disconnect()
            await modem.sleep()
            assert modem.asleep and sim.cfun == 0
        return modem

    modem = run(go())
    assert sim.counters.sleeps == 3 and modem.sleeps == 3
    assert sim.counters.wake_ups == 2  # the first upload found it on already
    assert sim.counters.registrations == 3  # re-registered and re-activated at every wake


def test_psm_sleep_counts_entries_and_wake_ups(tmp_path):
    # Active time 2 s, scaled down 10x: the modem sleeps by itself after 0.2 s of silence.
    with SimulatedModem(register_delay_s=0, psm_time_scale=10) as sim:
        async def go():
            modem = Modem(FdStream(sim.path), {"apn": "a", "psm_tau_s": 600, "psm_active_s": 2,
                                               "radio_sleep": "psm"})
            await modem.bring_up()
            await modem.sleep()
            await asyncio.sleep(0.6)
            await modem.wake()
            await modem.command("")
            return modem

        run(go())
        deadline = time.monotonic() + 2
        while sim.counters.psm_entries < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sim.counters.psm_entries >= 1
        assert sim.counters.wake_ups >= 1
        assert sim.cfun == 1  # PSM, not flight mode


def test_unknown_commands_are_errors_the_simulator_counts(sim):
    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "a"})
        with pytest.raises(ModemError):
            await modem.command("+NOPE")
        return modem

    modem = run(go())
    assert sim.counters.unknown_commands == 1 and modem.errors == 1


def test_a_socket_left_open_by_a_reset_tracker_is_closed_at_bring_up(sim, mosquitto):
    host, port = mosquitto.address.rsplit(":", 1)

    async def first():
        modem = Modem(FdStream(sim.path), {"apn": "a"})
        await modem.open_connection(host, int(port))  # then the MCU "resets"

    async def second():
        modem = Modem(FdStream(sim.path), {"apn": "a"})
        reader, writer = await modem.open_connection(host, int(port))
        writer.close()
        await writer.wait_closed()

    run(first())
    assert list(sim.sockets) == [0]
    run(second())
    assert sim.sockets == {} and sim.counters.sockets_opened == 2
    assert sim.counters.errors == 0


def test_tls_in_the_modem_checks_the_broker_against_the_uploaded_ca(tmp_path, tls_mosquitto):
    ca = tls_mosquitto.ca_path.read_bytes()
    account = tls_mosquitto.account("modem-tls", "admin")
    received: list[bytes] = []
    with SimulatedModem(register_delay_s=0, dns={"broker.station": "127.0.0.1"}) as sim:
        async def go(ca_pem):
            modem = Modem(FdStream(sim.path), {"apn": "a"}, ca_pem=ca_pem)
            client = MQTTClient("modem-tls", modem.open_connection, user=account.username,
                                password=account.password,
                                on_message=lambda t, p: received.append(bytes(p)))
            await client.connect("127.0.0.1", tls_mosquitto.tls_port)
            await client.subscribe("modem/tls")
            await client.publish("modem/tls", b"through the modem's TLS", 1)
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.05)
            await client.disconnect()
            return modem

        run(go(ca))
        assert received == [b"through the modem's TLS"]
        assert sim.files["hotspots-ca.pem"] == ca
        assert sim.ssl_cids == {0: "hotspots-ca.pem"} and sim.ssl_version == 3
        # Only the TLS listener was used: the broker checked the login over TLS.
        assert sim.counters.bytes_up > 0 and sim.counters.sockets_opened == 1

    # A CA that did not sign the broker's certificate: the modem refuses to connect.
    other = tmp_path / "other"
    from gateway.broker import make_test_ca

    wrong = make_test_ca(other)["ca"].read_bytes()
    with SimulatedModem(register_delay_s=0) as sim:
        async def refused():
            modem = Modem(FdStream(sim.path), {"apn": "a"}, ca_pem=wrong)
            await modem.open_connection("127.0.0.1", tls_mosquitto.tls_port)

        with pytest.raises(ModemError, match="CAOPEN"):
            run(refused())


def test_a_connect_timeout_does_not_abort_the_bring_up(tmp_path):
    # The MQTT client gives open_connection 10 s; registering can take minutes. A caller that
    # gives up must not abort the bring-up half-way: the next call waits for the same one.
    with SimulatedModem(register_delay_s=1.0) as sim:
        async def go():
            modem = Modem(FdStream(sim.path), {"apn": "a"})
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(modem.link_up(), 0.3)
            await modem.link_up()
            return modem

        modem = run(go())
        assert modem.up and modem.bring_ups == 1
        assert sim.counters.commands["E0"] == 1 and sim.counters.commands["+CNACT"] == 2
        assert sim.counters.errors == 0


def test_a_connect_that_timed_out_during_caopen_does_not_block_the_next_one(sim, mosquitto):
    # Regression (the energy bench's hang): the MQTT client's connect timeout cancelled the
    # wait for AT+CAOPEN; the modem opened cid 0 anyway and kept it, and refused every later
    # AT+CAOPEN on it (ERROR) because the driver never closed it. As on the SIM7080, the
    # cid stays taken until AT+CACLOSE: the driver must close it before opening it again.
    host, port = mosquitto.address.rsplit(":", 1)
    sim.delays["+CAOPEN"] = 0.5  # the modem answers AT+CAOPEN after half a second

    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "a"})
        await modem.link_up()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(modem.open_connection(host, int(port)), 0.2)
        for _ in range(3):  # every later connect works, not just the next one
            reader, writer = await modem.open_connection(host, int(port))
            writer.close()
            await writer.wait_closed()
        return modem

    run(go())
    assert sim.counters.sockets_opened == 4  # the abandoned one really opened, then closed
    assert sim.sockets == {} and sim.counters.commands["+CACLOSE"] == 4
    assert sim.counters.errors == 0


def test_a_failed_caopen_is_closed_before_the_cid_is_opened_again(sim, mosquitto):
    # A refused connection (result 1, e.g. nothing listening): the next open closes the cid
    # first, as the manual's socket state machine needs; the modem answering ERROR to that
    # AT+CACLOSE (nothing was open) does not stop it.
    host, port = mosquitto.address.rsplit(":", 1)

    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "a"})
        with pytest.raises(ModemError, match="result 1"):
            await modem.open_connection("127.0.0.1", 1)
        reader, writer = await modem.open_connection(host, int(port))
        writer.close()
        await writer.wait_closed()

    run(go())
    assert sim.counters.sockets_opened == 1 and sim.sockets == {}
    assert sim.counters.commands["+CAOPEN"] == 2 and sim.counters.commands["+CACLOSE"] == 2


def test_an_abandoned_command_does_not_shift_the_answers():
    # Each answer takes the modem 0.3 s, so they arrive one by one.
    with SimulatedModem(delays={"+CEREG": 0.3, "+CPIN": 0.3, "+CFUN": 0.3}) as sim:
        run(_abandon(sim))


async def _abandon(sim):
    modem = Modem(FdStream(sim.path), {"apn": "a"})
    await modem.wake_uart()
    task = asyncio.create_task(modem.command("+CEREG?", b"+CEREG: "))
    await asyncio.sleep(0)  # sent, not yet answered
    await asyncio.sleep(0)
    task.cancel()
    # Without the wait for the late answer, this would take +CEREG's OK for its own, and
    # every answer after it would be one late.
    assert await modem.query("+CPIN?", "+CPIN: ") == "READY"
    assert (await modem.query("+CFUN?", "+CFUN: ")) == "1"
    assert modem.errors == 0


def test_radio_sleep_none_stays_registered(sim, mosquitto):
    host, port = mosquitto.address.rsplit(":", 1)

    async def go():
        modem = Modem(FdStream(sim.path), {"apn": "a", "radio_sleep": "none"})
        for _ in range(2):
            reader, writer = await modem.open_connection(host, int(port))
            await modem.sleep()
            assert not modem.asleep and modem.up
        return modem

    modem = run(go())
    assert modem.bring_ups == 1 and modem.sleeps == 0
    assert sim.cfun == 1 and sim.counters.sleeps == 0 and sim.counters.registrations == 1
    assert sim.counters.sockets_opened == 2 and sim.sockets == {}


def test_sim_modem_command_answers_on_its_pty_and_reports_counters(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    stats = tmp_path / "m.json"
    proc = subprocess.Popen([sys.executable, "-m", "hotspots", "sim", "modem",
                             "--register-delay-s", "0", "--stats", str(stats)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        import tty

        tty.setraw(fd)
        os.write(fd, b"ATE0\r")
        os.write(fd, b"AT+CPIN?\r")
        got = b""
        deadline = time.monotonic() + 10
        while got.count(b"OK") < 2 and time.monotonic() < deadline:
            got += os.read(fd, 1024)
        os.close(fd)
        assert b"+CPIN: READY" in got
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "2 AT commands" in err
    assert json.loads(stats.read_text())["at_commands"] == 2


@pytest.mark.micropython
def test_modem_tls_on_the_micropython_unix_port(tmp_path, tls_mosquitto, run_micropython):
    """The unix board's modem path with the CA (``--modem --tls-ca``) on MicroPython itself."""
    import threading

    account = tls_mosquitto.account("modem-mp", "admin")
    received: list[bytes] = []
    ready = threading.Event()
    observer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="modem-mp-observer")
    observer.username_pw_set(**tls_mosquitto.account("modem-mp-observer", "admin").auth())
    observer.on_connect = lambda c, *_: c.subscribe("modem/mp", 1)
    observer.on_subscribe = lambda *_: ready.set()
    observer.on_message = lambda _c, _u, m: received.append(m.payload)
    observer.connect(tls_mosquitto.host, tls_mosquitto.port)
    observer.loop_start()
    assert ready.wait(10)
    script = tmp_path / "modem_tls.py"
    with SimulatedModem(register_delay_s=0) as sim:
        script.write_text(f"""
import asyncio
from boards import unix_devices
from tracker.mqtt import MQTTClient
async def main():
    with open({str(tls_mosquitto.ca_path)!r}, "rb") as f:
        ca = f.read()
    modem = unix_devices.open_modem({sim.path!r}, {{"apn": "internet"}}, print, ca)
    c = MQTTClient("modem-mp", modem.open_connection, user={account.username!r},
                   password={account.password!r})
    await c.connect("127.0.0.1", {tls_mosquitto.tls_port})
    await c.publish("modem/mp", b"from MicroPython via modem TLS", 1)
    await c.disconnect()
    print("stats", modem.stats())
asyncio.run(main())
""")
        output = run_micropython(str(script), timeout=60)
        assert sim.ssl_cids == {0: "hotspots-ca.pem"}
    try:
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        observer.loop_stop()
        observer.disconnect()
    assert received == [b"from MicroPython via modem TLS"], output
    assert "'timeouts': 0" in output and "'errors': 0" in output


def test_in_psm_the_uart_sleeps_until_pwrkey(tmp_path):
    # As on the module: in PSM nothing hears AT; the driver pulses PWRKEY after three silent
    # tries, and the registration survived (no new attach).
    with SimulatedModem(register_delay_s=0, psm_time_scale=10, pwrkey_wake=True) as sim:
        async def go():
            modem = Modem(FdStream(sim.path), {"apn": "a", "psm_tau_s": 600,
                                               "psm_active_s": 2, "radio_sleep": "psm"},
                          power_key=sim.pwrkey)
            await modem.link_up()
            await modem.sleep()
            for _ in range(40):
                if sim.in_psm:
                    break
                await asyncio.sleep(0.05)
            assert sim.in_psm
            await modem.link_up()  # wakes it
            return modem

        modem = run(go())
        assert modem.key_pulses == 1 and not modem.asleep and modem.up
        assert sim.counters.ignored_in_psm == 3
        assert sim.counters.psm_entries == 1 and sim.counters.wake_ups == 1
        assert sim.counters.registrations == 1  # PSM kept the PDP context


def test_line_noise_never_stops_the_parser():
    """Random bytes, cut answers and bogus +CARECV lengths between real answers: the parser
    never raises, and a real answer after the noise is still understood."""
    import random

    class Port:
        def write(self, data):
            pass

    rnd = random.Random(17)
    modem = Modem(Port(), {"apn": "a"})
    pieces = [b"\r\nOK\r\n", b"+CARECV: 5,ab\ncd\r\n", b"+CARECV: 99999,x", b"+CARECV: ,\r\n",
              b"+CADATAIND: 9\r\n", b"+CASTATE: x,y\r\n", b"> ", b"+CDNSGIP: 1\r\n",
              b"\xff\xfe\r\n", b"+APP PDP: 0,ACTIVE\r\n", b"ERROR\r\n", b"\n" * 3]

    def feed(data):
        while data:
            if modem._fill >= 1152:  # as the reader task does with a full buffer
                modem._fill = 0
            chunk, data = data[: 1152 - modem._fill], data[1152 - modem._fill :]
            modem._in_view[modem._fill : modem._fill + len(chunk)] = chunk
            modem._fill += len(chunk)
            modem._parse()  # the reader task calls exactly this; it must not raise

    async def go():
        for _ in range(3000):
            modem._carecv_sock = modem.sockets[0] if rnd.random() < 0.3 else None
            modem._prefix = rnd.choice([None, b"", b">", b"+CEREG: "])
            if rnd.random() < 0.5:
                feed(rnd.choice(pieces))
            else:
                feed(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))))
        # Whatever came before, a clean answer is understood.
        modem._fill = 0
        modem._carecv_sock = None
        modem._prefix = b"+CEREG: "
        modem._lines = []
        modem._done.clear()
        feed(b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n")
        assert modem._done.is_set() and modem._lines == [b"+CEREG: 0,1"]

    run(go())
