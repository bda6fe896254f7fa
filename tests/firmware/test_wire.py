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
    # The account is the device (issue 16: account T on owntracks/T/0001 was tracker T-0001).
    assert wire.parse_topic("owntracks/4711/phone") == ("owntracks", "4711", "")
    assert wire.parse_topic("owntracks/T/0001") == ("owntracks", "T", "")
    assert wire.parse_topic("owntracks/T/0001/event") == ("owntracks", "T", "event")
    for topic in ("hotspots/dev//loc", "hotspots/dev/T-1/", "owntracks/T", "owntracks//x",
                  "owntracks/T/0001/cmd", "owntracks/T/0001/event/x", "hotspots/dev/T-1/loc/x"):
        try:
            wire.parse_topic(topic)
            raise AssertionError("accepted " + topic)
        except wire.WireError as exc:
            assert exc.reason == "unknown_topic"


# -- hostile payloads (issue 16): each is rejected with its reason, never an exception ------------
# The wire format's own rules only; what each field's value may be is the gateway intake's
# (tests/test_intake_poison.py), and the whole chain is in tests/test_hostile_input.py.
LOC = '{"_type":"location","dev":"T-0001","seq":1,"tst":1795000000,"lat":51.5,"lon":-0.1'


def location_with(extra):
    return (LOC + extra + "}").encode()


def test_nesting_is_refused_before_the_parser_recurses():
    deep = "[" * 2000 + "]" * 2000
    assert rejection(('{"_type":"status","online":true,"x":' + deep + "}").encode()) == \
        "too_deep"
    assert rejection(("[" * 1500 + "]" * 1500).encode()) == "too_deep"
    assert rejection(('{"_type":"status","online":true,"fw":' + "{" * 1500).encode()) == \
        "too_deep"
    # Brackets inside strings are text, not nesting; an escaped quote does not end the string.
    brackets = '"[[[[[[[[\\"{{{{{{{{{"'
    assert wire.decode(location_with(',"note":' + brackets))["note"] == '[[[[[[[["{{{{{{{{{'
    assert rejection(location_with(',"x":[[[[1]]]]')) == "too_deep"
    assert wire.decode(location_with(',"x":[[[1]]]'))["x"] == [[[1]]]


def test_lone_surrogates_are_refused_in_every_string_and_key():
    for field in ("dev", "fences", "fw", "desc", "t"):
        text = '{"_type":"status","online":true,"%s":"ab\\ud800"}' % field
        assert rejection(text.encode()) == "bad_text", field
    assert rejection(b'{"_type":"status","online":true,"fw":"\\udfff"}') == "bad_text"
    assert rejection(b'{"_type":"status","online":true,"\\ud800":1}') == "bad_text"
    assert rejection(location_with(',"inregions":["HS\\ud800"]')) == "bad_text"
    assert rejection(location_with(',"x":{"y":["\\ud800"]}')) == "bad_text"
    # Surrogates written as UTF-8 bytes are not UTF-8 (CPython); MicroPython decodes them, and
    # the scan refuses them.
    assert rejection(b'{"_type":"status","online":true,"fw":"\xed\xa0\x80"}') in (
        "malformed", "bad_text")
    # Real text passes: accents, quotes, non-Latin scripts. Control characters are valid JSON
    # text: the intake judges them per field.
    msg = wire.decode('{"_type":"status","online":true,"fw":"Gr\u00fcn \\"1\\" \u0645"}'.encode())
    assert msg["fw"] == 'Gr\u00fcn "1" \u0645'
    assert wire.decode(b'{"_type":"status","online":true,"fw":"a\\u0000b"}')["fw"] == "a\x00b"


def test_numbers_must_be_finite_and_exact():
    # NaN and Infinity are not JSON: CPython's parser reads them and decode refuses the field;
    # MicroPython's parser refuses them itself.
    for raw_value in ("NaN", "Infinity", "-Infinity"):
        assert rejection(location_with(',"acc":' + raw_value)) in ("bad_field", "malformed")
    assert rejection(b'{"_type":"status","online":true,"batt":NaN}') in ("bad_field",
                                                                          "malformed")
    assert rejection(location_with(',"acc":1e400')) == "bad_field"
    assert rejection(location_with(',"vel":-1e999')) == "bad_field"
    assert rejection(b'{"_type":"status","online":true,"batt":18446744073709551616}') == \
        "bad_field"
    assert rejection((LOC.replace('"seq":1', '"seq":9223372036854775807') + "}").encode()) == \
        "bad_field"
    assert rejection(location_with(',"extra":[1,9007199254740992]')) == "bad_field"
    assert rejection(location_with(',"x":{"y":1e400}')) == "bad_field"
    assert wire.decode(location_with(',"extra":9007199254740991'))["extra"] == 9007199254740991
    assert wire.decode(location_with(',"acc":1e2'))["acc"] == 100.0


def test_required_fields_have_their_json_types():
    assert rejection(b'{"_type":"status","online":1}') == "bad_field"
    assert rejection(b'{"_type":5,"online":true}') == "unknown_type"
    assert rejection(b'{"_type":["status"],"online":true}') == "unknown_type"
    assert rejection(b'{"online":true}') == "unknown_type"
    assert rejection(b'{"_type":"transition","tst":1,"event":"enter","rid":["a"]}') == \
        "bad_field"
    assert rejection(location_with(',"seq":"1"')) == "bad_field"
    # A transition without coordinates is fine (lat is optional there).
    assert wire.decode(b'{"_type":"transition","tst":1,"event":"leave","rid":"a"}')["rid"] == "a"
    assert rejection(b'{"_type":"transition","tst":1,"event":"leave","rid":"a","lat":1}') == \
        "bad_field"
    # Optional fields of the wrong type are the intake's to drop or refuse.
    assert wire.decode(location_with(',"inregions":"HS1"'))["inregions"] == "HS1"


def test_error_details_never_echo_the_content():
    for payload in (b'{"_type":"status","online":true,"\\ud800":1e999}',
                    b'{"_type":"\\ud800"}', b'{"_type":"status","online":true,"\\u202e":1e999}',
                    b'{"_type":"status","online":true,"x\\u0001":[1e999]}',
                    b'{"_type":"status","online":true,"fw":"\\ud800\\u202e"}'):
        try:
            wire.decode(payload)
        except wire.WireError as exc:
            text = str(exc)
            for ch in text:
                assert " " <= ch < "\x7f", text
        else:
            raise AssertionError("accepted %r" % payload)
