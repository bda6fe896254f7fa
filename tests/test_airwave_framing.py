"""PEI framing torture: +CTSDSR split anywhere, missing line ends, interleaved results, lengths
that disagree with the hex, garbage — every good SDS comes out once, every bad byte is counted."""

from __future__ import annotations

import pytest

from gateway.intake.airwave import lip
from gateway.intake.airwave.sds import PeiParser, ctsdsr

SHORT = lip.short_report(51.4807, -0.0073, speed=5, direction=90)
SHORT_DATA, SHORT_BITS = lip.encode(SHORT)
PAYLOAD = bytes([lip.PROTOCOL_ID]) + SHORT_DATA
FRAME = ctsdsr(2340001, 9999, PAYLOAD, 8 + SHORT_BITS)  # 84 declared, 88 bits of hex


def run(chunks: list[bytes]) -> tuple[list, PeiParser]:
    parser = PeiParser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.flush())
    return events, parser


def sds_of(events) -> list:
    return [e.sds for e in events if e.kind == "sds"]


def test_one_frame_gives_one_sds_with_header_fields():
    events, parser = run([FRAME])
    (sds,) = sds_of(events)
    assert sds.header.ai_service == 12 and sds.header.issi == 2340001
    assert sds.header.called == "9999" and sds.header.length_bits == 84
    assert sds.hex == PAYLOAD.hex().upper() and sds.kind == "lip"
    assert lip.decode(sds.data[1:], sds.header.length_bits - 8) == SHORT
    assert not [e for e in events if e.kind == "reject"]


def test_split_at_every_byte_boundary_gives_the_same_sds():
    stream = FRAME + b"OK\r\n" + FRAME
    for cut in range(1, len(stream)):
        events, _ = run([stream[:cut], stream[cut:]])
        assert [s.hex for s in sds_of(events)] == [PAYLOAD.hex().upper()] * 2, cut


def test_byte_by_byte():
    events, _ = run([bytes([b]) for b in FRAME * 3])
    assert len(sds_of(events)) == 3


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b"\r", b"\n\r"])
def test_any_line_ending(ending):
    text = FRAME.replace(b"\r\n", ending)
    events, parser = run([text])
    assert len(sds_of(events)) == 1
    assert parser.counts["rejected_garbage"] == 0


def test_missing_line_end_after_payload_before_next_result():
    header = f"+CTSDSR: 12,2340001,0,9999,0,{8 + SHORT_BITS}".encode()
    hex_text = PAYLOAD.hex().upper().encode()
    stream = header + b"\r\n" + hex_text + header + b"\r\n" + hex_text + b"OK\r\n"
    events, _ = run([stream])
    assert len(sds_of(events)) == 2
    assert [e.text for e in events if e.kind == "final"] == ["OK"]


def test_header_run_into_its_payload_is_repaired_and_counted():
    stream = f"+CTSDSR: 12,2340001,0,9999,0,84{PAYLOAD.hex().upper()}\r\n".encode()
    events, parser = run([stream])
    (sds,) = sds_of(events)
    assert sds.header.length_bits == 84 and sds.hex == PAYLOAD.hex().upper() and sds.repaired
    assert parser.counts["repaired_missing_newline"] == 1


def test_unterminated_last_payload_is_taken_at_flush():
    events, _ = run([FRAME.rstrip(b"\r\n")])
    assert len(sds_of(events)) == 1


def test_ok_error_and_echo_between_header_and_payload_are_skipped_not_fatal():
    header, payload = FRAME.strip().split(b"\r\n")
    stream = (header + b"\r\nOK\r\nAT+CTSP=1,3,10\r\n+CME ERROR: 35\r\nERROR\r\n" + payload
              + b"\r\n")
    events, parser = run([stream])
    assert len(sds_of(events)) == 1
    assert [e.text for e in events if e.kind == "final"] == ["OK", "+CME ERROR: 35", "ERROR"]
    assert parser.counts["echo"] == 1


@pytest.mark.parametrize(("declared", "counter"), [
    (84, None), (88, None), (60, "declared_shorter_than_hex"), (200, "declared_longer_than_hex"),
])
def test_declared_length_disagreeing_with_hex_is_counted_and_sds_kept(declared, counter):
    stream = f"+CTSDSR: 12,2340001,0,9999,0,{declared}\r\n{PAYLOAD.hex()}\r\n".encode()
    events, parser = run([stream])
    (sds,) = sds_of(events)
    assert sds.header.length_bits == declared
    if counter:
        assert parser.counts[counter] == 1


def test_garbage_is_counted_and_does_not_hide_the_next_report():
    noise = bytes(range(0, 32)) + b"\xff\xfe\x80garbage line\r\n"
    events, parser = run([noise + b"\x00\x00" + FRAME.lstrip(b"\r\n") + b"zz top\r\n"])
    assert len(sds_of(events)) == 1
    assert parser.counts["noise_bytes"] > 0
    assert parser.counts["rejected_garbage"] == 2  # "garbage line", "zz top"


def test_header_without_payload_and_orphan_payload_are_rejected():
    header, payload = FRAME.strip().split(b"\r\n")
    events, parser = run([header + b"\r\n+CTXG: 1,3\r\n" + payload + b"\r\n" + header + b"\r\n"])
    assert sds_of(events) == []
    assert parser.counts["rejected_missing_payload"] == 2
    assert parser.counts["rejected_orphan_payload"] == 1
    assert parser.counts["info"] == 1


def test_second_header_replaces_one_left_without_payload():
    header, payload = FRAME.strip().split(b"\r\n")
    events, parser = run([header + b"\r\n" + header + b"\r\n" + payload + b"\r\n"])
    assert len(sds_of(events)) == 1 and parser.counts["rejected_missing_payload"] == 1


@pytest.mark.parametrize("line", [
    b"+CTSDSR: 12,2340001,0\r\n", b"+CTSDSR: x,1,0,2,0,84\r\n", b"+CTSDSR: 12,1,0,2,0,0\r\n",
    b"+CTSDSR: 12,1,0,2,0,99999\r\n", b"+CTSDSR: 12,1,0,2,0,ZZ\r\n",
])
def test_bad_headers_are_rejected(line):
    events, parser = run([line])
    assert [e.reason for e in events] == ["bad_header"]


def test_overlong_line_is_cut_off():
    events, parser = run([b"A" * 5000, FRAME])
    assert parser.counts["rejected_overlong_line"] == 1
    assert len(sds_of(events)) == 1


def test_tsi_calling_identity_gives_the_issi():
    stream = f"+CTSDSR: 12,23401234002340001,1,9999,0,84\r\n{PAYLOAD.hex()}\r\n".encode()
    (sds,) = sds_of(run([stream])[0])
    assert sds.header.issi == 2340001


@pytest.mark.parametrize(("service", "hex_text", "kind"), [
    (13, "8002", "status"), (12, "8200010148656C6C6F", "text"), (12, "0201414243", "text"),
    (12, "0301", "other_pid"), (9, "1234", "sds1"), (12, "0A0FFF", "lip"),
])
def test_sds_kinds(service, hex_text, kind):
    stream = f"+CTSDSR: {service},1,0,2,0,{4 * len(hex_text)}\r\n{hex_text}\r\n".encode()
    (sds,) = sds_of(run([stream])[0])
    assert sds.kind == kind
    assert sds.describe()
    if kind == "text":
        assert sds.text() in ("Hello", "ABC")
