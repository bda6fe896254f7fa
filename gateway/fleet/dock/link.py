"""The dock link, gateway side: one slot's serial line, the request/answer protocol of
``docs/dock.md`` (``ID``, ``NEXT``/``ACK``, fences, settings, sign-out), and the tracker's
``ID`` answer."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import serial

from gateway.fleet.identity import IdentityError, check_name
from tracker.dock import crc_hex, frame, unframe

FENCE_CHUNK = 200  # bytes of fence set per FDATA frame: keeps the device's line buffer small
PROVISION_CHUNK = 400  # characters of the CA per PADD frame (JSON escapes can double them)
PULL_BATCH = 50  # records per commit (and per ACK)
MAX_ID_ANSWER = 1024  # the device's line limit
MAX_SEQ = 2**31 - 1  # sequence numbers are small ints on the device
MAX_TS = 2**32  # UTC seconds, far beyond any shift


class DockError(RuntimeError):
    """The tracker in a slot refused a request or stopped answering."""


class LinkDown(DockError):
    """No intact answer in time: nothing in the slot, or it was just pulled out."""


class BadAnswer(DockError):
    """An intact answer frame whose content is not what the protocol allows."""


def _short(value: object) -> str:
    return repr(value)[:40]


def _text(doc: dict, key: str, limit: int) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise BadAnswer(f"{key} {_short(value)}")
    return value


def _int_field(doc: dict, key: str, default: int, low: int, high: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadAnswer(f"{key} {_short(value)} not an integer in {low}..{high}")
    return value


def _flag_field(doc: dict, key: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise BadAnswer(f"{key} {_short(value)} not true/false")
    return value


# -- the link -------------------------------------------------------------------------------
@dataclass
class DeviceInfo:
    """The tracker's ``ID`` answer."""

    device_id: str
    firmware: str
    fences: str
    batt: int
    charging: bool | None
    outbox: int
    last_seq: int
    signed_out_to: str
    due_ts: int
    report_s: int
    tracking: bool

    @classmethod
    def parse(cls, data: bytes) -> DeviceInfo:
        """The ``ID`` answer, every field checked; raises :class:`BadAnswer` for anything that
        is not what ``tracker.dock.DockLink.identity`` writes (never another exception). The
        device id must pass :func:`gateway.fleet.identity.check_name`, the one grammar of
        names (it becomes a broker account and a topic level)."""
        if len(data) > MAX_ID_ANSWER:
            raise BadAnswer(f"ID answer of {len(data)} bytes")
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise BadAnswer(f"ID answer is not JSON: {type(exc).__name__}") from None
        if not isinstance(doc, dict):
            raise BadAnswer(f"ID answer is a JSON {type(doc).__name__}, not an object")
        try:
            device = check_name(doc.get("dev"), "device")
        except IdentityError as exc:
            raise BadAnswer(f"ID answer has no valid device id: {exc}") from None
        charging = doc.get("chg")
        if charging is not None and not isinstance(charging, bool):
            raise BadAnswer(f"chg {_short(charging)}")
        return cls(device, _text(doc, "fw", 32), _text(doc, "fences", 64),
                   _int_field(doc, "batt", -1, -1, 100), charging,
                   _int_field(doc, "outbox", 0, 0, MAX_SEQ),
                   _int_field(doc, "last_seq", 0, 0, MAX_SEQ), _text(doc, "asg", 32),
                   _int_field(doc, "due", 0, 0, MAX_TS), _int_field(doc, "report_s", 0, 0, 3600),
                   _flag_field(doc, "tracking"))


class DockClient:
    """The gateway's end of one slot's serial link: request, wait for the matching answer.

    Answers carry the request id, so an answer that arrives after its request timed out is
    recognised as stale and skipped rather than taken for the answer to the next request.
    """

    def __init__(self, port: str, timeout_s: float = 0.5, baudrate: int = 115200):
        self.port = port
        self.timeout_s = timeout_s
        self.baudrate = baudrate
        self.link: serial.SerialBase | None = None
        self._rid = 0
        self._buf = b""
        self.rejected = 0  # damaged or stale frames skipped
        self.answered = 0  # frames taken as the answer to their request

    def open(self) -> DockClient:
        self.link = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.05)
        return self

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None

    def request(self, verb: str, args: str | bytes = "", retries: int = 1) -> bytes:
        """Send ``verb args``; returns the answer's data. Raises :class:`DockError` on ``ERR``,
        :class:`LinkDown` when no intact answer comes after ``retries`` resends."""
        if self.link is None:
            self.open()
        for _ in range(retries + 1):
            self._rid = self._rid % 9999 + 1
            rid = self._rid
            body = f"{rid} {verb}".encode()
            if args:
                body += b" " + (args.encode() if isinstance(args, str) else args)
            self.link.write(frame(body))
            answer = self._answer(rid)
            if answer is None:
                continue
            status, _, data = answer.partition(b" ")
            if status == b"OK":
                return data
            raise DockError(f"{verb}: {data.decode(errors='replace')}")
        raise LinkDown(f"no answer to {verb} on {self.port}")

    def _answer(self, rid: int) -> bytes | None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            nl = self._buf.find(b"\n")
            if nl < 0:
                try:
                    chunk = self.link.read(4096)
                except (serial.SerialException, OSError):
                    return None
                self._buf += chunk
                if len(self._buf) > 65536:  # noise without line ends
                    self._buf = b""
                continue
            line, self._buf = self._buf[: nl + 1], self._buf[nl + 1 :]
            body = unframe(line)
            if body is None:
                self.rejected += 1
                continue
            got, _, rest = body.partition(b" ")
            if got == str(rid).encode():
                self.answered += 1
                return rest
            self.rejected += 1  # the late answer to an earlier request
        return None

    # -- commands ---------------------------------------------------------------------------
    def identify(self) -> DeviceInfo:
        return DeviceInfo.parse(self.request("ID"))

    def pull(self, store: Callable[[list[tuple[int, str, bytes]]], None],
             batch: int = PULL_BATCH, limit: int | None = None) -> int:
        """Pull pending records, oldest first, in batches: ``store(batch)`` must commit them,
        then they are acknowledged. Returns the number of records acknowledged."""
        after = 0
        acked = 0
        while limit is None or acked < limit:
            records: list[tuple[int, str, bytes]] = []
            while len(records) < batch:
                data = self.request("NEXT", str(after))
                if data == b"0":
                    break
                parts = data.split(b" ", 2)
                if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 10:
                    raise BadAnswer(f"NEXT answer {data[:40]!r}")
                seq = int(parts[0])
                if not after < seq <= MAX_SEQ:
                    # A device answering with an older record would loop the pull forever.
                    raise BadAnswer(f"NEXT after {after} answered {seq}")
                try:
                    kind = parts[1].decode("ascii")
                except UnicodeDecodeError:
                    raise BadAnswer(f"NEXT kind {parts[1][:20]!r}") from None
                after = seq
                records.append((after, kind, parts[2]))
            if not records:
                return acked
            store(records)
            self.request("ACK", str(after))
            acked += len(records)
        return acked

    def push_fences(self, text: str) -> str:
        """Send a compiled fence set in chunks; returns the version the tracker now runs."""
        # Compact JSON has no raw line ends, which would end a frame early.
        data = json.dumps(json.loads(text), separators=(",", ":")).encode()
        self.request("FBEGIN", f"{len(data)} {crc_hex(data)}")
        for offset in range(0, len(data), FENCE_CHUNK):
            self.request("FDATA", f"{offset} ".encode() + data[offset : offset + FENCE_CHUNK])
        return self.request("FEND").decode()

    def provision(self, settings: dict[str, str | int], ca_pem: str | None = None) -> int:
        """Write ``settings`` (and the broker's CA) into the tracker's ``config.json`` through
        ``PBEGIN``/``PSET``/``PADD``/``PEND`` (docs/dock.md); returns how many settings it
        wrote. Values travel only inside frames: nothing here logs them, and the device never
        echoes them."""
        crc = 0
        self.request("PBEGIN")
        pieces = [("PSET", f"{key} {json.dumps(value, separators=(',', ':'))}".encode())
                  for key, value in settings.items()]
        if ca_pem:
            # JSON-escaped pieces that keep every frame well under the device's 1024 bytes.
            pieces += [("PADD", b"ca_pem " + json.dumps(ca_pem[i : i + PROVISION_CHUNK])
                        .encode()) for i in range(0, len(ca_pem), PROVISION_CHUNK)]
        for verb, args in pieces:
            crc = zlib.crc32(args, crc)
            self.request(verb, args)
        answer = self.request("PEND", f"{crc & 0xFFFFFFFF:08x}")
        try:
            return int(answer)
        except ValueError:
            raise BadAnswer(f"PEND answered {answer[:20]!r}") from None

    def push_config(self, settings: dict) -> None:
        self.request("CFG", json.dumps(settings, separators=(",", ":")))

    def sign_out(self, collar: str, due_ts: int | None) -> None:
        self.request("ASN", f"{collar} {int(due_ts or 0)}")

    def sign_in(self) -> None:
        self.request("UNA")
