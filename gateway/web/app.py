"""The station web app: a Starlette application whose route table says, for every route, which
roles may use it.

Every route is a :class:`Page` (HTML; without a session the browser is sent to the login page)
or an :class:`Api` (JSON, downloads, events; without a session: 401) with its roles, or one of
the few public routes in :data:`PUBLIC_PATHS` (the login form and static files, which hold no
personal data). The guard in :func:`_guarded` runs before every handler: session from the
cookie, role, and for any method other than GET the session's CSRF token (form field
``csrf`` or header ``X-CSRF-Token``). Nothing is reachable without passing it; a test walks the
route table so that a new route without a rule fails.

The handlers live in :mod:`gateway.web.pages`, one module per area; the rule types in
:mod:`gateway.web.routing`. The database is the gateway's SQLite file (WAL); each worker thread
has its own connection.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlite_utils
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from gateway.reports import maps
from gateway.reports.dwell import zone
from gateway.schema import open_db
from gateway.web import audit, auth, day, fence_sets, planning
from gateway.web.pages import ROUTES
from gateway.web.pages.account import login_form, login_submit
from gateway.web.pages.live import Broadcaster
from gateway.web.pages.plan import deckgl_asset
from gateway.web.routing import HOME, Api, Page

__all__ = ["PUBLIC_PATHS", "ROUTES", "Api", "Page", "WebApp", "WebConfig", "create_app"]

HERE = Path(__file__).resolve().parent


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


#: Paths served to anyone: the login form and static assets (no personal data).
PUBLIC_PATHS = ("/login", "/static", "/static/leaflet", "/static/deckgl/deck.gl.min.js",
                "/static/geoman/{name}")


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
        #: Targeting and taskings of the planning pages' last few forms.
        self.planning_cache = planning.Recent()
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
               ("/fences", "Hot spots"), ("/plan", "Harm map"), ("/plan/taskings", "Taskings"),
               ("/plan/hotspot", "Hot spot report"), ("/audit", "Audit log")]
    allowed = {r.path for r in ROUTES if role in r.roles}
    return [(path, label) for path, label in entries if path in allowed]


# -- handlers ---------------------------------------------------------------------------------
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
    is_async = inspect.iscoroutinefunction(rule.handler)

    async def endpoint(request: Request) -> Response:
        web = request.app.state.web
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
# -- the application --------------------------------------------------------------------------
def leaflet_dir(config: WebConfig) -> str:
    """Leaflet's folder: the configured one, or Debian's libjs-leaflet."""
    for folder in ([config.leaflet_dir] if config.leaflet_dir else []) + [
            os.environ.get("HOTSPOTS_LEAFLET_DIR", ""), *maps.LEAFLET_DIRS]:
        if folder and (Path(folder) / "leaflet.js").is_file():
            return folder
    raise maps.MapError("Leaflet is not installed: run `sudo apt-get install -y libjs-leaflet`")


def geoman_dir() -> Path:
    """Leaflet-Geoman's folder (the fence editor's drawing tools): ``HOTSPOTS_GEOMAN_DIR`` or
    where ``make map-assets`` puts it, the virtualenv's ``share/hotspots/leaflet-geoman``."""
    env = os.environ.get("HOTSPOTS_GEOMAN_DIR")
    return Path(env) if env else Path(sys.prefix) / "share" / "hotspots" / "leaflet-geoman"


GEOMAN_FILES = ("leaflet-geoman.min.js", "leaflet-geoman.css")


def geoman_asset(request: Request) -> Response:
    """Leaflet-Geoman's script or style sheet (public, like Leaflet). Missing, it is a 404 that
    names the command, and the fence editor's page says the same (``pages.fences``)."""
    name = request.path_params["name"]
    path = geoman_dir() / name
    if name not in GEOMAN_FILES or not path.is_file():
        return JSONResponse({"error": f"{name} is not installed: run `make map-assets`"},
                            status_code=404)
    return FileResponse(path)


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
        Route("/static/deckgl/deck.gl.min.js", deckgl_asset, methods=["GET"]),
        Mount("/static/leaflet", StaticFiles(directory=leaflet_dir(config)), name="leaflet"),
        Route("/static/geoman/{name}", geoman_asset, methods=["GET"]),
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
