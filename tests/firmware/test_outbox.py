"""The flash-backed outbox: nothing complete is lost, nothing damaged is used.

Runs under pytest and on the MicroPython unix port, against real files in a scratch folder
(``boards.storage.DirStorage``, the class the unix board and devices use).
"""


from scratch import scratch, wipe

from tracker.outbox import Outbox, encode_record, scan


def fill(box, n, kind="loc", first=None):
    seqs = []
    for _ in range(n):
        seq = box.next_seq()
        box.put(seq, kind, '{"seq":%d}' % seq)
        seqs.append(seq)
    return seqs


def pending(box):
    return [seq for seq, _kind, _payload in box.batch(len(box))]


def test_messages_survive_a_reboot_in_order():
    storage = scratch("hotspots-outbox")
    try:
        box = Outbox(storage)
        fill(box, 5)
        fill(box, 2, "event")
        again = Outbox(storage)
        assert pending(again) == [1, 2, 3, 4, 5, 6, 7]
        assert again.message(5) == (6, "event", b'{"seq":6}')
        assert again.next_seq() == 8
    finally:
        wipe(storage)


def test_acknowledged_messages_are_gone_after_a_reboot():
    storage = scratch("hotspots-outbox")
    try:
        box = Outbox(storage)
        fill(box, 6)
        box.ack(4)
        assert pending(box) == [5, 6]
        again = Outbox(storage)
        assert pending(again) == [5, 6]
        again.ack(6)
        third = Outbox(storage)
        assert len(third) == 0
        # Sequence numbers are never reused, even once everything was delivered.
        assert third.next_seq() == 7
    finally:
        wipe(storage)


def test_other_kinds_keep_their_kind():
    storage = scratch("hotspots-outbox")
    try:
        box = Outbox(storage)
        box.put(box.next_seq(), "status", b'{"online":true}')
        assert Outbox(storage).peek() == (1, "status", b'{"online":true}')
    finally:
        wipe(storage)


def test_delivered_segments_are_deleted():
    storage = scratch("hotspots-outbox")
    try:
        box = Outbox(storage, segment_bytes=512)
        fill(box, 60)
        assert len(storage.names()) >= 3
        box.ack(60)
        assert len(storage.names()) == 1
        assert Outbox(storage).next_seq() == 61
    finally:
        wipe(storage)


def test_full_outbox_thins_old_locations_and_keeps_every_transition():
    box = Outbox(None, capacity=20)
    kinds = {}
    for i in range(60):
        kind = "event" if i % 10 == 3 else "loc"
        seq = box.next_seq()
        box.put(seq, kind, "x")
        kinds[seq] = kind
    kept = pending(box)
    assert len(kept) <= 21
    events = [s for s in kinds if kinds[s] == "event"]
    assert [s for s in kept if kinds[s] == "event"] == events
    # The newest fix is always there, and what was dropped was counted.
    assert kept[-1] == 60
    assert box.dropped == 60 - len(kept)


def test_thinning_survives_a_reboot():
    storage = scratch("hotspots-outbox")
    try:
        box = Outbox(storage, capacity=10)
        fill(box, 25)
        kept = pending(box)
        assert pending(Outbox(storage, capacity=10)) == kept
    finally:
        wipe(storage)


def test_log_is_compacted_when_it_outgrows_its_budget():
    storage = scratch("hotspots-outbox")
    try:
        box = Outbox(storage, capacity=30, max_bytes=2048, segment_bytes=512)
        fill(box, 200)
        total = 0
        for name in storage.names():
            total += storage.size(name)
        assert total <= 2048 + 512
        assert pending(Outbox(storage, capacity=30)) == pending(box)
    finally:
        wipe(storage)


def records_of(seqs):
    out = b""
    for seq in seqs:
        out += encode_record(76, seq, b'{"seq":%d}' % seq)
    return out


def recovered(data):
    return [seq for _off, rtype, seq, _p, _n in scan(data) if rtype == 76]


def test_a_power_cut_at_any_byte_keeps_every_complete_record():
    whole = records_of(range(1, 6))
    ends = []
    p = 0
    for _off, _t, _s, poff, n in scan(whole):
        p = poff + n + 4
        ends.append(p)
    for cut in range(len(whole) + 1):
        complete = len([e for e in ends if e <= cut])
        assert recovered(whole[:cut]) == list(range(1, complete + 1)), cut


def test_a_corrupt_byte_loses_only_its_own_record():
    whole = records_of(range(1, 6))
    for i in range(len(whole)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(whole)
            damaged[i] ^= flip
            got = recovered(damaged)
            # Never a record that was not written; at most the one hit is missing.
            assert set(got) <= {1, 2, 3, 4, 5}, (i, got)
            assert len(got) >= 4, (i, flip, got)


def test_recovery_from_a_torn_log_file_then_new_writes_follow():
    storage = scratch("hotspots-outbox")
    try:
        box = Outbox(storage)
        fill(box, 4)
        name = [n for n in storage.names()][-1]
        data = storage.read_bytes(name)
        # Tear the last record in half, as a power cut mid-write would.
        storage.remove(name)
        storage.append(name, data[:-7])
        again = Outbox(storage)
        assert pending(again) == [1, 2, 3]
        assert again.damaged_bytes > 0
        fill(again, 2)
        assert pending(Outbox(storage)) == [1, 2, 3, 4, 5]
    finally:
        wipe(storage)
