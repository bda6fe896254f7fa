"""The trackers as OwnTracks devices: a republisher the OwnTracks Recorder and apps can read.

The Recorder files any topic, but it reads locations (its API, ``ocat``, the map) only from
``owntracks/<user>/<device>`` with ``_type: location`` on the base topic, transitions from
``.../event``, and a device's disconnection from an ``lwt``. The trackers publish on
``hotspots/dev/<device>/{loc,event,status}`` and their last will is a ``status`` with
``online: false``. This bridge subscribes to the trackers and republishes, QoS 1, not retained
(the Recorder skips retained messages unless started with ``-R``):

=================================  =========================================================
tracker                            republished as
=================================  =========================================================
``hotspots/dev/<d>/loc``           ``owntracks/<station>/<d>``, the location as it is (an
                                   OwnTracks location plus ``dev``/``seq``, which the
                                   Recorder keeps)
``hotspots/dev/<d>/event``         ``owntracks/<station>/<d>/event``, the transition
``hotspots/dev/<d>/status``        online false (its last will): ``{"_type": "lwt", "tst":
                                   <created_at>}`` on ``owntracks/<station>/<d>``; online
                                   true: nothing (the Recorder has no such message)
=================================  =========================================================

``<station>`` is the bridge's broker account (role ``recorder``: may read the trackers and write
only ``owntracks/<station>/...``), so the Recorder lists the station as a user and each tracker
as one of its devices. The gateway ignores the bridge's own topics.

Why a republisher and not a Mosquitto bridge: a bridge can only swap a topic prefix, and the
device sits in the middle of the tracker's topic with the kind at its end; nor can it turn a
``status`` into an ``lwt``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter

import paho.mqtt.client as paho

from tracker import wire

log = logging.getLogger(__name__)

SUBSCRIPTIONS = ("hotspots/dev/+/loc", "hotspots/dev/+/event", "hotspots/dev/+/status")


def translate(topic: str, payload: bytes, station: str) -> tuple[str, bytes] | None:
    """The OwnTracks topic and payload for one tracker message, or None when there is none
    (an ``online`` status, anything undecodable)."""
    try:
        source, device_id, kind = wire.parse_topic(topic)
        msg = wire.decode(payload)
    except (wire.WireError, RecursionError, ValueError):
        return None
    if source != "tracker":
        return None
    base = f"{wire.OWNTRACKS_ROOT}/{station}/{device_id}"
    if kind == wire.KIND_LOCATION and msg["_type"] == "location":
        return base, bytes(payload)
    if kind == wire.KIND_EVENT and msg["_type"] == "transition":
        return base + "/event", bytes(payload)
    if kind == wire.KIND_STATUS and msg["_type"] == "status" and msg["online"] is False:
        tst = msg.get("created_at")
        will = {"_type": "lwt", "tst": tst if type(tst) is int else 0, "tid":
                wire.tracker_id(device_id)}
        return base, json.dumps(will, separators=(",", ":")).encode()
    return None


class RecorderBridge:
    """Subscribe to the trackers on one broker, republish for the Recorder on ``to`` (the same
    broker by default). The subscription is a persistent session, so what the trackers send
    while the bridge is down reaches the Recorder when it is back; the copies go out QoS 1."""

    def __init__(self, host: str, port: int, username: str, password: str,
                 to: tuple[str, int, str, str] | None = None):
        self.station = username
        self.counts: Counter = Counter()
        self.connected = threading.Event()
        self.source = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=username, clean_session=False)
        self.source.username_pw_set(username, password)
        self.source.on_connect = self._on_connect
        self.source.on_message = self._on_message
        self.source.connect_async(host, port, keepalive=30)
        if to is None:
            self.target = self.source
        else:
            self.target = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                      client_id=f"{username}-recorder-out")
            self.target.username_pw_set(to[2], to[3])
            self.target.connect_async(to[0], to[1], keepalive=30)

    def _on_connect(self, client, _userdata, _flags, reason, _props=None) -> None:
        if reason.is_failure:
            log.error("recorder bridge: broker refused the login (%s)", reason)
            return
        client.subscribe([(topic, 1) for topic in SUBSCRIPTIONS])
        self.connected.set()

    def _on_message(self, _client, _userdata, message) -> None:
        out = translate(message.topic, message.payload, self.station)
        if out is None:
            self.counts["skipped"] += 1
            return
        self.target.publish(out[0], out[1], qos=1, retain=False)
        self.counts["republished"] += 1

    def run(self, stop: threading.Event) -> None:
        """Bridge until ``stop``."""
        if self.target is not self.source:
            self.target.loop_start()
        self.source.loop_start()
        try:
            stop.wait()
        finally:
            self.source.disconnect()
            self.source.loop_stop()
            if self.target is not self.source:
                self.target.disconnect()
                self.target.loop_stop()
