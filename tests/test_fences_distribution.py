"""Distribution: retained publish on the station topic, atomic apply on the device, version
reported in the status and recorded by the gateway; and ``hotspots firmware replay``."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from fences.compile import compile_geojson
from fences.publish import publish
from fences.synthetic import city_fences
from fences.validate import FenceError
from gateway.broker import Mosquitto
from gateway.intake import mqtt as mqtt_source
from gateway.intake.intake import Intake
from hotspots.cli import cli
from tracker import wire
from tracker.app import Tracker
from tracker.dock import apply_fences
from tracker.fence import FenceSet
from tracker.outbox import Outbox

SAMPLE = "fences/sample.geojson"


def retained(address: str, auth: dict, topic: str, timeout_s: float = 10.0) -> bytes | None:
    """Connect as a fresh client and return the retained message on ``topic`` (None when
    there is none within ``timeout_s``)."""
    host, port = address.rsplit(":", 1)
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set(**auth)
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)

    def on_message(_c, _u, msg):
        got.append(msg.payload)
        assert msg.retain
        done.set()

    client.on_message = on_message
    client.connect(host, int(port))
    client.loop_start()
    try:
        done.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else None


def test_published_set_is_retained_and_applied_by_a_device(mosquitto):
    compiled = compile_geojson(SAMPLE)
    sent = publish(compiled, mosquitto.host, mosquitto.port, "greenwich",
                   **mosquitto.fences.auth())
    assert sent.topic == wire.fences_topic("greenwich") and sent.version == compiled.version
    # A tracker that connects afterwards, with its own device account, gets the announcement
    # (a few dozen bytes), then the set from its version's topic.
    device = mosquitto.device("T-0007").auth()
    announcement = retained(mosquitto.address, device, sent.topic)
    assert json.loads(announcement) == {"version": compiled.version,
                                        "size": len(compiled.text)}
    assert len(announcement) < 60
    payload = retained(mosquitto.address, device,
                       wire.fences_set_topic("greenwich", compiled.version))
    tracker = Tracker("T-0007", Outbox(None))
    new_set = apply_fences(tracker, payload)
    assert new_set.version == compiled.version
    status = wire.decode(tracker.status(True))
    assert status["fences"] == compiled.version


def test_a_new_set_replaces_the_announcement_and_clears_the_old_body(mosquitto):
    first = compile_geojson(SAMPLE)
    second = compile_geojson(SAMPLE, near_m=300)
    assert first.version != second.version
    auth = mosquitto.fences.auth()
    publish(first, mosquitto.host, mosquitto.port, "kew", **auth)
    publish(first, mosquitto.host, mosquitto.port, "kew", **auth)  # again: nothing changes
    device = mosquitto.device("T-0009").auth()
    assert retained(mosquitto.address, device, wire.fences_set_topic("kew", first.version))
    publish(second, mosquitto.host, mosquitto.port, "kew", **auth)
    assert json.loads(retained(mosquitto.address, device, wire.fences_topic("kew")))[
        "version"] == second.version
    assert retained(mosquitto.address, device,
                    wire.fences_set_topic("kew", second.version)) == second.text.encode()
    # The broker holds one set per station: the old body is gone.
    assert retained(mosquitto.address, device, wire.fences_set_topic("kew", first.version),
                    timeout_s=1.0) is None


def test_a_bad_set_is_rejected_and_the_old_one_stays_active():
    tracker = Tracker("T-0008", Outbox(None))
    good = compile_geojson(SAMPLE)
    apply_fences(tracker, good.text.encode())
    doc = json.loads(good.text)
    doc["data"] = doc["data"][:-8] + "AAAAAAAA"
    for bad in (json.dumps(doc).encode(), b"", b"{", good.data[:100]):
        with pytest.raises(ValueError):
            apply_fences(tracker, bad)
        assert tracker.fence_set.version == good.version
        assert wire.decode(tracker.status(True))["fences"] == good.version


def test_a_city_sized_set_reaches_a_micropython_device(tmp_path, mosquitto, run_micropython):
    """200 hot spots of 20 vertices: published, received over MQTT and applied on the unix port."""
    compiled = compile_geojson(city_fences(200, vertices=20))
    sent = publish(compiled, mosquitto.host, mosquitto.port, "city", **mosquitto.fences.auth())
    device = mosquitto.device("T-0200")
    script = f"""
import asyncio
from tracker.fence import FenceStore
from tracker.mqtt import MQTTClient
got = []
path = '{tmp_path}/spooled'
async def main():
    # As the tracker does: the set goes to flash as it arrives (RAM payloads stop at 4 KB).
    c = MQTTClient('T-0200', asyncio.open_connection, user='T-0200',
                   password='{device.password}', on_message=lambda t, p: got.append(p),
                   spool=lambda topic, n: open(path, 'wb'))
    await c.connect('{mosquitto.host}', {mosquitto.port})
    await c.subscribe('{wire.fences_set_topic("city", sent.version)}')
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.05)
    await c.disconnect()
    fs = FenceStore.load(lambda: open(path, 'rb'))
    f = open(path, 'rb')
    print(f.seek(0, 2), len(fs), fs.version)
asyncio.run(main())
"""
    size, count, version = run_micropython("-c", script).split()
    assert int(size) == sent.payload_bytes > 16384
    assert (int(count), version) == (200, compiled.version)


def test_publish_refuses_a_set_too_large_for_the_device(monkeypatch):
    # The device spools a set to flash (up to tracker.mqtt._MAX_PACKET, 1 MiB); a smaller limit
    # here keeps the set small enough to compile quickly.
    monkeypatch.setattr("fences.publish.DEVICE_MAX_PACKET", 49152)
    big = compile_geojson(city_fences(400, vertices=20))
    with pytest.raises(FenceError, match="trackers accept at most 49152 bytes"):
        publish(big, "127.0.0.1", 1, "main")  # refused before any connection is tried


def test_publish_to_an_unreachable_broker_is_a_clear_error():
    from gateway.broker import free_port

    with pytest.raises(ConnectionError, match="cannot reach the broker"):
        publish(compile_geojson(SAMPLE), "127.0.0.1", free_port(), "main")


def test_gateway_records_the_fence_version_each_device_runs(db):
    from gateway.fleet.identity import register_device

    for dev in ("T-0001", "T-0002"):
        register_device(db, dev)
    intake = Intake(db)
    for dev, version in (("T-0001", "aaaaaaaaaaaa"), ("T-0002", "bbbbbbbbbbbb")):
        mqtt_source.handle(intake, wire.device_topic(dev, wire.KIND_STATUS),
                      wire.status(dev, True, 1795000000, version, 0, 80, "0.1.0").encode())
    mqtt_source.handle(intake, wire.device_topic("T-0001", wire.KIND_STATUS),
                  wire.status("T-0001", True, 1795000100, "cccccccccccc", 0, 80, "0.1.0").encode())
    intake.commit()
    rows = dict(db.execute("SELECT device_id, fence_version FROM devices").fetchall())
    assert rows == {"T-0001": "cccccccccccc", "T-0002": "bbbbbbbbbbbb"}


def test_cli_publish_validate_compile_and_show(mosquitto, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["fences", "publish", SAMPLE, "--broker", mosquitto.address,
                                 "--accounts", str(mosquitto.accounts_path)])
    assert result.exit_code == 0, result.output
    version = compile_geojson(SAMPLE).version
    assert f"published fence set {version}" in result.output
    out = tmp_path / "sample.fences.json"
    result = runner.invoke(cli, ["fences", "compile", SAMPLE, "-o", str(out)])
    assert result.exit_code == 0 and out.exists() and version in result.output
    result = runner.invoke(cli, ["fences", "show", str(out)])
    assert result.exit_code == 0 and "HS-GRN-02" in result.output and version in result.output
    assert FenceSet.from_json(out.read_text()).version == version
    result = runner.invoke(cli, ["fences", "validate", SAMPLE])
    assert result.exit_code == 0 and "2 hot spots, 0 errors" in result.output
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "X"}, "geometry": None}]}))
    result = runner.invoke(cli, ["fences", "validate", str(bad)])
    assert result.exit_code == 1 and "feature 0 (id 'X')" in result.output
    result = runner.invoke(cli, ["fences", "compile", str(bad)])
    assert result.exit_code == 1 and "Error:" in result.output


def publish_cli(mosquitto, *options: str, station: str = "main"):
    """``hotspots fences publish SAMPLE`` against ``mosquitto`` with ``options``."""
    return CliRunner().invoke(cli, ["fences", "publish", SAMPLE, "--broker", mosquitto.address,
                                    "--station", station, *options])


def received_version(mosquitto, station: str) -> str:
    """The version of the set a tracker of ``station`` gets, logging in as itself."""
    auth = mosquitto.device("T-0042").auth()
    version = json.loads(retained(mosquitto.address, auth, wire.fences_topic(station)))["version"]
    payload = retained(mosquitto.address, auth, wire.fences_set_topic(station, version))
    assert FenceSet.from_json(payload).version == version
    return version


@pytest.mark.parametrize("login", [
    "accounts", "user and accounts", "user and password", "password from the environment",
    "this process's broker"])
def test_cli_publish_logs_in_like_the_other_broker_commands(mosquitto, monkeypatch, login):
    """``--user``/``--password``/``--accounts`` as in ``gateway run``, with the broker's
    ``fences`` account by default; with no account at all, a broker this process started (the
    demo) lends its ``fences`` account."""
    monkeypatch.delenv("HOTSPOTS_MQTT_PASSWORD", raising=False)
    accounts = str(mosquitto.accounts_path)
    options = {
        "accounts": ["--accounts", accounts],
        "user and accounts": ["--user", "fences", "--accounts", accounts],
        "user and password": ["--user", "fences", "--password", mosquitto.fences.password],
        "password from the environment": ["--user", "fences"],
        "this process's broker": [],
    }[login]
    if login == "password from the environment":
        monkeypatch.setenv("HOTSPOTS_MQTT_PASSWORD", mosquitto.fences.password)
    result = publish_cli(mosquitto, *options, station="north")
    assert result.exit_code == 0, result.output
    version = compile_geojson(SAMPLE).version
    assert f"published fence set {version}" in result.output
    assert received_version(mosquitto, "north") == version


def test_cli_publish_with_a_wrong_or_missing_login_is_refused(mosquitto, monkeypatch, tmp_path):
    monkeypatch.delenv("HOTSPOTS_MQTT_PASSWORD", raising=False)
    refused = f"broker at {mosquitto.address} refused the connection"
    result = publish_cli(mosquitto, "--user", "fences", "--password", "not-the-password")
    assert result.exit_code == 1 and refused in result.output, result.output
    # An accounts.json from an earlier set-up of the broker: the file's password is the one used.
    stale = tmp_path / "stale-accounts.json"
    rows = json.loads(mosquitto.accounts_path.read_text())
    for row in rows:
        row["password"] += "-old"
    stale.write_text(json.dumps(rows))
    result = publish_cli(mosquitto, "--accounts", str(stale))
    assert result.exit_code == 1 and refused in result.output, result.output
    result = publish_cli(mosquitto, "--user", "nobody", "--accounts",
                         str(mosquitto.accounts_path))
    assert result.exit_code == 1, result.output
    assert f"no account 'nobody' in {mosquitto.accounts_path}" in result.output
    result = publish_cli(mosquitto, "--username", "fences")  # the old option name is gone
    assert result.exit_code == 2 and "Did you mean '--user'?" in result.output
    # Run from a shell, no broker belongs to this process: without an account it is anonymous.
    monkeypatch.setattr(Mosquitto, "_running", {})
    result = publish_cli(mosquitto)
    assert result.exit_code == 1 and refused in result.output, result.output
    assert "log in with --accounts" in result.output


def test_publishing_from_an_account_that_may_not_write_the_set_is_an_error(mosquitto):
    """The broker acknowledges a publish its ACL drops; the read-back catches it."""
    publisher = mosquitto.fences.auth()
    first = publish(compile_geojson(SAMPLE), mosquitto.host, mosquitto.port, "east",
                    **publisher)
    other = compile_geojson(city_fences(5, seed=3))
    assert other.version != first.version
    device = mosquitto.device("T-0009")
    with pytest.raises(ConnectionError, match="may not write it"):
        publish(other, mosquitto.host, mosquitto.port, "east", username=device.username,
                password=device.password)
    assert received_version(mosquitto, "east") == first.version  # the old set stays
    # The same from the command line, with the sample over another set.
    publish(other, mosquitto.host, mosquitto.port, "east", **publisher)
    accounts = str(mosquitto.accounts_path)
    result = publish_cli(mosquitto, "--user", "T-0009", "--accounts", accounts, station="east")
    assert result.exit_code == 1 and "does not hold it" in result.output, result.output
    assert received_version(mosquitto, "east") == other.version


def test_every_fences_command_has_help_and_is_documented():
    from pathlib import Path

    from hotspots.cli_fences import fences

    doc = Path("docs/fences.md").read_text()
    for name, command in fences.commands.items():
        assert command.help, name
        assert f"hotspots fences {name}" in doc, name
    assert "hotspots firmware replay" in doc and "hotspots bench fences" in doc


def test_publishing_fences_leaves_the_gateways_queued_fixes_alone(mosquitto, monkeypatch):
    """One login is one session on this broker: publishing as the gateway would end the
    gateway's session and discard the fixes queued for it. The CLI publishes with the
    ``fences`` account and refuses the gateway's."""
    monkeypatch.delenv("HOTSPOTS_MQTT_PASSWORD", raising=False)
    host, port = mosquitto.host, mosquitto.port
    got: list[bytes] = []
    present: list[bool] = []

    def gateway_session() -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gateway",
                             clean_session=False)
        client.username_pw_set(**mosquitto.gateway.auth())
        client.on_connect = lambda c, u, flags, rc, p: present.append(flags.session_present)
        client.on_message = lambda c, u, msg: got.append(msg.payload)
        client.connect(host, port)
        client.loop_start()
        return client

    gateway = gateway_session()
    gateway.subscribe("hotspots/dev/+/loc", qos=1)
    time.sleep(0.3)  # connected and subscribed: the broker now keeps the session
    gateway.disconnect()
    gateway.loop_stop()
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    device.username_pw_set(**mosquitto.device("T-0005").auth())
    device.connect(host, port)
    device.loop_start()
    for n in range(5):
        device.publish("hotspots/dev/T-0005/loc", f"fix {n}", qos=1).wait_for_publish(5)
    device.disconnect()
    device.loop_stop()

    accounts = str(mosquitto.accounts_path)
    result = publish_cli(mosquitto, "--accounts", accounts)
    assert result.exit_code == 0, result.output
    result = publish_cli(mosquitto, "--user", "gateway", "--accounts", accounts)
    assert result.exit_code == 1 and "take over the gateway's session" in result.output

    gateway = gateway_session()
    try:
        deadline = time.monotonic() + 5
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        gateway.disconnect()
        gateway.loop_stop()
    assert present[-1] is True
    assert sorted(got) == [f"fix {n}".encode() for n in range(5)]


def test_cli_publish_login_mistakes_get_the_right_hint(mosquitto, monkeypatch):
    monkeypatch.delenv("HOTSPOTS_MQTT_PASSWORD", raising=False)
    result = publish_cli(mosquitto, "--password", "secret")
    assert result.exit_code == 1 and "--password needs --user" in result.output
    from gateway.broker import free_port

    result = CliRunner().invoke(cli, ["fences", "publish", SAMPLE, "--broker",
                                      f"127.0.0.1:{free_port()}"])
    assert result.exit_code == 1 and "cannot reach the broker" in result.output
    assert "log in with" not in result.output  # a closed port is not a login problem
