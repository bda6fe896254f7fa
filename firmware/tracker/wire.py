"""Wire format: OwnTracks-compatible JSON messages and the MQTT topics they travel on.

The one module that says what goes over the air. The tracker builds messages with it, the gateway
and the simulators parse them with it; golden files in ``tests/data/`` pin the exact bytes for
both. See ``docs/contracts.md`` for the field list.

Messages are built by string formatting rather than ``json.dumps`` of a dict: it fixes the field
order (so golden files are stable), and coordinates are printed from integer micro-degrees without
ever becoming floats, which are 32-bit on many boards.
"""

import json

from tracker.compat import const

TOPIC_ROOT = "hotspots"
OWNTRACKS_ROOT = "owntracks"

KIND_LOCATION = "loc"
KIND_EVENT = "event"
KIND_STATUS = "status"
KIND_COMMAND = "cmd"

# Largest payload the gateway accepts; OwnTracks messages are a few hundred bytes.
MAX_PAYLOAD = const(4096)


class WireError(ValueError):
    """A message that does not follow the wire format; ``reason`` is a short counter key."""

    def __init__(self, reason, detail=""):
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail


def device_topic(device_id, kind):
    """Topic a tracker publishes ``kind`` messages on (or receives commands on)."""
    return TOPIC_ROOT + "/dev/" + device_id + "/" + kind


def fences_topic(station):
    """Retained topic announcing a station's current fence set: ``{"version", "size"}``."""
    return TOPIC_ROOT + "/station/" + station + "/fences"


def fences_set_topic(station, version):
    """Topic holding the body of fence set ``version`` (retained): a tracker subscribes to it
    only when the announcement on :func:`fences_topic` names a version it does not run."""
    return fences_topic(station) + "/" + version


def fences_announcement(version, size):
    """The retained message on :func:`fences_topic`: which set is current, and its size."""
    return '{"version":%s,"size":%d}' % (_json_str(version), size)


def tracker_id(device_id):
    """OwnTracks ``tid``: the last two characters of the device id."""
    return device_id[-2:] if len(device_id) >= 2 else device_id


def format_e6(value):
    """Micro-degrees as a decimal degree string with six places, without floats."""
    sign = ""
    if value < 0:
        sign = "-"
        value = -value
    return "%s%d.%06d" % (sign, value // 1000000, value % 1000000)


def _round_div(value, divisor):
    """Integer division rounding half away from zero (``//`` alone floors negatives)."""
    if value < 0:
        return -((-value + divisor // 2) // divisor)
    return (value + divisor // 2) // divisor


def _json_str(text):
    # Hot spot names come from a trusted compiler but may still hold quotes or non-ASCII.
    return json.dumps(text)


def _regions(ids):
    return "[" + ",".join([_json_str(i) for i in ids]) + "]"


def location(device_id, seq, fix, created_at, inregions=(), batt=-1, trigger="t"):
    """Build a ``location`` message for a valid fix.

    :param fix: a ``tracker.nmea.Fix`` (or anything with the same integer fields)
    :param inregions: ids of the hot spots the tracker is inside
    :param batt: battery percentage, -1 when unknown (then omitted)
    :param trigger: OwnTracks trigger letter (``t`` timer, ``v`` moved, ``c`` region, ``p`` ping)
    """
    parts = [
        '{"_type":"location","tid":%s,"dev":%s,"seq":%d,"tst":%d,"created_at":%d'
        % (_json_str(tracker_id(device_id)), _json_str(device_id), seq, fix.t, created_at),
        ',"lat":%s,"lon":%s' % (format_e6(fix.lat_e6), format_e6(fix.lon_e6)),
        ',"acc":%d' % ((fix.acc_cm + 50) // 100),
    ]
    if fix.speed_cmps >= 0:
        # km/h, as OwnTracks has it: cm/s * 0.036.
        parts.append(',"vel":%d' % ((fix.speed_cmps * 36 + 500) // 1000))
    if fix.course_cdeg >= 0:
        parts.append(',"cog":%d' % ((fix.course_cdeg + 50) // 100 % 360))
    if fix.alt_cm > -1000000:
        parts.append(',"alt":%d' % _round_div(fix.alt_cm, 100))
    if batt >= 0:
        parts.append(',"batt":%d' % batt)
    parts.append(',"fix":%d,"sats":%d' % (fix.quality, fix.sats))
    if fix.hdop_x100 >= 0:
        parts.append(',"hdop":%d.%02d' % (fix.hdop_x100 // 100, fix.hdop_x100 % 100))
    parts.append(',"inregions":%s,"t":%s}' % (_regions(inregions), _json_str(trigger)))
    return "".join(parts)


def transition(device_id, seq, entering, rid, desc, tst, lat_e6, lon_e6, acc_cm, created_at):
    """Build a ``transition`` message: the tracker entered or left hot spot ``rid`` at ``tst``."""
    return (
        '{"_type":"transition","tid":%s,"dev":%s,"seq":%d,"tst":%d,"created_at":%d,'
        '"event":%s,"rid":%s,"desc":%s,"lat":%s,"lon":%s,"acc":%d,"t":"c"}'
        % (
            _json_str(tracker_id(device_id)),
            _json_str(device_id),
            seq,
            tst,
            created_at,
            '"enter"' if entering else '"leave"',
            _json_str(rid),
            _json_str(desc),
            format_e6(lat_e6),
            format_e6(lon_e6),
            (acc_cm + 50) // 100,
        )
    )


def status(device_id, online, created_at, fences="", outbox=0, batt=-1, fw="", seq=0,
           fence_err="", fence_rej=0):
    """Build a (retained) ``status`` message; with ``online`` false it doubles as the last will.

    ``fence_err``: why the last fence set offered was refused (the tracker kept ``fences``),
    empty once a set is applied; ``fence_rej``: sets refused since start-up."""
    text = '{"_type":"status","tid":%s,"dev":%s,"online":%s,"created_at":%d' % (
        _json_str(tracker_id(device_id)),
        _json_str(device_id),
        "true" if online else "false",
        created_at,
    )
    if seq:
        text += ',"seq":%d' % seq
    if fences:
        text += ',"fences":%s' % _json_str(fences)
    text += ',"outbox":%d' % outbox
    if batt >= 0:
        text += ',"batt":%d' % batt
    if fw:
        text += ',"fw":%s' % _json_str(fw)
    if fence_err:
        text += ',"fence_err":%s' % _json_str(fence_err)
    if fence_rej:
        text += ',"fence_rej":%d' % fence_rej
    return text + "}"


# Fields every message of a type must carry, and their JSON types (as Python type names, so the
# table also works on MicroPython).
_REQUIRED = {
    "location": (("tst", "int"), ("lat", "num"), ("lon", "num")),
    "transition": (("tst", "int"), ("event", "str"), ("rid", "str")),
    "status": (("online", "bool"),),
    # The OwnTracks app's last will: the phone lost its connection (``tst``: when it connected).
    "lwt": (("tst", "int"),),
}


def _is(value, kind):
    # type(), not isinstance(): JSON gives exactly these types, and bool (an int subclass) must
    # not pass as a number. Also the cheaper test, on the gateway's per-message path.
    t = type(value)
    if kind == "int":
        return t is int
    if kind == "num":
        return t is int or t is float
    if kind == "str":
        return t is str
    return t is bool


def decode(payload):
    """Parse and check one message; returns the dict or raises :class:`WireError`.

    Checks only what every consumer relies on: size, JSON syntax, a known ``_type``, the required
    fields with the right types, coordinates in range and a positive integer ``seq`` if present.
    Unknown extra fields are kept: OwnTracks adds fields between app versions.
    """
    if len(payload) > MAX_PAYLOAD:
        raise WireError("oversize", "%d bytes" % len(payload))
    try:
        if isinstance(payload, (bytes, bytearray, memoryview)):
            payload = bytes(payload).decode()
        msg = json.loads(payload)
    except (ValueError, UnicodeError) as exc:
        raise WireError("malformed", str(exc))
    if not isinstance(msg, dict):
        raise WireError("malformed", "not a JSON object")
    kind = msg.get("_type")
    required = _REQUIRED.get(kind)
    if required is None:
        raise WireError("unknown_type", repr(kind))
    for name, json_type in required:
        if name not in msg:
            raise WireError("missing_field", name)
        if not _is(msg[name], json_type):
            raise WireError("bad_field", name)
    if "lat" in msg:
        if not _is(msg["lat"], "num") or not -90 <= msg["lat"] <= 90:
            raise WireError("bad_field", "lat out of range")
        if not _is(msg.get("lon"), "num") or not -180 <= msg["lon"] <= 180:
            raise WireError("bad_field", "lon out of range")
    if "seq" in msg and (not _is(msg["seq"], "int") or msg["seq"] < 1):
        raise WireError("bad_field", "seq")
    if kind == "transition" and msg["event"] not in ("enter", "leave"):
        raise WireError("bad_field", "event")
    return msg


def parse_topic(topic):
    """Split a topic into ``(source, device_id, kind)``; raises :class:`WireError` if unknown.

    ``source`` is ``tracker`` for the project's own devices and ``owntracks`` for phones running
    the OwnTracks app (``owntracks/<user>/<device>``, device id ``<user>-<device>``).
    """
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == TOPIC_ROOT and parts[1] == "dev" and parts[2]:
        return "tracker", parts[2], parts[3]
    if len(parts) >= 3 and parts[0] == OWNTRACKS_ROOT and parts[1] and parts[2]:
        kind = parts[3] if len(parts) > 3 else ""
        return "owntracks", parts[1] + "-" + parts[2], kind
    raise WireError("unknown_topic", topic)
