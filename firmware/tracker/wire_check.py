"""The wire format's own checks of a received message (:func:`decode`), :class:`WireError`,
:func:`parse_topic` and :func:`fences_announcement` (reached as ``tracker.wire.<name>``).

Kept out of :mod:`tracker.wire` because the tracker builds messages and never decodes one: this
is the gateway's, the simulators' and the tests' code, and as bytecode it would sit in the
tracker's heap for nothing (about 1.2 KB of ``.mpy``, docs/memory.md). ``tracker.wire.decode``
loads it on first use; it runs on MicroPython as on CPython (the portable tests prove it).
"""

import json

from tracker.compat import const

# Reached as ``tracker.wire.<name>`` too: the format's constants for the gateway's side.
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

#: The keys of the status message's ``energy`` object, in the order ``tracker.wire.status``
#: takes them.
ENERGY_FIELDS = ("up_ms", "awake_ms", "gnss_on_ms", "fixes", "wakeups", "connects", "tx", "rx")


def tracker_id(device_id):
    """OwnTracks ``tid``: the last two characters of the device id (as ``tracker.wire`` writes
    it)."""
    return device_id[-2:]


class WireError(ValueError):
    """A message that does not follow the wire format; ``reason`` is a short counter key."""

    def __init__(self, reason, detail=""):
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail


def fences_announcement(version, size):
    """The retained message on :func:`fences_topic`: which set is current, and its size."""
    return '{"version":%s,"size":%d}' % (json.dumps(version), size)


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
