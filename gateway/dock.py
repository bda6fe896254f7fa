"""The docking station, gateway side: pooled trackers in, data out, charged trackers handed out.

Each dock slot is a USB serial port (pyserial: ``/dev/ttyACM0``, a pseudo-terminal from
``simulators/dock.py``, or any pyserial URL). :class:`DockStation` polls every slot with the
line protocol of ``docs/dock.md`` (the device side is ``tracker/dock.py``). When a tracker
appears in a slot it:

1. asks who it is (``ID``: device, firmware, fence version, battery, outbox depth);
2. pulls its outbox record by record into SQLite through the same :class:`gateway.ingest.Ingest`
   as MQTT, and acknowledges (``ACK``) only after the commit, as a broker's PUBACK would: a
   record the broker also delivered is a counted duplicate, and a tracker pulled out
   mid-transfer keeps everything not yet committed;
3. ends the assignment (the tracker is back), tells the tracker it is no longer signed out, and
   pushes the settings and the current fence set if the tracker's version differs.

While a tracker sits in a slot the station keeps asking (``ID`` every ``poll_s``), records its
charge, and, when someone signs it out (``hotspots assign`` or ``hotspots dock pick``), arms it
(``ASN``) — unless its charge is below the threshold, in which case it refuses and names the
fullest tracker instead. The tracker starts recording positions once it leaves the dock.

Charge state and time to full come from :class:`BatteryModel` (constant current to
``cv_from_pct``, then a linear taper), which the dock simulator also uses to charge its trackers.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import serial
import sqlite_utils

from gateway import identity
from gateway.ingest import Ingest, IngestCounts
from gateway.schema import open_db
from tracker import wire
from tracker.dock import crc_hex, frame, unframe

#: Trackers below this charge are not handed out.
MIN_CHARGE_PCT = 50
FENCE_CHUNK = 200  # bytes of fence set per FDATA frame: keeps the device's line buffer small
PROVISION_CHUNK = 400  # characters of the CA per PADD frame (JSON escapes can double them)
PULL_BATCH = 50  # records per commit (and per ACK)
MISSED_POLLS = 3  # unanswered polls in a row: the slot is empty


class DockError(RuntimeError):
    """The tracker in a slot refused a request or stopped answering."""


class LinkDown(DockError):
    """No intact answer in time: nothing in the slot, or it was just pulled out."""


class BadAnswer(DockError):
    """An intact answer frame whose content is not what the protocol allows."""


#: Device ids the dock accepts from a tracker (kept to what a broker account and a topic level
#: can hold). ``gateway.identity`` owns the grammar once issue 16's validator lands there.
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_ID_ANSWER = 1024  # the device's line limit
MAX_SEQ = 2**31 - 1  # sequence numbers are small ints on the device
MAX_TS = 2**32  # UTC seconds, far beyond any shift


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


class PickError(ValueError):
    """No tracker can be handed out as asked; the message names what can."""


# -- battery model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatteryModel:
    """A Li-ion cell on a CC/CV charger, in percent of its capacity.

    Constant current until ``cv_from_pct``, then the current tapers linearly to
    ``taper_end`` × the charge current at 100 %. Good to a few minutes for time-to-full, which
    is all the dock display needs; :mod:`simulators.dock` charges its trackers with it too.
    """

    capacity_mah: float = 2600
    charge_ma: float = 1300
    cv_from_pct: float = 80
    taper_end: float = 0.1

    def rate_pct_per_s(self, pct: float) -> float:
        """Charging speed at ``pct`` (percent per second)."""
        full_rate = self.charge_ma / self.capacity_mah * 100 / 3600
        if pct < self.cv_from_pct:
            return full_rate
        span = 100 - self.cv_from_pct
        share = 1 - (1 - self.taper_end) * (pct - self.cv_from_pct) / span
        return full_rate * max(share, self.taper_end)

    def charge(self, pct: float, seconds: float, step_s: float = 10) -> float:
        """Charge after ``seconds`` on the dock, starting at ``pct``."""
        while seconds > 0 and pct < 100:
            dt = min(step_s, seconds)
            pct = min(100.0, pct + self.rate_pct_per_s(pct) * dt)
            seconds -= dt
        return pct

    def drain(self, pct: float, seconds: float, current_ma: float) -> float:
        """Charge after ``seconds`` drawing ``current_ma``."""
        return max(0.0, pct - current_ma * seconds / 3600 / self.capacity_mah * 100)

    def time_to_full_s(self, pct: float, step_s: float = 10) -> int:
        """Seconds on the dock from ``pct`` to 100 % (0 when full)."""
        total = 0.0
        while pct < 99.95:
            rate = self.rate_pct_per_s(pct)
            dt = min(step_s, (100 - pct) / rate)
            pct += rate * dt
            total += dt
        return int(round(total))


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
        is not what ``tracker.dock.DockLink.identity`` writes (never another exception)."""
        if len(data) > MAX_ID_ANSWER:
            raise BadAnswer(f"ID answer of {len(data)} bytes")
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise BadAnswer(f"ID answer is not JSON: {type(exc).__name__}") from None
        if not isinstance(doc, dict):
            raise BadAnswer(f"ID answer is a JSON {type(doc).__name__}, not an object")
        device = doc.get("dev")
        if not isinstance(device, str) or not _DEVICE_ID.fullmatch(device):
            raise BadAnswer(f"ID answer has no valid device id: {_short(device)}")
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


# -- the station ----------------------------------------------------------------------------
@dataclass
class SlotCounts:
    """What happened at one slot since the station started."""

    dockings: int = 0
    undockings: int = 0
    pulled: int = 0
    ingest: IngestCounts = field(default_factory=IngestCounts)
    fences_pushed: int = 0
    refused: int = 0
    errors: int = 0
    #: Every poll ends in exactly one of: ``ok``, ``link_down`` (nothing answered),
    #: ``errors`` (a bad answer, a refusal, or anything else: counted, the slot goes on).
    polls: int = 0
    ok: int = 0
    link_down: int = 0


class DockStation:
    """Serves every slot of a dock, one thread per slot (each with its own SQLite connection).

    :param db_path: the gateway database (shared with ``hotspots gateway run``: WAL)
    :param slots: slot name -> serial port (or pyserial URL)
    :param fences_text: the station's compiled fence set (JSON wrapper text), or None
    :param config: settings for the trackers (``{"report_s": 10}``)
    :param clock: station time for the lifecycle (docking, returns), UTC epoch seconds;
        injected so a simulated shift can run on simulated time
    :param min_charge_pct: refuse to arm a tracker below this charge
    """

    def __init__(self, db_path: str, slots: dict[str, str], *, fences_text: str | None = None,
                 config: dict | None = None, clock: Callable[[], float] = time.time,
                 min_charge_pct: int = MIN_CHARGE_PCT, poll_s: float = 0.5,
                 timeout_s: float = 0.5, model: BatteryModel | None = None,
                 battery_log_s: float = 60):
        self.db_path = db_path
        self.slots = dict(slots)
        self.fences_text = fences_text
        self.fences_version = _fence_version(fences_text) if fences_text else None
        self.config = dict(config or {})
        self.clock = clock
        self.min_charge_pct = min_charge_pct
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.model = model or BatteryModel()
        self.battery_log_s = battery_log_s
        self.counts = {name: SlotCounts() for name in self.slots}
        #: The latest ``ID`` answer per slot (None while empty).
        self.info: dict[str, DeviceInfo | None] = {name: None for name in self.slots}
        self._threads: list[threading.Thread] = []
        #: Builds each slot's :class:`DockClient` (a test hands in one on another transport).
        self.client_factory: Callable[..., DockClient] = DockClient

    # -- threads ----------------------------------------------------------------------------
    def start(self, stop: threading.Event) -> DockStation:
        for name in self.slots:
            thread = threading.Thread(target=self.serve_slot, args=(name, stop),
                                      name=f"dock-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def join(self, timeout: float = 10) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def run(self, stop: threading.Event) -> dict[str, SlotCounts]:
        """Serve every slot until ``stop`` is set."""
        self.start(stop)
        self.join(timeout=None)
        return self.counts

    def serve_slot(self, name: str, stop: threading.Event) -> None:
        """Poll one slot until ``stop``: dock, pull, push, arm, and notice removal."""
        db = open_db(self.db_path)
        db.execute("PRAGMA synchronous = FULL")  # an ACK releases the device's only copy
        db.conn.execute("PRAGMA busy_timeout = 10000")
        ingest = Ingest(db)
        ingest.counts = self.counts[name].ingest
        client = self.client_factory(self.slots[name], timeout_s=self.timeout_s)
        from gateway import enrol  # (imports this module)

        _slot_row(db, name, self.slots[name], None, "empty", self.clock())
        device: str | None = None
        missed = 0
        last_log = 0.0
        try:
            while not stop.is_set():
                started = time.monotonic()
                self.counts[name].polls += 1
                try:
                    info = client.identify()
                except LinkDown:
                    missed += 1
                    self.counts[name].link_down += 1
                    if device is not None and missed >= MISSED_POLLS:
                        self._undocked(db, name, device)
                        device = None
                    continue
                except BadAnswer:
                    self.counts[name].errors += 1  # the link is fine; the answer was not
                    stop.wait(self.poll_s)
                    continue
                except Exception:  # noqa: BLE001 - serial errors and anything else: the
                    # slot thread must outlive any device; reopen the port and go on.
                    self.counts[name].errors += 1
                    client.close()
                    stop.wait(self.poll_s)
                    continue
                missed = 0
                self.info[name] = info
                try:
                    if enrol.run_pending(self.db_path, name, client, info, db, self.clock):
                        info = client.identify()  # enrolled (hotspots enrol --slot)
                    if info.device_id != device:
                        if device is not None:
                            self._undocked(db, name, device)
                        device = info.device_id
                        self._docked(db, ingest, client, name, info)
                        last_log = 0.0
                        info = client.identify()
                    self._docked_poll(db, ingest, client, name, info)
                    if self.clock() - last_log >= self.battery_log_s:
                        last_log = self.clock()
                        db.execute("INSERT INTO battery_log (device_id, ts, batt, charging, docked)"
                                   " VALUES (?, ?, ?, ?, 1)",
                                   (info.device_id, int(self.clock()), info.batt,
                                    _flag(info.charging)))
                        db.conn.commit()
                except LinkDown:
                    missed += 1  # pulled out mid-conversation: the next polls will tell
                    self.counts[name].link_down += 1
                except Exception as exc:  # noqa: BLE001 - a bad answer, a refused request, a
                    # database hiccup: counted and logged for this slot, which keeps serving.
                    self.counts[name].errors += 1
                    try:
                        self._event(db, name, device, "error", info.batt,
                                    f"{type(exc).__name__}: {exc}"[:200])
                    except sqlite3.Error:
                        pass
                else:
                    self.counts[name].ok += 1
                stop.wait(max(0.0, self.poll_s - (time.monotonic() - started)))
        finally:
            client.close()
            ingest.rollback()
            db.close()

    # -- what happens at the dock -----------------------------------------------------------
    def _docked(self, db: sqlite_utils.Database, ingest: Ingest, client: DockClient, slot: str,
                info: DeviceInfo) -> None:
        now = int(self.clock())
        identity.register_device(db, info.device_id, at=now)
        counts = self.counts[slot]
        counts.dockings += 1
        _slot_row(db, slot, self.slots[slot], info, "docked", now, docked_at=now)
        self._event(db, slot, info.device_id, "docked", info.batt,
                    f"outbox {info.outbox}, fences {info.fences or '-'}, fw {info.firmware}")
        # Data first, so the positions are stored while the assignment still covers them.
        self._pull(db, ingest, client, slot, info.device_id)
        running = identity.current(db, info.device_id, now)
        if running is not None and running.start_ts < now:
            identity.return_device(db, info.device_id, at=now)
            self._event(db, slot, info.device_id, "returned", info.batt,
                        f"officer {running.collar}")
        if info.signed_out_to and (running is None or running.start_ts < now):
            client.sign_in()
        if self.config and info.report_s != self.config.get("report_s", info.report_s):
            client.push_config(self.config)
            self._event(db, slot, info.device_id, "config", info.batt, json.dumps(self.config))
        if self.fences_text and info.fences != self.fences_version:
            version = client.push_fences(self.fences_text)
            counts.fences_pushed += 1
            self._event(db, slot, info.device_id, "fences", info.batt,
                        f"{info.fences or '-'} -> {version}")

    def _docked_poll(self, db: sqlite_utils.Database, ingest: Ingest, client: DockClient,
                     slot: str, info: DeviceInfo) -> None:
        now = int(self.clock())
        if info.outbox:
            self._pull(db, ingest, client, slot, info.device_id)
        running = identity.current(db, info.device_id, now)
        state, detail = "docked", ""
        if running is not None and info.signed_out_to != running.collar:
            if info.batt < self.min_charge_pct:
                state = "refused"
                detail = refusal(db, info.device_id, info.batt, self.min_charge_pct, self.model,
                                 now)
                if _slot_state(db, slot) != "refused":
                    self.counts[slot].refused += 1
                    self._event(db, slot, info.device_id, "refused", info.batt, detail)
            else:
                client.sign_out(running.collar, running.due_ts)
                info.signed_out_to = running.collar
                self._event(db, slot, info.device_id, "signed_out", info.batt,
                            f"officer {running.collar}")
        elif running is None and info.signed_out_to:
            client.sign_in()
            info.signed_out_to = ""
        _slot_row(db, slot, self.slots[slot], info, state, now, detail=detail)

    def _pull(self, db: sqlite_utils.Database, ingest: Ingest, client: DockClient, slot: str,
              device_id: str) -> None:
        counts = self.counts[slot]
        before = (sum(ingest.counts.stored.values()), ingest.counts.duplicates)

        def store(records: list[tuple[int, str, bytes]]) -> None:
            for attempt in range(20):
                try:
                    for _seq, kind, payload in records:
                        ingest.handle(wire.device_topic(device_id, kind), payload)
                    ingest.commit()
                    counts.pulled += len(records)  # committed, even if the ACK gets lost
                    return
                except sqlite3.OperationalError:  # the MQTT gateway holds the write lock
                    ingest.rollback()
                    time.sleep(0.05 * (attempt + 1))
            raise DockError("database stayed locked; records left on the device")

        pulled = client.pull(store)
        if pulled:
            stored = sum(ingest.counts.stored.values()) - before[0]
            dups = ingest.counts.duplicates - before[1]
            self._event(db, slot, device_id, "pulled", None,
                        f"{pulled} records: {stored} new, {dups} already stored")

    def _undocked(self, db: sqlite_utils.Database, slot: str, device_id: str) -> None:
        self.counts[slot].undockings += 1
        self.info[slot] = None
        row = db.execute("SELECT batt, signed_out_to FROM dock_slots WHERE slot = ?",
                         (slot,)).fetchone()
        batt, collar = row if row else (None, None)
        self._event(db, slot, device_id, "undocked", batt,
                    f"officer {collar}" if collar else "not signed out")
        with db.conn:
            db.execute("UPDATE dock_slots SET device_id = NULL, state = 'empty', detail = NULL,"
                       " updated_at = ? WHERE slot = ?", (int(self.clock()), slot))

    def _event(self, db: sqlite_utils.Database, slot: str, device_id: str | None, event: str,
               batt: int | None, detail: str = "") -> None:
        with db.conn:
            db.execute("INSERT INTO dock_events (ts, slot, device_id, event, batt, detail)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (int(self.clock()), slot, device_id, event, batt, detail))


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


def _fence_version(text: str) -> str:
    from tracker.fence import FenceSet

    return FenceSet.from_json(text).version


def _slot_state(db: sqlite_utils.Database, slot: str) -> str | None:
    row = db.execute("SELECT state FROM dock_slots WHERE slot = ?", (slot,)).fetchone()
    return row[0] if row else None


def _slot_row(db: sqlite_utils.Database, slot: str, port: str, info: DeviceInfo | None,
              state: str, now: float, docked_at: int | None = None, detail: str = "") -> None:
    with db.conn:
        if info is None:
            db.execute("INSERT INTO dock_slots (slot, port, state, updated_at) VALUES (?,?,?,?)"
                       " ON CONFLICT(slot) DO UPDATE SET port = excluded.port,"
                       " device_id = NULL, state = excluded.state, detail = NULL,"
                       " updated_at = excluded.updated_at", (slot, port, state, int(now)))
            return
        db.execute(
            "INSERT INTO dock_slots (slot, port, device_id, state, docked_at, batt, charging,"
            " outbox, fence_version, firmware, signed_out_to, detail, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(slot) DO UPDATE SET"
            " port = excluded.port, device_id = excluded.device_id, state = excluded.state,"
            " docked_at = coalesce(excluded.docked_at, docked_at), batt = excluded.batt,"
            " charging = excluded.charging, outbox = excluded.outbox,"
            " fence_version = excluded.fence_version, firmware = excluded.firmware,"
            " signed_out_to = excluded.signed_out_to, detail = excluded.detail,"
            " updated_at = excluded.updated_at",
            (slot, port, info.device_id, state, docked_at, info.batt, _flag(info.charging),
             info.outbox, info.fences, info.firmware, info.signed_out_to or None,
             detail or None, int(now)))


# -- what the station staff see and do ---------------------------------------------------------
@dataclass
class SlotStatus:
    """One slot as ``hotspots dock status`` shows it."""

    slot: str
    device_id: str | None
    state: str
    batt: int | None
    charging: bool | None
    time_to_full_s: int | None
    outbox: int | None
    fence_version: str | None
    officer: str | None
    docked_since: int | None
    detail: str | None
    updated_age_s: int | None


@dataclass
class OutStatus:
    """A tracker that is not in any slot."""

    device_id: str
    officer: str | None
    since: int | None
    due_ts: int | None
    batt: int | None
    last_fix_age_s: int | None


@dataclass
class DockStatus:
    slots: list[SlotStatus]
    out: list[OutStatus]
    now: int


def dock_status(db: sqlite_utils.Database, now: float | None = None,
                model: BatteryModel | None = None) -> DockStatus:
    """Every slot (with charge and time to full) and every registered tracker out of the dock."""
    now = int(time.time() if now is None else now)
    model = model or BatteryModel()
    slots = []
    for (slot, device, state, batt, charging, outbox, fences, docked_at, detail,
         updated) in db.execute(
            "SELECT slot, device_id, state, batt, charging, outbox, fence_version, docked_at,"
            " detail, updated_at FROM dock_slots ORDER BY slot"):
        running = identity.current(db, device, now) if device else None
        to_full = None
        if device is not None and batt is not None and batt >= 0:
            to_full = model.time_to_full_s(batt) if batt < 100 else 0
        slots.append(SlotStatus(slot, device, state or "empty", batt,
                                None if charging is None else bool(charging), to_full, outbox,
                                fences, running.collar if running else None,
                                docked_at if device else None, detail,
                                None if updated is None else max(0, now - updated)))
    docked = {s.device_id for s in slots if s.device_id}
    out = []
    for device, batt, last_fix in db.execute(
            "SELECT device_id, batt, last_fix_tst FROM devices WHERE registered_at IS NOT NULL"
            " AND source = 'tracker' ORDER BY device_id"):
        if device in docked:
            continue
        running = identity.current(db, device, now)
        out.append(OutStatus(device, running.collar if running else None,
                             running.start_ts if running else None,
                             running.due_ts if running else None, batt,
                             None if not last_fix else max(0, now - last_fix)))
    return DockStatus(slots, out, now)


def status_lines(status: DockStatus) -> list[str]:
    """``hotspots dock status`` as aligned text."""
    lines = [f"{'slot':<8} {'device':<12} {'state':<8} {'batt':>5} {'charging':<9}"
             f" {'full in':>8} {'outbox':>6} {'fences':<12} {'officer':<8} detail"]
    for s in status.slots:
        lines.append(
            f"{s.slot:<8} {s.device_id or '-':<12} {s.state:<8} {_pct(s.batt):>5}"
            f" {('yes' if s.charging else 'no') if s.charging is not None else '-':<9}"
            f" {_mins(s.time_to_full_s):>8} {_opt(s.outbox):>6} {(s.fence_version or '-'):<12}"
            f" {s.officer or '-':<8} {s.detail or ''}".rstrip())
    lines.append("")
    lines.append("out of the dock:" if status.out else "out of the dock: none")
    for o in status.out:
        who = f"with {o.officer} since {_clock(o.since)}" if o.officer else "not signed out"
        due = f", due {_clock(o.due_ts)}" if o.due_ts else ""
        fix = f", last fix {_mins(o.last_fix_age_s)} ago" if o.last_fix_age_s is not None else ""
        lines.append(f"  {o.device_id:<12} {who}{due}, batt {_pct(o.batt)}{fix}")
    return lines


def candidates(db: sqlite_utils.Database, now: float) -> list[tuple[str, str, int]]:
    """Docked trackers nobody has signed out: ``(device, slot, batt)``, fullest first."""
    rows = db.execute(
        "SELECT device_id, slot, coalesce(batt, -1) FROM dock_slots WHERE device_id IS NOT NULL"
        " ORDER BY coalesce(batt, -1) DESC, slot").fetchall()
    return [(d, s, b) for d, s, b in rows if identity.current(db, d, now) is None]


def refusal(db: sqlite_utils.Database, device_id: str, batt: int, min_pct: int,
            model: BatteryModel, now: float) -> str:
    """Why ``device_id`` is not handed out, and what to take instead."""
    text = (f"{device_id} is at {batt}% (below {min_pct}%), charged enough in"
            f" {_mins(_time_to(model, batt, min_pct))}")
    others = [c for c in candidates(db, now) if c[0] != device_id and c[2] >= min_pct]
    if others:
        best = others[0]
        text += f"; take {best[0]} ({best[2]}%, slot {best[1]}): hotspots dock pick COLLAR"
    return text


def pick(db: sqlite_utils.Database, collar: str, *, device: str | None = None,
         min_pct: int = MIN_CHARGE_PCT, now: float | None = None, due: float | None = None,
         model: BatteryModel | None = None) -> tuple[identity.Assignment, str, int]:
    """Sign the fullest docked tracker (or ``device``) out to ``collar``.

    Returns ``(assignment, slot, batt)``; the running dock station arms the tracker at its next
    poll. Raises :class:`PickError` if the tracker is below ``min_pct`` (naming the fullest
    one instead) or none is docked and free.
    """
    now = int(time.time() if now is None else now)
    model = model or BatteryModel()
    free = candidates(db, now)
    if not free:
        raise PickError("no tracker in the dock is free to hand out")
    if device is None:
        chosen = free[0]
        if chosen[2] < min_pct:
            raise PickError(
                f"no tracker is charged to {min_pct}%: the fullest, {chosen[0]} in slot"
                f" {chosen[1]}, is at {chosen[2]}% and will be in"
                f" {_mins(_time_to(model, chosen[2], min_pct))}")
    else:
        match = [c for c in free if c[0] == device]
        if not match:
            raise PickError(f"{device} is not in the dock, or already signed out;"
                            f" free: {', '.join(f'{d} ({b}%)' for d, _, b in free)}")
        chosen = match[0]
        if chosen[2] < min_pct:
            raise PickError(refusal(db, device, chosen[2], min_pct, model, now))
    try:
        assignment = identity.assign(db, chosen[0], collar, at=now, due=due)
    except identity.IdentityError as exc:
        raise PickError(str(exc)) from exc
    return assignment, chosen[1], chosen[2]


def _time_to(model: BatteryModel, pct: float, target: float) -> int:
    total = 0.0
    while pct < target:
        rate = model.rate_pct_per_s(pct)
        dt = min(10.0, (target - pct) / rate)
        pct += rate * dt
        total += dt
    return int(total)


def _pct(value: int | None) -> str:
    return "-" if value is None or value < 0 else f"{value}%"


def _opt(value: object) -> str:
    return "-" if value is None else str(value)


def _mins(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{(seconds + 59) // 60}m"


def _clock(ts: int | None) -> str:
    return "-" if ts is None else time.strftime("%H:%M", time.gmtime(ts))
