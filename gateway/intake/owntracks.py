"""OwnTracks app messages (current iOS and Android apps) into observations: every ``_type``.

The apps publish under ``owntracks/<account>/<device>``; what each message becomes:

=================  ===============  ===================================================
topic suffix       ``_type``        observation
=================  ===============  ===================================================
(none)             ``location``     a location; phone region names in ``inregions`` go
                                    to ``extra.regions`` (they are not hot spot ids)
(none)             ``lwt``          a status: offline (the broker's last will)
``/event``         ``transition``   a transition; without ``rid`` (Android) the
                                    region's name (``desc``) stands in for it, and
                                    reports match it to a hot spot by id or name
``/info``          ``card``         an app message (``face`` image dropped)
``/waypoint``      ``waypoint``     an app message (a region defined on the phone)
``/waypoints``     ``waypoints``    an app message (the phone's region list)
``/status``        ``status``       an app message (the app's own state report)
``/step``          ``steps``        an app message (step count, iOS)
``/cmd``           ``cmd``          an app message (a command seen on the bus)
``/beacon``        ``beacon``       an app message (iOS beacon ranging)
any                ``configuration``  an app message, secrets replaced by ``"***"``
any                ``encrypted``    opened with the phone's key first
                                    (:mod:`gateway.intake.owntracks_crypto`)
=================  ===============  ===================================================

Attachments are dropped before anything else and the message kept: a card's ``face`` (a PNG)
and an iOS location's ``image``/``imagename`` would otherwise push a position over the wire
format's size limit and lose it. What was dropped is recorded (``extra.dropped``: names and
bytes). The location fields a supervisor or analyst uses and that have no column are kept in
``extra``: ``bs``, ``conn``, ``SSID``/``BSSID``, ``m``, ``vac``, ``p``, ``tid``, ``poi``,
``tag``, ``motionactivities``, ``source``, ``wtst``, ``rad``, ``topic``.
"""

from __future__ import annotations

import json

from gateway.intake.observation import APP, Observation
from tracker import wire

#: The raw payload the adapter reads at all: the broker's packet limit (an image can be large).
MAX_RAW = 65_536
#: Fields that carry attachments, by message type.
ATTACHMENTS = {"card": ("face",), "location": ("image", "imagename", "face")}
#: Location fields kept in ``extra`` (names as the apps send them).
EXTRA_LOCATION = ("bs", "conn", "SSID", "BSSID", "ssid", "bssid", "m", "vac", "p", "tid", "poi",
                  "tag", "motionactivities", "source", "wtst", "rad", "topic", "inrids")
EXTRA_TRANSITION = ("wtst", "tid", "t", "rid")
#: Message types stored as app messages, and the topic suffixes they come on.
APP_TYPES = ("card", "waypoint", "waypoints", "status", "steps", "cmd", "beacon",
             "configuration")
SUFFIXES = ("", "event", "info", "waypoint", "waypoints", "status", "step", "cmd", "beacon",
            "dump")
#: Configuration keys that hold secrets: never stored.
SECRETS = ("password", "passphrase", "encryptionKey", "tlsClientCrtPassword", "opencageApiKey",
           "clientpkcs")


class OwnTracksError(ValueError):
    """A message that makes no observation; ``reason`` is the quarantine reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def load(payload: bytes) -> dict:
    """The JSON object of a message (size and nesting bounded).

    :raises OwnTracksError: ``oversize``, ``malformed``
    """
    if len(payload) > MAX_RAW:
        raise OwnTracksError("oversize", f"{len(payload)} bytes")
    try:
        msg = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise OwnTracksError("malformed", str(exc)[:200]) from None
    if not isinstance(msg, dict):
        raise OwnTracksError("malformed", "not a JSON object")
    return msg


def strip_attachments(msg: dict) -> dict:
    """``msg`` without its attachment fields; what went is listed in ``_dropped``."""
    names = ATTACHMENTS.get(msg.get("_type"), ())
    dropped = {n: len(json.dumps(msg[n])) for n in names if n in msg}
    if not dropped:
        return msg
    out = {k: v for k, v in msg.items() if k not in dropped}
    out["_dropped"] = dropped
    return out


def decode(device_id: str, suffix: str, msg: dict, origin: str,
           build_location) -> Observation:
    """The observation of one OwnTracks message (already opened if it was encrypted).

    :param build_location: turns a wire-checked location/transition/lwt dict into an
        observation (:func:`gateway.intake.mqtt.observation`), so phones and trackers share it
    :raises OwnTracksError: ``unknown_type`` and the wire format's reasons
    """
    msg_type = msg.get("_type")
    msg = strip_attachments(msg)
    dropped = msg.pop("_dropped", None)
    if msg_type in APP_TYPES:
        return _app(device_id, msg_type, msg, origin, dropped)
    if msg_type not in ("location", "transition", "lwt"):
        raise OwnTracksError("unknown_type", repr(msg_type)[:100])
    if msg_type == "transition" and not msg.get("rid") and isinstance(msg.get("desc"), str):
        # Android: no region id; the region's name is what identifies it on the phone.
        msg = {**msg, "rid": _cut(msg["desc"], 32)}
    regions = msg.get("inregions") if msg_type == "location" else None
    if regions is not None:
        msg = {k: v for k, v in msg.items() if k != "inregions"}
    try:
        checked = wire.decode(json.dumps(msg).encode())
    except wire.WireError as exc:
        raise OwnTracksError(exc.reason, exc.detail) from None
    obs = build_location("owntracks", device_id, checked, origin)
    names = EXTRA_LOCATION if msg_type == "location" else EXTRA_TRANSITION
    extra = dict(obs.extra)
    for name in names:
        value = checked.get(name)
        if type(value) in (str, int, float) or (type(value) is list and len(value) <= 16):
            extra[name] = value
    if regions is not None and type(regions) is list:
        # A phone's regions are its own (names set on the phone): never hot spot ids here.
        extra["regions"] = [r for r in regions if isinstance(r, str)][:16]
    if dropped:
        extra["dropped"] = dropped
    obs.extra = extra
    return obs


def _app(device_id: str, msg_type: str, msg: dict, origin: str, dropped: dict | None
         ) -> Observation:
    if msg_type == "configuration":
        msg = {k: ("***" if k in SECRETS else v) for k, v in msg.items()}
    if dropped:
        msg = {**msg, "_dropped": dropped}
    tst = msg.get("tst")
    return Observation(APP, "owntracks", device_id, origin,
                       tst=tst if type(tst) is int else None, app_type=msg_type,
                       payload=json.dumps(msg, ensure_ascii=False, sort_keys=True))


def _cut(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, on a character boundary."""
    raw = text.encode("utf-8")[:max_bytes]
    return raw.decode("utf-8", "ignore")
