"""Issue 16 item 6 on the gateway side: no answer a tracker sends can stop a dock slot.

Regression tests for the shapes that killed a slot's thread (``[1]`` and JSON nested 3,000 deep
as the ``ID`` answer), then a bounded mutation fuzz: a slot served by the real
``DockStation.serve_slot`` talking to the real device side (``tracker.dock.DockLink``) through
a link that mutates the device's answers (CRC recomputed, so they are intact frames). Exact
accounting: every frame the device sent was taken as an answer or counted as rejected; every
poll ended in exactly one of ok / link down / counted error; 0 uncaught exceptions (the thread
is alive), and the slot serves the honest tracker afterwards. The device-side fuzz is in
``tests/firmware/test_dock.py`` (it runs on MicroPython too); here it also runs at scale.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.fleet.dock import BadAnswer, DeviceInfo, DockClient, DockStation
from gateway.schema import open_db
from tracker.app import Tracker
from tracker.dock import DockLink, frame, unframe
from tracker.outbox import Outbox

sys.path.insert(0, str(Path(__file__).resolve().parent / "firmware"))
import test_dock as device_tests  # noqa: E402  (the portable device-side fuzz)

GOOD_ID = (b'{"dev":"T-0009","fw":"0.1.0","fences":"","batt":83,"chg":true,"outbox":0,'
           b'"last_seq":0,"acked":0,"asg":"","due":0,"report_s":10,"tracking":false,"t":0}')


@pytest.mark.parametrize("answer", [
    b"[1]",  # regression: TypeError escaped and killed the slot thread
    b"[" * 3000 + b"]" * 3000,  # regression: RecursionError escaped
    b"1", b'"T-1"', b"null", b"", b"\xff\xfe", b"{", b"{}",
    b'{"dev":["T"]}', b'{"dev":"a/b"}', b'{"dev":"#"}', b'{"dev":"T\\u202e1"}',
    b'{"dev":"' + b"T" * 5000 + b'"}',
    GOOD_ID.replace(b'"batt":83', b'"batt":1e999'),
    GOOD_ID.replace(b'"batt":83', b'"batt":NaN'),
    GOOD_ID.replace(b'"batt":83', b'"batt":' + b"9" * 4000),
    GOOD_ID.replace(b'"batt":83', b'"batt":"83"'),
    GOOD_ID.replace(b'"last_seq":0', b'"last_seq":-5'),
    GOOD_ID.replace(b'"chg":true', b'"chg":"yes"'),
    GOOD_ID.replace(b'"tracking":false', b'"tracking":{}'),
    GOOD_ID.replace(b'"fw":"0.1.0"', b'"fw":"\\n"'),
])
def test_a_bad_id_answer_is_a_bad_answer_and_nothing_else(answer):
    with pytest.raises(BadAnswer):
        DeviceInfo.parse(answer)


def test_the_good_id_answer_parses():
    info = DeviceInfo.parse(GOOD_ID)
    assert info.device_id == "T-0009" and info.batt == 83 and info.charging is True


class FuzzLink:
    """The slot's serial link, in memory: each request goes to the real device side; its answer
    is mutated (while ``fuzzing``) and re-framed with a valid CRC most of the time."""

    def __init__(self, device: DockLink, seed: int):
        self.device = device
        self.rnd = random.Random(seed)
        self.fuzzing = True
        self.out = b""
        self.frames = 0  # answer frames handed to the gateway
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            reply = self.device.handle_line(data, int(time.monotonic() * 1000))
            if reply is None:
                return
            if self.fuzzing and self.rnd.random() < 0.7:
                body = unframe(reply)
                body = mutate_answer(body, self.rnd)
                reply = frame(body) if self.rnd.random() < 0.9 else b"@" + body + b"*deadbeef\n"
            self.out += reply
            self.frames += 1

    def read(self, n: int) -> bytes:
        with self.lock:
            data, self.out = self.out[:n], self.out[n:]
        if not data:
            time.sleep(0.001)
        return data

    def close(self) -> None:
        pass


HOSTILE = [b"[1]", b"[" * 3000, b"{}", b"null", b"-1", b"9" * 400, b"1e999", b"NaN",
           b'{"dev":[1]}', b"\xff", b"0", b"OK", b"ERR x", b'"', b"{" * 50]


def mutate_answer(body: bytes, rnd: random.Random) -> bytes:
    rid, _, rest = body.partition(b" ")
    op = rnd.randrange(6)
    if op == 0:  # the data replaced by something hostile
        status = rest.split(b" ", 1)[0]
        rest = status + b" " + rnd.choice(HOSTILE)
    elif op == 1 and rest:  # a byte changed
        k = rnd.randrange(len(rest))
        rest = rest[:k] + bytes([rnd.randrange(256)]) + rest[k + 1:]
    elif op == 2:  # cut
        rest = rest[: rnd.randrange(len(rest) + 1)]
    elif op == 3:  # a hostile value spliced in
        k = rnd.randrange(len(rest) + 1)
        rest = rest[:k] + rnd.choice(HOSTILE) + rest[k:]
    elif op == 4:  # another request id (a stale answer)
        rid = str(rnd.randrange(0, 10000)).encode()
    else:  # numbers in the JSON made huge or negative
        rest = rest.replace(b":0", b":-1").replace(b":8", b":" + b"9" * 30)
    return (rid + b" " + rest).replace(b"\n", b"").replace(b"\r", b"")


def _device(seed: int) -> DockLink:
    tracker = Tracker("T-0009", Outbox(None))
    device_tests.feed_walk(tracker, 6)  # a few records to pull
    link = DockLink(tracker)
    link.load()
    return link


def test_fuzzed_answers_never_stop_the_slot_and_are_all_accounted_for(tmp_path):
    db_path = tmp_path / "dock.db"
    open_db(str(db_path)).close()
    device = _device(1)
    fuzz = FuzzLink(device, seed=16)
    clients: list[DockClient] = []

    class FuzzClient(DockClient):
        def open(self) -> DockClient:
            self.link = fuzz
            return self

    def factory(port: str, timeout_s: float) -> DockClient:
        client = FuzzClient(port, timeout_s=timeout_s)
        clients.append(client)
        return client

    station = DockStation(str(db_path), {"s1": "fuzz://"}, poll_s=0, timeout_s=0.02,
                          config={"report_s": 30})
    station.client_factory = factory
    stop = threading.Event()
    station.start(stop)
    counts = station.counts["s1"]
    deadline = time.monotonic() + 15
    while counts.polls < 1500 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Now an honest tracker: the same slot must serve it.
    with fuzz.lock:
        fuzz.fuzzing = False
    served = time.monotonic() + 10
    while time.monotonic() < served:
        info = station.info["s1"]
        if info is not None and info.device_id == "T-0009" and counts.ok >= 5 \
                and device.tracker.outbox.acked == device.tracker.outbox.last_seq:
            break
        time.sleep(0.05)
    stop.set()
    station.join()
    thread = station._threads[0]
    assert not thread.is_alive()  # it stopped because we asked, not because it died
    print("fuzz:", counts.polls, "polls", counts.ok, "ok", counts.link_down, "link down",
          counts.errors, "errors;", fuzz.frames, "answer frames")
    assert counts.polls >= 300, counts
    assert counts.errors > 0 and counts.ok >= 5
    assert counts.polls == counts.ok + counts.link_down + counts.errors
    assert fuzz.frames == sum(c.answered + c.rejected for c in clients)
    assert station.info["s1"].device_id == "T-0009"
    # Everything the honest tracker had was pulled and acknowledged in the end.
    assert device.tracker.outbox.acked == device.tracker.outbox.last_seq > 0
    db = open_db(str(db_path))
    try:
        errors = db.execute("SELECT count(*) FROM dock_events WHERE event = 'error'").fetchone()
        assert errors[0] > 0
    finally:
        db.close()


def test_device_side_fuzz_at_scale():
    """The portable device-side fuzz, 40,000 frames on CPython."""
    tracker, link = device_tests.docked_tracker()
    tracker.docked = False
    device_tests.feed_walk(tracker, 4)
    rnd = device_tests.Lcg(16)
    answered = 0
    n = 40000
    for i in range(n):
        body = b"%d " % (i % 9999 + 1) + device_tests.REQUESTS[rnd.below(
            len(device_tests.REQUESTS))]
        body = device_tests.mutate(body, rnd)
        line = frame(body) if rnd.below(10) else b"@" + body + b"*00000000\n"
        if link.handle_line(line, i) is not None:
            answered += 1
    rejected = link.rejected
    unanswered = sum(rejected.get(k, 0) for k in ("bad_frame", "empty", "too_long"))
    assert answered == link.requests + rejected.get("bad_request", 0)
    assert n == answered + unanswered
    assert rejected.get("error", 0) == 0
    assert json.dumps(rejected)  # counts by reason, for the report
