"""The wire format, pinned by golden files; runs under pytest and on the MicroPython unix port.

The same golden bytes are what the gateway tests parse, so device and gateway cannot drift.
"""

from tracker import wire

GOLDEN = "tests/data/wire/"


class FixLike:
    """The integer fields of ``tracker.nmea.Fix`` (kept local so this file tests wire alone)."""

    def __init__(self, **fields):
        self.t = 1795000000
        self.valid = True
        self.lat_e6 = 51480123
        self.lon_e6 = -1234
        self.speed_cmps = 140
        self.course_cdeg = 9050
        self.alt_cm = 2460
        self.quality = 1
        self.mode = 65
        self.sats = 9
        self.hdop_x100 = 90
        self.acc_cm = 350
        for name in fields:
            setattr(self, name, fields[name])


def golden(name):
    with open(GOLDEN + name) as f:
        return f.read().strip()


def test_location_matches_golden_file():
    text = wire.location("T-0001", 17, FixLike(), 1795000002, ["HS-GRN-01"], 87, "t")
    assert text == golden("location.json")


def test_location_without_optional_fields_matches_golden_file():
    fix = FixLike(speed_cmps=-1, course_cdeg=-1, alt_cm=-1000000, hdop_x100=-1)
    text = wire.location("T-0001", 18, fix, 1795000003)
    assert text == golden("location_minimal.json")


def test_transition_matches_golden_file():
    text = wire.transition("T-0001", 19, True, "HS-GRN-01", "Greenwich \"Market\" square",
                           1794999990, 51480100, -2000, 350, 1795000004)
    assert text == golden("transition_enter.json")


def test_status_matches_golden_file():
    text = wire.status("T-0001", True, 1795000005, "f3a9c2d1", 3, 87, "0.1.0", 20)
    assert text == golden("status.json")


def test_last_will_is_an_offline_status():
    assert wire.decode(wire.status("T-0001", False, 0))["online"] is False


def test_coordinates_print_exactly_from_micro_degrees():
    assert wire.format_e6(0) == "0.000000"
    assert wire.format_e6(-1) == "-0.000001"
    assert wire.format_e6(-999999) == "-0.999999"
    assert wire.format_e6(51480123) == "51.480123"
    assert wire.format_e6(-180000000) == "-180.000000"


def test_golden_files_decode():
    for name in ("location.json", "location_minimal.json", "transition_enter.json",
                 "status.json"):
        msg = wire.decode(golden(name))
        assert msg["dev"] == "T-0001"


def test_decoded_location_keeps_micro_degree_precision():
    msg = wire.decode(golden("location.json"))
    assert round(msg["lat"] * 1000000) == 51480123
    assert round(msg["lon"] * 1000000) == -1234


def rejection(payload):
    try:
        wire.decode(payload)
    except wire.WireError as exc:
        return exc.reason
    return None


def test_bad_payloads_are_rejected_with_a_reason():
    assert rejection(b"{not json") == "malformed"
    assert rejection(b"[1, 2]") == "malformed"
    assert rejection(b"\xff\xfe") == "malformed"
    assert rejection(b'{"_type": "card"}') == "unknown_type"
    assert rejection(b'{"_type": "location", "tst": 1, "lat": 1}') == "missing_field"
    assert rejection(b'{"_type": "location", "tst": "1", "lat": 1, "lon": 2}') == "bad_field"
    assert rejection(b'{"_type": "location", "tst": 1, "lat": 91, "lon": 2}') == "bad_field"
    assert rejection(b'{"_type": "location", "tst": 1, "lat": 1, "lon": 2, "seq": 0}') == \
        "bad_field"
    assert rejection(b'{"_type": "transition", "tst": 1, "event": "x", "rid": "a"}') == \
        "bad_field"
    assert rejection(b"{" + b" " * 5000 + b"}") == "oversize"


def test_topics_name_source_device_and_kind():
    assert wire.device_topic("T-0001", wire.KIND_LOCATION) == "hotspots/dev/T-0001/loc"
    assert wire.parse_topic("hotspots/dev/T-0001/event") == ("tracker", "T-0001", "event")
    assert wire.parse_topic("owntracks/4711/phone") == ("owntracks", "4711-phone", "")
    try:
        wire.parse_topic("hotspots/dev//loc")
        raise AssertionError("empty device id accepted")
    except wire.WireError as exc:
        assert exc.reason == "unknown_topic"


# -- hostile payloads (issue 16): each is rejected with its reason, never an exception ------------
LOC = '{"_type":"location","dev":"T-0001","seq":1,"tst":1795000000,"lat":51.5,"lon":-0.1'


def location_with(extra):
    return (LOC + extra + "}").encode()


def test_nesting_is_refused_before_the_parser_recurses():
    deep = "[" * 2000 + "]" * 2000
    assert rejection(location_with(',"x":' + deep)) == "too_deep"
    assert rejection(("[" * 1500 + "]" * 1500).encode()) == "too_deep"
    status = '{"_type":"status","online":true,"fw":' + "{" * 1500
    assert rejection(status.encode()) == "too_deep"
    # Brackets inside strings are text, not nesting; an escaped quote does not end the string.
    brackets = '"[[[[[[[[\\"{{{{{{{{{"'
    assert wire.decode(location_with(',"note":' + brackets))["note"] == '[[[[[[[["{{{{{{{{{'
    assert rejection(location_with(',"x":[[[[1]]]]')) == "too_deep"
    assert wire.decode(location_with(',"x":[[[1]]]'))["x"] == [[[1]]]


def test_lone_surrogates_and_control_characters_are_refused_in_every_string():
    for field in ("dev", "fences", "fw", "desc", "t"):
        text = '{"_type":"status","online":true,"%s":"ab\\ud800"}' % field
        assert rejection(text.encode()) == "bad_text", field
    assert rejection(b'{"_type":"status","online":true,"fw":"\\udfff"}') == "bad_text"
    assert rejection(b'{"_type":"status","online":true,"fw":"a\\u0000b"}') == "bad_text"
    assert rejection(b'{"_type":"status","online":true,"fw":"a\\u001bb"}') == "bad_text"
    assert rejection(b'{"_type":"status","online":true,"fw":"a\x7fb"}') == "bad_text"
    assert rejection(b'{"_type":"status","online":true,"fw":"a\\u0085b"}') == "bad_text"
    assert rejection(b'{"_type":"status","online":true,"fw":"a\\u202eb"}') == "bad_text"
    assert rejection(b'{"_type":"status","online":true,"fw":"a\\uffffb"}') == "bad_text"
    assert rejection(b'{"_type":"status","online":true,"\\ud800":1}') == "bad_text"
    assert rejection(location_with(',"inregions":["HS\\ud800"]')) == "bad_text"
    # Surrogates written as UTF-8 bytes are not UTF-8 (CPython); MicroPython decodes them, and
    # the scan refuses them.
    assert rejection(b'{"_type":"status","online":true,"fw":"\xed\xa0\x80"}') in (
        "malformed", "bad_text")
    # A raw control character in a string is not JSON at all (CPython's parser says so;
    # MicroPython's takes it, and the scan refuses it).
    assert rejection(b'{"_type":"status","online":true,"fw":"a\nb"}') in ("malformed", "bad_text")
    # Real text passes: accents, quotes, non-Latin scripts.
    msg = wire.decode('{"_type":"status","online":true,"fw":"Gr\u00fcn \\"1\\" \u0645"}'.encode())
    assert msg["fw"] == 'Gr\u00fcn "1" \u0645'


def test_numbers_must_be_finite_and_exact():
    assert rejection(b'{"_type":"status","online":true,"batt":NaN}') == "malformed"
    assert rejection(b'{"_type":"status","online":true,"outbox":Infinity}') == "malformed"
    assert rejection(b'{"_type":"status","online":true,"batt":-Infinity}') == "malformed"
    assert rejection(location_with(',"acc":1e400')) == "bad_number"
    assert rejection(location_with(',"vel":-1e999')) == "bad_number"
    assert rejection(b'{"_type":"status","online":true,"batt":18446744073709551616}') == \
        "bad_number"
    assert rejection(location_with(',"batt":18446744073709551616')) == "bad_number"
    assert rejection((LOC.replace('"seq":1', '"seq":9223372036854775807') + "}").encode()) == \
        "bad_number"
    assert rejection(location_with(',"extra":[1,9007199254740992]')) == "bad_number"
    assert wire.decode(location_with(',"extra":9007199254740991'))["extra"] == 9007199254740991
    assert wire.decode(location_with(',"acc":1e2'))["acc"] == 100.0


def test_known_fields_have_their_json_types_wherever_they_appear():
    assert rejection(location_with(',"inregions":"HS1"')) == "bad_field"
    assert rejection(location_with(',"inregions":{"a":1}')) == "bad_field"
    assert rejection(location_with(',"inregions":[1]')) == "bad_field"
    assert rejection(location_with(',"inregions":[["HS1"]]')) == "bad_field"
    assert rejection(location_with(',"inrids":[null]')) == "bad_field"
    assert wire.decode(location_with(',"inregions":["HS-1","HS-2"]'))["inregions"] == [
        "HS-1", "HS-2"]
    assert rejection(location_with(',"acc":"5"')) == "bad_field"
    assert rejection(location_with(',"vel":true')) == "bad_field"
    assert rejection(location_with(',"batt":null')) == "bad_field"
    assert rejection(location_with(',"created_at":1.5')) == "bad_field"
    assert rejection(b'{"_type":"status","online":1}') == "bad_field"
    assert rejection(b'{"_type":"status","online":true,"fw":7}') == "bad_field"
    assert rejection(b'{"_type":"status","online":true,"dev":5}') == "bad_field"
    assert rejection(b'{"_type":5,"online":true}') == "bad_field"
    assert rejection(b'{"online":true}') == "unknown_type"
    assert rejection(b'{"_type":"transition","tst":1,"event":"enter","rid":["a"]}') == \
        "bad_field"
    # A transition without coordinates is fine (lat is optional there).
    assert wire.decode(b'{"_type":"transition","tst":1,"event":"leave","rid":"a"}')["rid"] == "a"
    assert rejection(b'{"_type":"transition","tst":1,"event":"leave","rid":"a","lat":1}') == \
        "bad_field"
    # Ranges (an empty id, a region id of 40 characters, 20 regions) are the intake's to judge.
    assert wire.decode(location_with(',"inregions":["","%s"]' % ("H" * 40)))["inregions"][0] == ""


def test_strings_are_bounded():
    long_text = "x" * (wire.MAX_TEXT + 1)
    assert rejection(('{"_type":"status","online":true,"fw":"%s"}' % long_text).encode()) == \
        "bad_text"
    assert rejection(('{"_type":"status","online":true,"%s":1}' % long_text).encode()) == \
        "bad_text"
    assert rejection(location_with(',"x":["%s"]' % long_text)) == "bad_text"
    ok = "x" * wire.MAX_TEXT
    assert wire.decode(('{"_type":"status","online":true,"fw":"%s"}' % ok).encode())["fw"] == ok


def test_error_details_never_echo_the_content():
    for payload in (b'{"_type":"status","online":true,"\\ud800":NaN}',
                    b'{"_type":"\\ud800"}', b'{"_type":"status","online":true,"\\u202e":1e999}',
                    b'{"_type":"status","online":true,"x\\u0001":[1e999]}'):
        try:
            wire.decode(payload)
        except wire.WireError as exc:
            text = str(exc)
            for ch in text:
                assert " " <= ch < "\x7f", text
        else:
            raise AssertionError("accepted %r" % payload)
