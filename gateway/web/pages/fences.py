"""The fence editor: check, save and publish hot spot sets."""

from __future__ import annotations

import json
import time
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fences.validate import FenceError
from gateway.web import fence_sets
from gateway.web.routing import ANALYST, SUPERVISOR, Api, Page, web_of


def fences_page(request: Request) -> Response:
    from gateway.web.app import geoman_dir

    # Installed at set-up from npm (``make map-assets``); a station without it says so on the
    # page rather than showing a map whose toolbar silently never appears.
    missing = not (geoman_dir() / "leaflet-geoman.min.js").is_file()
    return web_of(request).page(request, "fences.html", title="Hot spots",
                              can_publish=request.state.session.user.role == SUPERVISOR,
                              geoman_missing=str(geoman_dir()) if missing else None)


def fences_api(request: Request) -> Response:
    web = web_of(request)
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
    web = web_of(request)
    user = request.state.session.user
    try:
        doc = await _json_body(request)
    except FenceError as exc:
        return JSONResponse({"error": str(exc), "check": None}, status_code=400)
    try:
        row, changes = await web.run(fence_sets.save, doc, user.username)
    except FenceError as exc:
        # The same findings the editor shows on the shapes, so it can point at them.
        checked = await run_in_threadpool(fence_sets.check, doc)
        return JSONResponse({"error": str(exc), "check": checked.as_dict()}, status_code=400)
    if changes:
        await run_in_threadpool(
            web.audit, request, "fences_save",
            "hotspots:" + ",".join(f"{hid}({change})" for hid, change, _, _ in changes),
            f"set {row.id} version {row.version}")
    return JSONResponse({"id": row.id, "version": row.version, "device_bytes": row.device_bytes,
                         "changes": [[hid, change] for hid, change, _, _ in changes]})


async def fences_publish(request: Request) -> Response:
    web = web_of(request)
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


def _publish(config, doc: dict):
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



ROUTES: list[Page] = [
    Page("/fences", fences_page, frozenset({SUPERVISOR, ANALYST})),
    Api("/api/fences", fences_api, frozenset({SUPERVISOR, ANALYST})),
    Api("/api/fences/check", fences_check, frozenset({SUPERVISOR, ANALYST}), ("POST",)),
    Api("/api/fences/save", fences_save, frozenset({SUPERVISOR, ANALYST}), ("POST",)),
    Api("/api/fences/publish", fences_publish, frozenset({SUPERVISOR}), ("POST",)),
]
