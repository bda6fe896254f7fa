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
import queue
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gateway.fleet.identity import RADIO_PREFIX, is_name
from gateway.intake.observation import LOCATION, Observation

SOURCE = "vehicle"
DEFAULT_PORT = 5055  # Traccar's port for this protocol
KNOT_MPS = 1852 / 3600
MAX_BODY = 8192
#: Connections read at once; a station has a handful of vehicles.
MAX_CLIENTS = 32
#: Of those, from one address: one client (a stuck unit, a hostile one) cannot take them all.
#: An AVL aggregator forwarding a whole fleet from one address still gets a quarter.
MAX_PER_ADDRESS = 8
#: Longest epoch timestamp read (ms since 1970 has 13 digits; more is no time).
MAX_TS_DIGITS = 16
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
    try:
        params = urllib.parse.parse_qs(query, keep_blank_values=True, max_num_fields=64)
    except ValueError as exc:  # more than 64 fields
        raise AvlError("malformed", f"query: {exc}") from None
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
    if re.fullmatch(r"-?[0-9]+", text):
        if len(text.lstrip("-")) > MAX_TS_DIGITS:
            raise AvlError("bad_time", f"timestamp {text[:40]!r}...: {len(text)} digits")
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
        alt = _number(params, "altitude")
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
                       course_deg=course, alt_m=alt,
                       batt=None if batt is None else int(max(0, min(batt, 100))),
                       fix_quality=None if valid else 0, extra=extra)


class _Job:
    """One decoded report (or the reason it could not be decoded) waiting for the writer."""

    __slots__ = ("at", "origin", "raw", "params", "error", "answer", "done")

    def __init__(self, at: float, origin: str, raw: bytes, params: dict | None,
                 error: AvlError | None):
        self.at, self.origin, self.raw, self.params, self.error = at, origin, raw, params, error
        self.answer: tuple[int, str, str] = (503, "error", "not stored; send again")
        self.done = threading.Event()


class AvlServer:
    """The OsmAnd-protocol endpoint: each connection read in its own thread, every report
    stored through the intake by one writer thread before it is answered, so ``200`` means the
    report is in SQLite and SQLite has one writer.

    Reading is bounded so no client can hold the endpoint: at most ``max_clients`` connections
    are read at once, and at most ``max_per_address`` of them from one address (beyond either a
    client gets ``503`` at once: ``busy``, ``busy_address``), a stalled read is cut after
    ``timeout_s``, and a whole request after ``deadline_s`` whatever it trickles (a client
    sending one byte every few seconds would otherwise keep a reader forever). Every request
    ends in exactly one :attr:`counts` key: an intake result (``stored``, ``duplicate``) or a
    quarantine reason for a report; ``too_large``, ``incomplete``, ``timeout``, ``busy``,
    ``busy_address`` or ``http_<status>`` for a request that never made a report.
    """

    def __init__(self, db_path: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 timeout_s: float = 10.0, clock=time.time, deadline_s: float = 30.0,
                 max_clients: int = MAX_CLIENTS, max_per_address: int = MAX_PER_ADDRESS):
        self.db_path = db_path
        self.clock = clock
        self.counts: Counter = Counter()
        self._count_lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._clients = threading.BoundedSemaphore(max_clients)
        self._per_address: Counter = Counter()  # connections being read, by client address
        self._max_per_address = max_per_address
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = timeout_s
            server_version = "hotspots-avl"

            def setup(self) -> None:
                super().setup()
                self._expired = False
                # The whole request, not each read: cut the socket at the deadline.
                self._deadline = threading.Timer(deadline_s, self._cut)
                self._deadline.daemon = True
                self._deadline.start()

            def _cut(self) -> None:
                self._expired = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def finish(self) -> None:
                self._deadline.cancel()
                try:
                    super().finish()
                except OSError:
                    pass  # the client went away, or the deadline cut the socket

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except OSError:  # reset, or cut at the deadline while reading the head
                    server._count("timeout")
                    self.close_connection = True

            def parse_request(self) -> bool:
                # A request line cut short (deadline, client gone) is no request: without
                # this http.server would read "GET /?id=V" as an HTTP/0.9 request.
                if self._expired or not self.raw_requestline.endswith(b"\n"):
                    server._count("timeout" if self._expired else "incomplete")
                    self.close_connection = True
                    return False
                return super().parse_request()

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server._answer(self, b"")

            def do_POST(self) -> None:  # noqa: N802
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY:
                    server._count("too_large")
                    self._reply(413, "body over 8 KB or without a valid length")
                    return
                try:
                    body = self.rfile.read(length)
                except OSError:
                    body = b""
                if len(body) < length:
                    # Cut short (timeout, deadline, client gone): a truncated number is no
                    # number, so nothing of it is read; the client sends it again.
                    server._count("incomplete")
                    self.close_connection = True
                    self._reply(400, f"incomplete: {len(body)} of {length} bytes")
                    return
                server._answer(self, body)

            def send_error(self, code: int, message: str | None = None,
                           explain: str | None = None) -> None:
                # A request http.server itself refused (bad request line, URI or header too
                # long, unsupported method): no report, but counted.
                server._count(f"http_{code}")
                try:
                    super().send_error(code, message, explain)
                except OSError:
                    pass

            def log_error(self, format: str, *args) -> None:  # noqa: A002 - the API's name
                if format.startswith("Request timed out"):
                    server._count("timeout")

            def _reply(self, status: int, text: str) -> None:
                body = text.encode("utf-8", "replace")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client went away: it was counted, and it will send again

            def log_message(self, *_args) -> None:
                pass  # counted instead; the access log would hold positions

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64

            def process_request(self, request, client_address) -> None:
                refused = server._take_slot(client_address[0])
                if refused:
                    server._count(refused)
                    try:
                        request.sendall(b"HTTP/1.0 503 Service Unavailable\r\n"
                                        b"Content-Length: 5\r\n\r\nbusy\n")
                    except OSError:
                        pass
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def process_request_thread(self, request, client_address) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    server._free_slot(client_address[0])

        self.httpd = Server((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._failed: Exception | None = None

    def _take_slot(self, address: str) -> str | None:
        """Reserve a reader for a connection from ``address``; the counter key if refused."""
        with self._count_lock:
            if not self._clients.acquire(blocking=False):
                return "busy"
            if self._per_address[address] >= self._max_per_address:
                self._clients.release()
                return "busy_address"
            self._per_address[address] += 1
        return None

    def _free_slot(self, address: str) -> None:
        with self._count_lock:
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]  # the table holds only addresses being read
            self._clients.release()

    def _count(self, key: str) -> None:
        with self._count_lock:
            self.counts[key] += 1

    def _answer(self, handler, body: bytes) -> None:
        """Decode in the client's thread, store in the writer's, answer with its outcome."""
        origin = f"http:{handler.client_address[0]}"
        query = urllib.parse.urlsplit(handler.path).query
        raw = (handler.path.encode("utf-8", "replace") + b"\n" + body)[:2048]
        params = error = None
        try:
            params = parse_params(query, body)
        except AvlError as exc:
            error = exc
        job = _Job(self.clock(), origin, raw, params, error)
        self._jobs.put(job)
        if not job.done.wait(60):  # the writer is stuck on the database: not stored
            job.answer = (503, "error", "not stored; send again")
        status, key, text = job.answer
        self._count(key)
        handler._reply(status, text)

    def _write(self, intake, job: _Job) -> None:
        """Store or quarantine one report (the writer thread)."""
        try:
            try:
                if job.error is not None:
                    raise job.error
                obs = decode(job.params, job.origin)
            except AvlError as exc:
                intake.reject(job.origin, exc.reason, exc.detail, job.raw, job.at,
                              exc.device_id)
                outcome, reason, detail = "quarantined", exc.reason, exc.detail
            else:
                outcome = intake.submit(obs, job.at, raw=job.raw)
                reason, detail = intake.last_reason, intake.last_detail
            intake.commit()
        except Exception:  # the database itself failed (a report cannot make the intake raise)
            intake.rollback()
            job.answer = (503, "error", "not stored; send again")
            return
        if outcome == "quarantined":
            job.answer = (400, reason or "quarantined", f"{reason}: {detail}")
        else:
            job.answer = (200, outcome, outcome)

    def _writer(self, ready: threading.Event) -> None:
        from gateway.intake.intake import Intake
        from gateway.schema import open_db

        try:
            db = open_db(self.db_path)
        except Exception as exc:  # noqa: BLE001 - handed to serve(), which raises it
            self._failed = exc
            ready.set()
            return
        try:
            db.execute("PRAGMA synchronous = FULL")  # a 200 promises the report is on disk
            intake = Intake(db)
            ready.set()
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                try:
                    self._write(intake, job)
                finally:
                    job.done.set()
        finally:
            ready.set()
            db.close()

    def serve(self, stop: threading.Event | None = None) -> None:
        """Answer reports until :meth:`shutdown` (or ``stop``)."""
        ready = threading.Event()
        writer = threading.Thread(target=self._writer, args=(ready,), name="avl-writer",
                                  daemon=True)
        writer.start()
        ready.wait()
        if self._failed is not None:  # no database: answer nothing rather than 503 forever
            self.httpd.server_close()
            raise self._failed
        if stop is not None:
            threading.Thread(target=lambda: (stop.wait(), self.httpd.shutdown()),
                             daemon=True).start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.httpd.server_close()
            self._jobs.put(None)
            writer.join(10)

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
