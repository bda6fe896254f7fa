"""Planning: the harm map (2D cells and the 3D view), proposed hot spots handed to the fence
editor as a draft, seeded taskings with their downloads and import, and one hot spot's crime
beside its patrol dosage. Analysts do all of it; supervisors read (no drafts, no imports)."""

from __future__ import annotations

import datetime as dt
import io
import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from fences.validate import FenceError
from gateway.reports.taskings import TaskingError, import_taskings
from gateway.web import audit, charts, fence_sets
from gateway.web import planning as plan
from gateway.web.routing import ANALYST, SUPERVISOR, Api, Page, web_of
from planning.aoristic import WEEKDAYS
from planning.proposals import PlanningError

READERS = frozenset({SUPERVISOR, ANALYST})
HOURS = [f"{h:02d}" for h in range(24)]


def _cache(request: Request) -> plan.Recent:
    return web_of(request).planning_cache


def _can_edit(request: Request) -> bool:
    return request.state.session.user.role == ANALYST


# -- harm map and proposals -------------------------------------------------------------------
def _proposal_rows(t, geojson: dict) -> list[dict]:
    rows = []
    for feature in geojson["features"]:
        p = feature["properties"]
        hours, days = p.get("hour_shares"), p.get("weekday_shares")
        rows.append({
            **p, "peak": ", ".join(f"{h:02d}" for h in p.get("peak_hours", [])),
            "chart_hours": charts.bars(HOURS, [round(100 * v, 1) for v in hours],
                                       f"{p['id']}: crime by hour ({t.settings.tz})", "%",
                                       width=420, height=150) if hours else "",
            "chart_days": charts.bars(list(WEEKDAYS), [round(100 * v, 1) for v in days],
                                      f"{p['id']}: crime by weekday", "%", width=260,
                                      height=150) if days else ""})
    return rows


def plan_page(request: Request) -> Response:
    web = web_of(request)
    db = web.db()
    held = plan.months_held(db)
    context = {"title": "Harm map and proposals", "held": held, "form": {}, "error": "",
               "summary": [], "proposals": [], "can_edit": _can_edit(request), "query": ""}
    try:
        form = plan.TargetingForm.parse(request.query_params, web.config.tz_name)
        context["form"] = form.query()
        context["query"] = urlencode(form.query())
        if held is None:
            context["error"] = ("no crimes in the database yet: import a force export or"
                                " police.uk files with `hotspots crime import`")
            return web.page(request, "plan.html", **context)
        t = plan.targeting(db, form, _cache(request))
    except (plan.FormError, PlanningError) as exc:
        context["error"] = str(exc)
        return web.page(request, "plan.html", status_code=400, **context)
    from planning.proposals import summary_lines

    geojson = plan.proposals_geojson(t)
    context.update(summary=[line for line in summary_lines(t) if not line.startswith(" ")],
                   proposals=_proposal_rows(t, geojson))
    return web.page(request, "plan.html", **context)


def cells_api(request: Request) -> Response:
    """Cells (outline, crimes, harm, Gi* z) and the proposals, for the 2D and 3D maps."""
    from planning.map3d import map_data

    web = web_of(request)
    db = web.db()
    try:
        form = plan.TargetingForm.parse(request.query_params, web.config.tz_name)
        if plan.months_held(db) is None:
            return JSONResponse({"cells": [], "hotspots": [], "proposals": None,
                                 "error": "no crimes in the database yet"})
        t = plan.targeting(db, form, _cache(request))
    except (plan.FormError, PlanningError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    geojson = plan.proposals_geojson(t)
    data = map_data(t, geojson)
    data["proposals"] = geojson
    data["months"] = list(form.months) if form.months else list(plan.months_held(db))
    return JSONResponse(data)


def map3d_page(request: Request) -> Response:
    from planning.map3d import AssetError, deckgl_js

    web = web_of(request)
    try:
        form = plan.TargetingForm.parse(request.query_params, web.config.tz_name)
    except plan.FormError as exc:
        return web.page(request, "plan3d.html", title="3D harm map", error=str(exc), query="",
                        status_code=400)
    try:
        deckgl_js()
    except AssetError as exc:
        return web.page(request, "plan3d.html", title="3D harm map", error=str(exc),
                        query=urlencode(form.query()))
    return web.page(request, "plan3d.html", title="3D harm map", error="",
                    query=urlencode(form.query()))


def deckgl_asset(request: Request) -> Response:
    """deck.gl's bundle from where ``make map-assets`` put it (public, like Leaflet)."""
    from planning.map3d import deckgl_path

    path = deckgl_path()
    if not path.is_file():
        return JSONResponse({"error": "deck.gl is not installed: run `make map-assets`"},
                            status_code=404)
    return FileResponse(path, media_type="text/javascript")


async def save_draft(request: Request) -> Response:
    """The proposals (computed again from the form's fields) saved as the fence editor's newest
    set: validated and compiled, not published."""
    web = web_of(request)
    fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    user = request.state.session.user

    def work(db):
        form = plan.TargetingForm.parse(fields, web.config.tz_name)
        t = plan.targeting(db, form, _cache(request))
        doc = plan.proposals_geojson(t)
        if not doc["features"]:
            raise PlanningError("no hot spots proposed: nothing to save")
        return fence_sets.save(db, doc, user.username)

    try:
        row, changes = await web.run(work)
    except (plan.FormError, PlanningError, FenceError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if changes:
        await web.run(lambda _db: web.audit(
            request, "fences_save",
            "hotspots:" + ",".join(f"{hid}({change})" for hid, change, _, _ in changes),
            f"set {row.id} version {row.version} (draft from proposals)"))
    return RedirectResponse(f"/fences?draft={row.id}", status_code=303)


# -- taskings ---------------------------------------------------------------------------------
def taskings_page(request: Request) -> Response:
    web = web_of(request)
    db = web.db()
    sets = fence_sets.history(db)
    today = dt.datetime.now(web.tz).date()
    params = dict(request.query_params)
    defaults = {"set": str(sets[0]["id"]) if sets else "",
                "from": (today + dt.timedelta(days=1)).isoformat(),
                "to": (today + dt.timedelta(days=7)).isoformat(),
                "shifts": "early=07:00-15:00\nlate=15:00-23:00", "officers": "",
                "seed": str(secrets.randbelow(10**8)), "per_day": "", "visits": "3",
                "visit_min": "15", "window_min": "60", "min_gap_min": "120", "mode": "walk"}
    context = {"title": "Taskings", "sets": sets, "error": "", "result": None,
               "journeys": [], "summary": [], "query": "", "can_edit": _can_edit(request),
               "imported": request.query_params.get("imported"), "tz_name": web.config.tz_name}
    if "from" not in params:
        return web.page(request, "taskings.html", form=defaults, **context)
    form_values = {**defaults, **params}
    try:
        form = plan.TaskingsForm.parse(params)
        result = plan.draw_taskings(db, form, web.config.tz_name, _cache(request))
    except plan.FormError as exc:
        return web.page(request, "taskings.html", form=form_values, status_code=400,
                        **{**context, "error": str(exc)})
    from planning.taskings_draw import summary_lines

    context.update(result=result, journeys=plan.journeys(result),
                   summary=summary_lines(result), query=urlencode(form.query()),
                   hidden=form.query())
    return web.page(request, "taskings.html", form=form_values, **context)


DOWNLOADS = {"taskings.csv": "text/csv; charset=utf-8", "design.csv": "text/csv; charset=utf-8",
             "sheets.zip": "application/zip"}


def taskings_download(request: Request) -> Response:
    web = web_of(request)
    name = request.path_params["name"]
    if "from" not in request.query_params:  # no draw asked for: fill in the form first
        return RedirectResponse("/plan/taskings", status_code=303)
    if name not in DOWNLOADS:
        return JSONResponse({"error": f"no download {name!r}"}, status_code=404)
    try:
        form = plan.TaskingsForm.parse(request.query_params)
        result = plan.draw_taskings(web.db(), form, web.config.tz_name, _cache(request))
    except plan.FormError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    body = plan.files(result)[name]
    web.audit(request, "export", audit.officers_subject(plan.assignees_of(result)),
              f"taskings {form.first}..{form.last} seed {form.seed} set {form.set_id} {name}"
              f" {len(result.visits)} visits")
    stem, _, ext = name.rpartition(".")
    return Response(body, media_type=DOWNLOADS[name], headers={
        "Content-Disposition": f'attachment; filename="{stem}-{form.first}-seed{form.seed}.{ext}"',
        "Cache-Control": "no-store"})


async def taskings_import(request: Request) -> Response:
    """Store the draw's taskings for the exception report (importing twice stores them once)."""
    web = web_of(request)
    fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}

    def work(db):
        form = plan.TaskingsForm.parse(fields)
        result = plan.draw_taskings(db, form, web.config.tz_name, _cache(request))
        text = plan.files(result)["taskings.csv"].decode("utf-8")
        return form, result, import_taskings(db, io.StringIO(text), web.tz)

    try:
        form, result, outcome = await web.run(work)
    except (plan.FormError, TaskingError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    await web.run(lambda _db: web.audit(
        request, "taskings_import", audit.officers_subject(plan.assignees_of(result)),
        f"taskings {form.first}..{form.last} seed {form.seed} set {form.set_id}:"
        f" {outcome.imported} new, {outcome.duplicates} already there,"
        f" {len(outcome.rejected)} rejected"))
    query = urlencode({**form.query(), "imported": f"{outcome.imported} new,"
                       f" {outcome.duplicates} already there, {len(outcome.rejected)} rejected"})
    return RedirectResponse(f"/plan/taskings?{query}", status_code=303)


# -- one hot spot ----------------------------------------------------------------------------
def hotspot_page(request: Request) -> Response:
    from planning.hotspot_report import ReportError, hotspot_report

    web = web_of(request)
    db = web.db()
    sets = fence_sets.history(db)
    try:
        set_id = int(request.query_params.get("set") or (sets[0]["id"] if sets else 0))
    except ValueError:
        set_id = 0
    context = {"title": "Hot spot", "sets": sets, "set_id": set_id, "error": "", "report": None,
               "spots": [], "charts": [], "tz_name": web.config.tz_name, "proposed": None}
    if request.query_params.get("proposed"):
        # a proposal not saved yet: the same form gives the same proposals
        try:
            form = plan.TargetingForm.parse(request.query_params, web.config.tz_name)
            doc = plan.proposals_geojson(plan.targeting(db, form, _cache(request)))
        except (plan.FormError, PlanningError) as exc:
            return web.page(request, "hotspot.html", status_code=400,
                            **{**context, "error": str(exc)})
        context["proposed"] = {"proposed": "1", **form.query()}
    else:
        row = fence_sets.get(db, set_id)
        if row is None and sets:
            return web.page(request, "hotspot.html", status_code=404,
                            **{**context, "error": f"no saved hot spot set {set_id}"})
        if row is None:
            context["error"] = "no saved hot spot set yet: save one in the fence editor"
            return web.page(request, "hotspot.html", **context)
        doc = row.geojson
    context["spots"] = [(str(f["properties"].get("id")), f["properties"].get("name") or "")
                        for f in doc.get("features", [])]
    hid = request.query_params.get("id")
    if not hid:
        return web.page(request, "hotspot.html", **context)
    try:
        report = hotspot_report(db, doc, hid, plan.harm_table(), web.config.tz_name)
    except (ReportError, FenceError) as exc:
        return web.page(request, "hotspot.html", status_code=404,
                        **{**context, "error": str(exc)})
    web.audit(request, "view_hotspot", f"hotspot:{hid}",
              f"{'proposals' if context['proposed'] else f'set {set_id}'}:"
              f" {report['visits']} visits, dosage by day")
    tz = web.config.tz_name
    made = []
    if report["by_hour"]:
        made += [charts.bars(HOURS, report["by_hour"]["crimes"], f"Crimes by hour ({tz})",
                             "crimes"),
                 charts.bars(HOURS, report["by_hour"]["harm"], f"Harm by hour ({tz})",
                             "harm-days"),
                 charts.bars(list(WEEKDAYS), report["by_weekday"]["crimes"],
                             "Crimes by weekday", "crimes", width=360),
                 charts.bars(list(WEEKDAYS), report["by_weekday"]["harm"], "Harm by weekday",
                             "harm-days", width=360)]
    trend = report["trend_by_month"]
    if trend:
        made += [charts.bars([m["month"] for m in trend], [m["crimes"] for m in trend],
                             "Crimes by month", "crimes"),
                 charts.bars([m["month"] for m in trend], [m["harm_days"] for m in trend],
                             "Harm by month", "harm-days")]
    weeks = report["dosage_by_week"]
    if weeks:
        made.append(charts.bars([w["week"] for w in weeks], [w["officer_min"] for w in weeks],
                                "Patrol dosage by ISO week", "officer-minutes"))
    days = report["dosage_by_day"][-62:]
    if days:
        made.append(charts.bars([d["date"][5:] for d in days], [d["officer_min"] for d in days],
                                "Patrol dosage by day (last 62 with patrol)", "officer-minutes"))
    context.update(title=f"Hot spot {hid}", report=report, charts=made)
    return web.page(request, "hotspot.html", **context)


ROUTES: list[Page] = [
    Page("/plan", plan_page, READERS),
    Api("/api/plan/cells", cells_api, READERS),
    Page("/plan/map3d", map3d_page, READERS),
    Page("/plan/draft", save_draft, frozenset({ANALYST}), ("POST",)),
    Page("/plan/taskings", taskings_page, READERS),
    Api("/plan/download/{name}", taskings_download, READERS),
    Page("/plan/import-taskings", taskings_import, frozenset({ANALYST}), ("POST",)),
    Page("/plan/hotspot", hotspot_page, READERS),
]
