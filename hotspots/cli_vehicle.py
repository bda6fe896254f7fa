"""``hotspots vehicle``: vehicles as devices with a crew, and their AVL feed over HTTP."""

from __future__ import annotations

import threading

import click

from hotspots.cli_gateway import open_database, stop_on_signals, time_option


@click.group()
def vehicle() -> None:
    """Vehicles: crews (who is aboard, when) and the AVL endpoint (OsmAnd protocol)."""


def _crew_errors(func):
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from gateway.fleet.crew import CrewError

        try:
            return func(*args, **kwargs)
        except CrewError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@vehicle.command()
@click.argument("device")
@click.argument("collars", nargs=-1, required=True)
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--at", "at_text", default=None, help="When they got in (default now).")
@click.option("--until", "until_text", default=None, help="When they got out, if known.")
@_crew_errors
def board(device: str, collars: tuple[str, ...], db_path: str, at_text: str | None,
          until_text: str | None) -> None:
    """COLLARS got into vehicle DEVICE (registered as a vehicle if new)."""
    from gateway.fleet import crew

    db = open_database(db_path, create=True)
    at, until = time_option(at_text), time_option(until_text)
    for collar in collars:
        seat = crew.board(db, device, collar, at=at, until=until)
        end = "" if seat.end_ts is None else f" until {seat.end_ts}"
        click.echo(f"{collar} aboard {device} from {seat.start_ts}{end}")


@vehicle.command()
@click.argument("device")
@click.argument("collars", nargs=-1, required=True)
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--at", "at_text", default=None, help="When they got out (default now).")
@_crew_errors
def alight(device: str, collars: tuple[str, ...], db_path: str, at_text: str | None) -> None:
    """COLLARS got out of vehicle DEVICE."""
    from gateway.fleet import crew

    db = open_database(db_path)
    for collar in collars:
        seat = crew.alight(db, device, collar, at=time_option(at_text))
        click.echo(f"{collar} left {device} at {seat.end_ts}")


@vehicle.command("crew")
@click.argument("device")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
def crew_(device: str, db_path: str) -> None:
    """Everyone who rode in vehicle DEVICE, from when to when."""
    from gateway.fleet import crew

    db = open_database(db_path)
    seats = crew.seats(db, device)
    if not seats:
        click.echo(f"{device}: no crew recorded")
    for seat in seats:
        end = "aboard" if seat.end_ts is None else str(seat.end_ts)
        click.echo(f"{seat.collar:<12} {seat.start_ts:>11} {end:>11}")


@vehicle.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for the station network).")
@click.option("--port", type=int, default=5055, show_default=True,
              help="Traccar's port for the OsmAnd protocol.")
def serve(db_path: str, host: str, port: int) -> None:
    """Receive vehicle AVL reports over HTTP (OsmAnd protocol, as Traccar Client sends them:
    ?id=&timestamp=&lat=&lon=&speed=) into the database until Ctrl-C."""
    from gateway.intake.vehicle_http import AvlServer

    open_database(db_path, create=True).close()
    try:
        server = AvlServer(db_path, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    click.echo(f"listening on http://{host}:{server.port}/ (OsmAnd protocol)", err=True)
    stop = threading.Event()
    stop_on_signals(stop)
    server.serve(stop)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(server.counts.items())) or "nothing"
    click.echo(f"stopped: {counts}", err=True)
