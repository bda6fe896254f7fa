"""The station web app: a Starlette application whose route table says, for every route, which
roles may use it.

Every route is a :class:`Page` (HTML; without a session the browser is sent to the login page)
or an :class:`Api` (JSON, downloads, events; without a session: 401) with its roles, or one of
the few public routes in :data:`PUBLIC_PATHS` (the login form and static files, which hold no
personal data). The guard in :func:`_guarded` runs before every handler: session from the
cookie, role, and for any method other than GET the session's CSRF token (form field
``csrf`` or header ``X-CSRF-Token``). Nothing is reachable without passing it; a test walks the
route table so that a new route without a rule fails.

The database is the gateway's SQLite file (WAL); each worker thread has its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import sqlite_utils
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from fences.validate import FenceError
from gateway.reports import maps
from gateway.reports.dwell import ReportError, zone
from gateway.schema import open_db
from gateway.web import audit, auth, charts, day, fence_sets, live

HERE = Path(__file__).resolve().parent
SUPERVISOR, STAFF, ANALYST = auth.ROLES
ALL_ROLES = frozenset(auth.ROLES)
#: Where each role lands after logging in.
HOME = {SUPERVISOR: "/live", STAFF: "/fleet", ANALYST: "/day"}
LOGIN_COOKIE = "hotspots_login"
#: How often the event stream looks for new fixes, seconds.
POLL_S = 0.2
#: How often the event stream sends the fleet table again.
FLEET_EVERY_S = 10.0
HEARTBEAT_S = 15.0
#: After this many failed logins for one user name within LOCKOUT_S, logins are refused.
LOCKOUT_FAILURES = 5
LOCKOUT_S = 15 * 60


@dataclass
class WebConfig:
    """How the app is run (see ``hotspots web --help``)."""

    db_path: str
    broker: str | None = None
    accounts_path: str | None = None
    station: str = "main"
    tz_name: str = "UTC"
    secure_cookies: bool = False
    fences_path: str | None = None
    #: Leaflet's folder (Debian's libjs-leaflet by default).
    leaflet_dir: str | None = None


# -- the route table --------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    """An HTML page for ``roles``; without a session: redirect to the login page."""

    path: str
    handler: Callable
    roles: frozenset[str]
    methods: tuple[str, ...] = ("GET",)
    api: bool = False


@dataclass(frozen=True)
class Api(Page):
    """JSON, a download or an event stream for ``roles``; without a session: 401."""

    api: bool = True


#: Paths served to anyone: the login form and static assets (no personal data).
PUBLIC_PATHS = ("/login", "/static", "/static/leaflet")


class WebApp:
    """State shared by the handlers: config, per-thread database connections, templates."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.tz = zone(config.tz_name)
        self._local = threading.local()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["tz_name"] = config.tz_name
        self.broadcaster = Broadcaster(self)
        self.days = day.DayCache()
        db = open_db(config.db_path)  # migrate once, before any request
        if config.fences_path:
            fence_sets.seed(db, config.fences_path)
        db.conn.close()

    def db(self) -> sqlite_utils.Database:
        """This thread's connection to the gateway database."""
        db = getattr(self._local, "db", None)
        if db is None:
            import sqlite3

            conn = sqlite3.connect(self.config.db_path, timeout=10)
            conn.execute("PRAGMA busy_timeout = 10000")
            db = self._local.db = sqlite_utils.Database(conn)
        return db

    async def run(self, func: Callable, *args):
        """``func(db, *args)`` in a worker thread, with that thread's connection."""
        return await run_in_threadpool(lambda: func(self.db(), *args))

    def page(self, request: Request, template: str, status_code: int = 200,
             **context) -> HTMLResponse:
        session: auth.Session = request.state.session
        return self.templates.TemplateResponse(
            request, template, {"user": session.user, "csrf": session.csrf,
                                "nav": nav_for(session.user.role), **context},
            status_code=status_code)

    def audit(self, request: Request, action: str, subject: str = "", detail: str = "") -> None:
        session = getattr(request.state, "session", None)
        user = session.user if session else None
        audit.record(self.db(), user.username if user else None, user.role if user else None,
                     action, subject, detail, request.client.host if request.client else "")


def nav_for(role: str) -> list[tuple[str, str]]:
    """The menu entries a role can open."""
    entries = [("/live", "Live"), ("/fleet", "Fleet"), ("/day", "Any day"),
               ("/fences", "Hot spots"), ("/audit", "Audit log")]
    allowed = {r.path for r in ROUTES if role in r.roles}
    return [(path, label) for path, label in entries if path in allowed]


# -- handlers ---------------------------------------------------------------------------------
def _app(request: Request) -> WebApp:
    return request.app.state.web


def home(request: Request) -> Response:
    return RedirectResponse(HOME[request.state.session.user.role], status_code=303)


def login_form(request: Request, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = _app(request).templates.TemplateResponse(
        request, "login.html", {"login_token": token, "error": error,
                                "next": request.query_params.get("next", "")},
        status_code=status)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=_app(request).config.secure_cookies, path="/login")
    return response


async def login_submit(request: Request) -> Response:
    web = _app(request)
    form = await request.form()
    # Login CSRF: the form's token must match the cookie set with the form (double submit).
    token = form.get("login_token", "")
    if not token or token != request.cookies.get(LOGIN_COOKIE):
        return login_form(request, "The form expired: please try again.", 403)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    address = request.client.host if request.client else ""
    if await web.run(audit.recent_failures, username[:64], LOCKOUT_S) >= LOCKOUT_FAILURES:
        await web.run(audit.record, username[:64], None, "login_failed", "", "locked out",
                      address)
        return login_form(request, f"Too many failed logins for this user: try again in "
                                   f"{LOCKOUT_S // 60} minutes.", 429)
    user = await web.run(auth.authenticate, username, password)
    if user is None:
        await web.run(audit.record, username[:64], None, "login_failed", "", "", address)
        return login_form(request, "Unknown user or wrong password.", 401)
    cookie = await web.run(auth.start_session, user)
    await web.run(audit.record, user.username, user.role, "login", "", "", address)
    target = str(form.get("next", ""))
    if not target.startswith("/") or target.startswith("//"):
        target = HOME[user.role]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, cookie, httponly=True, samesite="strict",
                        secure=web.config.secure_cookies, max_age=auth.SESSION_MAX_S)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def logout(request: Request) -> Response:
    web = _app(request)
    web.audit(request, "logout")
    auth.end_session(web.db(), request.cookies.get(auth.SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


def live_page(request: Request) -> Response:
    return _app(request).page(request, "live.html", title="Live")


def live_api(request: Request) -> Response:
    web = _app(request)
    snap = live.snapshot(web.db())
    web.audit(request, "view_live", audit.officers_subject(
        [f["officer"] for f in snap["fixes"] if f["officer"]]), f"{len(snap['fixes'])} devices")
    return JSONResponse(snap)


async def live_events(request: Request) -> Response:
    web = _app(request)
    token = request.cookies.get(auth.SESSION_COOKIE)
    queue, snap = await web.broadcaster.subscribe()
    # Whose positions the page is shown now; new officers appear as they report.
    await run_in_threadpool(
        web.audit, request, "view_live",
        audit.officers_subject([f["officer"] for f in snap["fixes"] if f["officer"]]),
        f"live event stream, {len(snap['fixes'])} devices")

    async def stream():
        try:
            yield "retry: 2000\n\n"
            checked = time.monotonic()
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    item = None
                # A stream outlives the request that opened it: a logged-out, expired or
                # disabled session stops receiving positions within HEARTBEAT_S.
                if time.monotonic() - checked >= HEARTBEAT_S:
                    checked = time.monotonic()
                    if await web.run(auth.find_session, token) is None:
                        yield "event: ended\ndata: {\"error\": \"session ended\"}\n\n"
                        return
                if item is None:
                    yield ": heartbeat\n\n"
                else:
                    yield f"event: {item[0]}\ndata: {item[1]}\n\n"
        finally:
            web.broadcaster.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def fleet_page(request: Request) -> Response:
    web = _app(request)
    now = time.time()
    _, fence_row = live.hotspots_now(web.db(), now)
    data = live.fleet(web.db(), now, fence_row["version"] if fence_row else None)
    return web.page(request, "fleet.html", title="Fleet", fleet=data, fence_set=fence_row)


def fleet_api(request: Request) -> Response:
    web = _app(request)
    now = time.time()
    _, fence_row = live.hotspots_now(web.db(), now)
    return JSONResponse(live.fleet(web.db(), now, fence_row["version"] if fence_row else None))


def _day_param(request: Request) -> str:
    text = request.query_params.get("date")
    if text:
        return text
    return dt.datetime.now(_app(request).tz).date().isoformat()


def day_page(request: Request) -> Response:
    web = _app(request)
    date = _day_param(request)
    try:
        computed = web.days.get(web.db(), date, web.tz, web.config.tz_name)
    except (ReportError, FenceError) as exc:
        return web.page(request, "day.html", title="Any day", date=date, error=str(exc),
                        status_code=400)
    data = day.as_json(computed)
    web.audit(request, "view_day", audit.officers_subject(computed.officers), f"day:{date}")
    hourly = [round(sum(s.hourly_patrol_s[h] for s in computed.stats) / 60, 1)
              for h in range(24)]
    chart_hours = charts.bars([f"{h:02d}" for h in range(24)], hourly,
                              f"Patrol-minutes by hour, all hot spots ({web.config.tz_name})",
                              "minutes")
    chart_spots = charts.bars([s.hotspot for s in computed.stats],
                              [s.patrol_minutes for s in computed.stats],
                              "Patrol-minutes per hot spot", "minutes")
    return web.page(request, "day.html", title=f"Day {date}", date=date, data=data,
                    exports=list(day.EXPORTS), chart_hours=chart_hours,
                    chart_spots=chart_spots, error="")


def day_api(request: Request) -> Response:
    web = _app(request)
    date = _day_param(request)
    try:
        computed = web.days.get(web.db(), date, web.tz, web.config.tz_name)
    except (ReportError, FenceError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if computed.map_data is None:
        from gateway.reports import exports

        data = day.as_json(computed)
        track_list = exports.tracks(web.db(), computed.window, computed.tz)
        data["tracks"] = maps.track_lines(track_list, simplify_m=3.0)
        data["ramp"] = [[low, colour] for low, colour in zip(maps.THRESHOLDS, maps.RAMP,
                                                              strict=True)]
        data["ramp_labels"] = maps.legend_entries()
        data["hotspot_shapes"] = {"type": "FeatureCollection", "features": [
            computed.hotspots.geojson_feature(i) for i in range(len(computed.hotspots))]}
        data["officers_shown"] = sorted(
            computed.officers | {t.officer for t in track_list if t.officer})
        computed.map_data = data
    data = computed.map_data
    officers = set(data["officers_shown"])
    web.audit(request, "view_day", audit.officers_subject(officers), f"day:{date} map")
    return JSONResponse(data)


def export_download(request: Request) -> Response:
    web = _app(request)
    name = request.path_params["name"]
    if name not in day.EXPORTS:
        return JSONResponse({"error": f"no export {name!r}"}, status_code=404)
    date = _day_param(request)
    try:
        computed = web.days.get(web.db(), date, web.tz, web.config.tz_name)
    except (ReportError, FenceError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    body, count = day.export(web.db(), computed, name)
    web.audit(request, "export", audit.officers_subject(computed.officers),
              f"day:{date} {name} {count} records")
    stem, _, ext = name.rpartition(".")
    return Response(body, media_type=day.EXPORTS[name], headers={
        "Content-Disposition": f'attachment; filename="{stem}-{date}.{ext}"',
        "Cache-Control": "no-store"})


def fences_page(request: Request) -> Response:
    return _app(request).page(request, "fences.html", title="Hot spots",
                              can_publish=request.state.session.user.role == SUPERVISOR)


def fences_api(request: Request) -> Response:
    web = _app(request)
    db = web.db()
    row = fence_sets.latest(db)
    now = time.time()
    current = fence_sets.in_force(db, now)
    return JSONResponse({
        "set": None if row is None else {
            "id": row.id, "version": row.version, "geojson": row.geojson,
            "device_bytes": row.device_bytes, "published_at": row.published_at},
        "check": None if row is None else fence_sets.check(row.geojson).as_dict(),
        "in_force": None if current is None else {"id": current.id,
                                                   "version": current.version},
        "history": fence_sets.history(db), "edits": fence_sets.edits(db)})


async def _json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise FenceError(f"the request is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise FenceError("expected a JSON object")
    return body


async def fences_check(request: Request) -> Response:
    try:
        doc = await _json_body(request)
        result = await run_in_threadpool(fence_sets.check, doc)
    except FenceError as exc:
        return JSONResponse({"ok": False, "problems": [], "compile_error": str(exc)},
                            status_code=400)
    return JSONResponse(result.as_dict())


async def fences_save(request: Request) -> Response:
    web = _app(request)
    user = request.state.session.user
    try:
        doc = await _json_body(request)
        row, changes = await web.run(fence_sets.save, doc, user.username)
    except FenceError as exc:
        checked = fence_sets.check(doc) if "doc" in locals() and isinstance(doc, dict) else None
        return JSONResponse({"error": str(exc),
                             "check": checked.as_dict() if checked else None}, status_code=400)
    if changes:
        await run_in_threadpool(
            web.audit, request, "fences_save",
            "hotspots:" + ",".join(f"{hid}({change})" for hid, change, _, _ in changes),
            f"set {row.id} version {row.version}")
    return JSONResponse({"id": row.id, "version": row.version, "device_bytes": row.device_bytes,
                         "changes": [[hid, change] for hid, change, _, _ in changes]})


async def fences_publish(request: Request) -> Response:
    web = _app(request)
    try:
        body = await _json_body(request)
        set_id = int(body.get("id"))
    except (FenceError, TypeError, ValueError):
        return JSONResponse({"error": "give the saved set's id: {\"id\": N}"}, status_code=400)
    row = await web.run(fence_sets.get, set_id)
    if row is None:
        return JSONResponse({"error": f"no saved set {set_id}"}, status_code=404)
    if not web.config.broker:
        return JSONResponse({"error": "no broker configured: start the web app with --broker"},
                            status_code=503)
    try:
        sent = await run_in_threadpool(_publish, web.config, row.geojson)
    except (FenceError, ConnectionError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=502)
    await web.run(fence_sets.mark_published, row.id, request.state.session.user.username)
    await run_in_threadpool(web.audit, request, "fences_publish", f"fence_set:{row.id}",
                            f"version {sent.version} on {sent.topic}")
    return JSONResponse({"id": row.id, "version": sent.version, "topic": sent.topic,
                         "bytes": sent.payload_bytes})


def _publish(config: WebConfig, doc: dict):
    from fences.compile import compile_geojson
    from fences.publish import publish
    from gateway.broker import FENCES_USER
    from gateway.intake.service import parse_address

    host, port = parse_address(config.broker)
    user = password = None
    if config.accounts_path:
        rows = {r["username"]: r for r in json.loads(Path(config.accounts_path).read_text())}
        if FENCES_USER not in rows:
            raise ConnectionError(f"no {FENCES_USER!r} account in {config.accounts_path}")
        user, password = FENCES_USER, rows[FENCES_USER]["password"]
    return publish(compile_geojson(doc), host, port, config.station, username=user,
                   password=password)


def audit_page(request: Request) -> Response:
    web = _app(request)
    rows = audit.recent(web.db())
    web.audit(request, "view_audit")
    return web.page(request, "audit.html", title="Audit log", rows=rows,
                    edits=fence_sets.edits(web.db()))


ROUTES: list[Page] = [
    Page("/", home, ALL_ROLES),
    Page("/logout", logout, ALL_ROLES, ("POST",)),
    Page("/live", live_page, frozenset({SUPERVISOR})),
    Api("/api/live", live_api, frozenset({SUPERVISOR})),
    Api("/api/live/events", live_events, frozenset({SUPERVISOR})),
    Page("/fleet", fleet_page, frozenset({SUPERVISOR, STAFF})),
    Api("/api/fleet", fleet_api, frozenset({SUPERVISOR, STAFF})),
    Page("/day", day_page, frozenset({SUPERVISOR, ANALYST})),
    Api("/api/day", day_api, frozenset({SUPERVISOR, ANALYST})),
    Api("/export/{name}", export_download, frozenset({SUPERVISOR, ANALYST})),
    Page("/fences", fences_page, frozenset({SUPERVISOR, ANALYST})),
    Api("/api/fences", fences_api, frozenset({SUPERVISOR, ANALYST})),
    Api("/api/fences/check", fences_check, frozenset({SUPERVISOR, ANALYST}), ("POST",)),
    Api("/api/fences/save", fences_save, frozenset({SUPERVISOR, ANALYST}), ("POST",)),
    Api("/api/fences/publish", fences_publish, frozenset({SUPERVISOR}), ("POST",)),
    Page("/audit", audit_page, frozenset({SUPERVISOR})),
]


# -- the guard --------------------------------------------------------------------------------
SECURITY_HEADERS = {
    # Everything is served from here: no CDN, no inline script. Leaflet sets inline styles.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'"
                               " 'unsafe-inline'; img-src 'self' data:; connect-src 'self';"
                               " frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _denied(request: Request, rule: Page, status: int, why: str,
            session: auth.Session | None = None) -> Response:
    if status == 401 and not rule.api and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    if not rule.api and request.method == "GET" and session is not None:
        home_page = HOME[session.user.role]
        return HTMLResponse(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not allowed"
            "</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main>"
            f"<h1>Not allowed</h1><p class=\"error\" id=\"denied\">{html.escape(why)}.</p>"
            f"<p><a href=\"{home_page}\">Back to your start page</a></p></main></body></html>",
            status_code=status)
    return JSONResponse({"error": why}, status_code=status)


def _guarded(rule: Page) -> Callable[[Request], Awaitable[Response]]:
    is_async = asyncio.iscoroutinefunction(rule.handler)

    async def endpoint(request: Request) -> Response:
        web = _app(request)
        token = request.cookies.get(auth.SESSION_COOKIE)
        session = await web.run(auth.find_session, token)
        if session is None:
            return _denied(request, rule, 401, "log in first")
        if session.user.role not in rule.roles:
            return _denied(request, rule, 403,
                           f"the {session.user.role} role may not use {request.url.path}",
                           session)
        if request.method != "GET":
            sent = request.headers.get("x-csrf-token")
            if sent is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")):
                sent = (await request.form()).get("csrf")
            if not auth.csrf_matches(session, sent):
                return _denied(request, rule, 403, "missing or wrong CSRF token")
        request.state.session = session
        if is_async:
            response = await rule.handler(request)
        else:
            response = await run_in_threadpool(rule.handler, request)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    endpoint.rule = rule  # type: ignore[attr-defined]  # for the access-control test
    return endpoint


# -- live events ------------------------------------------------------------------------------
@dataclass
class Broadcaster:
    """One poller for every open live page: new fixes are read once and sent to all.

    It looks for new ``positions`` rows every :data:`POLL_S`, sends them as a ``fixes`` event
    with the hot spots being patrolled, and the fleet table every :data:`FLEET_EVERY_S`.
    """

    web: WebApp
    queues: set = field(default_factory=set)
    task: asyncio.Task | None = None
    last_id: int = 0
    last_transition_id: int = 0
    latest: dict = field(default_factory=dict)

    async def subscribe(self) -> tuple[asyncio.Queue, dict]:
        """A queue of ``(event, data)`` starting with a snapshot, and that snapshot."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=100)
        snap = await self.web.run(live.snapshot)
        queue.put_nowait(("snapshot", json.dumps(snap)))
        self.queues.add(queue)
        if self.task is None or self.task.done():
            self.last_id = snap["last_id"]
            self.last_transition_id = snap["last_transition_id"]
            self.latest = {f["device_id"]: f for f in snap["fixes"]}
            self.task = asyncio.create_task(self._run())
        return queue, snap

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.queues.discard(queue)

    def _send(self, event: str, payload: dict) -> None:
        data = json.dumps(payload)
        for queue in list(self.queues):
            if queue.full():  # a stalled browser: drop it rather than hold memory
                self.queues.discard(queue)
                continue
            queue.put_nowait((event, data))

    def _poll(self) -> tuple[list[dict], dict] | None:
        """New fixes and who is where, or None when nothing was stored since the last look."""
        db = self.web.db()
        crossed = live.max_transition_id(db)
        if live.max_position_id(db) <= self.last_id and crossed <= self.last_transition_id:
            return None
        self.last_transition_id = crossed
        fixes = live.fixes_after(db, self.last_id)
        if fixes:
            self.last_id = fixes[-1]["id"]
        now = time.time()
        for f in fixes:
            old = self.latest.get(f["device_id"])
            if old is None or f["tst"] >= old["tst"]:
                self.latest[f["device_id"]] = f
        spots, _ = live.hotspots_now(db, now)
        return fixes, live.patrolled(list(self.latest.values()), spots, now,
                                     crossings=live.inside_by_transitions(db, now))

    def _fleet(self) -> dict:
        now = time.time()
        _, fence_row = live.hotspots_now(self.web.db(), now)
        return live.fleet(self.web.db(), now, fence_row["version"] if fence_row else None)

    async def _run(self) -> None:
        next_fleet = time.monotonic() + FLEET_EVERY_S
        while self.queues:
            try:
                news = await run_in_threadpool(self._poll)
                if news is not None:
                    self._send("fixes", {"fixes": news[0], "patrolled": news[1],
                                         "sent_at": time.time()})
                if time.monotonic() >= next_fleet:
                    next_fleet = time.monotonic() + FLEET_EVERY_S
                    self._send("fleet", await run_in_threadpool(self._fleet))
            except Exception as exc:  # a locked or busy database: say so, try again
                self._send("problem", {"error": str(exc)})
            await asyncio.sleep(POLL_S)


# -- the application --------------------------------------------------------------------------
def leaflet_dir(config: WebConfig) -> str:
    """Leaflet's folder: the configured one, or Debian's libjs-leaflet."""
    for folder in ([config.leaflet_dir] if config.leaflet_dir else []) + [
            os.environ.get("HOTSPOTS_LEAFLET_DIR", ""), *maps.LEAFLET_DIRS]:
        if folder and (Path(folder) / "leaflet.js").is_file():
            return folder
    raise maps.MapError("Leaflet is not installed: run `sudo apt-get install -y libjs-leaflet`")


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: WebConfig) -> Starlette:
    """The application for ``config`` (migrates the database, seeds the hot spot set)."""
    web = WebApp(config)
    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Mount("/static/leaflet", StaticFiles(directory=leaflet_dir(config)), name="leaflet"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        *(Route(r.path, _guarded(r), methods=list(r.methods)) for r in ROUTES),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        task = web.broadcaster.task
        web.broadcaster.queues.clear()
        if task is not None:
            task.cancel()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.web = web
    app.add_middleware(SecurityHeaders)
    return app
