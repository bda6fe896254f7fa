"""The tracker core on its own: NMEA in, messages in the outbox, with either sampling mode.

The same walk is fed to ``tracker.app.Tracker`` with fixed sampling (every epoch) and with the
adaptive policy, which switches the receiver off between fixes; both must find the true visits.
"""

from __future__ import annotations

import json

import pytest

from fences.compile import compile_geojson
from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
from simulators.gps import epoch_sentences
from simulators.walk import make_walk
from tracker.app import Tracker
from tracker.fence import FenceSet
from tracker.outbox import Outbox
from tracker.policy import Policy

START = 1795000000.0


def run_walk(policy: Policy | None) -> tuple[Tracker, list[dict], list]:
    walk = make_walk(SAMPLE_ROUTE, SAMPLE_FENCES, START)
    fences = FenceSet.from_json(compile_geojson(SAMPLE_FENCES).text)
    tracker = Tracker("T-0007", Outbox(None), fences, policy=policy)
    now_ms = 0
    for now_ms, sample in enumerate(walk.samples(noise_m=2.0, seed=5)):
        for line in epoch_sentences(sample):
            tracker.feed_line(line, now_ms * 1000)
    tracker.end_of_stream(now_ms * 1000)
    messages = [json.loads(payload) for _seq, _kind, payload in tracker.outbox.batch(10000)]
    return tracker, messages, walk.visits()


def visits_of(messages: list[dict]) -> list[tuple[str, int, int]]:
    events = [m for m in messages if m["_type"] == "transition"]
    enters = [e for e in events if e["event"] == "enter"]
    leaves = [e for e in events if e["event"] == "leave"]
    assert len(enters) == len(leaves)
    return [(a["rid"], a["tst"], b["tst"]) for a, b in zip(enters, leaves, strict=True)]


@pytest.mark.parametrize("adaptive", [False, True], ids=["fixed", "adaptive"])
def test_both_sampling_modes_find_the_true_visits(adaptive):
    tracker, messages, truth = run_walk(Policy() if adaptive else None)
    found = visits_of(messages)
    assert [v[0] for v in found] == [t.hotspot for t in truth]
    for (_rid, enter, leave), t in zip(found, truth, strict=True):
        assert abs(enter - t.enter) <= 5 and abs(leave - t.leave) <= 5
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))


def test_adaptive_sampling_switches_the_receiver_off_most_of_the_time():
    fixed, fixed_messages, _ = run_walk(None)
    adaptive, adaptive_messages, _ = run_walk(Policy())
    assert fixed.gnss_off_epochs == 0
    epochs = fixed.fixes
    assert adaptive.fixes + adaptive.gnss_off_epochs == epochs
    assert adaptive.fixes < epochs // 5
    assert len(adaptive_messages) < len(fixed_messages) // 2
    # Every location says why it was sent.
    assert {m["t"] for m in adaptive_messages if m["_type"] == "location"} <= {"c", "v", "t", "p"}


def test_adaptive_sampling_batches_uploads():
    tracker, messages, _ = run_walk(Policy())
    assert messages
    # Right after the walk the newest message is fresh, but the oldest waited long enough.
    assert tracker.upload_due()
    fresh = Tracker("T-0008", Outbox(None), None, policy=Policy())
    assert not fresh.upload_due()  # nothing waiting: no radio wake-up


def test_fixed_sampling_sends_at_once():
    tracker = Tracker("T-0009", Outbox(None))
    assert not tracker.upload_due()
    tracker._put(tracker.outbox.next_seq(), "loc", "{}", START)
    assert tracker.upload_due()


def test_commands_from_the_gateway():
    tracker = Tracker("T-0010", Outbox(None))
    assert tracker.command(b'{"cmd": "report", "interval_s": 30}') == "report interval now 30 s"
    assert tracker.report_interval_s == 30
    adaptive = Tracker("T-0011", Outbox(None), policy=Policy())
    adaptive.command(b'{"cmd": "report", "interval_s": 60}')
    assert adaptive.policy.report_s == 60  # the policy reports at the commanded interval too
    assert "rejected" in tracker.command(b'{"cmd": "report", "interval_s": 1}')
    assert "rejected" in tracker.command(b"not json")
    assert "rejected" in tracker.command(b'{"cmd": "selfdestruct"}')
    assert tracker.command(b'{"cmd": "status"}') == "status requested"
