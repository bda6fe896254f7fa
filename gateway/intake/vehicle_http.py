"""Vehicle AVL over HTTP: the OsmAnd protocol, as Traccar Client and OsmAnd speak it.

Why this path: it is the simplest AVL protocol with the widest support that runs offline here.
Traccar Client (Android, iOS), OsmAnd's online tracking, GPSLogger's custom URL and many
in-vehicle units and gateways send it, and Traccar itself accepts it on port 5055, so a force's
existing AVL feed can be pointed at the station as it is. It needs only HTTP (no vendor binary
protocol, no serial line), and every report is acknowledged by the HTTP status, which gives
at-least-once delivery: a client keeps and resends a report until it gets ``200``.

A report is one request, ``GET /?id=VEH-1&timestamp=...&lat=...&lon=...`` or a ``POST`` with
the same parameters form-encoded in the body (Traccar's decoder reads the query first, then the
body). Parameters, as Traccar reads them:

=====================  ======================================================================
``id``, ``deviceid``   the vehicle's device id (registered as a vehicle: ``hotspots vehicle``)
``timestamp``          fix time: epoch seconds, epoch milliseconds, ISO 8601, or
                       ``yyyy-MM-dd HH:mm:ss`` (read as UTC here). Required: the gateway never
                       stamps a fix with its receive time (Traccar does)
``lat``, ``lon``       WGS84 degrees, or ``location=lat,lon``
``speed``              knots (the protocol's unit), stored in m/s
``bearing``/``heading``, ``altitude`` (m), ``accuracy`` (m), ``hdop`` (x 5 m when no
                       accuracy), ``batt`` (%), ``valid`` (``false``/``0``: not a fix, stored
                       flagged ``invalid``), ``driverUniqueId`` and other parameters (kept in
                       ``extra``)
=====================  ======================================================================

Answers: ``200`` stored or already stored (a resend), ``400`` with the reason for anything
quarantined (unknown vehicle, missing or unreadable field), ``413`` for a body over 8 KB. Every
report ends stored, a counted duplicate, or in ``quarantine`` (topic ``http:<client>``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer

from gateway.fleet.identity import RADIO_PREFIX, is_name
from gateway.intake.observation import LOCATION, Observation

SOURCE = "vehicle"
DEFAULT_PORT = 5055  # Traccar's port for this protocol
KNOT_MPS = 1852 / 3600
MAX_BODY = 8192
UERE_M = 5.0
_KNOWN = {"id", "deviceid", "timestamp", "lat", "lon", "location", "speed", "bearing",
          "heading", "altitude", "accuracy", "hdop", "batt", "valid"}


class AvlError(ValueError):
    """A report that cannot be decoded; ``reason`` is a counter key."""

    def __init__(self, reason: str, detail: str, device_id: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.device_id = device_id


def parse_params(query: str, body: bytes = b"") -> dict[str, str]:
    """The report's parameters: the query string's, else the form body's (first value each).

    :raises AvlError: ``malformed`` for a body that is not form-encoded ASCII
    """
    params = urllib.parse.parse_qs(query, keep_blank_values=True, max_num_fields=64)
    if not params and body:
        try:
            text = body.decode("ascii")
            params = urllib.parse.parse_qs(text, keep_blank_values=True, max_num_fields=64)
        except (UnicodeDecodeError, ValueError) as exc:
            raise AvlError("malformed", f"body: {exc}") from None
    return {k: v[0] for k, v in params.items() if v}


def _number(params: dict[str, str], name: str) -> float | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise AvlError("bad_field", f"{name}={text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise AvlError("bad_field", f"{name}={text[:40]!r} is not finite")
    return value


def fix_time(text: str) -> int:
    """Epoch seconds from a ``timestamp`` as Traccar reads it (see the module docstring)."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        value = int(text)
        # Traccar: below 2**31 it is seconds, else milliseconds
        return value if value < 2**31 else value // 1000
    try:
        if "T" in text:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            moment = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise AvlError("bad_time", f"timestamp {text[:40]!r}: epoch seconds or ms, ISO 8601"
                       " or yyyy-MM-dd HH:mm:ss") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return math.floor(moment.timestamp())


def decode(params: dict[str, str], origin: str) -> Observation:
    """One report's parameters as an :class:`Observation` (source ``vehicle``).

    :raises AvlError: ``no_device``, ``bad_device_id``, ``no_time``, ``bad_time``,
        ``no_position``, ``bad_field``
    """
    device_id = params.get("id") or params.get("deviceid")
    if not device_id:
        raise AvlError("no_device", "no id (or deviceid) parameter")
    if not is_name(device_id) or device_id.startswith(RADIO_PREFIX):
        raise AvlError("bad_device_id", f"{device_id[:64]!r}: 1-64 letters, digits, _ . -")
    try:
        if not params.get("timestamp"):
            raise AvlError("no_time", "no timestamp: a fix without its own time is not stored")
        tst = fix_time(params["timestamp"])
        if "location" in params and "lat" not in params:
            parts = params["location"].split(",")
            if len(parts) != 2:
                raise AvlError("bad_field", f"location={params['location'][:40]!r}:"
                               " expected lat,lon")
            params = {**params, "lat": parts[0], "lon": parts[1]}
        lat, lon = _number(params, "lat"), _number(params, "lon")
        if lat is None or lon is None:
            raise AvlError("no_position", "lat and lon (or location) are required")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise AvlError("bad_field", f"lat {lat}, lon {lon} is not on Earth")
        speed = _number(params, "speed")
        acc = _number(params, "accuracy")
        hdop = _number(params, "hdop")
        if acc is None and hdop is not None:
            acc = round(hdop * UERE_M, 1)
        course = _number(params, "bearing")
        if course is None:
            course = _number(params, "heading")
        batt = _number(params, "batt")
        extra: dict = {}
        valid = params.get("valid", "true").lower() in ("true", "1")
        for key, value in list(params.items())[:32]:
            if key not in _KNOWN:
                extra[key[:40]] = value[:100]
    except AvlError as exc:
        exc.device_id = device_id
        raise
    return Observation(kind=LOCATION, source=SOURCE, device_id=device_id, origin=origin,
                       tst=tst, lat=lat, lon=lon, acc_m=acc,
                       speed_mps=None if speed is None else round(speed * KNOT_MPS, 2),
                       course_deg=course, alt_m=_number(params, "altitude"),
                       batt=None if batt is None else int(max(0, min(batt, 100))),
                       fix_quality=None if valid else 0, extra=extra)


class AvlServer:
    """The OsmAnd-protocol endpoint: an HTTP server in one thread, storing each report through
    the intake before it answers, so ``200`` means the report is in SQLite.

    One request at a time: a station has a handful of vehicles reporting every few seconds,
    and one writer thread keeps SQLite simple. A client that stalls mid-request is cut off
    after ``timeout_s``.
    """

    def __init__(self, db_path: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 timeout_s: float = 10.0, clock=time.time):
        self.db_path = db_path
        self.clock = clock
        self.counts: Counter = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = timeout_s
            server_version = "hotspots-avl"

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server._answer(self, b"")

            def do_POST(self) -> None:  # noqa: N802
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY:
                    server.counts["too_large"] += 1
                    self._reply(413, "body over 8 KB or without a valid length")
                    return
                server._answer(self, self.rfile.read(length))

            def _reply(self, status: int, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass  # counted instead; the access log would hold positions

        self.httpd = HTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self._intake = None
        self._thread: threading.Thread | None = None

    def _answer(self, handler, body: bytes) -> None:
        at = self.clock()
        origin = f"http:{handler.client_address[0]}"
        query = urllib.parse.urlsplit(handler.path).query
        raw = (handler.path.encode("utf-8", "replace") + b"\n" + body)[:2048]
        intake = self._intake
        try:
            try:
                obs = decode(parse_params(query, body), origin)
            except AvlError as exc:
                intake.reject(origin, exc.reason, exc.detail, raw, at, exc.device_id)
                outcome, reason, detail = "quarantined", exc.reason, exc.detail
            else:
                outcome = intake.submit(obs, at, raw=raw)
                reason, detail = intake.last_reason, obs.device_id
            intake.commit()
        except Exception:  # the database itself failed (a report cannot make the intake raise)
            intake.rollback()
            self.counts["error"] += 1
            handler._reply(503, "not stored; send again")
            return
        if outcome == "quarantined":
            self.counts[reason or "quarantined"] += 1
            handler._reply(400, f"{reason}: {detail}")
            return
        self.counts[outcome] += 1
        handler._reply(200, outcome)

    def serve(self, stop: threading.Event | None = None) -> None:
        """Answer reports until :meth:`shutdown` (or ``stop``); opens the database in this
        thread."""
        from gateway.intake.intake import Intake
        from gateway.schema import open_db

        db = open_db(self.db_path)
        db.execute("PRAGMA synchronous = FULL")  # a 200 promises the report is on disk
        self._intake = Intake(db)
        if stop is not None:
            threading.Thread(target=lambda: (stop.wait(), self.httpd.shutdown()),
                             daemon=True).start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.httpd.server_close()
            db.close()

    def start(self) -> AvlServer:
        """Serve in a background thread (tests, the gateway)."""
        self._thread = threading.Thread(target=self.serve, name="avl-http", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving and wait for the thread."""
        self.httpd.shutdown()
        if self._thread is not None:
            self._thread.join(10)
