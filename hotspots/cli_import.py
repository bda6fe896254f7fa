"""``hotspots import``: position files (GPX, KML, NMEA logs, CSV exports) into the database."""

from __future__ import annotations

import click

from hotspots.cli_gateway import open_database


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--device", "device_id", required=True,
              help="The device whose track this is (a camera's or unit's id).")
@click.option("--collar", default=None,
              help="The officer who carried it over the file's span (recorded as an"
                   " assignment).")
@click.option("--format", "fmt", type=click.Choice(["gpx", "kml", "nmea", "csv"]), default=None,
              help="Default: from the extension, else from the content.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--timezone", default=None,
              help="IANA zone for times written without one (CSV, KML), e.g. Europe/London.")
@click.option("--columns", default=None,
              help="CSV column mapping, e.g. 'time=Date Time,lat=GPS Lat,lon=GPS Long'.")
@click.option("--delimiter", default=None, help="CSV delimiter (default: sniffed).")
def import_(file: str, device_id: str, collar: str | None, fmt: str | None, db_path: str,
            timezone: str | None, columns: str | None, delimiter: str | None) -> None:
    """Import a GPX, KML, NMEA or CSV track as DEVICE's positions, through the intake.

    Idempotent: importing the same file again stores nothing new. Each bad row is printed with
    its row and reason and kept in quarantine; the good rows are stored.
    """
    from gateway.fleet.identity import IdentityError
    from gateway.intake.files import FileImportError, Options
    from gateway.intake.files.csvtrack import parse_mapping
    from gateway.intake.files.importer import import_file
    from gateway.intake.files.rows import zone

    try:
        zone(timezone)
        options = Options(timezone=timezone,
                          columns=parse_mapping(columns) if columns else None,
                          delimiter=delimiter)
        db = open_database(db_path, create=True)
        result = import_file(db, file, device_id, collar=collar, fmt=fmt, options=options)
    except (FileImportError, IdentityError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for error in result.errors:
        click.echo(f"{error.origin}: {error.reason}: {error.detail}", err=True)
    if result.assignment is not None:
        a = result.assignment
        click.echo(f"assignment: {a.device_id} with {a.collar} from {a.start_ts} to {a.end_ts}")
    click.echo(result.summary())
