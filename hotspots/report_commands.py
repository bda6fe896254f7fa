"""The ``hotspots report`` and ``hotspots export`` command groups: a thin layer over
:mod:`gateway.reports.dwell`, :mod:`gateway.reports.visits`, :mod:`gateway.reports.taskings`,
:mod:`gateway.reports.exports`,
:mod:`gateway.reports.maps` and :mod:`gateway.reports.daily`.

Every command that reads visits takes the same window options (``--date`` in ``--tz``, or
``--from``/``--to``) and the same rule options, so figures from two commands always agree.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from hotspots.cli_gateway import open_database

OPEN = (-(2**62), 2**62)


def _when(text: str, tz: dt.tzinfo) -> int:
    """Epoch seconds from epoch digits or ISO 8601 (local to ``tz`` when no offset is given)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: use YYYY-MM-DDTHH:MM or epoch seconds") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(moment.timestamp())


def _common(window: bool = True, fences: str = "optional") -> Callable:
    """Options shared by the commands that compute visits; passes ``ctx`` values as kwargs."""

    def decorate(func: Callable) -> Callable:
        opts = [
            click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
                         help="Gateway SQLite database."),
            click.option("--tz", "tz_name", default="UTC", show_default=True,
                         help="Time zone for the day and the times shown (e.g. Europe/London)."),
            click.option("--hysteresis-m", type=float, default=10.0, show_default=True,
                         help="A visit ends only at a fix this far outside the hot spot."),
            click.option("--max-acc-m", type=float, default=50.0, show_default=True,
                         help="Ignore fixes with a larger error bound (radio error classes)."),
            click.option("--interp-gap-s", type=int, default=360, show_default=True,
                         help="Interpolate crossings between fixes at most this far apart."),
            click.option("--merge-gap-s", type=int, default=120, show_default=True,
                         help="Join an officer's visits to a hot spot this close together."),
            click.option("--min-visit-s", type=int, default=60, show_default=True,
                         help="Drop (merged) visits shorter than this."),
            click.option("--unknown-accuracy", type=click.Choice(["ignore", "count"]),
                         default="ignore", show_default=True,
                         help="Whether radio fixes of unknown accuracy (error class 7) count."),
            click.option("--vehicle-max-speed", "vehicle_max_speed_mps", type=float,
                         default=2.0, show_default=True,
                         help="m/s: a vehicle's fix counts only when parked or at walking pace."),
        ]
        if fences != "none":
            opts.append(click.option(
                "--fences", "fences_path", type=click.Path(exists=True, dir_okay=False),
                required=fences == "required",
                help="Hot spot GeoJSON; needed to place positions (radios, phones without "
                     "transitions) in hot spots." + (" Without it only the devices' transitions"
                                                     " are used." if fences == "optional"
                                                     else "")))
        if window:
            opts += [
                click.option("--date", "day", default=None, help="Local day YYYY-MM-DD."),
                click.option("--from", "from_", default=None,
                             help="Window start (ISO 8601 or epoch s) instead of --date."),
                click.option("--to", default=None, help="Window end (exclusive)."),
            ]
        for opt in reversed(opts):
            func = opt(func)

        @functools.wraps(func)
        def wrapper(**kw):
            # Here rather than at the top: `hotspots gateway run` need not load shapely and numpy.
            from fences.validate import FenceError
            from gateway.reports.dwell import ReportError, day_window, zone
            from gateway.reports.visits import HotSpotSet, VisitRules

            try:
                tz = zone(kw.pop("tz_name"))
                kw["tz"] = tz
                kw["rules"] = VisitRules(kw.pop("hysteresis_m"), kw.pop("max_acc_m"),
                                         kw.pop("interp_gap_s"), kw.pop("merge_gap_s"),
                                         kw.pop("min_visit_s"),
                                         kw.pop("unknown_accuracy") == "count",
                                         kw.pop("vehicle_max_speed_mps"))
                if window:
                    day, from_, to = kw.pop("day"), kw.pop("from_"), kw.pop("to")
                    if day and (from_ or to):
                        raise click.UsageError("give --date or --from/--to, not both")
                    if day:
                        kw["window"] = day_window(day, tz)
                    else:
                        kw["window"] = (_when(from_, tz) if from_ else OPEN[0],
                                        _when(to, tz) if to else OPEN[1])
                    kw["day"] = day
                if fences != "none":
                    path = kw.pop("fences_path")
                    kw["hotspots"] = HotSpotSet.load(path) if path else None
                kw["db"] = open_database(kw.pop("db_path"))
                return func(**kw)
            except (ReportError, FenceError, ValueError) as exc:
                raise click.ClickException(str(exc)) from exc

        return wrapper

    return decorate


def _import_plan(db, taskings_csv: str | None, teams_csv: str | None, tz) -> None:
    from gateway.reports.taskings import import_taskings, import_teams

    for path, load in ((teams_csv, import_teams), (taskings_csv, None)):
        if not path:
            continue
        result = import_teams(db, path) if load else import_taskings(db, path, tz)
        click.echo(f"{Path(path).name}: {result.imported} imported, {result.duplicates} already"
                   f" there, {len(result.rejected)} rejected", err=True)
        for line, reason in result.rejected:
            click.echo(f"  line {line}: {reason}", err=True)


# -- report ---------------------------------------------------------------------------------------
@click.group()
def report() -> None:
    """Reports for supervisors and analysts."""


@report.command("dwell")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per visit.")
@_common()
def report_dwell(db, hotspots, window, day, tz, rules, as_json: bool) -> None:
    """Visits and dwell per officer (or device) and hot spot."""
    from gateway.reports.dwell import dwell_table
    from gateway.reports.visits import compute_visits, unknown_hotspot_transitions

    visits = compute_visits(db, hotspots, window, rules)
    if hotspots is not None:
        unknown = unknown_hotspot_transitions(db, hotspots, window)
        if unknown:
            ids = ", ".join(f"{rid!a} ({n})" for rid, n in sorted(unknown.items())[:10])
            click.echo(f"{sum(unknown.values())} transitions for hot spots not in the fence set"
                       f" ignored: {ids}", err=True)
    if as_json:
        for visit in visits:
            click.echo(json.dumps(visit.as_dict()))
        return
    for line in dwell_table(visits, tz):
        click.echo(line)


@report.command("stats")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hot spot.")
@_common(window=False, fences="required")
@click.option("--date", "day", required=True, help="Local day YYYY-MM-DD.")
def report_stats(db, hotspots, day, tz, rules, as_json: bool) -> None:
    """Per hot spot for one day: visits, officer-minutes, patrol-minutes, minutes per visit."""
    from gateway.reports.dwell import daily_stats, day_window
    from gateway.reports.visits import compute_visits

    visits = compute_visits(db, hotspots, day_window(day, tz), rules)
    stats = daily_stats(visits, day, tz, hotspots)
    if as_json:
        for s in stats:
            click.echo(json.dumps(s.as_dict()))
        return
    click.echo(f"{'hot spot':<12} {'visits':>6} {'officers':>8} {'officer-min':>11}"
               f" {'patrol-min':>10} {'min/visit':>9}")
    for s in stats:
        click.echo(f"{s.hotspot:<12} {s.visits:>6} {s.officers:>8} {s.officer_minutes:>11.1f}"
                   f" {s.patrol_minutes:>10.1f} {s.minutes_per_visit:>9.1f}")


@report.command("materialise")
@_common(fences="optional")
def report_visits_table(db, hotspots, window, day, tz, rules) -> None:
    """Store the window's visits in the database's visits table (for analysts, Datasette).

    Without --fences, uses the hot spot set the web app had in force at the window's end
    (and records it on each row); with --fences, the file (no set recorded).
    """
    import time

    from gateway.reports.analyst import materialise_visits
    from gateway.reports.visits import HotSpotSet
    from gateway.web import fence_sets

    if window == OPEN:
        raise click.UsageError("give --date or --from/--to")
    fence_set: tuple = (None, None)
    if hotspots is None:
        row = fence_sets.in_force(db, min(window[1] - 1, time.time()))
        if row is None:
            raise click.ClickException("no hot spot set: give --fences FILE")
        hotspots, fence_set = HotSpotSet.load(row.geojson), (row.id, row.version)
    count = materialise_visits(db, hotspots, window, rules, fence_set)
    click.echo(f"{count} visits stored in the visits table"
               + (f" (hot spot set {fence_set[1]})" if fence_set[1] else ""))


@report.command("datasette")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="Gateway SQLite database.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Write the Datasette metadata JSON here.")
def report_datasette(db_path: str, out: str) -> None:
    """Write Datasette metadata for the database (table and column descriptions, relationships,
    private tables hidden) and print the command that serves it on this machine only."""
    from gateway.reports.analyst import datasette_metadata

    open_database(db_path)  # migrated: the views exist
    Path(out).write_text(json.dumps(datasette_metadata(db_path), indent=1), encoding="utf-8")
    click.echo(f"wrote {out}; serve with: datasette {db_path} --metadata {out} --host 127.0.0.1")


@report.command("exceptions")
@click.option("--taskings", "taskings_csv", type=click.Path(exists=True, dir_okay=False),
              help="Import this tasking CSV first (idempotent).")
@click.option("--teams", "teams_csv", type=click.Path(exists=True, dir_okay=False),
              help="Import this team,collar CSV first.")
@click.option("--all", "show_all", is_flag=True, help="Also list taskings that were done.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@_common(window=False, fences="required")
@click.option("--date", "day", required=True, help="Local day YYYY-MM-DD.")
def report_exceptions(db, hotspots, day, tz, rules, taskings_csv, teams_csv, show_all,
                      as_json) -> None:
    """Taskings not performed, too short or outside their window; untasked presence."""
    from gateway.reports.daily import day_exceptions, exceptions_rows
    from gateway.reports.dwell import parse_date
    from gateway.reports.visits import clip_visits

    _import_plan(db, taskings_csv, teams_csv, tz)
    window, _, outcomes, untasked = day_exceptions(db, parse_date(day), hotspots, tz, rules)
    outcomes = [o for o in outcomes if show_all or o.exception]
    rows = exceptions_rows(outcomes, clip_visits(untasked, window), tz)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    click.echo(f"{'status':<15} {'hot spot':<12} {'who':<16} {'window':<27} {'required':>8}"
               f" {'in window':>9} {'outside':>8}")
    for r in rows:
        span = f"{r['start'][11:16]}-{r['end'][11:16]}"
        click.echo(f"{r['status']:<15} {r['hotspot']:<12} {r['assignee']:<16} {span:<27}"
                   f" {r['required_min']!s:>8} {r['in_window_min']!s:>9}"
                   f" {r['outside_window_min']!s:>8}")


@report.command("map")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HTML file to write.")
@click.option("--tiles", default=None,
              help="Optional tile URL template (the map works offline without it).")
@_common(window=False, fences="required")
@click.option("--date", "day", required=True, help="Local day YYYY-MM-DD.")
def report_map(db, hotspots, day, tz, rules, out, tiles) -> None:
    """A self-contained HTML map: hot spots coloured by patrol-minutes, tracks, visits."""
    from gateway.reports import exports
    from gateway.reports.dwell import daily_stats, day_window
    from gateway.reports.maps import MapError, write_map
    from gateway.reports.visits import compute_visits

    window = day_window(day, tz)
    visits = compute_visits(db, hotspots, window, rules)
    stats = daily_stats(visits, day, tz, hotspots)
    try:
        # The title names the day and its zone, as the day page and `report daily` do.
        write_map(Path(out), hotspots, stats, exports.day_tracks(db, window, tz), visits,
                  f"Hot spots, {day} ({getattr(tz, 'key', 'UTC')})", tz, tiles)
    except MapError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(out)


@report.command("daily")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder to write.")
@click.option("--taskings", "taskings_csv", type=click.Path(exists=True, dir_okay=False),
              help="Import this tasking CSV first (idempotent).")
@click.option("--teams", "teams_csv", type=click.Path(exists=True, dir_okay=False),
              help="Import this team,collar CSV first.")
@click.option("--tiles", default=None, help="Optional tile URL template for the map.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG charts.")
@_common(window=False, fences="required")
@click.option("--date", "day", required=True, help="Local day YYYY-MM-DD.")
def report_daily(db, hotspots, day, tz, rules, out, taskings_csv, teams_csv, tiles,
                 no_plots) -> None:
    """Everything for one day: visits, figures, exceptions, exports, map and plots."""
    from gateway.reports.daily import write_daily
    from gateway.reports.maps import MapError

    _import_plan(db, taskings_csv, teams_csv, tz)
    tz_name = getattr(tz, "key", "UTC")
    try:
        result = write_daily(db, day, Path(out), hotspots, tz, tz_name, rules, tiles,
                             plots=not no_plots)
    except MapError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{day} ({tz_name}): {result.visits} visits, {result.officer_minutes:g}"
               f" officer-minutes, {result.patrol_minutes:g} patrol-minutes")
    click.echo("taskings: " + ", ".join(f"{k} {v}" for k, v in result.exceptions.items())
               + f"; untasked visits {result.untasked}")
    click.echo(f"wrote {len(result.files)} files to {out}")


# -- export ---------------------------------------------------------------------------------------
@click.group()
def export() -> None:
    """Exports of stored data."""


@export.command("positions")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
@click.option("--out", type=click.File("w"), default="-", help="Output file (default stdout).")
def export_positions(db_path: str, fmt: str, out) -> None:
    """Stored positions: device, officer, seq, UTC fix time, lat, lon, speed, course, source."""
    from gateway.reports.exports import export_positions as write

    write(open_database(db_path), out, fmt)


@export.command("visits")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "geojson"]), default="csv",
              show_default=True)
@click.option("--out", type=click.File("w"), default="-", help="Output file (default stdout).")
@_common()
def export_visits(db, hotspots, window, day, tz, rules, fmt, out) -> None:
    """Visits (clipped to the window) as CSV, JSON lines or GeoJSON features."""
    from gateway.reports import exports
    from gateway.reports.visits import compute_visits

    visits = compute_visits(db, hotspots, window, rules)
    if fmt == "csv":
        exports.write_visits_csv(visits, out, tz)
    elif fmt == "jsonl":
        for v in visits:
            out.write(json.dumps(v.as_dict()) + "\n")
    else:
        json.dump(exports.tracks_geojson([], visits, hotspots, tz), out)


@export.command("tracks")
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpx"]), default="geojson",
              show_default=True)
@click.option("--out", type=click.Path(), default=None,
              help="GeoJSON: file (default stdout); GPX: folder, one file per officer per shift.")
@_common()
def export_tracks(db, hotspots, window, day, tz, rules, fmt, out) -> None:
    """Tracks per officer per shift: GeoJSON LineStrings (plus visits) or GPX files."""
    from gateway.reports import exports
    from gateway.reports.visits import compute_visits

    # A --day is a local calendar day: its shifts whole, as the day page draws them.
    track_list = (exports.day_tracks(db, window, tz) if day
                  else exports.tracks(db, window, tz))
    if fmt == "gpx":
        if not out:
            raise click.UsageError("--format gpx needs --out FOLDER")
        for path in exports.write_gpx(track_list, Path(out)):
            click.echo(path)
        return
    visits = compute_visits(db, hotspots, window, rules) if hotspots else []
    text = json.dumps(exports.tracks_geojson(track_list, visits, hotspots, tz))
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
