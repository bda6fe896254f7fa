"""MQTT messages of trackers and OwnTracks phones into observations: decode only.

Topic to device is exact, and the device is the broker account that published (the ACL lets an
account publish only under its own name, ``gateway.broker``):

=============================================  =============  ===============
topic                                          source         device id
=============================================  =============  ===============
``hotspots/dev/<account>/{loc,event,status}``  ``tracker``    ``<account>``
``owntracks/<account>/<name>`` (``/event``)    ``owntracks``  ``<account>``
=============================================  =============  ===============

The OwnTracks ``<name>`` (the app's "device" setting) is free text chosen on the phone: it is
kept as ``extra.topic_device`` and identifies nothing. So the account ``T`` publishing on
``owntracks/T/0001`` is the phone ``T``, never the tracker ``T-0001``.

:func:`handle` is the whole adapter: decode with :mod:`tracker.wire` (the same module the tracker
builds messages with), turn the message into an :class:`~gateway.intake.observation.Observation`
and hand it to the intake, or hand the intake the reason it could not be decoded. The tracker's
outbox records pulled at the dock are the same messages: :func:`handle_record`.
"""

from __future__ import annotations

import time

from gateway.fleet.identity import RADIO_PREFIX, is_name
from gateway.intake import owntracks, owntracks_crypto
from gateway.intake.intake import Intake
from gateway.intake.observation import LOCATION, STATUS, TRANSITION, Observation
from tracker import wire

KMH_TO_MPS = 1 / 3.6
TRACKER_KINDS = (wire.KIND_LOCATION, wire.KIND_EVENT, wire.KIND_STATUS)
#: OwnTracks fields worth keeping for a supervisor (connection, Wi-Fi, battery state, ...).
_EXTRA_FIELDS = ("conn", "bs", "bssid", "ssid", "m", "vac", "p", "topic", "sats", "hdop")


class DecodeError(ValueError):
    """A message that does not make an observation; ``reason`` is the quarantine reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


#: Topics already resolved (a station has a few hundred devices, each on three topics).
_RESOLVED: dict[str, tuple[str, str, str]] = {}


def resolve_topic(topic: str) -> tuple[str, str, str]:
    """``(source, device_id, kind)`` of a topic the gateway subscribes to.

    ``kind`` is ``loc``/``event``/``status`` for a tracker, ``""`` or ``event`` for a phone.

    :raises DecodeError: ``unknown_topic`` for any other topic, ``bad_device_id`` when the
        account level is not a device id (:func:`gateway.fleet.identity.check_name`)
    """
    known = _RESOLVED.get(topic)
    if known is not None:
        return known
    parts = topic.split("/")
    if (len(parts) == 4 and parts[0] == wire.OWNTRACKS_ROOT and parts[1] and parts[2]
            and parts[3] in owntracks.SUFFIXES and parts[3] not in ("", "event")):
        # The apps' other topics (card, waypoints, steps ...: gateway/intake/owntracks.py);
        # the wire format itself knows only locations and events.
        source, device_id, kind = "owntracks", parts[1], parts[3]
    else:
        try:
            source, device_id, kind = wire.parse_topic(topic)
        except wire.WireError:
            raise DecodeError("unknown_topic", topic) from None
    if source == "tracker" and kind not in TRACKER_KINDS:
        raise DecodeError("unknown_topic", topic)
    # A broker account: never a radio's ``issi:<ISSI>`` (radios reach the gateway by serial).
    if not is_name(device_id) or device_id.startswith(RADIO_PREFIX):
        raise DecodeError("bad_device_id", device_id)
    if len(_RESOLVED) < 10_000:
        _RESOLVED[topic] = (source, device_id, kind)
    return source, device_id, kind


def observation(source: str, device_id: str, msg: dict, origin: str) -> Observation:
    """The observation a decoded wire message (:func:`tracker.wire.decode`) says.

    :raises DecodeError: a tracker message naming another device (``device_mismatch``), or an
        OwnTracks message type the gateway does not store (``unknown_type``)
    """
    msg_type = msg["_type"]
    if source == "tracker" and "dev" in msg and msg["dev"] != device_id:
        raise DecodeError("device_mismatch", _short(msg["dev"]))
    if msg_type in ("status", "lwt"):
        return Observation(
            STATUS, source, device_id, origin, seq=msg.get("seq"),
            online=False if msg_type == "lwt" else msg.get("online"),
            batt=msg.get("batt"), outbox=msg.get("outbox"), fences=msg.get("fences"),
            firmware=msg.get("fw"), created_at=msg.get("created_at"),
            energy=msg.get("energy"), fence_error=msg.get("fence_err"),
            fence_rejects=msg.get("fence_rej"))
    if msg_type == "transition":
        return Observation(TRANSITION, source, device_id, origin, event=msg.get("event"),
                           rid=msg.get("rid"), desc=msg.get("desc"), seq=msg.get("seq"),
                           tst=msg.get("tst"), lat=msg.get("lat"), lon=msg.get("lon"),
                           acc_m=msg.get("acc"), created_at=msg.get("created_at"))
    if msg_type != "location":
        raise DecodeError("unknown_type", _short(msg_type))
    get = msg.get
    regions = get("inregions")
    return Observation(
        LOCATION, source, device_id, origin, seq=get("seq"), tst=get("tst"), lat=get("lat"),
        lon=get("lon"), acc_m=get("acc"), speed_mps=_kmh_to_mps(get("vel")),
        course_deg=get("cog"), alt_m=get("alt"),
        inregions=tuple(regions) if type(regions) is list else regions, trigger=get("t"),
        created_at=get("created_at"), fix_quality=get("fix"), batt=get("batt"),
        extra=_extra(msg, origin, source) if source != "tracker" else {})


def handle(intake: Intake, topic: str, payload: bytes, received_at: float | None = None) -> str:
    """Decode one MQTT message and hand it to ``intake``; returns the intake's result.

    Never raises for what the message holds: whatever fails to decode is rejected (quarantined)
    with its reason.
    """
    received_at = time.time() if received_at is None else received_at
    device_id = None
    try:
        source, device_id, kind = resolve_topic(topic)
        if source == "owntracks":
            device_id = _phone_of(intake, device_id, topic)
            plain = payload
            if owntracks_crypto.is_encrypted(payload):
                # An app with an encryptionKey: the message is inside (docs/sources.md).
                plain = owntracks_crypto.open_envelope(
                    payload, owntracks_crypto.get_key(intake.conn, device_id))
            obs = owntracks.decode(device_id, kind, owntracks.load(plain), topic, observation)
        else:
            obs = observation(source, device_id, wire.decode(payload), topic)
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the gateway
        return _reject(intake, topic, exc, payload, received_at, device_id)
    return intake.submit(obs, received_at, raw=payload)


def _phone_of(intake: Intake, account: str, topic: str) -> str:
    """The device of an OwnTracks topic: the account, or, for a user with one account per
    phone (broker role ``phone``), the phone ``<account>.<device>`` registered as such. The
    broker lets only that phone's account publish there, and never gives a user both kinds
    of account (``gateway.broker``)."""
    parts = topic.split("/", 3)
    if len(parts) < 3 or "." in account:
        return account
    phone = f"{account}.{parts[2]}"
    if not is_name(phone):
        return account
    row = intake.conn.execute(
        "SELECT 1 FROM devices WHERE device_id = ? AND source = 'owntracks'"
        " AND registered_at IS NOT NULL", (phone,)).fetchone()
    return phone if row else account


def handle_record(intake: Intake, device_id: str, kind: str, payload: bytes, origin: str,
                  received_at: float | None = None) -> str:
    """Hand one message a tracker kept in its outbox (pulled at the dock, ``kind`` as on its
    topic: ``loc``, ``event``, ``status``) to ``intake``; as :func:`handle`, for a device whose
    id the caller knows (the dock asked the tracker), without a topic."""
    received_at = time.time() if received_at is None else received_at
    try:
        if kind not in TRACKER_KINDS:
            raise DecodeError("unknown_kind", _short(kind))
        obs = observation("tracker", device_id, wire.decode(payload), origin)
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the dock
        return _reject(intake, origin, exc, payload, received_at, device_id)
    return intake.submit(obs, received_at, raw=payload)


def _reject(intake: Intake, origin: str, exc: Exception, payload: bytes, received_at: float,
            device_id: str | None) -> str:
    """Quarantine a message that could not be decoded, with the reason ``exc`` gives."""
    if isinstance(exc, owntracks_crypto.SealedError):
        reason, detail = f"encrypted_{exc.reason}", exc.detail
    elif isinstance(exc, (owntracks.OwnTracksError, DecodeError, wire.WireError)):
        reason, detail = exc.reason, exc.detail
    elif isinstance(exc, RecursionError):
        # Not from the wire format, which refuses deep nesting on the text before parsing:
        # from a phone's app message that JSON could still parse but that is walked
        # recursively afterwards (a configuration nested ~500 deep, whose secrets are
        # redacted at any depth). tests/test_intake_poison.py pins both.
        reason, detail = "malformed", "nested too deep"
    else:
        reason, detail = "malformed", f"{type(exc).__name__}: {exc}"
    return intake.reject(origin, reason, detail, payload, received_at, device_id)


def _kmh_to_mps(vel: object) -> object:
    # Only a number is converted; anything else goes through for validation to drop and count.
    if type(vel) is int or type(vel) is float:
        try:
            return float(vel) * KMH_TO_MPS
        except OverflowError:  # an int beyond any float
            return float("inf")
    return vel


def _extra(msg: dict, origin: str, source: str) -> dict:
    extra = {}
    if source == "owntracks":
        extra["topic_device"] = origin.split("/")[2] if origin.count("/") >= 2 else ""
        for name in _EXTRA_FIELDS:
            value = msg.get(name)
            if type(value) in (str, int, float):
                extra[name] = value
    return extra


def _short(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:200]
