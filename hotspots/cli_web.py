"""``hotspots web``: serve the station web app, and manage its accounts (``hotspots web user``).

A thin layer over :mod:`gateway.web`: options in, one library call, domain errors out as
``click.ClickException``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from hotspots.cli_gateway import open_database

PASSWORD_ENV = "HOTSPOTS_WEB_PASSWORD"


def _broker_from_dir(broker_dir: str) -> str:
    """``host:port`` of the plain listener in a broker folder's generated mosquitto.conf."""
    conf = Path(broker_dir) / "mosquitto.conf"
    try:
        text = conf.read_text()
    except OSError as exc:
        raise click.ClickException(f"cannot read {conf}: {exc.strerror or exc}") from exc
    match = re.search(r"^listener (\d+) (\S+)\s*$", text, re.M)
    if not match:
        raise click.ClickException(f"no plain listener in {conf}: give --broker HOST:PORT")
    return f"{match.group(2)}:{match.group(1)}"


@click.group("web", invoke_without_command=True)
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="Gateway SQLite database (the gateway may be writing it).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for the station network).")
@click.option("--port", type=int, default=8080, show_default=True, help="TCP port.")
@click.option("--broker", "broker_address", default=None,
              help="Broker HOST:PORT for publishing hot spots (default: from --broker-dir).")
@click.option("--broker-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="The broker's folder (hotspots broker --dir): its accounts.json and listener.")
@click.option("--accounts", "accounts_path", type=click.Path(dir_okay=False, exists=True),
              default=None, help="The broker's accounts.json (default: in --broker-dir).")
@click.option("--station", default="main", show_default=True,
              help="Station whose trackers get published hot spots.")
@click.option("--fences", "fences_path", type=click.Path(dir_okay=False, exists=True),
              default=None, help="Hot spot GeoJSON to start from when the database has none.")
@click.option("--tz", "tz_name", default="UTC", show_default=True,
              help="Time zone of a day (e.g. Europe/London).")
@click.option("--secure-cookies", is_flag=True,
              help="Send cookies over HTTPS only (behind a TLS reverse proxy).")
@click.pass_context
def web(ctx: click.Context, db_path: str | None, host: str, port: int,
        broker_address: str | None, broker_dir: str | None, accounts_path: str | None,
        station: str, fences_path: str | None, tz_name: str, secure_cookies: bool) -> None:
    """Serve the station web app: live map, any day's reports, fence editor (docs/web.md)."""
    if ctx.invoked_subcommand is not None:
        return
    if not db_path:
        raise click.UsageError("give --db PATH (or a subcommand: hotspots web user --help)")
    import uvicorn

    from gateway.reports.dwell import ReportError, zone
    from gateway.reports.maps import MapError
    from gateway.web.app import WebConfig, create_app

    if broker_dir:
        broker_address = broker_address or _broker_from_dir(broker_dir)
        accounts_path = accounts_path or str(Path(broker_dir) / "accounts.json")
    try:
        zone(tz_name)
        db = open_database(db_path, create=True)
        if not db["web_users"].count:
            click.echo(f"no accounts yet: add one with `hotspots web user add NAME --role "
                       f"supervisor --db {db_path}`", err=True)
        db.conn.close()
        app = create_app(WebConfig(db_path, broker_address, accounts_path, station, tz_name,
                                   secure_cookies, fences_path))
    except (ReportError, MapError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"hotspots web on http://{host}:{port}/ (database {db_path})")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                timeout_graceful_shutdown=3)


@web.group("user")
def user() -> None:
    """Web app accounts: add, list, change passwords, disable."""


def _password(confirm: bool = True) -> str:
    # From the environment for scripts and tests; otherwise asked for, never on the command line
    # (it would be in the shell history and the process list).
    return os.environ.get(PASSWORD_ENV) or click.prompt(
        "password", hide_input=True, confirmation_prompt=confirm)


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["supervisor", "staff", "analyst"]), required=True,
              help="supervisor: everything; staff: the fleet; analyst: day reports and fences.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), required=True,
              help="Gateway SQLite database.")
def user_add(name: str, role: str, db_path: str) -> None:
    """Create account NAME (password asked for, or taken from HOTSPOTS_WEB_PASSWORD)."""
    from gateway.web.auth import AuthError, add_user

    db = open_database(db_path, create=True)
    try:
        add_user(db, name, role, _password())
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {name} ({role}) added")


@user.command("passwd")
@click.argument("name")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), required=True,
              help="Gateway SQLite database.")
def user_passwd(name: str, db_path: str) -> None:
    """Set NAME's password (ends their sessions)."""
    from gateway.web.auth import AuthError, set_password

    try:
        set_password(open_database(db_path), name, _password())
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"password of {name} changed; their sessions are ended")


@user.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), required=True,
              help="Gateway SQLite database.")
def user_disable(name: str, enable: bool, db_path: str) -> None:
    """Disable account NAME at once (its sessions end), or --enable it."""
    from gateway.web.auth import AuthError, set_disabled

    try:
        set_disabled(open_database(db_path), name, not enable)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {name} {'enabled' if enable else 'disabled'}")


@user.command("list")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), required=True,
              help="Gateway SQLite database.")
def user_list(db_path: str) -> None:
    """Every account and its role."""
    from gateway.web.auth import list_users

    for row in list_users(open_database(db_path)):
        state = " (disabled)" if row["disabled"] else ""
        click.echo(f"{row['username']:<20} {row['role']:<10}{state}")


@web.command("audit")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), required=True,
              help="Gateway SQLite database.")
@click.option("--user", "username", default=None, help="Only this user's rows.")
@click.option("--limit", type=int, default=100, show_default=True)
def web_audit(db_path: str, username: str | None, limit: int) -> None:
    """Who viewed or exported whose positions, and who changed which hot spot (newest first)."""
    from gateway.web.audit import recent

    for r in recent(open_database(db_path), limit, username):
        click.echo(f"{r['time']} {r['username'] or '-':<12} {r['action']:<15} {r['subject']}"
                   f" {r['detail']}")
