"""The device side of the dock link: a line protocol over the dock's USB serial.

When a pooled tracker sits in a dock slot, the station gateway talks to it over USB serial (USB
CDC on a board, a pseudo-terminal on the unix port). The gateway asks, the device answers; every
frame is one line with a CRC, so a frame cut short by pulling the tracker out is recognised and
dropped, never half-used. See ``docs/dock.md`` for the protocol; in short::

    request   @<rid> <VERB>[ <args>]*<crc32 hex>\\n      gateway -> device
    answer    @<rid> OK[ <data>]*<crc32 hex>\\n         device -> gateway
              @<rid> ERR <reason>*<crc32 hex>\\n

The CRC-32 covers everything between ``@`` and ``*``. Verbs: ``ID`` (who are you), ``NEXT``
(the oldest pending outbox record after a sequence number), ``ACK`` (the gateway has committed
everything up to a sequence number: release it, exactly as a PUBACK would), ``CFG`` (settings),
``FBEGIN``/``FDATA``/``FEND`` (a fence set in chunks, applied only once whole and verified),
``ASN``/``UNA`` (signed out to an officer / returned), ``PING``, and
``PBEGIN``/``PSET``/``PADD``/``PEND`` (provisioning: the settings file ``config.json`` and the
broker's CA, written only once whole and verified; values are never echoed).

State kept here: *docked* (a valid frame from the gateway within the last ``silence_ms``) and
*assigned* (signed out, kept in flash in ``dock.json`` so a reboot on patrol keeps tracking).
The tracker records positions only while assigned and not docked (``Tracker.set_state``).

Pure: the line source, the storage and the clock come from the caller (``tracker.app.run``).
"""

import asyncio
import binascii
import json

from tracker.compat import const, ticks_diff, ticks_ms

DOCK_FILE = "dock.json"
# The tracker's settings, read at boot (tracker.config.FILE, in the state folder the storage
# port stands for; the CA beside it, as "ca": "ca.pem": a relative ca is in config.json's folder)
CONFIG_FILE = "config.json"
CA_FILE = "ca.pem"
# What the dock may provision: identity, broker and credentials, the link (cellular or Wi-Fi)
# and reporting; not the board's wiring. Whether the values can run is tracker.config.build's
# to say (the one validator), on the whole file about to be written, at PEND.
PROVISION_KEYS = (
    "device_id", "station", "broker_host", "broker_port", "user", "password", "ca_pem", "link",
    "wifi_ssid", "wifi_password", "apn", "apn_user", "apn_password", "report_s", "sampling",
    "psm_tau_s", "psm_active_s", "edrx_s", "radio_sleep",
)
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_SILENCE_MS = const(4000)  # no frame from the gateway for this long: out of the dock
_MAX_LINE = const(1024)
_MAX_FENCE_BYTES = const(65536)
_MAX_COLLAR = const(32)
_MAX_SETTING = const(256)  # characters of one provisioned setting
_MAX_CA = const(8192)  # characters of the CA certificate (PEM)
_MAX_NUMBER = const(10)  # digits of a sequence number or a time (2**31 has 10)
_AT = const(64)  # b"@"
_STAR = const(42)  # b"*"


def crc_hex(body):
    """CRC-32 of ``body`` (bytes) as 8 lower-case hex digits."""
    return "%08x" % (binascii.crc32(body) & 0xFFFFFFFF)


def frame(body):
    """One frame (bytes, newline included) around ``body`` (str or bytes, without ``@``/CRC)."""
    if isinstance(body, str):
        body = body.encode()
    return b"@" + body + b"*" + crc_hex(body).encode() + b"\n"


def unframe(line):
    """The body (bytes) of the first intact frame in ``line``, or None.

    Bytes before a frame (the tail of a frame cut short, line noise) are skipped: every ``@`` is
    tried as a start until one gives a frame whose CRC holds.
    """
    end = len(line)
    while end and line[end - 1] in (10, 13):
        end -= 1
    if end < 10 or line[end - 9] != _STAR:
        return None
    crc = line[end - 8 : end]
    start = line.find(b"@")
    while 0 <= start < end - 9:
        body = line[start + 1 : end - 9]
        if crc_hex(body).encode() == crc:
            return body
        start = line.find(b"@", start + 1)
    return None


def split_request(body):
    """``(rid, verb, args)`` of a request body (bytes); ``args`` is bytes (maybe empty).

    None for anything else: a request id that is not 1..9999 (as the gateway numbers them), a
    verb that is not 1..8 ASCII capitals. Never raises."""
    parts = body.split(b" ", 2)
    if len(parts) < 2 or not 0 < len(parts[0]) <= 4 or not parts[0].isdigit():
        return None
    verb = parts[1]
    if not 0 < len(verb) <= 8:
        return None
    for c in verb:
        if not 65 <= c <= 90:  # A-Z
            return None
    rid = int(parts[0])
    if not rid:
        return None
    return rid, verb.decode(), parts[2] if len(parts) > 2 else b""


def json_depth_ok(data, max_depth):
    """True if the JSON text ``data`` (bytes) nests arrays and objects at most ``max_depth``
    deep: checked before ``json.loads``, whose recursion a hostile frame could exhaust."""
    depth = 0
    in_string = False
    escaped = False
    for c in data:
        if in_string:
            if escaped:
                escaped = False
            elif c == 92:  # backslash
                escaped = True
            elif c == 34:  # quote
                in_string = False
        elif c == 34:
            in_string = True
        elif c == 91 or c == 123:  # [ {
            depth += 1
            if depth > max_depth:
                return False
        elif c == 93 or c == 125:  # ] }
            depth -= 1
    return True


def _printable(data, max_len):
    """``data`` (bytes) as text if it is 1..max_len printable ASCII characters, else None."""
    if not 0 < len(data) <= max_len:
        return None
    for c in data:
        if not 33 <= c <= 126:
            return None
    return data.decode()


class DockLink:
    """Answers the gateway's requests for one tracker.

    :param tracker: the :class:`tracker.app.Tracker` (outbox, fences, report interval, state)
    :param storage: the board's storage (``read``/``write``), or None (tests)
    :param fences_file: where an accepted fence set is kept, as ``tracker.app.run`` loads it
    :param battery: object with ``percent()`` and optionally ``charging()``, or None
    """

    def __init__(self, tracker, storage=None, fences_file="fences.json", battery=None,
                 silence_ms=_SILENCE_MS):
        self.tracker = tracker
        self.storage = storage
        self.fences_file = fences_file
        self.battery = battery
        self.silence_ms = silence_ms
        self.collar = ""
        self.due_ts = 0
        self.last_frame_ms = 0
        self.changed = False  # something the MQTT status reports changed (fences, settings)
        self.rejected = {}
        self.requests = 0
        self._fence_parts = None
        self._fence_total = 0
        self._fence_crc = ""
        self._fence_size = 0
        self._staged = None  # settings being provisioned (PBEGIN .. PEND)
        self._staged_crc = 0
        self.provisioned = 0

    # -- persistent state ------------------------------------------------------------------------
    def load(self):
        """Restore the sign-out state and settings kept in flash; a device never signed out
        starts unassigned (a pooled tracker only tracks once the dock has handed it out)."""
        text = self.storage.read(DOCK_FILE) if self.storage is not None else None
        state = {}
        if text:
            try:
                state = json.loads(text)
            except ValueError:
                state = {}
        self.collar = state.get("asg") or ""
        self.due_ts = state.get("due") or 0
        report_s = state.get("report_s")
        if isinstance(report_s, int) and 5 <= report_s <= 3600:
            self.tracker.set_report_interval(report_s)
        self.tracker.set_state(self.tracker.docked, bool(self.collar))

    def _save(self):
        if self.storage is not None:
            self.storage.write(DOCK_FILE, json.dumps(
                {"asg": self.collar, "due": self.due_ts,
                 "report_s": self.tracker.report_override_s or None}))

    # -- docked or not ---------------------------------------------------------------------------
    def poll(self, now_ms):
        """Call about once a second: the tracker leaves the dock when the gateway goes quiet."""
        if self.tracker.docked and ticks_diff(now_ms, self.last_frame_ms) > self.silence_ms:
            self.tracker.set_state(False, self.tracker.assigned)

    # -- requests --------------------------------------------------------------------------------
    def handle_line(self, line, now_ms):
        """Answer one line from the dock; returns the answer frame (bytes) or None.

        A line that is not an intact request is counted in :attr:`rejected` and not answered:
        the gateway times out and asks again.
        """
        if len(line) > _MAX_LINE:
            self._reject("too_long")
            return None
        body = unframe(line)
        if body is None:
            self._reject("bad_frame" if line.strip() else "empty")
            return None
        # From here the frame is intact, so it came from the gateway (or something that
        # computes our CRC): whatever it holds, it gets an answer and nothing escapes.
        request = split_request(body)
        if request is None:
            self._reject("bad_request")
            return frame("0 ERR bad_request")  # request id 0: never one the gateway waits for
        rid, verb, args = request
        self.requests += 1
        self.last_frame_ms = now_ms
        try:
            if not self.tracker.docked:
                self.tracker.set_state(True, self.tracker.assigned)
            ok, data = self._dispatch(verb, args)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            self._reject("bad_args")
            ok, data = False, "bad_args " + _reason(exc)
        except Exception as exc:  # noqa: BLE001 - RecursionError, MemoryError, OverflowError..
            self._reject("error")
            ok, data = False, "error " + _reason(exc)
        text = "%d %s" % (rid, "OK" if ok else "ERR")
        if data:
            if isinstance(data, str):
                data = data.encode()
            return frame(text.encode() + b" " + data)
        return frame(text)

    def _reject(self, reason):
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def _dispatch(self, verb, args):
        if verb == "ID":
            return True, self.identity()
        if verb == "PING":
            return True, ""
        if verb == "NEXT":
            return True, self._next(_number(args))
        if verb == "ACK":
            seq = _number(args)
            if seq > self.tracker.outbox.last_seq:
                # Releasing records never written would move the acknowledged mark past
                # what the tracker will write next: refused.
                return False, "ack_beyond_last"
            self.tracker.outbox.ack(seq)
            return True, str(len(self.tracker.outbox))
        if verb == "ASN":
            collar, due = args.split(b" ")
            collar = _printable(collar, _MAX_COLLAR)
            if collar is None:
                return False, "bad_collar"
            due = _number(due)  # both parsed before either is applied
            self.collar = collar
            self.due_ts = due
            self.tracker.set_state(self.tracker.docked, True)
            self._save()
            return True, ""
        if verb == "UNA":
            self.collar = ""
            self.due_ts = 0
            self.tracker.set_state(self.tracker.docked, False)
            self._save()
            return True, ""
        if verb == "CFG":
            return self._config(args)
        if verb == "FBEGIN":
            total, crc = args.split(b" ")
            total = _number(total)
            if not 0 < total <= _MAX_FENCE_BYTES:
                return False, "too_big"
            crc = _printable(crc, 8)
            if crc is None or len(crc) != 8:
                return False, "bad_crc"
            self._fence_parts = []
            self._fence_total = total
            self._fence_crc = crc
            self._fence_size = 0
            return True, ""
        if verb == "FDATA":
            return self._fence_data(args)
        if verb == "FEND":
            return self._fence_end()
        if verb == "PBEGIN":
            self._staged = {}
            self._staged_crc = 0
            return True, ""
        if verb == "PSET" or verb == "PADD":
            return self._provision(verb == "PADD", args)
        if verb == "PEND":
            return self._provision_end(args)
        self._reject("unknown_verb")
        return False, "unknown_verb"

    def identity(self):
        """The ``ID`` answer: who the device is and what state it is in (one JSON object)."""
        t = self.tracker
        outbox = t.outbox
        batt = self.battery.percent() if self.battery is not None else -1
        charging = getattr(self.battery, "charging", None)
        return ('{"dev":%s,"fw":%s,"fences":%s,"batt":%d,"chg":%s,"outbox":%d,"last_seq":%d,'
                '"acked":%d,"asg":%s,"due":%d,"report_s":%d,"tracking":%s,"t":%d}' % (
                    json.dumps(t.device_id), json.dumps(_firmware_version()),
                    json.dumps(t.fence_set.version if t.fence_set else ""), batt,
                    "null" if charging is None else ("true" if charging() else "false"),
                    len(outbox), outbox.last_seq, outbox.acked, json.dumps(self.collar),
                    self.due_ts, t.report_interval_s, "true" if t.tracking() else "false",
                    t.now_s()))

    def _next(self, after):
        """The oldest pending record with a sequence number above ``after``: ``seq kind payload``.

        Pending records are in sequence order, so this walks from the oldest; a record already
        sent (by MQTT or an earlier pull) but not yet acknowledged is sent again, which the
        gateway's unique ``(device, seq)`` turns into a counted duplicate.
        """
        outbox = self.tracker.outbox
        for i in range(len(outbox)):
            seq, kind, payload = outbox.message(i)
            if seq > after:
                return b"%d %s %s" % (seq, kind.encode(), payload)
        return "0"

    def _config(self, args):
        if not json_depth_ok(args, 2):
            return False, "too_deep"
        settings = json.loads(args)
        if not isinstance(settings, dict):
            return False, "not_an_object"
        report_s = settings.get("report_s")
        if report_s is not None:
            if not isinstance(report_s, int) or not 5 <= report_s <= 3600:
                return False, "report_s must be 5..3600"
            self.tracker.set_report_interval(report_s)
        self._save()
        self.changed = True
        return True, ""

    # -- provisioning: the settings file (docs/dock.md) ----------------------------------------
    def _provision(self, append, args):
        """``PSET <key> <json value>`` / ``PADD <key> <json string>`` (appends, for the CA).

        Here only what the frame itself must be: a key the dock may set, one JSON scalar of
        bounded size. Errors name the key, never the value: values include credentials."""
        if self._staged is None:
            return False, "no_pbegin"
        key, value = args.split(b" ", 1)
        key = key.decode()
        if key not in PROVISION_KEYS:
            return False, "unknown_setting"
        if not json_depth_ok(value, 0):
            return False, "bad_value " + key
        value = json.loads(value)
        if isinstance(value, (list, dict)):
            return False, "bad_value " + key
        if append:
            if not isinstance(value, str):
                return False, "bad_value " + key
            value = self._staged.get(key, "") + value
        limit = _MAX_CA if key == "ca_pem" else _MAX_SETTING
        if isinstance(value, str) and len(value) > limit:
            return False, "too_long " + key
        self._staged[key] = value
        self._staged_crc = binascii.crc32(args, self._staged_crc)
        return True, ""

    def _provision_end(self, args):
        """``PEND <crc>``: the CRC-32 of every PSET/PADD argument, in order, so a lost or
        repeated frame is caught; then ``ca.pem`` and ``config.json`` are written (merged
        into what is there: a board's wiring set at flashing stays). Takes effect at the
        next boot."""
        staged = self._staged
        self._staged = None
        if staged is None:
            return False, "no_pbegin"
        if args.strip() != ("%08x" % (self._staged_crc & 0xFFFFFFFF)).encode():
            return False, "crc"
        for key in ("device_id", "broker_host"):
            if not staged.get(key):
                return False, "missing " + key  # enrolment names the device and its broker
        if self.storage is None:
            return False, "no_storage"
        config = {}
        text = self.storage.read(CONFIG_FILE)
        if text:
            try:
                old = json.loads(text)
                if isinstance(old, dict):
                    config = old
            except ValueError:
                pass  # a damaged file is replaced whole
        ca = staged.pop("ca_pem", None)
        if ca is not None:
            if not isinstance(ca, str) or _PEM_BEGIN not in ca:
                return False, "bad_value ca_pem"
            staged["ca"] = CA_FILE
        for key in staged:
            config[key] = staged[key]
        # The file the board will boot with must pass the board's own check: the same
        # tracker.config.build the boot runs, so a setting that cannot run is refused now, at
        # the dock, rather than found at the next start in the field.
        reason = _settings_refused(config, self.tracker.device_id)
        if reason is not None:
            return False, "config " + reason
        if ca is not None:
            self.storage.write(CA_FILE, ca)
        self.storage.write(CONFIG_FILE, json.dumps(config))
        self.provisioned += 1
        return True, str(len(staged))

    def _fence_data(self, args):
        if self._fence_parts is None:
            return False, "no_fbegin"
        offset, chunk = args.split(b" ", 1)
        if _number(offset) != self._fence_size:
            # A chunk lost or repeated: the gateway starts over with FBEGIN.
            return False, "offset %d" % self._fence_size
        if self._fence_size + len(chunk) > self._fence_total:
            return False, "overrun"
        self._fence_parts.append(bytes(chunk))
        self._fence_size += len(chunk)
        return True, str(self._fence_size)

    def _fence_end(self):
        parts = self._fence_parts
        self._fence_parts = None
        if parts is None or self._fence_size != self._fence_total:
            return False, "incomplete"
        data = b"".join(parts)
        parts = None
        if crc_hex(data) != self._fence_crc:
            return False, "crc"
        text = str(data, "utf-8")
        data = None
        try:
            new_set = apply_fences(self.tracker, text)
        except ValueError as exc:
            return False, "fences " + str(exc)
        if self.storage is not None:
            self.storage.write(self.fences_file, text)
        self.changed = True
        return True, new_set.version


def apply_fences(tracker, text):
    """Swap a new compiled fence set held whole in memory (the dock hands it over so) into
    ``tracker`` (a ``tracker.app.Tracker``); raises ``ValueError`` (or ``MemoryError``,
    ``OSError``), counted in the status, and keeps the old one if it cannot be used.

    With the tracker's ``storage``, the set goes to flash first and runs from there, so the text
    is not kept in memory once this returns. Here, not in ``tracker.app``: only the dock hands a
    set over whole, and this module is loaded only on a board with a dock (docs/memory.md).
    """
    from tracker.app import stored_fences
    from tracker.fence import FenceStore

    storage = tracker.storage
    name = tracker.fences_file
    try:
        if storage is None:
            return tracker.use_fences(FenceStore.from_text(text))
        f = storage.create(name)
        try:
            for i in range(0, len(text), 512):  # no second whole copy as bytes
                piece = text[i : i + 512]
                f.write(piece.encode() if isinstance(piece, str) else piece)
        finally:
            f.close()
        new_set = stored_fences(storage, name, True)
        storage.replace(name)
        new_set.reopen(lambda: storage.open(name))
        return tracker.use_fences(new_set)
    except (ValueError, MemoryError, OSError) as exc:
        if storage is not None:
            storage.discard(name)
        tracker.fence_refused(exc)
        raise


def _settings_refused(values, device_id):
    """Why ``tracker.config.build`` refuses ``values`` (its message never shows a secret), or
    None. Imported here, at PEND, not at boot: provisioning is rare, the heap is not."""
    from tracker import config

    try:
        config.build(values, device_id)
    except config.ConfigError as exc:
        return str(exc).replace("\n", " ")[:160]
    return None


def _number(text):
    """A non-negative decimal of at most ten digits (bytes); raises ``ValueError``."""
    text = text.strip()
    if not 0 < len(text) <= _MAX_NUMBER or not text.isdigit():
        raise ValueError("not a number")
    return int(text)


def _reason(exc):
    """An exception as a short single-line reason for an ``ERR`` answer."""
    text = "%s %s" % (type(exc).__name__, exc)
    text = text.replace("\n", " ").replace("\r", " ")
    return text[:80]


def _firmware_version():
    from tracker import app  # the version lives with the app; imported late to avoid a cycle

    return app.FIRMWARE_VERSION


def start(ports, tracker, due):
    """The dock link on ``ports.dock``: answer the gateway, and notice leaving the dock.
    ``due()``: a status message is due (tracking or the dock's settings changed). Called by
    ``tracker.app.run`` on a board with a dock port, so that only such a board loads this
    module's bytecode."""
    link = DockLink(tracker, ports.storage, tracker.fences_file, tracker.battery)
    link.load()
    ports.log("dock: %s" % ("assigned to " + link.collar if link.collar else "not assigned"))

    async def serve():
        while True:
            line = await ports.dock.readline()
            if not line:
                await asyncio.sleep(1)  # the port is gone for now (unplugged USB): try again
                continue
            was = tracker.tracking()
            reply = link.handle_line(line, ticks_ms())
            if reply is not None:
                ports.dock.write(reply)
            if link.changed or was != tracker.tracking():
                link.changed = False
                due()

    async def watch():
        while True:
            await asyncio.sleep(1)
            was = tracker.tracking()
            link.poll(ticks_ms())
            if was != tracker.tracking():
                ports.log("dock: left the dock, %s" % (
                    "tracking" if tracker.tracking() else "not assigned: not tracking"))
                due()

    asyncio.create_task(serve())
    asyncio.create_task(watch())
    return link
