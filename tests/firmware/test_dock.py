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
    assert link.handle_line(frame("x PING"), 0) is None
    assert request(link, 1, "FLY") == (False, b"unknown_verb")
    assert request(link, 2, "NEXT abc")[0] is False
    assert request(link, 3, "FEND") == (False, b"incomplete")
    assert link.rejected == {"bad_frame": 1, "empty": 1, "too_long": 1, "bad_request": 1,
                             "unknown_verb": 1}
    assert link.requests == 3 and tracker.docked
