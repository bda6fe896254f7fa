"""``hotspots crime import`` and ``hotspots sim crime``: a thin layer over :mod:`planning.crime`
and :mod:`simulators.crime`."""

from __future__ import annotations

from pathlib import Path

import click

from hotspots.cli_gateway import open_database


def harm_option(func):
    """``--harm FILE``: a force's own harm index instead of the shipped defaults."""
    return click.option(
        "--harm", "harm_path", type=click.Path(exists=True, dir_okay=False), default=None,
        help="Harm table CSV (category,harm_days[,scheme,estimate,source]); default: the"
             " shipped Cambridge CHI-based table (planning/harm_weights.csv).")(func)


def load_harm_or_fail(path: str | None):
    from planning.harm import HarmError, load_harm

    try:
        return load_harm(path)
    except HarmError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def crime() -> None:
    """Recorded crime for planning: police.uk street-level CSV or a force records export."""


@crime.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="SQLite database (created if missing).")
@click.option("--format", "fmt", type=click.Choice(["police-uk", "force"]), default=None,
              help="File format (default: recognised from the header).")
@harm_option
@click.option("--tz", default="Europe/London", show_default=True,
              help="Time zone of the force export's local date-times.")
@click.option("--show-rejected", type=int, default=20, show_default=True,
              help="List at most this many rejected rows per file.")
def crime_import(files: tuple[str, ...], db_path: str, fmt: str | None, harm_path: str | None,
                 tz: str, show_rejected: int) -> None:
    """Import crime FILES; re-importing a file stores nothing twice."""
    from planning.crime import CrimeImportError, import_crime

    table = load_harm_or_fail(harm_path)
    db = open_database(db_path, create=True)
    for path in files:
        try:
            result = import_crime(db, path, fmt, table, tz)
        except CrimeImportError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{Path(path).name}: {result.summary()}")
        for line, reason in result.rejected[:show_rejected]:
            click.echo(f"  line {line}: {reason}")
        if len(result.rejected) > show_rejected:
            click.echo(f"  ... {len(result.rejected) - show_rejected} more rejected rows")
        for cat, n in sorted(result.no_harm_weight.items()):
            click.echo(f"  no harm weight for {cat!r} ({n} crimes): add it to a --harm table")


@click.command("crime")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the files.")
@click.option("--crimes", "n", type=int, default=20_000, show_default=True,
              help="Number of crimes (anti-social behaviour included).")
@click.option("--months", type=int, default=12, show_default=True)
@click.option("--start", default="2026-01", show_default=True, help="First month YYYY-MM.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["police-uk", "force", "both"]),
              default="both", show_default=True)
@click.option("--crs", type=click.Choice(["bng", "wgs84"]), default="bng", show_default=True,
              help="Coordinates of the force export.")
def sim_crime(out_dir: str, n: int, months: int, start: str, seed: int, fmt: str,
              crs: str) -> None:
    """Synthetic crime with planted hot spots (places and hours in truth.json)."""
    import json

    from simulators.crime import generate, write_force_export, write_police_uk

    try:
        world = generate(n, months, start, seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt in ("police-uk", "both"):
        paths = write_police_uk(world, out / "police-uk")
        click.echo(f"police.uk: {len(paths)} monthly files in {out / 'police-uk'}")
    if fmt in ("force", "both"):
        path = write_force_export(world, out / "force-export.csv", crs)
        click.echo(f"force export: {path}")
    truth = [p.__dict__ | {"crimes": sum(1 for r in world.records if r.planted == p.name)}
             for p in world.planted]
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    click.echo(f"{len(world.records)} crimes; planted hot spots in {out / 'truth.json'}")
