"""The device side of the dock link (``tracker.dock``): frames, pulls, pushes, sign-out state.

Runs under pytest and on the MicroPython unix port (``tests/firmware/mprun.py``).
"""


from scratch import scratch, wipe

from tracker import dock
from tracker.app import Tracker
from tracker.dock import DockLink, frame, unframe
from tracker.fence import FenceSet
from tracker.outbox import Outbox

FENCES = "tests/data/fences/sample.json"


def nmea(body):
    x = 0
    for c in body.encode():
        x ^= c
    return b"$" + body.encode() + b"*" + ("%02X" % x).encode() + b"\r\n"


def epoch(second, east=0):
    """RMC and GGA of a fix at 12:00:<second> on 24 Nov 2026, walking east from 51.48 N 0.0 W."""
    hms = "1200%02d.00" % second
    lon = "00000.%04d" % (6000 - east)
    return [nmea("GPRMC,%s,A,5128.8000,N,%s,W,1.2,90.0,241126,,,A" % (hms, lon)),
            nmea("GPGGA,%s,5128.8000,N,%s,W,1,09,0.9,10.0,M,45.0,M,," % (hms, lon))]


def feed_walk(tracker, seconds, step_s=11):
    """Fixes ``step_s`` apart (each one due for a timer report)."""
    for i in range(seconds):
        for line in epoch(i * step_s % 60, i):
            tracker.feed_line(line, i * step_s * 1000)
    tracker.end_of_stream(seconds * step_s * 1000)


def request(link, rid, text, now_ms=0):
    """Send one request body; returns ``(ok, data)`` from the device's answer frame."""
    reply = link.handle_line(frame("%d %s" % (rid, text)), now_ms)
    assert reply is not None
    body = unframe(reply)
    assert body is not None
    parts = body.split(b" ", 2)
    assert int(parts[0]) == rid
    return parts[1] == b"OK", parts[2] if len(parts) > 2 else b""


def docked_tracker(storage=None, fence_set=None):
    tracker = Tracker("T-0007", Outbox(None), fence_set)
    link = DockLink(tracker, storage)
    link.load()
    return tracker, link


class Battery:
    def percent(self):
        return 83

    def charging(self):
        return True


def test_frame_bytes_are_exact():
    assert frame("12 PING") == b"@12 PING*%s\n" % dock.crc_hex(b"12 PING").encode()
    assert frame("12 PING") == b"@12 PING*290ff76f\n"
    assert unframe(frame("3 ID")) == b"3 ID"
    assert unframe(frame("3 ID").rstrip()) == b"3 ID"  # without its line end


def test_damaged_or_cut_frames_are_refused_and_a_frame_after_noise_is_found():
    good = frame('4 CFG {"report_s":30}')
    assert unframe(good[:-5] + b"0000\n") is None  # CRC digits changed
    flipped = bytearray(good)
    flipped[5] ^= 1
    assert unframe(bytes(flipped)) is None
    assert unframe(good[: len(good) // 2]) is None  # cut short by unplugging
    # The tail of a cut frame followed by a whole one on the same line.
    assert unframe(b"@9 NEXT 1" + good) == b'4 CFG {"report_s":30}'
    assert unframe(b"") is None and unframe(b"*\n") is None


def test_a_device_without_a_dock_tracks():
    tracker = Tracker("T-0007", Outbox(None))
    assert tracker.tracking()
    feed_walk(tracker, 3)
    assert len(tracker.outbox) == 3


def test_nothing_is_recorded_until_signed_out_and_out_of_the_dock():
    tracker, link = docked_tracker()
    assert not tracker.assigned and not tracker.tracking()
    feed_walk(tracker, 3)
    assert len(tracker.outbox) == 0
    assert request(link, 1, "ASN C1234 1795600000", now_ms=1000) == (True, b"")
    assert tracker.assigned and tracker.docked and not tracker.tracking()
    feed_walk(tracker, 3)
    assert len(tracker.outbox) == 0  # in the dock: still nothing
    link.poll(1000 + 3000)
    assert tracker.docked  # the gateway was quiet only 3 s
    link.poll(1000 + 5000)
    assert not tracker.docked and tracker.tracking()
    feed_walk(tracker, 3)
    assert len(tracker.outbox) == 3
    # Back in the dock: the first frame stops tracking at once; the return ends it for good.
    assert request(link, 2, "PING", now_ms=99000)[0]
    assert not tracker.tracking()
    assert request(link, 3, "UNA", now_ms=99500)[0]
    link.poll(200000)
    assert not tracker.docked and not tracker.tracking()


def test_pull_walks_the_outbox_and_ack_releases_like_a_puback():
    tracker = Tracker("T-0007", Outbox(None))
    feed_walk(tracker, 5)
    link = DockLink(tracker)
    ok, data = request(link, 1, "NEXT 0")
    seq, kind, payload = data.split(b" ", 2)
    assert ok and (int(seq), kind) == (1, b"loc")
    assert b'"seq":1,' in payload and b'"dev":"T-0007"' in payload
    assert request(link, 2, "NEXT 1")[1].startswith(b"2 loc {")
    assert request(link, 3, "NEXT 5") == (True, b"0")
    assert request(link, 4, "ACK 3") == (True, b"2")
    assert [m[0] for m in tracker.outbox.batch(10)] == [4, 5]
    assert request(link, 5, "NEXT 0")[1].startswith(b"4 loc ")
    assert request(link, 6, "ACK 3") == (True, b"2")  # a repeated ACK changes nothing
    assert request(link, 7, "ACK 5") == (True, b"0")
    assert tracker.outbox.last_seq == 5  # sequence numbers are never reused


def test_identity_says_who_and_in_what_state():
    import json

    tracker, link = docked_tracker()
    link.battery = Battery()
    ok, data = request(link, 1, "ID")
    info = json.loads(data)
    assert ok and info["dev"] == "T-0007" and info["batt"] == 83 and info["chg"] is True
    assert (info["outbox"], info["last_seq"], info["asg"], info["tracking"]) == (0, 0, "", False)
    assert info["fw"] and info["fences"] == "" and info["report_s"] == 10


def test_fence_set_pushed_in_chunks_is_applied_and_kept_only_when_whole():
    storage = scratch("hotspots-dock")
    try:
        with open(FENCES) as f:
            text = f.read().strip()
        data = text.encode()
        tracker, link = docked_tracker(storage)
        crc = dock.crc_hex(data)
        assert request(link, 1, "FBEGIN %d %s" % (len(data), crc))[0]
        for off in range(0, len(data), 200):
            ok, got = request(link, 2, "FDATA %d %s" % (off, text[off : off + 200]))
            assert ok, got
        ok, version = request(link, 3, "FEND")
        assert ok and version == FenceSet.from_json(text).version.encode()
        assert tracker.fence_set.version == version.decode()
        assert storage.read("fences.json") == text
        # A set whose bytes do not match its CRC is refused; the active set stays.
        assert request(link, 4, "FBEGIN %d %s" % (len(data), "00000000"))[0]
        for off in range(0, len(data), 500):
            request(link, 5, "FDATA %d %s" % (off, text[off : off + 500]))
        assert request(link, 6, "FEND") == (False, b"crc")
        # A lost chunk is noticed at once.
        assert request(link, 7, "FBEGIN %d %s" % (len(data), crc))[0]
        assert request(link, 8, "FDATA 100 xyz") == (False, b"offset 0")
        assert tracker.fence_set.version == version.decode()
    finally:
        wipe(storage)


def test_sign_out_and_settings_survive_a_reboot():
    storage = scratch("hotspots-dock")
    try:
        tracker, link = docked_tracker(storage)
        assert request(link, 1, "ASN C77 1795600000")[0]
        assert request(link, 2, 'CFG {"report_s":30}')[0]
        assert request(link, 3, 'CFG {"report_s":2}') == (False, b"report_s must be 5..3600")
        again, link2 = docked_tracker(storage)
        assert again.assigned and link2.collar == "C77" and link2.due_ts == 1795600000
        assert again.report_interval_s == 30
        assert request(link2, 4, "UNA")[0]
        third, _ = docked_tracker(storage)
        assert not third.assigned
    finally:
        wipe(storage)


def test_bad_requests_are_counted_and_never_raise():
    tracker, link = docked_tracker()
    assert link.handle_line(b"garbage\n", 0) is None
    assert link.handle_line(b"\n", 0) is None
    assert link.handle_line(b"@" + b"x" * 2000 + b"\n", 0) is None
    # Intact but not a request: answered (request id 0, which the gateway never waits for).
    assert unframe(link.handle_line(frame("x PING"), 0)) == b"0 ERR bad_request"
    assert request(link, 1, "FLY") == (False, b"unknown_verb")
    assert request(link, 2, "NEXT abc")[0] is False
    assert request(link, 3, "FEND") == (False, b"incomplete")
    assert link.rejected == {"bad_frame": 1, "empty": 1, "too_long": 1, "bad_request": 1,
                             "unknown_verb": 1, "bad_args": 1}
    assert link.requests == 3 and tracker.docked


def test_cfg_that_is_not_an_object_is_an_error_not_a_crash():
    # Regression (issue 16): "[1]" made _config raise AttributeError out of the frame path.
    tracker, link = docked_tracker()
    assert request(link, 1, "CFG [1]") == (False, b"not_an_object")
    assert request(link, 2, "CFG 7") == (False, b"not_an_object")
    assert request(link, 3, "CFG {") [0] is False
    assert request(link, 4, "PING") == (True, b"")  # and the link still serves


def test_cfg_nested_3000_deep_is_refused_before_parsing():
    # Regression (issue 16): JSON nested 3,000 deep exhausted json.loads' recursion.
    tracker, link = docked_tracker()
    deep = "[" * 3000 + "]" * 3000
    reply = link.handle_line(frame("5 CFG " + deep[:1000]), 0)
    assert unframe(reply) == b"5 ERR too_deep"
    assert request(link, 6, 'CFG {"a":"[[[[[[[[","report_s":30}')[0]  # brackets in strings
    assert tracker.report_interval_s == 30


def test_sign_out_with_a_bad_due_time_changes_nothing():
    tracker, link = docked_tracker()
    assert request(link, 1, "ASN C12 soon")[0] is False
    assert link.collar == "" and not tracker.assigned
    assert request(link, 2, "ASN C\x01 5")[0] is False
    assert request(link, 3, "ASN " + "C" * 40 + " 5") == (False, b"bad_collar")
    assert link.collar == ""


def test_ack_beyond_the_last_record_is_refused():
    tracker, link = docked_tracker()
    tracker.docked = False
    feed_walk(tracker, 3)
    last = tracker.outbox.last_seq
    assert request(link, 1, "ACK %d" % (last + 1)) == (False, b"ack_beyond_last")
    assert request(link, 2, "ACK 99999999999")[0] is False
    assert len(tracker.outbox) == last and tracker.outbox.acked == 0
    assert request(link, 3, "ACK %d" % last) == (True, b"0")


class Lcg:
    """A small deterministic random source (the same on CPython and MicroPython)."""

    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


HOSTILE = [b"[1]", b"{}", b"-1", b"99999999999999999999", b"\xff\xfe", b"[" * 300,
           b'{"report_s":' + b"9" * 40 + b"}", b"NaN", b"\x00", b" ", b"", b"0 0 0"]


def mutate(body, rnd):
    """A mutated request body: bytes changed, cut, repeated, or a hostile value spliced in."""
    b = bytes(body)
    for _ in range(1 + rnd.below(3)):
        op = rnd.below(5)
        k = rnd.below(len(b) + 1)
        if op == 0 and b:
            k = rnd.below(len(b))
            b = b[:k] + bytes([rnd.below(256)]) + b[k + 1:]
        elif op == 1:
            b = b[:k]
        elif op == 2:
            b = b[:k] + HOSTILE[rnd.below(len(HOSTILE))] + b[k:]
        elif op == 3:
            b = b[:k] + b[k:k + rnd.below(20)] + b[k:]
        else:  # keep the id and verb, replace the arguments
            head = b.split(b" ", 2)
            b = b" ".join(head[:2]) + b" " + HOSTILE[rnd.below(len(HOSTILE))]
    return b.replace(b"\n", b"").replace(b"\r", b"")


REQUESTS = [b"ID", b"PING", b"NEXT 0", b"NEXT 3", b"ACK 1", b"ASN C77 1795600000", b"UNA",
            b'CFG {"report_s":30}', b"FBEGIN 30 0123abcd", b"FDATA 0 {\"version\":1}",
            b"FEND", b"PBEGIN", b'PSET device_id "T-1"', b'PSET broker_port 1883',
            b'PADD ca_pem "-----BEGIN"', b"PEND 0123abcd"]


def test_mutated_frames_are_all_accounted_for_and_never_raise():
    tracker, link = docked_tracker()
    tracker.docked = False
    feed_walk(tracker, 4)
    rnd = Lcg(2026)
    sent = answered = 0
    n = 3000
    for i in range(n):
        body = b"%d " % (i % 9999 + 1) + REQUESTS[rnd.below(len(REQUESTS))]
        body = mutate(body, rnd)
        line = frame(body) if rnd.below(10) else b"@" + body + b"*00000000\n"
        sent += 1
        reply = link.handle_line(line, i)  # an exception here fails the test
        if reply is not None:
            answered += 1
            assert unframe(reply) is not None  # every answer is itself an intact frame
    rejected = link.rejected
    unanswered = rejected.get("bad_frame", 0) + rejected.get("empty", 0) + \
        rejected.get("too_long", 0)
    assert answered == link.requests + rejected.get("bad_request", 0)
    assert sent == answered + unanswered
    assert rejected.get("error", 0) == 0  # nothing fell through to the catch-all
    assert request(link, 1, "PING") == (True, b"")  # still serving


def provision(link, settings, ca=None, rid=100):
    """The gateway's provisioning sequence; returns the PEND answer ``(ok, data)``."""
    import binascii
    import json

    crc = 0
    assert request(link, rid, "PBEGIN")[0]
    for key in settings:
        args = ("%s %s" % (key, json.dumps(settings[key]))).encode()
        crc = binascii.crc32(args, crc)
        assert request(link, rid + 1, "PSET " + args.decode()) == (True, b"")
    if ca is not None:
        for i in range(0, len(ca), 300):
            args = ("ca_pem %s" % json.dumps(ca[i:i + 300])).encode()
            crc = binascii.crc32(args, crc)
            assert request(link, rid + 2, "PADD " + args.decode()) == (True, b"")
    return request(link, rid + 3, "PEND %08x" % (crc & 0xFFFFFFFF))


CA = "-----BEGIN CERTIFICATE-----\n" + "QUJD" * 300 + "\n-----END CERTIFICATE-----\n"


def test_provisioning_writes_the_settings_file_and_the_ca():
    import json

    storage = scratch("hotspots-provision")
    try:
        storage.write("config.json", json.dumps({"gnss_uart": 1, "broker_host": "old"}))
        tracker, link = docked_tracker(storage)
        settings = {"device_id": "T-0042", "broker_host": "10.0.0.2", "broker_port": 8883,
                    "user": "T-0042", "password": "pa55-word", "link": "cellular",
                    "apn": "iot.example"}
        ok, data = provision(link, settings, CA)
        assert (ok, data) == (True, b"8")  # seven settings and the CA's path
        config = json.loads(storage.read("config.json"))
        assert config["gnss_uart"] == 1  # the board's wiring stays
        for key in settings:
            assert config[key] == settings[key]
        assert config["ca"] == "ca.pem" and storage.read("ca.pem") == CA
        assert link.provisioned == 1
    finally:
        wipe(storage)


def test_provisioning_refuses_without_echoing_values():
    storage = scratch("hotspots-provision")
    try:
        tracker, link = docked_tracker(storage)
        assert request(link, 1, 'PSET password "x"') == (False, b"no_pbegin")
        assert request(link, 2, "PBEGIN")[0]
        assert request(link, 3, 'PSET pins {"led":2}') == (False, b"unknown_setting")
        assert request(link, 5, 'PSET password ["s3cret"]') == (False, b"bad_value password")
        assert request(link, 7, 'PSET password "' + "p" * 300 + '"') == \
            (False, b"too_long password")
        assert request(link, 8, 'PSET password "s3cret"') == (True, b"")
        assert request(link, 9, "PEND 00000000") == (False, b"crc")  # and the session ends
        assert request(link, 10, "PEND 00000000") == (False, b"no_pbegin")
        assert storage.read("config.json") is None
        # a session without the required settings writes nothing either
        assert provision(link, {"broker_host": "h"}) == (False, b"missing device_id")
        assert storage.read("config.json") is None
    finally:
        wipe(storage)


def test_provisioning_checks_the_file_with_the_boards_own_validator():
    # tracker.config.build, which the board runs at boot, judges the whole file at PEND: a
    # setting that could not run is refused at the dock, and nothing is written.
    import json

    storage = scratch("hotspots-provision")
    base = {"device_id": "T-0042", "broker_host": "10.0.0.2"}
    try:
        tracker, link = docked_tracker(storage)
        refusals = [
            ({"user": "T-0042", "password": 12}, b"config password must be a string"),
            ({"broker_port": "1883"}, b"config broker_port must be an integer, got '1883'"),
            ({"password": "s3cret-pw"},
             b"config user and password go together: give both or neither"),
            ({"link": "cellular"}, b"config link cellular needs apn"),
            ({"report_s": 0}, b"config report_s must be 1-86400, got 0"),
            ({"radio_sleep": "deep"}, b"config radio_sleep must be one of cfun0, psm, none"),
            ({"device_id": "T 42"}, b"config device_id may hold letters"),
        ]
        for extra, reason in refusals:
            settings = dict(base)
            settings.update(extra)
            ok, data = provision(link, settings)
            assert not ok and data.startswith(reason), (extra, data)
            assert b"s3cret-pw" not in data
            assert storage.read("config.json") is None
        assert provision(link, base, "not a certificate") == (False, b"bad_value ca_pem")
        assert storage.read("config.json") is None and storage.read("ca.pem") is None
        # an earlier file's keys count too: the merged file is what boots
        storage.write("config.json", json.dumps({"broker_host": "old", "link": "wifi",
                                                 "wifi_ssid": "station"}))
        ok, data = provision(link, dict(base, link="cellular"))
        assert (ok, data) == (False, b"config link cellular needs apn (the SIM provider's "
                                     b"access point name)")
        assert provision(link, dict(base, link="cellular", apn="iot.example")) == (True, b"4")
        assert json.loads(storage.read("config.json"))["wifi_ssid"] == "station"
    finally:
        wipe(storage)
