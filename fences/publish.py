"""Distribute a compiled fence set by version: a retained announcement on the station's fence
topic, the set itself retained on a topic of its own version.

Every tracker of the station subscribes to ``hotspots/station/<station>/fences``, which carries
``{"version": ..., "size": ...}``; a tracker that does not run that version fetches the body from
``hotspots/station/<station>/fences/<version>`` once. The device
applies the set only once it has parsed and verified all of it (content hash), keeps it in
flash, and reports its version in its status message; the gateway stores that version per
device (``devices.fence_version``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from fences.compile import CompiledFences, compile_geojson
from fences.validate import FenceError
from tracker import mqtt as device_mqtt
from tracker import wire

#: Largest MQTT packet the device's client accepts (``tracker.mqtt``); a bigger set would be
#: dropped by every tracker, so publishing refuses it.
DEVICE_MAX_PACKET = device_mqtt._MAX_PACKET
#: How long to wait for the retained set once the broker has granted the subscription.
READ_BACK_S = 2.0


@dataclass
class Published:
    """What :func:`publish` sent."""

    topic: str
    version: str
    payload_bytes: int


def load_compiled(source: str | Path) -> CompiledFences | str:
    """Return a compiled set for GeoJSON input, or the JSON wrapper text of a compiled file.

    :raises FenceError: when the file is neither valid hot spot GeoJSON nor a compiled set.
    """
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FenceError(f"cannot read {path}: {e}") from e
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise FenceError(f"{path} is not JSON (line {e.lineno}): {e.msg}") from e
    if isinstance(doc, dict) and doc.get("format") == "hsf1":
        from tracker.fence import FenceSet

        try:
            FenceSet.from_json(text)
        except ValueError as e:
            raise FenceError(f"{path}: {e}") from e
        return text.strip()
    return compile_geojson(doc)


def fence_payload(compiled: CompiledFences | str) -> tuple[str, str]:
    """The message text and version for a compiled set, checked against the device's limits."""
    from tracker.fence import FenceSet

    text = compiled.text if isinstance(compiled, CompiledFences) else compiled
    version = FenceSet.from_json(text).version
    return text, version


def publish(compiled: CompiledFences | str, host: str, port: int, station: str = "main",
            *, username: str | None = None, password: str | None = None,
            timeout_s: float = 10.0) -> Published:
    """Publish the set by version: its body retained on ``.../fences/<version>``, then the
    announcement ``{"version", "size"}`` retained on ``.../fences``; each is read back. The body
    of the set announced before is then cleared, so the broker holds one set per station.

    A tracker gets the announcement (a few dozen bytes) at every connect and fetches the body
    only when the version is not the one it runs: an unchanged set costs no download and no
    flash write (docs/fences.md).

    The read-back is what proves the set is in place: under MQTT 3.1.1 a broker acknowledges a
    publish its access rules drop (say, from a device's account), so the acknowledgement alone
    would report a set as published that no tracker will ever get.

    :raises FenceError: if the set is too large for the device's MQTT client.
    :raises ConnectionError: if the broker cannot be reached, does not acknowledge in time, or
        does not hold this set afterwards.
    """
    text, version = fence_payload(compiled)
    topic = wire.fences_topic(station)
    body_topic = wire.fences_set_topic(station, version)
    announcement = wire.fences_announcement(version, len(text.encode()))
    packet = len(text.encode()) + len(body_topic.encode()) + 2 + 2
    if packet > DEVICE_MAX_PACKET:
        raise FenceError(
            f"the fence set makes a {packet}-byte MQTT packet; trackers accept at most "
            f"{DEVICE_MAX_PACKET} bytes: fewer or simpler hot spots per station")
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"hotspots-fences-{station}")
    if username:
        client.username_pw_set(username, password)
    connected = threading.Event()
    failure: list[str] = []
    subscribed = threading.Event()
    granted: list[bool] = []
    retained: dict[str, bytes] = {}
    read_back = threading.Event()
    lost = threading.Event()

    def on_connect(_client, _userdata, _flags, reason_code, _properties):
        if reason_code.is_failure:
            failure.append(str(reason_code))
        connected.set()

    def on_subscribe(_client, _userdata, _mid, reason_codes, _properties):
        granted.append(not reason_codes[0].is_failure)
        subscribed.set()

    def on_message(_client, _userdata, message):
        if message.retain:
            retained[message.topic] = message.payload
            read_back.set()

    def on_disconnect(_client, _userdata, _flags, _reason_code, _properties):
        lost.set()  # paho would reconnect with a clean session: no subscription, no answer
        for event in (subscribed, read_back):
            event.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    where = f"broker at {host}:{port}"

    def read(name: str, wait_s: float) -> bytes | None:
        """The retained message on ``name`` (None when there is none)."""
        subscribed.clear()
        read_back.clear()
        granted.clear()
        retained.pop(name, None)
        client.subscribe(name, qos=1)
        if not subscribed.wait(timeout_s) or lost.is_set():
            raise ConnectionError(f"lost the connection to the {where} while reading {name} "
                                  "(is another client logged in with the same account?)")
        if not granted[0]:
            raise ConnectionError(f"{where} does not let {username or '(anonymous)'} read "
                                  f"{name}, so the fence set cannot be checked")
        # Mosquitto sends the retained message straight after the SUBACK.
        read_back.wait(wait_s)
        client.unsubscribe(name)
        if lost.is_set():
            raise ConnectionError(f"lost the connection to the {where} while reading {name}")
        return retained.get(name)

    def put(name: str, payload: str | bytes) -> None:
        info = client.publish(name, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(timeout_s)
        except RuntimeError as e:  # paho: the connection went before the message did
            raise ConnectionError(f"lost the connection to the {where}: {e}") from e
        if lost.is_set() or not info.is_published():
            raise ConnectionError(f"{where} did not acknowledge the fence set")

    try:
        client.connect(host, port, keepalive=30)
    except OSError as e:
        raise ConnectionError(f"cannot reach the {where}: {e}") from e
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or failure:
            raise ConnectionError(f"{where} refused the connection "
                                  f"({failure[0] if failure else 'timeout'})")
        client.on_disconnect = on_disconnect
        previous = read(topic, 0.3)
        put(body_topic, text)
        put(topic, announcement)
        for name, payload in ((body_topic, text), (topic, announcement)):
            if read(name, min(timeout_s, READ_BACK_S)) != payload.encode():
                raise ConnectionError(
                    f"{where} acknowledged the fence set but does not hold it on {name}: the "
                    f"account {username or '(anonymous)'} may not write it (publish with the "
                    "broker's 'fences' account)")
        old = _announced_version(previous)
        if old and old != version:
            put(wire.fences_set_topic(station, old), b"")  # an empty retained message clears
    finally:
        client.on_disconnect = None
        client.disconnect()
        client.loop_stop()
    return Published(topic, version, len(text))


def _announced_version(payload: bytes | None) -> str | None:
    """The version an announcement names (None for none, or for anything else)."""
    try:
        version = json.loads(payload)["version"] if payload else None
    except (ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, str) and version and "/" not in version else None
