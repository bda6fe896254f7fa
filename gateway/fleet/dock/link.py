"""The dock link, gateway side: one slot's serial line, the request/answer protocol of
``docs/dock.md`` (``ID``, ``NEXT``/``ACK``, fences, settings, sign-out), and the tracker's
``ID`` answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from tracker.dock import crc_hex, frame, unframe

FENCE_CHUNK = 200  # bytes of fence set per FDATA frame: keeps the device's line buffer small
PULL_BATCH = 50  # records per commit (and per ACK)


class DockError(RuntimeError):
    """The tracker in a slot refused a request or stopped answering."""


class LinkDown(DockError):
    """No intact answer in time: nothing in the slot, or it was just pulled out."""


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
        doc = json.loads(data)
        return cls(doc["dev"], doc.get("fw", ""), doc.get("fences", ""), doc.get("batt", -1),
                   doc.get("chg"), doc.get("outbox", 0), doc.get("last_seq", 0),
                   doc.get("asg", ""), doc.get("due", 0), doc.get("report_s", 0),
                   bool(doc.get("tracking")))


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
                seq_text, kind, payload = data.split(b" ", 2)
                after = int(seq_text)
                records.append((after, kind.decode(), payload))
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

    def push_config(self, settings: dict) -> None:
        self.request("CFG", json.dumps(settings, separators=(",", ":")))

    def sign_out(self, collar: str, due_ts: int | None) -> None:
        self.request("ASN", f"{collar} {int(due_ts or 0)}")

    def sign_in(self) -> None:
        self.request("UNA")
