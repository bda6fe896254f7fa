"""Any day: the report page, its map data and every download."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fences.validate import FenceError
from gateway.reports import maps
from gateway.reports.dwell import ReportError
from gateway.web import audit, charts, day
from gateway.web.routing import ANALYST, SUPERVISOR, Api, Page, web_of


def _day_param(request: Request) -> str:
    text = request.query_params.get("date")
    if text:
        return text
    return dt.datetime.now(web_of(request).tz).date().isoformat()


def day_page(request: Request) -> Response:
    web = web_of(request)
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
    web = web_of(request)
    date = _day_param(request)
    try:
        computed = web.days.get(web.db(), date, web.tz, web.config.tz_name)
    except (ReportError, FenceError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if computed.map_data is None:
        from gateway.reports import exports

        data = day.as_json(computed)
        track_list = exports.day_tracks(web.db(), computed.window, computed.tz)
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
    web = web_of(request)
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



ROUTES: list[Page] = [
    Page("/day", day_page, frozenset({SUPERVISOR, ANALYST})),
    Api("/api/day", day_api, frozenset({SUPERVISOR, ANALYST})),
    Api("/export/{name}", export_download, frozenset({SUPERVISOR, ANALYST})),
]
