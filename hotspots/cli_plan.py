"""``hotspots plan``: targeting and taskings; ``hotspots report hotspot``: one hot spot's crime
beside its patrol dosage. A thin layer over :mod:`planning`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from hotspots.cli_crime import harm_option, load_harm_or_fail
from hotspots.cli_gateway import open_database


def grid_options(func):
    """``--cell-m`` and ``--grid``: the cells crime is counted in, alike for every command that
    counts it (targeting and the 3D map must agree on the cells they show)."""
    func = click.option("--grid", type=click.Choice(["square", "h3"]), default="square",
                        show_default=True,
                        help="Square British National Grid cells or H3 hexagons.")(func)
    return click.option(
        "--cell-m", type=float, default=150.0, show_default=True,
        help="Cell size in metres (H3: the resolution whose hexagons come closest).")(func)


@click.group()
def plan() -> None:
    """Plan a hot spots programme: find hot spots in crime data, draw daily taskings."""


@plan.command("hotspots")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="Database with imported crime (hotspots crime import).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Proposed hot spots GeoJSON (ready for hotspots fences validate/compile).")
@grid_options
@click.option("--top", type=int, default=None, help="Propose at most N hot spots.")
@click.option("--share", type=float, default=None,
              help="Stop once the hot spots hold this share of all harm (0-1).")
@click.option("--max-radius-m", type=float, default=150.0, show_default=True,
              help="A hot spot fits in a circle of this radius.")
@click.option("--min-spacing-m", type=float, default=500.0, show_default=True,
              help="Hot spot centres at least this far apart.")
@click.option("--alpha", type=float, default=0.05, show_default=True,
              help="False discovery rate for Gi* hot cells (Benjamini-Hochberg).")
@click.option("--measure", type=click.Choice(["harm", "count"]), default="harm",
              show_default=True, help="Rank and test by harm or by crime count.")
@harm_option
@click.option("--months", default=None, metavar="FIRST:LAST",
              help="Only crimes of these months, e.g. 2026-01:2026-06.")
@click.option("--tz", default="Europe/London", show_default=True,
              help="Zone for hours and weekdays in the time profiles.")
@click.option("--density", type=click.Choice(["low", "medium", "high", "very_high"]),
              default="high", show_default=True,
              help="Density class written into each fence (tracker sampling, docs/fences.md).")
@click.option("--cells", "cells_path", type=click.Path(dir_okay=False), default=None,
              help="Also write every cell with crime, ranked: crimes, harm, Gi* z, p, q (CSV).")
def plan_hotspots(db_path: str, out_path: str, cell_m: float, grid: str, top: int | None,
                  share: float | None, max_radius_m: float, min_spacing_m: float, alpha: float,
                  measure: str, harm_path: str | None, months: str | None, tz: str,
                  density: str, cells_path: str | None) -> None:
    """Counts and harm per cell, Getis-Ord Gi*, ranking and proposed hot spot polygons."""
    from planning.crime import load_crimes
    from planning.grid import GridError
    from planning.proposals import (
        PlanningError,
        Settings,
        propose,
        summary_lines,
        write_cells,
        write_geojson,
    )

    table = load_harm_or_fail(harm_path)
    db = open_database(db_path)
    span = None
    if months:
        try:
            first, last = months.split(":")
        except ValueError:
            raise click.BadParameter("use FIRST:LAST, e.g. 2026-01:2026-06",
                                     param_hint="--months") from None
        span = (first, last)
    settings = Settings(cell_m, grid, top, share, max_radius_m, min_spacing_m, alpha, measure,
                        tz, density)
    try:
        targeting = propose(load_crimes(db, span), table, settings)
    except (PlanningError, GridError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line in summary_lines(targeting):
        click.echo(line)
    click.echo(f"wrote {write_geojson(targeting, out_path)}")
    if cells_path:
        click.echo(f"wrote {write_cells(targeting, cells_path)}")


def _parse_officers(values: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for text in values:
        if "=" not in text:
            raise click.BadParameter(f"{text!r}: use SHIFT=COLLAR,COLLAR or SHIFT=team:NAME",
                                     param_hint="--officers")
        shift, people = text.split("=", 1)
        names = [p.strip() for p in people.split(",") if p.strip()]
        if not names:
            raise click.BadParameter(f"{text!r} names nobody", param_hint="--officers")
        out.setdefault(shift.strip(), []).extend(names)
    return out


@plan.command("taskings")
@click.option("--hotspots", "hotspots_path", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Hot spot GeoJSON (from hotspots plan hotspots, or any valid fence file).")
@click.option("--from", "first", required=True, help="First day YYYY-MM-DD.")
@click.option("--to", "last", required=True, help="Last day YYYY-MM-DD (inclusive).")
@click.option("--shifts", "shifts", multiple=True, required=True, metavar="NAME=HH:MM-HH:MM",
              help="A shift (repeatable), e.g. --shifts late=15:00-23:00.")
@click.option("--officers", "officers", multiple=True, required=True,
              metavar="SHIFT=ID,ID", help="Who works a shift (repeatable): collar numbers or"
              " team:NAME, e.g. --officers late=4521,4522,team:B-relief.")
@click.option("--seed", type=int, required=True, help="Random seed (recorded; same seed, same"
              " taskings).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Taskings CSV (hotspots report exceptions --taskings reads it); the design"
                   " goes beside it as NAME.design.csv.")
@click.option("--sheets", "sheets_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for one printable sheet per officer or team.")
@click.option("--per-day", type=int, default=None,
              help="Hot spots drawn for patrol each day, weighted by harm; the rest are that"
                   " day's controls (default: all, every day).")
@click.option("--visits", type=int, default=3, show_default=True,
              help="Visits per patrolled hot spot per day.")
@click.option("--visit-min", type=int, default=15, show_default=True,
              help="Minutes to spend in the hot spot per visit.")
@click.option("--window-min", type=int, default=60, show_default=True,
              help="Length of each visit's window.")
@click.option("--min-gap-min", type=int, default=120, show_default=True,
              help="Minimum minutes between visits to one hot spot.")
@click.option("--mode", type=click.Choice(["walk", "drive"]), default="walk",
              show_default=True, help="Travel on foot (5 km/h) or by car (29 km/h).")
@click.option("--detour", type=float, default=1.3, show_default=True,
              help="Street distance over straight-line distance.")
@click.option("--roads", "roads_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="GeoJSON road/footpath network (LineStrings): travel times"
              " over it instead of straight line x detour.")
@click.option("--station", default=None, metavar="LON,LAT",
              help="Where journeys start and end (default: the centre of the hot spots).")
@click.option("--tz", default="UTC", show_default=True,
              help="Zone of the shifts and of the CSV's local times (as report exceptions).")
@click.option("--solution-limit", type=int, default=40, show_default=True,
              help="Routing search effort per shift (more: slightly shorter journeys, slower;"
                   " the same value always gives the same taskings).")
def plan_taskings(hotspots_path: str, first: str, last: str, shifts: tuple[str, ...],
                  officers: tuple[str, ...], seed: int, out_path: str, sheets_dir: str | None,
                  per_day: int | None, visits: int, visit_min: int, window_min: int,
                  min_gap_min: int, mode: str, detour: float, roads_path: str | None,
                  station: str | None, tz: str, solution_limit: int) -> None:
    """Draw a period's taskings at random (seeded), place visits at hot times, route journeys."""
    from fences.validate import FenceError
    from planning import taskings_draw as td

    try:
        first_d, last_d = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    except ValueError as exc:
        raise click.BadParameter(f"dates are YYYY-MM-DD: {exc}") from exc
    station_ll = None
    if station:
        try:
            lon, lat = (float(v) for v in station.split(","))
            station_ll = (lon, lat)
        except ValueError:
            raise click.BadParameter("use LON,LAT", param_hint="--station") from None
    try:
        targets = td.load_targets(hotspots_path)
        settings = td.Settings(seed, [td.Shift.parse(s) for s in shifts],
                               _parse_officers(officers), per_day, visits, visit_min,
                               window_min, min_gap_min, mode, detour, station_ll, tz,
                               roads=roads_path, solution_limit=solution_limit)
        result = td.draw(targets, first_d, last_d, settings)
    except (td.DrawError, FenceError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line in td.summary_lines(result):
        click.echo(line)
    path = td.write_taskings(result, out_path)
    click.echo(f"wrote {path} and {path.with_suffix('.design.csv')}")
    if sheets_dir:
        sheets = td.write_sheets(result, sheets_dir)
        click.echo(f"wrote {len(sheets)} sheets in {sheets_dir}")


@plan.command("map3d")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="Database with imported crime.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Self-contained HTML file.")
@click.option("--hotspots", "hotspots_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Hot spots to outline on the map.")
@grid_options
@harm_option
def plan_map3d(db_path: str, out_path: str, hotspots_path: str | None, cell_m: float,
               grid: str, harm_path: str | None) -> None:
    """A 3D map of harm per cell (height: harm, colour: Gi* z), offline in one HTML file."""
    from planning.crime import load_crimes
    from planning.grid import GridError
    from planning.map3d import AssetError, write_map
    from planning.proposals import PlanningError, Settings, propose

    table = load_harm_or_fail(harm_path)
    db = open_database(db_path)
    try:
        targeting = propose(load_crimes(db), table, Settings(cell_m=cell_m, grid=grid, top=1))
        path = write_map(targeting, out_path, hotspots_path)
    except (PlanningError, GridError, AssetError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path}")


@click.command("hotspot")
@click.argument("hotspot_id")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="Database with crime, positions and taskings.")
@click.option("--fences", "fences_path", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Hot spot GeoJSON holding HOTSPOT_ID.")
@click.option("--tz", default="Europe/London", show_default=True,
              help="Zone for hours, weekdays and days.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@harm_option
def report_hotspot(hotspot_id: str, db_path: str, fences_path: str, tz: str,
                   as_json: bool, harm_path: str | None) -> None:
    """Crime and harm by hour and weekday, the trend, and the patrol dosage beside it."""
    import json

    from fences.validate import FenceError
    from planning.hotspot_report import ReportError, hotspot_report, text_lines

    table = load_harm_or_fail(harm_path)
    db = open_database(db_path)
    try:
        report = hotspot_report(db, Path(fences_path), hotspot_id, table, tz)
    except (ReportError, FenceError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        for line in text_lines(report):
            click.echo(line)
