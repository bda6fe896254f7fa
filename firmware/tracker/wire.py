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
# Deepest nesting of objects and arrays: the message object is 1, ``inregions`` in it is 2. The
# messages of the contract need 2; the slack is for OwnTracks fields to come. Checked on the text,
# before the JSON parser (which recurses) ever sees it.
MAX_DEPTH = const(4)
# Integers must be exact in every JSON parser, IEEE doubles included (RFC 7493, I-JSON).
# A plain global, not const(): 2**53 is not a small int on a board.
INT_MAX = 9007199254740991


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
           gnss=None, fence_err="", fence_rej=0):
    """Build a (retained) ``status`` message; with ``online`` false it doubles as the last will.

    ``gnss``: the GNSS module's set-up as ``drivers.gnss_module.GnssModule.status`` gives it
    (module, state, refused, no_answer), or None for a board without a module driver.
    ``fence_err``: why the last fence set offered was refused (the tracker kept ``fences``),
    empty once a set is applied; ``fence_rej``: sets refused since start-up.
    """
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
    if gnss:
        text += ',"gnss":{"module":%s,"state":%s,"refused":%d,"no_answer":%d}' % (
            _json_str(gnss["module"]), _json_str(gnss["state"]), gnss["refused"],
            gnss["no_answer"])
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
    # not pass as a number.
    t = type(value)
    if kind == "int":
        return t is int
    if kind == "num":
        return t is int or t is float
    if kind == "str":
        return t is str
    return t is bool


def _depth_ok(text):
    """True if no object or array nests deeper than MAX_DEPTH (brackets in strings skipped)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return True  # the usual case, decided without a loop
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "[" or ch == "{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch == "]" or ch == "}":
            depth -= 1
    return True


def _unicode(text):
    r"""False if ``text`` holds a surrogate: a lone ``\ud800`` escape is valid JSON syntax but
    no Unicode text (UTF-8 cannot even encode it; I-JSON forbids it)."""
    for ch in text:
        if 0xD800 <= ord(ch) < 0xE000:
            return False
    return True


def _check(value, key, scan):
    """Raise WireError unless ``value`` (and everything in it) is a finite number, an exact
    integer, text (checked for surrogates if ``scan``), or a container of those. Nesting is
    already bounded. ``key`` is the field it is in, named in the error."""
    t = type(value)
    if t is str:
        if scan and not _unicode(value):
            raise WireError("bad_text", _name(key) + ": lone surrogate")
    elif t is int:
        if value > INT_MAX or value < -INT_MAX:
            raise WireError("bad_field", _name(key) + ": integer beyond 2**53")
    elif t is float:
        if value - value != 0:  # inf - inf and nan - nan are nan
            raise WireError("bad_field", _name(key) + ": not a finite number")
    elif t is list:
        for item in value:
            _check(item, key, scan)
    elif t is dict:
        for k in value:
            _check(k, key, scan)
            _check(value[k], key, scan)


def _name(key):
    # Field names go into error details, which are stored and shown: only printable ASCII.
    if type(key) is str and len(key) <= 32:
        for ch in key:
            if not " " <= ch < "\x7f":
                return "?"
        return key
    return "?"


try:
    # Python's json reads NaN, Infinity and -Infinity (which are not JSON, RFC 8259) as floats;
    # decode refuses them with the field they are in, as it does 1e400.
    _loads = json.JSONDecoder().decode
    # Text decoded as strict UTF-8 cannot hold a surrogate: only \u escapes can make one.
    _STRICT = True
except AttributeError:  # MicroPython: its json refuses NaN and Infinity by itself, but its
    _loads = json.loads  # str takes surrogates written as UTF-8 bytes: every string is scanned.
    _STRICT = False


def decode(payload):
    """Parse and check one message; returns the dict or raises :class:`WireError`.

    The wire format's own rules, which make a message well-formed (I-JSON, RFC 7493): size;
    nesting depth (checked on the text, so that the parser's recursion is never at stake);
    UTF-8 JSON with an object at the top (``NaN`` and ``Infinity`` are not JSON); every number
    finite and every integer exact (within ±(2**53 − 1)); no lone surrogate in any string or
    key; a known ``_type`` with its required fields of their JSON types; coordinates in range, a
    positive ``seq`` and the transition's ``event``. Unknown extra fields are kept: OwnTracks
    adds fields between app versions.

    What each field's value may be (ranges, lengths, control characters, the types of the
    optional fields) and whether a bad one quarantines the message or is dropped is the
    gateway's intake's business (``gateway/intake/validate.py``, ``docs/contracts.md``).

    The ``reason`` of the :class:`WireError` is one of ``oversize``, ``too_deep``,
    ``malformed``, ``bad_text``, ``unknown_type``, ``missing_field``, ``bad_field``; its
    ``detail`` names the field, never echoes the content.
    """
    if len(payload) > MAX_PAYLOAD:
        raise WireError("oversize", "%d bytes" % len(payload))
    size = -1
    try:
        if isinstance(payload, (bytes, bytearray, memoryview)):
            payload = bytes(payload)
            size = len(payload)
            payload = payload.decode()
    except UnicodeError:
        raise WireError("malformed", "not UTF-8")
    if not _depth_ok(payload):
        raise WireError("too_deep", "nested deeper than %d" % MAX_DEPTH)
    try:
        msg = _loads(payload)
    except ValueError:
        raise WireError("malformed", "not JSON")
    if type(msg) is not dict:
        raise WireError("malformed", "not a JSON object")
    scan = "\\u" in payload or not (_STRICT and size >= 0)
    for key, value in msg.items():
        # The common cases inline (a location has 18 fields); _check for the rest.
        t = type(value)
        if t is int:
            if -INT_MAX <= value <= INT_MAX:
                continue
        elif t is float:
            if value - value == 0:  # inf - inf and nan - nan are nan
                continue
        elif t is str or t is bool or value is None:
            if not scan:
                continue
        _check(value, key, scan)
    if scan:
        for key in msg:
            if not _unicode(key):
                raise WireError("bad_text", "field name: lone surrogate")
    kind = msg.get("_type")
    required = _REQUIRED.get(kind) if type(kind) is str else None
    if required is None:
        raise WireError("unknown_type", _name(kind) if type(kind) is str else "missing")
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

    Exact, and the device is the account that published (the broker lets an account publish only
    under its own name): ``tracker`` for ``hotspots/dev/<account>/<kind>``, ``owntracks`` for a
    phone running the OwnTracks app, ``owntracks/<account>/<name>`` (kind ``""``) or
    ``owntracks/<account>/<name>/event``, whose device is ``<account>``: the ``<name>`` is the
    app's free-text device setting and identifies nothing.
    """
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == TOPIC_ROOT and parts[1] == "dev" and parts[2] and parts[3]:
        return "tracker", parts[2], parts[3]
    if parts[0] == OWNTRACKS_ROOT and len(parts) in (3, 4) and parts[1] and parts[2]:
        kind = parts[3] if len(parts) == 4 else ""
        if kind in ("", "event"):
            return "owntracks", parts[1], kind
    raise WireError("unknown_topic", topic)
