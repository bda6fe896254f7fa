"""The radio's peripheral equipment interface (PEI, ETSI EN 300 392-5): AT set-up and framing of
``+CTSDSR`` unsolicited results into SDS messages.

A radio routed to the terminal equipment (``AT+CTSP=1,3,10`` for LIP) announces each received
SDS with a header line and puts the user data, in hex, on the next line::

    +CTSDSR: 12,2341001,0,2349999,0,84
    0A1BC4E03FFD2A9C10C4D0

The header fields are the air-interface service (12: SDS type 4, 13: status, 9..11: SDS types
1..3), the calling party identity and its type, the called party identity and its type, and
the length of the user data in bits (sometimes followed by an end-to-end encryption flag). The
first octet of SDS type-4 user data is the protocol identifier: ``0x0A`` is LIP.

Serial lines are not tidy. :class:`PeiParser` takes bytes split anywhere and copes with:

- CR, LF, CRLF or LFCR line ends, and none at all between a hex payload and the next ``+``
  result or ``OK``/``ERROR`` (hex never contains ``+``, ``O``, ``K`` or ``R``);
- a header run straight into its payload, the length digits then being ambiguous: the split
  whose declared length best matches the hex is taken, and counted as repaired;
- ``OK``/``ERROR``/``+CME ERROR`` final results and command echo interleaved between a header
  and its payload (the radio answers our set-up while reporting);
- declared lengths that disagree with the hex length either way (octet padding makes the hex
  up to 7 bits longer; some radios declare whole octets; some lie) — counted, and the payload
  is handed on with both lengths so the decoder can choose;
- garbage: lines that are none of the above are counted and dropped, and an over-long line
  without an end is cut off rather than buffered forever.

Nothing raises out of :meth:`PeiParser.feed`; every byte ends up in exactly one event.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

SETUP_COMMANDS: tuple[str, ...] = (
    "AT",  # is anyone there
    "ATE0",  # no command echo
    "AT+CTSP=1,3,10",  # SDS-TL service: location information protocol, to the TE
    "AT+CTSP=1,2,20",  # SDS service: status messages, to the TE
    "AT+CTSP=1,3,130",  # SDS-TL service: text messaging, to the TE
    "AT+CNUMF?",  # the radio's own identities (for the log)
)

AI_SERVICE_NAMES = {9: "SDS type 1", 10: "SDS type 2", 11: "SDS type 3", 12: "SDS type 4",
                    13: "status"}
PROTOCOL_NAMES = {
    0x01: "OTAK", 0x02: "simple text", 0x03: "simple location", 0x04: "WAP", 0x05: "WCMP",
    0x06: "M-DMO", 0x07: "PIN authentication", 0x08: "end-to-end encrypted",
    0x09: "simple immediate text", 0x0A: "LIP", 0x0B: "net assist", 0x0C: "concatenated SDS",
    0x0D: "DOTAM", 0x82: "text (SDS-TL)", 0x83: "location system (SDS-TL)", 0x84: "WAP (SDS-TL)",
    0x85: "WCMP (SDS-TL)", 0x86: "M-DMO (SDS-TL)", 0x88: "end-to-end encrypted (SDS-TL)",
    0x89: "immediate text (SDS-TL)", 0x8A: "message with user data header",
    0x8C: "concatenated SDS (SDS-TL)",
}
TEXT_PROTOCOLS = {0x02, 0x09, 0x82, 0x89}
MAX_LINE = 2048  # longest SDS type-4 payload is 2047 bits = 512 hex digits, plus header

_PRINTABLE = re.compile(r"[\x20-\x7e]+")
_HEADER = re.compile(r"^\+CTSDSR:\s*(.*)$", re.IGNORECASE)
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_HEX_THEN_FINAL = re.compile(r"^([0-9A-Fa-f]+)(OK|ERROR)$")
_FINAL = re.compile(r"^(OK|ERROR|\+CME ERROR:.*|NO CARRIER)$", re.IGNORECASE)


@dataclass(frozen=True)
class SdsHeader:
    """A parsed ``+CTSDSR`` header."""

    ai_service: int
    calling: str | None
    calling_type: int | None
    called: str | None
    called_type: int | None
    length_bits: int
    raw: str

    @property
    def issi(self) -> int | None:
        """The sender's ISSI: the identity itself, or the last 8 digits of a TSI
        (MCC 4 digits + MNC 5 digits + ISSI 8 digits)."""
        if not self.calling or not self.calling.isdigit():
            return None
        return int(self.calling[-8:]) if len(self.calling) > 8 else int(self.calling)


@dataclass(frozen=True)
class Sds:
    """One received SDS: its header and its user data."""

    header: SdsHeader
    hex: str
    repaired: bool = False

    @property
    def hex_bits(self) -> int:
        return 4 * len(self.hex)

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex + ("0" if len(self.hex) % 2 else ""))

    @property
    def protocol_id(self) -> int | None:
        """Protocol identifier of SDS type-4 user data (None for status and types 1..3)."""
        if self.header.ai_service != 12 or len(self.hex) < 2:
            return None
        return int(self.hex[:2], 16)

    @property
    def kind(self) -> str:
        """``lip``, ``status``, ``text``, ``sds1``..``sds3`` or ``other_pid``."""
        service = self.header.ai_service
        if service == 13:
            return "status"
        if service in (9, 10, 11):
            return f"sds{service - 8}"
        if service != 12:
            return "other_service"
        pid = self.protocol_id
        if pid == 0x0A:
            return "lip"
        if pid in TEXT_PROTOCOLS:
            return "text"
        return "other_pid"

    def describe(self) -> str:
        """One line for the log: who sent what."""
        pid = self.protocol_id
        what = AI_SERVICE_NAMES.get(self.header.ai_service, f"service {self.header.ai_service}")
        if pid is not None:
            what += f", protocol 0x{pid:02X} ({PROTOCOL_NAMES.get(pid, 'unknown')})"
        if self.kind == "text":
            what += f", text {self.text()!r}"
        if self.kind == "status":
            what += f", status 0x{self.hex}"
        return f"from {self.header.calling}: {what}, {self.header.length_bits} bits"

    def text(self) -> str:
        """Best-effort text of a text SDS (for the log only)."""
        data = self.data[1:]
        pid = self.protocol_id
        if pid in (0x82, 0x89) and len(data) >= 2:
            # SDS-TL transfer: message type/flags octet, message reference, then coding scheme
            data = data[3:] if data[0] >> 4 == 0 else b""
        elif data:
            data = data[1:]  # text coding scheme
        return data.decode("latin-1", errors="replace")


@dataclass(frozen=True)
class Event:
    """What the parser made of some input.

    ``kind`` is ``sds`` (``sds`` set), ``final`` (OK / ERROR / +CME ERROR, ``text`` set),
    ``echo`` (our own command echoed), ``info`` (another unsolicited result or response line)
    or ``reject`` (``reason`` and ``text`` set).
    """

    kind: str
    text: str = ""
    sds: Sds | None = None
    reason: str = ""


@dataclass
class PeiParser:
    """Incremental PEI line parser; see the module docstring for what it tolerates."""

    counts: Counter = field(default_factory=Counter)
    _buffer: bytearray = field(default_factory=bytearray)
    _pending: SdsHeader | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """Take bytes as they came off the wire; returns the events completed by them."""
        events: list[Event] = []
        self._buffer.extend(chunk)
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, skip = cut
            line = bytes(self._buffer[:end])
            del self._buffer[: end + skip]
            self._line(line, events)
        if len(self._buffer) > MAX_LINE:
            dropped = bytes(self._buffer)
            self._buffer.clear()
            events.append(self._reject("overlong_line", dropped[:80].decode("latin-1")))
        return events

    def flush(self) -> list[Event]:
        """End of input (or a long silence): the unterminated rest is a line; a header still
        waiting for its payload is given up."""
        events: list[Event] = []
        if self._buffer:
            line = bytes(self._buffer)
            self._buffer.clear()
            self._line(line, events)
        if self._pending is not None:
            events.append(self._reject("missing_payload", self._pending.raw))
            self._pending = None
        return events

    # -- lines ------------------------------------------------------------------------------------
    def _line(self, raw: bytes, events: list[Event]) -> None:
        # Noise bytes (line glitches, a radio rebooting) split the line; what lies between
        # them is still read, so a header after a burst of noise is not lost with it.
        segments = _PRINTABLE.findall(raw.decode("latin-1"))
        noise = len(raw) - sum(len(s) for s in segments)
        if noise:
            self.counts["noise_bytes"] += noise
        for segment in segments:
            # A segment may hold several results run together where a line end was lost.
            for piece in _split_results(segment.strip()):
                self._piece(piece, events)

    def _piece(self, text: str, events: list[Event]) -> None:
        self.counts["lines"] += 1
        header = _HEADER.match(text)
        if header:
            self._header(header.group(1), text, events)
            return
        glued = _HEX_THEN_FINAL.match(text)
        if glued and self._pending is not None:
            self._payload(glued.group(1), events)
            self._final(glued.group(2), events)
            return
        if _FINAL.match(text):
            self._final(text, events)
            return
        if text.upper().startswith("AT"):
            self.counts["echo"] += 1
            events.append(Event("echo", text))
            return
        if _HEX.match(text):
            if self._pending is None:
                events.append(self._reject("orphan_payload", text[:80]))
            else:
                self._payload(text, events)
            return
        if self._pending is not None:
            events.append(self._reject("missing_payload", self._pending.raw))
            self._pending = None
        if text.startswith("+"):
            self.counts["info"] += 1
            events.append(Event("info", text))
        else:
            events.append(self._reject("garbage", text[:80]))

    def _final(self, text: str, events: list[Event]) -> None:
        self.counts["final"] += 1
        events.append(Event("final", text.upper() if text.upper() in ("OK", "ERROR") else text))

    def _header(self, body: str, raw: str, events: list[Event]) -> None:
        if self._pending is not None:
            events.append(self._reject("missing_payload", self._pending.raw))
            self._pending = None
        fields = [f.strip() for f in body.split(",")]
        glued_hex = None
        if len(fields) >= 6 and not fields[-1].isdigit() and _HEX.match(fields[-1] or "-"):
            split = _split_length_and_hex(fields[-1])
            if split is None:
                events.append(self._reject("bad_header", raw[:120]))
                return
            fields[-1], glued_hex = split
        try:
            header = _parse_header(fields, raw)
        except ValueError as exc:
            events.append(self._reject("bad_header", f"{raw[:120]} ({exc})"))
            return
        self.counts["headers"] += 1
        self._pending = header
        if glued_hex is not None:
            self.counts["repaired_missing_newline"] += 1
            self._payload(glued_hex, events, repaired=True)

    def _payload(self, hex_text: str, events: list[Event], repaired: bool = False) -> None:
        header = self._pending
        assert header is not None
        self._pending = None
        hex_bits = 4 * len(hex_text)
        if header.length_bits > hex_bits:
            self.counts["declared_longer_than_hex"] += 1
        elif header.length_bits <= hex_bits - 8:
            self.counts["declared_shorter_than_hex"] += 1
        self.counts["sds"] += 1
        events.append(Event("sds", sds=Sds(header, hex_text.upper(), repaired)))

    def _reject(self, reason: str, text: str) -> Event:
        self.counts[f"rejected_{reason}"] += 1
        return Event("reject", text, reason=reason)


def _line_end(buffer: bytearray) -> tuple[int, int] | None:
    """Index of the first line end in ``buffer`` and how many bytes it spans."""
    for index, byte in enumerate(buffer):
        if byte in (0x0D, 0x0A):
            skip = 1
            if index + 1 < len(buffer) and buffer[index + 1] in (0x0D, 0x0A) and \
                    buffer[index + 1] != byte:
                skip = 2
            return index, skip
    return None


def _split_results(text: str) -> list[str]:
    """Split ``0A12+CTSDSR: ...`` or ``OK+CTSDSR: ...`` where a line end went missing."""
    pieces = []
    start = 0
    for index in range(1, len(text)):
        # An echoed command (AT+CTSP=...) keeps its own plus signs.
        if text[index] == "+" and not text[start:index].upper().startswith("AT"):
            pieces.append(text[start:index])
            start = index
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def _split_length_and_hex(field_text: str) -> tuple[str, str] | None:
    """``840A1B...`` -> (``84``, ``0A1B...``): the split whose length best fits the hex."""
    best: tuple[int, str, str] | None = None
    for cut in range(1, min(5, len(field_text))):
        digits, rest = field_text[:cut], field_text[cut:]
        if not digits.isdigit() or not rest:
            break
        declared = int(digits)
        misfit = abs(4 * len(rest) - declared)
        # SDS user data normally starts with a protocol identifier; prefer splits that keep a
        # whole number of octets' worth of padding (0..7 bits).
        penalty = 0 if 0 <= 4 * len(rest) - declared < 8 else 100
        score = misfit + penalty
        if best is None or score < best[0]:
            best = (score, digits, rest)
    if best is None or best[0] >= 100:
        return None
    return best[1], best[2]


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _parse_header(fields: list[str], raw: str) -> SdsHeader:
    if len(fields) < 6:
        raise ValueError(f"{len(fields)} fields, expected at least 6")
    service = _int_or_none(fields[0])
    if service is None:
        raise ValueError("AI service is not a number")
    # <length> is the 6th field; a 7th is the end-to-end encryption flag (0/1) on most radios,
    # but some put an <area> before the length, pushing it to the 7th.
    length_text = fields[5]
    if len(fields) >= 7 and fields[6] not in ("0", "1") and fields[6].isdigit():
        length_text = fields[6]
    if not length_text.isdigit():
        raise ValueError("length is not a number")
    length = int(length_text)
    if not 0 < length <= 4096:
        raise ValueError(f"length {length} out of range")
    return SdsHeader(service, fields[1] or None, _int_or_none(fields[2]), fields[3] or None,
                     _int_or_none(fields[4]), length, raw)


def ctsdsr(calling_issi: int, called_issi: int, data: bytes, nbits: int,
           ai_service: int = 12) -> bytes:
    """The bytes a radio sends for one received SDS (used by the simulator and tests)."""
    header = f"+CTSDSR: {ai_service},{calling_issi},0,{called_issi},0,{nbits}"
    return f"\r\n{header}\r\n{data.hex().upper()}\r\n".encode("ascii")
